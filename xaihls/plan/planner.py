"""The tiling planner: one engine for the whole network, chosen to minimise the workload's cycles.

Deterministic: candidates are enumerated in a fixed order and ties go to fewer DSPs, then
fewer BRAMs, then the smaller array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import MaxPool2d, ReLU
from xaihls.methods import METHODS, PostProcess
from xaihls.plan.boards import Board
from xaihls.plan.cost import (ARGMAX_CYCLES, HEADER_CYCLES, IG_TABLE_CYCLES, LOGITS_SAVE_CYCLES, JobCost, job_cost,
                              post_cycles)
from xaihls.plan.engine import AXI_DATA_BYTES, DDR_LATENCY, EngineConfig, ResourceEstimate, estimate_resources
from xaihls.plan.program import Header, Program, encode, lower_untiled
from xaihls.quant.qgraph import QGraph

ARRAY_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
IN_DEPTHS = (1024, 2048, 4096, 8192)
OUT_DEPTHS = (256, 512, 1024, 2048)


@dataclass(frozen=True)
class KeptMemory:
    """What the forward pass keeps for the backward pass, against keeping 16-bit activations."""

    relu_bits: int
    index_bits: int
    activation_bits: int  # 16-bit copies of every ReLU input and max-pool input instead

    @property
    def kept_bits(self) -> int:
        return self.relu_bits + self.index_bits

    @property
    def ratio(self) -> float:
        return self.activation_bits / self.kept_bits if self.kept_bits else math.inf


@dataclass(frozen=True, eq=False)
class Plan:
    board: Board
    engine: EngineConfig
    program: Program
    resources: ResourceEstimate
    forward_costs: tuple[JobCost, ...]
    backward_costs: tuple[JobCost, ...]
    kept: KeptMemory
    cap: float
    ig_steps: int
    method_cycles: dict[str, int] = field(default_factory=dict)

    @property
    def forward_cycles(self) -> int:
        return sum(c.cycles for c in self.forward_costs)

    @property
    def backward_cycles(self) -> int:
        return sum(c.cycles for c in self.backward_costs)

    def latency_ms(self, method: str = "predict") -> float:
        return self.method_cycles[method] / (self.engine.clock_mhz * 1e3)

    def utilization(self) -> dict[str, float]:
        """Per resource: estimate / board capacity."""
        have = self.board.resources.as_dict()
        return {k: (v / have[k] if have[k] else 0.0) for k, v in self.resources.as_dict().items()}

    @property
    def workload_methods(self) -> list[str]:
        """Prediction and the compiled methods, in the method table's order."""
        return ["predict"] + [m for m in METHODS if m in self.program.qgraph.methods]

    def summary(self) -> dict:
        """The plan's figures as plain data (what ``describe`` prints; a project's estimate.json)."""
        e = self.engine
        names = [layer.name for layer in self.program.qgraph.graph.layers] + ["logits"]
        return {
            "board": self.board.name, "part": self.board.part, "clock_mhz": e.clock_mhz, "tm": e.tm, "tn": e.tn,
            "in_depth": e.in_depth, "out_depth": e.out_depth, "w_depth": e.w_depth,
            "bytes_per_cycle": e.bytes_per_cycle, "ddr_latency": e.ddr_latency, "cap": self.cap,
            "ig_steps": self.ig_steps,
            "cycles": {m: self.method_cycles[m] for m in self.workload_methods},
            "latency_ms": {m: self.latency_ms(m) for m in self.workload_methods},
            "resources": self.resources.as_dict(), "capacity": self.board.resources.as_dict(),
            "resources_inference_only": estimate_resources(replace(e, backward=False)).as_dict(),
            "utilization": self.utilization(),
            "kept_bits": self.kept.kept_bits, "activation_bits": self.kept.activation_bits,
            "layers": [{"layer": names[c.layer], "direction": c.direction, "op": c.op, "cycles": c.cycles,
                        "bound": c.bound_cycles, "macs": c.macs, "memory_cycles": c.memory_cycles,
                        "mac_utilization": round(c.utilization(e.tm, e.tn), 6)}
                       for c in self.forward_costs + self.backward_costs],
        }


def kept_memory(qg: QGraph, program: Program) -> KeptMemory:
    layers = qg.graph.layers
    act = 0
    for i, layer in enumerate(layers):
        if isinstance(layer, ReLU) or (isinstance(layer, MaxPool2d) and not (i and isinstance(layers[i - 1], ReLU))):
            act += qg.width * math.prod(layer.in_shape)
    h = program.header
    return KeptMemory(h.mask_bits, h.index_entries * h.index_bits, act)


def method_cycles(header: Header, fwd: int, bwd: int, bpc: float, ig_steps: int,
                  ddr_latency: int = DDR_LATENCY) -> dict[str, int]:
    """Cycles of one run of each method (and of a prediction), controller steps included: the
    header read, the image copy, the forward list, the argmax and result; then the backward
    list and the post-processing pass, or, for integrated gradients, the logits kept and
    restored, a table read and a path point, both lists and an accumulation each step."""
    n = header.input_elems
    trip = ddr_latency - 1

    def post(streams: int) -> int:
        return post_cycles(n, bpc, streams, ddr_latency)

    cycles = {"predict": HEADER_CYCLES + trip + post(2) + fwd + ARGMAX_CYCLES + 2 * trip}
    for name, m in METHODS.items():
        if m.post is PostProcess.INTEGRATED:
            per_step = post(3) + fwd + bwd + post(1)
            cycles[name] = (cycles["predict"] + 2 * (LOGITS_SAVE_CYCLES + 2 * trip)
                            + (ig_steps + 1) * (IG_TABLE_CYCLES + trip) + ig_steps * per_step + post(3))
        else:
            streams = {PostProcess.NONE: 2, PostProcess.ABS: 2, PostProcess.TIMES_INPUT: 3}[m.post]
            cycles[name] = cycles["predict"] + bwd + post(streams)
    return cycles


def _evaluate(untiled, qg, board, tm, tn, in_depth, out_depth, clock, cap, backward=True, ddr_latency=DDR_LATENCY):
    try:
        forward, backward_ds = untiled.tiled(tm, tn, in_depth, out_depth)
    except XaiHlsError:
        return None
    bpc = min(board.ddr_bandwidth_gbps * 1e3 / clock, AXI_DATA_BYTES)
    h = untiled.header
    w_depth = max([d.ky * d.kx for d in forward + backward_ds] + [1])
    engine = EngineConfig(tm, tn, in_depth, out_depth, w_depth, h.mask_bits, h.index_entries, h.index_bits,
                          clock, bpc, backward, ddr_latency)
    res = estimate_resources(engine)
    have = board.resources
    fits = (res.dsp <= cap * have.dsp and res.bram_18k <= cap * have.bram_18k and res.lut <= cap * have.lut
            and res.ff <= cap * have.ff)
    return (forward, backward_ds), engine, res, bpc, fits


def plan(qg: QGraph, board: Board, cap: float = 0.8, clock_mhz: float | None = None,
         tiling: tuple[int, int] | None = None, ddr_latency: int = DDR_LATENCY) -> Plan:
    """The fastest engine for ``qg``'s workload that fits ``board`` under the utilisation cap.

    The workload is a prediction plus one run of each compiled method (integrated
    gradients with its compiled steps). ``tiling=(Tm, Tn)`` fixes the array. ``ddr_latency``:
    cycles from a DDR request to its data, which the cost model charges where exposed.
    """
    if ddr_latency < 1:
        raise XaiHlsError(f"the DDR latency must be at least 1 cycle, got {ddr_latency}")
    if not (isinstance(cap, (int, float)) and 0 < cap <= 1):
        raise XaiHlsError(f"utilisation cap must be in (0, 1], got {cap}")
    clock = float(board.clock_mhz if clock_mhz is None else clock_mhz)
    if not (math.isfinite(clock) and clock > 0):
        raise XaiHlsError(f"clock must be a positive number of MHz, got {clock_mhz}")
    arrays = [tiling] if tiling else [(tm, tn) for tm in ARRAY_SIZES for tn in ARRAY_SIZES]
    untiled = lower_untiled(qg)
    best = None
    smallest = None
    for tm, tn in arrays:
        if tm * tn > board.resources.dsp * cap and tiling is None:
            continue
        for in_depth in IN_DEPTHS:
            for out_depth in OUT_DEPTHS:
                ev = _evaluate(untiled, qg, board, tm, tn, in_depth, out_depth, clock, cap, ddr_latency=ddr_latency)
                if ev is None:
                    continue
                (fwd_ds, bwd_ds), engine, res, bpc, fits = ev
                if smallest is None or (res.dsp, res.bram_18k, res.lut) < (smallest[2].dsp, smallest[2].bram_18k,
                                                                          smallest[2].lut):
                    smallest = ev
                if not fits:
                    continue
                fwd = [job_cost(d, tm, tn, bpc, "forward", out_depth, ddr_latency) for d in fwd_ds]
                bwd = [job_cost(d, tm, tn, bpc, "backward", out_depth, ddr_latency) for d in bwd_ds]
                cycles = method_cycles(untiled.header, sum(c.cycles for c in fwd), sum(c.cycles for c in bwd), bpc,
                                       qg.ig_steps, ddr_latency)
                workload = cycles["predict"] + sum(cycles[m] for m in qg.methods)
                key = (workload, res.dsp, res.bram_18k, tm * tn, tm)
                if best is None or key < best[0]:
                    best = (key, engine, res, tuple(fwd), tuple(bwd), cycles)
    if best is None:
        if smallest is None:
            raise XaiHlsError(f"no engine can hold this network's rows in {max(IN_DEPTHS)}-word buffers")
        _, engine, res, _, _ = smallest
        have = board.resources
        raise XaiHlsError(
            f"board '{board.name}': no tiling fits under the {cap:.0%} cap; the smallest engine "
            f"(Tm={engine.tm}, Tn={engine.tn}) needs {res.dsp} DSP, {res.bram_18k} BRAM_18K, {res.lut} LUT, "
            f"{res.ff} FF; the board has {have.dsp} DSP, {have.bram_18k} BRAM_18K, {have.lut} LUT, {have.ff} FF"
        )
    _, engine, res, fwd, bwd, cycles = best
    program = encode(untiled, engine.tm, engine.tn, engine.in_depth, engine.out_depth)
    return Plan(board, engine, program, res, fwd, bwd, kept_memory(qg, program), cap, qg.ig_steps, cycles)


def describe(plan_: Plan, methods=None) -> str:
    """A plain-text account of the plan: tiling, per-layer cycles and bounds, utilisation."""
    e = plan_.engine
    qg = plan_.program.qgraph
    lines = [
        f"board {plan_.board.name} ({plan_.board.part}) at {e.clock_mhz:g} MHz, "
        f"{e.bytes_per_cycle:.2f} DDR bytes/cycle",
        f"engine: Tm={e.tm} x Tn={e.tn} MACs, input buffer {e.in_depth} words/bank, "
        f"output buffer {e.out_depth} accumulators/bank, weight buffer {e.w_depth} taps/MAC",
        "",
        f"{'layer':<14}{'dir':<5}{'op':<12}{'cycles':>10}{'bound':>10}{'MAC util':>10}",
    ]
    names = [layer.name for layer in qg.graph.layers] + ["logits"]
    for cost in plan_.forward_costs + plan_.backward_costs:
        util = f"{cost.utilization(e.tm, e.tn):.1%}" if cost.macs else "-"
        lines.append(f"{names[cost.layer]:<14}{cost.direction[:3]:<5}{cost.op:<12}{cost.cycles:>10,}"
                     f"{cost.bound_cycles:>10,}{util:>10}")
    lines.append("")
    for method in ["predict"] + list(methods or qg.methods):
        cyc = plan_.method_cycles[method]
        lines.append(f"{method:<22}{cyc:>12,} cycles {plan_.latency_ms(method):>10.3f} ms")
    util = plan_.utilization()
    lines.append("")
    lines.append("resources (estimate / board): " + ", ".join(
        f"{k} {v:,}/{plan_.board.resources.as_dict()[k]:,} ({util[k]:.0%})" for k, v in plan_.resources.as_dict().items()
        if k != "URAM"))
    k = plan_.kept
    lines.append(f"kept for the backward pass: {k.kept_bits:,} bits (ReLU {k.relu_bits:,} + pool indices "
                 f"{k.index_bits:,}) vs {k.activation_bits:,} bits of 16-bit activations: {k.ratio:.1f}x smaller")
    return "\n".join(lines)
