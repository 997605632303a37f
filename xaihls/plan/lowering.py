"""Lowering a QGraph to a Program v2 (docs/contract.md): every job a CONV on the MAC array.

The compiler does everything that depends only on the network, so the hardware only counts:

- **Blocked tensors.** Every activation and gradient is stored as ``[ceil(C/tn)][H][W][tn]``
  int16 (channels padded with zeros to blocks of ``tn``): a tile of rows of one block is one
  linear run in DDR, and a pixel's ``tn`` channels are whole AXI beats. A vector of F
  features is the same with H = W = 1; a flattened map keeps its bytes, and the Linear layer
  that reads it gets its weight columns permuted to that order.
- **Weights in the order the array consumes them**: per job, ``[m-tile][n-tile][pass][m][n]``
  (a pass is a kernel tap), zero-padded. A conv's backward pass reads a second, transposed
  and rotated copy, one per stride phase; a Linear's backward pass its transposed matrix.
- **Pools, standalone ReLUs, per-channel affines and depthwise convolutions are diagonal
  jobs**: average pooling multiplies by the reciprocal on the diagonal; max-pooling and ReLUs
  pass values through an identity (1 << IDENTITY_FRAC) and let the write-back pool or clamp; a
  max-pool's backward pass is a transposed identity whose operands are gated by the kept argmax
  (GATE); a BatchNorm no convolution takes and a depthwise convolution put their per-channel
  scale or taps on the diagonal. Other grouped convolutions are dense jobs with the weights of
  other groups zero.
- **Every derived constant precomputed**: tile counts and sizes, input rows per tile, buffer
  strides, byte strides, pool geometry, requantization shifts.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import (Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Linear,
                                MaxPool2d, ReLU, ReLU6)
from xaihls.golden.dag import cam_reciprocal, relu6_cap
from xaihls.plan.capabilities import Gather, image_phases, phases_needed, rectifiers_in_a_row, upsampling
from xaihls.methods import LAYER_METHODS, ReluBackward
from xaihls.numerics import ACCUMULATOR_BITS, WEIGHT_SHIFT, align_terms
from xaihls.plan.contract import (DESCRIPTOR, HEADER, IDENTITY_FRAC, IG_TABLE_BYTES, MAX_X_SHIFT, MEM, PROGRAM_MAGIC,
                                  PROGRAM_VERSION, RESULT, RESULT_SLOT_BYTES, Flag, Op, Unpool, field_limit,
                                  fold_offset)
from xaihls.plan.dag import RECTIFIERS, canon, grad_dest, grad_store, is_copy, structure, unweighted
from xaihls.quant.qgraph import QGraph, image_as_phases, maps_as_columns, spread

ALIGN = 64  # every DDR region starts on a 64-byte boundary


def aligned(n: int) -> int:
    """``n`` bytes rounded up to the next region boundary (a multiple of ALIGN)."""
    return -(-n // ALIGN) * ALIGN

_JOB_FIELDS = operator.attrgetter(*(p.field.name for p in DESCRIPTOR.placed))
_JOB_CACHES = ("_hash", "_tiles", "_kept")  # what a Job keeps of itself once worked out (``_with`` drops them)


def _job_hash(self: "Job") -> int:
    """A Job's hash, kept on it once made: the planner looks millions of jobs up by their some 90 fields while it
    weighs its engines."""
    h = self.__dict__.get("_hash")
    if h is None:
        h = self.__dict__["_hash"] = hash(_JOB_FIELDS(self))
    return h


def _job_eq(self: "Job", other: object) -> bool:
    """Equal fields (the kept hashes compared first)."""
    if self is other:
        return True
    if other.__class__ is not self.__class__:
        return NotImplemented
    return hash(self) == hash(other) and _JOB_FIELDS(self) == _JOB_FIELDS(other)


Job = dataclasses.make_dataclass(
    "Job", [(p.field.name, int, dataclasses.field(default=0)) for p in DESCRIPTOR.placed], frozen=True,
    namespace={
        "__doc__": "One job descriptor: the fields of xaihls.plan.contract.DESCRIPTOR.",
        "__hash__": _job_hash,
        "__eq__": _job_eq,
        "has": lambda self, flag: bool(self.flags >> int(flag) & 1),
        "encode": lambda self, where="": DESCRIPTOR.encode(dataclasses.asdict(self), where),
        "passes": property(lambda self: self.ky * self.kx),
        "w_passes": property(lambda self: min(1, self.ky * self.kx) if self.w_once else self.ky * self.kx),
    })
Job.__module__ = __name__


def _with(d: "Job", **fields: int) -> "Job":
    """``dataclasses.replace(d, **fields)`` without Job's ``__init__`` (a keyword argument a descriptor field, some
    90 a call): the row tiling makes tens of thousands of jobs while the planner weighs its engines."""
    unknown = fields.keys() - d.__dict__.keys()
    if unknown:
        raise TypeError(f"Job has no fields {sorted(unknown)}")
    job = object.__new__(Job)
    job.__dict__.update(d.__dict__, **fields)
    for cache in _JOB_CACHES:
        job.__dict__.pop(cache, None)
    return job


def job_from_bytes(data: bytes) -> "Job":
    return Job(**DESCRIPTOR.decode(data))


def flags(*names: Flag) -> int:
    return sum(1 << int(f) for f in names)


@dataclass(frozen=True)
class Shape:
    """The engine shape a Program is built for: layouts and weight order depend on it."""

    tm: int
    tn: int
    beat_elems: int  # 16-bit elements per AXI data beat

    def __post_init__(self) -> None:
        if self.tn % self.beat_elems or self.tm % self.tn:
            raise XaiHlsError(f"engine {self.tm}x{self.tn}: Tn must be a multiple of the {self.beat_elems} elements "
                              f"an AXI beat holds, and Tm a multiple of Tn")


@dataclass(frozen=True)
class Tensor:
    """A tensor in DDR, blocked: ``[blocks][h][w][tn]`` int16."""

    addr: int
    c: int
    h: int
    w: int
    tn: int

    @property
    def blocks(self) -> int:
        return -(-self.c // self.tn)

    @property
    def plane(self) -> int:
        return self.h * self.w

    @property
    def block_bytes(self) -> int:
        return self.plane * self.tn * 2

    @property
    def row_bytes(self) -> int:
        return self.w * self.tn * 2

    @property
    def elems(self) -> int:
        return self.blocks * self.plane * self.tn

    @property
    def bytes(self) -> int:
        return 2 * self.elems


def blocked_size(c: int, h: int, w: int, tn: int) -> int:
    return 2 * -(-c // tn) * tn * h * w


def feature_order(shape: tuple[int, ...], tn: int) -> np.ndarray:
    """For a tensor of ``shape`` read as a flat vector in its blocked DDR order: the C-order
    (torch.flatten) feature index of each element, -1 for padding channels."""
    if len(shape) == 1:
        c, h, w = shape[0], 1, 1
    else:
        c, h, w = shape
    index = np.arange(c * h * w, dtype=np.int64).reshape(c, h, w)
    blocks = -(-c // tn)
    padded = np.full((blocks * tn, h, w), -1, dtype=np.int64)
    padded[:c] = index
    return padded.reshape(blocks, tn, h, w).transpose(0, 2, 3, 1).reshape(-1)


@dataclass(frozen=True)
class Region:
    name: str
    addr: int
    size: int


class _Allocator:
    def __init__(self, slots: int = 1) -> None:
        self.top = 0
        self.regions: list[Region] = []
        self.slots = slots
        self.slot_bytes: dict[int, int] = {}  # a per-run tensor's address: bytes between its slots

    def take(self, name: str, size: int) -> int:
        addr = self.top
        self.regions.append(Region(name, addr, size))
        self.top = aligned(addr + size)
        return addr

    def tensor(self, name: str, shape: tuple[int, ...], tn: int, slotted: bool = False) -> Tensor:
        """A blocked tensor; ``slotted``: one copy per slot of the batched lists, ``slot_bytes`` apart."""
        c, h, w = (shape[0], 1, 1) if len(shape) == 1 else shape
        size = blocked_size(c, h, w, tn)
        if not slotted or self.slots == 1:
            return Tensor(self.take(name, size), c, h, w, tn)
        stride = aligned(size)
        addr = self.take(f"{name} ({self.slots} slots)", stride * self.slots)
        self.slot_bytes[addr] = stride
        return Tensor(addr, c, h, w, tn)

    def pair(self, name: str, first: tuple[int, int, int], second: tuple[int, int, int], tn: int
             ) -> tuple[Tensor, Tensor]:
        """Two blocked tensors side by side (the second's blocks follow the first's: one job reads both),
        one copy of the two per slot."""
        size = blocked_size(*first, tn)
        total = size + blocked_size(*second, tn)
        if self.slots == 1:
            addr = self.take(name, total)
        else:
            stride = aligned(total)
            addr = self.take(f"{name} ({self.slots} slots)", stride * self.slots)
            self.slot_bytes[addr] = self.slot_bytes[addr + size] = stride
        return Tensor(addr, *first, tn), Tensor(addr + size, *second, tn)

    def within(self, t: Tensor, offset: int) -> int:
        """The address ``offset`` bytes into ``t``, slotted as ``t`` (where a job reads or writes part of it)."""
        return self.moved(t.addr, offset)

    def moved(self, addr: int, offset: int) -> int:
        """The address ``offset`` bytes past ``addr`` (a job's input or output), slotted as it."""
        if addr in self.slot_bytes:
            self.slot_bytes[addr + offset] = self.slot_bytes[addr]
        return addr + offset

    def block(self, t: Tensor, k: int) -> Tensor:
        """Block k of ``t`` as a tensor of its own (tn channels, fewer in the last), slotted as ``t``."""
        return Tensor(self.within(t, k * t.block_bytes), min(t.tn, t.c - k * t.tn), t.h, t.w, t.tn)


@dataclass(frozen=True, eq=False)
class Lowered:
    """Jobs before tiling, the memory map and the data the image holds (engine shape fixed)."""

    shape: Shape
    header: dict
    forward: tuple[Job, ...]
    backward: tuple[Job, ...]
    regions: tuple[Region, ...]
    blobs: tuple[tuple[int, "np.ndarray | DenseBlob"], ...]  # (address, int64 values stored as int16, row-major)
    init_end: int
    # the network as the jobs see it (a 1-D model's maps as columns, its image as stride phases), undilated
    qgraph: QGraph = field(repr=False)
    slots: "Slots | None" = None  # how the batched lists address each slot (batch > 1)
    cam: tuple[Job, ...] = ()  # the Grad-CAM list (docs/dag.md, "Grad-CAM on the engine")
    # a job -> its twin, the same work mapped another way (LANES lane groups, a global pool SUM, an Add a
    # block at a time: one job or several): the tiler keeps the cheaper (``tiled``)
    twins: dict[Job, tuple[Job, ...]] = field(default_factory=dict)
    as_columns: bool = False  # a 1-D model's maps run as columns (``maps_as_columns``)
    as_phases: bool = False  # and its image as its first stride's phases (``image_as_phases``)
    # jobs that only stand for their twins: a grouped convolution whose weights are stored for its cluster jobs
    # alone (``COMPACT_GROUPS``); the tiler always takes the twin
    twin_only: frozenset[Job] = frozenset()


def _diag_blob(taps: int, value, shape: Shape) -> np.ndarray:
    """Weights of a diagonal job: every pass puts ``value`` (or pass t ``value[t]``) on the diagonal of
    an m-tile's own n-tiles (tm / tn of them); the same block serves every m-tile (w_mt_bytes = 0)."""
    per_mt = shape.tm // shape.tn
    w = np.zeros((1, per_mt, taps, shape.tm, shape.tn), dtype=np.int64)
    for k in range(per_mt):
        for j in range(shape.tn):
            w[0, k, :, k * shape.tn + j, j] = value
    return w


class DenseBlob:
    """A kernel (M, N, passes) as the array consumes it, (m_tiles, n_tiles, passes, tm, tn) zero-padded, made
    when the image is written (``np.asarray``). The planner lowers a network once for every array and batch it
    weighs, and reads only the blobs' shapes: made at once, the tiles of ResNeXt-50's weights took 52 s of a 505 s
    profiled compile, and their copies gigabytes of memory."""

    __slots__ = ("kernel", "shape")

    def __init__(self, kernel: np.ndarray, shape: Shape):
        m, n, taps = kernel.shape
        self.kernel = kernel
        self.shape = (-(-m // shape.tm), -(-n // shape.tn), taps, shape.tm, shape.tn)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        mt, nt, taps, tm, tn = self.shape
        m, n, _ = self.kernel.shape
        w = np.zeros((mt * tm, nt * tn, taps), dtype=np.int64)
        w[:m, :n] = self.kernel
        w = w.reshape(mt, tm, nt, tn, taps).transpose(0, 2, 4, 1, 3)
        return w if dtype is None else w.astype(dtype)


def _channel_moves(m: int, n: int, moves) -> np.ndarray:
    """A one-tap kernel (m, n, 1) that moves channels: for each (out, in, count, weight) of ``moves``,
    input channel in + k into output channel out + k with ``weight``, for k < count."""
    kern = np.zeros((m, n, 1), dtype=np.int64)
    for out, first, count, weight in moves:
        kern[out + np.arange(count), first + np.arange(count), 0] = weight
    return kern


def _selection(index: tuple[int, ...], n: int, weight: int) -> np.ndarray:
    """A ChannelSelect's one-tap kernel (len(index), n, 1): input channel index[k] into output channel k."""
    kern = np.zeros((len(index), n, 1), dtype=np.int64)
    kern[np.arange(len(index)), list(index), 0] = weight
    return kern


def _identities(c: int, na: int, nb: int, e: tuple[int, ...], shape: Shape) -> DenseBlob:
    """An Add's weights over its two sources side by side (na and nb blocks): channel k of each
    source into output channel k, 2^e[0] from the first and 2^e[1] from the second."""
    return DenseBlob(_channel_moves(c, (na + nb) * shape.tn, [(0, 0, c, 1 << e[0]),
                                                              (0, na * shape.tn, c, 1 << e[1])]), shape)


def _placement(ca: int, cb: int, e: tuple[int, ...], shape: Shape) -> DenseBlob:
    """A concatenation's weights over its two sources side by side (the second's blocks after the
    first's): the first's channel k into output channel k, 2^e[0], the second's into ca + k, 2^e[1]
    (a placement, not a sum)."""
    na, nb = -(-ca // shape.tn), -(-cb // shape.tn)
    return DenseBlob(_channel_moves(ca + cb, (na + nb) * shape.tn, [(0, 0, ca, 1 << e[0]),
                                                                    (ca, na * shape.tn, cb, 1 << e[1])]), shape)


def _depthwise_blob(kernel: np.ndarray, shape: Shape) -> np.ndarray:
    """Per-channel taps (C, passes) on the diagonal: (m_tiles, tm / tn, passes, tm, tn), channel c
    at lane c mod tm of m-tile c // tm, column c mod tn of that m-tile's n-tile (c mod tm) // tn."""
    c, taps = kernel.shape
    mts = -(-c // shape.tm)
    w = np.zeros((mts, shape.tm // shape.tn, taps, shape.tm, shape.tn), dtype=np.int64)
    ch = np.arange(c)
    lane = ch % shape.tm
    w[ch // shape.tm, lane // shape.tn, :, lane, ch % shape.tn] = kernel
    return w


LANE_COLUMNS = True
"""Whether a depthwise convolution may run its lane groups at consecutive output columns (LANES)
where that is cheaper than lane groups at blocks (docs/engine_v2.md, "Depthwise convolutions").
Every engine runs both; off only to measure the difference."""


def lane_columns(shape: Shape, kx: int, isx: int, ow: int, dense_channels: int | None = None) -> bool:
    """Whether a convolution job of ``kx`` pass columns, ``isx`` input columns a grid column and
    ``ow`` output columns (every one of its tensor's) can run as a LANES job: G = tm / tn > 1 lane
    groups, whose kx + (G - 1) * isx pass columns and G * isx input columns a grid column the
    descriptor holds. A diagonal job always may; a dense one (``dense_channels`` output channels)
    where they leave at least a block of tn lanes idle on its plain m-tile (the backward of a first
    convolution: 1 to 3 image channels). Whether it does is the tiler's choice (``tiled``)."""
    g = shape.tm // shape.tn
    return (LANE_COLUMNS and g > 1 and ow > 1 and kx + (g - 1) * isx <= field_limit(DESCRIPTOR, "kx")
            and g * isx <= field_limit(DESCRIPTOR, "isx")
            and (dense_channels is None or dense_channels <= shape.tm - shape.tn))


def _lanes_blob(kernel: np.ndarray, kx: int, isx: int, reverse: bool, shape: Shape) -> np.ndarray:
    """A LANES job's weights, (blocks of tn, n-tiles, ky * q, tm, tn) with q = kx + (G - 1) * isx
    pass columns, from per-channel taps (C, ky * kx) of a depthwise convolution (one n-tile: the
    block's own) or a dense kernel (M, N, ky * kx): output channel m at lane g * tn + m mod tn of
    every lane group g, whose tap u is at pass column g * isx + u ((G - 1 - g) * isx + u where the
    kernel is read in reverse, ikx = -1); zero where a tap falls outside a group's kernel."""
    tm, tn = shape.tm, shape.tn
    if kernel.ndim == 2:  # depthwise: channel c at column c mod tn of its block's n-tile
        c, taps = kernel.shape
        dense = np.zeros((c, tn, taps), dtype=np.int64)
        dense[np.arange(c), np.arange(c) % tn] = kernel
        kernel = dense
    m, n, taps = kernel.shape
    nts, ky = -(-n // tn), taps // kx
    padded = np.zeros((m, nts * tn, taps), dtype=np.int64)
    padded[:, :n] = kernel
    rows = padded.reshape(m, nts, tn, ky, kx).transpose(0, 1, 3, 2, 4)  # (m, n-tile, ky, column, kx)
    groups = tm // tn
    q = kx + (groups - 1) * isx
    w = np.zeros((-(-m // tn), nts, ky, q, tm, tn), dtype=np.int64)
    out = np.arange(m)
    for g in range(groups):
        first = ((groups - 1 - g) if reverse else g) * isx
        for u in range(kx):
            w[out // tn, :, :, first + u, g * tn + out % tn] = rows[..., u]
    return w.reshape(w.shape[0], nts, -1, tm, tn)


def _as_lanes(d: dict, channels: int, shape: Shape) -> dict:
    """A convolution job's fields as its LANES job (weights from ``_lanes_blob``): an m-tile a
    block, G grid columns an output column group, q pass columns."""
    groups = shape.tm // shape.tn
    assert d["osx"] == 1 and d.get("oxo", 0) == 0 and d["ow"] == d["opw"], "a LANES job writes every output column"
    return dict(d, flags=d["flags"] | flags(Flag.LANES), m_tiles=-(-channels // shape.tn),
                ow=-(-d["ow"] // groups), isx=groups * d["isx"], kx=d["kx"] + (groups - 1) * d["isx"],
                ix0=d["ix0"] + ((groups - 1) * d["isx"] if d["ikx"] < 0 else 0))


ONE_D_COLUMNS = True
"""Whether a 1-D model's maps may run as columns, (C, L, 1) (``qgraph.maps_as_columns``): a row tile is then
a few samples, so no buffer has to hold a whole map's row. The bytes in DDR are the same either way;
the planner weighs both and keeps the faster (on short maps a row can be), ``lower_jobs`` takes columns
unless told. False: rows only, as before (to measure)."""

FOLD_IMAGE = True
"""Whether a thin first convolution reads a folded image (several image pixels in one word, so
several kernel taps in one pass) where that takes fewer passes (docs/engine_v2.md, "The folded
image"). Every engine runs it (it is a plain CONV job); off only to measure the difference."""

MAX_FOLD = field_limit(DESCRIPTOR, "ikx")
"""Image pixels a word holds along a dimension at most: the pass step (ikx, iky) of a fold of f
pixels that steps over them is f."""


@dataclass(frozen=True)
class FoldDim:
    """A first convolution's kernel along one dimension on a folded image of ``f`` pixels a word
    (in pixel order: slot k of position q holds image pixel q + k - f // 2; ``fold_image`` stores
    them in another order): ``passes`` pass positions ``step``
    apart from ``origin`` (iy0 / ix0); ``taps[p][k]`` the kernel tap that pass p reads in slot k,
    -1 where its weight is zero (a tap another pass takes, or past the kernel)."""
    f: int
    step: int
    origin: int
    taps: tuple[tuple[int, ...], ...]

    @property
    def passes(self) -> int:
        return len(self.taps)


def _fold_dim(k: int, s: int, pad: int, n_in: int, n_out: int, f: int) -> FoldDim | None:
    """The fewest passes of a kernel of ``k`` taps (stride ``s``, padding ``pad``, ``n_in`` input and
    ``n_out`` output positions) on an image folded ``f`` pixels a word, or None where none is
    exact. Pass p reads position o * s - pad + f // 2 + p * step; its slot k is tap p * step + k,
    taken by the first pass that reaches it. Exact when every position a tap of a real pixel is read
    through lies in the map (the engine reads zeros outside it, and the neighbours a word folds in
    would be lost): checked for every output position."""
    if f == 1:
        return FoldDim(1, 1, -pad, tuple((t,) for t in range(k)))
    best = None
    for step in sorted({1, f}):
        taps, seen = [], set()
        for p in range(-(-k // f) if step == f else k - f + 1):
            row = tuple(t if t < k and t not in seen else -1 for t in range(p * step, p * step + f))
            seen.update(row)
            taps.append(row)
        exact = all(not 0 <= o * s - pad + t < n_in or 0 <= o * s - pad + t - slot + f // 2 < n_in
                    for o in range(n_out) for row in taps for slot, t in enumerate(row) if t >= 0)
        if exact and (best is None or len(taps) < best.passes):
            best = FoldDim(f, step, f // 2 - pad, tuple(taps))
    return best


TAP_STEPS = True
"""Whether a dilated convolution's jobs step over the zeros of its spread (``tap_step``); False: every
job walks every tap of the spread, zeros included (to measure)."""


def _lattice(used: np.ndarray) -> int:
    """The largest step up to MAX_FOLD whose multiples hold every pass position ``used`` marks: a
    merged pass grid's passes that carry weights, which a job then walks that far apart (1 for a
    grid of one pass: nothing to step over)."""
    return max(g for g in range(1, min(MAX_FOLD, max(used.size - 1, 1)) + 1)
               if not used[np.arange(used.size) % g != 0].any())


def tap_step(dilation: int) -> int:
    """The pass step along a dimension of a convolution of ``dilation`` that the engines run as its
    spread (``Conv2d.spread``): the largest divisor of the dilation a job's tap step holds (``ikx``,
    ``iky``: up to MAX_FOLD), so its passes skip the zeros between taps, or all of them where it divides."""
    return max(g for g in range(1, min(dilation, MAX_FOLD) + 1) if dilation % g == 0)


def image_fold(qg: QGraph, shape: Shape) -> tuple[FoldDim, FoldDim] | None:
    """How the first convolution reads a folded image (rows, columns), where it reads the image
    alone, is dense, not dilated, and a fold of at most tn channels takes fewer passes; else None."""
    graph = qg.graph
    layer = graph.layers[0] if graph.layers else None
    if (not FOLD_IMAGE or not isinstance(layer, Conv2d) or layer.groups != 1 or layer.dilated
            or list(graph.consumers[0]) != [0]):
        return None
    c, h, w = _chw(graph.input_shape)
    (kh, kw), (sy, sx), (py, px) = layer.kernel, layer.stride, layer.padding
    _, oh, ow = layer.out_shape
    best = None
    for fy in range(1, min(kh, MAX_FOLD) + 1):
        for fx in range(1, min(kw, MAX_FOLD) + 1):
            if fy * fx * c > shape.tn:
                continue
            dims = _fold_dim(kh, sy, py, h, oh, fy), _fold_dim(kw, sx, px, w, ow, fx)
            if None in dims:
                continue
            key = (dims[0].passes * dims[1].passes, fy * fx)
            if key < (kh * kw, 1) and (best is None or key < best[0]):
                best = key, dims
    return None if best is None else best[1]


def _folded_kernel(kern: np.ndarray, fold: tuple[FoldDim, FoldDim], kw: int) -> np.ndarray:
    """A first convolution's kernel (M, C, kh * kw) on the folded image: (M, fy * fx * C, passes),
    the image's slot (a, b) (``fold_image``) of pass (p, q) the tap (fold rows' taps[p][k], fold
    columns' taps[q][l]) of the slots k, l at offsets fold_offset(a), fold_offset(b)."""
    fy, fx = fold
    m, c, _ = kern.shape
    out = np.zeros((m, fy.f * fx.f * c, fy.passes * fx.passes), dtype=np.int64)
    for p, q in itertools.product(range(fy.passes), range(fx.passes)):
        for a, b in itertools.product(range(fy.f), range(fx.f)):
            ty = fy.taps[p][fold_offset(a) + fy.f // 2]
            tx = fx.taps[q][fold_offset(b) + fx.f // 2]
            if ty >= 0 and tx >= 0:
                out[:, (a * fx.f + b) * c:(a * fx.f + b + 1) * c, p * fx.passes + q] = kern[:, :, ty * kw + tx]
    return out


def is_depthwise(layer) -> bool:
    """A convolution each of whose output channels reads only its own input channel: a diagonal job."""
    return isinstance(layer, Conv2d) and layer.depthwise


def _kernel(kernels: dict, q, layer: Conv2d) -> np.ndarray:
    """A convolution's integer kernel (M, N, taps), dense (a grouped one zero across its groups; a depthwise one
    (M, 1, taps)), kept in ``kernels`` by its weight tensor: the planner lowers a network once for every array
    and view it weighs, and ResNeXt-50's dense kernels are gigabytes to make each time."""
    hit = kernels.get((id(q.weight),))
    if hit is None:
        kh, kw = layer.kernel
        kern = q.weight.numpy().astype(np.int64).reshape(layer.out_channels, -1, kh * kw)
        if not is_depthwise(layer) and layer.groups > 1:
            kern = _ungrouped(kern, layer.groups)
        hit = kernels[id(q.weight),] = (q.weight, kern)  # the tensor kept: its id names no other while kept
    return hit[1]


def _cut(kernels: dict, q, kern: np.ndarray, taps: list[int], depthwise: bool, transposed: bool = False) -> np.ndarray:
    """The kernel's ``taps`` (a depthwise one's (M, taps), a dense one's (M, N, taps) or, ``transposed``, (N, M,
    taps)), kept in ``kernels`` as ``_kernel`` keeps the kernel."""
    key = (id(q.weight), tuple(taps), depthwise, transposed)
    hit = kernels.get(key)
    if hit is None:
        cut = kern[:, 0, taps] if depthwise else kern[:, :, taps]
        hit = kernels[key] = (q.weight, cut.transpose(1, 0, 2) if transposed else cut)
    return hit[1]


def _clustered(kernels: dict, q, kernel: np.ndarray, taps: list[int], transposed: bool, groups: int,
               k: int) -> np.ndarray:
    """A grouped convolution's dense kernel (M, N, taps), zero across its groups (``_cut``'s cut of ``taps``,
    ``transposed`` or not), as its jobs of a cluster of ``k`` groups read it (``group_clusters``): row o holds
    only its own cluster's N * k / groups columns, so every zero the dense kernel keeps between clusters is left
    out, (M, N * k / groups, taps). Kept in ``kernels`` as ``_cut`` keeps its cuts."""
    key = ("clusters", id(q.weight), tuple(taps), transposed, k)  # apart from _cut's keys (True == 1)
    hit = kernels.get(key)
    if hit is None:
        m, n, _ = kernel.shape
        rows, cols = m * k // groups, n * k // groups  # a cluster's
        cut = np.concatenate([kernel[c * rows:(c + 1) * rows, c * cols:(c + 1) * cols] for c in range(groups // k)])
        hit = kernels[key] = (q.weight, cut)
    return hit[1]


def _ungrouped(kernel: np.ndarray, groups: int) -> np.ndarray:
    """A grouped kernel (M, N / groups, taps) as the dense (M, N, taps) kernel, zero across groups."""
    m, per, taps = kernel.shape
    dense = np.zeros((m, per * groups, taps), dtype=np.int64)
    for o in range(m):
        g = o // (m // groups)
        dense[o, g * per:(g + 1) * per] = kernel[o]
    return dense


def _phase_taps(k: int, s: int, p: int, r: int) -> tuple[int, int, int]:
    """Stride phase r of a transposed conv (kernel k, stride s, padding p): first kernel tap
    i0, tap count, and the input offset iy0 (input row = out_row + iy0 - t)."""
    i0 = (r + p) % s
    taps = len(range(i0, k, s))
    return i0, taps, (r + p - i0) // s


def _align(bases: list[list[int]], identity: list[bool], where: str) -> tuple[list[int], list[list[int]], list[int]]:
    """``numerics.align_terms``; XaiHlsError names ``where`` if no shifts reach."""
    aligned = align_terms(bases, identity)
    if aligned is None:
        modes = range(len(bases[0]))
        spread = max(max(b[m] for b in bases) - min(b[m] for b in bases) for m in modes)
        raise XaiHlsError(f"{where}: the two terms' fractions differ by {spread} bits; the engine raises a "
                          f"convolution's term to the finer one by at most {MAX_X_SHIFT} bits (an operand shift), "
                          f"an identity's by {MAX_X_SHIFT + WEIGHT_SHIFT} (with its weight 2^e)")
    return aligned


def _shift_fields(xs: list[list[int]], frac: list[int], out_fracs: list[int]) -> dict:
    """A two-source job's operand shifts and requantization shifts by mode (index 0, 1, 2)."""
    d = {}
    for m in range(3):
        d[f"xs_a{m}"], d[f"xs_b{m}"] = xs[0][m], xs[1][m]
        d[f"shift{m}"] = frac[m] - out_fracs[m]
    return d


class _Builder:
    def __init__(self, qg: QGraph, shape: Shape):
        self.qg = qg
        self.shape = shape
        self.alloc = _Allocator()
        self.blobs: list[tuple[int, np.ndarray | DenseBlob]] = []

    def weights(self, name: str, blob: np.ndarray | DenseBlob) -> dict:
        """Place a weight blob (m-tiles, n-tiles, passes, tm, tn); the job's w_* fields. A blob
        of one m-tile serves every m-tile (a diagonal job's)."""
        addr = self.alloc.take(name, max(2 * blob.size, 2))
        self.blobs.append((addr, blob))
        mts, nts, passes, tm, tn = blob.shape
        nt_bytes = 2 * passes * tm * tn
        return dict(w_addr=addr, w_nt_bytes=nt_bytes, w_mt_bytes=nt_bytes * nts if mts > 1 else 0)


WEIGHTS_ONCE = True
"""Whether a diagonal job whose passes all have the same weights (a pool's reciprocal, an
identity) stores one pass's and keeps them in the array for every pass (w_once) instead of a copy
a pass (docs/engine_v2.md, "Weights kept across passes"). Every engine runs both; off only to
measure the difference."""


FUSE_POOL_BACKWARD = True
"""Whether a max-pool's backward is fused into the backward convolution below it (UNPOOL) where
it can be (``fusable_pool``) instead of running as stride-phase jobs (docs/engine_v2.md, "Max-pool
backward fused"). Every engine runs both; off only to measure the difference."""


def cam_tensor(qg: QGraph) -> int | None:
    """The tensor whose activations and gradient the Grad-CAM list reads (the Grad-CAM layer's
    output), or None where no Grad-CAM method is compiled."""
    if qg.cam_layer is None or not any(m in LAYER_METHODS for m in qg.methods):
        return None
    return qg.graph.tensor_index(qg.cam_layer)


def fusable_pool(qg: QGraph, i: int) -> bool:
    """Whether max-pool ``i``'s backward can be fused into the backward convolution of the conv
    before it (through a ReLU): non-overlapping square windows of a power-of-two side up to 8,
    the same gradient format on both sides of the pool under every ReLU rule (the phase jobs'
    requantization is then the identity), and no gradient the fusion skips (the convolution's
    output, the ReLU's) is the one the Grad-CAM list reads. Only a pool that ranks the
    convolution's accumulator (``Graph.pool_ranks_accumulator``) is fused at all."""
    graph = qg.graph
    layers = graph.layers
    if not graph.pool_ranks_accumulator(i):
        return False
    (kh, kw), (sh, sw) = layers[i].kernel, layers[i].stride
    if not (kh == kw == sh == sw and kh in (2, 4, 8)):
        return False
    k = i - 2 if isinstance(layers[i - 1], ReLU) else i - 1  # the convolution
    if layers[k].groups != 1:
        return False
    if len(graph.consumers[graph.input_tensors[k][0]]) > 1:
        return False  # the convolution's backward is half of a gradient sum's job
    cam = cam_tensor(qg)
    if cam is not None and k < cam <= i:
        return False  # the fused job never stores the gradient at the Grad-CAM layer
    return all(qg.grad_fmt(m, i + 1).frac == qg.grad_fmt(m, i).frac for m in qg.grad_formats)


def lower_jobs(qg: QGraph, shape: Shape, fuse_pools: bool | None = None, batch: int = 1,
               as_columns: bool | None = None, as_phases: bool | None = None, kernels: dict | None = None) -> Lowered:
    """The jobs of ``qg`` for an engine of ``shape``, untiled, and the DDR memory map
    (``fuse_pools``: see FUSE_POOL_BACKWARD, its default). With ``batch`` > 1, every tensor a run
    writes, every ReLU's bits and every max-pool's indices have ``batch`` slots, for the batched
    lists ``tiled`` makes (docs/engine_v2.md, "Batched lists"). ``as_columns``: whether a 1-D model's
    maps run as columns (default ``ONE_D_COLUMNS``; the planner weighs both); ``as_phases``: whether the
    image runs as its first stride's phases (``capabilities.image_phases``; a 1-D model's only with its maps
    as columns; default: where the image runs no other way, ``phases_needed``; the planner weighs both where
    it can). ``kernels``: the convolutions' kernels as cut for their jobs, kept across the lowerings of one network
    (the planner's, one for all it weighs; by default the lowering's own)."""
    kernels = {} if kernels is None else kernels
    fuse_pools = FUSE_POOL_BACKWARD if fuse_pools is None else fuse_pools
    as_columns = ONE_D_COLUMNS if as_columns is None else as_columns
    as_phases = phases_needed(qg.graph) if as_phases is None else as_phases
    if not 1 <= batch <= field_limit(HEADER, "batch"):
        raise XaiHlsError(f"batch {batch} outside 1..{field_limit(HEADER, 'batch')}")
    # a 1-D model's maps run as columns (ONE_D_COLUMNS), an image as its first stride's phases (image_phases; a 1-D
    # one's on its columns), and a dilated convolution as its spread; the Program keeps the graph as its jobs see it
    # but undilated (``viewed``), its header the image as the network has it (``original``) or as phases
    original = qg
    one_d = qg.graph.sample_shape is not None
    column_view = bool(as_columns) and one_d
    phases = image_phases(qg.graph) if as_phases and (column_view or not one_d) else None
    viewed = maps_as_columns(qg) if column_view else qg
    edges = []  # the view's rectangles the first convolution's backward writes a job each (``phase_edges``)
    if phases:
        image = _chw(viewed.graph.input_shape)
        viewed = image_as_phases(viewed, phases)
        edges = phase_edges(image, _chw(viewed.graph.input_shape), (phases, 1 if one_d else phases))
    qg = spread(viewed)
    graph = qg.graph
    layers = graph.layers
    reads, users = graph.input_tensors, graph.consumers
    L = len(layers)
    tn = shape.tn
    b = _Builder(qg, shape)
    b.alloc.slots = batch
    alloc = b.alloc
    alloc.take("header", HEADER.bytes)
    twice = rectifiers_in_a_row(graph)
    if twice is not None:
        raise XaiHlsError(twice)
    dag = structure(graph)  # the tensors stored side by side (a chain: none)
    act_pair, grad_pair = dag.pairs()
    cam = cam_tensor(qg)  # the tensor the Grad-CAM list reads (its layer's output), or None
    fold = image_fold(viewed, shape)  # the folded image the first convolution reads, or None
    stages = upsampling(qg) if cam is not None else []  # the Grad-CAM map's upsampling

    # the shape whose blocked layout each tensor's bytes follow: a Flatten or a ReLU keeps its
    # input's bytes, so a flattened map stays a map in DDR
    layout: list[tuple[int, int, int]] = [_chw(graph.input_shape)]
    for i, layer in enumerate(layers):
        layout.append(layout[reads[i][0]] if isinstance(layer, (Flatten, ReLU, ReLU6)) else _chw(layer.out_shape))
    last = layout[L]
    if last[1] * last[2] > 1:
        raise XaiHlsError(f"the logits are a flattened {last[0]}x{last[1]}x{last[2]} map; the engine takes logits from "
                          "a Linear layer or a 1x1 map (add a Linear, or pool to 1x1)")

    # ---- kept state: a ReLU's bits and a max-pool's indices, in their tensor's blocked layout ----
    mask_base: dict[int, int] = {}
    index_base: dict[int, int] = {}
    mask_slot: dict[int, int] = {}  # a ReLU's first bit: bits a slot
    index_slot: dict[int, int] = {}
    bits = entries = 0
    index_bits = 1
    for i, layer in enumerate(layers):
        if isinstance(layer, (ReLU, ReLU6)):
            mask_base[i] = bits
            mask_slot[bits] = blocked_size(*layout[reads[i][0]], tn) // 2
            bits += batch * mask_slot[bits]
        elif isinstance(layer, MaxPool2d):
            index_base[i] = entries
            index_slot[entries] = blocked_size(*_chw(layer.out_shape), tn) // 2
            entries += batch * index_slot[entries]
            index_bits = max(index_bits, (layer.kernel[0] * layer.kernel[1] - 1).bit_length())
    cam_mask = bits  # the bits the Grad-CAM map's ReLU writes (read by no job; kept apart from the others)
    if cam is not None:
        bits += blocked_size(1, *layout[cam][1:], tn) // 2

    # descriptors come first; reserve the most they can take
    fwd_max = L + 1 + sum(-(-layout[ta][0] // tn) - 1 for i, (ta, _) in dag.adds.items()
                          if isinstance(layers[i], Add) and _adds_by_block(layout[ta][0], shape))
    # (+ 1: an operand that is the image, its copy; an Add a job a block)
    strided = (Conv2d, MaxPool2d, AvgPool2d)
    bwd_max = 1 + 2 * len(dag.adds) + sum(lay.stride[0] * lay.stride[1] if isinstance(lay, strided) else 1
                                          for lay in layers)  # an Add: a rule job for each operand at most
    bwd_max += cam is not None  # the rule below a rectifier whose output gradient the Grad-CAM list reads
    # a gradient sum of diagonal terms, whose twin is a job a block (sum_blocks below; the tiler may keep it)
    bwd_max += sum(-(-layout[t][0] // tn) - 1 for t, readers in dag.sums.items()
                   if all(isinstance(layers[r], (Add, ChannelAffine)) for r in readers)
                   and _adds_by_block(layout[t][0], shape))
    bwd_max += max(len(edges) - 1, 0)
    for lay in layers:  # a grouped convolution's twin: a job a cluster of groups, forward and in each stride phase
        if grouped(lay) is not None:
            fwd_max += cluster_jobs(grouped(lay), shape) - 1
            bwd_max += (cluster_jobs(grouped(lay, transposed=True), shape) - 1) * lay.stride[0] * lay.stride[1]
    for t in dag.mixed:  # a copy of a phase of the pointwise reader's gradient beside each phase's sum
        sy, sx = layers[dag.sums[t][0]].stride
        bwd_max += sy * sx
    # a windowed average pool: a job a region forward, and in each stride phase backward (no rectifier taken)
    regions = {i: (_pool_regions(lay, r), [_phase_regions(lay, r, ph) for ph in _phases(lay)])
               for i, (lay, q) in enumerate(zip(layers, qg.layers)) if isinstance(lay, AvgPool2d) and lay.windowed
               for r in (q.weight.numpy().astype(np.int64),)}
    for fw_regions, phase_regions in regions.values():
        fwd_max += len(fw_regions)
        bwd_max += sum(map(len, phase_regions))
    forward_addr = alloc.take("forward descriptors", DESCRIPTOR.bytes * fwd_max)
    backward_addr = alloc.take("backward descriptors", DESCRIPTOR.bytes * bwd_max)
    # the Grad-CAM list: A's recomputation, the channel weights, the map, a job a phase of each upsampling stage
    cam_room = 3 + sum(gy.period * gx.period for gy, gx in stages)
    cam_addr = alloc.take("grad-cam descriptors", DESCRIPTOR.bytes * cam_room) if cam is not None else 0
    forward_batch_addr = backward_batch_addr = 0
    if batch > 1:
        # slot jobs: every job once, a SEED once a slot; a job a slot: every job once a slot
        fwd_batch, bwd_batch = (fwd_max, bwd_max - 1 + batch) if SLOT_JOBS else (fwd_max * batch, bwd_max * batch)
        forward_batch_addr = alloc.take("batched forward descriptors", DESCRIPTOR.bytes * fwd_batch)
        backward_batch_addr = alloc.take("batched backward descriptors", DESCRIPTOR.bytes * bwd_batch)

    # ---- weights (forward and backward copies) and biases: what the image holds ----
    fw: dict[int, dict] = {}
    bw: dict[int, list[dict | None]] = {}
    bias: dict[int, int] = {}
    diagonal: dict[tuple[int, int], dict] = {}

    def diag(value: int | tuple[int, ...], passes: int) -> dict:
        """The weight fields of a diagonal job of ``passes`` passes that each put ``value`` on the
        diagonal: one pass's weights, kept for every pass (w_once), or a copy a pass; ``value`` a tuple:
        pass t puts ``value[t]`` there (a windowed average pool's reciprocals, ``_phase_regions``)."""
        if isinstance(value, tuple) and len(set(value)) == 1:
            value = value[0]
        if isinstance(value, tuple):
            assert len(value) == passes
            key, once, name = (value, passes), False, f"diagonal {'/'.join(map(str, value))}"
        else:
            once = WEIGHTS_ONCE and passes > 1
            key = (value, 1 if WEIGHTS_ONCE else passes)
            name = f"diagonal {value} x {key[1]} passes"
        if key not in diagonal:
            assert init_end is None, f"weights '{name}' were not placed with the others"
            diagonal[key] = b.weights(name, _diag_blob(key[1], key[0], shape))
        return dict(diagonal[key], w_once=int(once))

    def at(d: dict, dst: Tensor, y: int, x: int, relu: int | None) -> dict:
        """Job ``d`` writing from pixel (y, x) of ``dst`` on (a rectangle of it: a windowed average pool's
        region): its output address moved there, slotted as dst, the rows and columns of dst from there
        on its output tensor's, and ``relu``'s bits (applied or kept) moved with it, as they follow the
        bytes written."""
        delta = y * dst.row_bytes + x * 2 * dst.tn
        d = dict(d, out_addr=alloc.within(dst, delta), oph=dst.h - y, opw=dst.w - x)
        if relu is not None:
            d["mask_base"] = bits_within(mask_base[relu], delta)
        return d

    def bits_within(base: int, offset: int) -> int:
        """The first ReLU bit of a job writing ``offset`` bytes into a tensor whose bits start at ``base``
        (they follow the bytes written), slotted as those."""
        mask_slot[base + offset // 2] = mask_slot[base]
        return base + offset // 2

    def by_groups(d: dict, sizes: tuple[int, int, int], compacted: bool) -> tuple[Job, ...] | None:
        """Job ``d`` of a grouped convolution (``sizes``: ``grouped``'s, along its n-tiles and m-tiles) as a job
        a cluster of groups (``group_clusters``), or None: each reads its clusters' input blocks and weights and
        writes its output blocks, the ReLU bits following them. ``compacted``: ``d``'s weights are the clusters'
        alone (``_clustered``), each cluster's m-tiles after the previous one's."""
        groups, per_in, per_out = sizes
        k = group_clusters(groups, per_in, per_out, shape)
        if k is None:
            assert not compacted, "compact weights without their cluster jobs"
            return None
        nts, mts = k * per_in // tn, k * per_out // shape.tm
        jobs = []
        for c in range(groups // k):
            n0, m0 = c * nts, c * mts
            out = m0 * (shape.tm // tn) * d["out_block_bytes"]
            job = dict(d, n_tiles=nts, m_tiles=mts, out_blocks=min(d["out_blocks"] - m0 * (shape.tm // tn),
                                                                   mts * (shape.tm // tn)),
                       in_addr=alloc.moved(d["in_addr"], n0 * d["in_block_bytes"]),
                       out_addr=alloc.moved(d["out_addr"], out),
                       w_addr=d["w_addr"] + m0 * d["w_mt_bytes"] + (0 if compacted else n0 * d["w_nt_bytes"]))
            if d["flags"] & flags(Flag.BIAS):
                job["b_addr"] = d["b_addr"] + 2 * m0 * shape.tm
            if d["flags"] & flags(Flag.RELU, Flag.RAP, Flag.BWD_RELU):
                job["mask_base"] = bits_within(d["mask_base"], out)
            jobs.append(Job(**job))
        return tuple(jobs)

    def columns(d: dict, src: Tensor, first: int, last: int) -> dict:
        """Job ``d`` reading columns [first, last) of ``src`` alone (clipped to the map: a windowed pool's
        region, whose windows read no other): its input a view of those columns, its rows the map's
        rows apart, slotted as src, its grid's input columns counted from the view's first."""
        first, last = max(first, 0), min(last, src.w)
        return dict(d, in_addr=alloc.within(src, first * 2 * src.tn), iw=last - first, ix0=d["ix0"] - first)

    def region_weights(region: _Region) -> dict:
        """A windowed pool's region job's passes and weights (none where no pass reaches the map: zeros)."""
        if not region.values:
            return dict(diag(0, 1), ky=0, kx=0)
        return dict(diag(region.values, len(region.values)), ky=region.ky, kx=region.kx)

    def identity(src: Tensor, dst: Tensor, layer: int) -> dict:
        """A diagonal 1 x 1 job that passes src's values unchanged into dst (its flags, pool or rule added by
        the caller)."""
        return dict(_conv_fields(src, dst, src.c, shape), **diag(1 << IDENTITY_FRAC, 1), layer=layer, ky=1, kx=1,
                    isy=1, isx=1, iky=1, ikx=1, oh=src.h, ow=src.w, shift0=IDENTITY_FRAC, shift1=IDENTITY_FRAC,
                    shift2=IDENTITY_FRAC)

    def edge_weights(layer: Conv2d, taps: np.ndarray, rows: tuple[int, int], cols: tuple[int, int],
                     past: tuple[int, ...], ty: int, tx: int) -> tuple[dict, dict | None, tuple, tuple]:
        """An edge of a phase view (``phase_edges``): the first convolution's backward weights for its rectangle,
        those of the channels ``past`` the image zero, over the passes that have a weight left and read the output
        gradient from some pixel of it (as a windowed pool's region); its LANES ones where it can run so; the pass
        rows and columns [t0, t1), [u0, u1) (none: (0, 0))."""
        (_, (_, _, iy0), (_, _, ix0)), = _phases(layer)
        _, oh, ow = _chw(layer.out_shape)
        kept = taps.reshape(*taps.shape[:2], ty, tx).copy()
        kept[:, list(past)] = 0
        live = [(t, u) for t in range(*_reaching(rows, ty, lambda a, t: a + iy0 - t, oh))
                for u in range(*_reaching(cols, tx, lambda a, u: a + ix0 - u, ow)) if kept[:, :, t, u].any()]
        if not live:
            return diag(0, 1), None, (0, 0), (0, 0)
        (t0, t1), (u0, u1) = [(min(v), max(v) + 1) for v in zip(*live)]
        kept = kept[:, :, t0:t1, u0:u1].reshape(*taps.shape[:2], -1).transpose(1, 0, 2)
        name = f"{layer.name}.weight.edge{rows[0]}_{cols[0]}"
        lanes = (b.weights(f"{name}.lanes", _lanes_blob(kept, u1 - u0, 1, True, shape))
                 if lane_columns(shape, u1 - u0, 1, cols[1] - cols[0], layer.in_channels) else None)
        return b.weights(name, DenseBlob(kept, shape)), lanes, (t0, t1), (u0, u1)

    init_end = None
    diag(0, 1)  # the weights of a phase no tap reaches (never read: it has no pass)
    lanes_fw: dict[int, dict] = {}  # a depthwise conv's LANES weights and bias, forward; backward (stride 1)
    lanes_bw: dict[int, dict] = {}
    edge_bw: dict[tuple, tuple] = {}  # a phase view's edge rectangle: its weights, LANES ones, pass rows, columns
    twins: dict[Job, tuple[Job, ...]] = {}  # a job -> its twin (Lowered.twins)
    twin_only: set[Job] = set()  # jobs whose weights only their twins read (Lowered.twin_only)
    # a dilated convolution (run as its spread): its dilation, and where its backward reads a fused pool's
    # gradient through the kept indices (an UNPOOL job steps one column a tap)
    dilation = {i: layer.dilation for i, layer in enumerate(viewed.graph.layers)
                if isinstance(layer, Conv2d) and layer.dilated}
    unpooled = {p - 2 if isinstance(layers[p - 1], ReLU) else p - 1 for p, layer in enumerate(layers)
                if fuse_pools and isinstance(layer, MaxPool2d) and fusable_pool(qg, p)}

    def steps(i: int, backward: bool) -> tuple[int, int]:
        """The pass steps (rows, columns) of layer i's jobs, forward or backward: a dilated convolution's
        ``tap_step`` of its dilation (backward at stride 1 and not reading a fused pool's gradient), else 1."""
        if not TAP_STEPS or i not in dilation or (backward and (layers[i].stride != (1, 1) or i in unpooled)):
            return 1, 1
        return tap_step(dilation[i][0]), tap_step(dilation[i][1])

    def clusters(i: int, transposed: bool, lanes: bool) -> int | None:
        """The groups a job of grouped convolution i's twin takes where its weights (forward, or ``transposed``
        backward) are stored compact, for its cluster jobs alone (``COMPACT_GROUPS``, ``_clustered``): only where
        its dense job surely gets that twin, which the tiler then always keeps (``Lowered.twin_only``). Not the
        first layer (a folded image, its edges), nor one with a ``lanes`` twin, a fused max-pool forward or a
        fused pool's gradient backward, nor one whose job Grad-CAM may run again (``_cam_activations``)."""
        sizes = grouped(layers[i], transposed)
        if not COMPACT_GROUPS or sizes is None or i == 0 or lanes or i in unpooled:
            return None
        if any(isinstance(layers[t], MaxPool2d) for t in range(i + 1, min(i + 3, L))):
            return None
        after = range(i + 1, cam or 0)  # the Grad-CAM layer is i, or what i's job takes after it (a ReLU, a pool)
        if cam is not None and i < cam and all(isinstance(layers[t], (*RECTIFIERS, MaxPool2d)) for t in after):
            return None
        return group_clusters(*sizes, shape)

    compact: set[tuple[int, bool]] = set()  # (layer, backward): weights stored for the cluster jobs alone
    for i, layer in enumerate(layers):
        q = qg.layers[i]
        if isinstance(layer, Conv2d):
            kh, kw = layer.kernel
            kern = _kernel(kernels, q, layer)
            depthwise = is_depthwise(layer)
            out_w, in_w, sx = layer.out_shape[2], layer.in_shape[2], layer.stride[1]
            # the forward kernel; on the folded image (a dense first conv) a pass holds several taps, and a
            # LANES twin needs its pass columns to be consecutive input columns (step 1); a dilated conv's
            # spread, its passes (gy, gx) spread taps apart, over none of the zeros between its taps
            folded = i == 0 and fold is not None
            (gy, gx), spread_taps = steps(i, False), [(t, u) for t in range(kh) for u in range(kw)]
            stepped = [t * kw + u for t, u in spread_taps if t % gy == 0 and u % gx == 0]
            k_fw, cols, name = ((_folded_kernel(kern, fold, kw), fold[1].passes, f"{layer.name}.weight.folded")
                                if folded else (_cut(kernels, q, kern, stepped, depthwise),
                                                (kw - 1) // gx + 1, f"{layer.name}.weight"))
            lanes = (not folded or fold[1].step == 1) and i not in dilation and lane_columns(
                shape, cols, _stride(sx, out_w), out_w, None if depthwise else layer.out_channels)
            k = None if folded else clusters(i, False, lanes)
            if k is not None:
                compact.add((i, False))
                k_fw = _clustered(kernels, q, k_fw, stepped, False, layer.groups, k)
            fw[i] = b.weights(name, _depthwise_blob(k_fw, shape) if depthwise else DenseBlob(k_fw, shape))
            if lanes:
                lanes_fw[i] = b.weights(f"{name}.lanes", _lanes_blob(k_fw, cols, _stride(sx, out_w), False, shape))
            bw[i] = []
            gy, gx = steps(i, True)
            for (ry, rx), (i0, ty, _), (j0, tx, _) in _phases(layer):
                if ty and tx:
                    ty, tx = (ty - 1) // gy + 1, (tx - 1) // gx + 1  # a dilated conv's: every g-th (stride 1)
                    taps = [(i0 + t * layer.stride[0] * gy) * kw + j0 + u * layer.stride[1] * gx for t in range(ty)
                            for u in range(tx)]
                    cut = _cut(kernels, q, kern, taps, depthwise, not depthwise)
                    lanes = layer.stride == (1, 1) and i not in dilation and lane_columns(
                        shape, tx, 1, in_w, None if depthwise else layer.in_channels)
                    if lanes:  # stride 1: one phase, every column of the input gradient
                        lanes_bw[i] = b.weights(f"{layer.name}.weight.phase{ry}{rx}.lanes",
                                                _lanes_blob(cut, tx, 1, True, shape))
                    k = clusters(i, True, lanes)
                    if k is not None:
                        compact.add((i, True))
                        cut = _clustered(kernels, q, cut, taps, True, layer.groups, k)
                    blob = _depthwise_blob(cut, shape) if depthwise else DenseBlob(cut, shape)
                    bw[i].append(b.weights(f"{layer.name}.weight.phase{ry}{rx}", blob))
                    for rows, cols, past in edges if i == 0 else []:  # the phases past the image left zero
                        if past:
                            edge_bw[rows, cols] = edge_weights(layer, kern[:, :, taps], rows, cols, past, ty, tx)
                else:
                    bw[i].append(None)  # no tap reaches the phase: its gradient is zero
        elif isinstance(layer, ChannelAffine):
            fw[i] = b.weights(f"{layer.name}.scale", _depthwise_blob(q.weight.numpy().astype(np.int64)[:, None], shape))
            bw[i] = [fw[i]]
        elif isinstance(layer, Linear):
            order = feature_order(layout[i], tn)  # the input's DDR order, as C-order features
            wt = q.weight.numpy().astype(np.int64)
            perm = np.zeros((wt.shape[0], order.size), dtype=np.int64)
            perm[:, order >= 0] = wt[:, order[order >= 0]]
            fw[i] = b.weights(f"{layer.name}.weight", DenseBlob(perm[:, :, None], shape))
            bw[i] = [b.weights(f"{layer.name}.weight.transposed", DenseBlob(perm.T[:, :, None], shape))]
        elif i in regions:  # the reciprocals of each region's jobs
            for phase, phase_regions in zip(_phases(layer), regions[i][1]):
                for region in phase_regions if phase[1][1] and phase[2][1] else []:
                    region_weights(region)
            for region in regions[i][0]:
                region_weights(region)
        elif isinstance(layer, AvgPool2d):
            diag(int(q.weight[0]), layer.kernel[0] * layer.kernel[1])
            for _, (_, ty, _), (_, tx, _) in [] if _is_global(layer) else _phases(layer):
                if ty and tx:
                    diag(int(q.weight[0]), ty * tx)
            if _is_global(layer):
                diag(int(q.weight[0]), 1)
            summed = _summed_grid(layer)
            if summed is not None:
                diag(int(q.weight[0]), summed[2] * summed[3])
        elif isinstance(layer, MaxPool2d):
            diag(1 << IDENTITY_FRAC, 1)
            for _, (_, ty, _), (_, tx, _) in _phases(layer):
                if ty and tx:
                    diag(1 << IDENTITY_FRAC, ty * tx)
        elif isinstance(layer, (ReLU, ReLU6)):
            diag(1 << IDENTITY_FRAC, 1)
        if isinstance(layer, (Conv2d, Linear, ChannelAffine)):
            out_c = layer.out_shape[0]
            padded = np.zeros(-(-out_c // shape.tm) * shape.tm, dtype=np.int64)
            padded[:out_c] = q.bias.numpy()
            if i in lanes_fw:  # a LANES m-tile's tn channels in every lane group
                per_block = np.zeros(-(-out_c // tn) * tn, dtype=np.int64)
                per_block[:out_c] = q.bias.numpy()
                lanes_fw[i]["b_addr"] = alloc.take(f"{layer.name}.bias.lanes", 2 * per_block.size * (shape.tm // tn))
                b.blobs.append((lanes_fw[i]["b_addr"],
                                np.repeat(per_block.reshape(-1, 1, tn), shape.tm // tn, axis=1).reshape(-1)))
            bias[i] = alloc.take(f"{layer.name}.bias", 2 * padded.size)
            b.blobs.append((bias[i], padded))

    # ---- two-source jobs: an Add's identities, the merged kernels of a gradient sum ----
    present = [m for m in range(3) if ReluBackward(m) in qg.grad_formats] or [0]

    def by_mode(f: Callable[[ReluBackward], int]) -> list[int]:
        """f of each ReLU mode's formats (a mode the network was not calibrated for: the first one's)."""
        return [f(ReluBackward(m if m in present else present[0])) for m in range(3)]

    add_fields: dict[int, dict] = {}
    block_identities: dict[tuple[int, int], dict] = {}  # (Add, channels of a block): a block job's weights
    concat_bw: dict[int, list[dict]] = {}  # a Concat: each operand's gradient, its channels of the output's
    for i, (ta, tb) in dag.adds.items():
        fa, fb = qg.tensor_fmt(ta).frac, qg.tensor_fmt(tb).frac
        e, xs, frac = _align([[fa] * 3, [fb] * 3], [True, True], f"layer '{layers[i].name}'")
        if isinstance(layers[i], Concat):
            ca, cb = layout[ta][0], layout[tb][0]
            add_fields[i] = dict(b.weights(f"{layers[i].name}.placement", _placement(ca, cb, e, shape)),
                                 src_b=-(-ca // tn),
                                 **_shift_fields(xs, frac, [qg.layers[i].out_fmt.frac] * 3))
            # an operand's gradient: its channels of the cat's, unchanged (the identity weight)
            concat_bw[i] = [b.weights(f"{layers[i].name}.operand{k}.gradient",
                                      DenseBlob(_channel_moves(c, ca + cb, [(0, off, c, 1 << IDENTITY_FRAC)]), shape))
                            for k, (c, off) in enumerate(((ca, 0), (cb, ca)))]
        else:
            c, na, nb = layout[ta][0], -(-layout[ta][0] // tn), -(-layout[tb][0] // tn)
            add_fields[i] = dict(b.weights(f"{layers[i].name}.identities", _identities(c, na, nb, e, shape)),
                                 src_b=na, **_shift_fields(xs, frac, [qg.layers[i].out_fmt.frac] * 3))
            if _adds_by_block(c, shape):  # a block's job: block k of each operand, a block a source
                for width in sorted({min(tn, c - k * tn) for k in range(na)}):
                    block_identities[i, width] = b.weights(f"{layers[i].name}.block identities ({width})",
                                                           _identities(width, 1, 1, e, shape))
        diag(1 << IDENTITY_FRAC, 1)  # an operand's rectifier rule (backward), the image's copy

    select_fw: dict[int, dict] = {}  # a ChannelSelect: its channels of its input, forward; backward the transpose
    select_bw: dict[int, dict] = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, ChannelSelect):
            kern = _selection(layer.index, layer.in_shape[0], 1 << IDENTITY_FRAC)
            select_fw[i] = b.weights(f"{layer.name}.selection", DenseBlob(kern, shape))
            select_bw[i] = b.weights(f"{layer.name}.gradient", DenseBlob(kern.transpose(1, 0, 2), shape))

    def reader_terms(r: int, t: int) -> tuple[np.ndarray, int, tuple[int, int], list]:
        """Reader r of tensor t as a transposed conv: kernel (t's channels, r's output channels, taps),
        kernel columns, stride, stride phases (an Add: the identity; a per-channel affine: its scale on the
        diagonal; an average pool: its reciprocal on the diagonal of every tap)."""
        layer = layers[r]
        c = layout[t][0]
        if isinstance(layer, (Add, ChannelAffine)):
            scale = (np.ones(c, np.int64) if isinstance(layer, Add) or is_copy(layer)
                     else qg.layers[r].weight.numpy().astype(np.int64))
            return np.diag(scale)[:, :, None], 1, (1, 1), [((0, 0), (0, 1, 0), (0, 1, 0))]
        if isinstance(layer, ChannelSelect):  # each channel the select took gets its output channel's gradient
            return (_selection(layer.index, c, 1).transpose(1, 0, 2), 1, (1, 1),
                    [((0, 0), (0, 1, 0), (0, 1, 0))])
        if isinstance(layer, Concat):  # t's channels of the cat's gradient (DenseNet: cat([x, f(x)]))
            off = sum(layout[s][0] for s in reads[r][:reads[r].index(t)])
            return _channel_moves(c, layer.out_shape[0], [(0, off, c, 1)]), 1, (1, 1), [((0, 0), (0, 1, 0), (0, 1, 0))]
        if isinstance(layer, AvgPool2d):
            assert not layer.windowed, "a windowed pool's gradient is no term of a sum (dag.summable)"
            kh, kw = layer.kernel
            kern = np.repeat(np.eye(c, dtype=np.int64)[:, :, None] * int(qg.layers[r].weight[0]), kh * kw, axis=2)
            return kern, kw, layer.stride, _phases(layer)
        kern = _kernel(kernels, qg.layers[r], layer)
        if is_depthwise(layer):  # as the dense kernel it is, zero off the diagonal
            kern = _ungrouped(kern, layer.groups)
        return kern.transpose(1, 0, 2), layer.kernel[1], layer.stride, _phases(layer)

    sum_jobs: dict[int, tuple[list[dict], dict]] = {}
    sum_blocks: dict[int, list[dict]] = {}  # a sum of two diagonal terms: each block's weights (its twin's jobs)
    for t, readers in dag.sums.items():
        terms = [reader_terms(r, t) for r in readers]
        if t in dag.mixed:  # the 1 x 1 reader of stride 1: one tap in each of the strided reader's phases, on
            # the copy of that phase of its gradient (gradient_sum)
            kt, kw1, stride1, _ = terms[1]
            terms[1] = (kt, kw1, stride1, [(rr, (0, 1, 0), (0, 1, 0)) for rr, *_ in terms[0][3]])
        bases = [by_mode(lambda mode, r=r: qg.grad_fmt(mode, r + 1).frac
                         + (0 if unweighted(layers[r]) else qg.layers[r].weight_fmt.frac))
                 for r in readers]
        where = f"the gradient at tensor '{graph.tensor_names[t]}'"
        e, xs, frac = _align(bases, [unweighted(layers[r]) for r in readers], where)
        # the shifted terms must still fit the accumulator (calibrate's check, per source, with the shifts)
        reach = sum(int(np.count_nonzero(kt, axis=(1, 2)).max()) * (int(np.abs(kt).max()) << k)
                    << (qg.width - 1 + max(x)) for (kt, *_), k, x in zip(terms, e, xs))
        if reach >= 1 << (ACCUMULATOR_BITS - 1):
            raise XaiHlsError(f"{where}: the two readers' terms, shifted to one fraction, can overflow the "
                              f"{ACCUMULATOR_BITS}-bit accumulator; use a narrower width")
        blocks = [-(-_chw(layers[r].out_shape)[0] // tn) for r in readers]
        sum_phases = []
        for k in range(len(terms[0][3])):
            parts = [term[3][k] for term in terms]
            (ry, rx) = parts[0][0]
            assert all(p[0] == (ry, rx) for p in parts), "readers of one stride have the same phases"
            reach = [bool(p[1][1] and p[2][1]) for p in parts]  # whether a tap of the reader reaches the phase
            live = [p for p, r in zip(parts, reach) if r]
            if not live:  # no tap of either reader reaches the phase: it writes zeros
                sum_phases.append(dict(diag(0, 1), ky=0, kx=0, iy0=0, ix0=0, ry=ry, rx=rx, reach=reach, gy=1, gx=1))
                continue
            # one pass grid for both: pass (t, u) reads gradient row oy + hi_y - t (as every backward conv)
            hi_y, lo_y = max(p[1][2] for p in live), min(p[1][2] - p[1][1] + 1 for p in live)
            hi_x, lo_x = max(p[2][2] for p in live), min(p[2][2] - p[2][1] + 1 for p in live)
            ty_all, tx_all = hi_y - lo_y + 1, hi_x - lo_x + 1
            # the sources the phase reads: both, or the one whose taps reach it
            offset = [0, blocks[0] * tn if reach[0] else 0]
            kern = np.zeros((layout[t][0], sum(n for n, r in zip(blocks, reach) if r) * tn, ty_all * tx_all),
                            dtype=np.int64)
            for (kt, kw, (sy, sx), _), ((_, (i0, ty, iy0), (j0, tx, ix0))), off, ek, r in zip(terms, parts, offset, e,
                                                                                                reach):
                if not r:
                    continue
                for v in range(ty):
                    for u in range(tx):
                        tap = (i0 + v * sy) * kw + j0 + u * sx
                        kern[:, off:off + kt.shape[1], (hi_y - iy0 + v) * tx_all + hi_x - ix0 + u] = kt[:, :, tap] << ek
            gy = gx = 1
            if TAP_STEPS and any(r in dilation for r in readers):  # a dilated reader's spread: its taps' passes
                grid = kern.reshape(*kern.shape[:2], ty_all, tx_all)
                gy, gx = _lattice(grid.any(axis=(0, 1, 3))), _lattice(grid.any(axis=(0, 1, 2)))
                kern = grid[:, :, ::gy, ::gx].reshape(*kern.shape[:2], -1)
                ty_all, tx_all = (ty_all - 1) // gy + 1, (tx_all - 1) // gx + 1
            w = b.weights(f"{graph.tensor_names[t]}.gradient_sum.phase{ry}{rx}", DenseBlob(kern, shape))
            sum_phases.append(dict(w, ky=ty_all, kx=tx_all, iy0=hi_y, ix0=hi_x, ry=ry, rx=rx, reach=reach, gy=gy,
                                   gx=gx))
        out_fracs = by_mode(lambda mode: qg.grad_fmt(mode, t).frac)
        sum_jobs[t] = (sum_phases, dict(src_b=blocks[0], **_shift_fields(xs, frac, out_fracs)))
        if all(isinstance(layers[r], (Add, ChannelAffine)) for r in readers) and _adds_by_block(layout[t][0], shape):
            # both terms on the diagonal (an Add's identity, a per-channel affine's scale): a job a block
            # can read block k of each reader's gradient, with its block of both diagonals
            sum_blocks[t] = [b.weights(f"{graph.tensor_names[t]}.gradient_sum.block{k}", DenseBlob(blob, shape))
                             for k, blob in enumerate(_diagonal_blocks([np.diagonal(kt[:, :, 0]) << ek
                                                                       for (kt, *_), ek in zip(terms, e)], tn))]

    # ---- the Grad-CAM list's constants: 1/(h*w) on a diagonal, the weights' block (zeros past each
    # block of tn weights, written in the image), the map to every input channel ----
    if cam is not None:
        cc, ch, cw = layout[cam]
        r_code, r_fmt = cam_reciprocal(ch, cw, qg.width)
        cam_passes = field_limit(DESCRIPTOR, "ky")
        cam_mean = diag(r_code, ch * cw) if max(ch, cw) <= cam_passes else None
        cam_view = sum_view(ch, cw)
        cam_grid = sum_split(*cam_view) if CAM_SUMS else None
        cam_summed = diag(r_code, cam_grid[2] * cam_grid[3]) if cam_grid is not None else None
        cam_weights_addr = alloc.take("grad_cam channel weights", -(-cc // tn) * shape.tm * tn * 2)
        c_in = graph.input_shape[0]
        cam_spread = b.weights("grad_cam upsampling", DenseBlob(np.full((c_in, 1, 1), 1 << IDENTITY_FRAC), shape))
        diag(1 << IDENTITY_FRAC, 1)  # a rectifier's rule below the gradient the list reads
    init_end = alloc.top

    # ---- run-time regions ----
    c, h, w = qg.graph.input_shape
    image = alloc.tensor("image", (c, h, w), tn, slotted=True)
    work = alloc.tensor("work image", (c, h, w), tn, slotted=True)
    baseline = alloc.tensor("baseline", (c, h, w), tn)
    ig_table_addr = alloc.take("ig table", IG_TABLE_BYTES)
    logits = alloc.tensor("logits", (qg.graph.num_classes,), tn, slotted=True)
    logits_save = alloc.tensor("saved logits", (qg.graph.num_classes,), tn)
    result_addr = alloc.take("result" if batch == 1 else f"results ({batch} slots)",
                             RESULT.bytes if batch == 1 else RESULT_SLOT_BYTES * batch)
    targets_addr = alloc.take(f"targets ({batch} slots)", 4 * batch) if batch > 1 else 0
    attr = alloc.tensor("attribution", (c, h, w), tn, slotted=True)

    # ---- forward list ----
    act: dict[int, Tensor] = {0: work}
    forward: list[Job] = []

    side_by_side: dict[int, Tensor] = {}

    def out_tensor(name: str, end: int) -> Tensor:
        """Where a job ending at tensor ``end`` writes: the logits region at the end; an Add's operand
        next to the other one."""
        if all(isinstance(layers[k], Flatten) for k in range(end, L)):
            return Tensor(logits.addr, *layout[end], tn)
        if end in act_pair:
            if end not in side_by_side:
                first, second = act_pair[end]
                side_by_side[first], side_by_side[second] = alloc.pair(
                    f"{graph.tensor_names[first]} | {graph.tensor_names[second]}", layout[first], layout[second], tn)
            return side_by_side[end]
        return alloc.tensor(name, layout[end], tn, slotted=True)

    def aliased(i: int) -> bool:
        """Whether layer i is an exact copy of a map (``dag.with_copies``) whose output is the map's bytes:
        no forward job (``COPY_ALIASES``), where its format is the map's, no Add or cat stores it beside
        another operand and no rectifier after it would be taken by its job. Its gradient keeps a buffer
        of its own, a term of the sum at the map."""
        j = i + 1
        return (COPY_ALIASES and is_copy(layers[i]) and j not in act_pair
                and qg.tensor_fmt(j) == qg.tensor_fmt(reads[i][0])
                and not (j < L and isinstance(layers[j], RECTIFIERS) and graph.takes(j)))

    def relu_bits(relu: int, grid: Tensor | None = None) -> dict:
        """The ReLU's bits (a ReLU6's cap with them): at the offsets of the elements the job writes, or
        (a RELU before a fused max-pool) at the pixels of the convolution's ``grid``."""
        plane = grid.plane if grid is not None else 0
        if isinstance(layers[relu], ReLU6):
            return dict(mask_base=mask_base[relu], mask_plane=plane, cap=relu6_cap(qg.layers[relu].in_fmt))
        return dict(mask_base=mask_base[relu], mask_plane=plane)

    def rectifier(j: int, fl: list, on_acc: bool, alone: bool = False) -> int | None:
        """A ReLU or ReLU6 at layer j that the job takes (its flags go in ``fl``): the job's own layer
        (``alone``), or the one after it that reads its output alone. A ReLU decides on the accumulator
        (RELU) where ``on_acc`` (after a Conv2d/Linear, or alone on an identity), else on the requantized
        value (RAP); a ReLU6 always on the requantized value."""
        if j >= L or not isinstance(layers[j], (ReLU, ReLU6)) or not (alone or graph.takes(j)):
            return None
        if isinstance(layers[j], ReLU6):
            fl += [Flag.RAP, Flag.RELU6]
        else:
            fl.append(Flag.RELU if on_acc else Flag.RAP)
        return j

    spans: list[tuple[int, int, int]] = []  # (first layer, layer after the last, forward job) of each layer job
    operand = dict(act)  # the tensor an Add reads: the image's copy next to the other operand
    if 0 in act_pair:
        copy = out_tensor("image copy", 0)
        forward.append(Job(**identity(work, copy, 0), flags=flags(Flag.DIAG)))
        operand[0] = copy
    i = 0
    while i < L:
        layer, q = layers[i], qg.layers[i]
        if isinstance(layer, Flatten) or aliased(i):
            act[i + 1] = act[reads[i][0]]
            i += 1
            continue
        src = act[reads[i][0]]
        if isinstance(layer, ChannelSelect):  # a 1 x 1 job copying the channels it takes (one format)
            dst = out_tensor(f"{layer.name}.out", i + 1)
            forward.append(Job(**dict(_conv_fields(src, dst, layer.out_shape[0], shape), **select_fw[i], layer=i,
                                      ky=1, kx=1, isy=1, isx=1, iky=1, ikx=1, oh=src.h, ow=src.w,
                                      shift0=IDENTITY_FRAC, shift1=IDENTITY_FRAC, shift2=IDENTITY_FRAC, flags=0)))
            spans.append((i, i + 1, len(forward) - 1))
            act[i + 1] = dst
            i += 1
            continue
        if isinstance(layer, (Add, Concat)):
            # one 1 x 1 job over the two operands, stored side by side: each on the diagonal of its own
            # source (a Concat's: at its channels of the output), shifted to the finer fraction; the sum
            # (a Concat: the one term) rounded once
            first, second = (operand.get(t, act.get(t)) for t in reads[i])
            assert second.addr == first.addr + first.bytes, f"layer {i}: the operands are not side by side"
            both = Tensor(first.addr, (first.blocks + second.blocks) * tn, first.h, first.w, tn)
            fl = []
            j = i + 1
            relu_at = rectifier(j, fl, on_acc=False)
            if relu_at is not None:
                j += 1
            dst = out_tensor(f"{layer.name}.out", j)
            d = dict(_conv_fields(both, dst, layer.out_shape[0], shape), **add_fields[i], layer=i, ky=1, kx=1,
                     isy=1, isx=1, iky=1, ikx=1, oh=first.h, ow=first.w, flags=flags(*fl))
            if relu_at is not None:
                d.update(relu_bits(relu_at))
            forward.append(Job(**d))
            if isinstance(layer, Add) and _adds_by_block(first.c, shape):
                # its twin: a job a block, block k of each operand (the second's lies first.bytes after
                # the first's) into block k
                blocks = []
                for k in range(first.blocks):
                    a, out = alloc.block(first, k), alloc.block(dst, k)
                    job = dict(d, **_conv_fields(a, out, a.c, shape), **block_identities[i, a.c])
                    job.update(n_tiles=2, src_b=1, in_block_bytes=first.bytes)
                    if relu_at is not None:  # its bits at its output's offset, slotted as the ReLU's
                        job["mask_base"] = bits_within(d["mask_base"], out.addr - dst.addr)
                    blocks.append(Job(**job))
                twins[forward[-1]] = tuple(blocks)
            spans.append((i, j, len(forward) - 1))
            act[j] = dst
            i = j
            continue
        if isinstance(layer, (Conv2d, Linear)):
            j = i + 1
            fl = [Flag.BIAS]
            if is_depthwise(layer):
                fl.append(Flag.DIAG)
            pool_at = None
            relu_at = rectifier(j, fl, on_acc=True)
            if relu_at is not None:
                j += 1
            # a max-pool fused into the write-back, ranking the accumulator as golden does (not after a
            # ReLU6, a padded pool, a pool after a depthwise conv: each of those is a pool's own job)
            if j < L and graph.pool_ranks_accumulator(j):
                fl.append(Flag.POOL)
                pool_at, j = j, j + 1
                if relu_at is None and j < L and isinstance(layers[j], ReLU) and graph.takes(j):
                    fl.append(Flag.RAP)
                    relu_at, j = j, j + 1
            dst = out_tensor(f"{layer.name}.out", j)
            sh = q.acc_frac - q.out_fmt.frac
            common = dict(fw[i], layer=i, b_addr=bias[i], bias_shift=q.bias_shift, shift0=sh, shift1=sh, shift2=sh)
            if isinstance(layer, Conv2d):
                (kh, kw), (sy, sx), (py, px) = layer.kernel, layer.stride, layer.padding
                _, oh, ow = layer.out_shape
                gy, gx = steps(i, False)
                d = dict(_conv_fields(src, dst, layer.out_channels, shape), **common, ky=(kh - 1) // gy + 1,
                         kx=(kw - 1) // gx + 1, isy=_stride(sy, oh), isx=_stride(sx, ow), iky=gy, ikx=gx, iy0=-py,
                         ix0=-px, oh=oh, ow=ow)
                if i == 0 and fold is not None:
                    rows, cols = fold
                    d.update(ky=rows.passes, kx=cols.passes, iky=rows.step, ikx=cols.step, iy0=rows.origin,
                             ix0=cols.origin)
                else:
                    d.update(rows_read(d))
                conv_out = Tensor(dst.addr, *_chw(layer.out_shape), tn)
            else:
                vsrc = _vector(src)
                d = dict(_conv_fields(vsrc, dst, layer.out_shape[0], shape), **common, **_one_position())
                conv_out = dst
            if relu_at is not None:
                d.update(relu_bits(relu_at, conv_out if Flag.POOL in fl and Flag.RAP not in fl else None))
            if pool_at is not None:
                p = layers[pool_at]
                d.update(_pool_fields(p), index_base=index_base[pool_at],
                         oh=(p.out_shape[1] - 1) * p.stride[0] + p.kernel[0])
            d["flags"] = flags(*fl)
            forward.append(Job(**d))
            if i in lanes_fw and Flag.POOL not in fl:  # a LANES job writes every pixel: no pool on it
                twins[forward[-1]] = (Job(**dict(_as_lanes(d, layer.out_channels, shape), **lanes_fw[i])),)
            elif grouped(layer) is not None and pool_at is None and not (i == 0 and fold is not None):
                twin = by_groups(d, grouped(layer), (i, False) in compact)
                if twin is not None:
                    twins[forward[-1]] = twin
                    if (i, False) in compact:  # its weights are the twin's alone
                        twin_only.add(forward[-1])
            spans.append((i, j, len(forward) - 1))
            act[j] = dst
            i = j
            continue
        if isinstance(layer, (MaxPool2d, AvgPool2d, ReLU, ReLU6, ChannelAffine)):
            # a diagonal job: the reciprocal (average), a per-channel affine, or an identity that the
            # write-back pools or clamps
            j = i + 1
            fl = [Flag.DIAG]
            windowed = i in regions
            if isinstance(layer, (ReLU, ReLU6)):
                relu_at = rectifier(i, fl, on_acc=True, alone=True)
            elif not windowed:  # (a windowed pool's jobs leave a rectifier after it to a job of its own)
                relu_at = rectifier(j, fl, on_acc=False)
                if relu_at is not None:
                    j += 1
            dst = out_tensor(f"{layer.name}.out", j)
            d = dict(_conv_fields(src, dst, src.c, shape), layer=i, iky=1, ikx=1, isy=1, isx=1)
            if windowed:
                # a job a rectangle of windows of one reciprocal (``_pool_regions``), at its pixels of dst
                (sy, sx), (py, px) = layer.stride, layer.padding
                sh = q.acc_frac - q.out_fmt.frac
                d.update(shift0=sh, shift1=sh, shift2=sh, flags=flags(*fl))
                for region in regions[i][0]:
                    (y0, y1), (x0, x1), (t0, _), (u0, u1) = region.rows, region.cols, region.taps_y, region.taps_x
                    job = dict(d, **region_weights(region), oh=y1 - y0, ow=x1 - x0, isy=_stride(sy, y1 - y0),
                               isx=_stride(sx, x1 - x0), iy0=y0 * sy - py + t0, ix0=x0 * sx - px + u0)
                    job = columns(job, src, x0 * sx - px + u0, (x1 - 1) * sx - px + u1)
                    forward.append(Job(**at(job, dst, y0, x0, None)))
                spans.append((i, j, len(forward) - 1))
                act[j] = dst
                i = j
                continue
            if isinstance(layer, AvgPool2d):
                (kh, kw), (sy, sx), (py, px), (_, oh, ow) = layer.kernel, layer.stride, layer.padding, layer.out_shape
                sh = q.acc_frac - q.out_fmt.frac
                d.update(diag(int(q.weight[0]), kh * kw), ky=kh, kx=kw, isy=_stride(sy, oh), isx=_stride(sx, ow),
                         iy0=-py, ix0=-px, oh=oh, ow=ow, shift0=sh, shift1=sh, shift2=sh)
            elif isinstance(layer, ChannelAffine):
                fl.append(Flag.BIAS)
                sh = q.acc_frac - q.out_fmt.frac
                d.update(fw[i], ky=1, kx=1, oh=src.h, ow=src.w, b_addr=bias[i], bias_shift=q.bias_shift,
                         shift0=sh, shift1=sh, shift2=sh)
            else:
                d.update(identity(src, dst, i))
                if isinstance(layer, MaxPool2d):
                    # the grid is the canvas the windows cover; positions outside the map never win
                    (kh, kw), (sy, sx), (py, px) = layer.kernel, layer.stride, layer.padding
                    _, poh, pow_ = layer.out_shape
                    fl.append(Flag.POOL)
                    d.update(_pool_fields(layer), index_base=index_base[i],
                             oh=(poh - 1) * sy + kh, iy0=-py, ix0=-px)
                    if not layer.is_plain:
                        d["ow"] = (pow_ - 1) * sx + kw
            if relu_at is not None:
                d.update(relu_bits(relu_at))
            d["flags"] = flags(*fl)
            forward.append(Job(**d))
            summed = _summed_grid(layer) if isinstance(layer, AvgPool2d) else None
            passes = field_limit(DESCRIPTOR, "kx")
            if isinstance(layer, AvgPool2d) and summed is None and max(layer.kernel) > passes:
                grid, block = field_limit(DESCRIPTOR, "pool_kh"), field_limit(DESCRIPTOR, "isy")
                window = original.graph.layers[i].kernel  # as the network has it (a 1-D model's row)
                raise XaiHlsError(
                    f"layer '{layer.name}': an average pool over {window[0]} x {window[1]} pixels; the "
                    f"engine sums a window of at most {passes} a side a pass a pixel, or a global one on a grid of at "
                    f"most {grid} positions of {block} pixels a side (a 1-D map longer than that read as rows of a "
                    "divisor of its length)")
            if summed is not None:
                grid_h, grid_w, taps_h, taps_w = summed
                _, view_h, view_w = _pool_view(layer)
                view = _conv_fields(Tensor(src.addr, src.c, view_h, view_w, tn), dst, src.c, shape)
                twins[forward[-1]] = (Job(**dict(
                    d, **view, **diag(int(q.weight[0]), taps_h * taps_w), ky=taps_h, kx=taps_w, isy=taps_h, isx=taps_w,
                    iy0=0, ix0=0, oh=grid_h, ow=grid_w, pool_kh=grid_h, pool_kw=grid_w, pool_sh=grid_h, pool_sw=grid_w,
                    pool_oh=1, pool_ow=1,
                    flags=d["flags"] | flags(Flag.POOL, Flag.SUM))),)
            spans.append((i, j, len(forward) - 1))
            act[j] = dst
            i = j
            continue
        raise AssertionError(type(layer).__name__)

    # ---- backward list ----
    # A tensor's gradient buffer (xaihls.plan.dag): a rectifier's output gradient is stored at its
    # input, the rule applied by the job that writes it; an Add's operand that only the Add reads
    # shares the Add's; the two gradients a sum reads lie side by side.
    grad: dict[int, Tensor] = {}

    def rule_flags(relu: int | None) -> int:
        """BWD_RELU where a rectifier's rule applies (RELU6 where it is a ReLU6)."""
        if relu is None:
            return 0
        return flags(Flag.BWD_RELU, Flag.RELU6) if isinstance(layers[relu], ReLU6) else flags(Flag.BWD_RELU)

    def cam_gradient(t: int, unruled: bool) -> tuple[Tensor, int]:
        """The buffer holding the true gradient at tensor t (the Grad-CAM layer's output), its key."""
        if unruled:
            key = t
        elif isinstance(layers[t - 1], RECTIFIERS):  # an Add alone reads it: the Add's output gradient
            key = grad_store(graph, users[t][0] + 1, dag.copies)
        else:
            key = grad_store(graph, t, dag.copies)
        if qg.grad_fmt(ReluBackward.MASK, key) != qg.grad_fmt(ReluBackward.MASK, t):
            raise XaiHlsError(f"grad_cam_layer '{layers[t - 1].name}': its gradient is stored in the format of "
                              f"tensor '{graph.tensor_names[key]}', which differs from its own")
        return grad_tensor(key), key

    mixed_first = {dag.sources[t][0]: t for t in dag.mixed}  # a mixed sum's first buffer -> its tensor
    scratch: dict[int, Tensor] = {}  # a mixed sum's tensor -> the copy of one phase of its second gradient

    def grad_tensor(key: int) -> Tensor:
        if key not in grad:
            if key in mixed_first:
                t = mixed_first[key]
                c2 = layout[dag.sources[t][1]][0]
                grad[key], scratch[t] = alloc.pair(f"grad[{key}] | a phase of grad[{dag.sources[t][1]}]",
                                                   layout[key], (c2, *layout[key][1:]), tn)
            elif key in grad_pair:
                first, second = grad_pair[key]
                grad[first], grad[second] = alloc.pair(f"grad[{first}] | grad[{second}]", layout[first],
                                                       layout[second], tn)
            else:
                grad[key] = alloc.tensor(f"grad[{key}]", layout[key], tn, slotted=True)
        return grad[key]

    # the gradient the Grad-CAM list reads at a rectifier's output is stored there, unruled, and a
    # diagonal job applies the rule below it (unless it is an Add's gradient, stored anyway)
    cam_unruled = (cam is not None and isinstance(layers[cam - 1], RECTIFIERS)
                   and not (len(users[cam]) == 1 and isinstance(layers[users[cam][0]], Add)))

    def dest(t: int) -> tuple[int, int | None]:
        if cam_unruled and canon(graph, t) == cam:
            return cam, None
        return grad_dest(graph, t)

    def rule_job(src: Tensor, key: int, relu: int, i: int, shifts: list[int]) -> Job:
        """A diagonal identity from ``src`` to the gradient buffer ``key`` with rectifier ``relu``'s rule."""
        dst = grad_tensor(key)
        d = dict(identity(src, dst, i), shift0=shifts[0], shift1=shifts[1], shift2=shifts[2],
                 flags=rule_flags(relu) | flags(Flag.DIAG))
        d.update(relu_bits(relu))
        return Job(**d)

    def moves_job(src: Tensor, key: int, relu: int | None, weights: dict, i: int, shifts: list[int]) -> Job:
        """A 1 x 1 job moving channels of ``src`` (``weights``: a cat operand's or a selection's) into the
        gradient buffer ``key``, with rectifier ``relu``'s rule where there is one."""
        dst = grad_tensor(key)
        d = dict(_conv_fields(src, dst, dst.c, shape), **weights, layer=i, ky=1, kx=1, isy=1, isx=1, iky=1, ikx=1,
                 oh=dst.h, ow=dst.w, shift0=shifts[0], shift1=shifts[1], shift2=shifts[2], flags=rule_flags(relu))
        if relu is not None:
            d.update(relu_bits(relu))
        return Job(**d)

    backward: list[Job] = []
    seed_pos, seed_relu = grad_dest(graph, L)
    seed = _vector(grad_tensor(seed_pos))
    d = dict(op=Op.SEED, layer=L, out_addr=seed.addr, out_block_bytes=seed.block_bytes, out_row_bytes=seed.row_bytes,
             out_blocks=seed.blocks, oph=1, opw=1, oh=1, ow=qg.graph.num_classes, shift0=qg.seed_fmt.frac)
    if seed_relu is not None:
        d.update(relu_bits(seed_relu), flags=rule_flags(seed_relu))
    backward.append(Job(**d))
    modes = tuple(qg.grad_formats)

    def gradient_sum(t: int) -> None:
        """The jobs of the gradient at tensor t, read by two layers: one per stride phase over the two
        readers' output gradients, side by side."""
        key, relu = dest(t)
        dst = grad_tensor(key)
        first, second = (grad_tensor(k) for k in dag.sources[t])
        if t in dag.mixed:  # the second reader's gradient, a phase at a time, copied beside the first's
            full, second = second, scratch[t]
        assert second.addr == first.addr + first.bytes, f"tensor {t}: the summed gradients are not side by side"
        sum_phases, fields = sum_jobs[t]
        # the reader whose stride phases the jobs run (the strided one of a mixed sum), and the job is reported
        # as (its MACs counted from): else a convolution, else a pool (readers of one stride, _reader_refusal)
        r = dag.sums[t][0] if t in dag.mixed else min(
            dag.sums[t], key=lambda r: (not isinstance(layers[r], Conv2d), not isinstance(layers[r], AvgPool2d)))
        (sy, sx), (_, gh, gw) = _stride2(layers[r]), _chw(layout[t])
        for ph in sum_phases:
            ry, rx, reach = ph["ry"], ph["rx"], ph["reach"]
            geometry = {k: v for k, v in ph.items() if k not in ("ry", "rx", "reach", "gy", "gx")}
            if t in dag.mixed and reach[1]:  # phase (ry, rx) of the 1 x 1 reader's gradient: pixels s*y + ry
                oh, ow = len(range(ry, full.h, sy)), len(range(rx, full.w, sx))
                backward.append(Job(**dict(_conv_fields(full, second, full.c, shape), **diag(1 << IDENTITY_FRAC, 1),
                                           layer=dag.sums[t][1], ky=1, kx=1, isy=_stride(sy, oh), isx=_stride(sx, ow),
                                           iky=1, ikx=1, iy0=ry, ix0=rx, oh=oh, ow=ow, shift0=IDENTITY_FRAC,
                                           shift1=IDENTITY_FRAC, shift2=IDENTITY_FRAC, flags=flags(Flag.DIAG))))
            if all(reach):  # both sources, the second from block src_b on
                src, shifts = Tensor(first.addr, (first.blocks + second.blocks) * tn, first.h, first.w, tn), fields
            else:  # one source (or none: a phase of zeros), its shifts as the first's
                src = second if reach[1] else first
                shifts = {k: v for k, v in fields.items() if k.startswith("shift")}
                for m in range(3):
                    shifts[f"xs_a{m}"] = fields[f"xs_b{m}" if reach[1] else f"xs_a{m}"]
            d = dict(_conv_fields(src, dst, dst.c, shape), **geometry, **shifts, layer=r, isy=1, isx=1,
                     iky=-ph["gy"], ikx=-ph["gx"], oh=len(range(ry, gh, sy)), ow=len(range(rx, gw, sx)),
                     oyo=ry, oxo=rx, flags=rule_flags(relu))
            d.update(osy=_stride(sy, d["oh"]), osx=_stride(sx, d["ow"]))
            if relu is not None:
                d.update(relu_bits(relu))
            backward.append(Job(**d))
            if t in sum_blocks and relu is None:
                # its twin: a job a block, block k of each reader's gradient (the second's lies first.bytes
                # after the first's) into block k, as an Add a block at a time
                twins[backward[-1]] = tuple(
                    Job(**dict(d, **_conv_fields(alloc.block(first, k), alloc.block(dst, k), min(tn, dst.c - k * tn),
                                                 shape), **w) | dict(n_tiles=2, src_b=1, in_block_bytes=first.bytes))
                    for k, w in enumerate(sum_blocks[t]))

    unpool = None  # a fused max-pool's (layer, pooled gradient, ReLU before it) for the next job
    def _backward_jobs(i: int) -> None:
        """Layer i's backward jobs, from the gradient at its output to the one at its input (which it
        alone reads)."""
        nonlocal unpool
        layer, q = layers[i], qg.layers[i]
        # (a fused pool's gradient is never stored)
        src = grad_tensor(grad_store(graph, i + 1, dag.copies)) if unpool is None else None
        dst_pos, relu = dest(reads[i][0])
        if fuse_pools and fusable_pool(qg, i):
            # no job: the convolution below reads the pooled gradient through the kept indices
            unpool = (i, src, relu)
            return
        dst = grad_tensor(dst_pos)
        shifts = [0, 0, 0]
        for mode in modes:
            g_out, g_in = qg.grad_fmt(mode, i + 1), qg.grad_fmt(mode, reads[i][0])
            weight_frac = IDENTITY_FRAC if isinstance(layer, MaxPool2d) else q.weight_fmt.frac
            shifts[int(mode)] = g_out.frac + weight_frac - g_in.frac
        common = dict(layer=i, shift0=shifts[0], shift1=shifts[1], shift2=shifts[2], flags=rule_flags(relu))
        if isinstance(layer, ChannelAffine):  # g * scale, on the diagonal
            d = dict(_conv_fields(src, dst, dst.c, shape), **bw[i][0], **common, ky=1, kx=1, isy=1, isx=1, iky=1,
                     ikx=1, oh=dst.h, ow=dst.w)
            d["flags"] |= flags(Flag.DIAG)
            if relu is not None:
                d.update(relu_bits(relu))
            backward.append(Job(**d))
        elif isinstance(layer, AvgPool2d) and _is_global(layer):
            # every input pixel gets g * r: one job whose whole grid reads the pooled pixel (strides 0)
            d = dict(_conv_fields(src, dst, dst.c, shape), **common, **diag(int(q.weight[0]), 1), ky=1, kx=1,
                     isy=0, isx=0, iky=1, ikx=1, oh=dst.h, ow=dst.w)
            d["flags"] |= flags(Flag.DIAG)
            if relu is not None:
                d.update(relu_bits(relu))
            backward.append(Job(**d))
        elif isinstance(layer, Linear):
            vsrc, vdst = _vector(src), _vector(dst)
            d = dict(_conv_fields(vsrc, vdst, vdst.c, shape), **bw[i][0], **common, **_one_position())
            if relu is not None:
                d.update(relu_bits(relu))
            backward.append(Job(**d))
        else:
            gsrc, gdst = src, dst  # maps: a conv's or pool's output and input
            (_, gh, gw), (sy, sx) = _chw(layer.in_shape), layer.stride
            kw = layer.kernel[1]
            fused = None
            if unpool is not None:
                p, gsrc, p_relu = unpool
                unpool = None
                s = layers[p].stride[0]
                fused = dict(index_base=index_base[p], index_plane=gsrc.plane, pool_kh=s, pool_kw=s, pool_sh=s,
                             pool_sw=s, unpool=Unpool.RELU if p_relu is not None else Unpool.ON)
            gy, gx = steps(i, True)
            for k, ((ry, rx), (i0, ty, iy0), (j0, tx, ix0)) in enumerate(_phases(layer)):
                if not (ty and tx):
                    ty = tx = 0
                else:  # a dilated conv's: every g-th tap of its spread (stride 1)
                    ty, tx = (ty - 1) // gy + 1, (tx - 1) // gx + 1
                d = dict(_conv_fields(gsrc, gdst, gdst.c, shape), **common, ky=ty, kx=tx, isy=1, isx=1, iky=-gy,
                         ikx=-gx, iy0=iy0, ix0=ix0, oh=len(range(ry, gh, sy)), ow=len(range(rx, gw, sx)))
                d.update(osy=_stride(sy, d["oh"]), osx=_stride(sx, d["ow"]), oyo=ry, oxo=rx)
                if fused is not None and ty:
                    d.update(fused, flags=d["flags"] | flags(Flag.GATE))
                if isinstance(layer, Conv2d):
                    d.update(bw[i][k] or diag(0, 1))
                    if is_depthwise(layer):
                        d["flags"] |= flags(Flag.DIAG)
                    if i == 0 and len(edges) > 1:
                        # the image as phases past a side: a job a rectangle, the phases past the image left zero
                        for rows, cols, _ in edges:
                            (y0, y1), (x0, x1) = rows, cols
                            w, lanes, (t0, t1), (u0, u1) = edge_bw.get((rows, cols), (
                                bw[i][k], lanes_bw.get(i) if lane_columns(shape, tx, 1, x1 - x0, layer.in_channels)
                                else None, (0, ty), (0, tx)))
                            job = at(dict(d, **w, oh=y1 - y0, ow=x1 - x0, ky=t1 - t0, kx=u1 - u0, iy0=iy0 + y0 - t0,
                                          ix0=ix0 + x0 - u0), gdst, y0, x0, relu)
                            job.update(oph=y1 - y0, opw=x1 - x0, osy=1, osx=1)
                            backward.append(Job(**job))
                            if lanes is not None and fused is None:
                                twins[backward[-1]] = (Job(**dict(_as_lanes(job, gdst.c, shape), **lanes)),)
                        continue
                elif i in regions and ty:
                    # a job a rectangle of the phase whose passes each read windows of one reciprocal
                    d["flags"] |= flags(Flag.DIAG)
                    if relu is not None:
                        d.update(relu_bits(relu))
                    for region in regions[i][1][k]:
                        (y0, y1), (x0, x1), (t0, _), (u0, u1) = region.rows, region.cols, region.taps_y, region.taps_x
                        job = dict(d, **region_weights(region), oh=y1 - y0, ow=x1 - x0, iy0=iy0 + y0 - t0,
                                   ix0=ix0 + x0 - u0)
                        if region.values:  # its input: the output gradient's columns its passes read
                            job = columns(job, gsrc, x0 + ix0 - u1 + 1, x1 + ix0 - u0)
                        backward.append(Job(**at(job, gdst, y0 * sy, x0 * sx, relu)))
                    continue
                else:
                    if not ty:  # no tap reaches the phase: zeros
                        d.update(diag(0, 1))
                    else:
                        d.update(diag((1 << IDENTITY_FRAC) if isinstance(layer, MaxPool2d) else int(q.weight[0]),
                                      ty * tx))
                    d["flags"] |= flags(Flag.DIAG)
                    if isinstance(layer, MaxPool2d):
                        # pass (t, u) reads pooled row oy + iy0 - t: window position (i0 + t*sy, j0 + u*sx)
                        d.update(index_base=index_base[i], index_plane=gsrc.plane, code0=i0 * kw + j0,
                                 code_ky=sy * kw, code_kx=sx)
                        d["flags"] |= flags(Flag.GATE)
                if relu is not None:
                    d.update(relu_bits(relu))
                backward.append(Job(**d))
                if i in lanes_bw and fused is None:  # a LANES job reads its operands unpooled
                    twins[backward[-1]] = (Job(**dict(_as_lanes(d, gdst.c, shape), **lanes_bw[i])),)
                elif grouped(layer) is not None and fused is None and ty:
                    twin = by_groups(d, grouped(layer, transposed=True), (i, True) in compact)
                    if twin is not None:
                        twins[backward[-1]] = twin
                        if (i, True) in compact:
                            twin_only.add(backward[-1])

    n_backward_cam = 0
    for i in range(L - 1, -1, -1):
        layer, q = layers[i], qg.layers[i]
        if i == (cam or 0) - 1:  # every job of a layer after the Grad-CAM layer's is in the list
            n_backward_cam = len(backward)
            if cam_unruled:
                key, relu = grad_dest(graph, cam)
                shifts = by_mode(lambda mode: qg.grad_fmt(mode, cam).frac + IDENTITY_FRAC - qg.grad_fmt(mode, key).frac)
                backward.append(rule_job(grad_tensor(cam), key, relu, i, shifts))
        if isinstance(layer, (ReLU, ReLU6, Flatten)):
            continue  # applied by the job that writes the gradient below it / a no-op
        if isinstance(layer, Add):
            for t in reads[i]:
                key, relu = grad_dest(graph, t)
                if len(users[t]) == 1 and relu is not None:
                    # the operand is a rectifier's output: its rule on the diagonal (else the operand's
                    # gradient is the Add's, grad_store)
                    backward.append(rule_job(grad_tensor(grad_store(graph, i + 1, dag.copies)), key, relu, i,
                                             [IDENTITY_FRAC] * 3))
                elif key in dag.copies:  # x + conv(x): the conv's output gradient, a copy of the Add's (same format)
                    backward.append(Job(**identity(grad_tensor(grad_store(graph, i + 1, dag.copies)),
                                                   grad_tensor(key), i), flags=flags(Flag.DIAG)))
        elif isinstance(layer, Concat):
            # each operand's gradient: its channels of the output's, unchanged (one format), a rectifier's
            # rule applied where the operand is a rectifier's output
            g_cat = grad_tensor(grad_store(graph, i + 1, dag.copies))
            for t, weights in zip(reads[i], concat_bw[i]):
                if len(users[t]) > 1:
                    continue  # a term of the gradient sum at t (below)
                key, relu = grad_dest(graph, t)
                backward.append(moves_job(g_cat, key, relu, weights, i, [IDENTITY_FRAC] * 3))
        elif isinstance(layer, ChannelSelect):
            t = reads[i][0]
            if len(users[t]) == 1:  # its input's gradient: each channel its output channel's, zeros elsewhere
                key, relu = grad_dest(graph, t)
                shifts = by_mode(lambda mode: qg.grad_fmt(mode, i + 1).frac + IDENTITY_FRAC
                                 - qg.grad_fmt(mode, key).frac)
                backward.append(moves_job(grad_tensor(grad_store(graph, i + 1, dag.copies)), key, relu, select_bw[i],
                                          i, shifts))
        elif len(users[reads[i][0]]) == 1:
            _backward_jobs(i)
        for t in sorted(set(reads[i])):
            if len(users[t]) > 1 and i == min(users[t]):
                gradient_sum(t)
    grad_input = grad_tensor(0)
    cam_jobs: list[Job] = []
    if cam is not None:
        summed = (cam_grid, cam_view, cam_summed) if cam_grid is not None else None
        cam_jobs, cam_twins = _cam_list(qg, cam, shape, alloc, layout, act, forward, spans, attr, (cam_mean, summed),
                                        r_fmt, cam_weights_addr, cam_spread, cam_mask, stages,
                                        cam_gradient(cam, cam_unruled))
        twins.update(cam_twins)
    # the controller steps through the slots of the image, the work tensor, the input gradient
    # and the attribution by one stride
    assert len({alloc.slot_bytes.get(t.addr) for t in (image, work, grad_input, attr)}) == 1, "slot strides differ"

    af = qg.attribution_formats
    gf = [qg.grad_fmt(ReluBackward(k), 0).frac if ReluBackward(k) in qg.grad_formats else 0 for k in range(3)]
    # the image as the host writes it: the network's shape, or its first stride's phases as channels
    # (``contract.image_view``); a 1-D model's columns fold as its row would (``fold_image``'s slots of a one-row
    # fold are those of the one-column fold)
    _, in_h, in_w = (viewed if phases else original).graph.input_shape
    fold_rows, fold_cols = (fold[0].f, fold[1].f) if fold else (1, 1)
    if column_view and not phases:
        fold_rows, fold_cols = fold_cols, fold_rows
    header = dict(
        magic=PROGRAM_MAGIC, version=PROGRAM_VERSION, tm=shape.tm, tn=tn, beat_elems=shape.beat_elems,
        desc_words=DESCRIPTOR.words, n_forward=len(forward), n_backward=len(backward), forward_addr=forward_addr,
        backward_addr=backward_addr, batch=batch, forward_batch_addr=forward_batch_addr,
        backward_batch_addr=backward_batch_addr, slot_bytes=alloc.slot_bytes.get(work.addr, 0), image_addr=image.addr, work_addr=work.addr, baseline_addr=baseline.addr,
        ig_table_addr=ig_table_addr, logits_addr=logits.addr, logits_save_addr=logits_save.addr,
        result_addr=result_addr, attr_addr=attr.addr, grad_input_addr=grad_input.addr, total_bytes=alloc.top,
        classes=qg.graph.num_classes, in_c=c, in_h=in_h, in_w=in_w, fold_rows=fold_rows, fold_cols=fold_cols,
        input_elems=image.elems, input_frac=qg.input_fmt.frac,
        grad_frac0=gf[0], grad_frac1=gf[1], grad_frac2=gf[2], ixg_frac=af.input_x_gradient.frac,
        ig_sum_frac=af.ig_summed_gradient.frac, ig_frac=af.integrated_gradients.frac, data_width=qg.width,
        index_bits=index_bits, mask_bits=bits, index_entries=entries, targets_addr=targets_addr,
        logits_slot_bytes=alloc.slot_bytes.get(logits.addr, 0), cam_addr=cam_addr, n_cam=len(cam_jobs),
        n_backward_cam=n_backward_cam,
        grad_cam_frac=af.grad_cam.frac if cam is not None else 0,
        guided_grad_cam_frac=af.guided_grad_cam.frac if cam is not None else 0,
    )
    assert len(forward) <= fwd_max and len(backward) <= bwd_max and len(cam_jobs) <= cam_room, "descriptor room"
    # compact weights (``clusters``) are read by cluster jobs alone: no other job may take them
    compact_at = {fw[i]["w_addr"] for i, back in compact if not back}
    compact_at |= {w["w_addr"] for i, back in compact if back for w in bw[i] if w is not None}
    assert not [d for d in forward + backward + cam_jobs if d not in twin_only and d.w_addr in compact_at], \
        "a job other than a grouped convolution's cluster jobs reads its compact weights"
    slots = Slots(batch, dict(alloc.slot_bytes), mask_slot, index_slot) if batch > 1 else None
    lanes = _weights_a_lane(shape, b.blobs, forward + backward + cam_jobs + list(twin_only)
                            + [t for twin in twins.values() for t in twin])
    if lanes:
        one = _a_lane_jobs(lanes, shape.tn)
        forward, backward, cam_jobs = ([one(d) for d in jobs] for jobs in (forward, backward, cam_jobs))
        twins = {one(d): tuple(map(one, twin)) for d, twin in twins.items()}
        twin_only = {one(d) for d in twin_only}
    return Lowered(shape, header, tuple(forward), tuple(backward), tuple(alloc.regions),
                   tuple((addr, lanes[addr][0] if addr in lanes else blob) for addr, blob in b.blobs), init_end,
                   viewed, slots, tuple(cam_jobs), twins, column_view, bool(phases), frozenset(twin_only))


WEIGHTS_A_LANE = True
"""Whether the weights that only diagonal jobs read, each lane's one weight at column m mod tn, are stored one a lane
(``w_diag``: tm a pass instead of tm x tn; the engine puts each at its column as it loads the array). Every engine
runs both; off only to measure."""


def _a_lane(blob) -> np.ndarray | None:
    """A blob (m-tiles, n-tiles, passes, tm, tn) as its lanes' weights (m-tiles, n-tiles, passes, tm), lane m's the
    one at column m mod tn; None where a lane has another."""
    w = np.asarray(blob)
    tm, tn = w.shape[-2:]
    if tm % tn:
        return None
    lane = np.arange(tm)
    on = w[..., lane, lane % tn]
    w = w.copy()
    w[..., lane, lane % tn] = 0
    return None if w.any() else on


def _weights_a_lane(shape: Shape, blobs, jobs) -> dict[int, tuple[np.ndarray, int]]:
    """The blobs to store one a lane (``WEIGHTS_A_LANE``): those whose every reader (a job whose ``w_addr`` lies in
    it) is diagonal and whose every lane has its one weight at column m mod tn; by address, each as its lanes'
    weights and its size as placed (bytes)."""
    if not WEIGHTS_A_LANE or shape.tm % shape.tn:
        return {}
    placed = sorted((addr, 2 * math.prod(blob.shape), blob) for addr, blob in blobs)
    starts = [addr for addr, _, _ in placed]
    readers = [set() for _ in placed]  # whether each blob's readers are diagonal
    for d in jobs:
        k = bisect.bisect_right(starts, d.w_addr) - 1
        if k >= 0 and d.w_addr < starts[k] + placed[k][1]:
            readers[k].add(d.has(Flag.DIAG))
    out = {}
    for (addr, size, blob), diag in zip(placed, readers):
        lanes = _a_lane(blob) if diag == {True} and len(blob.shape) == 5 else None
        if lanes is not None:
            out[addr] = lanes, size
    return out


def _a_lane_jobs(lanes: dict[int, tuple[np.ndarray, int]], tn: int) -> Callable[[Job], Job]:
    """A job as it reads the blobs ``lanes`` stores one a lane (``_weights_a_lane``): its weight address tn times
    nearer the blob's start, its weight strides tn times shorter, ``w_diag``."""
    starts = sorted(lanes)

    @functools.cache  # a job in a list and among the twins becomes the same job
    def one(d: Job) -> Job:
        k = bisect.bisect_right(starts, d.w_addr) - 1
        if k < 0 or d.w_addr >= starts[k] + lanes[starts[k]][1]:
            return d
        offset = d.w_addr - starts[k]
        assert offset % tn == 0 and d.w_nt_bytes % tn == 0 and d.w_mt_bytes % tn == 0
        return _with(d, w_addr=starts[k] + offset // tn, w_nt_bytes=d.w_nt_bytes // tn, w_mt_bytes=d.w_mt_bytes // tn,
                     w_diag=1)
    return one


def _cam_activations(qg: QGraph, cam: int, shape: Shape, alloc: "_Allocator", layout, act: dict[int, Tensor],
                     forward: list[Job], spans: list[tuple[int, int, int]]) -> tuple[Tensor, list[Job]]:
    """The Grad-CAM layer's activations A in DDR, and the jobs that put them there: none where the
    forward list stores the layer's output; else its forward job again, without what the job takes
    after the layer (a ReLU, a max-pool), into a tensor of its own. Recomputing keeps the forward
    list as it is: a ReLU or max-pool fused into a convolution decides on the wide accumulator,
    which a job of its own over A's codes would not."""
    if cam in act:
        return act[cam], []
    layers = qg.graph.layers
    first, _, k = next(sp for sp in spans if sp[0] <= cam - 1 < sp[1])
    d = forward[k]
    if first == cam - 1:  # the job's own layer: drop the rectifiers and (unless it is the pool) the pool after it
        drop = [Flag.RELU, Flag.RAP, Flag.RELU6] + ([] if isinstance(layers[first], MaxPool2d) else [Flag.POOL])
    elif isinstance(layers[cam - 1], RECTIFIERS):  # a convolution's ReLU (on the accumulator) before its pool
        drop = [Flag.POOL, Flag.RAP]
    else:  # a convolution's max-pool, before a ReLU on its values
        drop = [Flag.RAP, Flag.RELU6]
    a = alloc.tensor(f"{layers[cam - 1].name} activations (grad_cam)", layout[cam], shape.tn)
    fl = d.flags & ~flags(*drop)
    new = dataclasses.replace(d, flags=fl, out_addr=a.addr, out_block_bytes=a.block_bytes, out_row_bytes=a.row_bytes,
                              oph=a.h, opw=a.w, out_blocks=a.blocks)
    if d.has(Flag.POOL) and Flag.POOL in drop:
        new = dataclasses.replace(new, oh=_chw(layers[first].out_shape)[1], pool_kh=0, pool_kw=0, pool_sh=0,
                                  pool_sw=0, pool_oh=0, pool_ow=0, index_base=0, index_plane=0)
    if not any(fl >> int(f) & 1 for f in (Flag.RELU, Flag.RAP)):
        new = dataclasses.replace(new, mask_base=0, mask_plane=0, cap=0)
    return a, [new]


def _cam_list(qg: QGraph, cam: int, shape: Shape, alloc: "_Allocator", layout, act: dict[int, Tensor],
              forward: list[Job], spans: list[tuple[int, int, int]], attr: Tensor,
              means: tuple[dict | None, tuple[tuple[int, int, int, int], dict] | None], r_fmt, weights_addr: int,
              spread: dict, mask_base: int, stages: list[tuple[Gather, Gather]], gradient: tuple[Tensor, int]
              ) -> tuple[list[Job], dict[Job, tuple[Job, ...]]]:
    """The Grad-CAM list (docs/dag.md, "Grad-CAM on the engine"), run after the backward list's jobs
    down to the layer under the true-gradient rule, and its twins (``Lowered.twins``); every job a
    CONV the contract has:

    1. A, the layer's activations (``_cam_activations``: stored already, or its forward job again);
    2. the channel weights w = round(sum_hw G * 1/(h*w)): a diagonal job of one position and h*w
       passes over the gradient G at the layer (``means[0]``, its weights; None where a side is past
       a job's 31 passes), or its twin, summed in the write-back as a global average pool is
       (``means[1]``: the grid and its weights; None where a side is past 15 x 15): each block of tn
       weights written tm*tn elements apart, so that the zeros after it (in the image) make it the
       first row of a tm x tn tile;
    3. the map = round(max(sum_c w_c A_c, 0)): a 1 x 1 dense job over A whose weights are those
       tiles (``w_addr`` at w, read at run time), one output channel, RELU on the accumulator;
    4. the map upsampled to the input as PyTorch's nearest table says and repeated over its
       channels, at ``attr_addr``: in ``stages`` (``capabilities.upsampling``: integer factors, the
       columns then the rows, and a stretch of P / Q in either after them), each one 1 x 1 job a
       phase (ry, rx) of the stage's periods (py, px), 2^14 from the map's channel to every channel
       of its output (one channel, then the input's at the last stage): output stride (py, px) and
       offset (ry, rx), input stride the stage's steps and first pixel its starts[ry], starts[rx]
       (0 for an integer factor), over the rows and columns of its output that the later stages read
       (the input's at the last one: the last rows or columns cropped where the input is not a
       multiple of the map)."""
    layers = qg.graph.layers
    tm, tn = shape.tm, shape.tn
    fmts = qg.attribution_formats
    cc, ch, cw = layout[cam]
    acts, jobs = _cam_activations(qg, cam, shape, alloc, layout, act, forward, spans)
    grad, _ = gradient
    here = dict(layer=cam - 1)
    one_tap = dict(ky=1, kx=1, isy=1, isx=1, iky=1, ikx=1)

    def shifts(s: int) -> dict:
        return dict(shift0=s, shift1=s, shift2=s)

    g_frac = qg.grad_fmt(ReluBackward.MASK, cam).frac
    mean, summed = means
    weights = dict(**here, **shifts(g_frac + r_fmt.frac - fmts.grad_cam_weights.frac), op=Op.CONV,
                   m_tiles=-(-cc // tm), n_tiles=grad.blocks, out_blocks=-(-cc // tn), in_addr=grad.addr,
                   in_block_bytes=grad.block_bytes, in_row_bytes=grad.row_bytes, ih=ch, iw=cw, iky=1, ikx=1,
                   out_addr=weights_addr, out_block_bytes=2 * tm * tn, out_row_bytes=2 * tn, oph=1, opw=1, osy=1,
                   osx=1)
    twins: dict[Job, tuple[Job, ...]] = {}
    one = (Job(**weights, **mean, flags=flags(Flag.DIAG), ky=ch, kx=cw, isy=1, isx=1, oh=1, ow=1)
           if mean is not None else None)
    if summed is not None:
        (gh, gw, th, tw), (vh, vw), fields = summed
        twin = Job(**dict(weights, ih=vh, iw=vw, in_row_bytes=vw * tn * 2), **fields,
                   flags=flags(Flag.DIAG, Flag.POOL, Flag.SUM), ky=th, kx=tw, isy=th, isx=tw,
                   oh=gh, ow=gw, pool_kh=gh, pool_kw=gw, pool_sh=gh, pool_sw=gw, pool_oh=1, pool_ow=1)
        if one is None:
            one = twin
        else:
            twins[one] = (twin,)
    assert one is not None, "capabilities.cam_refusal refuses a map neither job takes"
    jobs.append(one)
    cam_map = alloc.tensor(f"{layers[cam - 1].name} grad_cam map", (1, ch, cw), tn)
    a_frac = qg.tensor_fmt(cam).frac
    jobs.append(Job(**dict(_conv_fields(acts, cam_map, 1, shape), **here, **one_tap, oh=ch, ow=cw,
                           **shifts(fmts.grad_cam_weights.frac + a_frac - fmts.grad_cam.frac), flags=flags(Flag.RELU),
                           w_addr=weights_addr, w_nt_bytes=2 * tm * tn, w_mt_bytes=0, mask_base=mask_base,
                           mask_plane=ch * cw)))
    src = cam_map
    for k, (gy, gx) in enumerate(stages):
        final = k == len(stages) - 1
        dst = attr if final else alloc.tensor(f"{layers[cam - 1].name} grad_cam map upsampled, stage {k + 1}",
                                              (1, gy.size, gx.size), tn)
        for ry in range(gy.period):
            for rx in range(gx.period):  # phase (ry, rx): dst's pixels (ry + i * py, rx + j * px), if any
                if gy.count(ry) and gx.count(rx):
                    jobs.append(Job(**{**_conv_fields(src, dst, dst.c, shape), **spread, **here, **one_tap,
                                       **shifts(IDENTITY_FRAC), **_phase_fields(src, dst, gy, gx, ry, rx)}))
        src = dst
    return jobs, twins


ONE_ROW_VIEWS = True
"""A Grad-CAM map of one row (a 1-D model's) is upsampled with its samples as rows of one pixel
(``_phase_fields``), every stage's output written once and in row tiles of any length; False: as a
2-D map's columns, a run a phase with strobes on the other phases' pixels, a stage of f moving f
times its output (to measure)."""


def _phase_fields(src: Tensor, dst: Tensor, gy: Gather, gx: Gather, ry: int, rx: int) -> dict:
    """The geometry of phase (ry, rx) of an upsampling stage (``_cam_list``): output stride the
    periods and offset (ry, rx), input stride the steps and first pixel the phase's starts; where a
    period or step is past what its field holds (a stretch along rows, or along a map of one row,
    ``capabilities.LONG_PHASES``), and along any map of one row (``ONE_ROW_VIEWS``), the phase's rows
    (a one-row map's columns, as rows of one pixel) as a map of their own: rows ``period`` rows apart
    in DDR from the phase's first one (``out_row_bytes``, ``out_addr``), read from rows ``step`` rows
    apart from its first start (``in_row_bytes``, ``in_addr``)."""
    fits = [g.period <= field_limit(DESCRIPTOR, o) and g.step <= field_limit(DESCRIPTOR, i)
            for g, o, i in ((gy, "osy", "isy"), (gx, "osx", "isx"))]
    one_row = src.h == dst.h == 1 and gy.period == gy.step == 1 and (gx.period, gx.step) != (1, 1)
    if all(fits) and not (ONE_ROW_VIEWS and one_row):
        return dict(isy=gy.step, isx=gx.step, iy0=gy.starts[ry], ix0=gx.starts[rx], oh=gy.count(ry),
                    ow=gx.count(rx), osy=gy.period, osx=gx.period, oyo=ry, oxo=rx)
    if gx.period == gx.step == 1:  # rows as a map of their own
        g, a, view = gy, ry, dict(iw=src.w, opw=dst.w, ow=gx.count(rx), in_row=src.row_bytes, out_row=dst.row_bytes)
    else:  # a map of one row: its columns as rows of one pixel
        assert src.h == dst.h == 1 and gy.period == gy.step == 1, "capabilities.upsampling: long columns of one row"
        g, a, view = gx, rx, dict(iw=1, opw=1, ow=1, in_row=2 * src.tn, out_row=2 * dst.tn)
    n = g.count(a)
    return dict(isy=1, isx=1, iy0=0, ix0=0, oh=n, ow=view["ow"], osy=1, osx=1, oyo=0, oxo=0,
                in_addr=src.addr + g.starts[a] * view["in_row"], in_row_bytes=g.step * view["in_row"],
                ih=(g.reads - 1 - g.starts[a]) // g.step + 1, iw=view["iw"],
                out_addr=dst.addr + a * view["out_row"], out_row_bytes=g.period * view["out_row"], oph=n,
                opw=view["opw"])


ADDS_BY_BLOCK = True
"""An Add of more channels than one m-tile's lanes runs as one job a block of tn channels, reading
that block of each operand (docs/engine_v2.md, "Adds a block at a time"); False: one dense job
whose every m-tile reads both operands whole (to measure)."""


COMPACT_GROUPS = True
"""Whether a grouped convolution whose dense job surely has its twin of cluster jobs stores its weights for them
alone, without the zeros between its clusters (``_clustered``): its dense job then only stands for the twin, which
the tiler always keeps (``Lowered.twin_only``). ResNeXt-50's and RegNet's weights in DDR shrink by the zeros the
dense kernels held. Off only to measure the difference."""


GROUP_JOBS = True
"""Whether a grouped convolution (not a depthwise one) also gets a twin of a job a cluster of its groups, the
fewest whose input and output channels are whole n-tiles and m-tiles (``group_clusters``): each job reads only
its groups' input blocks, where the dense job's every m-tile passes over all of them, the other groups' weights
zero. The tiler keeps the cheaper by the cycle model (docs/engine_v2.md, "Grouped convolutions a cluster of
groups a job"). Off only to measure the difference."""


def grouped(layer, transposed: bool = False) -> tuple[int, int, int] | None:
    """(groups, channels a group reads, channels a group writes) of a grouped convolution that is not a depthwise
    one, of its transposed groups (the backward: the output gradient's read, the input gradient's written) with
    ``transposed``; None for any other layer."""
    if not isinstance(layer, Conv2d) or layer.groups == 1 or layer.depthwise:
        return None
    g, per_in, per_out = layer.groups, layer.in_channels // layer.groups, layer.out_channels // layer.groups
    return (g, per_out, per_in) if transposed else (g, per_in, per_out)


def cluster_jobs(sizes: tuple[int, int, int], shape: Shape) -> int:
    """The jobs a grouped convolution of ``sizes`` (``grouped``'s) takes as clusters of groups; 1: as one job."""
    groups, per_in, per_out = sizes
    return groups // (group_clusters(groups, per_in, per_out, shape) or groups)


def group_clusters(groups: int, per_in: int, per_out: int, shape: Shape) -> int | None:
    """The groups a job of a grouped convolution's twin takes (``GROUP_JOBS``) where each group reads
    ``per_in`` channels and writes ``per_out``: the fewest whose channels fill whole n-tiles and m-tiles, so
    the jobs' operands and outputs start on a block and an m-tile; None where one job would take them all."""
    k = math.lcm(shape.tn // math.gcd(per_in, shape.tn), shape.tm // math.gcd(per_out, shape.tm))
    return k if GROUP_JOBS and groups % k == 0 and groups > k else None


def _adds_by_block(channels: int, shape: Shape) -> bool:
    """Whether an Add of ``channels`` channels runs a job a block: where the dense job would have
    several m-tiles, each reading every block of both operands to use two of them."""
    return ADDS_BY_BLOCK and channels > shape.tm


def _diagonal_blocks(diagonals: list[np.ndarray], tn: int) -> list[np.ndarray]:
    """The kernels (channels, 2 tn, 1 tap) of a two-source job a block of tn channels, block k reading
    block k of each source (n-tile 0 the first's, n-tile 1 the second's): weight ``diagonals[s][c]``
    from channel c of source s to channel c."""
    c = len(diagonals[0])
    kernels = []
    for k in range(-(-c // tn)):
        width = min(tn, c - k * tn)
        kern = np.zeros((width, 2 * tn, 1), dtype=np.int64)
        for s, values in enumerate(diagonals):
            kern[np.arange(width), s * tn + np.arange(width), 0] = values[k * tn:k * tn + width]
        kernels.append(kern)
    return kernels


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], 1, 1) if len(shape) == 1 else tuple(shape)


def _stride(s: int, positions: int) -> int:
    """A grid's input or output stride: any stride reads or writes the same pixels where the grid has one row
    (column)."""
    return s if positions > 1 else 1


def _stride2(layer) -> tuple[int, int]:
    """A layer's stride (an Add's, a cat's or a per-channel affine's: 1)."""
    return layer.stride if isinstance(layer, (Conv2d, AvgPool2d)) else (1, 1)


def _is_global(layer: AvgPool2d) -> bool:
    """An average pool of one window that covers the whole unpadded map."""
    _, h, w = layer.in_shape
    return layer.out_shape[1:] == (1, 1) and layer.kernel == (h, w) and layer.padding == (0, 0)


CAM_SUMS = True
"""Grad-CAM's channel weights (the mean of the layer's gradient over its map) may run as a global
average pool's sum in the write-back (``sum_split``), the tiler keeping the cheaper of that and one
pass a pixel (``tiled_cam``), which also takes maps past 31 pixels a side; False: one pass a pixel
only (to measure)."""

POOL_SUMS = True
"""A global average pool runs as a grid of many positions, each summing a block of the map over
few passes, whose accumulators the write-back sums (Flag.SUM; docs/engine_v2.md, "Global average
pools summed") where the tiler finds it cheaper and it fits; False: one position and a pass a
pixel, as before contract 15 (to measure)."""


def _summed_grid(layer: AvgPool2d) -> tuple[int, int, int, int] | None:
    """(grid rows, grid columns, pass rows, pass columns) of a global pool summed in the write-back:
    the grid is the pool window the fields hold (at most 15 x 15), each position the sum of a block
    of pass rows x columns (its input stride, at most 15), the most positions; a side with no exact
    split (a 1-D model's 38 or 125 positions) has its last blocks run past the map, whose pixels the
    walker reads as zeros (as a convolution's padding), the fewest passes whose grid fits; None where
    a side is longer than 15 x 15, the pool is not global or ``POOL_SUMS`` is off."""
    if not POOL_SUMS or not _is_global(layer):
        return None
    _, h, w = _pool_view(layer)
    return sum_split(h, w)


def sum_split(h: int, w: int) -> tuple[int, int, int, int] | None:
    """(grid rows, grid columns, pass rows, pass columns) of a sum over an h x w map in the write-back
    (``_summed_grid``), or None where a side is longer than 15 x 15."""
    window = (1 << DESCRIPTOR.by_name["pool_kh"].field.bits) - 1
    stride = (1 << DESCRIPTOR.by_name["isy"].field.bits) - 1

    def split(n: int) -> tuple[int, int] | None:
        exact = max(((g, n // g) for g in range(1, min(n, window) + 1) if n % g == 0 and n // g <= stride),
                    default=None)
        ragged = next(((-(-n // t), t) for t in range(1, stride + 1) if -(-n // t) <= window), None)
        return exact or ragged

    rows, cols = split(h), split(w)
    if rows is None or cols is None:
        return None
    return rows[0], cols[0], rows[1], cols[1]


def _pool_view(layer: AvgPool2d) -> tuple[int, int, int]:
    """The map a global pool's summed job reads (``sum_view``)."""
    c, h, w = layer.in_shape
    return (c, *sum_view(h, w))


def sum_view(h: int, w: int) -> tuple[int, int]:
    """The map a sum in the write-back reads (a global pool's, Grad-CAM's channel weights): h x w, or a
    row or column too long for one side of the grid (a 1-D model's, past 15 x 15 pixels) read as rows
    of an exact divisor of its length, the same bytes (sample x is pixel (x // b, x % b) of the view)."""
    side = ((1 << DESCRIPTOR.by_name["pool_kh"].field.bits) - 1) * ((1 << DESCRIPTOR.by_name["isy"].field.bits) - 1)
    n = h * w
    if min(h, w) != 1 or max(h, w) <= side:
        return h, w
    return next(((n // b, b) for b in range(side, 0, -1) if n % b == 0 and n // b <= side), (h, w))


def _vector(t: Tensor) -> Tensor:
    """A tensor's bytes read as a vector of its blocked elements (a flattened map, a vector)."""
    return Tensor(t.addr, t.elems, 1, 1, t.tn)


def _one_position() -> dict:
    """A fully connected job: one position, one pass, the input a vector."""
    return dict(ky=1, kx=1, isy=1, isx=1, iky=1, ikx=1, oh=1, ow=1)


COPY_ALIASES = True
"""An exact copy of a map (``dag.with_copies``) reads as the map's own bytes forward, with no job of its own
(``lower_jobs``'s ``aliased``); False: a diagonal job copies it, as before (to measure)."""


def _conv_fields(src: Tensor, dst: Tensor, m: int, shape: Shape) -> dict:
    """The tensor fields of a CONV job reading ``src`` and writing ``m`` channels of ``dst``."""
    return dict(op=Op.CONV, m_tiles=-(-m // shape.tm), n_tiles=src.blocks, out_blocks=dst.blocks,
                in_addr=src.addr, in_block_bytes=src.block_bytes, in_row_bytes=src.row_bytes, ih=src.h, iw=src.w,
                out_addr=dst.addr, out_block_bytes=dst.block_bytes, out_row_bytes=dst.row_bytes, oph=dst.h,
                opw=dst.w, osy=1, osx=1)


ROWS_READ = True
"""A one-row kernel of row stride s (a ResNet's strided 1 x 1 projection) reads its input as a map
of every s-th row (``rows_read``), so its loads carry no row it skips; False: it loads them all, as
before (to measure)."""


def rows_read(d: dict) -> dict:
    """The input fields of a forward convolution's job ``d`` with one kernel row and row stride
    s > 1 that view its input as the map of the rows it reads: rows s apart in DDR (``in_row_bytes``
    s times the map's, as a slot job's rows are), stride 1, ceil(ih / s) rows. Nothing where the
    rows read start at another phase than row 0 (the input's address would move)."""
    s = d["isy"]
    if not ROWS_READ or d["ky"] != 1 or s <= 1 or d["iy0"] % s:
        return {}
    return dict(in_row_bytes=s * d["in_row_bytes"], ih=-(-d["ih"] // s), isy=1, iy0=d["iy0"] // s)


def _pool_fields(p) -> dict:
    return dict(pool_kh=p.kernel[0], pool_kw=p.kernel[1], pool_sh=p.stride[0], pool_sw=p.stride[1],
                pool_oh=p.out_shape[1], pool_ow=p.out_shape[2])


def _runs(keys: list) -> list[tuple[int, int]]:
    """The maximal runs [a, b) of equal consecutive keys."""
    starts = [a for a in range(len(keys)) if a == 0 or keys[a] != keys[a - 1]]
    return list(zip(starts, starts[1:] + [len(keys)]))


@dataclass(frozen=True)
class _Region:
    """One job of an average pool whose windows have different divisors: grid rows [y0, y1) and columns
    [x0, x1); the pool's pass rows [t0, t1) and columns [u0, u1) that reach the map from some position
    of the rectangle (the others multiply zeros only: left out); each pass's reciprocal, pass-major."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    taps_y: tuple[int, int]
    taps_x: tuple[int, int]
    values: tuple[int, ...]

    @property
    def ky(self) -> int:
        return self.taps_y[1] - self.taps_y[0]

    @property
    def kx(self) -> int:
        return self.taps_x[1] - self.taps_x[0]


def _reaching(grid: tuple[int, int], taps: int, read: Callable[[int, int], int], size: int) -> tuple[int, int]:
    """The taps [t0, t1) whose read ``read(position, tap)`` lies in [0, size) for some position of ``grid``."""
    hit = [t for t in range(taps) if any(0 <= read(a, t) < size for a in range(*grid))]
    return (hit[0], hit[-1] + 1) if hit else (0, 0)


def _pool_regions(layer, recips: np.ndarray) -> list[_Region]:
    """A windowed average pool's forward jobs: the rectangles of its output whose windows have one
    reciprocal. A window's divisor is the product of its rows' and columns' counts, so the rows of one
    run of equal rows of ``recips`` (OH, OW) and the columns of one run of equal columns share it: a
    3 x 3 grid of rectangles for a padded pool of stride 1 (edges and corners), more where several
    rows at an edge differ. An edge's rectangle leaves out the pass rows that read only padding."""
    (_, h, w), (kh, kw), (sy, sx), (py, px) = _chw(layer.in_shape), layer.kernel, layer.stride, layer.padding
    out = []
    for rows in _runs([tuple(r) for r in recips]):
        for cols in _runs([tuple(c) for c in recips.T]):
            taps_y = _reaching(rows, kh, lambda a, t: a * sy - py + t, h)
            taps_x = _reaching(cols, kw, lambda a, u: a * sx - px + u, w)
            passes = (taps_y[1] - taps_y[0]) * (taps_x[1] - taps_x[0])
            out.append(_Region(rows, cols, taps_y, taps_x, (int(recips[rows[0], cols[0]]),) * passes))
    return out


def _phase_regions(layer, recips: np.ndarray, phase) -> list[_Region]:
    """A windowed average pool's backward jobs in one stride phase (``_phases``): the rectangles of the
    phase's grid of input pixels whose passes (t, u) each read windows of one reciprocal (the window
    at output row y + iy0 - t, column x + ix0 - u) or none (outside the output), the passes that read
    none from anywhere in the rectangle left out. Golden's sum of g * r over the windows a pixel lies
    in, in one job, rounded once."""
    (ry, rx), (_, ty, iy0), (_, tx, ix0) = phase
    (_, h, w), (sy, sx) = _chw(layer.in_shape), layer.stride
    oh, ow = recips.shape
    row_class = {r: k for k, r in enumerate(dict.fromkeys(tuple(r) for r in recips))}
    col_class = {c: k for k, c in enumerate(dict.fromkeys(tuple(c) for c in recips.T))}
    row_of = [row_class[tuple(r)] for r in recips]
    col_of = [col_class[tuple(c)] for c in recips.T]

    def keys(cls: list[int], origin: int, taps: int, grid: int) -> list[tuple]:
        return [tuple(cls[a + origin - t] if 0 <= a + origin - t < len(cls) else None for t in range(taps))
                for a in range(grid)]

    out = []
    for rows in _runs(keys(row_of, iy0, ty, len(range(ry, h, sy)))):
        for cols in _runs(keys(col_of, ix0, tx, len(range(rx, w, sx)))):
            taps_y = _reaching(rows, ty, lambda a, t: a + iy0 - t, oh)
            taps_x = _reaching(cols, tx, lambda a, u: a + ix0 - u, ow)
            y, x = rows[0] + iy0, cols[0] + ix0
            values = tuple(int(recips[y - t, x - u]) if 0 <= y - t < oh and 0 <= x - u < ow else 0
                           for t in range(*taps_y) for u in range(*taps_x))
            out.append(_Region(rows, cols, taps_y, taps_x, values))
    return out


def phase_edges(image: tuple[int, int, int], view: tuple[int, int, int], strides: tuple[int, int]
                ) -> list[tuple[tuple[int, int], tuple[int, int], tuple[int, ...]]]:
    """The rectangles (rows, columns) of an image's phase view (``qgraph.image_as_phases``: ``image`` (C, H, W)
    as ``view`` (C·sy·sx, ceil(H / sy), ceil(W / sx)), channel (c·sy + a)·sx + b of pixel (y, x) its pixel
    (sy·y + a, sx·x + b)) whose pixels are past the image in the same channels, and those channels: where sy does
    not divide H, the last row's phases a >= H mod sy, and the last column's likewise. The first convolution's
    backward writes them a job each, with those channels' weights zero, so the gradient it writes past the image
    is zero and nothing past the image saturates (golden has no such pixels). One rectangle of no channels where
    the strides divide the sides."""
    (c, h, w), (_, vh, vw), (sy, sx) = image, view, strides
    ry, rx = h - (vh - 1) * sy, w - (vw - 1) * sx  # the phases of the last row (column) in the image
    rows = [(0, vh)] if ry == sy else [(0, vh - 1), (vh - 1, vh)] if vh > 1 else [(0, 1)]
    cols = [(0, vw)] if rx == sx else [(0, vw - 1), (vw - 1, vw)] if vw > 1 else [(0, 1)]
    out = []
    for r in rows:
        for q in cols:
            past = tuple(k for k in range(c * sy * sx)
                         if (r[1] == vh and (k // sx) % sy >= ry) or (q[1] == vw and k % sx >= rx))
            out.append((r, q, past))
    return out


def _phases(layer) -> list[tuple[tuple[int, int], tuple[int, int, int], tuple[int, int, int]]]:
    """The stride phases of a conv's or pool's transposed pass that hold output pixels:
    ((ry, rx), (i0, taps_y, iy0), (j0, taps_x, ix0)) (``_phase_taps``)."""
    (kh, kw), (sy, sx) = layer.kernel, layer.stride
    py, px = layer.padding
    _, h, w = _chw(layer.in_shape)
    return [((ry, rx), _phase_taps(kh, sy, py, ry), _phase_taps(kw, sx, px, rx))
            for ry in range(min(sy, h)) for rx in range(min(sx, w))]


# ---------------------------------------------------------------------------------------------
# Tiling and the Program image
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Buffers:
    """On-chip buffer depths the jobs are tiled for: input words per bank, accumulators per
    lane, weight rows (of tn weights) per set; ``keep_words``: the input words a set the engine is
    built with at least, so that the inputs ``encode`` keeps across m-tiles fit in two sets of them
    (0: the tiles' own, ``buffer_needs``; the planner deepens it where keeping is faster)."""

    in_depth: int
    out_depth: int
    w_depth: int
    keep_words: int = 0


def _load_span(d: Job) -> tuple[int, int]:
    """(load_lo, rows beyond the first) of the input rows one grid row needs over its passes."""
    if d.ky == 0:
        return 0, 0
    reach = (d.ky - 1) * d.iky
    return d.iy0 + min(0, reach), abs(reach)


def tile_job(d: Job, shape: Shape, buffers: Buffers, cost: Callable[[Job], int] | None = None) -> Job:
    """Row tiles of a CONV job (with a fused pool, whole pooled rows), each within what the input
    and accumulator buffers hold. Without ``cost``, tiles as tall as fit; with it (a job's cycles,
    e.g. the cycle model's), the tile height of the fewest cycles, the tallest among equals:
    shorter tiles expose less of the job's first load and last write-back and cost more passes
    and input rows read twice, and the cost model weighs both (heights tried: the tallest and the
    powers of two below it). XaiHlsError if one row does not fit."""
    if d.op != Op.CONV:
        return d
    lo, span = _load_span(d)
    u = d.pool_sh if d.unpool else 1  # UNPOOL: the buffer holds rows of the pooled map

    def in_rows(rows: int) -> int:
        return 0 if d.ky == 0 else (lo + (rows - 1) * d.isy + span) // u - lo // u + 1

    def fits(rows: int) -> bool:
        return rows * d.ow <= buffers.out_depth and in_rows(rows) * d.iw <= buffers.in_depth

    made = d.__dict__.setdefault("_tiles", {})  # the row tilings of d made before (for other buffers, the same job)

    def tiled(rows: int, step: int, tiles: int) -> Job:
        job = made.get((rows, step, tiles))
        if job is None:
            job = made[rows, step, tiles] = tiling(rows, step, tiles)
        return job

    def tiling(rows: int, step: int, tiles: int) -> Job:
        last = d.oh - (tiles - 1) * step
        if u > 1:  # running sums step by +-iw and +-1 as (y, x) cross a window edge (isy = isx = 1)
            return _with(
                d, row_tiles=tiles, tile_rows=min(rows, d.oh), last_rows=last, tile_step=step, load_lo=lo // u,
                load_rows=in_rows(min(rows, d.oh)), load_rows_last=in_rows(last), load_step=step // u,
                walk_row=d.iw, walk_pass_row=-d.iw, walk_origin=(d.iy0 // u - lo // u) * d.iw + d.ix0 // u)
        return _with(
            d, row_tiles=tiles, tile_rows=min(rows, d.oh), last_rows=last, tile_step=step, load_lo=lo,
            load_rows=in_rows(min(rows, d.oh)), load_rows_last=in_rows(last), load_step=step * d.isy,
            walk_row=d.isy * d.iw, walk_pass_row=d.iky * d.iw, walk_origin=(d.iy0 - lo) * d.iw + d.ix0)

    if d.w_passes * shape.tm > buffers.w_depth:
        raise XaiHlsError(f"layer {d.layer}: {d.w_passes} kernel taps of {shape.tm} rows need {d.w_passes * shape.tm} "
                          f"weight-buffer rows; the engine has {buffers.w_depth}")
    if d.has(Flag.POOL):
        k, s = d.pool_kh, d.pool_sh
        heights = [p for p in range(1, d.pool_oh + 1) if fits((p - 1) * s + k)]
        if not heights:
            raise XaiHlsError(_no_fit(d, k, in_rows(k), buffers))
        option = lambda p: tiled((p - 1) * s + k, p * s, -(-d.pool_oh // p))  # noqa: E731
    else:
        # UNPOOL: a tile's first row on a window edge, so every tile starts at the same walk_origin
        heights = [r for r in range(1, d.oh + 1) if fits(r) and (r % u == 0 or r >= d.oh)]
        if not heights:
            raise XaiHlsError(_no_fit(d, u, in_rows(u), buffers))
        option = lambda r: tiled(r, r, -(-d.oh // r))  # noqa: E731
    if cost is None or d.ky == 0:
        return option(heights[-1])
    # the tallest and every power-of-two height below it (on the CIFAR net, within 0.2% of trying all)
    weighed = [option(h) for h in heights if h & (h - 1) == 0] + [option(heights[-1])]
    return min(reversed(weighed), key=cost)  # min keeps the first of equals: the tallest


def buffer_needs(jobs, tm: int, tn: int) -> tuple[int, int, int]:
    """(input words a bank, positions a row tile, weight rows) tiled ``jobs`` use: at most the
    buffers they were tiled for, often less (short row tiles, the largest kernel's taps). The RTL
    is built this deep (xaihls.backends.rtl.v2.params) and the planner prices that engine."""
    in_words = out_pos = w_rows = 1
    for d in jobs:
        if d.op != Op.CONV:
            continue
        out_pos = max(out_pos, max(d.tile_rows, d.last_rows) * d.ow)  # a job of no pass writes zeros through them
        if not d.ky * d.kx:
            continue
        in_words = max(in_words, max(d.load_rows, d.load_rows_last) * d.iw, -(-d.n_tiles * d.in_keep // 2))
        # w_diag: a row holds tn lanes' weights, whole rows of tm a pass (the HLS engine's words of tn passes)
        w_rows = max(w_rows, -(-d.w_passes // tn) * tm if d.w_diag else d.w_passes * tm)
    return in_words, out_pos, w_rows


def keep_needs(jobs, in_words: int) -> int:
    """The input words a set that the inputs of ``jobs`` kept on a buffer of ``in_words`` words a set
    (``keeps_input``) take: the most n-tiles' inputs side by side, over two sets; 0 where none keeps."""
    return max([-(-d.n_tiles * d.load_rows_last * d.iw // 2) for d in jobs
                if KEEP_INPUTS and keeps_input(d, in_words)] + [0])


def weight_depth(lowered: "Lowered") -> int:
    """The weight-buffer rows the planner builds for ``lowered``: the most weight passes of any of
    its jobs (twins included) times tm, as a power of two of at least 16."""
    jobs = lowered.forward + lowered.backward + lowered.cam + sum(lowered.twins.values(), ())
    passes = max([d.w_passes for d in jobs] + [1])
    return 1 << max(4, math.ceil(math.log2(passes * lowered.shape.tm)))


def _no_fit(d: Job, rows: int, input_rows: int, buffers: Buffers) -> str:
    return (f"layer {d.layer}: one row tile needs {input_rows * d.iw} input words and {rows * d.ow} accumulators "
            f"per lane; the buffers hold {buffers.in_depth} and {buffers.out_depth}")


class JobLists:
    """What a Program's header and job lists give every reader (ProgramV2 and the images read back
    from DDR): ``header``, ``forward``, ``backward``, ``forward_batch``, ``backward_batch``, ``cam``."""

    @property
    def batch(self) -> int:
        return self.header["batch"]

    @property
    def all_jobs(self) -> tuple[Job, ...]:
        return self.forward + self.backward + self.forward_batch + self.backward_batch + self.cam


def read_lists(h: dict, jobs: Callable[[int, int, str], tuple]) -> dict[str, tuple]:
    """The five job lists of header ``h``, each read by ``jobs(addr, count, name)``."""
    return {name: jobs(h[f"{name}_addr"], h[f"n_{name}"], name.replace("_", " "))
            for name in ("forward", "backward", "forward_batch", "backward_batch", "cam")}


@dataclass(frozen=True, eq=False)
class ProgramV2(JobLists):
    """A tiled Program: header, jobs, memory map and the initial DDR image (header, descriptors,
    weights, biases; the rest starts as zeros)."""

    shape: Shape
    buffers: Buffers
    header: dict
    forward: tuple[Job, ...]
    backward: tuple[Job, ...]
    regions: tuple[Region, ...]
    image: bytes
    qgraph: QGraph = field(repr=False)
    forward_batch: tuple[Job, ...] = ()  # the batched lists (header batch > 1)
    backward_batch: tuple[Job, ...] = ()
    cam: tuple[Job, ...] = ()  # the Grad-CAM list (header n_cam > 0)

    @property
    def total_bytes(self) -> int:
        return self.header["total_bytes"]

    def region(self, name: str) -> Region:
        return next(r for r in self.regions if r.name == name)

    def ddr(self) -> np.ndarray:
        """A fresh DDR array (uint8) with the Program loaded."""
        mem = np.zeros(self.total_bytes, dtype=np.uint8)
        mem[: len(self.image)] = np.frombuffer(self.image, dtype=np.uint8)
        return mem

    def input_tensor(self, name: str) -> Tensor:
        h = self.header
        return Tensor(h[f"{name}_addr"], h["in_c"], h["in_h"], h["in_w"], self.shape.tn)


@dataclass(frozen=True)
class Slots:
    """How the batched lists address slot s of what a run writes: a tensor at ``addr`` has slot s
    at addr + s * tensor_slot[addr]; a ReLU whose bits start at ``base``, at base + s * mask_slot[base]
    (likewise a max-pool's indices)."""

    batch: int
    tensor_slot: dict[int, int]
    mask_slot: dict[int, int]
    index_slot: dict[int, int]


_MASK_FLAGS = (Flag.RELU, Flag.RAP, Flag.BWD_RELU)


def _touches_mask(d: Job) -> bool:
    return any(d.has(f) for f in _MASK_FLAGS)


def _touches_index(d: Job) -> bool:
    return (d.has(Flag.POOL) and not d.has(Flag.SUM)) or d.has(Flag.GATE) or bool(d.unpool)


def _bits_follow_bytes(d: Job) -> bool:
    """The job's ReLU bits lie at its output's bytes (mask_base + o / 2), not at a pool's grid."""
    return d.op == Op.CONV and (d.has(Flag.RAP) or d.has(Flag.BWD_RELU) or (d.has(Flag.RELU) and not d.has(Flag.POOL)))


def with_mask_bias(d: Job) -> Job:
    """``d`` with the contract's mask_bias and mask_slot_bias: mask_base and mask_slot less out_addr / 2
    and out_slot_bytes / 2 (modulo the field), so the write-back takes an element's bit word from the
    byte address it writes plus one bias, with no subtraction of its own."""
    if not _bits_follow_bytes(d):
        return dataclasses.replace(d, mask_bias=0, mask_slot_bias=0)
    assert d.out_addr % 2 == 0 and d.out_slot_bytes % 2 == 0
    return dataclasses.replace(d, mask_bias=(d.mask_base - d.out_addr // 2) % (1 << MEM),
                               mask_slot_bias=(d.mask_slot - d.out_slot_bytes // 2) % (1 << MEM))


KEEP_INPUTS = True
"""A job of one row tile whose m-tiles all read every n-tile loads its input once, for all of them,
where the n-tiles' inputs fit the input buffer (contract ``in_keep``; docs/engine_v2.md, "Inputs
kept across m-tiles"); False: every m-tile loads them again, as before contract 14 (to measure)."""


def keeps_input(d: Job, in_words: int) -> bool:
    """Whether ``d`` can keep its input in the input buffer (two sets of ``in_words`` words, taken
    as one) for all its m-tiles: a CONV job of one row tile and several m-tiles that each read
    every n-tile (not DIAG), whose operands take no pool index from a buffer set (GATE, UNPOOL),
    and whose n-tiles' inputs fit side by side. A slot job of one n-tile keeps none: its next
    slot's input would land on the one the slot's last m-tile still reads."""
    return (d.op == Op.CONV and d.ky * d.kx > 0 and d.row_tiles == 1 and d.m_tiles > 1
            and not d.has(Flag.DIAG) and not d.has(Flag.GATE) and not d.unpool and (d.n_tiles > 1 or d.slots <= 1)
            and d.n_tiles * d.load_rows_last * d.iw <= 2 * in_words)


def kept_input_fault(d: Job, in_words: int) -> str | None:
    """What is wrong with ``d``'s in_keep on an engine of ``in_words`` input words a set (None: nothing)."""
    if not d.in_keep:
        return None
    if not keeps_input(d, in_words):
        return f"layer {d.layer}: in_keep on a job that cannot keep its input in {2 * in_words} buffer words"
    if d.in_keep != d.load_rows_last * d.iw:
        return f"layer {d.layer}: in_keep {d.in_keep} is not the words of its tile ({d.load_rows_last} x {d.iw})"
    return None


def sum_fault(d: Job) -> str | None:
    """What is wrong with ``d``'s SUM (None: nothing): it sums a pool's windows of accumulators
    alone, so it needs POOL and takes no BIAS (added once a position, it would be summed), RELU or
    LANES."""
    if d.has(Flag.SUM) and (not d.has(Flag.POOL) or any(d.has(f) for f in (Flag.BIAS, Flag.RELU, Flag.LANES))):
        return f"layer {d.layer}: SUM on a job that is not a pool of its accumulators alone (POOL; no BIAS, RELU, LANES)"
    return None


def with_kept_input(d: Job, in_words: int) -> Job:
    """``d`` keeping its input (``in_keep``) where ``keeps_input`` allows and ``KEEP_INPUTS`` is on."""
    if KEEP_INPUTS and keeps_input(d, in_words):
        kept = d.__dict__.get("_kept")  # made once: the planner weighs it for every engine
        if kept is None:
            kept = d.__dict__["_kept"] = _with(d, in_keep=d.load_rows_last * d.iw)
        return kept
    return d


def kept_inputs(jobs, in_words: int) -> tuple[Job, ...]:
    """``jobs`` with their inputs kept where ``with_kept_input`` keeps them."""
    return tuple(with_kept_input(d, in_words) for d in jobs)


SLOT_JOBS = True
"""A convolution of the batched lists runs as one job for all slots (docs/engine_v2.md, "Slot
jobs"); False: a job a slot, as before contract 10 (to measure the difference)."""


def slot_job(d: Job, s: int) -> Job:
    """Slot ``s`` of a slot job: the job alone at that slot's tensors, bits and indices."""
    return dataclasses.replace(d, slots=0, in_slot_bytes=0, out_slot_bytes=0, mask_slot=0, index_slot=0,
                               in_addr=d.in_addr + s * d.in_slot_bytes, out_addr=d.out_addr + s * d.out_slot_bytes,
                               mask_base=d.mask_base + s * d.mask_slot, index_base=d.index_base + s * d.index_slot,
                               mask_bias=(d.mask_bias + s * d.mask_slot_bias) % (1 << MEM), mask_slot_bias=0)


def batch_lists(forward: tuple[Job, ...], backward: tuple[Job, ...], slots: Slots, layers,
                tile: Callable[[Job], Job]) -> tuple[tuple[Job, ...], tuple[Job, ...]]:
    """The batched lists from the (tiled) lists of one run (docs/engine_v2.md, "Batched lists"):
    every job for every slot, at the slot's tensors, bits and indices: a convolution as one slot
    job (``SLOT_JOBS``; "Slot jobs"), a SEED once per slot; a Linear layer's job once for all
    slots, one position (a grid row) a slot, so its weights stream once for the batch.
    Such a job's ReLU bits follow its output's bytes, slot s's at its row s: they are where every
    other job of the lists keeps slot s's bits when the tensor's slots lie as far apart (in
    elements) as the ReLU's (mask_slot); a Linear job whose tensor's slots do not runs a job a
    slot. ``tile`` tiles the batched ones."""
    jobs = forward + backward
    t = slots.tensor_slot
    linear = [d.op == Op.CONV and d.layer < len(layers) and isinstance(layers[d.layer], Linear)
              and (not _touches_mask(d) or t[d.out_addr] == 2 * slots.mask_slot[d.mask_base]) for d in jobs]
    n = slots.batch

    def slot_bytes(d: Job, addr: int) -> int:
        """The slot stride of the tensor at ``addr``: every tensor a convolution reads or writes has
        one (a block of a tensor too, ``_Allocator.block``); a miss would run every slot on slot 0's."""
        if d.op == Op.CONV and d.ky * d.kx:
            assert addr in t, f"layer {d.layer}: no slot stride for the tensor at {addr}"
            return t[addr]
        return t.get(addr, 0)

    def strides(d: Job) -> dict:
        return dict(in_slot_bytes=slot_bytes(d, d.in_addr), out_slot_bytes=slot_bytes(d, d.out_addr),
                    mask_slot=slots.mask_slot[d.mask_base] if _touches_mask(d) else 0,
                    index_slot=slots.index_slot[d.index_base] if _touches_index(d) else 0)

    def per_slot(d: Job, s: int) -> Job:
        return slot_job(dataclasses.replace(d, **strides(d)), s)

    def slot_jobs(d: Job) -> tuple[Job, ...]:
        if d.op == Op.SEED:  # a SEED seeds its own slot's target
            return tuple(dataclasses.replace(per_slot(d, s), slot=s) for s in range(n))
        if SLOT_JOBS:
            return (dataclasses.replace(d, slots=n, **strides(d)),)
        return tuple(per_slot(d, s) for s in range(n))

    def batched(d: Job) -> Job:
        assert (d.oh, d.ow, d.ih, d.iw, d.ky, d.kx) == (1, 1, 1, 1, 1, 1), d
        return tile(dataclasses.replace(
            d, ih=n, oh=n, oph=n, in_row_bytes=slots.tensor_slot[d.in_addr],
            out_row_bytes=slots.tensor_slot[d.out_addr]))

    out = []
    for k, d in enumerate(jobs):
        out.append((batched(d),) if linear[k] else slot_jobs(d))
    flat = lambda part: tuple(j for group in part for j in group)  # noqa: E731
    return flat(out[:len(forward)]), flat(out[len(forward):])


def tiled(lowered: Lowered, buffers: Buffers, cost: Callable[[Job], int] | None = None
          ) -> tuple[tuple[Job, ...], tuple[Job, ...], int]:
    """The forward and backward lists tiled, and how many of the tiled backward jobs the Grad-CAM
    list's prefix is (the header's ``n_backward_cam``, which ``lower_jobs`` counts in its own jobs:
    a twin of several jobs before the cut, an Add or gradient sum a block at a time, moves it).
    Every job tiled (``cost``: see ``tile_job``); a job with a twin as the cheaper of the two
    that fit: by ``cost`` (a twin of several jobs by their sum; each with its input kept where encode
    would keep it), or without it an Add a block at a time (a pass a block of each operand, where
    every m-tile of the plain job passes over all of them), a summed global pool (its passes cover
    many positions where the plain job's cover one, each pass waiting for the accumulators) and a
    LANES job of fewer pass-positions (kx + (G - 1) * isx pass columns for G output columns, the
    last group maybe ragged). A job that only stands for its twin (``Lowered.twin_only``) is its twin."""
    shape = lowered.shape
    jobs = [d for d in lowered.forward + lowered.backward if d not in lowered.twin_only]
    plain = {d: tile_job(d, shape, buffers, cost) for d in jobs}
    plain |= {t: tile_job(t, shape, buffers, cost) for d in lowered.twin_only for t in lowered.twins[d]}
    # a job of no pass (a stride phase no tap reaches) writes zeros through the output memory: row tiles no
    # taller than the other jobs use, which is what the engine is built for (buffer_needs)
    passing = buffer_needs([t for t in plain.values() if t.ky * t.kx], shape.tm, shape.tn)[1]
    for d in jobs:
        if d.op == Op.CONV and not d.ky * d.kx:
            plain[d] = tile_job(d, shape, dataclasses.replace(buffers, out_depth=max(passing, d.ow)), cost)
    # the input words a set of the engine these jobs need (buffer_needs), against which encode keeps
    # inputs: a twin is weighed against its job as both would run
    in_words = buffer_needs(plain.values(), shape.tm, shape.tn)[0]
    kept = lambda d: cost(with_kept_input(d, in_words))  # noqa: E731

    def tile(d: Job) -> tuple[Job, ...]:
        if d in lowered.twin_only:
            return tuple(plain[t] for t in lowered.twins[d])
        return _job_or_twin(d, plain[d], lowered.twins.get(d), shape, buffers, cost, kept)

    flat = lambda part: tuple(t for d in part for t in tile(d))  # noqa: E731
    groups = [tile(d) for d in lowered.backward]
    prefix = sum(len(g) for g in groups[:lowered.header["n_backward_cam"]])
    return flat(lowered.forward), tuple(t for g in groups for t in g), prefix


def _job_or_twin(d: Job, job: Job | None, twin: tuple[Job, ...] | None, shape: Shape, buffers: Buffers,
                 cost: Callable[[Job], int] | None, weigh: Callable[[Job], int] | None) -> tuple[Job, ...]:
    """Job ``d`` tiled (``job``; None where it does not tile) or its ``twin`` tiled, the one that fits or
    the cheaper of the two (``tiled``): by ``weigh`` (``cost`` as the job would run), or without a cost
    model the twin where it is several jobs, a summed pool or a LANES job of fewer pass-positions;
    () where neither fits."""
    fits = twin is not None and all(t.w_passes * shape.tm <= buffers.w_depth for t in twin)
    try:
        twin = tuple(tile_job(t, shape, buffers, cost) for t in twin) if fits else None
    except XaiHlsError:  # a summed pool's grid the buffers cannot hold in one row tile
        twin = None
    if job is None:
        return twin or ()
    if twin is None:
        return (job,)
    if cost is None:
        one = twin[0]
        return twin if len(twin) > 1 or one.has(Flag.SUM) or one.kx * one.ow < d.kx * d.ow else (job,)
    return twin if sum(map(weigh, twin)) < weigh(job) else (job,)


def tiled_cam(lowered: Lowered, buffers: Buffers, cost: Callable[[Job], int] | None = None) -> tuple[Job, ...]:
    """The Grad-CAM list tiled (``cost``: see ``tile_job``); the channel weights' job as the cheaper
    of it and its twin summed in the write-back that fit (without ``cost``: the twin), as ``tiled``
    keeps a global pool's, or the one of the two that fits."""
    shape = lowered.shape

    def tile(d: Job) -> tuple[Job, ...]:
        twin = lowered.twins.get(d)
        try:
            job, refusal = tile_job(d, shape, buffers, cost), None
        except XaiHlsError as exc:  # one pass a pixel over a map whose rows the input buffer cannot hold
            if twin is None:
                raise
            job, refusal = None, exc
        chosen = _job_or_twin(d, job, twin, shape, buffers, cost, cost)
        if not chosen:  # neither fits: the plain job's refusal names the field
            raise refusal
        return chosen

    return tuple(t for d in lowered.cam for t in tile(d))


def tiled_batch(lowered: Lowered, buffers: Buffers, forward: tuple[Job, ...], backward: tuple[Job, ...],
                cost: Callable[[Job], int] | None = None) -> tuple[tuple[Job, ...], tuple[Job, ...]]:
    """The batched lists of ``lowered`` from its tiled lists ``forward``, ``backward`` (empty
    without slots)."""
    if lowered.slots is None:
        return (), ()
    return batch_lists(forward, backward, lowered.slots, lowered.qgraph.graph.layers,
                       lambda d: tile_job(d, lowered.shape, buffers, cost))


HEADER_ADDRESSES = ("forward_addr", "backward_addr", "forward_batch_addr", "backward_batch_addr", "image_addr",
                    "work_addr", "baseline_addr", "ig_table_addr", "logits_addr", "logits_save_addr", "result_addr",
                    "attr_addr", "grad_input_addr", "targets_addr", "cam_addr")
"""The header's fields that are DDR addresses, moved by ``Packing`` (``total_bytes`` becomes its ``total``)."""


@dataclass(frozen=True)
class Packing:
    """The weight blobs of a lowering that no job of its tiled lists reads, taken out of the DDR image: the
    weights of a twin the tiler did not keep, or of the plain job where it kept the twin (a LANES copy, the
    dense identities of an Add run a block at a time, a first convolution's unfolded taps); and the room a
    blob stored one a lane (``w_diag``) leaves past its weights. ``spans``: their regions as the allocator
    took them (64-byte aligned, in address order); everything after a span moves down by its bytes, so
    every region keeps its alignment and a Program's tensors their distances."""

    spans: tuple[tuple[int, int], ...]
    total: int  # the Program's DDR bytes once packed (the header's total_bytes)
    ends: tuple[int, ...] = field(init=False, repr=False)
    taken: tuple[int, ...] = field(init=False, repr=False)  # bytes taken out below each span

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", tuple(e for _, e in self.spans))
        object.__setattr__(self, "taken", tuple(itertools.accumulate((e - s for s, e in self.spans), initial=0)))

    def moved(self, addr: int) -> int:
        """Where the byte at ``addr`` lies once packed (not inside a span taken out)."""
        k = bisect.bisect_right(self.ends, addr)  # the spans wholly below addr
        assert k == len(self.spans) or addr <= self.spans[k][0], \
            f"address {addr} lies in weights no job reads ({self.spans[k][0]}..{self.ends[k] - 1})"
        return addr - self.taken[k]


PACK_WEIGHTS = True
"""Whether a Program's DDR image leaves out the weight blobs none of its jobs reads (``Packing``); False: every
blob the lowering placed stays, as before (to measure)."""


def packing(lowered: Lowered, jobs) -> Packing:
    """The ``Packing`` of ``lowered`` whose tiled lists are ``jobs`` (every list: forward, backward, batched,
    Grad-CAM). A blob is kept where a job's ``w_addr`` or ``b_addr`` points into it."""
    spans = []
    if PACK_WEIGHTS:
        pointers = np.unique(np.fromiter((a for d in jobs for a in (d.w_addr, d.b_addr)), dtype=np.int64))
        size = {r.addr: r.size for r in lowered.regions if r.size}  # a blob's own region (never empty)
        for addr, blob in lowered.blobs:
            end = aligned(addr + size[addr])
            k = np.searchsorted(pointers, addr)
            if k == len(pointers) or pointers[k] >= end:
                spans.append((addr, end))
            elif aligned(addr + 2 * math.prod(blob.shape)) < end:  # stored one a lane: the rest of its room
                spans.append((aligned(addr + 2 * math.prod(blob.shape)), end))
    spans.sort()
    return Packing(tuple(spans), lowered.header["total_bytes"] - sum(e - s for s, e in spans))


def packed_job(d: Job, p: Packing) -> Job:
    """``d`` reading and writing where ``p`` moved its DDR."""
    return _with(d, in_addr=p.moved(d.in_addr), w_addr=p.moved(d.w_addr), b_addr=p.moved(d.b_addr),
                 out_addr=p.moved(d.out_addr))


def encode(lowered: Lowered, buffers: Buffers, cost: Callable[[Job], int] | None = None) -> ProgramV2:
    """Tile the jobs (``cost``: see ``tile_job``) and write the DDR image; XaiHlsError names a
    field the engine cannot hold."""
    forward, backward, n_backward_cam = tiled(lowered, buffers, cost)
    forward_batch, backward_batch = tiled_batch(lowered, buffers, forward, backward, cost)
    cam = tiled_cam(lowered, buffers, cost)
    # the blobs no job reads left out of the image, and every address past one moved down
    pack = packing(lowered, forward + backward + forward_batch + backward_batch + cam)
    if pack.spans:
        forward, backward, forward_batch, backward_batch, cam = (
            tuple(packed_job(d, pack) for d in jobs)
            for jobs in (forward, backward, forward_batch, backward_batch, cam))
    # the input words a set of the engine built for these jobs (buffer_needs, or the planner's deeper keep_words):
    # a kept input fits twice that
    in_words = max(buffer_needs(forward + backward + forward_batch + backward_batch + cam, lowered.shape.tm,
                                lowered.shape.tn)[0],
                   buffers.keep_words)
    forward, backward, forward_batch, backward_batch, cam = (
        kept_inputs(map(with_mask_bias, jobs), in_words)
        for jobs in (forward, backward, forward_batch, backward_batch, cam))
    h = dict(lowered.header, n_forward=len(forward), n_backward=len(backward), n_forward_batch=len(forward_batch),
             n_backward_batch=len(backward_batch), n_backward_cam=n_backward_cam)
    h |= {k: pack.moved(h[k]) for k in HEADER_ADDRESSES} | {"total_bytes": pack.total}
    taken = {start for start, _ in pack.spans}
    # a blob stored one a lane holds less than its room, whose rest the packing took out
    stored = {addr: 2 * math.prod(blob.shape) for addr, blob in lowered.blobs} if PACK_WEIGHTS else {}
    regions = tuple(dataclasses.replace(r, addr=pack.moved(r.addr), size=min(r.size, stored.get(r.addr, r.size)))
                    for r in lowered.regions if not (r.size and r.addr in taken))  # a blob's region is never empty
    blobs = [(pack.moved(addr), blob) for addr, blob in lowered.blobs if addr not in taken]
    init_end = pack.moved(lowered.init_end)
    room = {r.name: r.size for r in lowered.regions}
    for name, jobs in (("forward descriptors", forward), ("backward descriptors", backward),
                       ("batched forward descriptors", forward_batch), ("batched backward descriptors", backward_batch)):
        # the room lower_jobs reserved (for slot jobs, or a job a slot: lowering.SLOT_JOBS then and now)
        assert not jobs or DESCRIPTOR.bytes * len(jobs) <= room[name], f"{name}: {len(jobs)} jobs, no room"
    image = bytearray(init_end)
    image[: HEADER.bytes] = HEADER.encode(h)
    layers = lowered.qgraph.graph.layers
    names = [layer.name for layer in layers] + ["logits"]

    def where(d: Job, direction: str) -> str:
        if d.has(Flag.POOL) and not d.has(Flag.SUM) and d.layer < len(layers) and isinstance(layers[d.layer], Conv2d):
            pool = next(k for k in range(d.layer + 1, len(layers)) if isinstance(layers[k], MaxPool2d))
            return f"layer '{names[d.layer]}' with its max-pool '{names[pool]}' ({direction}): "
        return f"layer '{names[d.layer]}' ({direction}): "

    lists = ((h["forward_addr"], forward, "forward"), (h["backward_addr"], backward, "backward"),
             (h["forward_batch_addr"], forward_batch, "batched forward"),
             (h["backward_batch_addr"], backward_batch, "batched backward"), (h["cam_addr"], cam, "grad-cam"))
    tn = lowered.shape.tn
    for base, jobs, direction in lists:
        for k, d in enumerate(jobs):
            # a pooled map's indices follow its bytes: the RTL reads them from the loader's addresses
            assert not (d.has(Flag.GATE) or d.unpool) or (
                d.in_block_bytes == 2 * tn * d.index_plane and d.in_row_bytes == 2 * tn * d.iw), \
                f"{where(d, direction)}the pooled map it reads is not laid out as its indices"
            image[base + DESCRIPTOR.bytes * k: base + DESCRIPTOR.bytes * (k + 1)] = d.encode(where(d, direction))
    for addr, blob in blobs:
        values = np.asarray(blob).reshape(-1)
        assert addr + 2 * values.size <= init_end, "a blob outside the image"
        image[addr: addr + 2 * values.size] = values.astype("<i2").tobytes()
    return ProgramV2(lowered.shape, buffers, h, forward, backward, regions, bytes(image), lowered.qgraph,
                     forward_batch, backward_batch, cam)


def lower(qg: QGraph, shape: Shape, buffers: Buffers, batch: int = 1, as_columns: bool | None = None,
          as_phases: bool | None = None) -> ProgramV2:
    """The Program v2 of ``qg`` for an engine of ``shape`` with ``buffers`` (``batch``: slots of
    its batched lists; ``as_columns``, ``as_phases``: ``lower_jobs``'s)."""
    return encode(lower_jobs(qg, shape, batch=batch, as_columns=as_columns, as_phases=as_phases), buffers)
