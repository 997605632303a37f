"""Every test starts from the same global random state, whatever ran before it.

A test that draws weights or inputs from torch's (or numpy's) global generator before seeding
it would otherwise see different numbers in a full run than alone, and fail in one order only
(tests/test_dag.py's depthwise chain did, on a real golden-model mismatch). Tests that need
their own numbers still seed their own generators.
"""
import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _same_global_random_state():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
