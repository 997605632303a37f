// Simple dual-port RAM: one write port with segment enables, one registered read port.
//
// Inferred as block RAM or LUT RAM by the synthesis tool (no vendor primitives).
// A read and a write of the same address in one cycle return the old data.

module xaihls_sdp_ram #(
    parameter int WIDTH    = 64,
    parameter int DEPTH    = 256,
    parameter int SEGMENTS = 1,  // write-enable granularity: WIDTH / SEGMENTS bits
    parameter int AW       = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic                clk,
    input  logic [SEGMENTS-1:0] we,
    input  logic [AW-1:0]       waddr,
    input  logic [WIDTH-1:0]    wdata,
    input  logic                re,
    input  logic [AW-1:0]       raddr,
    output logic [WIDTH-1:0]    rdata
);
    localparam int SEG = WIDTH / SEGMENTS;

    logic [WIDTH-1:0] mem [DEPTH];

    always_ff @(posedge clk) begin
        for (int s = 0; s < SEGMENTS; s++) begin
            if (we[s]) mem[waddr][s*SEG +: SEG] <= wdata[s*SEG +: SEG];
        end
    end

    always_ff @(posedge clk) begin
        if (re) rdata <= mem[raddr];
    end

endmodule
