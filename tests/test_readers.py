"""Tool report readers: exact figures from stored reports, and one-line errors for broken ones.

The fixtures and their provenance are described in tests/fixtures/reports/README.md.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from xaihls.errors import XaiHlsError
from xaihls.plan.boards import BOARD_PATH_ENV
from xaihls.reports.readers import (
    ToolReport,
    read_cosim_rpt,
    read_csynth_xml,
    read_report,
    read_vivado_timing_summary,
    read_vivado_utilization,
    read_yosys_stat,
)

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
CSYNTH_Z7 = FIXTURES / "xaihls_top_csynth.xml"
CSYNTH_ZU9 = FIXTURES / "xaihls_top_zcu102_csynth.xml"
COSIM = FIXTURES / "xaihls_top_cosim.rpt"
VIVADO_Z7 = FIXTURES / "vivado_synth_xc7z020.rpt"
VIVADO_ZU9 = FIXTURES / "vivado_placed_xczu9eg.rpt"
YOSYS_XC7 = FIXTURES / "yosys_xc7_stat.txt"
YOSYS_XCUP_LOG = FIXTURES / "yosys_xcup_flat.log"
YOSYS_OLD = FIXTURES / "yosys_old_format_stat.txt"
TIMING_Z7 = FIXTURES / "vivado_timing_xc7z020.rpt"
TIMING_ZU7 = FIXTURES / "vivado_timing_xczu7ev.rpt"

ALL_REPORTS = [CSYNTH_Z7, CSYNTH_ZU9, COSIM, VIVADO_Z7, VIVADO_ZU9, YOSYS_XC7, YOSYS_XCUP_LOG, YOSYS_OLD,
               TIMING_Z7, TIMING_ZU7]


@pytest.fixture(autouse=True)
def no_user_board_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Board inference looks at every board file; the developer's own must not change it.
    monkeypatch.delenv(BOARD_PATH_ENV, raising=False)


def copy_cut(tmp_path: Path, source: Path, text: str) -> Path:
    """A copy of a fixture with other content, under the fixture's own file name."""
    path = tmp_path / source.name
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message


# ----------------------------------------------------------------------------- csynth


def test_csynth_7series_exact() -> None:
    report = read_csynth_xml(CSYNTH_Z7)
    assert report == ToolReport(
        source="vitis-csynth",
        path=str(CSYNTH_Z7),
        top="xaihls_top",
        part="xc7z020clg400-1",  # Vitis HLS writes xc7z020-clg400-1; Vivado's name is kept
        board="pynq-z2",
        clock_target_ns=10.0,
        clock_estimate_ns=7.628,
        latency_min_cycles=1843271,
        latency_max_cycles=2154906,
        interval_min=1843272,
        interval_max=2154907,
        resources={"LUT": 38517, "FF": 31842, "DSP": 146, "BRAM_18K": 98, "URAM": 0},
        available={"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0},
    )


def test_csynth_latency_seconds_uses_the_estimated_clock() -> None:
    report = read_csynth_xml(CSYNTH_Z7)
    assert report.latency_seconds() == pytest.approx(2154906 * 7.628e-9)
    without_estimate = dataclasses.replace(report, clock_estimate_ns=None)
    assert without_estimate.latency_seconds() == pytest.approx(2154906 * 10e-9)


def test_csynth_percentages_skip_resources_the_device_lacks() -> None:
    percent = read_csynth_xml(CSYNTH_Z7).percentages()
    # The XC7Z020 has no UltraRAM (available 0): no percentage rather than a division by 0.
    assert set(percent) == {"LUT", "FF", "DSP", "BRAM_18K"}
    assert percent["LUT"] == pytest.approx(100 * 38517 / 53200)
    assert percent["DSP"] == pytest.approx(100 * 146 / 220)
    assert percent["BRAM_18K"] == pytest.approx(35.0)


def test_csynth_undef_latency_is_none() -> None:
    report = read_csynth_xml(CSYNTH_ZU9)
    assert (report.part, report.board) == ("xczu9eg-ffvb1156-2-e", "zcu102")
    assert (report.clock_target_ns, report.clock_estimate_ns) == (5.0, 3.65)
    assert (report.latency_min_cycles, report.latency_max_cycles) == (612344, None)
    assert (report.interval_min, report.interval_max) == (612345, None)
    assert report.latency_seconds() is None
    assert report.resources == {"LUT": 71209, "FF": 98231, "DSP": 578, "BRAM_18K": 412, "URAM": 0}
    assert report.percentages()["DSP"] == pytest.approx(100 * 578 / 2520)


def test_csynth_vivado_hls_dsp48e_tag_is_dsp(tmp_path: Path) -> None:
    text = CSYNTH_Z7.read_text().replace("<DSP>", "<DSP48E>").replace("</DSP>", "</DSP48E>")
    report = read_csynth_xml(copy_cut(tmp_path, CSYNTH_Z7, text))
    assert (report.resources["DSP"], report.available["DSP"]) == (146, 220)


@pytest.mark.parametrize("fraction", [0.02, 0.2, 0.5, 0.9, 0.999])
def test_csynth_truncated_is_refused(tmp_path: Path, fraction: float) -> None:
    text = CSYNTH_Z7.read_text()
    path = copy_cut(tmp_path, CSYNTH_Z7, text[: int(len(text) * fraction)])
    with pytest.raises(XaiHlsError) as error:
        read_csynth_xml(path)
    assert_one_line_naming(error, path, "not well-formed XML", "truncated or not a Vitis HLS csynth report")


@pytest.mark.parametrize(
    ("start", "end", "missing"),
    [
        ("<AreaEstimates>", "</AreaEstimates>", "no AreaEstimates/Resources"),
        ("<EstimatedClockPeriod>", "</EstimatedClockPeriod>",
         "no PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
        ("<Worst-caseLatency>", "</Worst-caseLatency>",
         "no PerformanceEstimates/SummaryOfOverallLatency/Worst-caseLatency"),
        ("<Part>", "</Part>", "no UserAssignments/Part"),
        ("<LUT>", "</LUT>", "no AreaEstimates/Resources/LUT"),
    ],
)
def test_csynth_missing_element_is_named(tmp_path: Path, start: str, end: str, missing: str) -> None:
    text = CSYNTH_Z7.read_text()
    cut = text[: text.index(start)] + text[text.index(end) + len(end):]
    path = copy_cut(tmp_path, CSYNTH_Z7, cut)
    with pytest.raises(XaiHlsError) as error:
        read_csynth_xml(path)
    assert_one_line_naming(error, path, missing)


def test_csynth_garbage_latency_is_refused(tmp_path: Path) -> None:
    text = CSYNTH_Z7.read_text().replace("<Worst-caseLatency>2154906<", "<Worst-caseLatency>?<")
    path = copy_cut(tmp_path, CSYNTH_Z7, text)
    with pytest.raises(XaiHlsError) as error:
        read_csynth_xml(path)
    assert_one_line_naming(error, path, "Worst-caseLatency is '?', not a count")


# ----------------------------------------------------------------------------- cosim


def test_cosim_exact() -> None:
    assert read_cosim_rpt(COSIM) == ToolReport(
        source="vitis-cosim",
        path=str(COSIM),
        top="xaihls_top",
        latency_min_cycles=1851204,
        latency_max_cycles=2043318,
        interval_min=1851206,
        interval_max=1998472,
    )


def test_cosim_has_no_clock_until_given_one() -> None:
    report = read_cosim_rpt(COSIM, board="pynq-z2")
    assert (report.board, report.part) == ("pynq-z2", "xc7z020clg400-1")
    assert report.latency_seconds() is None
    timed = dataclasses.replace(report, clock_target_ns=10.0)
    assert timed.latency_seconds() == pytest.approx(2043318 * 10e-9)


def test_cosim_one_transaction_has_no_interval(tmp_path: Path) -> None:
    text = COSIM.read_text()
    for value in ("1851206", "1912489", "1998472"):
        text = text.replace(f"{value}|", f"{'NA'.rjust(len(value))}|")
    report = read_cosim_rpt(copy_cut(tmp_path, COSIM, text))
    assert (report.latency_min_cycles, report.latency_max_cycles) == (1851204, 2043318)
    assert (report.interval_min, report.interval_max) == (None, None)


def test_cosim_older_layout_without_total_column(tmp_path: Path) -> None:
    # Vivado HLS: "Latency"/"Interval" headers and no Total Execution Time column.
    lines = [line[: line.rindex("|", 0, len(line) - 1) + 1] if line.startswith("|") else line
             for line in COSIM.read_text().splitlines()]
    report = read_cosim_rpt(copy_cut(tmp_path, COSIM, "\n".join(lines) + "\n"))
    assert (report.latency_max_cycles, report.interval_max) == (2043318, 1998472)


def test_cosim_failed_run_is_refused(tmp_path: Path) -> None:
    text = COSIM.read_text().replace("      Pass|", "      Fail|")
    path = copy_cut(tmp_path, COSIM, text)
    with pytest.raises(XaiHlsError) as error:
        read_cosim_rpt(path)
    assert_one_line_naming(error, path, "status is 'Fail'")


@pytest.mark.parametrize(
    ("cut_after", "missing"),
    [
        ("Simulation tool   : xsim.\n", "no Verilog or VHDL result row"),
        ("|   Verilog|      Pass|        1851204|", "the Verilog result row is cut short"),
        ("|   Verilog|      Pass|        1851204|        1937765|        2043318|        1851206|"
         "        1912489|        19984", "the Verilog result row is cut short"),
    ],
)
def test_cosim_truncated_is_refused(tmp_path: Path, cut_after: str, missing: str) -> None:
    text = COSIM.read_text()
    path = copy_cut(tmp_path, COSIM, text[: text.index(cut_after) + len(cut_after)])
    with pytest.raises(XaiHlsError) as error:
        read_cosim_rpt(path)
    assert_one_line_naming(error, path, missing)


# ----------------------------------------------------------------------------- Vivado


def test_vivado_7series_exact() -> None:
    assert read_vivado_utilization(VIVADO_Z7) == ToolReport(
        source="vivado-utilization",
        path=str(VIVADO_Z7),
        top="xaihls_top",
        part="xc7z020clg400-1",  # printed as 7z020clg400-1 by Vivado 2020.1
        board="pynq-z2",
        # 45.5 Block RAM tiles of 36 Kb = 91 halves; no URAM row on a 7-series device.
        resources={"LUT": 36218, "FF": 30277, "DSP": 144, "BRAM_18K": 91},
        available={"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280},
    )


def test_vivado_ultrascale_exact() -> None:
    report = read_vivado_utilization(VIVADO_ZU9)
    assert report == ToolReport(
        source="vivado-utilization",
        path=str(VIVADO_ZU9),
        top="design_1_wrapper",
        part="xczu9eg-ffvb1156-2-e",
        board="zcu102",
        resources={"LUT": 78512, "FF": 104377, "DSP": 584, "BRAM_18K": 425},
        available={"LUT": 274080, "FF": 548160, "DSP": 2520, "BRAM_18K": 1824},
    )
    # The figures Vivado prints in its Util% column.
    assert {key: round(value, 2) for key, value in report.percentages().items()} == {
        "LUT": 28.65, "FF": 19.04, "DSP": 23.17, "BRAM_18K": 23.30,
    }
    assert report.latency_seconds() is None


def test_vivado_uram_row_is_read(tmp_path: Path) -> None:
    text = VIVADO_ZU9.read_text().replace(
        "|     RAMB18E2 only |    29 |       |            |           |       |\n",
        "|     RAMB18E2 only |    29 |       |            |           |       |\n"
        "| URAM              |    12 |     0 |          0 |        96 | 12.50 |\n",
    )
    report = read_vivado_utilization(copy_cut(tmp_path, VIVADO_ZU9, text))
    assert (report.resources["URAM"], report.available["URAM"]) == (12, 96)


@pytest.mark.parametrize(
    ("fixture", "cut_before", "missing"),
    [
        (VIVADO_ZU9, "1. CLB Logic\n---", "no 'CLB Logic' or 'Slice Logic' section"),
        (VIVADO_ZU9, "3. BLOCKRAM\n---", "no 'BLOCKRAM' or 'Memory' section"),
        (VIVADO_ZU9, "| Block RAM Tile", "no 'Block RAM Tile' row"),
        (VIVADO_ZU9, "4. ARITHMETIC\n---", "no 'ARITHMETIC' or 'DSP' section"),
        (VIVADO_ZU9, "0 |          0 |      2520 |", "no 'DSPs' row"),
        (VIVADO_Z7, "| Slice Registers", "no 'CLB Registers' or 'Slice Registers' row"),
        (VIVADO_Z7, "3. DSP\n---", "no 'ARITHMETIC' or 'DSP' section"),
    ],
)
def test_vivado_truncated_is_refused(tmp_path: Path, fixture: Path, cut_before: str, missing: str) -> None:
    text = fixture.read_text()
    path = copy_cut(tmp_path, fixture, text[: text.index(cut_before)])
    with pytest.raises(XaiHlsError) as error:
        read_vivado_utilization(path)
    assert_one_line_naming(error, path, missing, "truncated or not a Vivado report_utilization report")


def test_vivado_board_of_another_part_is_refused() -> None:
    with pytest.raises(XaiHlsError) as error:
        read_vivado_utilization(VIVADO_ZU9, board="pynq-z2")
    assert_one_line_naming(error, VIVADO_ZU9, "xczu9eg-ffvb1156-2-e", "'pynq-z2'", "xc7z020clg400-1")


# ----------------------------------------------------------------------------- Vivado timing summary


def test_vivado_timing_7series_failing_exact() -> None:
    report = read_vivado_timing_summary(TIMING_Z7)
    assert (report.source, report.top, report.part, report.board) == (
        "vivado-timing", "xaihls_bd_wrapper", "xc7z020clg400-1", "pynq-z2")
    t = report.timing
    assert (t.wns_ns, t.tns_ns, t.whs_ns, t.ths_ns, t.failing_endpoints, t.met) == (-0.412, -12.345, 0.018, 0.0, 57, False)
    assert (t.clock, t.clock_period_ns, t.clock_wns_ns) == ("clk_fpga_0", 10.0, -0.412)
    assert t.target_mhz == pytest.approx(100.0) and t.fmax_mhz == pytest.approx(1000 / 10.412)
    # latency in cycles converts at the clock the routed design reaches, not the target
    assert (report.clock_target_ns, report.clock_estimate_ns) == (10.0, pytest.approx(10.412))
    assert report.resources == {} and report.latency_seconds() is None


def test_vivado_timing_ultrascale_met_exact() -> None:
    report = read_report(TIMING_ZU7)
    assert (report.part, report.board) == ("xczu7ev-ffvc1156-2-e", "zcu104")
    t = report.timing
    assert (t.wns_ns, t.tns_ns, t.whs_ns, t.failing_endpoints, t.met, t.clock) == (0.731, 0.0, 0.01, 0, True, "clk_pl_0")
    assert t.fmax_mhz == pytest.approx(1000 / (5.0 - 0.731))
    assert t.as_dict()["fmax_mhz"] == pytest.approx(234.2, abs=0.05)


def _with_second_clock(text: str, name: str, endpoints: str, wns: str) -> str:
    """The report with another clock in the Clock Summary and the Intra Clock Table."""
    summary_row = next(line for line in text.splitlines() if line.startswith("clk_pl_0  "))
    intra_row = next(line for line in text.splitlines() if line.startswith("clk_pl_0          "))
    other_intra = intra_row.replace("clk_pl_0", name.ljust(8), 1).replace("  0.731", wns.rjust(7), 1)
    other_intra = other_intra.replace("91276", endpoints.rjust(5), 1)
    text = text.replace(summary_row, summary_row + "\n" + summary_row.replace("clk_pl_0", name.ljust(8), 1)
                        .replace("5.000 ", "3.333 ", 1), 1)
    return text.replace(intra_row, intra_row + "\n" + other_intra, 1)


def test_vivado_timing_takes_the_busiest_clock_or_the_one_named(tmp_path: Path) -> None:
    path = copy_cut(tmp_path, TIMING_ZU7, _with_second_clock(TIMING_ZU7.read_text(), "clk_pl_1", "312", "-0.050"))
    busiest = read_vivado_timing_summary(path).timing
    assert (busiest.clock, busiest.clock_wns_ns) == ("clk_pl_0", 0.731)
    named = read_vivado_timing_summary(path, clock="clk_pl_1").timing
    assert (named.clock, named.clock_period_ns, named.clock_wns_ns) == ("clk_pl_1", 3.333, -0.05)
    with pytest.raises(XaiHlsError) as error:
        read_vivado_timing_summary(path, clock="clk_pl_3")
    assert_one_line_naming(error, path, "no clock 'clk_pl_3'", "clk_pl_0, clk_pl_1")


def test_vivado_timing_na_slacks_are_none(tmp_path: Path) -> None:
    """A design without hold paths (Vivado writes NA) has no hold slack, not a zero one."""
    text = TIMING_ZU7.read_text()
    row = next(line for line in text.splitlines() if line.startswith("      0.731        0.000"))
    tokens = list(re.finditer(r"\S+", row))
    na_row = row
    for token in tokens[4:8]:  # WHS, THS and their endpoint counts, right-aligned as Vivado writes NA
        na_row = na_row[:token.start()] + "NA".rjust(token.end() - token.start()) + na_row[token.end():]
    path = copy_cut(tmp_path, TIMING_ZU7, text.replace(row, na_row, 1))
    t = read_vivado_timing_summary(path).timing
    assert t.wns_ns == 0.731 and t.whs_ns is None and t.ths_ns is None


def test_vivado_timing_board_of_another_part_is_refused() -> None:
    with pytest.raises(XaiHlsError) as error:
        read_vivado_timing_summary(TIMING_ZU7, board="pynq-z2")
    assert_one_line_naming(error, TIMING_ZU7, "xczu7ev-ffvc1156-2-e", "pynq-z2")


# ----------------------------------------------------------------------------- yosys


def test_yosys_hierarchy_totals_exact() -> None:
    report = read_yosys_stat(YOSYS_XC7)
    assert report == ToolReport(
        source="yosys",
        path=str(YOSYS_XC7),
        top="top",
        # LUT2 16 + LUT3 1 + INV 1 + 16 RAM64X1D x 2 + SRL16E 16; RAMB18E1 + 2 x RAMB36E1.
        resources={"LUT": 66, "FF": 56, "DSP": 1, "BRAM_18K": 3, "URAM": 0},
    )


def test_yosys_old_layout_gives_the_same_counts() -> None:
    old = read_yosys_stat(YOSYS_OLD)
    assert (old.top, old.resources) == ("top", read_yosys_stat(YOSYS_XC7).resources)


def test_yosys_log_uses_the_last_stat_of_one_flat_module() -> None:
    report = read_yosys_stat(YOSYS_XCUP_LOG)
    # LUT2 56 + LUT4 2 + LUT5 2 + LUT6 1 + INV 1 + RAM64X1D 16 x 2 + SRL16E 16.
    assert report.top == "top"
    assert report.resources == {"LUT": 110, "FF": 160, "DSP": 1, "BRAM_18K": 3, "URAM": 0}


def test_yosys_tech_stat_counts_primitives_listed_as_submodules() -> None:
    # `stat -tech xilinx` (run inside synth_xilinx) lists FDRE, SRL16E... under "submodules".
    text = YOSYS_XCUP_LOG.read_text()
    tech_only = text[: text.index("2.58. Executing CHECK pass")]
    report = read_yosys_stat(tech_only)
    assert report.path == "<yosys stat text>"
    assert report.resources == read_yosys_stat(YOSYS_XCUP_LOG).resources


def test_yosys_text_and_board() -> None:
    report = read_yosys_stat(YOSYS_XC7.read_text(), board="pynq-z2")
    assert (report.board, report.part) == ("pynq-z2", "xc7z020clg400-1")
    assert report.available == {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0}
    assert report.percentages()["LUT"] == pytest.approx(100 * 66 / 53200)
    assert "URAM" not in report.percentages()


@pytest.mark.parametrize(
    ("fixture", "cut_after", "missing"),
    [
        (YOSYS_XC7, "       69   IBUF\n", "adds up to"),
        (YOSYS_XC7, "      123   OBUF\n       16   RAM64X1D\n        1   RAMB18E1\n", "adds up to"),
        (YOSYS_XCUP_LOG, "       16   RAM64X1D\n        1   RAMB18E2\n        1   RAMB36E2\n       16   SRL1",
         "cut off in its last line"),
        (YOSYS_OLD, "     LUT2                           16\n", "adds up to"),
        (YOSYS_OLD, "     LUT2                           16\n     LUT3", "cut off in its last line"),
        (YOSYS_XC7, "3. Printing statistics.\n", "no '=== <module> ===' statistics section"),
    ],
)
def test_yosys_truncated_is_refused(tmp_path: Path, fixture: Path, cut_after: str, missing: str) -> None:
    text = fixture.read_text()
    path = copy_cut(tmp_path, fixture, text[: text.rindex(cut_after) + len(cut_after)])
    with pytest.raises(XaiHlsError) as error:
        read_yosys_stat(path)
    assert_one_line_naming(error, path, missing)


def test_yosys_modules_without_hierarchy_are_ambiguous(tmp_path: Path) -> None:
    text = YOSYS_XC7.read_text()
    path = copy_cut(tmp_path, YOSYS_XC7, text[: text.index("=== design hierarchy ===")])
    with pytest.raises(XaiHlsError) as error:
        read_yosys_stat(path)
    assert_one_line_naming(error, path, "several modules", "hierarchy -top")


# ----------------------------------------------------------------------------- any cut, any reader


def _cuts(text: str, key_rows: list[str]) -> list[int]:
    """Cut points: spread over the file, plus every character of the rows that carry figures."""
    step = max(1, len(text) // 150)
    points = set(range(1, len(text), step))
    for row in key_rows:
        start = text.rindex(row)
        points.update(range(start, start + len(row) + 1))
    return sorted(points)


@pytest.mark.parametrize(
    ("fixture", "key_rows", "from_section"),
    [
        (CSYNTH_Z7, ["<Worst-caseLatency>2154906</Worst-caseLatency>", "<LUT>38517</LUT>"], None),
        (COSIM, ["|   Verilog|      Pass|"], None),
        (VIVADO_Z7, ["| Block RAM Tile    | 45.5 |", "| DSPs           |  144 |"], None),
        (VIVADO_ZU9, ["| CLB Registers              | 104377 |", "| Block RAM Tile    | 212.5 |"], None),
        (YOSYS_XC7, ["       16   RAM64X1D\n", "       16   SRL16E\n"], "=== design hierarchy ==="),
        (YOSYS_XCUP_LOG, ["      160   FDRE\n", "       16   SRL16E\n"], "3. Printing statistics."),
        (YOSYS_OLD, ["     SRL16E                         16\n"], "=== design hierarchy ==="),
        (TIMING_Z7, ["     -0.412      -12.345                     57", "clk_fpga_0  {0.000 5.000}        10.000"], None),
        (TIMING_ZU7, ["clk_pl_0            0.731        0.000"], None),
    ],
)
def test_any_cut_is_refused_or_changes_nothing(
    tmp_path: Path, fixture: Path, key_rows: list[str], from_section: str | None
) -> None:
    """A report cut anywhere gives the full report's figures or an error naming the file.

    For yosys the cuts start in the section that is read: a file cut between two whole
    module sections is a valid stat of a smaller design, which no reader can tell apart.
    """
    text = fixture.read_text()
    full = dataclasses.replace(read_report(fixture), path="")
    first = text.rindex(from_section) if from_section else 0
    for cut in (point for point in _cuts(text, key_rows) if point > first):
        path = copy_cut(tmp_path, fixture, text[:cut])
        try:
            report = read_report(path)
        except XaiHlsError as error:
            assert str(path) in str(error) and "\n" not in str(error), (cut, str(error))
            continue
        assert dataclasses.replace(report, path="") == full, f"cut at {cut} read as something else"


# ----------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("fixture", "source"),
    [
        (CSYNTH_Z7, "vitis-csynth"),
        (CSYNTH_ZU9, "vitis-csynth"),
        (COSIM, "vitis-cosim"),
        (VIVADO_Z7, "vivado-utilization"),
        (VIVADO_ZU9, "vivado-utilization"),
        (YOSYS_XC7, "yosys"),
        (YOSYS_XCUP_LOG, "yosys"),
        (YOSYS_OLD, "yosys"),
        (TIMING_Z7, "vivado-timing"),
        (TIMING_ZU7, "vivado-timing"),
    ],
)
def test_dispatch_by_name_and_content(tmp_path: Path, fixture: Path, source: str) -> None:
    by_name = read_report(fixture)
    assert by_name.source == source
    renamed = tmp_path / "report.txt"  # no telling name: the content decides
    renamed.write_bytes(fixture.read_bytes())
    by_content = read_report(renamed)
    # Only the cosim report takes its top from the file name (<top>_cosim.rpt).
    assert dataclasses.replace(by_content, path=by_name.path, top=by_name.top) == by_name


def test_dispatch_unknown_and_missing(tmp_path: Path) -> None:
    unknown = tmp_path / "notes.txt"
    unknown.write_text("timing closed at 100 MHz\n")
    with pytest.raises(XaiHlsError) as error:
        read_report(unknown)
    assert_one_line_naming(error, unknown, "not a report xaihls reads")
    missing = tmp_path / "gone_csynth.xml"
    with pytest.raises(XaiHlsError) as error:
        read_report(missing)
    assert_one_line_naming(error, missing, "does not exist")


def test_record_is_frozen_and_keeps_its_own_counts() -> None:
    counts = {"LUT": 10}
    report = ToolReport(source="yosys", path="x", resources=counts)
    counts["LUT"] = 99
    assert report.resources == {"LUT": 10}
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.top = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        ToolReport(source="yosys", path="x", resources={"SLICE": 3})
    assert all(read_report(path).path == str(path) for path in ALL_REPORTS)
