"""The g++ side of the HLS backend: the compiler, the ap_types headers, content-hashed builds and
a project's testbench (``xaihls csim DIR``, ``make csim``). The in-process engine
(``backend="csim"``) is ``xaihls.backends.hls.v2``; it builds through ``build_library`` here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import threading
from pathlib import Path


from xaihls.errors import XaiHlsError
from xaihls.project import CACHE_ENV, cache_dir  # noqa: F401 - the build cache (CACHE_ENV named here for the tests)

CXX_FLAGS = ("-O2", "-std=c++14", "-Wno-uninitialized", "-Wno-maybe-uninitialized")
CXX_ENV = "XAIHLS_CXX"  # the C++ compiler (default g++)
AP_TYPES_ENV = "XAIHLS_AP_TYPES_DIR"  # other ap_types headers (default: hls4ml's copy)

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


def build_library(firmware: Path, build_dir: Path) -> Path:
    """Compile a project's firmware folder (with the C-simulation entry) into a shared library."""
    sources = [firmware / "xaihls_top.cpp", firmware / "xaihls_csim.cpp"]
    return _compile(sources, sorted(firmware.glob("*.h")), build_dir, "xaihls_csim", shared=True)


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
