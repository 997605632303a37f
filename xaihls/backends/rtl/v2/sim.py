"""Verilator simulation of the Engine v2 RTL through cocotb's Python runner, and its executor.

``run_rtl_v2`` mirrors ``xaihls.sim.interpreter.run_batch``: same arguments, same results, plus
the cycles of each run. Each parameter set is compiled once (cached, keyed by the parameters and
the sources) with xaihls.backends.rtl.sim.build.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from xaihls.backends.rtl import sim as v1sim
from xaihls.backends.rtl.v2.params import TOP, RtlV2Params, rtl_params, sources
from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.methods import METHOD_CODES, PREDICT_CODE, ig_constants
from xaihls.plan.contract import MAX_IG_STEPS
from xaihls.plan.lowering import from_blocked, to_blocked

TB_MODULE = "tb"
TB_DIR = Path(__file__).resolve().parent
DEFAULT_DDR_BASE = 0x1_0000_0000
PROFILE_KINDS = {1: "header", 2: "copy", 3: "forward", 4: "argmax", 5: "backward", 6: "post", 7: "ig table",
                 8: "ig point", 9: "ig accumulate", 10: "logits save/restore"}


def build(params: RtlV2Params, waves: bool = False) -> Path:
    """Compile the v2 xaihls_top with ``params`` (cached); returns the build folder."""
    return v1sim.build(params, waves, files=sources())


def build_debug(params: RtlV2Params) -> Path:
    """A build whose every signal the testbench can read (slower: for localizing a hang)."""
    from cocotb_tools.runner import Verilator

    out = v1sim.cache_root() / ("debug-" + v1sim.build_key(params, False, None, sources()))
    if (out / "build.ok").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with v1sim._patched_env(v1sim.tool_env()):
        Verilator().build(sources=[str(p) for p in sources()], hdl_toplevel=TOP, parameters=params.as_dict(),
                          build_dir=out, build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0",
                                                     "--x-initial", "0", "-O3", "-CFLAGS", "-O1"],
                          log_file=out / "build.log")
    (out / "build.ok").write_text("ok\n")
    return out


def simulate(program, params: RtlV2Params, runs: list[dict], *, stalls: float = 0.0, seed: int = 1,
             waves: bool = False, ddr_base: int = DEFAULT_DDR_BASE, work_dir: str | Path | None = None,
             dump_ddr: bool = False, timeout_cycles: int = 20_000_000, debug: bool = False) -> list[dict]:
    """Run ``runs`` on one simulator process. A run: ``image`` and ``baseline`` (C, H, W codes),
    ``ig_table`` (int32 words), ``method`` (code), ``target`` (-1: predicted), ``steps``.
    Returns per run: status, cycles, profile, logits, result words and the attribution (C, H, W)."""
    build_dir = build_debug(params) if debug else build(params, waves)
    h = program.header
    tn = program.shape.tn
    mem_size = 1 << max(16, (h["total_bytes"] + 4095).bit_length())
    tmp = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="xaihls_rtl2_"))
    tmp.mkdir(parents=True, exist_ok=True)
    job_path = tmp / "job.json"
    arrays = {"program": np.frombuffer(program.image, dtype=np.uint8)}
    meta = []
    for i, run in enumerate(runs):
        arrays[f"image{i}"] = to_blocked(np.asarray(run["image"]), tn)
        arrays[f"baseline{i}"] = to_blocked(np.asarray(run["baseline"]), tn)
        arrays[f"ig_table{i}"] = np.asarray(run["ig_table"], dtype=np.int64)
        meta.append({k: int(run[k]) for k in ("method", "target", "steps")})
    header = {k: int(h[k]) for k in ("image_addr", "baseline_addr", "ig_table_addr", "logits_addr", "result_addr",
                                     "attr_addr", "classes", "input_elems", "total_bytes")}
    job = {"header": header, "mem_size": mem_size, "ddr_base": ddr_base, "stalls": stalls, "seed": seed,
           "runs": meta, "dump_ddr": dump_ddr, "timeout_cycles": timeout_cycles, "debug": debug}
    job_path.write_text(json.dumps(job))
    np.savez(job_path.with_suffix(".npz"), **arrays)
    out_path = job_path.with_suffix(".out.npz")
    out_path.unlink(missing_ok=True)
    env = v1sim.tool_env()
    env["XAIHLS_RTL_JOB"] = str(job_path)
    sys.path.insert(0, str(TB_DIR))
    try:
        with v1sim._patched_env(v1sim.tool_env()):
            runner = v1sim._runner()
            try:
                runner.test(test_module=TB_MODULE, hdl_toplevel=TOP, hdl_toplevel_lang="verilog", build_dir=build_dir,
                            test_dir=tmp, extra_env=env, waves=waves, log_file=tmp / "sim.log")
            except SystemExit:
                pass
    finally:
        sys.path.remove(str(TB_DIR))
    if not out_path.exists():
        raise RuntimeError(f"the RTL simulation produced no results; see {tmp / 'sim.log'}")
    with np.load(out_path) as npz:
        res = {k: npz[k] for k in npz.files}
    out = []
    c, hh, ww = h["in_c"], h["in_h"], h["in_w"]
    for i in range(int(res["runs_done"][0])):
        r = {"status": int(res[f"status{i}"][0]), "cycles": int(res[f"cycles{i}"][0]),
             "profile": [(PROFILE_KINDS.get(int(k), str(k)), int(v)) for k, v in res[f"profile{i}"]],
             "logits": res[f"logits{i}"], "result": res[f"result{i}"],
             "attribution": from_blocked(res[f"attribution{i}"], c, hh, ww, tn)}
        if f"ddr{i}" in res:
            r["ddr"] = res[f"ddr{i}"]
        out.append(r)
    if work_dir is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ig_table(steps: int, rule: str, width: int = 16) -> np.ndarray:
    return np.asarray(ig_constants(steps, rule, width).table(), dtype=np.int64)


def run_rtl_v2(program, engine, x_q: torch.Tensor, method: str | None, target: torch.Tensor | None, steps: int,
               rule: str, baseline_q: torch.Tensor | None, stalls: bool = False, params: RtlV2Params | None = None):
    """Each image of a quantized batch on the simulated engine: int64 tensors (logits, target,
    attribution or None), each run's saturation counters and cycles."""
    code = PREDICT_CODE if method is None else METHOD_CODES[method]
    needed = rtl_params(program, engine)
    if params is None:
        params = needed
    elif params.covering(needed) != params:
        raise XaiHlsError(f"RTL parameters {params} do not cover this Program's needs {needed}")
    table = ig_table(steps, rule, program.header["data_width"])
    runs = []
    for k in range(x_q.shape[0]):
        img = x_q[k].numpy()
        base = np.zeros_like(img) if baseline_q is None else baseline_q[k].numpy()
        runs.append({"image": img, "baseline": base, "ig_table": table, "method": code,
                     "target": -1 if target is None else int(target[k]), "steps": steps})
    out = simulate(program, params, runs, stalls=0.3 if stalls else 0.0)
    for r in out:
        if r["status"]:
            raise XaiHlsError(f"the RTL engine stopped with status {r['status']:#x} (bit 0 bus error, bit 1 not a "
                              "version-2 Program for this engine, bit 2 arguments or Program do not fit this build)")
    logits = torch.from_numpy(np.stack([r["logits"] for r in out]).astype(np.int64))
    targets = torch.tensor([int(r["result"][1]) for r in out], dtype=torch.int64)
    attrs = None
    if code != PREDICT_CODE:
        attrs = torch.from_numpy(np.stack([r["attribution"] for r in out]).astype(np.int64))
    counters = [tuple(int(v) for v in r["result"][2:5]) for r in out]
    return logits, targets, attrs, counters, [r["cycles"] for r in out]


class RtlV2Executor:
    """The Engine v2 SystemVerilog engine on Verilator. ``plan``: any object with ``.program``
    (ProgramV2) and ``.engine`` (EngineV2)."""

    capabilities = Capabilities("rtl", data_widths=(16,), array_sizes=(4, 8, 16, 32, 64, 128), square_pools=False,
                                max_pool_side=15, max_output_stride=15, max_bias_shift=63, max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        logits, targets, attrs, counters, cycles = run_rtl_v2(plan.program, plan.engine, args.x_q, args.method,
                                                              args.target, args.steps, args.rule, args.baseline_q)
        return engine_result(qg, args, logits, targets, attrs, counters, cycles)


EXECUTOR = RtlV2Executor()
