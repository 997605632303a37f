"""The Engine v2 RTL on the networks version 1 once refused or got wrong, and its saturation counters
on inputs that saturate (`xaihls sim` on a relative path: test_rtl_v2_project.py)."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn

import xaihls
from hw_tests.rtl_v2_cases import IG_STEPS, SHAPES, shared_params
from xaihls.backends.rtl.v2 import sim
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, METHODS, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.engine import EngineV2
from xaihls.plan.lowering import lower


def _head_without_pool() -> nn.Module:
    """conv -> ReLU -> conv -> ReLU -> Flatten -> Linear: the ReLU bits of a feature map read by a
    Linear layer's backward pass."""
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(5 * 7 * 7, 10)).eval()


def _relu_first() -> nn.Module:
    """A ReLU on the input map (its bits read by the first conv's backward pass)."""
    torch.manual_seed(6)
    return nn.Sequential(nn.ReLU(), nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3 * 7 * 7, 10)).eval()


@functools.lru_cache(maxsize=None)
def _compiled(name: str):
    net = {"head_without_pool": _head_without_pool, "relu_first": _relu_first}[name]()
    x = get_zoo_model("digits").calibration()[:16] - 0.25
    acc = xaihls.compile(net, (1, 16, 16), calibration=x, ig_steps=IG_STEPS, backends=("golden", "program"))
    return acc, x[:1], lower(acc.qgraph, *SHAPES["4x4"])


def test_rtl_runs_a_flatten_head_without_pooling_and_a_relu_on_the_input_bit_exactly():
    params = shared_params("4x4")  # the bit-exact tests' build runs these too
    for name in ("head_without_pool", "relu_first"):
        acc, x, program = _compiled(name)
        x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
        table = sim.ig_table(IG_STEPS, "trapezoid", acc.qgraph.width)
        methods = (None, *METHODS)
        runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": table, "target": -1, "steps": IG_STEPS,
                 "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in methods]
        for m, r in zip(methods, sim.simulate(program, params, runs, check=False)):
            g = acc.run(x, m, steps=IG_STEPS) if m else acc.run(x)
            assert r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy()), (name, m)
            if m:
                bad = int((r["attribution"] != g.attribution[0].numpy()).sum())
                assert bad == 0, f"{name} {m}: {bad} elements differ"


def test_rtl_saturation_counters_equal_the_program_interpreters():
    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], ig_steps=IG_STEPS,
                         backends=("golden", "program"))
    program = lower(acc.qgraph, *SHAPES["4x4"])
    engine = EngineV2.for_program(program, clock_mhz=100.0, bytes_per_cycle=8.0)
    x = entry.samples()[0][:1] * 4  # saturates the input and the first layers
    x_q = quantize_input(acc.qgraph, x)[0]
    for method in ("input_x_gradient", "integrated_gradients"):
        interpreted = acc.run(x, method, backend="program", steps=3)
        _, _, attr, counters, _ = sim.run_rtl_v2(program, engine, x_q, method, None, 3, "trapezoid",
                                                 torch.zeros_like(x_q), params=shared_params("4x4"))
        assert torch.equal(attr, interpreted.attribution)
        rtl = {k: v for k, v in zip(("forward", "backward", "post"), counters[0]) if v}
        assert rtl == {k: v for k, v in interpreted.saturations.items() if k != "input"} and rtl["forward"] > 0, method
