"""``ruff check`` is clean at the configured rule set and line length (pyproject.toml, ``[tool.ruff]``)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None, reason="ruff is not installed (pip install .[test])"
)
def test_ruff_check_is_clean():
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


@pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None, reason="ruff is not installed (pip install .[test])"
)
def test_ruff_format_is_clean():
    cmd = [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, "run `ruff format .`:\n" + out.stdout[-6000:] + out.stderr[-2000:]
