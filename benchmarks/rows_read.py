"""Strided one-row kernels reading only their rows (lowering.rows_read) on the Engine v2 RTL
(Verilator): a convolution of one kernel row and row stride s (a ResNet's strided 1 x 1
projection) loading the map of every s-th row, against loading every row.

Run: ``python -m benchmarks.rows_read [--models resnet8] [--boards pynq-z2]``, under the shared
heavy-tool lock. For each zoo model (random weights, one calibration image) and board: the
planner's engine and Program (docs/engine_v2.md, "Inputs kept across m-tiles", its last
paragraph), and beside it the same engine's Program with ``lowering.ROWS_READ`` off, for predict
and saliency (benchmarks.switch: one Verilator build, bit-exact checks, the cycle model per run and
per job). Results in benchmarks/results/rows_read.json.
"""

from __future__ import annotations

from benchmarks import switch
from xaihls.frontend.ir import Conv2d

RUNS = (None, "saliency")


def _reads_rows(d, layer) -> bool:
    """A forward job of a one-row kernel of row stride > 1 that walks its input at stride 1."""
    return (isinstance(layer, Conv2d) and layer.kernel[0] == 1 and layer.stride[0] > 1 and d.ky == 1
            and d.isy == 1 and d.iky == 1)


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "ROWS_READ", "rows read", "every row", RUNS,
                          lambda d, layer: {"rows_read": _reads_rows(d, layer)})


def markdown(result: dict) -> str:
    return switch.marked_table(result, "rows_read", "input rows", "strided 1-row jobs")


def main() -> None:
    switch.main(__doc__, ["resnet8"], measure, markdown, "rows_read.json")


if __name__ == "__main__":
    main()
