// The weight-stationary MAC array (docs/engine_v2.md, "The hardware"): TM lanes x TN columns of
// products of a 16-bit weight and a shifted 16-bit operand (25 bits), one position a cycle.
//
// Lane m is a chain of TN multiply-adds (DSP48s, 25 x 18): column 0 adds the accumulator word of the
// position (the accumulator memory's output register, held at zero on a row tile's first pass)
// and column n adds column n-1's sum, so a lane's sum and its accumulation take no LUT. Column n
// sees the position n cycles after column 0 (the activations and the weight swap are skewed
// here); the sum leaves column TN-1 into the lane's accumulator memory (`acc`, one set, plus
// the integrated-gradients sum of lanes 0..E-1 above OUT_DEPTH) and, on a tile's final pass,
// into the output memory (`out`, two sets) that the write-back drains.
//
// Operand shift: a CONV job's operands are shifted left by the shift of their n-tile's source
// (docs/engine_v2.md, "The CONV job"; at most MAX_X_SHIFT = 9), so the A input is 25 bits: a
// 16-bit operand shifted by 9 still fits the DSP48's multiplier, no DSP is added. The x bus is
// shared by the TM lanes, so each column shifts its operand once, after the skew and before the
// fan-out; the shift amount travels with the position through the skew (its n-tile can change
// between two positions in a row, and column n sees that boundary n cycles after column 0).
//
// Weights: a pass's TM x TN weights sit in the DSPs' B registers; the next pass's rows are
// shifted into a shadow chain (one row a cycle, row 0 first) and copied at `swap`.
// Post-processing borrows column 0 of lanes 0..E-1: with `post` their A and B inputs take
// post_a / post_b instead of the activation and the weight.
//
// Timing (cycles after the inputs of a position): accumulator read at +1, sum written at
// +2+TN: a position read again must be read at least TN + 2 cycles after its previous read.

module xaihls_mac_array #(
    parameter int TM        = 4,
    parameter int TN        = 4,
    parameter int E         = 4,       // lanes borrowed by post-processing (16-bit elements per AXI beat)
    parameter int OUT_DEPTH = 256,     // positions of a row tile (a power of two)
    parameter int IG_WORDS  = 0,       // integrated-gradients sums per borrowed lane (0: no backward path)
    parameter int W_DIAG    = 0,       // 1: w_mask zeroes the columns of a row entering the shadow chain
    parameter int AAW       = $clog2(OUT_DEPTH + IG_WORDS),
    parameter int OAW       = $clog2(OUT_DEPTH)
) (
    input  logic                        clk,

    // the weight shadow chain
    input  logic [TN*16-1:0]            w_row,       // weights n = 0..TN-1 of one row (lane)
    input  logic                        w_shift,     // shadow[m] <= shadow[m+1], shadow[TM-1] <= w_row
    input  logic [TN-1:0]               w_mask,      // W_DIAG: w_row's columns kept (the others enter as zero)
    input  logic                        swap,        // at a pass's first position: B <= shadow

    // one position: activations of the columns (unskewed) and where its sum goes
    input  logic [TN*16-1:0]            x,
    input  logic [TN-1:0]               x_keep,      // 0: the column's operand is zero
    input  logic [3:0]                  x_shift,     // left shift of the position's operands (0..9)
    input  logic                        post,
    input  logic [E*18-1:0]             post_a,
    input  logic [E*18-1:0]             post_b,
    input  logic                        acc_zero,    // read zero for the accumulator (first pass)
    input  logic [AAW-1:0]              acc_addr,
    input  logic                        acc_we,      // the sum goes back to the accumulator
    input  logic                        out_we,      // the sum goes to the output memory
    input  logic                        out_set,
    input  logic [OAW-1:0]              out_addr,

    // the write-back's read of the output memory (one cycle)
    input  logic                        rd_set,
    input  logic [OAW-1:0]              rd_addr,
    output logic [TM*48-1:0]            rd_data
);
    initial begin
        if (E > TM) $error("xaihls_mac_array: E = %0d lanes borrowed of TM = %0d", E, TM);
        if ((1 << OAW) != OUT_DEPTH) $error("xaihls_mac_array: OUT_DEPTH %0d is not a power of two", OUT_DEPTH);
    end

    // ---------------------------------------------------------------- skew
    // column n's operand, keep flag, shift and swap, n cycles late (shift registers without
    // reset: SRLs); the 4-bit shift is skewed rather than the shifted 25-bit operand (fewer SRLs)
    logic [TN*16-1:0] x_sk;
    logic [TN-1:0]    keep_sk, swap_sk;
    logic [TN*4-1:0]  xs_sk;
    assign x_sk[15:0]  = x[15:0];
    assign keep_sk[0]  = x_keep[0];
    assign swap_sk[0]  = swap;
    assign xs_sk[3:0]  = x_shift;
    for (genvar n = 1; n < TN; n++) begin : g_skew
        logic [n*16-1:0] xd;   // the newest operand in the low bits, n cycles of them
        logic [n*4-1:0]  hd;
        logic [n-1:0]    kd, sd;
        if (n == 1) begin : g_one
            always_ff @(posedge clk) begin
                xd <= x[n*16 +: 16];
                hd <= x_shift;
                kd <= x_keep[n];
                sd <= swap;
            end
        end else begin : g_more
            always_ff @(posedge clk) begin
                xd <= {xd[(n-1)*16-1:0], x[n*16 +: 16]};
                hd <= {hd[(n-1)*4-1:0], x_shift};
                kd <= {kd[n-2:0], x_keep[n]};
                sd <= {sd[n-2:0], swap};
            end
        end
        assign x_sk[n*16 +: 16] = xd[n*16-1 -: 16];
        assign xs_sk[n*4 +: 4]  = hd[n*4-1 -: 4];
        assign keep_sk[n]       = kd[n-1];
        assign swap_sk[n]       = sd[n-1];
    end

    // ---------------------------------------------------------------- operand shift
    // column n's operand shifted by its skewed shift, once for all TM lanes: two 4-way steps
    // (by 0..3, then by 0, 4 or 8), each output bit one LUT6 of four candidates and two selects;
    // a shift past MAX_X_SHIFT is not the contract's (its top step wraps to no shift)
    logic signed [24:0] x_op [TN];
    for (genvar n = 0; n < TN; n++) begin : g_shift
        logic signed [18:0] fine;   // by xs[1:0]: 16 + 3 bits
        logic [3:0] xs;
        assign xs = xs_sk[n*4 +: 4];
        always_comb begin
            fine = 19'($signed(x_sk[n*16 +: 16])) <<< xs[1:0];
            case (xs[3:2])
                2'd1: x_op[n] = 25'(fine) <<< 4;
                2'd2: x_op[n] = 25'(fine) <<< 8;
                default: x_op[n] = 25'(fine);
            endcase
        end
    end

    // ---------------------------------------------------------------- shadow chain
    logic [TM-1:0][TN*16-1:0] shadow;
    logic [TN*16-1:0] w_in;   // W_DIAG: a lane's one weight of a row of TN lanes' (w_diag)
    for (genvar n = 0; n < TN; n++) begin : g_win
        if (W_DIAG != 0) begin : g_masked
            assign w_in[n*16 +: 16] = w_mask[n] ? w_row[n*16 +: 16] : 16'd0;
        end else begin : g_plain
            assign w_in[n*16 +: 16] = w_row[n*16 +: 16];
        end
    end
    if (W_DIAG == 0) begin : g_nomask
        logic unused_mask;
        assign unused_mask = ^w_mask;
    end
    always_ff @(posedge clk) begin
        if (w_shift) begin
            if (TM == 1) shadow[0] <= w_in;
            else shadow <= {w_in, shadow[TM-1:1]};
        end
    end

    // ---------------------------------------------------------------- addresses and enables
    // accumulator read at +1; sums written at +2+TN
    logic [AAW-1:0] rd_acc_addr;
    logic           rd_acc_zero;
    always_ff @(posedge clk) begin
        rd_acc_addr <= acc_addr;
        rd_acc_zero <= acc_zero;
    end

    localparam int WL = TN + 2;  // write delay
    logic [WL-1:0][AAW-1:0] wa_d;
    logic [WL-1:0][OAW-1:0] oa_d;
    logic [WL-1:0]          awe_d, owe_d, oset_d, post_d;
    always_ff @(posedge clk) begin
        wa_d   <= {wa_d[WL-2:0], acc_addr};
        oa_d   <= {oa_d[WL-2:0], out_addr};
        awe_d  <= {awe_d[WL-2:0], acc_we};
        owe_d  <= {owe_d[WL-2:0], out_we};
        oset_d <= {oset_d[WL-2:0], out_set};
        post_d <= {post_d[WL-2:0], post};
    end

    // ---------------------------------------------------------------- lanes
    for (genvar m = 0; m < TM; m++) begin : g_lane
        logic signed [24:0] a_r [TN];
        logic signed [17:0] b_r [TN];
        logic signed [42:0] m_r [TN];
        logic signed [47:0] p_r [TN];
        logic signed [47:0] c_in;

        for (genvar n = 0; n < TN; n++) begin : g_col
            if (n == 0 && m < E) begin : g_borrowed
                always_ff @(posedge clk) begin
                    if (post) a_r[n] <= 25'($signed(post_a[m*18 +: 18]));
                    else if (!keep_sk[n]) a_r[n] <= '0;
                    else a_r[n] <= x_op[n];
                    if (post) b_r[n] <= $signed(post_b[m*18 +: 18]);
                    else if (swap_sk[n]) b_r[n] <= 18'($signed(shadow[m][n*16 +: 16]));
                end
            end else begin : g_plain
                always_ff @(posedge clk) begin
                    if (!keep_sk[n]) a_r[n] <= '0;
                    else a_r[n] <= x_op[n];
                    if (swap_sk[n]) b_r[n] <= 18'($signed(shadow[m][n*16 +: 16]));
                end
            end
            always_ff @(posedge clk) m_r[n] <= a_r[n] * b_r[n];
            if (n == 0) begin : g_first
                always_ff @(posedge clk) p_r[n] <= c_in + 48'(m_r[n]);
            end else begin : g_next
                always_ff @(posedge clk) p_r[n] <= p_r[n-1] + 48'(m_r[n]);
            end
        end

        // the accumulator memory: lanes 0..E-1 also hold the integrated-gradients sums, at addresses
        // OUT_DEPTH .. OUT_DEPTH + IG_WORDS - 1; the planner sizes IG_WORDS (INPUT_ELEMS): up to a power of
        // two (wide block RAMs one cell deep, no read multiplexer), or exactly, where only fewer block RAMs fit
        localparam int DEPTH = (m < E) ? OUT_DEPTH + IG_WORDS : OUT_DEPTH;
        localparam int LAW = $clog2(DEPTH);
        logic [47:0] acc_mem [DEPTH];
        always_ff @(posedge clk) begin
            if (awe_d[WL-1] && (m < E || !post_d[WL-1])) acc_mem[LAW'(wa_d[WL-1])] <= p_r[TN-1];
            if (rd_acc_zero) c_in <= '0;
            else c_in <= acc_mem[LAW'(rd_acc_addr)];
        end

        // the output memory: two sets of a row tile's sums
        logic [47:0] out_mem [2*OUT_DEPTH];
        always_ff @(posedge clk) begin
            if (owe_d[WL-1]) out_mem[{oset_d[WL-1], oa_d[WL-1]}] <= p_r[TN-1];
            rd_data[m*48 +: 48] <= out_mem[{rd_set, rd_addr}];
        end
    end
endmodule
