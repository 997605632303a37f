"""The state the backward pass keeps on chip (ReLU bits, max-pool indices) in memories of the Program's exact
size: whole words, no power of two (xaihls.plan.engine.kept). The compiler places each tensor's state end to end
from 0 and a job writes an element's bit or index at its own place, so no address reaches past the count; the
simulation top stops the run at a write that does (every RTL test runs under that check, with the count of its
Program's header). The integrated-gradients sums too, where the planner takes their exact depth: the
accumulators of lanes 0..E-1 are then OUT_DEPTH + the input's words deep, no power of two."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import IG_STEPS, as_image, compiled, expected, program, runs
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.backends.rtl.v2.transport import SimulationTransport
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input
from xaihls.plan.engine import EngineV2, kept

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


def test_the_integrated_gradients_sums_sit_at_their_exact_depth_above_the_accumulators():
    """An engine built for its Program with the IG sums at their exact depth (``EngineV2.ig_exact``: the planner's
    choice where a power of two does not fit the board) keeps them in accumulators OUT_DEPTH + INPUT_ELEMS / E deep
    (not a power of two), and the image's last pixel, whose sum is the memory's last word, is not zero: a memory
    one word short loses that sum (a write past an array's end is dropped) and this fails."""
    name, shape = "digits", "4x4"
    prog = program(name, shape)
    params = rtl_params(prog, dataclasses.replace(EngineV2.for_program(prog, 100.0, 8.0), ig_exact=True))
    e = params.AXI_DATA_WIDTH // 16
    assert params.INPUT_ELEMS == prog.header["input_elems"] and prog.shape.tn == e  # one beat a pixel
    assert not _power_of_two(params.OUT_DEPTH + params.INPUT_ELEMS // e)
    acc, x = compiled(name)
    x = x.clone()
    x[..., -1, -1] = 0.5
    g = acc.run(x, "integrated_gradients", steps=IG_STEPS)
    want = as_image(acc.graph.as_maps(g.attribution)[0].numpy(), prog, acc.graph.input_shape[0])
    assert want[..., -1, -1].any()
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    run = {**runs(name, ("integrated_gradients",))[0], "image": x_q}
    (r,) = sim.simulate(prog, params, [run], seed=3)
    assert r["status"] == 0, f"status {r['status']:#x}"
    assert np.array_equal(r["logits"], g.logits[0].numpy())
    assert np.array_equal(r["attribution"], want)
    # the driver's transport takes such a build (a project's params.json), and refuses one a beat short
    SimulationTransport(prog.image, params)
    with pytest.raises(XaiHlsError, match="do not cover this Program's needs"):
        SimulationTransport(prog.image, dataclasses.replace(params, INPUT_ELEMS=params.INPUT_ELEMS - e))
