"""The RTL engine (Verilator via cocotb) equals the golden model bit for bit: with the SystemVerilog
DDR at its default latency, with random stalls, at latency 1 and 100, and (the protocol test)
with cocotbext-axi's AxiRam pausing every channel of both buses."""

import numpy as np
import pytest
import torch

from hw_tests.rtl_cases import IG_STEPS, NETS, STALL_PROBABILITY, TILINGS, compiled, shared_params, simulated
from xaihls.backends.rtl.sim import run_rtl
from xaihls.golden import model as golden
from xaihls.plan.engine import DDR_LATENCY


DDR_SETTINGS = {  # (stall probability, DDR latency, memory model)
    "no_stalls": (0.0, None, "sv"),
    "axi_stalls": (STALL_PROBABILITY, None, "sv"),
    "latency1": (0.0, 1, "sv"),
    "latency100": (0.0, 100, "sv"),
}


def _check_bits(runs, out, where):
    for run, r in zip(runs, out):
        what = f"{where} {run['name']}"
        assert r["status"] == 0, f"{what}: status {r['status']:#x}"
        assert np.array_equal(r["logits"], run["expect_logits"]), f"{what}: logits"
        assert np.array_equal(r["result"][:2], run["expect_result"]), f"{what}: result {r['result']}"
        if "expect_attribution" in run:
            bad = int((r["attribution"] != run["expect_attribution"]).sum())
            assert bad == 0, f"{what}: attribution differs in {bad} of {r['attribution'].size} elements"


@pytest.mark.parametrize("ddr", list(DDR_SETTINGS))
@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"{t[0]}x{t[1]}")
@pytest.mark.parametrize("name", NETS)
def test_rtl_equals_golden_for_predict_and_every_method(name, tiling, ddr):
    runs, out = simulated(name, tiling, *DDR_SETTINGS[ddr])
    assert out.memory == "sv" and out.ddr_latency == (DDR_SETTINGS[ddr][1] or DDR_LATENCY)
    _check_bits(runs, out, f"{name} {tiling} {ddr}")


def test_protocol_mode_cocotbext_axi_with_stalls_equals_golden():
    """The engine's AXI4 master against cocotbext-axi's AxiRam, every channel of both buses pausing."""
    runs, out = simulated("digits", (4, 2), STALL_PROBABILITY, None, "axiram")
    assert out.memory == "axiram"
    _check_bits(runs, out, "digits (4, 2) AxiRam with stalls")
    _, calm = simulated("digits", (4, 2), 0.0)
    assert all(s["cycles"] > c["cycles"] for s, c in zip(out, calm))


@pytest.mark.parametrize("slow", [(STALL_PROBABILITY, None), (0.0, 100)], ids=["stalls", "latency100"])
def test_stalls_and_latency_change_timing_not_results(slow):
    _, calm = simulated("digits", (4, 2), 0.0, 1)
    _, slowed = simulated("digits", (4, 2), *slow)
    assert all(s["cycles"] > c["cycles"] for s, c in zip(slowed, calm))
    for s, c in zip(slowed, calm):
        assert np.array_equal(s["attribution"], c["attribution"]) and np.array_equal(s["logits"], c["logits"])


def test_run_rtl_mirrors_run_batch_with_target_baseline_and_rule():
    """The backend entry point: two images, a given target, a baseline and another Riemann rule."""
    acc, _ = compiled("digits_strided_bn", (8, 4))
    from xaihls.models.zoo import get_zoo_model

    x = get_zoo_model("digits_strided_bn").samples()[0][:2]
    base = torch.full_like(x, 0.25)
    g = acc.run(x, "integrated_gradients", target=3, steps=4, baseline=base, rule="middle")
    qg = acc.qgraph
    x_q = golden.quantize_input(qg, x, golden.Saturations())
    base_q = golden.quantize_baseline(qg, base, x_q)
    p = acc.plan
    logits, used, attr, _, cycles = run_rtl(p.program, p.engine, x_q, "integrated_gradients",
                                         torch.tensor([3, 3]), 4, "middle", base_q, params=shared_params((8, 4)))
    assert torch.equal(logits, g.logits) and torch.equal(used, g.target) and torch.equal(attr, g.attribution)
    assert len(cycles) == 2 and all(c > 0 for c in cycles)
    assert IG_STEPS >= 2
