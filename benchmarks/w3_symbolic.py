"""Workload 3: time of each symbolic proof tier as d and T grow (docs/benchmarks.md).

Calls the prover's public entry point ``equivalence.symbolic.time_tier(construction, tier, d=, T=, heads=)``.
Each series doubles the size until a call takes longer than the workload's budget (then the next, larger
size is skipped and reported as such).
The symbolic tier's speed targets: unrolled tier at d=8, T=8 under 30 s; all-T induction at
d=d_k=d_v=32, H=2 under 30 s; the compressed construction at d=32 likewise; the Schwartz-Zippel tier at d=128.
"""

import time

from equivalence.symbolic import time_tier

from .common import Case, WorkloadResult

__all__ = ["SERIES", "TARGETS", "run"]

#: (label, construction, tier, size key, sizes, fixed kwargs)
SERIES = [
    ("unrolled, direct, d=d_k=d_v, T=d", "lsa-direct", "unrolled", "d", [2, 4, 8], {"T": None}),
    ("induction (all T), direct, H=2", "lsa-direct", "induction", "d", [4, 8, 16, 32], {"heads": 2}),
    ("induction (all T), compressed, H=2", "lsa-compressed", "induction", "d", [4, 8, 16, 32], {"heads": 2}),
    ("Schwartz-Zippel, direct, T=4", "lsa-direct", "schwartz-zippel", "d", [16, 32, 64, 128, 256], {"T": 4}),
]
QUICK_SIZES = {"unrolled": [2, 4], "induction": [4, 8], "schwartz-zippel": [8, 16]}
TARGETS = {
    ("unrolled", "lsa-direct", 8): 30.0,
    ("induction", "lsa-direct", 32): 30.0,
    ("induction", "lsa-compressed", 32): 30.0,
    ("schwartz-zippel", "lsa-direct", 128): 60.0,
}


def run(*, quick: bool, smoke: bool = False, budget_s: float | None = None) -> list[WorkloadResult]:
    r = WorkloadResult("w3", "Symbolic proof tiers (time per proof, one call each)", {})
    budget = budget_s or (2.0 if smoke else (10.0 if quick else 120.0))
    for label, construction, tier, key, sizes, fixed in SERIES:
        if smoke:
            sizes = sizes[:1] if tier != "schwartz-zippel" else [4]
        elif quick:
            sizes = QUICK_SIZES[tier]
        skipped = False
        for size in sizes:
            kw = dict(fixed)
            if kw.get("T", 0) is None:
                kw["T"] = size
            kw[key] = size
            name = f"{label}: d={size}" + (f", T={kw['T']}" if "T" in kw else "")
            target = TARGETS.get((tier, construction, size), "none")
            if skipped:
                why = (
                    f"skipped: the previous size took > {budget / 4:.0f} s CPU (growth makes this one exceed "
                    "the "
                    "budget)"
                )
                r.cases.append(
                    Case(name, [], note=why, extra={"tier": label, "size": size, "status": "skipped"})
                )
                if target != "none":
                    r.checks.append(
                        {
                            "target": f"{label} at d={size}" + (f" under {target:g} s" if target else ""),
                            "seconds": None,
                            "status": "not run (" + why + ")",
                            "met": False,
                        }
                    )
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                res = time_tier(construction, tier, **kw)
                status, secs = res.status, (res.seconds or time.perf_counter() - t0)
                decided = res.tier
            except Exception as e:  # noqa: BLE001 - a tier that errors is a result to report
                status, secs, decided = f"error: {type(e).__name__}: {e}"[:200], time.perf_counter() - t0, ""
            cpu = time.process_time() - c0  # single-threaded: the wall clock of an idle machine
            r.cases.append(
                Case(
                    name,
                    [secs],
                    note=f"CPU {cpu:.2f} s; decided by {decided}",
                    extra={
                        "tier": label,
                        "size": size,
                        "status": status,
                        "cpu_s": round(cpu, 3),
                        "decided_by": decided,
                    },
                )
            )
            if target != "none":
                r.checks.append(
                    {
                        "target": f"{label} at d={size}" + (f" under {target:g} s" if target else ""),
                        "seconds": secs,
                        "cpu_seconds": round(cpu, 2),
                        "status": status,
                        "met": (status in ("proved", "probable") and (target is None or secs < target)),
                    }
                )
            if cpu > budget / 4:  # CPU, not wall: the series should not depend on the machine's load
                skipped = True
    r.sizes = {"budget_per_call_s": budget, "mode": "smoke" if smoke else ("quick" if quick else "full")}
    r.limits = {
        "unrolled": "the expanded polynomial has O(T d^4) monomials per output (sparse rings); time grows "
        "with the monomial count, memory with the largest intermediate",
        "induction": "one step of the state invariant, independent of T, decided exactly over atoms (leaf "
        "sums "
        "such as v, k, q and W_K^T W_Q named once): O(H d_k d_v) terms (direct), O(d_out d^3) "
        "(compressed readout), plus running the wiring on unexpanded values",
        "schwartz-zippel": "prime-field evaluation (int64 residues mod p < 2^31, 16-bit limb matmuls) of the "
        "wiring and stage functions at random points: O(T (n d + nnz(C, E, D))) machine "
        "operations; the reference statement on Python ints; memory: the dense weights "
        "(the compressed construction's C is d_out d x d^2/2)",
    }
    return [r]
