"""The HLS backend: time to write a project, g++ compile time of the C-simulation, C-sim run time.

Run: ``python -m benchmarks.hls`` (Markdown on stdout). Each network is planned for the PYNQ-Z2
(the planner's tiling) with every method and 32 integrated-gradients steps. Builds are cold:
they go to a fresh cache folder. Run times are per image, wall clock, on this machine's CPU;
the Python program interpreter (``backend="program"``) is given for comparison.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import xaihls
from xaihls.backends.hls import csim
from xaihls.backends.hls import v2
from xaihls.project import read_project
from xaihls.writer import write_project
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model

NETWORKS = {"digits": 8, "cifar_ref": 2}  # name -> images timed
IG_STEPS = 32


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    build_rows, run_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[csim.CACHE_ENV] = str(Path(tmp) / "cache")
        for name, count in NETWORKS.items():
            entry = get_zoo_model(name)
            acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(),
                                 ig_steps=IG_STEPS)
            e = acc.plan.engine
            tiling = f"{e.tm}x{e.tn}"
            project = Path(tmp) / name
            t_write, _ = _timed(lambda: write_project(acc, project))
            t_lib, _ = _timed(lambda: v2.library_for(acc.plan.engine))
            t_tb, _ = _timed(lambda: csim.build_testbench(project))
            t_run, (code, _) = _timed(lambda: csim.run_testbench(project))
            assert code == 0, f"{name}: the testbench does not pass"
            build_rows.append({
                "network": name, "Tm x Tn": tiling, "write project s": t_write, "compile C-sim library s": t_lib,
                "compile testbench s": t_tb, "testbench cases": read_project(project)["testbench"]["cases"],
                "testbench run s": t_run,
            })
            x = entry.samples()[0][:count]
            for method in [None] + list(METHODS):
                t_csim, _ = _timed(lambda: acc.run(x, method, backend="csim"))
                t_prog, _ = _timed(lambda: acc.run(x, method, backend="program"))
                run_rows.append({
                    "network": name, "Tm x Tn": tiling,
                    "method": method or "predict",
                    "csim ms/image": 1e3 * t_csim / count, "program ms/image": 1e3 * t_prog / count,
                })
    print(_table(build_rows))
    print()
    print(f"Integrated gradients with {IG_STEPS} steps.")
    print()
    print(_table(run_rows))


if __name__ == "__main__":
    main()
