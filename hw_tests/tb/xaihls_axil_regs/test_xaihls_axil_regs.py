"""xaihls_axil_regs: the AXI4-Lite control block in the register map Vitis HLS generates for
ap_ctrl_hs (xaihls_top's interface), driven by cocotbext-axi's AxiLiteMaster with and without
random pauses on every channel (so AW and W arrive in either order).

Checked: every response OKAY, one per request; arguments read back with byte strobes and their
reset values; ap_start starts one run and reads 1 while it runs, a start while busy is ignored;
ap_done and ap_ready set at the end of a run and clear on read (a done arriving during a read
of the control register is not lost); ap_idle; auto_restart; GIE/IER/ISR (ISR toggle on
write, the interrupt line = GIE and any ISR bit); ap_return; the cycle and profile registers.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from tb_util import pauses

CTRL, GIE, IER, ISR, RETURN = 0x00, 0x04, 0x08, 0x0C, 0x10
DDR_LO, DDR_HI, METHOD, TARGET, STEPS, IMAGES = 0x18, 0x1C, 0x24, 0x2C, 0x34, 0x3C
CYCLES, PROFILE_COUNT, PROFILE = 0x40, 0x44, 0x800
AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART = 1, 2, 4, 8, 0x80


class TB:
    """The control block and a model of the engine behind it (busy, done, status, profile memory)."""

    def __init__(self, dut, stalls: float = 0.0, seed: int = 1):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        if stalls:
            for i, ch in enumerate((self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                                    self.axil.write_if.b_channel, self.axil.read_if.ar_channel,
                                    self.axil.read_if.r_channel)):
                ch.set_pause_generator(pauses(seed * 10 + i, stalls))
        self.profile = [random.Random(seed).getrandbits(32) for _ in range(2 ** len(dut.profile_addr))]
        self.starts = 0
        for s, v in (("busy", 0), ("done", 0), ("status", 0), ("run_cycles", 0), ("profile_count", 0),
                     ("profile_data", 0)):
            getattr(dut, s).value = v

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        cocotb.start_soon(self._engine())

    async def _engine(self):
        """Counts start pulses; the profile memory answers one cycle after its address."""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            self.starts += int(dut.start.value)
            dut.profile_data.value = self.profile[int(dut.profile_addr.value)]

    async def write(self, addr: int, value: int, strb: int = 0xF) -> None:
        data = (value & 0xFFFFFFFF).to_bytes(4, "little")
        if strb == 0xF:
            resp = await self.axil.write(addr, data)
        else:  # only the strobed bytes: AxiLiteMaster writes a byte range
            lo = (strb & -strb).bit_length() - 1
            hi = strb.bit_length()
            resp = await self.axil.write(addr + lo, data[lo:hi])
        assert resp.resp == AxiResp.OKAY, f"write {addr:#x}: response {resp.resp}"

    async def read(self, addr: int) -> int:
        resp = await self.axil.read(addr, 4)
        assert resp.resp == AxiResp.OKAY, f"read {addr:#x}: response {resp.resp}"
        return int.from_bytes(resp.data, "little")

    async def finish_run(self, status: int = 0, cycles: int = 0) -> None:
        """The engine ends its run: done for one cycle, busy falls."""
        dut = self.dut
        dut.status.value, dut.run_cycles.value = status, cycles
        dut.done.value = 1
        dut.busy.value = 0
        await RisingEdge(dut.clk)
        dut.done.value = 0


STALLS = [0.0, 0.5]


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(stalls=STALLS)
async def run_arguments(dut, stalls):
    """Reset values, full writes and byte-strobed writes of every argument, read back."""
    tb = TB(dut, stalls)
    await tb.reset()
    assert await tb.read(TARGET) == 0xFFFFFFFF and await tb.read(STEPS) == 32 and await tb.read(METHOD) == 0
    assert await tb.read(IMAGES) == 1
    rng = random.Random(2)
    shadow = {}
    for addr in (DDR_LO, DDR_HI, METHOD, TARGET, STEPS, IMAGES):
        shadow[addr] = rng.getrandbits(32)
        await tb.write(addr, shadow[addr])
    for _ in range(20):
        addr = rng.choice(list(shadow))
        value, strb = rng.getrandbits(32), rng.choice([1, 2, 4, 8, 3, 12, 6])
        await tb.write(addr, value, strb)
        mask = sum(0xFF << (8 * b) for b in range(4) if strb >> b & 1)
        shadow[addr] = (shadow[addr] & ~mask) | (value & mask)
    for addr, value in shadow.items():
        assert await tb.read(addr) == value, f"{addr:#x} reads {await tb.read(addr):#x}, expected {value:#x}"
    assert int(dut.ddr_base.value) == shadow[DDR_HI] << 32 | shadow[DDR_LO]
    assert int(dut.method.value) == shadow[METHOD] and int(dut.target.value) == shadow[TARGET]
    assert int(dut.steps.value) == shadow[STEPS] and int(dut.images.value) == shadow[IMAGES]
    assert await tb.read(0x38) == 0, "an unmapped register reads 0"


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(stalls=STALLS)
async def run_start_done(dut, stalls):
    """ap_start starts exactly one run; busy shows as ap_start=1, ap_idle=0; a start written
    while busy is ignored; done sets ap_done and ap_ready, which clear on read; ap_return."""
    tb = TB(dut, stalls)
    await tb.reset()
    assert await tb.read(CTRL) == AP_IDLE
    await tb.write(CTRL, AP_START)
    await ClockCycles(dut.clk, 2)
    assert tb.starts == 1, f"{tb.starts} start pulses for one ap_start"
    dut.busy.value = 1
    await RisingEdge(dut.clk)
    assert await tb.read(CTRL) & (AP_START | AP_IDLE | AP_DONE) == AP_START
    await tb.write(CTRL, AP_START)  # ignored while busy
    await ClockCycles(dut.clk, 4)
    assert tb.starts == 1, "a start written while busy must be ignored"
    await tb.finish_run(status=0x5, cycles=1234)
    ctrl = await tb.read(CTRL)
    assert ctrl & (AP_START | AP_DONE | AP_IDLE | AP_READY) == AP_DONE | AP_IDLE | AP_READY, f"{ctrl:#x}"
    assert await tb.read(CTRL) & (AP_DONE | AP_READY) == 0, "ap_done and ap_ready clear on read"
    assert await tb.read(RETURN) == 0x5 and await tb.read(CYCLES) == 1234
    await ClockCycles(dut.clk, 4)
    assert tb.starts == 1


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(stalls=STALLS)
async def run_interrupts(dut, stalls):
    """ISR bit 0 (done) and bit 1 (ready) are set only when enabled in IER; ISR toggles on
    write; the interrupt line is GIE and any ISR bit."""
    tb = TB(dut, stalls)
    await tb.reset()
    for ier, gie in ((0, 1), (1, 0), (1, 1), (2, 1), (3, 1)):
        await tb.write(IER, ier)
        await tb.write(GIE, gie)
        await tb.write(CTRL, AP_START)
        dut.busy.value = 1
        await ClockCycles(dut.clk, 3)
        assert int(dut.interrupt.value) == 0
        await tb.finish_run()
        await ClockCycles(dut.clk, 2)
        isr = await tb.read(ISR)
        assert isr == ier, f"IER {ier}: ISR {isr}"
        assert int(dut.interrupt.value) == int(gie and isr != 0), f"IER {ier} GIE {gie}: interrupt"
        await tb.write(ISR, isr)  # toggle on write: clears what is set
        assert await tb.read(ISR) == 0 and int(dut.interrupt.value) == 0
        if isr:
            await tb.write(ISR, 1)  # and sets what is clear
            assert await tb.read(ISR) == 1
            await tb.write(ISR, 1)
        await tb.read(CTRL)
    assert await tb.read(GIE) == 1 and await tb.read(IER) == 3


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(stalls=STALLS)
async def run_done_is_never_lost(dut, stalls):
    """Polling the control register while runs end at random moments: each done is read once."""
    tb = TB(dut, stalls, seed=5)
    await tb.reset()
    rng = random.Random(7)
    seen, runs = 0, 25
    polling = True

    async def poll():
        nonlocal seen
        while polling:
            seen += bool(await tb.read(CTRL) & AP_DONE)

    poller = cocotb.start_soon(poll())
    for _ in range(runs):
        dut.busy.value = 1
        await ClockCycles(dut.clk, rng.randint(15, 40))
        await tb.finish_run()
    await ClockCycles(dut.clk, 40)
    polling = False
    await poller
    assert seen == runs, f"{seen} dones read for {runs} runs"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_auto_restart(dut):
    """With auto_restart set, the end of a run starts the next one once the engine is idle."""
    tb = TB(dut)
    await tb.reset()
    await tb.write(CTRL, AP_START | AUTO_RESTART)
    await ClockCycles(dut.clk, 2)
    assert tb.starts == 1 and await tb.read(CTRL) & AUTO_RESTART
    dut.busy.value = 1
    await ClockCycles(dut.clk, 5)
    await tb.finish_run()
    await ClockCycles(dut.clk, 4)
    assert tb.starts == 2, "auto_restart: no new start after done"
    await tb.write(CTRL, 0)
    dut.busy.value = 1
    await ClockCycles(dut.clk, 5)
    await tb.finish_run()
    await ClockCycles(dut.clk, 4)
    assert tb.starts == 2, "auto_restart cleared: no new start"


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(stalls=STALLS)
async def run_profile(dut, stalls):
    """The profile count and entries (0x800 + 4k) read what the engine holds."""
    tb = TB(dut, stalls)
    await tb.reset()
    dut.profile_count.value = 77
    assert await tb.read(PROFILE_COUNT) == 77
    for k in random.Random(1).sample(range(len(tb.profile)), min(20, len(tb.profile))) + [0, len(tb.profile) - 1]:
        assert await tb.read(PROFILE + 4 * k) == tb.profile[k], f"profile entry {k}"


def _sources():
    from hw_tests.tb.module_tb import engine_dir

    return [engine_dir() / "xaihls_contract_pkg.sv", engine_dir() / "xaihls_axil_regs.sv"]


def test_xaihls_axil_regs(tmp_path, params):
    from hw_tests.tb.module_tb import run

    run(__file__, "xaihls_axil_regs", _sources(), params, tmp_path)


def pytest_generate_tests(metafunc):
    if "params" in metafunc.fixturenames:
        sets = [{"ADDR_WIDTH": 12, "PROFILE_DEPTH": 512}, {"ADDR_WIDTH": 12, "PROFILE_DEPTH": 16}]
        metafunc.parametrize("params", sets, ids=["profile512", "profile16"])
