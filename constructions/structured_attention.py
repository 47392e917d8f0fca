r"""Chunked matmul ("attention") form of a structured gated RNN whose output gates pair a memory with a query.

Derived from the template of Zucchet et al. 2023 (Sec. 3) and the direct construction (App. A). Suppose every
kept output gate $g$ reads, through one-hot rows of $C$ and $E$, one *memory* neuron $p(g)$ ($\lambda_p\ne0$,
constant) and one *instantaneous* neuron $r(g)$ ($\lambda_r=0$, so $h_{r,t}=u_{r,t}$). With the factored input
gate $u_p = a_{\alpha(p)} b_{\beta(p)}$ ($a = A_u\tilde x$, $b = B_u\tilde x$) and $D = D_u[:,\gamma]$,

$$ y_t = \sum_g D_u[:,\gamma(g)]\; w_g\, u_{r(g),t}
          \sum_{s\le t}\lambda_{p(g)}^{t-s}\, a_{\alpha(p(g)),s}\, b_{\beta(p(g)),s}
          + (\text{initial state}), \qquad w_g = c_g e_g . $$

Group the gates by *value channel* $(\alpha,\gamma,\lambda)$; channels whose lists of *keys*
$(\beta, r, w)$ coincide form a **head** with values $v_s = (a_{\alpha,s})_\alpha$, keys $k_s =
(b_{\beta,s})_\kappa$, queries $q_t = (w_\kappa u_{r_\kappa,t})_\kappa$, one decay $\lambda$ and output map
$D_u[:,\gamma]$:

$$ y_t = \sum_{\text{heads}} D_u[:,\gamma]\,\sum_{s\le t}\lambda^{t-s}\,(k_s\!\cdot q_t)\,v_s . $$

This is causal (decayed) linear attention, evaluated in chunks of $L$ steps like flash-linear-attention's
``chunk`` kernels: within a chunk, $(Q K^\top\odot\Gamma)V$ with $\Gamma_{ts}=\lambda^{t-s}$ ($s\le t$);
across chunks, the state $S\in\mathbb{R}^{d_v\times d_k}$ with $S \leftarrow \lambda^{L} S + \sum_s
\lambda^{L-1-s} v_s k_s^\top$ and $y_t \mathrel{+}= \lambda^{j+1} S q_t$. $S[v,\kappa]$ *is* the memory neuron
$p$ at that position, so initial and final states map to the template's $h$ exactly. Powers of $\lambda$ come
from a cumulative product: no division, no logarithm ($\lambda$ complex or tiny is fine). For the direct
construction of one head ($d_k=d_v=16$) this costs $\approx 2L(d_k+d_v)+4d_kd_v$ flops per token instead of
$\approx 2n(d+1)+4mn$ for the dense template.

Input-dependent decays (``docs/variants/data-dependent-decay.md``): one $\lambda_t$ per head (simple GLA /
Mamba-2), $\Gamma_{ts} = \prod_{s<r\le t}\lambda_r$ as $P_t/P_s$ folded into queries and keys when the prefix
products are in range, else from a masked cumulative product per chunk (:func:`chunk_attention`); or one per
head and key (GLA, the memories of key position $k$ share $\lambda_{t,k}$), the same products per key ($[L, L,
d_k]$ per chunk, $L$ = :data:`CHUNK_PER_KEY`) with the key-wise decay in the state passing. Which applies is
read from the decay's channel map (:class:`~constructions.factored_decay.FactoredDecay`); a plain ``[B, T,
n]`` $\lambda_t$ is checked exactly for the per-head case only (per-key decays given that way take the gather
path).
"""

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Inexact
from torch import Tensor

from .factored_decay import FactoredDecay
from .scan import CHUNK_BYTES, _grad_needed, scan_chunked, scan_loop, super_chunk

__all__ = ["HeadBatch", "AttentionHeads", "detect_heads", "chunk_attention", "CHUNK", "CHUNK_PER_KEY"]

#: intra-chunk length L of the matmul form
CHUNK = 32
#: L for per-key decays (GLA), whose decay tensor per chunk is ``[L, L, d_k]``
CHUNK_PER_KEY = 8
#: per-head input-dependent decays whose within-chunk prefix products all lie in this range use
#: $\Gamma_{ts} = P_t / P_s$ (relative error $\le \gamma_{2L+1}$, like the products it replaces); others (a
#: zero, a
#: tiny or a huge decay) use the division-free cumulative products
_RATIO_RANGE = (2.0**-60, 2.0**60)


@dataclass(frozen=True)
class HeadBatch:
    """Heads with the same ``(d_k, d_v)``, stacked. ``q``, ``q2``, ``k``, ``v`` are row ranges of the fused
    projection (``q2`` is ``None`` when the query's second factor is a constant, folded into ``q_w``)."""

    H: int
    dk: int
    dv: int
    q: slice
    q2: slice | None
    k: slice
    v: slice
    q_w: Tensor | None  # [H*dk] weight w = c*e (times a folded constant); None: all ones
    D_cols: Tensor  # [d_out, H*dv]
    lam: Tensor  # [H]
    mem: Tensor  # [H, dv, dk] memory neuron at each state position


@dataclass(frozen=True)
class AttentionHeads:
    r"""The matmul form of a structured RNN (module docstring). ``W``, ``bias``: one fused projection of $x$
    onto every row the heads need (the distinct rows of $A$, $B$ they read, gathered once at plan time)."""

    batches: tuple[HeadBatch, ...]
    value_side: str  # "A": values from the A branch, keys from B; "B": swapped
    W: Tensor  # [R, d]
    bias: Tensor  # [R]
    unc: tuple[slice, slice]  # rows of the uncovered neurons' two branches
    query: Tensor  # [n_q] neurons with lambda = 0
    uncovered: Tensor  # [n_u] memory neurons no head reads (only their final state is needed)
    n: int

    def head_decays(self, lam_t: Tensor | FactoredDecay, step: int) -> list[Tensor] | None:
        r"""Per head batch, the head's decay $\lambda_t$ ``[B, T, H]`` when every memory of each head has the
        same $\lambda_t$ at every step (checked exactly, ``step`` time steps at a time); else ``None``. For a
        :class:`~constructions.factored_decay.FactoredDecay` the check is on the channel map (every memory of
        a head reads one channel, or one constant): no pass over ``[B, T, n]``."""
        if isinstance(lam_t, FactoredDecay):
            return self._factored_decays(lam_t)
        out: list[list[Tensor]] = [[] for _ in self.batches]
        for t0 in range(0, lam_t.shape[1], step):
            lc = lam_t[:, t0 : t0 + step]
            for i, hb in enumerate(self.batches):
                flat = hb.mem.reshape(-1)
                start = int(flat[0])
                if bool((flat == torch.arange(start, start + flat.numel(), device=flat.device)).all()):
                    lt = lc[..., start : start + flat.numel()]  # a slice: no copy
                else:
                    lt = lc[..., flat]
                lt = lt.unflatten(-1, (hb.H, hb.dv * hb.dk))
                if lt.is_complex():
                    if not bool((lt == lt[..., :1]).all()):
                        return None
                else:
                    # (separate reductions: faster than aminmax)
                    if not bool(torch.equal(lt.amin(-1), lt.amax(-1))):
                        return None
                out[i].append(lt[..., 0])
        return [torch.cat(parts, dim=1) for parts in out]

    def _factored_decays(self, lam_t) -> list[Tensor] | None:
        """Per head batch ``[B, T, H]`` (every memory of a head reads one channel or one constant) or, failing
        that, ``[B, T, H, d_k]`` (GLA: the memories of a key position ``k`` read one channel or constant,
        whatever the value row); ``None`` otherwise."""
        out = []
        for hb in self.batches:
            mem = hb.mem.reshape(hb.H, -1)
            ch, const = lam_t.channel[mem], lam_t.const[mem]  # [H, dv*dk]
            if bool((ch == ch[:, :1]).all()) and bool(((ch >= 0) | (const == const[:, :1])).all()):
                out.append(lam_t.neurons(mem[:, 0]))  # [B, T, H]
                continue
            ch, const = ch.reshape(hb.mem.shape), const.reshape(hb.mem.shape)  # [H, dv, dk]
            if not (bool((ch == ch[:, :1]).all()) and bool(((ch >= 0) | (const == const[:, :1])).all())):
                return None
            out.append(lam_t.neurons(hb.mem[:, 0].reshape(-1)).unflatten(-1, (hb.H, hb.dk)))  # [B, T, H, dk]
        return out

    def forward(
        self,
        plan,
        x: Tensor,
        h0: Tensor,
        *,
        chunk: int | None = None,
        return_state: bool = True,
        lam_t: Tensor | FactoredDecay | None = None,
        decays: list[Tensor] | None = None,
        real: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        r"""``x`` real or in the plan's dtype (cast chunk by chunk); ``decays`` from :meth:`head_decays` and
        the full ``lam_t`` for an input-dependent decay. ``plan``: the
        :class:`~constructions.structured.StructuredRNN` these heads were detected in (read for its sizes,
        $\lambda$ and input branches)."""
        Bsz, T, _ = x.shape
        per_key = decays is not None and any(dec.ndim == 4 for dec in decays)
        L = CHUNK_PER_KEY if per_key else CHUNK
        dtype = self.W.dtype
        # values per token alive in a super-chunk: the projections, per head the scores (and the decay matrix,
        # per key for GLA), the intra-chunk, inter-chunk and merged outputs, and the output; a budget of half
        # the
        # bytes of x and y keeps the peak within x + y + budget + y (within 2x of the output plus the inputs)
        width = (
            self.W.shape[0]
            + plan.d_out
            + sum(
                hb.H * (L * (2 if decays else 1) + 4 * hb.dv + (2 * L * hb.dk if per_key else 0))
                for hb in self.batches
            )
        )
        budget = max(
            CHUNK_BYTES, (x.numel() * x.element_size() + Bsz * T * plan.d_out * h0.real.element_size()) // 2
        )
        S = chunk or super_chunk(Bsz, width, dtype.itemsize, T, multiple=L, budget=budget)
        grad = _grad_needed(x, h0)
        out_dtype = h0.real.dtype if real else h0.dtype
        y = None if grad else h0.new_empty(Bsz, T, plan.d_out, dtype=out_dtype)
        parts = []
        states = [h0[:, hb.mem.reshape(-1)].reshape(Bsz, *hb.mem.shape) for hb in self.batches]
        need_unc = return_state and self.uncovered.numel() > 0
        h_unc = h0[:, self.uncovered]
        for t0 in range(0, T, S):
            xc = x[:, t0 : t0 + S].to(dtype)
            p = torch.nn.functional.linear(xc, self.W, self.bias)  # [B, S, R]
            yc = None
            for i, hb in enumerate(self.batches):
                q = p[..., hb.q] if hb.q2 is None else p[..., hb.q] * p[..., hb.q2]
                if hb.q_w is not None:
                    q = q * hb.q_w
                lam = hb.lam if decays is None else decays[i][:, t0 : t0 + S]
                o, states[i] = chunk_attention(
                    q.unflatten(-1, (hb.H, hb.dk)),
                    p[..., hb.k].unflatten(-1, (hb.H, hb.dk)),
                    p[..., hb.v].unflatten(-1, (hb.H, hb.dv)),
                    lam,
                    states[i],
                    chunk=L,
                )
                contrib = o.flatten(-2) @ hb.D_cols.T
                yc = contrib if yc is None else yc + contrib
            if yc is None:
                yc = h0.new_zeros(Bsz, xc.shape[1], plan.d_out)
            if real and yc.is_complex():
                yc = yc.real
            if need_unc:
                u = p[..., self.unc[0]] * p[..., self.unc[1]]
                if lam_t is None:
                    lam_unc = plan.lam[self.uncovered]
                elif isinstance(lam_t, Tensor):
                    lam_unc = lam_t[:, t0 : t0 + S][..., self.uncovered]
                else:  # FactoredDecay
                    lam_unc = lam_t.neurons(self.uncovered, t0, t0 + S)
                _, h_unc = (scan_chunked if u.shape[1] > 2 else scan_loop)(lam_unc, u, h_unc)
            if y is None:
                parts.append(yc)
            else:
                y[:, t0 : t0 + S] = yc
        if y is None:
            y = torch.cat(parts, dim=1) if parts else h0.new_zeros(Bsz, 0, plan.d_out, dtype=out_dtype)
        if not return_state:
            return y, None
        if T == 0:
            return y, h0
        # final state in the template's neuron order: memories from the head states, queries from the last
        # step
        a, b = plan.branches(x[:, -1].to(dtype))
        last_u = a[:, plan.A.index[self.query]] * b[:, plan.B.index[self.query]]
        pieces = [(hb.mem.reshape(-1), s.reshape(Bsz, -1)) for hb, s in zip(self.batches, states)]
        pieces += [(self.query, last_u), (self.uncovered, h_unc)]
        idx = torch.cat([i for i, _ in pieces])
        val = torch.cat([v for _, v in pieces], dim=1)
        if grad:
            hT = torch.zeros_like(h0).index_put((torch.arange(Bsz, device=x.device)[:, None], idx[None]), val)
        else:
            hT = h0.new_zeros(Bsz, self.n).index_copy_(1, idx, val)
        return y, hT


def _powers(lam: Tensor, L: int) -> Tensor:
    """``[H, L+1]``: $\\lambda^0..\\lambda^L$ by cumulative product (no division)."""
    ones = torch.ones_like(lam)[:, None]
    return torch.cat([ones, torch.cumprod(lam[:, None].expand(-1, L), dim=1)], dim=1)


def chunk_attention(
    q: Inexact[Tensor, "batch time heads d_k"],
    k: Inexact[Tensor, "batch time heads d_k"],
    v: Inexact[Tensor, "batch time heads d_v"],
    lam: Inexact[Tensor, " heads"]
    | Inexact[Tensor, "batch time heads"]
    | Inexact[Tensor, "batch time heads d_k"],
    state: Inexact[Tensor, "batch heads d_v d_k"],
    *,
    chunk: int = CHUNK,
) -> tuple[Inexact[Tensor, "batch time heads d_v"], Inexact[Tensor, "batch heads d_v d_k"]]:
    r"""Decayed causal linear attention in chunks of ``chunk`` steps, $S_t = \lambda_t S_{t-1} + v_tk_t^\top$,
    $o_t = S_tq_t$, from the state ``state`` $=S_0$; returns ``(o, S_T)``.

    ``lam``: one constant decay per head ``[H]`` ($\Gamma_{ts}=\lambda^{t-s}$ from powers), one decay per head
    and key and step ``[B, T, H, d_k]`` (GLA: $S_t = S_{t-1}\mathrm{diag}(\lambda_t) + v_tk_t^\top$, the same
    cumulative products per key, an ``[L, L, d_k]`` tensor per chunk), or one decay per head
    and step ``[B, T, H]`` (input-dependent, Mamba-2/simple-GLA style): then
    $\Gamma_{ts}=\prod_{s<r\le t}\lambda_r$. When every prefix product $P_t=\prod_{r\le t}\lambda_r$ within
    the chunks lies in ``_RATIO_RANGE`` ($[2^{-60}, 2^{60}]$ in modulus), $\Gamma_{ts}=P_t/P_s$ is folded into
    the queries and keys (rank one, no ``[L, L]`` tensor; relative error $\le\gamma_{2L+1}$). Otherwise (a
    zero, tiny or huge decay) it is a cumulative product along the masked matrix $X_{jr} = \lambda_r\,[r>j] +
    [r\le j]$ (each entry a plain product of the factors in its segment: no division, no logarithm; zeros,
    negative and complex decays are exact cases. fla's ``naive_chunk_simple_gla`` takes $\exp(G_t - G_s)$ of
    cumulative log-decays $G$, which is NaN when a decay is exactly 0)."""
    Bsz, T, H, dk = q.shape
    dv = v.shape[-1]
    if T == 0:
        return v.new_zeros(Bsz, 0, H, dv), state
    L = min(chunk, T)
    K = -(-T // L)
    pad = K * L - T
    last = L - pad  # length of the last chunk

    def blocks(t: Tensor, fill: float = 0.0) -> Tensor:  # [B, T, H, e] -> [B, H, K, L, e]
        if pad:
            t = torch.cat([t, t.new_full((Bsz, pad, H, t.shape[-1]), fill)], dim=1)
        return t.reshape(Bsz, K, L, H, t.shape[-1]).permute(0, 3, 1, 2, 4)

    qb, kb, vb = blocks(q), blocks(k), blocks(v)
    tt = torch.arange(L, device=q.device)
    per_key = lam.ndim == 4
    varying = lam.ndim >= 3
    unit = not varying and bool((lam == 1).all())
    kd = kb  # keys as they enter each chunk's own state contribution
    ratio = False
    if varying and not per_key:
        # [B, H, K, L]; padded steps decay by 1. Contiguous: the [.., L, L] tensors below inherit its layout,
        # and
        # a permuted one makes the cumulative product and the mask strided (measured 10x slower)
        a = blocks(lam[..., None], fill=1.0)[..., 0].contiguous()
        P = torch.cumprod(a, dim=-1)  # prod_{r<=t} within the chunk: [B, H, K, L]
        chunk_decay = P[..., L - 1]  # [B, H, K]
        Pa = P.abs()
        ratio = bool(Pa.amin() >= _RATIO_RANGE[0]) and bool(Pa.amax() <= _RATIO_RANGE[1])
    if ratio:
        # every prefix product is in range: Gamma_ts = P_t / P_s, folded into the queries and keys (a rank-one
        # factorisation, as fla's chunk kernels do in log space); no [L, L] decay tensor is built
        inv = 1 / P
        scores = (qb * P[..., None]) @ (kb * inv[..., None]).transpose(-1, -2)
        scores = scores.tril_() if not torch.is_grad_enabled() else scores.tril()
        vw = vb * (chunk_decay[..., None] * inv)[..., None]  # decay from s to the chunk's end
    elif per_key:
        # GLA: decay per key. G[t, s, k] = prod_{s<r<=t} lambda_{r,k} for t >= s (1 above the diagonal, masked
        # in
        # the scores), by a cumulative product down the rows r of X[r, s, k] = lambda_{r,k} [r > s] + [r <= s]
        # (no
        # division: zeros are exact); scores[t, s] = sum_k G[t, s, k] k[s, k] q[t, k], a batched matrix-vector
        # product
        a = blocks(lam, fill=1.0).contiguous()  # [B, H, K, L, dk]; padded steps decay by 1
        G = torch.where((tt[:, None] > tt[None, :])[..., None], a[..., :, None, :], a.new_ones(()))
        grad = torch.is_grad_enabled()
        G = torch.cumprod(G, dim=-3) if grad else G.cumprod_(dim=-3)  # [B, H, K, L(t), L(s), dk]
        kd = kb * G[..., L - 1, :, :]  # k_s decayed to the chunk's end, per key
        G = G * kb[..., None, :, :] if grad else G.mul_(kb[..., None, :, :])
        scores = torch.matmul(G, qb[..., :, :, None])[..., 0]  # [B, H, K, L(t), L(s)]
        scores = scores.tril() if grad else scores.tril_()
        vw = vb
        P = torch.cumprod(a, dim=-2)  # prod_{r<=t} within the chunk, per key: [B, H, K, L, dk]
        chunk_decay = P[..., L - 1, :]  # [B, H, K, dk]
    elif varying:  # a zero, tiny or huge decay in some chunk: products of the factors of each segment
        scores = qb @ kb.transpose(-1, -2)  # [B, H, K, L(t), L(s)]
        # built transposed, [.., L(j), L(r)], so that the cumulative product runs along the contiguous axis
        XT = torch.where(tt[None, :] > tt[:, None], a[..., None, :], a.new_ones(()))
        gammaT = torch.cumprod(XT, dim=-1).triu_()  # gammaT[j, t] = prod_{j<r<=t} lambda_r (t >= j), else 0
        gamma = gammaT.transpose(-1, -2)  # [B, H, K, L(t), L(s)] (a view)
        scores = scores.mul_(gamma) if not torch.is_grad_enabled() else scores * gamma
        vw = vb * gammaT[..., :, L - 1, None]  # decay from s to the chunk's end (padding decays by 1)
    elif unit:
        scores = (qb @ kb.transpose(-1, -2)).tril_()
        vw = vb
    else:
        scores = qb @ kb.transpose(-1, -2)  # [B, H, K, L(t), L(s)]
        pw = _powers(lam, L)  # [H, L+1]: lambda^0 .. lambda^L
        gamma = pw[:, (tt[:, None] - tt[None, :]).clamp(min=0)] * (tt[:, None] >= tt[None, :])  # [H, L, L]
        scores = scores * gamma[None, :, None]
        wend = pw[:, :L].flip(-1)  # lambda^(L-1-s)
        wlast = torch.cat([pw[:, :last].flip(-1), pw.new_zeros(H, pad)], dim=1)
        w = torch.stack([wend] * (K - 1) + [wlast], dim=1)  # [H, K, L]
        vw = vb * w[None, ..., None]
    dS = vw.transpose(-1, -2) @ kd  # [B, H, K, dv, dk]: each chunk's own contribution to the state
    # states before each chunk: S_c = a_{c-1} S_{c-1} + dS_{c-1} from S_0 = state, a scan over the K chunks
    # (scan_chunked: a cumulative sum when lambda = 1, ~2 sqrt(K) steps otherwise) instead of K Python steps
    P_ = dv * dk
    flat = dS.permute(0, 2, 1, 3, 4).reshape(Bsz, K, H * P_)
    if unit:
        decay = torch.ones(H * P_, dtype=lam.dtype, device=lam.device)
        last_decay = None
    elif per_key:  # the state's entry (v, k) decays by key k's product over the chunk
        decay = (
            chunk_decay.permute(0, 2, 1, 3)[..., None, :].expand(Bsz, K, H, dv, dk).reshape(Bsz, K, H * P_)
        )
        last_decay = decay[:, -1]
    elif varying:
        decay = chunk_decay.permute(0, 2, 1)[..., None].expand(Bsz, K, H, P_).reshape(Bsz, K, H * P_)
        last_decay = decay[:, -1]
    else:
        decay = pw[:, L, None].expand(H, P_).reshape(-1)  # full chunks decay by lambda^L
        last_decay = pw[:, last, None].expand(H, P_).reshape(-1)
    s0 = state.reshape(Bsz, H * P_)
    if K > 1 and varying and K <= 64 and not torch.is_grad_enabled():
        # few chunks (a super-chunk of the fast path): K in-place steps into one buffer beat the blocked
        # scan's
        # pads, cumulative products and concatenations (same products and sums as the loop, in its order)
        starts = flat.new_empty(Bsz, K, H * P_)
        starts[:, 0] = s0
        for c in range(1, K):
            torch.addcmul(flat[:, c - 1], decay[:, c - 1], starts[:, c - 1], out=starts[:, c])
    elif K > 1:
        inner, _ = scan_chunked(decay[:, : K - 1] if varying else decay, flat[:, : K - 1], s0)
        starts = torch.cat([s0[:, None], inner], dim=1)  # [B, K, H*P]
    else:
        starts = s0[:, None]
    s_last = starts[:, -1]
    s = flat[:, -1] + (s_last if unit else last_decay * s_last)
    s = s.reshape(Bsz, H, dv, dk)
    St = starts.reshape(Bsz, K, H, dv, dk).permute(0, 2, 1, 3, 4)  # state before each chunk [B, H, K, dv, dk]
    inter = (qb * P if per_key else qb) @ St.transpose(-1, -2)  # [B, H, K, L, dv]
    if varying:
        if not per_key:
            inter = inter * P[..., None]
    elif not unit:
        inter = inter * pw[:, 1:, None][None, :, None]
    o = torch.matmul(scores, vb).add_(inter) if not torch.is_grad_enabled() else scores @ vb + inter
    o = o.permute(0, 2, 3, 1, 4).reshape(Bsz, K * L, H, dv)[:, :T]
    return o, s


def detect_heads(plan, lam: Tensor | None = None) -> AttentionHeads | None:
    """Group the kept gates of a :class:`~constructions.structured.StructuredRNN` into heads (module
    docstring), or ``None`` when a gate does not pair one memory with one instantaneous neuron, or the matmul
    form would cost more than the gather form. ``lam``: the plan's constant $\\lambda$ (default), or for an
    input-dependent decay a pattern (0 for the neurons whose $\\lambda_t$ is always 0, 1 for the others)."""
    lam = plan.lam if lam is None else lam
    C, E = plan.C, plan.E
    n, m = plan.n, plan.gates.shape[0]
    if m == 0:
        return None
    lam_np = lam.detach().cpu().numpy()
    iC, iE = C.index.cpu().numpy(), E.index.cpu().numpy()
    zc, ze = lam_np[iC] == 0, lam_np[iE] == 0
    if bool((zc == ze).any()):
        return None
    mem = np.where(ze, iC, iE)
    qry = np.where(ze, iE, iC)
    ones = np.ones(m, dtype=lam_np.dtype)
    w = (
        (C.coef.cpu().numpy() if C.coef is not None else ones)
        * (E.coef.cpu().numpy() if E.coef is not None else ones)
    ).astype(lam_np.dtype)
    if plan.group_size is not None:
        gamma = np.arange(m) // plan.group_size
        D_u = plan.D_unique
    else:
        gamma = np.arange(m)
        D_u = plan.D_kept
    A_idx, B_idx = plan.A.index.cpu().numpy(), plan.B.index.cpu().numpy()
    best = None
    for side in ("A", "B"):
        val_index, key_index = (A_idx, B_idx) if side == "A" else (B_idx, A_idx)
        heads = _group(val_index[mem], key_index[mem], qry, w, gamma, lam_np[mem], mem)
        cost = sum(CHUNK * (h[0] + h[1]) + 4 * h[0] * h[1] for h in heads)
        if best is None or cost < best[0]:
            best = (cost, side, heads)
    cost, side, heads = best
    if cost > 4 * (n + 2 * m) * 8:  # gather form: ~8 elementwise passes over n + 2m values per token
        return None
    dev = lam.device
    d = plan.d
    val_u, key_u = (plan.A.unique, plan.B.unique) if side == "A" else (plan.B.unique, plan.A.unique)
    rows: list[Tensor] = []
    count = 0

    def take(w: Tensor) -> slice:  # append projection rows, return their range
        nonlocal count
        rows.append(w)
        count += w.shape[0]
        return slice(count - w.shape[0], count)

    def t(values, dtype=torch.long):
        return torch.tensor(values, dtype=dtype, device=dev)

    by_shape: dict[tuple[int, int], list] = {}
    for head in heads:
        by_shape.setdefault(head[:2], []).append(head)
    batches = []
    for (dk, dv), hs in sorted(by_shape.items()):
        H = len(hs)

        def stack(i: int, dtype=torch.long, hs=hs) -> Tensor:
            return torch.as_tensor(np.stack([h[i] for h in hs])).to(device=dev, dtype=dtype)

        qn = stack(4).reshape(-1)  # query neurons [H*dk]
        qa, qb = plan.A.unique[plan.A.index[qn]], plan.B.unique[plan.B.index[qn]]
        q_w = stack(3, lam.dtype).reshape(-1)
        if bool((qb[:, :d] == 0).all()):  # the query's second factor is the constant column: fold it into w
            q, q2, q_w = take(qa), None, q_w * qb[:, d]
        elif bool((qa[:, :d] == 0).all()):
            q, q2, q_w = take(qb), None, q_w * qa[:, d]
        else:
            q, q2 = take(qa), take(qb)
        k = take(key_u[stack(2).reshape(-1)])
        v = take(val_u[stack(5).reshape(-1)])
        batches.append(
            HeadBatch(
                H=H,
                dk=dk,
                dv=dv,
                q=q,
                q2=q2,
                k=k,
                v=v,
                q_w=None if bool((q_w == 1).all()) else q_w,
                D_cols=D_u[:, stack(6).reshape(-1)].contiguous(),
                lam=stack(7, lam.dtype),
                mem=stack(8),
            )
        )
    covered = torch.zeros(n, dtype=torch.bool, device=dev)
    for hb in batches:
        covered[hb.mem.reshape(-1)] = True
    query = (lam == 0).nonzero()[:, 0]
    uncovered = (~covered & (lam != 0)).nonzero()[:, 0]
    unc = (take(plan.A.unique[plan.A.index[uncovered]]), take(plan.B.unique[plan.B.index[uncovered]]))
    Wb = torch.cat(rows, dim=0)
    return AttentionHeads(
        tuple(batches), side, Wb[:, :d].contiguous(), Wb[:, d].contiguous(), unc, query, uncovered, n
    )


def _bits(a: np.ndarray) -> np.ndarray:
    """Exact bit patterns of float/complex values as int64 columns ``[len, 1 or 2]`` (``-0.0`` taken as
    ``0.0``)."""
    a = np.ascontiguousarray(a + 0)  # -0.0 + 0 = +0.0
    real = a.view(a.real.dtype).reshape(a.shape[0], -1)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[real.dtype.itemsize]
    return real.view(ints).astype(np.int64)


def _group(alpha, beta, qry, w, gamma, lam_mem, mem) -> list[tuple]:
    """Heads as ``(dk, dv, key rows [dk], q weights [dk], query neurons [dk], value rows [dv], D columns [dv],
    lambda, memory neurons [dv, dk])`` (numpy), from per-gate value rows ``alpha``, key rows ``beta``, ..."""
    lam_bits, w_bits = _bits(lam_mem), _bits(w)
    _, chan = np.unique(np.column_stack([alpha, gamma, lam_bits]), axis=0, return_inverse=True)
    chan = chan.reshape(-1)
    # sort gates by channel, then by key (beta, query neuron, weight bits)
    keys = [w_bits[:, j] for j in reversed(range(w_bits.shape[1]))] + [qry, beta, chan]
    order = np.lexsort(keys)
    counts = np.bincount(chan)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    heads = []
    for k in np.unique(counts):
        chans = np.nonzero(counts == k)[0]
        gidx = order[starts[chans][:, None] + np.arange(k)]  # [channels, k] gate ids, keys sorted
        sig = np.column_stack(
            [lam_bits[gidx[:, 0]], beta[gidx], qry[gidx], w_bits[gidx].reshape(len(chans), -1)]
        )
        _, head_of = np.unique(sig, axis=0, return_inverse=True)
        head_of = head_of.reshape(-1)
        for hid in range(int(head_of.max()) + 1):
            rows = gidx[head_of == hid]  # [dv, dk]: the channels of this head
            g0 = rows[0]
            heads.append(
                (
                    int(k),
                    rows.shape[0],
                    beta[g0],
                    w[g0],
                    qry[g0],
                    alpha[rows[:, 0]],
                    gamma[rows[:, 0]],
                    lam_mem[g0[0]],
                    mem[rows],
                )
            )
    return heads
