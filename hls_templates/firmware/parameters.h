// The engine's configuration: the only per-network C++ of an Engine v2 (docs/engine_v2.md).
//
// xaihls writes this file (xaihls/backends/hls/v2.py) from an EngineV2 and its Program; the
// engine library (xaihls_types.h, xaihls_conv.h, xaihls_engine.h) and the top never change
// between networks. In the template (hls_templates/firmware) the marked lines are
// holes the writer fills.
#ifndef XAIHLS_PARAMETERS_H_
#define XAIHLS_PARAMETERS_H_

// xaihls insert provenance

namespace xaihls {

// ---- The engine (xaihls.plan.engine.EngineV2) ----
// TM x TN multipliers; BEAT_ELEMS 16-bit elements per AXI beat (BEAT_SHIFT = log2 of its
// bytes); IN_DEPTH words per input buffer, OUT_DEPTH accumulators per lane, W_DEPTH weight
// rows of TN per buffer; the kept-state memories and the IG-sum memory.
// xaihls insert engine

// ---- The Program it was built for ----
// DDR_BYTES sizes the co-simulation's memory model (the m_axi depth). The MAX_* counts only
// inform Vitis HLS's latency report (loop_tripcount); they limit nothing.
// xaihls insert program

}  // namespace xaihls

#endif
