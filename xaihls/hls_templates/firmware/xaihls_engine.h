// The xaihls engine: executes a Program v1 (docs/program.md) on one Tm x Tn MAC array.
//
// A line-by-line translation of the program interpreter (xaihls/sim/program.py), which is
// bit-exact with the golden model; this engine is bit-exact with both (tests/test_hls.py).
// Synthesizable Vitis HLS C++: no dynamic memory, recursion or STL; every loop over a
// descriptor-given count runs to a constant bound from parameters.h and leaves early.
//
// Fixed library: every per-network number comes from parameters.h.
#ifndef XAIHLS_ENGINE_H_
#define XAIHLS_ENGINE_H_

#include <ap_int.h>

#include "parameters.h"

namespace xaihls {

// ---------------------------------------------------------------------------------------
// The Program format (docs/program.md) and the numerics contract (xaihls/numerics.py)
// ---------------------------------------------------------------------------------------

constexpr int PROGRAM_MAGIC = 0x50494158;  // "XAIP"
constexpr int PROGRAM_VERSION = 1;
constexpr int HEADER_WORDS = 32;
constexpr int DESC_WORDS = 48;
constexpr int DESC_BYTES = 4 * DESC_WORDS;
constexpr int MAX_IG_STEPS = 1024;
constexpr int ACC_BITS = 48;  // the wide accumulator: a DSP48's P register
constexpr int METHODS = 6;    // method codes 1..6; 0 predicts
constexpr int RESULT_WORDS = 5;  // predicted class, target used, saturations: forward, backward, post

// The top's return value (docs/program.md, register 0x10).
constexpr int STATUS_BUS_ERROR = 1;     // an access outside the Program's DDR (C-simulation)
constexpr int STATUS_BAD_PROGRAM = 2;   // not a version-1 Program, or one larger than this engine
constexpr int STATUS_BAD_ARGUMENT = 4;  // method, target or steps out of range

enum Op { OP_END = 0, OP_CONV = 1, OP_MAXPOOL = 2, OP_MAXPOOL_BWD = 3, OP_AVGPOOL = 4,
          OP_AVGPOOL_BWD = 5, OP_RELU = 6, OP_SEED = 7 };
enum Flag { FLAG_RELU = 1, FLAG_POOL = 2, FLAG_RELU_AFTER_POOL = 4, FLAG_BWD_RELU = 8, FLAG_BIAS = 16 };
enum ReluMode { MODE_MASK = 0, MODE_GUIDED = 1, MODE_DECONV = 2 };
enum Method { METHOD_PREDICT = 0, METHOD_GRADIENT = 1, METHOD_SALIENCY = 2, METHOD_INPUT_X_GRADIENT = 3,
              METHOD_INTEGRATED_GRADIENTS = 4, METHOD_GUIDED_BACKPROP = 5, METHOD_DECONVNET = 6 };

constexpr int MASK_DEPTH = MASK_BITS > 0 ? MASK_BITS : 1;
constexpr int INDEX_DEPTH = INDEX_ENTRIES > 0 ? INDEX_ENTRIES : 1;
constexpr int MAX_PASSES = 1 + 2 * MAX_IG_STEPS;  // integrated gradients: a forward and a backward a step

// Static bounds of the flattened loops (pragmas take constants, not expressions).
constexpr int LOAD_INPUT_MAX = TN * MAX_IN_WORDS;
constexpr int LOAD_WEIGHTS_MAX = TM * TN * MAX_TAPS;
constexpr int WRITE_OUT_MAX = TM * MAX_POSITIONS;
constexpr int WRITE_POOLED_MAX = TM * MAX_POOLED;

typedef ap_int<DATA_WIDTH> data_t;   // weights, activations, gradients (int16 codes)
typedef ap_int<ACC_BITS> acc_t;      // sums of products: never overflow (checked at compile time)
typedef ap_int<64> wide_t;           // requantization input, post-processing, IG sums
typedef ap_uint<1> bit_t;            // one ReLU bit [x > 0]
typedef ap_uint<INDEX_BITS> pool_index_t;  // a max-pool's argmax position in its window

// The header (32 words at DDR address 0), in the order of docs/program.md.
struct Header {
    int magic, version, n_forward, n_backward, forward_addr, backward_addr, image_addr, work_addr,
        baseline_addr, ig_table_addr, logits_addr, result_addr, attr_addr, igacc_addr, grad_input_addr,
        classes, input_elems, in_c, in_h, in_w, input_frac, grad_frac0, grad_frac1, grad_frac2, ixg_frac,
        ig_sum_frac, ig_frac, data_width, mask_bits, index_entries, index_bits, total_bytes;
};

// One descriptor (48 words), in the order of docs/program.md. pool_k and pool_s hold rows in
// bits 0-15 and columns in bits 16-31 (0: as many as rows); read them with the pool_* helpers.
struct Desc {
    int op, flags, in_addr, out_addr, w_addr, b_addr, n, m, ih, iw, oh, ow, ky, kx, isy, isx, iky, ikx,
        iy0, ix0, ws_m, ws_n, ws_ky, ws_kx, w0, oph, opw, osy, osx, oyo, oxo, shift0, shift1, shift2,
        bias_shift, mask_base, index_base, pool_k, pool_s, pool_oh, pool_ow, recip, tile_rows, tile_step,
        row_tiles, m_tiles, n_tiles, layer;
};

inline int imin(int a, int b) { return a < b ? a : b; }
inline int pool_kh(const Desc &d) { return d.pool_k & 0xffff; }
inline int pool_kw(const Desc &d) { return (d.pool_k >> 16) & 0xffff ? (d.pool_k >> 16) & 0xffff : pool_kh(d); }
inline int pool_sh(const Desc &d) { return d.pool_s & 0xffff; }
inline int pool_sw(const Desc &d) { return (d.pool_s >> 16) & 0xffff ? (d.pool_s >> 16) & 0xffff : pool_sh(d); }
inline int imax(int a, int b) { return a > b ? a : b; }
inline int iabs(int a) { return a < 0 ? -a : a; }

// Saturate to the data width (ap_fixed AP_SAT).
inline data_t saturate(wide_t v) {
    const wide_t hi = (wide_t(1) << (DATA_WIDTH - 1)) - 1;
    const wide_t lo = -(wide_t(1) << (DATA_WIDTH - 1));
    if (v > hi) return data_t(hi);
    if (v < lo) return data_t(lo);
    return data_t(v);
}

// Saturate, and count it in `saturated` when the value was outside the data width's range.
inline data_t saturate_counted(wide_t v, int &saturated) {
    const wide_t hi = (wide_t(1) << (DATA_WIDTH - 1)) - 1;
    const wide_t lo = -(wide_t(1) << (DATA_WIDTH - 1));
    if (v > hi || v < lo) saturated++;
    return saturate(v);
}

// numerics.requantize: round half up by `shift` (arithmetic shift; a left shift when
// shift <= 0, pinned at +-2^62 first), then saturate (counted in `saturated`).
// ((a >> (s-1)) + 1) >> 1 equals (a + 2^(s-1)) >> s without overflowing.
inline data_t requantize(wide_t acc, int shift, int &saturated) {
    wide_t r;
    if (shift > 0) {
        const int s = imin(shift - 1, 63);
        r = ((acc >> s) + 1) >> 1;
    } else {
        const int left = imin(-shift, 62);
        const wide_t bound = wide_t(1) << (62 - left);
        wide_t a = acc;
        if (a > bound) a = bound;
        if (a < -bound) a = -bound;
        r = a << left;
    }
    return saturate_counted(r, saturated);
}

// The ReLU-backward rule of a method (xaihls.methods.ReluBackward) for gradient g whose
// forward ReLU input had the bit `bit`.
inline wide_t relu_rule(wide_t g, bit_t bit, int mode) {
    if (mode == MODE_DECONV) return g > 0 ? g : wide_t(0);
    const wide_t masked = bit ? g : wide_t(0);
    if (mode == MODE_GUIDED) return masked > 0 ? masked : wide_t(0);
    return masked;
}

inline int method_relu_mode(int method) {
    if (method == METHOD_GUIDED_BACKPROP) return MODE_GUIDED;
    if (method == METHOD_DECONVNET) return MODE_DECONV;
    return MODE_MASK;
}

// ---------------------------------------------------------------------------------------
// DDR access: int16 elements at element index (byte address / 2), int32 words as two.
// ---------------------------------------------------------------------------------------

#ifndef __SYNTHESIS__
// C-simulation only: an access outside the Program's DDR is what a bus error would be on
// the board; it is recorded (status bit 0) instead of corrupting the host's memory.
inline bool &ddr_fault() {
    static bool fault = false;
    return fault;
}
#endif

inline data_t ddr_read16(short *ddr, int index) {
#ifndef __SYNTHESIS__
    if (index < 0 || index >= DDR_WORDS) {
        ddr_fault() = true;
        return 0;
    }
#endif
    return data_t(ddr[index]);
}

// Stores the low 16 bits, as the interpreter's int16 store does.
inline void ddr_write16(short *ddr, int index, wide_t value) {
#ifndef __SYNTHESIS__
    if (index < 0 || index >= DDR_WORDS) {
        ddr_fault() = true;
        return;
    }
#endif
    const ap_int<16> low = value;
    ddr[index] = (short)low.to_int();
}

inline int ddr_read32(short *ddr, int byte_addr) {
    const int i = byte_addr >> 1;
    const unsigned lo = (unsigned)(unsigned short)ddr_read16(ddr, i).to_int();
    const unsigned hi = (unsigned)(unsigned short)ddr_read16(ddr, i + 1).to_int();
    return (int)(lo | (hi << 16));
}

inline void ddr_write32(short *ddr, int byte_addr, int value) {
    const int i = byte_addr >> 1;
    ddr_write16(ddr, i, wide_t(value & 0xffff));
    ddr_write16(ddr, i + 1, wide_t((value >> 16) & 0xffff));
}

inline void read_header(short *ddr, Header &h) {
    int w[HEADER_WORDS];
#pragma HLS array_partition variable=w type=complete
header_fetch:
    for (int k = 0; k < HEADER_WORDS; k++) {
#pragma HLS pipeline II=2
        w[k] = ddr_read32(ddr, 4 * k);
    }
    h.magic = w[0]; h.version = w[1]; h.n_forward = w[2]; h.n_backward = w[3]; h.forward_addr = w[4];
    h.backward_addr = w[5]; h.image_addr = w[6]; h.work_addr = w[7]; h.baseline_addr = w[8];
    h.ig_table_addr = w[9]; h.logits_addr = w[10]; h.result_addr = w[11]; h.attr_addr = w[12];
    h.igacc_addr = w[13]; h.grad_input_addr = w[14]; h.classes = w[15]; h.input_elems = w[16];
    h.in_c = w[17]; h.in_h = w[18]; h.in_w = w[19]; h.input_frac = w[20]; h.grad_frac0 = w[21];
    h.grad_frac1 = w[22]; h.grad_frac2 = w[23]; h.ixg_frac = w[24]; h.ig_sum_frac = w[25]; h.ig_frac = w[26];
    h.data_width = w[27]; h.mask_bits = w[28]; h.index_entries = w[29]; h.index_bits = w[30];
    h.total_bytes = w[31];
}

inline void read_desc(short *ddr, int byte_addr, Desc &d) {
    int w[DESC_WORDS];
#pragma HLS array_partition variable=w type=complete
desc_fetch:
    for (int k = 0; k < DESC_WORDS; k++) {
#pragma HLS pipeline II=2
        w[k] = ddr_read32(ddr, byte_addr + 4 * k);
    }
    d.op = w[0]; d.flags = w[1]; d.in_addr = w[2]; d.out_addr = w[3]; d.w_addr = w[4]; d.b_addr = w[5];
    d.n = w[6]; d.m = w[7]; d.ih = w[8]; d.iw = w[9]; d.oh = w[10]; d.ow = w[11]; d.ky = w[12]; d.kx = w[13];
    d.isy = w[14]; d.isx = w[15]; d.iky = w[16]; d.ikx = w[17]; d.iy0 = w[18]; d.ix0 = w[19];
    d.ws_m = w[20]; d.ws_n = w[21]; d.ws_ky = w[22]; d.ws_kx = w[23]; d.w0 = w[24]; d.oph = w[25];
    d.opw = w[26]; d.osy = w[27]; d.osx = w[28]; d.oyo = w[29]; d.oxo = w[30]; d.shift0 = w[31];
    d.shift1 = w[32]; d.shift2 = w[33]; d.bias_shift = w[34]; d.mask_base = w[35]; d.index_base = w[36];
    d.pool_k = w[37]; d.pool_s = w[38]; d.pool_oh = w[39]; d.pool_ow = w[40]; d.recip = w[41];
    d.tile_rows = w[42]; d.tile_step = w[43]; d.row_tiles = w[44]; d.m_tiles = w[45]; d.n_tiles = w[46];
    d.layer = w[47];
}

inline int desc_shift(const Desc &d, int mode) {
    return mode == MODE_GUIDED ? d.shift1 : mode == MODE_DECONV ? d.shift2 : d.shift0;
}

inline int header_grad_frac(const Header &h, int mode) {
    return mode == MODE_GUIDED ? h.grad_frac1 : mode == MODE_DECONV ? h.grad_frac2 : h.grad_frac0;
}

// ---------------------------------------------------------------------------------------
// CONV: conv/fc forward and their transposed backward, tile by tile
// ---------------------------------------------------------------------------------------

// What a CONV job's tiles share (derived once from the descriptor).
struct ConvGeom {
    bool has_taps;   // a backward phase that no kernel tap reaches has none: its output is zero
    int taps;        // KY * KX (1 when there are none: one pass that only initializes)
    int conv_rows;   // conv output rows the job computes (whole pooled windows with a fused pool)
    int n_steps;     // input-channel tiles per row tile
    int cols_in;     // input-tile columns: the full width the row's taps reach
    int y_lo;        // input row of buffer row 0, relative to the tile's first row times isy
    int x_lo;        // input column of buffer column 0
    int tap_y0;      // buffer row of tap ky = 0 for output row 0
    int tap_x0;      // buffer column of tap kx = 0 for output column 0
    int tiles;       // m_tiles * row_tiles * n_steps
};

struct ConvTile {
    int mt, rt, nt;  // output-channel tile, row tile, input-channel tile
};

inline ConvGeom conv_geometry(const Desc &d) {
    ConvGeom g;
    g.has_taps = d.ky > 0 && d.kx > 0;
    g.taps = g.has_taps ? d.ky * d.kx : 1;
    g.conv_rows = (d.flags & FLAG_POOL) ? (d.pool_oh - 1) * pool_sh(d) + pool_kh(d) : d.oh;
    g.n_steps = g.has_taps ? d.n_tiles : 1;
    const int ky_span = imax(d.ky - 1, 0) * d.iky;  // negative when the kernel is read in reverse
    const int kx_span = imax(d.kx - 1, 0) * d.ikx;
    g.cols_in = (d.ow - 1) * iabs(d.isx) + iabs(kx_span) + 1;
    g.y_lo = d.iy0 + imin(0, ky_span);
    g.x_lo = d.ix0 + imin(0, kx_span);
    g.tap_y0 = -imin(0, ky_span);
    g.tap_x0 = -imin(0, kx_span);
    g.tiles = d.m_tiles * d.row_tiles * g.n_steps;
    return g;
}

inline int tile_rows_of(const Desc &d, const ConvGeom &g, const ConvTile &t) {
    return imin(d.tile_rows, g.conv_rows - t.rt * d.tile_step);
}

inline int tile_input_rows(const Desc &d, int rows) {
    return (rows - 1) * iabs(d.isy) + imax(d.ky - 1, 0) * iabs(d.iky) + 1;
}

inline ConvTile next_tile(const Desc &d, const ConvGeom &g, ConvTile t) {
    t.nt++;
    if (t.nt == g.n_steps) {
        t.nt = 0;
        t.rt++;
        if (t.rt == d.row_tiles) {
            t.rt = 0;
            t.mt++;
        }
    }
    return t;
}

// Loads one tile's operands: TN input-channel banks of the tile's rows (zeros outside the
// map: the padding), the TM x TN kernels by the job's weight strides (zeros for lanes
// beyond M or N), and the TM biases on a row tile's first input-channel tile.
inline void load_tile(short *ddr, const Desc &d, const ConvGeom &g, const ConvTile &t, bool enable,
                      data_t in_buf[TN][IN_DEPTH], data_t w_buf[TM][TN][W_DEPTH], data_t bias_buf[TM]) {
// A unit of its own (not dissolved into the caller): shared by the ping-pong branches, run beside mac_tile.
#pragma HLS inline off
    if (!enable) return;
    const int m0 = t.mt * TM;
    if (t.nt == 0) {
    load_bias:
        for (int m = 0; m < TM; m++) {
#pragma HLS pipeline II=1
            const bool valid = (d.flags & FLAG_BIAS) && m0 + m < d.m;
            bias_buf[m] = valid ? ddr_read16(ddr, (d.b_addr >> 1) + m0 + m) : data_t(0);
        }
    }
    if (!g.has_taps) return;
    const int n0 = t.nt * TN;
    const int rows = tile_rows_of(d, g, t);
    const int rows_in = tile_input_rows(d, rows);
    const int words = rows_in * g.cols_in;
    const int y_first = t.rt * d.tile_step * d.isy + g.y_lo;
    // Input tile: lane n, buffer row yy, column xx (a row of the map is one DDR run).
    int n = 0, yy = 0, xx = 0, addr = 0;
load_input:
    for (int i = 0; i < LOAD_INPUT_MAX; i++) {
#pragma HLS loop_tripcount min=1 max=LOAD_INPUT_MAX
#pragma HLS pipeline II=1
        if (i >= TN * words) break;
        const int y = y_first + yy, x = g.x_lo + xx, c = n0 + n;
        const bool inside = c < d.n && y >= 0 && y < d.ih && x >= 0 && x < d.iw;
        in_buf[n][addr] = inside ? ddr_read16(ddr, (d.in_addr >> 1) + (c * d.ih + y) * d.iw + x) : data_t(0);
        addr++;
        if (++xx == g.cols_in) {
            xx = 0;
            if (++yy == rows_in) {
                yy = 0;
                addr = 0;
                n++;
            }
        }
    }
    // Weight tile: MAC (m, n), tap (ky, kx); each (m, n) kernel is one DDR run in the forward layout.
    int m = 0, wn = 0, ky = 0, kx = 0, tap = 0;
load_weights:
    for (int i = 0; i < LOAD_WEIGHTS_MAX; i++) {
#pragma HLS loop_tripcount min=1 max=LOAD_WEIGHTS_MAX
#pragma HLS pipeline II=1
        if (i >= TM * TN * g.taps) break;
        const bool valid = m0 + m < d.m && n0 + wn < d.n;
        const int w = d.w0 + (m0 + m) * d.ws_m + (n0 + wn) * d.ws_n + ky * d.ws_ky + kx * d.ws_kx;
        w_buf[m][wn][tap] = valid ? ddr_read16(ddr, (d.w_addr >> 1) + w) : data_t(0);
        tap++;
        if (++kx == d.kx) {
            kx = 0;
            if (++ky == d.ky) {
                ky = 0;
                tap = 0;
                if (++wn == TN) {
                    wn = 0;
                    m++;
                }
            }
        }
    }
}

// The MAC array on one tile: for every tap (ky, kx) and output position (r, c) of the row
// tile, TM x TN products a cycle into TM accumulators. The first input-channel tile of a
// row tile starts the accumulators at the bias (shifted to the accumulator fraction).
inline void mac_tile(const Desc &d, const ConvGeom &g, const ConvTile &t, const data_t in_buf[TN][IN_DEPTH],
                     const data_t w_buf[TM][TN][W_DEPTH], const data_t bias_buf[TM], acc_t acc[TM][OUT_DEPTH]) {
#pragma HLS inline off
    acc_t init[TM];
#pragma HLS array_partition variable=init type=complete
    const bool first = t.nt == 0;
mac_bias:
    for (int m = 0; m < TM; m++) {
#pragma HLS unroll
        init[m] = acc_t(wide_t(bias_buf[m]) << d.bias_shift);
    }
    const int rows = tile_rows_of(d, g, t);
    const int positions = rows * d.ow;
    const int steps = g.taps * positions;
    const int row_pitch = d.isy * g.cols_in;
    // Buffer address = tap part + row part + column part, each stepped by an addition.
    int tap = 0, kx = 0, r = 0, c = 0, pos = 0;
    int a_tap = g.tap_y0 * g.cols_in + g.tap_x0, a_row = 0, a_col = 0;
mac:
    for (int i = 0; i < MAX_MAC_STEPS; i++) {
#pragma HLS loop_tripcount min=1 max=MAX_MAC_STEPS
// One tap at one output position a cycle: the TM x TN products below are the whole array.
#pragma HLS pipeline II=1
        if (i >= steps) break;
        const int a = a_tap + a_row + a_col;
    mac_m:
        for (int m = 0; m < TM; m++) {
#pragma HLS unroll
            acc_t sum = (first && tap == 0) ? init[m] : acc[m][pos];
        mac_n:
            for (int n = 0; n < TN; n++) {
#pragma HLS unroll
                if (g.has_taps) sum += w_buf[m][n][tap] * in_buf[n][a];
            }
            acc[m][pos] = sum;
        }
        pos++;
        a_col += d.isx;
        if (++c == d.ow) {
            c = 0;
            a_col = 0;
            a_row += row_pitch;
            if (++r == rows) {
                r = 0;
                a_row = 0;
                pos = 0;
                tap++;
                a_tap += d.ikx;
                if (++kx == d.kx) {
                    kx = 0;
                    a_tap += d.iky * g.cols_in - d.kx * d.ikx;
                }
            }
        }
    }
}

// Write-back of a finished row tile: requantize (round half up, saturate), ReLU with its
// bit to the mask memory, the fused max-pool with its index, the backward ReLU rule.
inline void write_back(short *ddr, const Desc &d, const ConvGeom &g, const ConvTile &t, bool enable,
                       int mode, const acc_t acc[TM][OUT_DEPTH], bit_t mask[MASK_DEPTH],
                       pool_index_t pool_index[INDEX_DEPTH], int &saturated) {
#pragma HLS inline off
    if (!enable) return;
    const int m0 = t.mt * TM;
    const int lanes = imin(TM, d.m - m0);
    const int r0 = t.rt * d.tile_step;
    const int rows = tile_rows_of(d, g, t);
    const int positions = rows * d.ow;
    const int out_base = d.out_addr >> 1;
    const bool relu = d.flags & FLAG_RELU;
    if (!(d.flags & FLAG_POOL)) {
        const int shift = desc_shift(d, mode);
        const int plane = d.oph * d.opw;
        int pos = 0, r = 0, c = 0, m = 0;
    write_out:
        for (int i = 0; i < WRITE_OUT_MAX; i++) {
#pragma HLS loop_tripcount min=1 max=WRITE_OUT_MAX
// One output element a cycle: one DDR write port and one mask-memory port.
#pragma HLS pipeline II=1
            if (i >= positions * lanes) break;
            const wide_t a = acc[m][pos];
            wide_t out = requantize(a, shift, saturated);
            const int flat = (m0 + m) * plane + ((r0 + r) * d.osy + d.oyo) * d.opw + c * d.osx + d.oxo;
            if (relu) {
                mask[d.mask_base + flat] = a > 0;
                if (out < 0) out = 0;
            }
            if (d.flags & FLAG_BWD_RELU) out = relu_rule(out, mask[d.mask_base + flat], mode);
            ddr_write16(ddr, out_base + flat, out);
            if (++m == lanes) {
                m = 0;
                pos++;
                if (++c == d.ow) {
                    c = 0;
                    r++;
                }
            }
        }
        return;
    }
    // Fused max-pool: the ReLU bits of every conv output of the tile first (from the accumulator).
    const int kh = pool_kh(d), kw = pool_kw(d), sh = pool_sh(d), sw = pool_sw(d);
    if (relu) {
        int pos = 0, r = 0, c = 0, m = 0;
    write_bits:
        for (int i = 0; i < WRITE_OUT_MAX; i++) {
#pragma HLS loop_tripcount min=1 max=WRITE_OUT_MAX
#pragma HLS pipeline II=1
            if (i >= positions * lanes) break;
            mask[d.mask_base + ((m0 + m) * d.oh + r0 + r) * d.ow + c] = acc[m][pos] > 0;
            if (++m == lanes) {
                m = 0;
                pos++;
                if (++c == d.ow) {
                    c = 0;
                    r++;
                }
            }
        }
    }
    const int p0 = r0 / sh;
    const int pooled_rows = rows >= kh ? imin(d.pool_oh - p0, (rows - kh) / sh + 1) : 0;
    int py = p0, px = 0, m = 0;
write_pooled:
    for (int i = 0; i < WRITE_POOLED_MAX; i++) {
#pragma HLS loop_tripcount min=1 max=WRITE_POOLED_MAX
        if (i >= pooled_rows * d.pool_ow * lanes) break;
        // Rank on max(acc, 0) after a ReLU; the first maximum in raster order wins.
        wide_t best = 0, best_rank = 0;
        int best_w = 0, wy = 0, wx = 0;
    pool_window:
        for (int w = 0; w < MAX_POOL_WINDOW; w++) {
#pragma HLS loop_tripcount min=1 max=MAX_POOL_WINDOW
#pragma HLS pipeline II=1
            if (w >= kh * kw) break;
            const wide_t v = acc[m][(py * sh - r0 + wy) * d.ow + px * sw + wx];
            const wide_t rank = (relu && v < 0) ? wide_t(0) : v;
            if (w == 0 || rank > best_rank) {
                best_rank = rank;
                best = v;
                best_w = w;
            }
            if (++wx == kw) {
                wx = 0;
                wy++;
            }
        }
        wide_t out = requantize(best, d.shift0, saturated);
        if (relu && out < 0) out = 0;
        const int flat = ((m0 + m) * d.pool_oh + py) * d.pool_ow + px;
        pool_index[d.index_base + flat] = best_w;
        if (d.flags & FLAG_RELU_AFTER_POOL) {
            mask[d.mask_base + flat] = out > 0;
            if (out < 0) out = 0;
        }
        ddr_write16(ddr, out_base + flat, out);
        if (++m == lanes) {
            m = 0;
            if (++px == d.pool_ow) {
                px = 0;
                py++;
            }
        }
    }
}

// One CONV job. Tiles run in (m-tile, row tile, n-tile) order. Input, weight and bias
// buffers are ping-pong: the next tile loads while this one computes. Accumulators are
// ping-pong too: a finished row tile is written back while the next one computes.
// (In C the three calls of an iteration run one after the other; they touch disjoint
// buffers and disjoint DDR, so the order cannot change a result.)
inline void conv_job(short *ddr, const Desc &d, int mode, bit_t mask[MASK_DEPTH],
                     pool_index_t pool_index[INDEX_DEPTH], int &saturated) {
    static data_t in_ping[TN][IN_DEPTH], in_pong[TN][IN_DEPTH];
#pragma HLS array_partition variable=in_ping type=complete dim=1
#pragma HLS array_partition variable=in_pong type=complete dim=1
    static data_t w_ping[TM][TN][W_DEPTH], w_pong[TM][TN][W_DEPTH];
// One weight bank per MAC: all TM x TN weights of a tap are read in the same cycle.
#pragma HLS array_partition variable=w_ping type=complete dim=1
#pragma HLS array_partition variable=w_ping type=complete dim=2
#pragma HLS array_partition variable=w_pong type=complete dim=1
#pragma HLS array_partition variable=w_pong type=complete dim=2
    static data_t b_ping[TM], b_pong[TM];
#pragma HLS array_partition variable=b_ping type=complete
#pragma HLS array_partition variable=b_pong type=complete
    static acc_t acc_ping[TM][OUT_DEPTH], acc_pong[TM][OUT_DEPTH];
#pragma HLS array_partition variable=acc_ping type=complete dim=1
#pragma HLS array_partition variable=acc_pong type=complete dim=1
// The branches below call each unit with the other bank; they share one instance of each.
#pragma HLS allocation function instances=load_tile limit=1
#pragma HLS allocation function instances=mac_tile limit=1
#pragma HLS allocation function instances=write_back limit=1

    const ConvGeom g = conv_geometry(d);
    ConvTile cur = {0, 0, 0};
    ConvTile pending = {0, 0, 0};
    bool has_pending = false;
    bool in_bank = false;   // which input/weight bank the current tile computes from
    bool acc_bank = false;  // which accumulator bank the current row tile sums into
    load_tile(ddr, d, g, cur, g.tiles > 0, in_ping, w_ping, b_ping);
conv_tiles:
    for (int t = 0; t < MAX_TILES; t++) {
#pragma HLS loop_tripcount min=1 max=MAX_TILES
        if (t >= g.tiles) break;
        const ConvTile nxt = next_tile(d, g, cur);
        const bool more = t + 1 < g.tiles;
        if (!in_bank && !acc_bank) {
            load_tile(ddr, d, g, nxt, more, in_pong, w_pong, b_pong);
            mac_tile(d, g, cur, in_ping, w_ping, b_ping, acc_ping);
            write_back(ddr, d, g, pending, has_pending, mode, acc_pong, mask, pool_index, saturated);
        } else if (!in_bank && acc_bank) {
            load_tile(ddr, d, g, nxt, more, in_pong, w_pong, b_pong);
            mac_tile(d, g, cur, in_ping, w_ping, b_ping, acc_pong);
            write_back(ddr, d, g, pending, has_pending, mode, acc_ping, mask, pool_index, saturated);
        } else if (in_bank && !acc_bank) {
            load_tile(ddr, d, g, nxt, more, in_ping, w_ping, b_ping);
            mac_tile(d, g, cur, in_pong, w_pong, b_pong, acc_ping);
            write_back(ddr, d, g, pending, has_pending, mode, acc_pong, mask, pool_index, saturated);
        } else {
            load_tile(ddr, d, g, nxt, more, in_ping, w_ping, b_ping);
            mac_tile(d, g, cur, in_pong, w_pong, b_pong, acc_pong);
            write_back(ddr, d, g, pending, has_pending, mode, acc_ping, mask, pool_index, saturated);
        }
        has_pending = false;
        if (cur.nt == g.n_steps - 1) {  // the row tile is complete: write it back during the next one
            pending = cur;
            has_pending = true;
            acc_bank = !acc_bank;
        }
        in_bank = !in_bank;
        cur = nxt;
    }
    if (acc_bank) {
        write_back(ddr, d, g, pending, has_pending, mode, acc_ping, mask, pool_index, saturated);
    } else {
        write_back(ddr, d, g, pending, has_pending, mode, acc_pong, mask, pool_index, saturated);
    }
}

// ---------------------------------------------------------------------------------------
// Element-wise units: pools, ReLU, seed
// ---------------------------------------------------------------------------------------

// Standalone MAXPOOL / AVGPOOL over n channels of ih x iw (+ RELU_AFTER_POOL).
inline void pool_job(short *ddr, const Desc &d, bit_t mask[MASK_DEPTH],
                     pool_index_t pool_index[INDEX_DEPTH], int &saturated) {
    const int kh = pool_kh(d), kw = pool_kw(d), sh = pool_sh(d), sw = pool_sw(d);
    const int outputs = d.n * d.pool_oh * d.pool_ow;
    const bool is_max = d.op == OP_MAXPOOL;
    int ch = 0, py = 0, px = 0;
pool_outputs:
    for (int i = 0; i < MAX_ELEMS; i++) {
#pragma HLS loop_tripcount min=1 max=MAX_ELEMS
        if (i >= outputs) break;
        wide_t best = 0, sum = 0;
        int best_w = 0, wy = 0, wx = 0;
    pool_in_window:
        for (int w = 0; w < MAX_POOL_WINDOW; w++) {
#pragma HLS loop_tripcount min=1 max=MAX_POOL_WINDOW
#pragma HLS pipeline II=1
            if (w >= kh * kw) break;
            const wide_t v = ddr_read16(ddr, (d.in_addr >> 1) + (ch * d.ih + py * sh + wy) * d.iw + px * sw + wx);
            if (w == 0 || v > best) {
                best = v;
                best_w = w;
            }
            sum += v;
            if (++wx == kw) {
                wx = 0;
                wy++;
            }
        }
        wide_t out;
        if (is_max) {
            out = best;
            pool_index[d.index_base + i] = best_w;
        } else {
            out = requantize(sum * d.recip, d.shift0, saturated);
        }
        if (d.flags & FLAG_RELU_AFTER_POOL) {
            mask[d.mask_base + i] = out > 0;
            if (out < 0) out = 0;
        }
        ddr_write16(ddr, (d.out_addr >> 1) + i, out);
        if (++px == d.pool_ow) {
            px = 0;
            if (++py == d.pool_oh) {
                py = 0;
                ch++;
            }
        }
    }
}

// MAXPOOL_BWD / AVGPOOL_BWD in gather form: each input element sums the window outputs
// that route to it (max: whose stored index is its position; average: every covering
// window, times recip), then the shift, saturation and the backward ReLU rule.
inline void pool_backward_job(short *ddr, const Desc &d, int mode, const bit_t mask[MASK_DEPTH],
                              const pool_index_t pool_index[INDEX_DEPTH], int &saturated) {
    const int kh = pool_kh(d), kw = pool_kw(d), sh = pool_sh(d), sw = pool_sw(d);
    const int elems = d.n * d.ih * d.iw;
    const int shift = desc_shift(d, mode);
    const bool is_max = d.op == OP_MAXPOOL_BWD;
    int ch = 0, y = 0, x = 0;
pool_bwd_inputs:
    for (int i = 0; i < MAX_ELEMS; i++) {
#pragma HLS loop_tripcount min=1 max=MAX_ELEMS
        if (i >= elems) break;
        wide_t acc = 0;
        int wy = 0, wx = 0;
    pool_bwd_window:
        for (int w = 0; w < MAX_POOL_WINDOW; w++) {
#pragma HLS loop_tripcount min=1 max=MAX_POOL_WINDOW
#pragma HLS pipeline II=1
            if (w >= kh * kw) break;
            const int ty = y - wy, tx = x - wx;  // window origin if this input is at (wy, wx) in it
            if (ty >= 0 && tx >= 0 && ty % sh == 0 && tx % sw == 0 && ty / sh < d.pool_oh && tx / sw < d.pool_ow) {
                const int p = (ch * d.pool_oh + ty / sh) * d.pool_ow + tx / sw;
                const wide_t g = ddr_read16(ddr, (d.in_addr >> 1) + p);
                if (!is_max) {
                    acc += g * d.recip;
                } else if (pool_index[d.index_base + p] == w) {
                    acc += g;
                }
            }
            if (++wx == kw) {
                wx = 0;
                wy++;
            }
        }
        wide_t out = requantize(acc, shift, saturated);
        if (d.flags & FLAG_BWD_RELU) out = relu_rule(out, mask[d.mask_base + i], mode);
        ddr_write16(ddr, (d.out_addr >> 1) + i, out);
        if (++x == d.iw) {
            x = 0;
            if (++y == d.ih) {
                y = 0;
                ch++;
            }
        }
    }
}

inline void relu_job(short *ddr, const Desc &d, bit_t mask[MASK_DEPTH]) {
relu_elems:
    for (int i = 0; i < MAX_ELEMS; i++) {
#pragma HLS loop_tripcount min=1 max=MAX_ELEMS
#pragma HLS pipeline II=1
        if (i >= d.n) break;
        const data_t x = ddr_read16(ddr, (d.in_addr >> 1) + i);
        mask[d.mask_base + i] = x > 0;
        ddr_write16(ddr, (d.out_addr >> 1) + i, x > 0 ? wide_t(x) : wide_t(0));
    }
}

// The backward pass's start: one-hot 1.0 (1 << shift0) at the target logit.
inline void seed_job(short *ddr, const Desc &d, int mode, int target, const bit_t mask[MASK_DEPTH]) {
seed_elems:
    for (int i = 0; i < MAX_ELEMS; i++) {
#pragma HLS loop_tripcount min=1 max=MAX_ELEMS
#pragma HLS pipeline II=1
        if (i >= d.n) break;
        wide_t g = i == target ? (wide_t(1) << d.shift0) : wide_t(0);
        if (d.flags & FLAG_BWD_RELU) g = relu_rule(g, mask[d.mask_base + i], mode);
        ddr_write16(ddr, (d.out_addr >> 1) + i, g);
    }
}

// A descriptor this engine can run: its counts within the static bounds it was built with
// (which the planner chose within the buffers: MAX_IN_WORDS <= IN_DEPTH, MAX_POSITIONS <= OUT_DEPTH).
inline bool pool_fits(const Desc &d) {
    return pool_kh(d) >= 1 && pool_kw(d) >= 1 && pool_sh(d) >= 1 && pool_sw(d) >= 1
        && pool_kh(d) * pool_kw(d) <= MAX_POOL_WINDOW;
}

inline bool desc_fits(const Desc &d) {
    if (d.op == OP_CONV) {
        const ConvGeom g = conv_geometry(d);
        const bool pooled = d.flags & FLAG_POOL;
        const bool shapes = d.m >= 1 && d.n >= 1 && d.ow >= 1 && d.tile_rows >= 1 && d.row_tiles >= 1
            && d.m_tiles >= 1 && d.n_tiles >= 1 && d.m_tiles * TM >= d.m && d.n_tiles * TN >= d.n
            && d.isy >= 0 && d.isx >= 0;
        const bool buffers = g.tiles <= MAX_TILES && g.taps <= MAX_TAPS && d.tile_rows * d.ow <= MAX_POSITIONS
            && g.taps * d.tile_rows * d.ow <= MAX_MAC_STEPS
            && (!g.has_taps || tile_input_rows(d, d.tile_rows) * g.cols_in <= MAX_IN_WORDS);
        const bool pool = !pooled || (pool_fits(d) && d.tile_rows >= pool_kh(d)
                                      && ((d.tile_rows - pool_kh(d)) / pool_sh(d) + 1) * d.pool_ow <= MAX_POOLED);
        return shapes && buffers && pool;
    }
    if (d.op == OP_MAXPOOL || d.op == OP_AVGPOOL) return pool_fits(d) && d.n * d.pool_oh * d.pool_ow <= MAX_ELEMS;
    if (d.op == OP_MAXPOOL_BWD || d.op == OP_AVGPOOL_BWD) return pool_fits(d) && d.n * d.ih * d.iw <= MAX_ELEMS;
    if (d.op == OP_RELU || d.op == OP_SEED) return d.n <= MAX_ELEMS;
    return false;
}

// Runs `count` descriptors from `list_addr` under ReLU-backward `mode`; a status on refusal.
inline int run_list(short *ddr, int list_addr, int count, int mode, int target, bit_t mask[MASK_DEPTH],
                    pool_index_t pool_index[INDEX_DEPTH], int &saturated) {
jobs:
    for (int j = 0; j < MAX_JOBS; j++) {
#pragma HLS loop_tripcount min=1 max=MAX_JOBS
        if (j >= count) break;
        Desc d;
        read_desc(ddr, list_addr + j * DESC_BYTES, d);
        if (!desc_fits(d)) return STATUS_BAD_PROGRAM;
        switch (d.op) {
            case OP_CONV: conv_job(ddr, d, mode, mask, pool_index, saturated); break;
            case OP_MAXPOOL:
            case OP_AVGPOOL: pool_job(ddr, d, mask, pool_index, saturated); break;
            case OP_MAXPOOL_BWD:
            case OP_AVGPOOL_BWD: pool_backward_job(ddr, d, mode, mask, pool_index, saturated); break;
            case OP_RELU: relu_job(ddr, d, mask); break;
            case OP_SEED: seed_job(ddr, d, mode, target, mask); break;
            default: return STATUS_BAD_PROGRAM;
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------
// The controller (docs/program.md, "The controller")
// ---------------------------------------------------------------------------------------

inline bool header_fits(const Header &h) {
    return h.data_width == DATA_WIDTH && h.mask_bits <= MASK_BITS && h.index_entries <= INDEX_ENTRIES
        && h.index_bits <= INDEX_BITS && h.input_elems == INPUT_ELEMS && h.classes == CLASSES
        && h.classes >= 1 && h.n_forward <= MAX_JOBS && h.n_backward <= MAX_JOBS && h.total_bytes <= TOTAL_BYTES;
}

// One run: prediction and, unless method is 0, the method's attribution. The IG sum lives
// on chip (INPUT_ELEMS 64-bit accumulators); the header's igacc region stays unused.
inline int run_program(short *ddr, int method, int target, int steps, bit_t mask[MASK_DEPTH],
                       pool_index_t pool_index[INDEX_DEPTH]) {
    static wide_t ig_sum[INPUT_ELEMS];
    data_t logits[CLASSES];  // the image's logits: the IG steps' forward passes overwrite the DDR copy
    Header h;
    read_header(ddr, h);
    if (h.magic != PROGRAM_MAGIC || h.version != PROGRAM_VERSION || !header_fits(h)) return STATUS_BAD_PROGRAM;
    const bool integrated = method == METHOD_INTEGRATED_GRADIENTS;
    if (method < 0 || method > METHODS || target >= h.classes) return STATUS_BAD_ARGUMENT;
    if (integrated && (steps < 2 || steps > MAX_IG_STEPS)) return STATUS_BAD_ARGUMENT;
    const int mode = method_relu_mode(method);
    const int image = h.image_addr >> 1, work = h.work_addr >> 1, base = h.baseline_addr >> 1;
    const int grad = h.grad_input_addr >> 1, attr = h.attr_addr >> 1;

copy_image:
    for (int i = 0; i < INPUT_ELEMS; i++) {
#pragma HLS pipeline II=1
        ddr_write16(ddr, work + i, ddr_read16(ddr, image + i));
    }
    int alpha_frac = 0, weight_frac = 0;
    if (integrated) {
        alpha_frac = ddr_read32(ddr, h.ig_table_addr);
        weight_frac = ddr_read32(ddr, h.ig_table_addr + 4);
    }
    // Pass 0: forward on the image. Then one backward pass, or for integrated gradients a
    // forward and a backward pass per step. One call site: one MAC array for all passes.
    const int passes = method == METHOD_PREDICT ? 1 : integrated ? 1 + 2 * steps : 2;
    int used = target, predicted = 0;
    // values saturated by requantization (docs/program.md, result region)
    int sat_forward = 0, sat_backward = 0, sat_post = 0;
passes_loop:
    for (int p = 0; p < MAX_PASSES; p++) {
#pragma HLS loop_tripcount min=1 max=MAX_PASSES
        if (p >= passes) break;
        const bool backward = p > 0 && (!integrated || p % 2 == 0);
        const int step = (p - 1) / 2;
        if (integrated && p > 0 && !backward) {  // the path point: baseline + alpha_k (x - baseline), rounded once
            const wide_t alpha = ddr_read32(ddr, h.ig_table_addr + 8 + 8 * step);
        ig_point:
            for (int i = 0; i < INPUT_ELEMS; i++) {
#pragma HLS pipeline II=1
                const wide_t x = ddr_read16(ddr, image + i), b = ddr_read16(ddr, base + i);
                ddr_write16(ddr, work + i, requantize((b << alpha_frac) + alpha * (x - b), alpha_frac, sat_post));
            }
        }
        const int status = run_list(ddr, backward ? h.backward_addr : h.forward_addr,
                                    backward ? h.n_backward : h.n_forward, backward ? mode : 0, used, mask,
                                    pool_index, backward ? sat_backward : sat_forward);
        if (status) return status;
        if (p == 0) {  // first maximum of the logits
            data_t best = 0;
        argmax:
            for (int c = 0; c < CLASSES; c++) {
#pragma HLS pipeline II=1
                const data_t v = ddr_read16(ddr, (h.logits_addr >> 1) + c);
                logits[c] = v;
                if (c == 0 || v > best) {
                    best = v;
                    predicted = c;
                }
            }
            used = target < 0 ? predicted : target;
        }
        if (integrated && backward) {  // sum += weight_k * grad_input, wide
            const wide_t weight = ddr_read32(ddr, h.ig_table_addr + 12 + 8 * step);
        ig_accumulate:
            for (int i = 0; i < INPUT_ELEMS; i++) {
#pragma HLS pipeline II=1
                const wide_t term = weight * ddr_read16(ddr, grad + i);
                ig_sum[i] = step == 0 ? term : wide_t(ig_sum[i] + term);
            }
        }
    }
    if (integrated) {
    restore_logits:
        for (int c = 0; c < CLASSES; c++) {
#pragma HLS pipeline II=1
            ddr_write16(ddr, (h.logits_addr >> 1) + c, logits[c]);
        }
    }

    // Post-processing: one element a cycle.
    const int ixg_shift = h.input_frac + header_grad_frac(h, mode) - h.ixg_frac;
    const int sum_shift = weight_frac + h.grad_frac0 - h.ig_sum_frac;
    const int ig_shift = h.input_frac + h.ig_sum_frac - h.ig_frac;
post_process:
    for (int i = 0; i < INPUT_ELEMS; i++) {
#pragma HLS pipeline II=1
        if (method == METHOD_PREDICT) break;
        const wide_t x = ddr_read16(ddr, image + i);
        wide_t out;
        if (integrated) {
            const wide_t diff = x - ddr_read16(ddr, base + i);
            const wide_t summed = requantize(ig_sum[i], sum_shift, sat_post);
            out = requantize(diff * summed, ig_shift, sat_post);
        } else {
            const wide_t g = ddr_read16(ddr, grad + i);
            if (method == METHOD_SALIENCY) {
                out = saturate_counted(g < 0 ? wide_t(-g) : g, sat_post);
            } else if (method == METHOD_INPUT_X_GRADIENT) {
                out = requantize(x * g, ixg_shift, sat_post);
            } else {
                out = g;
            }
        }
        ddr_write16(ddr, attr + i, out);
    }
    const int result[RESULT_WORDS] = {predicted, used, sat_forward, sat_backward, sat_post};
write_result:
    for (int k = 0; k < RESULT_WORDS; k++) {
#pragma HLS pipeline II=2
        ddr_write32(ddr, h.result_addr + 4 * k, result[k]);
    }
    return 0;
}

}  // namespace xaihls

#endif
