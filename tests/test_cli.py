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
