// AXI4-Lite control registers of xaihls_top (docs/contract.md, "AXI4-Lite registers"):
// the ap_ctrl_hs block and the arguments of
//   int xaihls_top(short *ddr, int method, int target, int steps, int images);
// at the offsets Vitis HLS gives them, plus read-only debug registers.
//
//   0x00 control: 0 ap_start (reads 1 while running), 1 ap_done (clear on read), 2 ap_idle,
//        3 ap_ready (clear on read), 7 auto_restart
//   0x04 global interrupt enable   0x08 IP interrupt enable   0x0c IP interrupt status (toggle on write)
//   0x10 ap_return (status)        0x18/0x1c ddr base         0x24 method   0x2c target   0x34 steps
//   0x3c images (0 or 1: one image; the Program's batch: an image batch)
//   0x40 cycles of the last run (start to done)   0x44 profile entries of the last run
//   0x800 + 4k: profile entry k = {kind[31:24], cycles[23:0]}
// Guarantees: a start written while the engine runs is ignored; one response per request;
// every response is OKAY.

import xaihls_contract_pkg::*;

module xaihls_axil_regs #(
    parameter int ADDR_WIDTH    = 12,
    parameter int PROFILE_DEPTH = 512
) (
    input  logic                    clk,
    input  logic                    rst,

    input  logic [ADDR_WIDTH-1:0]   s_axil_awaddr,
    input  logic [2:0]              s_axil_awprot,
    input  logic                    s_axil_awvalid,
    output logic                    s_axil_awready,
    input  logic [31:0]             s_axil_wdata,
    input  logic [3:0]              s_axil_wstrb,
    input  logic                    s_axil_wvalid,
    output logic                    s_axil_wready,
    output logic [1:0]              s_axil_bresp,
    output logic                    s_axil_bvalid,
    input  logic                    s_axil_bready,
    input  logic [ADDR_WIDTH-1:0]   s_axil_araddr,
    input  logic [2:0]              s_axil_arprot,
    input  logic                    s_axil_arvalid,
    output logic                    s_axil_arready,
    output logic [31:0]             s_axil_rdata,
    output logic [1:0]              s_axil_rresp,
    output logic                    s_axil_rvalid,
    input  logic                    s_axil_rready,

    output logic                    interrupt,

    output logic                    start,       // one-cycle pulse
    output logic [63:0]             ddr_base,
    output logic [31:0]             method,
    output logic [31:0]             target,
    output logic [31:0]             steps,
    output logic [31:0]             images,
    input  logic                    busy,
    input  logic                    done,        // one-cycle pulse at the end of a run
    input  logic [31:0]             status,
    input  logic [31:0]             run_cycles,
    input  logic [31:0]             profile_count,
    output logic [$clog2(PROFILE_DEPTH)-1:0] profile_addr,
    input  logic [31:0]             profile_data  // one cycle after profile_addr
);
    localparam int PW = $clog2(PROFILE_DEPTH);

    initial begin
        if (ADDR_WIDTH != 12)  // the map: registers below 0x800, the profile from 0x800
            $error("xaihls_axil_regs: ADDR_WIDTH %0d must be 12 (instance %m)", ADDR_WIDTH);
        if (PROFILE_DEPTH < 2 || PROFILE_DEPTH > 512 || (PROFILE_DEPTH & (PROFILE_DEPTH - 1)) != 0)
            $error("xaihls_axil_regs: PROFILE_DEPTH %0d must be a power of two in 2..512 (instance %m)",
                   PROFILE_DEPTH);
    end

    logic ap_done, ap_ready, auto_restart, gie, restart_pending;
    logic [1:0] ier, isr;
    logic [31:0] ret;

    // ---- write channel: address and data may arrive in either order ----
    logic aw_hold, w_hold;
    logic [ADDR_WIDTH-1:0] awaddr_q;
    logic [31:0] wdata_q;
    logic [3:0] wstrb_q;
    logic do_write;

    assign s_axil_awready = !aw_hold;
    assign s_axil_wready  = !w_hold;
    assign s_axil_bresp   = 2'b00;
    assign do_write = aw_hold && w_hold && !s_axil_bvalid;

    function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] data, input logic [3:0] strb);
        logic [31:0] v;
        for (int b = 0; b < 4; b++) v[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];
        merge = v;
    endfunction

    // ---- read channel ----
    logic rd_pending;
    logic [ADDR_WIDTH-1:0] araddr_q;
    assign s_axil_arready = !rd_pending && !s_axil_rvalid;
    assign s_axil_rresp   = 2'b00;
    assign profile_addr   = PW'(s_axil_araddr[ADDR_WIDTH-1:2]);

    logic read_ctrl;  // the control register is read now: clear done/ready
    assign read_ctrl = rd_pending && (araddr_q[ADDR_WIDTH-1:2] == '0);

    logic [ADDR_WIDTH-1:0] wa;
    assign wa = awaddr_q;

    logic done_evt;
    assign done_evt = done;

    always_ff @(posedge clk) begin
        if (rst) begin
            aw_hold <= 1'b0; w_hold <= 1'b0; s_axil_bvalid <= 1'b0;
            rd_pending <= 1'b0; s_axil_rvalid <= 1'b0; s_axil_rdata <= '0;
            ap_done <= 1'b0; ap_ready <= 1'b0; auto_restart <= 1'b0; gie <= 1'b0; ier <= '0; isr <= '0;
            ret <= '0; ddr_base <= '0; method <= '0; target <= '1; steps <= 32'd32; images <= 32'd1;
            start <= 1'b0; restart_pending <= 1'b0;
            awaddr_q <= '0; wdata_q <= '0; wstrb_q <= '0; araddr_q <= '0;
        end else begin
            start <= 1'b0;
            if (s_axil_awvalid && s_axil_awready) begin aw_hold <= 1'b1; awaddr_q <= s_axil_awaddr; end
            if (s_axil_wvalid && s_axil_wready) begin w_hold <= 1'b1; wdata_q <= s_axil_wdata; wstrb_q <= s_axil_wstrb; end
            if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;

            if (done_evt) begin
                ap_done <= 1'b1;
                ap_ready <= 1'b1;
                ret <= status;
                if (ier[0]) isr[0] <= 1'b1;
                if (ier[1]) isr[1] <= 1'b1;
                if (auto_restart) restart_pending <= 1'b1;
            end
            if (restart_pending && !busy) begin
                restart_pending <= 1'b0;
                start <= 1'b1;
            end

            if (do_write) begin
                aw_hold <= 1'b0; w_hold <= 1'b0; s_axil_bvalid <= 1'b1;
                case (wa[ADDR_WIDTH-1:2])
                    (ADDR_WIDTH-2)'(REG_CTRL >> 2): begin
                        if (wstrb_q[0]) begin
                            auto_restart <= wdata_q[7];
                            if (wdata_q[0] && !busy && !start) start <= 1'b1;  // ignored while running
                        end
                    end
                    (ADDR_WIDTH-2)'(REG_GIE >> 2): if (wstrb_q[0]) gie <= wdata_q[0];
                    (ADDR_WIDTH-2)'(REG_IER >> 2): if (wstrb_q[0]) ier <= wdata_q[1:0];
                    (ADDR_WIDTH-2)'(REG_ISR >> 2): if (wstrb_q[0]) isr <= isr ^ wdata_q[1:0];
                    (ADDR_WIDTH-2)'(REG_DDR_LO >> 2): ddr_base[31:0] <= merge(ddr_base[31:0], wdata_q, wstrb_q);
                    (ADDR_WIDTH-2)'(REG_DDR_HI >> 2): ddr_base[63:32] <= merge(ddr_base[63:32], wdata_q, wstrb_q);
                    (ADDR_WIDTH-2)'(REG_METHOD >> 2): method <= merge(method, wdata_q, wstrb_q);
                    (ADDR_WIDTH-2)'(REG_TARGET >> 2): target <= merge(target, wdata_q, wstrb_q);
                    (ADDR_WIDTH-2)'(REG_STEPS >> 2): steps <= merge(steps, wdata_q, wstrb_q);
                    (ADDR_WIDTH-2)'(REG_IMAGES >> 2): images <= merge(images, wdata_q, wstrb_q);
                    default: ;
                endcase
            end

            if (s_axil_arvalid && s_axil_arready) begin
                rd_pending <= 1'b1;
                araddr_q <= s_axil_araddr;
            end
            if (rd_pending) begin
                rd_pending <= 1'b0;
                s_axil_rvalid <= 1'b1;
                if (araddr_q[ADDR_WIDTH-1]) begin
                    s_axil_rdata <= profile_data;
                end else begin
                    case (araddr_q[ADDR_WIDTH-2:2])
                        (ADDR_WIDTH-3)'(REG_CTRL >> 2): s_axil_rdata <= {24'd0, auto_restart, 3'd0, ap_ready, !busy, ap_done, busy};
                        (ADDR_WIDTH-3)'(REG_GIE >> 2): s_axil_rdata <= {31'd0, gie};
                        (ADDR_WIDTH-3)'(REG_IER >> 2): s_axil_rdata <= {30'd0, ier};
                        (ADDR_WIDTH-3)'(REG_ISR >> 2): s_axil_rdata <= {30'd0, isr};
                        (ADDR_WIDTH-3)'(REG_RETURN >> 2): s_axil_rdata <= ret;
                        (ADDR_WIDTH-3)'(REG_DDR_LO >> 2): s_axil_rdata <= ddr_base[31:0];
                        (ADDR_WIDTH-3)'(REG_DDR_HI >> 2): s_axil_rdata <= ddr_base[63:32];
                        (ADDR_WIDTH-3)'(REG_METHOD >> 2): s_axil_rdata <= method;
                        (ADDR_WIDTH-3)'(REG_TARGET >> 2): s_axil_rdata <= target;
                        (ADDR_WIDTH-3)'(REG_STEPS >> 2): s_axil_rdata <= steps;
                        (ADDR_WIDTH-3)'(REG_IMAGES >> 2): s_axil_rdata <= images;
                        (ADDR_WIDTH-3)'(REG_CYCLES >> 2): s_axil_rdata <= run_cycles;
                        (ADDR_WIDTH-3)'(REG_PROFILE_COUNT >> 2): s_axil_rdata <= profile_count;
                        default: s_axil_rdata <= '0;
                    endcase
                end
                if (read_ctrl) begin
                    // clear on read; an event in the same cycle wins (it is seen by the next read)
                    if (!done_evt) begin
                        ap_done <= 1'b0;
                        ap_ready <= 1'b0;
                    end
                end
            end
            if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
        end
    end

    assign interrupt = gie && (isr != 2'b00);

    // unused: protection bits
    logic unused;
    assign unused = ^{s_axil_awprot, s_axil_arprot};
endmodule
