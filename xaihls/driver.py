"""The host driver of a compiled project: ``Device(project).predict(x)`` / ``.attribute(x, method)``.

One register sequence for every transport (docs/contract.md, "The host's sequence"): load the
Program's DDR image once; per image write the blocked image, baseline and IG table, set the DDR
base, method, target and steps, start (ap_start), wait for ap_done, read the status, the result
record, the logits and the blocked attribution. ``Device.sequence`` returns a run's operations
(WriteMemory, ReadMemory, WriteRegister, ReadRegister, WaitDone) as a list, none depending on
an earlier one's answer, and a transport's ``execute_all`` answers them in order. Transports:

- ``PynqTransport``: a board running PYNQ (``pynq.Overlay`` of the project's
  ``vivado/overlay/xaihls.bit``, ``pynq.allocate`` for the DDR buffer, the IP's MMIO); pynq is
  imported only when this transport is made. One run a call: a failing run stops the batch.
- ``ModelTransport``: the Program interpreter (xaihls.sim.interpreter) answering the same
  registers in process, for host code without a board.
- ``SimulationTransport`` (xaihls.backends.rtl.v2.transport): Engine v2's RTL on Verilator. A
  batch's operations go to one simulator process, where the cocotb testbench
  (xaihls/backends/rtl/tb.py, ``run_operations``) does each in order against xaihls_sim_top:
  registers through AXI4-Lite, DDR through the SystemVerilog memory's backdoor, WaitDone on the
  interrupt or ap_done; it also records each run's cycles. Bit-exact with golden
  (hw_tests/test_rtl_v2_driver.py).

This module imports no torch: a board without PyTorch runs it (numpy only).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from xaihls.errors import XaiHlsError
from xaihls.methods import PREDICT_CODE, PostProcess, get_method, ig_constants
from xaihls.numerics import FixedFormat, quantize_array
from xaihls.plan.contract import (HEADER, MAX_IG_STEPS, PROGRAM_MAGIC, PROGRAM_VERSION, REGISTER, RESULT,
                                  RESULT_SLOT_BYTES, Status, engine_starts, from_blocked, host_image,
                                  network_image, view_phases)

DDR_IMAGE = "firmware/weights/ddr_image.bin"
OVERLAY = "vivado/overlay/xaihls.bit"
CTRL_START, CTRL_DONE, CTRL_IDLE = 0x1, 0x2, 0x4


# ---- the operations of a run, executed by a transport ----

@dataclass(frozen=True)
class WriteMemory:
    offset: int  # bytes from the DDR base
    data: bytes


@dataclass(frozen=True)
class ReadMemory:
    offset: int
    size: int


@dataclass(frozen=True)
class WriteRegister:
    offset: int
    value: int


@dataclass(frozen=True)
class ReadRegister:
    offset: int


@dataclass(frozen=True)
class WaitDone:
    timeout_s: float


Operation = WriteMemory | ReadMemory | WriteRegister | ReadRegister | WaitDone


class Transport(Protocol):
    """Executes runs' operations against one engine and its DDR buffer."""

    ddr_base: int  # the physical address of the DDR buffer the engine reaches
    runs_per_call: int | None  # runs Device hands over in one execute_all (None: a whole batch)

    def execute_all(self, ops: Sequence[Operation]) -> list:
        """Do ``ops`` in order; one answer per operation: bytes (ReadMemory), an int (ReadRegister), else None."""


class StepTransport:
    """A transport that does one operation at a time (``execute``); Device hands it one run a call,
    so a failing run stops a batch before the next image is written."""

    runs_per_call: int | None = 1

    def execute(self, op: Operation):
        raise NotImplementedError

    def execute_all(self, ops: Sequence[Operation]) -> list:
        return [self.execute(op) for op in ops]


def _fmt(text: str) -> FixedFormat:
    """A format as project.json writes it: 'fixed<W,F>'."""
    width, frac = (int(v) for v in text.strip()[len("fixed<"):-1].split(","))
    return FixedFormat(width, frac)


@dataclass(frozen=True)
class DeviceRun:
    """One image's results: integer codes and their formats, as the engine wrote them."""

    logits: np.ndarray
    logits_fmt: FixedFormat
    predicted: int
    target: int
    attribution: np.ndarray | None
    attribution_fmt: FixedFormat | None
    saturations: dict[str, int]


class Device:
    """A project's engine behind a transport (the board's PYNQ overlay by default)."""

    def __init__(self, project: str | Path, transport: Transport | None = None):
        folder = Path(project)
        try:
            self.description = json.loads((folder / "project.json").read_text())
        except (OSError, ValueError):
            raise XaiHlsError(f"'{folder}' holds no xaihls project (project.json); write one with xaihls compile") \
                from None
        image_path = folder / DDR_IMAGE
        if not image_path.is_file():
            raise XaiHlsError(f"'{folder}': no {DDR_IMAGE}; write the project again with xaihls compile")
        self.image = image_path.read_bytes()
        self.header = HEADER.decode(self.image[: HEADER.bytes])
        h = self.header
        if h["magic"] != PROGRAM_MAGIC or h["version"] != PROGRAM_VERSION:
            raise XaiHlsError(f"'{folder}': its Program is not version {PROGRAM_VERSION}; compile it again")
        network = self.description["network"]
        self.input_shape = tuple(network["input_shape"])
        self.sample_shape = tuple(network.get("sample_shape", self.input_shape))  # a 1-D model's (C, L)
        self.classes = int(network["classes"])
        formats = self.description["formats"]
        self.input_fmt = _fmt(formats["input"])
        self.logits_fmt = _fmt(formats["logits"])
        self.attribution_fmts = {m: _fmt(f) for m, f in formats["attribution"].items()}
        self.methods = tuple(self.description["methods"])
        ig = self.description["integrated_gradients"]
        self.ig_steps, self.ig_rule = int(ig["steps"]), ig["rule"]
        self.transport = transport or PynqTransport(folder / OVERLAY, h["total_bytes"])
        self._loaded = False

    # ---- checks, as the compiler's API makes them (xaihls.executor) ----
    def _batch(self, x) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == len(self.sample_shape):
            a = a[None]
        if a.ndim != len(self.sample_shape) + 1 or tuple(a.shape[1:]) != self.sample_shape or a.shape[0] == 0:
            raise XaiHlsError(f"input has shape {np.shape(x)}; the project was compiled for (N, "
                              f"{', '.join(map(str, self.sample_shape))})")
        a = a.reshape(a.shape[0], *self.input_shape)
        if not np.isfinite(a).all():
            raise XaiHlsError("input contains NaN or infinite values")
        return a

    def _method(self, method: str | None) -> int:
        if method is None:
            return PREDICT_CODE
        m = get_method(method)
        if method not in self.methods:
            raise XaiHlsError(f"method '{method}' was not compiled in (compiled: {', '.join(self.methods)})")
        return m.code

    # ---- the register sequence ----
    def sequence(self, images_q: list[np.ndarray], baseline_q: np.ndarray, method: int, targets: list[int],
                 steps: int, rule: str, timeout_s: float = 60.0) -> list[Operation]:
        """The operations of one engine start on ``images_q`` (one image, or the Program's batch of
        them: an image batch; ``run`` loads the Program's DDR image before a device's first). No
        operation depends on what an earlier one read, so a batch's starts form one list that a
        transport may execute at once; the reads are, in order: status, then per image its result
        record, logits and, for a method, attribution (``_results``)."""
        h = self.header
        images = len(images_q)
        ops: list[Operation] = [WriteMemory(h["image_addr"] + s * h["slot_bytes"],
                                            host_image(image, h).astype("<i2").tobytes())
                                for s, image in enumerate(images_q)]
        if images == 1:
            table = np.asarray(ig_constants(steps, rule, h["data_width"]).table(), dtype="<i4").tobytes()
            ops += [WriteMemory(h["baseline_addr"], host_image(baseline_q, h).astype("<i2").tobytes()),
                    WriteMemory(h["ig_table_addr"], table)]
        else:
            ops.append(WriteMemory(h["targets_addr"], np.asarray(targets, dtype="<i4").tobytes()))
        base = self.transport.ddr_base
        for name, value in (("DDR_LO", base & 0xFFFFFFFF), ("DDR_HI", base >> 32), ("METHOD", method),
                            ("TARGET", targets[0] & 0xFFFFFFFF), ("STEPS", steps), ("IMAGES", images), ("GIE", 1),
                            ("IER", 1), ("CTRL", CTRL_START)):
            ops.append(WriteRegister(REGISTER[name], value))
        ops += [WaitDone(timeout_s),
                ReadRegister(REGISTER["RETURN"]),
                WriteRegister(REGISTER["ISR"], 1)]  # toggle-on-write: acknowledge the done interrupt
        for s in range(images):
            ops += [ReadMemory(h["result_addr"] + s * RESULT_SLOT_BYTES, RESULT.bytes),
                    ReadMemory(h["logits_addr"] + s * h["logits_slot_bytes"], 2 * h["classes"])]
            if method != PREDICT_CODE:
                ops.append(ReadMemory(h["attr_addr"] + s * h["slot_bytes"], 2 * h["input_elems"]))
        return ops

    def _results(self, ops: list[Operation], answers: list, method: str | None, first: int,
                 count: int) -> list[DeviceRun]:
        """One start's reads (``sequence``'s order) as a DeviceRun per image; XaiHlsError on a failing status."""
        h = self.header
        status, *reads = [a for op, a in zip(ops, answers) if isinstance(op, (ReadRegister, ReadMemory))]
        if status:
            bits = [s.name for s in Status if status >> int(s) & 1]
            which = f"image {first}" if count == 1 else f"images {first}..{first + count - 1}"
            raise XaiHlsError(f"{which}: the engine stopped with status {status:#x} ({', '.join(bits) or 'unknown'})")
        per = 2 if method is None else 3
        runs = []
        for k in range(0, len(reads), per):
            result, logits, *attribution = reads[k: k + per]
            r = RESULT.decode(result)
            attr = None
            if attribution:
                codes = np.frombuffer(attribution[0], dtype="<i2").astype(np.int64)
                attr = from_blocked(codes, h["in_c"], h["in_h"], h["in_w"], h["tn"])
                if method == "grad_cam":  # the map, repeated over the input's channels: one is the attribution
                    attr = attr[:1]
                attr = network_image(attr, self.input_shape, view_phases(h, self.input_shape))  # the view
                if len(self.sample_shape) == 2:  # a 1-D model's (C, L)
                    attr = attr.reshape(attr.shape[0], -1)
            counts = {"forward": r["sat_forward"], "backward": r["sat_backward"], "post": r["sat_post"]}
            runs.append(DeviceRun(np.frombuffer(logits, dtype="<i2").astype(np.int64), self.logits_fmt,
                                  r["predicted"], r["target"], attr, self.attribution_fmts.get(method),
                                  {k: v for k, v in counts.items() if v}))
        return runs

    def run(self, x, method: str | None = None, target=None, steps: int | None = None, baseline=None,
            rule: str | None = None) -> list[DeviceRun]:
        """Each image of ``x`` (N, C, H, W floats) on the engine: codes and formats. A Program with
        batched lists takes ``batch`` images a start while that many are left (the rest, and
        integrated gradients, one a start; ``contract.engine_starts``); an image batch's
        saturation counters are the first image's DeviceRun's (0 in the others). The transport
        gets ``runs_per_call`` starts' operations at a time (a board one, the simulation a batch)."""
        code = self._method(method)
        batch = self._batch(x)
        n = batch.shape[0]
        targets = np.full(n, -1, dtype=np.int64) if target is None else np.broadcast_to(
            np.asarray(target), (n,)).astype(np.int64)
        if target is not None and (np.asarray(target).dtype.kind not in "iu" or (targets < 0).any()
                                   or (targets >= self.classes).any()):
            raise XaiHlsError(f"target must be one class or one per image, integers in 0..{self.classes - 1}; "
                              f"got {target!r}")
        steps = self.ig_steps if steps is None else steps
        rule = self.ig_rule if rule is None else rule
        ig_constants(steps, rule, self.header["data_width"])  # validates both
        if method and get_method(method).post is PostProcess.INTEGRATED and not 2 <= steps <= MAX_IG_STEPS:
            raise XaiHlsError(f"integrated_gradients steps must be 2..{MAX_IG_STEPS}, got {steps}")
        base = np.zeros_like(batch) if baseline is None else np.asarray(baseline, dtype=np.float64)
        if base.ndim >= 2 and len(self.sample_shape) == 2 and base.shape[-2:] == self.sample_shape:
            base = base.reshape(*base.shape[:-2], *self.input_shape)  # a 1-D model's (C, L)
        base = np.broadcast_to(base, batch.shape)
        if not np.isfinite(base).all():
            raise XaiHlsError("baseline contains NaN or infinite values")
        starts = engine_starts(n, self.header["batch"], code)
        per_call = self.transport.runs_per_call or len(starts)
        runs: list[DeviceRun] = []
        for group in range(0, len(starts), per_call):
            ops: list[Operation] = [] if self._loaded else [WriteMemory(0, self.image)]
            spans = []
            for first, count in starts[group: group + per_call]:
                images = [quantize_array(batch[k], self.input_fmt) for k in range(first, first + count)]
                seq = self.sequence(images, quantize_array(base[first], self.input_fmt), code,
                                    [int(t) for t in targets[first: first + count]], steps, rule)
                spans.append((first, count, len(ops), len(ops) + len(seq)))
                ops += seq
            answers = self.transport.execute_all(ops)
            if len(answers) != len(ops):
                raise RuntimeError(f"the transport answered {len(answers)} of {len(ops)} operations")
            self._loaded = True
            for first, count, lo, hi in spans:
                runs += self._results(ops[lo:hi], answers[lo:hi], method, first, count)
        return runs

    def predict(self, x) -> np.ndarray:
        """Logits (N, classes), float64 holding the exact fixed-point values."""
        return np.stack([r.logits * r.logits_fmt.lsb for r in self.run(x)])

    def attribute(self, x, method: str = "saliency", target=None, steps: int | None = None, baseline=None,
                  rule: str | None = None) -> np.ndarray:
        """The attribution (N, C, H, W), or a 1-D model's (N, C, L), float64 holding the exact fixed-point
        values."""
        runs = self.run(x, method, target, steps, baseline, rule)
        return np.stack([r.attribution * r.attribution_fmt.lsb for r in runs])


class ModelTransport(StepTransport):
    """The Program interpreter behind the engine's registers, in process (needs the full xaihls)."""

    ddr_base = 0x1_0000_0000  # any base: the interpreter sees offsets

    def __init__(self, total_bytes: int):
        self.ddr = np.zeros(total_bytes, dtype=np.uint8)
        self.registers = {offset: 0 for offset in REGISTER.values()}

    def execute(self, op: Operation):
        if isinstance(op, WriteMemory):
            self.ddr[op.offset: op.offset + len(op.data)] = np.frombuffer(op.data, dtype=np.uint8)
        elif isinstance(op, ReadMemory):
            return self.ddr[op.offset: op.offset + op.size].tobytes()
        elif isinstance(op, WriteRegister):
            self.registers[op.offset] = op.value
            if op.offset == REGISTER["CTRL"] and op.value & CTRL_START:
                self._start()
        elif isinstance(op, ReadRegister):
            return self.registers[op.offset]
        elif isinstance(op, WaitDone):
            if not self.registers[REGISTER["CTRL"]] & CTRL_DONE:
                raise TimeoutError("no ap_done")
        return None

    def _start(self) -> None:
        from xaihls.sim.interpreter import Engine

        r = self.registers
        target = r[REGISTER["TARGET"]]
        target = target - (1 << 32) if target >> 31 else target
        Engine(self.ddr).run(r[REGISTER["METHOD"]], target, r[REGISTER["STEPS"]], images=r[REGISTER["IMAGES"]])
        r[REGISTER["RETURN"]] = 0
        r[REGISTER["CTRL"]] = CTRL_DONE | CTRL_IDLE


class PynqTransport(StepTransport):
    """A PYNQ board: the overlay's IP registers and a contiguous DDR buffer (pynq imported here)."""

    def __init__(self, bitfile: str | Path, total_bytes: int, ip_name: str = "xaihls_top_0"):
        try:
            import pynq
        except ImportError:
            raise XaiHlsError("the PYNQ transport needs the pynq package (on the board's image); "
                              "elsewhere give Device a transport") from None
        if not Path(bitfile).is_file():
            raise XaiHlsError(f"no bitstream at {bitfile}; build it with the project's vivado/build_bitstream.tcl")
        self.overlay = pynq.Overlay(str(bitfile))
        self.ip = getattr(self.overlay, ip_name)
        self.buffer = pynq.allocate(shape=(total_bytes,), dtype=np.uint8)
        self.ddr_base = int(self.buffer.physical_address)

    def execute(self, op: Operation):
        if isinstance(op, WriteMemory):
            self.buffer[op.offset: op.offset + len(op.data)] = np.frombuffer(op.data, dtype=np.uint8)
            self.buffer.flush()
        elif isinstance(op, ReadMemory):
            self.buffer.invalidate()
            return bytes(self.buffer[op.offset: op.offset + op.size])
        elif isinstance(op, WriteRegister):
            self.ip.write(op.offset, op.value)
        elif isinstance(op, ReadRegister):
            return int(self.ip.read(op.offset))
        elif isinstance(op, WaitDone):
            deadline = time.monotonic() + op.timeout_s
            while not self.ip.read(REGISTER["CTRL"]) & CTRL_DONE:
                if time.monotonic() > deadline:
                    raise XaiHlsError(f"the engine raised no ap_done within {op.timeout_s:g} s")
        return None


__all__ = ["Device", "DeviceRun", "ModelTransport", "Operation", "PynqTransport", "ReadMemory", "ReadRegister",
           "StepTransport", "Transport", "WaitDone", "WriteMemory", "WriteRegister"]
