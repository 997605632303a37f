"""Image batches on Engine v2's RTL (contract v4): one engine start of ``batch`` images against
``batch`` single starts, on Verilator.

Run: ``python -m benchmarks.image_batches [--board pynq-z2] [--methods saliency]``, under the
shared heavy-tool lock. The planner's engine and Program for the reference CIFAR net on the board
(its batched lists, ``batch`` slots), simulated on one Verilator build (xaihls_sim_top,
SystemVerilog DDR model at latency 24, one beat a cycle): ``batch`` calibration images as one
image batch and one at a time, every image compared with the golden model, each start's cycles
next to the cycle model (``timing.method_cycles``). Results in benchmarks/results/image_batches.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2
from xaihls.plan.timing import method_cycles

RESULTS = Path(__file__).parent / "results"


def measure(board: str, methods: list[str | None]) -> dict:
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency", "integrated_gradients"))
    plan = plan_v2(acc.qgraph, load_board(board))
    program, engine = plan.program, plan.engine
    n = program.batch
    model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
    x = entry.calibration()[:n]
    x_q = quantize_input(acc.qgraph, x)[0].numpy()
    table = sim.ig_table(2, "trapezoid", acc.qgraph.width)
    out = {"board": board, "tm": engine.tm, "tn": engine.tn, "batch": n, "runs": []}
    for m in methods:
        code = PREDICT_CODE if m is None else METHOD_CODES[m]
        base = {"baseline": np.zeros_like(x_q[0]), "ig_table": table, "method": code, "target": -1, "steps": 2}
        runs = [{**base, "image": x_q[0], "images": x_q, "targets": [-1] * n}]
        runs += [{**base, "image": x_q[k]} for k in range(n)]
        res = sim.simulate(program, rtl_params(program, engine), runs)
        g = acc.run(x, m)
        images = list(enumerate(res[0]["slots"])) + list(enumerate(res[1:]))  # (image, its results)
        exact = all(r["status"] == 0 for r in res) and all(
            np.array_equal(s["logits"], g.logits[k].numpy())
            and (m is None or np.array_equal(s["attribution"], g.attribution[k].numpy()))
            for k, s in images)
        single = [r["cycles"] for r in res[1:]]
        out["runs"].append({
            "run": m or "predict", "batch_start_cycles": res[0]["cycles"], "single_start_cycles": single,
            "batch_over_singles": res[0]["cycles"] / sum(single),
            "model_batch_start": method_cycles(program, model_engine, m, images=n),
            "model_single_start": method_cycles(program, model_engine, m), "bit_exact": bool(exact)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--methods", nargs="+", default=["predict", "saliency"])
    args = ap.parse_args()
    result = measure(args.board, [None if m == "predict" else m for m in args.methods])
    result["date"] = date.today().isoformat()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image_batches.json").write_text(json.dumps(result, indent=1) + "\n")
    for r in result["runs"]:
        print(f"{r['run']}: one start of {result['batch']} images {r['batch_start_cycles']:,} cycles "
              f"(model {r['model_batch_start']:,}), {result['batch']} single starts {sum(r['single_start_cycles']):,} "
              f"(model {result['batch'] * r['model_single_start']:,}): {r['batch_over_singles']:.3f}; "
              f"bit-exact: {'yes' if r['bit_exact'] else 'NO'}")


if __name__ == "__main__":
    main()
