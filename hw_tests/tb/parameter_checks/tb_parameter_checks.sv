// Every module with a parameter range, instantiated once with a parameter outside it: each
// must report its own $error at time 0 (test_parameter_checks.py). The engine modules are
// Engine v2's (rtl_v2/); the DDR model is the shared one (rtl/sim/).

module tb_parameter_checks (
    input logic clk,
    input logic rst
);
    logic [7:0] fifo_rdata;
    logic fifo_empty, fifo_full;
    logic [2:0] fifo_count;
    xaihls_fifo #(.WIDTH(8), .DEPTH(3)) u_fifo (
        .clk, .rst, .push(1'b0), .wdata(8'd0), .pop(1'b0), .rdata(fifo_rdata), .empty(fifo_empty),
        .full(fifo_full), .count(fifo_count)
    );

    logic rd_cmd_ready, rd_out_valid, rd_first, rd_last, rd_err, rd_arvalid, rd_rready;
    logic rd_arlock;
    logic [95:0] rd_data;
    logic [15:0] rd_user;
    logic [19:0] rd_beat;
    logic [1:0] rd_arburst;
    logic [0:0] rd_arid;
    logic [63:0] rd_araddr;
    logic [7:0] rd_arlen;
    logic [2:0] rd_arsize, rd_arprot;
    logic [3:0] rd_arcache;
    xaihls_rd_dma #(.DATA_WIDTH(96), .ADDR_WIDTH(64), .META_DEPTH(6)) u_rd (
        .clk, .rst, .base(64'd0), .clear(1'b0), .cmd_valid(1'b0), .cmd_ready(rd_cmd_ready), .cmd_off(24'd0),
        .cmd_beats(20'd1), .cmd_user(16'd0), .out_valid(rd_out_valid), .out_ready(1'b1), .out_data(rd_data),
        .out_user(rd_user), .out_beat(rd_beat), .out_first(rd_first), .out_last(rd_last), .err(rd_err), .m_axi_arid(rd_arid), .m_axi_araddr(rd_araddr), .m_axi_arlen(rd_arlen),
        .m_axi_arsize(rd_arsize), .m_axi_arburst(rd_arburst), .m_axi_arlock(rd_arlock), .m_axi_arcache(rd_arcache),
        .m_axi_arprot(rd_arprot), .m_axi_arvalid(rd_arvalid), .m_axi_arready(1'b0), .m_axi_rid(1'b0),
        .m_axi_rdata(96'd0), .m_axi_rresp(2'd0), .m_axi_rlast(1'b0), .m_axi_rvalid(1'b0), .m_axi_rready(rd_rready)
    );

    logic wr_cmd_ready, wr_s_ready, wr_idle, wr_err, wr_awvalid, wr_wvalid, wr_wlast, wr_bready, wr_awlock;
    logic [0:0] wr_awid;
    logic [63:0] wr_awaddr, wr_wdata;
    logic [7:0] wr_awlen, wr_wstrb;
    logic [2:0] wr_awsize, wr_awprot;
    logic [1:0] wr_awburst;
    logic [3:0] wr_awcache;
    xaihls_wr_dma #(.ADDR_WIDTH(16), .LEN_DEPTH(16)) u_wr (
        .clk, .rst, .base(16'd0), .clear(1'b0), .cmd_valid(1'b0), .cmd_ready(wr_cmd_ready), .cmd_off(24'd0),
        .cmd_beats(20'd1), .s_valid(1'b0), .s_ready(wr_s_ready), .s_data(64'd0), .s_strb(8'd0), .idle(wr_idle),
        .err(wr_err), .m_axi_awid(wr_awid), .m_axi_awaddr(wr_awaddr[15:0]), .m_axi_awlen(wr_awlen),
        .m_axi_awsize(wr_awsize), .m_axi_awburst(wr_awburst), .m_axi_awlock(wr_awlock), .m_axi_awcache(wr_awcache),
        .m_axi_awprot(wr_awprot), .m_axi_awvalid(wr_awvalid), .m_axi_awready(1'b0), .m_axi_wdata(wr_wdata),
        .m_axi_wstrb(wr_wstrb), .m_axi_wlast(wr_wlast), .m_axi_wvalid(wr_wvalid), .m_axi_wready(1'b0),
        .m_axi_bid(1'b0), .m_axi_bresp(2'd0), .m_axi_bvalid(1'b0), .m_axi_bready(wr_bready)
    );

    logic ax_awready, ax_wready, ax_bvalid, ax_arready, ax_rvalid, ax_irq, ax_start;
    logic [1:0] ax_bresp, ax_rresp;
    logic [31:0] ax_rdata, ax_method, ax_target, ax_steps;
    logic [63:0] ax_ddr;
    logic [9:0] ax_paddr;
    xaihls_axil_regs #(.ADDR_WIDTH(12), .PROFILE_DEPTH(1024)) u_regs (
        .clk, .rst, .s_axil_awaddr(12'd0), .s_axil_awprot(3'd0), .s_axil_awvalid(1'b0), .s_axil_awready(ax_awready),
        .s_axil_wdata(32'd0), .s_axil_wstrb(4'd0), .s_axil_wvalid(1'b0), .s_axil_wready(ax_wready),
        .s_axil_bresp(ax_bresp), .s_axil_bvalid(ax_bvalid), .s_axil_bready(1'b1), .s_axil_araddr(12'd0),
        .s_axil_arprot(3'd0), .s_axil_arvalid(1'b0), .s_axil_arready(ax_arready), .s_axil_rdata(ax_rdata),
        .s_axil_rresp(ax_rresp), .s_axil_rvalid(ax_rvalid), .s_axil_rready(1'b1), .interrupt(ax_irq),
        .start(ax_start), .ddr_base(ax_ddr), .method(ax_method), .target(ax_target), .steps(ax_steps),
        .busy(1'b0), .done(1'b0), .status(32'd0), .run_cycles(32'd0), .profile_count(32'd0),
        .profile_addr(ax_paddr), .profile_data(32'd0)
    );

    xaihls_sim_axi_ram #(.DATA_WIDTH(48)) u_ram (
        .clk, .rst, .s_axi_awid(1'b0), .s_axi_awaddr(64'd0), .s_axi_awlen(8'd0), .s_axi_awsize(3'd0),
        .s_axi_awburst(2'd1), .s_axi_awvalid(1'b0), .s_axi_awready(), .s_axi_wdata(48'd0), .s_axi_wstrb(6'd0),
        .s_axi_wlast(1'b0), .s_axi_wvalid(1'b0), .s_axi_wready(), .s_axi_bid(), .s_axi_bresp(), .s_axi_bvalid(),
        .s_axi_bready(1'b1), .s_axi_arid(1'b0), .s_axi_araddr(64'd0), .s_axi_arlen(8'd0), .s_axi_arsize(3'd0),
        .s_axi_arburst(2'd1), .s_axi_arvalid(1'b0), .s_axi_arready(), .s_axi_rid(), .s_axi_rdata(), .s_axi_rresp(),
        .s_axi_rlast(), .s_axi_rvalid(), .s_axi_rready(1'b1), .bd_load(1'b0), .bd_dump(1'b0), .bd_first(32'd0),
        .bd_last(32'd0)
    );
endmodule
