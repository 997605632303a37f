"""Regression tests of the defects a new user found (no silent wrong answer, no late refusal,
no traceback): each failed before its fix."""

from __future__ import annotations

import os
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import xaihls
from xaihls.cli import main
from xaihls.errors import XaiHlsError, XaiHlsWarning
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model

SOFTWARE = ("golden", "program", "csim")


def _bit_exact(acc, x, backends=("program", "csim"), steps=3, methods=METHODS) -> dict:
    """Predict and ``methods`` on ``backends`` equal golden's logits and attributions (``steps``: integrated
    gradients' steps, None the compiled ones); golden's results by method (None: predict)."""
    golden = {}
    for method in (None, *methods):
        golden[method] = g = acc.run(x, method, steps=steps)
        for backend in backends:
            r = acc.run(x, method, backend=backend, steps=steps)
            assert torch.equal(r.logits, g.logits), (backend, method)
            if method:
                assert torch.equal(r.attribution, g.attribution), (backend, method)
    return golden


def _net(*layers) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


def test_a_model_that_starts_with_flatten_gets_its_attribution_on_every_executor():
    net = _net(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.rand(4, 1, 3, 4, generator=torch.Generator().manual_seed(1))
    acc = xaihls.compile(net, (1, 3, 4), calibration=x, tiling=(4, 4))
    g = acc.run(x, "gradient")
    assert g.attribution.abs().sum() > 0
    _bit_exact(acc, x)


@pytest.mark.parametrize("net,shape", [
    (_net(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d((2, 3), stride=(2, 1)), nn.Flatten(),
          nn.Linear(3 * 3 * 5, 4)), (2, 7, 7)),
    (_net(nn.Conv2d(1, 4, (3, 1)), nn.ReLU(), nn.MaxPool2d((2, 1)), nn.Flatten(), nn.Linear(4 * 3, 3)), (1, 8, 1)),
    (_net(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d((6, 7)), nn.Flatten(), nn.Linear(4, 3)), (3, 8, 9)),
    (_net(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3)),
     (3, 7, 9)),
    (_net(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.AvgPool2d((3, 2), stride=(1, 2)), nn.Flatten(),
          nn.Linear(5 * 5 * 4, 3)), (3, 7, 8)),
], ids=["maxpool_2x3_stride_2x1", "pool_2x1_on_width_1", "maxpool_whole_6x7_map", "gap_on_7x9", "avgpool_3x2"])
def test_non_square_pools_compile_for_every_backend_and_run_bit_exact(net, shape):
    """Engine v2 pools any window and stride its fields hold (up to 15 x 15), on every executor;
    the RTL's bits are in hw_tests/test_rtl_v2_exact.py."""
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(2))
    acc = xaihls.compile(net, shape, calibration=x, tiling=(4, 4))  # every backend, the RTL included
    assert acc.refusals == {}
    _bit_exact(acc, x[:2])


def test_a_pool_wider_than_the_contracts_fields_is_refused_at_compile_naming_the_layer():
    net = _net(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d((16, 2)), nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(3, 1, 18, 4, generator=torch.Generator().manual_seed(2))
    xaihls.compile(net, (1, 18, 4), calibration=x, backends=("golden",))  # the reference takes it
    with pytest.raises(XaiHlsError) as refused:
        xaihls.compile(net, (1, 18, 4), calibration=x, tiling=(4, 4))
    message = str(refused.value)
    assert "\n" not in message and "max-pool '2'" in message and "pool_kh = 16" in message and "4-bit field" in message


def test_two_relus_in_a_row_are_one_relu():
    net = _net(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.ReLU(), nn.Flatten(), nn.ReLU(), nn.Linear(3 * 4 * 4, 4))
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    acc = xaihls.compile(net, (1, 6, 6), calibration=x, tiling=(4, 4))  # every backend, the RTL included
    assert [type(layer).__name__ for layer in acc.graph.layers] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    _bit_exact(acc, x[:2])


def test_the_common_cifar_head_without_pooling_is_accepted_by_every_backend():
    """conv -> ReLU -> conv -> ReLU -> Flatten -> Linear, and a ReLU on the input map: the RTL runs
    them too (its bit-exactness is in hw_tests/test_rtl_exact.py)."""
    net = _net(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2), nn.ReLU(), nn.Flatten(),
               nn.Linear(5 * 3 * 3, 10))
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    acc = xaihls.compile(net, (3, 8, 8), calibration=x, tiling=(4, 4))
    assert acc.refusals == {}
    _bit_exact(acc, x[:2])
    relu_first = _net(nn.ReLU(), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    acc = xaihls.compile(relu_first, (3, 8, 8), calibration=x - 0.5, tiling=(4, 4))
    assert acc.refusals == {}
    _bit_exact(acc, x[:2] - 0.5)


@pytest.mark.parametrize("kwargs,message", [
    ({"tiling": (0, 4)}, "tiling must be (Tm, Tn), two positive integers"),
    ({"tiling": (4,)}, "tiling must be (Tm, Tn)"),
    ({"backends": ("golden", "fpga")}, "unknown backend 'fpga'"),
    ({"calibration": torch.zeros(4, 1, 16, 16)}, "calibration batch is all zeros"),
])
def test_compile_refuses_bad_arguments_with_one_line(kwargs, message):
    digits = get_zoo_model("digits")
    args = {"calibration": digits.calibration()[:8], **kwargs}
    with pytest.raises(XaiHlsError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        xaihls.compile(digits.build(), digits.input_shape, **args)
    assert "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def digits_acc():
    digits = get_zoo_model("digits")
    return xaihls.compile(digits.build(), digits.input_shape, calibration=digits.calibration()[:16],
                          tiling=(4, 4)), digits.samples()[0][:2]


@pytest.mark.parametrize("backend", ["golden", "program"])
@pytest.mark.parametrize("kwargs,message", [
    ({"x": "empty"}, "empty batch"),
    ({"method": "integrated_gradients", "baseline": float("nan")}, "baseline contains NaN"),
    ({"method": "integrated_gradients", "baseline": float("inf")}, "baseline contains NaN or infinite"),
    ({"target": 2.7}, "integers in 0..9; got 2.7"),
    ({"target": torch.tensor([1.0, 2.0])}, "integers in 0..9"),
    ({"target": True}, "integers in 0..9"),
    ({"target": 10}, "integers in 0..9"),
], ids=["empty", "nan_baseline", "inf_baseline", "float_target", "float_tensor_target", "bool_target", "range"])
def test_run_arguments_are_checked_the_same_on_every_backend(digits_acc, kwargs, message, backend):
    acc, x = digits_acc
    kwargs = {"method": "gradient", **kwargs}
    if kwargs.pop("x", None) == "empty":
        x = x[:0]
    with pytest.raises(XaiHlsError, match=message) as exc:
        acc.run(x, backend=backend, **kwargs)
    assert "\n" not in str(exc.value)


def test_integrated_gradients_steps_beyond_the_table_are_refused_before_running(digits_acc):
    acc, x = digits_acc
    for backend in ("program", "csim", "rtl"):
        with pytest.raises(XaiHlsError, match="steps must be 2..1024 on this backend, got 2000"):
            acc.run(x, "integrated_gradients", steps=2000, backend=backend)
    assert acc.run(x[:1], "integrated_gradients", steps=2000).attribution is not None  # golden has no table


def test_compiled_integrated_gradients_steps_are_checked_before_calibration(monkeypatch):
    """ig_steps beyond a requested backend's IG table, or not an integer >= 2, is refused by compile in
    one line naming the backend, before calibration (which runs the method with those steps); golden
    alone takes any number, and a compile without the method ignores it."""
    import xaihls.accelerator as accelerator

    def calibrated(*args, **kwargs):
        raise AssertionError("calibration ran")

    net = _net(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = torch.rand(4, 1, 6, 6)
    with monkeypatch.context() as mp:
        mp.setattr(accelerator, "calibrate", calibrated)
        for steps, backends, message in (
                (2000, ("golden", "program"), "integrated_gradients steps must be 2..1024 on the program backend, "
                                              "got 2000; compile with fewer"),
                (1025, ("csim",), "must be 2..1024 on the csim backend, got 1025"),
                (1, ("golden",), r"steps \(ig_steps\) must be an integer >= 2, got 1"),
                (4.0, ("golden",), r"steps \(ig_steps\) must be an integer >= 2, got 4.0")):
            with pytest.raises(XaiHlsError, match=message) as exc:
                xaihls.compile(net, (1, 6, 6), calibration=x, ig_steps=steps, backends=backends)
            assert "\n" not in str(exc.value)
    acc = xaihls.compile(net, (1, 6, 6), calibration=x, ig_steps=2000, backends=("golden",))
    assert acc.run(x[:1], "integrated_gradients").attribution is not None
    acc = xaihls.compile(net, (1, 6, 6), calibration=x, ig_steps=2000, methods=("saliency",), backends=("program",))
    assert acc.run(x[:1], "saliency", backend="program").attribution is not None


def test_a_calibration_tensor_that_is_always_zero_is_named_in_a_warning():
    net = _net(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with torch.no_grad():
        net[0].weight.fill_(-1.0)
        net[0].bias.fill_(-1.0)  # the ReLU's output is zero on every non-negative image
    with pytest.warns(XaiHlsWarning, match=r"calibration: .*zero on every calibration image"):
        xaihls.compile(net, (1, 6, 6), calibration=torch.rand(4, 1, 6, 6), tiling=(4, 4))


def test_every_backend_reports_saturations_and_the_cli_warns(tmp_path, capsys):
    digits = get_zoo_model("digits")
    acc = xaihls.compile(digits.build(), digits.input_shape, calibration=digits.calibration()[:16], tiling=(4, 4),
                         backends=SOFTWARE)
    x = digits.samples()[0][:2] * 4  # four times the calibrated range
    counts = {b: acc.run(x, "input_x_gradient", backend=b).saturations for b in SOFTWARE}
    assert counts["golden"]["input"] > 0 and counts["program"]["input"] == counts["golden"]["input"]
    assert counts["program"]["forward"] > 0 and counts["program"] == counts["csim"]
    np.save(tmp_path / "bright.npy", x.numpy())
    code = main(["attribute", "zoo:digits", str(tmp_path / "bright.npy"), "--method", "input_x_gradient",
                 "--backend", "program", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0 and "warning: values saturated on the program backend (input" in err
    assert err.count("\n") == 1


def test_project_verbs_take_a_relative_path_from_another_folder(tmp_path, capsys, monkeypatch):
    from xaihls.backends.rtl.v2 import synth
    from xaihls.writer import write_project

    digits = get_zoo_model("digits")
    acc = xaihls.compile(digits.build(), digits.input_shape, methods=("gradient",),
                         calibration=digits.calibration()[:8], tiling=(4, 4))
    write_project(acc, tmp_path / "work" / "prj", images=digits.samples()[0][:1])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    relative = os.path.join("..", "work", "prj")
    assert main(["csim", relative]) == 0, capsys.readouterr()
    assert main(["report", relative, "--json"]) == 0, capsys.readouterr()
    real = synth.synthesize

    def read_only(params, family="xc7", out_dir=None, run=None, timeout=3600, flatten=False, files=None):
        # yosys reads the sources and elaborates (synth_xilinx's `begin` step), in its own working folder
        return real(params, family, out_dir, "begin:coarse", timeout, flatten, files)

    monkeypatch.setattr(synth, "synthesize", read_only)
    code = main(["synth", relative])
    assert code == 0, capsys.readouterr().err
    # (`xaihls sim` with a relative path: hw_tests/test_rtl_v2_project.py)


BAD_FACTORIES = textwrap.dedent("""
    import torch.nn as nn

    def needs_arguments(width):
        return nn.Linear(width, 2)

    def raises():
        raise RuntimeError("weights server unreachable\\nsecond line")
""")


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "factories.py").write_text(BAD_FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1, 4, 4), np.float32))
    return tmp_path, x


@pytest.mark.parametrize("argv,message", [
    (["attribute", "factories:needs_arguments", "{x}", "--input-shape", "1,4,4", "--out", "{out}"],
     "model 'factories:needs_arguments': needs_arguments() needs arguments"),
    (["attribute", "factories:raises", "{x}", "--input-shape", "1,4,4", "--out", "{out}"],
     "model 'factories:raises': raises() raised RuntimeError: weights server unreachable"),
    (["attribute", "zoo:digits", "{digit}", "--out", "{notes}"], "--out '{notes}' is a file"),
    (["attribute", "zoo:digits", "{digit}", "--method", "integrated_gradients", "--steps", "2000",
      "--backend", "program", "--out", "{out}"], "steps must be 2..1024 on the program backend, got 2000"),
    (["attribute", "zoo:digits", "{digit}", "--target", "10", "--out", "{out}"],
     "--target must be a class of zoo:digits, 0..9; got 10"),
    (["attribute", "{corrupt}", "{x}", "--out", "{out}"], "cannot load exported program"),
    (["plan", "zoo:digits", "--clock", "0"], "clock must be a positive number of MHz, got 0.0"),
    (["plan", "zoo:digits", "--clock", "nan"], "clock must be a positive number of MHz"),
    (["plan", "zoo:digits", "--cap", "0"], "utilisation cap must be in (0, 1]"),
], ids=["factory_arguments", "factory_raises", "out_is_a_file", "steps_2000_program", "target_10", "corrupt_pt2",
        "clock_0", "clock_nan", "cap_0"])
def test_cli_mistakes_are_one_line_and_status_2(factories, capsys, argv, message):
    folder, x = factories
    digit = folder / "digit.npy"
    np.save(digit, get_zoo_model("digits").samples()[0][:1].numpy())
    notes = folder / "notes.txt"
    notes.write_text("my notes\n")
    corrupt = folder / "model.pt2"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    fill = {"x": str(x), "out": str(folder / "out"), "digit": str(digit), "notes": str(notes), "corrupt": str(corrupt)}
    code = main([a.format(**fill) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(**fill) in err and err.count("\n") == 1, err
    assert notes.read_text() == "my notes\n"  # nothing the user wrote is touched


def test_no_warning_on_a_clean_run(digits_acc):
    acc, x = digits_acc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert acc.run(x, "saliency", backend="program").saturations == {}


def test_every_phase_of_a_stride_larger_than_its_kernel_gets_its_gradient():
    """Found by the differential test (seed 1136): a phase no tap reaches zeroed the next phases too."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 3, (1, 2), stride=(2, 3), padding=(0, 1)), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3 * 2 * 3, 4)).eval()
    x = torch.rand(3, 2, 3, 7, generator=torch.Generator().manual_seed(7))
    acc = xaihls.compile(net, (2, 3, 7), calibration=x, tiling=(4, 4), backends=SOFTWARE)
    gradient = acc.run(x, "gradient").attribution
    assert (gradient[..., 2::3] != 0).any()  # phase 2 of 3 along x: reached by the kernel's first tap
    _bit_exact(acc, x[:2])
