"""Mutation-testing kills for equivalence/claims.py (docs/reliability.md, "Mutation testing")."""

import hashlib
import json

import pytest


def test_ok_statuses_and_digest_exact():
    from equivalence.claims import OK_STATUSES, ClaimResult, digest

    assert OK_STATUSES == frozenset(
        {"proved", "probable", "tested", "empirical", "expected-failure", "skipped"}
    )
    assert digest("abc") == hashlib.sha256(b"abc").hexdigest()
    assert digest("λ") == hashlib.sha256("λ".encode()).hexdigest()  # utf-8, not latin-1 or ascii
    for status in (
        "proved",
        "probable",
        "refuted",
        "tested",
        "failed",
        "empirical",
        "not-supported",
        "expected-failure",
        "unexpected-pass",
        "error",
        "skipped",
    ):
        assert ClaimResult("X/v1", "t", "s", "numeric", status).ok is (status in OK_STATUSES)


def test_claim_defaults_and_to_dict():
    from equivalence.claims import ClaimResult

    c = ClaimResult("X/v1", "title", "stmt", "symbolic", "proved")
    d = c.to_dict()
    assert d == {
        "id": "X/v1",
        "title": "title",
        "statement": "stmt",
        "kind": "symbolic",
        "status": "proved",
        "construction": "",
        "tier": "",
        "sizes": {},
        "latex": "",
        "statement_digest": "",
        "seconds": 0.0,
        "evidence": {},
        "counterexample": None,
        "rerun": {},
        "message": "",
        "trust": "proved",
        "epsilon": None,
        "assumptions": [],
        "depends_on": [],
        "replay": "",
    }
    assert json.loads(json.dumps(d)) == d
    a, b = ClaimResult("A", "t", "s", "numeric", "tested"), ClaimResult("B", "t", "s", "numeric", "tested")
    a.sizes["n"] = 1
    assert b.sizes == {} and b.evidence == {} and b.rerun == {}  # fresh default containers per claim
    with pytest.raises(AttributeError):
        a.status = "failed"  # frozen


def test_to_dict_rejects_non_json_evidence_with_message():
    from equivalence.claims import ClaimResult, _reject

    bad = ClaimResult("X/v1", "t", "s", "numeric", "tested", evidence={"ratio": {1, 2}})
    with pytest.raises(TypeError) as info:
        bad.to_dict()
    assert str(info.value) == "claim evidence must be JSON-serialisable; got set"
    with pytest.raises(ValueError):  # allow_nan=False: NaN evidence is not valid JSON
        ClaimResult("X/v1", "t", "s", "numeric", "tested", evidence={"ratio": float("nan")}).to_dict()
    with pytest.raises(TypeError, match="got object"):
        _reject(object())
    # keys are sorted in the check only; the returned dict keeps field order
    d = ClaimResult("X/v1", "t", "s", "numeric", "tested", evidence={"b": 1, "a": 2}).to_dict()
    assert list(d["evidence"]) == ["b", "a"]
    # the certificate is written with sort_keys=True (equivalence/report/integrity.py): keys that cannot be
    # ordered fail here, early, not when the report is written
    with pytest.raises(TypeError):
        ClaimResult("X", "t", "s", "numeric", "tested", evidence={2: 1, "a": 2}).to_dict()
