"""The Engine v2 planner: the smallest engine within a slack of the fastest that fits the board.

Every candidate array (Tm x Tn with Tn a multiple of the board's AXI beat and Tm a multiple of
Tn) and buffer depth is lowered, tiled and costed by the cycle model (xaihls.plan.timing) on
the workload (a prediction and one run of each compiled method); its resources come from the
model fitted on yosys (xaihls.plan.resources), and arrays outside that model's range are not
weighed. Among the engines that fit under the cap, the fastest sets the bar: the chosen engine
is the smallest (DSP, then LUT, then BRAM) whose workload takes at most (1 + slack) times the
fastest's. Deterministic: candidates are enumerated in a fixed order.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, replace

from xaihls.errors import XaiHlsError
from xaihls.frontend.ir import MaxPool2d, ReLU
from xaihls.plan import lowering
from xaihls.plan import resources as resource_model
from xaihls.plan.boards import Board
from xaihls.plan.engine import DDR_LATENCY, EngineV2, ResourceEstimate, ig_elems
from xaihls.plan.contract import DESCRIPTOR, Op, field_limit
from xaihls.plan.capabilities import cam_follows_phases, image_phases, phases_needed, program_refusal
from xaihls.plan.lowering import (Buffers, ProgramV2, Shape, buffer_needs, encode, keep_needs, kept_inputs, lower_jobs,
                                  packing, tiled, tiled_batch, tiled_cam, weight_depth)
from xaihls.methods import LAYER_METHODS
from xaihls.quant.qgraph import QGraph

ARRAY_SIDES = (4, 8, 16, 32, 64, 128)  # the RTL takes Tm, Tn up to 128
IN_DEPTHS = (1024, 2048, 4096, 8192)
OUT_DEPTHS = (256, 512, 1024, 2048)
SLACK = 0.10
BATCHES = (2, 4, 8, 16, 32)  # slots of the batched lists the planner weighs
KEEP_DEPTH = True
"""Whether the planner also weighs each engine with its input buffer as deep as the inputs kept across m-tiles take
where they fit the depth it tiled for (``lowering.keep_needs``); False: as deep as the tiles need only, as before
2026-12-06 (to measure)."""
BATCH_SLACK = 0.02  # the smallest batch whose integrated-gradients run is within this of the fastest batch's


@dataclass(frozen=True)
class Candidate:
    """One engine the planner weighed."""

    engine: EngineV2
    resources: ResourceEstimate
    method_cycles: dict[str, int]
    workload_cycles: int
    fits: bool

    @property
    def key(self) -> tuple:
        return (self.resources.dsp, self.resources.lut, self.resources.bram_18k, self.workload_cycles)


@dataclass(frozen=True, eq=False)
class PlanV2:
    board: Board
    engine: EngineV2
    program: ProgramV2
    resources: ResourceEstimate
    forward_costs: tuple
    backward_costs: tuple
    cap: float
    slack: float
    ig_steps: int
    method_cycles: dict[str, int]
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    next_larger: Candidate | None = None
    batch_cycles: dict[int, int] = field(default_factory=dict)  # the batch's figure by batch weighed (1: none)
    batch_too_large: int | None = None  # the smallest batch weighed whose engine did not fit the board
    image_batch_cycles: dict[str, int] = field(default_factory=dict)  # an image-batch start's cycles by run
    cam_costs: tuple = ()  # the Grad-CAM list's jobs (a Grad-CAM method compiled)
    network: object = None  # the network's Graph, where the Program's (program.qgraph) views it otherwise

    def latency_ms(self, method: str = "predict") -> float:
        return self.method_cycles[method] / (self.engine.clock_mhz * 1e3)

    def utilization(self) -> dict[str, float]:
        have = self.board.resources.as_dict()
        return {k: (v / have[k] if have[k] else 0.0) for k, v in self.resources.as_dict().items()}

    @property
    def workload_methods(self) -> tuple[str, ...]:
        return ("predict", *self.program.qgraph.methods)

    @property
    def kept(self) -> "KeptMemory":
        return kept_memory(self.program)

    def summary(self) -> dict:
        """The plan's figures as plain data (what ``describe`` prints; a project's estimate.json)."""
        e = self.engine
        names = [layer.name for layer in self.program.qgraph.graph.layers] + ["logits"]
        k = self.kept
        return {
            "board": self.board.name, "part": self.board.part, "clock_mhz": e.clock_mhz, "tm": e.tm, "tn": e.tn,
            "axi_data_bits": e.axi_data_bits, "in_depth": e.in_depth, "out_depth": e.out_depth,
            "w_depth": e.w_depth, "bytes_per_cycle": e.bytes_per_cycle, "ddr_latency": e.ddr_latency,
            "cap": self.cap, "slack": self.slack, "ig_steps": self.ig_steps, "batch": self.program.batch,
            "batch_cycles": {str(k): v for k, v in self.batch_cycles.items()},
            "batch_too_large": self.batch_too_large, "image_batch_cycles": dict(self.image_batch_cycles),
            "cycles": {m: self.method_cycles[m] for m in self.workload_methods},
            "latency_ms": {m: self.latency_ms(m) for m in self.workload_methods},
            "resources": self.resources.as_dict(), "resources_model": resource_model.MODEL_FILE.name,
            "memories_bram_18k": dict(self.resources.breakdown or {}),
            "capacity": self.board.resources.as_dict(), "utilization": self.utilization(),
            "kept_bits": k.kept_bits, "activation_bits": k.activation_bits,
            "ddr_bytes": self.program.total_bytes, "ddr_image_bytes": len(self.program.image), "off_bits": e.off_bits,
            "image_fold": [self.program.header["fold_rows"], self.program.header["fold_cols"]],
            "layers": [{"layer": names[c.layer], "direction": c.direction, "op": c.op, "cycles": c.cycles,
                        "bound": c.bound_cycles, "macs": c.macs, "array_macs": c.array_macs,
                        "memory_cycles": c.memory_cycles,
                        "mac_utilization": round(c.utilization(e.tm, e.tn), 6)}
                       for c in self.forward_costs + self.backward_costs],
            "candidates": [{"tm": c.engine.tm, "tn": c.engine.tn, "in_depth": c.engine.in_depth,
                            "out_depth": c.engine.out_depth, "w_depth": c.engine.w_depth,
                            "resources": c.resources.as_dict(), "workload_cycles": c.workload_cycles,
                            "fits": c.fits} for c in self.candidates],
        }


@dataclass(frozen=True)
class KeptMemory:
    """What the engine keeps between the forward and backward passes for one image, against the
    activations a backward pass would otherwise need (16-bit, every ReLU and max-pool input)."""

    relu_bits: int
    index_bits: int
    activation_bits: int

    @property
    def kept_bits(self) -> int:
        return self.relu_bits + self.index_bits

    @property
    def ratio(self) -> float:
        return self.activation_bits / self.kept_bits if self.kept_bits else float("inf")


def kept_memory(program: ProgramV2) -> KeptMemory:
    qg = program.qgraph
    layers = qg.graph.layers
    act = 0
    for i, layer in enumerate(layers):
        if isinstance(layer, ReLU) or (isinstance(layer, MaxPool2d) and not (i and isinstance(layers[i - 1], ReLU))):
            act += qg.width * math.prod(layer.in_shape)
    h = program.header  # the memories hold one image's per slot of the batched lists
    return KeptMemory(h["mask_bits"] // h["batch"], h["index_entries"] * h["index_bits"] // h["batch"], act)


def array_candidates(board: Board, cap: float) -> list[tuple[int, int]]:
    """(Tm, Tn) pairs an engine on ``board`` can have: Tn a multiple of the AXI beat, Tm of Tn,
    Tm*Tn DSPs within the cap."""
    e = board.beat_elems
    out = []
    for tn in ARRAY_SIDES:
        if tn % e:
            continue
        for tm in ARRAY_SIDES:
            if tm % tn == 0 and tm * tn <= cap * board.resources.dsp:
                out.append((tm, tn))
    return out


def _fits(res: ResourceEstimate, board: Board, cap: float) -> bool:
    have = board.resources
    return (res.dsp <= cap * have.dsp and res.lut <= cap * have.lut and res.ff <= cap * have.ff
            and res.bram_18k <= cap * have.bram_18k)


def _estimate(model, engine: EngineV2, board: Board, cap: float) -> tuple[EngineV2, ResourceEstimate]:
    """``engine`` and its resources with the IG sums' accumulators a power of two deep (no read multiplexer),
    or at their exact depth (fewer block RAMs) where only that fits the board (``EngineV2.ig_exact``); where
    neither fits, the one nearer to fitting. ``engine.ig_exact`` is ignored: both depths are weighed here."""
    engine = replace(engine, ig_exact=False)
    res = model.estimate(engine)
    if not engine.input_elems or not engine.backward or _fits(res, board, cap):
        return engine, res
    exact = replace(engine, ig_exact=True)
    res_exact = model.estimate(exact)
    if _fits(res_exact, board, cap):
        return exact, res_exact
    # neither fits: the one nearer to fitting, whose needs a refusal then names
    return min(((engine, res), (exact, res_exact)), key=lambda er: _shares(er[1], board))


def _shares(r: ResourceEstimate, board: Board) -> float:
    """The largest share of one of ``board``'s resources that ``r`` takes."""
    have = board.resources
    return max(r.dsp / max(have.dsp, 1), r.lut / max(have.lut, 1), r.ff / max(have.ff, 1),
               r.bram_18k / max(have.bram_18k, 1))


def _short(c: Candidate, board: Board) -> tuple:
    """How far ``c`` is from fitting ``board``: its largest share of one of the board's resources, then its size."""
    return (_shares(c.resources, board), c.key)


_STATE_MEMORIES = {  # the memories whose size the network sets, not the engine: what each holds
    "ReLU bits": "the ReLU bits (one an element a ReLU makes)",
    "pool indices and alive bits": "the max-pool indices (one an element a max-pool makes)",
    resource_model.IG_LANES: "the integrated-gradients sums (48 bits an input element, beside lanes 0..E-1's "
                             "accumulators)",
}


def _block_ram_note(small: Candidate, board: Board, cap: float) -> str:
    """Where an engine over the board's block RAM has it: the state the backward pass keeps on chip for the whole
    network, whose size the network and its input set."""
    if small.resources.bram_18k <= cap * board.resources.bram_18k:
        return ""
    per = (small.resources.breakdown or {}).get("BRAM_18K by memory", {})
    names = [n for n in _STATE_MEMORIES if n != resource_model.IG_LANES or small.engine.input_elems]
    state = sorted(((n, per[n]) for n in names if per.get(n)), key=lambda kv: -kv[1])
    if sum(n for _, n in state) * 2 < small.resources.bram_18k:
        return ""
    held = ", ".join(f"{n} for {_STATE_MEMORIES[name]}" for name, n in state)
    return (f"; {sum(n for _, n in state)} of its {small.resources.bram_18k} BRAM_18K hold what the backward pass "
            f"keeps on chip for the whole network: {held}; fewer methods (only integrated gradients keeps the sums) "
            "or a smaller input makes them smaller, else a larger board")


@dataclass
class _Memo:
    """What the planner keeps across the engines it weighs: the cycle model's costs (the model reads only an
    engine's array, beat and DDR, not its buffer depths, and of a job only ``timing.COST_FIELDS``), and the
    convolutions' kernels as cut for their jobs, which no array changes."""

    costs: dict = field(default_factory=dict)  # (array, beat and DDR, a job's cost key, image batch) -> JobCost
    kernels: dict = field(default_factory=dict)  # the convolutions' kernels as cut for their jobs (lower_jobs)
    keys: dict = field(default_factory=dict)  # a job -> its cost key (``timing.cost_key``; a Job keeps its hash)


def _job_cost(timing, engine: EngineV2, memo: _Memo | None = None):
    """``timing.job_cost`` on ``engine``, as (job, direction, layers=None, image_batch=False), kept in ``memo``."""
    memo = _Memo() if memo is None else memo
    model = (engine.tm, engine.tn, engine.beat_elems, engine.bytes_per_cycle, engine.ddr_latency)
    costs, keys = memo.costs, memo.keys

    def cost(d, direction: str | None, layers=None, image_batch: bool = False):
        k = keys.get(d)
        if k is None:
            k = keys[d] = timing.cost_key(d)
        key = (model, k, image_batch)
        c = costs.get(key)
        if c is None:
            c = costs[key] = timing.job_cost(d, engine, direction or "tiling", image_batch=image_batch)
        if direction is None:  # the cycles alone: whichever direction the memo's cost was made for
            return c
        changes = {} if c.direction == direction else {"direction": direction}
        if layers is not None:
            changes["macs"] = timing.network_macs(d, layers, engine.tm // engine.tn)
        return replace(c, **changes) if changes else c
    return cost


def _row_tile_cost(timing, engine: EngineV2, memo: _Memo | None = None):
    """The cycle model as the row tiling's judge (lowering.tile_job), memoized as ``_job_cost``: a job's cycles."""
    job = _job_cost(timing, engine, memo)
    return lambda d: job(d, None).cycles


def _costs(timing, qg: QGraph, engine: EngineV2, h: dict, lists: tuple, memo: _Memo | None = None,
           detail: bool = True) -> tuple:
    """What the planner weighs of job ``lists`` (forward, backward, Grad-CAM, batched forward,
    batched backward; the inputs kept as ``encode`` keeps them on ``engine``'s input buffer):
    (forward costs, backward costs, Grad-CAM costs, the cycles of predict and every method, an
    image-batch start's cycles for each run it serves (empty without batched lists)). ``qg``: the
    network as the jobs see it (``Lowered.qgraph``: a 1-D model's maps perhaps as columns), whose
    layers give each job's MACs. ``memo``: the jobs' costs kept across engines (``_job_cost``).
    Without ``detail`` (an engine weighed, of which only the cycles count) a job's cost is the memo's,
    its direction and MACs not set."""
    forward, backward, cam, fbatch, bbatch = (kept_inputs(jobs, engine.in_depth) for jobs in lists)
    layers = qg.graph.layers if detail else None
    job_cost = _job_cost(timing, engine, memo)
    fwd = tuple(job_cost(d, "forward" if detail else None, layers=layers) for d in forward)
    bwd = tuple(job_cost(d, "backward" if detail else None, layers=layers) for d in backward)
    cams = tuple(job_cost(d, "cam" if detail else None) for d in cam)
    if not fbatch:
        return fwd, bwd, cams, timing.workload(h, fwd, bwd, engine, qg.ig_steps, cam_costs=cams), {}
    directions = ("forward", "backward")
    batched = tuple(tuple(job_cost(d, direction if detail else None) for d in jobs)
                    for jobs, direction in zip((fbatch, bbatch), directions))
    h = dict(h, n_forward_batch=len(fbatch), n_backward_batch=len(bbatch))
    cycles = timing.workload(h, fwd, bwd, engine, qg.ig_steps, batched, cam_costs=cams)
    # in an image batch a SEED also reads its slot's target back: only its cost differs
    in_images = tuple(sum(job_cost(d, direction, image_batch=True).cycles if d.op == Op.SEED
                          else c.cycles for d, c in zip(jobs, costs))
                      for jobs, costs, direction in zip((fbatch, bbatch), batched, directions))
    starts = {m or "predict": timing.run_cycles(h, engine, 0, 0, m, qg.ig_steps, batched=in_images, images=h["batch"])
              for m in _image_methods(qg)}
    return fwd, bwd, cams, cycles, starts


def plan_v2(qg: QGraph, board: Board, cap: float = 0.8, clock_mhz: float | None = None,
            tiling: tuple[int, int] | None = None, slack: float = SLACK, ddr_latency: int = DDR_LATENCY,
            timing=None, model: resource_model.ResourceModel | None = None) -> PlanV2:
    """The engine and Program for ``qg`` on ``board`` (``tiling=(Tm, Tn)`` fixes the array); a
    network the engine cannot run (``capabilities.program_refusal``) is refused in one line here
    too, whoever calls."""
    why = program_refusal(qg)
    if why:
        raise XaiHlsError(f"no engine plan for this network: {why}")
    if not (isinstance(cap, (int, float)) and 0 < cap <= 1):
        raise XaiHlsError(f"utilisation cap must be in (0, 1], got {cap}")
    if not (isinstance(slack, (int, float)) and 0 <= slack <= 10):
        raise XaiHlsError(f"slack must be a fraction of the fastest latency in 0..10, got {slack}")
    clock = float(board.clock_mhz if clock_mhz is None else clock_mhz)
    if not (math.isfinite(clock) and clock > 0):
        raise XaiHlsError(f"clock must be a positive number of MHz, got {clock_mhz}")
    if timing is None:
        from xaihls.plan import timing
    model = model or resource_model.load()
    bpc = min(board.bytes_per_cycle(clock), 2 * board.beat_elems)
    arrays = [tiling] if tiling else array_candidates(board, cap)
    if not arrays:
        tm = tn = max(ARRAY_SIDES[0], board.beat_elems)
        have = board.resources
        raise XaiHlsError(f"board '{board.name}': no engine fits under the {cap:.0%} cap; the smallest engine "
                          f"(Tm={tm}, Tn={tn}) needs {tm * tn} DSP for its MACs; the board has {have.dsp} DSP, "
                          f"{have.bram_18k} BRAM_18K, {have.lut} LUT, {have.ff} FF")
    if tiling:
        Shape(*tiling, board.beat_elems)  # refuses an array the board's beat does not divide
    refusals = [why for tm, tn in arrays if (why := model.refusal(tm, tn, board.beat_elems))]
    arrays = [(tm, tn) for tm, tn in arrays if not model.refusal(tm, tn, board.beat_elems)]
    if not arrays:
        raise XaiHlsError(f"board '{board.name}': {refusals[0]}" if refusals else
                          f"board '{board.name}': no Tm x Tn array has Tn a multiple of its {board.beat_elems}-element "
                          f"AXI beat within {cap:.0%} of its {board.resources.dsp} DSPs")
    # an array's best engine, the view of its jobs and their buffers (the jobs lowered again for the chosen array: a
    # big network's lowered jobs hold gigabytes of kernels, so they are not kept for every array weighed)
    best_of: dict[tuple[int, int], tuple[Candidate, tuple[bool, bool], Buffers]] = {}
    memo = _Memo()
    why = ""
    least: Candidate | None = None  # the engine weighed that comes nearest to fitting, for a refusal
    # a 1-D model's maps as one row or as a column (lowering.ONE_D_COLUMNS), the image as its first stride's phases
    # or not (capabilities.image_phases; a 1-D model's on its columns; Grad-CAM's upsampling does not follow the
    # phases): weighed like buffers
    one_d = qg.graph.sample_shape is not None
    views = [(False, False), (True, False)] if one_d and lowering.ONE_D_COLUMNS else [(None, False)]
    if phases_needed(qg.graph):  # an image longer than a map: as stride phases (a 1-D model's maps as columns)
        views = [(True, True)]
    elif image_phases(qg.graph) and (lowering.ONE_D_COLUMNS or not one_d) and (
            qg.cam_layer is None or cam_follows_phases(qg)):
        views.append((True, True))
    for (tm, tn), (as_columns, as_phases) in itertools.product(arrays, views):
        lowered = lower_jobs(qg, Shape(tm, tn, board.beat_elems), as_columns=as_columns, as_phases=as_phases,
                             kernels=memo.kernels)
        w_depth = weight_depth(lowered)
        for in_depth in IN_DEPTHS:
            for out_depth in OUT_DEPTHS:
                buffers = Buffers(in_depth, out_depth, w_depth)
                h = lowered.header
                engine = EngineV2(tm, tn, board.beat_elems, in_depth, out_depth, w_depth, h["mask_bits"],
                                  h["index_entries"], h["index_bits"], ig_elems(h, qg.methods), clock, bpc,
                                  ddr_latency, ddr_bytes=h["total_bytes"])
                try:
                    forward, backward, n_backward_cam = tiled(lowered, buffers, _row_tile_cost(timing, engine, memo))
                    cam = tiled_cam(lowered, buffers, _row_tile_cost(timing, engine, memo))
                except XaiHlsError as exc:
                    why = str(exc)
                    continue
                # the engine as the RTL is built for this Program: buffers as deep as its tiles use, or as
                # deep as the inputs kept across m-tiles take where they fit the depth tiled for (weighed both)
                in_used, out_used, w_used = buffer_needs(forward + backward + cam, tm, tn)
                kept = keep_needs(forward + backward + cam, in_depth) if KEEP_DEPTH else 0
                ddr_bytes = packing(lowered, forward + backward + cam).total  # the DDR its offsets address
                w_diag = any(d.w_diag for d in forward + backward + cam)  # the RTL's W_DIAG
                for in_words in sorted({in_used, max(in_used, kept)}):
                    engine, res = _estimate(model, replace(engine, in_depth=in_words, out_depth=out_used,
                                                           w_depth=w_used, ddr_bytes=ddr_bytes, w_diag=w_diag),
                                            board, cap)
                    _, _, _, cycles, _ = _costs(timing, lowered.qgraph, engine, dict(h, n_backward_cam=n_backward_cam),
                                                (forward, backward, cam, (), ()), memo, detail=False)
                    workload = cycles["predict"] + sum(cycles[m] for m in qg.methods)
                    cand = Candidate(engine, res, cycles, workload, _fits(res, board, cap))
                    if least is None or _short(cand, board) < _short(least, board):
                        least = cand
                    prev = best_of.get((tm, tn))
                    rank = (not cand.fits, workload, res.bram_18k)
                    if prev is None or rank < (not prev[0].fits, prev[0].workload_cycles, prev[0].resources.bram_18k):
                        best_of[tm, tn] = (cand, (lowered.as_columns, lowered.as_phases),
                                           replace(buffers, keep_words=in_words))
    if not best_of:  # the last refusal was at the largest buffers: it names the layer
        named = re.sub(r"^layer (\d+):", lambda m: f"layer '{qg.graph.layers[int(m.group(1))].name}':", why)
        raise XaiHlsError("no engine can hold one row of this network's layers in its largest buffers "
                          f"({max(IN_DEPTHS)} input words, {max(OUT_DEPTHS)} accumulators): {named}")
    candidates = tuple(c for c, *_ in best_of.values())
    feasible = [c for c in candidates if c.fits]
    if not feasible:
        small = least or min(candidates, key=lambda c: c.key)
        have = board.resources
        r = small.resources
        raise XaiHlsError(
            f"board '{board.name}': no engine fits under the {cap:.0%} cap; the engine nearest to fitting "
            f"(Tm={small.engine.tm}, Tn={small.engine.tn}) needs {r.dsp} DSP, {r.bram_18k} BRAM_18K, {r.lut} LUT, "
            f"{r.ff} FF; the board has {have.dsp} DSP, {have.bram_18k} BRAM_18K, {have.lut} LUT, {have.ff} FF"
            + _block_ram_note(small, board, cap))
    fastest = min(c.workload_cycles for c in feasible)
    chosen = min((c for c in feasible if c.workload_cycles <= (1 + slack) * fastest), key=lambda c: c.key)
    larger = [c for c in feasible if c.resources.dsp > chosen.resources.dsp]
    next_larger = min(larger, key=lambda c: (c.workload_cycles, c.key)) if larger else None
    tm, tn = chosen.engine.tm, chosen.engine.tn
    cand, view, buffers = best_of[tm, tn]
    if (lowered.shape.tm, lowered.shape.tn, (lowered.as_columns, lowered.as_phases)) != (tm, tn, view):
        lowered = None  # the last array's jobs, freed before the chosen array's are lowered again
        lowered = lower_jobs(qg, Shape(tm, tn, board.beat_elems), as_columns=view[0], as_phases=view[1],
                             kernels=memo.kernels)
    cand, lowered, batch_cycles, too_large = _batch(qg, cand, lowered, buffers, board, cap, timing, model, memo)
    program = encode(lowered, buffers, _row_tile_cost(timing, cand.engine, memo))
    # the figures of the Program as encoded (its kept inputs on the engine built for it)
    p = program
    fwd, bwd, cams, cycles, image_batch = _costs(timing, p.qgraph, cand.engine, p.header,
                                                 (p.forward, p.backward, p.cam, p.forward_batch, p.backward_batch))
    assert cycles == cand.method_cycles, "the Program encoded is not the one the planner weighed"
    return PlanV2(board, cand.engine, program, cand.resources, fwd, bwd, cap, slack, qg.ig_steps,
                  cand.method_cycles, candidates, next_larger, batch_cycles, too_large, image_batch, cams, qg.graph)


def _image_methods(qg: QGraph) -> tuple[str | None, ...]:
    """The runs an image batch serves: predict and every compiled method but integrated gradients
    (whose steps take the slots) and the Grad-CAM methods (one image a start)."""
    return (None, *(m for m in qg.methods if m != "integrated_gradients" and m not in LAYER_METHODS))


def _batch(qg: QGraph, cand: Candidate, lowered, buffers: Buffers, board: Board, cap: float, timing, model,
           memo) -> tuple[Candidate, object, dict[int, int], int | None]:
    """The slots of the batched lists (docs/engine_v2.md, "Batched lists"): of the batches whose
    engine still fits (the kept ReLU bits and pool indices grow with the batch), the smallest whose
    figure is within (1 + BATCH_SLACK) of the best batch's; 1 (no batched lists) if none beats
    one at a time. The figure: the integrated-gradients run when that method is compiled (batches
    up to its steps), else the cycles an image of predict and each method take in image batches.
    Also that figure for each batch weighed and the first batch that did not fit (None: all did)."""
    if not qg.methods:
        return cand, lowered, {}, None
    ig = "integrated_gradients" in qg.methods
    options = {1: cand}
    too_large = None
    figure = {1: cand.method_cycles["integrated_gradients"] if ig
              else sum(cand.method_cycles[m or "predict"] for m in _image_methods(qg))}

    def weighed(batch: int) -> tuple[Candidate, float] | None:
        """The engine and figure of ``batch`` slots; None where that engine does not fit (its jobs are not kept: a
        big network's hold gigabytes of kernels)."""
        low = lower_jobs(qg, lowered.shape, batch=batch, as_columns=lowered.as_columns, as_phases=lowered.as_phases,
                         kernels=memo.kernels)
        h = low.header
        cost = _row_tile_cost(timing, cand.engine, memo)
        forward, backward, n_backward_cam = tiled(low, buffers, cost)
        lists = tiled_batch(low, buffers, forward, backward, cost)
        cam = tiled_cam(low, buffers, cost)
        # the engine as built for this Program: a batched Linear job's rows may need deeper buffers
        in_used, out_used, w_used = buffer_needs(forward + backward + lists[0] + lists[1], cand.engine.tm,
                                                  cand.engine.tn)
        e = cand.engine
        ddr_bytes = packing(low, forward + backward + lists[0] + lists[1] + cam).total
        engine = replace(e, mask_bits=h["mask_bits"], index_entries=h["index_entries"], ddr_bytes=ddr_bytes,
                         in_depth=max(e.in_depth, in_used), out_depth=max(e.out_depth, out_used),
                         w_depth=max(e.w_depth, w_used))
        engine, res = _estimate(model, engine, board, cap)
        if not _fits(res, board, cap):
            return None
        _, _, _, method_cycles, starts = _costs(timing, low.qgraph, engine, dict(h, n_backward_cam=n_backward_cam),
                                                (forward, backward, cam, *lists), memo,
                                                detail=False)
        workload = method_cycles["predict"] + sum(method_cycles[m] for m in qg.methods)
        return (Candidate(engine, res, method_cycles, workload, True),
                method_cycles["integrated_gradients"] if ig else sum(starts.values()) / batch)

    for batch in (b for b in BATCHES if not ig or b <= qg.ig_steps):
        option = weighed(batch)
        if option is None:
            too_large = batch
            break
        options[batch], figure[batch] = option
    best = min(figure.values())
    batch = min(b for b, c in figure.items() if c <= (1 + BATCH_SLACK) * best)
    low = lowered if batch == 1 else lower_jobs(qg, lowered.shape, batch=batch, as_columns=lowered.as_columns,
                                                as_phases=lowered.as_phases, kernels=memo.kernels)
    return options[batch], low, {b: round(c) for b, c in figure.items()}, too_large


def describe_candidates(p: PlanV2) -> str:
    """The engines the planner weighed, the chosen one marked, and what the next larger would buy."""
    lines = [f"{'Tm x Tn':<9}{'in/out/w depth':>18}{'DSP':>6}{'LUT':>8}{'FF':>8}{'BRAM':>6}{'workload cycles':>17}"
             f"{'vs fastest':>11}  fits"]
    fastest = min(c.workload_cycles for c in p.candidates if c.fits)
    for c in sorted(p.candidates, key=lambda c: (c.engine.tm * c.engine.tn, c.engine.tm)):
        e, r = c.engine, c.resources
        mark = "  <- chosen" if (e.tm, e.tn) == (p.engine.tm, p.engine.tn) else ""
        lines.append(f"{e.tm:>3} x {e.tn:<3}{f'{e.in_depth}/{e.out_depth}/{e.w_depth}':>18}{r.dsp:>6}{r.lut:>8,}"
                     f"{r.ff:>8,}{r.bram_18k:>6}{c.workload_cycles:>17,}{c.workload_cycles / fastest:>10.2f}x  "
                     f"{'yes' if c.fits else 'no'}{mark}")
    if p.next_larger is not None:
        n = p.next_larger
        chosen = next(c for c in p.candidates if (c.engine.tm, c.engine.tn) == (p.engine.tm, p.engine.tn))
        lines.append(f"the next larger engine that fits, {n.engine.tm} x {n.engine.tn}, would take "
                     f"{n.workload_cycles / chosen.workload_cycles:.2f}x the workload's cycles for "
                     f"{n.resources.dsp - chosen.resources.dsp:+} DSP, {n.resources.lut - chosen.resources.lut:+,} LUT")
    chosen = next((c for c in p.candidates if (c.engine.tm, c.engine.tn) == (p.engine.tm, p.engine.tn)), None)
    if chosen is not None and chosen.resources != p.resources:
        r = p.resources
        lines.append(f"each engine priced for one slot; the chosen one as built for {p.program.batch} slots (its kept "
                     f"state for each): {r.lut:,} LUT, {r.ff:,} FF, {r.dsp} DSP, {r.bram_18k} BRAM_18K")
    return "\n".join(lines)


def describe(p: PlanV2, methods=None) -> str:
    """A plain-text account of the plan: the engine, per-job cycles and bounds, the methods'
    latencies, the resources by the fitted model, and the candidates weighed."""
    e = p.engine
    qg = p.program.qgraph
    lines = [
        f"board {p.board.name} ({p.board.part}) at {e.clock_mhz:g} MHz, {e.axi_data_bits}-bit AXI, "
        f"{e.bytes_per_cycle:g} DDR bytes/cycle, DDR latency {e.ddr_latency} cycles",
        f"engine: Tm={e.tm} x Tn={e.tn} MACs, input buffer {e.in_depth} words, {e.out_depth} accumulators a lane, "
        f"weight buffer {e.w_depth} rows",
        "",
    ]
    names = [layer.name for layer in qg.graph.layers] + ["logits"]
    costs = p.forward_costs + p.backward_costs + p.cam_costs
    labels = []  # a layer's consecutive jobs in one list (stride phases, an Add's blocks) numbered k/n
    for (layer, _), run in itertools.groupby(costs, key=lambda c: (c.layer, c.direction)):
        n = len(list(run))
        labels += [names[layer] + (f" {k}/{n}" if n > 1 else "") for k in range(1, n + 1)]
    width = max(14, 2 + max(map(len, labels)))
    lines.append(f"{'layer':<{width}}{'dir':<5}{'op':<6}{'cycles':>11}{'bound':>11}{'MAC util':>10}")
    for cost, label in zip(costs, labels):
        util = f"{cost.utilization(e.tm, e.tn):.1%}" if cost.macs else "-"
        lines.append(f"{label:<{width}}{cost.direction[:3]:<5}{cost.op:<6}{cost.cycles:>11,}"
                     f"{cost.bound_cycles:>11,}{util:>10}")
    lines.append("")
    for method in ["predict"] + list(methods or qg.methods):
        lines.append(f"{method:<22}{p.method_cycles[method]:>12,} cycles {p.latency_ms(method):>10.3f} ms")
    if p.batch_cycles:
        weighed = ", ".join(f"{b}: {c:,}" for b, c in p.batch_cycles.items())
        limit = (f"; {p.batch_too_large} slots do not fit the board under the cap" if p.batch_too_large else "")
        if "integrated_gradients" in qg.methods:
            lines.append(f"integrated gradients ({p.ig_steps} steps) run {p.program.batch} steps at a time on the "
                         f"batched lists (IG cycles by batch weighed: {weighed}{limit})")
        else:
            lines.append(f"the batched lists hold {p.program.batch} slots (cycles an image of predict and each method "
                         f"in image batches, by batch weighed: {weighed}{limit})")
    n = p.program.batch
    for run, cycles in p.image_batch_cycles.items():
        lines.append(f"{run:<22}{cycles / n:>12,.0f} cycles an image in image batches of {n} "
                     f"({p.method_cycles[run] * n / cycles:.2f}x the images/s of one at a time)")
    if p.batch_cycles:
        lines.append("the engines below are weighed without batched lists")
    util = p.utilization()
    lines.append("")
    lines.append("resources (model fitted on yosys / board): " + ", ".join(
        f"{k} {v:,}/{p.board.resources.as_dict()[k]:,} ({util[k]:.0%})" for k, v in p.resources.as_dict().items()
        if k != "URAM"))
    h = p.program.header
    network = p.network or qg.graph
    c, *sides = network.input_shape
    if h["in_c"] > c:  # the image as its first stride's phases (capabilities.image_phases)
        why = (f": a job's map holds at most {field_limit(DESCRIPTOR, 'ih'):,} a side and steps at most "
               f"{field_limit(DESCRIPTOR, 'isx')}" if phases_needed(network) else
               ", faster by the cycle model (its backward writes them all at once)")
        view = h["in_h"] * h["in_w"] * (h["in_c"] // c)  # pixels a channel, past the image included
        if view > math.prod(sides):
            why += (f"; the stride does not divide its sides, so {view - math.prod(sides):,} pixels a channel lie "
                    "past the image: zeros, their edge of the view a backward job of its own that leaves them zero")
        if qg.cam_layer is not None:
            why += "; Grad-CAM's map is upsampled on the view, its nearest table following the phases"
        if qg.graph.sample_shape:
            lines.append(f"image of {sides[1]:,} samples a channel as the {h['in_c'] // c} phases of its first "
                         f"convolution's stride, {h['in_c']} channels of {h['in_h']:,} samples{why}")
        else:
            lines.append(f"image of {sides[0]} x {sides[1]} as the {h['in_c'] // c} phases of its first "
                         f"convolution's stride, {h['in_c']} channels of {h['in_h']} x {h['in_w']}{why}")
    if h["fold_rows"] * h["fold_cols"] > 1:
        first = p.program.forward[0]
        kh, kw = p.program.qgraph.graph.layers[0].kernel
        if qg.graph.sample_shape:  # a 1-D model (its maps run as columns, a longer image as stride phases)
            lines.append(f"image folded {h['fold_rows'] * h['fold_cols']} samples a word: the host writes each "
                         f"sample's neighbours after its {h['in_c']} channels, so the first convolution's "
                         f"{kh * kw} taps take {first.ky * first.kx} passes")
        else:
            lines.append(f"image folded {h['fold_rows']} x {h['fold_cols']}: the host writes each pixel's neighbours "
                         f"after its {h['in_c']} channels, so the first convolution's {kh} x {kw} taps take "
                         f"{first.ky * first.kx} passes")
    ig_bram = p.resources.breakdown.get("BRAM_18K by memory", {}).get(resource_model.IG_LANES, 0)
    if p.engine.input_elems and ig_bram > p.resources.bram_18k // 4:
        lines.append(f"integrated gradients: the engine keeps the sums of the {p.engine.input_elems:,}-element blocked "
                     f"input on chip, {ig_bram:,} of its {p.resources.bram_18k:,} BRAM_18K (with the accumulators "
                     "they sit above" + ("; at their exact depth: a power of two deep, this engine would not fit "
                                         "the board" if p.engine.ig_exact else "") +
                     "); compiled without integrated_gradients it keeps none")
    k = p.kept
    slots = f", held for each of {p.program.batch} slots" if p.program.batch > 1 else ""
    lines.append(f"kept for the backward pass: {k.kept_bits:,} bits an image (ReLU {k.relu_bits:,} + pool indices "
                 f"{k.index_bits:,}{slots}) vs {k.activation_bits:,} bits of 16-bit activations: {k.ratio:.1f}x smaller")
    lines.append(f"DDR: the Program takes {p.program.total_bytes:,} bytes (offsets of {e.off_bits} bits); the host "
                 f"writes the first {len(p.program.image):,} once (header, job lists, the weights its jobs read)")
    lines += ["", f"engines weighed (the smallest within {p.slack:.0%} of the fastest that fits under the "
              f"{p.cap:.0%} cap; workload: predict + one run of each method):", describe_candidates(p)]
    return "\n".join(lines)
