"""The exact ring of the lift (``equivalence.symbolic.lift.Poly``) against SymPy.

Every proof of the lifted tiers ends in this arithmetic: a polynomial difference that expands to zero. Random
expression trees over a few generators (sums, differences, products, powers, rational scalings and divisions)
are evaluated in both rings and must agree exactly; equal polynomials built in different orders must be equal
and hash alike (the canonical integer form); and with one-hot atoms $e_j$ (relations $e_ie_j=\\delta_{ij}e_i$,
$\\sum_j e_j = 1$) the reduced product must equal SymPy's value at every vertex $e = $ a unit vector, which
determines a reduced polynomial (it is affine in $e_0..e_{n-2}$).
"""

from fractions import Fraction

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from equivalence.symbolic.lift import Poly, Ring

N_VARS = 3
rationals = st.fractions(min_value=-4, max_value=4, max_denominator=12)


def _expr_trees(leaves):
    return st.recursive(
        leaves,
        lambda sub: st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*"]), sub, sub),
            st.tuples(st.just("scale"), sub, rationals),
            st.tuples(st.just("div"), sub, rationals.filter(bool)),
            st.tuples(st.just("pow"), sub, st.integers(0, 3)),
        ),
        max_leaves=12,
    )


leaves = st.one_of(
    st.tuples(st.just("var"), st.integers(0, N_VARS - 1)), st.tuples(st.just("num"), rationals)
)
trees = _expr_trees(leaves)


def _eval(tree, var, num):
    op = tree[0]
    if op == "var":
        return var(tree[1])
    if op == "num":
        return num(tree[1])
    a = _eval(tree[1], var, num)
    if op in "+-*":
        b = _eval(tree[2], var, num)
        return a + b if op == "+" else a - b if op == "-" else a * b
    if op == "scale":
        return a * num(tree[2])
    if op == "div":
        return a / num(tree[2])
    return a ** tree[2]


def _to_sympy(v, symbols):
    """A lift value (number or Poly) as a SymPy expression over ``symbols[generator]``."""
    if not isinstance(v, Poly):
        return sp.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sp.Integer(v)
    out = sp.Integer(0)
    for m, c in v.terms.items():
        assert type(c) is int or (isinstance(c, Fraction) and c.denominator != 1), c  # canonical coefficients
        out += sp.Rational(c.numerator, c.denominator) * sp.Mul(*[symbols[g] for g in m])
    return out


@settings(max_examples=150, deadline=None)
@given(trees)
def test_ring_arithmetic_equals_sympy(tree):
    ring = Ring()
    gens = [ring.var(f"x{i}") for i in range(N_VARS)]
    xs = sp.symbols(f"x0:{N_VARS}")
    got = _eval(tree, lambda i: gens[i], lambda q: q)
    want = _eval(tree, lambda i: xs[i], lambda q: sp.Rational(q.numerator, q.denominator))
    symbols = {k: xs[k] for k in range(N_VARS)}
    assert sp.expand(_to_sympy(got, symbols) - want) == 0
    if isinstance(got, Poly):
        assert all(c != 0 for c in got.terms.values())
        assert len(got.terms) > 1 or () not in got.terms  # a constant is never a Poly


@settings(max_examples=100, deadline=None)
@given(trees, trees)
def test_equal_polynomials_are_equal_and_hash_alike(t1, t2):
    ring = Ring()
    gens = [ring.var(f"x{i}") for i in range(N_VARS)]
    a = _eval(t1, lambda i: gens[i], lambda q: q)
    b = _eval(t2, lambda i: gens[i], lambda q: q)
    # (a + b) * (a - b) built two ways: the same polynomial, so equal and with equal hashes
    left = (a + b) * (a - b)
    right = a * a - b * b
    assert left == right
    if isinstance(left, Poly):
        assert hash(left) == hash(right)
        assert left.terms == right.terms
    # and a polynomial that differs by one term is not equal
    if isinstance(left, Poly):
        assert left != right + gens[0] ** 4 * Fraction(1, 7)


@settings(max_examples=100, deadline=None)
@given(trees, trees, st.integers(2, 4))
def test_onehot_products_reduce_exactly(t1, t2, n):
    ring = Ring()
    gens = [ring.var(f"x{i}") for i in range(N_VARS)]
    scores = tuple(ring.var(f"s{j}") for j in range(n))
    e = [ring.onehot_atom(j, scores) for j in range(n)]
    # each side: a random polynomial in the x's times a random affine combination of the e's
    a = _eval(t1, lambda i: gens[i], lambda q: q) * (e[0] + 2 * e[-1]) + e[1] * Fraction(1, 3)
    b = _eval(t2, lambda i: gens[i], lambda q: q) * (e[-1] - e[0]) + gens[0] * e[n // 2]
    prod = a * b * a
    xs = sp.symbols(f"x0:{N_VARS}")
    for vertex in range(n):  # e = the unit vector of `vertex`: a reduced polynomial is fixed by these values
        symbols = {k: xs[k] for k in range(N_VARS)}
        ids = [next(iter(ej.terms))[0] if isinstance(ej, Poly) and len(ej.terms) == 1 else None for ej in e]
        es = {i: sp.Integer(1 if j == vertex else 0) for j, i in enumerate(ids) if i is not None}
        symbols.update(es)
        ev = [sp.Integer(1 if j == vertex else 0) for j in range(n)]
        leaf = lambda i: xs[i]  # noqa: E731
        ref_a = _eval(t1, leaf, lambda q: sp.Rational(q.numerator, q.denominator)) * (ev[0] + 2 * ev[-1])
        ref_a += ev[1] * sp.Rational(1, 3)
        ref_b = _eval(t2, leaf, lambda q: sp.Rational(q.numerator, q.denominator)) * (ev[-1] - ev[0])
        ref_b += xs[0] * ev[n // 2]
        assert sp.expand(_to_sympy(prod, symbols) - ref_a * ref_b * ref_a) == 0, vertex
