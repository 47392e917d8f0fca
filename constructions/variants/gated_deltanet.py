r"""Gated DeltaNet without its erase term: Mamba-2's gating with input scale $\beta_t$ — exact (E1 +
upstream).

Yang, Kautz & Hatamizadeh 2025 (*Gated Delta Networks*, Eq. 10; fla ``naive_recurrent_gated_delta_rule``):

$$ S_t = \alpha_t\,S_{t-1}\big(I - \beta_tk_tk_t^\top\big) + \beta_t\,v_tk_t^\top,\qquad o_t = S_tq_t. $$

Two reductions (derived):

- $\beta_t = 0$ literally: nothing is erased and nothing is written, $S_t = \alpha_tS_{t-1} = 0$, the output
is
  identically 0 (fla's naive reference agrees; a test checks it) — a degenerate case, not a layer;
- **no erase** (the delta correction $-\beta_tS_{t-1}k_tk_t^\top$ set to 0, i.e. $\beta = 0$ in the erase
only):
  $S_t = \alpha_tS_{t-1} + \beta_tv_tk_t^\top$, which is Mamba-2's gated update (Gated DeltaNet's
  Sec. 3 starting point) with the input scaled by $\beta_t = \sigma(W_\beta\tilde x_t)$ instead of $\Delta_t$.
  This is the registered variant: exact, with $\beta_tx_t$ from an upstream layer
  (:class:`.upstream.GatedCopy`) and the decay $\alpha_t = e^{A_h\,\mathrm{softplus}(W_a\tilde x_t)}$ as an E1
  channel (Mamba-2's parametrisation, $A_h = -e^{A_{\log,h}} < 0$): $H d_k(d_v+1)$ neurons.

Gated DeltaNet itself (with the erase term and L2-normalised $q, k$) is registered as a negative control,
``gated-deltanet`` (:class:`GatedDeltaNet`, $\alpha_t = \sigma(W_\alpha x_t)$, $\beta_t = \sigma(W_\beta
x_t)$): the tried construction is the no-erase one, and it rests on the certificate
``IMPOSSIBLE-GATED-DELTANET/v1`` (a witness line on which the exact reference has a non-zero fifth derivative,
so no template output, a polynomial of degree $\le 4$ there, equals it), whose hypotheses the prover checks on
this variant's own ``symbolic_reference``.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, check_projections, heads_qkv, randn
from .gla import _cast, _check_gate, _gate_logits, _sample_qkv
from .onestep import StepFeatures, decayed_la, recurrent_reference
from .plan import InputDecay, Plan
from .reference import la_parallel
from .reference import merge_heads
from .upstream import GatedCopy, HeadMap, Identity, Upstream, softplus

__all__ = ["GatedDeltaNetParams", "GatedDeltaNetNoErase", "GatedDeltaNetControlParams", "GatedDeltaNet"]


@dataclass(frozen=True)
class GatedDeltaNetParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, decay logits ``W_a [H, d+1]``, ``A_log [H]``
    ($A = -e^{A_{\log}}$), write-strength logits ``W_beta [H, d+1]`` ($\beta_t = \sigma(\cdot)$), ``W_O``."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_a: Tensor
    A_log: Tensor
    W_beta: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        H, _, _, d = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        _check_gate("W_a", self.W_a, (H, d + 1))
        _check_gate("W_beta", self.W_beta, (H, d + 1))
        require_tensor("A_log", self.A_log, allow_complex=False)
        if self.A_log.shape != (H,):
            raise ValueError(f"A_log must have shape [H] = {(H,)}; got {tuple(self.A_log.shape)}")
        require_finite("A_log", self.A_log)

    @property
    def A(self) -> Tensor:
        return -torch.exp(self.A_log)


class GatedDeltaNetNoErase(PlanVariant):
    r"""Gated DeltaNet with the erase term dropped: $S_t = \alpha_tS_{t-1} + \beta_tv_tk_t^\top$ (E1 +
    upstream)."""

    status = "exact"
    extensions = ("E1", "upstream")
    free_fields = ("W_Q", "W_K", "W_V", "W_a", "W_beta", "W_O")
    source = (
        "Yang, Kautz & Hatamizadeh 2025 (Gated Delta Networks), Eq. 10 without the erase term "
        "-beta S k k^T (= Mamba-2 gating, Dao & Gu 2024, with input scale beta_t)"
    )
    oracle = (
        "fla.ops.simple_gla.naive.naive_recurrent_simple_gla with v = beta*v, g = log alpha; "
        "fla.ops.gated_delta_rule.naive.naive_recurrent_gated_delta_rule agrees at T = 1 and at beta = 0 only"
    )
    description = (
        "Gated DeltaNet without the erase term: decay alpha_t = exp(A softplus(w_a.[x;1])) per head (E1), "
        "beta_t x_t from an upstream layer (beta = sigmoid); H*d_k*(d_v+1) neurons."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, **_
    ):
        W_Q, W_K, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        W_a = randn(generator, heads, d + 1, scale=d**-0.5)
        W_a[:, -1] -= 1.0
        A_log = torch.rand(heads, generator=generator, dtype=torch.float64) * 2 - 1
        W_beta = randn(generator, heads, d + 1, scale=d**-0.5)
        return GatedDeltaNetParams(
            *_cast(dtype, W_Q, W_K, W_V, W_a, A_log, W_beta), W_O=None if W_O is None else W_O.to(dtype)
        )

    def gates(self, params: GatedDeltaNetParams, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""$\alpha_t$ and $\beta_t$ ``[B, H, T]`` (float64)."""
        alpha = torch.exp(params.A.to(torch.float64)[None, :, None] * softplus(_gate_logits(x, params.W_a)))
        return alpha, torch.sigmoid(_gate_logits(x, params.W_beta))

    def _step(self, params: GatedDeltaNetParams, x_t: Tensor) -> StepFeatures:
        x1 = x_t.to(torch.float64)[:, None]
        q, k, v = (t[:, :, 0] for t in heads_qkv(x1, params.W_Q, params.W_K, params.W_V))
        alpha, beta = (t[:, :, 0] for t in self.gates(params, x1))
        return StepFeatures(q, k, beta[..., None] * v, alpha)

    def recurrence(self, params: GatedDeltaNetParams):
        """One-step form (float64): $S\\leftarrow\\alpha_tS + \\beta_tv_tk_t^\\top$, readout $W_O[Sq_t]_h$."""
        H, d_k, _ = params.W_Q.shape
        return decayed_la(lambda x_t: self._step(params, x_t), H, d_k, params.W_V.shape[1], params.W_O)

    #: step by step (float64): ``run_recurrence(recurrence(params), x)`` after ``_check``
    reference = recurrent_reference

    def reference_parallel(self, params: GatedDeltaNetParams, x):
        x = self._check(params, x).to(torch.float64)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        alpha, beta = self.gates(params, x)
        return self._merge(params, la_parallel(q, k, beta[..., None] * v, alpha))

    def plan(self, params: GatedDeltaNetParams) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        dt, dev = params.W_Q.dtype, params.W_Q.device
        up = Upstream(
            d, [Identity(d), GatedCopy(params.W_beta, "sigmoid")]
        )  # z = [x; beta_h x for each head]
        dz = up.width
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(H, d_v, dz + 1, dtype=dt, device=dev)
        Wq[:, :, :d] = params.W_Q
        Wk[:, :, :d] = params.W_K
        for h in range(H):
            Wv[h, :, d + h * d : d + (h + 1) * d] = params.W_V[h]  # v = W_V (beta_h x)
        Wdec = torch.zeros(H, dz + 1, dtype=dt, device=dev)
        Wdec[:, :d] = -params.W_a[:, :-1]
        Wdec[:, dz] = -params.W_a[:, -1]  # exp(-A logsigmoid(-w.x~)) = exp(A softplus(w.x~))
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wdec, scale=-params.A))


@dataclass(frozen=True)
class GatedDeltaNetControlParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, gate weights ``W_alpha, W_beta [H, d]``
    ($\alpha_t = \sigma(W_\alpha x_t)$, $\beta_t = \sigma(W_\beta x_t)$), ``W_O`` or ``None``: the fields
    of the certificate ``IMPOSSIBLE-GATED-DELTANET/v1``."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_alpha: Tensor
    W_beta: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        H, _, _, d = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        _check_gate("W_alpha", self.W_alpha, (H, d))
        _check_gate("W_beta", self.W_beta, (H, d))


def _l2(t: Tensor) -> Tensor:
    n = t.norm(dim=-1, keepdim=True)
    return torch.where(n > 0, t / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(t))


class GatedDeltaNet(PlanVariant):
    r"""Gated DeltaNet (negative control): the tried construction drops the erase term; must be refuted."""

    status = "impossible"
    extensions = ("E1", "upstream")
    free_fields = ("W_Q", "W_K", "W_V", "W_alpha", "W_beta", "W_O")
    source = "Yang, Kautz & Hatamizadeh 2025 (Gated Delta Networks), Eq. 10, L2-normalised q, k"
    oracle = (
        "fla.ops.gated_delta_rule.naive.naive_recurrent_gated_delta_rule (SF, g = log alpha, fixed scale "
        "d_k^-1/2: pass q*sqrt(d_k))"
    )
    description = (
        "Negative control: Gated DeltaNet S_t = alpha_t S_{t-1}(I - beta_t k k^T) + beta_t v k^T with "
        "normalised q, k. Tried construction: the no-erase gated LSA (values beta_t v); must be refuted."
    )
    #: the impossibility certificate this control rests on
    impossibility_claim = "IMPOSSIBLE-GATED-DELTANET/v1"

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, **_
    ):
        W_Q, W_K, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        W_alpha = randn(generator, heads, d, scale=d**-0.5)
        W_beta = randn(generator, heads, d, scale=d**-0.5)
        return GatedDeltaNetControlParams(
            *_cast(dtype, W_Q, W_K, W_V, W_alpha, W_beta), W_O=None if W_O is None else W_O.to(dtype)
        )

    def _parts(self, params, x):
        x = x.to(torch.float64)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        alpha = torch.sigmoid(torch.einsum("btd,hd->bht", x, params.W_alpha.to(torch.float64)))
        beta = torch.sigmoid(torch.einsum("btd,hd->bht", x, params.W_beta.to(torch.float64)))
        return _l2(q), _l2(k), v, alpha, beta

    def reference(self, params: GatedDeltaNetControlParams, x):
        r"""The gated delta rule step by step (float64): $S_t = \alpha_tS_{t-1}(I-\beta_t\hat k\hat k^\top) +
        \beta_tv\hat k^\top$."""
        x = self._check(params, x)
        q, k, v, alpha, beta = self._parts(params, x)
        B, H, T, d_k = q.shape
        S = torch.zeros(B, H, v.shape[-1], d_k, dtype=torch.float64)
        out = []
        for t in range(T):
            kt, a, b = k[:, :, t], alpha[:, :, t, None, None], beta[:, :, t, None, None]
            S = (
                a * (S - b * (S @ kt[..., None]) * kt[..., None, :])
                + b * v[:, :, t, :, None] * kt[..., None, :]
            )
            out.append((S @ q[:, :, t, :, None])[..., 0])
        o = torch.stack(out, dim=2) if out else v.new_zeros(B, H, 0, v.shape[-1])
        return merge_heads(o, params.W_O)

    def magnitude(self, params: GatedDeltaNetControlParams, x):
        r"""Normwise $M_t = \sum_{s\le t}\beta_s\|v_s\|$ per output row, then $|W_O|$ (derived: $\|\hat q\|,
        \|\hat k\|\le 1$, $\alpha, \beta\in(0,1)$, so every $\alpha(I - \beta\hat k\hat k^\top)$ has norm
        $\le 1$)."""
        _, k, v, _, beta = self._parts(params, x.detach().to("cpu"))
        S = torch.cumsum(beta * v.norm(dim=-1), dim=-1)
        o = S[..., None].expand(*S.shape, v.shape[-1])
        return merge_heads(
            o, None if params.W_O is None else params.W_O.detach().to("cpu", torch.float64).abs()
        )

    def plan(self, params: GatedDeltaNetControlParams) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        dt, dev = params.W_Q.dtype, params.W_Q.device
        wb = torch.cat([params.W_beta, torch.zeros(H, 1, dtype=dt, device=dev)], dim=1)
        up = Upstream(
            d,
            [
                Identity(d),
                HeadMap(params.W_K, "l2norm"),
                HeadMap(params.W_Q, "l2norm"),
                GatedCopy(wb, "sigmoid"),
            ],
        )
        dz = up.width
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(H, d_v, dz + 1, dtype=dt, device=dev)
        j = torch.arange(d_k, device=dev)
        off = d + 2 * H * d_k
        for h in range(H):
            Wk[h, j, d + h * d_k + j] = 1
            Wq[h, j, d + H * d_k + h * d_k + j] = 1
            Wv[h, :, off + h * d : off + (h + 1) * d] = params.W_V[h]  # v = W_V (beta_h x)
        Wdec = torch.cat([params.W_alpha, torch.zeros(H, dz + 1 - d, dtype=dt, device=dev)], dim=1)
        return Plan(
            Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wdec)
        )  # exp(logsigmoid(.)) = sigmoid

    def symbolic_reference(self, W_Q, W_K, W_V, W_alpha, W_beta, W_O, x):
        r"""Gated DeltaNet exactly on object arrays (SymPy ``sqrt``, ``exp``): as :meth:`reference`."""
        import numpy as np  # lazy: NumPy/SymPy only for the prover's exact hooks
        import sympy as sp  # lazy: NumPy/SymPy only for the prover's exact hooks

        def l2(u):
            n2 = sum(c * c for c in u)
            return (
                np.zeros(len(u), dtype=object)
                if n2 == 0
                else np.array([c / sp.sqrt(n2) for c in u], dtype=object)
            )

        def sig(u):
            return 1 / (1 + sp.exp(-u))

        H, d_k = W_Q.shape[:2]
        outs = []
        for h in range(H):
            S = np.zeros((W_V.shape[1], d_k), dtype=object)
            rows = []
            for xt in x:
                q, k, v = l2(W_Q[h] @ xt), l2(W_K[h] @ xt), W_V[h] @ xt
                a, b = sig(W_alpha[h] @ xt), sig(W_beta[h] @ xt)
                S = a * (S - b * np.outer(S @ k, k)) + b * np.outer(v, k)
                rows.append(S @ q)
            outs.append(np.array(rows, dtype=object).reshape(len(x), -1))
        y = np.concatenate(outs, axis=1)
        return y if W_O is None else np.array([W_O @ r for r in y], dtype=object)


register("gated-deltanet-no-erase")(GatedDeltaNetNoErase)
register("gated-deltanet")(GatedDeltaNet)
