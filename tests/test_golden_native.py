"""The golden model's native kernels (xaihls/golden/native.cpp) and fused stages (stages.py).

Facts a user relies on: every product kernel usable here (AMX, AVX-512 VNNI, AVX-VNNI and
AVX2 where the CPU has them, the portable one everywhere) returns the exact int64 sums of a plain int64
reference, on random and extreme operands, at the largest fan-in and at the SIMD kernels'
flush boundaries; the fused stages give the same attributions, logits, targets and saturation
counts as the layer-by-layer PyTorch path, for every method and kernel; the fastest usable
kernel is the default, also in a build without -march=native; without a compiler the golden
model still runs (on PyTorch), saying so once.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import xaihls
from tests.random_nets import random_net
from tests.test_golden_kernels import LARGEST_FAN_IN, int64_conv, int64_conv_transpose, int64_matmul
from xaihls.errors import XaiHlsError
from xaihls.frontend.trace import graph_from_module
from xaihls.golden import kernels, native, stages
from xaihls.golden import model as golden
from xaihls.quant.calibrate import calibrate

pytestmark = pytest.mark.skipif(native.library() is None, reason=f"no native library: {native.unavailable_reason()}")

KERNELS = native.available_kernels()


def conv_sums(x, w, stride, padding, bias=None):
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    oh, ow = (h + 2 * ph - w.shape[2]) // sh + 1, (wd + 2 * pw - w.shape[3]) // sw + 1
    return native.conv_acc(x, w, False, (ph, pw, 1, 1), (h + 2 * ph, wd + 2 * pw), stride, (oh, ow),
                           bias).permute(0, 3, 1, 2)


def conv_transposed_sums(g, w, stride, padding, in_hw):
    (kh, kw), (ph, pw), (h, wd) = w.shape[2:], padding, in_hw
    return native.conv_acc(g, w, True, (kh - 1 - ph, kw - 1 - pw, *stride), (h + kh - 1, wd + kw - 1), (1, 1),
                           (h, wd), None).permute(0, 3, 1, 2)


def operands(rng: random.Random, shape, kind: str) -> torch.Tensor:
    if kind == "min":
        return torch.full(shape, -32768)
    if kind == "max":
        return torch.full(shape, 32767)
    return torch.randint(-32768, 32768, shape, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("seed", range(4))
def test_every_product_kernel_gives_the_int64_sums(kernel, seed):
    rng = random.Random(seed)
    with native.force_kernel(kernel):
        for trial in range(12):
            kind = rng.choice(("uniform", "uniform", "min", "max"))
            n, c, o = rng.randint(1, 3), rng.choice((1, 2, 3, 5, 8, 16, 21, 33)), rng.choice((1, 3, 16, 17, 40))
            kh, kw, sh, sw = rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 3)
            ph, pw = rng.randint(0, 3), rng.randint(0, 3)
            h, wd = rng.randint(max(1, kh - 2 * ph), 19), rng.randint(max(1, kw - 2 * pw), 19)
            x, w = operands(rng, (n, c, h, wd), kind), operands(rng, (o, c, kh, kw), kind)
            bias = torch.randint(-(1 << 40), 1 << 40, (o,))
            what = f"{kernel} x {tuple(x.shape)} w {tuple(w.shape)} stride {(sh, sw)} padding {(ph, pw)} {kind}"
            ref = int64_conv(x, w, (sh, sw), (ph, pw))
            assert torch.equal(conv_sums(x, w, (sh, sw), (ph, pw), bias), ref + bias[:, None, None]), what
            g = operands(rng, ref.shape, kind)
            extra = (h - ((ref.shape[2] - 1) * sh - 2 * ph + kh), wd - ((ref.shape[3] - 1) * sw - 2 * pw + kw))
            assert torch.equal(conv_transposed_sums(g, w, (sh, sw), (ph, pw), (h, wd)),
                               int64_conv_transpose(g, w, (sh, sw), (ph, pw), extra)), what
            a, b = operands(rng, (rng.randint(1, 40), c * kh), kind), operands(rng, (c * kh, o), kind)
            assert torch.equal(native.matmul_acc(a, b, b, ("test",), bias), int64_matmul(a, b) + bias), what


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("a,b", [(-32768, -32768), (32767, 32767), (32767, -32768), (-32768, 32767), (-32768, -1)])
def test_extreme_sums_at_the_largest_fan_in(kernel, a, b):
    """131,070 terms of up to 2^30: the AMX kernel flushes its int32 digit sums eight times on the way, the
    SIMD ones 512 times (x = -32768 with w = 32767 or -1: low-digit terms of -8,355,840, the largest)."""
    k = LARGEST_FAN_IN
    with native.force_kernel(kernel):
        x, w = torch.full((3, k), a), torch.full((k, 2), b)
        assert torch.equal(native.matmul_acc(x, w, w, ("test",), None), torch.full((3, 2), k * a * b))
        c = k // 9
        x, w = torch.full((1, c, 3, 3), a), torch.full((2, c, 3, 3), b)
        out = conv_sums(x, w, (1, 1), (1, 1))
        assert int(out[0, 1, 1, 1]) == 9 * c * a * b
        assert torch.equal(out, int64_conv(x, w, (1, 1), (1, 1)))
        g = torch.full((1, 2, 3, 3), a)
        w = torch.full((2, c, 3, 3), b)
        assert torch.equal(conv_transposed_sums(g, w, (1, 1), (1, 1), (3, 3)),
                           int64_conv_transpose(g, w, (1, 1), (1, 1), (0, 0)))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("width,kw", [(16, 3), (32, 3), (16, 1), (48, 5), (8, 3)])
def test_stride_one_convolutions_in_either_block_geometry(kernel, width, kw):
    """At stride 1 the kernels take blocks of 16 positions either along the zero-framed canvas (computing
    the frame's columns too) or within an output row (computing past its end): whichever computes fewer;
    output widths that are multiples of 16 take the second, the others mostly the first."""
    rng = random.Random(width * 10 + kw)
    with native.force_kernel(kernel):
        for kind in ("uniform", "min", "max"):
            x, w = operands(rng, (2, 5, 6, width), kind), operands(rng, (17, 5, 3, kw), kind)
            padding = (1, kw // 2)
            ref = int64_conv(x, w, (1, 1), padding)
            assert ref.shape[3] == width
            assert torch.equal(conv_sums(x, w, (1, 1), padding), ref), kind
            g = operands(rng, ref.shape, kind)
            assert torch.equal(conv_transposed_sums(g, w, (1, 1), padding, (6, width)),
                               int64_conv_transpose(g, w, (1, 1), padding, (0, 0))), kind


SIMD_KERNELS = [k for k in KERNELS if k in ("avx512_vnni", "avx_vnni", "avx2")]


@pytest.mark.parametrize("kernel", SIMD_KERNELS)
@pytest.mark.parametrize("k", [1, 2, 255, 256, 257, 258, 511, 512, 513, 769])
def test_simd_sums_on_each_side_of_a_flush(kernel, k):
    """The SIMD kernels' int32 sums take 256 terms (128 pairs) between flushes: sums of the largest terms
    (x*wl = -32768 * 255 on the low digit) just under, at and over each boundary, odd K (a last half pair)."""
    with native.force_kernel(kernel):
        for a, b in ((-32768, 32767), (-32768, -1), (32767, 32767), (-32768, -32768)):
            x, w = torch.full((17, k), a), torch.full((k, 18), b)
            x[5, -1], w[-1, 3] = -a if a > -32768 else 32767, 12345  # not all alike: a last term that differs
            assert torch.equal(native.matmul_acc(x, w, w, ("test",), None), int64_matmul(x, w)), (a, b, k)
            c = torch.full((2, k, 3, 3), a)
            v = torch.full((3, k, 3, 3), b)
            assert torch.equal(conv_sums(c, v, (1, 1), (1, 1)), int64_conv(c, v, (1, 1), (1, 1))), (a, b, k)


def test_the_simd_kernels_are_usable_where_the_cpu_has_them():
    """On an x86 CPU with AVX-512 VNNI (AVX-VNNI, AVX2) the library offers that kernel, ahead of the portable
    one, and without AMX the default is the fastest of them."""
    flags = next((line.split(":")[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), []) if Path("/proc/cpuinfo").exists() else []
    if "avx512_vnni" in flags and "avx512bw" in flags:
        assert "avx512_vnni" in KERNELS
    if "avx2" in flags:
        assert "avx2" in KERNELS
    if "avx2" in flags and "avx_vnni" in flags:
        assert "avx_vnni" in KERNELS
    assert KERNELS[-1] == "portable" and list(KERNELS) == [k for k in native.KERNELS if k in KERNELS]
    assert native.kernel_name() == KERNELS[0] or os.environ.get(native.KERNEL_ENV)


def stageable_net(seed: int) -> tuple[nn.Module, tuple[int, int, int], torch.Tensor, dict]:
    """A random network the native stages run: convolutions with or without a ReLU and a max-pool
    (overlapping or not), linear layers with or without a ReLU, odd shapes, and now and then narrow
    formats (saturation, also of a max-pool's routed gradient), a format that makes a requantization
    shift left, or 8- and 12-bit words."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    c, h, w = rng.choice((1, 2, 3, 8, 17)), rng.randint(3, 14), rng.randint(3, 14)
    shape, layers, pools = (c, h, w), [], []
    for _ in range(rng.randint(1, 3)):
        kh, kw = rng.randint(1, min(4, h + 2)), rng.randint(1, min(4, w + 2))
        ph, pw = rng.randint(0, kh - 1), rng.randint(0, kw - 1)
        sh, sw = rng.choice((1, 1, 2)), rng.choice((1, 1, 2, 3))
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh < 1 or ow < 1:
            break
        o = rng.choice((1, 4, 8, 16, 19, 32))
        layers.append(nn.Conv2d(c, o, (kh, kw), (sh, sw), (ph, pw), bias=rng.random() < 0.8))
        c, h, w = o, oh, ow
        if rng.random() < 0.7:
            layers.append(nn.ReLU())
        if rng.random() < 0.6 and h >= 2 and w >= 2:
            pk = (rng.randint(1, min(3, h)), rng.randint(1, min(3, w)))
            ps = (rng.randint(1, 3), rng.randint(1, 3))
            pools.append(str(len(layers)))
            layers.append(nn.MaxPool2d(pk, ps))
            h, w = (h - pk[0]) // ps[0] + 1, (w - pk[1]) // ps[1] + 1
    layers.append(nn.Flatten())
    features = c * h * w
    for _ in range(rng.randint(0, 2)):
        width = rng.choice((1, 5, 16, 33))
        layers.append(nn.Linear(features, width))
        if rng.random() < 0.7:
            layers.append(nn.ReLU())
        features = width
    layers.append(nn.Linear(features, rng.choice((1, 3, 10))))
    model = nn.Sequential(*layers).eval()
    kind = ("narrow", "left shift", "8 bits", "pool gradient", "12 bits", "calibrated")[seed % 6]
    config = {}
    if kind == "narrow":  # a narrow output format: values saturate, forward and backward
        config = {"layers": {"0": {"output": "ap_fixed<16,-2>", "gradient": "ap_fixed<16,-9>"}}}
    elif kind == "left shift":  # an output finer than the accumulator: the requantization shifts left
        config = {"layers": {"0": {"output": "ap_fixed<16,-20>"}}}
    elif kind in ("8 bits", "12 bits"):  # narrower words than int16
        config = {"width": int(kind.split()[0])}
    elif kind == "pool gradient" and pools:  # a max-pool whose input gradient is narrower: routed values saturate
        config = {"layers": {pools[0]: {"gradient": "ap_fixed<16,-14>"}}}
    return model, shape, torch.rand((8, *shape)) * rng.choice((0.5, 1.0, 3.0)), config


def assert_same_as_the_pytorch_path(qg, x, what: str, steps: int = 3):
    for method in (None, *qg.methods):
        if method is None:
            fused = golden.predict(qg, x)
            with stages.disabled():
                ref = golden.predict(qg, x)
        else:
            fused = golden.attribute(qg, x, method, steps=steps)
            with stages.disabled():
                ref = golden.attribute(qg, x, method, steps=steps)
        tag = f"{what}: {method or 'predict'}"
        assert torch.equal(fused.logits, ref.logits), f"{tag}: logits"
        assert torch.equal(fused.target, ref.target), f"{tag}: target"
        if method:
            assert torch.equal(fused.attribution, ref.attribution), f"{tag}: attribution"
        assert fused.saturations == ref.saturations, f"{tag}: saturations {fused.saturations} {ref.saturations}"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("seed", range(12))
def test_fused_stages_equal_the_layer_by_layer_path(kernel, seed):
    model, shape, calibration, config = stageable_net(seed)
    try:
        qg = calibrate(graph_from_module(model, shape), calibration, config=config)
    except XaiHlsError:
        pytest.skip("refused at compile")
    assert stages.plan(qg) is not None, model
    x = torch.rand((5, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.max() * 1.3
    with native.force_kernel(kernel):
        assert_same_as_the_pytorch_path(qg, x, f"seed {seed} {kernel} {model}")


@pytest.mark.parametrize("seed", range(20))
def test_random_nets_the_stages_run_equal_the_layer_by_layer_path(seed):
    model, shape, calibration = random_net(seed)
    try:
        acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    except XaiHlsError:
        pytest.skip("refused at compile")
    if stages.plan(acc.qgraph) is None:
        pytest.skip("not in stages (average pooling, a ReLU or max-pool alone, ...)")
    x = torch.rand((3, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    assert_same_as_the_pytorch_path(acc.qgraph, x, f"seed {seed} {model}")


def test_threads_and_passes_change_no_bit_and_no_count(monkeypatch):
    model, shape, calibration, config = stageable_net(3)
    qg = calibrate(graph_from_module(model, shape), calibration, config=config)
    x = torch.rand((11, *shape), generator=torch.Generator().manual_seed(0)) * 2
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = golden.attribute(qg, x, "integrated_gradients", steps=4)
        torch.set_num_threads(2)
        monkeypatch.setattr(golden, "PASS_BYTES", 3 * stages.activation_bytes(qg))  # passes of 3 path images
        two = golden.attribute(qg, x, "integrated_gradients", steps=4)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one.attribution, two.attribution) and one.saturations == two.saturations


def test_operands_wider_than_16_bits_run_layer_by_layer():
    model, shape, calibration, _ = stageable_net(1)
    qg = calibrate(graph_from_module(model, shape), calibration, config={"width": 20})
    assert stages.plan(qg) is None
    x = torch.rand((2, *shape))
    r = golden.attribute(qg, x, "saliency")
    with stages.disabled():
        assert torch.equal(r.attribution, golden.attribute(qg, x, "saliency").attribution)


def test_without_a_compiler_the_golden_model_runs_on_pytorch_and_says_so_once(monkeypatch, caplog):
    model, shape, calibration, _ = stageable_net(2)
    qg = calibrate(graph_from_module(model, shape), calibration)
    x = torch.rand((3, *shape))
    with stages.disabled():
        ref = golden.attribute(qg, x, "gradient")
    monkeypatch.setenv(native.CXX_ENV, "no-such-compiler-xaihls")
    monkeypatch.setattr(native, "_library", None)
    monkeypatch.setattr(native, "_reason", None)
    monkeypatch.setattr(stages, "_plans", type(stages._plans)())
    monkeypatch.setattr(kernels, "_fastest", {})
    with caplog.at_level(logging.WARNING, logger="xaihls.golden.native"):
        assert native.library() is None and stages.plan(qg) is None
        assert "native" not in kernels.exact_paths(9, 16, 16)
        r = golden.attribute(qg, x, "gradient")
        golden.attribute(qg, x, "gradient")
    assert torch.equal(r.attribution, ref.attribution)
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "xaihls.golden.native"]
    assert len(lines) == 1 and "no-such-compiler-xaihls" in lines[0] and "PyTorch" in lines[0], lines


def test_a_fresh_cache_builds_the_library(tmp_path):
    """First use on a machine with an empty build cache: compiled, cached, loaded (in a new process)."""
    code = ("from xaihls.golden import native; lib = native.library(); "
            "print(lib.path if lib else native.unavailable_reason())")
    env = {**os.environ, "XAIHLS_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    built = Path(out.stdout.strip())
    assert built.parent == tmp_path / "golden" and built.is_file(), out.stdout + out.stderr
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert again.stdout.strip() == str(built)  # the cached library, not a second build


def test_the_executor_path_takes_the_checked_arguments_and_gives_the_same_results():
    """accelerator.run checks and quantizes once (executor.prepare); golden uses those codes."""
    model, shape, calibration, _ = stageable_net(4)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    x = torch.rand((4, *shape)) * 2 - 0.2  # some inputs saturate
    baseline = torch.rand((4, *shape)) * 0.1
    for method in (None, *acc.methods):
        kwargs = {"steps": 5, "baseline": baseline, "rule": "left"} if method == "integrated_gradients" else {}
        r = acc.run(x, method, target=1, **kwargs)
        ref = golden.predict(acc.qgraph, x) if method is None else golden.attribute(acc.qgraph, x, method, 1, **kwargs)
        assert torch.equal(r.logits, ref.logits) and r.saturations == ref.saturations, method
        if method:
            assert torch.equal(r.attribution, ref.attribution), method


def test_the_kernel_a_user_pins_is_used_and_an_unusable_one_is_refused(monkeypatch):
    for name in KERNELS:
        monkeypatch.setenv(native.KERNEL_ENV, name)
        assert native.kernel_name() == name
    monkeypatch.setenv(native.KERNEL_ENV, "tpu")
    with pytest.raises(XaiHlsError, match="XAIHLS_GOLDEN_KERNEL='tpu'.*usable here"):
        native.kernel_name()


@pytest.fixture(scope="module")
def plain_library(tmp_path_factory):
    """native.cpp built as a compiler without -fopenmp or -march=native would build it (once a module)."""
    return native._load(native._build(native._compiler(), flag_sets=((),), folder=tmp_path_factory.mktemp("plain")))


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_plain_build_runs_its_own_threads_and_scalar_epilogues_to_the_same_results(plain_library, monkeypatch,
                                                                                      kernel):
    """A compiler without -fopenmp or -march=native: native.cpp's own pool of sleeping threads instead of
    OpenMP's, and its scalar requantization, pooling and routing loops instead of AVX-512 ones."""
    plain = plain_library
    assert not plain.openmp
    assert plain.kernels == KERNELS  # per-function targets: the same kernels without -march=native
    model, shape, calibration, config = stageable_net(2)
    qg = calibrate(graph_from_module(model, shape), calibration, config=config)
    x = torch.rand((9, *shape), generator=torch.Generator().manual_seed(2)) * 2
    with stages.disabled():
        ref = [golden.attribute(qg, x, m, steps=3) for m in ("integrated_gradients", "guided_backprop")]
    monkeypatch.setattr(native, "_library", plain)
    monkeypatch.setattr(native, "_packed", {})
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with native.force_kernel(kernel):
            runs = [golden.attribute(qg, x, m, steps=3) for m in ("integrated_gradients", "guided_backprop")]
    finally:
        torch.set_num_threads(threads)
    for r, f in zip(runs, ref):
        assert torch.equal(r.attribution, f.attribution) and torch.equal(r.logits, f.logits)
        assert r.saturations == f.saturations
