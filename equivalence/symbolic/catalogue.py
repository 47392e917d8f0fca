"""The claim registry: stable IDs -> checkers -> :class:`~equivalence.claims.ClaimResult`.

Global claims (:data:`~equivalence.symbolic.global_claims.GLOBAL_IDS`) and per-construction claims
(``{NAME}-{UNROLLED,ALLT,WIRING,SZ,IMPOSSIBLE}/v1`` for every registered variant). An ID is never
reused for a different statement: a changed statement gets a new version (``/v2``). Aliases of the form
``LSA-RNN-DIRECT-ALLT`` (for ``LSA-DIRECT-ALLT/v1``) and IDs without the version are accepted on input;
results always carry the canonical ID.

Every result records in ``rerun`` the exact arguments (claim, explicit size sets, tier, mode, seed, imports)
that ``check-certificate`` uses to re-run it, and ``statement_digest = sha256(srepr(statement))`` of the
checked SymPy objects (the SymPy version is in the evidence).
"""

import math
import re
import secrets
import time

import sympy as sp

import constructions
from constructions.contract import hook

from ..claims import ClaimResult
from .global_claims import GLOBAL_IDS, run_global
from .render import latex_of, mathml_of, sizes_object, statement_digest
from .subjects import statement_path
from .variant_claims import SUFFIXES, impossibility_argument, run_variant_claim

__all__ = [
    "PROFILES",
    "TIERS",
    "claim_ids",
    "default_sets",
    "resolve_claim",
    "run_claim",
    "run_target",
    "variant_claim_ids",
]

TIERS = ("auto", "unrolled", "induction", "index", "schwartz-zippel")

#: size sets per profile and claim suffix (``grid``: the sizes at which WIRING checks direct_weights)
PROFILES = {
    "dev": {
        "UNROLLED": [{"d": 2, "heads": 1, "T": 3}],
        "ALLT": [{"d": 3, "heads": 2, "d_k": 2, "d_v": 2}],
        "SZ": [{"d": 8, "heads": 2, "d_k": 4, "d_v": 4, "d_out": 3, "T": 6}],
        "grid": {"heads": 2, "d": 2},
    },
    "ci": {
        "UNROLLED": [
            {"d": 3, "heads": 1, "T": 4},
            {"d": 2, "heads": 2, "d_k": 2, "d_v": 3, "d_out": 2, "T": 3},
        ],
        "ALLT": [{"d": 4, "heads": 2}, {"d": 3, "heads": 2, "d_k": 2, "d_v": 3, "d_out": 2}],
        "SZ": [{"d": 16, "heads": 2, "d_k": 8, "d_v": 8, "d_out": 4, "T": 8}],
        "grid": {"heads": 2, "d": 2},
    },
    "thorough": {
        "UNROLLED": [
            {"d": 4, "heads": 1, "T": 6},
            {"d": 3, "heads": 2, "d_k": 2, "d_v": 3, "d_out": 2, "T": 5},
            {"d": 8, "heads": 1, "T": 8},
        ],
        "ALLT": [{"d": 8, "heads": 2}, {"d": 16, "heads": 2, "d_k": 8, "d_v": 8, "d_out": 4}],
        "SZ": [{"d": 48, "heads": 2, "d_k": 8, "d_v": 8, "d_out": 4, "T": 16}],
        "grid": {"heads": 2, "d": 3},
    },
}
_VERSION = re.compile(r"^(.*?)(/[vV](\d+))?$")


def _capabilities(variant) -> set[str]:
    """Which claims apply to ``variant`` (from its class, not from a run): UNROLLED and ALLT always (built-in
    LSA constructions against the LSA statement; every other variant lifted from its torch code); SZ for the
    built-in LSA constructions (prime fields, against the LSA statement: large sizes); WIRING for the built-in
    direct LSA construction."""
    caps = {"UNROLLED", "ALLT"}
    if statement_path(variant):  # the prime-field tier runs against the LSA statement
        caps.add("SZ")
    if statement_path(variant) and hook(variant, "method") == "direct":
        caps.add("WIRING")
    return caps


def variant_claim_ids(variant) -> list[str]:
    name = variant.name.upper()
    if variant.status == "impossible":
        if impossibility_argument(variant) is None:
            # without a declared certificate the IMPOSSIBLE claim *is* the refutation of the tried
            # construction at a concrete input (the UNROLLED claim would repeat the same computation)
            return [f"{name}-IMPOSSIBLE/v1"]
        return [f"{name}-IMPOSSIBLE/v1", f"{name}-UNROLLED/v1"]
    caps = _capabilities(variant)
    return [f"{name}-{s}/v1" for s in ("UNROLLED", "ALLT", "WIRING", "SZ") if s in caps]


def claim_ids(variants=None) -> list[str]:
    variants = [constructions.get(n) for n in constructions.available()] if variants is None else variants
    return list(GLOBAL_IDS) + [c for v in variants for c in variant_claim_ids(v)]


def resolve_claim(claim_id: str):
    """``(canonical id, variant or None, suffix or None)``; ``KeyError`` with the known IDs otherwise."""
    if not isinstance(claim_id, str) or not claim_id:
        raise KeyError(f"claim id must be a non-empty string; got {claim_id!r}")
    m = _VERSION.match(claim_id.strip().upper())
    base, version = m.group(1), m.group(3) or "1"
    alias = re.match(r"^LSA-RNN-(DIRECT|COMPRESSED)-(.*)$", base)
    if alias:
        base = f"LSA-{alias.group(1)}-{alias.group(2)}"
    cid = f"{base}/v{version}"
    if cid in GLOBAL_IDS:
        return cid, None, None
    if base.endswith("-ALLSIZES"):
        raise KeyError(
            f"claim {claim_id!r} was renamed {base[: -len('-ALLSIZES')]}-WIRING/v1: it checks the wiring "
            "at a grid of sizes (and proves the role equations for every size); every size is not claimed"
        )
    for name in constructions.available():
        v = constructions.get(name)
        for suffix in SUFFIXES:
            if base == f"{name.upper()}-{suffix}":
                if cid not in variant_claim_ids(v):
                    raise KeyError(
                        f"claim {cid!r} does not exist for variant {name!r} (status {v.status}); "
                        f"its claims: {', '.join(variant_claim_ids(v))}"
                    )
                return cid, v, suffix
    raise KeyError(f"no claim {claim_id!r}; known claims: {', '.join(claim_ids())}")


def default_sets(suffix: str, profile: str) -> list[dict]:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    if suffix == "IMPOSSIBLE":  # the fallback refutation of a negative control runs at the smallest sizes
        suffix, profile = "UNROLLED", "dev"
    return [dict(s) for s in PROFILES[profile].get(suffix, [{}])]


def _check_sets(sets) -> list[dict]:
    out = []
    for s in sets:
        s = {k: v for k, v in dict(s).items() if v is not None}
        for k, v in s.items():
            if k not in ("d", "heads", "d_k", "d_v", "d_out", "T"):
                raise ValueError(f"unknown size {k!r}; expected d, heads, d_k, d_v, d_out, T")
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"size {k} must be an int >= 1; got {v!r}")
        s.setdefault("heads", 1)
        if "d" not in s:
            raise ValueError(f"a size set needs d (the input dimension); got {s}")
        out.append(s)
    return out


#: seeds are drawn below this bound (and ``--seed`` must lie below it): torch generators take 64-bit seeds
SEED_LIMIT = 1 << 63


def draw_seed() -> int:
    """A fresh seed from the operating system's randomness (``secrets``), for one run's random points."""
    return secrets.randbelow(SEED_LIMIT)


#: a negative control's claims: a refutation is what must happen, a proof is an unexpected pass
_NEGATIVE = {"refuted": "expected-failure", "proved": "unexpected-pass", "probable": "unexpected-pass"}


def _epsilon(evidence) -> float | None:
    """Union bound over every Schwartz–Zippel run in ``evidence``: the sum of
    ``2**error_probability_log2``."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            e = v.get("error_probability_log2")
            if isinstance(e, int | float):
                found.append(2.0**e)
            elif e == "-inf":
                found.append(0.0)
            for k, u in v.items():
                if k != "error_probability_log2":
                    walk(u)
        elif isinstance(v, list | tuple):
            for u in v:
                walk(u)

    walk(evidence)
    return min(1.0, sum(found)) if found else None


def run_claim(
    claim_id: str,
    *,
    sets: list[dict] | None = None,
    profile: str = "ci",
    tier: str = "auto",
    mode: str | None = None,
    seed: int | None = None,
    imports: tuple = (),
) -> ClaimResult:
    """Check one claim and return its :class:`ClaimResult` (never raises for a failing proof; a crash of the
    checker is reported with status ``error``). ``seed=None`` draws a fresh seed (:func:`draw_seed`); the seed
    used is recorded in ``rerun`` and in the evidence, and re-running with it reproduces the random points."""
    if seed is None:
        seed = draw_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an int in [0, 2^63); got {seed!r}")
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}; got {tier!r}")
    cid, variant, suffix = resolve_claim(claim_id)
    if variant is not None and suffix in ("UNROLLED", "SZ", "ALLT", "IMPOSSIBLE"):
        sets = _check_sets(sets if sets is not None else default_sets(suffix, profile))
        for s in sets:
            if suffix not in ("ALLT",) and "T" not in s:
                s["T"] = 3
    else:
        sets = []
    grid = PROFILES[profile]["grid"] if profile in PROFILES else PROFILES["ci"]["grid"]
    opts = {"seed": seed, "tier": tier, "mode": mode, "grid": grid}
    t0 = time.perf_counter()
    try:
        run = run_global(cid) if variant is None else run_variant_claim(variant, suffix, sets, opts)
        out = run.outcome
    except Exception as e:  # noqa: BLE001 - the checker itself failed: report it, never pretend
        return ClaimResult(
            id=cid,
            title=cid,
            statement="the checker raised an exception",
            kind="symbolic",
            status="error",
            construction=variant.name if variant else "",
            tier=tier,
            sizes={"sets": sets},
            seconds=round(time.perf_counter() - t0, 3),
            rerun=_rerun(cid, sets, tier, mode, seed, imports, profile),
            message=f"{type(e).__name__}: {e}",
        )
    seconds = time.perf_counter() - t0
    status = out.status
    epsilon = None
    if status == "proved" and "schwartz" in (out.tier or ""):  # random points: probable, never proved
        epsilon = _epsilon(out.evidence)
        status = "probable"
        if epsilon is None:
            status, out.message = "error", "a Schwartz-Zippel decision without an error bound in its evidence"
    if suffix == "IMPOSSIBLE" or (
        variant is not None and variant.status == "impossible" and suffix == "UNROLLED"
    ):
        status = _NEGATIVE.get(status, status)
    kind = (
        "impossibility"
        if cid.startswith("IMPOSSIBLE") or cid == "TEMPLATE-DEGREE-BOUND/v1" or suffix == "IMPOSSIBLE"
        else "invariance"
        if cid.startswith("INVARIANCE")
        else "symbolic"
    )
    has_objects = not (isinstance(run.objects, sp.Tuple) and len(run.objects) == 0)
    latex = latex_of(run.objects, run.prefix) if has_objects else ""
    evidence = _untimed(out.evidence)  # the claim's own ``seconds`` is the timing; evidence is reproducible
    evidence["sympy"] = sp.__version__
    evidence["seed"] = seed
    if has_objects:
        evidence["mathml"] = mathml_of(run.objects, run.prefix)
    dig = statement_digest(
        sp.Symbol(cid),
        sp.Symbol(variant.name if variant else ""),
        sizes_object(sets),
        sp.Symbol(out.tier),
        run.objects,
        *run.digest_extra,
    )
    return ClaimResult(
        id=cid,
        title=run.title,
        statement=run.statement,
        kind=kind,
        status=status,
        construction=variant.name if variant else "",
        tier=out.tier,
        sizes=_sizes_of(suffix, sets, grid),
        latex=latex,
        statement_digest=dig,
        seconds=round(seconds, 3),
        evidence=_jsonable(evidence),
        counterexample=_jsonable(_uniform(out.counterexample)) if out.counterexample is not None else None,
        rerun=_rerun(cid, sets, tier, mode, seed, imports, profile),
        message=out.message,
        epsilon=epsilon,
        assumptions=tuple(run.assumptions),
    )


def _untimed(v):
    """``v`` without wall-clock fields (``seconds``, at any depth): a re-run with the same seed reproduces
    the evidence exactly (``check-certificate`` compares it field by field)."""
    if isinstance(v, dict):
        return {k: _untimed(u) for k, u in v.items() if k != "seconds"}
    if isinstance(v, list | tuple):
        return [_untimed(u) for u in v]
    return v


def _uniform(cx):
    """A counterexample at a time ``t`` names ``output_index``, ``rnn_output`` and ``reference_output`` (what
    ``prove`` prints and the replay file records). A lifted counterexample carries the exact point and the
    float64 rerun of both sides there: its values at ``(t, output_index)`` are taken from that rerun and
    labelled as such; where no point was certified they are ``None``."""
    if not isinstance(cx, dict) or "t" not in cx or "rnn_output" in cx:
        return cx
    cx = dict(cx)
    o, t_ = cx.get("output_index"), cx.get("t")
    cx.setdefault("output_index", None)
    rerun = cx.get("rerun") if isinstance(cx.get("rerun"), dict) else {}
    cx["rnn_output"] = cx["reference_output"] = None
    try:
        cx["rnn_output"] = rerun["rnn_float64"][t_ - 1][o]
        cx["reference_output"] = rerun["reference_float64"][t_ - 1][o]
        cx["output_values"] = "float64 rerun of both sides at the exact point (the decision is exact)"
    except (KeyError, IndexError, TypeError):
        cx["output_values"] = "no point certifying the difference was found: no output values"
    return cx


def _sizes_of(suffix, sets, grid) -> dict:
    if suffix == "WIRING":  # what was checked where: the roles symbolically, the code on the grid
        return {
            "role equations": "every H, d, d_k, d_v",
            "direct_weights checked at": f"H <= {grid['heads']}, d, d_k, d_v <= {grid['d']}",
            "construct() checked at": f"H <= {grid['heads']}, d, d_k, d_v <= {grid['d']}",
        }
    return {"sets": sets}


def _rerun(cid, sets, tier, mode, seed, imports, profile) -> dict:
    return {
        "command": "prove",
        "claim": cid,
        "sets": sets,
        "tier": tier,
        "mode": mode,
        "seed": seed,
        "profile": profile,
        "imports": list(imports),
    }


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(u) for k, u in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(u) for u in v]
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    return str(v)


def run_target(
    target: str | None,
    *,
    sets: list[dict] | None = None,
    profile: str = "ci",
    tier: str = "auto",
    mode: str | None = None,
    seed: int | None = None,
    imports: tuple = (),
) -> list[ClaimResult]:
    """Run a claim (by ID), every claim of a construction (by variant name), or everything (``None``).
    ``seed=None``: one seed is drawn for the whole run."""
    if seed is None:
        seed = draw_seed()
    if target is None:
        ids = claim_ids()
    elif target in constructions.available():
        v = constructions.get(target)
        ids = variant_claim_ids(v)
        wanted = {
            "unrolled": "UNROLLED",
            "induction": "ALLT",
            "index": "WIRING",
            "schwartz-zippel": "SZ",
        }.get(tier)
        if wanted is not None:
            ids = [i for i in ids if i.endswith(f"-{wanted}/v1")]
            if not ids:
                raise ValueError(f"variant {target!r} has no {tier} claim")
    else:
        ids = [resolve_claim(target)[0]]
    out = []
    for cid in ids:
        _, _, suffix = resolve_claim(cid)
        claim_sets = sets if (sets is not None and suffix in ("UNROLLED", "SZ", "ALLT")) else None
        if claim_sets is not None and suffix != "ALLT":
            claim_sets = [{**s, "T": s.get("T") or 3} for s in claim_sets]
        out.append(
            run_claim(
                cid,
                sets=claim_sets,
                profile=profile,
                tier=tier if suffix != "SZ" else "auto",
                mode=mode,
                seed=seed,
                imports=imports,
            )
        )
    return out
