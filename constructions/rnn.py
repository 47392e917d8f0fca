r"""The gated diagonal linear RNN of Zucchet et al. 2023 (the paper's template, Sec. 3, Fig. 1).

With the augmented input $\tilde x_t = [x_t; 1]$ (the appended constant lets a gate send a *linear*
function of the input, i.e. a query, to a neuron), the model is four equations:

$$
\begin{aligned}
u_t &= (A\tilde x_t)\odot(B\tilde x_t) && (1)\ \text{input gating } (W^{in}_x, W^{in}_g)\\
h_t &= \lambda\odot h_{t-1} + u_t && (2)\ \text{diagonal linear recurrence, } \lambda\in\mathbb R^n
  \text{ or } \mathbb C^n\\
g_t &= (C h_t)\odot(E h_t) && (3)\ \text{output gating } (W^{out}_x, W^{out}_g)\\
y_t &= D g_t && (4)\ \text{linear readout}
\end{aligned}
$$

Shapes: ``A, B: [n, d+1]``, ``lam: [n]``, ``C, E: [m, n]``, ``D: [d_out, m]``. With complex
parameters the output is $\mathrm{Re}(D g_t)$ by default (LRU-style real readout).
:meth:`GatedLinearRNN.template` is these equations in code, each line labelled with its number; the faster
evaluations of the same function, and the ``path=`` switch that picks one, are in
:mod:`constructions.evaluator`.

Two extensions beyond the paper (``docs/variants/README.md``): ``decay`` replaces the constant $\lambda$ by
an input-dependent $\lambda_t = \mathrm{decay}(x_t)$ (the Mamba-2/GLA family,
``docs/variants/data-dependent-decay.md``); the constant-$\lambda$ model is the paper's case. ``upstream`` is
a per-step feature layer $x_t \mapsto z_t$ applied *before* the template (feature maps, normalised keys, ...);
the template then reads $\tilde z_t = [z_t; 1]$.

The stage functions :func:`input_gate`, :func:`recurrence_step`, :func:`output_gate`, :func:`readout` (and
:func:`output_readout`, Eqs. (3)–(4) together) are written only with ``@``, ``*`` and indexing, so the
symbolic prover evaluates *the same code* on NumPy object arrays of SymPy expressions.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from jaxtyping import Inexact
from torch import Tensor, nn

from ._validation import all_finite, require_finite, require_ndim, require_tensor
from .evaluator import GATINGS, PATHS, STRUCTURE_MIN_WORK, evaluate, resolve_path, structure_cache
from .scan import _grad_needed

__all__ = [
    "GatedLinearRNN",
    "RNNWeights",
    "input_gate",
    "recurrence_step",
    "output_gate",
    "readout",
    "output_readout",
    "augment",
    "PATHS",
    "GATINGS",
    "STRUCTURE_MIN_WORK",
    "NumericalHazardWarning",
]


class NumericalHazardWarning(RuntimeWarning):
    """The RNN's state or output overflowed to Inf/NaN (e.g. $|\\lambda| > 1$ over a long sequence)."""


def _warn_overflow(rnn, lam: Tensor, h_last: Tensor, T: int) -> None:
    """Report a non-finite state/output with the offending neurons, never silently."""
    import warnings  # noqa: PLC0415 (lazy: only a failing call pays for it)

    grow = (lam.abs() > 1).reshape(-1, lam.shape[-1]).any(0).nonzero()[:, 0].tolist()
    bad = (
        "not computed (return_state=False)"
        if h_last is None
        else (~torch.isfinite(h_last)).reshape(-1, h_last.shape[-1]).any(0).nonzero()[:, 0].tolist()[:20]
    )
    lam_max = float(lam.abs().max()) if lam.numel() else 0.0
    warnings.warn(
        f"GatedLinearRNN: the output or state is not finite after T={T} steps; neurons with "
        f"|lambda| > 1: {grow[:20]} (max |lambda| = {lam_max:.6g}); neurons whose final state is Inf/NaN: "
        f"{bad}. Expected |lambda| <= 1, or a sequence short enough that |lambda|^T and the gates stay in "
        f"range; compare() fails non-finite outputs, it never passes them.",
        NumericalHazardWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package and torch (the user's
    ``rnn(x)`` line), however many ``nn.Module.__call__`` frames lie between."""
    import os  # noqa: PLC0415 (lazy: only a failing call pays for it)
    import sys  # noqa: PLC0415 (lazy: only a failing call pays for it)

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
    r"""Eq. (1), $u = (A\tilde x)\odot(B\tilde x)$; ``x_tilde``: ``[..., d+1]`` → ``[..., n]``."""
    return (x_tilde @ A.T) * (x_tilde @ B.T)


def recurrence_step(lam, h_prev, u):
    r"""Eq. (2), $h_t = \lambda\odot h_{t-1} + u_t$."""
    return lam * h_prev + u


def output_gate(C, E, h):
    r"""Eq. (3), $g = (C h)\odot(E h)$; ``h``: ``[..., n]`` → ``[..., m]``."""
    return (h @ C.T) * (h @ E.T)


def readout(D, g):
    r"""Eq. (4), $y = D g$; ``g``: ``[..., m]`` → ``[..., d_out]``."""
    return g @ D.T


def output_readout(C, E, D, h):
    r"""Eqs. (3)–(4), $y = D\,[(C h)\odot(E h)]$; ``h``: ``[..., n]`` → ``[..., d_out]``."""
    return readout(D, output_gate(C, E, h))


def _as_param(name: str, value: object, trainable: bool) -> nn.Parameter:
    t = require_tensor(name, value)
    return nn.Parameter(t, requires_grad=trainable)


class GatedLinearRNN(nn.Module):
    r"""Gated diagonal linear RNN (Zucchet et al. 2023, Sec. 3): Eqs. (1)–(4) of the module docstring, input
    gating, $h_t=\lambda\odot h_{t-1}+u_t$, output gating, linear readout (:meth:`template`).

    **Arguments**

    - ``A``, ``B``: ``[n, d+1]`` input-gate branches (last column multiplies the appended 1).
    - ``lam``: ``[n]`` real or complex $\lambda$; ``None`` when ``decay`` is given.
    - ``C``, ``E``: ``[m, n]`` output-gate branches; ``D``: ``[d_out, m]`` readout.
    - ``decay``: optional callable ``x [B, T, d] -> lambda_t [B, T, n]`` (input-dependent decay).
    - ``real_output``: take $\mathrm{Re}(y)$ when the computation is complex (default ``True``).
    - ``upstream``: optional callable (usually an ``nn.Module``) ``x [B, T, d_in] -> z [B, T, d]`` computed
      per time step before the template; ``A`` then has ``d+1`` columns for ``z``. If it has an ``int``
      attribute ``d_in``, inputs are checked against it. ``None`` (default): the template reads ``x`` itself.
    - ``trainable``: make the six arrays trainable ``nn.Parameter`` s (default ``False``).

    ``rnn(x)`` maps ``[B, T, d]`` to ``[B, T, d_out]``; ``rnn(x, state=h0, return_state=True)``
    streams (returns ``(y, h_T)``); ``path`` selects how it is evaluated (:mod:`constructions.evaluator`).
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
        for name, w, axes in (
            ("A", A, "n, d+1"),
            ("B", B, "n, d+1"),
            ("C", C, "m, n"),
            ("E", E, "m, n"),
            ("D", D, "d_out, m"),
        ):
            require_tensor(name, w)
            require_ndim(name, w, 2, axes)
        if A.shape != B.shape:
            raise ValueError(
                f"A and B (input-gate branches) must have one shape [n, d+1]; got {tuple(A.shape)} "
                f"and {tuple(B.shape)}"
            )
        n, dp1 = A.shape
        if dp1 < 2:
            raise ValueError(
                f"A has {dp1} columns; expected d+1 >= 2 (input dimension d plus the appended 1)"
            )
        if C.shape != E.shape:
            raise ValueError(
                f"C and E (output-gate branches) must have one shape [m, n]; got {tuple(C.shape)} "
                f"and {tuple(E.shape)}"
            )
        if C.shape[1] != n:
            raise ValueError(
                f"C has {C.shape[1]} columns but there are n={n} neurons (rows of A); expected "
                f"C, E of shape [m, {n}]"
            )
        if D.shape[1] != C.shape[0]:
            raise ValueError(
                f"D has {D.shape[1]} columns but there are m={C.shape[0]} output-gate units "
                f"(rows of C); expected D of shape [d_out, {C.shape[0]}]"
            )
        if (lam is None) == (decay is None):
            raise ValueError(
                "give exactly one of lam (constant lambda, shape [n]) and decay (input-dependent)"
            )
        if lam is not None:
            require_tensor("lam", lam)
            require_ndim("lam", lam, 1, "n")
            if lam.shape[0] != n:
                raise ValueError(
                    f"lam has {lam.shape[0]} entries; expected n={n} (one per neuron, rows of A)"
                )
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
            raise TypeError(
                f"upstream must be callable (x [B, T, d_in] -> z [B, T, {dp1 - 1}]); "
                f"got {type(upstream).__name__}"
            )
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
        """Width of the layer's input: ``d``, or the upstream layer's ``d_in`` (``None`` if it declares
        none)."""
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
        return any(
            p is not None and p.is_complex() for p in (self.A, self.B, self.lam, self.C, self.E, self.D)
        )

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
                raise ValueError(
                    f"x has d={x.shape[2]} features (last axis of shape {tuple(x.shape)}); "
                    f"expected d_in={self.d_in} (the input width of the RNN's upstream layer)"
                )
        elif x.shape[2] != self.d:
            raise ValueError(
                f"x has d={x.shape[2]} features (last axis of shape {tuple(x.shape)}); "
                f"expected d={self.d} (the RNN's A has d+1={self.d + 1} columns)"
            )
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
            raise ValueError(
                f"upstream(x) must return features of shape {(*x.shape[:2], self.d)} "
                f"(the RNN's A has d+1={self.d + 1} columns); got {got}"
            )
        return z

    def lambdas(self, x: Tensor) -> Tensor:
        r"""$\lambda$ as ``[n]`` (constant) or ``[B, T, n]`` (input dependent; the decay sees
        ``features(x)``)."""
        if self.lam is not None:
            return self.lam
        return self._decay_of(self.features(x))

    def lambdas_of_features(self, z: Tensor, dtype: torch.dtype) -> Tensor:
        r"""$\lambda$ for the template inputs ``z``, in the compute dtype ``dtype`` (an input-dependent decay
        is kept real when it is: a real $\lambda_t$ is never copied to complex at full length)."""
        if self.lam is not None:
            return self.lam.to(dtype)
        return self._decay_of(z).to(dtype.to_real())

    def _decay_of(self, x: Tensor) -> Tensor:
        lam = self.decay(x)
        if not isinstance(lam, Tensor) or lam.shape != (*x.shape[:2], self.num_neurons):
            got = tuple(lam.shape) if isinstance(lam, Tensor) else type(lam).__name__
            raise ValueError(
                f"decay(x) must return lambda_t of shape {(*x.shape[:2], self.num_neurons)}; got {got}"
            )
        require_finite("decay(x) (lambda_t; a log-space gate of -inf must be exponentiated to 0 first)", lam)
        return lam

    def _needs_grad(self, *inputs: Tensor | None) -> bool:
        """Whether autograd records this call (then the dense template runs: it is the model for training)."""
        return _grad_needed(*inputs, self.A, self.B, self.lam, self.C, self.E, self.D)

    def structure(self, dtype: torch.dtype | None = None):
        r"""The exact factored form of the weights (:class:`~constructions.structured.StructuredRNN`) at
        ``dtype`` (default: the weights' promoted dtype), or ``None`` when a weight is not finite. Cached
        (:class:`~constructions.evaluator.StructureCache`): rebuilt whenever a weight differs in any bit from
        the copy it was built from, however it was changed (``.data`` writes included)."""
        dtype = dtype or self._compute_dtype(self.A.new_zeros(0))
        return structure_cache(self).get(self.weights(), dtype)

    def template(
        self,
        z: Inexact[Tensor, "batch time d"],
        lam: Inexact[Tensor, " n"] | Inexact[Tensor, "batch time n"],
        h0: Inexact[Tensor, "batch n"],
        *,
        scan: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
    ) -> tuple[Inexact[Tensor, "batch time d_out"], Inexact[Tensor, "batch n"]]:
        r"""The model: Eqs. (1)–(4) of Zucchet et al. 2023, Sec. 3 (module docstring) on the template's inputs
        ``z`` (``x``, or ``upstream(x)``) in the compute dtype, from the state ``h0``; returns ``(y, h_T)``
        with ``y`` complex when the computation is. Eq. (2) runs one step at a time, or by ``scan(lam, u, h0)
        -> (h, h_T)``, one of the exact re-associations of :mod:`constructions.scan`."""
        A, B, C, E, D = (w.to(h0.dtype) for w in (self.A, self.B, self.C, self.E, self.D))
        u = input_gate(A, B, augment(z))  # (1)  u_t = (A x~_t) * (B x~_t)
        if scan is None:  # (2)  h_t = lam * h_{t-1} + u_t, step by step
            h, states = h0, []
            for t in range(z.shape[1]):
                h = recurrence_step(lam if lam.ndim == 1 else lam[:, t], h, u[:, t])
                states.append(h)
            hs = torch.stack(states, dim=1) if states else u.new_zeros(u.shape)
        else:
            hs, h = scan(lam, u, h0)
        g = output_gate(C, E, hs)  # (3)  g_t = (C h_t) * (E h_t)
        return readout(D, g), h  # (4)  y_t = D g_t

    def _initial_state(self, x: Tensor, state: object, dtype: torch.dtype) -> Tensor:
        Bsz = x.shape[0]
        if state is None:
            return torch.zeros(Bsz, self.num_neurons, dtype=dtype, device=x.device)
        require_tensor("state", state)
        if tuple(state.shape) != (Bsz, self.num_neurons):
            raise ValueError(
                f"state must have shape [batch, n] = {(Bsz, self.num_neurons)}; got {tuple(state.shape)}"
            )
        if state.device != x.device:
            raise ValueError(f"state is on {state.device} but x is on {x.device}")
        require_finite("state (the initial h_0)", state)
        if state.is_complex() and not dtype.is_complex:
            raise TypeError(
                f"state is complex ({state.dtype}) but this RNN computes in {dtype}; casting would "
                "discard the imaginary part. Expected a real state (or complex RNN weights)"
            )
        return state.to(dtype)

    def forward(
        self,
        x: Inexact[Tensor, "batch time d"],
        state: Inexact[Tensor, "batch n"] | None = None,
        *,
        path: str | None = None,
        return_state: bool = False,
        mode: str | None = None,
        gating: str | None = None,
    ):
        """Run the RNN on ``x`` ``[B, T, d]``. Returns ``y`` ``[B, T, d_out]``, or ``(y, h_T)`` when
        ``return_state``. ``state`` is the initial ``h_0`` ``[B, n]`` (zeros by default).

        ``path`` (:mod:`constructions.evaluator`): ``"loop"`` (:meth:`template` step by step: the naive
        reference), ``"scan"`` (the template over time chunks with the blocked scan), ``"structured"`` (the
        exact factored form; refused while a weight records a gradient) or ``"auto"`` (default): structured
        when no gradient is recorded, the call is large (``B*T*n >= STRUCTURE_MIN_WORK``) or the factored form
        of these weights is cached, and it saves work; scan otherwise. The older ``mode``/``gating`` keywords
        name the same choices (:func:`~constructions.evaluator.resolve_path`). Weights, ``x`` and ``state``
        must be finite (``ValueError`` otherwise); an overflow during the call warns
        (:class:`NumericalHazardWarning`)."""
        x = self._check_input(x)
        # bad weights are an error here, not an overflow warning later
        for name in ("A", "B", "lam", "C", "E", "D"):
            if getattr(self, name) is not None:
                require_finite(f"GatedLinearRNN.{name}", getattr(self, name))
        path = resolve_path(path, mode, gating)
        h0 = self._initial_state(x, state, self._compute_dtype(x))
        if path == "loop":  # the model itself
            z = self.features(x)
            y, h_last = self.template(z.to(h0.dtype), self.lambdas_of_features(z, h0.dtype), h0)
        else:  # the same function, evaluated faster (constructions.evaluator)
            y, h_last = evaluate(self, x, h0, path, return_state=return_state)
        if y.is_complex() and self.real_output:
            y = y.real
        if not (all_finite(y) and (h_last is None or all_finite(h_last))):
            _warn_overflow(self, self.lambdas(x), h_last, x.shape[1])
        return (y, h_last) if return_state else y
