"""The Engine v2 RTL is clean under verilator --lint-only -Wall (waivers stated in rtl_v2/xaihls_lint.vlt)
for every parameter set the tests build and for the inference-only build."""

import subprocess

import pytest

from hw_tests.rtl_v2_cases import SHAPES, shared_params
from xaihls.backends.rtl.sim import tool_env, verilator_root
from xaihls.backends.rtl.v2.params import TOP, WAIVERS, RtlV2Params, sources


def lint(params: RtlV2Params | None = None) -> str:
    cmd = [str(verilator_root() / "bin" / "verilator"), "--lint-only", "-Wall", "--top-module", TOP, str(WAIVERS)]
    if params is not None:
        cmd += [f"-G{k}={v}" for k, v in params.as_dict().items()]
    cmd += [str(p) for p in sources()]
    res = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True)
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("%")]
    if res.returncode and not lines:
        lines = [res.stderr.strip() or f"verilator exited with {res.returncode}"]
    return "\n".join(lines)


def test_waivers_are_each_justified():
    text = WAIVERS.read_text().splitlines()
    rules = [i for i, line in enumerate(text) if line.startswith("lint_off")]
    assert rules
    for i in rules:
        j = i - 1
        while j >= 0 and text[j].startswith("lint_off"):
            j -= 1
        assert text[j].startswith("//"), f"waiver without a reason: {text[i]}"


@pytest.mark.parametrize("shape", [None, *SHAPES], ids=lambda s: s or "defaults")
def test_rtl_v2_is_lint_clean(shape):
    assert lint(None if shape is None else shared_params(shape)) == ""


@pytest.mark.parametrize("shape", list(SHAPES))
def test_inference_only_build_is_lint_clean(shape):
    assert lint(shared_params(shape).inference_only()) == ""

