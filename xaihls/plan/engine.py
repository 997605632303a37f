"""The engine's parameters (one Tm x Tn MAC array for the whole network, its buffers, its AXI
width) and the shape of a resource estimate. The estimate itself is the model fitted on yosys
(xaihls.plan.resources); the cycles are the cycle model's (xaihls.plan.timing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

ACC_BITS = 48  # the wide accumulator (DSP48 P register)
DATA_BITS = 16
DDR_LATENCY = 24
"""Cycles from an AXI request to its first data (or its write response) at the engine's clock:
an estimate for an idle Zynq-7000 HP port to DDR3 at 100 MHz (240 ns), not a board measurement.
The cost model's default and the simulated DDR's (xaihls_sim_axi_ram READ/WRITE_LATENCY)."""

@dataclass(frozen=True)
class ResourceEstimate:
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int = 0
    breakdown: dict | None = None

    def as_dict(self) -> dict:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM_18K": self.bram_18k, "URAM": self.uram}


MIN_DEPTH = 16  # the smallest buffer depth built (addresses of one bit or none would not elaborate)


def pow2(n: int, floor: int = 1) -> int:
    """The smallest power of two >= n and >= floor."""
    return max(floor, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


def kept(n: int, tn: int) -> int:
    """A kept-state memory's size as the RTL builds it: ``n`` ReLU bits or pool indices rounded up to
    whole words of ``tn`` (and at least 64). No power of two: every address a job writes or reads
    lies below the Program's own count (the compiler places the state end to end), so the address
    is never taken modulo the depth (hw_tests/test_rtl_v2_kept.py)."""
    return tn * -(-max(n, 64) // tn)


def ig_elems(header: dict, methods=None) -> int:
    """The elements of the integrated-gradients sums an engine keeps for a Program of ``header`` compiled
    for ``methods``: the blocked input's where it runs integrated gradients, else none (the sums are
    48-bit words on chip, above the accumulators of lanes 0..E-1: a 3 x 96 x 96 image's take 240
    BRAM_18K at 16 x 8 on a 128-bit bus). ``methods`` None (a Program read from its DDR image alone, whose header does
    not say): the blocked input's, an engine that runs every method."""
    return header["input_elems"] if methods is None or "integrated_gradients" in methods else 0


@dataclass(frozen=True)
class EngineV2:
    """What an Engine v2 is built with (docs/engine_v2.md); its Program must fit it.

    ``tm`` x ``tn`` MAC array; ``beat_elems`` 16-bit elements per AXI beat (the AXI data width
    / 16); ``in_depth`` words per input-buffer bank, ``out_depth`` accumulators per lane,
    ``w_depth`` weight rows (of tn weights) per set; the kept-state memories (``mask_bits``,
    ``index_entries`` of ``index_bits``) and the IG-sum memory (``input_elems``: the largest blocked input
    whose sums it keeps, 0 for none: ``ig_elems``); the clock,
    DDR bytes per cycle and DDR read latency (cycles) the cost model uses; ``backward``: False
    for an inference-only build; ``ddr_bytes``: the DDR bytes its Program uses (the header's
    ``total_bytes``; 0: not known), which set the width of its DDR offsets (``off_bits``);
    ``ig_exact``: the accumulators of lanes 0..E-1 exactly as deep as the accumulators and the IG sums
    above them (fewer block RAMs, a read multiplexer over them in LUTs), else as deep as the next power of
    two (the RTL's INPUT_ELEMS then gives the sums the room up to it: no multiplexer). The planner takes
    the power of two where it fits the board and the exact depth where only that fits. ``w_diag``: it runs
    jobs whose weights are stored one a lane (the RTL's W_DIAG; a Program that has them needs it).
    """

    tm: int
    tn: int
    beat_elems: int
    in_depth: int
    out_depth: int
    w_depth: int
    mask_bits: int
    index_entries: int
    index_bits: int
    input_elems: int
    clock_mhz: float
    bytes_per_cycle: float
    ddr_latency: int = 24
    backward: bool = True
    ddr_bytes: int = 0
    ig_exact: bool = False
    w_diag: bool = False

    @property
    def macs(self) -> int:
        return self.tm * self.tn

    @property
    def off_bits(self) -> int:
        """The RTL's OFF_BITS: DDR offsets wide enough for ``ddr_bytes`` and for a pixel's pool-index
        word (its byte address / 2 TN, modulo the index words) to survive an offset's wrap below
        address 0 (xaihls_loader's ix_row0; xaihls_top checks it), and at least 12."""
        index_entries = self.as_built().index_entries
        return max(12, math.ceil(math.log2(max(self.ddr_bytes, 2))),
                   math.ceil(math.log2(max(2 * index_entries, 2))))

    @property
    def axi_data_bits(self) -> int:
        return 16 * self.beat_elems

    def as_dict(self) -> dict:
        return asdict(self)

    def as_built(self) -> "EngineV2":
        """The same engine with its memories as the RTL builds them (xaihls.backends.rtl.v2.params):
        buffer depths rounded up to powers of two (the hardware addresses its sets by the top bit), the kept
        state to whole words (``kept``), the IG sums' room (``input_elems``, the RTL's INPUT_ELEMS) their
        own (``ig_exact``) or up to where the accumulators they sit above reach a power of two, no kept
        state and no IG sums in an inference-only build. Built twice, the same."""
        b = self.backward
        out_depth = pow2(self.out_depth, MIN_DEPTH)
        input_elems = self.input_elems if b else self.tn
        if b and input_elems and not self.ig_exact:
            be = self.beat_elems
            input_elems = be * (pow2(out_depth + input_elems // be) - out_depth)
        return replace(self, in_depth=pow2(self.in_depth, MIN_DEPTH), out_depth=out_depth,
                       w_depth=pow2(max(self.w_depth, self.tm), MIN_DEPTH),
                       mask_bits=kept(self.mask_bits, self.tn) if b else self.tn,
                       index_entries=kept(self.index_entries, self.tn) if b else self.tn,
                       index_bits=max(self.index_bits, 1) if b else 1, input_elems=input_elems)

    @classmethod
    def for_program(cls, program, clock_mhz: float, bytes_per_cycle: float, ddr_latency: int = 24,
                    backward: bool = True) -> "EngineV2":
        """The smallest engine that runs ``program`` (xaihls.plan.lowering.ProgramV2)."""
        h, s, b = program.header, program.shape, program.buffers
        return cls(s.tm, s.tn, s.beat_elems, b.in_depth, b.out_depth, b.w_depth, h["mask_bits"],
                   h["index_entries"], h["index_bits"], ig_elems(h, program.qgraph.methods), clock_mhz,
                   bytes_per_cycle, ddr_latency, backward, h["total_bytes"],
                   w_diag=any(d.w_diag for d in program.all_jobs))
