r"""The gated diagonal linear RNN of Zucchet et al. 2023 (the paper's template, Sec. 3, Fig. 1).

With the augmented input $\tilde x_t = [x_t; 1]$ (the appended constant lets a gate send a *linear*
function of the input, i.e. a query, to a neuron):

$$
\begin{aligned}
u_t &= (A\tilde x_t)\odot(B\tilde x_t) && \text{input gating } (W^{in}_x, W^{in}_g)\\
h_t &= \lambda\odot h_{t-1} + u_t && \text{diagonal linear recurrence, } \lambda\in\mathbb R^n \text{ or } \mathbb C^n\\
z_t &= (C h_t)\odot(E h_t) && \text{output gating } (W^{out}_x, W^{out}_g)\\
y_t &= D z_t && \text{linear readout}
\end{aligned}
$$

Shapes: ``A, B: [n, d+1]``, ``lam: [n]``, ``C, E: [m, n]``, ``D: [d_out, m]``. With complex
parameters the output is $\mathrm{Re}(D z_t)$ by default (LRU-style real readout).

Extension E1 (``docs/variants.md``): ``decay`` replaces the constant $\lambda$ by an input-dependent
$\lambda_t = \mathrm{decay}(x_t)$ (Mamba-2/GLA family); the constant-$\lambda$ model is the paper's case.

The stage functions :func:`input_gate`, :func:`output_readout` and :func:`recurrence_step` are
written only with ``@``, ``*`` and indexing, so the symbolic prover evaluates *the same code* on
NumPy object arrays of SymPy expressions.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from jaxtyping import Inexact
from torch import Tensor, nn

from ._validation import require_finite, require_ndim, require_tensor
from .scan import scan

__all__ = ["GatedLinearRNN", "RNNWeights", "input_gate", "output_readout", "recurrence_step", "augment"]


class RNNWeights(NamedTuple):
    """The six arrays of the template (torch tensors, or NumPy object arrays for the prover)."""

    A: object  # [n, d+1]  input-gate branch W_x^in
    B: object  # [n, d+1]  input-gate branch W_g^in
    lam: object  # [n]     recurrent eigenvalues lambda
    C: object  # [m, n]    output-gate branch W_x^out
    E: object  # [m, n]    output-gate branch W_g^out
    D: object  # [d_out, m] readout


def augment(x):
    """$\\tilde x = [x; 1]$ along the last axis (torch)."""
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)


def input_gate(A, B, x_tilde):
    r"""$u = (A\tilde x)\odot(B\tilde x)$; ``x_tilde``: ``[..., d+1]`` → ``[..., n]``."""
    return (x_tilde @ A.T) * (x_tilde @ B.T)


def recurrence_step(lam, h_prev, u):
    r"""$h_t = \lambda\odot h_{t-1} + u_t$."""
    return lam * h_prev + u


def output_readout(C, E, D, h):
    r"""$y = D\,[(C h)\odot(E h)]$; ``h``: ``[..., n]`` → ``[..., d_out]``."""
    return ((h @ C.T) * (h @ E.T)) @ D.T


def _as_param(name: str, value: object, trainable: bool) -> nn.Parameter:
    t = require_tensor(name, value)
    return nn.Parameter(t, requires_grad=trainable)


class GatedLinearRNN(nn.Module):
    r"""Gated diagonal linear RNN (Zucchet et al. 2023, Sec. 3): input gating, $h_t=\lambda\odot h_{t-1}+u_t$,
    output gating, linear readout.

    **Arguments**

    - ``A``, ``B``: ``[n, d+1]`` input-gate branches (last column multiplies the appended 1).
    - ``lam``: ``[n]`` real or complex $\lambda$; ``None`` when ``decay`` is given.
    - ``C``, ``E``: ``[m, n]`` output-gate branches; ``D``: ``[d_out, m]`` readout.
    - ``decay``: optional callable ``x [B, T, d] -> lambda_t [B, T, n]`` (input-dependent decay, E1).
    - ``real_output``: take $\mathrm{Re}(y)$ when the computation is complex (default ``True``).
    - ``trainable``: make the six arrays trainable ``nn.Parameter`` s (default ``False``).

    ``rnn(x)`` maps ``[B, T, d]`` to ``[B, T, d_out]``; ``rnn(x, state=h0, return_state=True)``
    streams (returns ``(y, h_T)``); ``mode`` selects the step loop (reference) or the parallel scan.
    """

    def __init__(
        self,
        A: Inexact[Tensor, "n d_plus_1"],
        B: Inexact[Tensor, "n d_plus_1"],
        lam: Inexact[Tensor, " n"] | None,
        C: Inexact[Tensor, "m n"],
        E: Inexact[Tensor, "m n"],
        D: Inexact[Tensor, "d_out m"],
        *,
        decay: Callable[[Tensor], Tensor] | None = None,
        real_output: bool = True,
        trainable: bool = False,
    ):
        super().__init__()
        for name, w, axes in (("A", A, "n, d+1"), ("B", B, "n, d+1"), ("C", C, "m, n"), ("E", E, "m, n"),
                              ("D", D, "d_out, m")):
            require_tensor(name, w)
            require_ndim(name, w, 2, axes)
        if A.shape != B.shape:
            raise ValueError(f"A and B (input-gate branches) must have one shape [n, d+1]; got {tuple(A.shape)} "
                             f"and {tuple(B.shape)}")
        n, dp1 = A.shape
        if dp1 < 2:
            raise ValueError(f"A has {dp1} columns; expected d+1 >= 2 (input dimension d plus the appended 1)")
        if C.shape != E.shape:
            raise ValueError(f"C and E (output-gate branches) must have one shape [m, n]; got {tuple(C.shape)} "
                             f"and {tuple(E.shape)}")
        if C.shape[1] != n:
            raise ValueError(f"C has {C.shape[1]} columns but there are n={n} neurons (rows of A); expected "
                             f"C, E of shape [m, {n}]")
        if D.shape[1] != C.shape[0]:
            raise ValueError(f"D has {D.shape[1]} columns but there are m={C.shape[0]} output-gate units "
                             f"(rows of C); expected D of shape [d_out, {C.shape[0]}]")
        if (lam is None) == (decay is None):
            raise ValueError("give exactly one of lam (constant lambda, shape [n]) and decay (input-dependent)")
        if lam is not None:
            require_tensor("lam", lam)
            require_ndim("lam", lam, 1, "n")
            if lam.shape[0] != n:
                raise ValueError(f"lam has {lam.shape[0]} entries; expected n={n} (one per neuron, rows of A)")
            require_finite("lam", lam)
        tensors = [A, B, C, E, D] + ([lam] if lam is not None else [])
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise ValueError(f"all RNN weights must be on one device; got {sorted(map(str, devices))}")
        self.A = _as_param("A", A, trainable)
        self.B = _as_param("B", B, trainable)
        self.lam = _as_param("lam", lam, trainable) if lam is not None else None
        self.C = _as_param("C", C, trainable)
        self.E = _as_param("E", E, trainable)
        self.D = _as_param("D", D, trainable)
        self.decay = decay
        self.real_output = real_output

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def num_neurons(self) -> int:
        """Size ``n`` of the recurrent state (complex neurons count once)."""
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1] - 1

    @property
    def num_gates(self) -> int:
        """Width ``m`` of the output gating (not part of the state)."""
        return self.C.shape[0]

    @property
    def d_out(self) -> int:
        return self.D.shape[0]

    @property
    def is_complex(self) -> bool:
        return any(p is not None and p.is_complex() for p in (self.A, self.B, self.lam, self.C, self.E, self.D))

    def weights(self) -> RNNWeights:
        return RNNWeights(self.A, self.B, self.lam, self.C, self.E, self.D)

    def extra_repr(self) -> str:
        lam = "input-dependent" if self.lam is None else ("complex" if self.lam.is_complex() else "real")
        return f"d={self.d}, n={self.num_neurons}, m={self.num_gates}, d_out={self.d_out}, lambda={lam}"

    # -- evaluation ----------------------------------------------------------------------------
    def _compute_dtype(self, x: Tensor) -> torch.dtype:
        dtype = x.dtype
        for p in (self.A, self.B, self.lam, self.C, self.E, self.D):
            if p is not None:
                dtype = torch.promote_types(dtype, p.dtype)
        return dtype

    def _check_input(self, x: object) -> Tensor:
        x = require_tensor("x", x, allow_complex=False)
        require_ndim("x", x, 3, "batch, time, d")
        if x.shape[2] != self.d:
            raise ValueError(f"x has d={x.shape[2]} features (last axis of shape {tuple(x.shape)}); "
                             f"expected d={self.d} (the RNN's A has d+1={self.d + 1} columns)")
        if x.device != self.A.device:
            raise ValueError(f"x is on {x.device} but the RNN weights are on {self.A.device}")
        require_finite("x", x)
        return x

    def lambdas(self, x: Tensor) -> Tensor:
        r"""$\lambda$ as ``[n]`` (constant) or ``[B, T, n]`` (input dependent)."""
        if self.lam is not None:
            return self.lam
        lam = self.decay(x)
        if not isinstance(lam, Tensor) or lam.shape != (*x.shape[:2], self.num_neurons):
            got = tuple(lam.shape) if isinstance(lam, Tensor) else type(lam).__name__
            raise ValueError(f"decay(x) must return lambda_t of shape {(*x.shape[:2], self.num_neurons)}; got {got}")
        return lam

    def forward(
        self,
        x: Inexact[Tensor, "batch time d"],
        state: Inexact[Tensor, "batch n"] | None = None,
        *,
        mode: str = "auto",
        return_state: bool = False,
    ):
        """Run the RNN on ``x`` ``[B, T, d]``. Returns ``y`` ``[B, T, d_out]``, or ``(y, h_T)`` when
        ``return_state``. ``state`` is the initial ``h_0`` ``[B, n]`` (zeros by default)."""
        x = self._check_input(x)
        dtype = self._compute_dtype(x)
        Bsz, T, _ = x.shape
        if state is None:
            h0 = torch.zeros(Bsz, self.num_neurons, dtype=dtype, device=x.device)
        else:
            require_tensor("state", state)
            if tuple(state.shape) != (Bsz, self.num_neurons):
                raise ValueError(f"state must have shape [batch, n] = {(Bsz, self.num_neurons)}; "
                                 f"got {tuple(state.shape)}")
            h0 = state.to(dtype)
        xt = augment(x.to(dtype))
        u = input_gate(self.A.to(dtype), self.B.to(dtype), xt)
        lam = self.lambdas(x).to(dtype)
        h, h_last = scan(lam, u, h0, mode)
        y = output_readout(self.C.to(dtype), self.E.to(dtype), self.D.to(dtype), h)
        if y.is_complex() and self.real_output:
            y = y.real
        return (y, h_last) if return_state else y
