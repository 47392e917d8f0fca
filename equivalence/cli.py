"""``python -m equivalence``: a thin argparse front end over library functions.

Each subcommand lives in ``equivalence/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``; this file only lists them (adding a command is one entry in :data:`COMMANDS`).
Errors in user input are reported as one line ``error: ...`` with exit status 2, never as a traceback.

Start-up is kept cheap (``--help`` and argument errors answer in well under a second of CPU): a command
module imports only the standard library at module level and imports torch, SymPy and matplotlib inside
``run`` (``tests/test_cli.py`` checks that building the parser imports none of them).
"""

import argparse
import importlib
import sys

COMMANDS = ("verify", "prove", "check_certificate", "train_check", "replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m equivalence",
        description="Verify that gated linear RNNs implement linear self-attention exactly "
        "(Zucchet et al. 2023, arXiv 2309.01775): numeric checks, symbolic proofs, training "
        "checks and citable reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"equivalence.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"equivalence.commands.{name}":
                continue  # command not implemented in this version
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except (ValueError, TypeError, KeyError, OSError) as e:  # OSError: e.g. --out is an existing file
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no report was written or the previous one is intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
