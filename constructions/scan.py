r"""Scans for the diagonal linear recurrence $h_t = \lambda_t \odot h_{t-1} + u_t$.

Zucchet et al. 2023, Sec. 3 (the linear recurrent layer of the gated RNN): the recurrence is
element-wise, so it is a first-order linear scan with the associative operator

$$ (a_2, b_2) \circ (a_1, b_1) = (a_2 a_1,\; a_2 b_1 + b_2),
   \qquad h_t = b_{1:t} \text{ of } (\lambda_t, u_t)_{t}. $$

Three paths, naive beside fast:

- :func:`scan_loop` — the step loop, the reference (and the streaming path);
- :func:`scan_parallel` — Hillis–Steele inclusive scan in $\lceil\log_2 T\rceil$ vectorised steps
  ($O(T\log T)$ work: kept as a second, independent reference);
- :func:`scan_chunked` — the fast path (derived): a two-level blocked scan with $O(T)$ work. Time is cut
  into blocks of $\ell$ steps; a sequential pass over the $\ell$ positions runs *all blocks at once*
  (local states $\hat h$ with zero carry-in), a pass over the $K=\lceil T/\ell\rceil$ blocks passes the
  carries, and one vectorised fix-up adds them:

  $$ h_{k\ell+j} = \hat h_{k\ell+j} + P_{k,j}\, c_k,\qquad P_{k,j}=\prod_{i\le j}\lambda_{k\ell+i},\qquad
     c_{k+1} = P_{k,\ell-1}\,c_k + \hat h_{k\ell+\ell-1}. $$

  $2\sqrt T$ Python steps instead of $T$, each on a $\sqrt T$-times larger tensor.

No path divides (no $\prod\lambda$ ratios, no logs), so $\lambda = 0$ and complex $\lambda$ are exact
cases, not hazards. When every $\lambda\in\{0,1\}$ (the constructions' neurons) the fast path is a
masked cumulative sum that adds in the loop's order (in float64 it equals the loop bit for bit; torch
accumulates float32 sums in float64 on CPU, which is at least as accurate).

$\lambda$ is either constant per neuron (``[n]``, the paper's case) or input dependent
(``[B, T, n]``: the input-dependent decay extension, ``docs/variants/data-dependent-decay.md``).

Long sequences are evaluated in *super-chunks* of time (:func:`super_chunk`): the fast paths hold a few
chunk-sized buffers plus the output, never a ``[B, T, n]`` state tensor.
"""

import math

import torch
from jaxtyping import Inexact
from torch import Tensor

__all__ = ["scan_loop", "scan_parallel", "scan_chunked", "scan", "MODES", "super_chunk", "CHUNK_BYTES"]

MODES = ("loop", "parallel", "auto")

#: target size (bytes) of one ``[B, chunk, width]`` working buffer of a super-chunk; a few of them live at
#: once
CHUNK_BYTES = 1 << 21


def super_chunk(
    batch: int, width: int, itemsize: int, T: int, multiple: int = 1, budget: int | None = None
) -> int:
    """Time steps per super-chunk so that a ``[batch, chunk, width]`` buffer is about ``budget`` bytes
    (default :data:`CHUNK_BYTES`; at least 64 steps, a multiple of ``multiple``, at most ``T`` when
    ``multiple`` is 1)."""
    steps = max(64, (budget or CHUNK_BYTES) // max(1, batch * width * itemsize))
    steps = max(multiple, steps // multiple * multiple)
    return max(1, min(T, steps)) if multiple == 1 else steps


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
    if lam.ndim == 1 and not _grad_needed(lam) and bool(((lam == 0) | (lam == 1)).all()):
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


def _promote(lam: Tensor, u: Tensor, h0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    dtype = torch.promote_types(torch.promote_types(lam.dtype, u.dtype), h0.dtype)
    return lam.to(dtype), u.to(dtype), h0.to(dtype)


def _zero_one(lam: Tensor) -> bool:
    """Whether a constant ``lam`` has only the entries 0 and 1 (the constructions' memory and query
    neurons)."""
    return lam.ndim == 1 and bool(((lam == 0) | (lam == 1)).all())


def _grad_needed(*ts: Tensor | None) -> bool:
    """Whether autograd records an operation on ``ts`` (``None`` entries are skipped)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)


def block_size(T: int) -> int:
    r"""Block length $\ell\approx\sqrt T$ of :func:`scan_chunked` (minimises the $\ell + T/\ell$ sequential
    steps)."""
    return max(1, round(math.sqrt(T)))


def scan_chunked(
    lam: Inexact[Tensor, "*lam_shape"],
    u: Inexact[Tensor, "batch time n"],
    h0: Inexact[Tensor, "batch n"],
    *,
    block: int | None = None,
) -> tuple[Inexact[Tensor, "batch time n"], Inexact[Tensor, "batch n"]]:
    r"""Two-level blocked scan (module docstring): $O(T)$ work, $\ell + \lceil T/\ell\rceil$ sequential steps,
    no division. ``block`` is $\ell$ (default :func:`block_size`). $\lambda\in\{0,1\}$ everywhere: the masked
    cumulative sum, which adds in the loop's order (bit-identical to :func:`scan_loop` in float64).

    Differentiable (plain out-of-place ops when autograd records); in-place fix-ups otherwise.
    """
    lam, u, h0 = _promote(lam, u, h0)
    B, T, n = u.shape
    if T == 0:
        return u.new_zeros(u.shape), h0
    varying = lam.ndim != 1
    lam0 = lam if not varying else lam[:, 0]
    # fold the initial state into the first drive: h_1 = lam_1 h_0 + u_1 (the loop's first step, same
    # rounding)
    b = torch.cat([(lam0 * h0 + u[:, 0])[:, None], u[:, 1:]], dim=1)
    if not varying and not _grad_needed(lam) and _zero_one(lam):  # (no gradient w.r.t. lambda through it)
        keep = lam == 1
        h = torch.cumsum(b, dim=1) if bool(keep.all()) else torch.where(keep, torch.cumsum(b, dim=1), b)
        return h, h[:, -1]
    ell = block_size(T) if block is None else int(block)
    if ell < 1:
        raise ValueError(f"block must be a positive number of time steps; got {block!r}")
    K = -(-T // ell)
    pad = K * ell - T
    if pad:  # padded steps come after the last real one: they never reach a returned state
        b = torch.cat([b, b.new_zeros(B, pad, n)], dim=1)
    b = b.reshape(B, K, ell, n)
    if varying:
        a = lam if not pad else torch.cat([lam, lam.new_ones(B, pad, n)], dim=1)
        a = a.reshape(B, K, ell, n)
        P = torch.cumprod(a, dim=2)  # prod_{i<=j} lambda within each block: [B, K, ell, n]
        G = P[:, :, -1]  # whole-block decay [B, K, n]
    else:
        P = torch.cumprod(lam.expand(ell, n), dim=0)  # lambda^(j+1): [ell, n]
        G = P[-1].expand(B, K, n)
    # 1) local states of every block at once (carry-in 0), sequential over the ell positions
    loc = [b[:, :, 0]]
    for j in range(1, ell):
        aj = a[:, :, j] if varying else lam
        loc.append(torch.addcmul(b[:, :, j], aj, loc[-1]))
    local = torch.stack(loc, dim=2)  # [B, K, ell, n]
    # 2) carries into each block, sequential over the K blocks: c_0 = 0 (h_0 already folded in)
    carries = [b.new_zeros(B, n)]
    for k in range(1, K):
        carries.append(torch.addcmul(local[:, k - 1, -1], G[:, k - 1], carries[-1]))
    c = torch.stack(carries, dim=1)[:, :, None]  # [B, K, 1, n]
    # 3) fix-up: h = local + P * c
    if _grad_needed(lam, u, h0):
        h = torch.addcmul(local, P, c)
    else:
        h = local.addcmul_(P, c)
    h = h.reshape(B, K * ell, n)[:, :T]
    return h, h[:, -1]


def scan(
    lam: Inexact[Tensor, "*lam_shape"],
    u: Inexact[Tensor, "batch time n"],
    h0: Inexact[Tensor, "batch n"],
    mode: str = "auto",
) -> tuple[Inexact[Tensor, "batch time n"], Inexact[Tensor, "batch n"]]:
    """Dispatch: ``"loop"`` (:func:`scan_loop`), ``"parallel"`` (:func:`scan_chunked`) or ``"auto"``
    (parallel unless ``T <= 2``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'loop', 'parallel' or 'auto'; got {mode!r}")
    if mode == "loop" or (mode == "auto" and u.shape[1] <= 2):
        return scan_loop(lam, u, h0)
    return scan_chunked(lam, u, h0)
