r"""One-step (recurrent) forms of the decayed linear-attention references: ``recurrence(params)`` hooks.

A variant's ``recurrence(params)`` returns a :class:`Recurrence` ``(init, step, readout)`` (float64 torch):
``init(B, dtype)`` the initial state, ``step(state, x_t)`` the next state, ``readout(state, x_t)`` the output
$y_t$ from the *new* state. :func:`run_recurrence` is the plain loop $s_t = \text{step}(s_{t-1}, x_t)$, $y_t =
\text{readout}(s_t, x_t)$. The new variants' ``reference`` *is* ``run_recurrence(recurrence(params), x)``, so
the symbolic lift proves the construction against exactly this one-step form.

:func:`decayed_la` builds the form shared by every "decayed linear attention" (derived):
$S_t = S_{t-1}\,\mathrm{diag}(\alpha_t) + v_tk_t^\top$, $o_t = S_tq_t\ (+\ \text{skip}_t)$, heads merged by
$W_O$, from a per-step feature function $x_t\mapsto(q_t, k_t, v_t, \alpha_t, \text{skip}_t)$.

``Recurrence`` and ``run_recurrence`` live in :mod:`constructions.recurrence` (the symbolic lift's interface);
until that module exists this file defines the same two names (same fields, same loop).
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Recurrence", "StepFeatures", "decayed_la", "recurrent_reference", "run_recurrence"]

from ..recurrence import Recurrence, recurrent_reference, run_recurrence


class StepFeatures(NamedTuple):
    """Per-step quantities of a decayed linear attention: ``q, k [B, H, d_k]``, ``v [B, H, d_v]``, ``decay``
    ``[B, H, d_k]`` or ``[B, H]`` or ``None`` (no decay), ``skip [B, H, d_v]`` or ``None``."""

    q: Tensor
    k: Tensor
    v: Tensor
    decay: Tensor | None = None
    skip: Tensor | None = None


def _merge(o: Tensor, W_O: Tensor | None) -> Tensor:
    """``[B, H, d_v]`` -> ``[B, H*d_v]`` (head-major), then ``W_O`` if given."""
    flat = o.reshape(o.shape[0], -1)
    return flat if W_O is None else flat @ W_O.to(flat.dtype).T


def decayed_la(
    features: Callable[[Tensor], StepFeatures], H: int, d_k: int, d_v: int, W_O: Tensor | None
) -> "Recurrence":
    r"""One-step form of $S_t = S_{t-1}\mathrm{diag}(\alpha_t) + v_tk_t^\top$, $y_t = W_O[S_tq_t +
    \text{skip}_t]_h$ (float64; state ``(S,)`` with ``S [B, H, d_v, d_k]``); ``features(x_t)`` gives the
    :class:`StepFeatures`."""

    def init(B: int, dtype: torch.dtype):
        return (torch.zeros(B, H, d_v, d_k, dtype=torch.promote_types(dtype, torch.float64)),)

    def step(state, x_t):
        (S,) = state
        f = features(x_t)
        if f.decay is not None:
            a = f.decay if f.decay.ndim == 3 else f.decay[..., None]
            S = S * a[:, :, None, :]
        return (S + f.v[..., :, None] * f.k[..., None, :],)

    def readout(state, x_t):
        (S,) = state
        f = features(x_t)
        o = (S @ f.q[..., None])[..., 0]
        if f.skip is not None:
            o = o + f.skip
        return _merge(o, W_O)

    return Recurrence(init, step, readout)
