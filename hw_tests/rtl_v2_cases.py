"""Shared cases of the Engine v2 RTL tests: compiled nets, their Programs at a few engine shapes,
one Verilator build per shape (parameters covering every net), memoized simulations."""

from __future__ import annotations

import functools

import numpy as np
import torch

import xaihls
from tests.random_nets import (branchy_net, concat_net, conv1d_net, cropped_map_net, dense_block_net, dilated_net,
                               edge_net, fork_net, leaky_head_net, leaky_net, long_map_net, long_pool_net, narrow_net,
                               padded_net, pool_net, random_dag_net, random_net, raw_audio_net, residual_conv_net,
                               shuffle_net, small_map_net, stem_net, stretched_map_net, windowed_pool_net)
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import RtlV2Params, rtl_params
from xaihls.executor import quantize_input
from xaihls.methods import METHOD_CODES, METHODS, PREDICT_CODE
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.contract import engine_starts, image_view
from xaihls.plan.lowering import Buffers, Shape, lower
from xaihls.sim.interpreter import Engine as Interpreter
from xaihls.sim.interpreter import run_batch

NETS = ("digits", "digits_strided_bn", "digits_gap", "random301", "random305", "pools3", "pools8")
# edge layers (tests.random_nets.edge_net): ReLU6 forward (RAP + RELU6) and backward (BWD_RELU + RELU6) in
# each; edge6 a padded max-pool right after a depthwise conv (no ReLU: windows whose maximum is negative),
# edge14 one after a ReLU6 (zeros tie with the pads), a BatchNorm as an affine and grouped convs; edge45
# depthwise and grouped convs, every one with a ReLU6
EDGE_NETS = ("edge6", "edge14", "edge45")
# residual nets (two-source jobs: residual adds and gradient sums): digits_resnet (an identity block and a
# projection shortcut after a padded max-pool), digits_mobilenet (inverted residuals: depthwise, ReLU6),
# dag4 (tests.random_nets.random_dag_net: the input image added, a depthwise branch, projections),
# dag20 (a 3-channel input); tests.random_nets.residual_conv_net: residual2 (x + conv(x) on 12 channels, the
# conv's output gradient a copy of the Add's), residual3 (a pre-activation block: x read by a per-channel
# affine and the Add), residual5 (a ResNet-D shortcut: x read by a stride-2 conv and a padded average pool);
# tests.random_nets.concat_net: concat1 (a fire module's cat of two convs' outputs, a ReLU after it), concat4
# (DenseNet steps: x read by a per-channel affine and by the cat)
# tests.random_nets.dense_block_net: dense0 a torchvision-style DenseNet block of four layers (each cats every
# feature before it; the front end makes them cats of two, each reading the one before);
# tests.random_nets.shuffle_net: shuffle0 two ShuffleNetV2 units of stride 1 on 24 channels (channel
# selections: the split halves, each a shuffle composed with a split, a gradient sum of two placements);
# shuffle1 a downsampling unit on a 7 x 5 map first (its input's gradient summed a stride phase at a time,
# a copy of each phase of the 1 x 1 conv's gradient beside the depthwise one's; phases of unequal size)
DAG_NETS = ("digits_resnet", "digits_mobilenet", "dag4", "dag20", "residual2", "residual3", "residual5", "concat1",
            "concat4", "dense0", "shuffle0", "shuffle1")
# tests.random_nets.leaky_net: LeakyReLU and PReLU as a scaled map plus a ReLU of it (a gradient sum of an
# Add and a per-channel affine at the scaled map): leaky0 a PReLU after a stride-2 conv, a depthwise residual
# block with leaky_relu(0.2); leaky10 PReLUs of one slope a channel after depthwise convs and BatchNorms;
# tests.random_nets.leaky_head_net: a hidden Linear's activation (the affine, ReLU and Add on its features):
# mlphead2 a PReLU of one slope a feature, mlphead5 a LeakyReLU(0.2)
LEAKY_NETS = ("leaky0", "leaky10", "mlphead2", "mlphead5")
# tests.random_nets.dilated_net (each dilated conv run as its spread, its jobs a tap step apart): dilated2 a
# 1-D net of dilations 8 and 4 (tap step 2: 9 and 5 passes a row); dilated5 2-D, a conv of dilation (2, 1)
# read beside a residual add (a gradient sum's merged grid at step (2, 1)), depthwise ones of dilation (1, 3);
# dilated10 1-D, a conv of dilation 2 (step 2 both ways), then residual blocks of a dense conv and a
# depthwise one of dilation 3 (each a reader of a gradient sum, the second's at step 3)
DILATED_NETS = ("dilated2", "dilated5", "dilated10")
# tests.random_nets.branchy_net (readers the engines cannot sum over moved onto exact copies, dag.with_copies):
# branchy1 two Inception-style blocks of max-pool and 1 x 1 branches (three readers of each block's input, two
# max-pools among them); branchy2 y + ReLU(y) + x + x (a rectifier beside an Add, an Add of one operand to
# itself); branchy3 a stride-2 3 x 3 conv beside a stride-1 one, then a block of four branches
BRANCHY_NETS = ("branchy1", "branchy2", "branchy3")
# tests.random_nets.windowed_pool_net (average pools whose windows have different divisors: a job a region of
# one reciprocal forward, a job a region of input pixels in each stride phase backward): windowed3 a 5 x 5 pool
# of stride 3, padding 2 not counted, ceil mode (9 stride phases); windowed5 Inception's pool branch (a
# 'same' pool on a copy of the map) and a ceil-mode 3 x 3 pool of stride 3 whose last windows overhang the
# padding; windowed23 four such pools on a 6 x 5 map, one on a copy, strides 1 and 2
WINDOWED_NETS = ("windowed3", "windowed5", "windowed23")
# tests.random_nets.fork_net (maps read by two layers of different strides or output sizes, the main path's
# convolution and an exit; a reader that cannot be a term beside an exact copy of the map reads one): fork1 a
# global pool exit and a stride-3 conv on a 7 x 10 map, each on a copy, then a stride-2 exit beside a 1 x 1
# conv (a mixed sum); fork8 a stride-4 exit on a copy beside a 1 x 1 conv, a stride-3 5 x 5 conv on a copy
# beside a 3 x 3 one, a global pool on a copy beside a 1 x 1 conv; fork17 a global pool and a valid 3 x 3
# conv each on a copy, a global pool on a copy beside a stride-2 conv (mixed with the copy), a stride-2 exit
# beside a 3 x 3 conv on a copy (mixed)
FORK_NETS = ("fork1", "fork8", "fork17")
# 1-D nets (tests.random_nets.conv1d_net, input (C, L)), their maps as columns (lowering.ONE_D_COLUMNS) and,
# with ROWS after the name, as one row: conv1d1024 a global pool of 38 samples summed over a ragged grid
# (13 positions of 3 passes, the last reading one sample past the map), a depthwise conv and a BatchNorm1d
# folded into a hidden Linear; conv1d5 a ceil-mode max-pool and an average pool; conv1d1 a depthwise conv
# after a max-pool
ROWS = "_rows"
ONE_D_NETS = ("conv1d1024", "conv1d5", "conv1d1", "conv1d1024" + ROWS, "conv1d5" + ROWS, "conv1d1" + ROWS)
# tests.random_nets.long_pool_net: global pools over a 1-D map of 300 (read as 20 rows of 15) and of 1000
# (200 rows of 5, ragged grids); at 16 x 8 only (a global pool reads its whole map, which the 4 x 4 shape's
# buffers do not hold)
LONG_POOL_NETS = ("longpool300", "longpool1000")
# tests.random_nets.raw_audio_net: images longer than a job's map, as the phases of the first convolution's stride
# (capabilities.image_phases), its backward one stride-1 job writing them all: rawaudio1 M5's first layer on 8,000
# samples (16 channels of 500), rawaudio2 2 channels of 4,800 padded 5 (16 channels of 600, the kernel a tap into its
# first row); at 16 x 8
RAW_AUDIO_NETS = ("rawaudio1", "rawaudio2")
# tests.random_nets.stem_net: 2-D images whose first convolution runs on the stride's phases as channels
# (capabilities.image_phases, lowered so here; the planner weighs it): stem1 a MobileNet's 3 x 3 stride-2 stem on
# 3 x 16 x 16 (12 channels of 8 x 8), stem3 a grouped 4 x 4 kernel of stride 3 (18 channels of 4 x 6); on sides the
# stride does not divide (the view's edge rows and columns written by jobs of their own, lowering.phase_edges): stem5
# 13 rows at stride 2 (DS-CNN's case), stem6 a ResNet stem and its fused max-pool on 15 x 17; at 16 x 8
STEM_NETS = ("stem1", "stem3", "stem5", "stem6")
# stem1 and stem5 compiled with the Grad-CAM methods too: their maps' upsampling follows the phases
# (capabilities.cam_follows_phases): stem1's by 2, by 1 on the view; stem5's 7 x 5 to 13 x 10, 7 x 5 on the view,
# whose last row is half past the image
PHASE_CAM_NETS = ("stem1", "stem5")
# tests.random_nets.padded_net: convolutions with unequal zero padding (a pad folded in, 'same' with even
# kernels): padded2 a depthwise stride-2 conv padded (2, 1) columns and (2, 2) rows, padded4 'same' with a
# 2 x 4 kernel, padded7 a depthwise 4 x 4 kernel padded on one side only
PADDED_NETS = ("padded2", "padded4", "padded7")
# nets compiled with the Grad-CAM methods too (a Grad-CAM list: the layer's activations recomputed, its
# channel weights written where the next job reads its weights, nearest upsampling by output strides);
# dag20's 2 x 3 map is upsampled by 2 and repeated over the input's 3 channels; tests.random_nets.small_map_net:
# smallmap2's 3 x 1 map upsampled by 16 (columns by 2, 2, 2, then 2 x 2, rows by 8), smallmap13's 3 x 2 map by
# 16 x 12 over 3 channels (columns by 3, 2, then 2 x 2, rows by 8; past one job's output stride of 15:
# capabilities.upsampling_stages); tests.random_nets.cropped_map_net: cropmap2's 13 x 6 map by 4 (columns by 2, 2,
# rows by 4, the last stage writing 51 of its 52 rows)
STAGED_CAM_NETS = ("smallmap2", "smallmap13", "cropmap2")
# tests.random_nets.stretched_map_net: maps whose PyTorch nearest table is no integer factor, gathered in phases
# of input stride Q and output stride P (capabilities.upsampling): stretched6's 3 x 5 map to 28 x 16 (columns by 2,
# 2 then 4/5, rows by 4 then 7/3), stretched4's 12 x 12 map of a 12 x 6 input (every second column), stretched2's
# 9 x 10 map to 3 x 20 x 22 (columns 11/5, rows by 4 then 5/9)
# tests.random_nets.long_map_net: periods past a job's strides (capabilities.LONG_PHASES), the phases' rows as maps
# of their own: longmap3's 7 x 4 map to 17 x 8 (columns by 2, rows 17/7); the 1-D maps' samples as rows of one
# pixel (their maps as columns, lowering.ONE_D_COLUMNS): longmap2's 11 to 187 (by 17), longmap4's 12 to 96 (by 2,
# 2, 2)
GATHERED_CAM_NETS = ("stretched6", "stretched4", "stretched2", "longmap3")
ONE_D_CAM_NETS = ("longmap2", "longmap4")
CAM_NETS = ("digits_resnet", "digits_mobilenet", "dag20", *STAGED_CAM_NETS, *GATHERED_CAM_NETS)
CAMS = ("grad_cam", "guided_grad_cam")
# random chains from tests.random_nets, named <kind><seed>
# narrow<width>: tests.random_nets.narrow_net, two rows of <width> columns through padded pools of stride 1
RANDOM_NETS = {"random": random_net, "pools": pool_net, "edge": edge_net, "dag": random_dag_net, "narrow": narrow_net,
               "residual": residual_conv_net, "concat": concat_net, "conv1d": conv1d_net, "longpool": long_pool_net,
               "padded": padded_net, "dense": dense_block_net, "shuffle": shuffle_net, "leaky": leaky_net,
               "dilated": dilated_net, "branchy": branchy_net, "mlphead": leaky_head_net,
               "windowed": windowed_pool_net, "fork": fork_net, "smallmap": small_map_net,
               "cropmap": cropped_map_net, "stretched": stretched_map_net, "longmap": long_map_net,
               "rawaudio": raw_audio_net, "stem": stem_net}
# the nets whose pools' passes must not chain (a grid of Tn columns, two rows, a row off the map)
NARROW_NETS = {"4x4": "narrow4", "16x8": "narrow8"}
# (Tm, Tn, beat elements) and buffers: a small array with row tiles, the 16 x 8 engine, a 128-bit one,
# and 32 x 8 (four lane groups: LANES jobs of four columns)
SHAPES = {
    "4x4": (Shape(4, 4, 4), Buffers(256, 64, 1024)),
    "16x8": (Shape(16, 8, 4), Buffers(4096, 1024, 4096)),
    "16x8_128bit": (Shape(16, 8, 8), Buffers(4096, 1024, 4096)),
    "32x8": (Shape(32, 8, 4), Buffers(4096, 1024, 4096)),
}
IG_STEPS = 3
# integrated gradients on the batched lists: a batch of 2 steps, then one step on the plain lists;
# digits_gap keeps a Program without batched lists
BATCH = {"digits_gap": 1}
STALL_PROBABILITY = 0.3
METHOD_LIST = (None, *METHODS)


def compiled(name: str):
    """(QGraph owner, one input image) for a zoo net or a random net ('random<seed>', 'pools<seed>',
    'edge<seed>', 'dag<seed>', 'narrow<width>', 'residual<seed>', 'concat<seed>'; a 1-D one's maps as one row
    with ``ROWS`` after it), compiled with the methods of ``method_list``."""
    return _compiled(name.removesuffix(ROWS))


@functools.lru_cache(maxsize=None)
def _compiled(name: str):
    kind = next((k for k in RANDOM_NETS if name.startswith(k)), None)
    if kind is not None:
        seed = int(name.removeprefix(kind))
        model, shape, calibration = RANDOM_NETS[kind](seed)
        acc = xaihls.compile(model, shape, calibration=calibration, ig_steps=IG_STEPS, methods=method_list(name)[1:],
                             backends=("golden",))
        x = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed)) * calibration.abs().max() * 1.2
        return acc, acc.graph.as_maps(x)  # a 1-D net's image as the (C, 1, L) map the engine reads
    entry = get_zoo_model(name)
    acc = xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:16], ig_steps=IG_STEPS,
                         methods=method_list(name)[1:], backends=("golden",))
    return acc, entry.samples()[0][:1]


def method_list(name: str) -> tuple:
    """Predict (None) and every method the net is compiled with."""
    return (*METHOD_LIST, *CAMS) if name in CAM_NETS + ONE_D_CAM_NETS + PHASE_CAM_NETS else METHOD_LIST


@functools.lru_cache(maxsize=None)
def program(name: str, shape: str):
    acc, _ = compiled(name)
    return lower(acc.qgraph, *SHAPES[shape], batch=BATCH.get(name, 2), as_columns=not name.endswith(ROWS),
                 as_phases=True if name in STEM_NETS else None)


@functools.lru_cache(maxsize=None)
def shared_params(shape: str) -> RtlV2Params:
    """One parameter set (one Verilator build) that runs every test net at this shape."""
    params = None
    extra = ((LONG_POOL_NETS + RAW_AUDIO_NETS + STEM_NETS if shape == "16x8" else ())
             + (ONE_D_CAM_NETS if shape in ("4x4", "16x8") else ()) + ((NARROW_NETS[shape],) if shape in NARROW_NETS else ()))
    for name in (NETS + EDGE_NETS + DAG_NETS + ONE_D_NETS + PADDED_NETS + LEAKY_NETS + DILATED_NETS + BRANCHY_NETS
                 + WINDOWED_NETS + FORK_NETS + STAGED_CAM_NETS + GATHERED_CAM_NETS + extra):
        p = rtl_params(program(name, shape))
        params = p if params is None else params.covering(p)
    return params


def runs(name: str, methods: tuple | None = None) -> list[dict]:
    """One simulation run per method (None: predict; default ``method_list``) on the net's sample image."""
    acc, x = compiled(name)
    methods = method_list(name) if methods is None else methods
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    table = sim.ig_table(IG_STEPS, "trapezoid", acc.qgraph.width)
    return [{"image": x_q, "baseline": np.zeros_like(x_q), "ig_table": table,
             "method": PREDICT_CODE if m is None else METHOD_CODES[m], "target": -1, "steps": IG_STEPS,
             "name": m or "predict"} for m in methods]


@functools.lru_cache(maxsize=None)
def expected(name: str, shape: str) -> list[dict]:
    """The golden model's logits, target and attribution, and the interpreter's saturation counters."""
    acc, x = compiled(name)
    prog = program(name, shape)
    x_q = quantize_input(acc.qgraph, x)[0][0].numpy()
    out = []
    for m in method_list(name):
        g = acc.run(x, m, steps=IG_STEPS) if m else acc.run(x)
        engine = Interpreter(prog)
        engine.load_inputs(x_q, None, IG_STEPS, "trapezoid")
        ref = engine.run(PREDICT_CODE if m is None else METHOD_CODES[m], -1, IG_STEPS)[0]  # one image: one Run
        out.append({"name": m or "predict", "logits": g.logits[0].numpy(), "target": int(g.target[0]),
                    "attribution": None if m is None else as_image(acc.graph.as_maps(g.attribution)[0].numpy(), prog,
                                                                        acc.graph.input_shape[0], m == "grad_cam"),
                    "result": [ref.predicted, ref.target, *ref.saturations]})
    return out


def as_image(maps: np.ndarray, prog, channels: int, cam: bool = False) -> np.ndarray:
    """Maps (..., C', H, W) at the input's size, of a network whose image has ``channels``, in the shape of the
    Program's image (its header's in_c x in_h x in_w, as the RTL's attributions come back, ``contract.image_view``:
    an image may run as its first stride's phases). A Grad-CAM map (``cam``: one channel) is channel 0 of that view
    of the map repeated over the image's channels, as the host reads the engine's."""
    h = prog.header
    if cam:
        maps = np.repeat(maps, channels, axis=-3)
        return np.stack([image_view(m, h)[:1] for m in maps.reshape(-1, *maps.shape[-3:])]).reshape(
            *maps.shape[:-3], 1, h["in_h"], h["in_w"])
    return np.stack([image_view(m, h) for m in maps.reshape(-1, *maps.shape[-3:])]).reshape(
        *maps.shape[:-3], h["in_c"], h["in_h"], h["in_w"])


def simulated(name: str, shape: str, stalls: float = 0.0, ddr_latency: int | None = None, memory: str = "sv"):
    """The RTL's results of ``runs`` (a SimRuns list); ``memory="axiram"``:
    cocotbext-axi's AxiRam as the DDR (the protocol-test mode). Memoized by value, however the
    arguments are spelled (positional, keyword or default), so tests share a simulation."""
    return _simulated(name, shape, stalls, ddr_latency, memory)


@functools.lru_cache(maxsize=None)
def _simulated(name: str, shape: str, stalls: float, ddr_latency: int | None, memory: str):
    return sim.simulate(program(name, shape), shared_params(shape), runs(name), stalls=stalls,
                        seed=sum(map(ord, name + shape)), ddr_latency=ddr_latency, memory=memory)


# ---- image batches: N = batch + 1 images, so one image-batch start and one single start follow
IMAGE_METHODS = tuple(m for m in METHOD_LIST if m != "integrated_gradients")


@functools.lru_cache(maxsize=None)
def batch_images(name: str, shape: str) -> torch.Tensor:
    """batch + 1 distinct images of the net: its test image shifted along its rows."""
    _, x = compiled(name)
    return torch.cat([x.roll(3 * k, dims=-1) for k in range(program(name, shape).batch + 1)])


def batch_targets(name: str, shape: str) -> list[int]:
    """Explicit targets, one per image, most of them not the predicted class."""
    classes = program(name, shape).header["classes"]
    return [(classes - 1 - 2 * k) % classes for k in range(program(name, shape).batch + 1)]


def batch_runs(name: str, shape: str) -> list[dict]:
    """Predict and every method but integrated gradients, with the predicted class and with explicit
    targets: per (method, targets) the engine starts of ``engine_starts``, an image batch first."""
    acc, _ = compiled(name)
    x_q = quantize_input(acc.qgraph, batch_images(name, shape))[0].numpy()
    prog = program(name, shape)
    table = sim.ig_table(IG_STEPS, "trapezoid", acc.qgraph.width)
    out = []
    for targets in (None, batch_targets(name, shape)):
        wanted = [-1] * len(x_q) if targets is None else targets
        for m in IMAGE_METHODS:
            code = PREDICT_CODE if m is None else METHOD_CODES[m]
            for first, count in engine_starts(len(x_q), prog.batch, code):
                run = {"image": x_q[first], "baseline": np.zeros_like(x_q[first]), "ig_table": table, "method": code,
                       "target": wanted[first], "steps": IG_STEPS, "name": m or "predict", "first": first,
                       "count": count, "targets": wanted[first: first + count], "explicit": targets is not None}
                if count > 1:
                    run["images"] = x_q[first: first + count]
                out.append(run)
    return out


@functools.lru_cache(maxsize=None)
def batch_expected(name: str, shape: str, method: str | None, explicit: bool) -> dict:
    """Golden's logits, targets and attributions of the batch_images (``explicit``: for
    batch_targets, else the predicted classes), and the interpreter's result records
    (``run_batch``: the same engine starts; an image batch's counters in its first record)."""
    acc, _ = compiled(name)
    xs = batch_images(name, shape)
    t = torch.tensor(batch_targets(name, shape)) if explicit else None
    g = acc.run(xs, method, target=t)
    code = PREDICT_CODE if method is None else METHOD_CODES[method]
    logits, picked, _, counters = run_batch(program(name, shape), quantize_input(acc.qgraph, xs)[0], code, t,
                                            IG_STEPS, "trapezoid", None)
    # predict: golden reports the predicted class, the engine's record the target it was given
    assert torch.equal(logits, g.logits) and (method is None or torch.equal(picked, g.target))
    return {"logits": g.logits.numpy(), "target": g.target.numpy(),
            "attribution": None if method is None else as_image(acc.graph.as_maps(g.attribution).numpy(),
                                                                program(name, shape), acc.graph.input_shape[0],
                                                                method == "grad_cam"),
            "result": [[int(np.argmax(g.logits[k].numpy())), int(picked[k]), *counters[k]] for k in range(len(xs))]}


@functools.lru_cache(maxsize=None)
def batch_simulated(name: str, shape: str, stalls: float = 0.0, ddr_latency: int | None = None):
    """The RTL's results of ``batch_runs`` (a SimRuns list, one entry per engine start)."""
    return sim.simulate(program(name, shape), shared_params(shape), batch_runs(name, shape), stalls=stalls,
                        seed=sum(map(ord, "batch" + name + shape)), ddr_latency=ddr_latency)
