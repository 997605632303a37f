"""The control interface: bus errors reach the status and still end the run; a start while busy is ignored."""

import numpy as np
import pytest

from hw_tests.rtl_cases import compiled, golden_runs, shared_params
from xaihls.backends.rtl import sim


@pytest.mark.parametrize("memory", ["sv", "axiram"])
def test_slverr_in_the_weights_sets_status_bit_0_and_still_raises_done(memory):
    """SLVERR from the SystemVerilog DDR's error window, and from cocotbext-axi (protocol mode)."""
    acc, x = compiled("digits", (4, 2))
    program = acc.plan.program
    weights = next(r for r in program.regions if r.name.endswith(".weight"))
    run = golden_runs(acc, x, methods=("gradient",))[0]
    for key in ("expect_logits", "expect_result", "expect_attribution"):
        run.pop(key)
    # the testbench raises if no done (interrupt) comes; status is read after it
    out = sim.simulate(program, shared_params((4, 2)), [run], slverr=(weights.addr, weights.addr + weights.size),
                       check=False, memory=memory)[0]
    assert out["status"] & 1, f"status {out['status']:#x}: bus error bit expected"
    assert out["status"] & ~1 == 0


def test_a_start_while_busy_is_ignored():
    acc, x = compiled("digits", (4, 2))
    run = golden_runs(acc, x, methods=("gradient",))[0]
    plain = dict(run)
    run["restart_after"] = 3000  # mid forward pass
    out_plain, out = sim.simulate(acc.plan.program, shared_params((4, 2)), [plain, run])
    busy = int(out["busy_ctrl"][0])
    assert busy & 0b0101 == 0b0001, f"control register {busy:#x} while running: ap_start=1, ap_idle=0"
    after_ctrl, interrupt = (int(v) for v in out["after_ctrl"])
    # one done only: after it was read and acknowledged the engine stays idle with no new done
    assert after_ctrl & 0b0111 == 0b0100 and interrupt == 0, f"after: control {after_ctrl:#x}, irq {interrupt}"
    assert np.array_equal(out["attribution"], run["expect_attribution"])
    assert out["cycles"] == out_plain["cycles"], "the ignored start must not disturb the run"
