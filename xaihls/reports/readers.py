"""Readers of vendor and open-source tool reports, each into one `ToolReport` record.

Supported: Vitis HLS ``<top>_csynth.xml``, Vitis/Vivado HLS ``<top>_cosim.rpt``, the text of
Vivado ``report_utilization`` (7-series and UltraScale+ layouts) and ``report_timing_summary``
(worst slacks and the achieved clock), and the output of yosys
``stat`` after ``synth_xilinx`` (the table layout of recent yosys, checked with 0.70, and
the older ``Number of cells:`` layout). Every reader either returns a complete record or raises
`XaiHlsError` with one line naming the file and what is missing; a report is never
half-read silently.

hls4ml (``hls4ml/report/vivado_report.py``) parses the same csynth XML and cosim table, but
only from a whole hls4ml project folder, and prints as it goes; the element paths and the
cosim column order used here are the ones it uses. Its Vivado reader takes "Block RAM Tile"
(36 Kb tiles) as BRAM_18K; here it is doubled.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from xaihls.errors import XaiHlsError
from xaihls.plan.boards import RESOURCE_KEYS, Board, list_boards, load_board

SOURCES = ("vitis-csynth", "vitis-cosim", "vivado-utilization", "vivado-timing", "yosys")


@dataclass(frozen=True)
class TimingSummary:
    """What Vivado ``report_timing_summary`` says about a routed (or synthesized) design.

    Slacks are in ns, None where Vivado writes NA (no path of that kind). ``clock`` is the
    design clock the figures below it refer to: the one asked for, else the clock of the
    Intra Clock Table with the most setup endpoints (the engine's, in a board-flow design).
    """

    wns_ns: float | None  # worst setup slack of the whole design
    tns_ns: float | None  # total negative setup slack
    whs_ns: float | None  # worst hold slack
    ths_ns: float | None  # total negative hold slack
    failing_endpoints: int | None  # setup endpoints that fail
    met: bool  # Vivado's own verdict: "All user specified timing constraints are met."
    clock: str | None = None
    clock_period_ns: float | None = None  # the constraint
    clock_wns_ns: float | None = None  # worst setup slack of that clock's own paths

    @property
    def target_mhz(self) -> float | None:
        return None if self.clock_period_ns is None else 1000.0 / self.clock_period_ns

    @property
    def fmax_mhz(self) -> float | None:
        """The clock the design's slowest path of ``clock`` allows: 1 / (period - WNS)."""
        if self.clock_period_ns is None or self.clock_wns_ns is None:
            return None
        return 1000.0 / (self.clock_period_ns - self.clock_wns_ns)

    def as_dict(self) -> dict:
        return {"wns_ns": self.wns_ns, "tns_ns": self.tns_ns, "whs_ns": self.whs_ns, "ths_ns": self.ths_ns,
                "failing_endpoints": self.failing_endpoints, "met": self.met, "clock": self.clock,
                "target_mhz": self.target_mhz, "fmax_mhz": self.fmax_mhz}


@dataclass(frozen=True)
class ToolReport:
    """What one tool report says about one design, in one shape for every tool.

    Counts are in the units of the board files: LUTs (LUT RAM and shift registers included,
    as Vivado counts them), flip-flops (latches included), DSP slices, 18 Kb block RAM halves
    (a RAMB36 counts 2) and UltraRAMs. ``resources`` holds only what the report states;
    ``available`` holds the device totals the report (or the given board) states, and may be
    empty. Treat both dicts as read-only. Unknown figures are None, never 0.
    """

    source: str
    path: str
    top: str | None = None
    part: str | None = None
    board: str | None = None
    clock_target_ns: float | None = None
    clock_estimate_ns: float | None = None
    latency_min_cycles: int | None = None
    latency_max_cycles: int | None = None
    interval_min: int | None = None
    interval_max: int | None = None
    resources: dict[str, int] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    timing: TimingSummary | None = None  # vivado-timing only

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown report source {self.source!r}; one of {SOURCES}")
        for name in ("resources", "available"):
            counts = dict(getattr(self, name))
            for key, value in counts.items():
                if key not in RESOURCE_KEYS or type(value) is not int or value < 0:
                    raise ValueError(f"ToolReport.{name}: {key}={value!r} is not a count of {RESOURCE_KEYS}")
            # A copy, so that a caller's later edit of its own dict cannot change the record.
            object.__setattr__(self, name, counts)

    def clock_period_ns(self) -> float | None:
        """The clock the latency is converted with: the estimate if known, else the target."""
        return self.clock_estimate_ns if self.clock_estimate_ns is not None else self.clock_target_ns

    def latency_seconds(self) -> float | None:
        """Worst-case latency in seconds (max cycles x clock period); None if either is unknown."""
        period = self.clock_period_ns()
        if self.latency_max_cycles is None or period is None:
            return None
        return self.latency_max_cycles * period * 1e-9

    def percentages(self) -> dict[str, float]:
        """Used / available x 100 for each resource whose available count is known and > 0."""
        return {
            key: 100.0 * used / self.available[key]
            for key, used in self.resources.items()
            if self.available.get(key, 0) > 0
        }


# --------------------------------------------------------------------------- dispatch


def read_report(path: str | Path, *, board: str | None = None) -> ToolReport:
    """Read any supported report, chosen by file name, else by content.

    ``board`` (a board name or board file) names the board the report is for; without it,
    the board is the one board file whose part is the report's part, if exactly one is.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith("csynth.xml"):
        return read_csynth_xml(path, board=board)
    if name.endswith("cosim.rpt"):
        return read_cosim_rpt(path, board=board)
    text = _read_text(path)
    head = text[:4096]
    if "<profile" in head:
        return read_csynth_xml(path, board=board)
    if "report_timing_summary" in head or "Timing Summary Report" in head:
        return read_vivado_timing_summary(path, board=board)
    if "report_utilization" in head or "Utilization Design Information" in head:
        return read_vivado_utilization(path, board=board)
    if "Latency(Clock Cycles)" in text or re.search(r"^\|\s*(Verilog|VHDL)\s*\|", text, re.MULTILINE):
        return read_cosim_rpt(path, board=board)
    if "Printing statistics" in text or re.search(r"^=== .+ ===\s*$", text, re.MULTILINE):
        return read_yosys_stat(path, board=board)
    raise XaiHlsError(
        f"report {path}: not a report xaihls reads (supported: Vitis HLS <top>_csynth.xml, "
        "<top>_cosim.rpt, Vivado report_utilization and report_timing_summary text, yosys stat output)"
    )


# --------------------------------------------------------------------------- Vitis HLS csynth


_CSYNTH_KIND = "Vitis HLS csynth report"
_LATENCY_FIELDS = {
    "latency_min_cycles": "Best-caseLatency",
    "latency_max_cycles": "Worst-caseLatency",
    "interval_min": "Interval-min",
    "interval_max": "Interval-max",
}
# Vivado HLS (before Vitis) called the DSP count DSP48E.
_CSYNTH_TAGS = {
    "BRAM_18K": "BRAM_18K", "DSP": "DSP", "DSP48E": "DSP", "FF": "FF", "LUT": "LUT", "URAM": "URAM",
}


def read_csynth_xml(path: str | Path, *, board: str | None = None) -> ToolReport:
    """Read a Vitis HLS (or Vivado HLS) ``<top>_csynth.xml``.

    Latency and interval are None where the tool wrote ``undef`` (loops whose trip count it
    cannot bound); LUT, FF, DSP and BRAM_18K must be present, URAM may be absent.
    """
    text = _read_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise _missing(path, f"not well-formed XML ({exc})", _CSYNTH_KIND) from exc
    if root.tag != "profile":
        raise _missing(path, f"root element is <{root.tag}>, not <profile>", _CSYNTH_KIND)

    def element(xpath: str) -> ET.Element:
        found = root.find(xpath)
        if found is None:
            raise _missing(path, f"no {xpath}", _CSYNTH_KIND)
        return found

    def text_of(xpath: str) -> str:
        value = (element(xpath).text or "").strip()
        if not value:
            raise _missing(path, f"{xpath} is empty", _CSYNTH_KIND)
        return value

    def number(xpath: str) -> float:
        value = text_of(xpath)
        try:
            return float(value)
        except ValueError:
            raise XaiHlsError(f"report {path}: {xpath} is {value!r}, not a number") from None

    part = _canonical_part(text_of("UserAssignments/Part"))
    top = text_of("UserAssignments/TopModelName")
    target = number("UserAssignments/TargetClockPeriod")
    estimate = number("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")

    latency: dict[str, int | None] = {}
    for key, tag in _LATENCY_FIELDS.items():
        xpath = f"PerformanceEstimates/SummaryOfOverallLatency/{tag}"
        value = text_of(xpath)
        latency[key] = None if value == "undef" else _count(path, xpath, value)

    resources = _csynth_counts(path, element("AreaEstimates/Resources"), "AreaEstimates/Resources")
    for key in ("LUT", "FF", "DSP", "BRAM_18K"):
        if key not in resources:
            raise _missing(path, f"no AreaEstimates/Resources/{key}", _CSYNTH_KIND)
    available_node = root.find("AreaEstimates/AvailableResources")
    available = (
        {} if available_node is None
        else _csynth_counts(path, available_node, "AreaEstimates/AvailableResources")
    )

    board_name, part, _ = _resolve_board(path, part, board)
    return ToolReport(
        source="vitis-csynth",
        path=str(path),
        top=top,
        part=part,
        board=board_name,
        clock_target_ns=target,
        clock_estimate_ns=estimate,
        resources=resources,
        available=available,
        **latency,
    )


def _csynth_counts(path: str | Path, node: ET.Element, where: str) -> dict[str, int]:
    counts = {}
    for child in node:
        key = _CSYNTH_TAGS.get(child.tag)
        if key is not None:
            counts[key] = _count(path, f"{where}/{child.tag}", (child.text or "").strip())
    return counts


# --------------------------------------------------------------------------- HLS cosim


_COSIM_KIND = "Vitis HLS cosim report"


def read_cosim_rpt(path: str | Path, *, board: str | None = None) -> ToolReport:
    """Read the result table of a Vitis/Vivado HLS ``<top>_cosim.rpt``.

    Takes the first RTL row (Verilog, else VHDL) that was simulated; its status must be
    ``Pass``. The interval is None when the testbench ran one transaction (the tool writes
    NA). The cosim report has no part or clock: ``board`` supplies the part if given.
    """
    text = _read_text(path)
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] in ("Verilog", "VHDL"):
            rows.append((line, cells))
    if not rows:
        raise _missing(path, "no Verilog or VHDL result row", _COSIM_KIND)
    simulated = [(line, cells) for line, cells in rows if len(cells) < 2 or cells[1] != "NA"]
    if not simulated:
        raise XaiHlsError(f"report {path}: no RTL was simulated (status NA for every language)")
    line, cells = simulated[0]
    rtl = cells[0]
    if len(cells) < 8 or not line.rstrip().endswith("|"):
        raise _missing(
            path,
            f"the {rtl} result row is cut short (needs status, latency min/avg/max, interval min/avg/max)",
            _COSIM_KIND,
        )
    status = cells[1]
    if status != "Pass":
        raise XaiHlsError(
            f"report {path}: {rtl} co-simulation status is {status!r}, so it measured no latency"
        )

    def cycles(index: int, what: str) -> int | None:
        value = cells[index]
        return None if value == "NA" else _count(path, f"{rtl} {what}", value)

    latency_min, latency_max = cycles(2, "latency min"), cycles(4, "latency max")
    if latency_min is None or latency_max is None:
        raise XaiHlsError(f"report {path}: {rtl} co-simulation passed but its latency is NA")
    board_name, part, _ = _resolve_board(path, None, board)
    return ToolReport(
        source="vitis-cosim",
        path=str(path),
        top=_top_from_name(path, "_cosim.rpt"),
        part=part,
        board=board_name,
        latency_min_cycles=latency_min,
        latency_max_cycles=latency_max,
        interval_min=cycles(5, "interval min"),
        interval_max=cycles(7, "interval max"),
    )


# --------------------------------------------------------------------------- Vivado report_utilization


_VIVADO_KIND = "Vivado report_utilization report"
# Top-level section titles: UltraScale(+) names first, 7-series names second.
_LOGIC_SECTIONS = ("CLB Logic", "Slice Logic")
_MEMORY_SECTIONS = ("BLOCKRAM", "Memory")
_DSP_SECTIONS = ("ARITHMETIC", "DSP")


def read_vivado_utilization(path: str | Path, *, board: str | None = None) -> ToolReport:
    """Read the text of Vivado ``report_utilization`` (synthesized, placed or routed).

    Counts come from the first table of the logic, memory and DSP sections only: later
    sections (CLB Logic Distribution, SLR tables) repeat the row names with other meanings.
    BRAM_18K is twice the "Block RAM Tile" count (36 Kb tiles, halves included).
    """
    text = _read_text(path)
    lines = text.splitlines()
    header: dict[str, str] = {}
    for line in lines[:40]:
        match = re.match(r"^\|\s*(Design|Device)\s*:\s*(\S+)", line)
        if match:
            header.setdefault(match.group(1), match.group(2))
    tables = _vivado_first_tables(lines)

    def row(sections: tuple[str, ...], labels: tuple[str, ...]) -> tuple[str, dict[str, str]] | None:
        section = next((s for s in sections if s in tables), None)
        if section is None:
            raise _missing(path, f"no '{sections[0]}' or '{sections[1]}' section with a table", _VIVADO_KIND)
        return next(((label, tables[section][label]) for label in labels if label in tables[section]), None)

    def required(sections: tuple[str, ...], labels: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        found = row(sections, labels)
        if found is None:
            wanted = " or ".join(f"'{label}'" for label in labels)
            raise _missing(path, f"no {wanted} row in the {sections[0]} / {sections[1]} table", _VIVADO_KIND)
        return found

    resources: dict[str, int] = {}
    available: dict[str, int] = {}

    def take(key: str, found: tuple[str, dict[str, str]], scale: int = 1) -> None:
        label, cells = found
        used = _vivado_number(path, label, "Used", cells.get("Used", "")) * scale
        # Block RAM tiles come in halves (x.5); after doubling, every count is whole.
        if used != math.floor(used):
            raise XaiHlsError(f"report {path}: '{label}' Used is {used / scale}, not a whole number of units")
        resources[key] = int(used)
        if cells.get("Available"):
            available[key] = int(_vivado_number(path, label, "Available", cells["Available"])) * scale

    take("LUT", required(_LOGIC_SECTIONS, ("CLB LUTs", "Slice LUTs")))
    take("FF", required(_LOGIC_SECTIONS, ("CLB Registers", "Slice Registers")))
    take("BRAM_18K", required(_MEMORY_SECTIONS, ("Block RAM Tile",)), scale=2)
    uram = row(_MEMORY_SECTIONS, ("URAM",))
    if uram is not None:  # only devices with UltraRAM have the row
        take("URAM", uram)
    take("DSP", required(_DSP_SECTIONS, ("DSPs",)))

    part = _canonical_part(header["Device"]) if "Device" in header else None
    board_name, part, _ = _resolve_board(path, part, board)
    return ToolReport(
        source="vivado-utilization",
        path=str(path),
        top=header.get("Design"),
        part=part,
        board=board_name,
        resources=resources,
        available=available,
    )


def _vivado_first_tables(lines: list[str]) -> dict[str, dict[str, dict[str, str]]]:
    """Section title -> row label -> column -> cell, for the first "Site Type" table of each section.

    A section starts at a numbered title underlined with dashes; the table of contents has
    the same titles without underlines, so it never opens a section.
    """
    tables: dict[str, dict[str, dict[str, str]]] = {}
    section: str | None = None
    columns: list[str] | None = None
    done = False
    for index, line in enumerate(lines):
        title = re.match(r"^\d+\.\s+(\S.*?)\s*$", line)
        if title and index + 1 < len(lines) and re.match(r"^-{3,}\s*$", lines[index + 1]):
            section, columns, done = title.group(1), None, False
            continue
        if section is None or done or line.startswith("+"):
            continue
        if not line.startswith("|"):
            done = columns is not None  # the first table has ended
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if columns is None:
            if cells[0] == "Site Type":
                columns = cells
                tables[section] = {}
        elif len(cells) == len(columns):
            # "Slice LUTs*": the star points to a footnote, it is not part of the name.
            tables[section].setdefault(cells[0].rstrip("*").strip(), dict(zip(columns, cells)))
    return tables


def _vivado_number(path: str | Path, label: str, column: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise XaiHlsError(f"report {path}: '{label}' {column} is {value!r}, not a number") from None


# --------------------------------------------------------------------------- Vivado report_timing_summary


_TIMING_KIND = "Vivado report_timing_summary report"
_DESIGN_COLUMNS = ("WNS(ns)", "TNS(ns)", "TNS Failing Endpoints", "TNS Total Endpoints", "WHS(ns)", "THS(ns)",
                   "THS Failing Endpoints", "THS Total Endpoints", "WPWS(ns)", "TPWS(ns)", "TPWS Failing Endpoints",
                   "TPWS Total Endpoints")


def read_vivado_timing_summary(path: str | Path, *, board: str | None = None, clock: str | None = None) -> ToolReport:
    """Read the text of Vivado ``report_timing_summary``: worst slacks and the achieved clock.

    ``clock`` names the design clock to report (default: the Intra Clock Table's clock with
    the most setup endpoints). ``clock_target_ns`` of the record is that clock's period,
    ``clock_estimate_ns`` the period its worst path needs (period - WNS), so latency in
    cycles converts at the clock the design reaches.
    """
    text = _read_text(path)
    lines = text.splitlines()
    header: dict[str, str] = {}
    for line in lines[:40]:
        match = re.match(r"^\|\s*(Design|Device|Speed File|Temperature Grade)\s*:\s*(\S.*?)\s*$", line)
        if match:
            header.setdefault(match.group(1), match.group(2))

    # Everything read here comes before the Inter Clock Table: a file that reaches it is whole
    # where it matters.
    if not any(line.strip() == "| Inter Clock Table" for line in lines):
        raise _missing(path, "no 'Inter Clock Table' section after the clock tables", _TIMING_KIND)
    verdicts = ("All user specified timing constraints are met.", "Timing constraints are not met.",
                "There are no user specified timing constraints.")
    if not any(verdict in text for verdict in verdicts):
        raise _missing(path, "no verdict line ('... timing constraints are met.' or '... not met.')", _TIMING_KIND)
    summary = _timing_table(lines, "Design Timing Summary", named=False)
    if not summary or len(summary[0]) < len(_DESIGN_COLUMNS) or not set(_DESIGN_COLUMNS) <= set(summary[0]):
        raise _missing(path, "no whole 'Design Timing Summary' row (WNS, TNS, ... TPWS Total Endpoints)", _TIMING_KIND)
    design = summary[0]

    periods: dict[str, float] = {}
    for row in _timing_section_lines(lines, "Clock Summary"):
        match = re.match(r"^\s*(\S+)\s+\{[^}]*\}\s+([\d.]+)\s+[\d.]+\s*$", row)
        if match:
            periods[match.group(1)] = float(match.group(2))
    intra = {row["Clock"]: row for row in _timing_table(lines, "Intra Clock Table", named=True)}
    for name, row in intra.items():
        # every clock of the table has pulse-width figures, the last columns of its row
        if "TPWS Total Endpoints" not in row:
            raise _missing(path, f"the Intra Clock Table row of {name} is cut short", _TIMING_KIND)

    chosen = clock
    if chosen is not None:
        if chosen not in periods:
            raise XaiHlsError(f"report {path}: no clock '{chosen}' (clocks: {', '.join(periods) or 'none'})")
    else:
        timed = [name for name, row in intra.items() if _slack(path, row, "WNS(ns)") is not None]
        if timed:
            chosen = max(timed, key=lambda name: _timing_int(path, intra[name], "TNS Total Endpoints") or 0)
        elif len(periods) == 1:
            chosen = next(iter(periods))
    clock_wns = None
    if chosen is not None:
        clock_wns = _slack(path, intra[chosen], "WNS(ns)") if chosen in intra else _slack(path, design, "WNS(ns)")

    timing = TimingSummary(
        wns_ns=_slack(path, design, "WNS(ns)"),
        tns_ns=_slack(path, design, "TNS(ns)"),
        whs_ns=_slack(path, design, "WHS(ns)"),
        ths_ns=_slack(path, design, "THS(ns)"),
        failing_endpoints=_timing_int(path, design, "TNS Failing Endpoints"),
        met="All user specified timing constraints are met." in text,
        clock=chosen,
        clock_period_ns=periods.get(chosen) if chosen is not None else None,
        clock_wns_ns=clock_wns,
    )
    part = _timing_part(header)
    board_name, part, _ = _resolve_board(path, part, board)
    period = timing.clock_period_ns
    return ToolReport(
        source="vivado-timing",
        path=str(path),
        top=header.get("Design"),
        part=part,
        board=board_name,
        clock_target_ns=period,
        clock_estimate_ns=None if period is None or clock_wns is None else period - clock_wns,
        timing=timing,
    )


def _timing_section_lines(lines: list[str], title: str) -> list[str]:
    """The lines of one ``| Title`` section, up to the next section's rule."""
    for index, line in enumerate(lines):
        if line.strip() == f"| {title}":
            body = []
            for row in lines[index + 3:]:  # past "| ----" and the closing rule
                if row.startswith("-----") and len(row.strip("-")) == 0 and body:
                    break
                if row.startswith("| "):
                    break
                body.append(row)
            return body
    return []


def _timing_table(lines: list[str], title: str, named: bool) -> list[dict[str, str]]:
    """The rows of a section's table, each column -> cell.

    Vivado right-aligns every number under the end of its column title, and leaves a cell
    blank (not NA) where a clock has no path of that kind, so cells are found by position.
    With ``named``, the first column (left-aligned) is the row's name.
    """
    body = _timing_section_lines(lines, title)
    head_index = next((i for i, row in enumerate(body) if "WNS(ns)" in row), None)
    if head_index is None:
        return []
    head = body[head_index]
    columns = [(m.group(0), m.end()) for m in re.finditer(r"\S+(?: \S+)*", head)]
    rows = []
    for row in body[head_index + 2:]:
        if not row.strip():
            if rows or not named:
                break
            continue
        cells: dict[str, str] = {}
        tokens = list(re.finditer(r"\S+", row))
        if named:
            cells[columns[0][0]] = tokens[0].group(0)
            tokens = tokens[1:]
        for token in tokens:
            name, _ = min(columns[1 if named else 0:], key=lambda c: abs(c[1] - token.end()))
            cells[name] = token.group(0)
        rows.append(cells)
    return rows


def _slack(path: str | Path, row: dict[str, str], column: str) -> float | None:
    value = row.get(column, "NA")
    if value == "NA":
        return None
    try:
        return float(value)
    except ValueError:
        raise XaiHlsError(f"report {path}: {column} is {value!r}, not a number") from None


def _timing_int(path: str | Path, row: dict[str, str], column: str) -> int | None:
    value = row.get(column, "NA")
    return None if value == "NA" else _count(path, column, value)


def _timing_part(header: dict[str, str]) -> str | None:
    """The part from the report's Device, Speed File and Temperature Grade lines.

    report_timing_summary prints the device and package ('7z020-clg400', 'xczu7ev-ffvc1156')
    and the speed grade apart ('-1  PRODUCTION 1.12 ...'); UltraScale+ part names end in the
    temperature grade ('-e'), 7-series names do not.
    """
    device = header.get("Device")
    if device is None:
        return None
    speed = header.get("Speed File", "").split()
    part = device + (speed[0] if speed and speed[0].startswith("-") else "")
    grade = header.get("Temperature Grade")
    if grade and not re.match(r"(xc)?7", device):
        part += "-" + grade.lower()
    return _canonical_part(part)


# --------------------------------------------------------------------------- yosys stat


_YOSYS_KIND = "yosys stat output"
# Cell -> (resource, units). LUT RAM and shift registers count as the LUTs they occupy
# (UG474/UG574 CLB user guides); carry chains, wide muxes, buffers and I/O are not counted.
_YOSYS_CELLS: dict[str, tuple[str, int]] = {
    **{f"LUT{n}": ("LUT", 1) for n in range(1, 7)},
    "INV": ("LUT", 1),
    "SRL16E": ("LUT", 1),
    "SRLC16E": ("LUT", 1),
    "SRLC32E": ("LUT", 1),
    "RAM32X1S": ("LUT", 1),
    "RAM64X1S": ("LUT", 1),
    "RAM128X1S": ("LUT", 2),
    "RAM256X1S": ("LUT", 4),
    "RAM512X1S": ("LUT", 8),
    "RAM32X1D": ("LUT", 2),
    "RAM64X1D": ("LUT", 2),
    "RAM128X1D": ("LUT", 4),
    "RAM256X1D": ("LUT", 8),
    "RAM32M": ("LUT", 4),
    "RAM64M": ("LUT", 4),
    "RAM32M16": ("LUT", 8),
    "RAM64M8": ("LUT", 8),
    **{name: ("FF", 1) for name in ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1")},
    # Latches sit in the same register sites; Vivado counts them under CLB/Slice Registers.
    "LDCE": ("FF", 1),
    "LDPE": ("FF", 1),
    "DSP48E1": ("DSP", 1),
    "DSP48E2": ("DSP", 1),
    "RAMB18E1": ("BRAM_18K", 1),
    "RAMB18E2": ("BRAM_18K", 1),
    "FIFO18E1": ("BRAM_18K", 1),
    "FIFO18E2": ("BRAM_18K", 1),
    "RAMB36E1": ("BRAM_18K", 2),
    "RAMB36E2": ("BRAM_18K", 2),
    "FIFO36E1": ("BRAM_18K", 2),
    "FIFO36E2": ("BRAM_18K", 2),
    "URAM288": ("URAM", 1),
    "URAM288_BASE": ("URAM", 1),
}
_NEW_CELLS_TOTAL = re.compile(r"^\s*(\d+)\s+cells\s*$")
_NEW_CELL_LINE = re.compile(r"^\s+(\d+)\s+(\S+)\s*$")
_OLD_CELLS_TOTAL = re.compile(r"^\s*Number of cells:\s*(\d+)\s*$")
_OLD_CELL_LINE = re.compile(r"^\s+(\S+)\s+(\d+)\s*$")
_MODULE_TITLE = re.compile(r"^=== (.+) ===\s*$")


def read_yosys_stat(path_or_text: str | Path, *, board: str | None = None) -> ToolReport:
    """Read yosys ``stat`` output after ``synth_xilinx``: a ``tee -o`` file, a whole log, or text.

    Uses the last ``stat`` in the text, and in it the design hierarchy totals (the top and
    everything under it) when printed, else the one module. The listed cell counts must add
    up to the printed cell total, so a cut-off list is refused (a file cut between two whole
    module sections reads as the smaller design it then shows). A str with a line break is
    text; any other str or a Path is a file. ``board`` supplies the part and available counts,
    which yosys does not know.
    """
    from_file = not (isinstance(path_or_text, str) and "\n" in path_or_text)
    if from_file:
        text, where = _read_text(path_or_text), str(path_or_text)
    else:
        text, where = path_or_text, "<yosys stat text>"
    # yosys ends every line; a file whose last line has no line break was cut in that line.
    last_line_cut = from_file and not text.endswith("\n")

    starts = [m.end() for m in re.finditer(r"Printing statistics\.?", text)]
    text = text[starts[-1]:] if starts else text
    lines = text.splitlines()
    titles = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _MODULE_TITLE.match(line))]
    if not titles:
        raise _missing(where, "no '=== <module> ===' statistics section", _YOSYS_KIND)
    hierarchy = [i for i, name in titles if name == "design hierarchy"]
    if hierarchy:
        start = hierarchy[-1]
        top = _yosys_hierarchy_top(lines[start + 1:])
    elif len(titles) == 1:
        start, top = titles[0]
    else:
        names = ", ".join(name for _, name in titles)
        raise XaiHlsError(
            f"report {where}: statistics for several modules ({names}) and no design hierarchy "
            "section; run `hierarchy -top <top>` before `stat`"
        )
    section = lines[start + 1:]
    end = next((i for i, line in enumerate(section) if _MODULE_TITLE.match(line)), len(section))
    cells = _yosys_cells(where, section[:end], last_line_cut and end == len(section))

    resources = {key: 0 for key in ("LUT", "FF", "DSP", "BRAM_18K", "URAM")}
    for name, count in cells.items():
        if name in _YOSYS_CELLS:
            key, units = _YOSYS_CELLS[name]
            resources[key] += count * units
    board_name, part, board_obj = _resolve_board(where, None, board)
    return ToolReport(
        source="yosys",
        path=where,
        top=top,
        part=part,
        board=board_name,
        resources=resources,
        available=board_obj.resources.as_dict() if board_obj is not None else {},
    )


def _yosys_hierarchy_top(lines: list[str]) -> str | None:
    """The first module of the hierarchy tree (the top), in either stat layout."""
    for line in lines:
        if _MODULE_TITLE.match(line) or _NEW_CELLS_TOTAL.match(line) or _OLD_CELLS_TOTAL.match(line):
            break
        new, old = _NEW_CELL_LINE.match(line), _OLD_CELL_LINE.match(line)
        if new:
            return new.group(2)
        if old:
            return old.group(1)
    return None


def _yosys_cells(where: str, lines: list[str], last_line_cut: bool) -> dict[str, int]:
    """Cell type -> count from one statistics section; checks the counts against the total."""
    for index, line in enumerate(lines):
        new, old = _NEW_CELLS_TOTAL.match(line), _OLD_CELLS_TOTAL.match(line)
        if new or old:
            break
    else:
        raise _missing(
            where, "no cell count ('N cells' or 'Number of cells:') in the statistics", _YOSYS_KIND
        )
    total = int((new or old).group(1))
    cells: dict[str, int] = {}
    listed = 0
    in_submodules = False
    for position, line in enumerate(lines[index + 1:], start=index + 1):
        if last_line_cut and position == len(lines) - 1:
            raise _missing(where, "the cell list is cut off in its last line", _YOSYS_KIND)
        if new:
            match = _NEW_CELL_LINE.match(line)
            if not match:
                break
            count, name = int(match.group(1)), match.group(2)
            # "N submodules" opens the list of submodule instances; they are not in the cell
            # total, yet with `stat -tech xilinx` black-box primitives (SRL16E...) are listed there.
            if name == "submodules":
                in_submodules = True
                continue
        else:
            match = _OLD_CELL_LINE.match(line)
            if not match:
                break
            name, count = match.group(1), int(match.group(2))
        cells[name] = cells.get(name, 0) + count
        if not in_submodules:
            listed += count
    if listed != total:
        raise _missing(where, f"the cell list adds up to {listed}, not the {total} cells stated", _YOSYS_KIND)
    return cells


# --------------------------------------------------------------------------- shared helpers


def _read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise XaiHlsError(f"report {path} does not exist or is not a file")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise XaiHlsError(f"report {path}: cannot be read ({' '.join(str(exc).split())})") from exc


def _missing(path: str | Path, what: str, kind: str) -> XaiHlsError:
    what = " ".join(what.split())  # one line, whatever a parser's message holds
    return XaiHlsError(f"report {path}: {what} (truncated or not a {kind})")


def _count(path: str | Path, where: str, value: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise XaiHlsError(f"report {path}: {where} is {value!r}, not a count")
    return int(value)


def _top_from_name(path: str | Path, suffix: str) -> str | None:
    name = Path(path).name
    return name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else None


def _canonical_part(part: str) -> str:
    """The part as Vivado's part list names it.

    Vivado before 2021 prints 7-series devices without 'xc' ('7z020clg400-1'), and Vitis HLS
    writes a dash between a 7-series device and its package ('xc7z020-clg400-1').
    """
    part = part.strip()
    if part[:1].isdigit():
        part = "xc" + part
    seven = re.fullmatch(r"(xc7[a-z]\d+[a-z]*)-([a-z]+\d+-.+)", part, re.IGNORECASE)
    return seven.group(1) + seven.group(2) if seven else part


def _part_key(part: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", part.lower())
    return key[2:] if key.startswith("xc") else key


def _same_part(a: str, b: str) -> bool:
    """Same device, package and speed grade; a missing temperature grade letter matches any."""
    ka, kb = _part_key(a), _part_key(b)
    shorter, longer = sorted((ka, kb), key=len)
    return ka == kb or (longer.startswith(shorter) and longer[len(shorter):] in ("c", "e", "i", "q", "m"))


def _resolve_board(
    path: str | Path, part: str | None, board: str | None
) -> tuple[str | None, str | None, Board | None]:
    """(board name, part, board) for a report; a given board must be for the report's part."""
    if board is not None:
        chosen = load_board(board)
        if part is not None and not _same_part(part, chosen.part):
            raise XaiHlsError(
                f"report {path}: is for part {part}, but board '{chosen.name}' has part {chosen.part}"
            )
        return chosen.name, part if part is not None else chosen.part, chosen
    if part is None:
        return None, None, None
    matches = [candidate for candidate in list_boards() if _same_part(part, candidate.part)]
    # Two boards with the report's part: the report cannot say which one it ran on.
    return (matches[0].name, part, None) if len(matches) == 1 else (None, part, None)
