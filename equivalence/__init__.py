"""Equivalence checking of gated linear RNNs against attention: tolerance model, numeric checks,
symbolic proofs, training checks, claims and reports. The CLI is ``python -m equivalence``.

The names below are loaded on first use (PEP 562 ``__getattr__``), so that ``import equivalence`` and the
CLI's ``--help`` and argument errors do not pay for importing torch.
"""

import importlib

__all__ = ["ClaimResult", "ComparisonResult", "compare", "error_bound", "gamma", "unit_roundoff"]

_LAZY = {
    "ClaimResult": ".claims",
    "ComparisonResult": ".tolerance",
    "compare": ".tolerance",
    "error_bound": ".tolerance",
    "gamma": ".tolerance",
    "unit_roundoff": ".tolerance",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
