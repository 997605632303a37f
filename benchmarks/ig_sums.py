"""What the integrated-gradients sums cost on a large image: MLPerf Tiny's Visual Wake Words network
(the zoo's ``vww_mobilenet``: MobileNetV1, width 0.25, 3 x 96 x 96, two classes; random weights)
planned for each bundled board, compiled without and with integrated gradients.

Run: ``python -m benchmarks.ig_sums [--rtl]``. For each board and method set: the array, BRAM_18K (all,
and the accumulators of lanes 0..E-1 that hold the IG sums above them), LUT, and the cycle model's
predict, saliency and integrated-gradients cycles, or the planner's refusal in one line. ``--rtl``: also
the PYNQ-Z2 engine with integrated gradients on Verilator (one calibration image; predict, saliency and
integrated gradients of 32 steps against golden, cycles against the model; take the heavy-tool lock).
Results in benchmarks/results/ig_sums.json.
"""

from __future__ import annotations

import argparse
import json
import warnings
from datetime import date

import torch
import torch.nn as nn

import xaihls
from benchmarks.switch import RESULTS
from xaihls.errors import XaiHlsError
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.resources import IG_LANES

BOARDS = ("pynq-z2", "ultra96-v2", "zcu104")
METHOD_SETS = (("saliency", "guided_backprop"), ("saliency", "guided_backprop", "integrated_gradients"))


def vww_mobilenet() -> tuple[nn.Module, torch.Tensor]:
    """The zoo's ``vww_mobilenet`` (random weights) and 8 of its calibration images."""
    entry = get_zoo_model("vww_mobilenet")
    return entry.build(), entry.calibration()[:8]


def measure(board: str, methods: tuple[str, ...]) -> dict:
    model, calibration = vww_mobilenet()
    row = {"board": board, "methods": list(methods)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            acc = xaihls.compile(model, (3, 96, 96), calibration=calibration, board=board, methods=methods,
                                 backends=("golden", "program"))
            p = acc.plan
    except XaiHlsError as exc:
        return {**row, "refused": str(exc)}
    r, e = p.resources, p.engine
    return {**row, "array": f"{e.tm}x{e.tn}", "ig_elems": e.input_elems, "bram_18k": r.bram_18k,
            "bram_lanes_0_e": r.breakdown["BRAM_18K by memory"].get(IG_LANES, 0),
            "lut": r.lut, "predict_cycles": p.method_cycles["predict"], "saliency_cycles": p.method_cycles["saliency"],
            "ig_cycles": p.method_cycles["integrated_gradients"] if "integrated_gradients" in methods else None}


def on_rtl() -> dict:
    """The PYNQ-Z2 engine compiled with integrated gradients, on Verilator: predict, saliency and integrated
    gradients (32 steps)."""
    model, calibration = vww_mobilenet()
    acc = xaihls.compile(model, (3, 96, 96), calibration=calibration, board="pynq-z2", methods=METHOD_SETS[1],
                         backends=("golden", "rtl"))
    x, out = calibration[:1], {"array": f"{acc.plan.engine.tm}x{acc.plan.engine.tn}"}
    for method in (None, "saliency", "integrated_gradients"):
        g, r = acc.run(x, method), acc.run(x, method, backend="rtl")
        name = method or "predict"
        out[name] = {"bit_exact": torch.equal(g.logits, r.logits) and (method is None or torch.equal(
            g.attribution, r.attribution)), "cycles": r.cycles[0], "model": acc.plan.method_cycles[name]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", action="store_true", help="also run the PYNQ-Z2 engine on Verilator")
    args = ap.parse_args()
    rows = [measure(board, methods) for board in BOARDS for methods in METHOD_SETS]
    rtl = on_rtl() if args.rtl else None
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ig_sums.json").write_text(json.dumps({"date": str(date.today()), "rows": rows, "rtl": rtl},
                                                     indent=2) + "\n")
    print("| board | integrated gradients | array | BRAM_18K (IG sums' lanes) | LUT | predict | saliency | IG-32 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ig = "with" if "integrated_gradients" in r["methods"] else "without"
        if "refused" in r:
            print(f"| {r['board']} | {ig} | refused: {r['refused'][:150]} | | | | |")
        else:
            igc = f"{r['ig_cycles']:,}" if r.get("ig_cycles") else ""
            print(f"| {r['board']} | {ig} | {r['array']} | {r['bram_18k']} ({r['bram_lanes_0_e']}) | {r['lut']:,} | "
                  f"{r['predict_cycles']:,} | {r['saliency_cycles']:,} | {igc} |")
    for name, r in (rtl or {}).items():
        if name == "array":
            continue
        print(f"Verilator, pynq-z2 {rtl['array']} with integrated gradients, {name}: "
              f"{'bit-exact' if r['bit_exact'] else 'DIFFERS'}, {r['cycles']:,} cycles against the model's "
              f"{r['model']:,} ({r['model'] / r['cycles'] - 1:+.1%})")


if __name__ == "__main__":
    main()
