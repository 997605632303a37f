"""The Engine v2 planner's choice: the smallest engine within the slack of the fastest that fits.

The cycle and resource models are stand-ins here (a roofline and a linear LUT model) so that the
test states the selection rule alone; tests of the real models hold them to Verilator and yosys.
"""

from __future__ import annotations

import types
from dataclasses import replace

import pytest

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.plan.timing import JobCost
from xaihls.plan.planner_v2 import array_candidates, describe_candidates, plan_v2
from xaihls.plan.resources import ResourceModel
from xaihls.plan.resources import load as load_model


def _roofline(d, engine, direction, layers=None, image_batch=False):
    macs = max(d.m_tiles * engine.tm * d.n_tiles * engine.tn * d.passes * d.oh * d.ow, 1)
    cycles = macs // (engine.tm * engine.tn) + 2000  # a fixed cost per job: large arrays stop paying
    return JobCost(d.layer, "conv", direction, cycles, cycles, 0, macs, cycles, macs)


def _method_cycles(header, fwd, bwd, engine, steps, batched_costs=((), ()), cam_costs=()):
    f, b = sum(c.cycles for c in fwd), sum(c.cycles for c in bwd)
    return {"predict": f, **{m: f + (steps if m == "integrated_gradients" else 1) * (f + b) for m in xaihls.METHODS}}


def _run_cycles(header, engine, forward, backward, method, steps, batched=(0, 0), images=1):
    """An image batch's start: its batched lists alone."""
    return batched[0] + (batched[1] if method else 0)


TIMING = types.SimpleNamespace(job_cost=_roofline, workload=_method_cycles, run_cycles=_run_cycles,
                               network_macs=lambda d, layers, groups=1: d.passes * d.oh * d.ow,
                               cost_key=lambda d: d)  # a job's cost is of the whole job
MODEL = ResourceModel(lut=(3000.0, 100.0, 50.0, 20.0, 200.0, 0.0, 0.0, 0.0, 0.0, 0.0),
                      ff=(4000.0, 150.0, 60.0, 30.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0), dsp_extra=0,
                      source="test stand-in")


@pytest.fixture(scope="module")
def digits():
    entry = get_zoo_model("digits")
    return xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8],
                          methods=("saliency",), backends=("golden",)).qgraph


def test_the_chosen_engine_is_the_smallest_within_the_slack_of_the_fastest(digits):
    board = load_board("zcu104")
    p = plan_v2(digits, board, timing=TIMING, model=MODEL)
    fits = [c for c in p.candidates if c.fits]
    fastest = min(c.workload_cycles for c in fits)
    # the candidate of the chosen array (the plan's engine may hold the batched lists' deeper memories)
    chosen = next(c for c in p.candidates if (c.engine.tm, c.engine.tn) == (p.engine.tm, p.engine.tn))
    assert chosen.workload_cycles <= 1.1 * fastest
    smaller = [c for c in fits if c.key < chosen.key]
    assert all(c.workload_cycles > 1.1 * fastest for c in smaller)
    assert p.engine.tn % board.beat_elems == 0 and p.engine.tm % p.engine.tn == 0
    # no slack: the fastest itself
    q = plan_v2(digits, board, slack=0.0, timing=TIMING, model=MODEL)
    assert next(c for c in q.candidates if (c.engine.tm, c.engine.tn) == (q.engine.tm, q.engine.tn)).workload_cycles \
        == fastest
    assert q.resources.dsp >= p.resources.dsp
    shown = describe_candidates(p)
    assert "<- chosen" in shown and (p.next_larger is None or "next larger engine" in shown)


def test_arrays_follow_the_boards_axi_beat():
    assert all(tn % 8 == 0 and tm % tn == 0 for tm, tn in array_candidates(load_board("zcu104"), 0.8))
    assert (4, 4) in array_candidates(load_board("pynq-z2"), 0.8)


def test_a_fixed_tiling_the_beat_does_not_divide_and_a_board_too_small_are_refused(digits):
    with pytest.raises(XaiHlsError, match="Tn must be a multiple of the 8 elements"):
        plan_v2(digits, load_board("zcu104"), tiling=(8, 4), timing=TIMING, model=MODEL)
    huge = ResourceModel(lut=(1e7, 0, 0, 0, 0, 0, 0, 0, 0, 0), ff=(0,) * 10, dsp_extra=0)
    with pytest.raises(XaiHlsError, match=r"board 'pynq-z2': no engine fits under the 80% cap; "
                                          r"the engine nearest to fitting \(Tm=4, Tn=4\)"):
        plan_v2(digits, load_board("pynq-z2"), timing=TIMING, model=huge)



def test_without_integrated_gradients_the_batch_is_sized_for_image_batches():
    """A saliency-only net gets batched lists for image batches: the smallest batch whose cycles an
    image (predict + saliency, image-batch starts) are within BATCH_SLACK of the best batch's, and
    the plan reports each run's image-batch start."""
    from xaihls.plan.planner_v2 import BATCH_SLACK, describe

    entry = get_zoo_model("cifar_ref")
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                        methods=("saliency",), backends=("golden",)).qgraph
    p = plan_v2(qg, load_board("pynq-z2"))
    n = p.program.batch
    best = min(p.batch_cycles.values())
    assert n > 1 and p.batch_cycles[n] <= (1 + BATCH_SLACK) * best
    assert all(c > (1 + BATCH_SLACK) * best for b, c in p.batch_cycles.items() if b < n)
    assert set(p.image_batch_cycles) == {"predict", "saliency"}
    assert p.batch_cycles[n] == round(sum(p.image_batch_cycles.values()) / n)
    assert p.image_batch_cycles["saliency"] < n * p.method_cycles["saliency"]
    assert f"cycles an image in image batches of {n}" in describe(p)
    # the 16 x 8 plan reads cifar_ref's image folded 1 x 2 (docs/engine_v2.md, "The folded image")
    assert (p.engine.tn, p.summary()["image_fold"]) == (8, [1, 2])
    assert "image folded 1 x 2: the host writes each pixel's neighbours after its 3 channels, so the first " \
           "convolution's 3 x 3 taps take 6 passes" in describe(p)


def test_integrated_gradients_sums_are_built_only_for_a_program_that_runs_them(monkeypatch):
    """The IG sums (48-bit words of the blocked input above the accumulators of lanes 0..E-1) are the
    engine's largest memory on a large image: a net on 3 x 96 x 96 compiled without integrated
    gradients gets none, and the PYNQ-Z2 takes a 16 x 4 array for it; with them, the sums take 120 BRAM_18K
    at their exact depth (192 a power of two deep, which fits no array faster than 4 x 4), and an 8 x 4 array
    fits (its blocked input pads 3 channels to 4, not 8). (The image as itself; as its first stride's 4
    phases, 12 channels of 48 x 48 at Tn = 8: the sums take 120 BRAM_18K, and a 16 x 8 array fits with them.)"""
    import torch
    import torch.nn as nn

    from xaihls.plan import capabilities
    from xaihls.plan.engine import ig_elems
    from xaihls.plan.resources import memories

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2)).eval()
    calibration = torch.rand(4, 3, 96, 96)
    plans = {}
    monkeypatch.setattr(capabilities, "IMAGE_PHASES", False)
    for methods in (("saliency",), ("saliency", "integrated_gradients")):
        acc = xaihls.compile(model, (3, 96, 96), calibration=calibration, methods=methods, ig_steps=3,
                             backends=("golden", "program"))
        plans[methods[-1]] = p = acc.plan
        assert p.engine.input_elems == ig_elems(p.program.header, methods)
        assert p.resources.bram_18k <= 0.8 * p.board.resources.bram_18k
    lanes = {m.name: m for m in memories(plans["saliency"].engine.as_built())}
    assert plans["saliency"].engine.input_elems == 0
    assert lanes["accumulators, lanes 0..E-1"].depth == lanes["accumulators, other lanes"].depth
    ig = plans["integrated_gradients"]
    assert ig.engine.input_elems == 96 * 96 * ig.engine.tn > 0
    assert ig.resources.breakdown["BRAM_18K by memory"]["accumulators, lanes 0..E-1"] == 120
    assert (plans["saliency"].engine.tm, plans["saliency"].engine.tn, ig.engine.tm, ig.engine.tn) == (16, 4, 8, 4)
    # the exact depth because a power of two does not fit: 192 BRAM_18K of the sums then
    assert ig.engine.ig_exact and not plans["saliency"].engine.ig_exact
    rounded = load_model().estimate(replace(ig.engine, ig_exact=False))
    assert rounded.breakdown["BRAM_18K by memory"]["accumulators, lanes 0..E-1"] == 192
    assert rounded.bram_18k > 0.8 * ig.board.resources.bram_18k
    from xaihls.plan.planner_v2 import describe

    assert ("integrated gradients: the engine keeps the sums of the 36,864-element blocked input on chip, 120 of its "
            in describe(ig)) and "compiled without integrated_gradients it keeps none" in describe(ig)
    assert "at their exact depth: a power of two deep, this engine would not fit the board" in describe(ig)
    monkeypatch.setattr(capabilities, "IMAGE_PHASES", True)
    phases = xaihls.compile(model, (3, 96, 96), calibration=calibration, methods=methods, ig_steps=3,
                            backends=("golden",)).plan
    # 12 channels in two words of 8
    assert phases.program.header["in_c"] == 12 and phases.engine.input_elems == 16 * 48 * 48
    assert phases.resources.breakdown["BRAM_18K by memory"]["accumulators, lanes 0..E-1"] == 120
    assert (phases.engine.tm, phases.engine.tn) == (16, 8)
    assert "the engine keeps the sums" not in describe(plans["saliency"])
    # the RTL built for the Program keeps none; one built from its DDR image alone (whose header does not
    # say which methods it runs) keeps them, with the room up to the power of two the accumulators below reach
    from xaihls.backends.rtl.v2.params import rtl_params
    from xaihls.backends.rtl.v2.project import decode_image

    program = plans["saliency"].program
    assert rtl_params(program).INPUT_ELEMS == 0
    image = rtl_params(decode_image(program.image))
    words = image.OUT_DEPTH + image.INPUT_ELEMS // image.beat_elems
    assert image.INPUT_ELEMS >= program.header["input_elems"] > 0 and words & (words - 1) == 0
    # the project of the plan that needs the exact depth is built with it: the sums' words and no more
    exact = rtl_params(ig.program, ig.engine)
    assert exact.INPUT_ELEMS == ig.program.header["input_elems"]
    # a larger image fits no engine either way: the refusal names the nearer build's needs, the exact depth's
    # (228 BRAM_18K of sums at 4 x 4, where a power of two would take 384)
    with pytest.raises(XaiHlsError, match="228 for the integrated-gradients sums"):
        xaihls.compile(model, (3, 160, 160), calibration=torch.rand(2, 3, 160, 160), methods=methods, ig_steps=3,
                       backends=("golden", "program"))


def test_a_board_short_of_block_ram_for_the_backward_state_is_told_what_holds_it():
    """An engine over the board's block RAM mostly for the state the backward pass keeps on chip (the IG sums, the
    ReLU bits, the max-pool indices, all sized by the network and its input) is refused with those memories named
    and what shrinks them."""
    entry = get_zoo_model("digits")
    board = load_board("pynq-z2")
    short = replace(board, resources=replace(board.resources, bram_18k=12))
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                        methods=("saliency", "integrated_gradients"), backends=("golden",)).qgraph
    with pytest.raises(XaiHlsError) as e:
        plan_v2(qg, short)
    msg = str(e.value)
    assert "hold what the backward pass keeps on chip for the whole network: 8 for the integrated-gradients sums" in msg
    assert "1 for the ReLU bits" in msg and "\n" not in msg
    assert "max-pool indices" not in msg  # at their exact depth the pool indices sit in LUT RAM
    assert plan_v2(qg, replace(board, resources=replace(board.resources, bram_18k=20))).resources.bram_18k <= 16
