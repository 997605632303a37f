"""The hardware/software contract of Engine v2, written once.

Every field of the Program (header, job descriptor, result), every op, flag, method and
status code, and the AXI4-Lite register map are defined here with their bit widths and
meanings. From this one definition come the Python encoder/decoder (``Record.encode`` /
``Record.decode``), the C++ header of the HLS engine, the SystemVerilog package of the RTL
engine and the table in docs/contract.md; ``python -m xaihls.plan.contract`` rewrites the
three generated files and tests/test_contract.py fails if a checked-in copy differs (as VTA
keeps its instructions in one ``hw_spec.h``; Gemmini generates its C header from its config).

A record's fields are packed least significant bit first into 32-bit little-endian words; a
field never straddles two words (it starts a new word when it does not fit), so every
executor extracts a field with one shift and one mask. Field widths are the engine's
capabilities: ``xaihls.compile`` refuses a network whose Program does not fit them.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np

from xaihls.bundled import TEMPLATES_DIR
from xaihls.errors import XaiHlsError
from xaihls.methods import ALL_METHODS, ONE_IMAGE_CODES, PREDICT_CODE
from xaihls.numerics import MAX_X_SHIFT

PROGRAM_MAGIC = 0x32494158  # "XAI2" little-endian
PROGRAM_VERSION = 17  # 3: batched job lists, row strides apart from row lengths; 4: image batches; 5: ReLU6 (cap);
#                     6: two sources in one job, each with its operand shift (residual adds, gradient sums);
#                     7: the Grad-CAM list (cam_addr, n_cam, n_backward_cam) and its fractions, methods 7 and 8;
#                     8: LANES (a depthwise job's lane groups at consecutive output columns), op 3 bits;
#                     9: LANES on a dense job too (the backward of a first convolution); w_once (one pass's
#                        weights for every pass)
#                     10: slot jobs (slots, their strides: a job of a batched list runs every slot);
#                         the descriptor padded to 48 words, a whole number of 512-bit beats
#                     11: the folded image (fold_rows, fold_cols: a thin first convolution's taps in the
#                         channels of the image the host writes)
#                     12: kept state follows the output's bytes (an element's ReLU bit and pool index at its
#                         byte offset / 2 from mask_base, index_base); mask_plane only for a pool's grid bits,
#                         index_plane only for its readers, whose map lies as its indices do
#                     13: mask_bias, mask_slot_bias (mask_base and mask_slot less out_addr / 2 and
#                         out_slot_bytes / 2, computed by the compiler so the write-back need not subtract)
#                     14: in_keep (a job's input loaded once, kept in the input buffer for every m-tile)
#                     15: SUM (a pool window's accumulators summed in the write-back: a global average
#                         pool as one pass over many positions); flags 10 bits
#                     16: layer 16 bits (a DenseNet-121 has more than 255 layers)
#                     17: w_diag (a diagonal job's weights one a lane: tm a pass instead of tm x tn)


class FieldOverflow(XaiHlsError):
    """A value of the network's (a kernel, a stride, a map's size) that a field of the Program does not hold:
    found while encoding it, so no engine runs the network (``Accelerator.refusals`` says so per backend)."""


@dataclass(frozen=True)
class Field:
    """One field: ``bits`` wide, two's complement if ``signed``."""

    name: str
    bits: int
    signed: bool
    meaning: str
    limit: int | None = None  # a largest value below what the bits hold (an engine bound)

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        if self.limit is not None:
            return self.limit
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def described(self) -> str:
        return self.meaning if self.limit is None else f"{self.meaning} (at most {self.limit})"


def _u(name: str, bits: int, meaning: str, limit: int | None = None) -> Field:
    return Field(name, bits, False, meaning, limit)


def _s(name: str, bits: int, meaning: str) -> Field:
    return Field(name, bits, True, meaning)


@dataclass(frozen=True)
class Placed:
    field: Field
    word: int
    lsb: int


class Record:
    """A fixed-layout record of fields, packed into 32-bit words (see the module docstring)."""

    def __init__(self, name: str, meaning: str, fields: tuple[Field, ...], align_words: int = 1):
        self.name = name
        self.meaning = meaning
        self.fields = fields
        placed, word, lsb = [], 0, 0
        for f in fields:
            assert 1 <= f.bits <= 32, f
            if lsb + f.bits > 32:
                word, lsb = word + 1, 0
            placed.append(Placed(f, word, lsb))
            lsb += f.bits
        self.placed = tuple(placed)
        self.field_words = word + 1  # the words that hold fields; those past them up to `words` are 0
        self.words = -(-self.field_words // align_words) * align_words
        self.by_name = {p.field.name: p for p in placed}
        assert len(self.by_name) == len(fields), f"{name}: repeated field"

    @property
    def bytes(self) -> int:
        return 4 * self.words

    def encode(self, values: dict[str, int], where: str = "") -> bytes:
        """The record's words; every field must be given and fit (XaiHlsError names the one that does not)."""
        unknown = set(values) - set(self.by_name)
        if unknown:
            raise KeyError(f"{self.name}: no field {sorted(unknown)[0]}")
        words = [0] * self.words
        for p in self.placed:
            f = p.field
            v = int(values.get(f.name, 0))
            if not f.lo <= v <= f.hi:
                raise FieldOverflow(f"{where}{self.name}.{f.name} = {v} does not fit the engine's {f.bits}-bit "
                                    f"field ({f.lo}..{f.hi}): {f.meaning}")
            words[p.word] |= (v & ((1 << f.bits) - 1)) << p.lsb
        return struct.pack(f"<{self.words}I", *words)

    def decode(self, data: bytes) -> dict[str, int]:
        words = struct.unpack(f"<{self.words}I", bytes(data[: self.bytes]).ljust(self.bytes, b"\0"))
        out = {}
        for p in self.placed:
            f = p.field
            v = (words[p.word] >> p.lsb) & ((1 << f.bits) - 1)
            if f.signed and v >> (f.bits - 1):
                v -= 1 << f.bits
            out[f.name] = v
        return out


# --------------------------------------------------------------------------------------------
# Codes
# --------------------------------------------------------------------------------------------

class Op(IntEnum):
    """What a job descriptor asks for."""

    END = 0
    CONV = 1  # the MAC array: forward and transposed conv/fc, pools and ReLUs as diagonal jobs
    SEED = 2  # the write-back alone: one-hot gradient at the target logit


class Flag(IntEnum):
    """Bit positions in a descriptor's ``flags``."""

    BIAS = 0  # write-back adds bias[m] << bias_shift to the accumulator
    RELU = 1  # write-back: bit [v > 0] decided on the accumulator v (before requantization), value max(., 0)
    POOL = 2  # write-back: max-pool over the tile's positions (argmax on the accumulator); with DIAG, a position
    #           whose input pixel (y + iy0, x + ix0) lies outside the ih x iw map never wins (a padded pool)
    RAP = 3  # write-back: ReLU on the requantized value (after the pool, if any), with its bit
    BWD_RELU = 4  # write-back: the method's ReLU rule with the bit of the element written
    DIAG = 5  # each m-tile uses only the n-tiles of its own channels (diagonal weights)
    GATE = 6  # MAC operand n is zero unless the pool index of its channel at that pixel is the pass's code
    RELU6 = 7  # the job's ReLU (RAP forward, BWD_RELU backward) is a ReLU6 capped at ``cap``: forward out =
    #            min(max(out, 0), cap) and bit [out < cap] under the deconvnet rule, else [0 < out < cap];
    #            backward the deconvnet rule also multiplies by the bit
    LANES = 8  # an m-tile is the tn channels of block mt (output block mt; with DIAG it reads n-tile mt, else
    #            every n-tile), and its tm / tn lane groups are consecutive output columns: lane group g of grid
    #            column x writes output column x * (tm / tn) + g, the columns below opw (every one: osx = 1, oxo = 0)
    SUM = 9  # with POOL: the write-back sums each window's accumulators (48 bits, exact) where it would rank
    #          them, and requantizes the sum; no pool index is kept (not with BIAS, RELU or LANES)


class Unpool(IntEnum):
    """A descriptor's ``unpool`` field: a max-pool's backward fused into a CONV job's operands
    (docs/engine_v2.md, "Max-pool backward fused")."""

    OFF = 0
    ON = 1  # with GATE: the input is the pooled gradient; operand (y, x) reads pixel (y // s, x // s), kept
    #         where the window's index is (y mod s) * s + x mod s
    RELU = 2  # ON, and the method's ReLU rule on the operand with the window's alive bit as the ReLU bit


class ReluMode(IntEnum):
    """How a gradient passes a ReLU (xaihls.methods.ReluBackward)."""

    MASK = 0
    GUIDED = 1
    DECONV = 2


class Status(IntEnum):
    """Bits of the top's return value (register RETURN)."""

    BUS_ERROR = 0  # SLVERR/DECERR on an AXI response (C-simulation: an access outside the Program)
    BAD_PROGRAM = 1  # not a Program of this version, or one built for another engine
    BAD_ARGUMENT = 2  # method, target or steps out of range


METHOD_CODES = {"predict": PREDICT_CODE, **{m.name: m.code for m in ALL_METHODS.values()}}

# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

ADDR = 32  # DDR byte offsets from the base address given at run time
MAP = 12  # rows and columns of a map (up to 4,095)
TILES = 12  # m-, n- and row-tile counts
MEM = 24  # addresses in the ReLU-bit and pool-index memories

HEADER = Record("header", "The words at DDR address 0 (addresses are byte offsets from the DDR base).", (
    _u("magic", 32, "0x32494158, 'XAI2'"),
    _u("version", 8, "PROGRAM_VERSION"),
    _u("tm", 8, "output channels of the MAC array the Program was tiled for"),
    _u("tn", 8, "input channels of the MAC array; every tensor is stored in blocks of tn channels"),
    _u("beat_elems", 8, "16-bit elements per AXI data beat (AXI data width / 16)"),
    _u("desc_words", 8, "32-bit words per job descriptor"),
    _u("n_forward", 16, "jobs in the forward list"),
    _u("n_backward", 16, "jobs in the backward list"),
    _u("batch", 8, "slots of the batched lists (1: none): integrated gradients run this many steps at a time, "
                   "an image batch this many images"),
    _u("n_forward_batch", 16, "jobs in the batched forward list"),
    _u("n_backward_batch", 16, "jobs in the batched backward list"),
    _u("forward_addr", ADDR, "forward list"),
    _u("backward_addr", ADDR, "backward list"),
    _u("forward_batch_addr", ADDR, "batched forward list: the forward list for every slot, a Linear layer once "
                                   "for all (one position a slot)"),
    _u("backward_batch_addr", ADDR, "batched backward list"),
    _u("slot_bytes", ADDR, "bytes between the slots of the image, the work tensor, the input gradient and the "
                           "attribution"),
    _u("image_addr", ADDR, "the image (blocked layout), written by the host; image s of a batch at + s * slot_bytes"),
    _u("work_addr", ADDR, "what the forward list reads: a copy of the image or an IG path point"),
    _u("baseline_addr", ADDR, "the integrated-gradients baseline, written by the host"),
    _u("ig_table_addr", ADDR, "alpha_frac, weight_frac, then (alpha, weight) per step: int32, written by the host"),
    _u("logits_addr", ADDR, "the logits (vector layout); slot s's at + s * logits_slot_bytes"),
    _u("logits_save_addr", ADDR, "the image's logits while integrated gradients rerun the forward list"),
    _u("result_addr", ADDR, "the result record; slot s's at + s * RESULT_SLOT_BYTES"),
    _u("attr_addr", ADDR, "the attribution (blocked layout); slot s's at + s * slot_bytes"),
    _u("grad_input_addr", ADDR, "the input gradient the backward list leaves"),
    _u("total_bytes", ADDR, "DDR bytes the Program uses"),
    _u("classes", 16, "logits"),
    _u("in_c", 16, "input channels"),
    _u("in_h", MAP, "input rows"),
    _u("in_w", MAP, "input columns"),
    _u("fold_rows", 4, "image rows a pixel of the image the host writes holds (1: its own; see fold_image)"),
    _u("fold_cols", 4, "image columns a pixel of the image the host writes holds (1: its own; see fold_image)"),
    _u("input_elems", 24, "elements of the blocked input (channels padded to blocks of tn)"),
    _s("input_frac", 8, "fraction bits of the input format"),
    _s("grad_frac0", 8, "input-gradient fraction, plain ReLU rule"),
    _s("grad_frac1", 8, "input-gradient fraction, guided rule"),
    _s("grad_frac2", 8, "input-gradient fraction, deconvnet rule"),
    _s("ixg_frac", 8, "input x gradient fraction"),
    _s("ig_sum_frac", 8, "summed IG gradient fraction"),
    _s("ig_frac", 8, "integrated gradients fraction"),
    _u("data_width", 8, "bits of every stored value (16)"),
    _u("index_bits", 4, "bits of a pool index"),
    _u("mask_bits", MEM, "ReLU bits the Program keeps"),
    _s("grad_cam_frac", 8, "Grad-CAM map fraction (what the Grad-CAM list leaves at attr_addr)"),
    _u("index_entries", MEM, "pool indices the Program keeps"),
    _s("guided_grad_cam_frac", 8, "guided Grad-CAM fraction"),
    _u("targets_addr", ADDR, "an image batch's targets, int32 per slot, written by the host (-1: the predicted "
                             "class)"),
    _u("logits_slot_bytes", ADDR, "bytes between the slots of the logits"),
    _u("cam_addr", ADDR, "the Grad-CAM list: run after the first n_backward_cam jobs of the backward list, it "
                         "writes the upsampled map, repeated over the input's channels, at attr_addr"),
    _u("n_cam", 16, "jobs in the Grad-CAM list (0: the Program runs no Grad-CAM method)"),
    _u("n_backward_cam", 16, "jobs of the backward list that leave the gradient the Grad-CAM list reads (a "
                             "prefix)"),
))



DESCRIPTOR = Record("descriptor", "One job. CONV: for each m-tile, row tile, n-tile, pass (tap) and position, "
                                  "Tm x Tn products a cycle (docs/contract.md, 'The CONV job').", (
    _u("op", 3, "Op: END, CONV, SEED"),
    _u("flags", 10, "Flag bits"),
    _u("layer", 16, "the network layer the job comes from (reports)"),
    _u("m_tiles", TILES, "output-channel tiles of tm"),
    _u("n_tiles", TILES, "input-channel tiles of tn (blocks of the input tensor)"),
    _u("out_blocks", TILES, "blocks of tn channels of the output tensor; lanes beyond are not written"),
    _u("row_tiles", TILES, "row tiles of the position grid"),
    _u("oh", MAP, "rows of the position grid (conv output rows; a SEED's 1)"),
    _u("slot", 8, "SEED: the slot whose target it seeds (an image batch takes it from that slot's result record)"),
    _u("ow", MAP, "columns of the position grid (a SEED's: classes)"),
    _u("tile_rows", MAP, "grid rows of a full row tile"),
    _u("last_rows", MAP, "grid rows of the last row tile"),
    _u("tile_step", MAP, "grid rows between the first rows of consecutive row tiles"),
    _u("ky", 5, "pass rows (taps); 0: no pass, the accumulators stay zero"),
    _u("kx", 5, "pass columns (taps)"),
    _u("ih", MAP, "input rows"),
    _u("iw", MAP, "input columns"),
    _u("isy", 4, "input rows per grid row"),
    _u("isx", 4, "input columns per grid column"),
    _s("iky", 3, "input rows per pass row (-1: the kernel read in reverse)"),
    _s("ikx", 3, "input columns per pass column"),
    _s("iy0", 14, "input row of grid row 0 at pass row 0"),
    _s("ix0", 14, "input column of grid column 0 at pass column 0"),
    _s("load_lo", 14, "first input row a tile needs, relative to its first grid row times isy"),
    _u("load_rows", MAP, "input rows a full row tile needs"),
    _u("load_rows_last", MAP, "input rows the last row tile needs"),
    _u("load_step", MAP, "input rows between the first rows of consecutive row tiles (tile_step * isy)"),
    _u("src_b", TILES, "first input block of the second source (0: one source); the sources are adjacent blocks"),
    _u("xs_a0", 4, "left shift of the first source's operands, plain rule and forward", MAX_X_SHIFT),
    _u("xs_a1", 4, "left shift of the first source's operands under the guided rule", MAX_X_SHIFT),
    _u("walk_row", 24, "buffer words per grid row (isy * iw)"),
    _u("xs_a2", 4, "left shift of the first source's operands under the deconvnet rule", MAX_X_SHIFT),
    _u("xs_b0", 4, "left shift of the second source's operands, plain rule and forward", MAX_X_SHIFT),
    _s("walk_pass_row", 24, "buffer words per pass row (iky * iw)"),
    _u("xs_b1", 4, "left shift of the second source's operands under the guided rule", MAX_X_SHIFT),
    _u("xs_b2", 4, "left shift of the second source's operands under the deconvnet rule", MAX_X_SHIFT),
    _s("walk_origin", 24, "buffer word of grid (0, 0), pass (0, 0): (iy0 - load_lo) * iw + ix0"),
    _u("in_addr", ADDR, "input tensor: block 0, row 0, column 0"),
    _u("in_block_bytes", ADDR, "bytes from one input block the job reads to the next (one block: ih * iw * tn * 2; "
                               "an Add a block at a time: the first operand's, to the second's block)"),
    _u("in_row_bytes", 24, "bytes between consecutive input rows of one block: iw * tn * 2 for a map, more "
                           "where the rows are slots or a map's every s-th row (a row reads iw * tn * 2 bytes)"),
    _u("w_addr", ADDR, "weights of (m-tile 0, its first n-tile): passes x tm x tn int16, pass-major then m, n"),
    _u("w_mt_bytes", ADDR, "bytes between the weights of consecutive m-tiles (0: every m-tile reads the same)"),
    _u("w_nt_bytes", 24, "bytes of one (m-tile, n-tile)'s weights: passes * tm * tn * 2 (w_once: one pass's; "
                         "w_diag: passes * tm * 2)"),
    _u("b_addr", ADDR, "bias, int16 per output channel (with BIAS)"),
    _u("bias_shift", 6, "left shift that aligns the bias to the accumulator"),
    _u("cap", 16, "RELU6: 6.0 in the output format (a code; the forward clamps to it)"),
    _u("out_addr", ADDR, "output tensor: block 0, row 0, column 0"),
    _u("out_block_bytes", ADDR, "bytes of one output block"),
    _u("out_row_bytes", 24, "bytes between consecutive output rows of one block: opw * tn * 2 for a map, more "
                            "where the rows are slots"),
    _u("oph", MAP, "output tensor rows"),
    _u("opw", MAP, "output tensor columns"),
    _u("osy", 4, "output rows per grid row (a transposed conv's stride phase)"),
    _u("osx", 4, "output columns per grid column"),
    _u("oyo", 4, "output row of grid row 0"),
    _u("oxo", 4, "output column of grid column 0"),
    _s("shift0", 8, "requantization shift (accumulator fraction - output fraction), plain rule and forward"),
    _s("shift1", 8, "requantization shift under the guided rule"),
    _s("shift2", 8, "requantization shift under the deconvnet rule"),
    _u("mask_base", MEM, "first ReLU bit of the tensor whose bits the write-back writes or reads (a multiple of tn): "
                         "an element written at byte offset o from out_addr has its bit at mask_base + o / 2"),
    _u("mask_plane", MEM, "RELU with POOL: pixels of one block plane of the grid whose bits it writes (the "
                          "convolution's map), else 0"),
    _u("index_base", MEM, "first pool index of the tensor written (POOL: an element written at byte offset o from "
                          "out_addr has its index at index_base + o / 2) or read (GATE) (a multiple of tn)"),
    _u("index_plane", MEM, "GATE, UNPOOL: pixels of one block plane of the pooled map read, else 0 (that map "
                           "lies as its indices do: in_block_bytes = 2 tn index_plane, in_row_bytes = 2 tn iw)"),
    _u("pool_kh", 4, "pool window rows (POOL)"),
    _u("pool_kw", 4, "pool window columns"),
    _u("pool_sh", 4, "pool stride rows"),
    _u("pool_sw", 4, "pool stride columns"),
    _u("pool_oh", MAP, "pooled rows"),
    _u("pool_ow", MAP, "pooled columns"),
    _u("code0", 8, "GATE: the pool-window position of pass (0, 0)"),
    _s("code_ky", 9, "GATE: window positions per pass row"),
    _s("code_kx", 9, "GATE: window positions per pass column"),
    _u("unpool", 2, "Unpool: the input is a max-pool's output, unpooled by the kept index (window and stride "
                    "pool_sh), with or without the ReLU rule"),
    _u("w_once", 1, "1: every pass has the weights of pass (0, 0), which alone are stored (w_nt_bytes = tm * tn * 2) "
                    "and stay in the array for the tile's passes (a pool's reciprocal, an identity)"),
    _u("w_diag", 1, "1 (DIAG only): each lane's weight of a pass is its one weight, at column m mod tn of its row, "
                    "every other column zero, and only those are stored: a pass's tm weights, lane m's at m, "
                    "w_nt_bytes = passes * tm * 2 (w_once: tm * 2)"),
    _u("slots", 8, "CONV: the slots the job runs, one after another (0 or 1: one); slot s reads and writes at the "
                   "bases plus s times the strides below, with the same weights and bias"),
    _u("mask_slot", MEM, "ReLU bits between the slots' bits (mask_base's stride; a multiple of tn)"),
    _u("in_slot_bytes", ADDR, "bytes between the slots' input tensors (in_addr's stride)"),
    _u("out_slot_bytes", ADDR, "bytes between the slots' output tensors (out_addr's stride)"),
    _u("index_slot", MEM, "pool indices between the slots' indices (index_base's stride; a multiple of tn)"),
    _u("mask_bias", MEM, "RELU without POOL, RAP, BWD_RELU: (mask_base - out_addr / 2) mod 2^24, else 0: an element "
                         "written at DDR byte offset A has its ReLU bit at (A / 2 + mask_bias) mod 2^24 (a multiple "
                         "of tn)"),
    _u("mask_slot_bias", MEM, "with mask_bias: (mask_slot - out_slot_bytes / 2) mod 2^24, mask_bias's stride between "
                              "the slots (0 for a job of one slot), else 0"),
    _u("in_keep", 18, "0: each tile's input rows are loaded into the tile's buffer set. Else (one row tile): "
                      "input-buffer words between the n-tiles' inputs, which m-tile 0 (of each slot) loads side "
                      "by side, n-tile k at word k * in_keep of the buffer's two sets taken as one, and every "
                      "later m-tile reads there without loading them again"),
), align_words=16)

RESULT = Record("result", "What the engine writes at result_addr when a run is done; an image batch writes one per "
                          "slot, RESULT_SLOT_BYTES apart, the run's counters in the first (0 in the others).", (
    _u("predicted", 32, "the predicted class (first maximum of the logits)"),
    _u("target", 32, "the class the attribution explains"),
    _u("sat_forward", 32, "values the forward passes saturated"),
    _u("sat_backward", 32, "values the backward passes saturated"),
    _u("sat_post", 32, "values the post-processing saturated (IG path points, IG sum, attribution) and "
                          "the Grad-CAM list"),
))

# AXI4-Lite registers as Vitis HLS generates them for
#   int xaihls_top(short *ddr, int method, int target, int steps, int images)   (ap_ctrl_hs)
REGISTERS: tuple[tuple[str, int, str], ...] = (
    ("CTRL", 0x00, "bit 0 ap_start, 1 ap_done (clear on read), 2 ap_idle, 3 ap_ready, 7 auto_restart"),
    ("GIE", 0x04, "global interrupt enable"),
    ("IER", 0x08, "interrupt enable: bit 0 ap_done, bit 1 ap_ready"),
    ("ISR", 0x0C, "interrupt status (toggle on write)"),
    ("RETURN", 0x10, "ap_return: Status bits (0: ok)"),
    ("DDR_LO", 0x18, "DDR base address, low 32 bits"),
    ("DDR_HI", 0x1C, "DDR base address, high 32 bits"),
    ("METHOD", 0x24, "method code (0 predicts)"),
    ("TARGET", 0x2C, "target class (-1: the predicted class)"),
    ("STEPS", 0x34, "integrated-gradients steps"),
    ("IMAGES", 0x3C, "images of the run: 0 or 1, or the Program's batch (an image batch on the batched lists; "
                     "not with integrated gradients, whose steps take the slots, nor a Grad-CAM method)"),
    ("CYCLES", 0x40, "clock cycles of the last run (RTL only)"),
    ("PROFILE_COUNT", 0x44, "profile entries of the last run (RTL only)"),
    ("PROFILE", 0x800, "profile entries: phase << 24 | cycles (RTL only)"),
)
REGISTER = {name: offset for name, offset, _ in REGISTERS}

MAX_IG_STEPS = 1024
RESULT_SLOT_BYTES = 64  # a result record a slot, whole beats at every AXI width
IG_TABLE_BYTES = 8 + 8 * MAX_IG_STEPS
IDENTITY_FRAC = 14
"""A diagonal job whose weights are 1 << IDENTITY_FRAC and whose shift adds IDENTITY_FRAC
passes values unchanged (standalone max-pools and ReLUs run as such jobs)."""


def engine_starts(images: int, batch: int, method_code: int) -> list[tuple[int, int]]:
    """How a host runs ``images`` images on a Program of ``batch`` slots: (first image, images)
    of each engine start, ``batch`` at a time while that many are left, the rest one at a time;
    integrated gradients and the Grad-CAM methods one at a time (``methods.ONE_IMAGE_CODES``)."""
    per = batch if batch > 1 and method_code not in ONE_IMAGE_CODES else 1
    starts, k = [], 0
    while k < images:
        count = per if images - k >= per else 1
        starts.append((k, count))
        k += count
    return starts


# --------------------------------------------------------------------------------------------
# The blocked layout every tensor has in DDR: [ceil(C/tn)][H][W][tn] int16, zero-padded
# --------------------------------------------------------------------------------------------

def to_blocked(x: np.ndarray, tn: int) -> np.ndarray:
    """(C, H, W) integers to the blocked layout (a flat int64 array, channels padded with zeros)."""
    c, h, w = x.shape
    blocks = -(-c // tn)
    padded = np.zeros((blocks * tn, h, w), dtype=np.int64)
    padded[:c] = x
    return padded.reshape(blocks, tn, h, w).transpose(0, 2, 3, 1).reshape(-1)


def fold_offset(slot: int) -> int:
    """The pixel offset a folded image's slot holds along a dimension: 0, -1, +1, -2, +2, ... (slot 0
    the pixel itself, so the image's own channels stay channels 0 .. C - 1)."""
    return -(slot + 1) // 2 if slot % 2 else slot // 2


def fold_image(x: np.ndarray, rows: int = 1, cols: int = 1) -> np.ndarray:
    """The image a Program of ``fold_rows`` = ``rows``, ``fold_cols`` = ``cols`` reads, from (C, H, W)
    integers: (rows * cols * C, H, W), whose channel (a * cols + b) * C + c at pixel (y, x) is channel c
    of the image's pixel (y + fold_offset(a), x + fold_offset(b)), zero outside the image: slot
    (0, 0) is the image itself. The first convolution then reads several of its kernel taps in one
    word (docs/engine_v2.md, "The folded image"). rows = cols = 1: the image itself."""
    c, h, w = x.shape
    out = np.zeros((rows * cols * c, h, w), dtype=np.asarray(x).dtype)
    for a in range(rows):
        for b in range(cols):
            dy, dx = fold_offset(a), fold_offset(b)
            k = (a * cols + b) * c
            out[k:k + c, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
                x[:, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out


def image_view(x: np.ndarray, header: dict) -> np.ndarray:
    """The image ``x`` (C, H, W; a 1-D model's (C, L) in any shape of C rows) in the header's shape (in_c, in_h,
    in_w), as the Program reads it: a 1-D model's samples as one row or a column, and where in_c is p·C its first
    stride's p phases as channels (``qgraph.image_as_phases``): a 1-D model's column (in_w = 1) channel c·p + j
    of pixel r is sample r·p + j of channel c; a 2-D image's p = s² phases, channel (c·s + a)·s + b of pixel
    (y, x) its pixel (s·y + a, s·x + b); pixels past the image (a side the stride does not divide) are zeros. An
    ``x`` already of in_c channels is taken as it is."""
    x = np.asarray(x)
    c, h, w = header["in_c"], header["in_h"], header["in_w"]
    channels, p = x.shape[0], c // x.shape[0]
    if p > 1 and (x.ndim == 2 or min(x.shape[1:]) == 1):  # a 1-D model's samples, as a column
        x = _padded(x.reshape(channels, -1), (h * p,)).reshape(channels, h, p).swapaxes(1, 2)
    elif p > 1:  # a 2-D image read at stride (s, s)
        s = math.isqrt(p)
        x = _padded(x, (h * s, w * s)).reshape(channels, h, s, w, s).transpose(0, 2, 4, 1, 3)
    return x.reshape(c, h, w)


def _padded(x: np.ndarray, sides: tuple[int, ...]) -> np.ndarray:
    """``x`` with zeros after its last len(sides) dimensions up to ``sides``."""
    pad = [(0, 0)] * (x.ndim - len(sides)) + [(0, n - m) for n, m in zip(sides, x.shape[-len(sides):])]
    return np.pad(x, pad) if any(after for _, after in pad) else x


def network_image(a, shape: tuple[int, ...], phases: int | None = None):
    """An attribution (..., C', H', W') as a Program's image view holds it (``image_view``) in the network's input
    shape (C, H, W) (numpy or torch): its stride phases back in their pixels where C' is p·C, else the same
    values in H x W; the view's pixels past the image left out. ``phases``: the view's p (``view_phases``), which
    the attribution's channels give unless it is a grad_cam map (its one channel, channel 0 of the attribution):
    on the view, where its upsampling follows the phases (``capabilities.cam_follows_phases``), the map's pixel
    (y, x) is the image's s x s pixels from (s·y, s·x) (a 1-D model's: s samples from s·y), p = s² (p = s)."""
    lead, channels = tuple(a.shape[:-3]), a.shape[-3]
    p = channels // shape[0] if phases is None else phases
    one_d = min(shape[1:]) == 1 and p > 1
    if channels != p * shape[0]:  # a grad_cam map
        if channels != 1 or p < 1:
            raise ValueError(f"an attribution of {channels} channels is not a view of {p} phases of {shape}")
        s = p if one_d else math.isqrt(p)
        if s == 1:  # the image itself (a 1-D model's samples as a row or a column)
            return a.reshape(*lead, 1, *shape[1:])
        if one_d:
            n = math.prod(shape[1:])
            return a.reshape(*lead, 1, 1, -1)[..., [i // s for i in range(n)]].reshape(*lead, 1, *shape[1:])
        return a[..., [y // s for y in range(shape[1])], :][..., [x // s for x in range(shape[2])]]
    if one_d:  # a 1-D model's samples, as a column
        a = a.reshape(*lead, shape[0], p, -1).swapaxes(-1, -2).reshape(*lead, shape[0], -1)
        return a[..., :math.prod(shape[1:])].reshape(*lead, *shape)
    if p > 1:  # a 2-D image's s x s phases: (C, a, b, y, x) to (C, y, a, x, b)
        s, (h, w) = math.isqrt(p), a.shape[-2:]
        a = a.reshape(*lead, shape[0], s, s, h, w).swapaxes(-4, -2).swapaxes(-3, -2).swapaxes(-2, -1)
        a = a.reshape(*lead, shape[0], h * s, w * s)
        return a[..., :shape[1], :shape[2]]
    return a.reshape(*lead, channels, *shape[1:])


def view_phases(header: dict, shape: tuple[int, ...]) -> int:
    """The phases p of a Program's image view (``image_view``) of an image of ``shape``: its in_c over the image's
    channels (1: the image itself)."""
    return header["in_c"] // shape[0]


def host_image(x: np.ndarray, header: dict) -> np.ndarray:
    """What the host writes at ``image_addr`` (and ``baseline_addr``) for the image ``x`` (C, H, W integers, or a
    1-D model's samples in any shape of C rows): the folded image (``fold_image``) of its view in the header's
    shape (``image_view``) in the blocked layout."""
    x = image_view(x, header)
    return to_blocked(fold_image(x, header["fold_rows"], header["fold_cols"]), header["tn"])


def from_blocked(flat: np.ndarray, c: int, h: int, w: int, tn: int) -> np.ndarray:
    """The blocked layout back to (C, H, W)."""
    blocks = -(-c // tn)
    return np.asarray(flat).reshape(blocks, h, w, tn).transpose(0, 3, 1, 2).reshape(blocks * tn, h, w)[:c]



def field_limit(record: Record, name: str) -> int:
    """The largest value a field holds (an engine capability)."""
    return record.by_name[name].field.hi


# --------------------------------------------------------------------------------------------
# Generated files
# --------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = TEMPLATES_DIR
GENERATED = {
    "cpp": TEMPLATES / "firmware" / "xaihls_contract.h",
    "sv": TEMPLATES / "rtl_v2" / "xaihls_contract_pkg.sv",
    "doc": ROOT / "docs" / "contract.md",
}
_BANNER = "Generated by `python -m xaihls.plan.contract` from xaihls/plan/contract.py: do not edit."


def _codes() -> list[tuple[str, str, int, str]]:
    """(group, name, value, meaning) of every named constant."""
    out = [("op", op.name, int(op), "") for op in Op]
    out += [("flag", f.name, int(f), "bit position") for f in Flag]
    out += [("relu", m.name, int(m), "") for m in ReluMode]
    out += [("unpool", u.name, int(u), "") for u in Unpool]
    out += [("status", s.name, int(s), "bit position") for s in Status]
    out += [("method", name.upper(), code, "") for name, code in METHOD_CODES.items()]
    out += [("reg", name, offset, meaning) for name, offset, meaning in REGISTERS]
    return out


def cpp_header() -> str:
    lines = [f"// {_BANNER}", "#ifndef XAIHLS_CONTRACT_H_", "#define XAIHLS_CONTRACT_H_", "",
             "#include <stdint.h>", "", "namespace xaihls {", "namespace contract {", "",
             f"constexpr uint32_t PROGRAM_MAGIC = 0x{PROGRAM_MAGIC:08X};",
             f"constexpr int PROGRAM_VERSION = {PROGRAM_VERSION};",
             f"constexpr int MAX_IG_STEPS = {MAX_IG_STEPS};",
             f"constexpr int RESULT_SLOT_BYTES = {RESULT_SLOT_BYTES};",
             f"constexpr int IDENTITY_FRAC = {IDENTITY_FRAC};",
             f"constexpr int MAX_X_SHIFT = {MAX_X_SHIFT};", ""]
    for group, name, value, meaning in _codes():
        comment = f"  // {meaning}" if meaning else ""
        lines.append(f"constexpr int {group.upper()}_{name} = {value if group != 'reg' else hex(value)};{comment}")
    lines.append("")
    lines.append("// A field of a record: word index, least significant bit, width, signedness.")
    lines.append("struct FieldSpec { int word, lsb, bits; bool is_signed; };")
    lines.append("")
    lines.append("// A field's value: unsigned fields as they are, signed ones sign-extended.")
    lines.append("inline int64_t get_field(const uint32_t *words, FieldSpec f) {")
    lines.append("    const uint32_t raw = (words[f.word] >> f.lsb) & (f.bits == 32 ? 0xFFFFFFFFu : ((1u << f.bits) - 1u));")
    lines.append("    if (f.is_signed && (raw >> (f.bits - 1)) & 1u) return (int64_t)raw - ((int64_t)1 << f.bits);")
    lines.append("    return (int64_t)raw;")
    lines.append("}")
    lines.append("")
    lines.append("inline void set_field(uint32_t *words, FieldSpec f, int64_t value) {")
    lines.append("    const uint32_t mask = f.bits == 32 ? 0xFFFFFFFFu : ((1u << f.bits) - 1u);")
    lines.append("    words[f.word] = (words[f.word] & ~(mask << f.lsb)) | (((uint32_t)value & mask) << f.lsb);")
    lines.append("}")
    for rec in (HEADER, DESCRIPTOR, RESULT):
        lines += ["", f"// {rec.name}: {rec.meaning}", f"constexpr int {rec.name.upper()}_WORDS = {rec.words};",
                  f"constexpr int {rec.name.upper()}_FIELD_WORDS = {rec.field_words};  // the words that hold fields"]
        for p in rec.placed:
            f = p.field
            lines.append(f"constexpr FieldSpec {rec.name.upper()}_{f.name.upper()} = {{{p.word}, {p.lsb}, {f.bits}, "
                         f"{'true' if f.signed else 'false'}}};  // {f.described}")
    lines += ["", "}  // namespace contract", "}  // namespace xaihls", "", "#endif", ""]
    return "\n".join(lines)


def sv_package() -> str:
    lines = [f"// {_BANNER}", "package xaihls_contract_pkg;", "",
             f"  localparam logic [31:0] PROGRAM_MAGIC = 32'h{PROGRAM_MAGIC:08x};",
             f"  localparam int PROGRAM_VERSION = {PROGRAM_VERSION};",
             f"  localparam int MAX_IG_STEPS = {MAX_IG_STEPS};",
             f"  localparam int RESULT_SLOT_BYTES = {RESULT_SLOT_BYTES};",
             f"  localparam int IDENTITY_FRAC = {IDENTITY_FRAC};",
             f"  localparam int MAX_X_SHIFT = {MAX_X_SHIFT};", ""]
    for group, name, value, meaning in _codes():
        comment = f"  // {meaning}" if meaning else ""
        literal = f"12'h{value:03x}" if group == "reg" else str(value)
        kind = "logic [11:0]" if group == "reg" else "int"
        lines.append(f"  localparam {kind} {group.upper()}_{name} = {literal};{comment}")
    for rec in (HEADER, DESCRIPTOR, RESULT):
        lines += ["", f"  // {rec.name}: {rec.meaning}", f"  localparam int {rec.name.upper()}_WORDS = {rec.words};",
                  f"  localparam int {rec.name.upper()}_FIELD_WORDS = {rec.field_words};  // the words that hold fields"]
        # a packed struct whose bit i is bit i of the record's words (word 0 lowest): fields listed msb first
        lines.append("  typedef struct packed {")
        entries = []
        used = 0
        for p in rec.placed:
            pos = 32 * p.word + p.lsb
            if pos > used:
                entries.append(f"    logic [{pos - used - 1}:0] pad{used};")
            sign = " signed" if p.field.signed else ""
            entries.append(f"    logic{sign} [{p.field.bits - 1}:0] {p.field.name};  // {p.field.described}")
            used = pos + p.field.bits
        if 32 * rec.words > used:
            entries.append(f"    logic [{32 * rec.words - used - 1}:0] pad{used};")
        lines += list(reversed(entries))
        lines.append(f"  }} {rec.name}_t;")
    lines += ["", "endpackage", ""]
    return "\n".join(lines)


def doc_table() -> str:
    lines = [f"<!-- {_BANNER} -->", f"# The Program contract (version {PROGRAM_VERSION})", "",
             "The one definition of what `xaihls.plan` hands to the hardware: xaihls/plan/contract.py.",
             "Fields are packed least significant bit first into 32-bit little-endian words and never",
             "straddle a word. The C++ header (`firmware/xaihls_contract.h`) and the SystemVerilog package",
             "(`rtl_v2/xaihls_contract_pkg.sv`) are generated from the same definition.", ""]
    for rec in (HEADER, DESCRIPTOR, RESULT):
        padded = (f": fields in the first {rec.field_words}, the others 0, so that a list of them is a whole "
                  f"number of 512-bit beats" if rec.words > rec.field_words else "")
        lines += [f"## {rec.name} ({rec.words} words{padded})", "", rec.meaning, "",
                  "| field | word | bits | width | signed | meaning |", "|---|---|---|---|---|---|"]
        for p in rec.placed:
            f = p.field
            lines.append(f"| `{f.name}` | {p.word} | {p.lsb}..{p.lsb + f.bits - 1} | {f.bits} | "
                         f"{'yes' if f.signed else ''} | {f.described} |")
        lines.append("")
    groups: dict[str, list] = {}
    for group, name, value, meaning in _codes():
        groups.setdefault(group, []).append((name, value, meaning))
    titles = {"op": "Ops", "flag": "Flags (bit positions)", "relu": "ReLU-backward modes", "unpool": "Unpool modes (the descriptor's unpool field)",
              "status": "Status (bit positions of RETURN)", "method": "Method codes",
              "reg": "AXI4-Lite registers (Vitis ap_ctrl_hs map)"}
    for group, rows in groups.items():
        lines += [f"## {titles[group]}", "", "| name | value | meaning |", "|---|---|---|"]
        for name, value, meaning in rows:
            lines.append(f"| `{name}` | {hex(value) if group == 'reg' else value} | {meaning} |")
        lines.append("")
    lines += HOST_SEQUENCE.splitlines() + [""]
    return "\n".join(lines)


HOST_SEQUENCE = """## The host's sequence

What the host driver (`xaihls/driver.py`, `Device.sequence`) does for one run, on every
transport. No operation depends on what an earlier one read, so a batch's runs are one list.

1. Once per device: the Program's DDR image at offset 0.
2. The image and the baseline at `image_addr` and `baseline_addr`, folded as the header's
   `fold_rows` and `fold_cols` say (`fold_image`) and in the blocked layout (`host_image`), the IG
   table at `ig_table_addr`.
3. Registers `DDR_LO`, `DDR_HI` (the buffer's address), `METHOD`, `TARGET` (-1 as a 32-bit word:
   the predicted class), `STEPS`, `IMAGES` = 1, `GIE` = 1, `IER` = 1, then `CTRL` = 1 (ap_start).
4. Wait for ap_done: the interrupt, or reading `CTRL` (which clears ap_done).
5. Read `RETURN` (non-zero: the driver raises, naming the bits), write `ISR` = 1 (acknowledge).
6. Read the result record, the logits and, for a method, the attribution (blocked layout; for
   `grad_cam` its channel 0 is the map, the other channels repeat it; where `in_c` holds the image's
   stride phases, a pixel of that channel is s × s pixels of the image: `contract.network_image`).

An image batch (a Program whose `batch` > 1, a method other than integrated gradients and the
Grad-CAM methods): the
host writes image s at `image_addr + s * slot_bytes` and its target at `targets_addr + 4 * s`
(-1: the predicted class), sets `IMAGES` = `batch` (`TARGET` is not read), and reads result
record s at `result_addr + s * RESULT_SLOT_BYTES`, logits s at `logits_addr + s * logits_slot_bytes`
and attribution s at `attr_addr + s * slot_bytes`; the run's saturation counters are in record 0.
The driver runs a batch's images `batch` at a time while that many are left, the rest one at a
time.

Transports: `PynqTransport` (a board's overlay and DDR buffer; one run a call, never run on a
board yet), `ModelTransport` (the Program interpreter, in process) and `SimulationTransport`
(`xaihls/backends/rtl/v2/transport.py`: a batch's operations in one Verilator process, done by
the cocotb testbench against `xaihls_sim_top`, registers through AXI4-Lite, DDR through the
SystemVerilog memory's backdoor; the DDR is kept from one call to the next; each run's `CYCLES`
recorded)."""


def generated() -> dict[str, str]:
    """The text every generated file must hold."""
    return {"cpp": cpp_header(), "sv": sv_package(), "doc": doc_table()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for key, text in generated().items():
        path = GENERATED[key]
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.write_text(text)
    for path in stale:
        print(f"{'differs' if check else 'wrote'}: {path}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
