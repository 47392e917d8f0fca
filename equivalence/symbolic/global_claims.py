"""Claims that do not depend on a registered variant: degree bound, impossibility certificates, the LSA
recurrent form, and the invariances of the template (see :mod:`.impossibility`, :mod:`.index`,
:mod:`.invariance` for what each proves)."""

import sympy as sp

from .engine import Outcome, Run
from .expressions import LSA
from .index import lsa_recurrent_form
from .impossibility import (
    CERTIFICATE_FAMILIES,
    deg,
    delta_rule_degrees,
    family_witness,
    lsa_witness_degree,
    softmax_fifth_derivative,
    template_degrees,
)
from .invariance import MAPS, prove_invariance
from .invariance import SIZES as INV_SIZES
from .invariance import statement as invariance_statement

__all__ = ["GLOBAL_IDS", "invariance_id", "run_global"]


def invariance_id(key: str) -> str:
    return "INVARIANCE-" + key.upper().replace("_", "-") + "/v1"


GLOBAL_IDS = (
    "TEMPLATE-DEGREE-BOUND/v1",
    "IMPOSSIBLE-NO-OUTPUT-GATING/v1",
    "IMPOSSIBLE-NO-INPUT-GATING/v1",
    "IMPOSSIBLE-DELTA-RULE/v1",
    "IMPOSSIBLE-SOFTMAX/v1",
    "IMPOSSIBLE-DELTANET/v1",
    "IMPOSSIBLE-GATED-DELTANET/v1",
    "LSA-RECURRENT-FORM/v1",
) + tuple(invariance_id(k) for k in MAPS)


def _stage_eqs(res) -> list:
    return [sp.Eq(deg(expr), value) for _, expr, value in res["stages"]]


def _degree_bound() -> Run:
    res = template_degrees()
    ok = res["degree"] == 4
    stmt = (
        "For every input size d, width n, gate count m, output size d_out, every length and all weights "
        "(real or "
        "complex), the template's output y_t is a polynomial of total degree <= 4 in the inputs x_1..x_t. "
        "SymPy computed the degree in z of every stage after the scaling x_s -> z x_s, with symbolic sizes; "
        "the "
        "recurrence keeps degree <= 2 (induction, base h_0 = 0)."
    )
    ev = {"stage_degrees": {name: v for name, _, v in res["stages"]}}
    return Run(
        "Template output has degree <= 4 in the inputs",
        stmt,
        "certificate",
        sp.Tuple(*_stage_eqs(res)),
        None,
        Outcome("proved" if ok else "error", "certificate", ev, None, "" if ok else "unexpected degree"),
    )


def _no_gating(which: str) -> Run:
    kw = {"output_gating": False} if which == "output" else {"input_gating": False}
    res = template_degrees(**kw)
    witness, wdeg = lsa_witness_degree()
    ok = res["degree"] < wdeg
    stmt = (
        f"Without {which} gating ({'y_t = D h_t' if which == 'output' else 'u_t = A x~_t'}), every RNN of "
        "the "
        f"template, of any size and any weights, outputs a polynomial of degree <= {res['degree']} in the "
        "inputs "
        "(SymPy degree calculus, symbolic sizes), while linear self-attention with W_Q = W_K = W_V = E_000 "
        "has "
        f"y_{{1,0}} = {witness} (degree {wdeg}, SymPy with symbolic sizes): so for every size there are LSA "
        "weights "
        f"that no such RNN implements; {which} gating is necessary."
    )
    objs = sp.Tuple(*_stage_eqs(res), sp.Eq(LSA.y_lsa[1, 0], witness))
    ev = {"stage_degrees": {name: v for name, _, v in res["stages"]}, "lsa_witness_degree": wdeg}
    return Run(
        f"Impossible without {which} gating",
        stmt,
        "certificate",
        objs,
        None,
        Outcome("proved" if ok else "error", "certificate", ev),
    )


def _delta() -> Run:
    rows = delta_rule_degrees(4)
    degs = {t: dg for t, _, dg in rows}
    ok = all(dg == 2 * t + 1 for t, _, dg in rows) and degs[2] > 4
    stmt = (
        "The delta rule S_t = S_{t-1}(I - beta k_t k_t^T) + beta v_t k_t^T, y_t = S_t q_t (Schlag et al. "
        "2021, "
        "unnormalised keys; DeltaNet) with d = d_k = d_v = 1 and all weights and beta equal to 1 has deg y_t "
        "= 2t+1 "
        "(SymPy, t = 1..4): 5 > 4 at t = 2, while every template output has degree <= 4 "
        "(TEMPLATE-DEGREE-BOUND/v1). No template RNN of any size equals the delta rule for these weights "
        "(larger "
        "sizes embed them), hence not for all weights, for any T >= 2. (With L2-normalised keys the delta "
        "rule is "
        "not even polynomial.)"
    )
    objs = sp.Tuple(
        *[sp.Eq(sp.Symbol(f"y_{t}"), y) for t, y, _ in rows[:3]],
        *[sp.Eq(deg(sp.Symbol(f"y_{t}")), dg) for t, _, dg in rows],
    )
    return Run(
        "Delta rule is out of reach (degree grows with T)",
        stmt,
        "certificate",
        objs,
        None,
        Outcome(
            "proved" if ok else "error", "certificate", {"degrees": {str(t): dg for t, dg in degs.items()}}
        ),
    )


def _softmax() -> Run:
    y2, f, f5, value = softmax_fifth_derivative()
    ok = abs(value) > 1e-20
    x2 = sp.Symbol("x_2", real=True)
    stmt = (
        "Softmax attention y_t = sum_s exp(q_t.k_s) v_s / sum_s exp(q_t.k_s) with d = 1 and weights 1, at t "
        "= 2 on "
        "the line x_1 = 0, is f(x_2) = x_2 e^{x_2^2} / (1 + e^{x_2^2}). Every template output is a "
        "polynomial of "
        "degree <= 4 (TEMPLATE-DEGREE-BOUND/v1), so its restriction to that line has zero fifth derivative; "
        f"SymPy gives f^(5)(1) = {sp.sstr(f5)} = {sp.N(value, 20)} != 0 (digits certified by "
        "evalf(strict=True)). "
        "No template RNN of any size equals softmax attention (larger sizes embed the witness)."
    )
    objs = sp.Tuple(
        sp.Eq(sp.Symbol("y_2"), y2),
        sp.Eq(sp.Function("f")(x2), f),
        sp.Eq(sp.Subs(sp.Derivative(sp.Function("f")(x2), (x2, 5)), x2, 1), f5),
    )
    return Run(
        "Softmax attention is out of reach (not a polynomial)",
        stmt,
        "certificate",
        objs,
        None,
        Outcome("proved" if ok else "error", "certificate", {"fifth_derivative_at_1": str(sp.N(value, 30))}),
    )


def _family(cid: str) -> Run:
    """A family certificate on the family's textbook formula
    (:data:`~.impossibility.CERTIFICATE_FAMILIES`)."""
    cert = CERTIFICATE_FAMILIES[cid]
    res = family_witness(cert)
    ok = bool(res["holds"])
    how = (
        f"a polynomial of degree {res.get('degree')} > 4 in z"
        if res["kind"] == "polynomial"
        else f"not a polynomial: its fifth derivative at z = {res.get('z0')} is "
        f"{res.get('fifth_derivative')} != 0 "
        "(digits certified by evalf(strict=True))"
    )
    stmt = (
        f"{cert.family_text}. At the witness ({'; '.join(cert.hypotheses[1:])}) output y_{cert.t} is "
        f"{sp.sstr(res['output'])}: {how}. Every template output restricted to an affine line is a "
        "polynomial "
        "of degree <= 4 in z (TEMPLATE-DEGREE-BOUND/v1), so no template RNN of any size equals this family "
        "for all weights (larger sizes embed the witness with zero weights elsewhere)."
    )
    z = sp.Symbol("z")
    objs = sp.Tuple(sp.Eq(sp.Function(f"y_{cert.t}")(z), res["output"]))
    ev = {k: (sp.sstr(v) if isinstance(v, sp.Basic) else v) for k, v in res.items()}
    return Run(
        cert.title,
        stmt,
        "certificate",
        objs,
        None,
        Outcome("proved" if ok else "error", "certificate", ev, None, "" if ok else "the witness fails"),
    )


def _recurrent_form() -> Run:
    eq, ok = lsa_recurrent_form()
    stmt = (
        "For every H, d, d_k, d_v, every t >= 1, every head eta and row i: the parallel form of causal "
        "linear "
        "self-attention sum_{s<=t} v_s (k_s^T q_t) equals S_t q_t with S_t = sum_{s<=t} v_s k_s^T "
        "(index-level normal "
        "forms: linearity and Fubini over rectangular ranges). S_t = S_{t-1} + v_t k_t^T with S_0 = 0 is the "
        "definition of the finite sum (not machine-checked)."
    )
    return Run(
        "LSA parallel form = recurrent form (every size)",
        stmt,
        "index",
        sp.Tuple(eq),
        None,
        Outcome("proved" if ok else "error", "index", {}),
    )


def _invariance(key: str) -> Run:
    mp = MAPS[key]
    res = prove_invariance(key)
    conf = res.get("conformance", {})
    z = INV_SIZES
    stmt = (
        f"The {mp.title} of constructions.invariances.{mp.key} leaves the template's function unchanged, for "
        "every length T (induction: step and readout commute with the state map h' shown, base h = 0) and "
        "all "
        f"weights{' and all non-zero alpha, beta, c' if any(s in key for s in ('rescale',)) else ''}: "
        "checked "
        f"for every instance ({res['instances']}) at n = {z['n']} neurons, m = {z['m']} gates, d = {z['d']}, "
        f"d_out = {z['d_out']} with symbolic weights (exact rational-function arithmetic"
        f"{'; for conjugation y_new = conj(y), so Re y_new = Re y' if key == 'conjugate' else ''}); the "
        "torch map "
        "conforms exactly to the rules on dyadic weights. Other sizes: the rules are entrywise (prose, not "
        "machine-checked)."
    )
    if not res["holds"]:
        out = Outcome("refuted", "induction", res, res.get("failed"), f"{key}: an obligation fails")
    elif not conf.get("conforms", False):
        out = Outcome("refuted", "induction", res, conf, f"{key}: the torch map does not match its rules")
    else:
        out = Outcome("proved", "induction", res)
    return Run(f"Invariance: {mp.title}", stmt, "induction", invariance_statement(mp), None, out)


def run_global(claim_id: str) -> Run:
    if claim_id == "TEMPLATE-DEGREE-BOUND/v1":
        return _degree_bound()
    if claim_id == "IMPOSSIBLE-NO-OUTPUT-GATING/v1":
        return _no_gating("output")
    if claim_id == "IMPOSSIBLE-NO-INPUT-GATING/v1":
        return _no_gating("input")
    if claim_id == "IMPOSSIBLE-DELTA-RULE/v1":
        return _delta()
    if claim_id == "IMPOSSIBLE-SOFTMAX/v1":
        return _softmax()
    if claim_id in ("IMPOSSIBLE-DELTANET/v1", "IMPOSSIBLE-GATED-DELTANET/v1"):
        return _family(claim_id)
    if claim_id == "LSA-RECURRENT-FORM/v1":
        return _recurrent_form()
    for key in MAPS:
        if claim_id == invariance_id(key):
            return _invariance(key)
    raise KeyError(f"no global claim {claim_id!r}")
