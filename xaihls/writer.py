"""A project folder for an Accelerator: the Vitis HLS project, the RTL, the board flow, the plan.

What goes where (``xaihls.project`` owns the names): the Engine v2 HLS C++ with its Program's
DDR image, testbench and test vectors, tcl and Makefile (``xaihls.backends.hls.v2``); the same
engine in SystemVerilog with its parameters (``xaihls.backends.rtl.v2.project``); the board flow
at the engine's AXI width (``xaihls.backends.board``; refused boards say so in project.json);
``estimate.json`` (the plan's figures: resources by the model fitted on yosys, cycles by the
cycle model held to Verilator) and ``project.json``.

Guarantees: the same accelerator and images give byte-identical files (no timestamps, sorted
keys); a non-empty folder without our ``project.json`` is refused unless ``force=True``; no
file is ever deleted, and only the project's own files are written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from xaihls.errors import XaiHlsError
from xaihls.methods import METHOD_CODES, PREDICT_CODE
from xaihls.project import (DDR_IMAGE, ESTIMATE_FILE, PROJECT_FILE, PROJECT_FORMAT, PROJECT_KIND,
                            check_project_folder, clock_period_ns, write_files)

TOP = "xaihls_top"


def project_description(acc, cases: int, files: list[str]) -> dict[str, Any]:
    """The contents of project.json (what the host driver and the CLI verbs read)."""
    from xaihls.golden.model import attribution_format
    from xaihls.version import __version__

    plan = acc.plan
    e = plan.engine
    qg = acc.qgraph
    h = plan.program.header
    return {
        "kind": PROJECT_KIND,
        "format": PROJECT_FORMAT,
        "generator": "xaihls",
        "xaihls_version": __version__,
        "top": TOP,
        "board": {"name": acc.board.name, "part": acc.board.part, "family": acc.board.family},
        "part": acc.board.part,
        "clock_mhz": e.clock_mhz,
        "clock_period_ns": float(clock_period_ns(e.clock_mhz)),
        "axi_data_bits": e.axi_data_bits,
        "tiling": {"tm": e.tm, "tn": e.tn, "in_depth": e.in_depth, "out_depth": e.out_depth, "w_depth": e.w_depth},
        "kept_state": {"mask_bits": e.mask_bits, "index_entries": e.index_entries, "index_bits": e.index_bits},
        "methods": list(qg.methods),
        "method_codes": {"predict": PREDICT_CODE, **{m: METHOD_CODES[m] for m in qg.methods}},
        "integrated_gradients": {"steps": qg.ig_steps, "rule": qg.ig_rule},
        "network": {"input_shape": list(qg.graph.input_shape), "sample_shape": list(qg.graph.data_shape),
                    "classes": qg.graph.num_classes,
                    "layers": [layer.name for layer in qg.graph.layers]},
        "formats": {
            "input": str(qg.input_fmt),
            "logits": str(qg.logits_fmt),
            "attribution": {m: str(attribution_format(qg, m)) for m in qg.methods},
        },
        "program": {
            "version": h["version"],
            "total_bytes": h["total_bytes"],
            "image_bytes": len(plan.program.image),
            "image_sha256": hashlib.sha256(plan.program.image).hexdigest(),
            "regions": [{"name": r.name, "addr": r.addr, "size": r.size} for r in plan.program.regions],
        },
        "testbench": {"cases": cases},
        "files": files,
    }


def project_files(acc, images=None) -> dict[str, bytes]:
    """Every file of the project, by relative path (project.json included)."""
    from xaihls.backends.board import board_files
    from xaihls.backends.hls import v2 as hls
    from xaihls.backends.rtl.v2 import project as rtl

    plan = acc.plan
    e = plan.engine
    files = hls.project_files(acc.qgraph, plan, images)
    assert DDR_IMAGE in files
    cases = sum(1 for line in files["tb_data/cases.txt"].decode().splitlines() if line and not line.startswith("#"))
    rtl_refused = acc.refusals.get("rtl")
    if rtl_refused is None:  # the same engine in SystemVerilog (xaihls sim / xaihls synth)
        files.update(rtl.project_files(plan))
    # the board flow: Vivado block design and bitstream (Zynq) or a v++ link (Alveo); not run here
    try:
        files.update(board_files(acc.board, axi_data_bits=e.axi_data_bits, clock_mhz=e.clock_mhz))
        board_flow = None
    except XaiHlsError as exc:
        board_flow = str(exc)
    # the plan's figures, for `xaihls report` and `xaihls synth` (estimate rows, roofline)
    files[ESTIMATE_FILE] = (json.dumps(plan.summary(), indent=2, sort_keys=True) + "\n").encode()
    names = sorted(set(files) | {PROJECT_FILE})
    description = project_description(acc, cases, names)
    description["rtl"] = {"unsupported": rtl_refused} if rtl_refused else {"params": rtl.PARAMS_FILE}
    description["board_flow"] = {"unsupported": board_flow} if board_flow else {
        "folder": "vitis" if any(name.startswith("vitis/") for name in names) else "vivado"}
    files[PROJECT_FILE] = (json.dumps(description, indent=2, sort_keys=True) + "\n").encode()
    return dict(sorted(files.items()))


def write_project(accelerator, out_dir: str | Path, force: bool = False, images=None) -> Path:
    """Write the project of ``accelerator`` into ``out_dir``; returns the folder.

    ``images`` (N, C, H, W): the testbench's images (default: two fixed random images).
    Refuses (XaiHlsError) a non-empty folder that holds no xaihls project unless ``force``;
    writes only the project's files and deletes nothing.
    """
    out = check_project_folder(out_dir, force)
    return write_files(out, project_files(accelerator, images))
