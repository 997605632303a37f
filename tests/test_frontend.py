"""Front end: every supported layer traces to the right Graph; everything else is refused clearly."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU
from xaihls.frontend.loaders import load_model, load_weights
from xaihls.frontend.reference import forward_float, graph_to_module
from xaihls.frontend.trace import graph_from_exported, graph_from_module


class Everything(nn.Module):
    """Every supported construct at least once, module and functional forms."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, (3, 5), padding=(1, 2), bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(8, affine=False)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.avg = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(8, 8, 1, padding="same")
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.3)
        self.ident = nn.Identity()
        self.fc1 = nn.Linear(8, 12)
        self.fc2 = nn.Linear(12, 4, bias=False)

    def forward(self, x):
        x = F.relu(self.bn1(self.c1(x)))
        x = torch.relu(self.bn2(self.c2(x)))
        x = self.pool(x)
        x = self.c3(x).relu()
        x = self.gap(x)
        x = x.view(x.size(0), -1)
        x = self.ident(self.drop(x))
        return self.fc2(nn.functional.relu(self.fc1(x)))


def _randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def test_every_supported_layer_traces_and_matches_the_module():
    torch.manual_seed(0)
    model = _randomize_bn(Everything())
    graph = graph_from_module(model, (3, 20, 20))
    kinds = [type(layer) for layer in graph.layers]
    assert kinds == [Conv2d, ReLU, Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, AvgPool2d, Flatten, Linear, ReLU, Linear]
    assert graph.layers[2].stride == (2, 2) and graph.layers[0].kernel == (3, 5)
    assert graph.layers[7].kernel == (4, 4)  # AdaptiveAvgPool2d(1) on 4x4
    x = torch.randn(4, 3, 20, 20)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


def test_avgpool_module_and_nn_flatten():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2, stride=2), nn.Flatten(), nn.Linear(2 * 3 * 3, 3)).eval()
    graph = graph_from_module(model, (1, 8, 8))
    assert [type(layer) for layer in graph.layers] == [Conv2d, AvgPool2d, Flatten, Linear]
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(forward_float(graph, x), model(x))


def test_torch_export_program_traces_like_the_module(tmp_path):
    torch.manual_seed(0)
    model = _randomize_bn(Everything())
    program = torch.export.export(model, (torch.randn(1, 3, 20, 20),))
    path = tmp_path / "m.pt2"
    torch.export.save(program, str(path))
    graph = graph_from_exported(str(path))
    assert graph.input_shape == (3, 20, 20)
    x = torch.randn(3, 3, 20, 20)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)
    assert load_model(str(path)).graph.input_shape == (3, 20, 20)


class WithSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)
        self.act = nn.Sigmoid()
        self.fc = nn.Linear(2 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.act(self.c(x)), 1))


def test_unsupported_layer_names_node_op_and_supported_list():
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(WithSigmoid().eval(), (1, 6, 6))
    msg = str(e.value)
    assert "'act'" in msg and "call_module" in msg and "Sigmoid" in msg and "supported: Conv2d" in msg
    assert "\n" not in msg


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(x + self.c(x), 1))


def test_skip_connection_is_an_add_of_the_input_and_a_conv():
    model = Residual().eval()
    graph = graph_from_module(model, (2, 4, 4))
    add = graph.layers[1]
    assert type(add).__name__ == "Add" and add.inputs == ("input", "c") and not graph.is_chain
    x = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(forward_float(graph, x), model(x))


@pytest.mark.parametrize("layer,needle", [
    (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), "padding_mode"),
    (nn.MaxPool2d(2, dilation=2), "dilation"),
    (nn.AdaptiveMaxPool2d(3), "output size"),
    (nn.AvgPool2d(2, divisor_override=3), "divisor_override"),
    (nn.Sigmoid(), "Sigmoid"),
])
def test_unsupported_options_are_refused(layer, needle):
    model = nn.Sequential(layer, nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 2, 8, 8))
    with pytest.raises(XaiHlsError, match=needle):
        graph_from_module(model.eval(), (2, 8, 8))


def test_model_in_train_mode_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    with pytest.raises(XaiHlsError, match=r"training mode.*model.eval\(\)"):
        graph_from_module(model.train(), (1, 6, 6))


def test_wrong_input_shape_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 2)).eval()
    with pytest.raises(XaiHlsError, match=r"does not accept input_shape \(3, 6, 6\)"):
        graph_from_module(model, (3, 6, 6))
    with pytest.raises(XaiHlsError, match=r"does not accept input_shape \(6, 6\)"):  # (C, L): a 1-D model's
        graph_from_module(model, (6, 6))
    with pytest.raises(XaiHlsError, match=r"input_shape must be \(C, H, W\), or \(C, L\) for a 1-D model"):
        graph_from_module(model, (1, 1, 6, 6))


def test_corrupt_weights_file_is_refused(tmp_path):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"not a pickle at all")
    model = nn.Linear(2, 2)
    with pytest.raises(XaiHlsError, match=r"weights file .*w.pt is not a readable state_dict"):
        load_weights(model, bad)
    other = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(XaiHlsError, match="does not fit the model"):
        load_weights(model, other)


def test_unknown_zoo_name_is_refused():
    with pytest.raises(XaiHlsError, match="unknown zoo model 'nope'"):
        load_model("zoo:nope")


def test_factory_spec_with_weights(tmp_path, monkeypatch):
    from xaihls.models.digits import DigitsCNN

    (tmp_path / "userfactory.py").write_text(
        "from xaihls.models.digits import DigitsCNN\n\ndef net():\n    return DigitsCNN().eval()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    w = tmp_path / "w.pt"
    trained = DigitsCNN()
    torch.save(trained.state_dict(), w)
    loaded = load_model("userfactory:net", weights=w, input_shape=(1, 16, 16))
    torch.testing.assert_close(loaded.graph.layers[0].weight, trained.conv1.weight.detach())
    with pytest.raises(XaiHlsError, match="has no callable 'Nope'"):
        load_model("userfactory:Nope")
    with pytest.raises(XaiHlsError, match="input shape"):
        load_model("userfactory:net")
    with pytest.raises(XaiHlsError, match="training mode"):
        load_model("xaihls.models.digits:DigitsCNN", input_shape=(1, 16, 16))


def test_readme_and_docs_list_exactly_what_the_front_end_takes():
    from pathlib import Path

    from xaihls.frontend.trace import CHAIN_RULE, SUPPORTED_LAYERS, supported_table

    root = Path(__file__).resolve().parents[1]
    for doc in (root / "README.md", root / "docs" / "frontend.md"):
        text = doc.read_text()
        assert supported_table() in text and CHAIN_RULE in text, f"{doc.name}: the supported-layer table drifted"
        # no other layer table: each row of the doc's table is one of the front end's
        rows = [line for line in text.splitlines() if line.startswith("| ") and " | " in line[2:]]
        layer_rows = rows[rows.index("| layer | what is supported |") + 1:][: len(SUPPORTED_LAYERS) + 1]
        assert [r.split(" | ")[0][2:] for r in layer_rows[:len(SUPPORTED_LAYERS)]] == [n for n, _ in SUPPORTED_LAYERS]


def test_each_supported_layer_traces():
    """Every row of the table is taken: a model with each layer as the table states it compiles."""

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), bias=False)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4, 3)
            self.drop = nn.Dropout(0.5)
            self.ident = nn.Identity()

        def forward(self, x):
            x = F.relu(self.bn(self.conv(x))).relu()
            x = nn.functional.max_pool2d(x, (2, 3), stride=(1, 2))
            x = F.avg_pool2d(x, (1, 2))
            x = F.adaptive_avg_pool2d(self.ident(x), 1)
            return self.fc(self.drop(x.view(x.shape[0], -1)))

    graph = graph_from_module(Functional().eval(), (3, 9, 11))
    kinds = [type(layer).__name__ for layer in graph.layers]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "AvgPool2d", "Flatten", "Linear"]


def _traced(model, shape, exported: bool, tmp_path):
    """The model's Graph through torch.fx, or through a torch.export program saved and read back."""
    if not exported:
        return graph_from_module(model, shape)
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.rand(1, *shape),)), str(path))
    return graph_from_exported(str(path))


def assert_traces_to_the_model(model: nn.Module, shape) -> None:
    """The traced graph (``graph_to_module``, float64) computes the model's outputs and input gradients:
    every rewrite the front end makes (folds, splits, copies, spreads) is exact in float."""
    graph = graph_from_module(model, shape)
    rebuilt = graph_to_module(graph).double()
    x = torch.randn((3, *shape), dtype=torch.float64, requires_grad=True)
    ours, theirs = rebuilt(graph.as_maps(x)), model.double()(x)
    torch.testing.assert_close(ours, theirs)
    g_ours, = torch.autograd.grad(ours[:, 0].sum(), x)
    g_theirs, = torch.autograd.grad(theirs[:, 0].sum(), x)
    torch.testing.assert_close(g_ours, g_theirs)


class _MapArithmetic(nn.Module):
    """A global average written as a mean over the map, and pool windows from the map's shape."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.c(x))
        x = F.max_pool2d(x, x.size(-1) // 4)  # a 2 x 2 window on the 8 x 8 map
        if self.form == "mean":
            x = x.mean((2, 3))
        elif self.form == "mean_keepdim":
            x = torch.flatten(torch.mean(x, dim=[-1, -2], keepdim=True), 1)
        elif self.form == "amax":
            x = x.amax((2, 3))
        elif self.form == "adaptive_max":
            x = F.adaptive_max_pool2d(x, 1).flatten(1)
        elif self.form == "squeeze":  # one call: (C, 1, 1) to (C,)
            x = F.adaptive_avg_pool2d(x, 1).squeeze((2, 3))
        elif self.form == "squeeze_twice":  # (C, 1, 1) to (C, 1) to (C,)
            x = F.adaptive_avg_pool2d(x, 1).squeeze(-1).squeeze(-1)
        elif self.form == "view_squeeze":  # a view to (C, 1), then a squeeze
            x = F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1, 1).squeeze(2)
        elif self.form == "squeeze_all":  # every dimension of size one but the batch's
            x = torch.squeeze(F.adaptive_avg_pool2d(x, 1))
        else:  # "window": the pool over the whole map, its window from the map's shape
            x = F.avg_pool2d(x, x.shape[2]).flatten(1)
        return self.fc(x)


@pytest.mark.parametrize("form", ["mean", "mean_keepdim", "window", "amax", "adaptive_max", "squeeze",
                                  "squeeze_all", "squeeze_twice", "view_squeeze"])
@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_a_mean_over_the_map_and_windows_from_its_shape_trace(form, exported, tmp_path):
    """``x.mean((2, 3))`` (MobileNet and EfficientNet heads) is the global average pool, ``x.amax((2, 3))``
    and an adaptive max-pool the global max-pool, and shape arithmetic in a layer's arguments is what it
    computes for the input shape; they were refused or crashed (a kernel that was an fx Node)."""
    torch.manual_seed(0)
    model = _MapArithmetic(form).eval()
    graph = _traced(model, (3, 8, 8), exported, tmp_path)
    head = "MaxPool2d" if form in ("amax", "adaptive_max") else "AvgPool2d"
    kinds = [type(layer).__name__ for layer in graph.layers]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", head, "Flatten", "Linear"]
    assert graph.layers[2].kernel == (2, 2) and graph.layers[3].kernel == (4, 4)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


class _ShapeChecked(nn.Module):
    """A check of the input's shape in ``forward``, as torchvision's ViT makes it (``torch._assert``)."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        n, c, h, w = x.shape
        torch._assert(h == 8, f"wrong image height {h}, expected 8")
        torch._assert(w == 8, f"wrong image width {w}, expected 8")
        return self.fc(torch.flatten(self.c(x), 1))


@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_a_check_of_the_input_shape_traces_and_a_wrong_shape_is_refused(exported, tmp_path):
    """``torch._assert`` on the input's shape is the model's own check, which held when the shapes were traced: it
    is passed over (it was refused as an unsupported '_assert' node, so ViT's refusal named it and not the layer
    at fault). With another input shape the refusal is the model's own message, with its values (the traced
    f-string has Proxy(...) in their place)."""
    model = _ShapeChecked().eval()
    graph = _traced(model, (3, 8, 8), exported, tmp_path)
    assert [type(layer).__name__ for layer in graph.layers] == ["Conv2d", "Flatten", "Linear"]
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)
    if not exported:
        with pytest.raises(XaiHlsError, match=r"^model does not accept input_shape \(3, 9, 9\): wrong image height 9, "
                                              r"expected 8$"):
            graph_from_module(model, (3, 9, 9))


def test_a_mean_over_other_dims_is_refused_in_one_line():
    class ChannelMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(9, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.c(x).mean(1), 1))

    with pytest.raises(XaiHlsError, match=r"mean over dims 1 \(only over the map.s dims \(2, 3\): a global pool") as e:
        graph_from_module(ChannelMean().eval(), (3, 5, 5))
    assert "\n" not in str(e.value)


class _Normalizing(nn.Module):
    """Arithmetic with constants the way models write it: input normalization in ``forward``, a scale
    after a convolution, an offset after a rectifier."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.register_buffer("mean", torch.tensor([0.4, 0.5, 0.6]).view(3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1))
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        if self.form == "buffers":
            x = (x - self.mean) / self.std
        elif self.form == "numbers":
            x = 2 * (x / 255.0) - 1  # an 8-bit image to [-1, 1]
        else:  # "reversed"
            x = (1.0 - x).sub(0.25, alpha=2.0)
        x = torch.relu(self.c(x) * 0.5) + 0.125
        return self.fc(torch.flatten(x, 1)) / 2.0  # a temperature, folded into the Linear


@pytest.mark.parametrize("form", ["buffers", "numbers", "reversed"])
@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_arithmetic_with_constants_is_a_per_channel_affine(form, exported, tmp_path):
    """A number or a per-channel constant added, subtracted, multiplied or divided: one per-channel
    affine at the input (a chain of them merged), folded into the convolution that feeds it alone."""
    from xaihls.frontend.ir import ChannelAffine

    torch.manual_seed(0)
    model = _Normalizing(form).eval()
    graph = _traced(model, (3, 6, 6), exported, tmp_path)
    assert [type(layer) for layer in graph.layers] == [ChannelAffine, Conv2d, ReLU, ChannelAffine, Flatten, Linear]
    x = torch.rand(2, 3, 6, 6) * (255 if form == "numbers" else 1)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("body,needle", [
    (lambda x: x * x, "mul of two tensors (only their sum)"),
    (lambda x: x - torch.relu(x), "sub of two tensors (only their sum)"),
    (lambda x: 1.0 / x, "a constant divided by a tensor"),
    (lambda x: x * torch.ones(3, 6, 6), "a constant of shape (3, 6, 6)"),
])
def test_arithmetic_the_engine_cannot_express_is_refused_in_one_line(body, needle):
    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 6 * 6, 2)

        def forward(self, x):
            return self.fc(torch.flatten(body(x), 1))

    with pytest.raises(XaiHlsError) as e:
        graph_from_module(Body().eval(), (3, 6, 6))
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("last", [nn.Softmax(dim=1), nn.LogSoftmax(dim=1), "function", "method"])
def test_a_softmax_on_the_output_is_refused_with_what_to_do(last):
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 4 * 4, 5)
            self.last = last if isinstance(last, nn.Module) else nn.Identity()

        def forward(self, x):
            y = self.fc(torch.flatten(x, 1))
            if last == "function":
                return F.softmax(y, dim=-1)
            return y.log_softmax(1) if last == "method" else self.last(y)

    with pytest.raises(XaiHlsError) as e:
        graph_from_module(Head().eval(), (3, 4, 4))
    assert "a softmax on the model's output: compile the model without it" in str(e.value)


class _Cat(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 2, 1)
        self.fc = nn.Linear({"three": 9, "batch": 4}.get(form, 6), 2)

    def forward(self, x):
        a, b = torch.relu(self.a(x)), self.b(x)
        if self.form == "three":
            y = torch.concat((a, b, x), -3)
        elif self.form == "batch":
            y = torch.cat([a, a])
        else:
            y = torch.cat([a, b], dim=1)
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("form", ["two", "three"])
@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_a_concatenation_along_the_channels_traces(form, exported, tmp_path):
    from xaihls.frontend.ir import Concat

    torch.manual_seed(0)
    model = _Cat(form).eval()
    graph = _traced(model, (3, 6, 6), exported, tmp_path)
    cats = [layer for layer in graph.layers if isinstance(layer, Concat)]  # a cat of three: two cats of two
    assert [c.out_shape[0] for c in cats] == ([6] if form == "two" else [6, 9])
    assert all(len(c.inputs) == 2 for c in cats) and (form == "two" or cats[1].inputs[0] == cats[0].name)
    x = torch.rand(2, 3, 6, 6)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form,needle", [("batch", "cat along dim 0")])
def test_a_concatenation_the_front_end_cannot_take_is_refused_in_one_line(form, needle):
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(_Cat(form).eval(), (3, 6, 6))
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_cat_made_twice_is_one_tensor_and_what_reads_it_folds_nothing_into_it():
    """The second cat of the same two tensors (here through an alias) is the first one's output; a
    BatchNorm reading it stays a per-channel affine, since that tensor feeds a ReLU too."""
    from xaihls.frontend.ir import ChannelAffine, Concat

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 3, 1), nn.Conv2d(2, 3, 1)
            self.bn = nn.BatchNorm2d(6)
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            self.fc = nn.Linear(12 * 16, 2)

        def forward(self, x):
            a, b = self.a(x), self.b(x)
            first, second = torch.cat([a, b], 1), torch.cat([a.contiguous(), b], 1)
            return self.fc(torch.flatten(torch.cat([torch.relu(first), self.bn(second)], 1), 1))

    model = Twice().eval()
    graph = graph_from_module(model, (2, 4, 4))
    kinds = [type(layer) for layer in graph.layers]
    assert kinds.count(Concat) == 2 and ChannelAffine in kinds
    x = torch.randn(3, 2, 4, 4)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


class _Parts(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.c = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 6 * 6 if form != "three" else 2 * 6 * 6, 2)

    def forward(self, x):
        x = torch.relu(self.c(x))
        if self.form == "chunk":
            a, b = x.chunk(2, dim=1)
            x = torch.cat((b, a), 1)  # the halves swapped
        elif self.form == "split_sizes":
            a, b = torch.split(x, [2, 4], dim=1)
            x = torch.cat((b, a), 1)
        elif self.form == "three":
            x = x.chunk(3, 1)[1]
        elif self.form == "shuffle":
            n, c, h, w = x.size()
            x = x.view(n, 3, c // 3, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        else:  # "permute": the shuffle written with permute and reshape
            n, c, h, w = x.shape
            x = x.reshape(n, 2, 3, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("form", ["chunk", "split_sizes", "three", "shuffle", "permute"])
@pytest.mark.parametrize("exported", [False, True], ids=["fx", "export"])
def test_channel_parts_and_a_channel_shuffle_are_channel_selections(form, exported, tmp_path):
    from xaihls.frontend.ir import ChannelSelect

    torch.manual_seed(0)
    model = _Parts(form).eval()
    graph = _traced(model, (3, 6, 6), exported, tmp_path)
    assert any(isinstance(layer, ChannelSelect) for layer in graph.layers)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(forward_float(graph, x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("body,needle", [
    (lambda x: x.chunk(2, dim=2)[0], "split along dim 2"),
    (lambda x: torch.cat(x.chunk(2, 1), 1), "a split whose parts are used other than one by one"),
    (lambda x: x.view(x.size(0), 2, 3, 6, 6).sum(1), "an operation on a (groups, channels / groups, H, W) view"),
    (lambda x: x.transpose(2, 3), "only of a group view's two group dims"),
])
def test_channel_moves_the_front_end_cannot_take_are_refused_in_one_line(body, needle):
    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 6, 1)
            self.fc = nn.LazyLinear(2)

        def forward(self, x):
            return self.fc(torch.flatten(body(self.c(x)), 1))

    model = Body()
    model(torch.zeros(1, 3, 6, 6))
    with pytest.raises(XaiHlsError) as e:
        graph_from_module(model.eval(), (3, 6, 6))
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
