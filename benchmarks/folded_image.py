"""The folded image (a thin first convolution's taps in the channels of the image's words) on the
Engine v2 RTL (Verilator), against the image as it is.

Run: ``python -m benchmarks.folded_image [--models cifar_ref resnet8 ds_cnn] [--boards pynq-z2 ultra96-v2]``,
under the shared heavy-tool lock. For each zoo model (random weights, one calibration image) and
board: the planner's engine and Program (the host writes the image folded where the first
convolution then takes fewer passes: docs/engine_v2.md, "The folded image"), and beside it the
same engine's Program with ``lowering.FOLD_IMAGE`` off, for predict and saliency
(benchmarks.switch: one Verilator build, bit-exact checks, the cycle model per run and per job).
Results in benchmarks/results/folded_image.json.
"""

from __future__ import annotations

from benchmarks import switch
from xaihls.frontend.ir import Conv2d

RUNS = (None, "saliency")


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "FOLD_IMAGE", "folded", "as it is", RUNS, lambda d, layer: {
        "first": d.layer == 0 and d.iky > 0 and isinstance(layer, Conv2d), "passes": d.passes})


def markdown(result: dict) -> str:
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']})", "",
             "| image | predict | saliency | worst run vs model | first conv forward: passes | cycles | "
             "utilisation | bit-exact |", "|---|---|---|---|---|---|---|---|"]
    for kind, p in result["programs"].items():
        runs, worst = switch.runs_of(p)
        first = next(j for j in p["jobs"] if j["first"])
        lines.append(f"| {kind} | {runs['predict']['cycles']:,} | {runs['saliency']['cycles']:,} | {worst:+.2%} | "
                     f"{first['passes']} | {first['rtl']:,} | {first['utilisation']:.1%} | "
                     f"{'yes' if all(r['bit_exact'] for r in p['runs']) else 'NO'} |")
    worst = switch.worst_job(result)
    lines += ["", f"Every job of both saliency runs within {worst:.1%} of the cycle model."]
    return "\n".join(lines)


def main() -> None:
    switch.main(__doc__, ["cifar_ref", "resnet8", "ds_cnn"], measure, markdown, "folded_image.json")


if __name__ == "__main__":
    main()
