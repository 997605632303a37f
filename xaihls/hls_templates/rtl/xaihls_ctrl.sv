// The controller of docs/program.md ("The controller"): reads the header, checks it, runs the
// forward list, picks the predicted class (first maximum of the logits), writes the result,
// and for an attribution method runs the backward list under the method's ReLU-backward mode
// and the post-processing (or, for integrated gradients, the path points and the wide sum).
//
// Status (ap_return): bit 0 a bus error (SLVERR/DECERR on any response; the run stops at the
// next job boundary), bit 1 not a version-1 Program (or not 16-bit), bit 2 the arguments or
// the Program do not fit this build (method, steps, target, memory sizes, DDR alignment).
// Every run ends with `done`. A profile entry {kind, cycles} is logged per phase: 1 header,
// 2 image copy, 3 forward descriptor (fetch + job), 4 argmax + result, 5 backward descriptor,
// 6 post-processing, 7 ig table read, 8 ig path point, 9 ig accumulation, 10 logits saved/restored.
// Integrated gradients rerun the forward list at every path point, which rewrites the logits:
// the first pass's logits are kept in the (unused: the IG sum is on chip) ig accumulators
// region and written back before done, so the host reads the image's logits.

import xaihls_pkg::*;

module xaihls_ctrl
#(
    parameter int MASK_BITS       = 4096,
    parameter int INDEX_ENTRIES   = 1024,
    parameter int MAX_INPUT_ELEMS = 4096,
    parameter int BACKWARD        = 1,
    parameter int PROFILE_DEPTH   = 512,
    parameter int SAT_WIDTH       = 8      // width of the engine's per-cycle saturation count
) (
    input  logic        clk,
    input  logic        rst,

    input  logic        start,
    input  logic [63:0] ddr_base,
    input  logic [31:0] method,
    input  logic [31:0] target_arg,
    input  logic [31:0] steps,
    output logic        busy,
    output logic        done,
    output logic [31:0] status,
    output logic [31:0] run_cycles,
    output logic [31:0] profile_count,
    output logic        prof_we,
    output logic [$clog2(PROFILE_DEPTH)-1:0] prof_waddr,
    output logic [31:0] prof_wdata,

    input  logic        rd_err,
    input  logic        wr_err,
    output logic        err_clear,
    output logic [1:0]  rd_owner,     // 0 controller, 1 engine, 2 post
    output logic [1:0]  wr_owner,
    input  logic        wr_idle,

    // engine
    output logic        job_start,
    output xaihls_pkg::desc_t       job_desc,   // valid from job_start until the engine is idle
    output logic [1:0]  job_mode,
    output xaihls_pkg::s32_t        job_target,
    input  logic        engine_busy,
    input  logic [SAT_WIDTH-1:0] engine_sat,   // values the engine's write-back saturated this cycle

    // post-processing
    output logic        post_start,
    output logic [1:0]  post_op,
    output logic [1:0]  post_kind,
    output xaihls_pkg::s32_t        post_n,
    output xaihls_pkg::s32_t        post_in0,
    output xaihls_pkg::s32_t        post_in1,
    output xaihls_pkg::s32_t        post_out,
    output xaihls_pkg::s32_t        post_alpha,
    output xaihls_pkg::s32_t        post_alpha_frac,
    output xaihls_pkg::s32_t        post_weight,
    output logic        post_first,
    output xaihls_pkg::s32_t        post_shift_a,
    output xaihls_pkg::s32_t        post_shift_b,
    input  logic        post_busy,
    input  logic [1:0]  post_sat,

    // the controller's own DDR traffic
    output logic        rd_cmd_valid,
    input  logic        rd_cmd_ready,
    output logic [31:0] rd_cmd_off,
    output logic [23:0] rd_cmd_words,
    input  logic        rd_valid,
    output logic        rd_ready,
    input  logic [63:0] rd_data,
    input  logic [15:0] rd_beat,
    input  logic        rd_last,
    output logic        wr_cmd_valid,
    input  logic        wr_cmd_ready,
    output logic [31:0] wr_cmd_off,
    output logic [23:0] wr_cmd_words,
    output logic        wr_valid,
    input  logic        wr_ready,
    output logic [63:0] wr_data,
    output logic [7:0]  wr_strb
);
    localparam int PW = $clog2(PROFILE_DEPTH);

    typedef enum logic [4:0] {
        S_IDLE, S_HDR, S_HDR_WAIT, S_CHECK, S_POST, S_POST_WAIT, S_LIST, S_DESC, S_DESC_WAIT, S_JOB,
        S_JOB_WAIT, S_ARGMAX, S_ARGMAX_WAIT, S_RESULT, S_RESULT_WAIT, S_IGH, S_IGH_WAIT, S_IGE,
        S_IGE_WAIT, S_AFTER, S_SATS, S_SATS_BEAT, S_SATS_WAIT, S_FINISH
    } st_t;
    st_t st;

    // where a sequence of phases stands
    typedef enum logic [3:0] {
        P_COPY, P_FWD, P_ARGMAX, P_BWD, P_FINAL, P_IG_SAVE, P_IG_TABLE, P_IG_ENTRY, P_IG_POINT, P_IG_FWD,
        P_IG_BWD, P_IG_ACC, P_IG_RESTORE, P_DONE
    } phase_t;
    phase_t phase;

    logic [HEADER_WORDS*32-1:0] hdr;
    logic [DESC_WORDS*32-1:0] draw;
    assign job_desc = xaihls_pkg::desc_from_words(draw);
    function automatic logic signed [31:0] hw(input logic [HEADER_WORDS*32-1:0] h, input int i);
        hw = h[i*32 +: 32];
    endfunction

    logic [31:0] meth, targ, stp;
    logic [1:0] mode;
    xaihls_pkg::s32_t list_addr, list_count, k;
    logic list_bwd;
    xaihls_pkg::s32_t predicted, best_val, used_target;
    xaihls_pkg::s32_t alpha_frac, weight_frac, alpha, weight, step;
    logic [31:0] cyc, phase_t0;
    // the run's saturation counters (docs/program.md, result region words 2..4)
    logic [31:0] sat_fwd, sat_bwd, sat_post;
    logic guard;   // one cycle after a start, before busy flags can be sampled

    xaihls_pkg::s32_t classes, input_elems;
    assign classes = hw(hdr, H_CLASSES);
    assign input_elems = hw(hdr, H_INPUT_ELEMS);

    // argmax over a beat of logits (first maximum)
    xaihls_pkg::s32_t am_best, am_idx;
    always_comb begin
        am_best = best_val;
        am_idx = predicted;
        for (int i = 0; i < 4; i++) begin
            xaihls_pkg::s32_t e;
            xaihls_pkg::s32_t v;
            e = $signed({14'd0, rd_beat, 2'(i)});
            v = 32'($signed(rd_data[16*i +: 16]));
            if (e < classes && (e == 0 || v > am_best)) begin
                am_best = v;
                am_idx = e;
            end
        end
    end

    xaihls_pkg::s32_t grad_frac_mode;
    always_comb begin
        case (mode)
            2'd1: grad_frac_mode = hw(hdr, H_GRAD_FRAC1);
            2'd2: grad_frac_mode = hw(hdr, H_GRAD_FRAC2);
            default: grad_frac_mode = hw(hdr, H_GRAD_FRAC0);
        endcase
    end

    logic any_err;
    assign any_err = rd_err || wr_err;

    task automatic log_phase(input logic [7:0] kind);
        if (profile_count < 32'(PROFILE_DEPTH)) begin
            prof_we <= 1'b1;
            prof_waddr <= PW'(profile_count);
            prof_wdata <= {kind, 24'((cyc - phase_t0) > 32'hff_ffff ? 32'hff_ffff : (cyc - phase_t0))};
            profile_count <= profile_count + 1;
        end
        phase_t0 <= cyc;
    endtask

    logic [7:0] post_kind_log;

    always_ff @(posedge clk) begin
        if (rst) begin
            st <= S_IDLE;
            busy <= 1'b0;
            done <= 1'b0;
            status <= '0;
            run_cycles <= '0;
            profile_count <= '0;
            prof_we <= 1'b0;
            rd_cmd_valid <= 1'b0;
            wr_cmd_valid <= 1'b0;
            wr_valid <= 1'b0;
            job_start <= 1'b0;
            post_start <= 1'b0;
            err_clear <= 1'b0;
            rd_owner <= 2'd0;
            wr_owner <= 2'd0;
            cyc <= '0;
            guard <= 1'b0;
        end else begin
            done <= 1'b0;
            prof_we <= 1'b0;
            job_start <= 1'b0;
            post_start <= 1'b0;
            err_clear <= 1'b0;
            guard <= 1'b0;
            cyc <= cyc + 1;
            if (rd_cmd_valid && rd_cmd_ready) rd_cmd_valid <= 1'b0;
            if (wr_cmd_valid && wr_cmd_ready) wr_cmd_valid <= 1'b0;
            if (wr_valid && wr_ready) wr_valid <= 1'b0;
            if (list_bwd) sat_bwd <= sat_bwd + 32'(engine_sat);
            else sat_fwd <= sat_fwd + 32'(engine_sat);
            sat_post <= sat_post + 32'(post_sat);

            case (st)
                S_IDLE: if (start) begin
                    busy <= 1'b1;
                    sat_fwd <= '0;
                    sat_bwd <= '0;
                    sat_post <= '0;
                    status <= '0;
                    err_clear <= 1'b1;
                    meth <= method;
                    targ <= target_arg;
                    stp <= steps;
                    mode <= (method == 32'd5) ? 2'd1 : (method == 32'd6) ? 2'd2 : 2'd0;
                    cyc <= '0;
                    phase_t0 <= '0;
                    profile_count <= '0;
                    rd_owner <= 2'd0;
                    wr_owner <= 2'd0;
                    st <= S_HDR;
                end
                S_HDR: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= '0;
                    rd_cmd_words <= 24'(HEADER_WORDS * 2);
                    st <= S_HDR_WAIT;
                end
                S_HDR_WAIT: if (rd_valid) begin
                    hdr[64*rd_beat[3:0] +: 64] <= rd_data;
                    if (rd_last) st <= S_CHECK;
                end
                S_CHECK: begin
                    log_phase(8'd1);
                    if (any_err) begin
                        status[0] <= 1'b1;
                        st <= S_FINISH;
                    end else if (hw(hdr, H_MAGIC) != PROGRAM_MAGIC || hw(hdr, H_VERSION) != PROGRAM_VERSION ||
                                 hw(hdr, H_DATA_WIDTH) != 32'sd16) begin
                        status[1] <= 1'b1;
                        st <= S_FINISH;
                    end else if (meth > 32'd6 || (BACKWARD == 0 && meth != 32'd0) ||
                                 (meth == 32'd4 && (stp < 32'd2 || stp > 32'd1024)) ||
                                 ($signed(targ) >= classes) || (ddr_base[5:0] != 6'd0) ||
                                 (BACKWARD != 0 && (input_elems > $signed(32'(MAX_INPUT_ELEMS)) ||
                                                    hw(hdr, H_MASK_BITS) > $signed(32'(MASK_BITS)) ||
                                                    hw(hdr, H_INDEX_ENTRIES) > $signed(32'(INDEX_ENTRIES))))) begin
                        status[2] <= 1'b1;
                        st <= S_FINISH;
                    end else begin
                        phase <= P_COPY;
                        st <= S_AFTER;
                    end
                end

                // ---------------- sequencing: what comes after a phase
                S_AFTER: begin
                    if (any_err) begin
                        status[0] <= 1'b1;
                        st <= S_FINISH;
                    end else case (phase)
                        P_COPY: begin
                            post_op <= 2'd0; post_kind <= 2'd0; post_n <= input_elems;
                            post_in0 <= hw(hdr, H_IMAGE_ADDR); post_in1 <= '0; post_out <= hw(hdr, H_WORK_ADDR);
                            post_kind_log <= 8'd2;
                            phase <= P_FWD;
                            st <= S_POST;
                        end
                        P_FWD, P_IG_FWD: begin
                            list_addr <= hw(hdr, H_FORWARD_ADDR);
                            list_count <= hw(hdr, H_N_FORWARD);
                            list_bwd <= 1'b0;
                            k <= '0;
                            phase <= (phase == P_FWD) ? P_ARGMAX : P_IG_BWD;
                            st <= S_LIST;
                        end
                        P_ARGMAX: st <= S_ARGMAX;
                        P_BWD, P_IG_BWD: begin
                            list_addr <= hw(hdr, H_BACKWARD_ADDR);
                            list_count <= hw(hdr, H_N_BACKWARD);
                            list_bwd <= 1'b1;
                            k <= '0;
                            phase <= (phase == P_BWD) ? P_FINAL : P_IG_ACC;
                            st <= S_LIST;
                        end
                        P_FINAL: begin
                            post_op <= 2'd3;
                            post_n <= input_elems;
                            post_out <= hw(hdr, H_ATTR_ADDR);
                            post_in1 <= '0;
                            post_shift_a <= '0;
                            post_shift_b <= '0;
                            case (meth)
                                32'd2: begin post_kind <= 2'd1; post_in0 <= hw(hdr, H_GRAD_INPUT_ADDR); end
                                32'd3: begin
                                    post_kind <= 2'd2;
                                    post_in0 <= hw(hdr, H_IMAGE_ADDR);
                                    post_in1 <= hw(hdr, H_GRAD_INPUT_ADDR);
                                    post_shift_a <= hw(hdr, H_INPUT_FRAC) + grad_frac_mode - hw(hdr, H_IXG_FRAC);
                                end
                                32'd4: begin
                                    post_kind <= 2'd3;
                                    post_in0 <= hw(hdr, H_IMAGE_ADDR);
                                    post_in1 <= hw(hdr, H_BASELINE_ADDR);
                                    post_shift_a <= weight_frac + hw(hdr, H_GRAD_FRAC0) - hw(hdr, H_IG_SUM_FRAC);
                                    post_shift_b <= hw(hdr, H_INPUT_FRAC) + hw(hdr, H_IG_SUM_FRAC) - hw(hdr, H_IG_FRAC);
                                end
                                default: begin post_kind <= 2'd0; post_in0 <= hw(hdr, H_GRAD_INPUT_ADDR); end
                            endcase
                            post_kind_log <= 8'd6;
                            phase <= (meth == 32'd4) ? P_IG_RESTORE : P_DONE;
                            st <= S_POST;
                        end
                        P_IG_SAVE, P_IG_RESTORE: begin
                            post_op <= 2'd0; post_kind <= 2'd0; post_n <= classes;
                            post_in0 <= (phase == P_IG_SAVE) ? hw(hdr, H_LOGITS_ADDR) : hw(hdr, H_IGACC_ADDR);
                            post_out <= (phase == P_IG_SAVE) ? hw(hdr, H_IGACC_ADDR) : hw(hdr, H_LOGITS_ADDR);
                            post_in1 <= '0;
                            post_kind_log <= 8'd10;
                            phase <= (phase == P_IG_SAVE) ? P_IG_TABLE : P_DONE;
                            st <= S_POST;
                        end
                        P_IG_TABLE: st <= S_IGH;
                        P_IG_ENTRY: st <= S_IGE;
                        P_IG_POINT: begin
                            post_op <= 2'd1; post_kind <= 2'd0; post_n <= input_elems;
                            post_in0 <= hw(hdr, H_IMAGE_ADDR); post_in1 <= hw(hdr, H_BASELINE_ADDR);
                            post_out <= hw(hdr, H_WORK_ADDR);
                            post_alpha <= alpha; post_alpha_frac <= alpha_frac;
                            post_kind_log <= 8'd8;
                            phase <= P_IG_FWD;
                            st <= S_POST;
                        end
                        P_IG_ACC: begin
                            post_op <= 2'd2; post_kind <= 2'd0; post_n <= input_elems;
                            post_in0 <= hw(hdr, H_GRAD_INPUT_ADDR); post_in1 <= '0; post_out <= '0;
                            post_weight <= weight; post_first <= (step == 0);
                            post_kind_log <= 8'd9;
                            step <= step + 1;
                            phase <= (step + 1 < $signed(32'(stp))) ? P_IG_ENTRY : P_FINAL;
                            st <= S_POST;
                        end
                        P_DONE: st <= S_SATS;
                        default: st <= S_FINISH;
                    endcase
                end

                // ---------------- saturation counters: result words 2..4, two beats
                S_SATS: begin
                    wr_cmd_valid <= 1'b1;
                    wr_cmd_off <= 32'(hw(hdr, H_RESULT_ADDR) + 32'sd8);
                    wr_cmd_words <= 24'd6;
                    wr_valid <= 1'b1;
                    wr_data <= {sat_bwd, sat_fwd};
                    wr_strb <= 8'hff;
                    st <= S_SATS_BEAT;
                end
                S_SATS_BEAT: if (!wr_valid || wr_ready) begin
                    wr_valid <= 1'b1;
                    wr_data <= {32'd0, sat_post};
                    wr_strb <= 8'h0f;
                    guard <= 1'b1;
                    st <= S_SATS_WAIT;
                end
                S_SATS_WAIT: if (!guard && !wr_cmd_valid && !wr_valid && wr_idle) st <= S_FINISH;

                // ---------------- post-processing pass
                S_POST: begin
                    rd_owner <= 2'd2;
                    wr_owner <= 2'd2;
                    post_start <= 1'b1;
                    guard <= 1'b1;
                    st <= S_POST_WAIT;
                end
                S_POST_WAIT: if (!guard && !post_busy && wr_idle) begin
                    log_phase(post_kind_log);
                    rd_owner <= 2'd0;
                    wr_owner <= 2'd0;
                    st <= S_AFTER;
                end

                // ---------------- a descriptor list
                S_LIST: begin
                    if (k >= list_count) st <= S_AFTER;
                    else st <= S_DESC;
                end
                S_DESC: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= 32'(list_addr);
                    rd_cmd_words <= 24'(DESC_WORDS * 2);
                    st <= S_DESC_WAIT;
                end
                S_DESC_WAIT: if (rd_valid) begin
                    draw[64*rd_beat[4:0] +: 64] <= rd_data;
                    if (rd_last) st <= S_JOB;
                end
                S_JOB: begin
                    if (any_err) begin
                        status[0] <= 1'b1;
                        st <= S_FINISH;
                    end else begin
                        job_mode <= list_bwd ? mode : 2'd0;
                        job_target <= used_target;
                        rd_owner <= 2'd1;
                        wr_owner <= 2'd1;
                        if (draw[3:0] >= OP_CONV && draw[3:0] <= OP_SEED && draw[31:4] == '0) begin
                            job_start <= 1'b1;
                            guard <= 1'b1;
                        end
                        st <= S_JOB_WAIT;
                    end
                end
                S_JOB_WAIT: if (!guard && !job_start && !engine_busy && wr_idle) begin
                    log_phase(list_bwd ? 8'd5 : 8'd3);
                    rd_owner <= 2'd0;
                    wr_owner <= 2'd0;
                    k <= k + 1;
                    list_addr <= list_addr + 32'sd192;  // 48 words a descriptor
                    st <= any_err ? S_AFTER : S_LIST;
                end

                // ---------------- argmax and result
                S_ARGMAX: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= 32'(hw(hdr, H_LOGITS_ADDR));
                    rd_cmd_words <= 24'(classes);
                    best_val <= '0;
                    predicted <= '0;
                    st <= S_ARGMAX_WAIT;
                end
                S_ARGMAX_WAIT: if (rd_valid) begin
                    best_val <= am_best;
                    predicted <= am_idx;
                    if (rd_last) st <= S_RESULT;
                end
                S_RESULT: begin
                    used_target <= ($signed(targ) < 0) ? predicted : $signed(32'(targ));
                    wr_cmd_valid <= 1'b1;
                    wr_cmd_off <= 32'(hw(hdr, H_RESULT_ADDR));
                    wr_cmd_words <= 24'd4;
                    wr_valid <= 1'b1;
                    wr_data <= {(($signed(targ) < 0) ? predicted : $signed(32'(targ))), predicted};
                    wr_strb <= 8'hff;
                    guard <= 1'b1;
                    st <= S_RESULT_WAIT;
                end
                S_RESULT_WAIT: if (!guard && !wr_cmd_valid && !wr_valid && wr_idle) begin
                    log_phase(8'd4);
                    if (meth == 32'd0) phase <= P_DONE;
                    else if (meth == 32'd4) phase <= P_IG_SAVE;
                    else phase <= P_BWD;
                    st <= S_AFTER;
                end

                // ---------------- integrated gradients table
                S_IGH: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= 32'(hw(hdr, H_IG_TABLE_ADDR));
                    rd_cmd_words <= 24'd4;
                    st <= S_IGH_WAIT;
                end
                S_IGH_WAIT: if (rd_valid) begin
                    alpha_frac <= rd_data[31:0];
                    weight_frac <= rd_data[63:32];
                    step <= '0;
                    log_phase(8'd7);
                    phase <= P_IG_ENTRY;
                    st <= S_AFTER;
                end
                S_IGE: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= 32'(hw(hdr, H_IG_TABLE_ADDR) + 32'sd8 + (step <<< 3));
                    rd_cmd_words <= 24'd4;
                    st <= S_IGE_WAIT;
                end
                S_IGE_WAIT: if (rd_valid) begin
                    alpha <= rd_data[31:0];
                    weight <= rd_data[63:32];
                    log_phase(8'd7);
                    phase <= P_IG_POINT;
                    st <= S_AFTER;
                end

                S_FINISH: if (!guard && wr_idle && !engine_busy && !post_busy) begin
                    if (any_err) status[0] <= 1'b1;
                    busy <= 1'b0;
                    done <= 1'b1;
                    run_cycles <= cyc;
                    st <= S_IDLE;
                end
                default: st <= S_IDLE;
            endcase

        end
    end

    assign rd_ready = 1'b1;
endmodule
