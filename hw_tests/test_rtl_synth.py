"""yosys synth_xilinx on the RTL engine: one DSP48 per MAC plus the stated few, and `xaihls synth DIR`.

The whole synthesis takes about ten minutes even for a 4 x 2 array, so it runs only with
XAIHLS_SLOW_TESTS=1 (benchmarks/rtl.py runs it on the CIFAR plan; tests/test_cli.py checks
the verb on a stored real run).
"""

import os

import pytest

from hw_tests.rtl_cases import compiled, shared_params
from xaihls.backends.hls.writer import write_project
from xaihls.backends.rtl.project import YOSYS_REPORT
from xaihls.backends.rtl.synth import extra_dsps, synthesize
from xaihls.cli import main
from xaihls.plan.engine import estimate_resources
from xaihls.reports.compare import compare


@pytest.mark.parametrize("backward", [1, 0], ids=["full", "inference_only"])
def test_dsp_count_is_one_per_mac_plus_the_stated_few(tmp_path, backward):
    params = shared_params((4, 2))
    params = params if backward else params.inference_only()
    # synth_xilinx up to its DSP mapping (the later LUT mapping does not change DSP cells)
    result = synthesize(params, "xc7", tmp_path, run="begin:coarse")
    assert result.dsp == params.TM * params.TN + extra_dsps(params), result.cells
    assert extra_dsps(params) == 3 + backward
    acc, _ = compiled("digits", (4, 2))
    engine = acc.plan.engine
    assert estimate_resources(engine).dsp == params.TM * params.TN + extra_dsps(shared_params((4, 2)))


@pytest.mark.skip(reason="version 1: xaihls sim/synth/demo run Engine v2 projects now; replaced by test_rtl_v2_project.py / test_rtl_v2_synth.py, delete with version 1")
@pytest.mark.skipif(not os.environ.get("XAIHLS_SLOW_TESTS"), reason="slow: set XAIHLS_SLOW_TESTS=1")
def test_synth_reports_resources_next_to_the_estimate(tmp_path, capsys):
    acc, x = compiled("digits", (4, 2))
    write_project(acc, tmp_path, images=x)
    assert main(["synth", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "LUT" in shown and "BRAM_18K" in shown and "estimate" in shown
    rows = {r.source: r for r in compare([tmp_path])}
    yosys = rows["yosys"].resources
    assert yosys["DSP"] == 4 * 2 + 4
    assert yosys["LUT"] > 1000 and yosys["FF"] > 1000 and yosys["BRAM_18K"] > 0
    assert (tmp_path / YOSYS_REPORT).read_text().count("DSP48E1") >= 1
