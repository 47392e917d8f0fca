r"""Reverse-engineering trained students: λ statistics, pruning, and the function-level attention tensor.

Zucchet et al. 2023 (Experiment 1, as reported): after training, "only recurrent neurons with perfect
memory ($\lambda = 1$) or no memory at all ($\lambda = 0$) influence the output"; the others can be pruned
without loss, and the attention the teacher uses can be read back from the student. This module makes
those three statements measurable.

**The invariance-free target** (derived). Linear self-attention computes
$y_{t,o}=\sum_{s\le t}\sum_{abc}T_{oabc}\,x_{s,a}x_{s,b}x_{t,c}$, and only the symmetrised tensor
$\mathrm{Sym}_{ab}T$ (:func:`constructions.attention_tensor`) is determined by the function. For any
differentiable sequence model $f$ and positions $s<t$,

$$ \widehat T^{(s,t)}_{oabc} \;=\; \tfrac12\,\frac{\partial^3 f(x)_{t,o}}{\partial x_{s,a}\,\partial
x_{s,b}\,\partial x_{t,c}}\Big|_{x=0}, $$

which equals $\mathrm{Sym}_{ab}T_{oabc}$ for an LSA, for every lag $t-s$. For a gated RNN the output is a
polynomial of degree $\le 4$ in the inputs, so $\widehat T$ is exact (no Taylor remainder); a neuron with
$0<\lambda<1$ makes it decay with the lag, which is what a long-lag probe detects. Nothing here depends on
how the student arranged its neurons (permutations, rescalings and mixings of equal-λ neurons are all
quotiented out), unlike a weight-level comparison after :func:`constructions.invariances.canonicalize`.
"""

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor

from constructions import GatedLinearRNN

__all__ = [
    "near_zero_or_one",
    "lambda_histogram",
    "prune",
    "snap_lambdas",
    "cubic_coefficients",
    "rnn_cubic_coefficients",
    "relative_error",
    "gate_block_fraction",
]


def near_zero_or_one(lam: Tensor, tol: float = 0.1) -> Tensor:
    r"""Boolean mask: $\min(|\lambda|, |1-\lambda|)\le$ ``tol``."""
    return torch.minimum(lam.abs(), (1 - lam).abs()) <= tol


def lambda_histogram(lams: Tensor, bins: int = 20) -> dict:
    """Counts of ``lams`` in ``bins`` equal bins over [0, 1] (JSON-able: ``bin_edges``, ``counts``)."""
    lams = lams.detach().to(torch.float64).reshape(-1).clamp(0.0, 1.0)
    counts = torch.histc(lams, bins=bins, min=0.0, max=1.0)
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)
    return {"bin_edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def _require_real_constant(rnn: GatedLinearRNN, what: str) -> None:
    if not isinstance(rnn, GatedLinearRNN):
        raise TypeError(f"{what} takes a GatedLinearRNN; got {type(rnn).__name__}")
    if rnn.lam is None or rnn.is_complex:
        raise ValueError(f"{what} needs a real, constant lambda (the trained students of this module)")


def prune(rnn: GatedLinearRNN, tol: float = 0.1) -> tuple[GatedLinearRNN, Tensor]:
    r"""Remove the neurons whose $\lambda$ is further than ``tol`` from $\{0, 1\}$ (the paper's pruning test).

    Returns the smaller RNN and the boolean mask of kept neurons. If every neuron is pruned, one neuron is
    kept with zero drive (the RNN then computes 0), so the result is always a valid RNN.
    """
    _require_real_constant(rnn, "prune")
    A, B, lam, C, E, D = (w.detach() for w in rnn.weights())
    keep = near_zero_or_one(lam, tol)
    if not bool(keep.any()):
        z = torch.zeros(1, dtype=lam.dtype, device=lam.device)
        return GatedLinearRNN(A[:1] * 0, B[:1] * 0, z, C[:, :1] * 0, E[:, :1] * 0, D.clone()), keep
    idx = keep.nonzero()[:, 0]
    return GatedLinearRNN(
        A[idx].clone(), B[idx].clone(), lam[idx].clone(), C[:, idx].clone(), E[:, idx].clone(), D.clone()
    ), keep


def snap_lambdas(rnn: GatedLinearRNN, tol: float = 0.1) -> GatedLinearRNN:
    r"""Set every $\lambda$ within ``tol`` of 0 or 1 to exactly 0 or 1 (others unchanged)."""
    _require_real_constant(rnn, "snap_lambdas")
    A, B, lam, C, E, D = (w.detach().clone() for w in rnn.weights())
    lam = torch.where(lam.abs() <= tol, torch.zeros_like(lam), lam)
    lam = torch.where((1 - lam).abs() <= tol, torch.ones_like(lam), lam)
    return GatedLinearRNN(A, B, lam, C, E, D)


def cubic_coefficients(
    model: Callable[[Tensor], Tensor],
    d: int,
    s: int,
    t: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> Float[Tensor, "d_out d d d"]:
    r"""$\widehat T^{(s,t)}_{oabc}=\frac12\,\partial^3 f(x)_{t,o}/\partial x_{s,a}\partial x_{s,b}\partial
    x_{t,c}$ at $x=0$.

    ``model`` maps ``[B, T, d]`` to ``[B, T, d_out]`` (a :class:`~constructions.rnn.GatedLinearRNN`, an
    LSA, an LSTM wrapper...); it is evaluated on one sequence of length ``t + 1`` in ``dtype`` by nested
    reverse-mode differentiation ($d_\text{out}(1 + d(1 + d))$ backward passes). Requires ``0 <= s < t``.
    """
    if not (isinstance(s, int) and isinstance(t, int) and 0 <= s < t):
        raise ValueError(
            f"positions must satisfy 0 <= s < t (the memory term is read at a later query); "
            f"got s={s!r}, t={t!r}"
        )
    x = torch.zeros(1, t + 1, d, dtype=dtype, device=device, requires_grad=True)
    y = model(x)
    if not isinstance(y, Tensor) or y.ndim != 3 or y.shape[:2] != (1, t + 1):
        raise ValueError(
            f"model must map [1, {t + 1}, {d}] to [1, {t + 1}, d_out]; got "
            f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}"
        )
    d_out = y.shape[2]
    out = torch.zeros(d_out, d, d, d, dtype=dtype, device=device)

    def grad(v: Tensor, keep: bool) -> Tensor:
        if not v.requires_grad:  # this derivative is identically zero
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(v, x, create_graph=keep, retain_graph=True, allow_unused=True)
        return torch.zeros_like(x) if g is None else g

    for o in range(d_out):
        g_t = grad(y[0, t, o], True)[0, t]  # d/dx_t: [c]
        for c in range(d):
            g_s = grad(g_t[c], True)[0, s]  # d^2/dx_t,c dx_s: [a]
            for a in range(d):
                out[o, a, :, c] = grad(g_s[a], False)[0, s]  # [b]
    return out.detach() / 2


def rnn_cubic_coefficients(rnn: GatedLinearRNN, lag: int) -> Float[Tensor, "d_out d d d"]:
    r"""Closed form of :func:`cubic_coefficients` for a real, constant-λ gated RNN at lag $L=t-s\ge1$
    (derived).

    Split $A=[A_x, a_0]$, $B=[B_x, b_0]$ (the last column reads the appended 1). With inputs only at $s$ and
    $t$, $h_t=\bar h+\lambda^{L}\odot(\ell(x_s)+Q(x_s))+\ell(x_t)+Q(x_t)$ where
    $Q(x)_k=(A_kx)(B_kx)$ and $\ell(x)_k=a_{0k}B_kx+b_{0k}A_kx$; the only $x_s x_s x_t$ terms of
    $y=D[(Ch)\odot(Eh)]$ pair $Q(x_s)$ with $\ell(x_t)$:

    $$ \widehat T_{oabc}=\sum_{k,k'}W_{okk'}\,\lambda_k^{L}\,G_{k,ab}\,\ell_{k'c},\quad
       W_{okk'}=\sum_m D_{om}(C_{mk}E_{mk'}+E_{mk}C_{mk'}),\quad G_{k,ab}=\tfrac12(A_{ka}B_{kb}+A_{kb}B_{ka}).
       $$

    Checked against the autograd definition in ``tests/test_training_mechanism.py``.
    """
    _require_real_constant(rnn, "rnn_cubic_coefficients")
    if not isinstance(lag, int) or lag < 1:
        raise ValueError(f"lag must be an int >= 1 (the query comes after the stored input); got {lag!r}")
    A, B, lam, C, E, D = (w.detach().to(torch.float64) for w in rnn.weights())
    d = rnn.d
    Ax, a0, Bx, b0 = A[:, :d], A[:, d], B[:, :d], B[:, d]
    G = (Ax[:, :, None] * Bx[:, None, :] + Ax[:, None, :] * Bx[:, :, None]) / 2  # [n, a, b]
    ell = a0[:, None] * Bx + b0[:, None] * Ax  # [n, c]
    W = torch.einsum("om,mk,mq->okq", D, C, E)
    W = W + W.transpose(1, 2)
    return torch.einsum("okq,k,kab,qc->oabc", W, lam**lag, G, ell)


def relative_error(estimate: Tensor, reference: Tensor) -> float:
    r"""$\|\hat T - T\|_F / \|T\|_F$ (float64)."""
    est, ref = estimate.detach().to(torch.float64).cpu(), reference.detach().to(torch.float64).cpu()
    if est.shape != ref.shape:
        raise ValueError(f"shapes differ: estimate {tuple(est.shape)}, reference {tuple(ref.shape)}")
    denom = float(ref.norm())
    return float((est - ref).norm()) / denom if denom > 0 else float((est - ref).norm())


def gate_block_fraction(rnn: GatedLinearRNN, tol: float = 0.1) -> float:
    r"""Share of the output-gating weight that multiplies a memory ($\lambda\approx1$) neuron by a query
    ($\lambda\approx0$) neuron, as in the construction (derived diagnostic, 1 for the constructions).

    Each gate $m$ contributes $\|D_{:,m}\|\,(|C_m|\otimes|E_m|)$ over neuron pairs $(p, r)$ (magnitudes, so
    gates cannot cancel); the fraction is the mass of the symmetrised memory–query block over the total.
    """
    _require_real_constant(rnn, "gate_block_fraction")
    _, _, lam, C, E, D = (w.detach().to(torch.float64) for w in rnn.weights())
    mem = ((lam - 1).abs() <= tol).to(torch.float64)
    qry = (lam.abs() <= tol).to(torch.float64)
    w = D.norm(dim=0)  # [m]
    M = torch.einsum("m,mp,mr->pr", w, C.abs(), E.abs())
    M = (M + M.T) / 2
    total = float(M.sum())
    cross = float((M * (mem[:, None] * qry[None, :] + qry[:, None] * mem[None, :])).sum())
    return cross / total if total > 0 else 0.0
