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

from xaihls.executor import Capabilities


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
