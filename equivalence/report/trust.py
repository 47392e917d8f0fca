"""What a report lets a reader lean on: the headline, the trust summary and the assumptions.

One set of counts (:func:`equivalence.claims.summary_line`) is used by the headline, the opening "what is
proved, what is tested, what is assumed" section and the BibTeX note, so they can never disagree; a
skipped claim is never counted as holding.
"""

from __future__ import annotations

from pathlib import Path

from ..claims import HOLDING, count_statuses, summary_line
from .counterexample import replay_command
from .safe import is_plain_name

__all__ = ["TRUST_ROWS", "assumptions", "headline", "replay_line", "replay_lines", "trust_rows", "variants"]

#: (trust label, heading, what it means)
TRUST_ROWS = (
    ("proved", "Proved (exact)", "decided exactly over every value the statement names"),
    (
        "probable",
        "Probable (Schwartz–Zippel)",
        ("an exact identity checked at random points; wrong with probability at most ε"),
    ),
    (
        "tested",
        "Tested (numeric)",
        ("random and degenerate cases within the tolerance model; evidence at the sizes drawn, not a proof"),
    ),
    (
        "empirical",
        "Empirical (training)",
        "what gradient descent found on the recorded seeds and budget; not a proof",
    ),
)


def headline(cert: dict) -> tuple[bool, str, str]:
    """``(all hold, text, counts)``: ``ALL 12 CLAIMS HOLD``, ``66 OF 78 CLAIMS HOLD; 12 SKIPPED (not
    checked)``
    or ``2 OF 17 CLAIMS DO NOT HOLD``, and the counts (:func:`~equivalence.claims.summary_line`)."""
    statuses = [c["status"] for c in cert["claims"]]
    counts = count_statuses(statuses)
    n = len(statuses)
    holds = sum(1 for s in statuses if s in HOLDING)
    skipped = counts["skipped"]
    bad = n - holds - skipped
    if bad:
        text = f"{bad} OF {n} CLAIMS DO NOT HOLD"
    elif skipped:
        text = f"{holds} OF {n} CLAIMS HOLD; {skipped} SKIPPED (not checked)"
    else:
        text = f"ALL {n} CLAIMS HOLD" if n != 1 else "THE 1 CLAIM HOLDS"
    return bad == 0 and skipped == 0, text, summary_line(statuses)


def trust_rows(cert: dict) -> list[tuple[str, int, str, list[str]]]:
    """``[(heading, number of holding claims with that trust label, meaning, ids)]`` for every label in use,
    then the claims that do not hold and the skipped ones."""
    rows = []
    claims = cert["claims"]
    for label, heading, meaning in TRUST_ROWS:
        ids = [c["id"] for c in claims if c["status"] in HOLDING and c.get("trust") == label]
        if label == "probable" and ids:
            eps = [
                c.get("epsilon")
                for c in claims
                if c["id"] in ids and isinstance(c.get("epsilon"), int | float)
            ]
            if eps:
                meaning += f" (largest ε here: {max(eps):.3g})"
        if ids:
            rows.append((heading, len(ids), meaning, ids))
    other = [
        c["id"] for c in claims if c["status"] in HOLDING and c.get("trust") not in {r[0] for r in TRUST_ROWS}
    ]
    if other:
        rows.append(("Holding, other evidence", len(other), "see each claim", other))
    bad = [c["id"] for c in claims if c["status"] not in HOLDING and c["status"] != "skipped"]
    if bad:
        rows.append(
            (
                "Not holding",
                len(bad),
                (
                    "refuted, failed, not supported, unexpected pass or checker error: "
                    "see each claim (and its counterexample file)"
                ),
                bad,
            )
        )
    skipped = [c["id"] for c in claims if c["status"] == "skipped"]
    if skipped:
        rows.append(
            ("Skipped", len(skipped), "not checked (each says why); never counted as holding", skipped)
        )
    return rows


def assumptions(cert: dict) -> list[tuple[str, list[str]]]:
    """``[(assumption, ids of the claims that take it on trust)]``, most common first."""
    by: dict[str, list[str]] = {}
    for c in cert["claims"]:
        for a in c.get("assumptions", []) or []:
            by.setdefault(str(a), []).append(c["id"])
    return sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def variants(cert: dict) -> list[str]:
    """The constructions the claims are about, sorted."""
    return sorted({c["construction"] for c in cert["claims"] if c.get("construction")})


def replay_line(cert: dict, claim: dict) -> str | None:
    """The one-line replay command of a claim's counterexample file, or ``None``."""
    name = claim.get("replay")
    if not name or not is_plain_name(name):
        return None
    imports = [
        d.split(":", 1)[1]
        for d in claim.get("depends_on", [])
        if isinstance(d, str) and d.startswith("import:")
    ]
    return replay_command(name, imports)


def replay_lines(cert: dict, out) -> dict[str, str]:
    """``{claim id: "python -m equivalence replay OUT/FILE [--import ...]"}`` for every claim with a
    counterexample file: the one line a command prints under a failure (paths as seen from here)."""
    lines = {}
    for c in cert["claims"]:
        line = replay_line(cert, c)
        if line is not None:
            imports = [d.split(":", 1)[1] for d in c.get("depends_on", []) if d.startswith("import:")]
            lines[c["id"]] = replay_command(Path(out) / c["replay"], imports)
    return lines
