"""``check-certificate``: validate a ``certificate.json`` and re-run every claim it records.

Steps: parse (a truncated file is reported as such), schema, integrity digests (naming each edited claim),
the sha256 of every file listed in ``artifacts`` (figures, results, checkpoints next to the certificate),
then every claim is re-run from its ``rerun`` field and compared with what the certificate says
(symbolic claims: every field but ``seconds``; numeric and learned claims: status, statement, sizes, kind,
tier, construction).
Exit status: 0 confirmed, 1 the certificate does not hold (says which claim and which field), 2 bad input.

Re-runners by ``rerun["command"]``: ``prove`` (symbolic, :func:`equivalence.symbolic.run_claim`),
``numeric`` (:func:`equivalence.numeric.check_variant_numeric` with the recorded arguments); any other
command needs ``rerun["module"]`` naming a module with ``rerun_claim(rerun: dict) -> ClaimResult``.
"""

import argparse
import importlib
import itertools
import json
import shlex
from pathlib import Path

__all__ = ["add_parser", "check_certificate", "rerun_claim", "run"]

_NUMERIC_FIELDS = ("id", "kind", "status", "construction", "tier", "sizes", "statement")
_IGNORED = ("seconds",)


def add_parser(sub) -> None:
    p = sub.add_parser("check-certificate", help="validate a certificate.json and re-run its claims",
                       description="Validate the schema and digests of a certificate written by verify or prove, "
                                   "re-run every claim from its recorded arguments and compare. Exits 1 and names the "
                                   "claim when anything no longer holds.")
    p.add_argument("certificate", type=Path, help="path to certificate.json")
    p.add_argument("--claim", action="append", default=None, metavar="ID", help="re-run only this claim (repeatable)")
    p.add_argument("--no-rerun", action="store_true", help="only check the schema and the digests")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file first (in addition to the --import of the recorded command)")
    p.set_defaults(run=run)


def rerun_claim(claim: dict):
    """Re-run one claim from its ``rerun`` field; returns a :class:`~equivalence.claims.ClaimResult`."""
    r = claim["rerun"]
    cmd = r.get("command")
    if cmd == "prove":
        from ..symbolic.catalogue import run_claim

        return run_claim(r["claim"], sets=r.get("sets") or None, tier=r.get("tier", "auto"), mode=r.get("mode"),
                         seed=r.get("seed", 0), profile=r.get("profile", "ci"), imports=tuple(r.get("imports", ())))
    if cmd == "numeric":
        import torch

        import constructions

        from ..numeric import check_variant_numeric

        dtype = getattr(torch, r["dtype"], None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {r['dtype']!r} in the rerun record")
        if r.get("device", "cpu").startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"claim was checked on {r['device']} but CUDA is not available here")
        return check_variant_numeric(constructions.get(r["variant"]), profile=r["profile"], seed=r["seed"], dtype=dtype,
                                     device=r.get("device", "cpu"), **({"mode": r["mode"]} if "mode" in r else {}))
    module = r.get("module")
    if not module:
        raise ValueError(f"no re-runner for rerun command {cmd!r} (and no 'module' naming one)")
    fn = getattr(importlib.import_module(module), "rerun_claim", None)
    if fn is None:
        raise ValueError(f"module {module!r} has no rerun_claim(rerun) function")
    return fn(r)


def _differences(recorded: dict, new: dict) -> list[str]:
    """Fields where a re-run disagrees: every field but ``seconds`` for symbolic claims; for numeric and learned
    claims (float evidence that may differ in the last digits across machines) the fields of ``_NUMERIC_FIELDS``."""
    loose = recorded["rerun"].get("command") == "numeric" or recorded.get("kind") in ("numeric", "learned")
    fields = _NUMERIC_FIELDS if loose else [k for k in recorded if k not in _IGNORED]
    out = []
    for k in fields:
        if recorded.get(k) != new.get(k):
            a, b = json.dumps(recorded.get(k), sort_keys=True), json.dumps(new.get(k), sort_keys=True)
            out.append(f"{k}: certificate says {a[:160]}, re-run gives {b[:160]}")
    return out


def _imports_of(cert: dict) -> list[str]:
    found = []
    try:
        parts = shlex.split(cert.get("command", ""))
    except ValueError:
        parts = []
    for a, b in itertools.pairwise(parts):
        if a == "--import":
            found.append(b)
    for c in cert.get("claims", []):
        if isinstance(c, dict) and isinstance(c.get("rerun"), dict):
            found += [i for i in c["rerun"].get("imports", []) if isinstance(i, str)]
    return list(dict.fromkeys(found))


def check_certificate(path: Path, *, claims: list[str] | None = None, rerun: bool = True,
                      imports: tuple = (), echo=print) -> bool:
    """Check ``path``; print a line per finding through ``echo``; return whether the certificate holds."""
    from ..report.integrity import check_artifacts, claim_digest, content_digest, validate
    from .verify import _import_user

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no certificate at {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        cert = json.loads(text)
    except json.JSONDecodeError as e:
        echo(f"INVALID: {path} is not valid JSON (truncated or edited by hand?): {e.msg} at line {e.lineno}, "
             f"column {e.colno}")
        return False
    errors = validate(cert)
    if errors:
        for e in errors[:20]:
            echo(f"INVALID: {e}")
        return False
    ok = True
    recorded = cert["integrity"]["claims"]
    by_id = {c["id"]: c for c in cert["claims"]}
    for cid in sorted(set(recorded) | set(by_id)):
        if cid not in by_id:
            echo(f"EDITED: claim {cid} is listed in the integrity digests but missing from the claims")
            ok = False
        elif cid not in recorded:
            echo(f"EDITED: claim {cid} is not covered by the integrity digests (added by hand?)")
            ok = False
        elif claim_digest(by_id[cid]) != recorded[cid]:
            echo(f"EDITED: claim {cid} does not match its digest: the claim was changed after it was written")
            ok = False
    if ok and content_digest(cert) != cert["integrity"]["content"]:
        echo("EDITED: the certificate's content digest does not match: fields outside the claims (command, "
             "provenance, all_ok, ...) were changed after it was written")
        ok = False
    for problem in check_artifacts(cert, path.parent):  # figures, results, checkpoints next to the certificate
        echo(problem)
        ok = False
    if not rerun:
        echo(("OK" if ok else "FAILED") + f": schema and digests of {len(by_id)} claims checked (no re-run)")
        return ok
    seen = set()
    for spec in list(imports) + _imports_of(cert):  # each module or file once (registering twice is an error)
        key = str(Path(spec).resolve()) if spec.endswith(".py") else spec
        if key not in seen:
            seen.add(key)
            _import_user(spec)
    selected = [by_id[c] for c in claims] if claims else list(by_id.values())
    for c in sorted(selected, key=lambda c: c["id"]):
        try:
            new = rerun_claim(c).to_dict()
        except Exception as e:  # noqa: BLE001 - report any failure of a re-run, per claim
            echo(f"NOT CONFIRMED: {c['id']}: cannot re-run ({type(e).__name__}: {e})")
            ok = False
            continue
        diffs = _differences(c, new)
        if diffs:
            ok = False
            echo(f"DOES NOT HOLD: {c['id']}: the re-run disagrees with the certificate")
            for d in diffs:
                echo(f"    {d}")
        else:
            echo(f"confirmed: {c['id']} ({c['status']})")
    echo(("CONFIRMED" if ok else "FAILED") + f": {len(selected)} claims re-run from {path}")
    return ok


def run(args: argparse.Namespace) -> int:
    if args.claim:
        data = None
        try:
            data = json.loads(Path(args.certificate).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            pass
        if isinstance(data, dict) and isinstance(data.get("claims"), list):
            ids = {c.get("id") for c in data["claims"] if isinstance(c, dict)}
            missing = [c for c in args.claim if c not in ids]
            if missing:
                raise KeyError(f"--claim {', '.join(missing)}: not in the certificate; it has {', '.join(sorted(ids))}")
    ok = check_certificate(args.certificate, claims=args.claim, rerun=not args.no_rerun, imports=tuple(args.imports))
    return 0 if ok else 1
