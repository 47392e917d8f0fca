r"""Structure-aware evaluation of gated linear RNNs (the fast path beside the dense template).

The template of Zucchet et al. 2023 (Sec. 3) is dense,

$$ u_t = (A\tilde x_t)\odot(B\tilde x_t),\quad h_t=\lambda\odot h_{t-1}+u_t,
   \quad y_t = D\big[(Ch_t)\odot(Eh_t)\big], $$

but the constructions of App. A fill it with *one-hot rows and repeated blocks*: in the direct
construction row ``kv[h,i,j]`` of $A$ is $W_V^h[i]$ for every $j$ (so $A$ has $H d_v + H d_k$ distinct rows
out of $H d_k (d_v+1)$), every row of $C$ and $E$ has a single 1, and $D$'s columns repeat over $j$. This
module detects that structure *from the dense weights*, exactly (equality of floats, no tolerance), and
evaluates the same function with fewer operations (derived):

- $A = A_u[\iota_A]$, $B = B_u[\iota_B]$ (distinct rows and an index): $u = (A_u\tilde
  x)[\iota_A]\odot(B_u\tilde x)[\iota_B]$;
- a one-hot row $g$ of $C$ is a scaled gather $(Ch)_g = c_g\,h_{\pi(g)}$ (likewise $E$);
- $D = D_u[:,\gamma]$ (repeated columns): $Dz = D_u \big(\sum_{g:\gamma(g)=k} z_g\big)_k$;
- gates whose $D$ column, $C$ row or $E$ row is zero are dropped (they contribute exact zeros).

All of these are re-associations of the same sums of products. The tolerance model's path-length count
(``rnn_path_length``, :mod:`constructions.tolerance`) is the one of the dense template; the fast path adds its
own roundings (``docs/tolerance.md``), which ``tests/test_structured.py`` adds to the count. When the output
gates pair memory neurons with instantaneous ($\lambda=0$) ones, :mod:`.structured_attention` goes further
(chunked matmul form). The dense template stays the model for training and the naive reference; which path a
call takes is decided in :mod:`constructions.evaluator` (``path=``).

Time is processed in super-chunks (:func:`~constructions.scan.super_chunk`), so the peak memory is a few
chunk-sized buffers plus the output, never a ``[B, T, n]`` state tensor.
"""

import dataclasses
from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Inexact
from torch import Tensor

from .factored_decay import FactoredDecay
from .scan import _grad_needed, scan_chunked, scan_loop, super_chunk
from .structured_attention import AttentionHeads, detect_heads

__all__ = ["RowDedup", "OneHotRows", "StructuredRNN", "FactoredDecay", "detect_structure"]


@dataclass(frozen=True)
class RowDedup:
    """``W = unique[index]``: the distinct rows of ``W`` and, for each row, which one it is."""

    unique: Tensor  # [r, c]
    index: Tensor  # [rows] long

    @property
    def saving(self) -> bool:
        return self.unique.shape[0] < self.index.shape[0]


@dataclass(frozen=True)
class OneHotRows:
    """``(W h)_g = coef_g * h[index_g]``: every row of ``W`` has at most one nonzero (``coef`` is ``None``
    when all are 1)."""

    index: Tensor  # [rows] long
    coef: Tensor | None  # [rows]
    start: int | None  # index == arange(start, start + rows): a slice, no copy (None otherwise)

    def apply(self, h: Tensor) -> Tensor:
        if self.start is not None:
            g = h[..., self.start : self.start + self.index.shape[0]]
        else:
            g = h.index_select(-1, self.index)
        return g if self.coef is None else g * self.coef


def _np(W: Tensor) -> np.ndarray:
    a = np.ascontiguousarray(W.detach().cpu().numpy())
    return a.view(a.real.dtype).reshape(a.shape[0], -1) if np.iscomplexobj(a) else a


def dedup_rows(W: Tensor) -> RowDedup:
    """Exact distinct rows of ``W`` (``-0.0 == 0.0``; no tolerance), in order of first appearance."""
    if W.shape[0] == 0:
        return RowDedup(W, torch.zeros(0, dtype=torch.long, device=W.device))
    _, first, inverse = np.unique(_np(W), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # renumber by first appearance (stable, readable plans)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    index = torch.as_tensor(rank[inverse.reshape(-1)], dtype=torch.long, device=W.device)
    return RowDedup(W[torch.as_tensor(first[order], dtype=torch.long, device=W.device)], index)


def one_hot_rows(W: Tensor) -> OneHotRows | None:
    """``OneHotRows`` if every row of ``W`` has at most one nonzero entry, else ``None``.
    Zero rows get coefficient 0 (and index 0)."""
    a = W.detach().cpu().numpy()
    nz = a != 0
    if a.shape[0] and int(nz.sum(1).max()) > 1:
        return None
    index = nz.argmax(1) if a.shape[1] else np.zeros(a.shape[0], dtype=np.int64)
    coef = a[np.arange(a.shape[0]), index] if a.shape[1] else np.zeros(a.shape[0], dtype=a.dtype)
    ones = bool((coef == 1).all())
    contiguous = a.shape[0] > 0 and ones and bool((index == np.arange(a.shape[0]) + index[0]).all())
    tindex = torch.as_tensor(index, dtype=torch.long, device=W.device)
    tcoef = None if ones else W.gather(1, tindex[:, None])[:, 0].contiguous()
    return OneHotRows(tindex, tcoef, int(index[0]) if contiguous else None)


@dataclass(frozen=True)
class StructuredRNN:
    r"""The weights of a :class:`~constructions.rnn.GatedLinearRNN` in factored form (see module docstring).

    ``gates`` lists the kept output gates (nonzero $C$ row, $E$ row and $D$ column), ordered so that gates
    sharing a column of $D_u$ are adjacent; ``group_size`` is the common size of those runs (``None``: apply
    ``D_kept`` densely). ``attention`` is the chunked matmul form when it applies (else ``None``).
    """

    A: RowDedup
    B: RowDedup
    lam: Tensor | None
    C: OneHotRows | Tensor  # kept gates x n
    E: OneHotRows | Tensor
    D_kept: Tensor  # [d_out, kept gates]
    D_unique: Tensor | None  # [d_out, groups] when group_size is not None
    group_size: int | None
    gates: Tensor
    m: int  # gates of the template (kept or not)
    attention: AttentionHeads | None = None

    @property
    def d(self) -> int:
        return self.A.unique.shape[1] - 1

    @property
    def n(self) -> int:
        return self.A.index.shape[0]

    @property
    def d_out(self) -> int:
        return self.D_kept.shape[0]

    @property
    def useful(self) -> bool:
        """Whether the factored form saves work over the dense template."""
        return (
            self.attention is not None
            or self.A.saving
            or self.B.saving
            or isinstance(self.C, OneHotRows)
            or isinstance(self.E, OneHotRows)
            or self.group_size not in (None, 1)
            or self.gates.shape[0] < self.m
        )

    # -- the stages, on a chunk ---------------------------------------------------------------------
    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""$A_u\tilde x$ and $B_u\tilde x$ (the constant column as a bias: no ``[x; 1]`` copy)."""
        d = self.d
        a = F.linear(x, self.A.unique[:, :d], self.A.unique[:, d])
        b = F.linear(x, self.B.unique[:, :d], self.B.unique[:, d])
        return a, b

    def input_gate(self, x: Tensor) -> Tensor:
        r"""$u = (A_u\tilde x)[\iota_A]\odot(B_u\tilde x)[\iota_B]$ for ``x`` ``[..., d]``."""
        a, b = self.branches(x)
        return a.index_select(-1, self.A.index) * b.index_select(-1, self.B.index)

    def readout(self, h: Tensor) -> Tensor:
        r"""$y = D\,[(Ch)\odot(Eh)]$ over the kept gates."""
        zc = self.C.apply(h) if isinstance(self.C, OneHotRows) else h @ self.C.T
        ze = self.E.apply(h) if isinstance(self.E, OneHotRows) else h @ self.E.T
        z = zc * ze
        if self.group_size is not None:
            z = z.reshape(*z.shape[:-1], -1, self.group_size).sum(-1)
            return z @ self.D_unique.T
        return z @ self.D_kept.T

    def forward(
        self,
        x: Inexact[Tensor, "batch time d"],
        h0: Inexact[Tensor, "batch n"],
        lam_t: Inexact[Tensor, "batch time n"] | FactoredDecay | None = None,
        *,
        scan_mode: str = "parallel",
        chunk: int | None = None,
        return_state: bool = True,
        real: bool = False,
        heads_cache: MutableMapping | None = None,
    ) -> tuple[Inexact[Tensor, "batch time d_out"], Inexact[Tensor, "batch n"] | None]:
        r"""Chunked evaluation: ``x`` in the compute dtype, ``h0`` the initial state; ``lam_t`` the
        input-dependent $\lambda_t$ when the RNN has a decay. ``scan_mode="parallel"`` uses the matmul form
        when it applies, else gathers and :func:`~constructions.scan.scan_chunked`; ``"loop"`` gathers and the
        step loop. Returns ``(y, h_T)`` (``h_T`` may be ``None`` when not ``return_state``); ``real``: return
        $\mathrm{Re}\,y$, taken chunk by chunk. ``heads_cache``: where :meth:`heads_for` may keep the matmul
        forms of input-dependent decays (the plan itself is never modified)."""
        if scan_mode not in ("parallel", "loop"):
            raise ValueError(f"scan_mode must be 'parallel' or 'loop'; got {scan_mode!r}")
        dtype = self.A.unique.dtype
        Bsz, T, _ = x.shape
        if scan_mode == "parallel":
            if self.attention is not None and lam_t is None:
                return self.attention.forward(self, x, h0, chunk=chunk, return_state=return_state, real=real)
            if lam_t is not None and T and isinstance(self.C, OneHotRows) and isinstance(self.E, OneHotRows):
                heads = self.heads_for(lam_t, heads_cache)
                decays = None if heads is None else heads.head_decays(lam_t, super_chunk(Bsz, self.n, 4, T))
                if decays is not None:
                    return heads.forward(
                        self,
                        x,
                        h0,
                        chunk=chunk,
                        return_state=return_state,
                        lam_t=lam_t,
                        decays=decays,
                        real=real,
                    )
        if isinstance(lam_t, FactoredDecay):  # no matmul form for this decay: spread it to [B, T, n]
            lam_t = lam_t.neurons()
        width = max(self.n, self.gates.shape[0], 1)
        S = T if scan_mode == "loop" else (chunk or super_chunk(Bsz, width, dtype.itemsize, T))
        out_dtype = h0.real.dtype if real else h0.dtype
        y = h0.new_empty(Bsz, T, self.d_out, dtype=out_dtype) if not _grad_needed(x, h0, lam_t) else None
        parts, h = [], h0
        for t0 in range(0, T, max(S, 1)):
            xc = x[:, t0 : t0 + S].to(dtype)
            u = self.input_gate(xc)
            lam = self.lam if lam_t is None else lam_t[:, t0 : t0 + S]
            if scan_mode == "loop" or xc.shape[1] <= 2:
                hc, h = scan_loop(lam, u, h)
            else:
                hc, h = scan_chunked(lam, u, h)
            yc = self.readout(hc)
            if real and yc.is_complex():
                yc = yc.real
            if y is None:
                parts.append(yc)
            else:
                y[:, t0 : t0 + S] = yc
        if y is None:
            y = torch.cat(parts, dim=1) if parts else h0.new_zeros(Bsz, 0, self.d_out, dtype=out_dtype)
        return y, h

    def heads_for(
        self, lam_t: Tensor | FactoredDecay, cache: MutableMapping | None = None
    ) -> AttentionHeads | None:
        r"""The matmul form for an input-dependent decay, which depends on which neurons have $\lambda_t = 0$
        throughout; kept in ``cache`` (a mapping owned by the caller, keyed by that set) when one is given."""
        zero = lam_t.always_zero() if isinstance(lam_t, FactoredDecay) else _always_zero(lam_t)
        key = zero.cpu().numpy().tobytes()
        if cache is not None and key in cache:
            return cache[key]
        heads = detect_heads(self, (~zero).to(self.A.unique.dtype))
        if cache is not None:
            cache.clear()  # one decay pattern at a time: a cache that cannot grow without bound
            cache[key] = heads
        return heads


def _always_zero(lam_t: Tensor) -> Tensor:
    """``[n]`` bool: the neurons whose ``lam_t`` ``[B, T, n]`` is 0 at every step of every sequence (exact).

    Candidates are the neurons that are 0 at the first step (a neuron nonzero there is not always zero); only
    their columns are then read over all steps, so the usual case (a few query neurons) costs a small gather
    instead of passes over the whole ``[B, T, n]`` tensor."""
    if lam_t.shape[1] == 0:
        return torch.ones(lam_t.shape[2], dtype=torch.bool, device=lam_t.device)
    cand = (lam_t[:, 0] == 0).all(0).nonzero()[:, 0]
    zero = torch.zeros(lam_t.shape[2], dtype=torch.bool, device=lam_t.device)
    if cand.numel():
        lc = lam_t.index_select(-1, cand)  # [B, T, n_candidates]
        zero[cand] = (lc == 0).flatten(0, 1).all(0)
    return zero


def detect_structure(
    A: Inexact[Tensor, "n d_plus_1"],
    B: Inexact[Tensor, "n d_plus_1"],
    lam: Inexact[Tensor, " n"] | None,
    C: Inexact[Tensor, "m n"],
    E: Inexact[Tensor, "m n"],
    D: Inexact[Tensor, "d_out m"],
) -> StructuredRNN | None:
    """Factor the template's weights exactly (module docstring). All tensors must share one dtype and device
    (the compute dtype). Returns ``None`` when a weight is not finite (the dense path then propagates it)."""
    ws = [A, B, C, E, D] + ([lam] if lam is not None else [])
    if not all(bool(np.isfinite(w.detach().cpu().numpy()).all()) for w in ws):
        return None
    nC, nE, nD = (w.detach().cpu().numpy() != 0 for w in (C, E, D))
    gates_np = np.nonzero(nC.any(1) & nE.any(1) & nD.any(0))[0]
    # group gates by identical D columns and order them so that groups are contiguous
    group_size, D_unique = None, None
    if gates_np.size:
        cols = dedup_rows(D[:, torch.as_tensor(gates_np, device=D.device)].T)
        gi = cols.index.cpu().numpy()
        counts = np.bincount(gi)
        if cols.saving and bool((counts == counts[0]).all()):
            gates_np = gates_np[np.argsort(gi, kind="stable")]
            group_size, D_unique = int(counts[0]), cols.unique.T.contiguous()
    gates = torch.as_tensor(gates_np, dtype=torch.long, device=D.device)
    Dk = D[:, gates]
    Ck, Ek = C[gates], E[gates]
    C_s = one_hot_rows(Ck)
    E_s = one_hot_rows(Ek)
    plan = StructuredRNN(
        A=dedup_rows(A),
        B=dedup_rows(B),
        lam=lam,
        C=C_s if C_s is not None else Ck.contiguous(),
        E=E_s if E_s is not None else Ek.contiguous(),
        D_kept=Dk.contiguous(),
        D_unique=D_unique,
        group_size=group_size,
        gates=gates,
        m=C.shape[0],
    )
    if lam is not None and C_s is not None and E_s is not None:
        heads = detect_heads(plan)
        if heads is not None:
            plan = dataclasses.replace(plan, attention=heads)
    return plan
