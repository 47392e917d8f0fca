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
Optional ``upstream``: a per-step feature layer $x_t \mapsto z_t$ applied *before* the template (feature
maps, normalised keys, ...; ``docs/variants/README.md``); the template then reads $\tilde z_t = [z_t; 1]$.

The stage functions :func:`input_gate`, :func:`output_readout` and :func:`recurrence_step` are
written only with ``@``, ``*`` and indexing, so the symbolic prover evaluates *the same code* on
NumPy object arrays of SymPy expressions.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from jaxtyping import Inexact
from torch import Tensor, nn

from ._validation import all_finite, require_finite, require_ndim, require_tensor
from .scan import MODES, _grad_needed, scan

__all__ = ["GatedLinearRNN", "RNNWeights", "input_gate", "output_readout", "recurrence_step", "augment", "GATINGS",
           "NumericalHazardWarning"]

#: evaluation of the gating stages: the template's dense matrices, their exact factored form, or chosen per call
GATINGS = ("auto", "dense", "structured")
#: ``gating="auto"`` factors a not-yet-factored RNN only for calls with at least this many neuron-steps
#: (``B * T * n``): below it, detecting the structure (~1-3 ms) costs more than it saves (measured: break-even near 5e5 on 2 CPU cores)
STRUCTURE_MIN_WORK = 1 << 20


class NumericalHazardWarning(RuntimeWarning):
    """The RNN's state or output overflowed to Inf/NaN (e.g. $|\\lambda| > 1$ over a long sequence)."""


def _warn_overflow(rnn, lam: Tensor, h_last: Tensor, T: int) -> None:
    """Report a non-finite state/output with the offending neurons, never silently (reliability issue)."""
    import warnings

    grow = (lam.abs() > 1).reshape(-1, lam.shape[-1]).any(0).nonzero()[:, 0].tolist()
    bad = ("not computed (return_state=False)" if h_last is None
           else (~torch.isfinite(h_last)).reshape(-1, h_last.shape[-1]).any(0).nonzero()[:, 0].tolist()[:20])
    lam_max = float(lam.abs().max()) if lam.numel() else 0.0
    warnings.warn(
        f"GatedLinearRNN: the output or state is not finite after T={T} steps; neurons with "
        f"|lambda| > 1: {grow[:20]} (max |lambda| = {lam_max:.6g}); neurons whose final state is Inf/NaN: "
        f"{bad}. Expected |lambda| <= 1, or a sequence short enough that |lambda|^T and the gates stay in "
        f"range; compare() fails non-finite outputs, it never passes them.",
        NumericalHazardWarning, stacklevel=_caller_stacklevel())


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package and torch (the user's
    ``rnn(x)`` line), however many ``nn.Module.__call__`` frames lie between."""
    import os
    import sys

    inside = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(torch.__file__)))
    frame, level = sys._getframe(1), 1  # frame 1: the function that calls warnings.warn (stacklevel 1)
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


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
    - ``upstream``: optional callable (usually an ``nn.Module``) ``x [B, T, d_in] -> z [B, T, d]`` computed per
      time step before the template; ``A`` then has ``d+1`` columns for ``z``. If it has an ``int``
      attribute ``d_in``, inputs are checked against it. ``None`` (default): the template reads ``x`` itself.
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
        upstream: Callable[[Tensor], Tensor] | None = None,
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
        if upstream is not None and not callable(upstream):
            raise TypeError(f"upstream must be callable (x [B, T, d_in] -> z [B, T, {dp1 - 1}]); "
                            f"got {type(upstream).__name__}")
        self.decay = decay
        self.real_output = real_output
        self.upstream = upstream

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def num_neurons(self) -> int:
        """Size ``n`` of the recurrent state (complex neurons count once)."""
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1] - 1

    @property
    def d_in(self) -> int | None:
        """Width of the layer's input: ``d``, or the upstream layer's ``d_in`` (``None`` if it declares none)."""
        if self.upstream is None:
            return self.d
        d_in = getattr(self.upstream, "d_in", None)
        return d_in if isinstance(d_in, int) else None

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
        up = "" if self.upstream is None else f", upstream d_in={self.d_in}"
        return f"d={self.d}, n={self.num_neurons}, m={self.num_gates}, d_out={self.d_out}, lambda={lam}{up}"

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
        if self.upstream is not None:
            if self.d_in is not None and x.shape[2] != self.d_in:
                raise ValueError(f"x has d={x.shape[2]} features (last axis of shape {tuple(x.shape)}); "
                                 f"expected d_in={self.d_in} (the input width of the RNN's upstream layer)")
        elif x.shape[2] != self.d:
            raise ValueError(f"x has d={x.shape[2]} features (last axis of shape {tuple(x.shape)}); "
                             f"expected d={self.d} (the RNN's A has d+1={self.d + 1} columns)")
        if x.device != self.A.device:
            raise ValueError(f"x is on {x.device} but the RNN weights are on {self.A.device}")
        require_finite("x", x)
        return x

    def features(self, x: Tensor) -> Tensor:
        """The template's input $z_t$: ``upstream(x)`` (checked to be ``[B, T, d]``), or ``x`` itself."""
        if self.upstream is None:
            return x
        z = self.upstream(x)
        if not isinstance(z, Tensor) or z.shape != (*x.shape[:2], self.d):
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"upstream(x) must return features of shape {(*x.shape[:2], self.d)} "
                             f"(the RNN's A has d+1={self.d + 1} columns); got {got}")
        return z

    def lambdas(self, x: Tensor) -> Tensor:
        r"""$\lambda$ as ``[n]`` (constant) or ``[B, T, n]`` (input dependent; the decay sees ``features(x)``)."""
        if self.lam is not None:
            return self.lam
        return self._decay_of(self.features(x))

    def _decay_of(self, x: Tensor) -> Tensor:
        lam = self.decay(x)
        if not isinstance(lam, Tensor) or lam.shape != (*x.shape[:2], self.num_neurons):
            got = tuple(lam.shape) if isinstance(lam, Tensor) else type(lam).__name__
            raise ValueError(f"decay(x) must return lambda_t of shape {(*x.shape[:2], self.num_neurons)}; got {got}")
        require_finite("decay(x) (lambda_t; a log-space gate of -inf must be exponentiated to 0 first)", lam)
        return lam

    def _factored_decay_of(self, z: Tensor, real: torch.dtype):
        """The decay in factored form (:class:`~constructions.structured.FactoredDecay`) when it offers one
        (``decay.factored(z) -> (values [B, T, c], channel [n], const [n])``, as
        :class:`~constructions.variants.decay.InputDependentDecay` does), checked and cast like :meth:`_decay_of`;
        else ``None``."""
        fn = getattr(self.decay, "factored", None)
        if not callable(fn):
            return None
        from .structured import FactoredDecay

        out = fn(z)
        values, channel, const = out if isinstance(out, tuple) and len(out) == 3 else (None, None, None)
        n = self.num_neurons
        c = values.shape[-1] if isinstance(values, Tensor) and values.ndim == 3 else -1
        if (c < 0 or values.shape[:2] != z.shape[:2] or not isinstance(channel, Tensor) or channel.shape != (n,)
                or channel.dtype != torch.long or not isinstance(const, Tensor) or const.shape != (n,)
                or (n and (int(channel.max()) >= c or int(channel.min()) < -1))):
            raise ValueError(f"decay.factored(x) must return (values [B, T, c], channel [n] long in [-1, c), const [n]) "
                             f"with B, T = {tuple(z.shape[:2])}, n = {n}; got "
                             f"{tuple(getattr(values, 'shape', ()))}, {tuple(getattr(channel, 'shape', ()))}, "
                             f"{tuple(getattr(const, 'shape', ()))}")
        require_tensor("decay.factored(x) values", values)
        require_tensor("decay.factored(x) const", const)
        require_finite("decay(x) (lambda_t; a log-space gate of -inf must be exponentiated to 0 first)", values)
        require_finite("decay const (lambda of the constant neurons)", const)
        return FactoredDecay(values.to(real), channel.to(values.device), const.to(real))

    def _needs_grad(self, *inputs: Tensor | None) -> bool:
        """Whether autograd records this call (then the dense template runs: it is the model for training)."""
        return _grad_needed(*inputs, self.A, self.B, self.lam, self.C, self.E, self.D)

    def _structure_key(self, dtype: torch.dtype) -> tuple:
        ws = (self.A, self.B, self.lam, self.C, self.E, self.D)
        return (dtype, tuple((id(w), w.data_ptr(), w._version) if w is not None else None for w in ws))

    def structure(self, dtype: torch.dtype | None = None):
        r"""The exact factored form of the weights (:class:`~constructions.structured.StructuredRNN`) at ``dtype``
        (default: the weights' promoted dtype), or ``None`` when a weight is not finite. Cached per dtype and
        rebuilt when any weight is replaced or modified in place."""
        dtype = dtype or self._compute_dtype(self.A.new_zeros(0))
        key = self._structure_key(dtype)
        cache = self.__dict__.setdefault("_structure_cache", {})
        if key not in cache:
            from .structured import detect_structure

            with torch.no_grad():
                cache.clear()
                cache[key] = detect_structure(*(None if w is None else w.detach().to(dtype) for w in self.weights()))
        return cache[key]

    def forward(
        self,
        x: Inexact[Tensor, "batch time d"],
        state: Inexact[Tensor, "batch n"] | None = None,
        *,
        mode: str = "auto",
        return_state: bool = False,
        gating: str = "auto",
    ):
        """Run the RNN on ``x`` ``[B, T, d]``. Returns ``y`` ``[B, T, d_out]``, or ``(y, h_T)`` when
        ``return_state``. ``state`` is the initial ``h_0`` ``[B, n]`` (zeros by default).

        ``mode``: ``"loop"`` (the step loop: the naive reference), ``"parallel"`` (the chunked scan of
        :mod:`constructions.scan`, in time chunks of bounded memory) or ``"auto"`` (parallel unless ``T <= 2``).
        ``gating``: ``"dense"`` (the template's matrices as given), ``"structured"`` (the exact factored form of
        :mod:`constructions.structured`: gathers, and the chunked matmul form of
        :mod:`constructions.structured_attention` when the gates pair memories with queries) or ``"auto"``:
        structured in parallel mode when no gradient is recorded, the call is large enough
        (``B*T*n >= STRUCTURE_MIN_WORK`` or the factored form is cached) and it saves work; dense otherwise.
        ``mode="loop"`` with ``gating="auto"`` is the dense reference path. The factored form is a detached copy
        of the weights: ``gating="structured"`` raises ``ValueError`` while a weight requires a gradient."""
        x = self._check_input(x)
        if mode not in MODES:
            raise ValueError(f"mode must be 'loop', 'parallel' or 'auto'; got {mode!r}")
        if gating not in GATINGS:
            raise ValueError(f"gating must be one of {GATINGS}; got {gating!r}")
        dtype = self._compute_dtype(x)
        Bsz, T, _ = x.shape
        if state is None:
            h0 = torch.zeros(Bsz, self.num_neurons, dtype=dtype, device=x.device)
        else:
            require_tensor("state", state)
            if tuple(state.shape) != (Bsz, self.num_neurons):
                raise ValueError(f"state must have shape [batch, n] = {(Bsz, self.num_neurons)}; "
                                 f"got {tuple(state.shape)}")
            if state.device != x.device:
                raise ValueError(f"state is on {state.device} but x is on {x.device}")
            if state.is_complex() and not dtype.is_complex:
                raise TypeError(f"state is complex ({state.dtype}) but this RNN computes in {dtype}; casting would "
                                "discard the imaginary part. Expected a real state (or complex RNN weights)")
            h0 = state.to(dtype)
        z = self.features(x)
        real = h0.real.dtype  # a real input or decay is not copied to complex at full length on the fast path
        parallel = mode == "parallel" or (mode == "auto" and T > 2)
        if gating == "structured" and self._needs_grad():
            raise ValueError("gating='structured' evaluates a detached, factored copy of the weights, so no gradient "
                             "would reach them; use gating='dense' or 'auto' (the dense template) while training, "
                             "or call under torch.no_grad()")
        lam = self.lam.to(dtype) if self.lam is not None else None
        factored = None  # an input-dependent decay shared by groups of neurons, never spread to [B, T, n]
        if lam is None and parallel and gating != "dense" and not self._needs_grad(z):
            factored = self._factored_decay_of(z, real)
        if lam is None and factored is None:
            lam = self._decay_of(z).to(real)
        plan = None
        if gating == "structured" or (
                gating == "auto" and parallel and not self._needs_grad(z, lam, getattr(factored, "values", None))
                and (Bsz * T * self.num_neurons >= STRUCTURE_MIN_WORK
                     or self._structure_key(dtype) in self.__dict__.get("_structure_cache", {}))):
            plan = self.structure(dtype)
            if plan is not None and gating == "auto" and not plan.useful:
                plan = None
        if plan is None and factored is not None:
            lam, factored = factored.neurons(), None
        if plan is not None:  # the plan casts x chunk by chunk
            lam_t = None if self.lam is not None else (lam if factored is None else factored)
            y, h_last = plan.forward(z.to(real), h0, lam_t, scan_mode="parallel" if parallel else "loop",
                                     return_state=return_state, real=self.real_output)
        elif parallel:
            y, h_last = self._dense_chunked(z.to(dtype), lam, h0)
        else:
            xt = augment(z.to(dtype))
            u = input_gate(self.A.to(dtype), self.B.to(dtype), xt)
            h, h_last = scan(lam, u, h0, "loop")
            y = output_readout(self.C.to(dtype), self.E.to(dtype), self.D.to(dtype), h)
        if y.is_complex() and self.real_output:
            y = y.real
        if not (all_finite(y) and (h_last is None or all_finite(h_last))):
            _warn_overflow(self, lam if factored is None else factored.neurons(), h_last, T)
        return (y, h_last) if return_state else y

    def _dense_chunked(self, x: Tensor, lam: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        """The dense template with :func:`~constructions.scan.scan_chunked`, over time chunks of bounded memory."""
        from .structured import super_chunk

        dtype = x.dtype
        A, B, C, E, D = (w.to(dtype) for w in (self.A, self.B, self.C, self.E, self.D))
        Bsz, T, _ = x.shape
        S = super_chunk(Bsz, max(self.num_neurons, self.num_gates), x.element_size(), T)
        parts, h = [], h0
        for t0 in range(0, T, S):
            xc = x[:, t0:t0 + S]
            u = input_gate(A, B, augment(xc))
            lam_c = lam if lam.ndim == 1 else lam[:, t0:t0 + S]
            hc, h = scan(lam_c, u, h, "parallel" if xc.shape[1] > 2 else "loop")
            parts.append(output_readout(C, E, D, hc))
        y = torch.cat(parts, dim=1) if parts else x.new_zeros(Bsz, 0, self.d_out)
        return y, h
