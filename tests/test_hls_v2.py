"""Engine v2 in HLS C++: its g++ C-simulation equals golden bit for bit, its saturation counters
equal the interpreter's, its project's testbench passes, and its synthesized sources keep
the HLS rules (no division, modulo or run-time product inside a pipelined loop)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import xaihls
from tests.random_nets import edge_net, pool_net, random_net
from xaihls.backends.hls import csim, v2
from xaihls.backends.hls.rules import (check_files, check_source, constant_names, multiplier_widths,
                                       pipelined_arithmetic)
from xaihls.backends.hls.templates import TEMPLATE_DIR
from xaihls.errors import XaiHlsError
from xaihls.executor import engine_result, prepare
from xaihls.golden import model as golden
from xaihls.methods import LAYER_METHODS, METHOD_CODES, METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import contract, lowering, timing
from xaihls.project import write_files
from xaihls.plan.boards import load_board
from xaihls.plan.contract import DESCRIPTOR, HEADER, REGISTER, Flag, Op, Status, Unpool
from xaihls.plan.engine import EngineV2
from xaihls.plan.contract import fold_image, to_blocked
from xaihls.plan.lowering import Buffers, Shape, buffer_needs, encode, lower, lower_jobs
from xaihls.sim import interpreter

FIRMWARE = TEMPLATE_DIR / v2.FIRMWARE
# the MAC loop's accumulator distance, read from the engine's own header
ACC_DISTANCE = int(re.search(r"constexpr int ACC_DISTANCE = (\d+);", (FIRMWARE / "xaihls_types.h").read_text())[1])
CONFIGS = {  # 64-bit AXI at two array sizes (the small buffers tile rows), and 128-bit
    "16x8": (Shape(16, 8, 4), Buffers(4096, 1024, 4096)),
    "4x4_row_tiles": (Shape(4, 4, 4), Buffers(256, 64, 1024)),
    "16x8_128bit": (Shape(16, 8, 8), Buffers(4096, 1024, 4096)),
}
NETWORKS = {"digits": 2, "digits_strided_bn": 2, "digits_gap": 2, "cifar_ref": 1}  # name -> sample images
RANDOM_SEEDS = (300, 301, 302)
# tests.random_nets.edge_net seeds whose Programs have ReLU6 jobs (RAP, after a pool, BWD_RELU) and
# padded max-pools (a DIAG job over the canvas), each on a config: 128-bit, row tiles, 64-bit
EDGE_SEEDS = {4: "16x8_128bit", 6: "4x4_row_tiles", 12: "16x8"}
STEPS = 3
BATCH = 2  # integrated gradients: 2 steps on the batched lists, then one on the plain ones; images: 2 a start, then 1
MISMATCH = re.compile(r"MISMATCH image \d+ method \w+ (logits|result|attribution)\[\d+\]"
                      r"(?: \(channel \d+, row \d+, column \d+\))?: got -?\d+ expected -?\d+")


def _plan(qg, shape: Shape, buffers: Buffers, engine: EngineV2 | None = None):
    """A plan of ``qg``: its Program and an engine that runs it (by default the smallest)."""
    program = lower(qg, shape, buffers, batch=BATCH)
    board = load_board("pynq-z2")
    if engine is None:
        engine = EngineV2.for_program(program, board.clock_mhz, 8.0)
    return SimpleNamespace(program=program, engine=engine, board=board)


def _engine_for_all(programs) -> EngineV2:
    """One engine (one build) that runs every Program of a shape: the largest kept state and input."""
    engines = [EngineV2.for_program(p, 100.0, 8.0) for p in programs]
    most = {name: max(getattr(e, name) for e in engines) for name in ("mask_bits", "index_entries", "index_bits",
                                                                       "input_elems")}
    return EngineV2(**{**engines[0].as_dict(), **most})


@pytest.fixture(scope="module", autouse=True)
def csim_cache(tmp_path_factory):
    """Builds go to a folder of this module, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("csim-v2-cache")
        mp.setenv(csim.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def qgraphs():
    graphs = {}
    for name in NETWORKS:
        entry = get_zoo_model(name)
        graphs[name] = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8],
                                      ig_steps=STEPS, backends=("golden",)).qgraph
    return graphs


@pytest.fixture(scope="module")
def engines(qgraphs, csim_cache):
    """config -> one engine that runs the Program of every network (and the random ones), compiled."""
    out = {config: _engine_for_all([lower(qg, *CONFIGS[config], batch=BATCH) for qg in qgraphs.values()])
           for config in CONFIGS}
    with ThreadPoolExecutor(2) as pool:  # g++ runs outside the GIL
        list(pool.map(v2.library_for, out.values()))
    return out


@pytest.fixture(scope="module")
def plans(qgraphs, engines):
    """(network, config) -> plan on the config's engine."""
    return {(name, config): _plan(qgraphs[name], *CONFIGS[config], engines[config])
            for name in NETWORKS for config in CONFIGS}


def _check_runs(qg, plan, x, what: str) -> dict[str, int]:
    """predict and every method compiled in: csim == golden bit for bit, counters == the
    interpreter's. Returns the engine's saturation counts, summed over the runs."""
    totals = {"forward": 0, "backward": 0, "post": 0}
    for method in (None, *qg.methods):
        args = prepare(qg, x, method, steps=STEPS)
        got = v2.EXECUTOR.run(qg, plan, args)
        want = golden.EXECUTOR.run(qg, None, args)
        label = f"{what} {method or 'predict'}"
        assert torch.equal(got.logits, want.logits), f"{label}: logits"
        assert torch.equal(got.target, want.target), f"{label}: target"
        if method:
            assert torch.equal(got.attribution, want.attribution), f"{label}: attribution"
        logits, targets, attrs, counters = interpreter.run_batch(plan.program, args.x_q, METHOD_CODES.get(method, 0),
                                                                 args.target, args.steps, args.rule, args.baseline_q)
        expected = engine_result(qg, plan.program.header, args, logits, targets, attrs, counters).saturations
        assert got.saturations == expected, f"{label}: saturation counters"
        for kind in totals:
            totals[kind] += got.saturations.get(kind, 0)
    return totals


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("name", list(NETWORKS))
def test_csim_equals_golden_and_counts_saturations_as_the_interpreter(qgraphs, plans, name, config):
    plan = plans[name, config]
    assert plan.engine.axi_data_bits == 16 * CONFIGS[config][0].beat_elems
    x = get_zoo_model(name).samples()[0][:NETWORKS[name]]
    if name != "cifar_ref":  # and one image well beyond the calibrated range: the formats saturate
        x = torch.cat([x, x[:1] * 6])
    totals = _check_runs(qgraphs[name], plan, x, f"{name} {config}")
    if name != "cifar_ref":
        assert totals["forward"] > 0, totals


def test_csim_image_batches_take_a_target_per_image(qgraphs, plans):
    """An image batch with explicit targets (one per image, different) equals golden; the batch's
    counters are the interpreter's."""
    qg, plan = qgraphs["digits"], plans["digits", "16x8"]
    x = get_zoo_model("digits").samples()[0][:BATCH + 1]
    target = torch.arange(BATCH + 1) % qg.graph.num_classes
    for method in ("saliency", "input_x_gradient", "guided_backprop"):
        args = prepare(qg, x, method, target=target)
        got, want = v2.EXECUTOR.run(qg, plan, args), golden.EXECUTOR.run(qg, None, args)
        assert torch.equal(got.target, target) and torch.equal(got.attribution, want.attribution), method
        assert torch.equal(got.logits, want.logits), method
        runs = interpreter.run_batch(plan.program, args.x_q, METHOD_CODES[method], target, args.steps, args.rule, None)
        expected = engine_result(qg, plan.program.header, args, *runs).saturations
        assert got.saturations == expected, method


def _shared_plan(model, shape, calibration, config: str, engines=None, methods=tuple(METHODS)):
    """A network's Program on ``config``, on the config's shared engine when it fits (else its own)."""
    qg = xaihls.compile(model, shape, calibration=calibration, ig_steps=STEPS, methods=methods,
                        backends=("golden",)).qgraph
    plan = _plan(qg, *CONFIGS[config])
    if engines is not None:
        try:
            v2.check_engine(plan.program, engines[config])
            plan.engine = engines[config]
        except XaiHlsError:
            pass
    return qg, shape, calibration, config, plan


def _random_program(seed: int, engines=None):
    """A random network's Program (tests.random_nets.random_net) on the seed's config."""
    model, shape, calibration = random_net(seed)
    return _shared_plan(model, shape, calibration, list(CONFIGS)[seed % len(CONFIGS)], engines)


def test_csim_equals_golden_at_512_bit_beats(qgraphs, csim_cache):
    """A 512-bit AXI beat holds 32 channels: descriptors, header and result are two, two and
    one beat; Tn = 32. An edge network brings ReLU6 and a padded max-pool to these beats."""
    shape, buffers = Shape(32, 32, 32), Buffers(2048, 512, 8192)
    names = ("digits", "digits_strided_bn")
    model, edge_shape, calibration = edge_net(4)  # ReLU6 and a padded pool
    edge = xaihls.compile(model, edge_shape, calibration=calibration, ig_steps=STEPS, backends=("golden",)).qgraph
    graphs = {**{name: qgraphs[name] for name in names}, "edge net 4": edge}
    engine = _engine_for_all([lower(qg, shape, buffers, batch=BATCH) for qg in graphs.values()])
    assert engine.axi_data_bits == 512
    for name, qg in graphs.items():
        plan = _plan(qg, shape, buffers, engine)
        x = get_zoo_model(name).samples()[0][:1] if name in names else calibration[:1] * 1.2
        _check_runs(qg, plan, x, f"{name} 512-bit")


def _edge_program(seed: int, engines=None):
    """An edge network's Program (tests.random_nets.edge_net) on its config of EDGE_SEEDS."""
    model, shape, calibration = edge_net(seed)
    return _shared_plan(model, shape, calibration, EDGE_SEEDS[seed], engines)


def _relu6_head_net() -> tuple[nn.Module, tuple[int, int, int], torch.Tensor]:
    """ReLU6 on the logits (a SEED with the ReLU6 rule), a padded max-pool over several row tiles
    of the small config, a ceil-mode one whose canvas passes the map's edge."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, 1, 1), nn.ReLU6(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(6, 4, 3, 1, 1),
                          nn.ReLU6(), nn.MaxPool2d(2, 2, ceil_mode=True), nn.Flatten(), nn.Linear(4 * 4 * 4, 10),
                          nn.ReLU6()).eval()
    return model, (2, 13, 13), torch.rand((4, 2, 13, 13)) * 16


def _edge_paths(program) -> set[str]:
    """The ReLU6 and padded-pool paths a Program's jobs take."""
    seen = set()
    for d in program.forward:
        if d.has(Flag.RAP) and d.has(Flag.RELU6):
            seen.add("ReLU6 after a pool" if d.has(Flag.POOL) else "ReLU6")
            if d.cap < 32767:
                seen.add("ReLU6 cap inside the format")
        if d.has(Flag.DIAG) and d.has(Flag.POOL) and (d.iy0 < 0 or d.ix0 < 0 or d.oh + d.iy0 > d.ih
                                                      or d.ow + d.ix0 > d.iw):
            seen.add("padded pool of several row tiles" if d.row_tiles > 1 else "padded pool")
    for d in program.backward:
        if d.has(Flag.BWD_RELU) and d.has(Flag.RELU6):
            seen.add("ReLU6 rule at a SEED" if d.op == Op.SEED else "ReLU6 rule")
    return seen


def test_the_tests_reach_every_path_of_the_engine(plans, ds_cnn):
    """The networks of this file run every path of the engine: weight-stationary passes and
    the position-major order (fewer positions than ACC_DISTANCE), stride-phase writes, fused
    pools, max-pool gates, max-pool backward fused into a convolution (with and without the
    ReLU rule), diagonal jobs, lane groups at output columns (diagonal and dense, over one n-tile
    and several), one pass of weights for every pass (w_once, with and without a gate), weights one a lane
    (w_diag: of LANES jobs, diagonal jobs of several passes, w_once), phases no
    tap reaches, jobs of several row tiles, slot jobs of the batched lists (a CONV job run once a
    slot, at its slot's tensors, ReLU bits and pool indices), inputs kept across m-tiles (of rows
    side by side, and of a batched Linear job's rows a slot apart)."""
    seen = set()
    programs = [plan.program for plan in plans.values()] + [_random_program(s)[-1].program for s in RANDOM_SEEDS]
    for seed in (4, 8):  # test_csim_equals_golden_with_max_pools_fused_into_the_convolution's
        model, shape, calibration = pool_net(seed)
        qg = xaihls.compile(model, shape, calibration=calibration, ig_steps=STEPS, backends=("golden",)).qgraph
        programs.append(_plan(qg, *CONFIGS[list(CONFIGS)[seed % len(CONFIGS)]]).program)
    programs += [_plan(ds_cnn[1], *LANES_CONFIGS[config]).program for config in LANES_CONFIGS]
    edge = [_edge_program(seed)[-1].program for seed in EDGE_SEEDS]
    edge.append(_shared_plan(*_relu6_head_net(), "4x4_row_tiles")[-1].program)
    programs += edge
    for program in programs:
        for d in program.forward + program.backward:
            if d.op != Op.CONV:
                continue
            positions = d.tile_rows * d.ow
            seen.add("pass-major" if d.passes and positions >= ACC_DISTANCE else "position-major" if d.passes else "empty")
            seen |= {f.name for f in Flag if d.has(f)}
            if d.osx > 1:
                seen.add("strided")
            if d.row_tiles > 1:
                seen.add("row tiles")
            if d.unpool:
                seen.add(f"unpool {Unpool(d.unpool).name}")
            if d.has(Flag.LANES) and not d.has(Flag.DIAG):
                seen.add("dense lanes, several n-tiles" if d.n_tiles > 1 else "dense lanes")
            if d.w_once:
                seen.add("one pass of weights, gated" if d.has(Flag.GATE) else "one pass of weights")
            if d.w_diag:  # weights one a lane: of a LANES job, of a plain diagonal one of several passes, of w_once
                seen.add("weights a lane, " + ("lanes" if d.has(Flag.LANES) else "once" if d.w_once else "passes"))
        for d in program.all_jobs:
            if d.op == Op.CONV and d.in_keep:  # rows apart: a batched Linear job's slots
                seen.add("kept input, rows apart" if d.in_row_bytes != 2 * d.iw * program.shape.tn else "kept input")
        for d in program.forward_batch + program.backward_batch:
            if d.op == Op.CONV and d.slots > 1:
                seen.add("slot job")
                if d.mask_slot:
                    seen.add("slot job, ReLU bits a slot")
                if d.index_slot:
                    seen.add("slot job, pool indices a slot")
    assert {"pass-major", "position-major", "empty", "strided", "row tiles", "unpool ON", "unpool RELU", "dense lanes",
            "dense lanes, several n-tiles", "one pass of weights", "one pass of weights, gated", "slot job",
            "slot job, ReLU bits a slot", "slot job, pool indices a slot", "kept input", "kept input, rows apart",
            "weights a lane, lanes", "weights a lane, once", "weights a lane, passes"} <= seen
    assert {f.name for f in Flag} <= seen
    assert set().union(*map(_edge_paths, edge)) == {
        "ReLU6", "ReLU6 after a pool", "ReLU6 cap inside the format", "padded pool", "padded pool of several row tiles",
        "ReLU6 rule", "ReLU6 rule at a SEED"}


def _rows_skipped(jobs, engine: EngineV2) -> int:
    """Grid rows the HLS walker takes in one iteration as off the map over ``jobs`` (xaihls_conv.h,
    mac_tile): on grids at least ACC_DISTANCE wide, every pass of a row tile but its first and its
    final, each grid row whose input row lies off the map (UNPOOL: off the window grid)."""
    total = 0
    for d in jobs:
        if d.op != Op.CONV or not d.passes or d.ow < ACC_DISTANCE:
            continue
        ih = d.ih * d.pool_sh if d.unpool else d.ih
        for mt in [mt for _ in range(max(1, d.slots)) for mt in range(d.m_tiles)]:
            count = timing._n_tiles(d, engine, mt)
            for rt in range(d.row_tiles):
                rows = d.last_rows if rt == d.row_tiles - 1 else d.tile_rows
                y0 = d.iy0 + rt * d.tile_step * d.isy
                off = [rows - timing._rows_in(y0 + ky * d.iky, d.isy, rows, ih) for ky in range(d.ky)]
                total += sum(off[p // d.kx] for k in range(count) for p in range(d.passes)
                             if (k, p) not in ((0, 0), (count - 1, d.passes - 1)))
    return total


@pytest.mark.parametrize("config", list(CONFIGS))
def test_csim_skips_exactly_the_rows_off_the_map_and_stays_bit_exact(qgraphs, plans, config):
    """The HLS walker skips the grid rows the RTL's rule names ("Rows off the map" in
    docs/engine_v2.md, with ACC_DISTANCE for Tn as its width bound): the count it keeps in
    C-simulation is the one worked out from the descriptors, over forward and backward jobs
    (fused max-pool backward included), and the results stay golden's bit for bit."""
    networks = [(name, qgraphs[name], plans[name, config], get_zoo_model(name).samples()[0][:1])
                for name in ("cifar_ref", "digits")]
    model, shape, calibration = pool_net(4)  # UNPOOL jobs, with and without the ReLU rule
    qg = xaihls.compile(model, shape, calibration=calibration, ig_steps=STEPS, backends=("golden",)).qgraph
    networks.append(("pool net 4", qg, _plan(qg, *CONFIGS[config]), calibration[:1] * 1.2))
    skipped = 0
    for name, qg, plan, x in networks:
        lib = v2.library_for(plan.engine)
        for method in (None, "saliency"):
            jobs = plan.program.forward + (plan.program.backward if method else ())
            before = lib.skipped_rows()
            args = prepare(qg, x, method, steps=STEPS)
            got, want = v2.EXECUTOR.run(qg, plan, args), golden.EXECUTOR.run(qg, None, args)
            label = f"{name} {config} {method or 'predict'}"
            assert torch.equal(got.logits, want.logits), label
            if method:
                assert torch.equal(got.attribution, want.attribution), label
            assert lib.skipped_rows() - before == _rows_skipped(jobs, plan.engine), label
            skipped += lib.skipped_rows() - before
    assert skipped > 0


@pytest.mark.parametrize("seed", [4, 8])
def test_csim_equals_golden_with_max_pools_fused_into_the_convolution(seed):
    """UNPOOL jobs with and without the ReLU rule, after a strided convolution too (tests.random_nets.pool_net)."""
    model, shape, calibration = pool_net(seed)
    qg = xaihls.compile(model, shape, calibration=calibration, ig_steps=STEPS, backends=("golden",)).qgraph
    config = list(CONFIGS)[seed % len(CONFIGS)]
    plan = _plan(qg, *CONFIGS[config])
    assert {d.unpool for d in plan.program.backward} >= {Unpool.ON, Unpool.RELU}
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    _check_runs(qg, plan, x, f"pool net {seed} {config}")


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_csim_equals_golden_on_random_networks(seed, engines):
    qg, shape, calibration, config, plan = _random_program(seed, engines)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    _check_runs(qg, plan, x, f"seed {seed} {config}")


@pytest.mark.parametrize("seed", list(EDGE_SEEDS))
def test_csim_equals_golden_on_edge_networks(seed, engines):
    """ReLU6 (its cap, its bit under each method's rule) and padded max-pools, among depthwise,
    grouped and plain convolutions, BatchNorm and average pools (tests.random_nets.edge_net)."""
    qg, shape, calibration, config, plan = _edge_program(seed, engines)
    assert {"ReLU6", "ReLU6 cap inside the format", "ReLU6 rule"} <= _edge_paths(plan.program)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    _check_runs(qg, plan, x, f"edge seed {seed} {config}")


@pytest.mark.parametrize("name,config", [("digits_resnet", "4x4_row_tiles"), ("digits_resnet", "16x8_128bit"),
                                         ("digits_mobilenet", "16x8")])
def test_csim_equals_golden_on_residual_nets(name, config, engines):
    """Residual adds and gradient sums, two-source jobs with operand shifts per ReLU rule
    (docs/engine_v2.md, "Residual adds and gradient sums"): an identity block and a projection
    shortcut after a padded max-pool; inverted residuals with depthwise convolutions and ReLU6.
    Every method, Grad-CAM and guided Grad-CAM (the Program's Grad-CAM list) included; at 4 x 4
    the Adds run a job a block."""
    entry = get_zoo_model(name)
    qg, _, _, _, plan = _shared_plan(entry.build(), entry.input_shape, entry.calibration()[:8], config, engines,
                                     methods=(*METHODS, *LAYER_METHODS))
    assert plan.program.cam
    two = [d for d in plan.program.forward + plan.program.backward if d.src_b]
    shifted = any(d.xs_a1 != d.xs_a0 or d.xs_b1 != d.xs_b0 or d.xs_b0 for d in two)
    assert two and (shifted or name != "digits_resnet")  # digits_resnet's operand shifts differ by rule
    # at 4 x 4 its Adds of 8 and 16 channels run a job a block ("Adds a block at a time"), on slot jobs too
    by_block = [d for d in plan.program.forward + plan.program.forward_batch
                if d.src_b and d.in_block_bytes > 2 * d.ih * d.iw * plan.program.shape.tn]
    assert (len(by_block) == 2 * (2 + 4)) == (config == "4x4_row_tiles"), len(by_block)
    x = entry.samples()[0][:2]
    _check_runs(qg, plan, torch.cat([x, x[:1] * 4]), f"{name} {config}")


LANES_CONFIGS = {  # ds_cnn's depthwise convolutions at G = 2 lane groups over two row tiles, and at G = 4
    "16x8_row_tiles": (Shape(16, 8, 4), Buffers(512, 64, 4096)),
    "32x8": (Shape(32, 8, 8), Buffers(512, 64, 4096)),
}


@pytest.fixture(scope="module")
def ds_cnn():
    entry = get_zoo_model("ds_cnn")
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8], ig_steps=STEPS,
                        backends=("golden",)).qgraph
    return entry, qg


def test_csim_keeps_a_jobs_input_across_its_m_tiles(ds_cnn, monkeypatch):
    """in_keep (docs/engine_v2.md, "Inputs kept across m-tiles"): the HLS loader loads a kept input
    once, for m-tile 0, keeping a copy, and every later m-tile's tiles come from the copy. ds_cnn's
    four pointwise convolutions at 16 x 8 (4 m-tiles of 8 n-tiles, one row tile each): C-simulation
    reads exactly (m_tiles - 1) x n_tiles tiles of input fewer from DDR than with
    lowering.KEEP_INPUTS off, as counted from the descriptors; bit-exact with golden either way."""
    entry, qg = ds_cnn
    shape, buffers = Shape(16, 8, 4), Buffers(4096, 1024, 4096)
    kept = _plan(qg, shape, buffers)
    monkeypatch.setattr(lowering, "KEEP_INPUTS", False)
    loaded = _plan(qg, shape, buffers, kept.engine)
    monkeypatch.setattr(lowering, "KEEP_INPUTS", True)
    jobs = [d for d in kept.program.forward if d.in_keep]
    assert len(jobs) >= 4 and not any(d.in_keep for d in loaded.program.all_jobs)
    pixel_beats = shape.tn // shape.beat_elems
    saved = sum((d.m_tiles - 1) * d.n_tiles * pixel_beats * d.iw
                * len(range(max(d.load_lo, 0), min(d.load_lo + d.load_rows_last, d.ih))) for d in jobs)
    lib = v2.library_for(kept.engine)
    args = prepare(qg, entry.samples()[0][:1], None, steps=STEPS)
    want = golden.EXECUTOR.run(qg, None, args)
    beats = {}
    for name, plan in (("kept", kept), ("loaded", loaded)):
        before = lib.input_beats()
        assert torch.equal(v2.EXECUTOR.run(qg, plan, args).logits, want.logits), name
        beats[name] = lib.input_beats() - before
    assert beats["loaded"] - beats["kept"] == saved > 0, beats


@pytest.mark.parametrize("config", list(LANES_CONFIGS))
def test_csim_equals_golden_on_depthwise_convolutions_at_lane_columns(ds_cnn, config):
    """LANES jobs (an m-tile a block, its lane groups at consecutive output columns), forward and
    backward: ds_cnn's 5 output columns leave the last grid column ragged (one of its 2, or 4,
    lane groups written)."""
    entry, qg = ds_cnn
    shape, buffers = LANES_CONFIGS[config]
    plan = _plan(qg, shape, buffers)
    groups = shape.tm // shape.tn
    for jobs in (plan.program.forward, plan.program.backward):
        lanes = [d for d in jobs if d.op == Op.CONV and d.has(Flag.LANES)]
        assert lanes and any(d.opw < d.ow * groups for d in lanes)
        assert any(d.row_tiles > 1 for d in lanes) or config != "16x8_row_tiles"
    x = entry.samples()[0][:2]
    _check_runs(qg, plan, torch.cat([x, x[:1] * 4]), f"ds_cnn {config}")


def test_csim_equals_golden_with_relu6_on_the_logits_and_padded_pools_across_row_tiles(engines):
    qg, shape, calibration, config, plan = _shared_plan(*_relu6_head_net(), "4x4_row_tiles", engines)
    assert {"ReLU6 rule at a SEED", "padded pool of several row tiles"} <= _edge_paths(plan.program)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(7)) * calibration.abs().max() * 1.2
    _check_runs(qg, plan, x, f"ReLU6 head {config}")


# Contract v6's two sources and operand shifts (src_b, xs_a*, xs_b*) on job kinds the compiler never
# gives two sources (DIAG, GATE, UNPOOL) as well as dense ones: jobs of compiled networks get them by hand. Forward jobs shift equally under every mode (as a
# compiler would write them); backward jobs differently under each mode and for each source, up to
# MAX_X_SHIFT (a 16-bit operand shifted into all 25 bits of the multiplier's input).
XS_FORWARD = ((0, 0, 0), (1, 1, 1))  # (first source, second source), a shift a mode
XS_BACKWARD = (((0, 9, 2), (3, 0, 1)), ((2, 0, 0), (0, 1, 3)), ((1, 2, 0), (0, 0, 2)))


def _with_operand_shifts(lowered):
    """``lowered`` with every weighted CONV job given operand shifts: a job that reads at least
    two blocks a second source from half its blocks on, except the last of each list; any other
    one source (with the second source's shifts, and the first's in xs_b, which it must ignore);
    and the kinds of jobs changed."""
    kinds = set()
    groups = lowered.shape.tm // lowered.shape.tn

    def shifted(d, xs, direction, last):
        if d.op != Op.CONV or not d.passes:
            return d
        split = d.n_tiles >= 2 and not last
        a, b = xs if split else reversed(xs)
        kind = f"{direction} {'two sources' if split else 'one source'}"
        detail = [f.name for f in (Flag.DIAG, Flag.GATE) if d.has(f)] + (["UNPOOL"] if d.unpool else [])
        if d.has(Flag.DIAG) and split:
            detail.append("across m-tiles" if d.n_tiles > groups else "within an m-tile")
        kinds.update({kind, " ".join([kind] + detail)})
        return dataclasses.replace(d, src_b=d.n_tiles // 2 if split else 0, xs_a0=a[0], xs_a1=a[1], xs_a2=a[2],
                                   xs_b0=b[0], xs_b1=b[1], xs_b2=b[2])

    def shift_list(jobs, direction, xs):
        last = max(k for k, d in enumerate(jobs) if d.op == Op.CONV and d.passes)
        return tuple(shifted(d, xs(k), direction, k == last) for k, d in enumerate(jobs))

    forward = shift_list(lowered.forward, "forward", lambda k: XS_FORWARD)
    backward = shift_list(lowered.backward, "backward", lambda k: XS_BACKWARD[k % len(XS_BACKWARD)])
    return dataclasses.replace(lowered, forward=forward, backward=backward), kinds


SHIFTED_JOBS = {  # (network, config) -> the job kinds its Program must have
    ("digits", "16x8"): {"backward two sources GATE UNPOOL"},
    ("digits_gap", "16x8"): {"forward two sources DIAG within an m-tile", "backward two sources DIAG within an m-tile"},
    ("digits_gap", "4x4_row_tiles"): {"forward two sources DIAG across m-tiles",
                                      "backward two sources DIAG GATE across m-tiles"},
}


@pytest.mark.parametrize("name,config", list(SHIFTED_JOBS))
def test_csim_shifts_each_sources_operands_as_the_interpreter(qgraphs, engines, name, config):
    """Two-source jobs (dense, DIAG within and across m-tiles, GATE, UNPOOL; forward and
    backward) and one-source jobs with operand shifts: C-simulation equals the interpreter
    (logits, targets, attributions, saturation counters) for predict and for a method of each
    ReLU mode, on the batched and the plain lists; and the shifts change what the Program computes."""
    qg, (shape, buffers) = qgraphs[name], CONFIGS[config]
    lowered, kinds = _with_operand_shifts(lower_jobs(qg, shape, batch=BATCH))
    program = encode(lowered, buffers)
    assert {"forward two sources", "forward one source", "backward two sources", "backward one source"} <= kinds
    assert SHIFTED_JOBS[name, config] <= kinds, kinds
    unshifted = lower(qg, shape, buffers, batch=BATCH)
    x = get_zoo_model(name).samples()[0][:BATCH + 1]  # a batched start and a plain one
    saturated = 0
    for method in (None, "gradient", "guided_backprop", "deconvnet"):
        args = prepare(qg, x, method, steps=STEPS)
        code = METHOD_CODES.get(method, 0)
        label = f"{name} {config} {method or 'predict'}"
        run = (args.x_q, code, args.target, args.steps, args.rule, None)
        got = v2.run_batch(program, engines[config], *run)
        want = interpreter.run_batch(program, *run)
        before = interpreter.run_batch(unshifted, *run)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), f"{label}: logits, target"
        assert got[3] == want[3], f"{label}: saturation counters"
        assert not torch.equal(want[0], before[0]), f"{label}: the shifts change the logits"
        if method:
            assert torch.equal(got[2], want[2]), f"{label}: attribution"
            assert not torch.equal(want[2], before[2]), f"{label}: the shifts change the attribution"
        saturated += sum(sum(c) for c in want[3])
    assert saturated > 0
    # a shift beyond MAX_X_SHIFT would overflow the multiplier's input: the engine refuses the Program
    lib, ddr, first = v2.library_for(engines[config]), program.ddr(), program.header["forward_addr"]
    assert lib.run(ddr.copy(), 0, -1, STEPS) == 0
    for field in ("xs_a0", "xs_b2"):  # encode refuses the value, so the test writes the field's bits itself
        broken, placed = ddr.copy(), DESCRIPTOR.by_name[field]
        words = broken[first:first + DESCRIPTOR.bytes].view("<u4")
        mask = ((1 << placed.field.bits) - 1) << placed.lsb
        words[placed.word] = (words[placed.word] & ~np.uint32(mask)) | np.uint32((contract.MAX_X_SHIFT + 1) << placed.lsb)
        assert DESCRIPTOR.decode(broken[first:first + DESCRIPTOR.bytes].tobytes())[field] == contract.MAX_X_SHIFT + 1
        assert lib.run(broken, 0, -1, STEPS) == 1 << Status.BAD_PROGRAM, field


def test_status_bits_are_the_contracts(plans):
    plan = plans["digits", "16x8"]
    lib = v2.library_for(plan.engine)
    classes = plan.program.header["classes"]
    ddr = plan.program.ddr()
    assert lib.run(ddr, 0, -1, STEPS) == 0
    bad_argument = 1 << Status.BAD_ARGUMENT
    assert lib.run(ddr, METHOD_CODES["integrated_gradients"], -1, 1) == bad_argument  # IG needs 2..1024 steps
    assert lib.run(ddr, METHOD_CODES["gradient"], classes, STEPS) == bad_argument
    assert lib.run(ddr, max(METHOD_CODES.values()) + 1, -1, STEPS) == bad_argument
    # an image batch: IMAGES is 1 or the Program's batch, not with IG; every slot's target in range
    h = plan.program.header
    assert lib.run(ddr, METHOD_CODES["saliency"], -1, STEPS, images=BATCH + 1) == bad_argument
    assert lib.run(ddr, METHOD_CODES["integrated_gradients"], -1, STEPS, images=BATCH) == bad_argument
    ddr[h["targets_addr"]: h["targets_addr"] + 4 * BATCH] = np.array([-1] * BATCH, "<i4").view(np.uint8)
    assert lib.run(ddr, METHOD_CODES["saliency"], -1, STEPS, images=BATCH) == 0
    ddr[h["targets_addr"] + 4: h["targets_addr"] + 8] = np.array([classes], "<i4").view(np.uint8)
    assert lib.run(ddr, METHOD_CODES["saliency"], -1, STEPS, images=BATCH) == bad_argument
    ddr = plan.program.ddr()

    bad_program = 1 << Status.BAD_PROGRAM
    header = HEADER.decode(ddr[:HEADER.bytes].tobytes())
    for field, value in (("version", 1), ("tm", 8), ("beat_elems", 8), ("mask_bits", plan.engine.mask_bits + 1),
                         ("batch", 0), ("n_forward_batch", 0), ("slot_bytes", 0)):  # batch 2 without its lists
        broken = ddr.copy()
        broken[:HEADER.bytes] = np.frombuffer(HEADER.encode({**header, field: value}), np.uint8)
        assert lib.run(broken, 0, -1, STEPS) == bad_program, field
    other = plans["digits", "4x4_row_tiles"].program.ddr()  # a Program for another engine
    assert lib.run(other, 0, -1, STEPS) == bad_program

    # the first forward job writes beyond the DDR: a bus error, found through the contract's fields
    first = header["forward_addr"]
    job = DESCRIPTOR.decode(ddr[first:first + DESCRIPTOR.bytes].tobytes())
    broken = ddr.copy()
    broken[first:first + DESCRIPTOR.bytes] = np.frombuffer(
        DESCRIPTOR.encode({**job, "out_addr": plan.program.total_bytes}), np.uint8)
    assert lib.run(broken, 0, -1, STEPS) & (1 << Status.BUS_ERROR)
    # walk fields that leave the input buffer: C-simulation says so instead of reading past it
    broken = ddr.copy()
    broken[first:first + DESCRIPTOR.bytes] = np.frombuffer(
        DESCRIPTOR.encode({**job, "walk_origin": plan.engine.in_depth}), np.uint8)
    assert lib.run(broken, 0, -1, STEPS) == v2.CSIM_FAULT
    with pytest.raises(XaiHlsError, match="C-simulation fault"):
        v2.run_batch(dataclasses.replace(plan.program, image=bytes(broken[:len(plan.program.image)])), plan.engine,
                     torch.zeros((1, 1, 16, 16), dtype=torch.int64), 0, None, STEPS, "trapezoid", None)


def test_the_top_gives_its_arguments_the_contracts_registers():
    """Vitis HLS places s_axilite arguments in order after ap_return (0x10): a 64-bit pointer
    takes 12 bytes (data low, high, reserved), an int 8 (data, reserved)."""
    top = (FIRMWARE / "xaihls_top.cpp").read_text()
    signature = re.search(r"int xaihls_top\(([^)]*)\)", top)[1]
    names = [re.search(r"(\w+)$", arg.strip())[1] for arg in signature.split(",")]
    assert names == ["ddr", "method", "target", "steps", "images"]
    assert REGISTER["RETURN"] == 0x10 and "ap_uint<DW>" not in signature and "beat_t *ddr" in signature
    offset = 0x18
    for name, size in (("DDR_LO", 12), ("METHOD", 8), ("TARGET", 8), ("STEPS", 8), ("IMAGES", 8)):
        assert REGISTER[name] == offset, name
        offset += size
    assert re.search(r"#pragma HLS INTERFACE m_axi port=ddr offset=slave bundle=gmem\b", top)
    for port in ("ddr", "method", "target", "steps", "images", "return"):
        assert f"#pragma HLS INTERFACE s_axilite port={port}\n" in top


def test_the_engine_names_every_field_and_code_through_the_generated_contract():
    assert (FIRMWARE / "xaihls_contract.h").read_text() == contract.cpp_header()
    sources = "".join((FIRMWARE / name).read_text() for name in v2.ENGINE_SOURCES if name != "xaihls_contract.h")
    specs = re.findall(r"\b(?:field|address)\(w, ([^)]*)\)", sources)
    assert specs and all(re.fullmatch(r"c::(DESCRIPTOR|HEADER)_[A-Z0-9_]+", s) for s in specs), specs
    used = set(re.findall(r"c::(DESCRIPTOR|HEADER)_([A-Z0-9_]+)", sources))
    assert {name.upper() for name in ("op", "flags", "walk_origin", "code_kx", "mask_plane")} <= {n for _, n in used}
    for group, name, _, _ in contract._codes():
        if group in ("op", "flag", "status", "relu") and (group, name) != ("op", "END"):  # END: any other op refuses
            assert f"c::{group.upper()}_{name}" in sources, (group, name)
    assert "c::METHOD_INTEGRATED_GRADIENTS" in sources and "c::METHOD_DECONVNET" in sources
    # no op, flag or method code spelled as a number
    assert not re.search(r"\b(?:op|method|mode)\s*[=!]=\s*\d", sources)
    assert not re.search(r"flag\(\w+(?:\.flags)?, \d", sources)


# ---------------------------------------------------------------------------------------------
# The project
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def project_plan(qgraphs):
    """digits at 16x8 on the smallest engine that runs it (EngineV2.for_program)."""
    return _plan(qgraphs["digits"], *CONFIGS["16x8"])


@pytest.fixture(scope="module")
def project(tmp_path_factory, qgraphs, project_plan):
    folder = tmp_path_factory.mktemp("prj") / "digits_v2"
    write_files(folder, v2.project_files(qgraphs["digits"], project_plan))
    return folder


def _run_testbench(folder: Path) -> subprocess.CompletedProcess:
    exe = csim.build_testbench(folder)
    return subprocess.run([str(exe), str(folder)], capture_output=True, text=True, cwd=folder)


def test_project_has_every_file_targets_the_board_and_keeps_the_blocked_layout(project, qgraphs, project_plan):
    plan = project_plan
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    for rel in ["firmware/" + name for name in v2.ENGINE_SOURCES + v2.CSIM_SOURCES + ("parameters.h",)] + [
            "firmware/weights/ddr_image.bin", "tb/xaihls_tb.cpp", "tb_data/cases.txt", "build_prj.tcl", "Makefile",
            "README.md"]:
        assert rel in files, rel
    for name in v2.ENGINE_SOURCES + v2.CSIM_SOURCES:  # the library as shipped is what projects contain
        assert (project / "firmware" / name).read_bytes() == (FIRMWARE / name).read_bytes()
    assert (project / "firmware/weights/ddr_image.bin").read_bytes() == plan.program.image
    params = (project / "firmware/parameters.h").read_text()
    assert not re.search(r"^\s*//\s*xaihls insert", params, re.MULTILINE)
    for name, value in (("TM", 16), ("TN", 8), ("BEAT_ELEMS", 4), ("BEAT_SHIFT", 3), ("IN_DEPTH", 4096),
                        ("DDR_BYTES", plan.program.total_bytes), ("MASK_BITS", plan.program.header["mask_bits"])):
        assert re.search(rf"constexpr int {name}\s+= {value};", params), name
    tcl = (project / "build_prj.tcl").read_text()
    assert "set part {xc7z020clg400-1}" in tcl and "set clock_period 10\n" in tcl
    assert "add_files firmware/xaihls_top.cpp" in tcl and "csynth_design" in tcl
    make = (project / "Makefile").read_text()
    assert "SOURCES := tb/xaihls_tb.cpp firmware/xaihls_top.cpp" in make
    assert f"AP_TYPES_DIR ?= {csim.ap_types_dir()}" in make
    # the testbench's images and attributions are stored as the DDR holds them (the image folded:
    # digits' 1 channel and 3 x 3 first kernel, a word of 8 holds the pixel and its neighbours)
    qg = qgraphs["digits"]
    x = v2.default_test_images(qg.graph.input_shape)
    x_q = golden.quantize_input(qg, x, golden.Saturations())
    h = plan.program.header
    assert h["fold_rows"] * h["fold_cols"] > 1
    folded = fold_image(x_q[1].numpy(), h["fold_rows"], h["fold_cols"])
    assert (project / "tb_data/image1.bin").read_bytes() == to_blocked(folded, 8).astype("<i2").tobytes()
    want = golden.attribute(qg, x, "saliency").attribution[0].numpy()
    stored = np.frombuffer((project / "tb_data/image0_saliency_attribution.bin").read_bytes(), "<i2")
    assert np.array_equal(stored, to_blocked(want, 8))
    assert v2.project_files(qg, plan) == {rel: (project / rel).read_bytes() for rel in files}  # deterministic


def test_project_testbench_passes_and_names_a_corrupted_element(project, project_plan, tmp_path):
    proc = _run_testbench(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "xaihls csim: 14 cases, 0 mismatches" in proc.stdout and "ok image 1 method integrated_gradients" in proc.stdout

    broken = tmp_path / "broken"
    shutil.copytree(project, broken)  # build/ too: the same sources need no second compile
    image = bytearray((broken / "firmware/weights/ddr_image.bin").read_bytes())
    expected = bytearray((broken / "tb_data/image0_gradient_attribution.bin").read_bytes())
    expected[2 * 9: 2 * 10] = (1234).to_bytes(2, "little", signed=True)  # element 9: channel 1 of pixel (0, 1)
    (broken / "tb_data/image0_gradient_attribution.bin").write_bytes(bytes(expected))
    proc = _run_testbench(broken)
    assert proc.returncode == 1
    assert re.search(r"MISMATCH image 0 method gradient attribution\[9\] \(channel 1, row 0, column 1\): "
                     r"got -?\d+ expected 1234", proc.stdout), proc.stdout
    assert "xaihls csim: 14 cases, 1 mismatches" in proc.stdout

    first_weight = next(r for r in project_plan.program.regions if r.name.endswith(".weight"))
    image[first_weight.addr: first_weight.addr + 2] = (32767).to_bytes(2, "little")
    (broken / "firmware/weights/ddr_image.bin").write_bytes(bytes(image))
    (broken / "tb_data/image0_gradient_attribution.bin").write_bytes(
        (project / "tb_data/image0_gradient_attribution.bin").read_bytes())
    proc = _run_testbench(broken)
    assert proc.returncode == 1 and MISMATCH.search(proc.stdout), proc.stdout


def test_project_testbench_runs_grad_cam(tmp_path):
    """A project compiled with the Grad-CAM methods: its testbench runs the Grad-CAM list and
    compares the map, repeated over the input's channels as the engine leaves it at attr_addr."""
    entry = get_zoo_model("digits_resnet")
    qg = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8],
                        methods=("saliency", *LAYER_METHODS), backends=("golden",)).qgraph
    folder = tmp_path / "digits_resnet_cam"
    write_files(folder, v2.project_files(qg, _plan(qg, *CONFIGS["16x8"])))
    proc = _run_testbench(folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = 2 + len(LAYER_METHODS)  # predict, saliency and the Grad-CAM methods, of each test image
    assert f"xaihls csim: {runs * v2.TEST_IMAGES} cases, 0 mismatches" in proc.stdout, proc.stdout
    assert "ok image 1 method grad_cam" in proc.stdout and "ok image 1 method guided_grad_cam" in proc.stdout


# ---------------------------------------------------------------------------------------------
# The HLS rules
# ---------------------------------------------------------------------------------------------

def test_synthesized_sources_keep_the_hls_rules(project):
    sources = v2.synthesized_sources(project)
    assert [p.name for p in sources] == ["parameters.h", *v2.ENGINE_SOURCES]
    assert check_files(sources) == []


def test_a_division_put_into_the_mac_loop_is_found(project, tmp_path):
    """The check reads the real engine: one division slipped into the pipelined MAC loop shows."""
    copy = tmp_path / "firmware"
    shutil.copytree(project / "firmware", copy)
    conv = copy / "xaihls_conv.h"
    text = conv.read_text()
    old = "if (!skip && (pass_major || last_pass)) acc[w.pos] = run;"
    assert text.count(old) == 1
    conv.write_text(text.replace(old, "if (!skip && (pass_major || last_pass)) acc[w.pos / mc.isx] = run;"))
    found = check_files([copy / p.name for p in v2.synthesized_sources(project)])
    assert [(v.rule, v.text) for v in found] == [("division inside a pipelined loop", "w.pos / mc.isx")]


BAD_LOOPS = """
constexpr int N = 8;
typedef int word_t;
inline int helper(int a, int b) { return a % b; }
inline int mul(int a, int b) { return a * b; }
inline int dsp_mul(int a, int b) { return a * b; }
void f(int *out, const int *in, int n, int s, int k) {
    int acc = 0;
slow:
    for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=64
        out[i] = in[i] / s + in[i] % k + in[i] * s;
    }
fast:
    for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=64
#pragma HLS pipeline II=1
        const word_t *p = in;
        out[i] = in[i] / s;
        out[i] += in[i] % k;
        out[i] += in[i] * s;
        out[i] += helper(in[i], k);
        out[i] += mul(i, n);
        acc *= k;
        out[i] += *p * 4 + i * N + (N / 2) + dsp_mul(in[i], s);
        for (int j = 0; j < N; j++) {
#pragma HLS unroll
            out[i] += j * N + in[j] * j;
        }
    }
}
"""


def test_the_pipelined_arithmetic_rule_catches_each_kind_and_allows_constants():
    found = pipelined_arithmetic({"bad.cpp": BAD_LOOPS}, constant_names(BAD_LOOPS))
    got = sorted((v.rule, v.text) for v in found)
    assert got == sorted([
        ("division inside a pipelined loop", "in[i] / s"),
        ("modulo inside a pipelined loop", "in[i] % k"),
        ("run-time product inside a pipelined loop", "in[i] * s"),
        ("modulo inside a pipelined loop", "a % b (in helper, called inside a pipelined loop)"),
        ("run-time product inside a pipelined loop", "a * b (in mul, called inside a pipelined loop)"),
        ("run-time product inside a pipelined loop", "acc *= k"),
    ])
    lines = BAD_LOOPS.splitlines()
    assert {lines[v.line - 1].strip() for v in found if "called" not in v.text} == {
        "out[i] = in[i] / s;", "out[i] += in[i] % k;", "out[i] += in[i] * s;", "acc *= k;"}
    # the same source passes with the rule off, and the other rules see nothing in it
    assert check_source("bad.cpp", BAD_LOOPS, constant_names(BAD_LOOPS)) == []


def test_the_data_path_multiplier_is_one_dsp48_and_exact(project, tmp_path):
    """dsp_mul takes an 18-bit and a 25-bit operand (a 16-bit one shifted by up to MAX_X_SHIFT):
    one DSP48 multiplier (25 x 18), its 43-bit product exact. A wider operand, a narrower
    product, or widths the check cannot read, are found."""
    sources = v2.synthesized_sources(project)
    texts = {p.name: p.read_text() for p in sources}
    assert multiplier_widths(texts) == []
    types = texts["xaihls_types.h"]
    assert "inline product_t dsp_mul(operand_t a, x_operand_t b)" in types
    for name, bits in (("operand_t", 18), ("x_operand_t", 25), ("product_t", 43)):
        assert f"typedef ap_int<{bits}> {name};" in types, name
    assert 16 + contract.MAX_X_SHIFT == 25 and multiplier_widths({
        "t.h": f"typedef ap_int<{16 + contract.MAX_X_SHIFT}> x_t;\ntypedef ap_int<18> w_t;\n"
               "ap_int<43> dsp_mul(w_t a, x_t b) { return a * b; }"}) == []
    wide = "data-path multiplier wider than one DSP48 (25 x 18)"
    narrow = "data-path product narrower than its operands' (not exact)"
    unread = "data-path multiplier whose widths cannot be read"
    for old, replacement, rules in (
            ("typedef ap_int<25> x_operand_t;", "typedef ap_int<26> x_operand_t;", {wide, narrow}),
            ("typedef ap_int<18> operand_t;", "typedef ap_int<19> operand_t;", {wide, narrow}),
            ("typedef ap_int<43> product_t;", "typedef ap_int<42> product_t;", {narrow}),
            ("dsp_mul(operand_t a, x_operand_t b)", "dsp_mul(x_operand_t a, x_operand_t b)", {wide, narrow}),
            ("dsp_mul(operand_t a, x_operand_t b)", "dsp_mul(operand_t a, ap_uint<25> b)", {wide, narrow}),
            ("dsp_mul(operand_t a, x_operand_t b)", "dsp_mul(operand_t a, wide_t b)", {wide, narrow}),
            ("dsp_mul(operand_t a, x_operand_t b)", "dsp_mul(operand_t a, auto b)", {unread})):
        copy = tmp_path / f"firmware_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(project / "firmware", copy)
        assert types.count(old) == 1, old
        (copy / "xaihls_types.h").write_text(types.replace(old, replacement))
        found = check_files([copy / p.name for p in sources])
        assert {v.rule for v in found} == rules and {v.file for v in found} == {str(copy / "xaihls_types.h")}, (
            replacement, [str(v) for v in found])


def test_pragmas_shape_the_dataflow_the_mac_loops_and_the_buffers():
    conv = (FIRMWARE / "xaihls_conv.h").read_text()
    job = conv[conv.index("inline void conv_job("):conv.index("// SEED")]
    assert "#pragma HLS dataflow" in job
    calls = re.findall(r"^    (\w+)\(ddr|^    (\w+)\(", job, re.MULTILINE)
    assert [a or b for a, b in calls] == ["load_tiles", "mac_tiles", "write_back_tiles", "write_tiles"]
    for channel in ("in_tiles", "w_tiles", "acc_tiles"):
        assert re.search(rf"hls::stream_of_blocks<\w+> {channel};", job), channel
    for loop in ("mac", "write_back", "pool_window", "load_input", "load_weights", "write_burst", "write_strided"):
        body = conv[re.search(rf"^\s*{loop}:", conv, re.MULTILINE).start():]
        body = body[:body.index("{", body.index("for (")) + 400]
        assert "#pragma HLS pipeline II=1" in body, loop
    mac = conv[re.search(r"^mac:", conv, re.MULTILINE).start():]
    assert re.search(r"#pragma HLS dependence variable=acc type=inter direction=RAW dependent=true "
                     r"distance=ACC_DISTANCE", mac[:300])
    assert mac.count("dsp_mul") == 0 and conv.count("dsp_mul(") == 1  # one multiplier array, in products()
    assert re.search(r"mac_tile\([^;]*positions >= ACC_DISTANCE", conv)  # weight-stationary where the distance holds
    top = (FIRMWARE / "xaihls_top.cpp").read_text()
    assert "#pragma HLS array_partition variable=index type=complete dim=1" in top


def test_engine_refuses_a_program_that_does_not_fit(project_plan):
    plan = project_plan
    used = buffer_needs(plan.program.forward + plan.program.backward, plan.engine.tm, plan.engine.tn)[0]
    assert used > 16
    small = EngineV2(**{**plan.engine.as_dict(), "in_depth": 16})
    with pytest.raises(XaiHlsError, match=f"in_depth is 16; the Program needs {used}$"):
        v2.parameters_header(plan.program, small)
    other = EngineV2(**{**plan.engine.as_dict(), "beat_elems": 8})
    with pytest.raises(XaiHlsError, match="16x8 array with 64-bit beats; the engine is 16x8 with 128-bit beats"):
        v2.check_engine(plan.program, other)
