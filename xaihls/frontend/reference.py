"""Float execution of a Graph: forward, and the backward pass of every attribution method.

This is the float twin of the golden model (same layers, same method rules, no
quantization). Calibration reads its tensor ranges; tests compare it with the source
model and with Captum.

ReLU6 under the modified-gradient methods is a ReLU followed by min(., 6): the ReLU gets the
method's rule and the cap its true gradient, so guided backprop passes g [0 < x < 6] [g > 0]
and deconvnet max(g, 0) [x < 6] (docs/dag.md says why, and what Captum does instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xaihls.frontend.ir import (Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Graph, Linear,
                                MaxPool2d, ReLU, ReLU6, per_channel)
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


def _relu6(relu):
    """ReLU6 as a ReLU with the method's rule, then min(., 6) (true gradient g [x < 6], PyTorch's
    relu6 at the plain rule: hardtanh's gradient, 0 at x = 0 and x = 6)."""
    if relu is F.relu:
        return F.relu6
    return lambda x: relu(x).clamp(max=6.0)


def layer_float(layer, inputs: list[torch.Tensor], relu=F.relu) -> torch.Tensor:
    """One layer of the float graph on its input tensors."""
    x = inputs[0]
    if isinstance(layer, Conv2d):
        if layer.uneven:  # a zero pad folded in
            return F.conv2d(F.pad(x, layer.frame), layer.weight.to(x.dtype), layer.bias.to(x.dtype), layer.stride,
                            0, layer.dilation, layer.groups)
        return F.conv2d(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype), layer.stride, layer.padding,
                        layer.dilation, layer.groups)
    if isinstance(layer, Linear):
        return F.linear(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype))
    if isinstance(layer, ReLU):
        return relu(x)
    if isinstance(layer, ReLU6):
        return _relu6(relu)(x)
    if isinstance(layer, MaxPool2d):
        return F.max_pool2d(x, layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, AvgPool2d):
        return F.avg_pool2d(x, layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode,
                            count_include_pad=layer.count_include_pad)
    if isinstance(layer, Flatten):
        return torch.flatten(x, 1)
    if isinstance(layer, Add):
        return x + inputs[1]
    if isinstance(layer, Concat):
        return torch.cat(inputs, 1)
    if isinstance(layer, ChannelSelect):
        return x[:, list(layer.index)]
    if isinstance(layer, ChannelAffine):
        return x * per_channel(layer.scale.to(x.dtype), x) + per_channel(layer.shift.to(x.dtype), x)
    raise AssertionError(f"no float forward for {type(layer).__name__}")


def _run(graph: Graph, x: torch.Tensor, relu=F.relu, keep: list | None = None) -> torch.Tensor:
    tensors = [x]
    for layer, reads in zip(graph.layers, graph.input_tensors):
        y = layer_float(layer, [tensors[k] for k in reads], relu)
        if keep is not None:
            if y.requires_grad:
                y.retain_grad()
            keep.append(y)
        tensors.append(y)
    return tensors[-1]


def forward_float(graph: Graph, x: torch.Tensor) -> torch.Tensor:
    """Logits of the float graph (equal to the source model up to float rounding)."""
    with torch.no_grad():
        return _run(graph, x)


@dataclass
class FloatTrace:
    """Everything one float attribution pass saw, for calibration and comparison.

    ``activations[i]`` is layers[i]'s output; ``gradients[k]`` is the gradient at tensor k
    (the input for k = 0, else layers[k-1]'s output; in a chain, layers[k]'s input), summed over
    the layers that read it; ``summed_gradient`` is the integrated-gradients weighted sum (None
    for other methods). Grad-CAM methods also give the channel weights (N, C) and the map
    before upsampling (N, 1, h, w) of their layer.
    """

    attribution: torch.Tensor
    logits: torch.Tensor
    activations: list[torch.Tensor]
    gradients: list[torch.Tensor]
    summed_gradient: torch.Tensor | None = None
    cam_weights: torch.Tensor | None = None
    cam: torch.Tensor | None = None


def _backward_pass(graph: Graph, x: torch.Tensor, target: torch.Tensor | None, relu_mode: ReluBackward):
    """Logits, activations and gradients of one pass under ``relu_mode``'s rule, the gradient of the ``target``
    logits (None: each image's predicted class, from this pass's own forward); and the target."""
    x = x.detach().clone().requires_grad_(True)
    keep: list[torch.Tensor] = []
    logits = _run(graph, x, _RELU[relu_mode], keep)
    if target is None:
        target = logits.detach().argmax(1)
    logits.gather(1, target[:, None]).sum().backward()
    grads = [x.grad] + [t.grad if t.grad is not None else torch.zeros_like(t) for t in keep[:-1]]
    return logits.detach(), [t.detach() for t in keep], [g.detach() for g in grads], target


def float_attribute(
    graph: Graph,
    x: torch.Tensor,
    method: str,
    target: torch.Tensor | None = None,
    steps: int = 32,
    baseline: torch.Tensor | None = None,
    rule: str = "trapezoid",
    dtype: torch.dtype = torch.float64,
    cam_layer: str | None = None,
) -> FloatTrace:
    """Attribution of ``method`` on the float graph, with the same rules as the golden model.

    ``cam_layer``: the Grad-CAM layer's name (default: the last Conv2d).
    """
    m = get_method(method)
    x = x.to(dtype)
    if target is not None:
        target = torch.as_tensor(target, dtype=torch.int64).reshape(-1).expand(x.shape[0]).contiguous()
    if m.post in (PostProcess.GRAD_CAM, PostProcess.GUIDED_GRAD_CAM):
        k = graph.tensor_index(cam_layer_name(graph, cam_layer))
        logits, acts, grads, target = _backward_pass(graph, x, target, ReluBackward.MASK)
        a, g = acts[k - 1], (grads[k] if k < len(grads) else None)
        weights = g.mean(dim=(2, 3))
        cam = (weights[:, :, None, None] * a).sum(1, keepdim=True).clamp(min=0)
        up = upsample_nearest(cam, tuple(x.shape[2:]))
        if m.post is PostProcess.GRAD_CAM:
            return FloatTrace(up, logits, acts, grads, cam_weights=weights, cam=cam)
        _, _, guided, _ = _backward_pass(graph, x, target, ReluBackward.GUIDED)
        return FloatTrace(guided[0] * up, logits, acts, guided, cam_weights=weights, cam=cam)
    if m.post is PostProcess.INTEGRATED:
        logits = forward_float(graph, x)
        if target is None:
            target = logits.argmax(1)
        base = torch.zeros_like(x) if baseline is None else baseline.to(dtype).expand_as(x)
        alphas, weights = ig_rule(steps, rule)
        a = torch.tensor(alphas, dtype=dtype).view(-1, 1, 1, 1, 1)
        path = (base[None] + a * (x - base)[None]).reshape(-1, *x.shape[1:])
        _, acts, grads, _ = _backward_pass(graph, path, target.repeat(len(alphas)), m.relu_backward)
        w = torch.tensor(weights, dtype=dtype).view(-1, 1, 1, 1, 1)
        summed = (w * grads[0].view(len(alphas), *x.shape)).sum(0)
        return FloatTrace((x - base) * summed, logits, acts, grads, summed)
    logits, acts, grads, _ = _backward_pass(graph, x, target, m.relu_backward)
    g = grads[0]
    if m.post is PostProcess.ABS:
        attr = g.abs()
    elif m.post is PostProcess.TIMES_INPUT:
        attr = x * g
    else:
        attr = g
    return FloatTrace(attr, logits, acts, grads)


def cam_layer_name(graph: Graph, name: str | None = None) -> str:
    """The Grad-CAM layer: ``name``, or the last Conv2d; its output must be a (C, H, W) map that
    reaches the logits through more layers."""
    from xaihls.errors import XaiHlsError

    if name is None:
        convs = [layer.name for layer in graph.layers if isinstance(layer, Conv2d)]
        if not convs:
            raise XaiHlsError("grad_cam: the network has no Conv2d; name the layer (config key grad_cam_layer)")
        return convs[-1]
    names = [layer.name for layer in graph.layers]
    if name not in names:
        raise XaiHlsError(f"grad_cam_layer: no layer named '{name}'; layers: {', '.join(names)}")
    layer = graph.layers[names.index(name)]
    if len(layer.out_shape) != 3 or layer is graph.layers[-1]:
        raise XaiHlsError(f"grad_cam_layer '{name}': its output {layer.out_shape} is not a (C, H, W) feature map")
    return name


def nearest_index(size_in: int, size_out: int) -> torch.Tensor:
    """The source index of each output index of nearest interpolation from ``size_in`` to ``size_out``,
    as PyTorch's ``F.interpolate(mode="nearest")`` (and so Captum's ``LayerAttribution.interpolate``)
    picks it: floor(i * size_in / size_out) with the scale in float32, at most size_in - 1."""
    probe = torch.arange(size_in, dtype=torch.float32).view(1, 1, size_in)
    return F.interpolate(probe, size=size_out, mode="nearest").view(size_out).to(torch.int64)


def upsample_nearest(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) to (N, 1, H, W) by nearest interpolation (exact: a gather, no arithmetic)."""
    rows = nearest_index(cam.shape[2], size[0])
    cols = nearest_index(cam.shape[3], size[1])
    return cam[:, :, rows][:, :, :, cols]


class _Cap6(torch.nn.Module):
    """min(x, 6): the cap of a ReLU6 rebuilt as nn.ReLU then this (see graph_to_module)."""

    def forward(self, x):
        return x.clamp(max=6.0)


class _Affine(torch.nn.Module):
    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale.clone())
        self.register_buffer("shift", shift.clone())

    def forward(self, x):
        return x * per_channel(self.scale, x) + per_channel(self.shift, x)


class GraphModule(torch.nn.Module):
    """A DAG graph as standard modules run in its order (``graph_to_module`` of a non-chain graph)."""

    def __init__(self, graph: Graph, modules: list[torch.nn.Module]):
        super().__init__()
        self.reads = graph.input_tensors
        self.steps = torch.nn.ModuleList(modules)

    def forward(self, x):
        tensors = [x]
        for module, reads in zip(self.steps, self.reads):
            tensors.append(module(*[tensors[k] for k in reads]))
        return tensors[-1]


class _Sum(torch.nn.Module):
    def forward(self, a, b):
        return a + b


class _Cat(torch.nn.Module):
    def forward(self, *maps):
        return torch.cat(maps, 1)


class _Select(torch.nn.Module):
    def __init__(self, index: tuple[int, ...]):
        super().__init__()
        self.index = list(index)

    def forward(self, x):
        return x[:, self.index]


def layer_module(module: torch.nn.Module, graph: Graph, name: str) -> torch.nn.Module:
    """The submodule of ``graph_to_module(graph)`` whose output is layer ``name``'s output."""
    index = [layer.name for layer in graph.layers].index(name)
    return module.steps[index] if isinstance(module, GraphModule) else module[index]


def graph_to_module(graph: Graph) -> torch.nn.Module:
    """The graph as standard modules (BatchNorm folded, every ReLU an ``nn.ReLU`` module): an
    nn.Sequential for a chain, a ``GraphModule`` otherwise.

    Captum's GuidedBackprop and Deconvolution override only ``nn.ReLU`` modules, so a model
    written with functional ReLUs gets the plain gradient there; this rebuilt module gives
    Captum every ReLU, as the methods define them. A ReLU6 becomes ``nn.ReLU`` then min(., 6),
    which gives Captum our ReLU6 rules (docs/dag.md).
    """
    import torch.nn as nn

    modules = []
    for layer in graph.layers:
        if isinstance(layer, Conv2d):
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride,
                             0 if layer.uneven else layer.padding, layer.dilation, groups=layer.groups)
            conv.weight.data.copy_(layer.weight)
            conv.bias.data.copy_(layer.bias)
            m = nn.Sequential(nn.ZeroPad2d(layer.frame), conv) if layer.uneven else conv  # a zero pad folded in
        elif isinstance(layer, Linear):
            m = nn.Linear(layer.in_shape[0], layer.out_shape[0])
            m.weight.data.copy_(layer.weight)
            m.bias.data.copy_(layer.bias)
        elif isinstance(layer, ReLU):
            m = nn.ReLU()
        elif isinstance(layer, ReLU6):
            m = nn.Sequential(nn.ReLU(), _Cap6())
        elif isinstance(layer, MaxPool2d):
            m = nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        elif isinstance(layer, AvgPool2d):
            m = nn.AvgPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode,
                             count_include_pad=layer.count_include_pad)
        elif isinstance(layer, Add):
            m = _Sum()
        elif isinstance(layer, Concat):
            m = _Cat()
        elif isinstance(layer, ChannelSelect):
            m = _Select(layer.index)
        elif isinstance(layer, ChannelAffine):
            m = _Affine(layer.scale, layer.shift)
        else:
            m = nn.Flatten()
        modules.append(m)
    if graph.is_chain:
        return nn.Sequential(*modules).eval()
    return GraphModule(graph, modules).eval()
