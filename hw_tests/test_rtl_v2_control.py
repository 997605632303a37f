"""The Engine v2 control interface: a bus error reaches the status and still ends the run; a start
while busy is ignored."""

import numpy as np
import pytest

from hw_tests.rtl_v2_cases import expected, program, runs, shared_params
from xaihls.backends.rtl.v2 import sim


def _gradient(name: str = "digits") -> dict:
    return next(r for r in runs(name) if r["name"] == "gradient")


@pytest.mark.parametrize("memory", ["sv", "axiram"])
def test_slverr_in_the_weights_sets_status_bit_0_and_still_raises_done(memory):
    """SLVERR from the SystemVerilog DDR's error window, and from cocotbext-axi (protocol mode)."""
    prog = program("digits", "4x4")
    weights = next(r for r in prog.regions if r.name.endswith(".weight"))
    # the testbench raises if no done (interrupt) comes; the status is read after it
    out = sim.simulate(prog, shared_params("4x4"), [_gradient()], slverr=(weights.addr, weights.addr + weights.size),
                       check=False, memory=memory)[0]
    assert out["status"] & 1, f"status {out['status']:#x}: bus error bit expected"
    assert out["status"] & ~1 == 0


def test_a_start_while_busy_is_ignored():
    plain = _gradient()
    restarted = {**plain, "restart_after": 3000}  # mid forward pass
    out_plain, out = sim.simulate(program("digits", "4x4"), shared_params("4x4"), [plain, restarted])
    busy = int(out["busy_ctrl"][0])
    assert busy & 0b0101 == 0b0001, f"control register {busy:#x} while running: ap_start=1, ap_idle=0"
    after_ctrl, interrupt = (int(v) for v in out["after_ctrl"])
    # one done only: after it was read and acknowledged the engine stays idle with no new done
    assert after_ctrl & 0b0111 == 0b0100 and interrupt == 0, f"after: control {after_ctrl:#x}, irq {interrupt}"
    want = next(e for e in expected("digits", "4x4") if e["name"] == "gradient")
    assert out["status"] == 0 and np.array_equal(out["attribution"], want["attribution"])
    assert out["cycles"] == out_plain["cycles"], "the ignored start must not disturb the run"
