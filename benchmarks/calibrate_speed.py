"""How long calibration takes (``calibrate``, most of a compile) on each zoo model, this tree against an earlier
commit in one run: each model traced once a process, then calibrated three times with ``xaihls.compile``'s default
methods and the bundled calibration batch (the median kept), a process of each tree in turn, so both see the same
machine load; and whether both trees chose the same formats.

Run: ``python -m benchmarks.calibrate_speed [--against REV] [--models ...]`` (about 10 minutes on the zoo; ``REV``
checked out with ``git worktree`` in a temporary folder). Results in benchmarks/results/calibrate_speed.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.plan_speed import against_args, earlier_tree, save_result

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import hashlib, json, sys, time, warnings
warnings.simplefilter("ignore")
from xaihls.frontend.trace import graph_from_module
from xaihls.models.zoo import get_zoo_model
from xaihls.quant.calibrate import calibrate

entry = get_zoo_model(sys.argv[1])
graph, batch = graph_from_module(entry.build(), entry.input_shape), entry.calibration()
seconds = []
for _ in range(3):
    t = time.perf_counter()
    q = calibrate(graph, batch)
    seconds.append(time.perf_counter() - t)
formats = repr(([(l.in_fmt, l.out_fmt, l.weight_fmt, l.bias_fmt) for l in q.layers], q.grad_formats,
                q.attribution_formats))
print(json.dumps({"seconds": seconds, "images": int(batch.shape[0]),
                  "formats": hashlib.sha256(formats.encode()).hexdigest()[:16]}))
"""


def timed(tree: Path, model: str) -> dict:
    """One process of ``tree``'s xaihls: ``model`` traced, then calibrated three times."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", CHILD, model], cwd=tree, env=env, check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args, rev, head = against_args(__doc__, boards=False)
    rows = []
    with earlier_tree(rev) as before:
        print(f"| model | images | {rev} (s) | this tree (s) | ratio | same formats |")
        print("|---|---|---|---|---|---|")
        for name in args.models:
            old, new = timed(before, name), timed(ROOT, name)
            a, b = statistics.median(old["seconds"]), statistics.median(new["seconds"])
            same = old["formats"] == new["formats"]
            rows.append({"model": name, "images": new["images"], "before_s": old["seconds"],
                         "after_s": new["seconds"], "ratio": b / a, "same_formats": same})
            print(f"| {name} | {new['images']} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {'yes' if same else 'NO'} |",
                  flush=True)
    save_result("calibrate_speed", {"before": rev, "after": f"{head} and the working tree", "rows": rows})


if __name__ == "__main__":
    main()
