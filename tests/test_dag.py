"""The DAG front end, golden model and refusals: residual adds, shared tensors, grouped and depthwise
convolutions, ReLU6, unfolded BatchNorm, padded and ceil-mode pools, adaptive pools, Grad-CAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Add, AvgPool2d, ChannelAffine, Conv2d, MaxPool2d, ReLU, ReLU6
from xaihls.frontend.reference import float_attribute, forward_float, graph_to_module, nearest_index
from xaihls.frontend.trace import graph_from_module
from xaihls.golden import dag
from xaihls.golden import model as golden
from xaihls.methods import ALL_METHODS, METHODS, ReluBackward
from xaihls.numerics import requantize
from xaihls.reports.fidelity import pearson_per_image


class Block(nn.Module):
    """Everything new at once: a shared tensor, a residual add with a projection, depthwise conv,
    ReLU6, BatchNorm after an add, a padded ceil-mode max-pool, an avg-pool without counting padding."""

    def __init__(self, add="plus"):
        super().__init__()
        self.add = add
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.r6 = nn.ReLU6()
        self.c2 = nn.Conv2d(8, 8, 1, stride=2)
        self.proj = nn.Conv2d(8, 8, 1, stride=2)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.ap = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)
        self.fc = nn.Linear(72, 5)
        for bn in (self.bn1, self.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)

    def forward(self, x):
        y = torch.relu(self.bn1(self.c1(x)))
        z = self.r6(self.dw(y))
        a, b = self.c2(z), self.proj(y)
        z = {"plus": lambda: a + b, "torch": lambda: torch.add(a, b), "method": lambda: a.add(b)}[self.add]()
        z = self.pool(torch.relu(self.bn2(z)))
        return self.fc(torch.flatten(self.ap(z), 1))


def _block(add="plus"):
    torch.manual_seed(0)
    return Block(add).eval()


@pytest.mark.parametrize("add", ["plus", "torch", "method"])
def test_residual_block_traces_to_a_dag_that_computes_the_model(add):
    model = _block(add)
    graph = graph_from_module(model, (3, 16, 16))
    kinds = {layer.name: type(layer) for layer in graph.layers}
    assert not graph.is_chain
    assert kinds["dw"] is Conv2d and graph.layer("dw").groups == 8
    assert kinds["r6"] is ReLU6
    assert kinds["bn2"] is ChannelAffine  # after an add: nothing to fold into
    assert "bn1" not in kinds  # folded into c1, which feeds only it
    adds = [layer for layer in graph.layers if isinstance(layer, Add)]
    assert len(adds) == 1 and adds[0].inputs == ("c2", "proj")
    relu = next(layer.name for layer in graph.layers if isinstance(layer, ReLU))
    # read by the stride-2 projection and by a copy the stride-1 depthwise conv reads (dag.with_copies)
    assert graph.consumers[graph.tensor_index(relu)] == (graph.tensor_names.index(f"{relu}.copy0") - 1,
                                                         graph.tensor_names.index("proj") - 1)
    assert graph.layer("dw").inputs == (f"{relu}.copy0",)
    pool = graph.layer("pool")
    assert isinstance(pool, MaxPool2d) and pool.padding == (1, 1) and pool.ceil_mode and pool.out_shape == (8, 5, 5)
    ap = graph.layer("ap")
    assert isinstance(ap, AvgPool2d) and not ap.count_include_pad and ap.out_shape == (8, 3, 3)
    x = torch.rand(4, 3, 16, 16)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", [nn.ReLU6(), nn.Hardtanh(0.0, 6.0), "relu6", "hardtanh", "clamp", "clamp_method"])
def test_relu6_spellings(act):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2 * 4 * 4, 2)
            self.act = act if isinstance(act, nn.Module) else None

        def forward(self, x):
            x = self.c(x)
            if self.act is not None:
                x = self.act(x)
            elif act == "relu6":
                x = F.relu6(x)
            elif act == "hardtanh":
                x = F.hardtanh(x, 0.0, 6.0)
            elif act == "clamp":
                x = torch.clamp(x, 0, 6)
            else:
                x = x.clamp(min=0, max=6)
            return self.fc(torch.flatten(x, 1))

    graph = graph_from_module(Net().eval(), (1, 6, 6))
    assert [type(layer).__name__ for layer in graph.layers] == ["Conv2d", "ReLU6", "Flatten", "Linear"]
    assert graph.is_chain


@pytest.mark.parametrize("pool,shape", [
    ((nn.MaxPool2d(3, 2, padding=1), (8, 8)), (2, 4, 4)),
    ((nn.MaxPool2d(2, 2, ceil_mode=True), (7, 7)), (2, 4, 4)),
    ((nn.MaxPool2d((3, 2), (2, 3), padding=(1, 1), ceil_mode=True), (8, 8)), (2, 5, 3)),
    ((nn.AvgPool2d(3, 2, padding=1), (8, 8)), (2, 4, 4)),
    ((nn.AvgPool2d(3, 2, padding=1, count_include_pad=False, ceil_mode=True), (8, 8)), (2, 5, 5)),
    ((nn.AvgPool2d(2, 2, ceil_mode=True), (7, 7)), (2, 4, 4)),
    ((nn.AdaptiveAvgPool2d(2), (8, 8)), (2, 2, 2)),
    ((nn.AdaptiveAvgPool2d((1, 7)), (8, 7)), (2, 1, 7)),
])
def test_padded_ceil_and_adaptive_pools_trace_and_compute_as_pytorch(pool, shape):
    pool, hw = pool
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 1), pool, nn.Flatten(), nn.LazyLinear(3))
    model(torch.zeros(1, 1, *hw))
    model.eval()
    graph = graph_from_module(model, (1, *hw))
    assert graph.layers[1].out_shape == shape
    x = torch.randn(3, 1, *hw)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


class _Bad(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.c = nn.Conv2d(2, 2, 3, padding=1)
        self.d = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 2)
        self.fc1 = nn.Linear(2 * 4 * 4, 1)

    def forward(self, x):
        y = self.c(x)
        if self.kind == "product":
            y = y * y
        elif self.kind == "broadcast":
            y = y + self.c(x)[:, :1]
        elif self.kind == "clamp":
            y = y.clamp(-1, 1)
        elif self.kind == "dead":
            self.d(x)
        elif self.kind == "alpha":
            y = torch.add(y, x, alpha=2)
        return self.fc(torch.flatten(y, 1))


@pytest.mark.parametrize("kind,needle", [
    ("product", "mul of two tensors"),
    ("broadcast", "indexing or slicing"),
    ("clamp", r"clamp to \[-1.0, 1.0\]"),
    ("dead", "layer 'd' does not reach the logits"),
    ("alpha", "alpha"),
])
def test_what_the_dag_front_end_still_refuses_is_one_line(kind, needle):
    with pytest.raises(XaiHlsError, match=needle) as e:
        graph_from_module(_Bad(kind).eval(), (2, 4, 4))
    assert "\n" not in str(e.value)


def test_adaptive_pool_that_does_not_divide_the_map_is_refused():
    """Unless a Linear alone reads it through a flatten (tests/test_adaptive_head.py)."""
    model = nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Conv2d(2, 2, 1), nn.Flatten(), nn.Linear(18, 2)).eval()
    with pytest.raises(XaiHlsError, match="output size must divide the map"):
        graph_from_module(model, (2, 8, 8))


def test_batchnorm_is_folded_only_into_a_conv_that_feeds_nothing_else():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 2, 3, padding=1)
            self.bn = nn.BatchNorm2d(2)
            self.fc = nn.Linear(32, 2)

        def forward(self, x):
            y = self.c(x)
            return self.fc(torch.flatten(self.bn(y) + y, 1))

    torch.manual_seed(0)
    model = Net().eval()
    model.bn.running_mean.uniform_(-1, 1)
    graph = graph_from_module(model, (2, 4, 4))
    assert isinstance(graph.layer("bn"), ChannelAffine)
    x = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


def test_relu_of_a_shared_relu_is_not_merged():
    """relu(relu(x)) merges only where the inner ReLU feeds nothing else: under guided backprop the
    two rules differ on a DAG."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3, padding=1)
            self.fc = nn.Linear(32, 2)

        def forward(self, x):
            y = torch.relu(self.c(x))
            return self.fc(torch.flatten(torch.relu(y) + y, 1))

    graph = graph_from_module(Net().eval(), (1, 4, 4))
    assert sum(isinstance(layer, ReLU) for layer in graph.layers) == 2


# --- hardware executors refuse at compile ----------------------------------------------------------

def _net(*layers):
    return nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(3))


def _compiled_refusal(model, shape, methods=tuple(METHODS), golden_only=True) -> str:
    model(torch.zeros(1, *shape))
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model.eval(), shape, calibration=torch.rand(4, *shape), methods=methods)
    msg = str(e.value)
    assert "\n" not in msg and "backends=('golden'," in msg, msg  # golden, and any backend that runs it
    assert not golden_only or "golden-only for now" in msg, msg
    return msg


@pytest.mark.parametrize("layers", [
    (nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),),
    (nn.AvgPool2d(2, 2, ceil_mode=True),),
    (nn.Conv2d(2, 3, 3, padding=1), nn.ReLU6(), nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.ReLU()),
], ids=["padding_not_counted", "ceil_mode", "same_after_relu6"])
def test_average_pools_of_several_divisors_run_bit_exact_everywhere(layers):
    """Refused until 2026-12-05 (the engine multiplied every window by one reciprocal): now a job a
    rectangle of windows of one reciprocal forward, and backward a job a rectangle of input pixels whose
    passes each read windows of one reciprocal (lowering._pool_regions, _phase_regions)."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    torch.manual_seed(3)
    model = _net(*layers).eval()
    _refused_or_bit_exact_everywhere(3, model, (2, 7, 7), torch.rand(8, 2, 7, 7), may_refuse=False)


@pytest.mark.parametrize("layers", [
    (nn.Conv2d(2, 4, 3, groups=2), nn.ReLU6()),
    (nn.Conv2d(2, 2, 3, padding=1, groups=2), nn.BatchNorm2d(2), nn.ReLU6(), nn.MaxPool2d(3, 2, padding=1)),
    (nn.MaxPool2d(2, ceil_mode=True), nn.BatchNorm2d(2), nn.ReLU()),
    (nn.AvgPool2d(3, 2, padding=1), nn.ReLU6()),
    (nn.Conv2d(2, 2, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(2)),
], ids=["grouped_relu6", "depthwise_bn_relu6_padded_maxpool", "ceil_maxpool_affine", "padded_avgpool",
        "depthwise_relu_maxpool"])
def test_the_engine_runs_chains_of_edge_layers_bit_exact_with_golden(layers):
    """What the engine took on for issue 15: compiled for the program backend, every method equals golden
    (the random edge chains of tests/test_interpreter.py go further)."""
    torch.manual_seed(3)  # before the model: its weights must not depend on the tests run before
    model = _net(*layers)
    model(torch.zeros(1, 2, 7, 7))
    acc = xaihls.compile(model.eval(), (2, 7, 7), calibration=torch.rand(4, 2, 7, 7), ig_steps=3,
                         backends=("golden", "program"))
    x = torch.rand(2, 2, 7, 7)
    for method in (None, *METHODS):
        g, p = acc.run(x, method, backend="golden"), acc.run(x, method, backend="program")
        assert torch.equal(g.logits, p.logits), method
        if method:
            assert torch.equal(g.attribution, p.attribution), method


@pytest.mark.parametrize("relu", [True, False], ids=["relu", "no_relu"])
def test_a_max_pool_after_a_depthwise_conv_ranks_its_input_codes(relu):
    """The engine runs a depthwise conv as a diagonal job, whose write-back does not pool, and the
    pool as a job of its own on the rounded codes: two accumulators that differ by less than an
    output LSB tie there, and the first wins. Golden ranks the same way (it once ranked the
    accumulators, so the gradient went to the other pixel, on 2 in 300 random weight draws)."""
    conv = nn.Conv2d(2, 2, 1, groups=2)
    fc = nn.Linear(2, 3)
    with torch.no_grad():  # channel 1's weight sets a coarse output format; channel 0's is small
        conv.weight.copy_(torch.tensor([0.1, 4.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
        fc.weight.fill_(1.0)
        fc.bias.zero_()
    model = nn.Sequential(conv, *([nn.ReLU()] if relu else []), nn.MaxPool2d(2), nn.Flatten(), fc).eval()
    calibration = torch.rand(4, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    acc = xaihls.compile(model, (2, 2, 2), calibration=calibration, methods=("gradient",),
                         backends=("golden", "program"))
    x = torch.full((1, 2, 2, 2), 0.25)
    x[0, 0, 0, 1] += 2.0 ** -acc.qgraph.input_fmt.frac  # one input code more: its accumulator is larger
    g, p = acc.run(x, "gradient", backend="golden"), acc.run(x, "gradient", backend="program")
    assert torch.equal(g.attribution, p.attribution)
    assert g.attribution[0, 0, 0, 0] != 0 and g.attribution[0, 0, 0, 1] == 0, g.attribution[0, 0]


@pytest.mark.parametrize("pair", [
    (nn.ReLU(), nn.ReLU6()), (nn.ReLU6(), nn.ReLU6()), (nn.ReLU6(), nn.ReLU()), (nn.ReLU(), nn.Flatten(), nn.ReLU6()),
], ids=["relu_relu6", "relu6_relu6", "relu6_relu", "relu_flatten_relu6"])
def test_two_rectifiers_in_a_row_are_one_relu6_on_every_method(pair):
    """A Sequential with a ReLU6 next to a rectifier traces to one ReLU6 (docs/dag.md, "Two rectifiers in
    a row are one"): golden equals that of the net with the ReLU6 alone for predict and every method,
    and the program backend, which refused the pair before, equals golden."""
    torch.manual_seed(5)
    conv, fc = nn.Conv2d(2, 4, 3, padding=1), nn.Linear(196, 3)  # a 7 x 7 map: Grad-CAM upsamples by 1
    with torch.no_grad():
        conv.weight.mul_(8.0)  # so the cap at 6 is reached
    pair_net = nn.Sequential(conv, *pair, nn.Flatten(), fc).eval()
    alone = nn.Sequential(conv, nn.ReLU6(), nn.Flatten(), fc).eval()
    calibration = torch.rand(4, 2, 7, 7)
    methods = tuple(ALL_METHODS)
    accs = [xaihls.compile(m, (2, 7, 7), calibration=calibration, ig_steps=3, methods=methods,
                           backends=("golden", "program")) for m in (pair_net, alone)]
    assert [type(layer).__name__ for layer in accs[0].graph.layers] == ["Conv2d", "ReLU6", "Flatten", "Linear"]
    x = torch.rand(2, 2, 7, 7)
    assert 0 < int((torch.relu(conv(x)) >= 6).sum()) < conv(x).numel()  # the cap is active, and not everywhere
    for method in (None, *methods):
        g, a, p = (accs[0].run(x, method), accs[1].run(x, method), accs[0].run(x, method, backend="program"))
        assert torch.equal(g.logits, a.logits) and torch.equal(g.logits, p.logits), method
        if method:
            assert torch.equal(g.attribution, a.attribution), method
            assert torch.equal(g.attribution, p.attribution), method


class _RectifierReadTwice(nn.Module):
    """relu6(r) + r with r = relu(conv(x)): the ReLU's output feeds the ReLU6 and the add."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(2, 2, 3, padding=1), nn.Linear(98, 3)

    def forward(self, x):
        r = torch.relu(self.conv(x))
        return self.fc(torch.flatten(F.relu6(r) + r, 1))


def test_a_rectifier_of_a_rectifiers_output_that_another_layer_reads_runs_on_a_copy():
    """It was refused (two rectifiers in a row): the ReLU6 now reads a copy of the ReLU's output, which
    the add reads too."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    torch.manual_seed(0)
    model = _RectifierReadTwice().eval()
    graph = graph_from_module(model, (2, 7, 7))
    assert graph.layer("relu6").inputs == ("relu.copy0",)
    for seed in (0, 3):
        _refused_or_bit_exact_everywhere(seed, model, (2, 7, 7), torch.rand(8, 2, 7, 7), may_refuse=False)


def test_the_residual_block_runs_bit_exact_everywhere():
    """Its projection shortcut, depthwise ReLU6, padded ceil-mode max-pool and an average pool that
    counts no padding: refused by the engines until its pool's windows ran a region a job."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    _refused_or_bit_exact_everywhere(0, _block(), (3, 16, 16), torch.rand(8, 3, 16, 16), may_refuse=False)


@pytest.mark.parametrize("seed", range(12))  # each kind of two array shapes (seed % 4)
def test_residual_blocks_taken_on_late_run_bit_exact_everywhere(seed):
    """``x + conv(x)`` was refused ("the gradients summed at tensor 'relu' and at tensor 'relu' share a
    buffer"): the convolution's output gradient is now a copy of the Add's, by a diagonal job, beside it.
    A pre-activation block and a ResNet-D shortcut were refused (a tensor read by a per-channel affine or
    an average pool): those readers are now terms of the two-source sum, a scale or a reciprocal on the
    diagonal (``tests.random_nets.RESIDUAL_KINDS``)."""
    from tests.random_nets import residual_conv_net
    from tests.test_differential import _refused_or_bit_exact_everywhere

    _refused_or_bit_exact_everywhere(seed, *residual_conv_net(seed), may_refuse=False)


def test_a_residual_branch_of_one_convolution_copies_the_adds_gradient_once():
    from tests.random_nets import residual_conv_net

    model, shape, calibration = residual_conv_net(0)  # after a ReLU
    acc = xaihls.compile(model, shape, calibration=calibration, methods=("saliency", "grad_cam"),
                         backends=("golden", "program"))
    graph = acc.graph
    from xaihls.plan.dag import structure

    dag = structure(graph)
    assert dag.copies == {graph.tensor_index("c1")}, dag.copies
    x = torch.rand(2, *shape)
    for method in ("saliency", "grad_cam"):
        g, p = acc.run(x, method), acc.run(x, method, backend="program")
        assert torch.equal(g.attribution, p.attribution) and (g.attribution != 0).any(), method


class _TwoReaders(nn.Module):
    """A tensor y read by two layers, which ``kind`` picks."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.c = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1, stride=2 if kind == "strides" else 1)
        self.d = nn.Conv2d(4, 4, 1)
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        y = self.c(x)
        if self.kind == "strides":
            z = nn.functional.max_pool2d(self.a(y), 2) + self.b(y)
        elif self.kind == "three":
            z = self.a(y) + self.b(y) + self.d(y)
        elif self.kind == "rectifier":
            z = torch.relu(y) + self.a(y)
        elif self.kind == "pool":
            z = nn.functional.max_pool2d(y, 2) + nn.functional.max_pool2d(self.a(y), 2)
        else:
            z = y + y
        return self.fc(torch.flatten(z, 1))


@pytest.mark.parametrize("kind,copied", [
    ("three", {"b": "c.copy0", "d": "c.copy0"}),  # the second and third readers on a copy
    ("rectifier", {"relu": "c.copy0"}),
    ("pool", {"max_pool2d": "c.copy0"}),
    ("self", {"add": ("c", "c.copy0")}),
    ("strides", {"a": "c.copy0"}),  # the stride-1 3 x 3 reader beside the strided one
])
def test_a_dag_the_two_source_jobs_could_not_express_runs_on_copies(kind, copied):
    """Each of these was refused in one line (three readers, a rectifier or a max-pool among two, x + x, a
    strided reader beside a 3 x 3 one of stride 1): ``dag.with_copies`` gives the readers the engines
    cannot sum over an exact copy of the tensor (a per-channel affine of scale 1), and the engines run
    the net bit-exact with golden, which runs the same graph."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    torch.manual_seed(0)
    model = _TwoReaders(kind)
    model(torch.zeros(1, 1, 6, 6))
    graph = graph_from_module(model.eval(), (1, 6, 6))
    for name, inputs in copied.items():
        assert graph.layer(name).inputs == (inputs if isinstance(inputs, tuple) else (inputs,)), graph.layer(name)
    for seed in (0, 3):
        _refused_or_bit_exact_everywhere(seed, model, (1, 6, 6), torch.rand(8, 1, 6, 6), may_refuse=False)


def test_the_engines_refuse_a_grad_cam_map_no_nearest_gather_makes():
    """Every engine runs Grad-CAM (tests/test_grad_cam_engine.py, test_hls_v2.py,
    hw_tests/test_rtl_v2_exact.py), a 4x4 map of a 6x6 input too (stretched by 3/2); a map whose
    PyTorch nearest table no gather makes (26x26 to 22x22, its float32 scale irregular) is refused at
    compile, naming the layer."""
    torch.manual_seed(0)
    for conv in (nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 3)):
        model = _net(conv, nn.ReLU())
        model(torch.zeros(1, 1, 6, 6))
        acc = xaihls.compile(model.eval(), (1, 6, 6), calibration=torch.rand(4, 1, 6, 6),
                             methods=("gradient", "grad_cam"))
        assert not acc.refusals
    msg = _compiled_refusal(_net(nn.Conv2d(1, 2, 1, padding=2), nn.ReLU()), (1, 22, 22),
                            methods=("gradient", "grad_cam"), golden_only=False)
    assert "the program backend" in msg and "grad_cam_layer '0': its 26x26 map" in msg, msg


def test_golden_only_accelerator_refuses_engine_work_in_one_line():
    acc = xaihls.compile(_cat_of_three(), calibration=torch.rand(4, 2, 4, 4), backends=("golden",))
    assert set(acc.refusals) == {"program", "csim", "rtl"}
    for call in (lambda: acc.plan, lambda: acc.run(torch.rand(1, 2, 4, 4), backend="csim")):
        with pytest.raises(XaiHlsError, match="golden-only for now") as e:
            call()
        assert "\n" not in str(e.value)


# --- golden on a DAG ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def block_acc():
    torch.manual_seed(1)
    return xaihls.compile(_block(), (3, 16, 16), calibration=torch.rand(16, 3, 16, 16), methods=tuple(ALL_METHODS),
                          backends=("golden",), ig_steps=8)


@pytest.mark.parametrize("method", list(ALL_METHODS))
def test_golden_on_a_dag_follows_the_float_graph(block_acc, method):
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    r = block_acc.run(x, method)
    ref = float_attribute(block_acc.graph, x.double(), method, target=r.target, steps=8,
                          cam_layer=block_acc.qgraph.cam_layer).attribution
    got = block_acc.attribute(x, method, target=r.target)
    assert got.shape == ref.shape
    corr = pearson_per_image(got, ref)
    assert float(corr.min()) >= 0.99, f"{method}: {corr}"


def test_golden_logits_of_a_dag_are_the_float_logits_to_a_few_lsb(block_acc):
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    err = (block_acc.predict(x).double() - forward_float(block_acc.graph, x.double())).abs().max()
    assert float(err) < 64 * block_acc.qgraph.logits_fmt.lsb


def test_gradients_from_several_consumers_are_summed_once():
    """y = conv(x) feeds an identity branch and a ReLU branch: the gradient at y is g + g*[y>0],
    rounded once, never g rounded plus g*[y>0] rounded."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3, padding=1)
            self.fc = nn.Linear(32, 3)

        def forward(self, x):
            y = self.c(x)
            return self.fc(torch.flatten(y + torch.relu(y), 1))

    torch.manual_seed(0)
    acc = xaihls.compile(Net().eval(), (1, 4, 4), calibration=torch.rand(8, 1, 4, 4), methods=("gradient",),
                         backends=("golden",))
    qg = acc.qgraph
    x_q = golden.quantize_input(qg, torch.rand(2, 1, 4, 4), golden.Saturations())
    sat = golden.Saturations()
    _, kept = dag.forward(qg, x_q, sat)
    target = torch.tensor([0, 2])
    k = qg.graph.tensor_index("c")
    g_y = dag.backward(qg, kept, target, ReluBackward.MASK, sat, stop=k)
    g_add = dag.backward(qg, kept, target, ReluBackward.MASK, sat, stop=qg.graph.tensor_index("add"))
    relu_i = next(i for i, layer in enumerate(qg.graph.layers) if isinstance(layer, ReLU))
    expected = g_add + g_add * kept.relu_bits[relu_i]  # both in grad[add]'s format
    add_frac = qg.grad_fmt(ReluBackward.MASK, qg.graph.tensor_index("add")).frac
    assert torch.equal(g_y, requantize(expected, add_frac, qg.grad_fmt(ReluBackward.MASK, k)))


# --- the DAG path equals the chain path on chains -------------------------------------------------

@pytest.mark.parametrize("name", ["digits", "digits_strided_bn", "digits_gap"])
def test_dag_path_is_bit_exact_with_the_chain_path_on_chains(name):
    from xaihls.models.zoo import get_zoo_model

    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration(), backends=("golden",),
                         ig_steps=4)
    qg = acc.qgraph
    x, _ = entry.samples()
    assert not dag.needed(qg)
    for method in (None, *METHODS):
        chain = acc.run(x, method)
        sat = golden.Saturations()
        x_q = golden.quantize_input(qg, x, sat)
        if method is None:
            logits = dag.predict(qg, x_q, sat, 3)
            assert torch.equal(logits, chain.logits)
        else:
            logits, target, attr, fmt = dag.attribute(qg, x_q, method, None, sat, 3, 4, "trapezoid",
                                                      torch.zeros_like(x_q))
            assert torch.equal(logits, chain.logits) and torch.equal(target, chain.target), method
            assert torch.equal(attr, chain.attribution) and fmt == chain.attribution_fmt, method
        assert dict(sat.counts) == chain.saturations, method


# --- ReLU6 rules and Grad-CAM against Captum ----------------------------------------------------------

def test_relu6_rules_in_captum_terms():
    """Our guided/deconvnet ReLU6 rules are Captum's on ReLU6 rebuilt as nn.ReLU then min(., 6);
    on an nn.ReLU6 module Captum overrides nothing and returns the plain gradient."""
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU6(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    with torch.no_grad():
        model[0].weight.mul_(20)  # many units above 6
    graph = graph_from_module(model, (1, 6, 6))
    x = torch.rand(4, 1, 6, 6)
    target = torch.tensor([0, 1, 2, 0])
    rebuilt = graph_to_module(graph)
    for method, captum in (("guided_backprop", GuidedBackprop), ("deconvnet", Deconvolution)):
        ours = float_attribute(graph, x.double(), method, target).attribution.float()
        theirs = captum(rebuilt).attribute(x.clone().requires_grad_(True), target=target)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
        plain = captum(model).attribute(x.clone().requires_grad_(True), target=target)
        torch.testing.assert_close(plain, Saliency(model).attribute(x.clone().requires_grad_(True), target=target,
                                                                     abs=False))
        assert not torch.allclose(ours, plain, atol=1e-4), method


def test_nearest_upsampling_uses_pytorchs_source_indices():
    for size_in in range(1, 20):
        for size_out in range(size_in, 40):
            probe = torch.arange(size_in, dtype=torch.float32).view(1, 1, size_in)
            expect = F.interpolate(probe, size=size_out, mode="nearest").view(-1).long()
            assert torch.equal(nearest_index(size_in, size_out), expect)


def test_grad_cam_float_matches_captum(block_acc):
    from xaihls.frontend.reference import layer_module
    from xaihls.reports.fidelity import captum_attribute

    graph = block_acc.graph
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([0, 1, 2, 3])
    module = graph_to_module(graph)
    layer = layer_module(module, graph, block_acc.qgraph.cam_layer)
    for method in ("grad_cam", "guided_grad_cam"):
        ours = float_attribute(graph, x.double(), method, target, cam_layer=block_acc.qgraph.cam_layer).attribution
        theirs = captum_attribute(module, x, method, target, layer=layer)
        torch.testing.assert_close(ours.float(), theirs, rtol=1e-4, atol=1e-5)


def test_grad_cam_layer_is_the_last_conv_by_default_and_can_be_named():
    acc = xaihls.compile(_block(), (3, 16, 16), calibration=torch.rand(4, 3, 16, 16), methods=("grad_cam",),
                         backends=("golden",))
    assert acc.qgraph.cam_layer == "proj"
    named = xaihls.compile(_block(), (3, 16, 16), calibration=torch.rand(4, 3, 16, 16), methods=("grad_cam",),
                           backends=("golden",), config={"grad_cam_layer": "r6"})
    assert named.qgraph.cam_layer == "r6"
    assert named.attribute(torch.rand(2, 3, 16, 16), "grad_cam").shape == (2, 1, 16, 16)
    with pytest.raises(XaiHlsError, match="grad_cam_layer: no layer named 'nope'"):
        xaihls.compile(_block(), (3, 16, 16), calibration=torch.rand(4, 3, 16, 16), methods=("grad_cam",),
                       backends=("golden",), config={"grad_cam_layer": "nope"})


def test_torch_export_program_of_a_residual_block_traces_like_the_module(tmp_path):
    from xaihls.frontend.trace import graph_from_exported

    model = _block()
    path = tmp_path / "block.pt2"
    torch.export.save(torch.export.export(model, (torch.rand(1, 3, 16, 16),)), str(path))
    graph = graph_from_exported(str(path))
    assert not graph.is_chain and any(isinstance(layer, Add) for layer in graph.layers)
    assert any(isinstance(layer, ReLU6) for layer in graph.layers)
    x = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["saliency", "guided_backprop", "integrated_gradients"])
def test_a_concatenation_follows_the_float_graph_on_golden(method):
    """``torch.cat`` along the channels: each operand rounded to the output's format, its gradient its
    channels of the output's; golden's logits and attribution follow the float graph's."""
    from tests.random_nets import concat_net
    from xaihls.frontend.ir import Concat
    from xaihls.reports.fidelity import pearson_per_image

    model, shape, calibration = concat_net(0)
    acc = xaihls.compile(model, shape, calibration=calibration, methods=(method,), ig_steps=8, backends=("golden",))
    cat = next(layer for layer in acc.graph.layers if isinstance(layer, Concat))
    assert cat.out_shape == (11, 6, 6) and len(cat.inputs) == 2
    x = torch.rand(4, *shape)
    ref = forward_float(acc.graph, x.double())
    assert float((acc.predict(x).double() - ref).abs().max()) <= 0.01 * float(ref.abs().max())
    g = acc.run(x, method, steps=8)
    want = float_attribute(acc.graph, x.double(), method, g.target, steps=8).attribution
    assert float(pearson_per_image(g.attribution, want).min()) >= 0.99


@pytest.mark.parametrize("seed", range(10))  # each kind of tests.random_nets.CONCAT_KINDS at two array shapes
def test_a_concatenation_runs_bit_exact_everywhere(seed):
    """The engine runs a cat of two maps as an Add's two-source 1 x 1 job placing each operand at its
    channels, and each operand's gradient as a 1 x 1 job selecting its channels of the output's (a
    rectifier's rule on it where the operand is a rectifier's output)."""
    from tests.random_nets import concat_net
    from tests.test_differential import _refused_or_bit_exact_everywhere

    _refused_or_bit_exact_everywhere(seed, *concat_net(seed), may_refuse=False)


def test_an_inception_block_reads_its_input_three_times_and_runs_on_a_copy():
    """A cat of three is two cats of two, which the engines run; here the input is also read by the two
    branches, three readers in all: the second and third read a copy of it (``dag.with_copies``)."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    class Three(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 3, padding=1)
            self.fc = nn.Linear(7, 2)

        def forward(self, x):
            return self.fc(torch.cat([self.a(x), self.b(x), x], 1).mean((2, 3)))

    torch.manual_seed(0)
    model = Three().eval()
    graph = graph_from_module(model, (3, 6, 6))
    assert graph.consumers[0] == (0, 1) and graph.layers[0].name == "input.copy0"
    for seed in (0, 3):
        _refused_or_bit_exact_everywhere(seed, model, (3, 6, 6), torch.rand(8, 3, 6, 6), may_refuse=False)


def _cat_of_three():
    """A Graph made by hand with a cat of three maps (the front end nests one as cats of two)."""
    from xaihls.frontend.ir import Concat, Flatten, Graph, Linear

    def conv(name):
        return Conv2d(name, (2, 4, 4), (2, 4, 4), torch.randn(2, 2, 1, 1), torch.zeros(2), (1, 1), (1, 1), (0, 0),
                      inputs=("input",))

    return Graph((2, 4, 4), (conv("a"), conv("b"), conv("c"),
                             Concat("cat", (2, 4, 4), (6, 4, 4), ("a", "b", "c")),
                             Flatten("flat", (6, 4, 4), (96,), inputs=("cat",)),
                             Linear("fc", (96,), (2,), torch.randn(2, 96), torch.zeros(2))))


def test_a_hand_made_cat_of_three_is_refused_by_the_engines_in_one_line():
    """The front end nests a cat of three; a Graph made by hand may hold one, which golden runs."""
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(_cat_of_three(), calibration=torch.rand(4, 2, 4, 4), backends=("golden", "program"))
    assert "layer 'cat' (cat of 3 tensors) is golden-only for now" in str(e.value) and "\n" not in str(e.value)


def test_a_densenet_block_runs_bit_exact_everywhere():
    """torchvision's DenseNet block: each layer cats every feature before it, the block's output cats
    them all. The front end makes them cats of two from the left and reuses the ones made before, so
    every tensor has two readers at most; program and csim bit-exact with golden, golden following
    the float graph."""
    from tests.random_nets import dense_block_net
    from tests.test_differential import _refused_or_bit_exact_everywhere
    from xaihls.frontend.ir import Concat

    model, shape, calibration = dense_block_net(0)
    graph = graph_from_module(model, shape)
    cats = [layer for layer in graph.layers if isinstance(layer, Concat)]
    assert len(cats) == len(model.layers) and all(len(c.inputs) == 2 for c in cats)  # one cat a layer
    assert all(later.inputs[0] == earlier.name for earlier, later in zip(cats, cats[1:]))
    _refused_or_bit_exact_everywhere(0, model, shape, calibration, may_refuse=False)
    acc = xaihls.compile(model, shape, calibration=calibration, backends=("golden",))
    x = calibration[:4]
    for method in ("saliency", "guided_backprop", "integrated_gradients"):
        g = acc.run(x, method, steps=8)
        want = float_attribute(acc.graph, x.double(), method, g.target, steps=8).attribution
        assert float(pearson_per_image(g.attribution, want).min()) >= 0.99, method


def test_a_network_of_more_than_255_layers_runs_bit_exact():
    """A job's descriptor names the layer it comes from; the field was 8 bits, and torchvision's
    DenseNet-121 (368 layers in the graph) was refused at layer 256. 130 convolutions and their ReLUs: the last jobs come
    from layers 256 to 261, and program and csim run them bit-exact with golden."""
    torch.manual_seed(0)
    layers = []
    for _ in range(130):
        conv = nn.Conv2d(2, 2, 1)
        with torch.no_grad():  # near the identity, so that the values neither vanish nor grow through the depth
            conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1) + 0.05 * torch.randn(2, 2, 1, 1))
            conv.bias.fill_(0.01)
        layers += [conv, nn.ReLU()]
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(8, 3)).eval()
    calibration = torch.rand(8, 2, 2, 2)
    acc = xaihls.compile(model, (2, 2, 2), calibration=calibration, methods=("saliency",),
                         backends=("golden", "program", "csim"))
    assert len(acc.graph.layers) == 262
    x = calibration[:2]
    g = acc.run(x, "saliency")
    assert g.attribution.abs().sum() > 0
    for backend in ("program", "csim"):
        r = acc.run(x, "saliency", backend=backend)
        assert torch.equal(r.logits, g.logits) and torch.equal(r.attribution, g.attribution), backend


@pytest.mark.parametrize("seed", range(6))
def test_a_shufflenet_runs_bit_exact_everywhere(seed):
    """ShuffleNetV2 units (tests.random_nets.shuffle_net): of stride 1, chunk or split along the channels,
    a branch, a cat, torchvision's channel shuffle; now and then a downsampling unit first. Each part
    and the shuffle is a ChannelSelect (a chunk after a shuffle one selection); a tensor read by two
    selections has a gradient sum of their placements. Program and csim bit-exact (seeds 42 and 43, whose
    guided gradient terms lay 11 and 14 bits too far apart before calibration reached for them, are in
    FAR_APART_NETS); golden follows the float graph."""
    from tests.random_nets import shuffle_net
    from tests.test_differential import _refused_or_bit_exact_everywhere
    from xaihls.frontend.ir import ChannelSelect

    model, shape, calibration = shuffle_net(seed)
    graph = graph_from_module(model, shape)
    units = sum(type(m).__name__ == "_ShuffleUnit" for m in model.body)
    assert sum(isinstance(layer, ChannelSelect) for layer in graph.layers) == 2 * units + 1  # two parts a unit
    x = calibration[:3]
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)
    _refused_or_bit_exact_everywhere(seed, model, shape, calibration, may_refuse=False)
    acc = xaihls.compile(model, shape, calibration=calibration, backends=("golden",))
    for method in ("saliency", "guided_backprop", "integrated_gradients"):
        g = acc.run(x, method, steps=8)
        want = float_attribute(acc.graph, x.double(), method, g.target, steps=8).attribution
        assert float(pearson_per_image(g.attribution, want).min()) >= 0.99, method


@pytest.mark.parametrize("hw", [(6, 6), (7, 5)])
def test_a_gradient_sum_of_a_strided_reader_and_a_pointwise_one_is_bit_exact_everywhere(hw):
    """ShuffleNetV2's downsampling unit reads its input with a stride-2 depthwise conv and a stride-1
    1 x 1 conv. The gradient sum runs a stride phase at a time: a copy of that phase of the 1 x 1
    conv's gradient beside the depthwise one's, one job summing both (docs/dag.md); odd sizes give
    phases of unequal size. A strided reader and a 3 x 3 one of stride 1: the 3 x 3 one reads a copy
    (``dag.with_copies``), whose gradient the sum takes a phase at a time as the 1 x 1 conv's."""
    from tests.random_nets import _channel_shuffle
    from tests.test_differential import _refused_or_bit_exact_everywhere

    class Down(nn.Module):
        def __init__(self, k: int = 1):
            super().__init__()
            self.b1 = nn.Sequential(nn.Conv2d(4, 4, 3, 2, 1, groups=4), nn.Conv2d(4, 4, 1), nn.ReLU())
            self.b2 = nn.Sequential(nn.Conv2d(4, 4, k, padding=k // 2), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1, groups=4))
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(_channel_shuffle(torch.cat((self.b1(x), self.b2(x)), 1), 2).mean((2, 3)))

    torch.manual_seed(0)
    shape = (4, *hw)
    _refused_or_bit_exact_everywhere(0, Down().eval(), shape, torch.rand(8, *shape) * 2, may_refuse=False)
    _refused_or_bit_exact_everywhere(3, Down(3).eval(), shape, torch.rand(8, *shape) * 2, may_refuse=False)


@pytest.mark.parametrize("pool,hw", [(nn.AdaptiveAvgPool2d(1), (2, 6)), (nn.AdaptiveAvgPool2d(1), (4, 4)),
                                     (nn.AvgPool2d(2), (6, 6)), (nn.AvgPool2d(3, 2, 1), (7, 5))],
                         ids=["global_2x6", "global_4x4", "pool2", "padded_pool3"])
def test_a_strided_average_pool_beside_a_pointwise_conv_is_bit_exact_everywhere(pool, hw):
    """An average pool (a global one: a deep-supervision exit) and a 1 x 1 conv reading one map. Of stride 2,
    the gradient sum runs the pool's stride phases (``mixed``); its jobs took the 1 x 1 conv's stride (1)
    until 2026-12-05 and wrote every phase over the whole map: program and csim agreed with each other,
    not with golden. A global pool has a phase a pixel: it reads a copy of the map instead
    (``dag.MIXED_PHASES``), and the sum is one job."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    class Exit(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.pool, self.a = nn.Conv2d(1, 4, 3, padding=1), pool, nn.Conv2d(4, 5, 1)
            self.fc = nn.LazyLinear(3)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            return self.fc(torch.cat([self.pool(x).mean((2, 3), keepdim=True),
                                      torch.relu(self.a(x)).mean((2, 3), keepdim=True)], 1).flatten(1))

    from xaihls.plan.dag import structure

    torch.manual_seed(0)
    model, shape = Exit(), (1, *hw)
    model(torch.zeros(1, *shape))
    graph = graph_from_module(model.eval(), shape)
    strides = nn.modules.utils._pair(pool.stride) if isinstance(pool, nn.AvgPool2d) else hw
    assert bool(structure(graph).mixed) == (strides[0] * strides[1] <= 4)
    assert graph.layer("pool").inputs[0].endswith(".copy0") == (strides[0] * strides[1] > 4)
    for seed in (0, 3):
        _refused_or_bit_exact_everywhere(seed, model, shape, torch.rand(8, *shape), may_refuse=False)


@pytest.mark.parametrize("seed", range(12))
def test_a_random_branchy_net_traces_to_the_same_function_and_gradient(seed):
    """tests/random_nets.py ``branchy_net``: the copies ``dag.with_copies`` inserts are exact in float."""
    from tests.random_nets import branchy_net
    from tests.test_frontend import assert_traces_to_the_model

    assert_traces_to_the_model(*branchy_net(seed)[:2])


@pytest.mark.parametrize("seed", range(8))
def test_a_random_branchy_net_is_refused_at_compile_or_bit_exact_everywhere(seed):
    """Inception-style blocks (three or four readers, a max-pool among them), x + ReLU(x) + x + x, a
    strided and a stride-1 3 x 3 reader, on the program and csim engines, every one taken (docs/dag.md)."""
    from tests.random_nets import branchy_net
    from tests.test_differential import _refused_or_bit_exact_everywhere

    _refused_or_bit_exact_everywhere(seed, *branchy_net(seed), may_refuse=False)


class _Branches(nn.Module):
    """A map read by ``a`` and ``b``, each branch's global mean into one Linear."""

    def __init__(self, a: nn.Module, b: nn.Module):
        super().__init__()
        self.stem, self.a, self.b, self.fc = nn.Conv2d(2, 4, 3, padding=1), a, b, nn.LazyLinear(3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        return self.fc(torch.cat([torch.relu(self.a(x)).mean((2, 3), keepdim=True),
                                  torch.relu(self.b(x)).mean((2, 3), keepdim=True)], 1).flatten(1))


@pytest.mark.parametrize("a,b,copied", [
    (nn.Conv2d(4, 3, 3), nn.Conv2d(4, 3, 1), "a"),  # outputs of two sizes: the valid 3 x 3 one reads a copy
    (nn.Conv2d(4, 3, 3, 2, 1), nn.AvgPool2d(4), "b"),  # strides 2 and 4: the pool (16 phases) reads a copy
    (nn.Conv2d(4, 3, 3, 3), nn.Conv2d(4, 3, 5, 2), "ab"),  # neither beside a copy: each reads one
], ids=["two_sizes", "strides_2_and_4", "strides_3_and_2"])
def test_readers_of_two_strides_or_output_sizes_run_on_copies(a, b, copied):
    """Refused until 2026-12-05 ("with different strides", "whose outputs differ in size"): the reader that
    cannot be a term beside an exact copy of the map reads one (a reader of stride 1 and the map's size,
    or a strided one of at most ``dag.MIXED_PHASES`` phases, can), or both do; bit-exact everywhere."""
    from tests.test_differential import _refused_or_bit_exact_everywhere

    torch.manual_seed(0)
    model, shape = _Branches(a, b), (2, 8, 8)
    model(torch.zeros(1, *shape))
    graph = graph_from_module(model.eval(), shape)
    assert {name for name in "ab" if graph.layer(name).inputs[0].startswith("relu.copy")} == set(copied)
    _refused_or_bit_exact_everywhere(0, model, shape, torch.rand(8, *shape), may_refuse=False)


@pytest.mark.parametrize("seed", range(6))
def test_a_random_fork_net_traces_to_the_same_function_and_gradient(seed):
    """tests/random_nets.py ``fork_net``: the copies in front of readers of two strides or sizes are exact."""
    from tests.random_nets import fork_net
    from tests.test_frontend import assert_traces_to_the_model

    assert_traces_to_the_model(*fork_net(seed)[:2])


@pytest.mark.parametrize("seed", range(8))
def test_a_random_fork_net_is_bit_exact_everywhere(seed):
    """Maps read by the main path's convolution and by an exit of another kernel, stride or padding, an average
    pool or a global pool (deep supervision, early exits), on the program and csim engines."""
    from tests.random_nets import fork_net
    from tests.test_differential import _refused_or_bit_exact_everywhere

    _refused_or_bit_exact_everywhere(seed, *fork_net(seed), may_refuse=False)


FAR_APART_NETS = [("branchy_net", 39), ("shuffle_net", 42), ("shuffle_net", 43)]


def _grad_formats(kind, seed, monkeypatch=None, config=None):
    from tests import random_nets
    from xaihls.quant import calibrate

    if monkeypatch is not None:  # the formats calibration chose before the engine's sums were weighed
        monkeypatch.setattr(calibrate, "_align_sums", lambda *args: None)
    model, shape, calibration = getattr(random_nets, kind)(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",), config=config)
    return acc.qgraph


@pytest.mark.parametrize("kind,seed", FAR_APART_NETS)
def test_a_gradient_term_too_fine_to_sum_is_stored_coarser_by_the_bits_the_shift_lacks(kind, seed, monkeypatch):
    """Two readers' gradient terms whose products lay 11 to 24 bits apart (a branch guided backprop all but
    silences; an average pool's reciprocal beside an exact copy), past the engine's operand shift: the
    finer term's gradient, and only it (the tensors that hold its format), is stored coarser, by the
    fewest bits that let the engine sum the two exactly (numerics.align_terms)."""
    from xaihls.numerics import align_terms
    from xaihls.plan.dag import unweighted
    from xaihls.quant.calibrate import _gradient_chain

    after = _grad_formats(kind, seed)
    with monkeypatch.context() as m:
        before = _grad_formats(kind, seed, m)
    graph, modes = after.graph, list(after.grad_formats)
    moved = {(mode, k) for mode in modes for k in range(len(graph.layers) + 1)
             if after.grad_fmt(mode, k) != before.grad_fmt(mode, k)}
    sums = [t for t, readers in enumerate(graph.consumers) if len(readers) == 2]
    t = next(t for t in sums if any(k in {r + 1 for r in graph.consumers[t]} for _, k in moved))
    readers = graph.consumers[t]
    identity = [unweighted(graph.layers[r]) for r in readers]
    weights = [0 if ident else after.layers[r].weight_fmt.frac for r, ident in zip(readers, identity)]

    def bases(qg, nudge=None):
        return [[qg.grad_fmt(mode, r + 1).frac + w + (nudge == (mode, r + 1)) for mode in modes]
                for r, w in zip(readers, weights)]

    assert align_terms(bases(before), identity) is None and align_terms(bases(after), identity) is not None
    finer = max(readers, key=lambda r: max(before.grad_fmt(mode, r + 1).frac + weights[readers.index(r)]
                                           for mode in modes))
    chain = _gradient_chain(graph, finer + 1, set())
    assert {k for _, k in moved} <= set(chain), (moved, chain)
    for mode, k in moved:
        assert after.grad_fmt(mode, k).frac < before.grad_fmt(mode, k).frac
        assert after.grad_fmt(mode, k) == after.grad_fmt(mode, chain[0])
        assert align_terms(bases(after, (mode, finer + 1)), identity) is None, (mode, k)  # no bit more than needed


@pytest.mark.parametrize("kind,seed", FAR_APART_NETS)
def test_a_net_whose_gradient_terms_lay_far_apart_runs_bit_exact_everywhere(kind, seed):
    from tests import random_nets
    from tests.test_differential import _refused_or_bit_exact_everywhere

    _refused_or_bit_exact_everywhere(seed, *getattr(random_nets, kind)(seed), may_refuse=False)


def test_a_gradient_format_the_user_set_is_kept_and_the_engines_refuse_the_sum_in_one_line():
    from tests import random_nets

    kind, seed = FAR_APART_NETS[1]
    graph = _grad_formats(kind, seed).graph
    relu = "body.2.branch2.2"  # the ReLU after the finer term's convolution: the gradient at its input
    k = next(k for k, users in enumerate(graph.consumers) if [graph.layers[u].name for u in users] == [relu])
    config = {"layers": {relu: {"gradient": {"frac": 38}}}}  # what calibration gives the guided rule there
    qg = _grad_formats(kind, seed, config=config)
    assert all(qg.grad_fmt(mode, k).frac == 38 for mode in qg.grad_formats)
    model, shape, calibration = getattr(random_nets, kind)(seed)
    with pytest.raises(XaiHlsError, match=r"^the gradient at tensor 'body.1': the two terms' fractions differ by "
                                          r"\d+ bits; [^\n]*$"):
        xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden", "program"),
                       config=config)


class _Inception(nn.Module):
    """GoogLeNet's module, small: four branches read its input (a 1 x 1, two 1 x 1 then 3 x 3, a max-pool then
    1 x 1), their ReLUs cat."""

    def __init__(self, c: int, out: int):
        super().__init__()
        self.b1 = nn.Conv2d(c, out, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, out, 1), nn.ReLU(), nn.Conv2d(out, out, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, out, 1), nn.ReLU(), nn.Conv2d(out, out, 3, padding=1))
        self.b4 = nn.Conv2d(c, out, 1)

    def forward(self, x):
        return torch.cat([F.relu(self.b1(x)), F.relu(self.b2(x)), F.relu(self.b3(x)),
                          F.relu(self.b4(F.max_pool2d(x, 3, 1, 1)))], 1)


def test_gradient_sums_a_block_at_a_time_have_their_descriptors_room():
    """A tensor read by four layers runs on exact copies, and the gradient sum at a copy read by two others (two
    diagonal terms) may run a job a block (``lowering._adds_by_block``). The descriptors' room counted one job for
    it, so a tiling that keeps those twins overran it: GoogLeNet at 64 x 64 stopped with an AssertionError in
    ``encode`` (715 backward jobs, room for 258). Four inception modules of 128 channels on a 4 x 4 array: the
    Program that keeps every such twin fits its room (149 backward jobs, room for 141 before) and matches golden."""
    from xaihls.executor import quantize_input
    from xaihls.methods import METHOD_CODES
    from xaihls.plan import lowering
    from xaihls.sim.interpreter import run_batch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 128, 3, padding=1), nn.ReLU(), *[_Inception(128, 32) for _ in range(4)],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 3)).eval()
    shape = (1, 4, 4)
    acc = xaihls.compile(model, shape, calibration=torch.rand(8, *shape), methods=("saliency",), backends=("golden",))
    lowered = lowering.lower_jobs(acc.qgraph, lowering.Shape(4, 4, 4))
    assert sorted(len(t) for d, t in lowered.twins.items() if d in lowered.backward and len(t) > 1) == [32] * 3
    program = lowering.encode(lowered, lowering.Buffers(1024, 256, 1024), lambda d: 1 if d.n_tiles == 2 else 99)
    assert len(program.backward) == len(lowered.backward) + 3 * 31
    x = torch.rand(1, *shape)
    want = acc.run(x, "saliency")
    logits, _, attribution, _ = run_batch(program, quantize_input(acc.qgraph, x)[0], METHOD_CODES["saliency"], None,
                                          3, "trapezoid", None)
    assert torch.equal(logits, want.logits) and torch.equal(attribution, want.attribution)
