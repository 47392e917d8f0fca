r"""Lightning attention (TransNormerLLM's linear attention with fixed per-head decay): exact, constant
$\lambda$.

Qin et al. 2024 (*Lightning Attention-2*; TransNormerLLM, Sec. 3.1): per head
$S_t = \gamma_h S_{t-1} + v_tk_t^\top$, $o_t = S_tq_t$ with the ALiBi-like fixed decay rate of fla's
``chunk_lightning_attn``,

$$ \log\gamma_h = -\frac{8}{H}\Big(1 - \frac{\ell}{L}\Big)\,h,\qquad h = 0,\dots,H-1 $$

($\ell$ the layer index, $L$ the number of layers; head 0 does not decay). It is retention
(:mod:`.retention`) with these $\gamma_h$: the direct construction with ``kv[h,i,j]`` at
$\lambda = \gamma_h$, $H d_k(d_v+1)$ neurons, no extension of the paper's template (constant $\lambda$).
The normalisation (SRMSNorm) after the op is left out.
"""

import torch

from ..registry import register
from .onestep import StepFeatures, decayed_la, recurrent_reference
from .retention import Retention, RetentionParams

__all__ = ["LightningAttention", "lightning_gammas"]


def lightning_gammas(H: int, layer_idx: int = 0, num_layers: int = 1) -> torch.Tensor:
    r"""$\gamma_h = \exp(-\tfrac8H(1-\ell/L)h)$ (fla ``chunk_lightning_attn``'s ``g_gamma``), float64
    ``[H]``."""
    if not (isinstance(layer_idx, int) and isinstance(num_layers, int) and 0 <= layer_idx < num_layers):
        raise ValueError(
            f"need integers 0 <= layer_idx < num_layers; got layer_idx={layer_idx!r}, "
            f"num_layers={num_layers!r}"
        )
    return torch.exp(-(8 / H * (1 - layer_idx / num_layers)) * torch.arange(H, dtype=torch.float64))


class LightningAttention(Retention):
    r"""Lightning attention: retention with $\log\gamma_h = -\tfrac8H(1-\ell/L)h$ (constant $\lambda$)."""

    status = "exact"
    source = (
        "Qin et al. 2024 (Lightning Attention-2; TransNormerLLM Sec. 3.1), decay of fla chunk_lightning_attn"
    )
    oracle = (
        "fla.ops.simple_gla.naive.naive_recurrent_simple_gla with constant g = log gamma_h (fla's "
        "lightning_attn has no naive reference; its chunk kernel is simple GLA with g_gamma)"
    )
    description = (
        "Lightning attention: fixed per-head decay gamma_h = exp(-(8/H)(1 - l/L) h): direct construction "
        "with kv[h,i,j] at lambda = gamma_h, q[h,j] at 0; H*d_k*(d_v+1) neurons."
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
        layer_idx=0,
        num_layers=2,
        gamma=None,
    ):
        """Gaussian projections ($d^{-1/2}$) and Lightning's decays for layer ``layer_idx`` of
        ``num_layers``."""
        g = lightning_gammas(heads, layer_idx, num_layers) if gamma is None else gamma
        return Retention.sample_params(
            self, d, heads, generator=generator, dtype=dtype, d_k=d_k, d_v=d_v, d_out=d_out, gamma=g
        )

    def recurrence(self, params: RetentionParams):
        """One-step form (float64): $S \\leftarrow \\gamma_h S + v_tk_t^\\top$, readout $W_O[S q_t]_h$."""
        H, d_k = params.W_Q.shape[:2]

        def features(x_t):
            q, k, v = (
                torch.einsum("bd,hrd->bhr", x_t.to(torch.float64), W.to(torch.float64))
                for W in (params.W_Q, params.W_K, params.W_V)
            )
            return StepFeatures(q, k, v, params.gamma.to(torch.float64)[None].expand(x_t.shape[0], H))

        return decayed_la(features, H, d_k, params.W_V.shape[1], params.W_O)

    def _check(self, params: RetentionParams, x):
        x = super()._check(params, x)
        if params.theta is not None:
            raise ValueError(
                "lightning attention has real decays; params with theta belong to 'retention-complex'"
            )
        return x

    #: step by step (float64): ``run_recurrence(recurrence(params), x)`` after ``_check``
    reference = recurrent_reference


register("lightning-attention")(LightningAttention)
