// Tile loader: turns one job into DDR read commands and routes the returning beats into the
// engine's on-chip buffers, one tile (CONV) or chunk (pools, ReLU, seed) ahead of the consumer.
//
// CONV tiles run in (output-channel tile, row tile, input-channel tile) order. Per tile: the
// bias (first input-channel tile only), one contiguous run per input channel (the full-width
// rows the tile reads, zero padding is not fetched) and one contiguous weight run per output
// channel (forward layout) or per input channel (transposed layout). Requests run ahead of
// the data: a tile's beats are accepted only once the consumer has released the ping-pong
// buffer set they go to (R backpressure), so DDR latency is hidden across tiles.
//
// Element-wise jobs load up to TM channel runs per chunk straight into an accumulator set
// (64-bit entries = beats): pools by groups of pooled rows, ReLU by runs of elements.
//
// Guarantees: buffers are written only while their set is free; a set is handed over
// (tile_full / acc_fill) only after every beat of its tile has arrived.

import xaihls_pkg::*;

module xaihls_loader
#(
    parameter int TM        = 4,
    parameter int TN        = 2,
    parameter int OUT_DEPTH = 256,
    parameter int IN_ROWS   = 258,   // 64-bit rows per input bank
    parameter int W_DEPTH   = 16,
    parameter int LOG_TM    = (TM > 1) ? $clog2(TM) : 1,
    parameter int LOG_TN    = (TN > 1) ? $clog2(TN) : 1,
    parameter int IN_AW     = $clog2(IN_ROWS),
    parameter int OUT_AW    = $clog2(OUT_DEPTH),
    parameter int W_TW      = $clog2(W_DEPTH) + 1
) (
    input  logic             clk,
    input  logic             rst,

    input  logic             job_start,
    input  xaihls_pkg::desc_t            d,
    output logic             busy,

    // read mover
    output logic             cmd_valid,
    input  logic             cmd_ready,
    output logic [31:0]      cmd_off,
    output logic [23:0]      cmd_words,
    output logic [15:0]      cmd_user,
    input  logic             b_valid,
    output logic             b_ready,
    input  logic [63:0]      b_data,
    input  logic [15:0]      b_user,
    input  logic [15:0]      b_beat,
    input  logic [1:0]       b_lead,
    input  logic             b_first,
    input  logic             b_last,

    // CONV: input banks (a beat a cycle, its words to up to four banks), weight banks (four words)
    output logic [TN-1:0][3:0]       in_we,
    output logic             in_set,
    output logic [TN-1:0][IN_AW-1:0] in_row,
    output logic [63:0]      in_data,
    output logic             w_set,
    output logic [3:0]       w_v,
    output logic [3:0][LOG_TM-1:0] w_m,
    output logic [3:0][LOG_TN-1:0] w_n,
    output logic [3:0][W_TW-1:0]  w_t,
    output logic [3:0][15:0]      w_d,

    // CONV: a loaded tile per set, released by the MAC array when it has read the set
    output logic [1:0]       tile_full,
    output logic [1:0]             t_first_nt,
    output logic [1:0]             t_last_nt,
    output logic [1:0]             t_first_rt,
    output logic [1:0]             t_last_tile,
    output logic [1:0][31:0]             t_rows,
    output logic [1:0][31:0]             t_r0,
    output logic [1:0][31:0]             t_y0,
    output logic [1:0][31:0]             t_a0,
    output logic [1:0][31:0]             t_m0,
    output logic [1:0][31:0]             t_mlanes,
    output logic [1:0][31:0]             t_nlanes,
    output logic [1:0][TN-1:0][1:0]       t_lead,
    output logic [1:0][TM-1:0][15:0] t_bias,
    input  logic [1:0]       tile_release,
    // per-job constants the MAC array needs
    output xaihls_pkg::s32_t             isy_iw,
    output xaihls_pkg::s32_t             iky_iw,

    // element-wise jobs: accumulator sets
    input  logic [1:0]       acc_free,
    output logic             acc_we,
    output logic             acc_set,
    output logic [LOG_TM-1:0] acc_lane,
    output logic [OUT_AW-1:0] acc_entry,
    output logic [63:0]      acc_data,
    output logic             acc_fill,       // pulse: acc_fill_set now holds chunk acc_fill_meta
    output logic             acc_fill_set,
    output xaihls_pkg::chunk_t           acc_fill_meta,
    output logic [TM-1:0][1:0]       acc_fill_lead
);
    localparam int KIND_BIAS = 0, KIND_IN = 1, KIND_W = 2, KIND_ACC = 3;
    localparam int CAP_WORDS = $signed(32'(4 * OUT_DEPTH));

    // ---------------------------------------------------------------- job registers
    xaihls_pkg::desc_t j;
    assign j = d;  // the controller holds the descriptor until the engine is idle
    logic [3:0] op;
    logic is_conv, is_pool_fwd, is_pool_bwd, is_relu, is_seed;
    assign op = j.op[3:0];
    assign is_conv = (op == OP_CONV);
    assign is_pool_fwd = (op == OP_MAXPOOL) || (op == OP_AVGPOOL);
    assign is_pool_bwd = (op == OP_MAXPOOL_BWD) || (op == OP_AVGPOOL_BWD);
    assign is_relu = (op == OP_RELU);
    assign is_seed = (op == OP_SEED);

    // weight block: one (m, n) kernel's taps, contiguous in DDR
    xaihls_pkg::s32_t abs_wm, abs_wn, block;
    logic by_m, zero_taps;
    assign abs_wm = (j.ws_m < 0) ? -j.ws_m : j.ws_m;
    assign abs_wn = (j.ws_n < 0) ? -j.ws_n : j.ws_n;
    assign block = xaihls_pkg::smax(xaihls_pkg::smin(abs_wm, abs_wn), 32'sd1);
    assign by_m = (abs_wn == block);
    assign zero_taps = (j.ky == 0) || (j.kx == 0);

    // ---------------------------------------------------------------- setup products
    // One multiplier, one product a cycle; the step list depends on the op.
    logic su_active;
    logic [4:0] su_step;
    logic signed [24:0] mul_a;
    logic signed [17:0] mul_b;
    xaihls_pkg::s32_t prod;
    assign prod = $signed(32'(mul_a * mul_b));

    // CONV
    xaihls_pkg::s32_t plane_in, kyiky, poolrows, rtts, ts_isy, rm1isy_full, rm1isy_last, ts_isy_w, ylo0_w,
          yhi0_w, rm1isy_w_full, rm1isy_w_last, ihm1_w, iy0_w, nlb_last, mlb_last, nl_plane_last;
    xaihls_pkg::s32_t tapmin, tapmax, conv_rows, rows_last, n_last, m_last;
    assign tapmin = (j.iky < 0) ? kyiky : 32'sd0;
    assign tapmax = (j.iky < 0) ? 32'sd0 : kyiky;
    assign conv_rows = j.flags[FL_POOL] ? poolrows + j.pool_k : j.oh;
    assign rows_last = conv_rows - rtts;
    assign n_last = j.n - ((j.n_tiles - 32'sd1) <<< LOG_TN);
    assign m_last = j.m - ((j.m_tiles - 32'sd1) <<< LOG_TM);
    // pools
    xaihls_pkg::s32_t e_plane, e_ppool, e_s_iw, e_ks_iw, e_poh_siw, e_poh_s, e_rc1_pow, e_srstr, e_exrstr,
          e_pohm1_pow, e_rp_siw, e_rplast_siw, e_rp_pow, e_rp_s;
    xaihls_pkg::s32_t e_rc, e_rstr_out, e_extra;
    assign e_rc = $signed(32'(xaihls_pkg::ceil_div_small(j.pool_k, j.pool_s)));
    assign e_rstr_out = is_pool_fwd ? ((j.pool_ow + 32'sd6) >>> 2) : ((j.iw + 32'sd6) >>> 2);
    assign e_extra = xaihls_pkg::smax(j.ih - e_poh_s, 32'sd0);



    // CONV products, two a cycle (mul_a/mul_b and mul2_a/mul2_b), in dependency order
    logic signed [24:0] mul2_a;
    logic signed [17:0] mul2_b;
    xaihls_pkg::s32_t prod2;
    assign prod2 = $signed(32'(mul2_a * mul2_b));
    always_comb begin
        mul2_a = '0;
        mul2_b = '0;
        if (is_conv) begin
            case (su_step)
                5'd0: begin mul2_a = 25'(xaihls_pkg::smax(j.ky, 32'sd1) - 32'sd1); mul2_b = 18'(j.iky); end
                5'd1: begin mul2_a = 25'(j.row_tiles - 32'sd1);        mul2_b = 18'(j.tile_step); end
                5'd2: begin mul2_a = 25'(j.tile_rows - 32'sd1);        mul2_b = 18'(j.isy); end
                5'd3: begin mul2_a = 25'(j.iy0 + tapmin);              mul2_b = 18'(j.iw); end
                5'd4: begin mul2_a = 25'(j.iy0 + tapmax);              mul2_b = 18'(j.iw); end
                5'd5: begin mul2_a = 25'(rm1isy_last);                 mul2_b = 18'(j.iw); end
                5'd6: begin mul2_a = 25'(j.iy0);                       mul2_b = 18'(j.iw); end
                5'd7: begin mul2_a = 25'(m_last);                      mul2_b = 18'(block); end
                5'd8: begin mul2_a = 25'(j.iky);                       mul2_b = 18'(j.iw); end
                default: ;
            endcase
        end else if (is_pool_fwd) begin
            case (su_step)
                5'd0: begin mul2_a = 25'(j.pool_oh);          mul2_b = 18'(j.pool_ow); end
                5'd1: begin mul2_a = 25'(j.pool_k - j.pool_s); mul2_b = 18'(j.iw); end
                5'd2: begin mul2_a = 25'(j.pool_oh);          mul2_b = 18'(e_rstr_out); end
                5'd3: begin mul2_a = 25'(rp_last);            mul2_b = 18'(e_s_iw); end
                default: ;
            endcase
        end else if (is_pool_bwd) begin
            case (su_step)
                5'd0: begin mul2_a = 25'(j.pool_oh);          mul2_b = 18'(j.pool_ow); end
                5'd1: begin mul2_a = 25'(e_rc - 32'sd1);      mul2_b = 18'(j.pool_ow); end
                5'd2: begin mul2_a = 25'(j.pool_oh - 32'sd1); mul2_b = 18'(j.pool_ow); end
                5'd3: begin mul2_a = 25'(j.pool_oh);          mul2_b = 18'(e_srstr); end
                5'd4: begin mul2_a = 25'(rp);                 mul2_b = 18'(j.pool_s); end
                default: ;
            endcase
        end
    end

    always_comb begin
        mul_a = '0;
        mul_b = '0;
        if (is_conv) begin
            case (su_step)
                5'd0: begin mul_a = 25'(j.ih);                       mul_b = 18'(j.iw); end
                5'd1: begin mul_a = 25'(j.pool_oh - 32'sd1);          mul_b = 18'(j.pool_s); end
                5'd2: begin mul_a = 25'(j.tile_step);                 mul_b = 18'(j.isy); end
                5'd3: begin mul_a = 25'(rows_last - 32'sd1);          mul_b = 18'(j.isy); end
                5'd4: begin mul_a = 25'(ts_isy);                      mul_b = 18'(j.iw); end
                5'd5: begin mul_a = 25'(rm1isy_full);                 mul_b = 18'(j.iw); end
                5'd6: begin mul_a = 25'(j.ih - 32'sd1);               mul_b = 18'(j.iw); end
                5'd7: begin mul_a = 25'(n_last);                      mul_b = 18'(block); end
                5'd8: begin mul_a = 25'(j.isy);                       mul_b = 18'(j.iw); end
                5'd9: begin mul_a = 25'(n_last);                      mul_b = 18'(plane_in); end
                default: ;
            endcase
        end else if (is_pool_fwd) begin
            case (su_step)
                5'd0: begin mul_a = 25'(j.ih);                  mul_b = 18'(j.iw); end
                5'd1: begin mul_a = 25'(j.pool_s);              mul_b = 18'(j.iw); end
                5'd2: begin mul_a = 25'(j.pool_oh);             mul_b = 18'(e_s_iw); end
                5'd3: begin mul_a = 25'(rp);                    mul_b = 18'(e_s_iw); end
                default: ;
            endcase
        end else if (is_pool_bwd) begin
            case (su_step)
                5'd0: begin mul_a = 25'(j.ih);                  mul_b = 18'(j.iw); end
                5'd1: begin mul_a = 25'(j.pool_oh);             mul_b = 18'(j.pool_s); end
                5'd2: begin mul_a = 25'(j.pool_s);              mul_b = 18'(e_rstr_out); end
                5'd3: begin mul_a = 25'(e_extra);               mul_b = 18'(e_rstr_out); end
                5'd4: begin mul_a = 25'(rp);                    mul_b = 18'(j.pool_ow); end
                default: ;
            endcase
        end
    end

    // chunk size for pools: the largest power of two of pooled rows (or all of them) that fits
    xaihls_pkg::s32_t rp, rp_last, rp_chunks;
    logic [4:0] rp_log;
    logic rp_all;  // rp == pool_oh

    function automatic logic pool_fits(input logic signed [31:0] rows_p, input logic signed [31:0] in_words, input logic signed [31:0] out_entries);
        pool_fits = (rows_p >= 32'sd1) && (in_words + 32'sd3 <= CAP_WORDS) && (out_entries <= $signed(32'(OUT_DEPTH)));
    endfunction

    always_ff @(posedge clk) begin
        if (rst) begin
            su_active <= 1'b0;
            su_step <= '0;
        end else if (job_start) begin
            su_active <= 1'b1;
            su_step <= '0;
        end else if (su_active) begin
            su_step <= su_step + 5'd1;
            if (is_conv) begin
                case (su_step)
                    5'd0: begin plane_in <= prod; kyiky <= prod2; end
                    5'd1: begin poolrows <= prod; rtts <= prod2; end
                    5'd2: begin ts_isy <= prod; rm1isy_full <= prod2; end
                    5'd3: begin rm1isy_last <= prod; ylo0_w <= prod2; end
                    5'd4: begin ts_isy_w <= prod; yhi0_w <= prod2; end
                    5'd5: begin rm1isy_w_full <= prod; rm1isy_w_last <= prod2; end
                    5'd6: begin ihm1_w <= prod; iy0_w <= prod2; end
                    5'd7: begin nlb_last <= prod; mlb_last <= prod2; end
                    5'd8: begin isy_iw <= prod; iky_iw <= prod2; end
                    5'd9: begin nl_plane_last <= prod; su_active <= 1'b0; end
                    default: ;
                endcase
            end else if (is_pool_fwd) begin
                case (su_step)
                    5'd0: begin e_plane <= prod; e_ppool <= prod2; end
                    5'd1: begin e_s_iw <= prod; e_ks_iw <= prod2; end
                    5'd2: begin
                        e_poh_siw <= prod;
                        // the chunk: all pooled rows if they fit, else the largest 2^k that does
                        if (pool_fits(j.pool_oh, prod + e_ks_iw, prod2)) begin
                            rp <= j.pool_oh; rp_all <= 1'b1; rp_log <= '0;
                        end else begin
                            rp <= 32'sd1; rp_all <= 1'b0; rp_log <= '0;
                            for (int k = 1; k < 16; k++) begin
                                if (($signed(32'(1)) <<< k) < j.pool_oh &&
                                    pool_fits($signed(32'(1)) <<< k, (e_s_iw <<< k) + e_ks_iw, e_rstr_out <<< k)) begin
                                    rp <= $signed(32'(1)) <<< k; rp_log <= 5'(k);
                                end
                            end
                        end
                    end
                    5'd3: begin e_rp_siw <= prod; e_rplast_siw <= prod2; su_active <= 1'b0; end
                    default: ;
                endcase
            end else if (is_pool_bwd) begin
                case (su_step)
                    5'd0: begin e_plane <= prod; e_ppool <= prod2; end
                    5'd1: begin e_poh_s <= prod; e_rc1_pow <= prod2; end
                    5'd2: begin e_srstr <= prod; e_pohm1_pow <= prod2; end
                    5'd3: begin
                        e_exrstr <= prod;
                        if ((prod2 + prod <= $signed(32'(OUT_DEPTH))) && (e_ppool + 32'sd3 <= CAP_WORDS)) begin
                            rp <= j.pool_oh; rp_all <= 1'b1; rp_log <= '0;
                        end else begin
                            rp <= 32'sd1; rp_all <= 1'b0; rp_log <= '0;
                            for (int k = 1; k < 16; k++) begin
                                if (($signed(32'(1)) <<< k) < j.pool_oh &&
                                    ((e_srstr <<< k) + prod <= $signed(32'(OUT_DEPTH))) &&
                                    ((j.pool_ow <<< k) + e_rc1_pow + 32'sd3 <= CAP_WORDS)) begin
                                    rp <= $signed(32'(1)) <<< k; rp_log <= 5'(k);
                                end
                            end
                        end
                    end
                    5'd4: begin e_rp_pow <= prod; e_rp_s <= prod2; su_active <= 1'b0; end
                    default: ;
                endcase
            end else begin
                su_active <= 1'b0;  // ReLU, seed: nothing to multiply
            end
        end
    end

    // pooled-row chunks per channel group
    assign rp_chunks = rp_all ? 32'sd1 : ((j.pool_oh + rp - 32'sd1) >>> rp_log);
    assign rp_last = j.pool_oh - ((rp_chunks - 32'sd1) <<< rp_log);

    // ---------------------------------------------------------------- request side
    typedef enum logic [3:0] {RQ_IDLE, RQ_SETUP, RQ_TILE, RQ_CHUNK, RQ_ACC,
                              RQ_CNEXT, RQ_DONE} rq_t;
    rq_t rq;

    // tile meta FIFO (request side -> beat sink)
    localparam int TQ_DEPTH = 4;
    typedef struct packed {
        logic       set;
        logic       has_data;
        logic       first_nt, last_nt, first_rt, last_tile;
        xaihls_pkg::s32_t       rows, r0, y0, a0, m0, mlanes, nlanes, wwords, inwords, mwords;
        logic       merge;
    } tmeta_t;
    tmeta_t tq_in, tq_head;
    logic tq_push, tq_pop, tq_empty, tq_full;
    logic [$clog2(TQ_DEPTH):0] tq_count;
    xaihls_fifo #(.WIDTH($bits(tq_in)), .DEPTH(TQ_DEPTH)) u_tq (
        .clk, .rst, .push(tq_push), .wdata(tq_in), .pop(tq_pop), .rdata(tq_head),
        .empty(tq_empty), .full(tq_full), .count(tq_count)
    );

    // chunk meta FIFO (element-wise)
    typedef struct packed {
        logic   set;
        logic   has_data;
        xaihls_pkg::chunk_t c;
    } cmeta_t;
    cmeta_t cq_in, cq_head;
    logic cq_push, cq_pop, cq_empty, cq_full;
    logic [$clog2(TQ_DEPTH):0] cq_count;
    xaihls_fifo #(.WIDTH($bits(cq_in)), .DEPTH(TQ_DEPTH)) u_cq (
        .clk, .rst, .push(cq_push), .wdata(cq_in), .pop(cq_pop), .rdata(cq_head),
        .empty(cq_empty), .full(cq_full), .count(cq_count)
    );

    // CONV iteration state
    xaihls_pkg::s32_t q_mt, q_rt, q_nt, q_m0, q_wm_base, q_r0, q_r0isy, q_r0isy_w, q_n0, q_in_base, q_wn_off;
    logic q_set;
    // per tile
    // command loop
    xaihls_pkg::s32_t q_lane, q_addr;

    // tile values from the counters (combinational, registered in RQ_TILE)
    xaihls_pkg::s32_t c_rows, c_ylo_u, c_yhi_u, c_ylo_uw, c_yhi_uw, c_ylo_w, c_yhi_w, c_inwords, c_mlanes, c_nlanes;
    logic c_last_rt, c_last_mt, c_last_nt;
    assign c_last_rt = (q_rt == j.row_tiles - 32'sd1);
    assign c_last_mt = (q_mt == j.m_tiles - 32'sd1);
    assign c_last_nt = (q_nt == j.n_tiles - 32'sd1);
    assign c_rows    = c_last_rt ? rows_last : j.tile_rows;
    assign c_ylo_u   = q_r0isy + j.iy0 + tapmin;
    assign c_ylo_uw  = q_r0isy_w + ylo0_w;
    assign c_yhi_u   = q_r0isy + j.iy0 + tapmax + (c_last_rt ? rm1isy_last : rm1isy_full);
    assign c_yhi_uw  = q_r0isy_w + yhi0_w + (c_last_rt ? rm1isy_w_last : rm1isy_w_full);
    assign c_ylo_w   = (c_ylo_u < 0) ? 32'sd0 : c_ylo_uw;
    assign c_yhi_w   = (c_yhi_u > j.ih - 32'sd1) ? ihm1_w : c_yhi_uw;
    assign c_inwords = (xaihls_pkg::smin(c_yhi_u, j.ih - 32'sd1) < xaihls_pkg::smax(c_ylo_u, 32'sd0)) ? 32'sd0 : (c_yhi_w - c_ylo_w + j.iw);
    assign c_mlanes  = c_last_mt ? m_last : $signed(32'(TM));
    assign c_nlanes  = c_last_nt ? n_last : $signed(32'(TN));

    // the command generator: the tile's commands are the bias (first input-channel tile), one run
    // per input lane, one weight run per output (forward layout) or input (transposed) lane
    logic [1:0] q_kind;
    logic q_start;
    logic g_has_bias, g_has_in, g_has_w, g_tile_end, g_merge;
    logic [1:0] g_first, g_kind, g_nkind;
    xaihls_pkg::s32_t g_lane, g_nlane, g_addr, g_naddr, g_words, g_count;
    xaihls_pkg::s32_t g_wwords;
    function automatic logic signed [31:0] kind_base(input logic [1:0] kd, input logic signed [31:0] in_b, input logic signed [31:0] w_b, input logic signed [31:0] b_b);
        kind_base = (kd == 2'd0) ? b_b : (kd == 2'd1) ? in_b : w_b;
    endfunction
    always_comb begin
        g_has_bias = j.flags[FL_BIAS] && (q_nt == 0);
        g_has_in = !zero_taps && (c_inwords > 0);
        g_has_w = !zero_taps;
        // every lane loads its whole plane: the lanes' runs are one contiguous run
        g_merge = (c_ylo_w == 0) && (c_inwords == plane_in) && (c_nlanes > 1);
        g_first = g_has_bias ? 2'd0 : g_has_in ? 2'd1 : g_has_w ? 2'd2 : 2'd3;
        g_wwords = by_m ? (c_last_nt ? nlb_last : (block <<< LOG_TN)) : (c_last_mt ? mlb_last : (block <<< LOG_TM));
        g_kind = q_start ? g_first : q_kind;
        g_lane = q_start ? 32'sd0 : q_lane;
        g_addr = q_start ? kind_base(g_first, q_in_base + c_ylo_w, q_wm_base + q_wn_off, (j.b_addr >>> 1) + q_m0)
                         : q_addr;
        case (g_kind)
            2'd0: begin g_words = c_mlanes; g_count = 32'sd1; end
            2'd1: begin
                g_words = g_merge ? (c_last_nt ? nl_plane_last : (plane_in <<< LOG_TN)) : c_inwords;
                g_count = g_merge ? 32'sd1 : c_nlanes;
            end
            default: begin g_words = g_wwords; g_count = by_m ? c_mlanes : c_nlanes; end
        endcase
        // advance the cursor
        g_nkind = g_kind;
        g_nlane = g_lane + 1;
        g_naddr = g_addr + ((g_kind == 2'd1) ? plane_in : by_m ? j.ws_m : j.ws_n);
        g_tile_end = 1'b0;
        if (g_kind == 2'd3) begin
            g_tile_end = 1'b1;
        end else if (g_lane + 1 >= g_count) begin
            g_nlane = '0;
            if (g_kind == 2'd0 && g_has_in) g_nkind = 2'd1;
            else if (g_kind != 2'd2 && g_has_w) g_nkind = 2'd2;
            else g_tile_end = 1'b1;
            g_naddr = kind_base(g_nkind, q_in_base + c_ylo_w, q_wm_base + q_wn_off, (j.b_addr >>> 1) + q_m0);
        end
    end

    // element-wise iteration state
    xaihls_pkg::s32_t e_c0, e_lanes, e_chunk, e_py0, e_py0_pow, e_y0, e_e0, e_group_base, e_rows, e_words,
          e_lane_addr, e_lane_step, e_pyl;
    logic e_set, e_last_group, e_last_chunk;
    assign e_last_group = (e_c0 + $signed(32'(TM)) >= (is_pool_fwd || is_pool_bwd ? j.n : 32'sd1));

    xaihls_pkg::s32_t relu_cap;
    assign relu_cap = $signed(32'(4 * (OUT_DEPTH - 1)));

    logic cmd_fire;
    assign cmd_fire = cmd_valid && cmd_ready;
    logic cq_pending;
    xaihls_pkg::s32_t e_lane;
    logic sink_idle;
    assign sink_idle = tq_empty && cq_empty && !cmd_valid;

    // user field: kind[15:14], last-of-tile[13], set[12], lane[11:0]
    function automatic logic [15:0] mk_user(input logic [1:0] kind, input logic last, input logic set,
                                            input logic [11:0] lane);
        mk_user = {kind, last, set, lane};
    endfunction

    always_ff @(posedge clk) begin
        if (rst) begin
            rq <= RQ_IDLE;
            cmd_valid <= 1'b0;
            q_set <= 1'b0;
            e_set <= 1'b0;
        end else begin
            if (cmd_fire) cmd_valid <= 1'b0;
            case (rq)
                RQ_IDLE: if (job_start) rq <= RQ_SETUP;
                RQ_SETUP: if (!su_active && !job_start) begin
                    q_set <= 1'b0;
                    e_set <= 1'b0;
                    if (is_conv) begin
                        q_mt <= '0; q_rt <= '0; q_nt <= '0; q_m0 <= '0;
                        q_wm_base <= (j.w_addr >>> 1);
                        q_r0 <= '0; q_r0isy <= '0; q_r0isy_w <= '0;
                        q_n0 <= '0; q_in_base <= (j.in_addr >>> 1); q_wn_off <= '0;
                        q_start <= 1'b1;
                        rq <= RQ_TILE;
                    end else begin
                        e_c0 <= '0; e_chunk <= '0;
                        e_py0 <= '0; e_py0_pow <= '0; e_y0 <= '0; e_e0 <= '0;
                        e_group_base <= (j.in_addr >>> 1);
                        rq <= RQ_CHUNK;
                    end
                end

                // ---------------- CONV: one command a cycle, tile after tile
                RQ_TILE: if (!cmd_valid || cmd_ready) begin
                    if (!q_start || !tq_full) begin
                        q_start <= 1'b0;
                        if (g_kind != 2'd3) begin
                            cmd_valid <= 1'b1;
                            cmd_off <= 32'(g_addr) << 1;
                            cmd_words <= 24'(g_words);
                            cmd_user <= mk_user(g_kind, g_tile_end, q_set, g_lane[11:0]);
                        end
                        if (!g_tile_end) begin
                            q_kind <= g_nkind;
                            q_lane <= g_nlane;
                            q_addr <= g_naddr;
                        end else begin
                            // next tile: (m-tile, row tile, input-channel tile) order
                            q_start <= 1'b1;
                            q_set <= !q_set;
                            if (!c_last_nt) begin
                                q_nt <= q_nt + 1; q_n0 <= q_n0 + $signed(32'(TN));
                                q_in_base <= q_in_base + (plane_in <<< LOG_TN);
                                q_wn_off <= q_wn_off + (j.ws_n <<< LOG_TN);
                            end else begin
                                q_nt <= '0; q_n0 <= '0; q_in_base <= (j.in_addr >>> 1); q_wn_off <= '0;
                                if (!c_last_rt) begin
                                    q_rt <= q_rt + 1; q_r0 <= q_r0 + j.tile_step;
                                    q_r0isy <= q_r0isy + ts_isy; q_r0isy_w <= q_r0isy_w + ts_isy_w;
                                end else begin
                                    q_rt <= '0; q_r0 <= '0; q_r0isy <= '0; q_r0isy_w <= '0;
                                    if (!c_last_mt) begin
                                        q_mt <= q_mt + 1; q_m0 <= q_m0 + $signed(32'(TM));
                                        q_wm_base <= q_wm_base + (j.ws_m <<< LOG_TM);
                                    end else begin
                                        rq <= RQ_DONE;
                                    end
                                end
                            end
                        end
                    end
                end

                // ---------------- element-wise chunks
                RQ_CHUNK: if (!cq_full) begin
                    e_lanes <= (is_pool_fwd || is_pool_bwd) ? xaihls_pkg::smin($signed(32'(TM)), j.n - e_c0) : 32'sd1;
                    e_lane <= '0;
                    if (is_pool_fwd) begin
                        e_last_chunk <= (e_chunk == rp_chunks - 1);
                        e_rows <= (e_chunk == rp_chunks - 1) ? rp_last : rp;
                        e_words <= ((e_chunk == rp_chunks - 1) ? e_rplast_siw : e_rp_siw) + e_ks_iw;
                        e_lane_addr <= e_group_base + e_y0;  // POOL_FWD: e_y0 is py0 * s * iw (words)
                        e_lane_step <= e_plane;
                        e_pyl <= '0;
                    end else if (is_pool_bwd) begin
                        e_last_chunk <= (e_chunk == rp_chunks - 1);
                        e_rows <= (e_chunk == rp_chunks - 1) ? (j.ih - e_y0) : e_rp_s;
                        e_pyl <= xaihls_pkg::smax(e_py0 - (e_rc - 32'sd1), 32'sd0);
                        e_words <= ((e_chunk == rp_chunks - 1) ? e_pohm1_pow
                                    : xaihls_pkg::smin(e_pohm1_pow, e_py0_pow + e_rp_pow - j.pool_ow))
                                   - ((e_py0 < e_rc - 32'sd1) ? 32'sd0 : (e_py0_pow - e_rc1_pow)) + j.pool_ow;
                        e_lane_addr <= e_group_base + ((e_py0 < e_rc - 32'sd1) ? 32'sd0 : (e_py0_pow - e_rc1_pow));
                        e_lane_step <= e_ppool;
                    end else if (is_relu) begin
                        e_last_chunk <= (j.n - e_e0 <= relu_cap);
                        e_rows <= xaihls_pkg::smin(relu_cap, j.n - e_e0);
                        e_words <= xaihls_pkg::smin(relu_cap, j.n - e_e0);
                        e_lane_addr <= (j.in_addr >>> 1) + e_e0;
                        e_lane_step <= '0;
                        e_pyl <= e_e0;
                    end else begin  // seed
                        e_last_chunk <= 1'b1;
                        e_rows <= j.n;
                        e_words <= '0;
                        e_pyl <= '0;
                    end
                    rq <= RQ_ACC;
                    cq_pending <= 1'b1;
                end
                RQ_ACC: begin
                    if (cq_pending) begin
                        // the chunk's meta goes first so the sink can route its beats
                        cq_pending <= 1'b0;
                    end else if (is_seed || (e_lane >= e_lanes && !cmd_valid)) begin
                        rq <= RQ_CNEXT;
                    end else if (!cmd_valid || cmd_fire) begin
                        if (e_lane < e_lanes) begin
                            cmd_valid <= 1'b1;
                            cmd_off <= 32'(e_lane_addr) << 1;
                            cmd_words <= 24'(e_words);
                            cmd_user <= mk_user(2'(KIND_ACC), e_lane == e_lanes - 1, e_set, e_lane[11:0]);
                            e_lane <= e_lane + 1;
                            e_lane_addr <= e_lane_addr + e_lane_step;
                        end
                    end
                end
                RQ_CNEXT: begin
                    e_set <= !e_set;
                    if (is_pool_fwd || is_pool_bwd) begin
                        if (!e_last_chunk) begin
                            e_chunk <= e_chunk + 1;
                            e_py0 <= e_py0 + rp;
                            e_py0_pow <= e_py0_pow + e_rp_pow;
                            e_y0 <= e_y0 + (is_pool_fwd ? e_rp_siw : e_rp_s);
                            rq <= RQ_CHUNK;
                        end else if (!e_last_group) begin
                            e_chunk <= '0; e_py0 <= '0; e_py0_pow <= '0; e_y0 <= '0;
                            e_c0 <= e_c0 + $signed(32'(TM));
                            e_group_base <= e_group_base + (e_lane_step <<< LOG_TM);
                            rq <= RQ_CHUNK;
                        end else begin
                            rq <= RQ_DONE;
                        end
                    end else if (is_relu && !e_last_chunk) begin
                        e_e0 <= e_e0 + relu_cap;
                        rq <= RQ_CHUNK;
                    end else begin
                        rq <= RQ_DONE;
                    end
                end
                RQ_DONE: if (sink_idle) rq <= RQ_IDLE;
                default: rq <= RQ_IDLE;
            endcase
        end
    end

    // tile / chunk meta pushes
    assign tq_push = (rq == RQ_TILE) && q_start && !tq_full && (!cmd_valid || cmd_ready);
    always_comb begin
        tq_in = '0;
        tq_in.set = q_set;
        tq_in.has_data = (g_first != 2'd3);
        tq_in.first_nt = (q_nt == 0);
        tq_in.last_nt = c_last_nt;
        tq_in.first_rt = (q_rt == 0);
        tq_in.last_tile = c_last_nt && c_last_rt && c_last_mt;
        tq_in.rows = c_rows;
        tq_in.r0 = q_r0;
        tq_in.y0 = q_r0isy + j.iy0;
        tq_in.a0 = q_r0isy_w + iy0_w - c_ylo_w;
        tq_in.m0 = q_m0;
        tq_in.mlanes = c_mlanes;
        tq_in.nlanes = c_nlanes;
        tq_in.wwords = g_wwords;
        tq_in.inwords = c_inwords;
        tq_in.merge = g_merge;
        tq_in.mwords = c_last_nt ? nl_plane_last : (plane_in <<< LOG_TN);
    end

    assign cq_push = (rq == RQ_ACC) && cq_pending;
    always_comb begin
        cq_in = '0;
        cq_in.set = e_set;
        cq_in.has_data = !is_seed;
        cq_in.c.m0 = e_c0;
        cq_in.c.lanes = e_lanes;
        cq_in.c.first = (e_chunk == 0);
        cq_in.c.last = e_last_chunk && (e_last_group || is_relu || is_seed);
        cq_in.c.r0 = is_relu ? e_e0 : e_py0;
        cq_in.c.rows = e_rows;
        cq_in.c.pyl = e_pyl;
    end

    // ---------------------------------------------------------------- beat sink
    logic [1:0] b_kind;
    logic b_tile_last, b_set;
    logic [11:0] b_lane;
    assign {b_kind, b_tile_last, b_set, b_lane} = b_user;

    logic [1:0] set_free;   // CONV: the MAC array is not reading the set
    logic sink_ok;
    assign sink_ok = is_conv ? (!tq_empty && set_free[tq_head.set] && tq_head.has_data)
                             : (!cq_empty && acc_free[cq_head.set] && cq_head.has_data);
    assign b_ready = sink_ok;

    logic beat;
    assign beat = b_valid && b_ready;

    // tiles without data (zero taps and no bias; the seed) complete when their set is free
    logic empty_done;
    assign empty_done = is_conv ? (!tq_empty && set_free[tq_head.set] && !tq_head.has_data)
                                : (!cq_empty && acc_free[cq_head.set] && !cq_head.has_data);
    logic unit_done;  // the head tile/chunk is complete this cycle
    assign unit_done = empty_done || (beat && b_last && b_tile_last);
    assign tq_pop = is_conv && unit_done;
    assign cq_pop = !is_conv && unit_done;

    // input banks: each word goes to its lane's bank at the same slot; a lane's words of one beat
    // share a row (bank row = beat - first beat of the lane's run)
    xaihls_pkg::s32_t ir_lane, ir_off, ir_q, ir_rem;
    logic [4:0][31:0] is_lane;   // slot i's lane, word offset, run position; [4]: after the beat
    logic [4:0][31:0] is_off;
    logic [4:0][31:0] is_q;
    xaihls_pkg::s32_t is_rem4;
    logic [3:0] is_v;
    always_comb begin
        logic signed [31:0] lane, off, q, rem;
        logic v;
        lane = b_first ? (tq_head.merge ? 32'sd0 : $signed(32'(b_lane))) : ir_lane;
        off  = b_first ? 32'sd0 : ir_off;
        q    = b_first ? $signed(32'(b_lead)) : ir_q;
        rem  = b_first ? (tq_head.merge ? tq_head.mwords : tq_head.inwords) : ir_rem;
        for (int i = 0; i < 4; i++) begin
            v = (!b_first || (2'(i) >= b_lead)) && (rem > 0);
            is_v[i] = v;
            is_lane[i] = lane;
            is_off[i] = off;
            is_q[i] = q;
            if (v) begin
                rem = rem - 1;
                if (off == tq_head.inwords - 1) begin
                    off = '0;
                    lane = lane + 1;
                    q = q + tq_head.inwords;
                end else begin
                    off = off + 1;
                end
            end
        end
        is_lane[4] = lane;
        is_off[4] = off;
        is_q[4] = q;
        is_rem4 = rem;
    end
    always_ff @(posedge clk) begin
        if (beat && b_kind == 2'(KIND_IN)) begin
            ir_lane <= is_lane[4];
            ir_off <= is_off[4];
            ir_q <= is_q[4];
            ir_rem <= is_rem4;
        end
    end
    assign in_set  = b_set;
    assign in_data = b_data;
    always_comb begin
        for (int n = 0; n < TN; n++) begin
            in_we[n] = '0;
            in_row[n] = '0;
            for (int i = 0; i < 4; i++) begin
                if (beat && b_kind == 2'(KIND_IN) && is_v[i] && is_lane[i] == $signed(32'(n))) begin
                    in_we[n][i] = 1'b1;
                    in_row[n] = IN_AW'($signed(32'(b_beat)) - (is_q[i] >>> 2));
                end
            end
        end
    end

    // accumulator sets (element-wise)
    assign acc_we    = beat && (b_kind == 2'(KIND_ACC));
    assign acc_set   = b_set;
    assign acc_lane  = LOG_TM'(b_lane);
    assign acc_entry = OUT_AW'(b_beat);
    assign acc_data  = b_data;

    // weights: four slots a beat, walking (bank, tap) along the run
    xaihls_pkg::s32_t wr_bank, wr_t, wr_rem;
    logic [4:0][31:0] sl_bank;   // slot i's bank along the run and tap; [4]: after the beat
    logic [4:0][31:0] sl_t;
    xaihls_pkg::s32_t sl_rem4;
    logic [3:0] sl_v;
    always_comb begin
        logic signed [31:0] bank, t, rem;
        logic v;
        bank = b_first ? 32'sd0 : wr_bank;
        t    = b_first ? 32'sd0 : wr_t;
        rem  = b_first ? tq_head.wwords : wr_rem;
        for (int i = 0; i < 4; i++) begin
            v = (!b_first || (2'(i) >= b_lead)) && (rem > 0);
            sl_v[i] = v;
            sl_bank[i] = bank;
            sl_t[i] = t;
            if (v) begin
                rem = rem - 1;
                if (t == block - 1) begin
                    t = '0;
                    bank = bank + 1;
                end else begin
                    t = t + 1;
                end
            end
        end
        sl_bank[4] = bank;
        sl_t[4] = t;
        sl_rem4 = rem;
    end
    always_ff @(posedge clk) begin
        if (beat && b_kind == 2'(KIND_W)) begin
            wr_bank <= sl_bank[4];
            wr_t <= sl_t[4];
            wr_rem <= sl_rem4;
        end
    end
    assign w_set = b_set;
    always_comb begin
        for (int i = 0; i < 4; i++) begin
            w_v[i] = beat && (b_kind == 2'(KIND_W)) && sl_v[i];
            w_m[i] = by_m ? LOG_TM'(b_lane) : LOG_TM'(sl_bank[i]);
            w_n[i] = by_m ? LOG_TN'(sl_bank[i]) : LOG_TN'(b_lane);
            w_t[i] = W_TW'(sl_t[i]);
            w_d[i] = b_data[16*i +: 16];
        end
    end

    // tile handover, bias words and input leads, per set
    logic [1:0][TM-1:0][15:0] bias_q;
    logic [1:0][TN-1:0][1:0] lead_q;
    logic [1:0][TM-1:0][1:0] acc_lead_q;
    always_ff @(posedge clk) begin
        if (rst) begin
            set_free <= 2'b11;
            tile_full <= 2'b00;
            acc_fill <= 1'b0;
        end else begin
            acc_fill <= 1'b0;
            if (job_start) begin
                set_free <= 2'b11;
                tile_full <= 2'b00;
            end
            for (int s = 0; s < 2; s++) begin
                if (tile_release[s]) begin
                    set_free[s] <= 1'b1;
                    tile_full[s] <= 1'b0;
                end
            end
            if (beat && b_kind == 2'(KIND_BIAS)) begin
                for (int i = 0; i < 4; i++) begin
                    if ((!b_first || 2'(i) >= b_lead) &&
                        (32'(b_beat) * 4 + 32'(i) - 32'(b_lead) < 32'(tq_head.mlanes)))
                        bias_q[b_set][LOG_TM'(32'(b_beat) * 4 + 32'(i) - 32'(b_lead))] <= b_data[16*i +: 16];
                end
            end
            if (beat && b_kind == 2'(KIND_IN)) begin
                for (int i = 0; i < 4; i++)
                    if (is_v[i] && is_off[i] == 0) lead_q[b_set][LOG_TN'(is_lane[i])] <= is_q[i][1:0];
            end
            if (beat && b_first && b_kind == 2'(KIND_ACC)) acc_lead_q[b_set][LOG_TM'(b_lane)] <= b_lead;
            if (tq_pop) begin
                set_free[tq_head.set] <= 1'b0;
                tile_full[tq_head.set] <= 1'b1;
                t_first_nt[tq_head.set] <= tq_head.first_nt;
                t_last_nt[tq_head.set] <= tq_head.last_nt;
                t_first_rt[tq_head.set] <= tq_head.first_rt;
                t_last_tile[tq_head.set] <= tq_head.last_tile;
                t_rows[tq_head.set] <= tq_head.rows;
                t_r0[tq_head.set] <= tq_head.r0;
                t_y0[tq_head.set] <= tq_head.y0;
                t_a0[tq_head.set] <= tq_head.a0;
                t_m0[tq_head.set] <= tq_head.m0;
                t_mlanes[tq_head.set] <= tq_head.mlanes;
                t_nlanes[tq_head.set] <= tq_head.nlanes;
            end
            if (cq_pop) begin
                acc_fill <= 1'b1;
                acc_fill_set <= cq_head.set;
                acc_fill_meta <= cq_head.c;
            end
        end
    end

    // the bias of a set is captured before the tile is handed over (same cycle as its last beat
    // at the latest), so the MAC array reads the registers directly
    always_comb begin
        for (int s = 0; s < 2; s++) begin
            for (int m = 0; m < TM; m++) t_bias[s][m] = bias_q[s][m];
            for (int n = 0; n < TN; n++) t_lead[s][n] = lead_q[s][n];
        end
        for (int m = 0; m < TM; m++) acc_fill_lead[m] = acc_lead_q[acc_fill_set][m];
    end

    assign busy = (rq != RQ_IDLE);

    logic unused;
    assign unused = ^{tq_count, cq_count, q_r0, q_n0, e_py0_pow, e_poh_siw, e_exrstr};
endmodule
