"""Arguments shared by several subcommands."""

import argparse
import shlex
import sys

import torch

PROFILES = ("dev", "ci", "thorough")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default=None,
                   help="how much work: 'dev' (seconds), 'ci' (default when CI=true; a few minutes), "
                        "'thorough' (many more cases and sizes). Default: ci")
    p.add_argument("--device", default="cpu",
                   help="torch device for the candidate computations: 'cpu' (default) or 'cuda[:N]'; "
                        "references are always float64 on CPU")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0); same seed, same report")


def resolve_device(name: str) -> str:
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"--device must be 'cpu' or 'cuda[:N]'; got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was requested but CUDA is not available on this machine "
                         f"(torch {torch.__version__}); use --device cpu")
    return name


def resolve_profile(name: str | None) -> str:
    return name or "ci"


def command_line() -> str:
    return "python -m equivalence " + " ".join(shlex.quote(a) for a in sys.argv[1:])
