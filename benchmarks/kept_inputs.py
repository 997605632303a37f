"""Inputs kept across m-tiles (contract in_keep) on the Engine v2 RTL (Verilator): jobs of one row
tile that load their input once for all their m-tiles, against loading it again for every m-tile.

Run: ``python -m benchmarks.kept_inputs [--models ds_cnn mobilenet_v2_tiny resnet8 cifar_ref]
[--boards pynq-z2]``, under the shared heavy-tool lock. For each zoo model (random weights, one
calibration image) and board: the planner's engine and Program (docs/engine_v2.md, "Inputs kept
across m-tiles"), and beside it the same engine's Program with ``lowering.KEEP_INPUTS`` off, for
predict and saliency (benchmarks.switch: one Verilator build, bit-exact checks, the cycle model per
run and per job). Results in benchmarks/results/kept_inputs.json.
"""

from __future__ import annotations

from benchmarks import switch

RUNS = (None, "saliency")


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "KEEP_INPUTS", "kept", "loaded every m-tile", RUNS,
                          lambda d, layer: {"kept": bool(d.in_keep)})


def markdown(result: dict) -> str:
    return switch.marked_table(result, "kept", "inputs", "kept jobs")


def main() -> None:
    switch.main(__doc__, ["ds_cnn", "mobilenet_v2_tiny", "resnet8", "cifar_ref"], measure, markdown,
                "kept_inputs.json")


if __name__ == "__main__":
    main()
