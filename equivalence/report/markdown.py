"""``report.md``: the certificate rendered as Markdown (LaTeX in ``$$`` blocks, BibTeX, provenance)."""

import json

from ..claims import STATUS_WORD, summary_line
from .bibtex import PAPER_BIBTEX, report_bibtex
from .learned import LEARNED_INTRO, STATUS_WORDS, format_cell, groups, href, is_learned
from .trust import assumptions, headline, replay_line, trust_rows

__all__ = ["HIDDEN_EVIDENCE", "format_evidence", "format_sizes", "render_markdown", "summary_counts"]

#: evidence keys rendered elsewhere (MathML goes into the HTML math block; a learned claim's tables and figure
#: captions are rendered as tables and figures in the Learned section)
HIDDEN_EVIDENCE = ("mathml", "tables", "figure_captions")


def summary_counts(cert: dict) -> str:
    """The claim counts (:func:`equivalence.claims.summary_line`), as the headline and the BibTeX note give
    them."""
    return summary_line(c["status"] for c in cert["claims"])


def trust_section(cert: dict) -> list[str]:
    """The opening section: what is proved, what is tested, what is assumed (and what does not hold)."""
    lines = ["## What is proved, what is tested, what is assumed", ""]
    for heading, n, meaning, ids in trust_rows(cert):
        shown = ", ".join(f"`{i}`" for i in ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        lines.append(f"- **{heading}: {n}** — {_md_text(meaning)}: {shown}")
    assumed = assumptions(cert)
    if assumed:
        lines += ["", "**Assumed** (what the claims take on trust, not checked here):", ""]
        for a, ids in assumed:
            lines.append(f"- {_md_text(a)} ({len(ids)} claims)")
    code = cert.get("code", {})
    pkg = code.get("package", {}) if isinstance(code, dict) else {}
    if pkg:
        imps = ", ".join(f"`{i['name']}` (sha256 `{i['sha256'][:16]}…`)" for i in code.get("imports", []))
        vers = ", ".join(f"{k} {v}" for k, v in sorted(code.get("versions", {}).items()))
        lines += [
            "",
            (
                f"**Code checked:** {len(pkg.get('files', {}))} source files of this package (digest "
                f"`{pkg.get('sha256', '')[:16]}…`)"
                + (f"; your modules {imps}" if imps else "")
                + f"; {vers}. `check-certificate` refuses to confirm a claim when any of them changed."
            ),
        ]
    lines += [
        "",
        (
            "The digests in `certificate.json` detect accidental edits, not a forger who recomputes them; "
            "the authoritative check is the re-run: `python -m equivalence check-certificate "
            "certificate.json`."
        ),
        "",
    ]
    return lines


def _short(v) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, separators=(", ", ": "))
    return str(v)


def format_evidence(ev: dict) -> str:
    return "; ".join(f"{k}={_short(v)}" for k, v in sorted(ev.items()) if k not in HIDDEN_EVIDENCE)


def format_sizes(sizes: dict) -> str:
    sets = sizes.get("sets") if isinstance(sizes, dict) else None
    if isinstance(sets, list):
        if not sets:
            return "symbolic (every size) or fixed by the statement"
        return " | ".join(", ".join(f"{k}={v}" for k, v in sorted(s.items())) for s in sets)
    return ", ".join(f"{k}={v}" for k, v in sorted(sizes.items()))


def _time(cert: dict, c: dict) -> str:
    return "—" if cert.get("timings") == "omitted" else f"{c['seconds']:.2f} s"


def _md_text(s: str) -> str:
    """Text safe inside a Markdown table cell, link text or emphasis."""
    return (
        str(s)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("[", "\\[")
        .replace("]", "\\]")
        .replace("*", "\\*")
        .replace("\n", " ")
    )


def _table(t: dict) -> list[str]:
    cols = [_md_text(c) for c in t.get("columns", [])]
    if not cols:
        return []
    out = [f"*{_md_text(t.get('title', ''))}*", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in t.get("rows", []):
        cells = [_md_text(format_cell(v)) for v in row] + [""] * (len(cols) - len(row))
        out.append("| " + " | ".join(cells[: len(cols)]) + " |")
    return out + [""]


def _claim(c: dict, level: str, status: str, replay_cmd: str | None = None) -> list[str]:
    """One claim: heading, status, statement, LaTeX, tables (learned claims), sizes, evidence, re-run."""
    trust = c.get("trust") or ""
    eps = f" (ε ≤ {c['epsilon']:.3g})" if isinstance(c.get("epsilon"), int | float) else ""
    lines = [
        f"{level} `{c['id']}` — {_md_text(c['title'])}",
        "",
        f"**Status:** {status} · trust {trust}{eps} · kind {c['kind']} · tier {c['tier']}",
        "",
        _md_text(c["statement"]),
        "",
    ]
    if c.get("assumptions"):
        lines += ["Assumes: " + "; ".join(_md_text(a) for a in c["assumptions"]) + "  "]
    if c["latex"]:
        lines += ["$$", c["latex"], "$$", ""]
    for t in c["evidence"].get("tables", []) if isinstance(c["evidence"].get("tables"), list) else []:
        if isinstance(t, dict):
            lines += _table(t)
    if c["sizes"]:
        lines.append(f"Sizes: {format_sizes(c['sizes'])}  ")
    ev = format_evidence(c["evidence"])
    if ev:
        lines.append(f"Evidence: {ev}  ")
    if c["statement_digest"]:
        lines.append(f"Statement digest (sha256 of the SymPy srepr): `{c['statement_digest']}`  ")
    if c["rerun"]:
        lines.append(f"Re-run: `{json.dumps(c['rerun'], sort_keys=True)}`  ")
    if c["message"]:
        lines += ["", f"> {_md_text(c['message'])}"]
    if c.get("replay") and replay_cmd:
        lines += [
            "",
            (
                f"**Replay this failure:** `{replay_cmd}` (counterexample file [{_md_text(c['replay'])}]"
                f"({href(c['replay'])}): exact parameters and inputs)"
            ),
        ]
    if c["counterexample"]:
        lines += [
            "",
            "<details><summary>Counterexample (exact values)</summary>",
            "",
            "```json",
            json.dumps(c["counterexample"], indent=1, sort_keys=True),
            "```",
            "",
            "</details>",
        ]
    lines.append("")
    return lines


def render_markdown(cert: dict) -> str:
    """``report.md`` of the certificate ``cert`` (rendered from it only)."""
    p = cert["provenance"]
    dirty = " (dirty)" if p.get("git", {}).get("dirty") else ""
    _, head, counts = headline(cert)
    lines = [
        "# Equivalence report: gated linear RNNs vs linear self-attention",
        "",
        f"Overall: **{head}** ({counts})  ",
        f"Paper: Zucchet et al. 2023, *{cert['paper']['title']}*, arXiv:{cert['paper']['arxiv']}  ",
        (
            f"Date: {p.get('date', '')} · package {p.get('package', {}).get('version', '')} · commit "
            f"`{p.get('git', {}).get('commit', 'unknown')}`{dirty} · device {p.get('device', '')}  "
        ),
        f"Reproduce: `{cert['command']}`  ",
        "Re-check: `python -m equivalence check-certificate certificate.json`  ",
        f"Certificate content sha256: `{cert['integrity']['content']}`  ",
        "Timings: "
        + (
            "omitted (SOURCE_DATE_EPOCH is set: reproducible bytes)"
            if cert.get("timings") == "omitted"
            else "recorded (wall-clock seconds of this run)"
        ),
        "",
        *trust_section(cert),
        "## Summary",
        "",
        "| claim | status | kind | construction | tier | time |",
        "|---|---|---|---|---|---|",
    ]
    for c in cert["claims"]:
        lines.append(
            f"| `{c['id']}` | {STATUS_WORD.get(c['status'], c['status'])} | {c['kind']} | "
            f"{c['construction']} | {c['tier']} | {_time(cert, c)} |"
        )
    others = [c for c in cert["claims"] if not is_learned(c)]
    if others:
        lines += ["", "## Claims", ""]
    for c in others:
        lines += _claim(c, "###", STATUS_WORD.get(c["status"], c["status"]), replay_line(cert, c))
    learned = groups(cert)
    if learned:
        lines += ["", "## Learned: empirical evidence from training (not proofs)", "", LEARNED_INTRO, ""]
    for g in learned:
        lines += [f"### {g['title']}", ""]
        for c in g["claims"]:
            lines += _claim(
                c,
                "####",
                STATUS_WORDS.get(c["status"], STATUS_WORD.get(c["status"], c["status"])),
                replay_line(cert, c),
            )
        if g["figures"]:
            lines += ["#### Figures", ""]
        for png, svg, caption in g["figures"]:
            lines += [
                f"![{_md_text(caption)}]({href(png)})",
                "",
                f"*{_md_text(caption)}* (`{png}`" + (f", [SVG]({href(svg)})" if svg else "") + ")",
                "",
            ]
    lines += [
        "## How to cite",
        "",
        "This report:",
        "",
        "```bibtex",
        report_bibtex(cert),
        "```",
        "",
        "The paper:",
        "",
        "```bibtex",
        PAPER_BIBTEX,
        "```",
        "",
        "## Provenance",
        "",
        "```json",
        json.dumps(p, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)
