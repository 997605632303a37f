"""An image as its first convolution's stride phases (``qgraph.image_as_phases``, ``capabilities.image_phases``):
golden on the view computes what it computes on the network, bit for bit, and the engines planned with it match
golden. The 1-D cases (raw waveforms) are in tests/test_conv1d.py."""

import pytest
import torch

import xaihls
from tests.random_nets import STEMS, stem_net
from tests.test_reliability import _bit_exact
from xaihls.executor import saturation_kinds
from xaihls.golden import model as golden
from xaihls.plan import capabilities, lowering
from xaihls.plan.contract import image_view, network_image, view_phases
from xaihls.plan.planner_v2 import describe
from xaihls.quant.qgraph import image_as_phases


@pytest.mark.parametrize("seed", sorted(STEMS))
def test_a_2d_image_as_its_first_strides_phases_computes_what_the_image_does(seed):
    """s² phases of the image as channels, the first convolution a stride-1 one on them: the same logits and
    attributions as golden makes on the network, for every method; ``contract.image_view`` and
    ``network_image`` map pixel (s·y + a, s·x + b) of channel c to channel (c·s + a)·s + b and back."""
    model, shape, calibration = stem_net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    s = capabilities.image_phases(acc.graph)
    assert s == STEMS[seed][2]
    phases = image_as_phases(acc.qgraph, s)
    c, h, w = shape
    assert phases.graph.input_shape == (c * s * s, -(-h // s), -(-w // s)) and phases.layers[0].layer.stride == (1, 1)
    header = dict(zip(("in_c", "in_h", "in_w"), phases.graph.input_shape))
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * 2.0 - 0.5
    xp = torch.stack([torch.as_tensor(image_view(x_k.numpy(), header)) for x_k in x])
    a, b, y, z = 1 % s, (s - 1), h // s - 1, 1
    assert xp[0, (c - 1) * s * s + a * s + b, y, z] == x[0, c - 1, s * y + a, s * z + b]
    assert torch.equal(network_image(xp, shape), x)
    assert torch.equal(golden.predict(phases, xp).logits, golden.predict(acc.qgraph, x).logits)
    for method in acc.qgraph.methods:
        if method in ("grad_cam", "guided_grad_cam"):
            continue
        want, got = golden.attribute(acc.qgraph, x, method), golden.attribute(phases, xp, method)
        assert torch.equal(got.logits, want.logits), method
        assert torch.equal(network_image(got.attribution, shape), want.attribution), method


def test_the_planner_takes_a_strided_stems_phases_where_faster_and_program_and_csim_are_bit_exact():
    """A MobileNet's stem (3 x 3 of stride 2 on 3 x 16 x 16): the planner weighs the image as its 4 phases (12
    channels of 8 x 8) against the image itself and keeps the phases, faster by the cycle model; program and csim
    match golden on predict and the methods, the attribution in the network's shape. With Grad-CAM compiled the
    image stays as it is (its map's upsampling does not follow the phases)."""
    model, shape, calibration = stem_net(1)
    methods = ("saliency", "input_x_gradient", "integrated_gradients", "guided_backprop")
    acc = xaihls.compile(model, shape, calibration=calibration, methods=methods, ig_steps=3,
                         backends=("golden", "program", "csim"))
    program = acc.plan.program
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (12, 8, 8)
    assert ("image of 16 x 16 as the 4 phases of its first convolution's stride, 12 channels of 8 x 8, faster by the "
            "cycle model" in describe(acc.plan))
    assert sum(d.layer == 0 for d in program.backward) == 1 and program.forward[0].isy == 1
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(9)) * 2.0 - 0.5
    _bit_exact(acc, x, steps=None, methods=methods)


@pytest.mark.parametrize("seed,follows", [(1, True), (2, True), (5, True), (8, True), (3, False)])
def test_grad_cam_runs_on_the_phases_where_its_upsampling_follows_them(seed, follows):
    """Grad-CAM upsamples its map to the image. Where PyTorch's nearest table to the image takes pixel s·y + a
    where the table to the view takes y (8 x 8 to 16 x 16 at stride 2: by 2, and by 1 on the view; a ResNet stem's
    3 x 3 to 12 x 12 at stride 2; 7 x 5 to 13 x 10, DS-CNN's case, whose view's last row is half past the image;
    1 x 4 to 4 x 12 at stride 3, a view of 2 rows, 4 / 2 not the stride), the map upsampled on the view is the
    image's in every phase: the planner weighs the view, and program and csim match golden for both Grad-CAM
    methods, saturations by kind included, the host reading a view pixel back as s x s image pixels (s from the
    header's channels, ``contract.view_phases``). Where it does not (a 3 x 5 map to 12 x 18 at stride 3: by 4,
    and 3 to 4 rows on the view), the image stays as it is."""
    model, shape, calibration = stem_net(seed)
    methods = ("grad_cam", "guided_grad_cam")
    acc = xaihls.compile(model, shape, calibration=calibration, methods=methods, tiling=(8, 4),
                         backends=("golden", "program", "csim"))
    assert capabilities.cam_follows_phases(acc.qgraph) == follows
    s = STEMS[seed][2]
    assert acc.plan.program.header["in_c"] == shape[0] * (s * s if follows else 1)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * 2.0 - 0.5
    golden = _bit_exact(acc, x, steps=None, methods=methods)
    assert golden["grad_cam"].attribution.shape == (2, 1, *shape[1:])
    for method in methods:
        assert acc.run(x, method, backend="program").saturations == saturation_kinds(golden[method].saturations)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_a_stride_that_does_not_divide_the_sides_runs_as_phases_with_the_edge_past_the_image_zero(seed):
    """Sides the stride does not divide (13 rows at stride 2; 15 x 17 with a fused max-pool backward; 13 x 14 at
    stride 3): the view's last row or column holds pixels past the image in its later phases, zeros for the host.
    The first convolution's backward writes each edge rectangle as a job of its own whose weights for those phases
    are zero (``lowering.phase_edges``), so program and csim match golden on logits, attributions and the
    saturations by kind, the backward's included, on an image whose gradients saturate."""
    model, shape, calibration = stem_net(seed)
    c, h, w = shape
    s = STEMS[seed][2]
    methods = ("saliency", "integrated_gradients", "deconvnet")
    narrow = {"layers": {"0": {"gradient": "ap_fixed<16,-12>"}}}  # the image's gradient saturates
    acc = xaihls.compile(model, shape, calibration=calibration, methods=methods, ig_steps=3, tiling=(8, 4),
                         config=narrow, backends=("golden", "program", "csim"))
    program = lowering.lower(acc.qgraph, lowering.Shape(8, 4, 4), lowering.Buffers(1024, 256, 1024), as_phases=True)
    h_view, w_view = -(-h // s), -(-w // s)
    assert (program.header["in_c"], program.header["in_h"], program.header["in_w"]) == (c * s * s, h_view, w_view)
    edges = lowering.phase_edges(shape, (c * s * s, h_view, w_view), (s, s))
    assert len(edges) == (2 if h % s else 1) * (2 if w % s else 1) and not edges[0][2]
    first = [d for d in program.backward if d.layer == 0]
    assert len(first) == len(edges) and {(d.oph, d.opw) for d in first} == {
        (r[1] - r[0], q[1] - q[0]) for r, q, _ in edges}
    header = acc.plan.program.header  # the planner takes the view, faster by the cycle model
    assert (header["in_c"], header["in_h"], header["in_w"]) == (c * s * s, h_view, w_view)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * 2.0 - 0.5
    golden = _bit_exact(acc, x, steps=None, methods=methods)
    assert saturation_kinds(golden["saliency"].saturations).get("backward", 0) > 0
    for method in (None, *methods):
        want = saturation_kinds(golden[method].saturations)
        for backend in ("program", "csim"):
            assert acc.run(x, method, backend=backend).saturations == want, (method, backend)


def test_phase_edges_name_the_phases_past_the_image():
    """49 rows at stride 2 (DS-CNN's MFCCs): the view's 25th row holds row 48 in phases (0, b) and nothing in
    phases (1, b); 10 columns divide. 13 x 14 at stride 3: the last row holds phase 0 only, the last column phases
    0 and 1, and the corner both limits."""
    assert lowering.phase_edges((1, 49, 10), (4, 25, 5), (2, 2)) == [((0, 24), (0, 5), ()), ((24, 25), (0, 5), (2, 3))]
    edges = dict(((r, q), past) for r, q, past in lowering.phase_edges((1, 13, 14), (9, 5, 5), (3, 3)))
    assert edges[(0, 4), (0, 4)] == () and edges[(4, 5), (0, 4)] == (3, 4, 5, 6, 7, 8)
    assert edges[(0, 4), (4, 5)] == (2, 5, 8) and edges[(4, 5), (4, 5)] == (2, 3, 4, 5, 6, 7, 8)
    assert lowering.phase_edges((1, 1000, 1), (4, 250, 1), (4, 1)) == [((0, 250), (0, 1), ())]
    assert lowering.phase_edges((2, 1001, 1), (8, 251, 1), (4, 1))[1] == ((250, 251), (0, 1), (1, 2, 3, 5, 6, 7))


def test_a_2d_image_narrower_than_its_stride_keeps_the_image():
    """A 2-D image of one column read at stride (2, 2) (tests/test_differential.py seed 5): no phases view, whose
    one column the host would take for a 1-D model's samples; program and csim match golden on the image."""
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 13, (2, 1), stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(13 * 3, 4)).eval()
    shape = (3, 6, 1)
    acc = xaihls.compile(model, shape, calibration=torch.rand(8, *shape), tiling=(8, 4),
                         methods=("saliency",), backends=("golden", "program", "csim"))
    assert capabilities.image_phases(acc.graph) is None and acc.plan.program.header["in_c"] == 3
    _bit_exact(acc, torch.rand((2, *shape), generator=torch.Generator().manual_seed(5)), methods=("saliency",))


def test_unequal_strides_keep_the_image():
    """No phases where the first convolution's strides differ."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=(2, 1), padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 16, 2)).eval()
    acc = xaihls.compile(model, (1, 16, 16), calibration=torch.rand(4, 1, 16, 16), backends=("golden",))
    assert capabilities.image_phases(acc.graph) is None
    program = lowering.lower(acc.qgraph, lowering.Shape(8, 4, 4), lowering.Buffers(1024, 256, 1024), as_phases=True)
    assert program.header["in_c"] == 1


def test_a_patchify_stem_past_a_jobs_stride_runs_as_its_phases():
    """A vision transformer's patch embedding, a 16 x 16 convolution of stride 16 (a job steps at most 15): refused
    as the image is, it runs as the stride's 256 phases (768 channels of 4 x 4, the convolution a 1 x 1 one), and
    the program executor matches golden."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 16, stride=16), torch.nn.ReLU(),
                                torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(16, 5)).eval()
    shape, methods = (3, 64, 64), ("saliency", "integrated_gradients")
    capabilities.IMAGE_PHASES = False
    try:
        with pytest.raises(xaihls.XaiHlsError, match="descriptor.isy = 16 does not fit"):
            xaihls.compile(model, shape, calibration=torch.rand(4, *shape), methods=methods,
                           backends=("golden", "program"))
    finally:
        capabilities.IMAGE_PHASES = True
    acc = xaihls.compile(model, shape, calibration=torch.rand(4, *shape), methods=methods, ig_steps=3,
                         backends=("golden", "program"))
    h = acc.plan.program.header
    assert (h["in_c"], h["in_h"], h["in_w"]) == (768, 4, 4) and acc.plan.program.forward[0].ky == 1
    _bit_exact(acc, torch.rand((2, *shape), generator=torch.Generator().manual_seed(2)), ("program",), None, methods)


def test_a_grad_cam_map_on_the_view_comes_back_as_s_by_s_pixels_of_the_headers_stride():
    """A one-channel map on the view is read back by the view's phases p (s = √p in 2-D, p in 1-D), not by the
    sides: 4 x 12 at stride 3 has a view of 2 x 4, whose 4 rows over 2 would read as a stride of 2; a map on the
    image itself (p = 1, a 1-D model's column included) keeps its pixels; a map that is neither is refused."""
    view = torch.arange(8).reshape(1, 1, 2, 4)
    back = network_image(view, (2, 4, 12), view_phases({"in_c": 18}, (2, 4, 12)))
    assert back.shape == (1, 1, 4, 12) and back[0, 0, 3, 11] == 7 and back[0, 0, 3, 0] == 4
    assert back[0, 0, 2, 0] == 0 and back[0, 0, 1, 3] == 1
    column = torch.arange(3).reshape(1, 3, 1)
    assert network_image(column, (1, 1, 10), 4).tolist() == [[[0, 0, 0, 0, 1, 1, 1, 1, 2, 2]]]
    assert torch.equal(network_image(torch.arange(10).reshape(1, 10, 1), (2, 1, 10), 1),
                       torch.arange(10).reshape(1, 1, 10))
    with pytest.raises(ValueError, match="not a view of 4 phases"):
        network_image(torch.zeros(3, 2, 2), (1, 4, 4), 4)


class _Fire(torch.nn.Module):
    """SqueezeNet's Fire module: a 1 x 1 squeeze read by two expands (a gradient sum at it), their ReLUs cat."""

    def __init__(self, c: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = torch.nn.Conv2d(c, squeeze, 1)
        self.expand1 = torch.nn.Conv2d(squeeze, expand, 1)
        self.expand3 = torch.nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1(x)), torch.relu(self.expand3(x))], 1)


def test_batched_lists_keep_the_image_the_planner_weighed_where_grad_cam_does_not_follow_the_phases():
    """A stride-2 stem, a Fire module (a gradient sum) and Grad-CAM on a 9 x 9 map of a 20 x 20 image, whose table
    does not follow the phases: the image runs as it is, in the batched lists too. ``lower_jobs`` reported
    ``as_phases`` from the gradient sum's phase list, so the planner re-lowered its batched lists on the view, and
    program's Grad-CAM upsampled by the view's table: 144 of each image's 400 pixels off golden's."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), _Fire(8, 4, 6),
                                torch.nn.Conv2d(12, 5, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten()).eval()
    shape, methods = (3, 20, 20), ("saliency", "grad_cam")
    acc = xaihls.compile(model, shape, calibration=torch.rand(8, *shape), methods=methods, tiling=(8, 4),
                         backends=("golden", "program"))
    assert capabilities.image_phases(acc.graph) == 2 and not capabilities.cam_follows_phases(acc.qgraph)
    low = lowering.lower_jobs(acc.qgraph, lowering.Shape(8, 4, 4), as_phases=False)
    assert not low.as_phases and low.header["in_c"] == 3
    header = acc.plan.program.header
    assert header["batch"] > 1 and header["in_c"] == 3  # the batched lists, on the image
    _bit_exact(acc, torch.rand((2, *shape), generator=torch.Generator().manual_seed(3)), ("program",), None, methods)
