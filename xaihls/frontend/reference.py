"""Float execution of a Graph: forward, and the backward pass of every attribution method.

This is the float twin of the golden model (same layers, same method rules, no
quantization). Calibration reads its tensor ranges; tests compare it with the source
model and with Captum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xaihls.frontend.ir import AvgPool2d, Conv2d, Flatten, Graph, Linear, MaxPool2d, ReLU
from xaihls.methods import PostProcess, ReluBackward, get_method, ig_rule


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) * (g > 0)


class _DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


_RELU = {ReluBackward.MASK: F.relu, ReluBackward.GUIDED: _GuidedReLU.apply, ReluBackward.DECONV: _DeconvReLU.apply}


def _run(graph: Graph, x: torch.Tensor, relu=F.relu, keep: list | None = None) -> torch.Tensor:
    for layer in graph.layers:
        if isinstance(layer, Conv2d):
            x = F.conv2d(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype), layer.stride, layer.padding)
        elif isinstance(layer, Linear):
            x = F.linear(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype))
        elif isinstance(layer, ReLU):
            x = relu(x)
        elif isinstance(layer, MaxPool2d):
            x = F.max_pool2d(x, layer.kernel, layer.stride)
        elif isinstance(layer, AvgPool2d):
            x = F.avg_pool2d(x, layer.kernel, layer.stride)
        elif isinstance(layer, Flatten):
            x = torch.flatten(x, 1)
        if keep is not None:
            if x.requires_grad:
                x.retain_grad()
            keep.append(x)
    return x


def forward_float(graph: Graph, x: torch.Tensor) -> torch.Tensor:
    """Logits of the float graph (equal to the source model up to float rounding)."""
    with torch.no_grad():
        return _run(graph, x)


@dataclass
class FloatTrace:
    """Everything one float attribution pass saw, for calibration and comparison.

    ``activations[i]`` is layers[i]'s output; ``gradients[i]`` is the gradient at
    layers[i]'s input (gradients[0] is the input gradient); ``summed_gradient`` is the
    integrated-gradients weighted sum (None for other methods).
    """

    attribution: torch.Tensor
    logits: torch.Tensor
    activations: list[torch.Tensor]
    gradients: list[torch.Tensor]
    summed_gradient: torch.Tensor | None = None


def _backward_pass(graph: Graph, x: torch.Tensor, target: torch.Tensor, relu_mode: ReluBackward):
    x = x.detach().clone().requires_grad_(True)
    keep: list[torch.Tensor] = []
    logits = _run(graph, x, _RELU[relu_mode], keep)
    logits.gather(1, target[:, None]).sum().backward()
    grads = [x.grad] + [t.grad if t.grad is not None else torch.zeros_like(t) for t in keep[:-1]]
    return logits.detach(), [t.detach() for t in keep], [g.detach() for g in grads]


def float_attribute(
    graph: Graph,
    x: torch.Tensor,
    method: str,
    target: torch.Tensor | None = None,
    steps: int = 32,
    baseline: torch.Tensor | None = None,
    rule: str = "trapezoid",
    dtype: torch.dtype = torch.float64,
) -> FloatTrace:
    """Attribution of ``method`` on the float graph, with the same rules as the golden model."""
    m = get_method(method)
    x = x.to(dtype)
    logits = forward_float(graph, x)
    if target is None:
        target = logits.argmax(1)
    target = torch.as_tensor(target, dtype=torch.int64).reshape(-1).expand(x.shape[0]).contiguous()
    if m.post is PostProcess.INTEGRATED:
        base = torch.zeros_like(x) if baseline is None else baseline.to(dtype).expand_as(x)
        alphas, weights = ig_rule(steps, rule)
        a = torch.tensor(alphas, dtype=dtype).view(-1, 1, 1, 1, 1)
        path = (base[None] + a * (x - base)[None]).reshape(-1, *x.shape[1:])
        _, acts, grads = _backward_pass(graph, path, target.repeat(len(alphas)), m.relu_backward)
        w = torch.tensor(weights, dtype=dtype).view(-1, 1, 1, 1, 1)
        summed = (w * grads[0].view(len(alphas), *x.shape)).sum(0)
        return FloatTrace((x - base) * summed, logits, acts, grads, summed)
    _, acts, grads = _backward_pass(graph, x, target, m.relu_backward)
    g = grads[0]
    if m.post is PostProcess.ABS:
        attr = g.abs()
    elif m.post is PostProcess.TIMES_INPUT:
        attr = x * g
    else:
        attr = g
    return FloatTrace(attr, logits, acts, grads)


def graph_to_module(graph: Graph) -> torch.nn.Sequential:
    """The graph as an nn.Sequential of standard modules (BatchNorm folded, every ReLU a module).

    Captum's GuidedBackprop and Deconvolution override only ``nn.ReLU`` modules, so a model
    written with functional ReLUs gets the plain gradient there; this rebuilt module gives
    Captum every ReLU, as the methods define them.
    """
    import torch.nn as nn

    modules = []
    for layer in graph.layers:
        if isinstance(layer, Conv2d):
            m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding)
            m.weight.data.copy_(layer.weight)
            m.bias.data.copy_(layer.bias)
        elif isinstance(layer, Linear):
            m = nn.Linear(layer.in_shape[0], layer.out_shape[0])
            m.weight.data.copy_(layer.weight)
            m.bias.data.copy_(layer.bias)
        elif isinstance(layer, ReLU):
            m = nn.ReLU()
        elif isinstance(layer, MaxPool2d):
            m = nn.MaxPool2d(layer.kernel, layer.stride)
        elif isinstance(layer, AvgPool2d):
            m = nn.AvgPool2d(layer.kernel, layer.stride)
        else:
            m = nn.Flatten()
        modules.append(m)
    return nn.Sequential(*modules).eval()
