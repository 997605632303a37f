"""The RTL half of an Engine v2 project folder: what ``xaihls sim DIR`` and ``xaihls synth DIR`` work on.

``xaihls compile`` writes ``DIR/rtl/`` next to the Vitis HLS files: the engine's fixed
SystemVerilog (copied unchanged from ``xaihls/hls_templates/rtl_v2``), its lint waivers,
``sources.f`` (compile order), the simulation top and DDR model (``rtl/sim/``, never
synthesized) and the only per-network part, the top's parameters (``params.json``). The
Program's DDR image and the test vectors (images and the golden model's results) are the HLS
project's own, shared by both engines.
"""

from __future__ import annotations

import json

from xaihls.backends.rtl.v2.params import RTL_DIR, SOURCES, rtl_params

RTL_FOLDER = "rtl"
PARAMS_FILE = "rtl/params.json"
SIM_FILES = {"xaihls_sim_top.sv": RTL_DIR / "sim" / "xaihls_sim_top.sv",
             "xaihls_sim_top.vlt": RTL_DIR / "sim" / "xaihls_sim_top.vlt",
             "xaihls_sim_axi_ram.sv": RTL_DIR.parent / "rtl" / "sim" / "xaihls_sim_axi_ram.sv"}
EXTRA_FILES = ("xaihls_lint.vlt",)


def project_files(plan) -> dict[str, bytes]:
    """``rtl/`` files of a project for ``plan`` (a PlanV2)."""
    params = rtl_params(plan.program, plan.engine)
    files = {f"{RTL_FOLDER}/{name}": (RTL_DIR / name).read_bytes() for name in (*SOURCES, *EXTRA_FILES)}
    files[f"{RTL_FOLDER}/sources.f"] = ("\n".join(SOURCES) + "\n").encode()
    for name, path in SIM_FILES.items():
        files[f"{RTL_FOLDER}/sim/{name}"] = path.read_bytes()
    files[PARAMS_FILE] = (json.dumps(params.as_dict(), indent=1, sort_keys=True) + "\n").encode()
    return files
