"""``verilator --lint-only -Wall`` on the RTL engine, with the stated waivers (xaihls_lint.vlt)."""

from __future__ import annotations

import subprocess

from xaihls.backends.rtl.params import RTL_DIR, SIM_DIR, SIM_SOURCES, SIM_TOP, TOP, RtlParams, sources
from xaihls.backends.rtl.sim import tool_env, verilator_root

WAIVERS = RTL_DIR / "xaihls_lint.vlt"


def lint(params: RtlParams | None = None, simulation: bool = False) -> str:
    """Lint the engine (with ``params`` as top-level overrides); returns Verilator's warnings ('' if clean).
    ``simulation``: lint the simulation top, the engine with its DDR model, instead."""
    top = SIM_TOP if simulation else TOP
    cmd = [str(verilator_root() / "bin" / "verilator"), "--lint-only", "-Wall", "--top-module", top, str(WAIVERS)]
    if params is not None:
        cmd += [f"-G{k}={v}" for k, v in params.as_dict().items()]
    cmd += [str(p) for p in sources()]
    if simulation:
        cmd += [str(SIM_DIR / n) for n in SIM_SOURCES if n.endswith(".sv")]
    res = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True)
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("%")]
    if res.returncode and not lines:
        lines = [res.stderr.strip() or f"verilator exited with {res.returncode}"]
    return "\n".join(lines)
