"""Symbolic proofs that gated linear RNN constructions equal their references (``docs/proofs.md``).

One way, four stages (each module one stage, importing only from earlier ones):

1. **lift** (:mod:`.lift`; the LSA-statement path: :mod:`.subjects`, :mod:`.arrays`, :mod:`.expressions`) —
   the variant's torch code, or the built-in wiring and the paper's statement, as exact programs;
2. **obligations** (:mod:`.simulation`, :mod:`.unrolled`, :mod:`.induction`, :mod:`.index`,
   :mod:`.impossibility`, :mod:`.invariance`) — the identities that must hold;
3. **decide** (:mod:`.engine` with :mod:`.algebra`, :mod:`.atoms`; :mod:`.modular` for prime fields);
4. **claim** (:mod:`.lifted_claims`, :mod:`.variant_claims`, :mod:`.global_claims`, :mod:`.catalogue`,
   :mod:`.render`) — IDs, statuses (proved / probable / refuted / …), seeds,
   :class:`~equivalence.claims.ClaimResult`.
"""

from .catalogue import PROFILES, TIERS, claim_ids, resolve_claim, run_claim, run_target, variant_claim_ids

__all__ = [
    "PROFILES",
    "TIERS",
    "claim_ids",
    "resolve_claim",
    "run_claim",
    "run_target",
    "time_tier",
    "variant_claim_ids",
    "verify_section",
]


def verify_section(variants, args) -> list:
    """The symbolic section of ``python -m equivalence verify``: global claims once, then every claim of
    every variant, at the sizes of ``args.profile`` (``None`` -> ``"ci"``)."""
    from tqdm import tqdm

    from .global_claims import GLOBAL_IDS

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
