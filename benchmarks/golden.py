"""Golden model benchmarks: throughput against Captum float, IG completeness, fidelity on the full split.

Run: ``python -m benchmarks.golden`` (prints Markdown tables; results also go to
benchmarks/results/golden.json). Copy the tables into benchmarks/RESULTS.md with the
machine and date.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch

import xaihls
from xaihls.frontend.reference import graph_to_module
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.numerics import dequantize
from xaihls.reports.fidelity import captum_attribute, pearson_per_image

RESULTS = Path(__file__).parent / "results"


def _interleaved_medians(fns, repeats: int) -> list[float]:
    """Median seconds of each function, run in turn (a, b, a, b, ...) so both see the same load."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def throughput(batch: int = 64, repeats: int = 5) -> list[dict]:
    """Images/s of golden and of Captum float: same model, batch and CPU, runs interleaved."""
    rows = []
    for name in ("digits", "cifar_ref"):
        entry = get_zoo_model(name)
        acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(),
                             methods=("saliency", "integrated_gradients"))
        module = graph_to_module(acc.graph)
        gen = torch.Generator().manual_seed(0)
        x = torch.rand((batch, *entry.input_shape), generator=gen)
        target = acc.predict(x).argmax(1)
        for method, steps in (("saliency", None), ("integrated_gradients", 32)):
            label = "IG-32" if steps else method
            g, c = _interleaved_medians([lambda: acc.attribute(x, method, target=target, steps=steps),
                                         lambda: captum_attribute(module, x, method, target, steps=steps or 32)],
                                        repeats)
            rows.append({"model": name, "method": label, "batch": batch,
                         "golden_img_s": batch / g, "captum_img_s": batch / c, "ratio": c / g})
    return rows


def completeness(steps_list=(8, 16, 32, 64), images: int = 16) -> list[dict]:
    """IG completeness gap |sum attr - (y(x) - y(x'))| / |y(x) - y(x')|, golden and Captum."""
    rows = []
    for name in ("digits", "cifar_ref"):
        entry = get_zoo_model(name)
        acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(),
                             methods=("integrated_gradients",))
        module = graph_to_module(acc.graph)
        x = entry.samples()[0][:images] if name == "digits" else entry.calibration()[:images]
        logits = acc.predict(x)
        target = logits.argmax(1)
        base_logits = acc.predict(torch.zeros_like(x))
        delta = (logits - base_logits).gather(1, target[:, None]).squeeze(1).double()
        with torch.no_grad():
            f_delta = (module(x) - module(torch.zeros_like(x))).gather(1, target[:, None]).squeeze(1).double()
        for steps in steps_list:
            r = acc.run(x, "integrated_gradients", target=target, steps=steps)
            total = dequantize(r.attribution, r.attribution_fmt).sum((1, 2, 3))
            gap = ((total - delta).abs() / delta.abs())
            cap = captum_attribute(module, x, "integrated_gradients", target, steps=steps).double().sum((1, 2, 3))
            cgap = ((cap - f_delta).abs() / f_delta.abs())
            rows.append({"model": name, "steps": steps, "golden_gap_median": float(gap.median()),
                         "golden_gap_max": float(gap.max()), "captum_gap_median": float(cgap.median())})
    return rows


def fidelity_full_split() -> list[dict]:
    """Pearson per image vs Captum on all 450 digits test images, every method, three nets."""
    from xaihls.models.digits import load_digits_split

    x = load_digits_split(0)[2]
    rows = []
    for name in ("digits", "digits_strided_bn", "digits_gap"):
        entry = get_zoo_model(name)
        acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration())
        module = graph_to_module(acc.graph)
        target = acc.predict(x).argmax(1)
        for method in METHODS:
            r = pearson_per_image(acc.attribute(x, method, target=target, steps=32),
                                  captum_attribute(module, x, method, target, steps=32))
            rows.append({"model": name, "method": method, "images": int(x.shape[0]), "mean": float(r.mean()),
                         "min": float(r.min()), "below_0.98": int((r < 0.98).sum())})
    return rows


def _table(rows: list[dict], fmt: dict[str, str]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(format(row[k], fmt.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(2)
    meta = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
            f"{platform.processor() or platform.platform()}", "torch": torch.__version__}
    result = {"meta": meta, "throughput": throughput(), "completeness": completeness(),
              "fidelity": fidelity_full_split()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "golden.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"date {meta['date']}; {meta['machine']}; torch {meta['torch']}\n")
    print(_table(result["throughput"], {"golden_img_s": ".1f", "captum_img_s": ".1f", "ratio": ".2f"}), "\n")
    print(_table(result["completeness"], {k: ".4f" for k in ("golden_gap_median", "golden_gap_max",
                                                            "captum_gap_median")}), "\n")
    print(_table(result["fidelity"], {"mean": ".5f", "min": ".4f"}))


if __name__ == "__main__":
    main()
