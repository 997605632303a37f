"""1-D models (input (C, L): keyword spotting on MFCC frames, ECG, sensor streams): the front end
runs each 1-D layer as its 2-D layer on a (C, 1, L) map, so every executor takes them; the API
takes and returns the model's own (N, C, L)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, ReLU6
from xaihls.frontend.reference import forward_float
from xaihls.frontend.trace import graph_from_module
from xaihls.methods import ALL_METHODS, METHODS
from tests.random_nets import conv1d_net, long_pool_net
from tests.test_differential import _refused_or_bit_exact_everywhere
from tests.test_frontend import _traced
from tests.test_reliability import _bit_exact


def _randomize_batchnorms(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


class Keyword(nn.Module):
    """A small keyword spotter on 8 MFCC coefficients x 49 frames, written with modules and functions:
    a strided stem, a depthwise-separable block with ReLU6, pools, a global mean and a head whose
    hidden Linear has a BatchNorm1d."""

    def __init__(self, form: str = "modules"):
        super().__init__()
        self.form = form
        self.stem = nn.Conv1d(8, 16, 5, stride=2, padding=2, bias=False)
        self.bn1 = nn.BatchNorm1d(16)
        self.dw = nn.Conv1d(16, 16, 3, padding="same", groups=16)
        self.bn2 = nn.BatchNorm1d(16)
        self.pw = nn.Conv1d(16, 24, 1)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)
        self.conv = nn.Conv1d(24, 24, 3, padding=1)
        self.avg = nn.AvgPool1d(2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(24, 12)
        self.bn3 = nn.BatchNorm1d(12)
        self.out = nn.Linear(12, 6)

    def forward(self, x):
        x = F.relu(self.bn1(self.stem(x)))
        x = F.relu6(self.bn2(self.dw(x)))
        x = self.pool(torch.relu(self.pw(x)))
        x = self.avg(F.relu(self.conv(x)))
        if self.form == "modules":
            x = torch.flatten(self.gap(x), 1)
        elif self.form == "mean":
            x = x.mean(-1)
        elif self.form == "max":  # a global max pool, as text and signal CNNs write it
            x = x.max(-1)[0]
        elif self.form == "max_values":
            x = torch.max(x, dim=2).values
        else:  # "functional"
            x = F.adaptive_avg_pool1d(F.max_pool1d(x, 1), 1).squeeze(-1)
        return self.out(F.relu(self.bn3(self.fc(x))))


SHAPE = (8, 49)


def _keyword(form: str = "modules") -> nn.Module:
    torch.manual_seed(0)
    return _randomize_batchnorms(Keyword(form))


@pytest.mark.parametrize("form", ["modules", "mean", "max", "max_values", "functional"])
@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_a_1d_model_traces_to_2d_layers_that_compute_the_same(form, exported, tmp_path):
    model = _keyword(form)
    graph = _traced(model, SHAPE, exported, tmp_path)
    assert graph.input_shape == (8, 1, 49) and graph.data_shape == SHAPE
    kinds = [type(layer) for layer in graph.layers]
    head = [Flatten, Linear, ReLU, Linear]
    pools = {"functional": [MaxPool2d, AvgPool2d], "max": [MaxPool2d], "max_values": [MaxPool2d]}.get(form, [AvgPool2d])
    assert kinds == [Conv2d, ReLU, Conv2d, ReLU6, Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, AvgPool2d, *pools, *head], kinds
    stem = graph.layers[0]
    assert (stem.kernel, stem.stride, stem.padding) == ((1, 5), (1, 2), (0, 2))
    assert graph.layers[2].groups == 16 and graph.layers[2].padding == (0, 1)
    x = torch.randn(3, *SHAPE)
    torch.testing.assert_close(forward_float(graph, graph.as_maps(x)), model(x), rtol=1e-5, atol=1e-5)


def test_batchnorm1d_of_features_no_linear_feeds_is_refused_in_one_line():
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.BatchNorm1d(3 * 6), nn.Linear(18, 2)).eval()
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(model, (2, 8))
    assert "batch norm of features of shape (18,)" in str(e.value) and "\n" not in str(e.value)


def test_a_constant_that_broadcasts_along_the_map_is_not_taken_for_one_a_channel():
    """torch broadcasts a (C,) constant along a map's last dim: on a 2-D map of width C it is a value a
    column, not a channel, and on a 1-D map of length C a value a position."""

    class Scaled(nn.Module):
        def __init__(self, dims: int):
            super().__init__()
            self.dims = dims
            self.fc = nn.Linear(3 * 3 * (3 if dims == 3 else 1), 2)

        def forward(self, x):
            return self.fc(torch.flatten(x * torch.tensor([1.0, 2.0, 3.0]), 1))

    for shape in ((3, 3, 3), (3, 3)):
        with pytest.raises(XaiHlsError) as e:
            graph_from_module(Scaled(len(shape)).eval(), shape)
        want = "(3, 1, 1)" if len(shape) == 3 else "(3, 1)"
        assert f"a constant of shape (3,) (a number, or one value a channel: {want})" in str(e.value), str(e.value)


def test_the_api_takes_and_returns_the_models_own_shape():
    model = _keyword()
    calibration = torch.randn(16, *SHAPE)
    acc = xaihls.compile(model, SHAPE, calibration=calibration, backends=("golden", "program"), ig_steps=4)
    x = torch.randn(2, *SHAPE)
    assert tuple(acc.attribute(x, "saliency").shape) == (2, *SHAPE)
    assert tuple(acc.attribute(x[0], "saliency").shape) == (1, *SHAPE)
    baseline = torch.full(SHAPE, 0.25)  # a baseline in the model's shape
    maps = acc.run(x, "integrated_gradients", baseline=baseline.reshape(8, 1, 49), backend="program")
    assert torch.equal(acc.run(x, "integrated_gradients", baseline=baseline).attribution, maps.attribution)
    with pytest.raises(XaiHlsError, match=r"input has shape \(2, 8, 50\); the model was compiled for \(N, 8, 49\)"):
        acc.predict(torch.randn(2, 8, 50))
    with pytest.raises(XaiHlsError, match=r"expected \(N, 8, 49\)"):
        xaihls.compile(model, SHAPE, calibration=torch.randn(4, 8, 48), backends=("golden",))


@pytest.mark.parametrize("seed", range(8))
def test_a_random_1d_net_is_bit_exact_everywhere(seed):
    """Random 1-D CNNs (tests/random_nets.py ``conv1d_net``) on the program and csim engines, predict
    and every method: the engine takes every one of them."""
    _refused_or_bit_exact_everywhere(seed, *conv1d_net(seed), may_refuse=False)


@pytest.mark.parametrize("seed", range(8))
def test_a_1d_models_maps_as_columns_compute_what_its_rows_do(seed):
    """``qgraph.maps_as_columns`` (how the engines may run a 1-D model, lowering.ONE_D_COLUMNS): golden on the
    transposed graph, given the image as a column, makes the logits and, transposed back, the attribution of
    every method that golden makes on the graph itself, bit for bit."""
    from xaihls.golden import model as golden
    from xaihls.quant.qgraph import maps_as_columns

    net, shape, calibration = conv1d_net(seed)
    acc = xaihls.compile(net, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    qg, cols = acc.qgraph, maps_as_columns(acc.qgraph)
    c, _, length = qg.graph.input_shape
    assert cols.graph.input_shape == (c, length, 1)
    x = acc.graph.as_maps(torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * 2.0)
    xt = x.transpose(2, 3)
    assert torch.equal(golden.predict(cols, xt).logits, golden.predict(qg, x).logits)
    for method in qg.methods:
        want, got = golden.attribute(qg, x, method), golden.attribute(cols, xt, method)
        assert torch.equal(got.logits, want.logits), method
        assert torch.equal(got.attribution.transpose(-2, -1), want.attribution), method


@pytest.mark.parametrize("as_columns", [False, True], ids=["one_row", "columns"])
@pytest.mark.parametrize("seed", range(8))
def test_a_random_1d_net_as_one_row_and_as_columns_is_bit_exact_on_the_program_executor(seed, as_columns):
    """Both views of a 1-D model's maps (``lower_jobs(..., as_columns=)``), whichever the planner would
    keep, at 4 x 4 with small buffers: the interpreter's logits and attributions of predict and every
    method equal golden's."""
    from xaihls.executor import quantize_input
    from xaihls.methods import METHOD_CODES, PREDICT_CODE
    from xaihls.plan.lowering import Buffers, Shape, lower
    from xaihls.sim.interpreter import Engine as Interpreter

    net, shape, calibration = conv1d_net(seed)
    acc = xaihls.compile(net, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    program = lower(acc.qgraph, Shape(4, 4, 4), Buffers(256, 64, 1024), as_columns=as_columns)
    first = program.forward[0]
    assert (first.iw == 1) == as_columns and (program.header["in_h"], program.header["in_w"]) == (1, shape[1])
    x = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    x_q = quantize_input(acc.qgraph, acc.graph.as_maps(x))[0][0].numpy()
    for method in (None, *METHODS):
        g = acc.run(x, method, steps=3) if method else acc.run(x)
        engine = Interpreter(program)
        engine.load_inputs(x_q, None, 3, "trapezoid")
        run = engine.run(PREDICT_CODE if method is None else METHOD_CODES[method], -1, 3)[0]
        assert np.array_equal(run.logits, g.logits[0].numpy()), method
        if method:
            assert np.array_equal(run.attribution, acc.graph.as_maps(g.attribution)[0].numpy()), method


@pytest.mark.parametrize("length", [38, 300, 1000])
def test_a_global_pool_over_a_long_row_is_summed_and_bit_exact(length):
    """A global average pool over 38 positions (no exact split: a ragged grid), 300 (the row read as 2
    rows of 150) and 1000 (5 rows of 200, each a ragged grid of 15 positions of 14 passes): the summed
    job, not a pass a pixel, bit-exact on program and csim."""
    from xaihls.plan.contract import Flag

    model, shape, calibration = long_pool_net(length)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden", "program", "csim"))
    pool = next(d for d in acc.plan.program.forward if (int(d.flags) >> int(Flag.SUM)) & 1)
    assert pool.ih * pool.iw == length and pool.kx <= 15, (pool.ih, pool.iw, pool.kx)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(length)) * 2.0
    for method in (None, "saliency", "integrated_gradients"):
        g = acc.run(x, method)
        for backend in ("program", "csim"):
            r = acc.run(x, method, backend=backend)
            assert torch.equal(r.logits, g.logits) and (method is None or torch.equal(r.attribution, g.attribution))


def test_a_row_no_engine_buffer_holds_is_refused_naming_the_layer():
    """A 2-D map of 4,000 columns: a row tile of its 3 x 3 convolution reads 3 rows of 4,000 words."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 3 * 4000, 2)).eval()
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model, (1, 3, 4000), calibration=torch.rand(2, 1, 3, 4000), methods=("saliency",),
                       backends=("golden", "program"))
    assert "no engine can hold one row" in str(e.value) and "layer '0': one row tile needs" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_1d_model_longer_than_a_jobs_map_fields_is_refused_in_one_line():
    """A second of raw 16 kHz audio: more samples than a job's 12-bit map fields hold."""
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5, padding=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model, (1, 16000), calibration=torch.rand(2, 1, 16000), methods=("saliency",),
                       backends=("golden", "program"))
    assert ("the input has 16000 samples; the engine's jobs take maps of at most 4095 a side, or a longer image as "
            "the phases of the first convolution's stride" in str(e.value))
    assert "\n" not in str(e.value)


def _strided_1d_net(channels: int, kernel: int, stride: int, padding: int = 0, groups: int = 1) -> nn.Module:
    """A 1-D net whose first convolution has a long stride, as raw-audio nets' (M5: 80 taps, stride 16)."""
    torch.manual_seed(kernel * stride + padding)
    return _randomize_batchnorms(nn.Sequential(
        nn.Conv1d(channels, 8, kernel, stride=stride, padding=padding, groups=groups), nn.BatchNorm1d(8), nn.ReLU(),
        nn.MaxPool1d(4), nn.Conv1d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        nn.Linear(8, 3)).eval())


@pytest.mark.parametrize("channels,kernel,stride,padding,groups,length", [
    (1, 80, 16, 0, 1, 320),  # M5's first layer: kernel 5 rows of 16, no zero tap
    (2, 7, 3, 2, 1, 96),  # padding short of a row: one zero row above, the kernel shifted by one tap
    (3, 5, 4, 4, 1, 64),  # padding a whole row
    (1, 3, 4, 1, 1, 64),  # fewer taps than the stride: two kernel rows, most taps zero
    (2, 9, 2, 3, 2, 60),  # grouped
    (2, 7, 3, 2, 1, 100),  # a length the stride does not divide: the last phase row partly past the image
])
def test_an_image_as_rows_or_phases_of_the_first_stride_computes_what_its_column_does(channels, kernel, stride,
                                                                                      padding, groups, length):
    """``qgraph.image_as_rows`` and ``qgraph.image_as_phases``: golden on the graph whose image is rows of the first
    convolution's stride, or that stride's phases as channels, given the same samples in that view
    (``contract.image_view``), makes the logits and attributions that golden makes on the column view, bit for bit
    (the same products, summed exactly); ``contract.network_image`` puts the phases' attribution back in order."""
    from xaihls.golden import model as golden
    from xaihls.plan.contract import image_view, network_image
    from xaihls.quant.qgraph import image_as_phases, image_as_rows, maps_as_columns, rows_kernel

    shape = (channels, length)
    acc = xaihls.compile(_strided_1d_net(channels, kernel, stride, padding, groups), shape,
                         calibration=torch.randn(4, *shape), ig_steps=3, backends=("golden",))
    cols = maps_as_columns(acc.qgraph)
    rows_n = -(-length // stride)
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(length))
    xc = x.reshape(2, channels, length, 1)
    xr = torch.nn.functional.pad(x, (0, rows_n * stride - length)).reshape(2, channels, rows_n, stride)
    if length % stride == 0:
        rows = image_as_rows(cols, stride)
        assert rows.graph.input_shape == (channels, rows_n, stride)
        assert torch.equal(golden.predict(rows, xr).logits, golden.predict(cols, xc).logits)
        for method in acc.qgraph.methods:
            want, got = golden.attribute(cols, xc, method), golden.attribute(rows, xr, method)
            assert torch.equal(got.logits, want.logits), method
            assert torch.equal(got.attribution.reshape(want.attribution.shape), want.attribution), method
    phases = image_as_phases(cols, stride)
    header = dict(zip(("in_c", "in_h", "in_w"), phases.graph.input_shape))
    assert phases.graph.input_shape == (channels * stride, rows_n, 1)
    assert phases.layers[0].layer.kernel == (rows_kernel(kernel, stride, padding)[2], 1)
    xp = torch.stack([torch.as_tensor(image_view(x_k.numpy(), header)) for x_k in x])
    assert torch.equal(xp[:, :, :, 0], xr.transpose(-1, -2).reshape(2, channels * stride, -1))  # sample r·s + j
    assert torch.equal(golden.predict(phases, xp).logits, golden.predict(cols, xc).logits)
    for method in acc.qgraph.methods:
        want, got = golden.attribute(cols, xc, method), golden.attribute(phases, xp, method)
        assert torch.equal(got.logits, want.logits), method
        assert torch.equal(network_image(got.attribution, cols.graph.input_shape), want.attribution), method


def test_a_1d_image_longer_than_a_jobs_map_runs_as_its_first_strides_phases_and_is_bit_exact():
    """8,000 samples (a second of 8 kHz audio, M5's input) are more than a job's 4,095-sample map: the image
    runs as the 16 phases of the first convolution's stride (``capabilities.image_phases``), 16 channels of 500
    samples, its first convolution a 5-tap one of stride 1 and its backward one job writing the 16 channels, and
    program and csim match golden bit for bit on predict and the methods, the attribution in the model's shape."""
    shape = (1, 8000)
    acc = xaihls.compile(_strided_1d_net(1, 80, 16), shape, calibration=torch.randn(4, *shape),
                         methods=("saliency", "integrated_gradients", "guided_backprop"), ig_steps=3,
                         backends=("golden", "program", "csim"), tiling=(16, 4))
    program = acc.plan.program
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (16, 500, 1)
    first = program.forward[0]
    assert (first.ih, first.iw, first.oh, first.ow, first.ky, first.kx) == (500, 1, 496, 1, 5, 1)
    assert sum(d.layer == 0 for d in program.backward) == 1
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(5))
    golden = _bit_exact(acc, x, steps=None, methods=acc.methods)
    assert all(golden[m].attribution.shape == (2, 1, 8000) for m in acc.methods)


def test_a_length_the_first_stride_does_not_divide_runs_as_phases_and_is_bit_exact():
    """8,008 samples at M5's stride of 16: 501 phase rows, the last holding samples 8,000 to 8,007 in phases 0 to 7
    and nothing in 8 to 15 (zeros for the host); the first convolution's backward writes that row as a job of its
    own, those phases' weights zero (``lowering.phase_edges``), and the program matches golden bit for bit, its
    saturations by kind included where the image's gradient saturates."""
    from xaihls.executor import saturation_kinds

    shape = (1, 8008)
    acc = xaihls.compile(_strided_1d_net(1, 80, 16), shape, calibration=torch.randn(4, *shape),
                         methods=("saliency", "input_x_gradient"), backends=("golden", "program"), tiling=(16, 4),
                         config={"layers": {"0": {"gradient": "ap_fixed<16,-14>"}}})
    program = acc.plan.program
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (16, 501, 1)
    assert sorted(d.oph for d in program.backward if d.layer == 0) == [1, 500]
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(8))
    for method in (None, "saliency", "input_x_gradient"):
        g, r = acc.run(x, method), acc.run(x, method, backend="program")
        assert torch.equal(r.logits, g.logits) and (method is None or torch.equal(r.attribution, g.attribution))
        assert r.saturations == saturation_kinds(g.saturations), method
    assert saturation_kinds(g.saturations).get("backward", 0) > 0


def test_grad_cam_on_a_waveform_that_runs_only_as_phases_where_its_upsampling_follows_them():
    """8,000 samples at stride 16 run only as phases; Grad-CAM's 500-sample map goes to 8,000 by 16, and to the
    view's 500 by 1, so it follows the phases (``capabilities.cam_follows_phases``): both Grad-CAM methods run on
    the program executor and match golden, the map read back a view sample to 16 samples."""
    from xaihls.plan import capabilities

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(1, 4, 32, stride=16, padding=8), nn.ReLU(), nn.Conv1d(4, 4, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    shape, methods = (1, 8000), ("grad_cam", "guided_grad_cam")
    acc = xaihls.compile(model, shape, calibration=torch.randn(4, *shape), methods=methods,
                         backends=("golden", "program"), tiling=(8, 4))
    assert capabilities.cam_follows_phases(acc.qgraph)
    assert (acc.plan.program.header["in_c"], acc.plan.program.header["in_h"]) == (16, 500)
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(3))
    for method in methods:
        g, r = acc.run(x, method), acc.run(x, method, backend="program")
        assert torch.equal(r.logits, g.logits) and torch.equal(r.attribution, g.attribution), method
        assert g.attribution.shape == (2, 1, 8000) and g.attribution.abs().sum() > 0


def test_a_first_stride_past_a_jobs_step_runs_as_phases_and_is_bit_exact():
    """A stride of 16 (a job steps at most 15 input rows a grid row) on 4,000 samples of 2 channels, its padding
    short of a phase: as the stride's 32 phases the convolution steps one sample, and the program matches golden."""
    shape = (2, 4000)
    acc = xaihls.compile(_strided_1d_net(2, 40, 16, padding=7), shape, calibration=torch.randn(4, *shape),
                         methods=("saliency", "input_x_gradient"), backends=("golden", "program"), tiling=(8, 4))
    assert (acc.plan.program.header["in_c"], acc.plan.program.header["in_h"], acc.plan.program.header["in_w"]) == (
        32, 250, 1)
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(6))
    for method in (None, "saliency", "input_x_gradient"):
        g, r = acc.run(x, method), acc.run(x, method, backend="program")
        assert torch.equal(r.logits, g.logits) and (method is None or torch.equal(r.attribution, g.attribution))


@pytest.mark.parametrize("net,shape,methods,why", [
    (lambda: _strided_1d_net(1, 80, 16), (1, 8000), ("grad_cam",),
     "grad_cam upsamples its map to the input's 8000 samples, which the engine reads as the 16 phases of the first "
     "convolution's stride: no nearest table of the pixels follows them"),
    (lambda: _strided_1d_net(1, 8, 4), (1, 20000), ("saliency",),
     "the input has 20000 samples; the engine's jobs take maps of at most 4095 a side, or a longer image as the phases "
     "of the first convolution's stride where the convolution alone reads it and its stride leaves at most 4095 "
     "samples a phase"),
    (lambda: nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 32, stride=16), nn.ReLU(),
                           nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2)).eval(), (1, 1000), ("saliency",),
     "the program backend cannot run this network: layer '2' (forward): descriptor.ky = 32 does not fit the engine's "
     "5-bit field (0..31)"),
])
def test_what_no_job_holds_is_refused_at_compile_in_one_line(net, shape, methods, why):
    """An image as stride phases is no nearest upsampling's table; a length whose phases are longer than a job's
    map (20,000 samples at stride 4) is refused; a kernel past a job's fields is found while planning: each
    refused at compile, in one line, with golden left to run it."""
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(net(), shape, calibration=torch.randn(2, *shape), methods=methods, tiling=(8, 4))
    assert why in str(e.value) and "\n" not in str(e.value)
    assert "compile with backends=('golden',) to leave it out" in str(e.value)
    acc = xaihls.compile(net(), shape, calibration=torch.randn(2, *shape), methods=methods, backends=("golden",))
    assert acc.run(torch.randn(1, *shape), methods[0]).attribution.shape[-1] == shape[1]


def test_a_long_1d_map_runs_as_columns_in_small_buffers_and_is_bit_exact():
    """4,000 samples, which a row tile of the map as one row (4,000 words an input row) would need an
    8,192-word input buffer for: as a column (``lowering.ONE_D_COLUMNS``) a row tile is a few samples,
    so the engine's buffers are a fraction of that, and program and csim match golden bit for bit."""
    from xaihls.plan import lowering

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 8, 7, stride=2, padding=3), torch.nn.ReLU(), torch.nn.MaxPool1d(4),
                                torch.nn.Conv1d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3)).eval()
    shape = (2, 4000)
    acc = xaihls.compile(model, shape, calibration=torch.randn(4, *shape), methods=("saliency", "grad_cam"),
                         backends=("golden", "program", "csim"))
    program = acc.plan.program
    # as a column, its first stride's 2 phases as channels (with Grad-CAM compiled too: the map's upsampling, by
    # 2000, follows the phases, capabilities.cam_follows_phases)
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (4, 2000, 1)
    first = program.forward[0]
    assert (first.ih, first.iw, first.oh, first.ow) == (2000, 1, 2000, 1)
    assert acc.plan.engine.in_depth <= 1024, acc.plan.engine
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(4))
    for method in (None, "saliency", "grad_cam"):
        g = acc.run(x, method)
        for backend in ("program", "csim"):
            r = acc.run(x, method, backend=backend)
            assert torch.equal(r.logits, g.logits) and (method is None or torch.equal(r.attribution, g.attribution))
    assert lowering.ONE_D_COLUMNS


def test_the_planner_takes_the_first_strides_phases_where_they_are_faster_and_they_are_bit_exact():
    """A first convolution of stride 2 on 1,000 samples of 2 channels: the planner weighs its image as the stride's
    phases (``capabilities.image_phases``: 4 channels of 500, a stride-1 convolution whose backward writes them
    all in one job) against the plain views and keeps them, being faster by the cycle model; program and csim
    match golden on predict and the methods that read the image, the attribution back in the model's (C, L)."""
    from xaihls.plan import lowering
    from xaihls.plan.boards import load_board
    from xaihls.plan.planner_v2 import plan_v2
    from xaihls.plan.timing import method_cycles

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 8, 7, stride=2, padding=3), torch.nn.ReLU(), torch.nn.MaxPool1d(4),
                                torch.nn.Conv1d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3)).eval()
    shape, methods = (2, 1000), ("saliency", "input_x_gradient", "integrated_gradients")
    acc = xaihls.compile(model, shape, calibration=torch.randn(4, *shape), methods=methods, ig_steps=3,
                         backends=("golden", "program", "csim"))
    program = acc.plan.program
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (4, 500, 1)
    assert [(d.ky, d.kx, d.isy) for d in program.forward[:1]] == [(4, 1, 1)]
    assert sum(d.layer == 0 for d in program.backward) == 1
    views = {c: lowering.lower(acc.qgraph, program.shape, lowering.Buffers(4096, 1024, 4096), as_columns=c,
                               as_phases=False) for c in (False, True)}
    assert views[True].header["in_c"] == 2 and sum(d.layer == 0 for d in views[True].backward) == 2  # two phases
    plain = plan_v2(acc.qgraph, load_board("pynq-z2"))  # (the default board) the faster view is the phases'
    assert plain.program.header["in_c"] == 4 and method_cycles(plain.program, plain.engine, "saliency") < min(
        method_cycles(p, plain.engine, "saliency") for p in views.values())
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(4))
    golden = _bit_exact(acc, x, steps=None, methods=methods)
    assert all(golden[m].attribution.shape == (2, 2, 1000) for m in methods)


def test_a_global_pool_the_engine_cannot_split_is_refused_in_one_line():
    model, shape, calibration = long_pool_net(997)  # a prime past 225
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model, shape, calibration=calibration, backends=("golden", "program"))
    assert "layer '4': an average pool over 1 x 997 pixels; the engine sums" in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_grad_cam_of_a_1d_model_is_bit_exact_everywhere():
    """52 frames: the last conv's map is 13 long, upsampled by 4 (the engine's factors are integers)."""
    model, shape = _keyword(), (8, 52)
    acc = xaihls.compile(model, shape, calibration=torch.randn(16, *shape), methods=("grad_cam", "guided_grad_cam"),
                         backends=("golden", "program", "csim"))
    x = torch.randn(2, *shape)
    for method in ("grad_cam", "guided_grad_cam"):
        g = acc.run(x, method)
        assert tuple(g.attribution.shape) == ((2, 1, 52) if method == "grad_cam" else (2, *shape))
        for backend in ("program", "csim"):
            assert torch.equal(acc.run(x, method, backend=backend).attribution, g.attribution), (backend, method)


@pytest.fixture(scope="module")
def compiled_keyword():
    model = _keyword()
    gen = torch.Generator().manual_seed(2)
    acc = xaihls.compile(model, SHAPE, calibration=torch.randn(32, *SHAPE, generator=gen),
                         methods=tuple(ALL_METHODS), backends=("golden",))
    return acc, model, torch.randn(8, *SHAPE, generator=gen)


@pytest.mark.parametrize("method", [*METHODS, "grad_cam", "guided_grad_cam"])
def test_a_1d_model_attribution_correlates_with_captum_on_the_model_itself(compiled_keyword, method):
    """Golden against Captum float on the user's own Conv1d model, 8 inputs never calibrated on: the
    bounds of the edge nets. The rectifier-rule and Grad-CAM methods against Captum on the traced graph
    as modules: Captum's guided backprop and deconvnet hook nn.ReLU modules only (on this model's
    functional ReLUs they would be the plain gradient), and Grad-CAM names a layer of the graph, where
    the BatchNorm is folded."""
    from tests.test_fidelity import captum_pearson

    r = captum_pearson(*compiled_keyword, method)
    print(f"keyword {method}: mean {float(r.mean()):.4f} min {float(r.min()):.4f}")
    assert float(r.mean()) >= 0.995, f"{method}: mean Pearson {float(r.mean()):.4f}"
    assert float(r.min()) >= 0.98, f"{method}: min Pearson {float(r.min()):.4f}"
