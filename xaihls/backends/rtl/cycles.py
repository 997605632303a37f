"""Verilator cycles per descriptor next to the cost model (xaihls/plan/cost.py).

The RTL logs one profile entry per phase (header, image copy, each descriptor from fetch to
its last write response, argmax, post-processing). ``compare`` lines the first forward and
backward pass up with the Program's descriptors and ``job_cost``.

Where the schedule of docs/program.md and cost.py's closed form disagree for a hardware
reason, ``proposed_conv_cost`` is cost.py's CONV formula with the two changes this RTL
suggests (cost.py itself is not changed here):

1. A tile costs max(compute, *next* tile's load), and the last tile its compute (the
   docstring's schedule); cost.py charges max(compute, own load) for every tile plus the first
   load, i.e. one load too many on load-bound jobs (fully connected layers).
2. A row written with an output stride (transposed-convolution phases, osx > 1) moves
   ceil(span / 4) beats of 8 bytes, span = (ow - 1) * osx + 1 words, not 2 * ow bytes:
   AXI beats are 8 bytes whatever the strobes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xaihls.plan import cost
from xaihls.plan.cost import JobCost, job_cost
from xaihls.plan.engine import EngineConfig
from xaihls.plan.program import Descriptor, Flag, Op, Program

TOLERANCE = 0.10


@dataclass(frozen=True)
class CycleRow:
    direction: str
    index: int          # position in its list
    op: str
    layer: int
    rtl: int
    model: int          # cost.job_cost
    proposed: int       # with the formula changes above (CONV), else the model
    macs: int

    @property
    def deviation(self) -> float:
        return (self.rtl - self.model) / self.model

    @property
    def proposed_deviation(self) -> float:
        return (self.rtl - self.proposed) / self.proposed

    @property
    def within(self) -> bool:
        """Within 10% of cost.py, or of the proposed formula where that applies."""
        return abs(self.deviation) <= TOLERANCE or (self.proposed != self.model and
                                                     abs(self.proposed_deviation) <= TOLERANCE)


def descriptor_profile(program: Program, profile: list[tuple[str, int]]) -> list[tuple[str, int, Descriptor, int]]:
    """(direction, index, descriptor, cycles) of the first forward and first backward pass."""
    fwd = [c for k, c in profile if k == "forward"][: len(program.forward)]
    bwd = [c for k, c in profile if k == "backward"][: len(program.backward)]
    out = [("forward", i, d, c) for i, (d, c) in enumerate(zip(program.forward, fwd))]
    out += [("backward", i, d, c) for i, (d, c) in enumerate(zip(program.backward, bwd))]
    return out


def _lanes(total: int, width: int):
    full, rest = divmod(total, width)
    return [(width, full)] * (full > 0) + [(rest, 1)] * (rest > 0)


def proposed_conv_cost(d: Descriptor, tm: int, tn: int, bpc: float) -> int:
    """cost.conv_cost's schedule with the changes of the module docstring (tile by tile)."""
    pooled = bool(d.flags & Flag.POOL)
    conv_rows = (d.pool_oh - 1) * d.pool_s + d.pool_k if pooled else d.oh
    block = max(min(abs(d.ws_m), abs(d.ws_n)), 1)
    tiles = []       # (compute, load) in execution order
    groups = []      # (index of the row tile's last tile, write-back)
    for mt in range(d.m_tiles):
        m_lanes = min(tm, d.m - mt * tm)
        for rt in range(d.row_tiles):
            r0 = rt * d.tile_step
            rows = min(d.tile_rows, conv_rows - r0)
            rows_real = cost._rows_in_map(d, r0, rows)
            compute = d.ky * d.kx * rows * d.ow + cost.PIPELINE_DEPTH
            for nt in range(d.n_tiles):
                n_lanes = min(tn, d.n - nt * tn)
                run = 2 * rows_real * d.iw
                w_run = (n_lanes if abs(d.ws_n) == block else m_lanes) * block * 2 if d.ky and d.kx else 0
                w_runs = m_lanes if abs(d.ws_n) == block else n_lanes
                nbytes = n_lanes * run + w_run * w_runs
                tiles.append((compute, cost._transfer(nbytes, cost._bursts(run, n_lanes) +
                                                      cost._bursts(w_run, w_runs), bpc)))
            if pooled:
                p0 = r0 // d.pool_s
                outputs = (min(d.pool_oh, p0 + (rows - d.pool_k) // d.pool_s + 1) - p0) * d.pool_ow
                out_cycles = math.ceil(2 * m_lanes * outputs / bpc)
            elif d.osx > 1:
                span = (d.ow - 1) * d.osx + 1
                out_cycles = m_lanes * rows * math.ceil(span / 4) * math.ceil(8 / bpc)
            else:
                out_cycles = math.ceil(2 * m_lanes * rows * d.ow / bpc)
            groups.append((len(tiles) - 1, max(rows * d.ow, out_cycles) + cost.WRITE_DRAIN))
    busy = [max(c, tiles[i + 1][1]) if i + 1 < len(tiles) else c for i, (c, _) in enumerate(tiles)]
    total = tiles[0][1] + cost.STREAM_LATENCY + sum(busy)
    ends = [g for g, _ in groups]
    for k, (last, wb) in enumerate(groups):
        after = sum(busy[last + 1: ends[k + 1] + 1]) if k + 1 < len(groups) else 0
        total += max(0, wb - after) if k + 1 < len(groups) else wb
    return total + cost.DESCRIPTOR_FETCH


def compare(program: Program, engine: EngineConfig, profile: list[tuple[str, int]]) -> list[CycleRow]:
    rows = []
    for direction, i, d, cycles in descriptor_profile(program, profile):
        jc: JobCost = job_cost(d, engine.tm, engine.tn, engine.bytes_per_cycle, direction)
        proposed = proposed_conv_cost(d, engine.tm, engine.tn, engine.bytes_per_cycle) if d.op == Op.CONV \
            else jc.cycles
        rows.append(CycleRow(direction, i, Op(d.op).name.lower(), d.layer, cycles, jc.cycles, proposed, jc.macs))
    return rows


def markdown(rows: list[CycleRow], names: list[str] | None = None) -> str:
    """A Markdown table of the rows (layer names if given)."""
    out = ["| dir | # | op | layer | RTL cycles | model | dev | proposed | dev |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        layer = names[r.layer] if names and r.layer < len(names) else str(r.layer)
        out.append(f"| {r.direction[:3]} | {r.index} | {r.op} | {layer} | {r.rtl:,} | {r.model:,} | "
                   f"{r.deviation:+.1%} | {r.proposed:,} | {r.proposed_deviation:+.1%} |")
    return "\n".join(out)
