"""The Program's DDR with and without the weights no job reads (compiler only).

Run: ``python -m benchmarks.ddr_image [--models ds_cnn vww_mobilenet] [--board pynq-z2]``. Each zoo model
(random or bundled weights as the zoo gives them, every method compiled) planned for the board twice: with
``lowering.PACK_WEIGHTS`` on (the planner's Program: the weight blobs of the jobs the tiler did not keep left
out, docs/engine_v2.md, "Data in DDR") and off (every blob the lowering placed). Per model: the engine, the
initial DDR image (header, descriptors, weights: what the host writes once) and the whole DDR the Program
uses, both ways, and the DDR offsets' width the RTL is built with (OFF_BITS). Results in
benchmarks/results/ddr_image.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date

import xaihls
from benchmarks.switch import RESULTS
from xaihls.models.zoo import ZOO, get_zoo_model
from xaihls.plan import lowering
from xaihls.plan.boards import load_board
from xaihls.plan.planner_v2 import plan_v2


def measure(model: str, board: str) -> dict:
    entry = get_zoo_model(model)
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(), backends=("golden",)).qgraph
    out = {"model": model, "board": board}
    for packed in (True, False):
        lowering.PACK_WEIGHTS = packed
        try:
            p = plan_v2(qg, load_board(board))
        finally:
            lowering.PACK_WEIGHTS = True
        e = p.engine
        out["packed" if packed else "whole"] = {
            "engine": f"{e.tm}x{e.tn}", "batch": p.program.batch, "image_bytes": len(p.program.image),
            "total_bytes": p.program.total_bytes, "off_bits": e.off_bits, "lut": p.resources.lut,
            "cycles": dict(p.method_cycles)}
    return out


def markdown(results: list[dict]) -> str:
    lines = ["| model | engine | initial image, whole → packed | DDR, whole → packed | OFF_BITS | LUT |",
             "|---|---|---|---|---|---|"]
    for r in results:
        w, p = r["whole"], r["packed"]
        lines.append(f"| {r['model']} | {p['engine']} (batch {p['batch']}) | {w['image_bytes']:,} → "
                     f"{p['image_bytes']:,} ({p['image_bytes'] / w['image_bytes']:.2f}×) | {w['total_bytes']:,} → "
                     f"{p['total_bytes']:,} ({p['total_bytes'] / w['total_bytes']:.2f}×) | {w['off_bits']} → "
                     f"{p['off_bits']} | {w['lut']:,} → {p['lut']:,} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(ZOO))
    ap.add_argument("--board", default="pynq-z2")
    args = ap.parse_args()
    results = [measure(m, args.board) for m in args.models]
    for r in results:  # the same engine and cycles either way: only addresses moved
        same = all(r["packed"][k] == r["whole"][k] for k in ("engine", "batch", "cycles"))
        r["same_engine_and_cycles"] = same
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ddr_image.json").write_text(json.dumps({"date": str(date.today()), "results": results}, indent=2)
                                            + "\n")
    print(markdown(results))
    print("same engine and cycles either way:", all(r["same_engine_and_cycles"] for r in results))


if __name__ == "__main__":
    main()
