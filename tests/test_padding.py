"""Zero padding with unequal sides: ``F.pad`` / ``nn.ZeroPad2d`` before a convolution (how TensorFlow's
'same' at stride 2 is written in PyTorch) and PyTorch's ``padding='same'`` with even kernels. The
front end folds the pad into the convolution (padding above and left, the output's size says how far
the windows reach below and right), and every executor runs it."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Conv2d
from xaihls.frontend.reference import forward_float
from xaihls.frontend.trace import graph_from_module
from xaihls.methods import METHODS
from tests.random_nets import padded_net
from tests.test_differential import _refused_or_bit_exact_everywhere
from tests.test_frontend import _traced, assert_traces_to_the_model


class TensorFlowSame(nn.Module):
    """A MobileNet-like stem as ported from Keras: 'same' at stride 2 is one zero row and column at the
    bottom and right; 'same' at stride 1 with even kernels pads one more zero at the end."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.even = nn.Conv2d(8, 8, 4, padding="same")
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.dw = nn.Conv2d(8, 8, 3, stride=2, groups=8)
        self.pw = nn.Conv2d(8, 12, 2, padding="same")
        self.fc = nn.Linear(12 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.stem(F.pad(x, (0, 1, 0, 1))))
        x = F.relu6(self.even(x))
        x = F.relu(self.dw(self.pad(x)))
        x = F.relu(self.pw(x))
        return self.fc(torch.flatten(x, 1))


SHAPE = (3, 16, 16)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return TensorFlowSame().eval()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_unequal_padding_folds_into_the_convolutions(exported, tmp_path):
    model = _model()
    graph = _traced(model, SHAPE, exported, tmp_path)
    convs = [layer for layer in graph.layers if isinstance(layer, Conv2d)]
    assert [(c.padding, c.padding_end, c.out_shape[1:]) for c in convs] == [
        ((0, 0), (1, 1), (8, 8)), ((1, 1), (2, 2), (8, 8)), ((0, 0), (1, 1), (4, 4)), ((0, 0), (1, 1), (4, 4))]
    assert all(c.uneven for c in convs)
    x = torch.randn(3, *SHAPE)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(12))
def test_a_random_padded_net_traces_to_the_same_function_and_gradient(seed):
    assert_traces_to_the_model(*padded_net(seed)[:2])


@pytest.mark.parametrize("seed", range(8))
def test_a_random_padded_net_is_bit_exact_everywhere(seed):
    """tests/random_nets.py ``padded_net`` on the program and csim engines, predict and every method:
    the engine takes every one of them."""
    _refused_or_bit_exact_everywhere(seed, *padded_net(seed), may_refuse=False)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_unequal_padding_attribution_correlates_with_captum_on_the_model_itself():
    from tests.test_fidelity import captum_pearson

    model = _model()
    gen = torch.Generator().manual_seed(3)
    acc = xaihls.compile(model, SHAPE, calibration=torch.rand(32, *SHAPE, generator=gen), backends=("golden",))
    x = torch.rand(8, *SHAPE, generator=gen)
    for method in METHODS:
        r = captum_pearson(acc, model, x, method)
        assert float(r.mean()) >= 0.995 and float(r.min()) >= 0.98, (method, r)


@pytest.mark.parametrize("pad,needle", [
    (lambda x: F.pad(x, (1, 1, 1, 1), value=1.0), "value 1.0 (only zeros"),
    (lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), "mode 'reflect'"),
    (lambda x: F.pad(x, (-1, 0, 0, 0)), "none negative"),
    (lambda x: F.pad(x, (0, 0, 0, 0, 1, 1)), "zeros on the map's 2 dims"),
])
def test_a_pad_the_engine_cannot_fold_is_refused_in_one_line(pad, needle):
    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.fc = nn.LazyLinear(2)

        def forward(self, x):
            return self.fc(torch.flatten(self.conv(pad(x)) if needle != "zeros on the map's 2 dims" else
                                         self.conv(pad(x)[:, :2]), 1))

    model = Padded()
    model(torch.zeros(1, 2, 6, 6))
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(model.eval(), (2, 6, 6))
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_pad_read_by_a_pool_is_refused_in_one_line():
    """A max-pool pads with -infinity, so a zero pad before it is not its padding."""
    model = nn.Sequential(nn.ZeroPad2d(1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 2)).eval()
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(model, (2, 6, 6))
    assert "a zero pad read by other than one convolution" in str(e.value) and "\n" not in str(e.value)
