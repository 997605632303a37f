"""The ``xaihls`` command line. User mistakes print one line and exit with status 2."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Sequence

from xaihls.errors import XaiHlsError, XaiHlsWarning


def _shape(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must be C,H,W (or C,L) integers, got '{text}'") from None
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"input shape must be C,H,W, or C,L for a 1-D model, got '{text}'")
    return parts


def _methods(text: str) -> tuple[str, ...]:
    from xaihls.methods import METHODS

    if text == "all":
        return tuple(METHODS)
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _add_model_args(p: argparse.ArgumentParser, board: bool = True) -> None:
    p.add_argument("model", help="zoo:NAME, package.module:factory, or a torch.export .pt2 file")
    p.add_argument("--weights", help="state_dict file for a package.module:factory model")
    p.add_argument("--input-shape", type=_shape,
                   help="C,H,W, or C,L for a 1-D model (required for package.module:factory)")
    p.add_argument("--config", help="YAML file of per-layer formats (see docs/quantization.md)")
    if board:  # sweep takes --boards instead: a --board it ignored would mislead
        p.add_argument("--board", default="pynq-z2", help="board name or board YAML file (default pynq-z2)")
    p.add_argument("--board-path", action="append", default=[], help="extra folder of board YAML files")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xaihls",
        description="Compile a PyTorch CNN into a 16-bit FPGA accelerator for prediction and attribution.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="run the bundled digits model end to end and write heatmaps",
                       description="Calibrate, compile and attribute the bundled digits model's sample "
                                   "images with every method; write heatmaps and a fidelity summary; write the "
                                   "project and check the program interpreter, the C-simulation and the RTL "
                                   "(Verilator) against the golden model; write report.html.")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    p.add_argument("--board", default="pynq-z2", help="board (default pynq-z2)")
    p.add_argument("--rtl-images", type=int, default=1,
                   help="sample images the RTL simulation runs, every method each (default 1; 0 skips it: "
                        "cocotb simulates a few thousand cycles a second)")

    p = sub.add_parser("attribute", help="attribute images with one method on a backend",
                       description="Attribute image files (.png/.jpg, .npy, .pt) and write heatmaps and "
                                   "the attributions (.npy).")
    _add_model_args(p)
    p.add_argument("images", nargs="+", help="image files: .png/.jpg (scaled to [0,1]), .npy or .pt arrays")
    p.add_argument("--method", default="saliency", help="attribution method (default saliency)")
    p.add_argument("--target", type=int, help="class to explain (default: the predicted class)")
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    p.add_argument("--calibration", help="calibration batch (.npy/.pt/.npz) or folder of images; "
                                         "default: the model's bundled samples, else the images themselves")
    p.add_argument("--backend", default="golden", help="golden (default), program, csim or rtl")
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("plan", help="choose the engine tiling for a board and show its cost",
                       description="Calibrate the model, choose the smallest Tm x Tn engine and buffers whose "
                                   "workload is within a slack of the fastest engine that fits the board, and "
                                   "print per-job cycles, roofline bounds, MAC-array utilisation, latency per "
                                   "method, resources (the model fitted on yosys) and the engines weighed.")
    _add_model_args(p)
    p.add_argument("--methods", type=_methods, default="saliency,integrated_gradients",
                   help="methods in the workload, comma-separated or 'all' (default saliency,integrated_gradients)")
    p.add_argument("--calibration", help="calibration batch (.npy/.pt/.npz) or folder of images")
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    p.add_argument("--clock", type=float, help="clock in MHz (default: the board's)")
    p.add_argument("--cap", type=float, default=0.8, help="utilisation cap on every resource (default 0.8)")
    p.add_argument("--slack", type=float, default=0.10,
                   help="take the smallest engine within this fraction of the fastest's workload (default 0.10)")
    p.add_argument("--tiling", help="fix the array: TmxTn, e.g. 16x8")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser("compile", help="write the Vitis HLS project of a model for a board",
                       description="Calibrate and quantize the model, plan the engine for the board and write "
                                   "a Vitis HLS project: the engine C++, parameters.h, the Program image, a "
                                   "testbench with golden test vectors, build_prj.tcl, a Makefile and a README.")
    _add_model_args(p)
    p.add_argument("--out", required=True, help="project folder (empty, new, or an earlier xaihls project)")
    p.add_argument("--methods", type=_methods, default="all",
                   help="methods compiled in, comma-separated or 'all' (default all)")
    p.add_argument("--calibration", help="calibration batch (.npy/.pt/.npz) or folder of images; its first "
                                         "images are the testbench's")
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    p.add_argument("--tiling", help="fix the array: TmxTn, e.g. 16x8 (default: the planner's choice)")
    p.add_argument("--test-images", type=int, default=2, help="testbench images (default 2)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that holds no xaihls project (writes only the "
                        "project's files, deletes nothing)")

    p = sub.add_parser("csim", help="run an HLS project's C-simulation with g++",
                       description="Build an HLS project's testbench (tb/ and firmware/) with g++ and the ap_types "
                                   "headers, run every test case and compare with the golden model bit for bit. "
                                   "Exits 1 on any mismatch, naming the first differing tensor and element.")
    p.add_argument("project", help="project folder written by `xaihls compile`")

    p = sub.add_parser("sim", help="simulate a project's RTL engine on Verilator: bits and cycles",
                       description="Build the project's SystemVerilog engine (rtl/) with Verilator once (cached), run "
                                   "the test cases of tb_data/ through cocotb (DDR: a SystemVerilog AXI4 memory, "
                                   "rtl/sim/), compare with the golden model bit for bit, and report cycles per method "
                                   "and MAC-array utilisation next to the cycle model for the same DDR. Writes "
                                   "reports/verilator.json. Exits 1 on any mismatch.")
    p.add_argument("project", help="project folder written by `xaihls compile`")
    p.add_argument("--methods", help="comma-separated subset of the cases' methods (predict included)")
    p.add_argument("--images", type=int, help="only the first N test images")
    p.add_argument("--stalls", nargs="?", type=int, const=1, default=None, metavar="SEED",
                   help="random ready/valid stalls on every DDR channel, a quarter of the cycles (seed, default 1)")
    p.add_argument("--ddr-latency", type=int, default=None, metavar="N",
                   help="DDR latency in cycles, request to first data and last write to response "
                        "(default 24: an idle Zynq-7000 HP port to DDR3 at 100 MHz)")
    p.add_argument("--waves", action="store_true", help="write a VCD trace to rtl/sim/dump.vcd (a separate, slower build)")

    p = sub.add_parser("synth", help="synthesize a project's RTL engine with yosys: LUT, FF, DSP, BRAM",
                       description="yosys synth_xilinx (hierarchy kept) on rtl/ with the project's parameters; the "
                                   "counts next to the plan's estimate (the resource model fitted on yosys). A "
                                   "7-series board is counted as xc7; an UltraScale+ board as xc7 too, since yosys's "
                                   "xcup mapping packs no register or adder into a DSP48E2 (Vivado does). Writes "
                                   "reports/yosys_stat.txt. Takes about a minute for a small array, several for a "
                                   "large one.")
    p.add_argument("project", help="project folder written by `xaihls compile`")
    p.add_argument("--inference-only", action="store_true",
                   help="also synthesize the engine without the backward path and show the attribution overhead")
    p.add_argument("--family", choices=("xc7", "xcup"),
                   help="yosys synth_xilinx family (default xc7: the one the resource model is fitted in)")

    p = sub.add_parser("report", help="compare projects: resources, latency per method, utilisation",
                       description="One table over project folders (written by compile or sweep) with every "
                                   "source found: the cost-model estimate, yosys, Verilator, Vitis/Vivado reports.")
    p.add_argument("projects", nargs="+", help="project folders, or a sweep's --out folder (its sweep.json's points)")
    p.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--html", metavar="OUT", help="also write an HTML report with plots and heatmaps")

    p = sub.add_parser("sweep", help="compile and evaluate a model over several boards in parallel",
                       description="One project per board (and tiling) under --out, compiled with its estimate; with "
                                   "--synth each project is synthesized by yosys (as xaihls synth) and with --sim its "
                                   "first test image is simulated on Verilator with every method (as xaihls sim "
                                   "--images 1), each run a task of its own. Tasks run on a local process pool, or "
                                   "on a Dask cluster with --scheduler (its workers must see --out). Writes "
                                   "sweep.json and prints the estimate, yosys and Verilator figures of every point "
                                   "side by side; a failed task is one line naming its point (exit status 1), the "
                                   "other points go on.")
    _add_model_args(p, board=False)
    p.add_argument("--boards", required=True, help="comma-separated board names")
    p.add_argument("--board", dest="single_board", help=argparse.SUPPRESS)
    p.add_argument("--tilings", help="comma-separated TmxTn overrides, e.g. 8x8,16x8 (default: the planner's)")
    p.add_argument("--methods", type=_methods, default="saliency,integrated_gradients",
                   help="methods, comma-separated or 'all' (default saliency,integrated_gradients)")
    p.add_argument("--calibration", help="calibration batch (.npy/.pt/.npz) or folder of images")
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    p.add_argument("--out", required=True, help="folder for the projects and sweep.json")
    p.add_argument("--synth", action="store_true", help="also synthesize every project with yosys synth_xilinx "
                                                        "(about a minute at 4x4, several for a large array)")
    p.add_argument("--sim", action="store_true", help="also simulate every project's first test image on Verilator")
    p.add_argument("--tool-jobs", type=int, metavar="N",
                   help="yosys and Verilator runs at once on each machine, whatever the worker count (default: "
                        "half its cores, at least 1: a Verilator build compiles on every core, a yosys run takes "
                        "a core and 1-3 GB); a yosys or Verilator task waits for a free slot")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: local processes)")
    p.add_argument("--workers", type=int, help="local processes (default: one a core)")
    p.add_argument("--html", metavar="OUT", help="also write the combined HTML report")

    p = sub.add_parser("boards", help="list the boards (bundled and user)",
                       description="List bundled boards and those in XAIHLS_BOARD_PATH / --board-path.")
    p.add_argument("--board-path", action="append", default=[], help="extra folder of board YAML files")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, XaiHlsWarning):
            print(f"xaihls {args.command}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    shown = warnings.showwarning
    warnings.showwarning = one_line_warning
    try:
        return COMMANDS[args.command](args)
    except XaiHlsError as exc:
        print(f"xaihls {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown


def _console():
    from rich.console import Console

    # a pipe gets a wide table rather than rich's 80-column default
    return Console() if sys.stdout.isatty() else Console(width=160)


def cmd_boards(args) -> int:
    from rich.table import Table

    from xaihls.plan.boards import list_boards

    boards = list_boards(args.board_path or None)
    if args.json:
        print(json.dumps([{"name": b.name, "part": b.part, "family": b.family, "clock_mhz": b.clock_mhz,
                           "resources": b.resources.as_dict(), "ddr_bandwidth_gbps": b.ddr_bandwidth_gbps,
                           "file": str(b.path)} for b in boards], indent=2))
        return 0
    table = Table(title="boards")
    for col in ("name", "part", "MHz", "LUT", "FF", "DSP", "BRAM_18K", "URAM", "DDR GB/s"):
        table.add_column(col, justify="right" if col not in ("name", "part") else "left")
    for b in boards:
        r = b.resources
        table.add_row(b.name, b.part, f"{b.clock_mhz:g}", f"{r.lut:,}", f"{r.ff:,}", f"{r.dsp:,}",
                      f"{r.bram_18k:,}", f"{r.uram:,}", f"{b.ddr_bandwidth_gbps:g}")
    _console().print(table)
    return 0


def cmd_demo(args) -> int:
    from xaihls.demo import run_demo

    if args.rtl_images < 0:
        raise XaiHlsError(f"--rtl-images must be 0 or more, got {args.rtl_images}")
    run_demo(Path(args.out), steps=args.steps, board=args.board, console=_console(), rtl_images=args.rtl_images)
    return 0


def cmd_attribute(args) -> int:
    import numpy as np
    import torch

    import xaihls
    from xaihls.frontend.loaders import load_model
    from xaihls.io import load_images
    from xaihls.reports.heatmaps import save_heatmap

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise XaiHlsError(f"--out '{out}' is a file; give a folder for the heatmaps and arrays")
    loaded = load_model(args.model, args.weights, args.input_shape)
    shape = loaded.graph.data_shape
    classes = loaded.graph.num_classes
    if args.target is not None and not 0 <= args.target < classes:  # known before the slow part
        raise XaiHlsError(f"--target must be a class of {args.model}, 0..{classes - 1}; got {args.target}")
    images = load_images(args.images, shape)
    console = _console()
    calibration, source = _calibration_for(args, loaded, fallback=images)
    console.print(f"calibrating on {calibration.shape[0]} images from {source}")
    from xaihls.plan.boards import load_board

    board = load_board(args.board, args.board_path or None)
    with console.status("calibrating and compiling"):
        acc = xaihls.compile(loaded.graph, board=board, methods=(args.method,), calibration=calibration,
                             config=args.config, ig_steps=args.steps, backends=(args.backend,))
    with console.status(f"{args.method} on {images.shape[0]} images ({args.backend})"):
        result = acc.run(images, args.method, target=args.target, backend=args.backend, steps=args.steps)
    from xaihls.numerics import dequantize

    attr = dequantize(result.attribution, result.attribution_fmt).to(torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"{args.method}.npy", attr.numpy())
    for i, src in enumerate(args.images):
        png = save_heatmap(attr[i], out / f"{Path(src).stem}_{args.method}.png")
        console.print(f"{src}: class {int(result.target[i])} -> {png}")
    _warn_saturations(result.saturations, args.backend)
    return 0


def _warn_saturations(saturations: dict[str, int], backend: str) -> None:
    """One warning line when any value saturated on the run (any backend)."""
    if saturations:
        counts = ", ".join(f"{where} {n:,}" for where, n in saturations.items())
        warnings.warn(f"values saturated on the {backend} backend ({counts}): a format is too narrow for these "
                      "inputs; calibrate on typical inputs or widen it (docs/quantization.md)", XaiHlsWarning)


def _calibration_for(args, loaded, fallback=None):
    """The calibration batch a command uses, and where it came from."""
    from xaihls.io import load_calibration

    shape = loaded.graph.data_shape
    if args.calibration:
        return load_calibration(args.calibration, shape), args.calibration
    if args.model.startswith("zoo:"):
        from xaihls.models.zoo import get_zoo_model

        return get_zoo_model(args.model[4:]).calibration(), "the bundled calibration batch"
    if fallback is not None:
        return fallback, "the given images (pass --calibration for a representative batch)"
    raise XaiHlsError("give a calibration batch with --calibration (a .npy/.pt/.npz array or a folder of images)")


def _tiling(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        tm, tn = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise XaiHlsError(f"--tiling must look like 16x8 (Tm x Tn), got '{text}'") from None
    if tm < 1 or tn < 1:
        raise XaiHlsError(f"--tiling sizes must be positive, got '{text}'")
    if tm > 1024 or tn > 1024:
        raise XaiHlsError(f"--tiling sizes must be at most 1024, got '{text}'")
    return tm, tn


def cmd_plan(args) -> int:
    import xaihls
    from xaihls.frontend.loaders import load_model
    from xaihls.plan.boards import load_board
    from xaihls.plan.planner_v2 import describe, plan_v2

    loaded = load_model(args.model, args.weights, args.input_shape)
    board = load_board(args.board, args.board_path or None)
    calibration, _ = _calibration_for(args, loaded)
    console = _console()
    tiling = _tiling(args.tiling)
    with console.status("calibrating"):
        acc = xaihls.compile(loaded.graph, board=board, methods=args.methods, calibration=calibration,
                             config=args.config, ig_steps=args.steps, backends=("golden",))
    from xaihls.plan.capabilities import program_refusal

    why = program_refusal(acc.qgraph)
    if why:
        raise XaiHlsError(f"no engine plan for this network: {why}")
    with console.status(f"planning for {board.name}"):
        p = plan_v2(acc.qgraph, board, cap=args.cap, clock_mhz=args.clock, tiling=tiling, slack=args.slack)
    refusals = _refusals(p)
    if args.json:
        print(json.dumps({**p.summary(), "refusals": refusals}, indent=2))
    else:
        print(describe(p))
        for backend, why in refusals.items():
            print(f"the {backend} backend cannot run this network: {why}")
    return 0


def _refusals(p) -> dict[str, str]:
    """Why each backend cannot run a plan (the checks xaihls.compile makes)."""
    from xaihls.accelerator import BACKENDS, get_executor
    from xaihls.plan.capabilities import refusal

    found = {b: refusal(get_executor(b).capabilities, p) for b in BACKENDS}
    return {b: why for b, why in found.items() if why}


def cmd_compile(args) -> int:
    import xaihls
    from xaihls.project import check_project_folder, read_project
    from xaihls.writer import write_project
    from xaihls.frontend.loaders import load_model
    from xaihls.plan.boards import load_board

    tiling = _tiling(args.tiling)
    if args.test_images < 1:
        raise XaiHlsError(f"--test-images must be at least 1, got {args.test_images}")
    check_project_folder(args.out, args.force)  # before the slow part
    loaded = load_model(args.model, args.weights, args.input_shape)
    board = load_board(args.board, args.board_path or None)
    calibration, source = _calibration_for(args, loaded)
    console = _console()
    console.print(f"calibrating on {calibration.shape[0]} images from {source}")
    with console.status("calibrating"):
        acc = xaihls.compile(loaded.graph, board=board, methods=args.methods, calibration=calibration,
                             config=args.config, ig_steps=args.steps, tiling=tiling,
                             backends=("golden", "program", "csim"))  # the RTL where it can run the network
    with console.status(f"planning for {board.name} and writing the project"):
        out = write_project(acc, args.out, force=args.force, images=calibration[: args.test_images])
    e = acc.plan.engine
    console.print(f"wrote {out}: {board.name} ({board.part}) at {e.clock_mhz:g} MHz, Tm={e.tm} x Tn={e.tn}, "
                  f"methods {', '.join(acc.methods)}")
    console.print(f"C-simulation: xaihls csim {out}   (or make csim there); Vitis: vitis_hls -f build_prj.tcl")
    rtl = read_project(out).get("rtl", {})
    if rtl.get("unsupported"):
        console.print(f"no RTL engine for this network: {rtl['unsupported']}")
    else:
        console.print(f"RTL: xaihls sim {out}   (Verilator, cycles);   xaihls synth {out}   (yosys resources)")
    return 0


def cmd_csim(args) -> int:
    from xaihls.backends.hls.csim import run_testbench

    with _console().status(f"building and running the testbench of {args.project}"):
        code, output = run_testbench(args.project)
    sys.stdout.write(output)
    if code != 0:
        what = "does not match the golden model" if code == 1 else f"could not run (exit status {code})"
        print(f"xaihls csim: {args.project}: the C-simulation {what}", file=sys.stderr)
        return 1
    return 0


def cmd_sim(args) -> int:
    from rich.table import Table

    from xaihls.backends.rtl.v2.project import VERILATOR_REPORT, simulate_project

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip()) if args.methods else None
    console = _console()
    if args.ddr_latency is not None and not 1 <= args.ddr_latency <= 100_000:
        raise XaiHlsError(f"--ddr-latency must be 1..100000 cycles, got {args.ddr_latency}")
    if args.stalls is not None and args.stalls < 1:
        raise XaiHlsError(f"--stalls takes a seed of 1 or more, got {args.stalls}")
    stalls = False if args.stalls is None else args.stalls
    with console.status(f"Verilator: building (once) and simulating {args.project}"):
        report = simulate_project(args.project, methods, args.images, stalls, args.waves, args.ddr_latency)
    ddr = report["memory"]
    table = Table(title=f"{args.project}: RTL on Verilator at {report['clock_mhz']:g} MHz, DDR latency "
                        f"{ddr['ddr_latency']} cycles" + (f" (random stalls, seed {ddr['stall_seed']})" if stalls else ""))
    for col in ("method", "runs", "cycles (median)", "latency ms", "model cycles", "MAC utilisation", "bit-exact"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for method, m in report["methods"].items():
        model = m["model_cycles"]
        table.add_row(method, str(m["runs"]), f"{m['cycles']:,}", f"{m['latency_ms']:.3f}",
                      f"{model:,}" if model else "-",
                      "-" if m["mac_utilization"] is None else f"{m['mac_utilization']:.1%}",
                      "yes" if m["bit_exact"] else "[red]NO[/red]")
    console.print(table)
    speed = report["simulation"]
    console.print(f"simulated {speed['cycles']:,} cycles in {speed['run_s']:.2f} s: {speed['cycles_per_second']:,} "
                  f"cycles/s (simulator process {speed['process_s']:.1f} s; Verilator build "
                  + (f"{speed['build_s']:.0f} s)" if speed["build_s"] >= 1 else "cached)"))
    console.print(f"wrote {Path(args.project) / VERILATOR_REPORT}")
    if args.waves:
        console.print(f"waves: {Path(args.project) / 'rtl' / 'sim' / 'dump.vcd'}")
    bad = [c for c in report["cases"] if not c["bit_exact"]]
    for c in bad:
        why = f"status {c['status']:#x}" if c["status"] else "results differ from the golden model"
        print(f"xaihls sim: {args.project}: image {c['image']} {c['method']}: {why}", file=sys.stderr)
    return 1 if bad else 0


def cmd_synth(args) -> int:
    from rich.table import Table

    from xaihls.backends.rtl.v2.project import (COUNTED_AS_NOTE, XCUP_NOTE, YOSYS_REPORT, counting_family,
                                                load_project, synthesize_project, yosys_family)
    from xaihls.backends.rtl.v2.synth import extra_dsps

    project = load_project(args.project)  # a bad folder fails before the slow part
    estimate = project.estimate
    console = _console()
    family = args.family or counting_family(project)
    builds = [("full engine", False)] + ([("inference-only", True)] if args.inference_only else [])
    results = {}
    for label, inference in builds:
        with console.status(f"yosys synth_xilinx -family {family}: {label} (minutes)"):
            results[label] = synthesize_project(args.project, inference_only=inference, family=family)
    capacity = estimate.get("capacity", {})
    table = Table(title=f"{args.project}: yosys synth_xilinx ({next(iter(results.values())).family}), "
                        f"Tm x Tn = {project.params.TM} x {project.params.TN}")
    table.add_column("resource")
    for label in ("estimate", *results):
        table.add_column(label, justify="right")
    if args.inference_only:
        table.add_column("attribution overhead", justify="right")
    for key in ("LUT", "FF", "DSP", "BRAM_18K"):
        have = capacity.get(key)
        est = estimate["resources"][key]
        cells = [key, f"{est:,}" + (f" ({est / have:.0%})" if have else "")]
        for r in results.values():
            v = r.as_dict()[key]
            cells.append(f"{v:,}" + (f" ({v / have:.0%})" if have else ""))
        if args.inference_only:
            full, inf = (r.as_dict()[key] for r in results.values())
            cells.append(f"{full - inf:+,}" + (f" ({(full - inf) / inf:+.1%})" if inf else ""))
        table.add_row(*cells)
    console.print(table)
    full = results["full engine"]
    p = project.params
    console.print(f"DSP48: {p.TM} x {p.TN} MACs + {extra_dsps(p)} controller multiplier = "
                  f"{p.TM * p.TN + extra_dsps(p)} expected, {full.dsp} mapped; "
                  f"yosys took {sum(r.seconds for r in results.values()):.0f} s")
    if family == "xc7" and yosys_family(project) == "xcup":
        console.print(COUNTED_AS_NOTE)
    elif family == "xcup":
        console.print(XCUP_NOTE)
    console.print(f"wrote {project.folder / YOSYS_REPORT}")
    return 0


def _print_rows(rows, args) -> None:
    from xaihls.reports.compare import to_csv, to_table

    if args.csv:
        sys.stdout.write(to_csv(rows))
    elif args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        _console().print(to_table(rows))


def cmd_report(args) -> int:
    from xaihls.reports.compare import compare, project_folders
    from xaihls.reports.html import write_html

    folders = project_folders(args.projects)
    rows = compare(folders)
    _print_rows(rows, args)
    if args.html:
        out = write_html(rows, folders, args.html)
        print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_sweep(args) -> int:
    from xaihls.plan.boards import load_board
    from xaihls.reports.compare import to_table
    from xaihls.reports.html import write_html
    from xaihls.sweep import failures, points_for, sweep, sweep_rows, write_sweep

    if args.single_board is not None:
        raise XaiHlsError(f"sweep takes --boards (comma-separated), not --board: use --boards {args.single_board}")
    boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    for board in boards:
        load_board(board, args.board_path or None)  # an unknown board fails before any work starts
    tilings = [_tiling(t) for t in args.tilings.split(",")] if args.tilings else None
    if args.tool_jobs is not None and args.tool_jobs < 1:
        raise XaiHlsError(f"--tool-jobs must be at least 1, got {args.tool_jobs}")
    points = points_for(args.model, boards, args.out, tilings, weights=args.weights, input_shape=args.input_shape,
                        calibration=args.calibration, config=args.config, methods=args.methods, steps=args.steps,
                        board_path=tuple(args.board_path))
    console = _console()
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else "local processes"
    tasks = ["compile"] + (["yosys"] if args.synth else []) + (["Verilator"] if args.sim else [])

    def progress(point: str, task: str, record: dict) -> None:
        what = record["errors"].get(task) or "done"
        console.print(f"{point}: {task}: {what}", highlight=False, soft_wrap=True)

    with console.status(f"{len(points)} design points ({', '.join(tasks)}) on {where}"):
        records = sweep(points, scheduler=args.scheduler, workers=args.workers, synth=args.synth, sim=args.sim,
                        tool_jobs=args.tool_jobs, progress=progress)
    out = write_sweep(records, args.out)
    rows = sweep_rows(records)
    if rows:
        console.print(to_table(rows))
    console.print(f"wrote {out}")
    if args.html and rows:
        folders = [Path(r["project"]) for r in records if "project" in r]
        console.print(f"wrote {write_html(rows, folders, args.html)}")
    lines = failures(records)
    for line in lines:
        print(f"xaihls sweep: {line}", file=sys.stderr)
    return 1 if lines else 0


COMMANDS = {"demo": cmd_demo, "attribute": cmd_attribute, "plan": cmd_plan, "compile": cmd_compile,
            "csim": cmd_csim, "sim": cmd_sim, "synth": cmd_synth, "report": cmd_report, "sweep": cmd_sweep, "boards": cmd_boards}


if __name__ == "__main__":
    sys.exit(main())
