// Read mover: (byte offset, 16-bit word count) commands -> AXI4 INCR read bursts of 64-bit beats.
//
// Guarantees: bursts of at most 256 beats that never cross a 4 KiB boundary; several bursts
// outstanding (up to META_DEPTH); beats come out in command order, each with the command's
// user field, its beat index within the command and the command's lead (the first word's
// position in the first beat); R backpressure is passed through (out_ready -> rready);
// `err` is set by any SLVERR/DECERR response and held until `clear`.

module xaihls_rd_dma #(
    parameter int ADDR_WIDTH = 64,
    parameter int ID_WIDTH   = 1,
    parameter int USER_WIDTH = 16,
    parameter int META_DEPTH = 16
) (
    input  logic                   clk,
    input  logic                   rst,
    input  logic [ADDR_WIDTH-1:0]  base,
    input  logic                   clear,

    input  logic                   cmd_valid,
    output logic                   cmd_ready,
    input  logic [31:0]            cmd_off,     // bytes from base, even
    input  logic [23:0]            cmd_words,   // > 0
    input  logic [USER_WIDTH-1:0]  cmd_user,

    output logic                   out_valid,
    input  logic                   out_ready,
    output logic [63:0]            out_data,
    output logic [USER_WIDTH-1:0]  out_user,
    output logic [15:0]            out_beat,
    output logic [1:0]             out_lead,
    output logic                   out_first,
    output logic                   out_last,

    output logic                   busy,
    output logic                   err,

    output logic [ID_WIDTH-1:0]    m_axi_arid,
    output logic [ADDR_WIDTH-1:0]  m_axi_araddr,
    output logic [7:0]             m_axi_arlen,
    output logic [2:0]             m_axi_arsize,
    output logic [1:0]             m_axi_arburst,
    output logic                   m_axi_arlock,
    output logic [3:0]             m_axi_arcache,
    output logic [2:0]             m_axi_arprot,
    output logic                   m_axi_arvalid,
    input  logic                   m_axi_arready,
    input  logic [ID_WIDTH-1:0]    m_axi_rid,
    input  logic [63:0]            m_axi_rdata,
    input  logic [1:0]             m_axi_rresp,
    input  logic                   m_axi_rlast,
    input  logic                   m_axi_rvalid,
    output logic                   m_axi_rready
);
    initial begin
        if (ADDR_WIDTH < 32 || ADDR_WIDTH > 64)
            $error("xaihls_rd_dma: ADDR_WIDTH %0d is outside 32..64 (instance %m)", ADDR_WIDTH);
        if (ID_WIDTH < 1) $error("xaihls_rd_dma: ID_WIDTH %0d must be at least 1 (instance %m)", ID_WIDTH);
        if (USER_WIDTH < 1) $error("xaihls_rd_dma: USER_WIDTH %0d must be at least 1 (instance %m)", USER_WIDTH);
        if (META_DEPTH < 2 || (META_DEPTH & (META_DEPTH - 1)) != 0)
            $error("xaihls_rd_dma: META_DEPTH %0d must be a power of two >= 2 (instance %m)", META_DEPTH);
    end

    assign m_axi_arid    = '0;
    assign m_axi_arsize  = 3'd3;   // 8 bytes
    assign m_axi_arburst = 2'b01;  // INCR
    assign m_axi_arlock  = 1'b0;
    assign m_axi_arcache = 4'b0011;
    assign m_axi_arprot  = 3'b000;

    // ---- splitter: one command into bursts ----
    logic                  sp_active;
    logic [ADDR_WIDTH-1:0] sp_addr;       // 8-byte aligned
    logic [23:0]           sp_left;       // beats left
    logic [15:0]           sp_beat;       // beat index of the next burst within the command
    logic [1:0]            sp_lead;
    logic [USER_WIDTH-1:0] sp_user;

    localparam int MW = USER_WIDTH + 16 + 2 + 2;  // user, beat base, lead, first/last
    logic [MW-1:0] meta_in, meta_out;
    logic meta_push, meta_pop, meta_empty, meta_full;
    logic [$clog2(META_DEPTH):0] meta_count;

    xaihls_fifo #(.WIDTH(MW), .DEPTH(META_DEPTH)) u_meta (
        .clk, .rst, .push(meta_push), .wdata(meta_in), .pop(meta_pop), .rdata(meta_out),
        .empty(meta_empty), .full(meta_full), .count(meta_count)
    );

    logic [ADDR_WIDTH-1:0] cmd_addr;
    logic [24:0] cmd_bytes_end;
    assign cmd_addr = base + ADDR_WIDTH'(cmd_off);
    assign cmd_bytes_end = 25'(cmd_addr[2:0]) + {cmd_words, 1'b0} + 25'd7;

    logic [12:0] to_4k;   // beats to the 4 KiB boundary (1..512)
    logic [8:0]  blen;    // beats in this burst (1..256)
    assign to_4k = 13'((13'h1000 - {1'b0, sp_addr[11:0]}) >> 3);
    always_comb begin
        blen = 9'd256;
        if (sp_left < 24'd256) blen = 9'(sp_left);
        if (to_4k < 13'(blen)) blen = 9'(to_4k);
    end

    logic issue;
    assign cmd_ready = !sp_active || (issue && sp_left == 24'(blen));  // back-to-back commands
    assign issue = sp_active && (!m_axi_arvalid || m_axi_arready) && !meta_full;
    assign meta_push = issue;
    assign meta_in = {sp_user, sp_beat, sp_lead, (sp_beat == 16'd0), (sp_left == 24'(blen))};

    always_ff @(posedge clk) begin
        if (rst) begin
            sp_active <= 1'b0;
            m_axi_arvalid <= 1'b0;
            m_axi_araddr <= '0;
            m_axi_arlen <= '0;
            sp_addr <= '0; sp_left <= '0; sp_beat <= '0; sp_lead <= '0; sp_user <= '0;
        end else begin
            if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
            if (issue) begin
                m_axi_arvalid <= 1'b1;
                m_axi_araddr <= sp_addr;
                m_axi_arlen <= 8'(blen - 9'd1);
                sp_addr <= sp_addr + ADDR_WIDTH'({blen, 3'b000});
                sp_left <= sp_left - 24'(blen);
                sp_beat <= sp_beat + 16'(blen);
                if (sp_left == 24'(blen)) sp_active <= 1'b0;
            end
            // a new command may start while the last burst of the previous one issues
            if (cmd_valid && cmd_ready) begin
                sp_active <= 1'b1;
                sp_addr <= {cmd_addr[ADDR_WIDTH-1:3], 3'b000};
                sp_left <= {2'b00, cmd_bytes_end[24:3]};
                sp_beat <= '0;
                sp_lead <= cmd_addr[2:1];
                sp_user <= cmd_user;
            end
        end
    end

    // ---- beats out ----
    logic [15:0] r_count;
    logic [USER_WIDTH-1:0] h_user;
    logic [15:0] h_beat;
    logic [1:0] h_lead;
    logic h_first, h_last;
    assign {h_user, h_beat, h_lead, h_first, h_last} = meta_out;

    assign out_valid = m_axi_rvalid && !meta_empty;
    assign m_axi_rready = out_ready && !meta_empty;
    assign out_data  = m_axi_rdata;
    assign out_user  = h_user;
    assign out_beat  = h_beat + r_count;
    assign out_lead  = h_lead;
    assign out_first = h_first && (r_count == 16'd0);
    assign out_last  = h_last && m_axi_rlast;
    assign meta_pop  = m_axi_rvalid && m_axi_rready && m_axi_rlast;

    always_ff @(posedge clk) begin
        if (rst) begin
            r_count <= '0;
            err <= 1'b0;
        end else begin
            if (clear) err <= 1'b0;
            if (m_axi_rvalid && m_axi_rready) begin
                r_count <= m_axi_rlast ? 16'd0 : r_count + 16'd1;
                if (m_axi_rresp[1]) err <= 1'b1;
            end
        end
    end

    assign busy = sp_active || m_axi_arvalid || !meta_empty;

    logic unused;
    assign unused = ^{m_axi_rid, meta_count};
endmodule
