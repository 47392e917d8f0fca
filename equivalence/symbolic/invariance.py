r"""Invariance claims: the parameter maps of ``constructions.invariances`` leave the function unchanged.

Each map is written as SymPy index rules (e.g. $A'_{k,a} = A_{\pi(k),a}$, $h'_k = h_{\pi(k)}$), which are
both the statement (LaTeX, digest) and what is evaluated. For a generic template of $n=3$ neurons,
$m=2$ gates, $d=2$ inputs and $d_{out}=2$ outputs with *symbolic* weights (and symbolic
$\alpha,\beta,c\neq0$), every instance of the map (all permutations of $S_3$ / $S_2$, every neuron or
gate index) is checked, on the stage functions of ``constructions.rnn``, by induction over time:

- step: $\lambda'\odot\Psi(h) + u'(x) = \Psi(\lambda\odot h + u(x))$ for a symbolic state $h$,
- readout: $y'(\Psi(h)) = y(h)$ (for conjugation: $y'(\bar h) = \overline{y(h)}$, so $\mathrm{Re}\,y' =
\mathrm{Re}\,y$),
- base: $\Psi(0) = 0$ (every $\Psi$ here is linear),

so the transformed RNN has $h'_t = \Psi(h_t)$ and the same output for every $T$ (meta-step in prose).
Arithmetic is exact in SymPy's rational function field $\mathbb Q(\theta, h, x, \alpha, \beta, c)$
(Gaussian rationals for conjugation). A **conformance** check applies the torch map of
``constructions.invariances`` to dyadic float64 weights (powers of two for $\alpha, \beta, c$, so
nothing rounds) and compares it exactly with the rules: the proof is about the same maps the
library applies. Sizes other than (3, 2, 2, 2) are covered by the index form of the rules (the
obligations are entrywise), stated in prose, not machine-checked.
"""

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp
import torch
from sympy.polys.domains import QQ, QQ_I
from sympy.polys.fields import field
from sympy.polys.rings import ring

import constructions.invariances as inv
from constructions.rnn import GatedLinearRNN, input_gate, output_readout, recurrence_step

from .algebra import fraction_array
from .expressions import Evaluator

__all__ = ["MAPS", "SIZES", "prove_invariance"]

SIZES = {"n": 3, "m": 2, "d": 2, "d_out": 2}
k, a, mm, o = sp.symbols("k a m o", integer=True, nonnegative=True)
A, B, lam, C, E, D, h = (sp.IndexedBase(s) for s in ("A", "B", "lambda", "C", "E", "D", "h"))
pi, sigma = sp.Function("pi"), sp.Function("sigma")
alpha, beta, c = sp.symbols("alpha beta c", nonzero=True)
k0, m0 = sp.symbols("k_0 m_0", integer=True, nonnegative=True)
KD = sp.KroneckerDelta
INDEX = {"A": (k, a), "B": (k, a), "lambda": (k,), "C": (mm, k), "E": (mm, k), "D": (o, mm), "h": (k,)}


def _scale(value, factor, i, i0):
    return value * (1 + (factor - 1) * KD(i, i0))


@dataclass(frozen=True)
class InvarianceMap:
    key: str  # function name in constructions.invariances
    title: str
    rules: dict  # array name -> new entry expression (unlisted arrays are unchanged)
    state: sp.Expr  # h'_k
    instances: object  # sizes -> list of dicts of parameter values (permutation lists, indices)
    torch_args: object  # instance -> positional args after rnn for the torch map


MAPS = {
    "permute_neurons": InvarianceMap(
        "permute_neurons",
        "neuron permutation",
        {"A": A[pi(k), a], "B": B[pi(k), a], "lambda": lam[pi(k)], "C": C[mm, pi(k)], "E": E[mm, pi(k)]},
        h[pi(k)],
        lambda z: [{"pi": p} for p in itertools.permutations(range(z["n"]))],
        lambda inst: (torch.tensor(inst["pi"]),),
    ),
    "permute_gates": InvarianceMap(
        "permute_gates",
        "gate permutation",
        {"C": C[sigma(mm), k], "E": E[sigma(mm), k], "D": D[o, sigma(mm)]},
        h[k],
        lambda z: [{"sigma": p} for p in itertools.permutations(range(z["m"]))],
        lambda inst: (torch.tensor(inst["sigma"]),),
    ),
    "rescale_input_branch": InvarianceMap(
        "rescale_input_branch",
        "input-branch rescaling",
        {"A": _scale(A[k, a], alpha, k, k0), "B": _scale(B[k, a], 1 / alpha, k, k0)},
        h[k],
        lambda z: [{"k_0": i} for i in range(z["n"])],
        lambda inst: (inst["k_0"], 2.0),
    ),
    "rescale_neuron": InvarianceMap(
        "rescale_neuron",
        "neuron rescaling",
        {
            "A": _scale(A[k, a], c, k, k0),
            "B": B[k, a],
            "C": _scale(C[mm, k], 1 / c, k, k0),
            "E": _scale(E[mm, k], 1 / c, k, k0),
        },
        _scale(h[k], c, k, k0),
        lambda z: [{"k_0": i} for i in range(z["n"])],
        lambda inst: (inst["k_0"], 2.0),
    ),
    "rescale_output_branches": InvarianceMap(
        "rescale_output_branches",
        "output-branch rescaling",
        {
            "C": _scale(C[mm, k], alpha, mm, m0),
            "E": _scale(E[mm, k], beta, mm, m0),
            "D": _scale(D[o, mm], 1 / (alpha * beta), mm, m0),
        },
        h[k],
        lambda z: [{"m_0": i} for i in range(z["m"])],
        lambda inst: (inst["m_0"], 2.0, 0.5),
    ),
    "swap_input_branches": InvarianceMap(
        "swap_input_branches",
        "input-branch swap",
        {"A": A[k, a] + KD(k, k0) * (B[k, a] - A[k, a]), "B": B[k, a] + KD(k, k0) * (A[k, a] - B[k, a])},
        h[k],
        lambda z: [{"k_0": i} for i in range(z["n"])],
        lambda inst: (inst["k_0"],),
    ),
    "swap_output_branches": InvarianceMap(
        "swap_output_branches",
        "output-branch swap",
        {
            "C": C[mm, k] + KD(mm, m0) * (E[mm, k] - C[mm, k]),
            "E": E[mm, k] + KD(mm, m0) * (C[mm, k] - E[mm, k]),
        },
        h[k],
        lambda z: [{"m_0": i} for i in range(z["m"])],
        lambda inst: (inst["m_0"],),
    ),
    "conjugate": InvarianceMap(
        "conjugate",
        "complex conjugation (real readout)",
        {
            name: sp.conjugate(base[INDEX[name]])
            for name, base in (("A", A), ("B", B), ("lambda", lam), ("C", C), ("E", E), ("D", D))
        },
        sp.conjugate(h[k]),
        lambda z: [{}],
        lambda inst: (),
    ),
}


def _SHAPES(z):
    return {
        "A": (z["n"], z["d"] + 1),
        "B": (z["n"], z["d"] + 1),
        "lambda": (z["n"],),
        "C": (z["m"], z["n"]),
        "E": (z["m"], z["n"]),
        "D": (z["d_out"], z["m"]),
        "h": (z["n"],),
    }


def statement(mp: InvarianceMap) -> sp.Tuple:
    eqs = [sp.Eq(sp.IndexedBase(name + "'")[INDEX[name]], rule) for name, rule in mp.rules.items()]
    eqs.append(sp.Eq(sp.IndexedBase("h'")[k], mp.state))
    return sp.Tuple(*eqs)


def _apply(rule, arrays, shape, idx_syms, scalars, conj=None):
    if isinstance(rule, sp.conjugate):  # conjugation of an entry (Gaussian-rational arithmetic)
        base = rule.args[0]
        src = arrays[base.base.label.name]
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            out[idx] = conj(src[idx])
        return out
    ev = Evaluator(arrays, scalars)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = ev(rule, **{s.name: v for s, v in zip(idx_syms, idx)})
    return out


def _transform(mp, arrays, inst, sizes, conj=None):
    scalars = {"alpha": arrays["alpha"], "beta": arrays["beta"], "c": arrays["c"], **inst}
    if "pi" in inst:
        scalars["pi"] = lambda i, p=inst["pi"]: p[i]
    if "sigma" in inst:
        scalars["sigma"] = lambda i, p=inst["sigma"]: p[i]
    shapes = _SHAPES(sizes)
    new = {name: arrays[name] for name in INDEX if name != "h"}
    for name, rule in mp.rules.items():
        new[name] = _apply(rule, arrays, shapes[name], INDEX[name], scalars, conj)
    psi = _apply(mp.state, arrays, shapes["h"], INDEX["h"], scalars, conj)
    return new, psi


def _obligations(mp, arrays, inst, sizes, conj=None):
    new, psi = _transform(mp, arrays, inst, sizes, conj)
    xt = np.concatenate([arrays["x"], np.ones(1, dtype=object)])
    conj = conj or (lambda v: v)
    cv = np.vectorize(conj, otypes=[object])
    step_old = recurrence_step(arrays["lambda"], arrays["h"], input_gate(arrays["A"], arrays["B"], xt))
    _, psi_step = _transform(
        mp, {**arrays, "h": step_old}, inst, sizes, conj if mp.key == "conjugate" else None
    )
    step_new = recurrence_step(new["lambda"], psi, input_gate(new["A"], new["B"], xt))
    y_old = output_readout(arrays["C"], arrays["E"], arrays["D"], arrays["h"])
    y_new = output_readout(new["C"], new["E"], new["D"], psi)
    y_ref = cv(y_old) if mp.key == "conjugate" else y_old
    zero = np.zeros(sizes["n"], dtype=object)
    _, psi0 = _transform(mp, {**arrays, "h": zero}, inst, sizes, conj if mp.key == "conjugate" else None)
    return [("step", step_new, psi_step), ("readout", y_new, y_ref), ("base", psi0, zero)]


def _symbols(sizes, complex_: bool):
    shapes = _SHAPES(sizes)
    names = []
    for name, shape in shapes.items():
        for idx in np.ndindex(shape):
            names += [f"{name}{list(idx)}"] + ([f"{name}{list(idx)}_im"] if complex_ else [])
    names += [f"x[{i}]" for i in range(sizes["d"])] + ["alpha", "beta", "c"]
    return shapes, names


def prove_invariance(key: str, sizes: dict | None = None) -> dict:
    """Check every instance of the map ``key``; returns a dict with ``holds``, counts and any failure."""
    mp = MAPS[key]
    sizes = dict(SIZES if sizes is None else sizes)
    cplx = key == "conjugate"
    shapes, names = _symbols(sizes, cplx)
    if cplx:
        R, *gens = ring([f"g{i}" for i in range(len(names))], QQ_I)
        I = R(QQ_I(0, 1))  # noqa: E741 (the imaginary unit)

        def conj(v):
            return (
                R.from_dict({mon: QQ_I(cf.x, -cf.y) for mon, cf in v.items()}) if hasattr(v, "items") else v
            )
    else:
        R, *gens = field([f"g{i}" for i in range(len(names))], QQ)
        conj = None
    it = iter(gens)
    arrays = {}
    for name, shape in shapes.items():
        arr = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            arr[idx] = next(it) + (I * next(it) if cplx else 0)
        arrays[name] = arr
    arrays["x"] = np.array([next(it) for _ in range(sizes["d"])], dtype=object)
    arrays["alpha"], arrays["beta"], arrays["c"] = next(it), next(it), next(it)
    insts = mp.instances(sizes)
    for inst in insts:
        for label, lhs, rhs in _obligations(mp, arrays, inst, sizes, conj):
            for idx in np.ndindex(lhs.shape):
                if lhs[idx] - rhs[idx] != 0:
                    return {
                        "holds": False,
                        "instances": len(insts),
                        "failed": {"instance": _js(inst), "obligation": label, "index": list(idx)},
                    }
    return {"holds": True, "instances": len(insts), "conformance": conformance(key, sizes)}


def _js(inst):
    return {k_: (list(v) if isinstance(v, tuple) else v) for k_, v in inst.items()}


def conformance(key: str, sizes: dict | None = None, seed: int = 0) -> dict:
    """Apply the torch map of ``constructions.invariances`` to dyadic weights and compare exactly with the
    rules (evaluated on the same exact numbers, with alpha = 2, beta = 1/2, c = 2)."""
    mp = MAPS[key]
    sizes = dict(SIZES if sizes is None else sizes)
    shapes = _SHAPES(sizes)
    g = torch.Generator().manual_seed(seed)
    cplx = key == "conjugate"
    dt = torch.complex128 if cplx else torch.float64
    w = {}
    for name in ("A", "B", "lambda", "C", "E", "D"):
        t = torch.round(torch.randn(*shapes[name], generator=g, dtype=torch.float64) * 8) / 8
        if cplx:
            t = torch.complex(
                t, torch.round(torch.randn(*shapes[name], generator=g, dtype=torch.float64) * 8) / 8
            )
        w[name] = t.to(dt)
    rnn = GatedLinearRNN(w["A"], w["B"], w["lambda"], w["C"], w["E"], w["D"])
    fn = getattr(inv, mp.key)
    checked = 0
    for inst in mp.instances(sizes):
        out = fn(rnn, *mp.torch_args(inst))
        got = dict(zip(("A", "B", "lambda", "C", "E", "D"), out.weights()))
        if cplx:
            exp = {name: w[name].conj().resolve_conj() for name in got}
            ok = all(torch.equal(got[nm].detach(), exp[nm]) for nm in got)
        else:
            ex = {name: fraction_array(w[name]) for name in w}
            ex.update(
                h=np.zeros(sizes["n"], dtype=object),
                x=np.zeros(sizes["d"], dtype=object),
                alpha=Fraction(2),
                beta=Fraction(1, 2),
                c=Fraction(2),
            )
            new, _ = _transform(mp, ex, inst, sizes)
            ok = all(np.array_equal(fraction_array(got[nm]), new[nm]) for nm in got)
        if not ok:
            return {"conforms": False, "instance": _js(inst)}
        checked += 1
    return {"conforms": True, "instances": checked}
