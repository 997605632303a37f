// The compute engine: one descriptor (CONV or element-wise job) at a time.
//
//   loader -> input / weight ping-pong buffers -> MAC array -> accumulator sets (ping-pong)
//          -> (element-wise jobs: straight into the accumulator sets)
//   accumulator set -> write-back unit (pack) -> pack memory -> drain -> DDR
//
// The two accumulator sets let a row tile's write-back run under the next row tile's
// computation; an element-wise chunk loads while the previous one is written back.
// ReLU bits and pool indices live in the lane memories (absent in an inference-only build).
// Guarantees: `busy` from the cycle after job_start until every result of the job has been
// handed to the write mover (the caller also waits for the write mover's responses).

import xaihls_pkg::*;

module xaihls_engine
#(
    parameter int TM            = 4,
    parameter int TN            = 2,
    parameter int IN_DEPTH      = 1024,
    parameter int OUT_DEPTH     = 256,
    parameter int W_DEPTH       = 16,
    parameter int MASK_BITS     = 4096,
    parameter int INDEX_ENTRIES = 1024,
    parameter int INDEX_BITS    = 2,
    parameter int BACKWARD      = 1,
    parameter int LOG_TM        = (TM > 1) ? $clog2(TM) : 1,
    parameter int LOG_TN        = (TN > 1) ? $clog2(TN) : 1
) (
    input  logic        clk,
    input  logic        rst,

    input  logic        job_start,
    input  xaihls_pkg::desc_t       desc,
    input  logic [1:0]  mode,
    input  xaihls_pkg::s32_t        target,
    output logic        busy,
    output logic [$clog2(TM+1)-1:0] sat_count,   // values this cycle's write-back saturated

    output logic        rd_cmd_valid,
    input  logic        rd_cmd_ready,
    output logic [31:0] rd_cmd_off,
    output logic [23:0] rd_cmd_words,
    output logic [15:0] rd_cmd_user,
    input  logic        rd_valid,
    output logic        rd_ready,
    input  logic [63:0] rd_data,
    input  logic [15:0] rd_user,
    input  logic [15:0] rd_beat,
    input  logic [1:0]  rd_lead,
    input  logic        rd_first,
    input  logic        rd_last,

    output logic        wr_cmd_valid,
    input  logic        wr_cmd_ready,
    output logic [31:0] wr_cmd_off,
    output logic [23:0] wr_cmd_words,
    output logic        wr_valid,
    input  logic        wr_ready,
    output logic [63:0] wr_data,
    output logic [7:0]  wr_strb
);
    localparam int IN_ROWS = IN_DEPTH / 4 + 2;
    localparam int IN_AW   = $clog2(IN_ROWS);
    localparam int OUT_AW  = $clog2(OUT_DEPTH);
    localparam int W_TW    = $clog2(W_DEPTH) + 1;
    localparam int IDX_W   = (INDEX_BITS > 0) ? INDEX_BITS : 1;

    logic is_conv_q;
    always_ff @(posedge clk) if (job_start) is_conv_q <= (desc.op[3:0] == OP_CONV);

    // ---------------------------------------------------------------- loader
    logic in_set, w_set;
    logic [TN-1:0][3:0] in_we;
    logic [TN-1:0][IN_AW-1:0] in_row;
    logic [63:0] in_data;
    logic [3:0] w_v;
    logic [3:0][LOG_TM-1:0] w_m;
    logic [3:0][LOG_TN-1:0] w_n;
    logic [3:0][W_TW-1:0] w_t;
    logic [3:0][15:0] w_d;
    logic [1:0] tile_full, tile_release;
    logic [1:0] t_first_nt;
    logic [1:0] t_last_nt;
    logic [1:0] t_first_rt;
    logic [1:0] t_last_tile;
    logic [1:0][31:0] t_rows;
    logic [1:0][31:0] t_r0;
    logic [1:0][31:0] t_y0;
    logic [1:0][31:0] t_a0;
    logic [1:0][31:0] t_m0;
    logic [1:0][31:0] t_mlanes;
    logic [1:0][31:0] t_nlanes;
    logic [1:0][TN-1:0][1:0] t_lead;
    logic [1:0][TM-1:0][15:0] t_bias;
    xaihls_pkg::s32_t isy_iw, iky_iw;
    logic [1:0] acc_free, acc_full;
    logic ld_acc_we, ld_acc_set, ld_acc_fill, ld_acc_fill_set;
    logic [LOG_TM-1:0] ld_acc_lane;
    logic [OUT_AW-1:0] ld_acc_entry;
    logic [63:0] ld_acc_data;
    xaihls_pkg::chunk_t ld_acc_fill_meta;
    logic [TM-1:0][1:0] ld_acc_fill_lead;
    logic ld_busy, mac_busy, pack_busy, drain_idle;

    xaihls_loader #(.TM(TM), .TN(TN), .OUT_DEPTH(OUT_DEPTH), .IN_ROWS(IN_ROWS), .W_DEPTH(W_DEPTH)) u_loader (
        .clk, .rst, .job_start, .d(desc), .busy(ld_busy),
        .cmd_valid(rd_cmd_valid), .cmd_ready(rd_cmd_ready), .cmd_off(rd_cmd_off), .cmd_words(rd_cmd_words),
        .cmd_user(rd_cmd_user),
        .b_valid(rd_valid), .b_ready(rd_ready), .b_data(rd_data), .b_user(rd_user), .b_beat(rd_beat),
        .b_lead(rd_lead), .b_first(rd_first), .b_last(rd_last),
        .in_we, .in_set, .in_row, .in_data, .w_set, .w_v, .w_m, .w_n, .w_t, .w_d,
        .tile_full, .t_first_nt, .t_last_nt, .t_first_rt, .t_last_tile, .t_rows, .t_r0, .t_y0, .t_a0, .t_m0,
        .t_mlanes, .t_nlanes, .t_lead, .t_bias, .tile_release, .isy_iw, .iky_iw,
        .acc_free, .acc_we(ld_acc_we), .acc_set(ld_acc_set), .acc_lane(ld_acc_lane), .acc_entry(ld_acc_entry),
        .acc_data(ld_acc_data), .acc_fill(ld_acc_fill), .acc_fill_set(ld_acc_fill_set),
        .acc_fill_meta(ld_acc_fill_meta), .acc_fill_lead(ld_acc_fill_lead)
    );

    // ---------------------------------------------------------------- MAC array
    logic mac_claim, mac_claim_set, mac_done, mac_done_set;
    xaihls_pkg::chunk_t mac_done_meta;
    logic mac_rd_en, mac_rd_set, mac_wr_en, mac_wr_set;
    logic [OUT_AW-1:0] mac_rd_addr, mac_wr_addr;
    logic [TM-1:0][63:0] mac_rd_data;
    logic [TM-1:0][63:0] mac_wr_data;
    logic ext_en;
    logic [TM-1:0][15:0] ext_a;
    logic signed [15:0] ext_b;
    logic [TM-1:0][31:0] ext_p;

    xaihls_mac #(.TM(TM), .TN(TN), .IN_ROWS(IN_ROWS), .W_DEPTH(W_DEPTH), .OUT_DEPTH(OUT_DEPTH)) u_mac (
        .clk, .rst, .job_start, .d(desc), .isy_iw, .iky_iw, .busy(mac_busy),
        .in_we, .in_set, .in_row, .in_data, .w_set, .w_v, .w_m, .w_n, .w_t, .w_d,
        .tile_full, .t_first_nt, .t_last_nt, .t_first_rt, .t_last_tile, .t_rows, .t_r0, .t_y0, .t_a0, .t_m0,
        .t_mlanes, .t_nlanes, .t_lead, .t_bias, .tile_release,
        .acc_free, .acc_claim(mac_claim), .acc_claim_set(mac_claim_set), .acc_done(mac_done),
        .acc_done_set(mac_done_set), .acc_done_meta(mac_done_meta),
        .acc_rd_en(mac_rd_en), .acc_rd_set(mac_rd_set), .acc_rd_addr(mac_rd_addr), .acc_rd_data(mac_rd_data),
        .acc_wr_en(mac_wr_en), .acc_wr_set(mac_wr_set), .acc_wr_addr(mac_wr_addr), .acc_wr_data(mac_wr_data),
        .ext_en, .ext_a, .ext_b, .ext_p
    );

    // ---------------------------------------------------------------- accumulator sets
    // FREE -> (MAC claims | loader fills) -> FULL -> (write-back reads) -> FREE
    localparam logic [1:0] A_FREE = 2'd0, A_BUSY = 2'd1, A_FULL = 2'd2;
    logic [1:0][1:0] acc_state;
    logic [1:0][CHUNK_BITS-1:0] acc_meta;
    logic [1:0][TM-1:0][1:0] acc_lead;
    logic pk_release, pk_release_set;

    always_ff @(posedge clk) begin
        if (rst || job_start) begin
            acc_state[0] <= A_FREE;
            acc_state[1] <= A_FREE;
        end else begin
            if (mac_claim) acc_state[mac_claim_set] <= A_BUSY;
            if (mac_done) begin
                acc_state[mac_done_set] <= A_FULL;
                acc_meta[mac_done_set] <= mac_done_meta;
                for (int m = 0; m < TM; m++) acc_lead[mac_done_set][m] <= 2'd0;
            end
            if (ld_acc_fill) begin
                acc_state[ld_acc_fill_set] <= A_FULL;
                acc_meta[ld_acc_fill_set] <= ld_acc_fill_meta;
                for (int m = 0; m < TM; m++) acc_lead[ld_acc_fill_set][m] <= ld_acc_fill_lead[m];
            end
            if (pk_release) acc_state[pk_release_set] <= A_FREE;
        end
    end
    assign acc_free = {acc_state[1] == A_FREE, acc_state[0] == A_FREE};
    assign acc_full = {acc_state[1] == A_FULL, acc_state[0] == A_FULL};

    logic pk_rd_set;
    logic [TM-1:0][OUT_AW-1:0] pk_rd_addr;
    logic [TM-1:0][63:0] pk_rd_data;
    logic [1:0][TM-1:0][63:0] acc_rdata;
    logic mac_rd_set_q, pk_rd_set_q;
    always_ff @(posedge clk) begin
        mac_rd_set_q <= mac_rd_set;
        pk_rd_set_q <= pk_rd_set;
    end

    for (genvar s = 0; s < 2; s++) begin : g_acc_set
        for (genvar m = 0; m < TM; m++) begin : g_acc_lane
            logic we;
            logic [OUT_AW-1:0] wa, ra;
            logic [63:0] wd;
            logic mac_reads;
            assign mac_reads = is_conv_q && (mac_rd_set == 1'(s)) && mac_rd_en;
            always_comb begin
                if (is_conv_q) begin
                    we = mac_wr_en && (mac_wr_set == 1'(s));
                    wa = mac_wr_addr;
                    wd = mac_wr_data[m];
                end else begin
                    we = ld_acc_we && (ld_acc_set == 1'(s)) && (ld_acc_lane == LOG_TM'(m));
                    wa = ld_acc_entry;
                    wd = ld_acc_data;
                end
                ra = mac_reads ? mac_rd_addr : pk_rd_addr[m];
            end
            xaihls_sdp_ram #(.WIDTH(64), .DEPTH(OUT_DEPTH)) u_acc (
                .clk, .we, .waddr(wa), .wdata(wd), .re(mac_reads || (pk_rd_set == 1'(s))), .raddr(ra),
                .rdata(acc_rdata[s][m])
            );
        end
    end
    always_comb begin
        for (int m = 0; m < TM; m++) begin
            mac_rd_data[m] = acc_rdata[mac_rd_set_q][m];
            pk_rd_data[m] = acc_rdata[pk_rd_set_q][m];
        end
    end

    // ---------------------------------------------------------------- write-back
    xaihls_pkg::s32_t mask_rk, mask_wk, idx_rk, idx_wk;
    logic [TM-1:0] mask_rbit, mask_wen, mask_wbit, idx_wen;
    logic [TM-1:0][IDX_W-1:0] idx_rdata;
    logic [TM-1:0][IDX_W-1:0] idx_wdata;
    logic [TM-1:0][3:0] pm_we;
    logic [TM-1:0][OUT_AW-1:0] pm_addr;
    logic [TM-1:0][63:0] pm_wdata;
    logic row_push, row_free;
    xaihls_pkg::s32_t row_word, row_base, row_lanes, row_lane_stride, row_span, row_osx, row_rstride, row_free_entries;

    xaihls_pack #(.TM(TM), .OUT_DEPTH(OUT_DEPTH), .IDX_BITS(IDX_W)) u_pack (
        .clk, .rst, .job_start, .d(desc), .mode, .target, .busy(pack_busy),
        .acc_full, .acc_meta, .acc_lead, .acc_release(pk_release), .acc_release_set(pk_release_set),
        .rd_set(pk_rd_set), .rd_addr(pk_rd_addr), .rd_data(pk_rd_data),
        .ext_en, .ext_a, .ext_b, .ext_p,
        .mask_rk, .mask_rbit, .mask_wk, .mask_wen, .mask_wbit, .idx_rk, .idx_rdata, .idx_wk, .idx_wen, .idx_wdata,
        .pm_we, .pm_addr, .pm_wdata,
        .row_push, .row_word, .row_base, .row_lanes, .row_lane_stride, .row_span, .row_osx, .row_rstride,
        .row_free, .row_free_entries, .sat_count
    );

    // ReLU bits and pool indices: only a build with the backward pass keeps them
    if (BACKWARD != 0) begin : g_kept
        xaihls_lanemem #(.LANES(TM), .WIDTH(1), .DEPTH(MASK_BITS)) u_mask (
            .clk, .wk(mask_wk), .wen(mask_wen), .wdata(mask_wbit), .rk(mask_rk), .rdata(mask_rbit)
        );
        xaihls_lanemem #(.LANES(TM), .WIDTH(IDX_W), .DEPTH(INDEX_ENTRIES)) u_index (
            .clk, .wk(idx_wk), .wen(idx_wen), .wdata(idx_wdata), .rk(idx_rk), .rdata(idx_rdata)
        );
    end else begin : g_no_kept
        assign mask_rbit = '0;
        assign idx_rdata = '0;
        logic unused_kept;
        assign unused_kept = ^{mask_wk, mask_rk, idx_wk, idx_rk, mask_wen, mask_wbit, idx_wen, idx_wdata};
    end

    // ---------------------------------------------------------------- pack memory and drain
    logic [OUT_AW-1:0] pm_raddr;
    logic [LOG_TM-1:0] pm_rlane, pm_rlane_q;
    logic pm_re;
    logic [TM-1:0][63:0] pm_rdata_l;
    for (genvar m = 0; m < TM; m++) begin : g_pm
        xaihls_sdp_ram #(.WIDTH(64), .DEPTH(OUT_DEPTH), .SEGMENTS(4)) u_pm (
            .clk, .we(pm_we[m]), .waddr(pm_addr[m]), .wdata(pm_wdata[m]),
            .re(pm_re && pm_rlane == LOG_TM'(m)), .raddr(pm_raddr), .rdata(pm_rdata_l[m])
        );
    end
    always_ff @(posedge clk) pm_rlane_q <= pm_rlane;

    xaihls_drain #(.TM(TM), .OUT_DEPTH(OUT_DEPTH)) u_drain (
        .clk, .rst, .idle(drain_idle),
        .row_push, .row_word, .row_base, .row_lanes, .row_lane_stride, .row_span, .row_osx, .row_rstride,
        .row_free, .row_free_entries,
        .pm_raddr, .pm_rlane, .pm_re, .pm_rdata(pm_rdata_l[pm_rlane_q]),
        .cmd_valid(wr_cmd_valid), .cmd_ready(wr_cmd_ready), .cmd_off(wr_cmd_off), .cmd_words(wr_cmd_words),
        .w_valid(wr_valid), .w_ready(wr_ready), .w_data(wr_data), .w_strb(wr_strb)
    );

    assign busy = ld_busy || mac_busy || pack_busy || !drain_idle;

endmodule
