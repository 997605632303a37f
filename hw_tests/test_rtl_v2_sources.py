"""Engine v2 RTL: CONV jobs with two sources and operand shifts (contract v6: src_b, xs_a*, xs_b*;
docs/engine_v2.md, "The CONV job") equal the Program interpreter for predict and the three ReLU
rules (gradient: plain, guided backprop: guided, deconvnet: deconvnet), logits, attributions and
saturation counters, also under random AXI stalls.

No lowering emits such jobs yet, so the Programs here are a compiled net's jobs with the fields set
by hand: every CONV job of two or more n-tiles gets a second source starting inside it (its shifts
differ per ReLU mode on the backward list, as the contract allows; the forward list has one value
for the three modes, as a lowering gives it), one forward job keeps a single source with a shift,
and the shifts reach MAX_X_SHIFT. The cases cover an UNPOOL + GATE job, DIAG jobs whose n-tiles are those
of the m-tile (at 4 x 4 one n-tile an m-tile: the split falls between m-tiles; at 16 x 8 two: it
falls inside one). A test checks that each case's results depend on src_b and on the shifts."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import (
    IG_STEPS,
    SHAPES,
    STALL_PROBABILITY,
    compiled,
    runs,
    shared_params,
)
from xaihls.backends.rtl.v2 import sim
from xaihls.backends.rtl.v2.params import rtl_params
from xaihls.plan.contract import MAX_X_SHIFT, Flag, Op
from xaihls.plan.lowering import encode, lower_jobs
from xaihls.sim.interpreter import Engine as Interpreter

# predict and a method of each ReLU rule (the shifts of mode 0, 1, 2)
METHODS = (None, "gradient", "guided_backprop", "deconvnet")
CASES = [("digits", "4x4"), ("edge6", "4x4"), ("edge6", "16x8")]
# (xs_a0, xs_a1, xs_a2, xs_b0, xs_b1, xs_b2) in turn; the forward list uses each pattern's mode-0 pair
SHIFTS = ((0, 2, 1, 3, 0, 5), (2, 0, 4, 0, 3, 1), (1, 3, 0, MAX_X_SHIFT, 2, 0), (3, 1, 2, 1, MAX_X_SHIFT, 4))
SINGLE = 2  # the single-source (forward) job's xs_a0..2; its xs_b* are set but unused (src_b = 0)


def _sourced(d, k: int, backward: bool, single: bool):
    """Job ``d`` with a second source from about two thirds of its n-tiles on (``single``: one source,
    shifted), with the k-th shift pattern."""
    if single:
        return dataclasses.replace(d, src_b=0, xs_a0=SINGLE, xs_a1=SINGLE, xs_a2=SINGLE, xs_b0=7, xs_b1=7, xs_b2=7)
    s = SHIFTS[k % len(SHIFTS)]
    a, b = (s[:3], s[3:]) if backward else ((s[0],) * 3, (s[3],) * 3)
    return dataclasses.replace(d, src_b=max(1, 2 * d.n_tiles // 3), xs_a0=a[0], xs_a1=a[1], xs_a2=a[2],
                               xs_b0=b[0], xs_b1=b[1], xs_b2=b[2])


def _split(jobs, backward: bool, kept: bool = True):
    """Every CONV job of two or more n-tiles with sources (the forward list's last such job, when it
    has three, with one source); ``kept=False``: the plain jobs back (for the sensitivity check).
    Every backward one is split: a padded convolution's backward pass (kernel reversed) reads inside
    the map at its tile's last position, so the operands just before an n-tile boundary are not pad
    zeros, and a shift that changes with the wrong column's operands shows."""
    picked = [i for i, d in enumerate(jobs) if d.op == Op.CONV and d.n_tiles >= 2 and d.passes]
    out = list(jobs)
    if kept:
        for k, i in enumerate(picked):
            out[i] = _sourced(jobs[i], k, backward, single=not backward and k == len(picked) - 1 and len(picked) > 2)
    return tuple(out), [jobs[i] for i in picked]


@functools.cache
def sourced_program(name: str, shape: str, variant: str = "sources"):
    """The net's Program with sourced jobs; ``variant``: "sources", or "no_src_b" (the same shifts with
    src_b = 0: every n-tile shifted as the first source) and "plain" (no shifts) for the sensitivity check."""
    acc, _ = compiled(name)
    lowered = lower_jobs(acc.qgraph, SHAPES[shape][0], batch=2)
    forward, fpicked = _split(lowered.forward, False, variant != "plain")
    backward, bpicked = _split(lowered.backward, True, variant != "plain")
    if variant == "no_src_b":
        forward, backward = (tuple(dataclasses.replace(d, src_b=0) if d.op == Op.CONV else d for d in jobs)
                             for jobs in (forward, backward))
    return encode(dataclasses.replace(lowered, forward=forward, backward=backward), SHAPES[shape][1]), fpicked, bpicked


@functools.cache
def interpreted(name: str, shape: str, variant: str = "sources") -> tuple:
    """The interpreter's (logits, result record, attribution) per method."""
    prog = sourced_program(name, shape, variant)[0]
    out = []
    for run in runs(name, METHODS):
        engine = Interpreter(prog)
        engine.load_inputs(run["image"], None, IG_STEPS, "trapezoid")
        ref = engine.run(run["method"], -1, IG_STEPS)[0]
        out.append((ref.logits.astype(np.int64), [ref.predicted, ref.target, *ref.saturations],
                    None if ref.attribution is None else ref.attribution.astype(np.int64)))
    return tuple(out)


@pytest.mark.parametrize("name,shape", CASES)
def test_cases_have_what_they_claim(name, shape):
    """The sourced jobs: forward and backward ones, UNPOOL + GATE (digits) and DIAG (edge6), some
    whose DIAG m-tiles span the split; and their results depend on src_b and on the shifts (else a
    hardware ignoring them would pass)."""
    prog, fpicked, bpicked = sourced_program(name, shape)
    assert fpicked and bpicked
    jobs = fpicked + bpicked
    if name == "digits":
        assert any(d.unpool and d.has(Flag.GATE) for d in bpicked)
    else:
        assert any(d.has(Flag.DIAG) for d in fpicked) and any(d.has(Flag.DIAG) for d in bpicked)
        per = SHAPES[shape][0].tm // SHAPES[shape][0].tn
        assert any(d.has(Flag.DIAG) and d.m_tiles >= 2 for d in jobs) if per == 1 else \
            any(d.has(Flag.DIAG) and d.n_tiles >= 2 and d.m_tiles == 1 for d in jobs)
    shifts = [v for d in prog.all_jobs for v in (d.xs_a0, d.xs_a1, d.xs_a2, d.xs_b0, d.xs_b1, d.xs_b2)]
    assert max(shifts) <= MAX_X_SHIFT
    assert rtl_params(prog).covering(shared_params(shape)) == shared_params(shape)
    want = interpreted(name, shape)
    for variant in ("no_src_b", "plain"):
        other = interpreted(name, shape, variant)
        for m, (a, b) in zip(METHODS, zip(want, other)):
            differ = not np.array_equal(a[0], b[0]) or a[1] != b[1] or (
                a[2] is not None and not np.array_equal(a[2], b[2]))
            assert differ, f"{name} {shape} {m or 'predict'}: the same results as the Program '{variant}'"


def _check(name: str, shape: str, stalls: float):
    prog = sourced_program(name, shape)[0]
    out = sim.simulate(prog, shared_params(shape), runs(name, METHODS), stalls=stalls, seed=sum(map(ord, name + shape)))
    for m, (logits, record, attribution), r in zip(METHODS, interpreted(name, shape), out):
        what = f"{name} {shape} {m or 'predict'} stalls={stalls}"
        assert r["status"] == 0, f"{what}: status {r['status']:#x}"
        assert np.array_equal(r["logits"], logits), f"{what}: logits {r['logits'].tolist()} != {logits.tolist()}"
        assert r["result"].tolist() == record, f"{what}: result record {r['result'].tolist()} != {record}"
        if attribution is not None:
            bad = int((r["attribution"] != attribution).sum())
            assert bad == 0, f"{what}: attribution differs in {bad} of {attribution.size} elements"
    return out


@pytest.mark.parametrize("name,shape", CASES)
def test_rtl_v2_two_sources_and_shifts_equal_the_interpreter(name, shape):
    _check(name, shape, 0.0)


def test_rtl_v2_two_sources_under_random_axi_stalls():
    _check("edge6", "16x8", STALL_PROBABILITY)
