r"""Tiers 1 and 4: the whole sequence map unrolled for $t = 1..T$ at fixed sizes.

**Fixed size** (``unrolled``): with the subject's generators (symbolic weights and inputs, or exact
weights and symbolic inputs), the RNN output minus the reference output expands to the zero polynomial
for every $t\le T$ and every output coordinate. Unrolling the real code catches time-index slips (a
query neuron that accumulates, an output read before the update) that a mis-stated step lemma can hide.

**Schwartz–Zippel** (``schwartz_zippel``): the same two sides evaluated exactly at random integer points;
for sizes where expansion is too expensive (see :mod:`~equivalence.symbolic.engine` for the bound).

Both return an :class:`~equivalence.symbolic.engine.Outcome`; a refutation carries a counterexample
(exact parameters, RNN weights and inputs, both outputs) re-evaluated exactly before it is reported.
"""

from .arrays import to_jsonable
from .engine import Outcome, decide_identity, differs, find_counterexample, schwartz_zippel
from .modular import NotModular, TooLargeForMemory, modular_schwartz_zippel
from .subjects import Subject

__all__ = ["outputs_fn", "refutation", "schwartz_zippel_tier", "unrolled"]


def outputs_fn(subject: Subject):
    def fn(arrays):
        y_rnn, y_ref = subject.sides(arrays)
        return [("y", y_rnn, y_ref)]

    return fn


def refutation(subject: Subject, T: int, *, seed: int = 0, start=None, witness=None) -> dict | None:
    """A checked counterexample for the output identity at length ``T`` (``None`` if none found)."""
    variables = subject.variables(T)
    fn = outputs_fn(subject)
    found = find_counterexample(fn, variables, seed=seed, start=start)
    if found is None:
        return None
    arrays = variables.numeric(found["values"])
    y_rnn, y_ref = subject.sides(arrays)  # re-evaluated from scratch
    _, (t0, o) = found["where"]
    if y_rnn[t0, o] == y_ref[t0, o]:
        raise AssertionError("counterexample did not reproduce on re-evaluation")
    out = {
        "construction": subject.name,
        "mode": subject.mode,
        "sizes": {**{k: v for k, v in subject.sizes.items() if v is not None}, "T": T},
        "t": t0 + 1,
        "output_index": o,
        "rnn_output": to_jsonable(y_rnn[t0, o]),
        "reference_output": to_jsonable(y_ref[t0, o]),
        "difference": to_jsonable(y_rnn[t0, o] - y_ref[t0, o]),
        "outputs": {"rnn": to_jsonable(y_rnn), "reference": to_jsonable(y_ref)},
        "point": subject.describe_point(arrays),
        "reference": subject.reference.note,
        "checked": "re-evaluated exactly (Python Fractions) through constructions.rnn's stage functions and "
        "the reference; time t is 1-based, x[t-1] is the input at time t",
    }
    if witness:
        out["nonzero_monomials_of_difference"] = witness
    return out


def unrolled(
    subject: Subject, T: int, *, method: str = "auto", seed: int = 0, max_terms: int | None = None
) -> Outcome:
    """Exact expansion; raises :class:`~.engine.TooLarge` when the lazy estimate exceeds ``max_terms``."""
    variables = subject.variables(T)
    fn = outputs_fn(subject)
    res = decide_identity(fn, variables, method=method, max_terms=max_terms)
    ev = {**res.evidence, "T": T}
    if res.holds:
        return Outcome("proved", "unrolled", ev)
    first_t = min(idx[0] for _, idx in res.failing) + 1
    ev["failing_outputs"] = len(res.failing)
    ev["first_failing_t"] = first_t
    cex = refutation(subject, first_t, seed=seed, witness=res.witness)
    msg = (
        f"{subject.name}: the RNN output differs from the reference as a polynomial at t={first_t} "
        f"({len(res.failing)} of the outputs up to T={T} differ)"
    )
    if cex is None:
        msg += "; no integer counterexample found within the search budget (the non-zero difference stands)"
        cex = {"nonzero_monomials_of_difference": res.witness}
    return Outcome("refuted", "unrolled", ev, cex, msg)


#: the object-array counterexample search is run when neurons x gates is at most this (else the prime-field
#: witness is reported: an integer point where the outputs differ mod p, hence as integers)
OBJECT_SEARCH_LIMIT = 200_000


def schwartz_zippel_tier(
    subject: Subject, T: int, *, trials: int = 6, bits: int = 64, seed: int = 0, degree: int | None = None
) -> Outcome:
    """Schwartz–Zippel: over prime fields (:mod:`.modular`) when the subject is covered, else by exact
    evaluation on object arrays at random integer points (:func:`~.engine.schwartz_zippel`, ``bits``)."""
    try:
        holds, ev, witness = modular_schwartz_zippel(subject, T, trials=trials, seed=seed)
    except TooLargeForMemory as e:
        return Outcome(
            "skipped",
            "schwartz-zippel",
            {"T": T},
            None,
            f"{subject.name}: the construction's weights do not fit in memory at these sizes ({e})",
        )
    except NotModular as e:
        return _object_schwartz_zippel(
            subject, T, trials=min(trials, 3), bits=bits, seed=seed, degree=degree, why=str(e)
        )
    ev = {**ev, "T": T, "generators": len(subject.variables(T))}
    if holds:
        return Outcome("proved", "schwartz-zippel", ev)
    t_first = witness["t"]
    n_params = len(subject.variables(T)) - T * subject.d
    start = witness["values"][: n_params + t_first * subject.d]
    msg = (
        f"{subject.name}: RNN and reference differ mod p={witness['p']} at a random point (T={T}, first at "
        f"t={t_first}, output {witness['o']}), hence differ as integers there"
    )
    size = subject.sizes
    n_est = max(
        size.get("heads", 1) * (size.get("d_k") or size["d"]) * ((size.get("d_v") or size["d"]) + 1),
        size["d"] * (size["d"] + 3) // 2,
    )  # neurons of the direct / compressed construction
    if n_est * n_est <= OBJECT_SEARCH_LIMIT:
        cex = refutation(subject, t_first, seed=seed, start=start)
        if cex is not None:
            cex["prime_field_witness"] = {k: v for k, v in witness.items() if k != "values"}
            return Outcome("refuted", "schwartz-zippel", ev, cex, msg)
    cex = {
        "construction": subject.name,
        "sizes": {**{k: v for k, v in size.items() if v is not None}, "T": t_first},
        "t": t_first,
        "output_index": witness["o"],
        "point_integers": start,
        "prime_field_witness": {k: v for k, v in witness.items() if k != "values"},
        "checked": "evaluated on Z/p through the construction's wiring and constructions.rnn's stage "
        "functions; "
        "the integer point (residues in [0, p)) differs mod p, hence over the integers",
    }
    return Outcome("refuted", "schwartz-zippel", ev, cex, msg)


def _object_schwartz_zippel(
    subject: Subject, T: int, *, trials: int, bits: int, seed: int, degree: int | None, why: str
) -> Outcome:
    variables = subject.variables(T)
    fn = outputs_fn(subject)
    holds, ev, values = schwartz_zippel(fn, variables, trials=trials, bits=bits, seed=seed, degree=degree)
    ev = {**ev, "T": T, "generators": len(variables), "method": f"exact evaluation on object arrays ({why})"}
    if holds:
        return Outcome("proved", "schwartz-zippel", ev)
    # the first time step where the random point differs, then a counterexample of that length
    y_rnn, y_ref = subject.sides(variables.numeric(values))
    t_first = next(t for t in range(T) if any(differs(u, v) for u, v in zip(y_rnn[t], y_ref[t]))) + 1
    n_params = len(variables) - T * subject.d
    cex = refutation(subject, t_first, seed=seed, start=values[: n_params + t_first * subject.d])
    return Outcome(
        "refuted",
        "schwartz-zippel",
        ev,
        cex,
        f"{subject.name}: RNN and reference differ at a random exact point (T={T})",
    )
