"""Image batches on Engine v2's RTL (contract v4; slot jobs, contract v10): one engine start of
``batch`` images against ``batch`` single starts, on Verilator; and beside it Captum's float
saliency on this CPU.

Run: ``python -m benchmarks.image_batches [--boards pynq-z2 ultra96-v2] [--methods saliency]``,
under the shared heavy-tool lock. The planner's engine and Program for the reference CIFAR net on the board
(its batched lists, ``batch`` slots), simulated on one Verilator build (xaihls_sim_top,
SystemVerilog DDR model at latency 24, one beat a cycle): ``batch`` calibration images as one
image batch and one at a time, every image compared with the golden model, each start's cycles
next to the cycle model (``timing.method_cycles``); images per second at the plan's clock. The
image batch also on the same engine's Program with ``lowering.SLOT_JOBS`` off (a convolution of
the batched lists as a job a slot, as before contract 10), on the same build.
Captum: float saliency of the same net on 64 random images, the median of five runs on this CPU
(torch's threads as set). Results in benchmarks/results/image_batches.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.executor import quantize_input
from xaihls.frontend.reference import graph_to_module
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2
from xaihls.plan.timing import method_cycles
from xaihls.reports.fidelity import captum_attribute

from benchmarks.switch import switched_off

RESULTS = Path(__file__).parent / "results"


def measure(board: str, methods: list[str | None]) -> dict:
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency", "integrated_gradients"))
    plan = plan_v2(acc.qgraph, load_board(board))
    program, engine = plan.program, plan.engine
    apart = switched_off(program, acc.qgraph, engine, "SLOT_JOBS")
    params = rtl_params(program, engine).covering(rtl_params(apart, engine))
    n = program.batch
    model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
    x = entry.calibration()[:n]
    x_q = quantize_input(acc.qgraph, x)[0].numpy()
    table = sim.ig_table(2, "trapezoid", acc.qgraph.width)
    out = {"board": board, "tm": engine.tm, "tn": engine.tn, "clock_mhz": engine.clock_mhz, "batch": n, "runs": []}
    for m in methods:
        code = PREDICT_CODE if m is None else METHOD_CODES[m]
        base = {"baseline": np.zeros_like(x_q[0]), "ig_table": table, "method": code, "target": -1, "steps": 2}
        batch_run = {**base, "image": x_q[0], "images": x_q, "targets": [-1] * n}
        res = sim.simulate(program, params, [batch_run] + [{**base, "image": x_q[k]} for k in range(n)])
        res_apart = sim.simulate(apart, params, [batch_run])
        g = acc.run(x, m)
        images = [*enumerate(res[0]["slots"]), *enumerate(res_apart[0]["slots"]), *enumerate(res[1:])]
        exact = all(r["status"] == 0 for r in res + res_apart) and all(
            np.array_equal(s["logits"], g.logits[k].numpy())
            and (m is None or np.array_equal(s["attribution"], g.attribution[k].numpy()))
            for k, s in images)
        single = [r["cycles"] for r in res[1:]]
        out["runs"].append({
            "run": m or "predict", "batch_start_cycles": res[0]["cycles"], "single_start_cycles": single,
            "batch_over_singles": res[0]["cycles"] / sum(single),
            "batch_start_cycles_job_a_slot": res_apart[0]["cycles"],
            "model_batch_start": method_cycles(program, model_engine, m, images=n),
            "model_batch_start_job_a_slot": method_cycles(apart, model_engine, m, images=n),
            "model_single_start": method_cycles(program, model_engine, m), "bit_exact": bool(exact)})
    return out


def captum_rate(batch: int = 64, repeats: int = 5) -> dict:
    """Captum's float saliency of cifar_ref on this CPU: images per second (median of ``repeats``)."""
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency",))
    module = graph_to_module(acc.graph)
    x = torch.rand((batch, *entry.input_shape), generator=torch.Generator().manual_seed(0))
    target = acc.predict(x).argmax(1)
    captum_attribute(module, x, "saliency", target)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        captum_attribute(module, x, "saliency", target)
        times.append(time.perf_counter() - t)
    return {"batch": batch, "repeats": repeats, "threads": torch.get_num_threads(),
            "img_s": batch / statistics.median(times)}


def markdown(results: list[dict], captum: dict) -> str:
    lines = ["| board | Tm x Tn | clock | batch | run | single starts (model) | one start, a job a slot (model) | "
             "one start, slot jobs (model) | batch / single cycles | throughput | img/s single | img/s batch | "
             "batch vs Captum | bit-exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        n, hz = res["batch"], res["clock_mhz"] * 1e6
        for r in res["runs"]:
            single = sum(r["single_start_cycles"])
            rate = n * hz / r["batch_start_cycles"]
            vs_captum = f"{rate / captum['img_s']:.2f}x" if r["run"] == "saliency" else "-"
            lines.append(
                f"| {res['board']} | {res['tm']} x {res['tn']} | {res['clock_mhz']:g} MHz | {n} | {r['run']} | {single:,} "
                f"({n * r['model_single_start']:,}) | {r['batch_start_cycles_job_a_slot']:,} "
                f"({r['model_batch_start_job_a_slot']:,}) | {r['batch_start_cycles']:,} ({r['model_batch_start']:,}) | "
                f"{r['batch_over_singles']:.3f} | **{1 / r['batch_over_singles']:.2f}x** | {n * hz / single:,.0f} | "
                f"{rate:,.0f} | {vs_captum} | "
                f"{'yes' if r['bit_exact'] else 'NO'} |")
    lines.append(f"\nCaptum float saliency, cifar_ref, batch {captum['batch']}, {captum['threads']} threads: "
                 f"{captum['img_s']:,.0f} images/s (median of {captum['repeats']}).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["pynq-z2", "ultra96-v2"])
    ap.add_argument("--methods", nargs="+", default=["predict", "saliency"])
    args = ap.parse_args()
    results = [measure(b, [None if m == "predict" else m for m in args.methods]) for b in args.boards]
    captum = captum_rate()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image_batches.json").write_text(json.dumps(
        {"date": date.today().isoformat(), "results": results, "captum": captum}, indent=1) + "\n")
    print(markdown(results, captum))


if __name__ == "__main__":
    main()
