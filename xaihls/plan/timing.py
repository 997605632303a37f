"""The cycle model of Engine v2 (docs/engine_v2.md): what each job of a Program costs on the RTL
engine, for a DDR of a given latency and bandwidth, and what predict and each method cost.

The schedule it models, which the RTL (hls_templates/rtl_v2) implements:

- A job: the controller reads its descriptor (one burst: latency + the descriptor's beats),
  makes the few products the units start from (DECODE cycles), starts the units, and waits for
  all of them and for the last write response.
- CONV: tiles (m-tile, row tile, n-tile) in order through three units that hand buffers over
  with tokens. The loader reads a tile's input rows (one command a row, rows outside the map
  skipped) and its weights into one of two buffer sets; a tile's commands go out once the
  previous tile's first beat has taken its set, and its own first beat waits on the read channel
  until the walker frees one; data arrive `ddr_latency` cycles after a command and stream at one
  beat a cycle (or the DDR's bytes per cycle). The walker runs a tile's passes (kernel taps) one
  after another: a pass takes max(positions + 1, TM + TN + PASS_SLACK) cycles (the next pass's TM
  weight rows go through the shadow chain while it runs; no + 1 where passes are chained); a
  tile's first pass waits for its loads and its first weight rows. A row tile's sums go to one
  of two output sets; the write-back drains a set (E lanes a cycle: one beat per output pixel and TN / E lanes; a pool (max or SUM) reads its window one
  element a cycle) while the walker fills the other, a burst a row (a row tile's rows of one
  pixel back to back in one), each burst holding one of the DDR's WRITE_BURSTS places until its
  answer, latency + 1 cycles.
- SEED: the write-back alone, one beat a cycle; in an image batch after reading its slot's
  target back from the slot's result record (one beat).
- Post-processing (image copy, |g|, x * g, the IG path point, sum and products): chunks of up
  to CHUNK beats; per chunk the loader reads its tensors, lanes 0..E-1 run one or two passes,
  and the write-back writes the chunk under the next chunk's loads. An op that reads takes one
  buffer set a chunk (half chunks for two input tensors): the next chunk loads while this one runs.
- A slot job: its m-tiles once a slot, one sequence of tiles.
- An image batch (``images`` = the Program's batch): the batched lists once; the copy, the
  target read, the argmax and the result record, and the post-processing once a slot; then
  record 0 read back and written again.
- Grad-CAM: the backward list's first ``n_backward_cam`` jobs, then the Grad-CAM list (CONV jobs,
  costed as every job); guided Grad-CAM then the whole backward list and the product of two
  tensors (as input x gradient's).

Every quantity is a sum over tiles in closed form (a recurrence over the tiles of a job, O(tiles));
hw_tests/test_rtl_v2_cycles.py holds it to 10% of Verilator per job at DDR latencies 1 and 100.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, replace

from xaihls.frontend.ir import INPUT, Conv2d
from xaihls.plan.contract import DESCRIPTOR, HEADER, RESULT, Flag, Op
from xaihls.plan.engine import EngineV2
from xaihls.plan.lowering import _phase_taps

DECODE = 9  # descriptor decode: 8 products on one multiplier, the last one landing, then the start
FETCH_ISSUE = 4  # a read command's cycles before its address reaches the DDR (controller, splitter, AR)
PASS_SLACK = 4  # cycles of a pass beyond the shadow chain's TM rows and the TN-column skew
FILL_DELAY = 4  # a tile's first pass after its last beat: the token, the first weight row read, the chain full
DRAIN_DELAY = 5  # a row tile's last position to its output set in the write-back's hands (TN + DRAIN_DELAY)
WB_PIPE = 6  # the write-back's pipeline and output FIFO before a beat reaches the write mover
JOB_END = 3  # last write response to the controller's next step
BIAS_TOKEN = 3  # an m-tile's last write-back cycle to the loader taking its bias set for m-tile + 2
CONV_TAIL = 3  # a CONV job's last write-back cycle to its last beat's write, as measured
SET_WAIT = 1  # a set released by the walker to the first beat the read channel then lets through
WRITE_BURSTS = 16  # write bursts the DDR holds unanswered (the simulation's, as an interconnect would): a burst a
# row takes (latency + 1) / WRITE_BURSTS cycles at least, which binds rows of a beat or two at long latencies
POST_TAKE = 1  # a one-set post chunk: its set released to the loader's first command
POST_LOADED = 1  # a post chunk's last beat to its first position issued


@dataclass(frozen=True)
class JobCost:
    """Cycles of one job, and what bounds it."""

    layer: int
    op: str
    direction: str
    cycles: int
    compute_cycles: int  # the MAC array busy
    memory_cycles: int  # DDR transfers alone
    array_macs: int  # what the array computes: channels padded to whole tiles count, taps on the padding not
    bound_cycles: int  # roofline of the job as mapped: max(array MACs / (Tm*Tn), each direction's transfers at the DDR's rate)
    macs: int | None = None  # the network's multiply-accumulates in the job (None: the layers were not given)

    def utilization(self, tm: int, tn: int) -> float:
        """MAC-array utilisation: the network's MACs over what the array could do in the cycles taken
        (padding channels, pooling and data movement are not useful work)."""
        if self.macs is None:
            raise ValueError("job_cost(..., layers=...) is needed for the network's MACs of a job")
        return self.macs / (tm * tn) / self.cycles


@dataclass(frozen=True)
class _Dram:
    latency: int
    beat_cycles: float  # cycles a beat takes at the DDR's rate (>= 1)

    def stream(self, beats: int) -> int:
        return math.ceil(beats * self.beat_cycles)


def _dram(engine: EngineV2, ddr_latency: int | None, bytes_per_cycle: float | None) -> _Dram:
    latency = engine.ddr_latency if ddr_latency is None else ddr_latency
    bpc = engine.bytes_per_cycle if bytes_per_cycle is None else bytes_per_cycle
    beat_bytes = 2 * engine.beat_elems
    return _Dram(latency, max(1.0, beat_bytes / bpc) if bpc else 1.0)


def fetch_cycles(engine: EngineV2, dram: _Dram) -> int:
    """Reading one descriptor and decoding it."""
    beats = math.ceil(4 * DESCRIPTOR.field_words / (2 * engine.beat_elems))  # the words with fields
    return FETCH_ISSUE + dram.latency + dram.stream(beats) + DECODE


def _n_tiles(d, engine: EngineV2, mt: int) -> int:
    if not d.flags >> int(Flag.DIAG) & 1:
        return d.n_tiles
    if d.flags >> int(Flag.LANES) & 1:
        return int(mt < d.n_tiles)
    per = engine.tm // engine.tn
    return max(0, min(per, d.n_tiles - mt * per))


def _valid_rows(d, rt: int, last: bool) -> int:
    first = rt * d.load_step + d.load_lo
    count = d.load_rows_last if last else d.load_rows
    return max(0, min(first + count, d.ih) - max(first, 0))


def _wb_row_tile(d, engine: EngineV2, rows: int, r0: int, mt: int, dram: _Dram) -> int:
    """Cycles the write-back takes for one row tile (every block of the m-tile the tensor has)."""
    g = engine.tn // engine.beat_elems
    lanes = d.flags >> int(Flag.LANES) & 1
    blocks = 1 if lanes else max(1, min(engine.tm // engine.tn, d.out_blocks - mt * (engine.tm // engine.tn)))
    burst = (dram.latency + 1) / WRITE_BURSTS  # a write burst's least time: its answer frees its place
    if d.flags >> int(Flag.POOL) & 1:
        p0 = r0 // d.pool_sh
        pooled = max(0, min(d.pool_oh, p0 + (rows - d.pool_kh) // d.pool_sh + 1) - p0)
        per_row = max(1 + d.pool_ow * g * d.pool_kh * d.pool_kw, burst)
        per_block = math.ceil(pooled * per_row) + 2
    else:
        span = _row_span(d)
        per_row = 1 + max(span * g, dram.stream(span * g))
        if not joined_writes(d, engine):  # a burst a row
            per_row = max(per_row, burst)
        per_block = math.ceil(rows * per_row) + 2
    return blocks * per_block + 2


def joined_writes(d, engine: EngineV2) -> bool:
    """Whether the write-back writes a row tile's rows of a block as one burst: rows of one pixel one after
    another in DDR, no pool, no lane groups (the RTL's ``joined``)."""
    plain = not d.flags >> int(Flag.POOL) & 1 and not d.flags >> int(Flag.LANES) & 1
    return plain and _row_span(d) == 1 and d.osy * d.out_row_bytes == 2 * engine.tn


def joined_rows(d, engine: EngineV2) -> bool:
    """Whether the loader reads a tile's input rows on the map as one command: rows of one pixel one after
    another in DDR (a 1-D map as a column), which one command a row would read a beat or two a burst."""
    return d.iw == 1 and d.in_row_bytes == 2 * engine.tn


def skips_rows(d, engine: EngineV2) -> bool:
    """Whether the walker skips a grid row whose input row is off the map (one cycle instead of
    ``ow``) on the passes other than a row tile's first and final: only on grids at least Tn
    columns wide, where a pass that skips leading rows still reads a position no sooner than
    Tn + 2 cycles after the pass before it did (the accumulators' read-to-write distance)."""
    return d.ow >= engine.tn


def _rows_in(y: int, step: int, rows: int, n: int) -> int:
    """How many of the rows y, y + step, ... (``rows`` of them) lie in 0 .. n - 1."""
    if step < 0:
        y, step = y + (rows - 1) * step, -step
    if step == 0:
        return rows if 0 <= y < n else 0
    lo, hi = max(0, -(y // step)), min(rows - 1, (n - 1 - y) // step)
    return max(0, hi - lo + 1)


class _Walks:
    """The walker's passes over one row tile (docs/engine_v2.md, "Rows off the map" and "Chained
    passes"): pass i (tap row i // kx) walks ``rows`` grid rows of ``ow`` positions a cycle each,
    except that a row whose input row lies off the map takes one cycle where the walker skips it,
    which it does on every pass but the row tile's first (it zeroes the sums) and final (it writes
    them out)."""

    def __init__(self, d, engine: EngineV2, rt: int, rows: int, period_min: int):
        self.w_once, self.tn, self.period_min = d.w_once, engine.tn, period_min
        skips = skips_rows(d, engine)
        # passes chained (docs/engine_v2.md, "Chained passes"): a position is re-read as long after
        # as the passes' starts are apart on a grid that walks every row or has one; on one that
        # skips rows off the map, ow + rows - 1 cycles or more after
        self.chains = not skips or rows == 1 or d.ow + rows >= engine.tn + 3
        self.full = rows * d.ow
        ih = d.ih * (d.pool_sh if d.unpool else 1)  # UNPOOL walks the window grid of the pooled map
        y0 = d.iy0 + rt * d.tile_step * d.isy
        self.lens = []
        for ky in range(d.ky):
            off = rows - _rows_in(y0 + ky * d.iky, d.isy, rows, ih) if skips else 0
            self.lens += [self.full - off * (d.ow - 1)] * d.kx
        self._tiles = {}

    def tile(self, first: bool, final: bool) -> tuple[int, int]:
        """A tile's passes (the row tile's first n-tile, its last): cycles from its first pass's
        start to the next tile's, and to its last position's issue."""
        if (first, final) not in self._tiles:
            lens = list(self.lens)
            if first:
                lens[0] = self.full
            if final:
                lens[-1] = self.full
            # a pass loads the next pass's weights into the shadow chain; w_once keeps the first
            # pass's, and a pass waits only for the accumulators' read-to-write distance (TN + 3
            # cycles from one pass's start to the next's). One waiting cycle follows a pass where
            # the passes are not chained; chained, the next starts once that distance and its
            # weights allow
            wait = 0 if self.chains else 1
            periods = [(max(n, self.tn + 3) if self.chains else max(n, self.tn + 2) + 1) if self.w_once
                       else max(n + wait, self.period_min) for n in lens]
            self._tiles[first, final] = sum(periods), sum(periods[:-1]) + lens[-1]
        return self._tiles[first, final]


def conv_cost(d, engine: EngineV2, direction: str, dram: _Dram) -> JobCost:
    tm, tn, e = engine.tm, engine.tn, engine.beat_elems
    g = tn // e
    passes = d.ky * d.kx
    slots = max(1, d.slots)
    fetch = fetch_cycles(engine, dram)
    if not passes:
        # no tap reaches this stride phase: the write-back alone writes zeros (or the bias)
        wb = slots * sum(_wb_row_tile(d, engine, d.last_rows if rt == d.row_tiles - 1 else d.tile_rows,
                                      rt * d.tile_step, mt, dram) for mt in range(d.m_tiles) for rt in range(d.row_tiles))
        total = fetch + 2 + wb + WB_PIPE + dram.latency + JOB_END
        return JobCost(d.layer, "conv", direction, total, 0, wb, 0, 1, 0)
    period_min = tm + tn + PASS_SLACK
    w_passes = d.w_passes  # weight passes a tile streams: one with w_once
    bias = d.flags >> int(Flag.BIAS) & 1
    # event times (cycles from the job's start)
    loader = 1              # the loader's next free cycle (issuing commands)
    data_end = 0            # the DMA's last data beat so far
    compute_free = 0        # the walker's next pass decision
    set_free = [0, 0]       # when each buffer set was released by the walker
    taken = 0               # when the last tile's first beat took its set
    out_free = [0, 0]       # when each output set was released by the write-back
    wb_free = 0
    t = 0
    r_tile = 0
    compute_total = memory_total = 0
    last_done = 0
    mt_done = []            # when the write-back finished each m-tile (frees its bias set)
    row_walks = {}          # each row tile's passes, the same in every m-tile
    # a slot job's slots one after another: its m-tiles again at each slot's tensors
    for mt in [mt for _ in range(slots) for mt in range(d.m_tiles)]:
        nts = _n_tiles(d, engine, mt)
        if bias and len(mt_done) >= 2:
            loader = max(loader, mt_done[-2] + BIAS_TOKEN)
        loader += 1  # L_MT
        if bias:
            cmd = loader
            start = max(cmd + FETCH_ISSUE - 1 + dram.latency, data_end)
            data_end = start + dram.stream(tm // e)
            memory_total += dram.stream(tm // e)
            loader += 1
        for rt in range(d.row_tiles):
            last = rt == d.row_tiles - 1
            rows = d.last_rows if last else d.tile_rows
            count = d.load_rows_last if last else d.load_rows
            nv = _valid_rows(d, rt, last)
            if d.in_keep and mt > 0:  # the input loaded by m-tile 0 stays in the buffer (contract in_keep)
                count = nv = 0
            walks = row_walks.get(rt) or row_walks.setdefault(rt, _Walks(d, engine, rt, rows, period_min))
            middle = {}  # the state after each middle tile (neither the row tile's first nor its last)
            k = 0
            while k < nts:
                # loads
                # the tile's commands go out once the previous tile's first beat took its set;
                # its own first beat waits for a free set (the read channel holds it)
                issue = max(loader, taken) + 1
                cmd = issue + 1
                beats_in = nv * d.iw * g
                beats_w = w_passes * tm * g // (tn if d.w_diag else 1)  # w_diag: a lane's weight a lane
                start = max(cmd + FETCH_ISSUE - 1 + dram.latency, data_end)
                if beats_in:
                    start = taken = max(start, set_free[t % 2] + SET_WAIT)
                data_end = start + dram.stream(beats_in)
                # the loader walks the tile's rows a cycle each, those on the map of a joined tile in one
                w_cmd = cmd + (count - nv + 1 if nv and joined_rows(d, engine) else count) + 1
                start = max(w_cmd + FETCH_ISSUE - 1 + dram.latency, data_end)
                if not beats_in:
                    start = taken = max(start, set_free[t % 2] + SET_WAIT)
                data_end = start + dram.stream(beats_w)
                memory_total += dram.stream(beats_in + beats_w)
                loaded = data_end + 1
                loader = w_cmd + 1
                # compute: the tile's passes
                first = loaded + FILL_DELAY + tm
                if k == 0:
                    first = max(first, out_free[r_tile % 2])
                w0 = max(first, compute_free)
                took, issued = walks.tile(k == 0, k == nts - 1)
                end = w0 + issued
                compute_free = w0 + took
                compute_total += took
                set_free[t % 2] = end + 1
                t += 1
                k += 1
                if 1 < k < nts - 1:  # tiles k - 1 and k are middle tiles: each pair of them adds the same
                    # cycles once the state after one is the state two tiles before it shifted by the same
                    # cycles in every part (every event time is a max and a sum of earlier ones): those pairs
                    # are added at once, up to the row tile's last tile, which runs as it is
                    state = (loader, taken, data_end, compute_free, *set_free)
                    before = middle.get(k - 2)
                    shift = state[0] - before[0] if before else 0
                    skipped = (nts - 1 - k) // 2
                    if before and skipped and all(a - b == shift for a, b in zip(state, before)):
                        loader, taken, data_end, compute_free = (v + skipped * shift for v in state[:4])
                        set_free = [v + skipped * shift for v in set_free]
                        memory_total += 2 * skipped * dram.stream(beats_in + beats_w)
                        compute_total += 2 * skipped * took
                        t += 2 * skipped
                        k += 2 * skipped
                    else:
                        middle[k] = state
            # the row tile's output set to the write-back
            done = end + tn + DRAIN_DELAY
            wb = _wb_row_tile(d, engine, rows, rt * d.tile_step, mt, dram)
            wb_start = max(done, wb_free)
            wb_free = wb_start + wb
            out_free[r_tile % 2] = wb_free + 1
            r_tile += 1
            last_done = wb_free
            memory_total += wb
        mt_done.append(wb_free)
    total = fetch + last_done + CONV_TAIL + dram.latency + JOB_END
    macs = _array_macs(d, engine)
    pairs = sum(_n_tiles(d, engine, mt) for mt in range(d.m_tiles))  # (m-tile, n-tile) weight streams
    # AXI reads and writes have channels of their own: each direction streams at the DDR's rate
    w_row = 1 if d.w_diag else tn  # weights a lane stores a pass
    read_bytes = 2 * slots * (d.n_tiles * _rows_reached(d) * d.iw * tn + pairs * tm * w_row * w_passes)
    write_bytes = 2 * slots * d.out_blocks * _pixels_written(d) * tn
    bound = max(math.ceil(macs / (tm * tn)), math.ceil(max(read_bytes, write_bytes) / (2 * e / dram.beat_cycles)))
    return JobCost(d.layer, "conv", direction, total, compute_total, memory_total, macs, bound)


def _row_span(d) -> int:
    """Pixels the write-back puts on the bus for a grid row of a job without a pool: every output
    column (LANES), or the run from the row's first pixel to its last, strobed where an output
    stride skips some (a transposed conv's stride phase, Grad-CAM's upsampling)."""
    return d.opw if d.flags >> int(Flag.LANES) & 1 else (d.ow - 1) * d.osx + 1


def _rows_reached(d) -> int:
    """Input rows of the map a CONV job's grid reads on some pass (at least one; its whole map where it reads
    the pooled rows of an UNPOOL): fewer than the map's where the job writes a part of a larger output (a
    phase view's edge rectangle, ``lowering.phase_edges``), so that its bound counts only what it loads."""
    if d.unpool or d.ky == 0:
        return d.ih
    grid, taps = (d.oh - 1) * d.isy, (d.ky - 1) * d.iky  # row r of pass t reads iy0 + r * isy + t * iky
    lo, hi = d.iy0 + min(grid, 0) + min(taps, 0), d.iy0 + max(grid, 0) + max(taps, 0)
    return max(1, min(hi, d.ih - 1) - max(lo, 0) + 1)


def _pixels_written(d) -> int:
    """Pixels a CONV job's write-back puts on the bus a block: the pooled map (a pool, a SUM's one
    pixel), else a ``_row_span`` a grid row -- not the whole output tensor, of which a stride phase
    writes a part."""
    if d.flags >> int(Flag.POOL) & 1:
        return d.pool_oh * d.pool_ow
    return d.oh * _row_span(d)


def _tap_pairs(d, bounds: tuple[int, int] | None = None, taps=None) -> int:
    """(position, tap) pairs of a job whose operand lies inside the input map (``bounds``: its
    rows and columns; by default the map the engine walks: an UNPOOL job's is the pooled map
    times the window); ``taps``: (rows, columns) predicates of the passes that count (a dilated
    convolution's taps, not the zeros between them; ``_kernel_taps``)."""
    s = d.pool_sh if d.unpool else 1
    ih, iw = bounds or (d.ih * s, d.iw * s)
    keep_y, keep_x = taps or (lambda t: True, lambda t: True)
    rows = sum(_rows_in(d.iy0 + t * d.iky, d.isy, d.oh, ih) for t in range(d.ky) if keep_y(t))
    cols = sum(_rows_in(d.ix0 + t * d.ikx, d.isx, d.ow, iw) for t in range(d.kx) if keep_x(t))
    return rows * cols


def _kernel_taps(layer, d):
    """For job ``d`` of a dilated convolution, which the engines run as its spread (zeros between the
    taps) a tap step g = |iky|, |ikx| apart (``lowering.tap_step``): the passes that are taps of the
    kernel, as (rows, columns) predicates. Pass t of a forward job is spread tap t * g; of a backward
    job's stride phase (ry, rx), spread tap i0 + t * s * g (``lowering._phase_taps``; g is 1 where
    s is not). None for any other layer."""
    dy, dx = getattr(layer, "dilation", (1, 1))
    if (dy, dx) == (1, 1):
        return None
    gy, gx = abs(d.iky), abs(d.ikx)
    if d.iky > 0:
        return lambda t: t * gy % dy == 0, lambda t: t * gx % dx == 0
    (sy, sx), (py, px) = layer.stride, layer.padding
    i0, j0 = (d.oyo + py) % sy, (d.oxo + px) % sx
    return lambda t: (i0 + t * sy * gy) % dy == 0, lambda t: (j0 + t * sx * gx) % dx == 0


def _array_macs(d, engine: EngineV2) -> int:
    """Multiply-accumulates of the job's tiles on operands inside the input map (taps on the
    padding excluded): Tm x Tn a position and pass, Tn on a diagonal job (one input channel an
    output channel), Tm on a diagonal LANES job (one column a lane); channels padded to whole tiles
    count as the array computes them."""
    pairs = sum(_n_tiles(d, engine, mt) for mt in range(d.m_tiles))
    if not d.flags >> int(Flag.DIAG) & 1:
        per_pair = engine.tm * engine.tn
    else:
        per_pair = engine.tm if d.flags >> int(Flag.LANES) & 1 else engine.tn
    return _tap_pairs(d) * pairs * per_pair * max(1, d.slots)


def _reads(layers, j: int) -> str:
    """The name of the tensor layer j reads first (a chain's layer reads the one before it)."""
    layer = layers[j]
    return layer.inputs[0] if layer.inputs else layers[j - 1].name if j else INPUT


def _conv_weight(layer):
    w = getattr(layer, "weight", None)
    return None if w is None or w.dim() < 2 else w


def columns(d, groups: int):
    """A LANES job (``groups`` = tm / tn lane groups) as the diagonal job of the same convolution,
    whose grid has one output column a column; any other job as it is."""
    if not d.flags >> int(Flag.LANES) & 1:
        return d
    isx = d.isx // groups
    return replace(d, ow=d.opw, isx=isx, kx=d.kx - (groups - 1) * isx,
                   ix0=d.ix0 - ((groups - 1) * isx if d.ikx < 0 else 0))


def network_macs(d, layers, groups: int = 1) -> int:
    """The network's multiply-accumulates a job computes: its (position, tap) pairs inside the map
    times the real input and output channels of its Conv2d or Linear layer (a backward job swaps
    their roles, not their product; a grouped or depthwise convolution's are those of its groups).
    A gradient-sum phase job (the transposed pass of a tensor two layers read) computes each
    reader's taps of the phase: the sum over the readers. Other diagonal jobs (max- or
    average-pool, a lone ReLU, a per-channel affine, an Add's identity) and a SEED move data and
    count none; neither do channels padded to whole tiles. A LANES job (``groups`` lane groups)
    counts as the convolution it computes (``columns``), and so does a first convolution on a
    folded image (its kernel's taps, not its passes)."""
    if d.op != Op.CONV or d.layer >= len(layers):
        return 0
    d = columns(d, groups)
    layer = layers[d.layer]
    w = _conv_weight(layer)
    if w is None:
        return 0
    if d.iky < 0:
        read = _reads(layers, d.layer)
        readers = [j for j in range(len(layers)) if _reads(layers, j) == read or read in layers[j].inputs[1:]]
        if len(readers) > 1:
            return sum(_phase_macs(d, layers[j]) for j in readers) * max(1, d.slots)
    if d.flags >> int(Flag.DIAG) & 1 and isinstance(layer, Conv2d) and not layer.depthwise:
        return 0  # a copy of a phase of a dense 1 x 1 convolution's gradient (a mixed gradient sum)
    kernel = getattr(layer, "reach", None)  # a convolution's window (its spread's kernel, where dilated)
    if (d.layer == 0 and d.iky > 0 and not d.flags >> int(Flag.DIAG) & 1 and kernel is not None
            and (d.ky, d.kx) != tuple(kernel) and not layer.dilated):
        # the first convolution on a folded image (lowering.image_fold): a pass holds several taps
        (kh, kw), (py, px) = kernel, layer.padding
        d = replace(d, ky=kh, kx=kw, iky=1, ikx=1, iy0=-py, ix0=-px)
    # an UNPOOL job walks only the rows and columns a pool window covers; the network's transposed
    # conv also multiplies the zero gradients of a ragged edge: the conv's whole output map
    bounds = tuple(layer.out_shape[1:]) if d.unpool else None
    return _tap_pairs(d, bounds, _kernel_taps(layer, d)) * int(w.shape[0]) * int(w.shape[1]) * max(1, d.slots)


def _phase_macs(d, reader) -> int:
    """The MACs of ``reader``'s taps in the stride phase (oyo, oxo) of gradient-sum job ``d``."""
    w = _conv_weight(reader)
    if w is None:  # an Add: the identity
        return 0
    (kh, kw), (sy, sx), (py, px) = reader.reach, reader.stride, reader.padding
    _, ty, iy0 = _phase_taps(kh, sy, py, d.oyo)
    _, tx, ix0 = _phase_taps(kw, sx, px, d.oxo)
    if (sy, sx) == (1, 1) and (d.osy, d.osx) != (1, 1):  # a mixed sum's 1 x 1 term: on its phase's copy
        iy0 = ix0 = 0
    if not (ty and tx):
        return 0
    d = replace(d, ky=ty, kx=tx, iy0=iy0, ix0=ix0, iky=-1, ikx=-1)  # the reader's taps (its spread's, step 1)
    return _tap_pairs(d, None, _kernel_taps(reader, d)) * int(w.shape[0]) * int(w.shape[1])


def word_read_cycles(dram: _Dram) -> int:
    """The controller reading one beat of its own (an image batch's target, a slot's result record)."""
    return FETCH_ISSUE + dram.latency


def seed_cost(d, engine: EngineV2, direction: str, dram: _Dram, image_batch: bool = False) -> JobCost:
    beats = d.out_blocks * engine.tn // engine.beat_elems
    total = fetch_cycles(engine, dram) + 2 + dram.stream(beats) + WB_PIPE + dram.latency + JOB_END
    if image_batch:  # the slot's target read back from its result record first
        total += word_read_cycles(dram)
    return JobCost(d.layer, "seed", direction, total, beats, dram.stream(beats), 0, beats, 0)


COST_FIELDS = ("op", "flags", "layer", "slots", "m_tiles", "n_tiles", "out_blocks", "row_tiles", "tile_rows",
               "last_rows", "tile_step", "load_lo", "load_rows", "load_rows_last", "load_step", "in_keep", "oh", "ow",
               "opw", "osy", "osx", "oyo", "oxo", "ih", "iw", "iy0", "ix0", "isy", "isx", "iky", "ikx", "ky", "kx",
               "w_once", "w_diag", "unpool", "pool_kh", "pool_kw", "pool_sh", "pool_oh", "pool_ow", "in_row_bytes",
               "out_row_bytes")
"""The descriptor fields ``job_cost`` reads: two jobs alike in these cost the same on an engine, whatever their
addresses (a grouped convolution's jobs a group differ in those alone), so the planner keeps one cost for them
(``cost_key``). tests/test_timing.py changes every other field of the zoo's jobs and checks that no cost moves."""
cost_key = operator.attrgetter(*COST_FIELDS)


def job_cost(job, engine: EngineV2, direction: str, ddr_latency: int | None = None,
             bytes_per_cycle: float | None = None, layers=None, image_batch: bool = False) -> JobCost:
    """Cycles of one job (descriptor fetch included) on ``engine`` with a DDR of ``ddr_latency``
    cycles and ``bytes_per_cycle`` (default: the engine's); with the network's ``layers`` (the
    QGraph's graph.layers) also its MACs, for the utilisation. ``image_batch``: a job of an image
    batch's lists (a SEED then reads its slot's target back first)."""
    dram = _dram(engine, ddr_latency, bytes_per_cycle)
    cost = (seed_cost(job, engine, direction, dram, image_batch) if job.op == Op.SEED
            else conv_cost(job, engine, direction, dram))
    return cost if layers is None else replace(cost, macs=network_macs(job, layers, engine.tm // engine.tn))


# ---------------------------------------------------------------------------------------------
# post-processing and whole runs
# ---------------------------------------------------------------------------------------------

POST_STREAMS = {"copy": (1, 1, True), "abs": (1, 1, True), "ixg": (2, 1, True), "ig_point": (2, 2, True),
                "ig_acc": (1, 1, False), "ig_sum": (0, 1, True), "ig_final": (3, 2, True)}
"""post op: (tensors read, passes, a tensor written)."""
FINAL_POST = {"saliency": "abs", "input_x_gradient": "ixg"}
"""The post op that makes a method's attribution from the input gradient (integrated gradients aside)."""


def chunk_beats(engine: EngineV2) -> int:
    """Beats of a post-processing chunk: the smallest of the buffers' depths as the RTL builds them
    (powers of two, at least MIN_DEPTH)."""
    e = engine.as_built()
    return min(e.in_depth, e.w_depth, e.out_depth)


HALF_CHUNK_POSTS = ("ig_point", "ig_final")
"""Post ops of two input tensors: half chunks, the second tensor in the upper half of the chunk's set.
Every op that reads takes one buffer set a chunk (and one weight set): chunks alternate between the
two sets, the next one loading while the walker runs this one; the IG sum (no reads) takes both."""


def post_cycles(op: str, beats: int, engine: EngineV2, ddr_latency: int | None = None,
                bytes_per_cycle: float | None = None) -> int:
    """One post-processing op over ``beats`` beats of each tensor (start to the last write response):
    chunks through the loader (a chunk's reads once its buffer sets are free), the walker (one or
    two passes once the chunk is loaded and an output set is free) and the write-back."""
    dram = _dram(engine, ddr_latency, bytes_per_cycle)
    reads, passes, writes = POST_STREAMS[op]
    chunk = chunk_beats(engine) // (2 if op in HALF_CHUNK_POSTS else 1)
    one_set = reads > 0
    set_free = [0, 0]   # when the walker released each buffer set
    out_free = [0, 0]   # when the write-back released each output set
    loader = data_end = compute_free = wb_free = 0
    for k in range(-(-beats // chunk)):
        b = min(chunk, beats - k * chunk)
        issue = max(loader, set_free[k % 2] if one_set else max(set_free)) + POST_TAKE
        if reads:
            start = max(issue + FETCH_ISSUE + dram.latency, data_end)
            data_end = start + dram.stream(reads * b)
        else:
            data_end = issue
        loader = issue + max(reads, 1)
        run = max(data_end + POST_LOADED, compute_free, out_free[k % 2])
        end = run + passes * (b + 1) + (max(0, engine.tn + 2 - b) if passes == 2 else 0)
        set_free[k % 2] = compute_free = end + 1
        if not one_set:
            set_free = [end + 1, end + 1]
        wb_free = max(end + engine.tn + DRAIN_DELAY, wb_free) + ((b + 3) if writes else 1)
        out_free[k % 2] = wb_free + 1
    return wb_free + (WB_PIPE + dram.latency if writes else 0) + JOB_END


CAM_METHODS = ("grad_cam", "guided_grad_cam")


def cam_cycles(header, backward_costs, cam_costs) -> tuple[int, int]:
    """(the backward list's jobs down to the Grad-CAM layer, the Grad-CAM list): what ``run_cycles``
    takes as ``cam``."""
    return (sum(c.cycles for c in backward_costs[:header["n_backward_cam"]]), sum(c.cycles for c in cam_costs))


def method_cycles(program, engine: EngineV2, method: str | None, steps: int = 32, ddr_latency: int | None = None,
                  bytes_per_cycle: float | None = None, images: int = 1) -> int:
    """Cycles of one engine start of ``program``, start to done: predict (``method`` None) or an
    attribution method (integrated gradients with ``steps`` steps), on one image or (``images`` =
    the Program's batch) on an image batch."""
    image_batch = images > 1

    def jobs(lst, direction):
        return sum(job_cost(d, engine, direction, ddr_latency, bytes_per_cycle, image_batch=image_batch).cycles
                   for d in lst)

    # an image batch runs the batched lists alone; one image, the plain lists (and IG both)
    forward = 0 if image_batch else jobs(program.forward, "forward")
    backward = jobs(program.backward, "backward") if method is not None and not image_batch else 0
    batched = (0, 0)
    if (method == "integrated_gradients" or image_batch) and program.batch > 1:
        batched = (jobs(program.forward_batch, "forward"),
                   jobs(program.backward_batch, "backward") if method is not None else 0)
    cam = (0, 0)
    if method in CAM_METHODS:
        cam = (jobs(program.backward[:program.header["n_backward_cam"]], "backward"), jobs(program.cam, "cam"))
    return run_cycles(program.header, engine, forward, backward, method, steps, ddr_latency, bytes_per_cycle,
                      batched, images, cam)


def workload(header, forward_costs, backward_costs, engine: EngineV2, steps: int,
             batched_costs: tuple = ((), ()), cam_costs: tuple = ()) -> dict[str, int]:
    """Cycles of predict and of every method (by name) from the jobs' costs (``batched_costs``:
    the batched lists'; ``cam_costs``: the Grad-CAM list's, whose methods are weighed where the
    Program has one): what the planner weighs."""
    from xaihls.methods import METHODS

    f = sum(c.cycles for c in forward_costs)
    b = sum(c.cycles for c in backward_costs)
    batched = tuple(sum(c.cycles for c in costs) for costs in batched_costs)
    cycles = {"predict": run_cycles(header, engine, f, b, None, steps),
              **{m: run_cycles(header, engine, f, b, m, steps, batched=batched) for m in METHODS}}
    if header.get("n_cam"):
        cam = cam_cycles(header, backward_costs, cam_costs)
        cycles.update({m: run_cycles(header, engine, f, b, m, steps, cam=cam) for m in CAM_METHODS})
    return cycles


def ig_step_batches(steps: int, batch: int) -> tuple[int, int]:
    """How the engine runs integrated gradients' ``steps`` on a Program of ``batch`` slots: (batches
    of ``batch`` steps on the batched lists, while that many steps are left; single steps on the
    plain lists)."""
    return divmod(steps, batch) if batch > 1 else (0, steps)


def run_cycles(header, engine: EngineV2, forward: int, backward: int, method: str | None, steps: int = 32,
               ddr_latency: int | None = None, bytes_per_cycle: float | None = None,
               batched: tuple[int, int] = (0, 0), images: int = 1, cam: tuple[int, int] = (0, 0)) -> int:
    """Cycles of one run, start to done, given its forward and backward jobs' cycles (``batched``:
    the batched lists', which integrated gradients run while ``batch`` steps are left; ``cam``:
    ``cam_cycles``, for the Grad-CAM methods): the header, the post-processing and the result
    around them. ``images`` = the header's batch: an image batch, which runs only the batched
    lists (their SEEDs costed with their record read, ``job_cost(..., image_batch=True)``)."""
    dram = _dram(engine, ddr_latency, bytes_per_cycle)
    h = header
    beats = h["input_elems"] // engine.beat_elems
    classes_beats = -(-h["classes"] // engine.beat_elems)
    header_cycles = FETCH_ISSUE + dram.latency + dram.stream(math.ceil(HEADER.bytes / (2 * engine.beat_elems))) + 2

    def post(op, n=beats):
        return post_cycles(op, n, engine, ddr_latency, bytes_per_cycle)

    result = FETCH_ISSUE + dram.latency + dram.stream(classes_beats) + classes_beats * engine.beat_elems \
        + 4 + math.ceil(RESULT.bytes / (2 * engine.beat_elems)) + dram.latency + JOB_END
    if images > 1:
        if images != h["batch"] or method == "integrated_gradients" or method in CAM_METHODS:
            raise ValueError(f"an image batch of {images} on a Program of {h['batch']} slots, method {method}")
        word = word_read_cycles(dram)
        write = 4 + math.ceil(RESULT.bytes / (2 * engine.beat_elems)) + dram.latency + JOB_END
        total = header_cycles + images * (post("copy") + word + result) + batched[0]
        if method is not None:
            op = FINAL_POST.get(method, "copy")
            total += batched[1] + images * post(op)
        return total + word + write  # record 0 read back, written with the counters
    total = header_cycles + post("copy") + forward + result
    if method is None:
        return total
    if method == "integrated_gradients":
        table = FETCH_ISSUE + dram.latency + 3
        total += 2 * post("copy", classes_beats) + table
        batch = h["batch"]
        full, rest = ig_step_batches(steps, batch)
        slot = 2 * table + post("ig_point") + post("ig_acc")  # an entry read before the point and the sum
        total += full * (batch * slot + sum(batched)) + rest * (slot + forward + backward)
        total += post("ig_sum") + post("ig_final")
    elif method in CAM_METHODS:
        total += sum(cam)  # the map lands at attr_addr
        if method == "guided_grad_cam":
            total += backward + post("ixg")  # the map times the guided input gradient
    else:
        op = FINAL_POST.get(method, "copy")
        total += backward + post(op)
    return total + result
