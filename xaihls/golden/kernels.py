"""Exact integer products for the golden model: convolution, transposed convolution, matrix product.

Every product function returns the exact int64 sums of products of its integer operands;
the golden model rounds and saturates them afterwards. There are four ways to get those
sums; each is exact under a condition, and they return the same integers.

``native`` (operands of at most 16 bits, any number of terms, the native library built)
    native.cpp's product kernels (AMX digit products or int64 sums; the exactness argument is
    at the top of native.cpp). The golden model's fused stages (stages.py) use the same
    kernels; here they serve model.py's layer-by-layer path.

``digits`` (operands of at most 16 bits, at most 131,071 terms, an int8 GEMM that is exact here)
    Each operand is written in base 256 with two int8 digits, ``v = 256*h + l + 128``:
    ``h = v >> 8`` and ``l = (v & 255) - 128``, both in [-128, 127] for every 16-bit v
    (the ``+ 128`` offset is what gives 32767 and -32768 two int8 digits each). For a
    sum over K terms, with ``a = 256*A1 + A0`` the offset-free part of the left operand
    and ``b = 256*B1 + B0`` that of the right one::

        sum (a + 128)(b + 128) = 2^16 sum A1*B1 + 2^8 sum (A1*B0 + A0*B1) + sum A0*B0
                                 + 2^15 sum A1 + 2^7 sum A0 + 128 * sum (b + 128)

    (the 128^2 * K terms cancel). One ``torch._int_mm`` (int8 x int8 -> int32) gives all
    the digit sums: the left operand's digit planes are stacked as rows [A1; A0], the
    right operand's as columns [B1 | B0 | 1], so the product's quadrants are the four
    digit products and its last column the digit sums of the left operand;
    ``128 * sum (b + 128)`` is a constant of the weights. Each int32 entry sums K
    products of magnitude at most 128 * 128 = 2^14, exact while K * 2^14 < 2^31:
    K <= 131,071, just above the largest fan-in (131,070) the 48-bit accumulator check
    lets a 16-bit network have. K counts the zero channels a convolution's canvas adds
    (each is a term too: its digits are 0 and -128). The recombination is in int64,
    where the true sum (magnitude at most K * 2^30) and every partial sum of it cannot
    overflow.

``float64`` (products and sums below 2^53: always, for the golden model)
    ``F.conv2d``, ``F.conv_transpose2d`` and ``@`` in float64: every product and partial
    sum is an integer of magnitude at most K * 2^(bits_a + bits_b - 2); at most 2^53,
    every float64 operation on them is exact. (The golden model's sums fit the 48-bit
    accumulator, far below.)

``int64`` (always exact; slow): int64 products and sums. Taken only where neither of
    the others is exact, which the golden model never needs.

Which path runs (``exact_paths`` lists those whose condition holds):

- native runs where the native library is built and both operands have at most 16 bits.
- digits are not exact, so float64 runs, for an operand wider than 16 bits (a ``width``
  above 16 in the config), for more than 131,071 terms (padded channels included), and
  on a platform where ``int8_gemm_available`` is false: no ``torch._int_mm``, no
  VNNI/AMX (PyTorch's scalar int8 loop there is far slower than float64), a big-endian
  machine, or a probe on extreme operands that did not return the exact sums.
  ``torch._int_mm`` has no shape constraint on the CPU (the probe includes 5 x 3 x 7);
  should another PyTorch build refuse a shape, that shape is left to float64.
- Where several of native, digits and float64 are exact, the first call of each problem
  shape runs each twice, checks that they agree bit for bit (an error otherwise), and keeps
  the fastest, as ``torch.backends.cudnn.benchmark`` does: digits win on wide layers (float64
  convolution has no oneDNN kernel and a slow im2col), float64 on small ones (the digit
  path is two dozen tensor operations, float64 three). ``chosen_paths`` reports the
  choices; ``force_path`` pins a path (tests).

Digit convolutions are im2col + GEMM: the input is copied once into a zero-framed
canvas, channels last, so every window row is one contiguous run copied in 8-byte words
(channels are padded with zeros to a multiple of 8 for that), in blocks of images so
the int8 columns and int32 products stay in cache. A direct form (one GEMM per kernel
tap over shifted canvas rows, the int32 products summed) measured 2.2-3.9x slower here,
recombination not even included, on cifar_ref's and a 64-channel layer's shapes. A
transposed convolution is the convolution of the gradient spread out by the stride
(zeros between its pixels) with the kernel rotated by 180 degrees and its channel roles
swapped. Results are int64 in NCHW order; digit results are channels-last in memory (a
permuted view).
"""

from __future__ import annotations

import contextlib
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from xaihls import numerics
from xaihls.golden import native
from xaihls.numerics import FixedFormat

DIGIT_MAX_BITS = 16
"""Widest operand the digit GEMM takes (two int8 digits)."""

DIGIT_MAX_TERMS = (1 << 17) - 1
"""Most terms one int32 digit sum holds exactly: K * 2^14 < 2^31."""

FLOAT64_EXACT = 1 << 53

BLOCK_ROWS = 8192
"""Output pixels per im2col/GEMM block of the digit path: int8 columns and int32 products stay in cache."""

PATHS = ("native", "digits", "float64", "int64")


# ---------------------------------------------------------------- which path


@lru_cache(maxsize=1)
def int8_gemm_available() -> bool:
    """True when ``torch._int_mm`` runs on int8 hardware here and returns exact sums.

    The probe sums the largest digit products (-128 * -128, 127 * -128) over the most
    terms the digit path takes, and a random product of odd small shapes.
    """
    if sys.byteorder != "little" or not hasattr(torch, "_int_mm"):
        return False
    vnni = getattr(torch.cpu, "_is_vnni_supported", None)
    if vnni is None or not vnni():
        return False
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (5, 3), generator=gen, dtype=torch.int8)
    b = torch.randint(-128, 128, (3, 7), generator=gen, dtype=torch.int8)
    try:
        if not torch.equal(torch._int_mm(a, b).to(torch.int64), a.to(torch.int64) @ b.to(torch.int64)):
            return False
        for left, right in ((-128, -128), (127, -128), (-128, 127)):
            a = torch.full((17, DIGIT_MAX_TERMS), left, dtype=torch.int8)
            b = torch.full((DIGIT_MAX_TERMS, 9), right, dtype=torch.int8)
            if not bool((torch._int_mm(a, b) == DIGIT_MAX_TERMS * left * right).all()):
                return False
    except RuntimeError:
        return False
    return True


def exact_paths(terms: int, bits_a: int, bits_b: int, digit_terms: int | None = None) -> tuple[str, ...]:
    """The paths that sum ``terms`` products of ``bits_a``- and ``bits_b``-bit integers exactly.

    ``digit_terms``: the terms the digit GEMM sums, if more (a convolution's channels are
    padded to a multiple of 8, and each padded term adds a digit product of 2^14). int64
    is always among the paths (the golden model's sums are far from 2^63).
    """
    paths = []
    if native.fits(bits_a, bits_b) and native.library() is not None:
        paths.append("native")
    if (max(bits_a, bits_b) <= DIGIT_MAX_BITS and max(terms, digit_terms or 0) <= DIGIT_MAX_TERMS
            and int8_gemm_available()):
        paths.append("digits")
    if terms << max(0, bits_a + bits_b - 2) <= FLOAT64_EXACT:
        paths.append("float64")
    return (*paths, "int64")


_forced: str | None = None
_fastest: dict[tuple, str] = {}


@contextlib.contextmanager
def force_path(path: str | None) -> Iterator[None]:
    """Within the block, use ``path`` wherever it is exact (``None``: choose as usual)."""
    global _forced
    if path is not None and path not in PATHS:
        raise ValueError(f"unknown path {path!r}; paths: {', '.join(PATHS)}")
    before, _forced = _forced, path
    try:
        yield
    finally:
        _forced = before


def chosen_paths() -> dict[tuple, str]:
    """The path kept for each problem shape met so far (key: kind, shapes, ...)."""
    return dict(_fastest)


def forget_chosen_paths() -> None:
    """Time the paths again on the next call of each problem shape."""
    _fastest.clear()


def _run(key: tuple, paths: tuple[str, ...], run: Callable[[str], torch.Tensor]) -> torch.Tensor:
    """``run`` on the pinned path, else on the faster of digits and float64 (timed once per key), else int64."""
    if _forced in paths:
        return run(_forced)
    candidates = [path for path in paths if path != "int64"] or ["int64"]
    if len(candidates) == 1:
        return run(candidates[0])
    kept = _fastest.get(key)
    if kept in candidates:  # (a path chosen before may be off now: native.disabled())
        return run(kept)
    results: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    for _ in range(2):  # the second round is the one timed: first calls pay one-off set-up
        for path in list(candidates):
            start = time.perf_counter()
            try:
                results[path] = run(path)
            except RuntimeError:  # a shape torch._int_mm refuses in some PyTorch build: the others remain
                if path != "digits":
                    raise
                candidates.remove(path)
                continue
            seconds[path] = time.perf_counter() - start
    first = results[candidates[0]]
    for path in candidates[1:]:
        if not torch.equal(first, results[path]):
            raise AssertionError(f"exact paths {candidates[0]} and {path} disagree on {key}")
    _fastest[key] = min(candidates, key=seconds.__getitem__)
    return first


# ---------------------------------------------------------------- digits


def _bytes(v: torch.Tensor) -> torch.Tensor:
    """16-bit integers (any shape S) as their two's-complement bytes (*S, 2): low byte, high byte."""
    v16 = v.to(torch.int16, memory_format=torch.contiguous_format)
    return v16.view(torch.int8).view(*v.shape, 2)


def digit_planes(v: torch.Tensor) -> torch.Tensor:
    """16-bit integers (any shape S) to their int8 digits (2, *S): [v >> 8, (v & 255) - 128]."""
    b = _bytes(v)
    return torch.stack((b[..., 1], b[..., 0] ^ -128))  # flipping bit 7 of the low byte subtracts 128


@dataclass(frozen=True)
class DigitWeights:
    """A right operand b (K, N) for ``digit_matmul_into``: int8 columns [B1 | B0 | 1] and 128 * sum b."""

    columns: torch.Tensor
    column_term: torch.Tensor

    @property
    def n(self) -> int:
        return (self.columns.shape[1] - 1) // 2


def digit_weights(b: torch.Tensor) -> DigitWeights:
    """Lay out integers ``b`` (K, N) of at most 16 bits for ``digit_matmul_into``."""
    k, n = b.shape
    columns = torch.ones((k, 2 * n + 1), dtype=torch.int8)
    columns[:, :2 * n].view(k, 2, n).copy_(digit_planes(b).permute(1, 0, 2))
    return DigitWeights(columns, b.to(torch.int64).sum(0) * 128)


_digit_weights: dict[tuple, tuple[weakref.ref, DigitWeights]] = {}


def _cached_digit_weights(weight: torch.Tensor, role: tuple, make: Callable[[], torch.Tensor]) -> DigitWeights:
    """``digit_weights(make())``, kept while ``weight`` lives and is not modified in place."""
    key = (id(weight), weight._version, role)
    hit = _digit_weights.get(key)
    if hit is not None and hit[0]() is weight:
        return hit[1]
    laid_out = digit_weights(make())
    _digit_weights[key] = (weakref.ref(weight, lambda _: _digit_weights.pop(key, None)), laid_out)
    return laid_out


def digit_matmul_into(out: torch.Tensor, a_digits: torch.Tensor, w: DigitWeights,
                      column_term: torch.Tensor | None = None) -> None:
    """``out`` (M, N) int64 = a @ b (+ bias) exactly, from a's digit rows [A1; A0] (2M, K) and ``w``.

    ``column_term``: ``w.column_term`` plus the bias, if any.
    """
    m, n = out.shape
    p = torch._int_mm(a_digits, w.columns)
    high, low = p[:m], p[m:]
    out.copy_(high[:, :n])  # A1*B1 ...
    torch.add(high[:, n:2 * n], out, alpha=256, out=out)  # ... * 2^8 + A1*B0
    out += low[:, :n]  # ... + A0*B1
    torch.add(low[:, n:2 * n], out, alpha=256, out=out)  # ... * 2^8 + A0*B0
    digit_sums = high[:, 2 * n].to(torch.int64) * 256 + low[:, 2 * n]
    out += digit_sums.mul_(128)[:, None]
    out += w.column_term if column_term is None else column_term


# ---------------------------------------------------------------- im2col layouts


def _digit_channels(c: int) -> int:
    """Channels of a digit canvas: a multiple of 8, so a pixel's digits are whole 8-byte words."""
    return -(-c // 8) * 8


def _canvas(x: torch.Tensor, top_left: tuple[int, int], size: tuple[int, int], step: tuple[int, int],
            digits: bool) -> torch.Tensor:
    """x (N, C, H, W) placed on a zero canvas, channels last: (N, Hc, Wc, C), or (2, N, Hc, Wc, C8) digits.

    Input pixel (i, j) lands at (top_left[0] + i*step[0], top_left[1] + j*step[1]);
    pixels that land outside the canvas are dropped (a negative top-left crops).
    A digit canvas holds the two int8 digit planes, C padded with zeros to a multiple of 8.
    """
    n, c, h, w = x.shape
    hc, wc = size
    (t, l), (sy, sx) = top_left, step
    # the rows i0..i1-1 and columns j0..j1-1 of x that land on the canvas
    i0, i1 = max(0, -(t // sy)), min(h, (hc - 1 - t) // sy + 1)
    j0, j1 = max(0, -(l // sx)), min(w, (wc - 1 - l) // sx + 1)
    if digits:
        canvas = torch.zeros((2, n, hc, wc, _digit_channels(c)), dtype=torch.int8)
    else:
        canvas = torch.zeros((n, hc, wc, c), dtype=torch.int64)
    if i1 > i0 and j1 > j0:
        y0, x0 = t + i0 * sy, l + j0 * sx
        rows, cols = slice(y0, y0 + (i1 - i0 - 1) * sy + 1, sy), slice(x0, x0 + (j1 - j0 - 1) * sx + 1, sx)
        src = x[:, :, i0:i1, j0:j1].permute(0, 2, 3, 1)
        if digits:
            b = _bytes(src)
            canvas[0, :, rows, cols, :c] = b[..., 1]
            canvas[1, :, rows, cols, :c] = b[..., 0]
        else:
            canvas[:, rows, cols, :] = src
    if digits:
        canvas[1] ^= -128  # low bytes to low digits; a zero's low digit is -128
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
    return word.as_strided((*lead, oh, ow, kh, kw, cw),
                           (*s[:len(lead)], sh * s[-3], sw * s[-2], s[-3], s[-2], 1), word.storage_offset())


def _weight_matrix(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Conv weight (O, C, kh, kw) to (kh*kw*C', O) in the windows' tap order, C zero-padded to C'."""
    o, c, kh, kw = weight.shape
    if channels != c:
        weight = F.pad(weight, (0, 0, 0, 0, 0, channels - c))
    return weight.permute(2, 3, 1, 0).reshape(kh * kw * channels, o)


def _im2col_convolve(x: torch.Tensor, weight: torch.Tensor, owner: torch.Tensor, role: str, top_left, canvas_hw,
                     step, stride, out_hw, digits: bool, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Valid convolution (stride ``stride``) of x placed on a canvas, as im2col + GEMM; int64 (N, OH, OW, O).

    ``weight`` is ``owner`` (a layer's stored weight) as ``role`` transforms it: the digit
    layout is kept with ``owner``.
    """
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    oh, ow = out_hw
    canvas = _canvas(x, top_left, canvas_hw, step, digits)
    windows = _windows(canvas, (kh, kw), stride, out_hw)
    out = torch.empty((n, oh, ow, o), dtype=torch.int64)
    if out.numel() == 0:
        return out
    flat_out = out.view(n * oh * ow, o)
    if not digits:
        cols = windows.reshape(n * oh * ow, -1)
        torch.mm(cols, _weight_matrix(weight, canvas.shape[-1]), out=flat_out)
        return out if bias is None else out.add_(bias)
    w = _cached_digit_weights(owner, (role, canvas.shape[-1]), lambda: _weight_matrix(weight, canvas.shape[-1]))
    column_term = None if bias is None else w.column_term + bias
    per_image = oh * ow
    images = max(1, BLOCK_ROWS // max(1, per_image))
    row_shape = torch.Size((oh, ow, *windows.shape[-3:]))
    buffer = torch.empty(2 * min(n, images) * row_shape.numel(), dtype=windows.dtype)
    for n0 in range(0, n, images):
        n1 = min(n, n0 + images)
        block = buffer[:2 * (n1 - n0) * row_shape.numel()].view(2, n1 - n0, *row_shape)
        for ky in range(kh):  # one copy per kernel row: long runs for the copy loop
            block[:, :, :, :, ky] = windows[:, n0:n1, :, :, ky]
        rows = block.view(2 * (n1 - n0) * per_image, -1).view(torch.int8)
        digit_matmul_into(flat_out[n0 * per_image:n1 * per_image], rows, w, column_term)
    return out


# ---------------------------------------------------------------- products


def conv2d(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
           bits: tuple[int, int], bias: torch.Tensor | None = None) -> torch.Tensor:
    """Exact int64 ``F.conv2d(x, weight, bias, stride, padding)`` of integers of ``bits`` (x, weight) bits."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = tuple(stride), tuple(padding)
    out_hw = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    def run(path: str) -> torch.Tensor:
        if path == "native":
            return native.conv_acc(x, weight, False, (ph, pw, 1, 1), (h + 2 * ph, w + 2 * pw), (sh, sw), out_hw,
                                   bias).permute(0, 3, 1, 2)
        if path == "float64":
            acc = F.conv2d(x.to(torch.float64), weight.to(torch.float64), None, stride, padding).to(torch.int64)
            return acc if bias is None else acc.add_(bias[:, None, None])
        return _im2col_convolve(x, weight, weight, "conv2d", (ph, pw), (h + 2 * ph, w + 2 * pw), (1, 1), (sh, sw),
                                out_hw, path == "digits", bias).permute(0, 3, 1, 2)

    key = ("conv2d", tuple(x.shape), tuple(weight.shape), (sh, sw), (ph, pw), bits, bias is not None)
    return _run(key, exact_paths(c * kh * kw, *bits, digit_terms=_digit_channels(c) * kh * kw), run)


def conv_transpose2d(g: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
                     output_padding: tuple[int, int], bits: tuple[int, int]) -> torch.Tensor:
    """Exact int64 ``F.conv_transpose2d(g, weight, None, stride, padding, output_padding)``.

    On the im2col paths: a stride-1 convolution of g spread out by the stride, framed by
    kh-1-p rows above and kh-1-p+output_padding below (a negative frame crops), with the
    rotated kernel.
    """
    n, o, oh, ow = g.shape
    _, c, kh, kw = weight.shape
    (sh, sw), (ph, pw), (eh, ew) = tuple(stride), tuple(padding), tuple(output_padding)
    h, w = (oh - 1) * sh - 2 * ph + kh + eh, (ow - 1) * sw - 2 * pw + kw + ew

    def run(path: str) -> torch.Tensor:
        if path == "native":
            return native.conv_acc(g, weight, True, (kh - 1 - ph, kw - 1 - pw, sh, sw), (h + kh - 1, w + kw - 1),
                                   (1, 1), (h, w), None).permute(0, 3, 1, 2)
        if path == "float64":
            return F.conv_transpose2d(g.to(torch.float64), weight.to(torch.float64), None, stride, padding,
                                      output_padding).to(torch.int64)
        rotated = weight.flip(2, 3).transpose(0, 1)
        return _im2col_convolve(g, rotated, weight, "conv_transpose2d", (kh - 1 - ph, kw - 1 - pw),
                                (h + kh - 1, w + kw - 1), (sh, sw), (1, 1), (h, w),
                                path == "digits").permute(0, 3, 1, 2)

    key = ("conv_transpose2d", tuple(g.shape), tuple(weight.shape), (sh, sw), (ph, pw), (eh, ew), bits)
    return _run(key, exact_paths(o * kh * kw, *bits, digit_terms=_digit_channels(o) * kh * kw), run)


def _matmul(a: torch.Tensor, b: torch.Tensor, owner: torch.Tensor, role: str, bits: tuple[int, int],
            bias: torch.Tensor | None) -> torch.Tensor:
    m, k = a.shape

    def run(path: str) -> torch.Tensor:
        if path == "native":
            return native.matmul_acc(a, b, owner, (role,), bias)
        if path == "digits":
            acc = torch.empty((m, b.shape[1]), dtype=torch.int64)
            w = _cached_digit_weights(owner, (role,), lambda: b)
            digit_matmul_into(acc, digit_planes(a).view(2 * m, k), w, None if bias is None else w.column_term + bias)
            return acc
        if path == "float64":
            acc = (a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)
        else:
            acc = a.to(torch.int64) @ b.to(torch.int64)
        return acc if bias is None else acc.add_(bias)

    key = (role, tuple(a.shape), tuple(b.shape), bits, bias is not None)
    return _run(key, exact_paths(k, *bits), run)


def linear(x: torch.Tensor, weight: torch.Tensor, bits: tuple[int, int], bias: torch.Tensor | None = None) -> torch.Tensor:
    """Exact int64 ``x @ weight.T (+ bias)`` of integers of ``bits`` (x, weight) bits; x (N, I), weight (O, I)."""
    return _matmul(x, weight.T, weight, "linear", bits, bias)


def linear_transposed(g: torch.Tensor, weight: torch.Tensor, bits: tuple[int, int]) -> torch.Tensor:
    """Exact int64 ``g @ weight`` (a linear layer's input gradient); g (N, O), weight (O, I)."""
    return _matmul(g, weight, weight, "linear_transposed", bits, None)


# ---------------------------------------------------------------- windows and requantization


def _taps(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]) -> list:
    """Views (N, C, OH, OW) of each window tap of x (N, C, H, W), in raster order."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    return [x[:, :, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw] for ky in range(kh) for kx in range(kw)]


def _pooled_hw(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:
    return (x.shape[2] - kernel[0]) // stride[0] + 1, (x.shape[3] - kernel[1]) // stride[1] + 1


def max_pool(x: torch.Tensor, rank: torch.Tensor | None, kernel: tuple[int, int],
             stride: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's value of x at the first maximum of ``rank`` (x if None) in raster order, and its tap.

    The tap (N, C, OH, OW) is uint8 (int32 for windows of more than 256 taps). A running
    maximum over the taps, replaced only by a strictly larger value, keeps the first.
    """
    taps = torch.stack(_taps(x if rank is None else rank, kernel, stride, _pooled_hw(x, kernel, stride)))
    best = taps[0].clone()
    index = torch.zeros(best.shape, dtype=torch.uint8 if len(taps) <= 256 else torch.int32)
    for t in range(1, len(taps)):
        index.masked_fill_(taps[t] > best, t)
        torch.maximum(best, taps[t], out=best)
    if rank is None:
        return best, index
    values = torch.stack(_taps(x, kernel, stride, best.shape[2:]))
    return values.gather(0, index[None].to(torch.int64))[0], index


def max_pool_backward(g: torch.Tensor, index: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                      in_hw: tuple[int, int]) -> torch.Tensor:
    """Each gradient (N, C, OH, OW) routed to its window's kept tap on a zero (N, C, H, W) int64 map, summed."""
    routed = torch.zeros((kernel[0] * kernel[1], *g.shape), dtype=torch.int64)
    routed.scatter_(0, index[None].to(torch.int64), g[None])
    return scatter_windows(routed.permute(1, 2, 3, 4, 0), kernel, stride, in_hw)


def window_sum(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Each window's int64 sum (N, C, OH, OW)."""
    taps = _taps(x, kernel, stride, _pooled_hw(x, kernel, stride))
    total = taps[0].clone()
    for tap in taps[1:]:
        total += tap
    return total


def scatter_windows(per_position: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                    in_hw: tuple[int, int]) -> torch.Tensor:
    """(N, C, OH, OW, kh*kw) values back onto a zero (N, C, H, W) int64 map, summed where windows overlap.

    One strided add per kernel tap (integer adds: exact); windows that do not overlap
    are copied instead.
    """
    n, c, oh, ow, _ = per_position.shape
    (kh, kw), (sh, sw), (h, w) = kernel, stride, in_hw
    out = torch.zeros((n, c, h, w), dtype=torch.int64)
    overlap = sh < kh or sw < kw
    for t, dst in enumerate(_taps(out, kernel, stride, (oh, ow))):
        if overlap:
            dst += per_position[..., t]
        else:
            dst.copy_(per_position[..., t])
    return out


def round_shift(acc: torch.Tensor, shift: int) -> torch.Tensor:
    """``numerics.round_shift(acc, shift)`` in two passes, for |acc| < 2^62.

    ``(acc + 2^(shift-1)) >> shift`` is the contract's rounding; numerics writes it so that it
    cannot overflow for any int64, which costs a third pass. Every value the golden model
    rounds is below 2^48 (its accumulators are checked at 48 bits), far from overflowing.
    """
    if not 0 < shift < 63:
        return numerics.round_shift(acc, shift)
    out = acc + (1 << (shift - 1))
    out >>= shift
    return out


def saturate_counted(wide: torch.Tensor, fmt: FixedFormat) -> tuple[torch.Tensor, int]:
    """``numerics.saturate(wide, fmt)`` and ``numerics.count_saturated(wide, fmt)``.

    One reading pass (the extremes) when nothing saturates, which is the usual case; the
    result is then ``wide`` itself.
    """
    if wide.numel() == 0:
        return wide, 0
    low, high = torch.aminmax(wide)
    if low >= fmt.qmin and high <= fmt.qmax:
        return wide, 0
    return numerics.saturate(wide, fmt), numerics.count_saturated(wide, fmt)
