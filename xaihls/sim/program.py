"""The program interpreter (``backend="program"``): the engine, tile by tile, over a flat DDR array.

It does what the hardware does, in the hardware's order: the controller reads the header
and descriptors from DDR; a CONV job loops over output-channel tiles, row tiles and
input-channel tiles, loading input and weight tiles into buffers, accumulating Tm x Tn
products per tap, then writing back (requantize, ReLU, fused max-pool, ReLU bits, pool
indices); pools, ReLUs, the seed and the post-processing are element-wise units. ReLU bits
and pool indices live in on-chip memories, not in DDR. Bit-exact with the golden model;
the HLS and RTL engines are translations of this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xaihls.methods import METHOD_CODES, PREDICT_CODE, PostProcess, ReluBackward, ig_constants, method_of_code
from xaihls.numerics import FixedFormat, count_saturated, round_shift, saturate
from xaihls.errors import XaiHlsError
from xaihls.executor import Capabilities, RunArgs, RunResult, engine_result
from xaihls.plan.program import (MAX_IG_STEPS, PROGRAM_MAGIC, PROGRAM_VERSION, RESULT_WORDS, Descriptor, Flag,
                                 Header, Op, Program)


SATURATION_KINDS = ("forward", "backward", "post")
"""The engine's saturation counters, in the order of the result region's words 2.. (docs/program.md)."""


def _requant(acc: np.ndarray, shift: int, width: int) -> tuple[np.ndarray, int]:
    """The contract's requantization (xaihls.numerics) on numpy int64, and how many values saturated."""
    fmt = FixedFormat(width, 0)
    wide = round_shift(torch.from_numpy(np.ascontiguousarray(acc, dtype=np.int64)), shift)
    return saturate(wide, fmt).numpy(), count_saturated(wide, fmt)


def _relu_rule(g: np.ndarray, bits: np.ndarray, mode: int) -> np.ndarray:
    if mode == ReluBackward.DECONV:
        return np.maximum(g, 0)
    g = g * bits
    return np.maximum(g, 0) if mode == ReluBackward.GUIDED else g


@dataclass
class MachineRun:
    logits: np.ndarray  # int16 codes
    predicted: int
    target: int
    attribution: np.ndarray | None  # int16 codes, C x H x W
    saturations: tuple[int, ...]  # values saturated by requantization, per SATURATION_KINDS


class Machine:
    """One engine with its DDR, mask memory and index memory."""

    def __init__(self, program: Program, tm: int, tn: int):
        self.program = program
        self.tm, self.tn = tm, tn
        self.ddr = program.ddr()
        self.header = Header.decode(self.ddr[: 4 * Header.WORDS].tobytes())
        h = self.header
        if h.magic != PROGRAM_MAGIC or h.version != PROGRAM_VERSION:
            raise XaiHlsError(f"not a version-{PROGRAM_VERSION} xaihls Program (magic {h.magic:#x}, version {h.version})")
        self.mask = np.zeros(max(h.mask_bits, 1), dtype=np.int64)
        self.index = np.zeros(max(h.index_entries, 1), dtype=np.int64)
        self.forward = self._descriptors(h.forward_addr, h.n_forward)
        self.backward = self._descriptors(h.backward_addr, h.n_backward)
        self.saturated = [0] * len(SATURATION_KINDS)
        self.kind = 0  # the counter requantizations add to (the list or unit running)

    def _requant(self, acc: np.ndarray, shift: int, width: int) -> np.ndarray:
        out, saturated = _requant(acc, shift, width)
        self.saturated[self.kind] += saturated
        return out

    # ---- DDR access ----
    def _descriptors(self, addr: int, count: int) -> list[Descriptor]:
        size = 4 * Descriptor.WORDS
        return [Descriptor.decode(self.ddr[addr + k * size: addr + (k + 1) * size].tobytes()) for k in range(count)]

    def read16(self, addr: int, count: int) -> np.ndarray:
        return self.ddr[addr: addr + 2 * count].view("<i2").astype(np.int64)

    def write16(self, addr: int, values: np.ndarray) -> None:
        self.ddr[addr: addr + 2 * values.size] = np.ascontiguousarray(values, dtype="<i2").reshape(-1).view(np.uint8)

    def read32(self, addr: int, count: int) -> np.ndarray:
        return self.ddr[addr: addr + 4 * count].view("<i4").astype(np.int64)

    def write32(self, addr: int, values) -> None:
        self.ddr[addr: addr + 4 * len(values)] = np.asarray(values, dtype="<i4").view(np.uint8)

    # ---- host side: what a driver writes before start and reads after done ----
    def load_inputs(self, image_q: np.ndarray, baseline_q: np.ndarray | None, steps: int, rule: str) -> None:
        h = self.header
        self.write16(h.image_addr, image_q)
        self.write16(h.baseline_addr, np.zeros(h.input_elems, np.int64) if baseline_q is None else baseline_q)
        self.write32(h.ig_table_addr, ig_constants(steps, rule, h.data_width).table())

    # ---- the controller ----
    def run(self, method_code: int, target: int, steps: int) -> MachineRun:
        h = self.header
        n = h.input_elems
        self.saturated = [0] * len(SATURATION_KINDS)
        self.write16(h.work_addr, self.read16(h.image_addr, n))
        self._run_list(self.forward, 0, 0)
        logits = self.read16(h.logits_addr, h.classes)
        predicted = int(np.argmax(logits))  # first maximum
        target = predicted if target < 0 else target
        attr = None
        if method_code != PREDICT_CODE:
            attr = self._attribute(method_of_code(method_code), target, steps, logits)
            self.write16(h.attr_addr, attr)
            attr = self.read16(h.attr_addr, n).astype(np.int16)
        self.write32(h.result_addr, [predicted, target, *self.saturated])
        result = self.read32(h.result_addr, RESULT_WORDS)
        return MachineRun(logits.astype(np.int16), predicted, target, attr, tuple(int(v) for v in result[2:]))

    def _attribute(self, method, target: int, steps: int, logits: np.ndarray) -> np.ndarray:
        """The backward pass(es) and the post-processing of ``method``: the attribution codes."""
        h = self.header
        width = h.data_width
        n = h.input_elems
        mode = int(method.relu_backward)
        x = self.read16(h.image_addr, n)
        if method.post is PostProcess.INTEGRATED:
            if not 2 <= steps <= MAX_IG_STEPS:
                raise ValueError(f"steps {steps} outside 2..{MAX_IG_STEPS}")
            table = self.read32(h.ig_table_addr, 2 + 2 * steps)
            alpha_frac, weight_frac = int(table[0]), int(table[1])
            base = self.read16(h.baseline_addr, n)
            diff = x - base
            acc = np.zeros(n, dtype=np.int64)
            for k in range(steps):
                alpha, weight = int(table[2 + 2 * k]), int(table[3 + 2 * k])
                self.kind = 2
                self.write16(h.work_addr, self._requant((base << alpha_frac) + alpha * diff, alpha_frac, width))
                self._run_list(self.forward, 0, 0)
                self._run_list(self.backward, mode, target)
                acc += weight * self.read16(h.grad_input_addr, n)
            self.write16(h.logits_addr, logits)  # the steps overwrote them: the image's logits again
            self.kind = 2
            summed = self._requant(acc, weight_frac + h.grad_frac0 - h.ig_sum_frac, width)
            return self._requant(diff * summed, h.input_frac + h.ig_sum_frac - h.ig_frac, width)
        self._run_list(self.backward, mode, target)
        g = self.read16(h.grad_input_addr, n)
        self.kind = 2
        if method.post is PostProcess.ABS:
            return self._requant(np.abs(g), 0, width)
        if method.post is PostProcess.TIMES_INPUT:
            return self._requant(x * g, h.input_frac + h.grad_frac(mode) - h.ixg_frac, width)
        return g

    def _run_list(self, descriptors: list[Descriptor], mode: int, target: int) -> None:
        self.kind = 0 if descriptors is self.forward else 1
        for d in descriptors:
            if d.op == Op.CONV:
                self._conv(d, mode)
            elif d.op in (Op.MAXPOOL, Op.AVGPOOL):
                self._pool(d)
            elif d.op in (Op.MAXPOOL_BWD, Op.AVGPOOL_BWD):
                self._pool_backward(d, mode)
            elif d.op == Op.RELU:
                x = self.read16(d.in_addr, d.n)
                self.mask[d.mask_base: d.mask_base + d.n] = x > 0
                self.write16(d.out_addr, np.maximum(x, 0))
            elif d.op == Op.SEED:
                g = np.zeros(d.n, dtype=np.int64)
                g[target] = 1 << d.shift0
                if d.flags & Flag.BWD_RELU:
                    g = _relu_rule(g, self.mask[d.mask_base: d.mask_base + d.n], mode)
                self.write16(d.out_addr, g)
            else:
                raise ValueError(f"unknown op {d.op}")

    # ---- the MAC array ----
    def _conv(self, d: Descriptor, mode: int) -> None:
        width = self.header.data_width
        pooled = bool(d.flags & Flag.POOL)
        conv_rows = (d.pool_oh - 1) * d.pool_sh + d.pool_kh if pooled else d.oh
        src = self.read16(d.in_addr, d.n * d.ih * d.iw).reshape(d.n, d.ih, d.iw)
        weights = self.ddr[d.w_addr:].view("<i2") if d.ky and d.kx else None
        bias = self.read16(d.b_addr, d.m) if d.flags & Flag.BIAS else None
        ys_tap = np.arange(d.ky) * d.iky
        xs = np.arange(d.ow)[:, None] * d.isx + np.arange(d.kx)[None, :] * d.ikx + d.ix0  # (OW, KX)
        for mt in range(d.m_tiles):
            ms = np.arange(mt * self.tm, min((mt + 1) * self.tm, d.m))
            for rt in range(d.row_tiles):
                r0 = rt * d.tile_step
                rows = min(d.tile_rows, conv_rows - r0)
                acc = np.zeros((ms.size, rows, d.ow), dtype=np.int64)
                if bias is not None:
                    acc += (bias[ms] << d.bias_shift)[:, None, None]
                ys = (np.arange(r0, r0 + rows) * d.isy)[:, None] + ys_tap[None, :] + d.iy0  # (rows, KY)
                for nt in range(d.n_tiles if weights is not None else 0):
                    ns = np.arange(nt * self.tn, min((nt + 1) * self.tn, d.n))
                    # Input buffer: the tile's rows and columns, zeros outside the map (padding).
                    valid = ((ys >= 0) & (ys < d.ih))[:, :, None, None] & ((xs >= 0) & (xs < d.iw))[None, None]
                    tile = src[ns][:, ys.clip(0, d.ih - 1)][:, :, :, xs.clip(0, d.iw - 1)] * valid[None]
                    # tile: (n, rows, KY, OW, KX). Weight buffer: (m, n, KY, KX) by the job's strides.
                    w_index = (d.w0 + ms[:, None, None, None] * d.ws_m + ns[None, :, None, None] * d.ws_n
                               + np.arange(d.ky)[None, None, :, None] * d.ws_ky
                               + np.arange(d.kx)[None, None, None, :] * d.ws_kx)
                    wbuf = weights[w_index].astype(np.int64)
                    acc += np.einsum("mnyx,nrycx->mrc", wbuf, tile, optimize=True)
                self._write_back(d, mode, ms, r0, rows, acc, width)

    def _write_back(self, d: Descriptor, mode: int, ms: np.ndarray, r0: int, rows: int, acc: np.ndarray,
                    width: int) -> None:
        out_plane = d.oph * d.opw
        if d.flags & Flag.POOL:
            kh, kw, sh, sw = d.pool_kh, d.pool_kw, d.pool_sh, d.pool_sw
            p0 = r0 // sh
            p1 = min(d.pool_oh, p0 + (rows - kh) // sh + 1)
            if d.flags & Flag.RELU:  # bits of every conv output in the tile, from the accumulator
                flat = (ms[:, None, None] * d.oh + np.arange(r0, r0 + rows)[None, :, None]) * d.ow \
                    + np.arange(d.ow)[None, None, :]
                self.mask[d.mask_base + flat] = acc > 0
            rank = np.maximum(acc, 0) if d.flags & Flag.RELU else acc
            py = np.arange(p0, p1)
            px = np.arange(d.pool_ow)
            win_y = (py * sh - r0)[:, None] + np.arange(kh)[None, :]  # (P, kh)
            win_x = (px * sw)[:, None] + np.arange(kw)[None, :]  # (PW, kw)
            windows = rank[:, win_y[:, :, None, None], win_x[None, None, :, :]]  # (m, P, kh, PW, kw)
            windows = windows.transpose(0, 1, 3, 2, 4).reshape(ms.size, py.size, px.size, kh * kw)
            index = windows.argmax(-1)  # first maximum in raster order
            values = acc[:, win_y[:, :, None, None], win_x[None, None, :, :]].transpose(0, 1, 3, 2, 4)
            values = values.reshape(ms.size, py.size, px.size, kh * kw)
            best = np.take_along_axis(values, index[..., None], -1)[..., 0]
            out = self._requant(best, d.shift0, width)
            if d.flags & Flag.RELU:
                out = np.maximum(out, 0)
            flat = (ms[:, None, None] * d.pool_oh + py[None, :, None]) * d.pool_ow + px[None, None, :]
            self.index[d.index_base + flat] = index
            if d.flags & Flag.RELU_AFTER_POOL:
                self.mask[d.mask_base + flat] = out > 0
                out = np.maximum(out, 0)
            self._scatter16(d.out_addr, flat, out)
            return
        out = self._requant(acc, d.shift(mode), width)
        oy = np.arange(r0, r0 + rows) * d.osy + d.oyo
        ox = np.arange(d.ow) * d.osx + d.oxo
        flat = ms[:, None, None] * out_plane + oy[None, :, None] * d.opw + ox[None, None, :]
        if d.flags & Flag.RELU:
            self.mask[d.mask_base + flat] = acc > 0
            out = np.maximum(out, 0)
        if d.flags & Flag.BWD_RELU:
            out = _relu_rule(out, self.mask[d.mask_base + flat], mode)
        self._scatter16(d.out_addr, flat, out)

    def _scatter16(self, addr: int, flat: np.ndarray, values: np.ndarray) -> None:
        view = self.ddr[addr:].view("<i2")
        view[flat.reshape(-1)] = values.reshape(-1)

    # ---- element-wise units ----
    def _pool(self, d: Descriptor) -> None:
        width = self.header.data_width
        x = self.read16(d.in_addr, d.n * d.ih * d.iw).reshape(d.n, d.ih, d.iw)
        kh, kw, sh, sw = d.pool_kh, d.pool_kw, d.pool_sh, d.pool_sw
        win_y = (np.arange(d.pool_oh) * sh)[:, None] + np.arange(kh)[None, :]
        win_x = (np.arange(d.pool_ow) * sw)[:, None] + np.arange(kw)[None, :]
        windows = x[:, win_y[:, :, None, None], win_x[None, None, :, :]].transpose(0, 1, 3, 2, 4)
        windows = windows.reshape(d.n, d.pool_oh, d.pool_ow, kh * kw)
        if d.op == Op.MAXPOOL:
            index = windows.argmax(-1)
            out = np.take_along_axis(windows, index[..., None], -1)[..., 0]
            self.index[d.index_base: d.index_base + index.size] = index.reshape(-1)
        else:
            out = self._requant(windows.sum(-1) * d.recip, d.shift0, width)
        if d.flags & Flag.RELU_AFTER_POOL:
            self.mask[d.mask_base: d.mask_base + out.size] = (out > 0).reshape(-1)
            out = np.maximum(out, 0)
        self.write16(d.out_addr, out.reshape(-1))

    def _pool_backward(self, d: Descriptor, mode: int) -> None:
        """Gather form: each input element sums the window outputs that route to it."""
        width = self.header.data_width
        g = self.read16(d.in_addr, d.n * d.pool_oh * d.pool_ow).reshape(d.n, d.pool_oh, d.pool_ow)
        kh, kw, sh, sw = d.pool_kh, d.pool_kw, d.pool_sh, d.pool_sw
        acc = np.zeros((d.n, d.ih, d.iw), dtype=np.int64)
        if d.op == Op.MAXPOOL_BWD:
            index = self.index[d.index_base: d.index_base + g.size].reshape(g.shape)
        for wy in range(kh):
            for wx in range(kw):
                part = np.where(index == wy * kw + wx, g, 0) if d.op == Op.MAXPOOL_BWD else g * d.recip
                acc[:, wy: wy + sh * (d.pool_oh - 1) + 1: sh, wx: wx + sw * (d.pool_ow - 1) + 1: sw] += part
        out = self._requant(acc, d.shift(mode), width).reshape(-1)
        if d.flags & Flag.BWD_RELU:
            out = _relu_rule(out, self.mask[d.mask_base: d.mask_base + out.size], mode)
        self.write16(d.out_addr, out)


def run_batch(program: Program, tm: int, tn: int, x_q: torch.Tensor, method: str | None,
              target: torch.Tensor | None, steps: int, rule: str, baseline_q: torch.Tensor | None):
    """Run each image of an already-quantized batch: int64 tensors (logits, target, attribution or
    None) and each run's saturation counters (SATURATION_KINDS)."""
    machine = Machine(program, tm, tn)
    code = PREDICT_CODE if method is None else METHOD_CODES[method]
    logits, targets, attrs, counters = [], [], [], []
    for k in range(x_q.shape[0]):
        base = None if baseline_q is None else baseline_q[k].reshape(-1).numpy()
        machine.load_inputs(x_q[k].reshape(-1).numpy(), base, steps, rule)
        r = machine.run(code, -1 if target is None else int(target[k]), steps)
        logits.append(r.logits)
        targets.append(r.target)
        counters.append(r.saturations)
        if r.attribution is not None:
            attrs.append(r.attribution.reshape(x_q.shape[1:]))
    as_t = lambda a: torch.from_numpy(np.stack(a).astype(np.int64))  # noqa: E731
    return as_t(logits), torch.tensor(targets, dtype=torch.int64), (as_t(attrs) if attrs else None), counters


class ProgramExecutor:
    """The Program interpreted tile by tile in Python, as the hardware runs it."""

    capabilities = Capabilities("program", max_ig_steps=MAX_IG_STEPS)

    def run(self, qg, plan, args: RunArgs) -> RunResult:
        logits, targets, attrs, counters = run_batch(plan.program, plan.engine.tm, plan.engine.tn, args.x_q,
                                                     args.method, args.target, args.steps, args.rule, args.baseline_q)
        return engine_result(qg, args, logits, targets, attrs, counters)


EXECUTOR = ProgramExecutor()
