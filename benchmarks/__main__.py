"""The benchmarks: ``python -m benchmarks`` lists them, ``python -m benchmarks NAME [ARGS]`` runs one
(as ``python -m benchmarks.NAME [ARGS]``). Their results go to benchmarks/results/ and, with the
machine, date and command, to benchmarks/RESULTS.md; those that run Verilator or yosys take the
shared heavy-tool lock (``flock /tmp/xaihls-heavy.lock ...``) on a shared machine."""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
HELPERS = {"__init__", "__main__", "switch"}


def benchmarks() -> dict[str, str]:
    """Each benchmark module's name and the first line of its docstring, read without importing it."""
    out = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem not in HELPERS:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            out[path.stem] = doc.split("\n\n")[0].replace("\n", " ")
    return out


def main(argv: list[str]) -> int:
    known = benchmarks()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__ + "\n")
        for name, line in known.items():
            print(f"{name:<16}{line}")
        return 0
    if argv[0] not in known:
        print(f"no benchmark '{argv[0]}'; the benchmarks: {', '.join(known)}", file=sys.stderr)
        return 2
    sys.argv = [argv[0], *argv[1:]]  # argv[0] becomes the module's path (alter_sys)
    runpy.run_module(f"benchmarks.{argv[0]}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
