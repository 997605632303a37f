"""Fidelity: the 16-bit golden model against float PyTorch and Captum, on test images never used to calibrate."""

import json
from pathlib import Path

import pytest
import torch

import xaihls
from xaihls.methods import METHODS
from xaihls.models.digits import load_digits_split
from xaihls.models.zoo import get_zoo_model
from xaihls.frontend.reference import graph_to_module, layer_module
from xaihls.reports.fidelity import captum_attribute, pearson_per_image

TEST_IMAGES = 32  # per architecture: the first of the test split; the full split is used for top-1 agreement
ON_THE_GRAPH = ("guided_backprop", "deconvnet", "grad_cam", "guided_grad_cam")


def captum_pearson(acc, model, x: torch.Tensor, method: str, steps: int = 32) -> torch.Tensor:
    """Per-image Pearson of golden's attribution of ``x`` (for golden's predicted classes) against Captum
    float: on the user's own ``model`` for the gradient methods; the rectifier-rule and Grad-CAM methods
    on the traced graph as modules (Captum's guided backprop and deconvnet hook nn.ReLU modules only,
    so on functional ReLUs they would be the plain gradient; Grad-CAM names a layer of the graph), a
    1-D model's inputs as the graph's maps there."""
    target = acc.predict(x).argmax(1)
    golden = acc.attribute(x, method, target=target, steps=steps)
    if method in ON_THE_GRAPH:
        module = graph_to_module(acc.graph)
        layer = layer_module(module, acc.graph, acc.qgraph.cam_layer) if "cam" in method else None
        theirs = acc.graph.as_samples(captum_attribute(module, acc.graph.as_maps(x), method, target, steps, layer))
    else:
        theirs = captum_attribute(model, x, method, target, steps=steps)
    assert theirs.shape == golden.shape, method
    return pearson_per_image(golden, theirs)


@pytest.fixture(scope="module")
def digits_test():
    _, _, x_test, y_test = load_digits_split(0)
    return x_test, y_test


@pytest.fixture(scope="module", params=["digits", "digits_strided_bn", "digits_gap"])
def compiled(request):
    entry = get_zoo_model(request.param)
    module = entry.build()
    acc = xaihls.compile(module, entry.input_shape, calibration=entry.calibration(), methods=tuple(METHODS))
    return request.param, module, acc


def test_calibration_images_are_not_test_images(digits_test):
    x_test, _ = digits_test
    calib = get_zoo_model("digits").calibration()
    flat_test = {tuple(t.flatten().tolist()) for t in x_test}
    assert not any(tuple(c.flatten().tolist()) in flat_test for c in calib)


def test_golden_top1_matches_float_on_the_digits_test_split(digits_test):
    x_test, y_test = digits_test
    entry = get_zoo_model("digits")
    module = entry.build()
    acc = xaihls.compile(module, entry.input_shape, calibration=entry.calibration(), methods=("gradient",))
    with torch.no_grad():
        float_top1 = module(x_test).argmax(1)
    golden_top1 = acc.predict(x_test).argmax(1)
    agreement = float((golden_top1 == float_top1).float().mean())
    assert agreement >= 0.98
    # the float accuracy we state in models.json is the one this model has
    stated = json.loads((Path(xaihls.__file__).parent / "models/data/models.json").read_text())["digits_cnn"]
    assert abs(float((float_top1 == y_test).float().mean()) - stated["float_test_accuracy"]) < 1e-4
    assert float((golden_top1 == y_test).float().mean()) >= stated["float_test_accuracy"] - 0.01


def knife_edge_relu_flips(acc, x: torch.Tensor) -> int:
    """ReLU bits that differ from float at units whose float pre-activation is within
    2**-10 of the layer's mean magnitude of zero: no 16-bit datapath can decide those."""
    from xaihls.frontend.reference import float_attribute
    from xaihls.golden import model as golden

    trace = float_attribute(acc.graph, x, "gradient")
    sat = golden.Saturations()
    _, kept = golden.forward(acc.qgraph, golden.quantize_input(acc.qgraph, x, sat), sat)
    flips = 0
    for i, bits in kept.relu_bits.items():
        pre = trace.activations[i - 1] if i > 0 else x
        edge = pre.abs() < pre.abs().mean() * 2.0**-10
        flips += int(((pre > 0) != bits)[edge].sum())
    return flips


@pytest.mark.parametrize("method", list(METHODS))
def test_attribution_correlates_with_captum(compiled, digits_test, method):
    """Mean >= 0.995 and min >= 0.98 per image, except where the float model sits on a knife edge.

    Captum runs on the traced graph rebuilt with nn.ReLU modules (Captum's guided backprop and
    deconvnet ignore functional ReLUs). An image below 0.98 must be explained by a ReLU whose
    float pre-activation is within 2**-10 of its layer's mean magnitude of zero.
    """
    name, module, acc = compiled
    x = digits_test[0][:TEST_IMAGES]
    target = acc.predict(x).argmax(1)
    golden = acc.attribute(x, method, target=target, steps=32)
    reference = captum_attribute(graph_to_module(acc.graph), x, method, target, steps=32)
    r = pearson_per_image(golden, reference)
    assert float(r.mean()) >= 0.995, f"{name}/{method}: mean Pearson {float(r.mean()):.4f}"
    for i in (r < 0.98).nonzero().flatten().tolist():
        assert knife_edge_relu_flips(acc, x[i:i + 1]) > 0, f"{name}/{method} image {i}: Pearson {float(r[i]):.4f}"
    assert float(r.min()) >= 0.95, f"{name}/{method}: min Pearson {float(r.min()):.4f}"


def test_integrated_gradients_scale_matches_a_true_trapezoid_rule(compiled, digits_test):
    """Captum's riemann_trapezoid weights sum to (n-1)/n; ours sum to 1 (see methods.ig_rule)."""
    _, module, acc = compiled
    x = digits_test[0][:4]
    target = acc.predict(x).argmax(1)
    ours = acc.attribute(x, "integrated_gradients", target=target, steps=16).double()
    theirs = captum_attribute(module, x, "integrated_gradients", target, steps=16).double()
    ratio = (ours * theirs).sum() / (theirs * theirs).sum()
    assert abs(float(ratio) - 16 / 15) < 0.01


@pytest.fixture(scope="module", params=["digits_resnet", "digits_mobilenet"])
def compiled_edge(request):
    from xaihls.methods import ALL_METHODS

    entry = get_zoo_model(request.param)
    module = entry.build()
    acc = xaihls.compile(module, entry.input_shape, calibration=entry.calibration(), methods=tuple(ALL_METHODS),
                         backends=("golden",))
    return request.param, module, acc


@pytest.mark.parametrize("method", ["gradient", "saliency", "input_x_gradient", "integrated_gradients",
                                    "guided_backprop", "deconvnet", "grad_cam", "guided_grad_cam"])
def test_edge_net_attribution_correlates_with_captum(compiled_edge, digits_test, method):
    """The residual and depthwise-separable digits nets: mean >= 0.995 and min >= 0.98 per image against
    Captum on the traced graph (LayerGradCam and GuidedGradCam at the last Conv2d for the Grad-CAM methods)."""
    from xaihls.frontend.reference import layer_module

    name, _, acc = compiled_edge
    x = digits_test[0][:TEST_IMAGES]
    target = acc.predict(x).argmax(1)
    golden = acc.attribute(x, method, target=target, steps=32)
    module = graph_to_module(acc.graph)
    layer = layer_module(module, acc.graph, acc.qgraph.cam_layer) if acc.qgraph.cam_layer else None
    reference = captum_attribute(module, x, method, target, steps=32, layer=layer)
    r = pearson_per_image(golden, reference)
    assert float(r.mean()) >= 0.995, f"{name}/{method}: mean Pearson {float(r.mean()):.4f}"
    assert float(r.min()) >= 0.98, f"{name}/{method}: min Pearson {float(r.min()):.4f}"


def test_edge_nets_top1_matches_float(digits_test):
    x_test, _ = digits_test
    for name in ("digits_resnet", "digits_mobilenet"):
        entry = get_zoo_model(name)
        module = entry.build()
        acc = xaihls.compile(module, entry.input_shape, calibration=entry.calibration(), methods=("gradient",),
                             backends=("golden",))
        with torch.no_grad():
            float_top1 = module(x_test).argmax(1)
        assert float((acc.predict(x_test).argmax(1) == float_top1).float().mean()) >= 0.98, name


# (net, calibration images, integrated-gradients steps): the 3 x 96 x 96 net on fewer of each, for time
MLPERF_TINY = [("ds_cnn", 32, 32), ("vww_mobilenet", 8, 8)]


@pytest.fixture(scope="module", params=MLPERF_TINY, ids=[name for name, *_ in MLPERF_TINY])
def compiled_mlperf_tiny(request):
    from xaihls.methods import ALL_METHODS

    name, images, steps = request.param
    entry = get_zoo_model(name)
    model = entry.build()
    acc = xaihls.compile(model, entry.input_shape, calibration=entry.calibration()[:images],
                         methods=tuple(ALL_METHODS), ig_steps=steps, backends=("golden",))
    return name, acc, model, entry.samples()[0], steps


@pytest.mark.parametrize("method", ["gradient", "saliency", "input_x_gradient", "integrated_gradients",
                                    "guided_backprop", "deconvnet", "grad_cam", "guided_grad_cam"])
def test_mlperf_tiny_net_attribution_correlates_with_captum(compiled_mlperf_tiny, method):
    """MLPerf Tiny's DS-CNN and visual wake words MobileNetV1 (random weights, their 8 random sample
    inputs, never calibrated on; integrated gradients of MLPERF_TINY's steps): the same bounds as the
    digits edge nets."""
    name, acc, model, x, steps = compiled_mlperf_tiny
    r = captum_pearson(acc, model, x, method, steps=steps)
    print(f"{name} {method}: mean {float(r.mean()):.4f} min {float(r.min()):.4f}")
    assert float(r.mean()) >= 0.995, f"{name}/{method}: mean Pearson {float(r.mean()):.4f}"
    assert float(r.min()) >= 0.98, f"{name}/{method}: min Pearson {float(r.min()):.4f}"
