"""Adds a block at a time (lowering.ADDS_BY_BLOCK) on the Engine v2 RTL (Verilator): a residual Add
of more channels than the array's lanes as one job a block of tn channels, each reading that block
of both operands, against one dense job whose every m-tile passes over every block of both.

Run: ``python -m benchmarks.adds_by_block [--models resnet8] [--boards pynq-z2 ultra96-v2]``, under
the shared heavy-tool lock. For each zoo model (random weights, one calibration image) and board:
the planner's engine and Program (docs/engine_v2.md, "Adds a block at a time"), and beside it the
same engine's Program with ``lowering.ADDS_BY_BLOCK`` off, for predict and saliency
(benchmarks.switch: one Verilator build, bit-exact checks, the cycle model per run and per job).
Results in benchmarks/results/adds_by_block.json.
"""

from __future__ import annotations

from benchmarks import switch
from xaihls.frontend.ir import Add

RUNS = (None, "saliency")


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "ADDS_BY_BLOCK", "by block", "dense", RUNS,
                          lambda d, layer: {"add": isinstance(layer, Add)})


def markdown(result: dict) -> str:
    return switch.marked_table(result, "add", "Add jobs", "the Adds' jobs", own=True)


def main() -> None:
    switch.main(__doc__, ["resnet8"], measure, markdown, "adds_by_block.json")


if __name__ == "__main__":
    main()
