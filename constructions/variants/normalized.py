r"""Normalised linear attention and mLSTM: **partial** — numerator and denominator fit the template, the
division does not.

Normalised linear attention (Katharopoulos et al. 2020, Eq. 6):

$$ y_t = \frac{S_t\,\phi(q_t)}{z_t^\top\phi(q_t)}, \qquad S_t = \sum_{s\le t} v_s\phi(k_s)^\top,\quad z_t =
\sum_{s\le t}\phi(k_s). $$

mLSTM (Beck et al. 2024, *xLSTM*, Sec. 2.3), per head, $i_t = e^{\tilde\imath_t}$, $f_t = \sigma(\tilde f_t)$:

$$ C_t = f_tC_{t-1} + i_t v_tk_t^\top,\quad n_t = f_tn_{t-1} + i_tk_t,\quad
   \tilde h_t = \frac{C_tq_t}{\max(|n_t^\top q_t|, 1)} $$

(its stabiliser $m_t$ is an exact reparametrisation: :meth:`MLSTM.layer` implements the stabilised form, and
a test checks it equals the unstabilised one). Input-gate pre-activations are soft-capped,
$\tilde\imath \mapsto c\tanh(\tilde\imath/c)$ with $c = 15$ by default (xLSTM 7B caps gate pre-activations;
*to
check*), which keeps $e^{\tilde\imath}$ finite in float32; ``cap=None`` removes it. The output gate
$\sigma(W_ox)\odot\tilde h$ and the key scale $d_k^{-1/2}$ (fold it into ``W_K``) are left out.

**What is reachable, exactly** (derived): append a value row equal to 1, $v' = [v; 1]$: the memory's last row
accumulates exactly the normaliser ($z_t$, resp. $n_t$). So one template layer (with upstream features for
$\phi$, resp. $e^{\tilde\imath_t}x_t$, and the input-dependent decay $f_t$) outputs, per head, the numerator
and the denominator, $[S_t\phi(q_t);\ z_t^\top\phi(q_t)]$, with $H K'(d_v + 2)$ neurons. ``reference`` returns
these reachable quantities and ``construct`` realises them (so the numeric check compares them); the division
($y = \text{num}/\text{den}$, resp. $/\max(|\text{den}|, 1)$) is :meth:`finish`, outside the template: a gated
RNN's readout is polynomial in its state, and $1/\text{den}$ is not.
"""

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, affine, check_projections, heads_qkv, randn
from .feature_maps import FeatureMapParams, feature_plan, phi_qkv
from .gla import _gate_logits
from .plan import InputDecay, Plan
from .reference import la_parallel, la_recurrent, merge_heads
from .upstream import GatedCopy, HeadMap, Identity, Upstream

__all__ = ["NormalizedLAParams", "MLSTMParams", "NormalizedLinearAttention", "MLSTM"]


def _split(y: Tensor, H: int) -> tuple[Tensor, Tensor]:
    """``[B, T, H*(d_v+1)]`` (per head: numerator then denominator) -> ``num [B, H, T, d_v]``, ``den [B, H, T,
    1]``."""
    B, T, w = y.shape
    y = y.reshape(B, T, H, w // H).transpose(1, 2)
    return y[..., :-1], y[..., -1:]


class NormalizedLAParams(FeatureMapParams):
    """``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, ``W_O`` or ``None``, ``feature_map`` (``"elu+1"``,
    ``"relu"``, ``"identity"``): the fields and checks of :class:`FeatureMapParams`."""


class _Partial(PlanVariant):
    status = "partial"

    def finish(self, params, y_reachable: Tensor) -> Tensor:
        """The step outside the template: divide numerator by denominator, then apply ``W_O``."""
        raise NotImplementedError

    def layer(self, params, x: Tensor) -> Tensor:
        """The full layer (division included), implemented independently of :meth:`reference`."""
        raise NotImplementedError


class NormalizedLinearAttention(_Partial):
    r"""Normalised (feature-map) linear attention: partial (numerator and denominator reachable)."""

    extensions = ("upstream",)
    partial_reason = (
        "numerator S_t phi(q_t) and denominator z_t^T phi(q_t) are both reachable exactly (one extra "
        "value row of ones accumulates z_t); the division is not in the template (its readout is "
        "polynomial in the state): reference/construct compare [numerator; denominator] per head, "
        "finish() divides"
    )
    source = "Katharopoulos et al. 2020 (Transformers are RNNs), Eq. 6 (normalised linear attention)"
    oracle = (
        "fla.ops.linear_attn.naive.naive_recurrent_linear_attn(..., scale=1.0, normalize=True) (after finish)"
    )
    description = (
        "Normalised linear attention: reachable numerator and denominator per head "
        "[S_t phi(q_t); z_t^T phi(q_t)], H*d_k*(d_v+2) neurons; the division is outside the template."
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
        d_k = d if d_k is None else d_k
        d_v = d if d_v is None else d_v
        s = d**-0.5
        W_O = randn(generator, d_out, heads * d_v, scale=s).to(dtype) if d_out else None
        return NormalizedLAParams(
            randn(generator, heads, d_k, d, scale=s).to(dtype),
            randn(generator, heads, d_k, d, scale=s).to(dtype),
            randn(generator, heads, d_v, d, scale=s).to(dtype),
            W_O,
            feature_map,
        )

    def reference(self, params: NormalizedLAParams, x):
        """Reachable quantities (float64, recurrent): per head $[S_t\\phi(q_t);\\ z_t^\\top\\phi(q_t)]$, ``[B,
        T, H(d_v+1)]``."""
        x = self._check(params, x)
        q, k, v = phi_qkv(params, x)
        out = la_recurrent(q, k, torch.cat([v, torch.ones_like(v[..., :1])], dim=-1))
        return merge_heads(out, None)

    def finish(self, params: NormalizedLAParams, y_reachable: Tensor) -> Tensor:
        num, den = _split(y_reachable, params.W_Q.shape[0])
        return merge_heads(num / den, params.W_O)

    def layer(self, params: NormalizedLAParams, x):
        """Parallel form $y = (A V) / (A\\mathbf 1)$, $A = \\mathrm{tril}(\\phi(Q)\\phi(K)^\\top)$
        (float64)."""
        x = self._check(params, x)
        q, k, v = phi_qkv(params, x)
        num = la_parallel(q, k, v)
        den = la_parallel(q, k, torch.ones_like(v[..., :1]))
        return merge_heads(num / den, params.W_O)

    def plan(self, params: NormalizedLAParams) -> Plan:
        if params.feature_map == "identity":  # no upstream layer needed: one template layer
            H, d_v, d = params.W_V.shape
            ones = torch.zeros(H, 1, d + 1, dtype=params.W_V.dtype, device=params.W_V.device)
            ones[..., d] = 1
            return Plan(
                affine(params.W_Q), affine(params.W_K), torch.cat([affine(params.W_V), ones], 1), None
            )
        fm = params.feature_map
        return feature_plan(
            params.W_V, None, HeadMap(params.W_K, fm), HeadMap(params.W_Q, fm), value_ones=True
        )


@dataclass(frozen=True)
class MLSTMParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, input/forget gate logits ``w_i, w_f [H, d+1]``,
    ``W_O``, input-gate soft-cap ``cap`` (``None``: off)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    w_i: Tensor
    w_f: Tensor
    W_O: Tensor | None = None
    cap: float | None = 15.0

    def __post_init__(self):
        H, _, _, d = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        for name, w in (("w_i", self.w_i), ("w_f", self.w_f)):
            require_tensor(name, w, allow_complex=False)
            if w.shape != (H, d + 1):
                raise ValueError(f"{name} must have shape [H, d+1] = {(H, d + 1)}; got {tuple(w.shape)}")
            require_finite(name, w)
        if self.cap is not None and not (isinstance(self.cap, (int, float)) and 0 < self.cap < 80):
            raise ValueError(
                f"cap must be None or a number in (0, 80) (exp(cap) must stay finite in float32); "
                f"got {self.cap!r}"
            )


class MLSTM(_Partial):
    r"""mLSTM (xLSTM's matrix memory): partial (numerator $C_tq_t$ and denominator $n_t^\top q_t$
    reachable)."""

    extensions = ("input-dependent-decay", "upstream")
    free_fields = ("W_Q", "W_K", "W_V", "W_O", "w_i", "w_f")
    partial_reason = (
        "numerator C_t q_t and denominator n_t^T q_t are reachable exactly (forget gate: input-dependent "
        "decay; input gate e^{i_t} x_t: upstream feature; n_t: a value row of ones); the division by "
        "max(|n_t^T q_t|, 1) is not in the template"
    )
    source = (
        "Beck et al. 2024 (xLSTM), Sec. 2.3, mLSTM recurrence with exponential input gate and sigmoid forget "
        "gate"
    )
    oracle = "none: mLSTM is not in fla-core 0.6.0 (NX-AI mlstm_kernels has one; not used)"
    description = (
        "mLSTM: reachable numerator C_t q_t and denominator n_t^T q_t per head with forget gate as "
        "input-dependent decay and e^{i_t} x_t upstream; H*d_k*(d_v+2) neurons; the max(|.|, 1) division is "
        "outside."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, cap=15.0
    ):
        d_k = d if d_k is None else d_k
        d_v = d if d_v is None else d_v
        s = d**-0.5
        W_O = randn(generator, d_out, heads * d_v, scale=s).to(dtype) if d_out else None
        w_i, w_f = randn(generator, heads, d + 1, scale=s), randn(generator, heads, d + 1, scale=s)
        w_f[:, -1] += 3.0
        return MLSTMParams(
            *(
                t.to(dtype)
                for t in (
                    randn(generator, heads, d_k, d, scale=s),
                    randn(generator, heads, d_k, d, scale=s),
                    randn(generator, heads, d_v, d, scale=s),
                    w_i,
                    w_f,
                )
            ),
            W_O,
            cap,
        )

    def _gates(self, params: MLSTMParams, x: Tensor) -> tuple[Tensor, Tensor]:
        """Log input gate $\\tilde\\imath_t$ (capped) and log forget gate $\\log\\sigma(\\tilde f_t)$, ``[B,
        H, T]``."""
        ig = _gate_logits(x, params.w_i)
        if params.cap is not None:
            ig = params.cap * torch.tanh(ig / params.cap)
        return ig, F.logsigmoid(_gate_logits(x, params.w_f))

    def reference(self, params: MLSTMParams, x):
        """Reachable quantities (float64, unstabilised recurrence): per head $[C_tq_t;\\ n_t^\\top q_t]$."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        log_i, log_f = self._gates(params, x)
        k = torch.exp(log_i)[..., None] * k
        out = la_recurrent(q, k, torch.cat([v, torch.ones_like(v[..., :1])], dim=-1), torch.exp(log_f))
        return merge_heads(out, None)

    def finish(self, params: MLSTMParams, y_reachable: Tensor) -> Tensor:
        num, den = _split(y_reachable, params.W_Q.shape[0])
        return merge_heads(num / den.abs().clamp(min=1.0), params.W_O)

    def layer(self, params: MLSTMParams, x):
        """The stabilised mLSTM (xLSTM Sec. 2.3: $m_t = \\max(\\log f_t + m_{t-1}, \\tilde\\imath_t)$, states
        scaled by $e^{-m_t}$, $\\tilde h_t = \\tilde C_tq_t/\\max(|\\tilde n_t^\\top q_t|, e^{-m_t})$),
        float64."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        log_i, log_f = self._gates(params, x)
        B, H, T, d_k = q.shape
        C = q.new_zeros(B, H, v.shape[-1], d_k)
        n = q.new_zeros(B, H, d_k)
        m = q.new_zeros(B, H)
        out = []
        for t in range(T):
            m_new = torch.maximum(log_f[..., t] + m, log_i[..., t])
            fp = torch.exp(log_f[..., t] + m - m_new)
            ip = torch.exp(log_i[..., t] - m_new)
            C = fp[..., None, None] * C + ip[..., None, None] * v[:, :, t, :, None] * k[:, :, t, None, :]
            n = fp[..., None] * n + ip[..., None] * k[:, :, t]
            m = m_new
            qt = q[:, :, t]
            den = torch.maximum((n * qt).sum(-1).abs(), torch.exp(-m))
            out.append((C @ qt[..., None])[..., 0] / den[..., None])
        o = torch.stack(out, dim=2) if out else v.new_zeros(B, H, 0, v.shape[-1])
        return merge_heads(o, params.W_O)

    def plan(self, params: MLSTMParams) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        dt, dev = params.W_Q.dtype, params.W_Q.device
        up = Upstream(
            d, [Identity(d), GatedCopy(params.w_i, "exp", params.cap)]
        )  # z = [x; e^{i_h} x per head]
        dz = d + H * d
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(H, d_v + 1, dz + 1, dtype=dt, device=dev)
        Wq[:, :, :d] = params.W_Q
        for h in range(H):
            Wk[h, :, d + h * d : d + (h + 1) * d] = params.W_K[h]  # k' = e^{i_h} W_K x
        Wv[:, :d_v, :d] = params.W_V
        Wv[:, d_v, dz] = 1  # the normaliser row
        Wf = torch.zeros(H, dz + 1, dtype=dt, device=dev)
        Wf[:, :d], Wf[:, dz] = params.w_f[:, :-1], params.w_f[:, -1]
        return Plan(Wq, Wk, Wv, None, upstream=up, decay=InputDecay(Wf))


register("normalized-linear-attention")(NormalizedLinearAttention)
register("mlstm")(MLSTM)
