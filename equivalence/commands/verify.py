"""``verify``: run every check for every registered construction and write the report.

What runs (also in ``--help`` and in the report's provenance, ``"selection"``):

- the numeric checks (float64 and float32, plus ``--device``) and the symbolic proofs of every selected
  variant (``--variant``, default: all registered);
- the training checks (the report's Learned section: Zucchet et al. 2023, Experiments 1 and 2) when asked
  for with ``--training``, or by default when the whole registry is verified at the ``ci`` or ``thorough``
  profile. With ``--variant`` (the claims of those variants only), with ``--profile dev`` or with
  ``--no-training`` they are listed in the report as ``skipped``, with the reason and the command that runs
  them;
- the global claims (degree bound, impossibility certificates, the LSA recurrent form, the template's
  invariances): all of them when the whole registry is verified or with ``--global-claims``; with
  ``--variant``, only those that the selected variants' claims cite as premises (e.g. the degree bound behind
  an impossibility claim), the others listed as ``skipped`` with the reason.

Threads: the checks' tensors are tiny (d <= 8, T <= 64; training students of a few dozen neurons), where
intra-op threads cost more than they bring and oversubscribe a shared machine, so ``verify`` runs torch on
one thread unless ``--threads`` says otherwise (``docs/benchmarks.md``, "Thread policy").
"""

import argparse
import contextlib
import importlib
import os
import time
from pathlib import Path

from ._common import add_common, check_threads, command_line, import_user, resolve_device, resolve_profile

# sections contributed by other pillars: module path -> function(variants, args) -> list[ClaimResult]
SECTIONS = (
    "equivalence.symbolic.verify_section",
    "equivalence.training.verify_section",
)
SYMBOLIC_SECTION = "equivalence.symbolic.verify_section"
TRAINING_SECTION = "equivalence.training.verify_section"
#: the claims of the training section (skipped claims carry these IDs when it does not run)
TRAINING_CLAIMS = (
    "TRAIN-TS-LOSS-THRESHOLD/v1",
    "TRAIN-TS-DISCOVERS-CONSTRUCTION/v1",
    "TRAIN-ICL-LSA-IS-GD/v1",
    "TRAIN-ICL-GATED-RNN-IS-GD/v1",
)
#: torch intra-op threads of verify unless --threads is given (see the module docstring)
DEFAULT_THREADS = 1


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="run all checks for every registered construction and write a report",
        description="Run the numeric checks and symbolic proofs for every registered construction (or the "
        "--variant ones) and the training checks; write report.md, report.html and "
        "certificate.json. Training checks run with --training, or by default when every variant "
        "is verified at the ci or thorough profile; otherwise the report lists them as skipped. "
        "Global claims (degree bound, impossibility certificates, LSA recurrent form, invariances) all run "
        "when every variant is verified or with --global-claims; with --variant only those the selected "
        "claims cite as premises run, the others are listed as skipped.",
    )
    add_common(p)
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    p.add_argument(
        "--variant",
        action="append",
        default=None,
        metavar="NAME",
        help="only this registered variant's claims (repeatable; no training checks unless --training); "
        "default: every registered variant (constructions.available())",
    )
    p.add_argument(
        "--training",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run (--training) or skip (--no-training) the training checks of the Learned section "
        "(teacher-student and in-context regression: about 25 s of CPU at the ci profile). "
        "Default: run them when no --variant is given and the profile is ci or thorough",
    )
    p.add_argument(
        "--global-claims",
        action="store_true",
        help="with --variant, also run every global claim (default: only those the selected variants' "
        "claims cite as premises; the others are listed as skipped)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help=f"torch CPU threads (default {DEFAULT_THREADS}: every check's tensors are small; "
        "more threads only pay off for large --device cpu work). At most the CPUs available",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a Python module or .py file first, so variants it registers are verified too",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def _import_user(spec: str) -> None:
    """Kept for callers of the old name: :func:`equivalence.commands._common.import_user`."""
    import_user(spec)


def training_selected(args: argparse.Namespace, profile: str) -> tuple[bool, str]:
    """Whether the training section runs, and why (the sentence the report records)."""
    if args.training is True:
        return True, "requested with --training"
    if args.training is False:
        return False, "not requested: --no-training"
    if args.variant:
        return (
            False,
            "not requested: --variant selects those variants' claims only (add --training to run them)",
        )
    if profile == "dev":
        return False, "not requested: the dev profile runs no training (add --training to run them)"
    return True, f"the whole registry at the {profile} profile"


def globals_selected(args: argparse.Namespace) -> tuple[bool, str]:
    """Whether every global claim runs (``True``) or only those the selected claims cite, and why."""
    if getattr(args, "global_claims", False):
        return True, "requested with --global-claims"
    if args.variant:
        return (
            False,
            "not requested: --variant runs the global claims its variants' claims cite as premises only "
            "(add --global-claims to run every global claim)",
        )
    return True, "the whole registry"


def _global_kind(cid: str) -> str:
    return {"IMPOSSIBLE": "impossibility", "INVARIANCE": "invariance"}.get(cid.split("-", 1)[0], "symbolic")


def cited_globals(claims, global_ids) -> list[str]:
    """The global claims that ``claims`` cite as premises (their ID in a statement or message), in
    ``global_ids`` order."""
    text = " ".join(f"{c.statement} {c.message}" for c in claims)
    return [g for g in global_ids if g in text]


def symbolic_claims(variants, args, profile: str, every_global: bool, why: str) -> list:
    """The symbolic section: every claim of every variant, then the global claims (all of them, or those the
    variant claims cite; the rest ``skipped`` with ``why``)."""
    if every_global:
        mod, fn = SYMBOLIC_SECTION.rsplit(".", 1)
        return getattr(importlib.import_module(mod), fn)(variants, args)
    from tqdm import tqdm  # lazy: start-up time (the parser needs none of it)

    # lazy: start-up time (the parser needs none of it)
    from ..symbolic import run_claim, variant_claim_ids

    # lazy: start-up time (the parser needs none of it)
    from ..symbolic.global_claims import GLOBAL_IDS

    kw = {"profile": profile, "seed": args.seed or 0, "imports": tuple(args.imports or ())}
    ids = [c for v in variants for c in variant_claim_ids(v)]
    out = [
        run_claim(cid, **kw)
        for cid in tqdm(ids, desc="symbolic proofs", unit="claim", disable=args.no_progress)
    ]
    cited = cited_globals(out, GLOBAL_IDS)
    out += [run_claim(cid, **kw) for cid in cited]
    out += [_skipped(cid, why) for cid in GLOBAL_IDS if cid not in cited]
    return out


def skipped_training_claims(reason: str) -> list:
    """The training claims, each ``skipped`` with ``reason`` (re-running one gives the same skipped claim)."""
    return [_skipped(cid, reason) for cid in TRAINING_CLAIMS]


def _skipped(cid: str, reason: str):
    from ..claims import ClaimResult  # lazy: start-up time (the parser needs none of it)

    if cid not in TRAINING_CLAIMS:  # a global claim (symbolic section)
        return ClaimResult(
            id=cid,
            kind=_global_kind(cid),
            status="skipped",
            tier="symbolic (not run)",
            title="Global claim not run in this report",
            statement="A global claim of the symbolic section (it does not depend on a registered variant); "
            "not run by this command.",
            message=f"{reason}; run it with: python -m equivalence verify --global-claims, or "
            f"python -m equivalence prove {cid.split('/')[0]}",
            rerun={"command": "not-run", "module": __name__, "claim": cid, "reason": reason},
        )
    return ClaimResult(
        id=cid,
        kind="learned",
        status="skipped",
        tier="training (not run)",
        title="Training check not run in this report",
        statement="A training check of the Learned section (Zucchet et al. 2023, Experiments 1 and 2); "
        "not run by this command.",
        message=f"{reason}; run it with: python -m equivalence verify --training, or "
        "python -m equivalence train-check teacher-student|icl-regression",
        rerun={"command": "not-run", "module": __name__, "claim": cid, "reason": reason},
    )


def rerun_claim(rerun: dict):
    """``check-certificate``'s re-runner for a skipped training or global claim: the same skipped claim."""
    # lazy: start-up time (the parser needs none of it)
    from ..symbolic.global_claims import GLOBAL_IDS

    cid, reason = rerun.get("claim"), rerun.get("reason")
    if cid not in TRAINING_CLAIMS + tuple(GLOBAL_IDS) or not isinstance(reason, str):
        raise ValueError(f"not a skipped training or global claim: {rerun}")
    return _skipped(cid, reason)


def _numeric_error(variant, dt, dev, e: BaseException, profile: str, seed: int):
    """An ``error`` claim for a variant whose construction or reference raised (a user's variant,
    typically)."""
    from ..claims import ClaimResult  # lazy: start-up time (the parser needs none of it)

    dname = str(dt).replace("torch.", "")
    return ClaimResult(
        id=f"{variant.name.upper()}-NUMERIC-{dname.upper()}-{dev.upper()}/v1",
        kind="numeric",
        status="error",
        construction=variant.name,
        tier="random-cases",
        title=f"{variant.name}: the numeric check could not run ({dname}, {dev})",
        statement=f"The construction of '{variant.name}' equals its reference numerically ({dname}, {dev}).",
        message=f"{type(e).__name__} while checking '{variant.name}': {e}"[:500],
        rerun={
            "command": "numeric",
            "variant": variant.name,
            "profile": profile,
            "seed": seed,
            "dtype": dname,
            "device": dev,
        },
    )


def numeric_claims(variant, targets, profile: str, seed: int) -> list:
    """The numeric claims of ``variant`` at every ``(dtype, device)`` of ``targets``, the float64 reference of
    each case computed once for all of them (:func:`equivalence.numeric.check_variant_numeric_targets`). A
    variant that raises (often the user's) is checked once per target instead, and each target that raises
    becomes an ``error`` claim."""
    # lazy: start-up time (the parser needs none of it)
    from ..numeric import check_variant_numeric, check_variant_numeric_targets

    try:
        return check_variant_numeric_targets(variant, targets, profile=profile, seed=seed)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - find which targets raise, each on its own
        pass
    out = []
    for dt, dev in targets:
        try:
            out.append(check_variant_numeric(variant, profile=profile, seed=seed, dtype=dt, device=dev))
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a variant that raises: an error claim
            out.append(_numeric_error(variant, dt, dev, e, profile, seed))
    return out


@contextlib.contextmanager
def _timed(spent: dict, name: str):
    """Add the CPU seconds (this process, all threads) and wall seconds of the block to ``spent[name]``."""
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        t = spent.setdefault(name, {"cpu_s": 0.0, "wall_s": 0.0})
        t["cpu_s"] = round(t["cpu_s"] + time.process_time() - c0, 2)
        t["wall_s"] = round(t["wall_s"] + time.perf_counter() - w0, 2)


def run(args: argparse.Namespace) -> int:
    from ..report.write import check_out_dir  # lazy: start-up time (the parser needs none of it)

    check_out_dir(args.out)
    threads = check_threads(args.threads) or DEFAULT_THREADS
    for spec in args.imports:
        import_user(spec)
    device = resolve_device(args.device)
    profile = resolve_profile(args.profile)
    train, why = training_selected(args, profile)
    every_global, why_global = globals_selected(args)

    import torch  # the checks themselves need torch from here on
    from tqdm import tqdm  # lazy: start-up time (the parser needs none of it)

    import constructions  # lazy: start-up time (torch)

    from ..claims import ClaimResult  # lazy: start-up time (the parser needs none of it)
    from ..report import provenance, write_report  # lazy: start-up time (the parser needs none of it)

    names = args.variant or constructions.available()
    variants = [constructions.get(n) for n in names]
    targets = [(torch.float64, "cpu"), (torch.float32, "cpu")] + (
        [(torch.float32, device)] if device != "cpu" else []
    )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    claims: list[ClaimResult] = []
    spent: dict[str, dict] = {}  # per section: CPU and wall seconds (the thread policy's measurement)
    try:
        with _timed(spent, "numeric"):
            for v in tqdm(variants, desc="numeric checks", disable=args.no_progress, unit="variant"):
                claims.extend(numeric_claims(v, targets, profile, args.seed))
        for section in SECTIONS:
            name = "training" if section == TRAINING_SECTION else "symbolic"
            if section == TRAINING_SECTION and not train:
                claims.extend(skipped_training_claims(why))
                continue
            with _timed(spent, name):
                if section == SYMBOLIC_SECTION and not every_global:
                    claims.extend(symbolic_claims(variants, args, profile, every_global, why_global))
                    continue
                try:
                    fn = importlib.import_module(section.rsplit(".", 1)[0])
                except ModuleNotFoundError as e:
                    if e.name and section.startswith(e.name):
                        continue  # pillar not present in this version
                    raise
                claims.extend(getattr(fn, section.rsplit(".", 1)[1])(variants, args))
    finally:
        torch.set_num_threads(before)
    claims.sort(key=lambda c: c.id)
    prov = provenance(device)
    prov["selection"] = {
        "variants": list(names),
        "training": train,
        "training_reason": why,
        "global_claims": "all" if every_global else "cited",
        "global_claims_reason": why_global,
        "profile": profile,
    }
    prov["threads"] = {
        "torch_intra_op": threads,
        "policy": "--threads"
        if args.threads
        else f"default {DEFAULT_THREADS} (small tensors; docs/benchmarks.md)",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        # CPU beside wall time per section: CPU well above wall would mean threads spinning, not working
        "sections": spent
        if os.environ.get("SOURCE_DATE_EPOCH") is None
        else "omitted (SOURCE_DATE_EPOCH is set: reproducible bytes)",
    }
    cert = write_report(claims, args.out, provenance=prov, command=command_line())
    bad = [c for c in claims if not c.ok]
    skipped = sum(c.status == "skipped" for c in claims)
    print(
        f"{len(claims)} claims, {len(bad)} not holding"
        + (f", {skipped} skipped" if skipped else "")
        + f"; report written to {args.out}/ (report.md, report.html, certificate.json)"
    )
    if not train:
        print(f"  training checks: {why}")
    if not every_global:
        print(f"  global claims: {why_global}")
    from ..report.trust import replay_lines  # lazy: start-up time (the parser needs none of it)

    replays = replay_lines(cert, args.out)  # each failure: the one command that reproduces it from its file
    for c in bad:
        print(f"  {c.status.upper()}: {c.id}: {c.message[:200]}")
        if c.id in replays:
            print(f"    replay: {replays[c.id]}")
    return 0 if cert["all_ok"] else 1
