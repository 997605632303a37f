"""Grad-CAM and guided Grad-CAM on the Engine v2 RTL (Verilator): what a run costs beside
inference and saliency, and the Grad-CAM list's jobs against the cycle model.

Run: ``python -m benchmarks.grad_cam [--models resnet8 mobilenet_v2_tiny] [--board pynq-z2]``,
under the shared heavy-tool lock. For each zoo model (random weights, one calibration image): the
planner's engine and Program for the board, compiled with saliency and both Grad-CAM methods (the
default layer: the last convolution), simulated on one Verilator build (SystemVerilog DDR model at
latency 24) for predict, saliency, grad_cam and guided_grad_cam; every run compared with the golden
model bit for bit, every run's cycles with ``timing.method_cycles`` and every job of the Grad-CAM
list (profile phase "grad-cam") and of the backward prefix before it with ``timing.job_cost``.
Results in benchmarks/results/grad_cam.json.
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
from xaihls.plan.timing import job_cost, method_cycles

RESULTS = Path(__file__).parent / "results"
RUNS = (None, "saliency", "grad_cam", "guided_grad_cam")


def measure(model: str, board: str) -> dict:
    entry = get_zoo_model(model)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency", "grad_cam", "guided_grad_cam"))
    plan = plan_v2(acc.qgraph, load_board(board))
    program, engine = plan.program, plan.engine
    model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
    x = entry.calibration()[:1]
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": sim.ig_table(2, "trapezoid", acc.qgraph.width),
             "target": -1, "steps": 2, "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in RUNS]
    res = sim.simulate(program, rtl_params(program, engine), runs)
    rows = []
    for m, r in zip(RUNS, res):
        g = acc.run(x, m) if m else acc.run(x)
        exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy())
                 and (m is None or np.array_equal(r["attribution"], g.attribution[0].numpy())))
        rows.append({"run": m or "predict", "cycles": r["cycles"], "model_cycles": method_cycles(program, model_engine, m),
                     "bit_exact": bool(exact)})
    layers = acc.qgraph.graph.layers
    names = [layer.name for layer in layers] + ["logits"]
    grad_cam = res[RUNS.index("grad_cam")]["profile"]
    prefix = [c for k, c in grad_cam if k == "backward"]
    listed = [c for k, c in grad_cam if k == "grad-cam"]
    jobs = []
    for kind, direction, descs, measured in (("backward prefix", "backward", program.backward, prefix),
                                             ("grad-cam list", "cam", program.cam, listed)):
        assert len(measured) == (program.header["n_backward_cam"] if kind == "backward prefix" else len(descs)), kind
        for i, (d, cycles) in enumerate(zip(descs, measured)):
            model_cycles = job_cost(d, model_engine, direction).cycles
            jobs.append({"list": kind, "index": i, "layer": names[d.layer], "rtl": cycles, "model": model_cycles,
                         "deviation": cycles / model_cycles - 1})
    return {"model": model, "board": board, "tm": engine.tm, "tn": engine.tn, "cam_layer": acc.qgraph.cam_layer,
            "runs": rows, "jobs": jobs}


def markdown(result: dict) -> str:
    predict = result["runs"][0]["cycles"]
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']}; Grad-CAM layer "
             f"'{result['cam_layer']}')", "", "| run | cycles | x predict | model | RTL vs model | bit-exact |",
             "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['run']} | {r['cycles']:,} | {r['cycles'] / predict:.2f} | {r['model_cycles']:,} | "
                     f"{r['cycles'] / r['model_cycles'] - 1:+.1%} | {'yes' if r['bit_exact'] else 'NO'} |")
    lines += ["", "| list | # | layer | RTL cycles | model | RTL vs model |", "|---|---|---|---|---|---|"]
    lines += [f"| {j['list']} | {j['index']} | {j['layer']} | {j['rtl']:,} | {j['model']:,} | {j['deviation']:+.1%} |"
              for j in result["jobs"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet8", "mobilenet_v2_tiny"])
    ap.add_argument("--board", default="pynq-z2")
    args = ap.parse_args()
    results = [measure(m, args.board) for m in args.models]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grad_cam.json").write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2)
                                           + "\n")
    for r in results:
        print(markdown(r) + "\n")


if __name__ == "__main__":
    main()
