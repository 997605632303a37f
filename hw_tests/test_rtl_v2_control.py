"""The Engine v2 control interface: a bus error reaches the status and still ends the run; a start
while busy is ignored; a Grad-CAM method where the Program or the start cannot run it, and a method
code beyond the last, are refused."""

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import batch_images, compiled, expected, program, runs, shared_params
from xaihls.backends.rtl.v2 import sim
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES
from xaihls.plan.contract import Status

BAD_ARGUMENT = 1 << Status.BAD_ARGUMENT


def _gradient(name: str = "digits") -> dict:
    return next(r for r in runs(name) if r["name"] == "gradient")


@pytest.mark.parametrize("memory", ["sv", "axiram"])
def test_slverr_in_the_weights_sets_status_bit_0_and_still_raises_done(memory):
    """SLVERR from the SystemVerilog DDR's error window, and from cocotbext-axi (protocol mode)."""
    prog = program("digits", "4x4")
    weights = next(r for r in prog.regions if r.name.endswith(".weight"))
    # the testbench raises if no done (interrupt) comes; the status is read after it
    out = sim.simulate(prog, shared_params("4x4"), [_gradient()], slverr=(weights.addr, weights.addr + weights.size),
                       check=False, memory=memory)[0]
    assert out["status"] & 1, f"status {out['status']:#x}: bus error bit expected"
    assert out["status"] & ~1 == 0


def test_a_start_while_busy_is_ignored():
    plain = _gradient()
    restarted = {**plain, "restart_after": 3000}  # mid forward pass
    out_plain, out = sim.simulate(program("digits", "4x4"), shared_params("4x4"), [plain, restarted])
    busy = int(out["busy_ctrl"][0])
    assert busy & 0b0101 == 0b0001, f"control register {busy:#x} while running: ap_start=1, ap_idle=0"
    after_ctrl, interrupt = (int(v) for v in out["after_ctrl"])
    # one done only: after it was read and acknowledged the engine stays idle with no new done
    assert after_ctrl & 0b0111 == 0b0100 and interrupt == 0, f"after: control {after_ctrl:#x}, irq {interrupt}"
    want = next(e for e in expected("digits", "4x4") if e["name"] == "gradient")
    assert out["status"] == 0 and np.array_equal(out["attribution"], want["attribution"])
    assert out["cycles"] == out_plain["cycles"], "the ignored start must not disturb the run"


def test_grad_cam_on_an_image_batch_or_without_its_list_and_a_method_code_above_8_are_refused():
    """BAD_ARGUMENT, as the interpreter refuses them: Grad-CAM and guided Grad-CAM run one image a start
    (IMAGES = the Program's batch is refused, as for integrated gradients), need the Program's Grad-CAM
    list (digits is compiled without it), and 9 is no method; the same Grad-CAM start of one image runs."""
    name, shape = "digits_resnet", "4x4"
    by_name = {r["name"]: r for r in runs(name)}
    x_q = quantize_input(compiled(name)[0].qgraph, batch_images(name, shape))[0].numpy()
    assert program(name, shape).batch == 2 and program(name, shape).cam and not program("digits", "4x4").cam
    pair = {"images": x_q[:2], "targets": [-1, -1]}
    cases = [by_name["grad_cam"], {**by_name["grad_cam"], **pair}, {**by_name["guided_grad_cam"], **pair},
             {**by_name["gradient"], "method": max(METHOD_CODES.values()) + 1}]
    out = sim.simulate(program(name, shape), shared_params(shape), cases)
    want = next(e for e in expected(name, shape) if e["name"] == "grad_cam")
    assert out[0]["status"] == 0 and np.array_equal(out[0]["attribution"], want["attribution"])
    for case, r in zip(cases[1:], out[1:]):
        assert r["status"] == BAD_ARGUMENT, f"method {case['method']}: status {r['status']:#x}"
    gradient = _gradient()
    without = [{**gradient, "method": METHOD_CODES[m], "name": m} for m in ("grad_cam", "guided_grad_cam")]
    for case, r in zip(without, sim.simulate(program("digits", "4x4"), shared_params("4x4"), without)):
        assert r["status"] == BAD_ARGUMENT, f"{case['name']} on a Program without the list: status {r['status']:#x}"


def test_an_engine_built_for_a_program_without_integrated_gradients_keeps_no_sums_and_refuses_them():
    """A Program compiled without integrated gradients is built with no IG sums (INPUT_ELEMS = 0: the
    accumulators of lanes 0..E-1 only as deep as the others), runs its methods bit-exact, and an
    integrated-gradients start on it is refused with BAD_ARGUMENT."""
    import xaihls
    from xaihls.backends.rtl.v2.params import rtl_params
    from xaihls.methods import PREDICT_CODE
    from xaihls.models.zoo import get_zoo_model
    from xaihls.plan.lowering import lower
    from hw_tests.rtl_v2_cases import IG_STEPS, SHAPES

    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                         methods=("saliency", "guided_backprop"), backends=("golden",))
    prog = lower(acc.qgraph, *SHAPES["4x4"], batch=1)
    params = rtl_params(prog)
    with_ig = program("digits", "4x4")  # compiled with integrated gradients: sums of its input, at least
    assert params.INPUT_ELEMS == 0 and rtl_params(with_ig, ig_exact=True).INPUT_ELEMS == prog.header["input_elems"]
    assert rtl_params(with_ig).INPUT_ELEMS >= prog.header["input_elems"]
    x = entry.samples()[0][:1]
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    table = sim.ig_table(IG_STEPS, "trapezoid", acc.qgraph.width)
    cases = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": table, "target": -1, "steps": IG_STEPS,
              "name": name, "method": PREDICT_CODE if name == "predict" else METHOD_CODES[name]}
             for name in ("predict", "saliency", "guided_backprop", "integrated_gradients")]
    out = sim.simulate(prog, params, cases, check=False)
    for case, r in zip(cases[:3], out):
        g = acc.run(x, None if case["name"] == "predict" else case["name"])
        assert r["status"] == 0, f"{case['name']}: status {r['status']:#x}"
        assert np.array_equal(r["logits"], g.logits[0].numpy()), case["name"]
        if case["name"] != "predict":
            assert np.array_equal(r["attribution"], acc.graph.as_maps(g.attribution)[0].numpy()), case["name"]
    assert out[3]["status"] == BAD_ARGUMENT, f"integrated gradients: status {out[3]['status']:#x}"
