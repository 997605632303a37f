"""Average pools of several divisors on the Engine v2 RTL (Verilator): what a job a region costs.

Run: ``python -m benchmarks.windowed_pools [--boards pynq-z2]``, under the shared heavy-tool lock. An
Inception-style classifier on 3 x 32 x 32 (a stem and a max-pool, two blocks of a 1 x 1 branch, a
1 x 1 then 3 x 3 branch and a pool branch of a 3 x 3 average pool of stride 1 and a 1 x 1 conv, the
branches catted, a max-pool between the blocks, a global mean and a Linear), deterministic random
weights, twice: with pools that count no padding (Keras' 'same' average pooling: windows of 4, 6
and 9 pixels, each job a region of one reciprocal) and with pools that count it (one divisor, one
job). Each is planned for the board (the second on the first one's array), both Programs run on one
Verilator build (``benchmarks.switch.measure_programs``: bit-exact checks, the cycle model per run
and per job). The marked jobs are the average pools' (forward and backward, the global mean's too).

Results in benchmarks/results/windowed_pools.json.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import xaihls
from benchmarks import switch
from xaihls.frontend.ir import AvgPool2d
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2

SHAPE = (3, 32, 32)
RUNS = (None, "saliency")


class _Inception(nn.Module):
    def __init__(self, c: int, width: int, counted: bool):
        super().__init__()
        self.one = nn.Conv2d(c, width, 1)
        self.reduce, self.three = nn.Conv2d(c, width, 1), nn.Conv2d(width, width, 3, padding=1)
        self.pool, self.proj = nn.AvgPool2d(3, 1, 1, count_include_pad=counted), nn.Conv2d(c, width, 1)

    def forward(self, x):
        return torch.cat([F.relu(self.one(x)), F.relu(self.three(F.relu(self.reduce(x)))),
                          F.relu(self.proj(self.pool(x)))], 1)


class InceptionNet(nn.Module):
    def __init__(self, counted: bool, seed: int = 0, width: int = 8, classes: int = 10):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(SHAPE[0], 16, 3, padding=1)
        self.a = _Inception(16, width, counted)
        self.b = _Inception(3 * width, width, counted)
        self.fc = nn.Linear(3 * width, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        x = F.max_pool2d(self.a(x), 2)
        return self.fc(self.b(x).mean((2, 3)))


NETS = {"padding not counted": False, "padding counted": True}


def measure(board: str) -> dict:
    calibration = torch.rand((8, *SHAPE), generator=torch.Generator().manual_seed(1))
    x = torch.rand((1, *SHAPE), generator=torch.Generator().manual_seed(2))
    built, tiling = {}, None
    for kind, counted in NETS.items():  # the second net on the first one's array
        acc = xaihls.compile(InceptionNet(counted).eval(), SHAPE, calibration=calibration, backends=("golden",),
                             methods=("saliency",))
        plan = plan_v2(acc.qgraph, load_board(board), tiling=tiling)
        built[kind], tiling = (acc, plan.program, plan.engine), (plan.engine.tm, plan.engine.tn)
    tm, tn = tiling
    nets = switch.measure_programs(built, x, RUNS, lambda d, layer: {"pool": isinstance(layer, AvgPool2d)})
    return {"model": "inception-style net", "board": board, "tm": tm, "tn": tn, "programs": nets}


def markdown(result: dict) -> str:
    table = switch.marked_table(result, "pool", "average pools", "the average pools' jobs", own=True)
    first, second = result["programs"].values()
    jobs = [f"{kind}: {p['forward_jobs']} / {p['backward_jobs']}" for kind, p in result["programs"].items()]
    ratios = [switch.runs_of(first)[0][run]["cycles"] / switch.runs_of(second)[0][run]["cycles"]
              for run in ("predict", "saliency")]
    return (f"{table}\n\nJobs (forward / backward): {'; '.join(jobs)}. Not counting padding costs "
            f"{ratios[0]:.3f}x the cycles for predict and {ratios[1]:.3f}x for saliency.")


def main() -> None:
    switch.main_boards(__doc__, measure, markdown, "windowed_pools.json")


if __name__ == "__main__":
    main()
