"""The reference net's plan on every board: tiling, cycles, latency, utilisation, resources.

Run: ``python -m benchmarks.plan`` (Markdown on stdout, JSON in benchmarks/results/plan.json).
Figures are the cost model's estimates (docs/program.md, "Schedule"), not measurements.
"""

from __future__ import annotations

import json
import statistics
from datetime import date
from pathlib import Path

import xaihls
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import list_boards
from xaihls.plan.planner import plan

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(),
                         methods=("saliency", "integrated_gradients"), ig_steps=32)
    rows = []
    for board in list_boards():
        p = plan(acc.qgraph, board)
        e = p.engine
        conv_fwd = [c.utilization(e.tm, e.tn) for c in p.forward_costs
                    if c.op == "conv" and acc.graph.layers[c.layer].__class__.__name__ == "Conv2d"]
        r = p.resources.as_dict()
        rows.append({
            "board": board.name, "MHz": e.clock_mhz, "Tm x Tn": f"{e.tm}x{e.tn}",
            "buffers in/out": f"{e.in_depth}/{e.out_depth}",
            "inference cycles": p.method_cycles["predict"], "inference ms": p.latency_ms("predict"),
            "saliency ms": p.latency_ms("saliency"), "IG-32 ms": p.latency_ms("integrated_gradients"),
            "conv util min/median": f"{min(conv_fwd):.0%}/{statistics.median(conv_fwd):.0%}",
            "saliency/inference": p.method_cycles["saliency"] / p.method_cycles["predict"],
            "DSP": r["DSP"], "BRAM_18K": r["BRAM_18K"], "LUT": r["LUT"], "FF": r["FF"],
            "kept x smaller": p.kept.ratio,
        })
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "plan.json").write_text(json.dumps({"date": date.today().isoformat(), "rows": rows}, indent=2) + "\n")
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


if __name__ == "__main__":
    main()
