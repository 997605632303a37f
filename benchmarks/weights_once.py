"""One pass of weights kept for every pass (w_once) on the Engine v2 RTL (Verilator): pool jobs that
keep their weights in the array against a copy of the weights a pass.

Run: ``python -m benchmarks.weights_once [--models ds_cnn mobilenet_v2_tiny resnet8] [--boards pynq-z2]``,
under the shared heavy-tool lock. For each zoo model (random weights, one calibration image) and
board: the planner's engine and Program (every diagonal job whose passes share one weight matrix
keeps it: docs/engine_v2.md, "Weights kept across passes"), and beside it the same engine's Program
with ``lowering.WEIGHTS_ONCE`` off, for predict, saliency and Grad-CAM (benchmarks.switch: one
Verilator build, bit-exact checks, the cycle model per run and per job). Also the weight-buffer
rows each Program needs (``lowering.buffer_needs``), which the planner sizes the engine by.
Results in benchmarks/results/weights_once.json.
"""

from __future__ import annotations

from benchmarks import switch
from xaihls.frontend.ir import AvgPool2d, MaxPool2d

RUNS = (None, "saliency", "grad_cam")
# ds_cnn's last conv map (25 x 5) does not upsample to its 49 x 10 input by whole factors: the
# engine refuses Grad-CAM there
NO_GRAD_CAM = ("ds_cnn",)


def measure(model: str, board: str) -> dict:
    runs = RUNS[:2] if model in NO_GRAD_CAM else RUNS
    return switch.measure(model, board, "WEIGHTS_ONCE", "once", "a copy a pass", runs, lambda d, layer: {
        "pool": isinstance(layer, (AvgPool2d, MaxPool2d)), "w_once": bool(d.w_once)})


def markdown(result: dict) -> str:
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']})", "",
             "| weights | predict | saliency | grad_cam | worst run vs model | pool jobs (saliency run) | "
             "weight-buffer rows | bit-exact |", "|---|---|---|---|---|---|---|---|"]
    for kind, p in result["programs"].items():
        runs, worst = switch.runs_of(p)
        pools = sum(j["rtl"] for j in p["jobs"] if j["pool"])
        cam = f"{runs['grad_cam']['cycles']:,}" if "grad_cam" in runs else "refused"
        lines.append(f"| {kind} | {runs['predict']['cycles']:,} | {runs['saliency']['cycles']:,} | "
                     f"{cam} | {worst:+.1%} | {pools:,} | {p['weight_rows']:,} | "
                     f"{'yes' if all(r['bit_exact'] for r in p['runs']) else 'NO'} |")
    worst = switch.worst_job(result)
    once = [j for j in result["programs"]["once"]["jobs"] if j["w_once"]]
    lines += ["", f"w_once jobs: {len(once)}; every job within {worst:.1%} of the cycle model."]
    return "\n".join(lines)


def main() -> None:
    switch.main(__doc__, ["ds_cnn", "mobilenet_v2_tiny", "resnet8"], measure, markdown, "weights_once.json")


if __name__ == "__main__":
    main()
