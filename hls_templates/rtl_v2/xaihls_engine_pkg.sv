// Types the engine's units share (the Program's own fields come from xaihls_contract_pkg).

package xaihls_engine_pkg;

  // post-processing passes (docs/engine_v2.md, "Post-processing"); each runs over `elems`
  // elements in chunks, on lanes 0..E-1 of the MAC array and the write-back lanes
  localparam logic [2:0] POST_COPY     = 3'd0;  // dst = src0
  localparam logic [2:0] POST_ABS      = 3'd1;  // dst = requant(|src0|, 0)
  localparam logic [2:0] POST_IXG      = 3'd2;  // dst = requant(src0 * src1, shift)
  localparam logic [2:0] POST_IG_POINT = 3'd3;  // dst = requant(k0 * src0 + k1 * src1, shift)
  localparam logic [2:0] POST_IG_ACC   = 3'd4;  // sum (+)= k0 * src0 (on chip)
  localparam logic [2:0] POST_IG_SUM   = 3'd5;  // dst = requant(sum, shift)
  localparam logic [2:0] POST_IG_FINAL = 3'd6;  // dst = requant(src0 * src2 - src1 * src2, shift)

  typedef struct packed {
    logic [2:0]         op;
    logic               first;    // POST_IG_ACC: the first step (the sum starts at zero)
    logic [31:0]        src0;
    logic [31:0]        src1;
    logic [31:0]        src2;
    logic [31:0]        dst;
    logic [23:0]        beats;    // AXI beats of each tensor (E elements a beat)
    logic signed [17:0] k0;
    logic signed [17:0] k1;
    logic signed [7:0]  shift;
  } post_cfg_t;

  // what the controller starts
  localparam logic [1:0] JOB_CONV = 2'd0;
  localparam logic [1:0] JOB_SEED = 2'd1;
  localparam logic [1:0] JOB_POST = 2'd2;

  // loader beat destinations (the read mover's user field)
  localparam logic [1:0] DEST_INPUT  = 2'd0;
  localparam logic [1:0] DEST_WEIGHT = 2'd1;
  localparam logic [1:0] DEST_BIAS   = 2'd2;

  // The numerics contract's requantization (xaihls/numerics.py): round half up by s > 0 bits
  // ((v >> (s - 1)) + 1) >> 1, or a left shift by -s; then saturate to 16 bits. Returns
  // {saturated, value}.
  function automatic logic [16:0] requant(input logic signed [47:0] v, input logic signed [7:0] s);
    logic signed [48:0] r;
    logic signed [47:0] hi;
    logic [7:0] left;
    logic sat;
    logic [15:0] q;
    if (s > 8'sd0) begin
      r = (49'(v >>> ((s > 8'sd47) ? 6'd47 : 6'(s - 8'sd1))) + 49'sd1) >>> 1;
      sat = r > 49'sd32767 || r < -49'sd32768;
      q = r[15:0];
    end else begin
      left = 8'(-s);
      if (left > 8'd15) begin
        sat = v != '0;
        q = '0;
      end else begin
        hi = v >>> (4'd15 - 4'(left));
        sat = !(hi == '0 || hi == '1);
        q = 16'(v <<< left[3:0]);
      end
    end
    if (sat) q = v < 0 ? 16'h8000 : 16'h7fff;
    requant = {sat, q};
  endfunction

  // Whether the ReLU rule of the backward pass (xaihls.methods.ReluBackward) keeps a value of
  // sign ``negative`` with the kept bit (else it gives zero; zero stays zero either way).
  function automatic logic relu_keeps(input logic negative, input logic bit_kept, input logic [1:0] mode);
    case (mode)
      2'd2: relu_keeps = !negative;                      // DECONV: max(g, 0)
      2'd1: relu_keeps = bit_kept && !negative;          // GUIDED: max(g * bit, 0)
      default: relu_keeps = bit_kept;                    // MASK: g * bit
    endcase
  endfunction

  // The ReLU rule on value g: g where it keeps it, else zero (the walker zeroes a kept-not operand
  // through its register's reset instead).
  function automatic logic [15:0] relu_rule(input logic [15:0] g, input logic bit_kept, input logic [1:0] mode);
    relu_rule = relu_keeps(g[15], bit_kept, mode) ? g : '0;
  endfunction

endpackage
