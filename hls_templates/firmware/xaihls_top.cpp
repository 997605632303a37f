// The top: AXI4-Lite control (ap_ctrl_hs) and one AXI4 master to DDR, DW bits wide. Vitis HLS
// gives its arguments the registers of contract.REGISTERS in this order (ddr 0x18, method
// 0x24, target 0x2c, steps 0x34, images 0x3c, the return value 0x10). Everything else is the engine
// library (xaihls_engine.h).
#include "xaihls_top.h"

#include "xaihls_engine.h"

int xaihls_top(xaihls::beat_t *ddr, int method, int target, int steps, int images) {
    // depth: the Program's DDR in beats (C/RTL co-simulation sizes its memory model by it);
    // latency: the DDR read latency the cost model assumes; bursts of up to 256 beats, several
    // outstanding, so a tile's runs stream back to back.
    constexpr int ddr_depth = xaihls::DDR_BYTES / xaihls::BEAT_BYTES;
    (void)ddr_depth;  // read by the pragma only
#pragma HLS INTERFACE m_axi port=ddr offset=slave bundle=gmem depth=ddr_depth latency=24 \
    max_read_burst_length=256 max_write_burst_length=256 num_read_outstanding=8 num_write_outstanding=8
#pragma HLS INTERFACE s_axilite port=ddr
#pragma HLS INTERFACE s_axilite port=method
#pragma HLS INTERFACE s_axilite port=target
#pragma HLS INTERFACE s_axilite port=steps
#pragma HLS INTERFACE s_axilite port=images
#pragma HLS INTERFACE s_axilite port=return

    // What the forward pass keeps for the backward pass (E ReLU bits a word; one pool index a
    // lane, in PIX_BEATS banks of E lanes) and the integrated-gradients sum (48 bits a lane).
    // Static: on-chip memories kept between jobs, not ports.
    static xaihls::mask_mem_t mask;
    static xaihls::index_mem_t index;
// The loader reads all PIX_BEATS banks of a pixel at once; the write-back writes one.
#pragma HLS array_partition variable=index type=complete dim=1
    static xaihls::ig_word_t ig_sum[xaihls::IG_BEATS];

#ifndef __SYNTHESIS__
    xaihls::csim_ddr().fault = false;
    xaihls::csim_channel_fault() = false;
    xaihls::csim_walk_fault() = false;
#endif
    int status = xaihls::run_program(ddr, method, target, steps, images, mask, index, ig_sum);
#ifndef __SYNTHESIS__
    if (xaihls::csim_ddr().fault) status |= xaihls::BUS_ERROR;
    if (xaihls::csim_channel_fault() || xaihls::csim_walk_fault()) status |= xaihls::CSIM_FAULT;
#endif
    return status;
}
