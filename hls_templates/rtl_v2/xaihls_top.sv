// xaihls_top, Engine v2 (docs/engine_v2.md): the accelerator with the interface of
//   int xaihls_top(short *ddr, int method, int target, int steps, int images);
// AXI4-Lite control (ap_ctrl_hs, docs/contract.md) and one AXI4 master of AXI_DATA_WIDTH bits.
//
// The engine is fixed; a network sets only these parameters (xaihls.backends.rtl.v2) and the DDR image:
//   TM, TN           the MAC array (TM output x TN input channels a cycle); TN a multiple of the
//                    E = AXI_DATA_WIDTH / 16 elements of a beat, TM a multiple of TN; TN / E and
//                    TM / TN powers of two
//   IN_DEPTH         words per input-buffer bank and set (a power of two)
//   OUT_DEPTH        positions of a row tile: accumulators per lane (a power of two)
//   W_DEPTH          weight rows (of TN weights) per set: kernel taps x TM (a power of two)
//   MASK_BITS, INDEX_ENTRIES, INDEX_BITS   the kept ReLU bits and pool indices
//   INPUT_ELEMS      the largest blocked input the integrated-gradients sum holds (0: no sums, no IG runs)
//   BACKWARD         0: inference-only (no backward path, kept state or post-processing beyond the copy)
//   W_DIAG           1: jobs whose weights are stored one a lane (w_diag) run; 0: a Program without them
//                    (the planner builds what its Program uses; a w_diag job would read its rows as dense)
//   OFF_BITS         DDR bytes the Program may use: 2**OFF_BITS

import xaihls_contract_pkg::*;
import xaihls_engine_pkg::*;

module xaihls_top #(
    parameter int TM              = 8,
    parameter int TN              = 4,
    parameter int AXI_DATA_WIDTH  = 64,
    parameter int IN_DEPTH        = 1024,
    parameter int OUT_DEPTH       = 256,
    parameter int W_DEPTH         = 128,
    parameter int MASK_BITS       = 4096,
    parameter int INDEX_ENTRIES   = 1024,
    parameter int INDEX_BITS      = 2,
    parameter int INPUT_ELEMS     = 1024,
    parameter int BACKWARD        = 1,
    parameter int W_DIAG          = 0,
    parameter int OFF_BITS        = 22,
    parameter int PROFILE_DEPTH   = 512,
    parameter int AXI_ADDR_WIDTH  = 64,
    parameter int AXI_ID_WIDTH    = 1,
    parameter int AXIL_ADDR_WIDTH = 12
) (
    input  logic                         clk,
    input  logic                         rst,
    output logic                         interrupt,

    input  logic [AXIL_ADDR_WIDTH-1:0]   s_axil_awaddr,
    input  logic [2:0]                   s_axil_awprot,
    input  logic                         s_axil_awvalid,
    output logic                         s_axil_awready,
    input  logic [31:0]                  s_axil_wdata,
    input  logic [3:0]                   s_axil_wstrb,
    input  logic                         s_axil_wvalid,
    output logic                         s_axil_wready,
    output logic [1:0]                   s_axil_bresp,
    output logic                         s_axil_bvalid,
    input  logic                         s_axil_bready,
    input  logic [AXIL_ADDR_WIDTH-1:0]   s_axil_araddr,
    input  logic [2:0]                   s_axil_arprot,
    input  logic                         s_axil_arvalid,
    output logic                         s_axil_arready,
    output logic [31:0]                  s_axil_rdata,
    output logic [1:0]                   s_axil_rresp,
    output logic                         s_axil_rvalid,
    input  logic                         s_axil_rready,

    output logic [AXI_ID_WIDTH-1:0]      m_axi_awid,
    output logic [AXI_ADDR_WIDTH-1:0]    m_axi_awaddr,
    output logic [7:0]                   m_axi_awlen,
    output logic [2:0]                   m_axi_awsize,
    output logic [1:0]                   m_axi_awburst,
    output logic                         m_axi_awlock,
    output logic [3:0]                   m_axi_awcache,
    output logic [2:0]                   m_axi_awprot,
    output logic                         m_axi_awvalid,
    input  logic                         m_axi_awready,
    output logic [AXI_DATA_WIDTH-1:0]    m_axi_wdata,
    output logic [AXI_DATA_WIDTH/8-1:0]  m_axi_wstrb,
    output logic                         m_axi_wlast,
    output logic                         m_axi_wvalid,
    input  logic                         m_axi_wready,
    input  logic [AXI_ID_WIDTH-1:0]      m_axi_bid,
    input  logic [1:0]                   m_axi_bresp,
    input  logic                         m_axi_bvalid,
    output logic                         m_axi_bready,
    output logic [AXI_ID_WIDTH-1:0]      m_axi_arid,
    output logic [AXI_ADDR_WIDTH-1:0]    m_axi_araddr,
    output logic [7:0]                   m_axi_arlen,
    output logic [2:0]                   m_axi_arsize,
    output logic [1:0]                   m_axi_arburst,
    output logic                         m_axi_arlock,
    output logic [3:0]                   m_axi_arcache,
    output logic [2:0]                   m_axi_arprot,
    output logic                         m_axi_arvalid,
    input  logic                         m_axi_arready,
    input  logic [AXI_ID_WIDTH-1:0]      m_axi_rid,
    input  logic [AXI_DATA_WIDTH-1:0]    m_axi_rdata,
    input  logic [1:0]                   m_axi_rresp,
    input  logic                         m_axi_rlast,
    input  logic                         m_axi_rvalid,
    output logic                         m_axi_rready
);
    localparam int E           = AXI_DATA_WIDTH / 16;
    localparam int G           = TN / E;
    localparam int IAW         = $clog2(IN_DEPTH);
    localparam int WAW         = $clog2(W_DEPTH);
    localparam int OAW         = $clog2(OUT_DEPTH);
    localparam int IG_WORDS    = BACKWARD != 0 ? INPUT_ELEMS / E : 0;
    localparam int AAW         = $clog2(OUT_DEPTH + IG_WORDS);
    localparam int MASK_WORDS  = BACKWARD != 0 ? MASK_BITS / E : 1;
    localparam int MKW         = (MASK_WORDS > 1) ? $clog2(MASK_WORDS) : 1;
    localparam int INDEX_WORDS = BACKWARD != 0 ? INDEX_ENTRIES / TN : 1;
    localparam int IXW         = (INDEX_WORDS > 1) ? $clog2(INDEX_WORDS) : 1;
    localparam int CHUNK_A     = (IN_DEPTH < W_DEPTH) ? IN_DEPTH : W_DEPTH;
    localparam int CHUNK       = (CHUNK_A < OUT_DEPTH) ? CHUNK_A : OUT_DEPTH;
    localparam int LEN_BITS    = 20;
    localparam int USER_WIDTH  = 5 + IAW;
    localparam int BW          = $clog2(2 * TM / E);
    localparam int SB          = $clog2(E + 1);
    localparam int PW          = $clog2(PROFILE_DEPTH);

    // ---------------------------------------------------------------- parameter checks
    initial begin
        if (E * 16 != AXI_DATA_WIDTH || !(E == 4 || E == 8 || E == 16 || E == 32))
            $error("xaihls_top: AXI_DATA_WIDTH %0d: 64, 128, 256 or 512 bits", AXI_DATA_WIDTH);
        if (TN % E != 0 || (1 << $clog2(G)) != G)
            $error("xaihls_top: TN = %0d must be E = %0d times a power of two", TN, E);
        if (TM % TN != 0 || (1 << $clog2(TM / TN)) != TM / TN)
            $error("xaihls_top: TM = %0d must be TN = %0d times a power of two", TM, TN);
        if ((1 << IAW) != IN_DEPTH || (1 << OAW) != OUT_DEPTH || (1 << WAW) != W_DEPTH)
            $error("xaihls_top: IN_DEPTH, OUT_DEPTH and W_DEPTH must be powers of two");
        if (W_DEPTH < TM) $error("xaihls_top: W_DEPTH %0d holds less than one pass of TM = %0d rows", W_DEPTH, TM);
        if (BACKWARD != 0 && (MASK_BITS % E != 0 || INDEX_ENTRIES % TN != 0 || INPUT_ELEMS % TN != 0))
            $error("xaihls_top: MASK_BITS, INDEX_ENTRIES and INPUT_ELEMS must be multiples of E and TN");
        if (OFF_BITS < 12 || OFF_BITS > 32) $error("xaihls_top: OFF_BITS %0d outside 12..32", OFF_BITS);
        // a tile's pixel address (byte address / 2TN, mod 2**IXW) stays exact through the DDR offset's wrap
        if (BACKWARD != 0 && OFF_BITS < IXW + $clog2(2 * TN))
            $error("xaihls_top: OFF_BITS %0d below the index words' %0d bits plus log2(2 TN)", OFF_BITS, IXW);
        if (INDEX_BITS < 1 || INDEX_BITS > 8) $error("xaihls_top: INDEX_BITS %0d outside 1..8", INDEX_BITS);
    end

    // ---------------------------------------------------------------- control registers
    logic start, busy, done, err_clear, rd_err, wr_err;
    logic [63:0] ddr_base;
    logic [31:0] method, target_arg, steps, images, status, run_cycles, profile_count, prof_rdata, prof_wdata;
    logic [PW-1:0] prof_raddr, prof_waddr;
    logic prof_we;

    xaihls_axil_regs #(.ADDR_WIDTH(AXIL_ADDR_WIDTH), .PROFILE_DEPTH(PROFILE_DEPTH)) u_regs (
        .clk, .rst,
        .s_axil_awaddr, .s_axil_awprot, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb,
        .s_axil_wvalid, .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr,
        .s_axil_arprot, .s_axil_arvalid, .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid,
        .s_axil_rready, .interrupt,
        .start, .ddr_base, .method, .target(target_arg), .steps, .images, .busy, .done, .status, .run_cycles,
        .profile_count, .profile_addr(prof_raddr), .profile_data(prof_rdata)
    );

    xaihls_sdp_ram #(.WIDTH(32), .DEPTH(PROFILE_DEPTH)) u_profile (
        .clk, .we(prof_we), .waddr(prof_waddr), .wdata(prof_wdata), .re(1'b1), .raddr(prof_raddr),
        .rdata(prof_rdata)
    );

    // ---------------------------------------------------------------- AXI movers
    logic                    rd_cmd_valid, rd_cmd_ready, rd_valid, rd_ready, rd_first, rd_last;
    logic [OFF_BITS-1:0]     rd_cmd_off;
    logic [LEN_BITS-1:0]     rd_cmd_beats, rd_beat;
    logic [USER_WIDTH-1:0]   rd_cmd_user, rd_user;
    logic [AXI_DATA_WIDTH-1:0] rd_data;
    logic                    wr_cmd_valid, wr_cmd_ready, wr_valid, wr_ready, wr_idle;
    logic [OFF_BITS-1:0]     wr_cmd_off;
    logic [LEN_BITS-1:0]     wr_cmd_beats;
    logic [AXI_DATA_WIDTH-1:0] wr_data;
    logic [AXI_DATA_WIDTH/8-1:0] wr_strb;

    xaihls_rd_dma #(.DATA_WIDTH(AXI_DATA_WIDTH), .ADDR_WIDTH(AXI_ADDR_WIDTH), .ID_WIDTH(AXI_ID_WIDTH),
                    .OFF_BITS(OFF_BITS), .LEN_BITS(LEN_BITS), .USER_WIDTH(USER_WIDTH)) u_rd (
        .clk, .rst, .base(AXI_ADDR_WIDTH'(ddr_base)), .clear(err_clear),
        .cmd_valid(rd_cmd_valid), .cmd_ready(rd_cmd_ready), .cmd_off(rd_cmd_off), .cmd_beats(rd_cmd_beats),
        .cmd_user(rd_cmd_user), .out_valid(rd_valid), .out_ready(rd_ready), .out_data(rd_data),
        .out_user(rd_user), .out_beat(rd_beat), .out_first(rd_first), .out_last(rd_last), .err(rd_err),
        .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock, .m_axi_arcache,
        .m_axi_arprot, .m_axi_arvalid, .m_axi_arready, .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast,
        .m_axi_rvalid, .m_axi_rready
    );

    xaihls_wr_dma #(.DATA_WIDTH(AXI_DATA_WIDTH), .ADDR_WIDTH(AXI_ADDR_WIDTH), .ID_WIDTH(AXI_ID_WIDTH),
                    .OFF_BITS(OFF_BITS), .LEN_BITS(LEN_BITS)) u_wr (
        .clk, .rst, .base(AXI_ADDR_WIDTH'(ddr_base)), .clear(err_clear),
        .cmd_valid(wr_cmd_valid), .cmd_ready(wr_cmd_ready), .cmd_off(wr_cmd_off), .cmd_beats(wr_cmd_beats),
        .s_valid(wr_valid), .s_ready(wr_ready), .s_data(wr_data), .s_strb(wr_strb), .idle(wr_idle), .err(wr_err),
        .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock, .m_axi_awcache,
        .m_axi_awprot, .m_axi_awvalid, .m_axi_awready, .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid,
        .m_axi_wready, .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
    );

    // ---------------------------------------------------------------- controller and decode
    logic job_start, units_busy;
    logic [1:0] job_kind, mode;
    xaihls_contract_pkg::descriptor_t desc;
    xaihls_engine_pkg::post_cfg_t post;
    logic [15:0] target, span, sh_ow;
    logic [OFF_BITS-1:0] lo_off, step_off, oyo_rb, osy_rb;
    logic [2*IXW-1:0] ix_row0;
    logic [SB-1:0] sat;
    logic c_rd_cmd_valid, c_rd_ready, c_wr_cmd_valid, c_wr_valid;
    logic [OFF_BITS-1:0] c_rd_cmd_off, c_wr_cmd_off;
    logic [LEN_BITS-1:0] c_rd_cmd_beats, c_wr_cmd_beats;
    logic [AXI_DATA_WIDTH-1:0] c_wr_data;

    logic to_ctrl;   // the read beat is the controller's
    assign to_ctrl = rd_user[USER_WIDTH-1 -: 2] == 2'd3;

    xaihls_ctrl #(.TM(TM), .TN(TN), .E(E), .MASK_BITS(MASK_BITS), .INDEX_ENTRIES(INDEX_ENTRIES),
                  .INPUT_ELEMS(INPUT_ELEMS), .BACKWARD(BACKWARD), .OFF_BITS(OFF_BITS), .LEN_BITS(LEN_BITS),
.IXW(IXW), .PROFILE_DEPTH(PROFILE_DEPTH), .SB(SB)) u_ctrl (
        .clk, .rst, .start, .ddr_base_lo(ddr_base[5:0]), .method, .target_arg, .steps, .images, .busy, .done, .status, .run_cycles,
        .profile_count, .prof_we, .prof_waddr, .prof_wdata, .rd_err, .wr_err, .err_clear,
        .job_start, .job_kind, .desc, .post, .mode, .target, .lo_off, .step_off, .oyo_rb,
        .osy_rb, .span, .sh_ow, .units_busy, .sat,
        .rd_cmd_valid(c_rd_cmd_valid), .rd_cmd_ready(rd_cmd_ready && c_rd_cmd_valid), .rd_cmd_off(c_rd_cmd_off),
        .rd_cmd_beats(c_rd_cmd_beats), .rd_valid(rd_valid && to_ctrl), .rd_ready(c_rd_ready), .rd_data,
        .rd_beat, .rd_last,
        .wr_cmd_valid(c_wr_cmd_valid), .wr_cmd_ready(wr_cmd_ready && c_wr_cmd_valid), .wr_cmd_off(c_wr_cmd_off),
        .wr_cmd_beats(c_wr_cmd_beats), .wr_valid(c_wr_valid), .wr_ready(wr_ready && c_wr_valid),
        .wr_data(c_wr_data), .wr_idle
    );

    // ---------------------------------------------------------------- hand-over tokens (reset per job)
    logic ld_take, ld_take2, ld_loaded, ld_bias_take, wk_loaded_take, wk_free_give, wk_free_give2, wk_out_take,
          wk_out_give, wb_out_take, wb_out_give, wb_bias_give;
    logic [1:0] tok_free, tok_loaded, tok_out_free, tok_out_done, tok_bias;
    always_ff @(posedge clk) begin
        if (rst || job_start) begin
            tok_free <= 2'd2;
            tok_loaded <= 2'd0;
            tok_out_free <= 2'd2;
            tok_out_done <= 2'd0;
            tok_bias <= 2'd2;
        end else begin
            tok_free <= tok_free - (ld_take2 ? 2'd2 : 2'(ld_take)) + (wk_free_give2 ? 2'd2 : 2'(wk_free_give));
            tok_loaded <= tok_loaded + 2'(ld_loaded) - 2'(wk_loaded_take);
            tok_out_free <= tok_out_free - 2'(wk_out_take) + 2'(wb_out_give);
            tok_out_done <= tok_out_done + 2'(wk_out_give) - 2'(wb_out_take);
            tok_bias <= tok_bias - 2'(ld_bias_take) + 2'(wb_bias_give);
        end
    end

    // ---------------------------------------------------------------- loader and buffers
    logic l_cmd_valid, ld_rd_ready;
    logic [OFF_BITS-1:0] l_cmd_off;
    logic [LEN_BITS-1:0] l_cmd_beats;
    logic [USER_WIDTH-1:0] l_cmd_user;
    logic ld_busy, wk_busy, wb_busy;
    logic [G-1:0] in_we, w_we;
    logic [IAW:0] in_waddr, in_raddr;
    logic [WAW:0] w_waddr, w_raddr;
    logic [TN*16-1:0] in_wdata, w_wdata, in_rdata, w_rdata;
    logic b_we;
    logic [BW-1:0] b_waddr, b_raddr;
    logic [E*16-1:0] b_rdata;

    xaihls_loader #(.TM(TM), .TN(TN), .E(E), .IN_DEPTH(IN_DEPTH), .W_DEPTH(W_DEPTH), .CHUNK(CHUNK),
                    .OFF_BITS(OFF_BITS), .LEN_BITS(LEN_BITS), .USER_WIDTH(USER_WIDTH), .IXW(IXW),
                    .BACKWARD(BACKWARD)) u_loader (
        .clk, .rst, .start(job_start), .kind(job_kind), .desc, .post, .lo_off, .step_off, .busy(ld_busy),
        .free(tok_free), .take(ld_take), .take2(ld_take2), .loaded(ld_loaded), .bias_free(tok_bias != 2'd0),
        .bias_take(ld_bias_take), .ix_row0,
        .cmd_valid(l_cmd_valid), .cmd_ready(rd_cmd_ready && !c_rd_cmd_valid), .cmd_off(l_cmd_off),
        .cmd_beats(l_cmd_beats), .cmd_user(l_cmd_user),
        .rd_valid(rd_valid && !to_ctrl), .rd_ready(ld_rd_ready), .rd_data, .rd_user, .rd_beat, .rd_last,
        .in_we, .in_addr(in_waddr), .in_data(in_wdata), .w_we, .w_addr(w_waddr), .w_data(w_wdata),
        .b_we, .b_addr(b_waddr)
    );

    assign rd_cmd_valid = c_rd_cmd_valid || l_cmd_valid;
    assign rd_cmd_off   = c_rd_cmd_valid ? c_rd_cmd_off : l_cmd_off;
    assign rd_cmd_beats = c_rd_cmd_valid ? c_rd_cmd_beats : l_cmd_beats;
    assign rd_cmd_user  = c_rd_cmd_valid ? {2'd3, (USER_WIDTH-2)'(0)} : l_cmd_user;
    assign rd_ready     = to_ctrl ? c_rd_ready : ld_rd_ready;

    xaihls_sdp_ram #(.WIDTH(TN*16), .DEPTH(2*IN_DEPTH), .SEGMENTS(G)) u_inbuf (
        .clk, .we(in_we), .waddr(in_waddr), .wdata(in_wdata), .re(1'b1), .raddr(in_raddr), .rdata(in_rdata)
    );
    xaihls_sdp_ram #(.WIDTH(TN*16), .DEPTH(2*W_DEPTH), .SEGMENTS(G)) u_wbuf (
        .clk, .we(w_we), .waddr(w_waddr), .wdata(w_wdata), .re(1'b1), .raddr(w_raddr), .rdata(w_rdata)
    );
    xaihls_sdp_ram #(.WIDTH(E*16), .DEPTH(2*TM/E)) u_bias (
        .clk, .we(b_we), .waddr(b_waddr), .wdata(rd_data), .re(1'b1), .raddr(b_raddr), .rdata(b_rdata)
    );

    // ---------------------------------------------------------------- walker and MAC array
    logic [IXW-1:0] ix_raddr, ix_waddr;
    logic [TN*(INDEX_BITS+1)-1:0] ix_rdata, ix_wdata;   // an entry: {alive bit, window position}
    logic w_shift, swap, post_mode, acc_zero, acc_we, out_we, out_set, rd_set;
    logic [G-1:0] ix_we;
    logic [TN-1:0] w_mask;
    logic [TN*16-1:0] x;
    logic [TN-1:0] x_keep;
    logic [3:0] x_shift;
    logic [E*18-1:0] post_a, post_b;
    logic [AAW-1:0] acc_addr;
    logic [OAW-1:0] out_addr, wb_raddr;
    logic [TM*48-1:0] wb_rdata;

    xaihls_walker #(.TM(TM), .TN(TN), .E(E), .IN_DEPTH(IN_DEPTH), .W_DEPTH(W_DEPTH), .OUT_DEPTH(OUT_DEPTH),
                    .IG_WORDS(IG_WORDS), .CHUNK(CHUNK), .INDEX_BITS(INDEX_BITS), .IXW(IXW), .BACKWARD(BACKWARD),
                    .W_DIAG(W_DIAG))
    u_walker (
        .clk, .rst, .start(job_start), .kind(job_kind), .desc, .post, .mode, .ix_row0, .busy(wk_busy),
        .loaded(tok_loaded), .loaded_take(wk_loaded_take), .free_give(wk_free_give), .free_give2(wk_free_give2),
        .out_free(tok_out_free), .out_take(wk_out_take), .out_give(wk_out_give),
        .w_raddr, .w_rdata, .w_mask, .in_raddr, .in_rdata, .ix_raddr, .ix_rdata,
        .w_shift, .swap, .x, .x_keep, .x_shift, .post_mode, .post_a, .post_b, .acc_zero, .acc_addr, .acc_we,
        .out_we, .out_set, .out_addr
    );

    xaihls_mac_array #(.TM(TM), .TN(TN), .E(E), .OUT_DEPTH(OUT_DEPTH), .IG_WORDS(IG_WORDS), .W_DIAG(W_DIAG)) u_mac (
        .clk, .w_row(w_rdata), .w_mask, .w_shift, .swap, .x, .x_keep, .x_shift, .post(post_mode), .post_a, .post_b,
        .acc_zero,
        .acc_addr, .acc_we, .out_we, .out_set, .out_addr, .rd_set, .rd_addr(wb_raddr), .rd_data(wb_rdata)
    );

    // ---------------------------------------------------------------- kept state (backward path)
    logic [MKW-1:0] mask_raddr, mask_waddr;
    logic [E-1:0] mask_rdata, mask_wdata;
    logic mask_we;
    if (BACKWARD != 0) begin : g_kept
        xaihls_sdp_ram #(.WIDTH(E), .DEPTH(MASK_WORDS)) u_mask (
            .clk, .we(mask_we), .waddr(mask_waddr), .wdata(mask_wdata), .re(1'b1), .raddr(mask_raddr),
            .rdata(mask_rdata)
        );
        xaihls_sdp_ram #(.WIDTH(TN*(INDEX_BITS+1)), .DEPTH(INDEX_WORDS), .SEGMENTS(G)) u_index (
            .clk, .we(ix_we), .waddr(ix_waddr), .wdata(ix_wdata), .re(1'b1), .raddr(ix_raddr), .rdata(ix_rdata)
        );
    end else begin : g_no_kept
        // the inference-only build keeps no state: the units' kept-state ports go nowhere
        assign mask_rdata = '0;
        assign ix_rdata = '0;
        logic unused_kept;
        assign unused_kept = ^{ix_raddr, ix_waddr, ix_wdata, ix_we, mask_raddr, mask_waddr, mask_wdata, mask_we};
    end

    // ---------------------------------------------------------------- write-back
    logic wb_cmd_valid, wb_wr_valid;
    logic [OFF_BITS-1:0] wb_cmd_off;
    logic [LEN_BITS-1:0] wb_cmd_beats;
    logic [E*16-1:0] wb_wr_data;
    logic [2*E-1:0] wb_wr_strb;

    xaihls_writeback #(.TM(TM), .TN(TN), .E(E), .OUT_DEPTH(OUT_DEPTH), .CHUNK(CHUNK), .MASK_WORDS(MASK_WORDS),
                       .INDEX_BITS(INDEX_BITS), .IXW(IXW), .BACKWARD(BACKWARD), .OFF_BITS(OFF_BITS),
                       .LEN_BITS(LEN_BITS)) u_wb (
        .clk, .rst, .start(job_start), .kind(job_kind), .desc, .post, .mode, .target, .oyo_rb, .osy_rb, .span,
        .sh_ow, .busy(wb_busy),
        .out_ready(tok_out_done), .out_take(wb_out_take), .out_give(wb_out_give), .bias_give(wb_bias_give),
        .rd_set, .rd_addr(wb_raddr), .rd_data(wb_rdata), .b_raddr, .b_rdata,
        .mask_raddr, .mask_rdata, .mask_we, .mask_waddr, .mask_wdata, .ix_we, .ix_waddr, .ix_wdata,
        .cmd_valid(wb_cmd_valid), .cmd_ready(wr_cmd_ready && !c_wr_cmd_valid), .cmd_off(wb_cmd_off),
        .cmd_beats(wb_cmd_beats), .wr_valid(wb_wr_valid), .wr_ready(wr_ready && !c_wr_valid), .wr_data(wb_wr_data),
        .wr_strb(wb_wr_strb), .sat
    );

    assign wr_cmd_valid = c_wr_cmd_valid || wb_cmd_valid;
    assign wr_cmd_off   = c_wr_cmd_valid ? c_wr_cmd_off : wb_cmd_off;
    assign wr_cmd_beats = c_wr_cmd_valid ? c_wr_cmd_beats : wb_cmd_beats;
    assign wr_valid     = c_wr_valid || wb_wr_valid;
    assign wr_data      = c_wr_valid ? c_wr_data : wb_wr_data;
    assign wr_strb      = c_wr_valid ? '1 : wb_wr_strb;

    assign units_busy = ld_busy || wk_busy || wb_busy;

    logic unused;
    assign unused = ^{rd_first};
endmodule
