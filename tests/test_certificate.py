"""check-certificate: confirms a fresh certificate, fails (naming the claim) on any hand edit or truncation."""

import json
import subprocess
import sys

import pytest


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "equivalence", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A certificate with symbolic claims (proved, skipped, expected-failure) and a numeric claim."""
    import torch

    import constructions
    from equivalence.numeric import check_variant_numeric
    from equivalence.report import provenance, write_report
    from equivalence.symbolic import run_claim

    claims = [run_claim("LSA-DIRECT-ALLT/v1", sets=[{"d": 2, "heads": 1}]),
              run_claim("LSA-COMPRESSED-UNROLLED/v1", sets=[{"d": 2, "heads": 1, "T": 2}]),
              run_claim("IMPOSSIBLE-NO-INPUT-GATING/v1"),
              check_variant_numeric(constructions.get("lsa-direct"), profile="dev", dtype=torch.float64)]
    out = tmp_path_factory.mktemp("cert")
    write_report(claims, out, provenance=provenance("cpu"), command="test fixture (claims of several commands)")
    return out / "certificate.json"


def _edit(path, tmp_path, fn, name="edited.json"):
    data = json.loads(path.read_text())
    fn(data)
    p = tmp_path / name
    p.write_text(json.dumps(data, indent=2, sort_keys=True))
    return p


def test_fresh_certificate_is_confirmed(certificate):
    from equivalence.commands.check_certificate import check_certificate

    lines = []
    assert check_certificate(certificate, echo=lines.append), lines
    assert lines[-1].startswith("CONFIRMED: 4 claims")


def test_edited_status_fails_and_names_the_claim(certificate, tmp_path):
    def flip(d):
        d["claims"][0]["status"] = "proved" if d["claims"][0]["status"] != "proved" else "refuted"

    p = _edit(certificate, tmp_path, flip)
    r = _cli("check-certificate", str(p), "--no-rerun")
    assert r.returncode == 1
    cid = json.loads(p.read_text())["claims"][0]["id"]
    assert f"claim {cid} does not match its digest" in r.stdout or "all_ok" in r.stdout


def test_edit_with_recomputed_digests_is_caught_by_the_rerun(certificate, tmp_path):
    """Someone who edits a statement and recomputes every digest is still caught: the re-run disagrees."""
    from equivalence.commands.check_certificate import check_certificate
    from equivalence.report.integrity import integrity

    def forge(d):
        c = next(c for c in d["claims"] if c["id"] == "LSA-DIRECT-ALLT/v1")
        c["statement"] = c["statement"].replace("every T", "every T and every activation")
        c["latex"] = c["latex"] + r" \\ \text{and more}"
        d["integrity"] = integrity(d)

    p = _edit(certificate, tmp_path, forge)
    lines = []
    assert not check_certificate(p, claims=["LSA-DIRECT-ALLT/v1"], echo=lines.append)
    assert any(ln.startswith("DOES NOT HOLD: LSA-DIRECT-ALLT/v1") for ln in lines)
    assert any("statement: certificate says" in ln for ln in lines)


def test_provenance_edit_is_detected(certificate, tmp_path):
    p = _edit(certificate, tmp_path, lambda d: d["provenance"].update(date="1999-01-01T00:00:00Z"))
    r = _cli("check-certificate", str(p), "--no-rerun")
    assert r.returncode == 1 and "content digest does not match" in r.stdout


def test_truncated_and_malformed_certificates(certificate, tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_text(certificate.read_text()[: len(certificate.read_text()) // 2])
    r = _cli("check-certificate", str(cut))
    assert r.returncode == 1 and "not valid JSON (truncated or edited by hand?)" in r.stdout
    p = _edit(certificate, tmp_path, lambda d: d["claims"][1].pop("statement_digest"), "schema.json")
    r = _cli("check-certificate", str(p))
    assert r.returncode == 1 and "missing field 'statement_digest'" in r.stdout
    r = _cli("check-certificate", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "no certificate at" in r.stderr and "Traceback" not in r.stderr


def test_unknown_claim_selection_is_a_clear_error(certificate):
    r = _cli("check-certificate", str(certificate), "--claim", "NOPE/v1")
    assert r.returncode == 2 and "not in the certificate" in r.stderr


def test_validate_reports_every_problem():
    from equivalence.report.integrity import validate

    assert validate([]) == ["the certificate must be a JSON object; got list"]
    errs = validate({"schema": "x"})
    assert any("missing top-level field 'claims'" in e for e in errs)
