"""Average pools whose windows have different divisors (``count_include_pad=False`` over padding, as
Keras' 'same' average pooling; a ceil-mode window past the map): golden rounds each window's sum
times its own reciprocal once; the engines run a job a rectangle of windows of one reciprocal
forward, and backward a job a rectangle of input pixels whose passes each read windows of one
reciprocal (docs/engine_v2.md, "Average pools of several divisors")."""

import itertools
import random

import numpy as np
import pytest
import torch
import torch.nn as nn

import xaihls
from xaihls.methods import METHODS
from xaihls.frontend.ir import AvgPool2d, ChannelAffine, Conv2d, Flatten, Graph, Linear
from xaihls.frontend.trace import graph_from_module
from xaihls.plan.lowering import _phases, _phase_regions, _pool_regions
from tests.random_nets import windowed_pool_net
from tests.test_differential import _refused_or_bit_exact_everywhere
from tests.test_frontend import assert_traces_to_the_model


def _pool(k, s, p, ceil, counted, hw) -> AvgPool2d:
    pool = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=counted)
    out = pool(torch.zeros(1, 1, *hw)).shape[1:]
    return AvgPool2d("pool", (1, *hw), tuple(out), (k, k) if isinstance(k, int) else k,
                     (s, s) if isinstance(s, int) else s, (p, p) if isinstance(p, int) else p, ceil, counted)


def _geometries(n: int):
    """Random pools whose windows have different divisors: kernels 1 to 5 a side, strides 1 to the
    kernel, padding up to half the kernel, either mode, maps of 1 to 12 a side."""
    rng = random.Random(7)
    found = 0
    while found < n:
        k = (rng.randint(1, 5), rng.randint(1, 5))
        s = tuple(rng.randint(1, x) for x in k)
        p = tuple(rng.randint(0, x // 2) for x in k)
        hw = (rng.randint(max(k), 12), rng.randint(max(k), 12))
        pool = _pool(k, s, p, rng.random() < 0.5, rng.random() < 0.3, hw)
        if pool.windowed:
            found += 1
            yield pool


def _recips(pool: AvgPool2d) -> np.ndarray:
    return (4096 // pool.divisors()).numpy().astype(np.int64)  # codes distinct where divisors are


@pytest.mark.parametrize("pool", list(_geometries(40)), ids=lambda p: f"{p.kernel}{p.stride}{p.padding}{p.in_shape}")
def test_the_regions_cover_the_map_once_each_with_one_reciprocal(pool):
    """Forward: the rectangles tile the output, every window in one has its reciprocal, and the passes
    left out read only padding from every window of it. Backward, in each stride phase: the rectangles
    tile the phase's grid of input pixels, pass (t, u) of every pixel of one reads a window of the
    region's reciprocal for that pass, or none (off the output), and the passes left out read none."""
    recips = _recips(pool)
    oh, ow = recips.shape
    (_, h, w), (kh, kw), (sy, sx), (py, px) = pool.in_shape, pool.kernel, pool.stride, pool.padding
    seen = np.zeros_like(recips)
    for region in _pool_regions(pool, recips):
        (y0, y1), (x0, x1), (t0, t1), (u0, u1) = region.rows, region.cols, region.taps_y, region.taps_x
        seen[y0:y1, x0:x1] += 1
        assert (recips[y0:y1, x0:x1] == region.values[0]).all() and len(set(region.values)) == 1
        assert len(region.values) == (t1 - t0) * (u1 - u0)
        for a, b, t, u in itertools.product(range(y0, y1), range(x0, x1), range(kh), range(kw)):
            if not (t0 <= t < t1 and u0 <= u < u1):
                assert not (0 <= a * sy - py + t < h and 0 <= b * sx - px + u < w), (a, b, t, u)
    assert (seen == 1).all()
    for phase in _phases(pool):
        (ry, rx), (_, ty, iy0), (_, tx, ix0) = phase
        if not (ty and tx):
            continue
        grid = np.zeros((len(range(ry, h, sy)), len(range(rx, w, sx))), dtype=np.int64)
        for region in _phase_regions(pool, recips, phase):
            (y0, y1), (x0, x1), (t0, t1), (u0, u1) = region.rows, region.cols, region.taps_y, region.taps_x
            grid[y0:y1, x0:x1] += 1
            for a, b, t, u in itertools.product(range(y0, y1), range(x0, x1), range(ty), range(tx)):
                oy, ox = a + iy0 - t, b + ix0 - u
                inside = 0 <= oy < oh and 0 <= ox < ow
                if t0 <= t < t1 and u0 <= u < u1:
                    assert not inside or region.values[(t - t0) * (u1 - u0) + u - u0] == recips[oy, ox]
                else:
                    assert not inside, (phase, a, b, t, u)
        assert (grid == 1).all()


def test_a_padded_pool_of_stride_one_runs_nine_regions_forward():
    """Edges and corners of a 3 x 3 pool that counts no padding: a 3 x 3 grid of rectangles, whose jobs
    write the pool's output, the edges' without the pass row or column on the padding; backward, two
    rows and two columns at each edge differ (25 rectangles), the outer ones without the passes that
    read past the output."""
    pool = _pool(3, 1, 1, False, False, (8, 8))
    recips = _recips(pool)
    regions = _pool_regions(pool, recips)
    assert [(r.rows, r.cols) for r in regions] == [
        (r, c) for r in ((0, 1), (1, 7), (7, 8)) for c in ((0, 1), (1, 7), (7, 8))]
    assert [(r.ky, r.kx) for r in regions] == [(2, 2), (2, 3), (2, 2), (3, 2), (3, 3), (3, 2), (2, 2), (2, 3), (2, 2)]
    (phase,) = _phases(pool)
    backward = _phase_regions(pool, recips, phase)
    assert len(backward) == 25 and sum(r.ky * r.kx for r in backward) == 4 * 4 + 12 * 6 + 9 * 9


@pytest.mark.parametrize("seed", range(12))
def test_a_random_windowed_pool_net_is_bit_exact_everywhere(seed):
    """tests/random_nets.py ``windowed_pool_net`` on the program and csim engines, predict and every
    method: pools that count no padding or overhang the map, Inception's pool branch, a map plus its
    pooled self."""
    _refused_or_bit_exact_everywhere(seed, *windowed_pool_net(seed), may_refuse=False)


@pytest.mark.parametrize("seed", range(6))
def test_a_random_windowed_pool_net_traces_to_the_same_function_and_gradient(seed):
    assert_traces_to_the_model(*windowed_pool_net(seed)[:2])


class _SamePool(nn.Module):
    """A map read by a 1 x 1 conv and by Keras' 'same' average pool (Inception's pool branch)."""

    def __init__(self):
        super().__init__()
        self.stem, self.a, self.b = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 1), nn.Conv2d(4, 3, 1)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.fc = nn.Linear(6 * 6 * 6, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        return self.fc(torch.cat([self.a(x), self.b(self.pool(x))], 1).flatten(1))


def test_a_pool_among_a_maps_readers_reads_a_copy():
    """The two-source sum takes one kernel a reader for the whole map, which such a pool has not: the
    front end gives it an exact copy of the map (dag.with_copies), whose gradient its jobs write."""
    torch.manual_seed(0)
    model = _SamePool().eval()
    graph = graph_from_module(model, (2, 6, 6))
    pool = next(layer for layer in graph.layers if isinstance(layer, AvgPool2d))
    assert pool.windowed and pool.inputs[0].endswith(".copy0")
    _refused_or_bit_exact_everywhere(0, model, (2, 6, 6), torch.rand(8, 2, 6, 6), may_refuse=False)


def test_a_hand_made_graph_with_such_a_pool_among_readers_gets_its_copy_and_is_bit_exact():
    """A Graph made by hand is given the copies a traced one has (``dag.with_copies`` in compile): the pool
    reads a copy of the map, and the engines run the graph bit-exact."""
    conv = Conv2d("conv", (2, 4, 4), (2, 4, 4), torch.randn(2, 2, 1, 1), torch.zeros(2), (1, 1), (1, 1), (0, 0),
                  inputs=("input",))
    pool = _pool(3, 1, 1, False, False, (4, 4))
    pool = AvgPool2d("pool", (2, 4, 4), (2, 4, 4), pool.kernel, pool.stride, pool.padding, False, False,
                     inputs=("conv",))
    head = ChannelAffine("scale", (2, 4, 4), (2, 4, 4), torch.ones(2) * 0.5, torch.zeros(2), inputs=("conv",))
    from xaihls.frontend.ir import Add
    graph = Graph((2, 4, 4), (conv, pool, head, Add("add", (2, 4, 4), (2, 4, 4), ("pool", "scale")),
                              Flatten("flat", (2, 4, 4), (32,), inputs=("add",)),
                              Linear("fc", (32,), (2,), torch.randn(2, 32), torch.zeros(2))))
    acc = xaihls.compile(graph, calibration=torch.rand(4, 2, 4, 4), ig_steps=3, backends=("golden", "program"))
    assert next(layer for layer in acc.graph.layers if layer.name == "pool").inputs == ("conv.copy0",)
    x = torch.rand(2, 2, 4, 4)
    for method in (None, "saliency", "guided_backprop"):
        g, p = acc.run(x, method), acc.run(x, method, backend="program")
        assert torch.equal(g.logits, p.logits) and (method is None or torch.equal(g.attribution, p.attribution))


def test_keras_same_average_pooling_on_a_sequence_is_bit_exact():
    """AveragePooling1D(3, strides=1, padding='same') as PyTorch writes it, and a ceil-mode one of
    stride 2, on a 1-D model's (C, L) input."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv1d(3, 6, 5, padding=2), nn.ReLU(), nn.AvgPool1d(3, 1, 1, count_include_pad=False),
                          nn.Conv1d(6, 6, 3), nn.ReLU6(), nn.AvgPool1d(2, 2, ceil_mode=True), nn.Flatten(),
                          nn.Linear(6 * 15, 4)).eval()
    _refused_or_bit_exact_everywhere(1, model, (3, 31), torch.rand(8, 3, 31), may_refuse=False)


@pytest.fixture(scope="module")
def compiled_same_pool():
    torch.manual_seed(5)
    model = _SamePool().eval()
    gen = torch.Generator().manual_seed(6)
    acc = xaihls.compile(model, (2, 6, 6), calibration=torch.rand(32, 2, 6, 6, generator=gen), backends=("golden",))
    return acc, model, torch.rand(8, 2, 6, 6, generator=gen)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_same_pool_nets_attribution_correlates_with_captum(compiled_same_pool, method):
    """Golden against Captum float, 8 inputs never calibrated on; the rectifier-rule methods on the traced
    graph as modules (Captum hooks nn.ReLU modules only; the model's ReLUs are functional)."""
    from tests.test_fidelity import captum_pearson

    r = captum_pearson(*compiled_same_pool, method)
    assert float(r.mean()) >= 0.995 and float(r.min()) >= 0.98, (method, r)
