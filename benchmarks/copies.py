"""Exact copies read as the map's own bytes on the Engine v2 RTL (Verilator): what a copy's forward job cost.

Run: ``python -m benchmarks.copies [--boards pynq-z2]``, under the shared heavy-tool lock. The
Inception-style classifier of benchmarks.windowed_pools (its pool branches' 'same' average pools,
which count no padding, each on an exact copy of the block's input beside the 1 x 1 branches: four
copies, ``dag.with_copies``), planned for the board; beside the planner's Program the same engine's
with ``lowering.COPY_ALIASES`` off (a diagonal job copies each map forward); both on one Verilator
build (benchmarks.switch: bit-exact checks, the cycle model per run and per job). The marked jobs
are the copies' (forward; backward, their gradients' terms and rules are the same in both).
Results in benchmarks/results/copies.json.
"""

from __future__ import annotations

import torch

import xaihls
from benchmarks import switch
from benchmarks.windowed_pools import SHAPE, InceptionNet
from xaihls.plan.dag import is_copy

RUNS = (None, "saliency")


def measure(board: str) -> dict:
    calibration = torch.rand((8, *SHAPE), generator=torch.Generator().manual_seed(1))
    x = torch.rand((1, *SHAPE), generator=torch.Generator().manual_seed(2))
    acc = xaihls.compile(InceptionNet(counted=False).eval(), SHAPE, calibration=calibration, backends=("golden",),
                         methods=("saliency",))
    return switch.measure_compiled("inception-style net", acc, x, board, "COPY_ALIASES", "aliases", "copy jobs",
                                   RUNS, lambda d, layer: {"copy": layer is not None and is_copy(layer)})


def markdown(result: dict) -> str:
    return switch.marked_table(result, "copy", "copies", "the copies' jobs", own=True)


def main() -> None:
    switch.main_boards(__doc__, measure, markdown, "copies.json")


if __name__ == "__main__":
    main()
