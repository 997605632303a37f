"""Each module testbench fails when the property it checks is broken: break it once and see.

Run: ``python -m benchmarks.tb_mutations [--only NAME,...]`` (Markdown on stdout; a full run
also writes benchmarks/results/tb_mutations.json). Under the heavy lock on a shared machine:
``flock /tmp/xaihls-heavy.lock python -m benchmarks.tb_mutations``.

A mutation is one small deliberate breakage of one RTL file (text found exactly once and its
replacement) and the testbench node that must then fail. The files are Engine v2's FIFO, movers
and AXI4-Lite block (``rtl_v2/``) and the shared DDR model (``rtl/sim/``). The package's RTL is
never edited: both folders are copied, the copy mutated, and the testbenches pointed at the
copies (``XAIHLS_TB_ENGINE_DIR`` and ``XAIHLS_TB_RTL_DIR``, hw_tests/tb/module_tb.py). Every named test first runs on the
unmutated copy and must pass; then each mutant must fail in simulation. A mutant that does not
build proves nothing and counts as a failure of this script, as does a survivor or a mutation
whose text is no longer in the source. Exit status 1 on any of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from xaihls.backends.hls.csim import CACHE_ENV
from hw_tests.tb.module_tb import ENGINE_DIR, ENGINE_DIR_ENV, RTL_DIR, RTL_DIR_ENV

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
# a mutation's file is named from the templates folder: rtl_v2/... (the engine) or rtl/... (the DDR model)
FOLDERS = {ENGINE_DIR.name: (ENGINE_DIR, ENGINE_DIR_ENV), RTL_DIR.name: (RTL_DIR, RTL_DIR_ENV)}
TIMEOUT_S = 1800

TB = "hw_tests/tb"
FIFO_8x2 = f"{TB}/xaihls_fifo/test_xaihls_fifo.py::test_xaihls_fifo[8x2]"
FIFO_72x16 = f"{TB}/xaihls_fifo/test_xaihls_fifo.py::test_xaihls_fifo[72x16]"
RD = f"{TB}/xaihls_rd_dma/test_xaihls_rd_dma.py::test_xaihls_rd_dma"
RD_16 = f"{RD}[ADDR_WIDTH64-ID_WIDTH1-META_DEPTH16-OFF_BITS22-LEN_BITS20]"
RD_4 = f"{RD}[ADDR_WIDTH40-ID_WIDTH4-META_DEPTH4-OFF_BITS24-LEN_BITS12]"
RD_512 = f"{RD}[ADDR_WIDTH64-ID_WIDTH1-META_DEPTH16-OFF_BITS22-LEN_BITS20-DATA_WIDTH512]"
WR = f"{TB}/xaihls_wr_dma/test_xaihls_wr_dma.py::test_xaihls_wr_dma"
WR_16 = f"{WR}[ADDR_WIDTH64-ID_WIDTH1-LEN_DEPTH16-OFF_BITS22-LEN_BITS20]"
WR_2 = f"{WR}[ADDR_WIDTH40-ID_WIDTH4-LEN_DEPTH2-OFF_BITS24-LEN_BITS12]"
WR_512 = f"{WR}[ADDR_WIDTH64-ID_WIDTH1-LEN_DEPTH16-OFF_BITS22-LEN_BITS20-DATA_WIDTH512]"
REGS = f"{TB}/xaihls_axil_regs/test_xaihls_axil_regs.py::test_xaihls_axil_regs[profile512]"
DDR = f"{TB}/xaihls_sim_axi_ram/test_xaihls_sim_axi_ram.py::test_xaihls_sim_axi_ram"
DDR_DEFAULTS, DDR_SLVERR, DDR_STALLS = f"{DDR}[64bit-defaults]", f"{DDR}[64bit-latency1-bw-slverr]", \
    f"{DDR}[64bit-latency100-stalls]"
DDR_CHECKS = f"{TB}/xaihls_sim_axi_ram/test_xaihls_sim_axi_ram.py::test_protocol_errors_are_reported[64bit]"
PARAMS = f"{TB}/parameter_checks/test_parameter_checks.py::test_illegal_parameters_stop_the_simulation_with_their_message"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str       # relative to hls_templates/: rtl_v2/... or rtl/sim/...
    old: str        # must occur exactly once in the file
    new: str
    test: str       # pytest node id that must fail on the mutant
    breaks: str     # the property the mutant breaks, as the module promises it


BURST_LIMIT_OLD = "blen = 9'd256;\n        if (sp_left < LEN_BITS'(256)) blen = 9'(sp_left);"
BURST_LIMIT_NEW = "blen = 9'd257;\n        if (sp_left < LEN_BITS'(257)) blen = 9'(sp_left);"
FOUR_K_OLD = "if (13'(to_4k) < 13'(blen)) blen = 9'(to_4k);"
FOUR_K_NEW = "if (1'b0) blen = 9'(to_4k);"

MUTATIONS = [
    # ---- xaihls_fifo
    Mutation("fifo-full-early", "rtl_v2/xaihls_fifo.sv",
             "assign full  = (count == (AW+1)'(DEPTH));", "assign full  = (count == (AW+1)'(DEPTH - 1));",
             FIFO_72x16, "full exactly when DEPTH words are held (off by one)"),
    Mutation("fifo-push-while-full", "rtl_v2/xaihls_fifo.sv",
             "if (push && !full) begin", "if (push) begin",
             FIFO_8x2, "a push while full is ignored"),
    Mutation("fifo-pop-while-empty", "rtl_v2/xaihls_fifo.sv",
             "if (pop && !empty) rp <= rp + 1'b1;", "if (pop) rp <= rp + 1'b1;",
             FIFO_8x2, "a pop while empty is ignored"),
    # ---- xaihls_rd_dma
    Mutation("rd-crosses-4k", "rtl_v2/xaihls_rd_dma.sv", FOUR_K_OLD, FOUR_K_NEW,
             RD_16, "no burst crosses a 4 KiB boundary"),
    Mutation("rd-257-beats", "rtl_v2/xaihls_rd_dma.sv", BURST_LIMIT_OLD, BURST_LIMIT_NEW,
             RD_16, "at most 256 beats a burst (limit one too high)"),
    Mutation("rd-meta-overflow", "rtl_v2/xaihls_rd_dma.sv",
             "assign issue = sp_active && (!m_axi_arvalid || m_axi_arready) && !meta_full;",
             "assign issue = sp_active && (!m_axi_arvalid || m_axi_arready);",
             RD_4, "at most META_DEPTH bursts outstanding"),
    Mutation("rd-rready-ignores-out-ready", "rtl_v2/xaihls_rd_dma.sv",
             "assign m_axi_rready = out_ready && !meta_empty;", "assign m_axi_rready = !meta_empty;",
             RD_16, "R backpressure passed through (out_ready -> rready)"),
    Mutation("rd-last-on-every-burst", "rtl_v2/xaihls_rd_dma.sv",
             "assign out_last     = h_last && m_axi_rlast;", "assign out_last     = m_axi_rlast;",
             RD_16, "out_last only on a command's last beat"),
    Mutation("rd-first-on-every-burst", "rtl_v2/xaihls_rd_dma.sv",
             "assign out_first    = h_first && r_count == '0;", "assign out_first    = r_count == '0;",
             RD_16, "out_first only on a command's first beat"),
    Mutation("rd-beat-index-per-burst", "rtl_v2/xaihls_rd_dma.sv",
             "assign out_beat     = h_beat + r_count;", "assign out_beat     = r_count;",
             RD_512, "out_beat counts within the command, not the burst (512-bit: 64-beat pages)"),
    Mutation("rd-slverr-ignored", "rtl_v2/xaihls_rd_dma.sv",
             "if (m_axi_rresp[1]) err <= 1'b1;", "if (m_axi_rresp == 2'b11) err <= 1'b1;",
             RD_16, "err set by SLVERR (not only DECERR)"),
    # ---- xaihls_wr_dma
    Mutation("wr-wstrb-dropped", "rtl_v2/xaihls_wr_dma.sv",
             "assign m_axi_wstrb  = s_strb;", "assign m_axi_wstrb  = '1;",
             WR_16, "byte strobes reach WSTRB (bytes outside a command untouched)"),
    Mutation("wr-wlast-late", "rtl_v2/xaihls_wr_dma.sv",
             "assign m_axi_wlast  = w_count == len_head;", "assign m_axi_wlast  = w_count == len_head + 8'd1;",
             WR_16, "WLAST on beat AWLEN + 1 of each burst (one late)"),
    Mutation("wr-crosses-4k", "rtl_v2/xaihls_wr_dma.sv", FOUR_K_OLD, FOUR_K_NEW,
             WR_16, "no burst crosses a 4 KiB boundary"),
    Mutation("wr-crosses-4k-512bit", "rtl_v2/xaihls_wr_dma.sv",
             "assign to_4k = (PB+1)'((13'h1000 - {1'b0, sp_addr[11:0]}) >> BB);",
             "assign to_4k = (PB+1)'((13'h1000 - {1'b0, sp_addr[11:0]}) >> 3);",
             WR_512, "no burst crosses 4 KiB at 512 bits (the page counted in 64-bit beats)"),
    Mutation("wr-257-beats", "rtl_v2/xaihls_wr_dma.sv", BURST_LIMIT_OLD, BURST_LIMIT_NEW,
             WR_2, "at most 256 beats a burst (limit one too high)"),
    Mutation("wr-w-waits-for-aw", "rtl_v2/xaihls_wr_dma.sv",
             "assign m_axi_wvalid = s_valid && !len_empty;\n    assign s_ready      = m_axi_wready && !len_empty;",
             "assign m_axi_wvalid = s_valid && !len_empty && !m_axi_awvalid;\n"
             "    assign s_ready      = m_axi_wready && !len_empty && !m_axi_awvalid;",
             WR_16, "W never waits for AWREADY"),
    Mutation("wr-idle-before-responses", "rtl_v2/xaihls_wr_dma.sv",
             "assign idle = !sp_active && !m_axi_awvalid && len_empty && outstanding == '0;",
             "assign idle = !sp_active && !m_axi_awvalid && len_empty;",
             WR_16, "idle only once every burst has its response"),
    Mutation("wr-slverr-ignored", "rtl_v2/xaihls_wr_dma.sv",
             "if (m_axi_bvalid && m_axi_bready && m_axi_bresp[1]) err <= 1'b1;",
             "if (m_axi_bvalid && m_axi_bready && m_axi_bresp == 2'b11) err <= 1'b1;",
             WR_2, "err set by SLVERR (not only DECERR)"),
    # ---- xaihls_axil_regs (Vitis HLS's ap_ctrl_hs block)
    Mutation("regs-isr-plain-write", "rtl_v2/xaihls_axil_regs.sv",
             "isr <= isr ^ wdata_q[1:0];", "isr <= wdata_q[1:0];",
             REGS, "ISR toggles on write (a plain register instead)"),
    Mutation("regs-isr-write-1-clears", "rtl_v2/xaihls_axil_regs.sv",
             "isr <= isr ^ wdata_q[1:0];", "isr <= isr & ~wdata_q[1:0];",
             REGS, "ISR toggles on write (write-1-to-clear instead)"),
    Mutation("regs-isr-ignores-ier", "rtl_v2/xaihls_axil_regs.sv",
             "if (ier[0]) isr[0] <= 1'b1;", "isr[0] <= 1'b1;",
             REGS, "ISR bit 0 set only when enabled in IER"),
    Mutation("regs-irq-ignores-gie", "rtl_v2/xaihls_axil_regs.sv",
             "assign interrupt = gie && (isr != 2'b00);", "assign interrupt = (isr != 2'b00);",
             REGS, "interrupt = GIE and any ISR bit"),
    Mutation("regs-done-not-cleared-on-read", "rtl_v2/xaihls_axil_regs.sv",
             "                        ap_done <= 1'b0;\n                        ap_ready <= 1'b0;",
             "                        ap_ready <= 1'b0;",
             REGS, "ap_done clears on read"),
    Mutation("regs-done-lost-during-read", "rtl_v2/xaihls_axil_regs.sv",
             "if (!done_evt) begin", "if (1'b1) begin",
             REGS, "a done arriving while the control register is read is not lost"),
    Mutation("regs-start-while-busy", "rtl_v2/xaihls_axil_regs.sv",
             "if (wdata_q[0] && !busy && !start) start <= 1'b1;", "if (wdata_q[0] && !start) start <= 1'b1;",
             REGS, "a start written while the engine runs is ignored"),
    Mutation("regs-strobes-ignored", "rtl_v2/xaihls_axil_regs.sv",
             "v[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];", "v[8*b +: 8] = data[8*b +: 8];",
             REGS, "argument writes honour WSTRB"),
    # ---- xaihls_sim_axi_ram (the simulated DDR)
    Mutation("ddr-read-latency-ignored", "rtl/sim/xaihls_sim_axi_ram.sv",
             "arq_time[ar_wp] <= now + 64'(rd_latency) - 64'd1;", "arq_time[ar_wp] <= now;",
             DDR_DEFAULTS, "first R beat exactly the read latency after AR"),
    Mutation("ddr-write-latency-off-by-one", "rtl/sim/xaihls_sim_axi_ram.sv",
             "bq_time[b_wp] <= now + 64'(wr_latency) - 64'd1;", "bq_time[b_wp] <= now + 64'(wr_latency);",
             DDR_DEFAULTS, "B exactly the write latency after the last W (one late)"),
    Mutation("ddr-one-read-at-a-time", "rtl/sim/xaihls_sim_axi_ram.sv",
             "assign s_axi_arready = (ar_count != (RP+1)'(READ_DEPTH)) && !stall[0];",
             "assign s_axi_arready = (ar_count == '0) && !r_active && !stall[0];",
             DDR_DEFAULTS, "several read bursts outstanding, streamed back to back"),
    Mutation("ddr-strobes-ignored", "rtl/sim/xaihls_sim_axi_ram.sv",
             "if (s_axi_wstrb[b]) mem[", "mem[",
             DDR_DEFAULTS, "byte strobes honoured"),
    Mutation("ddr-slverr-read-okay", "rtl/sim/xaihls_sim_axi_ram.sv",
             "s_axi_rresp <= in_err(rc_addr[MEM_ADDR_BITS-1:0]) ? SLVERR : OKAY;", "s_axi_rresp <= OKAY;",
             DDR_SLVERR, "reads in the SLVERR window answer SLVERR"),
    Mutation("ddr-slverr-write-kept", "rtl/sim/xaihls_sim_axi_ram.sv",
             "if (!in_err(wc_addr[MEM_ADDR_BITS-1:0]))\n                    for", "for",
             DDR_SLVERR, "writes in the SLVERR window are dropped"),
    Mutation("ddr-bandwidth-cap-ignored", "rtl/sim/xaihls_sim_axi_ram.sv",
             "assign bw_ok = (bw_q8 == 0) || (credit > 0);", "assign bw_ok = 1'b1;",
             DDR_SLVERR, "+ddr_bw caps the bytes a cycle"),
    Mutation("ddr-stalls-ignored", "rtl/sim/xaihls_sim_axi_ram.sv",
             "stall[c] = (stall_seed != 0) && (rng[c][31:16] < stall_level);", "stall[c] = 1'b0;",
             DDR_STALLS, "+ddr_stall_seed stalls every channel"),
    Mutation("ddr-4k-check-one-beat-short", "rtl/sim/xaihls_sim_axi_ram.sv",
             "past = first + ((14'(len) + 14'd1) << size);", "past = first + (14'(len) << size);",
             DDR_CHECKS, "a burst across 4 KiB is reported (the check counts one beat short)"),
    Mutation("ddr-wlast-unchecked", "rtl/sim/xaihls_sim_axi_ram.sv",
             "if (s_axi_wlast != (w_beat == awq_len[aw_rp]))", "if (1'b0)",
             DDR_CHECKS, "a misplaced WLAST is reported"),
    # ---- parameter checks at elaboration
    Mutation("params-fifo-depth", "rtl_v2/xaihls_fifo.sv",
             "if (DEPTH < 2 || (DEPTH & (DEPTH - 1)) != 0)", "if (DEPTH < 2)",
             PARAMS, "xaihls_fifo refuses a DEPTH that is not a power of two"),
    Mutation("params-rd-meta-depth", "rtl_v2/xaihls_rd_dma.sv",
             "if (META_DEPTH < 2 || (META_DEPTH & (META_DEPTH - 1)) != 0)", "if (META_DEPTH < 2)",
             PARAMS, "xaihls_rd_dma refuses a META_DEPTH that is not a power of two"),
    Mutation("params-rd-data-width", "rtl_v2/xaihls_rd_dma.sv",
             "if (DATA_WIDTH < 32 || (1 << BB) * 8 != DATA_WIDTH || DATA_WIDTH > 1024)",
             "if (DATA_WIDTH < 32 || DATA_WIDTH > 1024)",
             PARAMS, "xaihls_rd_dma refuses a DATA_WIDTH that is not a power of two"),
    Mutation("params-wr-addr-width", "rtl_v2/xaihls_wr_dma.sv",
             "if (ADDR_WIDTH < 32 || ADDR_WIDTH > 64)", "if (ADDR_WIDTH > 64)",
             PARAMS, "xaihls_wr_dma refuses ADDR_WIDTH below 32"),
    Mutation("params-regs-profile-depth", "rtl_v2/xaihls_axil_regs.sv",
             "PROFILE_DEPTH < 2 || PROFILE_DEPTH > 512 ||", "PROFILE_DEPTH < 2 ||",
             PARAMS, "xaihls_axil_regs refuses PROFILE_DEPTH above 512"),
    Mutation("params-ddr-data-width", "rtl/sim/xaihls_sim_axi_ram.sv",
             "if (DATA_WIDTH < 8 || DATA_WIDTH > 1024 || 2 ** $clog2(DATA_WIDTH) != DATA_WIDTH)",
             "if (DATA_WIDTH < 8 || DATA_WIDTH > 1024)",
             PARAMS, "xaihls_sim_axi_ram refuses a DATA_WIDTH that is not a power of two"),
]


def check_texts(mutations: list[Mutation], templates: Path) -> None:
    """Every mutation's text occurs exactly once in the current source (else the list is stale)."""
    stale = []
    for m in mutations:
        n = (templates / m.file).read_text().count(m.old)
        if n != 1 or m.old == m.new:
            stale.append(f"{m.name}: its text occurs {n} times in {m.file}" if n != 1 else f"{m.name}: no change")
    if stale:
        raise SystemExit("tb_mutations: the mutation list no longer matches the RTL:\n  " + "\n  ".join(stale))


def run_test(node: str, templates: Path, cache: Path | None) -> dict:
    """The pytest node on the copies of the RTL folders in ``templates``: passed, failed (in
    simulation), did not build, error."""
    env = dict(os.environ, **{var: str(templates / name) for name, (_, var) in FOLDERS.items()})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if cache is not None:  # mutants build apart from the user's cache
        env[CACHE_ENV] = str(cache)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"outcome": "timed out", "why": f"over {TIMEOUT_S} s", "seconds": TIMEOUT_S}
    out = p.stdout + p.stderr
    seconds = round(time.perf_counter() - t0, 1)
    if p.returncode == 0:
        return {"outcome": "passed", "why": "", "seconds": seconds}
    no_build = _first(out, r"(?m)^E\s+AssertionError: (Verilator could not build[^;]*)")
    if no_build:
        return {"outcome": "did not build", "why": no_build, "seconds": seconds}
    if p.returncode != 1:
        return {"outcome": "error", "why": f"pytest exit status {p.returncode}: " + out.strip()[-300:],
                "seconds": seconds}
    why = (_first(out, r"(?m)^E\s+AssertionError: .* cocotb tests failed \((.*)\); see")
           or _first(out, r"(?m)^E\s+AssertionError: (?:parameter checks that did not fire|"
                          r"protocol errors the DDR model did not report): (.*)")
           or _first(out, r"(?m)^E\s+(.*)"))
    return {"outcome": "failed", "why": why, "seconds": seconds}


def _first(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    return (m.group(1) if m and m.groups() else m.group(0) if m else "").strip()


def _markdown(rows: list[dict]) -> str:
    out = ["| mutation | file | property broken | test | outcome | cocotb tests that failed |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        test = r["test"].split("::")[-1].replace("test_xaihls_", "").replace(PARAMS.split("::")[-1], "parameter_checks")
        outcome = "killed" if r["outcome"] == "failed" else f"**{r['outcome']}**"
        why = f"message missing: {r['why'].strip('[]')}" if r["why"].startswith("[") else r["why"]
        out.append(f"| {r['name']} | {Path(r['file']).name} | {r['breaks']} | `{test}` | {outcome} | {why} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated mutation names (default: all)")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only.split(",")]
    if args.only and len(chosen) != len(args.only.split(",")):
        raise SystemExit(f"tb_mutations: unknown names in --only; known: {', '.join(m.name for m in MUTATIONS)}")
    check_texts(chosen, RTL_DIR.parent)
    t_start = time.perf_counter()
    bad = []
    with tempfile.TemporaryDirectory(prefix="xaihls-mutants-") as tmp:
        rtl, cache = Path(tmp) / "templates", Path(tmp) / "cache"
        for name, (folder, _) in FOLDERS.items():
            shutil.copytree(folder, rtl / name)
        baseline = {}
        for node in dict.fromkeys(m.test for m in chosen):
            baseline[node] = r = run_test(node, rtl, None)  # unmutated: the same build as the suite's (cached)
            print(f"unmutated {node.split('::')[-1]}: {r['outcome']} ({r['seconds']} s)", file=sys.stderr)
            if r["outcome"] != "passed":
                bad.append(f"unmutated {node}: {r['outcome']} {r['why']}")
        rows = []
        for m in chosen:
            path = rtl / m.file
            pristine = path.read_text()
            path.write_text(pristine.replace(m.old, m.new, 1))
            try:
                r = run_test(m.test, rtl, cache)
            finally:
                path.write_text(pristine)
            print(f"{m.name}: {r['outcome']} ({r['seconds']} s) {r['why']}", file=sys.stderr)
            rows.append({**asdict(m), **r})
            if r["outcome"] != "failed":
                bad.append(f"{m.name}: {r['outcome']} {r['why']}")
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    minutes = (time.perf_counter() - t_start) / 60
    print(f"# Module testbenches against deliberate breakages ({date.today().isoformat()}, {machine}, "
          f"{minutes:.0f} min)\n")
    print(_markdown(rows))
    killed = sum(r["outcome"] == "failed" for r in rows)
    print(f"\n{killed} of {len(rows)} mutants killed; {sum(b['outcome'] == 'passed' for b in baseline.values())} of "
          f"{len(baseline)} tests pass unmutated.")
    if not args.only:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "tb_mutations.json").write_text(json.dumps(
            {"date": date.today().isoformat(), "machine": machine, "minutes": round(minutes, 1),
             "baseline": baseline, "mutations": rows}, indent=1) + "\n")
    if bad:
        print("\nNOT SHOWN:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
