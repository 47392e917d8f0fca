"""``prove``: run symbolic proofs (one claim, every claim of a construction, or all) and print one line each.

Exit status: 0 when every claim holds (proved, probable, or a negative control refuted as expected) and at
least one was decided; 1 when a claim is refuted, unexpectedly passes or its checker failed, **or when every
requested claim was skipped** (nothing asked was proved; the reasons are printed); 2 on bad input, including
sizes, lengths or seeds beyond :data:`LIMITS` (they would not finish).
"""

import argparse
import json
import sys
from pathlib import Path

from ..claims import HOLDING, OK_STATUSES, summary_line
from ._common import LazyChoices, command_line

__all__ = ["LIMITS", "add_parser", "run"]

#: the largest accepted value of each size flag (beyond these the proofs would not finish on a workstation:
#: the direct construction has H d_k (d_v + 1) neurons and one gate per neuron pair it reads)
LIMITS = {"d": 256, "d_k": 256, "d_v": 256, "d_out": 1024, "heads": 16, "T": 64}


def add_parser(sub) -> None:
    # the catalogue imports SymPy: its choices are read only when parsing needs them (cheap start-up)
    TIERS, PROFILES = (LazyChoices("equivalence.symbolic.catalogue", n) for n in ("TIERS", "PROFILES"))
    p = sub.add_parser(
        "prove",
        help="prove symbolic claims (SymPy): a claim ID, a construction, or everything",
        description="Prove that registered constructions equal their references (fixed size, every length by "
        "induction, every size at index level, or Schwartz-Zippel at large sizes), and the "
        "impossibility and invariance certificates. Prints one line per claim; exits 1 on refutation.",
    )
    p.add_argument(
        "target",
        nargs="?",
        default=None,
        metavar="CLAIM|CONSTRUCTION",
        help="a claim ID (e.g. LSA-DIRECT-ALLT/v1, alias LSA-RNN-DIRECT-ALLT) or a registered construction "
        "(e.g. lsa-direct: all its claims); default: every claim",
    )
    for flag, dest, what in (
        ("--d", "d", "input dimension d"),
        ("--d-k", "d_k", "key dimension d_k"),
        ("--d-v", "d_v", "value dimension d_v"),
        ("--heads", "heads", "number of heads H"),
        ("--d-out", "d_out", "output dimension d_out (adds W_O; default: concatenated heads)"),
        ("--T", "T", "sequence length of the fixed-size tiers"),
    ):
        p.add_argument(flag, dest=dest, type=int, default=None, help=what)
    p.add_argument(
        "--tier",
        choices=TIERS,
        default="auto",
        metavar="TIER",
        help="force a tier: with a construction, run only that tier's claim; with an UNROLLED/ALLT claim, "
        "'schwartz-zippel' decides it at random exact points and 'unrolled'/'induction' by exact "
        "expansion. 'auto' (default): exact expansion unless the estimated size is too large. TIER: "
        "%(choices)s",
    )
    p.add_argument(
        "--mode",
        choices=("symbolic", "exact"),
        default=None,
        help="weights: 'symbolic' (all weights, needs the variant's symbolic_weights hook) or 'exact' "
        "(sampled parameters, exact rationals); default: symbolic when available",
    )
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="ci",
        metavar="PROFILE",
        help="default sizes when none are given: %(choices)s (default: ci)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of sampled parameters and random points, in [0, 2^63) (default: drawn from the "
        "operating system for this run and recorded in the output, so --seed reproduces it)",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file first (variants it registers can be proved)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write report.md, report.html and certificate.json for these claims into this folder",
    )
    p.add_argument(
        "--json", action="store_true", help="print the full claims as JSON instead of one line each"
    )
    p.set_defaults(run=run)


def _sizes(args) -> list[dict] | None:
    given = {k: getattr(args, k) for k in ("d", "d_k", "d_v", "heads", "d_out", "T")}
    if all(v is None for v in given.values()):
        return None
    if given["d"] is None:
        raise ValueError("give --d (the input dimension) together with --d-k/--d-v/--heads/--d-out/--T")
    for k, v in given.items():
        flag = "--" + k.replace("_", "-")
        if v is not None and v < 1:
            raise ValueError(f"{flag} must be >= 1; got {v}")
        if v is not None and v > LIMITS[k]:
            raise ValueError(f"{flag} must be <= {LIMITS[k]} (larger proofs would not finish); got {v}")
    return [{k: v for k, v in given.items() if v is not None}]


def _seed(args) -> int:
    from ..symbolic.catalogue import SEED_LIMIT, draw_seed  # lazy: start-up time (SymPy, torch)

    if args.seed is None:
        return draw_seed()
    if not 0 <= args.seed < SEED_LIMIT:
        raise ValueError(f"--seed must be an integer in [0, 2^63); got {args.seed}")
    return args.seed


def _line(c) -> str:
    # lazy: start-up time (the report writer is slow to import)
    from ..report.markdown import format_sizes
    from ..report.write import STATUS_MARK  # lazy: start-up time

    s = f"{STATUS_MARK.get(c.status, c.status):<22} {c.id:<42} {c.tier:<26} {format_sizes(c.sizes)}"
    if c.epsilon is not None:
        s += f"  (error probability <= {c.epsilon:.3g})"
    s += f"  ({c.seconds:.2f} s)"
    if c.status not in ("proved", "probable") and c.message:
        s += f"\n{'':<23}{c.message[:300]}"
    cx = c.counterexample
    if isinstance(cx, dict) and "t" in cx:  # a lifted counterexample may lack the output fields
        where = f"t={cx['t']}" + (
            f", output {cx['output_index']}" if cx.get("output_index") is not None else ""
        )
        values = (
            f": RNN {cx['rnn_output']} vs reference {cx['reference_output']}"
            if cx.get("rnn_output") is not None and cx.get("reference_output") is not None
            else ""
        )
        s += f"\n{'':<23}counterexample: {where}{values} (exact inputs and weights: --json or --out)"
    return s


def run(args: argparse.Namespace) -> int:
    from .verify import _import_user  # lazy: start-up time (verify loads the numeric suite)

    sets = _sizes(args)  # before importing SymPy (the catalogue): bad sizes are answered at once
    if args.out is not None:  # a bad --out is answered before any proof runs
        from ..report.write import check_out_dir  # lazy: start-up time

        check_out_dir(args.out)
    from ..symbolic.catalogue import run_target  # lazy: start-up time (SymPy, torch)

    seed = _seed(args)
    for spec in args.imports:
        _import_user(spec)
    claims = run_target(
        args.target,
        sets=sets,
        profile=args.profile,
        tier=args.tier,
        mode=args.mode,
        seed=seed,
        imports=tuple(args.imports),
    )
    if args.json:
        print(json.dumps([c.to_dict() for c in claims], indent=1, sort_keys=True))
    else:
        for c in claims:
            print(_line(c))
    if args.out is not None:
        from ..report import provenance, write_report  # lazy: start-up time

        cert = write_report(claims, args.out, provenance=provenance("cpu"), command=command_line())
        print(f"report written to {args.out}/ (report.md, report.html, certificate.json)")
        from ..report.trust import replay_lines  # lazy: start-up time

        for cid, line in replay_lines(cert, args.out).items():  # each failure: the command that reproduces it
            print(f"  replay {cid}: {line}")
    bad = [c for c in claims if c.status not in OK_STATUSES]
    if not args.json:
        print(f"{summary_line(c.status for c in claims)} (seed {seed})")
    if bad:
        return 1
    if not any(c.status in HOLDING for c in claims):
        reasons = "; ".join(f"{c.id}: {c.message or 'skipped'}" for c in claims) or "no claim matched"
        print(
            f"error: nothing asked was proved: every requested claim was skipped ({reasons})", file=sys.stderr
        )
        return 1
    return 0
