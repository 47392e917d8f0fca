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
import re
from pathlib import Path

from ..claims import STATUSES  # one vocabulary

__all__ = ["SCHEMA", "artifact_digests", "canonical", "check_artifacts", "claim_digest", "content_digest",
           "file_sha256", "integrity", "is_plain_name", "sha256", "validate"]

SCHEMA = "attention-rnn-equivalence/certificate/v1"
KINDS = ("symbolic", "numeric", "learned", "impossibility", "invariance")
_CLAIM_FIELDS = {"id": str, "title": str, "statement": str, "kind": str, "status": str, "construction": str,
                 "tier": str, "sizes": dict, "latex": str, "statement_digest": str, "seconds": (int, float),
                 "evidence": dict, "counterexample": (dict, type(None)), "rerun": dict, "message": str,
                 "trust": str, "epsilon": (int, float, type(None)), "assumptions": list, "depends_on": list,
                 "replay": str}
_TOP_FIELDS = {"schema": str, "paper": dict, "command": str, "provenance": dict, "all_ok": bool, "claims": list,
               "timings": str, "integrity": dict}
#: top-level fields a certificate may omit (certificates without artifacts, e.g. from ``prove``)
_OPTIONAL_TOP_FIELDS = {"artifacts": dict}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def claim_digest(claim: dict) -> str:
    return sha256(canonical(claim))


def content_digest(cert: dict) -> str:
    return sha256(canonical({k: v for k, v in cert.items() if k != "integrity"}))


def integrity(cert: dict) -> dict:
    return {"claims": {c["id"]: claim_digest(c) for c in cert["claims"]}, "content": content_digest(cert)}


def is_plain_name(name: object) -> bool:
    """A file name inside the report folder: letters, digits, ``_ . -``, no path separator, not hidden."""
    return isinstance(name, str) and bool(_PLAIN_NAME.fullmatch(name)) and ".." not in name


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifact_digests(folder: Path, names) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` in ``folder`` (sorted by name). ``ValueError`` for a name that
    is not a plain file name or a file that does not exist: a report must never list what is not there."""
    folder = Path(folder)
    out = {}
    for name in sorted(set(names)):
        if not is_plain_name(name):
            raise ValueError(f"artifact {name!r} must be a plain file name inside the report folder")
        path = folder / name
        if not path.is_file():
            raise ValueError(f"artifact {name!r} is listed by a claim but {path} does not exist")
        out[name] = file_sha256(path)
    return out


def check_artifacts(cert: dict, folder: Path) -> list[str]:
    """Findings (empty: all good) for the files listed in ``cert["artifacts"]``, looked up in ``folder`` (the
    certificate's folder): each must exist and have the recorded sha256."""
    folder = Path(folder)
    problems = []
    for name, digest in sorted((cert.get("artifacts") or {}).items()):
        if not is_plain_name(name):
            problems.append(f"INVALID: artifact {name!r} is not a plain file name in the certificate's folder")
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"MISSING: artifact {name} listed in the certificate is not in {folder}")
        elif file_sha256(path) != digest:
            problems.append(f"EDITED: artifact {name} does not match its sha256 in the certificate: the file was "
                            "changed or replaced after the report was written")
    return problems


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
    for name, digest in (cert.get("artifacts") or {}).items() if isinstance(cert.get("artifacts"), dict) else ():
        if not is_plain_name(name):
            errors.append(f"artifact {name!r} must be a plain file name (no folder, not hidden)")
        if not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
            errors.append(f"artifact {name!r}: digest must be 64 lowercase hex digits (sha256); got {digest!r}")
    if errors:
        return errors
    if cert["schema"] != SCHEMA:
        errors.append(f"schema is {cert['schema']!r}; this version reads {SCHEMA!r}")
    seen = set()
    for n, c in enumerate(cert["claims"]):
        where = f"claim #{n}" + (f" ({c.get('id')})" if isinstance(c, dict) and isinstance(c.get("id"), str) else "")
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
        if c.get("id") in seen:
            errors.append(f"{where}: duplicate claim id")
        seen.add(c.get("id"))
        if isinstance(c.get("rerun"), dict) and not isinstance(c["rerun"].get("command"), str):
            errors.append(f"{where}: rerun.command must be a string naming how to re-run the claim")
    if not errors:
        from ..claims import OK_STATUSES

        all_ok = all(c["status"] in OK_STATUSES for c in cert["claims"])
        if cert["all_ok"] != all_ok:
            errors.append(f"all_ok is {cert['all_ok']} but the claims' statuses say {all_ok}")
    integ = cert["integrity"]
    if not isinstance(integ.get("claims"), dict) or not isinstance(integ.get("content"), str):
        errors.append("integrity must hold 'claims' (id -> sha256) and 'content' (sha256)")
    return errors
