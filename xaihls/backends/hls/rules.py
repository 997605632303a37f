"""What Vitis HLS refuses to synthesize, or synthesizes badly, found by reading the C++ (no Vitis needed).

A lightweight lexical check of the synthesized sources: dynamic memory, the standard
library, recursion, loops without a static bound, variable-length arrays; and, inside
pipelined loops (issue 12), division, modulo and products of two run-time values, each of
which costs a divider or a DSP in every pipeline that has it. It reads the code the way the
engine is written (one function per definition, counted ``for`` loops); it is a tripwire for
CI, not a C++ parser.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import Path

ALLOWED_SYSTEM_INCLUDES = {"ap_int.h", "ap_fixed.h", "hls_stream.h", "hls_math.h", "hls_vector.h",
                           "hls_streamofblocks.h", "stdint.h"}
DATA_MULTIPLIERS = {"dsp_mul"}
"""The functions a pipelined loop may multiply two run-time values with: the data path's
multiplier (one DSP: operands that fit DSP_INPUTS, checked by ``multiplier_widths``). Any other
product in a pipelined loop, or in a function it calls, needs a compile-time-constant operand."""
DSP_INPUTS = (25, 18)
"""A DSP48's multiplier inputs, signed bits: 25 x 18 on a DSP48E1 (7-series, Zynq-7000), 27 x 18 on a
DSP48E2 (UltraScale): a product of operands that fit 25 x 18 is one DSP on both."""
_BUILTIN_WIDTHS = {"bool": (1, False), "char": (8, True), "int8_t": (8, True), "uint8_t": (8, False),
                   "short": (16, True), "int16_t": (16, True), "uint16_t": (16, False), "int": (32, True),
                   "int32_t": (32, True), "uint32_t": (32, False), "unsigned": (32, False), "long": (64, True),
                   "int64_t": (64, True), "uint64_t": (64, False), "size_t": (64, False)}
_BUILTIN_TYPES = {"int", "char", "short", "long", "unsigned", "signed", "float", "double", "bool", "void", "auto",
                  "size_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t"}
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
    for params in re.findall(r"\btemplate\s*<([^<>]*)>", code):  # non-type template parameters
        names |= set(re.findall(r"\b(?:int|unsigned|bool|long|size_t)\s+(\w+)", params))
    return names


def type_names(code: str) -> set[str]:
    """Names of types: the built-in ones, typedefs, usings, structs and classes."""
    code = strip_comments(code)
    names = set(_BUILTIN_TYPES)
    names |= set(re.findall(r"\btypedef\b[^;]*?\b(\w+)\s*(?:\[[^\]]*\]\s*)*;", code))
    names |= set(re.findall(r"\busing\s+(\w+)\s*=", code))
    names |= set(re.findall(r"\b(?:struct|class)\s+(\w+)", code))
    return names


def is_constant(expr: str, constants: set[str], types: frozenset[str] | set[str] = frozenset()) -> bool:
    """An integer expression of literals, constant names and + - * / ( ) (``types``: names
    that may appear as casts, e.g. ``int(N)``)."""
    tokens = re.findall(r"(?:\w+::)*\w+|<<|>>|\S", expr)
    if not tokens:
        return False
    for tok in tokens:
        if re.fullmatch(r"(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*", tok) or tok in ("+", "-", "*", "/", "%", "(", ")", "<<", ">>"):
            continue
        if tok.split("::")[-1] in constants or tok in types:
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


# ---- arithmetic inside pipelined loops ----

@dataclass(frozen=True)
class Function:
    """A function definition: the file it is in and where its body is."""

    file: str
    name: str
    code: str  # the file's text, comments stripped
    name_start: int
    body_start: int
    body_end: int


def function_definitions(name: str, code: str) -> list[Function]:
    """The function definitions of a (comment-stripped) source."""
    found = []
    for m in re.finditer(r"\b(\w+)\s*\(", code):
        fname = m.group(1)
        if fname in _KEYWORDS:
            continue
        close = _balanced(code, m.end() - 1, "(", ")")
        after = re.match(r"\s*(?:const\s*)?\{", code[close:])
        if after is None:
            continue
        start = close + after.end() - 1
        found.append(Function(name, fname, code, m.start(), start, _balanced(code, start, "{", "}")))
    return found


def _operand_before(code: str, i: int) -> str:
    """The primary expression that ends just before index ``i`` (``a``, ``a[k]``, ``f(x)``, ``(x + y)``)."""
    j = i
    while j > 0 and code[j - 1].isspace():
        j -= 1
    end = j
    while True:
        if j > 0 and code[j - 1] in ")]":
            close, open_ = code[j - 1], "(" if code[j - 1] == ")" else "["
            depth = 0
            while j > 0:
                j -= 1
                if code[j] == close:
                    depth += 1
                elif code[j] == open_:
                    depth -= 1
                    if depth == 0:
                        break
            continue
        k = j
        while k > 0 and (code[k - 1].isalnum() or code[k - 1] in "_:."):
            k -= 1
        if k == j:
            break
        j = k
        if j > 0 and code[j - 1] in ")]":
            continue
        if code[j - 2:j] == "->":
            j -= 2
            continue
        break
    return code[j:end]


def _operand_after(code: str, i: int) -> str:
    """The primary expression that starts at index ``i`` (after spaces and unary signs)."""
    j = i
    while j < len(code) and (code[j].isspace() or code[j] in "+-!~"):
        j += 1
    start = j
    while j < len(code):
        if code[j] in "([":
            j = _balanced(code, j, code[j], ")" if code[j] == "(" else "]")
            continue
        k = j
        while k < len(code) and (code[k].isalnum() or code[k] in "_:."):
            k += 1
        if k == j:
            if code[j:j + 2] == "->":
                j += 2
                continue
            break
        j = k
    return code[start:j]


def _is_compile_time(operand: str, constants: set[str], types: set[str]) -> bool:
    operand = operand.strip()
    if not operand or re.search(r"[\[.]|->", operand):
        return False
    call = re.fullmatch(r"((?:\w+::)*\w+)\s*\((.*)\)", operand, re.DOTALL)
    if call is not None and call.group(1).split("::")[-1] not in types and call.group(1) != "sizeof":
        return False  # a function's result
    return is_constant(operand, constants, types)


def _unrolled_counters(body: str, constants: set[str]) -> set[str]:
    """Counters of the fully unrolled, statically bounded loops inside ``body``: a constant in each copy."""
    names = set()
    for m in re.finditer(r"\bfor\s*\(", body):
        close = _balanced(body, m.end() - 1, "(", ")")
        header = re.fullmatch(r"\s*(?:int|unsigned)\s+(\w+)\s*=\s*([^;]+);\s*\1\s*(?:<|<=)\s*([^;]+);.*", body[m.end():close - 1],
                              re.DOTALL)
        brace = re.match(r"\s*\{", body[close:])
        if header is None or brace is None:
            continue
        own = re.split(r"\bfor\s*\(", body[close:_balanced(body, close + brace.end() - 1, "{", "}")])[0]
        full = re.search(r"#\s*pragma\s+HLS\s+unroll\s*(?:\n|$)", own, re.IGNORECASE)
        if full and is_constant(header.group(2), constants) and is_constant(header.group(3), constants):
            names.add(header.group(1))
    return names


def _arithmetic(code: str, start: int, end: int, constants: set[str], types: set[str]):
    """(offset, rule, text, called) for each division, modulo or run-time product in
    code[start:end], and the functions it calls."""
    consts = constants | _unrolled_counters(code[start:end], constants)
    text = re.sub(r"#\s*pragma[^\n]*", lambda m: " " * len(m.group(0)), code[start:end])
    issues = []
    for m in re.finditer(r"(?<![/*])([/%*])(=?)(?![/*])", text):
        op, i = m.group(1), m.start()
        left = _operand_before(text, i)
        if op == "*":
            before = text[:i].rstrip()
            if not before or before[-1] not in ")]_" and not before[-1].isalnum():
                continue  # a dereference or a pointer declarator after punctuation
            word = re.search(r"(\w+)$", before)
            if word and (word.group(1) in types or word.group(1) in ("operator", "const")):
                continue  # a pointer declarator: T *p
        right = _operand_after(text, m.end())
        if _is_compile_time(left, consts, types) and _is_compile_time(right, consts, types):
            continue
        if op == "*" and (_is_compile_time(left, consts, types) or _is_compile_time(right, consts, types)):
            continue  # a constant product: shifts and adds
        rule = {"/": "division", "%": "modulo", "*": "run-time product"}[op] + " inside a pipelined loop"
        issues.append((start + i, rule, f"{left.strip()} {op}{m.group(2)} {right.strip()}"))
    called = {c for c in re.findall(r"(?<![\w.>])(\w+)\s*\(", text) if c not in _KEYWORDS and c not in types}
    return issues, called


def pipelined_arithmetic(files: dict[str, str], constants: set[str]) -> list[Violation]:
    """Division, modulo and products of two run-time values inside pipelined loops of
    ``files`` (name -> source), or in a function such a loop calls (DATA_MULTIPLIERS aside)."""
    stripped = {name: strip_comments(code) for name, code in files.items()}
    types = set().union(*(type_names(code) for code in stripped.values()))
    functions: dict[str, list[Function]] = {}
    for name, code in stripped.items():
        for f in function_definitions(name, code):
            functions.setdefault(f.name, []).append(f)
    found: dict[tuple, Violation] = {}

    def visit(file: str, code: str, start: int, end: int, where: str, seen: set[str]) -> None:
        issues, called = _arithmetic(code, start, end, constants, types)
        for offset, rule, text in issues:
            v = Violation(file, _line(code, offset), rule, text + where)
            found[(v.file, v.line, v.text)] = v
        for fname in sorted(called - DATA_MULTIPLIERS - seen):
            for d in functions.get(fname, []):
                visit(d.file, d.code, d.body_start, d.body_end,
                      where or f" (in {fname}, called inside a pipelined loop)", seen | {fname})

    for name, code in stripped.items():
        for m in re.finditer(r"\bfor\s*\(", code):
            close = _balanced(code, m.end() - 1, "(", ")")
            brace = re.match(r"\s*\{", code[close:])
            if brace is None:
                continue
            body_end = _balanced(code, close + brace.end() - 1, "{", "}")
            own = re.split(r"\bfor\s*\(", code[close:body_end])[0]
            if re.search(r"#\s*pragma\s+HLS\s+pipeline\b(?!\s+off)", own, re.IGNORECASE):
                visit(name, code, close, body_end, "", set())
    return sorted(found.values(), key=lambda v: (v.file, v.line, v.text))


# ---- the data path's multiplier ----

def constant_values(code: str) -> dict[str, int]:
    """The values of the ``constexpr int`` names of a (comment-stripped) source whose expression
    is of literals and names defined before (+ - * / << >> and parentheses)."""
    values: dict[str, int] = {}
    for m in re.finditer(r"\bconstexpr\s+(?:unsigned\s+|long\s+|int\s+|short\s+)+(\w+)\s*=\s*([^;]+);", code):
        value = _evaluate(m.group(2), values)
        if value is not None:
            values[m.group(1)] = value
    return values


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift}


def _evaluate(expr: str, values: dict[str, int]) -> int | None:
    """An integer expression of literals and ``values``' names (+ - * / << >>), or None."""
    out = []
    for tok in re.findall(r"(?:\w+::)*\w+|<<|>>|\S", expr):
        literal = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", tok)
        if literal:
            out.append(str(int(literal.group(1), 0)))
        elif tok.split("::")[-1] in values:
            out.append(f"({values[tok.split('::')[-1]]})")
        elif tok in ("+", "-", "*", "/", "(", ")", "<<", ">>"):
            out.append("//" if tok == "/" else tok)
        else:
            return None

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        raise ValueError(ast.dump(node))

    try:
        return value(ast.parse(" ".join(out), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def integer_widths(code: str, values: dict[str, int]) -> dict[str, tuple[int, bool]]:
    """(bits, signed) of the built-in integer types and of the typedefs and usings of a
    (comment-stripped) source that name an ap_int, ap_uint or another such type."""
    widths = dict(_BUILTIN_WIDTHS)
    decls = [(m.group(2), m.group(1)) for m in re.finditer(r"\btypedef\s+([^;{}]+?)\s+(\w+)\s*;", code)]
    decls += [(m.group(1), m.group(2)) for m in re.finditer(r"\busing\s+(\w+)\s*=\s*([^;{}]+);", code)]
    for name, spelled in decls:
        width = type_width(spelled, widths, values)
        if width is not None:
            widths[name] = width
    return widths


def type_width(spelled: str, widths: dict[str, tuple[int, bool]], values: dict[str, int]) -> tuple[int, bool] | None:
    """(bits, signed) of a type as written (``const ap_int<25>``, ``operand_t``, ``unsigned int``), or None."""
    spelled = re.sub(r"\b(?:const|volatile|inline|static)\b|&", " ", spelled).strip()
    ap = re.fullmatch(r"(?:\w+::)*ap_(u?)int\s*<(.+)>", spelled)
    if ap is not None:
        bits = _evaluate(ap.group(2), values)
        return None if bits is None else (bits, ap.group(1) == "")
    words = spelled.split()
    if len(words) > 1 and set(words) <= set(_BUILTIN_WIDTHS):
        return (64 if "long" in words else 32, "unsigned" not in words)
    return widths.get(spelled.split("::")[-1]) if len(words) == 1 else None


def multiplier_widths(files: dict[str, str]) -> list[Violation]:
    """The data path's multipliers (DATA_MULTIPLIERS) of ``files`` (name -> source) are one DSP48
    each and exact: the operands fit DSP_INPUTS as signed values (an unsigned n-bit operand takes
    n + 1), and the product type holds their product. A multiplier whose widths cannot be read
    counts as too wide."""
    stripped = {name: strip_comments(code) for name, code in files.items()}
    joined = "\n".join(stripped.values())
    values = constant_values(joined)
    widths = integer_widths(joined, values)
    found = []
    wide, narrow = DSP_INPUTS
    for name, code in stripped.items():
        for f in function_definitions(name, code):
            if f.name not in DATA_MULTIPLIERS:
                continue
            start = max(code.rfind(c, 0, f.name_start) for c in ";{}") + 1  # the declaration's start
            head = re.sub(r"#[^\n]*", " ", code[start:f.body_start])
            m = re.search(rf"([\w:<>\s]+?)\s*\b{f.name}\s*\((.*)\)\s*$", head, re.DOTALL)
            params = [p.strip() for p in m.group(2).split(",")] if m else []
            types = [re.sub(r"\s*&?\s*\w+$", "", p) for p in params]
            operand = [type_width(t, widths, values) for t in types]
            result = type_width(m.group(1), widths, values) if m else None
            line = _line(code, f.name_start)
            if len(operand) != 2 or None in operand or result is None:
                found.append(Violation(name, line, "data-path multiplier whose widths cannot be read",
                                       f"{f.name}({', '.join(params)})"))
                continue
            bits = sorted((w if s else w + 1 for w, s in operand), reverse=True)
            text = f"{f.name}({', '.join(params)}): {bits[0]} x {bits[1]} bits"
            if bits[0] > wide or bits[1] > narrow:
                found.append(Violation(name, line, f"data-path multiplier wider than one DSP48 ({wide} x {narrow})",
                                       text))
            if result[0] + (0 if result[1] else 1) < bits[0] + bits[1]:
                found.append(Violation(name, line, "data-path product narrower than its operands' (not exact)",
                                       f"{text}, product {result[0]} bits"))
    return found


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
    for f in function_definitions(name, src):
        if re.search(rf"\b{re.escape(f.name)}\s*\(", src[f.body_start + 1:f.body_end - 1]):
            add(f.name_start, "recursion", f"{f.name} calls itself")

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


def check_files(paths: list[Path], pipelined: bool = True) -> list[Violation]:
    """Violations in synthesized sources; constants and functions are gathered from all of
    them together. ``pipelined``: also check the arithmetic inside pipelined loops."""
    texts = {str(p): Path(p).read_text(encoding="utf-8") for p in paths}
    constants = set()
    for text in texts.values():
        constants |= constant_names(text)
    found = []
    for name, text in texts.items():
        found += check_source(name, text, constants)
    if pipelined:
        found += pipelined_arithmetic(texts, constants)
    found += multiplier_widths(texts)
    return found
