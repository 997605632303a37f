"""The golden model on a DAG: bit-accurate integer execution of any QGraph, forward and backward.

model.py runs chains of the engine's layers (on native stages where it can); this module runs
every graph the front end makes: tensors read by several layers, residual adds, grouped and
depthwise convolutions, ReLU6, per-channel affines, pools with padding and ceil mode, and the
Grad-CAM methods. On a chain of the engine's layers it computes the same integers and the same
saturation counts as model.py (tests hold the two to it). Every product is exact (``kernels``);
the rounding points are these, each ``numerics`` round half up then saturate:

- Forward, per layer, as model.py: a Conv2d (any groups), Linear or ChannelAffine rounds its
  wide accumulator ``x*w + (b << bias_shift)`` once to its output format; an average pool
  rounds ``window sum * reciprocal``. A window's reciprocal is 1/(kh*kw) where all windows are
  whole, else 1/(PyTorch's divisor of that window) (``AvgPool2d.divisors``), each
  quantized in one format. Max-pool padding is -infinity: a padded tap never wins. The ReLU bit
  and a max-pool's ranking are taken on the wide accumulator of a Conv2d/Linear directly before
  (through a ReLU), as model.py does, except that a padded or ceil-mode max-pool, or one after a
  depthwise convolution, ranks its input codes (the engine runs such a pool as a job of its own,
  not in the convolution's write-back); everything else decides on its input codes.
- ReLU6: y = min(max(x, 0), c) with c = 6.0 in the input format (exact for a fraction >= -1;
  else 6.0 rounded half up); it keeps [0 < x < c] and [x < c] for the backward pass.
- Add: the two operands are aligned exactly to the finer of their two fractions (the layer's
  ``in`` format; left shifts, no rounding), added exactly, and the sum is rounded once to ``out``.
- Concat: each operand rounded half up (or shifted left) to the output's format, saturated, and
  the channels put one after another; backward, each operand its channels of the gradient,
  unrounded (its gradient format is the output's).
- ChannelSelect: the chosen channels, unrounded (the output's format is the input's); backward,
  each output channel's gradient at the channel it came from, zeros elsewhere, unrounded.
- Backward: each layer sends back to each tensor it reads a wide, unrounded contribution (a
  transposed product, a routed or masked gradient); at a tensor they are aligned to the finest
  fraction among them (exact left shifts), summed, and requantized once to the tensor's
  gradient format. Saturations count under ``<layer>.grad`` where one layer reads the tensor
  (model.py's names) and ``<tensor>.out.grad`` where several do.
- ReLU6 backward: plain g [0 < x < c]; guided g [0 < x < c] [g > 0]; deconvnet max(g, 0) [x < c]
  (a ReLU with the method's rule, then the cap's true gradient; docs/dag.md).
- Grad-CAM (layer tensor k, activations A in its format, true gradient G at it in
  ``grad[MASK][k]``): channel weights w_c = round(sum_hw G[c] * r) to ``grad_cam_weights``, r
  = 1/(h*w) quantized to the finest 16-bit format holding it; map = round(max(sum_c w_c A[c],
  0)) to ``grad_cam`` (the ReLU on the wide sum, which equals max(round(sum), 0); saturations are
  counted on the rounded sum, before the ReLU, as a convolution's are); nearest upsampling to the input size by
  PyTorch's source indices (``reference.nearest_index``: a gather, no rounding). Guided Grad-CAM
  = round(guided-backprop input gradient * upsampled map) to ``guided_grad_cam``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from xaihls.frontend.ir import (Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Linear,
                                MaxPool2d, ReLU, ReLU6, dilate_kernel, per_channel)
from xaihls.executor import attribution_format
from xaihls.frontend.reference import upsample_nearest
from xaihls.golden import kernels
from xaihls.methods import LAYER_METHODS, PostProcess, ReluBackward, get_method, ig_constants
from xaihls.numerics import FixedFormat, quantize
from xaihls.quant.qgraph import QGraph

NEVER_WINS = -(1 << 62)
"""A max-pool's padding value: below every code and every accumulator (|acc| < 2^48)."""


def needed(qg: QGraph, method: str | None = None) -> bool:
    """Whether ``qg`` (and ``method``) need this module: anything model.py's chain path does not run."""
    if method is not None and method in LAYER_METHODS:
        return True
    if not qg.graph.is_chain:
        return True
    for q in qg.layers:
        layer = q.layer
        if isinstance(layer, (ReLU6, Add, ChannelAffine, ChannelSelect)):
            return True
        if isinstance(layer, Conv2d) and layer.groups != 1:
            return True
        if isinstance(layer, (MaxPool2d, AvgPool2d)) and not layer.is_plain:
            return True
    return False


@dataclass
class Kept:
    """What the forward pass keeps, by layer index: ReLU bits, ReLU6 bits ([0 < x < c], [x < c]),
    max-pool taps; and, by tensor index, the tensors a method reads (the Grad-CAM layer's)."""

    relu_bits: dict[int, torch.Tensor] = field(default_factory=dict)
    relu6_bits: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    pool_indices: dict[int, torch.Tensor] = field(default_factory=dict)
    tensors: dict[int, torch.Tensor] = field(default_factory=dict)


def _canvas(x: torch.Tensor, layer, fill: int) -> torch.Tensor:
    """x placed at (padding) on a ``fill`` canvas exactly as large as the windows cover."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    (_, oh, ow), (h, w) = layer.out_shape, x.shape[2:]
    ch, cw = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    out = torch.full((*x.shape[:2], ch, cw), fill, dtype=x.dtype)
    th, tw = min(h, ch - ph), min(w, cw - pw)  # a floor-mode window may leave the last rows out
    out[:, :, ph:ph + th, pw:pw + tw] = x[:, :, :th, :tw]
    return out


def _uncanvas(g: torch.Tensor, layer) -> torch.Tensor:
    """The input's part of a gradient on the canvas (zeros where no window reached)."""
    (ph, pw), (_, h, w) = layer.padding, layer.in_shape
    out = torch.zeros((*g.shape[:2], h, w), dtype=g.dtype)
    th, tw = min(h, g.shape[2] - ph), min(w, g.shape[3] - pw)
    out[:, :, :th, :tw] = g[:, :, ph:ph + th, pw:pw + tw]
    return out


def _grouped(terms: int, bits: tuple[int, int]) -> bool:
    return "float64" in kernels.exact_paths(terms, *bits)


def conv2d(x: torch.Tensor, weight: torch.Tensor, layer: Conv2d, bits: tuple[int, int],
           bias: torch.Tensor | None) -> torch.Tensor:
    """Exact int64 convolution of any ``groups`` (+ bias); an uneven one (a zero pad folded in) on its
    framed input."""
    if layer.dilated:  # as its spread: the same sums
        weight, layer = dilate_kernel(weight, layer.dilation), layer.spread()
    padding = layer.padding
    if layer.uneven:
        x, padding = F.pad(x, layer.frame), (0, 0)
    if layer.groups == 1:
        return kernels.conv2d(x, weight, layer.stride, padding, bits, bias)
    if _grouped(layer.fan_in, bits):  # float64 sums of integers below 2^53: exact
        acc = F.conv2d(x.double(), weight.double(), None, layer.stride, padding, groups=layer.groups)
        acc = acc.round().to(torch.int64)
    else:
        xs, ws = x.chunk(layer.groups, 1), weight.chunk(layer.groups, 0)
        acc = torch.cat([kernels.conv2d(a, b, layer.stride, padding, bits) for a, b in zip(xs, ws)], 1)
    return acc if bias is None else acc + bias[:, None, None]


def conv_transpose2d(g: torch.Tensor, weight: torch.Tensor, layer: Conv2d, bits: tuple[int, int]) -> torch.Tensor:
    """Exact int64 input gradient of a convolution of any ``groups``; an uneven one's as the gradient at
    its framed input, the frame cut off."""
    if layer.dilated:  # as its spread: the same sums
        weight, layer = dilate_kernel(weight, layer.dilation), layer.spread()
    if layer.uneven:
        return F.pad(_conv_transpose2d(g, weight, layer, (0, 0), (0, 0), bits), [-v for v in layer.frame])
    _, h, w = layer.in_shape
    _, oh, ow = layer.out_shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    extra = (h - ((oh - 1) * sh - 2 * ph + kh), w - ((ow - 1) * sw - 2 * pw + kw))
    return _conv_transpose2d(g, weight, layer, layer.padding, extra, bits)


def _conv_transpose2d(g: torch.Tensor, weight: torch.Tensor, layer: Conv2d, padding: tuple[int, int],
                      extra: tuple[int, int], bits: tuple[int, int]) -> torch.Tensor:
    if layer.groups == 1:
        return kernels.conv_transpose2d(g, weight, layer.stride, padding, extra, bits)
    terms = layer.out_channels // layer.groups * layer.kernel[0] * layer.kernel[1]
    if _grouped(terms, bits):
        acc = F.conv_transpose2d(g.double(), weight.double(), None, layer.stride, padding, extra,
                                 groups=layer.groups)
        return acc.round().to(torch.int64)
    gs, ws = g.chunk(layer.groups, 1), weight.chunk(layer.groups, 0)
    return torch.cat([kernels.conv_transpose2d(a, b, layer.stride, padding, extra, bits)
                      for a, b in zip(gs, ws)], 1)


def relu6_cap(fmt: FixedFormat) -> int:
    """6.0 in ``fmt`` (round half up, saturated)."""
    return int(quantize(torch.tensor(6.0, dtype=torch.float64), fmt))


def _recips(q) -> torch.Tensor:
    """An average pool's reciprocal codes: a scalar, or the (OH, OW) map broadcast over (N, C)."""
    return q.weight[0] if q.weight.numel() == 1 else q.weight


def _forward_layer(qg: QGraph, i: int, xs: list[torch.Tensor], ranks: list, kept: Kept, sat, keep_relu: bool):
    """Layer i's output codes and the wide values that rank it (a Conv2d/Linear's accumulator)."""
    q = qg.layers[i]
    layer = q.layer
    x, rank = xs[0], ranks[0]
    if isinstance(layer, Conv2d):
        acc = conv2d(x, q.weight, layer, (q.in_fmt.width, q.weight_fmt.width), q.bias << q.bias_shift)
        return sat.requantize(acc, q.acc_frac, q.out_fmt, layer.name), acc
    if isinstance(layer, Linear):
        acc = kernels.linear(x, q.weight, (q.in_fmt.width, q.weight_fmt.width), q.bias << q.bias_shift)
        return sat.requantize(acc, q.acc_frac, q.out_fmt, layer.name), acc
    if isinstance(layer, ChannelAffine):
        acc = x * per_channel(q.weight, x) + per_channel(q.bias << q.bias_shift, x)
        return sat.requantize(acc, q.acc_frac, q.out_fmt, layer.name), None
    if isinstance(layer, ReLU):
        if keep_relu:
            kept.relu_bits[i] = (x if rank is None else rank) > 0
        return x.clamp(min=0), None if rank is None else rank.clamp(min=0)
    if isinstance(layer, ReLU6):
        cap = relu6_cap(q.in_fmt)
        below = x < cap
        kept.relu6_bits[i] = ((x > 0) & below, below)
        return x.clamp(0, cap), None
    if isinstance(layer, MaxPool2d):
        canvas = _canvas(x, layer, NEVER_WINS)
        # the pools the engine fuses into a convolution's write-back rank its accumulator; every other
        # (padded, ceil-mode, after a depthwise conv) is a job of its own and ranks its input codes
        on_acc = rank is not None and qg.graph.pool_ranks_accumulator(i)
        order = _canvas(rank, layer, NEVER_WINS) if on_acc else None
        out, index = kernels.max_pool(canvas, order, layer.kernel, layer.stride)
        kept.pool_indices[i] = index
        return out, None
    if isinstance(layer, AvgPool2d):
        sums = kernels.window_sum(_canvas(x, layer, 0), layer.kernel, layer.stride)
        return sat.requantize(sums * _recips(q), q.acc_frac, q.out_fmt, layer.name), None
    if isinstance(layer, Flatten):
        return x.reshape(x.shape[0], -1), None
    if isinstance(layer, Add):
        total = sum(t << (q.in_fmt.frac - qg.tensor_fmt(k).frac) for t, k in zip(xs, qg.graph.input_tensors[i]))
        return sat.requantize(total, q.in_fmt.frac, q.out_fmt, layer.name), None
    if isinstance(layer, Concat):  # each operand rounded (or shifted) to the output's format
        return torch.cat([sat.requantize(t, qg.tensor_fmt(k).frac, q.out_fmt, layer.name)
                          for t, k in zip(xs, qg.graph.input_tensors[i])], 1), None
    if isinstance(layer, ChannelSelect):  # the input's values in its format (calibrate keeps it)
        return x[:, list(layer.index)], None
    raise AssertionError(f"no forward for {type(layer).__name__}")


def forward(qg: QGraph, x_q: torch.Tensor, sat, keep_relu: bool = True, keep: tuple[int, ...] = ()
            ) -> tuple[torch.Tensor, Kept]:
    """Integer logits of input codes, and what the backward pass (and ``keep``'s tensors) need."""
    graph = qg.graph
    kept = Kept()
    values: dict[int, torch.Tensor] = {0: x_q}
    ranks: dict[int, torch.Tensor | None] = {0: None}
    left = [len(c) for c in graph.consumers]
    for i in range(len(qg.layers)):
        reads = graph.input_tensors[i]
        out, rank = _forward_layer(qg, i, [values[k] for k in reads], [ranks[k] for k in reads], kept, sat,
                                   keep_relu)
        for k in reads:
            left[k] -= 1
            if left[k] == 0 and k not in keep:
                values.pop(k, None)
                ranks.pop(k, None)
        values[i + 1], ranks[i + 1] = out, rank
    kept.tensors = {k: values[k] for k in keep}
    return values[len(qg.layers)], kept


def _backward_layer(qg: QGraph, i: int, g: torch.Tensor, g_fmt: FixedFormat, mode: ReluBackward, kept: Kept
                    ) -> list[tuple[torch.Tensor, int]]:
    """What layer i sends back to each tensor it reads: (wide gradient, its fraction), unrounded."""
    q = qg.layers[i]
    layer = q.layer
    f = g_fmt.frac
    if isinstance(layer, Conv2d):
        return [(conv_transpose2d(g, q.weight, layer, (g_fmt.width, q.weight_fmt.width)), f + q.weight_fmt.frac)]
    if isinstance(layer, Linear):
        return [(kernels.linear_transposed(g, q.weight, (g_fmt.width, q.weight_fmt.width)), f + q.weight_fmt.frac)]
    if isinstance(layer, ChannelAffine):
        return [(g * per_channel(q.weight, g), f + q.weight_fmt.frac)]
    if isinstance(layer, ReLU):
        if mode is ReluBackward.DECONV:
            return [(g.clamp(min=0), f)]
        passed = g * kept.relu_bits[i]
        return [(passed.clamp(min=0) if mode is ReluBackward.GUIDED else passed, f)]
    if isinstance(layer, ReLU6):
        inside, below = kept.relu6_bits[i]
        if mode is ReluBackward.DECONV:
            return [(g.clamp(min=0) * below, f)]
        passed = g * inside
        return [(passed.clamp(min=0) if mode is ReluBackward.GUIDED else passed, f)]
    if isinstance(layer, MaxPool2d):
        (kh, kw), (sh, sw), (_, oh, ow) = layer.kernel, layer.stride, layer.out_shape
        canvas_hw = ((oh - 1) * sh + kh, (ow - 1) * sw + kw)
        routed = kernels.max_pool_backward(g, kept.pool_indices[i], layer.kernel, layer.stride, canvas_hw)
        return [(_uncanvas(routed, layer), f)]
    if isinstance(layer, AvgPool2d):
        (kh, kw), (sh, sw), (_, oh, ow) = layer.kernel, layer.stride, layer.out_shape
        canvas_hw = ((oh - 1) * sh + kh, (ow - 1) * sw + kw)
        spread = (g * _recips(q))[..., None].expand(*g.shape, kh * kw)
        return [(_uncanvas(kernels.scatter_windows(spread, layer.kernel, layer.stride, canvas_hw), layer),
                 f + q.weight_fmt.frac)]
    if isinstance(layer, Flatten):
        return [(g.reshape(g.shape[0], *layer.in_shape), f)]
    if isinstance(layer, Add):
        return [(g, f), (g, f)]
    if isinstance(layer, Concat):  # each operand its channels of the gradient
        sizes = [qg.graph.tensor_shape(k)[0] for k in qg.graph.input_tensors[i]]
        return list(zip(torch.split(g, sizes, dim=1), [f] * len(sizes)))
    if isinstance(layer, ChannelSelect):  # each output channel's gradient back to the channel it came from
        placed = torch.zeros((g.shape[0], *layer.in_shape), dtype=g.dtype)
        placed[:, list(layer.index)] = g
        return [(placed, f)]
    raise AssertionError(f"no backward for {type(layer).__name__}")


def _gradient_name(qg: QGraph, k: int) -> str:
    users = qg.graph.consumers[k]
    if len(users) == 1:
        return f"{qg.layers[users[0]].name}.grad"
    return f"{qg.graph.tensor_names[k]}.out.grad"


def _sum_once(qg: QGraph, k: int, parts: list[tuple[torch.Tensor, int]], fmt: FixedFormat, sat) -> torch.Tensor:
    """The contributions to tensor k's gradient aligned to their finest fraction, summed, rounded once."""
    frac = max(f for _, f in parts)
    total = None
    for wide, f in parts:
        if frac - f:
            if int(wide.abs().max()) >= 1 << (62 - (frac - f)):
                raise AssertionError(f"gradient sum at tensor {k} exceeds int64")  # not reachable at 48-bit sums
            wide = wide << (frac - f)
        total = wide.clone() if total is None else total + wide
    return sat.requantize(total, frac, fmt, _gradient_name(qg, k))


def backward(qg: QGraph, kept: Kept, target: torch.Tensor, mode: ReluBackward, sat, stop: int = 0) -> torch.Tensor:
    """Integer gradient at tensor ``stop`` (0: the input) of the target logits, from a one-hot seed of 1.0,
    in ``grad[mode][stop]``."""
    graph = qg.graph
    L = len(qg.layers)
    seed = torch.zeros((target.shape[0], graph.num_classes), dtype=torch.int64)
    seed[torch.arange(target.shape[0]), target] = 1 << qg.seed_fmt.frac
    parts: dict[int, list[tuple[torch.Tensor, int]]] = {}
    g = seed
    for i in range(L - 1, stop - 1, -1):
        if i < L - 1:
            g = _sum_once(qg, i + 1, parts.pop(i + 1), qg.grad_fmt(mode, i + 1), sat)
        sent = _backward_layer(qg, i, g, qg.grad_fmt(mode, i + 1), mode, kept)
        for k, part in zip(graph.input_tensors[i], sent):
            parts.setdefault(k, []).append(part)
    if stop == L:
        return seed
    return _sum_once(qg, stop, parts.pop(stop), qg.grad_fmt(mode, stop), sat)


def _passes(n: int, per_pass: int):
    return [(i, min(n, i + per_pass)) for i in range(0, n, per_pass)]


def predict(qg: QGraph, x_q: torch.Tensor, sat, per_pass: int) -> torch.Tensor:
    """Integer logits, computed in passes of ``per_pass`` images (memory, not results)."""
    return torch.cat([forward(qg, x_q[a:b], sat, keep_relu=False)[0] for a, b in _passes(x_q.shape[0], per_pass)])


def cam_reciprocal(h: int, w: int, width: int) -> tuple[int, FixedFormat]:
    """1/(h*w), the Grad-CAM channel weights' averaging constant: its code in the finest format of
    ``width`` bits that holds it, and that format."""
    fmt = FixedFormat.covering(1.0 / (h * w), width)
    return int(quantize(torch.tensor(1.0 / (h * w), dtype=torch.float64), fmt)), fmt


def _cam(qg: QGraph, x_q: torch.Tensor, target: torch.Tensor | None, sat, guided: bool):
    """Logits, target, and the Grad-CAM map (N, 1, H, W) upsampled (and the guided-backprop gradient)."""
    k = qg.graph.tensor_index(qg.cam_layer)
    fmts = qg.attribution_formats
    logits, kept = forward(qg, x_q, sat, keep_relu=True, keep=(k,))
    if target is None:
        target = logits.argmax(dim=1)
    g = backward(qg, kept, target, ReluBackward.MASK, sat, stop=k)
    acts = kept.tensors[k]
    h, w = acts.shape[2:]
    r, r_fmt = cam_reciprocal(h, w, qg.width)
    weights = sat.requantize(g.sum(dim=(2, 3)) * r, qg.grad_fmt(ReluBackward.MASK, k).frac + r_fmt.frac,
                             fmts.grad_cam_weights, "grad_cam.weights")
    # round(max(acc, 0)) = max(round(acc), 0): rounded first, as a convolution's ReLU is, so that the
    # saturations counted are those of the sum (the engine's map job counts them so)
    acc = (weights[:, :, None, None] * acts).sum(dim=1, keepdim=True)
    cam = sat.requantize(acc, fmts.grad_cam_weights.frac + qg.tensor_fmt(k).frac, fmts.grad_cam, "grad_cam")
    cam = cam.clamp(min=0)
    up = upsample_nearest(cam, tuple(qg.graph.input_shape[1:]))
    guided_g = backward(qg, kept, target, ReluBackward.GUIDED, sat) if guided else None
    return logits, target, up, guided_g


def attribute(qg: QGraph, x_q: torch.Tensor, method: str, target: torch.Tensor | None, sat, per_pass: int,
              steps: int | None = None, rule: str | None = None, base_q: torch.Tensor | None = None):
    """Logits, target, attribution codes and their format (model.py's ``_attribute`` on any graph),
    in passes of ``per_pass`` images."""
    m = get_method(method)
    outs = []
    for a, b in _passes(x_q.shape[0], per_pass):
        t = None if target is None else target[a:b]
        outs.append(_attribute_pass(qg, x_q[a:b], m, t, sat, steps, rule, None if base_q is None else base_q[a:b]))
    logits, targets, attrs = (torch.cat(parts) for parts in zip(*outs))
    return logits, targets, attrs, attribution_format(qg, method)


def _attribute_pass(qg: QGraph, x_q, m, target, sat, steps, rule, base_q):
    mode = m.relu_backward
    fmts = qg.attribution_formats
    if m.post in (PostProcess.GRAD_CAM, PostProcess.GUIDED_GRAD_CAM):
        guided = m.post is PostProcess.GUIDED_GRAD_CAM
        logits, target, up, gb = _cam(qg, x_q, target, sat, guided)
        if not guided:
            return logits, target, up
        prod = gb * up
        attr = sat.requantize(prod, qg.grad_fmt(ReluBackward.GUIDED, 0).frac + fmts.grad_cam.frac,
                              fmts.guided_grad_cam, "attribution")
        return logits, target, attr
    logits, kept = forward(qg, x_q, sat, keep_relu=mode is not ReluBackward.DECONV)
    if target is None:
        target = logits.argmax(dim=1)
    if m.post is PostProcess.INTEGRATED:
        return logits, target, _integrated_gradients(qg, x_q, target, steps, rule, base_q, sat)
    g = backward(qg, kept, target, mode, sat)
    if m.post is PostProcess.ABS:
        attr = sat.clip(g.abs(), qg.grad_fmt(mode, 0), "attribution")
    elif m.post is PostProcess.TIMES_INPUT:
        attr = sat.requantize(x_q * g, qg.input_fmt.frac + qg.grad_fmt(mode, 0).frac, fmts.input_x_gradient,
                              "attribution")
    else:
        attr = g
    return logits, target, attr


def _integrated_gradients(qg: QGraph, x_q, target, steps: int, rule: str, base_q, sat) -> torch.Tensor:
    """As model.py's: path points rounded once to the input format, gradients weighted and summed wide,
    rounded once to ig_summed_gradient, times (x - baseline) rounded to integrated_gradients."""
    c = ig_constants(steps, rule, qg.width)
    in_fmt = qg.input_fmt
    diff = x_q - base_q
    weighted_sum = torch.zeros_like(x_q)
    for k in range(steps):
        point_acc = (base_q << c.alpha_frac) + c.alphas[k] * diff
        points = sat.requantize(point_acc, c.alpha_frac + in_fmt.frac, in_fmt, "ig_path")
        _, kept = forward(qg, points, sat, True)
        weighted_sum += backward(qg, kept, target, ReluBackward.MASK, sat) * c.weights[k]
    summed_fmt = qg.attribution_formats.ig_summed_gradient
    summed = sat.requantize(weighted_sum, c.weight_frac + qg.grad_fmt(ReluBackward.MASK, 0).frac, summed_fmt,
                            "ig_sum")
    return sat.requantize(diff * summed, in_fmt.frac + summed_fmt.frac, qg.attribution_formats.integrated_gradients,
                          "attribution")
