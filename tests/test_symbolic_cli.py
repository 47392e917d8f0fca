"""``python -m equivalence prove``: compact output, exit 0 when proved, 1 on refutation, 2 on bad input."""

import subprocess
import sys
import textwrap


def _prove(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "equivalence", "prove", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_prove_a_claim_and_a_construction():
    r = _prove("LSA-RNN-DIRECT-ALLT", "--d", "3", "--heads", "2", "--d-k", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("PROVED") and "LSA-DIRECT-ALLT/v1" in r.stdout
    assert "d=3, d_k=2, heads=2" in r.stdout and "1 claims: 1 proved (seed " in r.stdout
    r = _prove("lsa-compressed", "--tier", "schwartz-zippel", "--d", "4", "--T", "3")
    assert r.returncode == 0 and "LSA-COMPRESSED-SZ/v1" in r.stdout and "LSA-COMPRESSED-ALLT" not in r.stdout


def test_a_broken_construction_from_a_file_is_refuted(tmp_path):
    f = tmp_path / "my_variants.py"
    f.write_text(
        textwrap.dedent("""
        import torch
        import constructions
        from constructions.registry import LSACompressed

        @constructions.register("my-compressed")
        class MyCompressed(LSACompressed):
            def construct(self, params):
                rnn = super().construct(params)
                with torch.no_grad():
                    rnn.C[1, 0] *= 2          # one weight wrong
                return rnn
    """)
    )
    r = _prove(
        "--import",
        str(f),
        "my-compressed",
        "--tier",
        "unrolled",
        "--d",
        "2",
        "--T",
        "2",
        "--out",
        str(tmp_path / "rep"),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("REFUTED") and "counterexample: t=" in r.stdout and "RNN " in r.stdout
    assert (tmp_path / "rep" / "certificate.json").is_file()
    c = subprocess.run(
        [
            sys.executable,
            "-m",
            "equivalence",
            "check-certificate",
            str(tmp_path / "rep" / "certificate.json"),
            "--import",
            str(f),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert c.returncode == 0 and "confirmed: MY-COMPRESSED-UNROLLED/v1 (refuted)" in c.stdout, (
        c.stdout + c.stderr
    )


def test_bad_input_is_one_line():
    r = _prove("NO-SUCH-CLAIM")
    assert r.returncode == 2 and "no claim 'NO-SUCH-CLAIM'" in r.stderr and "Traceback" not in r.stderr
    r = _prove("lsa-direct", "--heads", "2")
    assert r.returncode == 2 and "give --d" in r.stderr
    r = _prove("lsa-direct", "--d", "0")
    assert r.returncode == 2 and "--d must be >= 1" in r.stderr
    r = _prove("--help")
    assert r.returncode == 0 and "--tier" in r.stdout and "--d-k" in r.stdout


def test_resource_arguments_are_bounded_usage_errors():
    for args in (
        ("--d", "100000"),
        ("--d", "2", "--heads", "100000"),
        ("--d", "2", "--seed", str(2**70)),
        ("--d", "2", "--T", "100000"),
        ("--d", "2", "--d-k", "100000"),
        ("--d", "2", "--seed", "-1"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "equivalence", "prove", "lsa-direct", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert r.returncode == 2 and r.stderr.startswith("error: --") and "Traceback" not in r.stderr, (
            args,
            r,
        )


def test_probable_is_its_own_word_and_the_summary_counts_each_status():
    r = _prove("lsa-direct", "--d", "2", "--T", "2", "--seed", "7")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    sz = next(x for x in lines if "LSA-DIRECT-SZ/v1" in x)
    assert sz.startswith("PROBABLE") and "error probability <=" in sz
    assert not any(x.startswith("PROVED") and "-SZ/" in x for x in lines)
    assert lines[-1] == "4 claims: 3 proved, 1 probable (seed 7)"


def test_a_request_that_only_skips_exits_non_zero_with_the_reasons(tmp_path):
    f = tmp_path / "skipping.py"
    f.write_text(
        textwrap.dedent("""
        import constructions
        from constructions.registry import LSACompressed

        @constructions.register("t-only-skips")
        class OnlySkips(LSACompressed):
            def sample_params(self, *a, **k):
                return ("not", "a", "dataclass")
    """)
    )
    r = _prove("--import", str(f), "t-only-skips", "--d", "2", "--T", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "skipped" in r.stdout.splitlines()[-1] and "nothing asked was proved" in r.stderr
    assert "neither a dataclass nor a mapping" in r.stderr


def test_a_counterexample_line_reads_only_the_fields_it_has():
    """A lifted counterexample may lack output_index / rnn_output / reference_output: the line shows what
    is there and never raises; a full one shows both outputs."""
    from equivalence.claims import ClaimResult
    from equivalence.commands.prove import _line

    def claim(cx):
        return ClaimResult("X-UNROLLED/v1", "x", "x", "symbolic", "refuted", counterexample=cx, message="m")

    bare = _line(claim({"t": 4, "point": {}}))
    assert "counterexample: t=4 (exact inputs" in bare and "RNN" not in bare
    full = _line(claim({"t": 2, "output_index": 1, "rnn_output": "3", "reference_output": "5/2"}))
    assert "counterexample: t=2, output 1: RNN 3 vs reference 5/2" in full
