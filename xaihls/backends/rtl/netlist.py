"""yosys's reading of the RTL, written back as Verilog: simulating it checks that yosys and
Verilator read the sources the same way (the subset both accept is narrower than either)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from xaihls.backends.rtl.params import TOP, RtlParams, sources
from xaihls.backends.rtl.synth import yosys_executable


def yosys_netlist(params: RtlParams, out_dir: str | Path) -> Path:
    """Elaborate with yosys (proc, flatten, opt_clean: no technology mapping); returns the Verilog file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chparam = " ".join(f"-set {k} {v}" for k, v in params.as_dict().items())
    script = (f"read_verilog -sv {' '.join(str(p) for p in sources())}; chparam {chparam} {TOP}; "
              f"hierarchy -top {TOP}; proc; flatten; opt_clean; write_verilog -noattr {TOP}_yosys.v")
    res = subprocess.run([yosys_executable(), "-q", "-p", script], cwd=out, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"yosys failed: {res.stderr.strip()[-2000:]}")
    return out / f"{TOP}_yosys.v"
