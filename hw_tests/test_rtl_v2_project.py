"""The Engine v2 RTL as users reach it: a compiled project's rtl/, `xaihls sim DIR`, and backend="rtl"."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import torch

import xaihls
from hw_tests.rtl_v2_cases import CAMS, shared_params
from tests.random_nets import random_dag_net
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.cycles import TOLERANCE
from xaihls.backends.rtl.v2.params import RTL_DIR, SIM_SOURCES, SOURCES, rtl_params
from xaihls.backends.rtl.v2.project import VERILATOR_REPORT, load_project
from xaihls.cli import main
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.reports.compare import compare
from xaihls.sim.interpreter import run_batch
from xaihls.writer import write_project

TILING = (4, 4)  # the smallest array a 64-bit board takes: a quick Verilator build
IG_STEPS = 3


@functools.lru_cache(maxsize=None)
def compiled():
    """(accelerator, one sample image): digits on a 4 x 4 array, every method, the Grad-CAM ones too (one
    build for every test here)."""
    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], tiling=TILING,
                         ig_steps=IG_STEPS, methods=(*METHODS, *CAMS))
    acc.plan
    return acc, entry.samples()[0][:1]


def project(folder):
    acc, x = compiled()
    return write_project(acc, folder, images=x)


def test_project_holds_the_fixed_sources_and_only_parameters_per_network(tmp_path):
    acc, _ = compiled()
    project(tmp_path)
    for name in SOURCES:  # copied unchanged
        assert (tmp_path / "rtl" / name).read_bytes() == (RTL_DIR / name).read_bytes()
    sources_f = (tmp_path / "rtl" / "sources.f").read_text().split()
    assert sources_f == list(SOURCES)
    for name, path in SIM_SOURCES.items():  # the simulation top and DDR model, apart: never in sources.f
        assert (tmp_path / "rtl" / "sim" / name).read_bytes() == path.read_bytes() and name not in sources_f
    loaded = load_project(tmp_path)
    assert loaded.params == rtl_params(acc.plan.program, acc.plan.engine)
    assert json.loads((tmp_path / "rtl" / "params.json").read_text()) == loaded.params.as_dict()
    program = acc.plan.program
    assert loaded.program.image == program.image
    assert loaded.program.forward == program.forward and loaded.program.backward == program.backward
    assert {k: loaded.program.header[k] for k in program.header} == program.header


def test_sim_runs_the_testbench_cases_bit_exactly_and_reports_cycles(tmp_path, capsys):
    project(tmp_path)
    assert main(["sim", str(tmp_path), "--methods", "predict,saliency,deconvnet"]) == 0
    shown = capsys.readouterr().out
    assert "saliency" in shown and "MAC utilisation" in shown and "cycles/s" in shown
    report = json.loads((tmp_path / VERILATOR_REPORT).read_text())
    assert set(report["cycles"]) == {"predict", "saliency", "deconvnet"}
    for method, m in report["methods"].items():
        assert m["bit_exact"] and abs(m["cycles"] - m["model_cycles"]) <= TOLERANCE * m["model_cycles"], (method, m)
        assert 0 < m["mac_utilization"] < 1
    assert report["descriptors_of"] == "saliency"
    acc, _ = compiled()
    assert len(report["descriptors"]) == len(acc.plan.program.forward) + len(acc.plan.program.backward)
    assert all(abs(d["deviation"]) <= TOLERANCE for d in report["descriptors"]), report["descriptors"]
    assert report["params"] == load_project(tmp_path).params.as_dict() and report["simulation"]["cycles_per_second"] > 0
    rows = {r.source: r for r in compare([tmp_path])}
    assert rows["verilator"].cycles == report["cycles"]
    assert report["memory"]["ddr_latency"] == 24 and report["memory"]["memory"].startswith("SystemVerilog")
    assert rows["verilator"].conditions == "DDR: SV model, latency 24"

    # a wrong expectation is a failure that names the case
    bad = tmp_path / "tb_data" / "image0_saliency_attribution.bin"
    data = np.fromfile(bad, dtype="<i2")
    data[5 * TILING[1]] += 1  # channel 0 of pixel 5 (blocked: a pixel's Tn channels, padded, are adjacent)
    data.tofile(bad)
    assert main(["sim", str(tmp_path), "--methods", "saliency"]) == 1
    assert "image 0 saliency: results differ from the golden model" in capsys.readouterr().err


def test_sim_runs_the_grad_cam_cases_bit_exactly(tmp_path, capsys):
    """A project's Grad-CAM cases: the map (one channel) and guided Grad-CAM's product equal golden's,
    each start within the cycle model's tolerance; no MAC count (the estimate counts no Grad-CAM job)."""
    project(tmp_path)
    assert main(["sim", str(tmp_path), "--methods", ",".join(CAMS)]) == 0
    report = json.loads((tmp_path / VERILATOR_REPORT).read_text())
    assert set(report["methods"]) == set(CAMS)
    for method, m in report["methods"].items():
        assert m["bit_exact"] and abs(m["cycles"] - m["model_cycles"]) <= TOLERANCE * m["model_cycles"], (method, m)
        assert m["mac_utilization"] is None
    bad = tmp_path / "tb_data" / "image0_grad_cam_attribution.bin"
    data = np.fromfile(bad, dtype="<i2")
    data[5 * TILING[1]] += 1  # the map at pixel 5
    data.tofile(bad)
    capsys.readouterr()
    assert main(["sim", str(tmp_path), "--methods", "grad_cam"]) == 1
    assert "image 0 grad_cam: results differ from the golden model" in capsys.readouterr().err


def test_sim_takes_the_ddr_latency_and_seeded_stalls_and_says_so(tmp_path, capsys):
    project(tmp_path)
    assert main(["sim", str(tmp_path), "--methods", "predict,gradient", "--ddr-latency", "100", "--stalls", "5"]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # the table's title wraps at the table's width
    assert "DDR latency 100 cycles" in shown and "seed 5" in shown
    report = json.loads((tmp_path / VERILATOR_REPORT).read_text())
    assert report["memory"]["ddr_latency"] == 100 and report["memory"]["stall_seed"] == 5
    assert all(m["bit_exact"] for m in report["methods"].values())
    # the model is asked for the same DDR latency: stalls only add cycles on top of it
    assert all(m["cycles"] >= 0.9 * m["model_cycles"] for m in report["methods"].values())
    conditions = {r.source: r for r in compare([tmp_path])}["verilator"].conditions
    assert conditions == "DDR: SV model, latency 100, random stalls"
    calm = main(["sim", str(tmp_path), "--methods", "predict", "--ddr-latency", "100"])
    assert calm == 0
    calm = json.loads((tmp_path / VERILATOR_REPORT).read_text())["methods"]["predict"]
    assert report["methods"]["predict"]["cycles"] > calm["cycles"]
    assert abs(calm["cycles"] - calm["model_cycles"]) <= TOLERANCE * calm["model_cycles"]
    capsys.readouterr()
    assert main(["sim", str(tmp_path), "--ddr-latency", "0"]) == 2
    assert "--ddr-latency must be 1..100000" in capsys.readouterr().err


def test_sim_takes_a_relative_project_path_from_another_folder(tmp_path, monkeypatch):
    project(tmp_path / "work" / "prj")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["sim", os.path.join("..", "work", "prj"), "--methods", "predict"]) == 0
    assert (tmp_path / "work" / "prj" / VERILATOR_REPORT).is_file()


def test_rtl_backend_returns_golden_bits_and_cycles():
    acc, x = compiled()
    x2 = torch.cat([x, x.flip(-1)])
    golden = acc.run(x2, "guided_backprop")
    rtl = acc.run(x2, "guided_backprop", backend="rtl")
    assert torch.equal(rtl.attribution, golden.attribution) and torch.equal(rtl.logits, golden.logits)
    assert torch.equal(rtl.target, golden.target)
    assert len(rtl.cycles) == 2 and all(c > 0 for c in rtl.cycles) and golden.cycles is None


def test_sim_writes_waves_on_request(tmp_path):
    project(tmp_path)
    assert main(["sim", str(tmp_path), "--methods", "predict", "--waves"]) == 0
    vcd = tmp_path / "rtl" / "sim" / "dump.vcd"
    with open(vcd, "rb") as f:
        head = f.read(1 << 16).decode(errors="replace")
    assert "$scope module xaihls_sim_top" in head and "u_top" in head and "u_ddr" in head and "u_ctrl" in head
    assert vcd.stat().st_size > 100_000


def test_demo_runs_the_rtl_and_its_report_shows_the_cycles(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--steps", "4", "--rtl-images", "1"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for backend in ("program", "csim", "rtl"):
        assert summary["backends"][backend].startswith("bit-exact with golden"), summary["backends"]
    report = json.loads((tmp_path / "project" / VERILATOR_REPORT).read_text())
    assert len(report["cycles"]) == 7 and all(m["bit_exact"] for m in report["methods"].values())
    assert "verilator" in (tmp_path / "report.html").read_text()


def test_rtl_executor_runs_the_grad_cam_methods_one_image_a_start_as_golden():
    """The rtl backend compiles the Grad-CAM methods and runs them (run_rtl_v2 on this suite's 4 x 4
    build) one image a start, bit-exact with golden and with the interpreter's counters, on a
    3-channel net: Grad-CAM's attribution is the map (one channel), guided Grad-CAM's all three."""
    model, shape, calibration = random_dag_net(20)
    acc = xaihls.compile(model, shape, calibration=calibration, methods=CAMS, tiling=TILING,
                         backends=("golden", "program", "rtl"))
    x = torch.rand((3, *shape), generator=torch.Generator().manual_seed(1)) * calibration.max()
    x_q = quantize_input(acc.qgraph, x)[0]
    plan = acc.plan
    classes = acc.qgraph.graph.num_classes
    for method, target in (("grad_cam", None), ("guided_grad_cam", torch.tensor([k % classes for k in (1, 0, 2)]))):
        logits, targets, attrs, counters, cycles = sim.run_rtl_v2(plan.program, plan.engine, x_q, method, target,
                                                                  IG_STEPS, "trapezoid", None,
                                                                  params=shared_params("4x4"))
        g = acc.run(x, method, target)
        assert torch.equal(logits, g.logits) and torch.equal(targets, g.target), method
        assert attrs.shape == (3, 1 if method == "grad_cam" else shape[0], *shape[1:]), (method, attrs.shape)
        assert torch.equal(attrs, g.attribution), method
        assert counters == run_batch(plan.program, x_q, METHOD_CODES[method], target, IG_STEPS, "trapezoid", None)[3]
        assert len(cycles) == 3 and len(set(cycles)) == 1, (method, cycles)
