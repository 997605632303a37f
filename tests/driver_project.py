"""A v2 project folder as the host driver reads it: the Program's DDR image and the project.json
fields xaihls.driver.Device uses (tests/test_driver.py, hw_tests/test_rtl_v2_driver.py)."""

from __future__ import annotations

import json
from pathlib import Path

from xaihls.driver import DDR_IMAGE
from xaihls.golden.model import attribution_format


def write_driver_project(folder: Path, qg, program) -> Path:
    """``folder`` holding ``program``'s DDR image and ``qg``'s shapes, formats, methods and IG settings."""
    (folder / DDR_IMAGE).parent.mkdir(parents=True, exist_ok=True)
    (folder / DDR_IMAGE).write_bytes(program.image)
    (folder / "project.json").write_text(json.dumps({
        "network": {"input_shape": list(qg.graph.input_shape), "sample_shape": list(qg.graph.data_shape),
                    "classes": qg.graph.num_classes},
        "formats": {"input": str(qg.input_fmt), "logits": str(qg.logits_fmt),
                    "attribution": {m: str(attribution_format(qg, m)) for m in qg.methods}},
        "methods": list(qg.methods), "integrated_gradients": {"steps": qg.ig_steps, "rule": qg.ig_rule}}))
    return folder
