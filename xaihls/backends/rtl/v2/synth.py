"""yosys ``synth_xilinx`` on the Engine v2 RTL: LUT, FF, DSP and BRAM counts (pyosys in a child
process, xaihls.backends.rtl.synth's runner; the plan's parameters as top-level overrides).

The hierarchy is kept (each distinct module synthesized once; counts per module in the stat
file); ``flatten=True`` flattens first. Expected DSP48 count: one per MAC (Tm x Tn) and the
controller's one 25 x 18 multiplier (``extra_dsps``); the backward path adds none (its
post-processing borrows the MAC array's column 0, docs/engine_v2.md).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xaihls.backends.rtl import synth as common
from xaihls.backends.rtl.v2.params import TOP, RtlV2Params, sources
from xaihls.errors import XaiHlsError


CONTROLLER_DSPS = 1  # xaihls_ctrl's multiplier (descriptor products), with or without the backward path


def extra_dsps(params: RtlV2Params) -> int:
    """DSP48s outside the MAC array (the same for an inference-only build)."""
    return CONTROLLER_DSPS


def script(params: RtlV2Params, family: str = "xc7", run: str | None = None, flatten: bool = False,
           stat_file: str = "stat.txt", files: list[Path] | None = None) -> str:
    """The yosys script: read the sources (``files``: a project's copy in compile order; default the
    package's), set the parameters, synth_xilinx, stat."""
    if family not in common.FAMILIES:
        raise XaiHlsError(f"unknown yosys synth_xilinx family '{family}'; supported: {', '.join(common.FAMILIES)}")
    chparam = " ".join(f"-set {k} {v}" for k, v in params.as_dict().items())
    run_opt = f" -run {run}" if run else ""
    return "\n".join([f"read_verilog -sv {' '.join(str(p) for p in (files or sources()))}", f"chparam {chparam} {TOP}",
                      f"synth_xilinx{' -flatten' if flatten else ''} -family {family} -top {TOP}{run_opt}",
                      f"tee -q -o {stat_file} stat"]) + "\n"


def synthesize(params: RtlV2Params, family: str = "xc7", out_dir: str | Path | None = None, run: str | None = None,
               timeout: float = 3600, flatten: bool = False, files: list[Path] | None = None) -> common.SynthResult:
    """Run yosys synth_xilinx (``run``, e.g. 'begin:coarse', stops early); ``out_dir`` keeps synth.ys,
    yosys.log and stat.txt; ``files``: the sources (see ``script``). The result's
    ``seconds`` is the wall time; the peak memory (max RSS, KiB) is in ``cells['peak_rss_kib']``."""
    common._check_pyosys()
    work = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="xaihls_yosys2_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "synth.ys").write_text(script(params, family, run, flatten, files=files))
    stat_path = work / "stat.txt"
    stat_path.unlink(missing_ok=True)
    runner = common._PYOSYS_RUNNER + "import resource\nprint('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    t0 = time.time()
    with open(work / "yosys.log", "w") as log:
        res = subprocess.run([sys.executable, "-c", runner, "synth.ys"], cwd=work, stdout=log, stderr=subprocess.STDOUT,
                             timeout=timeout)
    seconds = time.time() - t0
    if res.returncode or not stat_path.is_file():
        last = ((work / "yosys.log").read_text(errors="replace").strip().splitlines() or [""])[-1]
        raise XaiHlsError(f"yosys synth_xilinx failed (status {res.returncode}); see {work / 'yosys.log'}: {last[-200:]}")
    out = common.result_from_stat(params, family, stat_path.read_text(), seconds)
    peak = [line.split()[1] for line in (work / "yosys.log").read_text().splitlines() if line.startswith("peak_rss_kib")]
    if peak:
        out.cells["peak_rss_kib"] = int(peak[-1])
    return out
