"""Deterministic, atomic writers for the three report files (one data model: the certificate).

``certificate.json`` is the data; ``report.md`` and ``report.html`` are rendered from it only. Every file is
written to a temporary file in the target folder and moved into place with ``os.replace``, so a killed
run leaves the previous report intact and never a half-written one.

**Byte-identical reports.** With ``SOURCE_DATE_EPOCH`` set, the date comes from it and every claim's
``seconds`` is written as ``0.0`` with ``"timings": "omitted"`` (run times vary from run to run); without
it, timings are recorded (``"timings": "recorded"``). The recorded command omits ``--out`` and
``--no-progress``, which do not change any result. JSON is written with sorted keys.

**Artifacts.** Files a claim names in its evidence (``figures``: a list, ``results`` and ``checkpoint``: one
file name each — the training checks write them into the report folder before the report is written)
are listed with their sha256 in the certificate's ``artifacts`` (``integrity.check_artifacts`` verifies them).

**Permissions.** Files are created ``0666 & ~umask`` (``0644`` under the usual umask 022), like any file a
program opens for writing, not ``mkstemp``'s private ``0600``: reports are meant to be read and served.
"""

import json
import os
import re
import shlex
import tempfile
from pathlib import Path

from ..claims import STATUS_WORD, ClaimResult
from .integrity import SCHEMA, artifact_digests, integrity

__all__ = [
    "ARTIFACT_KEYS",
    "STATUS_MARK",
    "atomic_write",
    "certificate",
    "check_out_dir",
    "claim_artifacts",
    "dumps",
    "normalise_command",
    "render_html",
    "render_markdown",
    "write_report",
]

STATUS_MARK = STATUS_WORD  # one vocabulary (equivalence.claims)
PAPER = {"title": "Gated recurrent neural networks discover attention",
         "authors": "Zucchet, Kobayashi, Akram, von Oswald, Larcher, Steger, Sacramento",
         "arxiv": "2309.01775"}


#: evidence keys whose values name files in the report folder (a list of names or one name)
ARTIFACT_KEYS = ("figures", "results", "checkpoint")


def claim_artifacts(claims) -> list[str]:
    """File names the claims' evidence points to (``ARTIFACT_KEYS``), in first-seen order, without repeats."""
    names: list[str] = []
    for c in claims:
        ev = c.evidence if isinstance(c, ClaimResult) else c.get("evidence", {})
        for key in ARTIFACT_KEYS:
            v = ev.get(key)
            for name in (v if isinstance(v, list) else [v] if isinstance(v, str) else []):
                if name not in names:
                    names.append(name)
    return names


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; reports are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def normalise_command(command: str) -> str:
    """Drop ``--out PATH`` / ``--out=PATH`` and ``--no-progress`` (they change no result)."""
    try:
        parts = shlex.split(command)
    except ValueError:
        return command
    out, skip = [], False
    for p in parts:
        if skip:
            skip = False
            continue
        if p == "--out":
            skip = True
            continue
        if p.startswith("--out=") or p == "--no-progress":
            continue
        out.append(p)
    return " ".join(shlex.quote(p) if re.search(r"[^\w@%+=:,./-]", p) else p for p in out)


def dumps(cert: dict) -> str:
    return json.dumps(cert, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def certificate(claims: list[ClaimResult], provenance: dict, command: str, artifacts: dict | None = None) -> dict:
    """The certificate of ``claims`` (see the module docstring); ``artifacts``: ``{file name: sha256}`` of the
    files next to it (omitted when empty)."""
    reproducible = os.environ.get("SOURCE_DATE_EPOCH") is not None
    dicts = []
    for c in sorted(claims, key=lambda c: c.id):
        d = c.to_dict()
        if reproducible:
            d["seconds"] = 0.0
        dicts.append(d)
    ids = [d["id"] for d in dicts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"claim ids must be unique in a report; duplicated: {', '.join(dup)}")
    cert = {
        "schema": SCHEMA,
        "paper": dict(PAPER),
        "command": normalise_command(command),
        "provenance": provenance,
        "all_ok": all(c.ok for c in claims),
        "timings": "omitted" if reproducible else "recorded",
        "claims": dicts,
    }
    if artifacts:
        cert["artifacts"] = dict(sorted(artifacts.items()))
    cert["integrity"] = integrity(cert)
    return cert


def check_out_dir(out: Path) -> None:
    """``ValueError`` if the folder ``out`` (``--out``) cannot receive output files: it is an existing file, lies
    below a file, or its nearest existing folder is not writable. Checks only; creates nothing. Commands call it
    before any work, and :func:`write_report` again before writing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; expected a folder (new or existing) for the "
                         "output files")
    ancestor = out
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(f"--out {out}: {ancestor} is a file, so the folder cannot be created")
    if ancestor.exists() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: no write permission in {ancestor}")


def write_report(claims: list[ClaimResult], out: Path, *, provenance: dict, command: str) -> dict:
    """Write ``certificate.json``, ``report.md`` and ``report.html`` into ``out`` atomically; return the certificate.

    Files the claims name (figures, results, checkpoints: :func:`claim_artifacts`) must already be in ``out``;
    their sha256 go into the certificate's ``artifacts`` (``ValueError`` if one is missing)."""
    from .html import render_html
    from .markdown import render_markdown

    out = Path(out)
    check_out_dir(out)
    cert = certificate(claims, provenance, command, artifacts=artifact_digests(out, claim_artifacts(claims)))
    texts = {"certificate.json": dumps(cert), "report.md": render_markdown(cert), "report.html": render_html(cert)}
    for name, text in texts.items():
        atomic_write(out / name, text)
    return cert


def render_markdown(cert: dict) -> str:
    from .markdown import render_markdown as _r

    return _r(cert)


def render_html(cert: dict) -> str:
    from .html import render_html as _r

    return _r(cert)
