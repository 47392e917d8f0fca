r"""Symmetries of the gated RNN's parameters that leave its function unchanged.

Derived for the template of Zucchet et al. 2023 (Sec. 3; the paper "analyzes invariances", the exact
list there is not confirmed — these are derived and checked by the property suite and the prover):

- **neuron permutation** $\pi$: $(\lambda, A, B, C, E) \to (\lambda_\pi, A_{\pi,:}, B_{\pi,:}, C_{:,\pi},
  E_{:,\pi})$;
- **gate permutation** $\sigma$: $(C, E, D) \to (C_{\sigma,:}, E_{\sigma,:}, D_{:,\sigma})$;
- **input-branch rescaling**: $A_{k,:}\to\alpha A_{k,:}$, $B_{k,:}\to B_{k,:}/\alpha$ (neuron $k$'s drive is
  unchanged);
- **neuron rescaling**: $h_k \to c\,h_k$ via $A_{k,:}\to cA_{k,:}$ and $C_{:,k}\to C_{:,k}/c$, $E_{:,k}\to
  E_{:,k}/c$;
- **output-branch rescaling**: $C_{m,:}\to\alpha C_{m,:}$, $E_{m,:}\to\beta E_{m,:}$, $D_{:,m}\to
  D_{:,m}/(\alpha\beta)$;
- **branch swap**: exchanging $A\leftrightarrow B$ rows, or $C\leftrightarrow E$ rows (products commute);
- **complex conjugation** (complex $\lambda$, real output): conjugating every parameter gives
  $\mathrm{Re}(\bar y)=\mathrm{Re}(y)$; a per-neuron phase $e^{i\phi}$ on $A_{k,:}$ compensated on $C_{:,k},
  E_{:,k}$.

Every map returns a new :class:`~constructions.rnn.GatedLinearRNN`; nothing is modified in place.

**Canonicalisation** (:func:`canonicalize`, derived): one representative of the orbit of a real,
constant-$\lambda$ RNN under the *discrete and diagonal* symmetries above (permutations, branch and neuron
rescalings, branch swaps), so that two RNNs related by them have equal canonical weights (up to rounding),
and a learned RNN can be read next to a construction. The rules, in order:

1. neuron $k$: $A_k, B_k \to \hat A_k, \hat B_k$ of unit norm (the scale $\|A_k\|\|B_k\|$, and any sign,
   moves into columns $k$ of $C$ and $E$); of the eight sign/order choices $(\pm\hat A_k, \pm\hat B_k)$,
   $(\pm\hat B_k, \pm\hat A_k)$ the one whose key is largest: $|B_{k,d}|$ first (the branch reading the
   appended 1 goes to $B$, as in the constructions' query neurons), then the entries of $A_k$, then $B_k$;
2. gate $m$: $C_m, E_m$ of unit norm with their largest-magnitude entry positive (scale and signs move
   into column $m$ of $D$); $C_m$ is the branch with more weight on $\lambda=1$ neurons (the memory side),
   ties broken by the entries;
3. neurons sorted by $\lambda$ (descending: memories first, queries last), then by their branches;
   gates sorted by their branches.

Keys are compared after rounding to 10 decimals (:data:`KEY_DECIMALS`), so values equal up to rounding
tie and later keys decide. Zero rows stay zero. What canonicalisation cannot remove: neurons that share
one $\lambda$ may be *mixed* by an invertible linear map without changing the function (only generalised
permutations are exact parameter symmetries, ``docs/constructions.md``, Invariances). Compare such models at
the level of function, e.g. with the cubic coefficient tensor of :mod:`equivalence.training.mechanism`.
"""

import torch
from jaxtyping import Int
from torch import Tensor

from .rnn import GatedLinearRNN

__all__ = [
    "permute_neurons",
    "PermutedDecay",
    "permute_gates",
    "rescale_input_branch",
    "rescale_neuron",
    "rescale_output_branches",
    "swap_input_branches",
    "swap_output_branches",
    "conjugate",
    "canonicalize",
    "KEY_DECIMALS",
]

#: canonicalisation compares keys rounded to this many decimals (after normalising rows to unit norm)
KEY_DECIMALS = 10


def _rebuild(rnn: GatedLinearRNN, **changes) -> GatedLinearRNN:
    w = rnn.weights()._asdict()
    w = {k: (v.detach().clone() if isinstance(v, Tensor) else v) for k, v in w.items()}
    decay = changes.pop("decay", rnn.decay)
    w.update(changes)
    kw = {"upstream": rnn.upstream} if getattr(rnn, "upstream", None) is not None else {}
    return GatedLinearRNN(
        w["A"], w["B"], w["lam"], w["C"], w["E"], w["D"], decay=decay, real_output=rnn.real_output, **kw
    )


def _check_perm(perm: Tensor, n: int, what: str) -> Tensor:
    perm = torch.as_tensor(perm, dtype=torch.long)
    if perm.shape != (n,) or not torch.equal(torch.sort(perm).values, torch.arange(n)):
        raise ValueError(f"{what} permutation must be a permutation of range({n}); got {perm.tolist()[:20]}")
    return perm


class PermutedDecay:
    """An input-dependent decay whose neurons are reordered: ``PermutedDecay(decay, perm)(x) = decay(x)[...,
    perm]``.

    The fallback of :func:`permute_neurons` for decay callables without a ``permuted(perm)`` method (such as
    :class:`~constructions.variants.InputDependentDecay` has)."""

    def __init__(self, decay, perm: Int[Tensor, " n"]):
        self.decay, self.perm = decay, perm

    def __call__(self, x: Tensor) -> Tensor:
        return self.decay(x)[..., self.perm.to(x.device)]

    def permuted(self, perm: Int[Tensor, " n"]) -> "PermutedDecay":
        return PermutedDecay(self.decay, self.perm[perm.to(self.perm.device)])

    def __repr__(self) -> str:
        return f"PermutedDecay({self.decay!r}, perm={self.perm.tolist()})"


def permute_neurons(rnn: GatedLinearRNN, perm: Int[Tensor, " n"]) -> GatedLinearRNN:
    r"""Reorder the recurrent neurons: new neuron ``k`` is old neuron ``perm[k]``.

    The decay is reordered with the neurons: a constant $\lambda$ by indexing, an input-dependent decay
    (input-dependent decay) through its ``permuted(perm)`` method when it has one, else by wrapping it
    (:class:`PermutedDecay`) so that $\lambda_t$ of new neuron ``k`` is old neuron ``perm[k]``'s."""
    p = _check_perm(perm, rnn.num_neurons, "neuron").to(rnn.A.device)
    A, B, lam, C, E, D = (w.detach() if w is not None else None for w in rnn.weights())
    changes = {}
    if lam is None:
        permuted = getattr(rnn.decay, "permuted", None)
        changes["decay"] = permuted(p) if callable(permuted) else PermutedDecay(rnn.decay, p)
    return _rebuild(
        rnn,
        A=A[p].clone(),
        B=B[p].clone(),
        lam=None if lam is None else lam[p].clone(),
        C=C[:, p].clone(),
        E=E[:, p].clone(),
        **changes,
    )


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


def rescale_output_branches(
    rnn: GatedLinearRNN, m: int, alpha: complex | float, beta: complex | float
) -> GatedLinearRNN:
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
    # a real and a complex branch: swap in the common dtype
    dt = torch.promote_types(rnn.A.dtype, rnn.B.dtype)
    A, B = rnn.A.detach().to(dt).clone(), rnn.B.detach().to(dt).clone()
    A[k], B[k] = rnn.B[k].detach().to(dt).clone(), rnn.A[k].detach().to(dt).clone()
    return _rebuild(rnn, A=A, B=B)


def swap_output_branches(rnn: GatedLinearRNN, m: int) -> GatedLinearRNN:
    """Exchange gate ``m``'s two output-gate branches (rows ``C[m]`` and ``E[m]``)."""
    dt = torch.promote_types(rnn.C.dtype, rnn.E.dtype)
    C, E = rnn.C.detach().to(dt).clone(), rnn.E.detach().to(dt).clone()
    C[m], E[m] = rnn.E[m].detach().to(dt).clone(), rnn.C[m].detach().to(dt).clone()
    return _rebuild(rnn, C=C, E=E)


def conjugate(rnn: GatedLinearRNN) -> GatedLinearRNN:
    r"""Conjugate every parameter; with the real readout, $\mathrm{Re}(\bar y) = \mathrm{Re}(y)$."""
    if not rnn.real_output:
        raise ValueError("conjugation is a symmetry only with the real readout (real_output=True)")
    w = {
        k: (v.detach().conj().resolve_conj().clone() if isinstance(v, Tensor) else v)
        for k, v in rnn.weights()._asdict().items()
    }
    return _rebuild(rnn, **w)


# -- canonicalisation -------------------------------------------------------------------------------
def _key(v: Tensor) -> tuple[float, ...]:
    """Lexicographic key of a vector, rounded so that values equal up to rounding tie."""
    return tuple(round(float(a), KEY_DECIMALS) + 0.0 for a in v)  # + 0.0 maps -0.0 to 0.0


def _unit(v: Tensor) -> tuple[Tensor, float]:
    norm = float(v.norm())
    return (v / norm, norm) if norm > 0 else (v, 0.0)


def _sign_largest_positive(v: Tensor) -> float:
    """+1 or -1 so that the (first) largest-magnitude entry of ``sign * v`` is positive (rounded keys)."""
    mags = torch.round(v.abs(), decimals=KEY_DECIMALS)
    if float(mags.max()) == 0:
        return 1.0
    i = int(torch.nonzero(mags == mags.max())[0, 0])
    return 1.0 if float(v[i]) > 0 else -1.0


def canonicalize(rnn: GatedLinearRNN) -> GatedLinearRNN:
    r"""Canonical representative of ``rnn`` under neuron/gate permutations, branch and neuron rescalings and
    branch swaps (rules in the module docstring; derived, not from the paper). The result computes the same
    function as ``rnn`` (up to rounding) and is the same for every RNN related to ``rnn`` by those maps.

    Only real weights with a constant $\lambda$ are accepted (``ValueError`` otherwise): for complex
    $\lambda$ the per-neuron phase would need its own rule, and an input-dependent decay has no
    $\lambda$ to sort by.
    """
    if not isinstance(rnn, GatedLinearRNN):
        raise TypeError(f"rnn must be a GatedLinearRNN; got {type(rnn).__name__}")
    if rnn.lam is None:
        raise ValueError("canonicalize needs a constant lambda; this RNN has an input-dependent decay")
    if rnn.is_complex:
        raise ValueError(
            "canonicalize needs real weights; this RNN is complex (per-neuron phases have no "
            "canonical rule here)"
        )
    A, B, lam, C, E, D = (w.detach().clone() for w in rnn.weights())
    n, m, d = rnn.num_neurons, rnn.num_gates, rnn.d
    # 1. neurons: unit-norm branches, scale into C and E (only the product h_k C_{:,k} E_{:,k'} matters)
    for k in range(n):
        a, na = _unit(A[k])
        b, nb = _unit(B[k])
        if na == 0 or nb == 0:  # the neuron's drive is identically zero
            A[k], B[k] = 0.0, 0.0
            continue
        # independent signs are symmetries too: input-branch rescaling by -1 composed with neuron rescaling by
        # -1
        options = [
            (sa * sb, sa * x, sb * y) for x, y in ((a, b), (b, a)) for sa in (1.0, -1.0) for sb in (1.0, -1.0)
        ]
        sign, A[k], B[k] = max(
            options, key=lambda o: (round(abs(float(o[2][d])), KEY_DECIMALS), _key(o[1]), _key(o[2]))
        )
        # the drive is now u_k / (sign * na * nb): both output branches read h_k, so both columns compensate
        C[:, k] *= sign * na * nb
        E[:, k] *= sign * na * nb
    # 2. neuron order: lambda descending, then the branches
    order = sorted(
        range(n),
        key=lambda k: (
            -round(float(lam[k]), KEY_DECIMALS),
            tuple(-v for v in _key(A[k])),
            tuple(-v for v in _key(B[k])),
        ),
    )
    p = torch.tensor(order, dtype=torch.long, device=A.device)
    A, B, lam, C, E = A[p], B[p], lam[p], C[:, p], E[:, p]
    # 3. gates: unit-norm branches with positive largest entry; the memory side in C
    memory = (lam - 1).abs() <= 10.0**-KEY_DECIMALS
    for j in range(m):
        c, nc = _unit(C[j])
        e, ne = _unit(E[j])
        if nc == 0 or ne == 0:  # the gate's output is identically zero
            C[j], E[j], D[:, j] = 0.0, 0.0, 0.0
            continue
        sc, se = _sign_largest_positive(c), _sign_largest_positive(e)
        c, e = sc * c, se * e
        D[:, j] *= nc * ne * sc * se
        key_c = (round(float(c[memory].abs().sum()), KEY_DECIMALS), _key(c))
        key_e = (round(float(e[memory].abs().sum()), KEY_DECIMALS), _key(e))
        C[j], E[j] = (c, e) if key_c >= key_e else (e, c)
    gorder = sorted(range(m), key=lambda j: (tuple(-v for v in _key(C[j])), tuple(-v for v in _key(E[j]))))
    q = torch.tensor(gorder, dtype=torch.long, device=A.device)
    return _rebuild(rnn, A=A, B=B, lam=lam, C=C[q], E=E[q], D=D[:, q])
