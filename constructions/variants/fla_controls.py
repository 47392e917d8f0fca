r"""Negative controls for the op families of the oracle package that no template RNN is known to reach:
one small registered entry per family, all built by one factory (:class:`FamilyControl`).

Every control has

- a **float64 reference** of the family's op, written from its paper and from fla's naive reference
  (``fla/ops/<family>/naive.py``), on per-head projections $q = W_Qx_t$, $k = W_Kx_t$, $v = W_Vx_t$ and the
  family's extra per-token features (gates, second keys, slot scores, ...) ``W_X [H, m, d+1]`` read from
  $\tilde x_t = [x_t; 1]$ through the family's links ($\sigma$, $\log\sigma$, identity); fla's scale is
  folded into $W_Q$. Where fla's naive reference runs on CPU, ``tests/test_family_controls.py`` checks ours
  against it (marker ``oracle``);
- a **tried construction**: the nearest exact construction on the template with the same $q, k, v$ — the
  paper's LSA direct construction (Zucchet et al. 2023, Sec. 3), with the family's scalar forget gate as an
  E1 decay where it has one (simple GLA / Mamba-2 gating). $H d_k(d_v+1)$ neurons.

No impossibility certificate is declared, so the prover's claim ``NAME-IMPOSSIBLE/v1`` refutes the tried
construction *at a counterexample*: both programs are lifted to exact arithmetic (every parameter entry a
generator, every non-polynomial function an uninterpreted atom) and their difference is certified non-zero
at a concrete rational point, which the claim stores (replayable). The numeric check does the same in
float64: a seeded case (parameters and input stored in hex) where $|y_{\mathrm{RNN}} - y_{\mathrm{ref}}|$
exceeds the rounding bound $\gamma_nM + n\eta$ of the tolerance model; since both computations are within
that bound of their exact values (the bound's premise), a gap beyond it means the exact values differ. Only
the tried construction is refuted, not every template RNN: the table says **refuted (at a
counterexample)**, never *impossible*.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from torch.nn import functional as F

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, affine, check_projections, heads_qkv, randn, to_float64
from .plan import InputDecay, Plan, plan_magnitude
from .reference import merge_heads

__all__ = ["ControlParams", "Block", "ControlSpec", "FamilyControl", "SPECS", "CONTROL_NAMES"]

#: links of the extra features: identity, sigma, log sigma (fla's log-space gates), or "const" (the bias
#: column only: a per-head constant parameter, e.g. MesaNet's lambda)
LINKS = ("linear", "sigmoid", "logsigmoid", "const")


@dataclass(frozen=True)
class ControlParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, the family's extra features ``W_X [H, m, d+1]`` (rows
    in the order of the family's blocks, read from $[x_t; 1]$), ``W_O [d_out, H d_v]`` or ``None``."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_X: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        H, _, _, d = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        require_tensor("W_X", self.W_X, allow_complex=False)
        if self.W_X.ndim != 3 or self.W_X.shape[0] != H or self.W_X.shape[2] != d + 1:
            raise ValueError(
                f"W_X must have shape [H, m, d+1] with H={H}, d={d}; got {tuple(self.W_X.shape)}"
            )
        require_finite("W_X", self.W_X)


@dataclass(frozen=True)
class Block:
    """One block of extra features: ``name``, ``size`` (an int, ``"k"`` = d_k, ``"v"`` = d_v, or a function of
    ``(d_k, d_v)``), ``link``,
    the ``bias`` added to its sampled logits (e.g. forget gates near 1)."""

    name: str
    size: int | str | Callable[[int, int], int]
    link: str = "linear"
    bias: float = 0.0

    def width(self, d_k: int, d_v: int) -> int:
        if callable(self.size):
            return int(self.size(d_k, d_v))
        return d_k if self.size == "k" else d_v if self.size == "v" else int(self.size)


@dataclass(frozen=True)
class ControlSpec:
    """One family: ``name`` (registered), ``family`` (fla ops directory or ``model:NAME``), ``blocks``,
    ``layer(q, k, v, extras) -> o [B, H, T, d_v]`` (float64, head-first), ``decay`` (the block holding the
    scalar forget gate the tried construction reuses, or ``""``), ``source``, ``oracle``, ``what``;
    ``symbolic``: optionally the same op on SymPy object arrays (``(W_Q, W_K, W_V, W_X, W_O, x) -> y [T,
    d_out]``), registered as the ``symbolic_reference`` hook: the prover then refutes at a concrete exact
    input instead of lifting the torch code (for ops whose lifted polynomials grow too fast)."""

    name: str
    family: str
    blocks: tuple[Block, ...]
    layer: Callable
    source: str
    oracle: str
    what: str
    decay: str = ""
    d_kv_equal: bool = False
    symbolic: Callable | None = None


def _rows(spec: ControlSpec, d_k: int, d_v: int) -> dict[str, slice]:
    out, i = {}, 0
    for b in spec.blocks:
        w = b.width(d_k, d_v)
        out[b.name] = slice(i, i + w)
        i += w
    return out


class FamilyControl(PlanVariant):
    """A negative control built from a :class:`ControlSpec` (see the module docstring)."""

    status = "impossible"
    free_fields = ("W_Q", "W_K", "W_V", "W_O")

    def __init__(self, spec: ControlSpec):
        self.spec = spec
        self.source = spec.source
        self.oracle = spec.oracle
        tried = "LSA direct construction" + (" with its forget gate as E1 decay" if spec.decay else "")
        self.description = (
            f"Negative control: {spec.what}. Tried construction: the {tried} on the same q, k, v; refuted at "
            "a counterexample (no certificate)."
        )
        if spec.decay:
            self.extensions = ("E1",)
        if spec.symbolic is not None:
            self.symbolic_reference = spec.symbolic

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, **_
    ) -> ControlParams:
        d_k = d if d_k is None else d_k
        d_v = (d_k if self.spec.d_kv_equal else d) if d_v is None else d_v
        if self.spec.d_kv_equal and d_v != d_k:
            raise ValueError(f"{self.name}: the family needs d_v == d_k; got d_k={d_k}, d_v={d_v}")
        s = d**-0.5
        W_Q = randn(generator, heads, d_k, d, scale=s)
        W_K = randn(generator, heads, d_k, d, scale=s)
        W_V = randn(generator, heads, d_v, d, scale=s)
        rows = _rows(self.spec, d_k, d_v)
        m = sum(r.stop - r.start for r in rows.values())
        W_X = randn(generator, heads, m, d + 1, scale=s)
        for b in self.spec.blocks:
            W_X[:, rows[b.name], -1] += b.bias
        W_O = randn(generator, d_out, heads * d_v, scale=s) if d_out else None
        cast = [t.to(dtype) for t in (W_Q, W_K, W_V, W_X)]
        return ControlParams(*cast, None if W_O is None else W_O.to(dtype))

    def extras(
        self, params: ControlParams, x: Float[Tensor, "batch time d"]
    ) -> dict[str, Float[Tensor, "batch heads time m"]]:
        """The family's extra features, head-first ``[B, H, T, width]`` (float64), links applied."""
        x = x.to(torch.float64)
        W = params.W_X.to(torch.float64)
        u = torch.einsum("btd,hmd->bhtm", x, W[..., :-1]) + W[None, :, None, :, -1]
        rows = _rows(self.spec, params.W_Q.shape[1], params.W_V.shape[1])
        out = {}
        for b in self.spec.blocks:
            z = u[..., rows[b.name]]
            if b.link == "sigmoid":
                z = torch.sigmoid(z)
            elif b.link == "logsigmoid":
                z = F.logsigmoid(z)
            elif b.link == "const":
                z = W[None, :, None, rows[b.name], -1].expand_as(z)
            out[b.name] = z
        return out

    def reference(
        self, params: ControlParams, x: Float[Tensor, "batch time d"]
    ) -> Float[Tensor, "batch time d_out"]:
        """The family's op in float64 (``spec.layer``), heads merged, then ``W_O``."""
        x = self._check(params, x).to(torch.float64)
        p = to_float64(params) if params.W_Q.dtype != torch.float64 else params
        q, k, v = heads_qkv(x, p.W_Q, p.W_K, p.W_V)
        return merge_heads(self.spec.layer(q, k, v, self.extras(p, x)), p.W_O)

    def magnitude(self, params: ControlParams, x: Tensor) -> Tensor:
        r"""$M$ of the tried construction (:func:`.plan.plan_magnitude`) plus $|y_{\mathrm{ref}}|$: the
        scale of
        both computations compared."""
        p64 = to_float64(params)
        x64 = x.detach().to("cpu", torch.float64)
        M = plan_magnitude(self.plan(p64), x64, self.path_length(p64, x.shape[1]))
        return M + self.reference(p64, x64).abs()

    def plan(self, params: ControlParams) -> Plan:
        """LSA direct on the same $q, k, v$; the family's forget gate $\\sigma(w\\cdot\\tilde x)$ as E1
        decay."""
        decay = None
        if self.spec.decay:
            row = _rows(self.spec, params.W_Q.shape[1], params.W_V.shape[1])[self.spec.decay].start
            decay = InputDecay(params.W_X[:, row, :])
        kw = {} if decay is None else {"decay": decay}
        return Plan(affine(params.W_Q), affine(params.W_K), affine(params.W_V), params.W_O, **kw)


# -- shared pieces of the references (float64, head-first [B, H, T, *]) --------------------------------------
def _causal(T: int, strict: bool = False) -> Tensor:
    return torch.ones(T, T, dtype=torch.bool).tril(-1 if strict else 0)


def _softmax_masked(s: Tensor, mask: Tensor) -> Tensor:
    r"""Row softmax of ``s [..., T, T]`` over the positions of ``mask`` (rows without any: 0)."""
    e = torch.exp(s).masked_fill(~mask, 0.0)
    den = e.sum(-1, keepdim=True)
    return e / torch.where(den == 0, torch.ones_like(den), den)


def _segsum(g: Tensor) -> Tensor:
    r"""$G_{ts} = \sum_{r=s+1}^{t} g_r$ for ``g [B, H, T]`` -> ``[B, H, T, T]`` (any sign; mask it)."""
    c = g.cumsum(-1)
    return c[..., :, None] - c[..., None, :]


def _l2(t: Tensor) -> Tensor:
    n2 = (t * t).sum(-1, keepdim=True)
    return t / torch.sqrt(torch.where(n2 == 0, torch.ones_like(n2), n2))


def _scalar(e: Tensor) -> Tensor:
    return e[..., 0]


# -- softmax-type families -----------------------------------------------------------------------------------
def forgetting_attn(q, k, v, e):
    r"""Lin et al. 2025: $o_t = \sum_{s\le t}\mathrm{softmax}_s(q_t\cdot k_s + \sum_{r=s+1}^{t}\log
    f_r)v_s$."""
    s = q @ k.transpose(-1, -2) + _segsum(_scalar(e["log_f"]))
    return _softmax_masked(s, _causal(q.shape[2])) @ v


def stickbreaking_attn(q, k, v, e):
    r"""Tan et al. 2024: $\beta_{ts} = \sigma(q_t\cdot k_s)$, $A_{ts} = \beta_{ts}\prod_{s<r<t}(1-\beta_{tr})$
    over keys $s < t$ (fla's default ``attend_current=False``), $o_t = \sum_s A_{ts}v_s$."""
    T = q.shape[2]
    beta = torch.sigmoid(q @ k.transpose(-1, -2))
    rows = []
    for t in range(T):
        a, rest = [], torch.ones_like(beta[..., t, 0])
        for s in range(t - 1, -1, -1):  # the nearest key breaks the stick first
            a.append(beta[..., t, s] * rest)
            rest = rest * (1 - beta[..., t, s])
        a = a[::-1] + [torch.zeros_like(rest)] * (T - t)
        rows.append(torch.stack(a, -1))
    return torch.stack(rows, -2) @ v


def path_attn(q, k, v, e):
    r"""Yang et al. 2025 (PaTH): logits $q_t^\top P_t P_{t-1}\cdots P_{s+1}k_s + \sum_{r=s+1}^t g_r$ with
    Householder-like $P_r = I - \beta_r w_rw_r^\top$ ($w$ $L_2$-normalised, $\beta = 2\sigma(\cdot)$, as in
    the paper), softmax over $s\le t$."""
    w, beta, g = path_w(e), 2 * _scalar(e["beta"]), _scalar(e["log_f"])
    B, H, T, K = q.shape
    eye = torch.eye(K, dtype=q.dtype)
    P = eye - beta[..., None, None] * w[..., :, None] * w[..., None, :]  # [B, H, T, K, K]
    cols = []
    for s in range(T):
        ks, out = k[:, :, s], []
        for t in range(T):
            if t > s:
                ks = (P[:, :, t] @ ks[..., None])[..., 0]
            out.append((q[:, :, t] * ks).sum(-1))
        cols.append(torch.stack(out, -1))
    logits = torch.stack(cols, -1) + _segsum(g)
    return _softmax_masked(logits, _causal(T)) @ v


def path_w(e):
    """PaTH's Householder vectors: the ``w`` block, $L_2$-normalised."""
    return _l2(e["w"])


def deltaformer(q, k, v, e):
    r"""DeltaFormer: pseudo-values $u_t = v_t - \beta_t\sum_{s<t}\mathrm{softmax}_{s<t}(q_t\cdot k_s)u_s$,
    then
    $o_t = \sum_{s\le t}\mathrm{softmax}_{s\le t}(q_t\cdot k_s)u_s$ (fla's ``naive_deltaformer_attn``)."""
    T = q.shape[2]
    beta = _scalar(e["beta"])
    s = q @ k.transpose(-1, -2)
    p_strict = _softmax_masked(s, _causal(T, strict=True))
    u = []
    for t in range(T):
        if t == 0:
            u.append(v[:, :, 0])
        else:
            prev = torch.stack(u, 2)
            u.append(v[:, :, t] - beta[..., t, None] * (p_strict[:, :, t, :t, None] * prev).sum(2))
    return _softmax_masked(s, _causal(T)) @ torch.stack(u, 2)


def parallax(q, k, v, e):
    r"""Parallax (arXiv 2605.29157, Alg. 1): $p_1 = \exp(q\cdot k)$, $p_2 = p_1\,(r\cdot k)$, $d_i = \sum
    p_i$,
    $o = (p_1v/d_1)(1 + d_2/d_1) - p_2v/d_1$, causal."""
    mask = _causal(q.shape[2])
    p1 = torch.exp(q @ k.transpose(-1, -2)).masked_fill(~mask, 0.0)
    p2 = p1 * (e["r"] @ k.transpose(-1, -2))
    d1, d2 = p1.sum(-1, keepdim=True), p2.sum(-1, keepdim=True)
    return (p1 @ v) / d1 * (1 + d2 / d1) - (p2 @ v) / d1


def wall_attn(q, k, v, e):
    r"""Wall attention (fla ``wall_attn``): softmax over $s\le t$ of $\sum_n q_{tn}k_{sn}e^{P_{tn}-P_{sn}}$
    with
    $P$ the prefix sum of the per-key log-decays $g$ (GLA-decayed logits inside a softmax)."""
    P = e["log_f"].cumsum(2)  # [B, H, T, K]
    diff = P[:, :, :, None, :] - P[:, :, None, :, :]
    s = (
        q[:, :, :, None, :]
        * k[:, :, None, :, :]
        * torch.exp(diff.masked_fill(~_causal(q.shape[2])[..., None], 0.0))
    ).sum(-1)
    return _softmax_masked(s, _causal(q.shape[2])) @ v


# -- slot memories read through a softmax --------------------------------------------------------------------
def _slot_read(q, k, v, write, log_f):
    """Two gated slot memories (ABC/GSA): keys ``hk [K, M]``, values ``hv [M, V]``; softmax over slots."""
    B, H, T, K = q.shape
    M, V = write.shape[-1], v.shape[-1]
    hk = q.new_zeros(B, H, K, M)
    hv = q.new_zeros(B, H, M, V)
    out = []
    for t in range(T):
        f = torch.exp(log_f[:, :, t])  # [B, H, M]
        hk = hk * f[..., None, :] + k[:, :, t, :, None] * write[:, :, t, None, :]
        hv = hv * f[..., :, None] + write[:, :, t, :, None] * v[:, :, t, None, :]
        ok = (q[:, :, t, :, None] * hk).sum(-2)
        ek = torch.exp(ok)
        out.append(((ek / ek.sum(-1, keepdim=True))[..., None] * hv).sum(-2))
    return torch.stack(out, 2)


def abc(q, k, v, e):
    r"""Peng et al. 2022 (ABC): slot scores $s_t$; $\tilde K_t = \sum_{r\le t}e^{s_r}k_r/\sum_{r\le t}e^{s_r}$
    per slot (and $\tilde V_t$), $o_t = \tilde V_t^\top\mathrm{softmax}(\tilde K_tq_t)$ (fla's recurrent form:
    write $e^{s_t - z_t}$, forget $e^{z_{t-1}-z_t}$, $z$ the running log-sum-exp)."""
    es = torch.exp(e["s"])
    Z = es.cumsum(2)
    z = torch.log(Z)
    prev = torch.cat([z[:, :, :1], z[:, :, :-1]], 2)
    return _slot_read(q, k, v, es / Z, prev - z)


def gsa(q, k, v, e):
    r"""Zhang et al. 2024 (GSA): slot memories with forget gates $\alpha_t = \sigma(\cdot)$ and writes
    $1-\alpha_t$ (fla's ``naive_recurrent_gsa`` with ``s = 1 - alpha``, ``g = log alpha``), softmax read."""
    log_a = e["log_a"]
    return _slot_read(q, k, v, 1 - torch.exp(log_a), log_a)


def log_linear_attn(q, k, v, e):
    r"""Guo et al. 2025: $o_t = \sum_{s\le t}\lambda_t^{(\ell(t,s))}e^{\sum_{r=s+1}^t g_r}(q_t\cdot
    k_s)v_s$, the
    level $\ell(t,s)$ of $s$ in the Fenwick partition of $[0, t]$ (level 0: $s = t$; fla's level masks)."""
    lam, g = e["levels"], _scalar(e["log_f"])
    B, H, T, K = q.shape
    if T > 1 << (lam.shape[-1] - 1):
        raise ValueError(f"log_linear_attn: T={T} needs more than {lam.shape[-1]} levels (T <= 2048)")
    A = torch.exp(_segsum(g).masked_fill(~_causal(T), 0.0)).masked_fill(~_causal(T), 0.0)
    W = torch.zeros(B, H, T, T, dtype=q.dtype)
    for t in range(T):
        W[:, :, t, t] = lam[:, :, t, 0]
        for lvl in range(1, lam.shape[-1]):
            half = 1 << (lvl - 1)
            if t % (1 << lvl) < half:
                continue
            hi = t - t % half
            for s in range(max(0, hi - half), hi):
                W[:, :, t, s] = lam[:, :, t, lvl]
    return (A * W * (q @ k.transpose(-1, -2))) @ v


# -- delta-rule families (fla's state S [K, V], o = S^T q) ---------------------------------------------------
def _delta_scan(q, step):
    B, H, T, K = q.shape
    S, out = None, []
    for t in range(T):
        S = step(t, S)
        out.append((q[:, :, t, :, None] * S).sum(-2))
    return torch.stack(out, 2)


def _zeros_state(q, v):
    return q.new_zeros(q.shape[0], q.shape[1], q.shape[-1], v.shape[-1])


def comba(q, k, v, e):
    r"""Comba (fla ``naive_recurrent_comba``): $S \leftarrow e^{g_t}S$, $u_t = \beta_t(v_t - S^\top p_t)$,
    $S \leftarrow S + k_tu_t^\top$ (the erase key $p_t$ differs from the write key $k_t$)."""
    p, beta, g = e["p"], _scalar(e["beta"]), _scalar(e["log_f"])
    S0 = _zeros_state(q, v)

    def step(t, S):
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None, None]
        u = beta[:, :, t, None] * (v[:, :, t] - (S * p[:, :, t, :, None]).sum(-2))
        return S + k[:, :, t, :, None] * u[..., None, :]

    return _delta_scan(q, step)


def gated_delta_product(q, k, v, e):
    r"""Siems et al. 2025 (DeltaProduct), two Householder steps per token: $S \leftarrow e^{g_t}S$, then for
    $j = 1, 2$: $S \leftarrow S + \beta_{t,j}k_{t,j}(v_{t,j} - S^\top k_{t,j})^\top$ ($k_{t,1} = k_t$,
    $v_{t,1} =
    v_t$)."""
    k2, v2, beta, g = e["k2"], e["v2"], e["beta"], _scalar(e["log_f"])
    S0 = _zeros_state(q, v)

    def step(t, S):
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None, None]
        for j, (kk, vv) in enumerate(((k[:, :, t], v[:, :, t]), (k2[:, :, t], v2[:, :, t]))):
            u = vv - (S * kk[..., None]).sum(-2)
            S = S + beta[:, :, t, j, None, None] * kk[..., None] * u[..., None, :]
        return S

    return _delta_scan(q, step)


def gated_delta_product_symbolic(W_Q, W_K, W_V, W_X, W_O, x):
    """:func:`gated_delta_product` on SymPy object arrays (one sequence ``x [T, d]``), for the prover."""
    import numpy as np  # lazy: NumPy/SymPy only for the prover's exact hooks
    import sympy as sp  # lazy: NumPy/SymPy only for the prover's exact hooks

    H, dk, _ = W_Q.shape
    dv = W_V.shape[1]

    def sig(u):
        return 1 / (1 + sp.exp(-u))

    outs = []
    for h in range(H):
        S = np.zeros((dk, dv), dtype=object)
        rows = []
        for xt in x:
            u = W_X[h] @ np.append(xt, 1)
            q, k, v = W_Q[h] @ xt, W_K[h] @ xt, W_V[h] @ xt
            k2, v2, b = u[:dk], u[dk : dk + dv], [sig(u[dk + dv]), sig(u[dk + dv + 1])]
            S = sig(u[dk + dv + 2]) * S
            for j, (kk, vv) in enumerate(((k, v), (k2, v2))):
                S = S + b[j] * np.outer(kk, vv - S.T @ kk)
            rows.append(S.T @ q)
        outs.append(np.array(rows, dtype=object).reshape(len(x), dv))
    y = np.concatenate(outs, axis=1)
    return y if W_O is None else np.array([W_O @ r for r in y], dtype=object)


def gdn2(q, k, v, e):
    r"""GDN-2 (fla ``naive_recurrent_gdn2``): per-key decay $S \leftarrow \mathrm{diag}(e^{g_t})S$, erase with
    per-key strength $b_t$ and write with per-value strength $w_t$: $S \leftarrow S + k_t(w_t\odot v_t -
    S^\top(b_t\odot k_t))^\top$."""
    g, b, w = e["log_f"], e["b"], e["w"]
    S0 = _zeros_state(q, v)

    def step(t, S):
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None]
        u = w[:, :, t] * v[:, :, t] - ((b[:, :, t] * k[:, :, t])[..., None] * S).sum(-2)
        return S + k[:, :, t, :, None] * u[..., None, :]

    return _delta_scan(q, step)


def kda(q, k, v, e):
    r"""Kimi Delta Attention (fla ``naive_recurrent_kda``): $S \leftarrow \mathrm{diag}(e^{g_t})S$, $S
    \leftarrow S + \beta_tk_t(v_t - S^\top k_t)^\top$ (per-key decay)."""
    g, beta = e["log_f"], _scalar(e["beta"])
    S0 = _zeros_state(q, v)

    def step(t, S):
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None]
        u = v[:, :, t] - (k[:, :, t, :, None] * S).sum(-2)
        return S + (beta[:, :, t, None] * k[:, :, t])[..., None] * u[..., None, :]

    return _delta_scan(q, step)


#: fla's ATK preconditioner constants (``x = 1.5``, ``eps = 1e-6``, ``log_atk_scale = -0.2``)
ATK_X, ATK_EPS, ATK_CENTER = 1.5, 1e-6, -0.2


def _atk(A, g_atk, beta_atk, kt):
    r"""ATK: $A \leftarrow e^{g}A + \beta k^2$, $r = \log(A+\epsilon) - c$, $M = x^{-r/(1+|r|)}$."""
    A = torch.exp(g_atk)[..., None] * A + beta_atk[..., None] * kt * kt
    r = torch.log(A + ATK_EPS) - ATK_CENTER
    return A, torch.exp(-torch.log(torch.tensor(ATK_X, dtype=A.dtype)) * (r / (1 + torch.abs(r))))


def precond_gated_delta_rule(q, k, v, e):
    r"""Preconditioned Gated DeltaNet (fla ``naive_recurrent_precond_gated_delta_rule``): $L_2$-normalised $q,
    k$; ATK preconditioner $M_t$ (:func:`_atk`); $S \leftarrow e^{g_t}S$, $S \leftarrow S + (k_t\odot M_t)
    \beta_t(v_t - S^\top k_t)^\top$."""
    q, k = _l2(q), _l2(k)
    g, beta, g_atk, beta_atk = (_scalar(e[n]) for n in ("log_f", "beta", "log_f_atk", "beta_atk"))
    S0, A0 = _zeros_state(q, v), q.new_zeros(q.shape[0], q.shape[1], q.shape[-1])
    state = {"A": A0}

    def step(t, S):
        state["A"], M = _atk(state["A"], g_atk[:, :, t], beta_atk[:, :, t], k[:, :, t])
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None, None]
        u = beta[:, :, t, None] * (v[:, :, t] - (S * k[:, :, t, :, None]).sum(-2))
        return S + (k[:, :, t] * M)[..., None] * u[..., None, :]

    return _delta_scan(q, step)


def precond_kda(q, k, v, e):
    r"""Preconditioned KDA (fla ``naive_recurrent_precond_kda``): per-key decay, ATK preconditioner $M_t$; $S
    \leftarrow \mathrm{diag}(e^{g_t})S + \beta_t(k_t\odot M_t)(v_t - S^\top k_t)^\top$."""
    g = e["log_f"]
    beta, g_atk, beta_atk = (_scalar(e[n]) for n in ("beta", "log_f_atk", "beta_atk"))
    S0, A0 = _zeros_state(q, v), q.new_zeros(q.shape[0], q.shape[1], q.shape[-1])
    state = {"A": A0}

    def step(t, S):
        state["A"], M = _atk(state["A"], g_atk[:, :, t], beta_atk[:, :, t], k[:, :, t])
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None]
        u = v[:, :, t] - (k[:, :, t, :, None] * S).sum(-2)
        return S + (beta[:, :, t, None] * k[:, :, t] * M)[..., None] * u[..., None, :]

    return _delta_scan(q, step)


def momentum_delta_rule(q, k, v, e):
    r"""Momentum delta rule (fla ``recurrent_momentum_delta_rule_ref``): $W_t = -(v_t - S^\top p_t)$,
    $M \leftarrow \mu_tM + \eta_tk_tW_t^\top$, $S \leftarrow \alpha_tS - \beta_tM$."""
    p = e["p"]
    log_a, log_mu, beta, eta = (_scalar(e[n]) for n in ("log_f", "log_mu", "beta", "eta"))
    S0 = _zeros_state(q, v)
    state = {"M": S0}

    def step(t, S):
        S = S0 if S is None else S
        w = -(v[:, :, t] - (p[:, :, t, :, None] * S).sum(-2))
        M = (
            torch.exp(log_mu[:, :, t])[..., None, None] * state["M"]
            + (eta[:, :, t, None] * k[:, :, t])[..., None] * w[..., None, :]
        )
        state["M"] = M
        return torch.exp(log_a[:, :, t])[..., None, None] * S - beta[:, :, t, None, None] * M

    return _delta_scan(q, step)


def _dplr(q, k, v, alpha, beta, log_w):
    r"""$S \leftarrow \mathrm{diag}(e^{g_t})S + k_tv_t^\top + \beta_t(\alpha_t^\top S)$ (fla's
    ``dplr_recurrence``, state ``[K, V]``)."""
    S0 = _zeros_state(q, v)

    def step(t, S):
        S = S0 if S is None else S
        low_rank = beta[:, :, t, :, None] * (alpha[:, :, t, :, None] * S).sum(-2, keepdim=True)
        return S * torch.exp(log_w[:, :, t])[..., None] + k[:, :, t, :, None] * v[:, :, t, None, :] + low_rank

    return _delta_scan(q, step)


def generalized_delta_rule(q, k, v, e):
    r"""Diagonal-plus-low-rank transitions (fla ``dplr_recurrence``): $S_t = (\mathrm{diag}(e^{g_t}) +
    \beta_t\alpha_t^\top)$-type update $S \leftarrow \mathrm{diag}(e^{g_t})S + k_tv_t^\top +
    \beta_t(\alpha_t^\top S)$ with free $\alpha_t, \beta_t$."""
    return _dplr(q, k, v, e["a"], e["b"], e["log_f"])


#: RWKV-7's decay: w_t = exp(-e^{-1/2} sigma(.)) in (e^{-e^{-1/2}}, 1)
_RWKV7_W = 0.6065306597126334


def rwkv7(q, k, v, e):
    r"""Peng et al. 2025 (RWKV-7): $S_t = S_{t-1}(\mathrm{diag}(w_t) -
    \hat\kappa_t(a_t\odot\hat\kappa_t)^\top) +
    v_tk_t^\top$, $o_t = S_tr_t$ ($r = q$; $\hat\kappa$ the $L_2$-normalised removal key, $a_t =
    \sigma(\cdot)$,
    $w_t = \exp(-e^{-1/2}\sigma(\cdot))$); fla's DPLR form with $\alpha = -\hat\kappa$, $\beta =
    \hat\kappa\odot
    a$."""
    kap = _l2(e["kappa"])
    log_w = -_RWKV7_W * e["w"]
    return _dplr(q, k, v, -kap, kap * e["a"], log_w)


def gated_oja_rule(q, k, v, e):
    r"""Gated Oja rule (fla ``fused_recurrent_gated_oja_rule``, the kernel's update; no naive reference):
    $S \leftarrow S\,\mathrm{diag}(e^{g_t})$ per value channel, Oja's correction on the *key* side
    $\tilde k_t = \beta_t(k_t - Sv_t)$, $S \leftarrow S + \tilde k_tv_t^\top$, $o_t = S^\top q_t$."""
    g, beta = e["log_f"], _scalar(e["beta"])
    S0 = _zeros_state(q, v)

    def step(t, S):
        S = (S0 if S is None else S) * torch.exp(g[:, :, t])[..., None, :]
        kk = beta[:, :, t, None] * (k[:, :, t] - (S * v[:, :, t, None, :]).sum(-1))
        return S + kk[..., None] * v[:, :, t, None, :]

    return _delta_scan(q, step)


def mesa_net(q, k, v, e):
    r"""von Oswald et al. 2025 (MesaNet, fla ``naive_mesa_net_exact``): $H^{kk}_t = e^{g_t}H^{kk}_{t-1} +
    \beta_tk_tk_t^\top$, $H^{kv}_t$ likewise with $v_t$; $o_t = (H^{kv}_t)^\top(H^{kk}_t +
    \mathrm{diag}(\lambda))^{-1}q_t$, $\lambda = e^{c}$ from the constant column of the ``lam`` block (solved
    by Gaussian elimination: $H^{kk} + \mathrm{diag}\lambda$ is symmetric positive definite)."""
    g, beta = _scalar(e["log_f"]), _scalar(e["beta"])
    lam = torch.exp(e["lam"][:, :, 0])  # constant in time (link "const")
    B, H, T, K = q.shape
    hkk = q.new_zeros(B, H, K, K)
    hkv = q.new_zeros(B, H, K, v.shape[-1])
    out = []
    for t in range(T):
        f = torch.exp(g[:, :, t])[..., None, None]
        kb = beta[:, :, t, None] * k[:, :, t]
        hkk = hkk * f + kb[..., :, None] * k[:, :, t, None, :]
        hkv = hkv * f + kb[..., :, None] * v[:, :, t, None, :]
        xs = _spd_solve(hkk + lam[..., :, None] * torch.eye(K, dtype=q.dtype), q[:, :, t])
        out.append((xs[..., None] * hkv).sum(-2))
    return torch.stack(out, 2)


def _spd_solve(A: Tensor, b: Tensor) -> Tensor:
    """``A x = b`` for symmetric positive definite ``A [..., K, K]`` (Gaussian elimination, no pivoting)."""
    K = A.shape[-1]
    M = torch.cat([A, b[..., None]], -1).clone()
    for i in range(K):
        piv = M[..., i, i].clone()
        for r in range(i + 1, K):
            M[..., r, :] = M[..., r, :] - (M[..., r, i] / piv)[..., None] * M[..., i, :]
    x = [None] * K
    for i in range(K - 1, -1, -1):
        acc = M[..., i, K]
        for j in range(i + 1, K):
            acc = acc - M[..., i, j] * x[j]
        x[i] = acc / M[..., i, i]
    return torch.stack(x, -1)


# -- running-sum normalisers ---------------------------------------------------------------------------------
def lightnet(q, k, v, e):
    r"""LightNet (fla ``fused_recurrent_lightnet``): keys are logits normalised by their running sum per
    channel, $S_t = \sum_{s\le t}(e^{k_s}/\sum_{r\le t}e^{k_r})v_s^\top$ (fla: $\tilde k = e^{k - z_t}$, GLA
    decay $e^{z_{t-1}-z_t}$, $z$ the running log-sum-exp), $o_t = S_t^\top q_t$."""
    ek = torch.exp(k)
    Z = ek.cumsum(2)
    num = (ek[..., :, None] * v[..., None, :]).cumsum(2)  # [B, H, T, K, V]
    return ((q / Z)[..., None] * num).sum(-2)


def rwkv4(q, k, v, e):
    r"""Peng et al. 2023 (RWKV-4), WKV per channel $c$ with decay $w = e^{c_w} > 0$ and bonus $u$:
    $\mathrm{wkv}_t = \frac{\sum_{i<t}e^{-(t-1-i)w + k_i}v_i + e^{u+k_t}v_t}{\sum_{i<t}e^{-(t-1-i)w+k_i} +
    e^{u+k_t}}$ (the op; the receptance gate is the layer's). The queries are not read."""
    w, u = torch.exp(e["w"][:, :, 0]), e["u"][:, :, 0]  # [B, H, C], constant in time
    T = k.shape[2]
    out = []
    for t in range(T):
        num = torch.exp(u + k[:, :, t]) * v[:, :, t]
        den = torch.exp(u + k[:, :, t])
        for i in range(t):
            a = torch.exp(-(t - 1 - i) * w + k[:, :, i])
            num, den = num + a * v[:, :, i], den + a
        out.append(num / den)
    return torch.stack(out, 2)


# -- test-time training --------------------------------------------------------------------------------------
_TTT_EPS, _TTT_MINI_BATCH = 1e-6, 16


def _ln_stats(x):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) * (x - mean)).mean(-1, keepdim=True)
    return mean, torch.sqrt(var + _TTT_EPS)


def ttt(q, k, v, e):
    r"""Sun et al. 2024 (TTT-Linear; fla ``ttt_linear``): mini-batches of 16 tokens; per mini-batch the inner
    loss $\|\mathrm{LN}(kW + b_W) - (v - k)\|^2$ (LayerNorm weights $w, b$) takes one gradient step with
    per-token rates $\eta_t$; outputs $q W + \ldots$ (fla's closed form) through the same LayerNorm, plus the
    residual."""
    w, b, eta = e["ln_w"][:, :, :1], e["ln_b"][:, :, :1], e["eta"]  # [B, H, 1, D], [B, H, T, 1]
    B, H, T, D = q.shape
    h = q.new_zeros(B, H, D, D)
    hb = q.new_zeros(B, H, 1, D)
    outs = []
    for i0 in range(0, T, _TTT_MINI_BATCH):
        sl = slice(i0, min(T, i0 + _TTT_MINI_BATCH))
        qi, ki, vi, ei = q[:, :, sl], k[:, :, sl], v[:, :, sl], eta[:, :, sl]
        kh = ki @ h + hb
        mean, rstd = _ln_stats(kh)
        kh_hat = (kh - mean) / rstd
        g = (w * kh_hat + b - (vi - ki)) * w
        v_new = (D * g - g.sum(-1, keepdim=True) - kh_hat * (g * kh_hat).sum(-1, keepdim=True)) / (rstd * D)
        attn = torch.tril(qi @ ki.transpose(-2, -1))
        o = qi @ h - (ei * attn) @ v_new + hb - torch.tril(ei.expand_as(attn)) @ v_new
        last = ei[:, :, -1:, :]  # fla pads a partial mini-batch with the last rate (same outputs)
        h = h - (last * ki).transpose(-1, -2) @ v_new
        hb = hb - (last * v_new).sum(-2, keepdim=True)
        mean, rstd = _ln_stats(o)
        outs.append(o + (o - mean) / rstd * w + b)
    return torch.cat(outs, 2)


def titans(q, k, v, e):
    r"""Behrouz et al. 2024 (Titans) as fla's ``titans_linear``: memory $M_t = (1-\alpha_t)M_{t-1} + S_t$,
    momentum $S_t = \eta_tS_{t-1} - 2\theta_tk_t^\top\nabla_t$ with the LayerNorm-reconstruction gradient
    taken
    at the memory of the last 16-token boundary; output $\mathrm{LN}(q_tM_t)$ plus residual. The gradient is
    fla 0.6.0's expression verbatim: ``D * grad - grad.sum(-1) / (rstd * D)`` (see
    docs/variants/oracle.md)."""
    w, b = e["ln_w"][:, :, :1], e["ln_b"][:, :, :1]
    theta, alpha, eta = e["theta"], e["alpha"], e["eta"]  # [B, H, T, 1]
    B, H, T, D = q.shape
    M = q.new_zeros(B, H, D, D)
    M_grad, S = M, M
    outs = []
    for t in range(T):
        qt, kt, vt = q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1]
        km = kt @ M_grad
        mean, rstd = _ln_stats(km)
        km_hat = (km - mean) / rstd
        grad = (w * km_hat + b - (vt - kt)) * w
        v_new = D * grad - grad.sum(-1, keepdim=True) / (rstd * D)
        v_new = v_new - km_hat * (grad * km_hat).sum(-1, keepdim=True) / (rstd * D)
        S = eta[:, :, t : t + 1] * S - 2 * theta[:, :, t : t + 1] * kt.transpose(-2, -1) @ v_new
        M = (1 - alpha[:, :, t : t + 1]) * M + S
        o = qt @ M
        mean, rstd = _ln_stats(o)
        outs.append(o + (o - mean) / rstd * w + b)
        if (t + 1) % _TTT_MINI_BATCH == 0:
            M_grad = M
    return torch.cat(outs, 2)


def titans_symbolic(W_Q, W_K, W_V, W_X, W_O, x):
    """:func:`titans` on SymPy object arrays (one sequence ``x [T, d]``), for the prover."""
    import numpy as np  # lazy: NumPy/SymPy only for the prover's exact hooks
    import sympy as sp  # lazy: NumPy/SymPy only for the prover's exact hooks

    H, D, _ = W_Q.shape
    eps = sp.Rational(_TTT_EPS)

    def sig(u):
        return 1 / (1 + sp.exp(-u))

    def stats(r):
        mean = sum(r) / D
        return mean, sp.sqrt(sum((c - mean) ** 2 for c in r) / D + eps)

    outs = []
    for h in range(H):
        w, b = W_X[h, :D, -1], W_X[h, D : 2 * D, -1]
        M = np.zeros((D, D), dtype=object)
        M_grad, S = M, M
        rows = []
        for t, xt in enumerate(x):
            u = W_X[h] @ np.append(xt, 1)
            theta, alpha, eta = sig(u[2 * D]), sig(u[2 * D + 1]), sig(u[2 * D + 2])
            q, k, v = W_Q[h] @ xt, W_K[h] @ xt, W_V[h] @ xt
            km = k @ M_grad
            mean, rstd = stats(km)
            km_hat = (km - mean) / rstd
            grad = (w * km_hat + b - (v - k)) * w
            v_new = D * grad - sum(grad) / (rstd * D)
            v_new = v_new - km_hat * sum(grad * km_hat) / (rstd * D)
            S = eta * S - 2 * theta * np.outer(k, v_new)
            M = (1 - alpha) * M + S
            o = q @ M
            mean, rstd = stats(o)
            rows.append(o + (o - mean) / rstd * w + b)
            if (t + 1) % _TTT_MINI_BATCH == 0:
                M_grad = M
        outs.append(np.array(rows, dtype=object).reshape(len(x), D))
    y = np.concatenate(outs, axis=1)
    return y if W_O is None else np.array([W_O @ r for r in y], dtype=object)


# -- recurrent (hidden-to-hidden) gates ----------------------------------------------------------------------
def slstm(q, k, v, e):
    r"""Beck et al. 2024 (xLSTM, sLSTM, Eqs. 8-14) per head of width $d_v$, with recurrent weights $R$ [4,
    d_v,
    d_v] (constant): pre-activations $\tilde z = v_t + R_zh_{t-1}$, $\tilde\imath, \tilde f, \tilde o$ from
    the
    ``gates`` block plus $R_\cdot h_{t-1}$; $z = \tanh\tilde z$, $i = e^{\tilde\imath}$, $f = \sigma(\tilde
    f)$,
    $o = \sigma(\tilde o)$; $c_t = fc + iz$, $n_t = fn + i$, $h_t = o\,c_t/n_t$ (the stabiliser $m_t$ cancels
    in $h_t$). Queries and keys are not read."""
    B, H, T, V = v.shape
    R = e["R"][:, :, 0].reshape(B, H, 4, V, V)
    gates = e["gates"].reshape(B, H, T, 3, V)
    h = v.new_zeros(B, H, V)
    c, n = v.new_zeros(B, H, V), v.new_zeros(B, H, V)
    out = []
    for t in range(T):
        rec = (R * h[:, :, None, None, :]).sum(-1)  # [B, H, 4, V]
        z = torch.tanh(v[:, :, t] + rec[:, :, 0])
        i = torch.exp(gates[:, :, t, 0] + rec[:, :, 1])
        f = torch.sigmoid(gates[:, :, t, 1] + rec[:, :, 2])
        o = torch.sigmoid(gates[:, :, t, 2] + rec[:, :, 3])
        c, n = f * c + i * z, f * n + i
        h = o * c / n
        out.append(h)
    return torch.stack(out, 2)


# -- cyclic flow attention -----------------------------------------------------------------------------------
CYFA_SLOTS = 4


def _cyfa_rotation(lam, M):
    """fla ``cyfa.naive._rotation_terms``: cos/sin slot pairs at phase ``lam * pair`` on a period ``M -
    1``."""
    idx = torch.arange(M)
    is_cos = idx.remainder(2) == 0
    mate = torch.where(is_cos, idx + 1, idx - 1).clamp(0, M - 1)
    period = M - 1
    pair = torch.arange(M // 2).repeat_interleave(2)
    whole = torch.floor(lam)
    coord = (whole.to(torch.long).remainder(period).unsqueeze(-1) * pair).remainder(period).to(lam.dtype)
    coord = coord + (lam - whole).unsqueeze(-1) * pair.to(lam.dtype)
    coord = torch.where(coord > period * 0.5, coord - period, coord)
    phase = coord * (2 * torch.pi / period)
    return is_cos, mate, torch.cos(phase), torch.sin(phase)


def _cyfa_readout(readout, M):
    period = M - 1
    idx = torch.arange(M)
    rows = torch.arange(period, dtype=torch.float64)[:, None]
    omega = (idx // 2) * (2.0 * torch.pi / period)
    basis = torch.where(idx.remainder(2)[None, :] == 1, torch.sin(rows * omega), torch.cos(rows * omega))
    basis[:, 0] *= period**-0.5
    basis[:, 1] = 0.0
    basis[:, 2:] *= (2.0 / period) ** 0.5
    return readout @ basis  # [H, C, M]


def cyfa(q, k, v, e):
    r"""CyFA (fla ``naive_recurrent_cyfa``), ``M = 4`` slots: RMS-normalised $q, k$; slot memories decayed by
    $e^{g_t}$ and written with rotating atoms at the phase $\lambda_t = \sum_{s\le t}\delta_s$; the read is a
    softmax over a learned readout table ``[C, C]`` of the rotated logits (a floor and a softmax: not
    polynomial)."""
    M = CYFA_SLOTS
    B, H, T, K = q.shape
    C = M - 1
    g, delta, beta = _scalar(e["log_f"]), _scalar(e["delta"]), _scalar(e["beta"])
    table = _cyfa_readout(e["readout"][0, :, 0].reshape(H, C, C), M)  # constant [H, C, M]

    def rms(x, wt):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * wt

    q = rms(q, e["q_norm"][:, :, :1])
    k = rms(k, e["k_norm"][:, :, :1])
    lam = delta.cumsum(-1)
    hk = q.new_zeros(B, H, K, M)
    hv = q.new_zeros(B, H, M, v.shape[-1])
    pair = torch.arange(M) // 2
    atom_scale = torch.where(pair == 0, 1.0, 2.0).div(M - 1).sqrt().to(q.dtype)
    out = []
    for t in range(T):
        f = torch.exp(g[:, :, t])[..., None, None]
        hk, hv = hk * f, hv * f
        is_cos, mate, c, s = _cyfa_rotation(lam[:, :, t], M)
        write = beta[:, :, t, None] * atom_scale * torch.where(is_cos.view(1, 1, -1), c, -s)
        hk = hk + k[:, :, t, :, None] * write[:, :, None, :]
        hv = hv + write[:, :, :, None] * v[:, :, t, None, :]
        raw = torch.einsum("bhkm,bhk->bhm", hk, q[:, :, t])
        rot = torch.where(is_cos.view(1, 1, -1), c * raw - s * raw[:, :, mate], s * raw[:, :, mate] + c * raw)
        logits = torch.einsum("hrm,bhm->bhr", table, rot)
        num = torch.exp(logits - logits.max(-1, keepdim=True).values)
        probs = num / num.sum(-1, keepdim=True)
        coeff = torch.einsum("hrm,bhr->bhm", table, probs)
        wts = torch.where(
            is_cos.view(1, 1, -1), c * coeff + s * coeff[:, :, mate], -s * coeff[:, :, mate] + c * coeff
        )
        out.append(torch.einsum("bhm,bhmv->bhv", wts, hv))
    return torch.stack(out, 2)


CONTROLS: list[ControlSpec] = []


def _spec(name, family, blocks, layer, source, oracle, what, decay="", d_kv_equal=False, symbolic=None):
    spec = ControlSpec(name, family, tuple(blocks), layer, source, oracle, what, decay, d_kv_equal, symbolic)
    CONTROLS.append(spec)
    return spec


_LOGF = Block("log_f", 1, "logsigmoid", 2.0)
_BETA = Block("beta", 1, "sigmoid")

_spec(
    "forgetting-attention",
    "forgetting_attn",
    [_LOGF],
    forgetting_attn,
    "Lin et al. 2025 (Forgetting Transformer)",
    "fla.ops.forgetting_attn.naive.naive_forgetting_attn (SF, g = log f, scale=1.0)",
    "softmax attention with a scalar forget gate f_t = sigmoid(.) per head",
    decay="log_f",
)
_spec(
    "stickbreaking-attention",
    "stickbreaking_attn",
    [],
    stickbreaking_attn,
    "Tan et al. 2024 (Scaling stick-breaking attention)",
    "fla.ops.stickbreaking_attn.naive.naive_stickbreaking_attn (SF, scale=1.0, attend_current=False)",
    "stick-breaking attention, weights sigmoid(q.k) times the stick left by nearer keys",
)
_spec(
    "path-attention",
    "path_attn",
    [Block("w", "k"), _BETA, _LOGF],
    path_attn,
    "Yang et al. 2025 (PaTH attention)",
    "fla.ops.path_attn.naive.naive_path_attn (SF, scale=1.0)",
    "softmax attention with Householder-transformed positions (products of I - beta w w^T)",
    decay="log_f",
)
_spec(
    "deltaformer",
    "deltaformer",
    [_BETA],
    deltaformer,
    "DeltaFormer (fla deltaformer)",
    "fla.ops.deltaformer.naive.naive_deltaformer_attn (SF, fixed scale d^-1/2: pass q*sqrt(d_k))",
    "softmax attention on delta-rule pseudo-values u_t = v_t - beta_t sum softmax(q.k) u_s",
    d_kv_equal=True,
)
_spec(
    "parallax",
    "parallax",
    [Block("r", "k")],
    parallax,
    "Parallax, arXiv 2605.29157 (fla parallax)",
    "fla.ops.parallax.naive.naive_parallax (SF, scale=1.0)",
    "softmax-weighted values with a first-order correction by secondary queries r",
    d_kv_equal=True,
)
_spec(
    "wall-attention",
    "wall_attn",
    [Block("log_f", "k", "logsigmoid", 2.0)],
    wall_attn,
    "fla wall_attn",
    "fla.ops.wall_attn.naive.naive_wall_attn (SF, g = per-key log-decay, scale=1.0)",
    "softmax over GLA-decayed logits sum_n q_n k_n exp(P_tn - P_sn)",
)
_spec(
    "abc",
    "abc",
    [Block("s", "k")],
    abc,
    "Peng et al. 2022 (ABC: attention with bounded-memory control)",
    "fla.ops.abc.naive.naive_recurrent_abc (HF, g=None, scale=1.0)",
    "bounded-memory slots (running softmax-normalised writes) read through a softmax over slots",
)
_spec(
    "gsa",
    "gsa",
    [Block("log_a", "k", "logsigmoid", 2.0)],
    gsa,
    "Zhang et al. 2024 (Gated Slot Attention)",
    "fla.ops.gsa.naive.naive_recurrent_gsa (SF, s = 1 - alpha, g = log alpha, scale=1.0)",
    "gated slot memories (forget alpha_t, write 1 - alpha_t) read through a softmax over slots",
)
_spec(
    "log-linear-attention",
    "log_linear_attn",
    [_LOGF, Block("levels", 12)],
    log_linear_attn,
    "Guo et al. 2025 (Log-linear attention)",
    "fla.ops.log_linear_attn.naive.naive_log_linear_attn (SF, level_scales [B,T,H,L], scale=1.0)",
    "Mamba-2-decayed linear attention weighted by per-level scales lambda_t^(l) of a Fenwick partition",
    decay="log_f",
)
_spec(
    "comba",
    "comba",
    [Block("p", "k"), _BETA, _LOGF],
    comba,
    "Comba (fla comba)",
    "fla.ops.comba.naive.naive_recurrent_comba (SF, scale=1.0)",
    "gated delta rule whose erase key p_t differs from its write key k_t",
    decay="log_f",
)
_spec(
    "gated-delta-product",
    "gated_delta_product",
    [Block("k2", "k"), Block("v2", "v"), Block("beta", 2, "sigmoid"), _LOGF],
    gated_delta_product,
    "Siems et al. 2025 (DeltaProduct)",
    "fla.ops.gated_delta_product.naive.naive_recurrent_gated_delta_product (SF, num_householder=2, "
    "scale=1.0)",
    "gated delta rule with two Householder steps per token",
    symbolic=gated_delta_product_symbolic,
)
_spec(
    "gdn2",
    "gdn2",
    [Block("log_f", "k", "logsigmoid", 2.0), Block("b", "k", "sigmoid"), Block("w", "v", "sigmoid")],
    gdn2,
    "fla GDN-2 (channel-wise erase and write gates)",
    "fla.ops.gdn2.naive.naive_recurrent_gdn2 (SF, scale=1.0)",
    "delta rule with per-key decay, per-key erase and per-value write strengths",
)
_spec(
    "kda",
    "kda",
    [Block("log_f", "k", "logsigmoid", 2.0), _BETA],
    kda,
    "Kimi Team 2025 (Kimi Delta Attention)",
    "fla.ops.kda.naive.naive_recurrent_kda (SF, scale=1.0)",
    "delta rule with per-key decay",
)
_spec(
    "precond-gated-deltanet",
    "precond_gated_delta_rule",
    [_LOGF, _BETA, Block("log_f_atk", 1, "logsigmoid", 2.0), Block("beta_atk", 1, "sigmoid")],
    precond_gated_delta_rule,
    "fla preconditioned Gated DeltaNet (ATK preconditioner)",
    "fla.ops.precond_gated_delta_rule.naive.naive_recurrent_precond_gated_delta_rule (SF, scale=1.0, "
    "fixed L2 normalisation of q, k)",
    "Gated DeltaNet with normalised q, k whose write key is preconditioned by ATK",
    decay="log_f",
)
_spec(
    "precond-kda",
    "precond_kda",
    [
        Block("log_f", "k", "logsigmoid", 2.0),
        _BETA,
        Block("log_f_atk", 1, "logsigmoid", 2.0),
        Block("beta_atk", 1, "sigmoid"),
    ],
    precond_kda,
    "fla preconditioned KDA (ATK preconditioner)",
    "fla.ops.precond_kda.naive.naive_recurrent_precond_kda (SF, scale=1.0)",
    "KDA whose write key is preconditioned by ATK",
)
_spec(
    "momentum-delta-rule",
    "momentum_delta_rule",
    [Block("p", "k"), _LOGF, Block("log_mu", 1, "logsigmoid", 1.0), _BETA, Block("eta", 1, "sigmoid")],
    momentum_delta_rule,
    "fla momentum delta rule",
    "fla.ops.momentum_delta_rule.naive.recurrent_momentum_delta_rule_ref (SF, scale=1.0)",
    "delta rule with a momentum state M_t = mu_t M_{t-1} + eta_t k_t (S^T p_t - v_t)^T",
    decay="log_f",
)
_spec(
    "dplr-delta-rule",
    "generalized_delta_rule",
    [Block("a", "k"), Block("b", "k"), Block("log_f", "k", "logsigmoid", 2.0)],
    generalized_delta_rule,
    "fla generalized delta rule (DPLR)",
    "fla.ops.generalized_delta_rule.dplr.naive.dplr_recurrence (HF, fixed scale d_k^-1/2: pass q*sqrt(d_k))",
    "diagonal-plus-low-rank transitions S <- diag(w) S + beta (alpha^T S) + k v^T",
)
_spec(
    "rwkv7",
    "rwkv7",
    [Block("kappa", "k"), Block("a", "k", "sigmoid"), Block("w", "k", "sigmoid")],
    rwkv7,
    "Peng et al. 2025 (RWKV-7 Goose)",
    "fla.ops.generalized_delta_rule.dplr.naive.dplr_recurrence with alpha = -kappa, beta = kappa*a, "
    "gk = log w (rwkv7 ships no naive reference)",
    "generalised delta rule S(diag(w) - kappa (a kappa)^T) + v k^T",
)
_spec(
    "mesa-net",
    "mesa_net",
    [_LOGF, _BETA, Block("lam", "k", "const")],
    mesa_net,
    "von Oswald et al. 2025 (MesaNet)",
    "fla.ops.mesa_net.naive.naive_mesa_net_exact (SF, lamb = exp(c))",
    "output (H^kv)^T (H^kk + diag lambda)^-1 q: a linear solve per token",
    decay="log_f",
)
_spec(
    "gated-oja-rule",
    "gated_oja_rule",
    [Block("log_f", "v", "logsigmoid", 2.0), _BETA],
    gated_oja_rule,
    "fla gated Oja rule",
    "none on CPU: fla.ops.gated_oja_rule.fused_recurrent_gated_oja_rule is a Triton kernel (no naive)",
    "Oja's rule with per-value forgetting: key-side correction beta (k - S v)",
)
_spec(
    "lightnet",
    "lightnet",
    [],
    lightnet,
    "LightNet (fla lightnet)",
    "none on CPU: fla.ops.lightnet.fused_recurrent_lightnet runs Triton kernels (no naive)",
    "linear attention whose keys are normalised by their running sum of exp(k) per channel",
)
_spec(
    "rwkv4",
    "rwkv4",
    [Block("w", "v", "const"), Block("u", "v", "const")],
    rwkv4,
    "Peng et al. 2023 (RWKV-4)",
    "none on CPU: fla.ops.rwkv4.fused_recurrent_rwkv4 is a Triton kernel (no naive)",
    "WKV: exp(k)-weighted decayed average of values with bonus u (a division by a running sum)",
    d_kv_equal=True,
)
_spec(
    "ttt-linear",
    "ttt",
    [Block("ln_w", "v", "const", 1.0), Block("ln_b", "v", "const"), Block("eta", 1, "sigmoid", -1.0)],
    ttt,
    "Sun et al. 2024 (Learning to (learn at test time), TTT-Linear)",
    "fla.ops.ttt.naive.chunk_ttt_linear_ref (SF, scale=1.0, mini_batch_size=16)",
    "test-time training: a gradient step per 16-token mini-batch on a LayerNorm reconstruction loss",
    d_kv_equal=True,
)
_spec(
    "titans",
    "titans",
    [
        Block("ln_w", "v", "const", 1.0),
        Block("ln_b", "v", "const"),
        Block("theta", 1, "sigmoid", -2.0),
        Block("alpha", 1, "sigmoid", -2.0),
        Block("eta", 1, "sigmoid"),
    ],
    titans,
    "Behrouz et al. 2024 (Titans), fla's linear memory",
    "fla.ops.titans.naive.chunk_titans_linear_ref (use_chunk=False, chunk_size=16)",
    "neural memory with momentum and decay, LayerNorm-reconstruction gradient steps",
    d_kv_equal=True,
    symbolic=titans_symbolic,
)
_spec(
    "slstm",
    "model:slstm",
    [Block("gates", lambda dk, dv: 3 * dv), Block("R", lambda dk, dv: 4 * dv * dv, "const")],
    slstm,
    "Beck et al. 2024 (xLSTM), sLSTM",
    "none in fla-core 0.6 (not shipped); written from the xLSTM paper",
    "scalar LSTM with exponential input gate, normaliser state and recurrent weights R h_{t-1}",
)
_spec(
    "cyfa",
    "cyfa",
    [
        Block("log_f", 1, "logsigmoid", 2.0),
        Block("delta", 1),
        _BETA,
        Block("readout", lambda dk, dv: (CYFA_SLOTS - 1) ** 2, "const"),
        Block("q_norm", "k", "const", 1.0),
        Block("k_norm", "k", "const", 1.0),
    ],
    cyfa,
    "fla CyFA (cyclic flow attention)",
    "fla.ops.cyfa.naive.naive_recurrent_cyfa (SF, scale=1.0, readout [H, 3, 3], eps=1e-6)",
    "slot memories written by rotating atoms, read through a softmax over a readout table",
    decay="log_f",
)


CONTROL_NAMES = tuple(s.name for s in CONTROLS)
SPECS = {s.name: s for s in CONTROLS}
for _s in CONTROLS:
    register(_s.name)(FamilyControl(_s))
