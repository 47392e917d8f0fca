r"""Fixed per-head decay (RetNet retention without normalisation, Lightning/TransNormer): $\lambda =
\gamma_h$; and its complex form with rotary relative positions (RetNet's $\gamma e^{i\theta}$, xPos/RoPE):
$\lambda = \gamma_h e^{i\theta_{h,j}}$.

Sun et al. 2023 (*Retentive Network*, Sec. 2.1): per head $S_t = \gamma S_{t-1} + v_t k_t^\top$, $o_t = S_t
q_t$, whose parallel form is $(QK^\top\odot D)V$, $D_{ts} = \gamma^{t-s}$ ($s\le t$); RetNet uses $\gamma_h =
1 - 2^{-5-h}$ (fla ``naive_retention``) and applies a rotation $e^{in\theta}$ to $q_n$, $k_n$ (the real form
of which is RoPE). Normalisation (GroupNorm, the $D$ rescaling) is left out: it is not part of the recurrence.

Constructions (derived):

- ``retention``: the direct construction with ``kv[h,i,j]`` at $\lambda = \gamma_h$ — $H d_k(d_v+1)$ neurons.
- ``retention-complex``: write pairs $(2j, 2j+1)$ as complex numbers, $\hat q_j = q_{2j} + i q_{2j+1}$, $\hat
  k_j = k_{2j} - i k_{2j+1}$ (conjugated). Then $\tilde q_t^\top\tilde k_s = \mathrm{Re}\sum_j \hat
  q_{t,j}\hat k_{s,j} e^{i(t-s)\theta_j}$, so complex neurons ``kv[h,i,j]`` with $\lambda = \gamma_h
  e^{i\theta_{h,j}}$ and input $v_i\hat k_j$, complex query neurons $\hat q_j$, and the real readout give
  RetNet exactly (complex decay). With ``conjugate_pairs=True`` (default) every complex neuron and gate has
  its conjugate partner and $D\to[D,\bar D]/2$, so the output is real before the ``Re`` (the realified,
  LRU-style form): $H d_k (d_v+1)$ complex neurons in $H d_k(d_v+1)/2$ conjugate pairs; ``False``: half as
  many with ``Re``.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, affine, check_projections, heads_qkv, randn
from .plan import ConstantDecay, Plan
from .reference import la_recurrent, retention_parallel

__all__ = ["RetentionParams", "Retention", "RetentionComplex", "retnet_gammas"]


def retnet_gammas(H: int) -> Tensor:
    r"""RetNet's per-head decays $\gamma_h = 1 - 2^{-5-h}$ (Sun et al. 2023; fla ``naive_retention``)."""
    return 1 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float64))


@dataclass(frozen=True)
class RetentionParams:
    r"""``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, ``gamma [H]`` with $|\gamma_h|\le 1$, ``W_O [d_out, H
    d_v]`` or ``None``; complex form: ``theta [H, d_k/2]`` (any real angles; ``d_k`` even) and
    ``conjugate_pairs``."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    gamma: Tensor
    W_O: Tensor | None = None
    theta: Tensor | None = None
    conjugate_pairs: bool = True

    def __post_init__(self):
        H, d_k, _, _ = check_projections(self.W_Q, self.W_K, self.W_V, self.W_O)
        require_tensor("gamma", self.gamma, allow_complex=False)
        if self.gamma.shape != (H,):
            raise ValueError(
                f"gamma must have shape [H] = {(H,)} (one decay per head); got {tuple(self.gamma.shape)}"
            )
        require_finite("gamma", self.gamma)
        if bool((self.gamma.abs() > 1).any()):
            h = int(self.gamma.abs().argmax())
            raise ValueError(
                f"gamma must satisfy |gamma_h| <= 1 (a decay); got {float(self.gamma[h])} at head {h}"
            )
        if self.theta is not None:
            require_tensor("theta", self.theta, allow_complex=False)
            if d_k % 2 or self.theta.shape != (H, d_k // 2):
                raise ValueError(
                    f"theta needs an even d_k and shape [H, d_k/2]; got d_k={d_k}, theta "
                    f"{tuple(self.theta.shape)}"
                )
            require_finite("theta", self.theta)


class Retention(PlanVariant):
    r"""RetNet retention without normalisation / Lightning-style fixed decay: $S_t = \gamma_h S_{t-1} +
    v_tk_t^\top$."""

    status = "exact"
    source = (
        "Sun et al. 2023 (RetNet), Sec. 2.1, retention without GroupNorm; Zucchet et al. 2023 Sec. 3 with "
        "lambda=gamma"
    )
    oracle = (
        "fla.ops.retention.naive.naive_retention (HF, fixed gamma_h = 1-2^(-5-h), scale d_k^-1/2); "
        "fla.ops.simple_gla.naive.naive_recurrent_simple_gla with constant g = log gamma (any gamma)"
    )
    description = (
        "Fixed per-head decay gamma_h (RetNet retention without normalisation, Lightning): direct "
        "construction with kv[h,i,j] at lambda=gamma_h, q[h,j] at 0; H*d_k*(d_v+1) neurons."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_k=None, d_v=None, d_out=None, gamma=None
    ):
        """Gaussian projections scaled $d^{-1/2}$; ``gamma``: ``"retnet"`` ($1-2^{-5-h}$), a tensor ``[H]``,
        or ``None``: $1 - 2^{-u}$, $u\\sim U(0, 8)$ (decays from 0 to 0.996)."""
        d_k = d if d_k is None else d_k
        d_v = d if d_v is None else d_v
        s = d**-0.5
        W_Q, W_K, W_V = (
            randn(generator, heads, d_k, d, scale=s),
            randn(generator, heads, d_k, d, scale=s),
            randn(generator, heads, d_v, d, scale=s),
        )
        W_O = randn(generator, d_out, heads * d_v, scale=s) if d_out else None
        if gamma is None:
            gamma = 1 - 2.0 ** (-8 * torch.rand(heads, generator=generator, dtype=torch.float64))
        elif isinstance(gamma, str):
            if gamma != "retnet":
                raise ValueError(f"gamma must be 'retnet', a tensor [H] or None; got {gamma!r}")
            gamma = retnet_gammas(heads)
        return RetentionParams(
            *(t.to(dtype) for t in (W_Q, W_K, W_V, torch.as_tensor(gamma, dtype=torch.float64))),
            W_O=None if W_O is None else W_O.to(dtype),
        )

    def reference(self, params: RetentionParams, x):
        """Recurrent form (float64): $S_t = \\gamma_h S_{t-1} + v_tk_t^\\top$, $o_t = S_tq_t$, heads merged by
        $W_O$."""
        x = self._check(params, x)
        if params.theta is not None:
            raise ValueError("retention has real decays; params with theta belong to 'retention-complex'")
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return self._merge(params, la_recurrent(q, k, v, params.gamma))

    def reference_parallel(self, params: RetentionParams, x):
        """Parallel form $(QK^\\top\\odot D)V$ (independent of :meth:`reference`)."""
        x = self._check(params, x)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return self._merge(params, retention_parallel(q, k, v, params.gamma))

    def plan(self, params: RetentionParams) -> Plan:
        H, d_k = params.W_Q.shape[:2]
        return Plan(
            affine(params.W_Q),
            affine(params.W_K),
            affine(params.W_V),
            params.W_O,
            decay=ConstantDecay(params.gamma[:, None].expand(H, d_k)),
        )

    def symbolic_weights(self, W_Q, W_K, W_V, gamma, W_O=None, theta=None):
        """The construction on object arrays (``symbolic.retention_weights``)."""
        from .symbolic import retention_weights  # lazy: start-up time (SymPy)

        return retention_weights(W_Q, W_K, W_V, gamma, W_O, theta)

    def symbolic_reference(self, W_Q, W_K, W_V, gamma, W_O, theta, x):
        """The recurrence on object arrays (``symbolic.retention_reference``)."""
        from .symbolic import retention_reference  # lazy: start-up time (SymPy)

        return retention_reference(W_Q, W_K, W_V, gamma, W_O, theta, x)


class RetentionComplex(PlanVariant):
    r"""RetNet with rotary relative positions: complex $\lambda = \gamma_h e^{i\theta_{h,j}}$ (complex decay),
    real readout."""

    status = "exact"
    extensions = ("complex-decay",)
    free_fields = ("W_Q", "W_K", "W_V", "W_O", "theta")
    source = (
        "Sun et al. 2023 (RetNet), Sec. 2.1, complex form Q_n e^{in theta}, K_m e^{im theta} (= RoPE/xPos "
        "rotation); Orvieto et al. 2023 (LRU) for complex diagonal recurrences with real readout"
    )
    oracle = (
        "fla.ops.retention.naive.naive_retention on RoPE-rotated q, k (the fla layer applies the rotation)"
    )
    description = (
        "Complex/rotary decay lambda = gamma_h e^{i theta_hj} (complex decay): complex kv neurons in "
        "conjugate pairs with real readout; H*d_k*(d_v+1) complex neurons (d_k even)."
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
        gamma=None,
        conjugate_pairs=True,
    ):
        """As :meth:`Retention.sample_params` with ``d_k`` rounded up to even and $\\theta\\sim U(-\\pi,
        \\pi)$."""
        d_k = 2 * ((d + 1) // 2) if d_k is None else d_k
        p = Retention.sample_params(
            self,
            d,
            heads,
            generator=generator,
            dtype=torch.float64,
            d_k=d_k,
            d_v=d_v,
            d_out=d_out,
            gamma=gamma,
        )
        theta = (torch.rand(heads, d_k // 2, generator=generator, dtype=torch.float64) * 2 - 1) * torch.pi
        return RetentionParams(
            p.W_Q.to(dtype),
            p.W_K.to(dtype),
            p.W_V.to(dtype),
            p.gamma.to(dtype),
            None if p.W_O is None else p.W_O.to(dtype),
            theta.to(dtype),
            conjugate_pairs,
        )

    def _need_theta(self, params):
        if params.theta is None:
            raise ValueError("retention-complex needs theta [H, d_k/2]; for real decays use 'retention'")

    def reference(self, params: RetentionParams, x):
        """Parallel form with RoPE-rotated $q, k$ (float64): $o_t = \\sum_{s\\le
        t}\\gamma^{t-s}(R_{t\\theta}q_t)^\\top(R_{s\\theta}k_s)v_s$."""
        x = self._check(params, x)
        self._need_theta(params)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        return self._merge(params, retention_parallel(q, k, v, params.gamma, params.theta))

    def reference_recurrent(self, params: RetentionParams, x):
        """Complex recurrent form $S_t = S_{t-1}\\mathrm{diag}(\\gamma e^{i\\theta}) + v_t\\hat k_t^\\top$,
        $\\mathrm{Re}(S_t\\hat q_t)$."""
        x = self._check(params, x)
        self._need_theta(params)
        q, k, v = heads_qkv(x, params.W_Q, params.W_K, params.W_V)
        qc = torch.complex(q[..., 0::2], q[..., 1::2])
        kc = torch.complex(k[..., 0::2], -k[..., 1::2])
        lam = params.gamma.to(torch.float64)[:, None] * torch.exp(1j * params.theta.to(torch.float64))
        return self._merge(params, la_recurrent(qc, kc, v.to(torch.complex128), lam).real)

    def plan(self, params: RetentionParams) -> Plan:
        self._need_theta(params)
        cdtype = (
            torch.complex64
            if params.W_Q.dtype in (torch.float32, torch.float16, torch.bfloat16)
            else torch.complex128
        )
        Wq, Wk = affine(params.W_Q), affine(params.W_K)
        W_Q = torch.complex(Wq[:, 0::2], Wq[:, 1::2]).to(cdtype)
        W_K = torch.complex(Wk[:, 0::2], -Wk[:, 1::2]).to(cdtype)
        W_V = affine(params.W_V).to(cdtype)
        W_O = None if params.W_O is None else params.W_O.to(cdtype)
        theta = params.theta
        lam = torch.polar(
            params.gamma[:, None].expand_as(theta).abs(),
            theta + torch.where(params.gamma[:, None] < 0, torch.pi, 0.0).to(theta.dtype),
        ).to(cdtype)
        return Plan(
            W_Q,
            W_K,
            W_V,
            W_O,
            decay=ConstantDecay(
                lam, params.conjugate_pairs, float(theta.detach().abs().max()) if theta.numel() else 0.0
            ),
        )


register("retention")(Retention)
register("retention-complex")(RetentionComplex)
