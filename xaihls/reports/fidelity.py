"""Fidelity of fixed-point attributions against float ones (Captum, or our float graph)."""

from __future__ import annotations

import torch
import torch.nn as nn

from xaihls.frontend.ir import Graph
from xaihls.frontend.reference import float_attribute, graph_to_module
from xaihls.methods import get_method


def captum_attribute(model: nn.Module, x: torch.Tensor, method: str, target: torch.Tensor,
                     steps: int = 32) -> torch.Tensor:
    """The Captum attribution that DESIGN.md's method table names for ``method``."""
    import warnings

    from captum.attr import Deconvolution, GuidedBackprop, InputXGradient, IntegratedGradients, Saliency

    get_method(method)
    x = x.detach().to(torch.float32).clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns each time it hooks ReLUs
        if method in ("gradient", "saliency"):
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
                    steps: int = 32) -> tuple[torch.Tensor, str]:
    """Captum's attribution on the traced float graph when Captum is installed, else our float graph's.

    Captum runs on ``graph_to_module(graph)``, where every ReLU is an ``nn.ReLU`` module.
    """
    try:
        return captum_attribute(graph_to_module(graph), x, method, target, steps), "captum"
    except ImportError:
        pass
    return float_attribute(graph, x, method, target, steps).attribution.to(torch.float32), "float graph"


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
