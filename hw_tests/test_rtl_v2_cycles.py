"""Verilator cycles per job of the Engine v2 RTL against the cycle model (xaihls/plan/timing.py), at
DDR latencies 1 and 100, and of whole image-batch starts; the tables go to the test output (pytest -s
or -rA)."""

from dataclasses import replace

import pytest

from hw_tests.rtl_v2_cases import (CAM_NETS, CAMS, METHOD_LIST, ONE_D_CAM_NETS, batch_runs, batch_simulated,
                                   method_list, program, shared_params, simulated)
from xaihls.backends.rtl.v2.cycles import TOLERANCE, compare, markdown
from xaihls.plan.engine import EngineV2
from xaihls.plan.timing import FINAL_POST, job_cost, method_cycles, post_cycles

POST_TOLERANCE = 0.05


@pytest.mark.parametrize("latency", [1, 100])
@pytest.mark.parametrize("name,shape", [("digits", "16x8"), ("digits_gap", "4x4"), ("random305", "4x4"),
                                        ("digits_strided_bn", "16x8_128bit"), ("pools3", "4x4"), ("edge14", "4x4"),
                                        ("edge45", "4x4"),  # grouped convolutions a cluster of groups a job
                                        ("digits_mobilenet", "16x8"), ("narrow4", "4x4"), ("conv1d1024", "4x4"),
                                        ("conv1d5", "16x8"), ("conv1d5_rows", "16x8"), ("longpool1000", "16x8"),
                                        ("rawaudio1", "16x8"),
                                        ("shuffle1", "16x8"), ("dilated2", "16x8"),
                                        ("branchy3", "16x8"), ("windowed3", "16x8"), ("fork8", "16x8")])
def test_cycles_per_job_match_the_cycle_model(name, shape, latency):
    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=latency)
    gradient = simulated(name, shape, 0.0, latency)[1]
    rows = compare(prog, engine, gradient["profile"], latency)
    print(f"\n{name} {shape} DDR latency {latency}\n{markdown(rows)}")
    assert len(rows) == len(prog.forward) + len(prog.backward)
    bad = [r for r in rows if not r.within]
    assert not bad, f"outside {TOLERANCE:.0%}:\n{markdown(bad)}"


@pytest.mark.parametrize("name,shape", [("digits_gap", "4x4"), ("pools3", "4x4")])
def test_passes_follow_each_other_without_a_waiting_cycle_where_the_accumulators_allow(name, shape, monkeypatch):
    """The walker chains a pass to the one before it where the accumulators' read-to-write distance
    allows (docs/engine_v2.md, "Chained passes"): each conv job whose model with a waiting cycle after every pass differs by
    20 cycles or more from the chained model is measured nearer the chained one (the RTL is within
    1-3 cycles of the chained model on these jobs; a few jobs of short passes on tiny maps are
    10-17 cycles below either model). digits_gap's first conv saves 223."""
    from xaihls.plan import timing

    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=1)
    profile = simulated(name, shape, 0.0, 1)[1]["profile"]
    chained = compare(prog, engine, profile, 1)
    walks = timing._Walks.__init__

    def waiting(self, *args, **kwargs):
        walks(self, *args, **kwargs)
        self.chains = False

    monkeypatch.setattr(timing._Walks, "__init__", waiting)
    unchained = compare(prog, engine, profile, 1)
    pairs = [(c.rtl, c.model, u.model) for c, u in zip(chained, unchained) if u.model - c.model >= 20]
    assert pairs, "no job where chaining saves 20 cycles or more"
    far = [p for p in pairs if abs(p[0] - p[1]) * 2 >= p[2] - p[1]]
    assert not far, f"(RTL, chained model, model with waiting cycles) nearer the waiting model: {far}"


@pytest.mark.parametrize("latency", [1, 100])
@pytest.mark.parametrize("name,shape", [("digits", "16x8"), ("random305", "4x4"), ("digits_strided_bn", "16x8_128bit")])
def test_post_processing_ops_match_the_cycle_model(name, shape, latency):
    """Every post-processing op of every run (profile phases: the image copy, each method's final op,
    the IG path points, accumulations, sum and final product) within the tolerance of
    ``timing.post_cycles`` (5%; every op was within 1.5% when this was written): the ops of one
    input tensor with their chunks in alternating buffer sets, the others a chunk at a time."""
    prog = program(name, shape)
    built = shared_params(shape)  # the buffers of the build the tests simulate set the chunk
    engine = replace(EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=latency),
                     in_depth=built.IN_DEPTH, out_depth=built.OUT_DEPTH, w_depth=built.W_DEPTH)
    beats = prog.header["input_elems"] // engine.beat_elems
    ops = {"copy": ["copy"], "ig point": ["ig_point"], "ig accumulate": ["ig_acc"]}
    seen, bad = set(), []
    for method, r in zip(METHOD_LIST, simulated(name, shape, 0.0, latency)):
        posts = iter(["ig_sum", "ig_final"] if method == "integrated_gradients" else [FINAL_POST.get(method, "copy")])
        for kind, cycles in r["profile"]:
            op = ops[kind][0] if kind in ops else next(posts) if kind == "post" else None
            if op is None:
                continue
            seen.add(op)
            model = post_cycles(op, beats, engine, latency)
            if abs(cycles - model) > POST_TOLERANCE * model:
                bad.append((method, op, cycles, model))
    assert seen == {"copy", "abs", "ixg", "ig_point", "ig_acc", "ig_sum", "ig_final"}, seen
    assert not bad, f"(method, op, RTL, model) outside {POST_TOLERANCE:.0%}: {bad}"


@pytest.mark.parametrize("name,shape", [("digits", "16x8"), ("random305", "4x4")])
def test_cycles_per_job_of_the_batched_lists_match_the_cycle_model(name, shape):
    """An integrated-gradients run's first step batch: every slot's jobs and the Linear layers' jobs
    run once for the batch (a grid row a slot)."""
    prog = program(name, shape)
    assert prog.batch > 1
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=24)
    ig = simulated(name, shape)[METHOD_LIST.index("integrated_gradients")]
    rows = compare(prog, engine, ig["profile"], 24, batched=True)
    print(f"\n{name} {shape} batched lists\n{markdown(rows)}")
    assert len(rows) == len(prog.forward_batch) + len(prog.backward_batch)
    bad = [r for r in rows if not r.within]
    assert not bad, f"outside {TOLERANCE:.0%}:\n{markdown(bad)}"


@pytest.mark.parametrize("name,shape,latency", [("digits", "16x8", 1), ("digits", "16x8", 100),
                                                ("random305", "4x4", 100)])
def test_an_image_batch_start_matches_the_cycle_model(name, shape, latency):
    """An image batch's start: every job of the batched lists (a SEED with its record read) and the
    whole start (timing.method_cycles with images = batch), for predict and every method it runs;
    the single start that follows it too."""
    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=latency)
    starts = [(run, r) for run, r in zip(batch_runs(name, shape), batch_simulated(name, shape, 0.0, latency))
              if not run["explicit"]]
    assert {run["count"] for run, _ in starts} == {1, prog.batch}
    for run, r in starts:
        method = None if run["name"] == "predict" else run["name"]
        if run["count"] > 1:
            rows = compare(prog, engine, r["profile"], latency, image_batch=True)
            print(f"\n{name} {shape} image batch, {run['name']}, DDR latency {latency}\n{markdown(rows)}")
            assert len(rows) == len(prog.forward_batch) + (len(prog.backward_batch) if method else 0)
            bad = [row for row in rows if not row.within]
            assert not bad, f"outside {TOLERANCE:.0%}:\n{markdown(bad)}"
        model = method_cycles(prog, engine, method, ddr_latency=latency, images=run["count"])
        off = (r["cycles"] - model) / model
        print(f"{run['name']} start of {run['count']}: RTL {r['cycles']:,} model {model:,} ({off:+.1%})")
        assert abs(off) <= TOLERANCE, f"{run['name']}, {run['count']} images: RTL {r['cycles']} model {model}"


@pytest.mark.parametrize("name,shape", [(n, s) for n in CAM_NETS for s in ("4x4", "16x8")]
                         + [(n, "16x8") for n in ONE_D_CAM_NETS])
def test_grad_cam_runs_and_their_list_match_the_cycle_model(name, shape):
    """Grad-CAM and guided Grad-CAM (the exactness tests' runs, DDR latency 24): the backward list's
    prefix, then each job of the Grad-CAM list (profile phase 11) within the tolerance of its
    ``job_cost``, guided Grad-CAM's whole backward list after it, and the whole start of
    ``timing.method_cycles``."""
    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=24)
    prefix = prog.header["n_backward_cam"]
    for method in CAMS:
        r = simulated(name, shape)[method_list(name).index(method)]
        kinds = [k for k, _ in r["profile"] if k in ("backward", "grad-cam")]
        backward_after = len(prog.backward) if method == "guided_grad_cam" else 0
        assert kinds == ["backward"] * prefix + ["grad-cam"] * len(prog.cam) + ["backward"] * backward_after, method
        rows = [(c, job_cost(d, engine, "cam", 24).cycles) for c, d in zip((c for k, c in r["profile"]
                                                                          if k == "grad-cam"), prog.cam)]
        bad = [(i, rtl, model) for i, (rtl, model) in enumerate(rows) if abs(rtl - model) > TOLERANCE * model]
        assert not bad, f"{method}: Grad-CAM jobs (index, RTL, model) outside {TOLERANCE:.0%}: {bad}"
        model = method_cycles(prog, engine, method, ddr_latency=24)
        print(f"{name} {shape} {method}: RTL {r['cycles']:,} model {model:,} ({(r['cycles'] - model) / model:+.1%})")
        assert abs(r["cycles"] - model) <= TOLERANCE * model, f"{method}: RTL {r['cycles']} model {model}"
