r"""Reliability of the verifier itself: false alarms and detection power, measured.

``python -m properties.reliability [--quick] [--out docs/reliability_table.md] [--json FILE] [--seed N]``

1. **False alarms.** Random *correct* cases — the paper's constructions (Zucchet et al. 2023, Sec. 3 /
   App. A; registered variants ``lsa-direct`` and ``lsa-compressed``) of LSAs drawn from several
   families, and the gated RNN template with $\lambda$ near 1 or complex $|\lambda| = 1$ — are compared with
   their float64 reference under the tolerance model of :mod:`equivalence.tolerance`, exactly as
   ``verify`` does (``Variant.magnitude`` / ``Variant.path_length``). The largest error/bound ratio per
   dtype and family is reported; any ratio above 1 is a false alarm, printed with its case. fp16/bf16 use
   the relative model (:func:`equivalence.tolerance.relative_bound`: at most ``fudge`` times the error
   of plain LSA evaluated at that precision, plus a floor of one rounding of $M$).
2. **Detection power.** Mutants of correct constructions (:mod:`properties.mutations`) per kind and
   $\varepsilon$: the fraction caught by the numeric check (model bound), by the exact-integer tier
   (float64, integer data, no tolerance), and by the symbolic prover when ``equivalence.symbolic`` exists.

Everything is drawn from seeded ``torch.Generator`` / ``numpy.random.Generator`` objects: same seed, same
table. ``--quick`` is the slice that CI runs (``tests/test_reliability.py``).
"""

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

__all__ = ["FAMILIES", "LOW_PRECISION", "false_alarms", "detection", "main", "draw_lsa_case", "Stats"]

#: families of correct cases (LSA constructions) and of template cases
FAMILIES = ("generic", "rank-deficient", "badly-scaled", "zero-rows", "repeated", "numpy-uniform", "one-hot-input",
            "long", "lambda-near-1", "complex-unit-circle")
TEMPLATE_FAMILIES = ("lambda-near-1", "complex-unit-circle")
LOW_PRECISION = (torch.bfloat16, torch.float16)
FUDGE = 4.0


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


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).to(torch.float64)  # exact in float32: the cast of the case adds no rounding


def draw_lsa_case(family: str, g: torch.Generator, dtype: torch.dtype):
    """Float64 ``LSAParams`` and input batch of one correct case of ``family`` (values exact in float32)."""
    from constructions.registry import LSAParams

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
            w = w[..., :r] @ torch.randn(*shape[:-2], r, shape[-1], generator=g, dtype=torch.float64) if r else 0 * w
        elif family == "badly-scaled":  # every row scaled by 10^U(-3, 3) (10^U(-1, 1) for fp16/bf16)
            span = 1.0 if low else 3.0
            w = w * 10.0 ** ((torch.rand(*shape[:-1], 1, generator=g, dtype=torch.float64) * 2 - 1) * span)
        elif family == "zero-rows":
            w[..., : max(1, shape[-2] // 2), :] = 0
        elif family == "repeated":
            w = torch.round(w * 2) / 2
        W[name] = _f32(w)
    params = LSAParams(W["W_Q"], W["W_K"], W["W_V"], W.get("W_O"))
    x = torch.randn(B, T, d, generator=g, dtype=torch.float64)
    if family == "one-hot-input":
        x = torch.nn.functional.one_hot(torch.randint(0, d, (B, T), generator=g), d).to(torch.float64)
    elif family == "badly-scaled" and not low:
        x = x * 10.0 ** float(torch.randint(-2, 3, (1,), generator=g))
    return params, _f32(x), {"family": family, "H": H, "d": d, "d_k": d_k, "d_v": d_v, "d_out": d_out, "T": T, "B": B}


def _cast(params, dtype):
    return dataclasses.replace(params, **{k: v.to(dtype) for k, v in vars(params).items()
                                          if isinstance(v, torch.Tensor) and v.is_floating_point()})


def _lsa_eval(params, x):
    """Float64 reference and magnitude (recurrent form for long sequences: O(T) memory)."""
    from properties.oracle import abs64

    lsa = params.lsa()
    if x.shape[1] <= 256:
        from constructions.registry import get

        return lsa(x), get("lsa-direct").magnitude(params, x)
    from constructions import LinearSelfAttention

    M = LinearSelfAttention(abs64(lsa.W_Q), abs64(lsa.W_K), abs64(lsa.W_V), abs64(lsa.W_O)).forward_recurrent(abs64(x))
    return lsa.forward_recurrent(x), M


def _lsa_ratio(params, x, method: str, dtype: torch.dtype, mode: str,
               fudge: float = 4.0) -> tuple[float | None, float | None]:
    """Error/bound of the construction at ``dtype`` (model bound; for fp16/bf16 the relative model)."""
    from constructions.registry import get
    from equivalence.tolerance import compare, relative_bound, unit_roundoff

    v = get(f"lsa-{method}")
    ref, M = _lsa_eval(params, x)
    rnn = v.construct(_cast(params, dtype))
    if dtype in LOW_PRECISION:  # fp16's range (65504) can overflow: counted in the table, not warned about
        import warnings

        from constructions.rnn import NumericalHazardWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalHazardWarning)
            y = rnn(x.to(dtype), mode=mode)
    else:
        y = rnn(x.to(dtype), mode=mode)
    if dtype not in LOW_PRECISION:
        return compare(y, ref, M, n=v.path_length(params, x.shape[1]), dtype=dtype).ratio, None
    lp = _cast(params, dtype).lsa()(x.to(dtype))
    err = (y.double() - ref).abs()
    if not bool(torch.isfinite(err).all()):
        return None, None  # overflow of the candidate (fp16's range is 65504)
    lp_err = (lp.double() - ref).abs()
    # elementwise: fudge x the plain low-precision LSA's error at that element, plus a floor of fudge x that
    # error's maximum over the sequence and one rounding of M (an element where plain LSA happens to be exact
    # must not demand exactness)
    floor = fudge * lp_err.amax(dim=(1, 2), keepdim=True) + unit_roundoff(dtype) * M
    bound = relative_bound(ref, lp, fudge=fudge, floor=floor)
    return float(torch.where(err == 0, 0.0, err / bound).max()), None


def _template_case(family: str, g: torch.Generator, dtype: torch.dtype):
    """A random template RNN with lambda near 1 (real) or on the unit circle (complex), its input and label."""
    from constructions import GatedLinearRNN

    d, n, m, d_out = _randint(g, 1, 4), _randint(g, 1, 8), _randint(g, 1, 6), _randint(g, 1, 3)
    T = _randint(g, 64, 2048)
    kmax = 24 if dtype == torch.float32 else 40
    cplx = family == "complex-unit-circle"

    def w(*s):
        t = _f32(torch.randn(*s, generator=g, dtype=torch.float64) / math.sqrt(s[-1]))
        return torch.complex(t, _f32(torch.randn(*s, generator=g, dtype=torch.float64) / math.sqrt(s[-1]))) if cplx else t

    if cplx:
        theta = _f32(torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi)
        lam = torch.polar(torch.ones(n, dtype=torch.float64), theta)
    else:
        k = torch.randint(4, kmax + 1, (n,), generator=g).to(torch.float64)
        lam = 1 - 2.0 ** -k
    rnn = GatedLinearRNN(w(n, d + 1), w(n, d + 1), lam, w(m, n), w(m, n), w(d_out, m))
    x = _f32(torch.randn(2, T, d, generator=g, dtype=torch.float64))
    return rnn, x, {"family": family, "d": d, "n": n, "m": m, "T": T}


def _template_ratio(rnn, x, dtype: torch.dtype, mode: str) -> float:
    from constructions import GatedLinearRNN
    from equivalence.tolerance import compare, rnn_path_length
    from properties.oracle import rnn_magnitude

    ref = rnn(x, mode="loop")
    M = rnn_magnitude(rnn, x)
    cd = {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype] if rnn.is_complex else dtype
    low = GatedLinearRNN(*(t.detach().to(cd) for t in rnn.weights()))
    y = low(x.to(dtype), mode=mode)
    # the weights were rounded when cast (complex lambda = cos + i sin rounds): 2 more roundings
    n = rnn_path_length(x.shape[1], rnn.d, rnn.num_neurons, rnn.num_gates, construction_depth=2)
    return compare(y, ref, M, n=n, dtype=dtype).ratio


def false_alarms(dtype: torch.dtype, cases: int, seed: int, *, progress: bool = True,
                 fudge: float = FUDGE) -> dict[str, Stats]:
    """Run ``cases`` correct cases at ``dtype``; per family statistics of error/bound (must stay <= 1)."""
    g = torch.Generator().manual_seed(seed)
    low = dtype in LOW_PRECISION
    fams = [f for f in FAMILIES if not (low and f in TEMPLATE_FAMILIES)]
    weights = {f: (1 if f in ("long",) else 4 if f in TEMPLATE_FAMILIES else 10) for f in fams}
    total = sum(weights.values())
    plan = []
    for f in fams:
        plan += [f] * max(1, round(cases * weights[f] / total))
    stats = {f: Stats() for f in fams}
    by_mode = {"all, step loop": Stats(), "all, parallel": Stats()}
    for i, fam in enumerate(tqdm(plan, desc=f"false alarms {str(dtype).replace('torch.', '')}", disable=not progress,
                                 unit="case", mininterval=2)):
        mode = "loop" if i % 5 == 0 else "auto"
        if fam in TEMPLATE_FAMILIES:
            rnn, x, info = _template_case(fam, g, dtype)
            stats[fam].add(_template_ratio(rnn, x, dtype, mode), x.shape[0], f"seed {seed} case {i} {info}")
            continue
        params, x, info = draw_lsa_case(fam, g, dtype)
        method = "direct" if i % 2 == 0 else "compressed"
        ratio, _ = _lsa_ratio(params, x, method, dtype, mode, fudge)
        case = f"seed {seed} case {i} {method} {mode} {info}"
        stats[fam].add(ratio, x.shape[0], case, overflow=ratio is None and low)
        if low:
            by_mode["all, step loop" if mode == "loop" else "all, parallel"].add(ratio, x.shape[0], case,
                                                                                 overflow=ratio is None)
    if low:  # summary rows by forward path (not families: the totals below skip them)
        stats.update({f"{k} (summary)": v for k, v in by_mode.items()})
    return stats


# -- detection power -------------------------------------------------------------------------------------
EPS = {torch.float64: (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1.1e-14),
       torch.float32: (1e-2, 1e-3, 1e-4, 1e-5, 6e-6)}


def _integer_case(g: torch.Generator):
    from constructions.registry import LSAParams

    d, H, d_k, d_v = _randint(g, 1, 4), _randint(g, 1, 2), _randint(g, 1, 3), _randint(g, 1, 3)

    def w(*s):  # non-zero integers in [-3, 3]: fewer equivalent mutants (a zero weight hides a neuron)
        v = torch.randint(1, 4, s, generator=g) * (torch.randint(0, 2, s, generator=g) * 2 - 1)
        return v.to(torch.float64)

    params = LSAParams(w(H, d_k, d), w(H, d_k, d), w(H, d_v, d), None)
    return params, w(3, _randint(g, 2, 16), d)


def _detected_numeric(layer, params, x, dtype) -> bool:
    from constructions.registry import get
    from equivalence.tolerance import compare

    v = get("lsa-direct")
    ref, M = params.lsa()(x), v.magnitude(params, x)
    y = layer(x.to(dtype))
    return not compare(y, ref, M, n=v.path_length(params, x.shape[1]), dtype=dtype).passed


def _lsa_object(W_Q, W_K, W_V, W_O, x) -> np.ndarray:
    """LSA (Zucchet et al. 2023, Sec. 3) on NumPy object arrays: ``y_t = W_O concat_h sum_{s<=t} v_s (k_s . q_t)``."""
    H = W_Q.shape[0]
    T = x.shape[0]
    q = [[W_Q[h] @ x[t] for t in range(T)] for h in range(H)]
    k = [[W_K[h] @ x[t] for t in range(T)] for h in range(H)]
    v = [[W_V[h] @ x[t] for t in range(T)] for h in range(H)]
    ys = []
    for t in range(T):
        heads = [sum((v[h][s] * (k[h][s] @ q[h][t]) for s in range(1, t + 1)), v[h][0] * (k[h][0] @ q[h][t]))
                 for h in range(H)]
        o = np.concatenate(heads)
        ys.append(o if W_O is None else W_O @ o)
    return np.array(ys, dtype=object)


def prover_refutes(spec: dict, params, T: int = 3) -> bool:
    """Whether the symbolic engine (``equivalence.symbolic.engine.decide_identity``: sparse polynomial rings,
    exact) refutes ``mutant(x) == LSA(x)`` as polynomial identities in a symbolic sequence ``x`` of length
    ``T`` (weights: the mutant's and the LSA's exact binary values as rationals)."""
    from equivalence.symbolic.algebra import fraction_array
    from equivalence.symbolic.arrays import Variables
    from equivalence.symbolic.engine import decide_identity

    from .mutations import evaluate_spec

    d = params.W_Q.shape[2]
    W = [fraction_array(t) if t is not None else None for t in (params.W_Q, params.W_K, params.W_V, params.W_O)]

    def obligation(arrays):
        x = arrays["x"]
        ys = evaluate_spec(spec, x, ones=lambda shape: np.ones(shape, dtype=object))
        return [("y", np.array(ys, dtype=object), _lsa_object(*W, x))]

    return not decide_identity(obligation, Variables().add("x", (T, d))).holds


def prover_row(kind: str, eps: float | None, seed: int, mutants: int) -> tuple[int, int]:
    """``(refuted, decided)`` for ``mutants`` integer-weight mutants of ``kind`` (the exact tier's cases: a float
    construction's own weight rounding, e.g. the compressed construction's products, would make even the
    unmutated RNN inexact as rationals)."""
    from constructions import lsa_to_rnn

    from .mutations import mutate_spec

    g = torch.Generator().manual_seed(seed)
    refuted = 0
    for i in range(mutants):
        ip, _ = _integer_case(g)
        _, _, spec = mutate_spec(lsa_to_rnn(ip.lsa(), "direct" if i % 2 == 0 else "compressed"), kind, g, eps or 0.0)
        refuted += prover_refutes(spec, ip)
    return refuted, mutants


def _prover_row(kind: str, eps: float | None, seed: int, mutants: int) -> tuple[int, int]:
    """:func:`prover_row` in a child interpreter: long runs of the symbolic engine in one process ended in a
    segmentation fault inside the garbage collector (reported; docs/reliability.md), so each row is isolated
    and a crash is recorded as ``(0, 0)`` (shown as "—") instead of losing the whole table."""
    import subprocess

    code = ("import json, torch; torch.set_num_threads(1); from properties.reliability import prover_row; "
            f"print(json.dumps(prover_row({kind!r}, {eps!r}, {seed}, {mutants})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
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


def detection(dtype: torch.dtype, mutants: int, seed: int, *, progress: bool = True,
              prover_mutants: int | None = None) -> list[dict]:
    """Fraction of mutants caught, per kind and epsilon: numeric model bound, exact-integer tier, and (float64,
    first ``prover_mutants`` of each row, default all) the symbolic prover on the very same mutants."""
    from constructions import lsa_to_rnn

    from .mutations import KINDS, STRUCTURAL, mutate_spec

    g = torch.Generator().manual_seed(seed)
    prover = _prover()
    prover_mutants = mutants if prover_mutants is None else prover_mutants
    rows = []
    plan = [(k, None) for k in STRUCTURAL] + [(k, e) for k in ("weight", "lambda") for e in EPS[dtype]]
    assert {k for k, _ in plan} == set(KINDS)
    for kind, eps in tqdm(plan, desc=f"detection {str(dtype).replace('torch.', '')}", disable=not progress):
        caught = exact_caught = exact_total = proved = proved_total = 0
        for i in range(mutants):
            params, x, _ = draw_lsa_case("generic", g, torch.float64)
            method = "direct" if i % 2 == 0 else "compressed"
            rnn = lsa_to_rnn(_cast(params, dtype).lsa(), method)
            layer, _what, _ = mutate_spec(rnn, kind, g, eps or 0.0)
            caught += _detected_numeric(layer, params, x, dtype)
            # exact-integer tier: all values are integers < 2^24, exact in float32 and float64
            ip, ix = _integer_case(g)
            il, _, ispec = mutate_spec(lsa_to_rnn(_cast(ip, dtype).lsa(), method), kind, g, eps or 0.0)
            exact_total += 1
            exact_caught += not torch.equal(il(ix.to(dtype)).double(), ip.lsa()(ix))

        if prover is not None and dtype == torch.float64 and prover_mutants:
            proved, proved_total = _prover_row(kind, eps, seed + len(rows), prover_mutants)
        rows.append({"dtype": str(dtype).replace("torch.", ""), "kind": kind, "eps": eps, "mutants": mutants,
                     "prover_mutants": proved_total,
                     "numeric": caught / mutants,
                     "exact": exact_caught / exact_total if exact_total else None,
                     "prover": proved / proved_total if proved_total else None})
    return rows


# -- report -----------------------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f}%"


def render(fa: dict, det: list[dict], meta: dict) -> str:
    lines = [f"<!-- generated by `{meta['command']}`; do not edit by hand -->", "",
             f"Seed {meta['seed']}; torch {meta['torch']}; fp16/bf16 fudge {meta['fudge']}; "
             f"{meta['seconds']:.0f} s on {meta['threads']} thread(s).", "",
             "### False alarms (correct cases; a ratio > 1 would be a false alarm)", "",
             "| dtype | family | cases | sequences | largest error/bound | margin (1 - ratio) | false alarms | overflows |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for dt, stats in fa.items():
        tot = Stats()
        for fam, s in stats.items():
            lines.append(f"| {dt} | {fam} | {s.cases} | {s.sequences} | {s.worst:.3g} | {1 - s.worst:.3g} | "
                         f"{len(s.failures)} | {len(s.overflows)} |")
            if not fam.endswith("(summary)"):
                tot.cases += s.cases
                tot.sequences += s.sequences
                tot.failures += s.failures
                tot.overflows += s.overflows
                if s.worst > tot.worst:
                    tot.worst = s.worst
        lines.append(f"| **{dt}** | **all** | **{tot.cases}** | **{tot.sequences}** | **{tot.worst:.3g}** | "
                     f"**{1 - tot.worst:.3g}** | **{len(tot.failures)}** | **{len(tot.overflows)}** |")
    lines += ["", "### Detection power (fraction of mutants caught)", "",
              "| dtype | mutation | eps | mutants | numeric (model bound) | exact-integer tier | prover (mutants) |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in det:
        eps = "—" if r["eps"] is None else f"{r['eps']:.1e}"
        lines.append(f"| {r['dtype']} | {r['kind']} | {eps} | {r['mutants']} | {_fmt(r['numeric'])} | "
                     f"{_fmt(r['exact'])} | {_fmt(r['prover'])}"
                     + (f" ({r['prover_mutants']})" if r["prover_mutants"] else "") + " |")
    fails = [f for stats in fa.values() for s in stats.values() for f in s.failures]
    if fails:
        lines += ["", "### False alarms found", ""] + [f"- {f}" for f in fails[:50]]
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- BEGIN GENERATED TABLE -->", "<!-- END GENERATED TABLE -->"


def splice(path: str, table: str) -> str:
    """The new content of ``path``: the table between the BEGIN/END markers of an existing document (the prose
    around it is kept), or the table alone."""
    from pathlib import Path

    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.is_file() else ""
    if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
        head, rest = old.split(BEGIN, 1)
        return head + BEGIN + "\n" + table + END + rest.split(END, 1)[1]
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m properties.reliability", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the CI slice: 300 cases per dtype, 10 mutants per row")
    p.add_argument("--cases", type=int, default=None, help="correct cases per dtype (default 10000; quick 300)")
    p.add_argument("--low-precision-cases", type=int, default=None, help="cases for fp16/bf16 (default 2000; quick 100)")
    p.add_argument("--mutants", type=int, default=None, help="mutants per kind and eps (default 100; quick 10)")
    p.add_argument("--prover-mutants", type=int, default=None,
                   help="of those, how many the symbolic prover also decides (float64 rows; default 10; quick 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fudge", type=float, default=FUDGE, help="fp16/bf16 relative model's factor (default 4)")
    p.add_argument("--out", default=None, help="write the Markdown table here (atomically); an existing file with "
                   "<!-- BEGIN/END GENERATED TABLE --> markers keeps its prose, only the table is replaced")
    p.add_argument("--json", default=None, help="write the raw numbers here (atomically)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    for name in ("cases", "low_precision_cases", "mutants"):
        v = getattr(a, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {v}")
    cases = a.cases or (300 if a.quick else 10_000)
    lp_cases = a.low_precision_cases or (100 if a.quick else 2_000)
    mutants = a.mutants or (10 if a.quick else 100)
    prover_mutants = a.prover_mutants if a.prover_mutants is not None else (1 if a.quick else 10)
    old = torch.get_num_threads(), torch.get_float32_matmul_precision()
    torch.set_num_threads(1)
    torch.set_float32_matmul_precision("highest")
    t0 = time.perf_counter()
    try:
        det = detection(torch.float64, mutants, a.seed + 1, progress=not a.no_progress,
                        prover_mutants=min(prover_mutants, mutants))
        det += detection(torch.float32, mutants, a.seed + 2, progress=not a.no_progress)
        fa = {}
        for dt, n in ((torch.float64, cases), (torch.float32, cases), (torch.bfloat16, lp_cases),
                      (torch.float16, lp_cases)):
            fa[str(dt).replace("torch.", "")] = false_alarms(dt, n, a.seed, progress=not a.no_progress,
                                                              fudge=a.fudge if dt in LOW_PRECISION else FUDGE)
    finally:
        torch.set_num_threads(old[0])
        torch.set_float32_matmul_precision(old[1])
    meta = {"command": "python -m properties.reliability" + (" --quick" if a.quick else ""), "seed": a.seed,
            "fudge": a.fudge,
            "torch": torch.__version__, "seconds": time.perf_counter() - t0, "threads": 1}
    md = render(fa, det, meta)
    print(md)
    from equivalence.report.write import atomic_write

    if a.out:
        atomic_write(a.out, splice(a.out, md))
    if a.json:
        raw = {"meta": meta, "false_alarms": {dt: {f: dataclasses.asdict(s) for f, s in st.items()} for dt, st in fa.items()},
               "detection": det}
        atomic_write(a.json, json.dumps(raw, indent=2, sort_keys=True, default=str) + "\n")
    # exit status: a false alarm of the model (float64/float32) is a failure; fp16/bf16 are reported only
    bad = sum(len(s.failures) for dt in ("float64", "float32") for s in fa[dt].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
