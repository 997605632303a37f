"""xaihls_rd_dma (Engine v2): (beat offset, beat count) commands to AXI4 INCR read bursts and beats out.

Checked against cocotbext-axi's AxiRamRead, with and without random pauses on every channel
(command valid, AR ready, R valid, out ready): every beat's data, user field, index within its
command (out_beat) and first/last flags; bursts of at most 256 beats that never cross 4 KiB and
tile each command exactly, in order; several bursts outstanding but never more than META_DEPTH;
SLVERR in the middle of a burst sets `err` (every beat still delivered), held until `clear`.
Widths come from the ports and parameters: the same tests run at 64, 128, 256 and 512 bits.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

from tb_util import bursts_ok, parameters, pauses

BASE = 0x1_0004_0000  # above 4 GiB: the high address bits are exercised


class TB:
    def __init__(self, dut, stalls: float = 0.0, seed: int = 1):
        self.dut = dut
        self.params = parameters()
        self.byte_lanes = len(dut.m_axi_rdata) // 8
        self.mem_size = 1 << 22
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=self.mem_size)
        self.stalls, self.rng = stalls, random.Random(seed)
        if stalls:
            self.ram.ar_channel.set_pause_generator(pauses(seed + 1, stalls))
            self.ram.r_channel.set_pause_generator(pauses(seed + 2, stalls))
        self.ars: list[tuple[int, int]] = []     # (address, beats) of every AR handshake
        self.beats: list[dict] = []
        self.outstanding = self.max_outstanding = 0
        self.errors: list[str] = []
        for s in ("cmd_valid", "cmd_off", "cmd_beats", "cmd_user", "out_ready", "clear"):
            getattr(dut, s).value = 0
        dut.base.value = BASE

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        cocotb.start_soon(self._monitor())

    def fill(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.ram.write(0, bytes(rng.getrandbits(8) for _ in range(1 << 16)) * (self.mem_size >> 16))

    async def _monitor(self):
        """AR and R handshakes (sampled at the clock edge) and the beats out, with out_ready pauses."""
        dut = self.dut
        out_pause = pauses(self.rng.randrange(1 << 30), self.stalls) if self.stalls else None
        while True:
            await RisingEdge(dut.clk)
            if int(dut.m_axi_arvalid.value) and int(dut.m_axi_arready.value):
                addr, beats = int(dut.m_axi_araddr.value), int(dut.m_axi_arlen.value) + 1
                if int(dut.m_axi_arburst.value) != 1 or 2 ** int(dut.m_axi_arsize.value) != self.byte_lanes:
                    self.errors.append(f"AR at {addr:#x}: not an INCR burst of full-width beats")
                why = bursts_ok(addr, beats, self.byte_lanes)
                if why:
                    self.errors.append(why)
                self.ars.append((addr, beats))
                self.outstanding += 1
            if int(dut.m_axi_rvalid.value) and int(dut.m_axi_rready.value) and int(dut.m_axi_rlast.value):
                self.outstanding -= 1
            self.max_outstanding = max(self.max_outstanding, self.outstanding)
            if int(dut.out_valid.value) and int(dut.out_ready.value):
                self.beats.append({k: int(getattr(dut, f"out_{k}").value)
                                   for k in ("data", "user", "beat", "first", "last")})
            dut.out_ready.value = int(not next(out_pause)) if out_pause else 1

    async def send(self, commands: list[tuple[int, int, int]]) -> None:
        """Issue (byte offset, beats, user) commands, with random idle cycles when stalling."""
        dut = self.dut
        for off, beats, user in commands:
            while self.stalls and self.rng.random() < self.stalls:
                await RisingEdge(dut.clk)
            dut.cmd_valid.value, dut.cmd_off.value, dut.cmd_beats.value, dut.cmd_user.value = 1, off, beats, user
            while True:
                await RisingEdge(dut.clk)
                if int(dut.cmd_ready.value):
                    break
            dut.cmd_valid.value = 0

    def expected(self, commands) -> tuple[list[dict], list[tuple[int, int]]]:
        """The beats and the byte ranges of the bursts each command must produce."""
        beats, spans = [], []
        lanes = self.byte_lanes
        for off, n, user in commands:
            first = BASE + off
            spans.append((first, n))
            for k in range(n):
                a = (first + k * lanes) % self.mem_size
                beats.append({"data": int.from_bytes(self.ram.read(a, lanes), "little"), "user": user, "beat": k,
                              "first": int(k == 0), "last": int(k == n - 1)})
        return beats, spans

    async def drain(self, n_beats: int, timeout: int = 200_000) -> None:
        for _ in range(timeout):
            if len(self.beats) >= n_beats and not self.outstanding:
                await ClockCycles(self.dut.clk, 20)  # and nothing more comes out
                return
            await RisingEdge(self.dut.clk)
        raise TimeoutError(f"{len(self.beats)} of {n_beats} beats came out; {self.outstanding} bursts outstanding")

    def check(self, commands) -> None:
        beats, spans = self.expected(commands)
        assert not self.errors, "; ".join(self.errors[:5])
        assert len(self.beats) == len(beats), f"{len(self.beats)} beats out, {len(beats)} expected"
        for i, (got, want) in enumerate(zip(self.beats, beats)):
            assert got == want, f"beat {i}: {got} != {want}"
        # the bursts tile each command's span in order
        ars = iter(self.ars)
        for first, n in spans:
            addr, left = first, n
            while left:
                a, b = next(ars)
                assert a == addr, f"burst at {a:#x}, expected {addr:#x}"
                addr, left = addr + b * self.byte_lanes, left - b
                assert left >= 0, f"a burst at {a:#x} runs past its command's span"
        assert next(ars, None) is None, "more bursts than the commands span"


def random_commands(rng: random.Random, n: int, lanes: int) -> list[tuple[int, int, int]]:
    out = []
    for i in range(n):
        kind = rng.random()
        beats = rng.randint(1, 12) if kind < 0.4 else rng.randint(13, 300) if kind < 0.8 else rng.randint(301, 1200)
        off = lanes * rng.randrange(0, (1 << 20) // lanes)
        if rng.random() < 0.3:  # start just below a 4 KiB boundary
            off = (off | 0xFFF) + 1 - lanes * rng.randint(1, 3)
        out.append((off, beats, rng.getrandbits(16)))
    return out


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(stalls=[0.0, 0.4])
async def run_random_commands(dut, stalls):
    """Random commands (short, long, across 4 KiB), checked beat by beat and burst by burst."""
    tb = TB(dut, stalls, seed=11)
    tb.fill()
    await tb.reset()
    commands = random_commands(random.Random(5), 60, tb.byte_lanes)
    await tb.send(commands)
    beats, _ = tb.expected(commands)
    await tb.drain(len(beats))
    tb.check(commands)
    assert int(dut.err.value) == 0
    depth = tb.params.get("META_DEPTH", 16)
    assert 2 <= tb.max_outstanding <= depth, f"{tb.max_outstanding} bursts outstanding (2..{depth} expected)"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_back_to_back(dut):
    """Commands offered every cycle are taken without a gap in the address stream's order."""
    tb = TB(dut)
    tb.fill()
    await tb.reset()
    commands = [(tb.byte_lanes * k * 37, 1 + k % 5, k) for k in range(40)]
    await tb.send(commands)
    beats, _ = tb.expected(commands)
    await tb.drain(len(beats))
    tb.check(commands)


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize(stalls=[0.0, 0.4])
async def run_slverr_mid_burst(dut, stalls):
    """SLVERR on beats in the middle of a long burst: every beat still comes out, `err` rises
    with the first bad beat, stays up through later clean commands and falls on `clear`."""
    tb = TB(dut, stalls, seed=3)
    tb.fill()
    plain = tb.ram._read
    lanes = tb.byte_lanes
    bad_lo = (BASE + 0x2000 + 100 * lanes) % tb.mem_size  # beat 100 of a burst at 0x2000
    bad_hi = bad_lo + 3 * lanes

    async def faulty(address, length):
        if bad_lo <= address % tb.mem_size < bad_hi:
            raise IOError("injected SLVERR")
        return await plain(address, length)

    tb.ram._read = faulty
    await tb.reset()
    await tb.send([(0x2000, 256, 1)])  # 256 beats: one burst at 64 bits, several when wider
    err_before_bad_beat = False
    for _ in range(20_000):
        await RisingEdge(dut.clk)
        if int(dut.err.value) and len(tb.beats) < 100:
            err_before_bad_beat = True
        if len(tb.beats) == 256 and not tb.outstanding:
            break
    assert not err_before_bad_beat, "err rose before the bad beat came back"
    assert len(tb.beats) == 256, f"{len(tb.beats)} of 256 beats came out after the error"
    assert int(dut.err.value) == 1, "err not set by SLVERR"
    await tb.send([(0x10000, 64, 2)])  # a clean command: err is held
    await ClockCycles(dut.clk, 200)
    assert int(dut.err.value) == 1, "err must be held until clear"
    dut.clear.value = 1
    await RisingEdge(dut.clk)
    dut.clear.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    assert int(dut.err.value) == 0, "clear did not reset err"
    assert [b["user"] for b in tb.beats] == [1] * 256 + [2] * (len(tb.beats) - 256)


def _sources():
    from hw_tests.tb.module_tb import engine_dir

    return [engine_dir() / "xaihls_fifo.sv", engine_dir() / "xaihls_rd_dma.sv"]


# the engine's own settings (OFF_BITS and LEN_BITS as xaihls_top sets them), then narrower ones
PARAMETER_SETS = [{"ADDR_WIDTH": 64, "ID_WIDTH": 1, "META_DEPTH": 16, "OFF_BITS": 22, "LEN_BITS": 20},
                  {"ADDR_WIDTH": 40, "ID_WIDTH": 4, "META_DEPTH": 4, "OFF_BITS": 24, "LEN_BITS": 12}]


def test_xaihls_rd_dma(tmp_path, params):
    from hw_tests.tb.module_tb import run

    run(__file__, "xaihls_rd_dma", _sources(), params, tmp_path)


def pytest_generate_tests(metafunc):
    if "params" in metafunc.fixturenames:
        from hw_tests.tb.module_tb import with_data_widths

        sets = with_data_widths(_sources()[-1], PARAMETER_SETS)
        metafunc.parametrize("params", sets, ids=["-".join(f"{k}{v}" for k, v in p.items()) for p in sets])
