"""torchvision's architectures on the RTL engine: each definition, with random weights, compiled for a board with
saliency and grad_cam into a project folder (``xaihls compile``), then its engine on Verilator (``xaihls sim``) for
one test image: every method bit for bit against golden, and each job's cycles against the cycle model.

Run: ``python -m benchmarks.tv_rtl --torchvision DIR [--board pynq-z2] [--models NAME ...] [--side N]`` under the
heavy-tool lock (a Verilator build a model, 2 to 15 minutes each, about 50 for the nine of ``ON_RTL``). The models
and image sizes are those of benchmarks/tv_models.py (``--side`` sets one size for all); torchvision is loaded as
there. Each model runs in a process of its own; the project folders are temporary. Results in
benchmarks/results/tv_rtl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.plan_speed import save_result
from benchmarks.tv_models import LOADER, MODELS

ROOT = Path(__file__).resolve().parents[1]
ON_RTL = ("squeezenet1_1", "resnet18", "mobilenet_v2", "shufflenet_v2_x0_5", "mnasnet0_5", "googlenet",
          "regnet_x_400mf", "resnext50_32x4d", "densenet121")
"""The models of tv_models.py that compile (the rest are refused at compile, one line each)."""

CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
folder, module, factory, kwargs, side, board, out = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6], sys.argv[7]
""" + LOADER + r"""
import torch
import xaihls
from xaihls.backends.rtl.v2.project import simulate_project
from xaihls.plan.boards import load_board
from xaihls.project import read_project
from xaihls.writer import write_project
torch.manual_seed(0)
net = getattr(importlib.import_module("torchvision.models." + module), factory)(**kwargs).eval()
shape = (3, side, side)
calibration = torch.rand(8, *shape)
t = time.perf_counter()
try:
    acc = xaihls.compile(net, shape, calibration=calibration, methods=("saliency", "grad_cam"),
                         board=load_board(board), backends=("golden",))
    write_project(acc, out, images=calibration[:1])
except xaihls.XaiHlsError as e:
    print(json.dumps({"refused": str(e)})); sys.exit(0)
r = {"compile_s": round(time.perf_counter() - t, 1), "engine": f"{acc.plan.engine.tm}x{acc.plan.engine.tn}",
     "layers": len(acc.graph.layers)}
unsupported = read_project(out).get("rtl", {}).get("unsupported")
if unsupported:
    print(json.dumps({**r, "refused": "no RTL engine: " + unsupported})); sys.exit(0)
report = simulate_project(out, None, 1, False, False, None)
jobs = report["descriptors"]
r.update(methods={m: {k: v[k] for k in ("cycles", "model_cycles", "mac_utilization", "bit_exact")}
                  for m, v in report["methods"].items()},
         jobs=len(jobs), jobs_of=report["descriptors_of"],
         jobs_outside_10pct=sum(abs(j["deviation"]) > 0.10 for j in jobs),
         deviation_min=min(j["deviation"] for j in jobs), deviation_max=max(j["deviation"] for j in jobs),
         simulation=report["simulation"])
print(json.dumps(r))
"""


def run(name: str, board: str, folder: str, side: int | None) -> dict:
    """Model ``name`` compiled and simulated in a process of its own."""
    module, factory, kwargs, default_side = MODELS[name]
    with tempfile.TemporaryDirectory(prefix="xaihls_tv_rtl_") as tmp:
        done = subprocess.run([sys.executable, "-c", CHILD, folder, module, factory, json.dumps(kwargs),
                               str(side or default_side), board, str(Path(tmp) / "prj")],
                              cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(name: str, r: dict) -> str:
    head = f"| {name} | {r['image']} | {r.get('layers', '-')} | {r.get('engine', '-')} |"
    if "methods" not in r:
        return head + f" {r.get('refused', r.get('error', ''))[:160]} |"
    cells = []
    for method in ("predict", "saliency", "grad_cam"):
        m = r["methods"][method]
        cells.append(f"{'bit-exact' if m['bit_exact'] else '**differs**'}, {m['cycles']:,} "
                     f"({m['cycles'] / m['model_cycles'] - 1:+.1%})")
    sim = r["simulation"]
    return (head + f" {' | '.join(cells)} | {r['jobs_of']}, {r['jobs']} jobs: {100 * r['deviation_min']:+.1f}% to "
            f"{100 * r['deviation_max']:+.1f}% ({r['jobs_outside_10pct']} past 10%) | "
            f"{sim['cycles_per_second']:,} | {sim['build_s']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--models", nargs="+", default=list(ON_RTL), choices=list(MODELS), metavar="NAME")
    ap.add_argument("--torchvision", default="", help="a folder holding the torchvision package (an unpacked wheel)")
    ap.add_argument("--side", type=int, help="one image side for every model (default: tv_models.py's)")
    args = ap.parse_args()
    print("| model | image | layers | engine | predict: RTL cycles (vs model) | saliency | grad_cam | "
          "jobs of the first attribution run vs model | cycles/s | build s |")
    print("|---" * 10 + "|")
    rows = []
    for name in args.models:
        r = dict(run(name, args.board, args.torchvision, args.side), model=name, image=args.side or MODELS[name][3])
        print(_row(name, r), flush=True)
        rows.append(r)
    save_result("tv_rtl", {"board": args.board, "rows": rows})


if __name__ == "__main__":
    main()
