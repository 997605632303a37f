"""The executor interface: one protocol that golden, program, csim and rtl implement.

Every executor takes the same ``RunArgs`` (checked and quantized here, once, for all of
them: a bad argument gets the same one-line ``XaiHlsError`` whatever the backend, before any
work starts) and returns a ``RunResult``; each publishes its ``Capabilities``, which
``xaihls.compile`` checks a network against (``xaihls.plan.capabilities.refusal``).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Protocol

import torch

from xaihls.errors import XaiHlsError
from xaihls.methods import Method, PostProcess, get_method, ig_constants
from xaihls.numerics import ACCUMULATOR_BITS, FixedFormat, count_saturated, quantize, round_to_grid, saturate
from xaihls.plan.contract import network_image, view_phases
from xaihls.quant.qgraph import QGraph

if TYPE_CHECKING:  # the plan stage comes after this module; only its type is named here
    from xaihls.plan.planner_v2 import PlanV2 as Plan


@dataclass(frozen=True)
class RunResult:
    """One run on any backend: integer results with their formats.

    ``saturations``: values that saturated, by where. The golden model counts every tensor
    it requantizes (``input``, ``<layer>``, ``<layer>.grad``, ``ig_path``, ``ig_sum``,
    ``attribution``); the hardware executors count what their engine requantizes, by kind
    (``input``: the host's quantization; ``forward``, ``backward``, ``post``: the engine's
    counters, docs/contract.md; golden's ``grad_cam.weights`` and ``grad_cam`` count as ``post``,
    where the engine's Grad-CAM list counts them). Only non-zero counts appear. ``cycles``: engine clock cycles
    of each image, start to done, from the cycle-accurate backend (``rtl``); None elsewhere. The
    images of an image batch (one engine start for the Program's ``batch`` images) share their
    start's cycles: each carries cycles // batch, the first also the remainder.
    """

    logits: torch.Tensor
    logits_fmt: FixedFormat
    target: torch.Tensor
    attribution: torch.Tensor | None
    attribution_fmt: FixedFormat | None
    saturations: dict[str, int]
    cycles: list[int] | None = None


SATURATION_KINDS = ("input", "forward", "backward", "post")


def saturation_kinds(counts: dict[str, int]) -> dict[str, int]:
    """Golden's per-tensor counts summed into the hardware's kinds (input, forward, backward, post)."""
    out = dict.fromkeys(SATURATION_KINDS, 0)
    for where, n in counts.items():
        if where in SATURATION_KINDS:
            kind = where
        elif where in ("ig_path", "ig_sum", "attribution", "grad_cam.weights", "grad_cam"):
            kind = "post"
        elif where.endswith(".grad"):
            kind = "backward"
        else:
            kind = "forward"
        out[kind] += n
    return {k: v for k, v in out.items() if v}


def attribution_format(qg: QGraph, method: str) -> FixedFormat:
    """The format of ``method``'s attribution (what the post-processing unit writes)."""
    m = get_method(method)
    if m.post is PostProcess.GRAD_CAM:
        return qg.attribution_formats.grad_cam
    if m.post is PostProcess.GUIDED_GRAD_CAM:
        return qg.attribution_formats.guided_grad_cam
    if m.post is PostProcess.INTEGRATED:
        return qg.attribution_formats.integrated_gradients
    if m.post is PostProcess.TIMES_INPUT:
        return qg.attribution_formats.input_x_gradient
    return qg.grad_fmt(m.relu_backward, 0)


def engine_result(qg: QGraph, header: dict, args: "RunArgs", logits: torch.Tensor, targets: torch.Tensor,
                  attribution: torch.Tensor | None, counters, cycles: list[int] | None = None) -> RunResult:
    """A hardware executor's RunResult: its integer outputs, formats, and saturations (the host's
    input count and the engine's counters summed over the batch, by kind). ``header``: the Program's, whose
    image view the attribution is in."""
    totals = [sum(int(c[k]) for c in counters) for k in range(3)]
    counts = {"input": args.input_saturations, "forward": totals[0], "backward": totals[1], "post": totals[2]}
    fmt = attribution_format(qg, args.method) if args.method else None
    if attribution is not None:  # in the network's shape (the image may run as its first stride's phases)
        attribution = network_image(attribution, qg.graph.input_shape, view_phases(header, qg.graph.input_shape))
    return RunResult(logits, qg.logits_fmt, targets, attribution, fmt, {k: v for k, v in counts.items() if v}, cycles)


def check_batch(qg: QGraph, x, what: str = "input") -> torch.Tensor:
    """A float batch (N >= 1, C, H, W) of the compiled input shape, or a clear error. A 1-D model's
    batch (N, C, L) comes back as the graph's maps (N, C, 1, L)."""
    graph = qg.graph
    expected = f"(N, {', '.join(map(str, graph.data_shape))})"
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError):
        raise XaiHlsError(f"{what} must be a tensor or array of shape {expected}, got {type(x).__name__}") from None
    t = graph.as_batch(t)
    if t is None:
        raise XaiHlsError(f"{what} has shape {tuple(torch.as_tensor(x).shape)}; the model was compiled for {expected}")
    if t.shape[0] == 0:
        raise XaiHlsError(f"{what} is an empty batch (N = 0); give at least one image")
    if t.dtype == torch.bool or t.is_complex():
        raise XaiHlsError(f"{what} must hold real numbers, got dtype {t.dtype}")
    if not torch.is_floating_point(t):
        t = t.to(torch.float64)
    if not torch.isfinite(t).all():
        raise XaiHlsError(f"{what} contains NaN or infinite values")
    return t


def check_target(qg: QGraph, target, n: int) -> torch.Tensor | None:
    """One class index, or one per image, each in range; None: the predicted class."""
    if target is None:
        return None
    classes = qg.graph.num_classes

    def bad() -> XaiHlsError:  # made only when raised: printing a tensor costs milliseconds
        return XaiHlsError(f"target must be one class or one per image, integers in 0..{classes - 1}; got {target!r}")

    if isinstance(target, bool):
        raise bad()
    if isinstance(target, Integral):
        t = torch.tensor([int(target)], dtype=torch.int64)
    else:
        try:
            a = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError):
            raise bad() from None
        if a.dtype == torch.bool or a.is_floating_point() or a.is_complex():
            raise bad()  # 2.7 is not a class: never truncate it
        t = a.to(torch.int64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).contiguous()
    if t.numel() != n or (t < 0).any() or (t >= classes).any():
        raise bad()
    return t


def check_method(qg: QGraph, method: str) -> Method:
    """The method, if ``qg`` was calibrated for it; else a clear error."""
    m = get_method(method)
    if method not in qg.methods:
        raise XaiHlsError(
            f"method '{method}' was not compiled in (compiled: {', '.join(qg.methods)}); "
            f"pass it in methods= when compiling"
        )
    return m


def check_steps(qg: QGraph, steps: int | None, rule: str | None, max_steps: int | None = None) -> tuple[int, str]:
    """Integrated-gradients steps and rule of a run (compiled defaults), checked against the
    accumulator and, for hardware executors, the largest number their IG table holds."""
    steps = qg.ig_steps if steps is None else steps
    rule = qg.ig_rule if rule is None else rule
    ig_constants(steps, rule, qg.width)  # validates both
    if steps * (1 << (2 * (qg.width - 1))) >= 1 << (ACCUMULATOR_BITS - 1):
        raise XaiHlsError(f"integrated_gradients: {steps} steps can overflow the accumulator")
    if max_steps is not None and steps > max_steps:
        raise XaiHlsError(f"integrated_gradients steps must be 2..{max_steps} on this backend, got {steps}")
    return steps, rule


def quantize_input(qg: QGraph, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The input codes (round half up, saturate) and how many values saturated."""
    wide = round_to_grid(x, qg.input_fmt)
    return saturate(wide, qg.input_fmt), count_saturated(wide, qg.input_fmt)


def quantize_baseline(qg: QGraph, baseline, x_q: torch.Tensor) -> torch.Tensor:
    """The integrated-gradients baseline in the input format, one per image (zeros by default)."""
    if baseline is None:
        return torch.zeros_like(x_q)
    try:
        b = torch.as_tensor(baseline)
    except (TypeError, ValueError, RuntimeError):
        raise XaiHlsError(f"baseline must be a number, tensor or array, got {type(baseline).__name__}") from None
    if b.dtype == torch.bool or b.is_complex():
        raise XaiHlsError(f"baseline must hold real numbers, got dtype {b.dtype}")
    if qg.graph.sample_shape and tuple(b.shape[-len(qg.graph.sample_shape):]) == qg.graph.sample_shape:
        b = b.reshape(*b.shape[:-len(qg.graph.sample_shape)], *qg.graph.input_shape)  # a 1-D model's (C, L)
    try:
        b = b.to(torch.float64).expand_as(x_q.to(torch.float64))
    except RuntimeError:
        raise XaiHlsError(
            f"baseline has shape {tuple(b.shape)}; it must broadcast to the input {tuple(x_q.shape)}"
        ) from None
    if not torch.isfinite(b).all():
        raise XaiHlsError("baseline contains NaN or infinite values")
    return quantize(b, qg.input_fmt)


@dataclass(frozen=True)
class RunArgs:
    """A run's arguments after every check: the float batch and its codes, method, target,
    integrated-gradients steps, rule and baseline (codes; zeros by default)."""

    x: torch.Tensor
    x_q: torch.Tensor
    input_saturations: int
    method: str | None
    target: torch.Tensor | None
    steps: int
    rule: str
    baseline: object
    baseline_q: torch.Tensor


def prepare(qg: QGraph, x, method: str | None = None, target=None, steps: int | None = None, baseline=None,
            rule: str | None = None, max_steps: int | None = None) -> RunArgs:
    """Check and quantize a run's arguments (``max_steps``: the executor's IG-table limit)."""
    if method is not None:
        check_method(qg, method)
    x = check_batch(qg, x)
    target = check_target(qg, target, x.shape[0])
    x_q, saturated = quantize_input(qg, x)
    is_ig = method is not None and get_method(method).post is PostProcess.INTEGRATED
    steps, rule = check_steps(qg, steps, rule, max_steps if is_ig else None)
    baseline_q = quantize_baseline(qg, baseline, x_q)
    return RunArgs(x, x_q, saturated, method, target, steps, rule, baseline, baseline_q)


@dataclass(frozen=True)
class Capabilities:
    """An executor's limits (None: no limit); ``xaihls.plan.capabilities.refusal`` checks each."""

    executor: str
    needs_plan: bool = True            # runs the Program (every executor but golden)
    data_widths: tuple[int, ...] | None = None
    array_sizes: tuple[int, ...] | None = None  # the values Tm and Tn may take
    max_ig_steps: int | None = None


class Executor(Protocol):
    """Runs a compiled network: the same arguments and result type on every backend."""

    capabilities: Capabilities

    def run(self, qg: QGraph, plan: "Plan | None", args: RunArgs) -> RunResult:
        """Bit-exact with the golden model for predict (``args.method`` None) and every method."""
        ...
