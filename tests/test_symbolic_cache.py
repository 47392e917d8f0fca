"""Work the lifted proofs reuse within one lift: the construction and the one-step form are built once per
:class:`~equivalence.symbolic.simulation.VariantLift`, and fifth derivatives are memoised on their inputs.
Reused results must equal freshly computed ones, and must never carry over to another input, variant or
expression."""

import numpy as np
import sympy as sp

import constructions
from equivalence.symbolic import lifted_claims as lc
from equivalence.symbolic.impossibility import fifth_derivative, z
from equivalence.symbolic.lift import Poly
from equivalence.symbolic.simulation import VariantLift

SIZES = {"d": 2, "heads": 1}


def _zero(a, b) -> bool:
    a, b = np.asarray(a, dtype=object).reshape(-1), np.asarray(b, dtype=object).reshape(-1)
    return a.shape == b.shape and all(not isinstance(u - w, Poly) and u - w == 0 for u, w in zip(a, b))


def _lift(name: str) -> VariantLift:
    v = constructions.get(name)
    return VariantLift(v, lc._sample(v, SIZES, 0), "symbolic", seed=0)


def test_a_reused_construction_gives_what_a_fresh_lift_gives():
    lift = _lift("gla")  # input-dependent decay: the features and decays depend on the input
    x1 = lift.ring.array("u", (1, lift.d_in))
    x2 = lift.ring.array("w", (1, lift.d_in))
    once = [lift.rnn_parts("", 1, x_values=x) for x in (x1, x2)]
    for x, got in zip((x1, x2), once):
        fresh = _lift("gla")
        fresh.ring = lift.ring  # the same generators
        want = fresh.rnn_parts("", 1, x_values=x)
        assert all(_zero(a, b) for a, b in zip(got, want))
    # another input gives other features (nothing of the first input is reused)
    assert not _zero(once[0][-1], once[1][-1])


def test_a_reused_one_step_form_gives_what_a_fresh_lift_gives():
    v = constructions.get("gla")
    lift = _lift("gla")
    form, _, _ = lc.one_step_form(v, lift.params)
    x = lift.ring.array("u", (2, lift.d_in))
    init, s1, _ = lift.reference_step(form, None, x[0])
    _, s2, y2 = lift.reference_step(form, s1, x[1])
    fresh = _lift("gla")
    fresh.ring = lift.ring
    _, f1, _ = fresh.reference_step(form, None, x[0])
    fresh2 = _lift("gla")
    fresh2.ring = lift.ring
    _, f2, g2 = fresh2.reference_step(form, f1, x[1])
    assert all(_zero(a, b) for a, b in zip(s1, f1))
    assert all(_zero(a, b) for a, b in zip(s2, f2)) and _zero(y2, g2)
    assert not all(_zero(a, b) for a, b in zip(s1, s2))


def test_fifth_derivatives_are_memoised_by_expression_and_point():
    a = fifth_derivative(z**5 + sp.exp(z), 0)
    assert a["holds"] and a["fifth_derivative"].startswith("121")
    a["holds"] = False  # the caller's copy: the memo is not changed
    assert fifth_derivative(z**5 + sp.exp(z), 0)["holds"]
    assert not fifth_derivative(z**4 + 0 * sp.exp(z), 0)["holds"]  # another expression, another answer
    b = fifth_derivative(sp.exp(2 * z), 1)
    assert b["z0"] == "1" and b["fifth_derivative"].startswith("236.4")  # 32 e^2, not the value at 0
