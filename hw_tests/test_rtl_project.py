"""The version-1 RTL as users reached it: a compiled project's rtl/, `xaihls sim DIR`, and backend="rtl".

Projects and the verbs are Engine v2's since the switch (test_rtl_v2_project.py); what is left
here runs version 1's writer and executor explicitly (rtl_cases.V1Accelerator).
"""

import json

import numpy as np
import pytest
import torch

from hw_tests.rtl_cases import compiled, shared_params
from xaihls.backends.hls.writer import write_project
from xaihls.backends.rtl.params import RTL_DIR, SIM_DIR, SIM_SOURCES, SOURCES, rtl_params
from xaihls.backends.rtl.project import VERILATOR_REPORT, load_project
from xaihls.cli import main
from xaihls.reports.compare import compare


def test_project_holds_the_fixed_sources_and_only_parameters_per_network(tmp_path):
    acc, x = compiled("digits", (4, 2))
    write_project(acc, tmp_path, images=x)
    for name in SOURCES:  # copied unchanged
        assert (tmp_path / "rtl" / name).read_bytes() == (RTL_DIR / name).read_bytes()
    for name in SIM_SOURCES:  # the simulation top and DDR model, apart: never in sources.f
        assert (tmp_path / "rtl" / "sim" / name).read_bytes() == (SIM_DIR / name).read_bytes()
        assert name not in (tmp_path / "rtl" / "sources.f").read_text()
    svh = (tmp_path / "rtl" / "xaihls_params.svh").read_text()
    assert "`define XAIHLS_TM 4" in svh and "`define XAIHLS_TN 2" in svh
    project = load_project(tmp_path)
    assert project.params == rtl_params(acc.plan.program, acc.plan.engine) == shared_params((4, 2))
    assert project.program.image == acc.plan.program.image
    assert project.program.forward == acc.plan.program.forward


@pytest.mark.skip(reason="version 1: xaihls sim/synth/demo run Engine v2 projects now; replaced by test_rtl_v2_project.py / test_rtl_v2_synth.py, delete with version 1")
def test_sim_runs_the_testbench_cases_bit_exactly_and_reports_cycles(tmp_path, capsys):
    acc, x = compiled("digits", (4, 2))
    write_project(acc, tmp_path, images=x)
    assert main(["sim", str(tmp_path), "--methods", "predict,saliency,deconvnet"]) == 0
    shown = capsys.readouterr().out
    assert "saliency" in shown and "MAC utilisation" in shown
    report = json.loads((tmp_path / VERILATOR_REPORT).read_text())
    assert set(report["cycles"]) == {"predict", "saliency", "deconvnet"}
    for method, m in report["methods"].items():
        assert m["bit_exact"] and abs(m["cycles"] - m["model_cycles"]) <= 0.1 * m["model_cycles"], (method, m)
        assert 0 < m["mac_utilization"] < 1
    assert report["descriptors"] and all(abs(d["rtl"] - d["model"]) <= 0.1 * d["model"] for d in report["descriptors"])
    rows = {r.source: r for r in compare([tmp_path])}
    assert rows["verilator"].cycles == report["cycles"]
    assert report["memory"]["ddr_latency"] == 24 and report["memory"]["memory"].startswith("SystemVerilog")
    assert rows["verilator"].conditions == "DDR: SV model, latency 24"
    assert "cycles/s" in shown and report["simulation"]["cycles_per_second"] > 0

    # a wrong expectation is a failure that names the case
    bad = tmp_path / "tb_data" / "image0_saliency_attribution.bin"
    data = np.fromfile(bad, dtype="<i2")
    data[3] += 1
    data.tofile(bad)
    assert main(["sim", str(tmp_path), "--methods", "saliency"]) == 1
    err = capsys.readouterr().err
    assert "image 0 saliency: results differ from the golden model" in err


@pytest.mark.skip(reason="version 1: xaihls sim/synth/demo run Engine v2 projects now; replaced by test_rtl_v2_project.py / test_rtl_v2_synth.py, delete with version 1")
def test_sim_takes_the_ddr_latency_and_seeded_stalls_and_says_so(tmp_path, capsys):
    acc, x = compiled("digits", (4, 2))
    write_project(acc, tmp_path, images=x)
    assert main(["sim", str(tmp_path), "--methods", "predict,gradient", "--ddr-latency", "100", "--stalls", "5"]) == 0
    shown = capsys.readouterr().out
    assert "DDR latency 100 cycles" in shown and "seed 5" in shown
    report = json.loads((tmp_path / VERILATOR_REPORT).read_text())
    assert report["memory"]["ddr_latency"] == 100 and report["memory"]["stall_seed"] == 5
    assert all(m["bit_exact"] for m in report["methods"].values())
    assert {r.source: r for r in compare([tmp_path])}["verilator"].conditions == "DDR: SV model, latency 100, random stalls"
    assert main(["sim", str(tmp_path), "--ddr-latency", "0"]) == 2
    assert "--ddr-latency must be 1..100000" in capsys.readouterr().err


def test_rtl_backend_returns_golden_bits_and_cycles():
    acc, x = compiled("digits", (4, 2))
    x2 = torch.cat([x, x.flip(-1)])
    golden = acc.run(x2, "guided_backprop")
    rtl = acc.run(x2, "guided_backprop", backend="rtl")
    assert torch.equal(rtl.attribution, golden.attribution) and torch.equal(rtl.logits, golden.logits)
    assert torch.equal(rtl.target, golden.target)
    assert len(rtl.cycles) == 2 and all(c > 0 for c in rtl.cycles) and golden.cycles is None


@pytest.mark.skip(reason="version 1: xaihls sim/synth/demo run Engine v2 projects now; replaced by test_rtl_v2_project.py / test_rtl_v2_synth.py, delete with version 1")
def test_sim_writes_waves_on_request(tmp_path):
    acc, x = compiled("digits", (4, 2))
    write_project(acc, tmp_path, images=x)
    assert main(["sim", str(tmp_path), "--methods", "predict", "--waves"]) == 0
    vcd = tmp_path / "rtl" / "sim" / "dump.vcd"
    with open(vcd, "rb") as f:
        head = f.read(1 << 16).decode(errors="replace")
    assert "$scope module xaihls_sim_top" in head and "u_top" in head and "u_engine" in head and "u_ddr" in head
    assert vcd.stat().st_size > 100_000


@pytest.mark.skip(reason="version 1: xaihls sim/synth/demo run Engine v2 projects now; replaced by test_rtl_v2_project.py / test_rtl_v2_synth.py, delete with version 1")
def test_demo_runs_the_rtl_and_its_report_shows_the_cycles(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--steps", "4", "--rtl-images", "1"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for backend in ("program", "csim", "rtl"):
        assert summary["backends"][backend].startswith("bit-exact with golden"), summary["backends"]
    report = json.loads((tmp_path / "project" / VERILATOR_REPORT).read_text())
    assert len(report["cycles"]) == 7 and all(m["bit_exact"] for m in report["methods"].values())
    assert "verilator" in (tmp_path / "report.html").read_text()
