"""xaihls_wr_dma (Engine v2): (beat offset, beat count) commands and a stream of beats with byte
strobes to AXI4 INCR write bursts.

Checked against cocotbext-axi's AxiRamWrite, with and without random pauses on every channel
(command valid, stream valid, AW ready, W ready, B valid): memory holds exactly the strobed
bytes written (every other byte untouched); bursts of at most 256 beats that never cross 4 KiB
and tile each command in order, each with awlen + 1 W beats and WLAST on the last; W beats flow
before their AW is accepted; several bursts outstanding; `idle` only once every burst has its
response; SLVERR on a beat in the middle of a burst sets `err`, held until `clear`. Widths come
from the ports and parameters: the same tests run at 64, 128, 256 and 512 bits.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiRamWrite, AxiWriteBus

from tb_util import bursts_ok, parameters, pauses

BASE = 0x1_0004_0000


class TB:
    def __init__(self, dut, stalls: float = 0.0, seed: int = 1, aw_pause=None):
        self.dut = dut
        self.params = parameters()
        self.byte_lanes = len(dut.m_axi_wdata) // 8
        self.mem_size = 1 << 22
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=self.mem_size)
        self.stalls, self.rng = stalls, random.Random(seed)
        if aw_pause is not None:
            self.ram.aw_channel.set_pause_generator(aw_pause)
        elif stalls:
            self.ram.aw_channel.set_pause_generator(pauses(seed + 1, stalls))
        if stalls:
            self.ram.w_channel.set_pause_generator(pauses(seed + 2, stalls))
            self.ram.b_channel.set_pause_generator(pauses(seed + 3, stalls))
        self.aws: list[tuple[int, int]] = []
        self.w_in_burst = 0
        self.w_bursts = 0           # bursts whose last W beat has gone
        self.w_before_aw = 0        # W beats of a burst whose AW had not been accepted yet
        self.outstanding = self.max_outstanding = 0
        self.errors: list[str] = []
        for s in ("cmd_valid", "cmd_off", "cmd_beats", "s_valid", "s_data", "s_strb", "clear"):
            getattr(dut, s).value = 0
        dut.base.value = BASE

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        cocotb.start_soon(self._monitor())

    def fill(self, seed: int = 9) -> bytes:
        rng = random.Random(seed)
        data = bytes(rng.getrandbits(8) for _ in range(1 << 16)) * (self.mem_size >> 16)
        self.ram.write(0, data)
        return data

    async def _monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            if int(dut.m_axi_awvalid.value) and int(dut.m_axi_awready.value):
                addr, beats = int(dut.m_axi_awaddr.value), int(dut.m_axi_awlen.value) + 1
                if int(dut.m_axi_awburst.value) != 1 or 2 ** int(dut.m_axi_awsize.value) != self.byte_lanes:
                    self.errors.append(f"AW at {addr:#x}: not an INCR burst of full-width beats")
                why = bursts_ok(addr, beats, self.byte_lanes)
                if why:
                    self.errors.append(why)
                self.aws.append((addr, beats))
                self.outstanding += 1
            if int(dut.m_axi_wvalid.value) and int(dut.m_axi_wready.value):
                if self.w_bursts >= len(self.aws):
                    self.w_before_aw += 1
                self.w_in_burst += 1
                if int(dut.m_axi_wlast.value):
                    if self.w_bursts < len(self.aws) and self.w_in_burst != self.aws[self.w_bursts][1]:
                        self.errors.append(f"burst {self.w_bursts}: WLAST after {self.w_in_burst} beats, "
                                           f"AWLEN says {self.aws[self.w_bursts][1]}")
                    self.w_bursts += 1
                    self.w_in_burst = 0
            if int(dut.m_axi_bvalid.value) and int(dut.m_axi_bready.value):
                self.outstanding -= 1
            self.max_outstanding = max(self.max_outstanding, self.outstanding)
            if int(dut.idle.value) and self.outstanding:
                self.errors.append(f"idle with {self.outstanding} bursts unanswered")

    def beats_of(self, data: bytes, strb: list[int]) -> list[tuple[int, int]]:
        """(data, strobes) beats the producer streams for one command."""
        lanes = self.byte_lanes
        return [(int.from_bytes(data[k * lanes:(k + 1) * lanes], "little"), s) for k, s in enumerate(strb)]

    async def send_commands(self, commands):
        dut = self.dut
        for off, data, strb in commands:
            while self.stalls and self.rng.random() < self.stalls:
                await RisingEdge(dut.clk)
            dut.cmd_valid.value, dut.cmd_off.value, dut.cmd_beats.value = 1, off, len(strb)
            while True:
                await RisingEdge(dut.clk)
                if int(dut.cmd_ready.value):
                    break
            dut.cmd_valid.value = 0

    async def send_stream(self, commands):
        dut = self.dut
        for _, data, strbs in commands:
            for word, strb in self.beats_of(data, strbs):
                while self.stalls and self.rng.random() < self.stalls:
                    dut.s_valid.value = 0
                    await RisingEdge(dut.clk)
                dut.s_valid.value, dut.s_data.value, dut.s_strb.value = 1, word, strb
                while True:
                    await RisingEdge(dut.clk)
                    if int(dut.s_ready.value):
                        break
            dut.s_valid.value = 0

    async def run(self, commands, timeout: int = 300_000) -> None:
        stream = cocotb.start_soon(self.send_stream(commands))
        await self.send_commands(commands)
        await stream
        for _ in range(timeout):
            await RisingEdge(self.dut.clk)
            if int(self.dut.idle.value) and int(self.dut.cmd_ready.value):
                return
        raise TimeoutError("the mover never went idle")

    def check(self, commands, before: bytes) -> None:
        assert not self.errors, "; ".join(self.errors[:5])
        expect = bytearray(before)
        lanes = self.byte_lanes
        spans = []
        for off, data, strbs in commands:
            a = (BASE + off) % self.mem_size
            for k, s in enumerate(strbs):
                for b in range(lanes):
                    if s >> b & 1:
                        expect[a + k * lanes + b] = data[k * lanes + b]
            spans.append((BASE + off, len(strbs)))
        got = self.ram.read(0, self.mem_size)
        if got != bytes(expect):
            bad = next(i for i in range(self.mem_size) if got[i] != expect[i])
            raise AssertionError(f"memory differs first at byte {bad:#x}: {got[bad]:#x} != {expect[bad]:#x}")
        aws = iter(self.aws)
        for first, n in spans:
            addr, left = first, n
            while left:
                a, b = next(aws)
                assert a == addr, f"burst at {a:#x}, expected {addr:#x}"
                addr, left = addr + b * lanes, left - b
                assert left >= 0, f"a burst at {a:#x} runs past its command's span"
        assert next(aws, None) is None, "more bursts than the commands span"
        assert self.w_bursts == len(self.aws), f"{self.w_bursts} W bursts for {len(self.aws)} AWs"


def random_commands(rng: random.Random, n: int, lanes: int):
    """(byte offset, data, strobes of each beat): a third of the commands with random strobes."""
    out = []
    for _ in range(n):
        kind = rng.random()
        beats = rng.randint(1, 12) if kind < 0.4 else rng.randint(13, 300) if kind < 0.8 else rng.randint(301, 1000)
        off = lanes * rng.randrange(0, (1 << 20) // lanes)
        if rng.random() < 0.3:  # start just below a 4 KiB boundary
            off = (off | 0xFFF) + 1 - lanes * rng.randint(1, 3)
        full = (1 << lanes) - 1
        strb = [rng.getrandbits(lanes) for _ in range(beats)] if rng.random() < 0.3 else [full] * beats
        out.append((off, rng.randbytes(beats * lanes), strb))
    return out


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(stalls=[0.0, 0.4])
async def run_random_commands(dut, stalls):
    """Random commands (short, long, across 4 KiB, unaligned): memory, bursts, WLAST, idle."""
    tb = TB(dut, stalls, seed=21)
    before = tb.fill()
    await tb.reset()
    commands = random_commands(random.Random(8), 50, tb.byte_lanes)
    await tb.run(commands)
    tb.check(commands, before)
    assert int(dut.err.value) == 0
    assert tb.max_outstanding >= 2, f"at most {tb.max_outstanding} burst outstanding"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_w_does_not_wait_for_aw(dut):
    """With AWREADY held low for a while, W beats of an issued burst still flow."""
    def aw_pause():
        for _ in range(300):
            yield True
        while True:
            yield False

    tb = TB(dut, aw_pause=aw_pause())
    before = tb.fill()
    await tb.reset()
    commands = random_commands(random.Random(2), 6, tb.byte_lanes)
    await tb.run(commands)
    tb.check(commands, before)
    assert tb.w_before_aw > 0, "no W beat moved before its AW was accepted"


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(stalls=[0.0, 0.4])
async def run_slverr_mid_burst(dut, stalls):
    """SLVERR on a beat in the middle of a burst: err rises with that burst's response, is held
    through later clean commands, and clear resets it; the mover still goes idle."""
    tb = TB(dut, stalls, seed=4)
    before = tb.fill()
    lanes = tb.byte_lanes
    bad = (BASE + 0x3000 + 77 * lanes) % tb.mem_size
    plain = tb.ram._write

    async def faulty(address, data):
        if address % tb.mem_size <= bad < address % tb.mem_size + len(data):
            raise IOError("injected SLVERR")
        await plain(address, data)

    tb.ram._write = faulty
    await tb.reset()
    await tb.run([(0x3000, random.Random(1).randbytes(128 * lanes), [(1 << lanes) - 1] * 128)])
    assert int(dut.err.value) == 1, "err not set by a SLVERR write response"
    clean = random_commands(random.Random(3), 3, lanes)
    await tb.run(clean)
    assert int(dut.err.value) == 1, "err must be held until clear"
    dut.clear.value = 1
    await RisingEdge(dut.clk)
    dut.clear.value = 0
    await ClockCycles(dut.clk, 2)
    assert int(dut.err.value) == 0, "clear did not reset err"
    assert not tb.errors, "; ".join(tb.errors[:5])
    del before


def _sources():
    from hw_tests.tb.module_tb import engine_dir

    return [engine_dir() / "xaihls_fifo.sv", engine_dir() / "xaihls_wr_dma.sv"]


# the engine's own settings (OFF_BITS and LEN_BITS as xaihls_top sets them), then narrower ones
PARAMETER_SETS = [{"ADDR_WIDTH": 64, "ID_WIDTH": 1, "LEN_DEPTH": 16, "OFF_BITS": 22, "LEN_BITS": 20},
                  {"ADDR_WIDTH": 40, "ID_WIDTH": 4, "LEN_DEPTH": 2, "OFF_BITS": 24, "LEN_BITS": 12}]


def test_xaihls_wr_dma(tmp_path, params):
    from hw_tests.tb.module_tb import run

    run(__file__, "xaihls_wr_dma", _sources(), params, tmp_path)


def pytest_generate_tests(metafunc):
    if "params" in metafunc.fixturenames:
        from hw_tests.tb.module_tb import with_data_widths

        sets = with_data_widths(_sources()[-1], PARAMETER_SETS)
        metafunc.parametrize("params", sets, ids=["-".join(f"{k}{v}" for k, v in p.items()) for p in sets])
