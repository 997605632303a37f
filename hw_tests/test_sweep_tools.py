"""`xaihls sweep --synth --sim`: each point's yosys and Verilator runs are tasks on the process pool or on a
Dask cluster (a LocalCluster of two worker processes here), and both give the same figures.

Two tiny points, digits on pynq-z2 at 4 x 4 and 8 x 4 (one saliency method, so the Verilator runs
are short): different DSP counts and cycles, so a figure given to the wrong point shows. The Dask
cluster runs the first point again (its tasks, and its figures, are the pool's). The three yosys
runs, about 50 s each, dominate: with the default tool slots (half the cores: one at a time on a
2-core machine) the module takes about 3 minutes there.
"""

from __future__ import annotations

import json

import pytest

from xaihls.backends.rtl.v2.cycles import TOLERANCE
from xaihls.cli import main
from xaihls.sweep import VERILATOR, YOSYS, points_for, sweep, write_sweep

TILINGS = [(4, 4), (8, 4)]


def _points(out):
    return points_for("zoo:digits", ["pynq-z2"], str(out), TILINGS, methods=("saliency",), steps=4)


def _figures(records):
    """What must not depend on where the tasks ran."""
    return [{"point": r["point"], "tiling": r["tiling"], "estimate": r["estimate"], "golden": r["golden_digest"],
             YOSYS: r[YOSYS]["resources"], VERILATOR: {k: r[VERILATOR][k] for k in ("cycles", "bit_exact", "conditions")}}
            for r in records]


@pytest.fixture(scope="module")
def on_the_pool(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool")
    records = sweep(_points(out), workers=2, synth=True, sim=True)
    write_sweep(records, out)
    return out, records


def test_every_point_is_synthesized_and_simulated_on_the_pool(on_the_pool):
    _, records = on_the_pool
    assert [r["point"] for r in records] == ["pynq-z2_4x4", "pynq-z2_8x4"]
    for r, (tm, tn) in zip(records, TILINGS):
        assert r["errors"] == {}, r["errors"]
        assert r["tiling"] == f"{tm}x{tn}"
        assert r[YOSYS]["resources"]["DSP"] == tm * tn + 1 == r["estimate"]["resources"]["DSP"]  # one a MAC + 1
        assert r[YOSYS]["resources"]["LUT"] > 1000 and r[YOSYS]["tool"].startswith("yosys ")
        sim = r[VERILATOR]
        assert set(sim["cycles"]) == {"predict", "saliency"} and all(sim["bit_exact"].values())
        for method, cycles in sim["cycles"].items():
            assert abs(cycles - sim["model_cycles"][method]) <= TOLERANCE * sim["model_cycles"][method]
    assert records[0][VERILATOR]["cycles"] != records[1][VERILATOR]["cycles"]


def test_report_over_the_sweep_folder_shows_each_source_per_point(on_the_pool, capsys):
    out, records = on_the_pool
    assert main(["report", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["project"], r["source"]) for r in rows] == [
        (p, s) for p in ("pynq-z2_4x4", "pynq-z2_8x4") for s in ("estimate", "verilator", "yosys")]
    by = {(r["project"], r["source"]): r for r in rows}
    for r in records:
        read = by[(r["point"], "yosys")]["resources"]  # reports/yosys_stat.txt, read again
        assert {k: read[k] for k in r[YOSYS]["resources"]} == r[YOSYS]["resources"]
        assert by[(r["point"], "verilator")]["cycles"] == r[VERILATOR]["cycles"]


def test_a_dask_local_cluster_gives_the_pools_figures(on_the_pool, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, expected = on_the_pool
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        records = sweep(_points(tmp_path)[:1], scheduler=cluster.scheduler_address, synth=True, sim=True)
    assert all(r["errors"] == {} for r in records), [r["errors"] for r in records]
    assert _figures(records) == _figures(expected[:1])
