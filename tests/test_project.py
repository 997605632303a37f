"""A project folder (`xaihls compile --out`): complete, aimed at its board, byte-for-byte repeatable,
safe to write where a user keeps other files, and its testbench runs (xaihls csim, make csim).
The HLS engine itself is tested in tests/test_hls_v2.py, the RTL in hw_tests/."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import xaihls
from xaihls.backends.hls import csim
from xaihls.backends.hls.rules import check_source, constant_names
from xaihls.cli import main
from xaihls.errors import XaiHlsError
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.contract import PROGRAM_VERSION
from xaihls.project import PROJECT_FORMAT, read_project
from xaihls.writer import write_project

MISMATCH = re.compile(r"MISMATCH image \d+ method \w+ (logits|result|attribution)\[\d+\]: got -?\d+ expected -?\d+")


@pytest.fixture(scope="module", autouse=True)
def csim_cache(tmp_path_factory):
    """Builds go to a folder of this module, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("csim-cache")
        mp.setenv(csim.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def project(tmp_path_factory, csim_cache):
    """The bundled model's project for the PYNQ-Z2, written by `xaihls compile` (the planner's engine)."""
    out = tmp_path_factory.mktemp("prj") / "digits_pynq"
    assert main(["compile", "zoo:digits", "--out", str(out), "--steps", "4"]) == 0
    return out


@pytest.fixture(scope="module")
def small_acc():
    entry = get_zoo_model("digits_strided_bn")
    return xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], ig_steps=3,
                          tiling=(8, 4), methods=("saliency", "integrated_gradients"))


def _files(folder):
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).parts[0] != "build"}  # build/: what `xaihls csim` compiles


def test_pynq_project_has_every_file_and_targets_the_board(project):
    files = _files(project)
    for rel in ("firmware/xaihls_engine.h", "firmware/xaihls_top.cpp", "firmware/xaihls_top.h",
                "firmware/xaihls_contract.h", "firmware/parameters.h", "firmware/weights/ddr_image.bin",
                "tb/xaihls_tb.cpp", "tb_data/cases.txt", "build_prj.tcl", "Makefile", "project.json", "estimate.json",
                "README.md", "rtl/xaihls_top.sv", "rtl/xaihls_contract_pkg.sv", "rtl/sources.f", "rtl/params.json",
                "rtl/sim/xaihls_sim_top.sv", "vivado/build_bitstream.tcl"):
        assert rel in files, rel
    meta = read_project(project)
    assert meta["format"] == PROJECT_FORMAT and meta["program"]["version"] == PROGRAM_VERSION
    assert meta["board"]["name"] == "pynq-z2" and meta["part"] == "xc7z020clg400-1" and meta["clock_period_ns"] == 10
    assert meta["axi_data_bits"] == 64 and meta["board_flow"] == {"folder": "vivado"}
    assert meta["methods"] == list(METHODS) and sorted(meta["files"]) == sorted(files)
    # two images x (predict + six methods), each with its expected logits and result
    assert meta["testbench"]["cases"] == 14
    assert sum(1 for f in files if f.endswith("_attribution.bin")) == 12
    tcl = (project / "build_prj.tcl").read_text()
    assert "set part {xc7z020clg400-1}" in tcl and "set clock_period 10\n" in tcl
    for step in ("add_files firmware/xaihls_top.cpp", "add_files -tb tb/xaihls_tb.cpp", "csim_design",
                 "csynth_design", "cosim_design", "export_design"):
        assert step in tcl, step
    make = (project / "Makefile").read_text()
    assert f"AP_TYPES_DIR ?= {csim.ap_types_dir()}" in make and "\n\t./build/xaihls_tb .\n" in make
    image = (project / "firmware/weights/ddr_image.bin").read_bytes()
    assert image[:4] == b"XAI2" and meta["program"]["image_bytes"] == len(image)
    # the estimate is the plan's, the RTL's parameters are the same engine's
    estimate = json.loads((project / "estimate.json").read_text())
    params = json.loads((project / "rtl/params.json").read_text())
    assert (estimate["tm"], estimate["tn"]) == (meta["tiling"]["tm"], meta["tiling"]["tn"]) == (params["TM"], params["TN"])
    assert params["AXI_DATA_WIDTH"] == 64 and estimate["resources"]["DSP"] == params["TM"] * params["TN"] + 1
    assert any(c["fits"] for c in estimate["candidates"])


def test_project_testbench_passes_and_names_a_corrupted_weight(project, tmp_path, capsys):
    assert main(["csim", str(project)]) == 0
    out = capsys.readouterr().out
    assert "xaihls csim: 14 cases, 0 mismatches" in out and "ok image 1 method integrated_gradients" in out

    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    weights = next(r for r in read_project(broken)["program"]["regions"] if "weight" in r["name"])
    image = bytearray((broken / "firmware/weights/ddr_image.bin").read_bytes())
    image[weights["addr"]: weights["addr"] + 2] = (32767).to_bytes(2, "little")
    (broken / "firmware/weights/ddr_image.bin").write_bytes(bytes(image))
    assert main(["csim", str(broken)]) == 1
    captured = capsys.readouterr()
    assert MISMATCH.search(captured.out), captured.out
    assert "does not match the golden model" in captured.err


def test_two_writes_of_an_accelerator_are_byte_identical(small_acc, tmp_path):
    a, b = small_acc.write(tmp_path / "a"), small_acc.write(tmp_path / "b")
    files_a = sorted(_files(a))
    assert files_a == sorted(_files(b)) and len(files_a) > 30
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "firmware/weights/ddr_image.bin").read_bytes() == small_acc.plan.program.image


def test_writing_into_a_foreign_folder_is_refused_unless_forced(small_acc, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    with pytest.raises(XaiHlsError, match="not empty and holds no xaihls project") as err:
        small_acc.write(folder)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]

    write_project(small_acc, folder, force=True)
    assert (folder / "notes.txt").read_text() == "my notes"
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert written == set(read_project(folder)["files"]) | {"notes.txt"}
    # once it holds our project, rewriting needs no force and still leaves the user's file alone
    (folder / "tb_data" / "extra.bin").write_bytes(b"user")
    small_acc.write(folder)
    assert (folder / "notes.txt").read_text() == "my notes" and (folder / "tb_data" / "extra.bin").read_bytes() == b"user"


def test_the_hls_rules_check_catches_each_violation():
    bad = """
    #include <vector>
    constexpr int N = 4;
    int f(int n) { return n ? f(n - 1) : 0; }
    void g(int n, int c[n]) {
        int *p = (int *)malloc(4);
        int a[n];
        int b[N * 2];
        std::vector<int> v;
        while (true) {}
        for (int i = 0; i < n; i++) {}
        for (int i = 0; i < n; i++) {
    #pragma HLS loop_tripcount max=4
        }
        for (int i = 0; i < N; i++) {}
        int *q = new int[3];
    }
    """
    found = check_source("bad.cpp", bad, constant_names(bad))
    rules = sorted({v.rule for v in found})
    assert rules == ["dynamic memory", "loop without a static bound or tripcount", "recursion", "standard library",
                     "unbounded loop", "variable-length array"]
    assert {v.text for v in found if v.rule == "variable-length array"} == {"c[n]", "a[n]"}
    assert [v.line for v in found if v.rule.startswith("loop without")] == [11]


def test_cli_refuses_folders_that_are_not_projects_in_one_line(tmp_path, capsys):
    assert main(["csim", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not an xaihls HLS project" in err and err.count("\n") == 1
    (tmp_path / "thesis.tex").write_text("mine")
    assert main(["compile", "zoo:digits", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not empty and holds no xaihls project" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_project_csim_also_runs_through_make(project, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    copy = tmp_path / "p"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build"))
    proc = subprocess.run(["make", "-s", "csim"], cwd=copy, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "14 cases, 0 mismatches" in proc.stdout
    assert (copy / "build" / "xaihls_tb").is_file()


def test_a_project_carries_its_boards_flow_at_the_engines_axi_width_or_says_why_not(tmp_path):
    digits = get_zoo_model("digits")
    for board, folder, width in (("pynq-z2", "vivado", 64), ("zcu104", "vivado", 128), ("arty-a7-100t", None, 64)):
        acc = xaihls.compile(digits.build(), digits.input_shape, calibration=digits.calibration()[:8],
                             methods=("gradient",), board=board, backends=("golden", "program"))
        out = write_project(acc, tmp_path / board, images=digits.samples()[0][:1])
        meta = json.loads((out / "project.json").read_text())
        flow = meta["board_flow"]
        assert meta["axi_data_bits"] == width
        if folder:
            assert flow == {"folder": folder} and (out / folder / "build_bitstream.tcl").is_file()
            assert acc.board.part in (out / folder / "settings.tcl").read_text()
            assert str(width) in (out / folder / "settings.tcl").read_text()
        else:
            assert "MicroBlaze" in flow["unsupported"] and not (out / "vivado").exists()


def test_the_rtl_cases_read_a_grad_cam_map_repeated_over_more_channels_than_a_word_holds(tmp_path):
    """A MobileNet stem (3 x 3 at stride 2) runs the image as its four phases: 12 channels in the view, more than
    Tn = 8, so a word block holds only part of them. The testbench's grad_cam file holds the map repeated over the
    12 channels, as the engine leaves it (and the HLS testbench compares all of them); `xaihls sim` reads it
    whole and keeps the map. It used to expect one word block and refuse the file ("16384 values, expected
    8192" on torchvision's ResNet-18 at 64 x 64)."""
    from xaihls.backends.rtl.v2.project import load_cases, load_project
    from xaihls.plan.contract import image_view
    from tests.random_nets import stem_net

    net, shape, calibration = stem_net(1)
    acc = xaihls.compile(net, shape, calibration=calibration, methods=("grad_cam", "saliency"), tiling=(16, 8))
    folder = write_project(acc, tmp_path / "prj", images=calibration[:1])
    h = acc.plan.program.header
    assert h["in_c"] == 4 * shape[0] > h["tn"]
    cases = {c.method: c for c in load_cases(load_project(folder))}
    x = calibration[:1]
    cam = cases["grad_cam"].expect["attribution"]
    assert cam.shape == (1, h["in_h"], h["in_w"])
    golden = acc.run(x, "grad_cam").attribution[0].expand(shape[0], -1, -1).numpy()
    assert np.array_equal(cam, image_view(golden, h)[:1])
    assert cases["saliency"].expect["attribution"].shape == (h["in_c"], h["in_h"], h["in_w"])
