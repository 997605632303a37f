"""yosys reads the RTL as Verilator does: its elaborated netlist, simulated, equals golden bit for bit.

Slow (Verilator compiles the flat netlist for several minutes): runs only with XAIHLS_SLOW_TESTS=1.
"""

import os

import numpy as np
import pytest

from hw_tests.rtl_cases import compiled, golden_runs, shared_params
from xaihls.backends.rtl import sim
from xaihls.backends.rtl.netlist import yosys_netlist

pytestmark = pytest.mark.skipif(not os.environ.get("XAIHLS_SLOW_TESTS"), reason="slow: set XAIHLS_SLOW_TESTS=1")


def test_yosys_netlist_equals_golden(tmp_path):
    acc, x = compiled("digits", (4, 2))
    netlist = yosys_netlist(shared_params((4, 2)), tmp_path)
    runs = golden_runs(acc, x, methods=(None, "gradient"))
    out = sim.simulate(acc.plan.program, shared_params((4, 2)), runs, netlist=netlist, check=False)
    for run, r in zip(runs, out):
        assert r["status"] == 0 and np.array_equal(r["logits"], run["expect_logits"])
        if "expect_attribution" in run:
            assert np.array_equal(r["attribution"], run["expect_attribution"])
