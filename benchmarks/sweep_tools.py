"""``xaihls sweep --synth --sim`` on the local process pool and on a Dask LocalCluster: each point's
estimate, yosys and Verilator figures, whether the two executors agree, and the wall time of each.

Run: ``python -m benchmarks.sweep_tools [--tool-jobs N]`` (Markdown on stdout, JSON in
benchmarks/results/sweep_tools.json). The points: digits on pynq-z2 at 4 x 4 and 8 x 4, saliency
(IG off: short simulations). Both sweeps go through the command line, as a user runs them; the
LocalCluster has two worker processes of one thread each, the pool two processes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

from xaihls.cli import main as xaihls

RESULTS = Path(__file__).parent / "results"
ARGS = ["sweep", "zoo:digits", "--boards", "pynq-z2", "--tilings", "4x4,8x4", "--methods", "saliency",
        "--steps", "4", "--synth", "--sim"]


def run(out: Path, extra: list[str]) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    code = xaihls([*ARGS, "--out", str(out), *extra])
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"xaihls sweep exited with status {code}")
    return json.loads((out / "sweep.json").read_text()), wall


def figures(record: dict) -> dict:
    return {"tiling": record["tiling"], "estimate": {"resources": record["estimate"]["resources"],
                                                     "cycles": record["estimate"]["cycles"]},
            "yosys": record["yosys"]["resources"],
            "verilator": {k: record["verilator"][k] for k in ("cycles", "bit_exact", "conditions")}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool-jobs", type=int, help="xaihls sweep --tool-jobs (default: the CLI's)")
    args = parser.parse_args()
    extra = ["--tool-jobs", str(args.tool_jobs)] if args.tool_jobs else []
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="xaihls_sweep_tools_") as tmp:
        pool, pool_s = run(Path(tmp) / "pool", [*extra, "--workers", "2"])
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            dask, dask_s = run(Path(tmp) / "dask", [*extra, "--scheduler", cluster.scheduler_address])
    same = [figures(r) for r in pool] == [figures(r) for r in dask]
    lines = ["| point | source | LUT | FF | DSP | BRAM_18K | predict cycles | saliency cycles |", "|---" * 8 + "|"]
    for r in pool:
        est, yosys, sim = r["estimate"], r["yosys"], r["verilator"]
        res = est["resources"]
        lines.append(f"| {r['point']} | estimate | {res['LUT']:,} | {res['FF']:,} | {res['DSP']} | {res['BRAM_18K']} | "
                     f"{est['cycles']['predict']:,} | {est['cycles']['saliency']:,} |")
        res = yosys["resources"]
        lines.append(f"| | yosys ({yosys['seconds']:.0f} s) | {res['LUT']:,} | {res['FF']:,} | {res['DSP']} | "
                     f"{res['BRAM_18K']} | | |")
        exact = "bit-exact" if all(sim["bit_exact"].values()) else "NOT bit-exact"
        lines.append(f"| | verilator ({sim['conditions']}; {exact}) | | | | | {sim['cycles']['predict']:,} | "
                     f"{sim['cycles']['saliency']:,} |")
    print("\n".join(lines))
    print(f"\nprocess pool (2 processes): {pool_s:.0f} s; Dask LocalCluster (2 workers): {dask_s:.0f} s; "
          f"same figures: {'yes' if same else 'NO'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep_tools.json").write_text(json.dumps(
        {"date": date.today().isoformat(), "command": " ".join(["xaihls", *ARGS, *extra]), "pool_s": round(pool_s, 1),
         "dask_s": round(dask_s, 1), "same_figures": same, "pool": pool, "dask": dask}, indent=1) + "\n")
    if not same:
        raise SystemExit("the pool and the LocalCluster gave different figures")


if __name__ == "__main__":
    main()
