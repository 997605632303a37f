"""An AdaptiveAvgPool2d to a size that does not divide the map, read through a flatten by one Linear (VGG's
and AlexNet's heads, whose pools to 7 x 7 and 6 x 6 spread the 1 x 1 map a small image leaves): the Linear
takes the pool into its weights (docs/frontend.md, "Adaptive pools a Linear takes in")."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Flatten, Linear
from xaihls.frontend.reference import forward_float
from xaihls.frontend.trace import graph_from_module
from tests.test_differential import _refused_or_bit_exact_everywhere
from tests.test_frontend import _traced, assert_traces_to_the_model


class Head(nn.Module):
    """Convolutions to a small map, an adaptive average pool to ``size``, then VGG's classifier (Dropout
    between Linears), written as modules or functions."""

    def __init__(self, channels: int, pooled, form: str = "modules"):
        super().__init__()
        self.form, self.pooled = form, pooled
        self.c1 = nn.Conv2d(channels, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 8, 3, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(pooled)
        oh, ow = pooled if isinstance(pooled, tuple) else (pooled, pooled)
        self.fc1 = nn.Linear(8 * oh * ow, 12)
        self.fc2 = nn.Linear(12, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        if self.form == "functions":
            x = F.dropout(F.adaptive_avg_pool2d(x, self.pooled).view(x.size(0), -1).contiguous(), 0.5, self.training)
            x = F.linear(x, self.fc1.weight, self.fc1.bias)
        else:
            x = self.fc1(self.drop(torch.flatten(self.pool(x), 1)))
        return self.fc2(self.drop(F.relu(x)))


# (image, pool size): the map is 1 x 1 (VGG at 32 x 32), 2 x 3 to 5 x 4, and 4 x 4 to 3 x 3 (overlapping bins)
CASES = [((3, 3, 3), (7, 7)), ((3, 5, 7), (5, 4)), ((3, 9, 9), (3, 3))]


@pytest.mark.parametrize("shape,pooled", CASES, ids=["1x1_to_7x7", "2x3_to_5x4", "4x4_to_3x3"])
@pytest.mark.parametrize("form", ["modules", "functions"])
def test_the_linear_takes_the_pool_in_exactly(shape, pooled, form):
    """No pool layer is left; the graph computes the model's logits and input gradients in float64."""
    torch.manual_seed(0)
    model = Head(shape[0], pooled, form).eval()
    graph = graph_from_module(model, shape)
    kinds = [type(layer).__name__ for layer in graph.layers]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten", "Linear", "ReLU", "Linear"]
    _, h, w = graph.layers[3].out_shape
    assert isinstance(graph.layers[4], Flatten) and graph.layers[4].out_shape == (8 * h * w,)
    assert isinstance(graph.layers[5], Linear) and tuple(graph.layers[5].weight.shape) == (12, 8 * h * w)
    assert_traces_to_the_model(model, shape)


def test_a_torch_export_program_takes_it_in_too(tmp_path):
    torch.manual_seed(1)
    model = Head(3, (7, 7)).eval()
    graph = _traced(model, (3, 3, 3), True, tmp_path)
    assert [type(layer).__name__ for layer in graph.layers][4:6] == ["Flatten", "Linear"]
    x = torch.randn(2, 3, 3, 3)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


def test_a_1d_model_takes_it_in():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(5), nn.Flatten(), nn.Linear(20, 3))
    assert_traces_to_the_model(model.eval(), (2, 6))


class _Elsewhere(nn.Module):
    """The spread pool's output read by other than one Linear through a flatten."""

    def __init__(self, reader: str):
        super().__init__()
        self.reader = reader
        self.c = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 9, 2)
        self.fc2 = nn.Linear(4 * 9, 2)
        self.c2 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        p = F.adaptive_avg_pool2d(torch.relu(self.c(x)), 3)
        if self.reader == "conv":
            return self.fc(torch.flatten(self.c2(p), 1))
        if self.reader == "relu":
            return self.fc(torch.flatten(torch.relu(p), 1))
        flat = torch.flatten(p, 1)
        return self.fc(flat) + self.fc2(flat)  # "two": two Linears read it


@pytest.mark.parametrize("reader", ["conv", "relu", "two"])
def test_a_spread_pool_read_otherwise_is_refused_at_the_pool_in_one_line(reader):
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(_Elsewhere(reader).eval(), (3, 4, 4))
    msg = str(e.value)
    assert msg.startswith("unsupported node 'adaptive_avg_pool2d'") and "output size 3 on a 2x2 map" in msg, msg
    assert "\n" not in msg


def test_an_adaptive_max_pool_that_does_not_divide_is_still_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d(3), nn.Flatten(), nn.Linear(36, 2)).eval()
    with pytest.raises(XaiHlsError, match="AdaptiveMaxPool2d output size 3 on a 2x2 map"):
        graph_from_module(model, (3, 4, 4))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_vgg_head_on_a_small_image_is_bit_exact_everywhere(seed):
    """Program and csim against golden for predict and every method (tilings by seed)."""
    torch.manual_seed(seed)
    model = Head(3, (7, 7)).eval()
    calibration = torch.rand(16, 3, 3, 3)
    _refused_or_bit_exact_everywhere(seed, model, (3, 3, 3), calibration, may_refuse=False)
