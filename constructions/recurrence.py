r"""One-step (recurrent) form of a reference: $s_t = \mathrm{step}(s_{t-1}, x_t)$, $y_t =
\mathrm{readout}(s_t, x_t)$.

Every attention-like layer of the project has a recurrent definition (Katharopoulos et al. 2020, Eq. 16-20 for
linear attention; Zucchet et al. 2023, Sec. 3 for the template's target $S_t = S_{t-1} + v_tk_t^\top$,
$o_t = S_tq_t$). A :class:`Recurrence` states it in float64 torch: ``init(B, dtype)`` the initial state (a
tuple of tensors), ``step(state, x_t)`` the next state from the input ``x_t [B, d]``, ``readout(state, x_t)``
the output ``y_t [B, d_out]`` from the *new* state. :func:`run_recurrence` is the plain loop.

The symbolic prover (``equivalence.symbolic.simulation``) proves a construction against this form for every
sequence length: a linear map $\Phi$ from the RNN's state to the state $s$ commutes with one step. A variant
offers the form by a ``recurrence(params)`` hook; a variant whose reference *is* the loop says so by
``reference = recurrent_reference`` (then :func:`reference_is_recurrence` is true and no separate link between
the two is needed); otherwise the prover also proves ``run_recurrence(recurrence(params), x) =
reference(params,
x)`` at fixed lengths, and the claim says so. :func:`plan_recurrence` and :func:`lsa_recurrence` derive the
form of a :class:`~constructions.variants.plan.Plan` and of linear self-attention (for variants without the
hook).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor
from torch.nn import functional as F

from .contract import hook

__all__ = [
    "Recurrence",
    "lsa_recurrence",
    "plan_recurrence",
    "recurrent_reference",
    "reference_is_recurrence",
    "run_recurrence",
]


class Recurrence(NamedTuple):
    """``init(B, dtype) -> state``, ``step(state, x_t [B, d]) -> state``, ``readout(state, x_t) -> y_t``."""

    init: Callable[[int, torch.dtype], tuple[Tensor, ...]]
    step: Callable[[tuple[Tensor, ...], Tensor], tuple[Tensor, ...]]
    readout: Callable[[tuple[Tensor, ...], Tensor], Tensor]


def run_recurrence(rec: Recurrence, x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time d_out"]:
    r"""The plain loop $s_0 = \mathrm{init}$, $s_t = \mathrm{step}(s_{t-1}, x_t)$, $y_t =
    \mathrm{readout}(s_t, x_t)$."""
    B, T, d = x.shape
    state = tuple(rec.init(B, x.dtype))
    ys = []
    for t in range(T):
        x_t = x[:, t]  # one object for step and readout (a form may reuse what step computed from it)
        state = tuple(rec.step(state, x_t))
        ys.append(rec.readout(state, x_t))
    if ys:
        return torch.stack(ys, dim=1)
    probe = rec.readout(tuple(rec.step(tuple(rec.init(B, x.dtype)), x.new_zeros(B, d))), x.new_zeros(B, d))
    return probe.new_zeros(B, 0, probe.shape[-1])


def recurrent_reference(
    self, params: Any, x: Float[Tensor, "batch time d"]
) -> Float[Tensor, "batch time d_out"]:
    """A variant's ``reference`` that *is* its one-step form: ``run_recurrence(self.recurrence(params), x)``
    (after the variant's ``_check(params, x)`` validation, when it has one). Use as ``reference =
    recurrent_reference`` in the class body."""
    check = getattr(self, "_check", None)
    if callable(check):
        checked = check(params, x)
        x = checked if isinstance(checked, Tensor) else x
    return run_recurrence(self.recurrence(params), x)


def reference_is_recurrence(variant: object) -> bool:
    """Whether ``variant.reference`` is :func:`recurrent_reference` (decided by identity of the function, not
    by a flag a variant could set wrongly)."""
    return getattr(type(variant), "reference", None) is recurrent_reference and callable(
        hook(variant, "recurrence")
    )


def _merge(o: Tensor, W_O: Tensor | None) -> Tensor:
    flat = o.reshape(o.shape[0], -1)
    return flat if W_O is None else flat @ W_O.to(flat.dtype).T


def _memory(features: Callable, H: int, d_k: int, d_v: int, W_O: Tensor | None) -> Recurrence:
    r"""$S_t = S_{t-1}\mathrm{diag}(\alpha_t) + v_tk_t^\top$, $y_t = W_O[S_tq_t + \text{skip}_t]_h$;
    ``features(x_t)`` gives
    ``(q [B,H,d_k], k [B,H,d_k], v [B,H,d_v], alpha [B,H,d_k] | [B,H] | None, skip [B,H,d_v] | None)``,
    computed once per step: ``readout`` reuses what ``step`` computed from the same ``x_t`` object."""
    last: list = [None, None]  # (x_t, features(x_t)) of the latest step

    def feats(x_t):
        if last[0] is not x_t:
            last[0], last[1] = x_t, features(x_t)
        return last[1]

    def init(B: int, dtype: torch.dtype):
        return (torch.zeros(B, H, d_v, d_k, dtype=torch.promote_types(dtype, torch.float64)),)

    def step(state, x_t):
        (S,) = state
        _, k, v, a, _ = feats(x_t)
        if a is not None:
            S = S * (a if a.ndim == 3 else a[..., None].expand(*a.shape, d_k))[:, :, None, :]
        return (S + v[..., :, None] * k[..., None, :],)

    def readout(state, x_t):
        (S,) = state
        q, _, _, _, skip = feats(x_t)
        o = (S @ q[..., None])[..., 0]
        return _merge(o if skip is None else o + skip, W_O)

    return Recurrence(init, step, readout)


def lsa_recurrence(params: Any) -> Recurrence:
    r"""Linear self-attention (Zucchet et al. 2023, Eq. 1) in one-step form: $S_t = S_{t-1} + v_tk_t^\top$,
    $o_t = S_tq_t$ per head, heads concatenated, then $W_O$. ``params``: ``W_Q, W_K [H, d_k, d]``,
    ``W_V [H, d_v, d]``, ``W_O`` or ``None``."""
    W_Q, W_K, W_V, W_O = params.W_Q, params.W_K, params.W_V, getattr(params, "W_O", None)
    H, d_k, _ = W_Q.shape

    def features(x_t):
        x_t = x_t.to(torch.float64)
        return (
            torch.einsum("bd,hrd->bhr", x_t, W_Q),
            torch.einsum("bd,hrd->bhr", x_t, W_K),
            torch.einsum("bd,hrd->bhr", x_t, W_V),
            None,
            None,
        )

    return _memory(features, H, d_k, W_V.shape[1], W_O)


def plan_recurrence(plan: Any) -> Recurrence:
    r"""One-step form of a :class:`~constructions.variants.plan.Plan` (decayed linear attention on the
    upstream features $z_t$; ``constructions.variants.plan``): $q, k, v = W\tilde z_t$, $\alpha_t$ the
    plan's decay (none, constant ``kv_decay``, or $\ell(W_\alpha\tilde z_t)$ per head / per key), an
    optional skip $W^{skip}\tilde z_t$. The upstream block is applied to ``x_t`` alone, so the form assumes a
    per-step upstream (no token shift)."""
    H, d_k, d_v = plan.W_Q.shape[0], plan.W_Q.shape[1], plan.W_V.shape[1]
    kv, dW = plan.kv_decay, plan.decay_W
    skip_W = plan.skip_W

    def features(x_t):
        z = x_t if plan.upstream is None else plan.upstream(x_t[:, None, :])[:, 0]
        z = z.to(torch.float64)
        zt = torch.cat([z, torch.ones_like(z[:, :1])], dim=-1)
        q, k, v = (
            torch.einsum("bz,hrz->bhr", zt, W.to(torch.float64)) for W in (plan.W_Q, plan.W_K, plan.W_V)
        )
        a = None
        if kv is not None:
            a = kv[None].expand(z.shape[0], H, d_k)
        elif dW is not None:
            g = zt @ dW.to(torch.float64).T
            if plan.decay_link == "affine":
                a = g
            else:
                s = (
                    torch.ones(g.shape[-1], dtype=torch.float64)
                    if plan.decay_scale is None
                    else plan.decay_scale
                )
                a = torch.exp(s.to(torch.float64) * F.logsigmoid(g))
            a = a.reshape(z.shape[0], H, d_k) if plan.decay_per_key else a.reshape(z.shape[0], H)
        skip = None if skip_W is None else torch.einsum("bz,hrz->bhr", zt, skip_W.to(torch.float64))
        return q, k, v, a, skip

    return _memory(features, H, d_k, d_v, plan.W_O)
