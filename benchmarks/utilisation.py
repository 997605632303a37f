"""MAC utilisation of Engine v2 on whole runs and per job (issue 13's measure), on Verilator.

Run: ``python -m benchmarks.utilisation [--boards pynq-z2 ultra96-v2] [--ig-steps 32] [--model cifar_ref]``,
under the shared heavy-tool lock. For each board: the planner's engine and Program for the zoo net
(the reference CIFAR net by default; ``ds_cnn`` for the depthwise-separable one) (integrated
gradients' steps in batches on its batched lists), and beside it the same
engine's Program without batched lists (one step at a time, as before), tiled the same way, both
simulated on the same
Verilator build (xaihls_sim_top, SystemVerilog DDR model at latency 24, one beat a cycle) for
predict, saliency and integrated gradients, every run compared with the golden model.

Utilisation = the network's multiply-accumulates (``timing.network_macs``: real channels, taps
inside the map; pool, copy and post-processing jobs count none) / (Tm x Tn x cycles). Beside it,
the cap of the dataflow (``run_bound``): the same MACs over the cycles no schedule that keeps the
maps in DDR between jobs and streams each job's weights could beat. Results in
benchmarks/results/utilisation.json (utilisation_<model>.json for another model).
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import date
from pathlib import Path

import numpy as np

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.cycles import compare
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.backends.rtl.v2.project import method_macs
from xaihls.executor import quantize_input
from xaihls.frontend.ir import Add, Conv2d
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.plan.lowering import encode, is_depthwise, lower_jobs
from xaihls.plan import timing
from xaihls.plan.planner_v2 import _row_tile_cost, plan_v2
from xaihls.plan.timing import job_cost, method_cycles

RESULTS = Path(__file__).parent / "results"
METHODS = (None, "saliency", "integrated_gradients")


def run_macs(program, engine, method: str | None, steps: int) -> int:
    layers = program.qgraph.graph.layers
    per_job = ([job_cost(d, engine, "forward", layers=layers).macs for d in program.forward],
               [job_cost(d, engine, "backward", layers=layers).macs for d in program.backward])
    return method_macs(per_job, method or "predict", steps)


def run_bound(program, engine, method: str | None, steps: int) -> int:
    """The run's jobs' bounds summed (``timing.job_cost(...).bound_cycles``: the larger of a job's
    MACs on the whole array and its DDR reads or writes at the bus's rate, each map and weight moved
    once): no schedule of this dataflow (maps in DDR between jobs, weights streamed by each job)
    takes fewer cycles, so useful MACs / (Tm x Tn x this) caps the run's utilisation. The header,
    the post-processing and the result record are left out, so the cap is generous."""
    def jobs(ds, direction):
        return sum(job_cost(d, engine, direction).bound_cycles for d in ds)
    forward = jobs(program.forward, "forward")
    if method is None:
        return forward
    backward = jobs(program.backward, "backward")
    if method != "integrated_gradients":
        return forward + backward
    full, rest = timing.ig_step_batches(steps, program.batch)
    batched = jobs(program.forward_batch, "forward") + jobs(program.backward_batch, "backward") if full else 0
    return forward + full * batched + rest * (forward + backward)


def measure(board: str, ig_steps: int, model: str = "cifar_ref") -> dict:
    entry = get_zoo_model(model)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency", "integrated_gradients"), ig_steps=ig_steps)
    plan = plan_v2(acc.qgraph, load_board(board))
    engine = plan.engine
    single = encode(lower_jobs(acc.qgraph, plan.program.shape), plan.program.buffers,
                    _row_tile_cost(timing, engine, {}))
    programs = {"one step at a time": single, f"batches of {plan.program.batch} steps": plan.program}
    params = rtl_params(single, engine).covering(rtl_params(plan.program, engine))
    x = entry.calibration()[:1]
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    table = sim.ig_table(ig_steps, "trapezoid", acc.qgraph.width)
    golden = {m: acc.run(x, m, steps=ig_steps) if m else acc.run(x) for m in METHODS}
    layers = acc.qgraph.graph.layers
    names = [layer.name for layer in layers] + ["logits"]
    tm_tn = engine.tm * engine.tn
    out = {"model": model, "board": board, "tm": engine.tm, "tn": engine.tn, "buffers": plan.program.buffers.__dict__,
           "batch": plan.program.batch, "batch_cycles": {str(k): v for k, v in plan.batch_cycles.items()},
           "resources": plan.resources.as_dict(), "params": params.as_dict(), "programs": {}}
    for label, program in programs.items():
        model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
        runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": table, "target": -1, "steps": ig_steps,
                 "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in METHODS]
        res = sim.simulate(program, params, runs)
        rows = []
        for m, r in zip(METHODS, res):
            g = golden[m]
            exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy())
                     and (m is None or np.array_equal(r["attribution"], g.attribution[0].numpy())))
            macs = run_macs(program, model_engine, m, ig_steps)
            bound = run_bound(program, model_engine, m, ig_steps)
            rows.append({"run": m or "predict", "cycles": r["cycles"],
                         "model_cycles": method_cycles(program, model_engine, m, ig_steps),
                         "mac_utilization": macs / tm_tn / r["cycles"], "bound_cycles": bound,
                         "utilization_cap": macs / tm_tn / bound, "bit_exact": bool(exact)})
        jobs = []
        for row in compare(program, model_engine, res[1]["profile"]):
            d = (program.forward if row.direction == "forward" else program.backward)[row.index]
            jobs.append({"direction": row.direction, "index": row.index, "layer": names[row.layer],
                         "conv": isinstance(layers[row.layer], Conv2d) if row.layer < len(layers) else False,
                         "depthwise": row.layer < len(layers) and is_depthwise(layers[row.layer]),
                         "add": row.layer < len(layers) and isinstance(layers[row.layer], Add),
                         "two_sources": bool(d.src_b),
                         "tile_rows": d.tile_rows, "row_tiles": d.row_tiles, "rtl": row.rtl, "model": row.model,
                         "deviation": row.deviation, "macs": row.macs, "mac_utilization": row.macs / tm_tn / row.rtl})
        batched = []
        if program.batch > 1:  # the first step batch of the integrated-gradients run
            for row in compare(program, model_engine, res[2]["profile"], batched=True):
                batched.append({"direction": row.direction, "index": row.index, "layer": names[row.layer],
                                "rtl": row.rtl, "model": row.model, "deviation": row.deviation, "macs": row.macs})
        out["programs"][label] = {"runs": rows, "jobs": jobs, "batched_jobs": batched}
    return out


def markdown(result: dict) -> str:
    labels = list(result["programs"])
    lines = [f"**{result.get('model', 'cifar_ref')} on {result['board']}**, Tm x Tn = {result['tm']} x "
             f"{result['tn']}, buffers {result['buffers']['in_depth']}/{result['buffers']['out_depth']}", "",
             "| run | " + " | ".join(f"{k}: cycles | util | cap" for k in labels)
             + " | cycles after / before | bit-exact |",
             "|---|" + "---|---|---|" * len(labels) + "---|---|"]
    runs = [result["programs"][k]["runs"] for k in labels]
    for i, r in enumerate(runs[0]):
        cells = " | ".join(f"{rs[i]['cycles']:,} | {rs[i]['mac_utilization']:.1%} | {rs[i]['utilization_cap']:.1%}"
                           for rs in runs)
        exact = all(rs[i]["bit_exact"] for rs in runs)
        lines.append(f"| {r['run']} | {cells} | {runs[-1][i]['cycles'] / r['cycles']:.3f} | {'yes' if exact else 'NO'} |")
    lines += ["", "cap: the utilisation no schedule of this dataflow can pass (`run_bound`: each job's MACs on the "
              "whole array or its DDR traffic at the bus's rate, whichever is larger, summed)"]
    jobs = [result["programs"][k]["jobs"] for k in labels]
    for k, js in zip(labels, jobs):  # the Programs' job lists differ (fused pools have no jobs)
        lines += ["", f"{k}, saliency run:", "", "| dir | layer | rows x tiles | cycles | util | RTL vs model |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {j['direction'][:3]} | {j['layer']} | {j['tile_rows']} x {j['row_tiles']} | {j['rtl']:,} | "
                  f"{j['mac_utilization']:.0%} | {j['deviation']:+.1%} |" for j in js]
    for k in labels:
        bj = result["programs"][k].get("batched_jobs")
        if bj:
            lines += ["", f"{k}, the batched lists of the integrated-gradients run (one step batch):", "",
                      "| dir | layer | jobs | cycles (sum) | RTL vs model (worst job) |", "|---|---|---|---|---|"]
            groups: dict = {}
            for j in bj:
                groups.setdefault((j["direction"], j["layer"]), []).append(j)
            for (direction, layer), js in groups.items():
                worst = max(js, key=lambda j: abs(j["deviation"]))["deviation"]
                lines.append(f"| {direction[:3]} | {layer} | {len(js)} | {sum(j['rtl'] for j in js):,} | {worst:+.1%} |")
    for k, js in zip(labels, jobs):
        for direction in ("forward", "backward"):
            for kind, depthwise in (("conv", False), ("depthwise conv", True)):
                u = [j["mac_utilization"] for j in js
                     if j["conv"] and j["direction"] == direction and j.get("depthwise", False) == depthwise]
                if u:
                    lines.append(f"\n{k}, {kind} jobs {direction}: utilisation min {min(u):.0%}, median "
                                 f"{statistics.median(u):.0%}, max {max(u):.0%}")
        run = next(r for r in result["programs"][k]["runs"] if r["run"] == "saliency")["cycles"]
        adds = [j for j in js if j.get("add")]
        sums = [j for j in js if j.get("two_sources") and not j.get("add")]
        if adds:
            lines.append(f"\n{k}, residual adds (forward, two sources; no network MACs): {len(adds)} jobs, "
                         f"{sum(j['rtl'] for j in adds):,} cycles ({sum(j['rtl'] for j in adds) / run:.1%} of saliency)")
        if sums:
            u = [j["mac_utilization"] for j in sums]
            lines.append(f"\n{k}, gradient sums (backward, two sources; the convolution's MACs): {len(sums)} jobs, "
                         f"{sum(j['rtl'] for j in sums):,} cycles, utilisation min {min(u):.0%}, median "
                         f"{statistics.median(u):.0%}, max {max(u):.0%}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["pynq-z2", "ultra96-v2"])
    ap.add_argument("--ig-steps", type=int, default=32)
    ap.add_argument("--model", default="cifar_ref", help="a zoo model (default cifar_ref)")
    args = ap.parse_args()
    results = [measure(b, args.ig_steps, args.model) for b in args.boards]
    RESULTS.mkdir(exist_ok=True)
    name = "utilisation.json" if args.model == "cifar_ref" else f"utilisation_{args.model}.json"
    (RESULTS / name).write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2)
                                              + "\n")
    for r in results:
        print(markdown(r) + "\n")


if __name__ == "__main__":
    main()
