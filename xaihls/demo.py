"""``xaihls demo``: the bundled digits model from calibration to heatmaps, with its fidelity."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import xaihls
from xaihls.methods import METHODS
from xaihls.numerics import dequantize
from xaihls.models.zoo import get_zoo_model
from xaihls.reports.fidelity import float_reference, pearson_per_image
from xaihls.reports.heatmaps import save_heatmap_grid


def run_demo(out: Path, steps: int = 32, board: str = "pynq-z2", console=None, model: str = "digits") -> dict:
    """Write ``heatmaps.png``, ``summary.json`` and ``summary.md`` under ``out``; return the summary."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    console = console or Console()
    entry = get_zoo_model(model)
    module = entry.build()
    images, labels = entry.samples()
    calibration = entry.calibration()
    methods = tuple(METHODS)
    summary: dict = {"model": f"zoo:{model}", "board": board, "images": int(images.shape[0]),
                     "calibration_images": int(calibration.shape[0]), "ig_steps": steps, "methods": {}}

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("calibrating and compiling", total=2 + len(methods))
        acc = xaihls.compile(module, entry.input_shape, board=board, methods=methods,
                             calibration=calibration, ig_steps=steps)
        progress.advance(task)
        progress.update(task, description="predicting")
        predicted = acc.predict(images).argmax(1)
        with torch.no_grad():
            float_predicted = module(images).argmax(1)
        progress.advance(task)
        summary["top1_agreement_with_float"] = float((predicted == float_predicted).float().mean())
        if (labels >= 0).all():
            summary["golden_accuracy_on_samples"] = float((predicted == labels).float().mean())
        attributions = {}
        for method in methods:
            progress.update(task, description=f"attributing: {method}")
            result = acc.run(images, method, target=predicted, steps=steps)
            attr = dequantize(result.attribution, result.attribution_fmt)
            reference, source = float_reference(acc.graph, images, method, predicted, steps)
            r = pearson_per_image(attr, reference)
            attributions[method] = attr
            summary["methods"][method] = {
                "reference": source, "pearson_mean": round(float(r.mean()), 6), "pearson_min": round(float(r.min()), 6),
                "saturations": dict(result.saturations), "format": str(result.attribution_fmt),
            }
            progress.advance(task)

    out.mkdir(parents=True, exist_ok=True)
    titles = [f"label {int(y)} -> {int(p)}" if y >= 0 else f"-> {int(p)}" for y, p in zip(labels, predicted)]
    save_heatmap_grid(images, attributions, out / "heatmaps.png", titles)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(_markdown(summary))

    table = Table(title=f"zoo:{model} on {board}: 16-bit golden model vs float")
    for col in ("method", "reference", "Pearson mean", "Pearson min", "saturations"):
        table.add_column(col)
    for method, row in summary["methods"].items():
        table.add_row(method, row["reference"], f"{row['pearson_mean']:.4f}", f"{row['pearson_min']:.4f}",
                      str(sum(row["saturations"].values())))
    console.print(table)
    console.print(f"top-1 agreement with float: {summary['top1_agreement_with_float']:.0%} "
                  f"on {summary['images']} sample images")
    console.print(f"wrote {out / 'heatmaps.png'}, {out / 'summary.md'}")
    return summary


def _markdown(summary: dict) -> str:
    lines = [f"# xaihls demo: {summary['model']} on {summary['board']}", "",
             f"Calibrated on {summary['calibration_images']} images; {summary['images']} sample images; "
             f"integrated gradients with {summary['ig_steps']} steps.", "",
             f"Top-1 agreement of the 16-bit golden model with float: {summary['top1_agreement_with_float']:.0%}.", "",
             "| method | reference | Pearson mean | Pearson min | saturations |", "|---|---|---|---|---|"]
    for method, row in summary["methods"].items():
        lines.append(f"| {method} | {row['reference']} | {row['pearson_mean']:.4f} | {row['pearson_min']:.4f} | "
                     f"{sum(row['saturations'].values())} |")
    lines += ["", "![heatmaps](heatmaps.png)", ""]
    return "\n".join(lines)
