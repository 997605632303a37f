"""Opt-in: many random nets on the Engine v2 RTL (Verilator, random AXI stalls), each refused at compile
or equal to the golden model bit for bit for predict and every method, with the interpreter's
saturation counters. One Verilator build a shape covers every net of the sweep.

Off in ``make test`` (the fixed nets of test_rtl_v2_exact.py run there); on with, for example,
``XAIHLS_RTL_FUZZ_NETS=40 XAIHLS_FUZZ_SEED=8000 pytest hw_tests/test_rtl_v2_fuzz.py``: seeds
8000 … 8039 of each kind of tests/random_nets.py (random chains, pools, edge layers, residual nets, 1-D
nets, unequal padding, DenseNet blocks, ShuffleNet units, LeakyReLU and PReLU nets, dilated convolutions, branchy nets,
average pools of several divisors, readers of two strides or sizes;
``XAIHLS_RTL_FUZZ_KINDS=conv1d,edge`` picks some) at 4 x 4 and 16 x 8. A failing net is named in the
message (kind and seed, as rtl_v2_cases names them).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import STALL_PROBABILITY, compiled, expected, program, runs
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.errors import XaiHlsError
from xaihls.plan.capabilities import program_refusal

NETS = int(os.environ.get("XAIHLS_RTL_FUZZ_NETS", "0"))
FIRST_SEED = int(os.environ.get("XAIHLS_FUZZ_SEED", "8000"))
KINDS = tuple(os.environ.get("XAIHLS_RTL_FUZZ_KINDS", "random,pools,edge,dag,conv1d,padded,dense,shuffle,leaky,"
                                                     "dilated,branchy,windowed,fork").split(","))


def _lowered(name: str, shape: str) -> bool:
    """Whether the net gets a Program at this shape; a refusal (at compile: one line) leaves it out."""
    if program_refusal(compiled(name)[0].qgraph) is not None:
        return False
    try:
        program(name, shape)
    except XaiHlsError as exc:  # the lowering's own refusals (two gradient terms too far apart)
        assert "\n" not in str(exc), exc
        return False
    return True


@pytest.mark.skipif(NETS == 0, reason="opt-in: XAIHLS_RTL_FUZZ_NETS=N runs N nets of each kind")
@pytest.mark.parametrize("shape", ["4x4", "16x8"])
def test_random_nets_on_the_rtl_are_refused_at_compile_or_bit_exact(shape):
    names = [f"{kind}{seed}" for kind in KINDS for seed in range(FIRST_SEED, FIRST_SEED + NETS)]
    taken = [n for n in names if _lowered(n, shape)]
    params = None
    for n in taken:
        p = rtl_params(program(n, shape))
        params = p if params is None else params.covering(p)
    bad = []
    for n in taken:
        out = sim.simulate(program(n, shape), params, runs(n), stalls=STALL_PROBABILITY, seed=sum(map(ord, n)))
        for want, r in zip(expected(n, shape), out):
            same = (r["status"] == 0 and np.array_equal(r["logits"], want["logits"])
                    and r["result"].tolist() == want["result"]
                    and (want["attribution"] is None or np.array_equal(r["attribution"], want["attribution"])))
            if not same:
                bad.append(f"{n} {want['name']}")
    assert not bad, f"{shape}: {len(bad)} runs differ from golden: {', '.join(bad[:10])}"
    assert taken, "every net of the sweep was refused: it tests nothing"
