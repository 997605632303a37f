"""The numerics contract, checked against an independent formulation in exact rationals."""

from fractions import Fraction
from math import floor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xaihls.errors import XaiHlsError
from xaihls.numerics import FixedFormat, dequantize, quantize, requantize, round_shift, saturate


def ref_requantize(acc: int, acc_frac: int, width: int, frac: int) -> int:
    """Round half up to the output grid, then clamp: in exact rationals."""
    value = Fraction(acc, 1) / Fraction(2) ** acc_frac
    q = floor(value * Fraction(2) ** frac + Fraction(1, 2))
    return max(-(2 ** (width - 1)), min(2 ** (width - 1) - 1, q))


def ref_quantize(x: float, width: int, frac: int) -> int:
    q = floor(Fraction(x) * Fraction(2) ** frac + Fraction(1, 2))
    return max(-(2 ** (width - 1)), min(2 ** (width - 1) - 1, q))


formats = st.builds(FixedFormat, st.integers(4, 24), st.integers(-8, 30))


@settings(max_examples=400, deadline=None)
@given(acc=st.lists(st.integers(-(2**47), 2**47 - 1), min_size=1, max_size=20),
       acc_frac=st.integers(-4, 40), fmt=formats)
def test_requantize_matches_exact_rationals(acc, acc_frac, fmt):
    got = requantize(torch.tensor(acc, dtype=torch.int64), acc_frac, fmt).tolist()
    assert got == [ref_requantize(a, acc_frac, fmt.width, fmt.frac) for a in acc]


@settings(max_examples=400, deadline=None)
@given(x=st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=20), fmt=formats)
def test_quantize_matches_exact_rationals(x, fmt):
    got = quantize(torch.tensor(x, dtype=torch.float32), fmt).tolist()
    assert got == [ref_quantize(float(torch.tensor(v, dtype=torch.float32)), fmt.width, fmt.frac) for v in x]


@settings(max_examples=200, deadline=None)
@given(q=st.integers(-(2**15), 2**15 - 1), fmt_frac=st.integers(-4, 20))
def test_dequantize_then_quantize_is_identity(q, fmt_frac):
    fmt = FixedFormat(16, fmt_frac)
    t = torch.tensor([q])
    assert quantize(dequantize(t, fmt), fmt).tolist() == [q]


def test_exact_halves_round_up_for_both_signs():
    # 2.5 -> 3, -2.5 -> -2 (half up, not half away from zero, not half even)
    acc = torch.tensor([5, -5, 3, -3, 1, -1, 7, -7])
    assert round_shift(acc, 1).tolist() == [3, -2, 2, -1, 1, 0, 4, -3]
    fmt = FixedFormat(16, 0)
    assert quantize(torch.tensor([2.5, -2.5, 0.5, -0.5, -1.5]), fmt).tolist() == [3, -2, 1, 0, -1]


def test_saturation_at_both_ends():
    fmt = FixedFormat(8, 0)
    assert saturate(torch.tensor([-1000, -129, -128, 127, 128, 1000]), fmt).tolist() == [-128, -128, -128, 127, 127, 127]
    # rounding that lands one past the top saturates
    assert requantize(torch.tensor([(127 << 4) + 8]), 4, fmt).tolist() == [127]
    assert requantize(torch.tensor([(-128 << 4) - 9]), 4, fmt).tolist() == [-128]
    assert requantize(torch.tensor([(-128 << 4) - 8]), 4, fmt).tolist() == [-128]


def test_negative_shift_is_exact_left_shift_then_saturation():
    fmt = FixedFormat(16, 10)
    assert requantize(torch.tensor([3, -3, 1 << 14]), 8, fmt).tolist() == [12, -12, 32767]


@pytest.mark.parametrize("max_abs,frac", [(1.0, 14), (0.99, 15), (1.01, 14), (6.0, 12), (0.001, 24), (0.0, 15), (0.99999, 14)])
def test_covering_format_is_finest_that_holds_the_range(max_abs, frac):
    fmt = FixedFormat.covering(max_abs, 16)
    assert fmt.frac == frac
    assert fmt.max_value >= max_abs
    assert FixedFormat(16, fmt.frac + 1).max_value < max_abs or max_abs == 0


def test_ap_type_names_integer_bits():
    assert FixedFormat(16, 10).ap_type() == "ap_fixed<16,6,AP_RND,AP_SAT>"
    assert FixedFormat(16, 18).int_bits == -2


def test_bad_width_is_refused():
    with pytest.raises(XaiHlsError, match="width 1"):
        FixedFormat(1, 0)
