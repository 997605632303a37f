"""Every method on random nets of every generator, at four engine shapes and two boards' plans.

Run: ``python -m benchmarks.method_sweep [--first 400] [--seeds 3] [--kinds random_net fork_net]``.
Each net of tests/random_nets.py's generators, seeds ``first`` to ``first + seeds - 1`` (seeds the
tests do not use), compiled with every method (``methods.ALL_METHODS``: the six gradient ones and
the two Grad-CAM ones) and three integrated-gradients steps. A net the engines refuse is counted with
its refusal's line (and one without a Grad-CAM layer, or whose Grad-CAM they refuse, is compiled
again without the Grad-CAM methods, so its other methods still run); every other one runs predict and every method on two
images on the program executor at 4 x 4, 8 x 4, 16 x 8 and 32 x 8 (encoded without a cost model)
and on the planner's pynq-z2 and ultra96-v2 Programs, each against the golden model bit for bit
(logits, and the attribution of every method). ``narrow_net`` takes a width, not a seed, and is
left out. Results in benchmarks/results/method_sweep.json.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from datetime import date

import torch

import xaihls
from benchmarks.grad_cam_sweep import KINDS as CAM_KINDS
from benchmarks.switch import RESULTS
from tests import random_nets
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input
from xaihls.methods import ALL_METHODS, METHOD_CODES, PREDICT_CODE
from xaihls.plan import capabilities
from xaihls.plan.lowering import Buffers, Shape, encode, lower_jobs
from xaihls.sim.interpreter import run_batch

KINDS = tuple(k for k in (*CAM_KINDS, "long_map_net") if k != "narrow_net")
SHAPES = {"4x4": (Shape(4, 4, 4), Buffers(256, 64, 1024)), "8x4": (Shape(8, 4, 4), Buffers(512, 128, 2048)),
          "16x8": (Shape(16, 8, 4), Buffers(4096, 1024, 4096)), "32x8": (Shape(32, 8, 8), Buffers(2048, 512, 2048))}
BOARDS = ("pynq-z2", "ultra96-v2")
CAMS = ("grad_cam", "guided_grad_cam")


def _same(run, golden, method) -> bool:
    return torch.equal(run[0], golden.logits) and (method is None or torch.equal(
        run[1].reshape(golden.attribution.shape), golden.attribution))


def _one(kind: str, seed: int) -> tuple[str, list[str]]:
    """(outcome, details): 'golden-only' (the front end or golden refuses it), 'refused' (the engines
    refuse every method), 'exact' (every run the engines take bit-exact; details: what they refused)
    or 'MISMATCH' (details: where)."""
    model, shape, calibration = getattr(random_nets, kind)(seed)
    methods, notes = tuple(ALL_METHODS), []
    try:
        acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=methods, backends=("golden",))
    except XaiHlsError as exc:
        if not str(exc).startswith("grad_cam"):
            return "golden-only", [str(exc)[:120]]
        notes.append(str(exc)[:100])  # no Grad-CAM layer (a net of Linear layers): the other methods
        methods = tuple(m for m in methods if m not in CAMS)
        acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=methods, backends=("golden",))
    why = capabilities.program_refusal(acc.qgraph)
    if why is not None and "grad_cam_layer" in why:
        notes.append(f"Grad-CAM: {why[:100]}")
        methods = tuple(m for m in methods if m not in CAMS)
        acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=methods, backends=("golden",))
        why = capabilities.program_refusal(acc.qgraph)
    if why is not None:
        return "refused", [why[:120]]
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    x_q = quantize_input(acc.qgraph, acc.graph.as_maps(x))[0]
    runs = (None, *methods)
    golden = {m: acc.run(x, m) if m else acc.run(x) for m in runs}
    bad = []
    for name, (engine, buffers) in SHAPES.items():
        try:
            program = encode(lower_jobs(acc.qgraph, engine), buffers)
        except XaiHlsError as exc:
            notes.append(f"{name}: {str(exc)[:100]}")
            continue
        for m in runs:
            logits, _, attr, _ = run_batch(program, x_q, METHOD_CODES[m] if m else PREDICT_CODE, None, 3, "trapezoid",
                                           None)
            if not _same((logits, attr), golden[m], m):
                bad.append(f"{name} {m or 'predict'}")
    for board in BOARDS:
        try:
            planned = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=methods, board=board,
                                     backends=("golden", "program"))
        except XaiHlsError as exc:
            notes.append(f"{board}: {str(exc)[:100]}")
            continue
        for m in runs:
            r = planned.run(x, m, backend="program") if m else planned.run(x, backend="program")
            if not _same((r.logits, r.attribution), golden[m], m):
                bad.append(f"{board} {m or 'predict'}")
    return ("MISMATCH", bad) if bad else ("exact", notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--first", type=int, default=400)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    results = []
    for kind in args.kinds:
        rows = []
        for seed in range(args.first, args.first + args.seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome, details = _one(kind, seed)
            rows.append({"seed": seed, "outcome": outcome, "details": details})
            print(f"{kind} {seed}: {outcome} {'; '.join(details)}", flush=True)
        results.append({"kind": kind, "counts": dict(Counter(r["outcome"] for r in rows)), "nets_run": rows})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "method_sweep.json").write_text(json.dumps({"date": str(date.today()), "first": args.first,
                                                          "seeds": args.seeds, "results": results}, indent=2) + "\n")
    total = Counter()
    for r in results:
        total.update(r["counts"])
    print(f"all: {dict(total)}")


if __name__ == "__main__":
    main()
