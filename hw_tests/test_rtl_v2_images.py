"""Image batches on the Engine v2 RTL (IMAGES = the Program's batch): every image of a batch
equals the golden model bit for bit for predict and every method but integrated gradients, with
the predicted class and with explicit targets, its result record equals the interpreter's (the
start's counters in the first), with and without AXI stalls; IMAGES outside {0, 1, batch}, an
image batch of integrated gradients and a slot's target beyond the classes are refused; the
executor runs batches the way the interpreter does."""

import numpy as np
import pytest
import torch

from hw_tests.rtl_v2_cases import (IG_STEPS, STALL_PROBABILITY, batch_expected, batch_images, batch_runs,
                                   batch_simulated, compiled, program, runs, shared_params, simulated)
from xaihls.backends.rtl.v2 import sim
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES
from xaihls.plan.engine import EngineV2
from xaihls.sim.interpreter import run_batch

BAD_ARGUMENT = 1 << 2


def _check(name, shape, stalls):
    out = batch_simulated(name, shape, stalls)
    starts = batch_runs(name, shape)
    assert len(out) == len(starts)
    assert any(run["count"] > 1 for run in starts) and any(run["count"] == 1 for run in starts)
    for run, r in zip(starts, out):
        method = None if run["name"] == "predict" else run["name"]
        explicit = run["explicit"]
        want = batch_expected(name, shape, method, explicit)
        assert r["status"] == 0, f"{name} {shape} {run['name']}: status {r['status']:#x}"
        assert len(r["slots"]) == run["count"]
        for s, got in enumerate(r["slots"]):
            k = run["first"] + s
            what = f"{name} {shape} {run['name']} image {k} of a start of {run['count']} (explicit targets: {explicit})"
            assert np.array_equal(got["logits"], want["logits"][k]), f"{what}: logits"
            assert got["result"].tolist() == want["result"][k], f"{what}: result record {got['result'].tolist()}"
            if method is not None:
                bad = int((got["attribution"] != want["attribution"][k]).sum())
                assert bad == 0, f"{what}: attribution differs in {bad} elements"


@pytest.mark.parametrize("name,shape", [("digits", "4x4"), ("random305", "16x8"), ("pools8", "16x8_128bit")])
def test_image_batches_equal_golden_for_predict_and_every_method(name, shape):
    assert program(name, shape).batch == 2
    _check(name, shape, 0.0)


def test_image_batches_equal_golden_under_random_axi_stalls():
    _check("digits_strided_bn", "4x4", STALL_PROBABILITY)


def test_images_outside_one_or_the_batch_an_image_batch_of_ig_and_a_target_too_large_are_refused():
    name, shape = "digits", "4x4"
    by_name = {r["name"]: r for r in runs(name)}
    x_q = quantize_input(compiled(name)[0].qgraph, batch_images(name, shape))[0].numpy()
    pair = {"images": x_q[:2], "targets": [-1, -1]}
    cases = [{**by_name["gradient"], "images_register": 0},             # 0: one image, as 1
             {**by_name["gradient"], "images_register": 3},             # neither 1 nor the batch (2)
             {**by_name["gradient"], "images_register": 258},           # 2 in its low byte
             {**by_name["integrated_gradients"], **pair},               # IG's steps take the slots
             {**by_name["gradient"], **pair, "targets": [-1, program(name, shape).header["classes"]]}]
    out = sim.simulate(program(name, shape), shared_params(shape), cases)
    one = simulated(name, shape)[[r["name"] for r in runs(name)].index("gradient")]
    assert out[0]["status"] == 0 and np.array_equal(out[0]["attribution"], one["attribution"])
    assert out[0]["cycles"] == one["cycles"]
    for r in out[1:]:
        assert r["status"] == BAD_ARGUMENT, f"status {r['status']:#x}"


def test_executor_runs_image_batches_then_single_images_like_the_interpreter():
    """run_rtl_v2 (the rtl executor): 5 images on a batch-2 Program are two image batches and one
    single start; every image's results and counters are the interpreter's, and the cycles list
    shares each start among its images."""
    name, shape = "digits", "4x4"
    acc, x = compiled(name)
    xs = torch.cat([x.roll(k, dims=-2) for k in range(5)])
    x_q = quantize_input(acc.qgraph, xs)[0]
    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0)
    got = sim.run_rtl_v2(prog, engine, x_q, "saliency", None, IG_STEPS, "trapezoid", None, params=shared_params(shape))
    want = run_batch(prog, x_q, METHOD_CODES["saliency"], None, IG_STEPS, "trapezoid", None)
    for g, w in zip(got[:3], want[:3]):
        assert torch.equal(g, w)
    assert got[3] == want[3]
    cycles = got[4]
    assert len(cycles) == 5 and cycles[0] >= cycles[1] and cycles[2] >= cycles[3]
    assert abs(cycles[0] - cycles[1]) < 2 and cycles[4] > cycles[0]
