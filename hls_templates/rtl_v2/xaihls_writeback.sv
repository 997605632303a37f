// The write-back (docs/engine_v2.md, "Write-back"): E lanes (one AXI beat) a cycle drain a
// finished output set: bias, requantization (round half up, saturate, count), ReLU (or ReLU6) and
// its bit, the max-pool (padded: positions outside the input map never win) and its index, the
// backward ReLU rule, one row of one block per write command (SUM: a window's accumulators summed
// where a max-pool ranks them, no index kept)
// (zero strobes where an output stride skips pixels; a LANES job's row takes lane group k mod
// TPB at its pixel k). It also writes the SEED vector and the results of post-processing chunks.
//
// Guarantees: beats reach the write mover in issue order with backpressure (a beat is issued
// only while the output FIFO has room for it and for every beat still in the pipeline); an
// output set is released after its last word is read; `sat` counts the lanes of this cycle's
// output beat that saturated.

import xaihls_contract_pkg::*;
import xaihls_engine_pkg::*;

module xaihls_writeback #(
    parameter int TM            = 8,
    parameter int TN            = 4,
    parameter int E             = 4,
    parameter int OUT_DEPTH     = 256,
    parameter int CHUNK         = 64,
    parameter int MASK_WORDS    = 64,    // ReLU-bit memory: words of E bits
    parameter int INDEX_BITS    = 2,
    parameter int IXW           = 8,
    parameter int BACKWARD      = 1,
    parameter int OFF_BITS      = 24,
    parameter int LEN_BITS      = 20,
    parameter int OAW           = $clog2(OUT_DEPTH),
    parameter int MKW           = (MASK_WORDS > 1) ? $clog2(MASK_WORDS) : 1
) (
    input  logic                     clk,
    input  logic                     rst,

    input  logic                     start,
    input  logic [1:0]               kind,
    input  xaihls_contract_pkg::descriptor_t              desc,
    input  xaihls_engine_pkg::post_cfg_t                post,
    input  logic [1:0]               mode,        // the ReLU-backward rule of the run
    input  logic [15:0]              target,      // SEED: the class
    input  logic [OFF_BITS-1:0]      oyo_rb,      // oyo * out_row_bytes
    input  logic [OFF_BITS-1:0]      osy_rb,      // osy * out_row_bytes
    input  logic [15:0]              span,        // (ow - 1) * osx + 1: pixels an output row spans
    input  logic [15:0]              sh_ow,       // pool_sh * ow
    output logic                     busy,

    input  logic [1:0]               out_ready,   // output sets complete and not yet taken
    output logic                     out_take,
    output logic                     out_give,
    output logic                     bias_give,

    output logic                     rd_set,
    output logic [OAW-1:0]           rd_addr,
    input  logic [TM*48-1:0]         rd_data,
    output logic [$clog2(2*TM/E)-1:0] b_raddr,
    input  logic [E*16-1:0]          b_rdata,

    output logic [MKW-1:0]           mask_raddr,
    input  logic [E-1:0]             mask_rdata,
    output logic                     mask_we,
    output logic [MKW-1:0]           mask_waddr,
    output logic [E-1:0]             mask_wdata,
    output logic [TN/E-1:0]          ix_we,
    output logic [IXW-1:0]           ix_waddr,
    output logic [TN*(INDEX_BITS+1)-1:0] ix_wdata,   // an entry: {alive bit, window position}

    output logic                     cmd_valid,
    input  logic                     cmd_ready,
    output logic [OFF_BITS-1:0]      cmd_off,
    output logic [LEN_BITS-1:0]      cmd_beats,
    output logic                     wr_valid,
    input  logic                     wr_ready,
    output logic [E*16-1:0]          wr_data,
    output logic [2*E-1:0]           wr_strb,

    output logic [$clog2(E+1)-1:0]   sat
);
    localparam int G    = TN / E;
    localparam int LG   = $clog2(G);
    localparam int LE   = $clog2(E);
    localparam int LBB  = $clog2(2 * E);    // bytes of a beat (a ReLU word's elements), log2
    localparam int LPB  = $clog2(2 * TN);   // bytes of a pixel's block (an index word's elements), log2
    localparam int TPB  = TM / TN;
    localparam int NGRP = TM / E;
    localparam int GW   = (NGRP > 1) ? $clog2(NGRP) : 1;
    localparam int BW   = $clog2(2 * TM / E);
    localparam int FIFO_DEPTH = 16;
    localparam int SB   = $clog2(E + 1);
    localparam int JW   = LG + 1;

    // ---------------------------------------------------------------- configuration
    logic               is_post, f_bias, f_relu, f_pool, f_rap, f_bwd, has_pass;
    logic               f_relu6, r6_deconv;   // RAP is a ReLU6; its bit under the deconvnet rule: [out < cap]
    logic signed [16:0] cap;                  // the ReLU6 clamp (a 16-bit code, compared with signed outputs)
    logic               f_padded;             // a DIAG max-pool: grid positions outside the input map never win
    logic               f_sum;                // SUM: a pool window's accumulators summed, not ranked
    logic               f_lanes;              // LANES: lane group g of grid column x is output column x * TPB + g
    // rows of one pixel one after another in DDR (a 1-D map as a column, lowering.ONE_D_COLUMNS): a block's rows
    // of the row tile go out as one command, not a burst of a beat or two each
    logic               joined;
    logic signed [13:0] ih, iw, isy, isx, iy0, ix0, load_step;
    logic signed [13:0] psh_isy, psw_isx;     // input rows (columns) between the windows of consecutive pooled rows (columns)
    logic [11:0]        m_tiles, row_tiles, tile_rows, last_rows, out_blocks, pool_ow, pool_oh;
    logic [OAW-1:0]     ow;
    logic [3:0]         col_last, pkh, pkw, psh, psw;   // col_last: output columns a grid column, less one
    logic [5:0]         bias_shift;
    logic signed [7:0]  shift;
    logic [OFF_BITS-1:0] out_block, row_step, row0;
    logic [MKW-1:0]     mask_plane_w;
    logic [11:0]        span_px;
    logic [OAW-1:0]     shov;
    logic [MKW-1:0]     shov24;
    logic [LEN_BITS-1:0] row_beats, prow_beats;
    logic [1:0]         rmode;   // the backward ReLU rule (BWD_RELU)
    logic [15:0]        tgt;
    logic [15:0]        seed_val;
    logic [2:0]         pc_op;
    logic [11:0]        pch;     // a post op's chunk: half for the two-tensor ops (the walker's and the loader's)

    // ---------------------------------------------------------------- loop state
    typedef enum logic [3:0] {W_IDLE, W_TILE, W_ROW, W_BEATS, W_NEXT, W_DRAIN, W_SEED, W_POST, W_PBEATS, W_PDONE} st_t;
    st_t st;
    logic [11:0]    mt, rt, g, r, rows, k, c, px, py, wy;
    logic [JW-1:0]  j;
    logic [3:0]     kmod, wi, wk;
    logic [7:0]     widx;
    logic           oset;
    logic [OFF_BITS-1:0] mt_base, g_base, rowpos, T_rowpos, N_rowpos;
    logic [MKW-1:0] mt_mask, g_mask;   // a pool's grid bits (RELU with POOL): the m-tile's and the block's first word
    logic [MKW-1:0] mrow;              // the ReLU word of the next beat (RELU, RAP, BWD_RELU, SEED)
    // the kept state of an element written follows its bytes (the contract's mask_bias, index_base):
    // its ReLU word is its byte address / 2E + mbias, a pooled pixel's index word its byte address /
    // 2TN + ixbias; both biases move once a slot (mbias by the compiler's mask_slot_bias)
    logic [MKW-1:0] mbias, mbias_step;
    logic [IXW-1:0] ixbias, ixbias_step;
    // the starting job's bytes between output rows and the offset of its first row
    logic [OFF_BITS-1:0] row_step_d, row0_d;
    assign row_step_d = (kind == JOB_CONV && desc.flags[FLAG_POOL]) ? OFF_BITS'(desc.out_row_bytes) : osy_rb;
    assign row0_d = desc.flags[FLAG_POOL] ? '0 : oyo_rb + OFF_BITS'({desc.oxo, $clog2(2 * TN)'(0)});
    // a slot job: its slots after this one, this slot's bases and the strides to the next slot's
    logic [7:0]          slots_left;
    logic [OFF_BITS-1:0] slot_base, out_slot;
    logic [MKW-1:0]      slot_mask, mask_slot_w;
    logic                bset;   // the bias set of this m-tile: m-tiles alternate across the slots too
    logic [11:0]    T_py, N_py;
    logic [MKW-1:0] T_r0ow, N_r0ow;   // grid pixel of the tile's first row (mod the mask words: only its ReLU words use it)
    logic [OAW-1:0] prow, pxbase, pel, pc_addr;
    logic [MKW-1:0] prow24;   // prow without wrapping at OUT_DEPTH: the grid pixels a tile's pooled rows advance
    // a padded pool's input pixel (y_e, x_e) of the window element read; y_w, x_w: of the window's
    // first element; T_y: of the tile's grid row 0 (rt * load_step + iy0)
    logic signed [13:0] T_y, y_w, y_e, x_w, x_e;
    logic [LEN_BITS-1:0] beat;
    logic [23:0]    p_left;
    logic [OFF_BITS-1:0] p_off;

    function automatic logic in_map(input logic signed [13:0] v, input logic signed [13:0] n);
        in_map = v >= 0 && v < n;
    endfunction

    // stage 0 (issue); s*_pad: a padded pool's window element outside the input map
    logic           s0_v, s0_out, s0_on, s0_first, s0_last, s0_seed, s0_hit, s0_pad;
    logic [GW-1:0]  s0_grp;
    logic [7:0]     s0_idx;
    logic [MKW-1:0] s0_mw;
    logic [IXW-1:0] s0_iw;
    logic [JW-1:0]  s0_j;
    logic [LE:0]    s0_lane;

    // credits: output beats issued and not yet in the FIFO
    logic [3:0] inflight;
    logic [$clog2(FIFO_DEPTH):0] f_count;
    logic issue_ok, f_push;
    assign issue_ok = 32'(f_count) + 32'(inflight) < FIFO_DEPTH - 2;

    always_ff @(posedge clk) begin
        if (rst) begin
            st <= W_IDLE;
            cmd_valid <= 1'b0;
            out_take <= 1'b0;
            out_give <= 1'b0;
            bias_give <= 1'b0;
            s0_v <= 1'b0;
            s0_out <= 1'b0;
            inflight <= '0;
        end else begin
            out_take <= 1'b0;
            out_give <= 1'b0;
            bias_give <= 1'b0;
            s0_v <= 1'b0;
            s0_out <= 1'b0;
            s0_seed <= 1'b0;
            if (cmd_valid && cmd_ready) cmd_valid <= 1'b0;
            case (st)
                W_IDLE: if (start) begin
                    is_post <= kind == JOB_POST;
                    // post-processing uses none of the descriptor's flags; a SEED only BWD_RELU
                    f_bias <= kind == JOB_CONV && desc.flags[FLAG_BIAS];
                    f_relu <= kind == JOB_CONV && desc.flags[FLAG_RELU];
                    f_pool <= kind == JOB_CONV && desc.flags[FLAG_POOL];
                    f_rap <= kind == JOB_CONV && desc.flags[FLAG_RAP];
                    f_bwd <= BACKWARD != 0 && kind != JOB_POST && desc.flags[FLAG_BWD_RELU];
                    f_relu6 <= kind == JOB_CONV && desc.flags[FLAG_RELU6];
                    r6_deconv <= mode == 2'(RELU_DECONV);
                    cap <= 17'(desc.cap);
                    f_padded <= kind == JOB_CONV && desc.flags[FLAG_POOL] && desc.flags[FLAG_DIAG];
                    f_sum <= kind == JOB_CONV && desc.flags[FLAG_POOL] && desc.flags[FLAG_SUM];
                    f_lanes <= kind == JOB_CONV && desc.flags[FLAG_LANES];
                    ih <= 14'(desc.ih);
                    iw <= 14'(desc.iw);
                    isy <= 14'(desc.isy);
                    isx <= 14'(desc.isx);
                    iy0 <= desc.iy0;
                    ix0 <= desc.ix0;
                    load_step <= 14'(desc.load_step);
                    psh_isy <= 14'(desc.pool_sh * desc.isy);
                    psw_isx <= 14'(desc.pool_sw * desc.isx);
                    T_y <= desc.iy0;
                    has_pass <= desc.ky != '0 && desc.kx != '0;
                    m_tiles <= desc.m_tiles;
                    row_tiles <= desc.row_tiles;
                    tile_rows <= desc.tile_rows;
                    last_rows <= desc.last_rows;
                    out_blocks <= desc.out_blocks;
                    ow <= OAW'(desc.ow);
                    col_last <= desc.flags[FLAG_LANES] ? 4'(TPB - 1) : desc.osx - 1'b1;
                    pool_ow <= desc.pool_ow;
                    pool_oh <= desc.pool_oh;
                    pkh <= desc.pool_kh;
                    pkw <= desc.pool_kw;
                    psh <= desc.pool_sh;
                    psw <= desc.pool_sw;
                    bias_shift <= desc.bias_shift;
                    shift <= (kind == JOB_POST) ? post.shift
                           : (mode == 2'd1) ? desc.shift1 : (mode == 2'd2) ? desc.shift2 : desc.shift0;
                    seed_val <= 16'(1) << desc.shift0[3:0];
                    out_block <= OFF_BITS'(desc.out_block_bytes);
                    row_step <= row_step_d;
                    row0 <= row0_d;
                    T_rowpos <= row0_d;
                    mask_plane_w <= MKW'(desc.mask_plane * G);
                    mbias <= MKW'(desc.mask_bias / E);
                    mbias_step <= MKW'(desc.mask_slot_bias / E);
                    ixbias <= IXW'(desc.index_base / TN) - IXW'(OFF_BITS'(desc.out_addr) >> LPB);
                    ixbias_step <= IXW'(desc.index_slot / TN) - IXW'(OFF_BITS'(desc.out_slot_bytes) >> LPB);
                    // a LANES job writes every column of its rows: opw, not its grid's span
                    span_px <= desc.flags[FLAG_LANES] ? desc.opw : 12'(span);
                    joined <= !desc.flags[FLAG_POOL] && !desc.flags[FLAG_LANES] && span == 1 && row_step_d == OFF_BITS'(2 * TN);
                    shov <= OAW'(sh_ow);
                    shov24 <= MKW'(sh_ow);
                    row_beats <= LEN_BITS'(desc.flags[FLAG_LANES] ? 16'(desc.opw) : span) << LG;
                    prow_beats <= LEN_BITS'(desc.pool_ow) << LG;
                    // the deconvnet rule at a ReLU6, max(g, 0) * bit, is the guided rule max(g * bit, 0)
                    rmode <= (kind != JOB_POST && desc.flags[FLAG_RELU6] && mode == 2'(RELU_DECONV))
                           ? 2'(RELU_GUIDED) : mode;
                    tgt <= target;
                    pc_op <= post.op;
                    pch <= (post.op == POST_IG_POINT || post.op == POST_IG_FINAL) ? 12'(CHUNK / 2) : 12'(CHUNK);
                    mt <= '0;
                    rt <= '0;
                    oset <= 1'b0;
                    mt_base <= OFF_BITS'(desc.out_addr);
                    mt_mask <= MKW'(desc.mask_base / E);
                    mrow <= MKW'(desc.mask_base / E);   // a SEED's first word; a CONV row's is set per row
                    bset <= 1'b0;
                    slots_left <= (desc.slots > 8'd1) ? desc.slots - 1'b1 : '0;
                    slot_base <= OFF_BITS'(desc.out_addr);
                    out_slot <= OFF_BITS'(desc.out_slot_bytes);
                    slot_mask <= MKW'(desc.mask_base / E);
                    mask_slot_w <= MKW'(desc.mask_slot / E);
                    T_py <= '0;
                    T_r0ow <= '0;
                    p_left <= post.beats;
                    p_off <= OFF_BITS'(post.dst);
                    beat <= '0;
                    if (kind == JOB_POST) st <= W_POST;
                    else if (kind == JOB_SEED) begin
                        cmd_valid <= 1'b1;
                        cmd_off <= OFF_BITS'(desc.out_addr);
                        cmd_beats <= LEN_BITS'(desc.out_blocks) << LG;
                        st <= W_SEED;
                    end else st <= W_TILE;
                end

                // ---------------- CONV: the output set of a row tile, block after block
                W_TILE: if (out_ready != 2'd0 || !has_pass) begin
                    // a job without passes (a stride phase no tap reaches) writes bias or zeros alone
                    out_take <= has_pass;
                    rows <= (rt == row_tiles - 1'b1) ? last_rows : tile_rows;
                    g <= '0;
                    g_base <= mt_base;
                    g_mask <= mt_mask;
                    rowpos <= T_rowpos;
                    py <= T_py;
                    r <= '0;
                    wy <= '0;
                    y_w <= T_y;
                    prow <= '0;
                    prow24 <= '0;
                    st <= W_ROW;
                end
                W_ROW: if (!cmd_valid) begin
                    if (!f_pool ? r == rows : (wy + 12'(pkh) > rows || py == pool_oh)) begin
                        st <= W_NEXT;
                    end else begin
                        if (!joined || r == '0) begin
                            cmd_valid <= 1'b1;
                            cmd_off <= g_base + rowpos;
                            cmd_beats <= joined ? LEN_BITS'(rows) << LG : f_pool ? prow_beats : row_beats;
                        end
                        mrow <= MKW'((g_base + rowpos) >> LBB) + mbias;
                        k <= '0;
                        c <= '0;
                        kmod <= '0;
                        j <= '0;
                        px <= '0;
                        wi <= '0;
                        wk <= '0;
                        widx <= '0;
                        pc_addr <= prow;
                        pxbase <= prow;
                        pel <= prow;
                        y_e <= y_w;
                        x_w <= ix0;
                        x_e <= ix0;
                        st <= W_BEATS;
                    end
                end
                W_BEATS: if (issue_ok) begin
                    s0_v <= 1'b1;
                    s0_grp <= GW'((f_lanes ? 32'(kmod) : 32'(g)) * G) + GW'(j);
                    s0_j <= j;
                    if (!f_pool) begin
                        // pixel k of the row's span (on the grid when k mod osx == 0; LANES: every
                        // pixel, lane group k mod TPB), lanes j
                        s0_out <= 1'b1;
                        s0_on <= f_lanes || kmod == '0;
                        s0_first <= 1'b1;
                        s0_last <= 1'b1;
                        s0_mw <= mrow;
                        rd_addr <= pc_addr;
                        mrow <= mrow + 1'b1;
                        if (j == JW'(G - 1)) begin
                            j <= '0;
                            k <= k + 1'b1;
                            if (kmod == col_last) begin
                                kmod <= '0;
                                pc_addr <= pc_addr + 1'b1;
                            end else kmod <= kmod + 1'b1;
                            if (k == span_px - 1'b1) begin
                                r <= r + 1'b1;
                                rowpos <= rowpos + row_step;
                                prow <= prow + ow;
                                st <= W_ROW;
                            end
                        end else j <= j + 1'b1;
                    end else begin
                        // element (wi, wk) of the window of pooled pixel px, lanes j
                        logic last_el;
                        last_el = wi == pkh - 1'b1 && wk == pkw - 1'b1;
                        s0_out <= last_el;
                        s0_on <= 1'b1;
                        s0_first <= wi == '0 && wk == '0;
                        s0_last <= last_el;
                        s0_idx <= widx;
                        s0_pad <= f_padded && !(in_map(y_e, ih) && in_map(x_e, iw));
                        // a grid pixel's TN bits are G aligned words (g_mask is a multiple of G): lane group j is an OR
                        s0_mw <= f_rap ? mrow : (MKW'((g_mask >> LG) + T_r0ow + MKW'(pel)) << LG) | MKW'(j);
                        s0_iw <= IXW'((g_base + rowpos) >> LPB) + ixbias + IXW'(px);
                        rd_addr <= pel;
                        if (!last_el) begin
                            widx <= widx + 1'b1;
                            if (wk == pkw - 1'b1) begin
                                wk <= '0;
                                wi <= wi + 1'b1;
                                pel <= pel + ow - OAW'(pkw - 1'b1);
                                y_e <= y_e + isy;
                                x_e <= x_w;
                            end else begin
                                wk <= wk + 1'b1;
                                pel <= pel + 1'b1;
                                x_e <= x_e + isx;
                            end
                        end else begin
                            wi <= '0;
                            wk <= '0;
                            widx <= '0;
                            mrow <= mrow + 1'b1;
                            y_e <= y_w;
                            x_e <= x_w;
                            if (j == JW'(G - 1)) begin
                                j <= '0;
                                px <= px + 1'b1;
                                pxbase <= pxbase + OAW'(psw);
                                pel <= pxbase + OAW'(psw);
                                x_w <= x_w + psw_isx;
                                x_e <= x_w + psw_isx;
                                if (px == pool_ow - 1'b1) begin
                                    wy <= wy + 12'(psh);
                                    y_w <= y_w + psh_isy;
                                    py <= py + 1'b1;
                                    prow <= prow + shov;
                                    prow24 <= prow24 + shov24;
                                    rowpos <= rowpos + row_step;
                                    st <= W_ROW;
                                end
                            end else begin
                                j <= j + 1'b1;
                                pel <= pxbase;
                            end
                        end
                    end
                end
                W_NEXT: begin
                    // block g is done: the next block of the m-tile, or release the set
                    if (g == '0) begin
                        N_rowpos <= rowpos;
                        N_py <= py;
                        N_r0ow <= T_r0ow + prow24;
                    end
                    if (!f_lanes && g + 1'b1 < 12'(TPB) && 12'(mt * TPB) + g + 1'b1 < out_blocks) begin
                        g <= g + 1'b1;
                        g_base <= g_base + out_block;
                        g_mask <= g_mask + mask_plane_w;
                        rowpos <= T_rowpos;
                        py <= T_py;
                        r <= '0;
                        wy <= '0;
                        y_w <= T_y;
                        prow <= '0;
                        prow24 <= '0;
                        st <= W_ROW;
                    end else begin
                        st <= W_DRAIN;
                    end
                end
                W_DRAIN: begin
                    // the set's words are all read (the last read was issued a cycle ago)
                    out_give <= has_pass;
                    oset <= !oset;
                    if (rt != row_tiles - 1'b1) begin
                        rt <= rt + 1'b1;
                        // block 0's ends, which W_NEXT saved on the way here
                        T_rowpos <= N_rowpos;
                        T_py <= N_py;
                        T_r0ow <= N_r0ow;
                        T_y <= T_y + load_step;
                        st <= W_TILE;
                    end else begin
                        rt <= '0;
                        mt <= mt + 1'b1;
                        bset <= !bset;
                        if (has_pass && f_bias) bias_give <= 1'b1;
                        // the next m-tile's first block: TPB blocks on, or (LANES) the next one
                        mt_base <= mt_base + (f_lanes ? out_block : OFF_BITS'(out_block * TPB));
                        mt_mask <= mt_mask + (f_lanes ? mask_plane_w : MKW'(mask_plane_w * TPB));
                        T_rowpos <= row0;
                        T_py <= '0;
                        T_r0ow <= '0;
                        T_y <= iy0;
                        st <= W_TILE;
                        if (mt + 1'b1 == m_tiles) begin
                            // a slot job's next slot: m-tile 0 at that slot's tensor, bits and indices
                            mt <= '0;
                            slots_left <= slots_left - 1'b1;
                            slot_base <= slot_base + out_slot;
                            slot_mask <= slot_mask + mask_slot_w;
                            mt_base <= slot_base + out_slot;
                            mt_mask <= slot_mask + mask_slot_w;
                            mbias <= mbias + mbias_step;
                            ixbias <= ixbias + ixbias_step;
                            if (slots_left == '0) st <= W_IDLE;
                        end
                    end
                end

                // ---------------- SEED: the one-hot vector, out_blocks * TN elements
                W_SEED: if (issue_ok) begin
                    s0_v <= 1'b1;
                    s0_out <= 1'b1;
                    s0_on <= 1'b1;
                    s0_first <= 1'b1;
                    s0_last <= 1'b1;
                    s0_seed <= 1'b1;
                    s0_hit <= 16'(beat) == (tgt >> LE);
                    s0_lane <= (LE+1)'(tgt % E);
                    s0_mw <= mrow;
                    mrow <= mrow + 1'b1;
                    beat <= beat + 1'b1;
                    if (beat == (LEN_BITS'(out_blocks) << LG) - 1'b1) st <= W_IDLE;
                end

                // ---------------- post-processing: a chunk's results, lanes 0..E-1
                W_POST: begin
                    if (p_left == '0) begin
                        st <= W_IDLE;
                    end else if (out_ready != 2'd0 && !cmd_valid) begin
                        out_take <= 1'b1;
                        rows <= (p_left > 24'(pch)) ? pch : 12'(p_left);
                        if (pc_op == POST_IG_ACC) begin
                            // the sums stay on chip: release the set (W_PDONE, after the token count moved)
                            p_left <= p_left - ((p_left > 24'(pch)) ? 24'(pch) : p_left);
                            st <= W_PDONE;
                        end else begin
                            cmd_valid <= 1'b1;
                            cmd_off <= p_off;
                            cmd_beats <= (p_left > 24'(pch)) ? LEN_BITS'(pch) : LEN_BITS'(p_left);
                            pc_addr <= '0;
                            st <= W_PBEATS;
                        end
                    end
                end
                W_PBEATS: if (issue_ok) begin
                    s0_v <= 1'b1;
                    s0_out <= 1'b1;
                    s0_on <= 1'b1;
                    s0_first <= 1'b1;
                    s0_last <= 1'b1;
                    s0_grp <= '0;
                    rd_addr <= pc_addr;
                    pc_addr <= pc_addr + 1'b1;
                    if (12'(pc_addr) == rows - 1'b1) begin
                        p_left <= p_left - 24'(rows);
                        p_off <= p_off + OFF_BITS'({rows, LBB'(0)});
                        st <= W_PDONE;
                    end
                end
                W_PDONE: begin
                    out_give <= 1'b1;
                    oset <= !oset;
                    st <= W_POST;
                end
                default: st <= W_IDLE;
            endcase
            inflight <= inflight + 4'(s0_v && s0_out) - 4'(f_push);
        end
    end

    assign rd_set  = oset;
    // the bias of the m-tile's lanes (set bset), read with the issue: valid at stage 1
    assign b_raddr = (BW'(bset) << (BW - 1)) | (BW'(s0_grp) & BW'((1 << (BW - 1)) - 1));

    // ---------------------------------------------------------------- stage 1: the memories' words
    logic           s1_v, s1_out, s1_on, s1_first, s1_last, s1_seed, s1_hit, s1_pad;
    logic [GW-1:0]  s1_grp;
    logic [7:0]     s1_idx;
    logic [MKW-1:0] s1_mw;
    logic [IXW-1:0] s1_iw;
    logic [JW-1:0]  s1_j;
    logic [LE:0]    s1_lane;
    assign mask_raddr = s0_mw;

    always_ff @(posedge clk) begin
        if (rst) begin
            s1_v <= 1'b0;
            s1_out <= 1'b0;
        end else begin
            s1_v <= s0_v;
            s1_out <= s0_v && s0_out;
        end
        {s1_on, s1_first, s1_last, s1_seed, s1_hit, s1_pad, s1_grp, s1_idx, s1_mw, s1_iw, s1_j, s1_lane} <=
            {s0_on, s0_first, s0_last, s0_seed, s0_hit, s0_pad, s0_grp, s0_idx, s0_mw, s0_iw, s0_j, s0_lane};
    end

    // ---------------------------------------------------------------- stage 2: lanes and bias
    logic           s2_v, s2_out, s2_on, s2_first, s2_last, s2_seed, s2_hit, s2_pad;
    logic [7:0]     s2_idx;
    logic [MKW-1:0] s2_mw;
    logic [IXW-1:0] s2_iw;
    logic [JW-1:0]  s2_j;
    logic [LE:0]    s2_lane;
    logic [E-1:0]   s2_bits;
    logic signed [47:0] s2_acc [E];
    logic signed [47:0] s2_bias [E];
    always_ff @(posedge clk) begin
        if (rst) begin
            s2_v <= 1'b0;
            s2_out <= 1'b0;
        end else begin
            s2_v <= s1_v;
            s2_out <= s1_out;
        end
        {s2_on, s2_first, s2_last, s2_seed, s2_hit, s2_pad, s2_idx, s2_mw, s2_iw, s2_j, s2_lane} <=
            {s1_on, s1_first, s1_last, s1_seed, s1_hit, s1_pad, s1_idx, s1_mw, s1_iw, s1_j, s1_lane};
        s2_bits <= mask_rdata;
        for (int e = 0; e < E; e++) begin
            s2_acc[e] <= (has_pass || is_post) ? $signed(rd_data[(32'(s1_grp) * E + e) * 48 +: 48]) : '0;
            s2_bias[e] <= (f_bias && !is_post) ? 48'($signed(b_rdata[e*16 +: 16])) <<< bias_shift : '0;
        end
    end

    // ---------------------------------------------------------------- stage 3: v = acc + bias
    logic           s3_v, s3_out, s3_on, s3_first, s3_last, s3_seed, s3_hit, s3_pad;
    logic [7:0]     s3_idx;
    logic [MKW-1:0] s3_mw;
    logic [IXW-1:0] s3_iw;
    logic [JW-1:0]  s3_j;
    logic [LE:0]    s3_lane;
    logic [E-1:0]   s3_bits;
    logic signed [47:0] s3_val [E];
    always_ff @(posedge clk) begin
        if (rst) begin
            s3_v <= 1'b0;
            s3_out <= 1'b0;
        end else begin
            s3_v <= s2_v;
            s3_out <= s2_out;
        end
        {s3_on, s3_first, s3_last, s3_seed, s3_hit, s3_pad, s3_idx, s3_mw, s3_iw, s3_j, s3_lane, s3_bits} <=
            {s2_on, s2_first, s2_last, s2_seed, s2_hit, s2_pad, s2_idx, s2_mw, s2_iw, s2_j, s2_lane, s2_bits};
        for (int e = 0; e < E; e++) s3_val[e] <= s2_acc[e] + s2_bias[e];
    end

    // ReLU bits from the accumulator (RELU): every grid position the write-back reads
    logic [E-1:0] relu_bits;
    always_comb for (int e = 0; e < E; e++) relu_bits[e] = s3_val[e] > 0;

    // ---------------------------------------------------------------- stage 4: the pool's choice
    logic           s4_out, s4_on, s4_seed, s4_hit;
    logic [MKW-1:0] s4_mw;
    logic [IXW-1:0] s4_iw;
    logic [JW-1:0]  s4_j;
    logic [LE:0]    s4_lane;
    logic [E-1:0]   s4_bits;
    logic signed [47:0] s4_val [E];
    logic [7:0]     s4_idx [E];
    logic [E-1:0]   s4_alive;     // the window's ranked maximum > 0: the ReLU bit of its argmax (UNPOOL reads it)
    logic signed [47:0] best_v [E];
    logic signed [47:0] best_rank [E];
    logic [7:0]     best_idx [E];
    logic [E-1:0]   best_alive;   // best_rank > 0, kept as a bit: no second 48-bit choice for the index path
    logic           best_pad;     // the best so far lies outside the input map (lanes agree: a position's property)
    always_ff @(posedge clk) begin
        if (rst) s4_out <= 1'b0;
        else s4_out <= s3_out;
        {s4_on, s4_seed, s4_hit, s4_mw, s4_iw, s4_j, s4_lane, s4_bits} <=
            {s3_on, s3_seed, s3_hit, s3_mw, s3_iw, s3_j, s3_lane, s3_bits};
        // a padded pool ranks a position outside the map below everything (a window has one inside)
        if (s3_v && f_pool) best_pad <= s3_first ? s3_pad : best_pad && s3_pad;
        for (int e = 0; e < E; e++) begin
            logic signed [47:0] rank, sum;
            logic take;
            rank = (f_relu && s3_val[e] < 0) ? '0 : s3_val[e];
            // the first maximum in raster order
            take = s3_first || (!s3_pad && (best_pad || rank > best_rank[e]));
            // SUM: the window's sum so far (no bias or ReLU on a SUM job: the contract's)
            sum = s3_first ? s3_val[e] : best_v[e] + s3_val[e];
            if (s3_v && f_pool && (take || f_sum)) begin
                best_v[e] <= f_sum ? sum : s3_val[e];
                best_rank[e] <= rank;
                best_idx[e] <= s3_idx;
                best_alive[e] <= relu_bits[e];
            end
            s4_val[e] <= f_sum ? sum : (f_pool && !take) ? best_v[e] : s3_val[e];
            s4_idx[e] <= (f_pool && !take) ? best_idx[e] : s3_idx;
            // rank > 0 is v > 0 with or without the ReLU (max(v, 0) > 0 iff v > 0): the ReLU bit
            s4_alive[e] <= (f_pool && !take) ? best_alive[e] : relu_bits[e];
        end
    end

    // ---------------------------------------------------------------- the output beat
    logic [E*16-1:0] o_data;
    logic [2*E-1:0]  o_strb;
    logic [E-1:0]    o_sat, rap_bits;
    always_comb begin
        for (int e = 0; e < E; e++) begin
            logic [16:0] rq;
            logic [15:0] q;
            logic below;
            rq = requant(s4_val[e], shift);
            q = rq[15:0];
            o_sat[e] = rq[16] && s4_on && !s4_seed;
            if (s4_seed) q = (s4_hit && 32'(s4_lane) == e) ? seed_val : '0;
            if (f_relu && q[15]) q = '0;
            // RAP: bit [out > 0], out = max(out, 0); a ReLU6: bit [0 < out < cap] ([out < cap] under
            // the deconvnet rule), out = min(max(out, 0), cap)
            below = $signed({q[15], q}) < cap;
            rap_bits[e] = f_relu6 ? below && (r6_deconv || (!q[15] && q != '0)) : !q[15] && q != '0;
            if (f_rap && q[15]) q = '0;
            if (f_rap && f_relu6 && !below) q = cap[15:0];
            if (f_bwd) q = relu_rule(q, s4_bits[e], rmode);
            o_data[e*16 +: 16] = s4_on ? q : '0;
            o_strb[2*e +: 2] = s4_on ? 2'b11 : 2'b00;
        end
    end
    assign f_push = s4_out;

    always_comb begin
        sat = '0;
        for (int e = 0; e < E; e++) sat = sat + SB'(o_sat[e] && s4_out);
    end

    // kept state: ReLU bits (RELU from the accumulator at stage 3, RAP from the output) and pool indices
    always_comb begin
        mask_we = BACKWARD != 0 && ((f_relu && s3_v && s3_on && !is_post && !s3_seed) || (f_rap && s4_out));
        mask_waddr = f_rap ? s4_mw : s3_mw;
        mask_wdata = f_rap ? rap_bits : relu_bits;
        ix_we = (BACKWARD != 0 && f_pool && !f_sum && s4_out) ? (TN/E)'(1) << s4_j : '0;
        ix_waddr = s4_iw;
        for (int n = 0; n < TN; n++) ix_wdata[n*(INDEX_BITS+1) +: INDEX_BITS+1] = {s4_alive[n % E], INDEX_BITS'(s4_idx[n % E])};
    end

    // ---------------------------------------------------------------- output FIFO
    logic f_empty, f_full;
    logic [E*16+2*E-1:0] f_head;
    xaihls_fifo #(.WIDTH(E*16 + 2*E), .DEPTH(FIFO_DEPTH)) u_out (
        .clk, .rst, .push(f_push), .wdata({o_strb, o_data}), .pop(wr_valid && wr_ready), .rdata(f_head),
        .empty(f_empty), .full(f_full), .count(f_count)
    );
    assign wr_valid = !f_empty;
    assign {wr_strb, wr_data} = f_head;

    assign busy = st != W_IDLE || cmd_valid || !f_empty || s0_v || s1_v || s2_v || s3_v || s4_out;

    logic unused;
    assign unused = ^{f_full, s1_last, s2_last, s3_last, c, span, sh_ow};
endmodule
