r"""Reusable properties of layers claimed to implement linear self-attention, and of the gated RNN template.

Zucchet et al. 2023 (arXiv 2309.01775), Sec. 3: a gated diagonal linear RNN can compute causal linear
self-attention (LSA) exactly. A *target* (:class:`LayerTarget`) is anything that, given an LSA, returns a
layer ``[B, T, d] -> [B, T, d_out]`` claimed to compute it: the paper's constructions
(:func:`construction_target`), or a user's own implementation (:func:`user_target`). Each ``check_*``
function below states one property, evaluates it on concrete tensors, and raises
:class:`PropertyFailure` (an ``AssertionError``) with the error, the bound, the worst position and a
description of the case when it does not hold; it returns the
:class:`~constructions.tolerance.ComparisonResult`
otherwise. Hypothesis drives them in ``properties/test_lsa_layer.py`` (run with ``pytest --pyargs
properties``).

Properties of a target (any layer):

- :func:`check_equals_lsa` — the layer equals the float64 LSA within $\gamma_n M + n\eta$;
- :func:`check_exact_on_integers` — on small-integer weights and inputs (float64, no rounding happens),
  the layer equals the LSA *exactly*;
- :func:`check_causal` — changing $x_{t+1..T}$ leaves $y_{1..t}$ unchanged;
- :func:`check_batch_independent` — each sequence's output ignores the rest of the batch and its order.

Properties of a :class:`~constructions.GatedLinearRNN` (any weights, not only constructions):

- :func:`check_loop_equals_parallel` — the step loop equals the parallel scan;
- :func:`check_streaming` — running in chunks with the carried state equals one pass;
- :func:`check_neuron_permutation` — permuting neurons leaves the function unchanged;
- :func:`check_branch_rescaling` — one gate branch times $c$, the other times $1/c$, leaves it unchanged.

Comparisons between two candidates use $2\gamma_n M$ (each is within $\gamma_n M$ of the exact value).
"""

import contextlib
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from constructions import GatedLinearRNN, LinearSelfAttention, lsa_to_rnn
from constructions.contract import hook
from constructions.invariances import permute_neurons, rescale_input_branch, rescale_output_branches
from constructions.tolerance import ComparisonResult, compare, error_bound

from .counterexamples import write_property_counterexample
from .magnitudes import (
    cast_lsa,
    lsa_budget,
    lsa_magnitude,
    rnn_budget,
    rnn_magnitude,
    rnn_state_magnitude,
    to_cpu64,
)

__all__ = [
    "LayerTarget",
    "PropertyFailure",
    "check_batch_independent",
    "check_branch_rescaling",
    "check_causal",
    "check_empty_sequence",
    "check_equals_lsa",
    "check_exact_on_integers",
    "check_loop_equals_parallel",
    "check_neuron_permutation",
    "check_streaming",
    "check_variant",
    "construction_target",
    "describe_lsa",
    "user_target",
]


class PropertyFailure(AssertionError):
    """A property does not hold; the message says which, by how much, where, and for which case."""


def describe_lsa(lsa) -> str:
    """One line naming the LSA's sizes and weight statistics (for failure messages)."""
    ws = {k: getattr(lsa, k) for k in ("W_Q", "W_K", "W_V", "W_O") if getattr(lsa, k) is not None}
    stats = ", ".join(f"|{k}|max={float(v.abs().max()):.3g}" for k, v in ws.items())
    return (
        f"LSA(H={lsa.heads}, d={lsa.d}, d_k={lsa.d_k}, d_v={lsa.d_v}, d_out={lsa.d_out}, "
        f"W_O={'yes' if lsa.W_O is not None else 'no'}; {stats}; dtype={lsa.W_Q.dtype})"
    )


@dataclass(frozen=True)
class LayerTarget:
    """A layer under test.

    ``build(lsa)`` receives the LSA (weights already cast to ``dtype`` on ``device``) and returns a callable
    ``x [B, T, d] -> y [B, T, d_out]`` claimed to compute it. With ``fixed_lsa``, the layer implements that
    one LSA (``build`` then ignores the drawn one and the suite draws only inputs). ``budget(lsa, T, layer)``
    is the rounding budget $n$ granted to the layer (default: :func:`properties.magnitudes.lsa_budget`, the
    direct construction's, or the RNN's own sizes when the layer is a ``GatedLinearRNN``).
    """

    name: str
    build: Callable
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    fixed_lsa: object = None
    exact: bool = False  # claims exact integer arithmetic (our constructions do; most user layers need not)
    budget: Callable | None = None
    info: dict = field(default_factory=dict)

    def layer_for(self, lsa):
        lsa = self.fixed_lsa if self.fixed_lsa is not None else lsa
        return self.build(cast_lsa(lsa, self.dtype, self.device))

    def n(self, lsa, T: int, layer) -> int:
        if self.budget is not None:
            return int(self.budget(lsa, T, layer))

        if isinstance(layer, GatedLinearRNN):
            return lsa_budget(lsa, T, num_neurons=layer.num_neurons, num_gates=layer.num_gates)
        return lsa_budget(lsa, T)

    def run(self, layer, x: Tensor, **kw) -> Tensor:
        """Call ``layer`` on ``x`` cast to the target's dtype and device; check the output's type and
        shape."""
        y = layer(x.to(device=self.device, dtype=self.dtype, copy=True), **kw)  # a copy: x is reused
        if isinstance(y, tuple):
            y = y[0]
        if not isinstance(y, Tensor):
            raise PropertyFailure(
                f"{self.name}: the layer returned {type(y).__name__}; expected a torch.Tensor [B, T, d_out]"
            )
        return y


def construction_target(
    method: str = "direct", *, dtype: torch.dtype = torch.float64, device: str = "cpu", mode: str = "auto"
) -> LayerTarget:
    """The paper's construction ``lsa_to_rnn(lsa, method)`` as a target (``mode``: the RNN's forward path)."""

    def build(lsa):
        return lsa_to_rnn(lsa, method)

    return LayerTarget(
        f"lsa_to_rnn(method={method!r})",
        build,
        dtype,
        device,
        exact=True,
        info={"method": method, "mode": mode},
    )


def user_target(
    build: Callable,
    *,
    name: str = "user layer",
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    fixed_lsa=None,
    exact: bool = False,
    budget: Callable | None = None,
    info: dict | None = None,
) -> LayerTarget:
    """A user's layer factory ``lsa -> layer`` (or a fixed layer with ``fixed_lsa``) as a target. ``info``:
    ``{"layer": "MODULE:ATTR"}`` names it in counterexample files, so a failure replays in a fresh process."""
    if not callable(build):
        raise TypeError(f"build must be callable (lsa -> layer); got {type(build).__name__}")
    return LayerTarget(name, build, dtype, device, fixed_lsa, exact, budget, dict(info or {}))


# -- helpers -------------------------------------------------------------------------------------
def _check_shape(target: LayerTarget, y: Tensor, expected: tuple[int, ...], what: str) -> None:
    if tuple(y.shape) != expected:
        raise PropertyFailure(
            f"{target.name}: {what} has shape {tuple(y.shape)}; expected [B, T, d_out] = {expected}"
        )


_WRITE = [True]


@contextlib.contextmanager
def no_counterexample_files():
    """Within this block failures write no counterexample file (a replay must not overwrite its own input)."""
    _WRITE.append(False)
    try:
        yield
    finally:
        _WRITE.pop()


def _record(prop: str, target, lsa, x, res, message: str, extra: dict | None = None) -> str:
    """Write the failing case to a counterexample file; the lines that name it and replay it (or '')."""
    if not _WRITE[-1] or target is None:
        return ""
    path = write_property_counterexample(prop, target, lsa, x, res, extra_inputs=extra, message=message)
    if path is None:
        return ""
    layer = target.info.get("layer")
    imp = f" --import {layer.rsplit(':', 1)[0]}" if layer else ""
    return (
        f"\n  exact weights and inputs: {path}"
        f"\n  replay (fresh process): python -m equivalence replay {path}{imp}"
    )


def _fail(prop: str, res, case: str, *, record: tuple | None = None) -> None:
    """Raise :class:`PropertyFailure` when ``res`` failed; ``record = (name, target, lsa, x[, extra])`` also
    writes the counterexample file and prints its replay command."""
    if not res.passed:
        msg = f"{prop} does not hold: {res.message}\n  case: {case}"
        raise PropertyFailure(msg + (_record(*record[:4], res, msg, *record[4:]) if record else ""))


def _compare(candidate, reference, M, n, dtype, label):
    return compare(to_cpu64(candidate), to_cpu64(reference), M, n=n, dtype=dtype, label=label)


def _label(kw: dict) -> str:
    return f" (mode={kw['mode']})" if kw else ""


def _modes(target: LayerTarget, layer) -> list[dict]:
    if isinstance(layer, GatedLinearRNN):
        mode = target.info.get("mode", "auto")
        return [{"mode": "loop"}, {"mode": "parallel"}] if mode == "both" else [{"mode": mode}]
    return [{}]


# -- properties of a target ----------------------------------------------------------------------
def check_equals_lsa(target: LayerTarget, lsa, x: Float[Tensor, "batch time d"]):
    """The layer equals the float64 LSA within the tolerance model (each forward path of an RNN layer)."""
    lsa = target.fixed_lsa if target.fixed_lsa is not None else lsa
    ref, M = lsa(x), lsa_magnitude(lsa, x)  # the reference first, from weights the layer never sees
    layer = target.layer_for(lsa)
    n = target.n(lsa, x.shape[1], layer)
    res = None
    for kw in _modes(target, layer):
        y = target.run(layer, x, **kw)
        _check_shape(target, y, tuple(ref.shape), "the output")
        res = _compare(y, ref, M, n, target.dtype, f"{target.name}{_label(kw)}")
        _fail(
            "construction equals LSA",
            res,
            f"{describe_lsa(lsa)}; x {tuple(x.shape)}; {target.dtype} on {target.device}",
            record=("equals_lsa", target, lsa, x),
        )
    return res


def check_exact_on_integers(target: LayerTarget, lsa, x: Float[Tensor, "batch time d"]):
    """On integer weights and inputs whose every intermediate value is an integer below $2^{53}$, float64
    evaluation is exact: the layer must equal the LSA with no tolerance at all (the sharpest detector)."""
    ref = lsa(x)  # before the layer is built (isolation: the factory gets a copy)
    layer = target.layer_for(lsa)
    for kw in _modes(target, layer):
        y = to_cpu64(target.run(layer, x, **kw))
        _check_shape(target, y, tuple(ref.shape), "the output")
        diff = (y - ref).abs()
        if diff.numel() and not bool((diff == 0).all()):
            idx = tuple(int(i) for i in (diff == diff.max()).nonzero()[0])
            msg = (
                f"exact equality on integer data does not hold for {target.name}{_label(kw)}: max |error| = "
                f"{float(diff.max()):.3e} at index {idx} (expected exactly 0: every value is an integer < "
                "2^53)"
                f"\n  case: {describe_lsa(lsa)}; x {tuple(x.shape)}"
            )
            raise PropertyFailure(msg + _record("exact_on_integers", target, lsa, x, None, msg))
    return ComparisonResult(True, 0.0, 0.0, 0.0, (), 0.0, 0, 0.0, str(target.dtype), "exact")


def check_causal(target: LayerTarget, lsa, x: Float[Tensor, "batch time d"], t: int, seed: int):
    """Replacing the inputs after position ``t`` (0-based) leaves the outputs at ``0..t`` unchanged."""
    lsa = target.fixed_lsa if target.fixed_lsa is not None else lsa
    T = x.shape[1]
    if not 0 <= t < T:
        raise ValueError(f"t must be in [0, T) = [0, {T}); got {t}")
    g = torch.Generator().manual_seed(seed)
    x2 = x.clone()
    scale = float(x.abs().max()) if x.numel() else 1.0
    x2[:, t + 1 :] = (
        (torch.randn(x2[:, t + 1 :].shape, generator=g, dtype=torch.float64) * max(scale, 1.0))
        .to(torch.float32)
        .to(torch.float64)
    )
    M = torch.maximum(lsa_magnitude(lsa, x), lsa_magnitude(lsa, x2))[:, : t + 1]
    layer = target.layer_for(lsa)
    y1, y2 = target.run(layer, x), target.run(layer, x2)
    n = target.n(lsa, T, layer)
    res = _compare(
        y2[:, : t + 1], y1[:, : t + 1], 2 * M, n, target.dtype, f"{target.name} with x[t+1:] changed"
    )
    _fail(
        f"causality (outputs up to t={t} unchanged when x after t changes)",
        res,
        f"{describe_lsa(lsa)}; x {tuple(x.shape)}; seed {seed}",
        record=("causal", target, lsa, x, {"t": t, "seed": seed}),
    )
    return res


def check_batch_independent(
    target: LayerTarget, lsa, x: Float[Tensor, "batch time d"], perm: Int[Tensor, " batch"]
):
    """Each sequence's output is the same alone, in the batch, and in a permuted batch."""
    lsa = target.fixed_lsa if target.fixed_lsa is not None else lsa
    M = lsa_magnitude(lsa, x)
    layer = target.layer_for(lsa)
    y = target.run(layer, x)
    n = target.n(lsa, x.shape[1], layer)
    case = f"{describe_lsa(lsa)}; x {tuple(x.shape)}; perm {perm.tolist()}"
    res = _compare(
        target.run(layer, x[perm]),
        y[perm],
        2 * M[perm],
        n,
        target.dtype,
        f"{target.name} on a permuted batch",
    )
    rec = ("batch_independent", target, lsa, x, {"perm": perm})
    _fail("batch independence (permuted batch)", res, case, record=rec)
    for b in range(x.shape[0]):
        res = _compare(
            target.run(layer, x[b : b + 1]),
            y[b : b + 1],
            2 * M[b : b + 1],
            n,
            target.dtype,
            f"{target.name} on sequence {b} alone",
        )
        _fail(f"batch independence (sequence {b} alone)", res, case, record=rec)
    return res


def check_empty_sequence(target: LayerTarget, lsa, batch: int = 2):
    """``T = 0`` gives an empty output of shape ``[B, 0, d_out]``."""
    lsa = target.fixed_lsa if target.fixed_lsa is not None else lsa
    layer = target.layer_for(lsa)
    y = target.run(layer, torch.zeros(batch, 0, lsa.d, dtype=torch.float64))
    _check_shape(target, y, (batch, 0, lsa.d_out), "the output for T=0")


def check_variant(
    variant,
    params,
    x: Float[Tensor, "batch time d"],
    *,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
):
    """A registered variant's ``construct(params)`` equals its float64 ``reference(params, x)``.

    $M$ and $n$ come from the variant's ``magnitude`` / ``path_length`` hooks when present; otherwise $M$ is
    the constructed RNN on absolute values (:func:`properties.magnitudes.rnn_magnitude`, which bounds the
    candidate's own rounding) and $n$ the template's path plus 8 roundings for computing its weights."""
    ref = variant.reference(params, x)
    rnn = variant.construct(params)
    magnitude, path_length = hook(variant, "magnitude"), hook(variant, "path_length")
    M = magnitude(params, x) if magnitude is not None else rnn_magnitude(rnn, x)
    n = path_length(params, x.shape[1]) if path_length is not None else rnn_budget(rnn, x.shape[1], extra=8)
    if dtype != torch.float64 or device != "cpu":
        low = dataclasses.replace(
            params,
            **{
                k: v.to(device=device, dtype=dtype)
                for k, v in vars(params).items()
                if isinstance(v, Tensor) and v.is_floating_point()
            },
        )
        rnn = variant.construct(low)
    y = rnn(x.to(device=device, dtype=dtype))
    res = _compare(y, ref, M, n, dtype, f"variant {variant.name!r} construction")
    _fail(
        f"construction of variant {variant.name!r} equals its reference",
        res,
        f"params sizes {[tuple(v.shape) for v in vars(params).values() if isinstance(v, Tensor)]}; x "
        f"{tuple(x.shape)}",
    )
    return res


# -- properties of the gated RNN template ----------------------------------------------------------
def _rnn_case(rnn, x) -> str:
    return f"GatedLinearRNN({rnn.extra_repr()}, dtype={rnn.A.dtype}); x {tuple(x.shape)}"


def _rnn_dtype(rnn) -> torch.dtype:
    return rnn._compute_dtype(torch.zeros((), dtype=rnn.A.real.dtype))


def check_loop_equals_parallel(rnn, x: Float[Tensor, "batch time d"]):
    """The step loop (reference) and the parallel scan agree within $2\\gamma_n M$."""
    M = rnn_magnitude(rnn, x)
    x = x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)
    y_loop, y_par = rnn(x, mode="loop"), rnn(x, mode="parallel")
    res = _compare(y_par, y_loop, 2 * M, rnn_budget(rnn, x.shape[1]), _rnn_dtype(rnn), "parallel scan")
    _fail("step loop equals parallel scan", res, _rnn_case(rnn, x))
    return res


def check_streaming(rnn, x: Float[Tensor, "batch time d"], cuts: list[int], mode: str = "auto"):
    """Running ``x`` in chunks split at ``cuts`` with the carried state equals one pass (and the final states
    agree)."""
    M = rnn_magnitude(rnn, x)
    x = x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)
    T = x.shape[1]
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < T) + [T]
    y_full, h_full = rnn(x, mode=mode, return_state=True)
    state, parts = None, []
    for a, b in itertools.pairwise(bounds):
        y, state = rnn(x[:, a:b], state, mode=mode, return_state=True)
        parts.append(y)
    y_chunks = torch.cat(parts, dim=1) if parts else y_full
    res = _compare(y_chunks, y_full, 2 * M, rnn_budget(rnn, T), _rnn_dtype(rnn), f"chunks {bounds}")
    _fail("streaming in chunks equals one pass", res, _rnn_case(rnn, x))
    if T > 0:  # the carried final state, against the same model on the state's own magnitude
        err = (to_cpu64(state) - to_cpu64(h_full)).abs()
        bound = 2 * error_bound(rnn_state_magnitude(rnn, x), rnn_budget(rnn, T), _rnn_dtype(rnn))
        if not bool((err <= bound).all()):
            raise PropertyFailure(
                f"streaming: the carried final state differs from one pass by "
                f"{float(err.max()):.3e} > bound {float(bound.max()):.3e}\n  case: {_rnn_case(rnn, x)}"
            )
    return res


def check_neuron_permutation(rnn, x: Float[Tensor, "batch time d"], perm: Int[Tensor, " n"]):
    """Permuting the recurrent neurons (rows of $A, B$, entries of $\\lambda$, columns of $C, E$) keeps the
    function."""
    M = rnn_magnitude(rnn, x)
    xd = x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)
    res = _compare(
        permute_neurons(rnn, perm)(xd),
        rnn(xd),
        2 * M,
        rnn_budget(rnn, x.shape[1]),
        _rnn_dtype(rnn),
        f"neurons permuted by {perm.tolist()}",
    )
    _fail("invariance under neuron permutation", res, _rnn_case(rnn, x))
    return res


def check_branch_rescaling(
    rnn, x: Float[Tensor, "batch time d"], index: int, c: float, branch: str = "input"
):
    r"""Scaling one gate branch by $c$ and the other by $1/c$ keeps the function: ``branch="input"`` scales
    $A_k$ by $c$ and $B_k$ by $1/c$ (neuron ``index``); ``"output"`` scales $C_m$ by $c$ and $E_m$ by
    $1/c$."""
    if branch == "input":
        other = rescale_input_branch(rnn, index, c)
    elif branch == "output":
        other = rescale_output_branches(rnn, index, c, 1 / c)
    else:
        raise ValueError(f"branch must be 'input' or 'output'; got {branch!r}")
    M = rnn_magnitude(rnn, x)
    xd = x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)
    # three extra roundings: c * w, w / c, and D / (c * (1/c))
    res = _compare(
        other(xd),
        rnn(xd),
        2 * M,
        rnn_budget(rnn, x.shape[1], extra=3),
        _rnn_dtype(rnn),
        f"{branch} branch {index} scaled by c={c!r} and 1/c",
    )
    _fail(f"invariance under {branch}-gate branch rescaling (c, 1/c)", res, _rnn_case(rnn, x))
    return res


# -- detection power
# ------------------------------------------------------------------------------------------
def smallest_detectable_scale(
    lsa, x: Float[Tensor, "batch time d"], dtype: torch.dtype, n: int | None = None
) -> float:
    r"""The smallest relative scale error $\varepsilon$ that :func:`check_equals_lsa` detects on this case at
    ``dtype``: a layer returning $(1+\varepsilon)\,y$ errs by $\varepsilon|y|$, which exceeds the bound
    $\gamma_nM + n\eta$ somewhere iff $\varepsilon > \min_{y\ne0} (\gamma_nM + n\eta)/|y|$ (``n``: the direct
    construction's budget by default). ``inf`` when no guarantee is left ($nu \ge 1$) or $y = 0$."""
    n = lsa_budget(lsa, x.shape[1]) if n is None else n
    y = lsa(x).abs()
    b = error_bound(lsa_magnitude(lsa, x), n, dtype)
    r = b[y > 0] / y[y > 0]
    return float(r.min()) if r.numel() else float("inf")


def sensitivity_hint(dtype: torch.dtype, T: int = 64) -> str | None:
    """One line for a run at a low precision: how much more a float64 run would see (``None`` at float64)."""
    if dtype == torch.float64:
        return None

    g = torch.Generator().manual_seed(0)
    lsa = LinearSelfAttention(*(torch.randn(2, 2, 4, generator=g, dtype=torch.float64) for _ in range(3)))
    x = torch.randn(2, T, 4, generator=g, dtype=torch.float64).to(torch.float32).to(torch.float64)
    lo, hi = smallest_detectable_scale(lsa, x, dtype), smallest_detectable_scale(lsa, x, torch.float64)
    return (
        f"at {str(dtype).replace('torch.', '')} the equality checks see a relative error of about {lo:.1e} "
        f"(a typical case, T={T}); at float64 about {hi:.1e}, {lo / hi:.0e}x finer: if your layer also runs "
        "in "
        "float64, hunt bugs with --lsa-dtype float64"
    )
