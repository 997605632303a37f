"""How fast the RTL simulation runs: simulated cycles per second of wall time, build time apart.

Run: ``python -m benchmarks.sim_speed [--nets cifar_ref,digits] [--ig-steps 16] [--ddr-latency N]
[--axiram]`` (Markdown on stdout, JSON in benchmarks/results/sim_speed.json). Under the heavy lock
on a shared machine: ``flock /tmp/xaihls-heavy.lock python -m benchmarks.sim_speed``.

Each net runs one image: predict, saliency and integrated gradients (cifar_ref at the pynq-z2
plan, 16 x 8) or predict and every method (digits at 4 x 2), in one simulator process, with
the testbench comparing every bit with the golden model. "cycles/s" divides the simulated
cycles of the runs (start to done) by their wall time; the simulator's start-up (about a
second: Python, cocotb, the DDR image) and the Verilator build are stated apart. The CPU
time of the simulator process is recorded too: a busy machine disturbs it less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

from dataclasses import replace

import xaihls
from xaihls.backends.rtl import sim
from xaihls.backends.rtl.cycles import compare
from xaihls.backends.rtl.params import rtl_params
from xaihls.backends.rtl.project import model_cycles
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model

RESULTS = Path(__file__).parent / "results"
CASES = {  # net: (board or tiling, methods)
    "cifar_ref": ("pynq-z2", (None, "saliency", "integrated_gradients")),
    "digits": ((4, 2), (None, *METHODS)),
}


def measure(net: str, ig_steps: int, memory: str, ddr_latency: int | None) -> dict:
    where, methods = CASES[net]
    entry = get_zoo_model(net)
    kw = {"board": where} if isinstance(where, str) else {"tiling": where}
    compiled = [m for m in methods if m]
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(), methods=compiled,
                         ig_steps=ig_steps, **kw)
    e = acc.plan.engine
    params = rtl_params(acc.plan.program, e)
    x = entry.samples()[0][:1]
    runs = sim.golden_runs(acc, x, ig_steps, methods)
    t0 = time.perf_counter()
    sim.build(params, mem_bits=sim.mem_addr_bits(acc.plan.program), memory=memory)
    build_s = time.perf_counter() - t0
    out = sim.simulate(acc.plan.program, params, runs, memory=memory, ddr_latency=ddr_latency)  # checks every bit
    # the cost model at the same DDR latency: every descriptor of the first attribution run, whole runs
    # (AxiRam answers like the SystemVerilog DDR at latency 1: 17,791 / 48,186 cycles against
    # 17,779 / 48,159 for digits 4 x 2 predict / gradient)
    engine = replace(e, ddr_latency=out.ddr_latency or 1)
    first = next(o for r, o in zip(runs, out) if r["name"] != "predict")
    devs = [abs(r.deviation) for r in compare(acc.plan.program, engine, first["profile"])]
    whole = [o["cycles"] / model_cycles(acc.plan.program, engine, r["name"], ig_steps) - 1 for r, o in zip(runs, out)]
    return {
        "net": net, "tiling": f"{e.tm}x{e.tn}", "memory": out.conditions()["memory"], "ddr_latency": out.ddr_latency,
        "runs": [{"method": r["name"], "cycles": o["cycles"], "run_s": round(o["run_s"], 3),
                  "cycles_per_second": round(o["cycles"] / o["run_s"])} for r, o in zip(runs, out)],
        "cycles": out.cycles, "run_s": round(out.run_s, 2), "cycles_per_second": round(out.cycles_per_second),
        "process_s": round(out.process_s, 2), "process_cpu_s": round(out.process_cpu_s, 2),
        "build_s": round(build_s, 1), "bit_exact": True,
        "model": {"descriptors": len(devs), "largest_descriptor_deviation": round(max(devs), 4),
                  "whole_run_deviations": [round(w, 4) for w in whole]},
    }


def _markdown(rows: list[dict]) -> str:
    out = ["| net | Tm x Tn | DDR | run | cycles | wall s | cycles/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ddr = f"SV, latency {r['ddr_latency']}" if r["ddr_latency"] else "AxiRam"
        for run in r["runs"]:
            out.append(f"| {r['net']} | {r['tiling']} | {ddr} | {run['method']} | {run['cycles']:,} | "
                       f"{run['run_s']:.2f} | {run['cycles_per_second']:,} |")
        out.append(f"| {r['net']} | {r['tiling']} | {ddr} | **all** | {r['cycles']:,} | {r['run_s']:.2f} | "
                   f"**{r['cycles_per_second']:,}** |")
    out.append("")
    out.append("| net | simulator process s (CPU s) | Verilator build s (0: cached) | descriptors: largest "
               "deviation from the model | whole runs vs model |")
    out.append("|---|---|---|---|---|")
    for r in rows:
        m = r["model"]
        out.append(f"| {r['net']} | {r['process_s']} ({r['process_cpu_s']}) | {r['build_s']} | "
                   f"{m['largest_descriptor_deviation']:.1%} of {m['descriptors']} | "
                   + ", ".join(f"{w:+.1%}" for w in m["whole_run_deviations"]) + " |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="cifar_ref,digits")
    ap.add_argument("--ig-steps", type=int, default=16)
    ap.add_argument("--ddr-latency", type=int, default=None)
    ap.add_argument("--axiram", action="store_true", help="cocotbext-axi's AxiRam as the DDR (protocol-test mode)")
    args = ap.parse_args(argv)
    rows = [measure(net, args.ig_steps, "axiram" if args.axiram else "sv", args.ddr_latency)
            for net in args.nets.split(",")]
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"# RTL simulation speed ({date.today().isoformat()}, {machine}, load {os.getloadavg()[0]:.1f})\n")
    print(_markdown(rows))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "sim_speed.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    key = "axiram" if args.axiram else f"sv-latency-{rows[0]['ddr_latency']}"
    results[key] = {"date": date.today().isoformat(), "machine": machine, "rows": rows}
    path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
