"""Helpers shared by the module testbenches (imported inside the simulator: cocotb only)."""

from __future__ import annotations

import json
import os
import random


def parameters() -> dict:
    """The parameters the testbench's build was made with (set by module_tb.run)."""
    return json.loads(os.environ.get("XAIHLS_TB_PARAMETERS", "{}"))


def pauses(seed: int, p: float):
    """A ready/valid pause pattern: each cycle paused with probability p (deterministic per seed)."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < p


def bursts_ok(addr: int, beats: int, byte_lanes: int) -> str | None:
    """Why an INCR burst breaks the AXI4 rules the movers promise (None if it keeps them)."""
    if not 1 <= beats <= 256:
        return f"burst at {addr:#x} has {beats} beats (1..256)"
    if addr % byte_lanes:
        return f"burst at {addr:#x} is not aligned to the {byte_lanes}-byte bus"
    if addr % 4096 + beats * byte_lanes > 4096:
        return f"burst at {addr:#x}, {beats} beats, crosses a 4 KiB boundary"
    return None
