"""PyTorch model to Graph: torch.fx tracing (nn.Module) or a torch.export program (.pt2).

Every node is either turned into a layer, folded (BatchNorm into the conv before it),
dropped (Dropout, Identity, shape arithmetic), or refused with an error that names the
node, its op and the supported list. Nothing is guessed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import AvgPool2d, Conv2d, Flatten, Graph, Layer, Linear, MaxPool2d, ReLU, Shape

SUPPORTED_LAYERS: tuple[tuple[str, str], ...] = (
    ("Conv2d", "any kernel, stride and zero padding (`padding='same'` at stride 1 with odd kernels); "
               "groups=1, dilation 1; bias or not"),
    ("BatchNorm2d", "directly after a Conv2d (folded into it), with running statistics"),
    ("ReLU", "module, functional or method; a ReLU of a ReLU's output is merged into it"),
    ("MaxPool2d", "any window and stride, square or not; no padding, `ceil_mode=False`, dilation 1"),
    ("AvgPool2d", "any window and stride, square or not; no padding, `ceil_mode=False`, no `divisor_override`"),
    ("AdaptiveAvgPool2d", "output size 1 (a global average over any map)"),
    ("Flatten, view, reshape", "to one dimension per sample"),
    ("Linear", "bias or not"),
    ("Dropout, Identity", "dropped (the model is in eval mode)"),
)
"""What the front end takes, layer by layer: the README and docs/frontend.md show this table
(tests/test_frontend.py holds them to it)."""

CHAIN_RULE = "The layers form a single chain: one input tensor, each layer feeding the next, logits out."

SUPPORTED = (", ".join(name for name, _ in SUPPORTED_LAYERS) + " in a single chain "
             "(README, 'What the front end takes')")


def supported_table() -> str:
    """The supported-layer table as Markdown (what the README and docs/frontend.md contain)."""
    rows = ["| layer | what is supported |", "|---|---|"] + [f"| {name} | {what} |" for name, what in SUPPORTED_LAYERS]
    return "\n".join(rows)


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]), int(v[0]))
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def _refuse(node: torch.fx.Node, why: str = "") -> XaiHlsError:
    what = node.target if node.op != "call_module" else node.target
    detail = f": {why}" if why else ""
    return XaiHlsError(
        f"unsupported node '{_name(node)}' (op {node.op}, target {_target_name(node, what)}){detail}; "
        f"supported: {SUPPORTED}"
    )


def _name(node: torch.fx.Node) -> str:
    """A layer's name: the module path for modules (as in the state_dict), else the node name."""
    return str(node.target) if node.op == "call_module" else node.name


def _target_name(node: torch.fx.Node, target: Any) -> str:
    if node.op == "call_module":
        return str(target)
    return getattr(target, "__name__", str(target))


@dataclass
class _Builder:
    """Accumulates layers while walking the node chain; tracks the current shape."""

    shape: Shape
    layers: list[Layer]

    def add(self, layer: Layer) -> None:
        taken = {existing.name for existing in self.layers}
        if layer.name in taken:  # a module called twice: keep names unique
            k = 1
            while f"{layer.name}_{k}" in taken:
                k += 1
            layer = dataclasses.replace(layer, name=f"{layer.name}_{k}")
        self.layers.append(layer)
        self.shape = layer.out_shape

    def conv(self, node, weight, bias, stride, padding, dilation, groups, padding_mode="zeros") -> None:
        if len(self.shape) != 3:
            raise _refuse(node, f"Conv2d needs a (C, H, W) input, got shape {self.shape}")
        if groups != 1:
            raise _refuse(node, f"groups={groups} (only groups=1 is supported)")
        if _pair(dilation) != (1, 1):
            raise _refuse(node, f"dilation={dilation} (only 1 is supported)")
        if padding_mode != "zeros":
            raise _refuse(node, f"padding_mode='{padding_mode}' (only 'zeros' is supported)")
        weight = weight.detach().to(torch.float32).clone()
        o, i, kh, kw = weight.shape
        if i != self.shape[0]:
            raise _refuse(node, f"expects {i} input channels, gets {self.shape[0]}")
        sh, sw = _pair(stride)
        if isinstance(padding, str):
            if padding == "valid":
                padding = 0
            elif padding == "same" and (sh, sw) == (1, 1) and kh % 2 == 1 and kw % 2 == 1:
                padding = (kh // 2, kw // 2)
            else:
                raise _refuse(node, f"padding='{padding}' with kernel {(kh, kw)} and stride {(sh, sw)}")
        ph, pw = _pair(padding)
        _, h, w = self.shape
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise _refuse(node, f"kernel {(kh, kw)} does not fit the {h}x{w} input")
        bias = torch.zeros(o) if bias is None else bias.detach().to(torch.float32).clone()
        self.add(Conv2d(_name(node), self.shape, (o, oh, ow), weight, bias, (kh, kw), (sh, sw), (ph, pw)))

    def batchnorm(self, node, mean, var, gamma, beta, eps) -> None:
        prev = self.layers[-1] if self.layers else None
        if not isinstance(prev, Conv2d):
            raise _refuse(node, "BatchNorm2d must directly follow a Conv2d, into which it is folded")
        scale = (gamma.detach().double() if gamma is not None else torch.ones_like(mean, dtype=torch.float64))
        scale = scale / torch.sqrt(var.detach().double() + eps)
        shift = beta.detach().double() if beta is not None else torch.zeros_like(scale)
        weight = (prev.weight.double() * scale[:, None, None, None]).float()
        bias = ((prev.bias.double() - mean.detach().double()) * scale + shift).float()
        self.layers[-1] = Conv2d(
            prev.name, prev.in_shape, prev.out_shape, weight, bias, prev.kernel, prev.stride, prev.padding
        )

    def linear(self, node, weight, bias) -> None:
        if len(self.shape) != 1:
            raise _refuse(node, f"Linear needs a flattened (F,) input, got shape {self.shape}; flatten first")
        weight = weight.detach().to(torch.float32).clone()
        o, i = weight.shape
        if i != self.shape[0]:
            raise _refuse(node, f"expects {i} input features, gets {self.shape[0]}")
        bias = torch.zeros(o) if bias is None else bias.detach().to(torch.float32).clone()
        self.add(Linear(_name(node), self.shape, (o,), weight, bias))

    def relu(self, node) -> None:
        last = next((layer for layer in reversed(self.layers) if not isinstance(layer, Flatten)), None)
        if isinstance(last, ReLU):
            return  # a ReLU of a ReLU's output changes nothing, forward or backward, under every method
        self.add(ReLU(_name(node), self.shape, self.shape))

    def pool(self, node, kind: str, kernel, stride, padding=0, ceil_mode=False, dilation=1) -> None:
        if len(self.shape) != 3:
            raise _refuse(node, f"pooling needs a (C, H, W) input, got shape {self.shape}")
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride if stride not in (None, [], ()) else kernel)
        if _pair(padding) != (0, 0):
            raise _refuse(node, f"padding={padding} (pooling without padding only)")
        if ceil_mode:
            raise _refuse(node, "ceil_mode=True (only floor mode is supported)")
        if _pair(dilation) != (1, 1):
            raise _refuse(node, f"dilation={dilation} (only 1 is supported)")
        c, h, w = self.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise _refuse(node, f"window {(kh, kw)} does not fit the {h}x{w} input")
        cls = MaxPool2d if kind == "max" else AvgPool2d
        self.add(cls(_name(node), self.shape, (c, oh, ow), (kh, kw), (sh, sw)))

    def global_avg(self, node, output_size) -> None:
        if _pair(output_size) != (1, 1):
            raise _refuse(node, f"AdaptiveAvgPool2d output size {output_size} (only 1 is supported)")
        if len(self.shape) != 3:
            raise _refuse(node, f"AdaptiveAvgPool2d needs a (C, H, W) input, got shape {self.shape}")
        _, h, w = self.shape
        self.pool(node, "avg", (h, w), (h, w))

    def flatten(self, node, out_shape: Shape) -> None:
        """A view/reshape/flatten; only the per-sample flattening to 1-D is supported."""
        numel = 1
        for d in self.shape:
            numel *= d
        if tuple(out_shape) == self.shape:
            return  # a no-op reshape
        if tuple(out_shape) != (numel,):
            raise _refuse(node, f"reshape of {self.shape} to {tuple(out_shape)} (only flattening to 1-D)")
        if len(self.shape) == 1:
            return
        self.add(Flatten(_name(node), self.shape, (numel,)))


_RELU_FUNCS = {F.relu, torch.relu, torch.nn.functional.relu, torch.relu_}
_FLATTEN_FUNCS = {torch.flatten}
_SHAPE_HELPERS = {operator.getitem, getattr, torch.Tensor.size}
_DROP_FUNCS = {F.dropout, torch.dropout}


def _check_eval(model: nn.Module) -> None:
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise XaiHlsError(
            f"model is in training mode (module '{training[0]}'); call model.eval() before compiling"
        )


def _check_input_shape(input_shape: Any) -> Shape:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise XaiHlsError(f"input_shape must be (C, H, W) integers, got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise XaiHlsError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape!r}")
    return shape


def _propagate_shapes(gm: torch.fx.GraphModule, input_shape: Shape) -> None:
    from torch.fx.passes.shape_prop import ShapeProp

    sample = torch.zeros((1, *input_shape))
    try:
        with torch.no_grad():
            gm(sample)  # a plain run first: ShapeProp prints a traceback of its own on failure
    except Exception as exc:  # the model's own error, shortened to one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XaiHlsError(f"model does not accept input_shape {input_shape}: {first}") from None
    ShapeProp(gm).propagate(sample)


def _out_shape(node: torch.fx.Node) -> Shape:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape[1:])


def _data_input(node: torch.fx.Node) -> torch.fx.Node | None:
    first = node.args[0] if node.args else node.kwargs.get("input")
    return first if isinstance(first, torch.fx.Node) else None


def _arg(node: torch.fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _walk(gm: torch.fx.GraphModule, input_shape: Shape, handle: Callable[[_Builder, torch.fx.Node], bool]) -> Graph:
    """Walk the traced nodes in order; ``handle`` turns one call node into layers.

    The data path must be a chain: each layer node consumes the previous one.
    """
    builder = _Builder(input_shape, [])
    current: torch.fx.Node | None = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise _refuse(node, "the model must take exactly one input tensor")
            current = node
            continue
        if node.op == "get_attr" or (node.op == "call_module" and node.target == "_guards_fn"):
            continue  # parameters, and torch.export's input-shape guard
        if node.op == "output":
            result = node.args[0]
            if isinstance(result, (tuple, list)):
                if len(result) != 1:
                    raise _refuse(node, "the model must return one tensor of logits")
                result = result[0]
            if result is not current:
                raise _refuse(node, "the output is not the end of the layer chain")
            break
        if node.op == "call_function" and node.target in _SHAPE_HELPERS:
            continue
        if node.op == "call_method" and node.target in ("size", "dim"):
            continue
        source = _data_input(node)
        if source is not current:
            raise _refuse(node, "the layers must form a single chain (no branches or skip connections)")
        handle(builder, node)
        current = node
    if not builder.layers:
        raise XaiHlsError("model has no layers to compile")
    if len(builder.shape) != 1:
        raise XaiHlsError(f"model output must be a vector of logits per sample, got shape {builder.shape}")
    return Graph(input_shape, tuple(builder.layers))


def _handle_module_node(gm: torch.fx.GraphModule) -> Callable[[_Builder, torch.fx.Node], bool]:
    def handle(b: _Builder, node: torch.fx.Node) -> bool:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, nn.Conv2d):
                b.conv(node, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, m.padding_mode)
            elif isinstance(m, nn.BatchNorm2d):
                if m.running_mean is None:
                    raise _refuse(node, "BatchNorm2d without running statistics (track_running_stats=False)")
                b.batchnorm(node, m.running_mean, m.running_var, m.weight, m.bias, m.eps)
            elif isinstance(m, nn.ReLU):
                b.relu(node)
            elif isinstance(m, nn.MaxPool2d):
                if m.return_indices:
                    raise _refuse(node, "return_indices=True")
                b.pool(node, "max", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation)
            elif isinstance(m, nn.AvgPool2d):
                if m.divisor_override is not None:
                    raise _refuse(node, "divisor_override")
                b.pool(node, "avg", m.kernel_size, m.stride, m.padding, m.ceil_mode)
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                b.global_avg(node, m.output_size)
            elif isinstance(m, nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise _refuse(node, f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})")
                b.flatten(node, _out_shape(node))
            elif isinstance(m, nn.Linear):
                b.linear(node, m.weight, m.bias)
            elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
                pass
            else:
                raise _refuse(node, f"module type {type(m).__name__}")
            return True
        if node.op == "call_function":
            if node.target in _RELU_FUNCS:
                b.relu(node)
            elif node.target in _FLATTEN_FUNCS:
                b.flatten(node, _out_shape(node))
            elif node.target is F.max_pool2d:
                b.pool(node, "max", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                       _arg(node, 3, "padding", 0), _arg(node, 5, "ceil_mode", False), _arg(node, 4, "dilation", 1))
            elif node.target is F.avg_pool2d:
                b.pool(node, "avg", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                       _arg(node, 3, "padding", 0), _arg(node, 4, "ceil_mode", False))
            elif node.target is F.adaptive_avg_pool2d:
                b.global_avg(node, _arg(node, 1, "output_size"))
            elif node.target in _DROP_FUNCS:
                pass
            else:
                raise _refuse(node)
            return True
        if node.op == "call_method":
            if node.target in ("view", "reshape", "flatten"):
                b.flatten(node, _out_shape(node))
            elif node.target in ("relu", "relu_"):
                b.relu(node)
            elif node.target in ("contiguous",):
                pass
            else:
                raise _refuse(node)
            return True
        raise _refuse(node)

    return handle


def graph_from_module(model: nn.Module, input_shape: Any) -> Graph:
    """Trace an eval-mode nn.Module with torch.fx into a Graph."""
    if not isinstance(model, nn.Module):
        raise XaiHlsError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    shape = _check_input_shape(input_shape)
    _check_eval(model)
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XaiHlsError(f"torch.fx cannot trace {type(model).__name__}: {first}") from None
    _propagate_shapes(gm, shape)
    return _walk(gm, shape, _handle_module_node(gm))


# --- torch.export programs (.pt2): aten-level nodes -------------------------------------

def _aten(name: str):
    return getattr(torch.ops.aten, name, None)


def _handle_aten_node(gm: torch.fx.GraphModule) -> Callable[[_Builder, torch.fx.Node], bool]:
    def value(a: Any) -> Any:
        if isinstance(a, torch.fx.Node) and a.op == "get_attr":
            obj = gm
            for part in str(a.target).split("."):
                obj = getattr(obj, part)
            return obj
        return a

    def packet(node) -> Any:
        return getattr(node.target, "overloadpacket", None)

    aten = torch.ops.aten

    def handle(b: _Builder, node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            raise _refuse(node)
        op = packet(node)
        args = [value(a) for a in node.args]
        if op is aten.conv2d:
            a = args + [None] * (7 - len(args))
            b.conv(node, a[1], a[2], a[3] or 1, a[4] or 0, a[5] or 1, a[6] or 1)
        elif op is aten.convolution:
            if args[6]:
                raise _refuse(node, "transposed convolution")
            b.conv(node, args[1], args[2], args[3], args[4], args[5], args[8])
        elif op in (aten._native_batch_norm_legit_no_training, aten.batch_norm):
            if op is aten.batch_norm:
                _, gamma, beta, mean, var, training, _, eps = args[:8]
                if training:
                    raise _refuse(node, "BatchNorm2d exported in training mode; export the model after model.eval()")
            else:
                _, gamma, beta, mean, var, _, eps = args[:7]
            b.batchnorm(node, mean, var, gamma, beta, eps)
        elif op in (aten.relu, aten.relu_):
            b.relu(node)
        elif op in (aten.max_pool2d, aten.max_pool2d_with_indices):
            a = args + [None] * 6
            b.pool(node, "max", a[1], a[2] or a[1], a[3] or 0, bool(a[5]), a[4] or 1)
        elif op is aten.avg_pool2d:
            a = args + [None] * 7
            if a[6] is not None:
                raise _refuse(node, "divisor_override")
            b.pool(node, "avg", a[1], a[2] or a[1], a[3] or 0, bool(a[4]))
        elif op is aten.adaptive_avg_pool2d:
            b.global_avg(node, args[1])
        elif op is aten.mean and len(args) > 1 and sorted(int(d) % 4 for d in args[1]) == [2, 3]:
            b.global_avg(node, 1)
            if not (len(args) > 2 and args[2]):
                b.flatten(node, _out_shape(node))
        elif op in (aten.linear,):
            b.linear(node, args[1], args[2] if len(args) > 2 else None)
        elif op in (aten.view, aten.reshape, aten.flatten, aten._unsafe_view):
            b.flatten(node, _out_shape(node))
        elif op in (aten.dropout, aten.clone, aten.alias, aten.detach, aten.contiguous):
            pass
        elif node.target is operator.getitem:
            pass
        else:
            raise _refuse(node)
        return True

    return handle


@contextlib.contextmanager
def _quiet_torch_logs():
    """Silence torch's own loggers while it reads a user's file (its error becomes our one line)."""
    import logging

    loggers = [logging.getLogger(name) for name in ("torch", "torch.export", "torch._export", "torch.fx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def graph_from_exported(path: str, input_shape: Any = None) -> Graph:
    """Load a torch.export program (``.pt2``) and convert its aten graph to a Graph."""
    import torch.export

    try:
        with _quiet_torch_logs():  # torch logs a long traceback of its own before raising
            program = torch.export.load(path)
    except FileNotFoundError:
        raise XaiHlsError(f"exported program not found: {path}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XaiHlsError(f"cannot load exported program {path}: {first}") from None
    gm = program.module()
    user_inputs = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    if len(user_inputs) != 1:
        raise XaiHlsError(f"exported program {path} must take exactly one input tensor, takes {len(user_inputs)}")
    if input_shape is None:
        meta = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == user_inputs[0].arg.name)
        input_shape = tuple(meta.meta["val"].shape[1:])
    shape = _check_input_shape(input_shape)
    _propagate_shapes(gm, shape)
    return _walk(gm, shape, _handle_aten_node(gm))
