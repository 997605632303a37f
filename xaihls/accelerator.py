"""The public API: compile a model into an Accelerator, then predict and attribute on a backend."""

from __future__ import annotations

import dataclasses
import importlib
from numbers import Integral
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from xaihls.errors import XaiHlsError
from xaihls.executor import Executor, RunResult, prepare
from xaihls.frontend.ir import Graph
from xaihls.frontend.trace import graph_from_module
from xaihls.plan.dag import with_copies
from xaihls.methods import METHODS, check_ig_steps_count, check_methods
from xaihls.numerics import dequantize
from xaihls.plan.boards import Board, load_board
from xaihls.quant.calibrate import calibrate
from xaihls.quant.qgraph import QGraph

EXECUTORS = {
    "golden": "xaihls.golden.model",       # the reference
    "program": "xaihls.sim.interpreter",   # the Program, job by job, in Python
    "csim": "xaihls.backends.hls.v2",      # the HLS engine's C++ with g++
    "rtl": "xaihls.backends.rtl.v2.sim",   # the SystemVerilog engine on Verilator
}
"""Each backend's module; its ``EXECUTOR`` implements ``xaihls.executor.Executor``."""

BACKENDS = tuple(EXECUTORS)


def get_executor(backend: str) -> Executor:
    if backend not in EXECUTORS:
        raise XaiHlsError(f"unknown backend '{backend}'; backends: {', '.join(BACKENDS)}")
    return importlib.import_module(EXECUTORS[backend]).EXECUTOR


def check_backends(backends) -> tuple[str, ...]:
    if isinstance(backends, str):
        backends = (backends,)
    backends = tuple(backends)
    for b in backends:
        get_executor(b)  # an unknown name fails here
    if not backends:
        raise XaiHlsError(f"backends: give at least one of {', '.join(BACKENDS)}")
    return tuple(b for b in BACKENDS if b in backends)


def check_ig_steps(ig_steps, backends: tuple[str, ...]) -> None:
    """The compiled integrated-gradients steps: an integer >= 2 that every backend's IG table
    holds, refused before calibration (which runs the method with these steps)."""
    check_ig_steps_count(ig_steps, "integrated_gradients steps (ig_steps)")
    for b in backends:
        most = get_executor(b).capabilities.max_ig_steps
        if most is not None and ig_steps > most:
            raise XaiHlsError(f"integrated_gradients steps must be 2..{most} on the {b} backend, got {ig_steps}; "
                              f"compile with fewer (ig_steps), or with backends that leave {b} out")


def check_tiling(tiling) -> tuple[int, int] | None:
    """``(Tm, Tn)`` positive integers, or None (the planner chooses)."""
    if tiling is None:
        return None
    try:
        tm, tn = tiling
    except (TypeError, ValueError):
        raise XaiHlsError(f"tiling must be (Tm, Tn), two positive integers; got {tiling!r}") from None
    if not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in (tm, tn)):
        raise XaiHlsError(f"tiling must be (Tm, Tn), two positive integers; got {tiling!r}")
    return int(tm), int(tn)


class Accelerator:
    """A network quantized for one board: predictions and attributions on any backend it was
    compiled for.

    Every backend returns the same bits as ``golden`` (the reference); results come back
    as float tensors holding the exact fixed-point values. ``refusals`` says, for each
    backend that cannot run this network, why (known when it was compiled).
    """

    def __init__(self, qgraph: QGraph, board: Board, tiling: tuple[int, int] | None = None,
                 backends=BACKENDS):
        self.qgraph = qgraph
        self.board = board
        self.tiling = check_tiling(tiling)
        self.backends = check_backends(backends)
        self._plan = None
        self._refusals: dict[str, str] | None = None
        needs_plan = [b for b in self.backends if get_executor(b).capabilities.needs_plan]
        asked = [b for b in needs_plan if b in self.refusals]
        if asked:
            keep = tuple(b for b in self.backends if b not in self.refusals)
            raise XaiHlsError(f"the {asked[0]} backend cannot run this network: {self.refusals[asked[0]]}; "
                              f"compile with backends={keep!r} to leave it out")

    @property
    def refusals(self) -> dict[str, str]:
        """Why each backend that cannot run this network cannot (made with the plan)."""
        if self._refusals is None:
            from xaihls.plan.capabilities import graph_refusal, refusal
            from xaihls.plan.contract import FieldOverflow

            found = {name: graph_refusal(get_executor(name).capabilities, self.qgraph) for name in BACKENDS
                     if get_executor(name).capabilities.needs_plan}
            if not any(found.values()):  # the plan is made only for a graph the engine runs
                try:
                    plan = self.plan
                except FieldOverflow as exc:  # found while encoding the Program (a job no descriptor holds)
                    found = dict.fromkeys(found, str(exc))
                else:
                    found = {name: refusal(get_executor(name).capabilities, plan) for name in found}
            self._refusals = {name: why for name, why in found.items() if why}
        return self._refusals

    @property
    def graph(self) -> Graph:
        return self.qgraph.graph

    @property
    def methods(self) -> tuple[str, ...]:
        return self.qgraph.methods

    @property
    def plan(self):
        """The engine and Program for this board (made on first use: it searches tilings)."""
        if self._plan is None:
            from xaihls.plan.capabilities import program_refusal
            from xaihls.plan.planner_v2 import plan_v2

            why = program_refusal(self.qgraph)
            if why:
                raise XaiHlsError(f"no engine plan for this network: {why}")

            self._plan = plan_v2(self.qgraph, self.board, tiling=self.tiling)
        return self._plan

    def supports(self, backend: str) -> bool:
        """Whether ``backend`` can run this network (``refusals`` says why not)."""
        return not get_executor(backend).capabilities.needs_plan or backend not in self.refusals

    def run(self, x: Any, method: str | None = None, target=None, backend: str = "golden",
            steps: int | None = None, baseline=None, rule: str | None = None) -> RunResult:
        """Integer results with formats and saturation counts; ``method=None`` predicts."""
        executor = get_executor(backend)
        if not self.supports(backend):
            raise XaiHlsError(f"the {backend} backend cannot run this network: {self.refusals[backend]}")
        args = prepare(self.qgraph, x, method, target, steps, baseline, rule, executor.capabilities.max_ig_steps)
        result = executor.run(self.qgraph, self.plan if executor.capabilities.needs_plan else None, args)
        if result.attribution is not None and self.graph.sample_shape:  # a 1-D model's (N, C, L)
            result = dataclasses.replace(result, attribution=self.graph.as_samples(result.attribution))
        return result

    def predict(self, x: Any, backend: str = "golden") -> torch.Tensor:
        """Dequantized logits (N, classes), float32."""
        r = self.run(x, backend=backend)
        return dequantize(r.logits, r.logits_fmt).to(torch.float32)

    def attribute(self, x: Any, method: str = "saliency", target=None, backend: str = "golden",
                  steps: int | None = None, baseline=None, rule: str | None = None) -> torch.Tensor:
        """Dequantized attribution, shaped like ``x`` ((N, C, H, W), or a 1-D model's (N, C, L)), float32
        (exact values).

        ``target``: a class or one per image (default: the predicted class). For
        integrated gradients, ``steps`` (default: the compiled number), ``baseline``
        (default zeros) and ``rule`` ('trapezoid', 'left', 'right', 'middle').
        """
        r = self.run(x, method, target, backend, steps, baseline, rule)
        return dequantize(r.attribution, r.attribution_fmt).to(torch.float32)

    def write(self, out_dir: str | Path, force: bool = False) -> Path:
        """Write the project: the Vitis HLS engine (Program image, testbench, tcl, Makefile), the RTL, the board flow.

        Refuses a non-empty folder that holds no xaihls project unless ``force``; never deletes files.
        """
        from xaihls.writer import write_project

        return write_project(self, out_dir, force=force)

    def __repr__(self) -> str:
        layers = len(self.graph.layers)
        return (f"Accelerator({layers} layers, input {self.graph.data_shape}, board '{self.board.name}', "
                f"methods {', '.join(self.methods)})")


def compile(
    model: nn.Module | Graph,
    input_shape: tuple[int, ...] | None = None,
    board: str | Path | Board = "pynq-z2",
    methods=tuple(METHODS),
    calibration: Any = None,
    config: dict | str | Path | None = None,
    ig_steps: int = 32,
    tiling: tuple[int, int] | None = None,
    backends=BACKENDS,
) -> Accelerator:
    """Trace, calibrate and quantize ``model`` for ``board``, and plan its engine.

    ``input_shape``: a sample's (C, H, W), or (C, L) for a 1-D model (Conv1d layers; its maps run as
    (C, 1, L), and its attributions come back as (N, C, L)).
    ``calibration``: a batch (N, *input_shape) of typical inputs; the ranges of every
    activation and every gradient of the requested ``methods`` are taken from it.
    ``tiling=(Tm, Tn)`` fixes the MAC array instead of letting the planner choose.
    ``backends``: the executors the network must run on (default all); one that cannot run
    it is refused here, with the layer at fault named.
    """
    methods = check_methods(methods)
    tiling = check_tiling(tiling)
    backends = check_backends(backends)
    if "integrated_gradients" in methods:
        check_ig_steps(ig_steps, backends)
    if isinstance(model, Graph):  # a graph made by hand gets the copies a traced one has (a traced one: none more)
        graph = with_copies(model)
    else:
        if input_shape is None:
            raise XaiHlsError("input_shape (C, H, W), or (C, L) for a 1-D model, is required to compile an nn.Module")
        graph = graph_from_module(model, input_shape)
    if not isinstance(board, Board):
        board = load_board(board)  # an unknown board fails here, before the slow part
    qgraph = calibrate(graph, calibration, methods, config, ig_steps=ig_steps)
    return Accelerator(qgraph, board, tiling, backends)
