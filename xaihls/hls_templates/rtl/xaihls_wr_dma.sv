// Write mover: (byte offset, 16-bit word count) commands -> AXI4 INCR write bursts.
//
// The producer streams exactly ceil((lead + words) / 4) beats per command (data and byte
// strobes, the first word at the command's lead). Guarantees: bursts of at most 256 beats
// that never cross 4 KiB; AW and W are independent (W never waits for AWREADY); every
// channel honours backpressure; `idle` once every burst has its response; `err` is set by
// any SLVERR/DECERR response and held until `clear`.

module xaihls_wr_dma #(
    parameter int ADDR_WIDTH = 64,
    parameter int ID_WIDTH   = 1,
    parameter int LEN_DEPTH  = 16
) (
    input  logic                   clk,
    input  logic                   rst,
    input  logic [ADDR_WIDTH-1:0]  base,
    input  logic                   clear,

    input  logic                   cmd_valid,
    output logic                   cmd_ready,
    input  logic [31:0]            cmd_off,
    input  logic [23:0]            cmd_words,

    input  logic                   s_valid,
    output logic                   s_ready,
    input  logic [63:0]            s_data,
    input  logic [7:0]             s_strb,

    output logic                   idle,
    output logic                   err,

    output logic [ID_WIDTH-1:0]    m_axi_awid,
    output logic [ADDR_WIDTH-1:0]  m_axi_awaddr,
    output logic [7:0]             m_axi_awlen,
    output logic [2:0]             m_axi_awsize,
    output logic [1:0]             m_axi_awburst,
    output logic                   m_axi_awlock,
    output logic [3:0]             m_axi_awcache,
    output logic [2:0]             m_axi_awprot,
    output logic                   m_axi_awvalid,
    input  logic                   m_axi_awready,
    output logic [63:0]            m_axi_wdata,
    output logic [7:0]             m_axi_wstrb,
    output logic                   m_axi_wlast,
    output logic                   m_axi_wvalid,
    input  logic                   m_axi_wready,
    input  logic [ID_WIDTH-1:0]    m_axi_bid,
    input  logic [1:0]             m_axi_bresp,
    input  logic                   m_axi_bvalid,
    output logic                   m_axi_bready
);
    initial begin
        if (ADDR_WIDTH < 32 || ADDR_WIDTH > 64)
            $error("xaihls_wr_dma: ADDR_WIDTH %0d is outside 32..64 (instance %m)", ADDR_WIDTH);
        if (ID_WIDTH < 1) $error("xaihls_wr_dma: ID_WIDTH %0d must be at least 1 (instance %m)", ID_WIDTH);
        if (LEN_DEPTH < 2 || (LEN_DEPTH & (LEN_DEPTH - 1)) != 0)
            $error("xaihls_wr_dma: LEN_DEPTH %0d must be a power of two >= 2 (instance %m)", LEN_DEPTH);
    end

    assign m_axi_awid    = '0;
    assign m_axi_awsize  = 3'd3;
    assign m_axi_awburst = 2'b01;
    assign m_axi_awlock  = 1'b0;
    assign m_axi_awcache = 4'b0011;
    assign m_axi_awprot  = 3'b000;

    logic                  sp_active;
    logic [ADDR_WIDTH-1:0] sp_addr;
    logic [23:0]           sp_left;

    logic [ADDR_WIDTH-1:0] cmd_addr;
    logic [24:0] cmd_bytes_end;
    assign cmd_addr = base + ADDR_WIDTH'(cmd_off);
    assign cmd_bytes_end = 25'(cmd_addr[2:0]) + {cmd_words, 1'b0} + 25'd7;

    logic [12:0] to_4k;
    logic [8:0]  blen;
    assign to_4k = 13'((13'h1000 - {1'b0, sp_addr[11:0]}) >> 3);
    always_comb begin
        blen = 9'd256;
        if (sp_left < 24'd256) blen = 9'(sp_left);
        if (to_4k < 13'(blen)) blen = 9'(to_4k);
    end

    logic len_push, len_pop, len_empty, len_full;
    logic [7:0] len_head;
    logic [$clog2(LEN_DEPTH):0] len_count;
    xaihls_fifo #(.WIDTH(8), .DEPTH(LEN_DEPTH)) u_len (
        .clk, .rst, .push(len_push), .wdata(8'(blen - 9'd1)), .pop(len_pop), .rdata(len_head),
        .empty(len_empty), .full(len_full), .count(len_count)
    );

    logic issue;
    assign cmd_ready = !sp_active || (issue && sp_left == 24'(blen));  // back-to-back commands
    assign issue = sp_active && (!m_axi_awvalid || m_axi_awready) && !len_full;
    assign len_push = issue;

    logic [15:0] outstanding;  // bursts whose response has not come back

    always_ff @(posedge clk) begin
        if (rst) begin
            sp_active <= 1'b0;
            m_axi_awvalid <= 1'b0;
            m_axi_awaddr <= '0;
            m_axi_awlen <= '0;
            sp_addr <= '0; sp_left <= '0;
            outstanding <= '0;
            err <= 1'b0;
        end else begin
            if (clear) err <= 1'b0;
            if (m_axi_awvalid && m_axi_awready) m_axi_awvalid <= 1'b0;
            if (issue) begin
                m_axi_awvalid <= 1'b1;
                m_axi_awaddr <= sp_addr;
                m_axi_awlen <= 8'(blen - 9'd1);
                sp_addr <= sp_addr + ADDR_WIDTH'({blen, 3'b000});
                sp_left <= sp_left - 24'(blen);
                if (sp_left == 24'(blen)) sp_active <= 1'b0;
            end
            // a new command may start while the last burst of the previous one issues
            if (cmd_valid && cmd_ready) begin
                sp_active <= 1'b1;
                sp_addr <= {cmd_addr[ADDR_WIDTH-1:3], 3'b000};
                sp_left <= {2'b00, cmd_bytes_end[24:3]};
            end
            outstanding <= outstanding + 16'(issue) - 16'(m_axi_bvalid && m_axi_bready);
            if (m_axi_bvalid && m_axi_bready && m_axi_bresp[1]) err <= 1'b1;
        end
    end

    // ---- W: the producer's beats, cut into the bursts above ----
    logic [7:0] w_count;
    assign m_axi_wvalid = s_valid && !len_empty;
    assign s_ready      = m_axi_wready && !len_empty;
    assign m_axi_wdata  = s_data;
    assign m_axi_wstrb  = s_strb;
    assign m_axi_wlast  = (w_count == len_head);
    assign len_pop      = m_axi_wvalid && m_axi_wready && m_axi_wlast;

    always_ff @(posedge clk) begin
        if (rst) w_count <= '0;
        else if (m_axi_wvalid && m_axi_wready) w_count <= m_axi_wlast ? 8'd0 : w_count + 8'd1;
    end

    assign m_axi_bready = 1'b1;
    assign idle = !sp_active && !m_axi_awvalid && len_empty && (outstanding == 16'd0);

    logic unused;
    assign unused = ^{m_axi_bid, len_count};
endmodule
