"""The RTL half of an Engine v2 project folder: what ``xaihls sim DIR`` and ``xaihls synth DIR`` work on.

``xaihls compile`` writes ``DIR/rtl/`` next to the Vitis HLS files: the engine's fixed
SystemVerilog (copied unchanged from ``hls_templates/rtl_v2``), its lint waivers,
``sources.f`` (compile order), the simulation top and DDR model (``rtl/sim/``, never
synthesized) and the only per-network part, the top's parameters (``params.json``). The
Program's DDR image and the test vectors (images and the golden model's results, in the DDR's
blocked layout) are the HLS project's own, shared by both engines.

Simulation and synthesis read the project's copy of the sources, so what runs is what a user
takes to Vivado, and the Program from its DDR image, so what runs is what a board would load.
Their reports land in ``DIR/reports/``: ``verilator.json`` (cycles per method, per case and per
job, next to the cycle model) and ``yosys_stat.txt`` / ``yosys_inference_stat.txt``, which
``xaihls report`` reads.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xaihls.backends.rtl.v2.params import RTL_DIR, SIM_SOURCES, SOURCES, TOP, RtlV2Params, rtl_params
from xaihls.errors import XaiHlsError
from xaihls.methods import LAYER_METHODS, METHOD_CODES
from xaihls.plan.contract import DESCRIPTOR, HEADER, PROGRAM_MAGIC, PROGRAM_VERSION, from_blocked
from xaihls.plan.lowering import JobLists
from xaihls.project import DDR_IMAGE, REPORTS, read_estimate
from xaihls.project import load_project as load_project_folder

RTL_FOLDER = "rtl"
PARAMS_FILE = "rtl/params.json"
EXTRA_FILES = ("xaihls_lint.vlt",)
VERILATOR_REPORT = f"{REPORTS}/verilator.json"
YOSYS_REPORT = f"{REPORTS}/yosys_stat.txt"
YOSYS_INFERENCE_REPORT = f"{REPORTS}/yosys_inference_stat.txt"
STALL_PROBABILITY = 0.25  # xaihls sim --stalls: each DDR channel stalls a quarter of the cycles


def project_files(plan) -> dict[str, bytes]:
    """``rtl/`` files of a project for ``plan`` (a PlanV2)."""
    params = rtl_params(plan.program, plan.engine)
    files = {f"{RTL_FOLDER}/{name}": (RTL_DIR / name).read_bytes() for name in (*SOURCES, *EXTRA_FILES)}
    files[f"{RTL_FOLDER}/sources.f"] = ("\n".join(SOURCES) + "\n").encode()
    for name, path in SIM_SOURCES.items():
        files[f"{RTL_FOLDER}/sim/{name}"] = path.read_bytes()
    files[PARAMS_FILE] = (json.dumps(params.as_dict(), indent=1, sort_keys=True) + "\n").encode()
    files[f"{RTL_FOLDER}/xaihls_params.svh"] = params.svh().encode()  # the board flow's RTL IP reads it
    return files


# ---------------------------------------------------------------------------------------------
# Reading a project
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProgramImage(JobLists):
    """A Program read back from its DDR image: what the simulation (``sim.simulate``), the RTL
    parameters and the cycle model (``xaihls.plan.timing``) read of a ProgramV2."""

    shape: object      # xaihls.plan.lowering.Shape
    header: dict
    forward: tuple     # xaihls.plan.lowering.Job
    backward: tuple
    forward_batch: tuple
    backward_batch: tuple
    regions: tuple     # xaihls.plan.lowering.Region (from project.json)
    image: bytes
    cam: tuple = ()    # the Grad-CAM list (run after the backward list's first n_backward_cam jobs)

    @property
    def total_bytes(self) -> int:
        return self.header["total_bytes"]


def decode_image(image: bytes, where: str = "the DDR image", regions: tuple = ()) -> ProgramImage:
    """The Program in a DDR image (header, then the job lists); XaiHlsError naming ``where``
    if it is not a whole Program of this contract version."""
    from xaihls.plan.lowering import Shape, job_from_bytes, read_lists

    if len(image) < HEADER.bytes:
        raise XaiHlsError(f"{where}: {len(image)} bytes, shorter than a Program header ({HEADER.bytes})")
    h = HEADER.decode(image[: HEADER.bytes])
    if h["magic"] != PROGRAM_MAGIC:
        raise XaiHlsError(f"{where} does not start with an xaihls Program header (magic {h['magic']:#x})")
    if h["version"] != PROGRAM_VERSION or h["desc_words"] != DESCRIPTOR.words:
        raise XaiHlsError(f"{where} holds a version-{h['version']} Program with {h['desc_words']}-word descriptors; "
                          f"this xaihls runs version {PROGRAM_VERSION} ({DESCRIPTOR.words} words): "
                          "write the project again with xaihls compile")
    size = DESCRIPTOR.bytes

    def jobs(addr: int, n: int, what: str) -> tuple:
        if addr + n * size > len(image):
            raise XaiHlsError(f"{where}: the {what} list ({n} jobs at {addr:#x}) runs past the image's end "
                              f"({len(image)} bytes)")
        return tuple(job_from_bytes(image[addr + k * size: addr + (k + 1) * size]) for k in range(n))

    try:
        shape = Shape(h["tm"], h["tn"], h["beat_elems"])
    except XaiHlsError as exc:
        raise XaiHlsError(f"{where}: {exc}") from None
    return ProgramImage(shape, h, **read_lists(h, jobs), regions=tuple(regions), image=bytes(image))


@dataclass(frozen=True)
class RtlProject:
    folder: Path
    description: dict   # project.json
    params: RtlV2Params
    program: ProgramImage
    estimate: dict      # the plan's figures (estimate.json)

    @property
    def sources(self) -> list[Path]:
        """The project's copy of the engine's sources, in compile order (rtl/sources.f)."""
        names = (self.folder / RTL_FOLDER / "sources.f").read_text().split()
        return [self.folder / RTL_FOLDER / n for n in names]

    @property
    def clock_mhz(self) -> float:
        return float(self.description["clock_mhz"])


def _params(folder: Path) -> RtlV2Params:
    path = folder / PARAMS_FILE
    if not path.is_file():
        raise XaiHlsError(f"'{folder}': no {PARAMS_FILE}; write the project again with xaihls compile")
    try:
        values = json.loads(path.read_text())
        params = RtlV2Params(**values)
    except (ValueError, TypeError) as exc:
        raise XaiHlsError(f"{path}: not the parameters of the Engine v2 {TOP} ({exc})") from None
    bad = [k for k, v in params.as_dict().items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise XaiHlsError(f"{path}: {bad[0]} must be a non-negative integer, got {values[bad[0]]!r}")
    return params


def load_project(folder: str | Path) -> RtlProject:
    """A project written by ``xaihls compile``, with its RTL; one clear line (XaiHlsError) otherwise."""
    path, description = load_project_folder(folder)
    folder = path.resolve()  # the tools run in other working directories
    rtl = description.get("rtl", {})
    if rtl.get("unsupported"):
        raise XaiHlsError(f"'{path}': the RTL engine cannot run this network: {rtl['unsupported']}")
    params = _params(folder)
    for rel in (f"{RTL_FOLDER}/sources.f", DDR_IMAGE):
        if not (folder / rel).is_file():
            raise XaiHlsError(f"'{path}': missing {rel}; write the project again with xaihls compile")
    image = (folder / DDR_IMAGE).read_bytes()
    written = description.get("program", {})
    if written.get("image_sha256") and hashlib.sha256(image).hexdigest() != written["image_sha256"]:
        raise XaiHlsError(f"{folder / DDR_IMAGE} is not the Program image this project was written with "
                          f"({len(image)} bytes, {written.get('image_bytes')} written); write the project again "
                          "with xaihls compile")
    from xaihls.plan.lowering import Region

    regions = tuple(Region(r["name"], r["addr"], r["size"]) for r in written.get("regions", []))
    program = decode_image(image, str(folder / DDR_IMAGE), regions)
    s = program.shape
    if (params.TM, params.TN, params.beat_elems) != (s.tm, s.tn, s.beat_elems):
        raise XaiHlsError(f"{folder / PARAMS_FILE}: the engine is {params.TM}x{params.TN} with "
                          f"{params.AXI_DATA_WIDTH}-bit data; the Program is tiled for {s.tm}x{s.tn} with "
                          f"{16 * s.beat_elems}-bit beats")
    project = RtlProject(folder, description, params, program, read_estimate(folder))
    for source in project.sources:
        if not source.is_file():
            raise XaiHlsError(f"'{path}': rtl/sources.f names {source.name}, which is not in rtl/")
    return project


@dataclass(frozen=True)
class Case:
    """One testbench case of the project (tb_data/cases.txt): an image, a method, the golden results.
    Tensors are (C, H, W) here; the files hold them in the DDR's blocked layout."""

    image: int
    method: str
    code: int
    target: int
    steps: int
    inputs: dict[str, np.ndarray]   # image, baseline, ig_table
    expect: dict[str, np.ndarray]   # logits, result (predicted, target), attribution (if a method)


def _read(path: Path, dtype, count: int | None = None) -> np.ndarray:
    if not path.is_file():
        raise XaiHlsError(f"missing test vector {path}")
    data = np.fromfile(path, dtype=dtype).astype(np.int64)
    if count is not None and data.size != count:
        raise XaiHlsError(f"{path}: {data.size} values, expected {count}")
    return data


def load_cases(project: RtlProject) -> list[Case]:
    """The testbench's cases (tb_data/cases.txt), as the HLS testbench reads them. A ``grad_cam``
    attribution file holds the map repeated over the image view's channels, as the engine leaves it;
    the case keeps channel 0, the map, as the simulation's result does."""
    tb = project.folder / "tb_data"
    path = tb / "cases.txt"
    if not path.is_file():
        raise XaiHlsError(f"'{project.folder}': no tb_data/cases.txt")
    h, tn = project.program.header, project.program.shape.tn
    c, hh, ww = h["in_c"], h["in_h"], h["in_w"]

    def tensor(name: str) -> np.ndarray:
        return from_blocked(_read(tb / name, "<i2", -(-c // tn) * tn * hh * ww), c, hh, ww, tn)

    cases = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if len(f) != 11:
            raise XaiHlsError(f"{path}:{n}: expected 11 fields, found {len(f)}")
        k, image, name, code, target, steps, table, baseline, logits, result, attribution = f
        try:
            k, code, target, steps = int(k), int(code), int(target), int(steps)
        except ValueError:
            raise XaiHlsError(f"{path}:{n}: image, method code, target and steps must be integers") from None
        inputs = {"image": tensor(image), "ig_table": _read(tb / table, "<i4"),
                  "baseline": np.zeros((c, hh, ww), np.int64) if baseline == "-" else tensor(baseline)}
        expect = {"logits": _read(tb / logits, "<i2", h["classes"]), "result": _read(tb / result, "<i4", 2)}
        if attribution != "-":
            a = tensor(attribution)
            expect["attribution"] = a[:1] if code == METHOD_CODES["grad_cam"] else a
        cases.append(Case(k, name, code, target, steps, inputs, expect))
    return cases


# ---------------------------------------------------------------------------------------------
# xaihls sim
# ---------------------------------------------------------------------------------------------

def simulated_engine(project: RtlProject, ddr_latency: int):
    """The EngineV2 the simulation runs, as the cycle model needs it: the project's RTL parameters
    (the post-processing chunk follows its buffer depths) and the simulated DDR (``ddr_latency``,
    one beat a cycle: the SystemVerilog model has no bandwidth cap)."""
    return project.params.engine(project.clock_mhz, ddr_latency)


def job_macs(project: RtlProject) -> tuple[list[int], list[int]] | None:
    """The network's multiply-accumulates of each forward and backward job, as the plan counted them
    (estimate.json); None for a project whose estimate does not say (before it counted the
    network's MACs, its 'macs' were the array's, padding included)."""
    rows = project.estimate.get("layers") or []
    fwd = [r["macs"] for r in rows if r.get("direction") == "forward" and "array_macs" in r]
    bwd = [r["macs"] for r in rows if r.get("direction") == "backward" and "array_macs" in r]
    if len(fwd) != len(project.program.forward) or len(bwd) != len(project.program.backward):
        return None
    return fwd, bwd


def method_macs(macs: tuple[list[int], list[int]] | None, method: str, steps: int) -> int | None:
    """The network's multiply-accumulates in one run of ``method`` (predict: one forward pass);
    None for a Grad-CAM method, whose list's jobs estimate.json does not count."""
    if macs is None or method in LAYER_METHODS:
        return None
    fwd, bwd = sum(macs[0]), sum(macs[1])
    if method == "predict":
        return fwd
    return fwd + steps * (fwd + bwd) if method == "integrated_gradients" else fwd + bwd


def model_cycles(program, engine, method: str, steps: int) -> int:
    """The cycle model's cycles of one run of ``method`` on ``engine`` (at its DDR latency)."""
    from xaihls.plan.timing import method_cycles

    return method_cycles(program, engine, None if method == "predict" else method, steps)


def _bit_exact(case: Case, out: dict) -> bool:
    return (out["status"] == 0 and np.array_equal(out["logits"], case.expect["logits"])
            and np.array_equal(out["result"][:2], case.expect["result"])
            and ("attribution" not in case.expect or np.array_equal(out["attribution"], case.expect["attribution"])))


def simulate_project(folder: str | Path, methods: tuple[str, ...] | None = None, images: int | None = None,
                     stalls: bool | int = False, waves: bool = False, ddr_latency: int | None = None,
                     memory: str = "sv") -> dict:
    """Run the project's testbench cases on the simulated RTL; write and return reports/verilator.json.

    ``methods`` / ``images``: a subset of the cases (method names, 'predict' included; the
    first ``images`` images). ``stalls``: random ready/valid stalls on every DDR channel (an
    int: their seed). ``ddr_latency``: the DDR model's latency in cycles (default 24); the
    model's cycles in the report are the cycle model's for the same DDR. ``memory="axiram"``:
    cocotbext-axi's AxiRam instead (protocol test, slow). ``waves``: a VCD trace of the session,
    ``DIR/rtl/sim/dump.vcd`` (a separate Verilator build with tracing).
    """
    from xaihls.backends.rtl.v2 import sim
    from xaihls.backends.rtl.v2.cycles import compare
    from xaihls.plan.engine import DDR_LATENCY

    project = load_project(folder)
    cases = load_cases(project)
    known = sorted({c.method for c in cases})
    if methods:
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise XaiHlsError(f"method '{unknown[0]}' has no test case in {project.folder}; it has: {', '.join(known)}")
        cases = [c for c in cases if c.method in methods]
    if images is not None:
        if images < 1:
            raise XaiHlsError(f"--images must be at least 1, got {images}")
        cases = [c for c in cases if c.image < images]
    if not cases:
        raise XaiHlsError(f"'{project.folder}': no test case to run (tb_data/cases.txt)")
    program = project.program
    runs = [{**c.inputs, "method": c.code, "target": c.target, "steps": c.steps} for c in cases]
    seed = 1 if stalls is True else int(stalls)
    out = sim.simulate(program, project.params, runs, stalls=STALL_PROBABILITY if stalls else 0.0, seed=seed,
                       ddr_latency=ddr_latency, memory=memory, check=False, files=project.sources, waves=waves,
                       work_dir=project.folder / RTL_FOLDER / "sim" if waves else None)
    latency = out.ddr_latency if out.ddr_latency is not None else project.estimate.get("ddr_latency", DDR_LATENCY)
    engine = simulated_engine(project, latency)
    mhz = project.clock_mhz
    tm_tn = project.params.TM * project.params.TN
    rows = []
    per_job = job_macs(project)
    util = lambda macs, cycles: None if macs is None else round(macs / tm_tn / cycles, 6)  # noqa: E731
    for case, o in zip(cases, out):
        macs = method_macs(per_job, case.method, case.steps)
        rows.append({"image": case.image, "method": case.method, "steps": case.steps, "cycles": o["cycles"],
                     "latency_us": round(o["cycles"] / mhz, 3), "mac_utilization": util(macs, o["cycles"]),
                     "status": o["status"], "bit_exact": bool(_bit_exact(case, o)), "profile": o["profile"]})
    per_method = {}
    for method in dict.fromkeys(c.method for c in cases):
        mine = [r for r in rows if r["method"] == method]
        cyc = int(statistics.median(r["cycles"] for r in mine))
        per_method[method] = {"cycles": cyc, "latency_ms": cyc / (mhz * 1e3), "runs": len(mine),
                              "mac_utilization": None if any(r["mac_utilization"] is None for r in mine) else
                              statistics.median(r["mac_utilization"] for r in mine),
                              "model_cycles": model_cycles(program, engine, method, mine[0]["steps"]),
                              "bit_exact": all(r["bit_exact"] for r in mine)}
    first = next((r for r in rows if r["method"] != "predict"), rows[0])
    descriptors = [{**r.__dict__, "deviation": round(r.deviation, 6), "mac_utilization": util(r.macs, r.rtl)}
                   for r in compare(program, engine, first["profile"], macs=per_job)]
    speed = {"cycles": out.cycles, "run_s": round(out.run_s, 3), "cycles_per_second": round(out.cycles_per_second),
             "process_s": round(out.process_s, 3), "build_s": round(out.build_s, 3)}
    report = {"tool": "verilator", "top": TOP, "params": project.params.as_dict(), "clock_mhz": mhz,
              "stalls": bool(stalls), "memory": {**out.conditions(), "stall_seed": seed if stalls else None},
              "simulation": speed, "cycles": {m: v["cycles"] for m, v in per_method.items()},
              "methods": per_method, "cases": [{k: v for k, v in r.items() if k != "profile"} for r in rows],
              "descriptors_of": first["method"], "descriptors": descriptors}
    path = project.folder / VERILATOR_REPORT
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    return report


# ---------------------------------------------------------------------------------------------
# xaihls synth
# ---------------------------------------------------------------------------------------------

def yosys_family(project: RtlProject) -> str:
    """synth_xilinx's family for the project's board (its device family, as project.json says)."""
    from xaihls.plan.boards import YOSYS_FAMILY_OF, load_board

    board = project.description.get("board", {})
    if board.get("family") in YOSYS_FAMILY_OF:
        return YOSYS_FAMILY_OF[board["family"]]
    return load_board(board.get("name", "")).yosys_family


COUNTED_AS = {"xc7": "xc7", "xcup": "xc7"}
"""The family yosys counts an engine in, by its board's. yosys (0.70) packs each MAC's input,
pipeline and output registers and its post-adder into a DSP48E1 (xc7), but its ``xilinx_dsp``
pass packs nothing into a DSP48E2 (xcup): they stay in the fabric, 2.1x the LUTs and 3.3x the
FFs of the xc7 mapping on a 16 x 16 engine (benchmarks/RESULTS.md, "UltraScale+ counted as
7-series"). Vivado packs both. UltraScale+ has the 7-series' LUT6, flip-flops, 18/36 Kb block RAMs
and 25 x 18 multiplier path (DSP48E2's is 27 x 18), so the xc7 mapping stands in for it, as the
resource model (fitted on xc7) does."""

COUNTED_AS_NOTE = ("UltraScale+ counted with yosys's 7-series mapping: its xcup mapping leaves each MAC's registers "
                   "and adder outside the DSP48E2 (Vivado packs them); --family xcup shows yosys's own")
XCUP_NOTE = ("yosys's xcup mapping leaves each MAC's registers and adder outside the DSP48E2 (Vivado packs them), so "
             "its LUT and FF are far above the estimate, which is fitted on xc7")


def counting_family(project: RtlProject) -> str:
    """The synth_xilinx family ``xaihls synth`` counts the project's engine in (``COUNTED_AS``)."""
    family = yosys_family(project)
    return COUNTED_AS.get(family, family)


def synthesize_project(folder: str | Path, inference_only: bool = False, family: str | None = None):
    """yosys synth_xilinx of the project's engine on its rtl/ sources, in ``family`` (default: the
    board's ``counting_family``); the stat lands in reports/ (yosys_stat.txt, or
    yosys_inference_stat.txt without the backward path)."""
    from xaihls.backends.rtl.v2 import synth

    project = load_project(folder)
    family = family or counting_family(project)
    params = project.params.inference_only() if inference_only else project.params
    name = "synth-inference" if inference_only else "synth"
    result = synth.synthesize(params, family, project.folder / RTL_FOLDER / name, files=project.sources)
    report = project.folder / (YOSYS_INFERENCE_REPORT if inference_only else YOSYS_REPORT)
    report.parent.mkdir(exist_ok=True)
    report.write_text(result.stat_text)
    return result
