"""Provenance recorded in every certificate: versions, commit, platform, precision flags, date."""

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> dict:
    """Commit hash and dirty flag of the checkout this package runs from (``unknown`` outside git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
            != ""
        )
        return {"commit": commit or "unknown", "dirty": dirty if commit else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def report_date() -> str:
    """UTC date: from ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            when = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.UTC)
        except ValueError:
            raise ValueError(
                f"SOURCE_DATE_EPOCH must be an integer number of seconds; got {epoch!r}"
            ) from None
    else:
        when = _dt.datetime.now(tz=_dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance(device: str = "cpu") -> dict:
    import torch  # here, not at module level: the CLI's start-up must not pay for torch

    info = {
        "package": {"name": "attention-rnn-equivalence", "version": _version("attention-rnn-equivalence")},
        "git": git_commit(),
        "python": sys.version.split()[0],
        "versions": {d: _version(d) for d in ("torch", "numpy", "sympy", "hypothesis", "jaxtyping")},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "date": report_date(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["cuda"] = {
            "name": torch.cuda.get_device_name(),
            "version": torch.version.cuda,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    return info
