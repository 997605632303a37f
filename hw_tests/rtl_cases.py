"""Shared cases of the RTL tests: compiled zoo nets, golden expectations, memoized simulations.

Memoized so that tests that look at the same simulation (bit-exactness, cycles) run it once
per session; every test still works on its own.
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


def _demo_tiling() -> tuple[int, int]:
    """The array the planner gives the bundled model on the demo's board (the demo's build)."""
    entry = get_zoo_model("digits")
    e = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], board="pynq-z2").plan.engine
    return (e.tm, e.tn) if (e.tm, e.tn) != (4, 2) else (8, 4)


# a small array and the demo's: one Verilator build serves these tests and the demo test
TILINGS = ((4, 2), _demo_tiling())
IG_STEPS = 3
STALL_PROBABILITY = 0.3


@functools.lru_cache(maxsize=None)
def compiled(name: str, tiling: tuple[int, int]):
    """(accelerator, one sample image) for a zoo net on a fixed Tm x Tn."""
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], tiling=tiling)
    acc.plan  # plan now (cached on the accelerator)
    return acc, entry.samples()[0][:1]


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
