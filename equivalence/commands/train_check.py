"""``train-check``: do trained networks discover the construction? (Zucchet et al. 2023, Experiments 1 and 2)

``python -m equivalence train-check teacher-student|icl-regression [--quick] [--device] [--seed] [--out]``
trains the students, writes ``train-<experiment>.json``, the figures (PNG and SVG) and a checkpoint
(``train-<experiment>.pt``, state dicts; load with ``torch.load(..., weights_only=True)``) into ``--out``,
prints the targets table and exits 0 when every target holds, 1 otherwise (2 for bad arguments). With
``SOURCE_DATE_EPOCH`` set, run times are written as 0 (``"timings": "omitted"``) so that the same run gives
byte-identical files.
"""

import argparse
from pathlib import Path

from ._common import check_threads, resolve_device

#: the experiments and modes (also in :mod:`equivalence.training.section`, which runs them)
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
    from ..report.write import check_out_dir  # lazy: start-up time (the report package is large)

    check_threads(args.threads)
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise ValueError(f"--steps must be between 1 and {MAX_STEPS:,}; got {args.steps}")
    device = resolve_device(args.device)
    check_out_dir(args.out)

    import torch  # training needs torch from here on

    from ..training.section import run_experiment  # lazy: start-up time (training imports torch)

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
