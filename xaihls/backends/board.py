"""The board flow of a project: from the engine's IP to a bitstream (Zynq) or an xclbin (Alveo).

``board_files`` gives the files a project needs to go from its exported engine to something
that runs on the board, in the tools' own languages (templates in ``hls_templates``
``vivado/`` and ``vitis/``, with a few marked holes):

- Zynq-7000 and Zynq UltraScale+ boards: ``vivado/`` holds a Vivado block design (the PS with
  the board preset's DDR, the engine's AXI4 master on the first high-performance port through
  a SmartConnect, its AXI4-Lite control on the PS's first general-purpose master, its
  interrupt through an AXI interrupt controller to the PS, one PL clock at the plan's clock),
  synthesis, implementation, ``write_bitstream``, ``report_utilization`` and
  ``report_timing_summary`` into ``reports/`` (where ``xaihls report`` reads them), and the
  PYNQ overlay files (``vivado/overlay/xaihls.bit`` + ``.hwh``, and an ``.xsa``). The engine
  is the Vitis HLS IP export (``ip="hls"``) or the SystemVerilog engine packaged as an IP by
  ``vivado/package_rtl_ip.tcl`` (``ip="rtl"``).
- Alveo boards: ``vitis/`` holds a Makefile that compiles the HLS engine as a Vitis kernel
  (``v++ -c``) and links it into the card's shell (``v++ -l`` with ``link.cfg``), and a Vivado
  hook that writes the same two reports after routing.

Guarantee: the same board, clock, AXI width and IP kind give byte-identical files. None of
these files has been run with Vivado or Vitis by xaihls's own tests; ``tests/test_board_flow.py``
runs every tcl file under ``tclsh`` with stand-ins for the Vivado commands it uses, which
check the commands, their options, the IP cells' pin and property names and the connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from xaihls.backends.hls.templates import read_template, render
from xaihls.errors import XaiHlsError
from xaihls.plan.boards import Board, load_board

TOP = "xaihls_top"
HLS_IP_VLNV = "xilinx.com:hls:xaihls_top:1.0"  # Vitis HLS export_design defaults: vendor, library, version
HLS_IP_REPO = "xaihls_prj/solution1/impl/ip"  # where build_prj.tcl's export_design puts it
RTL_IP_VLNV = "xaihls.org:rtl:xaihls_top:1.0"  # what vivado/package_rtl_ip.tcl packages
IP_KINDS = ("hls", "rtl")
CU_NAME = "xaihls_top_1"  # the one compute unit of the Alveo link


@dataclass(frozen=True)
class ZynqFlow:
    """A Zynq board's Vivado flow: its board files and the PS ports the engine uses."""

    board_part: str  # vendor:board:name of the Vivado board files, without the file version
    ps: str  # "zynq7" (processing_system7) or "zynqmp" (zynq_ultra_ps_e)

    @property
    def hp_port(self) -> str:
        return {"zynq7": "S_AXI_HP0", "zynqmp": "S_AXI_HP0_FPD"}[self.ps]

    @property
    def gp_port(self) -> str:
        return {"zynq7": "M_AXI_GP0", "zynqmp": "M_AXI_HPM0_FPD"}[self.ps]

    @property
    def clock_pin(self) -> str:
        return {"zynq7": "FCLK_CLK0", "zynqmp": "pl_clk0"}[self.ps]

    @property
    def irq_pin(self) -> str:
        return {"zynq7": "IRQ_F2P", "zynqmp": "pl_ps_irq0"}[self.ps]

    @property
    def hp_widths(self) -> tuple[int, ...]:
        # UG585 (Zynq-7000 AXI_HP: 32 or 64 bits), UG1085 (Zynq UltraScale+ S_AXI_HP: 32, 64, 128)
        return {"zynq7": (32, 64), "zynqmp": (32, 64, 128)}[self.ps]


@dataclass(frozen=True)
class AlveoFlow:
    """An Alveo card's Vitis flow: the platform (shell) and the DDR bank the engine uses."""

    platform: str
    memory: str  # the v++ bank name of the engine's AXI4 master
    slr: str  # the SLR of that bank, where the compute unit is placed


# Board files: the names the PYNQ images, hls4ml's VivadoAccelerator backend and the Vivado
# board store use (pynq-z2: tul.com.tw:pynq-z2:part0:1.0; ultra96-v2: avnet.com:ultra96v2:part0;
# kv260: the K26 SOM's xilinx.com:kv260_som:part0; zcu102/zcu104 ship with Vivado). The version
# is left to the tcl, which takes the newest one installed.
# Alveo U250: xilinx_u250_gen3x16_xdma_4_1_202210_1 is AMD's U250 Vitis target platform for
# Vitis 2022.1 and later (the XDMA 4.1 shell, named on the U250's download page and in UG1120);
# DDR[0] is the bank in SLR0.
FLOWS: dict[str, ZynqFlow | AlveoFlow] = {
    "pynq-z2": ZynqFlow(board_part="tul.com.tw:pynq-z2:part0", ps="zynq7"),
    "ultra96-v2": ZynqFlow(board_part="avnet.com:ultra96v2:part0", ps="zynqmp"),
    "kv260": ZynqFlow(board_part="xilinx.com:kv260_som:part0", ps="zynqmp"),
    "zcu102": ZynqFlow(board_part="xilinx.com:zcu102:part0", ps="zynqmp"),
    "zcu104": ZynqFlow(board_part="xilinx.com:zcu104:part0", ps="zynqmp"),
    "alveo-u250": AlveoFlow(platform="xilinx_u250_gen3x16_xdma_4_1_202210_1", memory="DDR[0]", slr="SLR0"),
}
_PS_OF_FAMILY = {"zynq7": "zynq7", "zynqmp": "zynqmp"}

# Why a bundled board has no flow, in one line each.
_NO_FLOW = {
    "artix7": "its DDR3 is reached through a MIG soft memory controller driven by a MicroBlaze, "
              "a different block design (MIG, MicroBlaze, UART) that xaihls does not generate",
}

# The engine's interface names in each IP kind (HLS: the Vitis HLS export of xaihls_top.cpp's
# pragmas; RTL: the ports of rtl/xaihls_top.sv as package_rtl_ip.tcl names them).
_IP_INTERFACES = {
    "hls": dict(vlnv=HLS_IP_VLNV, ctrl="s_axi_control", mem="m_axi_gmem", clk="ap_clk", rst="ap_rst_n",
                rst_active_low=1),
    "rtl": dict(vlnv=RTL_IP_VLNV, ctrl="s_axil", mem="m_axi", clk="clk", rst="rst", rst_active_low=0),
}


def board_flow(board: Board | str) -> ZynqFlow | AlveoFlow:
    """The flow of ``board``, or XaiHlsError saying why it has none."""
    board = load_board(board) if isinstance(board, str) else board
    flow = FLOWS.get(board.name)
    if flow is not None:
        if isinstance(flow, ZynqFlow) and _PS_OF_FAMILY.get(board.family) != flow.ps:
            raise XaiHlsError(f"board '{board.name}': family '{board.family}' is not the {flow.ps} "
                              f"its board flow is written for")
        return flow
    supported = ", ".join(sorted(FLOWS))
    if board.family in _NO_FLOW:
        raise XaiHlsError(f"board '{board.name}' ({board.family}): no board flow: {_NO_FLOW[board.family]}; "
                          f"boards with one: {supported}")
    raise XaiHlsError(f"board '{board.name}': no board flow (its Vivado board files or Vitis platform are "
                      f"not known to xaihls); boards with one: {supported}")


def _clock_text(clock_mhz: float) -> str:
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or not clock_mhz > 0:
        raise XaiHlsError(f"board flow: clock must be a number > 0 (MHz), got {clock_mhz!r}")
    return f"{clock_mhz:g}"


def _tcl_settings(board: Board, flow: ZynqFlow, axi_data_bits: int, clock: str, ip: str) -> str:
    names = _IP_INTERFACES[ip]
    rows = [
        ("xaihls_board", board.name),
        ("xaihls_part", board.part),
        ("xaihls_family", board.family),
        ("xaihls_board_part", flow.board_part),
        ("xaihls_clock_mhz", clock),
        ("xaihls_axi_bits", str(axi_data_bits)),
        ("xaihls_ip", ip),
        ("xaihls_ip_vlnv", names["vlnv"]),
        ("xaihls_ip_ctrl", names["ctrl"]),
        ("xaihls_ip_mem", names["mem"]),
        ("xaihls_ip_clk", names["clk"]),
        ("xaihls_ip_rst", names["rst"]),
        ("xaihls_ip_rst_active_low", str(names["rst_active_low"])),
        ("xaihls_ip_params", "{}"),
        ("xaihls_hls_ip_repo", HLS_IP_REPO),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"set {name:<{width}} {value}" for name, value in rows)


def _zynq_files(board: Board, flow: ZynqFlow, axi_data_bits: int, clock: str, ip: str) -> dict[str, str]:
    if axi_data_bits not in flow.hp_widths:
        raise XaiHlsError(f"board '{board.name}': the engine's DDR port is {axi_data_bits} bits, but the "
                          f"{flow.hp_port} port takes {' or '.join(map(str, flow.hp_widths))}")
    files = {
        "vivado/settings.tcl": render(read_template("vivado/settings.tcl"),
                                      {"settings": _tcl_settings(board, flow, axi_data_bits, clock, ip)}),
        "vivado/build_bitstream.tcl": read_template("vivado/build_bitstream.tcl"),
        "vivado/block_design.tcl": read_template(f"vivado/bd_{flow.ps}.tcl"),
    }
    if ip == "rtl":
        files["vivado/package_rtl_ip.tcl"] = read_template("vivado/package_rtl_ip.tcl")
    engine = ("the Vitis HLS IP export (`xaihls_prj/solution1/impl/ip`)" if ip == "hls"
              else "the SystemVerilog engine in `rtl/`, packaged by `package_rtl_ip.tcl`")
    summary = "\n".join([
        "| | |",
        "|---|---|",
        f"| board | {board.name} (`{board.part}`), board files `{flow.board_part}` |",
        f"| engine | {engine} |",
        f"| clock | {flow.clock_pin} at {clock} MHz for the engine, the SmartConnects and both PS ports |",
        f"| DDR | the engine's AXI4 master on `{flow.hp_port}` ({axi_data_bits} bits) through a SmartConnect |",
        f"| control | `{flow.gp_port}` through a SmartConnect to the engine's AXI4-Lite registers and an AXI interrupt controller |",
        f"| interrupt | engine -> `axi_intc_0` -> `{flow.irq_pin}` |",
    ])
    files["vivado/README.md"] = render(read_template("vivado/README.md"), {"summary": summary})
    return files


def _alveo_files(board: Board, flow: AlveoFlow, axi_data_bits: int, clock: str, ip: str) -> dict[str, str]:
    if ip != "hls":
        raise XaiHlsError(f"board '{board.name}': the Vitis flow links the HLS engine as a kernel; the RTL "
                          "engine is not packaged as a Vitis RTL kernel (that needs ap_clk/ap_rst_n ports and a "
                          "kernel.xml); use ip='hls'")
    if axi_data_bits not in (64, 128, 256, 512):
        raise XaiHlsError(f"board '{board.name}': the engine's DDR port must be 64 to 512 bits, got {axi_data_bits}")
    hz = round(float(clock) * 1e6)
    makefile_settings = "\n".join([
        f"# {board.name} ({board.part}): the platform (shell) the kernel is linked into",
        f"PLATFORM ?= {flow.platform}",
        f"KERNEL_CLOCK_HZ ?= {hz}",
    ])
    connectivity = "\n".join([
        "[connectivity]",
        f"nk={TOP}:1:{CU_NAME}",
        f"sp={CU_NAME}.ddr:{flow.memory}",
        f"slr={CU_NAME}:{flow.slr}",
        "",
        "[clock]",
        f"freqHz={hz}:{CU_NAME}",
    ])
    summary = "\n".join([
        "| | |",
        "|---|---|",
        f"| board | {board.name} (`{board.part}`) |",
        f"| platform | `{flow.platform}` (Makefile `PLATFORM`) |",
        f"| kernel | `{TOP}` from `firmware/`, one compute unit `{CU_NAME}` in {flow.slr} |",
        f"| DDR | the `ddr` argument (m_axi bundle gmem, {axi_data_bits} bits) on `{flow.memory}` |",
        f"| clock | {clock} MHz |",
    ])
    return {
        "vitis/Makefile": render(read_template("vitis/Makefile"), {"settings": makefile_settings}),
        "vitis/link.cfg": render(read_template("vitis/link.cfg"), {"connectivity": connectivity}),
        "vitis/post_route.tcl": render(read_template("vitis/post_route.tcl"), {"settings": f"set xaihls_cu {CU_NAME}"}),
        "vitis/README.md": render(read_template("vitis/README.md"), {"summary": summary}),
    }


def board_files(board: Board | str, *, axi_data_bits: int, clock_mhz: float, ip: str = "hls") -> dict[str, bytes]:
    """The board-flow files of a project for ``board``, by path relative to the project folder.

    ``axi_data_bits``: the engine's DDR port (the high-performance PS port is set to it);
    ``clock_mhz``: the engine's clock (the PL clock the PS makes, or the kernel clock);
    ``ip``: "hls" (the Vitis HLS export) or "rtl" (the SystemVerilog engine, Zynq only).
    Raises XaiHlsError, one line, for a board without a flow, a port width the PS port cannot
    take, or an IP kind the flow cannot use.
    """
    board = load_board(board) if isinstance(board, str) else board
    if ip not in IP_KINDS:
        raise XaiHlsError(f"board flow: ip must be one of {', '.join(IP_KINDS)}, got {ip!r}")
    if isinstance(axi_data_bits, bool) or not isinstance(axi_data_bits, int):
        raise XaiHlsError(f"board flow: axi_data_bits must be an integer, got {axi_data_bits!r}")
    flow = board_flow(board)
    clock = _clock_text(clock_mhz)
    if isinstance(flow, ZynqFlow):
        files = _zynq_files(board, flow, axi_data_bits, clock, ip)
    else:
        files = _alveo_files(board, flow, axi_data_bits, clock, ip)
    return {path: text.encode() for path, text in sorted(files.items())}
