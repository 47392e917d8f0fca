"""check-certificate: confirms a fresh certificate, fails (naming the claim) on any hand edit or
truncation."""

import json
import subprocess
import sys

import pytest


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "equivalence", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A certificate with symbolic claims (proved, skipped, expected-failure) and a numeric claim."""
    import torch

    import constructions
    from equivalence.numeric import check_variant_numeric
    from equivalence.report import provenance, write_report
    from equivalence.symbolic import run_claim

    claims = [
        run_claim("LSA-DIRECT-ALLT/v1", sets=[{"d": 2, "heads": 1}]),
        run_claim("LSA-COMPRESSED-UNROLLED/v1", sets=[{"d": 2, "heads": 1, "T": 2}]),
        run_claim("IMPOSSIBLE-NO-INPUT-GATING/v1"),
        check_variant_numeric(constructions.get("lsa-direct"), profile="dev", dtype=torch.float64),
    ]
    out = tmp_path_factory.mktemp("cert")
    write_report(
        claims, out, provenance=provenance("cpu"), command="test fixture (claims of several commands)"
    )
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


# -- untrusted certificates: nothing they name is imported, run or read outside their folder
# ----------------------
def _forge(path, tmp_path, fn, name="forged.json"):
    """Edit a certificate and recompute every digest (manifest included), as a forger would."""
    from equivalence.report.integrity import integrity, manifest

    def edit(d):
        fn(d)
        d["manifest"] = manifest(d["claims"])
        d["integrity"] = integrity(d)

    return _edit(path, tmp_path, edit, name)


def test_a_certificate_naming_code_never_runs_it(certificate, tmp_path):
    """Modules with side effects named in the command, in rerun.imports, rerun.module and as a re-run command:
    with or without valid digests, the marker file never appears."""
    import os

    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil_mod.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\n\ndef rerun_claim(r):\n    raise SystemExit\n")
    folder = certificate.parent

    def plant(d):
        d["command"] = f"python -m equivalence verify --import {evil} --import evil_mod"
        for c in d["claims"]:
            c["rerun"]["imports"] = [str(evil), "evil_mod"]
            c["rerun"]["module"] = "evil_mod"
        d["claims"][0]["rerun"]["command"] = "evil_mod"
        d["code"]["imports"] = [{"name": "evil_mod.py", "sha256": "0" * 64}]

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for p in (_forge(certificate, tmp_path, plant), _edit(certificate, tmp_path, plant, "plain.json")):
        target = folder / p.name
        target.write_text(p.read_text())
        first = json.loads(target.read_text())["claims"][0]["id"]  # the one whose re-run command is planted
        r = subprocess.run(
            [sys.executable, "-m", "equivalence", "check-certificate", str(target), "--claim", first],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=env,
            timeout=600,
        )
        target.unlink()
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert not marker.exists(), r.stdout
    assert "no re-runner for rerun command 'evil_mod'" in r.stdout or "EDITED" in r.stdout


def _adversarial(certificate, tmp_path):
    import os

    base = json.loads(certificate.read_text())
    cases = {
        "invalid-json": '{"schema": ',
        "deep": "[" * 100_000 + "]" * 100_000,
        "huge-int": json.dumps(base)[:-1] + ', "x": ' + "9" * 100_000 + "}",
        "nan": json.dumps(base).replace('"all_ok": true', '"all_ok": NaN'),
        "wrong-type-claims": json.dumps({**base, "claims": "all of them"}),
        "wrong-type-field": json.dumps({**base, "claims": [{**base["claims"][0], "seconds": "fast"}]}),
        "not-an-object": "[1, 2, 3]",
        "ansi-id": json.dumps({**base, "claims": [{**base["claims"][0], "id": "\x1b[2J\x1b[31mPWNED/v1"}]}),
    }
    out = {}
    for name, text in cases.items():
        p = tmp_path / f"{name}.json"
        p.write_text(text)
        out[name] = p
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(200 << 20)  # 200 MB (sparse: instant to make)
    out["200MB"] = big
    for name, art in (("dotdot", "../certificate.json"), ("absolute", "/etc/passwd")):
        d = dict(base)
        d["artifacts"] = {art: "0" * 64}
        out[name] = tmp_path / f"{name}.json"
        out[name].write_text(json.dumps(d))
    link = tmp_path / "linked"
    link.mkdir()
    os.symlink("/etc/passwd", link / "figure.png")
    d = dict(base)
    d["artifacts"] = {"figure.png": "0" * 64}
    (link / "certificate.json").write_text(json.dumps(d))
    out["symlink"] = link / "certificate.json"
    os.symlink(certificate, tmp_path / "cert-link.json")
    out["certificate-is-a-link"] = tmp_path / "cert-link.json"
    return out


def test_adversarial_certificates_get_one_line_quickly(certificate, tmp_path):
    import time

    from equivalence.commands.check_certificate import check_certificate

    cases = _adversarial(certificate, tmp_path)
    for name, path in cases.items():
        lines = []
        t0 = time.perf_counter()
        assert not check_certificate(path, rerun=False, echo=lines.append), name
        took = time.perf_counter() - t0
        out = "\n".join(lines)
        assert "\x1b" not in out, (name, out)
        assert lines and lines[0].startswith(("INVALID", "EDITED", "MISSING")), (name, out)
        assert took < 10, (name, took)  # a loaded machine; each is refused at once (the 200 MB one unread)
        if name == "200MB":
            assert "at most" in out
        if name in ("dotdot", "absolute"):
            assert "plain file name" in out
        if name == "symlink":
            assert "symbolic link" in out and "root:" not in out
        if name == "ansi-id":
            assert "\\x1b" in out
    for name in ("deep", "ansi-id", "200MB"):  # the command line: one line, no traceback, no raw escape
        r = _cli("check-certificate", str(cases[name]), "--no-rerun")
        out = r.stdout + r.stderr
        assert r.returncode == 1 and "Traceback" not in out and "\x1b" not in out, (name, out)


def test_pinned_code_and_the_readers_own_module(tmp_path):
    """A user variant checked, then its module edited: CODE CHANGED, nothing imported or re-run; the unchanged
    module re-runs its claim; no --import at all: the claim is named as not re-run."""
    import shutil

    import torch

    import constructions
    from equivalence.numeric import check_variant_numeric
    from equivalence.report import provenance, write_report

    mine = tmp_path / "mine.py"
    mine.write_text(
        "import constructions\n\n_base = type(constructions.get('lsa-direct'))\n\n\n"
        "@constructions.register('mine-direct')\nclass Mine(_base):\n    pass\n"
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location("mine", mine)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        claim = check_variant_numeric(constructions.get("mine-direct"), profile="dev", dtype=torch.float64)
        out = tmp_path / "rep"
        cert = write_report(
            [claim],
            out,
            provenance=provenance("cpu"),
            command=f"python -m equivalence verify --import {mine} --variant mine-direct",
        )
    finally:
        constructions.unregister("mine-direct")
    assert cert["code"]["imports"][0]["name"] == "mine.py"
    c = cert["claims"][0]
    assert "import:mine.py" in c["depends_on"] and "package" in c["depends_on"]
    assert cert["code"]["package"]["files"]["equivalence/numeric.py"]
    cid = c["id"]
    path = out / "certificate.json"
    r = _cli("check-certificate", str(path), "--claim", cid)
    assert r.returncode == 1 and f"NOT RE-RUN: {cid}: it depends on mine.py" in r.stdout, r.stdout
    copy = tmp_path / "elsewhere" / "mine.py"
    copy.parent.mkdir()
    shutil.copy(mine, copy)
    r = _cli("check-certificate", str(path), "--claim", cid, "--import", str(copy))
    assert r.returncode == 0 and f"confirmed: {cid}" in r.stdout, r.stdout + r.stderr
    marker = tmp_path / "MARKER"
    copy.write_text(copy.read_text() + f"\nopen({str(marker)!r}, 'w').write('ran')\n")  # the edited module
    r = _cli("check-certificate", str(path), "--claim", cid, "--import", str(copy))
    assert r.returncode == 1 and "CODE CHANGED: mine.py" in r.stdout, r.stdout
    assert not marker.exists()


def test_code_changed_in_this_package_fails(certificate, tmp_path):
    def touch(d):
        files = d["code"]["package"]["files"]
        files["equivalence/numeric.py"] = "0" * 64

    p = _forge(certificate, tmp_path, touch)
    (certificate.parent / p.name).write_text(p.read_text())
    r = _cli("check-certificate", str(certificate.parent / p.name), "--no-rerun")
    assert r.returncode == 1 and "CODE CHANGED: equivalence/numeric.py" in r.stdout


def test_deleted_or_added_claims_are_named(tmp_path):
    """Against the manifest (digests not recomputed) and against the recorded command (a forger who
    recomputes every digest)."""
    from equivalence.commands.check_certificate import check_certificate
    from equivalence.report import provenance, write_report
    from equivalence.report.integrity import integrity
    from equivalence.symbolic import run_claim

    out = tmp_path / "rep"
    write_report(
        [run_claim("LSA-RECURRENT-FORM/v1", seed=0)],
        out,
        provenance=provenance("cpu"),
        command="python -m equivalence prove LSA-RECURRENT-FORM/v1",
    )
    cert = out / "certificate.json"
    lines = []
    assert check_certificate(cert, echo=lines.append), lines

    def drop_claim(d):
        d["claims"] = []
        d["all_ok"] = True
        d["integrity"] = integrity(d)

    p = _edit(cert, out, drop_claim, "dropped.json")
    lines = []
    assert not check_certificate(p, rerun=False, echo=lines.append)
    assert any(ln.startswith("DELETED: claim LSA-RECURRENT-FORM/v1") for ln in lines), lines
    p = _forge(cert, out, lambda d: d.update(claims=[]), "forged.json")
    lines = []
    assert not check_certificate(p, echo=lines.append)
    assert any(ln.startswith("MISSING: claim LSA-RECURRENT-FORM/v1") for ln in lines), lines

    def add(d):
        extra = dict(d["claims"][0], id="LSA-EXTRA/v1")
        d["claims"].append(extra)

    p = _forge(cert, out, add, "added.json")
    lines = []
    assert not check_certificate(p, echo=lines.append)
    assert any(ln.startswith("ADDED: claim LSA-EXTRA/v1") for ln in lines), lines


def test_forged_numeric_evidence_is_named_on_rerun(certificate, tmp_path):
    from equivalence.commands.check_certificate import check_certificate

    def forge(d):
        c = next(c for c in d["claims"] if c["kind"] == "numeric")
        c["evidence"]["worst_error_over_bound"] = 0.0
        c["evidence"]["max_rel_rms"] = 0.0

    p = _forge(certificate, tmp_path, forge)
    (certificate.parent / p.name).write_text(p.read_text())
    cid = next(c["id"] for c in json.loads(p.read_text())["claims"] if c["kind"] == "numeric")
    lines = []
    assert not check_certificate(certificate.parent / p.name, claims=[cid], echo=lines.append)
    assert any("evidence.worst_error_over_bound: certificate says 0.0" in ln for ln in lines), lines
    assert any("evidence.max_rel_rms" in ln for ln in lines), lines


def test_learned_evidence_set_to_zero_is_named_exactly():
    """A learned claim with every measured number set to 0 (digests recomputed) differs from its re-run in
    every
    number; on the recording platform each is a failing difference, elsewhere a note (statuses still
    compared)."""
    from equivalence.commands.check_certificate import _differences

    rec = {
        "id": "TRAIN-X/v1",
        "kind": "learned",
        "status": "empirical",
        "seconds": 1.0,
        "replay": "",
        "evidence": {
            "final_loss": 0.0,
            "long_loss": 0.0,
            "n_lambda_near_1": 0,
            "tables": [{"rows": [[0.0, 0]]}],
        },
    }
    new = {
        **rec,
        "seconds": 9.0,
        "evidence": {
            "final_loss": 3e-4,
            "long_loss": 5e-4,
            "n_lambda_near_1": 9,
            "tables": [{"rows": [[0.25, 3]]}],
        },
    }
    bad, notes = _differences(rec, new, exact=True)
    assert len(bad) == 5 and not notes
    assert any("evidence.final_loss: certificate says 0.0, re-run gives 0.0003" in d for d in bad)
    assert any("evidence.tables[0].rows[0][1]: certificate says 0, re-run gives 3" in d for d in bad)
    bad, notes = _differences(rec, new, exact=False)
    assert len(notes) == 3 and len(bad) == 2  # integers always count; floats are notes across platforms
    bad, _ = _differences(rec, {**new, "status": "not-supported"}, exact=False)
    assert any(d.startswith("status:") for d in bad)


def test_forged_rerun_sizes_are_refused_not_run(certificate, tmp_path):
    """A re-run record forged to sizes that would never finish (digests recomputed): refused at once."""
    import time

    from equivalence.commands.check_certificate import check_certificate

    def huge(d):
        c = next(c for c in d["claims"] if c["id"] == "LSA-COMPRESSED-UNROLLED/v1")
        c["rerun"]["sets"] = [{"d": 2, "heads": 1, "T": 100_000}]

    p = _forge(certificate, tmp_path, huge)
    lines = []
    t0 = time.perf_counter()
    assert not check_certificate(p, claims=["LSA-COMPRESSED-UNROLLED/v1"], echo=lines.append)
    assert time.perf_counter() - t0 < 30
    assert any(
        "NOT CONFIRMED: LSA-COMPRESSED-UNROLLED/v1" in ln and "beyond prove's limit" in ln for ln in lines
    ), lines
