// The engine's configuration for one network on one board: the only per-network C++.
//
// xaihls writes this file from the plan (xaihls/backends/hls/writer.py); the engine
// library (xaihls_engine.h) and the top (xaihls_top.cpp) never change between networks.
// In the template (xaihls/hls_templates) four marked lines are holes the writer fills.
#ifndef XAIHLS_PARAMETERS_H_
#define XAIHLS_PARAMETERS_H_

// xaihls insert provenance

namespace xaihls {

// ---- The engine (xaihls.plan.engine.EngineConfig): array, buffers, kept-state memories ----
// TM x TN multipliers; IN_DEPTH words per input bank (one bank per TN lane); OUT_DEPTH
// accumulators per output bank (one per TM lane); W_DEPTH taps per weight bank (one per MAC).
// xaihls insert engine

// ---- Static loop bounds: the largest count any descriptor of this Program asks for ----
// Loops over descriptor-given counts run to these constants and leave early (break);
// a Program that needs more is refused at run time (status bit 1).
// xaihls insert bounds

// ---- The Program's DDR image ----
// xaihls insert program

}  // namespace xaihls

#endif
