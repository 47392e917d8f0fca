"""The report's Learned section: tables and figures of learned claims, figure digests in the certificate,
tamper detection, byte-identical figures and reports, world-readable files (no training: a small figure
drawn here; the end-to-end run on real training results is in tests/test_training_smoke.py)."""

import hashlib
import json
import os


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _learned_claims(out, status="empirical"):
    """Two learned claims of one experiment sharing a figure drawn into ``out`` (PNG and SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from equivalence.claims import ClaimResult
    from equivalence.training.artifacts import write_figure, write_json

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.semilogy([2, 6, 10], [5.4e-2, 4.2e-6, 4.6e-6], "-o")
    ax.set(xlabel="hidden size n", title="λ and loss")
    write_figure(out / "ts_loss_vs_hidden_size.png", fig)
    write_json(out / "train-teacher-student.json", {"experiment": "teacher-student"})
    ev = {
        "experiment": "Experiment 1: teacher–student",
        "results": "train-teacher-student.json",
        "figures": ["ts_loss_vs_hidden_size.png", "ts_loss_vs_hidden_size.svg"],
        "figure_captions": {"ts_loss_vs_hidden_size.png": "Loss vs hidden size | with a pipe"},
        "tables": [
            {
                "title": "Loss vs hidden size",
                "columns": ["n", "best loss", "per seed", "region"],
                "rows": [
                    [2, 0.0543, [0.0543, 0.0545], "well below"],
                    [6, 4.23e-06, [6.9e-06, 4.23e-06], None],
                ],
            }
        ],
    }
    return [
        ClaimResult(
            id=f"TRAIN-TEST-{k}/v1",
            title=f"learned claim {k}",
            statement="a trained student did it",
            kind="learned",
            status=status,
            tier="training (smoke)",
            evidence=ev,
            rerun={"command": "train-check", "module": "equivalence.training.section"},
        )
        for k in ("A", "B")
    ]


def _symbolic_claim():
    from equivalence.symbolic import run_claim

    return run_claim("LSA-RECURRENT-FORM/v1", seed=0)  # a fixed seed: byte-identical reports


def test_learned_section_has_tables_figures_and_is_not_called_proved(tmp_path):
    from equivalence.report import provenance, write_report

    claims = _learned_claims(tmp_path) + [_symbolic_claim()]
    cert = write_report(
        claims, tmp_path, provenance=provenance("cpu"), command="python -m equivalence verify"
    )
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    # its own section, after the other claims, with the experiment heading and the status as empirical
    assert md.index("## Claims") < md.index("## Learned: empirical evidence") < md.index("## How to cite")
    learned_md = md[md.index("## Learned") : md.index("## How to cite")]
    assert "### Experiment 1: teacher–student" in learned_md and "LSA-RECURRENT-FORM" not in learned_md
    assert learned_md.count("EMPIRICAL — empirically supported (not proved)") == 2
    assert "PROVED" not in learned_md
    # the table, with formatted numbers, lists and missing cells, and escaped pipes
    assert "| n | best loss | per seed | region |" in learned_md
    assert "| 2 | 0.0543 | 0.0543, 0.0545 | well below |" in learned_md
    assert "| 6 | 4.23e-06 | 6.9e-06, 4.23e-06 | — |" in learned_md
    # the figure by relative path, its SVG linked, shown once per experiment
    assert (
        learned_md.count("](ts_loss_vs_hidden_size.png)") == 1
        and "[SVG](ts_loss_vs_hidden_size.svg)" in learned_md
    )
    assert "Loss vs hidden size \\| with a pipe" in learned_md
    learned_html = html[html.index('<h2 id="learned">') : html.index("<h2>How to cite")]
    assert learned_html.count('<img src="ts_loss_vs_hidden_size.png"') == 1
    assert '<a href="ts_loss_vs_hidden_size.svg">SVG</a>' in learned_html
    assert "<td>4.23e-06</td>" in learned_html and "<caption>Loss vs hidden size</caption>" in learned_html
    assert "<script" not in html and "http://" not in html.replace("https://arxiv.org", "")
    assert "PROVED" not in learned_html and "<strong>empirically supported</strong>" in learned_html
    # every listed file is in the folder with its sha256; the reports and figures are world-readable
    assert sorted(cert["artifacts"]) == [
        "train-teacher-student.json",
        "ts_loss_vs_hidden_size.png",
        "ts_loss_vs_hidden_size.svg",
    ]
    for name, digest in cert["artifacts"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    for name in [*cert["artifacts"], "report.md", "report.html", "certificate.json"]:
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~_umask(), name
    assert json.loads((tmp_path / "certificate.json").read_text()) == cert


def test_check_certificate_detects_a_tampered_or_missing_figure(tmp_path):
    from equivalence.commands.check_certificate import check_certificate
    from equivalence.report import provenance, write_report

    write_report(_learned_claims(tmp_path), tmp_path, provenance=provenance("cpu"), command="c")
    path = tmp_path / "certificate.json"
    lines = []
    assert check_certificate(path, rerun=False, echo=lines.append), lines
    png = tmp_path / "ts_loss_vs_hidden_size.png"
    good = png.read_bytes()
    png.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    lines = []
    assert not check_certificate(path, rerun=False, echo=lines.append)
    assert any(line.startswith("EDITED: artifact ts_loss_vs_hidden_size.png") for line in lines), lines
    png.unlink()
    lines = []
    assert not check_certificate(path, rerun=False, echo=lines.append)
    assert any(line.startswith("MISSING: artifact ts_loss_vs_hidden_size.png") for line in lines), lines
    png.write_bytes(good)
    assert check_certificate(path, rerun=False, echo=[].append)
    # a digest edited to match a replaced figure breaks the certificate's content digest
    data = json.loads(path.read_text())
    data["artifacts"]["ts_loss_vs_hidden_size.png"] = "0" * 64
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    lines = []
    assert not check_certificate(edited, rerun=False, echo=lines.append)
    assert any("content digest does not match" in line for line in lines), lines


def test_artifact_names_are_validated(tmp_path):
    import pytest

    from equivalence.claims import ClaimResult
    from equivalence.report import provenance, write_report
    from equivalence.report.integrity import validate

    missing = ClaimResult(
        id="X/v1",
        title="t",
        statement="s",
        kind="learned",
        status="empirical",
        evidence={"figures": ["nowhere.png"]},
    )
    with pytest.raises(ValueError, match="nowhere.png"):
        write_report([missing], tmp_path, provenance=provenance("cpu"), command="c")
    outside = ClaimResult(
        id="X/v1",
        title="t",
        statement="s",
        kind="learned",
        status="empirical",
        evidence={"figures": ["../secret.png"]},
    )
    with pytest.raises(ValueError, match="plain file name"):
        write_report([outside], tmp_path, provenance=provenance("cpu"), command="c")
    assert not (tmp_path / "report.md").exists()
    cert = write_report(_learned_claims(tmp_path), tmp_path, provenance=provenance("cpu"), command="c")
    assert validate(cert) == []
    bad = dict(cert, artifacts={"../x.png": "0" * 64, "y.png": "not-a-digest"})
    errors = validate(bad)
    assert any("'../x.png'" in e and "plain file name" in e for e in errors)
    assert any("'y.png'" in e and "sha256" in e for e in errors)


def test_figures_and_reports_are_byte_identical_under_source_date_epoch(tmp_path, monkeypatch):
    from equivalence.report import provenance, write_report

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_report(
            _learned_claims(tmp_path / sub) + [_symbolic_claim()],
            tmp_path / sub,
            provenance=provenance("cpu"),
            command="python -m equivalence verify",
        )
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {"ts_loss_vs_hidden_size.png", "ts_loss_vs_hidden_size.svg", "report.html"} <= set(names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    svg = (tmp_path / "a" / "ts_loss_vs_hidden_size.svg").read_text()
    assert "<dc:date>" not in svg  # no creation date in the SVG metadata
