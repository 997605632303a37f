"""The HLS project templates (``hls_templates/``) and how their holes are filled.

A template is a real file (C++, tcl, Makefile, Markdown) with a few lines of the form
``// xaihls insert NAME`` (or ``# xaihls insert NAME``, ``<!-- xaihls insert NAME -->``);
rendering replaces each such line with generated text. Every hole must be filled and every
given fill must have a hole, so a renamed hole fails loudly instead of leaving a gap.
"""

from __future__ import annotations

import re

from xaihls.bundled import TEMPLATES_DIR

TEMPLATE_DIR = TEMPLATES_DIR

ENGINE_SOURCES = ("firmware/xaihls_engine.h", "firmware/xaihls_top.h", "firmware/xaihls_top.cpp")
"""The fixed, synthesized sources: copied into every project unchanged."""

CSIM_WRAPPER = "firmware/xaihls_csim.cpp"
"""The C entry point of the Python C-simulation (compiled with g++, never synthesized)."""

PARAMETERS = "firmware/parameters.h"

_HOLE = re.compile(r"^\s*(?://|#|<!--)\s*xaihls insert (\w+)\s*(?:-->)?\s*$")


def read_template(relpath: str) -> str:
    return (TEMPLATE_DIR / relpath).read_text(encoding="utf-8")


def render(text: str, fills: dict[str, str]) -> str:
    """``text`` with each hole line replaced by ``fills[name]`` (a block of lines)."""
    out, used = [], set()
    for line in text.splitlines():
        m = _HOLE.match(line)
        if m is None:
            out.append(line)
            continue
        name = m.group(1)
        if name not in fills:
            raise KeyError(f"template hole '{name}' has no fill")
        used.add(name)
        out.append(fills[name].rstrip("\n"))
    unused = set(fills) - used
    if unused:
        raise KeyError(f"no template hole for {sorted(unused)}")
    return "\n".join(out) + "\n"
