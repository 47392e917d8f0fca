r"""Feature-map linear attention (elu+1, ReLU) and Based (2nd-order Taylor): exact *given upstream features*.

$$ o_t = \sum_{s\le t} v_s\,\phi(k_s)^\top\phi(q_t) $$

(Katharopoulos et al. 2020, Eq. 4–6, unnormalised; $\phi(u) = \mathrm{elu}(u)+1$ there). Based (Arora et al.
2024) uses the kernel $1 + s + s^2/2$, $s = q^\top k$ (fla ``naive_parallel_based`` with ``use_norm=False``),
i.e. $\phi(u) = [1, u, \{u_au_b\}_{a\le b}]$ up to weights: feature width $K' = 1 + d_k + d_k(d_k+1)/2$.

**What one gated layer can and cannot do** (derived; ``docs/variants/feature-maps.md``). The template's input
gate multiplies two affine functions of $\tilde x_t$, and with constant $\lambda$ its output is a polynomial
of total degree $\le 4$ in $x_1..x_t$: degree $\le 2$ in $x_s$ for the stored part times degree $\le 2$ in
$x_t$. Hence, on its own, a layer realises feature maps that are affine on the key side (the constant 1 of
$\tilde x$ gives Based's zeroth order, $k$ its first order) and of degree $\le 2$ on the query side ($q_aq_b$
fits a $\lambda = 0$ neuron), but *not* Based's key-side $k_ak_bv_i$ (cubic in $x_s$: total degree 5) and no
non-polynomial $\phi$ (elu+1, ReLU, softmax/Hedgehog features): a polynomial cannot equal them on an open set.
Given $z_t = [x_t;\ \phi(k_t);\ \phi(q_t)]$ from an upstream layer the rest is LSA on $z$, exact, with $H
K'(d_v+1)$ neurons.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ..registry import register
from .family import PlanVariant, check_projections, heads_qkv, randn
from .plan import Plan
from .reference import la_parallel, la_recurrent
from .upstream import FEATURE_FNS, HeadMap, Identity, Taylor2, Upstream

__all__ = ["FeatureMapParams", "FeatureMapAttention", "Based", "feature_plan", "phi_qkv"]


@dataclass(frozen=True)
class FeatureMapParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, ``W_O`` or ``None``; ``feature_map``: ``"elu+1"``,
    ``"relu"`` or ``"identity"`` (ignored by Based, whose map is fixed)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor | None = None
    feature_map: str = "elu+1"

    def __post_init__(self):
        check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        if self.feature_map not in ("elu+1", "relu", "identity"):
            raise ValueError(f"feature_map must be 'elu+1', 'relu' or 'identity'; got {self.feature_map!r}")


def _sample(g, d, heads, d_k, d_v, d_out, dtype, **kw):
    d_k = d if d_k is None else d_k
    d_v = d if d_v is None else d_v
    s = d**-0.5
    W_O = randn(g, d_out, heads * d_v, scale=s).to(dtype) if d_out else None
    return FeatureMapParams(
        randn(g, heads, d_k, d, scale=s).to(dtype),
        randn(g, heads, d_k, d, scale=s).to(dtype),
        randn(g, heads, d_v, d, scale=s).to(dtype),
        W_O,
        **kw,
    )


def phi_qkv(params: FeatureMapParams, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Per-head $\phi(q), \phi(k), v$ ``[B, H, T, .]`` of ``params`` (its ``feature_map``) on ``x``."""
    q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
    phi = FEATURE_FNS[params.feature_map][0]
    return phi(q), phi(k), v


def feature_plan(
    W_V: Tensor,
    W_O: Tensor | None,
    key_block: torch.nn.Module,
    query_block: torch.nn.Module,
    value_ones: bool = False,
) -> Plan:
    r"""Plan of LSA on upstream features $z = [x;\ \phi_k(x);\ \phi_q(x)]$: per head, ``W_K`` selects head
    $h$'s block of $\phi_k$, ``W_Q`` of $\phi_q$, ``W_V`` applies $W^h_V$ to $x$. ``value_ones``: append a
    value row equal to 1 (its memory row accumulates $\sum_s\phi(k_s)$, the normaliser of
    :mod:`.normalized`)."""
    H, d_v, d = W_V.shape
    K = key_block.width // H
    up = Upstream(d, [Identity(d), key_block, query_block])
    dz = up.width
    dt, dev = W_V.dtype, W_V.device
    Wq = torch.zeros(H, K, dz + 1, dtype=dt, device=dev)
    Wk = torch.zeros_like(Wq)
    Wv = torch.zeros(H, d_v + int(value_ones), dz + 1, dtype=dt, device=dev)
    j = torch.arange(K, device=dev)
    for h in range(H):
        Wk[h, j, d + h * K + j] = 1
        Wq[h, j, d + H * K + h * K + j] = 1
        Wv[h, :d_v, :d] = W_V[h]
        if value_ones:
            Wv[h, d_v, dz] = 1
    return Plan(Wq, Wk, Wv, W_O, upstream=up)


class FeatureMapAttention(PlanVariant):
    r"""Unnormalised feature-map linear attention $o_t = \sum_s v_s\phi(k_s)^\top\phi(q_t)$ (elu+1 by
    default)."""

    status = "exact"
    extensions = ("upstream",)
    source = (
        "Katharopoulos et al. 2020 (Transformers are RNNs), Eq. 4-6 without the normaliser, phi = elu + 1"
    )
    oracle = (
        "fla.ops.linear_attn.naive.naive_recurrent_linear_attn on phi(q), phi(k) (scale=1.0, "
        "normalize=False; "
        "fla's layers apply the feature map before the op)"
    )
    description = (
        "Feature-map linear attention (elu+1; relu; identity): exact given phi(k), phi(q) from an "
        "upstream layer (not realisable by one template layer: non-polynomial); H*d_k*(d_v+1) neurons."
    )

    def sample_params(
        self,
        d,
        heads=1,
        *,
        generator,
        dtype=torch.float64,
        d_k=None,
        d_v=None,
        d_out=None,
        feature_map="elu+1",
    ):
        return _sample(generator, d, heads, d_k, d_v, d_out, dtype, feature_map=feature_map)

    def reference(self, params: FeatureMapParams, x):
        """Recurrent form (float64) on $\\phi(q), \\phi(k)$."""
        x = self._check(params, x)
        return self._merge(params, la_recurrent(*phi_qkv(params, x)))

    def reference_parallel(self, params: FeatureMapParams, x):
        x = self._check(params, x)
        return self._merge(params, la_parallel(*phi_qkv(params, x)))

    def plan(self, params: FeatureMapParams) -> Plan:
        fm = params.feature_map
        return feature_plan(params.W_V, params.W_O, HeadMap(params.W_K, fm), HeadMap(params.W_Q, fm))


class Based(PlanVariant):
    r"""Based's Taylor kernel $1 + q^\top k + (q^\top k)^2/2$, unnormalised; exact given $k\otimes k$ from
    upstream."""

    status = "exact"
    extensions = ("upstream",)
    source = "Arora et al. 2024 (Based), 2nd-order Taylor feature map of exp(q.k), without normalisation"
    oracle = "fla.ops.based.naive.naive_parallel_based (HF, scale=1.0, use_norm=False)"
    description = (
        "Based (Taylor kernel 1 + s + s^2/2, unnormalised): key features [1, k, k_a k_b] from an upstream "
        "layer (the cubic k_a k_b v_i is beyond one bilinear gate); H*K'*(d_v+1) neurons, "
        "K' = 1 + d_k + d_k(d_k+1)/2."
    )

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None):
        """Default ``d_k = min(d, 4)`` (Based uses a small feature dimension)."""
        return _sample(generator, d, heads, min(d, 4) if d_k is None else d_k, d_v, d_out, dtype)

    def reference(self, params: FeatureMapParams, x):
        """Parallel form (float64): $o_t = \\sum_{s\\le t}(1 + s_{ts} + s_{ts}^2/2)\\,v_s$, $s_{ts} =
        q_t^\\top k_s$."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        s = q @ k.transpose(-1, -2)
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        return self._merge(params, (1 + s + s * s / 2).masked_fill(~causal, 0) @ v)

    def reference_recurrent(self, params: FeatureMapParams, x):
        """Recurrent form on the Taylor features (independent of :meth:`reference`)."""
        x = self._check(params, x)
        v = heads_qkv(x, params.W_V, params.W_V, params.W_V)[2]
        fk = Taylor2(params.W_K.to(torch.float64), "key")(x.to(torch.float64))
        fq = Taylor2(params.W_Q.to(torch.float64), "query")(x.to(torch.float64))
        B, T, _ = x.shape
        H = params.W_Q.shape[0]
        fk = fk.reshape(B, T, H, -1).transpose(1, 2)
        fq = fq.reshape(B, T, H, -1).transpose(1, 2)
        return self._merge(params, la_recurrent(fq, fk, v))

    def num_features(self, params: FeatureMapParams) -> int:
        d_k = params.W_Q.shape[1]
        return 1 + d_k + d_k * (d_k + 1) // 2

    def plan(self, params: FeatureMapParams) -> Plan:
        return feature_plan(params.W_V, params.W_O, Taylor2(params.W_K, "key"), Taylor2(params.W_Q, "query"))


register("feature-map-attention")(FeatureMapAttention)
register("based")(Based)
