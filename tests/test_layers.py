"""The import rule: each layer imports only the layers below it, and the two engine backends never
import each other (what they share lives in xaihls.project, xaihls.executor and xaihls.plan).

Layers, bottom to top:
  0  errors, version, numerics, methods, bundled         (no torch at import: the host driver runs them)
  1  frontend, quant, golden, plan, sim, executor, project, reports.readers (parsers of the tools' files),
     driver (the host side: numpy and the contract, no torch)
  2  backends.hls, backends.rtl, backends.board           (each alone: hls and rtl never import each other)
  3  accelerator, writer, reports
  4  cli, demo, sweep
Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import xaihls

PACKAGE = Path(xaihls.__file__).parent
LAYERS = [
    ("errors", "version", "numerics", "methods", "bundled"),
    ("frontend", "quant", "golden", "plan", "sim", "executor", "project", "models", "io", "reports.readers",
     "driver"),
    ("backends.hls", "backends.rtl", "backends.board", "backends"),
    ("accelerator", "writer", "reports"),
    ("cli", "demo", "sweep", "__init__", "__main__"),
]
APART = (("backends.hls", "backends.rtl"),)


def _unit(module: str) -> str:
    """The layer entry a dotted module name (without 'xaihls.') belongs to."""
    for layer in LAYERS:
        for unit in sorted(layer, key=len, reverse=True):
            if module == unit or module.startswith(unit + "."):
                return unit
    raise AssertionError(f"xaihls.{module} is in no layer of tests/test_layers.py")


def _level(unit: str) -> int:
    return next(k for k, layer in enumerate(LAYERS) if unit in layer)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}
    return {n[len("xaihls."):] for n in found if n.startswith("xaihls.")}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" and len(rel.parts) > 1 else rel.parts
        yield path, ".".join(parts)


def test_each_layer_imports_only_what_is_below_it_and_the_backends_stay_apart():
    wrong = []
    for path, module in _modules():
        me = _unit(module)
        for name in _imports(path, "xaihls." + module):
            try:
                other = _unit(name)
            except AssertionError:
                continue  # a name imported from a package (from xaihls import x): checked as x when it is a module
            if other == me:
                continue
            if _level(other) > _level(me) or (_level(other) == _level(me) and me.startswith("backends")
                                              and other.startswith("backends")
                                              and (me, other) in APART + tuple((b, a) for a, b in APART)):
                wrong.append(f"xaihls.{module} imports xaihls.{name}")
            elif _level(other) == _level(me) and _level(me) in (0, 1) and me in ("project",) and other != "errors":
                wrong.append(f"xaihls.{module} imports xaihls.{name}")
    assert wrong == [], "\n".join(wrong)


def test_the_rule_finds_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from xaihls.backends.rtl.v2 import sim\n")
    assert "backends.rtl.v2" in _imports(bad, "xaihls.backends.hls.bad")
    assert _unit("backends.rtl.v2") == "backends.rtl" and _unit("backends.hls.v2") == "backends.hls"
