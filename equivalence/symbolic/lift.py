r"""Lift: run a float64 torch function on *exact* values (stage 1 of the proof pipeline).

A variant's ``reference``, its ``recurrence`` step/readout, its ``construct(params)`` (wiring, E1 decay,
upstream feature layer) are ordinary torch code. :class:`Lifter` runs such code *for real* under a
``TorchDispatchMode`` and, beside every float64 tensor the code computes, keeps a *shadow*: the exact value of
each storage element as an element of $\mathbb Q[g_1, g_2, \dots]$ (:class:`Poly`), where the generators $g_i$
are the entries of the arrays we declared symbolic (parameters, inputs, states) and *atoms*: applications
$f(p)$ of a non-polynomial function (``exp``, ``sigmoid``, ``softplus``, ``tanh``, ``elu``, ...) to a
polynomial $p$ in canonical form. Atoms are uninterpreted: two lifted values are equal as elements of this
ring only if they are equal for *every* interpretation of the functions, so an identity decided here holds for
every link function (and in particular for the real ones). A few true identities of the real functions are
applied as rewrites so that two spellings of one value meet ($\log\sigma(g) = -\mathrm{softplus}(-g)$,
$\mathrm{silu}(g) = g\,\sigma(g)$, $\mathrm{logaddexp}(g, 0) = \mathrm{softplus}(g)$, $\log e^{g} = g$,
$\sigma(-g) = 1 - \sigma(g)$, $\mathrm{softplus}(-g) = \mathrm{softplus}(g) - g$); a quotient by a
non-constant value is a product with the atom $\mathrm{inv}(p)$.

Binary64 constants that the code uses (a ``1.0``, a ``torch.full(.., 0.5)``, a tensor literal) are read as the
rationals they denote (exact). Because the code runs on real tensors, its Python control flow (validation,
``if``) sees the real sampled values: the lift is the function *on the branch the sample took*; every such
data-dependent read of a symbolic value is recorded (:attr:`Lifter.branches`) and named in the claim's
assumptions. A read of a symbolic *float* value into Python (``.item()``, ``.tolist()``) means the code bakes
a parameter value into a constant: :attr:`Lifter.value_reads` is then non-empty and the caller proves at
sampled parameters instead. An operation the lift cannot interpret exactly raises :class:`Unliftable` with the
reason.

Complex tensors are lifted exactly: a complex value is a pair $(a, b)$ of exact reals (:class:`Cx`), and a
complex storage's shadow holds the interleaved real and imaginary parts, so ``view_as_real`` and the lazy
conjugate views alias exactly. ``cos``/``sin`` of an integer combination of *angle atoms*
$\mathrm{atan2}(s, c)$ with rational $c^2 + s^2 = 1$ (how sampled angles are represented,
:mod:`.simulation`) are computed exactly by de Moivre; of anything else they stay atoms.

Shadows live per *storage* (flat, indexed by storage offset and strides), so views and in-place writes alias
exactly as torch's own tensors do. Pure data movement (views, ``cat``, ``index``, ``gather``, ``tril``,
``masked_fill``, ``where`` with a constant condition, ...) is interpreted by running the same op on tensors of
*codes* (element numbers), so no per-op index logic is written by hand.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    "Atom",
    "Cx",
    "Lifter",
    "Poly",
    "Ring",
    "Unliftable",
    "apply_fn",
    "conj",
    "cx",
    "evaluate",
    "im_part",
    "is_number",
    "re_part",
]

aten = torch.ops.aten


class Unliftable(Exception):
    """The code cannot be run on exact values; the message says which operation and why."""


# -- the ring ------------------------------------------------------------------------------------------
class Atom:
    """An uninterpreted function application ``name(*args)`` (args: canonical exact values)."""

    __slots__ = ("args", "name", "params")

    def __init__(self, name: str, args: tuple, params: tuple = ()):
        self.name, self.args, self.params = name, args, params

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.params)
        return f"{self.name}({', '.join(map(str, self.args))}{extra})"


class Ring:
    """Generators of one proof: named variables (``"W_Q[0,1,2]"``) and atoms, numbered in creation order."""

    def __init__(self):
        self.names: list[str] = []
        self.atoms: dict[int, Atom] = {}
        self._atom_ids: dict[tuple, int] = {}
        self._var_ids: dict[str, int] = {}
        self.onehot: dict[int, tuple] = {}  # generator -> group key of a one-hot atom e_j(g)

    def onehot_atom(self, j: int, scores: tuple) -> object:
        r"""$e_j(g) = [\arg\max_i g_i = j]$ (first maximum), as an atom with the relations of a one-hot
        vector:
        $e_ie_j = \delta_{ij}e_i$ (applied in products) and $\sum_j e_j = 1$ (the last is eliminated)."""
        n = len(scores)
        if n == 1:
            return 1
        if j == n - 1:
            return 1 - sum((self.onehot_atom(i, scores) for i in range(n - 1)), 0)
        p = self.atom("onehot", tuple(scores), (("j", j), ("n", n)))
        ((m,),) = [tuple(p.terms)]
        self.onehot[m[0]] = tuple(value_key(a) for a in scores)
        return p

    def var(self, name: str) -> Poly:
        if name in self._var_ids:
            k = self._var_ids[name]
        else:
            k = len(self.names)
            self.names.append(name)
            self._var_ids[name] = k
        return Poly({(k,): 1}, self)

    def array(self, name: str, shape) -> np.ndarray:
        """Object array of fresh variables ``name[i,j,..]``."""
        out = np.empty(tuple(shape), dtype=object)
        for idx in np.ndindex(*out.shape):
            out[idx] = self.var(f"{name}[{','.join(map(str, idx))}]" if idx else name)
        return out

    def atom(self, name: str, args: tuple, params: tuple = ()) -> Poly:
        key = (name, tuple(value_key(a) for a in args), params)
        k = self._atom_ids.get(key)
        if k is None:
            k = len(self.names)
            self.names.append(repr(Atom(name, args, params)))
            self.atoms[k] = Atom(name, args, params)
            self._atom_ids[key] = k
        return Poly({(k,): 1}, self)

    def is_atom(self, k: int) -> bool:
        return k in self.atoms


def is_number(v) -> bool:
    return isinstance(v, int | Fraction) and not isinstance(v, bool)


def value_key(v):
    """A hashable canonical key of an exact value (equal values, equal keys)."""
    if isinstance(v, Poly):
        return frozenset(v.terms.items())
    return Fraction(v)


def _scaled(p: "Poly") -> tuple[int, dict]:
    """``(D, {m: n})`` with ``p = (1/D) * sum n_m m``, integer ``n_m`` and ``D > 0`` coprime to the
    ``n_m`` together (a canonical form: equal polynomials, equal pairs). The arithmetic works on this form:
    Python integers are far cheaper than Fractions, and the Fraction coefficients of ``terms`` are built only
    when read."""
    sc = p._scaled
    if sc is None:
        terms = p._terms
        dens = [c.denominator for c in terms.values() if type(c) is not int]
        D = math.lcm(*dens) if dens else 1
        if D == 1:
            sc = (1, {m: int(c) for m, c in terms.items()})
        else:
            sc = (D, {m: _numerator(c, D) for m, c in terms.items()})
        p._scaled = sc
    return sc


def _ratio(c) -> tuple[int, int]:
    """``(numerator, denominator)`` of an exact number (``int`` or ``Fraction``; denominator > 0)."""
    return (c, 1) if type(c) is int else (c.numerator, c.denominator)


def _numerator(c, D: int) -> int:
    """``c * D`` as an integer (``D`` a multiple of ``c``'s denominator)."""
    return c * D if type(c) is int else c.numerator * (D // c.denominator)


def _unscaled(t: dict, D: int, ring: "Ring", clean: bool = False):
    """The value ``(1/D) * sum t[m] m`` (``D > 0``): zero terms dropped (``clean``: there are none), the
    form made canonical, a constant returned as a number."""
    if not clean:
        t = {m: n for m, n in t.items() if n}
    if not t:
        return 0
    if len(t) == 1 and () in t:
        return Fraction(t[()], D) if D != 1 else t[()]
    if D != 1:
        g = math.gcd(D, *t.values())
        if g != 1:
            D //= g
            t = {m: n // g for m, n in t.items()}
    return Poly._from_scaled(t, D, ring)


def _scale(t: dict, f: int) -> dict:
    return t if f == 1 else {m: n * f for m, n in t.items()}


def _mul_terms(p: "Poly", o: "Poly", ring: Ring):
    """Product of two non-constant polynomials (no one-hot relations)."""
    (Da, na), (Db, nb) = _scaled(p), _scaled(o)
    if len(na) < len(nb):
        na, nb = nb, na
    if len(nb) == 1:  # a monomial times a polynomial: m -> m * m2 is injective, so no terms meet or cancel
        ((m2, c2),) = nb.items()
        t = {tuple(sorted(m1 + m2)) if m1 else m2: c1 * c2 for m1, c1 in na.items()}
        return _unscaled(t, Da * Db, ring, clean=True)
    t: dict = {}
    get = t.get
    for m2, c2 in nb.items():
        for m1, c1 in na.items():
            m = (tuple(sorted(m1 + m2)) if m2 else m1) if m1 else m2
            t[m] = get(m, 0) + c1 * c2
    return _unscaled(t, Da * Db, ring)


def _onehot_split(p: "Poly", oh: dict) -> dict:
    """``{signature: {rest: n}}``: the terms of ``p`` grouped by their one-hot generators (the signature, a
    sorted tuple with at most one generator per group, as stored monomials are reduced) and the rest of the
    monomial, with the integer coefficients ``n`` of :func:`_scaled`. Cached on the polynomial:
    its terms never change, and a generator registered later cannot occur in it."""
    split = p._split
    if split is None:
        split = {}
        for m, c in _scaled(p)[1].items():
            sig = tuple(g for g in m if g in oh)
            rest = tuple(g for g in m if g not in oh) if sig else m
            split.setdefault(sig, {})[rest] = c
        p._split = split
    return split


def _merge_signatures(g1: tuple, g2: tuple, oh: dict):
    r"""The one-hot part of a product of signatures ``g1`` and ``g2`` under $e_ie_j = \delta_{ij}e_i$
    (``None`` when it vanishes)."""
    if not g1:
        return g2
    if not g2:
        return g1
    groups = {oh[g]: g for g in g1}
    extra = []
    for g in g2:
        h = groups.get(oh[g])
        if h is None:
            extra.append(g)
        elif h != g:
            return None
    return g1 + tuple(extra) if extra else g1


class Poly:
    """A non-constant element of $\\mathbb Q[\\text{generators}]$: ``terms`` is ``{monomial: coefficient}``
    (``int`` or ``Fraction``), a monomial being a sorted tuple of its generators (with repetition). Constants
    are plain ``int`` / ``Fraction`` (never a Poly). The arithmetic runs on the integer form of
    :func:`_scaled`; ``terms`` is built from it when first read. A Poly never changes after construction."""

    __slots__ = ("_scaled", "_split", "_terms", "ring")

    def __init__(self, terms: dict, ring: Ring):
        self._terms, self.ring, self._split, self._scaled = terms, ring, None, None

    @classmethod
    def _from_scaled(cls, t: dict, D: int, ring: Ring) -> Poly:
        p = cls.__new__(cls)
        p._terms, p.ring, p._split, p._scaled = None, ring, None, (D, t)
        return p

    @property
    def terms(self) -> dict:
        terms = self._terms
        if terms is None:
            D, t = self._scaled
            if D == 1:
                terms = dict(t)
            else:
                terms = {}
                for m, n in t.items():
                    q, r = divmod(n, D)
                    terms[m] = Fraction(n, D) if r else q
            self._terms = terms
        return terms

    # arithmetic (operands: Poly, int, Fraction; a float operand is read as the rational it denotes)
    def _coerce(self, o):
        if isinstance(o, Poly):
            return o
        if isinstance(o, bool):
            return int(o)
        if isinstance(o, int | Fraction):
            return o
        if isinstance(o, float | np.floating):
            return exact_float(float(o))
        if isinstance(o, np.integer):
            return int(o)
        return NotImplemented

    def __add__(self, o):
        o = self._coerce(o)
        if o is NotImplemented:
            return o
        if not isinstance(o, Poly) and not o:
            return self
        Da, na = _scaled(self)
        if isinstance(o, Poly):
            Db, nb = _scaled(o)
        else:
            num, Db = _ratio(o)
            nb = {(): num}
        D = Da if Da == Db else math.lcm(Da, Db)
        na, nb = _scale(na, D // Da), _scale(nb, D // Db)
        if len(na) < len(nb):
            na, nb = nb, na
        t = dict(na)  # the larger one is copied, the smaller merged in; only cancelled terms are removed
        for m, c in nb.items():
            v = t.get(m, 0) + c
            if v:
                t[m] = v
            else:
                del t[m]
        return _unscaled(t, D, self.ring, clean=True)

    __radd__ = __add__

    def __neg__(self):
        D, t = _scaled(self)
        return Poly._from_scaled({m: -n for m, n in t.items()}, D, self.ring)

    def __sub__(self, o):
        o = self._coerce(o)
        return o if o is NotImplemented else self + (-o)

    def __rsub__(self, o):
        o = self._coerce(o)
        return o if o is NotImplemented else (-self) + o

    def _times_number(self, num: int, den: int):
        """``self * num / den`` (``den > 0``, ``num != 0``)."""
        D, t = _scaled(self)
        return _unscaled({m: n * num for m, n in t.items()}, D * den, self.ring, clean=True)

    def __mul__(self, o):
        o = self._coerce(o)
        if o is NotImplemented:
            return o
        if not isinstance(o, Poly):
            if o == 0:
                return 0
            if o == 1:
                return self
            return self._times_number(*_ratio(o))
        oh = self.ring.onehot
        if not oh:
            return _mul_terms(self, o, self.ring)
        # stored monomials are reduced, so only a product of two monomials that both hold a one-hot atom
        # can need the relations: each side is split by its one-hot part (its signature), the relations are
        # applied once per pair of signatures, and the one-hot-free rests multiply as in _mul_terms
        s1, s2 = _onehot_split(self, oh), _onehot_split(o, oh)
        if len(s1) == 1 and () in s1 or len(s2) == 1 and () in s2:
            return _mul_terms(self, o, self.ring)
        t: dict = {}
        get = t.get
        for g1, r1 in s1.items():
            for g2, r2 in s2.items():
                sig = _merge_signatures(g1, g2, oh)
                if sig is None:  # two different e_j of one group: e_i e_j = 0
                    continue
                for m1, c1 in r1.items():
                    for m2, c2 in r2.items():
                        m = m1 + m2 + sig
                        m = tuple(sorted(m)) if len(m) > 1 else m
                        t[m] = get(m, 0) + c1 * c2
        return _unscaled(t, _scaled(self)[0] * _scaled(o)[0], self.ring)

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = self._coerce(o)
        if o is NotImplemented:
            return o
        if isinstance(o, Poly):
            return self * apply_fn("inv", o)
        if o == 0:
            raise Unliftable("division by an exact zero")
        p, q = _ratio(o)  # self / (p/q) = self * q/p, with the sign moved to the numerator
        return self._times_number(q, p) if p > 0 else self._times_number(-q, -p)

    def __rtruediv__(self, o):
        o = self._coerce(o)
        return o if o is NotImplemented else o * apply_fn("inv", self)

    def __pow__(self, k):
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            if isinstance(k, Fraction) and k.denominator == 1 and k >= 0:
                k = int(k)
            else:
                return apply_fn("pow", self, params=(("exponent", str(k)),))
        out = 1
        base = self
        while k:
            if k & 1:
                out = base * out
            k >>= 1
            if k:
                base = base * base
        return out

    def __eq__(self, o):
        if isinstance(o, Poly):
            return _scaled(self) == _scaled(o)  # canonical forms
        return False  # a Poly is never a constant

    def __hash__(self):
        D, t = _scaled(self)
        return hash((D, frozenset(t.items())))

    def __bool__(self):
        return True

    @property
    def degree(self) -> int:
        return max(len(m) for m in self.terms)

    def generators(self) -> set[int]:
        return {g for m in self.terms for g in m}

    def sign(self) -> int:
        """Sign of the coefficient of the first monomial in a fixed order (for canonical forms)."""
        m = min(self.terms, key=lambda m: (len(m), m))
        return 1 if self.terms[m] > 0 else -1

    def __repr__(self) -> str:
        return render(self)


def _powers(m: tuple) -> list[tuple[int, int]]:
    """``(generator, exponent)`` pairs of a monomial."""
    out: list[list[int]] = []
    for g in m:
        if out and out[-1][0] == g:
            out[-1][1] += 1
        else:
            out.append([g, 1])
    return [(g, e) for g, e in out]


def render(v, limit: int = 12) -> str:
    """A readable string of an exact value (at most ``limit`` terms)."""
    if not isinstance(v, Poly):
        return str(v)
    names = v.ring.names
    parts = []
    for m, c in sorted(v.terms.items(), key=lambda mc: (len(mc[0]), mc[0]))[:limit]:
        f = "*".join(names[g] if e == 1 else f"{names[g]}^{e}" for g, e in _powers(m))
        parts.append(f"{c}" if not f else (f if c == 1 else f"-{f}" if c == -1 else f"{c}*{f}"))
    s = " + ".join(parts).replace("+ -", "- ")
    return s + (" + ..." if len(v.terms) > limit else "")


def exact_float(f: float):
    if f.is_integer():
        return int(f)
    if not math.isfinite(f):
        raise Unliftable(f"the code computed with the non-finite float {f!r}")
    q = Fraction(f)
    return int(q) if q.denominator == 1 else q


# -- non-polynomial functions ---------------------------------------------------------------------------
def _ring_of(*vs):
    for v in vs:
        if isinstance(v, Poly):
            return v.ring
    return None


_CONST_RING = None


def apply_fn(name: str, g, *, params: tuple = ()):
    """``name(g)`` as an exact value: a number when exactly known, else an atom (after canonical rewrites)."""
    if isinstance(g, Cx):
        if name == "exp":  # e^{a+ib} = e^a (cos b + i sin b)
            e = apply_fn("exp", g.re)
            return cx(e * apply_fn("cos", g.im), e * apply_fn("sin", g.im))
        raise Unliftable(f"{name} of a complex value is not supported by the exact lift")
    if name == "logsigmoid":
        return -apply_fn("softplus", -g)
    if name == "silu":
        return g * apply_fn("sigmoid", g)
    if name == "sigmoid":
        if is_number(g) and g == 0:
            return Fraction(1, 2)
        if _negative(g):
            return 1 - apply_fn("sigmoid", -g)
    if name == "softplus" and _negative(g):
        return apply_fn("softplus", -g) + g
    if name == "tanh":
        if is_number(g) and g == 0:
            return 0
        if _negative(g):
            return -apply_fn("tanh", -g)
    if name == "exp":
        if is_number(g) and g == 0:
            return 1
        if isinstance(g, Poly):
            split = _exp_sigmoid_factors(g)
            if split is not None:
                factor, rest = split
                return factor * apply_fn("exp", rest)
    if name in ("cos", "sin"):
        if is_number(g) and g == 0:
            return 1 if name == "cos" else 0
        cs = _angle_trig(g)
        if cs is not None:
            v = cs[0] if name == "cos" else cs[1]
            return int(v) if v.denominator == 1 else v
    if name == "log":
        if is_number(g) and g == 1:
            return 0
        a = _as_atom(g)
        if a is not None and a.name == "exp":
            return a.args[0]
        if a is not None and a.name == "sigmoid":  # log sigma(h) = h - softplus(h)
            return a.args[0] - apply_fn("softplus", a.args[0])
        h = _one_plus_atom(g, "sigmoid", -1)
        if h is not None:  # log(1 - sigma(h)) = log sigma(-h) = -softplus(h)
            return -apply_fn("softplus", h)
    if name in ("relu", "abs") and is_number(g):
        return max(g, 0) if name == "relu" else abs(g)
    if (
        name == "elu"
        and is_number(g)
        and g >= 0
        and dict(params).get("scale", "1") == "1"
        and dict(params).get("input_scale", "1") == "1"
    ):
        return g
    if name == "inv" and is_number(g):
        if g == 0:
            raise Unliftable("division by an exact zero")
        return Fraction(1) / g
    if name == "inv":
        h = _one_plus_atom(g, "exp", 1)
        if h is not None:  # 1 / (1 + e^h) = sigma(-h)
            return apply_fn("sigmoid", -h)
    ring = _ring_of(g)
    if ring is None:
        ring = _const_ring()
    return ring.atom(name, (g,), params)


def _one_plus_atom(g, name: str, sign: int):
    """The argument ``h`` when ``g`` is exactly ``1 + sign * name(h)``, else ``None``."""
    if not isinstance(g, Poly) or len(g.terms) != 2 or g.terms.get(()) != 1:
        return None
    ((m, c),) = [(m, c) for m, c in g.terms.items() if m]
    if c != sign or len(m) != 1:
        return None
    a = g.ring.atoms.get(m[0])
    return a.args[0] if a is not None and a.name == name else None


def _exp_sigmoid_factors(g: Poly):
    r"""Split $e^{g}$ at a term $-\mathrm{softplus}(h)$ of $g$ (the log-sigmoid spellings of a gate):
    $e^{h - \mathrm{softplus}(h) + r} = \sigma(h)\,e^{r}$ when every term of $h$ is a term of $g$, else
    $e^{-\mathrm{softplus}(h) + r} = (1 - \sigma(h))\,e^{r}$ (both true for every real $h$, as
    $\log\sigma(h) = h - \mathrm{softplus}(h)$ and $\log\sigma(-h) = -\mathrm{softplus}(h)$). Returns
    ``(factor, r)`` or ``None`` when $g$ has no such term. With the rewrite ``sigmoid(-h) = 1 - sigmoid(h)``
    this makes ``sigmoid(g)``, ``exp(logsigmoid(g))``, ``exp(g - softplus(g))`` and ``1 / (1 + exp(-g))``
    one value."""
    atoms = g.ring.atoms
    for m, c in g.terms.items():
        if len(m) != 1 or c != -1:
            continue
        a = atoms.get(m[0])
        if a is None or a.name != "softplus":
            continue
        h = a.args[0]
        sp = Poly({m: 1}, g.ring)
        hterms = h.terms.items() if isinstance(h, Poly) else [((), h)]
        if all(g.terms.get(mh) == ch for mh, ch in hterms):
            return apply_fn("sigmoid", h), g - h + sp
        return 1 - apply_fn("sigmoid", h), g + sp
    return None


def _const_ring() -> Ring:
    """Atoms of constant arguments belong to the active lifter's ring."""
    if Lifter.active is None:
        raise Unliftable("a non-polynomial function of a constant outside a lift")
    return Lifter.active.ring


def _negative(g) -> bool:
    if is_number(g):
        return g < 0
    return isinstance(g, Poly) and g.sign() < 0


def _as_atom(g) -> Atom | None:
    if isinstance(g, Poly) and len(g.terms) == 1:
        ((m, c),) = g.terms.items()
        if c == 1 and len(m) == 1 and g.ring.is_atom(m[0]):
            return g.ring.atoms[m[0]]
    return None


# -- complex values ----------------------------------------------------------------------------------
class Cx:
    r"""An exact complex value $a + ib$ with $a, b$ exact reals (numbers or :class:`Poly`), $b \ne 0$
    (:func:`cx` returns the real $a$ when $b = 0$). Complex tensors are lifted with this type; their shadows
    are stored as interleaved real and imaginary parts, so ``view_as_real`` aliases exactly."""

    __slots__ = ("im", "re")

    def __init__(self, re, im):
        self.re, self.im = re, im

    @staticmethod
    def _parts(o):
        if isinstance(o, Cx):
            return o.re, o.im
        if isinstance(o, Poly | int | Fraction) and not isinstance(o, bool):
            return o, 0
        if isinstance(o, bool | np.integer):
            return int(o), 0
        if isinstance(o, float | np.floating):
            return exact_float(float(o)), 0
        if isinstance(o, complex):
            return exact_float(o.real), exact_float(o.imag)
        return None

    def __add__(self, o):
        p = self._parts(o)
        return NotImplemented if p is None else cx(self.re + p[0], self.im + p[1])

    __radd__ = __add__

    def __neg__(self):
        return Cx(-self.re, -self.im)

    def __sub__(self, o):
        p = self._parts(o)
        return NotImplemented if p is None else cx(self.re - p[0], self.im - p[1])

    def __rsub__(self, o):
        p = self._parts(o)
        return NotImplemented if p is None else cx(p[0] - self.re, p[1] - self.im)

    def __mul__(self, o):
        p = self._parts(o)
        if p is None:
            return NotImplemented
        a, b = p
        return cx(self.re * a - self.im * b, self.re * b + self.im * a)

    __rmul__ = __mul__

    def __truediv__(self, o):
        p = self._parts(o)
        if p is None:
            return NotImplemented
        return self * _cinv(*p)

    def __rtruediv__(self, o):
        p = self._parts(o)
        return NotImplemented if p is None else cx(*p) * _cinv(self.re, self.im)

    def conjugate(self):
        return Cx(self.re, -self.im)

    def __eq__(self, o):
        p = self._parts(o)
        return p is not None and _req(self.re, p[0]) and _req(self.im, p[1])

    def __hash__(self):
        return hash((value_key(self.re), value_key(self.im)))

    def __bool__(self):
        return True

    def __repr__(self) -> str:
        return f"({render(self.re)}) + i({render(self.im)})"


def _req(a, b) -> bool:
    d = a - b
    return not isinstance(d, Poly) and d == 0


def cx(re, im):
    """The exact complex value ``re + i im``: the real ``re`` when ``im`` is exactly 0."""
    if not isinstance(im, Poly) and im == 0:
        return re
    return Cx(re, im)


def _cinv(a, b):
    if not isinstance(b, Poly) and b == 0:
        return _div1(1, a)
    n = a * a + b * b
    return cx(_div1(a, n), _div1(-b, n))


def re_part(v):
    """Real part of an exact value."""
    return v.re if isinstance(v, Cx) else v


def im_part(v):
    """Imaginary part of an exact value."""
    return v.im if isinstance(v, Cx) else 0


def conj(v):
    return v.conjugate() if isinstance(v, Cx) else v


def _unit_power(c: Fraction, s: Fraction, n: int) -> tuple[Fraction, Fraction]:
    """$(c + is)^n$ for a point $c + is$ on the unit circle ($n < 0$: the conjugate's power)."""
    if n < 0:
        c, s, n = c, -s, -n
    re, im = Fraction(1), Fraction(0)
    while n:
        if n & 1:
            re, im = re * c - im * s, re * s + im * c
        n >>= 1
        if n:
            c, s = c * c - s * s, 2 * c * s
    return re, im


def _angle_trig(g):
    r"""``(cos g, sin g)`` exactly when ``g`` is an integer combination of *angle atoms*
    $\mathrm{atan2}(s, c)$ with rational $c^2 + s^2 = 1$ (sampled angles; de Moivre), else ``None``."""
    if not isinstance(g, Poly):
        return None
    re, im = Fraction(1), Fraction(0)
    for m, k in g.terms.items():
        if len(m) != 1 or k.denominator != 1:
            return None
        a = g.ring.atoms.get(m[0])
        if a is None or a.name != "atan2":
            return None
        s, c = a.args
        pr, pi = _unit_power(Fraction(c), Fraction(s), int(k))
        re, im = re * pr - im * pi, re * pi + im * pr
    return re, im


# -- numeric evaluation (counterexamples) ---------------------------------------------------------------
def evaluate(v, point: dict[int, Fraction], *, prec: int = 60, as_float: bool = False):
    """Value of an exact value at ``point`` (generator number -> rational; atoms are evaluated from their
    arguments): a ``Fraction`` when no atom is involved, else an ``mpmath.mpf`` at ``prec`` digits;
    ``as_float``: in binary64 throughout (fast; for the cross-checks that never decide a claim)."""
    cache: dict[int, object] = {}
    num = float if as_float else Fraction

    def gen(k):
        if k in cache:
            return cache[k]
        if k in point:
            cache[k] = num(point[k])
        else:
            ring = v.ring
            a = ring.atoms.get(k)
            if a is None:
                raise KeyError(f"no value for generator {ring.names[k]}")
            val = _eval_atom(a, [ev(x) for x in a.args])
            cache[k] = float(val) if as_float else val
        return cache[k]

    def ev(w):
        if not isinstance(w, Poly):
            return num(w)
        total = num(0)
        for m, c in w.terms.items():
            term = num(c)
            for g in m:
                term = term * gen(g)
            total = total + term
        return total

    with mpmath.workdps(prec):
        return ev(v)


def _eval_atom(a: Atom, args):
    if a.name == "onehot":
        vals = [float(v) for v in args]
        return 1 if vals.index(max(vals)) == dict(a.params)["j"] else 0
    if a.name == "atan2":
        s, c = (mpmath.mpf(v.numerator) / v.denominator if isinstance(v, Fraction) else v for v in args)
        return mpmath.atan2(s, c)
    x = args[0]
    xm = mpmath.mpf(x.numerator) / x.denominator if isinstance(x, Fraction) else mpmath.mpf(x)
    p = dict(a.params)
    fns = {
        "exp": mpmath.exp,
        "log": mpmath.log,
        "sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
        "softplus": lambda u: mpmath.log(1 + mpmath.exp(u)),
        "tanh": mpmath.tanh,
        "abs": abs,
        "relu": lambda u: max(u, 0),
        "sqrt": mpmath.sqrt,
        "rsqrt": lambda u: 1 / mpmath.sqrt(u),
        "inv": lambda u: 1 / u,
        "cos": mpmath.cos,
        "sin": mpmath.sin,
        "elu": lambda u: u if u > 0 else mpmath.mpf(p.get("alpha", "1")) * (mpmath.exp(u) - 1),
    }
    if a.name not in fns:
        raise Unliftable(f"cannot evaluate the atom {a.name} numerically")
    return fns[a.name](xm)


# -- the lifter ------------------------------------------------------------------------------------------


def _ops(*names: str) -> set:
    """The aten overloads named (``"view.default"``); names this torch lacks are skipped."""
    out = set()
    for n in names:
        packet, overload = n.rsplit(".", 1)
        op = getattr(getattr(aten, packet, None), overload, None) if hasattr(aten, packet) else None
        if op is not None:
            out.add(op)
    return out


_FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
_VIEWS = _ops(
    "view.default",
    "_unsafe_view.default",
    "permute.default",
    "expand.default",
    "select.int",
    "slice.Tensor",
    "transpose.int",
    "unsqueeze.default",
    "squeeze.dim",
    "squeeze.default",
    "squeeze.dims",
    "alias.default",
    "detach.default",
    "t.default",
    "clone.default",
    "lift_fresh.default",
    "lift_fresh_copy.default",
    "cat.default",
    "stack.default",
    "index.Tensor",
    "gather.default",
    "index_select.default",
    "flip.default",
    "roll.default",
    "repeat.default",
    "tril.default",
    "triu.default",
    "diagonal.default",
    "unbind.int",
    "split.Tensor",
    "split_with_sizes.default",
    "narrow.default",
    "movedim.int",
    "contiguous.default",
    "reshape.default",
    "slice_scatter.default",
    "select_scatter.default",
    "as_strided.default",
    "unfold.default",
    "expand_copy.default",
    "view_copy.default",
    "permute_copy.default",
    "_conj.default",
    "conj.default",
    "_neg_view.default",
    "view_as_real.default",
    "view_as_complex.default",
)
_TAINT = _ops(
    "isfinite.default",
    "eq.Tensor",
    "eq.Scalar",
    "ne.Tensor",
    "ne.Scalar",
    "lt.Tensor",
    "lt.Scalar",
    "gt.Tensor",
    "gt.Scalar",
    "le.Tensor",
    "le.Scalar",
    "ge.Tensor",
    "ge.Scalar",
    "any.default",
    "any.dim",
    "all.default",
    "all.dim",
    "aminmax.default",
    "max.default",
    "min.default",
    "amax.default",
    "amin.default",
    "argmax.default",
    "argmin.default",
    "isnan.default",
    "isinf.default",
    "bitwise_not.default",
    "logical_not.default",
    "logical_and.default",
    "logical_or.default",
    "sign.default",
    "max.dim",
    "min.dim",
    "sort.default",
    "topk.default",
    "equal.default",
    "bitwise_and.Tensor",
    "bitwise_or.Tensor",
)
_FACTORY = _ops(
    "zeros.default",
    "ones.default",
    "full.default",
    "arange.default",
    "arange.start",
    "arange.start_step",
    "eye.default",
    "eye.m",
    "empty.memory_format",
    "empty.default",
    "new_zeros.default",
    "new_ones.default",
    "new_full.default",
    "zeros_like.default",
    "ones_like.default",
    "full_like.default",
    "empty_like.default",
    "scalar_tensor.default",
    "randn.default",
    "rand.default",
    "empty_strided.default",
    "new_empty_strided.default",
    "_local_scalar_dense.default",
    "randint.low",
    "randint.default",
)
_WHERE = _ops("where.self", "where.ScalarSelf", "where.ScalarOther", "where.Scalar")
_CONJ_COPY = _ops(
    "conj_physical.default", "resolve_conj.default", "_conj_copy.default", "resolve_neg.default"
)
_UNARY = {
    aten.exp.default: "exp",
    aten.log.default: "log",
    aten.sigmoid.default: "sigmoid",
    aten.tanh.default: "tanh",
    aten.silu.default: "silu",
    aten.relu.default: "relu",
    aten.abs.default: "abs",
    aten.sqrt.default: "sqrt",
    aten.rsqrt.default: "rsqrt",
    aten.cos.default: "cos",
    aten.sin.default: "sin",
    aten.reciprocal.default: "inv",
}


class _NonFinite:
    """A non-finite float in storage the code never wrote (it must not reach arithmetic or an output)."""

    def __repr__(self) -> str:
        return "<non-finite>"


_NONFINITE = _NonFinite()


class ArgMax:
    """The shadow of an ``argmax`` index over symbolic scores (only its one-hot vector is interpreted)."""

    __slots__ = ("scores",)

    def __init__(self, scores: tuple):
        self.scores = scores


class _Tainted:
    """Marker shadow: a value derived from a comparison of symbolic values (used only numerically)."""


class Lifter(TorchDispatchMode):
    """Run torch code with exact shadows (module docstring). Use as a context manager::

    lf = Lifter(ring)
    W = lf.symbolic(tensor, "W_Q")      # declare a symbolic input (shadow = fresh variables)
    with lf:
        y = f(W, x)
    Y = lf.read(y)                       # object array of exact values
    """

    active: Lifter | None = None

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """No torch.compile runs under this mode, so its handler needs no dynamo-disable wrapper (torch wraps
        ``__torch_dispatch__`` in one unless this says otherwise; the wrapper costs more than many ops)."""
        return False

    def __init__(self, ring: Ring | None = None):
        super().__init__()
        self.ring = ring or Ring()
        self._shadow: dict[int, tuple[object, np.ndarray]] = {}  # storage id -> (storage ref, flat values)
        self._tainted: dict[int, object] = {}  # storage id -> storage (kept alive: ids stay unique)
        self.branches: list[str] = []
        self.value_reads: list[str] = []
        self.failure: Unliftable | None = None
        self._keep: list = []

    # -- shadows -----------------------------------------------------------------------------------
    @staticmethod
    def _sid(t: torch.Tensor) -> int:
        return t.untyped_storage()._cdata

    def _index(self, t: torch.Tensor) -> np.ndarray:
        """Flat storage element numbers of ``t``'s elements (shape of ``t``; a complex tensor's elements in
        its own units: element ``k`` is the real pair ``2k, 2k+1`` of the shadow)."""
        idx = np.full(tuple(t.shape), t.storage_offset(), dtype=np.int64)
        for ax, (n, s) in enumerate(zip(t.shape, t.stride())):
            shape = [1] * t.ndim
            shape[ax] = n
            idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(shape)
        return idx

    def tracked(self, t) -> bool:
        return isinstance(t, torch.Tensor) and self._sid(t) in self._shadow

    def tainted(self, t) -> bool:
        return isinstance(t, torch.Tensor) and self._sid(t) in self._tainted

    def _storage_values(self, t: torch.Tensor) -> np.ndarray:
        """The storage's numeric values in real units (a complex storage as interleaved re, im); a non-finite
        element (e.g. uninitialised memory of ``torch.empty``) becomes a marker that no arithmetic accepts."""
        st = t.untyped_storage()
        n = st.nbytes() // t.element_size()
        flat = torch.empty(0, dtype=t.dtype, device=t.device).set_(st, 0, (n,), (1,))
        if t.is_complex():
            flat = torch.view_as_real(flat.resolve_conj().resolve_neg()).reshape(-1)
        if flat.is_floating_point() and not bool(torch.isfinite(flat).all()):
            bad = ~torch.isfinite(flat)
            vals = self._numeric(torch.where(bad, torch.zeros_like(flat), flat))
            vals[bad.numpy()] = _NONFINITE
            return vals
        return self._numeric(flat)

    def _numeric(self, t: torch.Tensor) -> np.ndarray:
        if t.is_complex():
            t = t.resolve_conj().resolve_neg()
            r = self._numeric(torch.view_as_real(t)[..., 0])
            i = self._numeric(torch.view_as_real(t)[..., 1])
            return _vmap2(cx, r, i)
        vals = t.detach().cpu()
        out = np.empty(tuple(vals.shape), dtype=object)
        flat = vals.reshape(-1).tolist()
        if t.dtype == torch.bool:
            conv = bool
        elif t.is_floating_point():
            conv = exact_float
        else:
            conv = int
        out.reshape(-1)[:] = [conv(v) for v in flat] if flat else []
        return out

    def read(self, t: torch.Tensor) -> np.ndarray:
        """Exact values of ``t`` (object array of its shape)."""
        if not isinstance(t, torch.Tensor):
            raise Unliftable(f"expected a tensor, got {type(t).__name__}")
        sid = self._sid(t)
        if sid in self._tainted and t.is_floating_point():
            raise Unliftable(
                "an output is a max/min/sign or comparison of symbolic values (piecewise); the exact "
                "lift cannot represent it"
            )
        if sid in self._shadow:
            flat = self._shadow[sid][1]
            idx = self._index(t)
            if t.is_complex():
                vals = _vmap2(
                    cx, np.asarray(flat[2 * idx], dtype=object), np.asarray(flat[2 * idx + 1], dtype=object)
                )
                if t.is_conj():
                    vals = _vmap(conj, vals)
            else:
                vals = np.asarray(flat[idx], dtype=object)
            if t.is_neg():
                vals = _vmap(lambda u: -u, vals)
            return vals if t.ndim else np.array(vals.reshape(-1)[0] if vals.size else vals, dtype=object)
        return self._numeric(t)

    def write(self, t: torch.Tensor, values) -> None:
        sid = self._sid(t)
        whole = (
            t.storage_offset() == 0
            and t.is_contiguous()
            and t.untyped_storage().nbytes() == t.numel() * t.element_size()
        )
        if sid not in self._shadow:
            if whole:  # every element is written below: the numeric values would be overwritten
                n = t.numel() * (2 if t.is_complex() else 1)
                self._shadow[sid] = (t.untyped_storage(), np.empty(n, dtype=object))
            else:
                self._shadow[sid] = (t.untyped_storage(), self._storage_values(t).reshape(-1))
        flat = self._shadow[sid][1]
        vals = np.broadcast_to(np.asarray(values, dtype=object), tuple(t.shape)).reshape(-1)
        if t.is_neg():
            vals = _vmap(lambda u: -u, vals)
        idx = np.arange(t.numel(), dtype=np.int64) if whole else self._index(t).reshape(-1)
        if t.is_complex():
            if t.is_conj():
                vals = _vmap(conj, vals)
            flat[2 * idx] = _vmap(re_part, vals)
            flat[2 * idx + 1] = _vmap(im_part, vals)
        else:
            if any(isinstance(v, Cx) for v in vals):
                self._fail("a complex value written into a real tensor")
            flat[idx] = vals
        self._tainted.pop(sid, None)

    def symbolic(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """A float64 copy of ``t`` whose shadow is fresh variables ``name[..]``."""
        c = t.detach().to(torch.float64).clone().contiguous()
        self._keep.append(c)
        self.write(c, self.ring.array(name, c.shape))
        return c

    def exact(self, t: torch.Tensor, values: np.ndarray) -> torch.Tensor:
        """A float64 (complex128) copy of ``t`` whose shadow is the given exact values."""
        c = t.detach().to(torch.complex128 if t.is_complex() else torch.float64).clone().contiguous()
        self._keep.append(c)
        self.write(c, values)
        return c

    # -- dispatch ----------------------------------------------------------------------------------
    def __enter__(self):
        self._prev = Lifter.active
        Lifter.active = self
        return super().__enter__()

    def __exit__(self, *exc):
        Lifter.active = self._prev
        return super().__exit__(*exc)

    def _fail(self, msg: str):
        err = Unliftable(msg)
        if self.failure is None:
            self.failure = err
        raise err

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat_in = _tensors(args, kwargs)
        shadow, tainted = self._shadow, self._tainted
        sids = [a.untyped_storage()._cdata for a in flat_in]
        tracked_in = [a for a, sid in zip(flat_in, sids) if sid in shadow]
        tainted_in = [a for a, sid in zip(flat_in, sids) if sid in tainted] if tainted else []
        if func is aten._local_scalar_dense.default:
            t = args[0]
            if self.tracked(t):
                v = self.read(t).item()
                if isinstance(v, Poly):
                    self.value_reads.append(f"a symbolic value read into Python ({func})")
            elif self.tainted(t) and (t.is_floating_point() or t.is_complex()):
                # a max/min/abs-max of symbolic values read into Python: a value the code may bake in
                self.value_reads.append(f"a max/min of symbolic values read into Python ({func})")
            elif self.tainted(t) and not self.branches:
                self.branches.append(
                    "Python control flow on a comparison of symbolic values (e.g. input "
                    "validation) was traced at the sampled values"
                )
            return func(*args, **kwargs)
        if tracked_in:  # an in-place op: its destination's shadow must hold the values from before the op
            for a, v in zip(func._schema.arguments, args):
                if (
                    a.alias_info is not None
                    and a.alias_info.is_write
                    and isinstance(v, torch.Tensor)
                    and not self.tracked(v)
                ):
                    st = v.untyped_storage()
                    self._shadow[self._sid(v)] = (st, self._storage_values(v).reshape(-1))
        out = func(*args, **kwargs)
        if not tracked_in:
            if func in _WHERE and all(not a.is_floating_point() and not a.is_complex() for a in tainted_in):
                if tainted_in:  # a selection between constants by a comparison of symbolic values
                    self._note_mask(args[0], func)
                return out
            if tainted_in and func not in _VIEWS or tainted_in:
                for o in _flatten(out):
                    if isinstance(o, torch.Tensor):
                        self._tainted[self._sid(o)] = o.untyped_storage()
            return out
        bad = [a for a in tainted_in if a.is_floating_point()]
        if bad and func not in _TAINT:
            self._fail(
                f"{func}: a value computed by a comparison, max/min or sign of symbolic values (piecewise) "
                f"is "
                "used in arithmetic; the exact lift cannot represent it"
            )
        if any(not a.is_floating_point() for a in tainted_in):
            msg = (
                f"{func}: an index or mask computed from symbolic values (argmax, comparison; piecewise) "
                f"selects "
                "entries as it did at the sampled values"
            )
            if msg not in self.branches:
                self.branches.append(msg)
        if func is aten.argmax.default and args[0].is_floating_point():
            return self._argmax(args, kwargs, out)
        if func in _TAINT:
            for o in _flatten(out):
                if isinstance(o, torch.Tensor):
                    self._tainted[self._sid(o)] = o.untyped_storage()
            return out
        if func in _FACTORY:
            return out
        try:
            self._interpret(func, args, kwargs, out)
        except Unliftable as e:
            if self.failure is None:
                self.failure = e
            raise
        except Exception as e:  # noqa: BLE001 - an interpretation bug must surface as a reason, not a wrong proof
            self._fail(f"{func}: the exact interpretation failed ({type(e).__name__}: {e})")
        return out

    # -- interpretation ----------------------------------------------------------------------------
    def _interpret(self, func, args, kwargs, out):
        R = self.read
        if func in _VIEWS:
            return self._movement(func, args, kwargs, out)
        if func is aten.copy_.default:
            self.write(args[0], R(args[1]))
            return
        if func is aten._to_copy.default or func is aten.to.dtype:
            if not (out.is_floating_point() or out.is_complex()):
                self._fail(f"{func}: conversion of a symbolic value to {out.dtype}")
            v = R(args[0])
            self.write(out, v if out.is_complex() else _vmap(re_part, v))  # complex -> real drops Im
            return
        if func is aten.complex.default:
            a, b = np.broadcast_arrays(
                np.asarray(R(args[0]), dtype=object), np.asarray(R(args[1]), dtype=object)
            )
            return self.write(out, _vmap2(cx, a, b))
        if func is aten.polar.default:
            a, b = np.broadcast_arrays(
                np.asarray(R(args[0]), dtype=object), np.asarray(R(args[1]), dtype=object)
            )
            return self.write(
                out, _vmap2(lambda r, th: cx(r * apply_fn("cos", th), r * apply_fn("sin", th)), a, b)
            )
        if func in (aten.real.default, aten.imag.default):
            return self.write(out, _vmap(re_part if func is aten.real.default else im_part, R(args[0])))
        if func in _CONJ_COPY:
            return self.write(out, _vmap(conj, R(args[0])))
        if func in (aten.fill_.Scalar, aten.fill_.Tensor, aten.zero_.default):
            v = 0 if func is aten.zero_.default else args[1]
            self.write(args[0], R(v) if isinstance(v, torch.Tensor) else _scalar(v))
            return
        if func in (aten.index_put_.default, aten.index_put.default):
            if len(args) > 3 and args[3]:
                return self._index_put_accumulate(func, args, out)
            return self._movement(func, args, kwargs, out)
        if func in (aten.masked_fill.Scalar, aten.masked_fill_.Scalar, aten.masked_fill.Tensor):
            self._note_mask(args[1], func)
            return self._movement(
                func,
                args,
                kwargs,
                out,
                fill=R(args[2]) if isinstance(args[2], torch.Tensor) else _scalar(args[2]),
            )
        if func in (aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar):
            self._note_mask(args[0], func)
            return self._movement(func, args, kwargs, out)
        if func in (aten.scatter_.value, aten.scatter.value) and self.tracked(args[2]):
            return self._scatter_onehot(func, args, out)
        if func in (aten.scatter_.value, aten.scatter.value):
            return self._movement(func, args, kwargs, out, fill=_scalar(args[3]))
        if func in (
            aten.add.Tensor,
            aten.add_.Tensor,
            aten.sub.Tensor,
            aten.sub_.Tensor,
            aten.add.Scalar,
            aten.sub.Scalar,
        ):
            a, b = self._operand(args[0]), self._operand(args[1])
            alpha = _scalar(kwargs.get("alpha", args[2] if len(args) > 2 else 1))
            b = b * alpha if alpha != 1 else b
            res = a + b if func in (aten.add.Tensor, aten.add_.Tensor, aten.add.Scalar) else a - b
            return self.write(out, res)
        if func is aten.rsub.Scalar or func is aten.rsub.Tensor:
            alpha = _scalar(kwargs.get("alpha", args[2] if len(args) > 2 else 1))
            return self.write(out, self._operand(args[1]) - self._operand(args[0]) * alpha)
        if func in (aten.mul.Tensor, aten.mul_.Tensor, aten.mul.Scalar, aten.mul_.Scalar):
            return self.write(out, self._operand(args[0]) * self._operand(args[1]))
        if func in (aten.div.Tensor, aten.div_.Tensor, aten.div.Scalar, aten.div_.Scalar):
            if kwargs.get("rounding_mode") is not None:
                self._fail(f"{func} with rounding_mode={kwargs['rounding_mode']!r} on symbolic values")
            a, b = self._operand(args[0]), self._operand(args[1])
            return self.write(out, _vdiv(a, b))
        if func in (aten.neg.default, aten.neg_.default):
            return self.write(out, -R(args[0]))
        if func in (aten.pow.Tensor_Scalar, aten.pow_.Scalar):
            e = _scalar(args[1])
            return self.write(out, _vpow(R(args[0]), e))
        if func is aten.pow.Tensor_Tensor:
            base, e = self._operand(args[0]), self._operand(args[1])
            if self.tracked(args[1]) and any(isinstance(v, Poly) for v in np.ravel(e)):
                self._fail(f"{func}: a symbolic exponent")
            base, e = np.broadcast_arrays(np.asarray(base, dtype=object), np.asarray(e, dtype=object))
            return self.write(out, _vmap2(lambda u, k: _pow1(u, k), base, e))
        if func is aten.square.default:
            a = R(args[0])
            return self.write(out, a * a)
        if func in (aten.sum.dim_IntList, aten.sum.default, aten.mean.dim, aten.mean.default):
            return self._reduce(func, args, kwargs, out)
        if func in (
            aten.mm.default,
            aten.bmm.default,
            aten.matmul.default,
            aten.mv.default,
            aten.dot.default,
        ):
            return self.write(out, np.matmul(R(args[0]), R(args[1])))
        if func in (aten.addmm.default,):
            beta, alpha = _scalar(kwargs.get("beta", 1)), _scalar(kwargs.get("alpha", 1))
            return self.write(out, R(args[0]) * beta + np.matmul(R(args[1]), R(args[2])) * alpha)
        if func is aten.cumsum.default:
            return self.write(out, np.cumsum(R(args[0]), axis=_dim(args[1], args[0].ndim)))
        if func is aten.cumprod.default:
            return self.write(out, np.cumprod(R(args[0]), axis=_dim(args[1], args[0].ndim)))
        if func in (aten.prod.dim_int, aten.prod.default):
            a = R(args[0])
            if func is aten.prod.default:
                return self.write(out, np.prod(a.reshape(-1)) if a.size else 1)
            keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
            return self.write(out, np.prod(a, axis=_dim(args[1], a.ndim), keepdims=keep))
        if func in _UNARY:
            return self.write(out, _vmap(lambda u: apply_fn(_UNARY[func], u), R(args[0])))
        if func in (aten.sigmoid_.default, aten.exp_.default, aten.tanh_.default):
            name = {aten.sigmoid_.default: "sigmoid", aten.exp_.default: "exp", aten.tanh_.default: "tanh"}[
                func
            ]
            return self.write(args[0], _vmap(lambda u: apply_fn(name, u), R(args[0])))
        if func is aten.log_sigmoid_forward.default:
            return self.write(out[0], _vmap(lambda u: apply_fn("logsigmoid", u), R(args[0])))
        if func is aten.logaddexp.default:
            a, b = np.broadcast_arrays(
                np.asarray(self._operand(args[0]), dtype=object),
                np.asarray(self._operand(args[1]), dtype=object),
            )
            return self.write(out, _vmap2(_logaddexp, a, b))
        if func is aten.softplus.default:
            beta = args[1] if len(args) > 1 else kwargs.get("beta", 1)
            thr = args[2] if len(args) > 2 else kwargs.get("threshold", 20)
            p = (("beta", str(_scalar(beta))), ("threshold", str(_scalar(thr))))
            return self.write(out, _vmap(lambda u: apply_fn("softplus_thresholded", u, params=p), R(args[0])))
        if func is aten.elu.default:
            alpha = _scalar(args[1] if len(args) > 1 else kwargs.get("alpha", 1))
            scale = _scalar(args[2] if len(args) > 2 else kwargs.get("scale", 1))
            iscale = _scalar(args[3] if len(args) > 3 else kwargs.get("input_scale", 1))
            p = (("alpha", str(alpha)), ("scale", str(scale)), ("input_scale", str(iscale)))
            return self.write(out, _vmap(lambda u: apply_fn("elu", u, params=p), R(args[0])))
        if func is aten.clamp.default or func is aten.clamp_min.default or func is aten.clamp_max.default:
            self._fail(f"{func}: clamping a symbolic value is piecewise (not supported by the exact lift)")
        self._fail(f"{func} is not supported by the exact lift")

    def _argmax(self, args, kwargs, out):
        """``argmax`` of symbolic scores: each index becomes an :class:`ArgMax` (the score vector), usable
        only to
        build the one-hot vector $e_{\arg\\max}$ (:meth:`_scatter_onehot`)."""
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        if dim is None:
            self._fail("argmax over all entries of symbolic values")
        g = np.moveaxis(self.read(args[0]), _dim(dim, args[0].ndim), -1)
        idx = np.empty(g.shape[:-1], dtype=object)
        for p in np.ndindex(*idx.shape):
            idx[p] = ArgMax(tuple(g[p]))
        if keep:
            idx = np.expand_dims(idx, _dim(dim, args[0].ndim))
        self.write(out, idx)
        return out

    def _scatter_onehot(self, func, args, out):
        dst = args[0] if func is aten.scatter_.value else out
        base, dim, value = self.read(args[0]), _dim(args[1], args[0].ndim), _scalar(args[3])
        idx = self.read(args[2])
        if (
            idx.shape[dim] != 1
            or value != 1
            or any(v != 0 for v in np.ravel(base))
            or not all(isinstance(v, ArgMax) for v in np.ravel(idx))
        ):
            self._fail(f"{func}: only the one-hot vector of an argmax of symbolic scores is supported")
        res = np.moveaxis(base.copy(), dim, -1)
        idx = np.moveaxis(idx, dim, -1)
        n = res.shape[-1]
        for p in np.ndindex(*res.shape[:-1]):
            am = idx[p + (0,)]
            if len(am.scores) != n:
                self._fail(f"{func}: one-hot width {n} differs from the number of scores {len(am.scores)}")
            for j in range(n):
                res[p + (j,)] = self.ring.onehot_atom(j, am.scores)
        self.write(dst, np.moveaxis(res, -1, dim))

    def _operand(self, a):
        if isinstance(a, torch.Tensor):
            return self.read(a)
        return _scalar(a)

    def _note_mask(self, m, func):
        if self.tainted(m):
            msg = (
                f"{func}: a selection by a comparison of symbolic values (piecewise) was traced at the "
                f"sampled "
                "values"
            )
            if msg not in self.branches:
                self.branches.append(msg)

    def _reduce(self, func, args, kwargs, out):
        a = self.read(args[0])
        if func in (aten.sum.default, aten.mean.default):
            s = np.sum(a.reshape(-1)) if a.size else 0
            return self.write(out, s / a.size if func is aten.mean.default else s)
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        dims = tuple(range(a.ndim)) if dims is None or dims == [] else tuple(_dim(k, a.ndim) for k in dims)
        s = np.sum(a, axis=dims, keepdims=keep) if a.size else np.zeros(out.shape, dtype=object)
        if func is aten.mean.dim:
            n = int(np.prod([a.shape[k] for k in dims]))
            s = s / n
        return self.write(out, s)

    def _index_put_accumulate(self, func, args, out):
        dst = args[0] if func is aten.index_put_.default else out
        base = self.read(args[0]).copy()
        codes = torch.arange(base.size, dtype=torch.float64).reshape(args[0].shape)
        sel = codes[tuple(args[1])]
        vals = np.broadcast_to(np.asarray(self.read(args[2]), dtype=object), tuple(sel.shape))
        flat = base.reshape(-1)
        for k, v in zip(sel.reshape(-1).tolist(), vals.reshape(-1)):
            flat[int(k)] = flat[int(k)] + v
        self.write(dst, base)

    def _movement(self, func, args, kwargs, out, fill=None):
        """Interpret a data-movement op by running it on element codes (module docstring)."""
        outs = [o for o in _flatten(out) if isinstance(o, torch.Tensor)]
        if func in (
            aten.index_put_.default,
            aten.copy_.default,
            aten.scatter_.value,
            aten.masked_fill_.Scalar,
            aten.fill_.Scalar,
        ):
            outs = [args[0]]
        if (
            outs
            and all(
                self._sid(o) in {self._sid(a) for a in _flatten(args) if isinstance(a, torch.Tensor)}
                for o in outs
            )
            and func not in (aten.index_put_.default, aten.scatter_.value, aten.masked_fill_.Scalar)
        ):
            return  # a view: shares the storage (and hence the shadow) of its input
        pool: list = [0]  # code 0: the fill value (or 0)
        if fill is not None:
            pool[0] = fill

        def encode(a):
            if isinstance(a, torch.Tensor) and (a.is_floating_point() or a.is_complex()):
                vals = self.read(a)
                start = len(pool)
                pool.extend(np.asarray(vals, dtype=object).reshape(-1).tolist())
                codes = torch.arange(start, start + vals.size, dtype=torch.float64).reshape(a.shape)
                return codes.to(torch.complex128) if a.is_complex() else codes
            return a

        new_args = _map(encode, args)
        new_kwargs = _map(encode, kwargs)
        if fill is not None:  # the fill/scalar value is encoded as code 0
            if func in (aten.masked_fill.Scalar, aten.masked_fill_.Scalar):
                new_args = (new_args[0], new_args[1], 0.0)
            elif func in (aten.scatter_.value, aten.scatter.value):
                new_args = (new_args[0], new_args[1], new_args[2], 0.0)
            elif func is aten.masked_fill.Tensor:
                new_args = (new_args[0], new_args[1], torch.zeros((), dtype=torch.float64))
        elif func in (aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar):
            pool.append(0)
            new_args = tuple(
                _code_scalar(pool, a) if not isinstance(a, torch.Tensor) else a for a in new_args
            )
        res = func(*new_args, **new_kwargs)  # inside the handler: this mode is not active
        res_list = [r for r in _flatten(res) if isinstance(r, torch.Tensor)]
        if func in (aten.index_put_.default, aten.scatter_.value, aten.masked_fill_.Scalar):
            res_list = [new_args[0]]
        pool_arr = np.empty(len(pool), dtype=object)
        pool_arr[:] = pool
        for o, r in zip(outs, res_list):
            rr = r.detach().cpu()
            if rr.is_complex():
                rr = rr.resolve_conj().resolve_neg().real
            codes = rr.numpy()
            if codes.dtype.kind == "f" and not np.all(codes == np.round(codes)):
                self._fail(
                    f"{func}: the op does not move data (codes were combined); not interpretable exactly"
                )
            self.write(o, pool_arr[codes.astype(np.int64)])


def _code_scalar(pool, v):
    pool.append(_scalar(v))
    return float(len(pool) - 1)


def _tensors(args, kwargs) -> list:
    """The tensors among an op's arguments (a flat tuple in the common case; nested lists otherwise)."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, list | tuple | dict):
            out.extend(y for y in _flatten(a) if isinstance(y, torch.Tensor))
    if kwargs:
        out.extend(y for y in _flatten(kwargs) if isinstance(y, torch.Tensor))
    return out


def _flatten(x):
    if isinstance(x, list | tuple):
        for y in x:
            yield from _flatten(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _flatten(y)
    else:
        yield x


def _map(fn, x):
    if isinstance(x, list):
        return [_map(fn, y) for y in x]
    if isinstance(x, tuple):
        return tuple(_map(fn, y) for y in x)
    if isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return fn(x)


def _scalar(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return exact_float(v)
    if isinstance(v, Fraction):
        return v
    if isinstance(v, complex):
        return cx(exact_float(v.real), exact_float(v.imag))
    if isinstance(v, torch.Tensor):
        raise Unliftable("unexpected tensor where a scalar was expected")
    raise Unliftable(f"unsupported scalar {v!r}")


def _dim(k: int, ndim: int) -> int:
    return k + ndim if k < 0 else k


def _vmap(fn, a):
    a = np.asarray(a, dtype=object)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape):
        out[idx] = fn(a[idx])
    return out


def _vmap2(fn, a, b):
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape):
        out[idx] = fn(a[idx], b[idx])
    return out


def _div1(u, v):
    if isinstance(v, Cx):
        return u * _cinv(v.re, v.im)
    if isinstance(u, Cx):
        return cx(_div1(u.re, v), _div1(u.im, v))
    if isinstance(v, Poly):
        return u * apply_fn("inv", v)
    if v == 0:
        raise Unliftable("division by an exact zero")
    return u / v if isinstance(u, Poly) else Fraction(u) / v


def _vdiv(a, b):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    return _vmap2(_div1, a, b)


def _pow1(u, k):
    if isinstance(k, Fraction) and k.denominator == 1:
        k = int(k)
    if isinstance(k, int):
        if k >= 0:
            return u**k if isinstance(u, Poly) else Fraction(u) ** k
        return _div1(1, u ** (-k) if isinstance(u, Poly) else Fraction(u) ** (-k))
    if k == Fraction(1, 2):
        return apply_fn("sqrt", u)
    if k == Fraction(-1, 2):
        return apply_fn("rsqrt", u)
    return apply_fn("pow", u, params=(("exponent", str(k)),))


def _vpow(a, e):
    return _vmap(lambda u: _pow1(u, e), a)


def _logaddexp(a, b):
    if is_number(b) and b == 0:
        return apply_fn("softplus", a)
    if is_number(a) and a == 0:
        return apply_fn("softplus", b)
    lo, hi = sorted(
        (a, b), key=lambda v: repr(sorted(value_key(v), key=repr)) if isinstance(v, Poly) else repr(v)
    )
    return lo + apply_fn("softplus", hi - lo)
