r"""The statement path of the lift stage: a registered variant at given sizes as functions of exact arrays.

A :class:`Subject` evaluates *the project's own code* on NumPy object arrays:

- the RNN side runs :func:`constructions.rnn.input_gate`, :func:`~constructions.rnn.recurrence_step`
  and :func:`~constructions.rnn.output_readout` over time (:func:`run_template`);
- in **symbolic mode** the RNN weights come from the variant's ``symbolic_weights`` hook applied to
  arrays of generators (the claim then holds for *all* weights); in **exact mode** (variants without the
  hook, or when forced) they are the float64 weights of ``variant.construct(params)`` for sampled
  parameters, converted exactly to ``Fraction`` (binary64 → rational is exact), so the claim is about
  those parameters only;
- the reference side is the variant's own ``symbolic_reference(*param_arrays, x)`` hook (negative controls),
  or the LSA statement of :mod:`~equivalence.symbolic.expressions` for a variant whose reference is the
  built-in linear self-attention inherited unchanged (:func:`reference_is_lsa`). A reference is never
  identified as LSA from numeric agreement; every other variant is lifted from its torch code
  (:mod:`.lifted_claims`).

Exact mode samples the parameters on the dyadic grid (:func:`.params.quantise`), so that a construction that
forms products and sums of them (e.g. the compressed one) computes its float64 weights without rounding.
"""

from dataclasses import dataclass

import numpy as np
import sympy as sp

from constructions.contract import hook
from constructions.registry import _LSAVariant
from constructions.rnn import GatedLinearRNN, RNNWeights, input_gate, output_readout, recurrence_step

from .algebra import fraction_array
from .arrays import Variables, to_jsonable
from .expressions import IDX, LSA, Evaluator, lsa_output
from .params import quantise, sample, tensor_fields

__all__ = [
    "Subject",
    "Unavailable",
    "lsa_reference",
    "reference_is_lsa",
    "resolve",
    "run_template",
    "sample",
    "statement_path",
    "tensor_fields",
]


class Unavailable(Exception):
    """This tier cannot run for this variant; the message says why (reported as 'skipped')."""


def reference_is_lsa(variant) -> bool:
    """Whether ``variant``'s reference is the built-in linear self-attention, inherited unchanged (decided
    from the class, never by evaluating the reference)."""
    return isinstance(variant, _LSAVariant) and type(variant).reference is _LSAVariant.reference


def statement_path(variant) -> bool:
    """Whether ``variant``'s claims are decided against the paper's LSA statement with the construction's own
    wiring hooks (the fast, specialised path): a built-in LSA construction (or a subclass) whose reference is
    the built-in one (:func:`reference_is_lsa`), with the direct or compressed method and no
    ``symbolic_invariant`` of its own. Every other variant is lifted from its torch code
    (:mod:`.lifted_claims`)."""
    return (
        reference_is_lsa(variant)
        and hook(variant, "method") in ("direct", "compressed")
        and hook(variant, "symbolic_invariant") is None
    )


def run_template(w: RNNWeights, x: np.ndarray) -> np.ndarray:
    r"""The template (Zucchet et al. 2023, Sec. 3, Eqs. 1–2) unrolled over ``x`` ``[T, d]`` with $h_0 = 0$,
    through the stage functions of :mod:`constructions.rnn` (a constant decay ``w.lam``). Returns ``y``
    ``[T, d_out]`` (object array)."""
    if callable(w.lam):
        raise Unavailable(
            "the statement path evaluates constant decays only (an input-dependent decay is lifted)"
        )
    n, T = w.A.shape[0], x.shape[0]
    h = np.zeros(n, dtype=object)
    out = []
    for step in range(T):
        xt = np.concatenate([x[step], np.ones(1, dtype=object)])
        h = recurrence_step(w.lam, h, input_gate(w.A, w.B, xt))
        out.append(output_readout(w.C, w.E, w.D, h))
    d_out = w.D.shape[0]
    return np.array(out, dtype=object).reshape(T, d_out)


# -- references --------------------------------------------------------------------------------------
@dataclass
class Reference:
    kind: str  # "lsa" | "hook"
    statement: sp.Eq
    note: str
    evaluate: object  # (params: dict[name, array|None], x [T, d]) -> y [T, d_out]


def lsa_reference(with_W_O: bool, note: str) -> Reference:
    lhs, rhs = lsa_output(with_W_O)

    def evaluate(P, x):
        T_, d_ = x.shape
        H_, dk_, _ = P["W_Q"].shape
        dv_ = P["W_V"].shape[1]
        x_pad = np.zeros((T_ + 1, d_), dtype=object)
        x_pad[1:] = x
        arrays = {"W_Q": P["W_Q"], "W_K": P["W_K"], "W_V": P["W_V"], "x": x_pad}
        sizes = {"H": H_, "d": d_, "d_k": dk_, "d_v": dv_}
        if with_W_O:
            arrays["W_O"] = P["W_O"]
            sizes["d_out"] = P["W_O"].shape[0]
        ev = Evaluator(arrays, sizes)
        if with_W_O:
            y = np.empty((T_, sizes["d_out"]), dtype=object)
            for tt in range(1, T_ + 1):
                for oo in range(sizes["d_out"]):
                    y[tt - 1, oo] = ev(rhs, t=tt, o=oo)
        else:
            y = np.empty((T_, H_ * dv_), dtype=object)
            for tt in range(1, T_ + 1):
                for e in range(H_):
                    for ii in range(dv_):
                        y[tt - 1, e * dv_ + ii] = ev(rhs, t=tt, eta=e, i=ii)
        return y

    return Reference("lsa", sp.Eq(LSA.y_rnn[lhs.indices], rhs), note, evaluate)


def resolve_reference(variant, params) -> Reference:
    ref = hook(variant, "symbolic_reference")
    if ref is not None:

        def evaluate(P, x):
            return np.asarray(ref(*[P[k] for k in P], x), dtype=object)

        y_ref = sp.Function(f"y^{variant.name}")(IDX["t"], IDX["o"])
        return Reference(
            "hook",
            sp.Eq(LSA.y_rnn[IDX["t"], IDX["o"]], y_ref),
            "the variant's symbolic_reference hook",
            evaluate,
        )
    if not reference_is_lsa(variant):
        raise Unavailable(
            f"no exact reference for variant {variant.name!r}: it has no symbolic_reference hook and "
            "its reference is not the built-in linear self-attention"
        )
    note = "the variant's reference is the built-in LinearSelfAttention (inherited unchanged)"
    return lsa_reference(dict(tensor_fields(params)).get("W_O") is not None, note)


# -- subjects ----------------------------------------------------------------------------------------
def _actual_sizes(fields: dict, requested: dict) -> dict:
    out = {"d": requested["d"], "heads": requested.get("heads", 1)}
    if "W_Q" in fields and fields["W_Q"] is not None:
        H_, dk_, d_ = fields["W_Q"].shape
        out.update(heads=int(H_), d_k=int(dk_), d=int(d_))
        if fields.get("W_V") is not None:
            out["d_v"] = int(fields["W_V"].shape[1])
        out["d_out"] = int(fields["W_O"].shape[0]) if fields.get("W_O") is not None else None
    return out


@dataclass
class Subject:
    """One variant at one size on the statement path: its parameter fields, the reference, and (exact mode)
    the sampled parameters and construct()'s weights as exact rationals."""

    variant: object
    mode: str  # "symbolic" | "exact"
    sizes: dict
    reference: Reference
    fields: list[tuple[str, tuple | None]]  # parameter arrays (name, shape or None when absent)
    exact_params: dict | None = None
    exact_weights: RNNWeights | None = None

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def d(self) -> int:
        return self.sizes["d"]

    def variables(self, T: int) -> Variables:
        v = Variables()
        if self.mode == "symbolic":
            for k, shape in self.fields:
                if shape is not None:
                    v.add(k, shape)
        v.add("x", (T, self.d))
        return v

    def params(self, arrays: dict) -> dict:
        if self.mode == "exact":
            return self.exact_params
        return {k: (arrays[k] if shape is not None else None) for k, shape in self.fields}

    def weights(self, arrays: dict) -> RNNWeights:
        if self.mode == "exact":
            return self.exact_weights
        P = self.params(arrays)
        return RNNWeights(*self.variant.symbolic_weights(*[P[k] for k, _ in self.fields]))

    def sides(self, arrays: dict) -> tuple[np.ndarray, np.ndarray]:
        """``(y_rnn, y_ref)``, both ``[T, d_out]`` object arrays, from the arrays of :meth:`variables`."""
        y_rnn = run_template(self.weights(arrays), arrays["x"])
        y_ref = self.reference.evaluate(self.params(arrays), arrays["x"])
        if y_rnn.shape != y_ref.shape:
            raise Unavailable(
                f"{self.name}: the RNN's output has shape {y_rnn.shape} but the reference's has {y_ref.shape}"
            )
        return y_rnn, y_ref

    def describe_point(self, arrays: dict) -> dict:
        """Exact parameters, RNN weights and inputs of a numeric point (JSON form)."""
        P = self.params(arrays)
        w = self.weights(arrays)
        return {
            "params": {k: to_jsonable(v) for k, v in P.items()},
            "rnn_weights": {k: to_jsonable(np.asarray(v, dtype=object)) for k, v in w._asdict().items()},
            "x": to_jsonable(arrays["x"]),
        }


def resolve(variant, sizes: dict, *, seed: int = 0, mode: str | None = None) -> Subject:
    """The :class:`Subject` for ``variant`` at ``sizes``; ``mode`` forces "symbolic" or "exact"."""
    if mode not in (None, "symbolic", "exact"):
        raise ValueError(f"mode must be 'symbolic', 'exact' or None (automatic); got {mode!r}")
    params = sample(variant, sizes, seed)
    try:
        fields = tensor_fields(params)
    except TypeError as e:
        raise Unavailable(str(e)) from None
    actual = _actual_sizes(dict(fields), sizes)
    reference = resolve_reference(variant, params)
    has_hook = hook(variant, "symbolic_weights") is not None
    if mode is None:
        mode = "symbolic" if has_hook else "exact"
    if mode == "symbolic":
        if not has_hook:
            raise Unavailable(f"variant {variant.name!r} has no symbolic_weights hook; use the exact tier")
        shapes = [(k, None if v is None else tuple(v.shape)) for k, v in fields]
        return Subject(variant, "symbolic", actual, reference, shapes)
    params = quantise(params)
    fields = tensor_fields(params)
    rnn = variant.construct(params)
    if not isinstance(rnn, GatedLinearRNN):
        raise Unavailable(
            f"variant {variant.name!r}: construct() returned {type(rnn).__name__}, not a GatedLinearRNN; "
            "the exact tier evaluates the template only"
        )
    if rnn.lam is None:
        raise Unavailable(
            f"variant {variant.name!r}: the constructed RNN has an input-dependent decay given as a torch "
            "callable, which the exact tier cannot evaluate"
        )
    if rnn.is_complex:
        raise Unavailable(
            f"variant {variant.name!r}: complex weights; the exact tiers handle real weights "
            "(complex conjugation is covered by the invariance claims)"
        )
    if rnn.d != actual["d"]:
        raise Unavailable(
            f"variant {variant.name!r}: construct() reads d={rnn.d} features (an upstream feature layer) "
            f"but the layer input has d={actual['d']}; the exact tier evaluates the template on the "
            "layer input only"
        )
    w = RNNWeights(*(fraction_array(t) for t in rnn.weights()))
    exact = {k: (None if v is None else fraction_array(v)) for k, v in fields}
    shapes = [(k, None if v is None else tuple(v.shape)) for k, v in fields]
    return Subject(
        variant,
        "exact",
        actual,
        reference,
        shapes,
        exact,
        w,
    )


def construct_matches_hook(variant, sizes: dict, seed: int = 0) -> dict:
    """Does ``variant.construct(θ)`` build exactly the weights ``variant.symbolic_weights(θ)`` describes?

    θ is sampled with ``seed`` and rounded to the dyadic grid, so both sides are exact rationals.
    Returns ``{"matches": bool, ...}`` with the first mismatching entry, or ``{"matches": None, "why": ...}``
    when the two cannot be compared (construct() is not a constant-lambda real template RNN).
    """
    params = quantise(sample(variant, sizes, seed))
    fields = tensor_fields(params)
    rnn = variant.construct(params)
    if not isinstance(rnn, GatedLinearRNN) or rnn.lam is None or rnn.is_complex:
        return {"matches": None, "why": "construct() is not a real constant-lambda GatedLinearRNN"}
    described = RNNWeights(
        *variant.symbolic_weights(*[None if v is None else fraction_array(v) for _, v in fields])
    )
    got = RNNWeights(*(fraction_array(t) for t in rnn.weights()))
    for name in RNNWeights._fields:
        h = np.asarray(getattr(described, name), dtype=object)
        g = getattr(got, name)
        if h.shape != g.shape:
            return {
                "matches": False,
                "array": name,
                "hook_shape": list(h.shape),
                "construct_shape": list(g.shape),
            }
        for idx in np.ndindex(h.shape):
            if h[idx] != g[idx]:
                return {
                    "matches": False,
                    "array": name,
                    "index": list(idx),
                    "hook": str(h[idx]),
                    "construct": str(g[idx]),
                }
    return {"matches": True, "seed": seed}
