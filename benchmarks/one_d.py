"""1-D models with their maps as one row or as a column (``lowering.ONE_D_COLUMNS``): the engine the
planner takes for each, its resources by the fitted model, and predict and saliency on the RTL
(Verilator) against golden and the cycle model.

Run: ``python -m benchmarks.one_d [--models ecg_187 ...] [--board pynq-z2]``, under the shared
heavy-tool lock. For each model (random weights, eight random calibration samples): compiled with
saliency, then planned for the board three times: ``rows`` (ONE_D_COLUMNS and capabilities.IMAGE_PHASES off:
every map one row), ``columns`` (IMAGE_PHASES off: the planner weighs rows and columns and keeps the faster) and
``planner`` (it weighs the image as its first stride's phases too, where that view exists);
each plan's Program simulated for predict and saliency on one Verilator build of its engine
(SystemVerilog DDR model at latency 24), every run compared with golden bit for bit and with
``timing.method_cycles``. A plan the board cannot hold is recorded with its refusal. Results in
benchmarks/results/one_d.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch import nn

import xaihls
from benchmarks.grad_cam import _conv_pool_net
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.plan import capabilities, lowering
from xaihls.plan.capabilities import program_refusal
from xaihls.plan.boards import load_board
from xaihls.plan.contract import network_image, view_phases
from xaihls.plan.planner_v2 import plan_v2
from xaihls.plan.timing import method_cycles

RESULTS = Path(__file__).parent / "results"
RUNS = (None, "saliency")


def _raw_audio(length: int) -> nn.Module:
    """A raw-waveform keyword-spotting CNN (M5's pattern, narrower): a strided wide first conv, then
    3-tap convs and max-pools of 4, a global pool and a Linear."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 16, 9, stride=2, padding=4), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(4),
                         nn.Conv1d(16, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(4),
                         nn.Conv1d(32, 64, 3, padding=1), nn.BatchNorm1d(64), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                         nn.Flatten(), nn.Linear(64, 10)).eval()


def _m5(channels: int = 32, classes: int = 35) -> nn.Module:
    """M5 (Dai et al. 2017) as torchaudio's speech-commands tutorial builds it: 80 taps of stride 16 on the raw
    waveform, then 3-tap convs, each with a BatchNorm, a ReLU and a max-pool of 4, a global pool and a Linear."""
    torch.manual_seed(0)
    layers, width = [], 1
    for k, (out, kernel, stride) in enumerate(((channels, 80, 16), (channels, 3, 1), (2 * channels, 3, 1),
                                              (2 * channels, 3, 1))):
        layers += [nn.Conv1d(width, out, kernel, stride=stride), nn.BatchNorm1d(out), nn.ReLU(), nn.MaxPool1d(4)]
        width = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(width, classes)).eval()


# (input shape, the model): ecg_187 an MIT-BIH heartbeat; har_128 a UCI-HAR window of 9 inertial channels;
# kws_40x98 keyword spotting on 98 frames of 40 MFCCs as channels; ecg_1000 a 10-second 12-lead PTB-XL record at
# 100 Hz; audio_4000 half a second of 8 kHz audio; m5_8000 a second of it through M5 (its image as 500 rows of 16)
MODELS = {
    "ecg_187": ((1, 187), lambda: _conv_pool_net((1, 187), (16, 32, 32, 64), 5)),
    "har_128": ((9, 128), lambda: _conv_pool_net((9, 128), (32, 64, 64), 6)),
    "kws_40x98": ((40, 98), lambda: _conv_pool_net((40, 98), (64, 64, 64), 12)),
    "ecg_1000": ((12, 1000), lambda: _conv_pool_net((12, 1000), (32, 32, 64, 64), 5)),
    "audio_4000": ((1, 4000), lambda: _raw_audio(4000)),
    "m5_8000": ((1, 8000), _m5),
}


def sim_runs(acc, x) -> tuple[list[dict], list]:
    """The RTL simulation's runs of ``RUNS`` on the one image ``x`` (the network's shape, a batch of one), and
    golden's results of them."""
    x_q = quantize_input(acc.qgraph, acc.graph.as_maps(x))[0][0].numpy()
    runs = [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": sim.ig_table(2, "trapezoid", acc.qgraph.width),
             "target": -1, "steps": 2, "method": PREDICT_CODE if m is None else METHOD_CODES[m]} for m in RUNS]
    return runs, [acc.run(x, m) if m else acc.run(x) for m in RUNS]


def rtl_rows(acc, plan, runs: list[dict], golden: list) -> tuple[list[dict], object]:
    """``runs`` on one Verilator build of ``plan``'s engine (SystemVerilog DDR model at its default latency): a
    row a run with its cycles, the cycle model's and whether it is bit-exact with ``golden`` (the attribution
    back in the network's shape); and the engine the cycle model priced, at the simulation's DDR latency."""
    program, engine = plan.program, plan.engine
    model_engine = type(engine)(**{**engine.__dict__, "ddr_latency": sim.common.DDR_LATENCY})
    rows, image = [], acc.graph.input_shape
    phases = view_phases(program.header, image)  # the view (phases) read back
    for m, r, g in zip(RUNS, sim.simulate(program, rtl_params(program, engine), runs), golden):
        attribution = r["attribution"] if m is None else network_image(r["attribution"], image, phases)
        exact = (r["status"] == 0 and np.array_equal(r["logits"], g.logits[0].numpy()) and (
            m is None or np.array_equal(attribution.ravel(), g.attribution[0].numpy().ravel())))
        rows.append({"run": m or "predict", "cycles": r["cycles"],
                     "model_cycles": method_cycles(program, model_engine, m), "bit_exact": bool(exact)})
    return rows, model_engine


def measure(name: str, board: str) -> dict:
    shape, build = MODELS[name]
    calibration = torch.randn((8, *shape), generator=torch.Generator().manual_seed(1))
    acc = xaihls.compile(build(), shape, calibration=calibration, backends=("golden",), methods=("saliency",))
    runs, golden = sim_runs(acc, calibration[:1])
    plans = {}
    for label, columns, phases in (("rows", False, False), ("columns", True, False), ("planner", True, True)):
        lowering.ONE_D_COLUMNS, capabilities.IMAGE_PHASES = columns, phases
        try:
            why = program_refusal(acc.qgraph)
            if why:
                raise XaiHlsError(why)
            plan = plan_v2(acc.qgraph, load_board(board))
        except XaiHlsError as exc:
            plans[label] = {"refused": str(exc)}
            continue
        finally:
            lowering.ONE_D_COLUMNS = capabilities.IMAGE_PHASES = True
        program, engine = plan.program, plan.engine
        rows, _ = rtl_rows(acc, plan, runs, golden)
        first = program.forward[0]
        plans[label] = {"tm": engine.tm, "tn": engine.tn, "in_depth": engine.in_depth, "out_depth": engine.out_depth,
                        "columns": first.iw == 1 and first.ih > 1, "phases": program.header["in_c"] // shape[0],
                        "bram_18k": plan.resources.bram_18k,
                        "lut": plan.resources.lut, "runs": rows}
    return {"model": name, "shape": list(shape), "board": board, "plans": plans}


def markdown(results: list[dict]) -> str:
    lines = ["| model (C, L) | plan | engine | maps | input words | BRAM_18K | LUT | predict | saliency | "
             "RTL vs model | bit-exact |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for label, p in res["plans"].items():
            head = f"| {res['model']} {tuple(res['shape'])} | {label} |"
            if "refused" in p:
                lines.append(f"{head} refused: {p['refused']} |||||||||")
                continue
            runs = p["runs"]
            off = max((r["cycles"] / r["model_cycles"] - 1 for r in runs), key=abs)
            maps = "columns" if p["columns"] else "one row"
            if p.get("phases", 1) > 1:  # the image as its first convolution's stride phases
                maps += f", image as {p['phases']} phases of {res['shape'][1] // p['phases']}"
            elif "image" in p and p["image"][0] > 1:  # (until 2026-12-06) as rows of that stride
                maps += f", image as {p['image'][0]} rows of {p['image'][1]}"
            lines.append(f"{head} {p['tm']} x {p['tn']} | {maps} | "
                         f"{p['in_depth']:,} | {p['bram_18k']} | {p['lut']:,} | {runs[0]['cycles']:,} | "
                         f"{runs[1]['cycles']:,} | {off:+.1%} | {'yes' if all(r['bit_exact'] for r in runs) else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--board", default="pynq-z2")
    args = ap.parse_args()
    results = [dict(measure(m, args.board), date=str(date.today())) for m in args.models]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "one_d.json"
    # the models measured now replace their earlier records; the others stay, each with its date
    kept = json.loads(path.read_text()) if path.is_file() else {"results": []}
    earlier = [dict(r, date=r.get("date", kept.get("date"))) for r in kept["results"]
               if (r["model"], r["board"]) not in {(n["model"], n["board"]) for n in results}]
    path.write_text(json.dumps({"results": earlier + results}, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
