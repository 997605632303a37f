"""Grad-CAM on the random nets of every generator: refused at compile in one line, or bit-exact.

Run: ``python -m benchmarks.grad_cam_sweep [--kinds random_net fork_net] [--seeds 20] [--before | --no-gather]``.
Each net of tests/random_nets.py's generators, seeds 0 to N - 1, compiled with grad_cam and
guided_grad_cam at the default layer (its last convolution). A net the engines refuse is counted
with its refusal's line; every other one runs both methods on two images on the program executor
at the two test shapes of tests/test_grad_cam_engine.py (4 x 4 with small buffers, 16 x 8; encoded
without a cost model, so a twin of several jobs is taken wherever it fits) and on the planner's
pynq-z2 Program, each against the golden model bit for bit. ``--before`` turns the Grad-CAM list's
switches of 2026-12-06 off (``capabilities.UPSAMPLING_STAGES``, and with it ``UPSAMPLING_GATHER``;
``UPSAMPLING_CROP``, ``lowering.CAM_SUMS``); the prefix fix of that day (``lowering.tiled``) has no
switch. ``--no-gather`` turns the stretches alone off (``capabilities.UPSAMPLING_GATHER``). Results in
benchmarks/results/grad_cam_sweep.json (grad_cam_sweep_before.json, grad_cam_sweep_no_gather.json).
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from datetime import date

import torch

import xaihls
from benchmarks.switch import RESULTS
from tests import random_nets
from tests.test_grad_cam_engine import CAMS, SHAPES
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES
from xaihls.plan import capabilities, lowering
from xaihls.plan.lowering import encode, lower_jobs
from xaihls.sim.interpreter import run_batch

KINDS = ("random_net", "pool_net", "edge_net", "narrow_net", "padded_net", "dense_block_net", "shuffle_net",
         "leaky_net", "random_dag_net", "residual_conv_net", "concat_net", "dilated_net", "branchy_net",
         "leaky_head_net", "windowed_pool_net", "fork_net", "conv1d_net", "small_map_net", "cropped_map_net",
         "stretched_map_net")


def _one(kind: str, seed: int) -> tuple[str, str]:
    """(outcome, detail): 'golden-only' (the front end or golden refuses it), 'refused', 'exact' or
    'MISMATCH'."""
    model, shape, calibration = getattr(random_nets, kind)(seed)
    try:
        acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=CAMS, backends=("golden",))
    except XaiHlsError as exc:
        return "golden-only", str(exc)[:120]
    why = capabilities.program_refusal(acc.qgraph)
    if why is not None:
        return "refused", why[:120]
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    x_q = quantize_input(acc.qgraph, x)[0]
    x_q = x_q.unsqueeze(2) if x_q.dim() == 3 else x_q  # a 1-D net's maps of one row
    golden = {m: acc.run(x, m) for m in CAMS}
    for name, (engine, buffers) in SHAPES.items():
        try:
            program = encode(lower_jobs(acc.qgraph, engine), buffers)
        except XaiHlsError as exc:
            return "refused", f"{name}: {str(exc)[:100]}"
        for m in CAMS:
            logits, _, attr, _ = run_batch(program, x_q, METHOD_CODES[m], None, 3, "trapezoid", None)
            g = golden[m]
            if not (torch.equal(logits, g.logits) and torch.equal(attr.reshape(g.attribution.shape), g.attribution)):
                return "MISMATCH", f"{name} {m}"
    planned = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=CAMS,
                             backends=("golden", "program"))
    for m in CAMS:
        if not torch.equal(planned.run(x, m, backend="program").attribution, golden[m].attribution):
            return "MISMATCH", f"pynq-z2 plan {m}"
    return "exact", ""


def measure(kind: str, seeds: int) -> dict:
    rows = []
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome, detail = _one(kind, seed)
        rows.append({"seed": seed, "outcome": outcome, "detail": detail})
    return {"kind": kind, "nets": seeds, "counts": dict(Counter(r["outcome"] for r in rows)), "nets_run": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--before", action="store_true", help="the Grad-CAM list's switches of 2026-12-06 off")
    ap.add_argument("--no-gather", action="store_true", help="the stretches alone off")
    args = ap.parse_args()
    capabilities.UPSAMPLING_STAGES = capabilities.UPSAMPLING_CROP = lowering.CAM_SUMS = not args.before
    capabilities.UPSAMPLING_GATHER = not args.no_gather
    results = [measure(k, args.seeds) for k in args.kinds]
    RESULTS.mkdir(exist_ok=True)
    name = ("grad_cam_sweep_before.json" if args.before else
            "grad_cam_sweep_no_gather.json" if args.no_gather else "grad_cam_sweep.json")
    (RESULTS / name).write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2) + "\n")
    total = Counter()
    for r in results:
        total.update(r["counts"])
        print(f"{r['kind']}: {r['counts']}")
        for x in r["nets_run"]:
            if x["outcome"] in ("refused", "MISMATCH"):
                print(f"  seed {x['seed']} {x['outcome']}: {x['detail']}")
    print(f"all: {dict(total)}")


if __name__ == "__main__":
    main()
