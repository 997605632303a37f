"""The input buffer deepened for kept inputs (``planner_v2.KEEP_DEPTH``): each zoo model planned for the board with
the planner weighing only the depth its tiles need, and also the depth its kept inputs take (docs/engine_v2.md,
"Inputs kept across m-tiles"); the chosen engine, view and figures of each, by the cycle model and the fitted
resource model. The Verilator runs of the models whose plan changes are benchmarks/image_phases.py's.

Run: ``python -m benchmarks.keep_depth [--board pynq-z2] [--models ...]`` (a few minutes; every method compiled, the
zoo's random weights or bundled ones, 16 calibration images). Results in benchmarks/results/keep_depth.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import xaihls
from xaihls.models.zoo import ZOO, get_zoo_model
from xaihls.plan import planner_v2
from xaihls.plan.boards import load_board

RESULTS = Path(__file__).parent / "results"


def plan_figures(acc, board: str, keep_depth: bool) -> dict:
    planner_v2.KEEP_DEPTH = keep_depth
    try:
        p = planner_v2.plan_v2(acc.qgraph, load_board(board))
    finally:
        planner_v2.KEEP_DEPTH = True
    h = p.program.header
    return {"array": [p.engine.tm, p.engine.tn], "in_depth": p.engine.in_depth,
            "image": [h["in_c"], h["in_h"], h["in_w"]], "bram_18k": p.resources.bram_18k, "lut": p.resources.lut,
            "cycles": p.method_cycles}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--models", nargs="+", default=list(ZOO))
    args = ap.parse_args()
    rows = []
    print("| model | plan | array | input words | image in DDR | BRAM_18K | predict | saliency | "
          "integrated_gradients |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        entry = get_zoo_model(name)
        acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                             backends=("golden",))
        row = {"model": name, "before": plan_figures(acc, args.board, False),
               "after": plan_figures(acc, args.board, True)}
        rows.append(row)
        for label in ("before", "after"):
            f = row[label]
            c = f["cycles"]
            print(f"| {name} | {label} | {f['array'][0]} x {f['array'][1]} | {f['in_depth']} | "
                  f"{' x '.join(map(str, f['image']))} | {f['bram_18k']} | {c['predict']:,} | {c['saliency']:,} | "
                  f"{c['integrated_gradients']:,} |", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "keep_depth.json").write_text(json.dumps({"board": args.board, "date": str(date.today()),
                                                         "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
