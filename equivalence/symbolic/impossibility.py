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

from dataclasses import dataclass

import numpy as np
import sympy as sp

from constructions.variants.symbolic import softmax_reference

from .expressions import IDX, LSA, lsa_output

__all__ = [
    "CERTIFICATES",
    "CERTIFICATE_FAMILIES",
    "FamilyCertificate",
    "check_on_reference",
    "delta_rule",
    "delta_rule_degrees",
    "family_witness",
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
    return sum(sp.IndexedBase(f"{name}_{p}")[index] * z**p for p in range(degree + 1))


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
    """$f(x_2) = x_2 e^{x_2^2}/(1+e^{x_2^2})$ (softmax attention at $t=2$ on the line $x_1=0$) and
    $f^{(5)}(1)$."""
    x1, x2 = sp.symbols("x_1 x_2", real=True)
    y2 = (x1 * sp.exp(x2 * x1) + x2 * sp.exp(x2 * x2)) / (sp.exp(x2 * x1) + sp.exp(x2 * x2))
    f = sp.simplify(y2.subs(x1, 0))
    f5 = sp.diff(f, x2, 5).subs(x2, 1)
    value = sp.N(f5, 30, strict=True)  # raises PrecisionExhausted if the digits cannot be certified
    return y2, f, sp.simplify(f5), value


CERTIFICATES = (
    "TEMPLATE-DEGREE-BOUND/v1",
    "IMPOSSIBLE-NO-OUTPUT-GATING/v1",
    "IMPOSSIBLE-NO-INPUT-GATING/v1",
    "IMPOSSIBLE-DELTA-RULE/v1",
    "IMPOSSIBLE-SOFTMAX/v1",
)


# -- certificates of a model family, checked on a variant's own exact reference
# --------------------------------
@dataclass(frozen=True)
class FamilyCertificate:
    r"""An impossibility certificate for a model family, by the line argument.

    *Premise* (``TEMPLATE-DEGREE-BOUND/v1``): every template output is a polynomial of total degree $\le 4$ in
    the inputs, so along any affine line $x_s = a_s + z\,b_s$ it is a polynomial of degree $\le 4$ in $z$.
    *Witness*: at the parameters ``params`` (exact, by field name) and sizes ``sizes``, along the line
    ``(a, b)``, output ``(t, o)`` of the model is either a polynomial in $z$ of degree $> 4$ or not a
    polynomial
    at all, certified by a non-zero fifth derivative at ``z0`` (SymPy, digits certified by
    ``evalf(strict=True)``). Then no template RNN, of any size (larger sizes embed the witness with zero
    weights elsewhere), equals the model for all weights and inputs.

    ``family`` computes the textbook formula of the family (the global claim); a negative control that names
    this certificate is checked on *its own* exact reference at the same witness (:func:`check_on_reference`):
    the certificate is attached only when the variant's parameters have the witness's fields and shapes and
    its
    own reference passes the same test.
    """

    id: str
    title: str
    family_text: str  # the model family, in words, with its source
    hypotheses: tuple[str, ...]
    sizes: dict  # d, heads, d_k, d_v (d_out: None = heads concatenated)
    params: dict  # field -> nested list of exact numbers, or None for an absent optional array
    line: tuple  # (a, b): nested lists [T][d] of exact numbers; x_s = a_s + z b_s
    t: int  # 1-based time of the witness output
    o: int  # output coordinate
    z0: object  # where the fifth derivative is taken (ignored when the witness is a polynomial)
    family: object  # (params: dict of object arrays, x: object array [T, d]) -> y [T, d_out]


def _array(v):
    return (
        None
        if v is None
        else np.array(sp.sympify(v), dtype=object)
        if not isinstance(v, list)
        else np.array([_array(u) if isinstance(u, list) else sp.Rational(u) for u in v], dtype=object)
    )


def line_inputs(cert: FamilyCertificate) -> np.ndarray:
    """The witness inputs ``x[s] = a[s] + z b[s]`` as an object array ``[T, d]`` of SymPy expressions in
    ``z``."""
    a, b = _array(cert.line[0]), _array(cert.line[1])
    return np.array(
        [[a[s, c] + z * b[s, c] for c in range(a.shape[1])] for s in range(a.shape[0])], dtype=object
    )


def witness_test(y) -> dict:
    r"""Is ``y(z)`` out of reach of a polynomial of degree $\le 4$ in ``z``? ``{"holds", "kind", ...}``."""
    y = sp.sympify(y)
    if y.is_polynomial(z):
        dg = sp.Poly(sp.expand(y), z).degree() if y.has(z) else 0
        return {"holds": dg > 4, "kind": "polynomial", "degree": int(dg), "expression": sp.sstr(sp.expand(y))}
    return {"holds": None, "kind": "not a polynomial", "expression": sp.sstr(y)}


#: fifth_derivative's results by (expression, z0): a pure function of the two, so they never go stale
_FIFTH: dict = {}


def fifth_derivative(y, z0) -> dict:
    """``y^(5)(z0)`` with certified digits; ``holds`` when it is certainly non-zero."""
    key = (sp.sympify(y), sp.sympify(z0))
    if key not in _FIFTH:
        _FIFTH[key] = _fifth_derivative(*key)
    return dict(_FIFTH[key])


def _fifth_derivative(y, z0) -> dict:
    f5 = sp.diff(y, z, 5).subs(z, z0)
    try:
        value = sp.N(f5, 30, strict=True)
    except Exception as e:  # noqa: BLE001 - digits not certified: the witness does not hold
        return {"holds": False, "fifth_derivative": "uncertified", "why": f"{type(e).__name__}: {e}"}
    ok = bool(value.is_number and value.is_real is not False and abs(value) > sp.Float("1e-20"))
    return {"holds": ok, "fifth_derivative": str(value), "z0": str(z0)}


def decide_witness(y, z0) -> dict:
    res = witness_test(y)
    if res["holds"] is None:
        res.update(fifth_derivative(y, z0))
    return res


def family_witness(cert: FamilyCertificate) -> dict:
    """The certificate's witness computed on the textbook formula of its family (the global claim)."""
    P = {k: _array(v) for k, v in cert.params.items()}
    y = cert.family(P, line_inputs(cert))
    return {"output": sp.sympify(y[cert.t - 1, cert.o]), **decide_witness(y[cert.t - 1, cert.o], cert.z0)}


#: points of the witness line where the torch reference is compared with the exact hook
TIE_POINTS = (sp.Rational(1, 2), sp.Integer(1), sp.Integer(2))
#: relative tolerance of that float64 comparison (a hook that is the reference agrees to ~1e-15)
TIE_RTOL = 1e-9


def tie_on_line(cert: FamilyCertificate, out, torch_reference) -> dict:
    """Compare the exact hook's witness output ``out(z)`` with the variant's registered torch ``reference``
    in float64 at the points :data:`TIE_POINTS` of the witness line. ``torch_reference(P, x)`` takes the
    witness parameters and inputs as float arrays and returns ``y [T, d_out]``. ``{"agrees": bool, ...}``: a
    disagreement beyond :data:`TIE_RTOL` shows that the hook is not the variant's reference (the certificate
    is then not attached); agreement at these points is a numeric check only, not a proof that it is."""
    a, b = _array(cert.line[0]), _array(cert.line[1])
    P = {
        k: None if v is None else np.vectorize(float, otypes=[float])(_array(v))
        for k, v in cert.params.items()
    }
    rows = []
    for z0 in TIE_POINTS:
        x = np.vectorize(float, otypes=[float])(a + z0 * b)
        try:
            got = float(np.asarray(torch_reference(P, x), dtype=float)[cert.t - 1, cert.o])
        except Exception as e:  # noqa: BLE001 - the user's reference may raise anything: not tied
            return {"agrees": False, "why": f"reference() raised {type(e).__name__}: {e} on the witness line"}
        want = float(sp.N(sp.sympify(out).subs(z, z0), 30))
        rows.append({"z": str(z0), "reference_float64": got, "symbolic_reference": want})
        if not abs(got - want) <= TIE_RTOL * max(1.0, abs(want)):
            return {
                "agrees": False,
                "points": rows,
                "why": f"at z = {z0} on the witness line the variant's reference() gives {got!r} but its "
                f"symbolic_reference gives {want!r}: the hook is not the variant's reference",
            }
    return {"agrees": True, "points": rows}


def check_on_reference(
    cert: FamilyCertificate, fields: list[tuple[str, tuple | None]], evaluate, torch_reference=None
) -> dict:
    """Does the certificate hold for a variant? ``fields``: the variant's parameter arrays at the witness
    sizes (name, shape or ``None``); ``evaluate(params, x)``: the variant's own exact reference on object
    arrays; ``torch_reference(P, x)`` (optional): its registered float64 reference on float arrays, which
    must agree with ``evaluate`` on the witness line (:func:`tie_on_line`). Returns
    ``{"applies": bool, "why": str, ...}``; ``applies`` is False when a hypothesis fails."""
    want = {k: (None if v is None else _array(v).shape) for k, v in cert.params.items()}
    have = dict(fields)
    if have != want:
        return {
            "applies": False,
            "why": f"the variant's parameters at the witness sizes are {have}, not the "
            f"family's {want}: it is not in the family of {cert.id}",
        }
    P = {k: _array(cert.params[k]) for k, _ in fields}
    try:
        y = np.asarray(evaluate(P, line_inputs(cert)), dtype=object)
        out = sp.sympify(y[cert.t - 1, cert.o])
    except Exception as e:  # noqa: BLE001 - the reference cannot be evaluated on the witness line
        return {
            "applies": False,
            "why": f"the variant's exact reference could not be evaluated on the witness "
            f"line ({type(e).__name__}: {e})",
        }
    res = decide_witness(out, cert.z0)
    fam = family_witness(cert)
    same = sp.simplify(out - fam["output"]) == 0
    res.update(output=sp.sstr(out), family_output=sp.sstr(fam["output"]), equals_family_output=bool(same))
    if not res["holds"]:
        what = (
            f"a polynomial of degree {res['degree']} <= 4 in z"
            if res["kind"] == "polynomial"
            else "a function whose fifth derivative at z0 is not certified non-zero"
        )
        return {
            "applies": False,
            **res,
            "why": f"on the witness line of {cert.id} the variant's reference is "
            f"{what}: the certificate's hypothesis does not hold",
        }
    if torch_reference is not None:
        tie = tie_on_line(cert, out, torch_reference)
        res["tie"] = tie
        if not tie["agrees"]:
            return {"applies": False, **res, "why": tie["why"]}
    return {"applies": True, **res, "why": ""}


def _softmax_family(P, x):
    return softmax_reference(P["W_Q"], P["W_K"], P["W_V"], P.get("W_O"), x)


def _l2(u):
    n2 = sum(c * c for c in u)
    return u if n2 == 0 else np.array([c / sp.sqrt(n2) for c in u], dtype=object)


def delta_rule(q, k, v, beta, alpha=None):
    r"""$S_t = \alpha_t S_{t-1}(I - \beta_t k_tk_t^\top) + \beta_t v_tk_t^\top$, $o_t = S_tq_t$ on object
    arrays
    ``q, k [T, d_k]``, ``v [T, d_v]``, ``beta, alpha [T]`` (``alpha=None``: 1). Returns ``o [T, d_v]``."""
    T, d_k = q.shape
    S = np.zeros((v.shape[1], d_k), dtype=object)
    out = np.zeros((T, v.shape[1]), dtype=object)
    for t in range(T):
        a = 1 if alpha is None else alpha[t]
        S = a * (S - beta[t] * np.outer(S @ k[t], k[t])) + beta[t] * np.outer(v[t], k[t])
        out[t] = S @ q[t]
    return out


def _heads_delta(P, x, normalize: bool, gated: bool):
    H = P["W_Q"].shape[0]
    outs = []
    for h in range(H):
        q = np.array([P["W_Q"][h] @ xt for xt in x], dtype=object)
        k = np.array([P["W_K"][h] @ xt for xt in x], dtype=object)
        v = np.array([P["W_V"][h] @ xt for xt in x], dtype=object)
        if normalize:
            q = np.array([_l2(r) for r in q], dtype=object)
            k = np.array([_l2(r) for r in k], dtype=object)
        if gated:

            def sig(u):
                return 1 / (1 + sp.exp(-u))

            beta = [sig(P["W_beta"][h] @ xt) for xt in x]
            alpha = [sig(P["W_alpha"][h] @ xt) for xt in x]
        else:
            beta, alpha = [P["beta"][h]] * len(x), None
        outs.append(delta_rule(q, k, v, beta, alpha))
    y = np.concatenate(outs, axis=1)
    return y if P.get("W_O") is None else np.array([P["W_O"] @ r for r in y], dtype=object)


_I2 = [[[1, 0], [0, 1]]]
CERTIFICATE_FAMILIES = {
    c.id: c
    for c in (
        FamilyCertificate(
            "IMPOSSIBLE-SOFTMAX/v1",
            "Softmax attention is out of reach (not a polynomial)",
            "causal softmax attention y_t = sum_s exp(q_t.k_s) v_s / sum_s exp(q_t.k_s) (Vaswani et al. "
            "2017, scale "
            "folded into W_Q)",
            (
                "parameters W_Q, W_K [H, d_k, d], W_V [H, d_v, d], optional W_O (absent at the witness)",
                (
                    "the variant's exact reference, at d = d_k = d_v = H = 1 and all weights 1, on the line "
                    "x_1 = 0, "
                    "x_2 = z, has a non-zero fifth derivative in z at z = 1 at t = 2"
                ),
            ),
            {"d": 1, "heads": 1, "d_k": 1, "d_v": 1},
            {"W_Q": [[[1]]], "W_K": [[[1]]], "W_V": [[[1]]], "W_O": None},
            ([[0], [0]], [[0], [1]]),
            2,
            0,
            sp.Integer(1),
            _softmax_family,
        ),
        FamilyCertificate(
            "IMPOSSIBLE-DELTA-RULE/v1",
            "Delta rule (unnormalised keys) is out of reach (degree grows with T)",
            "the delta rule S_t = S_{t-1}(I - beta k_t k_t^T) + beta v_t k_t^T, y_t = S_t q_t on "
            "unnormalised q, k "
            "(Schlag et al. 2021)",
            (
                "parameters W_Q, W_K [H, d_k, d], W_V [H, d_v, d], beta [H], optional W_O (absent at the "
                "witness)",
                (
                    "the variant's exact reference, at d = d_k = d_v = H = 1, all weights 1 and beta = 1, on "
                    "the line "
                    "x_1 = x_2 = z, is a polynomial of degree 5 > 4 in z at t = 2"
                ),
            ),
            {"d": 1, "heads": 1, "d_k": 1, "d_v": 1},
            {"W_Q": [[[1]]], "W_K": [[[1]]], "W_V": [[[1]]], "beta": [1], "W_O": None},
            ([[0], [0]], [[1], [1]]),
            2,
            0,
            sp.Integer(1),
            lambda P, x: _heads_delta(P, x, False, False),
        ),
        FamilyCertificate(
            "IMPOSSIBLE-DELTANET/v1",
            "DeltaNet (L2-normalised q, k; writing strength beta) is out of reach",
            "DeltaNet: S_t = S_{t-1}(I - beta k^_t k^_t^T) + beta v_t k^_t^T, y_t = S_t q^_t with q^ = "
            "q/|q|, "
            "k^ = k/|k| (Schlag et al. 2021; Yang et al. 2024)",
            (
                "parameters W_Q, W_K [H, d_k, d], W_V [H, d_v, d], beta [H], optional W_O (absent at the "
                "witness)",
                (
                    "the variant's exact reference, at d = d_k = 2, d_v = H = 1, W_Q = W_K = I, W_V = (1, "
                    "0), beta = 1/2, "
                    "on the line x_1 = (1, 0), x_2 = (1, z), has a non-zero fifth derivative in z at z = 1 "
                    "at t = 2 "
                    "(there y_2 = beta + beta(1 - beta)/sqrt(1 + z^2))"
                ),
            ),
            {"d": 2, "heads": 1, "d_k": 2, "d_v": 1},
            {"W_Q": _I2, "W_K": _I2, "W_V": [[[1, 0]]], "beta": [sp.Rational(1, 2)], "W_O": None},
            ([[1, 0], [1, 0]], [[0, 0], [0, 1]]),
            2,
            0,
            sp.Integer(1),
            lambda P, x: _heads_delta(P, x, True, False),
        ),
        FamilyCertificate(
            "IMPOSSIBLE-GATED-DELTANET/v1",
            "Gated DeltaNet is out of reach",
            "Gated DeltaNet: S_t = alpha_t S_{t-1}(I - beta_t k^_t k^_t^T) + beta_t v_t k^_t^T, y_t = S_t "
            "q^_t with "
            "normalised q, k, alpha_t = sigmoid(W_alpha x_t), beta_t = sigmoid(W_beta x_t) per head (Yang et "
            "al. 2025)",
            (
                "parameters W_Q, W_K [H, d_k, d], W_V [H, d_v, d], W_alpha [H, d], W_beta [H, d], optional "
                "W_O",
                (
                    "the variant's exact reference, at d = d_k = 2, d_v = H = 1, W_Q = W_K = I, W_V = (1, "
                    "0), "
                    "W_alpha = W_beta = 0 (so alpha = beta = sigmoid(0) = 1/2), on the line x_1 = (1, 0), "
                    "x_2 = (1, z), has "
                    "a non-zero fifth derivative in z at z = 1 at t = 2"
                ),
            ),
            {"d": 2, "heads": 1, "d_k": 2, "d_v": 1},
            {"W_Q": _I2, "W_K": _I2, "W_V": [[[1, 0]]], "W_alpha": [[0, 0]], "W_beta": [[0, 0]], "W_O": None},
            ([[1, 0], [1, 0]], [[0, 0], [0, 1]]),
            2,
            0,
            sp.Integer(1),
            lambda P, x: _heads_delta(P, x, True, True),
        ),
    )
}
