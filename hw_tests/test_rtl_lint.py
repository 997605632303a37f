"""The RTL is clean under verilator --lint-only -Wall (waivers stated in xaihls_lint.vlt), the
simulation top and its SystemVerilog DDR model included."""

import pytest

from hw_tests.rtl_cases import TILINGS, shared_params
from xaihls.backends.rtl.lint import WAIVERS, lint


def test_waivers_are_each_justified():
    text = WAIVERS.read_text().splitlines()
    rules = [i for i, line in enumerate(text) if line.startswith("lint_off")]
    assert rules
    for i in rules:  # a comment block precedes every group of waivers
        j = i - 1
        while j >= 0 and text[j].startswith("lint_off"):
            j -= 1
        assert text[j].startswith("//"), f"waiver without a reason: {text[i]}"


@pytest.mark.parametrize("tiling", [None, *TILINGS], ids=lambda t: "defaults" if t is None else f"{t[0]}x{t[1]}")
def test_rtl_is_lint_clean(tiling):
    assert lint(None if tiling is None else shared_params(tiling)) == ""


def test_inference_only_build_is_lint_clean():
    assert lint(shared_params((4, 2)).inference_only()) == ""


@pytest.mark.parametrize("tiling", [None, (4, 2)], ids=lambda t: "defaults" if t is None else f"{t[0]}x{t[1]}")
def test_simulation_top_and_ddr_model_are_lint_clean(tiling):
    assert lint(None if tiling is None else shared_params(tiling), simulation=True) == ""
