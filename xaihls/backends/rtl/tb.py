"""cocotb testbench of the RTL engine (run through xaihls.backends.rtl.sim, never imported directly).

Two tests, each run only when its file is named in the environment:

- ``run_job`` (``XAIHLS_RTL_JOB``): the runs of xaihls.backends.rtl.sim / rtl.v2.sim.simulate.
- ``run_operations`` (``XAIHLS_RTL_OPERATIONS``): a host driver's operations (xaihls.driver),
  in order, as xaihls.backends.rtl.v2.transport.SimulationTransport writes them.

A job file (path in ``XAIHLS_RTL_JOB``) holds the DDR image, the header addresses and a list
of runs (images, baseline, IG table, method, target, steps, expected results). A run of one
image loads it at ``image_addr``; a run of several (an image batch, docs/contract.md "The host's
sequence") loads image s in slot s and its target in the targets table, and sets ``IMAGES``. The
TB drives the AXI4-Lite registers, waits for the interrupt, reads back every slot's logits,
result and attribution, the cycle count and the per-phase profile, and writes everything to
``<job>.out.npz``. Expected values, when given, are compared bit for bit (the test fails on any
difference).

Two DDR models (``memory`` in the job):

- ``sv`` (default): xaihls_sim_top's SystemVerilog memory. Python only drives the clock (in
  the simulator: cocotb's GPI clock), the reset and AXI4-Lite; DDR contents move through the
  memory's backdoor as $readmemh / $writememh files, so no DDR beat wakes Python. Latency,
  stalls and SLVERR are the memory's plusargs (set by the runner).
- ``axiram``: the protocol-test mode. cocotbext-axi's AxiRam answers the AXI4 master of a
  bare xaihls_top, with seeded random pauses on every channel of both buses and SLVERR
  injection; every beat goes through Python.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

REG_CTRL, REG_GIE, REG_IER, REG_ISR, REG_RETURN = 0x00, 0x04, 0x08, 0x0C, 0x10
REG_DDR_LO, REG_DDR_HI, REG_METHOD, REG_TARGET, REG_STEPS, REG_IMAGES = 0x18, 0x1C, 0x24, 0x2C, 0x34, 0x3C
REG_CYCLES, REG_PROFILE_COUNT, REG_PROFILE = 0x40, 0x44, 0x800
CLOCK_NS = 10  # simulation time only: cycles are what the testbench measures


def _pauses(rng: random.Random, p: float):
    """A ready/valid pause pattern: each cycle paused with probability p (deterministic per seed)."""
    while True:
        yield rng.random() < p


class SvDdr:
    """The SystemVerilog memory of xaihls_sim_top, through its backdoor: DDR contents in and out as
    $readmemh / $writememh files (paths given to the simulator as +ddr_load / +ddr_dump)."""

    def __init__(self, dut, ddr_base: int, mem_size: int, data_bytes: int, load_file: str, dump_file: str):
        self.dut, self.ddr_base, self.mem_size, self.data_bytes = dut, ddr_base, mem_size, data_bytes
        self.load_file, self.dump_file = Path(load_file), Path(dump_file)
        dut.ddr_load.value = 0
        dut.ddr_dump.value = 0
        dut.ddr_first.value = 0
        dut.ddr_last.value = 0

    def _word(self, offset: int) -> int:
        addr = (self.ddr_base + offset) % self.mem_size
        assert addr % self.data_bytes == 0, f"DDR offset {offset:#x} is not aligned to a {self.data_bytes}-byte word"
        return addr // self.data_bytes

    async def _pulse(self, signal) -> None:
        signal.value = 1
        await RisingEdge(self.dut.clk)
        signal.value = 0
        await RisingEdge(self.dut.clk)

    async def load(self, blocks: list[tuple[int, bytes]]) -> None:
        """Write each (offset, bytes) block; a block's last word is padded with zeros (regions are
        64-byte aligned in the Program's memory map, so the padding lands in no other region)."""
        lines = []
        for offset, data in blocks:
            words = np.frombuffer(bytes(data) + bytes(-len(data) % self.data_bytes), dtype=np.uint8)
            text = words.reshape(-1, self.data_bytes)[:, ::-1].tobytes().hex()
            n = 2 * self.data_bytes
            lines.append(f"@{self._word(offset):x}")
            lines += [text[i:i + n] for i in range(0, len(text), n)]
        self.load_file.write_text("\n".join(lines) + "\n")
        await self._pulse(self.dut.ddr_load)

    async def write(self, blocks: list[tuple[int, bytes]]) -> None:
        """Write each (offset, bytes) block exactly, in order: a word a block covers only in part
        keeps its other bytes (read first), unlike ``load``."""
        whole = []
        for offset, data in blocks:
            head, tail = offset % self.data_bytes, -(offset + len(data)) % self.data_bytes
            if head or tail:
                if whole:  # the words read below must hold the blocks before this one
                    await self.load(whole)
                    whole = []
                old = await self.fetch(offset - head, head + len(data) + tail)
                data = old[:head] + bytes(data) + old[len(old) - tail:]
                offset -= head
            whole.append((offset, bytes(data)))
        if whole:
            await self.load(whole)

    async def fetch(self, offset: int, length: int) -> bytes:
        skip = offset % self.data_bytes
        first = self._word(offset - skip)
        last = first + (skip + length + self.data_bytes - 1) // self.data_bytes - 1
        self.dut.ddr_first.value = first
        self.dut.ddr_last.value = last
        await self._pulse(self.dut.ddr_dump)
        text = "".join(line for line in self.dump_file.read_text().split() if line and line[0] not in "@/")
        data = np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(-1, self.data_bytes)[:, ::-1]
        return data.tobytes()[skip:skip + length]


class AxiRamDdr:
    """cocotbext-axi's AxiRam on xaihls_top's m_axi_* ports (protocol-test mode)."""

    def __init__(self, dut, ddr_base: int, mem_size: int, stalls: float, rng: random.Random):
        self.ddr_base, self.mem_size = ddr_base, mem_size
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=mem_size)
        self.ram.write_if.log.setLevel(logging.WARNING)
        self.ram.read_if.log.setLevel(logging.WARNING)
        if stalls:
            for ch in (self.ram.write_if.aw_channel, self.ram.write_if.w_channel, self.ram.write_if.b_channel,
                       self.ram.read_if.ar_channel, self.ram.read_if.r_channel):
                ch.set_pause_generator(_pauses(random.Random(rng.random()), stalls))

    def inject_read_errors(self, lo: int, hi: int) -> None:
        """Answer SLVERR to every read beat of DDR offsets [lo, hi)."""
        read_if = self.ram.read_if
        plain = read_if._read
        base = self.ddr_base % self.mem_size

        async def faulty(address, length):
            off = (address - base) % self.mem_size
            if lo <= off < hi or lo < off + length <= hi:
                raise IOError("injected SLVERR")
            return await plain(address, length)

        read_if._read = faulty

    async def load(self, blocks: list[tuple[int, bytes]]) -> None:
        for offset, data in blocks:
            self.ram.write((self.ddr_base + offset) % self.mem_size, data)

    write = load  # byte-exact already

    async def fetch(self, offset: int, length: int) -> bytes:
        return self.ram.read((self.ddr_base + offset) % self.mem_size, length)


class TB:
    """Clock, reset, DDR (SvDdr or AxiRamDdr) and the control port (AxiLiteMaster) of the engine."""

    def __init__(self, dut, job: dict):
        self.dut = dut
        self.ddr_base = job["ddr_base"]
        stalls = job.get("stalls", 0.0)
        rng = random.Random(job.get("seed", 1))
        # cocotb's C++ clock: no Python runs on a clock edge
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        for name in ("cocotb.xaihls_top.s_axil", "cocotb.xaihls_top.m_axi", "cocotb.xaihls_sim_top.s_axil",
                     "cocotb.xaihls_sim_top.m_axi", "cocotb.xaihls_top", "cocotb.xaihls_sim_top"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if job.get("memory", "sv") == "sv":
            self.ddr = SvDdr(dut, self.ddr_base, job["mem_size"], job["data_bytes"], job["load_file"],
                             job["dump_file"])
        else:
            self.ddr = AxiRamDdr(dut, self.ddr_base, job["mem_size"], stalls, rng)
            if stalls:  # the control bus too; a pause generator wakes Python every cycle, so only here
                for ch in (self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                           self.axil.write_if.b_channel, self.axil.read_if.ar_channel, self.axil.read_if.r_channel):
                    ch.set_pause_generator(_pauses(random.Random(rng.random()), stalls))
            if job.get("slverr"):
                self.ddr.inject_read_errors(*job["slverr"])

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 8)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 8)

    async def write_reg(self, addr: int, value: int) -> None:
        await self.axil.write_dword(addr, value & 0xFFFFFFFF)

    async def read_reg(self, addr: int) -> int:
        return await self.axil.read_dword(addr)

    async def start(self, method: int, target: int, steps: int, images: int = 1) -> None:
        await self.write_reg(REG_DDR_LO, self.ddr_base & 0xFFFFFFFF)
        await self.write_reg(REG_DDR_HI, self.ddr_base >> 32)
        await self.write_reg(REG_METHOD, method)
        await self.write_reg(REG_TARGET, target)
        await self.write_reg(REG_STEPS, steps)
        await self.write_reg(REG_IMAGES, images)
        await self.write_reg(REG_GIE, 1)
        await self.write_reg(REG_IER, 1)
        await self.write_reg(REG_CTRL, 1)

    async def wait_done(self, timeout_cycles: int) -> None:
        """Wait for the interrupt (ap_done), then acknowledge it; the control register must show done."""
        if not int(self.dut.interrupt.value):
            # a Timer, not ClockCycles: ClockCycles wakes Python on every clock edge
            await First(RisingEdge(self.dut.interrupt), Timer(timeout_cycles * CLOCK_NS, unit="ns"))
        if not int(self.dut.interrupt.value):
            raise TimeoutError(f"no ap_done within {timeout_cycles} cycles")
        ctrl = await self.read_reg(REG_CTRL)
        assert ctrl & 0b0110 == 0b0110, f"control register {ctrl:#x}: ap_done and ap_idle expected at the interrupt"
        await self.write_reg(REG_ISR, 1)  # toggle-on-write clears the done status

    async def poll_done(self, timeout_cycles: int, poll_cycles: int = 1 << 16) -> None:
        """Wait for ap_done as a host does: read the control register when the interrupt rises, or
        every ``poll_cycles`` cycles if it is not enabled. Reading clears ap_done; the interrupt is
        left for the host to acknowledge."""
        deadline = get_sim_time(unit="ns") + timeout_cycles * CLOCK_NS
        while True:
            left = deadline - get_sim_time(unit="ns")
            if not int(self.dut.interrupt.value) and left > 0:
                # a Timer, not ClockCycles: ClockCycles wakes Python on every clock edge
                await First(RisingEdge(self.dut.interrupt), Timer(min(poll_cycles * CLOCK_NS, left), unit="ns"))
            if await self.read_reg(REG_CTRL) & 0b10:
                return
            if get_sim_time(unit="ns") >= deadline:
                raise TimeoutError(f"no ap_done within {timeout_cycles} cycles")

    async def profile(self) -> list[tuple[int, int]]:
        count = await self.read_reg(REG_PROFILE_COUNT)
        out = []
        for k in range(count):
            v = await self.read_reg(REG_PROFILE + 4 * k)
            out.append((v >> 24, v & 0xFFFFFF))
        return out


def _i16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int64)


@cocotb.test(skip="XAIHLS_RTL_JOB" not in os.environ)
async def run_job(dut):
    """Run every run of the job file; record results; compare with expected values if given."""
    job_path = Path(os.environ["XAIHLS_RTL_JOB"])
    job = json.loads(job_path.read_text())
    arrays = np.load(job_path.with_suffix(".npz"))
    h = job["header"]
    tb = TB(dut, job)
    await tb.reset()
    ddr = tb.ddr
    await ddr.load([(0, arrays["program"].tobytes())])
    results: dict[str, np.ndarray] = {}
    mismatches = []
    timeout = job.get("timeout_cycles", 50_000_000)
    # slot s of the image, the attribution, the logits and the result record
    slot = {"image_addr": h["slot_bytes"], "attr_addr": h["slot_bytes"], "logits_addr": h["logits_slot_bytes"],
            "result_addr": h["result_slot_bytes"]}
    for i, run in enumerate(job["runs"]):
        images = arrays[f"image{i}"]  # (slots, blocked elements)
        n = images.shape[0]
        blocks = [(h["image_addr"] + s * slot["image_addr"], images[s].astype("<i2").tobytes()) for s in range(n)]
        if n > 1:
            blocks.append((h["targets_addr"], arrays[f"targets{i}"].astype("<i4").tobytes()))
        await ddr.load(blocks + [(h["baseline_addr"], arrays[f"baseline{i}"].astype("<i2").tobytes()),
                                 (h["ig_table_addr"], arrays[f"ig_table{i}"].astype("<i4").tobytes())])
        t_start = time.perf_counter()
        await tb.start(run["method"], run["target"], run["steps"], run.get("images_register", n))
        if run.get("restart_after"):
            # a start while the engine is busy must be ignored
            await ClockCycles(dut.clk, run["restart_after"])
            busy_ctrl = await tb.read_reg(REG_CTRL)
            await tb.write_reg(REG_CTRL, 1)
            results[f"busy_ctrl{i}"] = np.array([busy_ctrl])
        await tb.wait_done(timeout)
        results[f"wall{i}"] = np.array([time.perf_counter() - t_start])
        if run.get("restart_after"):
            # no second run may follow: the engine stays idle and raises no second done
            await ClockCycles(dut.clk, 2000)
            results[f"after_ctrl{i}"] = np.array([await tb.read_reg(REG_CTRL), int(dut.interrupt.value)])
        status = await tb.read_reg(REG_RETURN)
        cycles = await tb.read_reg(REG_CYCLES)
        profile = await tb.profile()
        # every slot's logits, result and attribution lie in one span of the memory map: fetched at once
        sizes = {"logits_addr": 2 * h["classes"], "result_addr": 4 * h["result_words"], "attr_addr": 2 * h["input_elems"]}
        out_lo = min(h[k] for k in sizes)
        out_hi = max(h[k] + (n - 1) * slot[k] + size for k, size in sizes.items())
        span = await ddr.fetch(out_lo, out_hi - out_lo)

        def part(key: str, s: int) -> bytes:
            at = h[key] + s * slot[key] - out_lo
            return span[at: at + sizes[key]]

        logits = np.stack([_i16(part("logits_addr", s)) for s in range(n)])
        res = np.stack([np.frombuffer(part("result_addr", s), dtype="<i4").astype(np.int64) for s in range(n)])
        attr = np.stack([_i16(part("attr_addr", s)) for s in range(n)])
        results[f"status{i}"] = np.array([status])
        results[f"cycles{i}"] = np.array([cycles])
        results[f"profile{i}"] = np.array(profile, dtype=np.int64).reshape(-1, 2)
        results[f"logits{i}"] = logits
        results[f"result{i}"] = res
        results[f"attribution{i}"] = attr
        if job.get("dump_ddr"):
            results[f"ddr{i}"] = np.frombuffer(await ddr.fetch(0, h["total_bytes"]), dtype=np.uint8).copy()
        dut._log.info("run %d: method %d status %d, %d cycles", i, run["method"], status, cycles)
        if f"expect_logits{i}" in arrays.files:
            if not np.array_equal(logits, arrays[f"expect_logits{i}"]):
                mismatches.append(f"run {i}: logits differ")
            if not np.array_equal(res[:, :2], arrays[f"expect_result{i}"]):
                mismatches.append(f"run {i}: result {res.tolist()} != {arrays[f'expect_result{i}'].tolist()}")
            if f"expect_attribution{i}" in arrays.files and not np.array_equal(attr, arrays[f"expect_attribution{i}"]):
                bad = int((attr != arrays[f"expect_attribution{i}"]).sum())
                mismatches.append(f"run {i}: attribution differs in {bad} elements")
            if status != 0:
                mismatches.append(f"run {i}: status {status}")
    out = job_path.with_suffix(".out.npz")
    np.savez(out, **results)
    await Timer(1, unit="ns")
    assert not mismatches, "; ".join(mismatches)


@cocotb.test(skip="XAIHLS_RTL_OPERATIONS" not in os.environ)
async def run_operations(dut):
    """Do a driver's operations in order and record every read's answer, the cycles and wall time
    of each WaitDone's run (the engine's CYCLES register) and the DDR at the end (the next process
    starts from it). An operation that fails is recorded with its index (first and last of a group
    of writes) and its error."""
    path = Path(os.environ["XAIHLS_RTL_OPERATIONS"])
    job = json.loads(path.read_text())
    data = np.load(path.with_suffix(".npz"))
    tb = TB(dut, job)
    await tb.reset()
    ops = job["operations"]
    out: dict[str, np.ndarray] = {}
    cycles, walls = [], []
    i = j = 0
    try:
        if "ddr" in data.files:
            await tb.ddr.write([(0, data["ddr"].tobytes())])
        while i < len(ops):
            op, j = ops[i], i + 1
            kind = op["kind"]
            if kind == "write_memory":  # consecutive writes: one backdoor load
                while j < len(ops) and ops[j]["kind"] == kind:
                    j += 1
                await tb.ddr.write([(ops[k]["offset"], data[f"data{k}"].tobytes()) for k in range(i, j)])
            elif kind == "read_memory":
                out[f"answer{i}"] = np.frombuffer(await tb.ddr.fetch(op["offset"], op["size"]), dtype=np.uint8)
            elif kind == "write_register":
                await tb.write_reg(op["offset"], op["value"])
            elif kind == "read_register":
                out[f"answer{i}"] = np.array([await tb.read_reg(op["offset"])], dtype=np.int64)
            elif kind == "wait_done":
                t0 = time.perf_counter()
                await tb.poll_done(min(job["timeout_cycles"], math.ceil(op["timeout_s"] * 1e9 / CLOCK_NS)))
                walls.append(time.perf_counter() - t0)
                cycles.append(await tb.read_reg(REG_CYCLES))
            else:
                raise ValueError(f"unknown operation {kind!r}")
            i = j
        out["ddr"] = np.frombuffer(await tb.ddr.fetch(0, job["ddr_bytes"]), dtype=np.uint8)
    except Exception as exc:
        out["failed_at"] = np.array([i, max(i, j - 1)])  # a group of writes fails as one
        out["error"] = np.array(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        out["cycles"] = np.array(cycles, dtype=np.int64)
        out["wall"] = np.array(walls, dtype=np.float64)
        np.savez(path.with_suffix(".out.npz"), **out)
