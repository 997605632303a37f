"""The RTL engine on the reference CIFAR-10 net with the PYNQ-Z2 plan: Verilator cycles and yosys resources.

Run: ``python -m benchmarks.rtl [--ig-steps 16] [--no-synth] [--no-sim] [--family xcup]``
(Markdown on stdout, JSON in benchmarks/results/rtl.json; a part skipped keeps its earlier results). Cycles are measured on the simulated RTL (Verilator through
cocotb, DDR = the SystemVerilog model at its default latency, no stalls), results checked bit
for bit against the golden model; resources are yosys synth_xilinx (flattened) of the same parameters, for the
full engine and for the inference-only build (BACKWARD=0).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np

import xaihls
from xaihls.backends.rtl import sim
from xaihls.backends.rtl.cycles import compare, markdown
from xaihls.backends.rtl.params import rtl_params
from xaihls.backends.rtl.project import method_macs
from xaihls.models.zoo import get_zoo_model

RESULTS = Path(__file__).parent / "results"


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = []
        for k in keys:
            v = row[k]
            cells.append(f"{v:,.3f}" if isinstance(v, float) and abs(v) < 100 else f"{v:,.0f}" if isinstance(v, float)
                         else f"{v:,}" if isinstance(v, int) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def simulate(acc, steps: int) -> dict:
    """Verilator: inference, saliency and IG on one image, every bit checked by the testbench;
    the raw cycles (whole runs and the per-phase profile)."""
    plan = acc.plan
    e = plan.engine
    params = rtl_params(plan.program, e)
    x = get_zoo_model("cifar_ref").samples()[0][:1]
    runs = sim.golden_runs(acc, x, steps, (None, "saliency", "integrated_gradients"))
    t0 = time.time()
    sim.build(params, mem_bits=sim.mem_addr_bits(plan.program))
    build_s = time.time() - t0
    t0 = time.time()
    out = sim.simulate(plan.program, params, runs)   # the testbench checks every bit
    sim_s = time.time() - t0
    return {"steps": steps, "run_cycles": [o["cycles"] for o in out], "profiles": [o["profile"] for o in out],
            "simulation_s": sim_s, "run_s": out.run_s, "build_s": build_s, "ddr": out.conditions()}


def evaluate(acc, raw: dict) -> dict:
    """The recorded Verilator cycles against the cost model (re-run after a model change: the
    measurements stay valid as long as the RTL is unchanged)."""
    plan = acc.plan
    e = plan.engine
    steps = raw["steps"]
    mhz = e.clock_mhz
    rows = []
    for name, mname, cycles in zip(["inference", "saliency", f"IG-{steps}"],
                                   ["predict", "saliency", "integrated_gradients"], raw["run_cycles"]):
        model = plan.method_cycles[mname]  # IG with the compiled steps (= --ig-steps)
        macs = method_macs(plan.summary(), mname, steps)
        rows.append({"run": name, "RTL cycles": cycles, "ms @ %g MHz" % mhz: cycles / (mhz * 1e3),
                     "model cycles": model, "RTL / model": cycles / model,
                     "MAC utilisation": macs / (e.tm * e.tn) / cycles, "bit-exact": "yes"})
    detail = compare(plan.program, e, [tuple(p) for p in raw["profiles"][1]])
    layer_names = [layer.name for layer in acc.graph.layers] + ["logits"]

    def conv_utils(direction):
        return [r.macs / (e.tm * e.tn) / r.rtl for r in detail if r.op == "conv" and r.direction == direction
                and acc.graph.layers[r.layer].__class__.__name__ == "Conv2d"]

    fwd = sum(r.rtl for r in detail if r.direction == "forward")
    bwd = sum(r.rtl for r in detail if r.direction == "backward")
    devs = [abs(r.deviation) for r in detail]
    total = sum(raw["run_cycles"])
    summary = {
        "board": plan.board.name, "Tm x Tn": f"{e.tm}x{e.tn}", "clock MHz": mhz,
        **{f"conv-layer MAC utilisation, {d} (min / median / max)":
           f"{min(u):.0%} / {float(np.median(u)):.0%} / {max(u):.0%}" for d in ("forward", "backward")
           for u in [conv_utils(d)]},
        "descriptors within 10% of the cost model": f"{sum(d <= 0.10 for d in devs)} of {len(devs)} "
                                                    f"(largest deviation {max(devs):.1%})",
        "backward / forward (descriptor lists)": round(bwd / fwd, 3),
        "saliency / inference (whole runs)": round(raw["run_cycles"][1] / raw["run_cycles"][0], 3),
        "DDR": (f"SystemVerilog model, latency {raw['ddr']['ddr_latency']} cycles" if "ddr" in raw
                else "cocotbext-axi AxiRam"),
        "simulated cycles": total, "simulation wall s": round(raw["simulation_s"], 1),
        "simulation speed (cycles/s, runs only)": round(total / raw.get("run_s", raw["simulation_s"])),
        "Verilator build s (0 if cached)": round(raw["build_s"], 1),
    }
    return {"runs": rows, "summary": summary, "descriptors": [r.__dict__ for r in detail],
            "descriptor_table": markdown(detail, layer_names)}


SYNTH_DEPTHS = dict(IN_DEPTH=256, OUT_DEPTH=64, W_DEPTH=9, MASK_BITS=1024, INDEX_ENTRIES=256, INDEX_BITS=2,
                    MAX_INPUT_ELEMS=256)
"""Buffer sizes of the synthesized engines (the array varies): yosys maps the 16 x 8 engine of
the CIFAR plan out of memory (more than 22 GB in synth_xilinx's techmap), so resources are
measured on smaller arrays."""


def synthesize_arrays(arrays: list[tuple[int, int]], family: str) -> list[dict]:
    """yosys synth_xilinx of each array, full and inference-only, next to the cost model's estimate."""
    from xaihls.backends.rtl.params import RtlParams
    from xaihls.backends.rtl.synth import extra_dsps, synthesize
    from xaihls.plan.engine import EngineConfig, estimate_resources

    rows = []
    for tm, tn in arrays:
        full = RtlParams(TM=tm, TN=tn, **SYNTH_DEPTHS, BACKWARD=1)
        measured = {}
        for label, p in (("full", full), ("inference-only", full.inference_only())):
            r = synthesize(p, family)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"rtl_yosys_{family}_{tm}x{tn}_{label}_stat.txt").write_text(r.stat_text)
            measured[label] = r.as_dict()
            cfg = EngineConfig(tm, tn, p.IN_DEPTH, p.OUT_DEPTH, p.W_DEPTH, p.MASK_BITS, p.INDEX_ENTRIES, p.INDEX_BITS,
                               100.0, 8, bool(p.BACKWARD))
            est = estimate_resources(cfg).as_dict()
            rows.append({"array": f"{tm}x{tn}", "build": label, "family": family, "LUT": r.lut, "FF": r.ff,
                         "DSP": r.dsp, "DSP expected": tm * tn + extra_dsps(p), "BRAM_18K": r.bram_18k,
                         "estimate LUT / FF / DSP / BRAM": f"{est['LUT']:,} / {est['FF']:,} / {est['DSP']} / "
                                                           f"{est['BRAM_18K']}", "yosys s": round(r.seconds)})
        f, i = measured["full"], measured["inference-only"]
        rows.append({"array": f"{tm}x{tn}", "build": "attribution overhead", "family": family,
                     **{k: f"{f[k] - i[k]:+,} ({(f[k] - i[k]) / i[k]:+.1%})" for k in ("LUT", "FF", "DSP", "BRAM_18K")},
                     "DSP expected": "-", "estimate LUT / FF / DSP / BRAM": "-", "yosys s": "-"})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ig-steps", type=int, default=16)
    ap.add_argument("--no-synth", action="store_true", help="skip the yosys runs (keep earlier results)")
    ap.add_argument("--no-sim", action="store_true", help="skip the Verilator runs (keep earlier results)")
    ap.add_argument("--family", default=None, help="yosys synth_xilinx family (default: the board's)")
    ap.add_argument("--arrays", default="4x2,8x4", help="Tm x Tn of the synthesized engines (default 4x2,8x4)")
    args = ap.parse_args(argv)

    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(), board="pynq-z2",
                         methods=("saliency", "integrated_gradients"), ig_steps=args.ig_steps)
    e = acc.plan.engine
    path = RESULTS / "rtl.json"
    new = {}
    if not args.no_sim:
        new["verilator"] = {"date": date.today().isoformat(), **simulate(acc, args.ig_steps)}
    if not args.no_synth:
        family = args.family or acc.plan.board.yosys_family
        arrays = [tuple(int(v) for v in a.split("x")) for a in args.arrays.split(",")]
        new["synthesis"] = {family: {"date": date.today().isoformat(), "rows": synthesize_arrays(arrays, family)}}
    # read what is there only now: a run of the other part may have finished meanwhile
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update({k: v for k, v in new.items() if k != "synthesis"})
    results.setdefault("synthesis", {}).update(new.get("synthesis", {}))
    results["params"] = rtl_params(acc.plan.program, e).as_dict()
    if "verilator" in results:  # measurements against the current cost model
        results["simulation"] = {"date": results["verilator"]["date"], **evaluate(acc, results["verilator"])}

    print(f"# RTL engine: cifar_ref on {acc.plan.board.name} ({e.tm}x{e.tn})\n")
    if "simulation" in results:
        s = results["simulation"]
        print(f"Verilator ({s['date']}):\n")
        print(_table(s["runs"]) + "\n")
        print(_table([{"figure": k, "value": v} for k, v in s["summary"].items()]) + "\n")
    for family, synth in results.get("synthesis", {}).items():
        print(f"yosys synth_xilinx -family {family} ({synth['date']}):\n")
        print(_table(synth["rows"]) + "\n")
    if "simulation" in results:
        print("## Per descriptor (saliency run): Verilator cycles vs the cost model\n")
        print(results["simulation"]["descriptor_table"])
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
