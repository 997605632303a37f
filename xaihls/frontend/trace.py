"""PyTorch model to Graph: torch.fx tracing (nn.Module) or a torch.export program (.pt2).

Every node is either turned into a layer, folded (BatchNorm into the conv before it),
dropped (Dropout, Identity, shape arithmetic), or refused with an error that names the
node, its op and the supported list. Nothing is guessed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import (INPUT, Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Graph,
                                Layer, Linear, MaxPool2d, ReLU, ReLU6, Shape)
from xaihls.plan.dag import with_copies

SUPPORTED_LAYERS: tuple[tuple[str, str], ...] = (
    ("Conv2d", "any kernel, stride, dilation and zero padding (`padding='same'` at stride 1, an even kernel's "
               "extra zero at the end as PyTorch pads it); any `groups` (depthwise included); bias or not; a "
               "dilated one runs as its kernel spread with zeros, the engines' passes stepping over them "
               "(docs/frontend.md)"),
    ("Conv1d, MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, AdaptiveMaxPool1d",
     "in a model whose `input_shape` is (C, L): each is its 2-D layer with a (1, k) window on a (C, 1, L) map, "
     "with the same limits (attributions come back as (N, C, L)); `x.mean(2)`, `x.amax(-1)` and `x.max(-1)[0]` "
     "(or `.values`) are global pools"),
    ("BatchNorm2d, BatchNorm1d", "with running statistics: folded into a convolution that feeds only it, "
                                 "else a per-channel affine layer; of a Linear's features, folded into the Linear"),
    ("ReLU", "module, functional or method; a ReLU of a ReLU's or ReLU6's output that feeds nothing else is "
             "merged into it"),
    ("ReLU6", "`nn.ReLU6`, `F.relu6`, `hardtanh(x, 0, 6)`, `clamp(x, 0, 6)`; of a ReLU's or ReLU6's output that "
              "feeds nothing else, merged into it (a ReLU then a ReLU6 is the ReLU6 alone)"),
    ("LeakyReLU, PReLU", "`nn.LeakyReLU`, `F.leaky_relu`, `nn.PReLU` (one slope or one a channel), `F.prelu`, "
                         "of a map or a Linear's features: a·x + ReLU((1 - a)·x) as a per-channel affine, a ReLU "
                         "and an add (docs/dag.md); slopes below 1 other than 0 (0 is a ReLU)"),
    ("MaxPool2d", "any window, stride and padding (padding counts as -inf), `ceil_mode` either way, dilation 1"),
    ("AvgPool2d", "any window, stride and padding, `ceil_mode` and `count_include_pad` either way "
                  "(PyTorch's divisors); no `divisor_override`"),
    ("AdaptiveAvgPool2d, AdaptiveMaxPool2d", "to an output size that divides the map (a global pool at size "
                                             "1); `x.mean((2, 3))` and `x.amax((2, 3))` are the global ones "
                                             "(flattened unless `keepdim`); an average pool to any other size "
                                             "(VGG's 7 x 7 of a smaller map) read through a flatten by one "
                                             "Linear alone: taken into the Linear's weights"),
    ("add", "`x + y`, `torch.add(x, y)`, `operator.add` of two tensors of one shape (residual connections)"),
    ("cat", "`torch.cat` (`concat`, `concatenate`) of maps along the channels: of one map, that map; of "
            "more, cats of two from the left, one an earlier layer makes reused (DenseNet blocks)"),
    ("chunk, split, channel shuffle", "`torch.chunk` / `torch.split` of a map along the channels, each part taken "
                                      "one by one; ShuffleNet's channel shuffle (a view to (N, g, C/g, H, W), "
                                      "`transpose(1, 2)` or `permute(0, 2, 1, 3, 4)`, a view back): a channel "
                                      "selection"),
    ("arithmetic with a constant", "`x + c`, `x - c`, `c - x`, `x * c`, `x / c` (functions, methods, in place) "
                                   "with a number or one value a channel: `(C, 1, 1)` on a map (`(C, 1)` in a 1-D "
                                   "model), `(C,)` on a Linear's features (a model's input normalization, a "
                                   "temperature on the logits): a per-channel affine, folded into a convolution "
                                   "or Linear that feeds only it"),
    ("zero pad", "`F.pad`, `nn.ZeroPad2d`, `nn.ZeroPad1d`, `nn.ConstantPad1d`/`2d` with zeros, read by one "
                 "convolution alone: folded into its padding, unequal sides included (TensorFlow's 'same' at "
                 "stride 2)"),
    ("Flatten, view, reshape, squeeze", "to one dimension per sample, in one call or several (through a (C, 1))"),
    ("Linear", "`nn.Linear` or `F.linear` with the module's parameters, bias or not"),
    ("Dropout, Identity", "dropped (the model is in eval mode)"),
)
"""What the front end takes, layer by layer: the README and docs/frontend.md show this table
(tests/test_frontend.py holds them to it)."""

CHAIN_RULE = ("The layers form a graph with one input tensor and one output, the logits: a tensor may feed "
              "several layers and an add joins two; every layer must reach the logits.")

SUPPORTED = (", ".join(name for name, _ in SUPPORTED_LAYERS) + " in a graph from one input to the logits "
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


def _is_conv(node: torch.fx.Node) -> bool:
    """A convolution node: an nn.Conv1d/2d module, F.conv1d/2d, or torch.export's aten op."""
    if node.op == "call_module":
        return isinstance(node.graph.owning_module.get_submodule(node.target), (nn.Conv1d, nn.Conv2d))
    packet = getattr(node.target, "overloadpacket", None)
    aten = torch.ops.aten
    return node.op == "call_function" and (node.target in (F.conv1d, F.conv2d)
                                           or packet in (aten.conv1d, aten.conv2d, aten.convolution))


def _refuse(node: torch.fx.Node, why: str = "") -> XaiHlsError:
    what = node.target if node.op != "call_module" else node.target
    detail = f": {why}" if why else ""
    return XaiHlsError(
        f"unsupported node '{_name(node)}' (op {node.op}, target {_target_name(node, what)}){detail}; "
        f"supported: {SUPPORTED}"
    )


def _one(node: torch.fx.Node, v: Any) -> int:
    """A 1-D layer's size argument: an int or a tuple of one."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise _refuse(node, f"a 1-D layer's size {tuple(v)} has {len(v)} values")
        return int(v[0])
    return int(v)


def _name(node: torch.fx.Node) -> str:
    """A layer's name: the module path for modules (as in the state_dict), else the node name."""
    return str(node.target) if node.op == "call_module" else node.name


def _target_name(node: torch.fx.Node, target: Any) -> str:
    if node.op == "call_module":
        return str(target)
    return getattr(target, "__name__", str(target))


def _pool_size(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """PyTorch's pooled size: a ceil-mode window must start inside the input or its left padding."""
    span = size + 2 * p - k
    if span < 0:
        return 0
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _data_users(node: torch.fx.Node) -> list[torch.fx.Node]:
    """Users that read the node's values (not only its shape)."""
    return [u for u in node.users
            if not (u.op == "call_method" and u.target in ("size", "dim"))
            and not (u.op == "call_function" and u.target is getattr)]


@dataclass
class _Builder:
    """Accumulates layers while walking the traced nodes; ``current`` is the tensor the node reads."""

    shapes: dict[str, Shape]
    layers: list[Layer]
    current: str = INPUT
    produced: dict = dataclasses.field(default_factory=dict)  # fx node -> the layer it added (None: passed through)
    one_d: bool = False  # a 1-D model: torch's (C, L) maps are the layers' (C, 1, L)
    pads: dict = dataclasses.field(default_factory=dict)  # a zero pad's fx node -> (left, right, top, bottom)
    reused: set = dataclasses.field(default_factory=set)  # nodes that stand for an earlier tensor, not their input
    parts: dict = dataclasses.field(default_factory=dict)  # a chunk/split node -> its (start, stop) channel ranges
    grouped: dict = dataclasses.field(default_factory=dict)  # a (g, C/g, H, W) view's node -> (g, C/g, transposed)
    splits: dict = dataclasses.field(default_factory=dict)  # a leaky activation's Add -> its slopes (C,)
    spreads: dict = dataclasses.field(default_factory=dict)  # fx node -> the _Spread its Linear takes in

    @property
    def shape(self) -> Shape:
        return self.shapes[self.current]

    @property
    def torch_shape(self) -> Shape:
        """The current tensor's shape as torch has it (a 1-D model's maps without their height of 1)."""
        s = self.shape
        return (s[0], s[2]) if self.one_d and len(s) == 3 else s

    def input_torch_shape(self, node) -> Shape:
        """The shape torch gives the tensor ``node`` reads (a (C, 1) the layers hold as (C,) included)."""
        source = _data_input(node)
        meta = source.meta.get("tensor_meta") if source is not None else None
        return tuple(meta.shape[1:]) if hasattr(meta, "shape") else self.torch_shape

    def map_dims(self) -> int:
        """A map's dims in torch after the batch's and the channels' (1 in a 1-D model, else 2)."""
        return 1 if self.one_d else 2

    def add(self, layer: Layer) -> None:
        taken = {existing.name for existing in self.layers} | {INPUT}
        if layer.name in taken:  # a module called twice: keep names unique
            k = 1
            while f"{layer.name}_{k}" in taken:
                k += 1
            layer = dataclasses.replace(layer, name=f"{layer.name}_{k}")
        if not layer.inputs:
            layer = dataclasses.replace(layer, inputs=(self.current,))
        self.layers.append(layer)
        self.shapes[layer.name] = layer.out_shape
        self.current = layer.name

    def _index(self, name: str) -> int:
        return next(i for i, layer in enumerate(self.layers) if layer.name == name)

    def sole_producer(self, node: torch.fx.Node, through_flatten: bool) -> int | None:
        """The index of the layer whose output ``node`` reads, if every node on the way from it
        (pass-throughs and, with ``through_flatten``, Flatten layers) feeds nothing else."""
        s = _data_input(node)
        while s is not None and s.op != "placeholder":
            if len(_data_users(s)) != 1 or s in self.reused:
                return None
            layer = self.produced.get(s)
            if layer is not None:
                index = self._index(layer.name)
                if not (through_flatten and isinstance(self.layers[index], Flatten)):
                    return index
            s = _data_input(s)
        return None

    def conv(self, node, weight, bias, stride, padding, dilation, groups, padding_mode="zeros") -> None:
        if len(self.shape) != 3:
            raise _refuse(node, f"Conv2d needs a (C, H, W) input, got shape {self.shape}")
        dy, dx = _pair(dilation)
        if min(dy, dx) < 1:
            raise _refuse(node, f"dilation={dilation}")
        if padding_mode != "zeros":
            raise _refuse(node, f"padding_mode='{padding_mode}' (only 'zeros' is supported)")
        groups = int(groups)
        weight = weight.detach().to(torch.float32).clone()
        o, i, kh, kw = weight.shape
        if i * groups != self.shape[0] or o % groups:
            raise _refuse(node, f"expects {i * groups} input channels in {groups} groups, gets {self.shape[0]}")
        sh, sw = _pair(stride)
        rh, rw = (kh - 1) * dy + 1, (kw - 1) * dx + 1  # the rows and columns a window spans
        if isinstance(padding, str):
            if padding == "valid":
                padding = 0
            elif padding == "same" and (sh, sw) == (1, 1):  # PyTorch's: the odd one of k - 1 zeros at the end
                padding = None
            else:
                raise _refuse(node, f"padding='{padding}' with stride {(sh, sw)} (PyTorch takes 'same' at stride 1)")
        # zeros above, below, left and right: the conv's own, and a zero pad folded in (F.pad, nn.ZeroPad2d)
        if padding is None:
            top, bottom, left, right = (rh - 1) // 2, rh // 2, (rw - 1) // 2, rw // 2
        else:
            (top, left) = _pair(padding)
            bottom, right = top, left
        pl, pr, pt, pb = self.pads.pop(_data_input(node), (0, 0, 0, 0))
        top, bottom, left, right = top + pt, bottom + pb, left + pl, right + pr
        _, h, w = self.shape
        oh, ow = (h + top + bottom - rh) // sh + 1, (w + left + right - rw) // sw + 1
        if oh < 1 or ow < 1:
            raise _refuse(node, f"kernel {(kh, kw)} of dilation {(dy, dx)} does not fit the {h}x{w} input")
        bias = torch.zeros(o) if bias is None else bias.detach().to(torch.float32).clone()
        self.add(Conv2d(_name(node), self.shape, (o, oh, ow), weight, bias, (kh, kw), (sh, sw), (top, left), groups,
                        dilation=(dy, dx)))

    def pad(self, node, pads, mode="constant", value=0.0) -> None:
        """``F.pad`` / ``nn.ZeroPad2d`` / ``nn.ConstantPad1d(p, 0)`` of a map with zeros, which only a convolution
        reads: folded into its padding (uneven where the sides differ: TensorFlow's 'same' at stride 2)."""
        pads = [int(p) for p in _static(pads)]
        if mode != "constant" or float(value or 0.0) != 0.0:
            raise _refuse(node, f"a pad with mode '{mode}' and value {value} (only zeros, into a convolution)")
        if len(pads) not in {2, 2 * self.map_dims()} or min(pads) < 0:
            raise _refuse(node, f"a pad of {tuple(pads)} (zeros on the map's {self.map_dims()} dims, none negative)")
        users = _data_users(node)
        if len(users) != 1 or not _is_conv(users[0]):
            raise _refuse(node, "a zero pad read by other than one convolution (the engine folds it into the "
                                "convolution's padding)")
        self.pads[node] = (*pads, 0, 0) if len(pads) == 2 else tuple(pads)  # (left, right, top, bottom)

    def conv1d(self, node, weight, bias, stride, padding, dilation, groups, padding_mode="zeros") -> None:
        """A Conv1d: a Conv2d of kernel (1, k) on the (C, 1, L) map."""
        if not self.one_d:
            raise _refuse(node, "Conv1d in a model compiled for a (C, H, W) input (give input_shape (C, L))")
        padding = padding if isinstance(padding, str) else (0, _one(node, padding))
        self.conv(node, weight.unsqueeze(2), bias, (1, _one(node, stride)), padding, (1, _one(node, dilation)),
                  groups, padding_mode)

    def batchnorm(self, node, mean, var, gamma, beta, eps) -> None:
        scale = (gamma.detach().double() if gamma is not None else torch.ones_like(mean, dtype=torch.float64))
        scale = scale / torch.sqrt(var.detach().double() + eps)
        shift = beta.detach().double() if beta is not None else torch.zeros_like(scale)
        k = self.sole_producer(node, through_flatten=False)
        prev = self.layers[k] if k is not None else None
        if len(self.shape) == 1 and isinstance(prev, Linear):  # BatchNorm1d of a Linear's features: folded in
            self.affine(node, scale, shift - mean.detach().double() * scale)
            return
        if len(self.shape) != 3:
            raise _refuse(node, f"batch norm of features of shape {self.shape} (only of a map, or of the features a "
                                "Linear feeds it alone, which it folds into)")
        if not isinstance(prev, Conv2d):  # a per-channel affine of its own
            offset = shift - mean.detach().double() * scale
            self.add(ChannelAffine(_name(node), self.shape, self.shape, scale.float(), offset.float()))
            return
        weight = (prev.weight.double() * scale[:, None, None, None]).float()
        bias = ((prev.bias.double() - mean.detach().double()) * scale + shift).float()
        self.layers[k] = dataclasses.replace(prev, weight=weight, bias=bias)

    def linear(self, node, weight, bias) -> None:
        if not isinstance(weight, torch.Tensor) or not isinstance(bias, (torch.Tensor, type(None))):
            raise _refuse(node, "a Linear whose weight or bias is computed in the model (only parameters)")
        if len(self.shape) != 1:
            raise _refuse(node, f"Linear needs a flattened (F,) input, got shape {self.shape}; flatten first")
        weight = weight.detach().to(torch.float32).clone()
        spread = self.spreads.pop(_data_input(node), None)
        if spread is not None:  # torch's run of the model has checked its features
            weight = spread.fold(weight)
        o, i = weight.shape
        if i != self.shape[0]:
            raise _refuse(node, f"expects {i} input features, gets {self.shape[0]}")
        bias = torch.zeros(o) if bias is None else bias.detach().to(torch.float32).clone()
        self.add(Linear(_name(node), self.shape, (o,), weight, bias))

    def _rectified(self, node) -> int | None:
        """The index of the ReLU or ReLU6 whose output ``node`` reads and nothing else does (through
        Flattens), or None."""
        k = self.sole_producer(node, through_flatten=True)
        return k if k is not None and isinstance(self.layers[k], (ReLU, ReLU6)) else None

    def relu(self, node) -> None:
        if self._rectified(node) is not None:
            return  # a ReLU of a rectifier's output changes nothing, forward or backward, under every method
        self.add(ReLU(_name(node), self.shape, self.shape))

    def relu6(self, node) -> None:
        """A ReLU6; of a rectifier's output that feeds nothing else, merged into it: ReLU6(ReLU6(x)) and
        ReLU6(ReLU(x)) are ReLU6(x), and under every method's rule the two backward steps are the
        ReLU6's one (docs/dag.md, "ReLU6")."""
        k = self._rectified(node)
        if k is None:
            self.add(ReLU6(_name(node), self.shape, self.shape))
        elif isinstance(self.layers[k], ReLU):
            relu = self.layers[k]  # the merged layer keeps the ReLU's name: the layers after it read that tensor
            self.layers[k] = ReLU6(relu.name, relu.in_shape, relu.out_shape, inputs=relu.inputs)

    def clamp(self, node, low, high) -> None:
        """A clamp to [low, high]: ReLU6 for [0, 6], a ReLU for [0, None]; refused otherwise."""
        low = None if low is None else float(low)
        high = None if high is None else float(high)
        if low == 0.0 and high == 6.0:
            self.relu6(node)
        elif low == 0.0 and high is None:
            self.relu(node)
        else:
            raise _refuse(node, f"clamp to [{low}, {high}] (only [0, 6], ReLU6, and [0, inf), ReLU)")

    def affine(self, node, scale: Any, shift: Any, label: str | None = None) -> None:
        """y = x * scale + shift, with a number or a per-channel constant each (``x / 255``, ``(x - mean) /
        std``): folded into the convolution that feeds only it (its output scaled, as a BatchNorm is),
        merged into a per-channel affine that does, else a per-channel affine of its own (named ``label``,
        by default the node's)."""
        k = self.sole_producer(node, through_flatten=False)
        prev = self.layers[k] if k is not None else None
        if len(self.shape) == 1 and isinstance(prev, Linear):  # logits / temperature: the Linear's weights
            c = self.shape[0]
            scale, shift = _per_channel(node, scale, c, 0), _per_channel(node, shift, c, 0)
            self.layers[k] = dataclasses.replace(prev, weight=(prev.weight.double() * scale[:, None]).float(),
                                                 bias=(prev.bias.double() * scale + shift).float())
            return
        if len(self.shape) != 3:
            raise _refuse(node, f"arithmetic with a constant on a tensor of shape {self.shape} (only on a (C, H, W) "
                                "map, where it is a per-channel affine, or on a Linear's output)")
        c = self.shape[0]
        scale, shift = _per_channel(node, scale, c, self.map_dims()), _per_channel(node, shift, c, self.map_dims())
        if isinstance(prev, Conv2d):
            self.layers[k] = dataclasses.replace(
                prev, weight=(prev.weight.double() * scale[:, None, None, None]).float(),
                bias=(prev.bias.double() * scale + shift).float())
        elif isinstance(prev, ChannelAffine):
            self.layers[k] = dataclasses.replace(prev, scale=(prev.scale.double() * scale).float(),
                                                 shift=(prev.shift.double() * scale + shift).float())
        else:
            self.add(ChannelAffine(label or _name(node), self.shape, self.shape, scale.float(), shift.float()))

    def leaky(self, node, slope: Any) -> None:
        """LeakyReLU or PReLU of a map or of a Linear's features with slope ``a`` (a number, or one a channel or
        feature): y = a·x + (1 - a)·ReLU(x),
        which the engines run as layers they have: x' = a·x (folded into the layer that makes x when only
        this reads it), r = ReLU(((1 - a) / a)·x') and y = x' + r, exact in float for any a < 1 but 0. The
        ReLU inside is a rectifier to every method (guided backprop and deconvnet apply their rule to it and
        pass the linear part's a·g; docs/dag.md, "LeakyReLU and PReLU")."""
        dims = (1,) * (self.map_dims() if len(self.shape) == 3 else 0)
        if isinstance(slope, torch.Tensor) and slope.dim() == 1:  # PReLU's weight: one slope, or one a channel
            slope = slope.reshape(-1, *dims)
        a = _per_channel(node, slope, self.shape[0], len(dims))
        if bool((a == 0).all()):
            self.relu(node)
            return
        if bool((a == 1).all()):
            return  # the identity
        if bool(((a >= 1) | (a == 0)).any()):
            bad = next(k for k in range(a.numel()) if a[k] >= 1 or a[k] == 0)
            raise _refuse(node, f"a slope of {float(a[bad]):g} on channel {bad} (the engines take slopes below 1 "
                                "other than 0 on every channel, or 0 on all of them: a ReLU)")
        name = _name(node)
        self.affine(node, a.reshape(-1, *dims), 0, label=f"{name}.neg")
        self._split(name, a)

    def _split(self, name: str, a: torch.Tensor) -> None:
        """The leaky activation's layers after the scaled map x' (the current tensor): r = ReLU(((1 - a) / a)
        x') and y = x' + r, the Add named ``name``."""
        scaled, shape = self.current, self.shape
        self.add(ChannelAffine(f"{name}.pos", shape, shape, ((1 - a) / a).float(), torch.zeros(shape[0])))
        self.add(ReLU(f"{name}.relu", shape, shape))
        self.add(Add(name, shape, shape, (scaled, self.current)))
        self.splits[self.current] = a  # by the names the layers got (a module called twice: name_1)

    def _lift_split(self, node) -> torch.Tensor | None:
        """A max-pool of a leaky activation with positive slopes, which only the pool reads: the split's
        layers taken off (the pool reads the scaled map) and its slopes returned, for the split to follow
        the pool. A pool commutes with an increasing function, and the pooled map is smaller, so its
        split moves fewer pixels; the pool then ranks the convolution's accumulator in its write-back as
        before a ReLU (docs/dag.md, "LeakyReLU and PReLU")."""
        k = self.sole_producer(node, through_flatten=False)
        if k is None or k != len(self.layers) - 1 or self.layers[k].name not in self.splits:
            return None
        a = self.splits[self.layers[k].name]
        if not bool((a > 0).all()):
            return None
        self.current = self.layers[k].inputs[0]
        del self.splits[self.layers[k].name], self.layers[-3:]  # the split's affine, ReLU and Add, added last
        return a

    def concat(self, node, names: list[str], dim: Any) -> None:
        """``torch.cat`` of maps along the channels (dim 1 of (N, C, H, W)). A cat of one map is that map; a
        cat of more is cats of two from the left, ``cat(cat(a, b), c)``, and a cat of two that an earlier
        layer already makes is that layer's tensor: a DenseNet block's ``cat([x0, y1, y2])`` after
        ``cat([x0, y1])`` reads that one, so every tensor of the block has at most two readers and every
        cat two operands, as the engines run them (docs/dag.md, "Concatenation")."""
        shapes = [self.shapes[n] for n in names]
        if not names:
            raise _refuse(node, "cat of no tensors")
        if any(len(s) != 3 for s in shapes) or not isinstance(dim, int) or dim % (2 + self.map_dims()) != 1:
            raise _refuse(node, f"cat along dim {dim} of shapes {shapes} (only maps, along the channels: dim 1)")
        if any(s[1:] != shapes[0][1:] for s in shapes):
            raise _refuse(node, f"cat of maps of shapes {shapes} (one height and width)")
        current = names[0]
        for k, name in enumerate(names[1:], start=2):
            pair = (current, name)
            made = next((layer.name for layer in self.layers
                         if isinstance(layer, Concat) and layer.inputs == pair), None)
            if made is not None:
                current = made
                continue
            a, b = self.shapes[current], self.shapes[name]
            label = _name(node) if k == len(names) else f"{_name(node)}_part{k}"
            self.add(Concat(label, a, (a[0] + b[0], *a[1:]), pair))
            current = self.current
        self.current = current

    def split(self, node, sizes: list[int] | int, dim: Any, chunks: bool = False) -> None:
        """``torch.chunk`` / ``torch.split`` along the channels: each part a ChannelSelect when its element is
        taken (``_walk``); the parts' ranges kept on the node."""
        if len(self.shape) != 3 or not isinstance(dim, int) or dim % (2 + self.map_dims()) != 1:
            raise _refuse(node, f"split along dim {dim} of a tensor of shape {self.torch_shape} (only a map's "
                                "channels: dim 1)")
        c = self.shape[0]
        if chunks:  # torch.chunk: parts of ceil(c / n) channels, the last the rest
            step = -(-c // int(sizes))
            sizes = [min(step, c - a) for a in range(0, c, step)]
        elif isinstance(sizes, int):
            sizes = [min(sizes, c - a) for a in range(0, c, sizes)]
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        if any(u.op != "call_function" or u.target is not operator.getitem for u in node.users):
            raise _refuse(node, "a split whose parts are used other than one by one (x1, x2 = x.chunk(2, 1))")
        self.parts[node] = [(a, a + n) for a, n in zip(starts, sizes)]

    def select(self, node, index: tuple[int, ...]) -> None:
        """Channels ``index`` of the current map, in that order (the whole map in order: the map itself). A
        selection of a selection's output is one selection of that one's input (a chunk after a channel
        shuffle); the first, if nothing else reads it, is dropped when the walk ends."""
        if index == tuple(range(self.shape[0])):
            return
        made = next((layer for layer in self.layers if layer.name == self.current), None)
        if isinstance(made, ChannelSelect):
            index = tuple(made.index[k] for k in index)
            self.current = made.inputs[0]
            if index == tuple(range(self.shape[0])):
                return
        self.add(ChannelSelect(_name(node), self.shape, (len(index), *self.shape[1:]), index))

    def add_tensors(self, node, left: str, right: str) -> None:
        a, b = self.shapes[left], self.shapes[right]
        if a != b:
            raise _refuse(node, f"add of shapes {a} and {b} (both operands must have one shape; no broadcasting)")
        self.add(Add(_name(node), a, a, (left, right)))

    def pool(self, node, kind: str, kernel, stride, padding=0, ceil_mode=False, dilation=1,
             count_include_pad=True) -> None:
        if len(self.shape) != 3:
            raise _refuse(node, f"pooling needs a (C, H, W) input, got shape {self.shape}")
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride if stride not in (None, [], ()) else kernel)
        ph, pw = _pair(padding)
        if _pair(dilation) != (1, 1):
            raise _refuse(node, f"dilation={dilation} (only 1 is supported)")
        if ph > kh // 2 or pw > kw // 2:
            raise _refuse(node, f"padding {(ph, pw)} is more than half the window {(kh, kw)}")
        c, h, w = self.shape
        oh, ow = _pool_size(h, kh, sh, ph, bool(ceil_mode)), _pool_size(w, kw, sw, pw, bool(ceil_mode))
        if oh < 1 or ow < 1:
            raise _refuse(node, f"window {(kh, kw)} does not fit the {h}x{w} input")
        cls = MaxPool2d if kind == "max" else AvgPool2d
        a = self._lift_split(node) if kind == "max" else None
        name = _name(node) if a is None else f"{_name(node)}.max"
        self.add(cls(name, self.shape, (c, oh, ow), (kh, kw), (sh, sw), (ph, pw), bool(ceil_mode),
                     bool(count_include_pad)))
        if a is not None:
            self._split(_name(node), a)

    def pool1d(self, node, kind: str, kernel, stride, padding=0, ceil_mode=False, dilation=1,
               count_include_pad=True) -> None:
        """MaxPool1d / AvgPool1d: a pool of window (1, k) on the (C, 1, L) map."""
        if not self.one_d:
            raise _refuse(node, "a 1-D pool in a model compiled for a (C, H, W) input (give input_shape (C, L))")
        stride = kernel if stride in (None, [], ()) else stride
        self.pool(node, kind, (1, _one(node, kernel)), (1, _one(node, stride)), (0, _one(node, padding)),
                  ceil_mode, (1, _one(node, dilation)), count_include_pad)

    def adaptive1d(self, node, kind: str, output_size) -> None:
        """AdaptiveAvgPool1d / AdaptiveMaxPool1d: to (1, size) on the (C, 1, L) map."""
        if not self.one_d:
            raise _refuse(node, "a 1-D pool in a model compiled for a (C, H, W) input (give input_shape (C, L))")
        self.adaptive(node, kind, (1, None if output_size is None else _one(node, output_size)))

    def adaptive(self, node, kind: str, output_size) -> None:
        """AdaptiveAvgPool2d / AdaptiveMaxPool2d to an output size that divides the map: a pool whose
        window and stride are map / size."""
        what = {"avg": "AdaptiveAvgPool2d", "max": "AdaptiveMaxPool2d"}[kind]
        if len(self.shape) != 3:
            raise _refuse(node, f"{what} needs a (C, H, W) input, got shape {self.shape}")
        _, h, w = self.shape
        size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if len(size) == 1:
            size = (size[0], size[0])
        oh, ow = (h if size[0] is None else int(size[0])), (w if size[1] is None else int(size[1]))
        if oh >= 1 and ow >= 1 and not (h % oh or w % ow):
            self.pool(node, kind, (h // oh, w // ow), (h // oh, w // ow))
        elif oh >= 1 and ow >= 1 and kind == "avg" and _into_linear(node):
            self.spreads[node] = _Spread(self.shape[0], (h, w), (oh, ow))
        else:
            raise _refuse(node, f"{what} output size {output_size} on a {h}x{w} map (the output size must divide "
                                "the map, or an average pool's output go through a flatten to one Linear alone, "
                                "which takes the pool into its weights)")

    def spatial_reduce(self, node, kind: str, dims, keepdim, what: str | None = None) -> None:
        """``x.mean((2, 3))`` or ``x.amax((2, 3))`` of an (N, C, H, W) tensor (a 1-D model's ``x.mean(2)``):
        a global average or max pool, then a flatten to (C,) unless ``keepdim``."""
        what = what or {"avg": "mean", "max": "amax"}[kind]
        if len(self.shape) != 3:
            raise _refuse(node, f"{what} of a tensor of shape {self.shape} (only over the map of a (C, H, W) tensor)")
        axes = dims if isinstance(dims, (tuple, list)) else (dims,)
        rank = 2 + self.map_dims()
        spatial = list(range(2, rank))
        if not all(isinstance(d, int) for d in axes) or sorted(d % rank for d in axes) != spatial:
            raise _refuse(node, f"{what} over dims {dims} (only over the map's dims {tuple(spatial)}: a global pool)")
        c = self.shape[0]
        self.adaptive(node, kind, 1)
        if not keepdim:
            self.flatten(node, (c,))

    def squeeze(self, node, dims) -> None:
        """``x.squeeze(...)``: the map's dimensions of size one dropped (all of them, or ``dims``, never the
        batch's), as a flatten to one dimension where that is what is left."""
        shape = self.input_torch_shape(node)
        rank = len(shape) + 1  # with the batch
        axes = range(1, rank) if dims is None else dims if isinstance(dims, (tuple, list)) else (dims,)
        axes = {int(d) % rank for d in axes}
        if 0 in axes:
            raise _refuse(node, "squeeze of the batch dimension")
        kept = tuple(n for d, n in enumerate(shape, start=1) if d not in axes or n != 1)
        self.flatten(node, kept)

    def flatten(self, node, out_shape: Shape) -> None:
        """A view/reshape/flatten/squeeze (``out_shape`` as torch has it) to one dimension per sample, with or
        without dims of size one beside it (``x.squeeze(-1).squeeze(-1)`` passes (C, 1)); nothing else."""
        numel = 1
        for d in self.shape:
            numel *= d
        in_torch = self.input_torch_shape(node)
        source = _data_input(node)
        if source in self.spreads:  # the map before an adaptive pool its Linear takes in: flattened as it is
            spread = self.spreads.pop(source)
            if tuple(d for d in out_shape if d != 1) != (spread.features,):
                raise _refuse(node, f"reshape of {in_torch} to {tuple(out_shape)} (only flattening to 1-D)")
            self.add(Flatten(_name(node), self.shape, (numel,)))
            self.spreads[node] = spread
            return
        if source in self.grouped:  # the end of a channel shuffle, or a group view undone
            g, per, swapped = self.grouped[source]
            if tuple(out_shape) != self.shape:
                raise _refuse(node, f"reshape of a ({g}, {per}, ...) group view to {tuple(out_shape)} (only back to "
                                    f"{self.shape}: a channel shuffle)")
            self.select(node, tuple((o % g) * per + o // g for o in range(g * per)) if swapped else
                        tuple(range(g * per)))
            return
        if (len(self.shape) == 3 and not self.one_d and len(out_shape) == 4 and tuple(out_shape[2:]) == self.shape[1:]
                and out_shape[0] * out_shape[1] == self.shape[0]):
            self.grouped[node] = (int(out_shape[0]), int(out_shape[1]), False)  # (N, g, C/g, H, W)
            return
        if tuple(out_shape) == in_torch:
            return  # a no-op reshape
        if tuple(d for d in out_shape if d != 1) != (numel,) and tuple(out_shape) != (numel,):
            raise _refuse(node, f"reshape of {in_torch} to {tuple(out_shape)} (only flattening to 1-D)")
        if len(self.shape) == 1:
            return
        self.add(Flatten(_name(node), self.shape, (numel,)))


@dataclass(frozen=True)
class _Spread:
    """An AdaptiveAvgPool2d whose output size does not divide the map (VGG's and AlexNet's pools to 7 x 7 and
    6 x 6, on the 1 x 1 map a small image leaves), read only through a flatten by one Linear. The pool is a
    linear map of each channel's pixels, so the Linear takes it into its weights: W' = W · P, on the map's
    own C·H·W features (docs/frontend.md, "Adaptive pools a Linear takes in"). P is torch's pool of each
    pixel's unit map, so its bins are torch's."""

    channels: int
    map: tuple[int, int]  # (H, W) of the map the pool reads
    pooled: tuple[int, int]  # its output size

    @property
    def features(self) -> int:
        """The Linear's input features as the model has them: C · OH · OW."""
        return self.channels * self.pooled[0] * self.pooled[1]

    def fold(self, weight: torch.Tensor) -> torch.Tensor:
        """A Linear's (O, C·OH·OW) weights as (O, C·H·W) weights on the map before the pool."""
        (h, w), (oh, ow) = self.map, self.pooled
        units = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
        pool = F.adaptive_avg_pool2d(units, (oh, ow)).reshape(h * w, oh * ow)  # pool[p, q]: pixel p's share of q
        per_channel = weight.double().reshape(weight.shape[0], self.channels, oh * ow)
        return (per_channel @ pool.T).reshape(weight.shape[0], -1).float()


def _reader(node: torch.fx.Node) -> str | None:
    """What a node does with the tensor it reads, where an adaptive pool's Linear may take it in: "linear",
    "flatten", "pass" (dropout, identity, a copy), else None."""
    if node.op == "call_module":
        m = node.graph.owning_module.get_submodule(node.target)
        if isinstance(m, nn.Linear):
            return "linear"
        if isinstance(m, nn.Flatten):
            return "flatten"
        return "pass" if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)) else None
    if node.op not in ("call_function", "call_method"):
        return None
    name = _op_name(node)
    if name == "linear" and node.op == "call_function":  # F.linear, aten's
        return "linear"
    if name in {"flatten", "view", "reshape", "_unsafe_view"}:
        return "flatten"
    return "pass" if name in {"dropout", "detach"} | _COPY_NAMES else None


def _into_linear(node: torch.fx.Node) -> bool:
    """Whether ``node``'s output reaches one Linear and nothing else, through pass-throughs and one flatten."""
    flattened = False
    while True:
        users = _data_users(node)
        if len(users) != 1 or _data_input(users[0]) is not node:
            return False
        node, kind = users[0], _reader(users[0])
        if kind == "linear":
            return flattened
        if kind is None or (kind == "flatten" and flattened):
            return False
        flattened = flattened or kind == "flatten"


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
    """A sample's shape: (C, H, W), or (C, L) for a 1-D model."""
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise XaiHlsError(f"input_shape must be (C, H, W) or (C, L) integers, got {input_shape!r}") from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise XaiHlsError(f"input_shape must be (C, H, W), or (C, L) for a 1-D model, with positive sizes, "
                          f"got {input_shape!r}")
    return shape


def _propagate_shapes(gm: torch.fx.GraphModule, input_shape: Shape, model: nn.Module | None = None) -> None:
    """The shapes (and shape arithmetic's values) of ``gm`` on a sample of ``input_shape``; refused in one line where
    the model does not take that shape, with the model's own message when ``model`` is given (a traced f-string
    prints Proxy(...) for the values it was given)."""
    sample = torch.zeros((1, *input_shape))
    try:
        with torch.no_grad():
            for run in (model, gm) if model is not None else (gm,):
                run(sample)  # a plain run first: ShapeProp prints a traceback of its own on failure
    except Exception as exc:  # the model's own error, shortened to one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XaiHlsError(f"model does not accept input_shape {input_shape}: {first}") from None
    _ShapeValues(gm).propagate(sample)


class _ShapeValues(ShapeProp):
    """ShapeProp that also keeps what shape arithmetic computes (``x.shape[2]``, ``x.size(-1) // 2``): the
    ints and tuples of ints of the one input shape, which a layer's arguments may be made of (``_static``)."""

    def run_node(self, n):
        result = super().run_node(n)
        if isinstance(result, (int, tuple, list)) and all(isinstance(v, int) for v in _flat(result)):
            n.meta["static_value"] = result
        return result


def _flat(value: Any) -> list:
    return [x for v in value for x in _flat(v)] if isinstance(value, (tuple, list)) else [value]


def _static(value: Any) -> Any:
    """An argument with the shape arithmetic in it replaced by what it computed for the input shape."""
    if isinstance(value, torch.fx.Node):
        return value.meta.get("static_value", value)
    if isinstance(value, (tuple, list)):
        return type(value)(_static(v) for v in value)
    return value


def _out_shape(node: torch.fx.Node) -> Shape:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape[1:])


def _data_input(node: torch.fx.Node) -> torch.fx.Node | None:
    """The node's first argument that may be data: not a parameter or buffer, not shape arithmetic
    (``2 * x`` reads x)."""
    for a in (*node.args, node.kwargs.get("input")):
        for x in (a if isinstance(a, (tuple, list)) else (a,)):  # a cat's list of tensors
            if isinstance(x, torch.fx.Node) and x.op != "get_attr" and "static_value" not in x.meta:
                return x
    return None


def _arg(node: torch.fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return _static(node.args[index])
    return _static(node.kwargs.get(name, default))


def _per_channel(node: torch.fx.Node, value: Any, c: int, map_dims: int) -> torch.Tensor:
    """A number, or a constant of one value a channel, as C float64s. ``map_dims``: the dims after the
    channels' (0 for a Linear's features, 1 for a 1-D map, 2 for a 2-D one), which such a constant
    has of size one: (C,) for features, (C, 1) or (C, 1, 1) for maps, leading ones allowed (torch
    broadcasts a (C,) constant along a map's last dim, not its channels)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full((c,), float(value), dtype=torch.float64)
    if isinstance(value, torch.Tensor):
        t = value.detach().to(torch.float64)
        if t.numel() == 1:
            return t.reshape(1).expand(c).clone()
        shape = tuple(t.shape)
        want = (c,) + (1,) * map_dims
        if len(shape) >= len(want) and shape[len(shape) - len(want):] == want and all(
                d == 1 for d in shape[:len(shape) - len(want)]):
            return t.reshape(c)
        raise _refuse(node, f"arithmetic with a constant of shape {shape} (a number, or one value a channel: "
                            f"{want})")
    raise _refuse(node, f"arithmetic with {value!r} (a number, or a constant of one value a channel)")


_ARITH_FUNCS = {operator.add: "add", operator.iadd: "add", torch.add: "add", operator.sub: "sub",
                operator.isub: "sub", torch.sub: "sub", operator.mul: "mul", operator.imul: "mul", torch.mul: "mul",
                operator.truediv: "div", operator.itruediv: "div", torch.div: "div"}
_ARITH_METHODS = {"add": "add", "add_": "add", "__add__": "add", "__iadd__": "add", "__radd__": "add",
                  "sub": "sub", "sub_": "sub", "__sub__": "sub", "__isub__": "sub", "__rsub__": "rsub",
                  "mul": "mul", "mul_": "mul", "__mul__": "mul", "__imul__": "mul", "__rmul__": "mul",
                  "div": "div", "div_": "div", "__truediv__": "div", "__itruediv__": "div", "__rtruediv__": "rdiv"}


def _arith(b: _Builder, node: torch.fx.Node, kind: str, env: dict, constant: Callable[[Any], Any]) -> None:
    """``x + y`` of two tensors (an Add), or x with a constant (a per-channel affine, ``_Builder.affine``).
    ``kind``: add, sub, mul, div, or rsub/rdiv (the tensor second: ``c - x``)."""
    left, right = _arg(node, 0, "input"), _arg(node, 1, "other")
    if kind in ("rsub", "rdiv"):
        left, right, kind = right, left, kind[1:]
    alpha = _arg(node, 2, "alpha", 1) if kind in ("add", "sub") else 1
    if node.kwargs.get("rounding_mode") is not None:
        raise _refuse(node, f"division with rounding_mode={node.kwargs['rounding_mode']!r}")
    data = [isinstance(v, torch.fx.Node) and v in env for v in (left, right)]
    if all(data):
        if kind != "add" or alpha != 1:
            raise _refuse(node, f"{kind} of two tensors{' with alpha != 1' if alpha != 1 else ''} (only their sum)")
        b.add_tensors(node, env[left], env[right])
        return
    if not any(data):
        raise _refuse(node, "arithmetic on constants alone (it reads no tensor of the model's layers)")
    tensor_first = data[0]
    value = constant(right if tensor_first else left)
    if isinstance(value, torch.fx.Node):
        raise _refuse(node, f"arithmetic with '{value.name}', which is not a constant")
    sign = -1 if kind == "sub" else 1
    if kind in ("add", "sub"):  # left + sign * alpha * right
        b.affine(node, 1, value * (sign * alpha)) if tensor_first else b.affine(node, sign * alpha, value)
    elif kind == "mul":
        b.affine(node, value, 0)
    elif tensor_first:  # div
        b.affine(node, 1 / value, 0)
    else:
        raise _refuse(node, "a constant divided by a tensor")


def _swap_groups(b: _Builder, node: torch.fx.Node, dims: tuple) -> None:
    """transpose(1, 2) or permute(0, 2, 1, 3, 4) of a (g, C/g, H, W) group view: a channel shuffle's middle."""
    source = _data_input(node)
    swaps = (sorted(d % 5 for d in dims) == [1, 2]) if len(dims) == 2 else tuple(d % 5 for d in dims) == (0, 2, 1, 3, 4)
    if source not in b.grouped or not swaps:
        raise _refuse(node, f"a transpose or permute {tuple(dims)} (only of a group view's two group dims: a "
                            "channel shuffle)")
    g, per, swapped = b.grouped[source]
    b.grouped[node] = (g, per, not swapped)  # element (j, i) of the swapped view is channel i * per + j


def _tensor_list(node: torch.fx.Node, env: dict) -> list[str]:
    """The tensors of a cat's first argument (a list or tuple of the layers' tensors)."""
    items = _arg(node, 0, "tensors")
    if not isinstance(items, (tuple, list)) or not all(isinstance(t, torch.fx.Node) and t in env for t in items):
        raise _refuse(node, "cat of something other than tensors the layers compute")
    return [env[t] for t in items]


def _max_over(b: _Builder, node: torch.fx.Node, env: dict) -> None:
    """``x.max(dim)`` / ``torch.max(x, dim)`` over the map (a 1-D model's ``x.max(-1)[0]`` or ``.values``): a
    global max pool; over anything else, or of two tensors, refused."""
    dim = _arg(node, 1, "dim")
    if isinstance(dim, torch.fx.Node) and dim in env:
        raise _refuse(node, "max of two tensors (only a max over the map: a global max pool)")
    if dim is None:
        raise _refuse(node, "max over every element (only a max over the map: a global max pool)")
    b.spatial_reduce(node, "max", dim, _arg(node, 2, "keepdim", False), what="max")


_COPY_NAMES = {"contiguous", "clone", "_to_copy", "alias"}


def _op_name(node: torch.fx.Node) -> str:
    """A call's op name without its overload: a method's, a function's or an aten op's (``clone``)."""
    name = getattr(node.target, "__name__", None) or str(node.target)
    return name.split(".")[0]


def _is_copy(node: torch.fx.Node) -> bool:
    """``contiguous`` / ``clone``, as a method or an aten op: the same values."""
    return _op_name(node) in _COPY_NAMES


def _keeps_groups(node: torch.fx.Node) -> bool:
    """A node a channel shuffle is written with: a view or reshape, a transpose or permute, a copy."""
    return _op_name(node) in {"view", "reshape", "transpose", "permute", "flatten", "_unsafe_view"} | _COPY_NAMES


_SOFTMAX_NAMES = {"softmax", "log_softmax", "_softmax", "_log_softmax"}


def _is_softmax(gm: torch.fx.GraphModule, node: torch.fx.Node) -> bool:
    """A softmax or log-softmax, as a module, a function, a method or an aten op."""
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), (nn.Softmax, nn.LogSoftmax))
    return node.op in ("call_function", "call_method") and _op_name(node) in _SOFTMAX_NAMES


def _walk(gm: torch.fx.GraphModule, input_shape: Shape, handle: Callable[[_Builder, torch.fx.Node, dict], bool]
          ) -> Graph:
    """Walk the traced nodes in order; ``handle`` turns one call node into layers.

    ``env`` maps each node that holds a data tensor to that tensor's name (the input, or the
    layer that made it); a node that passes its input through maps to the same name.
    """
    one_d = len(input_shape) == 2
    maps = (input_shape[0], 1, input_shape[1]) if one_d else input_shape
    builder = _Builder({INPUT: maps}, [], one_d=one_d)
    env: dict[torch.fx.Node, str] = {}
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if env:
                raise _refuse(node, "the model must take exactly one input tensor")
            env[node] = INPUT
            continue
        if node.op == "get_attr" or (node.op == "call_module" and node.target == "_guards_fn"):
            continue  # parameters, and torch.export's input-shape guard
        if node.op == "output":
            result = node.args[0]
            if isinstance(result, (tuple, list)):
                if len(result) != 1:
                    raise _refuse(node, "the model must return one tensor of logits")
                result = result[0]
            last = builder.layers[-1].name if builder.layers else INPUT
            if env.get(result) != last:
                raise _refuse(node, "the output is not the last layer's result")
            break
        if node.op == "call_function" and node.target is operator.getitem and node.args[0] in builder.parts:
            start, stop = builder.parts[node.args[0]][node.args[1]]  # a part of a chunk or split
            builder.current = env[node.args[0]]
            before = len(builder.layers)
            builder.select(node, tuple(range(start, stop)))
            env[node] = builder.current
            builder.produced[node] = builder.layers[-1] if len(builder.layers) > before else None
            continue
        source = _data_input(node) if node.op in ("call_function", "call_method", "call_module") else None
        shape_only = (node.op == "call_method" and node.target in ("size", "dim")) or node.target is getattr
        if source in builder.grouped and not _keeps_groups(node) and not shape_only:
            raise _refuse(node, "an operation on a (groups, channels / groups, H, W) view (only a channel shuffle: "
                                "view, transpose(1, 2), view back)")
        if node.op == "call_function" and node.target is operator.getitem:
            source = node.args[0]
            if source in env:  # an element of a data value: the first of an op's tuple of results only
                if isinstance(source.meta.get("tensor_meta"), (tuple, list)):
                    if node.args[1] == 0:
                        env[node] = env[source]
                        continue
                    if not node.users:  # an unused element (torch.export keeps a pool's indices)
                        continue
                raise _refuse(node, "indexing or slicing a tensor")
            continue  # shape arithmetic
        if node.op == "call_function" and node.target is getattr and node.args[0] in env and node.args[1] in (
                "values", "indices"):  # a field of a (values, indices) result: x.max(dim).values
            if node.args[1] == "indices":
                raise _refuse(node, "the indices of a layer's results (only its values)")
            env[node] = env[node.args[0]]
            continue
        if node.op == "call_function" and node.target in _SHAPE_HELPERS:
            continue
        if node.op == "call_function" and node.target is torch._assert and _data_input(node) is None:
            continue  # the model's own check of the input's shape (ViT's), which held when the shapes were traced
        if node.op in ("call_function", "call_method") and "static_value" in node.meta:
            continue  # arithmetic on the input's shape (x.size(-1) // 2): its value stands in the arguments
        if node.op == "call_method" and node.target in ("size", "dim"):
            continue
        source = _data_input(node)
        if source not in env:
            raise _refuse(node, "it does not read a tensor of the model's layers")
        if _is_softmax(gm, node) and all(u.op == "output" for u in node.users):
            raise _refuse(node, "a softmax on the model's output: compile the model without it (the engine "
                                "returns and explains the logits; the predicted class is the same)")
        builder.current = env[source]
        before = len(builder.layers), builder.current
        handle(builder, node, env)
        if source in builder.grouped and node not in builder.grouped and builder.current == before[1] and (
                len(builder.layers) == before[0] and _is_copy(node)):
            builder.grouped[node] = builder.grouped[source]  # contiguous / clone of a group view
        env[node] = builder.current
        if source in builder.spreads:  # a pass-through between an adaptive pool and the Linear that takes it in
            builder.spreads[node] = builder.spreads.pop(source)
        added = len(builder.layers) > before[0]
        builder.produced[node] = builder.layers[-1] if added else None
        if not added and builder.current != before[1]:  # a cat made before, or of one map: not a pass-through
            builder.reused.add(node)
    if not builder.layers:
        raise XaiHlsError("model has no layers to compile")
    read = {name for layer in builder.layers for name in layer.inputs} | {builder.layers[-1].name}
    builder.layers = [layer for layer in builder.layers if not isinstance(layer, ChannelSelect) or layer.name in read]
    graph = with_copies(Graph(maps, tuple(builder.layers), sample_shape=input_shape if one_d else None))
    for k, users in enumerate(graph.consumers[:-1]):
        if not users:
            name = graph.tensor_names[k]
            raise XaiHlsError(f"layer '{name}' does not reach the logits (its result is never used); "
                              "remove it from the model")
    if len(graph.output_shape) != 1:
        raise XaiHlsError(f"model output must be a vector of logits per sample, got shape {graph.output_shape}")
    return graph


def _attribute(gm: torch.fx.GraphModule, value: Any) -> Any:
    """A module's parameter or buffer (a get_attr node) as its tensor; anything else as it is."""
    if isinstance(value, torch.fx.Node) and value.op == "get_attr":
        obj = gm
        for part in str(value.target).split("."):
            obj = getattr(obj, part)
        return obj
    return value


def _handle_module_node(gm: torch.fx.GraphModule) -> Callable[[_Builder, torch.fx.Node, dict], bool]:
    constant = functools.partial(_attribute, gm)

    def handle(b: _Builder, node: torch.fx.Node, env: dict) -> bool:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, nn.Conv2d):
                b.conv(node, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, m.padding_mode)
            elif isinstance(m, nn.Conv1d):
                b.conv1d(node, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, m.padding_mode)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                if m.running_mean is None:
                    raise _refuse(node, f"{type(m).__name__} without running statistics (track_running_stats=False)")
                b.batchnorm(node, m.running_mean, m.running_var, m.weight, m.bias, m.eps)
            elif isinstance(m, nn.ReLU):
                b.relu(node)
            elif isinstance(m, nn.Hardtanh):  # nn.ReLU6 is a Hardtanh(0, 6)
                b.clamp(node, m.min_val, m.max_val)
            elif isinstance(m, nn.LeakyReLU):
                b.leaky(node, m.negative_slope)
            elif isinstance(m, nn.PReLU):
                b.leaky(node, m.weight)
            elif isinstance(m, nn.MaxPool2d):
                if m.return_indices:
                    raise _refuse(node, "return_indices=True")
                b.pool(node, "max", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation)
            elif isinstance(m, nn.AvgPool2d):
                if m.divisor_override is not None:
                    raise _refuse(node, "divisor_override")
                b.pool(node, "avg", m.kernel_size, m.stride, m.padding, m.ceil_mode, 1, m.count_include_pad)
            elif isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)):
                if isinstance(m, nn.MaxPool1d) and m.return_indices:
                    raise _refuse(node, "return_indices=True")
                if isinstance(m, nn.MaxPool1d):
                    b.pool1d(node, "max", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation)
                else:
                    b.pool1d(node, "avg", m.kernel_size, m.stride, m.padding, m.ceil_mode, 1, m.count_include_pad)
            elif isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)):
                if isinstance(m, nn.AdaptiveMaxPool1d) and m.return_indices:
                    raise _refuse(node, "return_indices=True")
                b.adaptive1d(node, "avg" if isinstance(m, nn.AdaptiveAvgPool1d) else "max", m.output_size)
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                b.adaptive(node, "avg", m.output_size)
            elif isinstance(m, nn.AdaptiveMaxPool2d):
                if m.return_indices:
                    raise _refuse(node, "return_indices=True")
                b.adaptive(node, "max", m.output_size)
            elif isinstance(m, nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise _refuse(node, f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})")
                b.flatten(node, _out_shape(node))
            elif isinstance(m, nn.Linear):
                b.linear(node, m.weight, m.bias)
            elif isinstance(m, (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)):
                b.pad(node, m.padding, "constant", m.value)
            elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
                pass
            else:
                raise _refuse(node, f"module type {type(m).__name__}")
            return True
        if node.op == "call_function":
            if node.target in _RELU_FUNCS:
                b.relu(node)
            elif node.target in _ARITH_FUNCS:
                _arith(b, node, _ARITH_FUNCS[node.target], env, constant)
            elif node.target is F.relu6:
                b.clamp(node, 0, 6)
            elif node.target is F.hardtanh:
                b.clamp(node, _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0))
            elif node.target is F.leaky_relu:
                b.leaky(node, _arg(node, 1, "negative_slope", 0.01))
            elif node.target in (F.prelu, torch.prelu):
                b.leaky(node, constant(_arg(node, 1, "weight")))
            elif node.target is torch.clamp:
                b.clamp(node, _arg(node, 1, "min"), _arg(node, 2, "max"))
            elif node.target is F.linear:
                b.linear(node, constant(_arg(node, 1, "weight")), constant(_arg(node, 2, "bias")))
            elif node.target in _FLATTEN_FUNCS:
                b.flatten(node, _out_shape(node))
            elif node.target is F.max_pool2d:
                b.pool(node, "max", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                       _arg(node, 3, "padding", 0), _arg(node, 5, "ceil_mode", False), _arg(node, 4, "dilation", 1))
            elif node.target is F.avg_pool2d:
                if _arg(node, 6, "divisor_override") is not None:
                    raise _refuse(node, "divisor_override")
                b.pool(node, "avg", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                       _arg(node, 3, "padding", 0), _arg(node, 4, "ceil_mode", False), 1,
                       _arg(node, 5, "count_include_pad", True))
            elif node.target in (F.conv1d, F.conv2d):
                conv = b.conv1d if node.target is F.conv1d else b.conv
                conv(node, constant(_arg(node, 1, "weight")), constant(_arg(node, 2, "bias")),
                     _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1),
                     _arg(node, 6, "groups", 1))
            elif node.target is F.max_pool1d:
                if _arg(node, 6, "return_indices", False):
                    raise _refuse(node, "return_indices=True")
                b.pool1d(node, "max", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                         _arg(node, 3, "padding", 0), _arg(node, 5, "ceil_mode", False), _arg(node, 4, "dilation", 1))
            elif node.target is F.avg_pool1d:
                b.pool1d(node, "avg", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                         _arg(node, 3, "padding", 0), _arg(node, 4, "ceil_mode", False), 1,
                         _arg(node, 5, "count_include_pad", True))
            elif node.target in (F.adaptive_avg_pool1d, F.adaptive_max_pool1d):
                if node.target is F.adaptive_max_pool1d and _arg(node, 2, "return_indices", False):
                    raise _refuse(node, "return_indices=True")
                b.adaptive1d(node, "avg" if node.target is F.adaptive_avg_pool1d else "max",
                             _arg(node, 1, "output_size"))
            elif node.target is F.adaptive_avg_pool2d:
                b.adaptive(node, "avg", _arg(node, 1, "output_size"))
            elif node.target is F.adaptive_max_pool2d:
                if _arg(node, 2, "return_indices", False):
                    raise _refuse(node, "return_indices=True")
                b.adaptive(node, "max", _arg(node, 1, "output_size"))
            elif node.target in (torch.cat, torch.concat, torch.concatenate):
                b.concat(node, _tensor_list(node, env), _arg(node, 1, "dim", 0))
            elif node.target is torch.squeeze:
                b.squeeze(node, _arg(node, 1, "dim"))
            elif node.target in (torch.mean, torch.amax):
                kind = "avg" if node.target is torch.mean else "max"
                b.spatial_reduce(node, kind, _arg(node, 1, "dim"), _arg(node, 2, "keepdim", False))
            elif node.target is torch.max:
                _max_over(b, node, env)
            elif node.target in (torch.chunk, torch.split):
                size = _arg(node, 1, "chunks" if node.target is torch.chunk else "split_size_or_sections")
                b.split(node, size, _arg(node, 2, "dim", 0), chunks=node.target is torch.chunk)
            elif node.target is torch.transpose:
                _swap_groups(b, node, (_arg(node, 1, "dim0"), _arg(node, 2, "dim1")))
            elif node.target is torch.permute:
                _swap_groups(b, node, tuple(_arg(node, 1, "dims")))
            elif node.target is F.pad:
                b.pad(node, _arg(node, 1, "pad"), _arg(node, 2, "mode", "constant"), _arg(node, 3, "value", 0.0))
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
            elif node.target in _ARITH_METHODS:
                _arith(b, node, _ARITH_METHODS[node.target], env, constant)
            elif node.target in ("clamp", "clamp_", "clip"):
                b.clamp(node, _arg(node, 1, "min"), _arg(node, 2, "max"))
            elif node.target == "squeeze":
                b.squeeze(node, _arg(node, 1, "dim"))
            elif node.target in ("mean", "amax"):
                kind = "avg" if node.target == "mean" else "max"
                b.spatial_reduce(node, kind, _arg(node, 1, "dim"), _arg(node, 2, "keepdim", False))
            elif node.target == "max":
                _max_over(b, node, env)
            elif node.target in ("contiguous", "clone"):
                pass
            elif node.target in ("chunk", "split"):
                size = _arg(node, 1, "chunks" if node.target == "chunk" else "split_size")
                b.split(node, size, _arg(node, 2, "dim", 0), chunks=node.target == "chunk")
            elif node.target == "transpose":
                _swap_groups(b, node, (_arg(node, 1, "dim0"), _arg(node, 2, "dim1")))
            elif node.target == "permute":
                dims = node.args[1:] if len(node.args) > 2 else _arg(node, 1, "dims")
                _swap_groups(b, node, tuple(_static(dims)))
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
    _propagate_shapes(gm, shape, model)
    return _walk(gm, shape, _handle_module_node(gm))


# --- torch.export programs (.pt2): aten-level nodes -------------------------------------

def _aten(name: str):
    return getattr(torch.ops.aten, name, None)


def _handle_aten_node(gm: torch.fx.GraphModule) -> Callable[[_Builder, torch.fx.Node, dict], bool]:
    value = functools.partial(_attribute, gm)

    def packet(node) -> Any:
        return getattr(node.target, "overloadpacket", None)

    aten = torch.ops.aten
    _ATEN_ARITH = {aten.add: "add", aten.add_: "add", aten.sub: "sub", aten.sub_: "sub", aten.rsub: "rsub",
                   aten.mul: "mul", aten.mul_: "mul", aten.div: "div", aten.div_: "div"}

    def handle(b: _Builder, node: torch.fx.Node, env: dict) -> bool:
        if node.op != "call_function":
            raise _refuse(node)
        op = packet(node)
        args = [value(a) for a in node.args]
        if op is aten.conv2d:
            a = args + [None] * (7 - len(args))
            b.conv(node, a[1], a[2], a[3] or 1, a[4] or 0, a[5] or 1, a[6] or 1)
        elif op is aten.conv1d:
            a = args + [None] * (7 - len(args))
            b.conv1d(node, a[1], a[2], a[3] or 1, a[4] or 0, a[5] or 1, a[6] or 1)
        elif op is aten.convolution:
            if args[6]:
                raise _refuse(node, "transposed convolution")
            conv = b.conv1d if args[1].dim() == 3 else b.conv
            conv(node, args[1], args[2], args[3], args[4], args[5], args[8])
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
        elif op in _ATEN_ARITH:
            _arith(b, node, _ATEN_ARITH[op], env, value)
        elif op in (aten.relu6, aten.relu6_):
            b.clamp(node, 0, 6)
        elif op in (aten.leaky_relu, aten.leaky_relu_):
            b.leaky(node, args[1] if len(args) > 1 else 0.01)
        elif op in (aten.prelu, _aten("_prelu_kernel")):
            b.leaky(node, args[1])
        elif op in (aten.hardtanh, aten.hardtanh_):
            a = args + [None] * 3
            b.clamp(node, -1.0 if a[1] is None else a[1], 1.0 if a[2] is None else a[2])
        elif op in (aten.clamp, aten.clamp_, aten.clip):
            a = args + [None] * 3
            b.clamp(node, a[1] if a[1] is not None else node.kwargs.get("min"),
                    a[2] if a[2] is not None else node.kwargs.get("max"))
        elif op in (aten.max_pool2d, aten.max_pool2d_with_indices):
            a = args + [None] * 6
            b.pool(node, "max", a[1], a[2] or a[1], a[3] or 0, bool(a[5]), a[4] or 1)
        elif op is aten.avg_pool2d:
            a = args + [None] * 7
            if a[6] is not None:
                raise _refuse(node, "divisor_override")
            b.pool(node, "avg", a[1], a[2] or a[1], a[3] or 0, bool(a[4]), 1, True if a[5] is None else bool(a[5]))
        elif op in (aten.max_pool1d, aten.max_pool1d_with_indices):
            a = args + [None] * 6
            b.pool1d(node, "max", a[1], a[2] or a[1], a[3] or 0, bool(a[5]), a[4] or 1)
        elif op is aten.avg_pool1d:
            a = args + [None] * 6
            b.pool1d(node, "avg", a[1], a[2] or a[1], a[3] or 0, bool(a[4]), 1, True if a[5] is None else bool(a[5]))
        elif op in (aten.adaptive_avg_pool1d, aten.adaptive_max_pool1d):
            b.adaptive1d(node, "avg" if op is aten.adaptive_avg_pool1d else "max", args[1])
        elif op is aten.adaptive_avg_pool2d:
            b.adaptive(node, "avg", args[1])
        elif op is aten.adaptive_max_pool2d:
            b.adaptive(node, "max", args[1])
        elif op is aten.max and len(args) > 1 and isinstance(args[1], int):  # x.max(dim): (values, indices)
            b.spatial_reduce(node, "max", [args[1]], len(args) > 2 and bool(args[2]), what="max")
        elif op in (aten.mean, aten.amax) and len(args) > 1:
            b.spatial_reduce(node, "avg" if op is aten.mean else "max", list(args[1]), len(args) > 2 and bool(args[2]))
        elif op in (aten.linear,):
            b.linear(node, args[1], args[2] if len(args) > 2 else None)
        elif op in (aten.cat, aten.concat, aten.concatenate):
            b.concat(node, _tensor_list(node, env), args[1] if len(args) > 1 else node.kwargs.get("dim", 0))
        elif op is aten.squeeze:
            b.squeeze(node, args[1] if len(args) > 1 else None)
        elif op in (aten.view, aten.reshape, aten.flatten, aten._unsafe_view):
            b.flatten(node, _out_shape(node))
        elif op is aten.constant_pad_nd:
            b.pad(node, args[1], "constant", args[2] if len(args) > 2 else 0.0)
        elif op is aten.pad:
            b.pad(node, args[1], args[2] if len(args) > 2 else "constant", args[3] if len(args) > 3 else 0.0)
        elif op in (aten.split, aten.split_with_sizes, aten.chunk):
            b.split(node, args[1], args[2] if len(args) > 2 else node.kwargs.get("dim", 0), chunks=op is aten.chunk)
        elif op is aten.transpose:
            _swap_groups(b, node, (args[1], args[2]))
        elif op is aten.permute:
            _swap_groups(b, node, tuple(args[1]))
        elif op in (aten.dropout, aten.clone, aten.alias, aten.detach, aten.contiguous):
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
