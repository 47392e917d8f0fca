"""Claims: the data model every check produces and every report renders.

A *claim* is a checked statement with a stable identifier (``LSA-RNN-DIRECT-ALLT/v1``): its statement
(prose and, for symbolic claims, LaTeX rendered from the checked SymPy objects), the tier that
supports it, the sizes it covers, its status and the evidence. Claims are plain data: the report only
renders them, and ``check-certificate`` re-runs them from their ``rerun`` description.

One vocabulary, used by the CLI, the reports, the certificate and the docs: :data:`STATUS_TABLE` (each
status, the word printed for it, its default trust label, whether the claim holds, what it means); the other
names below are derived from it.

Every claim also carries a *trust label* (:data:`Trust`): how much the status can be leaned on —
``proved`` (exact), ``probable`` (with ``epsilon``), ``tested``, ``empirical`` — and a list of
``assumptions``: what the claim takes on trust (e.g. that the torch reference is the layer's
definition).
"""

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "ClaimResult",
    "Status",
    "Trust",
    "STATUSES",
    "HOLDING",
    "OK_STATUSES",
    "STATUS_MEANING",
    "STATUS_TABLE",
    "STATUS_WORD",
    "TRUST_OF",
    "digest",
    "count_statuses",
    "summary_line",
]

#: (status, the word printed for it, default trust label, whether the claim holds, what it means), in the
#: order the reports count them
STATUS_TABLE: tuple[tuple[str, str, str | None, bool, str], ...] = (
    ("proved", "PROVED", "proved", True, "decided exactly over every value the statement names"),
    (
        "probable",
        "PROBABLE",
        "probable",
        True,
        "a Schwartz–Zippel check at random points; wrong with probability ≤ ε",
    ),
    ("tested", "TESTED", "tested", True, "a numeric check passed on N cases under the tolerance model"),
    ("empirical", "EMPIRICAL", "empirical", True, 'a training check met its targets (never "proved")'),
    (
        "expected-failure",
        "REFUTED (as expected)",
        "proved",
        True,
        "a negative control shown to fail, as it must",
    ),
    (
        "refuted",
        "REFUTED",
        "proved",
        False,
        "a symbolic claim shown false (an exact counterexample is attached)",
    ),
    ("failed", "FAILED", "tested", False, "a numeric check failed (a replayable counterexample is attached)"),
    ("not-supported", "NOT SUPPORTED", "empirical", False, "a training check missed a target"),
    ("unexpected-pass", "UNEXPECTED PASS", "proved", False, "a negative control that did not fail"),
    ("skipped", "SKIPPED", None, False, "not checked (the message says why); never counted as holding"),
    ("error", "ERROR", None, False, "the checker itself crashed"),
)
#: every status, in the order the reports count them
STATUSES: tuple[str, ...] = tuple(row[0] for row in STATUS_TABLE)
Status = Literal[STATUSES]  # the same names as a type (Literal of a tuple: one Literal per entry)
Trust = Literal["proved", "probable", "tested", "empirical", "assumed"]

#: statuses under which a claim *holds* (skipped is not among them)
HOLDING = frozenset(row[0] for row in STATUS_TABLE if row[3])
#: statuses that do not make ``verify`` / ``prove`` fail (a run whose requested claims are *all* skipped
#: still fails: it proved nothing it was asked)
OK_STATUSES = HOLDING | {"skipped"}
#: the word printed for a status in the CLI and the reports
STATUS_WORD = {row[0]: row[1] for row in STATUS_TABLE}
#: the default trust label of a claim, from its status (a producer may set ``trust`` explicitly)
TRUST_OF = {row[0]: row[2] for row in STATUS_TABLE if row[2] is not None}
#: what each status means (the reports' legend)
STATUS_MEANING = {row[0]: row[4] for row in STATUS_TABLE}


def digest(text: str) -> str:
    """``sha256`` hex digest of a canonical statement string (e.g. ``sympy.srepr`` of the checked object)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ClaimResult:
    """One checked claim, as it appears in ``certificate.json`` and the reports."""

    id: str  # stable, versioned: "LSA-RNN-DIRECT-NUMERIC/v1"
    title: str
    statement: str  # precise prose with quantifiers and domain
    kind: Literal["symbolic", "numeric", "learned", "impossibility", "invariance"]
    status: Status
    construction: str = ""  # registered variant name, if any
    tier: str = ""  # e.g. "unrolled", "all-T", "index", "schwartz-zippel", "hypothesis"
    sizes: dict = field(default_factory=dict)
    latex: str = ""  # rendered from checked SymPy objects (symbolic claims only)
    statement_digest: str = ""  # sha256 of the canonical statement (srepr for symbolic claims)
    seconds: float = 0.0
    evidence: dict = field(default_factory=dict)  # JSON-able numbers: errors, ratios, counts, ...
    counterexample: dict | None = None  # exact inputs and both outputs, when refuted/failed
    rerun: dict = field(default_factory=dict)  # arguments that reproduce this claim (check-certificate)
    message: str = ""
    trust: str = ""  # Trust; "" = derived from the status (TRUST_OF)
    epsilon: float | None = None  # probable claims: the probability that the claim is wrong
    assumptions: tuple[str, ...] = ()  # what the claim takes on trust
    depends_on: tuple[str, ...] = ()  # code the claim depends on (keys of the certificate's "code" pins)
    replay: str = ""  # file (relative to the report) holding the replayable counterexample, if any

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def holds(self) -> bool:
        return self.status in HOLDING

    @property
    def trust_label(self) -> str:
        return self.trust or TRUST_OF.get(self.status, "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["assumptions"] = list(self.assumptions)
        d["depends_on"] = list(self.depends_on)
        d["trust"] = self.trust_label
        # JSON round-trip to fail early on non-serialisable evidence
        json.dumps(d, sort_keys=True, allow_nan=False, default=_reject)
        return d


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    """Counts per status, every status present (zeros included), in :data:`STATUSES` order."""
    c = Counter(statuses)
    return {s: c.get(s, 0) for s in STATUSES}


def summary_line(statuses: Iterable[str]) -> str:
    """``"78 claims: 40 proved, 6 probable, 30 tested, 2 skipped"`` (non-zero counts only)."""
    counts = count_statuses(list(statuses))
    n = sum(counts.values())
    parts = [f"{k} {s.replace('-', ' ')}" for s, k in counts.items() if k]
    return f"{n} claims: " + (", ".join(parts) if parts else "none")


def _reject(obj):
    raise TypeError(f"claim evidence must be JSON-serialisable; got {type(obj).__name__}")
