"""Certificate schema and integrity: what a valid ``certificate.json`` looks like, and its digests.

A certificate carries ``integrity = {"claims": {id: sha256}, "content": sha256}``: the sha256 of each
claim's canonical JSON and of the whole certificate without the ``integrity`` field. Canonical JSON is
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``. The
digests detect an edit (and name the edited claim); they are not a signature — someone can recompute
them, which is why ``check-certificate`` also *re-runs* every claim and compares.

Files written next to the certificate (the training checks' figures, JSON results and checkpoints) are
listed in the optional top-level ``artifacts = {file name: sha256 of its bytes}`` (covered by the content
digest); :func:`check_artifacts` recomputes them, so a replaced or edited figure is detected.
"""

import hashlib
import json
import os
import re
from pathlib import Path

from ..claims import OK_STATUSES, STATUSES  # one vocabulary
from .safe import UntrustedInput, is_plain_name, safe_member, tty

__all__ = [
    "SCHEMA",
    "STATEMENT_FIELDS",
    "artifact_digests",
    "canonical",
    "check_artifacts",
    "check_manifest",
    "claim_digest",
    "content_digest",
    "file_sha256",
    "integrity",
    "is_plain_name",
    "manifest",
    "sha256",
    "statement_digest",
    "validate",
]

SCHEMA = "attention-rnn-equivalence/certificate/v1"
KINDS = ("symbolic", "numeric", "learned", "impossibility", "invariance")
_CLAIM_FIELDS = {
    "id": str,
    "title": str,
    "statement": str,
    "kind": str,
    "status": str,
    "construction": str,
    "tier": str,
    "sizes": dict,
    "latex": str,
    "statement_digest": str,
    "seconds": (int, float),
    "evidence": dict,
    "counterexample": (dict, type(None)),
    "rerun": dict,
    "message": str,
    "trust": str,
    "epsilon": (int, float, type(None)),
    "assumptions": list,
    "depends_on": list,
    "replay": str,
}
_TOP_FIELDS = {
    "schema": str,
    "paper": dict,
    "command": str,
    "provenance": dict,
    "all_ok": bool,
    "claims": list,
    "timings": str,
    "integrity": dict,
    "manifest": list,
    "code": dict,
}
#: top-level fields a certificate may omit (certificates without artifacts, e.g. from ``prove``)
_OPTIONAL_TOP_FIELDS = {"artifacts": dict}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CLAIM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,199}")


def _validate_pins(code: dict, manifest_: list) -> list[str]:
    """Shape errors of the ``code`` pins and the ``manifest``."""
    errors = []
    for n, m in enumerate(manifest_):
        if not (
            isinstance(m, dict)
            and set(m) == {"id", "statement"}
            and isinstance(m["id"], str)
            and isinstance(m["statement"], str)
            and _HEX64.fullmatch(m["statement"])
        ):
            errors.append(f"manifest entry #{n} must be {{'id': claim id, 'statement': sha256}}")
            break
    pkg = code.get("package")
    if not (
        isinstance(pkg, dict)
        and isinstance(pkg.get("sha256"), str)
        and isinstance(pkg.get("files"), dict)
        and all(
            isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in pkg["files"].items()
        )
    ):
        errors.append("code.package must be {'sha256': ..., 'files': {path: sha256}}")
    imps = code.get("imports")
    if not (
        isinstance(imps, list)
        and all(
            isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("sha256"), str)
            for i in imps
        )
    ):
        errors.append("code.imports must be a list of {'name', 'sha256'}")
    vers = code.get("versions")
    if not (
        isinstance(vers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in vers.items())
    ):
        errors.append("code.versions must map library names to version strings")
    return errors


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: the fields of a claim that make up *what it states* (the manifest's statement digest)
STATEMENT_FIELDS = (
    "id",
    "title",
    "statement",
    "kind",
    "construction",
    "tier",
    "sizes",
    "latex",
    "statement_digest",
)


def statement_digest(claim: dict) -> str:
    """sha256 of what a claim states (:data:`STATEMENT_FIELDS`), independent of its outcome."""
    return sha256(canonical({k: claim.get(k) for k in STATEMENT_FIELDS}))


def manifest(claims: list[dict]) -> list[dict]:
    """``[{"id", "statement"}]``: every claim ID with its statement digest, in ID order (the certificate's
    list of what it certifies; covered by the content digest)."""
    return [{"id": c["id"], "statement": statement_digest(c)} for c in sorted(claims, key=lambda c: c["id"])]


def check_manifest(cert: dict) -> list[str]:
    """Findings (empty: all good): claims deleted from, added to, or restated against the manifest."""
    listed = {m.get("id"): m.get("statement") for m in cert.get("manifest", []) if isinstance(m, dict)}
    by_id = {c["id"]: c for c in cert["claims"]}
    out = []
    for cid in sorted(set(listed) - set(by_id), key=str):
        out.append(f"DELETED: claim {cid} is in the certificate's manifest but not among its claims")
    for cid in sorted(set(by_id) - set(listed)):
        out.append(f"ADDED: claim {cid} is among the claims but not in the certificate's manifest")
    for cid in sorted(set(by_id) & set(listed)):
        if statement_digest(by_id[cid]) != listed[cid]:
            out.append(f"EDITED: the statement of claim {cid} does not match its manifest digest")
    return out


def claim_digest(claim: dict) -> str:
    return sha256(canonical(claim))


def content_digest(cert: dict) -> str:
    return sha256(canonical({k: v for k, v in cert.items() if k != "integrity"}))


def integrity(cert: dict) -> dict:
    return {"claims": {c["id"]: claim_digest(c) for c in cert["claims"]}, "content": content_digest(cert)}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifact_digests(folder: Path, names) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` in ``folder`` (sorted by name). ``ValueError`` for a name
    that is not a plain file name or a file that does not exist: a report must never list what is not
    there."""
    folder = Path(folder)
    out = {}
    for name in sorted(set(names)):
        if not is_plain_name(name):
            raise ValueError(f"artifact {name!r} must be a plain file name inside the report folder")
        path = folder / name
        if not path.is_file() or path.is_symlink():
            raise ValueError(
                f"artifact {name!r} is listed by a claim but {path} does not exist (or is a link)"
            )
        out[name] = file_sha256(path)
    return out


def check_artifacts(cert: dict, folder: Path) -> list[str]:
    """Findings (empty: all good) for the files listed in ``cert["artifacts"]``, looked up in ``folder`` (the
    certificate's folder): each must exist and have the recorded sha256."""

    folder = Path(folder)
    problems = []
    for name, digest in sorted((cert.get("artifacts") or {}).items()):
        try:
            path = safe_member(folder, name)  # plain name, regular file, never a symlink, never outside
        except UntrustedInput as e:
            word = (
                "MISSING" if is_plain_name(name) and not os.path.lexists(Path(folder) / name) else "INVALID"
            )
            problems.append(f"{word}: artifact {tty(name)[:120]}: {e}")
            continue
        if file_sha256(path) != digest:
            problems.append(
                f"EDITED: artifact {name} does not match its sha256 in the certificate: the file was "
                "changed or replaced after the report was written"
            )
    return problems


#: the types of the re-run record's fields the re-runners read (a field of another type is refused before
#: anything is re-run, with or without --no-rerun)
_RERUN_FIELDS = {
    "claim": str,
    "command": str,
    "device": str,
    "dtype": str,
    "experiment": str,
    "mode": (str, type(None)),
    "module": str,
    "profile": str,
    "reason": str,
    "seed": int,
    "tier": str,
    "variant": str,
    "imports": list,
    "sets": (list, type(None)),
}


def _validate_rerun(r: dict, where: str) -> list[str]:
    errors = []
    for k, t in _RERUN_FIELDS.items():
        if k in r and (isinstance(r[k], bool) or not isinstance(r[k], t)):
            errors.append(f"{where}: rerun.{k} must be {_type_name(t)}; got {type(r[k]).__name__}")
    if isinstance(r.get("seed"), int) and not isinstance(r["seed"], bool) and abs(r["seed"]) > 1 << 63:
        errors.append(f"{where}: rerun.seed is out of range")
    if isinstance(r.get("imports"), list) and not all(isinstance(i, str) for i in r["imports"]):
        errors.append(f"{where}: rerun.imports must be a list of strings")
    if isinstance(r.get("sets"), list) and not all(isinstance(st, dict) for st in r["sets"]):
        errors.append(f"{where}: rerun.sets must be a list of objects")
    return errors


def _type_name(t) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def validate(cert: object) -> list[str]:
    """Schema errors of a parsed certificate (empty list: valid). Each error names the field (and claim)."""
    if not isinstance(cert, dict):
        return [f"the certificate must be a JSON object; got {type(cert).__name__}"]
    errors = []
    for k, t in _TOP_FIELDS.items():
        if k not in cert:
            errors.append(f"missing top-level field {k!r}")
        elif not isinstance(cert[k], t):
            errors.append(f"top-level field {k!r} must be {_type_name(t)}; got {type(cert[k]).__name__}")
    for k, t in _OPTIONAL_TOP_FIELDS.items():
        if k in cert and not isinstance(cert[k], t):
            errors.append(f"top-level field {k!r} must be {_type_name(t)}; got {type(cert[k]).__name__}")
    for k in cert:
        if k not in _TOP_FIELDS and k not in _OPTIONAL_TOP_FIELDS:
            errors.append(f"unknown top-level field {k!r}")
    for name, digest in (
        (cert.get("artifacts") or {}).items() if isinstance(cert.get("artifacts"), dict) else ()
    ):
        if not is_plain_name(name):
            errors.append(f"artifact {name!r} must be a plain file name (no folder, not hidden)")
        if not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
            errors.append(
                f"artifact {name!r}: digest must be 64 lowercase hex digits (sha256); got {digest!r}"
            )
    if errors:
        return errors
    errors += _validate_pins(cert["code"], cert["manifest"])
    if cert["schema"] != SCHEMA:
        errors.append(f"schema is {cert['schema']!r}; this version reads {SCHEMA!r}")
    seen = set()
    for n, c in enumerate(cert["claims"]):
        where = f"claim #{n}" + (
            f" ({c.get('id')})" if isinstance(c, dict) and isinstance(c.get("id"), str) else ""
        )
        if not isinstance(c, dict):
            errors.append(f"{where} must be an object")
            continue
        for k, t in _CLAIM_FIELDS.items():
            if k not in c:
                errors.append(f"{where}: missing field {k!r}")
            elif isinstance(c[k], bool) and t in ((int, float),) or not isinstance(c[k], t):
                errors.append(f"{where}: field {k!r} must be {_type_name(t)}; got {type(c[k]).__name__}")
        for k in c:
            if k not in _CLAIM_FIELDS:
                errors.append(f"{where}: unknown field {k!r}")
        if c.get("status") not in STATUSES:
            errors.append(f"{where}: status {c.get('status')!r} is not one of {', '.join(STATUSES)}")
        if c.get("kind") not in KINDS:
            errors.append(f"{where}: kind {c.get('kind')!r} is not one of {', '.join(KINDS)}")
        if isinstance(c.get("id"), str) and not _CLAIM_ID.fullmatch(c["id"]):
            errors.append(
                f"{where}: id must be letters, digits and -_.:/+ (at most 200); got {c['id'][:80]!r}"
            )
        for k in ("assumptions", "depends_on"):
            if isinstance(c.get(k), list) and not all(isinstance(a, str) for a in c[k]):
                errors.append(f"{where}: field {k!r} must be a list of strings")
        if c.get("id") in seen:
            errors.append(f"{where}: duplicate claim id")
        seen.add(c.get("id"))
        if isinstance(c.get("rerun"), dict) and c["rerun"] and not isinstance(c["rerun"].get("command"), str):
            errors.append(f"{where}: rerun.command must be a string naming how to re-run the claim")
        elif isinstance(c.get("rerun"), dict):
            errors += _validate_rerun(c["rerun"], where)
    if not errors:
        all_ok = all(c["status"] in OK_STATUSES for c in cert["claims"])
        if cert["all_ok"] != all_ok:
            errors.append(f"all_ok is {cert['all_ok']} but the claims' statuses say {all_ok}")
    integ = cert["integrity"]
    if not isinstance(integ.get("claims"), dict) or not isinstance(integ.get("content"), str):
        errors.append("integrity must hold 'claims' (id -> sha256) and 'content' (sha256)")
    return errors
