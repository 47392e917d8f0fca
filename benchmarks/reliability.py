r"""Reliability of the verifier itself: false alarms and detection power, measured.

``python -m benchmarks.reliability [--quick] [--out docs/reliability_table.md] [--json FILE] [--seed N]``

1. **False alarms.** Random *correct* cases — the paper's constructions (Zucchet et al. 2023, Sec. 3 /
   App. A; registered variants ``lsa-direct`` and ``lsa-compressed``) of LSAs drawn from several
   families, and the gated RNN template with $\lambda$ near 1 or complex $|\lambda| = 1$ — are compared with
   their float64 reference under the tolerance model of :mod:`constructions.tolerance`, exactly as
   ``verify`` does (``Variant.magnitude`` / ``Variant.path_length``). The largest error/bound ratio per
   dtype and family is reported; any ratio above 1 is a false alarm, printed with its case. fp16/bf16 use
   the low-precision model (:func:`constructions.tolerance.low_precision_bound`: $\gamma_{n_0}M$ for the
   non-recurrent stages plus the running error bound of the state accumulation; docs/tolerance.md).
2. **Detection power.** Mutants of correct constructions (:mod:`properties.mutations`) per kind and
   $\varepsilon$, per dtype (float64, float32, bfloat16, float16): the fraction caught by the numeric check
   (model bound), by the exact-integer tier (integer data on which the construction is exact at that
   dtype, no tolerance), and by the symbolic prover when ``equivalence.symbolic`` exists.

Everything is drawn from seeded ``torch.Generator`` / ``numpy.random.Generator`` objects: same seed, same
table. ``--quick`` is the slice that CI runs (``tests/test_reliability.py``).
"""

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import constructions
from constructions import GatedLinearRNN, LinearSelfAttention, lsa_to_rnn
from constructions.registry import LSAParams, get
from constructions.rnn import NumericalHazardWarning, augment
from constructions.tolerance import (
    compare,
    construction_depth,
    low_precision_bound,
    rnn_path_length,
    template_path_length,
)

__all__ = [
    "FAMILIES",
    "LOW_PRECISION",
    "Stats",
    "detection",
    "draw_lsa_case",
    "false_alarms",
    "low_precision_model",
    "main",
    "small_integer_case",
]

#: families of correct cases (LSA constructions) and of template cases
FAMILIES = (
    "generic",
    "rank-deficient",
    "badly-scaled",
    "zero-rows",
    "repeated",
    "numpy-uniform",
    "one-hot-input",
    "long",
    "lambda-near-1",
    "complex-unit-circle",
)
TEMPLATE_FAMILIES = ("lambda-near-1", "complex-unit-circle")
LOW_PRECISION = (torch.bfloat16, torch.float16)


@dataclass
class Stats:
    cases: int = 0
    sequences: int = 0
    worst: float = 0.0
    worst_case: str = ""
    failures: list = field(default_factory=list)
    overflows: list = field(default_factory=list)

    def add(self, ratio: float, batch: int, case: str, overflow: bool = False) -> None:
        self.cases += 1
        self.sequences += batch
        if overflow:  # the candidate is not representable in this dtype: reported, never compared
            self.overflows.append(case)
            return
        if not ratio <= 1.0:
            self.failures.append(f"ratio {ratio:.3g}: {case}")
        if ratio > self.worst or math.isnan(ratio):
            self.worst, self.worst_case = ratio, case


def _randint(g, lo, hi) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=g))


def _f32(t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``t`` rounded to ``dtype`` (float32, or the case's fp16/bf16), held in float64: the cast of the case
    adds no rounding, so the candidate sees the very numbers of the reference."""
    return t.to(dtype).to(torch.float64)


def draw_lsa_case(family: str, g: torch.Generator, dtype: torch.dtype):
    """Float64 ``LSAParams`` and input batch of one correct case of ``family`` (values exact in float32, or in
    ``dtype`` when it is fp16/bf16)."""

    long = family == "long"
    d = _randint(g, 1, 4 if long else 6)
    H = _randint(g, 1, 2 if long else 3)
    d_k, d_v = _randint(g, 1, 4), _randint(g, 1, 4)
    d_out = _randint(g, 1, 4) if bool(torch.rand(1, generator=g) < 0.5) else None
    T = _randint(g, 1024, 1536) if long else _randint(g, 1, 64)
    B = 1 if long else 4
    shapes = {"W_Q": (H, d_k, d), "W_K": (H, d_k, d), "W_V": (H, d_v, d)}
    if d_out:
        shapes["W_O"] = (d_out, H * d_v)
    W = {}
    low = dtype in LOW_PRECISION
    for name, shape in shapes.items():
        if family == "numpy-uniform":  # a different generator family altogether
            rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g)))
            w = torch.from_numpy(rng.uniform(-1, 1, shape))
        else:
            w = torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(shape[-1])
        if family == "rank-deficient":
            r = _randint(g, 0, max(0, min(shape[-2:]) - 1))
            w = (
                w[..., :r] @ torch.randn(*shape[:-2], r, shape[-1], generator=g, dtype=torch.float64)
                if r
                else 0 * w
            )
        elif family == "badly-scaled":  # every row scaled by 10^U(-3, 3) (10^U(-1, 1) for fp16/bf16)
            span = 1.0 if low else 3.0
            w = w * 10.0 ** ((torch.rand(*shape[:-1], 1, generator=g, dtype=torch.float64) * 2 - 1) * span)
        elif family == "zero-rows":
            w[..., : max(1, shape[-2] // 2), :] = 0
        elif family == "repeated":
            w = torch.round(w * 2) / 2
        W[name] = _f32(w, dtype if low else torch.float32)
    params = LSAParams(W["W_Q"], W["W_K"], W["W_V"], W.get("W_O"))
    x = torch.randn(B, T, d, generator=g, dtype=torch.float64)
    if family == "one-hot-input":
        x = torch.nn.functional.one_hot(torch.randint(0, d, (B, T), generator=g), d).to(torch.float64)
    elif family == "badly-scaled" and not low:
        x = x * 10.0 ** float(torch.randint(-2, 3, (1,), generator=g))
    return (
        params,
        _f32(x, dtype if low else torch.float32),
        {"family": family, "H": H, "d": d, "d_k": d_k, "d_v": d_v, "d_out": d_out, "T": T, "B": B},
    )


def _cast(params, dtype):
    return dataclasses.replace(
        params,
        **{
            k: v.to(dtype)
            for k, v in vars(params).items()
            if isinstance(v, torch.Tensor) and v.is_floating_point()
        },
    )


def _lsa_eval(params, x):
    """Float64 reference and magnitude (recurrent form for long sequences: O(T) memory)."""
    from properties.magnitudes import abs64  # lazy: start-up time (Hypothesis)

    lsa = params.lsa()
    if x.shape[1] <= 256:
        return lsa(x), get("lsa-direct").magnitude(params, x)

    M = LinearSelfAttention(abs64(lsa.W_Q), abs64(lsa.W_K), abs64(lsa.W_V), abs64(lsa.W_O)).forward_recurrent(
        abs64(x)
    )
    return lsa.forward_recurrent(x), M


def _lsa_ratio(params, x, method: str, dtype: torch.dtype, mode: str) -> tuple[float | None, float | None]:
    """Error/bound of the construction at ``dtype`` (model bound; for fp16/bf16 the low-precision model)."""

    v = get(f"lsa-{method}")
    ref, M = _lsa_eval(params, x)
    rnn = v.construct(_cast(params, dtype))
    if dtype in LOW_PRECISION:  # fp16's range (65504) can overflow: counted in the table, not warned about
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalHazardWarning)
            y = rnn(x.to(dtype), mode=mode)
    else:
        y = rnn(x.to(dtype), mode=mode)
    if dtype not in LOW_PRECISION:
        return compare(y, ref, M, n=v.path_length(params, x.shape[1]), dtype=dtype).ratio, None
    err = (y.double() - ref).abs()
    if not bool(torch.isfinite(err).all()):
        return None, None  # overflow of the candidate (fp16's range is 65504)
    return float(
        torch.where(err == 0, 0.0, err / low_precision_model(params, x, M, method, dtype, mode)).max()
    ), None


def low_precision_model(params, x, M, method: str, dtype: torch.dtype, mode: str) -> torch.Tensor:
    r"""The fp16/bf16 bound of :func:`constructions.tolerance.low_precision_bound` for the ``method``
    construction of ``params`` built at ``dtype`` (docs/tolerance.md). Its ``extra`` roundings: 4 for the
    LSA weights and 3 for the input (the output is a product of three linear forms of $x$) unless they are
    exact at ``dtype``; the construction's own weight products
    (:func:`constructions.tolerance.construction_depth`, plus any extra non-zero the rounding made) unless
    the weights built at ``dtype`` equal the float64 ones exactly (the direct construction only copies
    weights)."""

    v = get(f"lsa-{method}")
    H, d_k, _ = params.W_Q.shape
    d_v = params.W_V.shape[1]
    low_params = _cast(params, dtype)
    exact, low = v.construct(params), v.construct(low_params)
    extra = 0
    if not all(
        torch.equal(a.to(torch.float64), b)
        for a, b in zip(vars(low_params).values(), vars(params).values())
        if isinstance(a, torch.Tensor)
    ):
        extra += 4
    if not torch.equal(x.to(dtype).to(torch.float64), x):
        extra += 3
    if not all(
        torch.equal(a.detach().to(torch.float64), b.detach()) for a, b in zip(low.weights(), exact.weights())
    ):
        extra += construction_depth(H, d_k, d_v) + max(
            0,
            template_path_length(*(w.detach() for w in low.weights() if w.ndim == 2))
            - template_path_length(*(w.detach() for w in exact.weights() if w.ndim == 2)),
        )
    return low_precision_bound(exact, x, M, dtype=dtype, extra=extra, mode=mode)


def _template_case(family: str, g: torch.Generator, dtype: torch.dtype):
    """A random template RNN with lambda near 1 (real) or on the unit circle (complex), its input and
    label."""

    d, n, m, d_out = _randint(g, 1, 4), _randint(g, 1, 8), _randint(g, 1, 6), _randint(g, 1, 3)
    T = _randint(g, 64, 2048)
    # lambda = 1 - 2^-k exact in the dtype: k <= 24 (float32), 40 (float64), 8 (bfloat16; float16 too, where
    # k = 11 would be exact but the gated output ~ (1 - lambda)^-2 would overflow its range of 65504)
    kmax = {torch.float32: 24, torch.float16: 8, torch.bfloat16: 8}.get(dtype, 40)
    cplx = family == "complex-unit-circle"
    exact_in = dtype if dtype in LOW_PRECISION else torch.float32

    def w(*s):
        t = _f32(torch.randn(*s, generator=g, dtype=torch.float64) / math.sqrt(s[-1]), exact_in)
        return (
            torch.complex(t, _f32(torch.randn(*s, generator=g, dtype=torch.float64) / math.sqrt(s[-1])))
            if cplx
            else t
        )

    if cplx:
        theta = _f32(torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi)
        lam = torch.polar(torch.ones(n, dtype=torch.float64), theta)
    else:
        k = torch.randint(4, kmax + 1, (n,), generator=g).to(torch.float64)
        lam = 1 - 2.0**-k
    rnn = GatedLinearRNN(w(n, d + 1), w(n, d + 1), lam, w(m, n), w(m, n), w(d_out, m))
    x = _f32(torch.randn(2, T, d, generator=g, dtype=torch.float64), exact_in)
    return rnn, x, {"family": family, "d": d, "n": n, "m": m, "T": T}


def _template_ratio(rnn, x, dtype: torch.dtype, mode: str) -> float:
    from properties.magnitudes import rnn_magnitude  # lazy: start-up time (Hypothesis)

    ref = rnn(x, mode="loop")
    M = rnn_magnitude(rnn, x)
    if (
        dtype in LOW_PRECISION
    ):  # weights, lambda and x exact in the dtype; the step loop (a parallel scan of a
        # lambda outside {0, 1} has no guarantee left at this T: gamma_n with n ~ T is infinite)
        import warnings

        with (
            warnings.catch_warnings()
        ):  # an overflow (fp16's range) is counted in the table, not warned about
            warnings.simplefilter("ignore", NumericalHazardWarning)
            y = GatedLinearRNN(*(t.detach().to(dtype) for t in rnn.weights()))(x.to(dtype), mode="loop")
        err = (y.double() - ref).abs()
        if not bool(torch.isfinite(err).all()):
            return None
        bound = low_precision_bound(rnn, x, M, dtype=dtype, extra=0, mode="loop")
        return float(torch.where(err == 0, 0.0, err / bound).max())
    cd = {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype] if rnn.is_complex else dtype
    low = GatedLinearRNN(*(t.detach().to(cd) for t in rnn.weights()))
    y = low(x.to(dtype), mode=mode)
    T = x.shape[1]
    # the recurrence's roundings for this lambda and path (rnn_path_length: 2T real, 4T complex in the loop),
    # the
    # weights' rounding when cast (2), and for complex lambda the cast's rounding of lambda itself, which
    # compounds in lambda^t (|lambda_hat - lambda| <= u |lambda|: one more rounding per step)
    n = rnn_path_length(
        T,
        rnn.d,
        rnn.num_neurons,
        rnn.num_gates,
        construction_depth=2 + (T if rnn.is_complex else 0),
        lam=rnn.lam,
        mode="loop" if mode == "loop" else "any",
    )
    if (
        rnn.is_complex
    ):  # complex dot products in the gates and readout count twice (Higham L. 3.5); the complex
        # recurrence (4T) and lambda's rounding (T) are already counted for complex arithmetic
        n += rnn_path_length(0, rnn.d, rnn.num_neurons, rnn.num_gates, construction_depth=2)
    return compare(y, ref, M, n=n, dtype=dtype).ratio


def false_alarms(dtype: torch.dtype, cases: int, seed: int, *, progress: bool = True) -> dict[str, Stats]:
    """Run ``cases`` correct cases at ``dtype``; per family statistics of error/bound (must stay <= 1)."""
    g = torch.Generator().manual_seed(seed)
    low = dtype in LOW_PRECISION
    # fp16/bf16: no complex template (torch has no complex bfloat16, and complex32 lacks CPU kernels)
    fams = [f for f in FAMILIES if not (low and f == "complex-unit-circle")]
    weights = {f: (1 if f in ("long",) else 4 if f in TEMPLATE_FAMILIES else 10) for f in fams}
    total = sum(weights.values())
    plan = []
    for f in fams:
        plan += [f] * max(1, math.ceil(cases * weights[f] / total))  # at least ``cases`` in all
    stats = {f: Stats() for f in fams}
    by_mode = {"all, step loop": Stats(), "all, parallel": Stats()}
    for i, fam in enumerate(
        tqdm(
            plan,
            desc=f"false alarms {str(dtype).replace('torch.', '')}",
            disable=not progress,
            unit="case",
            mininterval=2,
        )
    ):
        mode = "loop" if i % 5 == 0 else "auto"
        if fam in TEMPLATE_FAMILIES:
            rnn, x, info = _template_case(fam, g, dtype)
            ratio = _template_ratio(rnn, x, dtype, mode)
            case = f"seed {seed} case {i} {'loop' if low else mode} {info}"
            stats[fam].add(ratio, x.shape[0], case, overflow=ratio is None)
            if low:
                by_mode["all, step loop"].add(ratio, x.shape[0], case, overflow=ratio is None)
            continue
        params, x, info = draw_lsa_case(fam, g, dtype)
        method = "direct" if i % 2 == 0 else "compressed"
        ratio, _ = _lsa_ratio(params, x, method, dtype, mode)
        case = f"seed {seed} case {i} {method} {mode} {info}"
        stats[fam].add(ratio, x.shape[0], case, overflow=ratio is None and low)
        if low:
            by_mode["all, step loop" if mode == "loop" else "all, parallel"].add(
                ratio, x.shape[0], case, overflow=ratio is None
            )
    if low:  # summary rows by forward path (not families: the totals below skip them)
        stats.update({f"{k} (summary)": v for k, v in by_mode.items()})
    return stats


# -- detection power -------------------------------------------------------------------------------------
EPS = {
    torch.float64: (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1.1e-14),
    torch.float32: (1e-2, 1e-3, 1e-4, 1e-5, 6e-6),
    # fp16/bf16: from 1 down past 100u (bf16: 100u = 0.39; fp16: 100u = 0.049)
    torch.bfloat16: (1.0, 0.39, 0.1, 0.039),
    torch.float16: (1.0, 0.1, 0.049, 0.01, 4.9e-3),
}


def _integer_case(g: torch.Generator):

    d, H, d_k, d_v = _randint(g, 1, 4), _randint(g, 1, 2), _randint(g, 1, 3), _randint(g, 1, 3)

    def w(*s):  # non-zero integers in [-3, 3]: fewer equivalent mutants (a zero weight hides a neuron)
        v = torch.randint(1, 4, s, generator=g) * (torch.randint(0, 2, s, generator=g) * 2 - 1)
        return v.to(torch.float64)

    params = LSAParams(w(H, d_k, d), w(H, d_k, d), w(H, d_v, d), None)
    return params, w(3, _randint(g, 2, 16), d)


def _integer_peak(rnn, x) -> float:
    """Largest modulus of any value the template computes on ``x`` (weights, gates, states, output gates,
    output and every partial sum: all bounded by the template on absolute values)."""

    A, B, _lam, C, E, D = (w.detach().abs().to(torch.float64) for w in rnn.weights())
    xa = augment(x.abs().to(torch.float64))
    ga, gb = xa @ A.T, xa @ B.T
    Mh = torch.cumsum(
        ga * gb, dim=1
    )  # |lambda| <= 1 and the states' partial sums: the cumulative sum bounds them
    c, e = Mh @ C.T, Mh @ E.T
    vals = [A, B, C, E, D, xa, ga, gb, ga * gb, Mh, c, e, c * e, (c * e) @ D.T]
    return max(float(v.max()) if v.numel() else 0.0 for v in vals)


def small_integer_case(g: torch.Generator, dtype: torch.dtype):
    """An LSA with weights in {-2, -1, 1, 2} and inputs in {-1, 0, 1}, small enough that *every* value both
    constructions compute is an integer of modulus <= 2^p (p = 8 for bfloat16, 11 for float16: the
    significand's bits), so the construction evaluated at ``dtype`` is exact (checked: the weights built at
    ``dtype`` equal the float64 ones). The low-precision exact-integer tier: a correct construction gives
    the float64 reference bit for bit."""

    limit = 2 / torch.finfo(dtype).eps  # 2^p: every integer up to it is exact
    while True:
        d, H, d_k, d_v = _randint(g, 1, 3), _randint(g, 1, 2), _randint(g, 1, 2), _randint(g, 1, 2)
        T = _randint(g, 2, 8)

        def w(*s):  # non-zero, as in _integer_case: a zero weight hides a neuron
            return (torch.randint(1, 3, s, generator=g) * (torch.randint(0, 2, s, generator=g) * 2 - 1)).to(
                torch.float64
            )

        params = LSAParams(w(H, d_k, d), w(H, d_k, d), w(H, d_v, d), None)
        x = torch.randint(-1, 2, (3, T, d), generator=g).to(torch.float64)
        ok = True
        for method in ("direct", "compressed"):
            exact = lsa_to_rnn(params.lsa(), method)
            low = lsa_to_rnn(_cast(params, dtype).lsa(), method)
            ok = (
                ok
                and _integer_peak(exact, x) <= limit
                and all(
                    torch.equal(a.detach().to(torch.float64), b.detach())
                    for a, b in zip(low.weights(), exact.weights())
                )
            )
        if ok:
            return params, x


def _detected_numeric(layer, params, x, dtype, method: str = "direct") -> bool:

    v = get("lsa-direct")
    ref, M = params.lsa()(x), v.magnitude(params, x)
    y = layer(x.to(dtype))
    if dtype in LOW_PRECISION:  # the low-precision model of the correct construction (a mutant has no model)
        err = (y.double() - ref).abs()
        if not bool(torch.isfinite(err).all()):
            return True  # a non-finite output never passes
        return bool((err > low_precision_model(params, x, M, method, dtype, "loop")).any())
    return not compare(y, ref, M, n=v.path_length(params, x.shape[1]), dtype=dtype).passed


def _lsa_object(W_Q, W_K, W_V, W_O, x) -> np.ndarray:
    """LSA (Zucchet et al. 2023, Sec. 3) on NumPy object arrays: ``y_t = W_O concat_h sum_{s<=t} v_s (k_s .
    q_t)``."""
    H = W_Q.shape[0]
    T = x.shape[0]
    q = [[W_Q[h] @ x[t] for t in range(T)] for h in range(H)]
    k = [[W_K[h] @ x[t] for t in range(T)] for h in range(H)]
    v = [[W_V[h] @ x[t] for t in range(T)] for h in range(H)]
    ys = []
    for t in range(T):
        heads = [
            sum((v[h][s] * (k[h][s] @ q[h][t]) for s in range(1, t + 1)), v[h][0] * (k[h][0] @ q[h][t]))
            for h in range(H)
        ]
        o = np.concatenate(heads)
        ys.append(o if W_O is None else W_O @ o)
    return np.array(ys, dtype=object)


def prover_refutes(spec: dict, params, T: int = 3) -> bool:
    """Whether the symbolic engine (``equivalence.symbolic.engine.decide_identity``: sparse polynomial rings,
    exact) refutes ``mutant(x) == LSA(x)`` as polynomial identities in a symbolic sequence ``x`` of length
    ``T`` (weights: the mutant's and the LSA's exact binary values as rationals)."""
    from equivalence.symbolic.algebra import fraction_array  # lazy: start-up time (SymPy)
    from equivalence.symbolic.arrays import Variables  # lazy: start-up time (SymPy)
    from equivalence.symbolic.engine import decide_identity  # lazy: start-up time (SymPy)
    from properties.mutations import evaluate_spec  # lazy: start-up time (Hypothesis)

    d = params.W_Q.shape[2]
    W = [
        fraction_array(t) if t is not None else None for t in (params.W_Q, params.W_K, params.W_V, params.W_O)
    ]

    def obligation(arrays):
        x = arrays["x"]
        ys = evaluate_spec(spec, x, ones=lambda shape: np.ones(shape, dtype=object))
        return [("y", np.array(ys, dtype=object), _lsa_object(*W, x))]

    return not decide_identity(obligation, Variables().add("x", (T, d))).holds


def prover_row(kind: str, eps: float | None, seed: int, mutants: int) -> tuple[int, int]:
    """``(refuted, decided)`` for ``mutants`` integer-weight mutants of ``kind`` (the exact tier's cases: a
    float construction's own weight rounding, e.g. the compressed construction's products, would make even
    the unmutated RNN inexact as rationals)."""
    from properties.mutations import mutate_spec  # lazy: start-up time (Hypothesis)

    g = torch.Generator().manual_seed(seed)
    refuted = 0
    for i in range(mutants):
        ip, _ = _integer_case(g)
        _, _, spec = mutate_spec(
            lsa_to_rnn(ip.lsa(), "direct" if i % 2 == 0 else "compressed"), kind, g, eps or 0.0
        )
        refuted += prover_refutes(spec, ip)
    return refuted, mutants


def _prover_row(kind: str, eps: float | None, seed: int, mutants: int) -> tuple[int, int]:
    """:func:`prover_row` in a child interpreter: long runs of the symbolic engine in one process ended in a
    segmentation fault inside the garbage collector (reported; docs/reliability.md), so each row is isolated
    and a crash is recorded as ``(0, 0)`` (shown as "—") instead of losing the whole table."""

    code = (
        "import json, torch; torch.set_num_threads(1); from benchmarks.reliability import prover_row; "
        f"print(json.dumps(prover_row({kind!r}, {eps!r}, {seed}, {mutants})))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, check=False
    )
    if r.returncode != 0:
        print(f"prover row {kind} eps={eps}: child exited {r.returncode}", file=sys.stderr)
        return 0, 0
    refuted, decided = json.loads(r.stdout.strip().splitlines()[-1])
    return refuted, decided


def _prover():
    """The exact prover for mutants, when the symbolic engine (``equivalence.symbolic``) is present."""
    try:
        import equivalence.symbolic.engine  # noqa: F401
    except ImportError:
        return None
    return prover_refutes


def detection(
    dtype: torch.dtype, mutants: int, seed: int, *, progress: bool = True, prover_mutants: int | None = None
) -> list[dict]:
    """Fraction of mutants caught, per kind and epsilon: numeric model bound, exact-integer tier, and
    (float64, first ``prover_mutants`` of each row, default all) the symbolic prover on the very same
    mutants."""
    from properties.mutations import KINDS, STRUCTURAL, mutate_spec  # lazy: start-up time (Hypothesis)

    g = torch.Generator().manual_seed(seed)
    prover = _prover()
    prover_mutants = mutants if prover_mutants is None else prover_mutants
    rows = []
    plan = [(k, None) for k in STRUCTURAL] + [(k, e) for k in ("weight", "lambda") for e in EPS[dtype]]
    assert {k for k, _ in plan} == set(KINDS)
    for kind, eps in tqdm(plan, desc=f"detection {str(dtype).replace('torch.', '')}", disable=not progress):
        caught = exact_caught = exact_total = proved = proved_total = 0
        for i in range(mutants):
            params, x, _ = draw_lsa_case("generic", g, dtype if dtype in LOW_PRECISION else torch.float64)
            method = "direct" if i % 2 == 0 else "compressed"
            rnn = lsa_to_rnn(_cast(params, dtype).lsa(), method)
            layer, _what, _ = mutate_spec(rnn, kind, g, eps or 0.0)
            caught += _detected_numeric(layer, params, x, dtype, method)
            # exact-integer tier: all values are integers < 2^24 (float32, float64) or <= 2^8 / 2^11 (bf16,
            # fp16),
            # so the correct construction is exact at that precision
            ip, ix = small_integer_case(g, dtype) if dtype in LOW_PRECISION else _integer_case(g)
            il, _, _ispec = mutate_spec(lsa_to_rnn(_cast(ip, dtype).lsa(), method), kind, g, eps or 0.0)
            exact_total += 1
            exact_caught += not torch.equal(il(ix.to(dtype)).double(), ip.lsa()(ix))

        if prover is not None and dtype == torch.float64 and prover_mutants:
            proved, proved_total = _prover_row(kind, eps, seed + len(rows), prover_mutants)
        rows.append(
            {
                "dtype": str(dtype).replace("torch.", ""),
                "kind": kind,
                "eps": eps,
                "mutants": mutants,
                "prover_mutants": proved_total,
                "numeric": caught / mutants,
                "exact": exact_caught / exact_total if exact_total else None,
                "prover": proved / proved_total if proved_total else None,
            }
        )
    return rows


# -- report -----------------------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f}%"


def render(fa: dict, det: list[dict], meta: dict) -> str:
    lines = [
        f"<!-- generated by `{meta['command']}`; do not edit by hand -->",
        "",
        (
            f"Seed {meta['seed']}; torch {meta['torch']}; fp16/bf16: low-precision model; "
            f"{meta['seconds']:.0f} s on {meta['threads']} thread(s)."
        ),
        "",
        "### False alarms (correct cases; a ratio > 1 would be a false alarm)",
        "",
        "| dtype | family | cases | sequences | largest error/bound | margin (1 - ratio) | false alarms | "
        "overflows |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for dt, stats in fa.items():
        tot = Stats()
        for fam, s in stats.items():
            lines.append(
                f"| {dt} | {fam} | {s.cases} | {s.sequences} | {s.worst:.3g} | {1 - s.worst:.3g} | "
                f"{len(s.failures)} | {len(s.overflows)} |"
            )
            if not fam.endswith("(summary)"):
                tot.cases += s.cases
                tot.sequences += s.sequences
                tot.failures += s.failures
                tot.overflows += s.overflows
                tot.worst = max(tot.worst, s.worst)
        lines.append(
            f"| **{dt}** | **all** | **{tot.cases}** | **{tot.sequences}** | **{tot.worst:.3g}** | "
            f"**{1 - tot.worst:.3g}** | **{len(tot.failures)}** | **{len(tot.overflows)}** |"
        )
    lines += [
        "",
        "### Detection power (fraction of mutants caught)",
        "",
        "| dtype | mutation | eps | mutants | numeric (model bound) | exact-integer tier | prover (mutants) "
        "|",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in det:
        eps = "—" if r["eps"] is None else f"{r['eps']:.1e}"
        lines.append(
            f"| {r['dtype']} | {r['kind']} | {eps} | {r['mutants']} | {_fmt(r['numeric'])} | "
            f"{_fmt(r['exact'])} | {_fmt(r['prover'])}"
            + (f" ({r['prover_mutants']})" if r["prover_mutants"] else "")
            + " |"
        )
    fails = [f for stats in fa.values() for s in stats.values() for f in s.failures]
    if fails:
        lines += ["", "### False alarms found", ""] + [f"- {f}" for f in fails[:50]]
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- BEGIN GENERATED TABLE -->", "<!-- END GENERATED TABLE -->"


def splice(path: str, table: str) -> str:
    """The new content of ``path``: the table between the BEGIN/END markers of an existing document (the prose
    around it is kept), or the table alone."""

    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.is_file() else ""
    if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
        head, rest = old.split(BEGIN, 1)
        return head + BEGIN + "\n" + table + END + rest.split(END, 1)[1]
    return table


# -- every shipped variant, by stratum (ordinary, long, chunk boundaries, extreme inputs)
# -----------------------
#: strata of :func:`variant_false_alarms`: name -> (share of the cases, what is drawn)
VARIANT_STRATA = {
    "ordinary": "T 1..64, generic or degenerate weights, inputs ~ N(0, 1)",
    "long": "T 65..256",
    "chunk-boundary": "T in {16, 32, 64, 128} +- 1",
    "extreme-input": "T 1..64, inputs scaled by 2^3..2^7 (gate logits far into the sigmoid/exp/silu tails)",
}
_BOUNDARY_T = (15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129)
#: working dtypes that share one rounded case (and so one float64 reference): float64 and float32 see the
#: case rounded to float32; bfloat16 and float16 each their own rounding (a bfloat16 value below float16's
#: normal range is not exact in float16, so one shared rounding would hand float16 other weights)
VARIANT_DTYPES = (
    (torch.float32, (torch.float64, torch.float32)),
    (torch.bfloat16, (torch.bfloat16,)),
    (torch.float16, (torch.float16,)),
)


def _round_params(params, dtype):
    return dataclasses.replace(
        params,
        **{
            k: v.to(dtype).to(torch.float64)
            for k, v in vars(params).items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not v.is_complex()
        },
    )


def _cast_params(params, dtype):
    def c(v):
        if v.is_complex():
            return v.to(torch.complex64 if dtype != torch.float64 else torch.complex128)
        return v.to(dtype)

    return dataclasses.replace(
        params,
        **{k: c(v) for k, v in vars(params).items() if isinstance(v, torch.Tensor) and v.is_floating_point()},
    )


def _variant_params(v, stratum: str, g: torch.Generator):
    """One parameter draw of a variant case: ``(params, d, T, description)`` (sizes, stratum's $T$,
    generic or degenerate weights of kind 0..3)."""
    d = _randint(g, 1, 5)
    heads = _randint(g, 1, 2)
    T = {
        "long": lambda: _randint(g, 65, 256),
        "chunk-boundary": lambda: _BOUNDARY_T[_randint(g, 0, len(_BOUNDARY_T) - 1)],
    }.get(stratum, lambda: _randint(g, 1, 64))()
    params = v.sample_params(d, heads, generator=g, dtype=torch.float64)
    kind = _randint(g, 0, 5)
    if kind < 4 and hasattr(v, "degenerate"):
        params = v.degenerate(params, g, kind)
    return params, d, T, f"d={d}, heads={heads}, T={T}, weights kind {kind}"


def _variant_input(stratum: str, g: torch.Generator, d: int, T: int, batch: int = 2) -> torch.Tensor:
    """One input of a variant case: ``batch`` sequences $N(0, 1)$, scaled by $2^{3..7}$ in the
    extreme-input stratum."""
    x = torch.randn(batch, T, d, generator=g, dtype=torch.float64)
    if stratum == "extreme-input":
        x = x * 2.0 ** _randint(g, 3, 7)
    return x


def _draw_variant_case(v, stratum: str, g: torch.Generator):
    """``(params, x, description)`` of one correct case of ``v`` in ``stratum`` (a parameter draw and one
    input of two sequences)."""
    params, d, T, desc = _variant_params(v, stratum, g)
    return params, _variant_input(stratum, g, d, T), desc


#: correct cases that share one parameter draw: each has its own input (and its own bound); the RNN is built
#: once per dtype and evaluated on all of them in one batched call
VARIANT_GROUP = 16


def _variant(name: str):
    # lazy: the benchmark's CLI starts without loading the variant registry
    import constructions

    # lazy: the benchmark's CLI starts without loading the variant registry
    from properties.regressions import HGRNOutputGate

    return HGRNOutputGate() if name == HGRNOutputGate.name else constructions.get(name)


def variant_group(
    name: str, seed: int, group: int, size: int = VARIANT_GROUP, *, strata=tuple(VARIANT_STRATA)
):
    r"""The correct cases of group ``group`` of a ``variants`` run with ``seed``: ``(stratum, params, xs,
    description)`` with ``size`` inputs ``xs`` (each ``[2, T, d]``, float64) for one parameter draw. Every
    group has its own generator (seeded from ``seed`` and ``group``), so any case is rebuilt from its seed,
    group and index alone (``python -m benchmarks.reliability replay``)."""
    return _group(_variant(name), seed, group, size, strata)


def _group(v, seed: int, group: int, size: int, strata):
    g = torch.Generator().manual_seed(seed * 2**20 + group)
    stratum = strata[group % len(strata)]
    params, d, T, desc = _variant_params(v, stratum, g)
    return stratum, params, [_variant_input(stratum, g, d, T) for _ in range(size)], desc


def _case_ratios(y, ref, M, n: int, dtype: torch.dtype, cases: int):
    r"""Per case (the batch split in ``cases`` equal parts): the error/bound of
    :func:`constructions.tolerance.compare` ($\max|\hat y - y| / (\gamma_n M + n\eta)$, the same
    :func:`constructions.tolerance.error_bound`), whether the candidate is finite, and whether the reference
    and $M$ are (a non-finite reference or $M$ fails the comparison: ratio $\infty$)."""
    # lazy: the benchmark's CLI starts without loading the variant registry
    from constructions.tolerance import error_bound

    cand = y.detach().to("cpu", torch.complex128 if y.is_complex() else torch.float64)
    finite_c = torch.isfinite(cand).reshape(cases, -1).all(1)
    finite_r = (torch.isfinite(ref).reshape(cases, -1).all(1)) & torch.isfinite(M).reshape(cases, -1).all(1)
    ratio = ((cand - ref).abs() / error_bound(M, n, dtype)).reshape(cases, -1).amax(1)
    ratio = torch.where(finite_r, ratio, torch.inf)
    return ratio.tolist(), finite_c.tolist()


def _forward_cases(rnn, x: torch.Tensor, cases: int) -> tuple[torch.Tensor, dict[int, str]]:
    """``rnn(x)`` in one batched call; where that raises (a non-finite input-dependent decay at this dtype),
    each case (the batch split in ``cases`` equal parts) on its own: the output (NaN rows for the cases that
    raised) and the errors by case."""
    with torch.no_grad():
        try:
            return rnn(x), {}
        except (ValueError, OverflowError, NotImplementedError, RuntimeError):
            pass
        parts, errors = [], {}
        for i, xi in enumerate(x.chunk(cases)):
            try:
                parts.append(rnn(xi))
            except (ValueError, OverflowError, NotImplementedError, RuntimeError) as e:
                errors[i] = str(e).splitlines()[0]
                parts.append(None)
        like = next((p for p in parts if p is not None), None)
        if like is None:
            return x, errors  # every case raised: nothing to compare
        return torch.cat([torch.full_like(like, torch.nan) if p is None else p for p in parts]), errors


def variant_false_alarms(
    name: str,
    cases: int,
    seed: int,
    *,
    strata=tuple(VARIANT_STRATA),
    group: int = VARIANT_GROUP,
    dtypes: tuple[torch.dtype, ...] | None = None,
) -> dict:
    r"""False alarms of the tolerance model on ``cases`` correct cases of the shipped variant ``name`` per
    stratum (:data:`VARIANT_STRATA`, round-robin over groups of ``group`` cases that share one parameter
    draw, :func:`variant_group`), each evaluated at float64, float32, bfloat16 and float16 exactly as
    ``verify`` does (``Variant.magnitude`` / ``Variant.path_length`` / the bound of
    :func:`constructions.tolerance.compare`, per case; a case over the bound is re-decided by ``compare``
    itself on that case alone, whose message is recorded). A case is rounded to float32 (for
    float64/float32), bfloat16 or float16 first (:data:`VARIANT_DTYPES`), so the candidate sees the
    reference's very numbers.
    Returns ``{"stats": {dtype: {stratum: Stats}}, "vacuous": {dtype: count}}``; ``vacuous`` counts cases
    whose bound is infinite ($nu \ge 1$: no guarantee, not a pass) and ``overflows`` the candidates that
    are not finite. ``dtypes``: only these working dtypes (default all four; the cases drawn do not depend
    on it)."""

    if cases < 1 or group < 1:
        raise ValueError(f"cases and group must be >= 1; got {cases} and {group}")
    # lazy: the benchmark's CLI starts without loading the variant registry
    import warnings

    # lazy: the benchmark's CLI starts without loading the variant registry
    from constructions.rnn import NumericalHazardWarning

    with warnings.catch_warnings():  # a candidate that overflows is counted as such, not warned about
        warnings.simplefilter("ignore", NumericalHazardWarning)
        return _variant_sweep(_variant(name), name, cases, seed, strata, group, dtypes)


def _variant_sweep(v, name: str, cases: int, seed: int, strata, group: int, dtypes) -> dict:
    plan = tuple((r, tuple(dt for dt in dts if dtypes is None or dt in dtypes)) for r, dts in VARIANT_DTYPES)
    plan = tuple((r, dts) for r, dts in plan if dts)
    # lazy: the benchmark's CLI starts without loading the variant registry
    from constructions.tolerance import compare, gamma, magnitude_takes_dtype, unit_roundoff

    per_dtype = magnitude_takes_dtype(v)
    out = {str(dt).replace("torch.", ""): {s: Stats() for s in strata} for _, dts in plan for dt in dts}
    vacuous = {k: 0 for k in out}
    for j in range(math.ceil(cases / group)):
        size = min(group, cases - j * group)
        stratum, params, xs, desc = _group(v, seed, j, size, strata)
        x_all = torch.cat(xs)
        batch = xs[0].shape[0]
        for rdt, dts in plan:
            p64, x64 = _round_params(params, rdt), x_all.to(rdt).to(torch.float64)
            keep = [i for i, ok in enumerate(torch.isfinite(x64).reshape(size, -1).all(1).tolist()) if ok]
            if not keep:
                continue
            if len(keep) < size:
                x64 = x64.reshape(size, batch, *x64.shape[1:])[keep].flatten(0, 1)
            with torch.no_grad():
                ref = v.reference(p64, x64)
                M_free = None if per_dtype else v.magnitude(p64, x64)
                n = v.path_length(p64, x64.shape[1])
            for dt in dts:
                key = str(dt).replace("torch.", "")
                st = out[key][stratum]
                label = f"{name} [{stratum}] seed {seed} group {j} case {{}}: {desc}, {key}"
                if math.isinf(gamma(n, unit_roundoff(dt))):
                    vacuous[key] += len(keep)
                    continue
                try:
                    with torch.no_grad():
                        rnn = v.construct(_cast_params(p64, dt))
                except (ValueError, OverflowError, NotImplementedError, RuntimeError) as e:
                    # a weight not representable in float16, or no kernel at this dtype (torch.polar for Half)
                    for i in keep:
                        st.add(0.0, batch, f"{label.format(i)}: {e}", overflow=True)
                    continue
                with torch.no_grad():  # M at the working dtype where weights are formed at it
                    M = v.magnitude(p64, x64, dtype=dt) if per_dtype else M_free
                y, errors = _forward_cases(rnn, x64.to(dt), len(keep))
                for pos, e in errors.items():
                    st.add(0.0, batch, f"{label.format(keep[pos])}: {e}", overflow=True)
                if len(errors) == len(keep):
                    continue
                ratios, finite = _case_ratios(y, ref, M, n, dt, len(keep))
                for pos, i in enumerate(keep):
                    if pos in errors:
                        continue
                    if not finite[pos]:
                        st.add(0.0, batch, label.format(i), overflow=True)
                        continue
                    ratio, case = ratios[pos], label.format(i)
                    if not ratio <= 1.0:  # the decision itself, by compare on this case alone
                        sl = slice(pos * batch, (pos + 1) * batch)
                        res = compare(y[sl], ref[sl], M[sl], n=n, dtype=dt)
                        ratio, case = res.ratio, f"{case}; {res.message}"
                    st.add(ratio, batch, case)
    return {"stats": out, "vacuous": vacuous}


def replay_variant_case(name: str, seed: int, group: int, index: int, dtype: torch.dtype):
    """The ``compare`` result of one case of a ``variants`` run, rebuilt from its seed, group and index alone
    (a false alarm's label names them): the case evaluated on its own, as ``verify`` would."""
    # lazy: the benchmark's CLI starts without loading the variant registry
    from constructions.tolerance import compare, magnitude_at

    v = _variant(name)
    _, params, xs, _ = _group(v, seed, group, index + 1, tuple(VARIANT_STRATA))
    rdt = next(r for r, dts in VARIANT_DTYPES if dtype in dts)
    p64, x64 = _round_params(params, rdt), xs[index].to(rdt).to(torch.float64)
    with torch.no_grad():
        ref, M = v.reference(p64, x64), magnitude_at(v, p64, x64, dtype)
        n = v.path_length(p64, x64.shape[1])
        y = v.construct(_cast_params(p64, dtype))(x64.to(dtype))
    return compare(y, ref, M, n=n, dtype=dtype)


def detection_thresholds(
    dtypes=(torch.float64, torch.float32, torch.float16, torch.bfloat16),
    Ts=(16, 64, 256, 1024),
    cases: int = 30,
    seed: int = 0,
) -> list[dict]:
    r"""The smallest relative (scale) error that ``check_equals_lsa`` detects per dtype and $T$
    (:func:`properties.suite.smallest_detectable_scale`): median and 90th percentile over ``cases`` random
    LSAs ($H\le2$, $d\le4$, generic weights, inputs $\sim N(0,1)$ exact in the dtype), the direct
    construction's budget."""
    from properties.suite import smallest_detectable_scale  # lazy: start-up time (Hypothesis)

    rows = []
    for dt in dtypes:
        for T in Ts:
            g = torch.Generator().manual_seed(seed + T)
            eps = []
            for _ in range(cases):
                H, d, dk, dv = _randint(g, 1, 2), _randint(g, 2, 4), _randint(g, 1, 3), _randint(g, 1, 3)
                lsa = LinearSelfAttention(
                    *(_f32(torch.randn(H, r, d, generator=g, dtype=torch.float64), dt) for r in (dk, dk, dv))
                )
                x = _f32(torch.randn(2, T, d, generator=g, dtype=torch.float64), dt)
                eps.append(smallest_detectable_scale(lsa, x, dt))
            eps.sort()
            rows.append(
                {
                    "dtype": str(dt).replace("torch.", ""),
                    "T": T,
                    "median": eps[len(eps) // 2],
                    "p90": eps[min(len(eps) - 1, int(0.9 * len(eps)))],
                    "cases": cases,
                }
            )
    return rows


def chunk_detection(chunks=(16, 32, 64), indices=(1, 2, 4), seeds: int = 10) -> list[dict]:
    r"""Detection rate of a state lost at the start of chunk $k$
    (:func:`properties.mutations.chunk_reset_layer`, chunks of $C$) by ``test_equals_lsa``'s own strategies
    under the dev profile (25 generated examples, no pinned edge cases, no database), over Hypothesis seeds
    ``0..seeds-1``."""
    from hypothesis import Phase, given, settings  # lazy: start-up time (Hypothesis)
    from hypothesis import seed as hseed  # lazy: start-up time (Hypothesis)

    from properties import suite  # lazy: start-up time (Hypothesis)
    from properties.mutations import chunk_reset_layer  # lazy: start-up time (Hypothesis)
    from properties.plugin import _register_profiles  # lazy: start-up time (Hypothesis)
    from properties.test_lsa_layer import EQUALS_LSA_STRATEGIES, _x  # lazy: start-up time (Hypothesis)

    _register_profiles()
    rows = []
    for C in chunks:
        for k in indices:
            caught = 0
            for s in range(seeds):
                target = suite.user_target(
                    lambda lsa, C=C, k=k: chunk_reset_layer(lsa, C, k), name="chunk reset"
                )

                def make(target, s):
                    @settings(
                        parent=settings.get_profile("dev"),
                        database=None,
                        phases=[Phase.generate],
                        print_blob=False,
                    )
                    @hseed(s)
                    @given(**EQUALS_LSA_STRATEGIES)
                    def run(lsa, spec):
                        suite.check_equals_lsa(target, lsa, _x(target, lsa, spec))

                    return run

                check = make(target, s)
                try:
                    with suite.no_counterexample_files():
                        check()
                except suite.PropertyFailure:
                    caught += 1
            rows.append(
                {"chunk": C, "index": k, "first_wrong_T": C * k + 1, "caught": caught, "seeds": seeds}
            )
    return rows


def variants_main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.reliability variants [--cases N] [--variant NAME ...] [--jsonl FILE]``: append
    one JSON line per variant and round (``--rounds``) so a long background run leaves numbers at any time."""

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability variants",
        description="false alarms of the tolerance model on every shipped variant",
    )
    p.add_argument("--cases", type=int, default=500, help="cases per variant per round (each at 4 dtypes)")
    p.add_argument("--rounds", type=int, default=20, help="rounds over all variants (seed = round)")
    p.add_argument("--start-round", type=int, default=0, help="first round (to continue an earlier run)")
    p.add_argument("--variant", action="append", default=None, help="only this variant (repeatable)")
    p.add_argument(
        "--group",
        type=int,
        default=VARIANT_GROUP,
        help=f"cases per parameter draw, evaluated in one batched call (default {VARIANT_GROUP})",
    )
    p.add_argument(
        "--dtype",
        action="append",
        default=None,
        choices=("float64", "float32", "bfloat16", "float16"),
        help="only this working dtype (repeatable; default all four: the cases drawn do not depend on it)",
    )
    p.add_argument(
        "--until-compared",
        type=int,
        default=None,
        metavar="N",
        help="per variant, keep drawing rounds until every selected dtype has N cases compared (vacuous and "
        "overflowing cases do not count), at most --rounds rounds",
    )
    p.add_argument("--jsonl", required=True, help="append results here, one JSON object per line")
    a = p.parse_args(argv)
    if a.cases < 1 or a.rounds < 1 or a.group < 1 or a.start_round < 0:
        p.error("--cases, --rounds and --group must be >= 1, --start-round >= 0")
    if a.until_compared is not None and a.until_compared < 1:
        p.error(f"--until-compared must be >= 1; got {a.until_compared}")
    from properties.regressions import HGRNOutputGate  # lazy: start-up time (Hypothesis)

    shipped = [
        n for n in constructions.available() if constructions.get(n).status in ("exact", "partial")
    ] + [HGRNOutputGate.name]
    unknown = sorted(set(a.variant or ()) - set(shipped))
    if unknown:
        p.error(f"unknown or not exact/partial variant(s) {unknown}; choose from {shipped}")
    names = a.variant or shipped

    warnings.simplefilter("ignore")  # overflow warnings of candidates: counted as overflows, not compared
    torch.set_num_threads(1)
    torch.set_float32_matmul_precision("highest")
    bad = 0
    rounds = range(a.start_round, a.start_round + a.rounds)
    # rounds outer (numbers for every variant early), or per variant until enough cases are compared
    order = (
        [(r, name) for r in rounds for name in names]
        if a.until_compared is None
        else [(None, name) for name in names]
    )
    for r0, name in order:
        compared: dict[str, int] = {}
        for r in rounds if r0 is None else (r0,):
            if a.until_compared is not None and compared and min(compared.values()) >= a.until_compared:
                break
            t0 = time.perf_counter()
            res = variant_false_alarms(
                name,
                a.cases,
                seed=1000 * r + 17,
                group=a.group,
                dtypes=None if a.dtype is None else tuple(getattr(torch, d) for d in a.dtype),
            )
            row = {
                "variant": name,
                "round": r,
                "seed": 1000 * r + 17,
                "cases": a.cases,
                "group": a.group,
                "seconds": round(time.perf_counter() - t0, 2),
                "vacuous": res["vacuous"],
                "stats": {dt: {s: _stats_row(st) for s, st in by.items()} for dt, by in res["stats"].items()},
            }
            bad += sum(len(st.failures) for by in res["stats"].values() for st in by.values())
            for dt, by in res["stats"].items():
                compared[dt] = compared.get(dt, 0) + sum(st.cases - len(st.overflows) for st in by.values())
            with open(a.jsonl, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, default=str) + "\n")
    return 1 if bad else 0


def _stats_row(st: Stats) -> dict:
    """A JSON line's statistics of one stratum: the overflows counted (three named), every failure named."""
    return {
        "cases": st.cases,
        "sequences": st.sequences,
        "worst": st.worst,
        "worst_case": st.worst_case,
        "failures": st.failures,
        "overflows": len(st.overflows),
        "overflow_examples": st.overflows[:3],
    }


def summarise_variants(lines: list[dict]) -> str:
    r"""Markdown table of ``variants`` JSON lines: per variant, the correct cases compared per dtype (all
    strata), the vacuous comparisons ($\gamma_n = \infty$: no guarantee, left out), the candidates that
    overflowed (not finite: left out), the false alarms, the largest error/bound per dtype and in the
    extreme-input stratum."""
    dts = ("float64", "float32", "bfloat16", "float16")
    agg: dict[str, dict] = {}
    for row in lines:
        a = agg.setdefault(row["variant"], {dt: [0, 0, 0.0, 0.0, 0, 0] for dt in dts})
        for dt in dts:
            for stratum, st in row["stats"].get(dt, {}).items():
                over = st["overflows"] if isinstance(st["overflows"], int) else len(st["overflows"])
                a[dt][0] += st["cases"] - over
                a[dt][1] += len(st["failures"])
                a[dt][2] = max(a[dt][2], st["worst"] or 0.0)
                if stratum == "extreme-input":
                    a[dt][3] = max(a[dt][3], st["worst"] or 0.0)
                a[dt][5] += over
            a[dt][4] += row["vacuous"].get(dt, 0)
    out = [
        "| variant | cases compared (f64/f32/bf16/fp16) | vacuous | overflows | false alarms | "
        "worst error/bound | extreme-input worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(agg):
        a = agg[name]
        out.append(
            f"| `{name}` | "
            + " | ".join(
                "/".join(fmt(a[dt]) for dt in dts)
                for fmt in (
                    lambda c: f"{c[0]:,}",
                    lambda c: f"{c[4]:,}",
                    lambda c: f"{c[5]:,}",
                    lambda c: str(c[1]),
                    lambda c: f"{c[2]:.2g}",
                    lambda c: f"{c[3]:.2g}",
                )
            )
            + " |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="the CI slice: 300 cases per dtype, 10 mutants per row"
    )
    p.add_argument(
        "--cases", type=int, default=None, help="correct cases per dtype (default 10000; quick 300)"
    )
    p.add_argument(
        "--low-precision-cases", type=int, default=None, help="cases for fp16/bf16 (default 10000; quick 100)"
    )
    p.add_argument(
        "--mutants", type=int, default=None, help="mutants per kind and eps (default 100; quick 10)"
    )
    p.add_argument(
        "--prover-mutants",
        type=int,
        default=None,
        help="of those, how many the symbolic prover also decides (float64 rows; default 10; quick 1)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=None,
        help="write the Markdown table here (atomically); an existing file with "
        "<!-- BEGIN/END GENERATED TABLE --> markers keeps its prose, only the table is replaced",
    )
    p.add_argument("--json", default=None, help="write the raw numbers here (atomically)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    for name in ("cases", "low_precision_cases", "mutants"):
        v = getattr(a, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {v}")
    cases = a.cases or (300 if a.quick else 10_000)
    lp_cases = a.low_precision_cases or (100 if a.quick else 10_000)
    mutants = a.mutants or (10 if a.quick else 100)
    prover_mutants = a.prover_mutants if a.prover_mutants is not None else (1 if a.quick else 10)
    old = torch.get_num_threads(), torch.get_float32_matmul_precision()
    torch.set_num_threads(1)
    torch.set_float32_matmul_precision("highest")
    t0 = time.perf_counter()
    try:
        det = detection(
            torch.float64,
            mutants,
            a.seed + 1,
            progress=not a.no_progress,
            prover_mutants=min(prover_mutants, mutants),
        )
        det += detection(torch.float32, mutants, a.seed + 2, progress=not a.no_progress)
        det += detection(torch.bfloat16, mutants, a.seed + 3, progress=not a.no_progress)
        det += detection(torch.float16, mutants, a.seed + 4, progress=not a.no_progress)
        fa = {}
        for dt, n in (
            (torch.float64, cases),
            (torch.float32, cases),
            (torch.bfloat16, lp_cases),
            (torch.float16, lp_cases),
        ):
            fa[str(dt).replace("torch.", "")] = false_alarms(dt, n, a.seed, progress=not a.no_progress)
    finally:
        torch.set_num_threads(old[0])
        torch.set_float32_matmul_precision(old[1])
    meta = {
        "command": "python -m benchmarks.reliability" + (" --quick" if a.quick else ""),
        "seed": a.seed,
        "torch": torch.__version__,
        "seconds": time.perf_counter() - t0,
        "threads": 1,
    }
    md = render(fa, det, meta)
    print(md)
    from equivalence.report.write import atomic_write  # lazy: start-up time

    if a.out:
        atomic_write(a.out, splice(a.out, md))
    if a.json:
        raw = {
            "meta": meta,
            "false_alarms": {dt: {f: dataclasses.asdict(s) for f, s in st.items()} for dt, st in fa.items()},
            "detection": det,
        }
        atomic_write(a.json, json.dumps(raw, indent=2, sort_keys=True, default=str) + "\n")
    # exit status: a false alarm of the model (any dtype: the fp16/bf16 model is rigorous too) is a failure
    bad = sum(len(s.failures) for st in fa.values() for s in st.values())
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["power"]:  # detection thresholds per dtype and T, and chunk-index detection rates
        torch.set_num_threads(1)
        print(json.dumps({"thresholds": detection_thresholds(), "chunks": chunk_detection()}, indent=1))
        sys.exit(0)
    if sys.argv[1:2] == ["summary"]:  # Markdown table of a `variants --jsonl FILE` run
        if len(sys.argv) != 3:
            sys.exit("usage: python -m benchmarks.reliability summary FILE.jsonl")
        try:
            with open(sys.argv[2], encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            sys.exit(f"error: cannot read {sys.argv[2]}: {e}")
        print(summarise_variants(rows), end="")
        sys.exit(0)
    sys.exit(variants_main(sys.argv[2:]) if sys.argv[1:2] == ["variants"] else main())
