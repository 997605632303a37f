"""The state the backward pass keeps on chip (ReLU bits, max-pool indices) in memories of the Program's exact
size: whole words, no power of two (xaihls.plan.engine.kept). The compiler places each tensor's state end to end
from 0 and a job writes an element's bit or index at its own place, so no address reaches past the count; the
simulation top stops the run at a write that does (every RTL test runs under that check, with the count of its
Program's header)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import expected, program, runs
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.plan.engine import kept

# a padded max-pool after a ReLU6, depthwise and grouped convolutions: 1,624 ReLU bits and 400 pool indices at 4 x 4
NAME, SHAPE = "edge14", "4x4"


def _power_of_two(n: int) -> bool:
    return n & (n - 1) == 0


def test_an_engine_built_for_its_program_keeps_the_state_at_its_exact_size():
    prog = program(NAME, SHAPE)
    h, tn = prog.header, prog.shape.tn
    params = rtl_params(prog)
    assert (params.MASK_BITS, params.INDEX_ENTRIES) == (kept(h["mask_bits"], tn), kept(h["index_entries"], tn))
    assert not _power_of_two(params.MASK_BITS // 4) and not _power_of_two(params.INDEX_ENTRIES // tn)
    out = sim.simulate(prog, params, runs(NAME), seed=14)
    for want, r in zip(expected(NAME, SHAPE), out, strict=True):
        assert r["status"] == 0, f"{want['name']}: status {r['status']:#x}"
        assert np.array_equal(r["logits"], want["logits"]), want["name"]
        assert r["result"].tolist() == want["result"], want["name"]
        if want["attribution"] is not None:
            assert np.array_equal(r["attribution"], want["attribution"]), want["name"]


@pytest.mark.parametrize("field, message", [("mask_bits", "ReLU bits written at word"),
                                            ("index_entries", "pool indices written at word")])
def test_a_kept_state_write_past_the_programs_count_stops_the_simulation(tmp_path, field, message):
    """The check can fail: told the Program keeps a word less than half its state (the first image slot's pool
    indices, of two), the simulation stops at the first write past it."""
    prog = program(NAME, SHAPE)
    told = prog.header[field] // 2 - prog.shape.tn
    less = dataclasses.replace(prog, header={**prog.header, field: told})
    with pytest.raises((AssertionError, RuntimeError)):
        sim.simulate(less, rtl_params(prog), runs(NAME, (None, "saliency")), work_dir=tmp_path, seed=14)
    log = (tmp_path / "sim.log").read_text()
    assert message in log and f"of {told // 4}" in log, log[-2000:]  # words of 4 bits or 4 indices at 4 x 4
