// Write-back and element-wise unit: reads a filled accumulator set, TM lanes (channels) in
// parallel, one step a cycle, and leaves the 16-bit results in the pack memory laid out as
// the DDR beats of their output rows (the drain unit writes them out row by row).
//
//   CONV        requantize (shift of the ReLU-backward mode), ReLU + bit [acc > 0], BWD_RELU rule
//   CONV + POOL max-pool fused on the accumulator: each window ranked on max(acc, 0) after a
//               ReLU (else acc), first maximum in raster order, its position to the index memory;
//               bits of every conv output visited; RELU_AFTER_POOL on the pooled value
//   MAXPOOL / AVGPOOL              the same windows over input words (average: x * recip summed
//               on the MAC array's column-0 multipliers, then shift0)
//   MAXPOOL_BWD / AVGPOOL_BWD      gather form: every input element sums the outputs whose
//               window routes to it (ceil(k/s)^2 candidates a cycle each), then shift, BWD_RELU
//   RELU, SEED  one element a cycle on lane 0
//
// ReLU bits and pool indices go to the lane memories in the channel-interleaved layout
// (xaihls_lanemem). Guarantees: bit-exact with xaihls/sim/program.py; one step a cycle,
// no stalls once a set is started.

import xaihls_pkg::*;

module xaihls_pack
#(
    parameter int TM        = 4,
    parameter int OUT_DEPTH = 256,
    parameter int IDX_BITS  = 2,
    parameter int LOG_TM    = (TM > 1) ? $clog2(TM) : 1,
    parameter int OUT_AW    = $clog2(OUT_DEPTH)
) (
    input  logic              clk,
    input  logic              rst,

    input  logic              job_start,
    input  xaihls_pkg::desc_t             d,
    input  logic [1:0]        mode,        // ReLU-backward mode of this job
    input  xaihls_pkg::s32_t              target,      // SEED
    output logic              busy,

    // filled accumulator sets
    input  logic [1:0]        acc_full,
    input  logic [1:0][CHUNK_BITS-1:0]            acc_meta,
    input  logic [1:0][TM-1:0][1:0]        acc_lead,
    output logic              acc_release,      // pulse: acc_release_set has been read
    output logic              acc_release_set,
    output logic              rd_set,
    output logic [TM-1:0][OUT_AW-1:0] rd_addr,
    input  logic [TM-1:0][63:0]       rd_data,

    // average pooling multiplies on the MAC array
    output logic              ext_en,
    output logic [TM-1:0][15:0] ext_a,
    output logic signed [15:0] ext_b,
    input  logic [TM-1:0][31:0] ext_p,

    // mask and index memories (K: flat position of lane 0; lane l is K + l)
    output xaihls_pkg::s32_t              mask_rk,
    input  logic [TM-1:0]     mask_rbit,
    output xaihls_pkg::s32_t              mask_wk,
    output logic [TM-1:0]     mask_wen,
    output logic [TM-1:0]     mask_wbit,
    output xaihls_pkg::s32_t              idx_rk,
    input  logic [TM-1:0][IDX_BITS-1:0] idx_rdata,
    output xaihls_pkg::s32_t              idx_wk,
    output logic [TM-1:0]     idx_wen,
    output logic [TM-1:0][IDX_BITS-1:0] idx_wdata,

    // pack memory (per lane: OUT_DEPTH entries of four 16-bit words)
    output logic [TM-1:0][3:0]        pm_we,
    output logic [TM-1:0][OUT_AW-1:0] pm_addr,
    output logic [TM-1:0][63:0]       pm_wdata,

    // completed rows to the drain; the pack memory is a ring of rows, freed by the drain
    output logic              row_push,
    output xaihls_pkg::s32_t              row_word,         // word address of lane 0's first output of the row
    output xaihls_pkg::s32_t              row_base,         // the row's first pack-memory entry
    output xaihls_pkg::s32_t              row_lanes,
    output xaihls_pkg::s32_t              row_lane_stride,
    output xaihls_pkg::s32_t              row_span,         // words from the row's first to last output
    output xaihls_pkg::s32_t              row_osx,
    output xaihls_pkg::s32_t              row_rstride,      // entries per row
    input  logic              row_free,
    input  xaihls_pkg::s32_t              row_free_entries,

    // values saturated by this cycle's requantizations (one per lane at most)
    output logic [$clog2(TM+1)-1:0] sat_count
);
    localparam int ROWQ = 8;   // rows allocated and not yet freed (the drain's row queue)
    xaihls_pkg::desc_t j;
    assign j = d;  // the controller holds the descriptor until the engine is idle
    logic [1:0] jmode;
    xaihls_pkg::s32_t jtarget;
    logic [3:0] op;
    assign op = j.op[3:0];

    typedef enum logic [2:0] {K_CONV, K_CPOOL, K_PFWD, K_PBWD, K_RELU, K_SEED} kind_t;
    kind_t kind;
    always_comb begin
        case (op)
            OP_CONV:        kind = j.flags[FL_POOL] ? K_CPOOL : K_CONV;
            OP_MAXPOOL, OP_AVGPOOL: kind = K_PFWD;
            OP_MAXPOOL_BWD, OP_AVGPOOL_BWD: kind = K_PBWD;
            OP_RELU:        kind = K_RELU;
            default:        kind = K_SEED;
        endcase
    end
    logic is_avg, is_ew, has_relu, has_rap, has_bwd;
    assign is_avg = (op == OP_AVGPOOL) || (op == OP_AVGPOOL_BWD);
    assign is_ew = (kind != K_CONV) && (kind != K_CPOOL);
    assign has_relu = j.flags[FL_RELU] && (op == OP_CONV);
    assign has_rap = j.flags[FL_RAP] && (kind == K_CPOOL || kind == K_PFWD);
    assign has_bwd = j.flags[FL_BWD_RELU];

    xaihls_pkg::s32_t shift;
    always_comb begin
        if (kind == K_CPOOL || kind == K_PFWD) shift = j.shift0;
        else case (jmode)
            2'd1: shift = j.shift1;
            2'd2: shift = j.shift2;
            default: shift = j.shift0;
        endcase
    end

    xaihls_pkg::s32_t k, s, rc;
    assign k = j.pool_k;
    assign s = j.pool_s;
    assign rc = $signed(32'(xaihls_pkg::ceil_div_small(j.pool_k, j.pool_s)));

    // ---------------------------------------------------------------- setup multiplier
    logic signed [24:0] mul_a;
    logic signed [17:0] mul_b;
    xaihls_pkg::s32_t prod;
    assign prod = $signed(32'(mul_a * mul_b));

    // job products
    xaihls_pkg::s32_t oplane, osyopw, spanm1, ppool, ohow, ihiw, sw, sk, oyo_opw;
    // channel-group offsets (m0 x plane) and the running row position: chunks need no products
    xaihls_pkg::s32_t g_out, g_mask, g_idx, crow_ow;
    logic job_first;

    typedef enum logic [2:0] {P_IDLE, P_JOBSU, P_WAIT, P_RUN, P_FLUSH} pst_t;
    pst_t st;
    logic [3:0] su;
    logic cur;        // set being packed
    xaihls_pkg::chunk_t ch;
    logic [TM-1:0][1:0] ch_lead;
    xaihls_pkg::s32_t p0_conv;    // CONV + POOL: first pooled row of the current row tile

    always_comb begin
        mul_a = '0;
        mul_b = '0;
        if (st == P_JOBSU) begin
            case (su)
                4'd0: begin mul_a = 25'(j.oph);            mul_b = 18'(j.opw); end
                4'd1: begin mul_a = 25'(j.osy);            mul_b = 18'(j.opw); end
                4'd2: begin mul_a = 25'(j.ow - 32'sd1);    mul_b = 18'(j.osx); end
                4'd3: begin mul_a = 25'(j.pool_oh);        mul_b = 18'(j.pool_ow); end
                4'd4: begin mul_a = 25'(j.oh);             mul_b = 18'(j.ow); end
                4'd5: begin mul_a = 25'(j.ih);             mul_b = 18'(j.iw); end
                4'd6: begin mul_a = 25'(j.pool_s);         mul_b = 18'(kind == K_CPOOL ? j.ow : j.iw); end
                4'd7: begin mul_a = 25'(j.pool_s);         mul_b = 18'(j.pool_k); end
                4'd8: begin mul_a = 25'(j.oyo);            mul_b = 18'(j.opw); end
                default: ;
            endcase
        end
    end

    // ---------------------------------------------------------------- iteration (stage q0)
    xaihls_pkg::s32_t r, x, a, b;
    xaihls_pkg::s32_t rowA, colA, aA, bA;          // source position = rowA + colA + aA + bA
    xaihls_pkg::s32_t orow, xo;                    // CONV: output row offset (oy'*OPW) and x*osx
    xaihls_pkg::s32_t prow_pw;                     // pooled row * pool_ow (index / RELU_AFTER_POOL)
    xaihls_pkg::s32_t yiw;                         // POOL_BWD: y * IW
    xaihls_pkg::s32_t fy, ry, fx, rx, fy_pow, ryk, a_s, b_s, ask;
    xaihls_pkg::s32_t widx;
    xaihls_pkg::s32_t rsk;                         // CONV + POOL: r*s + k (the window's last conv row + 1)
    xaihls_pkg::s32_t rows_n, cols_n, inner_a, inner_b;
    xaihls_pkg::s32_t row_lead;                    // (row word address) mod 4
    xaihls_pkg::s32_t c_word, c_lstride, c_rowstride, c_span, c_osx, c_rstride;   // the chunk's rows
    // short contiguous rows: the chunk's rows of a lane go out as one run (no partial beat per row)
    logic c_merge;
    xaihls_pkg::s32_t c_word0, c_lead0, lin;
    xaihls_pkg::s32_t wp, cur_rowbase, alloc_entries, alloc_rows;                 // the pack-memory ring
    logic q_valid;
    xaihls_pkg::s32_t mgbase, igbase;              // mask / index position of (lane 0 channel, 0)
    xaihls_pkg::s32_t lanes;

    logic last_b, last_a, last_x, last_r;
    assign last_b = (b == inner_b - 1);
    assign last_a = (a == inner_a - 1);
    assign last_x = (x == cols_n - 1);
    assign last_r = (kind == K_CPOOL) ? !((rsk + s <= ch.rows) && (p0_conv + r + 1 < j.pool_oh))
                                      : (r == rows_n - 1);

    xaihls_pkg::s32_t src, mpos, ipos, q_widx;
    logic cand_ok;
    always_comb begin
        src = rowA + colA + aA + bA;
        case (kind)
            K_CONV:  mpos = orow + xo + j.oxo;
            K_CPOOL: mpos = has_rap ? prow_pw + x : crow_ow + colA + aA + bA;  // conv row * OW + column
            K_PFWD:  mpos = prow_pw + x;
            K_PBWD:  mpos = yiw + x;
            default: mpos = ch.pyl + x;                             // flat (RELU from e0; SEED from 0)
        endcase
        ipos = (kind == K_PBWD) ? (fy_pow + colA + aA + bA) : (prow_pw + x);
        q_widx = (kind == K_PBWD) ? (ryk + ask + rx + b_s) : widx;
        cand_ok = (kind != K_PBWD) ||
                  ((fy - a >= 0) && (fy - a < j.pool_oh) && (ry + a_s < k) &&
                   (fx - b >= 0) && (fx - b < j.pool_ow) && (rx + b_s < k));
    end

    // K of lane 0 (lane l adds l)
    xaihls_pkg::s32_t mk, ik;
    assign mk = is_ew && (kind == K_RELU || kind == K_SEED) ? j.mask_base + mpos
                                                            : mgbase + xaihls_pkg::mul_small(mpos, 8'(lanes));
    assign ik = igbase + xaihls_pkg::mul_small(ipos, 8'(lanes));

    // output placement (pack memory) of this step's result
    xaihls_pkg::s32_t q_col;
    assign q_col = c_merge ? lin : (kind == K_CONV) ? xo : x;

    logic q_first, q_last, q_row_last;
    assign q_first = (a == 0) && (b == 0);
    assign q_last = last_a && last_b;
    assign q_row_last = q_last && last_x && (!c_merge || last_r);


    // a new chunk: the next channel group's offsets (chunks of one group continue its rows)
    xaihls_pkg::chunk_t nm;
    logic ng;
    xaihls_pkg::s32_t out_plane, mask_plane, gn_out, gn_mask, gn_idx, word0, lstride_j, rowstride_j, span_j;
    assign nm = acc_meta[cur];
    assign ng = nm.first;
    always_comb begin
        case (kind)
            K_CONV:  begin out_plane = oplane; mask_plane = oplane; end
            K_CPOOL: begin out_plane = ppool;  mask_plane = has_rap ? ppool : ohow; end
            K_PFWD:  begin out_plane = ppool;  mask_plane = ppool; end
            K_PBWD:  begin out_plane = ihiw;   mask_plane = ihiw; end
            default: begin out_plane = '0;     mask_plane = '0; end
        endcase
        gn_out = !ng ? g_out : job_first ? 32'sd0 : g_out + (out_plane <<< LOG_TM);
        gn_mask = !ng ? g_mask : job_first ? 32'sd0 : g_mask + (mask_plane <<< LOG_TM);
        gn_idx = !ng ? g_idx : job_first ? 32'sd0 : g_idx + (ppool <<< LOG_TM);
        case (kind)
            K_CONV:  word0 = (j.out_addr >>> 1) + gn_out + oyo_opw + j.oxo;
            K_RELU:  word0 = (j.out_addr >>> 1) + nm.r0;
            K_SEED:  word0 = (j.out_addr >>> 1);
            default: word0 = (j.out_addr >>> 1) + gn_out;
        endcase
        case (kind)
            K_CONV:  begin lstride_j = oplane; rowstride_j = osyopw; span_j = spanm1 + 32'sd1; end
            K_CPOOL, K_PFWD: begin lstride_j = ppool; rowstride_j = j.pool_ow; span_j = j.pool_ow; end
            K_PBWD:  begin lstride_j = ihiw; rowstride_j = j.iw; span_j = j.iw; end
            K_RELU:  begin lstride_j = '0; rowstride_j = '0; span_j = nm.rows; end
            default: begin lstride_j = '0; rowstride_j = '0; span_j = j.n; end
        endcase
    end

    logic merge_n;
    assign merge_n = (kind == K_CONV || kind == K_CPOOL || kind == K_PFWD || kind == K_PBWD) &&
                     (span_j < 32'sd16) && (rowstride_j == span_j) && (kind != K_CONV || j.osx == 32'sd1);

    // a row starts only with room for it in the ring and in the drain's row queue
    logic row_begin, room, q_go;
    assign row_begin = (x == 0) && (a == 0) && (b == 0) && (!c_merge || r == 0);
    assign room = (alloc_entries + c_rstride <= $signed(32'(OUT_DEPTH))) && (alloc_rows < ROWQ);
    assign q_go = (st == P_RUN) && (!row_begin || room);
    xaihls_pkg::s32_t step_rowbase;
    assign step_rowbase = row_begin ? wp : cur_rowbase;

    logic flush_done;
    always_ff @(posedge clk) begin
        if (rst || job_start) begin
            wp <= '0;
            alloc_entries <= '0;
            alloc_rows <= '0;
        end else begin
            alloc_entries <= alloc_entries + ((q_go && row_begin) ? c_rstride : 32'sd0)
                             - (row_free ? row_free_entries : 32'sd0);
            alloc_rows <= alloc_rows + $signed(32'(q_go && row_begin)) - $signed(32'(row_free));
            if (q_go && row_begin) begin
                wp <= (wp + c_rstride) & $signed(32'(OUT_DEPTH - 1));
                cur_rowbase <= wp;
            end
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            st <= P_IDLE;
            acc_release <= 1'b0;
            q_valid <= 1'b0;
            busy <= 1'b0;
        end else begin
            acc_release <= 1'b0;
            if (job_start) begin
                jmode <= mode;
                jtarget <= target;
                st <= P_JOBSU;
                su <= '0;
                cur <= 1'b0;
                busy <= 1'b1;
                q_valid <= 1'b0;
            end else case (st)
                P_JOBSU: begin
                    su <= su + 4'd1;
                    case (su)
                        4'd0: oplane <= prod;
                        4'd1: osyopw <= prod;
                        4'd2: spanm1 <= prod;
                        4'd3: ppool <= prod;
                        4'd4: ohow <= prod;
                        4'd5: ihiw <= prod;
                        4'd6: sw <= prod;
                        4'd7: sk <= prod;
                        4'd8: begin oyo_opw <= prod; job_first <= 1'b1; st <= P_WAIT; end
                        default: ;
                    endcase
                end
                P_WAIT: if (acc_full[cur]) begin
                    // start the chunk: no products, the running positions carry over within a group
                    ch <= nm;
                    for (int l = 0; l < TM; l++) ch_lead[l] <= acc_lead[cur][l];
                    job_first <= 1'b0;
                    g_out <= gn_out;
                    g_mask <= gn_mask;
                    g_idx <= gn_idx;
                    mgbase <= j.mask_base + gn_mask;
                    igbase <= j.index_base + gn_idx;
                    lanes <= nm.lanes;
                    c_lstride <= lstride_j;
                    c_rowstride <= rowstride_j;
                    c_span <= span_j;
                    c_osx <= (kind == K_CONV) ? j.osx : 32'sd1;
                    if (merge_n) begin
                        c_merge <= 1'b1;
                        c_rstride <= (xaihls_pkg::mul_small(nm.rows, 8'(span_j)) + 32'sd6) >>> 2;
                        c_word0 <= (ng || kind == K_RELU || kind == K_SEED) ? word0 : c_word;
                        c_lead0 <= (ng || kind == K_RELU || kind == K_SEED) ? (word0 & 32'sd3) : row_lead;
                    end else begin
                        c_merge <= 1'b0;
                        c_rstride <= (span_j + 32'sd6) >>> 2;
                    end
                    lin <= '0;
                    if (ng || kind == K_RELU || kind == K_SEED) begin
                        c_word <= word0;
                        row_lead <= word0 & 32'sd3;
                        orow <= oyo_opw;
                        prow_pw <= '0;
                        crow_ow <= '0;
                        p0_conv <= '0;
                        yiw <= '0;
                        fy <= '0; ry <= '0; ryk <= '0; fy_pow <= '0;
                    end
                    st <= P_RUN;
                    q_valid <= 1'b1;
                    r <= '0; x <= '0; a <= '0; b <= '0;
                    colA <= '0; aA <= '0; bA <= '0; xo <= '0; widx <= '0;
                    a_s <= '0; b_s <= '0; fx <= '0; rx <= '0; ask <= '0;
                    rsk <= k;
                    rowA <= '0;
                    case (kind)
                        K_CONV: begin
                            rows_n <= nm.rows; cols_n <= j.ow; inner_a <= 32'sd1; inner_b <= 32'sd1;
                        end
                        K_CPOOL, K_PFWD: begin
                            rows_n <= nm.rows; cols_n <= j.pool_ow; inner_a <= k; inner_b <= k;
                        end
                        K_PBWD: begin
                            rows_n <= nm.rows; cols_n <= j.iw; inner_a <= rc; inner_b <= rc;
                            // (fy - pyl) * pow, fy - pyl < ceil(k/s) <= 16
                            rowA <= xaihls_pkg::mul_small(j.pool_ow, 8'((ng ? 32'sd0 : fy) - nm.pyl));
                        end
                        K_RELU: begin
                            rows_n <= 32'sd1; cols_n <= nm.rows; inner_a <= 32'sd1; inner_b <= 32'sd1;
                        end
                        default: begin
                            rows_n <= 32'sd1; cols_n <= j.n; inner_a <= 32'sd1; inner_b <= 32'sd1;
                        end
                    endcase
                end
                P_RUN: if (q_go) begin
                    if (last_a && last_b) lin <= lin + 1;
                    // advance b, a, x, r
                    if (!last_b) begin
                        b <= b + 1;
                        widx <= widx + 1;
                        if (kind == K_PBWD) begin bA <= bA - 1; b_s <= b_s + s; end
                        else bA <= bA + 1;
                    end else begin
                        b <= '0; bA <= '0; b_s <= '0;
                        if (!last_a) begin
                            a <= a + 1;
                            widx <= widx + 1;
                            if (kind == K_PBWD) begin aA <= aA - j.pool_ow; a_s <= a_s + s; ask <= ask + sk; end
                            else aA <= aA + ((kind == K_CPOOL) ? j.ow : j.iw);
                        end else begin
                            a <= '0; aA <= '0; a_s <= '0; ask <= '0; widx <= '0;
                            if (!last_x) begin
                                x <= x + 1;
                                xo <= xo + j.osx;
                                case (kind)
                                    K_CPOOL, K_PFWD: colA <= colA + s;
                                    K_PBWD: begin
                                        if (rx == s - 1) begin rx <= '0; fx <= fx + 1; colA <= colA + 1; end
                                        else rx <= rx + 1;
                                    end
                                    default: colA <= colA + 1;
                                endcase
                            end else begin
                                x <= '0; xo <= '0; colA <= '0; fx <= '0; rx <= '0;
                                r <= r + 1;
                                c_word <= c_word + c_rowstride;
                                row_lead <= (row_lead + c_rowstride) & 32'sd3;
                                rsk <= rsk + s;
                                case (kind)
                                    K_CONV: begin rowA <= rowA + j.ow; orow <= orow + osyopw; end
                                    K_CPOOL: begin
                                        rowA <= rowA + sw; prow_pw <= prow_pw + j.pool_ow; crow_ow <= crow_ow + sw;
                                    end
                                    K_PFWD: begin rowA <= rowA + sw; prow_pw <= prow_pw + j.pool_ow; end
                                    K_PBWD: begin
                                        yiw <= yiw + j.iw;
                                        if (ry == s - 1) begin
                                            ry <= '0; ryk <= '0; fy <= fy + 1;
                                            rowA <= rowA + j.pool_ow; fy_pow <= fy_pow + j.pool_ow;
                                        end else begin
                                            ry <= ry + 1; ryk <= ryk + k;
                                        end
                                    end
                                    default: ;
                                endcase
                                if (last_r) begin
                                    // the set's last read is now: hand it back, go on with the next chunk
                                    acc_release <= 1'b1;
                                    acc_release_set <= cur;
                                    cur <= !cur;
                                    q_valid <= 1'b0;
                                    if (kind == K_CPOOL) p0_conv <= p0_conv + r + 1;
                                    st <= ch.last ? P_FLUSH : P_WAIT;
                                end
                            end
                        end
                    end
                end
                P_FLUSH: if (flush_done) begin
                    st <= P_IDLE;
                    busy <= 1'b0;
                end
                default: st <= P_IDLE;
            endcase
        end
    end

    // ---------------------------------------------------------------- reads (q0 -> q1)
    assign rd_set = cur;
    for (genvar l = 0; l < TM; l++) begin : g_rd
        xaihls_pkg::s32_t wa;
        assign wa = src + $signed(32'(ch_lead[l]));
        assign rd_addr[l] = is_ew ? OUT_AW'(wa >>> 2) : OUT_AW'(src);
    end
    assign mask_rk = mk;
    assign idx_rk = ik;

    // ---------------------------------------------------------------- pipeline
    // q1: data; q2: values; q3, q4: (multiplier); q4: combine; q5: finalize; q6: writes
    typedef struct packed {
        logic first, last, row_last, cand;
        xaihls_pkg::s32_t widx, col, row, mk, ik, x;
        xaihls_pkg::s32_t lanes, word, lstride, span, osx, rstride, lead;
    } step_t;
    step_t q0s, q1s, q2s, q3s, q4s, q5s;
    logic q1_v, q2_v, q3_v, q4_v, q5_v, q6_v;
    logic [TM-1:0][1:0] q1_slot;

    always_comb begin
        q0s.first = q_first;
        q0s.last = q_last;
        q0s.row_last = q_row_last;
        q0s.cand = cand_ok;
        q0s.widx = q_widx;
        q0s.col = q_col;
        q0s.row = step_rowbase;
        q0s.mk = mk;
        q0s.ik = ik;
        q0s.x = x;
        q0s.lanes = lanes;
        q0s.word = c_merge ? c_word0 : c_word;
        q0s.lstride = c_lstride;
        q0s.span = c_merge ? lin + 32'sd1 : c_span;
        q0s.osx = c_osx;
        q0s.rstride = c_rstride;
        q0s.lead = c_merge ? c_lead0 : row_lead;
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            q1_v <= 1'b0;
        end else begin
            q1_v <= q_go;
        end
        q1s <= q0s;
        for (int l = 0; l < TM; l++) q1_slot[l] <= 2'(src + $signed(32'(ch_lead[l])));
    end

    // q2: values per lane
    logic [TM-1:0][63:0] v2;
    logic [TM-1:0] bit2;
    logic [TM-1:0] hit2;
    always_ff @(posedge clk) begin
        if (rst) q2_v <= 1'b0;
        else q2_v <= q1_v;
        q2s <= q1s;
        for (int l = 0; l < TM; l++) begin
            if (kind == K_SEED) v2[l] <= (q1s.x == jtarget) ? (64'sd1 <<< j.shift0[5:0]) : 64'sd0;
            else if (is_ew) v2[l] <= 64'($signed(rd_data[l][16*q1_slot[l] +: 16]));
            else v2[l] <= 64'($signed(rd_data[l][47:0]));
            hit2[l] <= ($signed(32'(idx_rdata[l])) == q1s.widx);
        end
        bit2 <= mask_rbit;
    end

    // average pooling: value x recip on the MAC array (two cycles)
    assign ext_en = is_avg && busy;
    assign ext_b = j.recip[15:0];
    always_comb for (int l = 0; l < TM; l++) ext_a[l] = v2[l][15:0];

    logic [TM-1:0][63:0] v3;
    logic [TM-1:0][63:0] v4;
    logic [TM-1:0] bit3, bit4, hit3, hit4;
    always_ff @(posedge clk) begin
        if (rst) begin q3_v <= 1'b0; q4_v <= 1'b0; end
        else begin q3_v <= q2_v; q4_v <= q3_v; end
        q3s <= q2s; q4s <= q3s;
        v3 <= v2; v4 <= v3;
        bit3 <= bit2; bit4 <= bit3;
        hit3 <= hit2; hit4 <= hit3;
    end

    // per-step ReLU bits (CONV, CONV + POOL with ReLU, standalone ReLU): written from q2
    logic step_mask_we;
    assign step_mask_we = q2_v && (has_relu || kind == K_RELU);

    // q4 -> q5: combine the steps of an output
    logic [TM-1:0][63:0] best;
    logic [TM-1:0][63:0] best_rank;
    logic [TM-1:0][63:0] acc;
    logic [TM-1:0][IDX_BITS-1:0] bidx;
    logic [TM-1:0][63:0] fin;
    logic [TM-1:0][IDX_BITS-1:0] fin_idx;
    always_ff @(posedge clk) begin
        if (rst) q5_v <= 1'b0;
        else q5_v <= q4_v && q4s.last;
        q5s <= q4s;
        if (q4_v) begin
            for (int l = 0; l < TM; l++) begin
                logic signed [63:0] val, rank, add, nbest, nrank, nacc;
                logic [IDX_BITS-1:0] nidx;
                val = v4[l];
                rank = (has_relu && val < 0) ? 64'sd0 : val;
                nbest = best[l]; nrank = best_rank[l]; nidx = bidx[l];
                if (q4s.first || rank > $signed(best_rank[l])) begin
                    nbest = val; nrank = rank; nidx = IDX_BITS'(q4s.widx);
                end
                if (kind == K_PBWD) add = !q4s.cand ? 64'sd0 : is_avg ? 64'($signed(ext_p[l])) : (hit4[l] ? val : 64'sd0);
                else add = 64'($signed(ext_p[l]));
                nacc = q4s.first ? add : acc[l] + add;
                best[l] <= nbest; best_rank[l] <= nrank; bidx[l] <= nidx; acc[l] <= nacc;
                if ((kind == K_CPOOL || kind == K_PFWD) && !is_avg) fin[l] <= nbest;
                else if (kind == K_PFWD || kind == K_PBWD) fin[l] <= nacc;
                else fin[l] <= val;
                fin_idx[l] <= nidx;
            end
        end
    end
    logic [TM-1:0] bit5;
    always_ff @(posedge clk) bit5 <= bit4;

    // q5 -> q6: requantize and the ReLU rules
    logic [TM-1:0] rap_bit6;
    logic [TM-1:0][15:0] out6;
    logic [TM-1:0][IDX_BITS-1:0] idx6;
    step_t q6s;
    always_ff @(posedge clk) begin
        logic [$clog2(TM+1)-1:0] sat_lanes;
        if (rst) q6_v <= 1'b0;
        else q6_v <= q5_v;
        q6s <= q5s;
        sat_lanes = '0;
        for (int l = 0; l < TM; l++) begin
            logic signed [15:0] o;
            if (q5_v && kind != K_SEED && kind != K_RELU && $signed(32'(l)) < q5s.lanes &&
                xaihls_pkg::saturates(fin[l], shift))
                sat_lanes = sat_lanes + 1'b1;
            if (kind == K_SEED) o = fin[l][15:0];
            else if (kind == K_RELU) o = fin[l][15:0];
            else o = xaihls_pkg::requant(fin[l], shift);
            if (has_relu || kind == K_RELU) o = (o < 0) ? 16'sd0 : o;
            rap_bit6[l] <= (o > 0);
            if (has_rap) o = (o < 0) ? 16'sd0 : o;
            if (has_bwd) o = xaihls_pkg::relu_rule(o, bit5[l], jmode);
            out6[l] <= o;
            idx6[l] <= fin_idx[l];
        end
        sat_count <= sat_lanes;
    end

    // writes: pack memory, RELU_AFTER_POOL bits, pool indices (q6); per-step bits (q2)
    for (genvar l = 0; l < TM; l++) begin : g_pm
        xaihls_pkg::s32_t pos, loff;
        assign loff = $signed(32'(2'(l) * q6s.lstride[1:0]));   // (l * lane_stride) mod 4
        assign pos = ((q6s.lead + loff) & 32'sd3) + q6s.col;
        assign pm_we[l] = (q6_v && $signed(32'(l)) < q6s.lanes) ? (4'b0001 << pos[1:0]) : 4'b0000;
        assign pm_addr[l] = OUT_AW'(q6s.row + (pos >>> 2));
        assign pm_wdata[l] = {4{out6[l]}};
    end

    assign row_push = q6_v && q6s.row_last;
    assign row_word = q6s.word;
    assign row_base = q6s.row;
    assign row_lanes = q6s.lanes;
    assign row_lane_stride = q6s.lstride;
    assign row_span = q6s.span;
    assign row_osx = q6s.osx;
    assign row_rstride = q6s.rstride;

    always_comb begin
        mask_wk = step_mask_we ? q2s.mk : q6s.mk;
        mask_wen = '0;
        mask_wbit = '0;
        for (int l = 0; l < TM; l++) begin
            if (step_mask_we) begin
                mask_wen[l] = ($signed(32'(l)) < q2s.lanes) && q2s.cand;
                mask_wbit[l] = ($signed(v2[l]) > 64'sd0);
            end else if (q6_v && has_rap) begin
                mask_wen[l] = ($signed(32'(l)) < q6s.lanes);
                mask_wbit[l] = rap_bit6[l];
            end
        end
        idx_wk = q6s.ik;
        for (int l = 0; l < TM; l++) begin
            idx_wen[l] = q6_v && (kind == K_CPOOL || (kind == K_PFWD && !is_avg)) && ($signed(32'(l)) < q6s.lanes);
            idx_wdata[l] = idx6[l];
        end
    end

    assign flush_done = (st == P_FLUSH) && !q1_v && !q2_v && !q3_v && !q4_v && !q5_v && !q6_v;

    logic unused;
    assign unused = ^{q1s.ik, inner_a, q_valid};
endmodule
