// AXI4 slave memory for simulation only (plusargs, $readmemh/$writememh): the DDR that
// xaihls_sim_top gives the engine, so that no DDR beat goes through Python.
//
// Guarantees:
// - INCR and FIXED bursts of any size up to DATA_WIDTH, 1..256 beats; byte strobes honoured;
//   a burst that crosses 4 KiB, a WRAP burst or a WLAST in the wrong place is an $error.
// - Up to READ_DEPTH read and WRITE_DEPTH write bursts outstanding; reads answered in order.
//   Latency L (>= 1) is counted between handshakes, as a bus monitor counts it: a burst's first
//   R beat completes L cycles after its AR handshake at the earliest (1: the next cycle), a
//   burst's B response L cycles after its last W beat. Bursts pipeline: back-to-back bursts
//   stream at one beat a cycle. W beats wait for their AW (AXI allows it).
// - VALID once raised stays until READY; the data of a raised beat never changes.
// - Addresses wrap modulo 2**MEM_ADDR_BITS bytes (a DDR base above the memory size works).
//
// Run-time plusargs (the simulation's runner sets them; none is needed):
//   +ddr_latency=N         read and write latency in cycles (>= 1; default READ_LATENCY/WRITE_LATENCY)
//   +ddr_read_latency=N, +ddr_write_latency=N   one of them
//   +ddr_bw=B              cap in bytes per cycle shared by R and W beats (real; 0 = none, the default)
//   +ddr_stall_seed=S      pseudo-random ready/valid stalls on every channel (AR/AW/W ready, R/B valid),
//   +ddr_stall_pct=P       each cycle stalled with probability P percent (default 30); seed 0 = none
//   +ddr_slverr_lo=A, +ddr_slverr_hi=B   memory byte addresses [A, B): reads answer SLVERR (data 0),
//                          writes are dropped and their burst answers SLVERR
//   +ddr_load=F, +ddr_dump=F   files of the backdoor: bd_load pulses $readmemh(F) (its @ addresses
//                          are word indices); bd_dump pulses $writememh(F, mem, bd_first, bd_last)
//
// Default latency: 24 cycles each way at the engine's 100 MHz (240 ns). An estimate for an idle
// Zynq-7000 HP port to DDR3-1066 (PL-PS async FIFOs both ways, the DDR controller's queue and
// arbitration, tRCD + CL on a row miss), not a measurement on a board; it is the figure
// xaihls/plan/cost.py assumes by default (DDR_LATENCY). Run with +ddr_latency for others.

module xaihls_sim_axi_ram #(
    parameter int DATA_WIDTH    = 64,
    parameter int ADDR_WIDTH    = 64,
    parameter int ID_WIDTH      = 1,
    parameter int MEM_ADDR_BITS = 22,   // memory size: 2**MEM_ADDR_BITS bytes
    parameter int READ_LATENCY  = 24,
    parameter int WRITE_LATENCY = 24,
    parameter int READ_DEPTH    = 16,   // read bursts accepted and not yet started (a power of two)
    parameter int WRITE_DEPTH   = 16    // write bursts accepted and not yet answered (a power of two)
) (
    input  logic                   clk,
    input  logic                   rst,

    input  logic [ID_WIDTH-1:0]    s_axi_awid,
    input  logic [ADDR_WIDTH-1:0]  s_axi_awaddr,
    input  logic [7:0]             s_axi_awlen,
    input  logic [2:0]             s_axi_awsize,
    input  logic [1:0]             s_axi_awburst,
    input  logic                   s_axi_awvalid,
    output logic                   s_axi_awready,
    input  logic [DATA_WIDTH-1:0]  s_axi_wdata,
    input  logic [DATA_WIDTH/8-1:0] s_axi_wstrb,
    input  logic                   s_axi_wlast,
    input  logic                   s_axi_wvalid,
    output logic                   s_axi_wready,
    output logic [ID_WIDTH-1:0]    s_axi_bid,
    output logic [1:0]             s_axi_bresp,
    output logic                   s_axi_bvalid,
    input  logic                   s_axi_bready,
    input  logic [ID_WIDTH-1:0]    s_axi_arid,
    input  logic [ADDR_WIDTH-1:0]  s_axi_araddr,
    input  logic [7:0]             s_axi_arlen,
    input  logic [2:0]             s_axi_arsize,
    input  logic [1:0]             s_axi_arburst,
    input  logic                   s_axi_arvalid,
    output logic                   s_axi_arready,
    output logic [ID_WIDTH-1:0]    s_axi_rid,
    output logic [DATA_WIDTH-1:0]  s_axi_rdata,
    output logic [1:0]             s_axi_rresp,
    output logic                   s_axi_rlast,
    output logic                   s_axi_rvalid,
    input  logic                   s_axi_rready,

    // backdoor (testbench): one-cycle pulses
    input  logic                   bd_load,
    input  logic                   bd_dump,
    input  logic [31:0]            bd_first,   // word indices, inclusive
    input  logic [31:0]            bd_last
);
    localparam int STRB_WIDTH = DATA_WIDTH / 8;
    localparam int WORD_BITS  = $clog2(STRB_WIDTH);            // byte-offset bits of a word
    localparam int MEM_WORDS  = 2 ** (MEM_ADDR_BITS - WORD_BITS);
    localparam int RP = $clog2(READ_DEPTH);
    localparam int WP = $clog2(WRITE_DEPTH);
    localparam logic [1:0] OKAY = 2'b00, SLVERR = 2'b10;
    localparam logic [1:0] FIXED = 2'b00, INCR = 2'b01;

    initial begin
        if (DATA_WIDTH < 8 || DATA_WIDTH > 1024 || 2 ** $clog2(DATA_WIDTH) != DATA_WIDTH)
            $error("xaihls_sim_axi_ram: DATA_WIDTH %0d is not a power of two in 8..1024", DATA_WIDTH);
        if (ADDR_WIDTH < 12 || ADDR_WIDTH > 64)
            $error("xaihls_sim_axi_ram: ADDR_WIDTH %0d is outside 12..64", ADDR_WIDTH);
        if (ID_WIDTH < 1 || ID_WIDTH > 32)
            $error("xaihls_sim_axi_ram: ID_WIDTH %0d is outside 1..32", ID_WIDTH);
        if (MEM_ADDR_BITS <= WORD_BITS || MEM_ADDR_BITS > 34 || MEM_ADDR_BITS > ADDR_WIDTH)
            $error("xaihls_sim_axi_ram: MEM_ADDR_BITS %0d must exceed %0d and be at most min(34, ADDR_WIDTH)",
                   MEM_ADDR_BITS, WORD_BITS);
        if (READ_LATENCY < 1 || WRITE_LATENCY < 1)
            $error("xaihls_sim_axi_ram: latencies must be at least 1 cycle");
        if (READ_DEPTH < 2 || 2 ** RP != READ_DEPTH || WRITE_DEPTH < 2 || 2 ** WP != WRITE_DEPTH)
            $error("xaihls_sim_axi_ram: READ_DEPTH and WRITE_DEPTH must be powers of two >= 2");
    end

    // ---------------------------------------------------------------- run-time configuration
    int unsigned rd_latency = READ_LATENCY, wr_latency = WRITE_LATENCY;
    int unsigned stall_seed = 0, stall_pct = 30;
    int signed   bw_q8 = 0;                         // bytes per cycle x 256; 0: no cap
    logic [63:0] err_lo = '0, err_hi = '0;
    string       load_file = "", dump_file = "";

    initial begin
        int unsigned v;
        real bw;
        if ($value$plusargs("ddr_latency=%d", v)) begin rd_latency = v; wr_latency = v; end
        if ($value$plusargs("ddr_read_latency=%d", v)) rd_latency = v;
        if ($value$plusargs("ddr_write_latency=%d", v)) wr_latency = v;
        if (rd_latency < 1 || wr_latency < 1) $error("xaihls_sim_axi_ram: +ddr_*latency must be >= 1");
        if ($value$plusargs("ddr_stall_seed=%d", v)) stall_seed = v;
        if ($value$plusargs("ddr_stall_pct=%d", v)) stall_pct = v;
        if (stall_pct > 100) $error("xaihls_sim_axi_ram: +ddr_stall_pct=%0d is above 100", stall_pct);
        if ($value$plusargs("ddr_bw=%f", bw)) bw_q8 = int'(bw * 256.0);
        if ($value$plusargs("ddr_slverr_lo=%d", err_lo)) ;
        if ($value$plusargs("ddr_slverr_hi=%d", err_hi)) ;
        if ($value$plusargs("ddr_load=%s", load_file)) ;
        if ($value$plusargs("ddr_dump=%s", dump_file)) ;
    end

    // ---------------------------------------------------------------- stalls: one xorshift32 per channel
    localparam int CH = 5;  // AR, R, AW, W, B
    logic [31:0] rng [CH];
    logic [CH-1:0] stall;
    logic [15:0] stall_level;
    assign stall_level = 16'((stall_pct * 65536) / 100);

    function automatic logic [31:0] xorshift(input logic [31:0] x);
        logic [31:0] y;
        y = x ^ (x << 13);
        y = y ^ (y >> 17);
        xorshift = y ^ (y << 5);
    endfunction

    always_comb
        for (int c = 0; c < CH; c++) stall[c] = (stall_seed != 0) && (rng[c][31:16] < stall_level);

    // ---------------------------------------------------------------- memory and cycle counter
    logic [DATA_WIDTH-1:0] mem [MEM_WORDS];
    logic [63:0] now;

    // a bus address's memory address: its low MEM_ADDR_BITS
    function automatic logic in_err(input logic [MEM_ADDR_BITS-1:0] a);
        in_err = (64'(a) >= err_lo) && (64'(a) < err_hi);
    endfunction

    function automatic logic [ADDR_WIDTH-1:0] next_addr(input logic [ADDR_WIDTH-1:0] a, input logic [2:0] size,
                                                         input logic fixed);
        logic [ADDR_WIDTH-1:0] step;
        step = ADDR_WIDTH'(1) << size;
        next_addr = fixed ? a : (a & ~(step - 1)) + step;
    endfunction

    function automatic logic crosses_4k(input logic [11:0] a, input logic [7:0] len, input logic [2:0] size);
        logic [13:0] first, past;
        first = 14'(a) & ~((14'd1 << size) - 14'd1);
        past = first + ((14'(len) + 14'd1) << size);   // one past the last byte
        crosses_4k = past > 14'h1000;
    endfunction

    // ---------------------------------------------------------------- read: AR queue, one R stage
    logic [ID_WIDTH-1:0]   arq_id [READ_DEPTH];
    logic [ADDR_WIDTH-1:0] arq_addr [READ_DEPTH];
    logic [7:0]            arq_len [READ_DEPTH];
    logic [2:0]            arq_size [READ_DEPTH];
    logic                  arq_fixed [READ_DEPTH];
    logic [63:0]           arq_time [READ_DEPTH];
    logic [RP-1:0]         ar_wp, ar_rp;
    logic [RP:0]           ar_count;

    logic                  r_active;           // a burst is being answered
    logic [ADDR_WIDTH-1:0] r_addr;
    logic [7:0]            r_left;             // beats after the current one
    logic [ID_WIDTH-1:0]   r_id;
    logic [2:0]            r_size;
    logic                  r_fixed;

    // ---------------------------------------------------------------- write: AW queue, W, B queue
    logic [ID_WIDTH-1:0]   awq_id [WRITE_DEPTH];
    logic [ADDR_WIDTH-1:0] awq_addr [WRITE_DEPTH];
    logic [7:0]            awq_len [WRITE_DEPTH];
    logic [2:0]            awq_size [WRITE_DEPTH];
    logic                  awq_fixed [WRITE_DEPTH];
    logic [WP-1:0]         aw_wp, aw_rp;
    logic [WP:0]           aw_count;
    logic [ADDR_WIDTH-1:0] w_addr;
    logic [7:0]            w_beat;
    logic                  w_err;

    logic [ID_WIDTH-1:0]   bq_id [WRITE_DEPTH];
    logic [1:0]            bq_resp [WRITE_DEPTH];
    logic [63:0]           bq_time [WRITE_DEPTH];
    logic [WP-1:0]         b_wp, b_rp;
    logic [WP:0]           b_count;

    logic signed [31:0]    credit;             // bandwidth tokens, bytes x 256
    logic                  bw_ok;
    assign bw_ok = (bw_q8 == 0) || (credit > 0);

    assign s_axi_arready = (ar_count != (RP+1)'(READ_DEPTH)) && !stall[0];
    assign s_axi_awready = (aw_count != (WP+1)'(WRITE_DEPTH)) && !stall[2];
    assign s_axi_wready  = (aw_count != '0) && (b_count != (WP+1)'(WRITE_DEPTH)) && bw_ok && !stall[3];

    // The beat the R stage would send next: the open burst's, or the oldest accepted burst's once
    // its time has come (an address accepted at this very edge when the queue is empty: the
    // latency-1 case). A burst accepted at edge t with latency L has time t + L - 1: its first
    // beat is loaded at edge t + L - 1 and handshaken at edge t + L at the earliest.
    logic                  ar_take, ar_direct, r_have;
    logic [ADDR_WIDTH-1:0] rc_addr;
    logic [7:0]            rc_left;
    logic [ID_WIDTH-1:0]   rc_id;
    logic [2:0]            rc_size;
    logic                  rc_fixed;
    logic                  r_go, w_go, w_end, b_direct, b_go;
    logic [ID_WIDTH-1:0]   bc_id;
    logic [1:0]            bc_resp;
    always_comb begin
        ar_take   = s_axi_arvalid && s_axi_arready;
        ar_direct = !r_active && ar_count == '0 && ar_take && rd_latency == 1;
        r_have    = r_active || (ar_count != '0 && arq_time[ar_rp] <= now) || ar_direct;
        if (r_active) begin
            rc_addr = r_addr; rc_left = r_left; rc_id = r_id; rc_size = r_size; rc_fixed = r_fixed;
        end else if (ar_count != '0) begin
            rc_addr = arq_addr[ar_rp]; rc_left = arq_len[ar_rp]; rc_id = arq_id[ar_rp];
            rc_size = arq_size[ar_rp]; rc_fixed = arq_fixed[ar_rp];
        end else begin
            rc_addr = s_axi_araddr; rc_left = s_axi_arlen; rc_id = s_axi_arid; rc_size = s_axi_arsize;
            rc_fixed = (s_axi_arburst == FIXED);
        end
        r_go = (!s_axi_rvalid || s_axi_rready) && r_have && bw_ok && !stall[1];
        w_go = s_axi_wvalid && s_axi_wready;
        w_end = w_go && w_beat == awq_len[aw_rp];
        // the B stage likewise: the oldest response whose time has come, or (latency 1, queue
        // empty) the response of the burst whose last beat is taken at this edge
        b_direct = b_count == '0 && w_end && wr_latency == 1;
        bc_id = (b_count != '0) ? bq_id[b_rp] : awq_id[aw_rp];
        bc_resp = (b_count != '0) ? bq_resp[b_rp] : w_resp;
        b_go = (!s_axi_bvalid || s_axi_bready) && ((b_count != '0 && bq_time[b_rp] <= now) || b_direct)
               && !stall[4];
    end

    logic [ADDR_WIDTH-1:0] wc_addr;
    logic [1:0]            w_resp;     // the response of the burst whose beat is taken now, if its last
    assign wc_addr = (w_beat == 8'd0) ? awq_addr[aw_rp] : w_addr;
    assign w_resp = (w_err || in_err(wc_addr[MEM_ADDR_BITS-1:0])) ? SLVERR : OKAY;

    always_ff @(posedge clk) begin
        if (rst) begin
            now <= '0;
            ar_wp <= '0; ar_rp <= '0; ar_count <= '0;
            aw_wp <= '0; aw_rp <= '0; aw_count <= '0;
            b_wp <= '0; b_rp <= '0; b_count <= '0;
            r_active <= 1'b0; r_addr <= '0; r_left <= '0; r_id <= '0; r_size <= '0; r_fixed <= 1'b0;
            w_addr <= '0; w_beat <= '0; w_err <= 1'b0;
            s_axi_rvalid <= 1'b0; s_axi_rdata <= '0; s_axi_rresp <= OKAY; s_axi_rlast <= 1'b0; s_axi_rid <= '0;
            s_axi_bvalid <= 1'b0; s_axi_bresp <= OKAY; s_axi_bid <= '0;
            credit <= '0;
            for (int c = 0; c < CH; c++) rng[c] <= 32'h9E3779B9 ^ (stall_seed * 32'(2 * c + 1)) ^ 32'(c + 1);
        end else begin
            now <= now + 64'd1;
            for (int c = 0; c < CH; c++) rng[c] <= xorshift(rng[c]);
            if (bw_q8 != 0) begin
                logic signed [31:0] c;
                c = credit + bw_q8 - (r_go ? 32'(STRB_WIDTH * 256) : 32'd0) - (w_go ? 32'(STRB_WIDTH * 256) : 32'd0);
                credit <= (c > 32'(STRB_WIDTH * 256)) ? 32'(STRB_WIDTH * 256) : c;
            end

            // AR
            if (s_axi_arvalid && s_axi_arready) begin
                if (s_axi_arburst != INCR && s_axi_arburst != FIXED)
                    $error("xaihls_sim_axi_ram: read burst type %0d at %h is not supported", s_axi_arburst, s_axi_araddr);
                if (32'(s_axi_arsize) > WORD_BITS)
                    $error("xaihls_sim_axi_ram: read size %0d exceeds the data width", s_axi_arsize);
                if (s_axi_arburst == INCR && crosses_4k(s_axi_araddr[11:0], s_axi_arlen, s_axi_arsize))
                    $error("xaihls_sim_axi_ram: read burst at %h, %0d beats, crosses 4 KiB", s_axi_araddr,
                           s_axi_arlen + 8'd1);
                arq_id[ar_wp] <= s_axi_arid;
                arq_addr[ar_wp] <= s_axi_araddr;
                arq_len[ar_wp] <= s_axi_arlen;
                arq_size[ar_wp] <= s_axi_arsize;
                arq_fixed[ar_wp] <= (s_axi_arburst == FIXED);
                arq_time[ar_wp] <= now + 64'(rd_latency) - 64'd1;
                ar_wp <= ar_wp + 1'b1;
            end
            // R: a new beat when the stage is empty or its beat is taken
            if (s_axi_rvalid && s_axi_rready) s_axi_rvalid <= 1'b0;
            if (r_go) begin
                s_axi_rvalid <= 1'b1;
                s_axi_rid <= rc_id;
                s_axi_rlast <= (rc_left == 8'd0);
                s_axi_rresp <= in_err(rc_addr[MEM_ADDR_BITS-1:0]) ? SLVERR : OKAY;
                s_axi_rdata <= in_err(rc_addr[MEM_ADDR_BITS-1:0]) ? '0 : mem[rc_addr[MEM_ADDR_BITS-1:WORD_BITS]];
                r_active <= (rc_left != 8'd0);
                r_addr <= next_addr(rc_addr, rc_size, rc_fixed);
                r_left <= rc_left - 8'd1;
                r_id <= rc_id;
                r_size <= rc_size;
                r_fixed <= rc_fixed;
                if (!r_active) ar_rp <= ar_rp + 1'b1;
            end
            ar_count <= ar_count + (RP+1)'(ar_take) - (RP+1)'(r_go && !r_active);

            // AW
            if (s_axi_awvalid && s_axi_awready) begin
                if (s_axi_awburst != INCR && s_axi_awburst != FIXED)
                    $error("xaihls_sim_axi_ram: write burst type %0d at %h is not supported", s_axi_awburst, s_axi_awaddr);
                if (32'(s_axi_awsize) > WORD_BITS)
                    $error("xaihls_sim_axi_ram: write size %0d exceeds the data width", s_axi_awsize);
                if (s_axi_awburst == INCR && crosses_4k(s_axi_awaddr[11:0], s_axi_awlen, s_axi_awsize))
                    $error("xaihls_sim_axi_ram: write burst at %h, %0d beats, crosses 4 KiB", s_axi_awaddr,
                           s_axi_awlen + 8'd1);
                awq_id[aw_wp] <= s_axi_awid;
                awq_addr[aw_wp] <= s_axi_awaddr;
                awq_len[aw_wp] <= s_axi_awlen;
                awq_size[aw_wp] <= s_axi_awsize;
                awq_fixed[aw_wp] <= (s_axi_awburst == FIXED);
                aw_wp <= aw_wp + 1'b1;
            end
            // W: into memory at the handshake; the burst's response queued at its last beat
            if (w_go) begin
                if (s_axi_wlast != (w_beat == awq_len[aw_rp]))
                    $error("xaihls_sim_axi_ram: WLAST=%0d on beat %0d of a %0d-beat burst", s_axi_wlast, w_beat,
                           awq_len[aw_rp] + 8'd1);
                if (!in_err(wc_addr[MEM_ADDR_BITS-1:0]))
                    for (int b = 0; b < STRB_WIDTH; b++)
                        if (s_axi_wstrb[b]) mem[wc_addr[MEM_ADDR_BITS-1:WORD_BITS]][8*b +: 8] <= s_axi_wdata[8*b +: 8];
                w_addr <= next_addr(wc_addr, awq_size[aw_rp], awq_fixed[aw_rp]);
                if (w_beat == awq_len[aw_rp]) begin
                    bq_id[b_wp] <= awq_id[aw_rp];
                    bq_resp[b_wp] <= w_resp;
                    bq_time[b_wp] <= now + 64'(wr_latency) - 64'd1;
                    b_wp <= b_wp + 1'b1;
                    aw_rp <= aw_rp + 1'b1;
                    w_beat <= 8'd0;
                    w_err <= 1'b0;
                end else begin
                    w_beat <= w_beat + 8'd1;
                    w_err <= w_err || in_err(wc_addr[MEM_ADDR_BITS-1:0]);
                end
            end
            aw_count <= aw_count + (WP+1)'(s_axi_awvalid && s_axi_awready) - (WP+1)'(w_end);
            // B
            if (s_axi_bvalid && s_axi_bready) s_axi_bvalid <= 1'b0;
            if (b_go) begin
                s_axi_bvalid <= 1'b1;
                s_axi_bid <= bc_id;
                s_axi_bresp <= bc_resp;
                b_rp <= b_rp + 1'b1;
            end
            b_count <= b_count + (WP+1)'(w_end) - (WP+1)'(b_go);

            // backdoor
            if (bd_load) $readmemh(load_file, mem);
            if (bd_dump) $writememh(dump_file, mem, bd_first, bd_last);
        end
    end
endmodule
