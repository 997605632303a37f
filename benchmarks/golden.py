"""Golden model benchmarks: speed and peak memory against Captum float, IG completeness, fidelity.

Run ``python -m benchmarks.golden`` for every section, or name some: ``throughput``,
``kernel_paths``, ``conv_breakdown``, ``memory``, ``completeness``, ``fidelity``. It prints Markdown tables and
updates those sections of benchmarks/results/golden.json (``section_meta`` records the date,
machine and command of each); copy the tables into benchmarks/RESULTS.md. The speed and memory
sections are heavy: on a shared machine run them under ``flock /tmp/xaihls-heavy.lock``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from datetime import date
from pathlib import Path

import torch
from torch import nn

import xaihls
from xaihls.frontend.reference import graph_to_module
from xaihls.golden import kernels
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.numerics import dequantize
from xaihls.reports.fidelity import captum_attribute, pearson_per_image

RESULTS = Path(__file__).parent / "results"
THREADS = 2
NETS = ("digits", "cifar_ref", "net64")
CASES = (("saliency", None), ("integrated_gradients", 32))


class Net64(nn.Sequential):
    """A 3x64x64 CNN wider than cifar_ref: four 3x3 conv/ReLU/max-pool stages (32, 64, 128, 128
    channels) and two linear layers; torch's default initialisation from seed 0 (speed and memory
    do not depend on the weight values)."""

    def __init__(self) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            layers = OrderedDict()
            channels = (3, 32, 64, 128, 128)
            for k in range(4):
                layers[f"conv{k + 1}"] = nn.Conv2d(channels[k], channels[k + 1], 3, padding=1)
                layers[f"relu{k + 1}"] = nn.ReLU()
                layers[f"pool{k + 1}"] = nn.MaxPool2d(2)
            layers["flatten"] = nn.Flatten()
            layers["fc1"] = nn.Linear(128 * 4 * 4, 128)
            layers["relu5"] = nn.ReLU()
            layers["fc2"] = nn.Linear(128, 10)
            super().__init__(layers)


def _net(name: str) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """A benchmark network in eval mode, its input shape and a calibration batch."""
    if name == "net64":
        return Net64().eval(), (3, 64, 64), torch.rand((32, 3, 64, 64), generator=torch.Generator().manual_seed(1))
    entry = get_zoo_model(name)
    return entry.build(), entry.input_shape, entry.calibration()


def _setup(name: str, batch: int):
    """The compiled accelerator, Captum's float module, a batch of images and golden's predicted classes."""
    model, shape, calibration = _net(name)
    acc = xaihls.compile(model, shape, calibration=calibration, methods=("saliency", "integrated_gradients"))
    x = torch.rand((batch, *shape), generator=torch.Generator().manual_seed(0))
    return acc, graph_to_module(acc.graph), x, acc.predict(x).argmax(1)


def _interleaved_medians(fns, repeats: int, clock=time.perf_counter) -> list[float]:
    """Median seconds of each function, run in turn (a, b, a, b, ...) so both see the same load."""
    for fn in fns:
        fn()  # warm-up (and golden's one-off choice of kernel path per layer shape)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t = clock()
            fn()
            times[k].append(clock() - t)
    return [statistics.median(t) for t in times]


def throughput(batch: int = 64, repeats: int = 5) -> list[dict]:
    """Images/s of golden and of Captum float: same model, batch and CPU, runs interleaved."""
    rows = []
    for name in NETS:
        acc, module, x, target = _setup(name, batch)
        for method, steps in CASES:
            g, c = _interleaved_medians([lambda: acc.attribute(x, method, target=target, steps=steps),
                                         lambda: captum_attribute(module, x, method, target, steps=steps or 32)],
                                        repeats if steps is None else max(3, repeats - 2))
            rows.append({"model": name, "method": f"IG-{steps}" if steps else method, "batch": batch,
                         "golden_img_s": batch / g, "captum_img_s": batch / c, "ratio": c / g})
    return rows


def kernel_paths(batch: int = 64) -> list[dict]:
    """The exact path golden keeps for each product of each network (a batch and an IG pass)."""
    rows = []
    for name in NETS:
        acc, _, x, target = _setup(name, batch)
        kernels.forget_chosen_paths()
        for method, steps in CASES:
            acc.attribute(x, method, target=target, steps=steps)
        for key, path in kernels.chosen_paths().items():
            rows.append({"model": name, "product": key[0], "input": "x".join(map(str, key[1])),
                         "weight": "x".join(map(str, key[2])), "path": path})
    return rows


def conv_breakdown(batch: int = 64, repeats: int = 7) -> list[dict]:
    """CPU milliseconds of one 3x3 convolution on one thread: Captum's float32, the previous float64, and
    golden's digit path by stage (the int8 GEMMs; their recombination into int64; the layout, canvas
    and im2col, as the rest). One thread and CPU time, so that other jobs on a shared machine blur
    the stages less.
    """
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    for layer, c, o, hw in (("cifar_ref conv2", 16, 16, 32), ("cifar_ref conv4", 32, 32, 16),
                            ("net64 conv2", 32, 64, 32), ("net64 conv4", 128, 128, 8)):
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, 1 << 15, (batch, c, hw, hw), generator=gen)
        w = torch.randint(-(1 << 15), 1 << 15, (o, c, 3, 3), generator=gen)
        xf, wf = x.float(), w.float()
        images = max(1, kernels.BLOCK_ROWS // (hw * hw))
        windows = kernels._windows(kernels._canvas(x, (1, 1), (hw + 2, hw + 2), (1, 1), True), (3, 3), (1, 1),
                                   (hw, hw))
        blocks = [windows[:, n0:n0 + images].reshape(-1, windows[0, 0, 0, 0].numel()).view(torch.int8)
                  for n0 in range(0, batch, images)]  # the digit rows the path multiplies, made once here
        laid_out = kernels.digit_weights(kernels._weight_matrix(w, blocks[0].shape[1] // 9))
        out = torch.empty((batch * hw * hw, o), dtype=torch.int64)

        def digits():
            with kernels.force_path("digits"):
                return kernels.conv2d(x, w, (1, 1), (1, 1), (16, 16))

        def gemm():
            return [torch._int_mm(b, laid_out.columns) for b in blocks]

        def gemm_recombined():
            for k, b in enumerate(blocks):
                kernels.digit_matmul_into(out[k * b.shape[0] // 2:(k + 1) * b.shape[0] // 2], b, laid_out)

        f32, f64, total, mm, recombined = _interleaved_medians(
            [lambda: F.conv2d(xf, wf, padding=1), lambda: F.conv2d(x.double(), w.double(), padding=1).long(),
             digits, gemm, gemm_recombined], repeats, time.process_time)
        rows.append({"layer": layer, "input": f"{batch}x{c}x{hw}x{hw}", "out_channels": o, "captum_f32_ms": f32 * 1e3,
                     "float64_ms": f64 * 1e3, "digits_ms": total * 1e3, "int8_gemm_ms": mm * 1e3,
                     "recombination_ms": (recombined - mm) * 1e3, "layout_ms": (total - recombined) * 1e3})
    torch.set_num_threads(threads)
    return rows


def _peak_memory_case(name: str, method: str, backend: str, batch: int) -> dict:
    """Resident memory of this fresh process just before one run and at its peak during the run, in MiB.

    The run is the first (golden's includes its one-off timing of both kernel paths).
    """
    torch.set_num_threads(THREADS)
    steps = 32 if method == "integrated_gradients" else None
    acc, module, x, target = _setup(name, batch)
    if backend == "golden":
        run = lambda: acc.attribute(x, method, target=target, steps=steps)  # noqa: E731
    else:
        run = lambda: captum_attribute(module, x, method, target, steps=32)  # noqa: E731
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc: give the set-up's freed heap back first,
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # so the run cannot hide in memory the set-up freed
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
        before = _status_mib(status, "VmRSS")
        run()
        return {"rss_before_mib": before, "peak_mib": _status_mib(status, "VmHWM"), "measure": "VmHWM"}
    except OSError:  # no /proc: the process's peak since it started (imports and compile included)
        run()
        return {"rss_before_mib": None, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "measure": "ru_maxrss"}


def _status_mib(status: Path, field: str) -> float:
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in {status}")


def peak_memory(batch: int = 64) -> list[dict]:
    """Peak resident memory of one run, golden and Captum, each in a fresh process."""
    rows = []
    for name in NETS:
        for method, steps in CASES:
            row = {"model": name, "method": f"IG-{steps}" if steps else method, "batch": batch}
            for backend in ("golden", "captum"):
                out = subprocess.run([sys.executable, "-m", "benchmarks.golden", "--memory-case", name, method,
                                      backend, str(batch)], capture_output=True, text=True, check=True,
                                     cwd=Path(__file__).parent.parent)
                case = json.loads(out.stdout.strip().splitlines()[-1])
                row[f"{backend}_peak_mib"] = case["peak_mib"]
                row[f"{backend}_rss_before_mib"] = case["rss_before_mib"]
            rows.append(row)
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
        lines.append("| " + " | ".join(format(row[k], fmt.get(k, "")) if row[k] is not None else "" for k in keys)
                     + " |")
    return "\n".join(lines)


SECTIONS = {
    "throughput": (throughput, {"golden_img_s": ".1f", "captum_img_s": ".1f", "ratio": ".2f"}),
    "kernel_paths": (kernel_paths, {}),
    "conv_breakdown": (conv_breakdown, {k: ".2f" for k in ("captum_f32_ms", "float64_ms", "digits_ms", "layout_ms",
                                                           "int8_gemm_ms", "recombination_ms")}),
    "memory": (peak_memory, {k: ".0f" for k in ("golden_peak_mib", "golden_rss_before_mib", "captum_peak_mib",
                                                "captum_rss_before_mib")}),
    "completeness": (completeness, {k: ".4f" for k in ("golden_gap_median", "golden_gap_max", "captum_gap_median")}),
    "fidelity": (fidelity_full_split, {"mean": ".5f", "min": ".4f"}),
}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--memory-case"]:
        name, method, backend, batch = argv[1:5]
        print(json.dumps(_peak_memory_case(name, method, backend, int(batch))))
        return
    unknown = set(argv) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section {sorted(unknown)[0]!r}; sections: {', '.join(SECTIONS)}")
    torch.set_num_threads(THREADS)
    meta = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
            f"{platform.processor() or platform.platform()}", "torch": torch.__version__,
            "command": "python -m benchmarks.golden " + " ".join(argv)}
    path = RESULTS / "golden.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    section_meta = result.setdefault("section_meta", {})
    for name in SECTIONS:  # sections of a file written before sections had their own meta
        if name in result and name not in section_meta and "meta" in result:
            section_meta[name] = result["meta"]
    result.pop("meta", None)
    print(f"date {meta['date']}; {meta['machine']}; torch {meta['torch']}\n")
    for name in argv or SECTIONS:
        fn, fmt = SECTIONS[name]
        result[name] = fn()
        section_meta[name] = meta
        print(f"{name}\n\n{_table(result[name], fmt)}\n", flush=True)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
