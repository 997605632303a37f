"""Depthwise convolutions on the Engine v2 RTL (Verilator): LANES jobs against plain diagonal jobs.

Run: ``python -m benchmarks.depthwise [--models mobilenet_v2_tiny ds_cnn] [--boards pynq-z2]``,
under the shared heavy-tool lock. For each zoo model (random weights, one calibration image) and
board: the planner's engine and Program (the tiler keeps, job by job, a depthwise conv's LANES job
where the cycle model finds it cheaper: docs/engine_v2.md, "Depthwise convolutions"), and beside
it the same engine's Program with ``lowering.LANE_COLUMNS`` off (every depthwise conv a plain
diagonal job), tiled by the same cycle model. Both simulated on one Verilator build (SystemVerilog
DDR model at latency 24) for predict and saliency, every run compared with the golden model bit
for bit and with ``timing.method_cycles``, every job with ``timing.job_cost``.

Utilisation = the network's multiply-accumulates (``timing.network_macs``) / (Tm x Tn x cycles).
Results in benchmarks/results/depthwise.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.cycles import compare
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import lowering, timing
from xaihls.plan.boards import load_board
from xaihls.plan.contract import Flag
from xaihls.plan.lowering import encode, is_depthwise, lower_jobs
from xaihls.plan.planner_v2 import _row_tile_cost, plan_v2
from xaihls.plan.timing import method_cycles

RESULTS = Path(__file__).parent / "results"
RUNS = (None, "saliency")


def _plain(program, qg, engine):
    """The Program of the same engine and buffers with every depthwise conv a plain diagonal job."""
    lowering.LANE_COLUMNS = False
    try:
        return encode(lower_jobs(qg, program.shape, batch=program.header["batch"]), program.buffers,
                      _row_tile_cost(timing, engine))
    finally:
        lowering.LANE_COLUMNS = True


def measure(model: str, board: str) -> dict:
    entry = get_zoo_model(model)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency",))
    plan = plan_v2(acc.qgraph, load_board(board))
    engine = plan.engine
    model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
    programs = {"lanes": plan.program, "plain": _plain(plan.program, acc.qgraph, engine)}
    params = rtl_params(programs["lanes"], engine).covering(rtl_params(programs["plain"]))
    x = entry.calibration()[:1]
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": sim.ig_table(2, "trapezoid", acc.qgraph.width),
             "target": -1, "steps": 2, "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in RUNS]
    layers = acc.qgraph.graph.layers
    tmtn = engine.tm * engine.tn
    out = {"model": model, "board": board, "tm": engine.tm, "tn": engine.tn, "programs": {}}
    for kind, program in programs.items():
        res = sim.simulate(program, params, runs)
        rows = []
        for m, r in zip(RUNS, res):
            g = acc.run(x, m) if m else acc.run(x)
            exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy())
                     and (m is None or np.array_equal(r["attribution"], g.attribution[0].numpy())))
            rows.append({"run": m or "predict", "cycles": r["cycles"],
                         "model_cycles": method_cycles(program, model_engine, m), "bit_exact": bool(exact)})
        jobs = []
        saliency = res[RUNS.index("saliency")]["profile"]
        descs = {"forward": program.forward, "backward": program.backward}
        for row in compare(program, model_engine, saliency, sim.common.DDR_LATENCY):
            d = descs[row.direction][row.index]
            jobs.append({"direction": row.direction, "index": row.index, "layer": layers[d.layer].name
                         if d.layer < len(layers) else "logits", "depthwise": d.layer < len(layers)
                         and is_depthwise(layers[d.layer]), "lanes": d.has(Flag.LANES), "rtl": row.rtl,
                         "model": row.model, "deviation": row.deviation,
                         "utilisation": None if not row.macs else row.macs / (tmtn * row.rtl)})
        out["programs"][kind] = {"runs": rows, "jobs": jobs}
    return out


def _summary(jobs: list[dict], direction: str) -> tuple[int, int, float, float]:
    """(depthwise jobs' cycles, all jobs' cycles, lowest and highest depthwise utilisation) of a direction."""
    dw = [j for j in jobs if j["direction"] == direction and j["depthwise"]]
    every = sum(j["rtl"] for j in jobs if j["direction"] == direction)
    util = [j["utilisation"] for j in dw if j["utilisation"]]
    return sum(j["rtl"] for j in dw), every, min(util), max(util)


def markdown(result: dict) -> str:
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']})", "",
             "| depthwise jobs | predict | saliency | model (saliency) | depthwise cycles, forward / backward "
             "(of all jobs) | depthwise utilisation, forward / backward | bit-exact |", "|---|---|---|---|---|---|---|"]
    for kind, p in result["programs"].items():
        runs = {r["run"]: r for r in p["runs"]}
        f = _summary(p["jobs"], "forward")
        b = _summary(p["jobs"], "backward")
        s = runs["saliency"]
        lines.append(f"| {kind} | {runs['predict']['cycles']:,} | {s['cycles']:,} | "
                     f"{s['cycles'] / s['model_cycles'] - 1:+.1%} | {f[0]:,} ({f[1]:,}) / {b[0]:,} ({b[1]:,}) | "
                     f"{f[2]:.1%}–{f[3]:.1%} / {b[2]:.1%}–{b[3]:.1%} | "
                     f"{'yes' if all(r['bit_exact'] for r in p['runs']) else 'NO'} |")
    worst = max(abs(j["deviation"]) for p in result["programs"].values() for j in p["jobs"])
    lanes = [j for j in result["programs"]["lanes"]["jobs"] if j["lanes"]]
    lines += ["", f"LANES jobs: {len(lanes)} of {sum(j['depthwise'] for j in result['programs']['lanes']['jobs'])} "
              f"depthwise jobs; every job within {worst:.1%} of the cycle model."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2_tiny", "ds_cnn"])
    ap.add_argument("--boards", nargs="+", default=["pynq-z2"])
    args = ap.parse_args()
    results = [measure(m, b) for b in args.boards for m in args.models]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "depthwise.json").write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2)
                                            + "\n")
    for r in results:
        print(markdown(r) + "\n")


if __name__ == "__main__":
    main()
