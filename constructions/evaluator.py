r"""How a :class:`~constructions.rnn.GatedLinearRNN` call is evaluated: the path switch and the structure
cache.

The model is the template of Zucchet et al. 2023 (Sec. 3), Eqs. (1)–(4) of :mod:`constructions.rnn`, and
:meth:`GatedLinearRNN.template <constructions.rnn.GatedLinearRNN.template>` is its code. This module holds the
faster ways to compute the same function and the one rule that picks among them. The switch is the ``path``
argument of ``rnn(x, path=...)``:

==============  =======================================================================================
``path``        what runs
==============  =======================================================================================
``"loop"``      the model as written: Eq. (2) one step at a time (the naive reference; streaming)
``"scan"``      the model over super-chunks of time (:func:`~constructions.scan.super_chunk`), Eq. (2) by
                the blocked scan :func:`~constructions.scan.scan_chunked` (the step loop for <= 2 steps)
``"structured"`` the exact factored form of the weights (:mod:`constructions.structured`: gathers, and the
                chunked matmul form of :mod:`constructions.structured_attention` when the output gates pair
                memories with queries); a detached copy, so refused while a weight records a gradient
``"auto"``      the rule below (the default)
==============  =======================================================================================

**auto's rule.** ``"structured"`` when all of: no gradient is recorded (autograd off, or no weight, input
or decay requires one); the call is large, ``B * T * n >= STRUCTURE_MIN_WORK``, or a factored form of these
very weights is already cached; and the factored form saves work (:attr:`StructuredRNN.useful
<constructions.structured.StructuredRNN.useful>`). Otherwise ``"scan"``. All paths compute the same function;
they differ in the order of roundings (``docs/tolerance.md``).

The older keywords ``mode`` (``"loop" | "parallel" | "auto"``) and ``gating`` (``"auto" | "dense" |
"structured"``) name the same choices (:func:`resolve_path`): ``gating="structured"`` is
``path="structured"``; otherwise ``mode="loop"`` is ``"loop"``, ``gating="dense"`` is ``"scan"``, and the rest
is ``"auto"``.

**The cache cannot go stale.** The factored form is built once per RNN and dtype (detecting it costs
~1–3 ms) and kept in a :class:`StructureCache` with a copy of the weights it was built from. Every use
compares the weights with that copy bit for bit, so any change is seen: a replaced parameter, an in-place
update, and writes through ``.data`` (which bump no version counter). The comparison reads the weights once,
less than one time step of the template. :meth:`StructureCache.clear` drops the cache explicitly.
"""

from collections.abc import Sequence

import torch
from jaxtyping import Inexact
from torch import Tensor

from ._validation import require_finite, require_tensor
from .factored_decay import FactoredDecay
from .scan import MODES, _grad_needed, scan, super_chunk
from .structured import StructuredRNN, detect_structure

__all__ = [
    "PATHS",
    "GATINGS",
    "STRUCTURE_MIN_WORK",
    "resolve_path",
    "choose_path",
    "StructureCache",
    "structure_cache",
    "evaluate",
]

#: the values of ``path`` (module docstring)
PATHS = ("auto", "loop", "scan", "structured")
#: the older ``gating`` keyword: the template's dense matrices, their exact factored form, or chosen per call
GATINGS = ("auto", "dense", "structured")
#: ``path="auto"`` factors a not-yet-factored RNN only for calls with at least this many neuron-steps
#: (``B * T * n``): below it, detecting the structure (~1-3 ms) costs more than it saves (measured: break-even
#: near 5e5 on 2 CPU cores)
STRUCTURE_MIN_WORK = 1 << 20


def resolve_path(path: str | None, mode: str | None, gating: str | None) -> str:
    """The ``path`` of a call, from ``path`` or the older ``mode``/``gating`` keywords (module docstring)."""
    if path is not None:
        if mode is not None or gating is not None:
            raise ValueError(
                f"give path= or the older mode=/gating=, not both; got path={path!r}, mode={mode!r}, "
                f"gating={gating!r}"
            )
        if path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}; got {path!r}")
        return path
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be 'loop', 'parallel' or 'auto'; got {mode!r}")
    if gating is not None and gating not in GATINGS:
        raise ValueError(f"gating must be one of {GATINGS}; got {gating!r}")
    if gating == "structured":
        return "structured"
    if mode == "loop":
        return "loop"
    return "scan" if gating == "dense" else "auto"


def choose_path(path: str, *, work: int, grad: bool, cached: bool) -> str:
    """``"loop"``, ``"scan"`` or ``"structured"`` for a call (module docstring, auto's rule): ``work`` is
    ``B * T * n``, ``grad`` whether autograd records the call, ``cached`` whether a factored form of the
    current weights is cached. (Whether the factored form saves work is known only once it is built:
    :func:`evaluate`.)"""
    if path != "auto":
        return path
    return "structured" if not grad and (work >= STRUCTURE_MIN_WORK or cached) else "scan"


def _same_bits(a: Tensor, b: Tensor) -> bool:
    """Whether two tensors hold the same bit patterns (``-0.0`` differs from ``0.0``; NaN equals itself)."""
    if a.dtype != b.dtype or a.shape != b.shape or a.device != b.device:
        return False
    ra, rb = (torch.view_as_real(t) if t.is_complex() else t for t in (a, b))
    ints = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[ra.element_size()]
    return torch.equal(ra.view(ints), rb.view(ints))


class StructureCache:
    """The factored form of one RNN's weights at one dtype, valid while the weights are bit for bit the copy
    it was built from (module docstring), and the matmul forms of input-dependent decays that go with it."""

    def __init__(self) -> None:
        self._dtype: torch.dtype | None = None
        self._copy: tuple[Tensor | None, ...] | None = None
        self._plan: StructuredRNN | None = None
        #: matmul forms for input-dependent decays (:meth:`StructuredRNN.heads_for`), by the zero-decay
        #: pattern
        self.heads: dict = {}

    @property
    def built(self) -> bool:
        """Whether a factored form is held (for the weights as they were when it was built)."""
        return self._copy is not None

    def clear(self) -> None:
        """Forget the factored form (the next use rebuilds it)."""
        self._dtype, self._copy, self._plan, self.heads = None, None, None, {}

    def holds(self, weights: Sequence[Tensor | None], dtype: torch.dtype) -> bool:
        """Whether a factored form of exactly these weights at ``dtype`` is cached."""
        if self._copy is None or dtype != self._dtype or len(weights) != len(self._copy):
            return False
        return all(
            (c is None and w is None) or (c is not None and w is not None and _same_bits(c, w.detach()))
            for c, w in zip(self._copy, weights)
        )

    def get(self, weights: Sequence[Tensor | None], dtype: torch.dtype) -> StructuredRNN | None:
        """The factored form of ``weights`` (``A, B, lam, C, E, D``) at ``dtype``: the cached one when it was
        built from these very values, else a new one (``None`` when a weight is not finite)."""
        if not self.holds(weights, dtype):
            with torch.no_grad():
                copy = tuple(None if w is None else w.detach().clone() for w in weights)
                plan = detect_structure(*(None if w is None else w.to(dtype) for w in copy))
            self._dtype, self._copy, self._plan, self.heads = dtype, copy, plan, {}
        return self._plan


def structure_cache(rnn) -> StructureCache:
    """The :class:`StructureCache` of ``rnn`` (created on first use; copied with the RNN by
    ``copy.deepcopy``)."""
    cache = rnn.__dict__.get("_structure_cache")
    if not isinstance(cache, StructureCache):
        cache = rnn.__dict__["_structure_cache"] = StructureCache()
    return cache


def factored_decay(rnn, z: Tensor, real: torch.dtype) -> FactoredDecay | None:
    """The RNN's decay in factored form when it offers one (``decay.factored(z) -> (values [B, T, c], channel
    [n], const [n])``, as :class:`~constructions.variants.decay.InputDependentDecay` does), checked and cast
    like ``rnn.lambdas``; else ``None``."""
    fn = getattr(rnn.decay, "factored", None)
    if not callable(fn):
        return None
    out = fn(z)
    values, channel, const = out if isinstance(out, tuple) and len(out) == 3 else (None, None, None)
    n = rnn.num_neurons
    c = values.shape[-1] if isinstance(values, Tensor) and values.ndim == 3 else -1
    if (
        c < 0
        or values.shape[:2] != z.shape[:2]
        or not isinstance(channel, Tensor)
        or channel.shape != (n,)
        or channel.dtype != torch.long
        or not isinstance(const, Tensor)
        or const.shape != (n,)
        or (n and (int(channel.max()) >= c or int(channel.min()) < -1))
    ):
        raise ValueError(
            f"decay.factored(x) must return (values [B, T, c], channel [n] long in [-1, c), const [n]) "
            f"with B, T = {tuple(z.shape[:2])}, n = {n}; got "
            f"{tuple(getattr(values, 'shape', ()))}, {tuple(getattr(channel, 'shape', ()))}, "
            f"{tuple(getattr(const, 'shape', ()))}"
        )
    require_tensor("decay.factored(x) values", values)
    require_tensor("decay.factored(x) const", const)
    require_finite("decay(x) (lambda_t; a log-space gate of -inf must be exponentiated to 0 first)", values)
    require_finite("decay const (lambda of the constant neurons)", const)
    return FactoredDecay(values.to(real), channel.to(values.device), const.to(real))


def _scan_path(rnn, z: Tensor, lam: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
    """``path="scan"``: the model (``rnn.template``) over super-chunks of time with the blocked scan."""
    Bsz, T, _ = z.shape
    S = super_chunk(Bsz, max(rnn.num_neurons, rnn.num_gates), z.element_size(), T)
    parts, h = [], h0
    for t0 in range(0, T, S):
        lam_c = lam if lam.ndim == 1 else lam[:, t0 : t0 + S]
        yc, h = rnn.template(z[:, t0 : t0 + S], lam_c, h, scan=scan)
        parts.append(yc)
    y = torch.cat(parts, dim=1) if parts else z.new_zeros(Bsz, 0, rnn.d_out)
    return y, h


def evaluate(
    rnn,
    x: Inexact[Tensor, "batch time d"],
    h0: Inexact[Tensor, "batch n"],
    path: str,
    *,
    return_state: bool,
) -> tuple[Inexact[Tensor, "batch time d_out"], Inexact[Tensor, "batch n"] | None]:
    """Evaluate ``rnn`` on the checked input ``x`` from the state ``h0`` (already in the compute dtype) along
    ``path`` (one of :data:`PATHS`); returns ``(y, h_T)`` (``h_T`` may be ``None`` when not ``return_state``),
    ``y`` complex when the computation is (the caller takes the real part)."""
    dtype = h0.dtype
    z = rnn.features(x)
    if path == "loop":
        return rnn.template(z.to(dtype), rnn.lambdas_of_features(z, dtype), h0)
    weights = rnn.weights()
    if path == "structured" and _grad_needed(*weights):
        raise ValueError(
            "path='structured' evaluates a detached, factored copy of the weights, so no gradient "
            "would reach them; use path='scan' or 'auto' (the dense template) while training, or "
            "call under torch.no_grad()"
        )
    real = h0.real.dtype  # a real input or decay is not copied to complex at full length on the fast path
    factored = None  # an input-dependent decay shared by groups of neurons, never spread to [B, T, n]
    if rnn.lam is None and path != "scan" and not _grad_needed(z):
        factored = factored_decay(rnn, z, real)
    lam = None if factored is not None else rnn.lambdas_of_features(z, dtype)
    Bsz, T, _ = x.shape
    cache = structure_cache(rnn)
    grad = _grad_needed(z, lam, getattr(factored, "values", None), *weights)
    chosen = choose_path(
        path,
        work=Bsz * T * rnn.num_neurons,
        grad=grad,
        cached=path == "auto" and not grad and cache.holds(weights, dtype),
    )
    plan = cache.get(weights, dtype) if chosen == "structured" else None
    if plan is not None and path == "auto" and not plan.useful:
        plan = None
    if plan is None:
        if factored is not None:
            lam = factored.neurons()
        return _scan_path(rnn, z.to(dtype), lam, h0)
    lam_t = None if rnn.lam is not None else (lam if factored is None else factored)
    return plan.forward(
        z.to(real),
        h0,
        lam_t,
        scan_mode="parallel",
        return_state=return_state,
        real=rnn.real_output,
        heads_cache=cache.heads,
    )
