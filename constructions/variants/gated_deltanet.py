r"""Gated DeltaNet without its erase term: Mamba-2's gating with input scale $\beta_t$ — exact (E1 + upstream).

Yang, Kautz & Hatamizadeh 2025 (*Gated Delta Networks*, Eq. 10; fla ``naive_recurrent_gated_delta_rule``):

$$ S_t = \alpha_t\,S_{t-1}\big(I - \beta_tk_tk_t^\top\big) + \beta_t\,v_tk_t^\top,\qquad o_t = S_tq_t. $$

Two reductions (derived):

- $\beta_t = 0$ literally: nothing is erased and nothing is written, $S_t = \alpha_tS_{t-1} = 0$, the output is
  identically 0 (fla's naive reference agrees; a test checks it) — a degenerate case, not a layer;
- **no erase** (the delta correction $-\beta_tS_{t-1}k_tk_t^\top$ set to 0, i.e. $\beta = 0$ in the erase only):
  $S_t = \alpha_tS_{t-1} + \beta_tv_tk_t^\top$, which is Mamba-2's gated update (Gated DeltaNet's
  Sec. 3 starting point) with the input scaled by $\beta_t = \sigma(W_\beta\tilde x_t)$ instead of $\Delta_t$.
  This is the registered variant: exact, with $\beta_tx_t$ from an upstream layer
  (:class:`.upstream.GatedCopy`) and the decay $\alpha_t = e^{A_h\,\mathrm{softplus}(W_a\tilde x_t)}$ as an E1
  channel (Mamba-2's parametrisation, $A_h = -e^{A_{\log,h}} < 0$): $H d_k(d_v+1)$ neurons.

Gated DeltaNet itself (with the erase term) is the delta rule with a gate: its products of
$(I - \beta k k^\top)$ are the DeltaNet negative control's obstruction (``docs/variants/negative-controls.md``).
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, check_projections, heads_qkv, randn
from .gla import _cast, _check_gate, _gate_logits, _sample_qkv
from .onestep import StepFeatures, decayed_la, run_recurrence
from .plan import Plan
from .reference import la_parallel
from .upstream import GatedCopy, Identity, Upstream, softplus

__all__ = ["GatedDeltaNetParams", "GatedDeltaNetNoErase"]


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
    r"""Gated DeltaNet with the erase term dropped: $S_t = \alpha_tS_{t-1} + \beta_tv_tk_t^\top$ (E1 + upstream)."""

    status = "exact"
    extensions = ("E1", "upstream")
    free_fields = ("W_Q", "W_K", "W_V", "W_a", "W_beta", "W_O")
    source = ("Yang, Kautz & Hatamizadeh 2025 (Gated Delta Networks), Eq. 10 without the erase term "
              "-beta S k k^T (= Mamba-2 gating, Dao & Gu 2024, with input scale beta_t)")
    oracle = ("fla.ops.simple_gla.naive.naive_recurrent_simple_gla with v = beta*v, g = log alpha; "
              "fla.ops.gated_delta_rule.naive.naive_recurrent_gated_delta_rule agrees at T = 1 and at beta = 0 only")
    description = ("Gated DeltaNet without the erase term: decay alpha_t = exp(A softplus(w_a.[x;1])) per head (E1), "
                   "beta_t x_t from an upstream layer (beta = sigmoid); H*d_k*(d_v+1) neurons.")

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, **_):
        W_Q, W_K, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        W_a = randn(generator, heads, d + 1, scale=d ** -0.5)
        W_a[:, -1] -= 1.0
        A_log = torch.rand(heads, generator=generator, dtype=torch.float64) * 2 - 1
        W_beta = randn(generator, heads, d + 1, scale=d ** -0.5)
        return GatedDeltaNetParams(*_cast(dtype, W_Q, W_K, W_V, W_a, A_log, W_beta),
                                   W_O=None if W_O is None else W_O.to(dtype))

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

    def reference(self, params: GatedDeltaNetParams, x):
        """Step by step (float64): ``run_recurrence(recurrence(params), x)``."""
        x = self._check(params, x)
        return run_recurrence(self.recurrence(params), x.to(torch.float64))

    def reference_parallel(self, params: GatedDeltaNetParams, x):
        x = self._check(params, x).to(torch.float64)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        alpha, beta = self.gates(params, x)
        return self._merge(params, la_parallel(q, k, beta[..., None] * v, alpha))

    def plan(self, params: GatedDeltaNetParams) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        dt, dev = params.W_Q.dtype, params.W_Q.device
        up = Upstream(d, [Identity(d), GatedCopy(params.W_beta, "sigmoid")])  # z = [x; beta_h x for each head]
        dz = up.width
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(H, d_v, dz + 1, dtype=dt, device=dev)
        Wq[:, :, :d] = params.W_Q
        Wk[:, :, :d] = params.W_K
        for h in range(H):
            Wv[h, :, d + h * d: d + (h + 1) * d] = params.W_V[h]  # v = W_V (beta_h x)
        Wdec = torch.zeros(H, dz + 1, dtype=dt, device=dev)
        Wdec[:, :d] = -params.W_a[:, :-1]
        Wdec[:, dz] = -params.W_a[:, -1]  # exp(-A logsigmoid(-w.x~)) = exp(A softplus(w.x~))
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay_W=Wdec, decay_scale=-params.A)


register("gated-deltanet-no-erase")(GatedDeltaNetNoErase)
