"""xaihls sweep: the same results on the local process pool and on a Dask LocalCluster (loopback)."""

import json

import pytest

from xaihls.errors import XaiHlsError
from xaihls.sweep import points_for, sweep, write_sweep

BOARDS = ["pynq-z2", "ultra96-v2", "zcu104"]


def _comparable(results):
    return [{k: r[k] for k in ("point", "board", "tiling", "estimate", "golden_digest")} for r in results]


@pytest.fixture(scope="module")
def pool_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool")
    points = points_for("zoo:digits", BOARDS, str(out), methods=("saliency",), steps=4)
    return out, sweep(points, workers=2)


def test_sweep_writes_one_project_per_point(pool_results):
    out, results = pool_results
    assert [r["board"] for r in results] == BOARDS
    for r in results:
        assert (out / r["point"] / "project.json").is_file()
        assert (out / r["point"] / "estimate.json").is_file()
        assert r["errors"] == {} and r["estimate"]["source"] == "estimate" and "yosys" not in r
        assert r["estimate"]["cycles"] == json.loads((out / r["point"] / "estimate.json").read_text())["cycles"]
    path = write_sweep(results, out)
    assert json.loads(path.read_text())[0]["board"] == "pynq-z2"


def test_sweep_on_a_dask_local_cluster_gives_the_same_results(pool_results, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, expected = pool_results
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        points = points_for("zoo:digits", BOARDS, str(tmp_path), methods=("saliency",), steps=4)
        results = sweep(points, scheduler=cluster.scheduler_address)
    assert _comparable(results) == _comparable(expected)


def test_a_failed_task_is_one_line_naming_its_point_and_the_others_go_on(tmp_path, capsys):
    from xaihls.cli import main

    # zcu104's 128-bit AXI beat holds 8 elements: a 4 x 4 array cannot read it, 8 x 8 can
    code = main(["sweep", "zoo:digits", "--boards", "zcu104", "--tilings", "4x4,8x8", "--methods", "saliency",
                 "--steps", "4", "--out", str(tmp_path), "--workers", "2"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xaihls sweep: point zcu104_4x4: compile: engine 4x4: Tn must be a multiple of the 8 elements an "
                   "AXI beat holds, and Tm a multiple of Tn"]
    records = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["point"] for r in records] == ["zcu104_4x4", "zcu104_8x8"]
    assert "estimate" not in records[0] and records[1]["errors"] == {} and records[1]["tiling"] == "8x8"


def test_a_task_that_raises_becomes_its_error_line():
    from xaihls.sweep import run_task

    for task in ("yosys", "verilator"):  # the folder is checked before a tool slot is asked for
        outcome = run_task(task, "/nonexistent/project", 1)
        assert set(outcome) == {"error"} and "/nonexistent/project" in outcome["error"], outcome


def test_tool_slots_hold_back_runs_beyond_the_limit(tmp_path, monkeypatch):
    import threading
    import time

    from xaihls import sweep as sweep_module

    monkeypatch.setattr(sweep_module, "slot_folder", lambda: tmp_path)
    waited = {}

    def run(name, jobs, hold):
        with sweep_module.tool_slot(jobs, poll_s=0.05) as w:
            waited[name] = w
            time.sleep(hold)

    with sweep_module.tool_slot(1):
        second = threading.Thread(target=run, args=("second", 1, 0))
        second.start()
        time.sleep(0.5)
        assert "second" not in waited  # one slot, taken: the second run waits
        run("beside", 2, 0)  # a limit of two has a free slot
    second.join(5)
    assert waited["second"] >= 0.5 and waited["beside"] < 0.5
    with pytest.raises(XaiHlsError, match="at least 1"):
        with sweep_module.tool_slot(0):
            pass


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    points = points_for("zoo:digits", ["pynq-z2"], str(tmp_path))
    with pytest.raises(XaiHlsError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        sweep(points, scheduler="tcp://127.0.0.1:9")


def test_sweep_verb_writes_projects_and_the_combined_report(tmp_path, capsys):
    from xaihls.cli import main

    code = main(["sweep", "zoo:digits", "--boards", "pynq-z2", "--methods", "saliency", "--steps", "4",
                 "--out", str(tmp_path), "--workers", "1", "--html", str(tmp_path / "report.html")])
    assert code == 0
    assert (tmp_path / "pynq-z2" / "project.json").is_file() and (tmp_path / "sweep.json").is_file()
    assert (tmp_path / "report.html").is_file()
    assert main(["sweep", "zoo:digits", "--boards", "pynq-z2,nope", "--out", str(tmp_path)]) == 2
    assert "unknown board 'nope'" in capsys.readouterr().err


def test_sweep_refuses_a_single_board_option(tmp_path, capsys):
    """sweep takes --boards; a --board it silently ignored would sweep a board the user did not mean."""
    from xaihls.cli import main

    assert main(["sweep", "zoo:digits", "--boards", "pynq-z2", "--board", "zcu104", "--out", str(tmp_path)]) == 2
    assert "sweep takes --boards (comma-separated), not --board: use --boards zcu104" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
