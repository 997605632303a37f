"""The cycle model of this tree against an earlier commit's, job by job: every zoo model planned for each board,
each job the planner prices (``timing.conv_cost``) costed by both models, which must agree on every field of every
job, and the time each took in all.

Run: ``python -m benchmarks.timing_speed [--against REV] [--boards pynq-z2 ultra96-v2] [--models ...]`` (a few
minutes; ``REV``'s xaihls/plan/timing.py loaded beside this tree's). Results in
benchmarks/results/timing_speed.json.
"""

from __future__ import annotations

import tempfile
import time

from benchmarks.plan_speed import against_args, earlier_module, save_result


def main() -> None:
    import xaihls
    from xaihls.models.zoo import get_zoo_model
    from xaihls.plan import planner_v2, timing
    from xaihls.plan.boards import load_board

    args, rev, _ = against_args(__doc__)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        before = earlier_module(rev, "xaihls/plan/timing.py", folder)
        now = timing.conv_cost
        seconds = {"before": 0.0, "now": 0.0}
        jobs = 0

        def both(d, engine, direction, dram):
            nonlocal jobs
            t0 = time.perf_counter()
            a = now(d, engine, direction, dram)
            t1 = time.perf_counter()
            b = before.conv_cost(d, engine, direction, before._Dram(dram.latency, dram.beat_cycles))
            seconds["now"] += t1 - t0
            seconds["before"] += time.perf_counter() - t1
            jobs += 1
            if vars(a) != vars(b):
                raise SystemExit(f"the models disagree on {d}: {a} against {b}")
            return a

        timing.conv_cost = both
        try:
            print(f"| model | jobs priced | {rev} (s) | this tree (s) | ratio |")
            print("|---|---|---|---|---|")
            for name in args.models:
                entry = get_zoo_model(name)
                acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                                     backends=("golden",))
                jobs, seconds = 0, {"before": 0.0, "now": 0.0}
                for board in args.boards:
                    planner_v2.plan_v2(acc.qgraph, load_board(board))
                rows.append({"model": name, "jobs": jobs, **{f"{k}_s": v for k, v in seconds.items()}})
                print(f"| {name} | {jobs:,} | {seconds['before']:.1f} | {seconds['now']:.1f} | "
                      f"{seconds['now'] / seconds['before']:.2f}x |", flush=True)
        finally:
            timing.conv_cost = now
    save_result("timing_speed", {"before": rev, "boards": args.boards, "rows": rows, "same_costs": True})


if __name__ == "__main__":
    main()
