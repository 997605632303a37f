"""What Vitis HLS refuses to synthesize, found by reading the C++ (no Vitis needed).

A lightweight lexical check of the synthesized sources: dynamic memory, the standard
library, recursion, loops without a static bound, variable-length arrays. It reads the
code the way the engine is written (one function per definition, counted ``for`` loops);
it is a tripwire for CI, not a C++ parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ALLOWED_SYSTEM_INCLUDES = {"ap_int.h", "ap_fixed.h", "hls_stream.h", "hls_math.h", "hls_vector.h"}
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "else", "case", "do", "catch", "static_cast",
             "reinterpret_cast", "const_cast", "new", "delete", "throw", "typedef", "using", "goto"}


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.text}"


def strip_comments(code: str) -> str:
    """Comments and string literals blanked out (newlines kept, so line numbers hold)."""
    out = []
    i, n = 0, len(code)
    while i < n:
        two = code[i:i + 2]
        if two == "//":
            j = code.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif two == "/*":
            j = code.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", code[i:j]))
            i = j
        elif code[i] in "\"'":
            quote, j = code[i], i + 1
            while j < n and code[j] != quote:
                j += 2 if code[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(quote + " " * (j - i - 2) + quote if j - i >= 2 else code[i:j])
            i = j
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


def constant_names(code: str) -> set[str]:
    """Names that are compile-time integer constants: constexpr/const ints and enumerators."""
    code = strip_comments(code)
    names = set(re.findall(r"\bconstexpr\s+(?:unsigned\s+|long\s+|int\s+|short\s+)*(\w+)\s*=", code))
    names |= set(re.findall(r"\bconst\s+int\s+(\w+)\s*=\s*[-\w\s*+()]+[;,]", code))
    for body in re.findall(r"\benum\b[^{;]*\{([^}]*)\}", code):
        names |= {m.group(1) for m in re.finditer(r"(\w+)\s*(?:=[^,]*)?(?:,|$)", body.strip())}
    return names


def is_constant(expr: str, constants: set[str]) -> bool:
    """An integer expression of literals, constant names and + - * / ( )."""
    tokens = re.findall(r"(?:\w+::)*\w+|\S", expr)
    if not tokens:
        return False
    for tok in tokens:
        if re.fullmatch(r"\d+[uUlL]*", tok) or tok in ("+", "-", "*", "/", "(", ")"):
            continue
        if tok.split("::")[-1] in constants:
            continue
        return False
    return True


def _line(code: str, offset: int) -> int:
    return code.count("\n", 0, offset) + 1


def _balanced(code: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at ``start``."""
    depth = 0
    for i in range(start, len(code)):
        if code[i] == open_:
            depth += 1
        elif code[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return len(code)


def check_source(name: str, code: str, constants: set[str]) -> list[Violation]:
    """Violations in one synthesized source; ``constants`` are the compile-time names it may use."""
    src = strip_comments(code)
    found: list[Violation] = []

    def add(offset: int, rule: str, text: str) -> None:
        found.append(Violation(name, _line(src, offset), rule, text.strip()))

    for m in re.finditer(r"\b(malloc|calloc|realloc|free|alloca)\s*\(|\bnew\b|\bdelete\b", src):
        add(m.start(), "dynamic memory", m.group(0))
    for m in re.finditer(r"\bstd\s*::\s*\w+", src):
        add(m.start(), "standard library", m.group(0))
    for m in re.finditer(r"#\s*include\s*<([^>]+)>", src):
        if m.group(1).strip() not in ALLOWED_SYSTEM_INCLUDES:
            add(m.start(), "standard library", m.group(0))
    for m in re.finditer(r"\b(while|goto)\b|\bdo\s*\{", src):
        add(m.start(), "unbounded loop", m.group(0))

    # Recursion: a function definition whose body calls the function itself.
    for m in re.finditer(r"\b(\w+)\s*\(", src):
        fname = m.group(1)
        if fname in _KEYWORDS:
            continue
        close = _balanced(src, m.end() - 1, "(", ")")
        after = re.match(r"\s*(?:const\s*)?\{", src[close:])
        if after is None or re.match(r"\s*[;=]", src[close:]):
            continue
        body_start = close + after.end() - 1
        body_end = _balanced(src, body_start, "{", "}")
        if re.search(rf"\b{re.escape(fname)}\s*\(", src[body_start + 1:body_end - 1]):
            add(m.start(), "recursion", f"{fname} calls itself")

    # Loops: a static bound (a constant on the right of < or <=), or a tripcount pragma in the body.
    for m in re.finditer(r"\bfor\s*\(", src):
        close = _balanced(src, m.end() - 1, "(", ")")
        header = src[m.end():close - 1]
        parts = header.split(";")
        if len(parts) != 3 or not parts[1].strip():
            add(m.start(), "unbounded loop", f"for ({header})")
            continue
        cond = re.fullmatch(r"\s*\w+\s*(<|<=)\s*(.+?)\s*", parts[1])
        if cond is not None and is_constant(cond.group(2), constants):
            continue
        brace = re.match(r"\s*\{", src[close:])
        body = src[close:_balanced(src, close + brace.end() - 1, "{", "}")] if brace else src[close:src.find(";", close)]
        body = re.split(r"\bfor\s*\(", body)[0]  # this loop's own pragmas, not a nested loop's
        if not re.search(r"#\s*pragma\s+HLS\s+loop_tripcount\b", body, re.IGNORECASE):
            add(m.start(), "loop without a static bound or tripcount", f"for ({header})")

    # Arrays (locals, statics, parameters): every dimension a compile-time constant.
    decl = re.compile(r"(?m)(?:^|[;{(,])\s*(?:static\s+)?(?:const\s+)?(?:volatile\s+)?([A-Za-z_][\w:]*(?:<[^<>;]*>)?)\s+"
                      r"(\w+)\s*((?:\[[^\]]*\])+)\s*(?=[;=,)])")
    for m in decl.finditer(src):
        type_name = m.group(1)
        if type_name in _KEYWORDS:
            continue
        for dim in re.findall(r"\[([^\]]*)\]", m.group(3)):
            if not is_constant(dim, constants):
                add(m.start(2), "variable-length array", f"{m.group(2)}[{dim}]")
    return found


def check_files(paths: list[Path]) -> list[Violation]:
    """Violations in synthesized sources; constants are gathered from all of them together."""
    texts = {str(p): Path(p).read_text(encoding="utf-8") for p in paths}
    constants = set()
    for text in texts.values():
        constants |= constant_names(text)
    found = []
    for name, text in texts.items():
        found += check_source(name, text, constants)
    return found
