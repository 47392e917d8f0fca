"""Report files: byte-identical with SOURCE_DATE_EPOCH, standalone HTML with MathML, BibTeX, atomic writes."""

import os
import subprocess
import sys


def _prove(out, *extra, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "equivalence", "prove", *extra, "--out", str(out)],
                          capture_output=True, text=True, env=env, check=False)


def test_two_runs_give_byte_identical_files(tmp_path):
    args = ("LSA-DIRECT-ALLT", "--d", "2", "--heads", "2", "--seed", "0")  # same seed: same report
    r1 = _prove(tmp_path / "a", *args, env_extra={"SOURCE_DATE_EPOCH": "1700000000", "PYTHONHASHSEED": "1"})
    r2 = _prove(tmp_path / "b", *args, env_extra={"SOURCE_DATE_EPOCH": "1700000000", "PYTHONHASHSEED": "7"})
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    for name in ("certificate.json", "report.md", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    text = (tmp_path / "a" / "report.md").read_text()
    assert "2023-11-14T22:13:20Z" in text and "Timings: omitted" in text
    assert "--out" not in text  # the recorded command does not depend on where the report is written


def test_report_contents(tmp_path):
    import json

    from equivalence.report import provenance, write_report
    from equivalence.symbolic import run_claim

    claims = [run_claim("LSA-DIRECT-ALLT/v1", sets=[{"d": 2, "heads": 1}]), run_claim("IMPOSSIBLE-SOFTMAX/v1")]
    cert = write_report(claims, tmp_path, provenance=provenance("cpu"), command="python -m equivalence prove x")
    html = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count('<math display="block">') >= 3
    assert "<script" not in html and "<link" not in html and "src=" not in html  # renders offline, no CDN
    for text in (html, md):
        assert "@misc{are_report_" in text and "@article{zucchet2023gated" in text
        assert cert["integrity"]["content"] in text and "LSA-DIRECT-ALLT/v1" in text
    assert "$$" in md and r"\sum" in md
    data = json.loads((tmp_path / "certificate.json").read_text())
    assert data == cert and data["timings"] in ("recorded", "omitted")


def test_a_failed_write_leaves_the_previous_report(tmp_path, monkeypatch):
    import pytest

    from equivalence.report import provenance, write
    from equivalence.symbolic import run_claim

    claims = [run_claim("LSA-RECURRENT-FORM/v1")]
    write.write_report(claims, tmp_path, provenance=provenance("cpu"), command="c")
    before = (tmp_path / "report.md").read_bytes()

    def boom(cert):
        raise RuntimeError("disk full")

    monkeypatch.setattr("equivalence.report.html.render_html", boom)
    with pytest.raises(RuntimeError):
        write.write_report(claims, tmp_path, provenance=provenance("cpu"), command="other")
    assert (tmp_path / "report.md").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_out_must_be_a_folder(tmp_path):
    import pytest

    from equivalence.report import provenance, write_report

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        write_report([], f, provenance=provenance("cpu"), command="c")


def test_citation_cff_is_valid():
    from pathlib import Path

    import pytest

    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((Path(__file__).resolve().parents[1] / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version"):
        assert cff[key]
    refs = cff["references"]
    assert any("2309.01775" in str(r) and any(a.get("family-names") == "Zucchet" for a in r["authors"]) for r in refs)


def test_report_files_are_ordinary_readable_files(tmp_path):
    import os

    from equivalence.report import provenance, write_report
    from equivalence.symbolic import run_claim

    write_report([run_claim("LSA-RECURRENT-FORM/v1")], tmp_path, provenance=provenance("cpu"), command="c")
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("certificate.json", "report.md", "report.html"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~mask
