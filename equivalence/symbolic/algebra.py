r"""Exact polynomial arithmetic for the prover: SymPy sparse rings behind a thin wrapper.

The construction code (``constructions.lsa``, ``constructions.rnn``) runs on NumPy object arrays, so
the prover hands it arrays whose entries are :class:`Poly` (an element of $\mathbb Z[g_1..g_N]$ or
$\mathbb Q[g_1..g_N]$, one generator per weight and input entry), plain ``int`` / ``Fraction``
constants, or :class:`Deg` (formal degree only). Arithmetic on two non-zero polynomials is done by
SymPy's sparse polynomial rings (:mod:`sympy.polys.rings`); the wrapper only

- keeps the zero polynomial as the Python ``int`` 0 and returns ``p`` itself for ``p + 0`` and ``p * 1``
  (the constructions' one-hot wiring matrices are mostly zeros and ones; SymPy would copy),
- tracks an upper bound on the total degree (``deg``): $\deg(p+q)\le\max$, $\deg(pq)\le\deg p+\deg q$.

**Kronecker substitution** (``method="kronecker"``, the default). With hundreds of generators SymPy's
exponent tuples make every monomial product cost ~8 µs. We instead compute in the univariate ring
$\mathbb Z[z]$ through the ring homomorphism $\kappa: g_i \mapsto z^{b^i}$. Since $\kappa$ is a
homomorphism, $P=0 \Rightarrow \kappa(P)=0$, so a non-zero result *refutes*. Conversely $\kappa$ maps
distinct exponent vectors $e$ with all $e_i < b$ to distinct exponents $\sum_i e_i b^i$ (base-$b$
digits), so $\kappa(P)=0 \Rightarrow P=0$ whenever every exponent of $P$ is below $b$ — guaranteed when
the tracked total-degree bound of $P$ is below $b$. :meth:`Context.require_injective` checks that
bound before any "proved" is returned (the caller recomputes with a larger $b$ otherwise).
``method="multivariate"`` uses an ordinary $N$-generator ring (slow; used to cross-check).

**No exception escapes the arithmetic** (:class:`Faults`). The construction code multiplies these values
inside NumPy's object ``matmul``; NumPy 2.4's object matmul loop, when a product raises at the first term
of an output entry other than the first, decrefs the *previous* (already stored) entry a second time, a
use-after-free that later crashes the garbage collector (standalone reproducer in ``docs/proofs.md``).
So a value that cannot be computed here (a non-integer constant in a $\mathbb Z$ ring, a SymPy function
with no polynomial meaning) records the exception in its context's :class:`Faults` and returns a harmless
placeholder; the engine re-raises the recorded exception as soon as the obligation function returns
(:meth:`Faults.reraise`), before any placeholder is looked at.
"""

import math
import numbers
from fractions import Fraction

import numpy as np
import sympy as sp
from sympy import Basic
from sympy.polys.domains import QQ, ZZ
from sympy.polys.rings import ring

__all__ = [
    "DEG_FAULTS",
    "Context",
    "Deg",
    "Faults",
    "HasAtoms",
    "Lazy",
    "NeedsRationals",
    "Poly",
    "degree_of",
    "expand_pair",
    "fraction_array",
    "is_zero",
    "to_fraction",
]


class NeedsRationals(Exception):
    """A non-integer constant met an integer ring: the caller retries over $\\mathbb Q$."""


class HasAtoms(Exception):
    """A SymPy function application met a formal degree (no degree bound through uninterpreted functions)."""


class Faults:
    """The first exception met inside value arithmetic, re-raised by the engine after the obligation returns
    (see the module docstring: exceptions must not propagate through NumPy's object ``matmul``)."""

    __slots__ = ("exc",)

    def __init__(self):
        self.exc = None

    def record(self, exc: Exception, placeholder):
        if self.exc is None:
            self.exc = exc
        return placeholder

    def clear(self) -> None:
        self.exc = None

    def reraise(self) -> None:
        exc, self.exc = self.exc, None
        if exc is not None:
            raise exc


#: faults of :class:`Deg` arithmetic (formal degrees carry no context)
DEG_FAULTS = Faults()


def _sympy_operand(o):
    """``None`` if ``o`` is not a SymPy object; its value if it is a SymPy number; else the object itself."""
    if type(o) is int or not isinstance(o, Basic):
        return None
    if o.is_Rational:
        return Fraction(int(o.p), int(o.q))
    return o


def to_fraction(v) -> Fraction:
    """Exact rational value of an int, Fraction, float (binary64 -> Fraction is exact) or SymPy Rational."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, bool):
        return Fraction(int(v))
    if isinstance(v, numbers.Integral):
        return Fraction(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"cannot convert the non-finite value {f!r} to an exact rational")
        return Fraction(f)
    if hasattr(v, "p") and hasattr(v, "q"):  # sympy Rational / Integer
        return Fraction(int(v.p), int(v.q))
    raise TypeError(
        f"expected an exact real number (int, Fraction, float, sympy Rational); got {type(v).__name__} {v!r}"
    )


def fraction_array(t) -> np.ndarray:
    """A real tensor/array as a NumPy object array of exact ``Fraction`` (``int`` where integral)."""
    a = np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t)
    if np.iscomplexobj(a):
        raise TypeError("fraction_array: complex values are not supported by the exact tiers")
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        f = to_fraction(a[idx].item() if hasattr(a[idx], "item") else a[idx])
        out[idx] = int(f) if f.denominator == 1 else f
    return out


def coefficient(c, domain):
    """``c`` (int, Fraction, float, SymPy Rational) as an element of ``domain`` (``ZZ`` or ``QQ``)."""
    f = to_fraction(c)
    if domain == QQ:
        return QQ(f.numerator, f.denominator)
    if f.denominator != 1:
        raise NeedsRationals(f"constant {c!r} is not an integer")
    return domain.convert(f.numerator)


class Poly:
    """A non-zero polynomial (SymPy ``PolyElement``) with an upper bound ``deg`` on its total degree."""

    __slots__ = ("ctx", "deg", "p")

    def __init__(self, p, deg: int, ctx: "Context"):
        self.p, self.deg, self.ctx = p, deg, ctx

    def _const(self, c):
        try:
            return self.ctx.const(c)
        except (NeedsRationals, TypeError, ValueError) as e:  # deferred: see Faults
            return self.ctx.faults.record(e, self.ctx.domain.one)

    def _from_sympy(self, s):
        try:
            return self.ctx.from_sympy(s)
        except HasAtoms as e:  # deferred: see Faults
            return self.ctx.faults.record(e, self)

    def _sympy_(self):
        """As a SymPy object (e.g. the argument of ``ell(.)``) a value is a proxy symbol of its context."""
        return self.ctx.proxy(self)

    def __add__(self, o):
        if type(o) is Poly:
            r = self.p + o.p
            return Poly(r, max(self.deg, o.deg), self.ctx) if r else 0
        if type(o) is int and o == 0:
            return self
        if type(o) is Deg:
            return NotImplemented
        s = _sympy_operand(o)
        if s is not None:
            o = s if isinstance(s, Fraction) else self._from_sympy(s)
            if type(o) is Poly:
                return self + o
        if o == 0:
            return self
        r = self.p + self._const(o)
        return Poly(r, self.deg, self.ctx) if r else 0

    __radd__ = __add__

    def __neg__(self):
        return Poly(-self.p, self.deg, self.ctx)

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        if type(o) is Poly:
            return Poly(self.p * o.p, self.deg + o.deg, self.ctx)  # integral domain: non-zero
        if type(o) is int and (o == 0 or o == 1):
            return self if o else 0
        if type(o) is Deg:
            return NotImplemented
        s = _sympy_operand(o)
        if s is not None:
            o = s if isinstance(s, Fraction) else self._from_sympy(s)
            if type(o) is Poly:
                return self * o
        if o == 0:
            return 0
        if o == 1:
            return self
        return Poly(self.p * self._const(o), self.deg, self.ctx)

    __rmul__ = __mul__

    def __truediv__(self, o):
        if type(o) is Poly or type(o) is Deg:
            raise TypeError("division by a polynomial is not supported by the exact tiers")
        f = to_fraction(o)
        if f == 0:
            raise ZeroDivisionError("division of a polynomial by zero")
        return self * (1 / f)

    def __pow__(self, k):
        if not isinstance(k, numbers.Integral) or k < 0:
            raise TypeError(f"only non-negative integer powers are supported; got {k!r}")
        out = 1
        for _ in range(int(k)):
            out = out * self
        return out

    def __bool__(self):
        return True

    def __repr__(self):
        return f"Poly({len(self.p)} terms, deg<={self.deg})"


class Deg:
    """Formal total degree and an upper bound on the number of terms (no cancellation counted):
    ``+`` takes the max degree and adds the term counts, ``*`` adds degrees and multiplies counts.
    Used for Schwartz–Zippel degree bounds and to estimate the cost of an exact expansion."""

    __slots__ = ("deg", "terms")

    def _sympy_(self):
        raise HasAtoms("a SymPy function of the inputs has no formal degree")

    def __init__(self, deg: int, terms: int = 1):
        self.deg, self.terms = deg, terms

    def __add__(self, o):
        if type(o) is Deg:
            return Deg(max(self.deg, o.deg), self.terms + o.terms)
        if type(o) is not int and isinstance(o, Basic) and not o.is_Rational:
            return DEG_FAULTS.record(HasAtoms("a SymPy function of the inputs has no formal degree"), self)
        return self if o == 0 else Deg(self.deg, self.terms + 1)

    __radd__ = __add__

    def __neg__(self):
        return self

    def __sub__(self, o):
        return self + o

    __rsub__ = __sub__

    def __mul__(self, o):
        if type(o) is Deg:
            return Deg(self.deg + o.deg, self.terms * o.terms)
        if type(o) is not int and isinstance(o, Basic) and not o.is_Rational:
            return DEG_FAULTS.record(HasAtoms("a SymPy function of the inputs has no formal degree"), self)
        return 0 if o == 0 else self

    __rmul__ = __mul__

    def __truediv__(self, o):
        return self

    def __pow__(self, k):
        out = 1
        for _ in range(int(k)):
            out = out * self
        return out


class Lazy:
    """An unexpanded polynomial: a DAG of generators, sums and products (``op`` in ``g + * c``).

    Used when there are thousands of generators: the code runs on ``Lazy`` values (cheap), then each
    entry of an obligation is expanded separately by :func:`expand_pair` in a *local* Kronecker ring
    over only the generators that entry uses, which keeps the exponents short.
    """

    __slots__ = ("a", "b", "ctx", "deg", "op")

    def _sympy_(self):
        if self.ctx is None:
            raise HasAtoms("no context for a SymPy proxy")
        return self.ctx.proxy(self)

    def __init__(self, op: str, a, b, deg: int, ctx=None):
        self.op, self.a, self.b, self.deg = op, a, b, deg
        self.ctx = ctx if ctx is not None else getattr(a, "ctx", None)

    def _atom(self, s):
        if isinstance(s, Fraction):
            return s
        if self.ctx is None:
            return DEG_FAULTS.record(
                HasAtoms("no context to turn a SymPy function value into a generator"), 1
            )
        try:
            return self.ctx.from_sympy(s)
        except HasAtoms as e:  # deferred: see Faults
            return self.ctx.faults.record(e, 1)

    def __add__(self, o):
        if type(o) is Lazy:
            return Lazy("+", self, o, max(self.deg, o.deg))
        if type(o) is int:
            return self if o == 0 else Lazy("+", self, o, self.deg)
        if type(o) is Deg or type(o) is Poly:
            return NotImplemented
        s = _sympy_operand(o)
        if s is not None:
            return self + self._atom(s)
        return self if o == 0 else Lazy("+", self, o, self.deg)

    __radd__ = __add__

    def __neg__(self):
        return Lazy("c", self, -1, self.deg)

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        if type(o) is Lazy:
            return Lazy("*", self, o, self.deg + o.deg)
        if type(o) is int:
            return 0 if o == 0 else (self if o == 1 else Lazy("c", self, o, self.deg))
        if type(o) is Deg or type(o) is Poly:
            return NotImplemented
        s = _sympy_operand(o)
        if s is not None:
            return self * self._atom(s)
        if o == 0:
            return 0
        return self if o == 1 else Lazy("c", self, o, self.deg)

    __rmul__ = __mul__

    def __truediv__(self, o):
        f = to_fraction(o)
        if f == 0:
            raise ZeroDivisionError("division of a polynomial by zero")
        return self * (1 / f)

    def __pow__(self, k):
        out = 1
        for _ in range(int(k)):
            out = out * self
        return out

    def __bool__(self):
        return True


def _lazy_gens(v, seen: set, gens: set) -> None:
    stack = [v]
    while stack:
        n = stack.pop()
        if type(n) is not Lazy or id(n) in seen:
            continue
        seen.add(id(n))
        if n.op == "g":
            gens.add(n.a)
        else:
            stack.append(n.a)
            if n.op != "c":
                stack.append(n.b)


def expand_pair(u, v, ring, domain, bits: int):
    """Expand ``u - v`` (constants or :class:`Lazy`) in ``ring`` (univariate over ``domain``) with a
    local Kronecker map over the generators they use. Returns ``(difference, local generator list,
    number of terms of u and v)``; the map is injective when the degree bound is below ``2**bits``."""
    gens: set = set()
    seen: set = set()
    _lazy_gens(u, seen, gens)
    _lazy_gens(v, seen, gens)
    order = sorted(gens)
    pos = {g: k for k, g in enumerate(order)}
    one = domain.one
    memo: dict = {}

    def const(c):
        return ring.ground_new(coefficient(c, domain))

    def simple(m):
        """``(exponent, coefficient)`` of a generator, a product of two generators, or a scaled one; else
        None."""
        if type(m) is not Lazy:
            return None
        if m.op == "g":
            return 1 << (bits * pos[m.a]), one
        if m.op == "*" and type(m.a) is Lazy and type(m.b) is Lazy and m.a.op == "g" and m.b.op == "g":
            return (1 << (bits * pos[m.a.a])) + (1 << (bits * pos[m.b.a])), one
        if m.op == "c":
            s = simple(m.a)
            return None if s is None else (s[0], s[1] * coefficient(m.b, domain))
        return None

    def ex(n):
        if type(n) is not Lazy:
            return const(n)
        r = memo.get(id(n))
        if r is not None:
            return r
        if n.op == "g":
            r = ring({(1 << (bits * pos[n.a]),): one})
        elif n.op == "+":
            leaves, stack = [], [n]
            while stack:  # flatten sum chains iteratively (they can be long)
                m = stack.pop()
                if type(m) is Lazy and m.op == "+" and id(m) not in memo:
                    stack.append(m.a)
                    stack.append(m.b)
                else:
                    leaves.append(m)
            acc: dict = {}
            zero = domain.zero
            for leaf in leaves:
                s = simple(leaf)
                if s is not None:
                    acc[s[0]] = acc.get(s[0], zero) + s[1]
                elif type(leaf) is not Lazy:
                    c = coefficient(leaf, domain)
                    acc[0] = acc.get(0, zero) + c
                else:
                    for (e,), c in ex(leaf).items():
                        acc[e] = acc.get(e, zero) + c
            r = ring.dtype({(e,): c for e, c in acc.items() if c})  # coefficients are already domain elements
        elif n.op == "*":
            r = ex(n.a) * ex(n.b)
        else:
            r = ex(n.a) * coefficient(n.b, domain)
        memo[id(n)] = r
        return r

    pu, pv = ex(u), ex(v)
    return pu - pv, order, len(pu) + len(pv)


def degree_of(v) -> int:
    """Formal degree of a value: 0 for constants, ``deg`` for :class:`Poly` / :class:`Lazy` / :class:`Deg`."""
    return v.deg if type(v) in (Poly, Deg, Lazy) else 0


def is_zero(v) -> bool:
    """Is this value (constant or :class:`Poly`) the zero polynomial?"""
    if type(v) is Poly:
        return False  # Poly never wraps zero
    if type(v) is Deg or type(v) is Lazy:
        raise TypeError("is_zero needs an expanded value (Poly or constant)")
    return v == 0


class Context:
    """Generators and their ring. ``names[i]`` is the printable name of generator ``i``.

    ``method``: ``"kronecker"`` (default) or ``"multivariate"``; ``domain``: ``ZZ`` or ``QQ``;
    ``base_bits``: Kronecker base $b = 2^{\\text{base\\_bits}}$.
    """

    def __init__(self, names: list[str], *, method: str = "kronecker", domain=ZZ, base_bits: int = 4):
        if method not in ("kronecker", "multivariate", "lazy", "sympy"):
            raise ValueError(f"method must be 'kronecker', 'lazy', 'multivariate' or 'sympy'; got {method!r}")
        if len(set(names)) != len(names):
            raise ValueError("generator names must be distinct")
        self.names, self.method, self.domain, self.base_bits = list(names), method, domain, base_bits
        self.faults = Faults()
        self.index = {n: i for i, n in enumerate(self.names)}
        if method == "sympy":  # plain SymPy symbols (hooks that build SymPy expressions, e.g. ell(.), exp(.))
            self.ring = None
            self.gens = [sp.Symbol(n) for n in names]
        elif method == "lazy":
            self.ring, _ = ring("z", domain)
            self.gens = [Lazy("g", i, None, 1, self) for i in range(len(names))]
        elif method == "kronecker":
            self.ring, _ = ring("z", domain)
            one = domain.one
            self.gens = [Poly(self.ring({(1 << (base_bits * i),): one}), 1, self) for i in range(len(names))]
        else:
            if not names:
                self.ring, self.gens = ring("z", domain)[0], []
            else:
                self.ring, *g = ring([f"g{i}" for i in range(len(names))], domain)
                self.gens = [Poly(x, 1, self) for x in g]

    @property
    def base(self) -> int:
        return 1 << self.base_bits

    def _key(self, v):
        if isinstance(v, sp.Basic) and not v.is_Rational:
            v = self.from_sympy(v)
        if type(v) is Poly:
            return ("p", tuple(sorted((e[0] if len(e) == 1 else e, str(c)) for e, c in v.p.items())))
        if type(v) is Lazy:
            diff, order, _ = expand_pair(v, 0, self.ring, self.domain, max(1, v.deg.bit_length()))
            return ("l", tuple(order), tuple(sorted((e, str(c)) for e, c in diff.items())))
        if isinstance(v, int | Fraction):
            return ("c", str(v))
        if isinstance(v, sp.Basic) and v.is_Rational:
            return ("c", str(v))
        raise HasAtoms(f"cannot use {type(v).__name__} as the argument of an uninterpreted function")

    def proxy(self, value):
        """A SymPy symbol standing for ``value`` (a :class:`Poly` or :class:`Lazy` of this context)."""
        table = self.__dict__.setdefault("_proxy_of", {})
        back = self.__dict__.setdefault("_value_of", {})
        sym = table.get(id(value))
        if sym is None:
            sym = sp.Dummy(f"v{len(table)}")
            table[id(value)] = sym
            back[sym] = value  # keeps value alive, so id(value) stays unique
        return sym

    def from_sympy(self, e):
        """A SymPy expression over proxies, numbers and uninterpreted functions, as a value of this context
        (``+``, ``*`` and integer powers are redone in the ring; ``ell(.)`` becomes a generator)."""
        back = self.__dict__.get("_value_of", {})
        memo: dict = {}

        def go(x):
            if x in memo:
                return memo[x]
            if x.is_Rational:
                f = Fraction(int(x.p), int(x.q))
                r = int(f) if f.denominator == 1 else f
            elif isinstance(x, sp.Symbol) and x in back:
                r = back[x]
            elif isinstance(x, sp.core.function.AppliedUndef):
                r = self.atom(x)
            elif isinstance(x, sp.Add):
                r = 0
                for arg in x.args:
                    r = r + go(arg)
            elif isinstance(x, sp.Mul):
                r = 1
                for arg in x.args:
                    r = r * go(arg)
            elif isinstance(x, sp.Pow) and x.exp.is_Integer and x.exp >= 0:
                base, r = go(x.base), 1
                for _ in range(int(x.exp)):
                    r = r * base
            else:
                raise HasAtoms(
                    f"{type(x).__name__} {sp.sstr(x)[:80]} is neither a polynomial operation nor an "
                    "uninterpreted function"
                )
            memo[x] = r
            return r

        return go(e)

    def atom(self, expr):
        """A generator standing for an uninterpreted function application such as ``ell(logit)``: the same
        function of the same polynomial argument is the same generator (on both sides of an identity)."""
        if not isinstance(expr, sp.core.function.AppliedUndef):
            raise HasAtoms(
                f"{type(expr).__name__} {sp.sstr(expr)[:80]} is not an uninterpreted function of "
                "the values; use the SymPy method"
            )
        key = (expr.func.__name__, tuple(self._key(a) for a in expr.args))
        atoms = self.__dict__.setdefault("_atoms", {})
        if key not in atoms:
            if self.method == "multivariate":
                raise HasAtoms("the multivariate ring has a fixed set of generators")
            idx = len(self.names)
            self.names.append(f"{expr.func.__name__}#{len(atoms)}")
            if self.method == "lazy":
                g = Lazy("g", idx, None, 1, self)
            else:
                g = Poly(self.ring({(1 << (self.base_bits * idx),): self.domain.one}), 1, self)
            atoms[key] = g
        return atoms[key]

    def const(self, c):
        return coefficient(c, self.domain)

    def require_injective(self, max_deg: int) -> bool:
        """True when a result of total degree ``<= max_deg`` can be decided exactly (see module doc)."""
        return self.method == "multivariate" or max_deg < self.base

    def bits_needed(self, max_deg: int) -> int:
        return max(1, int(max_deg).bit_length())

    # -- reading results -------------------------------------------------------------------------
    def monomials(self, v, limit: int | None = None) -> list[tuple[Fraction, dict[str, int]]]:
        """Decode (coefficient, {generator name: exponent}) pairs of a value, sorted, at most ``limit``."""
        if type(v) is not Poly:
            return [] if v == 0 else [(to_fraction(v), {})]
        out = []
        for exps, c in v.p.items():
            if self.method == "kronecker":
                e, mono, i, mask = exps[0], {}, 0, self.base - 1
                while e:
                    if e & mask:
                        mono[self.names[i]] = e & mask
                    e >>= self.base_bits
                    i += 1
            else:
                mono = {self.names[i]: k for i, k in enumerate(exps) if k}
            out.append(
                (
                    Fraction(int(c.numerator), int(c.denominator))
                    if hasattr(c, "denominator")
                    else Fraction(int(c)),
                    mono,
                )
            )
        out.sort(key=lambda cm: (sorted(cm[1].items()), cm[0]))
        return out[:limit] if limit is not None else out

    def format_monomial(self, coeff: Fraction, mono: dict[str, int]) -> str:
        factors = [n if k == 1 else f"{n}^{k}" for n, k in sorted(mono.items())]
        return f"{coeff}" + ("*" + "*".join(factors) if factors else "")

    def num_terms(self, v) -> int:
        return len(v.p) if type(v) is Poly else (0 if v == 0 else 1)
