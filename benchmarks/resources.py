"""The Engine v2 resource model: yosys points, the fit, and the points held out of it.

Run: ``python -m benchmarks.resources [--run [SHAPE ...]] [--memories] [--fit]``.

- ``--run``: yosys ``synth_xilinx`` (xc7, hierarchy kept) of the RTL built for the reference
  CIFAR net at each SHAPE (default: every fit and held-out shape), skipping shapes already
  recorded. SHAPE is ``TMxTN``, with ``@AXI_BITS`` for another AXI data width,
  ``:IN_DEPTH/OUT_DEPTH`` for other buffer depths, ``+oOFF_BITS`` for a wider DDR offset,
  ``+kMASK_BITS/INDEX_ENTRIES`` for deeper kept state, a trailing ``i`` for the inference-only
  build. One line a run in results/rtl_v2_yosys.jsonl, the stat file beside it
  (rtl_v2_yosys_xc7_<tag>_stat.txt), with the digest of the RTL synthesized (``rtl_digest``). Run
  it under the shared heavy-tool lock.
- ``--memories``: the memory-mapping check: yosys maps each memory shape of ``memory_shapes``
  alone (``xaihls_sdp_ram``, ``xaihls_fifo``) and its counts are set beside
  ``xaihls.plan.resources.memory_cells``; results/rtl_v2_memories_xc7.json and its stat text.
- ``--fit``: LUT and FF coefficients by least squares on FIT_SHAPES, BRAM_18K and LUTRAM
  counted, DSP exact, HELD_OUT checked; writes xaihls/plan/resource_model.json, prints Markdown.
  Every point must be of one RTL digest, which the model keeps: ``resources.load`` warns when the
  sources changed since (the model's LUT and FF then describe other RTL).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from xaihls.plan import resources as rm

RESULTS = Path(__file__).parent / "results"
POINTS = RESULTS / "rtl_v2_yosys.jsonl"
MEMORIES = RESULTS / "rtl_v2_memories_xc7.json"
FAMILY = "xc7"
KEPT = "+k2000000/200000"  # ReLU bits and pool indices near torchvision ResNet-18's at 224 x 224
FIT_SHAPES = ("4x4", "8x4", "16x4", "8x8", "16x8", "16x16", "32x8", "32x16", "16x8i", "8x8@128", "32x32@512",
              "16x8+o28", "16x8" + KEPT, "16x16@128+o28" + KEPT, "4x4+w", "16x8+w", "16x16@128+w")
HELD_OUT = ("32x4", "16x16@128", "16x8:1024/256", "16x8+o28" + KEPT, "16x16@128+o28",
            "16x16@128:1024/512+o27+k2308880/200704",  # ResNet-18 at 224 x 224's buffers, offsets and kept state
            "32x8+w")
"""Points never used by the fit: the model's error there is the check that it predicts."""


@dataclass(frozen=True)
class Shape:
    """A yosys point's engine: the reference net's RTL at Tm x Tn on an AXI bus of ``axi`` bits,
    with these parameters set apart from the net's (None: the net's own)."""

    tm: int
    tn: int
    axi: int = 64
    depths: tuple[int, int] | None = None  # IN_DEPTH, OUT_DEPTH
    off_bits: int | None = None  # OFF_BITS: the DDR offsets' width
    kept: tuple[int, int] | None = None  # MASK_BITS, INDEX_ENTRIES: the kept state's depth
    backward: bool = True
    w_diag: bool = False  # W_DIAG: the weights of diagonal jobs one a lane (the net's own Program has them)


def parse_shape(shape: str) -> Shape:
    """'16x8' -> Shape(16, 8): the net's buffers and DDR offsets, full build; '8x8@128': AXI 128;
    '16x8:1024/256': those buffer depths; '16x8+o28': OFF_BITS 28; '16x8+k2000000/200000': that
    many ReLU bits and pool indices kept; '+w': W_DIAG 1 (else 0, as the points before it were built);
    'i' at the end: inference-only."""
    m = re.fullmatch(r"(\d+)x(\d+)(?:@(\d+))?(?::(\d+)/(\d+))?(?:\+o(\d+))?(?:\+k(\d+)/(\d+))?(\+w)?(i?)", shape)
    if not m:
        raise SystemExit(f"shape '{shape}': expected TMxTN[@AXI_BITS][:IN_DEPTH/OUT_DEPTH][+oOFF_BITS]"
                         "[+kMASK_BITS/INDEX_ENTRIES][+w][i]")
    g = [int(v) if v else None for v in m.groups()[:8]]
    return Shape(g[0], g[1], g[2] or 64, (g[3], g[4]) if g[3] else None, g[5], (g[6], g[7]) if g[6] else None,
                 not m.group(10), bool(m.group(9)))


def tag_of(shape: str) -> str:
    s = parse_shape(shape)
    return (f"{s.tm}x{s.tn}{'' if s.axi == 64 else f'_axi{s.axi}'}"
            f"{f'_in{s.depths[0]}_out{s.depths[1]}' if s.depths else ''}{f'_off{s.off_bits}' if s.off_bits else ''}"
            f"{f'_mask{s.kept[0]}_ix{s.kept[1]}' if s.kept else ''}{'_wdiag' if s.w_diag else ''}"
            f"_{'full' if s.backward else 'inference_only'}")


def stat_path(tag: str) -> Path:
    return RESULTS / f"rtl_v2_yosys_{FAMILY}_{tag}_stat.txt"


def recorded() -> dict[str, dict]:
    return {r["tag"]: r for r in map(json.loads, POINTS.read_text().splitlines())} if POINTS.exists() else {}


def run_point(shape: str) -> dict:
    """yosys on the RTL built for the CIFAR net at ``shape``; appends its record and keeps its stat file."""
    from benchmarks.rtl_v2 import cifar
    from xaihls.backends.rtl.v2.params import rtl_params
    from xaihls.backends.rtl.v2.synth import synthesize
    from xaihls.plan.lowering import Shape as ArrayShape

    s = parse_shape(shape)
    tag = tag_of(shape)
    _, prog, _ = cifar(ArrayShape(s.tm, s.tn, s.axi // 16))
    params = rtl_params(prog)
    params = params if s.backward else params.inference_only()
    # parameters other than the net's: the RTL's size, not a Program that would run on it
    if s.depths:
        params = replace(params, IN_DEPTH=s.depths[0], OUT_DEPTH=s.depths[1])
    if s.kept:
        params = replace(params, MASK_BITS=s.kept[0], INDEX_ENTRIES=s.kept[1])
        # OFF_BITS as rtl_params would set it for kept state this deep (xaihls_top checks the bound)
        params = replace(params, OFF_BITS=max(params.OFF_BITS, math.ceil(math.log2(2 * s.kept[1]))))
    if s.off_bits:
        params = replace(params, OFF_BITS=s.off_bits)
    params = replace(params, W_DIAG=int(s.w_diag))
    work = Path(tempfile.mkdtemp(prefix=f"xaihls_yosys_v2_{tag}_"))
    r = synthesize(params, FAMILY, work, timeout=3000)
    shutil.copy(work / "stat.txt", stat_path(tag))
    rec = {"tag": tag, "rtl": rm.rtl_digest(), "params": params.as_dict(), "lut": r.lut, "ff": r.ff, "dsp": r.dsp,
           "bram_18k": r.bram_18k, "lutram": r.lutram, "seconds": round(r.seconds, 1),
           "peak_rss_kib": r.cells.get("peak_rss_kib", 0),
           "date": str(date.today()), "family": FAMILY, "stat": stat_path(tag).name}
    with POINTS.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return rec


def memory_shapes() -> list[tuple[str, int, int, int]]:
    """(module, width, depth, segments) to check the mapping rule on: the buffers' segment padding
    at each AXI width, the pool-index segments, the LUT-RAM/block-RAM boundary, the lanes' 48-bit
    memories at every depth the planner uses, the ReLU-bit memory and the FIFOs."""
    out = []
    for be in (4, 8, 32):
        for g in (1, 2, 4):
            if 16 * be * g <= 1024:
                out += [("xaihls_sdp_ram", 16 * be * g, d, g) for d in (128, 512, 4096)]
        out += [("xaihls_sdp_ram", be * ib * g, 512, g) for ib in (1, 2, 3) for g in (1, 2)]
        out += [("xaihls_sdp_ram", be, d, 1) for d in (16, 256, 16384)]
        out += [("xaihls_fifo", 18 * be, 16, 1)]
    out += [("xaihls_sdp_ram", w, d, 1) for w in (4, 16, 48, 64, 128, 512) for d in (2, 16, 32, 64, 128, 256)]
    out += [("xaihls_sdp_ram", 48, d, 1) for d in (512, 1024, 2048, 4096, 8192, 16384)]
    out += [("xaihls_fifo", w, 16, 1) for w in (8, 38, 41)]
    # near the LUT-RAM / block-RAM cost boundary, and segmented memories shallow enough for LUT RAM
    out += [("xaihls_sdp_ram", w, d, 1) for w, d in ((4, 1024), (12, 128), (24, 128), (32, 128), (36, 64), (72, 64),
                                                     (8, 384), (20, 128), (6, 256), (1024, 64))]
    out += [("xaihls_sdp_ram", w, d, g) for w, d, g in ((128, 32, 2), (256, 64, 4), (24, 32, 2), (12, 64, 2),
                                                        (64, 32, 4), (512, 32, 4), (16, 128, 2), (1024, 32, 2))]
    # the kept state at its exact depth (xaihls.plan.engine.kept: whole words, no power of two): ReLU bits at
    # each beat, pool indices in their segments, and torchvision's ResNet-18 at 224 x 224 at 16 x 8 on a 64-bit
    # bus (2,308,296 ReLU bits in 4-bit words; 200,704 pool indices of 4 bits and an alive bit, 8 a word)
    out += [("xaihls_sdp_ram", w, d, 1) for w, d in ((4, 3_104), (4, 100_001), (8, 12_003), (32, 5_001),
                                                      (4, 577_074))]
    out += [("xaihls_sdp_ram", w, d, g) for w, d, g in ((24, 1_201, 2), (48, 3_001, 4), (40, 25_088, 2))]
    # block RAM several cells deep, to fit the read multiplexer and write decoder around them (``rm.cascade_luts``)
    out += [("xaihls_sdp_ram", w, d, g) for w, d, g in ((4, 20_000, 1), (4, 40_000, 1), (4, 250_000, 1),
                                                        (8, 30_000, 1), (16, 9_000, 1), (48, 7_168, 1),
                                                        (36, 3_000, 1), (64, 2_500, 1), (8, 60_000, 2),
                                                        (40, 6_000, 2), (80, 3_000, 2), (48, 1_500, 1))]
    # the accumulators of lanes 0..E-1 with the integrated-gradients sums above them, at their exact depth
    # (OUT_DEPTH + the blocked input's words): the CIFAR net's at 16 x 8 and 16 x 16, a 3 x 96 x 96 image's
    out += [("xaihls_sdp_ram", 48, d, 1) for d in (2_176, 2_304, 3_072, 5_120, 9_360, 10_240)]
    return sorted(set(out))


def check_memories() -> list[dict]:
    """yosys synth_xilinx of each memory shape alone (those not yet in MEMORIES); its counts beside the rule's."""
    from xaihls.backends.rtl import synth as common
    from xaihls.backends.rtl.synth import _cells
    from xaihls.backends.rtl.v2.params import RTL_DIR

    known = json.loads(MEMORIES.read_text()) if MEMORIES.exists() else {"seconds": 0, "shapes": []}
    done = {(r["module"], r["width"], r["depth"], r["segments"]): r for r in known["shapes"]}
    shapes = [s for s in memory_shapes() if s not in done]
    work = Path(tempfile.mkdtemp(prefix="xaihls_yosys_mem_"))
    lines = []
    for i, (mod, w, d, g) in enumerate(shapes):
        seg = f" -set SEGMENTS {g}" if mod == "xaihls_sdp_ram" else ""
        lines += ["design -reset", f"read_verilog -sv {RTL_DIR / (mod + '.sv')}",
                  f"chparam -set WIDTH {w} -set DEPTH {d}{seg} {mod}", f"synth_xilinx -family {FAMILY} -top {mod}",
                  f"tee -q -o stat_{i}.txt stat"]
    t0 = time.time()
    if shapes:
        (work / "mem.ys").write_text("\n".join(lines) + "\n")
        with open(work / "yosys.log", "w") as log:
            subprocess.run([sys.executable, "-c", common._PYOSYS_RUNNER, "mem.ys"], cwd=work, stdout=log,
                           stderr=subprocess.STDOUT, timeout=3000, check=True)
    text_path = RESULTS / "rtl_v2_memories_xc7_stat.txt"
    text = [text_path.read_text()] if text_path.exists() and done else []
    for i, (mod, w, d, g) in enumerate(shapes):
        stat = (work / f"stat_{i}.txt").read_text()
        text.append(f"##### {mod} WIDTH={w} DEPTH={d} SEGMENTS={g}\n{stat}")
        cells = {k: v for k, v in _cells(stat).items() if k.startswith(("RAM", "DSP"))}
        done[mod, w, d, g] = {"module": mod, "width": w, "depth": d, "segments": g, "cells": cells,
                              "yosys": [cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0),
                                        rm.LUTRAM_LUTS * (cells.get("RAM32M", 0) + cells.get("RAM64M", 0))]}
    logic = {}  # LUTs outside the memory cells, by shape, from every stat kept (old shapes' included)
    for block in "".join(text).split("##### ")[1:]:
        head = re.match(r"(\S+) WIDTH=(\d+) DEPTH=(\d+) SEGMENTS=(\d+)", block)
        logic[head[1], int(head[2]), int(head[3]), int(head[4])] = sum(
            v for k, v in _cells(block).items() if re.fullmatch(r"LUT\d", k))
    rows = [done[k] for k in sorted(done)]
    for r in rows:
        m = rm.Memory(r["module"], r["width"], r["depth"], 1, r["segments"], r["module"] == "xaihls_fifo")
        r["model"] = list(rm.memory_cells(m))
        r["logic"] = logic[r["module"], r["width"], r["depth"], r["segments"]]
    text_path.write_text("".join(text))
    MEMORIES.write_text(json.dumps({"date": str(date.today()), "family": FAMILY, "tool": yosys_version(),
                                    "seconds": known["seconds"] + round(time.time() - t0), "shapes": rows},
                                   indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return rows


def load_points(tags) -> list[dict]:
    """The recorded yosys points named, their counts read again from their kept stat files."""
    from xaihls.reports.readers import read_yosys_stat

    known = recorded()
    out = []
    for tag in tags:
        if tag not in known:
            raise SystemExit(f"no yosys point '{tag}' in {POINTS}; run `python -m benchmarks.resources --run`")
        r = known[tag]
        counts = read_yosys_stat(stat_path(tag)).resources
        if (counts["LUT"], counts["FF"], counts["DSP"], counts["BRAM_18K"]) != (r["lut"], r["ff"], r["dsp"], r["bram_18k"]):
            raise SystemExit(f"{stat_path(tag).name} does not hold the counts recorded for {tag}")
        out.append({"tag": tag, "rtl": r.get("rtl", ""), "params": r["params"],
                    **{k: counts[k] for k in rm.RESULTS_OF},
                    "LUTRAM": r["lutram"], "seconds": r["seconds"], "peak_rss_mib": round(r["peak_rss_kib"] / 1024),
                    "stat": stat_path(tag).name})
    return out


def yosys_version() -> str:
    from importlib.metadata import version

    return f"yosys {version('pyosys')} (pyosys)"


def markdown(model: rm.ResourceModel) -> str:
    pct = lambda v: f"{100 * v:+.1f}%"  # noqa: E731
    rows = ["| point | Tm x Tn | AXI | build | IN / OUT / W depth | ReLU bits / pool indices | OFF_BITS | LUT | FF | "
            "DSP | BRAM_18K | LUTRAM LUTs | yosys s | peak MiB |", "|---" * 14 + "|"]
    for p in model.points + model.held_out:
        q = p["params"]
        rows.append(f"| {p['tag']}{' (held out)' if p in model.held_out else ''} | {q['TM']} x {q['TN']} | "
                    f"{q['AXI_DATA_WIDTH']} | {'full' if q['BACKWARD'] else 'inference'} | "
                    f"{q['IN_DEPTH']} / {q['OUT_DEPTH']} / {q['W_DEPTH']} | "
                    f"{q['MASK_BITS']:,} / {q['INDEX_ENTRIES']:,} | {q['OFF_BITS']} | {p['LUT']:,} | {p['FF']:,} | "
                    f"{p['DSP']} | {p['BRAM_18K']} | {p['LUTRAM']} | {p['seconds']:.0f} | {p['peak_rss_mib']:,} |")
    coef = ["| | " + " | ".join(rm.FEATURES) + " |", "|---" * (len(rm.FEATURES) + 1) + "|",
            "| LUT (less LUTRAM) | " + " | ".join(f"{v:,.2f}" for v in model.lut) + " |",
            "| FF | " + " | ".join(f"{v:,.2f}" for v in model.ff) + " |"]
    res = ["| point | LUT yosys / model | err | FF yosys / model | err | BRAM_18K yosys / model | err | DSP yosys / model |",
           "|---|---|---|---|---|---|---|---|"]
    for r in model.residuals():
        res.append(f"| {r['tag']}{' (held out)' if r['held_out'] else ''} | "
                   + " | ".join(f"{r[k]['yosys']:,} / {r[k]['model']:,} | {pct(r[k]['error'])}" for k in ("LUT", "FF", "BRAM_18K"))
                   + f" | {r['DSP']['yosys']} / {r['DSP']['model']} |")
    d = model.domain
    return "\n".join(["Yosys points:", "", *rows, "",
                      f"Coefficients (LUT = features . c + counted LUTRAM + cascade LUTs; DSP = Tm*Tn + "
                      f"{model.dsp_extra}; BRAM_18K and LUTRAM counted per memory):", "", *coef, "",
                      "Residuals (model - yosys) / yosys:", "", *res, "", *cascade_markdown(model.cascade), "",
                      f"Range the model answers for: Tm <= {d.tm_max}, Tn <= {d.tn_max}, Tm*Tn <= {d.macs_max}, AXI "
                      f"{16 * d.beat_min}..{16 * d.beat_max} bits."])


def cascade_markdown(coef: dict[str, tuple[float, float]]) -> list[str]:
    """The cascade LUTs' coefficients and, shape by shape, yosys's LUTs beside the model's."""
    rows = [f"Cascade LUTs (a memory more than one cell deep: a x width x (cells deep - 1) + b x cells deep x "
            f"segments): block RAM a = {coef['block'][0]:.3f}, b = {coef['block'][1]:.3f}; LUT RAM "
            f"a = {coef['lut'][0]:.3f}, b = {coef['lut'][1]:.3f}.", "",
            "| memory (width x depth / segments) | mapped to | cells deep | LUTs yosys / model |", "|---|---|---|---|"]
    for s in json.loads(MEMORIES.read_text())["shapes"]:
        m = rm.Memory(s["module"], s["width"], s["depth"], 1, s["segments"])
        block, k = rm.cells_deep(m)
        if s["module"] == "xaihls_sdp_ram" and k > 1:
            rows.append(f"| {s['width']} x {s['depth']:,} / {s['segments']} | {'/'.join(s['cells'])} | {k} | "
                        f"{s['logic']} / {rm.cascade_luts(m, coef):.0f} |")
    return rows


def run_fit() -> rm.ResourceModel:
    fit_points = load_points([tag_of(s) for s in FIT_SHAPES])
    held = load_points([tag_of(s) for s in HELD_OUT])
    source = (f"{yosys_version()} synth_xilinx -family {FAMILY} (hierarchy kept) of hls_templates/rtl_v2 built "
              f"for the CIFAR reference net; points in benchmarks/results/rtl_v2_yosys.jsonl; fitted {date.today()} "
              f"on {platform.machine()} {platform.system()} by `python -m benchmarks.resources --fit`")
    rtl = {p["rtl"] for p in fit_points + held}
    if len(rtl) != 1 or "" in rtl:
        today = rm.rtl_digest()
        stale = [p["tag"] for p in fit_points + held if p["rtl"] != today]
        raise SystemExit(f"the yosys points are of different RTL sources ({', '.join(stale)} not of today's "
                         f"{today}); empty the records and run `python -m benchmarks.resources --run`")
    cascade = rm.fit_cascade(json.loads(MEMORIES.read_text())["shapes"])
    model = rm.fit(fit_points, held, source, rtl.pop(), cascade)
    rm.save(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", nargs="*", default=None, metavar="SHAPE",
                    help="yosys points to add (default with no SHAPE: every fit and held-out shape not yet recorded)")
    ap.add_argument("--memories", action="store_true", help="check the memory-mapping rule against yosys")
    ap.add_argument("--fit", action="store_true", help="fit, write xaihls/plan/resource_model.json, print Markdown")
    a = ap.parse_args()
    if a.memories:
        rows = check_memories()
        bad = [r for r in rows if r["yosys"] != r["model"]]
        print(f"{len(rows)} memory shapes, {len(bad)} where the rule differs from yosys")
        for r in bad:
            print(f"  {r['module']} {r['width']} x {r['depth']} / {r['segments']}: yosys {r['yosys']} "
                  f"(BRAM_18K, LUTRAM LUTs) {r['cells']}, rule {r['model']}")
    if a.run is not None:
        for shape in a.run or FIT_SHAPES + HELD_OUT:
            if tag_of(shape) in recorded():
                print(f"{shape}: recorded ({stat_path(tag_of(shape)).name})")
                continue
            t0 = time.time()
            rec = run_point(shape)
            print(f"{shape}: {rec['lut']} LUT, {rec['ff']} FF, {rec['dsp']} DSP, {rec['bram_18k']} BRAM_18K "
                  f"({time.time() - t0:.0f} s, peak {rec['peak_rss_kib'] / 1024:.0f} MiB)", flush=True)

    if a.fit:
        model = run_fit()
        print(markdown(model))
        worst = max(abs(r[k]["error"]) for r in model.residuals() for k in ("LUT", "FF", "BRAM_18K"))
        print(f"\nlargest error on LUT, FF, BRAM_18K: {100 * worst:.1f}% (tolerance {100 * rm.TOLERANCE:.0f}%); "
              f"written {rm.MODEL_FILE}")


if __name__ == "__main__":
    main()
