r"""Input-dependent decays: simple GLA / Mamba-2 (one scalar per head) and GLA / HGRN2 (per
key).

- **Simple GLA** (Yang et al. 2024, *Gated Linear Attention*, the scalar-gate case; "Gated RetNet"):
  $S_t = a_t S_{t-1} + v_tk_t^\top$, $a_t = \exp(\log\sigma(w_g\cdot\tilde x_t)/\tau)$ per head ($\tau$: fla's
  gate normaliser). Direct construction with ``kv[h,i,j]`` at $\lambda_t = a_{t,h}$: $H d_k(d_v+1)$ neurons.
  The
  **compressed** construction stays valid (derived): $S^h_t = W^h_V\,\Sigma^h_t\,W^{h\top}_K$ with one decayed
  store $\Sigma^h_t = a_{t,h}\Sigma^h_{t-1} + x_tx_t^\top$ per head (heads with identical gates share one):
  $H\,d(d+1)/2 + d$ neurons (``simple-gla-compressed``).
- **Mamba-2 / SSD** (Dao & Gu 2024, Sec. 3–4, one head per group): $h_t = e^{\Delta_t A_h} h_{t-1} + (\Delta_t
x^{(h)}_t) B_t^\top$,
  $y^{(h)}_t = h_t C_t + D_h x^{(h)}_t$, $\Delta_t = \mathrm{softplus}(w_\Delta\cdot\tilde x_t)$: simple GLA
  with $q = C$, $k = B$, $v = \Delta_t x^{(h)}$. The factor $\Delta_t$ (a softplus) on the input is not
  bilinear, so $\Delta_t x_t$ comes from an upstream layer; the skip $D_h x^{(h)}_t$ uses $H d_v$ query-like
  neurons and one constant neuron: $H d_k(d_v+1) + H d_v + 1$ neurons.
- **GLA** (Yang et al. 2024, Eq. for the recurrent form, fla ``naive_recurrent_gla``):
  $S_t = S_{t-1}\mathrm{diag}(\alpha_t) + v_tk_t^\top$, $\alpha_t = \exp(\log\sigma(W_\alpha\tilde
  x_t)/\tau)\in(0,1]^{d_k}$. Direct construction with ``kv[h,i,j]`` at $\lambda_t = \alpha_{t,h,j}$: $H
  d_k(d_v+1)$ neurons. The compressed construction is **invalid** (the decay acts on key coordinates, not on
  the store $\sum x x^\top$):
  :meth:`GLA.compressed_reason` says so, unless all key gates of each head are tied.
- **HGRN2** (Qin et al. 2024): GLA with tied key $k_t = 1-\alpha_t$, $\alpha_t = \ell_b +
(1-\ell_b)\sigma(W_f\tilde x_t)$,
  $v_t = W_i x_t$ (fla's HGRN2 layer: ``k, g = 1 - f.sigmoid(), logsigmoid(f)`` at $\ell_b = 0$). The feature
  $f_t = \sigma(W_f\tilde x_t)$ comes from an upstream layer; key and decay are then *affine* in it.
"""

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from .._validation import require_finite, require_tensor
from ..registry import register
from ..tolerance import compressed_weight_floor, weight_floor_magnitude
from .decay import InputDependentDecay
from .family import PlanVariant, affine, check_projections, heads_qkv, randn, to_float64
from .plan import InputDecay, Plan, Skip, build_rnn, compressed_reason
from .reference import la_recurrent, la_parallel
from .upstream import GatedCopy, HeadMap, Identity, Upstream, softplus

__all__ = [
    "SimpleGLAParams",
    "GLAParams",
    "HGRN2Params",
    "Mamba2Params",
    "SimpleGLA",
    "SimpleGLACompressed",
    "GLA",
    "HGRN2",
    "Mamba2",
]


def _check_gate(name: str, W: Tensor, shape: tuple[int, ...]) -> None:
    require_tensor(name, W, allow_complex=False)
    if tuple(W.shape) != shape:
        raise ValueError(
            f"{name} must have shape {list(shape)} (logits of [x; 1], last column = bias); "
            f"got {tuple(W.shape)}"
        )
    require_finite(name, W)


def _check_normalizer(tau: float) -> None:
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not tau > 0 or tau == float("inf"):
        raise ValueError(
            f"normalizer must be a finite number > 0 (log-decay = logsigmoid(.)/normalizer); got {tau!r}"
        )


def _gate_logits(x: Tensor, W: Tensor) -> Tensor:
    """``x [B, T, d]``, ``W [..., d+1]`` -> logits ``[B, ..., T]`` moved to head-first (float64)."""
    x = x.to(torch.float64)
    W = W.to(torch.float64)
    g = torch.einsum("btd,...d->bt...", x, W[..., :-1]) + W[..., -1]
    return torch.movedim(g, 1, 2)


@dataclass(frozen=True)
class SimpleGLAParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, gate logits ``W_g [H, d+1]``, ``W_O`` or ``None``;
    $\log a_t = \log\sigma(W_g\tilde x_t)/\tau$ with ``normalizer`` $\tau > 0$."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_g: Tensor
    W_O: Tensor | None = None
    normalizer: float = 1.0

    def __post_init__(self):
        H, _, _, d = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        _check_gate("W_g", self.W_g, (H, d + 1))
        _check_normalizer(self.normalizer)


def _sample_qkv(g, d, heads, d_k, d_v, d_out):
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


def _cast(dtype, *ts):
    return tuple(None if t is None else t.to(dtype) for t in ts)


class _DecayedLinearAttention(PlanVariant):
    r"""Shared references of the gated linear-attention variants: $S_t = S_{t-1}\,\mathrm{diag}(a_t) +
    v_tk_t^\top$, $o_t = S_tq_t$, with the subclass's :meth:`decays` (scalar per head, or per key)."""

    def decays(self, params, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, params, x):
        r"""Recurrent form (float64): $S_t = S_{t-1}\mathrm{diag}(a_t) + v_tk_t^\top$, $o_t = S_tq_t$."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return self._merge(params, la_recurrent(q, k, v, self.decays(params, x)))

    def reference_parallel(self, params, x):
        """Masked parallel form (independent of :meth:`reference`)."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return self._merge(params, la_parallel(q, k, v, self.decays(params, x)))

    def symbolic_reference(self, W_Q, W_K, W_V, W_gate, W_O, x):
        """The gated recurrence on object arrays (``symbolic.gated_reference``)."""
        from .symbolic import gated_reference  # lazy: start-up time (SymPy)

        return gated_reference(W_Q, W_K, W_V, W_gate, W_O, x)


class SimpleGLA(_DecayedLinearAttention):
    r"""Data-dependent scalar decay per head (simple GLA, Gated RetNet; Mamba-2's core), an input-dependent
    decay."""

    status = "exact"
    extensions = ("input-dependent-decay",)
    free_fields = ("W_Q", "W_K", "W_V", "W_O", "W_g")
    method = "direct"
    source = (
        "Yang et al. 2024 (GLA), scalar gate / fla simple_gla; Dao & Gu 2024 (Mamba-2 SSD), scalar A per head"
    )
    oracle = (
        "fla.ops.simple_gla.naive.naive_recurrent_simple_gla (SF, g = log a_t [B,T,H], scale=1.0); "
        "naive_parallel_simple_gla"
    )
    description = (
        "Data-dependent scalar decay a_t = exp(logsigmoid(w_g.[x;1])/tau) per head (input-dependent decay): "
        "direct construction, kv[h,i,j] at lambda_t = a_t,h; H*d_k*(d_v+1) neurons."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, normalizer=1.0
    ):
        """Gaussian projections ($d^{-1/2}$) and gate logits ($\\mathcal N(0,1)$ weights, bias $\\sim U(0,
        4)$)."""
        W_Q, W_K, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        W_g = randn(generator, heads, d + 1, scale=d**-0.5)
        W_g[:, -1] = 4 * torch.rand(heads, generator=generator, dtype=torch.float64)
        return SimpleGLAParams(
            *_cast(dtype, W_Q, W_K, W_V, W_g),
            W_O=None if W_O is None else W_O.to(dtype),
            normalizer=normalizer,
        )

    def decays(self, params: SimpleGLAParams, x: Tensor) -> Tensor:
        """$a_t$ ``[B, H, T]`` in float64."""
        return torch.exp(F.logsigmoid(_gate_logits(x, params.W_g)) / params.normalizer)

    def plan(self, params: SimpleGLAParams) -> Plan:
        H = params.W_Q.shape[0]
        scale = torch.full((H,), 1.0 / params.normalizer, dtype=params.W_g.dtype, device=params.W_g.device)
        return Plan(
            affine(params.W_Q),
            affine(params.W_K),
            affine(params.W_V),
            params.W_O,
            decay=InputDecay(params.W_g, scale=scale),
            method=self.method,
        )

    def symbolic_weights(self, W_Q, W_K, W_V, W_g, W_O=None):
        """The construction on object arrays with an uninterpreted decay link (``symbolic.gated_weights``)."""
        from .symbolic import gated_compressed_weights, gated_weights  # lazy: start-up time (SymPy)

        return (gated_weights if self.method == "direct" else gated_compressed_weights)(
            W_Q, W_K, W_V, W_g, W_O
        )


class SimpleGLACompressed(SimpleGLA):
    r"""Simple GLA with the compressed construction: one decayed symmetric store per head (derived)."""

    method = "compressed"
    description = (
        "Data-dependent scalar decay per head, compressed construction: one decayed store "
        "sum a x x^T per head (heads with tied gates share one) plus d input neurons; H*d(d+1)/2 + d neurons."
    )

    def magnitude(self, params, x, dtype=None):
        r"""$M$ of the decayed attention on absolute values plus the propagated underflow of the readout
        weights, which the compressed construction forms as products at the working ``dtype`` (``None``: safe
        for every working precision): :func:`constructions.tolerance.compressed_weight_floor` through the
        stores decayed by $\min(1, \hat a)$, $\hat a$ the error-inflated decays of the tolerance model
        (:meth:`.decay.InputDependentDecay.magnitude`; a computed $a_t$ lies in $[0, 1]$), then
        :func:`constructions.tolerance.weight_floor_magnitude` (derived; docs/tolerance.md)."""
        M = super().magnitude(params, x)
        p64, x64 = to_float64(params), x.detach().to("cpu", torch.float64)
        n = self.path_length(p64, x64.shape[1])
        H = p64.W_Q.shape[0]
        scale = torch.full((H,), 1.0 / p64.normalizer, dtype=torch.float64)
        gate = InputDependentDecay(
            p64.W_g, torch.arange(H), torch.zeros(H, dtype=torch.float64), "exp-logsigmoid", scale
        )
        decay = gate.magnitude(x64, x64.abs(), n).clamp_max(1.0).permute(0, 2, 1)  # [B, H, T]
        F = compressed_weight_floor(p64.W_Q, p64.W_K, p64.W_V, p64.W_O, x64, decay)
        return M + weight_floor_magnitude(F, n, dtype)


@dataclass(frozen=True)
class GLAParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, per-key gate logits ``W_gk [H, d_k, d+1]``, ``W_O``;
    $\log\alpha_t = \log\sigma(W_{gk}\tilde x_t)/\tau$."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_gk: Tensor
    W_O: Tensor | None = None
    normalizer: float = 1.0

    def __post_init__(self):
        H, d_k, _, d = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        _check_gate("W_gk", self.W_gk, (H, d_k, d + 1))
        _check_normalizer(self.normalizer)


class GLA(_DecayedLinearAttention):
    r"""Per-key data-dependent decay (GLA), an input-dependent decay; the compressed construction is invalid
    here."""

    status = "exact"
    extensions = ("input-dependent-decay",)
    free_fields = ("W_Q", "W_K", "W_V", "W_O", "W_gk")
    source = (
        "Yang et al. 2024 (Gated Linear Attention), recurrent form S_t = S_{t-1} diag(alpha_t) + v_t k_t^T"
    )
    oracle = (
        "fla.ops.gla.naive.naive_recurrent_gla (SF, gk = log alpha_t [B,T,H,K], fixed scale K^-1/2: pass "
        "q*sqrt(K))"
    )
    description = (
        "Per-key data-dependent decay alpha_t in (0,1]^{d_k} (GLA): kv[h,i,j] at lambda_t = "
        "alpha_t,h,j; H*d_k*(d_v+1) neurons; compressed construction invalid (validator gives the reason)."
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
        normalizer=1.0,
        tied=False,
    ):
        """As :meth:`SimpleGLA.sample_params`, one gate per key (``tied=True``: all keys of a head share
        one)."""
        W_Q, W_K, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        dk = W_Q.shape[1]
        W_gk = randn(generator, heads, 1 if tied else dk, d + 1, scale=d**-0.5)
        W_gk[..., -1] = 4 * torch.rand(W_gk.shape[:-1], generator=generator, dtype=torch.float64)
        W_gk = W_gk.expand(heads, dk, d + 1).clone()
        return GLAParams(
            *_cast(dtype, W_Q, W_K, W_V, W_gk),
            W_O=None if W_O is None else W_O.to(dtype),
            normalizer=normalizer,
        )

    def decays(self, params: GLAParams, x: Tensor) -> Tensor:
        """$\\alpha_t$ ``[B, H, T, d_k]`` in float64."""
        return torch.exp(F.logsigmoid(_gate_logits(x, params.W_gk)) / params.normalizer)

    def plan(self, params: GLAParams, method: str = "direct") -> Plan:
        H, d_k = params.W_Q.shape[:2]
        scale = torch.full(
            (H * d_k,), 1.0 / params.normalizer, dtype=params.W_gk.dtype, device=params.W_gk.device
        )
        return Plan(
            affine(params.W_Q),
            affine(params.W_K),
            affine(params.W_V),
            params.W_O,
            decay=InputDecay(params.W_gk.reshape(H * d_k, -1), scale=scale, per_key=True),
            method=method,
        )

    def compressed_reason(self, params: GLAParams) -> str | None:
        """Why the compressed construction does not apply to ``params`` (``None`` when it does: tied key
        gates)."""
        return compressed_reason(self.plan(params, "compressed"))

    def construct_compressed(self, params: GLAParams):
        """The compressed construction; ``ValueError`` with :meth:`compressed_reason` when it is invalid."""
        return build_rnn(self.plan(params, "compressed"))

    def symbolic_weights(self, W_Q, W_K, W_V, W_gk, W_O=None):
        """The direct construction on object arrays, per-key uninterpreted decay link
        (``symbolic.gated_weights``)."""
        from .symbolic import gated_weights  # lazy: start-up time (SymPy)

        return gated_weights(W_Q, W_K, W_V, W_gk, W_O)


@dataclass(frozen=True)
class HGRN2Params:
    r"""``W_Q [H, d_k, d]``, forget logits ``W_F [H, d_k, d+1]``, input (value) map ``W_V [H, d_v, d]``,
    ``W_O``, ``lower_bound`` $\ell_b\in[0,1)$."""

    W_Q: Tensor
    W_F: Tensor
    W_V: Tensor
    W_O: Tensor | None = None
    lower_bound: float = 0.0

    def __post_init__(self):
        H, d_k, _, d = check_projections(self.W_Q, None, self.W_V, self.W_O)
        _check_gate("W_F", self.W_F, (H, d_k, d + 1))
        if not isinstance(self.lower_bound, (int, float)) or not 0 <= self.lower_bound < 1:
            raise ValueError(f"lower_bound must be a number in [0, 1); got {self.lower_bound!r}")


class HGRN2(PlanVariant):
    r"""HGRN2: GLA with the tied key $k_t = 1-\alpha_t$ (input-dependent decay + an upstream $\sigma$
    feature)."""

    status = "exact"
    extensions = ("input-dependent-decay", "upstream")
    free_fields = ("W_Q", "W_F", "W_V", "W_O")
    source = (
        "Qin et al. 2024 (HGRN2), state expansion: S_t = S_{t-1} diag(f_t) + i_t (1 - f_t)^T, o_t = S_t q_t"
    )
    oracle = (
        "fla.ops.gla.naive.naive_recurrent_gla with k = 1 - alpha, gk = log alpha (fla HGRN2 layer "
        "convention)"
    )
    description = (
        "HGRN2: per-key decay alpha_t = lb + (1-lb) sigmoid(W_f [x;1]) with tied key 1 - alpha_t; "
        "sigmoid features from an upstream layer, then key and decay are affine in them; "
        "H*d_k*(d_v+1) neurons."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, lower_bound=0.0
    ):
        W_Q, _, W_V, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        W_F = randn(generator, heads, W_Q.shape[1], d + 1, scale=d**-0.5)
        W_F[..., -1] += 2.0
        return HGRN2Params(
            *_cast(dtype, W_Q, W_F, W_V), W_O=None if W_O is None else W_O.to(dtype), lower_bound=lower_bound
        )

    def d_in(self, params):
        return params.W_Q.shape[2]

    def _qkva(self, params: HGRN2Params, x: Tensor):
        lb = params.lower_bound
        f = torch.sigmoid(_gate_logits(x, params.W_F))  # [B, H, T, d_k]
        alpha = lb + (1 - lb) * f
        q, _, v = heads_qkv(x, params.W_Q, params.W_Q, params.W_V)
        return q, 1 - alpha, v, alpha

    def reference(self, params: HGRN2Params, x):
        """Recurrent form (float64): $S_t = S_{t-1}\\mathrm{diag}(\\alpha_t) + v_t(1-\\alpha_t)^\\top$, $o_t =
        S_tq_t$."""
        x = self._check(params, x)
        q, k, v, a = self._qkva(params, x)
        return self._merge(params, la_recurrent(q, k, v, a))

    def reference_parallel(self, params: HGRN2Params, x):
        x = self._check(params, x)
        q, k, v, a = self._qkva(params, x)
        return self._merge(params, la_parallel(q, k, v, a))

    def plan(self, params: HGRN2Params) -> Plan:
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        lb = params.lower_bound
        dt = params.W_Q.dtype
        up = Upstream(d, [Identity(d), HeadMap(params.W_F[..., :-1], "sigmoid", params.W_F[..., -1])])
        dz = d + H * d_k
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt, device=params.W_Q.device)
        Wq[:, :, :d] = params.W_Q
        Wv = torch.zeros(H, d_v, dz + 1, dtype=dt, device=params.W_Q.device)
        Wv[:, :, :d] = params.W_V
        Wk = torch.zeros_like(Wq)
        Wa = torch.zeros(H * d_k, dz + 1, dtype=dt, device=params.W_Q.device)
        for h in range(H):
            for j in range(d_k):
                col = d + h * d_k + j  # feature f[h, j]
                Wk[h, j, col], Wk[h, j, dz] = -(1 - lb), 1 - lb  # k = (1-lb)(1 - f)
                Wa[h * d_k + j, col], Wa[h * d_k + j, dz] = 1 - lb, lb  # alpha = lb + (1-lb) f
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wa, "affine", per_key=True))


@dataclass(frozen=True)
class Mamba2Params:
    r"""Per head $h$: ``W_x [H, d_v, d]`` (the head's input $x^{(h)}$), ``W_B, W_C [H, d_k, d]`` (key $B_t$,
    query $C_t$; $d_k$ = state size $N$), step logits ``w_dt [H, d+1]``, ``A [H]`` $<0$, skip ``D [H]``,
    ``W_O``."""

    W_x: Tensor
    W_B: Tensor
    W_C: Tensor
    w_dt: Tensor
    A: Tensor
    D: Tensor
    W_O: Tensor | None = None

    def __post_init__(self):
        H, _, _, d = check_projections(self.W_C, self.W_B, self.W_x, self.W_O)
        _check_gate("w_dt", self.w_dt, (H, d + 1))
        for name, t in (("A", self.A), ("D", self.D)):
            require_tensor(name, t, allow_complex=False)
            if t.shape != (H,):
                raise ValueError(f"{name} must have shape [H] = {(H,)}; got {tuple(t.shape)}")
            require_finite(name, t)
        if bool((self.A >= 0).any()):
            raise ValueError(f"A must be < 0 (decay exp(dt*A) < 1); got max {float(self.A.max())}")


class Mamba2(PlanVariant):
    r"""Mamba-2 SSD (one head per group): simple GLA with $q=C_t$, $k=B_t$, $v=\Delta_t x_t$, decay
    $e^{\Delta_tA}$, skip $Dx$."""

    status = "exact"
    extensions = ("input-dependent-decay", "upstream")
    free_fields = ("W_x", "W_B", "W_C", "W_O", "w_dt")
    source = (
        "Dao & Gu 2024 (Transformers are SSMs / Mamba-2), SSD recurrence with scalar A per head, ngroups = "
        "heads"
    )
    oracle = (
        "fla.ops.simple_gla.naive.naive_recurrent_simple_gla with q=C, k=B, v=dt*x, g=dt*A, scale=1.0 "
        "(state [P,N] -> fla [N,P])"
    )
    description = (
        "Mamba-2 SSD head: decay exp(dt_t A_h), dt_t = softplus(w_dt.[x;1]) (input-dependent decay); dt_t "
        "x_t from an upstream layer; skip D x_t by H*d_v query-like neurons and one constant neuron; "
        "H*d_k*(d_v+1) + H*d_v + 1 neurons."
    )

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None):
        W_C, W_B, W_x, W_O = _sample_qkv(generator, d, heads, d_k, d_v, d_out)
        w_dt = randn(generator, heads, d + 1, scale=d**-0.5)
        w_dt[:, -1] -= 1.0
        A = -torch.exp(torch.rand(heads, generator=generator, dtype=torch.float64) * 2 - 1)
        D = randn(generator, heads)
        return Mamba2Params(
            *_cast(dtype, W_x, W_B, W_C, w_dt, A, D), W_O=None if W_O is None else W_O.to(dtype)
        )

    def d_in(self, params):
        return params.W_x.shape[2]

    def _parts(self, params: Mamba2Params, x: Tensor):
        dt = softplus(_gate_logits(x, params.w_dt))  # [B, H, T]
        a = torch.exp(dt * params.A.to(torch.float64)[None, :, None])
        q, k, xh = heads_qkv(x, params.W_C, params.W_B, params.W_x)
        return q, k, dt[..., None] * xh, a, xh

    def reference(self, params: Mamba2Params, x):
        """Recurrent form (float64): $h_t = e^{\\Delta_tA}h_{t-1} + (\\Delta_tx_t)B_t^\\top$, $y = h_tC_t +
        Dx_t$."""
        x = self._check(params, x)
        q, k, v, a, xh = self._parts(params, x)
        o = la_recurrent(q, k, v, a) + params.D.to(torch.float64)[None, :, None, None] * xh
        return self._merge(params, o)

    def reference_parallel(self, params: Mamba2Params, x):
        x = self._check(params, x)
        q, k, v, a, xh = self._parts(params, x)
        o = la_parallel(q, k, v, a) + params.D.to(torch.float64)[None, :, None, None] * xh
        return self._merge(params, o)

    def plan(self, params: Mamba2Params) -> Plan:
        H, d_k, d = params.W_B.shape
        d_v = params.W_x.shape[1]
        dt_ = params.W_x.dtype
        dev = params.W_x.device
        up = Upstream(d, [Identity(d), GatedCopy(params.w_dt, "softplus")])  # z = [x; dt_h x for each head]
        dz = d + H * d
        Wq = torch.zeros(H, d_k, dz + 1, dtype=dt_, device=dev)
        Wk, Wv, Ws = torch.zeros_like(Wq), torch.zeros(H, d_v, dz + 1, dtype=dt_, device=dev), None
        Wq[:, :, :d] = params.W_C
        Wk[:, :, :d] = params.W_B
        Ws = torch.zeros_like(Wv)
        for h in range(H):
            Wv[h, :, d + h * d : d + (h + 1) * d] = params.W_x[h]  # v = W_x (dt_h x) = dt_h x^(h)
        Ws[:, :, :d] = params.D[:, None, None] * params.W_x
        Wdec = torch.zeros(H, dz + 1, dtype=dt_, device=dev)
        Wdec[:, :d] = -params.w_dt[:, :-1]
        Wdec[:, dz] = -params.w_dt[:, -1]  # exp(-A * logsigmoid(-w.x~)) = exp(A * softplus(w.x~))
        return Plan(
            Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wdec, scale=-params.A), skip=Skip(Ws)
        )


register("simple-gla")(SimpleGLA)
register("simple-gla-compressed")(SimpleGLACompressed)
register("gla")(GLA)
register("hgrn2")(HGRN2)
register("mamba2")(Mamba2)
