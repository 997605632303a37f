"""The reference net's Engine v2 plan on every board: the engine, cycles, latency, utilisation,
resources, and the candidates the planner weighed on the boards the issue names.

Run: ``python -m benchmarks.plan`` (Markdown on stdout, JSON in benchmarks/results/plan.json).
Figures are the models' estimates: cycles from the v2 cycle model (xaihls/plan/timing.py, held to
10% of Verilator per job by hw_tests/test_rtl_v2_cycles.py), resources from the model fitted on
yosys (xaihls/plan/resource_model.json, held to 15% by tests/test_resources.py), not measurements.
"""

from __future__ import annotations

import json
import statistics
from datetime import date
from pathlib import Path

import xaihls
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import list_boards
from xaihls.plan.planner_v2 import describe_candidates, plan_v2 as plan

RESULTS = Path(__file__).parent / "results"
CANDIDATE_BOARDS = ("pynq-z2", "zcu104", "alveo-u250")


def main() -> None:
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(),
                         methods=("saliency", "integrated_gradients"), ig_steps=32)
    rows = []
    candidates = {}
    for board in list_boards():
        p = plan(acc.qgraph, board)
        e = p.engine
        conv_fwd = [c.utilization(e.tm, e.tn) for c in p.forward_costs
                    if c.op == "conv" and c.layer < len(acc.graph.layers)
                    and acc.graph.layers[c.layer].__class__.__name__ == "Conv2d"]
        r = p.resources.as_dict()
        rows.append({
            "board": board.name, "MHz": e.clock_mhz, "AXI bits": e.axi_data_bits, "Tm x Tn": f"{e.tm}x{e.tn}",
            "buffers in/out": f"{e.in_depth}/{e.out_depth}",
            "inference cycles": p.method_cycles["predict"], "inference ms": p.latency_ms("predict"),
            "saliency ms": p.latency_ms("saliency"), "IG-32 ms": p.latency_ms("integrated_gradients"),
            "IG batch (largest fitting)": f"{p.program.batch} ({max(p.batch_cycles, default=1)})",
            "IG-32/saliency": p.method_cycles["integrated_gradients"] / p.method_cycles["saliency"],
            "conv util min/median": f"{min(conv_fwd):.0%}/{statistics.median(conv_fwd):.0%}",
            "saliency/inference": p.method_cycles["saliency"] / p.method_cycles["predict"],
            "DSP": r["DSP"], "BRAM_18K": r["BRAM_18K"], "LUT": r["LUT"], "FF": r["FF"],
            "kept x smaller": p.kept.ratio,
        })
        if board.name in CANDIDATE_BOARDS:
            candidates[board.name] = {"table": describe_candidates(p), **{
                k: v for k, v in p.summary().items() if k in ("candidates", "slack", "cap")}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "plan.json").write_text(json.dumps({"date": date.today().isoformat(), "rows": rows,
                                                   "candidates": candidates}, indent=2) + "\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = []
        for k in keys:
            v = row[k]
            cells.append(f"{v:,.3f}" if isinstance(v, float) and k.endswith("ms") else
                         f"{v:.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
        print("| " + " | ".join(cells) + " |")
    for name, c in candidates.items():
        print(f"\n{name}: the engines weighed (workload: predict + saliency + IG-32)\n\n```\n{c['table']}\n```")


if __name__ == "__main__":
    main()
