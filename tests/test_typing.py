"""Runtime shape checking of the jaxtyping annotations.

The default run leaves the jaxtyping import hook off, so that users' errors are the ones tested (our
``ValueError``/``TypeError`` with a message, which the hook would pre-empt with its own). This test
re-runs the correctness tests with the hook on: every annotated public signature and return shape must
hold on real calls."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_annotations_hold_under_the_jaxtyping_hook():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-p",
            "no:properties",
            "--jaxtyping-packages=constructions,equivalence,properties,beartype.beartype",
            "tests/test_constructions.py",
            "tests/test_tolerance.py",
            "-k",
            "not bad_",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_hook_is_effective():
    """Guard against a silently inactive hook: a shape mismatch the annotations forbid must raise."""
    code = (
        "import torch\n"
        "from jaxtyping import install_import_hook, TypeCheckError\n"
        "with install_import_hook(['constructions'], 'beartype.beartype'):\n"
        "    import constructions.scan as s\n"
        "try:\n"
        "    s.scan_loop(torch.ones(4), torch.ones(2, 3, 4), torch.ones(5, 4))\n"
        "except TypeCheckError:\n"
        "    print('caught')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "caught" in r.stdout, r.stdout + r.stderr
