"""The public API: compile a model into an Accelerator, then predict and attribute on a backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Graph
from xaihls.frontend.trace import graph_from_module
from xaihls.golden import model as golden
from xaihls.methods import METHODS, check_methods
from xaihls.numerics import dequantize
from xaihls.plan.boards import Board, load_board
from xaihls.quant.calibrate import calibrate
from xaihls.quant.qgraph import QGraph

BACKENDS = ("golden", "program", "csim", "rtl")
AVAILABLE_BACKENDS = ("golden",)


class Accelerator:
    """A network quantized for one board: predictions and attributions on any backend.

    Every backend returns the same bits as ``golden`` (the reference); results come back
    as float tensors holding the exact fixed-point values.
    """

    def __init__(self, qgraph: QGraph, board: Board):
        self.qgraph = qgraph
        self.board = board

    @property
    def graph(self) -> Graph:
        return self.qgraph.graph

    @property
    def methods(self) -> tuple[str, ...]:
        return self.qgraph.methods

    def _check_backend(self, backend: str) -> None:
        if backend not in BACKENDS:
            raise XaiHlsError(f"unknown backend '{backend}'; backends: {', '.join(BACKENDS)}")
        if backend not in AVAILABLE_BACKENDS:
            raise XaiHlsError(
                f"backend '{backend}' is not available in this version; available: {', '.join(AVAILABLE_BACKENDS)}"
            )

    def run(self, x: Any, method: str | None = None, target=None, backend: str = "golden",
            steps: int | None = None, baseline=None, rule: str | None = None) -> golden.GoldenResult:
        """Integer results with formats and saturation counts (``method=None``: predict only)."""
        self._check_backend(backend)
        if method is None:
            return golden.predict(self.qgraph, x)
        return golden.attribute(self.qgraph, x, method, target, steps, baseline, rule)

    def predict(self, x: Any, backend: str = "golden") -> torch.Tensor:
        """Dequantized logits (N, classes), float32."""
        r = self.run(x, backend=backend)
        return dequantize(r.logits, r.logits_fmt).to(torch.float32)

    def attribute(self, x: Any, method: str = "saliency", target=None, backend: str = "golden",
                  steps: int | None = None, baseline=None, rule: str | None = None) -> torch.Tensor:
        """Dequantized attribution, shaped like ``x`` (N, C, H, W), float32 (exact values).

        ``target``: a class or one per image (default: the predicted class). For
        integrated gradients, ``steps`` (default: the compiled number), ``baseline``
        (default zeros) and ``rule`` ('trapezoid', 'left', 'right', 'middle').
        """
        r = self.run(x, method, target, backend, steps, baseline, rule)
        return dequantize(r.attribution, r.attribution_fmt).to(torch.float32)

    def write(self, out_dir: str | Path) -> Path:
        raise XaiHlsError("writing a hardware project is not available in this version (comes with the HLS backend)")

    def __repr__(self) -> str:
        layers = len(self.graph.layers)
        return (f"Accelerator({layers} layers, input {self.graph.input_shape}, board '{self.board.name}', "
                f"methods {', '.join(self.methods)})")


def compile(
    model: nn.Module | Graph,
    input_shape: tuple[int, int, int] | None = None,
    board: str | Path | Board = "pynq-z2",
    methods=tuple(METHODS),
    calibration: Any = None,
    config: dict | str | Path | None = None,
    ig_steps: int = 32,
) -> Accelerator:
    """Trace, calibrate and quantize ``model`` for ``board``.

    ``calibration``: a batch (N, C, H, W) of typical inputs; the ranges of every
    activation and every gradient of the requested ``methods`` are taken from it.
    """
    methods = check_methods(methods)
    if isinstance(model, Graph):
        graph = model
    else:
        if input_shape is None:
            raise XaiHlsError("input_shape (C, H, W) is required to compile an nn.Module")
        graph = graph_from_module(model, input_shape)
    if not isinstance(board, Board):
        board = load_board(board)  # an unknown board fails here, before the slow part
    qgraph = calibrate(graph, calibration, methods, config, ig_steps=ig_steps)
    return Accelerator(qgraph, board)
