"""A self-contained HTML report: the comparison table, plots and heatmaps (PNG embedded)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from xaihls.reports.compare import RESOURCE_KEYS, Row, timing_cells

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; } td.l { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
img { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


RESOURCE_PLOTS = ("LUT", "FF", "DSP", "BRAM_18K")
OVER_BUDGET_COLOR = "#d8533b"
USED_COLOR = "#3b7dd8"


def resources_axes(rows: list[Row]):
    """The resource figure: each design point's use as a percent of its own board (linear),
    with the board's 100% drawn as a line; a design larger than its board stands over it."""
    plt = _pyplot()
    keyed = [r for r in rows if r.resources]
    shares = {key: [100.0 * r.percent()[key] if key in r.percent() else float("nan") for r in keyed]
              for key in RESOURCE_PLOTS}
    highest = max([v for values in shares.values() for v in values if v == v] + [0.0])
    fig, axes = plt.subplots(1, len(RESOURCE_PLOTS), figsize=(11, 3.6), sharey=True)
    labels = [f"{r.project}\n{r.source}" for r in keyed]
    xs = list(range(len(keyed)))
    for ax, key in zip(axes, RESOURCE_PLOTS):
        values = shares[key]
        colors = [OVER_BUDGET_COLOR if v > 100 else USED_COLOR for v in values]
        ax.bar(xs, values, color=colors)
        ax.axhline(100, color="#222", lw=1.2, ls="--", label="the board (100%)")
        for x, v in zip(xs, values):
            if v == v:
                ax.annotate(f"{v:.0f}%", (x, v), ha="center", va="bottom", fontsize=6,
                            color=OVER_BUDGET_COLOR if v > 100 else "#222")
        ax.set_title(key)
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=60, fontsize=7, ha="right")
    # the line stays in view however small the designs, and every bar stays in view however large
    axes[0].set_ylim(0, max(110.0, highest * 1.12))
    axes[0].set_ylabel("% of the board")
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def resources_figure(rows: list[Row]) -> str:
    """The resource figure as base64 PNG."""
    return _png(resources_axes(rows))


def latency_figure(rows: list[Row]) -> str:
    plt = _pyplot()
    timed = [r for r in rows if r.cycles]
    methods = sorted({m for r in timed for m in r.cycles}, key=lambda m: (m != "predict", m))
    fig, ax = plt.subplots(figsize=(10, 3.6))
    width = 0.8 / max(len(timed), 1)
    for k, r in enumerate(timed):
        lat = r.latency_ms()
        ax.bar([i + k * width for i in range(len(methods))], [lat.get(m, 0) for m in methods], width,
               label=f"{r.project} ({r.source})")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(methods))])
    ax.set_xticklabels(methods, fontsize=8)
    ax.set_ylabel("latency per image (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _png(fig)


def roofline_figure(name: str, estimate: dict) -> str:
    """Each layer's achieved MACs/cycle against its arithmetic intensity, under the roofs."""
    plt = _pyplot()
    peak = estimate["tm"] * estimate["tn"]
    bpc = estimate["bytes_per_cycle"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    xs = []
    for layer in estimate["layers"]:
        if not layer["macs"]:
            continue
        nbytes = max(layer["memory_cycles"] * bpc, 1)
        x, y = layer["macs"] / nbytes, layer["macs"] / layer["cycles"]
        xs.append(x)
        ax.scatter([x], [y], s=18, color="#d8533b" if layer["direction"] == "backward" else "#3b7dd8")
        ax.annotate(f"{layer['layer']}{'ᵇ' if layer['direction'] == 'backward' else ''}", (x, y), fontsize=6)
    if xs:
        lo, hi = min(xs) / 2, max(xs) * 2
        grid = [lo * (hi / lo) ** (k / 50) for k in range(51)]
        ax.plot(grid, [min(peak, g * bpc) for g in grid], color="#222", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs per DDR byte")
    ax.set_ylabel("MACs per cycle")
    ax.set_title(f"{name}: roofline (peak {peak}, {bpc:g} B/cycle)", fontsize=9)
    return _png(fig)


def _table(rows: list[Row]) -> str:
    methods = sorted({m for r in rows for m in r.cycles}, key=lambda m: (m != "predict", m))
    timed = any(r.timing for r in rows)
    head = ["project", "board", "part", "MHz", "tiling", "source", *RESOURCE_KEYS,
            *[f"{m} (ms)" for m in methods], "saliency / inference",
            *(["WNS (ns)", "Fmax (MHz)"] if timed else [])]
    out = ["<div class=scroll><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        pct = r.percent()
        lat = r.latency_ms()
        cells = [f"<td class=l>{html.escape(str(v))}</td>" for v in (r.project, r.board, r.part)]
        cells += [f"<td>{r.clock_mhz:g}</td>", f"<td class=l>{r.tiling}</td>", f"<td class=l>{r.source}" + (f"<br><small>{html.escape(r.conditions)}</small>" if r.conditions else "") + "</td>"]
        for k in RESOURCE_KEYS:
            v = r.resources.get(k)
            cells.append("<td></td>" if v is None else f"<td>{v:,}" + (f" ({pct[k]:.1%})" if k in pct else "") + "</td>")
        cells += [f"<td>{lat[m]:.3f}</td>" if m in lat else "<td></td>" for m in methods]
        cells.append(f"<td>{r.overhead():.2f}</td>" if r.overhead() else "<td></td>")
        if timed:
            cells += [f"<td>{html.escape(cell)}</td>" for cell in timing_cells(r)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def write_html(rows: list[Row], folders: list[Path], out: str | Path) -> Path:
    """The report for ``folders`` (projects) as one HTML file with every picture inside."""
    parts = ["<!doctype html><html><head><meta charset=utf-8><title>xaihls report</title>",
             f"<style>{_STYLE}</style></head><body>", "<h1>xaihls design points</h1>",
             "<p>Resources are shown as a share of each design point's own board. Sources: "
             "<b>estimate</b> is xaihls's cost model; <b>yosys</b> is <code>synth_xilinx</code> on the RTL; "
             "<b>verilator</b> is cycles measured in RTL simulation; <b>vitis-*</b> and <b>vivado</b> are "
             "reports from a Vitis/Vivado run, where present.</p>", _table(rows), "<h2>Resources</h2>",
             f'<figure><img alt="resources per design point" src="data:image/png;base64,{resources_figure(rows)}">'
             "<figcaption>share of each design point's own board, linear; the dashed line is the whole "
             "board (100%), a design over it (red) does not fit</figcaption></figure>",
             "<h2>Latency per method</h2>",
             f'<figure><img alt="latency per method" src="data:image/png;base64,{latency_figure(rows)}">'
             "<figcaption>one image, at each board's clock</figcaption></figure>", "<h2>Roofline</h2>"]
    for folder in folders:
        estimate = json.loads((Path(folder) / "estimate.json").read_text())
        parts.append(f'<figure><img alt="roofline {html.escape(Path(folder).name)}" '
                     f'src="data:image/png;base64,{roofline_figure(Path(folder).name, estimate)}">'
                     "<figcaption>forward (blue) and backward (red) layers</figcaption></figure>")
    pictures = [(Path(folder).name, png) for folder in folders  # golden first, then the hardware
                for png in sorted((Path(folder) / "reports").glob("heatmaps_*.png"),
                                  key=lambda p: (p.stem != "heatmaps_golden", p.stem))]
    if pictures:
        parts.append("<h2>Heatmaps</h2>")
        for name, png in pictures:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            backend = png.stem.removeprefix("heatmaps_")
            parts.append(f'<figure><img alt="heatmaps {html.escape(name)} {backend}" '
                         f'src="data:image/png;base64,{data}" style="width:32em">'
                         f"<figcaption>{html.escape(name)}: {backend}</figcaption></figure>")
    parts.append("</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return out
