"""The golden model: bit-accurate integer execution of a QGraph, forward and backward.

(This module runs chains of the engine's layers; ``dag`` runs every other graph, and the
Grad-CAM methods, with the same rules; ``predict`` and ``attribute`` pick the module.)

This is the reference every other executor must equal bit for bit. This module states it
layer by layer on int64 tensors; multiply-accumulate runs in ``kernels`` (exact products, the
argument written there; the 48-bit accumulator bound is checked when a network is quantized).
Where every operand has at most 16 bits and the layers fall into stages (a convolution with
its ReLU and max-pool, a linear layer with its ReLU), ``stages`` runs the same computation on
fused native kernels, many times faster; tests hold the two to the same bits and saturation
counts. Between the passes only ReLU bits and max-pool indices are kept (plus the input image
where a method needs it).

Decisions after a convolution or fully connected layer are taken on its wide
accumulator, as the engine's write-back unit does: the ReLU bit is [acc > 0] and a
max-pool that follows a convolution (with or without the ReLU between) ranks its window
by max(acc, 0) or acc. Requantization and
ReLU are monotonic, so every stored value is the same as deciding on the rounded
values; what changes is that near-ties and near-zeros keep their true order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from xaihls.frontend.ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, dilate_kernel
from xaihls import executor
from xaihls.golden import dag, kernels, stages
from xaihls.golden.stages import StageKept
from xaihls.methods import PostProcess, ReluBackward, get_method, ig_constants
from xaihls.numerics import FixedFormat
from xaihls.quant.qgraph import QGraph, QLayer
from xaihls.executor import (Capabilities, RunArgs, RunResult, attribution_format, check_batch, check_target,
                             quantize_baseline)


@dataclass
class Saturations:
    """Saturation events per tensor, by name (``layer``, ``layer.grad``, ``input``, ...)."""

    counts: Counter = field(default_factory=Counter)

    def clip(self, wide: torch.Tensor, fmt: FixedFormat, where: str) -> torch.Tensor:
        clipped, n = kernels.saturate_counted(wide, fmt)
        if n:
            self.counts[where] += n
        return clipped

    def requantize(self, acc: torch.Tensor, acc_frac: int, fmt: FixedFormat, where: str) -> torch.Tensor:
        return self.clip(kernels.round_shift(acc, acc_frac - fmt.frac), fmt, where)


@dataclass
class Kept:
    """What the forward pass keeps for the backward pass: ReLU bits and pool indices only."""

    relu_bits: dict[int, torch.Tensor] = field(default_factory=dict)
    pool_indices: dict[int, torch.Tensor] = field(default_factory=dict)

    def images(self, start: int, stop: int) -> "Kept":
        """What was kept for images start..stop-1 (views)."""
        return Kept({i: t[start:stop] for i, t in self.relu_bits.items()},
                    {i: t[start:stop] for i, t in self.pool_indices.items()})


def _window(layer) -> int:
    return layer.kernel[0] * layer.kernel[1]


def _scatter_windows(per_position: torch.Tensor, layer) -> torch.Tensor:
    """(N, C, OH, OW, window) values back onto (N, C, H, W), summing where windows overlap.

    Integer adds, one per kernel tap: exact.
    """
    return kernels.scatter_windows(per_position, layer.kernel, layer.stride, layer.in_shape[1:])


def _layer_forward(q: QLayer, i: int, x: torch.Tensor, kept: Kept, sat: Saturations, keep_relu: bool,
                   order: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Layer i's integer output, and the wide values that decide a following ReLU bit or argmax."""
    layer = q.layer
    if isinstance(layer, Conv2d):
        weight = q.weight
        if layer.dilated:  # as its spread: the same sums
            weight, layer = dilate_kernel(weight, layer.dilation), layer.spread()
        padding = layer.padding
        if layer.uneven:  # a zero pad folded in: the input framed as far as the windows reach
            x, padding = F.pad(x, layer.frame), (0, 0)
        acc = kernels.conv2d(x, weight, layer.stride, padding, (q.in_fmt.width, q.weight_fmt.width),
                             q.bias << q.bias_shift)
        return sat.requantize(acc, q.acc_frac, q.out_fmt, layer.name), acc
    if isinstance(layer, Linear):
        acc = kernels.linear(x, q.weight, (q.in_fmt.width, q.weight_fmt.width), q.bias << q.bias_shift)
        return sat.requantize(acc, q.acc_frac, q.out_fmt, layer.name), acc
    if isinstance(layer, ReLU):
        if keep_relu:
            kept.relu_bits[i] = (x if order is None else order) > 0
        return x.clamp(min=0), None if order is None else order.clamp(min=0)
    if isinstance(layer, MaxPool2d):
        out, index = kernels.max_pool(x, order, layer.kernel, layer.stride)  # first maximum in raster order on ties
        kept.pool_indices[i] = index.to(torch.uint8 if _window(layer) <= 256 else torch.int32)
        return out, None
    if isinstance(layer, AvgPool2d):
        sums = kernels.window_sum(x, layer.kernel, layer.stride)
        return sat.requantize(sums * q.weight[0], q.acc_frac, q.out_fmt, layer.name), None
    if isinstance(layer, Flatten):
        return x.reshape(x.shape[0], -1), None
    raise AssertionError(f"no forward for {type(layer).__name__}")


def _layer_backward(
    qg: QGraph, i: int, g: torch.Tensor, mode: ReluBackward, kept: Kept, sat: Saturations
) -> torch.Tensor:
    """Gradient at layer i's input from the gradient at its output (formats of ``mode``)."""
    q = qg.layers[i]
    layer = q.layer
    g_out_fmt, g_in_fmt = qg.grad_fmt(mode, i + 1), qg.grad_fmt(mode, i)
    where = f"{layer.name}.grad"
    if isinstance(layer, Conv2d):
        weight = q.weight
        if layer.dilated:  # as its spread: the same sums
            weight, layer = dilate_kernel(weight, layer.dilation), layer.spread()
        _, h, w = layer.in_shape
        _, oh, ow = layer.out_shape
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
        bits = (g_out_fmt.width, q.weight_fmt.width)
        if layer.uneven:  # the gradient at the framed input, the frame cut off
            acc = F.pad(kernels.conv_transpose2d(g, weight, layer.stride, (0, 0), (0, 0), bits),
                        [-v for v in layer.frame])
        else:
            extra = (h - ((oh - 1) * sh - 2 * ph + kh), w - ((ow - 1) * sw - 2 * pw + kw))
            acc = kernels.conv_transpose2d(g, weight, layer.stride, layer.padding, extra, bits)
        return sat.requantize(acc, g_out_fmt.frac + q.weight_fmt.frac, g_in_fmt, where)
    if isinstance(layer, Linear):
        acc = kernels.linear_transposed(g, q.weight, (g_out_fmt.width, q.weight_fmt.width))
        return sat.requantize(acc, g_out_fmt.frac + q.weight_fmt.frac, g_in_fmt, where)
    if isinstance(layer, ReLU):
        if mode is ReluBackward.DECONV:
            return g.clamp(min=0)
        passed = g * kept.relu_bits[i]
        return passed.clamp(min=0) if mode is ReluBackward.GUIDED else passed
    if isinstance(layer, MaxPool2d):
        routed = kernels.max_pool_backward(g, kept.pool_indices[i], layer.kernel, layer.stride, layer.in_shape[1:])
        return sat.requantize(routed, g_out_fmt.frac, g_in_fmt, where)
    if isinstance(layer, AvgPool2d):
        spread = (g * q.weight[0])[..., None].expand(*g.shape, _window(layer))
        return sat.requantize(_scatter_windows(spread, layer), g_out_fmt.frac + q.weight_fmt.frac, g_in_fmt, where)
    if isinstance(layer, Flatten):
        return g.reshape(g.shape[0], *layer.in_shape)
    raise AssertionError(f"no backward for {type(layer).__name__}")


PASS_BYTES = 4 << 20
"""Largest int64 activation of one pass: a batch goes through the layers in passes of this size.

Memory and speed, not results (every image is computed alone). Larger passes cost page
faults: glibc maps allocations of 32 MB and more afresh every time.
"""


def images_per_pass(qg: QGraph) -> int:
    """Images per forward/backward pass: the widest int64 activation within ``PASS_BYTES``."""
    widest = max([math.prod(qg.graph.input_shape)] + [math.prod(layer.out_shape) for layer in qg.graph.layers])
    return max(1, PASS_BYTES // (8 * widest))


def _images_per_pass(qg: QGraph) -> int:
    """Images per pass of whichever path runs ``qg`` (native stages hold int16 activations)."""
    if stages.plan(qg) is not None:
        return max(1, PASS_BYTES // stages.activation_bytes(qg))
    return images_per_pass(qg)


def forward(qg: QGraph, x_q: torch.Tensor, sat: Saturations, keep_relu: bool = True) -> tuple[torch.Tensor, Kept]:
    """Integer logits of quantized inputs, and what the backward pass needs (in passes of images)."""
    logits, kept = _run_forward(qg, x_q, sat, keep_relu)
    if isinstance(kept, StageKept):
        kept = Kept(*stages.reference_layout(kept))
    return logits, kept


def _run_forward(qg: QGraph, x_q: torch.Tensor, sat: Saturations, keep_relu: bool
                 ) -> tuple[torch.Tensor, Kept | StageKept]:
    """``forward`` on native stages where the network allows (what is kept then in their layout)."""
    plan = stages.plan(qg)
    if plan is not None:
        per_pass = _images_per_pass(qg)
        x16 = stages.channels_last(x_q)
        passes = [stages.forward(qg, plan, x16[i:i + per_pass], sat.counts, keep_relu)
                  for i in range(0, x16.shape[0], per_pass)]
        if len(passes) == 1:
            return passes[0][0].to(torch.int64), passes[0][1]
        return torch.cat([logits for logits, _ in passes]).to(torch.int64), StageKept.cat([k for _, k in passes])
    per_pass = images_per_pass(qg)
    if x_q.shape[0] <= per_pass:
        return _forward(qg, x_q, sat, keep_relu)
    passes = [_forward(qg, x_q[i:i + per_pass], sat, keep_relu) for i in range(0, x_q.shape[0], per_pass)]
    kept = Kept({i: torch.cat([k.relu_bits[i] for _, k in passes]) for i in passes[0][1].relu_bits},
                {i: torch.cat([k.pool_indices[i] for _, k in passes]) for i in passes[0][1].pool_indices})
    return torch.cat([logits for logits, _ in passes]), kept


def _forward(qg: QGraph, x_q: torch.Tensor, sat: Saturations, keep_relu: bool) -> tuple[torch.Tensor, Kept]:
    kept = Kept()
    order = None
    for i, q in enumerate(qg.layers):
        x_q, order = _layer_forward(q, i, x_q, kept, sat, keep_relu, order)
    return x_q, kept


def backward(qg: QGraph, kept: Kept | StageKept, target: torch.Tensor, mode: ReluBackward,
             sat: Saturations) -> torch.Tensor:
    """Integer input gradient of the target logits, from a one-hot seed of 1.0 (in passes of images).

    ``kept``: what ``forward`` kept (or, internally, what the native stages kept).
    """
    if isinstance(kept, StageKept):
        plan, per_pass = stages.plan(qg), _images_per_pass(qg)
        g = torch.cat([stages.backward(qg, plan, kept.images(i, i + per_pass), target[i:i + per_pass], mode,
                                       sat.counts) for i in range(0, target.shape[0], per_pass)])
        return stages.channels_first(g)
    per_pass = images_per_pass(qg)
    if target.shape[0] <= per_pass:
        return _backward(qg, kept, target, mode, sat)
    return torch.cat([_backward(qg, kept.images(i, i + per_pass), target[i:i + per_pass], mode, sat)
                      for i in range(0, target.shape[0], per_pass)])


def _backward(qg: QGraph, kept: Kept, target: torch.Tensor, mode: ReluBackward, sat: Saturations) -> torch.Tensor:
    seed = torch.zeros((target.shape[0], qg.graph.num_classes), dtype=torch.int64)
    seed[torch.arange(target.shape[0]), target] = 1 << qg.seed_fmt.frac
    g = seed
    for i in range(len(qg.layers) - 1, -1, -1):
        g = _layer_backward(qg, i, g, mode, kept, sat)
    return g


def predicted_class(logits_q: torch.Tensor) -> torch.Tensor:
    """The first maximum of the integer logits (what the hardware's argmax returns)."""
    return logits_q.argmax(dim=1)


GoldenResult = RunResult  # the name earlier versions used


def quantize_input(qg: QGraph, x: torch.Tensor, sat: Saturations) -> torch.Tensor:
    """The input codes; saturated values are counted in ``sat`` under 'input'."""
    x_q, saturated = executor.quantize_input(qg, x)
    if saturated:
        sat.counts["input"] += saturated
    return x_q


check_compiled = executor.check_method
ig_settings = executor.check_steps


def predict(qg: QGraph, x: torch.Tensor) -> RunResult:
    sat = Saturations()
    x_q = quantize_input(qg, check_batch(qg, x), sat)
    return _predict(qg, x_q, sat)


def _predict(qg: QGraph, x_q: torch.Tensor, sat: Saturations) -> RunResult:
    if dag.needed(qg):
        logits = dag.predict(qg, x_q, sat, images_per_pass(qg))
        return RunResult(logits, qg.logits_fmt, predicted_class(logits), None, None, dict(sat.counts))
    logits, _ = _run_forward(qg, x_q, sat, keep_relu=False)
    return RunResult(logits, qg.logits_fmt, predicted_class(logits), None, None, dict(sat.counts))


def attribute(
    qg: QGraph,
    x: torch.Tensor,
    method: str,
    target=None,
    steps: int | None = None,
    baseline: torch.Tensor | None = None,
    rule: str | None = None,
) -> RunResult:
    """Attribution of ``method`` for the target logit (predicted class by default)."""
    check_compiled(qg, method)
    x = check_batch(qg, x)
    target = check_target(qg, target, x.shape[0])
    sat = Saturations()
    x_q = quantize_input(qg, x, sat)
    if get_method(method).post is PostProcess.INTEGRATED:
        steps, rule = ig_settings(qg, steps, rule)
        return _attribute(qg, x_q, method, target, sat, steps, rule, quantize_baseline(qg, baseline, x_q))
    return _attribute(qg, x_q, method, target, sat)


def _attribute(qg: QGraph, x_q: torch.Tensor, method: str, target: torch.Tensor | None, sat: Saturations,
               steps: int | None = None, rule: str | None = None, base_q: torch.Tensor | None = None) -> RunResult:
    """``attribute`` of checked arguments: the input codes and, for integrated gradients, checked steps
    and rule and the baseline's codes."""
    if dag.needed(qg, method):
        logits, target, attr, fmt = dag.attribute(qg, x_q, method, target, sat, images_per_pass(qg), steps, rule, base_q)
        return RunResult(logits, qg.logits_fmt, target, attr, fmt, dict(sat.counts))
    m = get_method(method)
    mode = m.relu_backward
    logits, kept = _run_forward(qg, x_q, sat, keep_relu=mode is not ReluBackward.DECONV)
    if target is None:
        target = predicted_class(logits)

    if m.post is PostProcess.INTEGRATED:
        attr, fmt = _integrated_gradients(qg, x_q, target, steps, rule, base_q, sat)
        return RunResult(logits, qg.logits_fmt, target, attr, fmt, dict(sat.counts))

    g = backward(qg, kept, target, mode, sat)
    g_fmt = qg.grad_fmt(mode, 0)
    fmt = attribution_format(qg, method)
    if m.post is PostProcess.ABS:
        attr = sat.clip(g.abs(), fmt, "attribution")
    elif m.post is PostProcess.TIMES_INPUT:
        attr = sat.requantize(x_q * g, qg.input_fmt.frac + g_fmt.frac, fmt, "attribution")
    else:
        attr = g
    return RunResult(logits, qg.logits_fmt, target, attr, fmt, dict(sat.counts))


def _integrated_gradients(qg: QGraph, x_q, target, steps: int, rule: str, base_q, sat: Saturations):
    c = ig_constants(steps, rule, qg.width)
    n = x_q.shape[0]
    diff = x_q - base_q  # one bit wider than the input format, exact
    in_fmt = qg.input_fmt
    mode = ReluBackward.MASK
    alphas = torch.tensor(c.alphas, dtype=torch.int64)
    weights = torch.tensor(c.weights, dtype=torch.int64)
    # Path image j is step j // n of image j % n; a pass takes a run of them, whatever the steps.
    per_pass = _images_per_pass(qg)
    plan = stages.plan(qg)
    if plan is not None:
        weighted_sum = stages.integrated_gradients_sum(qg, plan, x_q, base_q, target, alphas, weights, c.alpha_frac,
                                                       per_pass, sat.counts)
    else:
        weighted_sum = torch.zeros_like(x_q)
        for j0 in range(0, steps * n, per_pass):
            j = torch.arange(j0, min(steps * n, j0 + per_pass))
            step, image = j // n, j % n
            alpha = alphas[step].view(-1, 1, 1, 1)
            point_acc = (base_q[image] << c.alpha_frac) + alpha * diff[image]
            points = sat.requantize(point_acc, c.alpha_frac + in_fmt.frac, in_fmt, "ig_path")
            _, kept = _forward(qg, points, sat, True)
            g = _backward(qg, kept, target[image], mode, sat)
            weighted_sum.index_add_(0, image, g * weights[step].view(-1, 1, 1, 1))
    summed_fmt = qg.attribution_formats.ig_summed_gradient
    summed = sat.requantize(
        weighted_sum, c.weight_frac + qg.grad_fmt(mode, 0).frac, summed_fmt, "ig_sum"
    )
    fmt = qg.attribution_formats.integrated_gradients
    attr = sat.requantize(diff * summed, in_fmt.frac + summed_fmt.frac, fmt, "attribution")
    return attr, fmt


class GoldenExecutor:
    """The reference: every tensor on the integer grid, no Program, no limits but the accumulator's."""

    capabilities = Capabilities("golden", needs_plan=False)

    def run(self, qg: QGraph, plan, args: RunArgs) -> RunResult:
        sat = Saturations()  # the arguments come checked and quantized (executor.prepare)
        if args.input_saturations:
            sat.counts["input"] += args.input_saturations
        if args.method is None:
            return _predict(qg, args.x_q, sat)
        return _attribute(qg, args.x_q, args.method, args.target, sat, args.steps, args.rule, args.baseline_q)


EXECUTOR = GoldenExecutor()
