"""How long the Engine v2 planner takes (``planner_v2.plan_v2``) on each zoo model, this tree against an earlier
commit in one run: every model compiled once a process, then planned for each board three times (the median kept),
a process of each tree in turn, so both see the same machine load; and whether both trees chose the same engine,
Program and figures.

Run: ``python -m benchmarks.plan_speed [--against REV] [--boards pynq-z2 ultra96-v2] [--models ...]`` (about 10
minutes on the zoo; ``REV`` checked out with ``git worktree`` in a temporary folder). Results in
benchmarks/results/plan_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"

CHILD = r"""
import hashlib, json, sys, time
import xaihls
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2

name, boards = sys.argv[1], sys.argv[2:]
entry = get_zoo_model(name)
acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], backends=("golden",))
out = {}
for board in boards:
    seconds = []
    for _ in range(3):
        t = time.perf_counter()
        plan = plan_v2(acc.qgraph, load_board(board))
        seconds.append(time.perf_counter() - t)
    p = plan.program
    chosen = repr((plan.engine, plan.resources, plan.method_cycles, p.forward, p.backward, p.cam,
                   sorted(p.header.items())))
    out[board] = {"seconds": seconds, "plan": hashlib.sha256(chosen.encode()).hexdigest()[:16]}
print(json.dumps(out))
"""


def timed(tree: Path, model: str, boards: list[str]) -> dict:
    """One process of ``tree``'s xaihls: ``model`` compiled, then each board's plan three times."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", CHILD, model, *boards], cwd=tree, env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu() -> str:
    """The CPU's model name (Linux), else the platform's machine."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def save_result(name: str, fields: dict) -> None:
    """benchmarks/results/NAME.json: ``fields`` after the date and the machine (CPU model, CPUs, Python)."""
    RESULTS.mkdir(exist_ok=True)
    machine = f"{_cpu()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
    (RESULTS / f"{name}.json").write_text(json.dumps({"date": str(date.today()), "machine": machine, **fields},
                                                     indent=1) + "\n")


def git(*args: str) -> str:
    """``git ARGS`` in this repository: its output, stripped."""
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def earlier_module(rev: str, path: str, folder: str):
    """``rev``'s file ``path`` (xaihls/plan/timing.py) as a module of its own, named after it with "_before"
    (timing_before), written to ``folder``; it imports this tree's other modules."""
    name = Path(path).stem + "_before"
    file = Path(folder) / f"{name}.py"
    file.write_text(git("show", f"{rev}:{path}") + "\n")
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def earlier_tree(rev: str):
    """Commit ``rev`` checked out with ``git worktree`` in a temporary folder (removed after): the tree a
    this-tree-against-a-commit benchmark runs its earlier processes in."""
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        git("worktree", "add", "--detach", str(before), rev)
        try:
            yield before
        finally:
            git("worktree", "remove", "--force", str(before))


def against_args(doc: str, boards: bool = True) -> tuple[argparse.Namespace, str, str]:
    """A this-tree-against-a-commit benchmark's arguments (--against, --boards if ``boards``, --models) and the
    short hashes of the commit and of HEAD."""
    from xaihls.models.zoo import ZOO

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--against", default="HEAD~1", help="the earlier commit (default HEAD~1)")
    if boards:
        ap.add_argument("--boards", nargs="+", default=["pynq-z2", "ultra96-v2"])
    ap.add_argument("--models", nargs="+", default=list(ZOO))
    args = ap.parse_args()
    return args, git("rev-parse", "--short", args.against), git("rev-parse", "--short", "HEAD")


def main() -> None:
    args, rev, head = against_args(__doc__)
    rows = []
    with earlier_tree(rev) as before:
        print(f"| model | board | {rev} (s) | this tree (s) | ratio | same plan |")
        print("|---|---|---|---|---|---|")
        for name in args.models:
            old, new = timed(before, name, args.boards), timed(ROOT, name, args.boards)
            for board in args.boards:
                a, b = (statistics.median(r[board]["seconds"]) for r in (old, new))
                same = old[board]["plan"] == new[board]["plan"]
                rows.append({"model": name, "board": board, "before_s": old[board]["seconds"],
                             "after_s": new[board]["seconds"], "ratio": b / a, "same_plan": same})
                print(f"| {name} | {board} | {a:.1f} | {b:.1f} | {b / a:.2f}x | {'yes' if same else 'NO'} |",
                      flush=True)
    save_result("plan_speed", {"before": rev, "after": f"{head} and the working tree", "rows": rows})


if __name__ == "__main__":
    main()
