"""``replay FILE``: reproduce a recorded failure from its counterexample file alone.

Every refuted or failed claim of a report writes ``counterexample-<claim>.json`` next to the report (exact
parameters and inputs: hex floats or rationals); the report prints the one-line command that replays it.
Exit status: 1 when the failure is reproduced (the check fails again), 0 when it is not (e.g. fixed since),
2 on bad input (an unreadable or invalid file, a variant that is not registered).
"""

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="reproduce a failure from its counterexample file",
        description="Re-evaluate the exact parameters and inputs recorded in a counterexample file "
        "(written next to a report for every refuted or failed claim) and say whether the "
        "failure happens again. Nothing named in the file is imported or run: pass your own "
        "module with --import when the failing layer is yours. Exits 1 when reproduced.",
    )
    p.add_argument("file", type=Path, help="a counterexample-*.json file")
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import your module or .py file first (its variants become available); compared with the "
        "sha256 recorded in the file",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..replay import replay  # lazy: start-up time (the CLI builds every parser before any command runs)

    res = replay(args.file, imports=tuple(args.imports))
    for line in res.lines():
        print(line)
    return 1 if res.reproduced else 0
