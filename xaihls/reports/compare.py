"""Comparing design points: one row per project and source (estimate, yosys, Vitis, Verilator).

A project folder (written by ``xaihls compile`` / ``Accelerator.write``) holds
``project.json`` and ``estimate.json`` (the plan's figures); tools add their reports:
``reports/yosys_stat.txt`` and ``reports/yosys_inference_stat.txt`` (``xaihls synth``, the
engine with and without its backward path), ``reports/verilator.json`` (``xaihls sim``),
and, on a machine with Vitis, ``<solution>/syn/report/*_csynth.xml``,
``<solution>/sim/report/*_cosim.rpt`` and Vivado ``*utilization*.rpt`` and
``*timing_summary*.rpt`` files (the board flow writes ``reports/vivado_utilization.rpt`` and
``reports/vivado_timing_summary.rpt``; a timing summary joins the utilization row of its
folder). Reports inside Vivado's and Vitis's own build trees (``*.runs``, ``*.gen``, ``_x``,
...) are per-step or per-IP copies and are not read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from xaihls.errors import XaiHlsError

RESOURCE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")


@dataclass(frozen=True)
class Row:
    """One design point as one source sees it. Cycles are per run of a method."""

    project: str
    board: str
    part: str
    clock_mhz: float
    tiling: str
    source: str
    resources: dict = field(default_factory=dict)
    capacity: dict = field(default_factory=dict)
    cycles: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)  # TimingSummary.as_dict() of a Vivado timing summary
    conditions: str = ""  # how the figures were measured (the simulated DDR of a Verilator run)

    def percent(self) -> dict[str, float]:
        """Each resource as a share of this board's capacity (not of any other board's)."""
        return {k: self.resources[k] / self.capacity[k] for k in self.resources
                if self.capacity.get(k)}

    def latency_ms(self) -> dict[str, float]:
        return {m: c / (self.clock_mhz * 1e3) for m, c in self.cycles.items()}

    def overhead(self) -> float | None:
        """Saliency latency over inference latency (what the attribution adds)."""
        if "predict" in self.cycles and "saliency" in self.cycles and self.cycles["predict"]:
            return self.cycles["saliency"] / self.cycles["predict"]
        return None

    def as_dict(self) -> dict:
        return {"project": self.project, "board": self.board, "part": self.part, "clock_mhz": self.clock_mhz,
                "tiling": self.tiling, "source": self.source, "resources": self.resources,
                "percent": self.percent(), "cycles": self.cycles, "latency_ms": self.latency_ms(),
                "saliency_over_inference": self.overhead(), "timing": self.timing, "conditions": self.conditions}


def _load_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise XaiHlsError(f"{path.parent}: no {path.name}; is this a folder written by xaihls compile?") from None
    except json.JSONDecodeError as exc:
        raise XaiHlsError(f"{path}: not valid JSON ({what}): {exc.msg} at line {exc.lineno}") from None


def project_rows(folder: str | Path) -> list[Row]:
    """Every source of figures found in one project folder, the estimate first."""
    from xaihls.plan.boards import load_board

    folder = Path(folder)
    _load_json(folder / "project.json", "project description")  # only xaihls projects are compared
    estimate = _load_json(folder / "estimate.json", "plan estimate")
    name = folder.name
    board_name = estimate["board"]
    try:
        capacity = load_board(board_name).resources.as_dict()
    except XaiHlsError:
        capacity = estimate.get("capacity", {})
    tiling = f"{estimate['tm']}x{estimate['tn']}"
    base = dict(project=name, board=board_name, part=estimate["part"], clock_mhz=float(estimate["clock_mhz"]),
                tiling=tiling, capacity=capacity)
    rows = [Row(source="estimate", resources=dict(estimate["resources"]), cycles=dict(estimate["cycles"]), **base)]
    reports = folder / "reports"
    verilator = reports / "verilator.json"
    if verilator.is_file():
        sim = _load_json(verilator, "Verilator cycles")
        rows.append(Row(source="verilator", cycles=dict(sim["cycles"]), conditions=verilator_conditions(sim), **base))
    from xaihls.reports import readers

    for name, source in (("yosys_stat.txt", "yosys"), ("yosys_inference_stat.txt", "yosys (inference-only)")):
        if (reports / name).is_file():
            r = readers.read_yosys_stat(reports / name)
            rows.append(Row(source=source, resources=dict(r.resources), **base))
    for csynth in sorted(folder.glob("*/*/syn/report/*_csynth.xml")):
        r = readers.read_csynth_xml(csynth)
        cyc = {"predict": r.latency_max_cycles} if r.latency_max_cycles is not None else {}
        rows.append(Row(source="vitis-csynth", resources=dict(r.resources), cycles=cyc, **base))
    for cosim in sorted(folder.glob("*/*/sim/report/*_cosim.rpt")):
        r = readers.read_cosim_rpt(cosim)
        cyc = {"predict": r.latency_max_cycles} if r.latency_max_cycles is not None else {}
        rows.append(Row(source="vitis-cosim", cycles=cyc, **base))
    utilization = [p for p in sorted(folder.glob("**/*utilization*.rpt")) if not _in_tool_tree(p, folder)]
    timing = [p for p in sorted(folder.glob("**/*timing_summary*.rpt")) if not _in_tool_tree(p, folder)]
    for util in utilization:
        r = readers.read_vivado_utilization(util)
        beside = [t for t in timing if t.parent == util.parent]
        summary = {}
        if len(beside) == 1:  # one timing summary in the folder: the same run's
            timing.remove(beside[0])
            summary = readers.read_vivado_timing_summary(beside[0]).timing.as_dict()
        rows.append(Row(source="vivado", resources=dict(r.resources), timing=summary, **base))
    for path in timing:
        rows.append(Row(source="vivado", timing=readers.read_vivado_timing_summary(path).timing.as_dict(), **base))
    return rows


# Folders of the tools' own build trees: per-step and per-IP copies of reports.
_TOOL_TREE_SUFFIXES = (".runs", ".gen", ".srcs", ".cache", ".hw", ".sim", ".ip_user_files", ".Xil")


def _in_tool_tree(path: Path, folder: Path) -> bool:
    parts = path.relative_to(folder).parts[:-1]
    return any(part.endswith(_TOOL_TREE_SUFFIXES) or part in ("_x", ".Xil") for part in parts)


def verilator_conditions(report: dict) -> str:
    """The DDR a verilator.json's cycles were measured with, in a few words."""
    ddr = report.get("memory")
    if not ddr:  # reports written before the SystemVerilog DDR model
        return "DDR: cocotbext-axi AxiRam" + (", random stalls" if report.get("stalls") else "")
    text = (f"DDR: SV model, latency {ddr['ddr_latency']}" if str(ddr.get("memory", "")).startswith("SystemVerilog")
            else "DDR: cocotbext-axi AxiRam")
    return text + (", random stalls" if ddr.get("stalls") else "")


def project_folders(paths) -> list[Path]:
    """The project folders behind ``paths``: a project folder itself, a sweep's folder (``xaihls sweep
    --out``, with sweep.json and no project.json) as the projects of its points, in the sweep's order."""
    folders = []
    for path in map(Path, paths):
        sweep = path / "sweep.json"
        if not (path / "project.json").is_file() and sweep.is_file():
            records = _load_json(sweep, "sweep results")
            folders += [path / r["point"] for r in records if "project" in r]  # the points that compiled
        else:
            folders.append(path)
    return folders


def compare(folders) -> list[Row]:
    """The rows of every project folder (see ``project_folders`` for a sweep's folder)."""
    rows: list[Row] = []
    for folder in project_folders(folders):
        rows += project_rows(folder)
    return rows


def to_csv(rows: list[Row]) -> str:
    import csv
    import io

    methods = sorted({m for r in rows for m in r.cycles}, key=lambda m: (m != "predict", m))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["project", "board", "part", "clock_mhz", "tiling", "source"]
               + [k for k in RESOURCE_KEYS] + [f"{k}_%" for k in RESOURCE_KEYS]
               + [f"{m}_cycles" for m in methods] + [f"{m}_ms" for m in methods] + ["saliency_over_inference"]
               + ["wns_ns", "tns_ns", "whs_ns", "timing_met", "fmax_mhz", "conditions"])
    for r in rows:
        pct = r.percent()
        lat = r.latency_ms()
        w.writerow([r.project, r.board, r.part, r.clock_mhz, r.tiling, r.source]
                   + [r.resources.get(k, "") for k in RESOURCE_KEYS]
                   + [f"{100 * pct[k]:.1f}" if k in pct else "" for k in RESOURCE_KEYS]
                   + [r.cycles.get(m, "") for m in methods] + [f"{lat[m]:.4f}" if m in lat else "" for m in methods]
                   + [f"{r.overhead():.3f}" if r.overhead() else ""]
                   + [_blank(r.timing.get(k)) for k in ("wns_ns", "tns_ns", "whs_ns", "met")]
                   + [f"{r.timing['fmax_mhz']:.1f}" if r.timing.get("fmax_mhz") else "", r.conditions])
    return out.getvalue()


def _blank(value) -> str:
    return "" if value is None else str(value)


def timing_cells(row: Row) -> tuple[str, str]:
    """(WNS, achieved clock) as the tables print them; empty without a timing summary."""
    t = row.timing
    if not t:
        return "", ""
    wns = "" if t.get("wns_ns") is None else f"{t['wns_ns']:+.3f}" + ("" if t.get("met") else " (fails)")
    fmax = "" if t.get("fmax_mhz") is None else f"{t['fmax_mhz']:.1f}"
    return wns, fmax


def to_table(rows: list[Row]):
    """A terminal table: resources as shares of the board, latency per method in ms."""
    from rich.table import Table

    methods = sorted({m for r in rows for m in r.cycles}, key=lambda m: (m != "predict", m))
    short = {"predict": "infer", "integrated_gradients": "IG", "input_x_gradient": "x*grad",
             "guided_backprop": "guided", "saliency": "saliency", "gradient": "grad", "deconvnet": "deconv"}
    table = Table(title="design points (resources: share of the board; latency: ms per image)")
    for col in ("project", "board", "tiling", "source", "LUT", "FF", "DSP", "BRAM"):
        table.add_column(col, justify="right" if col in ("LUT", "FF", "DSP", "BRAM") else "left")
    for m in methods:
        table.add_column(short.get(m, m), justify="right")
    table.add_column("sal/inf", justify="right")
    timed = any(r.timing for r in rows)
    if timed:
        table.add_column("WNS ns", justify="right")
        table.add_column("Fmax MHz", justify="right")
    for r in rows:
        pct = r.percent()
        res = [f"{pct[k]:.0%}" if k in pct else (f"{r.resources[k]:,}" if k in r.resources else "")
               for k in ("LUT", "FF", "DSP", "BRAM_18K")]
        lat = r.latency_ms()
        table.add_row(r.project, r.board, r.tiling, r.source + (f" ({r.conditions})" if r.conditions else ""), *res,
                      *[f"{lat[m]:.3g}" if m in lat else "" for m in methods],
                      f"{r.overhead():.2f}" if r.overhead() else "", *(timing_cells(r) if timed else ()))
    return table
