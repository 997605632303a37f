"""The quantized graph: a FixedFormat for every tensor of the forward AND backward passes.

Tensors are named by position in the chain: ``act[i]`` is the input of layer i
(``act[0]`` the image, ``act[L]`` the logits); ``grad[mode][i]`` is the gradient at the
input of layer i under a ReLU-backward mode (``grad[mode][0]`` the input gradient,
``grad[mode][L]`` the one-hot seed). Every requantization point is explicit: a layer's
``out`` format differs from the accumulator fraction it computes in, and the shift between
them is what every executor applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from xaihls.frontend.ir import AvgPool2d, Conv2d, Graph, Layer, Linear
from xaihls.methods import ReluBackward
from xaihls.numerics import FixedFormat


@dataclass(frozen=True, eq=False)
class QLayer:
    """One layer with its integer parameters and the formats around it.

    ``weight``/``bias`` are int64 (conv, linear); for average pooling ``weight`` is the
    1-element reciprocal of the window size in ``weight_fmt``.
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
    def is_avgpool(self) -> bool:
        return isinstance(self.layer, AvgPool2d)


@dataclass(frozen=True)
class AttributionFormats:
    """Formats of the post-processing unit's results under one ReLU-backward mode."""

    input_x_gradient: FixedFormat
    ig_summed_gradient: FixedFormat
    integrated_gradients: FixedFormat


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
