r"""Impossibility and necessity certificates (degree arguments computed by SymPy, every size).

**Degree calculus.** Scale every input, $x_s \to z\,x_s$. A function is a polynomial of total degree
$\le k$ in the inputs iff it is a polynomial of degree $\le k$ in $z$ for every input. Each stage of the
template (Zucchet et al. 2023, Sec. 3) is written with ``IndexedBase`` weights and ``Sum`` s whose
lengths $d, n, m$ are *symbols*, the previous stage is replaced by a generic polynomial in $z$ of the
degree just computed (fresh coefficient arrays $c^{(p)}$), and SymPy expands, pulls $z$ out of the sums
(``factor_terms``) and reads off ``Poly(., z).degree()``. The recurrence is handled by induction: a
state of degree $\le 2$ stays of degree $\le 2$ (base $h_0 = 0$). This gives, for every size and every
length, $\deg y_t \le 4$ (template), $\le 2$ without output gating, $\le 2$ without input gating.

**Witnesses.** Linear self-attention with $W_Q=W_K=W_V=E_{000}$ (one entry 1) has
$y_{1,0} = x_{1,0}^3$ at every size (SymPy sums the Kronecker deltas with symbolic sizes): degree 3.
The delta rule $S_t = S_{t-1}(I-\beta k_tk_t^\top)+\beta v_tk_t^\top$, $y_t=S_tq_t$ (Schlag et al. 2021,
unnormalised) with $d=1$, all weights and $\beta$ equal to 1, has $\deg y_t = 2t+1$: $5 > 4$ at $t=2$.
Softmax attention at $t=2$, $d=1$, weights 1, on the line $x_1=0$ is
$f(x_2) = x_2e^{x_2^2}/(1+e^{x_2^2})$; a template output restricted to that line is a polynomial of degree
$\le 4$, whose fifth derivative vanishes, but $f^{(5)}(1) \ne 0$ (SymPy, exact expression, value with
certified digits). Larger sizes embed these witnesses (all other weights zero).
"""

import sympy as sp

from .expressions import IDX, LSA, lsa_output

__all__ = [
    "CERTIFICATES",
    "delta_rule_degrees",
    "lsa_witness_degree",
    "softmax_fifth_derivative",
    "template_degrees",
]

z = sp.Symbol("z")
n, m, d_, d_out_ = sp.symbols("n m d d_out", integer=True, positive=True)
k, mm, aa, oo = sp.symbols("k m a o", integer=True, nonnegative=True)
A, B, C, E, D, lam, x = (sp.IndexedBase(s) for s in ("A", "B", "C", "E", "D", "lambda", "x"))
deg = sp.Function("deg")


def zdeg(expr) -> int:
    """Degree in $z$ of an expression whose sums may contain $z$ (expanded, $z$ pulled out of sums)."""
    e = sp.factor_terms(sp.expand(expr))
    return sp.Poly(e, z).degree() if e.has(z) else 0


def _generic(name: str, degree: int, index) -> sp.Expr:
    """A generic polynomial of degree ``degree`` in z with coefficient arrays ``name_p[index]``."""
    return sum(sp.IndexedBase(f"{name}_{p}")[index] * z ** p for p in range(degree + 1))


def template_degrees(*, input_gating: bool = True, output_gating: bool = True) -> dict:
    """Stage-by-stage degree bounds of the template (any $d, n, m, d_{out}$, any $t$)."""
    t = IDX["t"]
    Ax = sp.Sum(A[k, aa] * z * x[t, aa], (aa, 0, d_ - 1)) + A[k, d_]
    Bx = sp.Sum(B[k, aa] * z * x[t, aa], (aa, 0, d_ - 1)) + B[k, d_]
    u = Ax * Bx if input_gating else Ax
    du = zdeg(u)
    h_prev = _generic("h", du, k)  # induction hypothesis: deg h_{t-1} <= du (base: h_0 = 0)
    h_new = lam[k] * h_prev + u
    dh = zdeg(h_new)
    if dh > du:
        raise AssertionError("the state degree is not preserved by the recurrence")
    h_gen = _generic("h", dh, k)
    if output_gating:
        Ch = sp.Sum(C[mm, k] * h_gen, (k, 0, n - 1))
        Eh = sp.Sum(E[mm, k] * h_gen, (k, 0, n - 1))
        g = Ch * Eh
        dg = zdeg(g)
        y = sp.Sum(D[oo, mm] * _generic("g", dg, mm), (mm, 0, m - 1))
    else:
        g, dg = None, None
        y = sp.Sum(D[oo, k] * h_gen, (k, 0, n - 1))
    dy = zdeg(y)
    stages = [("input branch", Ax, zdeg(Ax)), ("input gate u", u, du), ("state step", h_new, dh)]
    if g is not None:
        stages.append(("output gate", g, dg))
    stages.append(("output y", y, dy))
    return {"stages": stages, "degree": dy}


def lsa_witness_degree() -> tuple[sp.Expr, int]:
    """$y_{1,0}$ of LSA with $W_Q=W_K=W_V=E_{000}$ at symbolic sizes, and its degree in $x$."""
    _, rhs = lsa_output(False)
    e_, i_, j_, a_, b_, c_ = (IDX[s] for s in ("eta", "i", "j", "a", "b", "c"))
    kd = sp.KroneckerDelta
    sub = {}
    for W, (p, q, r) in ((LSA.W_Q, (e_, j_, c_)), (LSA.W_K, (e_, j_, b_)), (LSA.W_V, (e_, i_, a_))):
        sub[W[p, q, r]] = kd(p, 0) * kd(q, 0) * kd(r, 0)
    val = rhs.xreplace(sub).subs({IDX["t"]: 1, e_: 0, i_: 0}).doit()
    val = sp.simplify(val)
    xs = [a for a in val.atoms(sp.Indexed)]
    return val, (sp.Poly(val, *xs).total_degree() if xs else 0)


def delta_rule_degrees(T: int = 4) -> list[tuple[int, sp.Expr, int]]:
    """Degrees of the delta rule's $y_t$ for $t\\le T$ ($d=1$, weights 1, $\\beta = 1$)."""
    xs = sp.symbols(f"x_1:{T + 1}")
    S, out = sp.Integer(0), []
    for t, xt in enumerate(xs, 1):
        q = k_ = v = xt
        S = sp.expand(S * (1 - k_ * k_) + v * k_)
        y = sp.expand(S * q)
        out.append((t, y, sp.Poly(y, *xs[:t]).total_degree()))
    return out


def softmax_fifth_derivative():
    """$f(x_2) = x_2 e^{x_2^2}/(1+e^{x_2^2})$ (softmax attention at $t=2$ on the line $x_1=0$) and $f^{(5)}(1)$."""
    x1, x2 = sp.symbols("x_1 x_2", real=True)
    y2 = (x1 * sp.exp(x2 * x1) + x2 * sp.exp(x2 * x2)) / (sp.exp(x2 * x1) + sp.exp(x2 * x2))
    f = sp.simplify(y2.subs(x1, 0))
    f5 = sp.diff(f, x2, 5).subs(x2, 1)
    value = sp.N(f5, 30, strict=True)  # raises PrecisionExhausted if the digits cannot be certified
    return y2, f, sp.simplify(f5), value


CERTIFICATES = ("TEMPLATE-DEGREE-BOUND/v1", "IMPOSSIBLE-NO-OUTPUT-GATING/v1", "IMPOSSIBLE-NO-INPUT-GATING/v1",
                "IMPOSSIBLE-DELTA-RULE/v1", "IMPOSSIBLE-SOFTMAX/v1")
