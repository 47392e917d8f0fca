"""``train-check``: do trained networks discover the construction? (Zucchet et al. 2023, Experiments 1 and 2)

``python -m equivalence train-check teacher-student|icl-regression [--quick] [--device] [--seed] [--out]``
trains the students, writes ``train-<experiment>.json``, the figures (PNG and SVG) and a checkpoint
(``train-<experiment>.pt``, state dicts; load with ``torch.load(..., weights_only=True)``) into ``--out``,
prints the targets table and exits 0 when every target holds, 1 otherwise (2 for bad arguments). With
``SOURCE_DATE_EPOCH`` set, run times are written as 0 (``"timings": "omitted"``) so that the same run gives
byte-identical files.
"""

import argparse
import os
import time
from pathlib import Path

from ._common import check_threads, resolve_device

EXPERIMENTS = ("teacher-student", "icl-regression")
MODES = ("smoke", "quick", "full")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-check",
        help="train students and check that they discover the construction (empirical)",
        description="Train gated RNN, LSA, LSTM and GRU students and measure whether gradient descent finds "
        "the "
        "attention construction: teacher-student (Experiment 1) or in-context linear regression "
        "(Experiment 2). Results are empirical evidence, never proofs.",
    )
    p.add_argument("experiment", choices=EXPERIMENTS, help="which experiment to run")
    p.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="mode",
        help="the quick mode: converges in a few minutes on a 2-core CPU (what 'verify --profile thorough' "
        "runs)",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="smoke (seconds, what 'verify' runs by default), quick (= --quick) or full (default: "
        "the sweeps behind the figures of docs/training_*.md; tens of minutes on a CPU)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device for training: 'cpu' (default) or 'cuda[:N]'; all measurements are float64 on CPU",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the teacher, the data and every initialisation (default 0)",
    )
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads, 1 to the CPUs available (default 1: the small matrices here gain little "
        "from more threads, and oversubscribed threads on a shared machine slow training down "
        "many-fold)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="override the number of training steps of the mode"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def run_experiment(
    experiment: str,
    mode: str,
    *,
    seed: int = 0,
    device: str = "cpu",
    out: Path | None = None,
    progress: bool = True,
    steps: int | None = None,
) -> dict:
    """Run one experiment in one mode; write its JSON, figures and checkpoint into ``out`` (if given) and
    return the results (with ``figures``, ``checkpoint`` and ``all_targets_met``)."""
    import torch  # training needs torch; importing it here keeps the CLI's start-up cheap

    from ..training import artifacts, plots
    from ..training.icl_regression import icl_preset, run_icl_regression
    from ..training.teacher_student import preset, run_teacher_student

    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}; got {experiment!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    overrides = {} if steps is None else {"steps": steps}
    t0 = time.perf_counter()
    if experiment == "teacher-student":
        res, ckpt = run_teacher_student(
            preset(mode, **overrides), seed=seed, device=device, progress=progress
        )
        plot, stem = plots.plot_teacher_student, "train-teacher-student"
    else:
        res, ckpt = run_icl_regression(
            icl_preset(mode, **overrides), seed=seed, device=device, progress=progress
        )
        plot, stem = plots.plot_icl_regression, "train-icl-regression"
    res["mode"] = mode
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if os.environ.get("SOURCE_DATE_EPOCH") is not None:  # reproducible bytes: no run times (as in the report)
        res["seconds"] = 0.0
        res["training"]["seconds"] = 0.0
        res["timings"] = "omitted"
    res["torch_threads"] = torch.get_num_threads()
    res["all_targets_met"] = all(t["met"] for t in res["targets"].values() if isinstance(t, dict))
    if out is not None:
        out = Path(out)
        res["figures"] = plot(res, out)
        res["checkpoint"] = artifacts.save_checkpoint(out / f"{stem}.pt", ckpt).name
        artifacts.write_json(out / f"{stem}.json", res)
    return res


def _print_targets(res: dict) -> None:
    print(f"{res['experiment']} ({res['mode']}, seed {res['seed']}, {res['seconds']} s):")
    for name, t in res["targets"].items():
        if isinstance(t, dict):
            v = t["value"]
            shown = f"{v:.4g}" if isinstance(v, float) else str(v)
            print(f"  {'ok  ' if t['met'] else 'MISS'} {name}: {shown} (target {t['target']})")


#: the most training steps --steps accepts (the full mode uses 12,000)
MAX_STEPS = 10_000_000


def run(args: argparse.Namespace) -> int:
    from ..report.write import check_out_dir

    check_threads(args.threads)
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise ValueError(f"--steps must be between 1 and {MAX_STEPS:,}; got {args.steps}")
    device = resolve_device(args.device)
    check_out_dir(args.out)

    import torch  # training needs torch from here on

    torch.set_num_threads(args.threads)
    res = run_experiment(
        args.experiment,
        args.mode or "full",
        seed=args.seed,
        device=device,
        out=args.out,
        progress=not args.no_progress,
        steps=args.steps,
    )
    _print_targets(res)
    stem = "train-" + args.experiment
    print(
        f"wrote {args.out}/{stem}.json, {args.out}/{stem}.pt and {len(res['figures'])} figures "
        f"({', '.join(res['figures'])})"
    )
    return 0 if res["all_targets_met"] else 1
