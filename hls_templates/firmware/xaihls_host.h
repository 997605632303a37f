// Host side of the C-simulation (not synthesized): the DDR as bytes, as a driver sees it,
// and as the top's DW-bit beats. Used by the Python entry (xaihls_csim.cpp) and the testbench.
#ifndef XAIHLS_HOST_H_
#define XAIHLS_HOST_H_

#include <cstdint>
#include <cstring>

#include "xaihls_top.h"

namespace xaihls {

// Little-endian bytes to beats (byte k of beat b is bits 8k..8k+7), 64 bits at a time.
inline void bytes_to_beats(const unsigned char *bytes, long beats, beat_t *out) {
    for (long b = 0; b < beats; b++) {
        beat_t v = 0;
        for (int j = 0; j < BEAT_BYTES / 8; j++) {
            uint64_t chunk;
            std::memcpy(&chunk, bytes + b * BEAT_BYTES + 8 * j, 8);
            v.range(64 * j + 63, 64 * j) = chunk;
        }
        out[b] = v;
    }
}

inline void beats_to_bytes(const beat_t *beats, long count, unsigned char *bytes) {
    for (long b = 0; b < count; b++) {
        for (int j = 0; j < BEAT_BYTES / 8; j++) {
            const uint64_t chunk = beats[b].range(64 * j + 63, 64 * j).to_uint64();
            std::memcpy(bytes + b * BEAT_BYTES + 8 * j, &chunk, 8);
        }
    }
}

// Runs the top on a DDR of `bytes` bytes (a multiple of the beat), checking every access
// against it (an access outside is status bit BUS_ERROR).
inline int run_on_bytes(unsigned char *bytes, long size, int method, int target, int steps, int images) {
    const long beats = size / BEAT_BYTES;
    beat_t *mem = new beat_t[beats];
    bytes_to_beats(bytes, beats, mem);
    csim_ddr().beats = beats;
    const int status = xaihls_top(mem, method, target, steps, images);
    beats_to_bytes(mem, beats, bytes);
    delete[] mem;
    return status;
}

}  // namespace xaihls

#endif
