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


class Accelerator:
    """A network quantized for one board: predictions and attributions on any backend.

    Every backend returns the same bits as ``golden`` (the reference); results come back
    as float tensors holding the exact fixed-point values.
    """

    def __init__(self, qgraph: QGraph, board: Board, tiling: tuple[int, int] | None = None):
        self.qgraph = qgraph
        self.board = board
        self.tiling = tiling
        self._plan = None

    @property
    def graph(self) -> Graph:
        return self.qgraph.graph

    @property
    def methods(self) -> tuple[str, ...]:
        return self.qgraph.methods

    def _check_backend(self, backend: str) -> None:
        if backend not in BACKENDS:
            raise XaiHlsError(f"unknown backend '{backend}'; backends: {', '.join(BACKENDS)}")

    @property
    def plan(self):
        """The engine and Program for this board (made on first use: it searches tilings)."""
        if self._plan is None:
            from xaihls.plan.planner import plan

            self._plan = plan(self.qgraph, self.board, tiling=self.tiling)
        return self._plan

    def run(self, x: Any, method: str | None = None, target=None, backend: str = "golden",
            steps: int | None = None, baseline=None, rule: str | None = None) -> golden.GoldenResult:
        """Integer results with formats (and saturation counts from golden); ``method=None`` predicts."""
        self._check_backend(backend)
        qg = self.qgraph
        if backend == "golden":
            if method is None:
                return golden.predict(qg, x)
            return golden.attribute(qg, x, method, target, steps, baseline, rule)
        if method is not None:
            golden.check_compiled(qg, method)
        x = golden.check_batch(qg, x)
        target = golden.check_target(qg, target, x.shape[0])
        x_q = golden.quantize_input(qg, x, golden.Saturations())
        steps, rule = golden.ig_settings(qg, steps, rule)
        base_q = golden.quantize_baseline(qg, baseline, x_q)
        p = self.plan
        cycles = None
        if backend == "program":
            from xaihls.sim.program import run_batch

            logits, used, attr = run_batch(p.program, p.engine.tm, p.engine.tn, x_q, method, target, steps, rule,
                                           base_q)
        elif backend == "csim":  # the HLS engine's C++, compiled with g++ (cached) and called in process
            from xaihls.backends.hls.csim import run_batch as run_csim

            logits, used, attr = run_csim(p, x_q, method, target, steps, rule, base_q)
        else:  # rtl: the SystemVerilog engine on Verilator (built once per parameter set, cached)
            from xaihls.backends.rtl.sim import run_rtl

            logits, used, attr, cycles = run_rtl(p.program, p.engine, x_q, method, target, steps, rule, base_q)
        fmt = golden.attribution_format(qg, method) if method else None
        return golden.GoldenResult(logits, qg.logits_fmt, used, attr, fmt, None, cycles)

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

    def write(self, out_dir: str | Path, force: bool = False) -> Path:
        """Write the Vitis HLS project (engine, parameters, Program image, testbench, tcl, Makefile).

        Refuses a non-empty folder that holds no xaihls project unless ``force``; never deletes files.
        """
        from xaihls.backends.hls.writer import write_project

        return write_project(self, out_dir, force=force)

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
    tiling: tuple[int, int] | None = None,
) -> Accelerator:
    """Trace, calibrate and quantize ``model`` for ``board``.

    ``calibration``: a batch (N, C, H, W) of typical inputs; the ranges of every
    activation and every gradient of the requested ``methods`` are taken from it.
    ``tiling=(Tm, Tn)`` fixes the MAC array instead of letting the planner choose.
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
    return Accelerator(qgraph, board, tiling)
