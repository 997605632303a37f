"""Golden model benchmarks: speed and peak memory against Captum float, IG completeness, fidelity.

Run ``python -m benchmarks.golden`` for every section, or name some: ``throughput``,
``portable_throughput``, ``portable_cpu``, ``kernel_paths``, ``conv_breakdown``, ``memory``,
``completeness``, ``fidelity``. It prints Markdown tables and updates those sections of benchmarks/results/golden.json (``section_meta`` records the date,
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
from xaihls.golden import kernels, native, stages
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.numerics import FixedFormat, dequantize
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
    """Images/s of golden, of golden without its native kernels (the PyTorch path it had before them) and of
    Captum float: same model, batch and CPU, runs interleaved (golden, before, Captum, golden, ...)."""
    rows = []
    for name in NETS:
        acc, module, x, target = _setup(name, batch)
        for method, steps in CASES:
            def before():
                with native.disabled():
                    return acc.attribute(x, method, target=target, steps=steps)

            g, b, c = _interleaved_medians([lambda: acc.attribute(x, method, target=target, steps=steps), before,
                                            lambda: captum_attribute(module, x, method, target, steps=steps or 32)],
                                           repeats if steps is None else max(3, repeats - 2))
            rows.append({"model": name, "method": f"IG-{steps}" if steps else method, "batch": batch,
                         "golden_img_s": batch / g, "captum_img_s": batch / c, "ratio": c / g,
                         "before_img_s": batch / b, "before_ratio": c / b})
    return rows


def portable_throughput(batch: int = 64, repeats: int = 5, clock=time.perf_counter) -> list[dict]:
    """``throughput`` with each of golden's product kernels for CPUs without AMX-INT8 pinned in turn (what
    such a CPU runs: the same fused stages; AVX-512 VNNI, AVX-VNNI or AVX2 int32 digit sums where the CPU
    has them, else the portable int64 sums), against Captum, digits and cifar_ref: one row per kernel, all
    of a case's kernels and Captum interleaved."""
    without_amx = [k for k in native.available_kernels() if k != "amx"]
    rows = []
    for name in NETS[:2]:
        acc, module, x, target = _setup(name, batch)
        for method, steps in CASES:
            def pinned(kernel):
                def run():
                    with native.force_kernel(kernel):
                        return acc.attribute(x, method, target=target, steps=steps)
                return run

            *times, c = _interleaved_medians([*map(pinned, without_amx),
                                              lambda: captum_attribute(module, x, method, target, steps=steps or 32)],
                                             repeats if steps is None else max(3, repeats - 2), clock)
            for kernel, g in zip(without_amx, times):
                rows.append({"model": name, "method": f"IG-{steps}" if steps else method, "batch": batch,
                             "kernel": kernel, "golden_img_s": batch / g, "captum_img_s": batch / c,
                             "ratio": c / g})
    return rows


def portable_cpu(batch: int = 64, repeats: int = 5) -> list[dict]:
    """``portable_throughput`` on one thread, in CPU seconds (images per CPU second): the work each side
    does, which other jobs on a shared machine change less than they change elapsed time on two threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return portable_throughput(batch, repeats, time.process_time)
    finally:
        torch.set_num_threads(threads)


def kernel_paths(batch: int = 64) -> list[dict]:
    """What runs each network: golden's fused native stages (and their product kernel), else the
    layer-by-layer PyTorch path with the exact product path it keeps for each product."""
    rows = []
    for name in NETS:
        acc, _, x, target = _setup(name, batch)
        plan = stages.plan(acc.qgraph)
        if plan is not None:
            kinds = [type(acc.qgraph.layers[st.layer].layer).__name__ + ("+ReLU" if st.relu is not None else "")
                     + ("+MaxPool" if st.pool is not None else "") for st in plan]
            rows.append({"model": name, "runs_on": f"native stages ({native.kernel_name()} products; usable: "
                         f"{', '.join(native.available_kernels())})",
                         "product": ", ".join(kinds), "input": "", "weight": "", "path": ""})
            continue
        kernels.forget_chosen_paths()
        for method, steps in CASES:
            acc.attribute(x, method, target=target, steps=steps)
        for key, path in kernels.chosen_paths().items():
            rows.append({"model": name, "runs_on": "layer by layer", "product": key[0],
                         "input": "x".join(map(str, key[1])), "weight": "x".join(map(str, key[2])), "path": path})
    return rows


BREAKDOWN_LAYERS = (  # name, in channels, out channels, size, max-pool after the ReLU
    ("cifar_ref conv1", 3, 16, 32, False), ("cifar_ref conv2", 16, 16, 32, True),
    ("cifar_ref conv4", 32, 32, 16, True), ("net64 conv2", 32, 64, 32, True), ("net64 conv4", 128, 128, 8, True))


def conv_breakdown(batch: int = 64, repeats: int = 7) -> list[dict]:
    """CPU milliseconds of one 3x3 convolution layer (with its ReLU, and 2x2 max-pool where the network has
    one), batch 64, one thread: float32 as Captum runs it (forward; backward from the layer's output
    gradient to its input), golden's fused native stage (forward: products, requantization, ReLU bits,
    pool taps; backward: routing, ReLU, transposed products, requantization), and golden's previous int8
    digit products alone (the products of the forward convolution, no requantization). One thread and CPU
    time, so that other jobs on a shared machine blur the figures less.
    """
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    for layer, c, o, hw, pool in BREAKDOWN_LAYERS:
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, 1 << 15, (batch, c, hw, hw), generator=gen)
        w = torch.randint(-(1 << 15), 1 << 15, (o, c, 3, 3), generator=gen)
        bias = torch.zeros(o, dtype=torch.int64)
        xf, wf = x.float().requires_grad_(False), w.float()
        geometry = {"out_hw": (hw, hw), "stride": (1, 1), "padding": (1, 1)}
        pooling = {"kernel": (2, 2), "stride": (2, 2), "out_hw": (hw // 2, hw // 2)} if pool else None
        out = native.Requant(20, FixedFormat(16, 4))
        x16 = stages.channels_last(x)
        y16, bits, index, _ = native.conv_forward(x16, w, bias, geometry, out, True, True, pooling)
        g16 = torch.randint(-(1 << 12), 1 << 12, y16.shape, generator=gen).to(torch.int16)
        grad = native.Requant(16, FixedFormat(16, 8))
        yf = F.relu(F.conv2d(xf, wf, padding=1))
        mask = yf > 0
        if pool:
            pooled, taps = F.max_pool2d(yf, 2, return_indices=True)
        gf = torch.randn(pooled.shape if pool else yf.shape, generator=gen)

        def f32_forward():
            z = F.relu(F.conv2d(xf, wf, padding=1))
            return F.max_pool2d(z, 2, return_indices=True) if pool else z

        def f32_backward():
            g = F.max_unpool2d(gf, taps, 2, output_size=yf.shape[2:]) if pool else gf
            return F.conv_transpose2d(g * mask, wf, padding=1)

        def digits():
            with kernels.force_path("digits"):
                return kernels.conv2d(x, w, (1, 1), (1, 1), (16, 16))

        f32f, f32b, fwd, bwd, dig = _interleaved_medians(
            [f32_forward, f32_backward,
             lambda: native.conv_forward(x16, w, bias, geometry, out, True, True, pooling),
             lambda: native.conv_backward(g16, w, geometry, (hw, hw), grad, True, 0, bits, pooling, index,
                                          native.Requant(0, FixedFormat(16, 8)) if pool else None),
             digits], repeats, time.process_time)
        rows.append({"layer": layer + (" +ReLU+pool" if pool else " +ReLU"), "input": f"{batch}x{c}x{hw}x{hw}",
                     "out_channels": o, "f32_forward_ms": f32f * 1e3, "f32_backward_ms": f32b * 1e3,
                     "golden_forward_ms": fwd * 1e3, "golden_backward_ms": bwd * 1e3,
                     "previous_digit_products_ms": dig * 1e3})
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
    "throughput": (throughput, {"golden_img_s": ".1f", "captum_img_s": ".1f", "ratio": ".2f", "before_img_s": ".1f",
                                "before_ratio": ".2f"}),
    "portable_throughput": (portable_throughput, {"golden_img_s": ".1f", "captum_img_s": ".1f", "ratio": ".2f"}),
    "portable_cpu": (portable_cpu, {"golden_img_s": ".1f", "captum_img_s": ".1f", "ratio": ".2f"}),
    "kernel_paths": (kernel_paths, {}),
    "conv_breakdown": (conv_breakdown, {k: ".2f" for k in ("f32_forward_ms", "f32_backward_ms", "golden_forward_ms",
                                                           "golden_backward_ms", "previous_digit_products_ms")}),
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
