"""2-D images as their first stride's phases (``capabilities.image_phases``): each model planned for the board with
the view off and on, predict and saliency simulated on the RTL (Verilator), compared with golden bit for bit and
with the cycle model. The 1-D models are benchmarks/one_d.py's.

Run: ``python -m benchmarks.image_phases [--models ds_cnn vww_mobilenet ...] [--board pynq-z2]``, under the shared
heavy-tool lock. Each model (the zoo's, random weights; its first calibration image) is compiled with saliency,
then planned twice: ``image`` (``capabilities.IMAGE_PHASES`` off: the image as the network has it) and ``phases``
(the planner weighs the view and keeps the faster); each plan's Program runs on one Verilator build of its engine
(SystemVerilog DDR model at latency 24). Results in benchmarks/results/image_phases.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import xaihls
from benchmarks.one_d import rtl_rows, sim_runs
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import capabilities
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2
from xaihls.plan.timing import job_cost

RESULTS = Path(__file__).parent / "results"


def measure(name: str, board: str) -> dict:
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                         backends=("golden",), methods=("saliency",))
    runs, golden = sim_runs(acc, entry.calibration()[:1])
    plans = {}
    for label, on in (("image", False), ("phases", True)):
        capabilities.IMAGE_PHASES = on
        try:
            plan = plan_v2(acc.qgraph, load_board(board))
        finally:
            capabilities.IMAGE_PHASES = True
        program, engine = plan.program, plan.engine
        rows, model_engine = rtl_rows(acc, plan, runs, golden)
        first = [sum(job_cost(d, model_engine, lst).cycles for d in getattr(program, lst) if d.layer == 0)
                 for lst in ("forward", "backward")]
        h = program.header
        plans[label] = {"tm": engine.tm, "tn": engine.tn, "image": [h["in_c"], h["in_h"], h["in_w"]],
                        "bram_18k": plan.resources.bram_18k, "lut": plan.resources.lut,
                        "first_layer_model_cycles": first, "runs": rows}
    return {"model": name, "shape": list(entry.input_shape), "board": board, "plans": plans}


def markdown(results: list[dict]) -> str:
    lines = ["| model | plan | engine | image in DDR | BRAM_18K | LUT | first conv fwd / bwd (model) | predict | "
             "saliency | RTL vs model | bit-exact |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for label, p in res["plans"].items():
            runs = p["runs"]
            off = max((r["cycles"] / r["model_cycles"] - 1 for r in runs), key=abs)
            f, b = p["first_layer_model_cycles"]
            lines.append(f"| {res['model']} {tuple(res['shape'])} | {label} | {p['tm']} x {p['tn']} | "
                         f"{' x '.join(map(str, p['image']))} | {p['bram_18k']} | {p['lut']:,} | {f:,} / {b:,} | "
                         f"{runs[0]['cycles']:,} | {runs[1]['cycles']:,} | {off:+.1%} | "
                         f"{'yes' if all(r['bit_exact'] for r in runs) else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["ds_cnn", "vww_mobilenet"])
    ap.add_argument("--board", default="pynq-z2")
    args = ap.parse_args()
    results = [dict(measure(m, args.board), date=str(date.today())) for m in args.models]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image_phases.json").write_text(json.dumps({"results": results}, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
