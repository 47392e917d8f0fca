"""Claims: the data model every check produces and every report renders.

A *claim* is a checked statement with a stable identifier (``LSA-RNN-DIRECT-ALLT/v1``): its statement
(prose and, for symbolic claims, LaTeX rendered from the checked SymPy objects), the tier that
supports it, the sizes it covers, its status and the evidence. Claims are plain data: the report only
renders them, and ``check-certificate`` re-runs them from their ``rerun`` description.

Statuses: ``proved`` / ``refuted`` (symbolic), ``passed`` / ``failed`` (numeric, with the tolerance
model), ``empirical`` / ``not-supported`` (training checks: never "proved"), ``expected-failure``
(a negative control that was shown to fail, as it must), ``error`` (the checker itself crashed).
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["ClaimResult", "Status", "OK_STATUSES", "digest"]

Status = Literal["proved", "refuted", "passed", "failed", "empirical", "not-supported", "expected-failure",
                 "unexpected-pass", "error", "skipped"]
#: statuses under which ``verify`` exits 0
OK_STATUSES = frozenset({"proved", "passed", "empirical", "expected-failure", "skipped"})


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
    tier: str = ""  # e.g. "fixed-size", "induction", "index", "schwartz-zippel", "hypothesis"
    sizes: dict = field(default_factory=dict)
    latex: str = ""  # rendered from checked SymPy objects (symbolic claims only)
    statement_digest: str = ""  # sha256 of the canonical statement (srepr for symbolic claims)
    seconds: float = 0.0
    evidence: dict = field(default_factory=dict)  # JSON-able numbers: errors, ratios, counts, ...
    counterexample: dict | None = None  # exact inputs and both outputs, when refuted/failed
    rerun: dict = field(default_factory=dict)  # arguments that reproduce this claim (check-certificate)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # JSON round-trip to fail early on non-serialisable evidence
        json.dumps(d, sort_keys=True, allow_nan=False, default=_reject)
        return d


def _reject(obj):
    raise TypeError(f"claim evidence must be JSON-serialisable; got {type(obj).__name__}")
