"""``xaihls sweep``: one model over many boards (and tilings), in parallel, one project a point.

Every piece of work is a task on one executor: a local process pool by default, or a Dask
distributed cluster given its scheduler address (its workers must see ``out_dir``: the tasks
hand each other project folders, not data). A point's first task compiles it, writes its
project and returns the plan's estimate; with ``synth`` and ``sim`` two more tasks follow on
the written project, yosys ``synth_xilinx`` and the Verilator simulation of its first test
image, exactly as ``xaihls synth DIR`` and ``xaihls sim DIR`` run them. A task is a pure
function of its inputs, so the pool and Dask give the same figures.

yosys and Verilator runs are heavy (a Verilator build compiles with ``make -j`` on every core,
a yosys run takes a core and 1-3 GB for hours on a large array), so at most ``tool_jobs`` of
them run at once on each machine, whatever the executor's worker count: each holds one of
``tool_jobs`` file locks in the machine's temporary folder while it runs (a lock dies with its
process). Default: half the machine's cores, at least one.

A task that fails costs its point that figure, not the sweep: the point's record carries one
line naming the task and why (``errors``), and the other points go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from xaihls.errors import XaiHlsError

COMPILE, YOSYS, VERILATOR = "compile", "yosys", "verilator"  # a point's tasks, and its figures' sources
SIM_IMAGES = 1  # --sim simulates the first test image, with every method the project was compiled for


@dataclass(frozen=True)
class SweepPoint:
    """Everything a worker needs: plain values only (they travel to other processes/machines)."""

    model: str
    board: str
    out_dir: str
    tiling: tuple[int, int] | None = None
    weights: str | None = None
    input_shape: tuple[int, int, int] | None = None
    calibration: str | None = None
    config: str | None = None
    methods: tuple[str, ...] = ("saliency", "integrated_gradients")
    steps: int = 32
    board_path: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.board + (f"_{self.tiling[0]}x{self.tiling[1]}" if self.tiling else "")

    @property
    def folder(self) -> Path:
        return Path(self.out_dir) / self.name


# ---------------------------------------------------------------------------------------------
# Tasks (run in workers; plain values in, plain values out)
# ---------------------------------------------------------------------------------------------

def evaluate_point(point: SweepPoint) -> dict:
    """Compile, plan, write the project (the first calibration images as its test images) and
    attribute them with golden; return the plan's figures (``estimate``) and the attributions' digests."""
    import torch

    import xaihls
    from xaihls.frontend.loaders import load_model
    from xaihls.io import load_calibration
    from xaihls.plan.boards import load_board
    from xaihls.writer import write_project

    loaded = load_model(point.model, point.weights, point.input_shape)
    shape = loaded.graph.data_shape
    if point.calibration:
        calibration = load_calibration(point.calibration, shape)
    elif point.model.startswith("zoo:"):
        from xaihls.models.zoo import get_zoo_model

        calibration = get_zoo_model(point.model[4:]).calibration()
    else:
        raise XaiHlsError("sweep: give a calibration batch for a model that is not from the zoo")
    torch.set_num_threads(1)  # one core a point: the executor supplies the parallelism
    board = load_board(point.board, point.board_path or None)
    acc = xaihls.compile(loaded.graph, board=board, methods=point.methods, calibration=calibration,
                         config=point.config, ig_steps=point.steps, tiling=point.tiling,
                         backends=("golden", "program", "csim"))  # the project's RTL only where it runs
    samples = calibration[:2]
    write_project(acc, point.folder, force=True, images=samples)
    digests = {}
    for method in point.methods:
        r = acc.run(samples, method, steps=point.steps)
        digests[method] = hashlib.sha256(r.attribution.numpy().tobytes()).hexdigest()[:16]
    s = acc.plan.summary()
    estimate = {"source": "estimate", "tool": "xaihls cost model (resources: the model fitted on yosys)",
                "cycles": s["cycles"], "latency_ms": s["latency_ms"], "resources": s["resources"],
                "utilization": s["utilization"], "ddr_latency": s["ddr_latency"],
                "bytes_per_cycle": s["bytes_per_cycle"]}
    return {"project": str(point.folder), "part": s["part"], "clock_mhz": s["clock_mhz"],
            "tiling": f"{s['tm']}x{s['tn']}", "capacity": s["capacity"], "estimate": estimate,
            "golden_digest": digests}


def synthesize_point(project: str, tool_jobs: int | None = None) -> dict:
    """yosys synth_xilinx of a written project (``xaihls synth DIR``): its resources and their share of the board."""
    from importlib.metadata import version

    from xaihls.backends.rtl.v2.project import load_project, synthesize_project

    load_project(project)  # a project the RTL cannot take fails now, not after waiting for a slot
    with tool_slot(tool_jobs) as waited:
        result = synthesize_project(project)
    capacity = json.loads((Path(project) / "estimate.json").read_text()).get("capacity", {})
    resources = result.as_dict()
    return {"source": YOSYS, "tool": f"yosys {version('pyosys')} synth_xilinx -family {result.family}, hierarchy kept",
            "resources": resources, "utilization": {k: v / capacity[k] for k, v in resources.items() if capacity.get(k)},
            "seconds": round(result.seconds, 1), "waited_s": round(waited, 1)}


def simulate_point(project: str, tool_jobs: int | None = None) -> dict:
    """The Verilator simulation of a written project's first test image, every method (``xaihls sim DIR
    --images 1``): cycles per method, bit-exactness against golden, the simulated DDR."""
    from importlib.metadata import version

    from xaihls.backends.rtl.v2.project import load_project, simulate_project
    from xaihls.reports.compare import verilator_conditions

    load_project(project)  # a project the RTL cannot take fails now, not after waiting for a slot
    with tool_slot(tool_jobs) as waited:
        report = simulate_project(project, images=SIM_IMAGES)
    methods = report["methods"]
    speed = report["simulation"]
    return {"source": VERILATOR, "tool": f"Verilator {version('verilator')} through cocotb {version('cocotb')}",
            "conditions": verilator_conditions(report), "images": SIM_IMAGES,
            "cycles": {m: v["cycles"] for m, v in methods.items()},
            "latency_ms": {m: v["latency_ms"] for m, v in methods.items()},
            "model_cycles": {m: v["model_cycles"] for m, v in methods.items()},
            "mac_utilization": {m: v["mac_utilization"] for m, v in methods.items()},
            "bit_exact": {m: v["bit_exact"] for m, v in methods.items()},
            "build_s": speed["build_s"], "seconds": speed["process_s"], "waited_s": round(waited, 1)}


TASKS = {YOSYS: synthesize_point, VERILATOR: simulate_point}


def default_tool_jobs() -> int:
    """yosys/Verilator runs at once on this machine by default: half its cores, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // 2)


def slot_folder() -> Path:
    """Where the tool slots' lock files live: the machine's own temporary folder (never a shared home)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"xaihls-tool-slots-{uid}"


@contextlib.contextmanager
def tool_slot(tool_jobs: int | None = None, poll_s: float = 0.5):
    """Hold one of ``tool_jobs`` machine-wide slots (default ``default_tool_jobs()``) while a yosys or
    Verilator run goes on; yields the seconds waited for it. Every process on the machine that asks
    for slots shares them; the kernel frees a slot when its holder exits, however it exits. Waiting
    runs take free slots in no particular order (one may wait through several others)."""
    jobs = default_tool_jobs() if tool_jobs is None else tool_jobs
    if jobs < 1:
        raise XaiHlsError(f"sweep: --tool-jobs must be at least 1, got {jobs}")
    folder = slot_folder()
    folder.mkdir(exist_ok=True)
    t0 = time.monotonic()
    while True:
        for k in range(jobs):
            handle = open(folder / f"slot{k}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield time.monotonic() - t0
            finally:
                handle.close()  # releases the lock
            return
        time.sleep(poll_s)


def _failure(exc: BaseException) -> str:
    """One line for a task that raised: a user mistake's own message, else the exception and where it came from."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, XaiHlsError):
        return message
    where = traceback.extract_tb(exc.__traceback__)
    at = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    return f"{type(exc).__name__}{': ' + message if message else ''}{at}"


def run_task(task: str, *args) -> dict:
    """A task as a worker runs it: its figures, or ``{"error": one line}``; never raises."""
    fn = evaluate_point if task == COMPILE else TASKS[task]
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a task's failure is reported with its point, not raised
        return {"error": _failure(exc)}


# ---------------------------------------------------------------------------------------------
# The driver (in the calling process)
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _executor(scheduler: str | None, workers: int | None):
    """A concurrent.futures Executor: Dask's for a scheduler address, else a local spawn pool."""
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise XaiHlsError("sweep --scheduler needs dask[distributed]: pip install 'dask[distributed]'") from None
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise XaiHlsError(f"sweep: cannot reach the Dask scheduler at {scheduler} ({exc.__class__.__name__})") \
                from None
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child of a process that has run torch can deadlock in its thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def sweep(points: list[SweepPoint], scheduler: str | None = None, workers: int | None = None,
          synth: bool = False, sim: bool = False, tool_jobs: int | None = None, progress=None) -> list[dict]:
    """Evaluate every point (and with ``synth`` / ``sim`` synthesize / simulate its project); one record
    a point, in the order of ``points``. ``progress(point_name, task, record)`` is called as each task ends.

    A record holds ``estimate``, ``yosys`` and ``verilator`` (the figures of each source that ran, each
    with its ``source`` and ``tool``) and ``errors``: one line per failed task, keyed by task."""
    from concurrent.futures import FIRST_COMPLETED, wait

    if not points:
        raise XaiHlsError("sweep: no points (give at least one board)")
    if tool_jobs is not None and tool_jobs < 1:
        raise XaiHlsError(f"sweep: --tool-jobs must be at least 1, got {tool_jobs}")
    records = [{"point": p.name, "board": p.board, "errors": {}} for p in points]
    later = [t for t, wanted in ((YOSYS, synth), (VERILATOR, sim)) if wanted]
    with _executor(scheduler, workers) as executor:
        pending = {}

        def submit(i: int, task: str, *args) -> None:
            try:
                pending[executor.submit(run_task, task, *args)] = (i, task)
            except Exception as exc:  # a broken pool refuses new work: that task fails, the rest goes on
                finish(i, task, {"error": f"could not start ({_failure(exc)})"})

        def finish(i: int, task: str, outcome: dict) -> None:
            record = records[i]
            if "error" in outcome:
                record["errors"][task] = outcome["error"]
            elif task == COMPILE:
                record.update(outcome)
                for t in later:
                    submit(i, t, outcome["project"], tool_jobs)
            else:
                record[task] = outcome
                if task == VERILATOR:
                    wrong = [m for m, ok in outcome["bit_exact"].items() if not ok]
                    if wrong:
                        record["errors"][task] = f"{', '.join(wrong)} not bit-exact with the golden model"
            if progress:
                progress(record["point"], task, record)

        for i, point in enumerate(points):
            submit(i, COMPILE, point)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                i, task = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker died (killed, out of memory) or the cluster lost it
                    outcome = {"error": f"the worker running it failed: {_failure(exc)}"}
                finish(i, task, outcome)
    return records


def failures(records: list[dict]) -> list[str]:
    """One line per failed task: ``point NAME: TASK: why``."""
    return [f"point {r['point']}: {task}: {why}" for r in records for task, why in r["errors"].items()]


def sweep_rows(records: list[dict]):
    """The sweep's figures as comparison rows (xaihls.reports.compare.Row): per point, the estimate,
    then yosys and Verilator where they ran; points whose compile failed have none."""
    from xaihls.reports.compare import Row

    rows = []
    for r in records:
        if "estimate" not in r:
            continue
        base = dict(project=r["point"], board=r["board"], part=r["part"], clock_mhz=float(r["clock_mhz"]),
                    tiling=r["tiling"], capacity=dict(r["capacity"]))
        rows.append(Row(source="estimate", resources=dict(r["estimate"]["resources"]),
                        cycles=dict(r["estimate"]["cycles"]), **base))
        if YOSYS in r:
            rows.append(Row(source=YOSYS, resources=dict(r[YOSYS]["resources"]), **base))
        if VERILATOR in r:
            rows.append(Row(source=VERILATOR, cycles=dict(r[VERILATOR]["cycles"]),
                            conditions=r[VERILATOR]["conditions"], **base))
    return rows


SWEEP_FILE = "sweep.json"


def write_sweep(records: list[dict], out_dir: str | Path) -> Path:
    out = Path(out_dir) / SWEEP_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    return out


def points_for(model: str, boards: list[str], out_dir: str, tilings: list[tuple[int, int]] | None = None,
               **options) -> list[SweepPoint]:
    return [SweepPoint(model, board, str(out_dir), tiling, **options)
            for board in boards for tiling in (tilings or [None])]


__all__ = ["SweepPoint", "evaluate_point", "synthesize_point", "simulate_point", "sweep", "failures", "sweep_rows",
           "write_sweep", "points_for", "tool_slot", "default_tool_jobs", "SWEEP_FILE"]
