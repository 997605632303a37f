"""A compiler switch of xaihls.plan.lowering measured on the Engine v2 RTL (Verilator): the
planner's engine and Program for a zoo model and board, and beside it the same engine's Program
with the switch off, tiled by the same cycle model; both simulated on one Verilator build
(SystemVerilog DDR model at latency 24), every run compared with the golden model bit for bit and
with ``timing.method_cycles``, every job of the saliency run with ``timing.job_cost``; and the
weight-buffer rows each Program needs. Used by
benchmarks.depthwise (``LANE_COLUMNS``), benchmarks.weights_once (``WEIGHTS_ONCE``),
benchmarks.folded_image (``FOLD_IMAGE``), benchmarks.kept_inputs (``KEEP_INPUTS``),
benchmarks.pool_sums (``POOL_SUMS``), benchmarks.rows_read (``ROWS_READ``),
benchmarks.adds_by_block (``ADDS_BY_BLOCK``) and benchmarks.copies (``COPY_ALIASES``);
benchmarks.image_batches takes ``switched_off`` for ``SLOT_JOBS``; benchmarks.leaky and
benchmarks.windowed_pools ``measure_programs`` for two nets."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.cycles import compare
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.contract import network_image, view_phases
from xaihls.plan import lowering, timing
from xaihls.plan.boards import load_board
from xaihls.plan.lowering import buffer_needs, encode, lower_jobs, weight_depth
from xaihls.plan.planner_v2 import _row_tile_cost, plan_v2
from xaihls.plan.timing import method_cycles

RESULTS = Path(__file__).parent / "results"


def switched_off(program, qg, engine, switch: str):
    """The Program of the same engine and buffers with ``lowering.<switch>`` off (a weight buffer as
    deep as the planner would build for it: w_once off needs a row a pass), of the same image view (its
    first stride's phases where ``program``'s is)."""
    setattr(lowering, switch, False)
    try:
        phases = view_phases(program.header, qg.graph.input_shape) > 1
        lowered = lower_jobs(qg, program.shape, batch=program.header["batch"], as_phases=phases)
        buffers = replace(program.buffers, w_depth=max(program.buffers.w_depth, weight_depth(lowered)))
        return encode(lowered, buffers, _row_tile_cost(timing, engine))
    finally:
        setattr(lowering, switch, True)


def measure(model: str, board: str, switch: str, on: str, off: str, runs: tuple, job_fields: Callable) -> dict:
    """Both Programs (labelled ``on`` and ``off``) on Verilator for ``runs`` (None: predict);
    ``job_fields(descriptor, layer or None)`` adds fields to each job row of the saliency run."""
    entry = get_zoo_model(model)
    methods = tuple(m for m in runs if m)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=methods)
    return measure_compiled(model, acc, entry.calibration()[:1], board, switch, on, off, runs, job_fields)


def measure_compiled(model: str, acc, x, board: str, switch: str, on: str, off: str, runs: tuple,
                     job_fields: Callable) -> dict:
    """``measure`` of a compiled accelerator ``acc`` (named ``model``) on its image batch ``x`` of one."""
    plan = plan_v2(acc.qgraph, load_board(board))
    engine = plan.engine
    programs = {on: (acc, plan.program, engine), off: (acc, switched_off(plan.program, acc.qgraph, engine, switch),
                                                       engine)}
    return {"model": model, "board": board, "tm": engine.tm, "tn": engine.tn, "switch": switch,
            "programs": measure_programs(programs, x, runs, job_fields)}


def measure_programs(programs: dict, x, runs: tuple, job_fields: Callable) -> dict:
    """Each of ``programs`` (label -> (compiled accelerator, Program, its engine)) on one Verilator
    build for ``runs`` (None: predict) on the image batch ``x`` of one: each run's cycles, the cycle
    model's and whether it equals golden; every job of the saliency run against ``timing.job_cost``
    (``job_fields(descriptor, layer or None)`` adds fields to its row); the weight rows it needs."""
    params = None
    for _, program, engine in programs.values():
        p = rtl_params(program, engine)
        params = p if params is None else params.covering(p)
    out = {}
    for kind, (acc, program, engine) in programs.items():
        model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
        x_q = quantize_input(acc.qgraph, acc.graph.as_maps(x))[0][0].numpy()
        sim_runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": sim.ig_table(2, "trapezoid",
                                                                                            acc.qgraph.width),
                     "target": -1, "steps": 2, "method": PREDICT_CODE if m is None else METHOD_CODES[m]}
                    for m in runs]
        layers = acc.qgraph.graph.layers
        tmtn = engine.tm * engine.tn
        res = sim.simulate(program, params, sim_runs)
        rows = []
        for m, r in zip(runs, res):
            g = acc.run(x, m) if m else acc.run(x)
            # the attribution as the host reads it is in the Program's image view (its first stride's phases)
            shape = acc.qgraph.graph.input_shape
            attr = None if m is None else network_image(r["attribution"], shape, view_phases(program.header, shape))
            exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy())
                     and (m is None or np.array_equal(attr, acc.graph.as_maps(g.attribution)[0].numpy())))
            rows.append({"run": m or "predict", "cycles": r["cycles"],
                         "model_cycles": method_cycles(program, model_engine, m), "bit_exact": bool(exact)})
        jobs = []
        saliency = res[runs.index("saliency")]["profile"]
        descs = {"forward": program.forward, "backward": program.backward}
        for row in compare(program, model_engine, saliency, sim.common.DDR_LATENCY):
            d = descs[row.direction][row.index]
            layer = layers[d.layer] if d.layer < len(layers) else None
            jobs.append({"direction": row.direction, "index": row.index,
                         "layer": layer.name if layer is not None else "logits", **job_fields(d, layer),
                         "rtl": row.rtl, "model": row.model, "deviation": row.deviation,
                         "utilisation": None if not row.macs else row.macs / (tmtn * row.rtl)})
        out[kind] = {"runs": rows, "jobs": jobs, "weight_rows": buffer_needs(program.all_jobs, engine.tm, engine.tn)[2],
                     "forward_jobs": len(program.forward), "backward_jobs": len(program.backward),
                     "mask_bits": engine.mask_bits, "index_entries": engine.index_entries, "w_depth": engine.w_depth,
                     "ddr_bytes": program.total_bytes}
    return out


def runs_of(program: dict) -> tuple[dict, float]:
    """A measured Program's runs by name, and the deviation from the cycle model of the run furthest from it."""
    runs = {r["run"]: r for r in program["runs"]}
    return runs, max((r["cycles"] / r["model_cycles"] - 1 for r in program["runs"]), key=abs)


def worst_job(result: dict) -> float:
    """The largest deviation from the cycle model of any job of ``measure``'s saliency runs."""
    return max(abs(j["deviation"]) for p in result["programs"].values() for j in p["jobs"])


def marked_table(result: dict, field: str, first_column: str, jobs_named: str, own: bool = False) -> str:
    """``measure``'s result as Markdown: each Program's predict and saliency cycles, its run furthest
    from the cycle model, and the cycles and utilisation of the jobs whose ``field`` is true in the
    first Program's rows (the jobs the switch changes, at the same places in both lists), or with
    ``own`` in each Program's own rows (where the switch changes how many jobs there are)."""
    first = next(iter(result["programs"].values()))
    marked = {(j["direction"], j["index"]) for j in first["jobs"] if j[field]}
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']})", "",
             f"| {first_column} | predict | saliency | worst run vs model | {jobs_named} (saliency run): cycles, "
             "utilisation | bit-exact |", "|---|---|---|---|---|---|"]
    for kind, p in result["programs"].items():
        runs, worst = runs_of(p)
        jobs = [j for j in p["jobs"] if (j[field] if own else (j["direction"], j["index"]) in marked)]
        cycles = sum(j["rtl"] for j in jobs)
        useful = sum((j["utilisation"] or 0) * j["rtl"] for j in jobs)
        # jobs of no useful MACs (a pool, an Add) have no utilisation: "-", not 0.0%
        util = f"{useful / cycles:.1%}" if any(j["utilisation"] is not None for j in jobs) else "-"
        lines.append(f"| {kind} | {runs['predict']['cycles']:,} | {runs['saliency']['cycles']:,} | {worst:+.1%} | "
                     f"{len(jobs)} jobs, {cycles:,} ({util}) | "
                     f"{'yes' if all(r['bit_exact'] for r in p['runs']) else 'NO'} |")
    lines += ["", f"Every job within {worst_job(result):.1%} of the cycle model."]
    return "\n".join(lines)


def main(doc: str, models: list[str], measure: Callable[[str, str], dict], markdown: Callable[[dict], str],
         name: str) -> None:
    """A benchmark's command line: --models (default ``models``) and --boards (pynq-z2); the results
    in benchmarks/results/``name`` and as Markdown on stdout."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=models)
    ap.add_argument("--boards", nargs="+", default=["pynq-z2"])
    args = ap.parse_args()
    _written([measure(m, b) for b in args.boards for m in args.models], markdown, name)


def main_boards(doc: str, measure: Callable[[str], dict], markdown: Callable[[dict], str], name: str) -> None:
    """The command line of a benchmark of its own net: --boards (pynq-z2); as ``main``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["pynq-z2"])
    _written([measure(b) for b in ap.parse_args().boards], markdown, name)


def _written(results: list[dict], markdown: Callable[[dict], str], name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2) + "\n")
    for r in results:
        print(markdown(r) + "\n")
