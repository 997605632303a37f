"""``verilator --lint-only -Wall`` on the RTL engine, with the stated waivers (xaihls_lint.vlt)."""

from __future__ import annotations

import subprocess

from xaihls.backends.rtl.params import RTL_DIR, TOP, RtlParams, sources
from xaihls.backends.rtl.sim import tool_env, verilator_root

WAIVERS = RTL_DIR / "xaihls_lint.vlt"


def lint(params: RtlParams | None = None) -> str:
    """Lint the engine (with ``params`` as top-level overrides); returns Verilator's warnings ('' if clean)."""
    cmd = [str(verilator_root() / "bin" / "verilator"), "--lint-only", "-Wall", "--top-module", TOP, str(WAIVERS)]
    if params is not None:
        cmd += [f"-G{k}={v}" for k, v in params.as_dict().items()]
    cmd += [str(p) for p in sources()]
    res = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True)
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("%")]
    if res.returncode and not lines:
        lines = [res.stderr.strip() or f"verilator exited with {res.returncode}"]
    return "\n".join(lines)
