"""The program executor (xaihls/sim/interpreter.py) of this tree against an earlier commit's: each zoo model compiled
for pynq-z2, one image run on both interpreters for predict, saliency and grad_cam (runs interleaved, the median of
``--repeats``), whose results must be the same to the bit.

Run: ``python -m benchmarks.program_speed [--against REV] [--models ...] [--repeats 3] [--torchvision DIR --tv
NAME ...]`` (a few minutes; ``REV``'s xaihls/sim/interpreter.py loaded beside this tree's; ``--tv``: torchvision's
definitions of benchmarks/tv_models.py at its image sizes, from the wheel unpacked at DIR, one repeat and predict and
saliency only, as they are slow). Results in benchmarks/results/program_speed.json.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time

from benchmarks.plan_speed import earlier_module, git, save_result

METHODS = (None, "saliency", "grad_cam")
MODELS = ("cifar_ref", "resnet8", "ds_cnn", "mobilenet_v2_tiny", "vww_mobilenet", "digits_resnet")


def _models(args):
    """(name, build, input shape, 17 images: 16 to calibrate on and one to run) of each model asked for."""
    import torch

    from xaihls.models.zoo import get_zoo_model

    for name in args.models:
        entry = get_zoo_model(name)
        yield name, entry.build, entry.input_shape, entry.calibration()[:17]
    if args.tv:
        from benchmarks.tv_models import LOADER, MODELS

        exec(LOADER, {"folder": args.torchvision})
    for name in args.tv:
        module, factory, kwargs, side = MODELS[name]
        torch.manual_seed(0)
        build = lambda m=module, f=factory, k=kwargs: getattr(  # noqa: E731
            importlib.import_module("torchvision.models." + m), f)(**k).eval()
        yield name, build, (3, side, side), torch.rand(17, 3, side, side, generator=torch.Generator().manual_seed(0))


def main() -> None:
    import torch

    import xaihls
    from xaihls.sim import interpreter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default="HEAD~1", help="the earlier commit (default HEAD~1)")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torchvision", metavar="DIR", help="torchvision's wheel unpacked (for --tv)")
    ap.add_argument("--tv", nargs="*", default=[], metavar="NAME", help="benchmarks.tv_models models")
    args = ap.parse_args()
    rev = git("rev-parse", "--short", args.against)
    rows = []
    now = interpreter.run_batch
    with tempfile.TemporaryDirectory() as folder:
        before = earlier_module(rev, "xaihls/sim/interpreter.py", folder)
        print(f"| model | engine | run | {rev} (s) | this tree (s) | ratio |")
        print("|---|---|---|---|---|---|")
        for name, build, shape, calibration in _models(args):
            acc = xaihls.compile(build(), shape, calibration=calibration[:16], methods=("saliency", "grad_cam"),
                                 backends=("golden", "program"))
            x = calibration[16:17]
            engine = f"{acc.plan.engine.tm}x{acc.plan.engine.tn}"
            tv = name in args.tv
            for method in METHODS[:2] if tv else METHODS:
                seconds = {"before": [], "now": []}
                results = {}
                for _ in range(1 if tv else args.repeats):
                    for which, run_batch in (("before", before.run_batch), ("now", now)):
                        interpreter.run_batch = run_batch  # InterpreterExecutor.run calls the module's
                        try:
                            t = time.perf_counter()
                            r = acc.run(x, method, backend="program")
                            seconds[which].append(time.perf_counter() - t)
                        finally:
                            interpreter.run_batch = now
                        results[which] = r
                a, b = results["before"], results["now"]
                same = (torch.equal(a.logits, b.logits) and a.saturations == b.saturations
                        and (method is None or torch.equal(a.attribution, b.attribution)))
                if not same:
                    raise SystemExit(f"{name} {method or 'predict'}: the interpreters disagree")
                old, new = statistics.median(seconds["before"]), statistics.median(seconds["now"])
                rows.append({"model": name, "engine": engine, "run": method or "predict", "before_s": seconds["before"],
                             "now_s": seconds["now"], "same": True})
                print(f"| {name} | {engine} | {method or 'predict'} | {old:.2f} | {new:.2f} | {new / old:.2f}x |",
                      flush=True)
    save_result("program_speed", {"before": rev, "board": "pynq-z2", "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
