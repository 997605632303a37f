"""Dilated convolutions on the Engine v2 RTL (Verilator): jobs a tap step apart against their spread.

Run: ``python -m benchmarks.dilation [--boards pynq-z2]``, under the shared heavy-tool lock. A
temporal CNN for a sensor window (6 channels x 128 samples: an IMU's accelerometer and gyroscope): a
1 x 1 stem of 16 channels, four residual blocks of a 3-tap convolution at dilations 1, 2, 4 and 8, a
global mean and a Linear; deterministic random weights. Planned for the board; beside the planner's
Program the same engine's with ``lowering.TAP_STEPS`` off (every job walks its spread's zeros);
both on one Verilator build (benchmarks.switch: bit-exact checks, the cycle model per run and per
job). Utilisation = the network's multiply-accumulates (``timing.network_macs``: the kernel's taps
only) / (Tm x Tn x cycles). Results in benchmarks/results/dilation.json.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import xaihls
from benchmarks import switch
from xaihls.frontend.ir import Conv2d

SHAPE = (6, 128)
RUNS = (None, "saliency")


class TemporalNet(nn.Module):
    def __init__(self, seed: int = 0, width: int = 16, dilations: tuple[int, ...] = (1, 2, 4, 8), classes: int = 6):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv1d(SHAPE[0], width, 1)
        self.blocks = nn.ModuleList(nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in dilations)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = x + F.relu(block(x))
        return self.fc(x.mean(2))


def measure(board: str) -> dict:
    gen = torch.Generator().manual_seed(1)
    acc = xaihls.compile(TemporalNet().eval(), SHAPE, calibration=torch.randn((8, *SHAPE), generator=gen),
                         backends=("golden",), methods=("saliency",))
    x = torch.randn((1, *SHAPE), generator=torch.Generator().manual_seed(2))
    return switch.measure_compiled("tcn", acc, x, board, "TAP_STEPS", "steps", "spread", RUNS, lambda d, layer: {
        "dilated": isinstance(layer, Conv2d) and layer.dilation != (1, 1)})


def markdown(result: dict) -> str:
    return switch.marked_table(result, "dilated", "dilated jobs", "dilated convolutions' jobs", own=True)


def main() -> None:
    switch.main_boards(__doc__, measure, markdown, "dilation.json")


if __name__ == "__main__":
    main()
