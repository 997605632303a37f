"""What each executor can run, checked in one place when a network is compiled.

An executor states its limits as ``xaihls.executor.Capabilities``; ``refusal`` checks a plan (the Program
and the engine it was tiled for) against them and names the first layer at fault. ``xaihls
.compile`` calls it for every backend, so a network an executor cannot run is refused when it
is compiled, never by the engine later.
"""

from __future__ import annotations

from xaihls.executor import Capabilities
from xaihls.frontend.ir import MaxPool2d
from xaihls.plan.program import Descriptor, Flag, Op


def _layer_name(plan, d: Descriptor, pool: bool = False) -> str:
    """The layer a job comes from; ``pool``: the max-pool a CONV job fuses."""
    layers = plan.program.qgraph.graph.layers
    index = d.layer
    if pool and d.op == Op.CONV:
        index = next(k for k in range(d.layer + 1, len(layers)) if isinstance(layers[k], MaxPool2d))
    return f"'{layers[index].name}'" if index < len(layers) else "the logits"


def _bit_layouts(d: Descriptor) -> list[tuple[int, object]]:
    """(mask_base, layout) of every ReLU-bit access of a job: 'flat', or (channels, plane)."""
    def layout(c: int, p: int):
        return "flat" if c == 1 or p == 1 else (c, p)

    out = []
    f = Flag(d.flags)
    if d.op == Op.CONV:
        if f & Flag.RELU:
            out.append((d.mask_base, layout(d.m, d.oh * d.ow if f & Flag.POOL else d.oph * d.opw)))
        if f & Flag.RELU_AFTER_POOL:
            out.append((d.mask_base, layout(d.m, d.pool_oh * d.pool_ow)))
        if f & Flag.BWD_RELU:
            out.append((d.mask_base, layout(d.m, d.oph * d.opw)))
    elif d.op in (Op.MAXPOOL, Op.AVGPOOL) and f & Flag.RELU_AFTER_POOL:
        out.append((d.mask_base, layout(d.n, d.pool_oh * d.pool_ow)))
    elif d.op in (Op.MAXPOOL_BWD, Op.AVGPOOL_BWD) and f & Flag.BWD_RELU:
        out.append((d.mask_base, layout(d.n, d.ih * d.iw)))
    elif d.op == Op.RELU or (d.op == Op.SEED and f & Flag.BWD_RELU):
        out.append((d.mask_base, "flat"))
    return out


def refusal(caps: Capabilities, plan) -> str | None:
    """Why the executor cannot run ``plan`` (one line naming the layer), or None."""
    if not caps.needs_plan:
        return None
    name = caps.executor
    program, engine = plan.program, plan.engine
    h = program.header
    if caps.data_widths is not None and h.data_width not in caps.data_widths:
        widths = ", ".join(map(str, caps.data_widths))
        return (f"the {name} engine computes in {widths}-bit fixed point; this network is quantized to "
                f"{h.data_width} bits (set width: {caps.data_widths[0]} in the quantization config)")
    if caps.array_sizes is not None and not (engine.tm in caps.array_sizes and engine.tn in caps.array_sizes):
        return (f"the {name} engine takes Tm and Tn from {', '.join(map(str, caps.array_sizes))}; "
                f"the tiling is {engine.tm}x{engine.tn}")
    seen: dict[int, tuple[object, str]] = {}
    for direction, jobs in (("forward", program.forward), ("backward", program.backward)):
        for d in jobs:
            where = f"layer {_layer_name(plan, d)} ({direction})"
            pool = d.op in (Op.MAXPOOL, Op.AVGPOOL, Op.MAXPOOL_BWD, Op.AVGPOOL_BWD) or (
                d.op == Op.CONV and d.flags & Flag.POOL)
            if pool:
                where = f"layer {_layer_name(plan, d, pool=True)} ({direction})"
            if pool and caps.square_pools and (d.pool_kh != d.pool_kw or d.pool_sh != d.pool_sw):
                return (f"{where}: the {name} engine pools with square windows and strides only; got window "
                        f"{d.pool_kh}x{d.pool_kw}, stride {d.pool_sh}x{d.pool_sw}")
            if pool and caps.max_pool_side is not None and max(d.pool_kh, d.pool_kw) > caps.max_pool_side:
                return (f"{where}: the {name} engine pools windows up to {caps.max_pool_side}x{caps.max_pool_side}; "
                        f"got {d.pool_kh}x{d.pool_kw}")
            if d.op == Op.CONV and caps.max_output_stride is not None and max(d.osx, d.osy) > caps.max_output_stride:
                return (f"{where}: the {name} engine writes gradients with strides up to {caps.max_output_stride}; "
                        f"this layer's stride is {max(d.osx, d.osy)}")
            if d.op == Op.CONV and caps.max_bias_shift is not None and d.bias_shift > caps.max_bias_shift:
                return (f"{where}: the bias is {d.bias_shift} bits coarser than the accumulator; the {name} engine "
                        f"shifts it by at most {caps.max_bias_shift} (give the bias a finer format in the config)")
            if caps.one_bit_layout:
                for base, lay in _bit_layouts(d):
                    first = seen.setdefault(base, (lay, where))
                    if first[0] != lay:
                        return (f"{where}: the {name} engine reads ReLU bits in the layout they were written in; "
                                f"this job reads them as {lay}, {first[1]} wrote {first[0]}")
    return None
