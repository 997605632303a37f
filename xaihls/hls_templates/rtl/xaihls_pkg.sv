// xaihls engine: shared definitions (Program v1 layout, numerics contract).
//
// Guarantees: `requant` and `relu_rule` are the numerics contract of xaihls/numerics.py
// and xaihls/sim/program.py, bit for bit: round half up ((acc + 2^(s-1)) >>> s as
// ((acc >>> (s-1)) + 1) >>> 1), a left shift for s <= 0, then saturation to 16 bits.

package xaihls_pkg;

  typedef logic signed [31:0] s32_t;

  localparam logic [31:0] PROGRAM_MAGIC   = 32'h5049_4158;  // "XAIP"
  localparam logic [31:0] PROGRAM_VERSION = 32'd1;

  // Descriptor ops (docs/program.md)
  localparam logic [3:0] OP_END         = 4'd0;
  localparam logic [3:0] OP_CONV        = 4'd1;
  localparam logic [3:0] OP_MAXPOOL     = 4'd2;
  localparam logic [3:0] OP_MAXPOOL_BWD = 4'd3;
  localparam logic [3:0] OP_AVGPOOL     = 4'd4;
  localparam logic [3:0] OP_AVGPOOL_BWD = 4'd5;
  localparam logic [3:0] OP_RELU        = 4'd6;
  localparam logic [3:0] OP_SEED        = 4'd7;

  // Descriptor flag bits
  localparam int FL_RELU     = 0;
  localparam int FL_POOL     = 1;
  localparam int FL_RAP      = 2;  // RELU_AFTER_POOL
  localparam int FL_BWD_RELU = 3;
  localparam int FL_BIAS     = 4;

  localparam int DESC_WORDS   = 48;
  localparam int HEADER_WORDS = 32;

  // One descriptor, field by field, in Program order.
  typedef struct packed {
    s32_t op, flags, in_addr, out_addr, w_addr, b_addr, n, m, ih, iw, oh, ow, ky, kx, isy, isx,
          iky, ikx, iy0, ix0, ws_m, ws_n, ws_ky, ws_kx, w0, oph, opw, osy, osx, oyo, oxo,
          shift0, shift1, shift2, bias_shift, mask_base, index_base, pool_k, pool_s, pool_oh,
          pool_ow, recip, tile_rows, tile_step, row_tiles, m_tiles, n_tiles, layer;
  } desc_t;


  // What the write-back (pack) unit needs to know about one filled accumulator set.
  typedef struct packed {
    logic signed [31:0] m0;        // first channel (output channel of the tile, or channel of the chunk)
    logic signed [31:0] lanes;     // channels in this set (<= TM)
    logic first;     // first row tile of an output-channel tile / first chunk of a channel group
    logic last;      // last row tile / last chunk of the job
    logic signed [31:0] r0;        // CONV: first conv output row; pools: first pooled row of the chunk
    logic signed [31:0] rows;      // CONV: conv rows; POOL_FWD: pooled rows; POOL_BWD: output rows; RELU/SEED: elements
    logic signed [31:0] pyl;       // POOL_BWD: first pooled row held; RELU: first element
  } chunk_t;
  localparam int CHUNK_BITS = 5 * 32 + 2;  // $bits(chunk_t), for packed arrays of chunks

  // Header word indices
  localparam int H_MAGIC = 0, H_VERSION = 1, H_N_FORWARD = 2, H_N_BACKWARD = 3, H_FORWARD_ADDR = 4,
                 H_BACKWARD_ADDR = 5, H_IMAGE_ADDR = 6, H_WORK_ADDR = 7, H_BASELINE_ADDR = 8,
                 H_IG_TABLE_ADDR = 9, H_LOGITS_ADDR = 10, H_RESULT_ADDR = 11, H_ATTR_ADDR = 12,
                 H_IGACC_ADDR = 13, H_GRAD_INPUT_ADDR = 14, H_CLASSES = 15, H_INPUT_ELEMS = 16,
                 H_IN_C = 17, H_IN_H = 18, H_IN_W = 19, H_INPUT_FRAC = 20, H_GRAD_FRAC0 = 21,
                 H_GRAD_FRAC1 = 22, H_GRAD_FRAC2 = 23, H_IXG_FRAC = 24, H_IG_SUM_FRAC = 25,
                 H_IG_FRAC = 26, H_DATA_WIDTH = 27, H_MASK_BITS = 28, H_INDEX_ENTRIES = 29,
                 H_INDEX_BITS = 30, H_TOTAL_BYTES = 31;

  // The 48 words of a descriptor (word i in bits [32*i +: 32]) as fields.
  function automatic logic [DESC_WORDS*32-1:0] desc_from_words(input logic [DESC_WORDS*32-1:0] raw);
    for (int i = 0; i < DESC_WORDS; i++) begin
      desc_from_words[(DESC_WORDS-1-i)*32 +: 32] = raw[i*32 +: 32];
    end
  endfunction

  // Saturate to a signed 16-bit value.
  function automatic logic signed [15:0] sat16(input logic signed [63:0] v);
    if (v > 64'sd32767) sat16 = 16'sh7fff;
    else if (v < -64'sd32768) sat16 = 16'sh8000;
    else sat16 = v[15:0];
  endfunction

  // Requantize by `shift` (accumulator fraction - output fraction): round half up, saturate.
  function automatic logic signed [15:0] requant(input logic signed [63:0] acc, input logic signed [31:0] shift);
    logic signed [63:0] t;
    logic [5:0] amount;
    if (shift > 0) begin
      amount = (shift > 32'sd64) ? 6'd63 : 6'(shift - 32'sd1);
      t = (acc >>> amount) + 64'sd1;
      t = t >>> 1;
      requant = xaihls_pkg::sat16(t);
    end else if (acc == 64'sd0) begin
      requant = 16'sd0;
    end else if (shift <= -32'sd16) begin
      requant = (acc > 64'sd0) ? 16'sh7fff : 16'sh8000;
    end else begin
      amount = 6'(-shift);
      t = acc <<< amount;  // |acc| < 2^48 and amount < 16: no overflow
      requant = xaihls_pkg::sat16(t);
    end
  endfunction

  // Whether `requant(acc, shift)` saturates: its rounded value lies outside 16 bits (what the
  // engine's saturation counters count, as xaihls.numerics.count_saturated does).
  function automatic logic saturates(input logic signed [63:0] acc, input logic signed [31:0] shift);
    logic signed [63:0] t;
    logic [5:0] amount;
    if (shift > 0) begin
      amount = (shift > 32'sd64) ? 6'd63 : 6'(shift - 32'sd1);
      t = (acc >>> amount) + 64'sd1;
      t = t >>> 1;
      saturates = (t > 64'sd32767) || (t < -64'sd32768);
    end else if (acc == 64'sd0) begin
      saturates = 1'b0;
    end else if (shift <= -32'sd16) begin
      saturates = 1'b1;
    end else begin
      amount = 6'(-shift);
      t = acc <<< amount;
      saturates = (t > 64'sd32767) || (t < -64'sd32768);
    end
  endfunction

  // The ReLU-backward rule: plain g*bit, guided max(g, 0)*bit, deconvnet max(g, 0).
  function automatic logic signed [15:0] relu_rule(input logic signed [15:0] g, input logic bit_, input logic [1:0] mode);
    logic signed [15:0] v;
    v = bit_ ? g : 16'sd0;
    if (mode == 2'd2) relu_rule = (g > 16'sd0) ? g : 16'sd0;
    else if (mode == 2'd1 && v < 16'sd0) relu_rule = 16'sd0;
    else relu_rule = v;
  endfunction

  // a * b where b is a small non-negative number (< 2^8): shift-and-add, never a DSP.
  function automatic logic signed [31:0] mul_small(input logic signed [31:0] a, input logic [7:0] b);
    logic signed [31:0] acc;
    acc = 32'sd0;
    for (int i = 0; i < 8; i++) if (b[i]) acc = acc + (a <<< i);
    mul_small = acc;
  endfunction

  function automatic logic signed [31:0] smax(input logic signed [31:0] a, input logic signed [31:0] b);
    smax = (a > b) ? a : b;
  endfunction

  function automatic logic signed [31:0] smin(input logic signed [31:0] a, input logic signed [31:0] b);
    smin = (a < b) ? a : b;
  endfunction

  // ceil(k / s) for a pool window k <= 16 and stride s >= 1 (no divider)
  function automatic logic [4:0] ceil_div_small(input logic signed [31:0] k, input logic signed [31:0] s);
    logic [4:0] r;
    r = 5'd16;
    for (int i = 16; i >= 1; i--) if (xaihls_pkg::mul_small(s, 8'(i)) >= k) r = 5'(i);
    ceil_div_small = r;
  endfunction

endpackage
