"""The attribution methods: their names, ReLU-backward rules and integration rules.

The names are part of the API. Every executor reads its rule from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from xaihls.errors import XaiHlsError
from xaihls.numerics import FixedFormat, quantize_array


class ReluBackward(IntEnum):
    """How the gradient g passes a ReLU whose forward input was x (values go in the Program)."""

    MASK = 0  # g * [x > 0]                 (true gradient)
    GUIDED = 1  # g * [x > 0] * [g > 0]     (guided backprop)
    DECONV = 2  # max(g, 0)                 (deconvnet; needs no forward bit)


class PostProcess(IntEnum):
    """What the post-processing unit does with the input gradient."""

    NONE = 0
    ABS = 1
    TIMES_INPUT = 2
    INTEGRATED = 3  # (x - x') * sum_k w_k g_k
    GRAD_CAM = 4  # relu(sum_c mean_hw(g_layer)[c] * a_layer[c]), upsampled (the Program's Grad-CAM list)
    GUIDED_GRAD_CAM = 5  # guided-backprop input gradient * upsampled Grad-CAM


@dataclass(frozen=True)
class Method:
    name: str
    code: int  # the hardware's run-time ``method`` argument (0 predicts)
    relu_backward: ReluBackward
    post: PostProcess
    captum: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gradient", 1, ReluBackward.MASK, PostProcess.NONE, "Saliency(abs=False)"),
        Method("saliency", 2, ReluBackward.MASK, PostProcess.ABS, "Saliency(abs=True)"),
        Method("input_x_gradient", 3, ReluBackward.MASK, PostProcess.TIMES_INPUT, "InputXGradient"),
        Method("integrated_gradients", 4, ReluBackward.MASK, PostProcess.INTEGRATED, "IntegratedGradients"),
        Method("guided_backprop", 5, ReluBackward.GUIDED, PostProcess.NONE, "GuidedBackprop"),
        Method("deconvnet", 6, ReluBackward.DECONV, PostProcess.NONE, "Deconvolution"),
    )
}

LAYER_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("grad_cam", 7, ReluBackward.MASK, PostProcess.GRAD_CAM, "LayerGradCam"),
        Method("guided_grad_cam", 8, ReluBackward.GUIDED, PostProcess.GUIDED_GRAD_CAM, "GuidedGradCam"),
    )
}
"""Methods that read a layer's activations and gradient (Grad-CAM, docs/dag.md). They are not in
``METHODS`` (the default of ``xaihls.compile``), since they need a layer with a feature map; the
engines run them on the Program's Grad-CAM list (docs/dag.md, "Grad-CAM on the engine")."""

ALL_METHODS: dict[str, Method] = {**METHODS, **LAYER_METHODS}

RIEMANN_RULES = ("trapezoid", "left", "right", "middle")

PREDICT_CODE = 0
METHOD_CODES: dict[str, int] = {m.name: m.code for m in ALL_METHODS.values()}
"""The run-time ``method`` argument of the hardware: 0 predicts only."""

ONE_IMAGE_CODES = frozenset(m.code for m in ALL_METHODS.values()
                            if m.post in (PostProcess.INTEGRATED, PostProcess.GRAD_CAM, PostProcess.GUIDED_GRAD_CAM))
"""Methods an engine start runs on one image (never an image batch): integrated gradients (its steps
take the slots) and the Grad-CAM methods (their list has no batched copy)."""


def method_of_code(code: int) -> Method:
    return next(m for m in ALL_METHODS.values() if m.code == code)


def get_method(name: str) -> Method:
    try:
        return ALL_METHODS[name]
    except (KeyError, TypeError):
        raise XaiHlsError(f"unknown attribution method '{name}'; supported: {', '.join(ALL_METHODS)}") from None


def check_methods(names) -> tuple[str, ...]:
    """Validate a collection of method names; keeps the table's order, drops repeats."""
    if isinstance(names, str):
        names = (names,)
    wanted = set()
    for name in names:
        get_method(name)
        wanted.add(name)
    if not wanted:
        raise XaiHlsError("methods: give at least one attribution method; supported: " + ", ".join(ALL_METHODS))
    return tuple(m for m in ALL_METHODS if m in wanted)


def check_ig_steps_count(steps, name: str = "integrated_gradients steps") -> None:
    """A number of integrated-gradients steps: an int >= 2 (a bool is not one); ``name`` is what the
    one-line refusal calls it."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise XaiHlsError(f"{name} must be an integer >= 2, got {steps!r}")


def ig_rule(steps: int, rule: str = "trapezoid") -> tuple[list[float], list[float]]:
    """Path points alpha_k and weights w_k of a uniform Riemann rule on [0, 1].

    The weights sum to 1 for every rule. (Captum's ``riemann_trapezoid`` uses weights
    1/n with halved ends, which sum to (n-1)/n; its attributions are that factor
    smaller than a true trapezoid rule, and correlate perfectly with ours.)
    """
    check_ig_steps_count(steps)
    n = steps
    if rule == "trapezoid":
        alphas = [k / (n - 1) for k in range(n)]
        weights = [1.0 / (n - 1)] * n
        weights[0] /= 2
        weights[-1] /= 2
    elif rule == "left":
        alphas = [k / n for k in range(n)]
        weights = [1.0 / n] * n
    elif rule == "right":
        alphas = [(k + 1) / n for k in range(n)]
        weights = [1.0 / n] * n
    elif rule == "middle":
        alphas = [(k + 0.5) / n for k in range(n)]
        weights = [1.0 / n] * n
    else:
        raise XaiHlsError(f"unknown Riemann rule '{rule}'; supported: {', '.join(RIEMANN_RULES)}")
    return alphas, weights


@dataclass(frozen=True)
class IgConstants:
    """The quantized path points and weights every executor uses for ``steps`` and ``rule``.

    Path point k is base + alpha_k * (x - base), formed in the accumulator and rounded
    once to the input format; the weights multiply the input gradients of the steps.
    """

    alpha_frac: int
    alphas: tuple[int, ...]
    weight_frac: int
    weights: tuple[int, ...]

    def table(self) -> list[int]:
        """The int32 words a host writes at the Program's ig_table_addr (docs/contract.md):
        alpha_frac, weight_frac, then (alpha_q, weight_q) per step."""
        words = [self.alpha_frac, self.weight_frac]
        for a, w in zip(self.alphas, self.weights):
            words += [a, w]
        return words


def ig_constants(steps: int, rule: str, width: int) -> IgConstants:
    alphas, weights = ig_rule(steps, rule)
    alpha_fmt = FixedFormat(width, width - 2)  # alpha in [0, 1]: 1.0 must be exact
    weight_fmt = FixedFormat.covering(max(weights), width)
    a = quantize_array(alphas, alpha_fmt)
    w = quantize_array(weights, weight_fmt)
    return IgConstants(alpha_fmt.frac, tuple(int(v) for v in a), weight_fmt.frac, tuple(int(v) for v in w))
