"""The resource model of Engine v2, fitted on yosys runs of the RTL (never guessed).

``synth_xilinx`` of the RTL at several array shapes (Tm and Tn varied separately, and the AXI
width) gives LUT, FF, DSP and BRAM_18K counts; ``fit`` finds the coefficients of

    LUT, FF = c0 + c1*Tm + c2*Tn + c3*Tm*Tn + c4*E          (E: 16-bit elements per AXI beat)

by least squares, and BRAM_18K = b0 + b1 * (the block RAMs the engine's memories need at the
point's buffer depths, counted shape by shape). DSP is Tm*Tn plus a constant, fitted exactly.
The coefficients, the points they come from and each point's residual are stored in
``resource_model.json`` (written by ``python -m benchmarks.resources --fit``); the planner
uses the model only through ``estimate``, and tests/test_resources.py holds it to within
15% of every stored point.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xaihls.errors import XaiHlsError
from xaihls.plan.engine import ACC_BITS, DATA_BITS, EngineV2, ResourceEstimate, bram18_count

MODEL_FILE = Path(__file__).with_name("resource_model.json")
FEATURES = ("1", "tm", "tn", "tm*tn", "beat_elems")


def features(tm: int, tn: int, beat_elems: int) -> list[float]:
    return [1.0, float(tm), float(tn), float(tm * tn), float(beat_elems)]


def memories(e: EngineV2) -> dict[str, tuple[int, int, int]]:
    """The engine's memories as (width bits, depth, copies), as docs/engine_v2.md builds them."""
    return {
        "input buffers (ping-pong)": (DATA_BITS, e.in_depth, 2 * e.tn),
        "weight buffer (ping-pong)": (DATA_BITS * e.tn, 2 * e.w_depth, 1),
        "accumulators (two sets)": (ACC_BITS, 2 * e.out_depth, e.tm),
        "ReLU bits": (e.beat_elems, max(1, math.ceil(e.mask_bits / e.beat_elems)), 1 if e.backward else 0),
        "pool indices": (e.beat_elems * max(e.index_bits, 1), max(1, math.ceil(e.index_entries / e.tn)),
                         (e.tn // e.beat_elems) if e.backward else 0),
        "IG sums": (ACC_BITS * e.beat_elems, max(1, math.ceil(e.input_elems / e.beat_elems)),
                    1 if e.backward else 0),
    }


def memory_brams(e: EngineV2) -> dict[str, int]:
    """RAMB18s each memory takes (LUTRAM for small ones, as the vendor tools do)."""
    return {name: copies * bram18_count(width, depth) for name, (width, depth, copies) in memories(e).items()}


@dataclass(frozen=True)
class ResourceModel:
    """Coefficients of LUT and FF over FEATURES, BRAM_18K = b0 + b1 * memory_brams, DSP =
    Tm*Tn + dsp_extra; ``points`` are the yosys runs they were fitted on."""

    lut: tuple[float, ...]
    ff: tuple[float, ...]
    bram: tuple[float, float]
    dsp_extra: int
    points: tuple[dict, ...]
    source: str

    def estimate(self, e: EngineV2) -> ResourceEstimate:
        x = np.array(features(e.tm, e.tn, e.beat_elems))
        brams = memory_brams(e)
        bram = self.bram[0] + self.bram[1] * sum(brams.values())
        return ResourceEstimate(int(round(float(x @ np.array(self.lut)))), int(round(float(x @ np.array(self.ff)))),
                                e.tm * e.tn + self.dsp_extra, int(round(bram)), 0, brams)

    def residuals(self) -> list[dict]:
        """Each fitting point: measured, model, and the relative error per resource."""
        out = []
        for p in self.points:
            est = self.estimate(engine_of_point(p)).as_dict()
            out.append({**{k: p[k] for k in ("tm", "tn", "beat_elems")},
                        **{k: {"yosys": p[k], "model": est[k], "error": (est[k] - p[k]) / p[k] if p[k] else 0.0}
                           for k in ("LUT", "FF", "DSP", "BRAM_18K")}})
        return out

    def as_dict(self) -> dict:
        return {"source": self.source, "features": list(FEATURES), "lut": list(self.lut), "ff": list(self.ff),
                "bram": list(self.bram), "dsp_extra": self.dsp_extra, "points": list(self.points)}


POINT_ENGINE_KEYS = ("tm", "tn", "beat_elems", "in_depth", "out_depth", "w_depth", "mask_bits", "index_entries",
                     "index_bits", "input_elems", "backward")


def engine_of_point(p: dict) -> EngineV2:
    """The EngineV2 a yosys point was built with (its parameters are stored with its counts)."""
    return EngineV2(**{k: p[k] for k in POINT_ENGINE_KEYS}, clock_mhz=100.0, bytes_per_cycle=8.0)


def fit(points: list[dict], source: str) -> ResourceModel:
    """Least-squares coefficients from yosys points (each: the engine's parameters and LUT, FF,
    DSP, BRAM_18K). Needs at least as many points as coefficients, with Tm and Tn varied apart."""
    if len(points) < len(FEATURES):
        raise XaiHlsError(f"the resource model needs at least {len(FEATURES)} yosys points, got {len(points)}")
    x = np.array([features(p["tm"], p["tn"], p["beat_elems"]) for p in points])
    if np.linalg.matrix_rank(x) < len(FEATURES):
        # e.g. every point at one AXI width: fit without the features the points do not vary
        varied = [j for j in range(len(FEATURES)) if np.ptp(x[:, j]) > 0 or j == 0]
    else:
        varied = list(range(len(FEATURES)))
    coef = {}
    for key in ("LUT", "FF"):
        y = np.array([p[key] for p in points], dtype=float)
        c, *_ = np.linalg.lstsq(x[:, varied], y, rcond=None)
        full = np.zeros(len(FEATURES))
        full[varied] = c
        coef[key] = tuple(float(v) for v in full)
    dsp_extra = {p["DSP"] - p["tm"] * p["tn"] for p in points}
    if len(dsp_extra) != 1:
        raise XaiHlsError(f"DSP count is not Tm*Tn plus a constant across the points: extras {sorted(dsp_extra)}")
    mem = np.array([sum(memory_brams(engine_of_point(p)).values()) for p in points], dtype=float)
    y = np.array([p["BRAM_18K"] for p in points], dtype=float)
    b, *_ = np.linalg.lstsq(np.stack([np.ones_like(mem), mem], 1), y, rcond=None)
    return ResourceModel(coef["LUT"], coef["FF"], (float(b[0]), float(b[1])), dsp_extra.pop(), tuple(points), source)


def load(path: Path = MODEL_FILE) -> ResourceModel:
    """The fitted model the planner uses; a clear error if it was never fitted."""
    if not path.is_file():
        raise XaiHlsError(f"no fitted resource model at {path}; run `python -m benchmarks.resources --fit`")
    data = json.loads(path.read_text())
    return ResourceModel(tuple(data["lut"]), tuple(data["ff"]), tuple(data["bram"]), int(data["dsp_extra"]),
                         tuple(data["points"]), data["source"])


def save(model: ResourceModel, path: Path = MODEL_FILE) -> None:
    path.write_text(json.dumps(model.as_dict(), indent=1) + "\n")
