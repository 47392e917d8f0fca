"""``python -m benchmarks [--quick] [--device cuda] [--out DIR]``: run the four benchmark workloads
(docs/benchmarks.md)."""

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from .common import WorkloadResult, load, machine, roofline

__all__ = ["WORKLOADS", "main"]

WORKLOADS = ("w1", "w2", "w3", "w4")
#: run only when named in --only (it starts busy neighbour processes)
EXTRA = ("load", "suite")
MAX_REPEATS = 1000

SMOKE_SIZES = {"B": 2, "T": 256, "d": 8, "H": 1, "dk": 4, "dv": 4}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--quick", action="store_true", help="fewer repeats and sizes (under 2 minutes on 2 CPU cores)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks"), help="output folder")
    p.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help="comma-separated subset of w1,w2,w3,w4,load,suite (default: w1,w2,w3,w4). 'load': verify, "
        "prove and a test slice, quietly and beside --busy neighbours; 'suite': the README's "
        "test command --repeats times (default 3) beside --busy neighbours",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads, 1 to the CPUs available (default: torch's default)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed rounds per case, 1 to {MAX_REPEATS} (default: by mode; load: 1)",
    )
    p.add_argument(
        "--busy",
        type=int,
        default=2,
        help="load benchmark: number of busy neighbour processes (default 2; 0 to 4 x the CPUs)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, one round: checks that everything runs (figures meaningless)",
    )
    args = p.parse_args(argv)
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in only if w not in WORKLOADS + EXTRA]
    if bad or not only:
        p.error(f"--only: unknown workload(s) {bad}; expected a subset of {','.join(WORKLOADS + EXTRA)}")
    args.only = only
    _check_resources(p, args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available on this machine")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        p.error(f"--device must be cpu or cuda[:i]; got {args.device!r}")
    return args


def _check_resources(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2) before any work: thread and repeat counts this machine can run, a neighbour
    count that cannot exhaust it, and an --out that can be written (checked now, not after the work)."""
    # lazy: a benchmark's dependencies load only when it runs
    from equivalence.commands._common import available_cpus

    # lazy: a benchmark's dependencies load only when it runs
    from equivalence.report.write import check_out_dir

    cpus = available_cpus()
    if args.threads is not None and not 1 <= args.threads <= cpus:
        p.error(
            f"--threads must be between 1 and {cpus} (the CPUs available to this process); got {args.threads}"
        )
    if args.repeats is not None and not 1 <= args.repeats <= MAX_REPEATS:
        p.error(f"--repeats must be between 1 and {MAX_REPEATS}; got {args.repeats}")
    if not 0 <= args.busy <= 4 * cpus:
        p.error(f"--busy must be between 0 and {4 * cpus} (4 x the CPUs available); got {args.busy}")
    try:
        check_out_dir(args.out)
    except (OSError, ValueError) as e:
        p.error(str(e))


def run(args: argparse.Namespace) -> tuple[list[WorkloadResult], dict]:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("highest")
    info = machine(args.device)
    info["mode"] = "smoke" if args.smoke else ("quick" if args.quick else "full")
    info["warnings"] = []
    la, cores = info["load_average_start"], info["cores_available"] or 1
    if la and la[0] > cores and args.device == "cpu":
        active = os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE" and torch.get_num_threads() > 1
        msg = (
            f"load average {la[0]} exceeds the {cores} available cores: other processes compete for the CPU, "
            + (
                "and with OpenMP's active wait multi-threaded torch ops stall at their barriers (erratic "
                "timings; "
                "set OMP_WAIT_POLICY=PASSIVE or --threads 1)"
                if active
                else "so absolute times are inflated and noisy; the interleaved ratios remain comparable"
            )
        )
        info["warnings"].append(msg)
        print(f"[benchmarks] warning: {msg}", file=sys.stderr, flush=True)
    info["roofline"] = roofline(args.device, quick=args.quick or args.smoke)
    quick = args.quick or args.smoke
    reps = 1 if args.smoke else args.repeats
    results: list[WorkloadResult] = []
    t0 = time.perf_counter()
    for w in args.only:
        print(f"[benchmarks] {w} ...", file=sys.stderr, flush=True)
        if w == "w1":
            from . import w1_forward  # lazy: a benchmark's dependencies load only when it runs

            results += w1_forward.run(
                quick=quick,
                device=args.device,
                repeats=reps,
                memory=not args.no_memory,
                sizes=SMOKE_SIZES if args.smoke else None,
            )
            for r in results:
                if r.workload == "w1" and r.limits.get("flops"):
                    _limit(r, info["roofline"])
        elif w == "w2":
            from . import w2_properties  # lazy: a benchmark's dependencies load only when it runs

            results += w2_properties.run(quick=quick, device=args.device, repeats=reps, smoke=args.smoke)
        elif w == "w3":
            from . import w3_symbolic  # lazy: a benchmark's dependencies load only when it runs

            results += w3_symbolic.run(quick=quick, smoke=args.smoke)
        elif w == "w4":
            from . import w4_training  # lazy: a benchmark's dependencies load only when it runs

            results += w4_training.run(quick=quick, device=args.device, smoke=args.smoke)
    info["seconds_total"] = round(time.perf_counter() - t0, 1)
    info["load_average_end"] = load()
    return results, info


def _limit(r: WorkloadResult, roof: dict) -> None:
    """Physical limit of workload 1: the larger of (minimal flops / measured matmul rate) and
    (bytes of x read + y written / measured copy traffic rate)."""
    f = r.limits["flops"]
    t_flops = f["minimal"] / roof["matmul_flops_per_s"]
    t_bytes = r.limits["bytes_x_plus_y"] / roof["copy_bytes_per_s"]
    limit = max(t_flops, t_bytes)
    par = r.case("rnn parallel").median
    r.limits["physical_limit_s"] = limit
    r.limits["physical_limit_basis"] = (
        f"max(minimal flops {f['minimal']:.3g} / {roof['matmul_flops_per_s']:.3g} "
        f"flop/s = {t_flops * 1e3:.2f} ms, x+y bytes / copy traffic rate = "
        f"{t_bytes * 1e3:.2f} ms)"
    )
    r.limits["parallel_over_limit"] = par / limit if limit > 0 else float("nan")


def run_load_benchmark(args: argparse.Namespace) -> int:
    """``--only load``: :func:`benchmarks.load.run_load` on the default tasks; writes load.json and
    load.txt."""
    import tempfile  # lazy: a benchmark's dependencies load only when it runs

    from . import load as lb  # lazy: a benchmark's dependencies load only when it runs

    info = machine(args.device)
    info["mode"] = "quick" if (args.quick or args.smoke) else "full"
    with tempfile.TemporaryDirectory(prefix="benchmarks-load-") as work:
        tasks = lb.default_tasks(Path(work), quick=args.quick or args.smoke)
        res = lb.run_load(
            tasks,
            busy=args.busy,
            repeats=args.repeats or 1,
            echo=lambda m: print(m, file=sys.stderr, flush=True),
        )
    info["load_average_end"] = load()
    print(lb.format_table(res))
    for path in lb.write(res, args.out, info):
        print(f"wrote {path}")
    return 0 if all(s["all_rc"] == [0] for s in res.summary.values()) else 1


def main(argv: list[str] | None = None) -> int:
    from .report import table, write_all  # lazy: a benchmark's dependencies load only when it runs

    args = parse(argv)
    rc = 0
    speed = [w for w in args.only if w in WORKLOADS]
    if speed:
        args.only = speed
        results, info = run(args)
        print(table(results, info))
        command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
        for path in write_all(results, info, args.out, command.strip()):
            print(f"wrote {path}")
    if "load" in args.only:
        rc = max(rc, run_load_benchmark(args))
    if "suite" in args.only:
        rc = max(rc, run_suite_under_load(args))
    return rc


def run_suite_under_load(args: argparse.Namespace) -> int:
    """``--only suite``: the whole default test suite ``--repeats`` times (default 3) beside the
    neighbours."""
    from . import load as lb  # lazy: a benchmark's dependencies load only when it runs

    info = machine(args.device)
    res = lb.suite_under_load(
        runs=args.repeats or 3, busy=args.busy, echo=lambda m: print(m, file=sys.stderr, flush=True)
    )
    info["load_average_end"] = load()
    print(lb.format_table(res))
    for path in lb.write(res, args.out, info, stem="suite"):
        print(f"wrote {path}")
    return 0 if res.summary["suite"]["failures"] == 0 else 1
