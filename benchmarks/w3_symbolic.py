"""Workload 3: time of each symbolic proof tier as d and T grow (issue 7).

Calls the prover's public entry point ``equivalence.symbolic.time_tier(construction, tier, d=, T=, heads=)``
(the ``proofs`` helper's module; "not available" when it is missing). Each series doubles the size until a
call takes longer than the workload's budget (then the next, larger size is skipped and reported as such).
Issue 7's targets: unrolled tier at d=8, T=8 under 30 s; all-T induction at d=d_k=d_v=32, H=2 under 30 s;
the compressed construction at d=32 likewise; the Schwartz-Zippel tier at d=128.
"""

import time

from .common import Case, WorkloadResult

__all__ = ["run", "SERIES", "TARGETS"]

#: (label, construction, tier, size key, sizes, fixed kwargs)
SERIES = [
    ("unrolled, direct, d=d_k=d_v, T=d", "lsa-direct", "unrolled", "d", [2, 4, 8], {"T": None}),
    ("induction (all T), direct, H=2", "lsa-direct", "induction", "d", [4, 8, 16, 32], {"heads": 2}),
    ("induction (all T), compressed, H=2", "lsa-compressed", "induction", "d", [4, 8, 16, 32], {"heads": 2}),
    ("Schwartz-Zippel, direct, T=4", "lsa-direct", "schwartz-zippel", "d", [16, 32, 64, 128], {"T": 4}),
]
QUICK_SIZES = {"unrolled": [2, 4], "induction": [4, 8], "schwartz-zippel": [8, 16]}
TARGETS = {("unrolled", "lsa-direct", 8): 30.0, ("induction", "lsa-direct", 32): 30.0,
           ("induction", "lsa-compressed", 32): 30.0, ("schwartz-zippel", "lsa-direct", 128): None}


def run(*, quick: bool, smoke: bool = False, budget_s: float | None = None) -> list[WorkloadResult]:
    r = WorkloadResult("w3", "Symbolic proof tiers (time per proof, one call each)", {})
    try:
        from equivalence.symbolic import time_tier
    except ImportError as e:  # the prover is another helper's module: report, do not fail the run
        r.available = False
        r.notes.append(f"equivalence.symbolic.time_tier not importable ({e}); rerun when the prover is installed")
        return [r]
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
                why = f"skipped: the previous size took > {budget / 4:.0f} s (growth makes this one exceed the budget)"
                r.cases.append(Case(name, [], note=why, extra={"tier": label, "size": size, "status": "skipped"}))
                if target != "none":
                    r.checks.append({"target": f"{label} at d={size}" + (f" under {target:g} s" if target else ""),
                                     "seconds": None, "status": "not run (" + why + ")", "met": False})
                continue
            t0 = time.perf_counter()
            try:
                res = time_tier(construction, tier, **kw)
                status, secs = res.status, (res.seconds or time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - a tier that errors is a result to report
                status, secs = f"error: {type(e).__name__}: {e}"[:200], time.perf_counter() - t0
            r.cases.append(Case(name, [secs], extra={"tier": label, "size": size, "status": status}))
            if target != "none":
                r.checks.append({"target": f"{label} at d={size}" + (f" under {target:g} s" if target else ""),
                                 "seconds": secs, "status": status,
                                 "met": (status == "proved" and (target is None or secs < target))})
            if secs > budget / 4:
                skipped = True
    r.sizes = {"budget_per_call_s": budget, "mode": "smoke" if smoke else ("quick" if quick else "full")}
    r.limits = {"unrolled": "the expanded polynomial has O(T d^4) monomials per output (sparse rings); time grows "
                            "with the monomial count, memory with the largest intermediate",
                "induction": "one step of the state invariant: O(d_k d_v d^2) monomials per head; independent of T",
                "schwartz-zippel": "exact rational arithmetic at random points: O(T n (d + m)) big-number products, "
                                   "the integers growing with T"}
    return [r]
