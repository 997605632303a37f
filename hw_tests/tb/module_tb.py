"""Build and run one RTL module's cocotb testbench on Verilator (hw_tests/tb/<module>/test_<module>.py).

Each testbench file holds the cocotb tests (run inside the simulator: they import only cocotb
and cocotbext-axi) and a pytest function that calls ``run`` here with the module's sources and
parameters. Builds are cached like the engine's (``~/.cache/xaihls/verilator/tb``), keyed by
the parameters and the sources.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

from xaihls.backends.rtl.sim import SIM_DIR, _patched_env, cache_root, cocotb_libs, tool_env
from xaihls.backends.rtl.v2.params import RTL_DIR as ENGINE_RTL_DIR

ENGINE_DIR = ENGINE_RTL_DIR  # Engine v2's FIFO, movers and AXI4-Lite block
ENGINE_DIR_ENV = "XAIHLS_TB_ENGINE_DIR"
RTL_DIR = SIM_DIR.parent  # the DDR model (sim/xaihls_sim_axi_ram.sv), shared by every engine simulation
RTL_DIR_ENV = "XAIHLS_TB_RTL_DIR"
BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0", "-CFLAGS", "-O0"]


def engine_dir() -> Path:
    """The folder of the engine modules under test: ``$XAIHLS_TB_ENGINE_DIR`` when set (a copy
    with a deliberate breakage, benchmarks/tb_mutations.py), else the package's rtl_v2/."""
    override = os.environ.get(ENGINE_DIR_ENV)
    return Path(override) if override else ENGINE_DIR


def rtl_dir() -> Path:
    """The folder holding the DDR model (``sim/xaihls_sim_axi_ram.sv``): ``$XAIHLS_TB_RTL_DIR``
    when set (a mutated copy), else the package's rtl/."""
    override = os.environ.get(RTL_DIR_ENV)
    return Path(override) if override else RTL_DIR


def _runner():
    """cocotb's own Verilator runner (every signal public: a module's testbench may look inside)."""
    from cocotb_tools.runner import Verilator

    return Verilator()


def module_parameters(path: Path) -> set[str]:
    """The parameter names a module's source declares (``parameter int NAME``)."""
    import re

    return set(re.findall(r"parameter\s+(?:int\s+)?(?:unsigned\s+)?(\w+)\s*=", path.read_text()))


def build(toplevel: str, sources: list[Path], parameters: dict) -> Path:
    h = hashlib.sha256(json.dumps([toplevel, parameters, BUILD_ARGS, "public-flat-rw"], sort_keys=True).encode())
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    import verilator

    h.update(getattr(verilator, "__version__", "").encode() + cocotb_libs().encode())
    out = cache_root() / "tb" / f"{toplevel}-{h.hexdigest()[:12]}"
    done = out / "build.ok"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            with _patched_env(tool_env()):
                try:
                    _runner().build(sources=[str(p) for p in sources], hdl_toplevel=toplevel, parameters=parameters,
                                    build_dir=out, build_args=BUILD_ARGS, log_file=out / "build.log")
                except Exception as exc:  # noqa: BLE001 - Verilator's message is in the log
                    raise AssertionError(f"Verilator could not build {toplevel} {parameters}: {exc}; "
                                         f"see {out / 'build.log'}") from None
            done.write_text("ok\n")
    return out


def run(test_file: str, toplevel: str, sources: list[Path], parameters: dict, work_dir: Path,
        testcase: str | None = None, plusargs: list[str] | None = None, extra_env: dict | None = None) -> None:
    """Build ``toplevel`` with ``parameters`` and run the cocotb tests of ``test_file`` (all, or
    ``testcase``); an AssertionError naming the log if any fails."""
    from cocotb_tools.check_results import get_results

    build_dir = build(toplevel, sources, parameters)
    test_path = Path(test_file).resolve()
    env = tool_env()
    env["XAIHLS_TB_PARAMETERS"] = json.dumps(parameters)
    env.update({k: str(v) for k, v in (extra_env or {}).items()})
    # the runner hands its own sys.path to the simulator: the test's folder and tb_util's, for the call
    folders = [str(test_path.parent), str(Path(__file__).resolve().parent)]
    sys.path[:0] = folders
    log = work_dir / "sim.log"
    results = work_dir.resolve() / "results.xml"
    try:
        with _patched_env(tool_env()):
            try:
                _runner().test(test_module=test_path.stem, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                               build_dir=build_dir, test_dir=work_dir, testcase=testcase, extra_env=env,
                               plusargs=plusargs or [], log_file=log, results_xml=str(results))
            except (SystemExit, RuntimeError):  # a failed test or a simulator stopped by an $error
                pass
    finally:
        for folder in folders:
            sys.path.remove(folder)
    try:
        total, failed = get_results(results)
    except (RuntimeError, FileNotFoundError):
        raise AssertionError(f"{toplevel}: the simulation left no results; see {log}") from None
    if failed or not total:
        bad = _failed_names(results)
        raise AssertionError(f"{toplevel} {parameters}: {failed} of {total} cocotb tests failed ({', '.join(bad)}); "
                             f"see {log}")


def _failed_names(results: Path) -> list[str]:
    import xml.etree.ElementTree as ET

    names = []
    for case in ET.parse(results).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            names.append(case.get("name", "?"))
    return names


def with_data_widths(source: Path, sets: list[dict], widths: tuple[int, ...] = (128, 256, 512)) -> list[dict]:
    """``sets``, plus the first set at wider AXI data widths once the module takes a DATA_WIDTH
    parameter (the board families' 128- and 512-bit ports, and 256 bits, where a 4 KiB page is
    128 beats: the width at which the movers' burst cut once failed)."""
    if "DATA_WIDTH" not in module_parameters(source):
        return sets
    return sets + [{**sets[0], "DATA_WIDTH": w} for w in widths]
