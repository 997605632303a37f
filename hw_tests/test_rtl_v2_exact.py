"""Engine v2 RTL (Verilator, SystemVerilog DDR model) equals the golden model bit for bit for predict
and every method (Grad-CAM and guided Grad-CAM on the residual nets), and its three saturation counters
equal the interpreter's, with and without AXI stalls."""

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import (BRANCHY_NETS, CAM_NETS, CAMS, DAG_NETS, DILATED_NETS, EDGE_NETS, LEAKY_NETS,
                                   LONG_POOL_NETS, NARROW_NETS, NETS, ONE_D_NETS, PADDED_NETS,
                                   RAW_AUDIO_NETS, STALL_PROBABILITY, STEM_NETS,
                                   FORK_NETS, GATHERED_CAM_NETS, ONE_D_CAM_NETS, STAGED_CAM_NETS, WINDOWED_NETS,
                                   compiled, expected, program, simulated)
from xaihls.plan.capabilities import upsampling
from xaihls.plan.contract import Flag, Op


def _check(name, shape, stalls, memory="sv"):
    out = simulated(name, shape, stalls, memory=memory)
    for want, r in zip(expected(name, shape), out):
        what = f"{name} {shape} {want['name']} stalls={stalls}"
        assert r["status"] == 0, f"{what}: status {r['status']:#x}"
        assert np.array_equal(r["logits"], want["logits"]), f"{what}: logits"
        assert r["result"].tolist() == want["result"], f"{what}: result record {r['result'].tolist()}"
        assert int(r["result"][1]) == want["target"], what
        if want["attribution"] is not None:
            assert r["attribution"].shape == want["attribution"].shape, f"{what}: {r['attribution'].shape}"
            bad = int((r["attribution"] != want["attribution"]).sum())
            assert bad == 0, f"{what}: attribution differs in {bad} of {want['attribution'].size} elements"


@pytest.mark.parametrize("shape", ["4x4", "16x8", "16x8_128bit"])
@pytest.mark.parametrize("name", NETS)
def test_rtl_v2_equals_golden_for_predict_and_every_method(name, shape):
    _check(name, shape, 0.0)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", EDGE_NETS)
def test_rtl_v2_equals_golden_on_edge_layers(name, shape):
    """ReLU6 forward and backward, padded max-pools, depthwise and grouped convs, BatchNorm as an affine."""
    _check(name, shape, 0.0)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", DAG_NETS)
def test_rtl_v2_equals_golden_on_residual_nets(name, shape):
    """Residual adds and the gradient sums of tensors read by two layers: two-source jobs, each source's
    operands shifted to one fraction (docs/engine_v2.md, "Residual adds and gradient sums")."""
    _check(name, shape, 0.0)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", ONE_D_NETS)
def test_rtl_v2_equals_golden_on_1d_nets(name, shape):
    """1-D models (Conv1d, 1-D pools, BatchNorm1d), their maps as columns and as one row, with and without
    AXI stalls; a global pool over a length with no exact split summed on a ragged grid."""
    _check(name, shape, 0.0)
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", PADDED_NETS)
def test_rtl_v2_equals_golden_with_unequal_padding(name, shape):
    """Zero pads folded into convolutions, more zeros below and right than above and left or fewer: the
    walker reads zeros wherever the windows reach past the map."""
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", LEAKY_NETS)
def test_rtl_v2_equals_golden_on_leaky_relu_and_prelu(name, shape):
    """LeakyReLU and PReLU as layers the engines have (the slope folded into the layer before, a per-channel
    affine with a ReLU, an Add; the scaled map's gradient a sum of two), with and without AXI stalls."""
    _check(name, shape, 0.0)
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", DILATED_NETS)
def test_rtl_v2_equals_golden_on_dilated_convolutions(name, shape):
    """Dilated convolutions as their spreads, the jobs' passes a tap step of 2 or 3 apart (forward, and
    backward at stride 1), with and without AXI stalls."""
    _check(name, shape, 0.0)
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", BRANCHY_NETS)
def test_rtl_v2_equals_golden_on_tensors_read_by_many_layers(name, shape):
    """Inception-style blocks, a rectifier beside an Add, x + x, a strided reader beside a stride-1 3 x 3
    one: the readers the two-source sums cannot take read exact copies (dag.with_copies)."""
    _check(name, shape, 0.0)
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", WINDOWED_NETS)
def test_rtl_v2_equals_golden_on_average_pools_of_several_divisors(name, shape):
    """Average pools that count no padding or overhang the map: a job a rectangle of one reciprocal forward,
    a job a rectangle of input pixels (per-pass reciprocals) in each stride phase backward, each writing its
    part of the tensor and of the ReLU bits, with and without AXI stalls."""
    _check(name, shape, 0.0)
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", FORK_NETS)
def test_rtl_v2_equals_golden_on_readers_of_two_strides_or_sizes(name, shape):
    """Maps read by the main path and an exit of another stride or output size (a global pool, a strided or
    valid conv): one reader or both on exact copies, mixed sums of a strided reader and a pointwise one, with
    and without AXI stalls."""
    _check(name, shape, 0.0)
    _check(name, shape, STALL_PROBABILITY)


@pytest.mark.parametrize("name", LONG_POOL_NETS)
def test_rtl_v2_equals_golden_on_a_global_pool_over_a_long_map(name):
    """A 1-D map of 300 or 1000 samples, as a column, summed as rows of a divisor of it (the summed job's
    view)."""
    _check(name, "16x8", STALL_PROBABILITY)


@pytest.mark.parametrize("name", RAW_AUDIO_NETS)
def test_rtl_v2_equals_golden_on_a_1d_image_longer_than_a_jobs_map(name):
    """8,000 and 4,800 samples as the phases of the first convolution's stride (capabilities.image_phases), the
    phases as channels: the first convolution a stride-1 one on a column, its backward one such job writing
    every phase, with AXI stalls."""
    prog = program(name, "16x8")
    first = prog.forward[0]
    c, length = compiled(name)[0].graph.sample_shape
    h = prog.header
    assert (h["in_c"] * h["in_h"], h["in_w"], first.iw, first.isy) == (c * length, 1, 1, 1) and h["in_c"] > c
    assert [(d.oh, d.osy) for d in prog.backward if d.layer == 0] == [(h["in_h"], 1)]
    _check(name, "16x8", STALL_PROBABILITY)


@pytest.mark.parametrize("name", STEM_NETS)
def test_rtl_v2_equals_golden_on_a_2d_image_as_its_first_strides_phases(name):
    """A 2-D image read at stride (s, s) as the stride's s² phases as channels (capabilities.image_phases): the
    first convolution a stride-1 one on them, its backward one job writing every phase (and one an edge of the view
    past the image where s does not divide a side, lowering.phase_edges), with AXI stalls; stem1 and stem5 with the
    Grad-CAM methods too (PHASE_CAM_NETS: the map upsampled on the view)."""
    from xaihls.plan.lowering import phase_edges

    prog = program(name, "16x8")
    c, h, w = compiled(name)[0].graph.input_shape
    s = compiled(name)[0].graph.layers[0].stride[0]
    view = (c * s * s, -(-h // s), -(-w // s))
    assert (prog.header["in_c"], prog.header["in_h"], prog.header["in_w"]) == view
    assert prog.forward[0].isy == 1
    assert sum(d.layer == 0 for d in prog.backward) == len(phase_edges((c, h, w), view, (s, s)))
    _check(name, "16x8", STALL_PROBABILITY)


@pytest.mark.parametrize("shape", sorted(NARROW_NETS))
def test_rtl_v2_equals_golden_where_the_walker_must_wait_between_passes(shape):
    """Pools whose passes keep their weights, on a grid of Tn columns and two rows with a row off the
    map: a pass that skips the row re-reads a position ow + rows - 1 < Tn + 2 cycles after the pass
    before it did, so the walker waits a cycle between them (docs/engine_v2.md, "Chained passes").
    The case is made to hold that shape: the cycle model's bound says the passes must not chain."""
    from xaihls.plan.engine import EngineV2
    from xaihls.plan.timing import _Walks

    name = NARROW_NETS[shape]
    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=8.0)
    unchained = [d for d in (*prog.forward, *prog.backward) if d.op != Op.SEED and d.w_once
                 and not _Walks(d, engine, 0, d.tile_rows, 0).chains]
    assert len(unchained) >= 3, f"{name}: {len(unchained)} pool jobs the walker must not chain"
    _check(name, shape, 0.0)


@pytest.mark.parametrize("name,shape", [("digits_mobilenet", "16x8"), ("edge45", "16x8"), ("edge14", "16x8"),
                                        ("digits_mobilenet", "32x8"), ("edge45", "32x8")])
def test_depthwise_convolutions_run_lane_groups_at_consecutive_columns(name, shape):
    """LANES jobs (docs/engine_v2.md, "Depthwise convolutions") forward and backward in the depthwise
    nets' Programs: at 16 x 8 two lane groups (the exactness tests above run these Programs; and
    digits_mobilenet's stride-2 conv forward, edge14's on a 5-column map: a ragged last group), at 32 x 8 four,
    run here."""
    prog = program(name, shape)
    assert any(d.has(Flag.LANES) for d in prog.forward) and any(d.has(Flag.LANES) for d in prog.backward)
    if shape == "32x8":
        _check(name, shape, 0.0)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", STAGED_CAM_NETS)
def test_rtl_v2_equals_golden_upsampling_grad_cam_maps_in_stages(name, shape):
    """Maps 1/16 of the input, upsampled in stages of prime factors through one-channel maps of their
    own (capabilities.upsampling_stages): every method, Grad-CAM's two included."""
    _check(name, shape, 0.0)


@pytest.mark.parametrize("name,shape", [(n, s) for n in GATHERED_CAM_NETS + ONE_D_CAM_NETS for s in ("4x4", "16x8")])
def test_rtl_v2_equals_golden_gathering_grad_cam_maps_in_phases(name, shape):
    """Maps whose PyTorch nearest table is no integer factor (3 rows to 28, 9 to 20, 12 columns to 6,
    7 to 17), gathered by phase jobs of input stride Q and output stride P (capabilities.upsampling),
    or past the strides' 15 as maps of their own rows (a 1-D map's columns as rows of one pixel, 11 to
    187): every method, Grad-CAM's two included."""
    _check(name, shape, 0.0)


@pytest.mark.parametrize("shape", ["4x4", "16x8"])
@pytest.mark.parametrize("name", CAM_NETS)
def test_grad_cam_cases_have_what_they_claim(name, shape):
    """The residual nets' Grad-CAM runs test something: a Grad-CAM list after a proper prefix of the
    backward list, whose first job (a SEED) the prefix includes; maps and guided products of more than
    two values; dag20's map upsampled (its layer's map is smaller than the input) over 3 channels."""
    prog = program(name, shape)
    h = prog.header
    assert prog.cam and 0 < h["n_backward_cam"] < len(prog.backward) and prog.backward[0].op == Op.SEED
    for want in expected(name, shape):
        if want["name"] in CAMS:
            assert (want["attribution"] != 0).any() and len(np.unique(want["attribution"])) > 2, want["name"]
    if name == "dag20":
        qg = compiled(name)[0].qgraph
        _, map_h, map_w = qg.graph.layers[qg.graph.tensor_index(qg.cam_layer) - 1].out_shape
        assert h["in_c"] == 3 and (map_h, map_w) < (h["in_h"], h["in_w"])
    if name in STAGED_CAM_NETS:  # stages (one-channel maps, then the attribution), a job a phase
        stages = upsampling(compiled(name)[0].qgraph)
        phases = [d for d in prog.cam if d.osy * d.osx > 1]
        assert len(stages) > 1 and len(phases) == sum(fy.period * fx.period for fy, fx in stages), stages
        assert len({d.out_addr for d in phases}) == len(stages)
    if name in GATHERED_CAM_NETS:  # the list ends with the stages' phase jobs, one a phase with pixels to write
        stages = upsampling(compiled(name)[0].qgraph)
        want = [(fy.step, fx.step, fy.starts[a], fx.starts[b], fy.period, fx.period, a, b) for fy, fx in stages
                for a in range(fy.period) for b in range(fx.period) if fy.count(a) and fx.count(b)]
        tail = prog.cam[-len(want):]
        assert all(d.ky == d.kx == 1 for d in tail)
        got = [(d.isy, d.isx, d.iy0, d.ix0, d.osy, d.osx, d.oyo, d.oxo) for d in tail]
        if name.startswith("longmap"):  # the rows stretched by 17/7: phase a's 2 or 3 rows 17 rows apart, read 7 apart
            rows = [d for d in tail if d.out_row_bytes != d.opw * 2 * prog.header["tn"]]
            assert len(rows) == 17 and all(d.osy == d.isy == 1 for d in rows), got
            assert {d.out_row_bytes // (d.opw * 2 * prog.header["tn"]) for d in rows} == {17}
            assert {d.in_row_bytes // (d.iw * 2 * prog.header["tn"]) for d in rows} == {7}
        else:
            assert got == want and len({d.out_addr for d in tail}) == len(stages)
            assert any(d.isy > 1 or d.isx > 1 for d in tail)


@pytest.mark.parametrize("name,shape", [("digits", "4x4"), ("digits_gap", "16x8_128bit"), ("random305", "16x8"),
                                        ("pools8", "4x4"), ("edge14", "4x4"), ("digits_resnet", "4x4"),
                                        ("digits_mobilenet", "16x8")])
def test_rtl_v2_equals_golden_under_random_axi_stalls(name, shape):
    _check(name, shape, STALL_PROBABILITY)
    calm, stalled = simulated(name, shape, 0.0), simulated(name, shape, STALL_PROBABILITY)
    assert all(s["cycles"] > c["cycles"] for s, c in zip(stalled, calm))


def test_rtl_v2_equals_golden_on_cocotbext_axi_with_stalls():
    """The protocol-test mode: a bare xaihls_top against cocotbext-axi's AxiRam, random pauses on
    every channel of both buses (every beat through Python: one small net)."""
    _check("digits", "4x4", STALL_PROBABILITY, memory="axiram")
