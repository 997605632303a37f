"""The Program v2 interpreter: the engine's semantics, job by job, over a flat DDR array.

It reads the header and every descriptor from DDR (so a field the compiler got wrong shows
here), and runs each CONV job as the hardware does, tile by tile: the tile's input rows of
one block from DDR into the buffer, its weights from the stream, every pass (tap) as a walk
over the tile's positions with the buffer address the descriptor's walk fields give, the
accumulation of Tm x Tn products, then the write-back (bias, requantization, ReLU and its
bit, the pool and its index, the backward ReLU rule) into the blocked output tensor. ReLU
bits and pool indices live in on-chip memories addressed as docs/contract.md says. Bit-exact
with the golden model (tests/test_interpreter.py); the HLS and RTL engines implement the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.golden.dag import NEVER_WINS
from xaihls.methods import (METHOD_CODES, ONE_IMAGE_CODES, PREDICT_CODE, PostProcess, ReluBackward, ig_constants,
                             method_of_code)
from xaihls.numerics import FixedFormat, count_saturated, round_shift, saturate
from xaihls.plan.contract import (DESCRIPTOR, HEADER, MAX_IG_STEPS, PROGRAM_MAGIC, PROGRAM_VERSION, RESULT,
                                  RESULT_SLOT_BYTES, Flag, Op, Unpool, engine_starts)
from xaihls.plan.contract import MEM, from_blocked, host_image
from xaihls.plan.engine import DATA_BITS
from xaihls.plan.lowering import (Job, ProgramV2, Shape, buffer_needs, job_from_bytes, kept_input_fault, slot_job,
                                  sum_fault)

SATURATION_KINDS = ("forward", "backward", "post")


def _relu_rule(g: np.ndarray, bits: np.ndarray, mode: int, relu6: bool = False) -> np.ndarray:
    """The method's rule at a ReLU (bits [x > 0]) or a ReLU6 (bits [0 < x < cap], or [x < cap]
    where the forward ran under the deconvnet rule)."""
    if mode == ReluBackward.DECONV:
        return np.maximum(g, 0) * bits if relu6 else np.maximum(g, 0)
    g = g * bits
    return np.maximum(g, 0) if mode == ReluBackward.GUIDED else g


def x_shift(d: Job, nt: int, mode: int) -> int:
    """The left shift of block ``nt``'s operands under ReLU ``mode``: the second source's from block
    ``src_b`` on, else the first's (docs/engine_v2.md, "The CONV job")."""
    if d.src_b and nt >= d.src_b:
        return (d.xs_b0, d.xs_b1, d.xs_b2)[mode]
    return (d.xs_a0, d.xs_a1, d.xs_a2)[mode]


def _rap(out: np.ndarray, d: Job, mode: int) -> tuple[np.ndarray, np.ndarray]:
    """RAP: the ReLU (or, with RELU6, the ReLU6) on requantized values: (bits, values)."""
    if not d.has(Flag.RELU6):
        return out > 0, np.maximum(out, 0)
    below = out < d.cap
    bits = below if mode == ReluBackward.DECONV else below & (out > 0)
    return bits, np.clip(out, 0, d.cap)


@dataclass
class Run:
    logits: np.ndarray  # int16 codes
    predicted: int
    target: int
    attribution: np.ndarray | None  # codes, C x H x W
    saturations: tuple[int, ...]  # per SATURATION_KINDS


@dataclass(frozen=True)
class _Walk:
    """Where every pass of a row tile reads its operands (a job that is not UNPOOL): the buffer address of each
    (pass, position), -1 where the tap lies off the map (a zero column appended there), and for GATE the map
    pixel and the pass's index code."""

    addr: np.ndarray  # passes x positions
    pixel: np.ndarray  # passes x positions: y * iw + x, on the map
    valid: np.ndarray  # passes x positions
    codes: np.ndarray  # passes

    @classmethod
    def of(cls, d: Job, first: int, r0: int, rows: int, width: int) -> "_Walk":
        """The walk the descriptor's walk fields give, checked against the geometry (where the two say where a
        tap on the map reads) and against the buffer's ``width`` words the tile loaded."""
        ky, kx = np.divmod(np.arange(d.passes), d.kx)
        r = np.arange(rows)[:, None]
        c = np.arange(d.ow)[None, :]
        y = ((r0 + r) * d.isy + d.iy0)[None] + (ky * d.iky)[:, None, None]
        x = (c * d.isx + d.ix0)[None] + (kx * d.ikx)[:, None, None]
        y, x = (a.reshape(d.passes, -1) for a in np.broadcast_arrays(y, x))
        valid = (y >= 0) & (y < d.ih) & (x >= 0) & (x < d.iw)
        addr = (d.walk_origin + r * d.walk_row + c * d.isx)[None] + (ky * d.walk_pass_row + kx * d.ikx)[:, None, None]
        addr = addr.reshape(d.passes, -1)
        expect = (y - first) * d.iw + x
        assert np.array_equal(addr[valid], expect[valid]), f"layer {d.layer}: walk fields disagree with the geometry"
        assert not valid.any() or 0 <= addr[valid].min() <= addr[valid].max() < width, \
            f"layer {d.layer}: a pass reads outside the tile's input rows"
        return cls(np.where(valid, addr, -1), y * d.iw + x, valid, d.code0 + ky * d.code_ky + kx * d.code_kx)

    def operands(self, engine: "Engine", d: Job, buf: np.ndarray, nt: int) -> np.ndarray:
        """Block ``nt``'s operands of every pass and position: tn x passes x positions (zero off the map, and with
        GATE where the kept index is not the pass's)."""
        tn = buf.shape[0]
        padded = np.concatenate([buf, np.zeros((tn, 1), dtype=buf.dtype)], axis=1)  # column -1: off the map
        out = padded[:, self.addr]
        if d.has(Flag.GATE):
            entries = d.index_base + (nt * d.index_plane + self.pixel)[None] * tn + np.arange(tn)[:, None, None]
            out *= self.valid[None] & (engine.index[np.where(self.valid[None], entries, 0)] == self.codes[None, :, None])
        return out


class Engine:
    """One engine (Tm x Tn MAC array) with its DDR, ReLU-bit memory and pool-index memory."""

    def __init__(self, program: ProgramV2 | np.ndarray):
        """On a fresh DDR holding ``program``, or on a DDR array (uint8) that already holds one."""
        self.ddr = program.ddr() if isinstance(program, ProgramV2) else program
        h = HEADER.decode(self.ddr[: HEADER.bytes].tobytes())
        if h["magic"] != PROGRAM_MAGIC or h["version"] != PROGRAM_VERSION or h["desc_words"] != DESCRIPTOR.words:
            raise XaiHlsError(f"not an xaihls Program version {PROGRAM_VERSION} (magic {h['magic']:#x}, "
                              f"version {h['version']})")
        if h["batch"] < 1 or (h["batch"] > 1 and not (h["n_forward_batch"] and h["n_backward_batch"]
                                                      and h["slot_bytes"])):
            raise XaiHlsError(f"a Program of {h['batch']} slots without batched lists or slot stride")
        self.h = h
        self.shape = Shape(h["tm"], h["tn"], h["beat_elems"])
        self.mask = np.zeros(max(h["mask_bits"], 1), dtype=np.int64)
        self.index = np.zeros(max(h["index_entries"], 1), dtype=np.int64)
        self.alive = np.zeros_like(self.index)  # beside each index: [the window's ranked maximum > 0]
        self.forward = self._jobs(h["forward_addr"], h["n_forward"])
        self.backward = self._jobs(h["backward_addr"], h["n_backward"])
        self.forward_batch = self._jobs(h["forward_batch_addr"], h["n_forward_batch"])
        self.backward_batch = self._jobs(h["backward_batch_addr"], h["n_backward_batch"])
        self.cam = self._jobs(h["cam_addr"], h["n_cam"])
        # a kept input lies side by side in the input buffer of the engine built for these jobs
        jobs = self.forward + self.backward + self.forward_batch + self.backward_batch + self.cam
        in_words = buffer_needs(jobs, self.shape.tm, self.shape.tn)[0]
        fault = next(filter(None, (kept_input_fault(d, in_words) or sum_fault(d) for d in jobs)), None)
        if fault:
            raise XaiHlsError(f"a Program this engine cannot run: {fault}")
        self.saturated = [0, 0, 0]
        self.kind = 0

    # ---- DDR ----
    def _jobs(self, addr: int, count: int) -> list[Job]:
        size = DESCRIPTOR.bytes
        return [job_from_bytes(self.ddr[addr + k * size: addr + (k + 1) * size].tobytes()) for k in range(count)]

    def read16(self, addr: int, count: int) -> np.ndarray:
        if addr < 0 or addr + 2 * count > self.ddr.size:
            raise AssertionError(f"a read outside the Program's DDR: {addr}+{2 * count}")
        return self.ddr[addr: addr + 2 * count].view("<i2").astype(np.int64)

    def write16(self, addr: int, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype="<i2").reshape(-1)
        if addr < 0 or addr + 2 * values.size > self.ddr.size:
            raise AssertionError(f"a write outside the Program's DDR: {addr}+{2 * values.size}")
        self.ddr[addr: addr + 2 * values.size] = values.view(np.uint8)

    def read32(self, addr: int, count: int) -> np.ndarray:
        return self.ddr[addr: addr + 4 * count].view("<i4").astype(np.int64)

    def write32(self, addr: int, values) -> None:
        self.ddr[addr: addr + 4 * len(values)] = np.asarray(values, dtype="<i4").view(np.uint8)

    def _requant(self, acc: np.ndarray, shift: int) -> np.ndarray:
        fmt = FixedFormat(self.h["data_width"], 0)
        wide = round_shift(torch.from_numpy(np.ascontiguousarray(acc, dtype=np.int64)), shift)
        self.saturated[self.kind] += count_saturated(wide, fmt)
        return saturate(wide, fmt).numpy()

    # ---- the host's side ----
    def load_inputs(self, image_q: np.ndarray, baseline_q: np.ndarray | None, steps: int, rule: str) -> None:
        """Write the image and baseline (C, H, W codes) as the host does (``host_image``), and the IG
        table."""
        self.write16(self.h["image_addr"], host_image(image_q, self.h))
        base = np.zeros_like(image_q) if baseline_q is None else baseline_q
        self.write16(self.h["baseline_addr"], host_image(base, self.h))
        self.write32(self.h["ig_table_addr"], ig_constants(steps, rule, self.h["data_width"]).table())

    def load_images(self, images_q: np.ndarray, targets) -> None:
        """An image batch's inputs: image s (C, H, W codes) as the host writes it in slot s, its
        target (-1: the predicted class) at targets_addr + 4 s (docs/contract.md, "The host's
        sequence")."""
        h = self.h
        for s, image in enumerate(images_q):
            self.write16(h["image_addr"] + s * h["slot_bytes"], host_image(image, h))
        self.write32(h["targets_addr"], [int(t) for t in targets])

    def load_start(self, x_q: torch.Tensor, baseline_q: torch.Tensor | None, target: torch.Tensor | None, first: int,
                   count: int, steps: int, rule: str) -> list[int]:
        """The host's writes before an engine start on images ``first`` .. ``first + count - 1`` of
        a quantized batch: one image, its baseline and the IG table, or an image batch and its
        targets. Returns the targets asked (-1: the predicted class)."""
        wanted = [-1 if target is None else int(target[k]) for k in range(first, first + count)]
        if count == 1:
            self.load_inputs(x_q[first].numpy(), None if baseline_q is None else baseline_q[first].numpy(), steps, rule)
        else:
            self.load_images(x_q[first: first + count].numpy(), wanted)
        return wanted

    def results(self, images: int, method_code: int) -> list[Run]:
        """What an engine start left in DDR for each of its ``images``: the logits, the result
        record and (a method) the attribution, as the host reads them (``grad_cam``: channel 0,
        the map; the others repeat it)."""
        attribution = method_code != PREDICT_CODE
        channels = 1 if method_code == METHOD_CODES["grad_cam"] else None
        h = self.h
        out = []
        for s in range(images):
            at = h["result_addr"] + s * RESULT_SLOT_BYTES
            r = RESULT.decode(self.ddr[at: at + RESULT.bytes].tobytes())
            logits = self.read16(h["logits_addr"] + s * h["logits_slot_bytes"], h["classes"]).astype(np.int16)
            out.append(Run(logits, r["predicted"], r["target"],
                           self.attribution(s)[:channels].astype(np.int16) if attribution else None,
                           (r["sat_forward"], r["sat_backward"], r["sat_post"])))
        return out

    def attribution(self, slot: int = 0) -> np.ndarray:
        h = self.h
        return from_blocked(self.read16(h["attr_addr"] + slot * h["slot_bytes"], h["input_elems"]), h["in_c"], h["in_h"],
                            h["in_w"], self.shape.tn)

    # ---- the controller ----
    def run(self, method_code: int, target: int, steps: int, images: int = 1) -> list[Run]:
        """One start of the engine: one image (``target``: -1 the predicted class), or with
        ``images`` = the Program's batch an image batch on the batched lists (targets from the
        targets table); a Run per image, the run's counters in the first."""
        h = self.h
        images = max(images, 1)
        if images > 1 and (images != h["batch"] or method_code in ONE_IMAGE_CODES):
            raise XaiHlsError(f"an engine start of {images} images: the Program runs 1 or {h['batch']}, and "
                              "integrated gradients and the Grad-CAM methods one")
        n, classes, stride = h["input_elems"], h["classes"], h["slot_bytes"]
        self.saturated = [0, 0, 0]
        method = None if method_code == PREDICT_CODE else method_of_code(method_code)
        mode = 0 if method is None else int(method.relu_backward)  # a ReLU6 keeps the bit its rule reads
        for s in range(images):
            self.write16(h["work_addr"] + s * stride, self.read16(h["image_addr"] + s * stride, n))
        self._list(self.forward if images == 1 else self.forward_batch, mode, 0)
        picks = []
        for s in range(images):  # the first maximum of each slot's logits; the slot's target
            logits = self.read16(h["logits_addr"] + s * h["logits_slot_bytes"], classes)
            predicted = int(np.argmax(logits))
            asked = target if images == 1 else int(self.read32(h["targets_addr"] + 4 * s, 1)[0])
            if asked >= classes:
                raise XaiHlsError(f"target {asked} of a {classes}-class network")
            picks.append((predicted, predicted if asked < 0 else asked))
            self.write32(h["result_addr"] + s * RESULT_SLOT_BYTES, [*picks[-1], 0, 0, 0])
        if method is not None:
            if images == 1:
                self.write16(h["attr_addr"], self._attribute(method, picks[0][1], steps))
            else:
                self._list(self.backward_batch, mode, None, backward=True)
                for s in range(images):
                    x = self.read16(h["image_addr"] + s * stride, n)
                    g = self.read16(h["grad_input_addr"] + s * stride, n)
                    self.write16(h["attr_addr"] + s * stride, self._post(method, x, g))
        self.write32(h["result_addr"], [*picks[0], *self.saturated])
        return self.results(images, method_code)

    def _attribute(self, method, target: int, steps: int) -> np.ndarray:
        h = self.h
        n = h["input_elems"]
        mode = int(method.relu_backward)
        x = self.read16(h["image_addr"], n)
        if method.post is PostProcess.INTEGRATED:
            if not 2 <= steps <= MAX_IG_STEPS:
                raise ValueError(f"steps {steps} outside 2..{MAX_IG_STEPS}")
            table = self.read32(h["ig_table_addr"], 2 + 2 * steps)
            alpha_frac, weight_frac = int(table[0]), int(table[1])
            base = self.read16(h["baseline_addr"], n)
            diff = x - base
            total = np.zeros(n, dtype=np.int64)
            classes = h["classes"]
            self.write16(h["logits_save_addr"], self.read16(h["logits_addr"], classes))
            k = 0
            while k < steps:  # the steps in batches of `batch` on the batched lists, the rest one at a time
                slots = h["batch"] if h["batch"] > 1 and steps - k >= h["batch"] else 1
                for s in range(slots):
                    alpha = int(table[2 + 2 * (k + s)])
                    self.kind = 2
                    self.write16(h["work_addr"] + s * h["slot_bytes"],
                                 self._requant((base << alpha_frac) + alpha * diff, alpha_frac))
                self._list(self.forward_batch if slots > 1 else self.forward, mode, 0)
                self._list(self.backward_batch if slots > 1 else self.backward, mode, target, backward=True)
                for s in range(slots):
                    weight = int(table[3 + 2 * (k + s)])
                    total += weight * self.read16(h["grad_input_addr"] + s * h["slot_bytes"], n)
                k += slots
            self.write16(h["logits_addr"], self.read16(h["logits_save_addr"], classes))
            self.kind = 2
            summed = self._requant(total, weight_frac + h["grad_frac0"] - h["ig_sum_frac"])
            return self._requant(diff * summed, h["input_frac"] + h["ig_sum_frac"] - h["ig_frac"])
        if method.post in (PostProcess.GRAD_CAM, PostProcess.GUIDED_GRAD_CAM):
            return self._grad_cam(method, target)
        self._list(self.backward, mode, target, backward=True)
        return self._post(method, x, self.read16(h["grad_input_addr"], n))

    def _grad_cam(self, method, target: int) -> np.ndarray:
        """Grad-CAM: the backward list's jobs down to the layer under the true-gradient rule, then the
        Grad-CAM list, which leaves the upsampled map (repeated over the input's channels) at
        attr_addr. Guided Grad-CAM: then the whole backward list under the guided rule and the
        product of that input gradient with the map, rounded once."""
        h = self.h
        n = h["input_elems"]
        if not h["n_cam"]:
            raise XaiHlsError(f"method '{method.name}': the Program has no Grad-CAM list (compile the method in)")
        self._list(self.backward[:h["n_backward_cam"]], int(ReluBackward.MASK), target, backward=True)
        self._list(self.cam, int(ReluBackward.MASK), None, kind=2)
        up = self.read16(h["attr_addr"], n)
        if method.post is PostProcess.GRAD_CAM:
            return up
        self._list(self.backward, int(ReluBackward.GUIDED), target, backward=True)
        g = self.read16(h["grad_input_addr"], n)
        self.kind = 2
        return self._requant(up * g, h["grad_cam_frac"] + h["grad_frac1"] - h["guided_grad_cam_frac"])

    def _post(self, method, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The attribution from the input gradient ``g`` of image ``x`` (every method but IG)."""
        self.kind = 2
        if method.post is PostProcess.ABS:
            return self._requant(np.abs(g), 0)
        if method.post is PostProcess.TIMES_INPUT:
            h = self.h
            grad_frac = (h["grad_frac0"], h["grad_frac1"], h["grad_frac2"])[int(method.relu_backward)]
            return self._requant(x * g, h["input_frac"] + grad_frac - h["ixg_frac"])
        return g

    def _list(self, jobs: list[Job], mode: int, target: int | None, backward: bool = False,
              kind: int | None = None) -> None:
        """Run ``jobs``; a SEED seeds ``target``, or in an image batch (None) its slot's target. Their
        saturations count as ``kind`` (default: forward, or backward)."""
        self.kind = (1 if backward else 0) if kind is None else kind
        for d in jobs:
            if d.op == Op.CONV:
                for slot in range(max(1, d.slots)):
                    self._conv(slot_job(d, slot), mode)
            elif d.op == Op.SEED:
                self._seed(d, mode, target)
            else:
                raise AssertionError(f"op {d.op} in a job list")

    # ---- jobs ----
    def _seed(self, d: Job, mode: int, target: int | None) -> None:
        if target is None:  # an image batch: the target picked for the SEED's slot
            target = int(self.read32(self.h["result_addr"] + d.slot * RESULT_SLOT_BYTES + 4, 1)[0])
        lanes = d.out_blocks * self.shape.tn
        g = np.zeros(lanes, dtype=np.int64)
        g[target] = 1 << d.shift0
        if d.has(Flag.BWD_RELU):
            g = _relu_rule(g, self.mask[d.mask_base + np.arange(lanes)], mode, d.has(Flag.RELU6))
        self.write16(d.out_addr, g)

    def _n_tiles(self, d: Job, mt: int) -> range:
        if not d.has(Flag.DIAG):
            return range(d.n_tiles)
        if d.has(Flag.LANES):
            return range(mt, mt + 1)
        per = self.shape.tm // self.shape.tn
        return range(mt * per, min((mt + 1) * per, d.n_tiles))

    def _conv(self, d: Job, mode: int) -> None:
        tm, tn = self.shape.tm, self.shape.tn
        shift = (d.shift0, d.shift1, d.shift2)[mode]
        walks: dict[int, _Walk] = {}  # a row tile's walk: the same for every m-tile and n-tile
        loads = {} if self._apart(d) else None  # (n-tile, row tile) -> its input rows, where no write-back changes them
        for mt in range(d.m_tiles):
            bias = self.read16(d.b_addr + 2 * tm * mt, tm) if d.has(Flag.BIAS) else np.zeros(tm, np.int64)
            for rt in range(d.row_tiles):
                last = rt == d.row_tiles - 1
                r0 = rt * d.tile_step
                rows = d.last_rows if last else d.tile_rows
                acc = np.zeros((tm, rows * d.ow), dtype=np.int64)
                if d.passes:
                    for k, nt in enumerate(self._n_tiles(d, mt)):
                        if loads is not None and (nt, rt) in loads:
                            buf, first = loads[nt, rt]
                        else:
                            buf, first = self._load_input(d, nt, rt, last)
                            if loads is not None:
                                loads[nt, rt] = buf, first
                        w_addr = d.w_addr + mt * d.w_mt_bytes + k * d.w_nt_bytes
                        if d.w_diag:  # one a lane: lane m's at column m mod tn
                            weights = np.zeros((d.w_passes, tm, tn), dtype=np.int64)
                            weights[:, np.arange(tm), np.arange(tm) % tn] = self.read16(
                                w_addr, d.w_passes * tm).reshape(d.w_passes, tm)
                        else:
                            weights = self.read16(w_addr, d.w_passes * tm * tn).reshape(d.w_passes, tm, tn)
                        xs = x_shift(d, nt, mode)
                        if d.unpool:
                            for ky in range(d.ky):
                                for kx in range(d.kx):
                                    x = self._unpool_pass(d, buf, first, nt, r0, rows, ky, kx, mode)
                                    acc += weights[(ky * d.kx + kx) % d.w_passes] @ (x << xs)
                            continue
                        walk = walks.get(rt) or walks.setdefault(rt, _Walk.of(d, first, r0, rows, buf.shape[1]))
                        x = walk.operands(self, d, buf, nt)  # tn x passes x positions
                        if d.w_passes == 1:  # w_once: pass (0, 0)'s weights for every pass
                            acc += weights[0] @ (x.sum(axis=1) << xs)
                        else:  # every pass at once: lanes x (pass, column) times (pass, column) x positions
                            acc += weights.transpose(1, 0, 2).reshape(tm, -1) @ (x.transpose(1, 0, 2).reshape(
                                -1, x.shape[2]) << xs)
                self._write_back(d, mt, r0, rows, acc + (bias << d.bias_shift)[:, None], shift, mode)

    def _apart(self, d: Job) -> bool:
        """Whether the bytes the job reads lie apart from those it writes, so that a tile's input rows loaded for one
        m-tile are the next one's too (generous bounds: every n-tile's rows and every output block, a row and a
        pixel past each)."""
        pixel = 2 * self.shape.tn
        reads = (d.in_addr, d.in_addr + d.n_tiles * d.in_block_bytes + (d.ih + 1) * d.in_row_bytes + (d.iw + 1) * pixel)
        writes = (d.out_addr, d.out_addr + d.out_blocks * d.out_block_bytes + (d.oph + 1) * d.out_row_bytes
                  + (d.opw + 1) * pixel)
        return reads[1] <= writes[0] or writes[1] <= reads[0]

    def _load_input(self, d: Job, nt: int, rt: int, last: bool) -> tuple[np.ndarray, int]:
        """The tile's input rows of block ``nt`` (tn x rows x iw; rows outside the map stay zero)
        and the input row its buffer row 0 holds."""
        tn = self.shape.tn
        first = rt * d.load_step + d.load_lo
        count = d.load_rows_last if last else d.load_rows
        buf = np.zeros((tn, count * d.iw), dtype=np.int64)
        for y in range(max(first, 0), min(first + count, d.ih)):
            row = self.read16(d.in_addr + nt * d.in_block_bytes + y * d.in_row_bytes, d.iw * tn)
            buf[:, (y - first) * d.iw:(y - first + 1) * d.iw] = row.reshape(d.iw, tn).T
        return buf, first

    def _unpool_pass(self, d: Job, buf: np.ndarray, first: int, nt: int, r0: int, rows: int, ky: int, kx: int,
                     mode: int):
        """Operand n of every position of an UNPOOL job's tile at pass (ky, kx): tn x positions (the other jobs'
        passes are walked all at once, ``_Walk``)."""
        r = np.arange(rows)[:, None]
        c = np.arange(d.ow)[None, :]
        y = (r0 + r) * d.isy + ky * d.iky + d.iy0
        x = c * d.isx + kx * d.ikx + d.ix0
        if ky == kx == 0:
            s = d.pool_sh
            origin = ((r0 + d.iy0) // s - first) * d.iw + d.ix0 // s
            assert d.walk_origin == origin, f"layer {d.layer}: walk_origin disagrees with the unpooled geometry"
        return self._unpool(d, buf, first, nt, y, x, mode)

    def _unpool(self, d: Job, buf: np.ndarray, first: int, nt: int, y: np.ndarray, x: np.ndarray, mode: int):
        """UNPOOL operands: the buffer holds rows of a max-pool's output (ih x iw, window and stride s);
        position (y, x) of its input map reads pooled pixel (y // s, x // s), kept where the window's
        index is (y mod s, x mod s) and, with the RELU mode, where the ReLU rule passes it (the window's
        alive bit is the ReLU bit of its maximum)."""
        tn, s = self.shape.tn, d.pool_sh
        assert d.pool_sw == s == d.pool_kh == d.pool_kw and (d.isy, d.isx, d.iky, d.ikx) == (1, 1, -1, -1)
        y, x = (a.reshape(-1) for a in np.broadcast_arrays(y, x))
        valid = (y >= 0) & (y < d.ih * s) & (x >= 0) & (x < d.iw * s)
        yq, xq = y[valid] // s, x[valid] // s
        out = np.zeros((tn, y.size), dtype=np.int64)
        v = buf[:, (yq - first) * d.iw + xq]
        entries = d.index_base + (nt * d.index_plane + yq * d.iw + xq)[None, :] * tn + np.arange(tn)[:, None]
        v = v * (self.index[entries] == (y[valid] % s) * s + x[valid] % s)
        out[:, valid] = _relu_rule(v, self.alive[entries], mode) if d.unpool == Unpool.RELU else v
        return out

    def _write_back(self, d: Job, mt: int, r0: int, rows: int, v: np.ndarray, shift: int, mode: int) -> None:
        """Requantize a finished row tile and store it (blocks of the m-tile that the tensor has)."""
        tm, tn = self.shape.tm, self.shape.tn
        groups = tm // tn
        for g in range(groups):
            block = mt if d.has(Flag.LANES) else mt * groups + g
            if block >= d.out_blocks:
                break
            lanes = v[g * tn:(g + 1) * tn]
            if d.has(Flag.POOL):
                self._pool(d, block, r0, rows, lanes, mode)
                continue
            oy = (r0 + np.arange(rows))[:, None] * d.osy + d.oyo
            ox = np.arange(d.ow)[None, :] * d.osx + d.oxo
            if d.has(Flag.LANES):  # lane group g: output column x * groups + g, those the tensor has
                assert d.osx == 1 and d.oxo == 0, f"layer {d.layer}: a LANES job writes every column"
                ox = ox * groups + g
                keep = np.broadcast_to(ox < d.opw, (rows, d.ow)).reshape(-1)
                lanes = lanes[:, keep]
                ox = ox[:, ox[0] < d.opw]
            out = self._requant(lanes, shift)
            oy, ox = (a.reshape(-1) for a in np.broadcast_arrays(oy, ox))
            bits = self._bits(d, self._elems(d, block, oy, ox))
            if d.has(Flag.RELU):
                self.mask[bits] = lanes > 0
                out = np.maximum(out, 0)
            if d.has(Flag.RAP):
                self.mask[bits], out = _rap(out, d, mode)
            if d.has(Flag.BWD_RELU):
                out = _relu_rule(out, self.mask[bits], mode, d.has(Flag.RELU6))
            self._store(d, block, oy, ox, out)

    def _elems(self, d: Job, block: int, oy: np.ndarray, ox: np.ndarray) -> np.ndarray:
        """Lanes x pixels (oy, ox) of block ``block``: each element's offset from out_addr, in elements
        (rows ``out_row_bytes`` apart, pixels tn elements). A non-pool job's ReLU bits and a pool's
        indices and RAP bits are kept at the same offsets from mask_base and index_base."""
        assert d.out_row_bytes % 2 == 0 and d.out_block_bytes % 2 == 0
        elem = block * (d.out_block_bytes // 2) + oy * (d.out_row_bytes // 2) + ox * self.shape.tn
        return elem[None, :] + np.arange(self.shape.tn)[:, None]

    @staticmethod
    def _bits(d: Job, elems: np.ndarray) -> np.ndarray:
        """The ReLU bits of the elements ``elems`` (offsets from out_addr): at the byte address / 2 plus
        mask_bias, as the write-back takes them (the contract's mask_bias; mask_base + elems)."""
        return (d.out_addr // 2 + d.mask_bias + elems) % (1 << MEM)

    def _store(self, d: Job, block: int, oy: np.ndarray, ox: np.ndarray, out: np.ndarray) -> None:
        """Lanes x pixels (oy, ox) of block ``block`` to the output tensor."""
        view = self.ddr[d.out_addr:].view("<i2")
        view[self._elems(d, block, oy, ox).reshape(-1)] = out.reshape(-1)

    def _pool(self, d: Job, block: int, r0: int, rows: int, lanes: np.ndarray, mode: int) -> None:
        tn = self.shape.tn
        kh, kw, sh, sw = d.pool_kh, d.pool_kw, d.pool_sh, d.pool_sw
        relu = d.has(Flag.RELU)
        if relu:  # the bit of every conv output of the tile, from the accumulator
            pixel = ((r0 + np.arange(rows))[:, None] * d.ow + np.arange(d.ow)[None, :]).reshape(-1)
            self.mask[d.mask_base + (block * d.mask_plane + pixel)[None, :] * tn + np.arange(tn)[:, None]] = lanes > 0
        rank = np.maximum(lanes, 0) if relu else lanes
        if d.has(Flag.DIAG):  # a padded pool: grid positions outside the input map never win (golden's padding)
            y = (r0 + np.arange(rows))[:, None] * d.isy + d.iy0
            x = np.arange(d.ow)[None, :] * d.isx + d.ix0
            outside = ((y < 0) | (y >= d.ih) | (x < 0) | (x >= d.iw)).reshape(-1)
            rank = np.where(outside[None, :], NEVER_WINS, rank)
        p0 = r0 // sh
        p1 = min(d.pool_oh, p0 + (rows - kh) // sh + 1)
        py, px = np.arange(p0, p1), np.arange(d.pool_ow)
        win_y = (py * sh - r0)[:, None] + np.arange(kh)[None, :]
        win_x = (px * sw)[:, None] + np.arange(kw)[None, :]

        def in_windows(grid: np.ndarray) -> np.ndarray:  # lanes x pooled rows x pooled columns x window
            w = grid.reshape(tn, rows, d.ow)[:, win_y[:, :, None, None], win_x[None, None, :, :]]
            return w.transpose(0, 1, 3, 2, 4).reshape(tn, py.size, px.size, kh * kw)

        values = in_windows(lanes)
        if d.has(Flag.SUM):  # the window's accumulators summed, no index kept (no bias or ReLU: checked)
            best = values.sum(-1)
        else:
            windows = in_windows(rank)
            index = windows.argmax(-1)  # first maximum in raster order
            best = np.take_along_axis(values, index[..., None], -1)[..., 0]
        out = self._requant(best, d.shift0)
        if relu:
            out = np.maximum(out, 0)
        oy, ox = (a.reshape(-1) for a in np.meshgrid(py, px, indexing="ij"))
        entries = self._elems(d, block, oy, ox)
        if not d.has(Flag.SUM):
            alive = np.take_along_axis(windows, index[..., None], -1)[..., 0] > 0
            self.index[d.index_base + entries] = index.reshape(tn, -1)
            self.alive[d.index_base + entries] = alive.reshape(tn, -1)
        out = out.reshape(tn, -1)
        if d.has(Flag.RAP):
            bits = self._bits(d, entries)
            self.mask[bits], out = _rap(out, d, mode)
        self._store(d, block, oy, ox, out)


def host_runs(host: Engine, x_q: torch.Tensor, method_code: int, target: torch.Tensor | None, steps: int, rule: str,
              baseline_q: torch.Tensor | None, start: Callable[[int, int], None]):
    """The host's side of a quantized batch (N, C, H, W) on an engine whose DDR is ``host.ddr``:
    the engine starts of ``contract.engine_starts`` (``batch`` images a start while that many are
    left, the rest and integrated gradients one a start), each loaded (``Engine.load_start``), run
    by ``start(target, images)`` and read back (``Engine.results``). Returns int64 tensors (logits,
    target, attribution or None) and each image's saturation counters (an image batch's in its
    first image, 0 in the others)."""
    logits, targets, attrs, counters = [], [], [], []
    for first, count in engine_starts(x_q.shape[0], host.h["batch"], method_code):
        wanted = host.load_start(x_q, baseline_q, target, first, count, steps, rule)
        start(wanted[0], count)
        for r in host.results(count, method_code):
            logits.append(r.logits)
            targets.append(r.target)
            counters.append(r.saturations)
            if r.attribution is not None:
                attrs.append(r.attribution)
    as_t = lambda a: torch.from_numpy(np.stack(a).astype(np.int64))  # noqa: E731
    return as_t(logits), torch.tensor(targets, dtype=torch.int64), (as_t(attrs) if attrs else None), counters


def run_batch(program: ProgramV2, x_q: torch.Tensor, method_code: int, target: torch.Tensor | None, steps: int,
              rule: str, baseline_q: torch.Tensor | None):
    """Each image of a quantized batch on the interpreted engine (``host_runs``)."""
    engine = Engine(program)
    return host_runs(engine, x_q, method_code, target, steps, rule, baseline_q,
                     lambda asked, images: engine.run(method_code, asked, steps, images=images))


class InterpreterExecutor:
    """The Program interpreted job by job in Python (numpy), as the engine runs it."""

    capabilities = Capabilities("program", data_widths=(DATA_BITS,), max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        code = PREDICT_CODE if args.method is None else METHOD_CODES[args.method]
        logits, targets, attrs, counters = run_batch(plan.program, args.x_q, code, args.target, args.steps,
                                                     args.rule, args.baseline_q)
        return engine_result(qg, plan.program.header, args, logits, targets, attrs, counters)


EXECUTOR = InterpreterExecutor()
