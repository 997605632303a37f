"""Board descriptions: the part, default clock, resources and DDR bandwidth a plan targets.

A board is one YAML file whose stem is the board name. Bundled boards are the YAML files
of ``boards/`` (inside the package in a wheel); users add or override boards with folders named in
``XAIHLS_BOARD_PATH`` (``os.pathsep``-separated) or passed as ``search_path``.
Every board returned by this module has passed validation; any mistake in a board file
raises ``XaiHlsError`` with one line naming the file and the field.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xaihls.bundled import BOARDS_DIR
from xaihls.errors import XaiHlsError

BOARD_PATH_ENV = "XAIHLS_BOARD_PATH"
BUNDLED_BOARD_DIR = BOARDS_DIR
BOARD_SUFFIX = ".yaml"

# Device family -> yosys `synth_xilinx -family` name. The pairing is fixed by the silicon,
# so a board file that disagrees with it is a mistake, not a choice.
YOSYS_FAMILY_OF = {
    "zynq7": "xc7",
    "artix7": "xc7",
    "zynqmp": "xcup",
    "virtexuplus": "xcup",
}

# Device family -> the data width of the AXI4 port an accelerator gets to DDR: Zynq-7000's HP
# ports are 64 bits (UG585, "AXI_HP interfaces"), Zynq UltraScale+'s 128 (UG1085, "PL-PS
# interfaces"), an Alveo shell's memory ports 512 (UG1393); an Artix-7 board's MIG user port
# is taken at 64 bits. A board file may set ``axi_data_bits`` to override it.
AXI_DATA_BITS_OF = {
    "zynq7": 64,
    "artix7": 64,
    "zynqmp": 128,
    "virtexuplus": 512,
}
AXI_DATA_WIDTHS = (64, 128, 256, 512)

RESOURCE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")

# Field -> what it must be, in the words the error message uses.
_FIELD_EXPECTATIONS = {
    "name": "a non-empty string equal to the file name",
    "description": "a non-empty string",
    "part": "a non-empty string (the AMD part number, e.g. 'xc7z020clg400-1')",
    "family": "one of " + ", ".join(YOSYS_FAMILY_OF),
    "yosys_family": "one of " + ", ".join(sorted(set(YOSYS_FAMILY_OF.values()))),
    "clock_mhz": "a number > 0 (MHz)",
    "resources": "a mapping with keys " + ", ".join(RESOURCE_KEYS),
    "ddr_bandwidth_gbps": "a number > 0 (GB/s)",
    "source": "a non-empty string naming the data sheet or product page of the figures",
}
_OPTIONAL_FIELDS = {
    "axi_data_bits": "one of " + ", ".join(map(str, AXI_DATA_WIDTHS)) + " (the accelerator's DDR port; "
                     "default: the family's)",
}


@dataclass(frozen=True)
class Resources:
    """On-chip resources of a part; all counts are >= 0, and all but URAM are > 0."""

    lut: int
    ff: int
    dsp: int
    bram_18k: int  # 18 Kb block RAM halves: 2 x the number of RAMB36
    uram: int

    def as_dict(self) -> dict[str, int]:
        """The counts under the names used in board files and reports."""
        return {
            "LUT": self.lut,
            "FF": self.ff,
            "DSP": self.dsp,
            "BRAM_18K": self.bram_18k,
            "URAM": self.uram,
        }


@dataclass(frozen=True)
class Board:
    """One validated board file; every field is present, typed and in range."""

    name: str
    description: str
    part: str
    family: str
    yosys_family: str
    clock_mhz: float
    resources: Resources
    ddr_bandwidth_gbps: float
    source: str
    path: Path
    axi_data_bits: int = 64

    @property
    def beat_elems(self) -> int:
        """16-bit elements per beat of the accelerator's DDR port."""
        return self.axi_data_bits // 16

    def bytes_per_cycle(self, clock_mhz: float | None = None) -> float:
        """Peak DDR bytes per design clock cycle (GB = 1e9 bytes), at the board's
        default clock unless another is given."""
        clock = self.clock_mhz if clock_mhz is None else clock_mhz
        if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not clock > 0:
            raise XaiHlsError(
                f"board '{self.name}': clock must be a number > 0 (MHz), got {clock!r}"
            )
        return self.ddr_bandwidth_gbps * 1e9 / (clock * 1e6)


def load_board(name_or_path: str | Path, search_path: Iterable[str | Path] | None = None) -> Board:
    """Load one board by name (case-insensitive) or by the path of its YAML file.

    Names are looked up in the bundled boards, then ``XAIHLS_BOARD_PATH``, then
    ``search_path``; a later folder overrides an earlier one for the same name.
    """
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise XaiHlsError(f"board file {path} does not exist")
        return _load_board_file(path)

    index = _board_index(search_path)
    key = str(name_or_path).casefold()
    if key not in index:
        known = ", ".join(sorted(index))
        raise XaiHlsError(
            f"unknown board '{name_or_path}'; known boards: {known} "
            f"(add your own with {BOARD_PATH_ENV} or --board-path)"
        )
    return _load_board_file(index[key])


def list_boards(search_path: Iterable[str | Path] | None = None) -> list[Board]:
    """Every visible board (user boards replacing bundled ones of the same name),
    validated and sorted by name."""
    boards = [_load_board_file(path) for path in _board_index(search_path).values()]
    return sorted(boards, key=lambda board: board.name.casefold())


def _looks_like_path(name_or_path: str | Path) -> bool:
    # A board name never has a suffix or a folder in it, so either means "this is a file".
    if isinstance(name_or_path, Path):
        return True
    text = str(name_or_path)
    has_sep = "/" in text or os.sep in text or (os.altsep is not None and os.altsep in text)
    return has_sep or text.lower().endswith((".yaml", ".yml"))


def _board_folders(search_path: Iterable[str | Path] | None) -> list[tuple[Path, str]]:
    """Folders to search, lowest priority first, each with where it came from."""
    folders: list[tuple[Path, str]] = [(BUNDLED_BOARD_DIR, "bundled boards")]
    env_value = os.environ.get(BOARD_PATH_ENV, "")
    # Empty entries (a trailing separator, say) are ignored as PATH-like variables do.
    folders += [(Path(entry).expanduser(), BOARD_PATH_ENV) for entry in env_value.split(os.pathsep) if entry]
    if search_path is not None:
        if isinstance(search_path, (str, Path)):
            search_path = [search_path]
        folders += [(Path(entry).expanduser(), "search path") for entry in search_path]
    return folders


def _board_index(search_path: Iterable[str | Path] | None) -> dict[str, Path]:
    """Casefolded board name -> the board file that wins for that name."""
    index: dict[str, Path] = {}
    for folder, origin in _board_folders(search_path):
        if not folder.is_dir():
            # A mistyped folder would otherwise hide the user's board without a word.
            raise XaiHlsError(f"board folder {folder} (from {origin}) does not exist or is not a folder")
        seen_here: dict[str, Path] = {}
        for path in sorted(folder.glob("*" + BOARD_SUFFIX)):
            key = path.stem.casefold()
            if key in seen_here:
                raise XaiHlsError(
                    f"board folder {folder}: {seen_here[key].name} and {path.name} name the same board "
                    "(board names are case-insensitive); keep one"
                )
            seen_here[key] = path
        index.update(seen_here)
    return index


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently overwrites."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, f"a {type(key).__name__} cannot be a key", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise XaiHlsError(f"board file {path}: cannot be read ({_one_line(str(exc))})") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise XaiHlsError(f"board file {path}: YAML syntax error{where}: {_one_line(problem)}") from exc


def _load_board_file(path: Path) -> Board:
    path = path.resolve()
    data = _read_yaml(path)
    if not isinstance(data, Mapping):
        raise XaiHlsError(
            f"board file {path}: must be a mapping of the fields {', '.join(_FIELD_EXPECTATIONS)}, "
            f"got {_show(data)}"
        )

    known = {**_FIELD_EXPECTATIONS, **_OPTIONAL_FIELDS}
    for key in data:
        if key not in known:
            raise XaiHlsError(
                f"board file {path}: unknown field {_show(key)}{_did_you_mean(key, known)}; "
                f"expected fields: {', '.join(known)}"
            )
    for field, expectation in _FIELD_EXPECTATIONS.items():
        if field not in data:
            raise XaiHlsError(f"board file {path}: field '{field}' is missing; it must be {expectation}")

    def fail(field: str, value: Any, expectation: str | None = None) -> XaiHlsError:
        expected = expectation or known[field]
        return XaiHlsError(f"board file {path}: field '{field}' must be {expected}, got {_show(value)}")

    strings = {}
    for field in ("name", "description", "part", "family", "yosys_family", "source"):
        value = data[field]
        if not isinstance(value, str) or not value.strip():
            raise fail(field, value)
        strings[field] = value.strip()

    if strings["name"].casefold() != path.stem.casefold():
        raise fail("name", data["name"], f"equal to the file name '{path.stem}'")
    if strings["family"] not in YOSYS_FAMILY_OF:
        raise fail("family", data["family"])
    expected_yosys = YOSYS_FAMILY_OF[strings["family"]]
    if strings["yosys_family"] != expected_yosys:
        raise fail(
            "yosys_family", data["yosys_family"], f"'{expected_yosys}' for family '{strings['family']}'"
        )

    numbers = {}
    for field in ("clock_mhz", "ddr_bandwidth_gbps"):
        value = data[field]
        # bool is an int subclass in Python; `clock_mhz: yes` is a typo, not 1 MHz.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise fail(field, value)
        numbers[field] = float(value)

    axi_bits = data.get("axi_data_bits", AXI_DATA_BITS_OF[strings["family"]])
    if isinstance(axi_bits, bool) or axi_bits not in AXI_DATA_WIDTHS:
        raise fail("axi_data_bits", axi_bits)

    return Board(
        axi_data_bits=int(axi_bits),
        name=strings["name"],
        description=strings["description"],
        part=strings["part"],
        family=strings["family"],
        yosys_family=strings["yosys_family"],
        clock_mhz=numbers["clock_mhz"],
        resources=_parse_resources(path, data["resources"]),
        ddr_bandwidth_gbps=numbers["ddr_bandwidth_gbps"],
        source=strings["source"],
        path=path,
    )


def _parse_resources(path: Path, value: Any) -> Resources:
    if not isinstance(value, Mapping):
        expected = _FIELD_EXPECTATIONS["resources"]
        raise XaiHlsError(f"board file {path}: field 'resources' must be {expected}, got {_show(value)}")
    for key in value:
        if key not in RESOURCE_KEYS:
            raise XaiHlsError(
                f"board file {path}: unknown field 'resources.{key}'{_did_you_mean(key, RESOURCE_KEYS)}; "
                f"expected keys: {', '.join(RESOURCE_KEYS)}"
            )
    counts = {}
    for key in RESOURCE_KEYS:
        # Boards without UltraRAM (all 7-series, the smaller MPSoCs) legitimately have 0.
        minimum, words = (0, "an integer >= 0") if key == "URAM" else (1, "a positive integer")
        if key not in value:
            raise XaiHlsError(f"board file {path}: field 'resources.{key}' is missing; it must be {words}")
        count = value[key]
        if isinstance(count, bool) or not isinstance(count, int) or count < minimum:
            raise XaiHlsError(
                f"board file {path}: field 'resources.{key}' must be {words}, got {_show(count)}"
            )
        counts[key] = count
    return Resources(
        lut=counts["LUT"],
        ff=counts["FF"],
        dsp=counts["DSP"],
        bram_18k=counts["BRAM_18K"],
        uram=counts["URAM"],
    )


def _did_you_mean(key: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _show(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a user value for an error message."""
    if value is None:
        return "nothing"
    text = _one_line(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())
