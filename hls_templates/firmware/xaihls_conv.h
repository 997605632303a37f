// Engine v2: the CONV job (docs/engine_v2.md, "The CONV job") and the SEED job.
//
// One decode stage turns a descriptor into narrow per-unit configurations; four units run
// as a DATAFLOW region, each counting through the job's tiles on its own:
//
//   load_tiles  --input and weight tiles (ping-pong)-->  mac_tiles  --accumulators (ping-pong)-->
//   write_back_tiles  --beats and write commands-->  write_tiles
//
// The loader reads a tile's input rows of one block and a (m-tile, n-tile)'s weights as one
// linear burst each; the MAC array takes TM x TN products a cycle; the write-back handles E
// lanes (one AXI beat) a cycle; the writer bursts each output run. Every address, count and
// stride comes from the descriptor's fields and counters stepped by additions: the compiler
// (xaihls/plan/lowering.py) precomputed every product a pipelined loop would need, and the
// few products left (decode, once a job) are of fields, never inside a pipelined loop.
//
// Bit-exact with the Program interpreter (xaihls/sim/interpreter.py, Engine._conv) and so with
// the golden model (tests/test_hls_v2.py).
#ifndef XAIHLS_CONV_H_
#define XAIHLS_CONV_H_

#include "xaihls_types.h"

namespace xaihls {

// ---------------------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------------------

// The descriptor fields the engine reads (contract.DESCRIPTOR), as integers.
struct Desc {
    int op, flags, m_tiles, n_tiles, out_blocks, row_tiles, oh, slot, ow, tile_rows, last_rows, tile_step;
    int ky, kx, ih, iw, isy, isx, iky, ikx, iy0, ix0, load_lo, load_rows, load_rows_last, load_step;
    int walk_row, walk_pass_row, walk_origin;
    uint32_t in_addr, in_block_bytes, in_row_bytes, w_addr, w_mt_bytes, w_nt_bytes, b_addr;
    uint32_t out_addr, out_block_bytes, out_row_bytes;
    int bias_shift, cap, oph, opw, osy, osx, oyo, oxo, shift0, shift1, shift2;
    int mask_base, mask_plane, index_base, index_plane;
    int pool_kh, pool_kw, pool_sh, pool_sw, pool_oh, pool_ow, code0, code_ky, code_kx, unpool;
    bool w_once;                  // pass (0, 0)'s weights serve every pass
    bool w_diag;                  // DIAG: a pass's weights one a lane (lane m's at column m mod TN)
    int src_b, xs_a[3], xs_b[3];  // the second source's first block; each source's operand shift by ReLU mode
    int in_keep;                  // one row tile: input words between the n-tiles' kept inputs (0: none kept)
    int slots;                    // a slot job: runs this many times (0 or 1: once), one after another,
    uint32_t in_slot_bytes, out_slot_bytes;  // slot s at in_addr, out_addr + s times these,
    int mask_slot, index_slot;    // mask_base, index_base + s times these
};

inline int field(const uint32_t *w, c::FieldSpec f) { return int(c::get_field(w, f)); }
inline uint32_t address(const uint32_t *w, c::FieldSpec f) { return uint32_t(c::get_field(w, f)); }

inline Desc decode_desc(const uint32_t w[c::DESCRIPTOR_WORDS]) {
    Desc d;
    d.op = field(w, c::DESCRIPTOR_OP);
    d.flags = field(w, c::DESCRIPTOR_FLAGS);
    d.m_tiles = field(w, c::DESCRIPTOR_M_TILES);
    d.n_tiles = field(w, c::DESCRIPTOR_N_TILES);
    d.out_blocks = field(w, c::DESCRIPTOR_OUT_BLOCKS);
    d.row_tiles = field(w, c::DESCRIPTOR_ROW_TILES);
    d.oh = field(w, c::DESCRIPTOR_OH);
    d.slot = field(w, c::DESCRIPTOR_SLOT);
    d.ow = field(w, c::DESCRIPTOR_OW);
    d.tile_rows = field(w, c::DESCRIPTOR_TILE_ROWS);
    d.last_rows = field(w, c::DESCRIPTOR_LAST_ROWS);
    d.tile_step = field(w, c::DESCRIPTOR_TILE_STEP);
    d.ky = field(w, c::DESCRIPTOR_KY);
    d.kx = field(w, c::DESCRIPTOR_KX);
    d.ih = field(w, c::DESCRIPTOR_IH);
    d.iw = field(w, c::DESCRIPTOR_IW);
    d.isy = field(w, c::DESCRIPTOR_ISY);
    d.isx = field(w, c::DESCRIPTOR_ISX);
    d.iky = field(w, c::DESCRIPTOR_IKY);
    d.ikx = field(w, c::DESCRIPTOR_IKX);
    d.iy0 = field(w, c::DESCRIPTOR_IY0);
    d.ix0 = field(w, c::DESCRIPTOR_IX0);
    d.load_lo = field(w, c::DESCRIPTOR_LOAD_LO);
    d.load_rows = field(w, c::DESCRIPTOR_LOAD_ROWS);
    d.load_rows_last = field(w, c::DESCRIPTOR_LOAD_ROWS_LAST);
    d.load_step = field(w, c::DESCRIPTOR_LOAD_STEP);
    d.walk_row = field(w, c::DESCRIPTOR_WALK_ROW);
    d.walk_pass_row = field(w, c::DESCRIPTOR_WALK_PASS_ROW);
    d.walk_origin = field(w, c::DESCRIPTOR_WALK_ORIGIN);
    d.in_addr = address(w, c::DESCRIPTOR_IN_ADDR);
    d.in_block_bytes = address(w, c::DESCRIPTOR_IN_BLOCK_BYTES);
    d.in_row_bytes = address(w, c::DESCRIPTOR_IN_ROW_BYTES);
    d.w_addr = address(w, c::DESCRIPTOR_W_ADDR);
    d.w_mt_bytes = address(w, c::DESCRIPTOR_W_MT_BYTES);
    d.w_nt_bytes = address(w, c::DESCRIPTOR_W_NT_BYTES);
    d.b_addr = address(w, c::DESCRIPTOR_B_ADDR);
    d.bias_shift = field(w, c::DESCRIPTOR_BIAS_SHIFT);
    d.cap = field(w, c::DESCRIPTOR_CAP);
    d.out_addr = address(w, c::DESCRIPTOR_OUT_ADDR);
    d.out_block_bytes = address(w, c::DESCRIPTOR_OUT_BLOCK_BYTES);
    d.out_row_bytes = address(w, c::DESCRIPTOR_OUT_ROW_BYTES);
    d.oph = field(w, c::DESCRIPTOR_OPH);
    d.opw = field(w, c::DESCRIPTOR_OPW);
    d.osy = field(w, c::DESCRIPTOR_OSY);
    d.osx = field(w, c::DESCRIPTOR_OSX);
    d.oyo = field(w, c::DESCRIPTOR_OYO);
    d.oxo = field(w, c::DESCRIPTOR_OXO);
    d.shift0 = field(w, c::DESCRIPTOR_SHIFT0);
    d.shift1 = field(w, c::DESCRIPTOR_SHIFT1);
    d.shift2 = field(w, c::DESCRIPTOR_SHIFT2);
    d.mask_base = field(w, c::DESCRIPTOR_MASK_BASE);
    d.mask_plane = field(w, c::DESCRIPTOR_MASK_PLANE);
    d.index_base = field(w, c::DESCRIPTOR_INDEX_BASE);
    d.index_plane = field(w, c::DESCRIPTOR_INDEX_PLANE);
    d.pool_kh = field(w, c::DESCRIPTOR_POOL_KH);
    d.pool_kw = field(w, c::DESCRIPTOR_POOL_KW);
    d.pool_sh = field(w, c::DESCRIPTOR_POOL_SH);
    d.pool_sw = field(w, c::DESCRIPTOR_POOL_SW);
    d.pool_oh = field(w, c::DESCRIPTOR_POOL_OH);
    d.pool_ow = field(w, c::DESCRIPTOR_POOL_OW);
    d.code0 = field(w, c::DESCRIPTOR_CODE0);
    d.code_ky = field(w, c::DESCRIPTOR_CODE_KY);
    d.code_kx = field(w, c::DESCRIPTOR_CODE_KX);
    d.unpool = field(w, c::DESCRIPTOR_UNPOOL);
    d.w_once = field(w, c::DESCRIPTOR_W_ONCE) != 0;
    d.w_diag = field(w, c::DESCRIPTOR_W_DIAG) != 0;
    d.src_b = field(w, c::DESCRIPTOR_SRC_B);
    d.xs_a[c::RELU_MASK] = field(w, c::DESCRIPTOR_XS_A0);
    d.xs_a[c::RELU_GUIDED] = field(w, c::DESCRIPTOR_XS_A1);
    d.xs_a[c::RELU_DECONV] = field(w, c::DESCRIPTOR_XS_A2);
    d.xs_b[c::RELU_MASK] = field(w, c::DESCRIPTOR_XS_B0);
    d.xs_b[c::RELU_GUIDED] = field(w, c::DESCRIPTOR_XS_B1);
    d.xs_b[c::RELU_DECONV] = field(w, c::DESCRIPTOR_XS_B2);
    d.slots = field(w, c::DESCRIPTOR_SLOTS);
    d.in_keep = field(w, c::DESCRIPTOR_IN_KEEP);
    d.mask_slot = field(w, c::DESCRIPTOR_MASK_SLOT);
    d.in_slot_bytes = address(w, c::DESCRIPTOR_IN_SLOT_BYTES);
    d.out_slot_bytes = address(w, c::DESCRIPTOR_OUT_SLOT_BYTES);
    d.index_slot = field(w, c::DESCRIPTOR_INDEX_SLOT);
    return d;
}

// What the loader needs: tile counts, the input run of a tile, the weight run, the biases.
struct LoadCfg {
    int row_tiles_total, row_tiles, n_tiles, passes;
    bool diag, bias, gate;
    int bias_beat;                         // m-tile 0's biases
    int in_beat, block_beats;              // block 0 of the input tensor; beats between blocks
    int map_beats;                         // beats of a block's ih rows (rows beyond are not read)
    int first_beats, step_beats;           // (first input row of row tile 0, rows between tiles) x a row's beats
    int count_beats, count_beats_last;     // input rows of a full / the last row tile, in beats
    int first_word, step_words;            // the same in buffer words (pixels)
    bool strided;                          // rows farther apart than their length (a batched job's slots)
    int ih, iw, row_len, row_stride;       // strided: rows of the input; a row's beats; beats between rows
    int first_row, step_rows, rows, rows_last;  // strided: load_lo, load_step, load_rows, load_rows_last
    int diag_n_tiles, diag_block_step;     // DIAG: n-tiles of an m-tile (GROUPS, or 1 with LANES); their beats
    int gate_word, index_plane, diag_gate_step;  // GATE: pool-index words of block 0; per block; per m-tile
    int w_beat, w_mt_beats, w_nt_beats;    // weights of (m-tile 0, its first n-tile); strides
    bool keep;                             // in_keep: m-tile 0 loads the input once for every m-tile
    int keep_words;                        // in_keep: words between the n-tiles' kept inputs
};

// What the MAC array and its walker need.
struct MacCfg {
    int row_tiles_total, row_tiles, n_tiles, passes, kx;
    bool diag, gate, w_once;
    bool w_diag;                // a pass's weights one a lane (lane_weights)
    int diag_n_tiles;           // DIAG: n-tiles of an m-tile (GROUPS, or 1 with LANES)
    int ow, positions, positions_last, iters, iters_last;
    int walk_origin, walk_row, walk_pass_row, isx, ikx, kx_back;  // buffer words
    int iy0, load_step, isy, iky, ih, ix0, iw;                   // input rows and columns (padding)
    int code0, code_ky, code_kx, kx_code_back;                    // GATE: the pass's window position
    int unpool, uls, umsk, mode, piw;  // UNPOOL: mode, log2 and side - 1 of the window, the run's rule, pooled width
    int load_lo, load_rows, load_step_pooled;  // UNPOOL: the tiles' pooled rows
    int src_b;                  // the first n-tile of the second source (0: one source)
    x_shift_t xs_a, xs_b;       // the operand shift of each source under the run's ReLU mode
};

// UNPOOL: the buffer word of each loaded pooled row (row j at j * piw), made by additions once a
// job so that the walker looks a row up instead of multiplying.
static_assert(IN_DEPTH <= 65536, "a buffer word address fits 16 bits");
typedef ap_uint<16> row_word_t;
typedef row_word_t row_words_t[IN_DEPTH];

// What the write-back needs: requantization, ReLU bits, pool, and where each output run goes.
struct StoreCfg {
    int row_tiles_total, row_tiles, out_blocks;
    bool relu, pool, rap, bwd_relu;
    int mode, shift, bias_shift;
    int bwd_mode;                    // BWD_RELU's rule (the ReLU6 deconvnet rule is the guided one)
    int rap_bit_lo, rap_bit_hi, rap_hi;  // RAP: bit [lo < out < hi], out clamped to 0..hi (ReLU or ReLU6)
    int ow, positions, positions_last, tile_rows, last_rows;  // output columns of a row; pixels of a row tile
    bool lanes;                      // LANES: output column x*GROUPS + g is lane group g's of grid column x
    bool contiguous;                 // a row tile of a block is one linear run of beats
    int mt_blocks;                   // output blocks of an m-tile: GROUPS, or 1 with LANES
    int out_beat, block_beats, mt_out_step;           // output block 0; a block; an m-tile's blocks
    int origin, tile_out_step, row_out_step, row_beats, gap;  // beats within a block
    int mask_word, mask_block_words, mt_mask_step;    // ReLU-bit words
    int mask_origin, tile_mask_step, row_mask_step, pixel_mask_step;
    int grid_tile_words;                              // POOL with RELU: the conv grid's bits per row tile
    int kh, kw, sh, pool_oh, window_last, window_iters, window_wrap, window_step, top_step;
    int pool_row_beats, pool_out_step;                // a pooled row's beats; beats between pooled rows
    int index_word, index_plane, index_row_step, mt_index_step;  // a pool's index words: pixels a block, a row
    bool padded;                                      // DIAG with POOL: grid positions outside the map never win
    bool sum;                                         // SUM: a window's values summed, no index kept
    int ih, iw, iy0, ix0, tile_y_step, row_y_step, isy, isx, window_x_step;  // padded: the input pixel of a position
    int commands;                                     // output runs of the job
};

inline int relu_mode(int method) {
    if (method == c::METHOD_GUIDED_BACKPROP || method == c::METHOD_GUIDED_GRAD_CAM) return c::RELU_GUIDED;
    if (method == c::METHOD_DECONVNET) return c::RELU_DECONV;
    return c::RELU_MASK;
}

// The rule BWD_RELU applies: the run's, but at a ReLU6 the deconvnet rule also keeps only the
// elements whose bit is set, max(g, 0) * bit, which is the guided rule.
inline int bwd_relu_mode(int mode, bool relu6) { return relu6 && mode == c::RELU_DECONV ? c::RELU_GUIDED : mode; }

inline int passes_of(const Desc &d) { return d.ky * d.kx; }
// weight passes a tile stores: one with w_once (every pass reads it)
inline int w_passes_of(const Desc &d) { return d.w_once ? imin(1, passes_of(d)) : passes_of(d); }

// A CONV descriptor this engine can run: its tiles fit the buffers, its runs are whole beats,
// its kept state lies inside the on-chip memories. (The compiler guarantees all of it for the
// engine it built the Program for; another Program is refused, not run out of bounds.)
inline bool conv_fits(const Desc &d) {
// Once a job: its products share one multiplier.
#pragma HLS allocation operation instances=mul limit=1
    const int passes = passes_of(d);
    const bool shapes = d.m_tiles >= 1 && d.row_tiles >= 1 && d.out_blocks >= 1 && d.out_blocks <= d.m_tiles * GROUPS
        && d.ow >= 1 && d.tile_rows >= 1 && d.last_rows >= 1 && d.tile_rows * d.ow <= OUT_DEPTH
        && d.last_rows * d.ow <= OUT_DEPTH
        && (d.w_diag ? (w_passes_of(d) + TN - 1) >> TN_SHIFT : w_passes_of(d)) <= W_PASSES;  // w_diag: TN a word
    const bool input = passes == 0 || (d.n_tiles >= 1 && d.iw >= 1 && d.load_rows * d.iw <= IN_DEPTH
                                       && d.load_rows_last * d.iw <= IN_DEPTH
                                       && int64_t(d.w_nt_bytes) == int64_t(w_passes_of(d))
                                              * (d.w_diag ? TM / E : PASS_BEATS) * BEAT_BYTES)
        && (!d.w_diag || (flag(d.flags, c::FLAG_DIAG) && TM % TN == 0));
    // a kept input: one row tile whose n-tiles' words lie side by side within twice the input buffer
    const bool kept = d.in_keep == 0
        || (passes != 0 && d.row_tiles == 1 && !flag(d.flags, c::FLAG_DIAG) && !flag(d.flags, c::FLAG_GATE)
            && d.unpool == c::UNPOOL_OFF && d.in_keep == d.load_rows_last * d.iw
            && int64_t(d.n_tiles) * d.in_keep <= 2 * int64_t(IN_DEPTH));
    const bool beats = aligned(d.in_addr) && aligned(d.in_block_bytes) && aligned(d.in_row_bytes)
        && aligned(d.w_addr) && aligned(d.w_mt_bytes) && aligned(d.b_addr) && aligned(d.out_addr)
        && aligned(d.out_block_bytes) && aligned(d.out_row_bytes);
    // kept state at the written elements' offsets (a pool's grid bits: mask_plane pixels a block)
    const int64_t out_extent = int64_t(d.out_blocks - 1) * d.out_block_bytes + int64_t(d.oph - 1) * d.out_row_bytes
        + int64_t(d.opw) * PIX_BEATS * BEAT_BYTES;  // bytes from out_addr past the last element written
    const bool grid_bits = flag(d.flags, c::FLAG_POOL) && flag(d.flags, c::FLAG_RELU);
    const bool bits = !(flag(d.flags, c::FLAG_RELU) || flag(d.flags, c::FLAG_RAP) || flag(d.flags, c::FLAG_BWD_RELU))
        || ((d.mask_base & (TN - 1)) == 0 && d.oph >= 1 && d.opw >= 1
            && (grid_bits ? int64_t(d.mask_base) + int64_t(d.out_blocks) * d.mask_plane * TN
                          : int64_t(d.mask_base) + out_extent / 2) <= int64_t(MASK_WORDS) * E);
    // SUM: a window summed (any size the fields hold, no index kept), with no bias, ReLU or lane groups
    const bool sum = flag(d.flags, c::FLAG_SUM);
    const bool pool = !flag(d.flags, c::FLAG_POOL)
        || (d.pool_kh >= 1 && d.pool_kw >= 1 && d.pool_sh >= 1 && d.pool_sw >= 1 && d.pool_ow >= 1
            && (sum || d.pool_kh * d.pool_kw <= (1 << INDEX_BITS)) && d.tile_rows >= d.pool_kh
            && d.last_rows >= d.pool_kh);
    const bool sums = !sum || (flag(d.flags, c::FLAG_POOL) && !flag(d.flags, c::FLAG_BIAS)
                               && !flag(d.flags, c::FLAG_RELU) && !flag(d.flags, c::FLAG_LANES));
    const bool unpool = d.unpool == c::UNPOOL_OFF
        || (HAS_GATE && flag(d.flags, c::FLAG_GATE) && d.unpool <= c::UNPOOL_RELU && d.isy == 1 && d.isx == 1
            && d.iky == -1 && d.ikx == -1 && d.pool_kh == d.pool_sh && d.pool_kw == d.pool_sw && d.pool_sh == d.pool_sw
            && (d.pool_sh == 2 || d.pool_sh == 4 || d.pool_sh == 8) && d.pool_sh * d.pool_sw <= (1 << INDEX_BITS));
    // rows farther apart than their length (slots) are loaded one by one, with no gate
    const bool rows = int64_t(d.in_row_bytes) == int64_t(d.iw) * PIX_BEATS * BEAT_BYTES
        || (!flag(d.flags, c::FLAG_GATE) && d.unpool == c::UNPOOL_OFF);
    const bool index = !((flag(d.flags, c::FLAG_POOL) && !sum) || flag(d.flags, c::FLAG_GATE))
        || (HAS_GATE && d.index_base % TN == 0 && d.oph >= 1 && d.opw >= 1
            && int64_t(d.index_base / TN) + (flag(d.flags, c::FLAG_POOL) ? out_extent / (2 * TN)
                                                                           : int64_t(d.n_tiles) * d.index_plane)
                   <= INDEX_WORDS);
    // an operand shifted by xs_* fits the multiplier's 25-bit input
    bool shifts = true;
    for (int k = 0; k < 3; k++) shifts = shifts && d.xs_a[k] <= c::MAX_X_SHIFT && d.xs_b[k] <= c::MAX_X_SHIFT;
    // LANES: a job of one source writing every column, its grid columns the opw output columns'; a
    // diagonal one reads n-tile mt, a dense one every n-tile
    const bool lanes = !flag(d.flags, c::FLAG_LANES)
        || (!flag(d.flags, c::FLAG_POOL) && !flag(d.flags, c::FLAG_GATE)
            && d.unpool == c::UNPOOL_OFF && d.src_b == 0 && d.osx == 1 && d.oxo == 0 && d.out_blocks <= d.m_tiles
            && (passes == 0 || !flag(d.flags, c::FLAG_DIAG) || d.n_tiles >= d.m_tiles)
            && (d.ow - 1) * GROUPS < d.opw && d.opw <= d.ow * GROUPS);
    return d.op == c::OP_CONV && shapes && input && kept && beats && rows && bits && pool && sums && unpool && index
        && shifts && lanes;
}

inline void decode_conv(const Desc &d, int mode, LoadCfg &lc, MacCfg &mc, StoreCfg &sc) {
// The decode stage runs once a job: its few products share one multiplier.
#pragma HLS allocation operation instances=mul limit=1
    const int passes = passes_of(d);
    const int row_beats = beat_of(d.in_row_bytes);
    lc.row_tiles_total = d.m_tiles * d.row_tiles;
    lc.row_tiles = d.row_tiles;
    lc.n_tiles = d.n_tiles;
    lc.passes = passes;
    lc.diag = flag(d.flags, c::FLAG_DIAG);
    lc.bias = flag(d.flags, c::FLAG_BIAS);
    lc.gate = flag(d.flags, c::FLAG_GATE);
    lc.bias_beat = beat_of(d.b_addr);
    lc.in_beat = beat_of(d.in_addr);
    lc.block_beats = beat_of(d.in_block_bytes);
    lc.map_beats = d.ih * row_beats;
    lc.first_beats = d.load_lo * row_beats;
    lc.step_beats = d.load_step * row_beats;
    lc.count_beats = d.load_rows * row_beats;
    lc.count_beats_last = d.load_rows_last * row_beats;
    lc.first_word = d.load_lo * d.iw;
    lc.row_len = d.iw << PIX_SHIFT;
    lc.row_stride = row_beats;
    lc.strided = row_beats != lc.row_len;
    lc.ih = d.ih;
    lc.iw = d.iw;
    lc.first_row = d.load_lo;
    lc.step_rows = d.load_step;
    lc.rows = d.load_rows;
    lc.rows_last = d.load_rows_last;
    lc.step_words = d.load_step * d.iw;
    const bool lanes = flag(d.flags, c::FLAG_LANES);
    lc.diag_n_tiles = lanes ? 1 : GROUPS;
    lc.diag_block_step = lc.diag_n_tiles * lc.block_beats;
    lc.keep = d.in_keep != 0;
    lc.keep_words = d.in_keep;
    lc.gate_word = d.index_base / TN;
    lc.index_plane = d.index_plane;
    lc.diag_gate_step = lc.diag_n_tiles * d.index_plane;
    lc.w_beat = beat_of(d.w_addr);
    lc.w_mt_beats = beat_of(d.w_mt_bytes);
    lc.w_nt_beats = beat_of(d.w_nt_bytes);
    mc.w_diag = d.w_diag;

    mc.row_tiles_total = lc.row_tiles_total;
    mc.row_tiles = d.row_tiles;
    mc.n_tiles = d.n_tiles;
    mc.passes = passes;
    mc.kx = d.kx;
    mc.diag = lc.diag;
    mc.w_once = d.w_once;
    mc.gate = lc.gate;
    mc.diag_n_tiles = lc.diag_n_tiles;
    mc.ow = d.ow;
    mc.positions = d.tile_rows * d.ow;
    mc.positions_last = d.last_rows * d.ow;
    mc.iters = passes * mc.positions;
    mc.iters_last = passes * mc.positions_last;
    mc.walk_origin = d.walk_origin;
    mc.walk_row = d.walk_row;
    mc.walk_pass_row = d.walk_pass_row;
    mc.isx = d.isx;
    mc.ikx = d.ikx;
    mc.kx_back = d.kx * d.ikx;
    mc.unpool = d.unpool;
    mc.uls = d.pool_sh == 8 ? 3 : d.pool_sh == 4 ? 2 : 1;
    mc.umsk = d.pool_sh - 1;
    mc.mode = mode;
    mc.piw = d.iw;
    mc.load_lo = d.load_lo;
    mc.load_rows = imax(d.load_rows, d.load_rows_last);
    mc.load_step_pooled = d.load_step;
    mc.iy0 = d.iy0;
    // UNPOOL: the input is the pooled map; positions and bounds are those of the window grid
    mc.load_step = d.unpool ? d.tile_step : d.load_step;
    mc.isy = d.isy;
    mc.iky = d.iky;
    mc.ih = d.unpool ? d.ih << mc.uls : d.ih;
    mc.ix0 = d.ix0;
    mc.iw = d.unpool ? d.iw << mc.uls : d.iw;
    mc.code0 = d.code0;
    mc.code_ky = d.code_ky;
    mc.code_kx = d.code_kx;
    mc.kx_code_back = d.kx * d.code_kx;
    mc.src_b = d.src_b;
    mc.xs_a = d.xs_a[mode];
    mc.xs_b = d.xs_b[mode];

    const bool pool = flag(d.flags, c::FLAG_POOL);
    const int out_row_beats = beat_of(d.out_row_bytes);
    sc.row_tiles_total = lc.row_tiles_total;
    sc.row_tiles = d.row_tiles;
    sc.out_blocks = d.out_blocks;
    sc.relu = flag(d.flags, c::FLAG_RELU);
    sc.pool = pool;
    sc.rap = flag(d.flags, c::FLAG_RAP);
    sc.bwd_relu = flag(d.flags, c::FLAG_BWD_RELU);
    sc.mode = mode;
    const bool relu6 = flag(d.flags, c::FLAG_RELU6);
    sc.bwd_mode = bwd_relu_mode(mode, relu6);
    // RAP: a ReLU is bit [0 < out], out >= 0; a ReLU6 also [out < cap], out <= cap, and under the
    // deconvnet rule its bit drops [0 < out] (the backward rule multiplies by it instead)
    sc.rap_bit_lo = relu6 && mode == c::RELU_DECONV ? -32769 : 0;
    sc.rap_bit_hi = relu6 ? d.cap : 32768;
    sc.rap_hi = relu6 ? imin(d.cap, 32767) : 32767;
    sc.shift = pool || mode == c::RELU_MASK ? d.shift0 : mode == c::RELU_GUIDED ? d.shift1 : d.shift2;
    sc.bias_shift = lc.bias ? d.bias_shift : 0;
    // LANES: a row tile's lane groups write its rows' opw columns of one block
    sc.lanes = lanes;
    sc.ow = lanes ? d.opw : d.ow;
    sc.positions = lanes ? d.tile_rows * d.opw : mc.positions;
    sc.positions_last = lanes ? d.last_rows * d.opw : mc.positions_last;
    sc.tile_rows = d.tile_rows;
    sc.last_rows = d.last_rows;
    sc.contiguous = d.osx == 1 && d.osy == 1 && d.oxo == 0 && sc.ow == d.opw && out_row_beats == (d.opw << PIX_SHIFT);
    sc.mt_blocks = lanes ? 1 : GROUPS;
    sc.out_beat = beat_of(d.out_addr);
    sc.block_beats = beat_of(d.out_block_bytes);
    sc.mt_out_step = sc.mt_blocks * sc.block_beats;
    sc.origin = d.oyo * out_row_beats + d.oxo * PIX_BEATS;
    sc.tile_out_step = d.tile_step * d.osy * out_row_beats;
    sc.row_out_step = d.osy * out_row_beats;
    sc.row_beats = sc.ow * PIX_BEATS;
    sc.gap = (d.osx - 1) * PIX_BEATS;
    // the ReLU bits of an element written lie at its beat's offset from out_addr (a word a beat);
    // a pool's grid bits (RELU with POOL), mask_plane pixels a block
    sc.mask_word = d.mask_base / E;
    sc.mask_block_words = pool && sc.relu ? d.mask_plane * PIX_BEATS : sc.block_beats;
    sc.mt_mask_step = sc.mt_blocks * sc.mask_block_words;
    sc.mask_origin = sc.origin;
    sc.tile_mask_step = sc.tile_out_step;
    sc.row_mask_step = sc.row_out_step;
    sc.pixel_mask_step = d.osx * PIX_BEATS;
    sc.grid_tile_words = d.tile_step * d.ow * PIX_BEATS;
    sc.kh = d.pool_kh;
    sc.kw = d.pool_kw;
    sc.sh = d.pool_sh;
    sc.pool_oh = d.pool_oh;
    sc.window_last = d.pool_kh * d.pool_kw - 1;
    sc.window_iters = d.pool_ow * PIX_BEATS * d.pool_kh * d.pool_kw;
    sc.window_wrap = d.ow - d.pool_kw;
    sc.window_step = d.pool_sw;
    sc.top_step = d.pool_sh * d.ow;
    sc.pool_row_beats = d.pool_ow * PIX_BEATS;
    sc.pool_out_step = out_row_beats;
    // a pool's index words (a pixel's TN entries) at its pixel's offset from out_addr
    sc.index_word = d.index_base / TN;
    sc.index_plane = sc.block_beats / PIX_BEATS;
    sc.index_row_step = out_row_beats / PIX_BEATS;
    sc.mt_index_step = sc.mt_blocks * sc.index_plane;
    sc.padded = pool && lc.diag;
    sc.sum = pool && flag(d.flags, c::FLAG_SUM);
    sc.ih = d.ih;
    sc.iw = d.iw;
    sc.iy0 = d.iy0;
    sc.ix0 = d.ix0;
    sc.isy = d.isy;
    sc.isx = d.isx;
    sc.tile_y_step = d.tile_step * d.isy;
    sc.row_y_step = d.pool_sh * d.isy;
    sc.window_x_step = d.pool_sw * d.isx;
    sc.commands = d.out_blocks * (pool ? d.pool_oh : sc.contiguous ? d.row_tiles : d.oh);
}

// The n-tiles an m-tile reads: all of them, or (DIAG) the `per` of its own channels from `first_nt` on
// (GROUPS: its TM channels; 1 with LANES: its TN channels, at every lane group).
inline int n_tiles_of(bool diag, int per, int n_tiles, int first_nt) {
    return diag ? imin(per, n_tiles - first_nt) : n_tiles;
}

// ---------------------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------------------

struct InWord {
    pixel_t x;      // TN channels of one pixel
    gate_word_t g;  // their kept pool indices (written by GATE jobs only)
};
typedef InWord in_tile_t[IN_DEPTH];

// An m-tile's TM biases (zeros without BIAS), once a row tile, for the write-back.
inline void load_bias(const beat_t *ddr, bool has_bias, int beat0, hls::stream<bias_t> &biases) {
    bias_t bias;
    for (int m = 0; m < TM; m++) {
#pragma HLS unroll
        bias[m] = 0;
    }
    if (has_bias) {
        int m0 = 0;
    load_bias:
        for (int b = 0; b < TM / E; b++) {
#pragma HLS pipeline II=1
            const beat_t beat = ddr_read(ddr, beat0 + b);
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                bias[m0 + e] = lane(beat, e);
            }
            m0 += E;
        }
    }
    biases.write(bias);
}

// An input kept across m-tiles (in_keep): n-tile k's words at k * in_keep (the RTL keeps them in
// its two input sets taken as one; here a memory of their size beside the ping-pong tiles).
typedef pixel_t kept_t[2 * IN_DEPTH];

// A tile's input rows of one block: one linear run (rows outside the map are not read; the
// walker never reads their words). Beat slot s of a pixel goes to channels s*E .. s*E+E-1 of
// its buffer word (write enables, no crossbar); with ``keep``, each word also goes to word
// kbase + word of ``kept``. Returns the words written.
inline int load_input(const beat_t *ddr, int block, int y0, int beats, int word0, in_tile_t &buf, kept_t &kept,
                      int kbase, bool keep);

// A tile's input rows one at a time, where rows lie farther apart than their length (a batched
// job: a row is a slot); rows outside 0..ih-1 stay unread.
inline int load_strided(const beat_t *ddr, int block, const LoadCfg &lc, int first, bool last, in_tile_t &buf,
                        kept_t &kept, int kbase, bool keep) {
    const int y0 = imax(first, 0), y1 = imin(first + (last ? lc.rows_last : lc.rows), lc.ih);
    int row = block + y0 * lc.row_stride, word = (y0 - first) * lc.iw, words = 0;
load_strided:
    for (int y = y0; y < y1; y++) {
#pragma HLS loop_tripcount max=MAX_BATCH
        words += load_input(ddr, row, 0, lc.row_len, word, buf, kept, kbase, keep);
        row += lc.row_stride;
        word += lc.iw;
    }
    return words;
}

inline int load_input(const beat_t *ddr, int block, int y0, int beats, int word0, in_tile_t &buf, kept_t &kept,
                      int kbase, bool keep) {
#ifndef __SYNTHESIS__
    csim_input_beats() += beats;
#endif
    pixel_t pix;
    int slot = 0, n0 = 0, word = word0;  // n0 = slot * E: the beat's first channel
load_input:
    for (int i = 0; i < beats; i++) {
#pragma HLS loop_tripcount max=IN_DEPTH * PIX_BEATS
#pragma HLS pipeline II=1
        const beat_t beat = ddr_read(ddr, block + y0 + i);
        for (int e = 0; e < E; e++) {
#pragma HLS unroll
            pix[n0 + e] = lane(beat, e);  // write enables by slot, no crossbar
        }
        if (slot == PIX_BEATS - 1) {
            buf[word].x = pix;
            if (keep) kept[kbase + word] = pix;
            word++;
            slot = 0;
            n0 = 0;
        } else {
            slot++;
            n0 += E;
        }
    }
    return word - word0;
}

// A kept input's tile for an m-tile after the first: the n-tile's words from ``kept``, no DDR read
// (words m-tile 0 did not load, rows off the map, are never read by the walker).
inline void load_kept(const kept_t &kept, int kbase, int words, in_tile_t &buf) {
load_kept:
    for (int i = 0; i < words; i++) {
#pragma HLS loop_tripcount max=IN_DEPTH
#pragma HLS pipeline II=1
        buf[i].x = kept[kbase + i];
    }
}

// GATE: the kept pool index of every channel of the loaded pixels (all PIX_BEATS banks at once).
inline void load_gate(const index_mem_t index, int first_index, int word0, int words, in_tile_t &buf) {
load_gate:
    for (int i = 0; i < words; i++) {
#pragma HLS loop_tripcount max=IN_DEPTH
#pragma HLS pipeline II=1
        gate_word_t g;
        for (int s = 0; s < PIX_BEATS; s++) {
#pragma HLS unroll
            const index_word_t v = index[s][first_index + i];
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                g[s * E + e] = v[e];
            }
        }
        buf[word0 + i].g = g;
    }
}

// A (m-tile, n-tile)'s weights: one linear run of whole passes; each pass's PASS_BEATS beats
// fill one wide word (m-major, as the compiler laid them out). w_diag: the run is every pass's TM
// lane weights, which fill the words TN passes a word (a buffer row of TN lanes' weights, as in
// the RTL's weight buffer); lane_weights puts each on its column as a pass reads them.
inline void load_weights(const beat_t *ddr, int beat0, int beats, w_tile_t &buf) {
    pass_w_t w;
    int slot = 0, k0 = 0, pass = 0;  // k0 = slot * E: the beat's first weight (m-major)
load_weights:
    for (int i = 0; i < beats; i++) {
#pragma HLS loop_tripcount max=W_PASSES * PASS_BEATS
#pragma HLS pipeline II=1
        const beat_t beat = ddr_read(ddr, beat0 + i);
        for (int e = 0; e < E; e++) {
#pragma HLS unroll
            w[k0 + e] = lane(beat, e);  // write enables by slot, no crossbar
        }
        if (slot == PASS_BEATS - 1 || i == beats - 1) {  // a w_diag run may end inside a word
            buf[pass] = w;
            pass++;
            slot = 0;
            k0 = 0;
        } else {
            slot++;
            k0 += E;
        }
    }
}

// A w_diag pass's weights as the array takes them: lane m's own weight (the run's weight
// pass * TM + m, in word pass / TN) at column m mod TN, every other column zero.
inline pass_w_t lane_weights(const w_tile_t &wt, int pass) {
    pass_w_t w;
    const int word = pass >> TN_SHIFT, base = (pass & (TN - 1)) * TM;
    for (int m = 0; m < TM; m++) {
#pragma HLS unroll
        for (int n = 0; n < TN; n++) {
#pragma HLS unroll
            w[m * TN + n] = n == (m & (TN - 1)) ? wt[word][base + m] : data_t(0);
        }
    }
    return w;
}

inline void load_tiles(const beat_t *ddr, const LoadCfg &lc, const index_mem_t index,
                       hls::stream_of_blocks<in_tile_t> &in_tiles, hls::stream_of_blocks<w_tile_t> &w_tiles,
                       hls::stream<bias_t> &biases) {
#pragma HLS inline off
    // in_keep (docs/engine_v2.md, "Inputs kept across m-tiles"; one row tile): m-tile 0 keeps n-tile
    // k's input at word k * keep_words of `kept` as it loads it, and every later m-tile's tile of
    // n-tile k comes from there instead of DDR (the words of rows off the map hold what an earlier
    // job left, as the RTL's buffer words do: the walker never reads them)
    static kept_t kept;
    bool first_mt = true;
    int rt = 0, mt_first_nt = 0;
    int bias_beat = lc.bias_beat, w_mt = lc.w_beat, block_mt = lc.in_beat, gate_mt = lc.gate_word;
    int first_beats = lc.first_beats, first_word = lc.first_word, first_row = lc.first_row;
load_row_tiles:
    for (int t = 0; t < lc.row_tiles_total; t++) {
#pragma HLS loop_tripcount max=MAX_ROW_TILES
        const bool last = rt == lc.row_tiles - 1;
        load_bias(ddr, lc.bias, bias_beat, biases);
        // the tile's rows, clipped to the map: beats from the block's start, and buffer words
        const int y0 = imax(first_beats, 0);
        const int y1 = imin(first_beats + (last ? lc.count_beats_last : lc.count_beats), lc.map_beats);
        const int word0 = imax(first_word, 0) - first_word;
        const int count = lc.passes == 0 ? 0 : n_tiles_of(lc.diag, lc.diag_n_tiles, lc.n_tiles, mt_first_nt);
        int block = block_mt, w = w_mt, gate = gate_mt + imax(first_word, 0), kbase = 0;
        const bool keep = lc.keep && first_mt;
    load_n_tiles:
        for (int k = 0; k < count; k++) {
#pragma HLS loop_tripcount max=MAX_N_TILES
            {
                hls::write_lock<in_tile_t> in_lock(in_tiles);
                in_tile_t &buf = in_lock;
                if (lc.keep && !first_mt) {
                    load_kept(kept, kbase, lc.keep_words, buf);
                } else {
                    const int words = lc.strided ? load_strided(ddr, block, lc, first_row, last, buf, kept, kbase, keep)
                                                 : load_input(ddr, block, y0, y1 - y0, word0, buf, kept, kbase, keep);
                    if (lc.gate) load_gate(index, gate, word0, words, buf);
                }
            }
            {
                hls::write_lock<w_tile_t> w_lock(w_tiles);
                w_tile_t &wbuf = w_lock;
                load_weights(ddr, w, lc.w_nt_beats, wbuf);
            }
            block += lc.block_beats;
            w += lc.w_nt_beats;
            gate += lc.index_plane;
            kbase += lc.keep_words;
        }
        first_beats += lc.step_beats;
        first_word += lc.step_words;
        first_row += lc.step_rows;
        if (++rt == lc.row_tiles) {
            rt = 0;
            first_beats = lc.first_beats;
            first_word = lc.first_word;
            first_row = lc.first_row;
            bias_beat += TM / E;
            w_mt += lc.w_mt_beats;
            first_mt = false;
            if (lc.diag) {
                mt_first_nt += lc.diag_n_tiles;
                block_mt += lc.diag_block_step;
                gate_mt += lc.diag_gate_step;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// MAC array and walker
// ---------------------------------------------------------------------------------------

// The walker: buffer word a, input row y and column x of the operands at position (r, c) and
// pass (ky, kx), as a position part plus a pass part, each stepped by additions:
//   a = walk_origin + r*walk_row + c*isx  +  ky*walk_pass_row + kx*ikx
//   y = rt*load_step + r*isy + iy0         +  ky*iky
//   x = c*isx + ix0                        +  kx*ikx
struct Walk {
    int pos, c, a_row, a_col, y_row, x_col;   // position part
    int pass, kxi, a_pass, y_pass, x_pass, code;  // pass part (code: GATE's window position)
};

inline void first_position(Walk &w, const MacCfg &mc, int y_tile) {
    w.pos = 0;
    w.c = 0;
    w.a_row = mc.walk_origin;
    w.a_col = 0;
    w.y_row = y_tile;
    w.x_col = mc.ix0;
}

inline void next_position(Walk &w, const MacCfg &mc) {
    w.pos++;
    if (w.c == mc.ow - 1) {
        w.c = 0;
        w.a_row += mc.walk_row;
        w.a_col = 0;
        w.y_row += mc.isy;
        w.x_col = mc.ix0;
    } else {
        w.c++;
        w.a_col += mc.isx;
        w.x_col += mc.isx;
    }
}

// From a row's first position to the next row's first (a row off the map, skipped).
inline void next_row(Walk &w, const MacCfg &mc) {
    w.pos += mc.ow;
    w.c = 0;
    w.a_row += mc.walk_row;
    w.a_col = 0;
    w.y_row += mc.isy;
    w.x_col = mc.ix0;
}

inline void first_pass(Walk &w, const MacCfg &mc) {
    w.pass = 0;
    w.kxi = 0;
    w.a_pass = 0;
    w.y_pass = 0;
    w.x_pass = 0;
    w.code = mc.code0;
}

inline void next_pass(Walk &w, const MacCfg &mc) {
    w.pass++;
    if (w.kxi == mc.kx - 1) {
        w.kxi = 0;
        w.a_pass += mc.walk_pass_row - mc.kx_back + mc.ikx;
        w.y_pass += mc.iky;
        w.x_pass = 0;
        w.code += mc.code_ky - mc.kx_code_back + mc.code_kx;
    } else {
        w.kxi++;
        w.a_pass += mc.ikx;
        w.x_pass += mc.ikx;
        w.code += mc.code_kx;
    }
}

// sums[m] = sum over n of W[pass][m][n] * (x_n << xs), x_n the walker's operand of channel n: zero
// outside the map (padding) and, under GATE, unless its kept pool index is the pass's code; xs
// the n-tile's source's shift. Each x_n is shifted once, for all TM lanes, into the 25-bit input
// of the lanes' DSP48s (16 + MAX_X_SHIFT bits): the shift costs no DSP.
// UNPOOL: the buffer holds pooled rows; (y, x) reads pooled pixel (y >> uls, x >> uls) (the tile's
// buffer starts at pooled row first_pooled), open where the kept window
// position is (y mod s, x mod s), and with the RELU mode where the run's rule passes it (the ReLU
// bit of the window's maximum is its alive bit).
inline void products(const Walk &w, const MacCfg &mc, int first_pooled, const row_words_t rows, x_shift_t xs,
                     const in_tile_t &in, const pass_w_t &wt, acc_t sums[TM]) {
    const int y = w.y_row + w.y_pass, x = w.x_col + w.x_pass;
    const bool valid = y >= 0 && y < mc.ih && x >= 0 && x < mc.iw;
    const int j = (y >> mc.uls) - first_pooled;  // UNPOOL: the pooled row in the tile's buffer
    const int a = !mc.unpool ? w.a_row + w.a_col + w.a_pass
        : int(rows[j >= 0 && j < IN_DEPTH ? j : 0]) + (x >> mc.uls);
    const int code = !mc.unpool ? w.code : ((y & mc.umsk) << mc.uls) | (x & mc.umsk);
#ifndef __SYNTHESIS__
    if (valid && (a < 0 || a >= IN_DEPTH)) csim_walk_fault() = true;
#endif
    const InWord word = in[valid && a >= 0 && a < IN_DEPTH ? a : 0];
    x_operand_t x_n[TN];
    for (int n = 0; n < TN; n++) {
#pragma HLS unroll
        const bool open = !mc.gate || int(word.g[n] & (ALIVE - 1)) == code;
        const data_t v = mc.unpool == c::UNPOOL_RELU ? data_t(relu_rule(word.x[n], (word.g[n] & ALIVE) != 0, mc.mode))
                                                     : word.x[n];
        x_n[n] = valid && open ? x_operand_t(x_operand_t(v) << xs) : x_operand_t(0);
    }
    for (int m = 0; m < TM; m++) {
#pragma HLS unroll
        acc_t s = 0;
        for (int n = 0; n < TN; n++) {
#pragma HLS unroll
            s += dsp_mul(operand_t(wt[m * TN + n]), x_n[n]);
        }
        sums[m] = s;
    }
}

// The MAC array on one n-tile of a row tile, TM x TN products a cycle at II=1, in one of two
// orders (one loop, so one set of multipliers):
// - weight-stationary (positions >= ACC_DISTANCE): for each pass, every position once; an
//   accumulator word is read and written every cycle, and read again one pass later;
// - position-major (fewer positions; a Linear layer has one): each position's passes in a row,
//   the sum in registers; an accumulator word is read at its first pass and written at its
//   last, and not read again within the tile.
// Rows off the map (docs/engine_v2.md): in the weight-stationary order, on a grid at least
// ACC_DISTANCE columns wide, a grid row whose input row lies off the map (every product zero)
// takes one iteration instead of ow, with no accumulator access, on every pass of the row tile
// but its first (first_nt, pass 0: it zeroes the sums) and its final (last_nt, last pass), as the
// RTL walker does. Its words keep their sums, which is what adding zeros would do.
// Either way no iteration reads an accumulator fewer than ACC_DISTANCE iterations after one
// wrote it, which is what the dependence pragma states: a pass that skips rows reads position
// (r, c) at least (ow - 1 - c) + 1 + c = ow iterations after the pass before wrote it (that pass's
// rest of row r, at least one iteration a row between, and the c positions of row r before it).
// (Tiles follow one another only after the loop has drained: each call is a new pipeline.)
inline void mac_tile(const MacCfg &mc, int y_tile, int first_pooled, const row_words_t rows, x_shift_t xs,
                     int positions, int iters, bool first_nt, bool last_nt, bool pass_major, const in_tile_t &in,
                     const w_tile_t &wt, acc_tile_t &acc) {
    Walk w;
    first_position(w, mc, y_tile);
    first_pass(w, mc);
    acc_word_t run;
    const bool skips = pass_major && mc.ow >= ACC_DISTANCE;
mac:
    for (int i = 0; i < iters; i++) {
#pragma HLS loop_tripcount max=MAX_PASSES * OUT_DEPTH
#pragma HLS pipeline II=1
#pragma HLS dependence variable=acc type=inter direction=RAW dependent=true distance=ACC_DISTANCE
        const bool last_pass = w.pass == mc.passes - 1;
        const int y = w.y_row + w.y_pass;
        const bool skip = skips && w.c == 0 && (y < 0 || y >= mc.ih) && !(first_nt && w.pass == 0)
                          && !(last_nt && last_pass);
#ifndef __SYNTHESIS__
        if (skip) csim_skipped_rows()++;
#endif
        acc_t sums[TM];
        const int wpass = mc.w_once ? 0 : w.pass;
        products(w, mc, first_pooled, rows, xs, in, mc.w_diag ? lane_weights(wt, wpass) : wt[wpass], sums);
        const acc_word_t old = acc[w.pos];
        const bool from_memory = pass_major || w.pass == 0;  // else the position's running sum
        for (int m = 0; m < TM; m++) {
#pragma HLS unroll
            const acc_t base = !from_memory ? run[m] : first_nt && w.pass == 0 ? acc_t(0) : old[m];
            run[m] = base + sums[m];
        }
        if (!skip && (pass_major || last_pass)) acc[w.pos] = run;
        if (pass_major) {
            if ((skip ? w.pos + mc.ow : w.pos + 1) == positions) {  // the pass's last row is done
                if (last_pass) break;  // fewer than iters iterations where rows were skipped
                first_position(w, mc, y_tile);
                next_pass(w, mc);
            } else if (skip) {
                next_row(w, mc);
            } else {
                next_position(w, mc);
            }
        } else if (!last_pass) {  // the position's next pass
            next_pass(w, mc);
        } else {  // the next position's first pass
            first_pass(w, mc);
            next_position(w, mc);
        }
    }
}

inline void zero_accumulators(int positions, acc_tile_t &acc) {
    acc_word_t zero;
    for (int m = 0; m < TM; m++) {
#pragma HLS unroll
        zero[m] = 0;
    }
mac_zero:
    for (int p = 0; p < positions; p++) {
#pragma HLS loop_tripcount max=OUT_DEPTH
#pragma HLS pipeline II=1
        acc[p] = zero;
    }
}

inline void mac_tiles(const MacCfg &mc, hls::stream_of_blocks<in_tile_t> &in_tiles,
                      hls::stream_of_blocks<w_tile_t> &w_tiles, hls::stream_of_blocks<acc_tile_t> &acc_tiles) {
#pragma HLS inline off
    int rt = 0, mt_first_nt = 0, y_tile = mc.iy0, first_pooled = mc.load_lo;
    row_words_t rows;
    if (mc.unpool) {
        int word = 0;
    mac_unpool_rows:
        for (int j = 0; j < mc.load_rows; j++) {
#pragma HLS loop_tripcount max=IN_DEPTH
#pragma HLS pipeline II=1
            rows[j] = word;
            word += mc.piw;
        }
    }
mac_row_tiles:
    for (int t = 0; t < mc.row_tiles_total; t++) {
#pragma HLS loop_tripcount max=MAX_ROW_TILES
        const bool last = rt == mc.row_tiles - 1;
        const int positions = last ? mc.positions_last : mc.positions;
        const int iters = last ? mc.iters_last : mc.iters;
        const int count = mc.passes == 0 ? 0 : n_tiles_of(mc.diag, mc.diag_n_tiles, mc.n_tiles, mt_first_nt);
        hls::write_lock<acc_tile_t> acc_lock(acc_tiles);
        acc_tile_t &acc = acc_lock;
        if (count <= 0) zero_accumulators(positions, acc);  // a phase no tap reaches: zeros
    mac_n_tiles:
        for (int k = 0; k < count; k++) {
#pragma HLS loop_tripcount max=MAX_N_TILES
            hls::read_lock<in_tile_t> in_lock(in_tiles);
            hls::read_lock<w_tile_t> w_lock(w_tiles);
            const in_tile_t &in = in_lock;
            const w_tile_t &wt = w_lock;
            // n-tile mt_first_nt + k (its input block) is the second source's from src_b on
            const x_shift_t xs = mc.src_b != 0 && mt_first_nt + k >= mc.src_b ? mc.xs_b : mc.xs_a;
            // the weight-stationary order only where its accumulator distance holds
            mac_tile(mc, y_tile, first_pooled, rows, xs, positions, iters, k == 0, k == count - 1,
                     positions >= ACC_DISTANCE, in, wt, acc);
        }
        y_tile += mc.load_step;
        first_pooled += mc.load_step_pooled;
        if (++rt == mc.row_tiles) {
            rt = 0;
            y_tile = mc.iy0;
            first_pooled = mc.load_lo;
            if (mc.diag) mt_first_nt += mc.diag_n_tiles;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Write-back (E lanes a cycle) and writer
// ---------------------------------------------------------------------------------------

// One linear run of output beats (`gap` beats skipped after each pixel: a stride phase).
struct WriteCmd {
    int start, beats, gap;
};

// The E accumulator lanes q*E .. q*E+E-1 of one position (a TM/E-to-1 multiplexer a lane).
inline void pick_lanes(const acc_word_t &word, const bias_t &bias, int q, int bias_shift, wide_t v[E]) {
    for (int k = 0; k < TM / E; k++) {
#pragma HLS unroll
        if (k == q) {
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                v[e] = wide_t(word[k * E + e]) + (wide_t(bias[k * E + e]) << bias_shift);
            }
        }
    }
}

// RAP on a requantized value, the job's ReLU or ReLU6: clamps it and returns its bit.
inline bool rap(const StoreCfg &sc, data_t &out) {
    const bool bit = out > sc.rap_bit_lo && out < sc.rap_bit_hi;
    if (out < 0) out = 0;
    if (out > sc.rap_hi) out = data_t(sc.rap_hi);
    return bit;
}

// A non-pooled block of a row tile: requantize, ReLU and its bit, the backward rule; the
// beats in output order (a run per row tile, or per row when the output is strided). With
// LANES (g = 0) the block's output columns are the lane groups of each grid column in turn:
// column x*GROUPS + k is lane group k of grid position x, up to the row's last column (a ragged
// last grid column's groups beyond it are neither written nor counted).
inline void plain_block(const StoreCfg &sc, const acc_tile_t &acc, const bias_t &bias, int g, int positions,
                        int out_start, int mask_start, mask_mem_t mask, hls::stream<beat_t> &out_beats,
                        hls::stream<WriteCmd> &cmds, int &sat) {
    const int beats = positions * PIX_BEATS;
    if (sc.contiguous) cmds.write(WriteCmd{out_start, beats, 0});
    const int q0 = g * PIX_BEATS, q_last = (GROUPS - 1) * PIX_BEATS;
    int q = q0, slot = 0, pos = 0, c = 0;
    int out_row = out_start, mask_row = mask_start, mask_pixel = mask_start;
    int count = 0;
write_back:
    for (int i = 0; i < beats; i++) {
#pragma HLS loop_tripcount max=OUT_DEPTH * PIX_BEATS
#pragma HLS pipeline II=1
        if (!sc.contiguous && c == 0 && slot == 0) cmds.write(WriteCmd{out_row, sc.row_beats, sc.gap});
        wide_t v[E];
        pick_lanes(acc[pos], bias, q + slot, sc.bias_shift, v);
        const int mask_addr = mask_pixel + slot;
        const mask_word_t bits_in = sc.bwd_relu ? mask[mask_addr] : mask_word_t(0);
        mask_word_t bits;
        beat_t beat;
        for (int e = 0; e < E; e++) {
#pragma HLS unroll
            bool clamped;
            data_t out = requantize(v[e], sc.shift, clamped);
            count += clamped;
            bool bit = false;
            if (sc.relu) {
                bit = v[e] > 0;
                if (out < 0) out = 0;
            }
            if (sc.rap) bit = rap(sc, out);
            if (sc.bwd_relu) out = data_t(relu_rule(out, bits_in[e], sc.bwd_mode));
            bits[e] = bit;
            set_lane(beat, e, out);
        }
        if (sc.relu || sc.rap) mask[mask_addr] = bits;
        out_beats.write(beat);
        if (slot == PIX_BEATS - 1) {
            slot = 0;
            if (sc.lanes && q != q_last && c != sc.ow - 1) {  // the next lane group of the grid position
                q += PIX_BEATS;
            } else {
                q = q0;
                pos++;
            }
            mask_pixel += sc.pixel_mask_step;
            if (c == sc.ow - 1) {
                c = 0;
                out_row += sc.row_out_step;
                mask_row += sc.row_mask_step;
                mask_pixel = mask_row;
            } else {
                c++;
            }
        } else {
            slot++;
        }
    }
    sat += count;
}

// Where the next pooled row of a block goes (advanced row by row across the row tiles).
struct PoolRow {
    int py, out, mask, index;  // pooled row; its output beat, RAP-bit word and index word within the block
};

// A pooled block of a row tile: the ReLU bit of every grid position (with RELU), then each
// whole pooled row: window max ranked on max(v, 0) with RELU, the first maximum in raster
// order, its window position to the index memory, requantize, RAP. A padded pool's positions
// outside the input map rank below every other (`y_tile`: the input row of the tile's grid row 0).
inline void pool_block(const StoreCfg &sc, const acc_tile_t &acc, const bias_t &bias, int g, int positions, int rows,
                       int y_tile, int out_blk, int mask_blk, int index_blk, int grid_start, PoolRow &row,
                       mask_mem_t mask, index_mem_t index, hls::stream<beat_t> &out_beats, hls::stream<WriteCmd> &cmds,
                       int &sat) {
    const int q0 = g * PIX_BEATS;
    if (sc.relu) {
        int slot = 0, pos = 0;
    pool_grid_bits:
        for (int i = 0; i < positions * PIX_BEATS; i++) {
#pragma HLS loop_tripcount max=OUT_DEPTH * PIX_BEATS
#pragma HLS pipeline II=1
            wide_t v[E];
            pick_lanes(acc[pos], bias, q0 + slot, sc.bias_shift, v);
            mask_word_t bits;
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                bits[e] = v[e] > 0;
            }
            mask[mask_blk + grid_start + i] = bits;
            if (slot == PIX_BEATS - 1) {
                slot = 0;
                pos++;
            } else {
                slot++;
            }
        }
    }
    int count = 0, top = 0, top_row = 0;  // the window's first grid position and grid row
    int y_top = y_tile;                   // the input row of the window's first grid row
pool_rows:
    for (int pr = 0; pr < OUT_DEPTH; pr++) {
        if (top_row + sc.kh > rows || row.py >= sc.pool_oh) break;
        cmds.write(WriteCmd{out_blk + row.out, sc.pool_row_beats, 0});
        int slot = 0, w = 0, wx = 0, wy = 0, win = top, pos = top;
        int x_win = sc.ix0, iy = y_top, ix = x_win;  // the input pixel of the window's first position; of pos
        bool seen = false;                           // a position inside the map is in the window so far
        int index_addr = index_blk + row.index, mask_addr = mask_blk + row.mask;
        wide_t best[E], rank[E];
        index_t where[E];
    pool_window:
        for (int i = 0; i < sc.window_iters; i++) {
#pragma HLS loop_tripcount max=OUT_DEPTH * PIX_BEATS
#pragma HLS pipeline II=1
            wide_t v[E];
            pick_lanes(acc[pos], bias, q0 + slot, sc.bias_shift, v);
            const bool inside = !sc.padded || (iy >= 0 && iy < sc.ih && ix >= 0 && ix < sc.iw);
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                const wide_t r = sc.relu && v[e] < 0 ? wide_t(0) : v[e];
                if (sc.sum) {
                    best[e] = w == 0 ? v[e] : wide_t(best[e] + v[e]);
                    continue;
                }
                // outside positions never displace one inside; the first inside one takes the window
                if (w == 0 || (inside && (!seen || r > rank[e]))) {
                    rank[e] = inside ? r : wide_t(0);
                    best[e] = v[e];
                    where[e] = w;
                }
            }
            seen = (w != 0 && seen) || inside;
            if (w == sc.window_last) {
                beat_t beat;
                mask_word_t bits;
                index_word_t kept;
                for (int e = 0; e < E; e++) {
#pragma HLS unroll
                    bool clamped;
                    data_t out = requantize(best[e], sc.shift, clamped);
                    count += clamped;
                    if (sc.relu && out < 0) out = 0;
                    if (!sc.sum) kept[e] = where[e] | (rank[e] > 0 ? index_t(ALIVE) : index_t(0));
                    bool bit = false;
                    if (sc.rap) bit = rap(sc, out);
                    bits[e] = bit;
                    set_lane(beat, e, out);
                }
                if (!sc.sum) index[slot][index_addr] = kept;
                if (sc.rap) mask[mask_addr] = bits;
                mask_addr++;
                out_beats.write(beat);
            }
            if (wx == sc.kw - 1) {
                wx = 0;
                if (wy == sc.kh - 1) {
                    wy = 0;
                    w = 0;
                    if (slot == PIX_BEATS - 1) {
                        slot = 0;
                        win += sc.window_step;
                        x_win += sc.window_x_step;
                        index_addr++;
                    } else {
                        slot++;
                    }
                    pos = win;
                    iy = y_top;
                } else {
                    wy++;
                    w++;
                    pos += sc.window_wrap + 1;
                    iy += sc.isy;
                }
                ix = x_win;
            } else {
                wx++;
                w++;
                pos++;
                ix += sc.isx;
            }
        }
        top += sc.top_step;
        top_row += sc.sh;
        y_top += sc.row_y_step;
        row.py++;
        row.out += sc.pool_out_step;
        row.mask += sc.pool_out_step;
        row.index += sc.index_row_step;
    }
    sat += count;
}

inline void write_back_tiles(const StoreCfg &sc, hls::stream<bias_t> &biases,
                             hls::stream_of_blocks<acc_tile_t> &acc_tiles, mask_mem_t mask, index_mem_t index,
                             hls::stream<beat_t> &out_beats, hls::stream<WriteCmd> &cmds, int &saturated) {
#pragma HLS inline off
    int sat = 0, rt = 0, blk0 = 0;
    int out_mt = sc.out_beat, mask_mt = sc.mask_word, index_mt = sc.index_word;  // block blk0
    int out_tile = sc.origin, mask_tile = sc.mask_origin, grid_tile = 0;          // the row tile within a block
    int y_tile = sc.iy0;                                                          // its grid row 0's input row
    PoolRow pooled = {0, 0, 0, 0};
write_back_row_tiles:
    for (int t = 0; t < sc.row_tiles_total; t++) {
#pragma HLS loop_tripcount max=MAX_ROW_TILES
        const bool last = rt == sc.row_tiles - 1;
        const int positions = last ? sc.positions_last : sc.positions;
        const int rows = last ? sc.last_rows : sc.tile_rows;
        const bias_t bias = biases.read();
        hls::read_lock<acc_tile_t> acc_lock(acc_tiles);
        const acc_tile_t &acc = acc_lock;
        int out_blk = out_mt, mask_blk = mask_mt, index_blk = index_mt;
        PoolRow next = pooled;
    write_back_blocks:
        for (int g = 0; g < GROUPS; g++) {
            // lanes beyond the tensor's blocks are not written; with LANES one block holds every lane group
            if (g == sc.mt_blocks || blk0 + g >= sc.out_blocks) break;
            if (sc.pool) {
                next = pooled;
                pool_block(sc, acc, bias, g, positions, rows, y_tile, out_blk, mask_blk, index_blk, grid_tile, next,
                           mask, index, out_beats, cmds, sat);
            } else {
                plain_block(sc, acc, bias, g, positions, out_blk + out_tile, mask_blk + mask_tile, mask, out_beats,
                            cmds, sat);
            }
            out_blk += sc.block_beats;
            mask_blk += sc.mask_block_words;
            index_blk += sc.index_plane;
        }
        pooled = next;
        out_tile += sc.tile_out_step;
        mask_tile += sc.tile_mask_step;
        grid_tile += sc.grid_tile_words;
        y_tile += sc.tile_y_step;
        if (++rt == sc.row_tiles) {
            rt = 0;
            y_tile = sc.iy0;
            out_tile = sc.origin;
            mask_tile = sc.mask_origin;
            grid_tile = 0;
            pooled = PoolRow{0, 0, 0, 0};
            blk0 += sc.mt_blocks;
            out_mt += sc.mt_out_step;
            mask_mt += sc.mt_mask_step;
            index_mt += sc.mt_index_step;
        }
    }
    saturated = sat;
}

// The only unit that writes DDR: each command's beats as one burst (or, for a stride phase,
// a pixel's beats at a time).
inline void write_tiles(beat_t *ddr, int commands, hls::stream<WriteCmd> &cmds, hls::stream<beat_t> &out_beats) {
#pragma HLS inline off
write_runs:
    for (int k = 0; k < commands; k++) {
#pragma HLS loop_tripcount max=MAX_WRITE_COMMANDS
        const WriteCmd cmd = cmds.read();
        if (cmd.gap == 0) {
        write_burst:
            for (int i = 0; i < cmd.beats; i++) {
#pragma HLS loop_tripcount max=OUT_DEPTH * PIX_BEATS
#pragma HLS pipeline II=1
                ddr_write(ddr, cmd.start + i, out_beats.read());
            }
        } else {
            int addr = cmd.start, slot = 0;
        write_strided:
            for (int i = 0; i < cmd.beats; i++) {
#pragma HLS loop_tripcount max=OUT_DEPTH * PIX_BEATS
#pragma HLS pipeline II=1
                ddr_write(ddr, addr, out_beats.read());
                if (slot == PIX_BEATS - 1) {
                    slot = 0;
                    addr += cmd.gap + 1;
                } else {
                    slot++;
                    addr++;
                }
            }
        }
    }
}

// One CONV job: the four units as a dataflow region. Input, weight and accumulator tiles
// are streams of blocks of depth 2 (ping-pong buffers): the loader fills the next tile while
// the MAC array computes this one; the write-back drains a row tile while the MAC array
// accumulates the next. The loader is the region's only DDR reader, the writer its only
// writer; the pool-index memory is read by the loader (GATE) and written by the write-back
// (POOL), never in the same job.
inline void conv_job(beat_t *ddr, const LoadCfg &lc, const MacCfg &mc, const StoreCfg &sc, int commands,
                     mask_mem_t mask, index_mem_t index, int &saturated) {
#pragma HLS inline off
#pragma HLS dataflow
    hls::stream_of_blocks<in_tile_t> in_tiles;
    hls::stream_of_blocks<w_tile_t> w_tiles;
    hls::stream_of_blocks<acc_tile_t> acc_tiles;
    hls::stream<bias_t> biases;
// The loader runs at most two row tiles ahead of the write-back (the ping-pong depth).
#pragma HLS stream variable=biases depth=4
    hls::stream<beat_t> out_beats;
#pragma HLS stream variable=out_beats depth=CHUNK_BEATS
    hls::stream<WriteCmd> cmds;
#pragma HLS stream variable=cmds depth=4
    load_tiles(ddr, lc, index, in_tiles, w_tiles, biases);
    mac_tiles(mc, in_tiles, w_tiles, acc_tiles);
    write_back_tiles(sc, biases, acc_tiles, mask, index, out_beats, cmds, saturated);
    write_tiles(ddr, commands, cmds, out_beats);
}

// ---------------------------------------------------------------------------------------
// SEED: the backward pass's start, one-hot 1 << shift0 at the target logit
// ---------------------------------------------------------------------------------------

inline bool seed_fits(const Desc &d, int target) {
// Once a job: its products share one multiplier.
#pragma HLS allocation operation instances=mul limit=1
    const bool bits = !flag(d.flags, c::FLAG_BWD_RELU)
        || ((d.mask_base & (TN - 1)) == 0 && int64_t(d.mask_base) + int64_t(d.out_blocks) * TN <= int64_t(MASK_WORDS) * E);
    return d.out_blocks >= 1 && aligned(d.out_addr) && d.shift0 >= 0 && d.shift0 <= 62 && target < d.out_blocks * TN
        && bits;
}

inline void seed_job(beat_t *ddr, const Desc &d, int mode, int target, const mask_mem_t mask) {
    const int base = beat_of(d.out_addr), bits0 = d.mask_base / E, beats = d.out_blocks * PIX_BEATS;
    const bool bwd = flag(d.flags, c::FLAG_BWD_RELU);
    const int rule = bwd_relu_mode(mode, flag(d.flags, c::FLAG_RELU6));
    const wide_t one = wide_t(1) << d.shift0;
    int c0 = 0;
seed:
    for (int i = 0; i < beats; i++) {
#pragma HLS loop_tripcount max=MAX_SEED_BEATS
#pragma HLS pipeline II=1
        const mask_word_t bits = bwd ? mask[bits0 + i] : mask_word_t(0);
        beat_t beat;
        for (int e = 0; e < E; e++) {
#pragma HLS unroll
            wide_t g = c0 + e == target ? one : wide_t(0);
            if (bwd) g = relu_rule(g, bits[e], rule);
            set_lane(beat, e, data_t(g));  // the low 16 bits, as a 16-bit store keeps them
        }
        ddr_write(ddr, base + i, beat);
        c0 += E;
    }
}

}  // namespace xaihls

#endif
