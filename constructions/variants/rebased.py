r"""ReBased: linear attention with the squared kernel $(q^\top k)^2$, exact given quadratic key features.

Aksenov et al. 2024 (*Linear Transformers with Learnable Kernel Functions are Better In-Context Models*),
the kernel of fla's ``naive_parallel_rebased`` without normalisation (``use_norm=False``, ``scale=1``):

$$ o_t = \sum_{s\le t}(q_t^\top k_s)^2\,v_s = \sum_{s\le t} v_s\,\phi_k(k_s)^\top\phi_q(q_t),\qquad
   \phi_q(q) = [q_aq_b]_{a\le b},\ \phi_k(k) = [w_{ab}k_ak_b]_{a\le b},\ w_{aa} = 1,\ w_{ab} = 2. $$

**What one layer cannot do** (derived, as for Based, :mod:`.feature_maps`): the key side $k_ak_bv_i$ is cubic
in $x_s$ and the template's stored part is at most quadratic, so the key features come from an upstream
layer (:class:`.upstream.Quadratic`); then it is LSA on the features: $H K'(d_v+1)$ neurons with
$K' = d_k(d_k+1)/2$. ReBased's learnable affine normalisation of $q, k$ (LayerNorm-like, before the kernel)
is a non-polynomial per-step map: it belongs to the upstream layer too and is not part of the op.
With ``use_norm=True`` the output is divided by $\sum_s(q_t^\top k_s)^2$: *partial*, like
normalised linear attention (``docs/variants/normalized.md``).
"""

import torch

from ..registry import register
from .family import PlanVariant, heads_qkv
from .feature_maps import FeatureMapParams, _sample, feature_plan
from .onestep import StepFeatures, decayed_la, run_recurrence
from .plan import Plan
from .upstream import Quadratic

__all__ = ["Rebased"]


class Rebased(PlanVariant):
    r"""ReBased's kernel $(q^\top k)^2$, unnormalised; exact given $k\otimes k$ features from upstream."""

    status = "exact"
    extensions = ("upstream",)
    source = (
        "Aksenov et al. 2024 (ReBased: Linear Transformers with Learnable Kernel Functions), kernel "
        "(q.k)^2 without normalisation"
    )
    oracle = "fla.ops.rebased.naive.naive_parallel_rebased (HF, scale=1.0, use_norm=False)"
    description = (
        "ReBased (kernel (q.k)^2, unnormalised): key features w_ab k_a k_b from an upstream layer, query "
        "features q_a q_b; H*K'*(d_v+1) neurons, K' = d_k(d_k+1)/2."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, **_
    ):
        """Default ``d_k = min(d, 4)`` (ReBased uses a small feature dimension)."""
        return _sample(generator, d, heads, min(d, 4) if d_k is None else d_k, d_v, d_out, dtype)

    def recurrence(self, params: FeatureMapParams):
        """One-step form (float64) on the quadratic features: $S\\leftarrow S + v_t\\phi_k(k_t)^\\top$,
        readout $S\\phi_q(q_t)$."""
        fk = Quadratic(params.W_K.to(torch.float64), "key")
        fq = Quadratic(params.W_Q.to(torch.float64), "query")
        H, d_k, _ = params.W_Q.shape

        def features(x_t):
            x1 = x_t.to(torch.float64)[:, None]
            v = torch.einsum("bd,hrd->bhr", x_t.to(torch.float64), params.W_V.to(torch.float64))
            B = x_t.shape[0]
            return StepFeatures(fq(x1).reshape(B, H, -1), fk(x1).reshape(B, H, -1), v)

        return decayed_la(features, H, d_k * (d_k + 1) // 2, params.W_V.shape[1], params.W_O)

    def reference(self, params: FeatureMapParams, x):
        """Parallel form (float64): $o_t = \\sum_{s\\le t}(q_t^\\top k_s)^2 v_s$ (fla's form)."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        s = q @ k.transpose(-1, -2)
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        return self._merge(params, (s * s).masked_fill(~causal, 0) @ v)

    def reference_recurrent(self, params: FeatureMapParams, x):
        """``run_recurrence(recurrence(params), x)`` (independent of :meth:`reference`)."""
        x = self._check(params, x)
        return run_recurrence(self.recurrence(params), x.to(torch.float64))

    def num_features(self, params: FeatureMapParams) -> int:
        d_k = params.W_Q.shape[1]
        return d_k * (d_k + 1) // 2

    def plan(self, params: FeatureMapParams) -> Plan:
        return feature_plan(
            params.W_V, params.W_O, Quadratic(params.W_K, "key"), Quadratic(params.W_Q, "query")
        )


register("rebased")(Rebased)
