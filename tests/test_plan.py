"""The plan: the Program executes bit-exactly, the planner respects boards (the cycle model is held
to Verilator in hw_tests/test_rtl_v2_cycles.py, the resource model to yosys in tests/test_resources.py)."""

import pytest
import torch

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input, saturation_kinds
from xaihls.frontend.ir import MaxPool2d
from xaihls.methods import METHOD_CODES, METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import timing
from xaihls.plan.boards import list_boards, load_board
from xaihls.plan.contract import Flag, Op
from xaihls.plan.lowering import (buffer_needs, lower_jobs, packed_job, packing, tile_job, tiled, with_kept_input,
                                  with_mask_bias)
from xaihls.plan.planner_v2 import _row_tile_cost, describe
from xaihls.plan.planner_v2 import plan_v2 as plan
from xaihls.sim.interpreter import run_batch


def compiled(name, tiling=None, methods=tuple(METHODS)):
    entry = get_zoo_model(name)
    calib = entry.calibration()[:16]
    return xaihls.compile(entry.build(), entry.input_shape, calibration=calib, methods=methods, tiling=tiling), entry


@pytest.mark.parametrize("name,tiling", [
    ("digits", None), ("digits", (4, 4)),
    ("digits_strided_bn", (8, 4)), ("digits_strided_bn", (16, 8)),
    ("digits_gap", (4, 4)), ("cifar_ref", (8, 8)),
])
def test_program_equals_golden_bit_for_bit(name, tiling):
    acc, entry = compiled(name, tiling)
    x = entry.samples()[0][:2 if name != "cifar_ref" else 1]
    g, p = acc.run(x), acc.run(x, backend="program")
    assert torch.equal(g.logits, p.logits) and torch.equal(g.target, p.target)
    for method in METHODS:
        g = acc.run(x, method, steps=3)
        p = acc.run(x, method, steps=3, backend="program")
        assert torch.equal(g.attribution, p.attribution), f"{name} {tiling} {method}"
    # a given target, a given baseline and another Riemann rule go through the same path
    base = torch.full_like(x, 0.25)
    g = acc.run(x, "integrated_gradients", target=1, steps=4, baseline=base, rule="middle")
    p = acc.run(x, "integrated_gradients", target=1, steps=4, baseline=base, rule="middle", backend="program")
    assert torch.equal(g.attribution, p.attribution) and (p.target == 1).all()
    # the engine counts the values it saturates: golden's per-tensor counts, except the conv outputs
    # a fused max-pool leaves out (they never reach memory)
    fused_pool = any(isinstance(layer, MaxPool2d) for layer in acc.graph.layers)
    golden_kinds = saturation_kinds(g.saturations)
    for kind in set(golden_kinds) | set(p.saturations):
        if fused_pool and kind == "forward":
            assert p.saturations.get(kind, 0) <= golden_kinds.get(kind, 0)
        else:
            assert p.saturations.get(kind, 0) == golden_kinds.get(kind, 0), kind


@pytest.fixture(scope="module")
def reference_plans():
    acc, _ = compiled("cifar_ref", methods=("saliency", "integrated_gradients"))
    return acc, {b.name: plan(acc.qgraph, b, clock_mhz=100) for b in list_boards()}


def test_every_board_plan_fits_under_the_cap_and_reports_utilisation(reference_plans):
    acc, plans = reference_plans
    assert len(plans) >= 7
    for name, p in plans.items():
        have = p.board.resources.as_dict()
        for key, used in p.resources.as_dict().items():
            assert used <= 0.8 * have[key] or have[key] == 0 and used == 0, (name, key)
        text = describe(p)
        assert "MAC util" in text and "bound" in text and "resources (model fitted on yosys / board)" in text
        assert "<- chosen" in text


def test_larger_boards_are_never_slower_beyond_the_slack(reference_plans):
    """A board with more of everything, the same AXI width and at least the DDR rate has every
    engine the smaller one has: its fastest is no slower, and its choice within the slack of it."""
    _, plans = reference_plans

    def dominates(big, small):
        rb, rs = big.board.resources, small.board.resources
        return (all(getattr(rb, k) >= getattr(rs, k) for k in ("lut", "ff", "dsp", "bram_18k", "uram"))
                and big.engine.bytes_per_cycle >= small.engine.bytes_per_cycle
                and big.board.beat_elems == small.board.beat_elems)

    pairs = 0
    for a in plans.values():
        for b in plans.values():
            if a is not b and dominates(b, a):
                pairs += 1
                workload = lambda p: sum(p.method_cycles[m] for m in ("predict", "saliency", "integrated_gradients"))  # noqa
                assert workload(b) <= (1 + b.slack) * workload(a), (b.board.name, a.board.name)
    assert pairs >= 3


def test_kept_state_is_much_smaller_than_16_bit_activations(reference_plans):
    _, plans = reference_plans
    kept = plans["pynq-z2"].kept
    assert kept.relu_bits == 16 * 32 * 32 * 2 + 32 * 16 * 16 * 2 + 64 * 8 * 8 + 64
    assert kept.ratio >= 8


def test_planner_is_deterministic(reference_plans):
    acc, plans = reference_plans
    again = plan(acc.qgraph, load_board("pynq-z2"), clock_mhz=100)
    assert again.engine == plans["pynq-z2"].engine and again.program.image == plans["pynq-z2"].program.image


def test_unknown_and_infeasible_boards_are_clear_errors(tmp_path):
    with pytest.raises(XaiHlsError, match="unknown board 'vu13p'"):
        xaihls.compile(get_zoo_model("digits").build(), (1, 16, 16), board="vu13p",
                       calibration=torch.rand(2, 1, 16, 16))
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        "name: tiny\ndescription: too small\npart: xc7s6cpga196-1\nfamily: artix7\nyosys_family: xc7\n"
        "clock_mhz: 100\nresources: {LUT: 3000, FF: 4000, DSP: 4, BRAM_18K: 10, URAM: 0}\n"
        "ddr_bandwidth_gbps: 1.0\nsource: test\n"
    )
    acc, _ = compiled("digits", methods=("gradient",))
    with pytest.raises(XaiHlsError) as e:
        plan(acc.qgraph, load_board(tiny))
    msg = str(e.value)
    assert "board 'tiny': no engine fits under the 80% cap; the smallest engine" in msg
    assert "needs" in msg and "the board has 4 DSP, 10 BRAM_18K, 3000 LUT" in msg and "\n" not in msg


def test_program_equals_golden_on_many_integrated_gradient_steps():
    """32 steps over ten images reach path points where a fully connected pre-activation is
    positive in the accumulator but rounds to zero: the ReLU bit must come from the accumulator
    in every executor (a regression: golden once took it from the rounded value)."""
    acc, entry = compiled("digits", methods=("integrated_gradients",))
    x = entry.samples()[0]
    g = acc.run(x, "integrated_gradients", steps=32)
    p = acc.run(x, "integrated_gradients", steps=32, backend="program")
    assert torch.equal(g.attribution, p.attribution)


def test_row_tiles_are_as_tall_as_the_cycle_model_finds_fastest():
    """Without a cost a job's row tiles are as tall as the buffers hold; with the cycle model the
    planner picks the height of the fewest modelled cycles (the tallest among equals), and the
    Program it tiles that way is still bit-exact with golden."""
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                         methods=("saliency",), backends=("golden",))
    p = plan(acc.qgraph, load_board("pynq-z2"))
    lowered = lower_jobs(acc.qgraph, p.program.shape, batch=p.program.batch)
    buffers = p.program.buffers
    cost = lambda d: timing.job_cost(d, p.engine, "x").cycles  # noqa: E731
    in_words = buffer_needs(p.program.all_jobs, p.program.shape.tm, p.program.shape.tn)[0]
    # the weights no job reads left out of the DDR (conv1's plain backward taps): every address past them moved
    pack = packing(lowered, sum(tiled(lowered, buffers, _row_tile_cost(timing, p.engine))[:2], ()))
    assert pack.spans
    changed = 0
    for d, planned in zip(lowered.forward + lowered.backward, p.program.forward + p.program.backward):
        if planned.has(Flag.LANES):  # the tiler kept the job's LANES twin (conv1's backward)
            d, = lowered.twins[d]
        tallest = tile_job(d, p.program.shape, buffers)
        # the addresses packed, the bias and the kept input: at encode
        tiled_d = packed_job(tile_job(d, p.program.shape, buffers, cost), pack)
        assert with_kept_input(with_mask_bias(tiled_d), in_words) == planned
        if d.op == Op.CONV:
            assert planned.tile_rows <= tallest.tile_rows and cost(planned) <= cost(tallest)
            changed += planned.tile_rows < tallest.tile_rows
    assert changed >= 3  # the CIFAR net's first and last row tiles pay for shorter tiles here
    x = entry.calibration()[:1]
    g = acc.run(x, "saliency")
    x_q = quantize_input(acc.qgraph, x)[0]
    logits, _, attr, _ = run_batch(p.program, x_q, METHOD_CODES["saliency"], None, 2, "trapezoid", None)
    assert torch.equal(logits, g.logits) and torch.equal(attr, g.attribution)


def test_two_source_alignment_meets_at_one_fraction_or_refuses_naming_the_tensor():
    """lowering._align: every term of a two-source job reaches one fraction per mode through an
    identity's power-of-two weight (the same in every mode) and operand shifts of at most
    MAX_X_SHIFT; terms too far apart are refused in one line."""
    from xaihls.plan.contract import MAX_X_SHIFT
    from xaihls.plan.lowering import WEIGHT_SHIFT, _align

    cases = [([[10] * 3, [12] * 3], [True, True]),  # an Add's operands
             ([[26, 25, 27], [12, 12, 11]], [False, True]),  # a conv's transposed product and an identity
             ([[20, 22, 21], [23, 20, 21]], [False, False]),  # two convs: shifts only
             ([[3, 3, 3], [9, 9, 9]], [False, True])]  # the identity finer than the conv: the conv shifts
    for bases, identity in cases:
        e, xs, frac = _align(bases, identity, "tensor 't'")
        for s in range(2):
            assert 0 <= e[s] <= (WEIGHT_SHIFT if identity[s] else 0)
            for m in range(3):
                assert 0 <= xs[s][m] <= MAX_X_SHIFT and bases[s][m] + e[s] + xs[s][m] == frac[m], (bases, e, xs)
    with pytest.raises(XaiHlsError, match=r"^the gradient at tensor 't': the two terms' fractions differ by 40 bits"):
        _align([[50] * 3, [10] * 3], [False, True], "the gradient at tensor 't'")


def test_a_twin_is_weighed_against_its_job_with_the_input_encode_keeps():
    """mobilenet_v2_tiny's 24-channel Add on 8 x 8 at the pynq-z2 plan (16 x 8): its dense job has one
    row tile and keeps its operands across its two m-tiles, which makes it cheaper than its three
    block jobs ("Adds a block at a time"); weighed without the kept input it would not be, so the
    tiler must weigh both as encode runs them, and the planned Program keeps the one dense job."""
    entry = get_zoo_model("mobilenet_v2_tiny")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                         methods=("saliency",), backends=("golden",))
    p = plan(acc.qgraph, load_board("pynq-z2"))
    layers = acc.qgraph.graph.layers
    [k] = [k for k, layer in enumerate(layers) if layer.name == "add_1"]
    [planned] = [d for d in p.program.forward if d.layer == k]
    assert planned.m_tiles == 2 and planned.in_keep
    lowered = lower_jobs(acc.qgraph, p.program.shape, batch=p.program.batch)
    [dense] = [d for d in lowered.forward if d.layer == k]
    blocks = lowered.twins[dense]
    assert len(blocks) == 3
    cost = lambda d: timing.job_cost(d, p.engine, "x").cycles  # noqa: E731
    buffers = p.program.buffers
    tiled = tile_job(dense, p.program.shape, buffers, cost)
    by_block = sum(cost(tile_job(d, p.program.shape, buffers, cost)) for d in blocks)
    in_words = buffer_needs(p.program.all_jobs, p.program.shape.tm, p.program.shape.tn)[0]
    assert cost(with_kept_input(tiled, in_words)) < by_block < cost(tiled)
