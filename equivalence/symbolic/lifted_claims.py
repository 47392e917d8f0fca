r"""Claims from lifted programs: a variant's construction equals its reference, unrolled and for every $T$.

Stage 4 of the pipeline (lift → obligations → decide → **claim**) for the tiers that need no SymPy from the
variant's author: :func:`prove_unrolled` and :func:`prove_allt` take a registered variant (its
``sample_params``,
``reference``, ``construct``, optional ``recurrence``) and return a :class:`LiftedClaim`.

- **Unrolled** (fixed sizes, $t = 1..T$): the lifted RNN output (``construct(θ)``: template weights, E1 decay,
  upstream features, through the stage functions of :mod:`constructions.rnn`) equals the lifted registered
  ``reference(θ, x)`` entrywise, as elements of $\mathbb Q[θ, x][\text{atoms}]$ — an exact identity in which
  every non-polynomial function is uninterpreted (:mod:`.lift`), so it holds for every link function.
- **All T**: the simulation of :mod:`.simulation` (init, step, readout with a state map $\Phi$ solved from the
  construction) against the variant's one-step form; when the registered reference is not that form itself
  (:func:`constructions.recurrence.reference_is_recurrence`), the two are also proved equal unrolled at
  $T \le T_{link}$ and the statement says exactly that.

Parameters are symbolic (every floating parameter entry a generator: the claim is for all parameter values on
the branch of the code's Python control flow that the sample took) unless the code reads a symbolic value into
Python (then the claim is for the sampled parameters, on the dyadic grid, named as such). Decisions are exact:
equal canonical sparse polynomials (dict of monomials → ``Fraction``) prove; a non-zero difference refutes,
with a counterexample point (the sampled parameters and small integer inputs, as exact rationals) where the
difference is certified non-zero (exactly, or by 60-digit interval-free evaluation of the atoms), plus a
float64 rerun of both sides at that point for replay.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp
import torch

from constructions.contract import hook
from constructions.recurrence import (
    Recurrence,
    lsa_recurrence,
    plan_recurrence,
    reference_is_recurrence,
    run_recurrence,
)
from constructions.registry import LSAParams, _LSAVariant

from .engine import Outcome
from .lift import Poly, Unliftable, evaluate, render
from .params import sample
from .simulation import (
    _replace,
    GRID,
    VariantLift,
    reachable,
    reachable_span,
    simulation_obligations,
    solve_phi,
    tensor_fields,
    time_invariance,
)

__all__ = [
    "ENGINE",
    "LiftedClaim",
    "complex_plan_recurrence",
    "one_step_form",
    "prove_allt",
    "prove_unrolled",
]

ENGINE = "lift: exact sparse polynomials over Q (dict monomial -> Fraction), uninterpreted function atoms"
#: steps of symbolic input on which Phi is solved
PHI_STEPS = 3
#: length up to which the construction's per-step features/decays are checked to be the same map at every t
INVARIANCE_T = 4
#: longest sequence searched for a concrete counterexample when a simulation obligation fails
SEARCH_T = 8


@dataclass
class LiftedClaim:
    """A decided claim: ``outcome`` (``engine.Outcome``; status proved / refuted / failed / skipped / error),
    the prose ``statement`` (naming the sizes, lengths and parameter mode checked), the statement ``objects``
    (SymPy, for rendering and digests), ``assumptions`` (what the claim takes on trust) and
    ``params_mode``."""

    outcome: Outcome
    statement: str
    objects: sp.Tuple
    assumptions: tuple[str, ...] = ()
    params_mode: str = ""
    evidence: dict = field(default_factory=dict)


def _sample(variant, sizes: dict, seed: int):
    return sample(variant, sizes, seed)


def _sizes_words(sizes: dict, params) -> str:
    shown = {k: v for k, v in sizes.items() if v}
    f = dict(tensor_fields(params))
    if f.get("W_Q") is not None and f["W_Q"].ndim == 3:
        H, dk, _ = f["W_Q"].shape
        shown.setdefault("heads", int(H))
        shown.setdefault("d_k", int(dk))
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def _mode_words(mode: str, seed: int, angles=()) -> str:
    if mode == "symbolic":
        return "for all real parameter values θ (every floating parameter entry a generator)"
    extra = (
        f"; the angles {', '.join(sorted(angles))} sampled as 2·arctan(u), u a multiple of 1/{GRID}, so that "
        "their cosines and sines are rational"
        if angles
        else ""
    )
    return (
        f"for the parameters θ sampled with seed {seed} and rounded to multiples of 1/{GRID}{extra} (the "
        "code reads parameter values into Python, so the claim is about this sample only)"
    )


def _assumptions(lift: VariantLift) -> tuple[str, ...]:
    out = list(lift.branches) + list(getattr(lift, "notes", []))
    if lift.mode == "symbolic":
        out.append(
            "the code's Python control flow and piecewise selections take, for every θ and x named, the "
            "branch they took at the sampled values (the lift records every such read)"
        )
    out.append(
        "non-polynomial functions are uninterpreted atoms: the identity holds for every choice of them"
    )
    return tuple(dict.fromkeys(out))


def _checked_lift(variant, sizes: dict, seed: int, T: int, sides, modes=("symbolic", "sampled")):
    """``(params, lift, outputs)``: the first mode in ``modes`` whose lifts of ``sides``
    (``[(kind, fn(lift, T))]``,
    kind ``"rnn"`` / ``"reference"`` / ``"recurrence"``) read no symbolic value into Python and agree with the
    torch
    code at a second point (:meth:`~.simulation.VariantLift.cross_check`); symbolic parameters first."""
    params, params2 = _sample(variant, sizes, seed), _sample(variant, sizes, seed + 1)
    notes: list[str] = []
    for mode in modes:
        lift = VariantLift(variant, params, mode, seed=seed, params2=params2)
        try:
            outs = [fn(lift, T) for _, fn in sides]
        except Unliftable:
            if mode != modes[-1] and lift.value_reads:
                continue
            raise
        if mode != modes[-1] and lift.value_reads:
            continue
        why = None
        for (kind, _), Y, form in zip(sides, outs, [getattr(fn, "form", None) for _, fn in sides]):
            why = lift.cross_check(Y, T, kind, form)
            if why:
                break
        if why:
            notes.append(f"{mode} parameters: {why}")
            if mode != modes[-1]:
                continue
            raise Unliftable(why)
        lift.notes = list(getattr(lift, "notes", [])) + notes
        return params, lift, outs
    raise Unliftable("no parameter mode could be lifted")


def _side(kind: str, form=None):
    if kind == "rnn":

        def fn(lift, T):
            return lift.rnn_unrolled(T)
    elif kind == "reference":

        def fn(lift, T):
            return lift.reference_unrolled(T)
    else:

        def fn(lift, T):
            return lift.recurrence_unrolled(form, T)

    fn.form = form
    return kind, fn


def _first_difference(lhs: np.ndarray, rhs: np.ndarray):
    failing = []
    for idx in np.ndindex(*lhs.shape):
        a, b = lhs[idx], rhs[idx]
        if isinstance(a, Poly) and isinstance(b, Poly) and a.ring is b.ring and a.terms == b.terms:
            continue  # equal canonical forms (the difference would be exactly 0)
        dv = a - b
        if not (not isinstance(dv, Poly) and dv == 0):
            failing.append((idx, dv))
    return failing


def _variables_of(v, ring) -> set[int]:
    out = set()
    if not isinstance(v, Poly):
        return out
    for g in v.generators():
        a = ring.atoms.get(g)
        if a is None:
            out.add(g)
        else:
            for arg in a.args:
                out |= _variables_of(arg, ring)
    return out


def _certify(diff, point: dict[int, Fraction]):
    """``(nonzero, value)`` of ``diff`` at ``point``: exact for polynomials; atoms by 60-digit evaluation."""
    val = evaluate(diff, point)
    if isinstance(val, Fraction):
        return val != 0, val
    return abs(val) > mpmath.mpf(10) ** -40, val


def find_point(lift: VariantLift, diffs: list, x_names: tuple[str, ...], seed: int) -> dict | None:
    """A point where one of ``diffs`` is certified non-zero: parameters at the sampled values (symbolic
    mode), inputs and states small integers, then anything random. ``None`` if none is found."""
    ring = lift.ring
    sampled = {}
    if lift.mode == "symbolic":
        vals = {k: np.asarray(v) for k, v in tensor_fields(lift.params) if isinstance(v, torch.Tensor)}
        for k, name in enumerate(ring.names):
            base, _, rest = name.partition("[")
            if base in vals and k not in ring.atoms:
                idx = tuple(int(i) for i in rest.rstrip("]").split(",")) if rest else ()
                sampled[k] = Fraction(float(vals[base][idx]))
    rng = random.Random(seed)
    gens = sorted(set().union(*(_variables_of(d, ring) for _, d in diffs)) if diffs else set())
    for attempt in range(24):
        r = 3 if attempt < 8 else 50
        point = {}
        for g in gens:
            if g in sampled and attempt < 16:
                point[g] = sampled[g]
            else:
                point[g] = Fraction(rng.randint(-r, r), rng.choice((1, 2, 4)))
        for where, d in diffs[:8]:
            try:
                nz, val = _certify(d, point)
            except (ZeroDivisionError, ValueError, KeyError):
                continue
            if nz:
                return {"where": where, "point": point, "difference": val}
    return None


def _point_json(lift: VariantLift, point: dict[int, Fraction]) -> dict:
    names = lift.ring.names
    return {names[g]: str(v) for g, v in sorted(point.items())}


def _rerun(lift: VariantLift, point: dict[int, Fraction], T: int, x_name: str = "x") -> dict:
    """Float64 rerun of both sides at a counterexample point (parameters: the sampled values, overridden by
    the point; inputs from the point, 0 where unassigned), for replay files."""
    names = {n: g for g, n in enumerate(lift.ring.names)}
    changes = {}
    for k, t in tensor_fields(lift.params):
        if t is None or not t.is_floating_point():
            continue
        a = t.detach().clone().to(torch.float64)
        for idx in np.ndindex(*a.shape):
            g = names.get(f"{k}[{','.join(map(str, idx))}]" if idx else k)
            if g is not None and g in point:
                a[idx] = float(point[g])
        changes[k] = a
    x = torch.zeros(1, T, lift.d_in, dtype=torch.float64)
    for t in range(T):
        for c in range(lift.d_in):
            g = names.get(f"{x_name}[0,{t},{c}]")
            if g is not None and g in point:
                x[0, t, c] = float(point[g])
    out = {
        "x": [[str(Fraction(float(v))) for v in row] for row in x[0].tolist()],
        "params": {k: [str(Fraction(float(v))) for v in a.reshape(-1).tolist()] for k, a in changes.items()},
    }
    try:
        P = _replace(lift.params, changes)
        out["reference_float64"] = lift.variant.reference(P, x)[0].tolist()
        out["rnn_float64"] = lift.variant.construct(P)(x)[0].tolist()
    except Exception as e:  # noqa: BLE001 - the rerun is informative only; the exact decision stands
        out["rerun_error"] = f"{type(e).__name__}: {e}"
    return out


def _objects(kind: str, sizes: dict, T) -> sp.Tuple:
    t = sp.Symbol("t", integer=True, positive=True)
    eq = sp.Eq(sp.Function("y_RNN")(t), sp.Function("y_ref")(t))
    extra = [sp.Eq(sp.Symbol(k), v) for k, v in sorted(sizes.items()) if isinstance(v, int)]
    bound = sp.Le(t, T) if T is not None else sp.Ge(t, 1)
    return sp.Tuple(sp.Symbol(kind), eq, bound, *extra)


def _atom_names(lift: VariantLift) -> list[str]:
    return sorted({a.name for a in lift.ring.atoms.values()})


# -- unrolled --------------------------------------------------------------------------------------------
def _unrolled_identity(lift: VariantLift, T: int, left, right, labels: tuple[str, str], seed: int):
    """Decide ``left(T) == right(T)`` (both ``[T, d_out]``); returns ``(holds, evidence, counterexample)``."""
    t0 = time.perf_counter()
    L, R = left(T), right(T)
    ev = {"T": T, "engine": ENGINE}
    if L.shape != R.shape:
        return False, ev, {"error": f"{labels[0]} has output shape {L.shape} but {labels[1]} has {R.shape}"}
    failing = _first_difference(L, R)
    terms = sum(len(v.terms) if isinstance(v, Poly) else 1 for v in np.ravel(L))
    ev.update(
        seconds=round(time.perf_counter() - t0, 3),
        outputs=int(L.size),
        terms=terms,
        generators=len(lift.ring.names),
        atoms=_atom_names(lift),
    )
    if not failing:
        return True, ev, None
    ev["failing_outputs"] = len(failing)
    first_t = min(idx[0] for idx, _ in failing) + 1
    ev["first_failing_t"] = first_t
    found = find_point(lift, [(idx, dv) for idx, dv in failing if idx[0] == first_t - 1], ("x",), seed)
    cex = {
        "t": first_t,
        "sizes": {"T": T},
        "labels": list(labels),
        "difference_polynomial": render(failing[0][1]),
        "checked": "exact: the difference of the two lifted outputs is a non-zero element of "
        "Q[θ, x][atoms]; time t is 1-based",
    }
    if found is not None:
        (t_idx, o) = found["where"]
        cex.update(
            t=t_idx + 1,
            output_index=int(o),
            point=_point_json(lift, found["point"]),
            difference_at_point=str(found["difference"]),
            rerun=_rerun(lift, found["point"], T),
        )
    return False, ev, cex


def _guarded(tier: str, fn, variant, sizes: dict, T):
    """Run a prover; an exception from the variant's own code becomes an ``error`` outcome saying what
    raised."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - user code may raise anything; the claim reports it, never a traceback
        msg = f"{variant.name}: the {tier} lift raised {type(e).__name__}: {e}"
        return LiftedClaim(
            Outcome("error", tier, {"engine": ENGINE}, None, msg), msg, _objects(tier, sizes, T)
        )


def prove_unrolled(variant, sizes: dict, T: int, *, seed: int = 0) -> LiftedClaim:
    """UNROLLED: ``construct(θ)`` and ``reference(θ, ·)`` agree exactly at ``sizes`` for ``t = 1..T``."""
    if T < 1:
        raise ValueError(f"T must be >= 1; got {T}")
    return _guarded("unrolled", lambda: _prove_unrolled(variant, sizes, T, seed), variant, sizes, T)


def _prove_unrolled(variant, sizes: dict, T: int, seed: int) -> LiftedClaim:
    try:
        params, lift, (L, R) = _checked_lift(variant, sizes, seed, T, [_side("rnn"), _side("reference")])
        holds, ev, cex = _unrolled_identity(
            lift, T, lambda _: L, lambda _: R, ("construct", "reference"), seed
        )
    except Unliftable as e:
        msg = f"{variant.name}: not liftable to exact arithmetic: {e}"
        return LiftedClaim(
            Outcome("skipped", "unrolled", {"engine": ENGINE}, None, msg), msg, _objects("unrolled", sizes, T)
        )
    sw = _sizes_words(sizes, params)
    mw = _mode_words(lift.mode, seed, lift.angles)
    statement = (
        f"{mw}, at {sw} and every t = 1..{T}: the output of construct(θ) (its "
        "template weights, decay and upstream features run through the template's stage functions) "
        "equals reference(θ, x) for every real input x, as an exact identity over Q[θ, x] with "
        f"{', '.join(ev['atoms']) or 'no'} non-polynomial functions as uninterpreted atoms"
    )
    ev["params_mode"] = lift.mode
    if holds:
        out = Outcome("proved", "unrolled", ev)
    else:
        msg = (
            f"{variant.name}: the RNN output differs from the reference as an exact polynomial at "
            f"t={cex.get('t')} (T={T})"
        )
        if "point" not in cex:
            msg += "; no point certifying the difference was found within the search budget"
        out = Outcome("refuted", "unrolled", ev, cex, msg)
    return LiftedClaim(out, statement, _objects("unrolled", sizes, T), _assumptions(lift), lift.mode, ev)


# -- all T -----------------------------------------------------------------------------------------------
def one_step_form(variant, params=None):
    """``(form, note, is_reference)``: the one-step form (params -> Recurrence), where it comes from, and
    whether the registered reference is that form itself. ``None`` form when the variant has none. A variant
    with neither a ``recurrence`` hook nor a plan but with linear self-attention parameters (``LSAParams``) is
    given the recurrent form of LSA on them; its link to the registered reference is then proved unrolled."""
    if callable(hook(variant, "recurrence")):
        return variant.recurrence, "the variant's recurrence(θ) hook", reference_is_recurrence(variant)
    if callable(hook(variant, "plan")):
        if params is not None and _complex_plan(variant, params):
            if not _complex_constant_plan(variant.plan(params)):
                return None, "", False  # the plan-derived one-step form is real-valued
            return (
                (lambda p: complex_plan_recurrence(variant.plan(p))),
                "the complex one-step form derived from the variant's plan (S_t = S_{t-1} diag(λ) + "
                "v_t k_t^T with complex q, k, λ; y_t = Re(W_O[S_t q_t]_h))",
                False,
            )
        return (
            (lambda p: plan_recurrence(variant.plan(p))),
            "the one-step form derived from the variant's plan",
            False,
        )
    if isinstance(variant, _LSAVariant) or isinstance(params, LSAParams):
        return (
            lsa_recurrence,
            "the recurrent form of linear self-attention (S_t = S_{t-1} + v_t k_t^T)",
            False,
        )
    return None, "", False


def _complex_constant_plan(plan) -> bool:
    """A complex plan without upstream features, skip or input-dependent decay (a constant complex decay)."""
    return (
        getattr(plan, "upstream", None) is None
        and getattr(plan, "skip_W", None) is None
        and getattr(plan, "decay_W", None) is None
    )


def complex_plan_recurrence(plan):
    r"""One-step form of a complex constant-decay plan (RetNet's complex form, Sun et al. 2023, Sec. 2.1):
    $q, k, v = W\tilde x_t$ (complex), $S_t = S_{t-1}\,\mathrm{diag}(\lambda) + v_tk_t^\top$ per head,
    $y_t = \mathrm{Re}(W_O[S_tq_t]_h)$ (the template's real readout)."""
    c = torch.complex128
    H, d_k, d_v = plan.W_Q.shape[0], plan.W_Q.shape[1], plan.W_V.shape[1]
    kv = plan.kv_decay

    def features(x_t):
        zt = torch.cat([x_t, torch.ones_like(x_t[:, :1])], dim=-1).to(c)
        return tuple(torch.einsum("bz,hrz->bhr", zt, W.to(c)) for W in (plan.W_Q, plan.W_K, plan.W_V))

    def init(B, dtype):
        return (torch.zeros(B, H, d_v, d_k, dtype=c),)

    def step(state, x_t):
        _, k, v = features(x_t)
        S = state[0] if kv is None else state[0] * kv.to(c)[None, :, None, :]
        return (S + v[..., :, None] * k[..., None, :],)

    def readout(state, x_t):
        q, _, _ = features(x_t)
        o = (state[0] @ q[..., None])[..., 0].reshape(x_t.shape[0], -1)
        y = o if plan.W_O is None else o @ plan.W_O.to(c).T
        return y.real

    return Recurrence(init, step, readout)


def _complex_plan(variant, params) -> bool:
    """The plan is complex and the plan-derived one-step form cannot run it (it raises, or warns that it
    drops imaginary parts)."""
    try:
        plan = variant.plan(params)
    except Exception:  # noqa: BLE001 - an unbuildable plan is reported by the lifts themselves
        return False
    ws = [getattr(plan, k, None) for k in ("W_Q", "W_K", "W_V", "W_O", "kv_decay")]
    if not any(isinstance(w, torch.Tensor) and w.is_complex() for w in ws):
        return False
    d = variant.d_in(params) if callable(hook(variant, "d_in")) else variant.construct(params).d_in
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run_recurrence(plan_recurrence(plan), torch.zeros(1, 2, int(d), dtype=torch.float64))
    except Exception:  # noqa: BLE001 - any failure means the form is unusable for this plan
        return True
    return False


#: most steps of symbolic input on which a complex construction's reached subspace is grown
COMPLEX_STEPS = 12


def _reach(lift: VariantLift, form, window: int, ev: dict):
    """States reached in ``PHI_STEPS`` steps; for a complex construction, in as many steps as it takes the
    span of the reached states (a Krylov space) to stop growing (at most ``COMPLEX_STEPS``)."""
    K = PHI_STEPS
    h_seq, s_seq, _ = reachable(lift, form, K, window)
    if lift.complex:
        rank = len(reachable_span(h_seq))
        while K < COMPLEX_STEPS:
            h2, s2, _ = reachable(lift, form, K + 1, window)
            r2 = len(reachable_span(h2))
            h_seq, s_seq, K = h2, s2, K + 1
            if r2 == rank:
                break
            rank = r2
    ev["phi_steps"] = K
    return h_seq, s_seq


def _phi_words(rows: list[dict], lift: VariantLift, n: int, window: int) -> list[str]:
    names = [f"h[{k}]" for k in range(n)] + [f"x_prev[{c}]" for c in range(lift.d_in if window else 0)]
    if lift.complex:  # real coordinates (Re, Im) of every entry
        names = [f"{part} {nm}" for nm in names for part in ("Re", "Im")]
    out = []
    for a, row in enumerate(rows):
        if row:
            out.append(
                f"s[{a}] = "
                + " + ".join(f"{c}*{names[k]}" if c != 1 else names[k] for k, c in sorted(row.items()))
            )
    return out


def prove_allt(variant, sizes: dict, *, T_link: int = 6, seed: int = 0) -> LiftedClaim:
    """ALL-T: the simulation (init, step, readout) of the variant's one-step form by ``construct(θ)`` at
    ``sizes``, plus the link one-step form = registered reference at ``T <= T_link`` unless it is the
    reference."""
    if T_link < 1:
        raise ValueError(f"T_link must be >= 1; got {T_link}")
    return _guarded("all-T", lambda: _prove_allt(variant, sizes, T_link, seed), variant, sizes, None)


def _prove_allt(variant, sizes: dict, T_link: int, seed: int) -> LiftedClaim:
    form, note, is_ref = one_step_form(variant, _sample(variant, sizes, seed))
    objs = _objects("all-T", sizes, None)
    if form is None:
        msg = (
            f"{variant.name}: no one-step form to simulate (give the variant a recurrence(params) hook: "
            "constructions.recurrence.Recurrence)"
        )
        if callable(hook(variant, "plan")):
            msg += "; the one-step form derived from a plan handles real plans only, and this plan is complex"
        return LiftedClaim(Outcome("skipped", "simulation", {"engine": ENGINE}, None, msg), msg, objs)
    t0 = time.perf_counter()
    ev: dict = {"engine": ENGINE, "one_step_form": note, "phi_steps": PHI_STEPS}
    if hook(variant, "symbolic_invariant") is not None:
        ev["symbolic_invariant"] = "ignored: a hand-written invariant is not evidence (Phi is solved instead)"
    try:
        sides = [_side("rnn"), _side("recurrence", form)]
        params, lift, _ = _checked_lift(variant, sizes, seed, 2, sides)
        window = lift.upstream_window()
        h_seq, s_seq = _reach(lift, form, window, ev)
        rows, unsolved = solve_phi(h_seq, s_seq)
        if lift.mode == "symbolic" and (rows is None or lift.value_reads):
            # Phi depends on the parameters (e.g. the compressed store), or values were read: decide at the
            # sample
            params, lift, _ = _checked_lift(variant, sizes, seed, 2, sides, modes=("sampled",))
            window = lift.upstream_window()
            h_seq, s_seq = _reach(lift, form, window, ev)
            rows, unsolved = solve_phi(h_seq, s_seq)
        n = lift.num_neurons()
        ev.update(params_mode=lift.mode, window=window, neurons=n)
        if rows is None:
            ev["unsolved_state_entries"] = unsolved[:20]
            return _simulation_failed(
                variant,
                lift,
                form,
                sizes,
                ev,
                objs,
                seed,
                f"{len(unsolved)} entries of the one-step state are not a linear function of "
                f"the RNN state on the states reached in {PHI_STEPS} steps",
            )
        ev["phi"] = _phi_words(rows, lift, n, window)[:64]
        parts = simulation_obligations(lift, form, rows, window, h_seq)
        parts += time_invariance(lift, window, INVARIANCE_T)
        failing = [
            (label, idx, dv)
            for label, lhs, rhs in parts
            for idx, dv in _first_difference(np.asarray(lhs, dtype=object), np.asarray(rhs, dtype=object))
        ]
        ev["obligations"] = {label: int(np.asarray(lhs).size) for label, lhs, _ in parts}
        ev["generators"] = len(lift.ring.names)
        ev["atoms"] = _atom_names(lift)
        if failing:
            label = failing[0][0]
            ev["failing_obligations"] = sorted({lb for lb, _, _ in failing})
            found = find_point(
                lift, [((lb, idx), dv) for lb, idx, dv in failing if lb == label], ("x", "h"), seed
            )
            ev["obligation_counterexample"] = (
                {"obligation": label, "difference": render(failing[0][2])}
                if found is None
                else {
                    "obligation": found["where"][0],
                    "index": list(found["where"][1]),
                    "point": _point_json(lift, found["point"]),
                    "difference_at_point": str(found["difference"]),
                }
            )
            return _simulation_failed(
                variant, lift, form, sizes, ev, objs, seed, f"the {label} obligation of the simulation fails"
            )
        link = None
        if not is_ref:
            holds, lev, cex = _unrolled_identity(
                lift,
                T_link,
                lambda T: lift.recurrence_unrolled(form, T),
                lambda T: lift.reference_unrolled(T),
                ("one-step form", "reference"),
                seed,
            )
            ev["link"] = lev
            if not holds:
                msg = (
                    f"{variant.name}: the one-step form ({note}) differs from the registered reference at "
                    f"t={cex.get('t')} (T={T_link})"
                )
                return LiftedClaim(
                    Outcome("refuted", "simulation", ev, cex, msg),
                    msg,
                    objs,
                    _assumptions(lift),
                    lift.mode,
                    ev,
                )
            link = T_link
    except Unliftable as e:
        msg = f"{variant.name}: not liftable to exact arithmetic: {e}"
        return LiftedClaim(Outcome("skipped", "simulation", ev, None, msg), msg, objs)
    ev["seconds"] = round(time.perf_counter() - t0, 3)
    sw = _sizes_words(sizes, params)
    mw = _mode_words(lift.mode, seed, lift.angles)
    cw = (
        "The construction is complex: Φ is real-linear on the real and imaginary parts, and h ranges over "
        "the real subspace spanned by the reached states (an exact basis), proved invariant under rnn_step. "
        if lift.complex
        else ""
    )
    statement = (
        f"{mw}, at {sw} and for every sequence length T >= 1 and every real input: "
        f"the output of construct(θ) equals run_recurrence of {note}. Proved by a simulation: a linear map "
        f"Φ from the RNN state{' (with the previous input, for the token shift)' if window else ''} to the "
        f"one-step state, solved exactly from the construction, satisfies Φ(h_0) = s_0, "
        "Φ(rnn_step(h, x)) = step(Φh, x) and rnn_out(rnn_step(h, x)) = readout(step(Φh, x), x) for "
        "symbolic h and x (exact identities, non-polynomial functions uninterpreted); induction on t. "
        f"{cw}The construction's per-step features and decays were checked to be one map of (x_{{t-1}},) x_t "
        f"for t = 1..{INVARIANCE_T} (assumed for every t). "
    )
    if link is None:
        statement += "The registered reference is run_recurrence(recurrence(θ)) itself."
    else:
        statement += (
            f"The one-step form equals the registered reference(θ, x) for t = 1..{link} (proved unrolled, "
            f"exactly); beyond t = {link} the claim is about the one-step form."
        )
    return LiftedClaim(
        Outcome("proved", "simulation", ev), statement, objs, _assumptions(lift), lift.mode, ev
    )


def _simulation_failed(variant, lift: VariantLift, form, sizes, ev, objs, seed, why: str) -> LiftedClaim:
    """An obligation (or Φ) fails: search a concrete sequence where the RNN and the one-step form differ
    (``t <= SEARCH_T``): refuted if found, else failed (the simulation is not a proof, nothing is refuted)."""
    for T in range(1, SEARCH_T + 1):
        holds, sev, cex = _unrolled_identity(
            lift,
            T,
            lambda T: lift.rnn_unrolled(T),
            lambda T: lift.recurrence_unrolled(form, T),
            ("construct", "one-step form"),
            seed,
        )
        if not holds:
            ev["sequence_search"] = sev
            msg = (
                f"{variant.name}: {why}; the RNN and the one-step form differ at t={cex.get('t')} "
                f"(exact, T={T})"
            )
            return LiftedClaim(
                Outcome("refuted", "simulation", ev, cex, msg), msg, objs, _assumptions(lift), lift.mode, ev
            )
    msg = (
        f"{variant.name}: {why}; no sequence of length <= {SEARCH_T} where the RNN and the one-step form "
        f"differ "
        "was found, so nothing is refuted, but the all-T claim is not proved"
    )
    return LiftedClaim(
        Outcome("failed", "simulation", ev, None, msg), msg, objs, _assumptions(lift), lift.mode, ev
    )
