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

from dataclasses import dataclass

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
    if any(not isinstance(layers[r], LINEAR_READERS) for r in readers):
        return (f"tensor '{name}' is read by {kinds}; the engine sums the gradients of two readers only where "
                "each is a Conv2d, an Add, a cat, a channel selection, a per-channel affine or an average pool")
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


def mixed(graph: Graph, readers: tuple[int, ...]) -> bool:
    """Two readers, (strided, 1 x 1 convolution of stride 1) in that order (ShuffleNetV2's downsampling
    unit): the gradient sum reads the second's gradient one stride phase at a time from a copy beside
    the first's (the lowering's ``gradient_sum``), so the two need not have one stride."""
    if len(readers) != 2:
        return False
    a, b = (graph.layers[r] for r in readers)
    if not (isinstance(a, (Conv2d, AvgPool2d)) and a.stride != (1, 1) and isinstance(b, Conv2d)
            and b.kernel == (1, 1) and b.stride == (1, 1) and b.padding == (0, 0) and not b.uneven):
        return False
    (_, h, w), (_, oh, ow), (sy, sx) = b.out_shape, a.out_shape, a.stride
    return oh >= -(-h // sy) and ow >= -(-w // sx)  # the first's gradient as large as a phase of the second's


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
    taken: dict[int, int] = {}
    shared = {t: readers for t, readers in enumerate(users[:-1]) if len(readers) >= 2}
    shared = {t: readers[::-1] if mixed(graph, readers[::-1]) else readers for t, readers in shared.items()}
    for t, readers in shared.items():
        why = _reader_refusal(graph, t, readers)
        if why is not None:
            raise XaiHlsError(why)
    # x + conv(x): the conv's output gradient is the Add's, the other term of the gradient at x; the
    # conv's output keeps a copy of its own so that the two terms are two buffers side by side
    copies = frozenset(k for readers in shared.values()
                       if grad_store(graph, readers[0] + 1) == grad_store(graph, readers[1] + 1)
                       for k in (grad_dest(graph, r + 1)[0] for r in readers)
                       if k != grad_store(graph, readers[0] + 1))
    for t, readers in shared.items():
        pair = tuple(grad_store(graph, r + 1, copies) for r in readers)
        for k in pair:
            if k in taken or pair[0] == pair[1]:
                raise XaiHlsError(f"the gradients summed at tensor '{names[t]}' and at tensor "
                                  f"'{names[taken.get(k, t)]}' share a buffer; the engine stores each "
                                  "gradient next to one other")
            taken[k] = t
        sums[t] = readers
        sources[t] = pair
    return DagPlan(adds, sums, sources, copies, frozenset(t for t, readers in sums.items() if mixed(graph, readers)))
