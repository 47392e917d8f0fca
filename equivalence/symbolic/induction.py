r"""Tier 2: every sequence length, by induction on a state invariant.

An :class:`Invariant` names a *memory* (for linear self-attention: $S^\eta\in\mathbb R^{d_v\times d_k}$,
the attention memory of head $\eta$; for the compressed construction: the symmetric store
$M = \sum_{s\le t} x_s x_s^\top$), says what every recurrent neuron holds as a function of the memory and
the current input (``roles``, by the neuron names of ``constructions.lsa.*_layout``), how the memory is
updated (``update``) and what the reference outputs from it (``readout``). With fresh generators for the
memory, the previous input $x_{t-1}$ and the current input $x_t$, and the construction's weights, we
check, on the project's own stage functions:

- **base**: $h_1 = \lambda\odot 0 + u(x_1) = \Phi(\mathrm{update}(0, x_1), x_1)$;
- **step**: $\lambda\odot\Phi(S, x_{t-1}) + u(x_t) = \Phi(\mathrm{update}(S, x_t), x_t)$ for a symbolic memory
$S$;
- **readout**: $D[(C\,\Phi(S,x_t))\odot(E\,\Phi(S,x_t))] = \mathrm{readout}(S, x_t)$;
- any index-level ``lemma``, with symbolic sizes (the compressed construction's
  $W_V M' W_K^\top = W_V M W_K^\top + v_t k_t^\top$ and its readout association, by :mod:`.index`).

*Meta-step (prose, not machine-checked):* by induction on $t$, base and step give
$h_t = \Phi(S_t, x_t)$ with $S_t = \mathrm{update}(S_{t-1}, x_t)$, $S_0 = 0$ — the reference's own recurrent
definition — for every $t \ge 1$; the readout lemma then gives $y^{RNN}_t = y^{ref}_t$ for all $T \ge 1$.
"""

import re
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from constructions.contract import hook
from constructions.lsa import compressed_layout, direct_layout
from constructions.rnn import input_gate, output_readout, recurrence_step

from .arrays import Variables, to_jsonable
from .engine import Outcome, decide_identity, find_counterexample, schwartz_zippel
from .expressions import IDX, LSA, Evaluator, H, d, d_k, d_v
from .index import equal_every_size
from .subjects import Subject, Unavailable

__all__ = ["Invariant", "Role", "induction", "invariant_for", "lsa_invariant", "obligations_fn"]

eta, i, j, a, b, c, o, t = (IDX[k] for k in ("eta", "i", "j", "a", "b", "c", "o", "t"))
STATE = sp.IndexedBase("h")


@dataclass(frozen=True)
class Role:
    indices: tuple  # index symbols bound by the neuron name, e.g. (eta, i, j) for kv[eta,i,j]
    value: sp.Expr


@dataclass(frozen=True)
class Invariant:
    """State invariant $h = \\Phi(\\text{memory}, x_t)$ and the reference's recurrent form (see module
    doc)."""

    name: str
    memory: dict  # name -> (shape function of the subject sizes, symmetric flag, index symbols)
    roles: dict  # neuron role -> Role
    update: dict  # memory name -> expression of the updated entry (memory and x at time t)
    readout: tuple  # (lhs index symbols, expression) of the reference output y[o] at time t
    layout: object  # sizes -> list of neuron names in storage order
    lemmas: tuple = field(
        default_factory=tuple
    )  # (title, Eq), checked once with symbolic sizes (index level)

    def statement(self) -> sp.Tuple:
        """The invariant, the update and the readout as SymPy equalities (for LaTeX and the digest)."""
        eqs = [sp.Eq(STATE[sp.Function(r)(*role.indices)], role.value) for r, role in self.roles.items()]
        for name, expr in self.update.items():
            idx = self.memory[name][2]
            eqs.append(sp.Eq(sp.IndexedBase(name + "'")[idx], expr))
        lhs_idx, rhs = self.readout
        eqs.append(sp.Eq(LSA.y_rnn[t, lhs_idx], rhs))
        eqs += [eq for _, eq in self.lemmas]
        return sp.Tuple(*eqs)


_NAME = re.compile(r"^(\w+)\[([\d,]*)\]$")


def _parse(name: str) -> tuple[str, tuple[int, ...]]:
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"neuron name {name!r} is not of the form role[i,j,...]")
    return m.group(1), tuple(int(k) for k in m.group(2).split(",") if k)


def _head_readout(with_W_O: bool, head_expr):
    if with_W_O:
        return o, sp.Sum(sp.Sum(LSA.W_O[o, eta * d_v + i] * head_expr, (i, 0, d_v - 1)), (eta, 0, H - 1))
    return eta * d_v + i, head_expr


def lsa_invariant(method: str, with_W_O: bool) -> Invariant:
    """The invariants of the direct and compressed constructions (``constructions.lsa``)."""
    S, M = LSA.S, LSA.M
    if method == "direct":
        head = sp.Sum(S[eta, i, j] * LSA.q(eta, j, t), (j, 0, d_k - 1))
        return Invariant(
            "direct",
            memory={"S": (lambda z: (z["heads"], z["d_v"], z["d_k"]), False, (eta, i, j))},
            roles={"kv": Role((eta, i, j), S[eta, i, j]), "q": Role((eta, j), LSA.q(eta, j, t))},
            update={"S": S[eta, i, j] + LSA.v(eta, i, t) * LSA.k(eta, j, t)},
            readout=_head_readout(with_W_O, head),
            layout=lambda z: direct_layout(z["heads"], z["d_k"], z["d_v"])[0],
        )
    if method == "compressed":
        # readout associated as W_V (M ((W_K^T W_Q) x_t)): the head products P = W_O W_V and Q = W_K^T W_Q are
        # the sums that the construction's wiring forms too (constructions.lsa.head_products), so the prover
        # can keep them as atoms (engine: leaf sums) instead of expanding O(d_out d^4) terms
        Qbc = sp.Sum(LSA.W_K[eta, j, b] * LSA.W_Q[eta, j, c], (j, 0, d_k - 1))  # (W_K^T W_Q)_{bc}
        r = sp.Sum(Qbc * LSA.x[t, c], (c, 0, d - 1))  # (W_K^T q_t)_b
        head = sp.Sum(LSA.W_V[eta, i, a] * sp.Sum(M[a, b] * r, (b, 0, d - 1)), (a, 0, d - 1))
        M_new = sp.IndexedBase("M'")

        def S_of(Mx):
            inner = sp.Sum(LSA.W_V[eta, i, a] * Mx[a, b] * LSA.W_K[eta, j, b], (b, 0, d - 1))
            return sp.Sum(inner, (a, 0, d - 1))

        link = sp.Eq(
            S_of(M).xreplace({M: M_new}).xreplace({M_new[a, b]: M[a, b] + LSA.x[t, a] * LSA.x[t, b]}),
            S_of(M) + LSA.v(eta, i, t) * LSA.k(eta, j, t),
        )
        readout_link = sp.Eq(head, sp.Sum(S_of(M) * LSA.q(eta, j, t), (j, 0, d_k - 1)))
        return Invariant(
            "compressed",
            memory={"M": (lambda z: (z["d"], z["d"]), True, (a, b))},
            roles={"s": Role((a, b), M[a, b]), "x": Role((c,), LSA.x[t, c])},
            update={"M": M[a, b] + LSA.x[t, a] * LSA.x[t, b]},
            readout=(
                o,
                sp.Sum(
                    sp.Sum(
                        sp.Sum(LSA.W_O[o, eta * d_v + i] * LSA.W_V[eta, i, a], (i, 0, d_v - 1))
                        * sp.Sum(M[a, b] * r, (b, 0, d - 1)),
                        (a, 0, d - 1),
                    ),
                    (eta, 0, H - 1),
                ),
            )
            if with_W_O
            else _head_readout(False, head),
            layout=lambda z: compressed_layout(z["d"], z["d_out"] or z["heads"] * z["d_v"])[0],
            lemmas=(
                ("memory map: W_V M' W_K^T = W_V M W_K^T + v_t k_t^T for M' = M + x_t x_t^T", link),
                ("readout = W_O concat((W_V M W_K^T) q_t), the LSA recurrent readout", readout_link),
            ),
        )
    raise ValueError(f"no invariant for method {method!r}")


def invariant_for(subject: Subject) -> Invariant:
    """The invariant of ``subject``: the LSA one for the built-in constructions. A variant's own
    ``symbolic_invariant`` hook is *not* used: nothing would tie it to the variant's reference (the all-T
    claims of other variants come from :func:`~equivalence.symbolic.lifted_claims.prove_allt`, whose state map
    is solved
    from the construction and whose obligations are checked against the reference's one-step form)."""
    method = hook(subject.variant, "method")
    if subject.reference.kind == "lsa" and method in ("direct", "compressed"):
        return lsa_invariant(method, subject.sizes.get("d_out") is not None)
    raise Unavailable(
        f"no built-in state invariant for variant {subject.name!r}; its all-T claim is the lifted "
        "simulation (equivalence.symbolic.lifted_claims.prove_allt)"
    )


def _variables(subject: Subject, inv: Invariant) -> Variables:
    v = Variables()
    if subject.mode == "symbolic":
        for k, shape in subject.fields:
            if shape is not None:
                v.add(k, shape)
    for name, (shape_fn, sym, _) in inv.memory.items():
        v.add(name, shape_fn(subject.sizes), symmetric=sym)
    v.add("x", (2, subject.d))  # row 0: x_{t-1}, row 1: x_t
    return v


def _sizes_env(subject: Subject) -> dict:
    z = subject.sizes
    env = {"H": z["heads"], "d": z["d"]}
    for k in ("d_k", "d_v", "d_out"):
        if z.get(k):
            env[k] = z[k]
    return env


def _fill(ev: Evaluator, expr, idx_syms, shape) -> np.ndarray:
    """Entries of ``expr`` over ``shape`` at the current time (t = 1: row 1 of x)."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = ev(expr, t=1, **{s.name: v for s, v in zip(idx_syms, idx)})
    return out


def obligations_fn(subject: Subject, inv: Invariant):
    """``fn(arrays) -> [(label, lhs, rhs)]`` for base, step and readout."""
    layout = [_parse(nm) for nm in inv.layout(subject.sizes)]
    env = _sizes_env(subject)

    def phi(ev: Evaluator, time: int) -> np.ndarray:
        h = np.empty(len(layout), dtype=object)
        for k, (role, vals) in enumerate(layout):
            r = inv.roles.get(role)
            if r is None:
                raise Unavailable(f"invariant {inv.name!r} has no role {role!r} (neuron {k})")
            h[k] = ev(r.value, t=time, **{s.name: v for s, v in zip(r.indices, vals)})
        return h

    def fn(arrays):
        P = {k: v for k, v in subject.params(arrays).items() if v is not None}
        w = subject.weights(arrays)
        if w.A.shape[0] != len(layout):
            raise Unavailable(
                f"the RNN has {w.A.shape[0]} neurons but the invariant's layout names {len(layout)}"
            )
        x = arrays["x"]
        mem = {name: arrays[name] for name in inv.memory}
        ev_old = Evaluator({**P, **mem, "x": x}, env)
        new = {}
        for name, expr in inv.update.items():
            shape_fn, _, idx_syms = inv.memory[name]
            new[name] = _fill(ev_old, expr, idx_syms, shape_fn(subject.sizes))
        zero = {
            name: np.zeros(shape_fn(subject.sizes), dtype=object)
            for name, (shape_fn, _, _) in inv.memory.items()
        }
        ev_zero = Evaluator({**P, **zero, "x": x}, env)
        new0 = {
            name: _fill(ev_zero, expr, inv.memory[name][2], inv.memory[name][0](subject.sizes))
            for name, expr in inv.update.items()
        }
        ev_new = Evaluator({**P, **new, "x": x}, env)
        ev_new0 = Evaluator({**P, **new0, "x": x}, env)
        u = input_gate(w.A, w.B, np.concatenate([x[1], np.ones(1, dtype=object)]))
        parts = [
            ("base", recurrence_step(w.lam, np.zeros(len(layout), dtype=object), u), phi(ev_new0, 1)),
            ("step", recurrence_step(w.lam, phi(ev_old, 0), u), phi(ev_new, 1)),
        ]
        y = output_readout(w.C, w.E, w.D, phi(ev_old, 1))
        lhs_idx, rhs = inv.readout
        if lhs_idx is o:
            ref = np.array([ev_old(rhs, t=1, o=k) for k in range(y.shape[0])], dtype=object)
        else:
            ref = np.empty(y.shape[0], dtype=object)
            for e in range(env["H"]):
                for ii in range(env["d_v"]):
                    ref[e * env["d_v"] + ii] = ev_old(rhs, t=1, eta=e, i=ii)
        parts.append(("readout", y, ref))
        return parts

    return fn


def induction(
    subject: Subject,
    *,
    method: str = "auto",
    probabilistic: bool = False,
    seed: int = 0,
    trials: int = 3,
    bits: int = 64,
    degree: int | None = None,
    max_terms: int | None = None,
) -> Outcome:
    """Prove base, step and readout exactly, or by Schwartz–Zippel when ``probabilistic``; the invariant's
    index-level lemmas with symbolic sizes."""
    inv = invariant_for(subject)
    variables = _variables(subject, inv)
    fn = obligations_fn(subject, inv)
    tier = "induction/schwartz-zippel" if probabilistic else "induction"
    if probabilistic:
        holds, ev, values = schwartz_zippel(fn, variables, trials=trials, bits=bits, seed=seed, degree=degree)
        failing = None if holds else values
    else:
        res = decide_identity(fn, variables, method=method, max_terms=max_terms)
        holds, ev = res.holds, dict(res.evidence)
        failing = None if holds else [(lbl, list(map(int, idx))) for lbl, idx in res.failing[:5]]
    ev["invariant"] = inv.name
    ev["obligations"] = ["base", "step", "readout"]
    if inv.lemmas:
        ev["lemmas_every_size"] = {title: equal_every_size(eq.lhs, eq.rhs) for title, eq in inv.lemmas}
        if not all(ev["lemmas_every_size"].values()):
            return Outcome(
                "error",
                tier,
                ev,
                None,
                f"{subject.name}: an index-level lemma of the invariant does not "
                "reduce to equal normal forms",
            )
    if holds:
        return Outcome("proved", tier, ev)
    cex = find_counterexample(fn, variables, seed=seed, start=failing if probabilistic else None)
    detail = None
    if cex is not None:
        arrays = variables.numeric(cex["values"])
        label, idx = cex["where"]
        detail = {
            "obligation": label,
            "index": list(idx),
            "lhs": to_jsonable(cex["lhs"]),
            "rhs": to_jsonable(cex["rhs"]),
            "point": {k: to_jsonable(v) for k, v in arrays.items()},
            "note": "x[0] is x_{t-1}, x[1] is x_t; memory arrays are the symbolic previous memory",
        }
    ev["failing"] = failing if not probabilistic else "random point"
    return Outcome(
        "refuted",
        tier,
        ev,
        detail,
        f"{subject.name}: an induction obligation fails "
        f"({detail['obligation'] if detail else 'see evidence'})",
    )
