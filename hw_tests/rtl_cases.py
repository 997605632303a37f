"""Shared cases of the version-1 RTL tests: compiled zoo nets, golden expectations, memoized simulations.

Memoized so that tests that look at the same simulation (bit-exactness, cycles) run it once
per session; every test still works on its own.

Version 1 explicitly: ``Accelerator.plan`` is Engine v2 since the switch, so these tests plan
with version 1's planner (``V1Accelerator``) and run version 1's executors; they go with
version 1 (the Engine v2 tests: rtl_v2_cases.py and test_rtl_v2_*.py).
"""

from __future__ import annotations

import functools
import zlib

import torch

import xaihls
from xaihls.backends.rtl import sim
from xaihls.backends.rtl.params import RtlParams, rtl_params
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model

NETS = ("digits", "digits_strided_bn")


class V1Accelerator:
    """An Accelerator with a version-1 plan (xaihls.plan.planner) and version 1's executors: golden
    is the accelerator's own, program and rtl are version 1's interpreter and RTL."""

    def __init__(self, acc, tiling: tuple[int, int] | None):
        from xaihls.plan.planner import plan

        self._acc = acc
        self.qgraph, self.graph, self.board, self.methods = acc.qgraph, acc.graph, acc.board, acc.methods
        self.plan = plan(acc.qgraph, acc.board, tiling=tiling)
        self.refusals: dict[str, str] = {}  # the zoo and test nets here run on every version-1 executor

    def run(self, x, method=None, target=None, backend="golden", steps=None, baseline=None, rule=None):
        from xaihls.executor import prepare
        from xaihls.sim import program

        if backend == "golden":
            return self._acc.run(x, method, target, steps=steps, baseline=baseline, rule=rule)
        executor = {"program": program.EXECUTOR, "rtl": sim.EXECUTOR}[backend]
        args = prepare(self.qgraph, x, method, target, steps, baseline, rule, executor.capabilities.max_ig_steps)
        return executor.run(self.qgraph, self.plan, args)


def _demo_tiling() -> tuple[int, int]:
    """The array version 1's planner gives the bundled model on the demo's board (the demo's build)."""
    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], board="pynq-z2",
                         backends=("golden",))
    e = V1Accelerator(acc, None).plan.engine
    return (e.tm, e.tn) if (e.tm, e.tn) != (4, 2) else (8, 4)


# a small array and the demo's: one Verilator build serves these tests and the demo test
TILINGS = ((4, 2), _demo_tiling())
IG_STEPS = 3
STALL_PROBABILITY = 0.3


@functools.lru_cache(maxsize=None)
def compiled(name: str, tiling: tuple[int, int]):
    """(V1Accelerator, one sample image) for a zoo net on a fixed Tm x Tn."""
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], backends=("golden",))
    return V1Accelerator(acc, tiling), entry.samples()[0][:1]


@functools.lru_cache(maxsize=None)
def shared_params(tiling: tuple[int, int]) -> RtlParams:
    """One parameter set (one Verilator build) that runs every test net on this array."""
    params = None
    for name in NETS:
        acc, _ = compiled(name, tiling)
        p = rtl_params(acc.plan.program, acc.plan.engine)
        params = p if params is None else params.covering(p)
    return params


def golden_runs(acc, x: torch.Tensor, steps: int = IG_STEPS, methods=(None, *METHODS)) -> list[dict]:
    return sim.golden_runs(acc, x, steps, methods)


@functools.lru_cache(maxsize=None)
def simulated(name: str, tiling: tuple[int, int], stalls: float, ddr_latency: int | None = None,
              memory: str = "sv"):
    """(runs, results) of predict and every method on the RTL engine (testbench compares bits).

    The DDR: the SystemVerilog model at ``ddr_latency`` (default: the model's default) or, with
    ``memory="axiram"``, cocotbext-axi's AxiRam; ``stalls``: random ready/valid stalls."""
    acc, x = compiled(name, tiling)
    runs = golden_runs(acc, x)
    out = sim.simulate(acc.plan.program, shared_params(tiling), runs, stalls=stalls,
                       seed=zlib.crc32(f"{name}{tiling}".encode()) % 997 + 1, check=False, ddr_latency=ddr_latency,
                       memory=memory)
    return runs, out
