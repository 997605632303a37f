"""The host driver (xaihls/driver.py) over the simulated Engine v2 RTL: Device's own operations,
done by the cocotb testbench against xaihls_sim_top (SimulationTransport), give golden's bits for
predict, saliency and integrated gradients, at the cycles the engine reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xaihls
from hw_tests.rtl_v2_cases import program as case_program
from tests.driver_project import write_driver_project
from xaihls.backends.rtl.sim import DDR_LATENCY
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.backends.rtl.v2.project import decode_image
from xaihls.backends.rtl.v2.transport import SimulationTransport
from xaihls.driver import Device, ReadMemory, WriteMemory
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input
from xaihls.golden.model import attribution_format
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.plan.contract import MAX_IG_STEPS
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.lowering import Buffers, Shape, lower

IG = {"target": 3, "steps": 4, "baseline": 0.25}  # not the project's defaults: every register and input is written


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """digits at a 4 x 4 array with row tiles, two images."""
    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                         methods=("saliency", "integrated_gradients"), ig_steps=3, backends=("golden",))
    program = lower(acc.qgraph, Shape(4, 4, 4), Buffers(256, 64, 1024))
    folder = write_driver_project(tmp_path_factory.mktemp("project"), acc.qgraph, program)
    return folder, acc, program, entry.samples()[0][:2]


def _golden(acc, x, method, options):
    if "baseline" in options:
        options = {**options, "baseline": torch.full_like(x, options["baseline"])}
    return acc.run(x, method, backend="golden", **options)


def test_device_over_the_rtl_simulation_equals_golden(project):
    folder, acc, program, x = project
    transport = SimulationTransport.for_project(folder)
    device = Device(folder, transport)
    cases = [(None, {}), ("saliency", {}), ("integrated_gradients", IG)]
    for method, options in cases:
        runs = device.run(x.numpy(), method, **options)
        g = _golden(acc, x, method, options)
        what = method or "predict"
        assert np.array_equal(np.stack([r.logits for r in runs]), g.logits.numpy()), what
        assert all(r.logits_fmt == g.logits_fmt for r in runs), what
        assert [r.predicted for r in runs] == g.logits.argmax(1).tolist(), what
        assert [r.target for r in runs] == g.target.tolist(), what
        if method:
            assert np.array_equal(np.stack([r.attribution for r in runs]), g.attribution.numpy()), what
            assert all(r.attribution_fmt == attribution_format(acc.qgraph, method) for r in runs), what
    # the dequantized outputs, through Device's own predict and attribute (two more processes: the
    # Program stays in the simulated DDR from one process to the next)
    assert np.array_equal(device.predict(x.numpy()), acc.predict(x).double().numpy())
    assert np.array_equal(device.attribute(x.numpy(), "integrated_gradients", **IG),
                          _golden(acc, x, "integrated_gradients", IG).attribution.numpy()
                          * attribution_format(acc.qgraph, "integrated_gradients").lsb)
    # one CYCLES reading per run; the engine's time does not depend on the image
    cycles = transport.cycles
    print("cycles per run (predict, saliency, integrated gradients, predict, IG):", cycles[::2])
    assert len(cycles) == 2 * (len(cases) + 2) and cycles[0::2] == cycles[1::2]
    predict, saliency, ig = cycles[0:6:2]
    assert 0 < predict < saliency < ig


def test_the_driver_sequence_costs_what_the_testbench_run_costs(project):
    """WaitDone's polling and the backdoor DDR take no engine cycle: the driver's runs take the
    cycles of the testbench's own runs (xaihls.backends.rtl.v2.sim.simulate) of the same image."""
    folder, acc, program, x = project
    transport = SimulationTransport.for_project(folder)
    device = Device(folder, transport)
    device.run(x[:1].numpy())
    device.run(x[:1].numpy(), "saliency")
    x_q = quantize_input(acc.qgraph, x[:1])[0][0].numpy()
    runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": sim.ig_table(3, "trapezoid"),
             "method": code, "target": -1, "steps": 3} for code in (PREDICT_CODE, METHOD_CODES["saliency"])]
    assert transport.cycles == [r["cycles"] for r in sim.simulate(program, transport.params, runs)]


def test_memory_operations_are_byte_exact_at_any_offset(project):
    """Writes that cover a DDR word in part keep its other bytes; reads start anywhere; the DDR
    persists from one call (one simulator process) to the next."""
    folder, acc, program, x = project
    transport = SimulationTransport.for_project(folder)
    image = program.image
    first = transport.execute_all([WriteMemory(0, image), WriteMemory(3, b"abcde"), WriteMemory(13, b"\xff"),
                                   ReadMemory(1, 17)])
    assert first == [None, None, None, image[1:3] + b"abcde" + image[8:13] + b"\xff" + image[14:18]]
    assert transport.execute_all([ReadMemory(0, 20)]) == [image[:3] + b"abcde" + image[8:13] + b"\xff" + image[14:20]]
    with pytest.raises(XaiHlsError, match="outside the Program's"):
        transport.execute_all([ReadMemory(program.total_bytes - 2, 4)])


def test_the_same_bits_under_ddr_stalls_and_a_timeout_is_an_error(project):
    folder, acc, program, x = project
    calm = SimulationTransport.for_project(folder)
    stalled = SimulationTransport.for_project(folder, stalls=0.3, seed=7)
    want = acc.predict(x).double().numpy()
    assert np.array_equal(Device(folder, calm).predict(x.numpy()), want)
    assert np.array_equal(Device(folder, stalled).predict(x.numpy()), want)
    assert all(s > c for s, c in zip(stalled.cycles, calm.cycles))
    with pytest.raises(XaiHlsError, match="raised no ap_done within its timeout"):
        Device(folder, SimulationTransport.for_project(folder, timeout_cycles=1000)).predict(x[:1].numpy())


@pytest.mark.parametrize("name,shape", [("digits", "4x4"), ("digits_gap", "16x8_128bit"), ("random305", "16x8")])
def test_the_build_comes_from_the_program_image(name, shape):
    """SimulationTransport's default parameters, read from the DDR image alone, are rtl_params of the Program."""
    prog = case_program(name, shape)
    assert rtl_params(decode_image(prog.image)) == rtl_params(prog)
    assert SimulationTransport(prog.image).params == rtl_params(prog)


def test_the_wait_for_done_follows_the_cycle_model(project):
    """Without ``timeout_cycles`` the testbench waits four times the cycle model's longest run the
    operations start, read from the registers the driver writes: a fixed 20 million cycles stopped
    DenseNet-121's saliency at 32 x 32 (22.2 million by the model)."""
    folder, acc, program, x = project
    transport = SimulationTransport.for_project(folder)
    device = Device(folder, transport)
    images_q = [quantize_input(acc.qgraph, x[:1])[0][0].numpy()]
    ig = METHOD_CODES["integrated_gradients"]
    long_run = device.sequence(images_q, images_q[0] * 0, ig, [3], MAX_IG_STEPS, "trapezoid")
    want = sim.run_timeout(program, transport.params, [{"method": ig, "steps": MAX_IG_STEPS}], DDR_LATENCY)
    assert want > sim.MIN_TIMEOUT_CYCLES  # the fixed wait would have stopped this run
    assert transport._timeout(long_run) == want
    assert transport._timeout(device.sequence(images_q, images_q[0] * 0, PREDICT_CODE, [3], 2, "trapezoid")
                              + long_run) == want  # the longest of a call's runs
    assert SimulationTransport.for_project(folder, timeout_cycles=1000)._timeout(long_run) == 1000
