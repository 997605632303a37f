"""The board flow's Vivado/Vitis files: each tcl runs under tclsh with stand-ins for Vivado.

No Vivado or Vitis runs here. ``tests/tcl/vivado_stubs.tcl`` stands in for every Vivado
command the scripts use: it refuses unknown commands and options, a part that is not the
board's, IP pins and CONFIG properties the cells do not have (or have not enabled), nets with
two drivers, unconnected inputs. The tests then read the calls it recorded: the part, the
board files, the high-performance port and its width, the clock, the interrupt, the reports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xaihls.backends.board import CU_NAME, FLOWS, AlveoFlow, ZynqFlow, board_files, board_flow
from xaihls.backends.hls.templates import TEMPLATE_DIR
from xaihls.backends.rtl.v2.params import RTL_DIR, SOURCES, RtlV2Params
from xaihls.errors import XaiHlsError
from xaihls.plan.boards import load_board

STUBS = Path(__file__).parent / "tcl" / "vivado_stubs.tcl"
TCLSH = shutil.which("tclsh")
needs_tclsh = pytest.mark.skipif(
    TCLSH is None, reason="no tclsh: `make venv` installs Debian's tcl where apt-get can run as root; "
                          "elsewhere install Tcl 8.6 (tclsh) to run these checks")

ZYNQ_BOARDS = sorted(name for name, flow in FLOWS.items() if isinstance(flow, ZynqFlow))
ALVEO_BOARDS = sorted(name for name, flow in FLOWS.items() if isinstance(flow, AlveoFlow))


# --------------------------------------------------------------------------- the engine models


def hls_interfaces() -> tuple[str, str]:
    """(control, memory) interface names of the Vitis HLS export, from the top's pragmas."""
    top = (TEMPLATE_DIR / "firmware" / "xaihls_top.cpp").read_text()
    m_axi = re.search(r"#pragma HLS INTERFACE m_axi\b[^\n]*\bbundle=(\w+)", top)
    lite = [line for line in top.splitlines() if "INTERFACE s_axilite" in line]
    bundles = {m.group(1) for line in lite if (m := re.search(r"\bbundle=(\w+)", line))} or {"control"}
    assert m_axi and len(bundles) == 1, "the top has one m_axi and one s_axilite bundle"
    return f"s_axi_{bundles.pop()}", f"m_axi_{m_axi.group(1)}"


def rtl_top() -> tuple[list[str], list[str]]:
    """(parameters, ports) of rtl/xaihls_top.sv."""
    text = (RTL_DIR / "xaihls_top.sv").read_text()
    start = text.index("module xaihls_top")
    header = text[start:text.index(");", start)]
    params = re.findall(r"parameter\s+int\s+(\w+)", header)
    ports = re.findall(r"^\s*(?:input|output)\s+logic\s*(?:\[[^\]]*\])?\s*(\w+)", header, re.MULTILINE)
    return params, ports


def model_tcl(project: Path) -> str:
    ctrl, mem = hls_interfaces()
    params, ports = rtl_top()
    assert {"clk", "rst", "interrupt"} <= set(ports)
    assert any(p.startswith("s_axil_") for p in ports) and any(p.startswith("m_axi_") for p in ports)
    rtl_props = " ".join(f"{p} {{}}" for p in params)
    return "\n".join([
        f"set ::stub_rtl_top {{{project / 'rtl' / 'xaihls_top.sv'}}}",
        # Vitis HLS names: ap_clk, ap_rst_n (active low), interrupt (ap_ctrl_hs on s_axilite)
        "dict set ::ip_model xilinx.com:hls:xaihls_top {props {} ro {} "
        f"intf {{{ctrl} slave {{}} {mem} master {{}}}} "
        "pins {ap_clk I {} ap_rst_n I {} interrupt O {}} preset {} rule {}}",
        "dict set ::ip_model xaihls.org:rtl:xaihls_top {"
        f"props {{{rtl_props}}} ro {{}} intf {{s_axil slave {{}} m_axi master {{}}}} "
        "pins {clk I {} rst I {} interrupt O {}} preset {} rule {}}",
        "set ::ip_repo_vlnvs {xilinx.com:hls:xaihls_top:1.0 xaihls.org:rtl:xaihls_top:1.0}",
        "",
    ])


# --------------------------------------------------------------------------- running the stubs


def write_project(tmp: Path, files: dict[str, bytes]) -> Path:
    """A project folder with the board files, the HLS export's folder and the RTL sources."""
    for rel, data in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    (tmp / "xaihls_prj" / "solution1" / "impl" / "ip").mkdir(parents=True)
    rtl = tmp / "rtl"
    rtl.mkdir()
    for name in SOURCES:
        shutil.copy(RTL_DIR / name, rtl / name)
    (rtl / "sources.f").write_text("\n".join(SOURCES) + "\n")
    (rtl / "xaihls_params.svh").write_text(RtlV2Params(8, 4, 64, 512, 128, 128, 2048, 512, 2, 256).svh())
    (tmp / "firmware").mkdir()
    (tmp / "firmware" / "xaihls_top.cpp").write_text("// stand-in\n")
    return tmp


def run_stubbed(project: Path, script: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    model = project / "stub_model.tcl"
    model.write_text(model_tcl(project))
    log = project / "stub_calls.log"
    proc = subprocess.run([TCLSH, str(STUBS), str(model), str(log), str(project / script)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=project)
    calls = [line.split("\x1f") for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def calls_of(calls: list[list[str]], name: str) -> list[list[str]]:
    return [c[1:] for c in calls if c[0] == name]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def cell_config(calls, cell: str) -> dict[str, str]:
    """CONFIG values set on a cell, in order (later wins)."""
    config: dict[str, str] = {}
    for args in calls_of(calls, "set_property"):
        if args[0] == "-dict" and args[-1] == f"/{cell}":
            words = args[1].split()
            config.update({k.removeprefix("CONFIG."): v.strip("{}") for k, v in zip(words[::2], words[1::2])})
    return config


def nets(calls) -> list[set[str]]:
    """The block design's nets, joined as the tool joins them."""
    result: list[set[str]] = []
    for args in calls_of(calls, "connect_bd_net"):
        pins = set(" ".join(a for a in args if not a.startswith("-")).split())
        joined = [n for n in result if n & pins]
        result = [n for n in result if not n & pins] + [pins.union(*joined)]
    return result


def intf_nets(calls) -> set[frozenset[str]]:
    return {frozenset(args) for args in calls_of(calls, "connect_bd_intf_net")}


def on_one_net(calls, *pins: str) -> bool:
    return any(set(pins) <= net for net in nets(calls))


# --------------------------------------------------------------------------- Zynq


@needs_tclsh
@pytest.mark.parametrize("board_name", ZYNQ_BOARDS)
def test_zynq_flow_runs_under_the_stubs_and_names_part_port_and_clock(board_name, tmp_path):
    board = load_board(board_name)
    flow = board_flow(board)
    clock = board.clock_mhz
    files = board_files(board, axi_data_bits=board.axi_data_bits, clock_mhz=clock)
    project = write_project(tmp_path, files)
    proc, calls = run_stubbed(project, "vivado/build_bitstream.tcl")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert calls[-1] == ["STUB_DONE"]

    (create,) = calls_of(calls, "create_project")
    assert option(create, "-part") == board.part
    board_parts = [a[1] for a in calls_of(calls, "set_property") if a[0] == "board_part"]
    assert len(board_parts) == 1 and board_parts[0].startswith(flow.board_part + ":")

    ps = "ps7" if flow.ps == "zynq7" else "zynq_ultra_ps_e_0"
    config = cell_config(calls, ps)
    if flow.ps == "zynq7":
        assert config["PCW_USE_S_AXI_HP0"] == "1"
        assert config["PCW_S_AXI_HP0_DATA_WIDTH"] == str(board.axi_data_bits)
        assert float(config["PCW_FPGA0_PERIPHERAL_FREQMHZ"]) == clock
    else:
        assert config["PSU__USE__S_AXI_GP2"] == "1"  # S_AXI_HP0_FPD
        assert config["PSU__SAXIGP2__DATA_WIDTH"] == str(board.axi_data_bits) == "128"
        assert float(config["PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"]) == clock

    # DDR: engine master -> SmartConnect -> the HP port; control: GP master -> SmartConnect -> engine
    connected = intf_nets(calls)
    assert frozenset({"/xaihls_top_0/m_axi_gmem", "/mem_smc/S00_AXI"}) in connected
    assert frozenset({"/mem_smc/M00_AXI", f"/{ps}/{flow.hp_port}"}) in connected
    assert frozenset({f"/{ps}/{flow.gp_port}", "/ctrl_smc/S00_AXI"}) in connected
    assert frozenset({"/ctrl_smc/M00_AXI", "/xaihls_top_0/s_axi_control"}) in connected
    assert on_one_net(calls, f"/{ps}/{flow.clock_pin}", "/xaihls_top_0/ap_clk", "/mem_smc/aclk")
    assert on_one_net(calls, "/xaihls_top_0/interrupt", "/axi_intc_0/intr")
    assert on_one_net(calls, "/axi_intc_0/irq", f"/{ps}/{flow.irq_pin}")
    assert calls_of(calls, "validate_bd_design") and calls_of(calls, "assign_bd_address")

    steps = [c[0] for c in calls]
    assert steps.index("launch_runs") < steps.index("report_utilization")
    (impl,) = [a for a in calls_of(calls, "launch_runs") if "impl_1" in a]
    assert option(impl, "-to_step") == "write_bitstream"
    (util,) = calls_of(calls, "report_utilization")
    (timing,) = calls_of(calls, "report_timing_summary")
    assert Path(option(util, "-file")) == project / "reports" / "vivado_utilization.rpt"
    assert Path(option(timing, "-file")) == project / "reports" / "vivado_timing_summary.rpt"
    for name in ("xaihls.bit", "xaihls.hwh", "xaihls.xsa"):  # the PYNQ overlay, side by side
        assert (project / "vivado" / "overlay" / name).is_file()


@needs_tclsh
@pytest.mark.parametrize("board_name", ["pynq-z2", "kv260"])
def test_rtl_engine_is_packaged_and_wired_with_its_own_port_names(board_name, tmp_path):
    board = load_board(board_name)
    flow = board_flow(board)
    files = board_files(board, axi_data_bits=board.axi_data_bits, clock_mhz=board.clock_mhz, ip="rtl")
    assert "vivado/package_rtl_ip.tcl" in files
    project = write_project(tmp_path, files)
    proc, calls = run_stubbed(project, "vivado/build_bitstream.tcl")
    assert proc.returncode == 0, proc.stderr[-2000:]

    (package,) = calls_of(calls, "ipx::package_project")
    assert Path(option(package, "-root_dir")) == project / "vivado" / "ip_rtl"
    added = " ".join(a for args in calls_of(calls, "add_files") for a in args)
    assert all(str(project / "rtl" / name) in added for name in SOURCES)
    parts = [option(args, "-part") for args in calls_of(calls, "create_project")]
    assert parts == [board.part, board.part]  # the packaging project and the build
    ps = "ps7" if flow.ps == "zynq7" else "zynq_ultra_ps_e_0"
    engine = cell_config(calls, "xaihls_top_0")
    assert engine["TM"] == "8" and engine["TN"] == "4" and engine["BACKWARD"] == "1"
    connected = intf_nets(calls)
    assert frozenset({"/xaihls_top_0/m_axi", "/mem_smc/S00_AXI"}) in connected
    assert frozenset({"/ctrl_smc/M00_AXI", "/xaihls_top_0/s_axil"}) in connected
    reset = "rst_ps7" if flow.ps == "zynq7" else "rst_ps8"
    assert on_one_net(calls, f"/{reset}/peripheral_reset", "/xaihls_top_0/rst")  # active high
    assert on_one_net(calls, f"/{ps}/{flow.clock_pin}", "/xaihls_top_0/clk")


# The stubs are only worth something if they fail: each mistake below must stop the run.
MISTAKES = [
    ("a misspelt command", "vivado/build_bitstream.tcl", "launch_runs impl_1", "launch_run impl_1",
     "unknown command 'launch_run'"),
    ("a misspelt option", "vivado/build_bitstream.tcl", "-to_step write_bitstream", "-to-step write_bitstream",
     "unknown option '-to-step'"),
    ("an HP port the PS does not have", "vivado/block_design.tcl", "ps7/S_AXI_HP0]", "ps7/S_AXI_HP4]",
     "has no interface 'S_AXI_HP4'"),
    ("a clock pin never enabled", "vivado/block_design.tcl", "CONFIG.PCW_EN_CLK0_PORT {1}", "CONFIG.PCW_EN_CLK0_PORT {0}",
     "has no pin 'FCLK_CLK0'"),
    ("a misspelt CONFIG property", "vivado/block_design.tcl", "CONFIG.PCW_USE_S_AXI_HP0 {1}",
     "CONFIG.PCW_USE_S_AXI_HPO {1}", "has no property CONFIG.PCW_USE_S_AXI_HPO"),
    ("a part that is not the board's", "vivado/settings.tcl", "xc7z020clg400-1", "xc7z010clg400-1",
     "is for xc7z020clg400-1, but the project is for xc7z010clg400-1"),
    ("the interrupt left open", "vivado/block_design.tcl",
     "connect_bd_net [get_bd_pins axi_intc_0/irq] [get_bd_pins ps7/IRQ_F2P]", "",
     "input /ps7/IRQ_F2P is not connected"),
    ("two drivers on the engine's reset", "vivado/block_design.tcl", "rst_ps7/peripheral_aresetn] [get_bd_pins xaihls_top_0",
     "ps7/FCLK_CLK0] [get_bd_pins rst_ps7/peripheral_aresetn] [get_bd_pins xaihls_top_0", "several drivers"),
]


@needs_tclsh
@pytest.mark.parametrize("what,path,old,new,message", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_stubs_fail_on_a_mistake(what, path, old, new, message, tmp_path):
    files = board_files("pynq-z2", axi_data_bits=64, clock_mhz=100)
    text = files[path].decode()
    assert old in text, f"the template no longer has {old!r}; update this test"
    files[path] = text.replace(old, new, 1).encode()
    project = write_project(tmp_path, files)
    proc, calls = run_stubbed(project, "vivado/build_bitstream.tcl")
    assert proc.returncode != 0 and calls[-1][0] == "STUB_ERROR", what
    assert message in calls[-1][1], calls[-1]


@needs_tclsh
def test_zynqmp_preset_ports_not_switched_off_fail_validation(tmp_path):
    """A board preset enables HPM1_FPD and HPM0_LPD; left on, their clocks would be undriven."""
    files = board_files("zcu104", axi_data_bits=128, clock_mhz=200)
    text = files["vivado/block_design.tcl"].decode()
    files["vivado/block_design.tcl"] = text.replace("CONFIG.PSU__USE__M_AXI_GP1 {0}", "").encode()
    proc, calls = run_stubbed(write_project(tmp_path, files), "vivado/build_bitstream.tcl")
    assert proc.returncode != 0 and "maxihpm1_fpd_aclk is not connected" in calls[-1][1]


@needs_tclsh
def test_missing_hls_export_stops_with_the_command_to_run(tmp_path):
    project = write_project(tmp_path, board_files("pynq-z2", axi_data_bits=64, clock_mhz=100))
    shutil.rmtree(project / "xaihls_prj")
    proc, _ = run_stubbed(project, "vivado/build_bitstream.tcl")
    assert proc.returncode != 0 and "XAIHLS_EXPORT=1 vitis_hls -f build_prj.tcl" in proc.stderr


# --------------------------------------------------------------------------- Alveo


@needs_tclsh
@pytest.mark.parametrize("board_name", ALVEO_BOARDS)
def test_alveo_flow_names_its_platform_and_reports_the_compute_unit(board_name, tmp_path):
    board = load_board(board_name)
    flow = board_flow(board)
    files = board_files(board, axi_data_bits=board.axi_data_bits, clock_mhz=board.clock_mhz)
    assert set(files) == {"vitis/Makefile", "vitis/link.cfg", "vitis/post_route.tcl", "vitis/README.md"}
    makefile = files["vitis/Makefile"].decode()
    assert re.search(rf"^PLATFORM \?= {re.escape(flow.platform)}$", makefile, re.MULTILINE)
    assert flow.platform == "xilinx_u250_gen3x16_xdma_4_1_202210_1"

    # link.cfg: only sections and keys v++ --link takes, naming the kernel's real argument
    sections: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in files["vitis/link.cfg"].decode().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
            continue
        key, _, value = line.partition("=")
        sections.setdefault(section, []).append((key, value))
    assert {k for k, _ in sections["connectivity"]} <= {"nk", "sp", "slr", "stream_connect"}
    assert ("nk", f"xaihls_top:1:{CU_NAME}") in sections["connectivity"]
    assert ("sp", f"{CU_NAME}.ddr:{flow.memory}") in sections["connectivity"]
    assert sections["clock"] == [("freqHz", f"{round(board.clock_mhz * 1e6)}:{CU_NAME}")]
    top = (TEMPLATE_DIR / "firmware" / "xaihls_top.cpp").read_text()
    assert re.search(r"int xaihls_top\([\w:]+ \*ddr,", top), "the kernel's DDR argument is `ddr`"

    project = write_project(tmp_path, files)
    if shutil.which("make"):  # the commands make would run name the platform
        dry = subprocess.run(["make", "-n", "-C", str(project / "vitis")], capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        commands = dry.stdout.replace("\\\n", " ").splitlines()
        compile_line, link_line = [c for c in commands if "v++" in c]
        assert f"--platform {flow.platform}" in compile_line and "-c " in compile_line
        assert f"--platform {flow.platform}" in link_line and "--config link.cfg" in link_line
        assert f"run.impl_1.STEPS.ROUTE_DESIGN.TCL.POST={project / 'vitis' / 'post_route.tcl'}" in link_line

    env = {"PATH": "/usr/bin:/bin", "XAIHLS_REPORTS": str(project / "reports")}
    proc, calls = run_stubbed(project, "vitis/post_route.tcl", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    utilization = calls_of(calls, "report_utilization")
    (timing,) = calls_of(calls, "report_timing_summary")
    cu_util = [a for a in utilization if "-cells" in a]
    assert [option(a, "-cells") for a in cu_util] == [f"level0_i/ulp/{CU_NAME}"]
    assert Path(option(cu_util[0], "-file")) == project / "reports" / "vivado_utilization.rpt"
    assert option(timing, "-cells") == f"level0_i/ulp/{CU_NAME}"
    assert (project / "reports" / "vivado_timing_summary.rpt").is_file()


# --------------------------------------------------------------------------- refusals


def test_artix_board_is_refused_in_one_line_naming_what_is_missing():
    with pytest.raises(XaiHlsError) as error:
        board_files("arty-a7-100t", axi_data_bits=64, clock_mhz=100)
    message = str(error.value)
    assert "\n" not in message and "arty-a7-100t" in message and "MIG" in message and "MicroBlaze" in message


def test_port_widths_and_ip_kinds_the_flow_cannot_take_are_refused():
    with pytest.raises(XaiHlsError, match=r"S_AXI_HP0 port takes 32 or 64"):
        board_files("pynq-z2", axi_data_bits=128, clock_mhz=100)
    with pytest.raises(XaiHlsError, match=r"not packaged as a Vitis RTL kernel"):
        board_files("alveo-u250", axi_data_bits=512, clock_mhz=300, ip="rtl")
    with pytest.raises(XaiHlsError, match=r"ip must be one of hls, rtl"):
        board_files("zcu104", axi_data_bits=128, clock_mhz=200, ip="vhdl")
    with pytest.raises(XaiHlsError, match=r"clock must be a number > 0"):
        board_files("zcu104", axi_data_bits=128, clock_mhz=0)


def test_every_bundled_board_has_a_flow_or_a_reason():
    from xaihls.plan.boards import list_boards

    for board in list_boards():
        try:
            board_flow(board)
        except XaiHlsError as error:
            assert board.family == "artix7", str(error)


def test_files_are_byte_identical_for_the_same_inputs():
    first = board_files("kv260", axi_data_bits=128, clock_mhz=200)
    assert first == board_files("kv260", axi_data_bits=128, clock_mhz=200)
    assert first["vivado/settings.tcl"] != board_files("kv260", axi_data_bits=128, clock_mhz=150)["vivado/settings.tcl"]
