"""Verilator cycles per descriptor next to the cost model (xaihls/plan/cost.py).

The RTL logs one profile entry per phase (header, image copy, each descriptor from fetch to
its last write response, argmax, post-processing). ``compare`` lines the first forward and
backward pass up with the Program's descriptors and ``job_cost``; hw_tests/test_rtl_cycles.py
holds every descriptor to within 10% of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from xaihls.plan.cost import job_cost
from xaihls.plan.engine import EngineConfig
from xaihls.plan.program import Descriptor, Op, Program

TOLERANCE = 0.10


@dataclass(frozen=True)
class CycleRow:
    direction: str
    index: int          # position in its list
    op: str
    layer: int
    rtl: int
    model: int          # cost.job_cost
    macs: int

    @property
    def deviation(self) -> float:
        return (self.rtl - self.model) / self.model

    @property
    def within(self) -> bool:
        return abs(self.deviation) <= TOLERANCE


def descriptor_profile(program: Program, profile: list[tuple[str, int]]) -> list[tuple[str, int, Descriptor, int]]:
    """(direction, index, descriptor, cycles) of the first forward and first backward pass."""
    fwd = [c for k, c in profile if k == "forward"][: len(program.forward)]
    bwd = [c for k, c in profile if k == "backward"][: len(program.backward)]
    out = [("forward", i, d, c) for i, (d, c) in enumerate(zip(program.forward, fwd))]
    out += [("backward", i, d, c) for i, (d, c) in enumerate(zip(program.backward, bwd))]
    return out


def compare(program: Program, engine: EngineConfig, profile: list[tuple[str, int]]) -> list[CycleRow]:
    """Each descriptor's measured cycles next to the model's at the engine's DDR latency."""
    rows = []
    for direction, i, d, cycles in descriptor_profile(program, profile):
        jc = job_cost(d, engine.tm, engine.tn, engine.bytes_per_cycle, direction, engine.out_depth, engine.ddr_latency)
        rows.append(CycleRow(direction, i, Op(d.op).name.lower(), d.layer, cycles, jc.cycles, jc.macs))
    return rows


def markdown(rows: list[CycleRow], names: list[str] | None = None) -> str:
    """A Markdown table of the rows (layer names if given)."""
    out = ["| dir | # | op | layer | RTL cycles | model | RTL vs model |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        layer = names[r.layer] if names and r.layer < len(names) else str(r.layer)
        out.append(f"| {r.direction[:3]} | {r.index} | {r.op} | {layer} | {r.rtl:,} | {r.model:,} | "
                   f"{r.deviation:+.1%} |")
    return "\n".join(out)
