// Write mover: (beat offset, beat count) commands -> AXI4 INCR write bursts of DATA_WIDTH-bit beats.
//
// The producer streams exactly cmd_beats beats per command, in command order, with byte strobes.
// Guarantees: bursts of at most 256 beats that never cross 4 KiB; AW and W are independent
// (W never waits for AWREADY); every channel honours backpressure; `idle` once every command's
// bursts have their responses; `err` is set by any SLVERR/DECERR response and held until `clear`.

module xaihls_wr_dma #(
    parameter int DATA_WIDTH = 64,
    parameter int ADDR_WIDTH = 64,
    parameter int ID_WIDTH   = 1,
    parameter int OFF_BITS   = 24,
    parameter int LEN_BITS   = 20,
    parameter int LEN_DEPTH  = 16
) (
    input  logic                     clk,
    input  logic                     rst,
    input  logic [ADDR_WIDTH-1:0]    base,
    input  logic                     clear,

    input  logic                     cmd_valid,
    output logic                     cmd_ready,
    input  logic [OFF_BITS-1:0]      cmd_off,
    input  logic [LEN_BITS-1:0]      cmd_beats,

    input  logic                     s_valid,
    output logic                     s_ready,
    input  logic [DATA_WIDTH-1:0]    s_data,
    input  logic [DATA_WIDTH/8-1:0]  s_strb,

    output logic                     idle,
    output logic                     err,

    output logic [ID_WIDTH-1:0]      m_axi_awid,
    output logic [ADDR_WIDTH-1:0]    m_axi_awaddr,
    output logic [7:0]               m_axi_awlen,
    output logic [2:0]               m_axi_awsize,
    output logic [1:0]               m_axi_awburst,
    output logic                     m_axi_awlock,
    output logic [3:0]               m_axi_awcache,
    output logic [2:0]               m_axi_awprot,
    output logic                     m_axi_awvalid,
    input  logic                     m_axi_awready,
    output logic [DATA_WIDTH-1:0]    m_axi_wdata,
    output logic [DATA_WIDTH/8-1:0]  m_axi_wstrb,
    output logic                     m_axi_wlast,
    output logic                     m_axi_wvalid,
    input  logic                     m_axi_wready,
    input  logic [ID_WIDTH-1:0]      m_axi_bid,
    input  logic [1:0]               m_axi_bresp,
    input  logic                     m_axi_bvalid,
    output logic                     m_axi_bready
);
    localparam int BB = $clog2(DATA_WIDTH / 8);
    localparam int PB = 12 - BB;

    initial begin
        if (DATA_WIDTH < 32 || (1 << BB) * 8 != DATA_WIDTH || DATA_WIDTH > 1024)
            $error("xaihls_wr_dma: DATA_WIDTH %0d is not a power of two in 32..1024 (instance %m)", DATA_WIDTH);
        if (ADDR_WIDTH < 32 || ADDR_WIDTH > 64)
            $error("xaihls_wr_dma: ADDR_WIDTH %0d is outside 32..64 (instance %m)", ADDR_WIDTH);
        if (ID_WIDTH < 1) $error("xaihls_wr_dma: ID_WIDTH %0d must be at least 1 (instance %m)", ID_WIDTH);
        if (LEN_BITS < 9) $error("xaihls_wr_dma: LEN_BITS %0d must be at least 9 (instance %m)", LEN_BITS);
        if (LEN_DEPTH < 2 || LEN_DEPTH > 128 || (LEN_DEPTH & (LEN_DEPTH - 1)) != 0)  // `outstanding` is 8 bits
            $error("xaihls_wr_dma: LEN_DEPTH %0d must be a power of two in 2..128 (instance %m)", LEN_DEPTH);
    end

    assign m_axi_awid    = '0;
    assign m_axi_awsize  = 3'(BB);
    assign m_axi_awburst = 2'b01;
    assign m_axi_awlock  = 1'b0;
    assign m_axi_awcache = 4'b0011;
    assign m_axi_awprot  = 3'b000;

    logic                  sp_active;
    logic [ADDR_WIDTH-1:0] sp_addr;
    logic [LEN_BITS-1:0]   sp_left;

    logic [PB:0] to_4k;
    logic [8:0]  blen;
    assign to_4k = (PB+1)'((13'h1000 - {1'b0, sp_addr[11:0]}) >> BB);
    always_comb begin
        blen = 9'd256;
        if (sp_left < LEN_BITS'(256)) blen = 9'(sp_left);
        // compared in 13 bits: at 256 and 512 bits blen (up to 256) does not fit to_4k's PB + 1 bits
        if (13'(to_4k) < 13'(blen)) blen = 9'(to_4k);
    end

    logic len_pop, len_empty, len_full;
    logic [7:0] len_head;
    logic [$clog2(LEN_DEPTH):0] len_count;
    logic issue, last_burst;
    assign last_burst = sp_left == LEN_BITS'(blen);
    assign issue = sp_active && (!m_axi_awvalid || m_axi_awready) && !len_full;
    assign cmd_ready = !sp_active || (issue && last_burst);

    xaihls_fifo #(.WIDTH(8), .DEPTH(LEN_DEPTH)) u_len (
        .clk, .rst, .push(issue), .wdata(8'(blen - 9'd1)), .pop(len_pop), .rdata(len_head),
        .empty(len_empty), .full(len_full), .count(len_count)
    );

    logic [7:0] outstanding;  // bursts issued whose response has not come back (<= LEN_DEPTH + 1)

    always_ff @(posedge clk) begin
        if (rst) begin
            sp_active <= 1'b0;
            m_axi_awvalid <= 1'b0;
            m_axi_awaddr <= '0;
            m_axi_awlen <= '0;
            sp_addr <= '0;
            sp_left <= '0;
            outstanding <= '0;
            err <= 1'b0;
        end else begin
            if (clear) err <= 1'b0;
            if (m_axi_awvalid && m_axi_awready) m_axi_awvalid <= 1'b0;
            if (issue) begin
                m_axi_awvalid <= 1'b1;
                m_axi_awaddr <= sp_addr;
                m_axi_awlen <= 8'(blen - 9'd1);
                sp_addr <= sp_addr + ADDR_WIDTH'({blen, BB'(0)});
                sp_left <= sp_left - LEN_BITS'(blen);
                if (last_burst) sp_active <= 1'b0;
            end
            if (cmd_valid && cmd_ready) begin
                sp_active <= 1'b1;
                sp_addr <= base + ADDR_WIDTH'(cmd_off);
                sp_left <= cmd_beats;
            end
            outstanding <= outstanding + 8'(issue) - 8'(m_axi_bvalid && m_axi_bready);
            if (m_axi_bvalid && m_axi_bready && m_axi_bresp[1]) err <= 1'b1;
        end
    end

    // ---- W: the producer's beats, cut into the bursts above ----
    logic [7:0] w_count;
    assign m_axi_wvalid = s_valid && !len_empty;
    assign s_ready      = m_axi_wready && !len_empty;
    assign m_axi_wdata  = s_data;
    assign m_axi_wstrb  = s_strb;
    assign m_axi_wlast  = w_count == len_head;
    assign len_pop      = m_axi_wvalid && m_axi_wready && m_axi_wlast;

    always_ff @(posedge clk) begin
        if (rst) w_count <= '0;
        else if (m_axi_wvalid && m_axi_wready) w_count <= m_axi_wlast ? 8'd0 : w_count + 8'd1;
    end

    assign m_axi_bready = 1'b1;
    assign idle = !sp_active && !m_axi_awvalid && len_empty && outstanding == '0;

    logic unused;
    assign unused = ^{m_axi_bid, len_count};
endmodule
