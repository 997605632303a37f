"""Parameter checks at elaboration (verilog-axi style: `initial` + `$error`): every module given
a parameter outside its legal range reports it at time 0, naming the module, the parameter and
the instance, and stops the simulation. (yosys also refuses such a parameter: it cannot
elaborate the `$error` that is left when the check fails.)"""

from __future__ import annotations

import cocotb
from cocotb.triggers import Timer

EXPECTED = (
    "xaihls_fifo: DEPTH 3 must be a power of two >= 2",
    "xaihls_rd_dma: META_DEPTH 6 must be a power of two >= 2",
    "xaihls_rd_dma: DATA_WIDTH 96 is not a power of two in 32..1024",
    "xaihls_wr_dma: ADDR_WIDTH 16 is outside 32..64",
    "xaihls_axil_regs: PROFILE_DEPTH 1024 must be a power of two in 2..512",
    "xaihls_sim_axi_ram: DATA_WIDTH 48 is not a power of two",
)


@cocotb.test()
async def run_to_time_0(dut):
    """Nothing to drive: the checks fire before the first time step."""
    await Timer(1, unit="ns")


def test_illegal_parameters_stop_the_simulation_with_their_message(tmp_path):
    from pathlib import Path

    from hw_tests.tb.module_tb import engine_dir, rtl_dir, run

    sources = [engine_dir() / n for n in ("xaihls_contract_pkg.sv", "xaihls_fifo.sv", "xaihls_rd_dma.sv",
                                          "xaihls_wr_dma.sv", "xaihls_axil_regs.sv")]
    sources.append(rtl_dir() / "sim" / "xaihls_sim_axi_ram.sv")
    sources.append(Path(__file__).with_name("tb_parameter_checks.sv"))
    # Verilator stops at the first $error: the error limit lets every check report (each $stop
    # is then logged as ignored); the simulator still exits with an error status at the end
    try:
        run(__file__, "tb_parameter_checks", sources, {}, tmp_path, plusargs=["+verilator+error+limit+100"])
    except AssertionError:
        pass
    log = (tmp_path / "sim.log").read_text()
    missing = [m for m in EXPECTED if m not in log]
    assert not missing, f"parameter checks that did not fire: {missing}"
    assert "Verilog $stop, ignored due to +verilator+error+limit" in log
