"""How the engine runs a graph that is not a chain: residual adds and tensors read by two layers.

Both become two-source CONV jobs (docs/engine_v2.md, "Residual adds and gradient sums"): a job
whose input blocks are two tensors stored next to each other, each source's operands shifted
to one fraction, so that a sum of two terms is one accumulator and one rounding, as the golden
model computes it (docs/dag.md):

- **An Add** is a 1 x 1 job over its two operands (the identity on each source's diagonal); the
  compiler stores the two operand tensors side by side (an operand that is the input image is
  copied there first).
- **The gradient at a tensor read by two layers** is one transposed job over the gradients at the
  two readers' outputs, stored side by side: a convolution's rotated kernel on its source, the
  identity (an Add's) on the other, their stride phases merged into one pass grid.

This module decides the structure from the graph alone (which tensors sit side by side, where
each gradient is stored) and refuses, in one line naming the tensor or layer, a graph the two
sources cannot express. The lowering (``xaihls.plan.lowering``) builds the jobs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Graph, ReLU, ReLU6

RECTIFIERS = (ReLU, ReLU6)
LINEAR_READERS = (Conv2d, Add, Concat, ChannelAffine, AvgPool2d, ChannelSelect)
"""Layers whose backward is a linear map of their output gradient alone: a two-source job sums them."""


def canon(graph: Graph, t: int) -> int:
    """A tensor's first alias: a Flatten's output is its input's bytes."""
    layers, reads = graph.layers, graph.input_tensors
    while t > 0 and isinstance(layers[t - 1], Flatten):
        t = reads[t - 1][0]
    return t


def grad_dest(graph: Graph, t: int) -> tuple[int, int | None]:
    """Where the gradient at tensor ``t`` is written, and the rectifier whose rule its writer applies:
    a rectifier's output gradient is stored at the rectifier's input, the rule applied (the
    rectifier's input has no other reader: ``structure`` refuses that)."""
    t = canon(graph, t)
    if t > 0 and isinstance(graph.layers[t - 1], RECTIFIERS):
        return canon(graph, graph.input_tensors[t - 1][0]), t - 1
    return t, None


def grad_store(graph: Graph, t: int, copies: frozenset[int] = frozenset()) -> int:
    """The tensor whose gradient buffer holds the gradient at ``t``: an Add's operand that only the Add
    reads has the Add's output gradient itself (the same values, the same format), unless a rule
    must be applied to it first or it is one of ``copies`` (``DagPlan.copies``: a buffer of its own)."""
    key, rule = grad_dest(graph, t)
    users = graph.consumers[key]
    if rule is None and key not in copies and len(users) == 1 and isinstance(graph.layers[users[0]], Add):
        return grad_store(graph, users[0] + 1, copies)
    return key


@dataclass(frozen=True)
class DagPlan:
    """``adds``: Add or Concat layer -> its operand tensors (first, second), stored side by side in that
    order (one job reads both).
    ``sums``: tensor read by two layers -> the readers (first, second); their output gradients are
    stored side by side in that order (``sources``: the gradient buffers, by ``grad_store``).
    ``copies``: Add operands that keep a gradient buffer of their own, a copy of the Add's gradient,
    because that gradient is the other term of the sum their producer's input takes (``x + conv(x)``:
    the two terms of the gradient at x would be one buffer).
    ``mixed``: tensors whose readers are a strided layer and a 1 x 1 convolution of stride 1 (``mixed``)."""

    adds: dict[int, tuple[int, int]]
    sums: dict[int, tuple[int, int]]
    sources: dict[int, tuple[int, int]]
    copies: frozenset[int] = frozenset()
    mixed: frozenset[int] = frozenset()

    def pairs(self) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
        """(activation tensor -> (first, second) of its pair, gradient buffer -> (first, second) of its pair;
        a mixed sum's buffers are no pair: its first lies beside a copy of the second's phases)."""
        act = {t: pair for pair in self.adds.values() for t in pair}
        grad = {k: pair for t, pair in self.sources.items() if t not in self.mixed for k in pair}
        return act, grad


def _reader_refusal(graph: Graph, t: int, readers: tuple[int, ...]) -> str | None:
    layers = graph.layers
    name = graph.tensor_names[t]
    kinds = ", ".join(f"'{layers[r].name}' ({type(layers[r]).__name__})" for r in readers)
    if len(readers) > 2:
        return (f"tensor '{name}' is read by {len(readers)} layers ({kinds}); the engine sums the gradients of "
                "two readers (one two-source job)")
    if any(not summable(layers[r]) for r in readers):
        return (f"tensor '{name}' is read by {kinds}; the engine sums the gradients of two readers only where "
                "each is a Conv2d, an Add, a cat, a channel selection, a per-channel affine or an average pool "
                "of one divisor")
    if mixed(graph, readers) or mixed(graph, readers[::-1]):
        return None
    strided = [layers[r] for r in readers if isinstance(layers[r], (Conv2d, AvgPool2d))]
    strides = {c.stride for c in strided} | ({(1, 1)} if len(strided) < len(readers) else set())
    if len(strides) > 1:
        return (f"tensor '{name}' is read by {kinds} with different strides; the engine sums the gradients of "
                "two readers of one stride, or of a strided one and a 1 x 1 convolution of stride 1")
    shapes = {tuple(layers[r].out_shape[1:]) for r in readers}
    if len(shapes) > 1:
        return (f"tensor '{name}' is read by {kinds}, whose outputs differ in size; the engine sums the "
                "gradients of two readers whose outputs have one size")
    return None


def summable(layer) -> bool:
    """Whether a reader's gradient can be a term of a two-source sum: a LINEAR_READERS layer whose term
    is one kernel for the whole map (not an average pool whose windows have different divisors)."""
    return isinstance(layer, LINEAR_READERS) and not (isinstance(layer, AvgPool2d) and layer.windowed)


MIXED_PHASES = 4
"""The most stride phases a ``mixed`` sum runs, a copy job and a sum job each: ShuffleNetV2's stride 2. A
reader of more (a stride of 3 or 4, a global pool) beside a pointwise one reads an exact copy of the map
instead (``with_copies``), whose sum with the other is one job."""


def phased(layer, shape: tuple[int, ...]) -> bool:
    """Whether ``layer``, reading a map of ``shape``, can be the first reader of a ``mixed`` sum: a strided
    convolution or average pool of at most MIXED_PHASES stride phases whose output is as large as a
    stride phase of the map."""
    if not (isinstance(layer, (Conv2d, AvgPool2d)) and layer.stride != (1, 1)):
        return False
    (_, h, w), (_, oh, ow), (sy, sx) = shape, layer.out_shape, layer.stride
    return sy * sx <= MIXED_PHASES and oh >= -(-h // sy) and ow >= -(-w // sx)


def mixed(graph: Graph, readers: tuple[int, ...]) -> bool:
    """Two readers, (strided, 1 x 1 convolution of stride 1 or per-channel affine) in that order
    (ShuffleNetV2's downsampling unit; a copy ``with_copies`` made): the gradient sum reads the second's
    gradient one stride phase at a time from a copy beside the first's (the lowering's ``gradient_sum``),
    so the two need not have one stride."""
    if len(readers) != 2:
        return False
    a, b = (graph.layers[r] for r in readers)
    pointwise = isinstance(b, ChannelAffine) or (isinstance(b, Conv2d) and b.kernel == (1, 1) and b.stride == (1, 1)
                                                 and b.padding == (0, 0) and not b.uneven)
    return pointwise and phased(a, b.out_shape)


def structure(graph: Graph) -> DagPlan:
    """The side-by-side tensors of ``graph`` (a chain: none); XaiHlsError, one line, where the engine
    cannot run it."""
    layers, reads, users = graph.layers, graph.input_tensors, graph.consumers
    names = graph.tensor_names
    for j, layer in enumerate(layers):
        if isinstance(layer, RECTIFIERS):
            t = canon(graph, reads[j][0])
            if len(users[t]) > 1:
                raise XaiHlsError(
                    f"tensor '{names[t]}' is read by '{layer.name}' ({type(layer).__name__}) and by other layers; "
                    "the engine applies a rectifier's backward rule only to a tensor the rectifier alone reads")
    adds: dict[int, tuple[int, int]] = {}
    paired: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, (Add, Concat)):
            continue
        a, b = reads[i]
        if a == b and isinstance(layer, Concat):
            raise XaiHlsError(f"layer '{layer.name}' concatenates tensor '{names[a]}' with itself; the engine "
                              "reads two tensors stored side by side")
        if a == b:
            raise XaiHlsError(f"layer '{layer.name}' adds tensor '{names[a]}' to itself; the engine adds two "
                              "tensors (write it as a multiplication by 2)")
        for t in (a, b):
            if canon(graph, t) != t:
                raise XaiHlsError(f"layer '{layer.name}' adds a flattened tensor '{names[t]}'; the engine adds maps "
                                  "(add before the Flatten)")
            if t in paired:
                raise XaiHlsError(f"tensor '{names[t]}' is an operand of '{layers[paired[t]].name}' and of "
                                  f"'{layer.name}'; the engine stores an operand next to one other")
            paired[t] = i
        adds[i] = (a, b)
    sums: dict[int, tuple[int, int]] = {}
    sources: dict[int, tuple[int, int]] = {}
    shared = {t: readers for t, readers in enumerate(users[:-1]) if len(readers) >= 2}
    shared = {t: readers[::-1] if mixed(graph, readers[::-1]) else readers for t, readers in shared.items()}
    for t, readers in shared.items():
        why = _reader_refusal(graph, t, readers)
        if why is not None:
            raise XaiHlsError(why)
    # x + conv(x): the conv's output gradient is the Add's, the other term of the gradient at x; the
    # conv's output keeps a copy of its own so that the two terms are two buffers side by side
    copies = set(k for readers in shared.values()
                 if grad_store(graph, readers[0] + 1) == grad_store(graph, readers[1] + 1)
                 for k in (grad_dest(graph, r + 1)[0] for r in readers)
                 if k != grad_store(graph, readers[0] + 1))
    # an Add both of whose operands other layers read too: its gradient is a term of both sums; one
    # operand keeps a copy of it (a buffer of its own), as above
    while (clash := _shared_buffer(graph, shared, frozenset(copies))) is not None:
        t, other, own = clash
        if own is None:
            raise XaiHlsError(f"the gradients summed at tensor '{names[t]}' and at tensor '{names[other]}' share a "
                              "buffer; the engine stores each gradient next to one other")
        copies.add(own)
    copies = frozenset(copies)
    for t, readers in shared.items():
        sums[t] = readers
        sources[t] = tuple(grad_store(graph, r + 1, copies) for r in readers)
    return DagPlan(adds, sums, sources, copies, frozenset(t for t, readers in sums.items() if mixed(graph, readers)))


def is_copy(layer) -> bool:
    """A per-channel affine of scale 1 and shift 0: an exact copy (``with_copies``)."""
    return isinstance(layer, ChannelAffine) and bool((layer.scale == 1).all()) and not bool(layer.shift.any())


def unweighted(layer) -> bool:
    """A reader whose term of a gradient sum is its output gradient itself (its weight a power of two
    the sum chooses): an Add's, a cat's, a selection's, a copy's (``with_copies``). The lowering sums
    such terms as identities, and calibration aligns them as the lowering will."""
    return isinstance(layer, (Add, Concat, ChannelSelect)) or is_copy(layer)


def _shared_buffer(graph: Graph, shared: dict, copies: frozenset) -> tuple[int, int, int | None] | None:
    """The first gradient buffer two terms of the sums take (tensor, the other sum's tensor, a reader's
    output that a buffer of its own would free it, or None), or None where each term has its own."""
    taken: dict[int, tuple[int, int]] = {}
    for t, readers in shared.items():
        pair = [grad_store(graph, r + 1, copies) for r in readers]
        for r, k in zip(readers, pair):
            if k in taken or pair[0] == pair[1]:
                other, first = taken.get(k, (t, readers[0]))
                own = [o for o in (grad_dest(graph, x + 1)[0] for x in (r, first)) if o != k and o not in copies]
                return t, other, own[0] if own else None
            taken[k] = t, r
    return None


def with_copies(graph: Graph) -> Graph:
    """``graph`` with an exact copy of a map (a per-channel affine of scale 1, ``<tensor>.copy<k>``) in
    front of the readers the engine cannot sum the map's gradient over, one at a time until none is
    left (``_copy_move``): among several readers, a rectifier, a max-pool, an average pool whose
    windows have different divisors or any layer outside LINEAR_READERS (on a copy of its own); a
    second Add or cat of one operand, or an Add of the map to itself (the second operand); past two
    readers, the second and later ones (on one copy, which with the first makes two; the copy's
    readers are routed in turn); the first operand of an Add both of whose operands other layers
    read too (its gradient would be a term of two sums); of two readers of different strides or
    output sizes, the one that cannot be a term beside a copy (``_beside_a_copy``; a reader of stride
    1 beside a strided one, whose sum then takes the copy's gradient a stride phase at a time, as a
    pointwise conv's: ``mixed``), or both. A chain, and a graph the engine runs as it is, come back
    unchanged. A copy's gradient rounds once more, in every executor (docs/dag.md, "Tensors read by
    many layers")."""
    for _ in range(4 * len(graph.layers) + 8):
        move = _copy_move(graph)
        if move is None:
            return graph
        graph = _with_copy(graph, *move)
    raise AssertionError("with_copies: no fixed point")  # each move leaves a reader fewer a tensor


def _copy_move(graph: Graph) -> tuple[int, list[tuple[int, int]]] | None:
    """The first (tensor, [(reader, operand position)]) to move onto a new copy of the tensor, or None."""
    layers, users, reads = graph.layers, graph.consumers, graph.input_tensors
    for t, readers in enumerate(users[:-1]):
        if len(readers) < 2 or canon(graph, t) != t or len(graph.tensor_shape(t)) != 3:
            continue
        slots = [(r, k) for r in readers for k, s in enumerate(reads[r]) if s == t]
        alone = [(r, k) for r, k in slots if not summable(layers[r])]
        if alone:
            return t, alone[:1]
        joins = [(r, k) for r, k in slots if isinstance(layers[r], (Add, Concat))]
        if len(joins) > 1:
            return t, joins[1:2]
        if len(readers) > 2:
            return t, [(r, k) for r, k in slots if r != readers[0]]
        for r, k in joins:  # an Add whose other operand other layers read too: its gradient would be a
            # term of two sums; on a copy that the Add alone reads, the term of this one is the copy's
            if len(users[reads[r][1 - k]]) > 1 and k == 0:
                return t, [(r, k)]
        if len(readers) == 2 and _reader_refusal(graph, t, tuple(readers)) is not None:
            # two strides (a strided reader beside one of stride 1, two strides both past 1), or outputs of
            # two sizes: a reader that can be a term beside a copy of the map stays (a strided one first: with
            # the copy it makes a ``mixed`` sum), the other reads the copy; where neither can, each reads one
            stays = sorted((r for r in readers if _beside_a_copy(layers[r], graph.tensor_shape(t))),
                           key=lambda r: getattr(layers[r], "stride", (1, 1)) == (1, 1))
            moved = next(r for r in readers[::-1] if r not in stays[:1])
            return t, [(r, k) for r, k in slots if r == moved]
    return None


def _beside_a_copy(layer, shape: tuple[int, int, int]) -> bool:
    """Whether a reader of a map of ``shape`` and an exact copy of the map make a sum the engine runs:
    a reader of stride 1 whose output has the map's size (one stride, one size), or the first reader of a
    ``mixed`` sum (``phased``)."""
    if getattr(layer, "stride", (1, 1)) == (1, 1):
        return tuple(layer.out_shape[1:]) == tuple(shape[1:])
    return phased(layer, shape)


def _with_copy(graph: Graph, t: int, moved: list[tuple[int, int]]) -> Graph:
    """``graph`` with a copy of tensor t placed after its producer, the readers' operands ``moved`` reading it."""
    names = graph.tensor_names
    taken = set(names)
    k = 0
    while f"{names[t]}.copy{k}" in taken:
        k += 1
    shape = graph.tensor_shape(t)
    copy = ChannelAffine(f"{names[t]}.copy{k}", shape, shape, torch.ones(shape[0]), torch.zeros(shape[0]),
                         inputs=(names[t],))
    layers = []
    for i, layer in enumerate(graph.layers):
        if i == t:  # tensor t's producer is layer t - 1: the copy goes before layer t
            layers.append(copy)
        ins = list(graph.input_tensors[i])
        inputs = tuple(copy.name if (i, j) in moved else names[s] for j, s in enumerate(ins))
        layers.append(dataclasses.replace(layer, inputs=inputs))
    return dataclasses.replace(graph, layers=tuple(layers))
