"""Comparing design points: percentages against each board's own capacity, CSV/JSON/HTML outputs."""

import json
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


def test_html_report_renders_in_headless_chromium(projects, tmp_path):
    """Where Chromium is installed (apt-get install chromium), the page loads with every picture decoded."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no headless Chromium on this machine; the HTML is validated by the parser test")
    out = write_html(compare(projects), projects, tmp_path / "report.html")
    script = tmp_path / "check.html"
    # a page that loads the report in a frame and writes how many of its images decoded
    script.write_text(
        "<iframe id=f src='report.html'></iframe><script>document.getElementById('f').onload=function(){"
        "var imgs=this.contentDocument.images,ok=0;for(var i=0;i<imgs.length;i++)if(imgs[i].naturalWidth>0)ok++;"
        "document.title='decoded '+ok+' of '+imgs.length;};</script>"
    )
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", script.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.is_file()
    title = proc.stdout.split("<title>")[1].split("</title>")[0] if "<title>" in proc.stdout else proc.stdout[-300:]
    decoded, total = (int(v) for v in title.removeprefix("decoded ").split(" of "))
    assert total >= 2 + len(BOARDS) and decoded == total, title
