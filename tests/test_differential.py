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
from tests.random_nets import random_net
from xaihls.errors import XaiHlsError
from xaihls.methods import METHODS

NETS = int(os.environ.get("XAIHLS_FUZZ_NETS", "24"))
FIRST_SEED = int(os.environ.get("XAIHLS_FUZZ_SEED", "0"))
TILINGS = ((4, 2), (2, 4), (8, 8), (3, 5))


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + NETS))
def test_random_net_is_refused_at_compile_or_bit_exact_everywhere(seed):
    model, shape, calibration = random_net(seed)
    tiling = TILINGS[seed % len(TILINGS)]
    try:
        acc = xaihls.compile(model, shape, calibration=calibration, tiling=tiling, ig_steps=3,
                             backends=("golden", "program", "csim"))
    except XaiHlsError as exc:
        assert "\n" not in str(exc), f"seed {seed}: a refusal must be one line: {exc}"
        return
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    for method in (None, *METHODS):
        g = acc.run(x, method)
        runs = {backend: acc.run(x, method, backend=backend) for backend in ("program", "csim")}
        for backend, r in runs.items():
            what = f"seed {seed} {model} tiling {tiling}: {backend} {method or 'predict'}"
            assert torch.equal(r.logits, g.logits), f"{what}: logits"
            assert torch.equal(r.target, g.target), f"{what}: target"
            if method:
                assert torch.equal(r.attribution, g.attribution), f"{what}: attribution"
        assert runs["program"].saturations == runs["csim"].saturations, f"seed {seed} {method}: saturation counts"
