r"""Symmetries of the gated RNN's parameters that leave its function unchanged.

Derived for the template of Zucchet et al. 2023 (Sec. 3; the paper "analyzes invariances", the exact
list there is not confirmed — these are derived and checked by the property suite and the prover):

- **neuron permutation** $\pi$: $(\lambda, A, B, C, E) \to (\lambda_\pi, A_{\pi,:}, B_{\pi,:}, C_{:,\pi}, E_{:,\pi})$;
- **gate permutation** $\sigma$: $(C, E, D) \to (C_{\sigma,:}, E_{\sigma,:}, D_{:,\sigma})$;
- **input-branch rescaling**: $A_{k,:}\to\alpha A_{k,:}$, $B_{k,:}\to B_{k,:}/\alpha$ (neuron $k$'s drive is unchanged);
- **neuron rescaling**: $h_k \to c\,h_k$ via $A_{k,:}\to cA_{k,:}$ and $C_{:,k}\to C_{:,k}/c$, $E_{:,k}\to E_{:,k}/c$;
- **output-branch rescaling**: $C_{m,:}\to\alpha C_{m,:}$, $E_{m,:}\to\beta E_{m,:}$, $D_{:,m}\to D_{:,m}/(\alpha\beta)$;
- **branch swap**: exchanging $A\leftrightarrow B$ rows, or $C\leftrightarrow E$ rows (products commute);
- **complex conjugation** (complex $\lambda$, real output): conjugating every parameter gives
  $\mathrm{Re}(\bar y)=\mathrm{Re}(y)$; a per-neuron phase $e^{i\phi}$ on $A_{k,:}$ compensated on $C_{:,k}, E_{:,k}$.

Every map returns a new :class:`~constructions.rnn.GatedLinearRNN`; nothing is modified in place.
"""

import torch
from jaxtyping import Int
from torch import Tensor

from .rnn import GatedLinearRNN

__all__ = [
    "permute_neurons",
    "permute_gates",
    "rescale_input_branch",
    "rescale_neuron",
    "rescale_output_branches",
    "swap_input_branches",
    "swap_output_branches",
    "conjugate",
]


def _rebuild(rnn: GatedLinearRNN, **changes) -> GatedLinearRNN:
    w = rnn.weights()._asdict()
    w = {k: (v.detach().clone() if isinstance(v, Tensor) else v) for k, v in w.items()}
    w.update(changes)
    return GatedLinearRNN(w["A"], w["B"], w["lam"], w["C"], w["E"], w["D"], decay=rnn.decay,
                          real_output=rnn.real_output)


def _check_perm(perm: Tensor, n: int, what: str) -> Tensor:
    perm = torch.as_tensor(perm, dtype=torch.long)
    if perm.shape != (n,) or not torch.equal(torch.sort(perm).values, torch.arange(n)):
        raise ValueError(f"{what} permutation must be a permutation of range({n}); got {perm.tolist()[:20]}")
    return perm


def permute_neurons(rnn: GatedLinearRNN, perm: Int[Tensor, " n"]) -> GatedLinearRNN:
    """Reorder the recurrent neurons: new neuron ``k`` is old neuron ``perm[k]``."""
    p = _check_perm(perm, rnn.num_neurons, "neuron").to(rnn.A.device)
    A, B, lam, C, E, D = (w.detach() if w is not None else None for w in rnn.weights())
    return _rebuild(rnn, A=A[p].clone(), B=B[p].clone(), lam=None if lam is None else lam[p].clone(),
                    C=C[:, p].clone(), E=E[:, p].clone())


def permute_gates(rnn: GatedLinearRNN, perm: Int[Tensor, " m"]) -> GatedLinearRNN:
    """Reorder the output-gating units: new unit ``j`` is old unit ``perm[j]``."""
    p = _check_perm(perm, rnn.num_gates, "gate").to(rnn.A.device)
    _, _, _, C, E, D = (w.detach() if w is not None else None for w in rnn.weights())
    return _rebuild(rnn, C=C[p].clone(), E=E[p].clone(), D=D[:, p].clone())


def rescale_input_branch(rnn: GatedLinearRNN, k: int, alpha: complex | float) -> GatedLinearRNN:
    r"""$A_{k,:}\to\alpha A_{k,:}$, $B_{k,:}\to B_{k,:}/\alpha$ ($\alpha\neq 0$)."""
    if alpha == 0:
        raise ValueError("alpha must be non-zero (the rescaling must be invertible)")
    A, B = rnn.A.detach().clone(), rnn.B.detach().clone()
    A[k] = A[k] * alpha
    B[k] = B[k] / alpha
    return _rebuild(rnn, A=A, B=B)


def rescale_neuron(rnn: GatedLinearRNN, k: int, c: complex | float) -> GatedLinearRNN:
    r"""$h_k\to c\,h_k$: $A_{k,:}\to cA_{k,:}$, $C_{:,k}\to C_{:,k}/c$, $E_{:,k}\to E_{:,k}/c$ ($c\neq0$)."""
    if c == 0:
        raise ValueError("c must be non-zero (the rescaling must be invertible)")
    A, C, E = rnn.A.detach().clone(), rnn.C.detach().clone(), rnn.E.detach().clone()
    A[k] = A[k] * c
    C[:, k] = C[:, k] / c
    E[:, k] = E[:, k] / c
    return _rebuild(rnn, A=A, C=C, E=E)


def rescale_output_branches(rnn: GatedLinearRNN, m: int, alpha: complex | float, beta: complex | float) -> GatedLinearRNN:
    r"""$C_{m,:}\to\alpha C_{m,:}$, $E_{m,:}\to\beta E_{m,:}$, $D_{:,m}\to D_{:,m}/(\alpha\beta)$."""
    if alpha == 0 or beta == 0:
        raise ValueError("alpha and beta must be non-zero (the rescaling must be invertible)")
    C, E, D = rnn.C.detach().clone(), rnn.E.detach().clone(), rnn.D.detach().clone()
    C[m] = C[m] * alpha
    E[m] = E[m] * beta
    D[:, m] = D[:, m] / (alpha * beta)
    return _rebuild(rnn, C=C, E=E, D=D)


def swap_input_branches(rnn: GatedLinearRNN, k: int) -> GatedLinearRNN:
    """Exchange neuron ``k``'s two input-gate branches (rows ``A[k]`` and ``B[k]``)."""
    A, B = rnn.A.detach().clone(), rnn.B.detach().clone()
    A[k], B[k] = rnn.B[k].detach().clone(), rnn.A[k].detach().clone()
    return _rebuild(rnn, A=A, B=B)


def swap_output_branches(rnn: GatedLinearRNN, m: int) -> GatedLinearRNN:
    """Exchange gate ``m``'s two output-gate branches (rows ``C[m]`` and ``E[m]``)."""
    C, E = rnn.C.detach().clone(), rnn.E.detach().clone()
    C[m], E[m] = rnn.E[m].detach().clone(), rnn.C[m].detach().clone()
    return _rebuild(rnn, C=C, E=E)


def conjugate(rnn: GatedLinearRNN) -> GatedLinearRNN:
    r"""Conjugate every parameter; with the real readout, $\mathrm{Re}(\bar y) = \mathrm{Re}(y)$."""
    if not rnn.real_output:
        raise ValueError("conjugation is a symmetry only with the real readout (real_output=True)")
    w = {k: (v.detach().conj().resolve_conj().clone() if isinstance(v, Tensor) else v)
         for k, v in rnn.weights()._asdict().items()}
    return _rebuild(rnn, **w)
