"""``check-certificate``: validate a ``certificate.json`` and re-run every claim it records — safely.

A certificate is untrusted input. Checking one never imports, executes or reads (outside the
certificate's own folder) anything it names: the file is size-limited before it is parsed (strict JSON,
bounded nesting and integers), artifact names must be plain file names in its folder (symlinks are never
followed), the re-runners are a fixed table of this package (``prove``, ``numeric``, ``train-check``,
``not-run``), and a
user's module is imported only when *the reader* passes it with ``--import`` — and only when its sha256 is
the one the certificate pins. Every text from the certificate is escaped before it is printed.

Steps: parse, schema, integrity digests (naming each edited claim), the manifest (deleted or added claims),
the sha256 of every artifact, the code pins (``CODE CHANGED: <module>`` when this package's sources, a
library version or a pinned user module differ: the re-run would use other code), then every claim is
re-run and its result compared with the recorded one field by field — evidence exactly when the re-run runs
on the same platform and library versions, and as notes otherwise — and, for a full re-run, the claim list
is compared with the one the recorded command produces.
Exit status: 0 confirmed, 1 the certificate does not hold (each finding names the claim and the field),
2 bad input.
"""

import argparse
import contextlib
import io
import json
import math
import platform
import shlex
import sys
from pathlib import Path

from ..cli import build_parser
from ..report.safe import UntrustedInput, load_json_file, tty
from .prove import LIMITS
from .verify import TRAINING_CLAIMS

__all__ = ["MAX_BYTES", "add_parser", "check_certificate", "expected_ids", "rerun_claim", "run"]

#: the largest certificate read (checked before parsing)
MAX_BYTES = 32 << 20
_IGNORED = ("seconds", "replay")
_LOOSE_KINDS = ("numeric", "learned")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "check-certificate",
        help="validate a certificate.json and re-run its claims",
        description="Validate the schema, digests, manifest, artifacts and code pins of a certificate "
        "written by verify or prove, re-run every claim and compare. Nothing the "
        "certificate names is imported or run: pass your own copy of a user module with "
        "--import (refused when its sha256 differs from the pinned one). Exits 1 and names "
        "the claim when anything no longer holds.",
    )
    p.add_argument("certificate", type=Path, help="path to certificate.json")
    p.add_argument(
        "--claim", action="append", default=None, metavar="ID", help="re-run only this claim (repeatable)"
    )
    p.add_argument(
        "--no-rerun", action="store_true", help="only check the schema, digests, artifacts and code pins"
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import this module or .py file (the user variant the certificate's claims are about) before "
        "re-running; it must have the sha256 the certificate pins",
    )
    p.set_defaults(run=run)


def _need(r: dict, key: str, types, default=...):
    v = r.get(key, default)
    if v is ...:
        raise ValueError(f"the rerun record lacks {key!r}")
    if (
        not isinstance(v, types)
        or isinstance(v, bool)
        and bool not in (types if isinstance(types, tuple) else (types,))
    ):
        raise ValueError(f"rerun.{key} has the wrong type ({type(v).__name__})")
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 1 << 63:
        raise ValueError(f"rerun.{key} is out of range")
    return v


def _bounded_sets(sets) -> None:
    """Sizes of a recorded ``prove`` re-run within ``prove``'s own limits (a forged size never finishes)."""

    if sets is None:
        return
    if len(sets) > 16:
        raise ValueError(f"rerun.sets lists {len(sets)} size sets; at most 16 are re-run")
    for st in sets:
        if not isinstance(st, dict):
            raise ValueError("rerun.sets must be a list of objects")
        for k, v in st.items():
            if k in LIMITS and isinstance(v, int) and not isinstance(v, bool) and v > LIMITS[k]:
                raise ValueError(f"rerun.sets: {k}={v} is beyond prove's limit {LIMITS[k]}")


def rerun_claim(claim: dict):
    """Re-run one claim from its ``rerun`` field with this package's own re-runners (never a module the
    certificate names); returns a :class:`~equivalence.claims.ClaimResult`."""
    r = claim["rerun"]
    cmd = r.get("command")
    if not r:
        raise ValueError("the claim records no re-run (its checker crashed or it was written by hand)")
    if cmd == "prove":
        from ..symbolic.catalogue import run_claim  # lazy: start-up time (checked claims only)

        sets = _need(r, "sets", (list, type(None)), None)
        imports = _need(r, "imports", list, [])
        _bounded_sets(sets)
        if not all(isinstance(i, str) for i in imports) or not all(isinstance(s, dict) for s in sets or []):
            raise ValueError("rerun.sets must be a list of objects and rerun.imports a list of strings")
        return run_claim(
            _need(r, "claim", str),
            sets=sets or None,
            tier=_need(r, "tier", str, "auto"),
            mode=_need(r, "mode", (str, type(None)), None),
            seed=_need(r, "seed", int, 0),
            profile=_need(r, "profile", str, "ci"),
            imports=tuple(imports),
        )  # imports: recorded only
    if cmd == "numeric":
        import torch  # lazy: start-up time (torch)

        import constructions  # lazy: start-up time (torch)

        # lazy: start-up time (checked claims only)
        from ..numeric import check_variant_numeric

        dtype = getattr(torch, _need(r, "dtype", str), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {tty(r['dtype'])!r} in the rerun record")
        device = _need(r, "device", str, "cpu")
        if not (device == "cpu" or device.startswith("cuda")):
            raise ValueError(f"rerun.device must be 'cpu' or 'cuda[:N]'; got {tty(device)[:40]!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"claim was checked on {tty(device)} but CUDA is not available here")
        extra = {"mode": _need(r, "mode", str)} if "mode" in r else {}
        return check_variant_numeric(
            constructions.get(_need(r, "variant", str)),
            profile=_need(r, "profile", str),
            seed=_need(r, "seed", int),
            dtype=dtype,
            device=device,
            **extra,
        )
    if cmd == "train-check":
        # lazy: start-up time (checked claims only)
        from ..training.section import rerun_claim as rerun_training

        for k, t in (("experiment", str), ("mode", str), ("seed", int), ("device", str), ("claim", str)):
            if k in r:
                _need(r, k, t)
        return rerun_training(r)
    if cmd == "not-run":  # a claim of a section the recorded command did not run: verify re-creates it
        # lazy: start-up time (checked claims only)
        from .verify import rerun_claim as rerun_not_run

        return rerun_not_run(r)
    raise ValueError(
        f"no re-runner for rerun command {tty(repr(cmd))[:60]} (this version re-runs prove, numeric, "
        "train-check and not-run claims; it never imports a module a certificate names)"
    )


def _same_environment(cert: dict) -> bool:
    """Whether this machine runs the platform, Python and library versions the certificate recorded (then a
    re-run is bitwise reproducible and evidence is compared exactly)."""

    from ..report.provenance import _version  # lazy: start-up time (checked claims only)

    p = cert.get("provenance", {})
    vers = p.get("versions", {}) if isinstance(p.get("versions"), dict) else {}
    return (
        p.get("platform") == platform.platform()
        and p.get("machine") == platform.machine()
        and p.get("python") == sys.version.split()[0]
        and all(vers.get(d) == _version(d) for d in ("torch", "numpy", "sympy"))
    )


def _evidence_diffs(a, b, path: str, exact: bool) -> list[tuple[str, bool]]:
    """``[(difference, fatal)]`` between recorded ``a`` and re-run ``b`` evidence."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(
                    (
                        f"{path}.{k}: missing from the " + ("certificate" if k not in a else "re-run"),
                        True,
                    )
                )
            else:
                out += _evidence_diffs(a[k], b[k], f"{path}.{k}", exact)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [(f"{path}: {len(a)} entries recorded, {len(b)} in the re-run", True)]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _evidence_diffs(x, y, f"{path}[{i}]", exact)
        return out
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
            return []
        if isinstance(a, int) and isinstance(b, int):
            return [(f"{path}: certificate says {a}, re-run gives {b}", True)]
        return [(f"{path}: certificate says {a!r}, re-run gives {b!r}", exact)]
    if a != b:
        return [(f"{path}: certificate says {tty(repr(a))[:120]}, re-run gives {tty(repr(b))[:120]}", True)]
    return []


def _differences(recorded: dict, new: dict, exact: bool = True) -> tuple[list[str], list[str]]:
    """``(differences that fail, notes)`` between a recorded claim and its re-run. Every field but ``seconds``
    and ``replay`` is compared exactly, except the floating-point evidence (and message and counterexample) of
    numeric and learned claims, which is compared exactly only when ``exact`` (same platform and versions)."""

    loose = recorded.get("kind") in _LOOSE_KINDS
    bad, notes = [], []
    for k in sorted(set(recorded) | set(new)):
        if k in _IGNORED:
            continue
        a, b = recorded.get(k), new.get(k)
        if k == "evidence" and loose:
            for d, fatal in _evidence_diffs(a, b, "evidence", exact):
                (bad if fatal else notes).append(d)
            continue
        if loose and not exact and k in ("message", "counterexample"):
            if a != b:
                notes.append(f"{k} differs (another platform or library version)")
            continue
        if a != b:
            sa, sb = json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)
            bad.append(f"{k}: certificate says {tty(sa)[:160]}, re-run gives {tty(sb)[:160]}")
    return bad, notes


def _parse_command(command: str):
    try:
        parts = shlex.split(command)
    except ValueError:
        return None
    if parts[:3] != ["python", "-m", "equivalence"] or len(parts) < 4 or parts[3] not in ("prove", "verify"):
        return None

    try:  # the command line is untrusted text: argparse must not print (e.g. a planted --help) or exit
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return build_parser().parse_args(parts[3:])
    except SystemExit:
        return None


def expected_ids(cert: dict) -> tuple[set[str], set[str]] | None:
    """``(required, optional)`` claim IDs that the certificate's recorded command produces here (with the
    variants registered now), or ``None`` when the command is not a ``prove``/``verify`` command line."""
    import constructions  # lazy: start-up time (torch)

    args = _parse_command(cert.get("command", ""))
    if args is None:
        return None
    # lazy: start-up time (checked claims only)
    from ..symbolic.catalogue import claim_ids, resolve_claim, variant_claim_ids

    available = set(constructions.available())
    if args.command == "prove":
        t = args.target
        if t is None:
            return set(claim_ids()), set()
        if t in available:
            ids = variant_claim_ids(constructions.get(t))
            wanted = {
                "unrolled": "UNROLLED",
                "induction": "ALLT",
                "index": "WIRING",
                "schwartz-zippel": "SZ",
            }.get(args.tier)
            return {i for i in ids if wanted is None or i.endswith(f"-{wanted}/v1")}, set()
        return {resolve_claim(t)[0]}, set()
    names = [n for n in (args.variant or sorted(available)) if n in available]
    # lazy: start-up time (checked claims only)
    from ..symbolic.global_claims import GLOBAL_IDS
    from ..training.section import LSA_VARIANTS  # lazy: start-up time (checked claims only)

    required = set(GLOBAL_IDS)
    for n in names:
        dev = "" if args.device == "cpu" else args.device.upper()
        required |= {f"{n.upper()}-NUMERIC-FLOAT64-CPU/v1", f"{n.upper()}-NUMERIC-FLOAT32-CPU/v1"}
        if dev:
            required.add(f"{n.upper()}-NUMERIC-FLOAT32-{dev}/v1")
        required |= set(variant_claim_ids(constructions.get(n)))
    # the training claims: run, or listed as skipped (a crashed experiment reports a RUN claim instead)
    optional = set(TRAINING_CLAIMS) | {"TRAIN-TEACHER-STUDENT-RUN/v1", "TRAIN-ICL-REGRESSION-RUN/v1"}
    if TRAINING_CLAIMS:
        required |= set(TRAINING_CLAIMS) - {"TRAIN-ICL-GATED-RNN-IS-GD/v1"}
    elif set(names) & set(LSA_VARIANTS):
        required |= {
            "TRAIN-TS-LOSS-THRESHOLD/v1",
            "TRAIN-TS-DISCOVERS-CONSTRUCTION/v1",
            "TRAIN-ICL-LSA-IS-GD/v1",
        }
    return required, optional


def check_certificate(
    path: Path, *, claims: list[str] | None = None, rerun: bool = True, imports: tuple = (), echo=print
) -> bool:
    """Check ``path``; print a line per finding through ``echo``; return whether the certificate holds."""
    # lazy: start-up time (checked claims only)
    from ..report.integrity import check_artifacts, check_manifest, claim_digest, content_digest, validate

    # lazy: start-up time (checked claims only)
    from ..report.pins import code_changes, import_pinned, spec_file, variant_imports
    from ..report.write import normalise_claim  # lazy: start-up time (checked claims only)

    def say(line: str) -> None:
        echo(tty(line))

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"no certificate at {tty(str(path))}")
    try:
        cert = load_json_file(path, max_bytes=MAX_BYTES, what="certificate")
    except UntrustedInput as e:
        say(f"INVALID: {e}")
        return False
    errors = validate(cert)
    if errors:
        for e in errors[:20]:
            say(f"INVALID: {e}")
        if len(errors) > 20:
            say(f"INVALID: ... and {len(errors) - 20} more problems")
        return False
    ok = True
    recorded = cert["integrity"]["claims"]
    by_id = {c["id"]: c for c in cert["claims"]}
    for cid in sorted(set(recorded) | set(by_id), key=str):
        if cid not in by_id:
            say(f"EDITED: claim {cid} is listed in the integrity digests but missing from the claims")
            ok = False
        elif cid not in recorded:
            say(f"EDITED: claim {cid} is not covered by the integrity digests (added by hand?)")
            ok = False
        elif claim_digest(by_id[cid]) != recorded[cid]:
            say(f"EDITED: claim {cid} does not match its digest: the claim was changed after it was written")
            ok = False
    if ok and content_digest(cert) != cert["integrity"]["content"]:
        say(
            "EDITED: the certificate's content digest does not match: fields outside the claims (command, "
            "provenance, manifest, code, all_ok, ...) were changed after it was written"
        )
        ok = False
    for problem in check_manifest(cert):
        say(problem)
        ok = False
    for problem in check_artifacts(cert, path.parent):  # only plain files in the certificate's own folder
        say(problem)
        ok = False
    changed = code_changes(cert["code"])
    for c in changed:
        say(c + ": a re-run would use different code than the one the claims were checked with")
        ok = False
    if not rerun:
        say(
            ("OK" if ok else "FAILED")
            + f": schema, digests, manifest, artifacts and code pins of {len(by_id)} "
            "claims checked (no re-run)"
        )
        return ok
    pins = cert["code"]["imports"]
    refused = import_pinned(list(imports), pins, strict=True)
    for line in refused:
        say(line + ": not imported; the claims that depend on it are not re-run")
        ok = False
    pinned = {p["name"]: p["sha256"] for p in pins}
    provided = set()
    from ..report.pins import file_sha256  # lazy: start-up time (checked claims only)

    for spec in imports:
        name, file = spec_file(spec)
        if pinned.get(name) == file_sha256(file):
            provided.add(name)
    vimp = variant_imports([s for s in imports if spec_file(s)[0] in provided])
    selected = [by_id[c] for c in claims] if claims else list(by_id.values())
    exact = _same_environment(cert)
    if not exact:
        say(
            "NOTE: this machine's platform or library versions differ from the certificate's; floating-point "
            "evidence of numeric and learned claims is compared as notes, not exactly"
        )
    for c in sorted(selected, key=lambda c: c["id"]):
        needs = [d.split(":", 1)[1] for d in c.get("depends_on", []) if d.startswith("import:")]
        missing = [n for n in needs if n not in provided]
        if missing:
            say(
                f"NOT RE-RUN: {c['id']}: it depends on {', '.join(missing)} (sha256 "
                f"{', '.join(pinned.get(n, '?')[:16] + '...' for n in missing)}); pass your copy with "
                "--import"
            )
            ok = False
            continue
        try:
            new = normalise_claim(rerun_claim(c), cert["code"], vimp).to_dict()
        except Exception as e:  # noqa: BLE001 - report any failure of a re-run, per claim
            say(f"NOT CONFIRMED: {c['id']}: cannot re-run ({type(e).__name__}: {str(e)[:300]})")
            ok = False
            continue
        diffs, notes = _differences(c, new, exact)
        if diffs:
            ok = False
            say(f"DOES NOT HOLD: {c['id']}: the re-run disagrees with the certificate")
            for d in diffs:
                say(f"    {d}")
        else:
            say(f"confirmed: {c['id']} ({c['status']})")
        for n in notes[:10]:
            say(f"    note: {n}")
    if not claims:
        try:
            expected = expected_ids(cert)
        except Exception as e:  # noqa: BLE001 - the command line is untrusted too
            expected = None
            say(f"NOTE: the claim list of the recorded command cannot be derived here ({type(e).__name__})")
        if expected is None:
            say(
                "NOTE: the recorded command is not a prove/verify command line; the list of claims rests "
                "on the "
                "manifest and its digests only"
            )
        else:
            required, optional = expected
            import constructions  # lazy: start-up time (torch)

            registered = set(constructions.available())
            for cid in sorted(required - set(by_id)):
                say(f"MISSING: claim {cid} is produced by the recorded command but is not in the certificate")
                ok = False
            for cid in sorted(set(by_id) - required - optional):
                if by_id[cid].get("construction") in registered or not by_id[cid].get("construction"):
                    say(f"ADDED: claim {cid} is not produced by the recorded command")
                    ok = False
    if changed:
        say(
            "CODE CHANGED: the claims were re-run with code that differs from the pinned code; the "
            "certificate "
            "is not confirmed"
        )
    say(("CONFIRMED" if ok else "FAILED") + f": {len(selected)} claims re-run from {path}")
    return ok


def run(args: argparse.Namespace) -> int:
    if args.claim:
        try:
            data = load_json_file(args.certificate, max_bytes=MAX_BYTES, what="certificate")
        except UntrustedInput:
            data = None
        if isinstance(data, dict) and isinstance(data.get("claims"), list):
            ids = {
                c.get("id") for c in data["claims"] if isinstance(c, dict) and isinstance(c.get("id"), str)
            }
            missing = [c for c in args.claim if c not in ids]
            if missing:
                raise KeyError(
                    tty(
                        f"--claim {', '.join(missing)}: not in the certificate; it has "
                        f"{', '.join(sorted(ids))[:2000]}"
                    )
                )
    ok = check_certificate(
        args.certificate, claims=args.claim, rerun=not args.no_rerun, imports=tuple(args.imports)
    )
    return 0 if ok else 1
