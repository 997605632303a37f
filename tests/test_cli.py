"""The command line: the verbs work, and every user mistake is one line on stderr with status 2."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from xaihls.cli import main
from xaihls.models.zoo import get_zoo_model


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_boards_lists_every_bundled_board(capsys):
    code, out, _ = run(capsys, "boards", "--json")
    assert code == 0
    names = {b["name"] for b in json.loads(out)}
    assert {"pynq-z2", "arty-a7-100t", "ultra96-v2", "kv260", "zcu104", "zcu102", "alveo-u250"} <= names


def test_demo_writes_heatmaps_and_a_fidelity_summary(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path), "--steps", "8", "--rtl-images", "0")  # RTL: hw_tests
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["methods"]) == {"gradient", "saliency", "input_x_gradient", "integrated_gradients",
                                       "guided_backprop", "deconvnet"}
    assert all(row["pearson_mean"] > 0.99 for row in summary["methods"].values())
    with Image.open(tmp_path / "heatmaps.png") as img:
        assert img.size[0] > 500 and img.size[1] > 500
    assert "Pearson" in out
    assert summary["backends"]["csim"].startswith("bit-exact") and summary["backends"]["rtl"].startswith("skipped")


def _sample_png(path, index=0):
    images, _ = get_zoo_model("digits").samples()
    Image.fromarray((images[index, 0].numpy() * 255).round().astype(np.uint8)).save(path)
    return path


def test_attribute_writes_heatmaps_and_arrays(tmp_path, capsys):
    a = _sample_png(tmp_path / "a.png", 0)
    b = tmp_path / "b.npy"
    np.save(b, get_zoo_model("digits").samples()[0][3].numpy())
    code, out, err = run(capsys, "attribute", "zoo:digits", str(a), str(b), "--method", "guided_backprop",
                         "--out", str(tmp_path / "out"))
    assert code == 0, err
    attr = np.load(tmp_path / "out" / "guided_backprop.npy")
    assert attr.shape == (2, 1, 16, 16) and np.abs(attr).sum() > 0
    assert (tmp_path / "out" / "a_guided_backprop.png").is_file()
    assert "class 0" in out and "class 3" in out


def test_attribute_takes_a_1d_model_and_its_arrays(tmp_path, capsys, monkeypatch):
    """--input-shape C,L: a Conv1d model's arrays in and its (N, C, L) attribution out; a picture is
    refused in one line."""
    (tmp_path / "signals.py").write_text(textwrap.dedent("""
        import torch
        import torch.nn as nn

        def ecg():
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                                 nn.Linear(4 * 10, 3)).eval()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    gen = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", gen.standard_normal((8, 2, 20)).astype(np.float32))
    np.save(tmp_path / "x.npy", gen.standard_normal((3, 2, 20)).astype(np.float32))
    code, out, err = run(capsys, "attribute", "signals:ecg", str(tmp_path / "x.npy"), "--input-shape", "2,20",
                         "--calibration", str(tmp_path / "cal.npy"), "--method", "saliency", "--backend", "program",
                         "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert np.load(tmp_path / "out" / "saliency.npy").shape == (3, 2, 20)
    assert (tmp_path / "out" / "x_saliency.png").is_file()
    code, _, err = run(capsys, "attribute", "signals:ecg", str(_sample_png(tmp_path / "a.png")), "--input-shape",
                       "2,20", "--calibration", str(tmp_path / "cal.npy"), "--out", str(tmp_path / "out2"))
    assert code == 2 and "a 1-D model takes arrays (.npy, .npz, .pt) of shape (N, 2, 20), not pictures" in err
    assert len(err.strip().splitlines()) == 1, err


BAD_MODELS = textwrap.dedent("""
    import torch.nn as nn

    def with_sigmoid():
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(2 * 14 * 14, 10)).eval()

    def ok():
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 14 * 14, 10)).eval()

    def in_train_mode():
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 14 * 14, 10)).train()
""")


@pytest.fixture
def bad_models(tmp_path, monkeypatch):
    (tmp_path / "badmodels.py").write_text(BAD_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    png = _sample_png(tmp_path / "x.png")
    return tmp_path, png


@pytest.mark.parametrize("argv,needle", [
    (["badmodels:with_sigmoid", "--input-shape", "1,16,16"], "unsupported node '1' (op call_module, target 1)"),
    (["badmodels:ok"], "give its input shape (C,H,W)"),
    (["badmodels:in_train_mode", "--input-shape", "1,16,16"], "training mode"),
    (["badmodels:in_train_mode", "--input-shape", "3,16,16"], "training mode"),
    (["badmodels:ok", "--input-shape", "1,12,12"], "does not accept input_shape (1, 12, 12)"),
    (["zoo:nope"], "unknown zoo model 'nope'; bundled models: cifar_ref, digits"),
    (["zoo:digits", "--method", "shap"], "unknown attribution method 'shap'"),
    (["zoo:digits", "--board", "vc707"], "unknown board 'vc707'"),
    (["zoo:cifar_ref"], "picture is 16x16 pixels; the model takes 32x32"),
])
def test_user_mistakes_are_one_line_errors(bad_models, capsys, argv, needle):
    tmp, png = bad_models
    model, *rest = argv
    code, _, err = run(capsys, "attribute", model, str(png), *rest, "--out", str(tmp / "out"))
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_corrupt_weights_file_is_a_one_line_error(bad_models, capsys):
    tmp, png = bad_models
    bad = tmp / "w.pt"
    bad.write_bytes(b"\x00garbage")
    code, _, err = run(capsys, "attribute", "badmodels:ok", str(png), "--weights", str(bad),
                       "--input-shape", "1,16,16", "--out", str(tmp / "out"))
    assert code == 2 and "is not a readable state_dict" in err and err.count("\n") == 1


def test_installed_entry_point_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "xaihls.cli", "attribute", "zoo:nope", "x.png", "--out",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("xaihls attribute: error: unknown zoo model 'nope'; bundled models: "
                                   "cifar_ref, digits, digits_gap, digits_mobilenet, digits_resnet, digits_strided_bn, "
                                   "ds_cnn, mobilenet_v2_tiny, resnet8, vww_mobilenet")


def test_every_verb_has_help(capsys):
    from xaihls.cli import COMMANDS

    for verb in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([verb, "--help"])
        assert e.value.code == 0
        assert "usage: xaihls " + verb in capsys.readouterr().out


def test_sim_and_synth_refuse_what_is_not_an_rtl_project(tmp_path, capsys):
    import xaihls

    (tmp_path / "empty").mkdir()
    for verb in ("sim", "synth"):
        code, _, err = run(capsys, verb, str(tmp_path / "empty"))
        assert code == 2 and "holds no xaihls project" in err and err.count("\n") == 1
        code, _, err = run(capsys, verb, str(tmp_path / "nowhere"))
        assert code == 2 and "is not a folder" in err
    digits = get_zoo_model("digits")
    # a 12 x 4 array: the RTL refuses it (its Tm and Tn are powers of two), the C++ engine runs it
    acc = xaihls.compile(digits.build(), digits.input_shape, methods=("saliency",), calibration=digits.calibration(),
                         tiling=(12, 4), backends=("golden", "program", "csim"))
    assert "takes Tm and Tn from" in acc.refusals["rtl"]
    project = acc.write(tmp_path / "prj")
    assert not (project / "rtl").exists()
    for verb in ("sim", "synth"):
        code, _, err = run(capsys, verb, str(project))
        assert code == 2 and "the RTL engine cannot run this network" in err and err.count("\n") == 1
    # a supported project: wrong case selections are refused before anything is built
    acc = xaihls.compile(digits.build(), digits.input_shape, methods=("saliency",), calibration=digits.calibration())
    project = acc.write(tmp_path / "digits")
    code, _, err = run(capsys, "sim", str(project), "--methods", "predict,deconvnet")
    assert code == 2 and "method 'deconvnet' has no test case" in err and "predict, saliency" in err
    code, _, err = run(capsys, "sim", str(project), "--images", "0")
    assert code == 2 and "--images must be at least 1, got 0" in err


@pytest.fixture(scope="module")
def digits_project(tmp_path_factory):
    """A written digits project (gradient only), copied by each test that damages it."""
    import xaihls
    from xaihls.writer import write_project

    digits = get_zoo_model("digits")
    acc = xaihls.compile(digits.build(), digits.input_shape, methods=("gradient",), calibration=digits.calibration(),
                         ig_steps=2)
    return write_project(acc, tmp_path_factory.mktemp("digits") / "prj", images=digits.samples()[0][:1])


def _truncate(path, keep=100):
    path.write_bytes(path.read_bytes()[:keep])


DAMAGE = {
    "an older project format": ("project.json", lambda p: p.write_text(p.read_text().replace('"format": 2', '"format": 1')),
                                "was written in project format 1"),
    "a cut DDR image": ("firmware/weights/ddr_image.bin", _truncate, "is not the Program image this project was written with"),
    "unreadable RTL parameters": ("rtl/params.json", lambda p: p.write_text("{"), "not the parameters of the Engine v2"),
    "parameters of another engine": ("rtl/params.json", lambda p: p.write_text(json.dumps(
                                         {**json.loads(p.read_text()), "TM": 2 * json.loads(p.read_text())["TM"]})),
                                     "the Program is tiled for "),
    "a source gone": ("rtl/xaihls_walker.sv", lambda p: p.unlink(), "names xaihls_walker.sv, which is not in rtl/"),
    "no estimate": ("estimate.json", lambda p: p.unlink(), "no readable estimate.json"),
    "a cut test vector": ("tb_data/image0.bin", _truncate, "tb_data/image0.bin: 50 values, expected"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_project_is_one_line_naming_what_is_wrong(digits_project, tmp_path, capsys, damage):
    import shutil

    rel, spoil, needle = DAMAGE[damage]
    project = tmp_path / "prj"
    shutil.copytree(digits_project, project)
    spoil(project / rel)
    verbs = ("sim",) if rel.startswith("tb_data") else ("sim", "synth")  # synth reads no test vector
    for verb in verbs:
        code, out, err = run(capsys, verb, str(project))
        assert code == 2 and needle in err and err.count("\n") == 1, (verb, err)
        assert not (project / "reports").exists() and not (project / "rtl" / "synth").exists()


def test_a_ddr_image_that_is_no_program_is_named():
    from xaihls.backends.rtl.v2.project import decode_image
    from xaihls.errors import XaiHlsError

    with pytest.raises(XaiHlsError, match="image.bin does not start with an xaihls Program header"):
        decode_image(bytes(4096), "image.bin")
    with pytest.raises(XaiHlsError, match="shorter than a Program header"):
        decode_image(b"XAI2", "image.bin")


def test_synth_shows_yosys_next_to_the_estimate_and_the_attribution_overhead(tmp_path, capsys, monkeypatch):
    """`xaihls synth` on a project; yosys itself (a minute or more) is replaced by a stored real run's
    stat (tests/fixtures/reports/README.md); hw_tests run yosys for real."""
    from pathlib import Path

    import xaihls
    from xaihls.backends.rtl import synth as common
    from xaihls.backends.rtl.v2 import synth
    from xaihls.reports.compare import compare

    stat = (Path(__file__).parent / "fixtures" / "reports" / "yosys_engine_v2_8x4_xc7_stat.txt").read_text()
    calls = []

    def stored_run(params, family="xc7", out_dir=None, run=None, timeout=3600, flatten=False, files=None):
        calls.append((params.BACKWARD, family, [f.name for f in files], Path(files[0]).parent))
        return common.result_from_stat(params, family, stat, 1.0)  # the same run for both builds

    monkeypatch.setattr(synth, "synthesize", stored_run)
    digits = get_zoo_model("digits")
    acc = xaihls.compile(digits.build(), digits.input_shape, calibration=digits.calibration()[:16], tiling=(8, 4))
    project = acc.write(tmp_path / "prj")
    code, out, err = run(capsys, "synth", str(project), "--inference-only")
    assert code == 0, err
    assert [c[:2] for c in calls] == [(1, "xc7"), (0, "xc7")] and "UltraScale+" not in out  # a 7-series board
    assert "xaihls_top.sv" in calls[0][2] and calls[0][3] == (project / "rtl").resolve()  # the project's copy
    estimate = json.loads((project / "estimate.json").read_text())["resources"]
    assert f"{estimate['LUT']:,}" in out and "7,088" in out and "attribution overhead" in out
    assert "DSP48: 8 x 4 MACs + 1 controller multiplier = 33 expected, 33 mapped" in out
    rows = {r.source: r for r in compare([project])}
    assert rows["yosys"].resources["LUT"] == 7088 and rows["yosys"].resources["DSP"] == 33
    assert rows["yosys (inference-only)"].resources["DSP"] == 33
    assert rows["yosys"].percent()["LUT"] == pytest.approx(7088 / 53200)


def test_synth_counts_an_ultrascale_plus_engine_as_7_series_and_says_why(tmp_path, capsys, monkeypatch):
    """yosys packs no register or adder into a DSP48E2 (xcup), so `xaihls synth` counts an UltraScale+
    board's engine in its 7-series mapping, the one the estimate is fitted in, and says so;
    ``--family xcup`` gives yosys's own mapping with a line on why it is far above the estimate."""
    from pathlib import Path

    import xaihls
    from xaihls.backends.rtl import synth as common
    from xaihls.backends.rtl.v2 import synth

    stat = (Path(__file__).parent / "fixtures" / "reports" / "yosys_engine_v2_8x4_xc7_stat.txt").read_text()
    families = []

    def stored_run(params, family="xc7", out_dir=None, run=None, timeout=3600, flatten=False, files=None):
        families.append(family)
        return common.result_from_stat(params, family, stat, 1.0)

    monkeypatch.setattr(synth, "synthesize", stored_run)
    digits = get_zoo_model("digits")
    acc = xaihls.compile(digits.build(), digits.input_shape, calibration=digits.calibration()[:16], tiling=(8, 8),
                         board="ultra96-v2")
    project = acc.write(tmp_path / "prj")
    code, out, err = run(capsys, "synth", str(project))
    assert code == 0, err
    assert families == ["xc7"] and "(xc7)" in out
    assert "UltraScale+ counted with yosys's 7-series mapping" in " ".join(out.split())
    code, out, err = run(capsys, "synth", str(project), "--family", "xcup")
    assert code == 0, err
    assert families == ["xc7", "xcup"] and "outside the DSP48E2" in " ".join(out.split())
    assert "7-series mapping" not in " ".join(out.split())
