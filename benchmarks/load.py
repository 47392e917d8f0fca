"""The load benchmark (``python -m benchmarks --only load``): the main job, the prover at its headline size
and a fixed slice of the test suite, each run quietly and then beside ``N`` busy processes that this
benchmark starts and stops itself.

What a user of a shared machine (a laptop with a browser, a login node, a CI runner with neighbours) wants
to know is how much slower the commands get when the CPUs are busy, and whether they still finish. For
each task and each condition we record the wall time, the CPU time of the task's process tree (user +
system from ``wait4``, which a busy neighbour does not inflate much), the exit status and the load average
before and after; the figure of merit is the *slowdown* ``loaded wall / quiet wall`` (median over
``--repeats`` rounds, quiet and loaded interleaved round by round).

The neighbours are ``python -c`` processes spinning on one core each (pure Python arithmetic, no memory
traffic, no network, no files). Every neighbour stops on its own at a deadline and when this process
dies (it polls its parent), and is terminated when the loaded phase ends: the benchmark never leaves
processes behind.

"Quiet" means without *our* neighbours: on a machine shared with other work the quiet times include it,
which is why the load average is recorded beside every run.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "BUSY_CODE",
    "TEST_SLICE",
    "Run",
    "Task",
    "busy_neighbours",
    "default_tasks",
    "format_table",
    "run_load",
    "run_task",
    "suite_under_load",
    "write",
]

ROOT = Path(__file__).resolve().parents[1]
#: the fixed slice of the test suite that the benchmark times (fast, CPU-bound, no network)
TEST_SLICE = ("tests/test_scan.py", "tests/test_training_students.py")
#: the prover at the headline size of docs/proofs.md (exact all-T proof of the direct construction)
PROVE_HEADLINE = ("LSA-DIRECT-ALLT", "--d", "32", "--d-k", "32", "--d-v", "32", "--heads", "2", "--seed", "0")
#: a neighbour: spin until the deadline or until the parent is gone (checked every ~0.1 s of spinning)
BUSY_CODE = r"""
import os, sys, time
parent, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
x = 0
while time.monotonic() < end and os.getppid() == parent:
    for i in range(200_000):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
"""
#: outer limit of one task (a hung task is killed and recorded as rc -9, never waited on forever)
TASK_LIMIT_S = 1800


@dataclass
class Task:
    name: str
    argv: list[str]
    what: str = ""


@dataclass
class Run:
    task: str
    condition: str  # "quiet" or "busy N"
    wall_s: float
    cpu_s: float
    rc: int
    load_before: list[float]
    load_after: list[float]
    tail: str = ""


@dataclass
class LoadResult:
    busy: int
    cpus: int
    runs: list[Run] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "busy": self.busy,
            "cpus": self.cpus,
            "runs": [asdict(r) for r in self.runs],
            "summary": self.summary,
            "notes": self.notes,
        }


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def default_tasks(work: Path, *, quick: bool = False) -> list[Task]:
    """The three tasks: ``verify`` (default profile; ``--profile dev`` when ``quick``), ``prove`` at the
    headline size and :data:`TEST_SLICE` under pytest, quietly, single process."""
    py = sys.executable
    verify = [py, "-m", "equivalence", "verify", "--no-progress", "--out", str(work / "verify")]
    if quick:
        verify += ["--profile", "dev"]
    return [
        Task("verify", verify, "python -m equivalence verify" + (" --profile dev" if quick else "")),
        Task(
            "prove",
            [py, "-m", "equivalence", "prove", *PROVE_HEADLINE],
            "python -m equivalence prove " + " ".join(PROVE_HEADLINE),
        ),
        Task(
            "tests",
            [py, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", *TEST_SLICE],
            "python -m pytest -p no:xdist -q " + " ".join(TEST_SLICE),
        ),
    ]


def _child_env() -> dict:
    """The environment a user's command would see: without the ``OMP_WAIT_POLICY`` that ``python -m
    benchmarks`` sets for its own timings (unless the user had set it)."""
    env = dict(os.environ)
    if env.pop("BENCHMARKS_SET_OMP_WAIT_POLICY", None):
        env.pop("OMP_WAIT_POLICY", None)
    return env


def run_task(task: Task, condition: str, *, limit_s: float = TASK_LIMIT_S) -> Run:
    """Run ``task`` once in its own process group; wall time, CPU time of the tree (``wait4``), exit
    status."""
    before = _load()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        p = subprocess.Popen(
            task.argv,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_child_env(),
            start_new_session=True,
        )
        deadline = time.monotonic() + limit_s
        status, usage = None, None
        while status is None:
            pid, status_, usage_ = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                status, usage = status_, usage_
                break
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                _, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)  # polling interval of the wait, not a synchronisation
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        log.seek(0)
        tail = log.read()[-1500:].decode(errors="replace")
    return Run(
        task.name,
        condition,
        round(wall, 2),
        round(usage.ru_utime + usage.ru_stime, 2),
        p.returncode,
        before,
        _load(),
        tail if p.returncode else "",
    )


class busy_neighbours:
    """Context manager: ``n`` spinning neighbour processes for at most ``max_s`` seconds (stopped on exit)."""

    def __init__(self, n: int, max_s: float):
        self.n, self.max_s, self.procs = n, max_s, []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", BUSY_CODE, str(os.getpid()), str(self.max_s)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return self

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return False


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return float("nan") if n == 0 else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)


def run_load(
    tasks: list[Task], *, busy: int = 2, repeats: int = 1, echo=print, limit_s: float = TASK_LIMIT_S
) -> LoadResult:
    """Each round: every task quietly, then every task beside ``busy`` neighbours; summary per task."""
    # lazy: a benchmark's dependencies load only when it runs
    from equivalence.commands._common import available_cpus

    res = LoadResult(busy=busy, cpus=available_cpus())
    loaded = f"busy {busy}"
    for r in range(repeats):
        for t in tasks:
            run = run_task(t, "quiet", limit_s=limit_s)
            res.runs.append(run)
            echo(
                f"[load] round {r + 1}/{repeats} quiet  {t.name:7} wall {run.wall_s:7.1f} s  cpu "
                f"{run.cpu_s:7.1f} s  "
                f"rc {run.rc}  load {run.load_before} -> {run.load_after}"
            )
        with busy_neighbours(busy, max_s=limit_s * len(tasks) + 60) as nb:
            for t in tasks:
                run = run_task(t, loaded, limit_s=limit_s)
                res.runs.append(run)
                echo(
                    f"[load] round {r + 1}/{repeats} {loaded} {t.name:7} wall {run.wall_s:7.1f} s  cpu "
                    f"{run.cpu_s:7.1f} s  "
                    f"rc {run.rc}  load {run.load_before} -> {run.load_after}  ({nb.alive()} neighbours "
                    "running)"
                )
    for t in tasks:
        q = [x for x in res.runs if x.task == t.name and x.condition == "quiet"]
        b = [x for x in res.runs if x.task == t.name and x.condition == loaded]
        qw, bw, qc, bc = (
            _median([getattr(x, k) for x in xs])
            for xs, k in ((q, "wall_s"), (b, "wall_s"), (q, "cpu_s"), (b, "cpu_s"))
        )
        res.summary[t.name] = {
            "command": t.what,
            "quiet_wall_s": qw,
            "busy_wall_s": bw,
            "quiet_cpu_s": qc,
            "busy_cpu_s": bc,
            "slowdown": round(bw / qw, 2) if qw > 0 else None,
            "cpu_ratio": round(bc / qc, 2) if qc > 0 else None,
            "all_rc": sorted({x.rc for x in q + b}),
            "load_quiet": [x.load_before for x in q],
            "load_busy": [x.load_after for x in b],
        }
    if res.busy + 1 > res.cpus:
        res.notes.append(
            f"{busy} neighbours + the task on {res.cpus} CPUs: a fair share of the CPU is "
            f"{res.cpus}/{busy + 1} of a core-set, so a slowdown near {round((busy + 1) / res.cpus, 2)}x is "
            "the scheduler's fair share, not an artefact"
        )
    return res


def format_table(res: LoadResult) -> str:
    if "suite" in res.summary:
        s = res.summary["suite"]
        return "\n".join(
            [f"test suite beside {res.busy} busy neighbours on {res.cpus} CPUs: {s['command']}"]
            + [
                f"run {i + 1}: wall {w:7.1f} s  cpu {c:7.1f} s  rc {rc}  load {ld}"
                for i, (w, c, rc, ld) in enumerate(zip(s["wall_s"], s["cpu_s"], s["all_rc"], s["load"]))
            ]
            + [f"{s['failures']} failed runs of {s['runs']}; {s['over_target']} over {s['target_s']} s"]
        )
    lines = [
        f"load benchmark: {res.busy} busy neighbours on {res.cpus} CPUs (medians over rounds)",
        (
            f"{'task':8} {'quiet wall':>11} {'busy wall':>10} {'slowdown':>9} {'quiet cpu':>10} "
            f"{'busy cpu':>9} "
            f"{'cpu ratio':>9}  rc    load avg quiet -> busy"
        ),
    ]
    for name, s in res.summary.items():
        lq = s["load_quiet"][0] if s["load_quiet"] else []
        lb = s["load_busy"][0] if s["load_busy"] else []
        lines.append(
            f"{name:8} {s['quiet_wall_s']:10.1f}s {s['busy_wall_s']:9.1f}s {s['slowdown']:8.2f}x "
            f"{s['quiet_cpu_s']:9.1f}s {s['busy_cpu_s']:8.1f}s {s['cpu_ratio']:8.2f}x  {s['all_rc']}  "
            f"{lq} -> {lb}"
        )
    lines += [f"note: {n}" for n in res.notes]
    return "\n".join(lines)


def write(res: LoadResult, out: Path, info: dict, stem: str = "load") -> list[Path]:
    """``<stem>.json`` (every run, the summary, the machine) and ``<stem>.txt`` (the table) in ``out``."""
    # lazy: a benchmark's dependencies load only when it runs
    from equivalence.report.write import atomic_write

    out = Path(out)
    doc = {"schema": "attention-rnn-equivalence/benchmarks-load/v1", "machine": info, **res.to_dict()}
    atomic_write(out / f"{stem}.json", json.dumps(doc, indent=1, sort_keys=True) + "\n")
    atomic_write(out / f"{stem}.txt", format_table(res) + "\n")
    return [out / f"{stem}.json", out / f"{stem}.txt"]


#: the README's test command (the whole default suite)
SUITE_ARGV = ("-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider")
#: the README's promise for the test command on 2 cores
SUITE_TARGET_S = 600


def suite_under_load(
    *, runs: int = 3, busy: int = 2, echo=print, limit_s: float = 2 * SUITE_TARGET_S
) -> LoadResult:
    """The README's test command ``runs`` times in a row beside ``busy`` neighbours (``--only suite``): every
    run's wall and CPU time, exit status and load average; the summary says whether all passed and how many
    took longer than :data:`SUITE_TARGET_S`. A run past ``limit_s`` is killed (exit status -9)."""
    # lazy: a benchmark's dependencies load only when it runs
    from equivalence.commands._common import available_cpus

    res = LoadResult(busy=busy, cpus=available_cpus())
    task = Task("suite", [sys.executable, *SUITE_ARGV], "python " + " ".join(SUITE_ARGV))
    with busy_neighbours(busy, max_s=runs * limit_s + 60) as nb:
        for i in range(runs):
            run = run_task(task, f"busy {busy}", limit_s=limit_s)
            res.runs.append(run)
            echo(
                f"[suite] run {i + 1}/{runs} beside {nb.alive()} neighbours: wall {run.wall_s:.0f} s, cpu "
                f"{run.cpu_s:.0f} s, rc {run.rc}, load {run.load_before} -> {run.load_after}"
            )
    walls = [r.wall_s for r in res.runs]
    res.summary["suite"] = {
        "command": task.what,
        "runs": runs,
        "failures": sum(r.rc != 0 for r in res.runs),
        "all_rc": [r.rc for r in res.runs],
        "wall_s": walls,
        "cpu_s": [r.cpu_s for r in res.runs],
        "over_target": sum(w > SUITE_TARGET_S for w in walls),
        "target_s": SUITE_TARGET_S,
        "load": [r.load_after for r in res.runs],
    }
    return res
