r"""Naive float64 references of the attention-like layers, each in two independent forms.

Layout: head-first ``[batch, heads, time, features]`` (fla's "HF"), states ``S`` of shape
``[batch, heads, d_v, d_k]`` (our convention: $o_t = S_t q_t$; fla's state is $S^\top$).

Every layer has a **recurrent** form (the definition most papers give, and the one used as the variants'
``reference``: step by step, so its rounding error grows like the template's) and an independent
**parallel** (masked, $O(T^2)$) form that never forms a state. Tests check that the two agree in
float64; the template constructions are checked against the recurrent form.

Recurrence with per-key multiplicative decay $\alpha_t\in\mathbb R^{d_k}$ (or $\mathbb C^{d_k}$) covering LSA
($\alpha=1$), RetNet ($\alpha=\gamma$), simple GLA / Mamba-2 ($\alpha_t = a_t\mathbf 1$) and GLA / HGRN2:

$$ S_t = S_{t-1}\,\mathrm{diag}(\alpha_t) + v_t k_t^\top, \qquad o_t = S_t\, q_t
   \quad\Longleftrightarrow\quad
   o_t = \sum_{s\le t} v_s \sum_j q_{t,j}\,k_{s,j} \prod_{r=s+1}^{t}\alpha_{r,j}. $$

Delta rule (Schlag et al. 2021; Yang et al. 2024, DeltaNet):
$S_t = S_{t-1}(I-\beta_t k_t k_t^\top) + \beta_t v_t k_t^\top$. Softmax attention (Vaswani et al. 2017):
$o_t = \sum_{s\le t} e^{q_t^\top k_s} v_s / \sum_{s\le t} e^{q_t^\top k_s}$.
"""

import torch
from jaxtyping import Float, Inexact, Shaped
from torch import Tensor

__all__ = [
    "project",
    "merge_heads",
    "la_recurrent",
    "la_parallel",
    "rope",
    "retention_parallel",
    "delta_rule_recurrent",
    "delta_rule_parallel",
    "softmax_attention",
    "softmax_attention_online",
    "la_magnitude",
]


def _promote(*ts: Tensor | None) -> torch.dtype:
    dtype = torch.float64
    for t in ts:
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def project(
    x: Shaped[Tensor, "batch time d"],
    W: Shaped[Tensor, "heads r d"],
    bias: Shaped[Tensor, "heads r"] | None = None,
) -> Shaped[Tensor, "batch heads time r"]:
    """Per-head projection $W^h x_t (+ b^h)$, float64 (complex128 if ``W`` is complex)."""
    dtype = _promote(x, W, bias)
    out = torch.einsum("btd,hrd->bhtr", x.to(dtype), W.to(dtype))
    return out if bias is None else out + bias.to(dtype)[None, :, None, :]


def merge_heads(
    o: Shaped[Tensor, "batch heads time d_v"], W_O: Tensor | None
) -> Shaped[Tensor, "batch time d_out"]:
    """Concatenate heads (head-major) and apply ``W_O`` ``[d_out, H*d_v]`` if given."""
    B, H, T, dv = o.shape
    o = o.permute(0, 2, 1, 3).reshape(B, T, H * dv)
    return o if W_O is None else o @ W_O.to(o.dtype).T


def _decay_bhtk(decay: Tensor | None, B: int, H: int, T: int, K: int, dtype) -> Tensor | None:
    """Broadcast a decay spec to ``[B, H, T, K]``: ``None``; ``[H]`` or ``[H, K]`` (constant); ``[B, H, T]``
    (scalar per step) or ``[B, H, T, K]`` (per key per step)."""
    if decay is None:
        return None
    d = decay.to(dtype)
    if d.ndim == 1:  # [H]
        d = d[None, :, None, None]
    elif d.ndim == 2:  # [H, K]
        d = d[None, :, None, :]
    elif d.ndim == 3:  # [B, H, T]
        d = d[..., None]
    return d.expand(B, H, T, K)


def la_recurrent(
    q: Inexact[Tensor, "batch heads time d_k"],
    k: Inexact[Tensor, "batch heads time d_k"],
    v: Inexact[Tensor, "batch heads time d_v"],
    decay: Inexact[Tensor, "..."] | None = None,
) -> Inexact[Tensor, "batch heads time d_v"]:
    r"""Recurrent form $S_t = S_{t-1}\mathrm{diag}(\alpha_t) + v_t k_t^\top$, $o_t = S_t q_t$ (``decay`` =
    $\alpha$)."""
    B, H, T, K = q.shape
    dtype = _promote(q, k, v, decay)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    a = _decay_bhtk(decay, B, H, T, K, dtype)
    S = q.new_zeros(B, H, v.shape[-1], K)
    out = []
    for t in range(T):
        if a is not None:
            S = S * a[:, :, t, None, :]
        S = S + v[:, :, t, :, None] * k[:, :, t, None, :]
        out.append((S @ q[:, :, t, :, None])[..., 0])
    return torch.stack(out, dim=2) if out else v.new_zeros(B, H, 0, v.shape[-1])


def la_parallel(
    q: Inexact[Tensor, "batch heads time d_k"],
    k: Inexact[Tensor, "batch heads time d_k"],
    v: Inexact[Tensor, "batch heads time d_v"],
    decay: Inexact[Tensor, "..."] | None = None,
) -> Inexact[Tensor, "batch heads time d_v"]:
    r"""Masked parallel form $o_t = \sum_{s\le t} v_s\sum_j q_{t,j}k_{s,j}\prod_{r=s+1}^t\alpha_{r,j}$.

    The segment products are reverse cumulative products along each row of a ``[T, T]`` window (no logs,
    no ratios, so $\alpha = 0$ is exact): independent of the recurrence. Memory $O(B H T^2 d_k)$."""
    B, H, T, K = q.shape
    dtype = _promote(q, k, v, decay)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    a = _decay_bhtk(decay, B, H, T, K, dtype)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    if a is None:
        scores = (q @ k.transpose(-1, -2)).masked_fill(~causal, 0)
        return scores @ v
    # W[b,h,t,r,j] = alpha_{r,j} for s < r <= t: start from alpha_r masked to r <= t, reverse-cumprod over r
    win = a[:, :, None, :, :].expand(B, H, T, T, K)  # [b,h,t,r,j] = alpha_{r,j}
    r_le_t = causal[None, None, :, :, None]
    win = torch.where(r_le_t, win, torch.ones((), dtype=dtype))
    # P[t, s] = prod_{r=s+1}^{t} alpha_r = (reverse cumprod over r of win[t, r]) evaluated at r = s+1
    rev = torch.flip(torch.cumprod(torch.flip(win, dims=[3]), dim=3), dims=[3])  # rev[t, r] = prod_{r'>=r}
    P = torch.cat([rev[:, :, :, 1:], torch.ones_like(rev[:, :, :, :1])], dim=3)  # P[t, s] = rev[t, s+1]
    scores = torch.einsum("bhtj,bhsj,bhtsj->bhts", q, k, P).masked_fill(~causal, 0)
    return scores @ v


def rope(
    x: Float[Tensor, "batch heads time d_k"], theta: Float[Tensor, "heads pairs"]
) -> Float[Tensor, "batch heads time d_k"]:
    r"""Rotary position embedding: rotate the pair $(x_{2j}, x_{2j+1})$ of time $t$ (0-based) by
    $t\,\theta_{h,j}$,
    i.e. multiply $x_{2j} + i x_{2j+1}$ by $e^{i t\theta_{h,j}}$ (Su et al. 2021; RetNet's $\Theta_n =
    e^{in\theta}$)."""
    B, H, T, K = x.shape
    if K % 2 or theta.shape != (H, K // 2):
        raise ValueError(
            f"rope needs an even d_k and theta of shape [H, d_k/2] = {(H, K // 2)}; got d_k={K}, "
            f"theta {tuple(theta.shape)}"
        )
    t = torch.arange(T, dtype=torch.float64, device=x.device)
    ang = t[None, :, None] * theta.to(torch.float64)[:, None, :]  # [H, T, K/2]
    c, s = torch.cos(ang)[None], torch.sin(ang)[None]
    xe, xo = x[..., 0::2].to(torch.float64), x[..., 1::2].to(torch.float64)
    out = torch.empty(B, H, T, K, dtype=torch.float64, device=x.device)
    out[..., 0::2] = xe * c - xo * s
    out[..., 1::2] = xe * s + xo * c
    return out


def retention_parallel(
    q: Float[Tensor, "batch heads time d_k"],
    k: Float[Tensor, "batch heads time d_k"],
    v: Float[Tensor, "batch heads time d_v"],
    gamma: Float[Tensor, " heads"],
    theta: Float[Tensor, "heads pairs"] | None = None,
) -> Float[Tensor, "batch heads time d_v"]:
    r"""RetNet's parallel retention without normalisation (Sun et al. 2023, Sec. 2.1):
    $o = (\tilde Q \tilde K^\top \odot D) V$, $D_{ts} = \gamma^{t-s}$ for $s\le t$, with rotary
    $\tilde Q, \tilde K$ when ``theta`` is given (the real form of $Q_n e^{in\theta}$,
    $K_m e^{-im\theta}$)."""
    B, H, T, K = q.shape
    if theta is not None:
        q, k = rope(q, theta), rope(k, theta)
    t = torch.arange(T, dtype=torch.float64, device=q.device)
    lag = t[:, None] - t[None, :]
    causal = lag >= 0
    Dm = torch.pow(gamma.to(torch.float64)[:, None, None], lag.clamp(min=0)[None]) * causal  # [H, T, T]
    scores = (q.to(torch.float64) @ k.to(torch.float64).transpose(-1, -2)) * Dm[None]
    return scores @ v.to(torch.float64)


def delta_rule_recurrent(
    q: Float[Tensor, "batch heads time d_k"],
    k: Float[Tensor, "batch heads time d_k"],
    v: Float[Tensor, "batch heads time d_v"],
    beta: Float[Tensor, "..."],
) -> Float[Tensor, "batch heads time d_v"]:
    r"""Delta rule $S_t = S_{t-1}(I - \beta_t k_t k_t^\top) + \beta_t v_t k_t^\top$, $o_t = S_t q_t$
    (Schlag et al. 2021, Eq. 19-20; fla ``delta_rule_recurrence`` without its $d_k^{-1/2}$ scale).
    ``beta``: ``[H]`` (per head) or ``[B, H, T]`` (per step)."""
    B, H, T, K = q.shape
    q, k, v = q.to(torch.float64), k.to(torch.float64), v.to(torch.float64)
    b = beta.to(torch.float64)
    b = b[None, :, None].expand(B, H, T) if b.ndim == 1 else b
    S = q.new_zeros(B, H, v.shape[-1], K)
    out = []
    for t in range(T):
        kt = k[:, :, t]
        u = b[:, :, t, None] * (v[:, :, t] - (S @ kt[..., None])[..., 0])  # beta (v - S k)
        S = S + u[..., :, None] * kt[..., None, :]
        out.append((S @ q[:, :, t, :, None])[..., 0])
    return torch.stack(out, dim=2) if out else v.new_zeros(B, H, 0, v.shape[-1])


def delta_rule_parallel(
    q: Float[Tensor, "batch heads time d_k"],
    k: Float[Tensor, "batch heads time d_k"],
    v: Float[Tensor, "batch heads time d_v"],
    beta: Float[Tensor, "..."],
) -> Float[Tensor, "batch heads time d_v"]:
    r"""The delta rule without a state: $S_t = \sum_{s\le t} u_s k_s^\top$ with pseudo-values
    $u_t = \beta_t(v_t - \sum_{s<t} u_s\, k_s^\top k_t)$, i.e. $(I + \mathrm{tril}_{-1}(\mathrm{diag}(\beta) K
    K^\top))\,U
    = \mathrm{diag}(\beta) V$ (Yang et al. 2024, DeltaNet, the UT form), solved by a triangular solve."""
    B, H, T, K = q.shape
    q, k, v = q.to(torch.float64), k.to(torch.float64), v.to(torch.float64)
    b = beta.to(torch.float64)
    b = b[None, :, None].expand(B, H, T) if b.ndim == 1 else b
    strict = torch.ones(T, T, dtype=torch.bool, device=q.device).tril(-1)
    L = torch.eye(T, dtype=torch.float64) + (b[..., :, None] * (k @ k.transpose(-1, -2))).masked_fill(
        ~strict, 0
    )
    U = torch.linalg.solve_triangular(L, b[..., None] * v, upper=False, unitriangular=True)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    return (q @ k.transpose(-1, -2)).masked_fill(~causal, 0) @ U


def softmax_attention(
    q: Float[Tensor, "batch heads time d_k"],
    k: Float[Tensor, "batch heads time d_k"],
    v: Float[Tensor, "batch heads time d_v"],
) -> Float[Tensor, "batch heads time d_v"]:
    r"""Causal softmax attention without scale (fold it into $W_Q$): $o_t = \sum_{s\le
    t}\mathrm{softmax}_s(q_t^\top k_s)\,v_s$."""
    q, k, v = q.to(torch.float64), k.to(torch.float64), v.to(torch.float64)
    T = q.shape[2]
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = (q @ k.transpose(-1, -2)).masked_fill(~causal, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def softmax_attention_online(
    q: Float[Tensor, "batch heads time d_k"],
    k: Float[Tensor, "batch heads time d_k"],
    v: Float[Tensor, "batch heads time d_v"],
) -> Float[Tensor, "batch heads time d_v"]:
    """The same causal softmax attention by the online (running max / running sum) recurrence over keys,
    for each query (Milakov & Gimelshein 2018): an independent second form."""
    q, k, v = q.to(torch.float64), k.to(torch.float64), v.to(torch.float64)
    B, H, T, _ = q.shape
    m = torch.full((B, H, T), float("-inf"), dtype=torch.float64)
    den = torch.zeros(B, H, T, dtype=torch.float64)
    num = torch.zeros(B, H, T, v.shape[-1], dtype=torch.float64)
    t_idx = torch.arange(T)
    for s in range(T):
        score = (q * k[:, :, s, None, :]).sum(-1)  # [B, H, T]: q_t . k_s for every t
        active = t_idx >= s
        m_new = torch.where(active, torch.maximum(m, score), m)
        scale_old = torch.where(active, torch.exp(m - m_new), torch.ones(()))
        w = torch.where(active, torch.exp(score - m_new), torch.zeros(()))
        den = den * scale_old + w
        num = num * scale_old[..., None] + w[..., None] * v[:, :, s, None, :]
        m = m_new
    return num / den[..., None]


def la_magnitude(
    q_abs: Float[Tensor, "batch heads time d_k"],
    k_abs: Float[Tensor, "batch heads time d_k"],
    v_abs: Float[Tensor, "batch heads time d_v"],
    decay_abs: Float[Tensor, "..."] | None = None,
) -> Float[Tensor, "batch heads time d_v"]:
    r"""The tolerance model's $M$ for a decayed linear attention: :func:`la_recurrent` on non-negative
    (absolute, possibly error-inflated) inputs and decays, in float64."""
    for name, t in (("q_abs", q_abs), ("k_abs", k_abs), ("v_abs", v_abs), ("decay_abs", decay_abs)):
        if t is not None and (t.is_complex() or bool((t < 0).any())):
            raise ValueError(
                f"{name} must be real and non-negative (absolute values); got negative or complex entries"
            )
    return la_recurrent(q_abs, k_abs, v_abs, decay_abs)
