"""Deterministic, atomic writers for the three report files.

Every file is written to a temporary file in the target folder and moved into place with
``os.replace``, so a killed run leaves the previous report intact and never a half-written one.
"""

import html
import json
import os
import tempfile
from pathlib import Path

from ..claims import ClaimResult

STATUS_MARK = {"proved": "PROVED", "passed": "PASSED", "empirical": "EMPIRICAL", "expected-failure": "REFUTED (as expected)",
               "refuted": "REFUTED", "failed": "FAILED", "unexpected-pass": "UNEXPECTED PASS",
               "not-supported": "NOT SUPPORTED", "error": "ERROR", "skipped": "SKIPPED"}


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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def certificate(claims: list[ClaimResult], provenance: dict, command: str) -> dict:
    return {
        "schema": "attention-rnn-equivalence/certificate/v1",
        "paper": {"title": "Gated recurrent neural networks discover attention",
                  "authors": "Zucchet, Kobayashi, Akram, von Oswald, Larcher, Steger, Sacramento",
                  "arxiv": "2309.01775"},
        "command": command,
        "provenance": provenance,
        "all_ok": all(c.ok for c in claims),
        "claims": [c.to_dict() for c in claims],
    }


def render_markdown(cert: dict) -> str:
    p = cert["provenance"]
    lines = [
        "# Equivalence report: gated linear RNNs vs linear self-attention", "",
        f"Overall: **{'ALL CLAIMS HOLD' if cert['all_ok'] else 'SOME CLAIMS FAIL'}**  ",
        f"Date: {p['date']} · package {p['package']['version']} · commit `{p['git']['commit']}`"
        f"{' (dirty)' if p['git'].get('dirty') else ''} · device {p['device']}  ",
        f"Reproduce: `{cert['command']}`", "",
        "| claim | status | kind | construction | tier |", "|---|---|---|---|---|",
    ]
    for c in cert["claims"]:
        lines.append(f"| `{c['id']}` | {STATUS_MARK.get(c['status'], c['status'])} | {c['kind']} | "
                     f"{c['construction']} | {c['tier']} |")
    lines.append("")
    for c in cert["claims"]:
        lines += [f"## `{c['id']}` — {c['title']}", "", f"**Status:** {STATUS_MARK.get(c['status'], c['status'])}", "",
                  c["statement"], ""]
        if c["latex"]:
            lines += ["$$", c["latex"], "$$", ""]
        if c["sizes"]:
            lines.append("Sizes: " + ", ".join(f"{k}={v}" for k, v in sorted(c["sizes"].items())) + "  ")
        if c["evidence"]:
            lines.append("Evidence: " + ", ".join(f"{k}={v}" for k, v in sorted(c["evidence"].items())) + "  ")
        if c["statement_digest"]:
            lines.append(f"Statement digest (sha256): `{c['statement_digest']}`  ")
        if c["counterexample"]:
            lines += ["", "Counterexample:", "```json", json.dumps(c["counterexample"], indent=2, sort_keys=True), "```"]
        if c["message"]:
            lines += ["", f"> {c['message']}"]
        lines.append("")
    lines += ["## Provenance", "```json", json.dumps(p, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def render_html(cert: dict) -> str:
    md = render_markdown(cert)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Equivalence report</title></head><body><pre>" + html.escape(md) + "</pre></body></html>\n")


def write_report(claims: list[ClaimResult], out: Path, *, provenance: dict, command: str) -> dict:
    """Write ``report.md``, ``report.html`` and ``certificate.json`` into ``out`` atomically; return the certificate."""
    cert = certificate(claims, provenance, command)
    out = Path(out)
    atomic_write(out / "certificate.json", json.dumps(cert, indent=2, sort_keys=True, allow_nan=False) + "\n")
    atomic_write(out / "report.md", render_markdown(cert))
    atomic_write(out / "report.html", render_html(cert))
    return cert
