"""Differential test of the whole pipeline on random small networks (tests/random_nets.py).

Each network is either refused by ``xaihls.compile`` with a one-line ``XaiHlsError``, or the
program interpreter and the C-simulated HLS engine equal the golden model bit for bit for
predict and every method, and agree with each other on the saturation counts.

A fixed set of seeds runs in ``make test``. More in the opt-in slow mode:
``XAIHLS_FUZZ_NETS=500 XAIHLS_FUZZ_SEED=1000 pytest tests/test_differential.py`` (the seed of a
failing network is in the test's id).
"""

from __future__ import annotations

import os

import pytest
import torch

import xaihls
from tests.random_nets import edge_net, random_net
from xaihls.errors import XaiHlsError
from xaihls.methods import METHODS

NETS = int(os.environ.get("XAIHLS_FUZZ_NETS", "24"))
FIRST_SEED = int(os.environ.get("XAIHLS_FUZZ_SEED", "0"))
TILINGS = ((4, 4), (8, 4), (8, 8), (16, 8))  # engines the contract takes (Tn a multiple of the beat's 4)


def _refused_or_bit_exact_everywhere(seed, model, shape, calibration, may_refuse=True,
                                     backends=("program", "csim"), refusals: tuple[str, ...] = ("",)):
    tiling = TILINGS[seed % len(TILINGS)]
    try:
        acc = xaihls.compile(model, shape, calibration=calibration, tiling=tiling, ig_steps=3,
                             backends=("golden", *backends))
    except XaiHlsError as exc:
        assert "\n" not in str(exc), f"seed {seed}: a refusal must be one line: {exc}"
        assert may_refuse and any(r in str(exc) for r in refusals), f"seed {seed}: {exc}"
        return
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    for method in (None, *METHODS):
        g = acc.run(x, method)
        runs = {backend: acc.run(x, method, backend=backend) for backend in backends}
        for backend, r in runs.items():
            what = f"seed {seed} {model} tiling {tiling}: {backend} {method or 'predict'}"
            assert torch.equal(r.logits, g.logits), f"{what}: logits"
            assert torch.equal(r.target, g.target), f"{what}: target"
            if method:
                assert torch.equal(r.attribution, g.attribution), f"{what}: attribution"
        counts = {backend: r.saturations for backend, r in runs.items()}
        assert len(set(map(str, counts.values()))) == 1, f"seed {seed} {method}: saturation counts {counts}"


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + NETS))
def test_random_net_is_refused_at_compile_or_bit_exact_everywhere(seed):
    _refused_or_bit_exact_everywhere(seed, *random_net(seed))


EDGE_NETS = int(os.environ.get("XAIHLS_FUZZ_EDGE_NETS", "8"))


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + EDGE_NETS))
def test_random_edge_chain_is_refused_at_compile_or_bit_exact_everywhere(seed):
    """Random chains of the edge layers (tests/random_nets.py ``edge_net``: depthwise and grouped
    convolutions, ReLU6, BatchNorm as an affine, padded pools) on the program and csim engines; the
    engine takes every one of them."""
    _refused_or_bit_exact_everywhere(seed, *edge_net(seed), may_refuse=False)


DAG_NETS = int(os.environ.get("XAIHLS_FUZZ_DAG_NETS", "12"))
DAG_BACKENDS = ("program", "csim")


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + DAG_NETS))
def test_random_dag_is_refused_at_compile_or_bit_exact_everywhere(seed):
    """Random residual nets (tests/random_nets.py ``random_dag_net``: skip connections, identity or
    strided projections, depthwise branches, ReLU6, padded pools): bit-exact on the engines, or refused
    at compile in one line where two gradient terms lie too far apart to sum exactly and the finer's
    format is an Add's too, which calibration does not move (docs/quantization.md)."""
    from tests.random_nets import random_dag_net

    _refused_or_bit_exact_everywhere(seed, *random_dag_net(seed), backends=DAG_BACKENDS,
                                     refusals=("the engine raises a convolution's term",))


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + DAG_NETS))
def test_random_dag_golden_follows_float(seed):
    """The golden model runs every method on the random residual nets, Grad-CAM included, its logits
    within a few percent of the float graph's and its gradient correlated with the float one."""
    from tests.random_nets import random_dag_net
    from xaihls.frontend.reference import float_attribute, forward_float
    from xaihls.methods import ALL_METHODS
    from xaihls.reports.fidelity import pearson_per_image

    model, shape, calibration = random_dag_net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=tuple(ALL_METHODS),
                         backends=("golden",))
    x = torch.rand((3, *shape), generator=torch.Generator().manual_seed(seed))
    ref = forward_float(acc.graph, x.double())
    err = (acc.predict(x).double() - ref).abs().max()
    assert float(err) <= 0.05 * float(ref.abs().max()) + 64 * acc.qgraph.logits_fmt.lsb, f"seed {seed}: {err}"
    target = acc.predict(x).argmax(1)
    for method in ALL_METHODS:
        r = acc.run(x, method, target)
        assert r.attribution.shape[0] == 3 and r.attribution.shape[2:] == x.shape[2:], method
    g = acc.attribute(x, "gradient", target)
    f = float_attribute(acc.graph, x.double(), "gradient", target).attribution
    assert float(pearson_per_image(g, f).mean()) >= 0.95, f"seed {seed}"


@pytest.mark.parametrize("seed,form", [(0, "buffers"), (3, "numbers"), (1, "reversed")])
def test_a_model_that_normalizes_its_input_runs_bit_exact_everywhere(seed, form):
    """Arithmetic with constants (input normalization in ``forward``, a scale after a conv, an offset after
    a ReLU) is a per-channel affine the engines run (tests/test_frontend.py ``_Normalizing``)."""
    from tests.test_frontend import _Normalizing

    torch.manual_seed(seed)
    calibration = torch.rand(8, 3, 6, 6) * (255 if form == "numbers" else 1)
    _refused_or_bit_exact_everywhere(seed, _Normalizing(form).eval(), (3, 6, 6), calibration, may_refuse=False)


@pytest.mark.parametrize("seed,form", [(0, "amax"), (3, "adaptive_max")])
def test_a_global_max_pool_runs_bit_exact_everywhere(seed, form):
    """``x.amax((2, 3))`` and ``F.adaptive_max_pool2d(x, 1)``: a max-pool whose window is the map."""
    from tests.test_frontend import _MapArithmetic

    torch.manual_seed(seed)
    _refused_or_bit_exact_everywhere(seed, _MapArithmetic(form).eval(), (3, 8, 8), torch.rand(8, 3, 8, 8),
                                     may_refuse=False)
