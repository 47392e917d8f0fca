"""Soundness of the symbolic tier, checked as a user would: variants that are not in the repository.

A module written the way docs/tutorial_add_variant.md shows (``PlanVariant`` subclasses with float64 torch
references written as plain loops; one subclass of the library's direct LSA construction; negative
controls) is imported the way ``python -m equivalence prove --import FILE`` imports it, and its claims are
run through the same API (:func:`equivalence.symbolic.catalogue.run_claim`). Correct variants (biases, a
fixed decay, Python-float decays, feature maps, a data-dependent decay, a complex decay) must get PROVED
unrolled and all-T claims; broken twins (a bias dropped, a decay changed, a wire moved, bugs that appear
only at d >= 3 or only at t >= 6) must be refuted by every tier whose statement names that size or length,
and no statement may name a size that was not checked; a negative control worded "softmax" but computing
LSA is never an expected refutation; certificates attach only when their hypotheses hold; ``prove``'s exit
codes and summary line are read.
"""

import re
import subprocess
import sys

import pytest

import constructions

#: the user's module (written to a temporary folder and imported with --import)
USER_MODULE = r'''
"""Variants a user might write (none of them is in the repository), with plain torch-loop references."""

import dataclasses
from dataclasses import dataclass

import constructions
import torch
from constructions.tolerance import pointwise_magnitude
from constructions.variants.family import PlanVariant, affine, randn
from constructions.variants.plan import ConstantDecay, InputDecay, Plan
from constructions.variants.upstream import Identity, Upstream
from torch import nn


@dataclass(frozen=True)
class BiasParams:
    W_Q: torch.Tensor  # [H, d_k, d]
    W_K: torch.Tensor
    W_V: torch.Tensor  # [H, d_v, d]
    b_Q: torch.Tensor  # [H, d_k]
    b_K: torch.Tensor
    b_V: torch.Tensor  # [H, d_v]
    rho: torch.Tensor  # [H] decay logits
    W_O: torch.Tensor | None = None


def _sample(d, heads, g, d_k=None, d_v=None, d_out=None):
    d_k, d_v = d_k or d, d_v or d
    s = d**-0.5
    W_O = randn(g, d_out, heads * d_v, scale=0.5) if d_out else None
    return BiasParams(
        randn(g, heads, d_k, d, scale=s),
        randn(g, heads, d_k, d, scale=s),
        randn(g, heads, d_v, d, scale=s),
        randn(g, heads, d_k),
        randn(g, heads, d_k),
        randn(g, heads, d_v),
        randn(g, heads, scale=2.0),
        W_O,
    )


def _out(p, o):  # o [B, H, T, d_v] -> [B, T, d_out]
    B, H, T, dv = o.shape
    y = o.permute(0, 2, 1, 3).reshape(B, T, H * dv)
    return y if p.W_O is None else y @ p.W_O.T


class _Base(PlanVariant):
    status = "exact"
    free_fields = ("W_Q", "W_K", "W_V", "W_O")
    #: a reference bug: from this (1-based) step on, the reference writes v_t k_t^T twice
    double_write_from = None

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None):
        return _sample(d, heads, generator, d_k, d_v, d_out)

    def d_in(self, params):
        return params.W_Q.shape[2]

    def decay_of(self, p, xt):  # [B, H]: the per-head decay at input xt [B, d]
        return torch.ones(xt.shape[0], p.W_Q.shape[0], dtype=xt.dtype)

    def reference(self, p, x):
        """Plain loop: S_t = a_t S_{t-1} + v_t k_t^T, o_t = S_t q_t (per head), with biases."""
        x = self._check(p, x).to(torch.float64)
        B, T, _ = x.shape
        H, d_k, _ = p.W_Q.shape
        d_v = p.W_V.shape[1]
        S = torch.zeros(B, H, d_v, d_k, dtype=torch.float64)
        outs = []
        for t in range(T):
            xt = x[:, t]
            q = torch.einsum("hkd,bd->bhk", p.W_Q, xt) + p.b_Q
            k = torch.einsum("hkd,bd->bhk", p.W_K, xt) + p.b_K
            v = torch.einsum("hvd,bd->bhv", p.W_V, xt) + p.b_V
            a = self.decay_of(p, xt)
            S = a[:, :, None, None] * S + v[..., :, None] * k[..., None, :]
            if self.double_write_from is not None and t + 1 >= self.double_write_from:
                S = S + v[..., :, None] * k[..., None, :]
            outs.append(torch.einsum("bhvk,bhk->bhv", S, q))
        return _out(p, torch.stack(outs, dim=2))

    def plan(self, p):
        return Plan(affine(p.W_Q, p.b_Q), affine(p.W_K, p.b_K), affine(p.W_V, p.b_V), p.W_O)


@constructions.register("u-bias")
class UBias(_Base):
    description = "LSA with biases on q, k, v (a user's variant)"


@constructions.register("u-fixed-decay")
class UFixedDecay(_Base):
    description = "biased linear attention with a fixed decay gamma_h = sigmoid(rho_h) per head"

    def decay_of(self, p, xt):
        return torch.sigmoid(p.rho).expand(xt.shape[0], -1)

    def plan(self, p):
        H, d_k, _ = p.W_Q.shape
        base = super().plan(p)
        return dataclasses.replace(base, decay=ConstantDecay(torch.sigmoid(p.rho)[:, None].expand(H, d_k)))


@constructions.register("u-float-decay")
class UFloatDecay(_Base):
    description = "decay written as Python floats: lam = 1.0 for head 0, 0.9 for the others"

    def decay_of(self, p, xt):
        H = p.W_Q.shape[0]
        return torch.tensor([1.0] + [0.9] * (H - 1), dtype=torch.float64).expand(xt.shape[0], H)

    def plan(self, p):
        H, d_k, _ = p.W_Q.shape
        lam = torch.tensor([[1.0] * d_k] + [[0.9] * d_k] * (H - 1), dtype=torch.float64)
        return dataclasses.replace(super().plan(p), decay=ConstantDecay(lam))


@constructions.register("u-input-decay")
class UInputDecay(_Base):
    description = "data-dependent decay a_t = sigmoid(w_h . x_t + c_h) per head (uses W_Q[:, 0] as w_h)"

    def decay_of(self, p, xt):
        return torch.sigmoid(torch.einsum("hd,bd->bh", p.W_Q[:, 0], xt) + p.rho)

    def plan(self, p):
        W = torch.cat([p.W_Q[:, 0], p.rho[:, None]], dim=1)  # [H, d+1]
        return dataclasses.replace(super().plan(p), decay=InputDecay(W, "exp-logsigmoid"))


class Elu1(nn.Module):
    """z = elu(W x) + 1, W [r, d]."""

    def __init__(self, W):
        super().__init__()
        self.register_buffer("W", W)
        self.width = W.shape[0]

    def forward(self, x):
        return torch.nn.functional.elu(x.to(self.W.dtype) @ self.W.T) + 1

    def magnitude(self, x, n):
        x64, W = x.detach().to(torch.float64), self.W.to(torch.float64)
        return pointwise_magnitude("elu+1", x64 @ W.T, x64.abs() @ W.abs().T, W.shape[1], n)


class Square(nn.Module):
    """z = (W x)^2 entrywise (a polynomial feature map)."""

    def __init__(self, W):
        super().__init__()
        self.register_buffer("W", W)
        self.width = W.shape[0]

    def forward(self, x):
        return (x.to(self.W.dtype) @ self.W.T) ** 2

    def magnitude(self, x, n):
        x64, W = x.detach().to(torch.float64), self.W.to(torch.float64)
        return (x64.abs() @ W.abs().T) ** 2


class _FeatureBase(_Base):
    """q_t = phi(W_Q x_t), k_t = phi(W_K x_t) (biases unused), v_t = W_V x_t + b_V; no decay."""

    fn = None
    block = None

    def reference(self, p, x):
        x = self._check(p, x).to(torch.float64)
        B, T, _ = x.shape
        H, d_k, _ = p.W_Q.shape
        d_v = p.W_V.shape[1]
        S = torch.zeros(B, H, d_v, d_k, dtype=torch.float64)
        outs = []
        for t in range(T):
            xt = x[:, t]
            q = self.fn(torch.einsum("hkd,bd->bhk", p.W_Q, xt))
            k = self.fn(torch.einsum("hkd,bd->bhk", p.W_K, xt))
            v = torch.einsum("hvd,bd->bhv", p.W_V, xt) + p.b_V
            S = S + v[..., :, None] * k[..., None, :]
            outs.append(torch.einsum("bhvk,bhk->bhv", S, q))
        return _out(p, torch.stack(outs, dim=2))

    def plan(self, p):
        H, d_k, d = p.W_Q.shape
        d_v = p.W_V.shape[1]
        r = H * d_k
        up = Upstream(d, [Identity(d), self.block(p.W_Q.reshape(r, d)), self.block(p.W_K.reshape(r, d))])
        dz = d + 2 * r

        def select(offset, width_per_head):
            W = torch.zeros(H, width_per_head, dz + 1, dtype=torch.float64)
            for h in range(H):
                for i in range(width_per_head):
                    W[h, i, offset + h * width_per_head + i] = 1.0
            return W

        W_V = torch.zeros(H, d_v, dz + 1, dtype=torch.float64)
        W_V[:, :, :d] = p.W_V
        W_V[:, :, dz] = p.b_V
        return Plan(select(d, d_k), select(d + r, d_k), W_V, p.W_O, upstream=up)


@constructions.register("u-elu-features")
class UEluFeatures(_FeatureBase):
    description = "linear attention with the elu+1 feature map on queries and keys"
    fn = staticmethod(lambda g: torch.nn.functional.elu(g) + 1)
    block = Elu1


@constructions.register("u-square-features")
class USquareFeatures(_FeatureBase):
    description = "linear attention with the square feature map (W x)^2 on queries and keys"
    fn = staticmethod(lambda g: g**2)
    block = Square


# ---- broken twins ---------------------------------------------------------------------------------------
@constructions.register("u-bias-dropped")
class UBiasDropped(UFixedDecay):
    description = "broken: the key bias is dropped in the construction"

    def plan(self, p):
        return dataclasses.replace(super().plan(p), W_K=affine(p.W_K))


@constructions.register("u-decay-changed")
class UDecayChanged(UFixedDecay):
    description = "broken: the construction decays with gamma^2"

    def plan(self, p):
        base = super().plan(p)
        return dataclasses.replace(base, decay=ConstantDecay(base.kv_decay**2))


@constructions.register("u-wire-moved")
class UWireMoved(UFixedDecay):
    description = "broken: one readout wire of the construction moved to a neighbouring neuron"

    def construct(self, p):
        rnn = super().construct(p)
        with torch.no_grad():  # neuron 0 feeds output 1 instead of output 0
            rnn.D[[0, 1], 0] = rnn.D[[1, 0], 0].clone()
        return rnn


@constructions.register("u-bug-at-d3")
class UBugAtD3(UFixedDecay):
    description = "broken only when d >= 3: the construction reads W_Q[..., 2] with the wrong sign"

    def plan(self, p):
        if p.W_Q.shape[2] >= 3:
            p = dataclasses.replace(
                p, W_Q=p.W_Q * torch.tensor([1.0, 1.0, -1.0] + [1.0] * (p.W_Q.shape[2] - 3))
            )
        return super().plan(p)


@constructions.register("u-ref-bug-t6")
class URefBugT6(UFixedDecay):
    description = "broken only at t >= 6: from step 6 on the reference writes v_t k_t^T twice"
    double_write_from = 6


@constructions.register("u-construct-bug-at-d3")
class UConstructBugAtD3(UFixedDecay):
    description = "broken only when d >= 3: construct() doubles the readout row of output 0"

    def construct(self, p):
        rnn = super().construct(p)
        if p.W_Q.shape[2] >= 3:
            with torch.no_grad():
                rnn.D[0] = 2 * rnn.D[0]
        return rnn


@constructions.register("u-input-decay-doubled")
class UInputDecayDoubled(UInputDecay):
    description = "broken: the reference decays with sigmoid(2 g), the construction with exp(logsigmoid(g))"

    def decay_of(self, p, xt):
        return torch.sigmoid(2 * (torch.einsum("hd,bd->bh", p.W_Q[:, 0], xt) + p.rho))


@constructions.register("u-input-decay-logsigmoid")
class UInputDecayLogsigmoid(UInputDecay):
    description = "data-dependent decay a_t = exp(logsigmoid(w_h . x_t + c_h)) per head"

    def decay_of(self, p, xt):
        return torch.exp(torch.nn.functional.logsigmoid(torch.einsum("hd,bd->bh", p.W_Q[:, 0], xt) + p.rho))


@dataclass(frozen=True)
class ComplexParams:
    W_Q: torch.Tensor  # [H, 2m, d]
    W_K: torch.Tensor
    W_V: torch.Tensor  # [H, d_v, d]
    rho: torch.Tensor  # [H, m]: |lambda| = sigmoid(rho)
    theta: torch.Tensor  # [H, m]: arg lambda
    W_O: torch.Tensor | None = None


@constructions.register("u-complex-decay")
class UComplexDecay(PlanVariant):
    status = "exact"
    extensions = ("E2",)
    free_fields = ("W_Q", "W_K", "W_V", "W_O", "theta")
    description = "complex decay lambda = sigmoid(rho) e^{i theta} per key pair, real readout Re(S q)"

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None):
        m = max(1, (d_k or d) // 2)
        d_v = d_v or d
        s = d**-0.5
        return ComplexParams(
            randn(generator, heads, 2 * m, d, scale=s),
            randn(generator, heads, 2 * m, d, scale=s),
            randn(generator, heads, d_v, d, scale=s),
            randn(generator, heads, m, scale=2.0),
            randn(generator, heads, m),
            randn(generator, d_out, heads * d_v, scale=0.5) if d_out else None,
        )

    def d_in(self, params):
        return params.W_Q.shape[2]

    def reference(self, p, x):
        x = self._check(p, x).to(torch.float64)
        B, T, _ = x.shape
        H, m = p.rho.shape
        d_v = p.W_V.shape[1]
        lam = torch.sigmoid(p.rho) * torch.exp(1j * p.theta)  # [H, m]
        S = torch.zeros(B, H, d_v, m, dtype=torch.complex128)
        outs = []
        for t in range(T):
            xt = x[:, t]
            q = torch.einsum("hkd,bd->bhk", p.W_Q, xt)
            k = torch.einsum("hkd,bd->bhk", p.W_K, xt)
            v = torch.einsum("hvd,bd->bhv", p.W_V, xt)
            qc = torch.complex(q[..., 0::2], q[..., 1::2])
            kc = torch.complex(k[..., 0::2], -k[..., 1::2])
            S = S * lam[None, :, None, :] + v[..., :, None] * kc[..., None, :]
            outs.append(torch.einsum("bhvk,bhk->bhv", S, qc).real)
        return _out(p, torch.stack(outs, dim=2))

    def plan(self, p):
        Wq, Wk = affine(p.W_Q), affine(p.W_K)
        W_Q = torch.complex(Wq[:, 0::2], Wq[:, 1::2])
        W_K = torch.complex(Wk[:, 0::2], -Wk[:, 1::2])
        W_V = affine(p.W_V).to(torch.complex128)
        W_O = None if p.W_O is None else p.W_O.to(torch.complex128)
        lam = torch.polar(torch.sigmoid(p.rho), p.theta)
        return Plan(W_Q, W_K, W_V, W_O, decay=ConstantDecay(lam, True, float(p.theta.abs().max())))


@constructions.register("u-complex-angle-doubled")
class UComplexAngleDoubled(UComplexDecay):
    description = "broken: the construction rotates by 2 theta"

    def plan(self, p):
        return super().plan(dataclasses.replace(p, theta=2 * p.theta))


# ---- an LSA construction of the library, subclassed (the LSA-statement path) ----------------------------
from constructions.registry import LSADirect


@constructions.register("u-lsa-bug-at-d3")
class ULSABugAtD3(LSADirect):
    description = "the library's direct LSA construction, with construct() wrong only when d >= 3"

    def construct(self, params):
        rnn = super().construct(params)
        if rnn.d >= 3:
            with torch.no_grad():
                rnn.D[0] = 2 * rnn.D[0]
        return rnn


# ---- negative controls ---------------------------------------------------------------------------------
from constructions.variants.gated_deltanet import GatedDeltaNet
from constructions.variants.symbolic import softmax_reference


@constructions.register("u-softmax-worded")
class USoftmaxWorded(UBias):
    status = "impossible"
    description = "Negative control: causal softmax attention (but the code is biased LSA)"
    impossibility_claim = "IMPOSSIBLE-SOFTMAX/v1"


@constructions.register("u-lying-softmax")
class ULyingSoftmax(LSADirect):
    status = "impossible"
    description = "Negative control: causal softmax attention (its reference() is LSA)"
    impossibility_claim = "IMPOSSIBLE-SOFTMAX/v1"

    def symbolic_reference(self, W_Q, W_K, W_V, W_O, x):  # another layer than reference()
        return softmax_reference(W_Q, W_K, W_V, W_O, x)


@constructions.register("u-gated-deltanet")
class UGatedDeltaNet(GatedDeltaNet):
    description = "a user's Gated DeltaNet (normalised q, k; sigmoid gates alpha_t, beta_t)"


@constructions.register("u-gated-delta-unnormalised")
class UGatedDeltaUnnormalised(GatedDeltaNet):
    description = "the gated delta rule on unnormalised q, k (not DeltaNet's family)"

    def _parts(self, params, x):
        x = x.to(torch.float64)
        q, k, v, alpha, beta = super()._parts(params, x)
        from constructions.variants.family import heads_qkv

        q, k, _ = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return q, k, v, alpha, beta

    def symbolic_reference(self, W_Q, W_K, W_V, W_alpha, W_beta, W_O, x):
        import numpy as np
        import sympy as sp

        H, d_k = W_Q.shape[:2]
        outs = []
        for h in range(H):
            S = np.zeros((W_V.shape[1], d_k), dtype=object)
            rows = []
            for xt in x:
                q, k, v = W_Q[h] @ xt, W_K[h] @ xt, W_V[h] @ xt
                a, b = 1 / (1 + sp.exp(-(W_alpha[h] @ xt))), 1 / (1 + sp.exp(-(W_beta[h] @ xt)))
                S = a * (S - b * np.outer(S @ k, k)) + b * np.outer(v, k)
                rows.append(S @ q)
            outs.append(np.array(rows, dtype=object).reshape(len(x), -1))
        y = np.concatenate(outs, axis=1)
        return y if W_O is None else np.array([W_O @ r for r in y], dtype=object)
'''


def _import(path):
    from equivalence.commands.verify import _import_user

    _import_user(str(path))


NAMES = re.findall(r'register\("(u-[a-z0-9-]+)"\)', USER_MODULE)
SEED = 20261203


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user_variants.py"
    path.write_text(USER_MODULE)
    _import(path)
    assert set(NAMES) <= set(constructions.available())
    yield path
    for name in NAMES:
        if name in constructions.available():
            constructions.unregister(name)


def _claim(path, name, suffix, sets, seed=SEED, profile="ci"):
    from equivalence.symbolic.catalogue import run_claim

    return run_claim(
        f"{name.upper()}-{suffix}/v1", sets=sets, seed=seed, imports=(str(path),), profile=profile
    )


def _why(c):
    return (c.id, c.status, c.message[:400])


U3 = [{"d": 3, "heads": 2, "T": 4}]  # unrolled at d = 3 (d_k = d_v = 3), t = 1..4
A3 = [{"d": 3, "heads": 2}]  # all-T at d = 3


# -- correct variants: PROVED unrolled and all-T, statements naming what was checked ----------------------
CORRECT = [
    "u-bias",
    "u-fixed-decay",
    "u-float-decay",
    "u-elu-features",
    "u-square-features",
    "u-input-decay-logsigmoid",
    "u-complex-decay",
]


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_user_variant_is_proved_unrolled_and_for_every_T(user_module, name):
    from equivalence.symbolic.catalogue import variant_claim_ids

    assert variant_claim_ids(constructions.get(name)) == [
        f"{name.upper()}-UNROLLED/v1",
        f"{name.upper()}-ALLT/v1",
    ]
    un = _claim(user_module, name, "UNROLLED", U3)
    assert un.status == "proved" and un.tier == "unrolled", _why(un)
    assert "d=3, heads=2" in un.statement and "every t = 1..4" in un.statement
    assert "1..5" not in un.statement and "1..6" not in un.statement
    al = _claim(user_module, name, "ALLT", A3)
    assert al.status == "proved" and al.tier == "simulation", _why(al)
    assert "d=3, heads=2" in al.statement and "every sequence length T >= 1" in al.statement
    # the plan's one-step form is not the registered reference: the statement and title say how far they are
    # linked (proved unrolled), and that beyond it the claim is about the one-step form
    assert "for t = 1..6 (proved unrolled, exactly)" in al.statement and "t ≤ 6" in al.title, al.title
    assert al.epsilon is None and al.evidence["seed"] == SEED and al.rerun["seed"] == SEED


def test_python_float_decays_are_exact_and_never_a_false_refutation(user_module):
    """lam = 1.0 and 0.9 written as Python floats in the reference and in the plan: binary64 constants are
    converted exactly, so they agree and nothing is refuted (also at another seed)."""
    for seed in (1, 2):
        for suffix, sets in (("UNROLLED", [{"d": 2, "heads": 2, "T": 3}]), ("ALLT", [{"d": 2, "heads": 2}])):
            c = _claim(user_module, "u-float-decay", suffix, sets, seed=seed)
            assert c.status == "proved", _why(c)


def test_a_data_dependent_decay_written_with_sigmoid_is_never_refuted(user_module):
    """The construction's E1 link computes exp(logsigmoid(g)), the user's reference sigmoid(g): equal real
    functions. Whatever the lift can decide, it must never be REFUTED (no point certifies a difference)."""
    for suffix, sets in (("UNROLLED", [{"d": 2, "heads": 1, "T": 3}]), ("ALLT", [{"d": 2, "heads": 1}])):
        c = _claim(user_module, "u-input-decay", suffix, sets)
        assert c.status not in ("refuted", "error"), _why(c)


def test_a_data_dependent_decay_written_with_sigmoid_is_proved(user_module):
    """sigmoid(g) in the reference, exp(logsigmoid(g)) = exp(g - softplus(g)) in the construction: the lift
    rewrites both to one atom, so the identity is proved for every g."""
    for suffix, sets in (("UNROLLED", [{"d": 2, "heads": 1, "T": 3}]), ("ALLT", [{"d": 2, "heads": 1}])):
        c = _claim(user_module, "u-input-decay", suffix, sets)
        assert c.status == "proved", _why(c)


def test_a_sigmoid_decay_with_a_doubled_logit_is_refuted(user_module):
    """The broken twin: sigmoid(2 g) against exp(g - softplus(g)) differ, at a certified point."""
    for suffix, sets in (("UNROLLED", [{"d": 2, "heads": 1, "T": 3}]), ("ALLT", [{"d": 2, "heads": 1}])):
        _refuted_with_point(_claim(user_module, "u-input-decay-doubled", suffix, sets))


# -- broken twins: refuted by every tier, with a certified counterexample ---------------------------------
TWINS = [
    "u-bias-dropped",
    "u-decay-changed",
    "u-wire-moved",
    "u-complex-angle-doubled",
]


def _refuted_with_point(c):
    assert c.status == "refuted", _why(c)
    cx = c.counterexample
    assert isinstance(cx, dict) and cx.get("point") and cx["t"] >= 1, cx
    assert cx["rnn_output"] is not None and cx["rnn_output"] != cx["reference_output"], cx


@pytest.mark.parametrize("name", TWINS)
def test_a_broken_twin_is_refuted_unrolled_and_all_T(user_module, name):
    _refuted_with_point(_claim(user_module, name, "UNROLLED", [{"d": 2, "heads": 2, "T": 3}]))
    _refuted_with_point(_claim(user_module, name, "ALLT", [{"d": 2, "heads": 2}]))


@pytest.mark.parametrize("name", ["u-bug-at-d3", "u-construct-bug-at-d3"])
def test_a_bug_only_at_d3_is_refuted_wherever_d3_is_named(user_module, name):
    """Wrong only for d >= 3 (in the plan, or in construct() only): at d = 2 both tiers hold and their
    statements name d = 2 and nothing larger; at d = 3 both refute."""
    for suffix, sets in (("UNROLLED", [{"d": 2, "heads": 2, "T": 3}]), ("ALLT", [{"d": 2, "heads": 2}])):
        c = _claim(user_module, name, suffix, sets)
        assert c.status == "proved", _why(c)
        assert "d=2" in c.statement and "d=3" not in c.statement and "every size" not in c.statement
    _refuted_with_point(_claim(user_module, name, "UNROLLED", U3))
    _refuted_with_point(_claim(user_module, name, "ALLT", A3))


def test_a_reference_bug_only_at_t6_is_refuted_wherever_t6_is_named(user_module):
    """The reference writes v_t k_t^T twice from step 6 on. UNROLLED at T = 5 names t = 1..5 only (and holds);
    at T = 6 it refutes at t = 6; ALL-T links the one-step form to the reference up to t = 6 and refutes."""
    c = _claim(user_module, "u-ref-bug-t6", "UNROLLED", [{"d": 2, "heads": 1, "T": 5}])
    assert c.status == "proved" and "every t = 1..5" in c.statement and "1..6" not in c.statement, _why(c)
    c = _claim(user_module, "u-ref-bug-t6", "UNROLLED", [{"d": 2, "heads": 1, "T": 6}])
    _refuted_with_point(c)
    assert c.counterexample["t"] == 6
    c = _claim(user_module, "u-ref-bug-t6", "ALLT", [{"d": 2, "heads": 1}])
    _refuted_with_point(c)
    assert c.counterexample["t"] == 6


def test_the_lsa_statement_path_refutes_a_construct_wrong_only_at_d3(user_module):
    """A subclass of the library's direct LSA construction whose construct() is wrong only for d >= 3: every
    tier that names d >= 3 refutes it (UNROLLED, ALL-T, Schwartz–Zippel at d = 8, WIRING on the grid d <= 3);
    at d = 2 the tiers hold and name d = 2 only; Schwartz–Zippel is PROBABLE with its epsilon (never
    PROVED)."""
    n = "u-lsa-bug-at-d3"
    c = _claim(user_module, n, "UNROLLED", [{"d": 2, "heads": 1, "T": 3}])
    assert c.status == "proved" and c.sizes == {"sets": [{"d": 2, "heads": 1, "T": 3}]}, _why(c)
    assert _claim(user_module, n, "UNROLLED", [{"d": 3, "heads": 1, "T": 2}]).status == "refuted"
    assert _claim(user_module, n, "ALLT", [{"d": 3, "heads": 1}]).status == "refuted"
    sz = _claim(user_module, n, "SZ", [{"d": 2, "heads": 1, "T": 3}])
    assert sz.status == "probable" and 0 < sz.epsilon < 1e-6 and sz.evidence["seed"] == SEED, _why(sz)
    assert _claim(user_module, n, "SZ", [{"d": 8, "heads": 1, "T": 3}]).status == "refuted"
    w = _claim(user_module, n, "WIRING", None)  # ci grid: d, d_k, d_v <= 2
    assert w.status == "proved" and "d, d_k, d_v ≤ 2" in w.statement and "≤ 3" not in w.statement, _why(w)
    assert w.sizes["construct() checked at"] == "H <= 2, d, d_k, d_v <= 2"
    w = _claim(user_module, n, "WIRING", None, profile="thorough")  # grid d <= 3: names d = 3, so refutes
    assert w.status == "refuted", _why(w)


# -- negative controls: certificates only when their hypotheses hold --------------------------------------
@pytest.mark.parametrize("name", ["u-softmax-worded", "u-lying-softmax"])
def test_lsa_worded_softmax_is_never_an_expected_refutation(user_module, name):
    """Biased LSA described as softmax (no exact hook), and library LSA whose symbolic_reference is softmax
    while its reference() is LSA: the certificate is not attached and nothing is 'REFUTED (as expected)'."""
    for suffix in ("IMPOSSIBLE", "UNROLLED"):
        c = _claim(user_module, name, suffix, [{"d": 2, "heads": 1, "T": 3}])
        assert c.status == "unexpected-pass", _why(c)
        assert c.tier != "certificate"
    c = _claim(user_module, name, "IMPOSSIBLE", [{"d": 2, "heads": 1, "T": 3}])
    assert "No impossibility certificate is attached" in c.statement
    if name == "u-lying-softmax":
        assert "the hook is not the variant's reference" in c.evidence["certificate_not_applied"]


def test_delta_certificates_are_about_their_own_families():
    from equivalence.symbolic.impossibility import CERTIFICATE_FAMILIES as F

    dn, gdn = F["IMPOSSIBLE-DELTANET/v1"], F["IMPOSSIBLE-GATED-DELTANET/v1"]
    assert "normalised" in dn.title.lower() and "beta [H]" in dn.hypotheses[0]
    assert "beta_t = sigmoid(W_beta x_t)" in gdn.family_text and "W_beta [H, d]" in gdn.hypotheses[0]
    assert "alpha_t" in gdn.family_text and "k^" in gdn.family_text  # gated, on normalised keys
    assert constructions.get("deltanet").impossibility_claim == "IMPOSSIBLE-DELTANET/v1"
    assert constructions.get("gated-deltanet").impossibility_claim == "IMPOSSIBLE-GATED-DELTANET/v1"


def test_a_users_gated_deltanet_gets_the_certificate_only_when_it_matches(user_module):
    c = _claim(user_module, "u-gated-deltanet", "IMPOSSIBLE", [{"d": 2, "heads": 1, "T": 3}])
    assert c.status == "expected-failure" and c.tier == "certificate", _why(c)
    assert c.evidence["argument"] == "IMPOSSIBLE-GATED-DELTANET/v1" and c.evidence["variant_check"]["applies"]
    assert c.evidence["variant_check"]["tie"]["agrees"]
    # the gated delta rule on unnormalised keys is not in that family: on the witness line its output is a
    # polynomial of degree 2, so the certificate is not attached (and nothing is claimed impossible)
    c = _claim(user_module, "u-gated-delta-unnormalised", "IMPOSSIBLE", [{"d": 2, "heads": 1, "T": 3}])
    assert c.tier != "certificate" and c.status != "proved", _why(c)
    assert "degree 2 <= 4" in c.evidence["certificate_not_applied"]


# -- the command line: exit codes and the summary line ----------------------------------------------------
def _prove(path, *args):
    r = subprocess.run(
        [sys.executable, "-m", "equivalence", "prove", "--import", str(path), *args, "--seed", "11"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_prove_exit_codes_and_summary_for_user_variants(user_module):
    r = _prove(user_module, "u-bias", "--d", "2", "--T", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "2 claims: 2 proved (seed 11)"
    r = _prove(user_module, "u-bias-dropped", "--d", "2", "--T", "3")
    assert r.returncode == 1 and r.stdout.splitlines()[-1] == "2 claims: 2 refuted (seed 11)", r.stdout
    assert "counterexample: t=1, output " in r.stdout
    r = _prove(user_module, "u-softmax-worded", "--d", "2", "--T", "3")
    assert r.returncode == 1 and "2 unexpected pass" in r.stdout.splitlines()[-1], r.stdout
    assert "as expected" not in r.stdout


def test_a_rerun_with_the_recorded_seed_reproduces_lifted_claims_exactly(user_module):
    """check-certificate compares every field but ``seconds``: the evidence holds no wall-clock times."""
    for name in ("u-bias", "u-bias-dropped"):
        for suffix, sets in (("UNROLLED", [{"d": 2, "heads": 1, "T": 3}]), ("ALLT", [{"d": 2, "heads": 1}])):
            a, b = (_claim(user_module, name, suffix, sets).to_dict() for _ in range(2))
            a.pop("seconds"), b.pop("seconds")
            assert a == b, (name, suffix)
