"""Grad-CAM and guided Grad-CAM on the Program (docs/dag.md, "Grad-CAM on the engine"): the program
executor equals the golden model bit for bit (attribution, logits, target, saturation counters; csim:
tests/test_hls_v2.py, rtl: hw_tests/test_rtl_v2_exact.py), and a layer the jobs cannot upsample is
refused at compile in one line."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn as nn

import xaihls
from tests.random_nets import cropped_map_net, long_map_net, random_dag_net, small_map_net, stretched_map_net
from xaihls.errors import XaiHlsError
from xaihls.executor import quantize_input, saturation_kinds
from xaihls.methods import METHOD_CODES
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.contract import Flag, engine_starts
from xaihls.plan.lowering import Buffers, Shape, encode, lower_jobs
from xaihls.sim.interpreter import Engine, run_batch

CAMS = ("grad_cam", "guided_grad_cam")
SHAPES = {"4x4_small_buffers": (Shape(4, 4, 4), Buffers(256, 64, 1024)),
          "16x8": (Shape(16, 8, 4), Buffers(4096, 1024, 4096))}

# (net, grad_cam_layer): the default layer (None) and named ones that take every path of the lowering
LAYERS = [
    ("digits", None),  # conv2: its ReLU and max-pool are fused into its forward job: A recomputed
    ("digits", "relu2"),  # a ReLU's output before a pool: recomputed without the pool, gradient stored unruled
    ("digits", "pool1"),  # a max-pool's output, stored by the forward list
    ("digits_resnet", None),  # block2.shortcut, an Add operand: its gradient is the Add's
    ("digits_resnet", "relu_4"),  # a ReLU's output read by the global pool: gradient stored before the rule
    ("digits_resnet", "relu_2"),  # a ReLU's output read by two convolutions: the gradient sum stored unruled
    ("digits_resnet", "add"),
    ("digits_mobilenet", None),  # blocks.2.project.0
    ("digits_mobilenet", "blocks.2.expand.2"),  # a ReLU6's output
    ("digits_mobilenet", "add"),
]


@functools.cache
def _compiled(name: str, layer: str | None):
    entry = get_zoo_model(name)
    config = {"grad_cam_layer": layer} if layer else None
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], methods=CAMS,
                         config=config, backends=("golden",))
    return acc, entry.samples()[0][:2]


def _engine_kinds(counters) -> dict[str, int]:
    totals = dict(zip(("forward", "backward", "post"), (sum(int(c[k]) for c in counters) for k in range(3))))
    return {k: v for k, v in totals.items() if v}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name,layer", LAYERS, ids=[f"{n}-{lay or 'default'}" for n, lay in LAYERS])
def test_grad_cam_on_the_program_is_bit_exact_with_golden(name, layer, shape):
    acc, x = _compiled(name, layer)
    program = encode(lower_jobs(acc.qgraph, SHAPES[shape][0]), SHAPES[shape][1])
    x_q = quantize_input(acc.qgraph, x)[0]
    for method in CAMS:
        g = acc.run(x, method)
        logits, target, attr, counters = run_batch(program, x_q, METHOD_CODES[method], None, 3, "trapezoid", None)
        what = f"{name} {layer} {shape} {method}"
        assert torch.equal(logits, g.logits) and torch.equal(target, g.target), what
        assert attr.shape == g.attribution.shape and torch.equal(attr, g.attribution), what
        assert (attr != 0).any(), f"{what}: an all-zero map tests nothing"
        golden = {k: v for k, v in saturation_kinds(g.saturations).items() if k != "input"}
        assert _engine_kinds(counters) == golden, what


def test_a_given_target_and_the_public_api_on_the_program_backend():
    """Through ``xaihls.compile``: the planner costs the Grad-CAM list, the Program runs it for any
    target, one image a start even where the Program has image-batch slots."""
    entry = get_zoo_model("digits_resnet")
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                         methods=("saliency", *CAMS), backends=("golden", "program"))
    x = entry.samples()[0][:3]
    for method in CAMS:
        for target in (None, 3):
            g, p = acc.run(x, method, target), acc.run(x, method, target, backend="program")
            assert torch.equal(g.attribution, p.attribution) and torch.equal(g.target, p.target), (method, target)
            assert saturation_kinds(g.saturations) == p.saturations, (method, target)
    plan = acc.plan
    assert plan.program.cam and len(plan.cam_costs) == len(plan.program.cam)
    cycles = plan.method_cycles
    assert cycles["grad_cam"] < cycles["guided_grad_cam"]  # guided runs the whole backward list again
    assert cycles["grad_cam"] > cycles["predict"] + sum(c.cycles for c in plan.cam_costs)
    assert engine_starts(3, max(plan.program.batch, 2), METHOD_CODES["grad_cam"]) == [(0, 1), (1, 1), (2, 1)]


def test_a_map_the_engine_cannot_upsample_is_refused_naming_the_layer():
    """A 26x26 map (a 1x1 conv padded 2 a side) of a 22x22 input: PyTorch's nearest table, its scale
    rounded to float32, reads row 12 at row 11 where floor(11 * 26 / 22) = 13, so no stretch makes it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 1, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 3)).eval()
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model, (1, 22, 22), calibration=torch.rand(8, 1, 22, 22), methods=("grad_cam",),
                       backends=("golden", "program"))
    message = str(e.value)
    assert "\n" not in message and "grad_cam_layer '0': its 26x26 map" in message, message
    assert "PyTorch's nearest table from 26 rows to 22 is neither" in message, message


def test_the_forward_list_is_unchanged_and_a_grad_cam_start_is_one_image():
    """Compiling Grad-CAM in changes no forward job (a fused ReLU and pool stay fused: the list
    recomputes the layer's output instead); the pool whose fused backward would skip the gradient at
    the layer runs as its own jobs; an engine start of several images is refused."""
    acc, x = _compiled("digits", None)
    entry = get_zoo_model("digits")
    plain = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16],
                           methods=("gradient",), backends=("golden",))
    shape = Shape(8, 4, 4)
    with_cam, without = lower_jobs(acc.qgraph, shape), lower_jobs(plain.qgraph, shape)
    geometry = lambda jobs: [(d.layer, d.flags, d.ky, d.kx, d.oh, d.ow, d.m_tiles, d.n_tiles) for d in jobs]  # noqa: E731
    assert geometry(with_cam.forward) == geometry(without.forward)
    conv2 = next(d for d in with_cam.forward if d.layer == 3)
    assert conv2.has(Flag.RELU) and conv2.has(Flag.POOL)
    recompute = with_cam.cam[0]
    assert recompute.layer == 3 and not (recompute.has(Flag.RELU) or recompute.has(Flag.POOL))
    assert sum(d.unpool != 0 for d in with_cam.backward) == sum(d.unpool != 0 for d in without.backward) - 1
    engine = Engine(encode(lower_jobs(acc.qgraph, shape, batch=2), Buffers(1024, 256, 1024)))
    with pytest.raises(XaiHlsError):
        engine.run(METHOD_CODES["grad_cam"], -1, 3, images=2)


@pytest.mark.parametrize("seed", range(6))
def test_random_residual_nets_are_refused_at_compile_or_bit_exact(seed):
    """random_dag_net's last convolution as the layer: refused in one line where no nearest gather
    makes its map's upsampling (``capabilities.upsampling``), else bit-exact on every tiling shape."""
    model, shape, calibration = random_dag_net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=CAMS, backends=("golden",))
    from xaihls.plan.capabilities import program_refusal

    why = program_refusal(acc.qgraph)
    if why is not None:
        assert "\n" not in why and "PyTorch's nearest table from" in why
        return
    engine, buffers = list(SHAPES.values())[seed % 2]
    program = encode(lower_jobs(acc.qgraph, engine), buffers)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    x_q = quantize_input(acc.qgraph, x)[0]
    for method in CAMS:
        g = acc.run(x, method)
        logits, target, attr, _ = run_batch(program, x_q, METHOD_CODES[method], None, 3, "trapezoid", None)
        assert torch.equal(logits, g.logits) and torch.equal(attr, g.attribution), (seed, method)


@pytest.mark.parametrize("net,seed,stages", [
    (small_map_net, 2, [(1, 2)] * 3 + [(2, 2), (8, 1)]),  # a 3x1 map upsampled by 16 (past the output stride's 15)
    (small_map_net, 13, [(1, 3), (1, 2), (2, 2), (8, 1)]),  # 3x2 by 16 rows and 12 columns, over 3 channels
    (cropped_map_net, 2, [(1, 2), (1, 2), (4, 1)]),  # 13x6 by 4: the last stage writes 51 of its 52 rows
], ids=["small_map2", "small_map13", "cropped_map2"])
def test_a_map_upsampled_past_one_jobs_stride_runs_in_stages_bit_exact(net, seed, stages, monkeypatch):
    """A ResNet's or MobileNet's last map is 1/32 of its input, past the 15 a job's output stride
    holds: the map is upsampled in stages (nearest by a then by b is nearest by a * b), the columns
    first, a prime at a time, then the rows, the last stage cropping where the input is not a
    multiple of the map; bit-exact with golden on program and csim for both Grad-CAM methods. (The
    image as it is: on its first stride's phases the small maps' stages would be those to the view,
    tests/test_image_phases.py.)"""
    from xaihls.plan import capabilities
    from xaihls.plan.capabilities import upsampling

    monkeypatch.setattr(capabilities, "IMAGE_PHASES", False)
    model, shape, calibration = net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, methods=CAMS,
                         backends=("golden", "program", "csim"))
    assert [(gy.period, gx.period) for gy, gx in upsampling(acc.qgraph)] == stages
    phases = sum(fy * fx for fy, fx in stages)
    assert sum(d.osy > 1 or d.osx > 1 for d in acc.plan.program.cam) == phases
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(2))
    for method in CAMS:
        g = acc.run(x, method)
        assert (g.attribution != 0).any() and (g.attribution == 0).any(), method  # the map's ReLU at work
        for backend in ("program", "csim"):
            r = acc.run(x, method, backend=backend)
            assert torch.equal(r.logits, g.logits) and torch.equal(r.attribution, g.attribution), (method, backend)


@pytest.mark.parametrize("net,seed,stages,backends", [
    (stretched_map_net, 6, [("1", "2"), ("1", "2"), ("1", "4/5"), ("4", "1"), ("7/3", "1")],
     ("program", "csim")),  # 3x5 to 28x16
    (stretched_map_net, 4, [("1", "1/2")], ("program",)),  # a 12x12 map of a 12x6 input: every second column
    (stretched_map_net, 2, [("1", "11/5"), ("4", "1"), ("5/9", "1")], ("program", "csim")),  # 9x10 to 20x22
    (long_map_net, 2, [("1", "17")], ("program", "csim")),  # a 1-D map of 11 samples to 187: columns as rows
    (long_map_net, 3, [("1", "2"), ("17/7", "1")], ("program", "csim")),  # 7x4 to 17x8: rows 17 apart
], ids=["stretch_rows_and_columns", "every_second_column", "stretch_3_channels", "one_d_by_17", "rows_17_of_7"])
def test_a_map_whose_nearest_table_is_no_integer_factor_is_gathered_in_phases_bit_exact(net, seed, stages, backends):
    """PyTorch's nearest table from 3 rows to 28 is row floor(3i / 28), no i // k: the engines upsample
    by 4, then stretch 12 rows to 28 in 7 phases, phase a writing rows a, a + 7, ... and reading rows
    starts[a], starts[a] + 3, ... (``capabilities.upsampling``); a map larger than its input reads every
    second column; a period past a job's output stride of 15 (17 rows of 7, a 1-D map by 17) runs as
    phases over maps of their own rows (``lowering._phase_fields``). Bit-exact with golden for both
    Grad-CAM methods."""
    from xaihls.plan.capabilities import upsampling

    model, shape, calibration = net(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, methods=CAMS, backends=("golden", *backends))
    gathers = upsampling(acc.qgraph)
    assert [(str(gy), str(gx)) for gy, gx in gathers] == stages
    phases = sum(gy.count(a) > 0 and gx.count(b) > 0 for gy, gx in gathers
                 for a in range(gy.period) for b in range(gx.period))
    tail = acc.plan.program.cam[-phases:]
    assert all(d.ky == d.kx == 1 for d in tail)
    if net is long_map_net:  # each phase's rows (a 1-D map's samples) a map of its own: its own out_addr
        assert all(d.osy == d.osx == 1 and d.out_row_bytes > d.opw * 2 * acc.plan.engine.tn for d in tail[-17:])
    else:
        assert any(d.isy > 1 or d.isx > 1 for d in tail) and len({d.out_addr for d in tail}) == len(stages)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(2)) * 2.0
    for method in CAMS:
        g = acc.run(x, method)
        assert len(torch.unique(g.attribution)) > 2, method  # a map of many values, spread by the gathers
        for backend in backends:
            r = acc.run(x, method, backend=backend)
            assert torch.equal(r.logits, g.logits) and torch.equal(r.attribution, g.attribution), (method, backend)


def test_the_nearest_gathers_make_pytorchs_table_for_every_size_up_to_60():
    """For every map size up to 60 and input size up to 60 (maps larger than the input included), the
    engine's way (``_nearest``: an integer factor k, then a stretch) composes to PyTorch's nearest
    table index for index, or is None; and it is None only where no factor of primes up to 15 gives a
    stretch of period and step up to 15 (up to ``LONG_PHASES`` along rows or a 1-D map; 7 rows from 59,
    299 from 8, 227 from 13) or where PyTorch's
    table, its scale rounded to float32, is not floor(i * small / big) (22 rows from 26: row 12, not 13,
    at i = 11)."""
    import itertools
    import math

    from xaihls.frontend.reference import nearest_index
    from xaihls.plan.capabilities import LONG_PHASES, Gather, _nearest

    refused = []
    for small, big, long in itertools.product(range(1, 61), range(1, 61), (False, True)):
        way = _nearest(small, big, long)
        if way is None:
            refused.append((small, big, long))
            continue
        k, gather = way
        if gather is None:
            got = [i // k for i in range(big)]
        else:
            got = [None] * big
            for a in range(gather.period):
                for j in range(gather.count(a)):
                    got[a + j * gather.period] = (gather.starts[a] + j * gather.step) // k
            assert gather.reads <= k * small
            assert long or gather.period <= 15 and gather.step <= 15
        assert got == nearest_index(small, big).tolist(), (small, big, way)
    for small, big, long in refused:  # every stretch longer than the phases allow, or a float32 table none makes
        most = LONG_PHASES if long else 15
        assert (nearest_index(small, big).tolist() != [i * small // big for i in range(big)]
                or all(big // math.gcd(big, k * small) > most or k * small // math.gcd(big, k * small) > most
                       for k in range(1, big + 1) if max(_factors(k), default=1) <= 15)), (small, big, long)
    for small, big in ((3, 28), (5, 28), (6, 28), (12, 98), (9, 20), (10, 22), (12, 100), (13, 100), (9, 6)):
        assert _nearest(small, big) is not None, (small, big)  # pools of a 28-, 98-, 100-long input; a padded map
    assert _nearest(8, 299) is None and _nearest(13, 227) is None and _nearest(59, 7) is None
    assert _nearest(11, 187) is None and _nearest(11, 187, long=True) == (1, Gather(17, 1, (0,) * 17, 187))
    assert _nearest(13, 227, long=True) is None  # 227 is prime: 227 phases
    assert len([r for r in refused if r[2]]) < len([r for r in refused if not r[2]])


def _factors(k: int) -> list[int]:
    return [p for p in range(2, k + 1) if k % p == 0 and all(p % q for q in range(2, p))]


def test_upsampling_stages_take_columns_first_a_prime_at_a_time_then_rows_in_few_stages():
    """A stage of (fy, fx) moves fx times its output: columns on the map's few rows, largest prime
    first; rows after, in the fewest stages of at most 15, the largest last; a column stage of 2 and a
    row stage of 2 side by side share one."""
    from xaihls.plan.capabilities import upsampling_stages

    assert upsampling_stages((32, 32)) == [(1, 2)] * 5 + [(4, 1), (8, 1)]
    assert upsampling_stages((2, 2)) == [(2, 2)] and upsampling_stages((16, 4)) == [(1, 2), (2, 2), (8, 1)]
    assert upsampling_stages((1, 1)) == [(1, 1)]
    assert upsampling_stages((7, 1)) == [(7, 1)]
    assert upsampling_stages((45, 12)) == [(1, 3), (1, 2), (1, 2), (3, 1), (15, 1)]


def test_a_map_needing_a_prime_factor_past_the_stride_is_refused_naming_the_layer():
    """A 1x1 map of a 17x17 input: 17 is prime and past the 15 of a job's output stride."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 17), nn.ReLU(), nn.Flatten(), nn.Linear(4, 3)).eval()
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model, (1, 17, 17), calibration=torch.rand(8, 1, 17, 17), methods=("grad_cam",),
                       backends=("golden", "program"))
    message = str(e.value)
    assert "\n" not in message and "grad_cam_layer '0': its 1x1 map" in message, message
    assert "prime factors are at most 15" in message, message


def _big_map_net() -> nn.Module:
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.MaxPool2d(4), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)).eval()


@pytest.mark.parametrize("sums", [True, False])
def test_channel_weights_summed_in_the_write_back_take_maps_past_one_jobs_passes(sums, monkeypatch):
    """The channel weights are the mean of the layer's gradient over its map: a job of one pass a
    pixel (at most 31 a side), or a global average pool's sum in the write-back, a grid of blocks
    (``lowering.CAM_SUMS``). A 40x40 map (layer '0' of a 1 x 40 x 40 net) runs only summed, bit-exact
    on program and csim; without the sums it is refused in one line. On the 20 x 20 map of layer '2',
    summed or not, the Program is bit-exact; the encoder without a cost model keeps the summed job."""
    from xaihls.plan import lowering

    monkeypatch.setattr(lowering, "CAM_SUMS", sums)
    shape = (1, 40, 40)
    for layer in ("0", "2"):
        config = {"grad_cam_layer": layer}
        kwargs = dict(calibration=torch.rand(8, *shape), methods=CAMS, config=config,
                      backends=("golden", "program", "csim"))
        if layer == "0" and not sums:
            with pytest.raises(XaiHlsError) as e:
                xaihls.compile(_big_map_net(), shape, **kwargs)
            assert "\n" not in str(e.value) and "grad_cam_layer '0': its map is 40x40" in str(e.value)
            continue
        acc = xaihls.compile(_big_map_net(), shape, **kwargs)
        weights = next(d for d in acc.plan.program.cam if d.has(Flag.DIAG))  # after A's recomputation
        assert weights.has(Flag.SUM) or not sums
        x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(5))
        for method in CAMS:
            g = acc.run(x, method)
            assert (g.attribution != 0).any(), (layer, method)
            for backend in ("program", "csim"):
                r = acc.run(x, method, backend=backend)
                assert torch.equal(r.attribution, g.attribution), (layer, method, backend)
    engine, buffers = SHAPES["16x8"]
    acc = xaihls.compile(_big_map_net(), shape, calibration=torch.rand(8, *shape), methods=CAMS,
                         config={"grad_cam_layer": "2"}, backends=("golden",))
    weights = next(d for d in encode(lower_jobs(acc.qgraph, engine), buffers).cam if d.has(Flag.DIAG))
    assert weights.has(Flag.SUM) == sums


def test_a_map_longer_than_the_write_backs_sums_is_refused_naming_the_layer():
    """A 1-D model whose last conv's map is 227 long, a prime: the sum in the write-back covers 15 blocks
    of 15 pixels a side, and a 1-D map read as rows of a divisor of its length (300 as 20 x 15) has
    none to read it by."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    with pytest.raises(XaiHlsError) as e:
        xaihls.compile(model, (2, 227), calibration=torch.rand(8, 2, 227), methods=("grad_cam",),
                       backends=("golden", "program"))
    message = str(e.value)
    assert "\n" not in message and "grad_cam_layer '0': its map is 1x227" in message, message
    assert "at most 225 pixels a side, a longer 1-D map as rows of a divisor of its length" in message, message


def test_ds_cnns_map_upsampled_with_its_last_row_cropped_is_bit_exact():
    """DS-CNN's 25 x 5 map of its 49 x 10 input: PyTorch's nearest table from 25 rows to 49 is row
    i // 2, so the engine upsamples by 2 x 2 and its odd rows' phase writes 24 rows, not 25."""
    from xaihls.plan.capabilities import upsampling

    acc, x = _compiled("ds_cnn", None)
    assert [(str(gy), str(gx)) for gy, gx in upsampling(acc.qgraph)] == [("2", "2")]
    engine, buffers = SHAPES["16x8"]
    program = encode(lower_jobs(acc.qgraph, engine), buffers)
    assert sorted({d.oh for d in program.cam if d.osy == 2}) == [24, 25]
    x_q = quantize_input(acc.qgraph, x)[0]
    for method in CAMS:
        g = acc.run(x, method)
        logits, target, attr, _ = run_batch(program, x_q, METHOD_CODES[method], None, 3, "trapezoid", None)
        assert torch.equal(logits, g.logits) and torch.equal(attr, g.attribution), method


@pytest.mark.parametrize("kind,seed", [("leaky_head_net", 0), ("branchy_net", 4), ("leaky_net", 0)])
def test_the_grad_cam_prefix_counts_the_tiled_jobs_of_a_sum_run_a_block_at_a_time(kind, seed):
    """The Grad-CAM list runs after the backward list's jobs of the layers past its layer. lower_jobs
    counts them in its own jobs; a gradient sum or Add the tiler runs a block at a time (a twin of
    several jobs) before the cut moved it, and the engines read a gradient half written (every one
    of 15 leaky_head_net seeds wrong on the program until 2026-12-06; csim and the RTL read the same
    header). The header counts the tiled jobs: every job of the prefix is a later layer's, none after
    it is."""
    import tests.random_nets as nets

    model, shape, calibration = getattr(nets, kind)(seed)
    acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=3, methods=CAMS, backends=("golden",))
    cam_layer = acc.qgraph.graph.tensor_index(acc.qgraph.cam_layer) - 1
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
    x_q = quantize_input(acc.qgraph, x)[0]
    for engine, buffers in SHAPES.values():
        program = encode(lower_jobs(acc.qgraph, engine), buffers)
        n = program.header["n_backward_cam"]
        assert all(d.layer > cam_layer for d in program.backward[:n])
        assert all(d.layer <= cam_layer for d in program.backward[n:])
        for method in CAMS:
            g = acc.run(x, method)
            logits, target, attr, _ = run_batch(program, x_q, METHOD_CODES[method], None, 3, "trapezoid", None)
            assert torch.equal(logits, g.logits) and torch.equal(attr, g.attribution), (method, engine)
