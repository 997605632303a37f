// The MAC array: TM x TN 16x16-bit multipliers, the ping-pong input and weight tile buffers,
// the address generator of the CONV descriptor, and the accumulation into the accumulator set.
//
// For each output position of a tile (rows x OW, raster order) and each tap (ky, kx), one
// cycle: every input lane n reads in[n, y, x] with
//   y = oy*isy + ky*iky + iy0,  x = ox*isx + kx*ikx + ix0   (zero outside IH x IW: padding),
// every MAC (m, n) reads W(m, n, ky, kx) = its weight bank at w0 + ky*ws_ky + kx*ws_kx,
// and lane m adds sum_n W*in to its running tap sum. After the last tap the position's sum is
// added to the accumulator (bias << bias_shift on the first input-channel tile).
// Guarantees: II = 1 over taps and positions; a tile costs rows*OW*KY*KX + 8 cycles; every
// product is exact and every sum is kept in 48 bits; negative steps and stride phases come
// from the descriptor's affine pattern alone.
//
// While element-wise jobs run, the multipliers of column n = 0 serve the write-back unit
// (average pooling: value x reciprocal), through ext_*.

import xaihls_pkg::*;

module xaihls_mac
#(
    parameter int TM       = 4,
    parameter int TN       = 2,
    parameter int IN_ROWS  = 258,
    parameter int W_DEPTH  = 16,
    parameter int OUT_DEPTH = 256,
    parameter int LOG_TM   = (TM > 1) ? $clog2(TM) : 1,
    parameter int LOG_TN   = (TN > 1) ? $clog2(TN) : 1,
    parameter int IN_AW    = $clog2(IN_ROWS),
    parameter int W_TW     = $clog2(W_DEPTH) + 1,
    parameter int OUT_AW   = $clog2(OUT_DEPTH)
) (
    input  logic              clk,
    input  logic              rst,

    input  logic              job_start,
    input  xaihls_pkg::desc_t             d,
    input  xaihls_pkg::s32_t              isy_iw,
    input  xaihls_pkg::s32_t              iky_iw,
    output logic              busy,

    // tile buffer writes (from the loader)
    input  logic [TN-1:0][3:0]        in_we,
    input  logic              in_set,
    input  logic [TN-1:0][IN_AW-1:0]  in_row,
    input  logic [63:0]       in_data,
    input  logic              w_set,
    input  logic [3:0]        w_v,
    input  logic [3:0][LOG_TM-1:0] w_m,
    input  logic [3:0][LOG_TN-1:0] w_n,
    input  logic [3:0][W_TW-1:0]   w_t,
    input  logic [3:0][15:0]       w_d,

    // loaded tiles
    input  logic [1:0]        tile_full,
    input  logic [1:0]              t_first_nt,
    input  logic [1:0]              t_last_nt,
    input  logic [1:0]              t_first_rt,
    input  logic [1:0]              t_last_tile,
    input  logic [1:0][31:0]              t_rows,
    input  logic [1:0][31:0]              t_r0,
    input  logic [1:0][31:0]              t_y0,
    input  logic [1:0][31:0]              t_a0,
    input  logic [1:0][31:0]              t_m0,
    input  logic [1:0][31:0]              t_mlanes,
    input  logic [1:0][31:0]              t_nlanes,
    input  logic [1:0][TN-1:0][1:0]        t_lead,
    input  logic [1:0][TM-1:0][15:0] t_bias,
    output logic [1:0]        tile_release,

    // accumulator sets
    input  logic [1:0]        acc_free,
    output logic              acc_claim,      // pulse: acc_claim_set is now being accumulated
    output logic              acc_claim_set,
    output logic              acc_done,       // pulse: acc_done_set is complete
    output logic              acc_done_set,
    output xaihls_pkg::chunk_t            acc_done_meta,
    output logic              acc_rd_en,
    output logic              acc_rd_set,
    output logic [OUT_AW-1:0] acc_rd_addr,
    input  logic [TM-1:0][63:0]       acc_rd_data,
    output logic              acc_wr_en,
    output logic              acc_wr_set,
    output logic [OUT_AW-1:0] acc_wr_addr,
    output logic [TM-1:0][63:0]       acc_wr_data,

    // the write-back unit's multiplications (column n = 0): ext_p = ext_a[m] * ext_b, two cycles later
    input  logic              ext_en,
    input  logic [TM-1:0][15:0] ext_a,
    input  logic signed [15:0] ext_b,
    output logic [TM-1:0][31:0] ext_p
);
    localparam int WR = (W_DEPTH + 3) / 4;            // rows per weight plane and set
    localparam int WAW = (WR > 1) ? $clog2(WR) : 1;

    xaihls_pkg::desc_t j;
    assign j = d;  // the controller holds the descriptor until the engine is idle

    xaihls_pkg::s32_t kye, kxe;
    logic zero_taps;
    assign kye = xaihls_pkg::smax(j.ky, 32'sd1);
    assign kxe = xaihls_pkg::smax(j.kx, 32'sd1);
    assign zero_taps = (j.ky == 0) || (j.kx == 0);

    // ---------------------------------------------------------------- tile control
    typedef enum logic [1:0] {M_IDLE, M_RUN, M_DRAIN} mst_t;
    mst_t st;
    logic cur_set, next_set, acc_cur, acc_next;
    logic c_first_nt, c_last_nt, c_first_rt, c_last_tile;
    xaihls_pkg::s32_t c_rows, c_r0, c_m0, c_mlanes, c_nlanes;
    logic [TN-1:0][1:0] c_lead;
    logic [TM-1:0][15:0] c_bias;

    // issue counters and affine addresses
    xaihls_pkg::s32_t i_r, i_ox, i_ky, i_kx, i_pos;
    xaihls_pkg::s32_t i_yrow, i_arow, i_xo, i_ycur, i_acur, i_xcur, i_trow, i_tcur;
    logic i_last;
    assign i_last = (i_kx == kxe - 1) && (i_ky == kye - 1) && (i_ox == j.ow - 1) && (i_r == c_rows - 1);

    logic can_start;
    assign can_start = tile_full[next_set] && (!t_first_nt[next_set] || acc_free[acc_next]);

    // pipeline valid bits: s1 .. s6
    logic s1_v, s2_v, s3_v, s4_v, s5_v, s6_v;
    logic pipe_empty;
    assign pipe_empty = !(s1_v || s2_v || s3_v || s4_v || s5_v || s6_v);

    always_ff @(posedge clk) begin
        if (rst) begin
            st <= M_IDLE;
            next_set <= 1'b0;
            acc_next <= 1'b0;
            tile_release <= 2'b00;
            acc_claim <= 1'b0;
            acc_done <= 1'b0;
        end else begin
            tile_release <= 2'b00;
            acc_claim <= 1'b0;
            acc_done <= 1'b0;
            if (job_start) begin
                next_set <= 1'b0;
                acc_next <= 1'b0;
                st <= M_IDLE;
            end else case (st)
                M_IDLE: if (can_start && j.op[3:0] == OP_CONV) begin
                    cur_set <= next_set;
                    next_set <= !next_set;
                    c_first_nt <= t_first_nt[next_set];
                    c_last_nt <= t_last_nt[next_set];
                    c_first_rt <= t_first_rt[next_set];
                    c_last_tile <= t_last_tile[next_set];
                    c_rows <= t_rows[next_set];
                    c_r0 <= t_r0[next_set];
                    c_m0 <= t_m0[next_set];
                    c_mlanes <= t_mlanes[next_set];
                    c_nlanes <= t_nlanes[next_set];
                    for (int n = 0; n < TN; n++) c_lead[n] <= t_lead[next_set][n];
                    for (int m = 0; m < TM; m++) c_bias[m] <= t_bias[next_set][m];
                    if (t_first_nt[next_set]) begin
                        acc_claim <= 1'b1;
                        acc_claim_set <= acc_next;
                        acc_cur <= acc_next;
                        acc_next <= !acc_next;
                    end
                    i_r <= '0; i_ox <= '0; i_ky <= '0; i_kx <= '0; i_pos <= '0;
                    i_yrow <= t_y0[next_set]; i_ycur <= t_y0[next_set];
                    i_arow <= t_a0[next_set]; i_acur <= t_a0[next_set];
                    i_xo <= j.ix0; i_xcur <= j.ix0;
                    i_trow <= j.w0; i_tcur <= j.w0;
                    st <= M_RUN;
                end
                M_RUN: begin
                    // advance (kx fastest, then ky, ox, row)
                    if (i_kx != kxe - 1) begin
                        i_kx <= i_kx + 1;
                        i_xcur <= i_xcur + j.ikx;
                        i_tcur <= i_tcur + j.ws_kx;
                    end else begin
                        i_kx <= '0;
                        if (i_ky != kye - 1) begin
                            i_ky <= i_ky + 1;
                            i_xcur <= i_xo;
                            i_ycur <= i_ycur + j.iky;
                            i_acur <= i_acur + iky_iw;
                            i_trow <= i_trow + j.ws_ky;
                            i_tcur <= i_trow + j.ws_ky;
                        end else begin
                            i_ky <= '0;
                            i_trow <= j.w0;
                            i_tcur <= j.w0;
                            i_pos <= i_pos + 1;
                            if (i_ox != j.ow - 1) begin
                                i_ox <= i_ox + 1;
                                i_xo <= i_xo + j.isx;
                                i_xcur <= i_xo + j.isx;
                                i_ycur <= i_yrow;
                                i_acur <= i_arow;
                            end else begin
                                i_ox <= '0;
                                i_xo <= j.ix0;
                                i_xcur <= j.ix0;
                                i_r <= i_r + 1;
                                i_yrow <= i_yrow + j.isy;
                                i_ycur <= i_yrow + j.isy;
                                i_arow <= i_arow + isy_iw;
                                i_acur <= i_arow + isy_iw;
                            end
                        end
                    end
                    if (i_last) begin
                        st <= M_DRAIN;
                        tile_release[cur_set] <= 1'b1;  // the last read of the set happens now
                    end
                end
                M_DRAIN: if (pipe_empty) begin
                    st <= M_IDLE;
                    if (c_last_nt) begin
                        acc_done <= 1'b1;
                        acc_done_set <= acc_cur;
                        acc_done_meta.m0 <= c_m0;
                        acc_done_meta.lanes <= c_mlanes;
                        acc_done_meta.first <= c_first_rt;
                        acc_done_meta.last <= c_last_tile;
                        acc_done_meta.r0 <= c_r0;
                        acc_done_meta.rows <= c_rows;
                        acc_done_meta.pyl <= '0;
                    end
                end
                default: st <= M_IDLE;
            endcase
        end
    end

    assign busy = (st != M_IDLE) || !pipe_empty;

    // ---------------------------------------------------------------- buffers
    logic issue;
    assign issue = (st == M_RUN);

    xaihls_pkg::s32_t i_addr;
    logic i_inb;
    assign i_addr = i_acur + i_xcur;
    assign i_inb = !zero_taps && (i_ycur >= 0) && (i_ycur < j.ih) && (i_xcur >= 0) && (i_xcur < j.iw);

    logic [1:0][TN-1:0][63:0] in_rdata;
    logic [TN-1:0][1:0] i_slot;
    for (genvar s = 0; s < 2; s++) begin : g_in_set
        for (genvar n = 0; n < TN; n++) begin : g_in_lane
            xaihls_pkg::s32_t la;
            assign la = i_addr + $signed(32'(c_lead[n]));
            if (s == 0) begin : g_slot
                assign i_slot[n] = la[1:0];
            end
            xaihls_sdp_ram #(.WIDTH(64), .DEPTH(IN_ROWS), .SEGMENTS(4)) u_in (
                .clk,
                .we((in_set == 1'(s)) ? in_we[n] : 4'b0000),
                .waddr(in_row[n]), .wdata(in_data),
                .re(issue && cur_set == 1'(s)), .raddr(IN_AW'(la >>> 2)),
                .rdata(in_rdata[s][n])
            );
        end
    end

    logic [1:0][TM-1:0][TN-1:0][3:0][15:0] w_rdata;
    for (genvar s = 0; s < 2; s++) begin : g_w_set
        for (genvar m = 0; m < TM; m++) begin : g_w_m
            for (genvar n = 0; n < TN; n++) begin : g_w_n
                for (genvar pl = 0; pl < 4; pl++) begin : g_w_plane
                    logic we;
                    logic [WAW-1:0] wa;
                    logic [15:0] wd;
                    always_comb begin
                        we = 1'b0;
                        wa = '0;
                        wd = '0;
                        for (int k = 0; k < 4; k++) begin
                            if (w_v[k] && w_set == 1'(s) && w_m[k] == LOG_TM'(m) && w_n[k] == LOG_TN'(n) &&
                                w_t[k][1:0] == 2'(pl)) begin
                                we = 1'b1;
                                wa = WAW'(w_t[k] >> 2);
                                wd = w_d[k];
                            end
                        end
                    end
                    xaihls_sdp_ram #(.WIDTH(16), .DEPTH(WR)) u_w (
                        .clk, .we, .waddr(wa), .wdata(wd),
                        .re(issue && cur_set == 1'(s)), .raddr(WAW'(i_tcur >>> 2)),
                        .rdata(w_rdata[s][m][n][pl])
                    );
                end
            end
        end
    end

    // ---------------------------------------------------------------- pipeline
    // s1: buffer data; s2: operands; s3: products; s4: lane sums; s5: tap sums; s6: accumulator write
    logic s1_inb, s1_first_tap, s1_last_tap, s1_set;
    logic [TN-1:0][1:0] s1_slot;
    logic [1:0] s1_plane;
    xaihls_pkg::s32_t s1_pos;
    always_ff @(posedge clk) begin
        if (rst) s1_v <= 1'b0;
        else s1_v <= issue;
        s1_inb <= i_inb;
        s1_first_tap <= (i_kx == 0) && (i_ky == 0);
        s1_last_tap <= (i_kx == kxe - 1) && (i_ky == kye - 1);
        s1_set <= cur_set;
        s1_slot <= i_slot;
        s1_plane <= i_tcur[1:0];
        s1_pos <= i_pos;
    end

    logic [TN-1:0][15:0] op_a;
    logic [TM-1:0][TN-1:0][15:0] op_b;
    logic s2_first_tap, s2_last_tap;
    xaihls_pkg::s32_t s2_pos;
    always_ff @(posedge clk) begin
        if (rst) s2_v <= 1'b0;
        else s2_v <= s1_v;
        s2_first_tap <= s1_first_tap;
        s2_last_tap <= s1_last_tap;
        s2_pos <= s1_pos;
        for (int n = 0; n < TN; n++) begin
            if (ext_en) op_a[n] <= ext_b;
            else if (s1_inb && $signed(32'(n)) < c_nlanes) op_a[n] <= in_rdata[s1_set][n][16*s1_slot[n] +: 16];
            else op_a[n] <= 16'sd0;
        end
        for (int m = 0; m < TM; m++) begin
            for (int n = 0; n < TN; n++) begin
                if (ext_en && n == 0) op_b[m][n] <= ext_a[m];
                else op_b[m][n] <= w_rdata[s1_set][m][n][s1_plane];
            end
        end
    end

    logic [TM-1:0][TN-1:0][31:0] prod;
    logic s3_first_tap, s3_last_tap;
    xaihls_pkg::s32_t s3_pos;
    always_ff @(posedge clk) begin
        if (rst) s3_v <= 1'b0;
        else s3_v <= s2_v;
        s3_first_tap <= s2_first_tap;
        s3_last_tap <= s2_last_tap;
        s3_pos <= s2_pos;
        for (int m = 0; m < TM; m++) begin
            for (int n = 0; n < TN; n++) prod[m][n] <= $signed(op_a[n]) * $signed(op_b[m][n]);
        end
    end
    for (genvar m = 0; m < TM; m++) begin : g_ext
        assign ext_p[m] = prod[m][0];
    end

    logic [TM-1:0][47:0] lsum;
    logic s4_first_tap, s4_last_tap;
    xaihls_pkg::s32_t s4_pos;
    always_ff @(posedge clk) begin
        if (rst) s4_v <= 1'b0;
        else s4_v <= s3_v;
        s4_first_tap <= s3_first_tap;
        s4_last_tap <= s3_last_tap;
        s4_pos <= s3_pos;
        for (int m = 0; m < TM; m++) begin
            logic signed [47:0] acc;
            acc = '0;
            for (int n = 0; n < TN; n++) acc = acc + 48'($signed(prod[m][n]));
            lsum[m] <= acc;
        end
    end

    // accumulator read for the position whose last tap is in s4
    assign acc_rd_en = s4_v && s4_last_tap && !c_first_nt;
    assign acc_rd_set = acc_cur;
    assign acc_rd_addr = OUT_AW'(s4_pos);

    logic [TM-1:0][47:0] tsum;
    logic s5_last;
    xaihls_pkg::s32_t s5_pos;
    always_ff @(posedge clk) begin
        if (rst) s5_v <= 1'b0;
        else s5_v <= s4_v;
        s5_last <= s4_v && s4_last_tap;
        s5_pos <= s4_pos;
        if (s4_v) begin
            for (int m = 0; m < TM; m++) tsum[m] <= s4_first_tap ? lsum[m] : tsum[m] + lsum[m];
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            s6_v <= 1'b0;
            acc_wr_en <= 1'b0;
        end else begin
            s6_v <= s5_v;
            acc_wr_en <= s5_v && s5_last;
        end
        acc_wr_set <= acc_cur;
        acc_wr_addr <= OUT_AW'(s5_pos);
        for (int m = 0; m < TM; m++) begin
            logic signed [47:0] base;
            if (c_first_nt) base = j.flags[FL_BIAS] ? (48'($signed(c_bias[m])) <<< j.bias_shift[5:0]) : 48'sd0;
            else base = acc_rd_data[m][47:0];
            acc_wr_data[m] <= 64'($signed(base + tsum[m]));
        end
    end

    logic unused;
    assign unused = ^{c_mlanes, i_r, $signed(32'(OUT_DEPTH))};
endmodule
