"""Every shipped exact variant (and the exact part of each partial one) gets PROVED unrolled and all-T
claims through the API ``python -m equivalence prove`` uses, with statements that name what was checked."""

import pytest

import constructions

EXACT = [n for n in constructions.available() if constructions.get(n).status in ("exact", "partial")]
UNROLLED = [{"d": 2, "heads": 2, "d_k": 2, "d_v": 1, "T": 3}]
ALLT = [{"d": 2, "heads": 2, "d_k": 2, "d_v": 1}]


def _check(name, profile_sets):
    from equivalence.symbolic.catalogue import run_claim

    for suffix, sets in profile_sets:
        c = run_claim(f"{name.upper()}-{suffix}/v1", sets=sets, seed=20261203)
        assert c.status == "proved", (c.id, c.status, c.message[:500])
        assert c.epsilon is None and "schwartz" not in c.tier
        if suffix == "ALLT" and c.tier == "simulation":
            # either the registered reference is the one-step form, or the link length is named
            linked = "for t = 1..6 (proved unrolled, exactly)" in c.statement
            assert linked or "is run_recurrence(recurrence(θ)) itself" in c.statement, c.statement
            assert linked == ("t ≤ 6" in c.title), c.title


def test_every_shipped_exact_variant_has_unrolled_and_all_T_claims():
    from equivalence.symbolic.catalogue import variant_claim_ids

    assert len(EXACT) >= 12
    for name in EXACT:
        ids = variant_claim_ids(constructions.get(name))
        assert f"{name.upper()}-UNROLLED/v1" in ids and f"{name.upper()}-ALLT/v1" in ids, ids


@pytest.mark.parametrize("name", EXACT)
def test_a_shipped_exact_variant_is_proved_unrolled_and_for_every_T(name):
    _check(name, (("UNROLLED", UNROLLED), ("ALLT", ALLT)))


@pytest.mark.slow
@pytest.mark.parametrize("name", EXACT)
def test_a_shipped_exact_variant_is_proved_at_the_ci_profile_sizes(name):
    from equivalence.symbolic.catalogue import default_sets

    _check(name, (("UNROLLED", default_sets("UNROLLED", "ci")), ("ALLT", default_sets("ALLT", "ci"))))
