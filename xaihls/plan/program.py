"""The Program: the layer descriptors both hardware backends execute, and the DDR memory map.

Lowering a QGraph for an engine gives a forward list (convolutions with ReLU and max-pool
fused into their write-back, standalone pools and ReLUs) and a backward list (transposed
convolutions as address patterns over the same weights, pool routing, the ReLU rule
applied where a gradient is written). The binary layout is fixed and versioned
(docs/program.md); every executor reads the same words.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

import numpy as np

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU
from xaihls.methods import ReluBackward
from xaihls.quant.qgraph import QGraph

PROGRAM_MAGIC = 0x50494158  # "XAIP" little-endian
PROGRAM_VERSION = 1
ALIGN = 64  # every DDR region starts on a 64-byte boundary (an AXI burst never crosses 4 KiB badly)
MAX_IG_STEPS = 1024
RESULT_WORDS = 5
"""The result region's int32 words: predicted class, target used, then the run's saturation counts
of the forward pass, the backward pass and the post-processing (docs/program.md)."""
FC_TAPS_MAX = 16  # a fully connected layer's input is read as channels of up to 16 taps


class Op(IntEnum):
    END = 0
    CONV = 1  # generic convolution job: conv/fc forward, transposed conv/fc backward
    MAXPOOL = 2  # standalone max-pool forward
    MAXPOOL_BWD = 3
    AVGPOOL = 4
    AVGPOOL_BWD = 5
    RELU = 6  # standalone ReLU forward
    SEED = 7  # one-hot gradient at the target logit


class Flag(IntFlag):
    RELU = 1  # forward: ReLU right after the accumulator; bit [acc > 0] to mask memory
    POOL = 2  # forward: max-pool fused into the write-back (argmax on the accumulator)
    RELU_AFTER_POOL = 4  # forward: ReLU on the pooled value; bit per pooled element
    BWD_RELU = 8  # backward: apply the method's ReLU rule to each written gradient
    BIAS = 16  # forward: accumulators start at the bias


class _Words:
    """A record stored as WORDS little-endian 32-bit words, fields in declaration order, rest zero."""

    WORDS = 0

    def encode(self) -> bytes:
        values = dataclasses.astuple(self)
        assert len(values) <= self.WORDS
        words = [v & 0xFFFFFFFF for v in values] + [0] * (self.WORDS - len(values))
        return struct.pack(f"<{self.WORDS}I", *words)

    @classmethod
    def decode(cls, data: bytes):
        words = struct.unpack(f"<{cls.WORDS}i", data[: 4 * cls.WORDS])
        return cls(*words[: len(dataclasses.fields(cls))])


@dataclass(frozen=True)
class Descriptor(_Words):
    """One job. Every field is a signed 32-bit word, in this order (docs/program.md).

    CONV computes, for m < M, oy < OH, ox < OW:
        acc = (bias[m] << bias_shift) + sum_{n<N, ky<KY, kx<KX} W(m,n,ky,kx) * in[n, y, x]
        y = oy*isy + ky*iky + iy0,  x = ox*isx + kx*ikx + ix0  (0 outside IH x IW)
        W(m,n,ky,kx) = w[w0 + m*ws_m + n*ws_n + ky*ws_ky + kx*ws_kx]
    and writes element (m, oy*osy + oyo, ox*osx + oxo) of an M x OPH x OPW tensor.
    """

    op: int
    flags: int = 0
    in_addr: int = 0
    out_addr: int = 0
    w_addr: int = 0
    b_addr: int = 0
    n: int = 0
    m: int = 0
    ih: int = 0
    iw: int = 0
    oh: int = 0
    ow: int = 0
    ky: int = 1
    kx: int = 1
    isy: int = 1
    isx: int = 1
    iky: int = 1
    ikx: int = 1
    iy0: int = 0
    ix0: int = 0
    ws_m: int = 0
    ws_n: int = 0
    ws_ky: int = 0
    ws_kx: int = 0
    w0: int = 0
    oph: int = 0
    opw: int = 0
    osy: int = 1
    osx: int = 1
    oyo: int = 0
    oxo: int = 0
    shift0: int = 0  # requantization shift under ReLU-backward mode 0 (and forward)
    shift1: int = 0
    shift2: int = 0
    bias_shift: int = 0
    mask_base: int = 0  # bit offset of this job's ReLU bits in the mask memory
    index_base: int = 0  # entry offset of this job's pool indices
    pool_k: int = 0  # window: rows in bits 0-15, columns in bits 16-31 (0: as many as rows)
    pool_s: int = 0  # stride, packed the same way
    pool_oh: int = 0
    pool_ow: int = 0
    recip: int = 0  # average pooling: 1/window in the format of frac ``recip_frac``
    tile_rows: int = 0  # output rows computed per tile (CONV)
    tile_step: int = 0  # first rows of consecutive tiles are this far apart
    row_tiles: int = 0
    m_tiles: int = 0
    n_tiles: int = 0
    layer: int = 0  # index of the QGraph layer it comes from (reports)

    WORDS = 48

    def shift(self, mode: int) -> int:
        return (self.shift0, self.shift1, self.shift2)[mode]

    @property
    def pool_kh(self) -> int:
        return self.pool_k & 0xFFFF

    @property
    def pool_kw(self) -> int:
        return (self.pool_k >> 16) & 0xFFFF or self.pool_kh

    @property
    def pool_sh(self) -> int:
        return self.pool_s & 0xFFFF

    @property
    def pool_sw(self) -> int:
        return (self.pool_s >> 16) & 0xFFFF or self.pool_sh


def pool_word(rows: int, cols: int) -> int:
    """A pool window or stride as one descriptor word: rows in bits 0-15, columns in bits 16-31,
    the upper half 0 when square (so square pools read as before)."""
    if not (1 <= rows < 1 << 15 and 1 <= cols < 1 << 15):
        raise XaiHlsError(f"pool window or stride {rows}x{cols} is outside 1..32767")
    return rows if rows == cols else rows | (cols << 16)


@dataclass(frozen=True)
class Region:
    name: str
    addr: int
    size: int


@dataclass(frozen=True)
class Header(_Words):
    """The words at DDR address 0. Addresses are byte offsets from the DDR base."""

    magic: int = PROGRAM_MAGIC
    version: int = PROGRAM_VERSION
    n_forward: int = 0
    n_backward: int = 0
    forward_addr: int = 0
    backward_addr: int = 0
    image_addr: int = 0  # the user's image (int16, C x H x W)
    work_addr: int = 0  # the image the forward list reads (the image, or an IG path point)
    baseline_addr: int = 0
    ig_table_addr: int = 0  # run time: alpha_frac, weight_frac, then (alpha_q, weight_q) per step
    logits_addr: int = 0
    result_addr: int = 0  # run time out: predicted class, target used
    attr_addr: int = 0  # the attribution (int16, C x H x W)
    igacc_addr: int = 0  # integrated gradients: 64-bit accumulators, C x H x W
    grad_input_addr: int = 0  # what the backward list writes: the input gradient
    classes: int = 0
    input_elems: int = 0
    in_c: int = 0
    in_h: int = 0
    in_w: int = 0
    input_frac: int = 0
    grad_frac0: int = 0  # input-gradient fraction per ReLU-backward mode
    grad_frac1: int = 0
    grad_frac2: int = 0
    ixg_frac: int = 0
    ig_sum_frac: int = 0
    ig_frac: int = 0
    data_width: int = 16
    mask_bits: int = 0
    index_entries: int = 0
    index_bits: int = 0
    total_bytes: int = 0

    WORDS = 32

    def grad_frac(self, mode: int) -> int:
        return (self.grad_frac0, self.grad_frac1, self.grad_frac2)[mode]


@dataclass(frozen=True, eq=False)
class Program:
    """Descriptors, header and the initial DDR image (header, descriptors, weights, biases)."""

    header: Header
    forward: tuple[Descriptor, ...]
    backward: tuple[Descriptor, ...]
    regions: tuple[Region, ...]
    image: bytes  # DDR contents up to the end of the weights; the rest starts as zeros
    qgraph: QGraph = field(repr=False)

    @property
    def total_bytes(self) -> int:
        return self.header.total_bytes

    def region(self, name: str) -> Region:
        return next(r for r in self.regions if r.name == name)

    def ddr(self) -> np.ndarray:
        """A fresh DDR array (uint8) with the program loaded."""
        mem = np.zeros(self.total_bytes, dtype=np.uint8)
        mem[: len(self.image)] = np.frombuffer(self.image, dtype=np.uint8)
        return mem


class _Allocator:
    def __init__(self) -> None:
        self.top = 0
        self.regions: list[Region] = []

    def take(self, name: str, size: int) -> int:
        addr = self.top
        self.regions.append(Region(name, addr, size))
        self.top = -(-(addr + size) // ALIGN) * ALIGN
        return addr


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True, eq=False)
class Untiled:
    """A lowering before tiling: descriptors without tile fields, and the DDR layout."""

    header: Header
    forward: tuple[Descriptor, ...]
    backward: tuple[Descriptor, ...]
    regions: tuple[Region, ...]
    blobs: tuple[tuple[int, bytes], ...]
    init_end: int
    qgraph: QGraph

    def tiled(self, tm: int, tn: int, in_depth: int, out_depth: int) -> tuple[tuple, tuple]:
        """Forward and backward descriptors tiled for an engine (XaiHlsError if a row cannot fit)."""
        def tile(ds):
            return tuple(_tile(d, tm, tn, in_depth, out_depth) if d.op == Op.CONV else d for d in ds)

        return tile(self.forward), tile(self.backward)


def lower(qg: QGraph, tm: int, tn: int, in_depth: int, out_depth: int) -> Program:
    """The Program of ``qg`` for a Tm x Tn engine with the given buffer depths.

    Refuses (XaiHlsError) a layer whose one row does not fit the buffers.
    """
    return encode(lower_untiled(qg), tm, tn, in_depth, out_depth)


def encode(u: Untiled, tm: int, tn: int, in_depth: int, out_depth: int) -> Program:
    """Tile an untiled lowering and write the DDR image (header, descriptors, weights)."""
    forward, backward = u.tiled(tm, tn, in_depth, out_depth)
    h = u.header
    image = bytearray(u.init_end)
    image[: 4 * Header.WORDS] = h.encode()
    size = 4 * Descriptor.WORDS
    for base, ds in ((h.forward_addr, forward), (h.backward_addr, backward)):
        for k, d in enumerate(ds):
            image[base + size * k: base + size * (k + 1)] = d.encode()
    for addr, data in u.blobs:
        image[addr:addr + len(data)] = data
    return Program(h, forward, backward, u.regions, bytes(image), u.qgraph)


IDENTITY_FRAC = 14
"""An element-wise job with reciprocal 1 << IDENTITY_FRAC and shift IDENTITY_FRAC passes values
unchanged (a 1x1 average pool): the lowering uses it where a ReLU must be applied on a feature
map with its bits in the feature-map layout (docs/program.md, "Identity passes")."""


def lower_untiled(qg: QGraph) -> Untiled:
    """Descriptors and memory map of ``qg``; tiling comes later (it depends on the engine)."""
    layers = qg.graph.layers
    L = len(layers)
    modes = tuple(qg.grad_formats)
    alloc = _Allocator()
    alloc.take("header", 4 * Header.WORDS)

    def before(i: int) -> int:
        """The layer whose output is layer i's input, looking through Flattens (-1: the image)."""
        k = i - 1
        while k >= 0 and isinstance(layers[k], Flatten):
            k -= 1
        return k

    def canon(pos: int) -> int:
        """A chain position's first alias: a Flatten's output is its input's bytes."""
        while pos > 0 and isinstance(layers[pos - 1], Flatten):
            pos -= 1
        return pos

    # ---- kept-state memories: a ReLU's bits and a max-pool's indices ----
    mask_base: dict[int, int] = {}
    index_base: dict[int, int] = {}
    bits = entries = 0
    index_bits = 1
    for i, layer in enumerate(layers):
        if isinstance(layer, ReLU):
            k = before(i)
            if k >= 0 and isinstance(layers[k], ReLU):
                # the front end merges such ReLUs; a Graph built by hand must too
                raise XaiHlsError(f"layers '{layers[k].name}' and '{layer.name}': two ReLUs in a row; drop one "
                                  "(the second changes nothing)")
            mask_base[i] = bits
            bits += _numel(layer.in_shape)
        elif isinstance(layer, MaxPool2d):
            index_base[i] = entries
            entries += _numel(layer.out_shape)
            index_bits = max(index_bits, (layer.kernel[0] * layer.kernel[1] - 1).bit_length())

    def map_relu(i: int) -> bool:
        """A ReLU on a feature map with several channels and positions (bits kept per channel)."""
        shape = layers[i].in_shape
        return len(shape) == 3 and shape[0] > 1 and shape[1] * shape[2] > 1

    # Descriptors are placed before the weights; reserve the most they can take (forward jobs
    # <= layers; backward jobs <= one per stride phase per layer, one identity pass per
    # Linear, plus the seed).
    fwd_jobs_max = L
    bwd_jobs_max = 1 + sum(layer.stride[0] * layer.stride[1] if isinstance(layer, Conv2d) else
                           2 if isinstance(layer, Linear) else 1 for layer in layers)
    forward_addr = alloc.take("forward descriptors", 4 * Descriptor.WORDS * fwd_jobs_max)
    backward_addr = alloc.take("backward descriptors", 4 * Descriptor.WORDS * bwd_jobs_max)

    # ---- weights and biases (int16, the forward layout; both directions read them) ----
    blobs: list[tuple[int, bytes]] = []
    w_addr: dict[int, int] = {}
    b_addr: dict[int, int] = {}
    for i, q in enumerate(qg.layers):
        if q.has_weights:
            w = q.weight.numpy().astype("<i2").tobytes()
            b = q.bias.numpy().astype("<i2").tobytes()
            w_addr[i] = alloc.take(f"{q.name}.weight", len(w))
            b_addr[i] = alloc.take(f"{q.name}.bias", len(b))
            blobs += [(w_addr[i], w), (b_addr[i], b)]
    init_end = alloc.top

    c, h, w_ = qg.graph.input_shape
    input_elems = c * h * w_
    image_addr = alloc.take("image", 2 * input_elems)
    work_addr = alloc.take("work image", 2 * input_elems)
    baseline_addr = alloc.take("baseline", 2 * input_elems)
    ig_table_addr = alloc.take("ig table", 8 + 8 * MAX_IG_STEPS)
    logits_addr = alloc.take("logits", 2 * qg.graph.num_classes)
    result_addr = alloc.take("result", 4 * RESULT_WORDS)
    attr_addr = alloc.take("attribution", 2 * input_elems)
    # (an engine may keep the image's logits here while integrated gradients overwrite them)
    igacc_addr = alloc.take("ig accumulators", max(8 * input_elems, 2 * qg.graph.num_classes))

    # ---- forward list ----
    act_addr: dict[int, int] = {0: work_addr}  # chain position -> DDR address of that tensor
    forward: list[Descriptor] = []

    def out_region(name: str, shape, end: int) -> int:
        """Where a job ending at chain position ``end`` writes: the logits region at the end."""
        if all(isinstance(layers[k], Flatten) for k in range(end, L)):
            return logits_addr
        return alloc.take(name, 2 * _numel(shape))

    def pool_fields(p) -> dict:
        return dict(pool_k=pool_word(*p.kernel), pool_s=pool_word(*p.stride), pool_oh=p.out_shape[1],
                    pool_ow=p.out_shape[2])

    i = 0
    while i < L:
        layer, q = layers[i], qg.layers[i]
        if isinstance(layer, Flatten):
            act_addr[i + 1] = act_addr[i]
            i += 1
            continue
        if isinstance(layer, (Conv2d, Linear)):
            j = i + 1
            flags = Flag.BIAS
            relu_at = pool_at = None
            if j < L and isinstance(layers[j], ReLU):
                flags |= Flag.RELU
                relu_at = j
                j += 1
            if isinstance(layer, Conv2d) and j < L and isinstance(layers[j], MaxPool2d):
                flags |= Flag.POOL
                pool_at = j
                j += 1
                if relu_at is None and j < L and isinstance(layers[j], ReLU):
                    flags |= Flag.RELU_AFTER_POOL
                    relu_at = j
                    j += 1
            out_addr = out_region(f"{layer.name}.out", layers[j - 1].out_shape, j)
            d = _conv_forward(layer, q, act_addr[i], out_addr, w_addr[i], b_addr[i], flags, i)
            if relu_at is not None:
                d = dataclasses.replace(d, mask_base=mask_base[relu_at])
            if pool_at is not None:
                p = layers[pool_at]
                d = dataclasses.replace(d, index_base=index_base[pool_at], oph=p.out_shape[1], opw=p.out_shape[2],
                                        **pool_fields(p))
            forward.append(d)
            act_addr[j] = out_addr
            i = j
            continue
        if isinstance(layer, (MaxPool2d, AvgPool2d)):
            j = i + 1
            flags = 0
            if j < L and isinstance(layers[j], ReLU):
                flags |= Flag.RELU_AFTER_POOL
                j += 1
            out_addr = out_region(f"{layer.name}.out", layer.out_shape, j)
            cin, ih, iw = layer.in_shape
            _, oh, ow = layer.out_shape
            is_max = isinstance(layer, MaxPool2d)
            d = Descriptor(
                Op.MAXPOOL if is_max else Op.AVGPOOL, flags, act_addr[i], out_addr, n=cin, m=cin, ih=ih, iw=iw,
                oh=oh, ow=ow, index_base=index_base.get(i, 0), mask_base=mask_base.get(i + 1, 0), layer=i,
                recip=0 if is_max else int(q.weight[0]),
                shift0=0 if is_max else q.acc_frac - q.out_fmt.frac, **pool_fields(layer),
            )
            forward.append(d)
            act_addr[j] = out_addr
            i = j
            continue
        if isinstance(layer, ReLU):
            out_addr = out_region(f"{layer.name}.out", layer.out_shape, i + 1)
            if map_relu(i):
                # bits in the feature-map layout (as a conv's write-back keeps them): an identity
                # 1x1 average pool with its ReLU flag
                cin, ih, iw = layer.in_shape
                forward.append(Descriptor(
                    Op.AVGPOOL, Flag.RELU_AFTER_POOL, act_addr[i], out_addr, n=cin, m=cin, ih=ih, iw=iw, oh=ih,
                    ow=iw, pool_k=1, pool_s=1, pool_oh=ih, pool_ow=iw, mask_base=mask_base[i], layer=i,
                    recip=1 << IDENTITY_FRAC, shift0=IDENTITY_FRAC))
            else:
                forward.append(Descriptor(Op.RELU, Flag.RELU, act_addr[i], out_addr, n=_numel(layer.in_shape),
                                          mask_base=mask_base[i], layer=i))
            act_addr[i + 1] = out_addr
            i += 1
            continue
        raise AssertionError(type(layer).__name__)

    # ---- backward list ----
    grad_addr: dict[int, int] = {}

    def relu_before(i: int) -> int | None:
        """The ReLU whose output is layer i's input (through Flattens), if any."""
        k = before(i)
        return k if k >= 0 and isinstance(layers[k], ReLU) else None

    def grad_target(i: int) -> tuple[int, int | None]:
        """Chain position whose gradient a job for layer i writes, and the ReLU it applies."""
        r = relu_before(i)
        return (r, r) if r is not None else (i, None)

    def grad_region(pos: int) -> int:
        pos = canon(pos)
        if pos not in grad_addr:
            shape = layers[pos].in_shape if pos < L else layers[-1].out_shape
            grad_addr[pos] = alloc.take(f"grad[{pos}]", 2 * _numel(shape))
        return grad_addr[pos]

    backward: list[Descriptor] = []
    # The seed: gradient of the logits, with the ReLU rule when the logits are a ReLU's output.
    seed_pos, seed_relu = grad_target(L)
    backward.append(Descriptor(Op.SEED, Flag.BWD_RELU if seed_relu is not None else 0, out_addr=grad_region(seed_pos),
                               n=qg.graph.num_classes, mask_base=mask_base.get(seed_relu, 0), layer=L,
                               shift0=qg.seed_fmt.frac))
    pos = seed_pos  # the gradient we hold is at this chain position
    for i in range(L - 1, -1, -1):
        layer, q = layers[i], qg.layers[i]
        if isinstance(layer, (ReLU, Flatten)):
            continue  # applied by the job that writes the gradient below it / a no-op
        assert pos == i + 1 or all(isinstance(layers[k], (ReLU, Flatten)) for k in range(i + 1, pos)), (i, pos)
        src = grad_region(pos)
        dst_pos, relu = grad_target(i)
        dst = grad_region(dst_pos)
        flags = Flag.BWD_RELU if relu is not None else 0
        mbase = mask_base.get(relu, 0)
        shifts = {}
        for mode in modes:
            g_out, g_in = qg.grad_fmt(mode, i + 1), qg.grad_fmt(mode, i)
            if isinstance(layer, (Conv2d, Linear)):
                shifts[mode] = g_out.frac + q.weight_fmt.frac - g_in.frac
            elif isinstance(layer, AvgPool2d):
                shifts[mode] = g_out.frac + q.weight_fmt.frac - g_in.frac
            else:
                shifts[mode] = g_out.frac - g_in.frac
        sh = [shifts.get(ReluBackward(k), 0) for k in range(3)]
        if isinstance(layer, Linear) and relu is not None and map_relu(relu):
            # A Linear's input gradient is a flat vector, the ReLU's bits a feature map: the
            # Linear writes plainly, an identity pass over the map applies the ReLU rule.
            flat = alloc.take(f"grad[{dst_pos}].flat", 2 * _numel(layers[relu].in_shape))
            for d in _conv_backward(layer, src, flat, w_addr[i], 0, i):
                backward.append(dataclasses.replace(d, shift0=sh[0], shift1=sh[1], shift2=sh[2]))
            cin, ih, iw = layers[relu].in_shape
            backward.append(Descriptor(
                Op.AVGPOOL_BWD, Flag.BWD_RELU, flat, dst, n=cin, m=cin, ih=ih, iw=iw, oh=ih, ow=iw,
                pool_k=1, pool_s=1, pool_oh=ih, pool_ow=iw, mask_base=mbase, recip=1 << IDENTITY_FRAC,
                shift0=IDENTITY_FRAC, shift1=IDENTITY_FRAC, shift2=IDENTITY_FRAC, layer=relu))
        elif isinstance(layer, (Conv2d, Linear)):
            for d in _conv_backward(layer, src, dst, w_addr[i], flags, i):
                d = dataclasses.replace(d, mask_base=mbase, shift0=sh[0], shift1=sh[1], shift2=sh[2])
                backward.append(d)
        else:
            cin, ih, iw = layer.in_shape
            _, oh, ow = layer.out_shape
            is_max = isinstance(layer, MaxPool2d)
            backward.append(Descriptor(
                Op.MAXPOOL_BWD if is_max else Op.AVGPOOL_BWD, flags, src, dst, n=cin, m=cin, ih=ih, iw=iw,
                oh=oh, ow=ow, index_base=index_base.get(i, 0), mask_base=mbase,
                recip=0 if is_max else int(q.weight[0]), shift0=sh[0], shift1=sh[1], shift2=sh[2], layer=i,
                pool_k=pool_word(*layer.kernel), pool_s=pool_word(*layer.stride), pool_oh=oh, pool_ow=ow,
            ))
        pos = dst_pos
    grad_input_addr = grad_region(0)

    af = qg.attribution_formats
    gf = [qg.grad_fmt(ReluBackward(k), 0).frac if ReluBackward(k) in qg.grad_formats else 0 for k in range(3)]
    total = alloc.top
    header = Header(
        n_forward=len(forward), n_backward=len(backward), forward_addr=forward_addr, backward_addr=backward_addr,
        image_addr=image_addr, work_addr=work_addr, baseline_addr=baseline_addr, ig_table_addr=ig_table_addr,
        logits_addr=logits_addr, result_addr=result_addr, attr_addr=attr_addr, igacc_addr=igacc_addr,
        grad_input_addr=grad_input_addr, classes=qg.graph.num_classes, input_elems=input_elems,
        in_c=c, in_h=h, in_w=w_, input_frac=qg.input_fmt.frac, grad_frac0=gf[0], grad_frac1=gf[1],
        grad_frac2=gf[2], ixg_frac=af.input_x_gradient.frac, ig_sum_frac=af.ig_summed_gradient.frac,
        ig_frac=af.integrated_gradients.frac, data_width=qg.width, mask_bits=bits, index_entries=entries,
        index_bits=index_bits, total_bytes=total,
    )
    return Untiled(header, tuple(forward), tuple(backward), tuple(alloc.regions), tuple(blobs), init_end, qg)


def _conv_forward(layer, q, in_addr, out_addr, w_addr, b_addr, flags, index) -> Descriptor:
    if isinstance(layer, Linear):
        # The input vector as N/D channels of D taps: each MAC's weight bank takes D
        # consecutive weights of a row, so a weight tile is Tm runs of Tn*D contiguous words.
        n_in = layer.in_shape[0]
        taps = max(t for t in range(1, FC_TAPS_MAX + 1) if n_in % t == 0)
        return Descriptor(
            Op.CONV, flags, in_addr, out_addr, w_addr, b_addr, n=n_in // taps, m=layer.out_shape[0],
            ih=1, iw=taps, oh=1, ow=1, kx=taps, isx=0, ws_m=n_in, ws_n=taps, ws_kx=1, oph=1, opw=1,
            shift0=q.acc_frac - q.out_fmt.frac, shift1=q.acc_frac - q.out_fmt.frac,
            shift2=q.acc_frac - q.out_fmt.frac, bias_shift=q.bias_shift, layer=index,
        )
    cin, ih, iw = layer.in_shape
    cout, oh, ow = layer.out_shape
    kh, kw = layer.kernel
    sh = q.acc_frac - q.out_fmt.frac
    return Descriptor(
        Op.CONV, flags, in_addr, out_addr, w_addr, b_addr, n=cin, m=cout, ih=ih, iw=iw, oh=oh, ow=ow, ky=kh, kx=kw,
        isy=layer.stride[0], isx=layer.stride[1], iky=1, ikx=1, iy0=-layer.padding[0], ix0=-layer.padding[1],
        ws_m=cin * kh * kw, ws_n=kh * kw, ws_ky=kw, ws_kx=1, oph=oh, opw=ow,
        shift0=sh, shift1=sh, shift2=sh, bias_shift=q.bias_shift, layer=index,
    )


def _conv_backward(layer, src, dst, w_addr, flags, index) -> list[Descriptor]:
    """Input gradient as transposed convolution: one job per output phase, no zero stuffing.

    gin[c, y, x] = sum_{m, i, j} W[m, c, i, j] * gout[m, (y + p - i) / s, (x + p - j) / s]
    over the taps where the division is exact. For the phase (ry, rx) = (y mod s, x mod s) the
    valid taps are i = i0 + t*s with i0 = (ry + p) mod s, and the gout row is
    oy + (ry + p - i0)/s - t: a stride-1 convolution with a sub-kernel read in reverse.
    """
    if isinstance(layer, Linear):
        n_in, n_out = layer.in_shape[0], layer.out_shape[0]
        return [Descriptor(Op.CONV, flags, src, dst, w_addr, 0, n=n_out, m=n_in, ih=1, iw=1, oh=1, ow=1,
                           ws_m=1, ws_n=n_in, oph=1, opw=1, layer=index)]
    cin, h, w = layer.in_shape
    cout, oh, ow = layer.out_shape
    kh, kw = layer.kernel
    sy, sx = layer.stride
    py, px = layer.padding
    jobs = []
    for ry in range(sy):
        rows = len(range(ry, h, sy))
        i0 = (ry + py) % sy
        taps_y = len(range(i0, kh, sy))
        for rx in range(sx):
            cols = len(range(rx, w, sx))
            j0 = (rx + px) % sx
            taps_x = len(range(j0, kw, sx))
            if rows == 0 or cols == 0:
                continue
            # no tap reaches a phase when the stride exceeds the kernel: its gradient is zero
            ky, kx = (taps_y, taps_x) if taps_y and taps_x else (0, 0)
            jobs.append(Descriptor(
                Op.CONV, flags, src, dst, w_addr, 0, n=cout, m=cin, ih=oh, iw=ow, oh=rows, ow=cols,
                ky=ky, kx=kx, isy=1, isx=1, iky=-1, ikx=-1,
                iy0=(ry + py - i0) // sy, ix0=(rx + px - j0) // sx,
                ws_m=kh * kw, ws_n=cin * kh * kw, ws_ky=sy * kw, ws_kx=sx, w0=i0 * kw + j0,
                oph=h, opw=w, osy=sy, osx=sx, oyo=ry, oxo=rx, layer=index,
            ))
    return jobs


def conv_input_rows(d: Descriptor, rows: int) -> int:
    """Input rows a CONV tile of ``rows`` output rows reads."""
    return (rows - 1) * abs(d.isy) + max(d.ky - 1, 0) * abs(d.iky) + 1


def conv_input_cols(d: Descriptor) -> int:
    return (d.ow - 1) * abs(d.isx) + max(d.kx - 1, 0) * abs(d.ikx) + 1


def _tile(d: Descriptor, tm: int, tn: int, in_depth: int, out_depth: int) -> Descriptor:
    """Rows per tile: as many output rows as the input and output buffers hold.

    With a fused max-pool a tile is a whole number of pooled rows (the conv rows under
    them; overlapping windows recompute their shared rows).
    """
    cols_in = conv_input_cols(d)
    if d.flags & Flag.POOL:
        k, s = d.pool_kh, d.pool_sh
        best = 0
        for pooled in range(1, d.pool_oh + 1):
            rows = (pooled - 1) * s + k
            if rows * d.ow <= out_depth and conv_input_rows(d, rows) * cols_in <= in_depth:
                best = pooled
        if best == 0:
            raise XaiHlsError(_no_fit(d, (k) * d.ow, conv_input_rows(d, k) * cols_in, in_depth, out_depth))
        rows, step, tiles = (best - 1) * s + k, best * s, -(-d.pool_oh // best)
    else:
        best = 0
        for rows in range(1, d.oh + 1):
            if rows * d.ow <= out_depth and conv_input_rows(d, rows) * cols_in <= in_depth:
                best = rows
        if best == 0:
            raise XaiHlsError(_no_fit(d, d.ow, conv_input_rows(d, 1) * cols_in, in_depth, out_depth))
        rows, step, tiles = best, best, -(-d.oh // best)
    return dataclasses.replace(d, tile_rows=rows, tile_step=step, row_tiles=tiles,
                               m_tiles=-(-d.m // tm), n_tiles=-(-d.n // tn))


def _no_fit(d: Descriptor, out_words: int, in_words: int, in_depth: int, out_depth: int) -> str:
    return (f"layer {d.layer}: one tile needs {in_words} input words and {out_words} accumulators per bank; "
            f"the buffers hold {in_depth} and {out_depth}")
