r"""A *plan*: how a linear-attention-like variant is laid onto the gated RNN template, and the shared code
that turns a plan into a :class:`~constructions.rnn.GatedLinearRNN`, a tolerance-model magnitude $M$ and a
path length $n$.

Every exact variant here is "decayed linear attention on the template's input $z_t$" (derived): per head,
affine maps $q = W_Q\tilde z$, $k = W_K\tilde z$, $v = W_V\tilde z$ (``[H, r, d_z+1]``) of $\tilde z_t = [z_t;
1]$, an optional output map $W_O$, an optional upstream feature layer $x_t\mapsto z_t$ (:mod:`.upstream`), an
optional skip term (:class:`Skip`), and exactly one of three decays of the key-value memory $S_t =
S_{t-1}\mathrm{diag}(\alpha_t) + v_tk_t^\top$ (the ``decay`` part, one typed value, so no plan can carry two):

- :class:`NoDecay` ($\alpha = 1$, the paper's LSA);
- :class:`ConstantDecay` per (head, key) ``kv [H, d_k]``, real or complex (RetNet, Lightning, complex RetNet,
  with conjugate pairs);
- :class:`InputDecay` (input-dependent decay, :class:`.decay.InputDependentDecay`) with one channel per head
  (simple GLA, Mamba-2, mLSTM) or per (head, key) (GLA, HGRN2, Mamba-1, RWKV-6, one-hot delta rule).

``method="direct"``: :func:`.wiring.affine_direct_weights`, $H d_k (d_v + 1)$ neurons, key-value neuron
``kv[h,i,j]`` decays like key $j$ of head $h$. ``method="compressed"``:
:func:`.wiring.grouped_compressed_weights`,
valid only when the projections are linear in $z$ (no bias), real, and every store neuron of a group
shares one decay: :func:`compressed_reason` says why not otherwise (style guide: validators give reasons).
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..rnn import GatedLinearRNN, RNNWeights
from ..tolerance import construction_depth, lsa_path_length, rnn_path_length
from .decay import InputDependentDecay
from .reference import la_magnitude, merge_heads, project
from .upstream import Upstream
from .wiring import affine_direct_weights, direct_channels, direct_kv_lam, grouped_compressed_weights

__all__ = [
    "Plan",
    "NoDecay",
    "ConstantDecay",
    "InputDecay",
    "Decay",
    "Skip",
    "build_rnn",
    "compressed_reason",
    "plan_magnitude",
    "plan_path_length",
    "plan_num_neurons",
    "conjugate_pair_weights",
]

METHODS = ("direct", "compressed")


@dataclass(frozen=True)
class NoDecay:
    """No decay of the key-value memory: $\\alpha = 1$ (the paper's LSA)."""


@dataclass(frozen=True)
class ConstantDecay:
    r"""A constant decay per (head, key), ``kv [H, d_k]``, real or complex (RetNet, Lightning; complex
    RetNet). ``conjugate_pairs``: realify a complex construction into conjugate pairs (complex ``kv``
    only); ``phase_bound``: an upper bound on $|\theta|$ of complex decays (their rounding costs $\sim
    T|\theta|$ ulps)."""

    kv: Tensor
    conjugate_pairs: bool = False
    phase_bound: float = 0.0

    def __post_init__(self):
        if self.conjugate_pairs and not self.kv.is_complex():
            raise ValueError("conjugate pairs realify a complex construction; this constant decay is real")
        if self.phase_bound and not self.kv.is_complex():
            raise ValueError("phase_bound bounds the angle of complex decays; this constant decay is real")


@dataclass(frozen=True)
class InputDecay:
    r"""An input-dependent decay (:class:`.decay.InputDependentDecay`): logits ``W [c, d_z+1]``
    with ``c = H`` (one channel per head) or ``H*d_k`` (``per_key``), a ``link`` and per-channel ``scale``
    ``[c]``."""

    W: Tensor
    link: str = "exp-logsigmoid"
    scale: Tensor | None = None
    per_key: bool = False


#: the decay part of a plan: exactly one kind, so "constant and input-dependent at once" cannot be written
Decay = NoDecay | ConstantDecay | InputDecay


@dataclass(frozen=True)
class Skip:
    r"""A skip term ``W [H, d_v, d_z+1]``: head ``h`` also outputs ``W[h] z~_t`` (Mamba-2's $Dx_t$); direct
    method."""

    W: Tensor


#: keywords of an earlier flat form of ``Plan`` and the typed part each belongs to (a clear error, not a
#: shorthand: the typed parts make "constant and input-dependent decay at once" impossible to write)
_TYPED_PART = {
    "kv_decay": "decay=ConstantDecay(kv, conjugate_pairs, phase_bound)",
    "conjugate_pairs": "decay=ConstantDecay(kv, conjugate_pairs, phase_bound)",
    "phase_bound": "decay=ConstantDecay(kv, conjugate_pairs, phase_bound)",
    "decay_W": "decay=InputDecay(W, link, scale, per_key)",
    "decay_link": "decay=InputDecay(W, link, scale, per_key)",
    "decay_scale": "decay=InputDecay(W, link, scale, per_key)",
    "decay_per_key": "decay=InputDecay(W, link, scale, per_key)",
    "skip_W": "skip=Skip(W)",
}


@dataclass(frozen=True, init=False)
class Plan:
    """Template plan of a variant (see module docstring), in three typed parts: the projections
    ``W_Q, W_K [H, d_k, d_z+1]``, ``W_V [H, d_v, d_z+1]``, ``W_O [d_out, H*d_v]``; an optional ``upstream``
    block; the ``decay`` (:class:`NoDecay`, :class:`ConstantDecay` or :class:`InputDecay`); an optional
    :class:`Skip`;
    and the ``method`` (``"direct"`` or ``"compressed"``). The parts' fields read back as properties
    (``kv_decay``, ``decay_W``, ``skip_W``, ...), for the wiring code."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor | None
    upstream: Upstream | None
    decay: Decay
    skip: Skip | None
    method: str

    def __init__(
        self,
        W_Q: Tensor,
        W_K: Tensor,
        W_V: Tensor,
        W_O: Tensor | None = None,
        upstream: Upstream | None = None,
        decay: Decay | None = None,
        skip: Skip | None = None,
        method: str = "direct",
        **unknown,
    ):
        if unknown:
            hints = sorted({_TYPED_PART[k] for k in unknown if k in _TYPED_PART})
            raise TypeError(
                f"Plan() got unexpected keyword(s) {sorted(unknown)}"
                + (f"; give the typed part instead: {', '.join(hints)}" if hints else "")
            )
        decay = NoDecay() if decay is None else decay
        if not isinstance(decay, (NoDecay, ConstantDecay, InputDecay)):
            raise TypeError(f"decay must be NoDecay, ConstantDecay or InputDecay; got {type(decay).__name__}")
        if skip is not None and not isinstance(skip, Skip):
            raise TypeError(f"skip must be a Skip or None; got {type(skip).__name__}")
        for name, value in (
            ("W_Q", W_Q),
            ("W_K", W_K),
            ("W_V", W_V),
            ("W_O", W_O),
            ("upstream", upstream),
            ("decay", decay),
            ("skip", skip),
            ("method", method),
        ):
            object.__setattr__(self, name, value)
        self._validate()

    def _validate(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        H, d_k, dz1 = self.W_Q.shape
        if self.W_K.shape != self.W_Q.shape or self.W_V.shape[0] != H or self.W_V.shape[2] != dz1:
            raise ValueError(
                f"plan projections disagree: W_Q {tuple(self.W_Q.shape)}, W_K {tuple(self.W_K.shape)}, "
                f"W_V {tuple(self.W_V.shape)}; expected [H, d_k, d_z+1] twice and [H, d_v, d_z+1]"
            )
        if self.skip_W is not None and (self.skip_W.shape != self.W_V.shape or self.method != "direct"):
            raise ValueError(
                f"skip_W must have the shape of W_V {tuple(self.W_V.shape)} and needs the direct method; "
                f"got {tuple(self.skip_W.shape)}, method {self.method!r}"
            )
        if self.kv_decay is not None and self.kv_decay.shape != (H, d_k):
            raise ValueError(
                f"kv_decay must have shape [H, d_k] = {(H, d_k)}; got {tuple(self.kv_decay.shape)}"
            )
        if self.decay_W is not None:
            c = H * d_k if self.decay_per_key else H
            if self.decay_W.shape != (c, dz1):
                raise ValueError(
                    f"decay_W must have shape [{'H*d_k' if self.decay_per_key else 'H'}, d_z+1] = "
                    f"{(c, dz1)}; got {tuple(self.decay_W.shape)}"
                )

    # -- read-only views of the typed parts (the names the wiring code uses) -------------------------
    @property
    def kv_decay(self) -> Tensor | None:
        return self.decay.kv if isinstance(self.decay, ConstantDecay) else None

    @property
    def conjugate_pairs(self) -> bool:
        return isinstance(self.decay, ConstantDecay) and self.decay.conjugate_pairs

    @property
    def phase_bound(self) -> float:
        return self.decay.phase_bound if isinstance(self.decay, ConstantDecay) else 0.0

    @property
    def decay_W(self) -> Tensor | None:
        return self.decay.W if isinstance(self.decay, InputDecay) else None

    @property
    def decay_link(self) -> str:
        return self.decay.link if isinstance(self.decay, InputDecay) else "exp-logsigmoid"

    @property
    def decay_scale(self) -> Tensor | None:
        return self.decay.scale if isinstance(self.decay, InputDecay) else None

    @property
    def decay_per_key(self) -> bool:
        return isinstance(self.decay, InputDecay) and self.decay.per_key

    @property
    def skip_W(self) -> Tensor | None:
        return None if self.skip is None else self.skip.W

    @property
    def H(self) -> int:
        return self.W_Q.shape[0]

    @property
    def d_k(self) -> int:
        return self.W_Q.shape[1]

    @property
    def d_v(self) -> int:
        return self.W_V.shape[1]

    @property
    def d_z(self) -> int:
        return self.W_Q.shape[2] - 1

    @property
    def d_in(self) -> int:
        return self.upstream.d_in if self.upstream is not None else self.d_z

    @property
    def d_out(self) -> int:
        return self.W_O.shape[0] if self.W_O is not None else self.H * self.d_v

    @property
    def is_complex(self) -> bool:
        return any(
            t is not None and t.is_complex() for t in (self.W_Q, self.W_K, self.W_V, self.W_O, self.kv_decay)
        )


def _dtype(plan: Plan) -> torch.dtype:
    dtype = plan.W_Q.dtype
    for t in (plan.W_K, plan.W_V, plan.W_O, plan.kv_decay):
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _rows_equal(t: Tensor) -> bool:
    """All entries along the last axis (rows of one head) equal."""
    return bool((t == t[..., :1]).all())


def compressed_reason(plan: Plan) -> str | None:
    """``None`` if the compressed (shared symmetric store) construction is valid for ``plan``; else why
    not."""
    if plan.is_complex:
        return (
            "the compressed construction needs real projections and decays; this plan is complex "
            "(rotary/complex decay): use the direct construction"
        )
    for name, W in (("W_Q", plan.W_Q), ("W_K", plan.W_K), ("W_V", plan.W_V)):
        if bool((W[..., -1] != 0).any()):
            return (
                "the compressed construction stores sum z_s z_s^T, so it needs projections linear in z; "
                f"{name} "
                "has a bias (uses the constant 1): use the direct construction"
            )
    if plan.kv_decay is not None and not _rows_equal(plan.kv_decay):
        return (
            "the compressed construction needs one scalar decay shared by all store neurons of a head; this "
            "plan has a different constant decay per key, which acts in k-coordinates, not on the store "
            "sum z z^T in z-coordinates"
        )
    if plan.decay_W is not None and plan.decay_per_key:
        W = plan.decay_W.reshape(plan.H, plan.d_k, -1)
        s = None if plan.decay_scale is None else plan.decay_scale.reshape(plan.H, plan.d_k)
        tied = bool((W == W[:, :1]).all()) and (s is None or _rows_equal(s))
        if not tied:
            return (
                "the compressed construction needs one scalar decay shared by all store neurons of a head; "
                "this "
                "plan has per-key data-dependent decay alpha_t in R^{d_k} (GLA/HGRN2), which acts in "
                "k-coordinates: S_t = S_{t-1} diag(alpha_t) + v k^T cannot be written as W_V (sum of decayed "
                "z z^T) W_K^T with one store"
            )
    return None


def _groups(plan: Plan) -> tuple[list[list[int]], list[int]]:
    """Heads grouped by identical decay (one store each), and the decay channel (or head) of each group."""
    H = plan.H
    if plan.kv_decay is None and plan.decay_W is None:
        return [list(range(H))], [0]
    if plan.kv_decay is not None:
        keyed = [tuple(plan.kv_decay[h, :1].tolist()) for h in range(H)]
    else:
        W = plan.decay_W.reshape(H, plan.d_k, -1)[:, 0] if plan.decay_per_key else plan.decay_W
        scale = plan.decay_scale
        if scale is not None and plan.decay_per_key:
            scale = scale.reshape(H, plan.d_k)[:, 0]
        keyed = [tuple(W[h].tolist()) + ((float(scale[h]),) if scale is not None else ()) for h in range(H)]
    groups: dict[tuple, list[int]] = {}
    for h, key in enumerate(keyed):
        groups.setdefault(key, []).append(h)
    heads = list(groups.values())
    return heads, [g[0] for g in heads]


def conjugate_pair_weights(w: RNNWeights) -> RNNWeights:
    r"""Realify a complex construction with real readout into conjugate pairs (derived): every neuron $k$ gets
    a partner with $\bar A_k, \bar B_k, \bar\lambda_k$, every gate a partner on the partners, and $D\to[D,
    \bar D]/2$, so $y = \tfrac12(Dz + \overline{Dz}) = \mathrm{Re}(Dz)$: the output is real before any
    ``Re``."""
    A, B, lam, C, E, D = w
    Z = torch.zeros_like(C)
    return RNNWeights(
        torch.cat([A, A.conj()]),
        torch.cat([B, B.conj()]),
        torch.cat([lam, lam.conj()]),
        torch.cat([torch.cat([C, Z], 1), torch.cat([Z, C.conj()], 1)]),
        torch.cat([torch.cat([E, Z], 1), torch.cat([Z, E.conj()], 1)]),
        torch.cat([D, D.conj()], 1) / 2,
    )


def build_rnn(plan: Plan) -> GatedLinearRNN:
    """The template RNN of ``plan`` (``ValueError`` with the reason if the compressed form is invalid)."""
    dtype = _dtype(plan)
    W_Q, W_K, W_V = (t.to(dtype) for t in (plan.W_Q, plan.W_K, plan.W_V))
    W_O = None if plan.W_O is None else plan.W_O.to(dtype)
    H, d_k, d_v = plan.H, plan.d_k, plan.d_v
    decay = None
    if plan.method == "direct":
        w = affine_direct_weights(W_Q, W_K, W_V, W_O)
        lam = w.lam
        if plan.kv_decay is not None:
            lam = direct_kv_lam(plan.kv_decay.to(dtype), d_v)
        if plan.decay_W is not None:
            channel, const = direct_channels(H, d_k, d_v, plan.decay_per_key)
            decay = InputDependentDecay(
                plan.decay_W,
                channel.to(W_Q.device),
                const.to(plan.decay_W.dtype),
                plan.decay_link,
                plan.decay_scale,
            )
            lam = None
        w = RNNWeights(w.A, w.B, lam, w.C, w.E, w.D)
        if plan.skip_W is not None:
            w, decay = _append_skip(plan, w, decay, dtype)
        if plan.conjugate_pairs:
            if decay is not None or not w.A.is_complex():
                raise ValueError("conjugate pairs apply to complex plans with a constant decay")
            w = conjugate_pair_weights(w)
    else:
        reason = compressed_reason(plan)
        if reason is not None:
            raise ValueError(reason)
        groups, reps = _groups(plan)
        w, group_of = grouped_compressed_weights(W_Q[..., :-1], W_K[..., :-1], W_V[..., :-1], W_O, groups)
        lam = w.lam
        gidx = torch.tensor(group_of, dtype=torch.long, device=W_Q.device)
        store = gidx >= 0
        if plan.kv_decay is not None:
            per_group = plan.kv_decay[torch.tensor(reps), 0].to(dtype)
            lam = torch.where(store, per_group[gidx.clamp(min=0)], lam)
        if plan.decay_W is not None:
            rep_chan = [r * d_k if plan.decay_per_key else r for r in reps]
            channel = torch.where(
                store, torch.tensor(rep_chan, dtype=torch.long)[gidx.clamp(min=0)], torch.full_like(gidx, -1)
            )
            decay = InputDependentDecay(
                plan.decay_W,
                channel,
                torch.zeros(len(group_of), dtype=plan.decay_W.dtype),
                plan.decay_link,
                plan.decay_scale,
            )
            lam = None
        w = RNNWeights(w.A, w.B, lam, w.C, w.E, w.D)
    return GatedLinearRNN(*w, decay=decay, upstream=plan.upstream)


def _append_skip(plan: Plan, w: RNNWeights, decay, dtype):
    r"""Append the skip term (derived): neurons ``s[h,i]`` ($\lambda=0$, input $(W^{skip}_h\tilde z)_i\cdot
    1$), one constant neuron ``one`` ($\lambda=0$, input $1\cdot 1$), and gates ``s[h,i] * one`` read out
    into row $(h,i)$."""
    H, d_v, d_z = plan.H, plan.d_v, plan.d_z
    n0, m0 = w.A.shape[0], w.C.shape[0]
    ns = H * d_v
    dev = w.A.device
    A_s = torch.zeros(ns + 1, d_z + 1, dtype=dtype, device=dev)
    B_s = torch.zeros(ns + 1, d_z + 1, dtype=dtype, device=dev)
    A_s[:ns] = plan.skip_W.to(dtype).reshape(ns, d_z + 1)
    B_s[:, d_z] = 1
    A_s[ns, d_z] = 1
    C = torch.zeros(m0 + ns, n0 + ns + 1, dtype=dtype, device=dev)
    E = torch.zeros_like(C)
    C[:m0, :n0], E[:m0, :n0] = w.C, w.E
    idx = torch.arange(ns, device=dev)
    C[m0 + idx, n0 + idx] = 1
    E[m0 + idx, n0 + ns] = 1
    sel = torch.eye(ns, dtype=dtype, device=dev) if plan.W_O is None else plan.W_O.to(dtype)
    D = torch.cat([w.D, sel], dim=1)
    lam = None if w.lam is None else torch.cat([w.lam, torch.zeros(ns + 1, dtype=w.lam.dtype, device=dev)])
    if decay is not None:
        decay = InputDependentDecay(
            decay.W,
            torch.cat([decay.channel, torch.full((ns + 1,), -1, device=dev)]),
            torch.cat([decay.const, torch.zeros(ns + 1, dtype=decay.const.dtype, device=dev)]),
            decay.link,
            decay.scale,
        )
    return RNNWeights(torch.cat([w.A, A_s]), torch.cat([w.B, B_s]), lam, C, E, D), decay


def plan_num_neurons(plan: Plan) -> int:
    """Recurrent state size of :func:`build_rnn` without building it."""
    if plan.method == "compressed":
        d = plan.d_z
        return len(_groups(plan)[0]) * d * (d + 1) // 2 + d
    n = plan.H * plan.d_k * (plan.d_v + 1)
    if plan.skip_W is not None:
        n += plan.H * plan.d_v + 1
    return 2 * n if plan.conjugate_pairs else n


def _num_gates(plan: Plan) -> int:
    if plan.method == "compressed":
        return plan.d_out * plan.d_z
    m = plan.H * plan.d_k * plan.d_v + (plan.H * plan.d_v if plan.skip_W is not None else 0)
    return 2 * m if plan.conjugate_pairs else m


def plan_path_length(plan: Plan, T: int) -> int:
    r"""Tolerance-model path length $n$: the reference's path (``lsa_path_length``) plus the template's
    (``rnn_path_length`` with the weights' construction depth), plus per step: 1 rounding for a constant real
    decay, 3 for a complex one plus $\lceil|\theta|\rceil$ (the phase error of a rounded $\theta$ grows like
    $t|\theta| u$), 6 for an input-dependent decay (logit, link, product), plus the upstream layer's depth;
    complex arithmetic counts twice (derived, Higham §3.6: $|fl(ab)-ab| \le \sqrt2\gamma_2|a||b|$)."""
    H, d_k, d_v = plan.H, plan.d_k, plan.d_v
    n = lsa_path_length(
        T, plan.d_in, d_k, d_v, H
    ) + rnn_path_length(  # lambda in {0, 1}; decays are added below
        T,
        plan.d_z,
        plan_num_neurons(plan),
        _num_gates(plan),
        construction_depth=construction_depth(H, d_k, d_v),
        lam="zero-one",
    )
    if plan.kv_decay is not None:
        n += (3 + math.ceil(plan.phase_bound)) * T if plan.kv_decay.is_complex() else T
    if plan.decay_W is not None:
        n += 6 * T
    if plan.upstream is not None:
        n += plan.d_in + 8
    return 2 * n if plan.is_complex else n


def _absw(W: Tensor) -> Tensor:
    """Entrywise modulus bound: $|\\mathrm{Re}\\,W| + |\\mathrm{Im}\\,W|$ (complex) or $|W|$, float64 CPU."""
    W = W.detach().to("cpu")
    if W.is_complex():
        return (W.real.abs() + W.imag.abs()).to(torch.float64)
    return W.abs().to(torch.float64)


def _capped_decay_magnitude(
    q: Tensor, k: Tensor, v: Tensor, per: Tensor, lam: Tensor
) -> Float[Tensor, "batch heads time d_v"]:
    r"""$M$ with the decay products bounded without inflating every factor: where the first-order inflation
    $\lambda_r + e_r$ ($e_r = \delta_r/n$, :func:`plan_magnitude`) exceeds 1 (huge gate pre-activations),
    $\prod_r(\lambda_r + e_r)$ overflows although every computed $\hat\lambda_r$ lies in $[0, 1]$. With
    $c_r = \min(\lambda_r + e_r, 1) \ge \max(\lambda_r, \hat\lambda_r)$ (to first order),
    $|\prod_r\hat\lambda_r - \prod_r\lambda_r| \le \sum_r e_r \prod_{q > r} c_q =: D_t$ (factors $\le 1$
    dropped), a recurrence $D_t = c_t D_{t-1} + e_t$ that does not depend on where the product starts, so
    $M \le \mathrm{LA}(q, k, v; c) + \mathrm{LA}(D \odot q, k, v)$. Both this and the inflated form bound
    the same first-order error; :func:`plan_magnitude` takes the elementwise minimum."""
    c = per.clamp_max(1.0)
    e = (per - lam).clamp_min(0.0)
    D = torch.empty_like(e)
    acc = torch.zeros_like(e.select(2, 0))
    for t in range(e.shape[2]):
        acc = c.select(2, t) * acc + e.select(2, t)
        D.select(2, t).copy_(acc)
    qD = q * (D if D.dim() == q.dim() else D.unsqueeze(-1))
    return la_magnitude(q, k, v, c) + la_magnitude(qD, k, v, None)


def plan_magnitude(plan: Plan, x: Float[Tensor, "batch time d"], n: int) -> Float[Tensor, "batch time d_out"]:
    r"""The tolerance model's $M$ for ``plan`` at input ``x``: decayed linear attention on absolute values,
    float64 on CPU, with every non-polynomial quantity (upstream features, input-dependent decays) inflated by
    its first-order rounding sensitivity $\delta/n$ (:mod:`.upstream`, :mod:`.decay`). ``plan`` must hold
    float64 CPU tensors (the variants' ``magnitude`` hooks build it from their params cast so)."""
    x64 = x.detach().to("cpu", torch.float64)
    if plan.upstream is not None:
        z_mag = plan.upstream.magnitude(x64, n)
        z64 = plan.upstream(x64).to(torch.float64)
    else:
        z_mag, z64 = x64.abs(), x64

    def absproj(W: Tensor) -> Tensor:
        Wa = _absw(W)
        return project(z_mag, Wa[..., :-1], Wa[..., -1])

    q, k, v = absproj(plan.W_Q), absproj(plan.W_K), absproj(plan.W_V)
    decay = lam = None
    if plan.kv_decay is not None:
        decay = plan.kv_decay.detach().to("cpu").abs().to(torch.float64)
    elif plan.decay_W is not None:
        channel = torch.arange(plan.decay_W.shape[0])
        obj = InputDependentDecay(
            plan.decay_W.detach().to("cpu", torch.float64),
            channel,
            torch.zeros(len(channel), dtype=torch.float64),
            plan.decay_link,
            None if plan.decay_scale is None else plan.decay_scale.detach().to("cpu", torch.float64),
        )
        per = obj.magnitude(z64, z_mag, n)  # [B, T, c]
        B, T, _ = per.shape

        def heads_layout(t: Tensor) -> Tensor:
            return (
                t.reshape(B, T, plan.H, plan.d_k).permute(0, 2, 1, 3)
                if plan.decay_per_key
                else t.permute(0, 2, 1)
            )

        decay = heads_layout(per)
        if plan.decay_link != "affine":
            lam = heads_layout(obj.channel_values(z64).abs())
    W_O = None if plan.W_O is None else _absw(plan.W_O)
    o = la_magnitude(q, k, v, decay)
    if lam is not None:
        o = torch.minimum(o, _capped_decay_magnitude(q, k, v, decay, lam))
    if plan.skip_W is not None:
        o = o + absproj(plan.skip_W)
    return merge_heads(o, W_O)
