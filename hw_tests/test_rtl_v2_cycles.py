"""Verilator cycles per job of the Engine v2 RTL against the cycle model (xaihls/plan/timing.py), at
DDR latencies 1 and 100; the tables go to the test output (pytest -s or -rA)."""

import pytest

from hw_tests.rtl_v2_cases import METHOD_LIST, program, simulated
from xaihls.backends.rtl.v2.cycles import TOLERANCE, compare, markdown
from xaihls.plan.engine import EngineV2


@pytest.mark.parametrize("latency", [1, 100])
@pytest.mark.parametrize("name,shape", [("digits", "16x8"), ("digits_gap", "4x4"), ("random305", "4x4"),
                                        ("digits_strided_bn", "16x8_128bit"), ("pools3", "4x4")])
def test_cycles_per_job_match_the_cycle_model(name, shape, latency):
    prog = program(name, shape)
    engine = EngineV2.for_program(prog, clock_mhz=100.0, bytes_per_cycle=64.0, ddr_latency=latency)
    gradient = simulated(name, shape, 0.0, latency)[1]
    rows = compare(prog, engine, gradient["profile"], latency)
    print(f"\n{name} {shape} DDR latency {latency}\n{markdown(rows)}")
    assert len(rows) == len(prog.forward) + len(prog.backward)
    bad = [r for r in rows if not r.within]
    assert not bad, f"outside {TOLERANCE:.0%}:\n{markdown(bad)}"


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
