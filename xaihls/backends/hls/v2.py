"""Engine v2 in Vitis HLS C++: parameters.h, the g++ C-simulation, and the project's files.

The engine is the fixed library in ``hls_templates/firmware`` (docs/engine_v2.md);
for a network this module writes only ``parameters.h`` (from an EngineV2 and the ProgramV2 it
runs), and, for a project, the Program's DDR image, the testbench's golden vectors and the
scripts. The C-simulation compiles the same sources with g++ once per content hash (cached,
through ``csim``'s build) and runs them through ctypes; the host side (what a driver
writes into DDR and reads back: the image and baseline blocked, the IG table, the attribution
unblocked) is the Program interpreter's (``xaihls.sim.interpreter.Engine``), so only the
engine differs from ``xaihls.sim.interpreter``. Bit-exact with the golden model for predict and
every method, saturation counters equal to the interpreter's (tests/test_hls_v2.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import torch

from xaihls.backends.hls.csim import ap_types_dir, build_library, cache_dir
from xaihls.backends.hls.templates import read_template, render
from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.golden import model as golden
from xaihls.methods import METHOD_CODES, PREDICT_CODE, ig_constants
from xaihls.plan.contract import MAX_IG_STEPS, PROGRAM_VERSION, Flag, Op, Status
from xaihls.plan.engine import EngineV2, ig_elems
from xaihls.plan.contract import host_image, image_view, to_blocked
from xaihls.plan.lowering import ProgramV2, buffer_needs
from xaihls.project import clock_period_ns
from xaihls.sim.interpreter import Engine, host_runs

FIRMWARE = "firmware"
ENGINE_SOURCES = ("xaihls_contract.h", "xaihls_types.h", "xaihls_conv.h", "xaihls_engine.h", "xaihls_top.h",
                  "xaihls_top.cpp")
"""The fixed, synthesized sources (with the generated parameters.h): what Vitis HLS compiles."""

CSIM_SOURCES = ("xaihls_csim_hls.h", "xaihls_host.h", "xaihls_csim.cpp")
"""C-simulation only, never synthesized: stand-ins for Vitis's hls_vector.h and
hls_streamofblocks.h (used when the ap_types headers lack them), the host's byte/beat
conversion, and the ctypes entry."""

PARAMETERS = "parameters.h"
TESTBENCH = "tb/xaihls_tb.cpp"
README = "README.md"
DDR_IMAGE = "firmware/weights/ddr_image.bin"
TOP = "xaihls_top"
HLS_PROJECT_NAME = "xaihls_prj"
TEST_IMAGES = 2
CSIM_FAULT = 1 << 7  # the top's C-simulation-only status bit (xaihls_engine.h)

STATUS_TEXT = {
    1 << Status.BUS_ERROR: "bus error (an access outside the Program's DDR)",
    1 << Status.BAD_PROGRAM: f"the Program is not contract version {PROGRAM_VERSION} or was built for another engine",
    1 << Status.BAD_ARGUMENT: "an argument (method, target, steps or the IG table) out of range",
    CSIM_FAULT: "C-simulation fault: the engine's units disagreed on a job's tiles, or an operand address left "
                "the input buffer (an engine or compiler bug)",
}


# ---------------------------------------------------------------------------------------------
# parameters.h
# ---------------------------------------------------------------------------------------------

def check_engine(program: ProgramV2, engine: EngineV2) -> None:
    """XaiHlsError unless ``engine`` can run ``program`` (same array and beat, room for it)."""
    s, h = program.shape, program.header
    if (s.tm, s.tn, s.beat_elems) != (engine.tm, engine.tn, engine.beat_elems):
        raise XaiHlsError(f"the Program is tiled for a {s.tm}x{s.tn} array with {16 * s.beat_elems}-bit beats; the "
                          f"engine is {engine.tm}x{engine.tn} with {engine.axi_data_bits}-bit beats")
    if h["data_width"] != 16:
        raise XaiHlsError(f"the HLS engine moves 16-bit data; this network is quantized to {h['data_width']} bits "
                          "(set width: 16 in the quantization config)")
    in_used, out_used, w_used = buffer_needs(program.all_jobs, s.tm, s.tn)
    needs = {"in_depth": in_used, "out_depth": out_used, "w_depth": w_used, "mask_bits": h["mask_bits"],
             "index_entries": h["index_entries"], "index_bits": h["index_bits"],
             "input_elems": ig_elems(h, program.qgraph.methods)}
    for name, need in needs.items():
        if getattr(engine, name) < need:
            raise XaiHlsError(f"the engine's {name} is {getattr(engine, name)}; the Program needs {need}")


def _tripcounts(program: ProgramV2) -> dict[str, int]:
    """The largest count of each kind any job of ``program`` asks for (Vitis's latency report)."""
    per = program.shape.tm // program.shape.tn
    jobs = program.all_jobs
    conv = [d for d in jobs if d.op == Op.CONV]
    seed = [d for d in jobs if d.op == Op.SEED]
    return {
        "MAX_JOBS": max(len(program.forward), len(program.backward), len(program.forward_batch),
                        len(program.backward_batch), len(program.cam), 1),
        "MAX_BATCH": program.batch,
        "MAX_ROW_TILES": max([d.m_tiles * d.row_tiles for d in conv], default=1),
        "MAX_PASSES": max([d.passes for d in conv], default=1),
        "MAX_N_TILES": max([min(1 if d.has(Flag.LANES) else per, d.n_tiles) if d.has(Flag.DIAG) else d.n_tiles
                            for d in conv], default=1),
        "MAX_WRITE_COMMANDS": max([d.out_blocks * (d.pool_oh if d.has(Flag.POOL) else d.oh) for d in conv], default=1),
        "MAX_SEED_BEATS": max([d.out_blocks * program.shape.tn // program.shape.beat_elems for d in seed], default=1),
        "MAX_INPUT_BEATS": program.header["input_elems"] // program.shape.beat_elems,
    }


PROGRAM_PARAMETERS = {
    "DDR_BYTES": "bytes of DDR the Program uses",
    "MAX_JOBS": "descriptors in the longest list",
    "MAX_BATCH": "slots of the batched lists",
    "MAX_ROW_TILES": "row tiles of one job, over its m-tiles",
    "MAX_N_TILES": "n-tiles of one row tile",
    "MAX_PASSES": "passes (kernel taps) of one tile",
    "MAX_WRITE_COMMANDS": "output runs of one job",
    "MAX_SEED_BEATS": "beats of the logits vector",
    "MAX_INPUT_BEATS": "beats of the blocked input (the image copy, post-processing)",
}
"""parameters.h's Program section: the m_axi depth (co-simulation) and loop_tripcount hints."""


def engine_parameters(program: ProgramV2 | None, engine: EngineV2) -> dict[str, dict[str, tuple[int, str]]]:
    """The values of parameters.h, by section: name -> (value, what it is); the Program's
    section only with a Program."""
    beat_bytes = 2 * engine.beat_elems
    engine_section = {
        "TM": (engine.tm, "output channels (accumulator lanes) of the MAC array"),
        "TN": (engine.tn, "input channels of the MAC array; tensors are stored in blocks of TN channels"),
        "BEAT_ELEMS": (engine.beat_elems, f"16-bit elements per AXI beat ({engine.axi_data_bits}-bit data)"),
        "BEAT_SHIFT": (beat_bytes.bit_length() - 1, f"log2 of a beat's {beat_bytes} bytes"),
        "IN_DEPTH": (engine.in_depth, "words (pixels of TN channels) per input buffer"),
        "OUT_DEPTH": (engine.out_depth, "accumulators per lane"),
        "W_DEPTH": (engine.w_depth, "weight rows of TN per buffer (passes x TM)"),
        "MASK_BITS": (engine.mask_bits, "ReLU bits kept between the passes"),
        "INDEX_ENTRIES": (engine.index_entries, "max-pool indices kept between the passes"),
        "INDEX_BITS": (max(engine.index_bits, 1), "bits of one max-pool index"),
        "INPUT_ELEMS": (engine.input_elems, "the largest blocked input whose integrated-gradients sums the engine "
                                            "keeps (0: it runs no integrated gradients)"),
        "DATA_WIDTH": (16, "bits of weights, activations and gradients"),
    }
    if program is None:
        return {"engine": engine_section}
    check_engine(program, engine)
    values = {"DDR_BYTES": program.total_bytes, **_tripcounts(program)}
    return {"engine": engine_section,
            "program": {name: (values[name], meaning) for name, meaning in PROGRAM_PARAMETERS.items()}}


def _constexpr_block(section: dict[str, tuple[int, str]]) -> str:
    width = max(len(name) for name in section)
    return "\n".join(f"constexpr int {name:<{width}} = {value};  // {what}" for name, (value, what) in section.items())


def parameters_header(program: ProgramV2 | None, engine: EngineV2) -> str:
    """The generated ``firmware/parameters.h`` of an engine and its Program. Without a Program
    (the C-simulation library, which runs any Program that fits the engine), the Program's
    section holds placeholders: its values only size pragmas (the m_axi depth, tripcounts),
    which C ignores."""
    import xaihls

    params = engine_parameters(program, engine) if program is not None else {
        "engine": engine_parameters(None, engine)["engine"],
        "program": {name: (2 * engine.beat_elems if name == "DDR_BYTES" else 1,
                           "C-simulation library: the DDR's size comes at run time; pragmas only")
                    for name in PROGRAM_PARAMETERS},
    }
    if program is not None:
        graph = program.qgraph.graph
        network = (f"// Network: input {'x'.join(map(str, graph.data_shape))}, {graph.num_classes} classes, "
                   f"{len(graph.layers)} layers. ")
    else:
        network = "// The C-simulation library of an engine (any Program that fits it). "
    provenance = (f"{network}Engine {engine.tm}x{engine.tn}, {engine.axi_data_bits}-bit AXI, "
                  f"{engine.clock_mhz:g} MHz.\n// Written by xaihls {xaihls.__version__}.")
    return render(read_template(f"{FIRMWARE}/{PARAMETERS}"), {
        "provenance": provenance,
        "engine": _constexpr_block(params["engine"]),
        "program": _constexpr_block(params["program"]),
    })


def firmware_files(program: ProgramV2 | None, engine: EngineV2) -> dict[str, bytes]:
    """``firmware/*``: the fixed sources, the C-simulation sources and the generated parameters.h
    (``program`` None: the C-simulation library's, see ``parameters_header``)."""
    files = {f"firmware/{name}": read_template(f"{FIRMWARE}/{name}").encode() for name in ENGINE_SOURCES + CSIM_SOURCES}
    files[f"firmware/{PARAMETERS}"] = parameters_header(program, engine).encode()
    return files


def synthesized_sources(folder: Path) -> list[Path]:
    """The files of a project's ``firmware/`` that Vitis HLS synthesizes (the HLS rules hold for them)."""
    return [folder / "firmware" / name for name in (PARAMETERS, *ENGINE_SOURCES)]


# ---------------------------------------------------------------------------------------------
# C-simulation
# ---------------------------------------------------------------------------------------------

def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = folder / rel
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(data)
            os.replace(partial, path)


class CSimV2Library:
    """An engine compiled as a shared library: ``run`` executes one start of the top on a DDR
    array of any size (every access is checked against it)."""

    def __init__(self, path: Path):
        self.path = path
        self._lib = ctypes.CDLL(str(path))
        self._run = self._lib.xaihls_csim_run
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._run.restype = ctypes.c_int
        self._lock = threading.Lock()  # the engine's on-chip memories are static: one run at a time

    def run(self, ddr: np.ndarray, method: int, target: int, steps: int, images: int = 1) -> int:
        """The top's status (0 ok) after it ran on ``ddr`` (uint8, whole beats); ``images``: the
        IMAGES register (1, or the Program's batch: an image batch)."""
        if ddr.dtype != np.uint8 or not ddr.flags.c_contiguous or not ddr.flags.writeable:
            raise ValueError("ddr must be a writeable, contiguous uint8 array")
        with self._lock:
            return int(self._run(ddr.ctypes.data, ddr.size, method, target, steps, images))

    def _count(self, name: str) -> int:
        """One of the counters the C-simulation keeps (``long xaihls_csim_<name>()``)."""
        counter = getattr(self._lib, f"xaihls_csim_{name}")
        counter.argtypes, counter.restype = [], ctypes.c_long
        with self._lock:
            return int(counter())

    def skipped_rows(self) -> int:
        """Grid rows the walker has skipped as off the map since the library was loaded."""
        return self._count("skipped_rows")

    def input_beats(self) -> int:
        """Input beats the loader has read from DDR since the library was loaded."""
        return self._count("input_beats")


_LIBRARIES: dict[Path, CSimV2Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def library_for(engine: EngineV2) -> CSimV2Library:
    """The compiled engine from the cache (its firmware written and built on first use). One
    build serves every Program that fits the engine, as one bitstream would."""
    files = firmware_files(None, engine)
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data + b"\0" for name, data in sorted(files.items())))
    folder = cache_dir() / "csim_v2" / digest.hexdigest()[:16]
    _write_files(folder, files)
    path = build_library(folder / "firmware", folder / "build")
    with _LIBRARIES_LOCK:
        if path not in _LIBRARIES:
            _LIBRARIES[path] = CSimV2Library(path)
        return _LIBRARIES[path]


def status_text(status: int) -> str:
    return "; ".join(text for bit, text in STATUS_TEXT.items() if status & bit) or f"status {status}"


def run_batch(program: ProgramV2, engine: EngineV2, x_q: torch.Tensor, method_code: int, target: torch.Tensor | None,
              steps: int, rule: str, baseline_q: torch.Tensor | None):
    """Each image of a quantized batch on the C-simulated engine (``interpreter.host_runs``: its
    engine starts, results and saturation counters, as ``interpreter.run_batch`` returns them)."""
    check_engine(program, engine)
    library = library_for(engine)
    host = Engine(program)  # the host side: DDR image, blocked inputs, IG table, results

    def start(asked: int, images: int) -> None:
        status = library.run(host.ddr, method_code, asked, steps, images=images)
        if status:
            raise XaiHlsError(f"the C-simulated engine stopped: {status_text(status)}")

    return host_runs(host, x_q, method_code, target, steps, rule, baseline_q, start)


class CSimV2Executor:
    """The Engine v2 HLS C++ compiled with g++ (cached) and called in process. ``plan``: any
    object with ``.program`` (ProgramV2) and ``.engine`` (EngineV2)."""

    capabilities = Capabilities("csim", data_widths=(16,), max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        code = PREDICT_CODE if args.method is None else METHOD_CODES[args.method]
        logits, targets, attrs, counters = run_batch(plan.program, plan.engine, args.x_q, code, args.target,
                                                     args.steps, args.rule, args.baseline_q)
        return engine_result(qg, plan.program.header, args, logits, targets, attrs, counters)


EXECUTOR = CSimV2Executor()


# ---------------------------------------------------------------------------------------------
# The Vitis HLS project
# ---------------------------------------------------------------------------------------------

def _i16(values) -> bytes:
    return np.ascontiguousarray(np.asarray(values, dtype=np.int64).reshape(-1).astype("<i2")).tobytes()


def _i32(values) -> bytes:
    return np.asarray(list(values), dtype="<i4").tobytes()


def default_test_images(input_shape: tuple[int, int, int], count: int = TEST_IMAGES) -> torch.Tensor:
    """Deterministic images in [0, 1) for a project written without given images."""
    return torch.rand((count, *input_shape), generator=torch.Generator().manual_seed(0))


def test_vectors(qg, header: dict, images=None) -> tuple[dict[str, bytes], int]:
    """``tb_data/``: the images (as the host writes them for the Program of ``header``), the IG
    table, and the golden model's logits, result and attribution (blocked) of predict and every
    compiled method. Returns the files and the number of cases."""
    x = golden.check_batch(qg, default_test_images(qg.graph.input_shape) if images is None else images,
                           "test images")
    x_q = golden.quantize_input(qg, x, golden.Saturations())
    steps, rule = qg.ig_steps, qg.ig_rule
    files = {"tb_data/ig_table.bin": _i32(ig_constants(steps, rule, qg.width).table())}
    lines = ["# xaihls Engine v2 testbench cases, one run of xaihls_top each (little-endian files in tb_data/;",
             "# images as the host writes them (folded, host_image) and attributions in the DDR's blocked layout",
             "# [C/Tn][H][W][Tn]):",
             "# image image_file method method_code target steps ig_table baseline logits result attribution",
             f"# integrated gradients: {steps} steps, rule {rule}; baseline '-' is zeros; target -1 is the predicted class"]
    for k in range(x.shape[0]):
        files[f"tb_data/image{k}.bin"] = _i16(host_image(x_q[k].numpy(), header))
    runs = [("predict", PREDICT_CODE, golden.predict(qg, x))]
    runs += [(m, METHOD_CODES[m], golden.attribute(qg, x, m)) for m in qg.methods]
    for name, code, r in runs:
        for k in range(x.shape[0]):
            stem = f"image{k}_{name}"
            files[f"tb_data/{stem}_logits.bin"] = _i16(r.logits[k])
            files[f"tb_data/{stem}_result.bin"] = _i32([int(torch.argmax(r.logits[k])), int(r.target[k])])
            attribution = "-"
            if r.attribution is not None:
                attribution = f"{stem}_attribution.bin"
                a = r.attribution[k]
                if name == "grad_cam":  # the engine leaves the map repeated over the input's channels
                    a = a.expand(qg.graph.input_shape[0], -1, -1)
                files[f"tb_data/{attribution}"] = _i16(to_blocked(image_view(a.numpy(), header), header["tn"]))
            lines.append(f"{k} image{k}.bin {name} {code} -1 {steps} ig_table.bin - {stem}_logits.bin "
                         f"{stem}_result.bin {attribution}")
    files["tb_data/cases.txt"] = ("\n".join(lines) + "\n").encode()
    return files, len(runs) * x.shape[0]


def project_files(qg, plan, images=None) -> dict[str, bytes]:
    """Every file of an Engine v2 Vitis HLS project but project.json, by relative path.

    ``plan``: any object with ``.program`` (ProgramV2), ``.engine`` (EngineV2) and ``.board``
    (name, part). The same inputs give byte-identical files.
    """
    program, engine, board = plan.program, plan.engine, plan.board
    files = firmware_files(program, engine)
    files[DDR_IMAGE] = program.image
    files["tb/xaihls_tb.cpp"] = read_template(TESTBENCH).encode()
    tb, cases = test_vectors(qg, program.header, images)
    files.update(tb)
    period = clock_period_ns(engine.clock_mhz)
    settings = "\n".join([f"set project_name {HLS_PROJECT_NAME}", f"set top {TOP}", f"set part {{{board.part}}}",
                          f"# {board.name}: {engine.clock_mhz:g} MHz", f"set clock_period {period}"])
    files["build_prj.tcl"] = render(read_template("build_prj.tcl"), {"settings": settings}).encode()
    try:
        ap_types = f"AP_TYPES_DIR ?= {ap_types_dir()}"
    except XaiHlsError:  # no headers here: the project is still complete; make asks for the folder
        ap_types = "AP_TYPES_DIR ?= $(error set AP_TYPES_DIR to a folder with ap_int.h, e.g. Vitis's include/)"
    files["Makefile"] = render(read_template("Makefile"), {"ap_types": ap_types}).encode()
    summary = "\n".join([
        "| | |",
        "|---|---|",
        f"| board | {board.name} (`{board.part}`), {engine.clock_mhz:g} MHz ({period} ns) |",
        f"| network | input {' x '.join(map(str, qg.graph.input_shape))}, {qg.graph.num_classes} classes, "
        f"{len(qg.graph.layers)} layers |",
        f"| MAC array | Tm = {engine.tm} x Tn = {engine.tn}, {engine.axi_data_bits}-bit AXI |",
        f"| buffers | input {engine.in_depth} words, accumulators {engine.out_depth} a lane, "
        f"weights {engine.w_depth} rows |",
        f"| kept between passes | {engine.mask_bits} ReLU bits, {engine.index_entries} pool indices of "
        f"{engine.index_bits} bits |",
        f"| methods | {', '.join(qg.methods)} (integrated gradients: {qg.ig_steps} steps, {qg.ig_rule}) |",
        f"| testbench | {cases} cases in `tb_data/` |",
    ])
    files["README.md"] = render(read_template(README), {"summary": summary}).encode()
    return dict(sorted(files.items()))


__all__ = ["CSimV2Executor", "EXECUTOR", "check_engine", "engine_parameters", "firmware_files", "library_for",
           "parameters_header", "project_files", "run_batch", "synthesized_sources", "test_vectors"]
