"""The cycle model: what each descriptor costs on the engine, and the roofline bound it is held to.

The schedule it models (docs/program.md, "Schedule"), which the RTL implements:

- CONV: tiles run in (output-channel tile, row tile, input-channel tile) order with double
  buffering across every tile boundary: the job's first load is exposed, then each tile
  costs max(compute, loads of the next tile), the last its compute; a row tile's write-back runs under the next
  row tile's computation (ping-pong accumulators) and stalls it only if longer.
  compute = KY*KX*rows*OW + PIPELINE_DEPTH (II = 1 over taps and positions, Tm x Tn MACs a cycle);
  loads = STREAM_LATENCY + max(bytes / bytes_per_cycle, BURST_ISSUE per burst): bursts are
  pipelined (several outstanding); a channel's rows are one contiguous run (tiles are
  full-width), each weight run is contiguous, and a burst is at most 2 KiB;
  write-back = max(one output position a cycle, bytes / bytes_per_cycle) + STREAM_LATENCY.
- Pools: Tm channels a cycle (the write-back lanes) in chunks of Tm channels and of the
  pooled rows the accumulator set holds: the first chunk's load is exposed, each chunk
  computes while the next loads; its output rows are written while it computes, or, rows
  shorter than 16 words, as one run per lane after its compute, under the next chunk's. ReLU, seed and post-processing: one element a cycle, or the DDR transfer
  if slower. Each stream pays STREAM_LATENCY once.
- Every descriptor costs DESCRIPTOR_FETCH cycles to read.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from xaihls.plan.program import Descriptor, Flag, Op

DDR_LATENCY = 24  # cycles from an AXI request to its first data / response (the simulated DDR's default)
PIPELINE_DEPTH = 8  # MAC pipeline fill: operand read, multiply, add, accumulate write
BURST_ISSUE = 1  # cycles to issue one AXI burst address (bursts are pipelined: several outstanding)
STREAM_LATENCY = 24  # first data of a stream of bursts after its first address (DDR read latency)
WRITE_DRAIN = 4  # write-back pipeline: requantize, ReLU, pool compare before the first beat
DESCRIPTOR_FETCH = 32  # 48 words over a 64-bit port plus latency
MAX_BURST_BYTES = 2048  # AXI4: 256 beats of 8 bytes


@dataclass(frozen=True)
class JobCost:
    """Cycles of one descriptor, and what bounds it."""

    layer: int
    op: str
    direction: str
    cycles: int
    compute_cycles: int  # the MAC array busy (CONV) or the element unit busy
    memory_cycles: int  # DDR transfers alone
    macs: int
    bound_cycles: int  # roofline: max(MACs / (Tm*Tn), minimal bytes / bytes per cycle)

    def utilization(self, tm: int, tn: int) -> float:
        """MAC-array utilisation: the compute lower bound over the cycles taken."""
        return self.macs / (tm * tn) / self.cycles if self.macs else 0.0


def _transfer(nbytes: float, bursts: int, bpc: float) -> int:
    """Pipelined bursts at the port's rate (the read latency is paid once per job)."""
    if not nbytes:
        return 0
    return max(math.ceil(nbytes / bpc), bursts * BURST_ISSUE)


def _lanes(total: int, width: int) -> list[tuple[int, int]]:
    """(lanes, how many tiles) for ``total`` items in tiles of ``width``: full ones, then the rest."""
    full, rest = divmod(total, width)
    return [(width, full)] * (full > 0) + [(rest, 1)] * (rest > 0)


def _bursts(run_bytes: int, runs: int) -> int:
    """Bursts for ``runs`` contiguous runs of ``run_bytes`` (256 beats of 8 bytes at most)."""
    return runs * math.ceil(run_bytes / MAX_BURST_BYTES) if run_bytes else 0


def conv_cost(d: Descriptor, tm: int, tn: int, bpc: float, direction: str) -> JobCost:
    """Cycles of a CONV job under the modelled schedule (closed form over tile classes).

    Tiles run in (m-tile, row-tile, n-tile) order; the loader works one tile ahead across
    every tile boundary (ping-pong input and weight buffers), so only the job's first
    load is exposed and a tile costs max(its compute, the next tile's load), the last tile
    its compute; each row tile's write-back runs after its last compute. A row written with
    an output stride (transposed phases) moves every 8-byte beat its outputs span.
    """
    pooled = bool(d.flags & Flag.POOL)
    conv_rows = (d.pool_oh - 1) * d.pool_sh + d.pool_kh if pooled else d.oh
    block = max(min(abs(d.ws_m), abs(d.ws_n)), 1)  # a (m, n) kernel's taps, contiguous in DDR
    row_classes = [(rt, 1) for rt in range(d.row_tiles)] if d.row_tiles <= 2 else \
        [(0, d.row_tiles - 1), (d.row_tiles - 1, 1)]
    n_classes = _lanes(d.n, tn)
    groups = []  # per row tile, in execution order: [tiles, write-back, first tile's load, compute]
    compute_total = memory_total = 0
    for m_lanes, m_count in _lanes(d.m, tm):
        cls = []
        for rt, r_count in row_classes:
            r0 = rt * d.tile_step
            rows = min(d.tile_rows, conv_rows - r0)
            rows_real = _rows_in_map(d, r0, rows)  # input rows inside the map: the rest is padding
            compute = d.ky * d.kx * rows * d.ow + PIPELINE_DEPTH
            loads = []  # (cycles, how many n-tiles)
            for n_lanes, n_count in n_classes:
                run = 2 * rows_real * d.iw  # one channel's rows: contiguous in DDR (full-width tiles)
                w_run = (n_lanes if abs(d.ws_n) == block else m_lanes) * block * 2 if d.ky and d.kx else 0
                w_runs = m_lanes if abs(d.ws_n) == block else n_lanes
                nbytes = n_lanes * run + w_run * w_runs
                loads.append((_transfer(nbytes, _bursts(run, n_lanes) + _bursts(w_run, w_runs), bpc), n_count))
            n_tiles = sum(c for _, c in loads)
            # each tile's compute overlaps the next tile's load; summed here against its own
            # load, corrected below by shifting every row tile's first load to the tile before it
            tiles = sum(max(compute, cyc) * cnt for cyc, cnt in loads)
            if pooled:
                p0 = r0 // d.pool_sh
                outputs = (min(d.pool_oh, p0 + (rows - d.pool_kh) // d.pool_sh + 1) - p0) * d.pool_ow
                out_cycles = math.ceil(2 * m_lanes * outputs / bpc)
            elif d.osx > 1:  # a transposed phase's row: every word between its outputs moves (strobed beats)
                out_cycles = m_lanes * rows * math.ceil(((d.ow - 1) * d.osx + 1) / 4) * math.ceil(8 / bpc)
            else:
                out_cycles = math.ceil(2 * m_lanes * rows * d.ow / bpc)
            write_back = max(rows * d.ow, out_cycles) + WRITE_DRAIN
            cls += [[tiles, write_back, loads[0][0], compute]] * r_count
            compute_total += m_count * r_count * compute * n_tiles
            memory_total += m_count * r_count * (sum(c * k for c, k in loads) + out_cycles)
        groups += [list(g) for g in cls * m_count]
    first_load = groups[0][2]
    for k, g in enumerate(groups):  # tile i costs max(compute, load of tile i + 1); the last, its compute
        following = max(g[3], groups[k + 1][2]) if k + 1 < len(groups) else g[3]
        g[0] += following - max(g[3], g[2])
    # ping-pong accumulators: a row tile's write-back runs under the next row tile's tiles
    total = sum(t for t, *_ in groups) + groups[-1][1]
    total += sum(max(0, groups[k][1] - groups[k + 1][0]) for k in range(len(groups) - 1))
    total += first_load + STREAM_LATENCY
    macs = _job_macs(d)
    min_bytes = 2 * (d.n * d.ih * d.iw + d.m * d.n * d.ky * d.kx + d.m * (d.pool_oh * d.pool_ow if pooled
                                                                             else d.oh * d.ow))
    bound = max(math.ceil(macs / (tm * tn)), math.ceil(min_bytes / bpc))
    return JobCost(d.layer, "conv", direction, total + DESCRIPTOR_FETCH, compute_total, memory_total, macs, bound)


def _rows_in_map(d: Descriptor, r0: int, rows: int) -> int:
    """Input rows of the map a tile of ``rows`` output rows from ``r0`` reads."""
    ys = [(r0 + r) * d.isy + t * d.iky + d.iy0 for r in (0, rows - 1) for t in (0, max(d.ky - 1, 0))]
    lo, hi = max(min(ys), 0), min(max(ys), d.ih - 1)
    return max(hi - lo + 1, 0)


@functools.lru_cache(maxsize=4096)
def _job_macs(d: Descriptor) -> int:
    """Useful multiply-accumulates: taps that land inside the input map (padding excluded)."""
    rows_ok = 0
    for oy in range((d.pool_oh - 1) * d.pool_sh + d.pool_kh if d.flags & Flag.POOL else d.oh):
        rows_ok += sum(1 for t in range(d.ky) if 0 <= oy * d.isy + t * d.iky + d.iy0 < d.ih)
    cols_ok = 0
    for ox in range(d.ow):
        cols_ok += sum(1 for t in range(d.kx) if 0 <= ox * d.isx + t * d.ikx + d.ix0 < d.iw)
    return d.m * d.n * rows_ok * cols_ok


MERGE_SPAN = 16  # output rows shorter than this many words go out as one run per lane and chunk


def _row_entries(words: int) -> int:
    """64-bit accumulator-set entries a row of ``words`` outputs takes (it may start mid-entry)."""
    return (words + 6) >> 2


def _pool_chunk_rows(d: Descriptor, backward: bool, out_depth: int | None) -> int:
    """Pooled rows per chunk: all of them if a lane's share fits the accumulator set (out_depth
    64-bit entries of 4 words), else the largest power of two that does (the RTL's rule)."""
    if out_depth is None:
        return d.pool_oh
    halo = max(d.pool_kh - d.pool_sh, 0)
    out_w = d.iw if backward else d.pool_ow

    def fits(rp: int) -> bool:
        rows = rp * d.pool_sh + halo if backward else rp
        entries = _row_entries(rows * out_w) if out_w < MERGE_SPAN else rows * _row_entries(out_w)
        in_words = (rp + 1) * d.pool_ow if backward else ((rp - 1) * d.pool_sh + d.pool_kh) * d.iw
        return entries <= out_depth and in_words + 3 <= 4 * out_depth

    if fits(d.pool_oh):
        return d.pool_oh
    rp = 1
    while 2 * rp < d.pool_oh and fits(2 * rp):
        rp *= 2
    return rp


def pool_cost(d: Descriptor, tm: int, bpc: float, direction: str, out_depth: int | None = None) -> JobCost:
    """A pool job, forward or backward, in chunks of Tm channels (and of as many pooled rows as
    the accumulator set holds): the first chunk's load is exposed, each chunk computes while
    the next one loads. Output rows of MERGE_SPAN words or more are written row by row while
    the chunk computes; shorter rows go out as one run per lane after the chunk's compute,
    under the next chunk's compute."""
    backward = d.op in (Op.MAXPOOL_BWD, Op.AVGPOOL_BWD)
    reach = math.ceil(d.pool_kh / d.pool_sh) * math.ceil(d.pool_kw / d.pool_sw) if backward else 1  # outputs that can route to one input
    row_chunks = math.ceil(d.pool_oh / _pool_chunk_rows(d, backward, out_depth))
    in_words = d.pool_oh * d.pool_ow if backward else d.ih * d.iw  # per channel
    out_words = d.ih * d.iw if backward else d.pool_oh * d.pool_ow
    merged = (d.iw if backward else d.pool_ow) < MERGE_SPAN
    compute = math.ceil(d.ih * d.iw * reach / row_chunks)  # every position of the larger map, lanes in parallel
    chunks = []  # (load, writes) per chunk, in order
    for lanes, count in _lanes(d.n, tm):
        load = math.ceil(2 * lanes * in_words / row_chunks / bpc)
        chunks += [(load, math.ceil(2 * lanes * out_words / row_chunks / bpc))] * (count * row_chunks)
    stage = [max(compute, chunks[k + 1][0]) if k + 1 < len(chunks) else compute for k in range(len(chunks))]
    if merged:  # two-stage pipeline: compute (with the next load), then the chunk's write
        busy = stage[0] + sum(max(stage[k], chunks[k - 1][1]) for k in range(1, len(chunks))) + chunks[-1][1]
    else:
        busy = sum(max(c, w) for c, (_, w) in zip(stage, chunks))
    memory = sum(r + w for r, w in chunks)
    cycles = chunks[0][0] + STREAM_LATENCY + busy + WRITE_DRAIN + DESCRIPTOR_FETCH
    return JobCost(d.layer, Op(d.op).name.lower(), direction, cycles, compute * len(chunks), memory, 0, max(memory, 1))


def elementwise_cost(d: Descriptor, tm: int, bpc: float, direction: str, out_depth: int | None = None) -> JobCost:
    """Pools (``pool_cost``); ReLU and seed: one element a cycle, or the DDR transfer if slower."""
    if d.op in (Op.MAXPOOL, Op.AVGPOOL, Op.MAXPOOL_BWD, Op.AVGPOOL_BWD):
        return pool_cost(d, tm, bpc, direction, out_depth)
    steps = d.n
    memory = math.ceil(2 * d.n * (2 if d.op == Op.RELU else 1) / bpc)
    cycles = max(steps, memory) + STREAM_LATENCY + WRITE_DRAIN + DESCRIPTOR_FETCH
    return JobCost(d.layer, Op(d.op).name.lower(), direction, cycles, steps, memory, 0, max(memory, 1))


def job_cost(d: Descriptor, tm: int, tn: int, bpc: float, direction: str, out_depth: int | None = None) -> JobCost:
    """``out_depth``: the engine's accumulator depth (pool jobs chunk their rows to fit it)."""
    if d.op == Op.CONV:
        return conv_cost(d, tm, tn, bpc, direction)
    return elementwise_cost(d, tm, bpc, direction, out_depth)


def post_cycles(elems: int, bpc: float, streams: int) -> int:
    """An element-wise pass of the post-processing unit over ``streams`` int16 tensors."""
    return max(elems, math.ceil(2 * elems * streams / bpc)) + STREAM_LATENCY + WRITE_DRAIN
