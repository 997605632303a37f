// xaihls_sim_top: the simulation top of the Engine v2 RTL (never synthesized): xaihls_top with
// its DDR, xaihls_sim_axi_ram, on the AXI4 master. The testbench (xaihls/backends/rtl/tb.py)
// drives the clock, the reset and AXI4-Lite, and moves DDR contents through the memory's
// backdoor (files), so no DDR beat passes through Python.
//
// Only AXI4-Lite and the backdoor are ports: the simulator re-evaluates all logic fed by a
// top-level input on every clock edge (the input-combinational region), so the AXI4 master
// stays inside. (The protocol-test mode, cocotbext-axi's AxiRam on the AXI4 master, simulates
// xaihls_top itself.)
//
// Parameters: those of the v2 xaihls_top (see rtl_v2/xaihls_top.sv), and the memory's (rtl/sim/xaihls_sim_axi_ram.sv).


module xaihls_sim_top #(
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
    parameter int AXI_ADDR_WIDTH  = 64,
    parameter int AXI_ID_WIDTH    = 1,
    parameter int AXIL_ADDR_WIDTH = 12,
    parameter int MEM_ADDR_BITS   = 24,   // DDR model: 2**MEM_ADDR_BITS bytes
    parameter int READ_LATENCY    = 24,   // defaults; +ddr_latency overrides at run time
    parameter int WRITE_LATENCY   = 24
) (
    input  logic                        clk,
    input  logic                        rst,
    output logic                        interrupt,

    input  logic [AXIL_ADDR_WIDTH-1:0]  s_axil_awaddr,
    input  logic [2:0]                  s_axil_awprot,
    input  logic                        s_axil_awvalid,
    output logic                        s_axil_awready,
    input  logic [31:0]                 s_axil_wdata,
    input  logic [3:0]                  s_axil_wstrb,
    input  logic                        s_axil_wvalid,
    output logic                        s_axil_wready,
    output logic [1:0]                  s_axil_bresp,
    output logic                        s_axil_bvalid,
    input  logic                        s_axil_bready,
    input  logic [AXIL_ADDR_WIDTH-1:0]  s_axil_araddr,
    input  logic [2:0]                  s_axil_arprot,
    input  logic                        s_axil_arvalid,
    output logic                        s_axil_arready,
    output logic [31:0]                 s_axil_rdata,
    output logic [1:0]                  s_axil_rresp,
    output logic                        s_axil_rvalid,
    input  logic                        s_axil_rready,

    // the DDR backdoor (xaihls_sim_axi_ram): pulses, word indices
    input  logic                        ddr_load,
    input  logic                        ddr_dump,
    input  logic [31:0]                 ddr_first,
    input  logic [31:0]                 ddr_last
);
    logic [AXI_ID_WIDTH-1:0]     m_axi_awid, m_axi_bid, m_axi_arid, m_axi_rid;
    logic [AXI_ADDR_WIDTH-1:0]   m_axi_awaddr, m_axi_araddr;
    logic [7:0]                  m_axi_awlen, m_axi_arlen;
    logic [2:0]                  m_axi_awsize, m_axi_awprot, m_axi_arsize, m_axi_arprot;
    logic [1:0]                  m_axi_awburst, m_axi_bresp, m_axi_arburst, m_axi_rresp;
    logic [3:0]                  m_axi_awcache, m_axi_arcache;
    logic                        m_axi_awlock, m_axi_awvalid, m_axi_awready, m_axi_wlast, m_axi_wvalid, m_axi_wready;
    logic                        m_axi_bvalid, m_axi_bready, m_axi_arlock, m_axi_arvalid, m_axi_arready;
    logic                        m_axi_rlast, m_axi_rvalid, m_axi_rready;
    logic [AXI_DATA_WIDTH-1:0]   m_axi_wdata, m_axi_rdata;
    logic [AXI_DATA_WIDTH/8-1:0] m_axi_wstrb;


`ifdef XAIHLS_NETLIST
    xaihls_top u_top (  // a yosys netlist of xaihls_top: its parameters are applied already
`else
    xaihls_top #(
        .TM(TM), .TN(TN), .AXI_DATA_WIDTH(AXI_DATA_WIDTH), .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH),
        .W_DEPTH(W_DEPTH), .MASK_BITS(MASK_BITS), .INDEX_ENTRIES(INDEX_ENTRIES), .INDEX_BITS(INDEX_BITS),
        .INPUT_ELEMS(INPUT_ELEMS), .BACKWARD(BACKWARD), .W_DIAG(W_DIAG), .OFF_BITS(OFF_BITS),
        .AXI_ADDR_WIDTH(AXI_ADDR_WIDTH),
        .AXI_ID_WIDTH(AXI_ID_WIDTH), .AXIL_ADDR_WIDTH(AXIL_ADDR_WIDTH)
    ) u_top (
`endif
        .clk, .rst, .interrupt,
        .s_axil_awaddr, .s_axil_awprot, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb,
        .s_axil_wvalid, .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr,
        .s_axil_arprot, .s_axil_arvalid, .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid,
        .s_axil_rready,
        .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awlock, .m_axi_awcache,
        .m_axi_awprot, .m_axi_awvalid, .m_axi_awready, .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast,
        .m_axi_wvalid, .m_axi_wready, .m_axi_bid, .m_axi_bresp, .m_axi_bvalid,
        .m_axi_bready, .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arlock,
        .m_axi_arcache, .m_axi_arprot, .m_axi_arvalid, .m_axi_arready, .m_axi_rid,
        .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready
    );

`ifndef XAIHLS_NETLIST
    // The kept state stays inside what the Program placed: no job writes a ReLU word or a pool-index
    // word at or past the Program's own count (its header's mask_bits / E and index_entries / TN,
    // given at run time as +kept_mask_words and +kept_index_words; default the memories' depths).
    // The memories are that count in whole words (xaihls.plan.engine.kept), no power of two, so a
    // write past it would not wrap: it would be lost here and undefined in a cascade of block RAMs.
    if (BACKWARD != 0) begin : g_kept_bounds
        int mask_words = MASK_BITS / (AXI_DATA_WIDTH / 16);
        int index_words = INDEX_ENTRIES / TN;
        initial begin
            if ($value$plusargs("kept_mask_words=%d", mask_words)) ;
            if ($value$plusargs("kept_index_words=%d", index_words)) ;
        end
        always_ff @(posedge clk) begin
            if (u_top.mask_we && 32'(u_top.mask_waddr) >= mask_words)
                $fatal(1, "xaihls_sim_top: ReLU bits written at word %0d of %0d", u_top.mask_waddr, mask_words);
            if (u_top.ix_we != '0 && 32'(u_top.ix_waddr) >= index_words)
                $fatal(1, "xaihls_sim_top: pool indices written at word %0d of %0d", u_top.ix_waddr, index_words);
        end
    end
`endif

    xaihls_sim_axi_ram #(
        .DATA_WIDTH(AXI_DATA_WIDTH), .ADDR_WIDTH(AXI_ADDR_WIDTH), .ID_WIDTH(AXI_ID_WIDTH),
        .MEM_ADDR_BITS(MEM_ADDR_BITS), .READ_LATENCY(READ_LATENCY), .WRITE_LATENCY(WRITE_LATENCY)
    ) u_ddr (
        .clk, .rst,
        .s_axi_awid(m_axi_awid), .s_axi_awaddr(m_axi_awaddr), .s_axi_awlen(m_axi_awlen),
        .s_axi_awsize(m_axi_awsize), .s_axi_awburst(m_axi_awburst), .s_axi_awvalid(m_axi_awvalid),
        .s_axi_awready(m_axi_awready), .s_axi_wdata(m_axi_wdata), .s_axi_wstrb(m_axi_wstrb),
        .s_axi_wlast(m_axi_wlast), .s_axi_wvalid(m_axi_wvalid), .s_axi_wready(m_axi_wready),
        .s_axi_bid(m_axi_bid), .s_axi_bresp(m_axi_bresp), .s_axi_bvalid(m_axi_bvalid),
        .s_axi_bready(m_axi_bready),
        .s_axi_arid(m_axi_arid), .s_axi_araddr(m_axi_araddr), .s_axi_arlen(m_axi_arlen),
        .s_axi_arsize(m_axi_arsize), .s_axi_arburst(m_axi_arburst), .s_axi_arvalid(m_axi_arvalid),
        .s_axi_arready(m_axi_arready), .s_axi_rid(m_axi_rid), .s_axi_rdata(m_axi_rdata), .s_axi_rresp(m_axi_rresp),
        .s_axi_rlast(m_axi_rlast), .s_axi_rvalid(m_axi_rvalid), .s_axi_rready(m_axi_rready),
        .bd_load(ddr_load), .bd_dump(ddr_dump), .bd_first(ddr_first), .bd_last(ddr_last)
    );

    // the memory takes no lock, cache or protection attributes; the debug line is for waveforms
    logic unused;
    assign unused = ^{m_axi_awlock, m_axi_awcache, m_axi_awprot, m_axi_arlock, m_axi_arcache, m_axi_arprot};
endmodule
