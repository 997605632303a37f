"""xaihls_sim_axi_ram, the simulated DDR: checked with cocotbext-axi's AxiMaster at 64- and
512-bit data widths, under three run-time settings (plusargs): the default latency; latency
1 with a bandwidth cap and an SLVERR window; latency 100 with random stalls on every channel.

Checked: data written and read back (bursts of every length, unaligned, narrow strobes; no
byte outside a write's strobes changes);
read latency = cycles from the AR handshake to the first R beat, write latency = cycles from
the last W beat to the response (exactly, without stalls); several bursts outstanding and
back-to-back bursts at one beat a cycle; the cap in bytes a cycle; SLVERR inside the window
(reads return zeros, writes are dropped); the backdoor ($readmemh / $writememh files); and
the model's own protocol checks: a burst across 4 KiB, a WRAP burst and a misplaced WLAST are
each reported (the fast simulation has no other AXI checker on the engine's bus).
"""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiBus, AxiMaster, AxiResp

from tb_util import parameters

DEFAULT_LATENCY = 24


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.params = parameters()
        self.byte_lanes = len(dut.s_axi_wdata) // 8
        self.mem_size = 1 << self.params.get("MEM_ADDR_BITS", 22)
        args = cocotb.plusargs
        self.latency = int(args.get("ddr_latency", DEFAULT_LATENCY))
        self.stalls = int(args.get("ddr_stall_seed", 0)) != 0
        self.bw = float(args.get("ddr_bw", 0))
        self.err = (int(args["ddr_slverr_lo"]), int(args["ddr_slverr_hi"])) if "ddr_slverr_lo" in args else None
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)
        for s in ("bd_load", "bd_dump", "bd_first", "bd_last"):
            getattr(dut, s).value = 0
        self.cycle = 0
        self.ar_times, self.r_first_times, self.w_last_times, self.b_times = [], [], [], []
        self.stalled = {"ar": 0, "r": 0, "aw": 0, "w": 0, "b": 0}
        self.max_reads_open = 0

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        dut = self.dut
        r_first = True
        open_reads = 0
        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            v = {s: int(getattr(dut, f"s_axi_{s}").value) for s in (
                "arvalid", "arready", "rvalid", "rready", "rlast", "awvalid", "awready", "wvalid", "wready", "wlast",
                "bvalid", "bready")}
            if v["arvalid"] and v["arready"]:
                self.ar_times.append(self.cycle)
                open_reads += 1
            if v["rvalid"] and v["rready"]:
                if r_first:
                    self.r_first_times.append(self.cycle)
                r_first = bool(v["rlast"])
                open_reads -= v["rlast"]
            self.max_reads_open = max(self.max_reads_open, open_reads)
            if v["wvalid"] and v["wready"] and v["wlast"]:
                self.w_last_times.append(self.cycle)
            if v["bvalid"] and v["bready"]:
                self.b_times.append(self.cycle)
            self.stalled["ar"] += v["arvalid"] and not v["arready"]
            self.stalled["aw"] += v["awvalid"] and not v["awready"]
            self.stalled["w"] += v["wvalid"] and not v["wready"]

    async def backdoor_load(self, first: int, words: list[int]) -> None:
        """Words from memory word ``first`` on, through a $readmemh file (bd_load)."""
        load = Path(cocotb.plusargs["ddr_load"])
        load.write_text(f"@{first:x}\n" + "\n".join(f"{w:0{2 * self.byte_lanes}x}" for w in words) + "\n")
        self.dut.bd_load.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.bd_load.value = 0

    async def backdoor_dump(self, first: int, last: int) -> list[int]:
        """Memory words first..last (inclusive), through a $writememh file (bd_dump)."""
        dut = self.dut
        dut.bd_first.value, dut.bd_last.value = first, last
        dut.bd_dump.value = 1
        await RisingEdge(dut.clk)
        dut.bd_dump.value = 0
        await RisingEdge(dut.clk)
        text = Path(cocotb.plusargs["ddr_dump"]).read_text()
        return [int(x, 16) for x in text.split() if x and x[0] not in "@/"]

    def in_err(self, addr: int, length: int) -> bool:
        return self.err is not None and addr % self.mem_size < self.err[1] and (addr + length) % self.mem_size > self.err[0]


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_write_read(dut):
    """Random writes (any length and alignment), then reads of the same and of random spans, and
    every byte compared at the end: a write touches only its strobed bytes."""
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(1)
    lanes = tb.byte_lanes
    shadow = bytearray(rng.getrandbits(8) for _ in range(1 << 16))  # not zeros: a stray byte written shows
    await tb.backdoor_load(0, [int.from_bytes(shadow[k:k + lanes], "little") for k in range(0, len(shadow), lanes)])
    base = 0x1_0000_0000  # wraps onto the memory: address bits above MEM_ADDR_BITS are ignored
    for _ in range(40):
        off = rng.randrange(0, len(shadow) - 3000)
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 2, 7, 64, 300, 2500])))
        if tb.in_err(base + off, len(data)):
            continue
        resp = await tb.axi.write(base + off, data)
        assert resp.resp == AxiResp.OKAY
        shadow[off:off + len(data)] = data
    for _ in range(40):
        off, n = rng.randrange(0, len(shadow) - 3000), rng.choice([1, 8, 100, 2100])
        if tb.in_err(base + off, n):
            continue
        resp = await tb.axi.read(base + off, n)
        assert resp.resp == AxiResp.OKAY
        assert resp.data == bytes(shadow[off:off + n]), f"read {n} bytes at {off:#x}"
    words = await tb.backdoor_dump(0, len(shadow) // lanes - 1)
    held = b"".join(w.to_bytes(lanes, "little") for w in words)
    if held != shadow:
        bad = next(i for i in range(len(shadow)) if held[i] != shadow[i])
        raise AssertionError(f"memory differs first at byte {bad:#x}: {held[bad]:#x} != {shadow[bad]:#x}")
    if tb.stalls:
        assert all(tb.stalled[c] > 0 for c in ("ar", "aw", "w")), f"stalls seen: {tb.stalled}"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_latency(dut):
    """One beat at a time: read latency from AR handshake to R, write latency from the last W
    to B (exact without stalls, at least that with them)."""
    tb = TB(dut)
    await tb.reset()
    for k in range(4):
        await tb.axi.write(0x100 * k, bytes(tb.byte_lanes))
        await tb.axi.read(0x100 * k, tb.byte_lanes)
    reads = [r - a for a, r in zip(tb.ar_times, tb.r_first_times)]
    writes = [b - w for w, b in zip(tb.w_last_times, tb.b_times)]
    exact = not tb.stalls and not tb.bw  # a cap delays beats until credit builds up
    for got in reads + writes:
        assert got >= tb.latency if not exact else got == tb.latency, f"latencies {reads} / {writes}: {tb.latency}"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_outstanding(dut):
    """Eight reads issued at once: several bursts open, and without stalls the 8 x 32 beats
    stream in latency + 256 cycles (one beat a cycle) unless a bandwidth cap slows them."""
    tb = TB(dut)
    await tb.reset()
    n, beats = 8, 32
    data = bytes(random.Random(3).getrandbits(8) for _ in range(n * beats * tb.byte_lanes))
    await tb.axi.write(0, data)
    start = tb.cycle
    tasks = [cocotb.start_soon(tb.axi.read(k * beats * tb.byte_lanes, beats * tb.byte_lanes)) for k in range(n)]
    got = b"".join([(await t).data for t in tasks])
    assert got == data
    assert tb.max_reads_open >= 4, f"at most {tb.max_reads_open} reads open"
    took = tb.r_first_times[-1] - start  # to the last burst's first beat
    if not tb.stalls and not tb.bw:
        assert took <= tb.latency + (n - 1) * beats + 8, f"{took} cycles for {n} bursts of {beats} beats"
    if tb.bw and not tb.stalls:
        ideal = n * beats * tb.byte_lanes / tb.bw
        took = tb.cycle - start
        assert 0.95 * ideal <= took <= 1.1 * ideal + tb.latency + 20, f"{took} cycles, cap gives {ideal:.0f}"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_slverr(dut):
    """Inside the SLVERR window reads answer SLVERR with zeros and writes are dropped (the memory
    keeps its words, as the backdoor sees it); outside, OKAY (only when the window is set)."""
    tb = TB(dut)
    await tb.reset()
    if tb.err is None:
        return
    lo, hi = tb.err
    lanes = tb.byte_lanes
    held = [random.Random(6).getrandbits(8 * lanes) for _ in range(2)]
    await tb.backdoor_load(lo // lanes, held)
    await tb.axi.write(lo - 4 * lanes, bytes([0x5A]) * (4 * lanes))
    resp = await tb.axi.read(lo - 4 * lanes, 4 * lanes)
    assert resp.resp == AxiResp.OKAY and resp.data == bytes([0x5A]) * (4 * lanes)
    resp = await tb.axi.write(lo - 2 * lanes, bytes([0xA5]) * (4 * lanes))  # a burst that enters the window
    assert resp.resp == AxiResp.SLVERR
    resp = await tb.axi.read(lo - 2 * lanes, 4 * lanes)
    assert resp.resp == AxiResp.SLVERR
    assert resp.data[2 * lanes:] == bytes(2 * lanes), "an SLVERR beat returns zeros"
    assert resp.data[:2 * lanes] == bytes([0xA5]) * (2 * lanes), "beats outside the window are written and read"
    assert await tb.backdoor_dump(lo // lanes, lo // lanes + 1) == held, "a write inside the SLVERR window was kept"
    resp = await tb.axi.read(hi, lanes)
    assert resp.resp == AxiResp.OKAY


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_backdoor(dut):
    """A $readmemh file's words are what the bus reads; a bus write is what $writememh dumps."""
    tb = TB(dut)
    await tb.reset()
    rng = random.Random(4)
    words = [rng.getrandbits(8 * tb.byte_lanes) for _ in range(10)]
    first = 0x300 // tb.byte_lanes
    await tb.backdoor_load(first, words)
    resp = await tb.axi.read(first * tb.byte_lanes, 10 * tb.byte_lanes)
    assert resp.data == b"".join(w.to_bytes(tb.byte_lanes, "little") for w in words)
    data = bytes(rng.getrandbits(8) for _ in range(3 * tb.byte_lanes))
    await tb.axi.write(0x800, data)
    dumped = await tb.backdoor_dump(0x800 // tb.byte_lanes, 0x800 // tb.byte_lanes + 2)
    assert dumped == [int.from_bytes(data[k * tb.byte_lanes:(k + 1) * tb.byte_lanes], "little") for k in range(3)]


async def _beat(dut, ch: str, **fields) -> None:
    """One handshake on channel ``ch`` driven by hand (no bus model: it would refuse to break
    the rules). Set at a falling edge; the model's READY is a register, so stable until the edge."""
    await FallingEdge(dut.clk)
    for name, value in fields.items():
        getattr(dut, f"s_axi_{ch}{name}").value = value
    getattr(dut, f"s_axi_{ch}valid").value = 1
    while not int(getattr(dut, f"s_axi_{ch}ready").value):
        await FallingEdge(dut.clk)
    await RisingEdge(dut.clk)
    getattr(dut, f"s_axi_{ch}valid").value = 0


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def run_protocol_errors(dut):
    """Only with +ddr_expect_errors (test_protocol_errors_are_reported): bursts that break AXI4,
    each of which the model must report with $error."""
    if "ddr_expect_errors" not in cocotb.plusargs:
        return
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in dir(dut):
        if name.startswith("s_axi_") and name.rsplit("_", 1)[1] in (
                "arid", "araddr", "arlen", "arsize", "arburst", "arvalid", "awid", "awaddr", "awlen", "awsize",
                "awburst", "awvalid", "wdata", "wstrb", "wlast", "wvalid"):
            getattr(dut, name).value = 0
    dut.s_axi_rready.value, dut.s_axi_bready.value = 1, 1
    for s in ("bd_load", "bd_dump", "bd_first", "bd_last"):
        getattr(dut, s).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    lanes = len(dut.s_axi_wdata) // 8
    size = lanes.bit_length() - 1
    await _beat(dut, "ar", addr=0x1000 - lanes, len=1, size=size, burst=1)   # INCR across 4 KiB
    await _beat(dut, "ar", addr=0x2000, len=3, size=size, burst=2)           # WRAP
    await _beat(dut, "aw", addr=0x3000 - lanes, len=1, size=size, burst=1)   # INCR across 4 KiB
    await _beat(dut, "aw", addr=0x4000, len=3, size=size, burst=1)
    for k in range(2 + 4):  # the crossing burst's two beats, then WLAST on beat 1 of the 4-beat burst
        await _beat(dut, "w", data=k, strb=(1 << lanes) - 1, last=int(k in (1, 3)))
    await ClockCycles(dut.clk, 200)


def _sources():
    from hw_tests.tb.module_tb import rtl_dir

    return [rtl_dir() / "sim" / "xaihls_sim_axi_ram.sv"]


SETTINGS = {
    "defaults": [],
    "latency1-bw-slverr": ["+ddr_latency=1", "+ddr_bw=2.5", "+ddr_slverr_lo=40960", "+ddr_slverr_hi=45056"],
    "latency100-stalls": ["+ddr_latency=100", "+ddr_stall_seed=5", "+ddr_stall_pct=40"],
}


def test_xaihls_sim_axi_ram(tmp_path, params, setting):
    from hw_tests.tb.module_tb import run

    files = [f"+ddr_load={tmp_path / 'load.hex'}", f"+ddr_dump={tmp_path / 'dump.hex'}"]
    run(__file__, "xaihls_sim_axi_ram", _sources(), params, tmp_path, plusargs=SETTINGS[setting] + files)


PROTOCOL_ERRORS = (
    r"read burst at [0-9a-f]+, 2 beats, crosses 4 KiB",
    r"read burst type 2 at",
    r"write burst at [0-9a-f]+, 2 beats, crosses 4 KiB",
    r"WLAST=1 on beat 1 of a 4-beat burst",
)


def test_protocol_errors_are_reported(tmp_path, params):
    import re

    from hw_tests.tb.module_tb import run

    # as in the parameter checks: the error limit lets every $error report; the run still fails
    try:
        run(__file__, "xaihls_sim_axi_ram", _sources(), params, tmp_path, testcase="run_protocol_errors",
            plusargs=["+ddr_expect_errors", "+verilator+error+limit+100"])
    except AssertionError:
        pass
    log = (tmp_path / "sim.log").read_text()
    missing = [m for m in PROTOCOL_ERRORS if not re.search(r"xaihls_sim_axi_ram: " + m, log)]
    assert not missing, f"protocol errors the DDR model did not report: {missing}"


def pytest_generate_tests(metafunc):
    if "params" in metafunc.fixturenames:
        sets = [{"DATA_WIDTH": 64, "ID_WIDTH": 1, "MEM_ADDR_BITS": 22},
                {"DATA_WIDTH": 512, "ID_WIDTH": 4, "MEM_ADDR_BITS": 20}]
        metafunc.parametrize("params", sets, ids=["64bit", "512bit"])
    if "setting" in metafunc.fixturenames:
        metafunc.parametrize("setting", list(SETTINGS))
