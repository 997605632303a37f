// The controller (docs/engine_v2.md, "The controller"): reads the header and checks it, copies
// the image to the work tensor, runs the forward list, picks the predicted class (the first
// maximum of the logits), and for an attribution method runs the backward list under the
// method's ReLU rule and the post-processing (integrated gradients: the steps in batches of the
// header's `batch` on the batched lists, the rest one at a time; per batch the path point of every
// slot, the forward and backward lists and every slot's sum, with the image's logits kept and
// written back; Grad-CAM: the backward list's first n_backward_cam jobs under the true-gradient
// rule, then the Grad-CAM list (its saturations count as post-processing), which leaves the map at
// attr_addr; guided Grad-CAM then the whole backward list under the guided rule and the product of
// that gradient with the map, written over the map);
// then writes the result record with the three saturation counters.
//
// An image batch (IMAGES = the header's batch > 1, any method but integrated gradients) runs the
// same sequence on the batched lists with a loop over the slots at each per-image step: every
// image slot copied to its work slot; the batched forward list; per slot its requested target
// (the targets table), the argmax of its logits and its result record (counters 0); the batched
// backward list, where a SEED first reads the target of its descriptor's slot back from that
// slot's record; per slot the post-processing into its attribution slot; then record 0 read back
// and written again with the run's counters. Nothing is kept per slot: the slot index and two
// running offsets (slot * slot_bytes, slot * logits_slot_bytes) address everything, and what a
// slot picked lives in its record in DDR.
//
// One decode stage: a descriptor's (or the header's) beats land in one register; the units
// take the narrow fields they need from it when a job starts, and the few products a job's
// running sums start from are made here, one a cycle, on one multiplier.
//
// Status (RETURN): BUS_ERROR (an SLVERR/DECERR response; the run stops at the next job
// boundary), BAD_PROGRAM (not a Program of this contract version for this array and AXI width), BAD_ARGUMENT
// (method, target, steps or images out of range, a Grad-CAM method on a Program without its list or
// on an image batch, or a Program larger than this build's memories).
// Profile entries {phase, cycles}: 1 header, 2 image copy (one a slot), 3 forward job, 4 argmax +
// result (one a slot; an image batch's with its target read first), 5 backward job (an image
// batch's SEED with its record read), 6 post-processing (one a slot), 7 IG table, 8 IG path point,
// 9 IG sum, 10 logits saved/restored, 11 Grad-CAM job. An image batch's last record read and write
// are not logged.

import xaihls_contract_pkg::*;
import xaihls_engine_pkg::*;

module xaihls_ctrl #(
    parameter int TM            = 8,
    parameter int TN            = 4,
    parameter int E             = 4,
    parameter int MASK_BITS     = 4096,
    parameter int INDEX_ENTRIES = 1024,
    parameter int INPUT_ELEMS   = 4096,   // the largest input the integrated-gradients sum holds (0: none)
    parameter int BACKWARD      = 1,
    parameter int OFF_BITS      = 24,
    parameter int LEN_BITS      = 20,
    parameter int IXW           = 8,
    parameter int PROFILE_DEPTH = 512,
    parameter int SB            = 3
) (
    input  logic                     clk,
    input  logic                     rst,

    input  logic                     start,
    input  logic [5:0]               ddr_base_lo,   // the DDR base's low bits (it must be 64-byte aligned)
    input  logic [31:0]              method,
    input  logic [31:0]              target_arg,
    input  logic [31:0]              steps,
    input  logic [31:0]              images,        // IMAGES: 0 or 1 one image, the header's batch an image batch
    output logic                     busy,
    output logic                     done,
    output logic [31:0]              status,
    output logic [31:0]              run_cycles,
    output logic [31:0]              profile_count,
    output logic                     prof_we,
    output logic [$clog2(PROFILE_DEPTH)-1:0] prof_waddr,
    output logic [31:0]              prof_wdata,
    input  logic                     rd_err,
    input  logic                     wr_err,
    output logic                     err_clear,

    // the units
    output logic                     job_start,
    output logic [1:0]               job_kind,
    output xaihls_contract_pkg::descriptor_t              desc,
    output xaihls_engine_pkg::post_cfg_t                post,
    output logic [1:0]               mode,
    output logic [15:0]              target,
    output logic [OFF_BITS-1:0]      lo_off,
    output logic [OFF_BITS-1:0]      step_off,
    output logic [OFF_BITS-1:0]      oyo_rb,
    output logic [OFF_BITS-1:0]      osy_rb,
    output logic [15:0]              span,
    output logic [15:0]              sh_ow,
    input  logic                     units_busy,
    input  logic [SB-1:0]            sat,

    // the controller's own DDR traffic
    output logic                     rd_cmd_valid,
    input  logic                     rd_cmd_ready,
    output logic [OFF_BITS-1:0]      rd_cmd_off,
    output logic [LEN_BITS-1:0]      rd_cmd_beats,
    input  logic                     rd_valid,
    output logic                     rd_ready,
    input  logic [E*16-1:0]          rd_data,
    input  logic [LEN_BITS-1:0]      rd_beat,
    input  logic                     rd_last,
    output logic                     wr_cmd_valid,
    input  logic                     wr_cmd_ready,
    output logic [OFF_BITS-1:0]      wr_cmd_off,
    output logic [LEN_BITS-1:0]      wr_cmd_beats,
    output logic                     wr_valid,
    input  logic                     wr_ready,
    output logic [E*16-1:0]          wr_data,
    input  logic                     wr_idle
);
    localparam int DW  = E * 16;                        // bits a beat
    localparam int RAW_BEATS = (DESCRIPTOR_FIELD_WORDS * 32 + DW - 1) / DW;   // the words with fields
    localparam int HDR_BEATS = (HEADER_WORDS * 32 + DW - 1) / DW;
    localparam int RES_BEATS = (RESULT_WORDS * 32 + DW - 1) / DW;
    localparam int PW  = $clog2(PROFILE_DEPTH);
    localparam int BB  = $clog2(2 * E);                 // byte-offset bits within a beat

    initial begin
        if (HEADER_WORDS > RAW_BEATS * DW / 32) $error("xaihls_ctrl: the header must fit the descriptor register");
    end

    // ---------------------------------------------------------------- the decode register
    logic [RAW_BEATS*DW-1:0] raw;
    xaihls_contract_pkg::header_t hdr;
    // the words past the fields are zero: no register holds them
    assign desc = (DESCRIPTOR_WORDS * 32)'(raw[DESCRIPTOR_FIELD_WORDS*32-1:0]);
    assign hdr  = raw[HEADER_WORDS*32-1:0];
    if (RAW_BEATS * DW > DESCRIPTOR_FIELD_WORDS * 32) begin : g_raw_pad
        logic unused_pad;   // the last beat's bits past the fields
        assign unused_pad = ^raw[RAW_BEATS*DW-1:DESCRIPTOR_FIELD_WORDS*32];
    end

    // header fields the run needs
    logic [OFF_BITS-1:0] a_forward, a_backward, a_image, a_work, a_baseline, a_igtab, a_logits, a_save,
                         a_result, a_attr, a_grad, a_forward_b, a_backward_b, slot_bytes, a_targets,
                         logits_bytes;
    logic [15:0]  n_forward, n_backward, n_forward_b, n_backward_b, classes;
    logic [7:0]   batch;
    logic [23:0]  in_beats;
    logic signed [7:0] f_input, f_grad0, f_grad1, f_grad2, f_ixg, f_igsum, f_ig;

    // ---------------------------------------------------------------- state
    typedef enum logic [4:0] {
        S_IDLE, S_HDR, S_HDR_WAIT, S_CHECK, S_NEXT, S_DESC, S_DESC_WAIT, S_PRODUCTS, S_RUN, S_RUN_WAIT,
        S_ARGMAX, S_ARGMAX_WAIT, S_IGH, S_IGH_WAIT, S_RESULT, S_RESULT_BEATS, S_RESULT_WAIT, S_FINISH,
        S_TARGET, S_TARGET_WAIT, S_RECORD, S_RECORD_WAIT
    } st_t;
    st_t st;

    // what the run does next
    typedef enum logic [4:0] {
        P_COPY, P_FWD, P_ARGMAX, P_BWD, P_FINAL, P_SAVE, P_IGTAB, P_IGENTRY, P_IGPOINT, P_IGFWD, P_IGBWD,
        P_IGWENTRY, P_IGACC, P_RESTORE, P_IGSUM, P_IGFINAL, P_CAMBWD, P_CAM, P_DONE
    } ph_t;
    ph_t ph, after;

    logic [3:0]   meth;       // the method code, 4'hf for anything above 15
    logic         cam;        // a Grad-CAM method
    assign cam = meth == 4'(METHOD_GRAD_CAM) || meth == 4'(METHOD_GUIDED_GRAD_CAM);
    logic [1:0]   run_mode;   // the method's ReLU rule: the forward and backward lists run under it (a
                              // ReLU6's forward bit depends on it); Grad-CAM's two lists under the true gradient's
    logic [15:0]  n_steps;
    logic [8:0]   n_images;   // IMAGES, 9'h1ff for anything above 255 (no batch)
    logic         img;        // this run is an image batch
    logic signed [31:0] targ;
    logic [31:0]  cyc, t0;
    logic [31:0]  sat_fwd, sat_bwd, sat_post;
    logic [1:0]   sat_kind;
    logic [OFF_BITS-1:0] list_addr;
    logic [15:0]  list_left;
    localparam logic [1:0] LIST_FORWARD = 2'd0, LIST_BACKWARD = 2'd1, LIST_CAM = 2'd2;
    logic [1:0]   list_kind;  // which list runs: its jobs' saturation counter and profile entry
    logic [1:0]   list_mode;  // the ReLU rule its jobs run under
    logic [15:0]  n_backward_cam, n_cam;
    logic [OFF_BITS-1:0] a_cam;
    logic signed [7:0] f_cam, f_gcam;
    logic [15:0]  predicted, best_idx, el_idx;
    logic signed [15:0] best_val;
    logic [$clog2(E)-1+1:0] scan;
    logic [15:0]  step;       // the first step of the batch running
    logic [7:0]   slot, n_slots;   // the slot whose copy, record, post, path point or sum is next; slots of this batch
    logic [OFF_BITS-1:0] slot_off;  // slot * slot_bytes
    logic [OFF_BITS-1:0] logits_off;  // slot * logits_slot_bytes (an image batch's argmax)
    logic [OFF_BITS-1:0] targ_addr;   // an image batch: the slot's word of the targets table
    assign targ_addr = a_targets + OFF_BITS'({slot, 2'b00});
    logic [OFF_BITS-1:0] rec_off;     // the result record of `slot` (the argmax) or of the SEED's slot
    assign rec_off = OFF_BITS'(32'((st == S_RECORD) ? desc.slot : slot) * RESULT_SLOT_BYTES);
    logic [15:0]  entry;      // the step of that slot: its (alpha, weight) in the IG table
    logic         more_slots;
    assign entry = step + 16'(slot);
    assign more_slots = slot + 1'b1 < n_slots;
    logic         batched;    // an image batch or an IG step batch of several slots runs the batched lists
    assign batched = n_slots > 8'd1;
    logic signed [7:0]  alpha_frac, weight_frac;
    logic signed [17:0] alpha, weight;
    logic         guard;
    logic [7:0]   log_kind;
    logic [3:0]   prod_i;
    logic [$clog2(RES_BEATS+1)-1:0] res_beat;

    logic [27:0] pair_unused;
    logic any_err;
    assign any_err = rd_err || wr_err;

    task automatic log_phase(input logic [7:0] kind);
        if (profile_count < 32'(PROFILE_DEPTH)) begin
            prof_we <= 1'b1;
            prof_waddr <= PW'(profile_count);
            prof_wdata <= {kind, 24'((cyc - t0) > 32'hff_ffff ? 32'hff_ffff : (cyc - t0))};
            profile_count <= profile_count + 1;
        end
        t0 <= cyc;
    endtask

    // ---- the products a job's running sums start from: one a cycle, (a, b) chosen by prod_i
    logic signed [24:0] m_a;
    logic signed [17:0] m_b;
    localparam int PRW = (OFF_BITS > IXW) ? ((OFF_BITS > 16) ? OFF_BITS : 16) : ((IXW > 16) ? IXW : 16);
    logic [PRW-1:0]     m_p;
    logic [3:0]         m_i;
    always_comb begin
        m_a = '0;
        m_b = '0;
        case (prod_i)
            4'd0: begin m_a = 25'(desc.in_row_bytes); m_b = 18'(desc.load_lo); end
            4'd1: begin m_a = 25'(desc.in_row_bytes); m_b = 18'(desc.load_step); end
            4'd4: begin m_a = 25'(desc.out_row_bytes); m_b = 18'(desc.oyo); end
            4'd5: begin m_a = 25'(desc.out_row_bytes); m_b = 18'(desc.osy); end
            4'd6: begin m_a = 25'(desc.ow) - 25'sd1; m_b = 18'(desc.osx); end
            4'd7: begin m_a = 25'(desc.ow); m_b = 18'(desc.pool_sh); end
            default: ;
        endcase
    end
    always_ff @(posedge clk) begin
        m_p <= PRW'(m_a * m_b);
        m_i <= prod_i;
    end

    // ---- argmax over a beat: element `scan` of the held beat
    logic signed [15:0] el_val;
    assign el_val = $signed(rd_data[16*scan[$clog2(E)-1:0] +: 16]);

    // ---- the result record, beat by beat
    logic [RES_BEATS*DW-1:0] result_bits;
    logic         no_counts;  // an image batch's record of one slot: the counters come in record 0 at the end
    assign no_counts = img && ph == P_ARGMAX;
    assign result_bits = (RES_BEATS*DW)'({no_counts ? 96'd0 : {sat_post, sat_bwd, sat_fwd}, 16'd0, target, 16'd0,
                                          predicted});

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
            err_clear <= 1'b0;
            cyc <= '0;
            guard <= 1'b0;
            rd_ready <= 1'b0;
            prod_i <= 4'd15;
        end else begin
            done <= 1'b0;
            prof_we <= 1'b0;
            job_start <= 1'b0;
            err_clear <= 1'b0;
            guard <= 1'b0;
            cyc <= cyc + 1;
            if (rd_cmd_valid && rd_cmd_ready) rd_cmd_valid <= 1'b0;
            if (wr_cmd_valid && wr_cmd_ready) wr_cmd_valid <= 1'b0;
            case (sat_kind)
                2'd0: sat_fwd <= sat_fwd + 32'(sat);
                2'd1: sat_bwd <= sat_bwd + 32'(sat);
                default: sat_post <= sat_post + 32'(sat);
            endcase
            // products land two cycles after their index
            case (m_i)
                4'd0: lo_off <= OFF_BITS'(m_p);
                4'd1: step_off <= OFF_BITS'(m_p);
                4'd4: oyo_rb <= OFF_BITS'(m_p);
                4'd5: osy_rb <= OFF_BITS'(m_p);
                4'd6: span <= 16'(m_p) + 16'd1;
                4'd7: sh_ow <= 16'(m_p);
                default: ;
            endcase

            case (st)
                S_IDLE: if (start) begin
                    busy <= 1'b1;
                    status <= '0;
                    err_clear <= 1'b1;
                    meth <= method > 32'd15 ? 4'hf : 4'(method);
                    targ <= $signed(target_arg);
                    n_steps <= (steps > 32'd65535) ? 16'hffff : 16'(steps);
                    n_images <= (images > 32'd255) ? 9'h1ff : 9'(images);
                    run_mode <= (method == 32'(METHOD_GUIDED_BACKPROP) || method == 32'(METHOD_GUIDED_GRAD_CAM))
                                ? 2'(RELU_GUIDED)
                          : (method == 32'(METHOD_DECONVNET)) ? 2'(RELU_DECONV) : 2'(RELU_MASK);
                    sat_fwd <= '0;
                    sat_bwd <= '0;
                    sat_post <= '0;
                    sat_kind <= 2'd0;
                    cyc <= '0;
                    t0 <= '0;
                    profile_count <= '0;
                    st <= S_HDR;
                end
                S_HDR: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= '0;
                    rd_cmd_beats <= LEN_BITS'(HDR_BEATS);
                    rd_ready <= 1'b1;
                    st <= S_HDR_WAIT;
                end
                S_HDR_WAIT, S_DESC_WAIT: if (rd_valid) begin
                    for (int b = 0; b < RAW_BEATS; b++) if (rd_beat == LEN_BITS'(b)) raw[b*DW +: DW] <= rd_data;
                    if (rd_last) begin
                        rd_ready <= 1'b0;
                        st <= (st == S_HDR_WAIT) ? S_CHECK : S_PRODUCTS;
                        prod_i <= 4'd0;
                    end
                end
                S_CHECK: begin
                    prod_i <= 4'd15;
                    a_forward <= OFF_BITS'(hdr.forward_addr);
                    a_backward <= OFF_BITS'(hdr.backward_addr);
                    a_image <= OFF_BITS'(hdr.image_addr);
                    a_work <= OFF_BITS'(hdr.work_addr);
                    a_baseline <= OFF_BITS'(hdr.baseline_addr);
                    a_igtab <= OFF_BITS'(hdr.ig_table_addr);
                    a_logits <= OFF_BITS'(hdr.logits_addr);
                    a_save <= OFF_BITS'(hdr.logits_save_addr);
                    a_result <= OFF_BITS'(hdr.result_addr);
                    a_attr <= OFF_BITS'(hdr.attr_addr);
                    a_grad <= OFF_BITS'(hdr.grad_input_addr);
                    a_forward_b <= OFF_BITS'(hdr.forward_batch_addr);
                    a_backward_b <= OFF_BITS'(hdr.backward_batch_addr);
                    slot_bytes <= OFF_BITS'(hdr.slot_bytes);
                    a_targets <= OFF_BITS'(hdr.targets_addr);
                    logits_bytes <= OFF_BITS'(hdr.logits_slot_bytes);
                    img <= n_images > 9'd1;
                    n_slots <= (n_images > 9'd1) ? hdr.batch : 8'd1;
                    slot <= '0;
                    slot_off <= '0;
                    logits_off <= '0;
                    batch <= hdr.batch;
                    n_forward <= hdr.n_forward;
                    n_backward <= hdr.n_backward;
                    n_forward_b <= hdr.n_forward_batch;
                    n_backward_b <= hdr.n_backward_batch;
                    classes <= hdr.classes;
                    in_beats <= hdr.input_elems >> $clog2(E);
                    f_input <= hdr.input_frac;
                    f_grad0 <= hdr.grad_frac0;
                    f_grad1 <= hdr.grad_frac1;
                    f_grad2 <= hdr.grad_frac2;
                    f_ixg <= hdr.ixg_frac;
                    f_igsum <= hdr.ig_sum_frac;
                    f_ig <= hdr.ig_frac;
                    a_cam <= OFF_BITS'(hdr.cam_addr);
                    n_cam <= hdr.n_cam;
                    n_backward_cam <= hdr.n_backward_cam;
                    f_cam <= hdr.grad_cam_frac;
                    f_gcam <= hdr.guided_grad_cam_frac;
                    log_phase(8'd1);
                    if (any_err) begin
                        status[STATUS_BUS_ERROR] <= 1'b1;
                        st <= S_FINISH;
                    end else if (hdr.magic != PROGRAM_MAGIC || 32'(hdr.version) != PROGRAM_VERSION ||
                                 32'(hdr.desc_words) != DESCRIPTOR_WORDS || hdr.data_width != 8'd16 || hdr.batch == '0 ||
                                 (hdr.batch != 8'd1 && (hdr.n_forward_batch == '0 || hdr.n_backward_batch == '0 ||
                                                        hdr.slot_bytes == '0)) ||
                                 32'(hdr.tm) != TM || 32'(hdr.tn) != TN || 32'(hdr.beat_elems) != E) begin
                        status[STATUS_BAD_PROGRAM] <= 1'b1;
                        st <= S_FINISH;
                    end else if (meth > 4'(METHOD_GUIDED_GRAD_CAM) || (BACKWARD == 0 && meth != 4'd0) ||
                                 (meth == 4'(METHOD_INTEGRATED_GRADIENTS) && (n_steps < 16'd2 || n_steps > 16'(MAX_IG_STEPS) ||
                                                                              32'(hdr.input_elems) > INPUT_ELEMS)) ||
                                 (cam && hdr.n_cam == '0) ||
                                 (n_images > 9'd1 && (n_images != {1'b0, hdr.batch} ||
                                                      meth == 4'(METHOD_INTEGRATED_GRADIENTS) || cam)) ||
                                 (n_images <= 9'd1 && targ >= $signed({16'd0, hdr.classes})) || ddr_base_lo != '0 ||
                                 (OFF_BITS < 32 && hdr.total_bytes > (32'd1 << OFF_BITS)) ||
                                 (BACKWARD != 0 && (32'(hdr.mask_bits) > MASK_BITS || 32'(hdr.index_entries) > INDEX_ENTRIES))) begin
                        status[STATUS_BAD_ARGUMENT] <= 1'b1;
                        st <= S_FINISH;
                    end else begin
                        ph <= P_COPY;
                        st <= S_NEXT;
                    end
                end

                // ---------------- what comes next
                S_NEXT: begin
                    if (any_err) begin
                        status[STATUS_BUS_ERROR] <= 1'b1;
                        st <= S_FINISH;
                    end else begin
                        // a post-processing op, unless the phase says otherwise
                        post.first <= 1'b0;
                        post.src0 <= '0;
                        post.src1 <= '0;
                        post.src2 <= '0;
                        post.k0 <= 18'sd1;
                        post.k1 <= 18'sd0;
                        post.shift <= '0;
                        post.beats <= in_beats;
                        job_kind <= JOB_POST;
                        sat_kind <= 2'd2;
                        st <= S_RUN;
                        case (ph)
                            P_COPY: begin
                                post.op <= POST_COPY;
                                post.src0 <= 32'(a_image + slot_off);
                                post.dst <= 32'(a_work + slot_off);
                                log_kind <= 8'd2;
                                after <= more_slots ? P_COPY : P_FWD;
                                slot <= more_slots ? slot + 1'b1 : '0;
                                slot_off <= more_slots ? slot_off + slot_bytes : '0;
                            end
                            P_FWD, P_IGFWD: begin
                                list_addr <= batched ? a_forward_b : a_forward;
                                list_left <= batched ? n_forward_b : n_forward;
                                list_kind <= LIST_FORWARD;
                                list_mode <= run_mode;
                                after <= (ph == P_FWD) ? P_ARGMAX : P_IGBWD;
                                st <= S_DESC;
                            end
                            P_BWD, P_IGBWD: begin
                                list_addr <= batched ? a_backward_b : a_backward;
                                list_left <= batched ? n_backward_b : n_backward;
                                list_kind <= LIST_BACKWARD;
                                list_mode <= run_mode;
                                after <= (ph == P_BWD) ? P_FINAL : P_IGWENTRY;
                                st <= S_DESC;
                            end
                            // Grad-CAM: the backward list down to the layer, then the Grad-CAM list,
                            // both under the true-gradient rule; guided Grad-CAM goes on with P_BWD
                            P_CAMBWD: begin
                                list_addr <= a_backward;
                                list_left <= n_backward_cam;
                                list_kind <= LIST_BACKWARD;
                                list_mode <= 2'(RELU_MASK);
                                after <= P_CAM;
                                st <= S_DESC;
                            end
                            P_CAM: begin
                                list_addr <= a_cam;
                                list_left <= n_cam;
                                list_kind <= LIST_CAM;
                                list_mode <= 2'(RELU_MASK);
                                after <= (meth == 4'(METHOD_GUIDED_GRAD_CAM)) ? P_BWD : P_DONE;
                                st <= S_DESC;
                            end
                            P_ARGMAX: st <= img ? S_TARGET : S_ARGMAX;
                            P_FINAL: begin
                                post.src0 <= 32'(a_grad + slot_off);
                                post.dst <= 32'(a_attr + slot_off);
                                log_kind <= 8'd6;
                                after <= more_slots ? P_FINAL : P_DONE;
                                slot <= more_slots ? slot + 1'b1 : '0;
                                slot_off <= more_slots ? slot_off + slot_bytes : '0;
                                case (meth)
                                    4'(METHOD_SALIENCY): post.op <= POST_ABS;
                                    4'(METHOD_INPUT_X_GRADIENT): begin
                                        post.op <= POST_IXG;
                                        post.src0 <= 32'(a_image + slot_off);
                                        post.src1 <= 32'(a_grad + slot_off);
                                        post.shift <= f_input + ((run_mode == 2'd1) ? f_grad1 : (run_mode == 2'd2) ? f_grad2 : f_grad0)
                                                      - f_ixg;
                                    end
                                    // the map times the guided gradient, written over the map: a result
                                    // beat is made from the beats read at its own offset, so it is
                                    // written after they were read (as the IG's last pass)
                                    4'(METHOD_GUIDED_GRAD_CAM): begin
                                        post.op <= POST_IXG;
                                        post.src0 <= 32'(a_attr);
                                        post.src1 <= 32'(a_grad);
                                        post.shift <= f_cam + f_grad1 - f_gcam;
                                    end
                                    default: post.op <= POST_COPY;
                                endcase
                            end
                            P_SAVE, P_RESTORE: begin
                                post.op <= POST_COPY;
                                post.src0 <= 32'((ph == P_SAVE) ? a_logits : a_save);
                                post.dst <= 32'((ph == P_SAVE) ? a_save : a_logits);
                                post.beats <= 24'((32'(classes) + E - 1) / E);
                                log_kind <= 8'd10;
                                after <= (ph == P_SAVE) ? P_IGTAB : P_IGSUM;
                            end
                            P_IGTAB, P_IGENTRY, P_IGWENTRY: st <= S_IGH;
                            P_IGPOINT: begin
                                post.op <= POST_IG_POINT;
                                post.src0 <= 32'(a_image);
                                post.src1 <= 32'(a_baseline);
                                post.dst <= 32'(a_work + slot_off);
                                post.k0 <= alpha;
                                post.k1 <= (18'sd1 <<< alpha_frac) - alpha;
                                post.shift <= alpha_frac;
                                log_kind <= 8'd8;
                                // the next slot's path point, or the batch's lists
                                after <= more_slots ? P_IGENTRY : P_IGFWD;
                                slot <= more_slots ? slot + 1'b1 : '0;
                                slot_off <= more_slots ? slot_off + slot_bytes : '0;
                            end
                            P_IGACC: begin
                                post.op <= POST_IG_ACC;
                                post.src0 <= 32'(a_grad + slot_off);
                                post.k0 <= weight;
                                post.first <= entry == '0;
                                log_kind <= 8'd9;
                                slot <= more_slots ? slot + 1'b1 : '0;
                                slot_off <= more_slots ? slot_off + slot_bytes : '0;
                                if (more_slots) begin
                                    after <= P_IGWENTRY;
                                end else begin
                                    // the next batch: `batch` steps on the batched lists while that many are left
                                    step <= step + 16'(n_slots);
                                    n_slots <= (batch > 8'd1 && n_steps - step - 16'(n_slots) >= 16'(batch)) ? batch : 8'd1;
                                    after <= (step + 16'(n_slots) < n_steps) ? P_IGENTRY : P_RESTORE;
                                end
                            end
                            P_IGSUM: begin
                                post.op <= POST_IG_SUM;
                                post.dst <= 32'(a_attr);
                                post.shift <= weight_frac + f_grad0 - f_igsum;
                                log_kind <= 8'd6;
                                after <= P_IGFINAL;
                            end
                            P_IGFINAL: begin
                                post.op <= POST_IG_FINAL;
                                post.src0 <= 32'(a_image);
                                post.src1 <= 32'(a_baseline);
                                post.src2 <= 32'(a_attr);
                                post.dst <= 32'(a_attr);
                                post.shift <= f_input + f_igsum - f_ig;
                                log_kind <= 8'd6;
                                after <= P_DONE;
                            end
                            default: st <= img ? S_RECORD : S_RESULT;   // P_DONE (an image batch: record 0 first)
                        endcase
                    end
                end

                // ---------------- a job list: fetch, decode, run
                S_DESC: begin
                    if (list_left == '0) begin
                        ph <= after;
                        st <= S_NEXT;
                    end else begin
                        rd_cmd_valid <= 1'b1;
                        rd_cmd_off <= list_addr;
                        rd_cmd_beats <= LEN_BITS'(RAW_BEATS);
                        rd_ready <= 1'b1;
                        st <= S_DESC_WAIT;
                    end
                end
                S_PRODUCTS: begin
                    prod_i <= (prod_i == 4'd15) ? 4'd15 : prod_i + 1'b1;
                    if (prod_i == 4'd10) begin   // the last product has landed
                        prod_i <= 4'd15;
                        sat_kind <= list_kind;
                        mode <= list_mode;
                        log_kind <= (list_kind == LIST_CAM) ? 8'd11 : (list_kind == LIST_BACKWARD) ? 8'd5 : 8'd3;
                        list_addr <= list_addr + OFF_BITS'(DESCRIPTOR_WORDS * 4);
                        list_left <= list_left - 1'b1;
                        if (any_err) begin
                            status[STATUS_BUS_ERROR] <= 1'b1;
                            st <= S_FINISH;
                        end else if (32'(desc.op) == OP_CONV || 32'(desc.op) == OP_SEED) begin
                            job_kind <= (32'(desc.op) == OP_SEED) ? JOB_SEED : JOB_CONV;
                            // an image batch's SEED seeds the target its slot picked: read it back first
                            st <= (img && 32'(desc.op) == OP_SEED) ? S_RECORD : S_RUN;
                        end else begin
                            status[STATUS_BAD_PROGRAM] <= 1'b1;
                            st <= S_FINISH;
                        end
                    end
                end
                S_RUN: begin
                    job_start <= 1'b1;
                    guard <= 1'b1;
                    st <= S_RUN_WAIT;
                end
                S_RUN_WAIT: if (!guard && !job_start && !units_busy && wr_idle) begin
                    log_phase(log_kind);
                    if (job_kind == JOB_POST) begin
                        ph <= after;
                        st <= S_NEXT;
                    end else begin
                        st <= S_DESC;
                    end
                end

                // ---------------- argmax (first maximum) and the result's first words
                S_ARGMAX: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= a_logits + logits_off;
                    rd_cmd_beats <= LEN_BITS'((32'(classes) + E - 1) / E);
                    scan <= '0;
                    el_idx <= '0;
                    best_idx <= '0;
                    best_val <= '0;
                    st <= S_ARGMAX_WAIT;
                end
                S_ARGMAX_WAIT: if (rd_valid) begin
                    rd_ready <= 1'b0;
                    if (el_idx < classes && (el_idx == '0 || el_val > best_val)) begin
                        best_val <= el_val;
                        best_idx <= el_idx;
                    end
                    el_idx <= el_idx + 1'b1;
                    scan <= scan + 1'b1;
                    if (32'(scan) == E - 2) rd_ready <= 1'b1;   // the beat's last element is next
                    if (32'(scan) == E - 1) begin
                        scan <= '0;
                        rd_ready <= 1'b0;
                        if (rd_last) begin
                            st <= S_RESULT;
                            ph <= P_ARGMAX;
                        end
                    end
                end

                // ---------------- an image batch: the slot's requested target (-1: the predicted class)
                S_TARGET: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= targ_addr & ~OFF_BITS'(2 * E - 1);
                    rd_cmd_beats <= LEN_BITS'(1);
                    rd_ready <= 1'b1;
                    st <= S_TARGET_WAIT;
                end
                S_TARGET_WAIT: if (rd_valid) begin
                    logic signed [31:0] asked;
                    asked = $signed(rd_data[32 * 32'(targ_addr[BB-1:2]) +: 32]);
                    rd_ready <= 1'b0;
                    targ <= asked;
                    if (asked >= $signed({16'd0, classes})) begin
                        status[STATUS_BAD_ARGUMENT] <= 1'b1;
                        st <= S_FINISH;
                    end else begin
                        st <= S_ARGMAX;
                    end
                end

                // ---------------- an image batch: a slot's record read back (predicted, target): the
                // SEED's slot before the SEED runs, slot 0 before the last record write (P_DONE)
                S_RECORD: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= a_result + ((ph == P_DONE) ? '0 : rec_off);
                    rd_cmd_beats <= LEN_BITS'(1);
                    rd_ready <= 1'b1;
                    st <= S_RECORD_WAIT;
                end
                S_RECORD_WAIT: if (rd_valid) begin
                    rd_ready <= 1'b0;
                    predicted <= rd_data[15:0];
                    target <= rd_data[47:32];
                    st <= (ph == P_DONE) ? S_RESULT : S_RUN;
                end

                // ---------------- the IG table: (alpha_frac, weight_frac), then (alpha, weight) of a step
                S_IGH: begin
                    rd_cmd_valid <= 1'b1;
                    rd_cmd_off <= (ph == P_IGTAB) ? a_igtab
                                : (a_igtab + OFF_BITS'(8) + OFF_BITS'({entry, 3'b000})) & ~OFF_BITS'(2 * E - 1);
                    rd_cmd_beats <= LEN_BITS'(1);
                    rd_ready <= 1'b1;
                    st <= S_IGH_WAIT;
                end
                S_IGH_WAIT: if (rd_valid) begin
                    logic [63:0] pair;
                    pair = rd_data[64 * ((ph == P_IGTAB) ? 0 : (32'(entry) + 1) % (E / 4)) +: 64];
                    pair_unused <= {pair[31:18], pair[63:50]};
                    rd_ready <= 1'b0;
                    log_phase(8'd7);
                    if (ph == P_IGTAB) begin
                        alpha_frac <= 8'($signed(pair[31:0]));
                        weight_frac <= 8'($signed(pair[63:32]));
                        step <= '0;
                        slot <= '0;
                        slot_off <= '0;
                        n_slots <= (batch > 8'd1 && n_steps >= 16'(batch)) ? batch : 8'd1;
                        ph <= P_IGENTRY;
                    end else begin
                        alpha <= 18'($signed(pair[31:0]));
                        weight <= 18'($signed(pair[63:32]));
                        ph <= (ph == P_IGENTRY) ? P_IGPOINT : P_IGACC;
                    end
                    st <= S_NEXT;
                end

                // ---------------- the result record (predicted, target, then the counters at the end)
                S_RESULT: begin
                    if (ph == P_ARGMAX) begin
                        predicted <= best_idx;
                        target <= (targ < 0) ? best_idx : 16'(targ);
                    end
                    wr_cmd_valid <= 1'b1;
                    wr_cmd_off <= a_result + ((ph == P_ARGMAX) ? rec_off : '0);
                    wr_cmd_beats <= LEN_BITS'(RES_BEATS);
                    res_beat <= '0;
                    st <= S_RESULT_BEATS;
                end
                S_RESULT_BEATS: if (!wr_valid || wr_ready) begin
                    if (32'(res_beat) == RES_BEATS) begin
                        wr_valid <= 1'b0;
                        guard <= 1'b1;
                        st <= S_RESULT_WAIT;
                    end else begin
                        wr_valid <= 1'b1;
                        wr_data <= result_bits[32'(res_beat) * DW +: DW];
                        res_beat <= res_beat + 1'b1;
                    end
                end
                S_RESULT_WAIT: if (!guard && !wr_cmd_valid && wr_idle) begin
                    if (ph == P_ARGMAX) begin
                        log_phase(8'd4);
                        if (img && more_slots) begin   // the next slot's target, argmax and record
                            slot <= slot + 1'b1;
                            logits_off <= logits_off + logits_bytes;
                            st <= S_TARGET;
                        end else begin
                            slot <= '0;
                            ph <= (meth == 4'd0) ? P_DONE : (meth == 4'(METHOD_INTEGRATED_GRADIENTS)) ? P_SAVE
                                : cam ? P_CAMBWD : P_BWD;
                            st <= (meth == 4'd0 && !img) ? S_FINISH : S_NEXT;
                        end
                    end else begin
                        st <= S_FINISH;
                    end
                end

                S_FINISH: if (!guard && wr_idle && !units_busy) begin
                    if (any_err) status[STATUS_BUS_ERROR] <= 1'b1;
                    busy <= 1'b0;
                    done <= 1'b1;
                    run_cycles <= cyc;
                    st <= S_IDLE;
                end
                default: st <= S_IDLE;
            endcase
        end
    end

    logic unused;
    assign unused = ^{hdr, pair_unused};
endmodule
