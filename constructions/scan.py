r"""Scans for the diagonal linear recurrence $h_t = \lambda_t \odot h_{t-1} + u_t$.

Zucchet et al. 2023, Sec. 3 (the linear recurrent layer of the gated RNN): the recurrence is
element-wise, so it is a first-order linear scan with the associative operator

$$ (a_2, b_2) \circ (a_1, b_1) = (a_2 a_1,\; a_2 b_1 + b_2), \qquad h_t = b_{1:t} \text{ of } (\lambda_t, u_t)_{t}. $$

Two paths, naive beside fast:

- :func:`scan_loop` — the step loop, the reference (and the streaming path);
- :func:`scan_parallel` — Hillis–Steele inclusive scan in $\lceil\log_2 T\rceil$ vectorised steps.
  It never divides (no $\prod\lambda$ ratios, no logs), so $\lambda = 0$ and complex $\lambda$
  are exact cases, not hazards.

$\lambda$ is either constant per neuron (``[n]``, the paper's case) or input dependent
(``[B, T, n]``, extension E1 of ``docs/variants.md``).
"""

import torch
from jaxtyping import Inexact
from torch import Tensor

__all__ = ["scan_loop", "scan_parallel", "scan"]


def _lam_at(lam: Tensor, t: int) -> Tensor:
    return lam if lam.ndim == 1 else lam[:, t]


def scan_loop(
    lam: Inexact[Tensor, "*lam_shape"],
    u: Inexact[Tensor, "batch time n"],
    h0: Inexact[Tensor, "batch n"],
) -> tuple[Inexact[Tensor, "batch time n"], Inexact[Tensor, "batch n"]]:
    """Reference step loop. Returns all states ``h_1..h_T`` and the last state."""
    h = h0
    states = []
    for t in range(u.shape[1]):
        h = _lam_at(lam, t) * h + u[:, t]
        states.append(h)
    if not states:
        return u.new_zeros(u.shape), h0
    return torch.stack(states, dim=1), h


def scan_parallel(
    lam: Inexact[Tensor, "*lam_shape"],
    u: Inexact[Tensor, "batch time n"],
    h0: Inexact[Tensor, "batch n"],
) -> tuple[Inexact[Tensor, "batch time n"], Inexact[Tensor, "batch n"]]:
    """Hillis–Steele inclusive scan of the affine maps ``h -> lam_t * h + u_t`` (exact, no division)."""
    B, T, n = u.shape
    if T == 0:
        return u.new_zeros(u.shape), h0
    a = lam.expand(B, T, n) if lam.ndim == 1 else lam
    b = u.clone()
    b[:, 0] = b[:, 0] + a[:, 0] * h0  # fold the initial state into the first element
    if lam.ndim == 1 and bool(((lam == 0) | (lam == 1)).all()):
        # lambda in {0, 1} (the construction's neurons): a masked cumulative sum is the exact scan
        keep = lam == 1
        if bool(keep.all()):
            h = torch.cumsum(b, dim=1)
        else:
            h = torch.where(keep, torch.cumsum(b, dim=1), b)
        return h, h[:, -1]
    a = a.clone()
    offset = 1
    while offset < T:
        b_new = b.clone()
        b_new[:, offset:] = a[:, offset:] * b[:, :-offset] + b[:, offset:]
        if offset * 2 < T:  # the carried products are only needed by later rounds
            a_new = a.clone()
            a_new[:, offset:] = a[:, offset:] * a[:, :-offset]
            a = a_new
        b = b_new
        offset *= 2
    return b, b[:, -1]


def scan(
    lam: Inexact[Tensor, "*lam_shape"],
    u: Inexact[Tensor, "batch time n"],
    h0: Inexact[Tensor, "batch n"],
    mode: str = "auto",
) -> tuple[Inexact[Tensor, "batch time n"], Inexact[Tensor, "batch n"]]:
    """Dispatch: ``"loop"``, ``"parallel"`` or ``"auto"`` (parallel unless ``T <= 2``)."""
    if mode == "loop" or (mode == "auto" and u.shape[1] <= 2):
        return scan_loop(lam, u, h0)
    if mode in ("parallel", "auto"):
        return scan_parallel(lam, u, h0)
    raise ValueError(f"mode must be 'loop', 'parallel' or 'auto'; got {mode!r}")
