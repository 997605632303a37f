"""Engine v2's RTL on Verilator as a transport of the host driver (xaihls.driver).

``Device(project, SimulationTransport.for_project(project))`` runs the driver's own operations
on the simulated engine: ``execute_all`` writes a batch's operation list to a file and runs it in
one simulator process, where the cocotb testbench (xaihls/backends/rtl/tb.py, ``run_operations``)
does each in order against xaihls_sim_top (registers through cocotbext-axi's AxiLiteMaster, DDR
through the SystemVerilog memory's backdoor, WaitDone on the interrupt or by polling ap_done) and
records every read's answer. Bit-exact with golden (hw_tests/test_rtl_v2_driver.py).

The DDR outlives a process, as a board's buffer outlives a run: the testbench leaves it in a
file that the next call loads first. The registers do not: each call starts from reset, and the
driver writes every register a run needs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from xaihls.backends.rtl.sim import DDR_LATENCY
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import RtlV2Params, rtl_params
from xaihls.backends.rtl.v2.project import decode_image
from xaihls.driver import (DDR_IMAGE, Operation, ReadMemory, ReadRegister, WaitDone, WriteMemory,
                           WriteRegister)
from xaihls.errors import XaiHlsError
from xaihls.methods import PREDICT_CODE
from xaihls.plan.contract import REGISTER

KINDS = {WriteMemory: "write_memory", ReadMemory: "read_memory", WriteRegister: "write_register",
         ReadRegister: "read_register", WaitDone: "wait_done"}
"""How the testbench names each operation (it imports nothing of xaihls)."""


class SimulationTransport:
    """The Engine v2 RTL (Verilator, the SystemVerilog DDR model) behind the driver's operations.

    ``params``: the build (default: what the Program in ``image`` needs, as ``rtl_params``);
    ``ddr_latency`` (cycles each way, default the cost model's) and ``stalls`` (probability of a
    ready/valid stall per channel and cycle, seeded by ``seed``) set the DDR model; a WaitDone
    waits at most its seconds of simulated time at the testbench's clock and ``timeout_cycles``
    (default: ``sim.run_timeout`` of the runs the call's operations start).
    After each call: ``cycles`` and ``run_s`` hold every run's cycles (the engine's CYCLES
    register, start to done) and wall time so far, ``build_s`` and ``process_s`` the last call's.
    """

    runs_per_call: int | None = None  # a whole batch in one simulator process

    def __init__(self, image: bytes, params: RtlV2Params | None = None, *, ddr_latency: int | None = None,
                 stalls: float = 0.0, seed: int = 1, timeout_cycles: int | None = None,
                 ddr_base: int = sim.DEFAULT_DDR_BASE, work_dir: str | Path | None = None):
        program = decode_image(image)
        needed = rtl_params(program, ig_exact=True)  # the least a build must have (a project's may be exact)
        if params is not None and params.covering(needed) != params:
            raise XaiHlsError(f"RTL parameters {params} do not cover this Program's needs {needed}")
        if not 0.0 <= stalls < 1.0:
            raise XaiHlsError(f"the stall probability must be in [0, 1), got {stalls}")
        self.program = program
        self.params = params or rtl_params(program)
        self.total_bytes = program.header["total_bytes"]
        self.ddr_base, self.ddr_latency, self.stalls, self.seed = ddr_base, ddr_latency, stalls, seed
        self.timeout_cycles = timeout_cycles
        self.work_dir = Path(work_dir) if work_dir else None
        self.cycles: list[int] = []
        self.run_s: list[float] = []
        self.build_s = self.process_s = 0.0
        self._ddr: np.ndarray | None = None  # the DDR as the last process left it

    @classmethod
    def for_project(cls, folder: str | Path, **options) -> "SimulationTransport":
        """The transport for a project folder's Program (its firmware/weights/ddr_image.bin)."""
        path = Path(folder) / DDR_IMAGE
        if not path.is_file():
            raise XaiHlsError(f"'{folder}': no {DDR_IMAGE}; write the project again with xaihls compile")
        return cls(path.read_bytes(), **options)

    def _check(self, k: int, op: Operation) -> None:
        if isinstance(op, (WriteMemory, ReadMemory)):
            end = op.offset + (len(op.data) if isinstance(op, WriteMemory) else op.size)
            if op.offset < 0 or end > self.total_bytes:
                raise XaiHlsError(f"operation {k} ({type(op).__name__}) reaches DDR bytes {op.offset}..{end - 1}, "
                                  f"outside the Program's {self.total_bytes}")
        elif type(op) not in KINDS:
            raise XaiHlsError(f"operation {k}: the simulation does not know {type(op).__name__}")

    def _timeout(self, ops: Sequence[Operation]) -> int:
        """Cycles the testbench waits for each done: ``timeout_cycles``, or ``sim.run_timeout`` of the
        longest run ``ops`` start (by the METHOD, STEPS and IMAGES registers written before each
        WaitDone). A fixed 20 million cycles stopped DenseNet-121's saliency at 32 x 32."""
        if self.timeout_cycles:
            return self.timeout_cycles
        written: dict[int, int] = {}
        runs = []
        for op in ops:
            if isinstance(op, WriteRegister):
                written[op.offset] = op.value
            elif isinstance(op, WaitDone):
                runs.append({"method": written.get(REGISTER["METHOD"], PREDICT_CODE),
                             "steps": written.get(REGISTER["STEPS"], 1),
                             "images": [None] * max(1, written.get(REGISTER["IMAGES"], 1))})
        if not runs:
            return sim.MIN_TIMEOUT_CYCLES
        latency = DDR_LATENCY if self.ddr_latency is None else self.ddr_latency
        return sim.run_timeout(self.program, self.params, runs, latency)

    def execute_all(self, ops: Sequence[Operation]) -> list:
        """Do ``ops`` in one simulator process; one answer per operation, as the driver expects."""
        for k, op in enumerate(ops):
            self._check(k, op)
        mem_bits = sim.mem_addr_bits(self.total_bytes)
        t0 = time.perf_counter()
        build_dir = sim.build(self.params, mem_bits)
        self.build_s = time.perf_counter() - t0
        tmp = self.work_dir or Path(tempfile.mkdtemp(prefix="xaihls_rtl2_ops_"))
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / "operations.json"
        arrays = {} if self._ddr is None else {"ddr": self._ddr}
        listed = []
        for k, op in enumerate(ops):
            entry = {"kind": KINDS[type(op)]}
            if isinstance(op, WriteMemory):
                entry["offset"] = op.offset
                arrays[f"data{k}"] = np.frombuffer(op.data, dtype=np.uint8)
            elif isinstance(op, ReadMemory):
                entry.update(offset=op.offset, size=op.size)
            elif isinstance(op, WriteRegister):
                entry.update(offset=op.offset, value=op.value & 0xFFFFFFFF)
            elif isinstance(op, ReadRegister):
                entry["offset"] = op.offset
            else:
                entry["timeout_s"] = op.timeout_s
            listed.append(entry)
        load_file, dump_file = tmp / "ddr_load.hex", tmp / "ddr_dump.hex"
        job = {"operations": listed, "ddr_bytes": self.total_bytes, "mem_size": 1 << mem_bits,
               "ddr_base": self.ddr_base, "data_bytes": self.params.AXI_DATA_WIDTH // 8, "memory": "sv",
               "timeout_cycles": self._timeout(ops), "load_file": str(load_file), "dump_file": str(dump_file)}
        path.write_text(json.dumps(job))
        np.savez(path.with_suffix(".npz"), **arrays)
        out_path = path.with_suffix(".out.npz")
        out_path.unlink(missing_ok=True)
        failed, self.process_s, _ = sim.run_testbench(
            build_dir, tmp, "run_operations", {"XAIHLS_RTL_OPERATIONS": str(path)},
            sim.ddr_plusargs(load_file, dump_file, self.ddr_latency, self.stalls, self.seed))
        if not out_path.exists():
            raise RuntimeError(f"the RTL simulation produced no results; see {tmp / 'sim.log'}")
        with np.load(out_path) as npz:
            out = {k: npz[k] for k in npz.files}
        if "error" in out:
            first, last = (int(v) for v in out["failed_at"])
            where = f"operation {first}" if first == last else f"operations {first}..{last}"
            error = str(out["error"])
            if error.startswith("TimeoutError"):
                raise XaiHlsError(f"the simulated engine raised no ap_done within its timeout ({where}: {error}); "
                                  f"see {tmp / 'sim.log'}")
            raise RuntimeError(f"{where} ({ops[first]!r:.80}) failed in the simulation: {error}; "
                               f"see {tmp / 'sim.log'}")
        if failed:
            raise RuntimeError(f"the RTL testbench failed: {failed}; see {tmp / 'sim.log'}")
        self._ddr = out["ddr"]
        self.cycles += [int(c) for c in out["cycles"]]
        self.run_s += [float(s) for s in out["wall"]]
        answers = []
        for k, op in enumerate(ops):
            if isinstance(op, ReadMemory):
                answers.append(out[f"answer{k}"].tobytes())
            elif isinstance(op, ReadRegister):
                answers.append(int(out[f"answer{k}"][0]))
            else:
                answers.append(None)
        if self.work_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
        return answers

    @property
    def cycles_per_second(self) -> float:
        return sum(self.cycles) / sum(self.run_s) if self.run_s else 0.0


__all__ = ["SimulationTransport"]
