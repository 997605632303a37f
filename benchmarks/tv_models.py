"""torchvision's architectures through xaihls: each definition, with random weights, compiled for a board with
saliency and grad_cam, then the program executor checked against golden bit for bit; or the one line it is refused
with at compile.

Run: ``python -m benchmarks.tv_models [--board pynq-z2] [--models NAME ...] [--torchvision DIR] [--against REV]``
(about 20 minutes for all; ``--against`` compiles each model with commit ``REV``'s xaihls too and says whether
it wrote the same Program, and how long it took, how much memory and how much DDR its Program takes). torchvision
is not a dependency of xaihls: install the one that matches your torch, or give ``--torchvision`` the folder of an
unpacked wheel. Its model definitions are pure Python; where its compiled operators do not load against this torch
(the PyPI wheel beside the CPU torch 2.13 on our machine), only its ``models`` and ``ops`` packages are loaded,
without running their ``__init__``. Each model runs in a process of its own. Results in
benchmarks/results/tv_models.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.plan_speed import earlier_tree, git, save_result

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
    "googlenet": ("googlenet", "googlenet", {"aux_logits": False, "init_weights": False}, 64),
    "densenet121": ("densenet", "densenet121", {}, 32),
    "mobilenet_v3_small": ("mobilenetv3", "mobilenet_v3_small", {}, 32),
    "regnet_y_400mf": ("regnet", "regnet_y_400mf", {}, 32),
    "convnext_tiny": ("convnext", "convnext_tiny", {}, 32),
    "vgg11_bn": ("vgg", "vgg11_bn", {}, 32),
    "alexnet": ("alexnet", "alexnet", {}, 64),
    "efficientnet_b0": ("efficientnet", "efficientnet_b0", {}, 32),
}

LOADER = r"""
import importlib, sys, types
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
    # what the definitions take from torchvision.ops itself (EfficientNet's StochasticDepth), from its own module
    sys.modules["torchvision.ops"].StochasticDepth = importlib.import_module(
        "torchvision.ops.stochastic_depth").StochasticDepth
"""
"""torchvision's model definitions from the wheel unpacked at ``folder`` (none: the installed torchvision), its
compiled operators left out where they do not load against this torch: run with ``folder`` set."""

CHILD = r"""
import hashlib, importlib, json, resource, sys, time, warnings
warnings.simplefilter("ignore")
folder, module, factory, kwargs, side, board = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6]
""" + LOADER + r"""
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
out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # the process's, so far
out["program"] = hashlib.sha256(acc.plan.program.image).hexdigest()[:16]
out["layers"] = len(acc.graph.layers)
out["engine"] = f"{acc.plan.engine.tm}x{acc.plan.engine.tn}"
out["saliency_cycles"] = acc.plan.method_cycles["saliency"]
out["ddr_bytes"] = acc.plan.program.header["total_bytes"]
x = torch.rand(1, *shape)
for method in (None, "saliency", "grad_cam"):
    g = acc.run(x, method)
    p = acc.run(x, method, backend="program")
    out[method or "predict"] = bool(torch.equal(g.logits, p.logits)
                                    and (method is None or torch.equal(g.attribution, p.attribution)))
print(json.dumps(out))
"""


def run(name: str, board: str, folder: str, tree: Path = ROOT) -> dict:
    """Model ``name`` through ``tree``'s xaihls, in a process of its own."""
    module, factory, kwargs, side = MODELS[name]
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", CHILD, folder, module, factory, json.dumps(kwargs), str(side), board],
                          cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="NAME")
    ap.add_argument("--torchvision", default="", help="a folder holding the torchvision package (an unpacked wheel)")
    ap.add_argument("--against", metavar="REV", help="also compile each model with commit REV's xaihls (checked out "
                                                     "with git worktree), a process of each tree in turn")
    args = ap.parse_args()
    fields = {"board": args.board}
    against = (" | before: compile (s) | peak (MB) | same Program | saliency cycles, before -> now | DDR (MB), "
               "before -> now" if args.against else "")
    print(f"| model | image | parameters | layers | engine | compile (s) | peak (MB) | DDR (MB) | predict | saliency | "
          f"grad_cam{against} |")
    print("|---" * (11 + 5 * bool(args.against)) + "|")
    with contextlib.ExitStack() as stack:
        before = None
        if args.against:
            fields.update(before=git("rev-parse", "--short", args.against),
                          after=f"{git('rev-parse', '--short', 'HEAD')} and the working tree")
            before = stack.enter_context(earlier_tree(fields["before"]))
        fields["rows"] = [_row(name, args, before) for name in args.models]
    save_result("tv_models", fields)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def _row(name: str, args: argparse.Namespace, before: Path | None) -> dict:
    """Model ``name``'s figures, printed as a Markdown row: this tree's and, with ``before``, that tree's compile
    time and peak memory and whether it wrote the same Program."""
    r = dict(run(name, args.board, args.torchvision), model=name, image=MODELS[name][3])
    if "compile_s" not in r:
        why = r.get("refused", r.get("error", ""))
        print(f"| {name} | {r['image']} | {r.get('parameters', 0):,} | refused: {why[:160]} |", flush=True)
        return r
    exact = ["bit-exact" if r[m] else "**differs**" for m in ("predict", "saliency", "grad_cam")]
    line = (f"| {name} | {r['image']} | {r['parameters']:,} | {r['layers']} | {r['engine']} | {r['compile_s']} | "
            f"{r['peak_mb']:,} | {_mb(r['ddr_bytes'])} | {' | '.join(exact)} |")
    if before is not None:
        old = run(name, args.board, args.torchvision, before)
        r["before"] = {k: old.get(k) for k in ("compile_s", "peak_mb", "program", "saliency_cycles", "ddr_bytes")}
        same = "yes" if old.get("program") == r["program"] else "NO"
        line += (f" {old.get('compile_s')} | {old.get('peak_mb', 0):,} | {same} | "
                 f"{old.get('saliency_cycles', 0):,} -> {r['saliency_cycles']:,} | "
                 f"{_mb(old.get('ddr_bytes', 0))} -> {_mb(r['ddr_bytes'])} |")
    print(line, flush=True)
    return r


if __name__ == "__main__":
    main()
