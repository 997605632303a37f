"""Dilated convolutions (TCN and WaveNet blocks, dilated 2-D convolutions): golden and the engines run
one as its spread, the kernel as large as the window with zeros between the taps, and the engines'
jobs step over the zeros a tap step apart (docs/frontend.md, "Dilated convolutions")."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import xaihls
from xaihls.frontend.ir import Conv2d
from xaihls.frontend.reference import forward_float
from xaihls.frontend.trace import graph_from_module
from xaihls.methods import METHODS
from xaihls.plan import lowering, timing
from xaihls.plan.lowering import Buffers, Shape, lower
from tests.random_nets import dilated_net
from tests.test_differential import _refused_or_bit_exact_everywhere
from tests.test_frontend import _traced, assert_traces_to_the_model


class TemporalNet(nn.Module):
    """A TCN on a (C, L) sequence: residual blocks of dilations 1, 2, 4 and 8, a depthwise dilated conv,
    a global mean and a Linear."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Conv1d(4, 8, 1)
        self.blocks = nn.ModuleList(nn.Conv1d(8, 8, 3, padding=d, dilation=d) for d in (1, 2, 4, 8))
        self.dw = nn.Conv1d(8, 8, 3, padding="same", dilation=3, groups=8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.inp(x))
        for block in self.blocks:
            x = x + F.relu(block(x))
        return self.fc(F.relu(self.dw(x)).mean(2))


SHAPE = (4, 48)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return TemporalNet().eval()


@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_dilated_convolutions_trace_with_their_dilation(exported, tmp_path):
    model = _model()
    graph = _traced(model, SHAPE, exported, tmp_path)
    convs = [layer for layer in graph.layers if isinstance(layer, Conv2d)]
    assert [(c.dilation, c.reach, c.padding) for c in convs[1:]] == [
        ((1, 1), (1, 3), (0, 1)), ((1, 2), (1, 5), (0, 2)), ((1, 4), (1, 9), (0, 4)), ((1, 8), (1, 17), (0, 8)),
        ((1, 3), (1, 7), (0, 3))]
    x = torch.randn(3, *SHAPE)
    torch.testing.assert_close(forward_float(graph, graph.as_maps(x)), model(x), rtol=1e-5, atol=1e-5)


def test_a_spread_convolution_is_the_dilated_one():
    conv = nn.Conv2d(3, 4, (2, 3), stride=(1, 2), padding=(1, 2), dilation=(3, 2)).eval()
    layer = graph_from_module(_with_head(conv, (3, 9, 11)), (3, 9, 11)).layers[0]
    spread = layer.spread()
    assert spread.kernel == (4, 5) and spread.dilation == (1, 1) and layer.reach == (4, 5)
    assert int((spread.weight != 0).sum()) == int((conv.weight != 0).sum())
    x = torch.randn(2, 3, 9, 11)
    torch.testing.assert_close(F.conv2d(x, spread.weight, spread.bias, spread.stride, spread.padding), conv(x))


def _with_head(conv: nn.Module, shape) -> nn.Module:
    model = nn.Sequential(conv, nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, *shape))
    return model.eval()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("seed", range(12))
def test_a_random_dilated_net_traces_to_the_same_function_and_gradient(seed):
    assert_traces_to_the_model(*dilated_net(seed)[:2])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("seed", range(8))
def test_a_random_dilated_net_is_bit_exact_everywhere(seed):
    """tests/random_nets.py ``dilated_net`` on the program and csim engines, predict and every method:
    residual blocks (a dilated conv one of two readers), depthwise and strided dilated convs."""
    _refused_or_bit_exact_everywhere(seed, *dilated_net(seed), may_refuse=False)


def test_a_dilated_conv_before_a_fused_pool_is_bit_exact():
    """Its backward reads the pooled gradient through the kept indices (an UNPOOL job, one tap a column):
    that job walks its spread at step 1, its forward at the tap step."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=3, dilation=3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 3)).eval()
    calibration = torch.rand(16, 2, 12, 12)
    acc = xaihls.compile(model, (2, 12, 12), calibration=calibration, backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(4096, 1024, 4096))
    first = [d for d in program.backward if d.layer == 0]
    assert first and all(d.unpool and (d.iky, d.ikx) == (-1, -1) and (d.ky, d.kx) == (5, 5) for d in first)
    assert (program.forward[0].ky, program.forward[0].iky) == (3, 2)
    for seed in (1, 3):  # tilings (8, 4) and (16, 8)
        _refused_or_bit_exact_everywhere(seed, model, (2, 12, 12), calibration, may_refuse=False,
                                         backends=("program",))


def test_the_jobs_step_over_the_zeros_and_count_the_kernels_macs():
    """A dilation of 4 runs at tap step 2 (the largest divisor a job's step holds), 5 passes a row
    instead of the spread's 9; of 6 at step 3. The network's MACs a job counts are the kernel's taps
    on the map, with the steps or without them: on a convolution without padding, the layer's."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, dilation=(4, 6)), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 9, 3))
    acc = xaihls.compile(model.eval(), (3, 18, 21), calibration=torch.rand(8, 3, 18, 21), backends=("golden",))
    conv = acc.graph.layers[0]
    for steps, passes in ((True, (5, 5, 2, 3)), (False, (9, 13, 1, 1))):
        lowering.TAP_STEPS = steps
        try:
            program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(4096, 1024, 4096))
        finally:
            lowering.TAP_STEPS = True
        d = program.forward[0]
        assert (d.ky, d.kx, d.iky, d.ikx) == passes
        assert timing.network_macs(d, acc.graph.layers) == conv.macs
        backward = [d for d in program.backward if d.layer == 0]
        assert sum(timing.network_macs(d, acc.graph.layers) for d in backward) == conv.macs


@pytest.fixture(scope="module")
def compiled_tcn():
    model = _model()
    gen = torch.Generator().manual_seed(3)
    acc = xaihls.compile(model, SHAPE, calibration=torch.randn(32, *SHAPE, generator=gen), backends=("golden",))
    return acc, model, torch.randn(8, *SHAPE, generator=gen)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_tcn_attribution_correlates_with_captum(compiled_tcn, method):
    """Golden against Captum float, 8 inputs never calibrated on; the rectifier-rule methods on the traced
    graph as modules (Captum hooks nn.ReLU modules only; the model's ReLUs are functional)."""
    from tests.test_fidelity import captum_pearson

    r = captum_pearson(*compiled_tcn, method)
    assert float(r.mean()) >= 0.995 and float(r.min()) >= 0.98, (method, r)


def test_a_residual_blocks_gradient_sum_steps_over_the_zeros():
    """A TCN block's input is read by its dilated conv and by the Add: the gradient sum's merged grid
    (the spread's taps p - t * d and the Add's at 0) is walked at step 2 for dilations 2, 4 and 8. The
    network's MACs of the backward lists are the same with the steps and without them."""
    model = _model()
    acc = xaihls.compile(model, SHAPE, calibration=torch.randn(16, *SHAPE), backends=("golden",))
    macs = {}
    for steps in (True, False):
        lowering.TAP_STEPS = steps
        try:
            program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(4096, 1024, 4096))
        finally:
            lowering.TAP_STEPS = True
        # the two-source jobs: the sums (a 1-D model's maps run as columns, lowering.ONE_D_COLUMNS)
        walked = {(d.ky, d.iky) for d in program.backward if d.src_b}
        assert walked == ({(3, -1), (3, -2), (5, -2), (9, -2)} if steps else {(3, -1), (5, -1), (9, -1), (17, -1)})
        macs[steps] = sum(timing.network_macs(d, program.qgraph.graph.layers) for d in program.backward)
    assert macs[True] == macs[False] > 0
