"""The exact lift of complex torch code (complex RetNet: complex decays $\\gamma e^{i\\theta}$, real readout).

Complex tensors are lifted as exact pairs (re, im); sampled angles have rational cosines and sines, so the
rotary reference and the complex construction meet in $\\mathbb Q$. The construction is PROVED unrolled
against the registered reference; a twin whose construction doubles the decay angle is REFUTED with a
certified counterexample.
"""

from dataclasses import replace
from fractions import Fraction

import torch

import constructions
from constructions.recurrence import Recurrence
from constructions.variants.retention import RetentionComplex
from equivalence.symbolic.lift import Cx, Lifter, Ring, apply_fn
from equivalence.symbolic.lifted_claims import prove_allt, prove_unrolled

SIZES = {"d": 2, "heads": 1}


def test_complex_values_are_exact_pairs():
    lf = Lifter(Ring())
    a = lf.symbolic(torch.randn(2, dtype=torch.float64), "a")
    with lf:
        z = torch.complex(a, 2 * a)
        w = (z * z.conj()).real
        r = torch.view_as_real(z * 1j)
    W, Rv = lf.read(w), lf.read(r)
    g = lf.ring.array("a", (2,))
    assert all(W[i] - 5 * g[i] * g[i] == 0 for i in range(2))  # |a + 2ai|^2 = 5a^2
    assert all(Rv[i, 0] + 2 * g[i] == 0 and Rv[i, 1] - g[i] == 0 for i in range(2))  # i(a + 2ai)
    assert isinstance(lf.read(z)[0], Cx)


def test_multiple_angles_of_a_rational_point_are_exact():
    lf = Lifter(Ring())
    u = Fraction(1, 2)
    c, s = (1 - u * u) / (1 + u * u), 2 * u / (1 + u * u)  # (3/5, 4/5)
    alpha = lf.ring.atom("atan2", (s, c))
    with lf:
        assert apply_fn("cos", 3 * alpha) == 4 * c**3 - 3 * c
        assert apply_fn("sin", 2 * alpha) == 2 * s * c
        assert apply_fn("cos", -alpha) == c and apply_fn("sin", -alpha) == -s


def test_retention_complex_proved_unrolled():
    u = prove_unrolled(constructions.get("retention-complex"), SIZES, 3)
    assert u.outcome.status == "proved", u.outcome.message
    assert u.params_mode == "sampled" and "arctan" in u.statement


class _DoubledAngle(RetentionComplex):
    """The construction rotates by 2*theta; the reference by theta."""

    name = "retention-complex-doubled-angle"

    def plan(self, params):
        return super().plan(replace(params, theta=2 * params.theta))


def test_changed_decay_angle_refuted():
    u = prove_unrolled(_DoubledAngle(), SIZES, 3)
    assert u.outcome.status == "refuted", u.outcome.message
    assert "point" in u.outcome.counterexample


def test_retention_complex_proved_for_all_t():
    a = prove_allt(constructions.get("retention-complex"), SIZES, T_link=3)
    assert a.outcome.status == "proved", a.outcome.message
    assert "complex" in a.statement and "every sequence length" in a.statement


def test_changed_decay_angle_refuted_for_all_t():
    a = prove_allt(_DoubledAngle(), SIZES, T_link=3)  # the plan's form agrees with the RNN; the link fails
    assert a.outcome.status == "refuted", a.outcome.message


def _complex_recurrence(params):
    r"""Complex one-step form: $S_t = S_{t-1}\mathrm{diag}(\gamma e^{i\theta}) + v_t\hat k_t^\top$, $y_t =
    W_O\,\mathrm{Re}(S_t\hat q_t)$ with $\hat q = q_{2j} + iq_{2j+1}$, $\hat k = k_{2j} - ik_{2j+1}$."""
    H, d_k, _ = params.W_Q.shape
    d_v = params.W_V.shape[1]
    lam = params.gamma[:, None] * torch.exp(1j * params.theta)  # [H, d_k/2]

    def features(x_t):
        q, k, v = (torch.einsum("bd,hrd->bhr", x_t, W) for W in (params.W_Q, params.W_K, params.W_V))
        return torch.complex(q[..., 0::2], q[..., 1::2]), torch.complex(k[..., 0::2], -k[..., 1::2]), v

    def init(B, dtype):
        return (torch.zeros(B, H, d_v, d_k // 2, dtype=torch.complex128),)

    def step(state, x_t):
        _, k, v = features(x_t)
        return (state[0] * lam[None, :, None, :] + v.to(torch.complex128)[..., :, None] * k[..., None, :],)

    def readout(state, x_t):
        q, _, _ = features(x_t)
        o = (state[0] @ q[..., None])[..., 0].real.reshape(x_t.shape[0], -1)
        return o if params.W_O is None else o @ params.W_O.T

    return Recurrence(init, step, readout)


class _WithRecurrence(RetentionComplex):
    """retention-complex with a complex one-step form (``recurrence`` hook)."""

    name = "retention-complex-with-recurrence"

    def recurrence(self, params):
        return _complex_recurrence(params)


class _DoubledAngleWithRecurrence(_DoubledAngle):
    name = "retention-complex-doubled-angle-with-recurrence"

    def recurrence(self, params):
        return _complex_recurrence(params)


def test_complex_simulation_proved_for_all_t():
    a = prove_allt(_WithRecurrence(), SIZES, T_link=3)
    assert a.outcome.status == "proved", a.outcome.message
    assert "every sequence length" in a.statement


def test_complex_simulation_refutes_a_changed_angle():
    a = prove_allt(_DoubledAngleWithRecurrence(), SIZES, T_link=3)
    assert a.outcome.status == "refuted", a.outcome.message
