"""The CLI: verify writes three files and exits 0; bad input is one clear line, exit 2."""

import json
import subprocess
import sys


def run(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "equivalence", *args], check=False, capture_output=True, text=True, **kw
    )


def test_verify_writes_report(tmp_path):
    r = run(
        "verify",
        "--profile",
        "dev",
        "--out",
        str(tmp_path / "rep"),
        "--no-progress",
        "--variant",
        "lsa-direct",
        "--variant",
        "lsa-compressed",
        "--training",
    )
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
    assert (
        r.returncode == 2 and "no variant named 'no-such-variant'" in r.stderr and "Traceback" not in r.stderr
    )
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


# -- start-up: --help and argument errors must not import torch, SymPy or matplotlib
# ----------------------------
HEAVY = ("torch", "sympy", "matplotlib")
STARTUP_PROBE = r"""
import contextlib, io, json, sys
from equivalence.cli import build_parser, main
p = build_parser()
# (``prove --help`` lists the catalogue's tiers, read from the SymPy module: it is not in this list)
for argv in ([], ["--help"], ["verify", "--help"], ["train-check", "--help"], ["replay", "--help"],
             ["check-certificate", "--help"], ["verify", "--bogus"], ["verify", "--threads", "0"],
             ["train-check", "teacher-student", "--threads", "1000000"], ["prove", "--d", "0"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
""".replace("HEAVY", repr(HEAVY))


def test_startup_imports_no_heavy_library():
    """Building the parser, every --help and the argument errors import none of torch/SymPy/matplotlib (the
    cost of start-up: importing torch alone takes ~2 s of CPU); commands import them in ``run``."""
    r = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE], check=False, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


def test_help_cpu_time_is_small():
    """``python -m equivalence --help`` in well under 1 s of CPU (user + system of the child, not wall
    clock)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run("--help", timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert r.returncode == 0 and "verify" in r.stdout
    assert cpu < 1.0, f"--help took {cpu:.2f} s of CPU"


def test_argument_errors_cpu_time_is_small():
    """An argument error (``prove --d 0``, an unknown flag) answers in well under 1 s of CPU: the user's
    mistake is reported before torch or SymPy load (user + system of the child, not wall clock)."""
    import resource

    for args in (("prove", "--d", "0"), ("verify", "--bogus")):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = run(*args, timeout=600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert cpu < 1.0, f"{' '.join(args)} took {cpu:.2f} s of CPU"


def test_resource_arguments_are_usage_errors(tmp_path):
    for argv in (
        ["train-check", "teacher-student", "--threads", "1000000"],
        ["verify", "--threads", "0"],
        ["train-check", "icl-regression", "--steps", "0"],
    ):
        r = run(*argv, "--out", str(tmp_path / "o"), timeout=600)
        assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
        assert r.stderr.strip().count("\n") == 0, r.stderr  # one line
    assert not (tmp_path / "o").exists()


# -- --import of broken user code: one line, exit 2
# -------------------------------------------------------------
BROKEN = {
    "syntax.py": "def f(:\n",
    "raises.py": "import math\nx = 1 / 0\n",
    "imports_missing.py": "import no_such_module_xyz\n",
}


def test_import_errors_are_one_line(tmp_path):
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    cases = {str(tmp_path / n): n for n in BROKEN} | {
        "no_such_module_xyz": "module",
        str(tmp_path / "nope.py"): "file",
    }
    for spec, what in cases.items():
        for cmd in (["verify", "--profile", "dev", "--no-progress"], ["prove", "lsa-direct"]):
            r = run(*cmd, "--import", spec, "--out", str(tmp_path / "rep"), timeout=600)
            assert r.returncode == 2, (what, cmd, r.returncode, r.stderr[-2000:])
            assert "Traceback" not in r.stderr and r.stderr.startswith("error: --import"), (what, r.stderr)
            assert r.stderr.strip().count("\n") == 0, r.stderr
    r = run("verify", "--import", str(tmp_path / "syntax.py"), "--out", str(tmp_path / "rep"))
    assert "syntax error" in r.stderr and "syntax.py:1" in r.stderr, r.stderr
    r = run("verify", "--import", str(tmp_path / "raises.py"), "--out", str(tmp_path / "rep"))
    assert "ZeroDivisionError" in r.stderr and "raises.py:2" in r.stderr, r.stderr
    assert not (tmp_path / "rep").exists()


BAD_CONSTRUCT = """
import constructions
from constructions.variants.reference import la_recurrent
from constructions.variants.family import heads_qkv

base = type(constructions.get("lsa-direct"))

@constructions.register("construct-raises")
class ConstructRaises(base):
    status = "exact"
    def construct(self, params):
        raise RuntimeError("my construct is broken")
"""


def test_a_variant_whose_construct_raises_is_an_error_claim(tmp_path):
    (tmp_path / "bad.py").write_text(BAD_CONSTRUCT)
    r = run(
        "verify",
        "--profile",
        "dev",
        "--no-progress",
        "--import",
        str(tmp_path / "bad.py"),
        "--variant",
        "construct-raises",
        "--out",
        str(tmp_path / "rep"),
        timeout=600,
    )
    assert r.returncode == 1, r.stderr[-3000:] + r.stdout[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    cert = json.loads((tmp_path / "rep" / "certificate.json").read_text())
    numeric = [c for c in cert["claims"] if c["kind"] == "numeric"]
    assert numeric and all(
        c["status"] == "error" and "my construct is broken" in c["message"] for c in numeric
    )
    assert "ERROR" in r.stdout and "my construct is broken" in r.stdout


def test_training_runs_only_when_selected(tmp_path):
    """``--variant`` verifies those variants' claims only: the training claims are listed as skipped, with the
    reason, in the report and its provenance (and re-running a skipped claim gives the same skipped claim).
    Of the global claims only those the selected claims cite run: the softmax impossibility claim rests on
    the degree bound and the softmax certificate; the invariances are skipped."""
    r = run(
        "verify",
        "--profile",
        "dev",
        "--no-progress",
        "--variant",
        "retention",
        "--variant",
        "softmax-attention",
        "--out",
        str(tmp_path / "rep"),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    cert = json.loads((tmp_path / "rep" / "certificate.json").read_text())
    learned = [c for c in cert["claims"] if c["kind"] == "learned"]
    assert learned and all(c["status"] == "skipped" and "--training" in c["message"] for c in learned)
    assert cert["provenance"]["selection"]["training"] is False
    assert "--variant" in cert["provenance"]["selection"]["training_reason"]
    assert not any(p.suffix in (".png", ".pt") for p in (tmp_path / "rep").iterdir())
    from equivalence.commands.verify import rerun_claim

    c = learned[0]
    assert rerun_claim(c["rerun"]).to_dict()["status"] == "skipped"
    assert "training checks: not requested" in r.stdout
    status = {c["id"]: c["status"] for c in cert["claims"]}
    assert status["TEMPLATE-DEGREE-BOUND/v1"] == "proved" and status["IMPOSSIBLE-SOFTMAX/v1"] == "proved"
    assert status["SOFTMAX-ATTENTION-IMPOSSIBLE/v1"] == "expected-failure"
    invariances = [c for c in cert["claims"] if c["id"].startswith("INVARIANCE-")]
    assert invariances and all(
        c["status"] == "skipped" and "--global-claims" in c["message"] for c in invariances
    )
    assert cert["provenance"]["selection"]["global_claims"] == "cited"
    assert rerun_claim(invariances[0]["rerun"]).to_dict()["status"] == "skipped"
    assert "global claims: not requested" in r.stdout


def test_global_claim_selection_rules():
    """Every global claim runs for the whole registry or with --global-claims; with --variant only the cited
    ones (an ID named in a claim's statement or message)."""
    import argparse

    from equivalence.claims import ClaimResult
    from equivalence.commands.verify import cited_globals, globals_selected

    def ns(**kw):
        return argparse.Namespace(**({"variant": None, "global_claims": False} | kw))

    assert globals_selected(ns())[0] and globals_selected(ns(variant=["gla"], global_claims=True))[0]
    assert not globals_selected(ns(variant=["gla"]))[0]
    cites = ClaimResult(
        id="X/v1", title="x", kind="symbolic", status="proved", statement="by A/v1", message="see C/v1"
    )
    assert cited_globals([cites], ("A/v1", "B/v1", "C/v1")) == ["A/v1", "C/v1"]
    assert cited_globals([cites], ("B/v1",)) == []


def test_training_selection_rules():
    import argparse

    from equivalence.commands.verify import training_selected

    def ns(**kw):
        return argparse.Namespace(**({"training": None, "variant": None} | kw))

    assert training_selected(ns(), "ci")[0] and training_selected(ns(), "thorough")[0]
    assert not training_selected(ns(), "dev")[0]
    assert not training_selected(ns(variant=["lsa-direct"]), "ci")[0]
    assert training_selected(ns(variant=["lsa-direct"], training=True), "dev")[0]
    assert not training_selected(ns(training=False), "ci")[0]
