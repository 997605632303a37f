"""The resource model of Engine v2, fitted on yosys runs of the RTL (never guessed).

For an engine (as the RTL builds it: ``EngineV2.as_built``):

- BRAM_18K and LUTRAM are counted, not fitted: ``memories`` lists every memory the RTL
  (hls_templates/rtl_v2) instantiates, with its width, depth, write-enable segments and
  copies, and ``memory_cells`` maps each one as yosys ``synth_xilinx`` does (memory_libmap's
  cost function over the 7-series RAMs). The rule is checked shape by shape against yosys
  (``python -m benchmarks.resources --memories``) and in total at every yosys point.
- DSP = Tm * Tn + ``dsp_extra`` (the controller's one setup multiplier), exact at every point.
- The LUTs yosys adds beside a memory more than one cell deep (a read multiplexer over the cells,
  a write decoder) grow with its depth: ``cascade_luts``, two coefficients for block RAM and two
  for LUT RAM fitted on the memory shapes of ``--memories``.
- LUT (less the counted LUTRAM and cascade LUTs) and FF (less the counted read registers of the
  memories in LUT RAM, ``read_registers``) are linear in ``FEATURES``, fitted by least squares on
  yosys points that vary Tm, Tn and the AXI width apart, and the address widths: the DDR offsets'
  (``EngineV2.off_bits``, the RTL's OFF_BITS: some sixty registers and adders of the controller,
  loader and write-back) and the on-chip memories' word addresses (``address_bits``); and whether the
  engine runs jobs whose weights are stored one a lane (``EngineV2.w_diag``, the RTL's W_DIAG: a zeroing
  AND on each of the shadow chain's TN x 16 input bits and a column register, so a constant and a term in TN).

The coefficients, the points they come from, the points held out of the fit and every residual
are stored in ``resource_model.json`` (``python -m benchmarks.resources --fit``); the planner uses
the model only through ``estimate``; tests/test_resources.py holds it to 15% of every stored point.
The model answers only inside its points' range (``refusal``): Tm, Tn and Tm * Tn up to twice the
largest measured, the AXI width between the narrowest and the widest measured; it refuses the
rest rather than extrapolate further.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xaihls.bundled import TEMPLATES_DIR
from xaihls.errors import XaiHlsError, XaiHlsWarning
from xaihls.plan.engine import ACC_BITS, DATA_BITS, EngineV2, ResourceEstimate

MODEL_FILE = Path(__file__).with_name("resource_model.json")
FEATURES = ("1", "tm", "tn", "tm*tn", "beat_elems", "backward", "off_bits", "address_bits", "w_diag", "w_diag*tn")
RESULTS_OF = ("LUT", "FF", "DSP", "BRAM_18K")
TOLERANCE = 0.15
"""The largest relative error on LUT, FF and BRAM_18K the model may have at any stored point."""
REACH = 2
"""How far past its largest measured Tm, Tn and Tm * Tn the model answers (a factor): the terms
that grow with the array (16 FF a MAC for the weight shadow chain, the write-back's lane
multiplexers) are structural, so one doubling is a short step; further is a guess."""

# xaihls_top's fixed memories and FIFOs (their sizes are localparams of the RTL, not top parameters)
PROFILE_WORDS, PROFILE_BITS = 512, 32  # the cycle profile (u_profile)
FIFO_DEPTH = 16  # the read mover's burst FIFO, the write mover's length FIFO, the write-back's output FIFO
LEN_BITS = 20  # beats of one mover command (xaihls_top LEN_BITS)

# The RAMs yosys's memory_libmap may map a memory to on 7-series (techlibs/xilinx brams_xc4v.txt
# "$__XILINX_BLOCKRAM_SDP_" and lutrams_xc5v.txt "$__XILINX_LUTRAM_SDP_"): (cell, RAMB18 halves a
# cell takes (0: LUT RAM), cost, widthscale, write-enable byte, ((address bits, data width), ...)).
RAM_KINDS = (
    ("RAM32M", 0, 8, 7, 0, ((5, 6),)),
    ("RAM64M", 0, 8, 7, 0, ((6, 3),)),
    ("RAMB18E1", 1, 129, 0, 9, ((14, 1), (13, 2), (12, 4), (11, 9), (10, 18), (9, 36))),
    ("RAMB36E1", 2, 257, 0, 9, ((15, 1), (14, 2), (13, 4), (12, 9), (11, 18), (10, 36), (9, 72))),
)
MUX_COST = DEMUX_COST = 0.5  # memory_libmap's FACTOR_MUX / FACTOR_DEMUX: a bit of read mux or write demux
LUTRAM_LUTS = 4  # a RAM32M (32 x 6) or RAM64M (64 x 3) takes one slice's four LUTs


@dataclass(frozen=True)
class Memory:
    """One memory of the RTL: ``copies`` identical ones of ``width`` x ``depth`` bits, written in
    ``segments`` equal parts with their own enables; ``async_read`` for the FIFOs (LUT RAM only)."""

    name: str
    width: int
    depth: int
    copies: int = 1
    segments: int = 1
    async_read: bool = False


IG_LANES = "accumulators, lanes 0..E-1"
"""The memory the integrated-gradients sums sit in, above the accumulators (by its name in ``memories``)."""


def memories(e: EngineV2) -> tuple[Memory, ...]:
    """Every memory xaihls_top instantiates for ``e`` (give it ``e.as_built()``: the sizes the RTL has)."""
    tm, tn, be = e.tm, e.tn, e.beat_elems
    g = tn // be  # AXI beats a pixel: the buffers' write-enable segments
    ig_words = e.input_elems // be if e.backward else 0
    iaw = max(1, math.ceil(math.log2(e.in_depth)))
    out = [
        Memory("input buffer (two sets)", DATA_BITS * tn, 2 * e.in_depth, 1, g),
        Memory("weight buffer (two sets)", DATA_BITS * tn, 2 * e.w_depth, 1, g),
        Memory("bias (two sets)", DATA_BITS * be, 2 * tm // be),
        Memory("cycle profile", PROFILE_BITS, PROFILE_WORDS),
        # lanes 0..E-1 keep the integrated-gradients sums above the row tile's accumulators
        Memory(IG_LANES, ACC_BITS, e.out_depth + ig_words, be),
        Memory("accumulators, other lanes", ACC_BITS, e.out_depth, tm - be),
        Memory("output sums (two sets a lane)", ACC_BITS, 2 * e.out_depth, tm),
    ]
    if e.backward:
        out += [Memory("ReLU bits", be, e.mask_bits // be),
                Memory("pool indices and alive bits", tn * (e.index_bits + 1), e.index_entries // tn, 1, g)]
    out += [Memory("read mover burst FIFO", (5 + iaw) + LEN_BITS + 2, FIFO_DEPTH, async_read=True),
            Memory("write mover length FIFO", 8, FIFO_DEPTH, async_read=True),
            Memory("write-back output FIFO", (DATA_BITS + 2) * be, FIFO_DEPTH, async_read=True)]
    return tuple(m for m in out if m.copies > 0)


def _configs(width: int, depth: int, segments: int, async_read: bool):
    """(cost, RAMB18 halves a cell, cells) of every way memory_libmap can map the memory, by its
    cost function: a cell's fixed cost, the width-scaled part, and half a unit a bit of read
    multiplexer and of write demultiplexer when the memory is deeper than one cell. A write
    segment starts on a write-enable byte (9 bits in block RAM, a cell's whole width in LUT RAM)."""
    seg = width // segments
    for _, halves, cost, widthscale, byte, options in RAM_KINDS:
        if async_read and halves:
            continue  # block RAM reads only on a clock edge
        for abits, unit in options:
            lane = unit if byte == 0 or byte > unit else byte
            bits = segments * math.ceil(seg / lane) * lane
            mult = math.ceil(depth / (1 << abits))
            n = math.ceil(mult * bits / unit)
            c = (cost - widthscale) * n + widthscale * mult * width / unit + MUX_COST * (mult - 1) * width
            c += DEMUX_COST * mult * segments if mult > 1 else 0
            yield c, halves, n, mult


def _mapped(m: Memory) -> tuple[float, int, int, int]:
    """yosys synth_xilinx's mapping of one copy of ``m``: the cheapest of ``_configs`` by memory_libmap's cost."""
    return min(_configs(m.width, m.depth, m.segments, m.async_read), key=lambda c: c[0])


def memory_cells(m: Memory) -> tuple[int, int]:
    """(BRAM_18K, LUTs used as LUT RAM) of all copies of ``m``: yosys synth_xilinx's choice, the
    cheapest by memory_libmap's cost (a RAMB36 counts two BRAM_18K)."""
    _, halves, n, _ = _mapped(m)
    return (m.copies * n * halves, 0) if halves else (0, m.copies * n * LUTRAM_LUTS)


def cells_deep(m: Memory) -> tuple[bool, int]:
    """(block RAM?, cells one above the other) of yosys's mapping of ``m``: more than one cell deep, a
    read takes one cell's word through a multiplexer and a write enables one cell by a decoder."""
    _, halves, _, mult = _mapped(m)
    return bool(halves), mult


def cascade_features(m: Memory) -> tuple[int, int]:
    """(read-multiplexer inputs, write enables) of one copy of ``m``, (0, 0) one cell deep. LUT RAM
    reads combinationally, and a LUT6 is a 4:1 multiplexer: a tree of ceil((k - 1) / 3) LUTs a bit
    over k cells. Block RAM's multiplexer follows the registered read address, and yosys maps it
    into about 0.6 LUT a bit a cell past the first (fitted): its input is width x (k - 1). Both
    enable one cell a write segment by a decoder: k x segments."""
    block, k = cells_deep(m)
    if k == 1:
        return 0, 0
    return m.width * (k - 1 if block else math.ceil((k - 1) / 3)), k * m.segments


def fit_cascade(shapes: list[dict]) -> dict[str, tuple[float, float]]:
    """LUTs a read-multiplexer input and a write enable (``cascade_features``), block RAM and LUT
    RAM apart, by least squares on the memory shapes yosys mapped alone (rows of
    results/rtl_v2_memories_xc7.json: "module", "width", "depth", "segments" and "logic", its LUTs
    outside the memory cells) that are more than one cell deep. The FIFOs are left out: their LUTs
    are their pointers'."""
    rows: dict[str, list] = {"block": [], "lut": []}
    for s in shapes:
        m = Memory(s["module"], s["width"], s["depth"], 1, s["segments"])
        block, k = cells_deep(m)
        if s["module"] == "xaihls_sdp_ram" and k > 1:
            rows["block" if block else "lut"].append((cascade_features(m), s["logic"]))
    out = {}
    for kind, kept in rows.items():
        if len(kept) < 3:
            raise XaiHlsError(f"{len(kept)} memory shapes in {kind} RAM more than one cell deep; the cascade "
                              "LUTs need 3 or more (python -m benchmarks.resources --memories)")
        c, *_ = np.linalg.lstsq(np.array([f for f, _ in kept], float), np.array([y for _, y in kept], float),
                                rcond=None)
        out[kind] = (round(float(c[0]), 6), round(float(c[1]), 6))
    return out


def cascade_luts(m: Memory, coef: dict[str, tuple[float, float]]) -> float:
    """LUTs of the read multiplexers and write decoders of all copies of ``m`` (``fit_cascade``'s
    coefficients): yosys builds them beside a memory more than one cell deep."""
    block, _ = cells_deep(m)
    a, b = coef["block" if block else "lut"]
    x, y = cascade_features(m)
    return m.copies * (a * x + b * y)


def engine_cascade_luts(e: EngineV2, coef: dict[str, tuple[float, float]]) -> float:
    """``cascade_luts`` over every memory of ``e`` (give it ``e.as_built()``)."""
    return sum(cascade_luts(m, coef) for m in memories(e))


def read_registers(e: EngineV2) -> int:
    """FFs of the registered read ports of the memories mapped to LUT RAM (give it ``e.as_built()``):
    block RAM keeps a synchronous read's register inside the cell, LUT RAM needs one in the fabric
    (xaihls_sdp_ram's rdata). On the pynq-z2 project (16 x 8, 64 accumulators a lane) the other
    lanes' accumulators map to LUT RAM: 12 x 48 = 576 FF, the project's whole FF excess over the
    16 x 8 point of 1,024 accumulators."""
    return sum(m.copies * m.width for m in memories(e) if not m.async_read and memory_cells(m)[0] == 0)


def block_ram_halves(width: int, depth: int, segments: int = 1) -> int:
    """RAMB18s (a RAMB36 counts two) of the cheapest block-RAM mapping of a memory."""
    _, halves, n, _ = min((c for c in _configs(width, depth, segments, False) if c[1]), key=lambda c: c[0])
    return n * halves


def counted(e: EngineV2) -> dict[str, tuple[int, int]]:
    """(BRAM_18K, LUTRAM LUTs) per memory of the engine as built."""
    return {m.name: memory_cells(m) for m in memories(e.as_built())}


def address_bits(e: EngineV2) -> int:
    """Word-address bits of the memories the engine addresses by computed row and pixel addresses, as
    the RTL builds them for ``e``: the input buffer's and the accumulators' (xaihls_top's IAW, OAW), the
    ReLU bits' and the pool indices' (MKW, IXW; one bit each without the backward path). The
    loader's, walker's and write-back's address registers and adders are this wide."""
    b = e.as_built()
    kept = (b.mask_bits // b.beat_elems, b.index_entries // b.tn) if b.backward else (1, 1)
    return sum(max(1, math.ceil(math.log2(words))) for words in (b.in_depth, b.out_depth, *kept))


def features(e: EngineV2) -> list[float]:
    """FEATURES of ``e`` as the RTL builds it."""
    b = e.as_built()
    return [1.0, float(b.tm), float(b.tn), float(b.tm * b.tn), float(b.beat_elems), float(bool(b.backward)),
            float(b.off_bits), float(address_bits(b)), float(b.w_diag), float(b.w_diag * b.tn)]


POINT_ENGINE_KEYS = {"TM": "tm", "TN": "tn", "IN_DEPTH": "in_depth", "OUT_DEPTH": "out_depth", "W_DEPTH": "w_depth",
                     "MASK_BITS": "mask_bits", "INDEX_ENTRIES": "index_entries", "INDEX_BITS": "index_bits",
                     "INPUT_ELEMS": "input_elems"}


def engine_of_point(p: dict) -> EngineV2:
    """The EngineV2 a yosys point was built with (its RTL parameters are stored with its counts)."""
    q = p["params"]
    return EngineV2(beat_elems=q["AXI_DATA_WIDTH"] // 16, backward=bool(q["BACKWARD"]), clock_mhz=100.0,
                    bytes_per_cycle=8.0, ddr_bytes=1 << q["OFF_BITS"], ig_exact=True,  # INPUT_ELEMS as built
                    w_diag=bool(q.get("W_DIAG", 0)),  # the RTL before W_DIAG: as 0 builds it
                    **{v: q[k] for k, v in POINT_ENGINE_KEYS.items()})


@dataclass(frozen=True)
class Domain:
    """The engines the model answers for: Tm, Tn and Tm * Tn up to REACH x the largest measured,
    the AXI beat between the narrowest and widest measured."""

    tm_max: int
    tn_max: int
    macs_max: int
    beat_min: int
    beat_max: int

    @classmethod
    def of(cls, points) -> "Domain":
        es = [engine_of_point(p) for p in points]
        return cls(REACH * max(e.tm for e in es), REACH * max(e.tn for e in es), REACH * max(e.macs for e in es),
                   min(e.beat_elems for e in es), max(e.beat_elems for e in es))


@dataclass(frozen=True)
class ResourceModel:
    """LUT (less LUTRAM and the memories' cascade LUTs) and FF coefficients over FEATURES; DSP =
    Tm*Tn + dsp_extra; BRAM_18K and LUTRAM counted; ``cascade``: ``fit_cascade``'s LUTs around a
    memory more than one cell deep (None: none counted, for stand-in models). ``points``: the yosys
    runs fitted on; ``held_out``: runs kept out of the fit."""

    lut: tuple[float, ...]
    ff: tuple[float, ...]
    dsp_extra: int
    points: tuple[dict, ...] = ()
    held_out: tuple[dict, ...] = ()
    source: str = ""
    rtl: str = ""  # rtl_digest() of the sources every point was synthesized from
    cascade: dict[str, tuple[float, float]] | None = None

    def __post_init__(self):
        if len(self.lut) != len(FEATURES) or len(self.ff) != len(FEATURES):
            raise ValueError(f"a resource model has one LUT and one FF coefficient a feature ({', '.join(FEATURES)}), "
                             f"got {len(self.lut)} and {len(self.ff)}")

    def cascade_luts(self, e: EngineV2) -> float:
        """The read multiplexers and write decoders yosys adds beside ``e``'s memories (as built)."""
        return engine_cascade_luts(e, self.cascade) if self.cascade else 0.0

    @property
    def domain(self) -> Domain | None:
        return Domain.of(self.points) if self.points else None

    def refusal(self, tm: int, tn: int, beat_elems: int) -> str | None:
        """Why the model does not answer for this array (None: it does)."""
        d = self.domain
        if d is None or (tm <= d.tm_max and tn <= d.tn_max and tm * tn <= d.macs_max
                         and d.beat_min <= beat_elems <= d.beat_max):
            return None
        return (f"the Engine v2 resource model does not cover Tm={tm}, Tn={tn} at {16 * beat_elems}-bit AXI: "
                f"it answers for Tm <= {d.tm_max}, Tn <= {d.tn_max}, Tm*Tn <= {d.macs_max}, AXI "
                f"{16 * d.beat_min}..{16 * d.beat_max} bits (twice its largest yosys points); add a yosys point "
                f"near it (python -m benchmarks.resources --run {tm}x{tn}@{16 * beat_elems} --fit)")

    def estimate(self, e: EngineV2) -> ResourceEstimate:
        """LUT, FF, DSP and BRAM_18K of ``e`` as yosys synth_xilinx (xc7) counts them. The planner's
        engines carry the buffer depths the Program was tiled for; the RTL built for a Program
        (rtl_params) may be shallower where its jobs use less, so this is then an upper bound."""
        b = e.as_built()
        why = self.refusal(b.tm, b.tn, b.beat_elems)
        if why:
            raise XaiHlsError(why)
        per = counted(b)
        x = np.array(features(b))
        lutram = sum(lr for _, lr in per.values())
        cascade = self.cascade_luts(b)
        lut = float(x @ np.array(self.lut)) + lutram + cascade
        ff = float(x @ np.array(self.ff)) + read_registers(b)
        return ResourceEstimate(int(round(lut)), int(round(ff)), b.tm * b.tn + self.dsp_extra,
                                sum(br for br, _ in per.values()), 0,
                                {"LUTRAM": lutram, "memory cascade LUTs": int(round(cascade)),
                                 "BRAM_18K by memory": {k: br for k, (br, _) in per.items() if br}})

    def residuals(self, points=None) -> list[dict]:
        """Each point (default: the fitting points, then the held-out): yosys, model, relative error."""
        out = []
        for p in (self.points + self.held_out) if points is None else points:
            est = self.estimate(engine_of_point(p)).as_dict()
            out.append({"tag": p["tag"], "held_out": p in self.held_out,
                        **{k: {"yosys": p[k], "model": est[k], "error": (est[k] - p[k]) / p[k] if p[k] else 0.0}
                           for k in RESULTS_OF}})
        return out

    def as_dict(self) -> dict:
        d = self.domain
        return {"source": self.source, "rtl": self.rtl, "features": list(FEATURES),
                "lut": list(self.lut), "ff": list(self.ff), "dsp_extra": self.dsp_extra,
                "cascade": {k: list(v) for k, v in self.cascade.items()} if self.cascade else None,
                "domain": d.__dict__ if d else None, "points": list(self.points), "held_out": list(self.held_out),
                "residuals": self.residuals()}


def rtl_digest() -> str:
    """A digest of the RTL sources yosys synthesizes (the ``.sv`` files of ``hls_templates/rtl_v2``;
    its simulation top lies in ``sim/``), their comments and blank lines left out: what a yosys
    point and the model fitted on it belong to."""
    h = hashlib.sha256()
    for path in sorted((TEMPLATES_DIR / "rtl_v2").glob("*.sv")):
        code = [line.split("//", 1)[0].rstrip() for line in path.read_text().splitlines()]
        h.update(path.name.encode() + b"\0" + "\n".join(line for line in code if line).encode() + b"\0")
    return h.hexdigest()[:16]


def fit(points: list[dict], held_out: list[dict] = (), source: str = "", rtl: str = "",
        cascade: dict[str, tuple[float, float]] | None = None) -> ResourceModel:
    """Least-squares LUT and FF coefficients from yosys points (each: "tag", the RTL "params" and
    LUT, FF, DSP, BRAM_18K as yosys counted them) of the RTL ``rtl`` (``rtl_digest``), the
    memories' LUT RAM and ``cascade`` LUTs (``fit_cascade``) counted apart; the points must vary
    every feature."""
    if len(points) <= len(FEATURES):
        raise XaiHlsError(f"the resource model needs more than {len(FEATURES)} yosys points, got {len(points)}")
    es = [engine_of_point(p) for p in points]
    x = np.array([features(e) for e in es])
    if np.linalg.matrix_rank(x) < len(FEATURES):
        flat = [f for j, f in enumerate(FEATURES) if j and np.ptp(x[:, j]) == 0]
        raise XaiHlsError(f"the yosys points do not vary the model's features apart (constant: {', '.join(flat) or '-'}); "
                          f"add points that vary Tm, Tn, the AXI width, the backward path, OFF_BITS, the kept "
                          f"state's depth and W_DIAG (at two Tn or more)")
    lutram = np.array([sum(lr for _, lr in counted(e).values()) for e in es])
    if cascade:
        lutram = lutram + np.array([engine_cascade_luts(e.as_built(), cascade) for e in es])
    registers = np.array([read_registers(e.as_built()) for e in es])
    coef = {}
    for key, y in (("LUT", np.array([p["LUT"] for p in points]) - lutram),
                   ("FF", np.array([p["FF"] for p in points]) - registers)):
        c, *_ = np.linalg.lstsq(x, y.astype(float), rcond=None)
        coef[key] = tuple(round(float(v), 6) for v in c)
    extra = {p["DSP"] - e.tm * e.tn for p, e in zip(list(points) + list(held_out),
                                                    es + [engine_of_point(p) for p in held_out])}
    if len(extra) != 1:
        raise XaiHlsError(f"DSP count is not Tm*Tn plus one constant across the yosys points: extras {sorted(extra)}")
    return ResourceModel(coef["LUT"], coef["FF"], extra.pop(), tuple(points), tuple(held_out), source, rtl, cascade)


def load(path: Path = MODEL_FILE) -> ResourceModel:
    """The fitted model the planner uses; a clear error if it was never fitted or fitted over other
    features, a warning if the RTL sources changed since its yosys points (its LUT and FF figures
    are then not checked against the RTL they describe)."""
    if not path.is_file():
        raise XaiHlsError(f"no fitted resource model at {path}; run `python -m benchmarks.resources --fit`")
    data = json.loads(path.read_text())
    if tuple(data.get("features", ())) != FEATURES:
        raise XaiHlsError(f"resource model {path} was fitted over features {data.get('features')}, this version "
                          f"uses {list(FEATURES)}; run `python -m benchmarks.resources --fit`")
    if not data.get("cascade"):
        raise XaiHlsError(f"resource model {path} does not count the LUTs beside memories more than one cell deep; "
                          "run `python -m benchmarks.resources --fit`")
    model = ResourceModel(tuple(data["lut"]), tuple(data["ff"]), int(data["dsp_extra"]), tuple(data["points"]),
                          tuple(data["held_out"]), data["source"], data.get("rtl", ""),
                          {k: tuple(v) for k, v in data["cascade"].items()})
    if model.rtl != rtl_digest():
        warnings.warn(f"the resource model ({path.name}) was fitted on yosys runs of other RTL sources than "
                      "hls_templates/rtl_v2 holds now: its LUT and FF figures are unchecked until a refit "
                      "(python -m benchmarks.resources --run on emptied records, then --fit)",
                      XaiHlsWarning, stacklevel=2)
    return model


def save(model: ResourceModel, path: Path = MODEL_FILE) -> None:
    path.write_text(json.dumps(model.as_dict(), indent=1) + "\n")
