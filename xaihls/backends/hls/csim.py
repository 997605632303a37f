"""C-simulation of the HLS engine with g++ (``backend="csim"``, ``xaihls csim DIR``).

The engine's C++ is compiled once per source hash into a shared library (in a cache folder)
and called through ctypes. The host side — what a driver writes into DDR before start and
reads after done — is the program interpreter's (``xaihls.sim.program.Machine``), so only
the engine differs between ``backend="program"`` and ``backend="csim"``. Bit-exact with the
golden model for every method (tests/test_hls.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import torch

from xaihls.errors import XaiHlsError
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.plan.program import MAX_IG_STEPS, RESULT_WORDS

CXX_FLAGS = ("-O2", "-std=c++14", "-Wno-uninitialized", "-Wno-maybe-uninitialized")
CXX_ENV = "XAIHLS_CXX"  # the C++ compiler (default g++)
AP_TYPES_ENV = "XAIHLS_AP_TYPES_DIR"  # other ap_types headers (default: hls4ml's copy)
CACHE_ENV = "XAIHLS_CACHE_DIR"  # where backend="csim" keeps its builds (default ~/.cache/xaihls)

STATUS_BITS = {1: "bus error (an access outside the Program's DDR)",
               2: "the Program is not version 1 or larger than the engine was built for",
               4: "an argument (method, target or steps) out of range"}


def ap_types_dir() -> Path:
    """The folder with ap_int.h: $XAIHLS_AP_TYPES_DIR, else the copy inside the hls4ml package."""
    env = os.environ.get(AP_TYPES_ENV)
    if env:
        path = Path(env)
        if not (path / "ap_int.h").is_file():
            raise XaiHlsError(f"{AP_TYPES_ENV}='{env}' has no ap_int.h; point it at an ap_types include folder")
        return path
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise XaiHlsError("the C-simulation needs the ap_types headers: install hls4ml (pip install hls4ml) "
                          f"or set {AP_TYPES_ENV}")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise XaiHlsError(f"hls4ml has no ap_types headers at '{path}'; set {AP_TYPES_ENV} to an ap_types folder")
    return path


def compiler() -> str:
    name = os.environ.get(CXX_ENV, "g++")
    path = shutil.which(name)
    if path is None:
        raise XaiHlsError(f"the C-simulation needs a C++ compiler; '{name}' is not on PATH (install g++ or set {CXX_ENV})")
    return path


def cache_dir() -> Path:
    from xaihls.project import cache_dir as project_cache

    return project_cache()


def _build_key(sources: list[Path], headers: list[Path], extra: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in (compiler(), str(ap_types_dir()), *CXX_FLAGS, *extra):
        h.update(part.encode() + b"\0")
    for path in sources + headers:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _compile(sources: list[Path], headers: list[Path], out_dir: Path, stem: str, shared: bool) -> Path:
    """Compile ``sources`` once per content hash; returns the built file (reused when present)."""
    # Each engine's static buffers must stay its own when several are loaded in one process:
    # g++ would otherwise unify inline functions' statics across libraries (STB_GNU_UNIQUE).
    extra = ("-fPIC", "-shared", "-fno-gnu-unique", "-fvisibility=hidden") if shared else ()
    key = _build_key(sources, headers, extra)
    target = out_dir / (f"lib{stem}_{key}.so" if shared else f"{stem}_{key}")
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    cmd = [compiler(), *CXX_FLAGS, *extra, f"-I{ap_types_dir()}", *map(str, sources), "-o", str(partial)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = out_dir / f"{stem}_{key}.log"
        log.write_text(" ".join(cmd) + "\n\n" + proc.stderr)
        first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:200])
        raise XaiHlsError(f"g++ could not compile {sources[0].name}: {first.strip()} (full output: {log})")
    os.replace(partial, target)  # atomic: a concurrent build of the same key is harmless
    return target


class CSimLibrary:
    """The engine as a shared library: ``run`` executes one start of the top on a DDR array."""

    def __init__(self, path: Path):
        self.path = path
        self._lib = ctypes.CDLL(str(path))
        self._run = self._lib.xaihls_csim_run
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._run.restype = ctypes.c_int
        self._lib.xaihls_csim_total_bytes.restype = ctypes.c_int
        self.total_bytes = int(self._lib.xaihls_csim_total_bytes())
        self._lock = threading.Lock()  # the engine's on-chip memories are static: one run at a time

    def run(self, ddr: np.ndarray, method: int, target: int, steps: int) -> int:
        """The top's status (0 ok) after it ran on ``ddr`` (uint8, the Program's total bytes)."""
        if ddr.dtype != np.uint8 or not ddr.flags.c_contiguous or not ddr.flags.writeable:
            raise ValueError("ddr must be a writeable, contiguous uint8 array")
        if ddr.size < self.total_bytes:
            raise ValueError(f"ddr has {ddr.size} bytes; this engine's Program uses {self.total_bytes}")
        with self._lock:
            return int(self._run(ddr.ctypes.data, method, target, steps))


_LIBRARIES: dict[Path, CSimLibrary] = {}
_LIBRARIES_LOCK = threading.Lock()


def load_library(path: Path) -> CSimLibrary:
    with _LIBRARIES_LOCK:
        if path not in _LIBRARIES:
            _LIBRARIES[path] = CSimLibrary(path)
        return _LIBRARIES[path]


def build_library(firmware: Path, build_dir: Path) -> Path:
    """Compile a project's firmware folder (with the C-simulation entry) into a shared library."""
    sources = [firmware / "xaihls_top.cpp", firmware / "xaihls_csim.cpp"]
    return _compile(sources, sorted(firmware.glob("*.h")), build_dir, "xaihls_csim", shared=True)


def library_for(plan) -> CSimLibrary:
    """The compiled engine of ``plan`` from the cache (its firmware written and built on first use)."""
    from xaihls.backends.hls.writer import firmware_files

    files = firmware_files(plan)
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data + b"\0" for name, data in sorted(files.items())))
    folder = cache_dir() / "csim" / digest.hexdigest()[:16]
    for rel, data in files.items():
        path = folder / rel
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(data)
            os.replace(partial, path)
    return load_library(build_library(folder / "firmware", folder / "build"))


def _status_text(status: int) -> str:
    return "; ".join(text for bit, text in STATUS_BITS.items() if status & bit) or f"status {status}"


def run_batch(plan, x_q: torch.Tensor, method: str | None, target: torch.Tensor | None, steps: int, rule: str,
              baseline_q: torch.Tensor | None):
    """Run each image of an already-quantized batch on the C-simulated engine.

    Same contract as ``xaihls.sim.program.run_batch``: int64 tensors (logits, target, attribution)
    and each run's saturation counters (the result region's words 2..4).
    """
    from xaihls.sim.program import Machine

    library = library_for(plan)
    machine = Machine(plan.program, plan.engine.tm, plan.engine.tn)
    h = machine.header
    code = PREDICT_CODE if method is None else METHOD_CODES[method]
    logits, targets, attrs, counters = [], [], [], []
    for k in range(x_q.shape[0]):
        base = None if baseline_q is None else baseline_q[k].reshape(-1).numpy()
        machine.load_inputs(x_q[k].reshape(-1).numpy(), base, steps, rule)
        status = library.run(machine.ddr, code, -1 if target is None else int(target[k]), steps)
        if status:
            raise XaiHlsError(f"the C-simulated engine stopped: {_status_text(status)}")
        result = machine.read32(h.result_addr, RESULT_WORDS)
        logits.append(machine.read16(h.logits_addr, h.classes))
        targets.append(int(result[1]))
        counters.append(tuple(int(v) for v in result[2:]))
        if code != PREDICT_CODE:
            attrs.append(machine.read16(h.attr_addr, h.input_elems).reshape(x_q.shape[1:]))
    as_t = lambda a: torch.from_numpy(np.stack(a).astype(np.int64))  # noqa: E731
    return as_t(logits), torch.tensor(targets, dtype=torch.int64), (as_t(attrs) if attrs else None), counters


class CSimExecutor:
    """The HLS engine's C++ compiled with g++ (cached) and called in process."""

    capabilities = Capabilities("csim", data_widths=(16,), max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        logits, targets, attrs, counters = run_batch(plan, args.x_q, args.method, args.target, args.steps,
                                                     args.rule, args.baseline_q)
        return engine_result(qg, args, logits, targets, attrs, counters)


EXECUTOR = CSimExecutor()


def build_testbench(project: Path) -> Path:
    """Compile a project's testbench (tb/ + firmware/) once per source hash, into project/build/."""
    firmware = project / "firmware"
    sources = [project / "tb" / "xaihls_tb.cpp", firmware / "xaihls_top.cpp"]
    missing = [str(p.relative_to(project)) for p in sources if not p.is_file()]
    if missing:
        raise XaiHlsError(f"HLS project '{project}' lacks {', '.join(missing)}; write it again with `xaihls compile`")
    return _compile(sources, sorted(firmware.glob("*.h")), project / "build", "xaihls_tb", shared=False)


def run_testbench(project: str | Path) -> tuple[int, str]:
    """Build and run an HLS project's testbench: (exit status, its output). Non-zero on any mismatch."""
    from xaihls.project import PROJECT_FILE, read_project

    if read_project(project) is None:
        raise XaiHlsError(f"'{project}' is not an xaihls HLS project (no {PROJECT_FILE} written by xaihls); "
                          f"write one with `xaihls compile MODEL --out {project}`")
    folder = Path(project).resolve()  # the testbench runs in the project folder and is given its path
    exe = build_testbench(folder)
    proc = subprocess.run([str(exe), str(folder)], capture_output=True, text=True, cwd=folder)
    return proc.returncode, proc.stdout + proc.stderr
