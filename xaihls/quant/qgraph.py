"""The quantized graph: a FixedFormat for every tensor of the forward AND backward passes.

Tensors are numbered as in the Graph: tensor 0 is the image, tensor k the output of layer
k-1 (tensor L the logits). ``grad[mode][k]`` is the gradient at tensor k under a
ReLU-backward mode, summed over the layers that read it (``grad[mode][0]`` the input
gradient, ``grad[mode][L]`` the one-hot seed); in a chain, tensor k is the input of layer k,
so ``act[i]`` and ``grad[mode][i]`` are layer i's input's. A layer's ``in`` format is the
format it reads its input in (an Add's: the finer of its operands' formats, which both are aligned to exactly).
Every requantization point is explicit: a layer's ``out`` format differs from the
accumulator fraction it computes in, and the shift between them is what every executor applies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from xaihls.frontend.ir import AvgPool2d, ChannelAffine, Conv2d, Graph, Layer, Linear, dilate_kernel
from xaihls.methods import ReluBackward
from xaihls.numerics import FixedFormat


@dataclass(frozen=True, eq=False)
class QLayer:
    """One layer with its integer parameters and the formats around it.

    ``weight``/``bias`` are int64 (conv, linear; a ChannelAffine's scale and shift per channel);
    for average pooling ``weight`` is the 1-element reciprocal of the window size in
    ``weight_fmt``, or, where padding or ceil mode makes windows differ, the (OH, OW) map of
    each window's reciprocal divisor.
    """

    layer: Layer
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    weight_fmt: FixedFormat | None = None
    weight: torch.Tensor | None = None
    bias_fmt: FixedFormat | None = None
    bias: torch.Tensor | None = None

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def acc_frac(self) -> int:
        """Fraction of the forward accumulator (products of input and weight)."""
        if self.weight_fmt is None:
            return self.in_fmt.frac
        return self.in_fmt.frac + self.weight_fmt.frac

    @property
    def bias_shift(self) -> int:
        """Left shift that aligns the bias to the accumulator (>= 0 by construction)."""
        return self.acc_frac - self.bias_fmt.frac if self.bias_fmt is not None else 0

    @property
    def has_weights(self) -> bool:
        return isinstance(self.layer, (Conv2d, Linear))

    @property
    def is_affine(self) -> bool:
        return isinstance(self.layer, ChannelAffine)

    @property
    def is_avgpool(self) -> bool:
        return isinstance(self.layer, AvgPool2d)


@dataclass(frozen=True)
class AttributionFormats:
    """Formats of the post-processing unit's results under one ReLU-backward mode."""

    input_x_gradient: FixedFormat
    ig_summed_gradient: FixedFormat
    integrated_gradients: FixedFormat
    grad_cam_weights: FixedFormat | None = None  # the channel weights (spatial means of the layer's gradient)
    grad_cam: FixedFormat | None = None  # the map (after its ReLU), before and after upsampling
    guided_grad_cam: FixedFormat | None = None


@dataclass(frozen=True, eq=False)
class QGraph:
    """A Graph with every tensor's fixed-point format chosen (by calibration or config)."""

    graph: Graph
    width: int
    layers: tuple[QLayer, ...]
    methods: tuple[str, ...]
    grad_formats: dict[ReluBackward, tuple[FixedFormat, ...]]
    attribution_formats: AttributionFormats
    ig_steps: int = 32
    ig_rule: str = "trapezoid"
    notes: dict = field(default_factory=dict)
    cam_layer: str | None = None  # the Grad-CAM layer, when a Grad-CAM method is compiled

    @property
    def input_fmt(self) -> FixedFormat:
        return self.layers[0].in_fmt

    @property
    def logits_fmt(self) -> FixedFormat:
        return self.layers[-1].out_fmt

    @property
    def seed_fmt(self) -> FixedFormat:
        """The one-hot seed: exactly 1.0 at the target logit."""
        return FixedFormat(self.width, self.width - 2)

    def act_fmt(self, i: int) -> FixedFormat:
        return self.layers[i].in_fmt if i < len(self.layers) else self.logits_fmt

    def tensor_fmt(self, k: int) -> FixedFormat:
        """The format of tensor k (the image's, or layer k-1's output format)."""
        return self.input_fmt if k == 0 else self.layers[k - 1].out_fmt

    def grad_fmt(self, mode: ReluBackward, i: int) -> FixedFormat:
        return self.grad_formats[mode][i]

    def formats_table(self) -> list[dict]:
        """One row a layer: the formats a user checks when an output looks wrong."""
        rows = []
        for i, q in enumerate(self.layers):
            row = {
                "layer": q.name,
                "type": type(q.layer).__name__,
                "in": str(q.in_fmt),
                "out": str(q.out_fmt),
                "weight": str(q.weight_fmt) if q.weight_fmt else "",
                "bias": str(q.bias_fmt) if q.bias_fmt else "",
            }
            for mode, fmts in self.grad_formats.items():
                row[f"grad_in[{mode.name.lower()}]"] = str(fmts[i])
            rows.append(row)
        return rows


def spread(qg: QGraph) -> QGraph:
    """``qg`` with every dilated convolution as its spread (``Conv2d.spread``: the kernel as large as
    the window, zero between the taps; the integer weights dilated alike), the same sums: what the
    engines run (docs/frontend.md, "Dilated convolutions"). ``qg`` itself where none is dilated."""
    if not any(isinstance(q.layer, Conv2d) and q.layer.dilated for q in qg.layers):
        return qg
    layers = tuple(dataclasses.replace(q, layer=q.layer.spread(), weight=dilate_kernel(q.weight, q.layer.dilation))
                   if isinstance(q.layer, Conv2d) and q.layer.dilated else q for q in qg.layers)
    graph = dataclasses.replace(qg.graph, layers=tuple(q.layer for q in layers))
    return dataclasses.replace(qg, graph=graph, layers=layers)


def _transposed(value):
    """A map's shape (C, H, W) as (C, W, H), a window's (rows, columns) as (columns, rows); anything else as is."""
    if isinstance(value, tuple) and len(value) in (2, 3) and all(isinstance(v, int) for v in value):
        return (*value[:-2], value[-1], value[-2])
    return value


def maps_as_columns(qg: QGraph) -> QGraph:
    """A 1-D model's graph with its maps as columns: (C, L, 1) instead of (C, 1, L), each window's rows and
    columns swapped, every kernel and reciprocal map transposed. Both hold a map's samples in the same
    order, so every tensor's bytes in the blocked layout are the same (a Flatten too); the engines run
    it this way, so that a row tile is a few samples rather than the whole map (docs/frontend.md,
    "1-D models"). ``qg`` itself for a 2-D model."""
    if qg.graph.sample_shape is None:
        return qg
    fields = ("in_shape", "out_shape", "kernel", "stride", "padding", "dilation")

    def layer(lay: Layer) -> Layer:
        changes = {f: _transposed(getattr(lay, f)) for f in fields if hasattr(lay, f)}
        if isinstance(lay, Conv2d):
            changes["weight"] = lay.weight.transpose(2, 3).contiguous()
        return dataclasses.replace(lay, **changes)

    def qlayer(q: QLayer) -> QLayer:
        weight = q.weight
        if isinstance(q.layer, Conv2d) or (isinstance(q.layer, AvgPool2d) and weight is not None and weight.dim() == 2):
            weight = weight.transpose(-2, -1).contiguous()
        return dataclasses.replace(q, layer=layer(q.layer), weight=weight)

    layers = tuple(qlayer(q) for q in qg.layers)
    graph = dataclasses.replace(qg.graph, input_shape=_transposed(qg.graph.input_shape),
                                layers=tuple(q.layer for q in layers))
    return dataclasses.replace(qg, graph=graph, layers=layers)


def rows_kernel(kernel: int, stride: int, padding: int) -> tuple[int, int, int]:
    """A 1-D first convolution's kernel on its image as rows of its ``stride`` (``image_as_rows``): the zero
    rows above, ceil(P / stride); the shift e = ceil(P / stride) * stride - P of its taps in the first row;
    and its rows, ceil((e + k) / stride)."""
    top = -(-padding // stride)
    shift = top * stride - padding
    return top, shift, -(-(shift + kernel) // stride)


def image_as_rows(qg: QGraph, width: int) -> QGraph:
    """A 1-D model's graph with its maps as columns (``maps_as_columns``) and its image, of L samples, as
    L / ``width`` rows of ``width`` samples, where ``width`` is the stride of the first convolution, which
    alone reads the image: the same bytes in the blocked layout (sample x is pixel (x // width, x % width)).
    That convolution becomes a 2-D one of kernel (ceil((e + k) / width), width), stride (1, width) (its one
    output column reads the whole row, and its backward runs a column a stride phase) and ``ceil(P / width)``
    zero rows above, where k is its kernel, P its padding and e = ceil(P / width) * width - P:
    tap j of output o reads sample width * o - P + j, which is pixel (o - ceil(P / width) + (e + j) // width,
    (e + j) % width). Its output stays a column, the same sums (docs/frontend.md, "1-D models"). So an
    image longer than a job's map runs where its first convolution's output fits one."""
    first = qg.layers[0]
    lay = first.layer
    c, n, one = lay.in_shape
    (k, _), (s, _), (pad, _) = lay.kernel, lay.stride, lay.padding
    assert one == 1 and s == width and n % width == 0 and lay.dilation == (1, 1), "a column-view image read by a conv"
    top, e, kh = rows_kernel(k, width, pad)

    def rows(kernel: torch.Tensor) -> torch.Tensor:
        out = kernel.new_zeros(*kernel.shape[:2], kh * width)
        out[:, :, e:e + k] = kernel[:, :, :, 0]
        return out.reshape(*kernel.shape[:2], kh, width).contiguous()

    layer = dataclasses.replace(lay, in_shape=(c, n // width, width), weight=rows(lay.weight), kernel=(kh, width),
                                stride=(1, width), padding=(top, 0))
    return _first_layer(qg, first, layer, rows(first.weight))


def image_as_phases(qg: QGraph, stride: int) -> QGraph:
    """The graph with its image as the phases of its first convolution's ``stride`` s (that convolution alone
    reads the image), its channels' pixels s apart as channels of a map s times smaller (``contract.image_view``):

    - a 1-D model (its maps as columns), C channels of L samples: an (s·C, L / s, 1) map whose channel c·s + j
      holds samples j, s + j, 2s + j, ... of channel c; the convolution's kernel becomes (ceil((e + k) / s), 1)
      of stride 1 with ceil(p / s) zero rows above, e = s·ceil(p / s) − p, its tap u of phase j the original's
      tap s·u + j − e (zero outside it): ``image_as_rows``'s kernel row u, its column j as an input channel;
    - a 2-D image (C, H, W) read at stride (s, s): a (s²·C, ceil(H / s), ceil(W / s)) map whose channel
      (c·s + a)·s + b at pixel (y, x) is pixel (s·y + a, s·x + b) of channel c; the convolution's kernel becomes
      (ceil((e_y + k_y) / s), ceil((e_x + k_x) / s)) of stride 1 with ceil(p / s) zero rows and columns before
      the map, each dimension as the 1-D one's.

    Where s does not divide a side, the view's last row (column) holds pixels past the image in its later phases:
    zeros (``contract.image_view``), read where the convolution read its padding. Tap i of output o reads pixel
    s·o − p + i either way, so the products are the same. Its backward is then one stride-1 convolution writing
    all the channels at once, where a strided convolution's backward writes one stride phase a job on the image's
    few channels (docs/frontend.md, "1-D models"); it leaves the pixels past the image zero
    (``lowering.phase_edges``)."""
    stride_x = 1 if qg.graph.sample_shape is not None else stride  # a 1-D model's samples run down its column
    first = qg.layers[0]
    lay = first.layer
    c, h, w = lay.in_shape
    (ky, kx), (py, px) = lay.kernel, lay.padding
    assert lay.stride == (stride, stride_x) and not lay.dilated, "an image read at the stride of its phases"
    top, ey, kvy = rows_kernel(ky, stride, py)
    left, ex, kvx = rows_kernel(kx, stride_x, px)

    def phases(kernel: torch.Tensor) -> torch.Tensor:  # (M, C / g, ky, kx) to (M, stride·stride_x·C / g, kvy, kvx)
        m, cg = kernel.shape[:2]
        out = kernel.new_zeros(m, cg, kvy * stride, kvx * stride_x)
        out[:, :, ey:ey + ky, ex:ex + kx] = kernel
        out = out.reshape(m, cg, kvy, stride, kvx, stride_x).permute(0, 1, 3, 5, 2, 4)
        return out.reshape(m, cg * stride * stride_x, kvy, kvx).contiguous()

    layer = dataclasses.replace(lay, in_shape=(c * stride * stride_x, -(-h // stride), -(-w // stride_x)),
                                weight=phases(lay.weight), kernel=(kvy, kvx), stride=(1, 1), padding=(top, left))
    return _first_layer(qg, first, layer, phases(first.weight))


def _first_layer(qg: QGraph, first: QLayer, layer: Conv2d, weight: torch.Tensor) -> QGraph:
    """``qg`` with its first layer ``layer`` (integer weights ``weight``), its image that layer's input."""
    layers = (dataclasses.replace(first, layer=layer, weight=weight), *qg.layers[1:])
    graph = dataclasses.replace(qg.graph, input_shape=layer.in_shape, layers=tuple(q.layer for q in layers))
    return dataclasses.replace(qg, graph=graph, layers=layers)
