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


def run_demo(out: Path, steps: int = 32, board: str = "pynq-z2", console=None, model: str = "digits",
             rtl_images: int = 1) -> dict:
    """The bundled model from calibration to every backend; returns the summary.

    Writes under ``out``: ``heatmaps.png`` (golden), ``summary.json``/``summary.md`` (fidelity
    against float, and each backend's bit-exactness with golden), ``project/`` (the Vitis HLS
    and RTL project, with heatmaps per backend and the Verilator cycles in ``project/reports``)
    and ``report.html``. The RTL runs every method on the first ``rtl_images`` sample images
    (0: not at all), as the project's testbench cases.
    """
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

    # The hardware: write the project, then run every backend whose toolchain is here.
    from xaihls.writer import write_project

    project = write_project(acc, out / "project", force=True, images=images[: max(rtl_images, 1)])
    reports = project / "reports"
    save_heatmap_grid(images, attributions, reports / "heatmaps_golden.png", titles)
    summary["project"] = str(project)
    summary["backends"] = {"golden": "reference"}
    for backend in ("program", "csim"):
        summary["backends"][backend] = _check_backend(acc, backend, images, predicted, steps, attributions,
                                                      reports, titles, console)
    summary["backends"]["rtl"] = _check_rtl(project, rtl_images, console)
    from xaihls.reports.compare import compare
    from xaihls.reports.html import write_html

    write_html(compare([project]), [project], out / "report.html")
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
    for backend, state in summary["backends"].items():
        console.print(f"{backend:>8}: {state}")
    console.print(f"wrote {out / 'heatmaps.png'}, {out / 'report.html'}, {out / 'summary.md'} and the project {project}")
    return summary


def _check_backend(acc, backend, images, predicted, steps, golden_attr, reports, titles, console) -> str:
    """Run every method on ``backend`` and compare with golden; a one-line verdict."""
    from xaihls.errors import XaiHlsError

    try:
        with console.status(f"{backend}: every method on {images.shape[0]} images"):
            attrs = {}
            for method in golden_attr:
                r = acc.run(images, method, target=predicted, steps=steps, backend=backend)
                attrs[method] = dequantize(r.attribution, r.attribution_fmt)
    except XaiHlsError as exc:
        return f"skipped ({exc})"
    save_heatmap_grid(images, attrs, reports / f"heatmaps_{backend}.png", titles)
    differ = [m for m in golden_attr if not torch.equal(attrs[m], golden_attr[m])]
    if differ:
        return f"DIFFERS from golden on {', '.join(differ)}"
    return f"bit-exact with golden on all {len(golden_attr)} methods, {images.shape[0]} images"


def _check_rtl(project: Path, images: int, console) -> str:
    """The project's testbench cases on the RTL engine (Verilator through cocotb); a one-line verdict."""
    from xaihls.backends.rtl.v2.project import simulate_project
    from xaihls.errors import XaiHlsError

    if images == 0:
        return "skipped (--rtl-images 0)"
    try:
        with console.status(f"rtl: Verilator build (once, minutes) and every method on {images} image(s)"):
            report = simulate_project(project, images=images)
    except XaiHlsError as exc:
        return f"skipped ({exc})"
    methods = report["methods"]
    differ = [m for m, v in methods.items() if not v["bit_exact"]]
    if differ:
        return f"DIFFERS from golden on {', '.join(differ)}"
    cycles = ", ".join(f"{m} {v['cycles']:,}" for m, v in methods.items())
    return (f"bit-exact with golden on predict and all {len(methods) - 1} methods, {images} image(s); "
            f"cycles: {cycles}")


def _markdown(summary: dict) -> str:
    lines = [f"# xaihls demo: {summary['model']} on {summary['board']}", "",
             f"Calibrated on {summary['calibration_images']} images; {summary['images']} sample images; "
             f"integrated gradients with {summary['ig_steps']} steps.", "",
             f"Top-1 agreement of the 16-bit golden model with float: {summary['top1_agreement_with_float']:.0%}.", "",
             "| method | reference | Pearson mean | Pearson min | saturations |", "|---|---|---|---|---|"]
    for method, row in summary["methods"].items():
        lines.append(f"| {method} | {row['reference']} | {row['pearson_mean']:.4f} | {row['pearson_min']:.4f} | "
                     f"{sum(row['saturations'].values())} |")
    lines += ["", "| backend | result |", "|---|---|"]
    lines += [f"| {b} | {state} |" for b, state in summary.get("backends", {}).items()]
    lines += ["", "![heatmaps](heatmaps.png)", "", "The hardware report: [report.html](report.html).", ""]
    return "\n".join(lines)
