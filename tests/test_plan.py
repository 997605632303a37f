"""The plan: the Program executes bit-exactly, the planner respects boards, the cost model is the schedule."""

import math

import pytest
import torch

import xaihls
from xaihls.errors import XaiHlsError
from xaihls.executor import saturation_kinds
from xaihls.frontend.ir import MaxPool2d
from xaihls.methods import METHODS
from xaihls.models.zoo import get_zoo_model
from xaihls.plan import cost
from xaihls.plan.boards import list_boards, load_board
from xaihls.plan.planner import describe, plan
from xaihls.plan.program import Descriptor, Flag, Header, Op


def compiled(name, tiling=None, methods=tuple(METHODS)):
    entry = get_zoo_model(name)
    calib = entry.calibration()[:16]
    return xaihls.compile(entry.build(), entry.input_shape, calibration=calib, methods=methods, tiling=tiling), entry


@pytest.mark.parametrize("name,tiling", [
    ("digits", None), ("digits", (4, 2)),
    ("digits_strided_bn", (8, 4)), ("digits_strided_bn", (2, 16)),
    ("digits_gap", (4, 4)), ("cifar_ref", (8, 8)),
])
def test_program_equals_golden_bit_for_bit(name, tiling):
    acc, entry = compiled(name, tiling)
    x = entry.samples()[0][:2 if name != "cifar_ref" else 1]
    g, p = acc.run(x), acc.run(x, backend="program")
    assert torch.equal(g.logits, p.logits) and torch.equal(g.target, p.target)
    for method in METHODS:
        g = acc.run(x, method, steps=3)
        p = acc.run(x, method, steps=3, backend="program")
        assert torch.equal(g.attribution, p.attribution), f"{name} {tiling} {method}"
    # a given target, a given baseline and another Riemann rule go through the same path
    base = torch.full_like(x, 0.25)
    g = acc.run(x, "integrated_gradients", target=1, steps=4, baseline=base, rule="middle")
    p = acc.run(x, "integrated_gradients", target=1, steps=4, baseline=base, rule="middle", backend="program")
    assert torch.equal(g.attribution, p.attribution) and (p.target == 1).all()
    # the engine counts the values it saturates: golden's per-tensor counts, except the conv outputs
    # a fused max-pool leaves out (they never reach memory)
    fused_pool = any(isinstance(layer, MaxPool2d) for layer in acc.graph.layers)
    golden_kinds = saturation_kinds(g.saturations)
    for kind in set(golden_kinds) | set(p.saturations):
        if fused_pool and kind == "forward":
            assert p.saturations.get(kind, 0) <= golden_kinds.get(kind, 0)
        else:
            assert p.saturations.get(kind, 0) == golden_kinds.get(kind, 0), kind


def test_program_binary_round_trips_and_holds_the_weights():
    acc, _ = compiled("digits_strided_bn", (4, 4), methods=("gradient",))
    program = acc.plan.program
    header = Header.decode(program.image[: 4 * Header.WORDS])
    assert header == program.header and header.magic == 0x50494158 and header.version == 1
    size = 4 * Descriptor.WORDS
    for k, d in enumerate(program.forward):
        raw = program.image[header.forward_addr + k * size: header.forward_addr + (k + 1) * size]
        assert Descriptor.decode(raw) == d
    conv = next(d for d in program.forward if d.op == Op.CONV)
    q = acc.qgraph.layers[conv.layer]
    stored = torch.frombuffer(bytearray(program.image[conv.w_addr: conv.w_addr + 2 * q.weight.numel()]),
                              dtype=torch.int16)
    assert torch.equal(stored.to(torch.int64), q.weight.flatten())
    # transposed convolution phases: stride 2 gives four backward jobs for that layer, no weight copy
    strided = next(i for i, layer in enumerate(acc.graph.layers) if getattr(layer, "stride", (1, 1)) == (2, 2))
    phases = [d for d in program.backward if d.layer == strided and d.op == Op.CONV]
    forward_job = next(d for d in program.forward if d.layer == strided)
    assert len(phases) == 4 and {d.w_addr for d in phases} == {forward_job.w_addr}
    assert all(d.osy == 2 and d.iky == -1 for d in phases)


def brute_force_conv_cycles(d, tm, tn, bpc):
    """The schedule of docs/program.md, tile by tile (the closed form in cost.py must equal it)."""
    pooled = bool(d.flags & Flag.POOL)
    conv_rows = (d.pool_oh - 1) * d.pool_s + d.pool_k if pooled else d.oh
    block = max(min(abs(d.ws_m), abs(d.ws_n)), 1)
    tiles = []  # (compute, load) in execution order, with the row-tile boundaries marked
    groups = []
    for mt in range(d.m_tiles):
        m_lanes = min(tm, d.m - mt * tm)
        for rt in range(d.row_tiles):
            r0 = rt * d.tile_step
            rows = min(d.tile_rows, conv_rows - r0)
            real = cost._rows_in_map(d, r0, rows)
            group = []
            for nt in range(d.n_tiles):
                n_lanes = min(tn, d.n - nt * tn)
                run = 2 * real * d.iw
                by_m = abs(d.ws_n) == block
                w_run = (n_lanes if by_m else m_lanes) * block * 2
                w_runs = m_lanes if by_m else n_lanes
                bias = bool(d.flags & Flag.BIAS) and nt == 0  # the first n-tile loads the bias too
                nbytes = n_lanes * run + w_run * w_runs + 2 * m_lanes * bias
                # lanes that each load their whole plane load them as one run
                in_bursts = math.ceil(n_lanes * run / 2048) if real == d.ih else n_lanes * math.ceil(run / 2048)
                bursts = in_bursts + w_runs * math.ceil(w_run / 2048) + bias
                load = max(math.ceil(nbytes / bpc), bursts)
                # Little's law: at most READ_OUTSTANDING bursts in flight, each for the latency and
                # its beats, and TILES_AHEAD tiles, each for the latency; not for the first tiles
                flight = math.ceil((bursts * (cost.DDR_LATENCY + cost.READ_TURNAROUND) + math.ceil(nbytes / 8))
                                   / cost.READ_OUTSTANDING)
                ahead = math.ceil((cost.DDR_LATENCY + cost.TILE_TURNAROUND) / cost.TILES_AHEAD)
                bounded = load if len(tiles) + len(group) < cost.TILES_AHEAD else max(load, flight, ahead)
                group.append((d.ky * d.kx * rows * d.ow + cost.PIPELINE_DEPTH, bounded, load))
            if pooled:
                p0 = r0 // d.pool_s
                out_rows = min(d.pool_oh, p0 + (rows - d.pool_k) // d.pool_s + 1) - p0
                beats = math.ceil(2 * m_lanes * out_rows * d.pool_ow / bpc)
                span = d.pool_ow
            elif d.osx > 1:  # strided row: 8-byte beats over the span of its outputs, per lane and row
                out_rows, span = rows, (d.ow - 1) * d.osx + 1
                beats = m_lanes * rows * math.ceil(span / 4) * math.ceil(8 / bpc)
            else:
                out_rows, span = rows, d.ow
                beats = math.ceil(2 * m_lanes * rows * d.ow / bpc)
            # write commands: a lane's rows as one run when short and contiguous, else one a row;
            # at most WRITE_OUTSTANDING responses awaited at once
            merged = span < cost.MERGE_SPAN and d.osx == 1
            w_bursts = m_lanes * (math.ceil(2 * out_rows * span / 2048) if merged else out_rows * math.ceil(2 * span / 2048))
            slots = math.ceil(w_bursts * (cost.DDR_LATENCY + 1) / cost.WRITE_OUTSTANDING)
            wb = max(rows * d.ow, beats, slots) + cost.WRITE_DRAIN
            # the job's last write-back: its last round trip is the job's (STREAM_LATENCY)
            last_wb = max(rows * d.ow, beats, slots - cost.DDR_LATENCY - 1) + cost.WRITE_DRAIN
            groups.append((len(tiles) + len(group) - 1, wb, last_wb))
            tiles += group
    # first load exposed; tile k costs max(its compute, the load of tile k+1), the last its compute
    busy = [max(c, tiles[k + 1][1]) if k + 1 < len(tiles) else c for k, (c, *_) in enumerate(tiles)]
    ends = [last for last, *_ in groups]
    starts = [0] + [last + 1 for last in ends[:-1]]
    sums = [sum(busy[a: e + 1]) for a, e in zip(starts, ends)]
    total = tiles[0][2] + cost.STREAM_LATENCY + sum(busy) + groups[-1][2]  # the first load at the port's rate
    # a row tile's write-back runs under the next row tile's tiles
    total += sum(max(0, groups[k][1] - sums[k + 1]) for k in range(len(groups) - 1))
    return total + cost.DESCRIPTOR_FETCH


def test_cost_of_a_hand_computed_convolution():
    """conv 4->8 channels on 8x8, 3x3, pad 1, Tm=4, Tn=2, 4 rows a tile, 8 bytes a cycle.

    Tiles: 2 m-tiles x 2 row tiles x 2 n-tiles. compute = 9*4*8 + 8 = 296 cycles.
    A tile loads 2 channels x 5 input rows (4 + halo 1, clipped at the map edge) x 8 cols x 2 B
    = 160 B and 4 x 2 kernels x 9 taps x 2 B = 144 B: 304 B = 38 cycles (< compute, hidden);
    the first n-tile of a row tile also the 4 biases: 312 B = 39 cycles.
    Write-back of a row tile: 32 positions (4 lanes x 32 x 2 B = 256 B = 32 cycles) + 4 = 36,
    hidden under the next row tile's 592 cycles except the last.
    At the default DDR latency (24): the job exposes two round trips, its first load and its
    last write's response (22 + 2 x 24 = 70), and its descriptor read one (31 + 24 = 55).
    Total = first load 39 + 70 + 8 tiles x 296 + last write-back 36 + fetch 55 = 2568.
    """
    d = Descriptor(Op.CONV, Flag.BIAS, n=4, m=8, ih=8, iw=8, oh=8, ow=8, ky=3, kx=3, iy0=-1, ix0=-1,
                   ws_m=36, ws_n=9, ws_ky=3, ws_kx=1, oph=8, opw=8, tile_rows=4, tile_step=4, row_tiles=2,
                   m_tiles=2, n_tiles=2)
    c = cost.conv_cost(d, tm=4, tn=2, bpc=8.0, direction="forward")
    assert cost.DDR_LATENCY == 24 and cost.stream_latency() == 70 and cost.descriptor_fetch() == 55
    assert c.cycles == 39 + 70 + 8 * 296 + 36 + 55 == 2568
    assert c.macs == 8 * 4 * (8 * 3 - 2) ** 2  # taps on the padding are not useful MACs
    assert c.bound_cycles == math.ceil(c.macs / 8)


def test_closed_form_cost_equals_the_schedule_tile_by_tile():
    for name in ("cifar_ref", "digits_gap", "digits_strided_bn"):
        acc, _ = compiled(name, (8, 4), methods=("gradient",))
        p = acc.plan
        for d in p.program.forward + p.program.backward:
            if d.op == Op.CONV:
                got = cost.conv_cost(d, 8, 4, p.engine.bytes_per_cycle, "x").cycles
                assert got == brute_force_conv_cycles(d, 8, 4, p.engine.bytes_per_cycle), (name, d.layer)


@pytest.fixture(scope="module")
def reference_plans():
    acc, _ = compiled("cifar_ref", methods=("saliency", "integrated_gradients"))
    return acc, {b.name: plan(acc.qgraph, b, clock_mhz=100) for b in list_boards()}


def test_every_board_plan_fits_under_the_cap_and_reports_utilisation(reference_plans):
    acc, plans = reference_plans
    assert len(plans) >= 7
    for name, p in plans.items():
        have = p.board.resources.as_dict()
        for key, used in p.resources.as_dict().items():
            assert used <= 0.8 * have[key] or have[key] == 0 and used == 0, (name, key)
        text = describe(p)
        assert "MAC util" in text and "bound" in text and "resources (estimate / board)" in text


def test_larger_boards_are_never_slower(reference_plans):
    _, plans = reference_plans

    def dominates(big, small):
        rb, rs = big.board.resources, small.board.resources
        return (all(getattr(rb, k) >= getattr(rs, k) for k in ("lut", "ff", "dsp", "bram_18k", "uram"))
                and big.engine.bytes_per_cycle >= small.engine.bytes_per_cycle)

    pairs = 0
    for a in plans.values():
        for b in plans.values():
            if a is not b and dominates(b, a):
                pairs += 1
                workload = lambda p: sum(p.method_cycles[m] for m in ("predict", "saliency", "integrated_gradients"))  # noqa
                assert workload(b) <= workload(a), (b.board.name, a.board.name)
    assert pairs >= 5


def test_kept_state_is_much_smaller_than_16_bit_activations(reference_plans):
    _, plans = reference_plans
    kept = plans["pynq-z2"].kept
    assert kept.relu_bits == 16 * 32 * 32 * 2 + 32 * 16 * 16 * 2 + 64 * 8 * 8 + 64
    assert kept.ratio >= 8


def test_planner_is_deterministic(reference_plans):
    acc, plans = reference_plans
    again = plan(acc.qgraph, load_board("pynq-z2"), clock_mhz=100)
    assert again.engine == plans["pynq-z2"].engine and again.program.image == plans["pynq-z2"].program.image


def test_unknown_and_infeasible_boards_are_clear_errors(tmp_path):
    with pytest.raises(XaiHlsError, match="unknown board 'vu13p'"):
        xaihls.compile(get_zoo_model("digits").build(), (1, 16, 16), board="vu13p",
                       calibration=torch.rand(2, 1, 16, 16))
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        "name: tiny\ndescription: too small\npart: xc7s6cpga196-1\nfamily: artix7\nyosys_family: xc7\n"
        "clock_mhz: 100\nresources: {LUT: 3000, FF: 4000, DSP: 4, BRAM_18K: 10, URAM: 0}\n"
        "ddr_bandwidth_gbps: 1.0\nsource: test\n"
    )
    acc, _ = compiled("digits", methods=("gradient",))
    with pytest.raises(XaiHlsError) as e:
        plan(acc.qgraph, load_board(tiny))
    msg = str(e.value)
    assert "board 'tiny': no tiling fits under the 80% cap; the smallest engine" in msg
    assert "needs" in msg and "the board has 4 DSP, 10 BRAM_18K, 3000 LUT" in msg and "\n" not in msg


def test_program_equals_golden_on_many_integrated_gradient_steps():
    """32 steps over ten images reach path points where a fully connected pre-activation is
    positive in the accumulator but rounds to zero: the ReLU bit must come from the accumulator
    in every executor (a regression: golden once took it from the rounded value)."""
    acc, entry = compiled("digits", methods=("integrated_gradients",))
    x = entry.samples()[0]
    g = acc.run(x, "integrated_gradients", steps=32)
    p = acc.run(x, "integrated_gradients", steps=32, backend="program")
    assert torch.equal(g.attribution, p.attribution)
