"""Diagonal jobs' weights one a lane (w_diag) on the Engine v2 RTL (Verilator): a depthwise convolution's
taps, a pool's reciprocals and the identities streamed as Tm weights a pass instead of Tm x Tn tiles that are
zero but on their diagonal.

Run: ``python -m benchmarks.weights_a_lane [--models ds_cnn mobilenet_v2_tiny vww_mobilenet] [--boards pynq-z2]``,
under the shared heavy-tool lock. For each zoo model (random or bundled weights, one calibration image) and
board: the planner's engine and Program (docs/engine_v2.md, "Diagonal weights one a lane"), and beside it the
same engine's Program with ``lowering.WEIGHTS_A_LANE`` off, for predict and saliency (benchmarks.switch: one
Verilator build, bit-exact checks, the cycle model per run and per job); and the DDR bytes each Program takes.
Results in benchmarks/results/weights_a_lane.json.
"""

from __future__ import annotations

from benchmarks import switch

RUNS = (None, "saliency")


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "WEIGHTS_A_LANE", "one a lane", "Tm x Tn tiles", RUNS,
                          lambda d, layer: {"w_diag": bool(d.w_diag)})


def markdown(result: dict) -> str:
    ddr = ", ".join(f"{kind} {p['ddr_bytes']:,}" for kind, p in result["programs"].items())
    return switch.marked_table(result, "w_diag", "diagonal weights", "the w_diag jobs") + f" DDR bytes: {ddr}."


def main() -> None:
    switch.main(__doc__, ["ds_cnn", "mobilenet_v2_tiny", "vww_mobilenet"], measure, markdown, "weights_a_lane.json")


if __name__ == "__main__":
    main()
