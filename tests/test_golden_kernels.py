"""Golden kernels: every exact path against plain int64 references, on random and extreme operands."""

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xaihls import numerics
from xaihls.frontend.trace import graph_from_module
from xaihls.golden import kernels, native
from xaihls.golden import model as golden
from xaihls.numerics import ACCUMULATOR_BITS, FixedFormat
from xaihls.quant.calibrate import calibrate

PATHS = tuple(p for p in kernels.PATHS if p != "digits" or kernels.int8_gemm_available())
LARGEST_FAN_IN = (1 << (ACCUMULATOR_BITS - 1 - 30)) - 2  # calibrate: (fan_in + 1) * 2^30 < 2^47 at 16 bits
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def int64_conv(x, w, stride, padding):
    """A loop over kernel taps; int64 products and sums only."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = torch.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=torch.int64)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = torch.zeros((n, o, oh, ow), dtype=torch.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
            out += (patch[:, None] * w[None, :, :, ky, kx, None, None]).sum(2)
    return out


def int64_conv_transpose(g, w, stride, padding, output_padding):
    """Each output's contribution scattered tap by tap, then the frame cropped; int64 only."""
    n, o, oh, ow = g.shape
    _, c, kh, kw = w.shape
    (sh, sw), (ph, pw), (eh, ew) = stride, padding, output_padding
    h, wd = (oh - 1) * sh - 2 * ph + kh + eh, (ow - 1) * sw - 2 * pw + kw + ew
    full = torch.zeros((n, c, (oh - 1) * sh + kh + eh, (ow - 1) * sw + kw + ew), dtype=torch.int64)
    for ky in range(kh):
        for kx in range(kw):
            contrib = (g[:, :, None] * w[None, :, :, ky, kx, None, None]).sum(1)
            full[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw] += contrib
    return full[:, :, ph:ph + h, pw:pw + wd]


def int64_matmul(a, b):
    """Row by row, int64 products summed in int64."""
    return torch.stack([(row[:, None] * b).sum(0) for row in a]) if len(a) else torch.zeros((0, b.shape[1]),
                                                                                             dtype=torch.int64)


def operands(draw, shape, bits):
    """Integers of ``bits`` bits: uniform, or all at one extreme, or alternating extremes."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    kind = draw(st.sampled_from(["uniform", "min", "max", "alternating"]))
    if kind == "min":
        return torch.full(shape, lo, dtype=torch.int64)
    if kind == "max":
        return torch.full(shape, hi, dtype=torch.int64)
    if kind == "alternating":
        return torch.where(torch.arange(torch.Size(shape).numel()).view(shape) % 2 == 0, torch.tensor(lo),
                           torch.tensor(hi))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    return torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.int64)


@st.composite
def conv_case(draw):
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 20))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h = draw(st.integers(max(1, kh - 2 * ph), 11))
    w = draw(st.integers(max(1, kw - 2 * pw), 11))
    bits = draw(st.sampled_from([16, 16, 16, 12, 8, 20]))
    x = operands(draw, (n, c, h, w), bits)
    weight = operands(draw, (o, c, kh, kw), bits)
    return x, weight, (sh, sw), (ph, pw), bits


@SETTINGS
@given(conv_case())
def test_conv2d_on_every_exact_path_equals_the_int64_reference(case):
    x, weight, stride, padding, bits = case
    bias = torch.randint(-(1 << 40), 1 << 40, (weight.shape[0],))
    ref = int64_conv(x, weight, stride, padding) + bias[:, None, None]
    for path in kernels.exact_paths(weight[0].numel(), bits, bits):
        with kernels.force_path(path):
            assert torch.equal(kernels.conv2d(x, weight, stride, padding, (bits, bits), bias), ref), path


@SETTINGS
@given(conv_case(), st.data())
def test_conv_transpose2d_on_every_exact_path_equals_the_int64_reference(case, data):
    x, weight, stride, padding, bits = case
    (h, w), (kh, kw) = x.shape[2:], weight.shape[2:]
    oh, ow = int64_conv(x, weight, stride, padding).shape[2:]
    g = operands(data.draw, (x.shape[0], weight.shape[0], oh, ow), bits)
    # the golden model's output padding (the layer's input size again), or any other that leaves a map
    extra = (h - ((oh - 1) * stride[0] - 2 * padding[0] + kh), w - ((ow - 1) * stride[1] - 2 * padding[1] + kw))
    if data.draw(st.booleans()):
        extra = (data.draw(st.integers(0, stride[0] - 1)), data.draw(st.integers(0, stride[1] - 1)))
    ref = int64_conv_transpose(g, weight, stride, padding, extra)
    assume(min(ref.shape) > 0)
    for path in kernels.exact_paths(weight.shape[0] * weight[0, 0].numel(), bits, bits):
        with kernels.force_path(path):
            assert torch.equal(kernels.conv_transpose2d(g, weight, stride, padding, extra, (bits, bits)), ref), path


@SETTINGS
@given(st.integers(0, 5), st.integers(1, 300), st.integers(1, 40), st.sampled_from([16, 16, 12, 8, 20]), st.data())
def test_linear_both_ways_on_every_exact_path_equals_the_int64_reference(m, k, n, bits, data):
    x = operands(data.draw, (m, k), bits)
    weight = operands(data.draw, (n, k), bits)
    g = operands(data.draw, (m, n), bits)
    bias = torch.randint(-(1 << 40), 1 << 40, (n,))
    for path in kernels.exact_paths(k, bits, bits):
        with kernels.force_path(path):
            assert torch.equal(kernels.linear(x, weight, (bits, bits), bias), int64_matmul(x, weight.T) + bias), path
    for path in kernels.exact_paths(n, bits, bits):
        with kernels.force_path(path):
            assert torch.equal(kernels.linear_transposed(g, weight, (bits, bits)), int64_matmul(g, weight)), path


EXTREMES = [(-32768, -32768), (32767, 32767), (32767, -32768)]


def test_the_largest_fan_in_is_the_one_calibration_accepts():
    from xaihls.errors import XaiHlsError
    from xaihls.frontend.ir import Graph, Linear
    from xaihls.quant.calibrate import _check_accumulator

    for fan_in in (LARGEST_FAN_IN, LARGEST_FAN_IN + 1):
        graph = Graph((fan_in, 1, 1), (Linear("fc", (fan_in,), (1,), torch.zeros(1, fan_in), torch.zeros(1)),))
        if fan_in == LARGEST_FAN_IN:
            _check_accumulator(graph, 16)
        else:
            with pytest.raises(XaiHlsError, match="overflow"):
                _check_accumulator(graph, 16)


@pytest.mark.parametrize("a,b", EXTREMES)
@pytest.mark.parametrize("path", PATHS)
def test_extreme_operands_at_the_largest_fan_in_a_16_bit_network_may_have(path, a, b):
    k = LARGEST_FAN_IN
    assert path in kernels.exact_paths(k, 16, 16)
    with kernels.force_path(path):
        # linear, both ways: K = k terms
        x, w = torch.full((3, k), a), torch.full((2, k), b)
        assert torch.equal(kernels.linear(x, w, (16, 16)), torch.full((3, 2), k * a * b))
        g = torch.full((3, 2), a)
        assert torch.equal(kernels.linear_transposed(g, torch.full((2, 5), b), (16, 16)), torch.full((3, 5), 2 * a * b))
        assert torch.equal(kernels.linear_transposed(torch.full((2, k), a), torch.full((k, 3), b), (16, 16)),
                           torch.full((2, 3), k * a * b))
        # convolution: 14,560 channels x 3 x 3 taps (the digit canvas pads channels to a multiple of 8)
        c = k // 9 // 8 * 8
        x, w = torch.full((1, c, 3, 3), a), torch.full((2, c, 3, 3), b)
        out = kernels.conv2d(x, w, (1, 1), (1, 1), (16, 16))
        assert int(out[0, 1, 1, 1]) == 9 * c * a * b
        assert torch.equal(out, int64_conv(x, w, (1, 1), (1, 1)))
        # transposed convolution: its sums run over output channels
        g, w = torch.full((1, c, 3, 3), a), torch.full((c, 2, 3, 3), b)
        gin = kernels.conv_transpose2d(g, w, (1, 1), (1, 1), (0, 0), (16, 16))
        assert int(gin[0, 0, 1, 1]) == 9 * c * a * b
        assert torch.equal(gin, int64_conv_transpose(g, w, (1, 1), (1, 1), (0, 0)))


def test_a_convolution_whose_padded_channels_exceed_the_int32_bound_leaves_the_digit_path():
    assert "digits" not in kernels.exact_paths(14563 * 9, 16, 16, digit_terms=14568 * 9)
    x, w = torch.full((1, 14563, 3, 3), -32768), torch.full((1, 14563, 3, 3), -32768)
    with kernels.force_path("digits"):  # not exact here: another path is taken
        assert int(kernels.conv2d(x, w, (1, 1), (1, 1), (16, 16))[0, 0, 1, 1]) == 9 * 14563 * 2**30


@pytest.mark.parametrize("value", [-32768, 32767])
def test_pool_kernels_at_the_extremes(value):
    x = torch.full((2, 3, 6, 6), value)
    out, index = kernels.max_pool(x, None, (3, 3), (1, 1))
    assert torch.equal(out, torch.full((2, 3, 4, 4), value)) and int(index.max()) == 0  # all ties: the first tap
    assert torch.equal(kernels.window_sum(x, (3, 3), (1, 1)), torch.full((2, 3, 4, 4), 9 * value))
    g = torch.full((2, 3, 4, 4), value)
    back = kernels.max_pool_backward(g, index, (3, 3), (1, 1), (6, 6))
    assert torch.equal(back, reference_route(g, index, (3, 3), (1, 1), (6, 6)))
    assert torch.equal(back[..., :4, :4], g) and int(back.ne(0).sum()) == g.numel()  # each window's top left


def reference_windows(x, kernel, stride):
    w = x.unfold(2, kernel[0], stride[0]).unfold(3, kernel[1], stride[1])
    return w.reshape(*w.shape[:4], kernel[0] * kernel[1])


def reference_route(g, index, kernel, stride, in_hw):
    """Each gradient added at its window's tap, one window at a time (int64)."""
    out = torch.zeros((*g.shape[:2], *in_hw), dtype=torch.int64)
    for y in range(g.shape[2]):
        for x in range(g.shape[3]):
            t = index[:, :, y, x].to(torch.int64)
            row, col = y * stride[0] + t // kernel[1], x * stride[1] + t % kernel[1]
            for n in range(g.shape[0]):
                for c in range(g.shape[1]):
                    out[n, c, row[n, c], col[n, c]] += g[n, c, y, x]
    return out


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 9),
       st.integers(0, 9), st.booleans(), st.integers(0, 2**31 - 1))
def test_max_pool_keeps_the_first_maximum_and_routes_gradients_back(kh, kw, sh, sw, dh, dw, ranked, seed):
    gen = torch.Generator().manual_seed(seed)
    h, w = kh + dh, kw + dw
    x = torch.randint(-3, 3, (2, 2, h, w), generator=gen)  # few values: many ties
    rank = torch.randint(-3, 3, (2, 2, h, w), generator=gen) if ranked else None
    out, index = kernels.max_pool(x, rank, (kh, kw), (sh, sw))
    ref_index = reference_windows(x if rank is None else rank, (kh, kw), (sh, sw)).argmax(-1)  # first maximum
    assert torch.equal(index.to(torch.int64), ref_index)
    assert torch.equal(out, reference_windows(x, (kh, kw), (sh, sw)).gather(-1, ref_index[..., None])[..., 0])
    assert torch.equal(kernels.window_sum(x, (kh, kw), (sh, sw)), reference_windows(x, (kh, kw), (sh, sw)).sum(-1))
    g = torch.randint(-1000, 1000, out.shape, generator=gen)
    assert torch.equal(kernels.max_pool_backward(g, index, (kh, kw), (sh, sw), (h, w)),
                       reference_route(g, index, (kh, kw), (sh, sw), (h, w)))


@SETTINGS
@given(st.lists(st.integers(-(1 << 61), 1 << 61), min_size=0, max_size=50), st.integers(-20, 70),
       st.integers(4, 24), st.integers(-10, 30))
def test_rounding_and_counted_saturation_equal_the_numerics_contract(values, shift, width, frac):
    acc = torch.tensor(values, dtype=torch.int64)
    fmt = FixedFormat(width, frac)
    rounded = kernels.round_shift(acc, shift)
    assert torch.equal(rounded, numerics.round_shift(acc, shift))
    clipped, count = kernels.saturate_counted(rounded, fmt)
    assert torch.equal(clipped, numerics.saturate(rounded, fmt))
    assert count == numerics.count_saturated(rounded, fmt)


def test_exact_paths_follow_the_bounds():
    digits = ("digits",) if kernels.int8_gemm_available() else ()
    nat = ("native",) if native.library() is not None else ()  # 16-bit operands, any number of terms
    assert kernels.exact_paths(kernels.DIGIT_MAX_TERMS, 16, 16) == (*nat, *digits, "float64", "int64")
    assert kernels.exact_paths(kernels.DIGIT_MAX_TERMS + 1, 16, 16) == (*nat, "float64", "int64")
    assert kernels.exact_paths(100, 17, 16) == ("float64", "int64")
    assert kernels.exact_paths(1 << 20, 24, 24) == ("int64",)  # 2^20 * 2^46 > 2^53
    with pytest.raises(ValueError, match="unknown path"):
        with kernels.force_path("float32"):
            pass


def test_two_exact_paths_that_disagree_stop_the_run(monkeypatch):
    if not kernels.int8_gemm_available():
        pytest.skip("no int8 GEMM here: only one path is ever chosen")
    real = kernels.digit_matmul_into

    def off_by_one(out, *args):
        real(out, *args)
        out[0, 0] += 1

    monkeypatch.setattr(kernels, "digit_matmul_into", off_by_one)
    monkeypatch.setattr(kernels, "_fastest", {})
    x = torch.randint(-100, 100, (1, 3, 5, 7))
    w = torch.randint(-100, 100, (2, 3, 3, 3))
    with pytest.raises(AssertionError, match="disagree"):
        kernels.conv2d(x, w, (1, 1), (1, 1), (16, 16))


def test_a_shape_the_int8_gemm_refuses_is_left_to_float64(monkeypatch):
    if not kernels.int8_gemm_available():
        pytest.skip("no int8 GEMM here")

    def refuse(a, b):
        raise RuntimeError("_int_mm: self.size(0) needs to be greater than 16")

    monkeypatch.setattr(torch, "_int_mm", refuse)
    monkeypatch.setattr(kernels, "_fastest", {})
    x, w = torch.randint(-100, 100, (1, 3, 5, 7)), torch.randint(-100, 100, (2, 3, 3, 3))
    assert torch.equal(kernels.conv2d(x, w, (1, 1), (1, 1), (16, 16)), int64_conv(x, w, (1, 1), (1, 1)))
    assert set(kernels.chosen_paths().values()) <= {"float64", "native"}


@pytest.mark.parametrize("path", ["digits", "native"])
def test_the_packed_layout_of_weights_follows_in_place_changes(path):
    if path not in kernels.exact_paths(5, 16, 16):
        pytest.skip(f"no {path} path here")
    x = torch.randint(-100, 100, (4, 5))
    w = torch.randint(-100, 100, (3, 5))
    with kernels.force_path(path):
        assert torch.equal(kernels.linear(x, w, (16, 16)), x @ w.T)
        w.mul_(-3)
        assert torch.equal(kernels.linear(x, w, (16, 16)), x @ w.T)


def _per_step_integrated_gradients(qg, x_q, target, steps, rule):
    """The integrated-gradients sum one step at a time (the golden model's previous loop)."""
    from xaihls.methods import ReluBackward, ig_constants

    c = ig_constants(steps, rule, qg.width)
    sat = golden.Saturations()
    weighted_sum = torch.zeros_like(x_q)
    for alpha, weight in zip(c.alphas, c.weights):
        points = sat.requantize(alpha * x_q, c.alpha_frac + qg.input_fmt.frac, qg.input_fmt, "ig_path")
        _, kept = golden.forward(qg, points, sat)
        weighted_sum += weight * golden.backward(qg, kept, target, ReluBackward.MASK, sat)
    summed_fmt = qg.attribution_formats.ig_summed_gradient
    summed = sat.requantize(weighted_sum, c.weight_frac + qg.grad_fmt(ReluBackward.MASK, 0).frac, summed_fmt,
                            "ig_sum")
    fmt = qg.attribution_formats.integrated_gradients
    return sat.requantize(x_q * summed, qg.input_fmt.frac + summed_fmt.frac, fmt, "attribution"), sat.counts


@pytest.mark.parametrize("budget", [1 << 20, 40_000, 1])  # whole steps, steps cut between images, one image
def test_integrated_gradients_passes_change_no_bit_and_no_count(monkeypatch, budget):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3)).eval()
    qg = calibrate(graph_from_module(model, (1, 8, 8)), torch.rand(8, 1, 8, 8), methods=("integrated_gradients",),
                   config={"layers": {"0": {"output": "ap_fixed<16,1>"}}})  # narrow: some saturation
    x = torch.rand(5, 1, 8, 8) * 3
    monkeypatch.setattr(golden, "PASS_BYTES", budget)
    r = golden.attribute(qg, x, "integrated_gradients", target=1, steps=7, rule="trapezoid")
    sat = golden.Saturations()
    x_q = golden.quantize_input(qg, x, sat)
    attr, counts = _per_step_integrated_gradients(qg, x_q, torch.ones(5, dtype=torch.int64), 7, "trapezoid")
    assert torch.equal(r.attribution, attr)
    counts.update(sat.counts)
    logits_sat = golden.Saturations()
    golden.forward(qg, x_q, logits_sat, keep_relu=True)
    counts.update(logits_sat.counts)
    assert r.saturations == dict(counts) and counts["0"] > 0


@pytest.mark.parametrize("method", ["gradient", "saliency", "input_x_gradient", "guided_backprop", "deconvnet"])
def test_a_batch_in_passes_gives_the_same_bits_and_counts_as_in_one(monkeypatch, method):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4, 3)).eval()
    qg = calibrate(graph_from_module(model, (2, 8, 8)), torch.rand(8, 2, 8, 8),
                   config={"layers": {"0": {"output": "ap_fixed<16,-3>", "gradient": "ap_fixed<16,-9>"}}})
    x = torch.rand(7, 2, 8, 8) * 3
    whole = golden.attribute(qg, x, method)
    monkeypatch.setattr(golden, "PASS_BYTES", 3 * 8 * 4 * 8 * 8)  # three images a pass: 3 + 3 + 1
    assert golden.images_per_pass(qg) == 3
    passes = golden.attribute(qg, x, method)
    assert torch.equal(passes.logits, whole.logits) and torch.equal(passes.attribution, whole.attribution)
    assert passes.saturations == whole.saturations and whole.saturations.get("0", 0) > 0, whole.saturations
    assert torch.equal(golden.predict(qg, x).logits, whole.logits)
