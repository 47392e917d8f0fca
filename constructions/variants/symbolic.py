r"""Symbolic hooks of the variants: the same wiring code on NumPy object arrays (SymPy symbols), and
references written with ``@``, ``*``, ``+`` and indexing, for the prover (``equivalence/symbolic``).

Convention (the prover's, ``equivalence/symbolic/subjects.py``): ``symbolic_weights(*arrays)`` and
``symbolic_reference(*arrays, x)`` receive one object array (or ``None``) per *tensor* field of the params
dataclass, in declaration order; ``x`` is ``[T, d]``. Non-tensor fields (``normalizer``, ``normalize``) are
not passed, so:

- an **input-dependent decay** is returned as a callable ``lam(x_t) -> [n]`` whose decay is an
  *uninterpreted* SymPy function $\ell$ of the gate logit, $\lambda_t = \ell(w\cdot\tilde x_t)$, and the
  reference applies the same $\ell$: the identity proved then holds for *every* link $\ell$
  (``exp(logsigmoid(.)/tau)``
  for any $\tau$ included);
- the DeltaNet control's hooks describe the delta rule on the given $q, k$ (``normalize=False``); the
  numeric control uses normalised keys; both are refutations of the same recurrence.

Variants with an upstream feature layer (non-polynomial per-step features) or complex weights have no
symbolic hooks; their claims are numeric.
"""

import numpy as np
import sympy as sp

from ..rnn import RNNWeights
from .wiring import affine_direct_weights, direct_kv_lam, grouped_compressed_weights

__all__ = [
    "affine_np",
    "decayed_la",
    "ELL",
    "gate_logits",
    "retention_weights",
    "retention_reference",
    "gated_weights",
    "gated_compressed_weights",
    "gated_reference",
    "softmax_reference",
    "delta_weights",
    "delta_reference",
]

#: the uninterpreted decay link of the input-dependent-decay variants: lambda_t = ELL(logit)
ELL = sp.Function("ell")


def affine_np(W):
    """``[H, r, d] -> [H, r, d+1]`` with a zero bias column (object arrays)."""
    return np.concatenate([W, np.zeros((*W.shape[:-1], 1), dtype=object)], axis=-1)


def _heads(x, W):
    """Per-head projections ``[H, T, r]`` of ``x [T, d]`` (object arrays)."""
    return np.stack([x @ W[h].T for h in range(W.shape[0])])


def _merge(o, W_O):
    """``o [H, T, d_v]`` -> ``[T, H*d_v]`` (head-major), then ``W_O``."""
    H, T, dv = o.shape
    y = np.concatenate([o[h] for h in range(H)], axis=-1)
    return y if W_O is None else y @ W_O.T


def decayed_la(q, k, v, decay):
    r"""$S_t = S_{t-1}\mathrm{diag}(\alpha_t) + v_tk_t^\top$, $o_t = S_tq_t$ on object arrays:
    ``q, k [H, T, d_k]``,
    ``v [H, T, d_v]``, ``decay(h, t) -> [d_k]`` (or ``None``: no decay)."""
    H, T, d_k = q.shape
    out = np.zeros((H, T, v.shape[2]), dtype=object)
    for h in range(H):
        S = np.zeros((v.shape[2], d_k), dtype=object)
        for t in range(T):
            if decay is not None:
                S = S * decay(h, t)[None, :]
            S = S + np.outer(v[h, t], k[h, t])
            out[h, t] = S @ q[h, t]
    return out


def gate_logits(W, xt):
    """Logits ``W[..., :d] @ x_t + W[..., d]`` (object arrays)."""
    return W[..., :-1] @ xt + W[..., -1]


# -- retention (real, constant gamma) ----------------------------------------------------------------
def retention_weights(W_Q, W_K, W_V, gamma, W_O=None, theta=None) -> RNNWeights:
    if theta is not None:
        raise ValueError("retention-complex has complex weights; the symbolic tiers take real ones")
    w = affine_direct_weights(affine_np(W_Q), affine_np(W_K), affine_np(W_V), W_O)
    kv = np.empty((W_Q.shape[0], W_Q.shape[1]), dtype=object)
    for h in range(W_Q.shape[0]):
        kv[h, :] = gamma[h]
    return RNNWeights(w.A, w.B, direct_kv_lam(kv, W_V.shape[1]), w.C, w.E, w.D)


def retention_reference(W_Q, W_K, W_V, gamma, W_O, theta, x):
    q, k, v = _heads(x, W_Q), _heads(x, W_K), _heads(x, W_V)
    return _merge(decayed_la(q, k, v, lambda h, t: np.full(q.shape[2], gamma[h], dtype=object)), W_O)


# -- input-dependent decay: simple GLA (channel per head) and GLA (channel per key) -------------------------
def gated_weights(W_Q, W_K, W_V, W_gate, W_O=None) -> RNNWeights:
    r"""Direct construction with ``lam`` a callable of the symbolic input: ``kv[h,i,j]`` decays by
    $\ell(\text{logit}_{h})$ (``W_gate [H, d+1]``) or $\ell(\text{logit}_{h,j})$
    (``W_gate [H, d_k, d+1]``)."""
    w = affine_direct_weights(affine_np(W_Q), affine_np(W_K), affine_np(W_V), W_O)
    H, d_k, _ = W_Q.shape
    d_v = W_V.shape[1]

    def lam(xt):
        g = gate_logits(W_gate, xt)
        kv = np.empty((H, d_k), dtype=object)
        for h in range(H):
            for j in range(d_k):
                kv[h, j] = ELL(g[h] if g.ndim == 1 else g[h, j])
        return direct_kv_lam(kv, d_v)

    return RNNWeights(w.A, w.B, lam, w.C, w.E, w.D)


def gated_compressed_weights(W_Q, W_K, W_V, W_gate, W_O=None) -> RNNWeights:
    r"""Compressed construction with one store per head (``W_gate [H, d+1]``), store ``s[h,a,b]`` decaying by
    $\ell(\text{logit}_h)$, input neurons ``x[c]`` at 0 (``wiring.grouped_compressed_weights``)."""
    H = W_Q.shape[0]
    w, group_of = grouped_compressed_weights(W_Q, W_K, W_V, W_O, [[h] for h in range(H)])

    def lam(xt):
        g = gate_logits(W_gate, xt)
        return np.array([ELL(g[grp]) if grp >= 0 else 0 for grp in group_of], dtype=object)

    return RNNWeights(w.A, w.B, lam, w.C, w.E, w.D)


def gated_reference(W_Q, W_K, W_V, W_gate, W_O, x):
    q, k, v = _heads(x, W_Q), _heads(x, W_K), _heads(x, W_V)
    d_k = q.shape[2]

    def decay(h, t):
        g = gate_logits(W_gate, x[t])
        return np.array([ELL(g[h] if g.ndim == 1 else g[h, j]) for j in range(d_k)], dtype=object)

    return _merge(decayed_la(q, k, v, decay), W_O)


# -- negative controls -------------------------------------------------------------------------------
def softmax_reference(W_Q, W_K, W_V, W_O, x):
    r"""Causal softmax attention with SymPy ``exp``: $o_t = \sum_s e^{q_t\cdot k_s}v_s / \sum_s e^{q_t\cdot
    k_s}$."""
    q, k, v = _heads(x, W_Q), _heads(x, W_K), _heads(x, W_V)
    H, T, _ = q.shape
    out = np.zeros((H, T, v.shape[2]), dtype=object)
    for h in range(H):
        for t in range(T):
            w = [sp.exp(q[h, t] @ k[h, s]) for s in range(t + 1)]
            Z = sum(w)
            out[h, t] = sum((w[s] * v[h, s] for s in range(t + 1)), np.zeros(v.shape[2], dtype=object)) / Z
    return _merge(out, W_O)


def delta_weights(W_Q, W_K, W_V, beta, W_O=None) -> RNNWeights:
    """The tried construction for the delta rule: LSA with values ``beta_h W_V`` (no correction term)."""
    W_Vb = np.stack([beta[h] * W_V[h] for h in range(W_V.shape[0])])
    return affine_direct_weights(affine_np(W_Q), affine_np(W_K), affine_np(W_Vb), W_O)


def delta_reference(W_Q, W_K, W_V, beta, W_O, x):
    r"""Delta rule $S_t = S_{t-1}(I - \beta kk^\top) + \beta vk^\top$ on the given (unnormalised) $q, k$."""
    q, k, v = _heads(x, W_Q), _heads(x, W_K), _heads(x, W_V)
    H, T, d_k = q.shape
    out = np.zeros((H, T, v.shape[2]), dtype=object)
    for h in range(H):
        S = np.zeros((v.shape[2], d_k), dtype=object)
        for t in range(T):
            u = beta[h] * (v[h, t] - S @ k[h, t])
            S = S + np.outer(u, k[h, t])
            out[h, t] = S @ q[h, t]
    return _merge(out, W_O)
