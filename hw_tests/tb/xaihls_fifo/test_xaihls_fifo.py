"""xaihls_fifo: order, full/empty/count, pushes while full and pops while empty ignored,
first-word-fall-through (its parameter check: hw_tests/tb/parameter_checks/)."""

from __future__ import annotations

import collections
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.width = len(dut.wdata)
        self.depth = int(dut.DEPTH.value) if hasattr(dut, "DEPTH") else None
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.push.value = 0
        dut.pop.value = 0
        dut.wdata.value = 0

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await FallingEdge(self.dut.clk)


@cocotb.test(timeout_time=1, timeout_unit="ms")
@cocotb.parametrize(traffic=[(0.5, 0.5), (0.9, 0.2), (0.2, 0.9), (1.0, 1.0)])
async def run_random_traffic(dut, traffic):
    """Random pushes and pops against a reference queue, checked every cycle (mid-cycle)."""
    tb = TB(dut)
    await tb.reset()
    depth = 2 ** (len(dut.count) - 1)
    rng = random.Random(hash(traffic))
    model = collections.deque()
    seen_full = seen_empty_pop = False
    for cycle in range(1500):
        n = len(model)
        assert int(dut.count.value) == n, f"cycle {cycle}: count {int(dut.count.value)}, expected {n}"
        assert int(dut.empty.value) == (n == 0), f"cycle {cycle}: empty {int(dut.empty.value)} with {n} words"
        assert int(dut.full.value) == (n == depth), f"cycle {cycle}: full {int(dut.full.value)} with {n} words"
        if n:
            assert int(dut.rdata.value) == model[0], f"cycle {cycle}: rdata {int(dut.rdata.value):#x}, expected {model[0]:#x}"
        push = rng.random() < traffic[0]
        pop = rng.random() < traffic[1]
        word = rng.getrandbits(len(dut.wdata))
        dut.push.value, dut.pop.value, dut.wdata.value = int(push), int(pop), word
        seen_full |= push and n == depth
        seen_empty_pop |= pop and n == 0
        if pop and n:
            model.popleft()
        if push and n < depth:  # full is decided on the count before this edge
            model.append(word)
        await FallingEdge(dut.clk)
    if traffic[0] > traffic[1]:
        assert seen_full, "the test never pushed into a full FIFO"
    if traffic[1] > traffic[0]:
        assert seen_empty_pop, "the test never popped an empty FIFO"


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def run_reset_empties(dut):
    """Words held at a reset are gone after it."""
    tb = TB(dut)
    await tb.reset()
    dut.push.value = 1
    await ClockCycles(dut.clk, 2)
    dut.push.value = 0
    await tb.reset()
    assert int(dut.empty.value) == 1 and int(dut.count.value) == 0


def test_xaihls_fifo(tmp_path, width, depth):
    from hw_tests.tb.module_tb import engine_dir, run

    run(__file__, "xaihls_fifo", [engine_dir() / "xaihls_fifo.sv"], {"WIDTH": width, "DEPTH": depth}, tmp_path)


def pytest_generate_tests(metafunc):
    if "depth" in metafunc.fixturenames:
        metafunc.parametrize("width,depth", [(8, 2), (72, 16)], ids=["8x2", "72x16"])
