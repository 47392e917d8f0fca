"""The exact lift of torch code, and the unrolled / all-T claims built on it
(equivalence.symbolic.lifted_claims).

Correct user-style variants (biases, decays, feature maps, a plain torch loop reference) must be PROVED
unrolled and for all T; broken twins (a bias dropped, a decay changed, a wire moved, a bug only at d >= 3, a
bug
only at t >= 6) must be refuted by every tier that claims the size or length.
"""

from dataclasses import dataclass, replace

import pytest
import torch

import constructions
from constructions.recurrence import Recurrence, recurrent_reference, reference_is_recurrence, run_recurrence
from constructions.registry import LSADirect
from constructions.variants.family import PlanVariant, affine, check_projections, heads_qkv, randn
from constructions.variants.plan import ConstantDecay, Plan
from constructions.variants.reference import la_recurrent
from constructions.variants.upstream import HeadMap, Upstream
from equivalence.symbolic.lift import Lifter, Poly, Ring, Unliftable, apply_fn
from equivalence.symbolic.lifted_claims import prove_allt, prove_unrolled

SIZES = {"d": 2, "heads": 1}


# -- the lift itself --------------------------------------------------------------------------------
def test_lift_is_exact_and_canonical():
    ring = Ring()
    lf = Lifter(ring)
    a = lf.symbolic(torch.randn(3, dtype=torch.float64), "a")
    with lf:
        y = (a * 0.1 + a[0]) @ a - torch.logaddexp(a, torch.zeros(3, dtype=torch.float64)).sum()
        z = torch.sigmoid(-a)
    Y, Z = lf.read(y), lf.read(z)
    g = ring.array("a", (3,))
    from fractions import Fraction

    expect = sum(g[i] * Fraction(0.1) * g[i] + g[0] * g[i] for i in range(3)) - sum(
        apply_fn("softplus", g[i]) for i in range(3)
    )
    assert Y.item() - expect == 0  # binary64 0.1 read as the rational it denotes, logaddexp(., 0) = softplus
    assert Z[0] - (1 - apply_fn("sigmoid", g[0])) == 0  # sigmoid(-g) = 1 - sigmoid(g)
    assert isinstance(Z[0], Poly)


def test_sigmoid_spellings_meet_and_a_changed_logit_does_not():
    """sigmoid(g), exp(logsigmoid(g)), exp(g - softplus(g)) and 1 / (1 + exp(-g)) are one value for every g
    (so their identity is proved); sigmoid(2 g) is a different one (a broken twin must stay distinct)."""
    F = torch.nn.functional
    lf = Lifter(Ring())
    a = lf.symbolic(torch.randn(3, dtype=torch.float64), "a")
    with lf:
        zero = torch.zeros(3, dtype=torch.float64)
        same = [
            torch.sigmoid(a),
            torch.exp(F.logsigmoid(a)),
            torch.exp(a - torch.logaddexp(a, zero)),
            1 / (1 + torch.exp(-a)),
            1 - torch.exp(F.logsigmoid(-a)),
        ]
        log_forms = [F.logsigmoid(a), torch.log(torch.sigmoid(a))]
        twin = torch.sigmoid(2 * a)
    vals = [lf.read(v) for v in same]
    for v in vals[1:]:
        assert all(v[i] - vals[0][i] == 0 for i in range(3)), (v, vals[0])
    L = [lf.read(v) for v in log_forms]
    assert all(L[1][i] - L[0][i] == 0 for i in range(3))
    T = lf.read(twin)
    assert all(isinstance(T[i] - vals[0][i], Poly) for i in range(3))  # non-zero difference


def test_lift_names_unsupported_ops():
    lf = Lifter(Ring())
    a = lf.symbolic(torch.randn(3, dtype=torch.float64), "a")
    with pytest.raises(Unliftable, match="clamp"), lf:
        torch.clamp(a, min=0.0)


def test_onehot_of_argmax_obeys_its_relations():
    ring = Ring()
    lf = Lifter(ring)
    a = lf.symbolic(torch.randn(4, dtype=torch.float64), "a")
    with lf:
        k = torch.nn.functional.one_hot(a.argmax(-1), 4).to(torch.float64)
        kk = k[:, None] * k[None, :]
    K, KK = lf.read(k), lf.read(kk)
    assert sum(K) == 1
    for i in range(4):
        for j in range(4):
            assert KK[i, j] - (K[i] if i == j else 0) == 0  # k k^T = diag(k)


def test_piecewise_values_are_not_lifted():
    lf = Lifter(Ring())
    a = lf.symbolic(torch.randn(3, dtype=torch.float64), "a")
    with pytest.raises(Unliftable, match="piecewise"), lf:
        a * a.max()


def test_lift_records_values_read_into_python():
    lf = Lifter(Ring())
    a = lf.symbolic(torch.randn(3, dtype=torch.float64), "a")
    with lf:
        torch.full((2,), float(a[0]))
    assert lf.value_reads


# -- shipped variants -------------------------------------------------------------------------------
EXACT = [n for n in constructions.available() if constructions.get(n).status != "impossible"]


@pytest.mark.parametrize("name", EXACT)
def test_shipped_variants_proved_unrolled_and_allt(name):
    v = constructions.get(name)
    u = prove_unrolled(v, SIZES, 3)
    a = prove_allt(v, SIZES, T_link=3)
    assert u.outcome.status == "proved", u.outcome.message
    assert a.outcome.status == "proved", a.outcome.message
    assert "every sequence length" in a.statement


def test_lsa_direct_proved_for_all_parameters_at_d3():
    v = constructions.get("lsa-direct")
    u = prove_unrolled(v, {"d": 3, "heads": 2}, 4)
    assert u.outcome.status == "proved" and u.params_mode == "symbolic"
    a = prove_allt(v, {"d": 3, "heads": 2})
    assert a.outcome.status == "proved" and a.params_mode == "symbolic"
    assert "for all real parameter values" in a.statement


# -- user-style variants ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BiasParams:
    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    b_Q: torch.Tensor
    b_K: torch.Tensor
    b_V: torch.Tensor
    rho: torch.Tensor
    W_O: torch.Tensor | None = None

    def __post_init__(self):
        check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)


class BiasDecay(PlanVariant):
    """q, k, v with biases and a constant per-key decay sigmoid(rho), reference as a plain torch loop."""

    name = "user-bias-decay"
    drop_bias = False
    decay_shift = 0.0

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, **sizes):
        W = [randn(generator, heads, d, d, scale=d**-0.5) for _ in range(3)]
        b = [randn(generator, heads, d) for _ in range(3)]
        return BiasParams(*W, *b, randn(generator, heads, d))

    def reference(self, params, x):
        x = self._check(params, x).to(torch.float64)
        B, T, _ = x.shape
        H, d_k, _ = params.W_Q.shape
        gamma = torch.sigmoid(params.rho)
        S = torch.zeros(B, H, params.W_V.shape[1], d_k, dtype=torch.float64)
        ys = []
        for t in range(T):  # S_t = S_{t-1} diag(gamma) + v k^T, o = S q
            q = torch.einsum("bd,hrd->bhr", x[:, t], params.W_Q) + params.b_Q
            k = torch.einsum("bd,hrd->bhr", x[:, t], params.W_K) + params.b_K
            v = torch.einsum("bd,hrd->bhr", x[:, t], params.W_V) + (0 if self.drop_bias else params.b_V)
            S = S * gamma[None, :, None, :] + v[..., :, None] * k[..., None, :]
            ys.append((S @ q[..., None])[..., 0].reshape(B, -1))
        return torch.stack(ys, 1)

    def plan(self, params):
        return Plan(
            affine(params.W_Q, params.b_Q),
            affine(params.W_K, params.b_K),
            affine(params.W_V, params.b_V),
            params.W_O,
            decay=ConstantDecay(torch.sigmoid(params.rho + self.decay_shift)),
        )


class BiasDropped(BiasDecay):
    name = "user-bias-dropped"
    drop_bias = True


class DecayChanged(BiasDecay):
    name = "user-decay-changed"
    decay_shift = 0.5


class FeatureMap(PlanVariant):
    """elu+1 feature maps on q and k (an upstream block), reference in a plain loop."""

    name = "user-feature-map"

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, **sizes):
        return constructions.get("lsa-direct").sample_params(d, heads, generator=generator, dtype=dtype)

    def d_in(self, params):
        return params.W_Q.shape[2]

    def reference(self, params, x):
        def phi(g):
            return torch.nn.functional.elu(g) + 1

        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return self._merge(params, la_recurrent(phi(q), phi(k), v))

    def plan(self, params):
        H, d_k, d = params.W_Q.shape
        up = Upstream(
            d, [HeadMap(params.W_Q, "elu+1"), HeadMap(params.W_K, "elu+1"), HeadMap(params.W_V, "identity")]
        )
        dz = 2 * H * d_k + H * params.W_V.shape[1]
        eye = torch.eye(dz, dz + 1, dtype=torch.float64)
        hk, hv = H * d_k, params.W_V.shape[1]
        return Plan(
            eye[:hk].reshape(H, d_k, dz + 1),
            eye[hk : 2 * hk].reshape(H, d_k, dz + 1),
            eye[2 * hk :].reshape(H, hv, dz + 1),
            params.W_O,
            upstream=up,
        )


class WireMoved(LSADirect):
    """The direct LSA construction with the readout wires of two gates (of different outputs) swapped."""

    name = "user-wire-moved"

    def construct(self, params):
        rnn = super().construct(params)
        D = rnn.D.detach().clone()
        D[:, [0, -1]] = D[:, [-1, 0]]  # a gate of output 0 and one of the last output swap rows
        return type(rnn)(rnn.A.detach(), rnn.B.detach(), rnn.lam.detach(), rnn.C.detach(), rnn.E.detach(), D)


class BugAtD3(LSADirect):
    """The direct construction with W_Q's third input column doubled: wrong only when d >= 3."""

    name = "user-bug-d3"

    def construct(self, params):
        W_Q = params.W_Q.clone()
        if W_Q.shape[2] >= 3:
            W_Q[:, :, 2] = 2 * W_Q[:, :, 2]
        return super().construct(replace(params, W_Q=W_Q))


class CounterRecurrence(LSADirect):
    """A one-step form with a step counter c: an extra term c(c-1)...(c-5) v k^T / 720 appears only from t = 6
    (the reference IS this recurrence); the construction is plain LSA."""

    name = "user-bug-t6"
    reference = recurrent_reference

    def recurrence(self, params):
        H, d_k, _ = params.W_Q.shape
        d_v = params.W_V.shape[1]

        def init(B, dtype):
            return torch.zeros(B, H, d_v, d_k, dtype=torch.float64), torch.zeros(B, dtype=torch.float64)

        def step(state, x_t):
            S, c = state
            c = c + 1
            k = torch.einsum("bd,hrd->bhr", x_t, params.W_K)
            v = torch.einsum("bd,hrd->bhr", x_t, params.W_V)
            bump = 1 + (c - 1) * (c - 2) * (c - 3) * (c - 4) * (c - 5) / 120
            return S + bump[:, None, None, None] * v[..., :, None] * k[..., None, :], c

        def readout(state, x_t):
            q = torch.einsum("bd,hrd->bhr", x_t, params.W_Q)
            return (state[0] @ q[..., None])[..., 0].reshape(x_t.shape[0], -1)

        return Recurrence(init, step, readout)


class LoopBugT6(LSADirect):
    """A plain-loop reference that adds 1 to the output from t = 6 on (no recurrence hook)."""

    name = "user-loop-bug-t6"

    def reference(self, params, x):
        y = params.lsa()(x)
        if y.shape[1] >= 6:
            y = torch.cat([y[:, :5], y[:, 5:] + 1], dim=1)
        return y


@pytest.mark.parametrize("cls", [BiasDecay, FeatureMap])
def test_user_variants_proved(cls):
    v = cls()
    u = prove_unrolled(v, SIZES, 4)
    assert u.outcome.status == "proved", u.outcome.message
    a = prove_allt(v, SIZES, T_link=4)
    assert a.outcome.status == "proved", a.outcome.message
    assert "t = 1..4" in a.statement  # the plan-derived one-step form is linked to the reference at T <= 4


def _tutorial_variant():
    """The ``channel-decay`` module of docs/tutorial_add_variant.md, executed as a user would import it."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "tutorial_add_variant.md").read_text()
    code = text.split("```python", 1)[1].split("```", 1)[0]
    constructions.unregister("channel-decay")
    ns: dict = {"__name__": "channel_decay"}
    try:
        exec(compile(code, "channel_decay.py", "exec"), ns)  # noqa: S102 - the repository's own tutorial
        return constructions.get("channel-decay")
    finally:
        constructions.unregister("channel-decay")


def test_tutorial_channel_decay_proved():
    v = _tutorial_variant()
    assert prove_unrolled(v, SIZES, 4).outcome.status == "proved"
    assert prove_allt(v, SIZES, T_link=4).outcome.status == "proved"


@pytest.mark.parametrize("cls", [BiasDropped, DecayChanged, WireMoved])
def test_broken_twins_refuted_by_both_tiers(cls):
    v = cls()
    u = prove_unrolled(v, SIZES, 3)
    assert u.outcome.status == "refuted", u.outcome.message
    cex = u.outcome.counterexample
    assert cex["point"] and cex["difference_at_point"] != "0"
    a = prove_allt(v, SIZES, T_link=3)
    assert a.outcome.status == "refuted", a.outcome.message


def test_bug_only_at_d3():
    v = BugAtD3()
    assert prove_unrolled(v, {"d": 2, "heads": 1}, 2).outcome.status == "proved"
    assert prove_allt(v, {"d": 2, "heads": 1}).outcome.status == "proved"
    assert prove_unrolled(v, {"d": 3, "heads": 1}, 2).outcome.status == "refuted"
    assert prove_allt(v, {"d": 3, "heads": 1}).outcome.status == "refuted"


def test_bug_only_at_t6_in_the_one_step_form():
    v = CounterRecurrence()
    assert reference_is_recurrence(v)
    assert prove_unrolled(v, SIZES, 5).outcome.status == "proved"
    u = prove_unrolled(v, SIZES, 6)
    assert u.outcome.status == "refuted" and u.outcome.counterexample["t"] == 6
    a = prove_allt(v, SIZES)
    assert a.outcome.status == "refuted", a.outcome.message  # the step obligation (Phi) fails; found at t = 6
    assert a.outcome.counterexample["t"] == 6


def test_bug_only_at_t6_in_a_plain_loop_reference():
    v = LoopBugT6()
    assert prove_unrolled(v, SIZES, 5).outcome.status == "proved"
    assert prove_unrolled(v, SIZES, 6).outcome.status == "refuted"
    a = prove_allt(v, SIZES, T_link=6)
    assert a.outcome.status == "refuted"
    weak = prove_allt(v, SIZES, T_link=5)  # the link is only as long as stated, and the statement says so
    assert weak.outcome.status == "proved" and "t = 1..5" in weak.statement
    assert "beyond t = 5 the claim is about the one-step form" in weak.statement


def test_symbolic_invariant_hook_is_not_trusted():
    class Hooked(BiasDropped):
        name = "user-hooked"

        def symbolic_invariant(self, sizes):
            raise AssertionError("never called")

    a = prove_allt(Hooked(), SIZES, T_link=3)
    assert a.outcome.status == "refuted"
    assert "ignored" in a.outcome.evidence["symbolic_invariant"]


def test_run_recurrence_matches_reference_loop():
    v = BiasDecay()
    p = v.sample_params(2, 1, generator=torch.Generator().manual_seed(0))
    from constructions.recurrence import plan_recurrence

    x = torch.randn(2, 5, 2, dtype=torch.float64)
    torch.testing.assert_close(run_recurrence(plan_recurrence(v.plan(p)), x), v.reference(p, x))
