"""Verilator cycles per descriptor against the cost model (xaihls/plan/cost.py), both recorded.

Every descriptor of a forward and a backward pass is within 10% of cost.job_cost, and a whole
prediction within 10% of the planner's figure. The tables go to the test output (pytest -s, or -rA).
"""

import json

import pytest

from hw_tests.rtl_cases import NETS, TILINGS, compiled, simulated
from xaihls.backends.rtl.cycles import TOLERANCE, compare, markdown


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"{t[0]}x{t[1]}")
@pytest.mark.parametrize("name", NETS)
def test_cycles_per_descriptor_match_the_cost_model(name, tiling, tmp_path):
    acc, _ = compiled(name, tiling)
    runs, out = simulated(name, tiling, 0.0)
    gradient = next(o for r, o in zip(runs, out) if r["name"] == "gradient")
    rows = compare(acc.plan.program, acc.plan.engine, gradient["profile"])
    names = [layer.name for layer in acc.graph.layers] + ["logits"]
    table = markdown(rows, names)
    print(f"\n{name} Tm x Tn = {tiling[0]} x {tiling[1]}\n{table}")
    (tmp_path / "cycles.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    assert len(rows) == len(acc.plan.program.forward) + len(acc.plan.program.backward)
    bad = [r for r in rows if not r.within]
    assert not bad, f"outside {TOLERANCE:.0%}:\n{markdown(bad, names)}"
    # the whole prediction too: start to done against the planner's method cycles
    predict = next(o for r, o in zip(runs, out) if r["name"] == "predict")
    model = acc.plan.method_cycles["predict"]
    assert abs(predict["cycles"] - model) <= TOLERANCE * model, (predict["cycles"], model)
