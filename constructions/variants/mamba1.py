r"""Mamba-1's selective SSM (S6) and its hidden attention: exact on the template (input-dependent decay + an
upstream $\Delta_tx_t$).

Gu & Dao 2023 (*Mamba*, Alg. 2, zero-order-hold discretisation with $\bar B\approx\Delta B$ as in the
reference ``selective_scan_ref``), per channel $c$ of the input $u_t = x_t\in\mathbb R^D$ and state index
$n\le N$:

$$ h_t[c,n] = e^{\Delta_{t,c}A_{c,n}}\,h_{t-1}[c,n] + \Delta_{t,c}B_{t,n}\,u_{t,c},\qquad
   y_{t,c} = \sum_n C_{t,n}h_t[c,n] + D_cu_{t,c}, $$

$\Delta_t = \mathrm{softplus}(W_\Delta\tilde x_t)$ (``[D]``; Mamba's low-rank ``dt_proj`` is a factored
$W_\Delta$), $B_t = W_Bx_t$, $C_t = W_Cx_t$ (``[N]``, shared by all channels), $A = -e^{A_{\log}}$ (``[D,
N]``, $<0$). Unrolled (Ali et al. 2024, *The Hidden Attention of Mamba Models*, Eq. 9–11) this is causal
attention per channel with the data-dependent matrix

$$ \alpha^{(c)}_{t,s} = \sum_n C_{t,n}\Big(\prod_{r=s+1}^{t}
e^{\Delta_{r,c}A_{c,n}}\Big)\Delta_{s,c}B_{s,n},\qquad
   y_{t,c} = \sum_{s\le t}\alpha^{(c)}_{t,s}u_{s,c} + D_cu_{t,c} $$

(:meth:`Mamba1.reference_parallel` computes exactly this).

**Construction** (derived): channel $c$ is a head with $d_k = N$ keys $B_t$, queries $C_t$ and one value
$v_{t,c} = \Delta_{t,c}u_{t,c}$. The factor $\Delta_{t,c}$ (a softplus) on the input is not bilinear, so
$\Delta_tx_t$ comes from an upstream layer (:class:`.upstream.GatedCopy`, as for Mamba-2); the decay of key
$n$ of head $c$ is the decay channel $e^{-A_{c,n}\log\sigma(-W_\Delta\tilde x_t)} = e^{\Delta_{t,c}A_{c,n}}$
(per key: $A$ differs per $n$, unlike Mamba-2's scalar). The skip $D_cu_{t,c}$ uses $D$ query-like neurons and
one constant neuron: $2DN + D + 1$ neurons. Mamba's conv1d, SiLU and the gate $z$ around the SSM are outside
the op (as in ``selective_scan_ref`` with ``z=None``).
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, randn
from .gla import _cast, _check_gate, _gate_logits
from .onestep import StepFeatures, decayed_la, recurrent_reference
from .plan import InputDecay, Plan, Skip
from .reference import la_parallel, merge_heads
from .upstream import GatedCopy, Identity, Upstream, softplus

__all__ = ["Mamba1Params", "Mamba1"]


@dataclass(frozen=True)
class Mamba1Params:
    r"""``W_B, W_C [N, D]`` (input-dependent $B_t$, $C_t$), step logits ``W_dt [D, D+1]``, ``A_log [D, N]``
    ($A = -e^{A_{\log}}$), skip ``D [D]``, output map ``W_O [d_out, D]`` or ``None``."""

    W_B: Tensor
    W_C: Tensor
    W_dt: Tensor
    A_log: Tensor
    D: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        for name in ("W_B", "W_C", "A_log"):
            t = getattr(self, name)
            require_tensor(name, t, allow_complex=False)
            if t.ndim != 2:
                raise ValueError(f"{name} must have 2 dimensions; got shape {tuple(t.shape)}")
            require_finite(name, t)
        N, Dm = self.W_B.shape
        if self.W_C.shape != (N, Dm):
            raise ValueError(
                f"W_C must have the shape of W_B {(N, Dm)} ([N, D]); got {tuple(self.W_C.shape)}"
            )
        _check_gate("W_dt", self.W_dt, (Dm, Dm + 1))
        if self.A_log.shape != (Dm, N):
            raise ValueError(f"A_log must have shape [D, N] = {(Dm, N)}; got {tuple(self.A_log.shape)}")
        require_tensor("D", self.D, allow_complex=False)
        if self.D.shape != (Dm,):
            raise ValueError(f"D must have shape [D] = {(Dm,)}; got {tuple(self.D.shape)}")
        require_finite("D", self.D)
        if self.W_O is not None:
            require_tensor("W_O", self.W_O, allow_complex=False)
            if self.W_O.ndim != 2 or self.W_O.shape[1] != Dm:
                raise ValueError(
                    f"W_O must have shape [d_out, D] = [d_out, {Dm}]; got {tuple(self.W_O.shape)}"
                )
            require_finite("W_O", self.W_O)

    @property
    def A(self) -> Tensor:
        return -torch.exp(self.A_log)


class Mamba1(PlanVariant):
    r"""Mamba-1 selective SSM (S6): per-channel hidden attention $\alpha_{ts} = C_t(\prod\bar A)\bar B_s$;
    input-dependent decay + upstream."""

    status = "exact"
    extensions = ("input-dependent-decay", "upstream")
    free_fields = ("W_B", "W_C", "W_dt", "W_O")
    source = (
        "Gu & Dao 2023 (Mamba), Alg. 2, selective scan (selective_scan_ref, z=None); Ali et al. 2024 "
        "(The Hidden Attention of Mamba Models), Eq. 9-11"
    )
    oracle = (
        "fla.ops.gla.naive.naive_recurrent_gla with one head per channel: q = C*sqrt(N), k = B, "
        "v = dt*u [.., 1], gk = dt*A (fla-core has no Mamba-1 op)"
    )
    description = (
        "Mamba-1 selective SSM: channel c is a head with keys B_t, queries C_t, value dt_c u_c (from an "
        "upstream layer), per-key decay exp(dt_c A_cn) (input-dependent decay); skip D u by D query-like "
        "neurons and one constant neuron; 2*D*N + D + 1 neurons."
    )

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_state=None, d_out=None, **_):
        """``D = d`` channels (``heads`` is ignored: Mamba-1 has one SSM per channel), ``N = d_state``
        (default ``min(d, 4)``); $A_{\\log}\\sim U(-1, 1)$, step bias $-1$ (Mamba initialises $\\Delta$
        small)."""
        N = min(d, 4) if d_state is None else d_state
        s = d**-0.5
        W_B, W_C = randn(generator, N, d, scale=s), randn(generator, N, d, scale=s)
        W_dt = randn(generator, d, d + 1, scale=s)
        W_dt[:, -1] -= 1.0
        A_log = torch.rand(d, N, generator=generator, dtype=torch.float64) * 2 - 1
        D = randn(generator, d)
        W_O = randn(generator, d_out, d, scale=s) if d_out else None
        return Mamba1Params(
            *_cast(dtype, W_B, W_C, W_dt, A_log, D), W_O=None if W_O is None else W_O.to(dtype)
        )

    def d_in(self, params):
        return params.W_B.shape[1]

    def _step(self, params: Mamba1Params, x_t: Tensor) -> StepFeatures:
        x_t = x_t.to(torch.float64)
        W_dt = params.W_dt.to(torch.float64)
        dt = softplus(x_t @ W_dt[:, :-1].T + W_dt[:, -1])  # [B, D]
        Bt, Ct = x_t @ params.W_B.to(torch.float64).T, x_t @ params.W_C.to(torch.float64).T  # [B, N]
        Dm = x_t.shape[1]
        decay = torch.exp(dt[..., None] * params.A.to(torch.float64))  # [B, D, N]
        return StepFeatures(
            Ct[:, None].expand(-1, Dm, -1),
            Bt[:, None].expand(-1, Dm, -1),
            (dt * x_t)[..., None],
            decay,
            (params.D.to(torch.float64) * x_t)[..., None],
        )

    def recurrence(self, params: Mamba1Params):
        """One-step form (float64): state ``h [B, D, 1, N]``; :func:`.onestep.decayed_la` of :meth:`_step`."""
        N, Dm = params.W_B.shape
        return decayed_la(lambda x_t: self._step(params, x_t), Dm, N, 1, params.W_O)

    #: step by step (float64): ``run_recurrence(recurrence(params), x)`` after ``_check``
    reference = recurrent_reference

    def reference_parallel(self, params: Mamba1Params, x):
        r"""The hidden-attention form (independent of :meth:`reference`): $y = \sum_s\alpha_{ts}u_s +
        Du_t$."""
        x = self._check(params, x).to(torch.float64)
        B, T, Dm = x.shape
        dt = softplus(_gate_logits(x, params.W_dt))  # [B, D, T]
        Bt = (x @ params.W_B.to(torch.float64).T)[:, None].expand(B, Dm, T, -1)
        Ct = (x @ params.W_C.to(torch.float64).T)[:, None].expand(B, Dm, T, -1)
        u = x.transpose(1, 2)[..., None]  # [B, D, T, 1]
        decay = torch.exp(dt[..., None] * params.A.to(torch.float64)[:, None, :])
        o = (
            la_parallel(Ct, Bt, dt[..., None] * u, decay)
            + params.D.to(torch.float64)[None, :, None, None] * u
        )
        return merge_heads(o, params.W_O)

    def plan(self, params: Mamba1Params) -> Plan:
        N, Dm = params.W_B.shape
        dt_, dev = params.W_B.dtype, params.W_B.device
        up = Upstream(Dm, [Identity(Dm), GatedCopy(params.W_dt, "softplus")])  # z = [x; dt_c x for each c]
        dz = up.width
        Wq = torch.zeros(Dm, N, dz + 1, dtype=dt_, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(Dm, 1, dz + 1, dtype=dt_, device=dev)
        Ws = torch.zeros_like(Wv)
        Wq[:, :, :Dm] = params.W_C
        Wk[:, :, :Dm] = params.W_B
        c = torch.arange(Dm, device=dev)
        Wv[c, 0, Dm + c * Dm + c] = 1  # v_c = (dt_c x)_c = dt_c u_c
        Ws[c, 0, c] = params.D
        Wdec = torch.zeros(Dm, N, dz + 1, dtype=dt_, device=dev)
        Wdec[:, :, :Dm] = -params.W_dt[:, None, :-1]
        Wdec[:, :, dz] = -params.W_dt[:, None, -1]  # exp(-A logsigmoid(-w.x~)) = exp(A softplus(w.x~))
        decay = InputDecay(Wdec.reshape(Dm * N, dz + 1), scale=-params.A.reshape(Dm * N), per_key=True)
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay=decay, skip=Skip(Ws))


register("mamba1")(Mamba1)
