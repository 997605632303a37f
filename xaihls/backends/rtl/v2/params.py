"""What the Engine v2 RTL (``xaihls/hls_templates/rtl_v2``) is built with for a Program.

The engine is fixed source; per network only these top-level parameters change. Buffer depths
are rounded up to powers of two (the hardware addresses its sets by the top bit), the kept-state
sizes too, so that networks of similar shapes share one Verilator build.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from xaihls.plan.engine import MIN_DEPTH, EngineV2, pow2  # noqa: F401 - MIN_DEPTH and pow2 are this module's too

RTL_DIR = Path(__file__).resolve().parents[3] / "hls_templates" / "rtl_v2"
SOURCES = (
    "xaihls_contract_pkg.sv", "xaihls_engine_pkg.sv", "xaihls_fifo.sv", "xaihls_sdp_ram.sv", "xaihls_axil_regs.sv",
    "xaihls_rd_dma.sv", "xaihls_wr_dma.sv", "xaihls_mac_array.sv", "xaihls_loader.sv", "xaihls_walker.sv",
    "xaihls_writeback.sv", "xaihls_ctrl.sv", "xaihls_top.sv",
)
TOP = "xaihls_top"
SIM_SOURCES = {  # the simulation top and its DDR model (never synthesized), in compile order, by file name
    "xaihls_sim_axi_ram.sv": RTL_DIR.parent / "rtl" / "sim" / "xaihls_sim_axi_ram.sv",  # shared with version 1
    "xaihls_sim_top.sv": RTL_DIR / "sim" / "xaihls_sim_top.sv",
    "xaihls_sim_top.vlt": RTL_DIR / "sim" / "xaihls_sim_top.vlt",
}
WAIVERS = RTL_DIR / "xaihls_lint.vlt"
def sources() -> list[Path]:
    """The RTL files in compile order (packages first, top last)."""
    return [RTL_DIR / name for name in SOURCES]


@dataclass(frozen=True)
class RtlV2Params:
    """The top-level parameters of the v2 ``xaihls_top`` (documented in xaihls_top.sv)."""

    TM: int
    TN: int
    AXI_DATA_WIDTH: int
    IN_DEPTH: int
    OUT_DEPTH: int
    W_DEPTH: int
    MASK_BITS: int
    INDEX_ENTRIES: int
    INDEX_BITS: int
    INPUT_ELEMS: int
    BACKWARD: int = 1
    OFF_BITS: int = 22

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def beat_elems(self) -> int:
        return self.AXI_DATA_WIDTH // 16

    def covering(self, other: "RtlV2Params") -> "RtlV2Params":
        """Parameters large enough for both (one build runs either)."""
        a, b = self.as_dict(), other.as_dict()
        for k in ("TM", "TN", "AXI_DATA_WIDTH", "BACKWARD"):
            if a[k] != b[k]:
                raise ValueError(f"engines with different {k} cannot share a build")
        return RtlV2Params(**{k: max(a[k], b[k]) for k in a})

    def inference_only(self) -> "RtlV2Params":
        """The same engine without the backward path (no kept state, no IG sum)."""
        return RtlV2Params(self.TM, self.TN, self.AXI_DATA_WIDTH, self.IN_DEPTH, self.OUT_DEPTH, self.W_DEPTH,
                           self.TN, self.TN, 1, self.TN, 0, self.OFF_BITS)


def buffer_needs(program) -> tuple[int, int, int]:
    """(input words a bank, positions a row tile, weight rows) the Program's jobs use: at most
    the buffers it was tiled for, often less (the weight buffer holds the largest kernel's taps)."""
    from xaihls.plan.contract import Op

    in_words = out_pos = w_rows = 1
    for d in program.forward + program.backward:
        if d.op != Op.CONV or not d.ky * d.kx:
            continue
        in_words = max(in_words, max(d.load_rows, d.load_rows_last) * d.iw)
        out_pos = max(out_pos, max(d.tile_rows, d.last_rows) * d.ow)
        w_rows = max(w_rows, d.ky * d.kx * program.shape.tm)
    return in_words, out_pos, w_rows


def rtl_params(program, engine: EngineV2 | None = None) -> RtlV2Params:
    """The parameters that run ``program`` (a ProgramV2): buffers as deep as its jobs need (never
    deeper than ``engine``'s, which the Program was tiled for), the kept-state memories of its
    header; ``engine`` (default EngineV2.for_program) says whether the backward path is built."""
    h, s = program.header, program.shape
    backward = True if engine is None else engine.backward
    in_depth, out_depth, w_depth = buffer_needs(program)
    e = EngineV2(s.tm, s.tn, s.beat_elems, in_depth, out_depth, w_depth, h["mask_bits"], h["index_entries"],
                 h["index_bits"], h["input_elems"], 0.0, 0.0, backward=backward).as_built()
    return RtlV2Params(
        TM=e.tm, TN=e.tn, AXI_DATA_WIDTH=16 * e.beat_elems, IN_DEPTH=e.in_depth, OUT_DEPTH=e.out_depth,
        W_DEPTH=e.w_depth, MASK_BITS=e.mask_bits, INDEX_ENTRIES=e.index_entries, INDEX_BITS=e.index_bits,
        INPUT_ELEMS=e.input_elems, BACKWARD=1 if backward else 0,
        OFF_BITS=max(12, math.ceil(math.log2(max(h["total_bytes"], 2)))),
    )
