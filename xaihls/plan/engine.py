"""The engine's parameters (one Tm x Tn MAC array for the whole network) and its resource estimate.

The estimate's coefficients are stated here, each with where it comes from; they are
compared with yosys `synth_xilinx` (and Vitis reports where a user has them) in the reports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

ACC_BITS = 48  # the wide accumulator (DSP48 P register)
DATA_BITS = 16
AXI_DATA_BYTES = 8  # one 64-bit AXI4 master (a Zynq HP port's width)
DDR_LATENCY = 24
"""Cycles from an AXI request to its first data (or its write response) at the engine's clock:
an estimate for an idle Zynq-7000 HP port to DDR3 at 100 MHz (240 ns), not a board measurement.
The cost model's default and the simulated DDR's (xaihls_sim_axi_ram READ/WRITE_LATENCY)."""

# Block RAM aspect ratios of a RAMB18 (width, depth): the best one is taken per memory.
_BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
LUTRAM_MAX_BITS = 1024  # smaller memories go to LUTs (distributed RAM), as Vivado does

# LUT/FF coefficients of the estimate: first estimates of a lean engine, NOT calibrated. yosys
# synth_xilinx of our RTL engine measures far more (4 x 2: 39,396 LUT / 15,443 FF against 5,064 /
# 6,112 here; 8 x 4: 60,279 / 21,811; benchmarks/RESULTS.md "RTL engine"), so on LUT-limited
# boards the planner sizes arrays the RTL does not fit. Recalibrating needs yosys points that
# vary Tm and Tn separately (two points put the RTL at ~435 LUT a MAC and ~2,600 a lane).
LUT_PER_MAC = 12  # operand muxing into each DSP (address-pattern selects)
FF_PER_MAC = 34  # pipeline registers around each DSP (operands, accumulate)
LUT_PER_LANE = 180  # per output lane: requantize, saturate, ReLU, pool compare
FF_PER_LANE = 160
LUT_CONTROL = 4200  # descriptor fetch, loop counters, AXI4 master + AXI4-Lite, post-processing unit
FF_CONTROL = 5200


# DSP48s outside the MAC array (the RTL's 25x18 address-setup multipliers: two in the tile
# loader, one in the write-back unit; with the backward path, the post-processing unit's
# 18x18 one). Checked against yosys synth_xilinx in hw_tests/test_rtl_synth.py.
SETUP_DSPS = 3
BACKWARD_DSPS = 1


def bram18_count(width: int, depth: int) -> int:
    """RAMB18 primitives for a width x depth memory (0 when it fits in LUTRAM)."""
    if width <= 0 or depth <= 0:
        return 0
    if width * depth <= LUTRAM_MAX_BITS:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in _BRAM18_SHAPES)


@dataclass(frozen=True)
class EngineConfig:
    """What the hardware is built with; the Program must fit it.

    ``in_depth``: words per input-buffer bank (one bank per Tn lane); ``out_depth``:
    accumulators per output bank (one per Tm lane); ``w_depth``: kernel taps per weight
    bank (one per MAC). Input, weight and accumulator buffers are ping-pong (two copies).
    ``mask_bits`` and ``index_entries`` size the on-chip memories that keep ReLU bits and
    max-pool indices between the passes; ``index_bits`` is an index's width. ``ddr_latency``:
    cycles from a DDR request to its data, charged by the cost model where it is exposed.
    """

    tm: int
    tn: int
    in_depth: int
    out_depth: int
    w_depth: int
    mask_bits: int
    index_entries: int
    index_bits: int
    clock_mhz: float
    bytes_per_cycle: float
    backward: bool = True
    ddr_latency: int = DDR_LATENCY

    @property
    def macs(self) -> int:
        return self.tm * self.tn

    def as_dict(self) -> dict:
        return asdict(self)


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


def estimate_resources(cfg: EngineConfig) -> ResourceEstimate:
    """DSP: one per 16x16 MAC plus the setup multipliers. BRAM: the buffers' shapes. LUT/FF:
    the stated coefficients."""
    brams = {
        "input buffers (ping-pong)": 2 * cfg.tn * bram18_count(DATA_BITS, cfg.in_depth),
        "weight buffers (ping-pong)": 2 * cfg.macs * bram18_count(DATA_BITS, cfg.w_depth),
        "output accumulators (ping-pong)": 2 * cfg.tm * bram18_count(ACC_BITS, cfg.out_depth),
        "ReLU bits": bram18_count(1, cfg.mask_bits) if cfg.backward else 0,
        "pool indices": bram18_count(cfg.index_bits, cfg.index_entries) if cfg.backward else 0,
    }
    # LUTRAM for the memories that are too small for a block RAM: one LUT6 holds 64 bits.
    lutram = 0
    for width, depth, copies in ((DATA_BITS, cfg.in_depth, 2 * cfg.tn), (DATA_BITS, cfg.w_depth, 2 * cfg.macs),
                                 (ACC_BITS, cfg.out_depth, 2 * cfg.tm)):
        if bram18_count(width, depth) == 0:
            lutram += copies * math.ceil(width * depth / 64)
    lut = cfg.macs * LUT_PER_MAC + cfg.tm * LUT_PER_LANE + LUT_CONTROL + lutram
    ff = cfg.macs * FF_PER_MAC + cfg.tm * FF_PER_LANE + FF_CONTROL
    dsp = cfg.macs + SETUP_DSPS + (BACKWARD_DSPS if cfg.backward else 0)
    return ResourceEstimate(lut, ff, dsp, sum(brams.values()), 0, brams)


MIN_DEPTH = 16  # the smallest buffer depth built (addresses of one bit or none would not elaborate)


def pow2(n: int, floor: int = 1) -> int:
    """The smallest power of two >= n and >= floor."""
    return max(floor, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


@dataclass(frozen=True)
class EngineV2:
    """What an Engine v2 is built with (docs/engine_v2.md); its Program must fit it.

    ``tm`` x ``tn`` MAC array; ``beat_elems`` 16-bit elements per AXI beat (the AXI data width
    / 16); ``in_depth`` words per input-buffer bank, ``out_depth`` accumulators per lane,
    ``w_depth`` weight rows (of tn weights) per set; the kept-state memories (``mask_bits``,
    ``index_entries`` of ``index_bits``) and the IG-sum memory (``input_elems``); the clock,
    DDR bytes per cycle and DDR read latency (cycles) the cost model uses; ``backward``: False
    for an inference-only build.
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

    @property
    def macs(self) -> int:
        return self.tm * self.tn

    @property
    def axi_data_bits(self) -> int:
        return 16 * self.beat_elems

    def as_dict(self) -> dict:
        return asdict(self)

    def as_built(self) -> "EngineV2":
        """The same engine with its memories as the RTL builds them (xaihls.backends.rtl.v2.params):
        buffer depths and kept-state sizes rounded up to powers of two (the hardware addresses its
        sets by the top bit), no kept state and no IG sums in an inference-only build."""
        b = self.backward
        return replace(self, in_depth=pow2(self.in_depth, MIN_DEPTH), out_depth=pow2(self.out_depth, MIN_DEPTH),
                       w_depth=pow2(max(self.w_depth, self.tm), MIN_DEPTH),
                       mask_bits=pow2(max(self.mask_bits, 1), 64) if b else self.tn,
                       index_entries=pow2(max(self.index_entries, 1), 64) if b else self.tn,
                       index_bits=max(self.index_bits, 1) if b else 1,
                       input_elems=pow2(self.input_elems, self.tn) if b else self.tn)

    @classmethod
    def for_program(cls, program, clock_mhz: float, bytes_per_cycle: float, ddr_latency: int = 24,
                    backward: bool = True) -> "EngineV2":
        """The smallest engine that runs ``program`` (xaihls.plan.lowering.ProgramV2)."""
        h, s, b = program.header, program.shape, program.buffers
        return cls(s.tm, s.tn, s.beat_elems, b.in_depth, b.out_depth, b.w_depth, h["mask_bits"],
                   h["index_entries"], h["index_bits"], h["input_elems"], clock_mhz, bytes_per_cycle, ddr_latency,
                   backward)
