// The top: AXI4-Lite control (ap_ctrl_hs) and one AXI4 master to DDR, as docs/program.md
// specifies; everything else is the engine library (xaihls_engine.h).
#include "xaihls_top.h"

#include "xaihls_engine.h"

int xaihls_top(short *ddr, int method, int target, int steps) {
    // depth: the Program's DDR in int16 words (C/RTL co-simulation sizes its memory model by it);
    // latency: the DDR read latency the cost model assumes (xaihls.plan.cost.STREAM_LATENCY);
    // 64-bit data, bursts of up to 256 beats (2 KiB), several outstanding.
    constexpr int ddr_depth = xaihls::DDR_WORDS;
    (void)ddr_depth;  // read by the pragma only
#pragma HLS INTERFACE m_axi port=ddr offset=slave bundle=gmem depth=ddr_depth latency=24 \
    max_widen_bitwidth=64 max_read_burst_length=256 max_write_burst_length=256 \
    num_read_outstanding=8 num_write_outstanding=8
#pragma HLS INTERFACE s_axilite port=ddr
#pragma HLS INTERFACE s_axilite port=method
#pragma HLS INTERFACE s_axilite port=target
#pragma HLS INTERFACE s_axilite port=steps
#pragma HLS INTERFACE s_axilite port=return

    // What the forward pass keeps for the backward pass: one bit a ReLU input, one window
    // position a max-pool output. Static: they are on-chip memories, not ports.
    static xaihls::bit_t relu_mask[xaihls::MASK_DEPTH];
    static xaihls::pool_index_t pool_index[xaihls::INDEX_DEPTH];

#ifndef __SYNTHESIS__
    xaihls::ddr_fault() = false;
#endif
    int status = xaihls::run_program(ddr, method, target, steps, relu_mask, pool_index);
#ifndef __SYNTHESIS__
    if (xaihls::ddr_fault()) status |= xaihls::STATUS_BUS_ERROR;
#endif
    return status;
}
