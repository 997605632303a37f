"""Global average pools summed in the write-back (contract SUM) on the Engine v2 RTL (Verilator):
a grid of positions over the map whose accumulators the write-back sums, against one position
and a pass a pixel.

Run: ``python -m benchmarks.pool_sums [--models ds_cnn resnet8 mobilenet_v2_tiny] [--boards
pynq-z2]``, under the shared heavy-tool lock. For each zoo model (random weights, one calibration
image) and board: the planner's engine and Program (docs/engine_v2.md, "Global average pools
summed"), and beside it the same engine's Program with ``lowering.POOL_SUMS`` off, for predict and
saliency (benchmarks.switch: one Verilator build, bit-exact checks, the cycle model per run and per
job). Results in benchmarks/results/pool_sums.json.
"""

from __future__ import annotations

from benchmarks import switch
from xaihls.plan.contract import Flag

RUNS = (None, "saliency")


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "POOL_SUMS", "summed", "a pass a pixel", RUNS,
                          lambda d, layer: {"summed": d.has(Flag.SUM)})


def markdown(result: dict) -> str:
    return switch.marked_table(result, "summed", "global pool", "summed jobs")


def main() -> None:
    switch.main(__doc__, ["ds_cnn", "resnet8", "mobilenet_v2_tiny"], measure, markdown, "pool_sums.json")


if __name__ == "__main__":
    main()
