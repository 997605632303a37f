// The walker (docs/engine_v2.md, "The CONV job"): for every tile it feeds the MAC array one
// position a cycle, pass (kernel tap) after pass, and loads the next pass's weights into the
// shadow chain while the current pass runs (w_once: a tile's one pass of weights, kept in the array
// for all its passes, which then wait only for GAP; w_diag, with W_DIAG: a buffer row holds TN lanes'
// weights, read once a lane, each keeping only its own column, w_mask); for post-processing it feeds
// a chunk's elements to lanes 0..E-1.
//
// Position (r, c) of pass (ky, kx) reads buffer word walk_origin + r*walk_row + ky*walk_pass_row
// + c*isx + kx*ikx; its operands are zero outside the input map (0 <= y < ih, 0 <= x < iw) and,
// with GATE, where the kept pool index of the channel differs from the pass's code (a grid row
// off the map takes one cycle on a row tile's passes between its first and final). UNPOOL (a
// max-pool's backward fused here): the buffer holds pooled rows, position (y, x) reads pooled
// word (y >> ls, x >> ls) (ls = log2 of the window), so each running sum steps by walk_row, -1,
// walk_pass_row or +1 only where y or x crosses a window edge; the code is the position in the
// window, and with the RELU mode the method's ReLU rule uses the window's kept alive bit. Every
// position carries the operand shift of its n-tile (xs_b of the run's mode from n-tile src_b on
// when src_b != 0, else xs_a; the MAC array applies it per column). Every address is a running
// sum: no multiplication. The pool index of buffer word a (GATE, UNPOOL) is read at ix_row0 (the
// loader's address of the set's buffer row 0, in pixels) + a + ixbias: a pooled map's indices lie
// as its bytes do (contract 12), so no index-word sums of their own. Guarantees: a pass starts
// only when its weights are in the shadow chain, its tile is loaded and, on a row tile's first
// pass, an output set is free (it follows the pass before without a waiting cycle when these
// already hold at that pass's last position and the accumulators' distance allows: chained); a
// position is re-read at least TN + 2 cycles after it was read (the accumulator's read-to-write
// latency); a tile's buffers are released after its last read,
// and an output set is handed to the write-back after the row tile's last sum is written.

import xaihls_contract_pkg::*;
import xaihls_engine_pkg::*;

module xaihls_walker #(
    parameter int TM         = 8,
    parameter int TN         = 4,
    parameter int E          = 4,
    parameter int IN_DEPTH   = 1024,
    parameter int W_DEPTH    = 64,
    parameter int OUT_DEPTH  = 256,
    parameter int IG_WORDS   = 0,
    parameter int CHUNK      = 64,
    parameter int INDEX_BITS = 2,
    parameter int IXW        = 8,         // index-memory word address bits
    parameter int BACKWARD   = 1,
    parameter int W_DIAG     = 0,         // 1: w_diag jobs (a pass's weights one a lane) run
    parameter int IAW        = $clog2(IN_DEPTH),
    parameter int WAW        = $clog2(W_DEPTH),
    parameter int OAW        = $clog2(OUT_DEPTH),
    parameter int AAW        = $clog2(OUT_DEPTH + IG_WORDS)
) (
    input  logic                     clk,
    input  logic                     rst,

    input  logic                     start,
    input  logic [1:0]               kind,
    input  xaihls_contract_pkg::descriptor_t              desc,
    input  xaihls_engine_pkg::post_cfg_t                post,
    input  logic [1:0]               mode,       // the run's ReLU-backward rule (UNPOOL with its ReLU)
    input  logic [2*IXW-1:0]         ix_row0,    // the loader's: per input set, its buffer row 0's byte address / 2TN
    output logic                     busy,

    input  logic [1:0]               loaded,     // tiles loaded and not yet taken
    output logic                     loaded_take,
    output logic                     free_give,  // a tile's buffer set, or a post chunk's (free_give2: the IG sum's two)
    output logic                     free_give2,
    input  logic [1:0]               out_free,   // output sets the write-back released
    output logic                     out_take,
    output logic                     out_give,   // an output set is complete

    output logic [WAW:0]             w_raddr,
    input  logic [TN*16-1:0]         w_rdata,
    output logic [IAW:0]             in_raddr,
    input  logic [TN*16-1:0]         in_rdata,
    output logic [IXW-1:0]           ix_raddr,
    input  logic [TN*(INDEX_BITS+1)-1:0] ix_rdata,   // an entry: {alive bit, window position}

    output logic                     w_shift,
    output logic [TN-1:0]            w_mask,     // with w_shift: the columns of the row that keep their weight
    output logic                     swap,
    output logic [TN*16-1:0]         x,
    output logic [TN-1:0]            x_keep,
    output logic [3:0]               x_shift,    // the left shift of the position's operands
    output logic                     post_mode,
    output logic [E*18-1:0]          post_a,
    output logic [E*18-1:0]          post_b,
    output logic                     acc_zero,
    output logic [AAW-1:0]           acc_addr,
    output logic                     acc_we,
    output logic                     out_we,
    output logic                     out_set,
    output logic [OAW-1:0]           out_addr
);
    localparam int TPB = TM / TN;
    localparam int GAP = TN + 2;          // cycles between the starts of two passes
    localparam int GW  = $clog2(GAP + 1);
    localparam int RW  = $clog2(TM + 1);

    // ---------------------------------------------------------------- configuration
    logic               is_post, diag, lanes, gate, unp, unp_relu;
    logic               w_once;     // the tile's first pass's weights stay in the array for its other passes
    logic               wdiag;      // w_diag: a buffer row holds TN lanes' weights, lane m's at column m mod TN
    logic [2:0]         umsk;       // UNPOOL: window side - 1 (1, 3 or 7)
    logic [1:0]         uls, rmode;
    logic               starts_unpool;   // the job starting is a CONV job with UNPOOL
    assign starts_unpool = BACKWARD != 0 && kind == JOB_CONV && desc.unpool != 2'(UNPOOL_OFF);
    logic [11:0]        m_tiles, row_tiles, n_tiles, tile_rows, last_rows, ow;
    // in_keep: the job's n-tiles lie side by side in the input buffer (its two sets as one), n-tile
    // i_k's at kbase = i_k * keep_words, for every m-tile (the loader loads them once)
    logic               in_kept;
    logic [IAW:0]       keep_words, kbase;
    logic signed [13:0] ih, iw, isx, ikx, isy, iky, iy0, ix0, load_step;   // load_step: input rows a row tile advances
    logic [4:0]         ky_n, kx_n;
    logic [IAW-1:0]     walk_origin, walk_row, walk_pass_row, a_isx, a_ikx;
    // GATE, UNPOOL: a pixel's index word is its byte address / 2TN + ixbias (the map's indices
    // follow its bytes), so the one at buffer word a of set s is ix_row0[s] + ixbias + a
    logic [IXW-1:0]     ixbias, ixbias_step;
    logic [7:0]         code0, code_ky, code_kx;
    logic [2:0]         pc_op;
    logic               pc_first;
    logic signed [17:0] pc_k0, pc_k1;
    logic [11:0]        src_b;
    logic [3:0]         xs_a, xs_b;   // the two sources' operand shifts under the run's mode

    function automatic logic [11:0] klast(input logic [11:0] mt);
        if (!diag) klast = n_tiles - 1'b1;
        else if (lanes) klast = '0;   // block mt alone
        else if (12'(mt * TPB) + 12'(TPB) > n_tiles) klast = n_tiles - 12'(mt * TPB) - 1'b1;
        else klast = 12'(TPB - 1);
    endfunction

    // ---------------------------------------------------------------- fill: shadow chain
    typedef enum logic [1:0] {F_IDLE, F_WAIT, F_READ} fst_t;
    fst_t fst;
    logic [11:0]    f_mt, f_rt, f_k;
    logic [4:0]     f_ky, f_kx;
    logic           f_set;
    logic [WAW-1:0] f_row;
    logic [RW-1:0]  f_r;
    logic           shadow_full, shadow_free, fill_shift;
    logic [GW:0]    free_count;

    // ---------------------------------------------------------------- issue: positions
    typedef enum logic [1:0] {I_IDLE, I_WAIT, I_RUN} ist_t;
    ist_t ist;
    logic [11:0]    i_mt, i_rt, i_k, i_klast, r, c, rows;
    logic [7:0]     f_slots, i_slots;   // a slot job's slots after the fill's and the issue's current one
    logic [4:0]     i_ky, i_kx;
    logic           i_set, o_set;
    logic [OAW-1:0] p;
    logic [GW-1:0]  gap;
    // running sums at position (0, 0) of the current pass (P_), of pass (ky, 0) (K_), of the
    // current grid row (Q_) and of the current position (C_); tile bases (T_)
    logic [IAW-1:0]     P_a, K_a, Q_a, C_a;
    logic signed [13:0] P_y, K_y, Q_y, P_x, C_x, T_y;
    logic [7:0]         P_cd, K_cd;
    logic               yok_row;
    // post
    logic [23:0]        p_left;
    logic [AAW-1:0]     p_ig;          // the chunk's first integrated-gradients word
    logic               p_pass, p_two;
    logic               p_one, p_set;   // a post op that reads: its chunks alternate buffer sets (the loader's pset)
    logic [11:0]        pch;            // the op's chunk (half for two input tensors, the second in the upper half)

    logic first_pass, final_pass, tile_end, keep;
    assign first_pass = i_k == '0 && i_ky == '0 && i_kx == '0;
    assign keep = w_once && (i_ky != '0 || i_kx != '0);   // a pass on the weights already in the array
    assign tile_end   = i_ky == ky_n - 1'b1 && i_kx == kx_n - 1'b1;
    assign final_pass = i_k == i_klast && tile_end;

    // a grid row whose input row is off the map takes one cycle on a pass other than the row
    // tile's first (which zeroes the sums) and final (which writes them out): its products are
    // zero. Only on grids of at least TN columns (skips), where a pass that skips its leading rows
    // still re-reads a position TN + 2 cycles or more after the pass before it read it
    logic skips, skip_row, row_end;
    assign skip_row = skips && !yok_row && !first_pass && !final_pass;
    assign row_end  = c == ow - 1'b1 || skip_row;

    logic pos_last;
    assign pos_last = is_post ? (12'(p) == rows - 1'b1) : (r == rows - 1'b1 && row_end);

    // stage 0 (registered): the reads of a position
    logic           s0_valid, s0_keep, s0_swap, s0_zero, s0_accwe, s0_outwe, s0_oset, s0_bconst;
    logic [3:0]     s0_xs;
    logic [7:0]     s0_code;
    logic [AAW-1:0] s0_acc;
    logic [OAW-1:0] s0_out;
    logic [1:0]     s0_amode;   // post: 0 as read, 1 |.|, 2 negated, 3 zero
    logic signed [17:0] s0_k;
    logic [WAW:0]   w_raddr_post;

    // out_give once the row tile's last sum is written (TN + 4 cycles after its issue)
    localparam int DONE_DELAY = TN + 4;
    logic [DONE_DELAY-1:0] done_pipe;
    logic fin_now;   // the issue of an output set's last position
    assign fin_now = ist == I_RUN && pos_last && (is_post ? !(p_two && !p_pass) : final_pass);

    // the running sums a row tile's next tile starts from
    logic signed [13:0] y_tile;
    always_comb begin
        if (i_k != i_klast) y_tile = T_y;
        else if (i_rt != row_tiles - 1'b1) y_tile = T_y + load_step;
        else y_tile = iy0;
    end

    // the n-tile being issued: i_k of the m-tile's n-tiles, which on a DIAG job start at mt * TPB
    // (TPB a power of two: an OR, no multiplier); its source picks the operand shift (a LANES job
    // has one source: its n-tile, block mt, never reaches src_b)
    logic [11:0] i_nt;
    assign i_nt = diag ? 12'(i_mt * TPB) | i_k : i_k;

    function automatic logic in_map(input logic signed [13:0] v, input logic signed [13:0] n);
        in_map = v >= 0 && v < n;
    endfunction

    function automatic logic [1:0] ulog(input logic [3:2] side);   // log2 of an UNPOOL window side: 2, 4 or 8
        ulog = side[3] ? 2'd3 : side[2] ? 2'd2 : 2'd1;
    endfunction

    // UNPOOL: where a coordinate steps across a window edge (the running sums move only there)
    function automatic logic at_last(input logic [2:0] v);    // low bits of a coordinate: +1 leaves the window
        at_last = (v & umsk) == umsk;
    endfunction
    function automatic logic at_first(input logic [2:0] v);   // -1 leaves the window
        at_first = (v & umsk) == '0;
    endfunction

    // the running sums' steps (UNPOOL: isx = isy = 1, ikx = iky = -1, the lowering's guarantee)
    logic [IAW-1:0] col_inc, row_inc, tap_inc, prow_inc;
    always_comb begin
        col_inc  = !unp ? a_isx : at_last(C_x[2:0]) ? IAW'(1) : '0;
        row_inc  = !unp ? walk_row : at_last(Q_y[2:0]) ? walk_row : '0;
        tap_inc  = !unp ? a_ikx : at_first(P_x[2:0]) ? a_ikx : '0;
        prow_inc = !unp ? walk_pass_row : at_first(K_y[2:0]) ? walk_pass_row : '0;
    end

    // the pass after the current one: the next tap of the pass row, the next pass row, or the
    // next tile's pass (0, 0); its running sums' start, and whether it opens a row tile
    logic               nx_tap, nx_row, nx_first, nx_keep, job_last;
    logic [IAW-1:0]     nP_a;
    logic signed [13:0] nP_y, nP_x;
    logic [11:0]        nx_rows;
    assign nx_tap   = i_kx != kx_n - 1'b1;
    assign nx_row   = !nx_tap && i_ky != ky_n - 1'b1;
    assign nx_first = tile_end && i_k == i_klast;
    assign nx_keep  = w_once && (nx_tap || nx_row);
    assign job_last = nx_first && i_rt == row_tiles - 1'b1 && i_mt + 1'b1 == m_tiles && i_slots == '0;
    always_comb begin
        if (nx_tap) begin
            nP_a = P_a + tap_inc;
            nP_y = P_y;
            nP_x = P_x + ikx;
        end else if (nx_row) begin
            nP_a = K_a + prow_inc;
            nP_y = K_y + iky;
            nP_x = ix0;
        end else begin
            nP_a = walk_origin;
            nP_y = y_tile;
            nP_x = ix0;
        end
        if (!nx_first) nx_rows = rows;
        else if (i_rt != row_tiles - 1'b1) nx_rows = (i_rt + 1'b1 == row_tiles - 1'b1) ? last_rows : tile_rows;
        else nx_rows = (row_tiles == 12'd1) ? last_rows : tile_rows;
    end

    // a pass follows the one before without a waiting cycle (chained) when the next pass's
    // weights are in the shadow chain (or kept), an output set is free if it opens a row tile,
    // and the current pass started at least GAP cycles ago (so the next starts GAP + 1 or more
    // after it), where that keeps the accumulators' read-to-write distance of TN + 2: always on a
    // grid that walks every row (each position is re-read as long after as the passes' starts are
    // apart) or of one row; on a grid that skips rows off the map, a position is re-read at least
    // ow + rows - 1 cycles after (its own row, one cycle or more for each other row), so there
    // ow + rows >= TN + 3; otherwise the pass waits a cycle as before
    logic chains, chain;
    assign chains = !skips || rows == 12'd1 || 13'(ow) + 13'(rows) >= 13'(TN + 3);
    assign chain = chains && ist == I_RUN && !is_post && pos_last && !job_last && p != '0 && gap == '0
                   && (shadow_full || nx_keep) && (!nx_first || out_free != 2'd0);

    // a CONV pass starts (its first position is issued next cycle): the pass in P_* after a
    // waiting cycle (I_WAIT), or the next pass chained to the current one
    logic               go, go_first, go_keep;
    logic [11:0]        go_rows;
    logic [IAW-1:0]     go_a;
    logic signed [13:0] go_y, go_x;
    assign go = chain || (ist == I_WAIT && !is_post && (shadow_full || keep) && gap == '0
                          && (!first_pass || out_free != 2'd0));
    assign go_first = chain ? nx_first : first_pass;
    assign go_keep  = chain ? nx_keep : keep;
    assign go_rows  = chain ? nx_rows : (i_rt == row_tiles - 1'b1) ? last_rows : tile_rows;
    assign go_a     = chain ? nP_a : P_a;
    assign go_y     = chain ? nP_y : P_y;
    assign go_x     = chain ? nP_x : P_x;

    always_ff @(posedge clk) begin
        if (rst) begin
            fst <= F_IDLE;
            ist <= I_IDLE;
            shadow_full <= 1'b0;
            shadow_free <= 1'b1;
            fill_shift <= 1'b0;
            free_count <= '0;
            loaded_take <= 1'b0;
            free_give <= 1'b0;
            free_give2 <= 1'b0;
            out_take <= 1'b0;
            s0_valid <= 1'b0;
            s0_swap <= 1'b0;
            done_pipe <= '0;
            gap <= '0;
            is_post <= 1'b0;
        end else begin
            loaded_take <= 1'b0;
            free_give <= 1'b0;
            free_give2 <= 1'b0;
            out_take <= 1'b0;
            s0_valid <= 1'b0;
            s0_swap <= 1'b0;
            if (gap != '0) gap <= gap - 1'b1;
            fill_shift <= fst == F_READ;
            if (free_count != '0) begin
                free_count <= free_count - 1'b1;
                if (free_count == 1) shadow_free <= 1'b1;
            end
            if (fill_shift && fst != F_READ) shadow_full <= 1'b1;

            if (start && fst == F_IDLE && ist == I_IDLE) begin
                is_post <= kind == JOB_POST;
                diag <= kind == JOB_CONV && desc.flags[FLAG_DIAG];
                lanes <= kind == JOB_CONV && desc.flags[FLAG_LANES];
                w_once <= kind == JOB_CONV && desc.w_once;
                wdiag <= W_DIAG != 0 && kind == JOB_CONV && desc.w_diag != '0;
                in_kept <= kind == JOB_CONV && desc.in_keep != '0;
                keep_words <= (IAW+1)'(desc.in_keep);
                kbase <= '0;
                gate <= BACKWARD != 0 && kind == JOB_CONV && desc.flags[FLAG_GATE];
                unp <= starts_unpool;
                unp_relu <= starts_unpool && desc.unpool == 2'(UNPOOL_RELU);
                umsk <= 3'(desc.pool_sh - 1'b1);
                uls <= ulog(desc.pool_sh[3:2]);
                rmode <= mode;
                m_tiles <= desc.m_tiles;
                row_tiles <= desc.row_tiles;
                n_tiles <= desc.n_tiles;
                tile_rows <= desc.tile_rows;
                last_rows <= desc.last_rows;
                ow <= desc.ow;
                skips <= desc.ow >= 12'(TN);
                // the map's bounds: UNPOOL's input is the pooled map, its positions those of the window grid
                ih <= starts_unpool ? 14'(desc.ih) << ulog(desc.pool_sh[3:2]) : 14'(desc.ih);
                iw <= starts_unpool ? 14'(desc.iw) << ulog(desc.pool_sh[3:2]) : 14'(desc.iw);
                ky_n <= desc.ky;
                kx_n <= desc.kx;
                walk_origin <= IAW'(desc.walk_origin);
                walk_row <= IAW'(desc.walk_row);
                walk_pass_row <= IAW'(desc.walk_pass_row);
                a_isx <= IAW'(desc.isx);
                a_ikx <= IAW'(desc.ikx);
                isx <= 14'(desc.isx);
                ikx <= 14'(desc.ikx);
                isy <= 14'(desc.isy);
                iky <= 14'(desc.iky);
                iy0 <= desc.iy0;
                ix0 <= desc.ix0;
                // the first input row of the next row tile (UNPOOL: grid rows, isy = 1; load_step counts pooled rows)
                load_step <= starts_unpool ? 14'(desc.tile_step) : 14'(desc.load_step);
                ixbias <= IXW'(desc.index_base / TN) - IXW'(desc.in_addr >> $clog2(2 * TN));
                ixbias_step <= IXW'(desc.index_slot / TN) - IXW'(desc.in_slot_bytes >> $clog2(2 * TN));
                f_slots <= (desc.slots > 8'd1) ? desc.slots - 1'b1 : '0;
                i_slots <= (desc.slots > 8'd1) ? desc.slots - 1'b1 : '0;
                code0 <= desc.code0;
                code_ky <= 8'(desc.code_ky);
                code_kx <= 8'(desc.code_kx);
                pc_op <= post.op;
                pc_first <= post.first;
                pc_k0 <= post.k0;
                pc_k1 <= post.k1;
                // the shifts of the run's mode, as the write-back picks shift0/1/2 (3: the plain rule's)
                src_b <= desc.src_b;
                xs_a <= (mode == 2'd1) ? desc.xs_a1 : (mode == 2'd2) ? desc.xs_a2 : desc.xs_a0;
                xs_b <= (mode == 2'd1) ? desc.xs_b1 : (mode == 2'd2) ? desc.xs_b2 : desc.xs_b0;
                f_mt <= '0; f_rt <= '0; f_k <= '0; f_ky <= '0; f_kx <= '0; f_set <= 1'b0; f_row <= '0;
                i_mt <= '0; i_rt <= '0; i_k <= '0; i_ky <= '0; i_kx <= '0; i_set <= 1'b0; o_set <= 1'b0;
                i_klast <= !desc.flags[FLAG_DIAG] ? desc.n_tiles - 1'b1 : desc.flags[FLAG_LANES] ? '0
                         : (desc.n_tiles < 12'(TPB)) ? desc.n_tiles - 1'b1 : 12'(TPB - 1);
                // the first pass of the first tile
                P_a <= IAW'(desc.walk_origin);
                K_a <= IAW'(desc.walk_origin);
                P_y <= desc.iy0;
                K_y <= desc.iy0;
                T_y <= desc.iy0;
                P_x <= desc.ix0;
                P_cd <= desc.code0;
                K_cd <= desc.code0;
                shadow_full <= 1'b0;
                shadow_free <= 1'b1;
                p_left <= post.beats;
                p_ig <= AAW'(OUT_DEPTH);
                p_pass <= 1'b0;
                p_two <= post.op == POST_IG_POINT || post.op == POST_IG_FINAL;
                p_one <= post.op != POST_IG_SUM;
                pch <= (post.op == POST_IG_POINT || post.op == POST_IG_FINAL) ? 12'(CHUNK / 2) : 12'(CHUNK);
                p_set <= 1'b0;
                if (kind == JOB_POST) begin
                    ist <= I_WAIT;
                end else if (kind == JOB_CONV && desc.ky != '0 && desc.kx != '0) begin
                    fst <= F_WAIT;
                    ist <= I_WAIT;
                end
            end

            // ---------------- fill: the TM rows of a pass into the shadow chain, row 0 first
            case (fst)
                F_WAIT: if (shadow_free && (f_ky != '0 || f_kx != '0 || loaded != 2'd0)) begin
                    if (f_ky == '0 && f_kx == '0) loaded_take <= 1'b1;
                    shadow_free <= 1'b0;
                    f_r <= '0;
                    fst <= F_READ;
                end
                F_READ: begin
                    // w_diag: the row of TN lanes' weights, read once a lane, to the next at its last lane
                    if (W_DIAG == 0 || !wdiag || (f_r & RW'(TN - 1)) == RW'(TN - 1)) f_row <= f_row + 1'b1;
                    f_r <= f_r + 1'b1;
                    if (f_r == RW'(TM - 1)) begin
                        fst <= F_WAIT;
                        // w_once: a tile's one pass of weights, then the next tile's
                        if (!w_once && f_kx != kx_n - 1'b1) f_kx <= f_kx + 1'b1;
                        else begin
                            f_kx <= '0;
                            if (!w_once && f_ky != ky_n - 1'b1) f_ky <= f_ky + 1'b1;
                            else begin
                                f_ky <= '0;
                                f_row <= '0;
                                f_set <= !f_set;
                                if (f_k != klast(f_mt)) f_k <= f_k + 1'b1;
                                else begin
                                    f_k <= '0;
                                    if (f_rt != row_tiles - 1'b1) f_rt <= f_rt + 1'b1;
                                    else begin
                                        f_rt <= '0;
                                        f_mt <= f_mt + 1'b1;
                                        if (f_mt + 1'b1 == m_tiles) begin
                                            // a slot job's next slot runs the m-tiles again
                                            f_mt <= '0;
                                            if (f_slots != '0) f_slots <= f_slots - 1'b1;
                                            else fst <= F_IDLE;
                                        end
                                    end
                                end
                            end
                        end
                    end
                end
                default: ;
            endcase

            // ---------------- issue: wait for a post chunk's conditions (a CONV pass's: go, below)
            if (ist == I_WAIT && is_post) begin
                if (p_pass) begin
                    if (gap == '0) ist <= I_RUN;        // the second pass of a chunk
                end else if (p_left == '0) begin
                    ist <= I_IDLE;
                end else if (loaded != 2'd0 && out_free != 2'd0) begin
                    loaded_take <= 1'b1;
                    out_take <= 1'b1;
                    rows <= (p_left > 24'(pch)) ? pch : 12'(p_left);
                    p <= '0;
                    ist <= I_RUN;
                end
            end

            // ---------------- issue: the positions of a CONV pass
            if (ist == I_RUN && !is_post) begin
                if (p == '0) gap <= GW'(GAP - 1);
                s0_swap <= p == '0 && !keep;
                s0_valid <= !skip_row;
                s0_keep <= yok_row && in_map(C_x, iw);
                s0_xs <= (src_b != '0 && i_nt >= src_b) ? xs_b : xs_a;
                s0_code <= unp ? (8'(3'(Q_y) & umsk) << uls) | 8'(3'(C_x) & umsk) : P_cd;   // (y mod s) * s + x mod s
                s0_zero <= first_pass;
                s0_acc <= AAW'(p);
                s0_out <= p;
                s0_accwe <= 1'b1;
                s0_outwe <= final_pass;
                s0_oset <= o_set;
                in_raddr <= in_kept ? kbase + (IAW+1)'(C_a) : {i_set, C_a};
                ix_raddr <= BACKWARD != 0 ? ix_row0[(i_set ? IXW : 0) +: IXW] + ixbias + IXW'(C_a) : '0;
                p <= skip_row ? p + OAW'(ow) : p + 1'b1;
                if (row_end) begin
                    c <= '0;
                    r <= r + 1'b1;
                    Q_a <= Q_a + row_inc;
                    C_a <= Q_a + row_inc;
                    Q_y <= Q_y + isy;
                    yok_row <= in_map(Q_y + isy, ih);
                    C_x <= P_x;
                end else begin
                    c <= c + 1'b1;
                    C_a <= C_a + col_inc;
                    C_x <= C_x + isx;
                end
                if (pos_last) begin
                    ist <= I_WAIT;
                    P_a <= nP_a;
                    P_y <= nP_y;
                    P_x <= nP_x;
                    if (nx_tap) begin
                        // the next tap of the pass row
                        i_kx <= i_kx + 1'b1;
                        P_cd <= P_cd + code_kx;
                    end else if (nx_row) begin
                        // the next pass row
                        i_kx <= '0;
                        i_ky <= i_ky + 1'b1;
                        K_a <= nP_a;
                        K_y <= nP_y;
                        K_cd <= K_cd + code_ky;
                        P_cd <= K_cd + code_ky;
                    end else begin
                        // the tile's last pass: the next tile starts at pass (0, 0)
                        i_kx <= '0;
                        i_ky <= '0;
                        i_set <= !i_set;
                        free_give <= 1'b1;
                        if (i_k != i_klast) begin
                            i_k <= i_k + 1'b1;
                            kbase <= kbase + keep_words;
                        end else begin
                            o_set <= !o_set;
                            i_k <= '0;
                            kbase <= '0;
                            if (i_rt != row_tiles - 1'b1) begin
                                i_rt <= i_rt + 1'b1;
                                T_y <= T_y + load_step;
                            end else begin
                                i_rt <= '0;
                                i_mt <= i_mt + 1'b1;
                                i_klast <= klast(i_mt + 1'b1);
                                T_y <= iy0;
                                if (i_mt + 1'b1 == m_tiles) begin
                                    // a slot job's next slot: m-tile 0 at that slot's indices
                                    i_mt <= '0;
                                    i_klast <= klast('0);
                                    ixbias <= ixbias + ixbias_step;
                                    if (i_slots != '0) i_slots <= i_slots - 1'b1;
                                    else ist <= I_IDLE;
                                end
                            end
                        end
                        K_a <= walk_origin;
                        K_y <= y_tile;
                        P_cd <= code0;
                        K_cd <= code0;
                    end
                end
            end

            // ---------------- a CONV pass starts (after I_WAIT, or chained at the last position)
            if (go) begin
                if (go_first) out_take <= 1'b1;
                rows <= go_rows;
                if (!go_keep) begin
                    shadow_full <= 1'b0;
                    free_count <= (GW+1)'(TN + 1);
                end
                r <= '0;
                c <= '0;
                p <= '0;
                Q_a <= go_a;
                C_a <= go_a;
                Q_y <= go_y;
                C_x <= go_x;
                yok_row <= in_map(go_y, ih);
                ist <= I_RUN;
            end

            // ---------------- issue: a post-processing chunk, one or two passes over its beats
            if (ist == I_RUN && is_post) begin
                if (p == '0) gap <= GW'(GAP - 1);
                s0_valid <= 1'b1;
                s0_keep <= 1'b0;
                in_raddr <= {p_one && p_set, IAW'(p) + (p_pass ? IAW'(CHUNK / 2) : '0)};
                w_raddr_post <= {p_one && p_set, WAW'(p)};
                s0_out <= p;
                s0_oset <= o_set;
                s0_accwe <= pc_op != POST_IG_SUM;
                s0_outwe <= pc_op != POST_IG_ACC && (p_pass || !p_two);
                if (pc_op == POST_IG_ACC || pc_op == POST_IG_SUM) begin
                    s0_acc <= p_ig + AAW'(p);
                    s0_zero <= pc_op == POST_IG_ACC && pc_first;
                end else begin
                    s0_acc <= AAW'(p);
                    s0_zero <= !p_pass;
                end
                case (pc_op)
                    POST_ABS:      s0_amode <= 2'd1;
                    POST_IG_SUM:   s0_amode <= 2'd3;
                    POST_IG_FINAL: s0_amode <= p_pass ? 2'd2 : 2'd0;
                    default:       s0_amode <= 2'd0;
                endcase
                s0_bconst <= !(pc_op == POST_IXG || pc_op == POST_IG_FINAL);
                s0_k <= p_pass ? pc_k1 : pc_k0;
                p <= p + 1'b1;
                if (pos_last) begin
                    p <= '0;
                    ist <= I_WAIT;
                    if (p_two && !p_pass) begin
                        p_pass <= 1'b1;
                    end else begin
                        p_pass <= 1'b0;
                        o_set <= !o_set;
                        p_set <= !p_set;
                        if (p_one) free_give <= 1'b1;   // the chunk's one set
                        else free_give2 <= 1'b1;
                        p_left <= p_left - 24'(rows);
                        p_ig <= p_ig + AAW'(rows);
                    end
                end
            end

            done_pipe <= {done_pipe[DONE_DELAY-2:0], fin_now};
        end
    end

    assign out_give = done_pipe[DONE_DELAY-1];
    assign busy = fst != F_IDLE || ist != I_IDLE || done_pipe != '0;
    assign w_raddr = is_post ? w_raddr_post : {f_set, f_row};
    assign w_shift = fill_shift;
    // w_diag: the lane read into the shadow chain keeps only its own column's weight
    if (W_DIAG != 0) begin : g_wdiag
        always_ff @(posedge clk) w_mask <= (wdiag && fst == F_READ) ? TN'(1) << (f_r & RW'(TN - 1)) : '1;
    end else begin : g_wdense
        assign w_mask = '1;
    end

    // ---------------------------------------------------------------- stage 1: the MAC array's inputs
    logic           s1_keep, s1_bconst, s1_urelu;
    logic [3:0]     s1_xs;
    logic [7:0]     s1_code;
    logic [1:0]     s1_amode;
    logic signed [17:0] s1_k;
    always_ff @(posedge clk) begin
        if (rst) begin
            swap <= 1'b0;
            acc_we <= 1'b0;
            out_we <= 1'b0;
        end else begin
            swap <= s0_swap;
            acc_we <= s0_valid && s0_accwe;
            out_we <= s0_valid && s0_outwe;
        end
        s1_keep <= s0_valid && s0_keep;
        s1_xs <= s0_xs;
        s1_urelu <= unp_relu;
        s1_code <= s0_code;
        s1_amode <= s0_amode;
        s1_bconst <= s0_bconst;
        s1_k <= s0_k;
        acc_zero <= s0_zero;
        acc_addr <= s0_acc;
        out_set <= s0_oset;
        out_addr <= s0_out;
    end
    assign post_mode = is_post;
    assign x = in_rdata;
    assign x_shift = s1_xs;   // with x: the operands read at s0 arrive now

    for (genvar n = 0; n < TN; n++) begin : g_keep
        if (BACKWARD != 0) begin : g_gate
            logic alive, negative, rule;
            assign alive = ix_rdata[n*(INDEX_BITS+1) + INDEX_BITS];
            assign negative = in_rdata[n*16 + 15];
            // the ReLU rule of the run on an unpooled operand: its bit is the window's alive bit
            always_comb rule = relu_keeps(negative, alive, rmode);
            assign x_keep[n] = s1_keep && (!gate || ix_rdata[n*(INDEX_BITS+1) +: INDEX_BITS] == INDEX_BITS'(s1_code))
                               && (!s1_urelu || rule);
        end else begin : g_nogate
            assign x_keep[n] = s1_keep;
        end
    end

    for (genvar e = 0; e < E; e++) begin : g_post
        logic signed [17:0] v;
        assign v = 18'($signed(in_rdata[e*16 +: 16]));
        always_comb begin
            case (s1_amode)
                2'd1: post_a[e*18 +: 18] = v < 0 ? -v : v;
                2'd2: post_a[e*18 +: 18] = -v;
                2'd3: post_a[e*18 +: 18] = '0;
                default: post_a[e*18 +: 18] = v;
            endcase
        end
        assign post_b[e*18 +: 18] = s1_bconst ? s1_k : 18'($signed(w_rdata[e*16 +: 16]));
    end

    logic unused;
    assign unused = ^{f_rt, i_rt, ix_rdata, desc, post, BACKWARD, s1_code, w_rdata, gate, rmode, s1_urelu};
endmodule
