"""Named arrays of generators: the variables of a proof obligation.

A :class:`Variables` declares arrays (``"W_Q"`` of shape ``[H, d_k, d]``, ``"x"`` of shape ``[T, d]``, ...).
Entry ``W_Q[h, j, c]`` becomes generator ``"W_Q[h,j,c]"``. The same declaration gives

- :meth:`Variables.symbolic`: object arrays of :class:`~equivalence.symbolic.algebra.Poly` generators
  (for identity proofs),
- :meth:`Variables.numeric`: object arrays of given exact numbers (for counterexamples and
  Schwartz–Zippel points), and
- :meth:`Variables.formal`: object arrays of :class:`~equivalence.symbolic.algebra.Deg` (degree bounds),

so one function of the arrays is evaluated symbolically, exactly at points, or for its degree.
A *symmetric* array (``symmetric=True``, square in its last two axes) has one generator per pair
$a\\le b$, shared by ``[a, b]`` and ``[b, a]``.
"""

import itertools
import math
import numbers
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .algebra import Context, Deg

__all__ = ["ExactQ", "FloatConstant", "Variables", "entry_name", "from_jsonable", "has_float", "to_jsonable"]


class FloatConstant(ValueError):
    """The code computed with a floating-point constant that could not be absorbed exactly."""


def _absorb(o):
    """An operand as an exact number: binary64 floats become the rational they denote (exact)."""
    if isinstance(o, numbers.Rational) and not isinstance(o, bool):
        return o
    if isinstance(o, bool):
        return int(o)
    if isinstance(o, float | np.floating):
        f = float(o)
        if not math.isfinite(f):
            raise FloatConstant(f"the code computed with the non-finite float {f!r}")
        return Fraction(f)
    if isinstance(o, np.integer):
        return int(o)
    return NotImplemented


def _wrap(r):
    return ExactQ(r) if isinstance(r, Fraction) and not isinstance(r, ExactQ) else r


class ExactQ(Fraction):
    """A rational number that absorbs a binary64 float operand exactly (``1.0 * ExactQ(3) == ExactQ(3)``;
    ``0.1`` becomes ``3602879701896397/36028797018963968``) instead of decaying to a rounded float.

    Points of a numeric evaluation are re-run with these when the plain-integer run met a float (a hook that
    writes ``λ = 1.0``): the result is the exact value of the code's arithmetic with its float constants read
    as the rationals they denote."""

    __slots__ = ()

    def _op(name):
        base = getattr(Fraction, name)

        def op(self, other):
            o = _absorb(other)
            return NotImplemented if o is NotImplemented else _wrap(base(self, o))

        return op

    __add__, __radd__, __sub__, __rsub__ = _op("__add__"), _op("__radd__"), _op("__sub__"), _op("__rsub__")
    __mul__, __rmul__ = _op("__mul__"), _op("__rmul__")
    __truediv__, __rtruediv__ = _op("__truediv__"), _op("__rtruediv__")
    del _op

    def __neg__(self):
        return ExactQ(-Fraction(self))

    def __pos__(self):
        return self

    def __pow__(self, e):
        return _wrap(Fraction.__pow__(self, e)) if isinstance(e, int) else Fraction.__pow__(self, e)

    def __hash__(self):
        return Fraction.__hash__(self)


def has_float(parts) -> bool:
    """Whether an evaluated obligation (``[(label, lhs, rhs)]``) holds a float or complex float anywhere."""
    for _, lhs, rhs in parts:
        for side in (lhs, rhs):
            for v in np.ravel(np.asarray(side, dtype=object)):
                if isinstance(v, float | complex | np.floating | np.complexfloating):
                    return True
    return False


def entry_name(name: str, idx: tuple[int, ...]) -> str:
    return f"{name}[{','.join(map(str, idx))}]" if idx else name


class Variables:
    """Ordered declaration of named generator arrays."""

    def __init__(self):
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.symmetric: dict[str, bool] = {}
        self.names: list[str] = []
        self._where: dict[str, list[tuple[tuple[int, ...], int]]] = {}

    def add(self, name: str, shape: Sequence[int], *, symmetric: bool = False) -> "Variables":
        shape = tuple(int(s) for s in shape)
        if name in self.shapes:
            raise ValueError(f"variable array {name!r} declared twice")
        if any(s < 0 for s in shape):
            raise ValueError(f"variable array {name!r} has a negative size in {shape}")
        if symmetric and (len(shape) < 2 or shape[-1] != shape[-2]):
            raise ValueError(f"symmetric array {name!r} must be square in its last two axes; got {shape}")
        self.shapes[name], self.symmetric[name] = shape, symmetric
        where = []
        for idx in itertools.product(*map(range, shape)):
            if symmetric and idx[-2] > idx[-1]:
                continue
            where.append((idx, len(self.names)))
            self.names.append(entry_name(name, idx))
        self._where[name] = where
        return self

    def __len__(self) -> int:
        return len(self.names)

    def _fill(self, values: Sequence) -> dict[str, np.ndarray]:
        out = {}
        for name, shape in self.shapes.items():
            a = np.empty(shape, dtype=object)
            for idx, k in self._where[name]:
                a[idx] = values[k]
                if self.symmetric[name]:
                    a[idx[:-2] + (idx[-1], idx[-2])] = values[k]
            out[name] = a
        return out

    def symbolic(self, ctx: Context) -> dict[str, np.ndarray]:
        """Arrays of the generators of ``ctx`` (which must have been made from :attr:`names`)."""
        if ctx.names != self.names:
            raise ValueError("the context was not built from these variables")
        return self._fill(ctx.gens)

    def numeric(self, values: Sequence, *, exact: bool = False) -> dict[str, np.ndarray]:
        """Arrays of the given exact numbers; ``exact=True``: as :class:`ExactQ` (float operands absorbed)."""
        if len(values) != len(self.names):
            raise ValueError(f"expected {len(self.names)} values, one per generator; got {len(values)}")
        return self._fill([ExactQ(v) for v in values] if exact else list(values))

    def formal(self) -> dict[str, np.ndarray]:
        return self._fill([Deg(1)] * len(self.names))

    def context(self, **kw) -> Context:
        return Context(self.names, **kw)

    def point_dict(self, values: Sequence) -> dict[str, list]:
        """A point as ``{array name: nested list of exact strings}`` (JSON form of a counterexample)."""
        arrays = self.numeric(values)
        return {name: to_jsonable(a) for name, a in arrays.items()}


def to_jsonable(a) -> object:
    """Exact numbers as strings ("3", "-1/4"), recursively; ``None`` stays ``None``."""
    if a is None:
        return None
    if isinstance(a, np.ndarray):
        return [to_jsonable(v) for v in a] if a.ndim else to_jsonable(a.item())
    if isinstance(a, list | tuple):
        return [to_jsonable(v) for v in a]
    if isinstance(a, int | Fraction):
        return str(Fraction(a)) if isinstance(a, Fraction) else str(a)
    if isinstance(a, complex):
        return f"{a.real!r}+{a.imag!r}j"
    return str(a)


def from_jsonable(v) -> object:
    """Inverse of :func:`to_jsonable` for real exact values: nested lists of strings -> object array."""
    if v is None:
        return None
    if isinstance(v, list):
        return np.array([from_jsonable(u) for u in v], dtype=object) if v else np.empty((0,), dtype=object)
    f = Fraction(v)
    return int(f) if f.denominator == 1 else f
