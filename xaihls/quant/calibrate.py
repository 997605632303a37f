"""Calibration: choose the integer bits of every tensor from the ranges a batch produces.

Forward ranges come from the float graph on the calibration batch (and on the
integrated-gradients path points when that method is compiled); backward ranges come
from the gradients of the same batch under each requested method's ReLU rule. A config
(dict or YAML file, in the spirit of hls4ml's per-layer precision) overrides any choice.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from xaihls.errors import XaiHlsError, XaiHlsWarning
from xaihls.frontend.ir import (Add, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Flatten, Graph, Linear,
                                MaxPool2d, ReLU, ReLU6)
from xaihls.frontend.reference import FloatTrace, cam_layer_name, float_attribute
from xaihls.methods import METHODS, PostProcess, ReluBackward, check_methods, get_method, ig_rule
from xaihls.numerics import ACCUMULATOR_BITS, FixedFormat, align_terms, quantize
from xaihls.plan.dag import unweighted
from xaihls.quant.qgraph import AttributionFormats, QGraph, QLayer

_CONFIG_KEYS = {"width", "headroom", "input", "layers", "ig_steps", "ig_rule", "grad_cam_layer"}
_LAYER_KEYS = {"weight", "bias", "output", "gradient"}
_AP_FIXED = re.compile(r"^\s*(?:ap_)?fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,[^>]*)?>\s*$")


def load_config(config: dict | str | Path | None) -> dict:
    """A config as a dict: given as one, or read from a YAML file."""
    if config is None:
        return {}
    if isinstance(config, (str, Path)):
        import yaml

        path = Path(config)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise XaiHlsError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise XaiHlsError(f"config file {path}{where}: not valid YAML") from None
        config = data or {}
    if not isinstance(config, dict):
        raise XaiHlsError(f"config must be a mapping, got {type(config).__name__}")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise XaiHlsError(f"config: unknown key '{sorted(unknown)[0]}'; known keys: {', '.join(sorted(_CONFIG_KEYS))}")
    return config


def parse_format(spec: Any, width: int, where: str) -> FixedFormat:
    """A format from 'ap_fixed<W,I>', 'fixed<W,I>', {int_bits: I}, {frac: F} or an int I."""
    if isinstance(spec, FixedFormat):
        return spec
    if isinstance(spec, bool):
        pass
    elif isinstance(spec, int):
        return FixedFormat(width, width - spec)
    elif isinstance(spec, str):
        m = _AP_FIXED.match(spec)
        if m:
            w, i = int(m.group(1)), int(m.group(2))
            return FixedFormat(w, w - i)
    elif isinstance(spec, dict) and len(spec) == 1:
        (key, value), = spec.items()
        if key == "int_bits" and isinstance(value, int):
            return FixedFormat(width, width - value)
        if key == "frac" and isinstance(value, int):
            return FixedFormat(width, value)
    raise XaiHlsError(
        f"config {where}: cannot read format {spec!r}; write 'ap_fixed<W,I>', {{int_bits: I}} or {{frac: F}}"
    )


_ONE_PASS = {ReluBackward.MASK: "gradient", ReluBackward.GUIDED: "guided_backprop", ReluBackward.DECONV: "deconvnet"}
"""The method whose float pass stands for every method of its ReLU rule that post-processes only the input gradient."""
_GRADIENT_POSTS = (PostProcess.NONE, PostProcess.ABS, PostProcess.TIMES_INPUT)


def _max_abs(tensors) -> float:
    """The largest magnitude in ``tensors`` (without a copy of each, which took a seventh of a calibration)."""
    return max((max(-float(lo), float(hi)) for lo, hi in (torch.aminmax(t) for t in tensors if t.numel())),
               default=0.0)


def _passes_values(layer) -> bool:
    """Layers whose output values are some of their input values (no new range)."""
    return isinstance(layer, (ReLU, ReLU6, MaxPool2d, Flatten, ChannelSelect))


def _route_only(layer) -> bool:
    """Layers whose input gradient holds output-gradient values unchanged (no sums)."""
    if isinstance(layer, MaxPool2d):
        return layer.stride[0] >= layer.kernel[0] and layer.stride[1] >= layer.kernel[1]
    return isinstance(layer, (ReLU, ReLU6, Flatten, Add, Concat, ChannelSelect))


def _gradient_chain(graph: Graph, k: int, fixed: set) -> list[int] | None:
    """The tensors whose gradient format is the one at tensor k: k and those after it through layers that
    pass a single input's gradient on unchanged (``_route_only``), up to the tensor where the format was
    chosen; None where one of them is in ``fixed`` or a layer of two inputs shares the format."""
    chain = [k]
    while len(graph.consumers[k]) == 1 and _route_only(graph.layers[graph.consumers[k][0]]):
        if isinstance(graph.layers[graph.consumers[k][0]], (Add, Concat)):
            return None
        k = graph.consumers[k][0] + 1
        chain.append(k)
    return None if fixed & set(chain) else chain


def _align_sums(graph: Graph, qlayers: list[QLayer], fmts: dict[ReluBackward, list[FixedFormat]], fixed: set) -> None:
    """Make the engine's sum of two readers' gradients exact (``numerics.align_terms``): where the finer
    term's products lie more than the engine's operand shift below the coarser's, that term's gradient is
    stored coarser, a bit at a time, until they meet. What its values lose lies far below the sum's
    format: its products then lie MAX_X_SHIFT bits (an identity's, up to 23) below the coarser term's,
    whose fraction is finer than the sum's already. The tensors in ``fixed`` (a user's format, the seed,
    Grad-CAM's layer) keep theirs, as does a format an Add or cat shares; the engines then refuse the
    network in one line."""
    modes = list(fmts)
    for t in range(len(graph.layers) - 1, -1, -1):
        readers = graph.consumers[t]
        if len(readers) != 2:
            continue
        identity = [unweighted(graph.layers[r]) for r in readers]
        weight = [0 if ident or qlayers[r].weight_fmt is None else qlayers[r].weight_fmt.frac
                  for r, ident in zip(readers, identity)]
        chains = [_gradient_chain(graph, r + 1, fixed) for r in readers]
        while True:
            bases = [[fmts[mode][r + 1].frac + w for mode in modes] for r, w in zip(readers, weight)]
            if align_terms(bases, identity) is not None:
                break
            m = max(range(len(modes)), key=lambda m: abs(bases[0][m] - bases[1][m]))
            chain = chains[0 if bases[0][m] > bases[1][m] else 1]
            if chain is None:
                break
            coarser = FixedFormat(fmts[modes[m]][chain[0]].width, fmts[modes[m]][chain[0]].frac - 1)
            for k in chain:
                fmts[modes[m]][k] = coarser


def _check_accumulator(graph: Graph, width: int) -> None:
    """Refuse a network whose sums could overflow the wide accumulator."""
    product = 1 << (2 * (width - 1))
    limit = 1 << (ACCUMULATOR_BITS - 1)
    for layer in graph.layers:
        terms = 0
        if isinstance(layer, Conv2d):
            terms = max(layer.fan_in, layer.out_channels // layer.groups * layer.kernel[0] * layer.kernel[1]) + 1
        elif isinstance(layer, Linear):
            terms = max(layer.in_shape[0], layer.out_shape[0]) + 1
        elif isinstance(layer, AvgPool2d):
            terms = layer.kernel[0] * layer.kernel[1]
        if terms * product >= limit:
            raise XaiHlsError(
                f"layer '{layer.name}': {terms} terms of {width}-bit products can overflow the "
                f"{ACCUMULATOR_BITS}-bit accumulator; use a narrower width or a smaller layer"
            )


def _check_bias(q: QLayer, fan_in: int, largest_input: float) -> None:
    """Refuse a layer whose bias, aligned to its accumulator, could overflow it with its products. The
    bias is added as ``bias << bias_shift`` in units of the accumulator's step, 2^-(input frac +
    weight frac): inputs far below one on every calibration image give that step so many fraction
    bits that even a small bias needs more than the accumulator holds (torchvision's GoogLeNet with
    untrained weights: its classifier's inputs below 1e-11, its bias aligned to 2^64)."""
    if q.bias is None or not bool(q.bias.any()):
        return
    width = q.in_fmt.width
    bias = int(q.bias.abs().max()) << q.bias_shift
    bound = bias + fan_in * (1 << (2 * (width - 1)))
    if bound >= 1 << (ACCUMULATOR_BITS - 1):
        raise XaiHlsError(
            f"layer '{q.name}': its bias aligned to the accumulator (fraction {q.acc_frac}: the input's "
            f"{q.in_fmt.frac} and the weight's {q.weight_fmt.frac}) reaches 2^{bias.bit_length() - 1}, past the "
            f"{ACCUMULATOR_BITS}-bit accumulator; its inputs are at most {largest_input:.3g} on the calibration "
            f"images (untrained weights?): calibrate on typical inputs, or set coarser formats for its input or "
            f"weights in a config")


def calibrate(
    graph: Graph,
    calibration: torch.Tensor,
    methods=tuple(METHODS),
    config: dict | str | Path | None = None,
    ig_steps: int = 32,
    ig_rule_name: str = "trapezoid",
) -> QGraph:
    """Choose every format of ``graph`` from ``calibration`` (N, C, H, W) and ``config``.

    A chain gets exactly the formats it always had. On a DAG, every tensor gets one format
    (its producer's ``out``), an Add's ``in`` the finer of its operands' formats (they are aligned
    to it exactly, docs/dag.md), and the gradient
    at a tensor read by several layers one format for the sum of what they send back.
    """
    cfg = load_config(config)
    methods = check_methods(methods)
    width = cfg.get("width", 16)
    if not isinstance(width, int) or isinstance(width, bool) or not 4 <= width <= 32:
        raise XaiHlsError(f"config width must be an integer from 4 to 32, got {width!r}")
    headroom = cfg.get("headroom", 1.0)
    if not isinstance(headroom, (int, float)) or headroom < 1.0:
        raise XaiHlsError(f"config headroom must be a number >= 1.0, got {headroom!r}")
    ig_steps = cfg.get("ig_steps", ig_steps)
    ig_rule_name = cfg.get("ig_rule", ig_rule_name)
    ig_rule(ig_steps, ig_rule_name)  # validates both
    overrides = cfg.get("layers", {}) or {}
    if not isinstance(overrides, dict):
        raise XaiHlsError("config layers must map layer names to their formats")
    names = [layer.name for layer in graph.layers]
    for name, entry in overrides.items():
        if name not in names:
            raise XaiHlsError(f"config layers: no layer named '{name}'; layers: {', '.join(names)}")
        if not isinstance(entry, dict) or set(entry) - _LAYER_KEYS:
            bad = sorted(set(entry) - _LAYER_KEYS)[0] if isinstance(entry, dict) else entry
            raise XaiHlsError(
                f"config layers.{name}: unknown entry '{bad}'; known: {', '.join(sorted(_LAYER_KEYS))}"
            )
    _check_accumulator(graph, width)

    x = _calibration_batch(calibration, graph)
    L = len(graph.layers)
    cams = [name for name in methods if get_method(name).post in (PostProcess.GRAD_CAM, PostProcess.GUIDED_GRAD_CAM)]
    cam_layer = cam_layer_name(graph, cfg.get("grad_cam_layer")) if cams else None

    def fmt(max_abs: float) -> FixedFormat:
        return FixedFormat.covering(max_abs, width, headroom)

    def override(name: str, key: str) -> FixedFormat | None:
        spec = overrides.get(name, {}).get(key)
        return None if spec is None else parse_format(spec, width, f"layers.{name}.{key}")

    # Ranges: forward activations (all passes see the same forward for x; IG adds path points).
    act_max = [0.0] * (L + 1)
    grad_max: dict[ReluBackward, list[float]] = {}
    post_max = {"input_x_gradient": 0.0, "ig_summed_gradient": 0.0, "integrated_gradients": 0.0,
                "grad_cam_weights": 0.0, "grad_cam": 0.0, "guided_grad_cam": 0.0}
    traces: dict[str, FloatTrace] = {}

    def trace_of(name: str) -> FloatTrace:
        if name not in traces:
            traces[name] = float_attribute(graph, x, name, steps=ig_steps, rule=ig_rule_name, cam_layer=cam_layer)
        return traces[name]

    folded: set[tuple[str, ReluBackward | None]] = set()  # each trace's maxima go in once, however many share it

    def fold(name: str, rule: ReluBackward) -> None:
        trace = trace_of(name)
        if (name, None) not in folded:
            folded.add((name, None))
            for i, a in enumerate(trace.activations):
                act_max[i + 1] = max(act_max[i + 1], _max_abs([a]))
        if (name, rule) not in folded:
            folded.add((name, rule))
            g = grad_max.setdefault(rule, [0.0] * L)
            for i, t in enumerate(trace.gradients):
                g[i] = max(g[i], _max_abs([t]))

    act_max[0] = float(x.abs().max())

    for name in methods:
        m = get_method(name)
        # the methods that only post-process the input gradient share one pass a ReLU rule
        pass_name = _ONE_PASS[m.relu_backward] if m.post in _GRADIENT_POSTS else name
        trace = trace_of(pass_name)
        if trace.cam is not None:
            post_max["grad_cam_weights"] = max(post_max["grad_cam_weights"], _max_abs([trace.cam_weights]))
            post_max["grad_cam"] = max(post_max["grad_cam"], _max_abs([trace.cam]))
            if m.post is PostProcess.GUIDED_GRAD_CAM:
                post_max["guided_grad_cam"] = max(post_max["guided_grad_cam"], _max_abs([trace.attribution]))
                # its Grad-CAM half runs the true gradient down to the layer: those formats too
                fold("grad_cam", ReluBackward.MASK)
        fold(pass_name, m.relu_backward)
        if m.post is PostProcess.TIMES_INPUT:
            post_max["input_x_gradient"] = max(post_max["input_x_gradient"], _max_abs([x * trace.gradients[0]]))
        if m.post is PostProcess.INTEGRATED:
            post_max["ig_summed_gradient"] = _max_abs([trace.summed_gradient])
            post_max["integrated_gradients"] = _max_abs([trace.attribution])

    if act_max[0] == 0.0 and "input" not in cfg:
        raise XaiHlsError("calibration batch is all zeros: no format can be chosen from it; give typical inputs "
                          "(or set the input format in the config)")
    blind: list[str] = []  # calibrated tensors that were zero on every calibration image
    input_fmt = parse_format(cfg["input"], width, "input") if "input" in cfg else fmt(act_max[0])
    qlayers: list[QLayer] = []
    tensor_fmts = [input_fmt]
    for i, layer in enumerate(graph.layers):
        reads = graph.input_tensors[i]
        if isinstance(layer, Add):  # the operands aligned exactly to the finer of their fractions
            in_fmt = max((tensor_fmts[k] for k in reads), key=lambda f: f.frac)
        else:
            in_fmt = tensor_fmts[reads[0]]
        out_fmt = override(layer.name, "output")
        if out_fmt is None:
            out_fmt = in_fmt if _passes_values(layer) else fmt(act_max[i + 1])
            if not _passes_values(layer) and act_max[i + 1] == 0.0:
                blind.append(layer.name)
        elif _passes_values(layer) and out_fmt != in_fmt:
            raise XaiHlsError(
                f"config layers.{layer.name}.output: a {type(layer).__name__} keeps its input format ({in_fmt})"
            )
        if isinstance(layer, (Conv2d, Linear)):
            w_fmt = override(layer.name, "weight") or fmt(float(layer.weight.abs().max()))
            b_fmt = override(layer.name, "bias") or fmt(float(layer.bias.abs().max()))
            acc_frac = in_fmt.frac + w_fmt.frac
            if b_fmt.frac > acc_frac:  # the bias is added into the accumulator: no finer than it
                b_fmt = FixedFormat(b_fmt.width, acc_frac)
            q = QLayer(layer, in_fmt, out_fmt, w_fmt, quantize(layer.weight, w_fmt), b_fmt, quantize(layer.bias, b_fmt))
            _check_bias(q, layer.fan_in, max(act_max[k] for k in reads))
        elif isinstance(layer, ChannelAffine):
            w_fmt = override(layer.name, "weight") or fmt(float(layer.scale.abs().max()))
            b_fmt = override(layer.name, "bias") or fmt(float(layer.shift.abs().max()))
            if b_fmt.frac > in_fmt.frac + w_fmt.frac:
                b_fmt = FixedFormat(b_fmt.width, in_fmt.frac + w_fmt.frac)
            q = QLayer(layer, in_fmt, out_fmt, w_fmt, quantize(layer.scale, w_fmt), b_fmt, quantize(layer.shift, b_fmt))
            _check_bias(q, 1, max(act_max[k] for k in reads))
        elif isinstance(layer, AvgPool2d):
            divisors = layer.divisors()
            if not layer.windowed:
                # one divisor (every window whole, or zero padding counted): one reciprocal, a diagonal job's
                recip = 1.0 / float(divisors.flatten()[0])
                r_fmt = fmt(recip)
                q = QLayer(layer, in_fmt, out_fmt, r_fmt, quantize(torch.tensor([recip]), r_fmt))
            else:
                recips = 1.0 / divisors.to(torch.float64)
                r_fmt = fmt(float(recips.max()))
                q = QLayer(layer, in_fmt, out_fmt, r_fmt, quantize(recips, r_fmt))
        else:
            q = QLayer(layer, in_fmt, out_fmt)
        qlayers.append(q)
        tensor_fmts.append(out_fmt)

    seed_fmt = FixedFormat(width, width - 2)
    fmts = {mode: [seed_fmt] * (L + 1) for mode in grad_max}
    # formats calibration may not move to align a gradient sum (_align_sums): the logits' seed, Grad-CAM's
    # layer (its gradient weighs the channels) and those the config sets
    fixed = {L} | ({graph.tensor_index(cam_layer)} if cam_layer is not None else set())
    for k in range(L - 1, -1, -1):  # tensor k; in a chain, layer k's input
        users = graph.consumers[k]
        unseen = []
        for mode, gmax in grad_max.items():
            if len(users) == 1:
                layer = graph.layers[users[0]]
                forced = override(layer.name, "gradient")
                if forced is not None:
                    fmts[mode][k] = forced
                    fixed.add(k)
                    continue
                if _route_only(layer):
                    fmts[mode][k] = fmts[mode][users[0] + 1]
                    continue
                where = f"{layer.name}.grad"
            else:  # several layers send gradients back: one format for their sum
                where = f"{graph.tensor_names[k]}.out.grad"
            fmts[mode][k] = fmt(gmax[k])
            if gmax[k] == 0.0:
                blind.append(f"{where} ({mode.name.lower()})")
                unseen.append(mode)
        # a gradient zero on every calibration image takes the format another rule gives it there, else the
        # one of the gradient it comes from (its first reader's output's): any format holds zeros, and a
        # neighbour's keeps a sum it is a term of exact (a format of one integer bit lay 10 to 27 bits from
        # its neighbours' and left such sums to the golden model)
        seen = [fmts[mode][k] for mode, gmax in grad_max.items() if mode not in unseen and gmax[k] > 0.0]
        for mode in unseen:
            fmts[mode][k] = seen[0] if seen else fmts[mode][users[0] + 1]
    _align_sums(graph, qlayers, fmts, fixed)
    grad_formats = {mode: tuple(f) for mode, f in fmts.items()}

    if blind:
        warnings.warn(f"calibration: {', '.join(blind)} {'is' if len(blind) == 1 else 'are'} zero on every "
                      f"calibration image, so {'its format was' if len(blind) == 1 else 'their formats were'} "
                      "chosen blind and other inputs may saturate; calibrate on typical inputs", XaiHlsWarning,
                      stacklevel=2)
    attribution_formats = AttributionFormats(
        input_x_gradient=fmt(post_max["input_x_gradient"]),
        ig_summed_gradient=fmt(post_max["ig_summed_gradient"]),
        integrated_gradients=fmt(post_max["integrated_gradients"]),
        **({"grad_cam_weights": fmt(post_max["grad_cam_weights"]), "grad_cam": fmt(post_max["grad_cam"]),
            "guided_grad_cam": fmt(post_max["guided_grad_cam"])} if cams else {}),
    )
    return QGraph(
        graph, width, tuple(qlayers), methods, grad_formats, attribution_formats, ig_steps, ig_rule_name,
        notes={"calibration_images": int(x.shape[0]), "headroom": float(headroom)}, cam_layer=cam_layer,
    )


def _calibration_batch(calibration: Any, graph: Graph) -> torch.Tensor:
    expected = f"(N, {', '.join(map(str, graph.data_shape))})"
    if calibration is None:
        raise XaiHlsError(f"calibration data is required: a batch of inputs shaped {expected}")
    x = graph.as_batch(torch.as_tensor(calibration))
    if x is None or x.shape[0] < 1:
        raise XaiHlsError(f"calibration batch has shape {tuple(torch.as_tensor(calibration).shape)}; "
                          f"expected {expected}")
    if not torch.isfinite(x).all():
        raise XaiHlsError("calibration batch contains NaN or infinite values")
    return x.to(torch.float64)
