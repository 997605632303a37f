"""torchvision's architectures through xaihls: each definition, with random weights, compiled for a board with
saliency and grad_cam, then the program executor checked against golden bit for bit; or the one line it is refused
with at compile.

Run: ``python -m benchmarks.tv_models [--board pynq-z2] [--models NAME ...] [--torchvision DIR]`` (about 20 minutes
for all). torchvision is not a dependency of xaihls: install the one that matches your torch, or give
``--torchvision`` the folder of an unpacked wheel. Its model definitions are pure Python; where its compiled
operators do not load against this torch (the PyPI wheel beside the CPU torch 2.13 on our machine), only its
``models`` and ``ops`` packages are loaded, without running their ``__init__``. Each model runs in a process of its
own. Results in benchmarks/results/tv_models.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.plan_speed import save_result

ROOT = Path(__file__).resolve().parents[1]

# (torchvision module, factory, keyword arguments, image side): small widths and images keep the run short
MODELS = {
    "resnet18": ("resnet", "resnet18", {}, 64),
    "resnext50_32x4d": ("resnet", "resnext50_32x4d", {}, 32),
    "mobilenet_v2": ("mobilenetv2", "mobilenet_v2", {"width_mult": 0.35}, 32),
    "mnasnet0_5": ("mnasnet", "mnasnet0_5", {}, 64),
    "shufflenet_v2_x0_5": ("shufflenetv2", "shufflenet_v2_x0_5", {}, 64),
    "squeezenet1_1": ("squeezenet", "squeezenet1_1", {}, 64),
    "regnet_x_400mf": ("regnet", "regnet_x_400mf", {}, 32),
    "googlenet": ("googlenet", "googlenet", {"aux_logits": False, "init_weights": True}, 64),
    "densenet121": ("densenet", "densenet121", {}, 32),
    "mobilenet_v3_small": ("mobilenetv3", "mobilenet_v3_small", {}, 32),
    "regnet_y_400mf": ("regnet", "regnet_y_400mf", {}, 32),
    "convnext_tiny": ("convnext", "convnext_tiny", {}, 32),
    "vgg11_bn": ("vgg", "vgg11_bn", {}, 32),
}

CHILD = r"""
import importlib, json, sys, time, types, warnings
warnings.simplefilter("ignore")
folder, module, factory, kwargs, side, board = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6]
if folder:
    sys.path.insert(0, folder)
try:
    import torchvision.models  # noqa: F401
except Exception:  # its compiled operators: load the pure-Python definitions alone
    import importlib.util
    base = importlib.util.find_spec("torchvision").submodule_search_locations[0]
    for k in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[k]
    for name, sub in (("torchvision", ""), ("torchvision.models", "/models"), ("torchvision.ops", "/ops")):
        package = types.ModuleType(name)
        package.__path__ = [base + sub]
        sys.modules[name] = package
import torch
import xaihls
torch.manual_seed(0)
net = getattr(importlib.import_module("torchvision.models." + module), factory)(**kwargs).eval()
shape = (3, side, side)
out = {"parameters": sum(p.numel() for p in net.parameters())}
t = time.perf_counter()
try:
    acc = xaihls.compile(net, shape, calibration=torch.rand(8, *shape), methods=("saliency", "grad_cam"),
                         board=board, backends=("golden", "program"))
except xaihls.XaiHlsError as e:
    out["refused"] = str(e)
    print(json.dumps(out)); sys.exit(0)
out["compile_s"] = round(time.perf_counter() - t, 1)
out["layers"] = len(acc.graph.layers)
out["engine"] = f"{acc.plan.engine.tm}x{acc.plan.engine.tn}"
out["saliency_cycles"] = acc.plan.method_cycles["saliency"]
x = torch.rand(1, *shape)
for method in (None, "saliency", "grad_cam"):
    g = acc.run(x, method)
    p = acc.run(x, method, backend="program")
    out[method or "predict"] = bool(torch.equal(g.logits, p.logits)
                                    and (method is None or torch.equal(g.attribution, p.attribution)))
print(json.dumps(out))
"""


def run(name: str, board: str, folder: str) -> dict:
    module, factory, kwargs, side = MODELS[name]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD, folder, module, factory, json.dumps(kwargs), str(side), board],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="NAME")
    ap.add_argument("--torchvision", default="", help="a folder holding the torchvision package (an unpacked wheel)")
    args = ap.parse_args()
    rows = []
    print("| model | image | parameters | layers | engine | compile (s) | predict | saliency | grad_cam |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        r = dict(run(name, args.board, args.torchvision), model=name, image=MODELS[name][3])
        rows.append(r)
        if "compile_s" in r:
            exact = ["bit-exact" if r[m] else "**differs**" for m in ("predict", "saliency", "grad_cam")]
            print(f"| {name} | {r['image']} | {r['parameters']:,} | {r['layers']} | {r['engine']} | {r['compile_s']} | "
                  f"{' | '.join(exact)} |", flush=True)
        else:
            why = r.get("refused", r.get("error", ""))
            print(f"| {name} | {r['image']} | {r.get('parameters', 0):,} | refused: {why[:160]} | | | | | |",
                  flush=True)
    save_result("tv_models", {"board": args.board, "rows": rows})


if __name__ == "__main__":
    main()
