"""Report files: byte-identical with SOURCE_DATE_EPOCH, standalone HTML with MathML, BibTeX, atomic writes."""

import os
import subprocess
import sys
from pathlib import Path


def _prove(out, *extra, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "equivalence", "prove", *extra, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


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

    claims = [
        run_claim("LSA-DIRECT-ALLT/v1", sets=[{"d": 2, "heads": 1}]),
        run_claim("IMPOSSIBLE-SOFTMAX/v1"),
    ]
    cert = write_report(
        claims, tmp_path, provenance=provenance("cpu"), command="python -m equivalence prove x"
    )
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

    monkeypatch.setattr(write, "render_html", boom)  # the renderer write_report calls
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
    assert any(
        "2309.01775" in str(r) and any(a.get("family-names") == "Zucchet" for a in r["authors"]) for r in refs
    )


def test_report_files_are_ordinary_readable_files(tmp_path):
    import os

    from equivalence.report import provenance, write_report
    from equivalence.symbolic import run_claim

    write_report([run_claim("LSA-RECURRENT-FORM/v1")], tmp_path, provenance=provenance("cpu"), command="c")
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("certificate.json", "report.md", "report.html"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~mask


def _c(cid, status, **kw):
    from equivalence.claims import ClaimResult

    return ClaimResult(
        id=cid,
        title=kw.pop("title", cid),
        statement=kw.pop("statement", f"{cid} holds"),
        kind=kw.pop("kind", "symbolic"),
        status=status,
        **kw,
    )


PROV = {"date": "2024-01-02T00:00:00Z", "package": {"version": "0"}, "git": {"commit": "c"}, "device": "cpu"}


def test_headline_trust_section_and_bibtex_use_one_count(tmp_path):
    from equivalence.report.write import write_report

    claims = [
        _c("A/v1", "proved", construction="lsa-direct"),
        _c("B/v1", "skipped", construction="gla", message="no exact reference"),
        _c("C/v1", "tested", kind="numeric", construction="lsa-direct"),
        _c("D/v1", "probable", epsilon=1e-40, construction="retention"),
    ]
    cert = write_report(claims, tmp_path, provenance=PROV, command="c")
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    counts = "4 claims: 1 proved, 1 probable, 1 tested, 1 skipped"
    for text in (md, html):
        assert (
            "ALL CLAIMS HOLD" not in text and "ALL 4 CLAIMS HOLD" not in text
        )  # a skipped claim never holds
        assert "3 OF 4 CLAIMS HOLD; 1 SKIPPED (not checked)" in text and counts in text
        assert text.index("What is proved, what is tested, what is assumed") < text.index("Summary")
        assert (
            "the reference is the layer&#x27;s definition" in text
            or "the reference is the layer's definition" in text
        )
        assert "detect accidental edits, not a forger" in text
    bib = md[md.index("@misc{are_report_") :]
    bib = bib[: bib.index("```")]
    assert "3 OF 4 CLAIMS HOLD; 1 SKIPPED (not checked): " + counts in bib
    assert (
        "gla, lsa-direct, retention vs linear self-attention" in bib
        and "variants: gla, lsa-direct, retention" in bib
    )
    assert "- **Proved (exact): 1**" in md and "- **Skipped: 1**" in md and "largest ε here: 1e-40" in md
    assert {c["trust"] for c in cert["claims"]} == {"proved", "probable", "tested", ""}


def test_failed_claim_writes_its_counterexample_file_and_replay_line(tmp_path):
    from equivalence.replay import SCHEMA, load_counterexample
    from equivalence.report.write import write_report

    cx = {
        "construction": "lsa-direct",
        "mode": "symbolic",
        "sizes": {"d": 1, "heads": 1, "T": 1},
        "t": 1,
        "output_index": 0,
        "rnn_output": "1",
        "reference_output": "0",
        "point": {"params": {"W_Q": [[["1"]]]}, "x": [["1/3"]]},
    }
    claims = [
        _c(
            "X-UNROLLED/v1",
            "refuted",
            construction="lsa-direct",
            counterexample=cx,
            rerun={"command": "prove", "claim": "X-UNROLLED/v1", "seed": 0},
        )
    ]
    cert = write_report(claims, tmp_path, provenance=PROV, command="c")
    name = cert["claims"][0]["replay"]
    assert name == "counterexample-x-unrolled-v1.json" and name in cert["artifacts"]
    payload = load_counterexample(tmp_path / name)
    assert payload["schema"] == SCHEMA and payload["inputs"]["x"] == [["1/3"]]
    for text in ((tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()):
        assert (
            f"python -m equivalence replay {name}" in text and f"({name})" in text or f'href="{name}"' in text
        )
    assert "1 OF 1 CLAIMS DO NOT HOLD" in (tmp_path / "report.md").read_text()


def test_html_escapes_certificate_text_and_mathml(tmp_path):
    from equivalence.report.write import write_report

    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    claims = [
        _c(
            "E/v1",
            "proved",
            title=evil,
            statement=evil,
            message=evil,
            evidence={"mathml": '<math display="block"><mi>x</mi><script>alert(3)</script></math>'},
            latex=r"x \le y",
        ),
        _c(
            "F/v1", "proved", evidence={"mathml": '<math display="block" onload="alert(4)"><mi>y</mi></math>'}
        ),
        _c("G/v1", "proved", evidence={"mathml": '<math display="block"><mi>&lt;b&gt;</mi></math>'}),
    ]
    write_report(claims, tmp_path, provenance=PROV, command="c")
    html = (tmp_path / "report.html").read_text()
    import re

    assert "<script" not in html and "<img" not in html
    assert not re.search(r"<[a-zA-Z][^>]*\son\w+=", html)  # no tag carries an event handler
    assert "&lt;script&gt;" in html  # shown as text
    assert '<math display="block"><mi>&lt;b&gt;</mi></math>' in html  # well-formed MathML kept, text escaped


def test_reports_name_no_internal_tracker(tmp_path):
    """Generated reports and the documentation cite no tracker (an issue number, or a section sign before a
    number)."""
    import re
    from pathlib import Path

    from equivalence.report.write import write_report

    write_report([_c("A/v1", "proved")], tmp_path, provenance=PROV, command="c")
    pattern = re.compile(r"\bissue \d|\bissues? #\d|§")
    for p in [tmp_path / "report.md", tmp_path / "report.html"]:
        assert not pattern.search(p.read_text()), p
    root = Path(__file__).resolve().parents[1]
    files = [
        *root.glob("docs/**/*.md"),
        root / "README.md",
        *root.glob("equivalence/**/*.py"),
        *root.glob("constructions/**/*.py"),
        *root.glob("benchmarks/**/*.py"),
        *root.glob("properties/**/*.py"),
    ]
    hits = [
        f"{p.relative_to(root)}:{n + 1}"
        for p in files
        if p.is_file()
        for n, line in enumerate(p.read_text(errors="replace").splitlines())
        if pattern.search(line) and not ("Higham" in line or "Numerical Algorithms" in line)
    ]  # a book's sections are citable
    assert not hits, hits[:20]


def test_prove_and_verify_reject_a_bad_out_before_any_work(tmp_path):
    import time

    f = tmp_path / "file"
    f.write_text("x")
    for cmd in (["prove"], ["verify", "--profile", "dev", "--variant", "lsa-direct", "--no-progress"]):
        for out, why in (
            (f, "exists and is not a folder"),
            (f / "below", "is a file"),
            (Path("/proc/nope"), "cannot create files in /proc"),
        ):
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "equivalence", *cmd, "--out", str(out)],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, (cmd, out, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1 and "PROVED" not in r.stdout, (cmd, out)
            assert time.perf_counter() - t0 < 60  # start-up only (a loaded machine); no proof or check ran
    assert f.read_text() == "x"
