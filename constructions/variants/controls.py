r"""Negative controls (status ``"impossible"``): softmax attention and the delta rule — and the one-hot delta
rule, an exact special case that must pass.

A negative control's ``construct`` returns the best template RNN one would try, so the numeric check, the
property suite and the prover have something concrete to refute; for an impossible variant they must
*find a counterexample* (reported as ``expected-failure``), never pass it.

- **Softmax attention** (Vaswani et al. 2017), causal, scale folded into $W_Q$. Tried construction: the
  LSA direct construction of the same $W_Q, W_K, W_V$ (the first-order kernel $q^\top k$ instead of $e^{q^\top
  k}$). Why no template RNN works (derived): with constant $\lambda$ a template output is a polynomial in the
  inputs, $e^{q^\top k}$/normaliser is not; and $e^{q^\top k}$ is not a finite-rank separable kernel, so no
  finite state of $k_s$-features read out by a $q_t$-feature can hold it.
- **DeltaNet** (Schlag et al. 2021; Yang et al. 2024): $S_t = S_{t-1}(I - \beta_h k_tk_t^\top) + \beta_h
v_tk_t^\top$ with
  $L_2$-normalised $q, k$. Tried construction: upstream normalised $q, k$ and the LSA construction with values
  $\beta_h v$ — the delta rule without its correction $-\beta S_{t-1}k_tk_t^\top$. Why no diagonal RNN works
  (derived): the transitions $I-\beta kk^\top$ are non-diagonal and do not commute across steps.
- **One-hot delta rule** (exact; ``docs/variants.md``: "one-hot keys, then diagonal"): keys
  $k_t = e_{j^*(t)}$ with $j^*(t) = \arg\max_j x_{t,c_{h,j}}$ (an upstream one-hot router on designated input
  coordinates). Then $k_tk_t^\top = \mathrm{diag}(k_t)$ and $S_{t-1}(I-\beta k_tk_t^\top) =
  S_{t-1}\mathrm{diag}(1 - \beta k_t)$: a per-key E1 decay $\lambda_{t,h,j} = 1 - \beta_h k_{t,j}$, affine in
  the upstream feature. $H d_k(d_v+1)$ neurons.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, affine, check_projections, heads_qkv, randn
from .plan import InputDecay, Plan, plan_path_length
from .reference import (
    delta_rule_parallel,
    delta_rule_recurrent,
    merge_heads,
    softmax_attention,
    softmax_attention_online,
)
from .upstream import HeadMap, Identity, OneHotArgmax, Upstream

__all__ = [
    "DeltaNet",
    "DeltaParams",
    "OneHotDeltaParams",
    "OneHotDeltaRule",
    "SoftmaxAttention",
    "SoftmaxParams",
]


@dataclass(frozen=True)
class SoftmaxParams:
    """``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, ``W_O`` or ``None`` (scale folded into ``W_Q``)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)


def _qkv_sample(g, d, heads, d_k, d_v, d_out):
    d_k = d if d_k is None else d_k
    d_v = d if d_v is None else d_v
    s = d**-0.5
    W_O = randn(g, d_out, heads * d_v, scale=s) if d_out else None
    return (
        randn(g, heads, d_k, d, scale=s),
        randn(g, heads, d_k, d, scale=s),
        randn(g, heads, d_v, d, scale=s),
        W_O,
    )


class SoftmaxAttention(PlanVariant):
    r"""Causal softmax attention: impossible; the tried RNN is the LSA construction of the same
    projections."""

    status = "impossible"
    source = "Vaswani et al. 2017, causal scaled dot-product attention (scale folded into W_Q)"
    oracle = (
        "fla.ops.attn.naive.naive_parallel_attn (SF, scale=1.0) or torch "
        "scaled_dot_product_attention(is_causal=True)"
    )
    description = (
        "Negative control: causal softmax attention. Tried construction: LSA direct construction of the "
        "same W_Q, W_K, W_V (kernel q.k instead of e^{q.k}); must be refuted."
    )
    #: the impossibility certificate this control rests on; the prover checks it on symbolic_reference
    impossibility_claim = "IMPOSSIBLE-SOFTMAX/v1"

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None):
        W_Q, W_K, W_V, W_O = _qkv_sample(generator, d, heads, d_k, d_v, d_out)
        return SoftmaxParams(
            W_Q.to(dtype), W_K.to(dtype), W_V.to(dtype), None if W_O is None else W_O.to(dtype)
        )

    def reference(self, params: SoftmaxParams, x):
        """Parallel softmax (float64, max-subtracted)."""
        x = self._check(params, x)
        return self._merge(params, softmax_attention(*heads_qkv(x, params.W_Q, params.W_K, params.W_V)))

    def reference_recurrent(self, params: SoftmaxParams, x):
        """Online-softmax recurrence (independent second form)."""
        x = self._check(params, x)
        return self._merge(
            params, softmax_attention_online(*heads_qkv(x, params.W_Q, params.W_K, params.W_V))
        )

    def magnitude(self, params: SoftmaxParams, x):
        """$M_t = \\sum_s p_{ts}|v_s|$ (probabilities are non-negative), then $|W_O|$; float64."""
        x64 = x.detach().to("cpu", torch.float64)
        p = _cpu64(params)
        q, k, v = heads_qkv(x64, p.W_Q, p.W_K, p.W_V)
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        P = torch.softmax((q @ k.transpose(-1, -2)).masked_fill(~causal, float("-inf")), dim=-1)
        return merge_heads(P @ v.abs(), None if p.W_O is None else p.W_O.abs())

    def plan(self, params: SoftmaxParams) -> Plan:
        return Plan(affine(params.W_Q), affine(params.W_K), affine(params.W_V), params.W_O)

    def symbolic_weights(self, W_Q, W_K, W_V, W_O=None):
        """The tried construction (LSA direct) on object arrays."""
        from .symbolic import affine_np  # lazy: the variant modules import this one (import cycle)
        from .wiring import affine_direct_weights  # lazy: the variant modules import this one (import cycle)

        return affine_direct_weights(affine_np(W_Q), affine_np(W_K), affine_np(W_V), W_O)

    def symbolic_reference(self, W_Q, W_K, W_V, W_O, x):
        """Softmax attention with SymPy ``exp`` (``symbolic.softmax_reference``)."""
        from .symbolic import softmax_reference  # lazy: the variant modules import this one (import cycle)

        return softmax_reference(W_Q, W_K, W_V, W_O, x)


def _cpu64(params):
    from .family import to_float64  # lazy: the variant modules import this one (import cycle)

    return to_float64(params)


@dataclass(frozen=True)
class DeltaParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, ``beta [H]`` in $[0, 1]$, ``W_O``; ``normalize``:
    $L_2$-normalise $q$ and $k$ (DeltaNet; default ``True``)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    beta: Tensor
    W_O: Tensor | None = None
    normalize: bool = True

    def __post_init__(self):
        H = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)[0]
        _check_beta(self.beta, H)


def _check_beta(beta, H):
    require_tensor("beta", beta, allow_complex=False)
    if beta.shape != (H,):
        raise ValueError(
            f"beta must have shape [H] = {(H,)} (one writing strength per head); got {tuple(beta.shape)}"
        )
    require_finite("beta", beta)
    if bool(((beta < 0) | (beta > 1)).any()):
        raise ValueError(f"beta must lie in [0, 1]; got range [{float(beta.min())}, {float(beta.max())}]")


def _l2(t: Tensor) -> Tensor:
    n = t.norm(dim=-1, keepdim=True)
    return torch.where(n > 0, t / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(t))


class DeltaNet(PlanVariant):
    r"""DeltaNet (delta rule, normalised $q, k$): impossible; the tried RNN drops the correction term."""

    status = "impossible"
    extensions = ("upstream",)
    source = (
        "Schlag et al. 2021 (fast weight programmers), delta rule; Yang et al. 2024 (DeltaNet), "
        "L2-normalised q, k"
    )
    oracle = "fla.ops.delta_rule.naive.delta_rule_recurrence (HF, fixed scale d_k^-1/2: pass q*sqrt(d_k))"
    description = (
        "Negative control: the delta rule S_t = S_{t-1}(I - beta k k^T) + beta v k^T. Tried "
        "construction: LSA on normalised q, k with values beta v (no correction term); must be refuted."
    )
    #: the impossibility certificate this control rests on (normalised keys, writing strength beta)
    impossibility_claim = "IMPOSSIBLE-DELTANET/v1"

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, normalize=True
    ):
        W_Q, W_K, W_V, W_O = _qkv_sample(generator, d, heads, d_k, d_v, d_out)
        beta = 0.25 + 0.75 * torch.rand(heads, generator=generator, dtype=torch.float64)
        return DeltaParams(
            W_Q.to(dtype),
            W_K.to(dtype),
            W_V.to(dtype),
            beta.to(dtype),
            None if W_O is None else W_O.to(dtype),
            normalize,
        )

    def _qkv(self, params, x):
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return (_l2(q), _l2(k), v) if params.normalize else (q, k, v)

    def reference(self, params: DeltaParams, x):
        """Recurrent delta rule (float64)."""
        x = self._check(params, x)
        return self._merge(params, delta_rule_recurrent(*self._qkv(params, x), params.beta))

    def reference_parallel(self, params: DeltaParams, x):
        """UT / pseudo-value form with a triangular solve (independent second form)."""
        x = self._check(params, x)
        return self._merge(params, delta_rule_parallel(*self._qkv(params, x), params.beta))

    def magnitude(self, params: DeltaParams, x):
        r"""Normwise $M_t = \|q_t\|\sum_{s\le t}\beta\|k_s\|\,\|v_s\|$ for every output row, then $|W_O|$
        (derived: with $\|k\|\le 1$, $\beta\in[0,1]$ each $I - \beta kk^\top$ has norm $\le 1$, so
        $\|S_t\|\le\sum_s\beta\|v_s\|\|k_s\|$)."""
        x64 = x.detach().to("cpu", torch.float64)
        p = _cpu64(params)
        q, k, v = self._qkv(p, x64)
        if not p.normalize:  # unnormalised keys: |I - beta k k^T| <= 1 + beta |k|^2, a growing bound
            growth = torch.cumprod(1 + p.beta[None, :, None] * k.norm(dim=-1) ** 2, dim=-1)
        else:
            growth = torch.ones(q.shape[:3], dtype=torch.float64)
        w = p.beta[None, :, None] * k.norm(dim=-1) * v.norm(dim=-1)  # [B, H, T]
        S = torch.cumsum(w, dim=-1) * growth
        o = (q.norm(dim=-1) * S)[..., None].expand(*q.shape[:3], v.shape[-1])
        return merge_heads(o, None if p.W_O is None else p.W_O.abs())

    def path_length(self, params, T):
        return plan_path_length(self.plan(params), T) + 2 * T * (params.W_Q.shape[1] + params.W_V.shape[1])

    def plan(self, params: DeltaParams) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        fn = "l2norm" if params.normalize else "identity"
        up = Upstream(d, [Identity(d), HeadMap(params.W_K, fn), HeadMap(params.W_Q, fn)])
        dz = up.width
        dt, dev = params.W_Q.dtype, params.W_Q.device
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(H, d_v, dz + 1, dtype=dt, device=dev)
        j = torch.arange(d_k)
        for h in range(H):
            Wk[h, j, d + h * d_k + j] = 1
            Wq[h, j, d + H * d_k + h * d_k + j] = 1
            Wv[h, :, :d] = params.beta[h] * params.W_V[h]
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up)

    def symbolic_weights(self, W_Q, W_K, W_V, beta, W_O=None):
        """The tried construction on the given (unnormalised) q, k: LSA with values beta v (``symbolic``)."""
        from .symbolic import delta_weights  # lazy: the variant modules import this one (import cycle)

        return delta_weights(W_Q, W_K, W_V, beta, W_O)

    def symbolic_reference(self, W_Q, W_K, W_V, beta, W_O, x):
        r"""DeltaNet exactly, as :meth:`reference` computes it with ``normalize=True`` (the registered
        default): $\hat q = q/\|q\|$, $\hat k = k/\|k\|$ (0 for a zero vector) with SymPy ``sqrt``, then
        $S_t = S_{t-1}(I - \beta\hat k_t\hat k_t^\top) + \beta v_t\hat k_t^\top$, $o_t = S_t\hat q_t$."""
        return _delta_exact(W_Q, W_K, W_V, beta, W_O, x)


def _l2_exact(u):
    import numpy as np  # lazy: NumPy/SymPy only for the prover's exact hooks
    import sympy as sp  # lazy: NumPy/SymPy only for the prover's exact hooks

    n2 = sum(c * c for c in u)
    return np.zeros(len(u), dtype=object) if n2 == 0 else np.array([c / sp.sqrt(n2) for c in u], dtype=object)


def _delta_exact(W_Q, W_K, W_V, beta, W_O, x):
    import numpy as np  # lazy: NumPy/SymPy only for the prover's exact hooks

    H, d_k, _ = W_Q.shape
    outs = []
    for h in range(H):
        S = np.zeros((W_V.shape[1], d_k), dtype=object)
        o = []
        for xt in x:
            q, k, v = _l2_exact(W_Q[h] @ xt), _l2_exact(W_K[h] @ xt), W_V[h] @ xt
            S = S - beta[h] * np.outer(S @ k, k) + beta[h] * np.outer(v, k)
            o.append(S @ q)
        outs.append(np.array(o, dtype=object).reshape(len(x), W_V.shape[1]))
    y = np.concatenate(outs, axis=1)
    return y if W_O is None else np.array([W_O @ r for r in y], dtype=object)


@dataclass(frozen=True)
class OneHotDeltaParams:
    r"""``W_Q [H, d_k, d]``, ``W_V [H, d_v, d]``, router ``coords [H, d_k]`` (long: the input coordinate read
    for slot $j$), ``beta [H]`` in $[0, 1]$, ``W_O``."""

    W_Q: Tensor
    W_V: Tensor
    coords: Tensor
    beta: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        H, d_k, _, d = check_projections(self.W_Q, None, self.W_V, self.W_O)
        if (
            not isinstance(self.coords, Tensor)
            or self.coords.dtype != torch.long
            or self.coords.shape != (H, d_k)
        ):
            raise TypeError(
                f"coords must be a torch.long tensor of shape [H, d_k] = {(H, d_k)}; got "
                f"{getattr(self.coords, 'dtype', type(self.coords).__name__)} "
                f"{tuple(getattr(self.coords, 'shape', ()))}"
            )
        if self.coords.numel() and (int(self.coords.min()) < 0 or int(self.coords.max()) >= d):
            raise ValueError(
                f"coords must index input coordinates 0..{d - 1}; got range "
                f"[{int(self.coords.min())}, {int(self.coords.max())}]"
            )
        _check_beta(self.beta, H)


class OneHotDeltaRule(PlanVariant):
    r"""The delta rule with one-hot keys (an upstream router): exact, per-key E1 decay $1-\beta k_{t,j}$."""

    status = "exact"
    extensions = ("E1", "upstream")
    free_fields = ("W_Q", "W_V", "W_O")
    source = (
        "Schlag et al. 2021 (delta rule) with one-hot keys; docs/variants.md: exact special case of the "
        "DeltaNet negative control"
    )
    oracle = "fla.ops.delta_rule.naive.delta_rule_recurrence on one-hot keys (HF; pass q*sqrt(d_k))"
    description = (
        "Delta rule with one-hot keys k_t = e_{argmax_j x_t[c_hj]} (upstream router): k k^T = diag(k), "
        "so kv[h,i,j] decays by 1 - beta_h k_t,j (E1, affine); H*d_k*(d_v+1) neurons."
    )

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None):
        """``d_k = d`` slots by default, each reading a distinct input coordinate (a random permutation)."""
        d_k = d if d_k is None else d_k
        W_Q, _, W_V, W_O = _qkv_sample(generator, d, heads, d_k, d_v, d_out)
        coords = torch.stack(
            [
                torch.randperm(d, generator=generator)[:d_k]
                if d_k <= d
                else torch.randint(0, d, (d_k,), generator=generator)
                for _ in range(heads)
            ]
        )
        beta = torch.rand(heads, generator=generator, dtype=torch.float64)
        return OneHotDeltaParams(
            W_Q.to(dtype), W_V.to(dtype), coords, beta.to(dtype), None if W_O is None else W_O.to(dtype)
        )

    def d_in(self, params):
        return params.W_Q.shape[2]

    def keys(self, params: OneHotDeltaParams, x: Tensor) -> Tensor:
        """One-hot keys ``[B, H, T, d_k]`` (float64)."""
        hot = OneHotArgmax(params.coords)(x.to(torch.float64))
        B, T, _ = x.shape
        return hot.reshape(B, T, *params.coords.shape).transpose(1, 2)

    def reference(self, params: OneHotDeltaParams, x):
        """The delta rule on one-hot keys (float64, :func:`.reference.delta_rule_recurrent`)."""
        x = self._check(params, x)
        q, _, v = heads_qkv(x, params.W_Q, params.W_Q, params.W_V)
        return self._merge(params, delta_rule_recurrent(q, self.keys(params, x), v, params.beta))

    def reference_parallel(self, params: OneHotDeltaParams, x):
        x = self._check(params, x)
        q, _, v = heads_qkv(x, params.W_Q, params.W_Q, params.W_V)
        return self._merge(params, delta_rule_parallel(q, self.keys(params, x), v, params.beta))

    def plan(self, params: OneHotDeltaParams) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        up = Upstream(d, [Identity(d), OneHotArgmax(params.coords)])
        dz = up.width
        dt, dev = params.W_Q.dtype, params.W_Q.device
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=dev)
        Wk = torch.zeros_like(Wq)
        Wv = torch.zeros(H, d_v, dz + 1, dtype=dt, device=dev)
        Wa = torch.zeros(H * d_k, dz + 1, dtype=dt, device=dev)
        Wq[:, :, :d] = params.W_Q
        j = torch.arange(d_k)
        for h in range(H):
            Wk[h, j, d + h * d_k + j] = 1
            Wv[h, :, :d] = params.beta[h] * params.W_V[h]
            Wa[h * d_k + j, d + h * d_k + j] = -params.beta[h]  # lambda = 1 - beta k_j
            Wa[h * d_k + j, dz] = 1
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wa, "affine", per_key=True))


register("softmax-attention")(SoftmaxAttention)
register("deltanet")(DeltaNet)
register("delta-rule-onehot")(OneHotDeltaRule)

# the negative controls of the remaining op families of the oracle package (one factory, one entry each)
from . import fla_controls  # noqa: E402, F401  (registers)
