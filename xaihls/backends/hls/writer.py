"""The Vitis HLS project of an Accelerator: fixed engine library + generated configuration.

A project holds the engine library and top (copied unchanged from ``xaihls/hls_templates``),
the one generated header ``parameters.h``, the Program's DDR image, a C++ testbench with test
vectors from the golden model, a Vitis HLS tcl script, a g++ Makefile, a README,
``estimate.json`` (the plan's figures) and ``project.json`` (what it was made from; also the
marker that the folder is ours). ``rtl/`` holds the same engine in SystemVerilog with its
parameters for this network (``xaihls.backends.rtl.project``), unless the RTL refuses the
Program, which project.json then says.

Guarantees: the same accelerator and images give byte-identical files (no timestamps, sorted
keys); a non-empty folder without our ``project.json`` is refused unless ``force=True``; no
file is ever deleted, and only the project's own files are written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xaihls.backends.hls.templates import CSIM_WRAPPER, ENGINE_SOURCES, PARAMETERS, read_template, render
from xaihls.errors import XaiHlsError
from xaihls.methods import METHOD_CODES, PREDICT_CODE, ig_constants
from xaihls.plan.program import Flag, Op, conv_input_cols, conv_input_rows

PROJECT_FILE = "project.json"
ESTIMATE_FILE = "estimate.json"
PROJECT_KIND = "xaihls-hls-project"
PROJECT_FORMAT = 1
TOP = "xaihls_top"
HLS_PROJECT_NAME = "xaihls_prj"
DDR_IMAGE = "firmware/weights/ddr_image.bin"
TEST_IMAGES = 2
HLS_DATA_WIDTH = 16  # the top's DDR port moves int16 elements


def engine_parameters(plan) -> dict[str, dict[str, tuple[int, str]]]:
    """The values of parameters.h, by section: name -> (value, what it is).

    Loop bounds are the largest count any descriptor of the Program asks for, so every
    loop of the engine has a static bound and the engine refuses a larger Program.
    """
    e = plan.engine
    program = plan.program
    h = program.header
    if h.data_width != HLS_DATA_WIDTH:
        raise XaiHlsError(f"the HLS engine moves {HLS_DATA_WIDTH}-bit data; this network is quantized to "
                          f"{h.data_width} bits (set width: 16 in the quantization config)")
    jobs = program.forward + program.backward
    b = dict(tiles=1, taps=1, in_words=1, positions=1, mac=1, pooled=1, window=1, elems=1)
    for d in jobs:
        if d.op == Op.CONV:
            has_taps = d.ky > 0 and d.kx > 0
            taps = d.ky * d.kx if has_taps else 1
            b["tiles"] = max(b["tiles"], d.m_tiles * d.row_tiles * (d.n_tiles if has_taps else 1))
            b["taps"] = max(b["taps"], taps)
            if has_taps:
                b["in_words"] = max(b["in_words"], conv_input_rows(d, d.tile_rows) * conv_input_cols(d))
            b["positions"] = max(b["positions"], d.tile_rows * d.ow)
            b["mac"] = max(b["mac"], taps * d.tile_rows * d.ow)
            if d.flags & Flag.POOL:
                b["pooled"] = max(b["pooled"], ((d.tile_rows - d.pool_kh) // d.pool_sh + 1) * d.pool_ow)
                b["window"] = max(b["window"], d.pool_kh * d.pool_kw)
        elif d.op in (Op.MAXPOOL, Op.AVGPOOL):
            b["elems"] = max(b["elems"], d.n * d.pool_oh * d.pool_ow)
            b["window"] = max(b["window"], d.pool_kh * d.pool_kw)
        elif d.op in (Op.MAXPOOL_BWD, Op.AVGPOOL_BWD):
            b["elems"] = max(b["elems"], d.n * d.ih * d.iw)
            b["window"] = max(b["window"], d.pool_kh * d.pool_kw)
        elif d.op in (Op.RELU, Op.SEED):
            b["elems"] = max(b["elems"], d.n)
    # The planner sized the buffers for these; a violation is a planner bug, not a user mistake.
    assert b["in_words"] <= e.in_depth and b["positions"] <= e.out_depth and b["taps"] <= e.w_depth, (b, e)
    return {
        "engine": {
            "TM": (e.tm, "output channels (accumulator lanes) of the MAC array"),
            "TN": (e.tn, "input channels of the MAC array"),
            "IN_DEPTH": (e.in_depth, "words per input-buffer bank"),
            "OUT_DEPTH": (e.out_depth, "accumulators per output bank"),
            "W_DEPTH": (e.w_depth, "kernel taps per weight bank"),
            "MASK_BITS": (e.mask_bits, "ReLU bits kept between the passes"),
            "INDEX_ENTRIES": (e.index_entries, "max-pool indices kept between the passes"),
            "INDEX_BITS": (max(e.index_bits, 1), "bits of one max-pool index"),
            "DATA_WIDTH": (h.data_width, "bits of weights, activations and gradients"),
        },
        "bounds": {
            "MAX_JOBS": (max(h.n_forward, h.n_backward, 1), "descriptors in the longer list"),
            "MAX_TILES": (b["tiles"], "tiles of one CONV job (m-tiles x row tiles x n-tiles)"),
            "MAX_TAPS": (b["taps"], "kernel taps of one CONV job"),
            "MAX_IN_WORDS": (b["in_words"], "input-tile words per bank"),
            "MAX_POSITIONS": (b["positions"], "output positions of one row tile"),
            "MAX_MAC_STEPS": (b["mac"], "MAC-loop iterations of one tile (taps x positions)"),
            "MAX_POOLED": (b["pooled"], "pooled outputs of one row tile (fused max-pool)"),
            "MAX_POOL_WINDOW": (b["window"], "positions of one pooling window"),
            "MAX_ELEMS": (b["elems"], "elements of one pool, ReLU or seed job"),
        },
        "program": {
            "INPUT_ELEMS": (h.input_elems, f"input elements ({h.in_c} x {h.in_h} x {h.in_w})"),
            "CLASSES": (h.classes, "logits"),
            "TOTAL_BYTES": (h.total_bytes, "bytes of DDR the Program uses"),
            "DDR_WORDS": (h.total_bytes // 2, "the same in int16 words"),
        },
    }


def _constexpr_block(section: dict[str, tuple[int, str]]) -> str:
    width = max(len(name) for name in section)
    return "\n".join(f"constexpr int {name:<{width}} = {value};  // {what}" for name, (value, what) in section.items())


def parameters_header(plan) -> str:
    """The generated ``firmware/parameters.h`` of ``plan``."""
    import xaihls

    params = engine_parameters(plan)
    qg = plan.program.qgraph
    graph = qg.graph
    board = plan.board
    provenance = (
        f"// Network: input {'x'.join(map(str, graph.input_shape))}, {graph.num_classes} classes, "
        f"{len(graph.layers)} layers.\n"
        f"// Board: {board.name} ({board.part}) at {plan.engine.clock_mhz:g} MHz. Written by xaihls {xaihls.__version__}."
    )
    return render(read_template(PARAMETERS), {
        "provenance": provenance,
        "engine": _constexpr_block(params["engine"]),
        "bounds": _constexpr_block(params["bounds"]),
        "program": _constexpr_block(params["program"]),
    })


def firmware_files(plan) -> dict[str, bytes]:
    """What compiles into the engine: the fixed sources, the C-simulation entry, parameters.h."""
    files = {rel: read_template(rel).encode() for rel in ENGINE_SOURCES + (CSIM_WRAPPER,)}
    files[PARAMETERS] = parameters_header(plan).encode()
    return files


def _i16(t) -> bytes:
    return np.ascontiguousarray(np.asarray(t, dtype=np.int64).reshape(-1).astype("<i2")).tobytes()


def _i32(values) -> bytes:
    return np.asarray(list(values), dtype="<i4").tobytes()


def default_test_images(input_shape: tuple[int, int, int], count: int = TEST_IMAGES) -> torch.Tensor:
    """Deterministic images in [0, 1) for projects written without given images."""
    return torch.rand((count, *input_shape), generator=torch.Generator().manual_seed(0))


def test_vectors(acc, images=None) -> tuple[dict[str, bytes], int]:
    """``tb_data/`` files: images, IG table, the golden results of predict and every compiled method.

    Returns the files and the number of cases.
    """
    from xaihls.golden import model as golden

    qg = acc.qgraph
    x = golden.check_batch(qg, default_test_images(qg.graph.input_shape) if images is None else images,
                           "test images")
    x_q = golden.quantize_input(qg, x, golden.Saturations())
    steps, rule = qg.ig_steps, qg.ig_rule
    files = {"tb_data/ig_table.bin": _i32(ig_constants(steps, rule, qg.width).table())}
    lines = ["# xaihls testbench cases, one run of xaihls_top each (files are little-endian, in tb_data/):",
             "# image image_file method method_code target steps ig_table baseline logits result attribution",
             f"# integrated gradients: {steps} steps, rule {rule}; baseline '-' is zeros; target -1 is the predicted class"]
    predicted = golden.predict(qg, x)
    for k in range(x.shape[0]):
        files[f"tb_data/image{k}.bin"] = _i16(x_q[k])
    runs = [("predict", PREDICT_CODE, predicted)]
    runs += [(m, METHOD_CODES[m], golden.attribute(qg, x, m)) for m in acc.methods]
    for name, code, r in runs:
        for k in range(x.shape[0]):
            stem = f"image{k}_{name}"
            logits = r.logits[k]
            first_max = int(torch.argmax(logits))  # torch returns the first maximum
            files[f"tb_data/{stem}_logits.bin"] = _i16(logits)
            files[f"tb_data/{stem}_result.bin"] = _i32([first_max, int(r.target[k])])
            attribution = "-"
            if r.attribution is not None:
                attribution = f"{stem}_attribution.bin"
                files[f"tb_data/{attribution}"] = _i16(r.attribution[k])
            lines.append(f"{k} image{k}.bin {name} {code} -1 {steps} ig_table.bin - {stem}_logits.bin "
                         f"{stem}_result.bin {attribution}")
    files["tb_data/cases.txt"] = ("\n".join(lines) + "\n").encode()
    return files, len(runs) * x.shape[0]


def _clock_period_ns(clock_mhz: float) -> str:
    return f"{1000.0 / clock_mhz:.6g}"


def project_description(acc, cases: int, files: list[str]) -> dict[str, Any]:
    """The contents of project.json."""
    import xaihls
    from xaihls.golden.model import attribution_format

    plan = acc.plan
    e = plan.engine
    qg = acc.qgraph
    h = plan.program.header
    return {
        "kind": PROJECT_KIND,
        "format": PROJECT_FORMAT,
        "generator": "xaihls",
        "xaihls_version": xaihls.__version__,
        "top": TOP,
        "board": {"name": acc.board.name, "part": acc.board.part, "family": acc.board.family},
        "part": acc.board.part,
        "clock_mhz": e.clock_mhz,
        "clock_period_ns": float(_clock_period_ns(e.clock_mhz)),
        "tiling": {"tm": e.tm, "tn": e.tn, "in_depth": e.in_depth, "out_depth": e.out_depth, "w_depth": e.w_depth},
        "kept_state": {"mask_bits": e.mask_bits, "index_entries": e.index_entries, "index_bits": e.index_bits},
        "methods": list(qg.methods),
        "method_codes": {"predict": PREDICT_CODE, **{m: METHOD_CODES[m] for m in qg.methods}},
        "integrated_gradients": {"steps": qg.ig_steps, "rule": qg.ig_rule},
        "network": {"input_shape": list(qg.graph.input_shape), "classes": qg.graph.num_classes,
                    "layers": [layer.name for layer in qg.graph.layers]},
        "formats": {
            "input": str(qg.input_fmt),
            "logits": str(qg.logits_fmt),
            "attribution": {m: str(attribution_format(qg, m)) for m in qg.methods},
        },
        "program": {
            "version": h.version,
            "total_bytes": h.total_bytes,
            "image_bytes": len(plan.program.image),
            "image_sha256": hashlib.sha256(plan.program.image).hexdigest(),
            "regions": [{"name": r.name, "addr": r.addr, "size": r.size} for r in plan.program.regions],
        },
        "testbench": {"cases": cases},
        "files": files,
    }


def project_files(acc, images=None) -> dict[str, bytes]:
    """Every file of the project, by relative path (project.json included)."""
    from xaihls.backends.hls.csim import ap_types_dir

    plan = acc.plan
    e = plan.engine
    files = firmware_files(plan)
    files[DDR_IMAGE] = plan.program.image
    files["tb/xaihls_tb.cpp"] = read_template("tb/xaihls_tb.cpp").encode()
    tb, cases = test_vectors(acc, images)
    files.update(tb)
    settings = "\n".join([
        f"set project_name {HLS_PROJECT_NAME}",
        f"set top {TOP}",
        f"set part {{{acc.board.part}}}",
        f"# {acc.board.name}: {e.clock_mhz:g} MHz",
        f"set clock_period {_clock_period_ns(e.clock_mhz)}",
    ])
    files["build_prj.tcl"] = render(read_template("build_prj.tcl"), {"settings": settings}).encode()
    try:
        ap_types = f"AP_TYPES_DIR ?= {ap_types_dir()}"
    except XaiHlsError:  # no headers here: the project is still complete; make asks for the folder
        ap_types = "AP_TYPES_DIR ?= $(error set AP_TYPES_DIR to a folder with ap_int.h, e.g. Vitis's include/)"
    files["Makefile"] = render(read_template("Makefile"), {"ap_types": ap_types}).encode()
    qg = acc.qgraph
    summary = "\n".join([
        "| | |",
        "|---|---|",
        f"| board | {acc.board.name} (`{acc.board.part}`), {e.clock_mhz:g} MHz ({_clock_period_ns(e.clock_mhz)} ns) |",
        f"| network | input {' x '.join(map(str, qg.graph.input_shape))}, {qg.graph.num_classes} classes, "
        f"{len(qg.graph.layers)} layers |",
        f"| MAC array | Tm = {e.tm} x Tn = {e.tn} |",
        f"| buffers | input {e.in_depth} words/bank, output {e.out_depth} accumulators/bank, "
        f"weights {e.w_depth} taps/MAC |",
        f"| kept between passes | {e.mask_bits} ReLU bits, {e.index_entries} pool indices of {e.index_bits} bits |",
        f"| methods | {', '.join(qg.methods)} (integrated gradients: {qg.ig_steps} steps, {qg.ig_rule}) |",
        f"| testbench | {cases} cases in `tb_data/` |",
    ])
    files["README.md"] = render(read_template("README.md"), {"summary": summary}).encode()
    from xaihls.backends.rtl import project as rtl

    rtl_unsupported = acc.refusals.get("rtl")
    if rtl_unsupported is None:  # the same engine in SystemVerilog (xaihls sim / xaihls synth)
        files.update(rtl.project_files(plan))
    # the board flow: Vivado block design and bitstream (Zynq) or a v++ link (Alveo); not run here
    from xaihls.backends.board import board_files

    try:
        files.update(board_files(acc.board, axi_data_bits=acc.board.axi_data_bits, clock_mhz=e.clock_mhz))
        board_flow = None
    except XaiHlsError as exc:
        board_flow = str(exc)
    # the plan's figures, for `xaihls report` (estimate rows, roofline)
    files[ESTIMATE_FILE] = (json.dumps(plan.summary(), indent=2, sort_keys=True) + "\n").encode()
    names = sorted(set(files) | {PROJECT_FILE})
    description = project_description(acc, cases, names)
    description["rtl"] = {"unsupported": rtl_unsupported} if rtl_unsupported else {"params": "rtl/params.json"}
    description["board_flow"] = {"unsupported": board_flow} if board_flow else {
        "folder": "vitis" if any(name.startswith("vitis/") for name in names) else "vivado"}
    files[PROJECT_FILE] = (json.dumps(description, indent=2, sort_keys=True) + "\n").encode()
    return dict(sorted(files.items()))


def read_project(folder: str | Path) -> dict[str, Any] | None:
    """The project.json of an xaihls project in ``folder``, or None if it is not one."""
    path = Path(folder) / PROJECT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("generator") == "xaihls" and data.get("kind") == PROJECT_KIND:
        return data
    return None


def check_project_folder(out_dir: str | Path, force: bool = False) -> Path:
    """``out_dir`` if a project may be written there: new, empty, an xaihls project, or forced."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise XaiHlsError(f"'{out}' is a file; give a folder for the HLS project")
    if out.is_dir() and any(out.iterdir()) and read_project(out) is None and not force:
        raise XaiHlsError(f"'{out}' is not empty and holds no xaihls project ({PROJECT_FILE}); "
                          f"choose an empty folder, or force to write the project's files next to what is there")
    return out


def write_project(accelerator, out_dir: str | Path, force: bool = False, images=None) -> Path:
    """Write the Vitis HLS project of ``accelerator`` into ``out_dir``; returns the folder.

    ``images`` (N, C, H, W): the testbench's images (default: two fixed random images).
    Refuses (XaiHlsError) a non-empty folder that holds no xaihls project unless ``force``;
    writes only the project's files and deletes nothing.
    """
    out = check_project_folder(out_dir, force)
    files = project_files(accelerator, images)
    for rel, data in files.items():
        path = out / rel
        if path.is_dir():
            raise XaiHlsError(f"'{path}' is a folder; the HLS project writes a file there")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    return out
