"""The HLS backend: the engine's C++ is bit-exact with golden, projects are complete and safe to write."""

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import xaihls
from xaihls.accelerator import Accelerator
from xaihls.backends.hls import csim
from xaihls.backends.hls.rules import check_files, check_source, constant_names
from xaihls.backends.hls.templates import CSIM_WRAPPER, TEMPLATE_DIR
from xaihls.backends.hls.writer import read_project, write_project
from xaihls.cli import main
from xaihls.errors import XaiHlsError
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.sim.program import Machine

# Every network on every array shape; each network is calibrated once, each engine built once.
NETWORKS = {"digits": 2, "cifar_ref": 1, "digits_strided_bn": 2}  # name -> sample images
TILINGS = ((4, 2), (8, 8), (16, 4))
MISMATCH = re.compile(r"MISMATCH image \d+ method \w+ (logits|result|attribution)\[\d+\]: got -?\d+ expected -?\d+")


@pytest.fixture(scope="module", autouse=True)
def csim_cache(tmp_path_factory):
    """Builds go to a folder of this module, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("csim-cache")
        mp.setenv(csim.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def accelerators(csim_cache):
    """(network, tiling) -> Accelerator with its C-simulation already built."""
    accs = {}
    for name in NETWORKS:
        entry = get_zoo_model(name)
        acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], ig_steps=3)
        for tiling in TILINGS:
            accs[name, tiling] = Accelerator(acc.qgraph, acc.board, tiling)
    with ThreadPoolExecutor(4) as pool:  # g++ runs outside the GIL: build the engines side by side
        list(pool.map(lambda a: csim.library_for(a.plan), accs.values()))
    return accs


@pytest.fixture(scope="module")
def project(tmp_path_factory, csim_cache):
    """The bundled model's project for the PYNQ-Z2, written by `xaihls compile` (planner's tiling)."""
    out = tmp_path_factory.mktemp("prj") / "digits_pynq"
    assert main(["compile", "zoo:digits", "--out", str(out), "--steps", "4"]) == 0
    return out


@pytest.mark.parametrize("tiling", TILINGS, ids=lambda t: f"{t[0]}x{t[1]}")
@pytest.mark.parametrize("name", list(NETWORKS))
def test_csim_equals_golden_bit_for_bit(accelerators, name, tiling):
    acc = accelerators[name, tiling]
    assert (acc.plan.engine.tm, acc.plan.engine.tn) == tiling
    x = get_zoo_model(name).samples()[0][:NETWORKS[name]]
    g, c = acc.run(x), acc.run(x, backend="csim")
    assert torch.equal(g.logits, c.logits) and torch.equal(g.target, c.target)
    for method in METHODS:
        g = acc.run(x, method, steps=3)
        c = acc.run(x, method, steps=3, backend="csim")
        assert torch.equal(g.logits, c.logits) and torch.equal(g.target, c.target), (name, method)
        assert torch.equal(g.attribution, c.attribution), (name, tiling, method)
    # a given target, a given baseline and another Riemann rule: logits stay the image's
    base = torch.full_like(x, 0.25)
    g = acc.run(x, "integrated_gradients", target=1, steps=2, baseline=base, rule="middle")
    c = acc.run(x, "integrated_gradients", target=1, steps=2, baseline=base, rule="middle", backend="csim")
    assert torch.equal(g.attribution, c.attribution) and torch.equal(g.logits, c.logits) and (c.target == 1).all()
    f = acc.attribute(x, "saliency", backend="csim")
    assert f.dtype == torch.float32 and f.shape == x.shape


def test_csim_compiles_once_per_engine(accelerators, csim_cache, monkeypatch):
    acc = accelerators["digits", (4, 2)]
    first = csim.library_for(acc.plan)
    monkeypatch.setattr(csim.subprocess, "run", lambda *a, **k: pytest.fail("compiled a second time"))
    assert csim.library_for(acc.plan) is first
    assert len(list(csim_cache.rglob("libxaihls_csim_*.so"))) == len(NETWORKS) * len(TILINGS)


def test_engine_refuses_a_foreign_program_and_bad_arguments(accelerators):
    acc = accelerators["digits", (4, 2)]
    lib = csim.library_for(acc.plan)
    machine = Machine(acc.plan.program, 4, 2)
    assert lib.run(machine.ddr, 0, -1, 8) == 0
    assert lib.run(machine.ddr, 4, -1, 1) == 4  # IG needs 2..1024 steps
    assert lib.run(machine.ddr, 2, 10, 8) == 4  # 10 classes: target 0..9
    machine.ddr[4] = 2  # version 2
    assert lib.run(machine.ddr, 0, -1, 8) == 2
    other = np.zeros(lib.total_bytes, np.uint8)  # another network's Program, in a DDR of this engine's size
    image = accelerators["digits_strided_bn", (16, 4)].plan.program.image
    other[: len(image)] = np.frombuffer(image, np.uint8)
    assert lib.run(other, 0, -1, 8) == 2
    with pytest.raises(ValueError, match="bytes"):
        lib.run(np.zeros(64, np.uint8), 0, -1, 8)
    x = get_zoo_model("digits").samples()[0][:1]
    with pytest.raises(XaiHlsError, match="steps must be 2..1024 on this backend"):
        acc.run(x, "integrated_gradients", steps=2000, backend="csim")


def test_pynq_project_has_every_file_and_targets_the_board(project):
    files = {p.relative_to(project).as_posix() for p in project.rglob("*")
             if p.is_file() and p.relative_to(project).parts[0] != "build"}  # build/: what `xaihls csim` compiles
    for rel in ("firmware/xaihls_engine.h", "firmware/xaihls_top.cpp", "firmware/xaihls_top.h",
                "firmware/parameters.h", "firmware/weights/ddr_image.bin", "tb/xaihls_tb.cpp", "tb_data/cases.txt",
                "build_prj.tcl", "Makefile", "project.json", "README.md"):
        assert rel in files, rel
    meta = read_project(project)
    assert meta["board"]["name"] == "pynq-z2" and meta["part"] == "xc7z020clg400-1" and meta["clock_period_ns"] == 10
    assert meta["methods"] == list(METHODS) and sorted(meta["files"]) == sorted(files)
    # two images x (predict + six methods), each with its expected logits and result
    assert meta["testbench"]["cases"] == 14
    assert sum(1 for f in files if f.endswith("_attribution.bin")) == 12
    tcl = (project / "build_prj.tcl").read_text()
    assert "set part {xc7z020clg400-1}" in tcl and "set_part $part" in tcl
    assert "set clock_period 10\n" in tcl and "create_clock -period $clock_period" in tcl
    for step in ("open_project", "set_top $top", "add_files firmware/xaihls_top.cpp", "add_files -tb tb/xaihls_tb.cpp",
                 "open_solution", "csim_design", "csynth_design", "cosim_design", "export_design"):
        assert step in tcl, step
    for var in ("XAIHLS_CSIM", "XAIHLS_CSYNTH", "XAIHLS_COSIM", "XAIHLS_EXPORT"):
        assert var in (project / "README.md").read_text()
    make = (project / "Makefile").read_text()
    assert f"AP_TYPES_DIR ?= {csim.ap_types_dir()}" in make and "\n\t./build/xaihls_tb .\n" in make
    image = (project / "firmware/weights/ddr_image.bin").read_bytes()
    assert image[:4] == (0x50494158).to_bytes(4, "little") and meta["program"]["image_bytes"] == len(image)
    params = (project / "firmware/parameters.h").read_text()
    assert not re.search(r"^\s*//\s*xaihls insert", params, re.MULTILINE)  # every hole filled
    assert re.search(rf"constexpr int TM\s+= {meta['tiling']['tm']};", params)


def test_project_testbench_passes_and_names_a_corrupted_weight(project, tmp_path, capsys):
    assert main(["csim", str(project)]) == 0
    out = capsys.readouterr().out
    assert "xaihls csim: 14 cases, 0 mismatches" in out and "ok image 1 method integrated_gradients" in out

    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    conv1 = next(r for r in read_project(broken)["program"]["regions"] if r["name"].endswith(".weight"))
    image = bytearray((broken / "firmware/weights/ddr_image.bin").read_bytes())
    image[conv1["addr"]: conv1["addr"] + 2] = (32767).to_bytes(2, "little")  # the first kernel tap
    (broken / "firmware/weights/ddr_image.bin").write_bytes(bytes(image))
    assert main(["csim", str(broken)]) == 1
    captured = capsys.readouterr()
    assert MISMATCH.search(captured.out), captured.out
    assert "does not match the golden model" in captured.err


def test_two_writes_of_an_accelerator_are_byte_identical(accelerators, tmp_path):
    acc = accelerators["digits_strided_bn", (16, 4)]
    a, b = acc.write(tmp_path / "a"), acc.write(tmp_path / "b")
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and len(files_a) > 20
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "firmware/weights/ddr_image.bin").read_bytes() == acc.plan.program.image


def test_writing_into_a_foreign_folder_is_refused_unless_forced(accelerators, tmp_path):
    acc = accelerators["digits_strided_bn", (16, 4)]
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    with pytest.raises(XaiHlsError, match="not empty and holds no xaihls project") as err:
        acc.write(folder)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]

    write_project(acc, folder, force=True)
    assert (folder / "notes.txt").read_text() == "my notes"
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert written == set(read_project(folder)["files"]) | {"notes.txt"}
    # once it holds our project, rewriting needs no force and still leaves the user's file alone
    (folder / "tb_data" / "extra.bin").write_bytes(b"user")
    acc.write(folder)
    assert (folder / "notes.txt").read_text() == "my notes" and (folder / "tb_data" / "extra.bin").read_bytes() == b"user"


def _synthesized_sources(project: Path) -> list[Path]:
    return [p for p in sorted((project / "firmware").iterdir())
            if p.suffix in (".h", ".cpp") and p.name != Path(CSIM_WRAPPER).name]


def test_synthesized_sources_keep_the_hls_rules(project):
    sources = _synthesized_sources(project)
    assert {p.name for p in sources} == {"parameters.h", "xaihls_engine.h", "xaihls_top.cpp", "xaihls_top.h"}
    # version 1 predates the pipelined-arithmetic rule (issue 12); Engine v2 keeps it (tests/test_hls_v2.py)
    assert check_files(sources, pipelined=False) == []
    # the library as shipped is what projects contain
    for p in sources:
        if p.name != "parameters.h":
            assert p.read_bytes() == (TEMPLATE_DIR / "firmware" / p.name).read_bytes()


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


def test_pragmas_shape_the_array_and_the_interface():
    engine = (TEMPLATE_DIR / "firmware" / "xaihls_engine.h").read_text()
    top = (TEMPLATE_DIR / "firmware" / "xaihls_top.cpp").read_text()
    assert "int xaihls_top(short *ddr, int method, int target, int steps)" in top
    assert re.search(r"#pragma HLS INTERFACE m_axi port=ddr offset=slave bundle=gmem\b", top)
    for port in ("ddr", "method", "target", "steps", "return"):
        assert f"#pragma HLS INTERFACE s_axilite port={port}\n" in top
    mac = engine[engine.index("\nmac:"):engine.index("// Write-back of a finished row tile")]
    assert "#pragma HLS pipeline II=1" in mac
    assert re.search(r"mac_m:\s*for \(int m = 0; m < TM; m\+\+\) \{\s*#pragma HLS unroll", mac)
    assert re.search(r"mac_n:\s*for \(int n = 0; n < TN; n\+\+\) \{\s*#pragma HLS unroll", mac)
    for buffer, dims in (("in_ping", (1,)), ("w_ping", (1, 2)), ("acc_ping", (1,))):
        for dim in dims:
            assert f"#pragma HLS array_partition variable={buffer} type=complete dim={dim}" in engine


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


def test_a_project_carries_its_boards_flow_or_says_why_not(tmp_path):
    import json

    from xaihls.backends.hls.writer import write_project

    digits = get_zoo_model("digits")
    for board, folder in (("pynq-z2", "vivado"), ("arty-a7-100t", None)):
        acc = xaihls.compile(digits.build(), digits.input_shape, calibration=digits.calibration()[:8],
                             methods=("gradient",), board=board, tiling=(4, 2), backends=("golden", "program"))
        out = write_project(acc, tmp_path / board, images=digits.samples()[0][:1])
        flow = json.loads((out / "project.json").read_text())["board_flow"]
        if folder:
            assert flow == {"folder": folder} and (out / folder / "build_bitstream.tcl").is_file()
            assert "xc7z020clg400-1" in (out / folder / "settings.tcl").read_text()
        else:
            assert "MicroBlaze" in flow["unsupported"] and not (out / "vivado").exists()
