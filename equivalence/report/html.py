"""``report.html``: one standalone file. Math is presentation MathML printed by SymPy from the checked
objects (browsers render MathML natively: no script, no CDN, works offline); styles are inline."""

import html
import json

from ..claims import HOLDING
from .bibtex import PAPER_BIBTEX, report_bibtex
from .learned import LEARNED_INTRO, STATUS_WORDS, format_cell, groups, href, is_learned
from .markdown import format_evidence, format_sizes, summary_counts

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#1b1b1b}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f2f2f2}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:.85rem}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.ok{color:#0a6b2d;font-weight:600}.bad{color:#b00020;font-weight:600}.neutral{color:#6b5a00;font-weight:600}
section.claim{border-top:1px solid #ddd;margin-top:1.5rem;padding-top:.5rem}math[display=block]{margin:.6rem 0;
overflow-x:auto;max-width:100%}.meta{color:#555;font-size:.9rem}
caption{text-align:left;font-style:italic;padding:.3rem 0}table+table{margin-top:.8rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.85rem;color:#555}
"""


def _cls(status: str) -> str:
    if status in HOLDING:
        return "ok"
    if status in ("skipped", "not-supported"):
        return "neutral"
    return "bad"


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def render_html(cert: dict) -> str:
    from .write import STATUS_MARK

    p = cert["provenance"]
    omitted = cert.get("timings") == "omitted"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>Equivalence report: gated linear RNNs vs linear self-attention</title>",
           f"<style>{_CSS}</style></head><body>",
           "<h1>Equivalence report: gated linear RNNs vs linear self-attention</h1>",
           (f'<p>Overall: <span class="{"ok" if cert["all_ok"] else "bad"}">'
           f'{"ALL CLAIMS HOLD" if cert["all_ok"] else "SOME CLAIMS FAIL"}</span> '
           f'({len(cert["claims"])} claims: {_e(summary_counts(cert))})</p>'),
           '<p class="meta">Paper: Zucchet et al. 2023, <em>' + _e(cert["paper"]["title"]) + "</em>, "
           f'<a href="https://arxiv.org/abs/{_e(cert["paper"]["arxiv"])}">arXiv:{_e(cert["paper"]["arxiv"])}</a><br>'
           f'Date {_e(p.get("date", ""))} · package {_e(p.get("package", {}).get("version", ""))} · commit '
           f'<code>{_e(p.get("git", {}).get("commit", "unknown"))}</code>'
           f'{" (dirty)" if p.get("git", {}).get("dirty") else ""} · device {_e(p.get("device", ""))}<br>'
           f'Reproduce: <code>{_e(cert["command"])}</code><br>'
           "Re-check: <code>python -m equivalence check-certificate certificate.json</code><br>"
           f'Certificate content sha256: <code>{_e(cert["integrity"]["content"])}</code><br>'
           "Timings: " + ("omitted (SOURCE_DATE_EPOCH is set: reproducible bytes)" if omitted
                          else "recorded (wall-clock seconds of this run)") + "</p>",
           ("<h2>Summary</h2><table><tr><th>claim</th><th>status</th><th>kind</th><th>construction</th><th>tier</th>"
           "<th>time</th></tr>")]
    for c in cert["claims"]:
        anchor = _e(c["id"].replace("/", "-"))
        secs = "—" if omitted else f"{c['seconds']:.2f} s"
        out.append(f'<tr><td><a href="#{anchor}"><code>{_e(c["id"])}</code></a></td>'
                   f'<td class="{_cls(c["status"])}">{_e(STATUS_MARK.get(c["status"], c["status"]))}</td>'
                   f'<td>{_e(c["kind"])}</td><td>{_e(c["construction"])}</td><td>{_e(c["tier"])}</td>'
                   f'<td>{_e(secs)}</td></tr>')
    out.append("</table>")
    others = [c for c in cert["claims"] if not is_learned(c)]
    if others:
        out.append("<h2>Claims</h2>")
    for c in others:
        out += _claim(c, "h3", STATUS_MARK.get(c["status"], c["status"]))
    learned = groups(cert)
    if learned:
        out += ['<h2 id="learned">Learned: empirical evidence from training (not proofs)</h2>',
                f"<p>{_md_inline(LEARNED_INTRO)}</p>"]
    for g in learned:
        out.append(f"<h3>{_e(g['title'])}</h3>")
        for c in g["claims"]:
            out += _claim(c, "h4", STATUS_WORDS.get(c["status"], STATUS_MARK.get(c["status"], c["status"])))
        if g["figures"]:
            out.append('<h4>Figures</h4><div class="figures">')
        for png, svg, caption in g["figures"]:
            link = f' (<a href="{_e(href(svg))}">SVG</a>)' if svg else ""
            out.append(f'<figure><img src="{_e(href(png))}" alt="{_e(caption)}"><figcaption>{_e(caption)} '
                       f"(<code>{_e(png)}</code>){link}</figcaption></figure>")
        if g["figures"]:
            out.append("</div>")
    out += ["<h2>How to cite</h2><p>This report:</p>", f"<pre>{_e(report_bibtex(cert))}</pre>",
            "<p>The paper:</p>", f"<pre>{_e(PAPER_BIBTEX)}</pre>",
            "<h2>Provenance</h2>", f"<pre>{_e(json.dumps(p, indent=2, sort_keys=True))}</pre>",
            "</body></html>", ""]
    return "\n".join(out)


def _md_inline(text: str) -> str:
    """Escaped text with Markdown's **bold** and `code` spans turned into HTML (for shared prose)."""
    import re

    t = _e(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def _table(t: dict) -> list[str]:
    cols = t.get("columns", [])
    if not cols:
        return []
    out = [f"<table><caption>{_e(t.get('title', ''))}</caption><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols)
           + "</tr>"]
    for row in t.get("rows", []):
        cells = [format_cell(v) for v in row] + [""] * (len(cols) - len(row))
        out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in cells[:len(cols)]) + "</tr>")
    out.append("</table>")
    return out


def _claim(c: dict, h: str, status: str) -> list[str]:
    """One claim as a <section>: heading, status, statement, math, tables (learned claims), details."""
    anchor = _e(c["id"].replace("/", "-"))
    out = [f'<section class="claim" id="{anchor}"><{h}><code>{_e(c["id"])}</code> — {_e(c["title"])}</{h}>',
           (f'<p><span class="{_cls(c["status"])}">{_e(status)}</span> · '
            f'kind {_e(c["kind"])} · tier {_e(c["tier"])}</p>'), f"<p>{_e(c['statement'])}</p>"]
    mml = c["evidence"].get("mathml")
    if mml:
        out.append(f'<div class="math">{mml}</div>')
    elif c["latex"]:
        out.append(f"<pre>{_e(c['latex'])}</pre>")
    for t in c["evidence"].get("tables", []) if isinstance(c["evidence"].get("tables"), list) else []:
        if isinstance(t, dict):
            out += _table(t)
    if c["sizes"]:
        out.append(f"<p class=\"meta\">Sizes: {_e(format_sizes(c['sizes']))}</p>")
    ev = format_evidence(c["evidence"])
    if ev:
        out.append(f'<p class="meta">Evidence: {_e(ev)}</p>')
    if c["statement_digest"]:
        out.append(f'<p class="meta">Statement digest (sha256 of the SymPy srepr): '
                   f'<code>{_e(c["statement_digest"])}</code></p>')
    if c["latex"] and mml:
        out.append(f"<details><summary>LaTeX</summary><pre>{_e(c['latex'])}</pre></details>")
    if c["rerun"]:
        out.append(f'<p class="meta">Re-run: <code>{_e(json.dumps(c["rerun"], sort_keys=True))}</code></p>')
    if c["message"]:
        out.append(f"<blockquote>{_e(c['message'])}</blockquote>")
    if c["counterexample"]:
        out.append("<details><summary>Counterexample (exact values)</summary><pre>"
                   + _e(json.dumps(c["counterexample"], indent=1, sort_keys=True)) + "</pre></details>")
    out.append("</section>")
    return out
