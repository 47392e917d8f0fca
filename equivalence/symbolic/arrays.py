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
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .algebra import Context, Deg

__all__ = ["Variables", "entry_name", "from_jsonable", "to_jsonable"]


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

    def numeric(self, values: Sequence) -> dict[str, np.ndarray]:
        if len(values) != len(self.names):
            raise ValueError(f"expected {len(self.names)} values, one per generator; got {len(values)}")
        return self._fill(list(values))

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
        return str(a)
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
