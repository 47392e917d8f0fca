"""LaTeX, MathML and digests of checked SymPy statement objects.

The digest of a statement is ``sha256(sympy.srepr(obj))``: stable across ``PYTHONHASHSEED`` and
platforms, scoped to the SymPy version (recorded next to it in the claim's evidence).
"""

import numpy as np
import sympy as sp
from sympy.printing.mathml import mathml

from ..claims import digest

__all__ = ["exact_object", "latex_of", "mathml_of", "size_set_text", "sizes_object", "statement_digest"]


def _parts(obj) -> list:
    return list(obj.args) if isinstance(obj, sp.Tuple) else [obj]


def latex_of(obj, prefix=None) -> str:
    """LaTeX of a statement (a ``Tuple`` of equalities is rendered one per line), with an optional
    quantifier/condition object rendered in front."""
    body = r" \\ ".join(sp.latex(p) for p in _parts(obj))
    if prefix is not None:
        return (
            sp.latex(prefix)
            + r":\quad "
            + (r"\begin{gathered}" + body + r"\end{gathered}" if isinstance(obj, sp.Tuple) else body)
        )
    return r"\begin{gathered}" + body + r"\end{gathered}" if isinstance(obj, sp.Tuple) else body


def mathml_of(obj, prefix=None) -> str:
    """Presentation MathML (one ``<math display="block">`` per equality): renders offline in browsers."""
    out = []
    if prefix is not None:
        out.append(f'<math display="block">{mathml(prefix, printer="presentation")}</math>')
    for p in _parts(obj):
        out.append(f'<math display="block">{mathml(p, printer="presentation")}</math>')
    return "\n".join(out)


def sizes_object(size_sets: list[dict]) -> sp.Tuple:
    return sp.Tuple(
        *[
            sp.Tuple(*[sp.Tuple(sp.Symbol(k), sp.Integer(v)) for k, v in sorted(s.items()) if v is not None])
            for s in size_sets
        ]
    )


def size_set_text(sizes: dict) -> str:
    """One size set in words, keys sorted: ``d=3, heads=2, T=4`` (as reports print a claim's sizes)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(sizes.items()))


def exact_object(arrays: dict) -> sp.Tuple:
    """Exact parameter values as a SymPy object (part of the digest of an exact-weights claim)."""
    items = []
    for name in sorted(arrays):
        a = arrays[name]
        if a is None:
            continue
        vals = [sp.Rational(str(v)) for v in np.ravel(np.asarray(a, dtype=object))]
        items.append(sp.Tuple(sp.Symbol(name), sp.Tuple(*map(sp.Integer, np.shape(a))), sp.Tuple(*vals)))
    return sp.Tuple(*items)


def statement_digest(*objs) -> str:
    return digest(sp.srepr(sp.Tuple(*objs)))
