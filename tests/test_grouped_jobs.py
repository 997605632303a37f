"""Grouped convolutions (ResNeXt's, RegNet's, ShuffleNet's) as a job a cluster of groups: each job reads only its
groups' input blocks and weights, where the dense job's every m-tile passes over every block with the other
groups' weights zero (docs/engine_v2.md, "Grouped convolutions a cluster of groups a job")."""

import random

import pytest
import torch
import torch.nn as nn

import xaihls
import xaihls.plan.lowering as lowering
from xaihls.plan.lowering import Shape, group_clusters
from tests.random_nets import grouped_net
from tests.test_differential import TILINGS, _refused_or_bit_exact_everywhere


class Block(nn.Module):
    """A ResNeXt bottleneck (1 x 1, grouped 3 x 3, 1 x 1, a residual add) between a stem and a grouped strided
    convolution of a 1 x 1 kernel's other group size, then a linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.reduce = nn.Conv2d(32, 32, 1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.grouped = nn.Conv2d(32, 32, 3, padding=1, groups=8, bias=False)
        self.expand = nn.Conv2d(32, 32, 1)
        self.down = nn.Conv2d(32, 64, 3, stride=2, padding=1, groups=4)
        self.wide = nn.Conv2d(64, 64, 1, groups=2)
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.bn(self.reduce(x)))
        x = torch.relu(x + self.expand(torch.relu(self.grouped(y))))
        x = torch.relu(self.wide(torch.relu(self.down(x))))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _block(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = Block()
    with torch.no_grad():  # BatchNorm statistics a trained net would have
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_a_cluster_is_the_fewest_groups_of_whole_tiles():
    s16x8, s4x4 = Shape(16, 8, 4), Shape(4, 4, 4)
    assert group_clusters(32, 4, 4, s16x8) == 4  # ResNeXt-50's first stage: 16 outputs and 16 inputs a job
    assert group_clusters(32, 32, 32, s16x8) == 1  # its last: a group a job, 2 m-tiles of 4 n-tiles
    assert group_clusters(8, 4, 8, s16x8) == 2 and group_clusters(8, 4, 8, s4x4) == 1
    assert group_clusters(2, 8, 1, s16x8) is None  # 16 groups would fill an m-tile: one job takes them all
    assert group_clusters(4, 3, 3, s16x8) is None  # 16 groups a cluster, only 4
    assert group_clusters(6, 4, 4, s16x8) is None  # 4 groups do not divide 6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_convolutions_are_bit_exact_everywhere(seed):
    """Program and csim against golden for predict and every method, at the tilings the seeds pick."""
    _refused_or_bit_exact_everywhere(seed, _block(seed), (3, 8, 8), torch.rand(16, 3, 8, 8), may_refuse=False)


def _compiled(monkeypatch, on: bool):
    monkeypatch.setattr(lowering, "GROUP_JOBS", on)
    return xaihls.compile(_block(0), (3, 8, 8), calibration=torch.rand(16, 3, 8, 8), board="pynq-z2",
                          tiling=(16, 8), methods=("saliency",), backends=("golden", "program"))


def test_the_planner_keeps_a_job_a_cluster_where_it_is_cheaper(monkeypatch):
    dense, grouped = _compiled(monkeypatch, False), _compiled(monkeypatch, True)
    layer = next(i for i, lay in enumerate(grouped.graph.layers) if getattr(lay, "groups", 1) == 8)
    jobs = [(d.m_tiles, d.n_tiles) for d in grouped.plan.program.forward if d.layer == layer]
    assert jobs == [(1, 2), (1, 2)]  # groups of 4 in and out: 4 a job, 16 outputs of 16 inputs
    assert [(d.m_tiles, d.n_tiles) for d in dense.plan.program.forward if d.layer == layer] == [(2, 4)]
    for method in ("predict", "saliency"):
        assert grouped.plan.method_cycles[method] < dense.plan.method_cycles[method], method
    x = torch.rand(2, 3, 8, 8)
    for method in (None, "saliency"):
        a, b = dense.run(x, method, backend="program"), grouped.run(x, method, backend="program")
        assert torch.equal(a.logits, b.logits) and (method is None or torch.equal(a.attribution, b.attribution))


def test_compact_weights_leave_out_the_zeros_between_clusters(monkeypatch):
    """Where the cluster jobs surely run, the weights are stored for them alone: the same jobs at the same cycles,
    the same bits, and the DDR short by the dense kernels' zeros between clusters."""
    dense, compact = (_compiled_compact(monkeypatch, on) for on in (False, True))
    low = lowering.lower_jobs(compact.qgraph, Shape(16, 8, 4))
    assert {d.layer for d in low.twin_only} == {i for i, lay in enumerate(compact.graph.layers)
                                                 if getattr(lay, "groups", 1) > 1}
    for d in low.twin_only:  # each cluster's m-tiles after the previous one's, none reading another's n-tiles
        twin = low.twins[d]
        assert all(t.w_mt_bytes == t.n_tiles * t.w_nt_bytes for t in twin)
        assert [t.w_addr - twin[0].w_addr for t in twin] == [c * t.m_tiles * t.w_mt_bytes for c, t in enumerate(twin)]
    p, q = dense.plan.program, compact.plan.program
    # the cluster jobs run wherever the weights are compact; the dense stand-ins never
    for d in low.twin_only:
        ran = q.forward if d in low.forward else q.backward
        assert {t.n_tiles for t in ran if t.layer == d.layer} == {low.twins[d][0].n_tiles} != {d.n_tiles}
    # the tiler kept one dense backward phase of down (2 x 2 map) by 10 cycles before; now its 2 cluster jobs run
    assert dense.plan.method_cycles["predict"] == compact.plan.method_cycles["predict"]
    assert dense.plan.method_cycles["saliency"] + 10 == compact.plan.method_cycles["saliency"]
    # the zeros left out, forward and backward (clusters of the transposed groups): grouped (32 -> 32, 8 groups,
    # 3 x 3) in clusters of 4 groups both ways, half its weights; down (32 -> 64, 4 groups, 3 x 3, stride 2) a group
    # a job forward (three quarters), 2 a job backward (half); wide (64 -> 64, 2 groups, 1 x 1) half both ways
    zeros = 2 * 32 * 16 * 9 + (64 * 24 * 9 + 32 * 32 * 9) + 2 * 64 * 32
    assert p.header["total_bytes"] - q.header["total_bytes"] == 2 * zeros
    x = torch.rand(2, 3, 8, 8)
    for method in (None, "saliency", "integrated_gradients"):
        a, b = dense.run(x, method, backend="program"), compact.run(x, method, backend="program")
        assert torch.equal(a.logits, b.logits) and (method is None or torch.equal(a.attribution, b.attribution))


def _compiled_compact(monkeypatch, on: bool):
    monkeypatch.setattr(lowering, "COMPACT_GROUPS", on)
    return xaihls.compile(_block(0), (3, 8, 8), calibration=torch.rand(16, 3, 8, 8), board="pynq-z2",
                          tiling=(16, 8), methods=("saliency", "integrated_gradients"), backends=("golden", "program"))


@pytest.mark.parametrize("layer", ["grouped", "down", "wide"])
def test_grad_cam_at_a_grouped_convolution_is_bit_exact(layer):
    """Grad-CAM runs a grouped convolution's forward job again when the layer is one: that convolution keeps
    its dense weights, the others' stay compact; program and csim against golden."""
    acc = xaihls.compile(_block(1), (3, 8, 8), calibration=torch.rand(16, 3, 8, 8), tiling=(16, 8),
                         methods=("saliency", "grad_cam", "guided_grad_cam"), config={"grad_cam_layer": layer},
                         backends=("golden", "program", "csim"))
    low = lowering.lower_jobs(acc.qgraph, Shape(16, 8, 4))
    named = next(i for i, lay in enumerate(acc.graph.layers) if lay.name == layer)
    assert low.twin_only and named not in {d.layer for d in low.twin_only}
    x = torch.rand(2, 3, 8, 8)
    for method in ("grad_cam", "guided_grad_cam"):
        g = acc.run(x, method)
        for backend in ("program", "csim"):
            r = acc.run(x, method, backend=backend)
            assert torch.equal(r.logits, g.logits) and torch.equal(r.attribution, g.attribution), (backend, method)


@pytest.mark.parametrize("seed", range(4))
def test_random_grouped_nets_are_bit_exact_everywhere(seed):
    """Random chains of grouped convolutions (tests/random_nets.py ``grouped_net``), their weights compact where
    the cluster jobs surely run: program and csim against golden for predict and every method, at the tilings
    the seeds pick; Grad-CAM at a random one of their convolutions on program."""
    model, shape, calibration = grouped_net(seed)
    _refused_or_bit_exact_everywhere(seed, model, shape, calibration, may_refuse=False)
    layer = random.Random(seed).choice([n for n, m in model.named_children() if isinstance(m, nn.Conv2d)])
    acc = xaihls.compile(model, shape, calibration=calibration, tiling=TILINGS[seed % len(TILINGS)],
                         methods=("grad_cam", "guided_grad_cam"), config={"grad_cam_layer": layer},
                         backends=("golden", "program"))
    x = torch.rand(2, *shape)
    for method in ("grad_cam", "guided_grad_cam"):
        g, r = acc.run(x, method), acc.run(x, method, backend="program")
        assert torch.equal(r.logits, g.logits) and torch.equal(r.attribution, g.attribution), (layer, method)
