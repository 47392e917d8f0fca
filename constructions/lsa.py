r"""The paper's constructions: linear self-attention as a gated linear RNN, and back.

Zucchet et al. 2023 (arXiv 2309.01775), Sec. 3 and App. A (construction of Fig. 1). Notation of
``docs/constructions.md`` and ``docs/variants/README.md``. Neurons are addressed by role and index,
never by flat offset:
:func:`direct_layout` and :func:`compressed_layout` give the names of every neuron and gate.

**Direct** (:func:`direct_weights`), per head $h$, $H\,d_k(d_v+1)$ neurons:

- key–value neuron ``kv[h, i, j]``: $\lambda=1$, input gate $(W_V x)_i (W_K x)_j$, so it holds $S_t[i,j]$;
- query neuron ``q[h, j]``: $\lambda=0$, input gate $(W_Q x)_j\cdot 1$, so it holds $q_{t,j}$;
- output gate ``g[h, i, j]`` $= S_t[i,j]\,q_{t,j}$; the readout sums over $j$ (and applies $W_O$):
  $y_t = W_O\,\mathrm{concat}_h(S^h_t q^h_t)$.

**Compressed** (:func:`compressed_weights`), $d(d+1)/2 + d$ neurons whatever $H, d_k, d_v$ (derived):
$S^h_t = W^h_V \Sigma_t W^{h\top}_K$ with the symmetric $\Sigma_t = \sum_{s\le t} x_s x_s^\top$, so

- store neuron ``s[a, b]`` ($a\le b$): $\lambda=1$, input gate $x_a x_b$, holds $\Sigma_t[a,b]$;
- input neuron ``x[c]``: $\lambda=0$, input gate $x_c\cdot 1$, holds $x_{t,c}$;
- output gate ``g[o, c]`` $= \big(\sum_{a\le b} T'_{o,ab,c}\,\Sigma_t[a,b]\big)\, x_{t,c}$ and the readout
  sums over $c$, where $T_{oabc} = \sum_h (W^h_O W^h_V)_{oa} (W^{h\top}_K W^h_Q)_{bc}$ and $T'$ folds the
  symmetric pair $(a,b),(b,a)$.

The wiring functions use only indexing, ``@``, ``*`` and ``+``, so the symbolic prover runs them
on NumPy object arrays of SymPy symbols: the proof is about this code, not a copy of it.
"""

import itertools

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .attention import LinearSelfAttention
from .rnn import GatedLinearRNN, RNNWeights

__all__ = [
    "METHODS",
    "attention_tensor",
    "compressed_layout",
    "compressed_weights",
    "direct_layout",
    "direct_weights",
    "head_product_lists",
    "head_products",
    "lsa_to_rnn",
    "num_neurons_compressed",
    "num_neurons_direct",
    "rnn_to_lsa",
]

METHODS = ("direct", "compressed", "auto")


# -- backend-neutral array helpers (torch tensors or NumPy object arrays) ----------------------
def _zeros(like, shape):
    if isinstance(like, Tensor):
        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    zeros = getattr(
        like, "backend_zeros", None
    )  # hook: an exact array backend (equivalence.symbolic.modular)
    if zeros is not None:
        return zeros(shape)
    return np.zeros(shape, dtype=object)


def _index(like, values):
    if isinstance(like, Tensor):
        return torch.as_tensor(values, dtype=torch.long, device=like.device)
    return np.asarray(values, dtype=np.int64)


def _sizes(W_Q, W_V):
    H, d_k, d = W_Q.shape
    return H, d_k, W_V.shape[1], d


def num_neurons_direct(H: int, d_k: int, d_v: int) -> int:
    """$H\\,d_k\\,(d_v+1)$ recurrent neurons (direct construction)."""
    return H * d_k * (d_v + 1)


def num_neurons_compressed(d: int) -> int:
    """$d(d+1)/2 + d$ recurrent neurons (compressed construction), independent of $H, d_k, d_v$."""
    return d * (d + 1) // 2 + d


def direct_layout(H: int, d_k: int, d_v: int) -> tuple[list[str], list[str]]:
    """Names of the neurons (``kv[h,i,j]``, ``q[h,j]``) and gates (``g[h,i,j]``) in storage order."""
    kv = [f"kv[{h},{i},{j}]" for h, i, j in itertools.product(range(H), range(d_v), range(d_k))]
    q = [f"q[{h},{j}]" for h, j in itertools.product(range(H), range(d_k))]
    gates = [f"g[{h},{i},{j}]" for h, i, j in itertools.product(range(H), range(d_v), range(d_k))]
    return kv + q, gates


def compressed_layout(d: int, d_out: int) -> tuple[list[str], list[str]]:
    """Names of the neurons (``s[a,b]`` for a<=b, ``x[c]``) and gates (``g[o,c]``) in storage order."""
    s = [f"s[{a},{b}]" for a in range(d) for b in range(a, d)]
    xs = [f"x[{c}]" for c in range(d)]
    return s + xs, [f"g[{o},{c}]" for o in range(d_out) for c in range(d)]


def head_product_lists(W_Q, W_K, W_V, W_O=None):
    r"""Per-head $P_h = W^h_O W^h_V$ (``[d_out, d]``) and $Q_h = W^{h\top}_K W^h_Q$ (``[d, d]``) as two lists
    of arrays, on any backend (torch tensors or NumPy object arrays); the stacked torch form of a layer is
    :meth:`LinearSelfAttention.head_products`."""
    H, _d_k, d_v, d = _sizes(W_Q, W_V)
    Ps, Qs = [], []
    for h in range(H):
        if W_O is None:  # concatenation: head h writes rows h*d_v..(h+1)*d_v of the output
            P = _zeros(W_V, (H * d_v, d))
            P[h * d_v : (h + 1) * d_v, :] = W_V[h]
        else:
            P = W_O[:, h * d_v : (h + 1) * d_v] @ W_V[h]
        Ps.append(P)
        Qs.append(W_K[h].T @ W_Q[h])
    return Ps, Qs


def direct_weights(W_Q, W_K, W_V, W_O=None) -> RNNWeights:
    """Template weights of the direct construction (see module docstring)."""
    H, d_k, d_v, d = _sizes(W_Q, W_V)
    n_kv = H * d_v * d_k
    n = n_kv + H * d_k
    A, B, lam = _zeros(W_Q, (n, d + 1)), _zeros(W_Q, (n, d + 1)), _zeros(W_Q, (n,))
    hs, is_, js = zip(*itertools.product(range(H), range(d_v), range(d_k)))
    kv = _index(W_Q, range(n_kv))  # kv[h,i,j] -> (h*d_v + i)*d_k + j
    A[kv, :d] = W_V[_index(W_Q, hs), _index(W_Q, is_)]
    B[kv, :d] = W_K[_index(W_Q, hs), _index(W_Q, js)]
    lam[kv] = 1
    qh, qj = zip(*itertools.product(range(H), range(d_k)))
    q = _index(W_Q, range(n_kv, n))  # q[h,j] -> n_kv + h*d_k + j
    A[q, :d] = W_Q[_index(W_Q, qh), _index(W_Q, qj)]
    B[q, d] = 1
    # output gate g[h,i,j] = kv[h,i,j] * q[h,j]; readout sums over j into output row h*d_v + i
    C, E = _zeros(W_Q, (n_kv, n)), _zeros(W_Q, (n_kv, n))
    C[kv, kv] = 1
    E[kv, _index(W_Q, [n_kv + h * d_k + j for h, j in zip(hs, js)])] = 1
    P = _zeros(W_Q, (H * d_v, n_kv))
    P[_index(W_Q, [h * d_v + i for h, i in zip(hs, is_)]), kv] = 1
    D = P if W_O is None else W_O @ P
    return RNNWeights(A, B, lam, C, E, D)


def compressed_weights(W_Q, W_K, W_V, W_O=None) -> RNNWeights:
    """Template weights of the compressed (symmetric-store) construction (see module docstring)."""
    _H, _d_k, _d_v, d = _sizes(W_Q, W_V)
    Ps, Qs = head_product_lists(W_Q, W_K, W_V, W_O)
    T = Ps[0][:, :, None, None] * Qs[0][None, None, :, :]
    for P, Q in zip(Ps[1:], Qs[1:]):
        T = T + P[:, :, None, None] * Q[None, None, :, :]  # T[o,a,b,c]
    d_out = T.shape[0]
    pairs = [(a, b) for a in range(d) for b in range(a, d)]
    n_s = len(pairs)
    a_idx = _index(W_Q, [a for a, _ in pairs])
    b_idx = _index(W_Q, [b for _, b in pairs])
    Tp = T[:, a_idx, b_idx, :] + T[:, b_idx, a_idx, :]  # [d_out, n_s, d]: both orders of the pair
    diag = _index(W_Q, [p for p, (a, b) in enumerate(pairs) if a == b])
    diag_a = _index(W_Q, list(range(d)))
    Tp[:, diag, :] = T[:, diag_a, diag_a, :]  # a == b appears once
    n = n_s + d
    A, B, lam = _zeros(W_Q, (n, d + 1)), _zeros(W_Q, (n, d + 1)), _zeros(W_Q, (n,))
    s = _index(W_Q, range(n_s))
    A[s, a_idx] = 1
    B[s, b_idx] = 1
    lam[s] = 1
    xs = _index(W_Q, range(n_s, n))
    A[xs, diag_a] = 1
    B[xs, d] = 1
    m = d_out * d
    C, E, D = _zeros(W_Q, (m, n)), _zeros(W_Q, (m, n)), _zeros(W_Q, (d_out, m))
    C[:, :n_s] = Tp.swapaxes(1, 2).reshape(m, n_s)  # gate g[o,c] = o*d + c
    gate_c = _index(W_Q, [c for _ in range(d_out) for c in range(d)])
    gate = _index(W_Q, range(m))
    E[gate, gate_c + n_s] = 1
    D[_index(W_Q, [o for o in range(d_out) for _ in range(d)]), gate] = 1
    return RNNWeights(A, B, lam, C, E, D)


def lsa_to_rnn(lsa: LinearSelfAttention, method: str = "direct") -> GatedLinearRNN:
    """Build a :class:`GatedLinearRNN` that computes exactly the same function as ``lsa``.

    ``method``: ``"direct"`` ($H d_k (d_v+1)$ neurons), ``"compressed"`` ($d(d+1)/2 + d$ neurons), or
    ``"auto"`` (whichever has fewer neurons; ties go to ``direct``).
    """
    if not isinstance(lsa, LinearSelfAttention):
        raise TypeError(f"lsa must be a LinearSelfAttention; got {type(lsa).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method == "auto":
        direct_n = num_neurons_direct(lsa.heads, lsa.d_k, lsa.d_v)
        method = "compressed" if num_neurons_compressed(lsa.d) < direct_n else "direct"
    build = direct_weights if method == "direct" else compressed_weights
    w = build(lsa.W_Q, lsa.W_K, lsa.W_V, lsa.W_O)
    return GatedLinearRNN(*w)


def attention_tensor(lsa: LinearSelfAttention) -> Float[Tensor, "d_out d d d"]:
    r"""The function-level invariant $\mathrm{Sym}_{ab} T$, $T_{oabc} = \sum_h (P_h)_{oa} (Q_h)_{bc}$.

    $y_{t,o} = \sum_{s\le t}\sum_{abc} T_{oabc}\, x_{s,a} x_{s,b} x_{t,c}$, so two LSAs compute the same
    function iff their symmetrised tensors agree: this is what can be identified from outputs.
    """
    Ps, Qs = lsa.head_products()
    T = torch.einsum("hoa,hbc->oabc", Ps, Qs)
    return (T + T.transpose(1, 2)) / 2


def _rnn_attention_parts(rnn: GatedLinearRNN, tol: float):
    """Check the structure of an RNN that implements LSA and return (memory G_p, query w_r, K[o,p,r])."""
    if rnn.lam is None:
        raise ValueError("rnn_to_lsa needs a constant lambda; this RNN has an input-dependent decay")
    if rnn.is_complex:
        raise ValueError("rnn_to_lsa needs real weights; this RNN is complex (realify conjugate pairs first)")
    A, B, lam, C, E, D = (w.detach().to(torch.float64) for w in rnn.weights())
    d = rnn.d
    # only neurons that reach the output matter (pruned neurons are ignored)
    used = (C.abs().sum(0) + E.abs().sum(0) > 0) & (A.abs().sum(1) > 0) & (B.abs().sum(1) > 0)
    mem = used & ((lam - 1).abs() <= tol)
    qry = used & (lam.abs() <= tol)
    other = used & ~mem & ~qry
    if bool(other.any()):
        bad = other.nonzero()[:, 0].tolist()
        raise ValueError(
            f"rnn_to_lsa: neurons {bad[:10]} have lambda {lam[bad[:10]].tolist()}; an RNN that implements "
            "linear self-attention uses only lambda = 1 (memory) and lambda = 0 (query) neurons"
        )
    mem_idx, q_idx = mem.nonzero()[:, 0], qry.nonzero()[:, 0]
    if bool((A[mem_idx, d].abs() > tol).any() or (B[mem_idx, d].abs() > tol).any()):
        raise ValueError(
            "rnn_to_lsa: a memory (lambda=1) neuron's input gate uses the appended constant 1, "
            "so it accumulates terms of degree < 2 in x; attention memories hold x_s x_s^T terms only"
        )
    G = A[mem_idx, :d, None] * B[mem_idx, None, :d]  # [p, a, b]
    w = torch.zeros(len(q_idx), d, dtype=torch.float64)
    for k, r in enumerate(q_idx.tolist()):
        if bool((A[r, :d].abs() <= tol).all()):
            w[k] = B[r, :d] * A[r, d]
        elif bool((B[r, :d].abs() <= tol).all()):
            w[k] = A[r, :d] * B[r, d]
        else:
            raise ValueError(
                f"rnn_to_lsa: query (lambda=0) neuron {r} multiplies two input-dependent branches; "
                "an attention query is linear in x_t (one branch must read only the constant 1)"
            )
    Cm, Em, Cq, Eq = C[:, mem_idx], E[:, mem_idx], C[:, q_idx], E[:, q_idx]
    K = torch.einsum("om,mp,mr->opr", D, Cm, Eq) + torch.einsum("om,mp,mr->opr", D, Em, Cq)
    mm = torch.einsum("om,mp,mr->opr", D, Cm, Em)
    qq = torch.einsum("om,mp,mr->opr", D, Cq, Eq)
    mm_f = torch.einsum("opr,pab,rce->oabce", mm + mm.transpose(1, 2), G, G) if len(mem_idx) else mm
    qq_f = torch.einsum("opr,ra,rb->oab", qq + qq.transpose(1, 2), w, w) if len(q_idx) else qq
    scale = max(float(K.abs().max()) if K.numel() else 0.0, 1.0)
    if mm_f.numel() and float(mm_f.abs().max()) > tol * scale:
        raise ValueError(
            "rnn_to_lsa: the output multiplies two memory neurons (degree-4 terms in x); "
            "attention multiplies a memory neuron by a query neuron only"
        )
    if qq_f.numel() and float(qq_f.abs().max()) > tol * scale:
        raise ValueError(
            "rnn_to_lsa: the output multiplies two query neurons (degree-2 terms in x_t); "
            "attention multiplies a memory neuron by a query neuron only"
        )
    return G, w, K


#: probe inputs of the final check of :func:`rnn_to_lsa` (seeded: the same RNN always gets the same verdict)
_PROBE_SEED, _PROBE_SHAPE = 20230905, (3, 7)


def _check_recovered(rnn: GatedLinearRNN, lsa: LinearSelfAttention, tol: float) -> None:
    r"""Refuse a recovered LSA that does not compute the RNN's function: on seeded probes $x$ (``[3, 7, d]``),
    $\max|y_        ext{RNN} - y_   ext{LSA}| \le   ext{tol}\cdot(\max M_   ext{RNN} + \max M_ ext{LSA})$,
    each $M$ the computation on absolute weights and inputs (float64). Both are polynomials of degree 3 in
    $x$ (Sec. 3): a wrong merge or a dropped term shows on random inputs with probability 1."""
    A, B, lam, C, E, D = (w.detach().to("cpu", torch.float64) for w in rnn.weights())
    x = torch.randn(
        *_PROBE_SHAPE, rnn.d, generator=torch.Generator().manual_seed(_PROBE_SEED), dtype=torch.float64
    )
    lsa64 = LinearSelfAttention(
        *(t.detach().to("cpu", torch.float64) for t in (lsa.W_Q, lsa.W_K, lsa.W_V, lsa.W_O))
    )
    with torch.no_grad():
        y_rnn = GatedLinearRNN(A, B, lam, C, E, D)(x, mode="loop")
        y_lsa = lsa64(x)
        m_rnn = GatedLinearRNN(A.abs(), B.abs(), lam.abs(), C.abs(), E.abs(), D.abs())(x.abs(), mode="loop")
        m_lsa = LinearSelfAttention(*(t.abs() for t in (lsa64.W_Q, lsa64.W_K, lsa64.W_V, lsa64.W_O)))(x.abs())
    err = float((y_rnn - y_lsa).abs().max()) if y_rnn.numel() else 0.0
    scale = (float(m_rnn.max()) if m_rnn.numel() else 0.0) + (float(m_lsa.max()) if m_lsa.numel() else 0.0)
    if not err <= tol * scale:
        raise ValueError(
            "rnn_to_lsa: the recovered attention does not compute this RNN's function (max |y_rnn - y_lsa| "
            "= "
            f"{err:.3e} on seeded probe inputs, above tol * scale = {tol:.1e} * {scale:.3e}); the RNN is not "
            "an "
            "LSA within tol (e.g. a readout weight that breaks a head's rank-one structure). Expected an RNN "
            "built "
            "by lsa_to_rnn, or a larger tol if its weights are known to carry rounding error"
        )


def rnn_to_lsa(rnn: GatedLinearRNN, *, tol: float = 1e-9) -> LinearSelfAttention:
    r"""Recover the linear self-attention that a gated RNN implements (reverse of :func:`lsa_to_rnn`).

    The RNN must use only $\lambda=1$ memory neurons fed $x_s$-quadratic gates and $\lambda=0$ query neurons
    fed $x_t$-linear gates, with output gates that multiply a memory by a query; otherwise ``ValueError`` says
    which neuron breaks the structure. Heads are the connected components of the memory–query graph of the
    output gating, factored by SVD into rank-one terms $P\otimes Q$; terms that share one output map $P$ (up
    to scale) form one head. The result has $d_k = d$, $d_v = d_\text{out}$ and $W_K = I$ for every head, and
    computes the same function as ``rnn``. What is identified, per head, is $P_h\otimes Q_h$ ($P_h = W^h_O
    W^h_V$, $Q_h = W^{h\top}_K W^h_Q$, up to $P\to cP, Q\to Q/c$); for the compressed construction, whose
    store is shared by all heads, only :func:`attention_tensor` is identified.

    ``tol`` (a real number in $(0, 1)$, relative to the computation on absolute values) decides the structural
    zeros, which SVD terms count and which terms share a head; the result is then *checked*: on seeded probe
    inputs it must equal the RNN within ``tol`` times the absolute computation, or ``ValueError`` says by how
    much it does not (an RNN that is close to, but not, an LSA is refused, never approximated silently).
    """
    if not isinstance(rnn, GatedLinearRNN):
        raise TypeError(f"rnn must be a GatedLinearRNN; got {type(rnn).__name__}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValueError(
            f"tol must be a real number in (0, 1) (relative to the absolute computation); got {tol!r}"
        )
    tol = float(tol)
    G, w, K = _rnn_attention_parts(rnn, tol)
    d, d_out = rnn.d, rnn.d_out
    strength = K.abs().amax(0)  # [p, r]
    cutoff = tol * max(float(strength.max()) if strength.numel() else 0.0, 1.0)
    adj = strength > cutoff
    P_mem, R_q = adj.shape
    # connected components of the bipartite memory-query graph (union-find over p and P_mem + r)
    parent = list(range(P_mem + R_q))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p, r in adj.nonzero().tolist():
        parent[find(p)] = find(P_mem + r)
    comps: dict[int, tuple[list[int], list[int]]] = {}
    for p, r in adj.nonzero().tolist():
        ps, rs = comps.setdefault(find(p), ([], []))
        if p not in ps:
            ps.append(p)
        if r not in rs:
            rs.append(r)
    # rank-one terms u (x) q of each component's tensor, matricised as [(o, a), (b, c)]
    terms: list[tuple[Tensor, Tensor]] = []
    for ps, rs in comps.values():
        pi, ri = torch.tensor(ps), torch.tensor(rs)
        T = torch.einsum("opr,pab,rc->oabc", K[:, pi][:, :, ri], G[pi], w[ri])
        U, S, Vh = torch.linalg.svd(T.reshape(d_out * d, d * d), full_matrices=False)
        for k in range(int((S > tol * max(float(S[0]), 1e-300)).sum())):
            terms.append((U[:, k], S[k] * Vh[k]))
    # a head is a group of terms sharing one output map P (parallel u): e.g. the direct
    # construction's components q[h, j] for j = 1..d_k all share P_h = W_O^h W_V^h. A merge of terms that are
    # only nearly parallel would change the function: the check below catches it, and then every term is a
    # head.
    try:
        lsa = _heads_lsa(_group_terms(terms, tol), d, d_out)
        _check_recovered(rnn, lsa, tol)
    except ValueError:
        lsa = _heads_lsa([(u, q) for u, q in terms], d, d_out)
        _check_recovered(rnn, lsa, tol)
    return LinearSelfAttention(
        *(t.to(dtype=rnn.A.dtype, device=rnn.A.device) for t in (lsa.W_Q, lsa.W_K, lsa.W_V, lsa.W_O))
    )


def _group_terms(terms: list[tuple[Tensor, Tensor]], tol: float) -> list[tuple[Tensor, Tensor]]:
    r"""Sum the rank-one terms whose output maps $u$ are parallel within ``tol`` (unit vectors:
    $||c| - 1| \le$ tol)."""
    groups: list[tuple[Tensor, Tensor]] = []
    for u, q in terms:
        for g, (u0, q0) in enumerate(groups):
            c = float(u0 @ u)
            if abs(abs(c) - 1.0) <= tol:
                groups[g] = (u0, q0 + (1.0 if c > 0 else -1.0) * q)
                break
        else:
            groups.append((u, q))
    return groups


def _heads_lsa(groups: list[tuple[Tensor, Tensor]], d: int, d_out: int) -> LinearSelfAttention:
    r"""One head per group $u \otimes q$: $W_V = \sqrt{|q|}\,u$, $W_Q = q/\sqrt{|q|}$, $W_K = I$, $W_O$ the
    concatenation."""
    Ps, Qs = [], []
    for u, q in groups:
        root = q.norm().sqrt()
        Ps.append((root * u).reshape(d_out, d))
        Qs.append((q / root).reshape(d, d))
    if not Ps:  # the zero function
        Ps, Qs = [torch.zeros(d_out, d, dtype=torch.float64)], [torch.zeros(d, d, dtype=torch.float64)]
    H = len(Ps)
    W_V = torch.stack(Ps)  # [H, d_out, d]
    W_Q = torch.stack(Qs)  # [H, d, d]
    W_K = torch.eye(d, dtype=torch.float64).expand(H, d, d).clone()
    W_O = torch.eye(d_out, dtype=torch.float64).repeat(1, H)
    return LinearSelfAttention(W_Q, W_K, W_V, W_O)


#: alias of :func:`head_product_lists`
head_products = head_product_lists
