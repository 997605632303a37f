// Drain: writes the pack memory's output rows to DDR, one write command per (row, lane), in
// the order the write-back unit completes the rows. Commands run ahead of the data (a small
// queue of beat jobs), so beats leave one a cycle while the next commands are issued.
// Strided rows (transposed-convolution phases, osx > 1) go out with byte strobes over the
// words between their outputs; nothing is read back or overwritten.
// Guarantees: exactly the beats the write mover expects per command, in command order; a
// row's pack-memory entries are handed back (row_free) only after all its beats were read;
// W backpressure honoured (reads are issued only with room in the output FIFO).

import xaihls_pkg::*;

module xaihls_drain
#(
    parameter int TM        = 4,
    parameter int OUT_DEPTH = 256,
    parameter int ROWQ      = 8,
    parameter int LOG_TM    = (TM > 1) ? $clog2(TM) : 1,
    parameter int OUT_AW    = $clog2(OUT_DEPTH)
) (
    input  logic              clk,
    input  logic              rst,
    output logic              idle,

    // completed rows (from the write-back unit)
    input  logic              row_push,
    input  xaihls_pkg::s32_t              row_word,        // word address of lane 0's first output of the row
    input  xaihls_pkg::s32_t              row_base,        // the row's first pack-memory entry
    input  xaihls_pkg::s32_t              row_lanes,
    input  xaihls_pkg::s32_t              row_lane_stride,
    input  xaihls_pkg::s32_t              row_span,        // words from the row's first to last output
    input  xaihls_pkg::s32_t              row_osx,
    input  xaihls_pkg::s32_t              row_rstride,     // pack-memory entries the row holds
    output logic              row_free,        // pulse: row_free_entries entries are free again
    output xaihls_pkg::s32_t              row_free_entries,

    output logic [OUT_AW-1:0] pm_raddr,
    output logic [LOG_TM-1:0] pm_rlane,
    output logic              pm_re,
    input  logic [63:0]       pm_rdata,        // one cycle after pm_raddr / pm_rlane

    output logic              cmd_valid,
    input  logic              cmd_ready,
    output logic [31:0]       cmd_off,
    output logic [23:0]       cmd_words,
    output logic              w_valid,
    input  logic              w_ready,
    output logic [63:0]       w_data,
    output logic [7:0]        w_strb
);
    // ---------------------------------------------------------------- row queue
    typedef struct packed {
        xaihls_pkg::s32_t word, base, lanes, lane_stride, span, osx, rstride;
    } row_t;
    row_t rq_in, rq_head;
    logic rq_pop, rq_empty, rq_full;
    logic [$clog2(ROWQ):0] rq_count;
    always_comb begin
        rq_in.word = row_word;
        rq_in.base = row_base;
        rq_in.lanes = row_lanes;
        rq_in.lane_stride = row_lane_stride;
        rq_in.span = row_span;
        rq_in.osx = row_osx;
        rq_in.rstride = row_rstride;
    end
    xaihls_fifo #(.WIDTH($bits(rq_in)), .DEPTH(ROWQ)) u_rq (
        .clk, .rst, .push(row_push), .wdata(rq_in), .pop(rq_pop), .rdata(rq_head),
        .empty(rq_empty), .full(rq_full), .count(rq_count)
    );

    // ---------------------------------------------------------------- stage A: commands
    typedef struct packed {
        xaihls_pkg::s32_t base, beats, span, osx, rstride;
        logic [1:0] lead;
        logic [LOG_TM-1:0] lane;
        logic last_lane;
    } bj_t;
    bj_t bj_in, bj_head;
    logic bj_push, bj_pop, bj_empty, bj_full;
    logic [2:0] bj_count;
    xaihls_fifo #(.WIDTH($bits(bj_in)), .DEPTH(4)) u_bj (
        .clk, .rst, .push(bj_push), .wdata(bj_in), .pop(bj_pop), .rdata(bj_head),
        .empty(bj_empty), .full(bj_full), .count(bj_count)
    );

    xaihls_pkg::s32_t a_lane, a_word;
    logic a_fresh;   // the head row's first lane: a_word is the row's word
    xaihls_pkg::s32_t lane_word;
    assign lane_word = a_fresh ? rq_head.word : a_word;

    logic a_go;
    assign a_go = !rq_empty && !bj_full && (!cmd_valid || cmd_ready);
    assign bj_push = a_go;
    always_comb begin
        bj_in.base = rq_head.base;
        bj_in.beats = ($signed(32'(lane_word[1:0])) + rq_head.span + 32'sd3) >>> 2;
        bj_in.span = rq_head.span;
        bj_in.osx = rq_head.osx;
        bj_in.rstride = rq_head.rstride;
        bj_in.lead = lane_word[1:0];
        bj_in.lane = LOG_TM'(a_lane);
        bj_in.last_lane = (a_lane == rq_head.lanes - 1);
    end
    assign rq_pop = a_go && (a_lane == rq_head.lanes - 1);

    always_ff @(posedge clk) begin
        if (rst) begin
            cmd_valid <= 1'b0;
            a_lane <= '0;
            a_fresh <= 1'b1;
        end else begin
            if (cmd_valid && cmd_ready) cmd_valid <= 1'b0;
            if (a_go) begin
                cmd_valid <= 1'b1;
                cmd_off <= 32'(lane_word) << 1;
                cmd_words <= 24'(rq_head.span);
                if (a_lane == rq_head.lanes - 1) begin
                    a_lane <= '0;
                    a_fresh <= 1'b1;
                end else begin
                    a_lane <= a_lane + 1;
                    a_word <= lane_word + rq_head.lane_stride;
                    a_fresh <= 1'b0;
                end
            end
        end
    end

    // ---------------------------------------------------------------- stage B: beats
    localparam int FD = 4;
    logic f_push, f_pop, f_empty, f_full;
    logic [2:0] f_count;
    logic [71:0] f_out;
    logic [7:0] strb_q;
    logic rd_q;
    xaihls_fifo #(.WIDTH(72), .DEPTH(FD)) u_f (
        .clk, .rst, .push(f_push), .wdata({strb_q, pm_rdata}), .pop(f_pop), .rdata(f_out),
        .empty(f_empty), .full(f_full), .count(f_count)
    );

    xaihls_pkg::s32_t b, word0;   // beat of the head job; its slot 0's run word
    logic [3:0] phase;            // that word's phase mod osx (osx <= 15)
    logic b_fresh;
    xaihls_pkg::s32_t cur_word0;
    logic [3:0] cur_phase, osx4;
    // v mod d for 8-bit v < 8d (repeated subtraction: no divider)
    function automatic logic [3:0] mod8(input logic [7:0] v, input logic [3:0] d);
        logic [7:0] t;
        t = v;
        for (int k = 0; k < 8; k++) if (t >= {4'd0, d}) t = t - {4'd0, d};
        mod8 = t[3:0];
    endfunction
    assign osx4 = bj_head.osx[3:0];
    assign cur_word0 = b_fresh ? -$signed(32'(bj_head.lead)) : word0;
    assign cur_phase = b_fresh ? mod8({2'b00, osx4, 2'b00} - {6'd0, bj_head.lead}, osx4) : phase;  // (-lead) mod osx

    logic do_read;
    assign do_read = !bj_empty && ((32'(f_count) + 32'(rd_q)) < FD);
    assign pm_re = do_read;
    assign pm_raddr = OUT_AW'(bj_head.base + (b_fresh ? 32'sd0 : b));
    assign pm_rlane = bj_head.lane;
    assign bj_pop = do_read && ((b_fresh ? 32'sd0 : b) == bj_head.beats - 1);

    logic [7:0] strb_now;
    always_comb begin
        strb_now = '0;
        for (int i = 0; i < 4; i++) begin
            xaihls_pkg::s32_t w;
            w = cur_word0 + $signed(32'(i));
            if (w >= 0 && w < bj_head.span && mod8({4'd0, cur_phase} + 8'(i), osx4) == 4'd0)
                strb_now[2*i +: 2] = 2'b11;
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            rd_q <= 1'b0;
            b_fresh <= 1'b1;
            row_free <= 1'b0;
        end else begin
            rd_q <= do_read;
            strb_q <= strb_now;
            row_free <= 1'b0;
            if (do_read) begin
                if (bj_pop) begin
                    b_fresh <= 1'b1;
                    if (bj_head.last_lane) begin
                        row_free <= 1'b1;
                        row_free_entries <= bj_head.rstride;
                    end
                end else begin
                    b_fresh <= 1'b0;
                    b <= (b_fresh ? 32'sd0 : b) + 1;
                    word0 <= cur_word0 + 32'sd4;
                    phase <= mod8({4'd0, cur_phase} + 8'd4, osx4);
                end
            end
        end
    end

    assign f_push = rd_q;
    assign w_valid = !f_empty;
    assign {w_strb, w_data} = f_out;
    assign f_pop = w_valid && w_ready;

    assign idle = rq_empty && bj_empty && !rd_q && f_empty && !cmd_valid;

    logic unused;
    assign unused = ^{rq_full, rq_count, bj_count, f_full};
endmodule
