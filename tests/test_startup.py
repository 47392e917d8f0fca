"""Start-up cost of the commands that need no model: ``check-certificate --no-rerun`` reads and checks a
certificate (schema, digests, manifest, artifacts, code pins) in well under 1 s of CPU and imports none of
torch, SymPy or matplotlib. CPU time of the child (``RUSAGE_CHILDREN``), never wall clock: the machine may
be busy."""

import json
import resource
import subprocess
import sys

import pytest

HEAVY = ("torch", "sympy", "matplotlib")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A certificate of one numeric claim, written by the report writer (as ``verify`` writes it)."""
    import torch

    import constructions
    from equivalence.numeric import check_variant_numeric
    from equivalence.report import provenance, write_report

    claim = check_variant_numeric(constructions.get("lsa-direct"), profile="dev", dtype=torch.float64)
    out = tmp_path_factory.mktemp("startup")
    write_report([claim], out, provenance=provenance("cpu"), command="test fixture")
    return out / "certificate.json"


def _child(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "equivalence", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _heavy_imports(stderr: str) -> list[str]:
    """Top-level packages among HEAVY that ``-X importtime`` saw imported."""
    seen = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name.split(".")[0] in HEAVY:
                seen.add(name.split(".")[0])
    return sorted(seen)


def test_check_certificate_no_rerun_is_cheap(certificate):
    r, cpu = _child("check-certificate", "--no-rerun", str(certificate))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.startswith("OK: ")
    assert _heavy_imports(r.stderr) == [], "check-certificate --no-rerun imported heavy libraries"
    assert cpu < 1.0, f"check-certificate --no-rerun took {cpu:.2f} s of CPU"


def test_the_import_probe_sees_heavy_imports(certificate, tmp_path):
    """Power check: a re-run of the numeric claim needs torch, and the probe reports it."""
    r, _ = _child("check-certificate", str(certificate))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "torch" in _heavy_imports(r.stderr)


def test_a_broken_certificate_is_answered_quickly(certificate, tmp_path):
    """An edited certificate is refused (exit 1, the claim named) just as cheaply."""
    data = json.loads(certificate.read_text())
    data["claims"][0]["status"] = "proved"
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(data, indent=2, sort_keys=True))
    r, cpu = _child("check-certificate", "--no-rerun", str(bad))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert _heavy_imports(r.stderr) == [] and cpu < 1.0, cpu
