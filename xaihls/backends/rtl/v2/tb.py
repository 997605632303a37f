"""cocotb testbench of the Engine v2 ``xaihls_top`` (run through xaihls.backends.rtl.v2.sim, never imported directly).

A job file (path in ``XAIHLS_RTL_JOB``) holds the DDR image, the header and a list of runs
(blocked image, baseline, IG table, method, target, steps). The TB loads DDR as the host does,
drives the AXI4-Lite registers, waits for the interrupt, reads back logits, the result record,
the blocked attribution, the cycle count and the profile, and writes them to ``<job>.out.npz``.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

REG_CTRL, REG_GIE, REG_IER, REG_ISR, REG_RETURN = 0x00, 0x04, 0x08, 0x0C, 0x10
REG_DDR_LO, REG_DDR_HI, REG_METHOD, REG_TARGET, REG_STEPS = 0x18, 0x1C, 0x24, 0x2C, 0x34
REG_CYCLES, REG_PROFILE_COUNT, REG_PROFILE = 0x40, 0x44, 0x800
CLOCK_NS = 10


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


class TB:
    """Clock, reset, DDR (AxiRam) and the control port (AxiLiteMaster) of one xaihls_top."""

    def __init__(self, dut, mem_size: int, ddr_base: int, stalls: float = 0.0, seed: int = 1):
        self.dut = dut
        self.ddr_base = ddr_base
        self.mem_size = mem_size
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=mem_size)
        for name in ("cocotb.xaihls_top.s_axil", "cocotb.xaihls_top.m_axi", "cocotb.xaihls_top"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.ram.write_if.log.setLevel(logging.WARNING)
        self.ram.read_if.log.setLevel(logging.WARNING)
        if stalls:
            rng = random.Random(seed)
            for ch in (self.ram.write_if.aw_channel, self.ram.write_if.w_channel, self.ram.write_if.b_channel,
                       self.ram.read_if.ar_channel, self.ram.read_if.r_channel):
                ch.set_pause_generator(_pauses(random.Random(rng.random()), stalls))

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 8)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 8)

    def load(self, offset: int, data: bytes) -> None:
        self.ram.write((self.ddr_base + offset) % self.mem_size, data)

    def fetch(self, offset: int, length: int) -> bytes:
        return self.ram.read((self.ddr_base + offset) % self.mem_size, length)

    async def write_reg(self, addr: int, value: int) -> None:
        await self.axil.write_dword(addr, value & 0xFFFFFFFF)

    async def read_reg(self, addr: int) -> int:
        return await self.axil.read_dword(addr)


@cocotb.test()
async def run_job(dut):
    """Run every run of the job file and record what the engine left in DDR."""
    job_path = Path(os.environ["XAIHLS_RTL_JOB"])
    job = json.loads(job_path.read_text())
    arrays = np.load(job_path.with_suffix(".npz"))
    h = job["header"]
    tb = TB(dut, job["mem_size"], job["ddr_base"], job.get("stalls", 0.0), job.get("seed", 1))
    await tb.reset()
    tb.load(0, arrays["program"].tobytes())
    results: dict[str, np.ndarray] = {}
    for i, run in enumerate(job["runs"]):
        tb.load(h["image_addr"], arrays[f"image{i}"].astype("<i2").tobytes())
        tb.load(h["baseline_addr"], arrays[f"baseline{i}"].astype("<i2").tobytes())
        tb.load(h["ig_table_addr"], arrays[f"ig_table{i}"].astype("<i4").tobytes())
        await tb.write_reg(REG_DDR_LO, tb.ddr_base & 0xFFFFFFFF)
        await tb.write_reg(REG_DDR_HI, tb.ddr_base >> 32)
        await tb.write_reg(REG_METHOD, run["method"])
        await tb.write_reg(REG_TARGET, run["target"])
        await tb.write_reg(REG_STEPS, run["steps"])
        await tb.write_reg(REG_GIE, 1)
        await tb.write_reg(REG_IER, 1)
        await tb.write_reg(REG_CTRL, 1)
        if not int(dut.interrupt.value):
            await First(RisingEdge(dut.interrupt), Timer(job.get("timeout_cycles", 50_000_000) * CLOCK_NS, unit="ns"))
        hung = not int(dut.interrupt.value)
        if hung and job.get("debug"):
            for path in ("u_ctrl.st", "u_loader.st", "u_walker.fst", "u_walker.ist", "u_wb.st", "tok_free", "tok_loaded",
                         "tok_out_free", "tok_out_done", "tok_bias", "u_walker.p_left", "u_wb.p_left", "u_loader.p_left"):
                obj = dut
                for part in path.split("."):
                    obj = getattr(obj, part)
                dut._log.warning("hung: %s = %s", path, obj.value)
        if not hung:
            await tb.write_reg(REG_ISR, 1)
        # a run that never finishes reports status -1 and the profile so far (the job it hangs in)
        results[f"status{i}"] = np.array([-1 if hung else await tb.read_reg(REG_RETURN)])
        results[f"cycles{i}"] = np.array([await tb.read_reg(REG_CYCLES)])
        count = await tb.read_reg(REG_PROFILE_COUNT)
        prof = []
        for k in range(count):
            v = await tb.read_reg(REG_PROFILE + 4 * k)
            prof.append((v >> 24, v & 0xFFFFFF))
        results[f"profile{i}"] = np.array(prof, dtype=np.int64).reshape(-1, 2)
        results[f"logits{i}"] = np.frombuffer(tb.fetch(h["logits_addr"], 2 * h["classes"]), "<i2").astype(np.int64)
        results[f"result{i}"] = np.frombuffer(tb.fetch(h["result_addr"], 20), "<u4").astype(np.int64)
        results[f"attribution{i}"] = np.frombuffer(tb.fetch(h["attr_addr"], 2 * h["input_elems"]), "<i2").astype(np.int64)
        if job.get("dump_ddr"):
            results[f"ddr{i}"] = np.frombuffer(tb.fetch(0, h["total_bytes"]), dtype=np.uint8).copy()
        if hung:
            break
        dut._log.info("run %d: method %d status %d, %d cycles", i, run["method"], int(results[f"status{i}"][0]),
                      int(results[f"cycles{i}"][0]))
    np.savez(job_path.with_suffix(".out.npz"), **results, runs_done=np.array([len([k for k in results if k.startswith("status")])]))
    await Timer(1, unit="ns")
