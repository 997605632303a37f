"""The Program v2 interpreter (xaihls/sim/interpreter.py) equals the golden model bit for bit."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

import xaihls
from tests.random_nets import edge_net, pool_net, random_net
from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Add
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.contract import from_blocked, to_blocked
from xaihls.plan.contract import HEADER, Flag, Op
from xaihls.plan import lowering, timing
from xaihls.plan.engine import EngineV2
from xaihls.plan.lowering import Buffers, Shape, buffer_needs, encode, feature_order, lower, lower_jobs
from xaihls.plan.planner_v2 import _row_tile_cost
from xaihls.plan.timing import job_cost
from xaihls.sim.interpreter import Engine, run_batch

SHAPES = [(Shape(8, 4, 4), Buffers(1024, 256, 1024)), (Shape(16, 8, 4), Buffers(4096, 1024, 4096)),
          (Shape(4, 4, 4), Buffers(256, 64, 1024))]  # the last one tiles rows
# cifar_ref's batched lists: 16 x 8 with an input buffer small enough to tile rows (3 row tiles in conv1
# and conv2 forward and conv1 backward), the folded image, conv1 backward as lane groups; about 10x
# faster to interpret than 4 x 4 (SHAPES[2])
CIFAR_BATCHED = (Shape(16, 8, 4), Buffers(512, 1024, 256))


def _check(acc, x, shape, buffers, steps=3, fuse_pools=None):
    program = encode(lower_jobs(acc.qgraph, shape, fuse_pools), buffers)
    x_q = quantize_input(acc.qgraph, x)[0]
    for method in (None, *METHODS):
        g = acc.run(x, method, steps=steps)
        logits, target, attr, counters = run_batch(program, x_q, METHOD_CODES[method] if method else 0, None, steps,
                                                   "trapezoid", None)
        what = f"{shape} {buffers} {method or 'predict'}"
        assert torch.equal(logits, g.logits) and torch.equal(target, g.target), what
        if method:
            assert torch.equal(attr, g.attribution), what


@pytest.mark.parametrize("shape,buffers", SHAPES, ids=["8x4", "16x8", "4x4_small_buffers"])
@pytest.mark.parametrize("name", ["digits", "digits_strided_bn", "digits_gap"])
def test_interpreter_equals_golden_on_the_zoo(name, shape, buffers):
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], backends=("golden",))
    _check(acc, entry.samples()[0][:2], shape, buffers)


def test_interpreter_equals_golden_on_the_cifar_net_with_row_tiles():
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    _check(acc, entry.calibration()[:1], *SHAPES[2])


def _two_source_jobs(lowered) -> tuple[list, list]:
    """(forward, backward) jobs that read two sources."""
    return [d for d in lowered.forward if d.src_b], [d for d in lowered.backward if d.src_b]


@pytest.mark.parametrize("shape,buffers", [SHAPES[0], SHAPES[2]], ids=["8x4", "4x4_small_buffers"])
@pytest.mark.parametrize("name", ["digits_resnet", "digits_mobilenet"])
def test_interpreter_equals_golden_on_residual_nets(name, shape, buffers):
    """Residual adds and gradient sums (docs/engine_v2.md, "Residual adds and gradient sums"):
    digits_resnet has an identity block and a stride-2 block with a projection shortcut after a
    padded max-pool, digits_mobilenet an inverted residual (depthwise, ReLU6) whose input a 1x1
    conv and the add read. Each add is one two-source job, each tensor read by two layers one
    two-source job per stride phase that reaches both readers; every method is bit-exact."""
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], backends=("golden",))
    graph = acc.qgraph.graph
    adds = sum(type(layer).__name__ == "Add" for layer in graph.layers)
    shared = sum(len(users) == 2 for users in graph.consumers)
    forward, backward = _two_source_jobs(lower_jobs(acc.qgraph, shape))
    assert len(forward) == adds and {d.ky * d.kx for d in forward} == {1}
    assert len({d.out_addr for d in backward}) == shared
    _check(acc, entry.samples()[0][:2], shape, buffers)


def test_interpreter_equals_golden_on_resnet8():
    """MLPerf Tiny's ResNet-8 (random weights) at 16x8: three residual blocks, two with projections."""
    entry = get_zoo_model("resnet8")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    _check(acc, entry.calibration()[:1], *SHAPES[1])


@pytest.mark.parametrize("fuse_pools", [False, True], ids=["pool_jobs", "pools_fused"])
@pytest.mark.parametrize("name", ["digits", "cifar_ref"])
def test_max_pool_backward_fused_into_the_convolution_is_bit_exact(name, fuse_pools):
    """UNPOOL: every max-pool of these nets is fusable; the backward list loses its phase jobs and
    every method stays bit-exact (cifar_ref at 4x4 with small buffers: row tiles of whole windows)."""
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    shape, buffers = SHAPES[2] if name == "cifar_ref" else SHAPES[0]
    jobs = lower_jobs(acc.qgraph, shape, fuse_pools).backward
    pools = sum(1 for layer in acc.qgraph.graph.layers if type(layer).__name__ == "MaxPool2d")
    assert sum(d.unpool != 0 for d in jobs) == (pools if fuse_pools else 0)
    assert sum(d.has(Flag.GATE) and not d.unpool for d in jobs) == (0 if fuse_pools else 4 * pools)
    _check(acc, entry.calibration()[:1], shape, buffers, fuse_pools=fuse_pools)


@pytest.mark.parametrize("seed", range(6))
def test_interpreter_equals_golden_on_random_networks_with_fused_pools(seed):
    """Windows of 2 and 4, a ReLU before the pool (the rule on the unpooled operand), after it or
    none, ragged map edges, row tiles (the small-buffer shape)."""
    model, shape, calibration = pool_net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    engine, buffers = SHAPES[seed % len(SHAPES)]
    assert any(d.unpool for d in lower_jobs(acc.qgraph, engine).backward)
    x = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    _check(acc, x, engine, buffers)


@pytest.mark.parametrize("seed", range(8))
def test_interpreter_equals_golden_on_random_networks(seed):
    model, shape, calibration = random_net(300 + seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    x = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    engine, buffers = SHAPES[seed % len(SHAPES)]
    _check(acc, x, engine, buffers)


@pytest.mark.parametrize("seed", range(10))
def test_interpreter_equals_golden_on_random_edge_networks(seed):
    """Depthwise and grouped convolutions, ReLU6 (fused after a conv, a pool or an affine, or alone),
    BatchNorm as a per-channel affine, padded and ceil-mode max-pools, padded average pools."""
    model, shape, calibration = edge_net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, backends=("golden",))
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    engine, buffers = SHAPES[seed % len(SHAPES)]
    _check(acc, x, engine, buffers)


def test_blocked_layout_round_trips_and_a_flattened_map_keeps_its_feature_order():
    x = np.arange(5 * 3 * 2).reshape(5, 3, 2)
    flat = to_blocked(x, 4)
    assert flat.size == 2 * 4 * 3 * 2 and np.array_equal(from_blocked(flat, 5, 3, 2, 4), x)
    order = feature_order((5, 3, 2), 4)
    assert np.array_equal(flat[order >= 0], x.reshape(-1)[order[order >= 0]])
    assert (flat[order < 0] == 0).all()  # padding channels


def test_a_network_that_does_not_fit_the_engines_fields_is_refused_naming_the_field():
    import torch.nn as nn

    torch.manual_seed(0)
    # four input channels fill a word of tn = 4: no folded image shortens the kernel
    net = nn.Sequential(nn.Conv2d(4, 2, (33, 1)), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 4, 3)).eval()
    acc = xaihls.compile(net, (4, 40, 4), calibration=torch.rand(2, 4, 40, 4), backends=("golden",),
                         methods=("gradient",))
    with pytest.raises(XaiHlsError, match=r"layer '0' \(forward\): descriptor\.ky = 33 does not fit the engine's "
                                          r"5-bit field \(0\.\.31\)"):
        lower(acc.qgraph, Shape(8, 4, 4), Buffers(1 << 16, 1 << 16, 1024))


@pytest.mark.parametrize("name", ["digits", "cifar_ref"])
def test_kept_state_bases_are_multiples_of_tn(name):
    """The contract's mask_base and index_base are multiples of tn: the RTL's write-back ORs a
    lane group into a grid pixel's words instead of adding it. So are mask_bias and its slot step,
    which the write-back takes in words (and which the interpreter, running on them, holds to
    mask_base)."""
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:4], backends=("golden",))
    for shape, buffers in SHAPES:
        program = lower(acc.qgraph, shape, buffers, batch=2)
        assert program.forward_batch
        for job in program.all_jobs:
            assert job.mask_base % shape.tn == 0 and job.index_base % shape.tn == 0, (shape, job.layer)
            assert job.mask_bias % shape.tn == 0 and job.mask_slot_bias % shape.tn == 0, (shape, job.layer)


def _batched_ig_matches(acc, x, shape, buffers, batch: int, steps: int) -> None:
    """Integrated gradients on a Program with batched lists equal golden, with the counters of the
    same Program run without them (``steps`` not a multiple of ``batch``: both kinds of list run)."""
    plain = encode(lower_jobs(acc.qgraph, shape), buffers)
    batched = encode(lower_jobs(acc.qgraph, shape, batch=batch), buffers)
    assert batched.batch == batch and batched.forward_batch and batched.backward_batch
    x_q = quantize_input(acc.qgraph, x)[0]
    code = METHOD_CODES["integrated_gradients"]
    for rule in ("trapezoid", "right"):
        g = acc.run(x, "integrated_gradients", steps=steps, rule=rule)
        want = run_batch(plain, x_q, code, None, steps, rule, None)
        got = run_batch(batched, x_q, code, None, steps, rule, None)
        assert torch.equal(got[2], g.attribution), f"{batch} slots, {steps} steps, {rule}"
        assert got[3] == want[3], f"{batch} slots, {steps} steps, {rule}: saturation counters"


@pytest.mark.parametrize("name,batch,steps", [("digits", 2, 5), ("digits", 4, 9), ("cifar_ref", 2, 3)])
def test_integrated_gradients_on_batched_lists_are_bit_exact(name, batch, steps):
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    shape, buffers = CIFAR_BATCHED if name == "cifar_ref" else SHAPES[0]
    _batched_ig_matches(acc, entry.samples()[0][:2], shape, buffers, batch, steps)


@pytest.mark.parametrize("seed", range(6))
def test_integrated_gradients_on_batched_lists_of_random_networks(seed):
    model, shape, calibration = random_net(300 + seed)
    acc = xaihls.compile(model, shape, calibration=calibration, backends=("golden",))
    x = torch.cat([calibration[:1], calibration[:1] * 5])  # the second saturates
    _batched_ig_matches(acc, x, *SHAPES[seed % 2], batch=3, steps=4)


def test_batched_lists_run_a_linear_layer_once_for_every_slot_unless_its_slots_are_padded():
    """The batched lists: a convolution as one slot job, which runs every slot; a Linear layer once
    for all slots (a grid row a slot). Its ReLU bits follow its output's bytes, so slot s's lie
    where the slot jobs keep them only if the tensor's slots are as far apart as the ReLU's bits:
    here fc1's 12 outputs (24 bytes) and fc2's 5 have 64-byte slots, so the jobs that write them
    under a ReLU (fc1 and fc2 forward, fc2 backward) run as slot jobs, while fc1's backward (the
    gradient under the conv's ReLU, whose bits the conv's slot job wrote) runs once for all slots.
    A SEED is a job a slot (it seeds its own slot's target)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(64, 12), torch.nn.ReLU(), torch.nn.Linear(12, 5), torch.nn.ReLU()).eval()
    calibration = torch.rand(8, 1, 6, 6)
    acc = xaihls.compile(model, (1, 6, 6), calibration=calibration, backends=("golden",))
    batch = 3
    program = encode(lower_jobs(acc.qgraph, Shape(8, 4, 4), batch=batch), SHAPES[0][1])
    counts, slot_jobs = {}, 0
    for direction, jobs in (("forward", program.forward_batch), ("backward", program.backward_batch)):
        for d in jobs:
            assert d.slots in (0, batch) and (d.slots == 0 or d.op == Op.CONV), d
            slot_jobs += d.slots == batch
            counts[direction, d.layer, d.op] = counts.get((direction, d.layer, d.op), 0) + max(1, d.slots)
            if d.oh == batch and d.ow == 1:
                assert d.in_row_bytes > d.iw * 4 * 2 and d.out_row_bytes >= d.out_blocks * 4 * 2, d  # rows a slot apart
    conv, fc1, fc2, seed = 0, 3, 5, 7
    assert counts == {("forward", conv, 1): batch, ("forward", fc1, 1): batch, ("forward", fc2, 1): batch,
                      ("backward", seed, 2): batch, ("backward", fc2, 1): batch, ("backward", fc1, 1): 1,
                      ("backward", conv, 1): batch}
    assert slot_jobs == 5  # the conv both ways, fc1 and fc2 forward, fc2 backward
    _batched_ig_matches(acc, calibration[:2], Shape(8, 4, 4), SHAPES[0][1], batch, 4)


@pytest.mark.parametrize("name", ["digits", "cifar_ref"])
def test_a_convolution_of_the_batched_lists_is_one_slot_job_that_runs_every_slot(name, monkeypatch):
    """Slot jobs (docs/engine_v2.md): every convolution of the batched lists is one job of `batch`
    slots whose slot s (``lowering.slot_job``) is, field for field, the job a slot the batched lists
    held before (``SLOT_JOBS`` off; its DDR addresses moved by the descriptor room that reserves);
    a SEED stays a job a slot. The cycle model, which runs the
    slots as one sequence of tiles, finds each slot job cheaper than its slots as separate jobs
    (the next slot's first loads under this slot's last write-back)."""
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    shape, buffers = SHAPES[1]
    batch = 3
    together = encode(lower_jobs(acc.qgraph, shape, batch=batch), buffers)
    monkeypatch.setattr(lowering, "SLOT_JOBS", False)
    apart = encode(lower_jobs(acc.qgraph, shape, batch=batch), buffers)
    engine = EngineV2(shape.tm, shape.tn, shape.beat_elems, *buffer_needs(together.all_jobs, shape.tm, shape.tn),
                      together.header["mask_bits"], together.header["index_entries"], together.header["index_bits"],
                      together.header["input_elems"], 100.0, 8.0, 24)
    # a job a slot reserves more descriptors, which come first in DDR: everything after them moves
    delta = apart.header["work_addr"] - together.header["work_addr"]
    assert delta > 0

    def moved(j):  # mask_bias follows out_addr
        return lowering.with_mask_bias(dataclasses.replace(
            j, **{f: getattr(j, f) + delta for f in ("in_addr", "out_addr", "w_addr", "b_addr")
                  if getattr(j, f)}))  # 0: none (the header is there)

    for direction in ("forward_batch", "backward_batch"):
        jobs, per_slot = getattr(together, direction), list(getattr(apart, direction))
        assert sum(d.slots == batch for d in jobs) >= 2 and all(d.slots in (0, batch) for d in jobs), direction
        for d in jobs:
            slots = [lowering.slot_job(d, s) for s in range(batch)] if d.slots else [d]
            assert [moved(j) for j in slots] == per_slot[:len(slots)], (direction, d.layer)
            del per_slot[:len(slots)]
            if d.slots:
                alone = sum(job_cost(j, engine, "forward").cycles for j in slots)
                assert job_cost(d, engine, "forward").cycles < alone, (direction, d.layer)
        assert not per_slot


def test_a_program_of_several_slots_without_its_batched_lists_is_refused():
    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    program = encode(lower_jobs(acc.qgraph, *SHAPES[0][:1], batch=2), SHAPES[0][1])
    Engine(program)
    for field in ("n_forward_batch", "n_backward_batch", "slot_bytes"):
        ddr = program.ddr()
        header = HEADER.decode(ddr[:HEADER.bytes].tobytes())
        ddr[:HEADER.bytes] = np.frombuffer(HEADER.encode({**header, field: 0}), np.uint8)
        with pytest.raises(XaiHlsError, match="2 slots without batched lists"):
            Engine(ddr)


def _image_batches_match(acc, x, shape, buffers, batch: int) -> None:
    """Every method on an image batch (``batch`` images at one engine start, the rest one at a time)
    equals golden, with the predicted class or a target per image, and the batch's saturation
    counters sum to those of the same images run one at a time."""
    plain = encode(lower_jobs(acc.qgraph, shape), buffers)
    batched = encode(lower_jobs(acc.qgraph, shape, batch=batch), buffers)
    x_q = quantize_input(acc.qgraph, x)[0]
    classes = acc.qgraph.graph.num_classes
    for target in (None, torch.arange(x.shape[0]) % classes):
        for method in (None, *(m for m in METHODS if m != "integrated_gradients")):
            code = METHOD_CODES[method] if method else 0
            g = acc.run(x, method, target=target)
            want = run_batch(plain, x_q, code, target, 3, "trapezoid", None)
            got = run_batch(batched, x_q, code, target, 3, "trapezoid", None)
            what = f"{batch} slots, {method or 'predict'}, target {target}"
            assert torch.equal(got[0], g.logits) and torch.equal(got[1], want[1]), what
            if method:
                assert torch.equal(got[1], g.target) and torch.equal(got[2], g.attribution), what
            assert np.sum(got[3], axis=0).tolist() == np.sum(want[3], axis=0).tolist(), what
            assert all(c == (0, 0, 0) for c in got[3][1:batch]), f"{what}: the counters are in the first record"


@pytest.mark.parametrize("name,batch", [("digits", 2), ("digits_gap", 3), ("cifar_ref", 2)])
def test_image_batches_on_the_batched_lists_are_bit_exact(name, batch):
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    shape, buffers = CIFAR_BATCHED if name == "cifar_ref" else SHAPES[0]
    x = entry.samples()[0][: batch + 1]
    _image_batches_match(acc, x, shape, buffers, batch)


@pytest.mark.parametrize("seed", range(4))
def test_image_batches_of_random_networks(seed):
    model, shape, calibration = random_net(400 + seed)
    acc = xaihls.compile(model, shape, calibration=calibration, backends=("golden",))
    x = torch.cat([calibration[:3], calibration[:1] * 5])  # the last saturates
    _image_batches_match(acc, x, *SHAPES[seed % 2], batch=3)


def test_an_engine_start_of_a_wrong_number_of_images_is_refused():
    entry = get_zoo_model("digits")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    engine = Engine(encode(lower_jobs(acc.qgraph, *SHAPES[0][:1], batch=3), SHAPES[0][1]))
    for images, method in ((2, "saliency"), (4, "saliency"), (3, "integrated_gradients")):
        with pytest.raises(XaiHlsError, match="the Program runs 1 or 3"):
            engine.run(METHOD_CODES[method], -1, 3, images=images)


@pytest.mark.parametrize("shape,cheaper", [(Shape(8, 4, 4), True), (Shape(16, 8, 4), True), (Shape(32, 8, 4), False)],
                         ids=["8x4", "16x8", "32x8"])
def test_depthwise_convolutions_run_their_lane_groups_at_consecutive_columns(shape, cheaper, monkeypatch):
    """LANES (docs/engine_v2.md, "Depthwise convolutions"): ds_cnn's four depthwise convs are 3 x 3
    of stride 1 on a map 5 columns wide (the last column group ragged at 2 and 4 lane groups).
    Without a cost the tiler takes LANES where it has fewer pass-positions: all four, forward and
    backward (digits_mobilenet has one of stride 2, forward). Bit-exact with golden for every method, as with plain diagonal
    jobs. With the cycle model as the judge (a 64-bit bus), the tiler takes the cheaper of the two
    for each job, with the row tiles the model finds cheapest (so no dearer than either kind at the
    default row tiles): LANES at 8 x 4 and 16 x 8 (at most 0.85 of the cycles); at 32 x 8 a LANES job
    streams 6 x 3 passes of 32 x 8 weights a block for 10 positions a row, more than the map's
    work, and the diagonal job stays. (The weights as Tm x Tn tiles, as this trade-off was measured: one a lane,
    w_diag, both weight streams are Tn times shorter.)"""
    monkeypatch.setattr(lowering, "WEIGHTS_A_LANE", False)
    entry = get_zoo_model("ds_cnn")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], ig_steps=2,
                         backends=("golden",))
    layers = acc.qgraph.graph.layers
    x = entry.samples()[0][:1]
    buffers = Buffers(4096, 1024, 4096)
    groups = shape.tm // shape.tn
    program = encode(lower_jobs(acc.qgraph, shape), buffers)
    depthwise = [i for i, layer in enumerate(layers) if getattr(layer, "groups", 1) > 1]
    assert len(depthwise) == 4 and all(layers[i].stride == (1, 1) for i in depthwise)
    assert sorted(d.layer for d in program.forward if d.has(Flag.LANES)) == depthwise
    assert sorted(d.layer for d in program.backward if d.has(Flag.LANES)) == depthwise
    assert all(layers[i].out_shape[2] % groups for i in depthwise), "a ragged last column group"
    _check(acc, x, shape, buffers, steps=2)

    engine = EngineV2.for_program(program, clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    judged = encode(lower_jobs(acc.qgraph, shape), buffers, lambda d: job_cost(d, engine, "tiling").cycles)
    monkeypatch.setattr(lowering, "LANE_COLUMNS", False)
    plain = encode(lower_jobs(acc.qgraph, shape), buffers)
    assert not any(d.has(Flag.LANES) for d in plain.forward + plain.backward)
    _check(acc, x, shape, buffers, steps=2)
    for lst in ("forward", "backward"):
        def cycles(p, layer):
            return sum(job_cost(d, engine, lst).cycles for d in getattr(p, lst) if d.layer == layer)
        for layer in depthwise:
            # the judge takes the cheaper kind, and its own row tiles, so no dearer than either
            lanes = any(d.has(Flag.LANES) for d in getattr(judged, lst) if d.layer == layer)
            assert lanes == cheaper, (lst, layer)
            assert cycles(judged, layer) <= min(cycles(program, layer), cycles(plain, layer)), (lst, layer)
        for layer in depthwise:
            ratio = cycles(program, layer) / cycles(plain, layer)
            assert ratio <= 0.85 if cheaper else ratio > 1, (lst, layer, ratio)


@pytest.mark.parametrize("shape", [Shape(16, 8, 4), Shape(32, 8, 4)], ids=["16x8", "32x8"])
def test_narrow_dense_convolutions_run_their_lane_groups_at_consecutive_columns(shape, monkeypatch):
    """LANES on a dense job (contract v9): a convolution of at most tm - tn output channels, its lane
    group g at output column x * G + g, over every n-tile. digits_strided_bn's conv1 (1 -> 8
    channels, bias and ReLU) forward (on the image unfolded: folded, it takes fewer passes plain)
    and its input gradient; digits_gap's conv2 backward (2 n-tiles of gradient, 7 columns: a ragged
    last group). Without a cost the tiler takes them (fewer pass-positions); bit-exact with golden
    for every method."""
    monkeypatch.setattr(lowering, "FOLD_IMAGE", False)
    dense = {}
    for name in ("digits_strided_bn", "digits_gap"):
        entry = get_zoo_model(name)
        acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], ig_steps=2,
                             backends=("golden",))
        buffers = Buffers(4096, 1024, 4096)
        program = encode(lower_jobs(acc.qgraph, shape), buffers)
        for lst in ("forward", "backward"):
            dense[name, lst] = [d for d in getattr(program, lst) if d.has(Flag.LANES) and not d.has(Flag.DIAG)]
            assert all(d.m_tiles == d.out_blocks and d.osx == 1 for d in dense[name, lst])
        _check(acc, entry.samples()[0][:1], shape, buffers, steps=2)
    groups = shape.tm // shape.tn
    first = dense["digits_strided_bn", "forward"][0]
    assert first.layer == 0 and first.has(Flag.BIAS) and first.has(Flag.RELU)
    assert dense["digits_strided_bn", "backward"][-1].layer == 0
    assert any(d.n_tiles > 1 and d.opw < d.ow * groups for d in dense["digits_gap", "backward"])


@pytest.mark.parametrize("shape", [Shape(8, 4, 4), Shape(16, 8, 4)], ids=["8x4", "16x8"])
def test_the_first_convolutions_backward_runs_in_lane_groups_where_the_cycle_model_says_it_is_cheaper(shape, monkeypatch):
    """cifar_ref's conv1 backward writes the 3 image channels on tm lanes: as a LANES job (two lane
    groups at consecutive columns) it takes at most 0.75 of the plain job's cycles by the cycle model
    (64-bit bus, the pynq-z2 plan's buffers), and the tiler, judging by that model, takes it."""
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         methods=("saliency",))
    buffers = Buffers(1024, 256, 256)
    engine = EngineV2.for_program(encode(lower_jobs(acc.qgraph, shape), buffers), clock_mhz=100.0,
                                  bytes_per_cycle=8.0, ddr_latency=24)
    judged = encode(lower_jobs(acc.qgraph, shape), buffers, lambda d: job_cost(d, engine, "tiling").cycles)
    monkeypatch.setattr(lowering, "LANE_COLUMNS", False)
    plain = encode(lower_jobs(acc.qgraph, shape), buffers, lambda d: job_cost(d, engine, "tiling").cycles)
    conv1 = judged.backward[-1]
    assert conv1.layer == 0 and conv1.has(Flag.LANES) and not conv1.has(Flag.DIAG)
    assert not any(d.has(Flag.LANES) for d in judged.forward + judged.backward[:-1])
    ratio = job_cost(conv1, engine, "backward").cycles / job_cost(plain.backward[-1], engine, "backward").cycles
    assert ratio <= 0.75, ratio


DS_CNN_SHAPE = (Shape(16, 8, 4), Buffers(4096, 1024, 4096))


def _switched(model: str, switch: str, monkeypatch) -> tuple:
    """``model``'s Programs (methods: saliency) at DS_CNN_SHAPE with ``lowering.<switch>`` on, then off
    (the switch is on again afterwards)."""
    entry = get_zoo_model(model)
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                        methods=("saliency",)).qgraph
    on = encode(lower_jobs(qg, DS_CNN_SHAPE[0]), DS_CNN_SHAPE[1])
    monkeypatch.setattr(lowering, switch, False)
    off = encode(lower_jobs(qg, DS_CNN_SHAPE[0]), DS_CNN_SHAPE[1])
    monkeypatch.setattr(lowering, switch, True)
    return on, off


def _exact_either_way(names, switch: str, uses, monkeypatch, shape=SHAPES[2]) -> None:
    """Each zoo net of ``names`` bit-exact with golden on ``shape`` (a Shape, Buffers pair) with
    ``lowering.<switch>`` on and off; ``uses(program)``: whether a Program holds what the switch
    places, which must be exactly when it is on."""
    for name in names:
        net = get_zoo_model(name)
        acc = xaihls.compile(net.build(), net.input_shape, calibration=net.calibration()[:8], ig_steps=2,
                             backends=("golden",))
        for on in (True, False):
            monkeypatch.setattr(lowering, switch, on)
            assert uses(encode(lower_jobs(acc.qgraph, shape[0]), shape[1])) == on, name
            _check(acc, net.samples()[0][:1], *shape, steps=2)


def test_pools_keep_one_pass_of_weights_for_every_pass(monkeypatch):
    """w_once (contract v9): a diagonal job whose passes share their weights stores one pass's and
    the array keeps them. ds_cnn's global average pool (25 x 5 passes of one position) at 16 x 8:
    one pass of weights in DDR, a weight buffer of 192 rows instead of 2,000, and at most 0.35 of
    the cycles by the cycle model. Bit-exact with golden for every method, as with a copy a pass,
    on nets with average pools (global and 2 x 2) and max-pool backward phases (GATE). (The global
    pool as it runs without SUM, below: summed, it has 5 passes.)"""
    shape, buffers = DS_CNN_SHAPE
    monkeypatch.setattr(lowering, "POOL_SUMS", False)
    monkeypatch.setattr(lowering, "WEIGHTS_A_LANE", False)  # Tm x Tn tiles, as the figures below count them
    once, copies = _switched("ds_cnn", "WEIGHTS_ONCE", monkeypatch)
    pool = next(d for d in once.forward if d.w_once)
    plain = next(d for d in copies.forward if d.layer == pool.layer)
    assert pool.passes == 125 and pool.w_nt_bytes == 2 * shape.tm * shape.tn and plain.w_nt_bytes == 125 * 256
    assert not any(d.w_once for d in copies.forward + copies.backward)
    # the depthwise LANES jobs' 3 x 4 passes (the first conv's 10 x 4 taps take 10 on the folded image)
    assert buffer_needs(once.all_jobs, shape.tm, shape.tn)[2] == 12 * shape.tm
    assert buffer_needs(copies.all_jobs, shape.tm, shape.tn)[2] == 125 * shape.tm
    engine = EngineV2.for_program(copies, clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    ratio = job_cost(pool, engine, "forward").cycles / job_cost(plain, engine, "forward").cycles
    assert ratio <= 0.35, ratio
    _exact_either_way(("digits_gap", "digits_strided_bn", "digits_resnet"), "WEIGHTS_ONCE",
                      lambda p: any(d.w_once for d in p.forward + p.backward), monkeypatch, DS_CNN_SHAPE)


def test_a_folded_image_holds_each_pixels_neighbours_after_its_own_channels():
    """fold_image: slot (0, 0) is the image itself; slot (a, b) the pixel fold_offset(a),
    fold_offset(b) away (0, -1, +1), zero past the edge; host_image folds then blocks."""
    from xaihls.plan.contract import fold_image, fold_offset, host_image

    assert [fold_offset(k) for k in range(5)] == [0, -1, 1, -2, 2]
    x = np.arange(2 * 4 * 5).reshape(2, 4, 5) + 1
    f = fold_image(x, 2, 3)
    assert f.shape == (12, 4, 5) and np.array_equal(f[:2], x)
    for a, b in itertools.product(range(2), range(3)):
        dy, dx = fold_offset(a), fold_offset(b)
        k = (a * 3 + b) * 2
        for y, col in itertools.product(range(4), range(5)):
            inside = 0 <= y + dy < 4 and 0 <= col + dx < 5
            assert np.array_equal(f[k:k + 2, y, col], x[:, y + dy, col + dx] if inside else [0, 0])
    assert np.array_equal(fold_image(x), x)
    header = {"fold_rows": 2, "fold_cols": 3, "tn": 16, "in_c": 2, "in_h": 4, "in_w": 5}
    assert np.array_equal(host_image(x, header), to_blocked(f, 16))


@pytest.mark.parametrize("shape,taps", [(Shape(16, 8, 4), (1, 2, 6)), (Shape(16, 16, 4), (1, 3, 3)),
                                        (Shape(8, 4, 4), (1, 1, 9))], ids=["16x8", "16x16", "8x4"])
def test_the_first_convolution_reads_a_folded_image_in_fewer_passes(shape, taps, monkeypatch):
    """cifar_ref's conv1 (3 image channels, 3 x 3): at tn = 8 a word holds 2 columns (6 passes
    instead of 9), at tn = 16 three (3 passes); at tn = 4 nothing folds. The header says how the
    host folds the image; bit-exact with golden for predict and every method (here at 16 x 8 and
    in every other interpreter, csim and RTL test, which fold where this does)."""
    entry = get_zoo_model("cifar_ref")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                         ig_steps=2)
    buffers = Buffers(4096, 1024, 4096)
    program = encode(lower_jobs(acc.qgraph, shape), buffers)
    conv1 = program.forward[0]
    assert (program.header["fold_rows"], program.header["fold_cols"], conv1.passes) == taps
    monkeypatch.setattr(lowering, "FOLD_IMAGE", False)
    plain = encode(lower_jobs(acc.qgraph, shape), buffers).forward[0]
    assert plain.passes == 9 and (conv1.passes < 9) == (taps[1] > 1)
    if shape.tn == 8:
        monkeypatch.setattr(lowering, "FOLD_IMAGE", True)
        _check(acc, entry.calibration()[:1], shape, buffers, steps=2)


@pytest.mark.parametrize("c,kernel,stride,padding,hw", [
    (1, (3, 3), (1, 1), (1, 1), (9, 7)), (1, (5, 5), (2, 2), (2, 2), (11, 10)), (2, (3, 3), (2, 1), (0, 1), (8, 9)),
    (1, (7, 1), (1, 1), (3, 0), (12, 5)), (1, (2, 4), (1, 2), (1, 2), (7, 9)), (3, (3, 3), (2, 2), (1, 1), (9, 9)),
])
def test_first_convolutions_on_folded_images_are_bit_exact(c, kernel, stride, padding, hw, monkeypatch):
    """Kernels of 1 to 7 taps a side, strides 1 and 2, every padding up to k // 2 (the fold's edges:
    a tap of a real pixel read through a word past the map would be lost; ``_fold_dim`` checks
    every position), on a 4 x 4 engine with small buffers (row tiles) and 8 x 4: every method
    bit-exact with golden, and the folded image takes fewer pass-positions than the image (the
    job, or its LANES twin where the tiler takes that)."""
    import torch.nn as nn

    torch.manual_seed(sum(kernel) + c)
    conv = nn.Conv2d(c, 4, kernel, stride, padding)
    h, w = hw
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * oh * ow, 3)).eval()
    x = torch.rand(6, c, h, w)
    acc = xaihls.compile(net, (c, h, w), calibration=x, backends=("golden",), ig_steps=2)
    def positions(d):
        return d.passes * d.oh * d.ow

    for shape, buffers in (SHAPES[0], SHAPES[2]):
        program = encode(lower_jobs(acc.qgraph, shape), buffers)
        folded = program.header["fold_rows"] * program.header["fold_cols"] > 1
        with monkeypatch.context() as m:
            m.setattr(lowering, "FOLD_IMAGE", False)
            plain = encode(lower_jobs(acc.qgraph, shape), buffers).forward[0]
        assert folded == (c * 2 <= shape.tn) and (not folded or positions(program.forward[0]) < positions(plain))
        _check(acc, x[:1], shape, buffers, steps=2)


def test_a_job_of_one_row_tile_loads_its_input_once_for_all_its_m_tiles(monkeypatch):
    """in_keep (contract v14): a job of one row tile whose m-tiles each read every n-tile loads its
    input once, n-tiles side by side in the input buffer, where they fit the engine built for the
    Program. ds_cnn's pointwise convolutions at 16 x 8 (4 m-tiles of 8 n-tiles of 125 words) keep
    theirs and take at most 0.65 of the cycles of loading it for every m-tile by the cycle model;
    no diagonal job keeps one. The interpreter refuses a Program whose kept input its engine cannot
    hold. Bit-exact with golden either way on a residual and an inverted-residual net."""
    shape = DS_CNN_SHAPE[0]
    kept, loaded = _switched("ds_cnn", "KEEP_INPUTS", monkeypatch)
    in_words = buffer_needs(kept.all_jobs, shape.tm, shape.tn)[0]
    assert in_words == buffer_needs(loaded.all_jobs, shape.tm, shape.tn)[0]
    pointwise = [(k, d) for k, d in enumerate(kept.forward) if d.kx * d.ky == 1 and d.m_tiles == 4 and d.n_tiles == 8]
    assert len(pointwise) == 4 and all(d.in_keep == d.load_rows_last * d.iw == 125 for _, d in pointwise)
    assert not any(d.in_keep for d in kept.all_jobs if d.has(Flag.DIAG))
    assert all(d.n_tiles * d.in_keep <= 2 * in_words for d in kept.all_jobs)
    engine = EngineV2.for_program(kept, clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    for k, d in pointwise:
        ratio = job_cost(d, engine, "forward").cycles / job_cost(loaded.forward[k], engine, "forward").cycles
        assert ratio <= 0.65, ratio
    # a kept input on a job that reads its n-tiles from the two buffer sets one by one is refused
    k, d = next((k, d) for k, d in enumerate(kept.forward) if d.has(Flag.DIAG) and d.row_tiles == 1)
    ddr = kept.ddr()
    at = kept.header["forward_addr"] + k * len(d.encode())
    ddr[at: at + len(d.encode())] = np.frombuffer(dataclasses.replace(d, in_keep=1).encode(), np.uint8)
    with pytest.raises(XaiHlsError, match="cannot run: layer .* in_keep on a job that cannot keep its input"):
        Engine(ddr)
    _exact_either_way(("digits_resnet", "digits_mobilenet"), "KEEP_INPUTS",
                      lambda p: any(d.in_keep for d in p.all_jobs), monkeypatch)


def test_a_strided_one_row_kernel_loads_only_the_rows_it_reads(monkeypatch):
    """rows_read: a forward convolution of one kernel row and row stride 2 (resnet8's 1 x 1
    projection shortcuts) reads its input as the map of every other row, rows twice the map's
    bytes apart, so it loads half the rows; at 16 x 8 it takes at most 0.8 of the cycles of loading
    every row by the cycle model. No other job changes. Bit-exact with golden either way on a
    residual net with a projection shortcut."""
    strided, every_row = _switched("resnet8", "ROWS_READ", monkeypatch)
    assert strided.backward == every_row.backward
    changed = [(a, b) for a, b in zip(strided.forward, every_row.forward) if a != b]
    assert len(changed) == 2  # block2.shortcut, block3.shortcut
    engine = EngineV2.for_program(every_row, clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    for a, b in changed:
        assert (b.ky, b.isy, a.isy) == (1, 2, 1)
        assert a.in_row_bytes == 2 * b.in_row_bytes and a.ih == b.ih // 2 and a.oh == b.oh
        ratio = job_cost(a, engine, "forward").cycles / job_cost(b, engine, "forward").cycles
        assert ratio <= 0.8, ratio
    tn = SHAPES[2][0].tn
    _exact_either_way(("digits_resnet",), "ROWS_READ", lambda p: any(
        d.ky == 1 and d.in_row_bytes > 2 * d.iw * tn and not d.slots for d in p.forward), monkeypatch)


def test_an_add_of_more_channels_than_lanes_runs_a_job_a_block(monkeypatch):
    """Adds by block: a residual Add of more channels than the array's lanes runs one job a block
    of tn channels, reading that block of each operand (n-tile 1 is the second operand's block, the
    first operand's bytes on), where the dense job's every m-tile passes over every block of both.
    resnet8 at 16 x 8: its 16-channel Add stays one job; the 32- and 64-channel ones become 4 and 8
    jobs, together at most 0.8 of the dense jobs' cycles by the cycle model (each tiled by it), and
    no other job changes. Bit-exact with golden either way on the two digits residual nets (Adds of
    8, 12 and 16 channels on 4 x 4), on batched lists, whose slot jobs find a block's slots as its
    tensor's, and on an Add whose last block is narrower."""
    entry = get_zoo_model("resnet8")
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",),
                        methods=("saliency",)).qgraph
    shape, buffers = DS_CNN_SHAPE
    engine = EngineV2.for_program(encode(lower_jobs(qg, shape), buffers), clock_mhz=100.0, bytes_per_cycle=8.0,
                                  ddr_latency=24)
    cost = _row_tile_cost(timing, engine)  # the planner's: it picks the dense job's row tiles too
    by_block = encode(lower_jobs(qg, shape), buffers, cost)
    monkeypatch.setattr(lowering, "ADDS_BY_BLOCK", False)
    dense = encode(lower_jobs(qg, shape), buffers, cost)
    monkeypatch.setattr(lowering, "ADDS_BY_BLOCK", True)
    geometry = lambda d: (d.op, d.flags, d.layer, d.m_tiles, d.n_tiles, d.row_tiles, d.oh, d.ow, d.ky, d.kx)  # noqa: E731
    assert list(map(geometry, dense.backward)) == list(map(geometry, by_block.backward))  # at other addresses
    layers = qg.graph.layers
    adds = [k for k, layer in enumerate(layers) if isinstance(layer, Add)]
    jobs = {k: [d for d in by_block.forward if d.layer == k] for k in adds}
    assert [len(jobs[k]) for k in adds] == [1, 4, 8]
    assert len(by_block.forward) == len(dense.forward) + 3 + 7 == by_block.header["n_forward"]
    cycles = lambda ds: sum(job_cost(d, engine, "forward").cycles for d in ds)  # noqa: E731
    ratios = []
    for k in adds[1:]:
        [plain] = [d for d in dense.forward if d.layer == k]
        assert plain.m_tiles > 1 and plain.n_tiles == 2 * len(jobs[k])
        first = jobs[k][0]  # (the Programs place their weights apart: their addresses differ)
        for b, d in enumerate(jobs[k]):
            assert (d.m_tiles, d.n_tiles, d.src_b, d.out_blocks) == (1, 2, 1, 1)
            assert d.in_block_bytes == plain.n_tiles // 2 * plain.in_block_bytes
            assert d.in_addr - first.in_addr == b * plain.in_block_bytes
            assert d.out_addr - first.out_addr == b * plain.out_block_bytes
            assert d.mask_base - first.mask_base == b * plain.out_block_bytes // 2
        ratios.append((cycles(jobs[k]), cycles([plain])))
    assert sum(a for a, _ in ratios) <= 0.8 * sum(b for _, b in ratios), ratios
    split = lambda p: any(d.src_b and d.in_block_bytes > 2 * d.ih * d.iw * p.shape.tn  # noqa: E731
                          for d in p.forward)
    entry = get_zoo_model("digits_resnet")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], backends=("golden",))
    program = encode(lower_jobs(acc.qgraph, SHAPES[0][0], batch=2), SHAPES[0][1])
    assert split(program) and any(d.slots == 2 and d.src_b and d.out_blocks == 1 for d in program.forward_batch)
    _image_batches_match(acc, entry.samples()[0][:3], *SHAPES[0], batch=2)
    _exact_either_way(("digits_resnet", "digits_mobilenet"), "ADDS_BY_BLOCK", split, monkeypatch)
    # a last block of fewer channels (20 = 8 + 8 + 4 at 16 x 8): its own identities
    monkeypatch.setattr(lowering, "ADDS_BY_BLOCK", True)
    torch.manual_seed(20)
    net = _Residual(20).eval()
    x = torch.randn(8, 3, 8, 8)
    acc = xaihls.compile(net, (3, 8, 8), calibration=x, backends=("golden",))
    program = encode(lower_jobs(acc.qgraph, DS_CNN_SHAPE[0]), DS_CNN_SHAPE[1])
    assert len({d.w_addr for d in program.forward if d.src_b and d.out_blocks == 1}) == 2
    _check(acc, x[:1], *DS_CNN_SHAPE, steps=2)


class _Residual(torch.nn.Module):
    """conv, ReLU, conv, ReLU, 1 x 1 conv, + the first ReLU's output, ReLU, max-pool, Linear."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, c, 3, padding=1), torch.nn.Conv2d(c, c, 3, padding=1)
        self.b2, self.fc = torch.nn.Conv2d(c, c, 1), torch.nn.Linear(c * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x))
        z = torch.relu(self.b2(torch.relu(self.b(y))) + y)
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(z, 2), 1))


def test_a_global_average_pool_sums_its_windows_in_the_write_back(monkeypatch):
    """SUM (contract v15): a global average pool runs as a grid of positions, each summing a block
    of the map over a few passes, and the write-back sums the grid's accumulators (a window of the
    whole grid) where a max-pool would rank them. ds_cnn's pool over 25 x 5 pixels: a 5 x 5 grid of
    5 x 1 passes instead of 125 one-position passes that each wait for the accumulators, at most
    0.3 of the cycles by the cycle model. A SUM job with a bias is refused. Bit-exact with golden
    either way on two nets with global pools (one a residual net)."""
    shape, buffers = DS_CNN_SHAPE
    summed, plain = _switched("ds_cnn", "POOL_SUMS", monkeypatch)
    [(k, pool)] = [(k, d) for k, d in enumerate(summed.forward) if d.has(Flag.SUM)]
    assert not any(d.has(Flag.SUM) for d in plain.all_jobs + summed.backward)
    assert (pool.oh, pool.ow, pool.ky, pool.kx, pool.pool_kh, pool.pool_kw, pool.pool_oh) == (5, 5, 5, 1, 5, 5, 1)
    assert pool.has(Flag.POOL) and pool.has(Flag.DIAG) and pool.w_once
    before = plain.forward[k]
    assert (before.oh, before.ow, before.ky * before.kx) == (1, 1, 125) and not before.has(Flag.POOL)
    engine = EngineV2.for_program(plain, clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    ratio = job_cost(pool, engine, "forward").cycles / job_cost(before, engine, "forward").cycles
    assert ratio <= 0.3, ratio
    ddr = summed.ddr()
    at = summed.header["forward_addr"] + k * len(pool.encode())
    ddr[at: at + len(pool.encode())] = np.frombuffer(
        dataclasses.replace(pool, flags=pool.flags | 1 << Flag.BIAS).encode(), np.uint8)
    with pytest.raises(XaiHlsError, match="cannot run: layer .* SUM on a job that is not a pool of its accumulators"):
        Engine(ddr)
    _exact_either_way(("digits_gap", "digits_resnet"), "POOL_SUMS",
                      lambda p: any(d.has(Flag.SUM) for d in p.forward), monkeypatch)


def _bit_exact_with_golden(acc, net, programs) -> None:
    """Each of ``programs`` (of ``acc``'s network ``net``, IG in 2 steps) bit-exact with golden on its first sample,
    for predict, saliency and integrated gradients."""
    x_q = quantize_input(acc.qgraph, net.samples()[0][:1])[0]
    for method in (None, "saliency", "integrated_gradients"):
        g = acc.run(net.samples()[0][:1], method, steps=2)
        for program in programs:
            logits, _, attr, _ = run_batch(program, x_q, METHOD_CODES[method] if method else 0, None, 2,
                                           "trapezoid", None)
            assert torch.equal(logits, g.logits) and (method is None or torch.equal(attr, g.attribution)), method


def test_the_ddr_image_leaves_out_the_weights_no_job_reads(monkeypatch):
    """Where the tiler keeps one of a job and its twin, the other's weights are never read (a depthwise
    convolution's plain taps beside its LANES copy, the first convolution's unfolded taps): the Program
    leaves them out of its DDR image and moves everything after them down (``lowering.Packing``).
    digits_mobilenet at 16 x 8, tiled by the cycle model: every weight region the packed image holds is
    read by a job, each holds the bytes it held unpacked, the DDR is smaller by the regions left out,
    and the Program is bit-exact with golden either way."""
    shape, buffers = DS_CNN_SHAPE
    net = get_zoo_model("digits_mobilenet")
    acc = xaihls.compile(net.build(), net.input_shape, calibration=net.calibration()[:8], ig_steps=2,
                         backends=("golden",))
    lowered = lower_jobs(acc.qgraph, shape)
    engine = EngineV2.for_program(encode(lowered, buffers), clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    packed = encode(lowered, buffers, _row_tile_cost(timing, engine))
    monkeypatch.setattr(lowering, "PACK_WEIGHTS", False)
    whole = encode(lowered, buffers, _row_tile_cost(timing, engine))
    blobs = {a for a, _ in lowered.blobs}
    weights = {r.name: r for r in whole.regions if r.addr in blobs and r.size}

    def read(program, r) -> bool:
        return any(r.addr <= a < r.addr + r.size for d in program.all_jobs + program.cam for a in (d.w_addr, d.b_addr))

    unread = {name for name, r in weights.items() if not read(whole, r)}
    assert any(".lanes" in name for name in unread) and any(".lanes" not in name for name in unread), unread
    kept = {r.name: r for r in packed.regions if r.name in weights}
    assert kept.keys() == weights.keys() - unread and all(read(packed, r) for r in kept.values())
    for name, r in kept.items():  # a blob stored one a lane (w_diag) keeps its weights, less the rest of its room
        w = weights[name]
        assert packed.image[r.addr: r.addr + r.size] == whole.image[w.addr: w.addr + r.size], name
    taken = sum(lowering.aligned(weights[n].addr + weights[n].size) - weights[n].addr for n in unread)
    taken += sum(lowering.aligned(weights[n].addr + weights[n].size) - lowering.aligned(weights[n].addr + r.size)
                 for n, r in kept.items())
    assert whole.total_bytes - packed.total_bytes == taken > 0
    assert len(packed.image) == len(whole.image) - taken
    _bit_exact_with_golden(acc, net, (packed, whole))


def test_diagonal_jobs_weights_are_stored_one_a_lane(monkeypatch):
    """A weight blob that only diagonal jobs read, each lane's one weight at column m mod tn (a depthwise
    convolution's taps, its LANES copy, a pool's reciprocal, an identity), is stored one a lane (``w_diag``:
    tm weights a pass instead of tm x tn). digits_mobilenet at 16 x 8, tiled the same way with and without
    (``lowering.WEIGHTS_A_LANE``): the same jobs but for their weight fields, each lane's weights the same
    once expanded, fewer DDR bytes, no job dearer by the cycle model and the depthwise ones cheaper, and
    bit-exact with golden either way."""
    shape, buffers = DS_CNN_SHAPE
    net = get_zoo_model("digits_mobilenet")
    acc = xaihls.compile(net.build(), net.input_shape, calibration=net.calibration()[:8], ig_steps=2,
                         backends=("golden",))
    lane = encode(lower_jobs(acc.qgraph, shape), buffers)
    monkeypatch.setattr(lowering, "WEIGHTS_A_LANE", False)
    whole = encode(lower_jobs(acc.qgraph, shape), buffers)
    assert len(lane.all_jobs) == len(whole.all_jobs) and not any(d.w_diag for d in whole.all_jobs)
    engine = EngineV2.for_program(whole, clock_mhz=100.0, bytes_per_cycle=8.0, ddr_latency=24)
    tm, tn = shape.tm, shape.tn
    lanes = np.arange(tm)
    # the weight fields, and the DDR addresses the smaller weights moved (mask_bias follows out_addr)
    fields = ("w_addr", "w_nt_bytes", "w_mt_bytes", "w_diag", "in_addr", "out_addr", "b_addr", "mask_bias")
    seen = set()
    for a, b in zip(lane.all_jobs, whole.all_jobs):
        assert dataclasses.replace(a, **{k: 0 for k in fields}) == dataclasses.replace(b, **{k: 0 for k in fields})
        if not a.w_diag:
            continue
        layers = acc.qgraph.graph.layers
        seen.add("depthwise" if a.layer < len(layers) and getattr(layers[a.layer], "groups", 1) > 1 else "other")
        assert a.has(Flag.DIAG) and a.w_nt_bytes * tn == b.w_nt_bytes == 2 * a.w_passes * tm * tn
        for k in range(max(1, a.n_tiles if not a.has(Flag.LANES) else 1)):
            got = np.frombuffer(lane.image[a.w_addr + k * a.w_nt_bytes:][: a.w_nt_bytes], "<i2")
            full = np.frombuffer(whole.image[b.w_addr + k * b.w_nt_bytes:][: b.w_nt_bytes], "<i2")
            full = full.reshape(a.w_passes, tm, tn)
            assert np.array_equal(got.reshape(a.w_passes, tm), full[:, lanes, lanes % tn])
            off = full.copy()
            off[:, lanes, lanes % tn] = 0
            assert not off.any()
        cost_lane, cost_whole = (job_cost(d, engine, "forward").cycles for d in (a, b))
        assert cost_lane <= cost_whole
    assert seen == {"depthwise", "other"}, seen
    assert lane.total_bytes < whole.total_bytes
    lane_cycles = sum(job_cost(d, engine, "forward").cycles for d in lane.forward)
    assert lane_cycles < sum(job_cost(d, engine, "forward").cycles for d in whole.forward)
    _bit_exact_with_golden(acc, net, (lane, whole))
