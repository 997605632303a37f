"""Inputs kept across m-tiles in the HLS engine (g++ C-simulation): the input beats its loader reads
from DDR, with the planner's Program and with the same engine's Program of ``lowering.KEEP_INPUTS``
off, each run checked bit for bit against golden.

Run: ``python -m benchmarks.hls_kept_inputs [--models ds_cnn mobilenet_v2_tiny resnet8 cifar_ref]
[--boards pynq-z2]``, under the shared heavy-tool lock (one g++ build an engine). For each zoo
model (random weights, one calibration image) and board, predict and saliency on one image.
C-simulation counts beats, not cycles: no Vitis HLS runs here (docs/engine_v2.md, "Inputs kept
across m-tiles"). Results in benchmarks/results/hls_kept_inputs.json.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

import xaihls
from benchmarks import switch
from xaihls.backends.hls import v2
from xaihls.executor import prepare
from xaihls.golden import model as golden
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2

RUNS = (None, "saliency")


def measure(model: str, board: str) -> list[dict]:
    entry = get_zoo_model(model)
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], ig_steps=2,
                        backends=("golden",), methods=("saliency",)).qgraph
    plan = plan_v2(qg, load_board(board))
    programs = {"kept": plan.program, "loaded": switch.switched_off(plan.program, qg, plan.engine, "KEEP_INPUTS")}
    lib = v2.library_for(plan.engine)
    rows = []
    for method in RUNS:
        args = prepare(qg, entry.calibration()[:1], method, steps=2)
        want = golden.EXECUTOR.run(qg, None, args)
        row = {"model": model, "board": board, "tm": plan.engine.tm, "tn": plan.engine.tn, "run": method or "predict"}
        for kind, program in programs.items():
            before = lib.input_beats()
            got = v2.EXECUTOR.run(qg, SimpleNamespace(program=program, engine=plan.engine), args)
            row[f"{kind}_beats"] = lib.input_beats() - before
            row[f"{kind}_exact"] = bool(torch.equal(got.logits, want.logits) and (
                method is None or torch.equal(got.attribution, want.attribution)))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | plan | run | input beats, kept | loaded every m-tile | ratio | bit-exact |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['board']} ({r['tm']} x {r['tn']}) | {r['run']} | {r['kept_beats']:,} | "
                     f"{r['loaded_beats']:,} | {r['kept_beats'] / r['loaded_beats']:.3f} | "
                     f"{'yes' if r['kept_exact'] and r['loaded_exact'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    switch.main(__doc__, ["ds_cnn", "mobilenet_v2_tiny", "resnet8", "cifar_ref"], measure, markdown,
                "hls_kept_inputs.json")


if __name__ == "__main__":
    main()
