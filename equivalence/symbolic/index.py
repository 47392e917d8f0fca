r"""Tier 3: every size, by index-level identities with symbolic $H, d, d_k, d_v, t$.

**Normal form of sums.** :func:`normal_form` rewrites an expression built from ``+``, ``*``,
positive integer powers and ``Sum`` s over independent index ranges into a multiset of terms
$c\cdot\sum_{\text{dummies}}\prod(\text{factors})$, using only linearity of $\sum$, distributivity
and Fubini for finite rectangular index ranges, with bound variables renamed canonically. Two
expressions with equal normal forms are equal for *every* value of the size symbols. (This
normaliser is ours: SymPy supplies the expression objects and their comparison.)

**What is proved for the direct construction** (``lsa-direct``): the *role equations* R1–R7 of
:func:`direct_roles` describe the wiring of ``constructions.lsa.direct_weights`` neuron by neuron
($\lambda$ and the input gate of ``kv[η,i,j]`` and ``q[η,j]``, what gates ``g[η,i,j]`` read, how
$D$ sums them). (a) *Conformance*: the code satisfies R1–R7 exactly (polynomial identities in the
weights, inputs and a symbolic state) at every size of a grid (``grid``). (b) *Every size*: from R1–R7
with symbolic sizes, the invariant step and readout of the all-T tier hold, and the LSA recurrent form
equals the LSA parallel form (Fubini). Together: for every size and every $T$, *a wiring that satisfies
R1–R7* computes LSA; that ``direct_weights`` satisfies R1–R7 is machine-checked on the grid only.
The compressed construction's triangular store ($\sum_{a\le b}$ with symmetrised coefficients) is not
handled by this normaliser: for it, every-size is **not** claimed.
"""

import itertools

import numpy as np
import sympy as sp

from constructions.lsa import direct_layout, direct_weights
from constructions.rnn import input_gate

from .arrays import Variables
from .engine import decide_identity
from .expressions import IDX, LSA, Evaluator, H, d_k, d_v, lsa_output

__all__ = [
    "direct_conformance",
    "direct_every_size",
    "direct_roles",
    "equal_every_size",
    "lsa_recurrent_form",
    "normal_form",
]

eta, i, j, t, s, o = (IDX[k] for k in ("eta", "i", "j", "t", "s", "o"))
kv, qn, g = sp.Function("kv"), sp.Function("q"), sp.Function("g")
lam_, u_, h_, z_, y_ = (sp.IndexedBase(n) for n in ("lambda", "u", "h", "z", "y"))
Ch, Eh = sp.IndexedBase("(Ch)"), sp.IndexedBase("(Eh)")


# -- the normaliser ----------------------------------------------------------------------------------
class _Fresh:
    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1
        return sp.Dummy(f"_s{self.n}", integer=True)


def _terms(e, fresh) -> list[tuple]:
    """List of (coefficient, limits, factors)."""
    if isinstance(e, sp.Add):
        return [tm for arg in e.args for tm in _terms(arg, fresh)]
    if isinstance(e, sp.Mul):
        out = [(sp.Integer(1), (), ())]
        for arg in e.args:
            new = []
            for c1, l1, f1 in out:
                for c2, l2, f2 in _terms(arg, fresh):
                    new.append((c1 * c2, l1 + l2, f1 + f2))
            out = new
        return out
    if isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp > 0 and (e.base.has(sp.Sum) or e.base.is_Add):
        return _terms(sp.Mul(*([e.base] * int(e.exp)), evaluate=False), fresh)
    if isinstance(e, sp.Sum):
        sub, limits = {}, []
        for v, lo, hi in reversed(e.limits):  # outermost first
            nv = fresh()
            lo, hi = lo.xreplace(sub), hi.xreplace(sub)
            sub[v] = nv
            limits.append((nv, lo, hi))
        body = e.function.xreplace(sub)
        return [(c, tuple(limits) + lim, f) for c, lim, f in _terms(body, fresh)]
    if e.is_Number:
        return [(e, (), ())]
    return [(sp.Integer(1), (), (e,))]


def _canonical(limits, factors) -> str:
    dummies = [v for v, _, _ in limits]
    if any(lo.has(*dummies) or hi.has(*dummies) for _, lo, hi in limits):
        raise ValueError("normal_form handles sums over independent (rectangular) index ranges only")
    best = None
    perms = itertools.permutations(range(len(dummies))) if len(dummies) <= 6 else [tuple(range(len(dummies)))]
    for perm in perms:
        ren = {dummies[p]: sp.Symbol(f"_k{r}", integer=True) for r, p in enumerate(perm)}
        lim = sorted(sp.srepr(sp.Tuple(ren[v], lo, hi)) for v, lo, hi in limits)
        fac = sorted(sp.srepr(f.xreplace(ren)) for f in factors)
        key = "|".join(lim) + "#" + "*".join(fac)
        if best is None or key < best:
            best = key
    return best


def normal_form(e) -> dict[str, sp.Expr]:
    """``{canonical term: coefficient}`` with zero coefficients dropped (see module docstring)."""
    out: dict[str, sp.Expr] = {}
    for c, limits, factors in _terms(sp.expand(e, deep=False) if not e.has(sp.Sum) else e, _Fresh()):
        key = _canonical(limits, factors)
        out[key] = out.get(key, 0) + c
    return {k: v for k, v in out.items() if v != 0}


def equal_every_size(lhs, rhs) -> bool:
    return normal_form(lhs) == normal_form(rhs)


# -- LSA and the direct construction -------------------------------------------------------------------
def lsa_recurrent_form() -> tuple[sp.Eq, bool]:
    r"""Parallel form $\sum_{s\le t} v_s (k_s^\top q_t)$ equals the recurrent readout $S_t q_t$ with
    $S_t = \sum_{s\le t} v_s k_s^\top$, entrywise, for every size (normal forms)."""
    _, parallel = lsa_output(False)
    S_t = sp.Sum(LSA.v(eta, i, s) * LSA.k(eta, j, s), (s, 1, t))
    recurrent = sp.Sum(S_t * LSA.q(eta, j, t), (j, 0, d_k - 1))
    return sp.Eq(parallel, recurrent), equal_every_size(parallel, recurrent)


def direct_roles(with_W_O: bool) -> list[tuple[str, sp.Eq]]:
    """Role equations R1–R7 of the direct construction (``constructions.lsa`` module docstring)."""
    v, k, q = LSA.v(eta, i, t), LSA.k(eta, j, t), LSA.q(eta, j, t)
    if with_W_O:
        y_rule = sp.Eq(
            y_[o],
            sp.Sum(
                LSA.W_O[o, eta * d_v + i] * z_[g(eta, i, j)],
                (j, 0, d_k - 1),
                (i, 0, d_v - 1),
                (eta, 0, H - 1),
            ),
        )
    else:
        y_rule = sp.Eq(y_[eta * d_v + i], sp.Sum(z_[g(eta, i, j)], (j, 0, d_k - 1)))
    return [
        ("R1", sp.Eq(lam_[kv(eta, i, j)], 1)),
        ("R2", sp.Eq(u_[kv(eta, i, j)], v * k)),
        ("R3", sp.Eq(lam_[qn(eta, j)], 0)),
        ("R4", sp.Eq(u_[qn(eta, j)], q)),
        ("R5", sp.Eq(Ch[g(eta, i, j)], h_[kv(eta, i, j)])),
        ("R6", sp.Eq(Eh[g(eta, i, j)], h_[qn(eta, j)])),
        ("R7", y_rule),
    ]


def direct_every_size(with_W_O: bool) -> tuple[list[sp.Eq], bool]:
    """From R1–R7 at symbolic sizes: invariant step, query step and readout (see module docstring)."""
    roles = dict(direct_roles(with_W_O))
    S, Sn = LSA.S, sp.IndexedBase("S'")
    v, k, q = LSA.v(eta, i, t), LSA.k(eta, j, t), LSA.q(eta, j, t)
    # step of a key-value neuron holding S[eta,i,j]: lambda * S + u, with R1, R2
    kv_step = roles["R1"].rhs * S[eta, i, j] + roles["R2"].rhs
    # step of a query neuron (any previous value p): lambda * p + u, with R3, R4
    p = sp.Symbol("p")
    q_step = roles["R3"].rhs * p + roles["R4"].rhs
    # readout: gate g[eta,i,j] = (Ch)(Eh) = h_kv * h_q = S[eta,i,j] * q[eta,j] by R5, R6 and the invariant
    gate = S[eta, i, j] * q
    y_rhs = roles["R7"].rhs.xreplace({z_[g(eta, i, j)]: gate})
    head = sp.Sum(S[eta, i, j] * q, (j, 0, d_k - 1))
    target = (
        sp.Sum(sp.Sum(LSA.W_O[o, eta * d_v + i] * head, (i, 0, d_v - 1)), (eta, 0, H - 1))
        if with_W_O
        else head
    )
    eqs = [sp.Eq(Sn[eta, i, j], kv_step), sp.Eq(h_[qn(eta, j)], q_step), sp.Eq(roles["R7"].lhs, y_rhs)]
    ok = (
        equal_every_size(kv_step, S[eta, i, j] + v * k)
        and equal_every_size(q_step, q)
        and equal_every_size(y_rhs, target)
    )
    return eqs, ok


def direct_conformance(sizes: dict, *, with_W_O: bool) -> tuple[bool, list]:
    """Check R1–R7 on ``direct_weights`` at one size (identities in weights, input and a symbolic state)."""
    Hn, dn, dkn, dvn = sizes["heads"], sizes["d"], sizes["d_k"], sizes["d_v"]
    d_outn = sizes.get("d_out") or 2
    names, gates = direct_layout(Hn, dkn, dvn)
    pos = {nm: p for p, nm in enumerate(names)}
    gpos = {nm: p for p, nm in enumerate(gates)}
    V = Variables().add("W_Q", (Hn, dkn, dn)).add("W_K", (Hn, dkn, dn)).add("W_V", (Hn, dvn, dn))
    if with_W_O:
        V.add("W_O", (d_outn, Hn * dvn))
    V.add("x", (2, dn)).add("h", (len(names),)).add("z", (len(gates),))
    roles = dict(direct_roles(with_W_O))
    env = {"H": Hn, "d": dn, "d_k": dkn, "d_v": dvn}

    def fn(arr):
        w = direct_weights(arr["W_Q"], arr["W_K"], arr["W_V"], arr.get("W_O"))
        ev = Evaluator({k_: v_ for k_, v_ in arr.items()}, env)
        u = input_gate(w.A, w.B, np.concatenate([arr["x"][1], np.ones(1, dtype=object)]))
        Chv = arr["h"] @ w.C.T
        Ehv = arr["h"] @ w.E.T
        y = arr["z"] @ w.D.T
        L, R = [], []
        for e, ii, jj in itertools.product(range(Hn), range(dvn), range(dkn)):
            b = {"eta": e, "i": ii, "j": jj, "t": 1}
            nkv, gg = pos[f"kv[{e},{ii},{jj}]"], gpos[f"g[{e},{ii},{jj}]"]
            L += [w.lam[nkv], u[nkv], Chv[gg], Ehv[gg]]
            R += [1, ev(roles["R2"].rhs, **b), arr["h"][nkv], arr["h"][pos[f"q[{e},{jj}]"]]]
        for e, jj in itertools.product(range(Hn), range(dkn)):
            nq = pos[f"q[{e},{jj}]"]
            L += [w.lam[nq], u[nq]]
            R += [0, ev(roles["R4"].rhs, eta=e, j=jj, t=1)]
        zarr = {
            f"g[{e},{ii},{jj}]": arr["z"][gpos[f"g[{e},{ii},{jj}]"]]
            for e, ii, jj in itertools.product(range(Hn), range(dvn), range(dkn))
        }
        if with_W_O:
            for oo in range(d_outn):
                L.append(y[oo])
                R.append(
                    sum(
                        arr["W_O"][oo, e * dvn + ii] * zarr[f"g[{e},{ii},{jj}]"]
                        for e, ii, jj in itertools.product(range(Hn), range(dvn), range(dkn))
                    )
                )
        else:
            for e, ii in itertools.product(range(Hn), range(dvn)):
                L.append(y[e * dvn + ii])
                R.append(sum(zarr[f"g[{e},{ii},{jj}]"] for jj in range(dkn)))
        return [("roles", np.array(L, dtype=object), np.array(R, dtype=object))]

    res = decide_identity(fn, V)
    return res.holds, res.failing[:3]
