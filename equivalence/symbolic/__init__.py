"""Symbolic proofs that gated linear RNN constructions equal their references (``docs/proofs.md``).

A claim travels one way through four stages (:data:`STAGES`), after the exact arithmetic they share:

1. **lift** — the code under proof as exact programs: :mod:`.lift` runs the variant's torch code on exact
   polynomials; :mod:`.subjects` is the statement path (the built-in LSA wiring against the paper's
   statement, negative controls against their exact hooks); :mod:`.params` samples and rounds parameters;
2. **obligations** — the identities that must hold: :mod:`.simulation` (unrolled and one-step obligations of
   lifted variants), :mod:`.unrolled`, :mod:`.induction`, :mod:`.index` (statement path),
   :mod:`.impossibility`, :mod:`.invariance`;
3. **decide** — :mod:`.engine` (exact expansion, Schwartz–Zippel, counterexample search) and :mod:`.modular`
   (prime fields);
4. **claim** — :mod:`.lifted_claims`, :mod:`.variant_claims`, :mod:`.global_claims`, :mod:`.catalogue`,
   :mod:`.render`: IDs, statuses (proved / probable / refuted / …), seeds,
   :class:`~equivalence.claims.ClaimResult`.

A module imports only from its own stage, an earlier stage or the shared arithmetic (:mod:`.algebra`,
:mod:`.atoms`, :mod:`.arrays`, :mod:`.expressions`), with one exception: an obligation module hands the
identities it builds to the decision procedures (it imports :mod:`.engine` / :mod:`.modular`), which import
only the shared arithmetic. ``tests/test_symbolic_proofs.py`` checks this against the real imports.
"""

from tqdm import tqdm

from .catalogue import PROFILES, TIERS, claim_ids, resolve_claim, run_claim, run_target, variant_claim_ids
from .global_claims import GLOBAL_IDS

__all__ = [
    "PROFILES",
    "STAGES",
    "TIERS",
    "claim_ids",
    "resolve_claim",
    "run_claim",
    "run_target",
    "time_tier",
    "variant_claim_ids",
    "verify_section",
]

#: the modules of this package by pipeline stage, in order (``arithmetic`` is shared by every stage)
STAGES = {
    "arithmetic": ("algebra", "atoms", "arrays", "expressions"),
    "lift": ("params", "lift", "subjects"),
    "obligations": ("simulation", "unrolled", "induction", "index", "impossibility", "invariance"),
    "decide": ("engine", "modular"),
    "claim": ("lifted_claims", "variant_claims", "global_claims", "render", "catalogue"),
}


def verify_section(variants, args) -> list:
    """The symbolic section of ``python -m equivalence verify``: global claims once, then every claim of
    every variant, at the sizes of ``args.profile`` (``None`` -> ``"ci"``)."""
    profile = getattr(args, "profile", None) or "ci"
    seed = getattr(args, "seed", 0) or 0
    imports = tuple(getattr(args, "imports", ()) or ())
    ids = list(GLOBAL_IDS) + [c for v in variants for c in variant_claim_ids(v)]
    out = []
    for cid in tqdm(ids, desc="symbolic proofs", unit="claim", disable=getattr(args, "no_progress", False)):
        out.append(run_claim(cid, profile=profile, seed=seed, imports=imports))
    return out


def time_tier(
    construction: str,
    tier: str,
    *,
    d: int,
    T: int = 4,
    heads: int = 1,
    d_k: int | None = None,
    d_v: int | None = None,
    d_out: int | None = None,
    seed: int = 0,
    decide: str = "auto",
):
    """Run one tier of one construction at one size; return its :class:`~equivalence.claims.ClaimResult`
    (``.seconds`` is the proof time; ``.tier`` says how it was decided). For ``benchmarks/``.

    ``tier``: ``"unrolled"`` (fixed T), ``"induction"`` (every T), ``"index"`` (the WIRING claim) or
    ``"schwartz-zippel"`` (the SZ claim). ``decide`` (unrolled/induction only): ``"auto"`` (exact expansion,
    Schwartz–Zippel when the estimated number of terms is too large), ``"exact"`` or ``"schwartz-zippel"``.
    """
    suffix = {"unrolled": "UNROLLED", "induction": "ALLT", "index": "WIRING", "schwartz-zippel": "SZ"}[tier]
    forced = {
        "auto": "auto",
        "schwartz-zippel": "schwartz-zippel",
        "exact": tier if tier in ("unrolled", "induction") else "auto",
    }[decide]
    sizes = {
        k: v
        for k, v in {"d": d, "heads": heads, "d_k": d_k, "d_v": d_v, "d_out": d_out, "T": T}.items()
        if v is not None
    }
    cid = f"{construction.upper()}-{suffix}/v1"
    return run_claim(cid, sets=[sizes] if suffix != "WIRING" else None, tier=forced, seed=seed)
