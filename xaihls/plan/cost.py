"""The cycle model: what each descriptor costs on the engine, and the roofline bound it is held to.

The schedule it models (docs/program.md, "Schedule"), which the RTL implements, at a DDR
latency of L cycles (request to first data, last write beat to response; EngineConfig.ddr_latency,
default DDR_LATENCY = the simulated DDR's):

- Every descriptor is read first: descriptor_fetch(L) = FETCH_CYCLES + (L - 1). A job that
  loads and writes exposes two more round trips, its first load and its last write's response:
  stream_latency(L) = STREAM_CYCLES + 2 (L - 1) (a seed, which only writes: one).
- CONV: tiles run in (output-channel tile, row tile, input-channel tile) order with double
  buffering across every tile boundary: the job's first load is exposed, then each tile
  costs max(compute, loads of the next tile), the last its compute; a row tile's write-back runs under the next
  row tile's computation (ping-pong accumulators) and stalls it only if longer.
  compute = KY*KX*rows*OW + PIPELINE_DEPTH (II = 1 over taps and positions, Tm x Tn MACs a cycle);
  loads = max(bytes / bytes_per_cycle, BURST_ISSUE per burst, Little's law: at most
  READ_OUTSTANDING bursts in flight, each for L + its beats): bursts are pipelined; a channel's
  rows are one contiguous run (tiles are full-width), each weight run is contiguous, and a burst
  is at most 2 KiB; write-back = max(one output position a cycle, bytes / bytes_per_cycle, at
  most WRITE_OUTSTANDING responses awaited, each for L).
- Pools: Tm channels a cycle (the write-back lanes) in chunks of Tm channels and of the
  pooled rows the accumulator set holds: the first chunk's load is exposed, each chunk
  computes while the next loads (the same bounds on loads and writes as CONV); its output rows
  are written while it computes, or, rows shorter than 16 words, as one run per lane after its
  compute, under the next chunk's. ReLU, seed and post-processing: one element a cycle, or the
  DDR transfer if slower, plus their round trips.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from xaihls.plan.engine import DDR_LATENCY
from xaihls.plan.program import Descriptor, Flag, Op

PIPELINE_DEPTH = 8  # MAC pipeline fill: operand read, multiply, add, accumulate write
BURST_ISSUE = 1  # cycles to issue one AXI burst address (bursts are pipelined: several outstanding)
WRITE_DRAIN = 4  # write-back pipeline: requantize, ReLU, pool compare before the first beat
# A job's cycles around its DDR round trips at a DDR latency of 1 (measured on the RTL): the
# descriptor read (24 beats of 48 words, the decode) and, for a job, the mover and loader
# pipelines before its first beat and the write-back's tail after its last. Each round trip a
# job exposes adds L - 1.
FETCH_CYCLES = 32
STREAM_CYCLES = 24


def descriptor_fetch(ddr_latency: int = DDR_LATENCY) -> int:
    """Reading one descriptor before its job starts: one DDR round trip."""
    return FETCH_CYCLES + (ddr_latency - 1)


def stream_latency(ddr_latency: int = DDR_LATENCY, loads: bool = True) -> int:
    """The DDR round trips a job exposes: its first load (if it loads) and its last write's response."""
    return STREAM_CYCLES + (2 if loads else 1) * (ddr_latency - 1)


STREAM_LATENCY = stream_latency()  # at the default DDR latency
DESCRIPTOR_FETCH = descriptor_fetch()
MAX_BURST_BYTES = 2048  # AXI4: 256 beats of 8 bytes
# Bursts in flight: the read mover keeps at most META_DEPTH read bursts open, the simulated DDR
# (xaihls_sim_axi_ram WRITE_DEPTH) at most 16 write responses pending; by Little's law a long
# DDR latency then caps the rate of many small bursts (fully connected tiles, strided rows).
READ_OUTSTANDING = 16
WRITE_OUTSTANDING = 16
READ_TURNAROUND = 2  # cycles a read burst holds its slot beyond the latency and its beats
TILES_AHEAD = 4  # tiles (or chunks) the loader requests ahead of the one the buffers take (its TQ_DEPTH)
TILE_TURNAROUND = 7  # cycles a tile holds its place beyond the latency


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


def _read_stream(nbytes: float, bursts: int, bpc: float, ddr_latency: int) -> int:
    """One tile's (or chunk's) loads when they follow others': the port's rate or, when the DDR
    is slow, Little's law on what is in flight: READ_OUTSTANDING bursts, each holding its slot
    for the latency and its beats, and TILES_AHEAD tiles, each for a round trip."""
    if not nbytes:
        return 0
    flight = (bursts * (ddr_latency + READ_TURNAROUND) + math.ceil(nbytes / 8)) / READ_OUTSTANDING
    ahead = (ddr_latency + TILE_TURNAROUND) / TILES_AHEAD
    return max(_transfer(nbytes, bursts, bpc), math.ceil(flight), math.ceil(ahead))


def _write_stream(cycles: int, bursts: int, ddr_latency: int) -> int:
    """Write bursts that follow others: ``cycles`` at the port's rate or, Little's law, at most
    WRITE_OUTSTANDING responses awaited at once, each for a round trip."""
    return max(cycles, math.ceil(bursts * (ddr_latency + 1) / WRITE_OUTSTANDING))


def _last_writes(cycles: int, writes: int, ddr_latency: int) -> int:
    """A job's last write stream: its last round trip is the job's own (stream_latency)."""
    return max(cycles, writes - (ddr_latency + 1))


def _lanes(total: int, width: int) -> list[tuple[int, int]]:
    """(lanes, how many tiles) for ``total`` items in tiles of ``width``: full ones, then the rest."""
    full, rest = divmod(total, width)
    return [(width, full)] * (full > 0) + [(rest, 1)] * (rest > 0)


def _bursts(run_bytes: int, runs: int) -> int:
    """Bursts for ``runs`` contiguous runs of ``run_bytes`` (256 beats of 8 bytes at most)."""
    return runs * math.ceil(run_bytes / MAX_BURST_BYTES) if run_bytes else 0


def conv_cost(d: Descriptor, tm: int, tn: int, bpc: float, direction: str, ddr_latency: int = DDR_LATENCY) -> JobCost:
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
    L = ddr_latency
    compute_total = memory_total = 0
    for m_lanes, m_count in _lanes(d.m, tm):
        cls = []
        for rt, r_count in row_classes:
            r0 = rt * d.tile_step
            rows = min(d.tile_rows, conv_rows - r0)
            rows_real = _rows_in_map(d, r0, rows)  # input rows inside the map: the rest is padding
            compute = d.ky * d.kx * rows * d.ow + PIPELINE_DEPTH
            loads = []  # (cycles, how many n-tiles)
            ports = []  # the same tiles' loads at the port's rate (the job's first tiles, requested at its start)
            # the first n-tile also loads the bias (one run of m_lanes words)
            bias = (d.flags & Flag.BIAS) != 0
            classes = [(n_lanes, c) for n_lanes, c in n_classes]
            if bias:
                classes = [(classes[0][0], 1, True)] + [(w, c - (k == 0), False) for k, (w, c) in enumerate(classes)]
            else:
                classes = [(w, c, False) for w, c in classes]
            for n_lanes, n_count, with_bias in classes:
                if not n_count:
                    continue
                run = 2 * rows_real * d.iw  # one channel's rows: contiguous in DDR (full-width tiles)
                w_run = (n_lanes if abs(d.ws_n) == block else m_lanes) * block * 2 if d.ky and d.kx else 0
                w_runs = m_lanes if abs(d.ws_n) == block else n_lanes
                nbytes = n_lanes * run + w_run * w_runs + (2 * m_lanes if with_bias else 0)
                # lanes that each load their whole plane load them as one run (fully connected layers)
                in_bursts = _bursts(n_lanes * run, 1) if rows_real == d.ih else _bursts(run, n_lanes)
                bursts = in_bursts + _bursts(w_run, w_runs) + with_bias
                loads.append((_read_stream(nbytes, bursts, bpc, L), n_count))
                ports.append(_transfer(nbytes, bursts, bpc))
            exposed = ports[0]  # a row tile's first load, when it is exposed
            n_tiles = sum(c for _, c in loads)
            # each tile's compute overlaps the next tile's load; summed here against its own
            # load, corrected below by shifting every row tile's first load to the tile before it
            tiles = sum(max(compute, cyc) * cnt for cyc, cnt in loads)
            if pooled:
                p0 = r0 // d.pool_sh
                out_rows = min(d.pool_oh, p0 + (rows - d.pool_kh) // d.pool_sh + 1) - p0
                outputs = out_rows * d.pool_ow
                out_cycles = math.ceil(2 * m_lanes * outputs / bpc)
                span = d.pool_ow
            elif d.osx > 1:  # a transposed phase's row: every word between its outputs moves (strobed beats)
                out_rows, span = rows, (d.ow - 1) * d.osx + 1
                out_cycles = m_lanes * rows * math.ceil(span / 4) * math.ceil(8 / bpc)
            else:
                out_rows, span = rows, d.ow
                out_cycles = math.ceil(2 * m_lanes * rows * d.ow / bpc)
            # the drain's write commands: one a row and lane, or one a lane for the row tile's rows
            # when they are short and contiguous
            if span < MERGE_SPAN and d.osx == 1:
                w_bursts = _bursts(2 * out_rows * span, m_lanes)
            else:
                w_bursts = m_lanes * out_rows * _bursts(2 * span, 1)
            port = out_cycles
            out_cycles = _write_stream(port, w_bursts, L)
            write_back = max(rows * d.ow, out_cycles) + WRITE_DRAIN
            last_back = max(rows * d.ow, _last_writes(port, out_cycles, L)) + WRITE_DRAIN
            detail = [(cyc, port, cnt) for (cyc, cnt), port in zip(loads, ports)]
            cls += [[tiles, write_back, loads[0][0], compute, exposed, last_back, detail]] * r_count
            compute_total += m_count * r_count * compute * n_tiles
            memory_total += m_count * r_count * (sum(c * k for c, k in loads) + out_cycles)
        groups += [list(g) for g in cls * m_count]
    # the loader requests the job's first TILES_AHEAD tiles at its start: they arrive at the
    # port's rate behind the first load, the in-flight bounds hold only from there on
    start = 0
    for g in groups:
        if start >= TILES_AHEAD:
            break
        free, g[0] = TILES_AHEAD - start, 0
        g[2] = g[4] if start < TILES_AHEAD else g[2]
        for cyc, port, cnt in g[6]:
            k = min(free, cnt)
            free -= k
            g[0] += max(g[3], port) * k + max(g[3], cyc) * (cnt - k)
        start += sum(cnt for *_, cnt in g[6])
    first_load = groups[0][4]
    for k, g in enumerate(groups):  # tile i costs max(compute, load of tile i + 1); the last, its compute
        following = max(g[3], groups[k + 1][2]) if k + 1 < len(groups) else g[3]
        g[0] += following - max(g[3], g[2])
    # ping-pong accumulators: a row tile's write-back runs under the next row tile's tiles
    total = sum(t for t, *_ in groups) + groups[-1][5]
    total += sum(max(0, groups[k][1] - groups[k + 1][0]) for k in range(len(groups) - 1))
    total += first_load + stream_latency(ddr_latency)
    macs = _job_macs(d)
    min_bytes = 2 * (d.n * d.ih * d.iw + d.m * d.n * d.ky * d.kx + d.m * (d.pool_oh * d.pool_ow if pooled
                                                                             else d.oh * d.ow))
    bound = max(math.ceil(macs / (tm * tn)), math.ceil(min_bytes / bpc))
    return JobCost(d.layer, "conv", direction, total + descriptor_fetch(ddr_latency), compute_total, memory_total,
                   macs, bound)


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


def pool_cost(d: Descriptor, tm: int, bpc: float, direction: str, out_depth: int | None = None,
              ddr_latency: int = DDR_LATENCY) -> JobCost:
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
    out_rows = math.ceil((d.ih if backward else d.pool_oh) / row_chunks)  # a chunk's output rows per lane
    out_row_bytes = 2 * (d.iw if backward else d.pool_ow)
    chunks = []  # (load, writes) per chunk, in order
    for lanes, count in _lanes(d.n, tm):
        in_bytes = 2 * lanes * in_words / row_chunks
        load = _read_stream(in_bytes, _bursts(math.ceil(in_bytes / lanes), lanes), bpc, ddr_latency)
        w_bursts = _bursts(out_rows * out_row_bytes, lanes) if merged else lanes * out_rows * _bursts(out_row_bytes, 1)
        port = math.ceil(2 * lanes * out_words / row_chunks / bpc)
        writes = _write_stream(port, w_bursts, ddr_latency)
        last = _last_writes(port, writes, ddr_latency)
        port_load = math.ceil(in_bytes / bpc)
        if not chunks:
            first = port_load  # the exposed first load: the port's rate
        chunks += [(load, writes, port_load)] * (count * row_chunks)
    chunks[-1] = (chunks[-1][0], last, chunks[-1][2])
    # the first TILES_AHEAD chunks are requested at the job's start: the port's rate
    stage = [compute if k + 1 >= len(chunks) else
             max(compute, chunks[k + 1][2] if k + 1 < TILES_AHEAD else chunks[k + 1][0]) for k in range(len(chunks))]
    if merged:  # two-stage pipeline: compute (with the next load), then the chunk's write
        busy = stage[0] + sum(max(stage[k], chunks[k - 1][1]) for k in range(1, len(chunks))) + chunks[-1][1]
    else:
        busy = sum(max(c, w) for c, (_, w, _) in zip(stage, chunks))
    memory = sum(r + w for r, w, _ in chunks)
    cycles = first + stream_latency(ddr_latency) + busy + WRITE_DRAIN + descriptor_fetch(ddr_latency)
    return JobCost(d.layer, Op(d.op).name.lower(), direction, cycles, compute * len(chunks), memory, 0, max(memory, 1))


def elementwise_cost(d: Descriptor, tm: int, bpc: float, direction: str, out_depth: int | None = None,
                     ddr_latency: int = DDR_LATENCY) -> JobCost:
    """Pools (``pool_cost``); ReLU and seed: one element a cycle, or the DDR transfer if slower."""
    if d.op in (Op.MAXPOOL, Op.AVGPOOL, Op.MAXPOOL_BWD, Op.AVGPOOL_BWD):
        return pool_cost(d, tm, bpc, direction, out_depth, ddr_latency)
    steps = d.n
    memory = math.ceil(2 * d.n * (2 if d.op == Op.RELU else 1) / bpc)
    stream = stream_latency(ddr_latency, loads=d.op != Op.SEED)  # the seed only writes
    cycles = max(steps, memory) + stream + WRITE_DRAIN + descriptor_fetch(ddr_latency)
    return JobCost(d.layer, Op(d.op).name.lower(), direction, cycles, steps, memory, 0, max(memory, 1))


def job_cost(d: Descriptor, tm: int, tn: int, bpc: float, direction: str, out_depth: int | None = None,
             ddr_latency: int = DDR_LATENCY) -> JobCost:
    """``out_depth``: the engine's accumulator depth (pool jobs chunk their rows to fit it);
    ``ddr_latency``: cycles from a DDR request to its data (EngineConfig.ddr_latency)."""
    if d.op == Op.CONV:
        return conv_cost(d, tm, tn, bpc, direction, ddr_latency)
    return elementwise_cost(d, tm, bpc, direction, out_depth, ddr_latency)


POST_CYCLES = 15  # the post-processing unit's pipeline around one pass (one read stream)
POST_STREAM_CYCLES = 9  # each further read stream
POST_CHUNK_BEATS = 8  # the unit reads in commands of 8 beats, two in flight a stream (16-beat FIFOs)
HEADER_CYCLES = 20  # the controller's header read (one round trip)
ARGMAX_CYCLES = 16  # the logits read, the result written (two round trips)
LOGITS_SAVE_CYCLES = 25  # integrated gradients: the logits kept and restored (two round trips each)
IG_TABLE_CYCLES = 6  # integrated gradients: one (alpha, weight) pair read (one round trip)


def post_cycles(elems: int, bpc: float, streams: int, ddr_latency: int = DDR_LATENCY) -> int:
    """An element-wise pass of the post-processing unit over ``streams`` int16 tensors: one read
    and one written (2), two read and one written (3), or one read into the on-chip sum (1). One
    element a cycle, or the port's rate; with a slow DDR, each stream's 8-beat commands, two in
    flight, each taking the latency, its beats and their 32 elements."""
    reads, writes = (streams - 1, 1) if streams > 1 else (1, 0)
    chunks = math.ceil(math.ceil(2 * elems / 8) / POST_CHUNK_BEATS)
    window = math.ceil(chunks * (ddr_latency + 5 * POST_CHUNK_BEATS) / 2)
    busy = max(elems + (ddr_latency - 1), math.ceil(2 * elems * streams / bpc) + (ddr_latency - 1), window)
    return POST_CYCLES + POST_STREAM_CYCLES * (reads - 1) + busy + writes * (ddr_latency - 1)
