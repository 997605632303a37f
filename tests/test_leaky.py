"""LeakyReLU and PReLU: y = a·x + (1 - a)·ReLU(x), run on every executor as layers the engines have
(x' = a·x folded into the layer that makes x, r = ReLU(((1 - a) / a)·x'), y = x' + r;
docs/dag.md, "LeakyReLU and PReLU")."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Add, ChannelAffine, Conv2d, Linear, MaxPool2d, ReLU
from xaihls.frontend.reference import forward_float
from xaihls.frontend.trace import graph_from_module
from xaihls.methods import METHODS
from tests.random_nets import leaky_head_net, leaky_net
from tests.test_differential import _refused_or_bit_exact_everywhere
from tests.test_frontend import _traced, assert_traces_to_the_model


class Darknet(nn.Module):
    """A Darknet / YOLO-tiny style classifier: conv-BN-LeakyReLU(0.1) and max-pools, a PReLU with one
    slope a channel, a functional leaky_relu at PyTorch's default slope after a residual add."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1)
        self.conv2, self.act2 = nn.Conv2d(8, 16, 3, padding=1), nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16, 5)
        with torch.no_grad():
            self.bn1.running_mean.uniform_(-0.2, 0.2)
            self.bn1.running_var.uniform_(0.5, 2.0)
            self.act2.weight.uniform_(0.05, 0.4)

    def forward(self, x):
        x = self.pool(self.act1(self.bn1(self.conv1(x))))
        x = self.pool(self.act2(self.conv2(x)))
        x = F.leaky_relu(self.conv3(x) + x)
        return self.fc(x.mean((2, 3)))


SHAPE = (3, 16, 16)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return Darknet().eval()


@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_leaky_relu_and_prelu_become_a_scaled_map_plus_a_relu(exported, tmp_path):
    """The slope folds into the convolution (with its BatchNorm) that alone makes the activation's input;
    after an add it is a per-channel affine of its own. A max-pool of the activation moves before it (it
    commutes with an increasing function): the pool reads the scaled map, and the split follows it."""
    model = _model()
    graph = _traced(model, SHAPE, exported, tmp_path)
    kinds = {layer.name: type(layer) for layer in graph.layers}
    layer = {layer.name: layer for layer in graph.layers}
    splits = [(kinds[a], kinds[b]) for add in graph.layers if isinstance(add, Add) for a, b in [add.inputs]
              if kinds[b] is ReLU]
    assert splits == [(MaxPool2d, ReLU), (MaxPool2d, ReLU), (ChannelAffine, ReLU)], splits
    pools = [p for p in graph.layers if isinstance(p, MaxPool2d)]
    assert [kinds[p.inputs[0]] for p in pools] == [Conv2d, Conv2d]
    assert sum(t is ChannelAffine for t in kinds.values()) == 4
    bn = model.bn1
    folded = model.conv1.weight * (0.1 * bn.weight / torch.sqrt(bn.running_var + bn.eps))[:, None, None, None]
    torch.testing.assert_close(layer[pools[0].inputs[0]].weight, folded)  # the slope with the BatchNorm
    x = torch.randn(3, *SHAPE)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


def test_a_pool_stays_after_a_leaky_relu_of_a_negative_slope():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(-0.2), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 2 * 2, 2)).eval()
    graph = graph_from_module(model, (2, 6, 6))
    assert [type(layer) for layer in graph.layers[1:5]] == [ChannelAffine, ReLU, Add, MaxPool2d]
    x = torch.randn(3, 2, 6, 6)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(12))
def test_a_random_leaky_net_traces_to_the_same_function_and_gradient(seed):
    assert_traces_to_the_model(*leaky_net(seed)[:2])


@pytest.mark.parametrize("seed", range(8))
def test_a_random_leaky_net_is_bit_exact_everywhere(seed):
    """tests/random_nets.py ``leaky_net`` on the program and csim engines, predict and every method:
    the engine takes every one of them."""
    _refused_or_bit_exact_everywhere(seed, *leaky_net(seed), may_refuse=False)


def test_grad_cam_of_a_leaky_net_is_bit_exact_everywhere():
    model = _model()
    acc = xaihls.compile(model, SHAPE, calibration=torch.rand(16, *SHAPE), methods=("grad_cam", "guided_grad_cam"),
                         tiling=(8, 4), backends=("golden", "program", "csim"))
    x = torch.rand(2, *SHAPE)
    for method in ("grad_cam", "guided_grad_cam"):
        g = acc.run(x, method)
        for backend in ("program", "csim"):
            assert torch.equal(acc.run(x, method, backend=backend).attribution, g.attribution), (backend, method)


@pytest.fixture(scope="module")
def compiled_darknet():
    model = _model()
    gen = torch.Generator().manual_seed(3)
    acc = xaihls.compile(model, SHAPE, calibration=torch.rand(32, *SHAPE, generator=gen),
                         methods=(*METHODS, "grad_cam", "guided_grad_cam"), backends=("golden",))
    return acc, model, torch.rand(8, *SHAPE, generator=gen)


@pytest.mark.parametrize("method", [*METHODS, "grad_cam", "guided_grad_cam"])
def test_leaky_attribution_correlates_with_captum(compiled_darknet, method):
    """Golden against Captum float, 8 inputs never calibrated on. The gradient methods on the user's own
    model. Guided backprop, deconvnet and guided Grad-CAM on the traced graph as modules, where the
    LeakyReLU's rectifying part is an nn.ReLU (Captum hooks nn.ReLU modules only, so on the model itself
    it would take the plain gradient through a LeakyReLU); Grad-CAM there too, since it names a layer of
    the graph (the last convolution, whose output the slope scales: Grad-CAM does not change)."""
    from tests.test_fidelity import captum_pearson

    r = captum_pearson(*compiled_darknet, method)
    assert float(r.mean()) >= 0.995 and float(r.min()) >= 0.98, (method, r)


def test_grad_cam_on_the_users_last_convolution_is_captums():
    """The slope folded into the last convolution scales its output by a and its gradient by 1 / a, so
    Grad-CAM on that layer is Captum's LayerGradCam on the user's own module."""
    from xaihls.reports.fidelity import captum_attribute, pearson_per_image

    model = _model()
    acc = xaihls.compile(model, SHAPE, calibration=torch.rand(32, *SHAPE), methods=("grad_cam",),
                         backends=("golden",))
    x = torch.rand(8, *SHAPE)
    target = acc.predict(x).argmax(1)
    golden = acc.attribute(x, "grad_cam", target=target)
    r = pearson_per_image(golden, captum_attribute(model, x, "grad_cam", target, layer=model.conv3))
    assert float(r.mean()) >= 0.995 and float(r.min()) >= 0.98, r


@pytest.mark.parametrize("act,layers", [(nn.LeakyReLU(0.0), (Conv2d, ReLU)), (nn.PReLU(init=1.0), (Conv2d,))])
def test_a_slope_of_zero_is_a_relu_and_of_one_nothing(act, layers):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), act, nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()
    graph = graph_from_module(model, (2, 6, 6))
    assert tuple(type(layer) for layer in graph.layers[:-2]) == layers


def test_a_leaky_relu_in_a_1d_model():
    model = nn.Sequential(nn.Conv1d(4, 6, 5, padding=2), nn.PReLU(6), nn.Conv1d(6, 6, 3, padding=1),
                          nn.LeakyReLU(0.2), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    graph = graph_from_module(model, (4, 20))
    x = torch.randn(3, 4, 20)
    torch.testing.assert_close(forward_float(graph, graph.as_maps(x)), model(x), rtol=1e-5, atol=1e-5)
    _refused_or_bit_exact_everywhere(1, model, (4, 20), torch.randn(16, 4, 20), may_refuse=False,
                                     backends=("program",))


@pytest.mark.parametrize("make,needle", [
    (lambda: nn.LeakyReLU(1.5), "a slope of 1.5 on channel 0 (the engines take slopes below 1"),
    (lambda: _prelu_with_a_zero(), "a slope of 0 on channel 1"),
])
def test_a_slope_the_engines_cannot_split_is_refused_in_one_line(make, needle):
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(2, 3, 3))
    model.add_module("act", make())
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", nn.Linear(3 * 4 * 4, 2))
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(model.eval(), (2, 6, 6))
    assert "node 'act'" in str(e.value) and needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def _prelu_with_a_zero() -> nn.PReLU:
    p = nn.PReLU(3)
    with torch.no_grad():
        p.weight.copy_(torch.tensor([0.2, 0.0, 0.1]))
    return p


@pytest.mark.parametrize("seed", range(6))
def test_a_leaky_relu_of_a_linears_features_is_bit_exact_everywhere(seed):
    """A hidden Linear's LeakyReLU or PReLU: the slope folds into the Linear, and the per-channel affine, its
    ReLU and the Add run on the features as on a map of 1 x 1 (tests/random_nets.py ``leaky_head_net``)."""
    model, shape, calibration = leaky_head_net(seed)
    graph = graph_from_module(model, shape)
    assert [type(layer) for layer in graph.layers[-5:]] == [Linear, ChannelAffine, ReLU, Add, Linear]
    assert_traces_to_the_model(model, shape)
    _refused_or_bit_exact_everywhere(seed, model.float(), shape, calibration, may_refuse=False)
