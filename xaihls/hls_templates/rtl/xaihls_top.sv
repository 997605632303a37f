// xaihls_top: the accelerator, with the interface of
//   int xaihls_top(short *ddr, int method, int target, int steps);
// AXI4-Lite control (ap_ctrl_hs, docs/program.md) and one 64-bit AXI4 master.
//
// The engine is fixed; a network only sets the parameters below (written per network by
// xaihls.backends.rtl as xaihls_params.svh / tool parameter overrides) and the DDR image.
//   TM, TN         the MAC array (TM output x TN input channels a cycle); TM a power of two
//   IN_DEPTH       16-bit words per input-buffer bank (a multiple of 4)
//   OUT_DEPTH      accumulators per output lane (a power of two)
//   W_DEPTH        taps per weight bank
//   MASK_BITS, INDEX_ENTRIES, INDEX_BITS   the on-chip ReLU-bit and pool-index memories
//   MAX_INPUT_ELEMS  the integrated-gradients sum memory (elements of the input)
//   BACKWARD       0: inference-only build (no backward path, no kept-state memories,
//                  no post-processing beyond the prediction)

import xaihls_pkg::*;

module xaihls_top #(
    parameter int TM              = 4,
    parameter int TN              = 2,
    parameter int IN_DEPTH        = 1024,
    parameter int OUT_DEPTH       = 256,
    parameter int W_DEPTH         = 16,
    parameter int MASK_BITS       = 4096,
    parameter int INDEX_ENTRIES   = 1024,
    parameter int INDEX_BITS      = 2,
    parameter int MAX_INPUT_ELEMS = 4096,
    parameter int BACKWARD        = 1,
    parameter int PROFILE_DEPTH   = 512,
    parameter int AXI_ADDR_WIDTH  = 64,
    parameter int AXI_ID_WIDTH    = 1,
    parameter int AXIL_ADDR_WIDTH = 12
) (
    input  logic                       clk,
    input  logic                       rst,
    output logic                       interrupt,

    input  logic [AXIL_ADDR_WIDTH-1:0] s_axil_awaddr,
    input  logic [2:0]                 s_axil_awprot,
    input  logic                       s_axil_awvalid,
    output logic                       s_axil_awready,
    input  logic [31:0]                s_axil_wdata,
    input  logic [3:0]                 s_axil_wstrb,
    input  logic                       s_axil_wvalid,
    output logic                       s_axil_wready,
    output logic [1:0]                 s_axil_bresp,
    output logic                       s_axil_bvalid,
    input  logic                       s_axil_bready,
    input  logic [AXIL_ADDR_WIDTH-1:0] s_axil_araddr,
    input  logic [2:0]                 s_axil_arprot,
    input  logic                       s_axil_arvalid,
    output logic                       s_axil_arready,
    output logic [31:0]                s_axil_rdata,
    output logic [1:0]                 s_axil_rresp,
    output logic                       s_axil_rvalid,
    input  logic                       s_axil_rready,

    output logic [AXI_ID_WIDTH-1:0]    m_axi_awid,
    output logic [AXI_ADDR_WIDTH-1:0]  m_axi_awaddr,
    output logic [7:0]                 m_axi_awlen,
    output logic [2:0]                 m_axi_awsize,
    output logic [1:0]                 m_axi_awburst,
    output logic                       m_axi_awlock,
    output logic [3:0]                 m_axi_awcache,
    output logic [2:0]                 m_axi_awprot,
    output logic                       m_axi_awvalid,
    input  logic                       m_axi_awready,
    output logic [63:0]                m_axi_wdata,
    output logic [7:0]                 m_axi_wstrb,
    output logic                       m_axi_wlast,
    output logic                       m_axi_wvalid,
    input  logic                       m_axi_wready,
    input  logic [AXI_ID_WIDTH-1:0]    m_axi_bid,
    input  logic [1:0]                 m_axi_bresp,
    input  logic                       m_axi_bvalid,
    output logic                       m_axi_bready,
    output logic [AXI_ID_WIDTH-1:0]    m_axi_arid,
    output logic [AXI_ADDR_WIDTH-1:0]  m_axi_araddr,
    output logic [7:0]                 m_axi_arlen,
    output logic [2:0]                 m_axi_arsize,
    output logic [1:0]                 m_axi_arburst,
    output logic                       m_axi_arlock,
    output logic [3:0]                 m_axi_arcache,
    output logic [2:0]                 m_axi_arprot,
    output logic                       m_axi_arvalid,
    input  logic                       m_axi_arready,
    input  logic [AXI_ID_WIDTH-1:0]    m_axi_rid,
    input  logic [63:0]                m_axi_rdata,
    input  logic [1:0]                 m_axi_rresp,
    input  logic                       m_axi_rlast,
    input  logic                       m_axi_rvalid,
    output logic                       m_axi_rready,

    // debug: the controller is running a descriptor (for waveforms)
    output logic                       dbg_busy
);

    initial begin
        if (TM < 1 || TM > 128 || (TM & (TM - 1)) != 0 || TN < 1 || TN > 128 || (TN & (TN - 1)) != 0)
            $error("xaihls_top: TM %0d and TN %0d must be powers of two up to 128 (instance %m)", TM, TN);
        if (BACKWARD != 0 && BACKWARD != 1) $error("xaihls_top: BACKWARD must be 0 or 1 (instance %m)");
    end

    localparam int PW = $clog2(PROFILE_DEPTH);

    // ---------------------------------------------------------------- control registers
    logic start, busy, done;
    logic [63:0] ddr_base;
    logic [31:0] method, target, steps, status, run_cycles, profile_count;
    logic [PW-1:0] prof_raddr, prof_waddr;
    logic [31:0] prof_rdata, prof_wdata;
    logic prof_we;

    xaihls_axil_regs #(.ADDR_WIDTH(AXIL_ADDR_WIDTH), .PROFILE_DEPTH(PROFILE_DEPTH)) u_regs (
        .clk, .rst,
        .s_axil_awaddr, .s_axil_awprot, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb,
        .s_axil_wvalid, .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr,
        .s_axil_arprot, .s_axil_arvalid, .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid,
        .s_axil_rready, .interrupt,
        .start, .ddr_base, .method, .target, .steps, .busy, .done, .status, .run_cycles, .profile_count,
        .profile_addr(prof_raddr), .profile_data(prof_rdata)
    );

    xaihls_sdp_ram #(.WIDTH(32), .DEPTH(PROFILE_DEPTH)) u_profile (
        .clk, .we(prof_we), .waddr(prof_waddr), .wdata(prof_wdata), .re(1'b1), .raddr(prof_raddr),
        .rdata(prof_rdata)
    );

    // ---------------------------------------------------------------- AXI movers
    logic rd_cmd_valid, rd_cmd_ready, rd_valid, rd_ready, rd_first, rd_last, rd_busy, rd_err;
    logic [31:0] rd_cmd_off;
    logic [23:0] rd_cmd_words;
    logic [15:0] rd_cmd_user, rd_user, rd_beat;
    logic [63:0] rd_data;
    logic [1:0] rd_lead;
    logic wr_cmd_valid, wr_cmd_ready, wr_valid, wr_ready, wr_idle, wr_err, err_clear;
    logic [31:0] wr_cmd_off;
    logic [23:0] wr_cmd_words;
    logic [63:0] wr_data;
    logic [7:0] wr_strb;

    xaihls_rd_dma #(.ADDR_WIDTH(AXI_ADDR_WIDTH), .ID_WIDTH(AXI_ID_WIDTH)) u_rd (
        .clk, .rst, .base(AXI_ADDR_WIDTH'(ddr_base)), .clear(err_clear),
        .cmd_valid(rd_cmd_valid), .cmd_ready(rd_cmd_ready), .cmd_off(rd_cmd_off), .cmd_words(rd_cmd_words),
        .cmd_user(rd_cmd_user),
        .out_valid(rd_valid), .out_ready(rd_ready), .out_data(rd_data), .out_user(rd_user), .out_beat(rd_beat),
        .out_lead(rd_lead), .out_first(rd_first), .out_last(rd_last), .busy(rd_busy), .err(rd_err),
        .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock, .m_axi_arcache,
        .m_axi_arprot, .m_axi_arvalid, .m_axi_arready, .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast,
        .m_axi_rvalid, .m_axi_rready
    );

    xaihls_wr_dma #(.ADDR_WIDTH(AXI_ADDR_WIDTH), .ID_WIDTH(AXI_ID_WIDTH)) u_wr (
        .clk, .rst, .base(AXI_ADDR_WIDTH'(ddr_base)), .clear(err_clear),
        .cmd_valid(wr_cmd_valid), .cmd_ready(wr_cmd_ready), .cmd_off(wr_cmd_off), .cmd_words(wr_cmd_words),
        .s_valid(wr_valid), .s_ready(wr_ready), .s_data(wr_data), .s_strb(wr_strb), .idle(wr_idle), .err(wr_err),
        .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock, .m_axi_awcache,
        .m_axi_awprot, .m_axi_awvalid, .m_axi_awready, .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid,
        .m_axi_wready, .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
    );

    // ---------------------------------------------------------------- clients
    logic [1:0] rd_owner, wr_owner;
    // controller
    logic c_rd_cmd_valid, c_rd_ready, c_wr_cmd_valid, c_wr_valid;
    logic [31:0] c_rd_cmd_off, c_wr_cmd_off;
    logic [23:0] c_rd_cmd_words, c_wr_cmd_words;
    logic [63:0] c_wr_data;
    logic [7:0] c_wr_strb;
    // engine
    logic e_rd_cmd_valid, e_rd_ready, e_wr_cmd_valid, e_wr_valid;
    logic [31:0] e_rd_cmd_off, e_wr_cmd_off;
    logic [23:0] e_rd_cmd_words, e_wr_cmd_words;
    logic [15:0] e_rd_cmd_user;
    logic [63:0] e_wr_data;
    logic [7:0] e_wr_strb;
    // post
    logic p_rd_cmd_valid, p_rd_ready, p_wr_cmd_valid, p_wr_valid;
    logic [31:0] p_rd_cmd_off, p_wr_cmd_off;
    logic [23:0] p_rd_cmd_words, p_wr_cmd_words;
    logic [15:0] p_rd_cmd_user;
    logic [63:0] p_wr_data;
    logic [7:0] p_wr_strb;

    always_comb begin
        case (rd_owner)
            2'd1: begin rd_cmd_valid = e_rd_cmd_valid; rd_cmd_off = e_rd_cmd_off; rd_cmd_words = e_rd_cmd_words;
                        rd_cmd_user = e_rd_cmd_user; rd_ready = e_rd_ready; end
            2'd2: begin rd_cmd_valid = p_rd_cmd_valid; rd_cmd_off = p_rd_cmd_off; rd_cmd_words = p_rd_cmd_words;
                        rd_cmd_user = p_rd_cmd_user; rd_ready = p_rd_ready; end
            default: begin rd_cmd_valid = c_rd_cmd_valid; rd_cmd_off = c_rd_cmd_off; rd_cmd_words = c_rd_cmd_words;
                        rd_cmd_user = '0; rd_ready = c_rd_ready; end
        endcase
        case (wr_owner)
            2'd1: begin wr_cmd_valid = e_wr_cmd_valid; wr_cmd_off = e_wr_cmd_off; wr_cmd_words = e_wr_cmd_words;
                        wr_valid = e_wr_valid; wr_data = e_wr_data; wr_strb = e_wr_strb; end
            2'd2: begin wr_cmd_valid = p_wr_cmd_valid; wr_cmd_off = p_wr_cmd_off; wr_cmd_words = p_wr_cmd_words;
                        wr_valid = p_wr_valid; wr_data = p_wr_data; wr_strb = p_wr_strb; end
            default: begin wr_cmd_valid = c_wr_cmd_valid; wr_cmd_off = c_wr_cmd_off; wr_cmd_words = c_wr_cmd_words;
                        wr_valid = c_wr_valid; wr_data = c_wr_data; wr_strb = c_wr_strb; end
        endcase
    end

    logic job_start, engine_busy, post_start, post_busy, post_first;
    logic [$clog2(TM+1)-1:0] engine_sat;
    logic [1:0] post_sat;
    xaihls_pkg::desc_t job_desc;
    logic [1:0] job_mode, post_op, post_kind;
    xaihls_pkg::s32_t job_target, post_n, post_in0, post_in1, post_out, post_alpha, post_alpha_frac, post_weight,
          post_shift_a, post_shift_b;

    xaihls_ctrl #(.MASK_BITS(MASK_BITS), .INDEX_ENTRIES(INDEX_ENTRIES), .MAX_INPUT_ELEMS(MAX_INPUT_ELEMS),
                  .BACKWARD(BACKWARD), .PROFILE_DEPTH(PROFILE_DEPTH), .SAT_WIDTH($clog2(TM+1))) u_ctrl (
        .clk, .rst, .start, .ddr_base, .method, .target_arg(target), .steps, .busy, .done, .status, .run_cycles,
        .profile_count, .prof_we, .prof_waddr, .prof_wdata,
        .rd_err, .wr_err, .err_clear, .rd_owner, .wr_owner, .wr_idle,
        .job_start, .job_desc, .job_mode, .job_target, .engine_busy, .engine_sat, .post_sat,
        .post_start, .post_op, .post_kind, .post_n, .post_in0, .post_in1, .post_out, .post_alpha,
        .post_alpha_frac, .post_weight, .post_first, .post_shift_a, .post_shift_b, .post_busy,
        .rd_cmd_valid(c_rd_cmd_valid), .rd_cmd_ready(rd_cmd_ready && rd_owner == 2'd0), .rd_cmd_off(c_rd_cmd_off),
        .rd_cmd_words(c_rd_cmd_words), .rd_valid(rd_valid && rd_owner == 2'd0), .rd_ready(c_rd_ready),
        .rd_data, .rd_beat, .rd_last,
        .wr_cmd_valid(c_wr_cmd_valid), .wr_cmd_ready(wr_cmd_ready && wr_owner == 2'd0), .wr_cmd_off(c_wr_cmd_off),
        .wr_cmd_words(c_wr_cmd_words), .wr_valid(c_wr_valid), .wr_ready(wr_ready && wr_owner == 2'd0),
        .wr_data(c_wr_data), .wr_strb(c_wr_strb)
    );

    xaihls_engine #(.TM(TM), .TN(TN), .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH), .W_DEPTH(W_DEPTH),
                    .MASK_BITS(MASK_BITS), .INDEX_ENTRIES(INDEX_ENTRIES), .INDEX_BITS(INDEX_BITS),
                    .BACKWARD(BACKWARD)) u_engine (
        .clk, .rst, .job_start, .desc(job_desc), .mode(job_mode), .target(job_target), .busy(engine_busy),
        .sat_count(engine_sat),
        .rd_cmd_valid(e_rd_cmd_valid), .rd_cmd_ready(rd_cmd_ready && rd_owner == 2'd1), .rd_cmd_off(e_rd_cmd_off),
        .rd_cmd_words(e_rd_cmd_words), .rd_cmd_user(e_rd_cmd_user),
        .rd_valid(rd_valid && rd_owner == 2'd1), .rd_ready(e_rd_ready), .rd_data, .rd_user, .rd_beat, .rd_lead,
        .rd_first, .rd_last,
        .wr_cmd_valid(e_wr_cmd_valid), .wr_cmd_ready(wr_cmd_ready && wr_owner == 2'd1), .wr_cmd_off(e_wr_cmd_off),
        .wr_cmd_words(e_wr_cmd_words), .wr_valid(e_wr_valid), .wr_ready(wr_ready && wr_owner == 2'd1),
        .wr_data(e_wr_data), .wr_strb(e_wr_strb)
    );

    xaihls_post #(.MAX_INPUT_ELEMS(MAX_INPUT_ELEMS), .BACKWARD(BACKWARD)) u_post (
        .clk, .rst, .start(post_start), .op(post_op), .final_kind(post_kind), .n(post_n), .in0_addr(post_in0),
        .in1_addr(post_in1), .out_addr(post_out), .alpha(post_alpha), .alpha_frac(post_alpha_frac),
        .weight(post_weight), .first_step(post_first), .shift_a(post_shift_a), .shift_b(post_shift_b),
        .busy(post_busy), .sat_count(post_sat),
        .rd_cmd_valid(p_rd_cmd_valid), .rd_cmd_ready(rd_cmd_ready && rd_owner == 2'd2), .rd_cmd_off(p_rd_cmd_off),
        .rd_cmd_words(p_rd_cmd_words), .rd_cmd_user(p_rd_cmd_user),
        .rd_valid(rd_valid && rd_owner == 2'd2), .rd_ready(p_rd_ready), .rd_data, .rd_user,
        .wr_cmd_valid(p_wr_cmd_valid), .wr_cmd_ready(wr_cmd_ready && wr_owner == 2'd2), .wr_cmd_off(p_wr_cmd_off),
        .wr_cmd_words(p_wr_cmd_words), .wr_valid(p_wr_valid), .wr_ready(wr_ready && wr_owner == 2'd2),
        .wr_data(p_wr_data), .wr_strb(p_wr_strb)
    );

    assign dbg_busy = busy;

    logic unused;
    assign unused = ^{rd_busy};
endmodule
