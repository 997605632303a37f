"""``xaihls sweep``: one model over many boards (and tilings), in parallel, one project a point.

Points run on a local process pool by default, or on a Dask distributed cluster given its
scheduler address. A point is a pure function of its inputs, so both give the same results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from xaihls.errors import XaiHlsError


@dataclass(frozen=True)
class SweepPoint:
    """Everything a worker needs: plain values only (they travel to other processes/machines)."""

    model: str
    board: str
    out_dir: str
    tiling: tuple[int, int] | None = None
    weights: str | None = None
    input_shape: tuple[int, int, int] | None = None
    calibration: str | None = None
    config: str | None = None
    methods: tuple[str, ...] = ("saliency", "integrated_gradients")
    steps: int = 32

    @property
    def name(self) -> str:
        return self.board + (f"_{self.tiling[0]}x{self.tiling[1]}" if self.tiling else "")


def evaluate_point(point: SweepPoint) -> dict:
    """Compile, plan, write the project and attribute the samples with golden; return the figures."""
    import torch

    import xaihls
    from xaihls.frontend.loaders import load_model
    from xaihls.io import load_calibration

    loaded = load_model(point.model, point.weights, point.input_shape)
    shape = loaded.graph.input_shape
    if point.calibration:
        calibration = load_calibration(point.calibration, shape)
    elif point.model.startswith("zoo:"):
        from xaihls.models.zoo import get_zoo_model

        calibration = get_zoo_model(point.model[4:]).calibration()
    else:
        raise XaiHlsError("sweep: give a calibration batch for a model that is not from the zoo")
    torch.set_num_threads(1)  # one core a point: the pool supplies the parallelism
    acc = xaihls.compile(loaded.graph, board=point.board, methods=point.methods, calibration=calibration,
                         config=point.config, ig_steps=point.steps, tiling=point.tiling,
                         backends=("golden", "program", "csim"))  # the project's RTL only where it runs
    folder = Path(point.out_dir) / point.name
    acc.write(folder, force=True)
    samples = calibration[:2]
    digests = {}
    for method in point.methods:
        r = acc.run(samples, method, steps=point.steps)
        digests[method] = hashlib.sha256(r.attribution.numpy().tobytes()).hexdigest()[:16]
    summary = acc.plan.summary()
    return {"point": point.name, "project": str(folder), "board": point.board, "tiling": f"{summary['tm']}x{summary['tn']}",
            "cycles": summary["cycles"], "latency_ms": summary["latency_ms"], "resources": summary["resources"],
            "utilization": summary["utilization"], "golden_digest": digests}


def sweep(points: list[SweepPoint], scheduler: str | None = None, workers: int | None = None,
          progress=None) -> list[dict]:
    """Evaluate every point; results in the order of ``points``."""
    if not points:
        raise XaiHlsError("sweep: no points (give at least one board)")
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise XaiHlsError("sweep --scheduler needs dask[distributed]: pip install 'dask[distributed]'") from None
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise XaiHlsError(f"sweep: cannot reach the Dask scheduler at {scheduler} ({exc.__class__.__name__})") \
                from None
        try:
            futures = client.map(evaluate_point, points, pure=False)
            return client.gather(futures)
        finally:
            client.close()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child of a process that has run torch can deadlock in its thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = []
        for result in pool.map(evaluate_point, points):
            results.append(result)
            if progress:
                progress(result)
        return results


def write_sweep(results: list[dict], out_dir: str | Path) -> Path:
    out = Path(out_dir) / "sweep.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return out


def points_for(model: str, boards: list[str], out_dir: str, tilings: list[tuple[int, int]] | None = None,
               **options) -> list[SweepPoint]:
    return [SweepPoint(model, board, str(out_dir), tiling, **options)
            for board in boards for tiling in (tilings or [None])]


__all__ = ["SweepPoint", "evaluate_point", "sweep", "write_sweep", "points_for"]
