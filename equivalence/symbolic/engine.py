r"""The two deciders every tier uses, and the counterexample search.

An *obligation* is a function ``fn(arrays) -> list[(label, lhs, rhs)]`` of the arrays of a
:class:`~equivalence.symbolic.arrays.Variables` declaration, where ``lhs`` and ``rhs`` are object
arrays of one shape; it holds when ``lhs == rhs`` entrywise as polynomials in the generators.

- :func:`decide_identity` evaluates ``fn`` on generators and expands ``lhs - rhs`` in a sparse
  polynomial ring (:mod:`~equivalence.symbolic.algebra`): a zero difference *proves*, a non-zero one
  *refutes* (a polynomial that is not zero is non-zero at some integer point, which
  :func:`find_counterexample` then finds and checks).
- :func:`schwartz_zippel` evaluates ``fn`` exactly at ``trials`` random integer points drawn
  uniformly from $S=\{-2^{k-1},\dots,2^{k-1}-1\}$. If some entry of ``lhs - rhs`` is a non-zero
  polynomial of total degree $\le D$, one point misses it with probability $\le D/|S|$
  (Schwartz–Zippel lemma), so all ``trials`` points miss it with probability $\le (D/|S|)^{\text{trials}}$.
  $D$ is the formal degree of ``fn`` (evaluated on :class:`~equivalence.symbolic.algebra.Deg`); the
  points come from a seeded ``random.Random`` (pseudo-random, reproducible).
"""

import math
import random
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.core.sympify import SympifyError
from sympy.polys.domains import QQ, ZZ
from sympy.polys.rings import ring as _ring

from .algebra import DEG_FAULTS, HasAtoms, Lazy, NeedsRationals, degree_of, expand_pair, is_zero
from .arrays import FloatConstant, Variables, has_float
from .atoms import AtomTable, expand_pair_atoms

__all__ = [
    "IdentityResult",
    "NotPolynomial",
    "Outcome",
    "Run",
    "TooLarge",
    "decide_identity",
    "differs",
    "evaluate_at",
    "find_counterexample",
    "first_difference",
    "formal_degree",
    "formal_size",
    "schwartz_zippel",
]


@dataclass
class Outcome:
    """Result of one tier: ``status`` is proved / refuted / skipped / error."""

    status: str
    tier: str
    evidence: dict = field(default_factory=dict)
    counterexample: dict | None = None
    message: str = ""


@dataclass
class Run:
    """A claim as checked: title, prose statement, tier, the SymPy statement objects (rendered to LaTeX and
    digested), an optional quantifier prefix, and the :class:`Outcome`. :mod:`.catalogue` turns it into a
    :class:`~equivalence.claims.ClaimResult`."""

    title: str
    statement: str
    tier: str
    objects: object
    prefix: object = None
    outcome: Outcome = None
    digest_extra: list = field(default_factory=list)
    assumptions: tuple = ()  # what the claim takes on trust (ClaimResult.assumptions)


@dataclass
class IdentityResult:
    holds: bool
    failing: list  # [(label, index tuple)]
    witness: list  # [str] a few monomials of the first non-zero difference
    evidence: dict


def _entries(lhs, rhs):
    lhs, rhs = np.asarray(lhs, dtype=object), np.asarray(rhs, dtype=object)
    if lhs.shape != rhs.shape:
        raise ValueError(f"obligation sides have different shapes {lhs.shape} and {rhs.shape}")
    for idx in np.ndindex(lhs.shape):
        yield idx, lhs[idx], rhs[idx]


#: above this many generators, ``method="auto"`` expands entry by entry in local rings (``"lazy"``)
LAZY_ABOVE = 300


class TooLarge(Exception):
    """The estimated expansion exceeds the allowed number of terms; carries the estimate and a degree
    bound."""

    def __init__(self, terms: int, degree: int):
        super().__init__(f"about {terms:.3g} polynomial terms")
        self.terms, self.degree = terms, degree


def _lazy_terms(v, memo: dict) -> int:
    """Upper bound on the number of terms of a :class:`~.algebra.Lazy` value (no cancellation counted)."""
    if type(v) is not Lazy:
        return 0 if v == 0 else 1
    stack = [(v, False)]
    while stack:  # iterative post-order over the DAG: children are counted before their parents
        n, done = stack.pop()
        if type(n) is not Lazy or (not done and id(n) in memo):
            continue
        if not done:
            memo[id(n)] = None
            stack.append((n, True))
            stack.append((n.a, False))
            if n.op in "+*":
                stack.append((n.b, False))
            continue
        if n.op == "g":
            memo[id(n)] = 1
            continue
        a = memo[id(n.a)] if type(n.a) is Lazy else (0 if n.a == 0 else 1)
        if n.op == "c":
            memo[id(n)] = a
            continue
        b = memo[id(n.b)] if type(n.b) is Lazy else (0 if n.b == 0 else 1)
        memo[id(n)] = a + b if n.op == "+" else a * b
    return memo[id(v)]


def _decode_local(diff, order, bits, names, limit=3) -> list[str]:
    out = []
    for exps, coef in sorted(diff.items(), key=lambda kv: kv[0])[:limit]:
        e, mono, k, mask = exps[0], {}, 0, (1 << bits) - 1
        while e:
            if e & mask:
                mono[names[order[k]]] = e & mask
            e >>= bits
            k += 1
        factors = [n if p == 1 else f"{n}^{p}" for n, p in sorted(mono.items())]
        out.append(f"{coef}" + ("*" + "*".join(factors) if factors else ""))
    return out


def _native(ctx, v):
    """A SymPy value built by the code (proxies, ``ell(.)``) as a value of ``ctx``; other values unchanged."""
    if isinstance(v, sp.Basic):
        return ctx.from_sympy(v)
    return v


def differs(u, v) -> bool:
    """Exact disequality of two evaluated values: numbers compare directly; SymPy values (uninterpreted
    functions such as ``ell(.)``, ``exp(.)``) differ when ``expand(u - v)`` is a non-zero polynomial in its
    atoms or, for a closed-form number, when ``evalf(strict=True)`` certifies a non-zero value."""
    if not isinstance(u, sp.Basic) and not isinstance(v, sp.Basic):
        return bool(u != v)
    diff = sp.expand(sp.sympify(u) - sp.sympify(v))
    if diff == 0:
        return False
    if diff.free_symbols or diff.atoms(sp.core.function.AppliedUndef):
        return True  # a non-zero polynomial in independent atoms
    try:
        value = sp.N(diff, 30, strict=True)
    except Exception:  # noqa: BLE001 - precision could not be certified: do not claim a difference
        return False
    return bool(value.is_number and abs(value) > sp.Float("1e-25"))


def _decide_sympy(fn, variables: Variables) -> IdentityResult:
    ctx = variables.context(method="sympy")
    parts = fn(variables.symbolic(ctx))
    failing, witness, terms = [], [], 0
    for label, lhs, rhs in parts:
        for idx, u, v in _entries(lhs, rhs):
            diff = sp.expand(sp.sympify(u) - sp.sympify(v))
            terms += len(sp.Add.make_args(sp.expand(sp.sympify(u)))) + len(
                sp.Add.make_args(sp.expand(sp.sympify(v)))
            )
            if diff != 0:
                failing.append((label, idx))
                if not witness:
                    witness = [sp.sstr(t) for t in sp.Add.make_args(diff)[:3]]
    ev = {
        "generators": len(variables),
        "terms": terms,
        "ring": "sympy expand (uninterpreted functions as atoms)",
    }
    return IdentityResult(not failing, failing, witness, ev)


def _decide_lazy(
    fn, variables: Variables, max_terms: int | None = None, atoms: bool = True
) -> IdentityResult:
    """Lazy evaluation, then per entry: first over generators and atoms (:class:`~.algebra.AtomTable`: a zero
    difference there proves the entry), else a full local expansion. ``max_terms`` bounds the terms of the
    entries that need the full expansion (:class:`TooLarge` above it)."""
    ctx = variables.context(method="lazy")
    parts = fn(variables.symbolic(ctx))
    ctx.faults.reraise()
    entries = [
        (label, idx, _native(ctx, u), _native(ctx, v))
        for label, lhs, rhs in parts
        for idx, u, v in _entries(lhs, rhs)
    ]
    for domain in (ZZ, QQ):
        R, _ = _ring("z", domain)
        max_deg, terms, failing, witness, rest = 0, 0, [], [], []
        table, by_atoms = AtomTable(), 0
        try:
            for label, idx, u, v in entries:
                deg = max(degree_of(u), degree_of(v))
                max_deg = max(max_deg, deg)
                bits = max(1, deg.bit_length())  # 2**bits > deg: the local map is injective
                if atoms:  # equal over generators and atoms => equal (AtomTable); else expand fully below
                    diff, n = expand_pair_atoms(u, v, bits, table)
                    terms += n
                    if not diff:
                        by_atoms += 1
                        continue
                rest.append((label, idx, u, v, bits))
            if max_terms is not None and rest:
                memo: dict = {}
                total = sum(_lazy_terms(u, memo) + _lazy_terms(v, memo) for _, _, u, v, _ in rest)
                if total > max_terms:
                    raise TooLarge(total, max_deg)
            for label, idx, u, v, bits in rest:
                diff, order, n = expand_pair(u, v, R, domain, bits)
                terms += n
                if diff:
                    failing.append((label, idx))
                    if not witness:
                        witness = _decode_local(diff, order, bits, ctx.names)
        except NeedsRationals:
            continue
        ev = {
            "generators": len(variables),
            "terms": terms,
            "max_degree": max_deg,
            "ring": "kronecker (local, per entry)",
            "coefficients": str(domain),
        }
        if atoms:
            ev["ring"] = "kronecker (local, per entry; leaf sums as atoms first)"
            ev["atoms"] = len(table.by_key)
            ev["entries_decided_over_atoms"] = by_atoms
            ev["entries_expanded_fully"] = len(rest)
        return IdentityResult(not failing, failing, witness, ev)
    raise RuntimeError("unreachable: QQ accepts every rational constant")


def decide_identity(
    fn, variables: Variables, *, method: str = "auto", max_terms: int | None = None
) -> IdentityResult:
    """Expand every ``lhs - rhs`` of ``fn`` in a polynomial ring; see the module docstring.

    ``method``: ``"kronecker"`` (one global Kronecker ring), ``"lazy"`` (unexpanded evaluation, then one
    local Kronecker ring per entry: faster with thousands of generators), ``"multivariate"`` (plain
    SymPy ring, slow, for cross-checks) or ``"auto"`` (lazy above ``LAZY_ABOVE`` generators).
    ``max_terms``: with the lazy method, raise :class:`TooLarge` instead of expanding more terms than this.
    """
    if method == "sympy":
        return _decide_sympy(fn, variables)
    if method == "auto":
        method = "lazy" if len(variables) > LAZY_ABOVE else "kronecker"
        try:
            return decide_identity(fn, variables, method=method, max_terms=max_terms)
        except (SympifyError, HasAtoms):
            # the code applies SymPy functions other than uninterpreted ones (exp, ...): expand with SymPy
            return _decide_sympy(fn, variables)
    if method == "lazy":
        return _decide_lazy(fn, variables, max_terms)
    domain, bits = ZZ, 4
    for _ in range(6):
        ctx = variables.context(method=method, domain=domain, base_bits=bits)
        try:
            parts = fn(variables.symbolic(ctx))
            ctx.faults.reraise()  # an exception met inside the arithmetic (deferred: see algebra.Faults)
        except NeedsRationals:
            if domain == QQ:
                raise
            domain = QQ
            continue
        max_deg, terms, failing, witness = 0, 0, [], []
        for label, lhs, rhs in parts:
            for idx, u, v in _entries(lhs, rhs):
                u, v = _native(ctx, u), _native(ctx, v)
                max_deg = max(max_deg, degree_of(u), degree_of(v))
                diff = u - v
                terms += ctx.num_terms(u) + ctx.num_terms(v)
                if not is_zero(diff):
                    failing.append((label, idx))
                    if not witness:
                        witness = [ctx.format_monomial(c, m) for c, m in ctx.monomials(diff, limit=3)]
        if not ctx.require_injective(max_deg):
            bits = ctx.bits_needed(max_deg) + 1
            continue
        ev = {
            "generators": len(variables),
            "terms": terms,
            "max_degree": max_deg,
            "ring": method,
            "coefficients": str(domain),
        }
        if method == "kronecker":
            ev["kronecker_base"] = ctx.base
        return IdentityResult(not failing, failing, witness, ev)
    raise RuntimeError("decide_identity: the Kronecker base did not converge (degree bound keeps growing)")


def formal_degree(fn, variables: Variables) -> int:
    return formal_size(fn, variables)[0]


class NotPolynomial(ValueError):
    """The obligation builds SymPy expressions (uninterpreted functions): no formal degree bound."""


def formal_size(fn, variables: Variables) -> tuple[int, int]:
    """``(degree bound, term-count bound)`` of all entries of ``fn`` (evaluated on formal degrees).
    Raises :class:`NotPolynomial` when the code applies SymPy functions to the values."""
    DEG_FAULTS.clear()
    try:
        parts = fn(variables.formal())
        DEG_FAULTS.reraise()
    except (SympifyError, HasAtoms, AttributeError, TypeError) as e:
        raise NotPolynomial(
            f"the obligation applies SymPy functions to its values ({e}); no degree bound"
        ) from None
    deg, terms = 0, 0
    for _, lhs, rhs in parts:
        for _, u, v in _entries(lhs, rhs):
            deg = max(deg, degree_of(u), degree_of(v))
            terms += sum(w.terms if hasattr(w, "terms") else (0 if w == 0 else 1) for w in (u, v))
    return deg, terms


def evaluate_at(fn, variables: Variables, values):
    """``fn`` at an exact point. If the plain run meets a float (the code wrote a constant such as ``1.0``),
    the point is re-run with :class:`~.arrays.ExactQ` numbers, which read every float operand as the
    rational it denotes; a float that still survives (e.g. ``math.sqrt`` of a value) is a
    :class:`~.arrays.FloatConstant` error, never a rounded comparison."""
    parts = fn(variables.numeric(values))
    if not has_float(parts):
        return parts
    parts = fn(variables.numeric(values, exact=True))
    if has_float(parts):
        raise FloatConstant(
            "the code computes in floating point at an exact point even with float operands "
            "read exactly (a float produced by a function such as math.sqrt or float()); write "
            "its constants as int, fractions.Fraction or sympy.Rational"
        )
    return parts


def first_difference(parts) -> tuple | None:
    """``(label, index, lhs, rhs)`` of the first entry where an evaluated obligation differs."""
    for label, lhs, rhs in parts:
        for idx, u, v in _entries(lhs, rhs):
            if differs(u, v):
                return label, idx, u, v
    return None


def schwartz_zippel(
    fn, variables: Variables, *, trials: int = 3, bits: int = 64, seed: int = 0, degree: int | None = None
):
    """Random exact evaluation; returns ``(holds, evidence, failing_values_or_None)``. ``degree``: a formal
    degree bound already computed for this ``fn`` (else computed here)."""
    if trials < 1 or bits < 2:
        raise ValueError(f"need trials >= 1 and bits >= 2; got trials={trials}, bits={bits}")
    D = formal_degree(fn, variables) if degree is None else degree
    rng = random.Random(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for k in range(trials):
        values = [rng.randint(lo, hi) for _ in range(len(variables))]
        if first_difference(evaluate_at(fn, variables, values)) is not None:
            return False, {"degree_bound": D, "trials_done": k + 1, "bits": bits}, values
    log2_bound = trials * (math.log2(D) - bits) if D > 0 else -math.inf
    ev = {
        "degree_bound": D,
        "trials": trials,
        "set_size": f"2^{bits}",
        "bits": bits,
        "seed": seed,
        "error_probability_log2": round(log2_bound, 3) if D > 0 else "-inf",
        "error_probability": (
            f"<= ({D}/2^{bits})^{trials} = 2^{log2_bound:.1f}" if D > 0 else "0 (constant)"
        ),
    }
    return True, ev, None


def find_counterexample(
    fn,
    variables: Variables,
    *,
    seed: int = 0,
    start: list | None = None,
    max_evals: int = 400,
) -> dict | None:
    """Search exact integer points where ``fn`` differs, then shrink the point (greedy: zero, then ±1).
    The shrink stops after ``max_evals`` evaluations in all (a count, not a clock: the counterexample found
    for a seed does not depend on how busy the machine is).

    Returns ``{"values": [...], "where": (label, index), "lhs": value, "rhs": value, "evaluations": n}``
    or ``None`` if no point was found within the budget.
    """
    rng = random.Random(seed)
    evals = 0

    def check(values):
        nonlocal evals
        evals += 1
        return first_difference(evaluate_at(fn, variables, values))

    found, point = None, None
    candidates = ([list(start)] if start is not None else []) + [
        [rng.randint(-r, r) for _ in range(len(variables))] for r in [3] * 6 + [100] * 6 + [1 << 30] * 6
    ]
    for values in candidates:
        found = check(values)
        if found is not None:
            point = values
            break
    if found is None:
        return None
    for i in range(len(point)):  # shrink: zero out, then try +-1
        if evals >= max_evals:
            break
        for trial in (0, 1, -1):
            if point[i] == trial or (trial != 0 and abs(point[i]) <= 1):
                continue
            cand = point[:i] + [trial] + point[i + 1 :]
            r = check(cand)
            if r is not None:
                point, found = cand, r
                break
    label, idx, u, v = found
    return {
        "values": point,
        "where": (label, tuple(int(k) for k in idx)),
        "lhs": u,
        "rhs": v,
        "evaluations": evals,
    }
