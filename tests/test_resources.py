"""The Engine v2 resource model against the yosys runs it was fitted on and the ones held out.

The stored model (xaihls/plan/resource_model.json) and the stored yosys runs
(benchmarks/results/rtl_v2_yosys*): `python -m benchmarks.resources --fit` writes the first
from the second; these tests hold the model to them without running yosys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import xaihls
from xaihls.errors import XaiHlsError, XaiHlsWarning
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import resources as rm
from xaihls.plan.boards import list_boards
from xaihls.plan.engine import EngineV2
from xaihls.plan.planner_v2 import describe, describe_candidates, plan_v2
from xaihls.reports.readers import read_yosys_stat

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
MODEL = rm.load()


def test_the_model_is_within_15_percent_of_every_yosys_point_held_out_included_and_dsp_is_exact():
    rows = MODEL.residuals()
    assert len(MODEL.points) >= 6 and MODEL.held_out
    assert {p["tag"] for p in MODEL.points}.isdisjoint(p["tag"] for p in MODEL.held_out)
    for r in rows:
        for key in ("LUT", "FF", "BRAM_18K"):
            assert abs(r[key]["error"]) <= rm.TOLERANCE, (r["tag"], key, r[key])
        assert r["DSP"]["model"] == r["DSP"]["yosys"], r["tag"]


def test_the_points_vary_tm_and_tn_apart_and_the_axi_width():
    shapes = {(p["params"]["TM"], p["params"]["TN"], p["params"]["AXI_DATA_WIDTH"]) for p in MODEL.points}
    assert len({tm for tm, tn, _ in shapes if tn == 4}) >= 3 and len({tn for tm, tn, _ in shapes if tm == 16}) >= 3
    assert len({axi for *_, axi in shapes}) >= 2


def test_the_stored_points_are_the_counts_of_the_kept_stat_files():
    for p in MODEL.points + MODEL.held_out:
        counts = read_yosys_stat(RESULTS / p["stat"]).resources
        assert {k: counts[k] for k in rm.RESULTS_OF} == {k: p[k] for k in rm.RESULTS_OF}, p["tag"]


def test_the_model_was_fitted_on_yosys_runs_of_the_rtl_it_estimates():
    """Every point (fitted and held out) was synthesized from the RTL sources as they are, comments
    aside: an RTL change needs a refit (``python -m benchmarks.resources --run`` on emptied records,
    then ``--fit``), or the planner's LUT and FF figures describe other hardware."""
    from xaihls.backends.rtl.v2.params import RTL_DIR, sources

    assert sorted(sources()) == sorted(RTL_DIR.glob("*.sv")), "the digest reads every synthesized source"
    assert MODEL.rtl == rm.rtl_digest(), "hls_templates/rtl_v2 changed since the resource model's yosys points"
    assert all(p["rtl"] == MODEL.rtl for p in MODEL.points + MODEL.held_out)


def test_a_model_of_other_rtl_sources_loads_with_a_one_line_warning(tmp_path):
    path = tmp_path / "model.json"
    rm.save(rm.ResourceModel(MODEL.lut, MODEL.ff, MODEL.dsp_extra, MODEL.points, MODEL.held_out, MODEL.source,
                             rtl="0123456789abcdef", cascade=MODEL.cascade), path)
    with pytest.warns(XaiHlsWarning, match=r"other RTL sources .* unchecked until a refit"):
        stale = rm.load(path)
    assert stale.lut == MODEL.lut and stale.rtl == "0123456789abcdef"


def test_refitting_the_stored_points_gives_the_stored_coefficients():
    shapes = json.loads((RESULTS / "rtl_v2_memories_xc7.json").read_text())["shapes"]
    assert rm.fit_cascade(shapes) == MODEL.cascade
    again = rm.fit(list(MODEL.points), list(MODEL.held_out), MODEL.source, MODEL.rtl, MODEL.cascade)
    assert np.allclose(again.lut, MODEL.lut, rtol=0, atol=1e-5) and np.allclose(again.ff, MODEL.ff, rtol=0, atol=1e-5)
    assert again.dsp_extra == MODEL.dsp_extra
    assert json.loads(rm.MODEL_FILE.read_text())["residuals"] == json.loads(json.dumps(again.residuals()))


def test_block_ram_and_lutram_are_counted_as_yosys_maps_each_memory_shape():
    shapes = json.loads((RESULTS / "rtl_v2_memories_xc7.json").read_text())["shapes"]
    assert len(shapes) >= 50
    for s in shapes:
        m = rm.Memory(s["module"], s["width"], s["depth"], 1, s["segments"], s["module"] == "xaihls_fifo")
        assert list(rm.memory_cells(m)) == s["yosys"], s
    # a 128-bit word written in two 64-bit halves takes 2 x 72 bits of 9-bit byte lanes: 16 RAMB36, not 15
    assert rm.block_ram_halves(128, 4096, 2) == 32 and rm.block_ram_halves(128, 4096, 1) == 30


def test_the_luts_beside_a_memory_more_than_one_cell_deep_are_within_30_percent_of_yosys():
    """A block-RAM memory deeper than one cell has a read multiplexer and a write decoder in LUTs
    (105 LUTs beside the pynq-z2 project's 27-cell ReLU-bit memory); one cell deep, none."""
    shapes = json.loads((RESULTS / "rtl_v2_memories_xc7.json").read_text())["shapes"]
    deep = 0
    for s in (s for s in shapes if s["module"] == "xaihls_sdp_ram"):
        m = rm.Memory(s["module"], s["width"], s["depth"], 1, s["segments"])
        if rm.cells_deep(m)[1] == 1:
            assert s["logic"] == 0 and rm.cascade_luts(m, MODEL.cascade) == 0, s
        else:
            deep += 1
            assert abs(rm.cascade_luts(m, MODEL.cascade) - s["logic"]) <= 0.3 * s["logic"], s
    assert deep >= 20


def test_the_pynq_z2_project_estimate_is_within_1_percent_of_its_yosys_run(cifar):
    """`xaihls compile zoo:cifar_ref --board pynq-z2` then `xaihls synth`: the stored stat of the
    project (its kept state at the exact size, the ReLU bits 27 RAMB18 deep; the IG sums' accumulators a
    power of two deep, which fits the board)."""
    stat = read_yosys_stat((RESULTS / "rtl_v2_yosys_xc7_pynq_cifar_project_v20_full_stat.txt").read_text()).resources
    p = plan_v2(cifar, next(b for b in list_boards() if b.name == "pynq-z2"), model=MODEL)
    est = p.resources.as_dict()
    assert (est["DSP"], est["BRAM_18K"]) == (stat["DSP"], stat["BRAM_18K"])
    assert all(abs(est[k] - stat[k]) <= 0.01 * stat[k] for k in ("LUT", "FF")), (est, stat)
    assert p.resources.breakdown["memory cascade LUTs"] > 50
    # the candidates are weighed at one slot; the table says what the chosen engine is built as
    last = describe_candidates(p).splitlines()[-1]
    assert f"as built for {p.program.batch} slots" in last and f"{est['BRAM_18K']} BRAM_18K" in last


def test_wider_ddr_offsets_and_deeper_kept_state_move_the_estimate_as_they_move_yosys():
    """The yosys points that set OFF_BITS or the kept state's depth apart from their base point (the
    same array and bus): each adds LUTs and FFs (wider address registers and adders), and the model's
    step is within 30% of yosys's, held-out points included."""
    points = {p["tag"]: p for p in MODEL.points + MODEL.held_out}
    base_of = {p["tag"]: re.sub(r"_off\d+|_mask\d+_ix\d+", "", p["tag"]) for p in points.values()}
    varied = [p for p in points.values() if base_of[p["tag"]] != p["tag"] and base_of[p["tag"]] in points]
    assert len(varied) >= 4 and any(p in MODEL.held_out for p in varied)
    assert {p["params"]["OFF_BITS"] for p in MODEL.points} >= {20, 28}
    for p in varied:
        base = points[base_of[p["tag"]]]
        grown = MODEL.estimate(rm.engine_of_point(p)).as_dict()
        before = MODEL.estimate(rm.engine_of_point(base)).as_dict()
        for key in ("LUT", "FF"):
            yosys, model = p[key] - base[key], grown[key] - before[key]
            assert yosys > 0 and abs(model - yosys) <= 0.3 * yosys, (p["tag"], key, yosys, model)


def test_the_planner_prices_the_ddr_offsets_the_rtl_is_built_with(cifar):
    """The planner's engine carries its Program's DDR bytes, so its estimate sees the OFF_BITS that
    rtl_params gives the RTL; without them the estimate is lower."""
    from dataclasses import replace

    from xaihls.backends.rtl.v2.params import rtl_params

    p = plan_v2(cifar, next(b for b in list_boards() if b.name == "pynq-z2"), model=MODEL)
    assert p.engine.ddr_bytes == p.program.total_bytes  # packed: the weights no job reads left out
    assert p.engine.off_bits == rtl_params(p.program, p.engine).OFF_BITS
    assert (f"DDR: the Program takes {p.program.total_bytes:,} bytes (offsets of {p.engine.off_bits} bits)"
            in describe(p))
    narrow = MODEL.estimate(replace(p.engine, ddr_bytes=0))
    assert narrow.lut < p.resources.lut and narrow.ff < p.resources.ff


def test_a_model_without_the_cascade_luts_is_refused_in_one_line(tmp_path):
    path = tmp_path / "model.json"
    data = json.loads(rm.MODEL_FILE.read_text())
    del data["cascade"]
    path.write_text(json.dumps(data))
    with pytest.raises(XaiHlsError, match=r"^[^\n]*cells? deep; run `python -m benchmarks.resources --fit`$"):
        rm.load(path)


def test_shapes_far_outside_the_points_are_refused_in_one_line():
    d = MODEL.domain
    e = rm.engine_of_point(MODEL.points[0])
    for tm, tn in ((4 * d.tm_max, e.tn), (2 * d.tn_max, 2 * d.tn_max), (d.tm_max, d.tn_max)):
        with pytest.raises(XaiHlsError) as exc:
            MODEL.estimate(EngineV2(**{**e.as_dict(), "tm": tm, "tn": tn}))
        msg = str(exc.value)
        assert "\n" not in msg and f"does not cover Tm={tm}, Tn={tn}" in msg and f"Tm <= {d.tm_max}" in msg
    inside = EngineV2(**{**e.as_dict(), "tm": d.tm_max, "tn": d.tm_max // 4})
    assert MODEL.estimate(inside).dsp == inside.tm * inside.tn + MODEL.dsp_extra


@pytest.fixture(scope="module")
def cifar():
    entry = get_zoo_model("cifar_ref")
    return xaihls.compile(entry.build(), entry.input_shape, calibration=entry.calibration()[:8],
                          backends=("golden",)).qgraph


@pytest.mark.parametrize("board", list_boards(), ids=lambda b: b.name)
def test_every_bundled_board_gets_a_cifar_plan_under_the_cap_by_the_model(cifar, board):
    p = plan_v2(cifar, board, model=MODEL)
    assert p.resources.as_dict() == MODEL.estimate(p.engine).as_dict()
    have = board.resources.as_dict()
    assert all(p.resources.as_dict()[k] <= 0.8 * have[k] for k in rm.RESULTS_OF), (board.name, p.resources)
