"""``report.html``: one standalone file. Math is presentation MathML printed by SymPy from the checked
objects (browsers render MathML natively: no script, no CDN, works offline); styles are inline."""

import html
import json
import re
import xml.etree.ElementTree as ET
from html.entities import html5

from ..claims import HOLDING, STATUS_WORD
from .bibtex import PAPER_BIBTEX, report_bibtex
from .learned import LEARNED_INTRO, STATUS_WORDS, format_cell, groups, href, is_learned
from .markdown import format_evidence, format_sizes
from .trust import assumptions, headline, replay_line, trust_rows

__all__ = ["render_html", "safe_mathml"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:70rem;margin:2rem auto;padding:0
1rem;
line-height:1.45;color:#1b1b1b}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f2f2f2}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:.85rem}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.ok{color:#0a6b2d;font-weight:600}.bad{color:#b00020;font-weight:600}.neutral{color:#6b5a00;font-weight:600}
section.claim{border-top:1px solid #ddd;margin-top:1.5rem;padding-top:.5rem}
math[display=block]{margin:.6rem 0;
overflow-x:auto;max-width:100%}.meta{color:#555;font-size:.9rem}
caption{text-align:left;font-style:italic;padding:.3rem 0}table+table{margin-top:.8rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
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
    """``report.html`` of the certificate ``cert``: one standalone file (rendered from it only)."""
    p = cert["provenance"]
    omitted = cert.get("timings") == "omitted"
    all_hold, head, counts = headline(cert)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Equivalence report: gated linear RNNs vs linear self-attention</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Equivalence report: gated linear RNNs vs linear self-attention</h1>",
        (
            f'<p>Overall: <span class="{"ok" if all_hold else "bad" if not cert["all_ok"] else "neutral"}">'
            f"{_e(head)}</span> ({_e(counts)})</p>"
        ),
        '<p class="meta">Paper: Zucchet et al. 2023, <em>' + _e(cert["paper"]["title"]) + "</em>, "
        f'<a href="https://arxiv.org/abs/{_e(cert["paper"]["arxiv"])}">arXiv:{_e(cert["paper"]["arxiv"])}</a><br>'
        f"Date {_e(p.get('date', ''))} · package {_e(p.get('package', {}).get('version', ''))} · commit "
        f"<code>{_e(p.get('git', {}).get('commit', 'unknown'))}</code>"
        f"{' (dirty)' if p.get('git', {}).get('dirty') else ''} · device {_e(p.get('device', ''))}<br>"
        f"Reproduce: <code>{_e(cert['command'])}</code><br>"
        "Re-check: <code>python -m equivalence check-certificate certificate.json</code><br>"
        f"Certificate content sha256: <code>{_e(cert['integrity']['content'])}</code><br>"
        "Timings: "
        + (
            "omitted (SOURCE_DATE_EPOCH is set: reproducible bytes)"
            if omitted
            else "recorded (wall-clock seconds of this run)"
        )
        + "</p>",
        *_trust_section(cert),
        (
            "<h2>Summary</h2><table><tr><th>claim</th><th>status</th><th>kind</th><th>construction</th><th>tier</th>"
            "<th>time</th></tr>"
        ),
    ]
    for c in cert["claims"]:
        anchor = _e(c["id"].replace("/", "-"))
        secs = "—" if omitted else f"{c['seconds']:.2f} s"
        out.append(
            f'<tr><td><a href="#{anchor}"><code>{_e(c["id"])}</code></a></td>'
            f'<td class="{_cls(c["status"])}">{_e(STATUS_WORD.get(c["status"], c["status"]))}</td>'
            f"<td>{_e(c['kind'])}</td><td>{_e(c['construction'])}</td><td>{_e(c['tier'])}</td>"
            f"<td>{_e(secs)}</td></tr>"
        )
    out.append("</table>")
    others = [c for c in cert["claims"] if not is_learned(c)]
    if others:
        out.append("<h2>Claims</h2>")
    for c in others:
        out += _claim(c, "h3", STATUS_WORD.get(c["status"], c["status"]), replay_line(cert, c))
    learned = groups(cert)
    if learned:
        out += [
            '<h2 id="learned">Learned: empirical evidence from training (not proofs)</h2>',
            f"<p>{_md_inline(LEARNED_INTRO)}</p>",
        ]
    for g in learned:
        out.append(f"<h3>{_e(g['title'])}</h3>")
        for c in g["claims"]:
            out += _claim(
                c,
                "h4",
                STATUS_WORDS.get(c["status"], STATUS_WORD.get(c["status"], c["status"])),
                replay_line(cert, c),
            )
        if g["figures"]:
            out.append('<h4>Figures</h4><div class="figures">')
        for png, svg, caption in g["figures"]:
            link = f' (<a href="{_e(href(svg))}">SVG</a>)' if svg else ""
            out.append(
                f'<figure><img src="{_e(href(png))}" alt="{_e(caption)}"><figcaption>{_e(caption)} '
                f"(<code>{_e(png)}</code>){link}</figcaption></figure>"
            )
        if g["figures"]:
            out.append("</div>")
    out += [
        "<h2>How to cite</h2><p>This report:</p>",
        f"<pre>{_e(report_bibtex(cert))}</pre>",
        "<p>The paper:</p>",
        f"<pre>{_e(PAPER_BIBTEX)}</pre>",
        "<h2>Provenance</h2>",
        f"<pre>{_e(json.dumps(p, indent=2, sort_keys=True))}</pre>",
        "</body></html>",
        "",
    ]
    return "\n".join(out)


#: presentation MathML elements and attributes kept by :func:`safe_mathml` (everything else is dropped)
_MML_TAGS_TEXT = (
    "math mi mn mo ms mtext mspace mrow mfrac msqrt mroot mstyle merror mpadded mphantom mfenced "
    "menclose msub msup msubsup munder mover munderover mmultiscripts mprescripts none mtable mtr "
    "mtd mlabeledtr semantics annotation"
)
_MML_TAGS = frozenset(_MML_TAGS_TEXT.split())
_MML_ATTRS_TEXT = (
    "display mathvariant stretchy fence separator lspace rspace open close separators "
    "linethickness columnalign rowalign columnspacing rowspacing accent accentunder movablelimits "
    "largeop symmetric form encoding xmlns"
)
_MML_ATTRS = frozenset(_MML_ATTRS_TEXT.split())


def safe_mathml(mml) -> str | None:
    """MathML rebuilt from a parsed tree keeping only presentation elements and plain attributes, with every
    text and attribute escaped; ``None`` (the LaTeX is shown instead) for anything that does not parse or
    holds another element. SymPy's output passes unchanged in meaning; a ``<script>`` or an ``onload=``
    never does."""
    if not isinstance(mml, str) or not mml.strip() or len(mml) > 2_000_000 or "<!" in mml:
        return None

    def entity(
        m,
    ):  # named entities (SymPy writes &InvisibleTimes;) as characters; unknown ones fail the parse
        ch = html5.get(m.group(1) + ";")
        return _e(ch) if ch is not None else m.group(0)

    try:  # SymPy may print several <math> blocks one after another: parse them under one wrapper
        root = ET.fromstring(
            "<wrapper>" + re.sub(r"&([A-Za-z][A-Za-z0-9]{0,40});", entity, mml) + "</wrapper>"
        )
    except ET.ParseError:
        return None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def build(el) -> str | None:
        tag = local(el.tag) if isinstance(el.tag, str) else ""
        if tag not in _MML_TAGS:
            return None
        attrs = ""
        for k, v in el.attrib.items():
            k = local(k)
            if k not in _MML_ATTRS:
                return None
            if k == "xmlns":
                continue
            attrs += f' {k}="{_e(v)}"'
        inner = _e(el.text or "")
        for child in el:
            b = build(child)
            if b is None:
                return None
            inner += b + _e(child.tail or "")
        return f"<{tag}{attrs}>{inner}</{tag}>"

    parts = [_e(root.text or "")]
    for child in root:
        if not isinstance(child.tag, str) or local(child.tag) != "math":
            return None
        b = build(child)
        if b is None:
            return None
        parts.append(b + _e(child.tail or ""))
    return "".join(parts)


def _trust_section(cert: dict) -> list[str]:
    out = ["<h2>What is proved, what is tested, what is assumed</h2>", "<ul>"]
    for heading, n, meaning, ids in trust_rows(cert):
        shown = ", ".join(f'<a href="#{_e(i.replace("/", "-"))}"><code>{_e(i)}</code></a>' for i in ids[:8])
        more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
        out.append(f"<li><strong>{_e(heading)}: {n}</strong> — {_e(meaning)}: {shown}{more}</li>")
    out.append("</ul>")
    assumed = assumptions(cert)
    if assumed:
        out.append("<p><strong>Assumed</strong> (what the claims take on trust, not checked here):</p><ul>")
        out += [f"<li>{_e(a)} ({len(ids)} claims)</li>" for a, ids in assumed]
        out.append("</ul>")
    code = cert.get("code", {})
    pkg = code.get("package", {}) if isinstance(code, dict) else {}
    if pkg:
        imps = ", ".join(
            f"<code>{_e(i['name'])}</code> (sha256 <code>{_e(i['sha256'][:16])}…</code>)"
            for i in code.get("imports", [])
        )
        vers = ", ".join(f"{_e(k)} {_e(v)}" for k, v in sorted(code.get("versions", {}).items()))
        out.append(
            f"<p><strong>Code checked:</strong> {len(pkg.get('files', {}))} source files of this package "
            f"(digest <code>{_e(pkg.get('sha256', '')[:16])}…</code>)"
            + (f"; your modules {imps}" if imps else "")
            + f"; {vers}. <code>check-certificate</code> refuses to confirm a claim when any of them "
            "changed.</p>"
        )
    out.append(
        "<p>The digests in <code>certificate.json</code> detect accidental edits, not a forger who "
        "recomputes "
        "them; the authoritative check is the re-run: <code>python -m equivalence check-certificate "
        "certificate.json</code>.</p>"
    )
    return out


def _md_inline(text: str) -> str:
    """Escaped text with Markdown's **bold** and `code` spans turned into HTML (for shared prose)."""
    t = _e(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def _table(t: dict) -> list[str]:
    cols = t.get("columns", [])
    if not cols:
        return []
    out = [
        f"<table><caption>{_e(t.get('title', ''))}</caption><tr>"
        + "".join(f"<th>{_e(c)}</th>" for c in cols)
        + "</tr>"
    ]
    for row in t.get("rows", []):
        cells = [format_cell(v) for v in row] + [""] * (len(cols) - len(row))
        out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in cells[: len(cols)]) + "</tr>")
    out.append("</table>")
    return out


def _claim(c: dict, h: str, status: str, replay_cmd: str | None = None) -> list[str]:
    """One claim as a <section>: heading, status, statement, math, tables (learned claims), details."""
    anchor = _e(c["id"].replace("/", "-"))
    eps = f" (ε ≤ {c['epsilon']:.3g})" if isinstance(c.get("epsilon"), int | float) else ""
    out = [
        f'<section class="claim" id="{anchor}"><{h}><code>{_e(c["id"])}</code> — {_e(c["title"])}</{h}>',
        (
            f'<p><span class="{_cls(c["status"])}">{_e(status)}</span> · '
            f'trust {_e(c.get("trust", ""))}{_e(eps)} · '
            f"kind {_e(c['kind'])} · tier {_e(c['tier'])}</p>"
        ),
        f"<p>{_e(c['statement'])}</p>",
    ]
    if c.get("assumptions"):
        out.append('<p class="meta">Assumes: ' + "; ".join(_e(a) for a in c["assumptions"]) + "</p>")
    mml = safe_mathml(c["evidence"].get("mathml"))
    if mml:
        out.append(f'<div class="math">{mml}</div>')
    elif c["latex"]:
        out.append(f"<pre>{_e(c['latex'])}</pre>")
    for t in c["evidence"].get("tables", []) if isinstance(c["evidence"].get("tables"), list) else []:
        if isinstance(t, dict):
            out += _table(t)
    if c["sizes"]:
        out.append(f'<p class="meta">Sizes: {_e(format_sizes(c["sizes"]))}</p>')
    ev = format_evidence(c["evidence"])
    if ev:
        out.append(f'<p class="meta">Evidence: {_e(ev)}</p>')
    if c["statement_digest"]:
        out.append(
            f'<p class="meta">Statement digest (sha256 of the SymPy srepr): '
            f"<code>{_e(c['statement_digest'])}</code></p>"
        )
    if c["latex"] and mml:
        out.append(f"<details><summary>LaTeX</summary><pre>{_e(c['latex'])}</pre></details>")
    if c["rerun"]:
        out.append(f'<p class="meta">Re-run: <code>{_e(json.dumps(c["rerun"], sort_keys=True))}</code></p>')
    if c["message"]:
        out.append(f"<blockquote>{_e(c['message'])}</blockquote>")
    if c.get("replay") and replay_cmd and href(c["replay"]):
        out.append(
            f"<p><strong>Replay this failure:</strong> <code>{_e(replay_cmd)}</code> (counterexample file "
            f'<a href="{_e(href(c["replay"]))}">{_e(c["replay"])}</a>: exact parameters and inputs)</p>'
        )
    if c["counterexample"]:
        out.append(
            "<details><summary>Counterexample (exact values)</summary><pre>"
            + _e(json.dumps(c["counterexample"], indent=1, sort_keys=True))
            + "</pre></details>"
        )
    out.append("</section>")
    return out
