"""Verilator cycles per job of the Engine v2 RTL next to the cycle model (xaihls/plan/timing.py).

The RTL logs one profile entry per phase (header, image copy, each job from its descriptor's
fetch to its last write response, argmax and result, post-processing). ``compare`` lines up the
first forward and backward lists with the Program's jobs and ``timing.job_cost``, or (``batched``)
the batched lists an integrated-gradients run takes first, or (``image_batch``) the batched lists
of an image batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from xaihls.plan.engine import EngineV2
from xaihls.plan.timing import job_cost

TOLERANCE = 0.10


@dataclass(frozen=True)
class CycleRow:
    direction: str
    index: int
    op: str
    layer: int
    rtl: int
    model: int
    macs: int | None = None  # the network's multiply-accumulates in the job (timing.network_macs); None: unknown

    @property
    def deviation(self) -> float:
        return (self.rtl - self.model) / self.model

    @property
    def within(self) -> bool:
        return abs(self.deviation) <= TOLERANCE


def compare(program, engine: EngineV2, profile: list[tuple[str, int]], ddr_latency: int | None = None,
            macs: tuple[list[int], list[int]] | None = None, batched: bool = False,
            image_batch: bool = False) -> list[CycleRow]:
    """Per job: Verilator's cycles (the run's ``profile``), the model's, and the network's MACs
    (``macs``: per forward and per backward job; default from the Program's network when it has one).
    ``batched``: the profile of an integrated-gradients run of at least ``batch`` steps, whose first
    step batch runs the batched lists after the image's forward list. ``image_batch``: the profile of
    an image batch's start (the batched lists only; a SEED's entry holds its record read)."""
    on_batch = batched or image_batch
    forward, backward = (program.forward_batch, program.backward_batch) if on_batch else (program.forward,
                                                                                         program.backward)
    skip = len(program.forward) if batched else 0
    fwd = [c for k, c in profile if k == "forward"][skip: skip + len(forward)]
    bwd = [c for k, c in profile if k == "backward"][: len(backward)]
    layers = getattr(getattr(program, "qgraph", None), "graph", None)
    rows = []
    for side, (direction, jobs, measured) in enumerate((("forward", forward, fwd), ("backward", backward, bwd))):
        for i, (d, cycles) in enumerate(zip(jobs, measured)):
            jc = job_cost(d, engine, direction, ddr_latency, layers=layers.layers if layers else None,
                          image_batch=image_batch)
            rows.append(CycleRow(direction, i, jc.op, d.layer, cycles, jc.cycles,
                                 macs[side][i] if macs is not None else jc.macs))
    return rows


def markdown(rows: list[CycleRow]) -> str:
    out = ["| dir | # | op | layer | RTL cycles | model | RTL vs model |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.direction[:3]} | {r.index} | {r.op} | {r.layer} | {r.rtl:,} | {r.model:,} | {r.deviation:+.1%} |")
    return "\n".join(out)
