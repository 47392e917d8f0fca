"""Deterministic, atomic writers for the three report files (one data model: the certificate).

``certificate.json`` is the data; ``report.md`` and ``report.html`` are rendered from it only. Every file is
written to a temporary file and moved into place with ``os.replace`` (:func:`atomic_write`); the whole set
is staged and swapped in at once (below), so a killed run leaves the previous report intact and never a
half-written one.

**Byte-identical reports.** With ``SOURCE_DATE_EPOCH`` set, the date comes from it and every claim's
``seconds`` is written as ``0.0`` with ``"timings": "omitted"`` (run times vary from run to run); without
it, timings are recorded (``"timings": "recorded"``). The recorded command omits ``--out`` and
``--no-progress``, which do not change any result. JSON is written with sorted keys.

**Artifacts.** Files a claim names in its evidence (``figures``: a list, ``results`` and ``checkpoint``: one
file name each — the training checks write them into the staging folder of the report set) and the
counterexample file of every refuted or failed claim (its ``replay`` field) are listed with their sha256 in
the certificate's ``artifacts`` (``integrity.check_artifacts`` verifies them).

**One set, swapped in whole.** Every file of a report set is written into a staging folder next to ``--out``
and swapped in only when all are complete (:mod:`equivalence.report.staging`): a killed or disk-full run
leaves the previous set intact and no orphan files.

**Code pins and manifest.** The certificate records the sha256 of the code the claims were checked with
(``code``: :mod:`equivalence.report.pins`; each claim's ``depends_on`` names its pins) and a ``manifest`` of
the claim IDs with a digest of each statement, both covered by the content digest.

**Permissions.** Files are created ``0666 & ~umask`` (``0644`` under the usual umask 022), like any file a
program opens for writing, not ``mkstemp``'s private ``0600``: reports are meant to be read and served.
"""

import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
from pathlib import Path

from ..claims import STATUS_WORD, ClaimResult
from .counterexample import file_name, payload_from_claim, write_counterexample
from .html import render_html
from .integrity import SCHEMA, artifact_digests, integrity, manifest, validate
from .markdown import render_markdown
from .pins import code_pins, depends_on, import_pins, variant_imports
from .safe import is_plain_name
from .staging import StagingError, atomic_write, commit, discard, stage_for

__all__ = [
    "ARTIFACT_KEYS",
    "DEFAULT_ASSUMPTIONS",
    "STATUS_MARK",
    "atomic_write",
    "certificate",
    "check_out_dir",
    "claim_artifacts",
    "dumps",
    "normalise_claim",
    "normalise_command",
    "render_html",
    "render_markdown",
    "write_report",
]

STATUS_MARK = STATUS_WORD  # one vocabulary (equivalence.claims)
PAPER = {
    "title": "Gated recurrent neural networks discover attention",
    "authors": "Zucchet, Kobayashi, Akram, von Oswald, Larcher, Steger, Sacramento",
    "arxiv": "2309.01775",
}


#: evidence keys whose values name files in the report folder (a list of names or one name)
ARTIFACT_KEYS = ("figures", "results", "checkpoint")


def claim_artifacts(claims) -> list[str]:
    """File names the claims' evidence points to (``ARTIFACT_KEYS``), in first-seen order, without repeats."""
    names: list[str] = []
    for c in claims:
        ev = c.evidence if isinstance(c, ClaimResult) else c.get("evidence", {})
        for key in ARTIFACT_KEYS:
            v = ev.get(key)
            for name in v if isinstance(v, list) else [v] if isinstance(v, str) else []:
                if name not in names:
                    names.append(name)
    return names


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


def certificate(
    claims: list[ClaimResult],
    provenance: dict,
    command: str,
    artifacts: dict | None = None,
    code: dict | None = None,
) -> dict:
    """The certificate of ``claims`` (see the module docstring); ``artifacts``: ``{file name: sha256}`` of the
    files next to it (omitted when empty); ``code``: the code pins (:func:`equivalence.report.pins.code_pins`,
    computed now when not given)."""
    if code is None:
        code = code_pins(_import_specs(command))
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
        "manifest": manifest(dicts),
        "code": code,
    }
    if artifacts:
        cert["artifacts"] = dict(sorted(artifacts.items()))
    cert["integrity"] = integrity(cert)
    return cert


def check_out_dir(out: Path) -> None:
    """``ValueError`` if the folder ``out`` (``--out``) cannot receive output files: it is an existing
    file, lies below a file, or its nearest existing folder is not writable (tried by creating and removing
    an empty hidden file there: permission bits say nothing for root, ``/proc`` or a read-only mount).
    Commands call it before any work, and :func:`write_report` again before writing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"--out {out}: exists and is not a folder; expected a folder (new or existing) for the "
            "output files"
        )
    ancestor = out
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(f"--out {out}: {ancestor} is a file, so the folder cannot be created")
    if ancestor.exists() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: no write permission in {ancestor}")
    if ancestor.is_dir():  # permission bits say nothing for root, /proc or a read-only mount: try it
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=ancestor)
        except OSError as e:
            raise ValueError(
                f"--out {out}: cannot create files in {ancestor} ({e.strerror or e}); expected a "
                "writable folder"
            ) from None
        os.close(fd)
        os.unlink(probe)


def _import_specs(command: str) -> list[str]:
    """The ``--import`` arguments of a recorded command line."""
    try:
        parts = shlex.split(command)
    except ValueError:
        return []
    out = []
    for a, b in itertools.pairwise(parts):
        if a == "--import":
            out.append(b)
    out += [p.split("=", 1)[1] for p in parts if p.startswith("--import=")]
    return list(dict.fromkeys(out))


#: what a claim takes on trust when its producer says nothing more specific, by kind
DEFAULT_ASSUMPTIONS = {
    "numeric": (
        "the float64 torch reference is the layer's definition",
        (
            "the tolerance model's bound |y_hat - y| <= gamma_n M + n eta (constructions.tolerance) covers "
            "every "
            "correct evaluation at the working precision"
        ),
    ),
    "symbolic": (
        "the reference is the layer's definition",
        (
            "constructions.rnn's stage functions compute the same on NumPy object arrays (exact) as on torch "
            "tensors (the layer that runs)"
        ),
    ),
    "impossibility": ("the stage functions of constructions.rnn are the template of the paper (Sec. 3)",),
    "invariance": ("the stage functions of constructions.rnn are the template of the paper (Sec. 3)",),
    "learned": (
        (
            "training on the recorded seeds, sizes and budget stands for what gradient descent finds; "
            "evidence, not a proof"
        ),
    ),
}


def normalise_claim(c: ClaimResult, code: dict, variant_import: dict[str, str]) -> ClaimResult:
    """A claim as the certificate records it: ``depends_on`` (code pins) and ``assumptions`` filled in when
    the producer left them empty. ``check-certificate`` normalises a re-run the same way before comparing."""
    changes = {}
    if not c.depends_on:
        changes["depends_on"] = depends_on(c, code, variant_import)
    if not c.assumptions and c.status not in ("skipped", "error"):
        changes["assumptions"] = DEFAULT_ASSUMPTIONS.get(c.kind, ())
    return dataclasses.replace(c, **changes) if changes else c


REPLAY_STATUSES = ("refuted", "failed")


def _stage_artifacts(names: list[str], stage: Path, out: Path) -> None:
    """Bring the artifacts ``names`` into the staging folder: written there by the training section, or (from
    callers that write them into ``out`` first) linked or copied from ``out``. Never follows a symlink."""
    for name in names:
        if not is_plain_name(name):
            raise ValueError(f"artifact {name!r} must be a plain file name inside the report folder")
        if (stage / name).exists():
            continue
        src = out / name
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            raise ValueError(f"artifact {name!r} is listed by a claim but {src} does not exist") from None
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"artifact {name!r}: {src} is not a regular file (links are not followed)")
        try:
            os.link(src, stage / name, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, stage / name, follow_symlinks=False)


def write_report(claims: list[ClaimResult], out: Path, *, provenance: dict, command: str) -> dict:
    """Write the report set into ``out`` atomically as a whole; return the certificate.

    The set — ``certificate.json``, ``report.md``, ``report.html``, the files the claims name (training
    figures, results, checkpoints: :func:`claim_artifacts`) and a counterexample file for every refuted or
    failed claim — is assembled in a staging folder (:mod:`equivalence.report.staging`; the training section
    writes its artifacts there) and swapped into ``out`` only when complete. Artifacts may also already lie
    in ``out`` (``ValueError`` if one is missing)."""
    out = Path(out)
    check_out_dir(out)
    specs = _import_specs(command)
    try:
        stage = stage_for(out)
        code = code_pins(specs)
        vimp = variant_imports(specs)
        pins_of = {p["name"]: p for p in import_pins(specs)}
        claims = [normalise_claim(c, code, vimp) for c in claims]
        staged: list[ClaimResult] = []
        for c in claims:
            if c.status in REPLAY_STATUSES and not c.replay:
                imp = [pins_of[vimp[c.construction]]] if c.construction in vimp else []
                payload = payload_from_claim(c.to_dict(), imp)
                if payload is not None:
                    name = file_name(c.id)
                    write_counterexample(stage / name, payload)
                    c = dataclasses.replace(c, replay=name)
            staged.append(c)
        claims = staged
        names = claim_artifacts(claims) + [c.replay for c in claims if c.replay]
        names = list(dict.fromkeys(names))
        _stage_artifacts(names, stage, out)
        cert = certificate(claims, provenance, command, artifacts=artifact_digests(stage, names), code=code)
        problems = validate(cert)  # never write a certificate that check-certificate would call invalid
        if problems:
            raise ValueError("the report's certificate would be invalid: " + "; ".join(problems[:5]))
        texts = {
            "certificate.json": dumps(cert),
            "report.md": render_markdown(cert),
            "report.html": render_html(cert),
        }
        for name, text in texts.items():
            atomic_write(stage / name, text)
        commit(out, names + list(texts))
    except OSError as e:
        discard(out)
        raise StagingError(
            e.errno,
            f"could not write the report set into {out}: {e.strerror or e}; the previous "
            "report set (if any) is unchanged and nothing of the new one was left",
        ) from None
    except BaseException:
        discard(out)
        raise
    return cert
