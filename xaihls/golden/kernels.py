"""Exact integer products for the golden model: convolution, transposed convolution, matrix product.

Every function returns the exact int64 sums of products of its integer operands; the
golden model rounds and saturates them afterwards. Three ways to get those sums, chosen
per call by ``choose_path``, give the same integers:

``digits`` (operands of at most 16 bits, at most 131,071 terms, int8 GEMM hardware)
    Each operand is written in base 256 with two int8 digits, ``v = 256*h + l + 128``:
    ``h = v >> 8`` and ``l = (v & 255) - 128``, both in [-128, 127] for every 16-bit v
    (the ``+ 128`` offset is what gives 32767 and -32768 two int8 digits each). For a
    sum over K terms, with ``a = 256*A1 + A0`` the offset-free part of the left operand
    and ``b = 256*B1 + B0`` of the right one::

        sum (a + 128)(b + 128) = 2^16 sum A1*B1 + 2^8 sum (A1*B0 + A0*B1) + sum A0*B0
                                 + 2^15 sum A1 + 2^7 sum A0 + 128 * sum B

    (the 128^2 * K terms cancel). One ``torch._int_mm`` (int8 x int8 -> int32) gives
    every digit sum: the left operand's digit planes are stacked as rows [A1; A0], the
    right operand's as columns [B1 | B0 | 1], so the product's four quadrants are the
    four digit products and the last column the digit sums of A; ``128 * sum B`` is a
    constant of the weights. Each int32 entry sums K products of magnitude at most
    128 * 128 = 2^14, exact while K * 2^14 < 2^31: K <= 131,071, the largest fan-in the
    48-bit accumulator check lets a 16-bit network have. The recombination is in int64,
    where the true sum (magnitude at most K * 2^30) cannot overflow.

``float64`` (operands wider than 16 bits, longer sums, or no usable int8 GEMM)
    Products and sums in float64: every partial sum is an integer of magnitude at most
    K * 2^(bits_a + bits_b - 2), exact while that is at most 2^53 (checked; the golden
    model's sums fit the 48-bit accumulator, far below).

``int64`` (beyond the float64 bound): int64 products and sums; exact, slow, a guard
    rather than a path the golden model takes.

The int8 GEMM is used only where PyTorch runs it on VNNI/AMX hardware (elsewhere it
falls back to a scalar loop far slower than float64), on a little-endian machine, after
a probe on extreme operands has returned exact sums (``int8_gemm_available``); it has
no shape constraints on the CPU (checked down to 1 x 1 x 1).

Convolutions are im2col + GEMM: the input is copied once into a zero-framed canvas,
channels last, so every window row is one contiguous run copied in 8-byte words
(channels are padded with zeros to a multiple of 8 for that), and the work runs in
blocks of images so the int8 columns and int32 products stay in cache. A transposed
convolution is the convolution of the gradient spread out by the stride (zeros between
its pixels) with the kernel rotated by 180 degrees and its channel roles swapped.
Results come back channels-last (a permuted view; values in NCHW order as usual).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

DIGIT_MAX_BITS = 16
"""Widest operand the digit GEMM takes (two int8 digits)."""

DIGIT_MAX_TERMS = (1 << 17) - 1
"""Most terms one int32 digit sum holds exactly: K * 2^14 < 2^31."""

FLOAT64_EXACT = 1 << 53

BLOCK_ROWS = 4096
"""Output pixels per im2col/GEMM block: int8 columns and int32 products stay in cache."""


@lru_cache(maxsize=1)
def int8_gemm_available() -> bool:
    """True when ``torch._int_mm`` runs on int8 hardware here and returns exact sums."""
    if sys.byteorder != "little" or not hasattr(torch, "_int_mm"):
        return False
    vnni = getattr(torch.cpu, "_is_vnni_supported", None)
    if vnni is None or not vnni():
        return False
    k = DIGIT_MAX_TERMS
    gen = torch.Generator().manual_seed(0)
    probes = [
        (torch.full((17, k), -128, dtype=torch.int8), torch.full((k, 9), -128, dtype=torch.int8)),
        (torch.full((17, k), 127, dtype=torch.int8), torch.full((k, 9), -128, dtype=torch.int8)),
        (torch.randint(-128, 128, (5, 3), generator=gen, dtype=torch.int8),
         torch.randint(-128, 128, (3, 7), generator=gen, dtype=torch.int8)),
        (torch.randint(-128, 128, (1, 1), generator=gen, dtype=torch.int8),
         torch.randint(-128, 128, (1, 1), generator=gen, dtype=torch.int8)),
    ]
    try:
        for a, b in probes:
            if not torch.equal(torch._int_mm(a, b).to(torch.int64), a.to(torch.int64) @ b.to(torch.int64)):
                return False
    except RuntimeError:
        return False
    return True


def choose_path(terms: int, bits_a: int, bits_b: int) -> str:
    """How to sum ``terms`` products of a ``bits_a``-bit and a ``bits_b``-bit integer exactly."""
    if max(bits_a, bits_b) <= DIGIT_MAX_BITS and terms <= DIGIT_MAX_TERMS and int8_gemm_available():
        return "digits"
    if terms << (bits_a + bits_b - 2) <= FLOAT64_EXACT:
        return "float64"
    return "int64"


# ---------------------------------------------------------------- digits


def digit_planes(v: torch.Tensor) -> torch.Tensor:
    """16-bit integers (any shape S) to int8 digits (2, *S): [v >> 8, (v & 255) - 128]."""
    encoded = (v.to(torch.int16, memory_format=torch.contiguous_format) ^ 0x80).view(torch.int8)  # low, high
    return encoded.view(*v.shape, 2).movedim(-1, 0).flip(0)


@dataclass(frozen=True)
class DigitWeights:
    """A right operand b (K, N) for ``digit_matmul``: int8 columns [B1 | B0 | 1] and 128 * sum b."""

    columns: torch.Tensor
    column_term: torch.Tensor

    @property
    def n(self) -> int:
        return (self.columns.shape[1] - 1) // 2


def digit_weights(b: torch.Tensor) -> DigitWeights:
    """Lay out integers ``b`` (K, N) of at most 16 bits for ``digit_matmul``."""
    k, n = b.shape
    columns = torch.ones((k, 2 * n + 1), dtype=torch.int8)
    columns[:, :2 * n].view(k, 2, n).copy_(digit_planes(b).permute(1, 0, 2))
    return DigitWeights(columns, b.to(torch.int64).sum(0) * 128)


def digit_matmul_into(out: torch.Tensor, a_digits: torch.Tensor, w: DigitWeights) -> None:
    """``out`` (M, N) int64 = a @ b exactly, from a's digit rows [A1; A0] (2M, K) and ``w``."""
    m, n = out.shape
    p = torch._int_mm(a_digits, w.columns)
    high, low = p[:m], p[m:]
    out.copy_(high[:, :n])  # 2^16 A1*B1 ...
    torch.add(high[:, n:2 * n], out, alpha=256, out=out)  # ... + 2^8 A1*B0
    out += low[:, :n]  # ... + 2^8 A0*B1
    torch.add(low[:, n:2 * n], out, alpha=256, out=out)  # ... + A0*B0
    digit_sums = high[:, 2 * n].to(torch.int64) * 256 + low[:, 2 * n]
    out += digit_sums.mul_(128)[:, None]
    out += w.column_term


# ---------------------------------------------------------------- layouts


def _canvas(x: torch.Tensor, top_left: tuple[int, int], size: tuple[int, int], step: tuple[int, int],
            digits: bool) -> torch.Tensor:
    """x (N, C, H, W) placed on a zero canvas, channels last: (N, Hc, Wc, C), or (2, N, Hc, Wc, C8) digits.

    Input pixel (i, j) lands at (top_left[0] + i*step[0], top_left[1] + j*step[1]);
    pixels that land outside the canvas are dropped (a negative top-left crops).
    Digit canvases hold int8 digit planes, C padded with zeros to a multiple of 8.
    """
    n, c, h, w = x.shape
    hc, wc = size
    (t, l), (sy, sx) = top_left, step
    # the rows i0..i1-1 and columns j0..j1-1 of x that land on the canvas
    i0, i1 = max(0, -(t // sy)), min(h, (hc - 1 - t) // sy + 1)
    j0, j1 = max(0, -(l // sx)), min(w, (wc - 1 - l) // sx + 1)
    if digits:
        canvas = torch.zeros((2, n, hc, wc, -(-c // 8) * 8), dtype=torch.int8)
        canvas[1] = -128  # 0 = 256*0 + (-128) + 128
    else:
        canvas = torch.zeros((n, hc, wc, c), dtype=torch.int64)
    if i1 > i0 and j1 > j0:
        y0, x0 = t + i0 * sy, l + j0 * sx
        rows, cols = slice(y0, y0 + (i1 - i0 - 1) * sy + 1, sy), slice(x0, x0 + (j1 - j0 - 1) * sx + 1, sx)
        src = x[:, :, i0:i1, j0:j1].permute(0, 2, 3, 1)
        if digits:
            canvas[:, :, rows, cols, :c] = digit_planes(src)
        else:
            canvas[:, rows, cols, :] = src
    return canvas


def _windows(canvas: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
             out_hw: tuple[int, int]) -> torch.Tensor:
    """Canvas (..., Hc, Wc, C) to the view (..., OH, OW, kh, kw, C') of each output's window.

    Channels are read as 8-byte words where they fill them: a window row is one run.
    """
    word = canvas
    if canvas.element_size() < 8 and (canvas.shape[-1] * canvas.element_size()) % 8 == 0:
        word = canvas.view(torch.int64)
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    *lead, _, _, cw = word.shape
    s = word.stride()
    lead_strides = s[:len(lead)]
    return word.as_strided((*lead, oh, ow, kh, kw, cw),
                           (*lead_strides, sh * s[-3], sw * s[-2], s[-3], s[-2], 1), word.storage_offset())


def _weight_matrix(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Conv weight (O, C, kh, kw) to (kh*kw*C', O) in the windows' tap order, C zero-padded to C'."""
    o, c, kh, kw = weight.shape
    if channels != c:
        weight = F.pad(weight, (0, 0, 0, 0, 0, channels - c))
    return weight.permute(2, 3, 1, 0).reshape(kh * kw * channels, o)


def _plain_matmul(a: torch.Tensor, b: torch.Tensor, path: str) -> torch.Tensor:
    if path == "float64":
        return (a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)
    return a.to(torch.int64) @ b.to(torch.int64)


def _convolve(x: torch.Tensor, weight: torch.Tensor, top_left, canvas_hw, step, stride, out_hw, bits,
              bias) -> torch.Tensor:
    """Valid convolution (stride ``stride``) of x placed on a canvas; int64 channels-last result."""
    n, c = x.shape[:2]
    o, _, kh, kw = weight.shape
    oh, ow = out_hw
    path = choose_path(kh * kw * c, *bits)
    canvas = _canvas(x, top_left, canvas_hw, step, path == "digits")
    windows = _windows(canvas, (kh, kw), stride, out_hw)
    wmat = _weight_matrix(weight, canvas.shape[-1])
    out = torch.empty((n, oh, ow, o), dtype=torch.int64)
    if path == "digits":
        w = digit_weights(wmat)
        flat_out = out.view(n * oh * ow, o)
        per_image = oh * ow
        step_n = max(1, BLOCK_ROWS // max(1, per_image))
        for n0 in range(0, n, step_n):
            n1 = min(n, n0 + step_n)
            cols = windows[:, n0:n1].reshape(2 * (n1 - n0) * per_image, -1).view(torch.int8)
            digit_matmul_into(flat_out[n0 * per_image:n1 * per_image], cols, w)
    else:
        cols = windows.reshape(n * oh * ow, -1)
        out.view(n * oh * ow, o).copy_(_plain_matmul(cols, wmat, path))
    if bias is not None:
        out += bias
    return out.permute(0, 3, 1, 2)


def conv2d(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
           bits: tuple[int, int], bias: torch.Tensor | None = None) -> torch.Tensor:
    """Exact int64 ``F.conv2d(x, weight, bias, stride, padding)`` of integers of ``bits`` (x, weight) bits."""
    _, _, h, w = x.shape
    _, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    out_hw = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    return _convolve(x, weight, (ph, pw), (h + 2 * ph, w + 2 * pw), (1, 1), stride, out_hw, bits, bias)


def conv_transpose2d(g: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
                     output_padding: tuple[int, int], bits: tuple[int, int]) -> torch.Tensor:
    """Exact int64 ``F.conv_transpose2d(g, weight, None, stride, padding, output_padding)``.

    A stride-1 convolution of g spread out by the stride, framed by kh-1-p rows above and
    kh-1-p+output_padding below (a negative frame crops), with the rotated kernel.
    """
    _, _, oh, ow = g.shape
    _, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (eh, ew) = stride, padding, output_padding
    h, w = (oh - 1) * sh - 2 * ph + kh + eh, (ow - 1) * sw - 2 * pw + kw + ew
    rotated = weight.flip(2, 3).transpose(0, 1)
    return _convolve(g, rotated, (kh - 1 - ph, kw - 1 - pw), (h + kh - 1, w + kw - 1), (sh, sw), (1, 1),
                     (h, w), bits, None)


def matmul(a: torch.Tensor, b: torch.Tensor, bits: tuple[int, int], bias: torch.Tensor | None = None) -> torch.Tensor:
    """Exact int64 ``a @ b (+ bias)`` of integers of ``bits`` (a, b) bits; a (M, K), b (K, N)."""
    m, k = a.shape
    path = choose_path(k, *bits)
    if path == "digits":
        out = torch.empty((m, b.shape[1]), dtype=torch.int64)
        digit_matmul_into(out, digit_planes(a).reshape(2 * m, k), digit_weights(b))
    else:
        out = _plain_matmul(a, b, path)
    return out if bias is None else out.add_(bias)
