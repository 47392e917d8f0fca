"""The CLI: verify writes three files and exits 0; bad input is one clear line, exit 2."""

import json
import subprocess
import sys


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "equivalence", *args], capture_output=True, text=True, **kw)


def test_verify_writes_report(tmp_path):
    r = run("verify", "--profile", "dev", "--out", str(tmp_path / "rep"), "--no-progress",
            "--variant", "lsa-direct", "--variant", "lsa-compressed")
    assert r.returncode == 0, r.stderr + r.stdout
    for f in ("report.md", "report.html", "certificate.json"):
        assert (tmp_path / "rep" / f).is_file()
    cert = json.loads((tmp_path / "rep" / "certificate.json").read_text())
    assert cert["all_ok"] and cert["claims"]
    md = (tmp_path / "rep" / "report.md").read_text()
    learned = md.split("## Learned", 1)[1]
    assert "empirically supported" in learned and "| PROVED" not in learned.upper()
    assert cert["artifacts"], "the training figures and JSON are listed with their digests"
    for a in cert["artifacts"]:
        name = a["name"] if isinstance(a, dict) else a
        assert (tmp_path / "rep" / name).is_file()


def test_help_explains_flags():
    r = run("verify", "--help")
    assert r.returncode == 0
    for flag in ("--profile", "--device", "--seed", "--out"):
        assert flag in r.stdout


def test_bad_input_is_a_clear_error(tmp_path):
    r = run("verify", "--variant", "no-such-variant", "--out", str(tmp_path))
    assert r.returncode == 2 and "no variant named 'no-such-variant'" in r.stderr and "Traceback" not in r.stderr
    r = run("verify", "--device", "tpu", "--out", str(tmp_path))
    assert r.returncode == 2 and "--device" in r.stderr
    assert not any(tmp_path.iterdir())


def test_bad_out_fails_before_any_work(tmp_path):
    """``--out`` naming a file (or a path below a file) is rejected at once, not after minutes of checks."""
    import time

    f = tmp_path / "a_file"
    f.write_text("keep me")
    for out in (f, f / "sub"):
        t0 = time.monotonic()
        r = run("verify", "--out", str(out), "--no-progress")
        assert r.returncode == 2 and "--out" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert time.monotonic() - t0 < 60  # no checks ran (a full verify takes minutes)
    r = run("train-check", "teacher-student", "--mode", "smoke", "--out", str(f), "--no-progress")
    assert r.returncode == 2 and "--out" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert f.read_text() == "keep me"


def test_check_out_accepts_new_and_existing_folders(tmp_path):
    from equivalence.report.write import check_out_dir

    check_out_dir(tmp_path)
    check_out_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # checking creates nothing
