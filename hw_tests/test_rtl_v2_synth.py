"""yosys synth_xilinx on the Engine v2 RTL: one DSP48 per MAC plus the controller's, and `xaihls synth DIR`.

The DSP count is read where synth_xilinx maps DSPs (`-run begin:coarse`, seconds). A whole
synthesis of a 4 x 4 engine takes about a minute and 900 MB, so `xaihls synth` runs only with
XAIHLS_SLOW_TESTS=1, as version 1's did (tests/test_cli.py checks the verb on a stored real run,
tests/test_reliability.py on yosys's elaboration of a project).
"""

import os

import pytest

from hw_tests.rtl_v2_cases import shared_params
from xaihls.backends.rtl.v2.project import YOSYS_REPORT
from xaihls.backends.rtl.v2.synth import extra_dsps, synthesize
from xaihls.cli import main
from xaihls.models.zoo import get_zoo_model
from xaihls.reports.compare import compare
from xaihls.writer import write_project


@pytest.mark.parametrize("backward", [1, 0], ids=["full", "inference_only"])
def test_dsp_count_is_one_per_mac_plus_the_controllers(tmp_path, backward):
    params = shared_params("4x4")
    params = params if backward else params.inference_only()
    # synth_xilinx up to its DSP mapping (the later LUT mapping does not change DSP cells)
    result = synthesize(params, "xc7", tmp_path, run="begin:coarse")
    assert result.dsp == params.TM * params.TN + extra_dsps(params) == params.TM * params.TN + 1, result.cells


@pytest.mark.skipif(not os.environ.get("XAIHLS_SLOW_TESTS"), reason="slow: set XAIHLS_SLOW_TESTS=1")
def test_synth_reports_resources_next_to_the_estimate(tmp_path, capsys):
    import xaihls

    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], tiling=(4, 4),
                         methods=("saliency",))
    write_project(acc, tmp_path, images=entry.samples()[0][:1])
    assert main(["synth", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "LUT" in shown and "BRAM_18K" in shown and "estimate" in shown
    assert "DSP48: 4 x 4 MACs + 1 controller multiplier = 17 expected, 17 mapped" in shown
    rows = {r.source: r for r in compare([tmp_path])}
    yosys, model = rows["yosys"].resources, rows["estimate"].resources
    assert yosys["DSP"] == model["DSP"] == acc.plan.resources.dsp == 4 * 4 + 1
    assert yosys["LUT"] > 1000 and yosys["FF"] > 1000 and yosys["BRAM_18K"] > 0
    for key in ("LUT", "FF"):  # the model fitted on yosys, at a point it was not fitted on
        assert abs(model[key] - yosys[key]) <= 0.15 * yosys[key], (key, model[key], yosys[key])
    assert (tmp_path / YOSYS_REPORT).read_text().count("DSP48E1") >= 1
