"""Depthwise convolutions on the Engine v2 RTL (Verilator): LANES jobs against plain diagonal jobs.

Run: ``python -m benchmarks.depthwise [--models mobilenet_v2_tiny ds_cnn] [--boards pynq-z2]``,
under the shared heavy-tool lock. For each zoo model (random weights, one calibration image) and
board: the planner's engine and Program (the tiler keeps, job by job, a depthwise conv's LANES job
where the cycle model finds it cheaper: docs/engine_v2.md, "Depthwise convolutions"), and beside
it the same engine's Program with ``lowering.LANE_COLUMNS`` off (every depthwise conv a plain
diagonal job), for predict and saliency (benchmarks.switch: one Verilator build, bit-exact checks,
the cycle model per run and per job).

Utilisation = the network's multiply-accumulates (``timing.network_macs``) / (Tm x Tn x cycles).
Results in benchmarks/results/depthwise.json.
"""

from __future__ import annotations

from benchmarks import switch
from xaihls.plan.contract import Flag
from xaihls.plan.lowering import is_depthwise

RUNS = (None, "saliency")


def measure(model: str, board: str) -> dict:
    return switch.measure(model, board, "LANE_COLUMNS", "lanes", "plain", RUNS, lambda d, layer: {
        "depthwise": layer is not None and is_depthwise(layer), "lanes": d.has(Flag.LANES)})


def _summary(jobs: list[dict], direction: str) -> tuple[int, int, float, float]:
    """(depthwise jobs' cycles, all jobs' cycles, lowest and highest depthwise utilisation) of a direction."""
    dw = [j for j in jobs if j["direction"] == direction and j["depthwise"]]
    every = sum(j["rtl"] for j in jobs if j["direction"] == direction)
    util = [j["utilisation"] for j in dw if j["utilisation"]]
    return sum(j["rtl"] for j in dw), every, min(util), max(util)


def markdown(result: dict) -> str:
    lines = [f"**{result['model']} on {result['board']}** ({result['tm']} x {result['tn']})", "",
             "| depthwise jobs | predict | saliency | model (saliency) | depthwise cycles, forward / backward "
             "(of all jobs) | depthwise utilisation, forward / backward | bit-exact |", "|---|---|---|---|---|---|---|"]
    for kind, p in result["programs"].items():
        runs = {r["run"]: r for r in p["runs"]}
        f = _summary(p["jobs"], "forward")
        b = _summary(p["jobs"], "backward")
        s = runs["saliency"]
        lines.append(f"| {kind} | {runs['predict']['cycles']:,} | {s['cycles']:,} | "
                     f"{s['cycles'] / s['model_cycles'] - 1:+.1%} | {f[0]:,} ({f[1]:,}) / {b[0]:,} ({b[1]:,}) | "
                     f"{f[2]:.1%}–{f[3]:.1%} / {b[2]:.1%}–{b[3]:.1%} | "
                     f"{'yes' if all(r['bit_exact'] for r in p['runs']) else 'NO'} |")
    worst = switch.worst_job(result)
    jobs = result["programs"]["lanes"]["jobs"]
    dense = sum(j["lanes"] and not j["depthwise"] for j in jobs)
    lines += ["", f"LANES jobs: {sum(j['lanes'] and j['depthwise'] for j in jobs)} of "
              f"{sum(j['depthwise'] for j in jobs)} depthwise jobs"
              + (f", and {dense} dense (narrow convolutions, docs/engine_v2.md)" if dense else "")
              + f"; every job within {worst:.1%} of the cycle model."]
    return "\n".join(lines)


def main() -> None:
    switch.main(__doc__, ["mobilenet_v2_tiny", "ds_cnn"], measure, markdown, "depthwise.json")


if __name__ == "__main__":
    main()
