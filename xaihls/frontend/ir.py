"""The layer-graph IR: a chain of float layers with their shapes.

A Graph is what the front end makes of a PyTorch model: BatchNorm already folded into
the convolution before it, Dropout and Identity dropped, every shape known. Shapes are
per sample: (C, H, W) for feature maps, (F,) for vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import torch

Shape = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D convolution, groups = 1, zero padding. Weight (O, I, kh, kw), bias (O,)."""

    name: str
    in_shape: Shape
    out_shape: Shape
    weight: torch.Tensor
    bias: torch.Tensor
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def fan_in(self) -> int:
        return self.in_channels * self.kernel[0] * self.kernel[1]

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


@dataclass(frozen=True)
class _Pool:
    name: str
    in_shape: Shape
    out_shape: Shape
    kernel: tuple[int, int]
    stride: tuple[int, int]


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    """Max pooling without padding; ties go to the first maximum in raster order."""


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    """Average pooling without padding (AdaptiveAvgPool2d(1) is the global case)."""


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) to (C*H*W,) in C-order, as torch.flatten(x, 1)."""

    name: str
    in_shape: Shape
    out_shape: Shape


Layer = Union[Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, Flatten]


@dataclass(frozen=True, eq=False)
class Graph:
    """A chain of layers from one input to the logits."""

    input_shape: Shape
    layers: tuple[Layer, ...] = field(default_factory=tuple)

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
