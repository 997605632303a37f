"""What keeping the Linear layers' weights on chip would buy a single-image run, by the cycle model.

Run: ``python -m benchmarks.linear_weights [--boards pynq-z2 ultra96-v2] [--model cifar_ref]`` (a few
seconds, no simulation: the cycle model is within about 1% of Verilator on every job of these runs,
benchmarks/RESULTS.md, "Chained passes").

A Linear job is a 1 x 1 grid: each of its (m-tile, n-tile) tiles is one pass of one position whose
Tm x Tn weights are used once. Its passes are therefore bound by how fast weights reach the array,
not by its MACs: today by the larger of the weight stream (Tm·Tn·2 bytes at the bus's rate) and
the pass period (at least Tm + Tn + 4 cycles: the shadow chain takes a row a cycle, then the swap is
skewed across the columns, ``timing.PASS_SLACK``). Weights kept on chip remove the stream and leave
the period. The table prints predict and saliency as they run now, then with every Linear job
costed at its passes alone (its edges, the descriptor fetch and write-back, left out, so each
what-if is generous):

- ``on chip``: weights on chip, loaded into the array as now: passes × (Tm + Tn + 4);
- ``tile a cycle``: a whole Tm x Tn tile into the array in one cycle (a Tm·Tn·16-bit weight path),
  passes Tn + 3 apart (the accumulators' read-to-write distance on the one position);
- ``MACs only``: the job's MACs on the whole array.
"""

from __future__ import annotations

import argparse
import math

import xaihls
from benchmarks.utilisation import run_macs
from xaihls.frontend.ir import Linear
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import timing
from xaihls.plan.boards import load_board
from xaihls.plan.contract import Op
from xaihls.plan.planner_v2 import plan_v2
from xaihls.plan.timing import PASS_SLACK, job_cost, method_cycles

WHAT_IF = ("on chip", "tile a cycle", "MACs only")


def linear_costs(program, engine) -> dict[str, tuple[int, ...]]:
    """Per direction: the Linear jobs' cycles now, then under each of WHAT_IF."""
    layers = program.qgraph.graph.layers
    out = {}
    for direction, jobs in (("forward", program.forward), ("backward", program.backward)):
        sums = [0] * (1 + len(WHAT_IF))
        for d in jobs:
            if d.op == Op.SEED or not isinstance(layers[d.layer], Linear):
                continue
            cost = job_cost(d, engine, direction, layers=layers)
            passes = d.ky * d.kx * max(1, d.slots) * sum(timing._n_tiles(d, engine, mt) for mt in range(d.m_tiles))
            for i, c in enumerate((cost.cycles, passes * (engine.tm + engine.tn + PASS_SLACK),
                                   passes * (engine.tn + 3), math.ceil(cost.array_macs / (engine.tm * engine.tn)))):
                sums[i] += c
        out[direction] = tuple(sums)
    return out


def measure(board: str, model: str) -> list[dict]:
    entry = get_zoo_model(model)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency",))
    plan = plan_v2(acc.qgraph, load_board(board))
    program, engine = plan.program, plan.engine
    linear = linear_costs(program, engine)
    rows = []
    for method in (None, "saliency"):
        directions = ("forward",) if method is None else ("forward", "backward")
        now = method_cycles(program, engine, method)
        peak = run_macs(program, engine, method, 32) / (engine.tm * engine.tn)
        row = {"board": board, "tm": engine.tm, "tn": engine.tn, "run": method or "predict",
               "linear": sum(linear[x][0] for x in directions), "cycles": {"now": now}}
        for i, name in enumerate(WHAT_IF, start=1):
            row["cycles"][name] = now - row["linear"] + sum(linear[x][i] for x in directions)
        row["utilisation"] = {k: peak / v for k, v in row["cycles"].items()}
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    head = "| plan | run | Linear jobs now | now | " + " | ".join(WHAT_IF) + " |"
    lines = [head, "|" + "---|" * (4 + len(WHAT_IF))]
    for r in rows:
        cells = [f"{r['cycles'][k]:,} ({r['utilisation'][k]:.1%})" for k in ("now", *WHAT_IF)]
        lines.append(f"| {r['board']} {r['tm']} × {r['tn']} | {r['run']} | {r['linear']:,} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["pynq-z2", "ultra96-v2"])
    ap.add_argument("--model", default="cifar_ref")
    args = ap.parse_args(argv)
    print(markdown([r for b in args.boards for r in measure(b, args.model)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
