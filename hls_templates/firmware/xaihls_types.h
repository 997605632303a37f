// Engine v2: types, constants derived from parameters.h, the numerics contract and DDR access.
//
// Fixed library (docs/engine_v2.md): every per-network number comes from parameters.h, every
// field, code and address rule from the generated contract header (xaihls_contract.h).
#ifndef XAIHLS_TYPES_H_
#define XAIHLS_TYPES_H_

#include <ap_int.h>
#include <hls_stream.h>

#ifndef __SYNTHESIS__
namespace xaihls {
// C-simulation only: what would hang or corrupt the hardware is recorded instead, and the
// top returns it as a status bit (CSIM_FAULT). A stream of blocks read empty or left with
// blocks (the units disagree on a job's tiles: a deadlock on the board), or an operand
// address outside the input buffer (a Program whose walk fields disagree with its tiles).
inline bool &csim_channel_fault() {
    static bool fault = false;
    return fault;
}
inline bool &csim_walk_fault() {
    static bool fault = false;
    return fault;
}
// Grid rows the walker skipped (rows off the map), counted for the tests.
inline long &csim_skipped_rows() {
    static long rows = 0;
    return rows;
}
// Input beats the loader read from DDR (a kept input's later m-tiles read none), counted for the tests.
inline long &csim_input_beats() {
    static long beats = 0;
    return beats;
}
}  // namespace xaihls
#endif

// Vitis HLS 2022.1+ ships these two; g++ with hls4ml's ap_types gets the C-simulation models.
#if defined(__SYNTHESIS__) || (__has_include(<hls_vector.h>) && __has_include(<hls_streamofblocks.h>))
#include <hls_streamofblocks.h>
#include <hls_vector.h>
#else
#include "xaihls_csim_hls.h"
#endif

#include "parameters.h"
#include "xaihls_contract.h"

namespace xaihls {

namespace c = contract;

// ---- Shapes (docs/engine_v2.md, "Data in DDR") ----
constexpr int E = BEAT_ELEMS;                // 16-bit elements per AXI beat
constexpr int DW = 16 * E;                   // the AXI data width
constexpr int BEAT_BYTES = 2 * E;
constexpr int PIX_BEATS = TN / E;            // beats of one pixel of one block (TN channels)
constexpr int PIX_SHIFT = PIX_BEATS >= 32 ? 5 : PIX_BEATS >= 16 ? 4 : PIX_BEATS >= 8 ? 3 : PIX_BEATS >= 4 ? 2
                        : PIX_BEATS >= 2 ? 1 : 0;  // log2 of PIX_BEATS, a power of two up to 32 (checked below)
constexpr int PASS_BEATS = TM * TN / E;      // beats of one pass's TM x TN weights
constexpr int TN_SHIFT = TN >= 64 ? 6 : TN >= 32 ? 5 : TN >= 16 ? 4 : TN >= 8 ? 3 : TN >= 4 ? 2 : TN >= 2 ? 1
                       : 0;                  // log2 of TN, a power of two up to 64 (checked below)
constexpr int GROUPS = TM / TN;              // blocks of TN lanes in an m-tile
constexpr int W_PASSES = W_DEPTH / TM;       // passes (kernel taps) a weight buffer holds
constexpr int WORDS_PER_BEAT = BEAT_BYTES / 4;
constexpr int MASK_WORDS = MASK_BITS > 0 ? (MASK_BITS + E - 1) / E : 1;
constexpr int INDEX_WORDS = INDEX_ENTRIES > 0 ? (INDEX_ENTRIES + TN - 1) / TN : 1;
constexpr bool HAS_GATE = INDEX_ENTRIES > 0;  // the max-pool backward reads kept indices
constexpr int IG_BEATS = INPUT_ELEMS > 0 ? INPUT_ELEMS / E : 1;  // words of the IG sums (one where it keeps none)
constexpr int DESC_BEATS = (4 * c::DESCRIPTOR_WORDS + BEAT_BYTES - 1) / BEAT_BYTES;
constexpr int RESULT_BEATS = (4 * c::RESULT_WORDS + BEAT_BYTES - 1) / BEAT_BYTES;
constexpr int CHUNK_BEATS = 64;  // post-processing: burst length of its reads and writes
// The MAC loop runs a tile weight-stationary (pass by pass) only when a pass has at least this
// many positions: an accumulator's read-modify-write (read, add, write) completes within them.
constexpr int ACC_DISTANCE = 8;

static_assert(DW == 64 || DW == 128 || DW == 256 || DW == 512, "the AXI data width is 64, 128, 256 or 512 bits");
static_assert((1 << BEAT_SHIFT) == BEAT_BYTES, "BEAT_SHIFT is log2 of the beat's bytes");
static_assert(TN % E == 0 && TM % TN == 0, "Tn is a multiple of the beat's elements, Tm of Tn");
static_assert((1 << PIX_SHIFT) == PIX_BEATS, "Tn / E is a power of two");
static_assert((1 << TN_SHIFT) == TN, "Tn is a power of two");
static_assert(W_PASSES >= 1, "the weight buffer holds at least one pass of TM rows");
static_assert(DATA_WIDTH == 16, "the engine moves 16-bit data");
static_assert(INPUT_ELEMS % E == 0, "the blocked input is whole beats");

// ---- Types ----
typedef ap_uint<DW> beat_t;
typedef ap_int<16> data_t;       // weights, activations, gradients
typedef ap_int<48> acc_t;        // a DSP48's P register: sums never overflow (checked by the compiler)
typedef ap_int<64> wide_t;       // bias-aligned sums, post-processing products before requantization
// A DSP48's multiplier is 25 x 18 bits (DSP48E1; 27 x 18 on DSP48E2): one product of an
// operand_t (the 18-bit input: weights, post-processing factors) and an x_operand_t (the 25-bit
// input: a 16-bit operand shifted left by at most MAX_X_SHIFT, the CONV job's xs_*).
typedef ap_int<18> operand_t;
typedef ap_int<25> x_operand_t;
typedef ap_int<43> product_t;      // 25 + 18 bits: every product exact
typedef ap_uint<4> x_shift_t;      // a CONV job's operand shift (xs_a*, xs_b*: 4-bit fields)
static_assert(DATA_WIDTH + c::MAX_X_SHIFT <= x_operand_t::width, "a shifted operand fits the 25-bit input");
typedef ap_uint<INDEX_BITS + 1> index_t;   // a max-pool's window position, its alive bit above it (ALIVE)
constexpr int ALIVE = 1 << INDEX_BITS;       // [the window's ranked maximum > 0]: the ReLU bit of its argmax
typedef ap_uint<E> mask_word_t;        // the ReLU bits of E lanes of one pixel

typedef hls::vector<data_t, TN> pixel_t;            // an input-buffer word: TN channels of one pixel
typedef hls::vector<index_t, TN> gate_word_t;       // their kept pool indices (GATE jobs)
typedef hls::vector<data_t, TM * TN> pass_w_t;      // a pass's weights, m-major
typedef hls::vector<acc_t, TM> acc_word_t;          // the TM accumulators of one position
typedef hls::vector<data_t, TM> bias_t;             // an m-tile's biases
typedef hls::vector<index_t, E> index_word_t;       // E lanes of the pool-index memory
typedef hls::vector<acc_t, E> ig_word_t;            // E lanes of the IG-sum memory

// The ping-pong buffers between the units of a CONV job (blocks of a stream of blocks).
typedef pass_w_t w_tile_t[W_PASSES];
typedef acc_word_t acc_tile_t[OUT_DEPTH];

// The on-chip state a run keeps between jobs.
typedef mask_word_t mask_mem_t[MASK_WORDS];
typedef index_word_t index_mem_t[PIX_BEATS][INDEX_WORDS];  // bank s holds lanes s*E .. s*E+E-1

inline int imin(int a, int b) { return a < b ? a : b; }
inline int imax(int a, int b) { return a > b ? a : b; }
inline bool flag(int flags, int bit) { return (flags >> bit) & 1; }

// ---- Numerics (xaihls/numerics.py) ----

// The data path's one multiplier: an 18-bit and a 25-bit operand, one DSP48. Inside a
// pipelined loop every non-constant product is written as a call of this function (the
// HLS-rules check, xaihls/backends/hls/rules.py, refuses any other, and refuses this one with
// operands wider than a DSP48's or a product narrower than exact).
inline product_t dsp_mul(operand_t a, x_operand_t b) {
#ifdef __SYNTHESIS__
    return a * b;
#else
    return product_t(a.to_int64() * b.to_int64());  // the same exact product, cheaper in software
#endif
}

// Saturate to 16 bits (ap_fixed AP_SAT); `clamped` tells whether it did.
inline data_t saturate16(wide_t v, bool &clamped) {
    const wide_t hi = 32767, lo = -32768;
    clamped = v > hi || v < lo;
    return v > hi ? data_t(32767) : v < lo ? data_t(-32768) : data_t(v);
}

// numerics.round_shift then saturate: round half up by `shift` (an arithmetic shift; a left
// shift when shift <= 0, pinned at +-2^62 first). ((a >> (s-1)) + 1) >> 1 equals
// (a + 2^(s-1)) >> s without overflowing.
inline data_t requantize(wide_t v, int shift, bool &clamped) {
    wide_t r;
    if (shift > 0) {
        r = ((v >> imin(shift - 1, 63)) + 1) >> 1;
    } else {
        const int left = imin(-shift, 62);
        const wide_t bound = wide_t(1) << (62 - left);
        r = (v > bound ? bound : v < -bound ? wide_t(-bound) : v) << left;
    }
    return saturate16(r, clamped);
}

// The ReLU-backward rule of a method (xaihls.methods.ReluBackward) for gradient g whose
// forward ReLU had the bit `bit`.
inline wide_t relu_rule(wide_t g, bool bit, int mode) {
    if (mode == c::RELU_DECONV) return g > 0 ? g : wide_t(0);
    const wide_t masked = bit ? g : wide_t(0);
    if (mode == c::RELU_GUIDED) return masked > 0 ? masked : wide_t(0);
    return masked;
}

inline data_t lane(const beat_t &b, int e) { return data_t(b.range(16 * e + 15, 16 * e)); }
inline void set_lane(beat_t &b, int e, data_t v) { b.range(16 * e + 15, 16 * e) = ap_uint<16>(v); }

// ---- DDR ----
// The top's AXI master moves whole beats; the Program puts every region and row on a beat
// boundary. In C-simulation an access outside the DDR the host gave is what a bus error would
// be on the board: it is recorded (status bit BUS_ERROR) instead of touching the host's memory.
#ifndef __SYNTHESIS__
struct CsimDdr {
    long beats = -1;  // the DDR's size in beats (-1: not checked)
    bool fault = false;
};
inline CsimDdr &csim_ddr() {
    static CsimDdr d;
    return d;
}
#endif

inline beat_t ddr_read(const beat_t *ddr, int beat) {
#ifndef __SYNTHESIS__
    if (beat < 0 || (csim_ddr().beats >= 0 && beat >= csim_ddr().beats)) {
        csim_ddr().fault = true;
        return 0;
    }
#endif
    return ddr[beat];
}

inline void ddr_write(beat_t *ddr, int beat, const beat_t &value) {
#ifndef __SYNTHESIS__
    if (beat < 0 || (csim_ddr().beats >= 0 && beat >= csim_ddr().beats)) {
        csim_ddr().fault = true;
        return;
    }
#endif
    ddr[beat] = value;
}

// A byte address of the Program as a beat index (the Program aligns what the engine reads).
inline int beat_of(uint32_t byte_addr) { return int(byte_addr >> BEAT_SHIFT); }
inline bool aligned(int64_t byte_value) { return (byte_value & (BEAT_BYTES - 1)) == 0; }

// WORDS 32-bit words from beat `beat0` on (header, descriptors): one burst.
template <int WORDS>
inline void read_words(const beat_t *ddr, int beat0, uint32_t words[WORDS]) {
    constexpr int BEATS = (4 * WORDS + BEAT_BYTES - 1) / BEAT_BYTES;
    int w = 0;
read_words:
    for (int b = 0; b < BEATS; b++) {
#pragma HLS pipeline II=1
        const beat_t beat = ddr_read(ddr, beat0 + b);
        for (int j = 0; j < WORDS_PER_BEAT; j++) {
#pragma HLS unroll
            if (w + j < WORDS) words[w + j] = uint32_t(beat.range(32 * j + 31, 32 * j));
        }
        w += WORDS_PER_BEAT;
    }
}

}  // namespace xaihls

#endif
