"""Every test starts from the same global random state, whatever ran before it; and the longest
test file runs first.

A test that draws weights or inputs from torch's (or numpy's) global generator before seeding
it would otherwise see different numbers in a full run than alone, and fail in one order only
(tests/test_dag.py's depthwise chain did, on a real golden-model mismatch). Tests that need
their own numbers still seed their own generators.
"""
import os
import random

import numpy as np
import pytest
import torch

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    # pytest-xdist's workers share the cores: each takes its share of OpenMP threads (and so do the processes it
    # starts). Every worker running torch's default, a thread a core, oversubscribed them and spun in OpenMP's
    # barriers: tests/test_fidelity.py and the shufflenet tests took 117 s at -n 2 on 2 cores against 43 s so.
    THREADS = max(1, (os.cpu_count() or 1) // WORKERS)
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _same_global_random_state():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


FIRST = "hw_tests/test_sweep_tools.py"
"""The longest file (yosys and Verilator for each sweep point, about 6 minutes cold): `make test`
gives whole files to two workers in collection order, and this one last left a worker alone
for its length at the end."""


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.nodeid.split("::")[0] != FIRST)  # stable: the rest keep their order
