"""The RTL engine (Verilator via cocotb) equals the golden model bit for bit, with and without AXI stalls."""

import numpy as np
import pytest
import torch

from hw_tests.rtl_cases import IG_STEPS, NETS, STALL_PROBABILITY, TILINGS, compiled, shared_params, simulated
from xaihls.backends.rtl.sim import run_rtl
from xaihls.golden import model as golden


@pytest.mark.parametrize("stalls", [0.0, STALL_PROBABILITY], ids=["no_stalls", "axi_stalls"])
@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"{t[0]}x{t[1]}")
@pytest.mark.parametrize("name", NETS)
def test_rtl_equals_golden_for_predict_and_every_method(name, tiling, stalls):
    runs, out = simulated(name, tiling, stalls)
    for run, r in zip(runs, out):
        what = f"{name} {tiling} {run['name']} stalls={stalls}"
        assert r["status"] == 0, f"{what}: status {r['status']:#x}"
        assert np.array_equal(r["logits"], run["expect_logits"]), f"{what}: logits"
        assert np.array_equal(r["result"][:2], run["expect_result"]), f"{what}: result {r['result']}"
        if "expect_attribution" in run:
            bad = int((r["attribution"] != run["expect_attribution"]).sum())
            assert bad == 0, f"{what}: attribution differs in {bad} of {r['attribution'].size} elements"


def test_stalls_change_timing_not_results():
    _, calm = simulated("digits", (4, 2), 0.0)
    _, stalled = simulated("digits", (4, 2), STALL_PROBABILITY)
    assert all(s["cycles"] > c["cycles"] for s, c in zip(stalled, calm))
    for s, c in zip(stalled, calm):
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
