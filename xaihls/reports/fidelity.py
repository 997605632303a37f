"""Fidelity of fixed-point attributions against float ones (Captum, or our float graph)."""

from __future__ import annotations

import torch
import torch.nn as nn

from xaihls.frontend.ir import Graph
from xaihls.frontend.reference import cam_layer_name, float_attribute, graph_to_module, layer_module
from xaihls.methods import LAYER_METHODS, get_method


def captum_attribute(model: nn.Module, x: torch.Tensor, method: str, target: torch.Tensor,
                     steps: int = 32, layer: nn.Module | None = None) -> torch.Tensor:
    """The Captum attribution that DESIGN.md's method table names for ``method``.

    Grad-CAM methods need ``layer`` (the module whose output is the Grad-CAM layer's):
    ``grad_cam`` is ``LayerGradCam(relu_attributions=True)`` upsampled by
    ``LayerAttribution.interpolate`` (nearest), ``guided_grad_cam`` is ``GuidedGradCam``.
    """
    import warnings

    from captum.attr import (Deconvolution, GuidedBackprop, GuidedGradCam, InputXGradient, IntegratedGradients,
                             LayerAttribution, LayerGradCam, Saliency)

    get_method(method)
    x = x.detach().to(torch.float32).clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns each time it hooks ReLUs
        if method == "grad_cam":
            cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
            out = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="nearest")
        elif method == "guided_grad_cam":
            out = GuidedGradCam(model, layer).attribute(x, target=target)
        elif method in ("gradient", "saliency"):
            out = Saliency(model).attribute(x, target=target, abs=method == "saliency")
        elif method == "input_x_gradient":
            out = InputXGradient(model).attribute(x, target=target)
        elif method == "integrated_gradients":
            out = IntegratedGradients(model).attribute(
                x, target=target, n_steps=steps, method="riemann_trapezoid", internal_batch_size=256
            )
        elif method == "guided_backprop":
            out = GuidedBackprop(model).attribute(x, target=target)
        else:
            out = Deconvolution(model).attribute(x, target=target)
    return out.detach()


def float_reference(graph: Graph, x: torch.Tensor, method: str, target: torch.Tensor,
                    steps: int = 32, cam_layer: str | None = None) -> tuple[torch.Tensor, str]:
    """Captum's attribution on the traced float graph when Captum is installed, else our float graph's.

    Captum runs on ``graph_to_module(graph)``, where every ReLU is an ``nn.ReLU`` module;
    ``cam_layer``: the Grad-CAM layer (default the last Conv2d).
    """
    module = graph_to_module(graph)
    layer = layer_module(module, graph, cam_layer_name(graph, cam_layer)) if method in LAYER_METHODS else None
    try:
        return captum_attribute(module, x, method, target, steps, layer), "captum"
    except ImportError:
        pass
    trace = float_attribute(graph, x, method, target, steps, cam_layer=cam_layer)
    return trace.attribution.to(torch.float32), "float graph"


def pearson_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each image's attribution pair (flattened), float64."""
    a = a.detach().to(torch.float64).flatten(1)
    b = b.detach().to(torch.float64).flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    r = (a * b).sum(1) / denom
    # Two constant maps agree perfectly; one constant and one not do not correlate.
    both_flat = (a.norm(dim=1) == 0) & (b.norm(dim=1) == 0)
    return torch.where(denom > 0, r, torch.where(both_flat, torch.ones_like(r), torch.zeros_like(r)))
