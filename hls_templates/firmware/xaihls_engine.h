// Engine v2: the controller (docs/engine_v2.md, "The controller") and the post-processing.
//
// A run copies the image to the work area, runs the forward list, takes the first maximum
// of the logits, and for a method runs the backward list (integrated gradients: per step a
// path point, the forward and the backward list, the weighted sum on chip), then the
// post-processing, and writes the result record with the three saturation counters. An image
// batch (`images` = the header's batch) does the same for every slot on the batched lists: a
// copy, a class and a result record, an attribution per slot around one forward and one
// backward list, whose SEED jobs read their slot's target back from its record.
// Bit-exact with the Program interpreter (xaihls/sim/interpreter.py, Engine.run).
#ifndef XAIHLS_ENGINE_H_
#define XAIHLS_ENGINE_H_

#include "xaihls_conv.h"

namespace xaihls {

// The top's return value (contract.Status bits; 0: ok).
constexpr int BUS_ERROR = 1 << c::STATUS_BUS_ERROR;
constexpr int BAD_PROGRAM = 1 << c::STATUS_BAD_PROGRAM;
constexpr int BAD_ARGUMENT = 1 << c::STATUS_BAD_ARGUMENT;
constexpr int CSIM_FAULT = 1 << 7;  // C-simulation only: see csim_channel_fault, csim_walk_fault

// The header fields the controller reads (contract.HEADER).
struct Header {
    uint32_t magic, forward_addr, backward_addr, image_addr, work_addr, baseline_addr, ig_table_addr, logits_addr,
        logits_save_addr, result_addr, attr_addr, grad_input_addr, forward_batch_addr, backward_batch_addr, slot_bytes,
        targets_addr, logits_slot_bytes, cam_addr;
    int version, tm, tn, beat_elems, desc_words, n_forward, n_backward, classes, input_elems, input_frac;
    int batch, n_forward_batch, n_backward_batch;
    int grad_frac[3], ixg_frac, ig_sum_frac, ig_frac, data_width, index_bits, mask_bits, index_entries;
    int n_cam, n_backward_cam, grad_cam_frac, guided_grad_cam_frac;
};

inline Header decode_header(const uint32_t w[c::HEADER_WORDS]) {
    Header h;
    h.magic = address(w, c::HEADER_MAGIC);
    h.version = field(w, c::HEADER_VERSION);
    h.tm = field(w, c::HEADER_TM);
    h.tn = field(w, c::HEADER_TN);
    h.beat_elems = field(w, c::HEADER_BEAT_ELEMS);
    h.desc_words = field(w, c::HEADER_DESC_WORDS);
    h.n_forward = field(w, c::HEADER_N_FORWARD);
    h.n_backward = field(w, c::HEADER_N_BACKWARD);
    h.forward_addr = address(w, c::HEADER_FORWARD_ADDR);
    h.backward_addr = address(w, c::HEADER_BACKWARD_ADDR);
    h.batch = field(w, c::HEADER_BATCH);
    h.n_forward_batch = field(w, c::HEADER_N_FORWARD_BATCH);
    h.n_backward_batch = field(w, c::HEADER_N_BACKWARD_BATCH);
    h.forward_batch_addr = address(w, c::HEADER_FORWARD_BATCH_ADDR);
    h.backward_batch_addr = address(w, c::HEADER_BACKWARD_BATCH_ADDR);
    h.slot_bytes = address(w, c::HEADER_SLOT_BYTES);
    h.image_addr = address(w, c::HEADER_IMAGE_ADDR);
    h.work_addr = address(w, c::HEADER_WORK_ADDR);
    h.baseline_addr = address(w, c::HEADER_BASELINE_ADDR);
    h.ig_table_addr = address(w, c::HEADER_IG_TABLE_ADDR);
    h.logits_addr = address(w, c::HEADER_LOGITS_ADDR);
    h.logits_save_addr = address(w, c::HEADER_LOGITS_SAVE_ADDR);
    h.result_addr = address(w, c::HEADER_RESULT_ADDR);
    h.attr_addr = address(w, c::HEADER_ATTR_ADDR);
    h.grad_input_addr = address(w, c::HEADER_GRAD_INPUT_ADDR);
    h.classes = field(w, c::HEADER_CLASSES);
    h.input_elems = field(w, c::HEADER_INPUT_ELEMS);
    h.input_frac = field(w, c::HEADER_INPUT_FRAC);
    h.grad_frac[c::RELU_MASK] = field(w, c::HEADER_GRAD_FRAC0);
    h.grad_frac[c::RELU_GUIDED] = field(w, c::HEADER_GRAD_FRAC1);
    h.grad_frac[c::RELU_DECONV] = field(w, c::HEADER_GRAD_FRAC2);
    h.ixg_frac = field(w, c::HEADER_IXG_FRAC);
    h.ig_sum_frac = field(w, c::HEADER_IG_SUM_FRAC);
    h.ig_frac = field(w, c::HEADER_IG_FRAC);
    h.data_width = field(w, c::HEADER_DATA_WIDTH);
    h.index_bits = field(w, c::HEADER_INDEX_BITS);
    h.mask_bits = field(w, c::HEADER_MASK_BITS);
    h.index_entries = field(w, c::HEADER_INDEX_ENTRIES);
    h.targets_addr = address(w, c::HEADER_TARGETS_ADDR);
    h.logits_slot_bytes = address(w, c::HEADER_LOGITS_SLOT_BYTES);
    h.cam_addr = address(w, c::HEADER_CAM_ADDR);
    h.n_cam = field(w, c::HEADER_N_CAM);
    h.n_backward_cam = field(w, c::HEADER_N_BACKWARD_CAM);
    h.grad_cam_frac = field(w, c::HEADER_GRAD_CAM_FRAC);
    h.guided_grad_cam_frac = field(w, c::HEADER_GUIDED_GRAD_CAM_FRAC);
    return h;
}

// A Program of this contract version built for this engine (array, beat and kept state within it,
// every region on a beat boundary).
inline bool header_fits(const Header &h) {
    const bool identity = h.magic == c::PROGRAM_MAGIC && h.version == c::PROGRAM_VERSION
        && h.desc_words == c::DESCRIPTOR_WORDS && h.tm == TM && h.tn == TN && h.beat_elems == E
        && h.data_width == DATA_WIDTH;
    const bool sizes = h.mask_bits <= MASK_BITS && h.index_entries <= INDEX_ENTRIES && h.index_bits <= INDEX_BITS
        && h.classes >= 1 && h.input_elems >= 1 && (h.input_elems & (E - 1)) == 0;
    const bool regions = aligned(h.forward_addr) && aligned(h.backward_addr) && aligned(h.image_addr)
        && aligned(h.work_addr) && aligned(h.baseline_addr) && aligned(h.ig_table_addr) && aligned(h.logits_addr)
        && aligned(h.logits_save_addr) && aligned(h.result_addr) && aligned(h.attr_addr)
        && aligned(h.grad_input_addr) && aligned(h.forward_batch_addr) && aligned(h.backward_batch_addr)
        && aligned(h.slot_bytes) && aligned(h.targets_addr) && aligned(h.logits_slot_bytes) && aligned(h.cam_addr)
        && h.batch >= 1 && (h.batch == 1 || (h.n_forward_batch >= 1 && h.n_backward_batch >= 1 && h.slot_bytes >= 1))
        && h.n_backward_cam <= h.n_backward;
    return identity && sizes && regions;
}

// One 32-bit word at a 4-byte aligned address (the IG table).
inline int word_at(const beat_t *ddr, uint32_t byte_addr) {
    const beat_t beat = ddr_read(ddr, beat_of(byte_addr));
    const int j = int((byte_addr >> 2) & (WORDS_PER_BEAT - 1));
    int word = 0;
    for (int k = 0; k < WORDS_PER_BEAT; k++) {
#pragma HLS unroll
        if (k == j) word = int(uint32_t(beat.range(32 * k + 31, 32 * k)));
    }
    return word;
}

// Runs `count` descriptors from `list_addr` under ReLU-backward `mode`; a status on refusal. A
// SEED seeds `target`, or with `records` (an image batch's result records) its slot's target.
inline int run_list(beat_t *ddr, uint32_t list_addr, int count, int mode, int target, mask_mem_t mask,
                    index_mem_t index, int &saturated, uint32_t records = 0) {
    int beat = beat_of(list_addr);
run_jobs:
    for (int j = 0; j < count; j++) {
#pragma HLS loop_tripcount max=MAX_JOBS
        uint32_t words[c::DESCRIPTOR_WORDS];
        read_words<c::DESCRIPTOR_WORDS>(ddr, beat, words);
        const Desc d = decode_desc(words);
        if (d.op == c::OP_CONV) {
            // a slot job runs once a slot, one after another: slot s is the job at in_addr,
            // out_addr, mask_base and index_base plus s times their strides (0 or 1 slots: once)
            const int slots = imax(1, d.slots);
            Desc s = d;
        run_slots:
            for (int k = 0; k < slots; k++) {
#pragma HLS loop_tripcount max=MAX_BATCH
                if (!conv_fits(s)) return BAD_PROGRAM;
                LoadCfg lc;
                MacCfg mc;
                StoreCfg sc;
                decode_conv(s, mode, lc, mc, sc);
                int sat = 0;
                conv_job(ddr, lc, mc, sc, sc.commands, mask, index, sat);
                saturated += sat;
                s.in_addr += d.in_slot_bytes;
                s.out_addr += d.out_slot_bytes;
                s.mask_base += d.mask_slot;
                s.index_base += d.index_slot;
            }
        } else if (d.op == c::OP_SEED) {
            const int seeded = records ? word_at(ddr, records + uint32_t(d.slot) * c::RESULT_SLOT_BYTES + 4) : target;
            if (!seed_fits(d, seeded)) return BAD_PROGRAM;
            seed_job(ddr, d, mode, seeded, mask);
        } else {
            return BAD_PROGRAM;
        }
        beat += DESC_BEATS;
    }
    return 0;
}

// The first maximum of the `classes` logits.
inline int argmax(const beat_t *ddr, int base, int classes) {
    const int beats = (classes + E - 1) / E;
    int best_class = 0, c0 = 0;
    data_t best = 0;
argmax:
    for (int b = 0; b < beats; b++) {
#pragma HLS loop_tripcount max=MAX_SEED_BEATS
#pragma HLS pipeline II=1
        const beat_t beat = ddr_read(ddr, base + b);
        for (int e = 0; e < E; e++) {
#pragma HLS unroll
            const data_t v = lane(beat, e);
            if (c0 + e < classes && (c0 + e == 0 || v > best)) {
                best = v;
                best_class = c0 + e;
            }
        }
        c0 += E;
    }
    return best_class;
}

// ---------------------------------------------------------------------------------------
// Post-processing: element-wise passes over the blocked input, E lanes a cycle, in chunks
// whose reads and writes are each one burst
// ---------------------------------------------------------------------------------------

inline void read_chunk(const beat_t *ddr, int base, int count, beat_t buf[CHUNK_BEATS]) {
read_chunk:
    for (int i = 0; i < count; i++) {
#pragma HLS loop_tripcount max=CHUNK_BEATS
#pragma HLS pipeline II=1
        buf[i] = ddr_read(ddr, base + i);
    }
}

inline void write_chunk(beat_t *ddr, int base, int count, const beat_t buf[CHUNK_BEATS]) {
write_chunk:
    for (int i = 0; i < count; i++) {
#pragma HLS loop_tripcount max=CHUNK_BEATS
#pragma HLS pipeline II=1
        ddr_write(ddr, base + i, buf[i]);
    }
}

inline void copy_beats(beat_t *ddr, int src, int dst, int beats) {
    beat_t buf[CHUNK_BEATS];
copy_chunks:
    for (int base = 0; base < beats; base += CHUNK_BEATS) {
#pragma HLS loop_tripcount max=MAX_INPUT_BEATS / CHUNK_BEATS + 1
        const int count = imin(CHUNK_BEATS, beats - base);
        read_chunk(ddr, src + base, count, buf);
        write_chunk(ddr, dst + base, count, buf);
    }
}

// Integrated gradients' path point k: work = round(base + alpha_k (x - base)) in the input format.
inline void ig_point(beat_t *ddr, const Header &h, int beats, int alpha, int alpha_frac, uint32_t slot_off,
                     int &sat) {
    beat_t xs[CHUNK_BEATS], bs[CHUNK_BEATS], out[CHUNK_BEATS];
    const int image = beat_of(h.image_addr), base = beat_of(h.baseline_addr), work = beat_of(h.work_addr + slot_off);
    int count = 0;
ig_point_chunks:
    for (int c0 = 0; c0 < beats; c0 += CHUNK_BEATS) {
#pragma HLS loop_tripcount max=MAX_INPUT_BEATS / CHUNK_BEATS + 1
        const int len = imin(CHUNK_BEATS, beats - c0);
        read_chunk(ddr, image + c0, len, xs);
        read_chunk(ddr, base + c0, len, bs);
    ig_point:
        for (int i = 0; i < len; i++) {
#pragma HLS loop_tripcount max=CHUNK_BEATS
#pragma HLS pipeline II=1
            beat_t o;
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                const wide_t x = lane(xs[i], e), b = lane(bs[i], e);
                bool clamped;
                set_lane(o, e, requantize((b << alpha_frac) + dsp_mul(operand_t(alpha), operand_t(x - b)), alpha_frac,
                                          clamped));
                count += clamped;
            }
            out[i] = o;
        }
        write_chunk(ddr, work + c0, len, out);
    }
    sat += count;
}

// sum += weight_k * grad_input, in the on-chip IG-sum memory (48 bits a lane).
inline void ig_accumulate(const beat_t *ddr, const Header &h, int beats, int weight, bool first, uint32_t slot_off,
                          ig_word_t ig_sum[IG_BEATS]) {
    beat_t gs[CHUNK_BEATS];
    const int grad = beat_of(h.grad_input_addr + slot_off);
ig_sum_chunks:
    for (int c0 = 0; c0 < beats; c0 += CHUNK_BEATS) {
#pragma HLS loop_tripcount max=MAX_INPUT_BEATS / CHUNK_BEATS + 1
        const int len = imin(CHUNK_BEATS, beats - c0);
        read_chunk(ddr, grad + c0, len, gs);
    ig_sum:
        for (int i = 0; i < len; i++) {
#pragma HLS loop_tripcount max=CHUNK_BEATS
#pragma HLS pipeline II=1
            ig_word_t s = ig_sum[c0 + i];
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                s[e] = (first ? acc_t(0) : s[e]) + dsp_mul(operand_t(weight), operand_t(lane(gs[i], e)));
            }
            ig_sum[c0 + i] = s;
        }
    }
}

// The attribution from the input gradient (or, for integrated gradients, the IG sum; for guided
// Grad-CAM, the product of the guided input gradient with the upsampled map the Grad-CAM list left
// at attr_addr, read in place: each chunk is read before it is written).
// `slot_off`: an image batch's slot (image, input gradient and attribution slot_off bytes on).
inline void post_process(beat_t *ddr, const Header &h, int method, int mode, int beats, int weight_frac,
                         const ig_word_t ig_sum[IG_BEATS], int &sat, uint32_t slot_off = 0) {
    beat_t xs[CHUNK_BEATS], ys[CHUNK_BEATS], out[CHUNK_BEATS];
    const bool integrated = method == c::METHOD_INTEGRATED_GRADIENTS;
    const bool guided_cam = method == c::METHOD_GUIDED_GRAD_CAM;
    const int image = beat_of((guided_cam ? h.attr_addr : h.image_addr) + slot_off);
    const int attr = beat_of(h.attr_addr + slot_off);
    const int other = beat_of(integrated ? h.baseline_addr : h.grad_input_addr + slot_off);
    const int ixg_shift = h.input_frac + h.grad_frac[mode] - h.ixg_frac;
    const int sum_shift = weight_frac + h.grad_frac[c::RELU_MASK] - h.ig_sum_frac;
    const int ig_shift = h.input_frac + h.ig_sum_frac - h.ig_frac;
    const int product_shift = integrated ? ig_shift
                            : guided_cam ? h.grad_cam_frac + h.grad_frac[mode] - h.guided_grad_cam_frac : ixg_shift;
    int count = 0;
post_chunks:
    for (int c0 = 0; c0 < beats; c0 += CHUNK_BEATS) {
#pragma HLS loop_tripcount max=MAX_INPUT_BEATS / CHUNK_BEATS + 1
        const int len = imin(CHUNK_BEATS, beats - c0);
        read_chunk(ddr, image + c0, len, xs);
        read_chunk(ddr, other + c0, len, ys);
    post:
        for (int i = 0; i < len; i++) {
#pragma HLS loop_tripcount max=CHUNK_BEATS
#pragma HLS pipeline II=1
            const ig_word_t s = ig_sum[c0 + i];
            beat_t o;
            for (int e = 0; e < E; e++) {
#pragma HLS unroll
                // x: the image (or the map); y: the baseline, or the gradient
                const data_t x = lane(xs[i], e), y = lane(ys[i], e);
                bool clamped_sum = false, clamped = false;
                const data_t summed = requantize(s[e], sum_shift, clamped_sum);
                // one multiplier a lane: (x - baseline) * summed, or x * gradient
                const operand_t a_op = integrated ? operand_t(wide_t(x) - wide_t(y)) : operand_t(x);
                const product_t p = dsp_mul(a_op, integrated ? operand_t(summed) : operand_t(y));
                data_t a = y;
                if (integrated || guided_cam || method == c::METHOD_INPUT_X_GRADIENT) {
                    a = requantize(p, product_shift, clamped);
                } else if (method == c::METHOD_SALIENCY) {
                    a = requantize(y < 0 ? wide_t(-wide_t(y)) : wide_t(y), 0, clamped);
                }
                count += (integrated && clamped_sum) + clamped;
                set_lane(o, e, a);
            }
            out[i] = o;
        }
        write_chunk(ddr, attr + c0, len, out);
    }
    sat += count;
}

inline bool fits_operand(int v) { return v >= -(1 << 17) && v < (1 << 17); }

// Integrated gradients: the steps in batches of h.batch on the batched lists while that many are
// left, the rest one at a time; per batch every slot's path point, the forward and the backward
// list, and every slot's weighted sum; the image's logits are kept aside and written back.
inline int integrated_gradients(beat_t *ddr, const Header &h, int target, int steps, int beats, mask_mem_t mask,
                                index_mem_t index, ig_word_t ig_sum[IG_BEATS], int sat[3]) {
    const int alpha_frac = word_at(ddr, h.ig_table_addr);
    const int logit_beats = (h.classes + TN - 1) / TN * PIX_BEATS;
    copy_beats(ddr, beat_of(h.logits_addr), beat_of(h.logits_save_addr), logit_beats);
    const uint32_t table = h.ig_table_addr + 8;
ig_steps:
    for (int k = 0; k < steps;) {
#pragma HLS loop_tripcount max=c::MAX_IG_STEPS
        const bool batched = h.batch > 1 && steps - k >= h.batch;
        const int slots = batched ? h.batch : 1;
        uint32_t slot_off = 0;
    ig_points:
        for (int s = 0; s < slots; s++) {
#pragma HLS loop_tripcount max=MAX_BATCH
            const int alpha = word_at(ddr, table + 8 * (k + s));
            if (!fits_operand(alpha)) return BAD_ARGUMENT;
            ig_point(ddr, h, beats, alpha, alpha_frac, slot_off, sat[2]);
            slot_off += h.slot_bytes;
        }
        int status = run_list(ddr, batched ? h.forward_batch_addr : h.forward_addr,
                              batched ? h.n_forward_batch : h.n_forward, c::RELU_MASK, target, mask, index, sat[0]);
        if (status == 0)
            status = run_list(ddr, batched ? h.backward_batch_addr : h.backward_addr,
                              batched ? h.n_backward_batch : h.n_backward, c::RELU_MASK, target, mask, index, sat[1]);
        if (status) return status;
        slot_off = 0;
    ig_sums:
        for (int s = 0; s < slots; s++) {
#pragma HLS loop_tripcount max=MAX_BATCH
            const int weight = word_at(ddr, table + 8 * (k + s) + 4);
            if (!fits_operand(weight)) return BAD_ARGUMENT;
            ig_accumulate(ddr, h, beats, weight, k + s == 0, slot_off, ig_sum);
            slot_off += h.slot_bytes;
        }
        k += slots;
    }
    copy_beats(ddr, beat_of(h.logits_save_addr), beat_of(h.logits_addr), logit_beats);
    return 0;
}

inline void write_result(beat_t *ddr, uint32_t result_addr, const uint32_t words[c::RESULT_WORDS]) {
    const int base = beat_of(result_addr);
    int w = 0;
write_result:
    for (int b = 0; b < RESULT_BEATS; b++) {
#pragma HLS pipeline II=1
        beat_t beat = 0;  // the record's beats end in padding: the region is padded to 64 bytes
        for (int j = 0; j < WORDS_PER_BEAT; j++) {
#pragma HLS unroll
            if (w + j < c::RESULT_WORDS) beat.range(32 * j + 31, 32 * j) = words[w + j];
        }
        ddr_write(ddr, base + b, beat);
        w += WORDS_PER_BEAT;
    }
}

// An image batch (docs/contract.md, "The host's sequence"): every slot's image copied to its
// work slot, the batched forward list, every slot's class and target in its result record, the
// batched backward list and every slot's attribution; the run's counters go in record 0.
inline int run_images(beat_t *ddr, const Header &h, int method, int images, int beats, mask_mem_t mask,
                      index_mem_t index, ig_word_t ig_sum[IG_BEATS], int sat[3], int &predicted0, int &used0) {
    uint32_t slot_off = 0;
copy_slots:
    for (int s = 0; s < images; s++) {
#pragma HLS loop_tripcount max=MAX_BATCH
        copy_beats(ddr, beat_of(h.image_addr + slot_off), beat_of(h.work_addr + slot_off), beats);
        slot_off += h.slot_bytes;
    }
    // the forward list runs under the run's rule too: a ReLU6 keeps the bit that rule reads
    const int mode = relu_mode(method);
    int status = run_list(ddr, h.forward_batch_addr, h.n_forward_batch, mode, 0, mask, index, sat[0]);
    if (status) return status;
    uint32_t logits = h.logits_addr, record = h.result_addr;
pick_slots:
    for (int s = 0; s < images; s++) {
#pragma HLS loop_tripcount max=MAX_BATCH
        const int asked = word_at(ddr, h.targets_addr + 4 * s);
        if (asked >= h.classes) return BAD_ARGUMENT;
        const int predicted = argmax(ddr, beat_of(logits), h.classes);
        const int used = asked < 0 ? predicted : asked;
        if (s == 0) {
            predicted0 = predicted;
            used0 = used;
        }
        const uint32_t result[c::RESULT_WORDS] = {uint32_t(predicted), uint32_t(used), 0, 0, 0};
        write_result(ddr, record, result);
        logits += h.logits_slot_bytes;
        record += c::RESULT_SLOT_BYTES;
    }
    if (method == c::METHOD_PREDICT) return 0;
    status = run_list(ddr, h.backward_batch_addr, h.n_backward_batch, mode, 0, mask, index, sat[1], h.result_addr);
    if (status) return status;
    slot_off = 0;
post_slots:
    for (int s = 0; s < images; s++) {
#pragma HLS loop_tripcount max=MAX_BATCH
        post_process(ddr, h, method, mode, beats, 0, ig_sum, sat[2], slot_off);
        slot_off += h.slot_bytes;
    }
    return 0;
}

// Grad-CAM (docs/dag.md, "Grad-CAM on the engine"): the backward list's first n_backward_cam jobs
// under the true-gradient rule, then the Grad-CAM list, whose saturations count as post-processing;
// it leaves the upsampled map at attr_addr. Guided Grad-CAM: then the whole backward list under the
// guided rule and the product of its input gradient with the map.
inline int grad_cam(beat_t *ddr, const Header &h, int method, int target, int beats, mask_mem_t mask,
                    index_mem_t index, ig_word_t ig_sum[IG_BEATS], int sat[3]) {
    int status = run_list(ddr, h.backward_addr, h.n_backward_cam, c::RELU_MASK, target, mask, index, sat[1]);
    if (status == 0) status = run_list(ddr, h.cam_addr, h.n_cam, c::RELU_MASK, target, mask, index, sat[2]);
    if (status || method == c::METHOD_GRAD_CAM) return status;
    status = run_list(ddr, h.backward_addr, h.n_backward, c::RELU_GUIDED, target, mask, index, sat[1]);
    if (status == 0) post_process(ddr, h, method, c::RELU_GUIDED, beats, 0, ig_sum, sat[2]);
    return status;
}

// One start: the prediction and, unless method is PREDICT, the method's attribution, of one
// image or (`images` = the header's batch) of an image batch.
inline int run_program(beat_t *ddr, int method, int target, int steps, int images, mask_mem_t mask,
                       index_mem_t index, ig_word_t ig_sum[IG_BEATS]) {
    uint32_t hw[c::HEADER_WORDS];
    read_words<c::HEADER_WORDS>(ddr, 0, hw);
    const Header h = decode_header(hw);
    if (!header_fits(h)) return BAD_PROGRAM;
    const bool integrated = method == c::METHOD_INTEGRATED_GRADIENTS;
    const bool cam = method == c::METHOD_GRAD_CAM || method == c::METHOD_GUIDED_GRAD_CAM;
    const bool batch = images > 1;
    if (method < c::METHOD_PREDICT || method > c::METHOD_GUIDED_GRAD_CAM || (!batch && target >= h.classes)
        || (integrated && (steps < 2 || steps > c::MAX_IG_STEPS || h.input_elems > INPUT_ELEMS))
        || (cam && h.n_cam == 0)
        || (batch && (images != h.batch || integrated || cam)))
        return BAD_ARGUMENT;
    const int beats = h.input_elems / E;
    int sat[3] = {0, 0, 0};  // forward, backward, post (contract.RESULT)
    int predicted = 0, used = 0, status = 0;
    if (batch) {
        status = run_images(ddr, h, method, images, beats, mask, index, ig_sum, sat, predicted, used);
        if (status) return status;
    } else {
        copy_beats(ddr, beat_of(h.image_addr), beat_of(h.work_addr), beats);
        // the forward list runs under the run's rule too: a ReLU6 keeps the bit that rule reads
        const int mode = relu_mode(method);
        status = run_list(ddr, h.forward_addr, h.n_forward, mode, 0, mask, index, sat[0]);
        if (status) return status;
        predicted = argmax(ddr, beat_of(h.logits_addr), h.classes);
        used = target < 0 ? predicted : target;
        if (cam) {
            status = grad_cam(ddr, h, method, used, beats, mask, index, ig_sum, sat);
            if (status) return status;
        } else if (method != c::METHOD_PREDICT) {
            status = integrated ? integrated_gradients(ddr, h, used, steps, beats, mask, index, ig_sum, sat)
                                : run_list(ddr, h.backward_addr, h.n_backward, mode, used, mask, index, sat[1]);
            if (status) return status;
            const int weight_frac = integrated ? word_at(ddr, h.ig_table_addr + 4) : 0;
            post_process(ddr, h, method, mode, beats, weight_frac, ig_sum, sat[2]);
        }
    }
    const uint32_t result[c::RESULT_WORDS] = {uint32_t(predicted), uint32_t(used), uint32_t(sat[0]),
                                              uint32_t(sat[1]), uint32_t(sat[2])};
    write_result(ddr, h.result_addr, result);
    return 0;
}

}  // namespace xaihls

#endif
