// Post-processing unit: the controller's element-wise passes over the input-sized tensors,
// one element a cycle, streamed (reads in chunks of 8 beats, two streams interleaved, one
// write command for the whole output).
//
//   COPY      work = image
//   IGPOINT   work = xaihls_pkg::requant((baseline << alpha_frac) + alpha * (x - baseline), alpha_frac)
//   IGACC     sum += weight * g            (wide, on chip: MAX_INPUT_ELEMS x 48 bits)
//   FINAL     attribution = g | sat(|g|) | xaihls_pkg::requant(x * g, shift_a)
//             | xaihls_pkg::requant((x - baseline) * xaihls_pkg::requant(sum, shift_a), shift_b)
// Guarantees: the numerics of xaihls/sim/program.py (Machine.run) bit for bit; one multiplier.

import xaihls_pkg::*;

module xaihls_post
#(
    parameter int MAX_INPUT_ELEMS = 4096,
    parameter int BACKWARD        = 1
) (
    input  logic        clk,
    input  logic        rst,

    input  logic        start,
    input  logic [1:0]  op,          // 0 COPY, 1 IGPOINT, 2 IGACC, 3 FINAL
    input  logic [1:0]  final_kind,  // 0 g, 1 |g|, 2 x*g, 3 integrated gradients
    input  xaihls_pkg::s32_t        n,
    input  xaihls_pkg::s32_t        in0_addr,
    input  xaihls_pkg::s32_t        in1_addr,
    input  xaihls_pkg::s32_t        out_addr,
    input  xaihls_pkg::s32_t        alpha,
    input  xaihls_pkg::s32_t        alpha_frac,
    input  xaihls_pkg::s32_t        weight,
    input  logic        first_step,
    input  xaihls_pkg::s32_t        shift_a,
    input  xaihls_pkg::s32_t        shift_b,
    output logic        busy,
    output logic [1:0]  sat_count,   // values this cycle's result saturated (IG: sum and product)

    output logic        rd_cmd_valid,
    input  logic        rd_cmd_ready,
    output logic [31:0] rd_cmd_off,
    output logic [23:0] rd_cmd_words,
    output logic [15:0] rd_cmd_user,
    input  logic        rd_valid,
    output logic        rd_ready,
    input  logic [63:0] rd_data,
    input  logic [15:0] rd_user,

    output logic        wr_cmd_valid,
    input  logic        wr_cmd_ready,
    output logic [31:0] wr_cmd_off,
    output logic [23:0] wr_cmd_words,
    output logic        wr_valid,
    input  logic        wr_ready,
    output logic [63:0] wr_data,
    output logic [7:0]  wr_strb
);
    localparam logic [1:0] OPC_COPY = 2'd0, OPC_IGPOINT = 2'd1, OPC_IGACC = 2'd2, OPC_FINAL = 2'd3;
    localparam int CHUNK = 8;     // beats per read command
    localparam int QD = 16;       // beats per input FIFO
    localparam int SUM_DEPTH = (BACKWARD != 0) ? MAX_INPUT_ELEMS : 1;
    localparam int SAW = (SUM_DEPTH > 1) ? $clog2(SUM_DEPTH) : 1;

    logic [1:0] opq, fk;
    xaihls_pkg::s32_t nq, a0, a1, alph, af, wgt, sha, shb;
    logic firstq;
    logic two_streams, has_out, uses_sum;
    assign two_streams = (opq == OPC_IGPOINT) || (opq == OPC_FINAL && (fk == 2'd2 || fk == 2'd3));
    assign has_out = (opq != OPC_IGACC);
    assign uses_sum = (opq == OPC_IGACC) || (opq == OPC_FINAL && fk == 2'd3);

    // ---------------------------------------------------------------- reads
    xaihls_pkg::s32_t chunks, rq_chunk;
    logic rq_second;        // the next command is stream 1 of rq_chunk
    xaihls_pkg::s32_t credit0, credit1; // beats reserved (in flight or queued) per stream
    logic active;

    xaihls_pkg::s32_t chunk_words;
    assign chunk_words = xaihls_pkg::smin($signed(32'(CHUNK * 4)), nq - (rq_chunk <<< 5));

    logic q0_push, q0_pop, q0_empty, q0_full, q1_push, q1_pop, q1_empty, q1_full;
    logic [63:0] q0_head, q1_head;
    logic [$clog2(QD):0] q0_count, q1_count;
    xaihls_fifo #(.WIDTH(64), .DEPTH(QD)) u_q0 (
        .clk, .rst, .push(q0_push), .wdata(rd_data), .pop(q0_pop), .rdata(q0_head),
        .empty(q0_empty), .full(q0_full), .count(q0_count)
    );
    xaihls_fifo #(.WIDTH(64), .DEPTH(QD)) u_q1 (
        .clk, .rst, .push(q1_push), .wdata(rd_data), .pop(q1_pop), .rdata(q1_head),
        .empty(q1_empty), .full(q1_full), .count(q1_count)
    );
    assign rd_ready = 1'b1;   // credits guarantee room
    assign q0_push = rd_valid && (rd_user[0] == 1'b0);
    assign q1_push = rd_valid && (rd_user[0] == 1'b1);

    logic can_req;
    assign can_req = active && (rq_chunk < chunks) && (!rd_cmd_valid || rd_cmd_ready) &&
                     (rq_second ? (credit1 + CHUNK <= QD) : (credit0 + CHUNK <= QD));

    // ---------------------------------------------------------------- element pipeline
    xaihls_pkg::s32_t e_idx;           // next element to issue
    logic e_go;
    xaihls_pkg::s32_t out_credit;      // output beats reserved
    logic e_need_pop;
    logic [1:0] e_slot;
    assign e_slot = e_idx[1:0];
    assign e_need_pop = (e_slot == 2'd3) || (e_idx == nq - 1);
    assign e_go = active && (e_idx < nq) && !q0_empty && (!two_streams || !q1_empty) && (out_credit < 6);
    assign q0_pop = e_go && e_need_pop;
    assign q1_pop = e_go && e_need_pop && two_streams;

    // sum memory (integrated gradients)
    logic signed [47:0] sum_rdata;
    logic sum_we;
    logic [SAW-1:0] sum_waddr;
    logic signed [47:0] sum_wdata;
    if (BACKWARD != 0) begin : g_sum
        logic [47:0] rd;
        xaihls_sdp_ram #(.WIDTH(48), .DEPTH(SUM_DEPTH)) u_sum (
            .clk, .we(sum_we), .waddr(sum_waddr), .wdata(sum_wdata), .re(e_go), .raddr(SAW'(e_idx)), .rdata(rd)
        );
        assign sum_rdata = rd;
    end else begin : g_no_sum
        assign sum_rdata = '0;
        logic unused_sum;
        assign unused_sum = ^{sum_we, sum_waddr, sum_wdata};
    end

    // e1: operands from the FIFOs; sum data arrives
    logic e1_v, e2_v, e3_v, e4_v;
    logic signed [15:0] e1_x, e1_y;
    xaihls_pkg::s32_t e1_idx, e2_idx, e3_idx, e4_idx;
    always_ff @(posedge clk) begin
        if (rst) e1_v <= 1'b0;
        else e1_v <= e_go;
        e1_x <= q0_head[16*e_slot +: 16];
        e1_y <= q1_head[16*e_slot +: 16];
        e1_idx <= e_idx;
    end

    // e2: multiplier operands
    logic signed [17:0] ma, mb, ma_d, mb_d;
    logic signed [15:0] e2_x, e2_y;
    logic signed [47:0] e2_sum;
    logic e2_sum_sat, e3_sum_sat;
    logic signed [16:0] diff;
    logic signed [15:0] summed;
    always_comb begin
        diff = 17'(e1_x) - 17'(e1_y);
        summed = xaihls_pkg::requant(64'(sum_rdata), sha);
        case (opq)
            OPC_IGPOINT: begin ma_d = alph[17:0]; mb_d = 18'(diff); end
            OPC_IGACC:   begin ma_d = wgt[17:0];  mb_d = 18'(e1_x); end
            default:     begin
                if (fk == 2'd3) begin ma_d = 18'(diff); mb_d = 18'(summed); end
                else begin ma_d = 18'(e1_x); mb_d = 18'(e1_y); end
            end
        endcase
    end
    always_ff @(posedge clk) begin
        if (rst) e2_v <= 1'b0;
        else e2_v <= e1_v;
        e2_x <= e1_x;
        e2_y <= e1_y;
        e2_sum <= sum_rdata;
        e2_sum_sat <= (opq == OPC_FINAL) && (fk == 2'd3) && xaihls_pkg::saturates(64'(sum_rdata), sha);
        e2_idx <= e1_idx;
        ma <= ma_d;
        mb <= mb_d;
    end

    // e3: product
    logic signed [35:0] prod;
    logic signed [15:0] e3_x, e3_y;
    logic signed [47:0] e3_sum;
    always_ff @(posedge clk) begin
        if (rst) e3_v <= 1'b0;
        else e3_v <= e2_v;
        prod <= (BACKWARD != 0) ? ma * mb : 36'sd0;  // an inference-only build only copies
        e3_x <= e2_x;
        e3_y <= e2_y;
        e3_sum <= e2_sum;
        e3_sum_sat <= e2_sum_sat;
        e3_idx <= e2_idx;
    end

    // e4: result
    logic signed [15:0] e4_out;
    logic e4_sat;
    always_comb begin
        case (opq)
            OPC_IGPOINT: e4_sat = xaihls_pkg::saturates((64'(e3_y) <<< af[5:0]) + 64'(prod), af);
            OPC_FINAL: begin
                case (fk)
                    2'd1: e4_sat = (e3_x == -16'sd32768);
                    2'd2: e4_sat = xaihls_pkg::saturates(64'(prod), sha);
                    2'd3: e4_sat = xaihls_pkg::saturates(64'(prod), shb);
                    default: e4_sat = 1'b0;
                endcase
            end
            default: e4_sat = 1'b0;
        endcase
    end
    always_ff @(posedge clk) begin
        if (rst) sat_count <= 2'd0;
        else sat_count <= (e3_v && has_out) ? 2'(e4_sat) + 2'(e3_sum_sat) : 2'd0;
    end
    always_ff @(posedge clk) begin
        if (rst) begin
            e4_v <= 1'b0;
            sum_we <= 1'b0;
        end else begin
            e4_v <= e3_v && has_out;
            sum_we <= e3_v && (opq == OPC_IGACC);
        end
        e4_idx <= e3_idx;
        sum_waddr <= SAW'(e3_idx);
        sum_wdata <= (firstq ? 48'sd0 : e3_sum) + 48'(prod);
        case (opq)
            OPC_COPY:    e4_out <= e3_x;
            OPC_IGPOINT: e4_out <= xaihls_pkg::requant((64'(e3_y) <<< af[5:0]) + 64'(prod), af);
            default: begin
                case (fk)
                    2'd0: e4_out <= e3_x;
                    2'd1: e4_out <= xaihls_pkg::sat16((e3_x < 0) ? (64'sd0 - 64'(e3_x)) : 64'(e3_x));
                    2'd2: e4_out <= xaihls_pkg::requant(64'(prod), sha);
                    default: e4_out <= xaihls_pkg::requant(64'(prod), shb);
                endcase
            end
        endcase
    end

    // output packing: four elements a beat
    logic [63:0] pk_data;
    logic [7:0] pk_strb;
    logic o_push, o_pop, o_empty, o_full;
    logic [71:0] o_head;
    logic [3:0] o_count;
    xaihls_fifo #(.WIDTH(72), .DEPTH(8)) u_o (
        .clk, .rst, .push(o_push), .wdata({pk_strb, pk_data}), .pop(o_pop), .rdata(o_head),
        .empty(o_empty), .full(o_full), .count(o_count)
    );
    logic [63:0] pk_acc;
    logic [7:0] pk_acc_strb;
    always_comb begin
        pk_data = pk_acc;
        pk_strb = pk_acc_strb;
        pk_data[16*e4_idx[1:0] +: 16] = e4_out;
        pk_strb[2*e4_idx[1:0] +: 2] = 2'b11;
    end
    assign o_push = e4_v && ((e4_idx[1:0] == 2'd3) || (e4_idx == nq - 1));
    always_ff @(posedge clk) begin
        if (rst || start) begin
            pk_acc <= '0;
            pk_acc_strb <= '0;
        end else if (e4_v) begin
            if (o_push) begin
                pk_acc <= '0;
                pk_acc_strb <= '0;
            end else begin
                pk_acc <= pk_data;
                pk_acc_strb <= pk_strb;
            end
        end
    end
    assign wr_valid = !o_empty;
    assign {wr_strb, wr_data} = o_head;
    assign o_pop = wr_valid && wr_ready;

    // ---------------------------------------------------------------- control
    xaihls_pkg::s32_t done_elems;
    always_ff @(posedge clk) begin
        if (rst) begin
            active <= 1'b0;
            rd_cmd_valid <= 1'b0;
            wr_cmd_valid <= 1'b0;
            busy <= 1'b0;
        end else begin
            if (rd_cmd_valid && rd_cmd_ready) rd_cmd_valid <= 1'b0;
            if (wr_cmd_valid && wr_cmd_ready) wr_cmd_valid <= 1'b0;
            if (start) begin
                opq <= op; fk <= final_kind; nq <= n;
                a0 <= in0_addr; a1 <= in1_addr;
                alph <= alpha; af <= alpha_frac; wgt <= weight; firstq <= first_step;
                sha <= shift_a; shb <= shift_b;
                chunks <= (n + 32'sd31) >>> 5;
                rq_chunk <= '0;
                rq_second <= 1'b0;
                credit0 <= '0; credit1 <= '0;
                e_idx <= '0;
                out_credit <= '0;
                done_elems <= '0;
                active <= 1'b1;
                busy <= 1'b1;
                if (op != OPC_IGACC) begin
                    wr_cmd_valid <= 1'b1;
                    wr_cmd_off <= 32'(out_addr);
                    wr_cmd_words <= 24'(n);
                end
            end else if (active) begin
                // read commands: stream 0 then (if used) stream 1 of each chunk
                if (can_req) begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_words <= 24'(chunk_words);
                    if (!rq_second) begin
                        rd_cmd_off <= 32'(a0 + (rq_chunk <<< 6));
                        rd_cmd_user <= 16'd0;
                    end else begin
                        rd_cmd_off <= 32'(a1 + (rq_chunk <<< 6));
                        rd_cmd_user <= 16'd1;
                    end
                    if (two_streams && !rq_second) begin
                        rq_second <= 1'b1;
                    end else begin
                        rq_second <= 1'b0;
                        rq_chunk <= rq_chunk + 1;
                    end
                end
                credit0 <= credit0 + ((can_req && !rq_second) ? $signed(32'((chunk_words + 3) >>> 2)) : 32'sd0)
                           - $signed(32'(q0_pop));
                credit1 <= credit1 + ((can_req && rq_second) ? $signed(32'((chunk_words + 3) >>> 2)) : 32'sd0)
                           - $signed(32'(q1_pop));
                if (e_go) e_idx <= e_idx + 1;
                out_credit <= out_credit + $signed(32'(e_go && has_out && e_need_pop)) - $signed(32'(o_pop));
                if (e4_v || sum_we) done_elems <= done_elems + 1;
                if (done_elems == nq && o_empty && !wr_cmd_valid) begin
                    active <= 1'b0;
                    busy <= 1'b0;
                end
            end
        end
    end

    logic unused;
    assign unused = ^{q0_full, q1_full, q0_count, q1_count, o_full, o_count, rd_user[15:1], e_go, uses_sum};
endmodule
