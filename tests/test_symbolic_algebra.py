"""The exact arithmetic under the prover: Kronecker rings agree with plain SymPy rings, the degree bound
guards injectivity, local (lazy) expansion agrees, uninterpreted functions become shared generators."""

from fractions import Fraction

import numpy as np
import pytest


def _random_program(values, rng):
    """A random straight-line program of + and * over the given values (and small integer constants)."""
    pool = list(values)
    for _ in range(40):
        a, b = rng.choice(len(pool), 2)
        op = rng.integers(0, 4)
        if op == 0:
            pool.append(pool[a] + pool[b])
        elif op == 1:
            pool.append(pool[a] * pool[b])
        elif op == 2:
            pool.append(pool[a] - int(rng.integers(-3, 4)) * pool[b])
        else:
            pool.append(pool[a] * int(rng.integers(-2, 3)) + 1)
    return pool[-6:]


@pytest.mark.parametrize("seed", range(6))
def test_kronecker_lazy_and_multivariate_agree(seed):
    from equivalence.symbolic.arrays import Variables
    from equivalence.symbolic.engine import decide_identity

    V = Variables().add("a", (3,)).add("b", (2, 2))

    def fn(arr, flip=False):
        rng = np.random.default_rng(seed)
        vals = list(np.ravel(arr["a"])) + list(np.ravel(arr["b"]))
        lhs = _random_program(vals, rng)
        rng = np.random.default_rng(seed)
        rhs = _random_program(vals, rng)
        if flip:
            rhs[-1] = rhs[-1] + vals[0] * vals[1]
        return [("p", np.array(lhs, dtype=object), np.array(rhs, dtype=object))]

    for flip in (False, True):
        verdicts = {
            m: decide_identity(lambda a, f=flip: fn(a, f), V, method=m).holds
            for m in ("kronecker", "lazy", "multivariate")
        }
        assert set(verdicts.values()) == {not flip}, verdicts


def test_kronecker_base_grows_with_the_degree():
    """x**20 - x**20 * 1 with base 16: the degree bound forces a larger base before 'proved' is returned;
    and (x0*x1)^9 vs x0^9*x1^9 would alias with a too small base, so the bound matters."""
    from equivalence.symbolic.arrays import Variables
    from equivalence.symbolic.engine import decide_identity

    V = Variables().add("x", (2,))

    def fn(arr):
        x0, x1 = arr["x"]
        return [("p", np.array([(x0 * x1) ** 9], dtype=object), np.array([x0**9 * x1**9], dtype=object))]

    res = decide_identity(fn, V, method="kronecker")
    assert res.holds and res.evidence["kronecker_base"] > 18

    def fn2(arr):  # x0^16 vs x1: identical images under z^(16^i) with base 16, different polynomials
        x0, x1 = arr["x"]
        return [("p", np.array([x0**16], dtype=object), np.array([x1], dtype=object))]

    assert not decide_identity(fn2, V, method="kronecker").holds


def test_exact_conversion_and_rationals():
    import torch

    from equivalence.symbolic.algebra import fraction_array, to_fraction

    t = torch.tensor([0.1, -2.5, 1e-300], dtype=torch.float64)
    fr = fraction_array(t)
    assert [float(v) for v in fr] == t.tolist() and Fraction(0.1) == fr[0]
    with pytest.raises(ValueError, match="non-finite"):
        to_fraction(float("nan"))
    with pytest.raises(TypeError, match="exact real number"):
        to_fraction("1/2")


def test_rational_constants_switch_to_QQ():
    from equivalence.symbolic.arrays import Variables
    from equivalence.symbolic.engine import decide_identity

    V = Variables().add("x", (1,))
    res = decide_identity(
        lambda a: [
            (
                "p",
                np.array([a["x"][0] * Fraction(1, 2) * 2], dtype=object),
                np.array([a["x"][0]], dtype=object),
            )
        ],
        V,
    )
    assert res.holds and res.evidence["coefficients"] == "QQ"


def test_uninterpreted_functions_are_shared_generators():
    """ell(p) on both sides is one generator; ell of a different argument is another one."""
    import sympy as sp

    from equivalence.symbolic.arrays import Variables
    from equivalence.symbolic.engine import decide_identity

    ell = sp.Function("ell")
    V = Variables().add("x", (2,))

    def same(a):
        x0, x1 = a["x"]
        return [
            ("p", np.array([ell(x0 + x1) * x0], dtype=object), np.array([x0 * ell(x1 + x0)], dtype=object))
        ]

    def other(a):
        x0, x1 = a["x"]
        return [
            ("p", np.array([ell(x0 + x1) * x0], dtype=object), np.array([x0 * ell(x1 - x0)], dtype=object))
        ]

    for method in ("kronecker", "lazy"):
        assert decide_identity(same, V, method=method).holds
        assert not decide_identity(other, V, method=method).holds
