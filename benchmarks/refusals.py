"""How many random nets the engines refuse at compile, and why (one line each).

Run: ``python -m benchmarks.refusals [--kinds branchy_net shuffle_net] [--seeds 200]``. Each net of
tests/random_nets.py's generators, seeds 0 to N - 1, compiled for golden and the program interpreter
at the test tiling of its seed (tests/test_differential.py), as the differential tests compile it;
prints, per generator, the nets taken and each refusal's line (its first 120 characters), and says
whether the calibration chose a format blind for a gradient zero on every calibration image.
Results in benchmarks/results/refusals.json.
"""

from __future__ import annotations

import argparse
import json
import warnings
from datetime import date

import xaihls
from benchmarks.switch import RESULTS
from tests import random_nets
from tests.test_differential import TILINGS
from xaihls.errors import XaiHlsError

KINDS = ("branchy_net", "shuffle_net", "fork_net", "windowed_pool_net", "random_dag_net")


def measure(kind: str, seeds: int) -> dict:
    net = getattr(random_nets, kind)
    refused = []
    for seed in range(seeds):
        model, shape, calibration = net(seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                xaihls.compile(model, shape, calibration=calibration, tiling=TILINGS[seed % len(TILINGS)], ig_steps=3,
                               backends=("golden", "program"))
            except XaiHlsError as exc:
                blind = any("chosen blind" in str(w.message) for w in caught)
                refused.append({"seed": seed, "why": str(exc)[:120], "blind": blind})
    return {"kind": kind, "nets": seeds, "taken": seeds - len(refused), "refused": refused}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--seeds", type=int, default=200)
    args = ap.parse_args()
    results = [measure(k, args.seeds) for k in args.kinds]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "refusals.json").write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2) + "\n")
    for r in results:
        print(f"{r['kind']}: {r['taken']} of {r['nets']} taken")
        for x in r["refused"]:
            print(f"  seed {x['seed']}{' (a format chosen blind)' if x['blind'] else ''}: {x['why']}")


if __name__ == "__main__":
    main()
