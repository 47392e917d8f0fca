r"""Workload 2: numeric property checks of the base construction, examples per second (docs/benchmarks.md).

The property is the paper's theorem checked numerically: for the direct construction (Zucchet et al. 2023,
App. A), ``construct(W)(x)`` in float32 equals the float64 LSA within the tolerance model $|\hat
y-y|\le\gamma_nM+n\eta$ (:mod:`constructions.tolerance`). Our own Hypothesis harness draws, per example, the
``ci`` profile's sizes ($d\le6$, $H\le3$, $T\le64$, :data:`equivalence.numeric.PROFILES`), a seed, and a
weight kind (generic or one of the degenerate kinds of :func:`equivalence.numeric.degenerate_`), and checks

- **naive**: one sequence per example (``batch=1``);
- **batched**: ``batch`` sequences per example, one forward call for all of them.

A batched example checks a superset of what a naive example with the same draw checks (same weights,
more sequences), so per *sequence* the two have the same error-detection power; the ratio that matters is
sequences checked per second. We also measure detection directly: planted bugs (:data:`MUTANTS`), each harness
run until it finds the bug, time to detection over several Hypothesis seeds. Only public functions are called
(``constructions.get``, the variant's ``sample_params/reference/magnitude/path_length/construct``,
``constructions.tolerance.compare``); the project's own property suite lives in ``properties/``.
"""

import dataclasses
import statistics
import time

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st

from constructions import GatedLinearRNN, get
from constructions.tolerance import compare
from equivalence.numeric import PROFILES, degenerate_

from .common import Case, Ratio, WorkloadResult

__all__ = ["run", "MUTANTS", "harness"]


def _case(d, H, T, seed, kind, batch):
    v = get("lsa-direct")
    g = torch.Generator().manual_seed(seed)
    params = v.sample_params(d, H, generator=g, dtype=torch.float64)
    if kind < 4:
        for t in (params.W_Q, params.W_K, params.W_V):
            degenerate_(t, g, kind)
    x = torch.randn(batch, T, d, generator=g, dtype=torch.float64).to(torch.float32).to(torch.float64)
    return v, params, x


def _cast(params, dtype):
    return dataclasses.replace(
        params, **{k: t.to(dtype) for k, t in vars(params).items() if isinstance(t, torch.Tensor)}
    )


def check_one(d, H, T, seed, kind, *, batch, mode="auto", mutant=None):
    """One example: raise ``AssertionError`` if the float32 construction leaves the tolerance bound."""
    v, params, x = _case(d, H, T, seed, kind, batch)
    ref = v.reference(params, x)
    M = v.magnitude(params, x)
    low = _cast(params, torch.float32)
    rnn = v.construct(low) if mutant is None else mutant(v, low)
    with torch.no_grad():
        y = rnn(x.to(torch.float32), mode=mode)
    res = compare(y, ref, M, n=v.path_length(params, T), dtype=torch.float32)
    if not res.passed:
        raise AssertionError(res.message)


# -- planted bugs ---------------------------------------------------------------------------------------
class _RareInputBug(torch.nn.Module):
    """Wrong output at the steps where x_t[0] > 2.8 (about 1 step in 400): input-triggered."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, mode="auto"):
        y = self.rnn(x, mode=mode)
        return y + (x[..., :1] > 2.8).to(y.dtype) * (1e-2 * y.abs().amax() + 1e-2)


def _rare_input(v, params):
    return _RareInputBug(v.construct(params))


def _third_head(v, params):
    """Weight-triggered: with 3 heads, head 2's queries read head 0's W_Q."""
    if params.W_Q.shape[0] == 3:
        W_Q = params.W_Q.clone()
        W_Q[2] = W_Q[0]
        params = dataclasses.replace(params, W_Q=W_Q)
    return v.construct(params)


def _leaky_memory(v, params):
    """Precision-triggered: memories decay by lambda = 1 - 2^-14 instead of 1 (visible only for long T)."""
    rnn = v.construct(params)
    lam = rnn.lam.detach().clone()
    lam[lam == 1] = 1 - 2.0**-14
    return GatedLinearRNN(rnn.A, rnn.B, lam, rnn.C, rnn.E, rnn.D)


MUTANTS = {
    "rare input (x_t[0] > 2.8)": _rare_input,
    "third head reads head 0's W_Q": _third_head,
    "leaky memory (lambda = 1 - 2^-14)": _leaky_memory,
}


def harness(*, batch: int, examples: int, seed: int, mode: str = "auto", mutant=None) -> dict:
    """Run our Hypothesis harness; returns examples run, seconds, and whether (and when) it failed."""
    prof = PROFILES["ci"]
    count = [0]
    t_fail = [None]
    t0 = time.perf_counter()

    @hseed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.integers(1, prof.max_d),
        st.integers(1, prof.max_heads),
        st.integers(1, prof.max_T),
        st.integers(0, 2**32 - 1),
        st.integers(0, 5),
    )
    def prop(d, H, T, s, kind):
        count[0] += 1
        try:
            check_one(d, H, T, s, kind, batch=batch, mode=mode, mutant=mutant)
        except AssertionError:
            if t_fail[0] is None:
                t_fail[0] = time.perf_counter() - t0
            raise

    failed = False
    try:
        prop()
    except AssertionError:
        failed = True
    return {
        "examples": count[0],
        "seconds": time.perf_counter() - t0,
        "failed": failed,
        "seconds_to_failure": t_fail[0],
    }


def run(*, quick: bool, device: str, repeats: int | None = None, smoke: bool = False) -> list[WorkloadResult]:
    examples = 3 if smoke else (30 if quick else 100)  # the ci Hypothesis profile runs 100 examples
    reps = repeats or (2 if quick else 3)
    batches = [64] if smoke or quick else [4, 16, 64, 256]
    r = WorkloadResult(
        "w2",
        "Numeric property checks (lsa-direct, ci profile sizes, float32 vs float64)",
        {"examples_per_run": examples, "max_d": 6, "max_heads": 3, "max_T": 64, "batches": [1] + batches},
    )
    if device != "cpu":
        r.notes.append(
            "the property harness runs on CPU (the construction's forward on CPU); --device ignored"
        )
    configs = {"naive (1 sequence/example)": (1, "auto"), "naive, step loop": (1, "loop")}
    configs |= {f"batched ({b} sequences/example)": (b, "auto") for b in batches}
    times: dict[str, list[float]] = {k: [] for k in configs}
    runs: dict[str, list[dict]] = {k: [] for k in configs}
    for b, mode in configs.values():  # untimed warm-up: imports, first-call costs, Hypothesis's own setup
        harness(batch=b, examples=3, seed=10_000, mode=mode)
    for rep in range(reps):  # interleaved rounds, same Hypothesis seed for every config in a round
        for name, (b, mode) in configs.items():
            out = harness(batch=b, examples=examples, seed=rep, mode=mode)
            times[name].append(out["seconds"])
            runs[name].append(out)
    for name, (b, _) in configs.items():
        ex = [o["examples"] for o in runs[name]]
        r.cases.append(
            Case(
                name,
                times[name],
                extra={
                    "batch": b,
                    "examples": ex,
                    "failed": any(o["failed"] for o in runs[name]),
                    "examples_per_s": statistics.median(e / t for e, t in zip(ex, times[name])),
                    "sequences_per_s": statistics.median(b * e / t for e, t in zip(ex, times[name])),
                },
            )
        )
    naive = "naive (1 sequence/example)"
    for name, (b, _) in configs.items():
        if b == 1:
            continue
        rounds = [
            (b * eb / tb) / (en / tn)
            for eb, tb, en, tn in zip(
                [o["examples"] for o in runs[name]],
                times[name],
                [o["examples"] for o in runs[naive]],
                times[naive],
            )
        ]
        r.ratios.append(
            Ratio(
                f"sequences checked per second: {name} vs naive",
                name,
                naive,
                statistics.median(rounds),
                rounds,
                target=10.0 if b == 64 else None,
                note="equal detection power per sequence checked (same weights, more sequences)",
            )
        )
    lrounds = [tl / ta for tl, ta in zip(times["naive, step loop"], times[naive])]
    r.ratios.append(
        Ratio(
            "naive harness: auto forward vs step loop",
            naive,
            "naive, step loop",
            statistics.median(lrounds),
            lrounds,
        )
    )
    # detection power: time to find planted bugs
    det_b = 64
    seeds = range(1 if smoke or quick else 5)
    for mname, mut in MUTANTS.items():
        for name, b in ((naive, 1), (f"batched ({det_b} sequences/example)", det_b)):
            outs = [
                harness(batch=b, examples=5 if smoke else (200 if quick else 500), seed=100 + s, mutant=mut)
                for s in seeds
            ]
            found = [o["seconds_to_failure"] for o in outs if o["failed"]]
            r.checks.append(
                {
                    "mutant": mname,
                    "harness": name,
                    "detected": f"{len(found)}/{len(outs)}",
                    "median_seconds_to_detection": statistics.median(found) if found else None,
                    "median_examples": statistics.median(o["examples"] for o in outs),
                }
            )
    r.limits = {
        "per_example_overhead": "Hypothesis draw + LSA/RNN construction + float64 reference and "
        "magnitude + compare: a few ms per example whatever the batch; "
        "batching amortises it over many sequences"
    }
    return [r]
