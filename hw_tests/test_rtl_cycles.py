"""Verilator cycles per descriptor against the cost model (xaihls/plan/cost.py), both recorded.

At the simulated DDR's default latency, at 1 and at 100 cycles, every descriptor of a forward
and a backward pass is within 10% of cost.job_cost at that latency, and a whole prediction
within 10% of the planner's figure. The tables go to the test output (pytest -s, or -rA).
"""

import json
from dataclasses import replace

import pytest

from hw_tests.rtl_cases import NETS, TILINGS, compiled, simulated
from xaihls.backends.rtl.cycles import TOLERANCE, compare, markdown
from xaihls.backends.rtl.project import model_cycles
from xaihls.plan.engine import DDR_LATENCY


@pytest.mark.parametrize("ddr_latency", [DDR_LATENCY, 1, 100], ids=lambda n: f"latency{n}")
@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"{t[0]}x{t[1]}")
@pytest.mark.parametrize("name", NETS)
def test_cycles_per_descriptor_match_the_cost_model(name, tiling, ddr_latency, tmp_path):
    acc, _ = compiled(name, tiling)
    runs, out = simulated(name, tiling, 0.0, None if ddr_latency == DDR_LATENCY else ddr_latency)
    assert out.ddr_latency == ddr_latency
    engine = replace(acc.plan.engine, ddr_latency=ddr_latency)
    gradient = next(o for r, o in zip(runs, out) if r["name"] == "gradient")
    rows = compare(acc.plan.program, engine, gradient["profile"])
    names = [layer.name for layer in acc.graph.layers] + ["logits"]
    table = markdown(rows, names)
    print(f"\n{name} Tm x Tn = {tiling[0]} x {tiling[1]}, DDR latency {ddr_latency}\n{table}")
    (tmp_path / "cycles.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    assert len(rows) == len(acc.plan.program.forward) + len(acc.plan.program.backward)
    bad = [r for r in rows if not r.within]
    assert not bad, f"outside {TOLERANCE:.0%}:\n{markdown(bad, names)}"
    # whole runs too: start to done against the planner's method cycles (at this latency)
    for run, o in zip(runs, out):
        method = run["name"]
        if ddr_latency == DDR_LATENCY and method == "predict":
            assert model_cycles(acc.plan.program, engine, "predict", 0) == acc.plan.method_cycles["predict"]
        model = model_cycles(acc.plan.program, engine, method, run["steps"])
        assert abs(o["cycles"] - model) <= TOLERANCE * model, (method, o["cycles"], model)
