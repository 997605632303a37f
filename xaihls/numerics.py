"""The numerics contract: fixed-point formats, quantization, requantization, saturation.

Every executor (golden model, program interpreter, the C++ library, the RTL) follows
these definitions; nothing else derives a shift or a rounding rule on its own.

- ``FixedFormat(width, frac)``: signed two's complement, value = q * 2**-frac.
- Rounding is round-half-up on the integer grid (ap_fixed ``AP_RND``):
  ``(acc + 2**(s-1)) >> s`` with an arithmetic shift, for s = acc_frac - out_frac > 0;
  a left shift for s <= 0.
- Saturation clamps to [-2**(width-1), 2**(width-1) - 1] (ap_fixed ``AP_SAT``).
- Integers are torch int64 tensors: products of two 16-bit values and their sums over
  any supported fan-in fit with room to spare (the 48-bit accumulator check is done
  when a network is quantized).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xaihls.errors import XaiHlsError

if TYPE_CHECKING:  # torch is imported where a tensor function runs: the host side needs numpy only
    import torch

ACCUMULATOR_BITS = 48
"""Width of the wide accumulator (a DSP48's P register); sums never exceed it."""

MAX_X_SHIFT = 9
"""The largest left shift of a two-source job's operands (descriptor xs_*): a 16-bit operand shifted by 9
fills the 25-bit multiplier input of a DSP48, so the shift costs no DSP."""

WEIGHT_SHIFT = 14
"""The largest power of two an identity term's weight carries (an int16 code); past it, the operand shift."""


@dataclass(frozen=True, order=True)
class FixedFormat:
    """A signed fixed-point format: ``width`` bits, ``frac`` of them after the point.

    ``frac`` may be negative (coarser than 1) or exceed ``width`` (all fraction).
    """

    width: int
    frac: int

    def __post_init__(self) -> None:
        if not 2 <= self.width <= 32:
            raise XaiHlsError(f"fixed-point width {self.width} is not supported; use 2..32 bits")

    @property
    def int_bits(self) -> int:
        """Integer bits including the sign (ap_fixed's I)."""
        return self.width - self.frac

    @property
    def qmin(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def max_value(self) -> float:
        return self.qmax * self.lsb

    def ap_type(self) -> str:
        """The matching Vitis HLS type, e.g. ``ap_fixed<16,6,AP_RND,AP_SAT>``."""
        return f"ap_fixed<{self.width},{self.int_bits},AP_RND,AP_SAT>"

    def __str__(self) -> str:
        return f"fixed<{self.width},{self.frac}>"

    @classmethod
    def covering(cls, max_abs: float, width: int = 16, headroom: float = 1.0) -> "FixedFormat":
        """The finest format of ``width`` bits whose largest value is at least ``max_abs * headroom``.

        (So a calibrated maximum never saturates: inputs in [0, 1] get a format that holds 1.0.)
        """
        top = float(max_abs) * float(headroom)
        if not math.isfinite(top):
            raise XaiHlsError(f"cannot choose a fixed-point format for a non-finite range ({max_abs})")
        if top <= 0.0:
            # An all-zero tensor: any format represents it; pick one with 1 integer bit.
            return cls(width, width - 1)
        frac = width - 1 - math.ceil(math.log2(top))
        if ((1 << (width - 1)) - 1) * 2.0 ** -frac < top:
            frac -= 1
        return cls(width, frac)


def round_shift(acc: torch.Tensor, shift: int) -> torch.Tensor:
    """Move ``acc`` from fraction F to F - shift, rounding half up (no saturation).

    ``((acc >> (shift-1)) + 1) >> 1`` equals ``(acc + 2**(shift-1)) >> shift`` and cannot
    overflow. A left shift pins results beyond +-2**62 there: they saturate any format.
    """
    if shift > 0:
        return ((acc >> min(shift - 1, 63)) + 1) >> 1
    left = min(-shift, 62)
    bound = 1 << (62 - left)
    return acc.clamp(-bound, bound) << left


def saturate(q: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Clamp integers to the format's range."""
    return q.clamp(fmt.qmin, fmt.qmax)


def count_saturated(q: torch.Tensor, fmt: FixedFormat) -> int:
    """How many elements of the (unsaturated) integers lie outside the format's range."""
    return int(((q < fmt.qmin) | (q > fmt.qmax)).sum())


def requantize(acc: torch.Tensor, acc_frac: int, fmt: FixedFormat) -> torch.Tensor:
    """Round ``acc`` (fraction ``acc_frac``) half up to ``fmt.frac``, then saturate."""
    return saturate(round_shift(acc, acc_frac - fmt.frac), fmt)


def round_to_grid(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Real values to integers of ``fmt``'s grid, rounding half up, not yet saturated.

    Scaling by a power of two is exact in float64, so the only rounding is this one.
    """
    import torch

    scaled = x.detach().to(torch.float64) * (2.0 ** fmt.frac)
    top = float(1 << 62)
    return torch.floor(scaled.clamp(-top, top) + 0.5).to(torch.int64)


def quantize(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Real values to integers of ``fmt``: round half up, then saturate (int64 result)."""
    return saturate(round_to_grid(x, fmt), fmt)


def dequantize(q: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Integers of ``fmt`` to float64 values (exact)."""
    import torch

    return q.to(torch.float64) * fmt.lsb


def quantize_array(x, fmt: FixedFormat) -> np.ndarray:
    """``quantize`` on numpy (the host side: a driver, the IG constants): the same round half up
    on the grid (a scaling by a power of two is exact in float64), then saturation."""
    scaled = np.asarray(x, dtype=np.float64) * (2.0 ** fmt.frac)
    top = float(1 << 62)
    return np.clip(np.floor(np.clip(scaled, -top, top) + 0.5), fmt.qmin, fmt.qmax).astype(np.int64)


def align_terms(bases: list[list[int]], identity: list[bool]) -> tuple[list[int], list[list[int]], list[int]] | None:
    """How the engine sums two terms exactly (a gradient sum, an Add): ``bases[s][m]``, the fraction of
    source s's products under ReLU mode m (a convolution's: its gradient's plus its weights'; an
    identity's: its operand's). An identity source's weight is 2^e (e up to WEIGHT_SHIFT, the same in
    every mode); every source's operands are shifted left by xs[s][m] (up to MAX_X_SHIFT) so that all
    terms meet at fraction frac[m]. Returns (e per source, xs per source and mode, frac per mode), the
    largest shift the least, or None where no shifts reach."""
    modes = range(len(bases[0]))
    best = None
    for e in itertools.product(*[range(WEIGHT_SHIFT + 1) if ident else (0,) for ident in identity]):
        frac = [max(b[m] + k for b, k in zip(bases, e)) for m in modes]
        xs = [[frac[m] - b[m] - k for m in modes] for b, k in zip(bases, e)]
        worst = max(max(x) for x in xs)
        if worst <= MAX_X_SHIFT and (best is None or worst < best[0]):
            best = (worst, list(e), xs, frac)
    return None if best is None else (best[1], best[2], best[3])
