"""What each executor can run, checked in one place when a network is compiled.

Every executor of a Program implements one contract (``xaihls.plan.contract``): the field
widths of a job are the engine's limits (largest stride, pool window, map size, channels...),
and encoding a Program refuses, naming the layer and the field, a network that exceeds them,
so every executor takes what the contract takes. What is left to an executor are the limits of
its build: the data width it computes in and the array shapes its parameters allow. An
executor states them as ``xaihls.executor.Capabilities``; ``refusal`` checks a plan against them.
``xaihls.compile`` calls it for every backend, so a network an executor cannot run is refused
when it is compiled, never by the engine later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities
from xaihls.frontend.ir import (Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Linear,
                                MaxPool2d, ReLU, ReLU6)
from xaihls.frontend.reference import nearest_index
from xaihls.plan.contract import DESCRIPTOR, HEADER, field_limit
from xaihls.plan.dag import canon, structure
from xaihls.methods import ALL_METHODS, LAYER_METHODS
from xaihls.quant.qgraph import rows_kernel

PROGRAM_LAYERS = (Conv2d, Linear, ReLU, ReLU6, MaxPool2d, AvgPool2d, ChannelAffine, Flatten, Add, Concat, ChannelSelect)
"""The layers a Program job runs (docs/contract.md); everything else the front end takes is golden-only for now."""


def _layer_refusal(q) -> str | None:
    layer = q.layer
    kind = type(layer).__name__
    if not isinstance(layer, PROGRAM_LAYERS):
        return (f"layer '{layer.name}' ({kind}) is golden-only for now: the engine runs Conv2d (any "
                "groups), Linear, ReLU, ReLU6, MaxPool2d, AvgPool2d, BatchNorm2d, Flatten, Add, cat and channel "
                "selections")
    if isinstance(layer, Concat) and len(layer.inputs) != 2:
        return (f"layer '{layer.name}' (cat of {len(layer.inputs)} tensors) is golden-only for now: the engine "
                "concatenates two (write it as cats of two)")
    return None


IMAGE_PHASES = True
"""Whether an image may run as the stride phases of its first convolution (``image_phases``): a 1-D model's where
it is longer than a job's map or read at a longer stride than a job steps, and any where the planner finds it
faster; False: never (such 1-D images refused, as before 2026-12-06; to measure)."""


def image_phases(graph) -> int | None:
    """The stride s whose phases the image can run as (``qgraph.image_as_phases``): a 1-D model's samples s apart
    as s·C channels; a 2-D image's pixels s apart along both dimensions as s²·C channels where the stride is
    (s, s) and both sides are at least s (so that no 2-D image is a side of 1, which the host would take for a
    1-D model's samples: ``contract.image_view``). A side s does not divide ends in a part row or column of
    phases (the pixels past the image zeros). The first convolution must alone read the image and not be dilated,
    its stride be more than 1, and the map and the kernel it becomes fit a job's fields; None where no such view
    exists."""
    if not IMAGE_PHASES or not graph.layers or not isinstance(graph.layers[0], Conv2d):
        return None
    layer, (c, h, w) = graph.layers[0], graph.input_shape
    if list(graph.consumers[0]) != [0] or layer.dilated:
        return None
    if graph.sample_shape is not None:  # 1-D: the samples along w, as a column of phases
        s, sides, taps = layer.stride[1], (w,), [(layer.kernel[1], layer.padding[1])]
    elif layer.stride[0] == layer.stride[1]:
        s, sides, taps = layer.stride[0], (h, w), list(zip(layer.kernel, layer.padding))
    else:
        return None
    kernel = [rows_kernel(k, s, pad)[2] for k, pad in taps]
    fits = (all(k <= field_limit(DESCRIPTOR, "ky") for k in kernel)
            and -(-max(sides) // s) <= field_limit(DESCRIPTOR, "ih")
            and c * s ** len(sides) <= field_limit(HEADER, "in_c"))
    return s if s > 1 and min(sides) >= s and fits else None


def phases_needed(graph) -> bool:
    """Whether the image runs only as its first stride's phases (``image_phases``): it has more rows or columns
    (a 1-D model's samples) than a job's map holds, or its first convolution a longer stride than a job steps."""
    if not image_phases(graph):
        return False
    layer = graph.layers[0]
    return max(graph.input_shape[1:]) > field_limit(DESCRIPTOR, "ih") or (
        max(layer.stride) > field_limit(DESCRIPTOR, "isx") and max(layer.out_shape[1:]) > 1)


def cam_follows_phases(qg) -> bool:
    """Whether the Grad-CAM map of ``qg`` can be upsampled on the image's phase view (``image_phases``): PyTorch's
    nearest table from the map to a side takes pixel s·y + a to the entry the table from the map to the view's
    side (ceil(side / s)) takes y to, for every phase a of a pixel in the image (an integer factor s divides, for
    one; DS-CNN's 25 rows to 49 at stride 2 too), and the engine makes the view's table (``upsampling``). Then the
    map upsampled to the view is, in every phase channel, the map upsampled to the image, and the host reads it
    back a view pixel to s x s image pixels (``contract.network_image``, s from the header's channels). Past the
    image the view holds map values the host drops: copies, which do not saturate, and guided Grad-CAM's products
    there are of a zero gradient (``lowering.phase_edges``)."""
    from xaihls.quant.qgraph import image_as_phases, maps_as_columns  # after this module in the import order

    graph, s = qg.graph, image_phases(qg.graph)
    if not s or qg.cam_layer is None:
        return False
    _, h, w = graph.layers[graph.tensor_index(qg.cam_layer) - 1].out_shape
    _, in_h, in_w = graph.input_shape
    for small, big, strided in ((h, in_h, graph.sample_shape is None), (w, in_w, True)):
        if strided and any(a != b for a, b in zip(nearest_index(small, big).tolist(),
                                                   nearest_index(small, -(-big // s)).repeat_interleave(s).tolist())):
            return False
    view = image_as_phases(maps_as_columns(qg) if graph.sample_shape else qg, s)
    try:
        upsampling(view)
    except XaiHlsError:
        return False
    return True


def _map_refusal(graph) -> str | None:
    """A map with more rows or columns (a 1-D model's samples) than a job's fields hold: one line naming the
    tensor, or None. A 1-D model's longer image may run as its first stride's phases (``image_phases``)."""
    side = field_limit(DESCRIPTOR, "ih")
    for k in range(len(graph.layers) + 1):
        shape = graph.tensor_shape(k)
        if len(shape) == 3 and max(shape[1:]) > side and not (k == 0 and image_phases(graph)):
            what = "the input has" if k == 0 else f"layer '{graph.layers[k - 1].name}' outputs"
            size = f"{shape[2]} samples" if graph.sample_shape else f"a {shape[1]}x{shape[2]} map"
            longer = (", or a longer image as the phases of the first convolution's stride where the convolution "
                      f"alone reads it and its stride leaves at most {side} samples a phase"
                      if k == 0 and graph.sample_shape and IMAGE_PHASES else "")
            return f"{what} {size}; the engine's jobs take maps of at most {side} a side{longer}"
    return None


def rectifiers_in_a_row(graph) -> str | None:
    """A ReLU/ReLU6 reading a ReLU/ReLU6's output (through Flattens), which no job runs: one line, or None.
    The front end merges such a pair where the first one's output feeds nothing else; a pair whose
    first output another layer reads too, or a Graph made by hand, can have them."""
    layers = graph.layers
    for j, layer in enumerate(layers):
        t = canon(graph, graph.input_tensors[j][0])
        if isinstance(layer, (ReLU, ReLU6)) and t > 0 and isinstance(layers[t - 1], (ReLU, ReLU6)):
            return (f"layers '{layers[t - 1].name}' and '{layer.name}': two rectifiers in a row, which "
                    "the engine does not run (the front end merges a pair whose first output feeds nothing else)")
    return None


def graph_refusal(caps: Capabilities, qg) -> str | None:
    """Why an executor cannot run ``qg``'s graph or methods (one line), or None; checked before any
    plan is made, so no chain-only code of the planner or the engines sees such a graph."""
    return program_refusal(qg) if caps.needs_plan else None


UPSAMPLING_STAGES = True
"""The Grad-CAM map is upsampled in stages (``upsampling_stages``: the columns a prime factor at a
time, then the rows in the fewest stages), so a factor with no prime above a job's output stride
(15) runs: a ResNet's or a MobileNet's 32. False: one stage of the whole factor, at most 15, as
before (to measure)."""


UPSAMPLING_CROP = True
"""A Grad-CAM map whose input is not a multiple of it is upsampled by ceil(input / map) with the last
rows or columns cropped, where PyTorch's nearest table is row i // factor there too
(``upsampling``); False: the input must be a multiple of the map (to measure)."""


UPSAMPLING_GATHER = True
"""A Grad-CAM map whose PyTorch nearest table is not row i // factor (7 rows from 3, 12 from 9, 6
from 9) is gathered in phases after an integer upsampling (``upsampling``); False: refused, as
before (to measure)."""


UPSAMPLING_LONG = True
"""A stretch along rows, or along the columns of a map of one row, takes up to ``LONG_PHASES`` phases
and steps (its jobs view the tensors as rows that far apart); False: 15, as along columns (to
measure)."""


@dataclass(frozen=True)
class Gather:
    """One dimension of a stage of the Grad-CAM map's nearest upsampling: ``size`` destination
    indices, index a + j * ``period`` reading source index ``starts[a]`` + j * ``step``, each a
    one-by-one job a phase a < period (its output stride ``period``, its input stride ``step``).
    An integer factor f is period f, step 1, every start 0; a stretch by P / Q (P and Q coprime) is
    period P, step Q."""

    period: int
    step: int
    starts: tuple[int, ...]
    size: int

    def count(self, a: int) -> int:
        """The destination indices phase ``a`` writes."""
        return max(0, -(-(self.size - a) // self.period))

    @property
    def reads(self) -> int:
        """The source indices the stage reads: its source's size for the next stage back."""
        return max(self.starts[a] + (self.count(a) - 1) * self.step + 1 for a in range(self.period) if self.count(a))

    def __str__(self) -> str:
        return str(self.period) if self.step == 1 and not any(self.starts) else f"{self.period}/{self.step}"


def _factor(f: int) -> Gather:
    """An integer factor f (1: the dimension as it is), its size set by ``upsampling``."""
    return Gather(f, 1, (0,) * f, 0)


def _primes(k: int) -> list[int]:
    """The prime factors of ``k`` >= 1, largest first, with repeats."""
    out, p = [], 2
    while k > 1:
        while k % p == 0:
            out.append(p)
            k //= p
        p += 1
    return out[::-1]


def _row_factors(k: int, most: int) -> list[int]:
    """``k`` as factors of at most ``most`` (its primes being at most that), smallest first, with the
    least sum of running products (the rows each stage writes, over the map's): 32 as 4 then 8."""
    best: tuple[int, list[int]] | None = None

    def walk(rest: int, run: int, cost: int, chosen: list[int]) -> None:
        nonlocal best
        if rest == 1:
            if best is None or cost < best[0]:
                best = (cost, chosen)
            return
        for f in range(2, min(rest, most) + 1):
            if rest % f == 0:
                walk(rest // f, run * f, cost + run * f, chosen + [f])

    walk(k, 1, 0, [])
    return sorted(best[1]) if best else []


def upsampling_stages(factors: tuple[int, int]) -> list[tuple[int, int]]:
    """The stages (rows, columns) of a nearest upsampling by the integer ``factors``, each a job a
    phase (``_stages``): their factors."""
    return [(gy.period, gx.period) for gy, gx in _stages(factors)]


def _stages(factors: tuple[int, int], stretches: tuple[Gather | None, Gather | None] = (None, None)
            ) -> list[tuple[Gather, Gather]]:
    """The stages (rows, columns) of a nearest upsampling by the integer ``factors``, then the
    ``stretches`` (rows, columns; ``_nearest``), each a job a phase, their sizes not yet set. A phase
    job writes every fy-th row of its stage's output and, on each, a run over the columns with
    strobes on the pixels of the other fx - 1 column phases, so a stage of (fy, fx) moves fx times its
    output's beats: columns cost, rows do not. So the columns go first, on the map's few rows, a prime
    factor a stage, largest first, then their stretch; then the rows, in the fewest stages of at most
    15 (the output-stride field), the largest last, then their stretch, the last stage writing the
    whole output once. A last column stage of 2 and a first row stage of 2 share one (the same beats
    either way, one stage's job edges fewer: 2 x 2 stays one stage). Nearest upsampling by a then by
    b is nearest upsampling by a * b: row i of the result reads row (i // b) // a = i // (a * b). With
    ``UPSAMPLING_STAGES`` off (and so no stretch): one stage of the whole factors."""
    fy, fx = factors
    if not UPSAMPLING_STAGES:
        return [(_factor(fy), _factor(fx))]
    rows, columns = stretches
    one, two = _factor(1), _factor(2)
    cols = [(one, _factor(p)) for p in _primes(fx)] + ([(one, columns)] if columns else [])
    stages = cols + [(_factor(q), one) for q in _row_factors(fy, field_limit(DESCRIPTOR, "osy"))]
    stages += [(rows, one)] if rows else []
    k = len(cols)
    if 0 < k < len(stages) and stages[k - 1] == (one, two) and stages[k] == (two, one):
        stages[k - 1:k + 1] = [(two, two)]
    return stages or [(one, one)]


LONG_PHASES = 64
"""The most phases (and the longest step) of a stretch along rows, or along the columns of a map of one
row, whose phase jobs view the tensors as rows ``period`` (``step``) rows apart (``in_row_bytes``,
``out_row_bytes``), past a job's output and input strides: a 1-D map of 11 to 187 samples (17
phases)."""


JOB_PIXELS = 128
"""What one more phase job costs in ``_nearest``'s rough count, in one-channel pixels written: a job's
start and end take some 250 cycles on the pynq-z2 plan (benchmarks/RESULTS.md, "Grad-CAM maps whose
nearest table is no integer factor"), a pixel of a one-channel map two beats of a 64-bit bus."""


def _nearest(small: int, big: int, long: bool = False) -> tuple[int, Gather | None] | None:
    """How the engine makes PyTorch's nearest table from ``small`` indices to ``big``: an integer
    factor k (``upsampling_stages``), the last indices cropped where ``big`` is not k * small, and
    where the table is not i // k, then a stretch (``Gather``) from k * small indices to ``big`` of
    period P = big / gcd(big, k * small) and step Q = k * small / gcd: index y reads y * k * small //
    big, whose integer division by k is y * small // big (and must equal PyTorch's table, which takes
    its scale in float32). Of the k whose stretch fits a job's strides (15; ``LONG_PHASES`` where the
    dimension is ``long``: rows, or a map of one row's columns), the cheapest by a rough count: its
    phase jobs (k's prime factors summed, and P) at ``JOB_PIXELS`` each, and the pixels its stages
    write; the least k of those; None where none fits. 3 to 28 is 4 then 7/3 (4 + 7 phases; 2 then
    14/3 would be 2 + 14), 62 to 1,000 is 20 then 25/31 (by 100 then 5/31 would be 15 jobs fewer and
    22,600 pixels more). The cycle model prices the jobs made, whichever k this picks."""
    most = field_limit(DESCRIPTOR, "osy")
    period_most, step_most = (LONG_PHASES, LONG_PHASES) if long else (most, field_limit(DESCRIPTOR, "isy"))
    table = nearest_index(small, big).tolist()
    k = -(-big // small)
    if (table == [i // k for i in range(big)] and (UPSAMPLING_CROP or big % small == 0)
            and (max(_primes(k), default=1) if UPSAMPLING_STAGES else k) <= most):
        return k, None
    if not (UPSAMPLING_GATHER and UPSAMPLING_STAGES):
        return None
    best = None
    for k in range(1, big + 1):
        n = k * small
        g = math.gcd(big, n)
        primes = _primes(k)
        if max(primes, default=1) > most or big // g > period_most or n // g > step_most:
            continue
        jobs = JOB_PIXELS * (sum(primes) + big // g)  # k's stages' phases (at most: rows merge some), P
        if best is not None and jobs >= best[0]:
            continue
        moved, length = big, small  # the pixels the stages write, a stage of f moving f times its output
        for f in primes:
            length *= f
            moved += f * length
        stretched = [y * n // big for y in range(big)]
        if (best is None or jobs + moved < best[0]) and [t // k for t in stretched] == table:
            best = jobs + moved, k, Gather(big // g, n // g, tuple(stretched[:big // g]), big)
    return None if best is None else best[1:]


def upsampling(qg) -> list[tuple[Gather, Gather]]:
    """The stages (rows, columns) by which the Grad-CAM map is upsampled to the input, the first
    reading the map, the last writing the input's size; XaiHlsError, one line naming the layer, where
    the engine cannot make PyTorch's nearest table (``_nearest``). The integer factors' stages and
    the stretches (``_stages``), each stage's sizes those the later stages read (the last rows or columns cropped where the input
    is not a multiple of the map)."""
    graph = qg.graph
    name = qg.cam_layer
    _, h, w = graph.layers[graph.tensor_index(name) - 1].out_shape
    _, in_h, in_w = graph.input_shape
    ways = []
    for what, small, big in (("rows", h, in_h), ("columns", w, in_w)):
        long = UPSAMPLING_LONG and (what == "rows" or h == in_h == 1)
        way = _nearest(small, big, long)
        if way is None:
            most = field_limit(DESCRIPTOR, "osy")
            factor = (f"an integer factor whose prime factors are at most {most}" if UPSAMPLING_STAGES
                      else f"an integer factor of at most {most}")
            stretch = (f" nor such a factor and a stretch by P/Q of P and Q at most {LONG_PHASES if long else most}"
                       if UPSAMPLING_GATHER and UPSAMPLING_STAGES else "")
            raise XaiHlsError(f"grad_cam_layer '{name}': its {h}x{w} map is upsampled to the {in_h}x{in_w} input, and "
                              f"PyTorch's nearest table from {small} {what} to {big} is neither {factor}{stretch}")
        ways.append(way)
    (ky, rows), (kx, columns) = ways
    sized, need = [], (in_h, in_w)
    for fy, fx in reversed(_stages((ky, kx), (rows, columns))):
        fy, fx = replace(fy, size=need[0]), replace(fx, size=need[1])
        sized.append((fy, fx))
        need = fy.reads, fx.reads
    assert need[0] <= h and need[1] <= w, (need, h, w)
    return sized[::-1]


def cam_refusal(qg) -> str | None:
    """Why the Program cannot run the Grad-CAM methods of ``qg`` (one line naming the layer), or None:
    the channel weights are a job of one pass a pixel of the layer's map, or its sum in the write-back
    (a grid of blocks, as a global average pool's), the upsampling one ``upsampling`` makes."""
    from xaihls.plan.lowering import CAM_SUMS, sum_split, sum_view  # lowering imports this module

    graph = qg.graph
    name = qg.cam_layer
    if phases_needed(graph) and not cam_follows_phases(qg):
        s, (_, h, w) = image_phases(graph), graph.input_shape
        image, phases = (f"{w} samples", s) if graph.sample_shape else (f"{h}x{w} image", f"{s}x{s}")
        return (f"grad_cam upsamples its map to the input's {image}, which the engine reads as the {phases} phases "
                "of the first convolution's stride: no nearest table of the pixels follows them")
    _, h, w = graph.layers[graph.tensor_index(name) - 1].out_shape
    passes = field_limit(DESCRIPTOR, "ky")
    if max(h, w) > passes and (not CAM_SUMS or sum_split(*sum_view(h, w)) is None):
        side = field_limit(DESCRIPTOR, "pool_kh") * field_limit(DESCRIPTOR, "isy")
        longer = ", a longer 1-D map as rows of a divisor of its length" if CAM_SUMS and min(h, w) == 1 else ""
        return (f"grad_cam_layer '{name}': its map is {h}x{w}; the engine averages the layer's gradient over at most "
                f"{side if CAM_SUMS else passes} pixels a side{longer} (choose a later layer)")
    try:
        upsampling(qg)
    except XaiHlsError as exc:
        return str(exc)
    return None


def program_refusal(qg) -> str | None:
    """Why no Program can be made for ``qg`` (one line naming the layer, tensor or method), or None."""
    graph = qg.graph
    for q in qg.layers:
        what = _layer_refusal(q)
        if what is not None:
            return what
    what = rectifiers_in_a_row(graph) or _map_refusal(graph)
    if what is not None:
        return what
    try:
        structure(graph)
    except XaiHlsError as e:
        return str(e)
    for method in qg.methods:
        if method not in ALL_METHODS:
            return f"method '{method}' is golden-only for now: the engine has no code for it"
    if any(method in LAYER_METHODS for method in qg.methods):
        return cam_refusal(qg)
    return None


def refusal(caps: Capabilities, plan) -> str | None:
    """Why the executor cannot run ``plan`` (one line), or None."""
    if not caps.needs_plan:
        return None
    name = caps.executor
    engine = plan.engine
    width = plan.program.header["data_width"]
    if caps.data_widths is not None and width not in caps.data_widths:
        widths = ", ".join(map(str, caps.data_widths))
        return (f"the {name} engine computes in {widths}-bit fixed point; this network is quantized to "
                f"{width} bits (set width: {caps.data_widths[0]} in the quantization config)")
    if caps.array_sizes is not None and not (engine.tm in caps.array_sizes and engine.tn in caps.array_sizes):
        return (f"the {name} engine takes Tm and Tn from {', '.join(map(str, caps.array_sizes))}; "
                f"the tiling is {engine.tm}x{engine.tn}")
    return None
