"""Equivalence checking of gated linear RNNs against attention: tolerance model, numeric checks,
symbolic proofs, training checks, claims and reports. The CLI is ``python -m equivalence``."""

from .claims import ClaimResult
from .tolerance import ComparisonResult, compare, error_bound, gamma, unit_roundoff

__all__ = ["ClaimResult", "ComparisonResult", "compare", "error_bound", "gamma", "unit_roundoff"]
