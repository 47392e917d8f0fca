"""End-to-end smoke runs of both training checks (the presets verify's dev/ci profiles run), the CLI, claims,
checkpoints. The quick modes (issue 8 §3 targets) are the `slow` tests at the bottom."""

import json
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Both experiments in smoke mode, written into one report folder (one thread: see train-check --threads)."""
    from equivalence.commands.train_check import run_experiment

    out = tmp_path_factory.mktemp("training")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ts = run_experiment("teacher-student", "smoke", seed=0, out=out, progress=False)
        icl = run_experiment("icl-regression", "smoke", seed=0, out=out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out, ts, icl


def test_teacher_student_smoke_discovers_the_construction(smoke_runs):
    out, _, _ = smoke_runs
    data = json.loads((out / "train-teacher-student.json").read_text())
    for field in ("hidden_sizes", "final_loss", "lambda_histogram", "fraction_lambda_near_0_or_1", "pruned_loss",
                  "recovered_attention_rel_error", "long_loss", "n_lambda_near_1", "targets", "figures"):
        assert field in data, field
    assert len(data["final_loss"]) == len(data["hidden_sizes"])
    failed = {k: v for k, v in data["targets"].items() if not v["met"]}
    assert not failed, failed
    for name in data["figures"]:
        assert (out / name).stat().st_size > 1000


def test_icl_smoke_learns_one_gd_step(smoke_runs):
    out, _, _ = smoke_runs
    data = json.loads((out / "train-icl-regression.json").read_text())
    assert {"eta", "test_loss"} <= set(data["gd"])
    for name, m in data["models"].items():
        assert {"test_loss", "pred_l2_to_gd", "grad_cosine_to_gd"} <= set(m), name
    failed = {k: v for k, v in data["targets"].items() if isinstance(v, dict) and not v["met"]}
    assert not failed, failed
    # far better aligned with GD than a predictor that ignores the context
    for name in ("lsa", data["targets"]["rnn_model"]):
        assert data["models"][name]["pred_l2_to_gd"] < 0.05 * data["zero_predictor"]["pred_l2_to_gd"]


def test_claims_are_empirical_with_numbers_and_figures(smoke_runs):
    from equivalence.training.section import claims_from_icl, claims_from_teacher_student

    _, ts, icl = smoke_runs
    claims = claims_from_teacher_student(ts) + claims_from_icl(icl)
    assert [c.status for c in claims] == ["empirical"] * 4
    for c in claims:
        assert c.kind == "learned" and c.evidence["figures"] and c.to_dict()
    # the same mapping refuses a result whose numbers miss the targets (can fail)
    bad = json.loads(json.dumps(ts))
    bad["targets"]["tensor_rel_error"]["met"] = False
    assert claims_from_teacher_student(bad)[1].status == "not-supported"
    assert "tensor_rel_error" in claims_from_teacher_student(bad)[1].message


def test_checkpoint_loads_with_weights_only_and_reproduces_a_student(smoke_runs):
    from equivalence.training.artifacts import load_checkpoint
    from equivalence.training.students import GatedRNNEnsemble

    out, ts, _ = smoke_runs
    ckpt = load_checkpoint(out / ts["checkpoint"])  # weights_only=True inside
    name, meta = next(iter(ckpt["gated_meta"].items()))
    ens = GatedRNNEnsemble(meta["sizes"], meta["d"], meta["d_out"], meta["gates"], seeds=meta["seeds"],
                           lam_kind=meta["lam_kind"])
    ens.load_state_dict(ckpt["gated"][name])
    rec = next(s for s in ts["students"] if s["n"] == meta["sizes"][0] and s["seed"] == meta["seeds"][0])
    lam = ens.student(0).lam
    assert torch.allclose(lam, torch.tensor(rec["lambda"], dtype=torch.float64), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(out / "missing.pt")


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "equivalence", "train-check", *args], capture_output=True,
                          text=True, timeout=600, check=False, **kw)


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


@pytest.mark.gpu
def test_cuda_training_path(tmp_path):
    from equivalence.commands.train_check import run_experiment

    res = run_experiment("icl-regression", "smoke", device="cuda", out=tmp_path, progress=False)
    assert res["device"] == "cuda" and res["all_targets_met"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["teacher-student", "icl-regression"])
def test_quick_mode_meets_the_issue_targets(tmp_path, experiment):
    r = _cli(experiment, "--quick", "--no-progress", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((tmp_path / f"train-{experiment}.json").read_text())
    assert data["all_targets_met"] and data["mode"] == "quick"


def test_rerun_reproduces_a_training_claim_bitwise(smoke_runs):
    """check-certificate's path: the recorded rerun arguments give the same claim again (CPU, one thread)."""
    from equivalence.training.section import claims_from_icl, rerun_claim

    _, _, icl = smoke_runs
    claim = claims_from_icl(icl)[1].to_dict()
    again = rerun_claim(claim["rerun"]).to_dict()
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in claim.items() if k != "seconds"}
