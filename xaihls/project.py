"""The project folder format and the build caches: what every backend shares, owned by none.

A project folder (``xaihls compile --out DIR``) holds the Vitis HLS project (``firmware/``,
``tb/``, ``tb_data/``, ``build_prj.tcl``, ``Makefile``), the RTL (``rtl/``), the board flow
(``vivado/`` or ``vitis/``), ``estimate.json`` (the plan's figures) and ``project.json`` (what it
was made from, and the marker that the folder is ours). Reports of the tools land in
``reports/``. ``xaihls.writer`` assembles a project; the backends read and write their parts
through the names here, so ``backends.hls`` and ``backends.rtl`` never import each other.

The import rule (tests/test_layers.py): ``xaihls.project`` imports nothing of xaihls but
``xaihls.errors``; ``xaihls.backends.hls`` and ``xaihls.backends.rtl`` do not import each other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xaihls.errors import XaiHlsError

PROJECT_FILE = "project.json"
ESTIMATE_FILE = "estimate.json"
PROJECT_KIND = "xaihls-hls-project"
PROJECT_FORMAT = 2  # 2: Engine v2 (Program v2, blocked layouts)
DDR_IMAGE = "firmware/weights/ddr_image.bin"
REPORTS = "reports"
CACHE_ENV = "XAIHLS_CACHE_DIR"  # where the C-simulation and Verilator builds are kept (default ~/.cache/xaihls)


def cache_dir() -> Path:
    """The build cache: ``$XAIHLS_CACHE_DIR``, else ``$XDG_CACHE_HOME/xaihls``, else ~/.cache/xaihls."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "xaihls"


def clock_period_ns(clock_mhz: float) -> str:
    """The clock period as the tcl scripts and project.json state it (6 significant digits)."""
    return f"{1000.0 / clock_mhz:.6g}"


def read_project(folder: str | Path) -> dict[str, Any] | None:
    """The project.json of an xaihls project in ``folder``, or None if it is not one."""
    path = Path(folder) / PROJECT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("generator") == "xaihls" and data.get("kind") == PROJECT_KIND:
        return data
    return None


def load_project(folder: str | Path) -> tuple[Path, dict[str, Any]]:
    """(folder, project.json) of a project of this format; one clear line if it is not one."""
    path = Path(folder)
    if not path.is_dir():
        raise XaiHlsError(f"'{folder}' is not a folder; give a project folder written by xaihls compile")
    description = read_project(path)
    if description is None:
        raise XaiHlsError(f"'{folder}' holds no xaihls project ({PROJECT_FILE}); write one with xaihls compile")
    if description.get("format") != PROJECT_FORMAT:
        raise XaiHlsError(f"'{folder}' was written in project format {description.get('format')}; this xaihls reads "
                          f"format {PROJECT_FORMAT}: write it again with xaihls compile")
    return path, description


def read_estimate(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / ESTIMATE_FILE).read_text())
    except (OSError, ValueError):
        raise XaiHlsError(f"'{folder}': no readable {ESTIMATE_FILE}; write the project again with xaihls compile") \
            from None


def check_project_folder(out_dir: str | Path, force: bool = False) -> Path:
    """``out_dir`` if a project may be written there: new, empty, an xaihls project, or forced."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise XaiHlsError(f"'{out}' is a file; give a folder for the project")
    if out.is_dir() and any(out.iterdir()) and read_project(out) is None and not force:
        raise XaiHlsError(f"'{out}' is not empty and holds no xaihls project ({PROJECT_FILE}); "
                          f"choose an empty folder, or force to write the project's files next to what is there")
    return out


def write_files(out: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path -> bytes) under ``out``; unchanged files are left alone, nothing
    is deleted."""
    for rel, data in files.items():
        path = out / rel
        if path.is_dir():
            raise XaiHlsError(f"'{path}' is a folder; the project writes a file there")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    return out
