r"""RWKV-6 (Finch) time mixing: exact on the template given a token-shift upstream block (one step of memory).

Peng et al. 2024 (*Eagle and Finch: RWKV with Matrix-Valued States and Dynamic Recurrence*, Eq. 16–19;
fla ``naive_recurrent_rwkv6``), per head, receptance $r_t$, key $k_t$, value $v_t$, data-dependent decay
$w_t = \exp(-\exp(W_w\tilde x_t))\in(0,1)^{d_k}$ and bonus $u\in\mathbb R^{d_k}$:

$$ S_t = \mathrm{diag}(w_t)\,S_{t-1} + k_tv_t^\top,\qquad
   o_t = r_t^\top\big(S_{t-1} + \mathrm{diag}(u)\,k_tv_t^\top\big) $$

(fla's state $[K, V]$). The output reads the state *before* step $t$, so the decay applied between input
$s$ and readout $t$ is $\prod_{r=s+1}^{t-1}w_r$ — it excludes $w_t$, and the current token enters only
through the bonus.

**Why the template needs help** (derived): the template's input gate at step $t$ sees $\tilde x_t$ only and
its decay $\lambda_t$ depends on $x_t$ only (input-dependent decay), while the memory $G_t = S_{t-1}$ must
receive $k_{t-1}v_{t-1}^\top$ and decay by $w_{t-1}$ at step $t$. No choice of template weights gives that
from $x_t$ alone. With an upstream **token-shift** block (:class:`.upstream.Shifted`: $z_t = [x_t;\ x_{t-1};\
w_{t-1}]$, zero at $t = 0$), it is exact: memory neurons ``g[h,i,j]`` with input $k_{t-1,j}v_{t-1,i}$ and
$\lambda_t = w_{t-1,j}$ (input-dependent, affine link) hold $G_t[j,i]$; bonus neurons ``b[h,i,j]`` at $\lambda
= 0$ hold $u_jk_{t,j}v_{t,i}$; both are read by the query neurons $r_t$: $2H d_k(d_v+1)$ neurons (two
decayed-linear-attention heads per RWKV head, summed by $W_O$). The shift is the one upstream block with
memory: one step of input, held outside the recurrent state $h$, so ``rnn(x2, state=h)`` continues a sequence
only if ``x2`` starts with the last input of the first part. RWKV-6's model-level token shift of the inputs of
$r, k, v, w$ (the data-dependent lerp of $x_t$ and $x_{t-1}$) and the GroupNorm/gate after the op are outside
this op, as in fla's ``naive_recurrent_rwkv6``.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, check_projections, heads_qkv, randn
from .gla import _cast, _check_gate, _gate_logits, _sample_qkv
from .onestep import Recurrence, recurrent_reference
from .plan import InputDecay, Plan
from .upstream import FEATURE_FNS, HeadMap, Identity, Shifted, Upstream

__all__ = ["RWKV6Params", "RWKV6"]

_decay_fn = FEATURE_FNS["exp-neg-exp"][0]


@dataclass(frozen=True)
class RWKV6Params:
    r"""``W_R, W_K [H, d_k, d]`` (receptance, key), ``W_V [H, d_v, d]``, decay logits ``W_w [H, d_k, d+1]``
    ($w_t = e^{-e^{W_w\tilde x_t}}$), bonus ``u [H, d_k]`` (any real), ``W_O [d_out, H d_v]`` or ``None``."""

    W_R: Tensor
    W_K: Tensor
    W_V: Tensor
    W_w: Tensor
    u: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        H, d_k, _, d = check_projections(self.W_R, self.W_K, self.W_V, self.W_O)
        _check_gate("W_w", self.W_w, (H, d_k, d + 1))
        require_tensor("u", self.u, allow_complex=False)
        if self.u.shape != (H, d_k):
            raise ValueError(f"u must have shape [H, d_k] = {(H, d_k)}; got {tuple(self.u.shape)}")
        require_finite("u", self.u)


class RWKV6(PlanVariant):
    r"""RWKV-6 time mixing: $o_t = r_t^\top(S_{t-1} + \mathrm{diag}(u)k_tv_t^\top)$, input-dependent decay + a
    token-shift upstream block."""

    status = "exact"
    extensions = ("input-dependent-decay", "upstream", "token-shift")
    free_fields = ("W_R", "W_K", "W_V", "W_w", "u", "W_O")
    source = "Peng et al. 2024 (Eagle and Finch, RWKV-5/6), Eq. 16-19; fla naive_recurrent_rwkv6"
    oracle = "fla.ops.rwkv6.recurrent_naive.naive_recurrent_rwkv6 (HF, w = log-decay, scale=1.0)"
    description = (
        "RWKV-6: token-shift upstream block z_t = [x_t; x_{t-1}; w_{t-1}]; memory neurons with input k_{t-1} "
        "v_{t-1} and lambda_t = w_{t-1} (input-dependent, affine link), bonus neurons u k_t v_t at lambda = "
        "0, read by r_t; 2*H*d_k*(d_v+1) neurons."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, **_
    ):
        """Gaussian projections ($d^{-1/2}$); decay logits with bias $U(-3, 0)$ ($w\\in(0.37, 0.95)$ at 0);
        $u\\sim\\mathcal N(0,1)$."""
        W_R, W_K, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        dk = W_R.shape[1]
        W_w = randn(generator, heads, dk, d + 1, scale=d**-0.5)
        W_w[..., -1] = -3 * torch.rand(heads, dk, generator=generator, dtype=torch.float64)
        u = randn(generator, heads, dk)
        return RWKV6Params(*_cast(dtype, W_R, W_K, W_V, W_w, u), W_O=None if W_O is None else W_O.to(dtype))

    def d_in(self, params):
        return params.W_R.shape[2]

    def _rkvw(self, params: RWKV6Params, x: Tensor):
        r, k, v = heads_qkv(x, params.W_R, params.W_K, params.W_V)
        return r, k, v, _decay_fn(_gate_logits(x, params.W_w))  # w [B, H, T, d_k]

    def recurrence(self, params: RWKV6Params) -> Recurrence:
        r"""One-step form (float64), the token shift made explicit: state ``(G [B, H, d_v, d_k], x_prev [B,
        d])``, $G\leftarrow G\,\mathrm{diag}(w(x_{t-1})) + v(x_{t-1})k(x_{t-1})^\top$ (so $G_t = S_{t-1}$),
        readout $W_O[G_tr_t + v_t(u\odot k_t)^\top r_t]_h$."""
        H, d_k, d = params.W_R.shape
        d_v = params.W_V.shape[1]
        W_O = params.W_O

        def feats(x_t):
            return self._rkvw(params, x_t.to(torch.float64)[:, None])

        def init(B, dtype):
            return (torch.zeros(B, H, d_v, d_k, dtype=torch.float64), torch.zeros(B, d, dtype=torch.float64))

        def step(state, x_t):
            G, x_prev = state
            _, k, v, w = (t[:, :, 0] for t in feats(x_prev))
            return (G * w[:, :, None, :] + v[..., :, None] * k[..., None, :], x_t.to(torch.float64))

        def readout(state, x_t):
            G, _ = state
            r, k, v, _ = (t[:, :, 0] for t in feats(x_t))
            o = (G @ r[..., None])[..., 0] + v * (r * params.u.to(torch.float64) * k).sum(-1, keepdim=True)
            flat = o.reshape(o.shape[0], -1)
            return flat if W_O is None else flat @ W_O.to(torch.float64).T

        return Recurrence(init, step, readout)

    #: step by step (float64): ``run_recurrence(recurrence(params), x)`` after ``_check``
    reference = recurrent_reference

    def reference_parallel(self, params: RWKV6Params, x):
        r"""Masked parallel form (independent of :meth:`reference`):
        $o_t = \sum_{s<t}\sum_j r_{t,j}k_{s,j}e^{L_{t-1,j}-L_{s,j}}v_s + (r_t\odot u\odot
        k_t)^\top\!\mathbf 1\,v_t$, $L_t = \sum_{r\le t}\log w_r$."""
        x = self._check(params, x).to(torch.float64)
        r, k, v, w = self._rkvw(params, x)
        L = torch.cumsum(torch.log(w), dim=2)  # [B, H, T, K]
        Lprev = torch.cat([torch.zeros_like(L[:, :, :1]), L[:, :, :-1]], dim=2)
        T = x.shape[1]
        strict = torch.ones(T, T, dtype=torch.bool).tril(-1)
        expo = (Lprev[:, :, :, None, :] - L[:, :, None, :, :]).masked_fill(~strict[..., None], float("-inf"))
        A = (r[:, :, :, None, :] * k[:, :, None, :, :] * torch.exp(expo)).sum(-1)  # [B, H, T, T]
        o = A @ v + v * (r * params.u.to(torch.float64)[None, :, None, :] * k).sum(-1, keepdim=True)
        return self._merge(params, o)

    def plan(self, params: RWKV6Params) -> Plan:
        H, d_k, d = params.W_R.shape
        d_v = params.W_V.shape[1]
        dt, dev = params.W_R.dtype, params.W_R.device
        up = Upstream(
            d,
            [
                Identity(d),
                Shifted(Identity(d)),
                Shifted(HeadMap(params.W_w[..., :-1], "exp-neg-exp", params.W_w[..., -1])),
            ],
        )
        dz = up.width
        Wq = torch.zeros(2 * H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(2 * H, d_v, dz + 1, dtype=dt, device=dev)
        Wa = torch.zeros(2 * H, d_k, dz + 1, dtype=dt, device=dev)
        j = torch.arange(d_k, device=dev)
        for h in range(H):  # memory head h: inputs from x_{t-1}, decay w_{t-1}
            Wq[h, :, :d] = params.W_R[h]
            Wk[h, :, d : 2 * d] = params.W_K[h]
            Wv[h, :, d : 2 * d] = params.W_V[h]
            Wa[h, j, 2 * d + h * d_k + j] = 1
        b = slice(H, 2 * H)  # bonus heads: inputs from x_t, lambda = 0 (zero decay rows)
        Wq[b, :, :d] = params.W_R
        Wk[b, :, :d] = params.u[..., None] * params.W_K
        Wv[b, :, :d] = params.W_V
        sel = torch.eye(H * d_v, dtype=dt, device=dev) if params.W_O is None else params.W_O
        W_O = torch.cat([sel, sel], dim=1)  # heads [memory; bonus], summed
        return Plan(
            Wq,
            Wk,
            Wv,
            W_O,
            upstream=up,
            decay=InputDecay(Wa.reshape(2 * H * d_k, dz + 1), "affine", per_key=True),
        )


register("rwkv6")(RWKV6)
