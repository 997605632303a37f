"""The cycle model's figures that are not cycles: a job's useful MACs and what bounds it
(hw_tests/test_rtl_v2_cycles.py holds the cycles to Verilator)."""

import math

import torch
import torch.nn as nn

import xaihls
from xaihls.plan.contract import Op
from xaihls.plan.engine import EngineV2
from xaihls.plan.lowering import Buffers, Shape, lower
from xaihls.plan.timing import job_cost


def test_a_convolutions_macs_are_its_multiply_accumulates_inside_the_map():
    """conv 4 -> 8 channels, 3x3, padding 1, on 8x8, on an 8 x 4 array: one tile pair, every
    channel used; a tap on the padding is no MAC."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    acc = xaihls.compile(net, (4, 8, 8), calibration=torch.rand(8, 4, 8, 8), methods=("gradient",),
                         backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024))
    engine = EngineV2.for_program(program, clock_mhz=100.0, bytes_per_cycle=8.0)
    conv = next(d for d in program.forward if d.op == Op.CONV and d.ky == 3)
    c = job_cost(conv, engine, "forward")
    assert c.macs == 8 * 4 * (8 * 3 - 2) ** 2
    assert c.bound_cycles >= math.ceil(c.macs / (8 * 4))
    assert 0.05 < c.utilization(8, 4) <= 1.0
    for d in program.forward + program.backward:  # no job does more than the array can in its cycles
        assert job_cost(d, engine, "x").utilization(8, 4) <= 1.0
