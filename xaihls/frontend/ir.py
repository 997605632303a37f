"""The layer-graph IR: a DAG of float layers with their shapes, in topological order.

A Graph is what the front end makes of a PyTorch model: BatchNorm folded into the
convolution before it (where that convolution feeds nothing else), Dropout and Identity
dropped, every shape known. Shapes are per sample: (C, H, W) for feature maps, (F,) for
vectors.

Tensors are named by what produces them: ``INPUT`` for the image, a layer's name for its
output. Each layer names the tensors it reads (``inputs``); an empty ``inputs`` reads the
tensor before it in the chain (the image for the first layer, else the previous layer's
output), so a chain built by hand stays valid. ``Graph.is_chain`` says whether the graph is
a single chain, which every hardware executor requires for now.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Union

import torch

Shape = tuple[int, ...]

INPUT = "input"
"""The name of the image tensor (no layer takes it)."""


def dilate_kernel(weight: torch.Tensor, dilation: tuple[int, int]) -> torch.Tensor:
    """A kernel (O, I, kh, kw) with dilation - 1 zero rows and columns between its taps: the undilated
    kernel of the same convolution."""
    (dy, dx), (o, i, kh, kw) = dilation, weight.shape
    out = torch.zeros((o, i, (kh - 1) * dy + 1, (kw - 1) * dx + 1), dtype=weight.dtype)
    out[:, :, ::dy, ::dx] = weight
    return out


@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D convolution with zero padding. Weight (O, I / groups, kh, kw), bias (O,).

    ``groups`` splits the channels as PyTorch does: output channel o reads the input channels of
    group o // (O / groups) (depthwise: groups = I). ``padding`` is the zero rows above and columns
    left of the map; ``out_shape`` says how far the windows reach past its bottom and right
    (``padding_end``): as far as on the other side for PyTorch's symmetric padding, further or less
    far for a zero pad folded in (``F.pad``, ``nn.ZeroPad2d``, ``padding='same'`` with an even kernel).
    ``dilation`` spaces the taps as PyTorch's does; every executor but the float reference runs a dilated
    convolution as its ``spread`` (docs/frontend.md, "Dilated convolutions").
    """

    name: str
    in_shape: Shape
    out_shape: Shape
    weight: torch.Tensor
    bias: torch.Tensor
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int = 1
    inputs: tuple[str, ...] = ()
    dilation: tuple[int, int] = (1, 1)

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def reach(self) -> tuple[int, int]:
        """The rows and columns a window spans: the kernel's, or (k - 1) * dilation + 1."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def dilated(self) -> bool:
        return self.dilation != (1, 1)

    def spread(self) -> "Conv2d":
        """The same convolution without dilation: a kernel as large as the window, zero between the taps
        (``dilate_kernel``). Every sum it makes is the dilated one's."""
        if not self.dilated:
            return self
        return dataclasses.replace(self, weight=dilate_kernel(self.weight, self.dilation), kernel=self.reach,
                                   dilation=(1, 1))

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def depthwise(self) -> bool:
        """Each output channel reads only its own input channel (the engine's diagonal job)."""
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    @property
    def padding_end(self) -> tuple[int, int]:
        """The zero rows below and columns right of the map that the windows reach (negative: the map's
        last rows or columns that no window reaches)."""
        (_, h, w), (_, oh, ow), (rh, rw) = self.in_shape, self.out_shape, self.reach
        return ((oh - 1) * self.stride[0] + rh - h - self.padding[0],
                (ow - 1) * self.stride[1] + rw - w - self.padding[1])

    @property
    def uneven(self) -> bool:
        """Whether the output is not PyTorch's for the symmetric ``padding`` (a zero pad folded in, more
        or less on the bottom and right than on the top and left)."""
        (_, h, w), (_, oh, ow) = self.in_shape, self.out_shape
        (kh, kw), (sh, sw), (ph, pw) = self.reach, self.stride, self.padding
        return (oh, ow) != ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    @property
    def frame(self) -> tuple[int, int, int, int]:
        """``F.pad``'s (left, right, top, bottom) that make the input exactly what the windows cover (a
        negative value crops), after which the convolution has no padding: how an uneven one runs."""
        (ph, pw), (pb, pr) = self.padding, self.padding_end
        return pw, pr, ph, pb

    @property
    def fan_in(self) -> int:
        return self.in_channels // self.groups * self.kernel[0] * self.kernel[1]

    @property
    def macs(self) -> int:
        return self.out_shape[0] * self.out_shape[1] * self.out_shape[2] * self.fan_in


@dataclass(frozen=True, eq=False)
class Linear:
    """Fully connected layer on a vector. Weight (O, I), bias (O,)."""

    name: str
    in_shape: Shape
    out_shape: Shape
    weight: torch.Tensor
    bias: torch.Tensor
    inputs: tuple[str, ...] = ()

    @property
    def fan_in(self) -> int:
        return self.in_shape[0]

    @property
    def macs(self) -> int:
        return self.in_shape[0] * self.out_shape[0]


@dataclass(frozen=True)
class ReLU:
    name: str
    in_shape: Shape
    out_shape: Shape
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReLU6:
    """min(max(x, 0), 6) (``nn.ReLU6``, ``hardtanh(x, 0, 6)``, ``clamp(x, 0, 6)``)."""

    name: str
    in_shape: Shape
    out_shape: Shape
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Pool:
    """A pooling window. ``padding`` on each side, ``ceil_mode`` as PyTorch: with it, a last
    window may run past the padded input, but never starts beyond it."""

    name: str
    in_shape: Shape
    out_shape: Shape
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True
    inputs: tuple[str, ...] = ()

    @property
    def is_plain(self) -> bool:
        """No padding and floor mode: every window lies inside the input."""
        return self.padding == (0, 0) and not self.ceil_mode


def per_channel(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values``, one a channel, shaped to broadcast over ``x`` (N, C, ...): a map's channels or a Linear's
    features (a per-channel affine of either)."""
    return values.reshape((-1,) + (1,) * (x.dim() - 2))


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    """Max pooling; padding counts as -infinity (PyTorch); ties go to the first maximum in raster order."""


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    """Average pooling (AdaptiveAvgPool2d(s) with s dividing the map is the case kernel = stride = map / s).

    The divisor of a window is PyTorch's: with ``count_include_pad`` the window's taps inside the
    padded input (zeros of the padding counted, a ceil-mode overhang past it not); without it, the
    taps inside the input only.
    """

    def divisors(self) -> torch.Tensor:
        """The divisor of each window (OH, OW), as PyTorch counts it: the product of the window's rows
        and columns that count."""
        def extent(size: int, out: int, k: int, s: int, p: int) -> torch.Tensor:
            start = torch.arange(out) * s - p
            stop = torch.minimum(start + k, torch.tensor(size + p))
            if not self.count_include_pad:
                start, stop = start.clamp(min=0), stop.clamp(max=size)
            return stop - start

        (_, h, w), (_, oh, ow) = self.in_shape, self.out_shape
        rows = extent(h, oh, self.kernel[0], self.stride[0], self.padding[0])
        cols = extent(w, ow, self.kernel[1], self.stride[1], self.padding[1])
        return rows[:, None] * cols[None, :]

    @property
    def windowed(self) -> bool:
        """Whether its windows have different divisors (``count_include_pad=False`` on a padded map, or
        a ceil-mode window past the padding): a reciprocal a window, not one for all."""
        return self.divisors().unique().numel() > 1


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) to (C*H*W,) in C-order, as torch.flatten(x, 1)."""

    name: str
    in_shape: Shape
    out_shape: Shape
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Add:
    """The element-wise sum of two tensors of one shape (a residual connection)."""

    name: str
    in_shape: Shape
    out_shape: Shape
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Concat:
    """The channels of two or more maps of one height and width, one after another (``torch.cat(...,
    dim=1)``); ``in_shape`` is the first operand's."""

    name: str
    in_shape: Shape
    out_shape: Shape
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ChannelSelect:
    """Some of a map's channels, in a given order: output channel k is input channel ``index[k]``
    (``torch.chunk`` / ``split`` along the channels, ShuffleNet's channel shuffle). The values are the
    input's, unrounded; backward, each input channel gets the gradient of the output channel it went to
    (zero where it went to none)."""

    name: str
    in_shape: Shape
    out_shape: Shape
    index: tuple[int, ...]
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ChannelAffine:
    """y[c] = x[c] * scale[c] + shift[c] on a (C, H, W) map: a BatchNorm2d that could not be folded."""

    name: str
    in_shape: Shape
    out_shape: Shape
    scale: torch.Tensor
    shift: torch.Tensor
    inputs: tuple[str, ...] = ()


Layer = Union[Conv2d, Linear, ReLU, ReLU6, MaxPool2d, AvgPool2d, Flatten, Add, Concat, ChannelAffine, ChannelSelect]


@dataclass(frozen=True, eq=False)
class Graph:
    """Layers in topological order from one input to the logits (the last layer's output).

    Tensor k is the image for k = 0 and layer k-1's output otherwise; in a chain, tensor k is
    also layer k's input. ``sample_shape``: a 1-D model's (C, L), whose maps the graph holds as
    (C, 1, L) (``input_shape``); None for a 2-D model.
    """

    input_shape: Shape
    layers: tuple[Layer, ...] = field(default_factory=tuple)
    sample_shape: Shape | None = None

    def __post_init__(self) -> None:
        if not any(layer.inputs for layer in self.layers):
            return  # a chain: layer i reads tensor i whatever the names
        seen = {INPUT: self.input_shape}
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"layer name '{layer.name}' is used twice (or is the input's)")
            for name in layer.inputs:
                if name not in seen:
                    raise ValueError(f"layer '{layer.name}' reads '{name}', which no earlier layer produces")
            seen[layer.name] = layer.out_shape

    @cached_property
    def tensor_names(self) -> tuple[str, ...]:
        """The name of tensor k: ``INPUT``, then each layer's."""
        return (INPUT, *(layer.name for layer in self.layers))

    @cached_property
    def _tensor_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for k, name in enumerate(self.tensor_names):
            index.setdefault(name, k)
        return index

    def tensor_index(self, name: str) -> int:
        return self._tensor_index[name]

    @cached_property
    def input_tensors(self) -> tuple[tuple[int, ...], ...]:
        """For each layer, the indices of the tensors it reads, in order."""
        return tuple(tuple(self._tensor_index[n] for n in layer.inputs) if layer.inputs else (i,)
                     for i, layer in enumerate(self.layers))

    @cached_property
    def consumers(self) -> tuple[tuple[int, ...], ...]:
        """For each tensor, the layers that read it (a layer reading it twice is listed twice)."""
        out: list[list[int]] = [[] for _ in range(len(self.layers) + 1)]
        for i, reads in enumerate(self.input_tensors):
            for k in reads:
                out[k].append(i)
        return tuple(tuple(c) for c in out)

    @cached_property
    def is_chain(self) -> bool:
        """Each layer reads only the tensor before it, and each tensor but the logits feeds one layer."""
        return (all(reads == (i,) for i, reads in enumerate(self.input_tensors))
                and all(len(c) == 1 for c in self.consumers[:-1]))

    def takes(self, j: int) -> bool:
        """Layer j reads tensor j (layer j - 1's output) alone and is its only reader: one engine
        job can take layer j in with the layer before it."""
        return 0 < j < len(self.layers) and self.input_tensors[j] == (j,) and self.consumers[j] == (j,)

    def pool_ranks_accumulator(self, i: int) -> bool:
        """Whether layer i is a max-pool that ranks the wide accumulator of the convolution below it
        rather than its input codes: a plain MaxPool2d that takes a dense (not depthwise) Conv2d's
        output, directly or through one ReLU. Exactly the pools the engine fuses into that
        convolution's write-back; every other pool is a job of its own, which sees codes. The golden
        model and the lowering both ask this, so they cannot disagree."""
        layers = self.layers
        if not (0 <= i < len(layers) and isinstance(layers[i], MaxPool2d) and layers[i].is_plain and self.takes(i)):
            return False
        k = i - 1
        if isinstance(layers[k], ReLU) and self.takes(k):
            k -= 1
        return k >= 0 and isinstance(layers[k], Conv2d) and not layers[k].depthwise

    @property
    def data_shape(self) -> Shape:
        """A sample's shape as the model takes it: (C, H, W), or a 1-D model's (C, L)."""
        return self.sample_shape or self.input_shape

    def as_maps(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the model's own shape as the graph's maps: a 1-D model's (N, C', L) as (N, C', 1, L)
        (its inputs, attributions, Grad-CAM's one channel); a 2-D model's unchanged."""
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]) if self.sample_shape else x

    def as_batch(self, t: torch.Tensor) -> torch.Tensor | None:
        """One sample or a batch, in the model's shape or as the graph's maps, as a batch of maps (N, *input_shape);
        None where ``t`` is neither."""
        if t.dim() == len(self.data_shape):
            t = t[None]
        if t.dim() == len(self.data_shape) + 1 and tuple(t.shape[1:]) == self.data_shape:
            return self.as_maps(t)
        return t if t.dim() == 4 and tuple(t.shape[1:]) == self.input_shape else None

    def as_samples(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of maps at the input's size (N, C', H, W) in the model's own shape: (N, C', L) for a
        1-D model (an attribution, or Grad-CAM's one channel), unchanged for a 2-D one."""
        return x.reshape(x.shape[0], x.shape[1], x.shape[3]) if self.sample_shape else x

    def tensor_shape(self, k: int) -> Shape:
        return self.input_shape if k == 0 else self.layers[k - 1].out_shape

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    @property
    def num_classes(self) -> int:
        return self.output_shape[0]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
