r"""Backend-neutral wiring shared by the variants (torch tensors or NumPy object arrays of SymPy symbols).

Everything here is built from the two constructions of :mod:`constructions.lsa` (one source of truth for
the wiring) plus indexing, ``*`` and ``+``, so the symbolic prover can call it on object arrays:

- :func:`affine_direct_weights` — the direct construction for *affine* projections
  $q = W_Q\tilde z$, $k = W_K\tilde z$, $v = W_V\tilde z$ (``[H, r, d+1]``, last column = bias): the paper's
  constant 1 in $\tilde z$ carries the biases (HGRN2's key $1-\alpha_t$ needs it);
- :func:`direct_kv_lam` — $\lambda$ of the direct layout when key-value neuron ``kv[h,i,j]`` decays by
  ``kv_decay[h, j]`` (RetNet: $\gamma_h$; complex RetNet: $\gamma_h e^{i\theta_{h,j}}$) and queries by 0;
- :func:`direct_channels` — for an input-dependent decay, which decay channel each neuron reads:
  one per head (simple GLA, Mamba-2) or one per (head, key) (GLA, HGRN2);
- :func:`grouped_compressed_weights` — the compressed construction with one symmetric store per *group*
  of heads that share a decay (derived: valid iff every store neuron of a group has the same decay).

Neuron order of the direct layout (``constructions.lsa.direct_layout``): ``kv[h,i,j]`` at
$(h d_v + i) d_k + j$, then ``q[h,j]`` at $H d_v d_k + h d_k + j$.
"""

import itertools

import numpy as np
import torch
from torch import Tensor

from ..lsa import _index as _index_array, _zeros, compressed_weights, direct_weights
from ..rnn import RNNWeights

__all__ = [
    "affine_direct_weights",
    "direct_kv_lam",
    "direct_channels",
    "grouped_compressed_weights",
]


def _index(like, values):
    return _index_array(like, list(values))


def _cat(parts, axis):
    if isinstance(parts[0], Tensor):
        return torch.cat(parts, dim=axis)
    return np.concatenate(parts, axis=axis)


def _copy(a):
    return a.clone() if isinstance(a, Tensor) else a.copy()


def affine_direct_weights(W_Q, W_K, W_V, W_O=None) -> RNNWeights:
    r"""Direct construction for affine maps ``W_* [H, r, d+1]`` of $\tilde z = [z; 1]$ (last column: bias).

    Built by calling :func:`constructions.lsa.direct_weights` on the $(d+1)$-dimensional input $\tilde z$
    and merging its two constant columns (the bias column and the construction's own appended 1)."""
    w = direct_weights(W_Q, W_K, W_V, W_O)

    def merge(M):
        out = _copy(M[:, :-1])
        out[:, -1] = M[:, -2] + M[:, -1]
        return out

    return RNNWeights(merge(w.A), merge(w.B), w.lam, w.C, w.E, w.D)


def direct_kv_lam(kv_decay, d_v: int):
    r"""$\lambda$ ``[n]`` of the direct layout: ``kv[h,i,j]`` gets ``kv_decay[h, j]`` (``[H, d_k]``),
    ``q[h,j]`` gets 0."""
    H, d_k = kv_decay.shape
    n_kv = H * d_v * d_k
    lam = _zeros(kv_decay, (n_kv + H * d_k,))
    hs, _, js = zip(*itertools.product(range(H), range(d_v), range(d_k)))
    lam[_index(kv_decay, range(n_kv))] = kv_decay[_index(kv_decay, hs), _index(kv_decay, js)]
    return lam


def direct_channels(H: int, d_k: int, d_v: int, per_key: bool) -> tuple[Tensor, Tensor]:
    """``(channel [n], constant [n])`` of the direct layout for an input-dependent decay: ``kv[h,i,j]`` reads
    channel ``h`` (scalar per head) or ``h*d_k + j`` (per key); query neurons read none (``-1``, constant
    0)."""
    chans = [h * d_k + j if per_key else h for h, _, j in itertools.product(range(H), range(d_v), range(d_k))]
    chans += [-1] * (H * d_k)
    channel = torch.tensor(chans, dtype=torch.long)
    return channel, torch.zeros(len(chans), dtype=torch.float64)


def _head_output_map(W_V, W_O, heads: list[int]):
    """``W_O`` restricted to the columns of ``heads`` (a selection matrix when ``W_O`` is ``None``)."""
    H, d_v = W_V.shape[0], W_V.shape[1]
    cols = _index(W_V, [h * d_v + i for h in heads for i in range(d_v)])
    if W_O is not None:
        return W_O[:, cols]
    sel = _zeros(W_V, (H * d_v, len(heads) * d_v))
    sel[cols, _index(W_V, range(len(heads) * d_v))] = 1
    return sel


def grouped_compressed_weights(W_Q, W_K, W_V, W_O, groups: list[list[int]]) -> tuple[RNNWeights, list[int]]:
    r"""Compressed construction with one store $\Sigma^g_t = \sum_s (\prod\text{decay}_g)\, z_s z_s^\top$ per
    group ``g`` of heads (derived). Returns the weights and, per neuron, its group (``-1``: input neuron
    ``x[c]``).

    Each group is :func:`constructions.lsa.compressed_weights` of its heads; the groups' input neurons
    ``x[c]`` are identical and shared, and so are the output gates ``g[o,c]`` (their $E$ rows all select
    ``x[c]``), whose $C$ rows concatenate the groups' folded tensors: $d_\text{out} d$ gates in all."""
    if not groups or any(not g for g in groups):
        raise ValueError(f"groups must be a non-empty list of non-empty head lists; got {groups}")
    parts = []
    for heads in groups:
        idx = _index(W_Q, heads)
        parts.append(compressed_weights(W_Q[idx], W_K[idx], W_V[idx], _head_output_map(W_V, W_O, heads)))
    d = W_Q.shape[2]
    n_s = d * (d + 1) // 2
    A = _cat([p.A[:n_s] for p in parts] + [parts[0].A[n_s:]], 0)
    B = _cat([p.B[:n_s] for p in parts] + [parts[0].B[n_s:]], 0)
    m = parts[0].C.shape[0]
    C = _cat([p.C[:, :n_s] for p in parts] + [_zeros(W_Q, (m, d))], 1)
    E = _cat([_zeros(W_Q, (m, n_s)) for _ in parts] + [parts[0].E[:, n_s:]], 1)
    lam = _cat([p.lam[:n_s] for p in parts] + [parts[0].lam[n_s:]], 0)
    group_of = [g for g in range(len(groups)) for _ in range(n_s)] + [-1] * d
    return RNNWeights(A, B, lam, C, E, parts[0].D), group_of
