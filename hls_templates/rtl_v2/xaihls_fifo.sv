// Synchronous FIFO (registers), first-word-fall-through: `rdata` is valid while `!empty`.
// Guarantees: words leave in the order they entered; a push while full and a pop while empty
// are ignored (a push and a pop in one cycle both happen unless full or empty blocks one);
// `count` is the number of words held.

module xaihls_fifo #(
    parameter int WIDTH = 32,
    parameter int DEPTH = 4,  // a power of two, at least 2
    parameter int AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             rst,
    input  logic             push,
    input  logic [WIDTH-1:0] wdata,
    input  logic             pop,
    output logic [WIDTH-1:0] rdata,
    output logic             empty,
    output logic             full,
    output logic [AW:0]      count
);
    initial begin
        if (WIDTH < 1) $error("xaihls_fifo: WIDTH %0d must be at least 1 (instance %m)", WIDTH);
        if (DEPTH < 2 || (DEPTH & (DEPTH - 1)) != 0)
            $error("xaihls_fifo: DEPTH %0d must be a power of two >= 2 (instance %m)", DEPTH);
    end

    logic [WIDTH-1:0] mem [DEPTH];
    logic [AW-1:0] wp, rp;

    assign empty = (count == '0);
    assign full  = (count == (AW+1)'(DEPTH));
    assign rdata = mem[rp];

    always_ff @(posedge clk) begin
        if (rst) begin
            wp <= '0;
            rp <= '0;
            count <= '0;
        end else begin
            if (push && !full) begin
                mem[wp] <= wdata;
                wp <= wp + 1'b1;
            end
            if (pop && !empty) rp <= rp + 1'b1;
            count <= count + (AW+1)'(push && !full) - (AW+1)'(pop && !empty);
        end
    end
endmodule
