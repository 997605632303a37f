// A flat memory of DEPTH entries (WIDTH bits) that LANES lanes access in one cycle at the
// consecutive positions K, K+1, ..., K+LANES-1: LANES banks, entry f in bank f mod LANES.
//
// The engine keeps ReLU bits and pool indices channel-interleaved: within a group of up to TM
// channels, the bits of one position are consecutive (f = base + pos * lanes + lane), so the
// TM write-back lanes touch TM consecutive entries and never collide on a bank.
// Guarantees: read data one cycle after the address; no conflicts for any K.

module xaihls_lanemem #(
    parameter int LANES = 4,       // a power of two
    parameter int WIDTH = 1,
    parameter int DEPTH = 4096,
    parameter int LOG_L = (LANES > 1) ? $clog2(LANES) : 1
) (
    input  logic              clk,
    input  logic [31:0]       wk,
    input  logic [LANES-1:0]  wen,
    input  logic [LANES-1:0][WIDTH-1:0]  wdata,
    input  logic [31:0]       rk,
    output logic [LANES-1:0][WIDTH-1:0]  rdata
);
    localparam int BD = (DEPTH + LANES - 1) / LANES + 1;
    localparam int BAW = (BD > 1) ? $clog2(BD) : 1;

    logic [LANES-1:0][WIDTH-1:0] bank_rdata;
    logic [LOG_L-1:0] rrot_q;

    for (genvar bk = 0; bk < LANES; bk++) begin : g_bank
        logic [LOG_L-1:0] wl, rl;
        logic [31:0] wa, ra;
        if (LANES > 1) begin : g_multi
            assign wl = LOG_L'(bk) - wk[LOG_L-1:0];
            assign rl = LOG_L'(bk) - rk[LOG_L-1:0];
            // bank bk holds K+lane when bk >= K mod LANES, else the next row's K+lane
            if (bk < LANES - 1) begin : g_cmp
                assign wa = (wk >> LOG_L) + 32'(LOG_L'(bk) < wk[LOG_L-1:0]);
                assign ra = (rk >> LOG_L) + 32'(LOG_L'(bk) < rk[LOG_L-1:0]);
            end else begin : g_top
                assign wa = wk >> LOG_L;
                assign ra = rk >> LOG_L;
            end
        end else begin : g_single
            assign wl = '0;
            assign rl = '0;
            assign wa = wk;
            assign ra = rk;
        end
        xaihls_sdp_ram #(.WIDTH(WIDTH), .DEPTH(BD)) u_bank (
            .clk,
            .we(wen[wl]), .waddr(BAW'(wa)), .wdata(wdata[wl]),
            .re(1'b1), .raddr(BAW'(ra)),
            .rdata(bank_rdata[bk])
        );
        logic unused;
        assign unused = ^{rl, wa[31:BAW], ra[31:BAW]};
    end

    always_ff @(posedge clk) rrot_q <= rk[LOG_L-1:0];
    always_comb begin
        for (int l = 0; l < LANES; l++) rdata[l] = bank_rdata[LOG_L'(32'(l) + 32'(rrot_q))];
    end
endmodule
