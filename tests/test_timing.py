"""The cycle model's figures that are not cycles: a job's useful MACs and what bounds it
(hw_tests/test_rtl_v2_cycles.py holds the cycles to Verilator)."""

import math

import pytest
import torch
import torch.nn as nn

import xaihls
from xaihls.plan.contract import Op
from xaihls.plan.engine import EngineV2
from xaihls.plan.lowering import Buffers, Shape, lower
from xaihls.plan.timing import job_cost


def test_a_jobs_macs_are_the_networks_multiply_accumulates_inside_the_map():
    """conv 3 -> 6 channels, 3x3, padding 1, on 8x8, on an 8 x 4 array: the array computes one
    4 x 8 tile pair a position and tap, the network only 3 x 6 of it; a tap on the padding is no
    MAC; the backward jobs (stride phases included) count the same MACs as the forward ones; a
    max-pool's jobs count none."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, stride=2),
                        nn.Flatten(), nn.Linear(8 * 1 * 1, 10)).eval()
    acc = xaihls.compile(net, (3, 8, 8), calibration=torch.rand(8, 3, 8, 8), methods=("gradient",),
                         backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024))
    engine = EngineV2.for_program(program, clock_mhz=100.0, bytes_per_cycle=8.0)
    layers = acc.qgraph.graph.layers
    conv = next(d for d in program.forward if d.op == Op.CONV and d.ky == 3)
    c = job_cost(conv, engine, "forward", layers=layers)
    assert c.macs == 3 * 6 * (8 * 3 - 2) ** 2 and c.array_macs == 8 * 4 * (8 * 3 - 2) ** 2
    assert c.bound_cycles >= math.ceil(c.array_macs / (8 * 4))
    assert c.utilization(8, 4) == c.macs / 32 / c.cycles
    assert job_cost(conv, engine, "forward").macs is None
    with pytest.raises(ValueError, match="layers"):
        job_cost(conv, engine, "forward").utilization(8, 4)
    torch_macs = 3 * 6 * (8 * 3 - 2) ** 2 + 6 * 8 * 9 + 8 * 10  # the second conv: one output pixel, 9 taps
    fwd = [job_cost(d, engine, "forward", layers=layers) for d in program.forward]
    bwd = [job_cost(d, engine, "backward", layers=layers) for d in program.backward]
    assert sum(c.macs for c in fwd) == torch_macs == sum(c.macs for c in bwd)
    pool = next(i for i, layer in enumerate(layers) if type(layer).__name__ == "MaxPool2d")
    assert all(c.macs == 0 for c in fwd + bwd if c.layer == pool)
    for cost in fwd + bwd:  # no job does more than the array can in its cycles
        assert cost.utilization(8, 4) <= 1.0


def test_a_gradient_sums_jobs_count_every_readers_macs():
    """A tensor read by a 3x3 stride-2 conv and by a 1x1 stride-2 projection: each stride phase of
    its gradient sum computes both readers' taps of the phase, so the backward jobs count exactly
    the forward MACs (counting the first reader's alone left the projection's out)."""
    from xaihls.models.zoo import get_zoo_model

    entry = get_zoo_model("digits_resnet")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                         methods=("gradient",), backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024))
    engine = EngineV2.for_program(program, clock_mhz=100.0, bytes_per_cycle=8.0)
    layers = acc.qgraph.graph.layers
    sums = [d for d in program.backward if d.src_b]
    projection = next(lay for lay in layers if type(lay).__name__ == "Conv2d" and lay.kernel == (1, 1))
    assert sums and projection.stride == (2, 2)
    fwd = sum(job_cost(d, engine, "forward", layers=layers).macs for d in program.forward)
    bwd = sum(job_cost(d, engine, "backward", layers=layers).macs for d in program.backward)
    assert fwd == bwd
    for d in program.backward:
        assert job_cost(d, engine, "backward", layers=layers).utilization(8, 4) <= 1.0


@pytest.mark.parametrize("name,methods", [("cifar_ref", ("saliency", "grad_cam")), ("ds_cnn", ("saliency", "grad_cam")),
                                          ("resnet8", ("saliency", "grad_cam"))])
def test_a_jobs_bound_is_below_its_cycles(name, methods):
    """The roofline bound `xaihls plan` prints is a lower bound on every job: a diagonal job
    (depthwise conv, pool) streams the weights of its m-tiles' own n-tiles only, not of all of
    them (ds_cnn's depthwise jobs showed a bound of 13,216 for 10,153 cycles before); a stride
    phase of a transposed convolution writes its own rows, each as a run with strobes over the
    pixels it skips, not the whole output (resnet8's block2.conv1 phases showed 4,096 for 3,862,
    cifar_ref's Grad-CAM upsampling 1,024 for 806); ds_cnn's Grad-CAM list upsamples with its last
    row cropped, and sums its channel weights in the write-back; a job writing an edge of the image's
    phase view reads the input rows its grid reaches, not the whole map (ds_cnn's last row showed
    4,304 for 2,940)."""
    from xaihls.models.zoo import get_zoo_model
    from xaihls.plan.boards import load_board
    from xaihls.plan.planner_v2 import plan_v2

    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                         methods=methods, backends=("golden",))
    plan = plan_v2(acc.qgraph, load_board("pynq-z2"))
    for cost in plan.forward_costs + plan.backward_costs + plan.cam_costs:
        assert cost.bound_cycles <= cost.cycles, (name, cost)


@pytest.mark.parametrize("name", ["cifar_ref", "resnet8", "ds_cnn"])
def test_a_jobs_cost_reads_only_its_cost_fields(name):
    """The planner keeps one cost for the jobs alike in ``COST_FIELDS`` (a grouped convolution's jobs a group,
    ResNeXt's 32, differ only in their addresses): every other field of every job of a plan (forward, backward,
    Grad-CAM and batched lists, image-batch SEEDs) changed at once leaves the job's cost as it was."""
    import dataclasses

    from xaihls.models.zoo import get_zoo_model
    from xaihls.plan.boards import load_board
    from xaihls.plan.planner_v2 import plan_v2
    from xaihls.plan.timing import COST_FIELDS

    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                         methods=("saliency", "grad_cam", "integrated_gradients"), backends=("golden",))
    plan = plan_v2(acc.qgraph, load_board("pynq-z2"))
    p, engine = plan.program, plan.engine
    assert p.forward_batch and p.cam  # every list has jobs to check
    others = [f.name for f in dataclasses.fields(p.forward[0]) if f.name not in COST_FIELDS]
    assert {"in_addr", "w_addr", "out_addr"} <= set(others)
    for d in p.forward + p.backward + p.cam + p.forward_batch + p.backward_batch:
        moved = dataclasses.replace(d, **{f: getattr(d, f) + 1 + k % 7 for k, f in enumerate(others)})
        for image_batch in (False, True):
            assert job_cost(moved, engine, "forward", image_batch=image_batch) == \
                job_cost(d, engine, "forward", image_batch=image_batch), d


def test_the_grad_cam_list_is_costed_job_by_job():
    """A Grad-CAM run costs the forward list, the backward list's jobs down to the layer and every
    job of the Grad-CAM list; guided Grad-CAM adds the whole backward list and one product of two
    tensors (the post-processing of input x gradient)."""
    from xaihls.models.zoo import get_zoo_model
    from xaihls.plan.boards import load_board
    from xaihls.plan.planner_v2 import plan_v2
    from xaihls.plan.timing import method_cycles, post_cycles

    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4],
                         methods=("grad_cam", "guided_grad_cam"), backends=("golden",))
    plan = plan_v2(acc.qgraph, load_board("pynq-z2"))
    program, engine = plan.program, plan.engine
    cam = [job_cost(d, engine, "cam") for d in program.cam]
    assert len(cam) == program.header["n_cam"] == len(plan.cam_costs) > 0 and all(c.cycles > 0 for c in cam)
    assert 0 < program.header["n_backward_cam"] < len(program.backward)
    grad_cam, guided = (method_cycles(program, engine, m) for m in ("grad_cam", "guided_grad_cam"))
    backward = sum(job_cost(d, engine, "backward").cycles for d in program.backward)
    prefix = sum(job_cost(d, engine, "backward").cycles for d in program.backward[:program.header["n_backward_cam"]])
    assert grad_cam - method_cycles(program, engine, None) > prefix + sum(c.cycles for c in cam)
    assert guided - grad_cam == backward + post_cycles("ixg", program.header["input_elems"] // engine.beat_elems, engine)
    assert {"grad_cam", "guided_grad_cam"} <= set(plan.method_cycles)


def test_the_walker_skips_rows_off_the_map_on_middle_passes():
    """conv 3x3, padding 1, on 8x8, one row tile of the whole map: tap row 0 reads input row -1 at
    grid row 0 and tap row 2 input row 8 at grid row 7, so those passes walk 7 rows and take one
    cycle for the eighth (docs/engine_v2.md, "Rows off the map"). The row tile's first pass (it
    zeroes the sums) and final pass (it writes them out) walk every row, and a grid narrower than
    Tn is never skipped (the accumulators' read-to-write distance)."""
    from dataclasses import replace

    from xaihls.plan.timing import _Walks, skips_rows

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 10)).eval()
    acc = xaihls.compile(net, (3, 8, 8), calibration=torch.rand(8, 3, 8, 8), methods=("gradient",),
                         backends=("golden",))
    program = lower(acc.qgraph, Shape(8, 4, 4), Buffers(1024, 256, 1024))
    engine = EngineV2.for_program(program, clock_mhz=100.0, bytes_per_cycle=8.0)
    conv = next(d for d in program.forward if d.op == Op.CONV and d.ky == 3)
    assert (conv.row_tiles, conv.tile_rows, conv.ow, conv.kx) == (1, 8, 8, 3) and skips_rows(conv, engine)
    walks = _Walks(conv, engine, 0, 8, period_min=8 + 4 + 4)
    assert walks.lens == [57] * 3 + [64] * 3 + [57] * 3
    # every pass is longer than the shadow chain's 16 cycles, and the next pass is chained to it,
    # without a waiting cycle (docs/engine_v2.md, "Chained passes": ow + rows >= Tn + 3)
    periods = list(walks.lens)
    assert walks.tile(False, False) == (sum(periods), sum(periods[:-1]) + 57)
    assert walks.tile(True, True) == (sum(periods) + 2 * 7, sum(periods[:-1]) + 7 + 64)
    wide = replace(engine, tm=16, tn=16)
    assert not skips_rows(conv, wide) and _Walks(conv, wide, 0, 8, period_min=36).lens == [64] * 9
    # a grid that walks every row chains its passes (each position is re-read as long after as the
    # passes' starts are apart); one that skips rows waits a cycle after each pass where a position
    # could come back sooner than the accumulators allow: ow + rows < Tn + 3 with two rows or more
    assert _Walks(conv, wide, 0, 8, period_min=36).tile(False, False) == (9 * 64, 8 * 64 + 64)
    square = replace(engine, tm=8, tn=8)
    two, three = _Walks(conv, square, 0, 2, period_min=8), _Walks(conv, square, 0, 3, period_min=8)
    assert skips_rows(conv, square) and two.lens == [9] * 3 + [16] * 6 and three.lens == [17] * 3 + [24] * 6
    assert two.tile(False, False)[0] == sum(n + 1 for n in two.lens)
    assert three.tile(False, False)[0] == sum(three.lens)
    # one m-tile, one n-tile: the job is that one tile, the row tile's first and final
    assert (conv.m_tiles, conv.n_tiles) == (1, 1)
    assert job_cost(conv, engine, "forward").compute_cycles == sum(periods) + 2 * 7


def test_the_rtl_testbench_waits_four_times_the_cycle_models_longest_run():
    """The Verilator testbench gave every run 20 million cycles, and DenseNet-121's saliency at 32 x 32
    needs about 22 million: it stopped as if the engine hung. It now waits four times the cycle
    model's longest run (the model is within 10% of the RTL per job), 20 million at least."""
    from xaihls.backends.rtl.v2.params import rtl_params
    from xaihls.backends.rtl.v2.sim import MIN_TIMEOUT_CYCLES, run_timeout
    from xaihls.methods import METHOD_CODES, PREDICT_CODE
    from xaihls.models.zoo import get_zoo_model
    from xaihls.plan.contract import MAX_IG_STEPS
    from xaihls.plan.timing import method_cycles

    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8],
                         methods=("integrated_gradients",), backends=("golden",), tiling=(4, 4))
    program, params = acc.plan.program, rtl_params(acc.plan.program, acc.plan.engine)
    predict = [{"method": PREDICT_CODE, "steps": 32}]
    assert run_timeout(program, params, predict, 24) == MIN_TIMEOUT_CYCLES
    ig = {"method": METHOD_CODES["integrated_gradients"], "steps": MAX_IG_STEPS}
    longest = method_cycles(program, params.engine(100.0, 24), "integrated_gradients", MAX_IG_STEPS)
    assert 4 * longest > MIN_TIMEOUT_CYCLES
    assert run_timeout(program, params, predict + [ig], 24) == 4 * longest
