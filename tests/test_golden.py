"""Golden model: integer arithmetic checked against an independent int64 formulation."""

import pytest
import torch
import torch.nn as nn

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Conv2d, Graph, Linear
from xaihls.frontend.trace import graph_from_module
from xaihls.golden import model as golden
from xaihls.methods import ReluBackward
from xaihls.quant.calibrate import calibrate


def int_conv(x, w, stride, padding):
    """Direct integer convolution: a loop over kernel taps, int64 sums only."""
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
            out += torch.einsum("nchw,oc->nohw", patch, w[:, :, ky, kx])
    return out


def int_conv_input_grad(g, w, in_shape, stride, padding):
    """Input gradient by scattering each output's contribution: int64 only."""
    n, o, oh, ow = g.shape
    _, c, kh, kw = w.shape
    h, wd = in_shape
    (sh, sw), (ph, pw) = stride, padding
    gp = torch.zeros((n, c, h + 2 * ph + kh, wd + 2 * pw + kw), dtype=torch.int64)
    for ky in range(kh):
        for kx in range(kw):
            contrib = torch.einsum("nohw,oc->nchw", g, w[:, :, ky, kx])
            gp[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw] += contrib
    return gp[:, :, ph:ph + h, pw:pw + wd]


def single_conv_qgraph(c, o, h, w, k, stride, pad, width=16):
    g = torch.Generator().manual_seed(c * 100 + o + k)
    weight = torch.randn(o, c, k, k, generator=g)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    conv = Conv2d("conv", (c, h, w), (o, oh, ow), weight, torch.zeros(o), (k, k), (stride, stride), (pad, pad))
    fc = Linear("fc", (o * oh * ow,), (3,), torch.randn(3, o * oh * ow, generator=g), torch.zeros(3))
    from xaihls.frontend.ir import Flatten

    graph = Graph((c, h, w), (conv, Flatten("flat", (o, oh, ow), (o * oh * ow,)), fc))
    return graph


@pytest.mark.parametrize("c,o,h,w,k,stride,pad", [
    (3, 4, 9, 7, 3, 1, 1), (8, 5, 10, 10, 3, 2, 1), (64, 16, 6, 6, 3, 1, 1), (2, 3, 11, 8, 5, 2, 2), (4, 4, 7, 7, 1, 2, 0),
])
def test_conv_forward_and_input_gradient_equal_integer_reference(c, o, h, w, k, stride, pad):
    graph = single_conv_qgraph(c, o, h, w, k, stride, pad)
    qg = calibrate(graph, torch.rand(4, c, h, w) * 2 - 1, methods=("gradient",))
    q = qg.layers[0]
    gen = torch.Generator().manual_seed(7)
    # full-range integers: the exactness claim must hold at the extremes too
    x = torch.randint(-(2**15), 2**15, (2, c, h, w), generator=gen)
    x[0].fill_(-(2**15))
    sat = golden.Saturations()
    out, _ = golden._layer_forward(q, 0, x, golden.Kept(), sat, True)
    ref = int_conv(x, q.weight, (stride, stride), (pad, pad)) + (q.bias << q.bias_shift)[None, :, None, None]
    from xaihls.numerics import requantize

    assert torch.equal(out, requantize(ref, q.acc_frac, q.out_fmt))
    gout = torch.randint(-(2**15), 2**15, (2, *graph.layers[0].out_shape), generator=gen)
    mode = ReluBackward.MASK
    gin = golden._layer_backward(qg, 0, gout, mode, golden.Kept(), sat)
    ref = int_conv_input_grad(gout, q.weight, (h, w), (stride, stride), (pad, pad))
    frac = qg.grad_fmt(mode, 1).frac + q.weight_fmt.frac
    assert torch.equal(gin, requantize(ref, frac, qg.grad_fmt(mode, 0)))


def test_maxpool_keeps_first_maximum_on_ties_and_routes_gradient_there():
    model = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 2)).eval()
    qg = calibrate(graph_from_module(model, (1, 4, 4)), torch.rand(2, 1, 4, 4), methods=("gradient",))
    x = torch.tensor([[[[5, 5, 1, 2], [5, 0, 3, 3], [0, 0, -1, -2], [0, 0, -3, -1]]]], dtype=torch.int64)
    kept = golden.Kept()
    out, _ = golden._layer_forward(qg.layers[0], 0, x, kept, golden.Saturations(), True)
    assert out.flatten().tolist() == [5, 3, 0, -1]
    assert kept.pool_indices[0].flatten().tolist() == [0, 2, 0, 0]  # raster order inside each window
    g = torch.tensor([[[[10, 20], [30, 40]]]])
    gin = golden._layer_backward(qg, 0, g, ReluBackward.MASK, kept, golden.Saturations())
    assert gin[0, 0].tolist() == [[10, 0, 0, 0], [0, 0, 20, 0], [30, 0, 40, 0], [0, 0, 0, 0]]


def test_overlapping_maxpool_sums_gradients_routed_to_one_input():
    model = nn.Sequential(nn.MaxPool2d(3, stride=1), nn.Flatten(), nn.Linear(4, 2)).eval()
    qg = calibrate(graph_from_module(model, (1, 4, 4)), torch.rand(2, 1, 4, 4), methods=("gradient",))
    x = torch.zeros((1, 1, 4, 4), dtype=torch.int64)
    x[0, 0, 1, 1] = 9  # the maximum of all four windows
    kept = golden.Kept()
    golden._layer_forward(qg.layers[0], 0, x, kept, golden.Saturations(), True)
    g = torch.ones((1, 1, 2, 2), dtype=torch.int64)
    gin = golden._layer_backward(qg, 0, g, ReluBackward.MASK, kept, golden.Saturations())
    shift = qg.grad_fmt(ReluBackward.MASK, 1).frac - qg.grad_fmt(ReluBackward.MASK, 0).frac
    assert int(gin[0, 0, 1, 1]) == (4 << -shift if shift < 0 else (4 + (1 << shift >> 1)) >> shift)
    assert int(gin.abs().sum()) == int(gin[0, 0, 1, 1])


def test_forward_keeps_only_relu_bits_and_pool_indices():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    qg = calibrate(graph_from_module(model, (1, 8, 8)), torch.rand(4, 1, 8, 8), methods=("gradient",))
    x = golden.quantize_input(qg, torch.rand(2, 1, 8, 8), golden.Saturations())
    _, kept = golden.forward(qg, x, golden.Saturations())
    assert set(kept.relu_bits) == {1} and kept.relu_bits[1].dtype == torch.bool
    assert set(kept.pool_indices) == {2} and kept.pool_indices[2].dtype == torch.uint8


def test_a_bias_the_accumulator_cannot_hold_aligned_is_refused_at_compile_naming_the_layer():
    """A layer's inputs far below one on every calibration image give its accumulator so fine a step
    that its bias, aligned to it, needs more than the 48 bits the engines add it in (torchvision's
    GoogLeNet with untrained weights: its classifier's bias at 2^64). The engines wrapped it and no
    longer equalled golden; compiling now refuses, in one line naming the layer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    with torch.no_grad():
        model[0].bias.zero_()
        model[3].bias.fill_(0.25)
    graph = graph_from_module(model, (1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    calibrate(graph, x, methods=("gradient",))  # inputs of ordinary size: the bias fits
    with torch.no_grad():
        model[0].weight.mul_(1e-9)
    graph = graph_from_module(model, (1, 8, 8))
    linear = graph.layers[-1].name
    with pytest.raises(XaiHlsError, match=rf"^layer '{linear}': its bias aligned to the accumulator \(fraction \d+: "
                                          r"[^\n]* past the 48-bit accumulator; its inputs are at most [^\n]*$"):
        calibrate(graph, x, methods=("gradient",))


def test_saturation_is_counted_per_layer_when_a_format_is_too_narrow():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    graph = graph_from_module(model, (1, 6, 6))
    x = torch.rand(8, 1, 6, 6)
    fine = calibrate(graph, x, methods=("gradient",))
    assert golden.attribute(fine, x, "gradient").saturations == {}
    narrow = calibrate(graph, x, methods=("gradient",), config={"layers": {"0": {"output": "ap_fixed<16,-6>"}}})
    counts = golden.attribute(narrow, x, "gradient").saturations
    assert counts.get("0", 0) > 0 and set(counts) == {"0"}


def test_attribute_checks_method_target_and_shape():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
    qg = calibrate(graph_from_module(model, (1, 2, 2)), torch.rand(4, 1, 2, 2), methods=("saliency",))
    with pytest.raises(XaiHlsError, match="method 'deconvnet' was not compiled in"):
        golden.attribute(qg, torch.rand(1, 1, 2, 2), "deconvnet")
    with pytest.raises(XaiHlsError, match="unknown attribution method 'shap'"):
        golden.attribute(qg, torch.rand(1, 1, 2, 2), "shap")
    with pytest.raises(XaiHlsError, match=r"compiled for \(N, 1, 2, 2\)"):
        golden.attribute(qg, torch.rand(1, 1, 3, 2), "saliency")
    with pytest.raises(XaiHlsError, match=r"target must be .* 0..2"):
        golden.attribute(qg, torch.rand(2, 1, 2, 2), "saliency", target=[0, 3])
