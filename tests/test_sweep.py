"""xaihls sweep: the same results on the local process pool and on a Dask LocalCluster (loopback)."""

import json

import pytest

from xaihls.sweep import points_for, sweep, write_sweep

BOARDS = ["pynq-z2", "ultra96-v2", "zcu104"]


def _comparable(results):
    return [{k: r[k] for k in ("point", "board", "tiling", "cycles", "resources", "golden_digest")} for r in results]


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


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    from xaihls.errors import XaiHlsError

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
