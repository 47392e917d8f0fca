"""Arguments shared by several subcommands, and the one implementation of ``--import``.

Module level imports only the standard library: the CLI's ``--help`` and argument errors must not pay for
torch (see :mod:`equivalence.cli`).
"""

import argparse
import importlib
import importlib.util
import os
import shlex
import sys
import traceback
from pathlib import Path

PROFILES = ("dev", "ci", "thorough")

__all__ = [
    "PROFILES",
    "LazyChoices",
    "add_common",
    "available_cpus",
    "check_threads",
    "command_line",
    "import_user",
    "resolve_device",
    "resolve_profile",
]


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default=None,
        help="how much work: 'dev' (seconds, no training), 'ci' (the default; about a minute of CPU), "
        "'thorough' (many more cases and sizes, minutes). Default: ci",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device for the candidate computations: 'cpu' (default) or 'cuda[:N]'; "
        "references are always float64 on CPU",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of every random draw (default 0); same seed, same report"
    )


def resolve_device(name: str) -> str:
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"--device must be 'cpu' or 'cuda[:N]'; got {name!r}")
    if name.startswith("cuda"):
        import torch  # only a CUDA request needs torch here

        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {name} was requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device cpu"
            )
    return name


def resolve_profile(name: str | None) -> str:
    return name or "ci"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(value: int | None, flag: str = "--threads") -> int | None:
    """``value`` if it is a thread count this machine can use (1..available CPUs), else ``ValueError``:
    more intra-op threads than CPUs only oversubscribe them (and a huge count exhausts the process limit)."""
    if value is None:
        return None
    cap = available_cpus()
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
        raise ValueError(
            f"{flag} must be between 1 and {cap} (the CPUs available to this process); got {value}"
        )
    return value


def command_line() -> str:
    return "python -m equivalence " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _where(exc: BaseException, path: str | None) -> str:
    """`` (file:line)`` of the innermost frame of ``exc`` inside the user's file, if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if path and os.path.abspath(f.filename) == os.path.abspath(path)]
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}:{exc.lineno})"
    f = (inside or frames[-1:] or [None])[-1]
    return f" ({f.filename}:{f.lineno})" if f is not None else ""


def import_user(spec: str) -> None:
    """Import the user's module (``pkg.mod``) or file (``path/to/mine.py``) named by ``--import``.

    Anything that goes wrong (no such module or file, a syntax error, an exception raised while it runs,
    registering a variant name twice) becomes one ``ValueError`` line naming the argument, the error and
    where it happened; the CLI prints it and exits 2."""

    path = None
    try:
        if spec.endswith(".py"):
            p = Path(spec)
            if not p.is_file():
                raise ValueError(f"--import {spec}: no such file")
            path = str(p)
            mod_spec = importlib.util.spec_from_file_location(p.stem, p)
            if mod_spec is None or mod_spec.loader is None:
                raise ValueError(f"--import {spec}: cannot be loaded as a Python module")
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            # findable by its file (a property-suite replay resolves its layer here), under a private name
            sys.modules[f"_equivalence_import_{p.stem}"] = module
        else:
            if not spec or any(not part.isidentifier() for part in spec.split(".")):
                raise ValueError(f"--import {spec!r}: expected a module name (pkg.mod) or a .py file")
            importlib.import_module(spec)
    except ValueError as e:
        if str(e).startswith("--import "):
            raise
        raise ValueError(f"--import {spec}: {type(e).__name__}: {e}{_where(e, path)}") from e
    except ModuleNotFoundError as e:
        raise ValueError(
            f"--import {spec}: no module named {e.name!r} (is it installed, or on PYTHONPATH? "
            "a file needs the .py suffix)"
        ) from e
    except SyntaxError as e:
        raise ValueError(f"--import {spec}: syntax error: {e.msg}{_where(e, path)}") from e
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # the user's code may raise anything: report it in one line
        raise ValueError(
            f"--import {spec}: importing it raised {type(e).__name__}: {e}{_where(e, path)}"
        ) from e


class LazyChoices:
    """``choices`` for argparse read from ``module.attr`` on first use (membership, iteration): a command's
    choices can live in a module that imports SymPy or torch without the parser importing it."""

    def __init__(self, module: str, attr: str):
        self._module, self._attr, self._values = module, attr, None

    def _load(self) -> list:
        if self._values is None:
            self._values = sorted(getattr(importlib.import_module(self._module), self._attr), key=str)
        return self._values

    def __contains__(self, item) -> bool:
        return item in self._load()

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())
