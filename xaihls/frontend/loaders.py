"""Where models come from: ``zoo:NAME``, ``package.module:factory`` (+ weights), or a ``.pt2`` file."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import Graph
from xaihls.frontend.trace import graph_from_exported, graph_from_module


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to trace: its graph, and the float module when there is one."""

    spec: str
    graph: Graph
    module: nn.Module | None


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict file (``torch.load(weights_only=True)``) into ``module``."""
    path = Path(path)
    if not path.is_file():
        raise XaiHlsError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XaiHlsError(f"weights file {path} is not a readable state_dict: {first[:200]}") from None
    if not isinstance(state, dict):
        raise XaiHlsError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) or first[0]
        raise XaiHlsError(f"weights file {path} does not fit the model: {detail[:300]}") from None
    return module


def _factory(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(module_name)
    except ImportError as exc:
        raise XaiHlsError(f"model '{spec}': cannot import module '{module_name}' ({exc})") from None
    factory = getattr(mod, attr, None)
    if factory is None or not callable(factory):
        raise XaiHlsError(f"model '{spec}': module '{module_name}' has no callable '{attr}'")
    try:
        model = factory()
    except TypeError as exc:
        if "argument" in str(exc):
            raise XaiHlsError(f"model '{spec}': {attr}() needs arguments ({exc}); give a factory that takes "
                              "none") from None
        raise XaiHlsError(f"model '{spec}': {attr}() raised TypeError: {exc}") from None
    except Exception as exc:  # the user's code: its error, shortened to one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise XaiHlsError(f"model '{spec}': {attr}() raised {type(exc).__name__}" + (f": {first}" if first else "")) \
            from None
    if not isinstance(model, nn.Module):
        raise XaiHlsError(f"model '{spec}': {attr}() returned {type(model).__name__}, not an nn.Module")
    return model


def load_model(spec: str, weights: str | Path | None = None, input_shape=None) -> LoadedModel:
    """Resolve a model spec as the CLI takes it, and trace it to a Graph.

    - ``zoo:NAME``: a bundled model (its own weights and input shape);
    - ``package.module:factory``: calls ``factory()``; ``weights`` loads a state_dict;
      ``input_shape`` (C, H, W) is required;
    - ``file.pt2``: a ``torch.export`` program (input shape from the program).
    """
    if spec.startswith("zoo:"):
        from xaihls.models.zoo import get_zoo_model

        entry = get_zoo_model(spec[4:])
        module = entry.build()
        if weights is not None:
            load_weights(module, weights)
        module.eval()
        return LoadedModel(spec, graph_from_module(module, input_shape or entry.input_shape), module)
    if spec.endswith(".pt2"):
        if weights is not None:
            raise XaiHlsError("--weights does not apply to a .pt2 program: it carries its own weights")
        return LoadedModel(spec, graph_from_exported(spec, input_shape), None)
    if ":" in spec and not Path(spec).exists():
        module = _factory(spec)
        if weights is not None:
            load_weights(module, weights)
        if input_shape is None:
            raise XaiHlsError(f"model '{spec}': give its input shape (C,H,W), e.g. --input-shape 3,32,32")
        return LoadedModel(spec, graph_from_module(module, input_shape), module)
    raise XaiHlsError(
        f"cannot read model '{spec}'; give zoo:NAME, package.module:factory, or a torch.export .pt2 file"
    )
