"""Comparing design points: percentages against each board's own capacity, CSV/JSON/HTML outputs."""

import json
import subprocess
from html.parser import HTMLParser

import pytest

import xaihls
from xaihls.models.zoo import get_zoo_model
from xaihls.plan.boards import load_board
from xaihls.reports.compare import compare, to_csv
from xaihls.reports.html import write_html

BOARDS = ("pynq-z2", "ultra96-v2", "zcu102")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Three boards' projects, as folders with project.json and estimate.json."""
    root = tmp_path_factory.mktemp("projects")
    entry = get_zoo_model("digits")
    folders = []
    for board in BOARDS:
        acc = xaihls.compile(entry.build(), entry.input_shape, board=board, calibration=entry.calibration()[:8],
                             methods=("saliency", "integrated_gradients"), ig_steps=8)
        folder = root / board
        (folder / "reports").mkdir(parents=True)
        (folder / "project.json").write_text(json.dumps({"board": board}))
        (folder / "estimate.json").write_text(json.dumps(acc.plan.summary()))
        folders.append(folder)
    return folders


def test_percentages_are_against_each_boards_own_capacity(projects):
    rows = compare(projects)
    assert [r.board for r in rows] == list(BOARDS) and {r.source for r in rows} == {"estimate"}
    for row in rows:
        capacity = load_board(row.board).resources.as_dict()
        for key, share in row.percent().items():
            assert share == pytest.approx(row.resources[key] / capacity[key])
    dsp = {r.board: r.percent()["DSP"] for r in rows}
    assert dsp["pynq-z2"] == pytest.approx(rows[0].resources["DSP"] / 220)


def test_csv_has_a_row_per_point_and_latency_per_method(projects):
    lines = to_csv(compare(projects)).splitlines()
    header = lines[0].split(",")
    assert len(lines) == 1 + len(BOARDS)
    for col in ("DSP_%", "predict_ms", "saliency_ms", "integrated_gradients_ms", "saliency_over_inference"):
        assert col in header


def test_yosys_report_in_a_project_joins_the_comparison(projects, tmp_path):
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "reports" / "yosys_xc7_stat.txt"
    folder = tmp_path / "with_yosys"
    (folder / "reports").mkdir(parents=True)
    for name in ("project.json", "estimate.json"):
        (folder / name).write_text((projects[0] / name).read_text())
    (folder / "reports" / "yosys_stat.txt").write_text(fixture.read_text())
    (folder / "reports" / "yosys_inference_stat.txt").write_text(fixture.read_text())
    rows = compare([folder])
    assert [r.source for r in rows] == ["estimate", "yosys", "yosys (inference-only)"]
    assert rows[1].resources["LUT"] > 0 and rows[1].percent()["LUT"] < 1


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag == "table":
            self.tables += 1


def test_html_report_embeds_its_plots_and_heatmaps(projects, tmp_path):
    from xaihls.reports.heatmaps import save_heatmap_grid

    entry = get_zoo_model("digits")
    images = entry.samples()[0][:2]
    save_heatmap_grid(images, {"saliency": images}, projects[0] / "reports" / "heatmaps_golden.png")
    out = write_html(compare(projects), projects, tmp_path / "report.html")
    parser = _Images()
    parser.feed(out.read_text())
    alts = [img["alt"] for img in parser.images]
    assert parser.tables == 1
    assert "resources per design point" in alts and "latency per method" in alts
    assert sum(a.startswith("roofline") for a in alts) == len(BOARDS)
    assert any(a.startswith("heatmaps pynq-z2 golden") for a in alts)
    assert all(img["src"].startswith("data:image/png;base64,") and len(img["src"]) > 1000 for img in parser.images)


def test_missing_or_corrupt_project_files_are_named(tmp_path):
    from xaihls.errors import XaiHlsError

    with pytest.raises(XaiHlsError, match="no project.json; is this a folder written by xaihls compile"):
        compare([tmp_path])
    (tmp_path / "project.json").write_text("{}")
    (tmp_path / "estimate.json").write_text("{not json")
    with pytest.raises(XaiHlsError, match=r"estimate.json: not valid JSON"):
        compare([tmp_path])


def test_report_verb_prints_csv_and_writes_html(projects, tmp_path, capsys):
    from xaihls.cli import main

    assert main(["report", *map(str, projects), "--csv", "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("project,board,part") and len(out) == 1 + len(BOARDS)
    assert (tmp_path / "r.html").stat().st_size > 10_000
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "no project.json" in capsys.readouterr().err


def test_vivado_reports_of_the_board_flow_join_the_comparison(projects, tmp_path, capsys):
    """reports/vivado_utilization.rpt and vivado_timing_summary.rpt make one row; Vivado's own
    per-step copies inside its project tree are not read."""
    from pathlib import Path

    from xaihls.cli import main
    from xaihls.reports.compare import to_csv

    fixtures = Path(__file__).parent / "fixtures" / "reports"
    folder = tmp_path / "pynq-z2"
    (folder / "reports").mkdir(parents=True)
    for name in ("project.json", "estimate.json"):
        (folder / name).write_text((projects[0] / name).read_text())
    (folder / "reports" / "vivado_utilization.rpt").write_text((fixtures / "vivado_synth_xc7z020.rpt").read_text())
    (folder / "reports" / "vivado_timing_summary.rpt").write_text((fixtures / "vivado_timing_xc7z020.rpt").read_text())
    runs = folder / "vivado" / "xaihls_vivado" / "xaihls_vivado.runs" / "impl_1"
    runs.mkdir(parents=True)
    (runs / "xaihls_bd_wrapper_utilization_placed.rpt").write_text("not read\n")
    (runs / "xaihls_bd_wrapper_timing_summary_routed.rpt").write_text("not read\n")

    rows = compare([folder])
    assert [r.source for r in rows] == ["estimate", "vivado"]
    vivado = rows[1]
    assert vivado.resources["DSP"] == 144 and vivado.timing["wns_ns"] == -0.412 and vivado.timing["met"] is False
    assert vivado.timing["fmax_mhz"] == pytest.approx(1000 / 10.412)
    header, _, vivado_line = to_csv(rows).splitlines()
    cells = dict(zip(header.split(","), vivado_line.split(",")))
    assert (cells["wns_ns"], cells["timing_met"], cells["fmax_mhz"]) == ("-0.412", "False", "96.0")
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "-0.412 (fails)" in out and "96.0" in out


def _rows_with_one_over_its_board():
    from xaihls.reports.compare import Row

    capacity = load_board("pynq-z2").resources.as_dict()
    base = dict(board="pynq-z2", part="xc7z020clg400-1", clock_mhz=100.0, tiling="16x8", capacity=capacity)
    fits = Row(project="fits", source="estimate", resources={"LUT": 21280, "FF": 30000, "DSP": 88, "BRAM_18K": 100}, **base)
    over = Row(project="too-big", source="yosys", resources={"LUT": 133000, "FF": 60000, "DSP": 132, "BRAM_18K": 300}, **base)
    return [fits, over]


def test_resource_bars_are_linear_percent_of_the_board_with_the_100_percent_line():
    from matplotlib.colors import to_hex

    from xaihls.reports.html import OVER_BUDGET_COLOR, RESOURCE_PLOTS, resources_axes

    fig = resources_axes(_rows_with_one_over_its_board())
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == list(RESOURCE_PLOTS)
    lut = axes[0]
    heights = [bar.get_height() for bar in lut.patches]
    assert heights == pytest.approx([40.0, 250.0])  # 21,280 and 133,000 of 53,200 LUTs
    for ax in axes:
        assert ax.get_yscale() == "linear"
        assert any(list(line.get_ydata()) == [100, 100] for line in ax.get_lines()), "the 100% line"
        assert ax.get_ylim()[1] > 250.0 > 100.0 > ax.get_ylim()[0]  # the line and the tallest bar in view
    assert to_hex(lut.patches[1].get_facecolor()) == OVER_BUDGET_COLOR != to_hex(lut.patches[0].get_facecolor())
    bram = axes[3]  # 300 of 280 BRAM halves: over, and drawn over the line
    assert bram.patches[1].get_height() == pytest.approx(100 * 300 / 280) and to_hex(bram.patches[1].get_facecolor()) == OVER_BUDGET_COLOR


def _chromium(browser: str, profile, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--allow-file-access-from-files", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=timeout)


def test_html_report_renders_in_headless_chromium(projects, tmp_path):
    """In Chromium the page loads, every picture decodes, and every plot is drawn: its region of a
    screenshot is not blank, and the resource plot shows a design over its board in red."""
    import html as html_lib
    import shutil

    import numpy as np
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium: `make test` installs Debian's chromium where apt-get runs as root; "
                    "elsewhere install it to render the report (the HTML itself is checked by the parser test)")
    rows = compare(projects) + _rows_with_one_over_its_board()
    out = write_html(rows, projects, tmp_path / "report.html")
    width, height = 1200, 5000
    page = tmp_path / "check.html"
    # the report in a frame of the screenshot's size at the page's origin: what the frame's
    # script measures is where the screenshot shows it
    page.write_text(
        "<!doctype html><html><head><title>waiting</title><style>body{margin:0}iframe{border:0;position:absolute;"
        f"left:0;top:0;width:{width}px;height:{height}px}}</style></head><body>"
        "<iframe id=f src='report.html'></iframe><script>document.getElementById('f').onload=function(){"
        "var d=this.contentDocument,imgs=d.images,r=[];for(var i=0;i<imgs.length;i++){var b=imgs[i].getBoundingClientRect();"
        "r.push({alt:imgs[i].alt,ok:imgs[i].naturalWidth>0&&imgs[i].complete,x:b.left,y:b.top,w:b.width,h:b.height});}"
        "document.title=JSON.stringify({height:d.documentElement.scrollHeight,images:r});};</script></body></html>")
    dom = _chromium(browser, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert out.is_file() and "<title>" in dom.stdout, dom.stderr[-1000:]
    layout = json.loads(html_lib.unescape(dom.stdout.split("<title>")[1].split("</title>")[0]))
    images = layout["images"]
    assert len(images) >= 2 + len(BOARDS) and all(img["ok"] for img in images), images
    assert layout["height"] <= height, "the report grew past the frame; raise the frame's height"

    shot = tmp_path / "shot.png"
    proc = _chromium(browser, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={width},{height}",
                     page.as_uri())
    assert shot.is_file(), proc.stderr[-1000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (height, width)
    plots = [img for img in images if not img["alt"].startswith("heatmaps")]
    assert {"resources per design point", "latency per method"} <= {img["alt"] for img in plots}
    for img in plots:
        x0, y0 = int(img["x"]) + 2, int(img["y"]) + 2
        region = pixels[y0:y0 + int(img["h"]) - 4, x0:x0 + int(img["w"]) - 4]
        assert region.size, img
        drawn = (np.abs(region - 255).sum(axis=2) > 60).mean()  # share of pixels far from white
        colors = len(np.unique(region.reshape(-1, 3) // 16, axis=0))
        assert drawn > 0.02 and colors > 8, f"{img['alt']}: {drawn:.1%} drawn, {colors} colours (blank plot?)"
    (resources,) = [img for img in plots if img["alt"] == "resources per design point"]
    region = pixels[int(resources["y"]):int(resources["y"] + resources["h"]),
                    int(resources["x"]):int(resources["x"] + resources["w"])]
    red = np.array([0xd8, 0x53, 0x3b])
    assert (np.abs(region - red).sum(axis=2) < 40).sum() > 200, "no over-budget (red) bar in the resource plot"
