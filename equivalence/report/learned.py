"""The report's "Learned" section: claims of kind ``learned`` (the training checks, ``equivalence.training``)
grouped by experiment, with their tables of measured numbers and their figures.

Learned claims are *empirical evidence* — what gradient descent found on the recorded seeds, sizes and
budget — never proofs: their status is ``empirical`` ("empirically supported") or ``not-supported`` (a
target was missed on this run; not a disproof). The section says so in its heading and in every claim.

A learned claim's evidence may carry (all optional, written by ``equivalence.training.section``):

- ``experiment``: the group heading (claims sharing it, in ID order, form one group; groups are sorted by it);
- ``tables``: ``[{"title", "columns", "rows"}]``, cells numbers, strings, lists of numbers or ``None``;
- ``figures``: file names in the report folder (PNG shown, each followed by its SVG, which is linked);
  ``figure_captions``: ``{file name: caption}``.

Figures are referenced by *relative* path (the files sit next to the report and are listed with their
sha256 in the certificate's ``artifacts``), so the report folder can be moved, archived or served and
``report.html`` still renders offline.
"""

from urllib.parse import quote

from .integrity import is_plain_name

__all__ = ["LEARNED_INTRO", "STATUS_WORDS", "format_cell", "groups", "href", "is_learned"]

LEARNED_INTRO = (
    "The claims below are **empirically supported** by training runs, not proved: each trains models on the "
    "recorded seeds, sizes and budget, and measures whether gradient descent found the construction "
    "(Zucchet et al. 2023, Experiments 1 and 2). Status EMPIRICAL means every numeric target held on this "
    "run; NOT SUPPORTED "
    "means one was missed (which is not a disproof either). Re-run any of them with its `Re-run` record; "
    "on the "
    "same machine and library versions the numbers are bitwise identical. Figures and the JSON results are "
    "files next to this report, listed with their sha256 in `certificate.json` (`artifacts`)."
)

#: how a learned claim's status reads in the Learned section
STATUS_WORDS = {
    "empirical": "EMPIRICAL — empirically supported (not proved)",
    "not-supported": "NOT SUPPORTED — a target was missed on this run (empirical, not a disproof)",
    "error": "ERROR — the training check crashed",
}


def is_learned(claim: dict) -> bool:
    return claim.get("kind") == "learned"


def format_cell(v) -> str:
    """A table cell: floats with 3 significant digits, lists joined by commas, ``None`` as an em dash."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return ", ".join(format_cell(x) for x in v)
    return str(v)


def href(name: str) -> str | None:
    """The relative link of a figure file, or ``None`` for anything that is not a plain file name (a
    certificate is data: a name like ``../x`` or ``https://...`` must never become a link)."""
    return quote(name) if is_plain_name(name) else None


def groups(cert: dict) -> list[dict]:
    """Learned claims grouped by ``evidence["experiment"]`` (groups sorted by that title, claims in ID order):
    ``[{"title", "claims", "figures": [(png, svg or None, caption)]}]``."""
    out: dict[str, dict] = {}
    for c in cert["claims"]:
        if not is_learned(c):
            continue
        ev = c.get("evidence", {})
        title = ev.get("experiment") if isinstance(ev.get("experiment"), str) else "Training checks"
        g = out.setdefault(title, {"title": title, "claims": [], "figures": [], "_seen": set()})
        g["claims"].append(c)
        figs = [f for f in ev.get("figures", []) if isinstance(f, str) and is_plain_name(f)]
        caps = ev.get("figure_captions") if isinstance(ev.get("figure_captions"), dict) else {}
        for f in figs:
            if f.endswith(".png") and f not in g["_seen"]:
                g["_seen"].add(f)
                svg = f[:-4] + ".svg"
                g["figures"].append(
                    (f, svg if svg in figs else None, str(caps.get(f, f[:-4].replace("_", " "))))
                )
    for g in out.values():
        del g["_seen"]
    return sorted(out.values(), key=lambda g: g["title"])
