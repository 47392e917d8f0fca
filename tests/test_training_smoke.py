"""End-to-end smoke runs of both training checks (the presets verify's dev/ci profiles run), the CLI, claims,
checkpoints. The quick modes (held to the quick-mode targets) are the `slow` tests at the bottom."""

import json
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.training


def _run(experiment, out):
    """One experiment in smoke mode, single-threaded (as verify runs it: see train-check --threads)."""
    from equivalence.training.section import run_experiment

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_experiment(experiment, "smoke", seed=0, out=out, progress=False)
    finally:
        torch.set_num_threads(threads)


# Each experiment is one self-contained test, so that pytest-xdist runs the two in parallel and never twice.
def test_teacher_student_smoke_discovers_the_construction(tmp_path):
    from equivalence.training.artifacts import load_checkpoint
    from equivalence.training.section import claims_from_teacher_student
    from equivalence.training.students import GatedRNNEnsemble

    ts = _run("teacher-student", tmp_path)
    data = json.loads((tmp_path / "train-teacher-student.json").read_text())
    for field in (
        "hidden_sizes",
        "final_loss",
        "lambda_histogram",
        "fraction_lambda_near_0_or_1",
        "pruned_loss",
        "recovered_attention_rel_error",
        "long_loss",
        "n_lambda_near_1",
        "targets",
        "figures",
    ):
        assert field in data, field
    assert len(data["final_loss"]) == len(data["hidden_sizes"])
    # "well below" the construction's size: n <= (d(d+1)/2 + d) // 3 (here d = 2: n = 1; n = 2 is reported
    # too)
    assert data["targets"]["loss_well_below"]["sizes"] == [1] and 2 in data["hidden_sizes"]
    failed = {k: v for k, v in data["targets"].items() if not v["met"]}
    assert not failed, failed
    for name in data["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    # claims: empirical, with numbers and figures; the same mapping refuses numbers that miss a target
    claims = claims_from_teacher_student(ts)
    assert [c.status for c in claims] == ["empirical"] * 2
    assert all(c.kind == "learned" and c.evidence["figures"] and c.to_dict() for c in claims)
    bad = json.loads(json.dumps(ts))
    bad["targets"]["tensor_rel_error"]["met"] = False
    refused = claims_from_teacher_student(bad)[1]
    assert refused.status == "not-supported" and "tensor_rel_error" in refused.message
    # the checkpoint reloads with weights_only=True and reproduces the students
    ckpt = load_checkpoint(tmp_path / ts["checkpoint"])
    name, meta = next(iter(ckpt["gated_meta"].items()))
    ens = GatedRNNEnsemble(
        meta["sizes"], meta["d"], meta["d_out"], meta["gates"], seeds=meta["seeds"], lam_kind=meta["lam_kind"]
    )
    ens.load_state_dict(ckpt["gated"][name])
    rec = next(s for s in ts["students"] if s["n"] == meta["sizes"][0] and s["seed"] == meta["seeds"][0])
    assert torch.allclose(
        ens.student(0).lam, torch.tensor(rec["lambda"], dtype=torch.float64), rtol=0, atol=1e-7
    )
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    _check_learned_report(claims, ts, tmp_path)


def _check_learned_report(claims, ts, out):
    """The report written from real training claims: a Learned section with the measured numbers and the
    figures by relative path; every figure, the JSON and the checkpoint listed with its sha256."""
    import hashlib
    import os

    from equivalence.commands.check_certificate import check_certificate
    from equivalence.report import provenance, write_report
    from equivalence.report.learned import format_cell

    cert = write_report(claims, out, provenance=provenance("cpu"), command="python -m equivalence verify")
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    learned = md[md.index("## Learned: empirical evidence") : md.index("## How to cite")]
    assert "### Experiment 1: teacher–student" in learned and "PROVED" not in learned
    best = ts["best"]
    for v in (
        best["final_loss"],
        best["pruned_loss"],
        best["long_loss"],
        best["recovered_attention_rel_error"],
        *ts["best_loss_per_size"],
    ):
        assert format_cell(v) in learned, v
    assert (
        f"| fraction of lambda within 0.1 of {{0, 1}} | {format_cell(best['fraction_lambda_near_0_or_1'])} |"
        in learned
    )
    figures = ts["figures"]
    assert len(figures) == 12 and sum(f.endswith(".svg") for f in figures) == 6
    for f in figures:
        if f.endswith(".png"):
            assert f"]({f})" in learned and f'<img src="{f}"' in html
    assert set(cert["artifacts"]) == {*figures, "train-teacher-student.json", ts["checkpoint"]}
    mask = os.umask(0o022)
    os.umask(mask)
    for name, digest in cert["artifacts"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
        assert os.stat(out / name).st_mode & 0o777 == 0o666 & ~mask, name
    lines = []
    assert check_certificate(out / "certificate.json", rerun=False, echo=lines.append), lines
    (out / figures[0]).write_bytes(b"not the figure")
    lines = []
    assert not check_certificate(out / "certificate.json", rerun=False, echo=lines.append)
    assert f"EDITED: artifact {figures[0]} does not match its sha256" in "\n".join(lines)


def test_icl_smoke_learns_one_gd_step_and_reruns_bitwise(tmp_path, monkeypatch):
    from equivalence.training.section import claims_from_icl, rerun_claim

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # run times omitted: the same run, the same bytes
    icl = _run("icl-regression", tmp_path)
    data = json.loads((tmp_path / "train-icl-regression.json").read_text())
    assert {"eta", "test_loss"} <= set(data["gd"])
    for name, m in data["models"].items():
        assert {"test_loss", "pred_l2_to_gd", "grad_cosine_to_gd"} <= set(m), name
    failed = {k: v for k, v in data["targets"].items() if isinstance(v, dict) and not v["met"]}
    assert not failed, failed
    # far better aligned with GD than a predictor that ignores the context
    for name in ("lsa", data["targets"]["rnn_model"]):
        assert data["models"][name]["pred_l2_to_gd"] < 0.05 * data["zero_predictor"]["pred_l2_to_gd"]
    claims = claims_from_icl(icl)
    assert [c.status for c in claims] == ["empirical"] * 2
    # check-certificate's path: the recorded rerun arguments give the same claim again (CPU, one thread)
    claim = claims[1].to_dict()
    again = rerun_claim(claim["rerun"], out=tmp_path / "again").to_dict()
    assert {k: v for k, v in again.items() if k != "seconds"} == {
        k: v for k, v in claim.items() if k != "seconds"
    }
    # ... and byte-identical files: JSON (no timings), PNG and SVG figures, checkpoint
    assert data["seconds"] == 0.0 and data["timings"] == "omitted"
    names = [*icl["figures"], "train-icl-regression.json", icl["checkpoint"]]
    for name in names:
        assert (tmp_path / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "equivalence", "train-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **kw,
    )


def test_cli_rejects_bad_input_clearly(tmp_path):
    r = _cli("nonsense", "--out", str(tmp_path))
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = _cli("teacher-student", "--quick", "--device", "tpu", "--out", str(tmp_path))
    assert r.returncode == 2 and "--device" in r.stderr and "Traceback" not in r.stderr
    r = _cli("icl-regression", "--quick", "--steps", "0", "--out", str(tmp_path))
    assert r.returncode == 2 and "--steps" in r.stderr
    assert not any(tmp_path.iterdir())
    r = _cli("--help")
    assert r.returncode == 0 and "--quick" in r.stdout and "--seed" in r.stdout


def test_well_below_and_reference_rules():
    from equivalence.training.teacher_student import TS_PRESETS, preset, well_below_sizes

    assert well_below_sizes(TS_PRESETS["smoke"]) == [1]
    assert well_below_sizes(TS_PRESETS["quick"]) == [4]  # N_c = 14: n <= 4 = d (too few for the leading term)
    assert well_below_sizes(TS_PRESETS["full"]) == [2, 4]
    assert (
        well_below_sizes(preset("quick", sizes=(5, 14))) == []
    )  # then the target cannot be met (value None)


@pytest.mark.gpu
def test_cuda_training_path(tmp_path):
    from equivalence.training.section import run_experiment

    res = run_experiment("icl-regression", "smoke", device="cuda", out=tmp_path, progress=False)
    assert res["device"] == "cuda" and res["all_targets_met"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["teacher-student", "icl-regression"])
def test_quick_mode_meets_the_issue_targets(tmp_path, experiment):
    r = _cli(experiment, "--quick", "--no-progress", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((tmp_path / f"train-{experiment}.json").read_text())
    assert data["all_targets_met"] and data["mode"] == "quick"
