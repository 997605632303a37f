"""The golden model on fused native stages: the same integers and saturation counts as model.py's
layer-by-layer PyTorch path, in a few calls of native kernels (native.cpp).

A stage is what one native call computes, forward or backward: a convolution with the ReLU and
the max-pool that follow it, or a linear layer with its ReLU. Between stages tensors are int16,
channels last (N, H, W, C), or (N, F) vectors; a Flatten is a reshape of that layout, so the
linear layer after it takes its weight columns in (H, W, C) order. What the forward pass keeps
for the backward pass is the same as model.py's (ReLU bits, max-pool taps), in this layout.

Decisions are taken where model.py takes them (on the wide accumulator, see its docstring); every
requantization point is the same (numerics.round_shift, then saturate), counted under the same
names. ``plan`` says whether a network runs here: every operand of at most 16 bits, layers in
stages, max-pool windows of at most 256 taps, the native library built. Otherwise model.py runs.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from xaihls.frontend.ir import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from xaihls.golden import native
from xaihls.methods import ReluBackward
from xaihls.quant.qgraph import QGraph


@dataclass(frozen=True)
class Stage:
    """Layer ``layer`` (a Conv2d or Linear), then the ReLU ``relu`` and the MaxPool2d ``pool`` if any.

    ``map_shape``: for a linear layer whose input is a flattened (C, H, W) map, that shape.
    """

    layer: int
    relu: int | None = None
    pool: int | None = None
    map_shape: tuple[int, int, int] | None = None

    @property
    def last(self) -> int:
        return max(i for i in (self.layer, self.relu, self.pool) if i is not None)


@dataclass
class StageKept:
    """ReLU bits and max-pool taps by the ReLU's and the pool's layer index, channels last, uint8."""

    relu_bits: dict[int, torch.Tensor] = field(default_factory=dict)
    pool_indices: dict[int, torch.Tensor] = field(default_factory=dict)

    def images(self, start: int, stop: int) -> "StageKept":
        return StageKept({i: t[start:stop] for i, t in self.relu_bits.items()},
                         {i: t[start:stop] for i, t in self.pool_indices.items()})

    @staticmethod
    def cat(parts: list["StageKept"]) -> "StageKept":
        return StageKept({i: torch.cat([k.relu_bits[i] for k in parts]) for i in parts[0].relu_bits},
                         {i: torch.cat([k.pool_indices[i] for k in parts]) for i in parts[0].pool_indices})


_plans: "weakref.WeakKeyDictionary[QGraph, tuple[Stage, ...] | None]" = weakref.WeakKeyDictionary()
_off = False


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within the block, the golden model runs layer by layer in model.py (tests compare the two)."""
    global _off
    before, _off = _off, True
    try:
        yield
    finally:
        _off = before


def plan(qg: QGraph) -> tuple[Stage, ...] | None:
    """The network as native stages, or None where it cannot run on them (model.py runs it then)."""
    if _off or native.library() is None:
        return None
    if qg not in _plans:
        _plans[qg] = _plan(qg)
    return _plans[qg]


def _fits(qg: QGraph) -> bool:
    widths = [qg.input_fmt.width, qg.seed_fmt.width]
    for q in qg.layers:
        widths += [q.in_fmt.width, q.out_fmt.width] + ([q.weight_fmt.width] if q.weight_fmt else [])
    for fmts in qg.grad_formats.values():
        widths += [f.width for f in fmts]
    return native.fits(*widths)


def _plan(qg: QGraph) -> tuple[Stage, ...] | None:
    if not _fits(qg):
        return None
    layers = [q.layer for q in qg.layers]
    shape = tuple(qg.graph.input_shape)
    stages: list[Stage] = []
    i, map_shape = 0, None
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Flatten):
            if map_shape is not None or len(shape) != 3:
                return None
            map_shape, shape, i = shape, tuple(layer.out_shape), i + 1
            continue
        if not isinstance(layer, (Conv2d, Linear)) or (isinstance(layer, Conv2d) and map_shape is not None):
            return None
        if isinstance(layer, Conv2d) and (layer.uneven or layer.dilated):  # the layer-by-layer path frames or
            # spreads it
            return None
        relu = i + 1 if i + 1 < len(layers) and isinstance(layers[i + 1], ReLU) else None
        after = (relu if relu is not None else i) + 1
        pool = None
        if isinstance(layer, Conv2d) and after < len(layers) and isinstance(layers[after], MaxPool2d):
            pool = after
            if layers[pool].kernel[0] * layers[pool].kernel[1] > 256:
                return None
        stage = Stage(i, relu, pool, map_shape)
        stages.append(stage)
        shape, i, map_shape = tuple(layers[stage.last].out_shape), stage.last + 1, None
    if len(shape) != 1 or map_shape is not None:
        return None
    return tuple(stages)


def _geometry(layer: Conv2d) -> dict:
    return {"out_hw": tuple(layer.out_shape[1:]), "stride": tuple(layer.stride), "padding": tuple(layer.padding)}


def _pool(layer: MaxPool2d | None) -> dict | None:
    if layer is None:
        return None
    return {"kernel": tuple(layer.kernel), "stride": tuple(layer.stride), "out_hw": tuple(layer.out_shape[1:])}


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) integers of at most 16 bits as int16 (N, H, W, C); vectors (N, F) as int16."""
    return native.to_channels_last(x) if x.dim() == 4 else x.to(torch.int16).contiguous()


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """Integers (N, H, W, C) back to int64 (N, C, H, W); vectors to int64."""
    if x.dim() != 4:
        return x.to(torch.int64).contiguous()
    if x.dtype == torch.int16:
        return native.to_channels_first(x)
    return x.permute(0, 3, 1, 2).to(torch.int64).contiguous()


def forward(qg: QGraph, stages: tuple[Stage, ...], x16: torch.Tensor, counts, keep_relu: bool
            ) -> tuple[torch.Tensor, StageKept]:
    """int16 logits (N, classes) of int16 channels-last inputs, and what the backward pass needs.

    ``counts``: a Counter that gets the saturations by tensor name.
    """
    kept = StageKept()
    x = x16
    for st in stages:
        q = qg.layers[st.layer]
        layer = q.layer
        out = native.Requant(q.acc_frac - q.out_fmt.frac, q.out_fmt)
        bias = q.bias << q.bias_shift
        relu, keep = st.relu is not None, keep_relu and st.relu is not None
        if isinstance(layer, Conv2d):
            x, bits, index, saturated = native.conv_forward(x, q.weight, bias, _geometry(layer), out, relu, keep,
                                                            _pool(qg.layers[st.pool].layer if st.pool else None))
            if index is not None:
                kept.pool_indices[st.pool] = index
        else:
            x, bits, saturated = native.linear_forward(x.reshape(x.shape[0], -1), q.weight, st.map_shape, bias, out,
                                                       relu, keep)
        if bits is not None:
            kept.relu_bits[st.relu] = bits
        if saturated:
            counts[layer.name] += saturated
    return x, kept


MODE_CODES = {ReluBackward.MASK: 0, ReluBackward.GUIDED: 1, ReluBackward.DECONV: 2}


def backward(qg: QGraph, stages: tuple[Stage, ...], kept: StageKept, target: torch.Tensor, mode: ReluBackward,
             counts) -> torch.Tensor:
    """int16 input gradient (channels last) of the target logits, from a one-hot seed of 1.0."""
    n = target.shape[0]
    g = torch.zeros((n, qg.graph.num_classes), dtype=torch.int16)
    g[torch.arange(n), target] = 1 << qg.seed_fmt.frac
    code = MODE_CODES[mode]
    for st in reversed(stages):
        q = qg.layers[st.layer]
        layer = q.layer
        g_out, g_in = qg.grad_fmt(mode, st.layer + 1), qg.grad_fmt(mode, st.layer)
        out = native.Requant(g_out.frac + q.weight_fmt.frac - g_in.frac, g_in)
        relu = st.relu is not None
        bits = kept.relu_bits.get(st.relu) if relu and mode is not ReluBackward.DECONV else None
        if isinstance(layer, Conv2d):
            pool = qg.layers[st.pool].layer if st.pool is not None else None
            pool_out = None
            if pool is not None:
                p_out, p_in = qg.grad_fmt(mode, st.pool + 1), qg.grad_fmt(mode, st.pool)
                pool_out = native.Requant(p_out.frac - p_in.frac, p_in)
            g = g.reshape(n, *qg.layers[st.last].layer.out_shape[1:], qg.layers[st.last].layer.out_shape[0])
            g, saturated, pool_saturated = native.conv_backward(
                g, q.weight, _geometry(layer), tuple(layer.in_shape[1:]), out, relu, code, bits, _pool(pool),
                kept.pool_indices.get(st.pool), pool_out)
            if pool_saturated:
                counts[f"{pool.name}.grad"] += pool_saturated
        else:
            g, saturated = native.linear_backward(g.reshape(n, -1), q.weight, st.map_shape, out, relu, code, bits)
            if st.map_shape is not None:
                c, h, w = st.map_shape
                g = g.reshape(n, h, w, c)
        if saturated:
            counts[f"{layer.name}.grad"] += saturated
    return g


def integrated_gradients_sum(qg: QGraph, stages: tuple[Stage, ...], x_q: torch.Tensor, base_q: torch.Tensor,
                             target: torch.Tensor, alphas: torch.Tensor, weights: torch.Tensor, alpha_frac: int,
                             per_pass: int, counts) -> torch.Tensor:
    """sum over steps k of weights[k] * (input gradient at the path point of step k), int64 channels first.

    The path point of step k is base + alphas[k] (x - base) (fraction alpha_frac), requantized to the input
    format (saturations under 'ig_path'); path image j is step j // n of image j % n, and a pass takes a
    run of them, as in model.py.
    """
    n = x_q.shape[0]
    steps = alphas.shape[0]
    x16, base16 = channels_last(x_q), channels_last(base_q)
    total = torch.zeros(x16.shape, dtype=torch.int64)
    to_input = native.Requant(alpha_frac, qg.input_fmt)
    for j0 in range(0, steps * n, per_pass):
        j = torch.arange(j0, min(steps * n, j0 + per_pass))
        step, image = j // n, j % n
        points, saturated = native.ig_points(x16, base16, image, alphas[step], alpha_frac, to_input)
        if saturated:
            counts["ig_path"] += saturated
        _, kept = forward(qg, stages, points, counts, keep_relu=True)
        g = backward(qg, stages, kept, target[image], ReluBackward.MASK, counts)
        native.ig_accumulate(total, g, image, weights[step])
    return channels_first(total)


def reference_layout(kept: StageKept) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """``kept`` in model.py's layout: bool ReLU bits and pool taps, channels first."""
    bits = {i: t.permute(0, 3, 1, 2).bool() if t.dim() == 4 else t.bool() for i, t in kept.relu_bits.items()}
    taps = {i: t.permute(0, 3, 1, 2).contiguous() for i, t in kept.pool_indices.items()}
    return bits, taps


def activation_bytes(qg: QGraph) -> int:
    """Bytes of the widest int16 activation of one image."""
    return 2 * max([math.prod(qg.graph.input_shape)] + [math.prod(layer.out_shape) for layer in qg.graph.layers])
