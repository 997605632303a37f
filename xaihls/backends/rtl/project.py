"""The RTL half of a project folder: what ``xaihls sim DIR`` and ``xaihls synth DIR`` work on.

``xaihls compile`` writes ``DIR/rtl/`` next to the Vitis HLS files: the engine's fixed
SystemVerilog (copied unchanged from ``xaihls/hls_templates/rtl``), its lint waivers,
``sources.f`` (compile order), the simulation top and DDR model (``rtl/sim/``, never
synthesized), and the only per-network part, the top's parameters (``xaihls_params.svh`` and
``params.json``). The Program's DDR image and the test vectors
(images and the golden model's results) are the HLS project's own, shared by both engines.

Simulation and synthesis read the project's copy of the sources, so what runs is what a user
takes to Vivado. Their reports land in ``DIR/reports/``: ``verilator.json`` (cycles per method,
per case and per descriptor) and ``yosys_stat.txt`` / ``yosys_inference_stat.txt``, which
``xaihls report`` reads.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xaihls.backends.rtl.params import RTL_DIR, SIM_SOURCES, SOURCES, TOP, RtlParams, rtl_params
from xaihls.errors import XaiHlsError

RTL_FOLDER = "rtl"
PARAMS_FILE = "rtl/params.json"
VERILATOR_REPORT = "reports/verilator.json"
YOSYS_REPORT = "reports/yosys_stat.txt"
YOSYS_INFERENCE_REPORT = "reports/yosys_inference_stat.txt"
EXTRA_FILES = ("xaihls_lint.vlt", "README.md")
STALL_PROBABILITY = 0.25  # xaihls sim --stalls: each DDR channel stalls a quarter of the cycles


def project_files(plan) -> dict[str, bytes]:
    """``rtl/`` files of a project for ``plan`` (one the RTL can run: ``Accelerator.refusals``)."""
    params = rtl_params(plan.program, plan.engine)
    files = {f"{RTL_FOLDER}/{name}": (RTL_DIR / name).read_bytes() for name in (*SOURCES, *EXTRA_FILES)}
    files[f"{RTL_FOLDER}/sources.f"] = ("\n".join(SOURCES) + "\n").encode()
    for name in SIM_SOURCES:
        files[f"{RTL_FOLDER}/sim/{name}"] = (RTL_DIR / "sim" / name).read_bytes()
    files[f"{RTL_FOLDER}/xaihls_params.svh"] = params.svh().encode()
    files[PARAMS_FILE] = (json.dumps(params.as_dict(), indent=1) + "\n").encode()
    return files


@dataclass(frozen=True)
class Case:
    """One testbench case of the project (tb_data/cases.txt): an image, a method, the golden results."""

    image: int
    method: str
    code: int
    target: int
    steps: int
    inputs: dict[str, np.ndarray]   # image, baseline, ig_table
    expect: dict[str, np.ndarray]   # logits, result, attribution (if a method)


@dataclass(frozen=True)
class ProgramImage:
    """A Program read back from its DDR image: what the simulation and the cycle comparison need."""

    header: object
    forward: tuple
    backward: tuple
    image: bytes


def decode_image(image: bytes, where: str = "the DDR image") -> ProgramImage:
    from xaihls.plan.program import PROGRAM_MAGIC, Descriptor, Header

    header = Header.decode(image[: 4 * Header.WORDS].ljust(4 * Header.WORDS, b"\0"))
    if header.magic & 0xFFFFFFFF != PROGRAM_MAGIC or len(image) < header.forward_addr:
        raise XaiHlsError(f"{where} does not start with an xaihls Program header")
    size = 4 * Descriptor.WORDS

    def descriptors(addr: int, n: int) -> tuple:
        return tuple(Descriptor.decode(image[addr + i * size: addr + (i + 1) * size]) for i in range(n))

    return ProgramImage(header, descriptors(header.forward_addr, header.n_forward),
                        descriptors(header.backward_addr, header.n_backward), image)


@dataclass(frozen=True)
class RtlProject:
    folder: Path
    description: dict
    params: RtlParams
    program: ProgramImage
    estimate: dict  # the plan's figures (estimate.json)

    @property
    def sources(self) -> list[Path]:
        names = (self.folder / RTL_FOLDER / "sources.f").read_text().split()
        return [self.folder / RTL_FOLDER / n for n in names]

    @property
    def clock_mhz(self) -> float:
        return float(self.description["clock_mhz"])


def load_project(folder: str | Path) -> RtlProject:
    """A project written by ``xaihls compile``, with its RTL; a clear error otherwise."""
    from xaihls.backends.hls.writer import DDR_IMAGE, read_project

    if not Path(folder).is_dir():
        raise XaiHlsError(f"'{folder}' is not a folder; give a project folder written by xaihls compile")
    folder = Path(folder).resolve()  # the tools run in other working directories
    description = read_project(folder)
    if description is None:
        raise XaiHlsError(f"'{folder}' holds no xaihls project (project.json); write one with xaihls compile")
    rtl = description.get("rtl", {})
    if rtl.get("unsupported"):
        raise XaiHlsError(f"'{folder}': the RTL engine cannot run this network: {rtl['unsupported']}")
    params_path = folder / PARAMS_FILE
    if not params_path.is_file():
        raise XaiHlsError(f"'{folder}': no {PARAMS_FILE}; write the project again with this version of xaihls compile")
    try:
        params = RtlParams(**json.loads(params_path.read_text()))
    except (ValueError, TypeError) as exc:
        raise XaiHlsError(f"{params_path}: not the parameters of {TOP} ({exc})") from None
    missing = [p for p in [folder / RTL_FOLDER / "sources.f", folder / DDR_IMAGE, folder / "estimate.json"]
               if not p.is_file()]
    if missing:
        raise XaiHlsError(f"'{folder}': missing {missing[0].relative_to(folder)}")
    program = decode_image((folder / DDR_IMAGE).read_bytes(), str(folder / DDR_IMAGE))
    try:
        estimate = json.loads((folder / "estimate.json").read_text())
    except ValueError as exc:
        raise XaiHlsError(f"{folder / 'estimate.json'}: not valid JSON ({exc})") from None
    project = RtlProject(folder, description, params, program, estimate)
    for path in project.sources:
        if not path.is_file():
            raise XaiHlsError(f"'{folder}': rtl/sources.f names {path.name}, which is not in rtl/")
    return project


def _read(path: Path, dtype) -> np.ndarray:
    if not path.is_file():
        raise XaiHlsError(f"missing test vector {path}")
    return np.fromfile(path, dtype=dtype).astype(np.int64)


def load_cases(project: RtlProject) -> list[Case]:
    """The testbench's cases (tb_data/cases.txt), as the HLS testbench reads them."""
    tb = project.folder / "tb_data"
    path = tb / "cases.txt"
    if not path.is_file():
        raise XaiHlsError(f"'{project.folder}': no tb_data/cases.txt")
    elems = int(np.prod(project.description["network"]["input_shape"]))
    cases = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if len(f) != 11:
            raise XaiHlsError(f"{path}:{n}: expected 11 fields, found {len(f)}")
        k, image, name, code, target, steps, table, baseline, logits, result, attribution = f
        inputs = {"image": _read(tb / image, "<i2"), "ig_table": _read(tb / table, "<i4"),
                  "baseline": np.zeros(elems, np.int64) if baseline == "-" else _read(tb / baseline, "<i2")}
        expect = {"logits": _read(tb / logits, "<i2"), "result": _read(tb / result, "<i4")}
        if attribution != "-":
            expect["attribution"] = _read(tb / attribution, "<i2")
        cases.append(Case(int(k), name, int(code), int(target), int(steps), inputs, expect))
    return cases


def method_macs(plan_summary: dict, method: str, steps: int) -> int:
    """Useful multiply-accumulates of one run of ``method`` (predict: one forward pass)."""
    fwd = sum(layer["macs"] for layer in plan_summary["layers"] if layer["direction"] == "forward")
    bwd = sum(layer["macs"] for layer in plan_summary["layers"] if layer["direction"] == "backward")
    if method == "predict":
        return fwd
    if method == "integrated_gradients":
        return fwd + steps * (fwd + bwd)
    return fwd + bwd


def simulate_project(folder: str | Path, methods: tuple[str, ...] | None = None, images: int | None = None,
                     stalls: bool | int = False, waves: bool = False, ddr_latency: int | None = None,
                     memory: str = "sv") -> dict:
    """Run the project's testbench cases on the simulated RTL; write and return reports/verilator.json.

    ``methods`` / ``images``: a subset of the cases (method names, 'predict' included; the
    first ``images`` images). ``stalls``: random ready/valid stalls on every DDR channel (an
    int: their seed). ``ddr_latency``: the DDR model's latency in cycles (default the cost
    model's DDR_LATENCY); the model's cycles in the report are computed for the same latency.
    ``memory="axiram"``: cocotbext-axi's AxiRam instead (protocol test, slow). ``waves``: a VCD
    trace of the session, ``DIR/rtl/sim/dump.vcd`` (a separate Verilator build with tracing).
    """
    from xaihls.backends.rtl import sim
    from xaihls.backends.rtl.cycles import compare
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
    program = project.program
    runs = [{**c.inputs, "method": c.code, "target": c.target, "steps": c.steps,
             "expect_logits": c.expect["logits"], "expect_result": c.expect["result"],
             "expect_attribution": c.expect.get("attribution")} for c in cases]
    work = project.folder / RTL_FOLDER / "sim"
    seed = 1 if stalls is True else int(stalls)
    out = sim.simulate(program, project.params, runs, stalls=STALL_PROBABILITY if stalls else 0.0, seed=seed,
                       waves=waves, check=False, work_dir=work if waves else None, files=project.sources,
                       ddr_latency=ddr_latency, memory=memory)
    estimate = project.estimate
    engine = _engine(project, estimate, out.ddr_latency)
    mhz = project.clock_mhz
    tm_tn = project.params.TM * project.params.TN
    rows = []
    for case, o in zip(cases, out):
        exact = (o["status"] == 0 and np.array_equal(o["logits"], case.expect["logits"])
                 and np.array_equal(o["result"][:2], case.expect["result"])
                 and ("attribution" not in case.expect or np.array_equal(o["attribution"], case.expect["attribution"])))
        macs = method_macs(estimate, case.method, case.steps)
        rows.append({"image": case.image, "method": case.method, "steps": case.steps, "cycles": o["cycles"],
                     "latency_us": round(o["cycles"] / mhz, 3), "mac_utilization": round(macs / tm_tn / o["cycles"], 6),
                     "status": o["status"], "bit_exact": bool(exact), "profile": o["profile"]})
    per_method = {}
    for method in dict.fromkeys(c.method for c in cases):
        mine = [r for r in rows if r["method"] == method]
        cyc = int(statistics.median(r["cycles"] for r in mine))
        per_method[method] = {"cycles": cyc, "latency_ms": cyc / (mhz * 1e3), "runs": len(mine),
                              "mac_utilization": statistics.median(r["mac_utilization"] for r in mine),
                              "model_cycles": model_cycles(program, engine, method, mine[0]["steps"]),
                              "bit_exact": all(r["bit_exact"] for r in mine)}
    first = next((r for r in rows if r["method"] != "predict"), rows[0] if rows else None)
    descriptors = [] if first is None else [
        {**r.__dict__, "mac_utilization": round(r.macs / tm_tn / r.rtl, 6)}
        for r in compare(program, engine, first["profile"])]
    speed = {"cycles": out.cycles, "run_s": round(out.run_s, 3), "cycles_per_second": round(out.cycles_per_second),
             "process_s": round(out.process_s, 3), "build_s": round(out.build_s, 3)}
    report = {"tool": "verilator", "top": TOP, "params": project.params.as_dict(), "clock_mhz": mhz,
              "stalls": bool(stalls), "memory": {**out.conditions(), "stall_seed": seed if stalls else None},
              "simulation": speed, "cycles": {m: v["cycles"] for m, v in per_method.items()},
              "methods": per_method, "cases": [{k: v for k, v in r.items() if k != "profile"} for r in rows],
              "descriptors_of": first["method"] if first else None, "descriptors": descriptors}
    path = project.folder / VERILATOR_REPORT
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    return report


def _engine(project: RtlProject, estimate: dict, ddr_latency: int | None = None):
    """The EngineConfig the plan had (what the cost model needs), at ``ddr_latency`` if given."""
    from xaihls.plan.engine import DDR_LATENCY, EngineConfig

    p = project.params
    latency = ddr_latency if ddr_latency is not None else estimate.get("ddr_latency", DDR_LATENCY)
    return EngineConfig(p.TM, p.TN, estimate["in_depth"], estimate["out_depth"], estimate["w_depth"], p.MASK_BITS,
                        p.INDEX_ENTRIES, p.INDEX_BITS, estimate["clock_mhz"], estimate["bytes_per_cycle"],
                        bool(p.BACKWARD), latency)


def model_cycles(program: ProgramImage, engine, method: str, steps: int) -> int:
    """The cost model's cycles of one run of ``method`` on this Program and engine (its DDR latency)."""
    from xaihls.plan.cost import job_cost
    from xaihls.plan.planner import method_cycles

    def total(ds, direction):
        return sum(job_cost(d, engine.tm, engine.tn, engine.bytes_per_cycle, direction, engine.out_depth,
                            engine.ddr_latency).cycles for d in ds)

    return method_cycles(program.header, total(program.forward, "forward"), total(program.backward, "backward"),
                         engine.bytes_per_cycle, steps, engine.ddr_latency)[method]


def synthesize_project(folder: str | Path, inference_only: bool = False, family: str | None = None):
    """yosys synth_xilinx of the project's engine (family from its board); the stat lands in reports/."""
    from xaihls.backends.rtl.synth import synthesize
    from xaihls.plan.boards import load_board

    project = load_project(folder)
    family = family or load_board(project.description["board"]["name"]).yosys_family
    params = project.params.inference_only() if inference_only else project.params
    name = "synth-inference" if inference_only else "synth"
    result = synthesize(params, family, project.folder / RTL_FOLDER / name, files=project.sources)
    report = project.folder / (YOSYS_INFERENCE_REPORT if inference_only else YOSYS_REPORT)
    report.parent.mkdir(exist_ok=True)
    report.write_text(result.stat_text)
    return result
