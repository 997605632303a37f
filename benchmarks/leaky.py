"""LeakyReLU on the Engine v2 RTL (Verilator): what the split a·x + ReLU((1 - a)·x) costs a network.

Run: ``python -m benchmarks.leaky [--boards pynq-z2]``, under the shared heavy-tool lock. A
Darknet-style classifier (YOLOv3-tiny's backbone on 3 x 32 x 32: 3 x 3 convolutions of 16, 32, 64 and
128 channels, each with a BatchNorm and a LeakyReLU(0.1), max-pools between them, a global mean and a
Linear), deterministic random weights, and the same net with ReLUs. Each is planned for the board
(its own buffers and memories), both Programs run on one Verilator build (SystemVerilog DDR model at latency 24) for predict and
saliency, every run compared with golden bit for bit and with ``timing.method_cycles``, every job of
the saliency run with ``timing.job_cost``. The leaky jobs are those the split adds (the per-channel
affine with its ReLU, the Add, and their backward jobs: the layers ``<name>.pos`` and ``<name>``).

Results in benchmarks/results/leaky.json.
"""

from __future__ import annotations

import torch
from torch import nn

import xaihls
from benchmarks import switch
from xaihls.frontend.ir import Add
from xaihls.models.edge import _randomize_batchnorm
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2

SHAPE = (3, 32, 32)
RUNS = (None, "saliency")


class Darknet(nn.Module):
    """YOLOv3-tiny's first four stages as a classifier; ``act`` makes each activation."""

    def __init__(self, act, seed: int = 0, widths: tuple[int, ...] = (16, 32, 64, 128), classes: int = 10):
        super().__init__()
        torch.manual_seed(seed)
        layers, c = [], SHAPE[0]
        for k, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), act()]
            if k < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)
        _randomize_batchnorm(self)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


NETS = {"leaky": lambda: nn.LeakyReLU(0.1), "relu": nn.ReLU}


def measure(board: str) -> dict:
    calibration = torch.rand((8, *SHAPE), generator=torch.Generator().manual_seed(1))
    x = torch.rand((1, *SHAPE), generator=torch.Generator().manual_seed(2))
    built = {}
    for kind, act in NETS.items():
        acc = xaihls.compile(Darknet(act).eval(), SHAPE, calibration=calibration, backends=("golden",),
                             methods=("saliency",))
        plan = plan_v2(acc.qgraph, load_board(board))
        built[kind] = (acc, plan.program, plan.engine)
    engines = {(engine.tm, engine.tn) for *_, engine in built.values()}
    assert len(engines) == 1, "one array shape for both nets"
    (tm, tn), = engines
    return {"board": board, "tm": tm, "tn": tn, "nets": switch.measure_programs(built, x, RUNS, _split)}


def _split(d, layer) -> dict:
    """Whether a job is one the split adds: the per-channel affine with its ReLU (``<name>.pos``) or the Add
    (``<name>``, reading ``<name>.relu``)."""
    return {"split": layer is not None and (layer.name.endswith(".pos") or (
        isinstance(layer, Add) and any(name.endswith(".relu") for name in layer.inputs)))}


def markdown(result: dict) -> str:
    lines = [f"**Darknet-style classifier on {result['board']}** ({result['tm']} x {result['tn']})", "",
             "| activation | jobs (forward / backward) | predict | saliency | worst run vs model | jobs of the split "
             "(saliency run): cycles | ReLU bits, pool indices, weight rows | bit-exact |",
             "|---|---|---|---|---|---|---|---|"]
    base = {r["run"]: r["cycles"] for r in result["nets"]["relu"]["runs"]}
    for kind, net in result["nets"].items():
        runs = {r["run"]: r for r in net["runs"]}
        worst = max((r["cycles"] / r["model_cycles"] - 1 for r in net["runs"]), key=abs)
        split = [j for j in net["jobs"] if j["split"]]
        ratio = "" if kind == "relu" else " ({:.2f}x)"
        lines.append(f"| {kind} | {net['forward_jobs']} / {net['backward_jobs']} | "
                     f"{runs['predict']['cycles']:,}{ratio.format(runs['predict']['cycles'] / base['predict'])} | "
                     f"{runs['saliency']['cycles']:,}{ratio.format(runs['saliency']['cycles'] / base['saliency'])} | "
                     f"{worst:+.1%} | {len(split)} jobs, {sum(j['rtl'] for j in split):,} | "
                     f"{net['mask_bits']:,}, {net['index_entries']:,}, {net['w_depth']} | "
                     f"{'yes' if all(r['bit_exact'] for r in net['runs']) else 'NO'} |")
    worst_job = max(abs(j["deviation"]) for net in result["nets"].values() for j in net["jobs"])
    lines += ["", f"Every job within {worst_job:.1%} of the cycle model."]
    return "\n".join(lines)


def main() -> None:
    switch.main_boards(__doc__, measure, markdown, "leaky.json")


if __name__ == "__main__":
    main()
