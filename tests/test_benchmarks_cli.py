"""`make bench` (``python -m benchmarks``): lists every benchmark with the first line of its docstring
and runs one by name; an unknown name gets one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_the_benchmarks_are_listed_and_one_runs_by_name():
    listed = _bench()
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()[5:] if line.strip()]
    modules = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in ("__init__", "__main__",
                                                                                            "switch"))
    assert names == modules
    assert "pool_sums       Global average pools summed" in listed.stdout
    ran = _bench("linear_weights", "--help")  # its own argument parser answers
    assert ran.returncode == 0 and "usage: linear_weights.py" in ran.stdout, ran.stderr
    wrong = _bench("pool_sum")
    assert wrong.returncode == 2 and wrong.stderr == f"no benchmark 'pool_sum'; the benchmarks: {', '.join(modules)}\n"
