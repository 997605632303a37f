// Read mover: (beat offset, beat count) commands -> AXI4 INCR read bursts of DATA_WIDTH-bit beats.
//
// Commands address whole beats (the Program aligns every run it reads to the beat). Guarantees:
// bursts of at most 256 beats that never cross a 4 KiB boundary; up to META_DEPTH bursts
// outstanding, so back-to-back commands stream at one beat a cycle; beats come out in command
// order, each with its command's user field, its index within the command and first/last
// flags; R backpressure passes through (out_ready -> rready); `err` is set by any
// SLVERR/DECERR response and held until `clear`.

module xaihls_rd_dma #(
    parameter int DATA_WIDTH = 64,
    parameter int ADDR_WIDTH = 64,
    parameter int ID_WIDTH   = 1,
    parameter int OFF_BITS   = 24,   // bytes of DDR the Program may use: offsets below 2**OFF_BITS
    parameter int LEN_BITS   = 20,   // beats of one command
    parameter int USER_WIDTH = 16,
    parameter int META_DEPTH = 16
) (
    input  logic                   clk,
    input  logic                   rst,
    input  logic [ADDR_WIDTH-1:0]  base,
    input  logic                   clear,

    input  logic                   cmd_valid,
    output logic                   cmd_ready,
    input  logic [OFF_BITS-1:0]    cmd_off,     // bytes from base, a multiple of DATA_WIDTH / 8
    input  logic [LEN_BITS-1:0]    cmd_beats,   // > 0
    input  logic [USER_WIDTH-1:0]  cmd_user,

    output logic                   out_valid,
    input  logic                   out_ready,
    output logic [DATA_WIDTH-1:0]  out_data,
    output logic [USER_WIDTH-1:0]  out_user,
    output logic [LEN_BITS-1:0]    out_beat,
    output logic                   out_first,
    output logic                   out_last,

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
    input  logic [DATA_WIDTH-1:0]  m_axi_rdata,
    input  logic [1:0]             m_axi_rresp,
    input  logic                   m_axi_rlast,
    input  logic                   m_axi_rvalid,
    output logic                   m_axi_rready
);
    localparam int BB = $clog2(DATA_WIDTH / 8);   // byte-offset bits of a beat
    localparam int PB = 12 - BB;                  // beat-index bits within a 4 KiB page

    initial begin
        if (DATA_WIDTH < 32 || (1 << BB) * 8 != DATA_WIDTH || DATA_WIDTH > 1024)
            $error("xaihls_rd_dma: DATA_WIDTH %0d is not a power of two in 32..1024 (instance %m)", DATA_WIDTH);
        if (ADDR_WIDTH < 32 || ADDR_WIDTH > 64)
            $error("xaihls_rd_dma: ADDR_WIDTH %0d is outside 32..64 (instance %m)", ADDR_WIDTH);
        if (ID_WIDTH < 1) $error("xaihls_rd_dma: ID_WIDTH %0d must be at least 1 (instance %m)", ID_WIDTH);
        if (USER_WIDTH < 1) $error("xaihls_rd_dma: USER_WIDTH %0d must be at least 1 (instance %m)", USER_WIDTH);
        if (LEN_BITS < 9) $error("xaihls_rd_dma: LEN_BITS %0d must be at least 9 (instance %m)", LEN_BITS);
        if (META_DEPTH < 2 || (META_DEPTH & (META_DEPTH - 1)) != 0)
            $error("xaihls_rd_dma: META_DEPTH %0d must be a power of two >= 2 (instance %m)", META_DEPTH);
    end

    assign m_axi_arid    = '0;
    assign m_axi_arsize  = 3'(BB);
    assign m_axi_arburst = 2'b01;  // INCR
    assign m_axi_arlock  = 1'b0;
    assign m_axi_arcache = 4'b0011;
    assign m_axi_arprot  = 3'b000;

    // ---- splitter: a command into bursts ----
    logic                  sp_active;
    logic [ADDR_WIDTH-1:0] sp_addr;
    logic [LEN_BITS-1:0]   sp_left;   // beats left
    logic [LEN_BITS-1:0]   sp_beat;   // index of the next burst's first beat within the command
    logic [USER_WIDTH-1:0] sp_user;

    localparam int MW = USER_WIDTH + LEN_BITS + 2;
    logic [MW-1:0] meta_out;
    logic meta_empty, meta_full;
    logic [$clog2(META_DEPTH):0] meta_count;

    logic [PB:0] to_4k;   // beats to the 4 KiB boundary (1 .. 4096 / beat bytes)
    logic [8:0]  blen;    // beats in this burst (1..256)
    assign to_4k = (PB+1)'((13'h1000 - {1'b0, sp_addr[11:0]}) >> BB);
    always_comb begin
        blen = 9'd256;
        if (sp_left < LEN_BITS'(256)) blen = 9'(sp_left);
        // compared in 13 bits: at 256 and 512 bits blen (up to 256) does not fit to_4k's PB + 1 bits
        if (13'(to_4k) < 13'(blen)) blen = 9'(to_4k);
    end

    logic issue, last_burst;
    assign last_burst = sp_left == LEN_BITS'(blen);
    assign issue = sp_active && (!m_axi_arvalid || m_axi_arready) && !meta_full;
    assign cmd_ready = !sp_active || (issue && last_burst);  // back-to-back commands

    xaihls_fifo #(.WIDTH(MW), .DEPTH(META_DEPTH)) u_meta (
        .clk, .rst, .push(issue), .wdata({sp_user, sp_beat, sp_beat == '0, last_burst}),
        .pop(m_axi_rvalid && m_axi_rready && m_axi_rlast), .rdata(meta_out),
        .empty(meta_empty), .full(meta_full), .count(meta_count)
    );

    always_ff @(posedge clk) begin
        if (rst) begin
            sp_active <= 1'b0;
            m_axi_arvalid <= 1'b0;
            m_axi_araddr <= '0;
            m_axi_arlen <= '0;
            sp_addr <= '0;
            sp_left <= '0;
            sp_beat <= '0;
            sp_user <= '0;
        end else begin
            if (m_axi_arvalid && m_axi_arready) m_axi_arvalid <= 1'b0;
            if (issue) begin
                m_axi_arvalid <= 1'b1;
                m_axi_araddr <= sp_addr;
                m_axi_arlen <= 8'(blen - 9'd1);
                sp_addr <= sp_addr + ADDR_WIDTH'({blen, BB'(0)});
                sp_left <= sp_left - LEN_BITS'(blen);
                sp_beat <= sp_beat + LEN_BITS'(blen);
                if (last_burst) sp_active <= 1'b0;
            end
            if (cmd_valid && cmd_ready) begin
                sp_active <= 1'b1;
                sp_addr <= base + ADDR_WIDTH'(cmd_off);
                sp_left <= cmd_beats;
                sp_beat <= '0;
                sp_user <= cmd_user;
            end
        end
    end

    // ---- beats out ----
    logic [LEN_BITS-1:0] r_count;   // beat within the current burst
    logic [USER_WIDTH-1:0] h_user;
    logic [LEN_BITS-1:0] h_beat;
    logic h_first, h_last;
    assign {h_user, h_beat, h_first, h_last} = meta_out;

    assign out_valid    = m_axi_rvalid && !meta_empty;
    assign m_axi_rready = out_ready && !meta_empty;
    assign out_data     = m_axi_rdata;
    assign out_user     = h_user;
    assign out_beat     = h_beat + r_count;
    assign out_first    = h_first && r_count == '0;
    assign out_last     = h_last && m_axi_rlast;

    always_ff @(posedge clk) begin
        if (rst) begin
            r_count <= '0;
            err <= 1'b0;
        end else begin
            if (clear) err <= 1'b0;
            if (m_axi_rvalid && m_axi_rready) begin
                r_count <= m_axi_rlast ? '0 : r_count + 1'b1;
                if (m_axi_rresp[1]) err <= 1'b1;
            end
        end
    end

    logic unused;
    assign unused = ^{m_axi_rid, meta_count};
endmodule
