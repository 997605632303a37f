// The loader (docs/engine_v2.md, "The CONV job"): for every tile (m-tile, row tile, n-tile) in
// order, the input rows of the tile's block and the tile's weights into one set of the ping-pong
// input and weight buffers; a bias per m-tile; for post-processing, a chunk's tensors.
//
// Guarantees: a set is written only after the walker freed it (`free` tokens): a tile's read
// commands go out one tile ahead of the free sets, and its beats wait on the read channel
// (rd_ready low) until a set is free, so the DDR's latency overlaps the walker's work; `loaded`
// pulses once per tile after the tile's last beat is written; the input rows outside the map are not
// read (the walker zeroes their operands); one beat is written per cycle, into E banks of the
// input buffer (bank n takes slot n mod E of beat n / E of a pixel) or E columns of a weight row,
// with no crossbar: every address is a counter plus the beat's index. For the walker's index reads
// it hands over, per set, the pixel address (byte address / 2TN) of the set's buffer row 0, taken
// when the tile's first beat takes the set.
//
// A job with in_keep (one row tile; docs/engine_v2.md, "Inputs kept across m-tiles") loads its
// input once: m-tile 0 (of each slot) writes n-tile k's rows at word k * in_keep of the two input
// sets taken as one, and later m-tiles stream only their weights, still taking a set a tile for
// them. The compiler keeps the n-tiles within the buffer and never on a slot job of one n-tile, so
// a write, one tile ahead of the walker, never lands on the n-tile the walker reads.

import xaihls_contract_pkg::*;
import xaihls_engine_pkg::*;

module xaihls_loader #(
    parameter int TM        = 8,
    parameter int TN        = 4,
    parameter int E         = 4,
    parameter int IN_DEPTH  = 1024,   // words per input bank and set
    parameter int W_DEPTH   = 64,     // weight rows per set
    parameter int CHUNK     = 64,     // post-processing beats a chunk
    parameter int OFF_BITS  = 24,
    parameter int LEN_BITS  = 20,
    parameter int USER_WIDTH = 16,
    parameter int IXW       = 8,      // index-memory word address bits
    parameter int BACKWARD  = 1,      // 0: no ix_row0 (no GATE or UNPOOL reads indices)
    parameter int IAW       = $clog2(IN_DEPTH),
    parameter int WAW       = $clog2(W_DEPTH)
) (
    input  logic                     clk,
    input  logic                     rst,

    input  logic                     start,
    input  logic [1:0]               kind,
    input  xaihls_contract_pkg::descriptor_t              desc,
    input  xaihls_engine_pkg::post_cfg_t                post,
    input  logic [OFF_BITS-1:0]      lo_off,     // load_lo * in_row_bytes (mod 2**OFF_BITS)
    input  logic [OFF_BITS-1:0]      step_off,   // load_step * in_row_bytes
    output logic                     busy,

    input  logic [1:0]               free,       // buffer sets the walker has released
    output logic                     take,       // one set: a tile's first beat (combinational), or a post chunk's
    output logic                     take2,
    output logic                     loaded,     // a tile's loads are all written
    output logic [2*IXW-1:0]         ix_row0,    // per input set: its buffer row 0's byte address / 2TN (mod 2**IXW)
    input  logic                     bias_free,
    output logic                     bias_take,

    output logic                     cmd_valid,
    input  logic                     cmd_ready,
    output logic [OFF_BITS-1:0]      cmd_off,
    output logic [LEN_BITS-1:0]      cmd_beats,
    output logic [USER_WIDTH-1:0]    cmd_user,

    input  logic                     rd_valid,
    output logic                     rd_ready,
    input  logic [E*16-1:0]          rd_data,
    input  logic [USER_WIDTH-1:0]    rd_user,
    input  logic [LEN_BITS-1:0]      rd_beat,
    input  logic                     rd_last,

    output logic [TN/E-1:0]          in_we,
    output logic [IAW:0]             in_addr,
    output logic [TN*16-1:0]         in_data,
    output logic [TN/E-1:0]          w_we,
    output logic [WAW:0]             w_addr,
    output logic [TN*16-1:0]         w_data,
    output logic                     b_we,
    output logic [$clog2(2*TM/E)-1:0] b_addr
);
    localparam int G   = TN / E;                  // beats a pixel (and a weight row)
    localparam int LG  = $clog2(G);
    localparam int LBB = $clog2(2 * E);           // bytes a beat, log2
    localparam int TPB = TM / TN;                 // blocks an m-tile
    localparam int BW  = $clog2(2 * TM / E);

    initial begin
        if (USER_WIDTH < 5 + IAW) $error("xaihls_loader: USER_WIDTH %0d < %0d", USER_WIDTH, 5 + IAW);
        if ((1 << LG) != G) $error("xaihls_loader: TN / E = %0d is not a power of two", G);
        if (CHUNK < 2) $error("xaihls_loader: CHUNK %0d < 2 (a two-tensor post chunk is half a buffer set)", CHUNK);
    end

    // ---- the user field: destination, set, last command of a tile, flat (post) layout, first word
    function automatic logic [USER_WIDTH-1:0] user(input logic [1:0] dest, input logic set, input logic tile_end,
                                                   input logic flat, input logic [IAW-1:0] word);
        user = USER_WIDTH'({dest, set, tile_end, flat, word});
    endfunction

    // ---- configuration (decoded once a job)
    logic              diag, lanes, has_bias;
    // rows of one pixel one after another in DDR (a 1-D map as a column, lowering.ONE_D_COLUMNS): a tile's rows
    // on the map go out as one command, not a burst of a beat or two each
    logic              joined;
    // in_keep (one row tile): m-tile 0 of each slot loads n-tile k's rows at buffer word
    // kbase = k * keep_words of the two sets taken as one; later m-tiles load only weights
    logic              in_kept;
    logic [IAW:0]      keep_words, kbase, kword;
    logic [11:0]       m_tiles, row_tiles, n_tiles;
    logic [11:0]       ih, load_rows, load_rows_last, load_step;
    logic [IAW-1:0]    iw;
    logic signed [13:0] load_lo;
    logic [OFF_BITS-1:0] in_block, in_row, w_mt, w_nt;
    logic [LEN_BITS-1:0] row_beats, w_beats;
    logic [2:0]        p_op;
    // a post op that reads takes one set a chunk (and its weight set), alternating, so the next
    // chunk loads while the walker runs this one; an op of two input tensors (the IG path point
    // and final product) takes half chunks, its second tensor in the set's upper half
    logic              p_one, pset, ptake;
    logic [LEN_BITS-1:0] pch;   // the op's chunk
    logic [OFF_BITS-1:0] p_src0, p_src1, p_src2;
    logic [7:0]        slots_left;        // a slot job's slots after this one
    logic [OFF_BITS-1:0] in_slot, slot_in, w0, b0;   // the input's slot stride, this slot's input, m-tile 0's weights and bias

    // ---- loop state
    typedef enum logic [2:0] {L_IDLE, L_MT, L_TILE, L_ROWS, L_W, L_POST, L_PSTREAM} st_t;
    st_t st;
    logic [11:0]       mt, rt, k, nt, k_last;
    logic              set;
    logic              bset;      // the bias set of this m-tile: m-tiles alternate across a slot job's slots too
    logic              ahead;     // a tile's commands are out and its beats hold no set yet
    logic [OFF_BITS-1:0] mt_in, nt_off, first_off, row_off, mt_w, w_off, b_off;
    logic signed [13:0] first, y;
    logic [IXW-1:0]    ix_pend;   // the pending tile's buffer row 0: byte address / 2TN
    logic [11:0]       rows_left;
    logic [IAW-1:0]    word;
    // post
    logic [23:0]       p_left;
    logic [OFF_BITS-1:0] p_off;
    logic [1:0]        p_stream;
    logic [LEN_BITS-1:0] p_beats;

    logic last_rt;
    assign last_rt = rt == row_tiles - 1'b1;
    // L_ROWS: whether row y lies on the map, and the rows it steps over: one, or (joined, on the map) it and the
    // tile's rows on the map after it, min(rows_left, ih - y)
    logic        on_map;
    logic [12:0] to_end;
    logic [11:0] run, step;
    assign on_map = y >= 0 && y < $signed({2'b00, ih});
    assign to_end = 13'(ih) - 13'(y);
    assign run = 13'(rows_left) < to_end ? rows_left : to_end[11:0];
    assign step = (joined && on_map) ? run : 12'd1;
    assign kword = kbase + (IAW+1)'(word);

    // streams of a post op: bit s set when stream s (src0 -> input set 0, src1 -> input set 1
    // (or the weight buffer for POST_IXG), src2 -> weight buffer) is read
    logic [2:0] p_need;
    always_comb begin
        case (p_op)
            POST_IXG:      p_need = 3'b011;
            POST_IG_POINT: p_need = 3'b011;
            POST_IG_SUM:   p_need = 3'b000;
            POST_IG_FINAL: p_need = 3'b111;
            default:       p_need = 3'b001;
        endcase
    end
    logic p_is_last;   // the stream being issued is the chunk's last
    always_comb begin
        case (p_stream)
            2'd0: p_is_last = p_need[2:1] == 2'b00;
            2'd1: p_is_last = !p_need[2];
            default: p_is_last = 1'b1;
        endcase
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            st <= L_IDLE;
            cmd_valid <= 1'b0;
            ahead <= 1'b0;
            take2 <= 1'b0;
            ptake <= 1'b0;
            bias_take <= 1'b0;
        end else begin
            take2 <= 1'b0;
            ptake <= 1'b0;
            if (take) ahead <= 1'b0;
            bias_take <= 1'b0;
            if (cmd_valid && cmd_ready) cmd_valid <= 1'b0;
            case (st)
                L_IDLE: if (start) begin
                    diag      <= desc.flags[FLAG_DIAG];
                    lanes     <= desc.flags[FLAG_LANES];
                    has_bias  <= desc.flags[FLAG_BIAS];
                    in_kept   <= desc.in_keep != '0;
                    keep_words <= (IAW+1)'(desc.in_keep);
                    m_tiles   <= desc.m_tiles;
                    row_tiles <= desc.row_tiles;
                    n_tiles   <= desc.n_tiles;
                    ih        <= desc.ih;
                    iw        <= IAW'(desc.iw);
                    load_rows <= desc.load_rows;
                    load_rows_last <= desc.load_rows_last;
                    load_step <= desc.load_step;
                    load_lo   <= desc.load_lo;
                    in_block  <= OFF_BITS'(desc.in_block_bytes);
                    in_row    <= OFF_BITS'(desc.in_row_bytes);
                    joined    <= desc.iw == 12'd1 && desc.in_row_bytes == 24'(2 * TN);
                    row_beats <= LEN_BITS'(desc.iw) << $clog2(TN / E);   // a row: iw pixels of TN / E beats
                    w_mt      <= OFF_BITS'(desc.w_mt_bytes);
                    w_nt      <= OFF_BITS'(desc.w_nt_bytes);
                    w_beats   <= LEN_BITS'(desc.w_nt_bytes >> LBB);
                    p_op      <= post.op;
                    p_one     <= post.op != POST_IG_SUM;
                    pch       <= (post.op == POST_IG_POINT || post.op == POST_IG_FINAL) ? LEN_BITS'(CHUNK / 2)
                                                                                     : LEN_BITS'(CHUNK);
                    pset      <= 1'b0;
                    p_src0    <= OFF_BITS'(post.src0);
                    p_src1    <= OFF_BITS'(post.src1);
                    p_src2    <= OFF_BITS'(post.src2);
                    mt <= '0; rt <= '0; k <= '0; set <= 1'b0; bset <= 1'b0; ahead <= 1'b0;
                    mt_in <= OFF_BITS'(desc.in_addr);
                    mt_w <= OFF_BITS'(desc.w_addr);
                    b_off <= OFF_BITS'(desc.b_addr);
                    slots_left <= (desc.slots > 8'd1) ? desc.slots - 1'b1 : '0;
                    in_slot <= OFF_BITS'(desc.in_slot_bytes);
                    slot_in <= OFF_BITS'(desc.in_addr);
                    w0 <= OFF_BITS'(desc.w_addr);
                    b0 <= OFF_BITS'(desc.b_addr);
                    p_left <= post.beats;
                    p_off <= '0;
                    if (kind == JOB_POST) st <= L_POST;
                    else if (kind == JOB_CONV && desc.ky != '0 && desc.kx != '0) st <= L_MT;
                end

                // ---------------- CONV
                L_MT: if ((bias_free || !has_bias) && !cmd_valid) begin
                    // the bias set of this m-tile (bset) is free once the write-back is done with m-tile mt - 2
                    bias_take <= has_bias;
                    if (has_bias) begin
                        cmd_valid <= 1'b1;
                        cmd_off <= b_off;
                        cmd_beats <= LEN_BITS'(TM / E);
                        cmd_user <= user(DEST_BIAS, bset, 1'b0, 1'b0, '0);
                    end
                    // the n-tiles of this m-tile: all, or (DIAG) its own TM / TN blocks, or (LANES) block mt
                    nt <= diag ? 12'(mt * TPB) : '0;
                    k_last <= !diag ? n_tiles - 1'b1
                            : lanes ? '0
                            : (12'(mt * TPB) + 12'(TPB) > n_tiles) ? n_tiles - 12'(mt * TPB) - 1'b1 : 12'(TPB - 1);
                    nt_off <= mt_in;
                    w_off <= mt_w;
                    kbase <= '0;
                    first <= load_lo;
                    first_off <= lo_off;
                    rt <= '0;
                    k <= '0;
                    st <= L_TILE;
                end
                L_TILE: if (!cmd_valid && (!ahead || take)) begin
                    ahead <= 1'b1;
                    if (BACKWARD != 0) ix_pend <= IXW'((nt_off + first_off) >> $clog2(2 * TN));
                    y <= first;
                    row_off <= nt_off + first_off;
                    word <= '0;
                    // a kept input is in the buffer already after m-tile 0
                    rows_left <= (in_kept && mt != '0) ? '0 : last_rt ? load_rows_last : load_rows;
                    st <= L_ROWS;
                end
                L_ROWS: if (!cmd_valid || cmd_ready) begin
                    if (rows_left == '0) begin
                        st <= L_W;
                    end else begin
                        if (on_map) begin
                            cmd_valid <= 1'b1;
                            cmd_off <= row_off;
                            cmd_beats <= joined ? LEN_BITS'(run) << $clog2(TN / E) : row_beats;
                            cmd_user <= in_kept ? user(DEST_INPUT, kword[IAW], 1'b0, 1'b0, kword[IAW-1:0])
                                             : user(DEST_INPUT, set, 1'b0, 1'b0, word);
                        end
                        // joined: this row and the tile's rows on the map after it (one pixel each) in one step
                        y <= y + $signed({2'b00, step});
                        row_off <= joined ? row_off + (OFF_BITS'(step) << $clog2(2 * TN)) : row_off + in_row;
                        word <= joined ? word + IAW'(step) : word + iw;
                        rows_left <= rows_left - step;
                    end
                end
                L_W: if (!cmd_valid || cmd_ready) begin
                    cmd_valid <= 1'b1;
                    cmd_off <= w_off;
                    cmd_beats <= w_beats;
                    cmd_user <= user(DEST_WEIGHT, set, 1'b1, 1'b0, '0);
                    set <= !set;
                    if (k != k_last) begin
                        k <= k + 1'b1;
                        kbase <= kbase + keep_words;
                        nt <= nt + 1'b1;
                        nt_off <= nt_off + in_block;
                        w_off <= w_off + w_nt;
                        st <= L_TILE;
                    end else if (!last_rt) begin
                        k <= '0;
                        kbase <= '0;
                        nt <= diag ? 12'(mt * TPB) : '0;
                        nt_off <= mt_in;
                        w_off <= mt_w;
                        rt <= rt + 1'b1;
                        first <= first + $signed({2'b00, load_step});
                        first_off <= first_off + step_off;
                        st <= L_TILE;
                    end else if (mt + 1'b1 != m_tiles) begin
                        mt <= mt + 1'b1;
                        bset <= !bset;
                        if (diag) mt_in <= nt_off + in_block;
                        mt_w <= mt_w + w_mt;
                        b_off <= b_off + OFF_BITS'(2 * TM);
                        st <= L_MT;
                    end else if (slots_left != '0) begin
                        // a slot job's next slot: m-tile 0 again, at that slot's input
                        slots_left <= slots_left - 1'b1;
                        mt <= '0;
                        bset <= !bset;
                        slot_in <= slot_in + in_slot;
                        mt_in <= slot_in + in_slot;
                        mt_w <= w0;
                        b_off <= b0;
                        st <= L_MT;
                    end else begin
                        st <= L_IDLE;
                    end
                end

                // ---------------- post-processing: chunks of CHUNK beats of each tensor
                L_POST: if (!cmd_valid || cmd_ready) begin
                    if (p_left == '0) begin
                        st <= L_IDLE;
                    end else if (p_one ? free != 2'd0 : free == 2'd2) begin
                        if (p_one) ptake <= 1'b1;
                        else take2 <= 1'b1;
                        p_beats <= (p_left > 24'(pch)) ? pch : LEN_BITS'(p_left);
                        p_stream <= p_need[0] ? 2'd0 : p_need[1] ? 2'd1 : 2'd2;
                        st <= L_PSTREAM;
                    end
                end
                L_PSTREAM: if (!cmd_valid || cmd_ready) begin
                    if (p_need == 3'b000) begin
                        st <= L_POST;   // nothing to read: the chunk is ready at once
                    end else begin
                        cmd_valid <= 1'b1;
                        cmd_beats <= p_beats;
                        case (p_stream)
                            2'd0: begin
                                cmd_off <= p_src0 + p_off;
                                cmd_user <= user(DEST_INPUT, pset, p_is_last, 1'b1, '0);
                            end
                            2'd1: begin
                                cmd_off <= p_src1 + p_off;
                                cmd_user <= (p_op == POST_IXG) ? user(DEST_WEIGHT, pset, p_is_last, 1'b1, '0)
                                            : user(DEST_INPUT, pset, p_is_last, 1'b1, IAW'(CHUNK / 2));
                            end
                            default: begin
                                cmd_off <= p_src2 + p_off;
                                cmd_user <= user(DEST_WEIGHT, pset, p_is_last, 1'b1, '0);
                            end
                        endcase
                        if (p_is_last) st <= L_POST;
                        p_stream <= (p_stream == 2'd0 && p_need[1]) ? 2'd1 : 2'd2;
                    end
                    if (p_is_last || p_need == 3'b000) begin
                        pset <= !pset;
                        p_left <= p_left - 24'(p_beats);
                        p_off <= p_off + OFF_BITS'({p_beats, LBB'(0)});
                    end
                end
                default: st <= L_IDLE;
            endcase
        end
    end

    assign busy = st != L_IDLE || cmd_valid;

    // ---------------------------------------------------------------- beats into the buffers
    logic [1:0]     u_dest;
    logic           u_set, u_end, u_flat;
    logic [IAW-1:0] u_word;
    assign {u_dest, u_set, u_end, u_flat, u_word} = rd_user[4+IAW:0];

    logic [LEN_BITS-1:0] pix;     // pixel (input) or row (weights) of the beat within its command
    logic [TN/E-1:0]     slot;    // which E banks / columns the beat fills
    always_comb begin
        pix = u_flat ? rd_beat : rd_beat >> LG;
        slot = (G == 1 || u_flat) ? (TN/E)'(1) : (TN/E)'(1) << (32'(rd_beat) % G);
    end

    // a CONV tile's beats hold a buffer set from its first beat to its last: the first one waits
    // until the walker has freed a set and takes it
    logic tile_beat, owned, rd_take;
    assign tile_beat = rd_valid && !u_flat && (u_dest == DEST_INPUT || u_dest == DEST_WEIGHT);
    assign rd_ready  = !tile_beat || owned || free != 2'd0;
    assign take      = (tile_beat && !owned && free != 2'd0) || ptake;
    assign rd_take   = rd_valid && rd_ready;
    always_ff @(posedge clk) begin
        if (rst || start) owned <= 1'b0;
        else if (tile_beat && rd_ready) owned <= !(rd_last && u_end);
    end
    // the pixel address of the pending tile's buffer row 0 (its commands are out, at most one tile
    // ahead) becomes its set's when its first beat takes the set: the walker's GATE and UNPOOL read
    // a pixel's pool indices at that address plus its buffer word (plus the job's bias)
    always_ff @(posedge clk) begin
        if (BACKWARD == 0) ix_row0 <= '0;
        else if (tile_beat && !owned && free != 2'd0) ix_row0[(u_set ? IXW : 0) +: IXW] <= ix_pend;
    end

    assign in_data = {G{rd_data}};
    assign w_data  = {G{rd_data}};
    always_comb begin
        in_we   = (rd_take && u_dest == DEST_INPUT) ? slot : '0;
        in_addr = {u_set, u_word} + (IAW+1)'(pix);   // a kept n-tile's rows may cross into set 1
        w_we    = (rd_take && u_dest == DEST_WEIGHT) ? slot : '0;
        w_addr  = {u_set, WAW'(pix)};
        b_we    = rd_take && u_dest == DEST_BIAS;
        b_addr  = (BW'(u_set) << (BW - 1)) | (BW'(rd_beat) & BW'((1 << (BW - 1)) - 1));
    end

    // the walker may start on a tile once its last command's last beat is written
    always_ff @(posedge clk) begin
        if (rst) loaded <= 1'b0;
        else loaded <= (rd_take && rd_last && u_end) || (st == L_PSTREAM && p_need == 3'b000);
    end

    logic unused;
    assign unused = ^{rd_user, nt, pix};
endmodule
