"""``verify``: run every check for every registered construction and write the report."""

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

import constructions

from ..claims import ClaimResult
from ..numeric import check_variant_numeric
from ..report import provenance, write_report
from ..report.write import check_out_dir
from ._common import add_common, command_line, resolve_device, resolve_profile

# sections contributed by other pillars: module path -> function(variants, args) -> list[ClaimResult]
SECTIONS = (
    "equivalence.symbolic.verify_section",
    "equivalence.training.verify_section",
)


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="run all checks for every registered construction and write a report",
                       description="Run the numeric checks, symbolic proofs and training checks for every "
                                   "registered construction; write report.md, report.html and certificate.json.")
    add_common(p)
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    p.add_argument("--variant", action="append", default=None, metavar="NAME",
                   help="only this registered variant (repeatable); default: all of "
                        + ", ".join(constructions.available()))
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a Python module or .py file first, so variants it registers are verified too")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def _import_user(spec: str) -> None:
    import importlib
    import importlib.util

    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"--import {spec}: no such file")
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        importlib.import_module(spec)


def run(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    for spec in args.imports:
        _import_user(spec)
    device = resolve_device(args.device)
    profile = resolve_profile(args.profile)
    names = args.variant or constructions.available()
    variants = [constructions.get(n) for n in names]
    jobs = [(v, dt, dev) for v in variants for dt, dev in
            [(torch.float64, "cpu"), (torch.float32, "cpu")] + ([(torch.float32, device)] if device != "cpu" else [])]
    claims: list[ClaimResult] = []
    for v, dt, dev in tqdm(jobs, desc="numeric checks", disable=args.no_progress, unit="check"):
        claims.append(check_variant_numeric(v, profile=profile, seed=args.seed, dtype=dt, device=dev))
    import importlib

    for section in SECTIONS:
        try:
            fn = importlib.import_module(section.rsplit(".", 1)[0])
        except ModuleNotFoundError as e:
            if e.name and section.startswith(e.name):
                continue  # pillar not present in this version
            raise
        claims.extend(getattr(fn, section.rsplit(".", 1)[1])(variants, args))
    claims.sort(key=lambda c: c.id)
    cert = write_report(claims, args.out, provenance=provenance(device), command=command_line())
    bad = [c for c in claims if not c.ok]
    print(f"{len(claims)} claims, {len(bad)} not holding; report written to {args.out}/ "
          "(report.md, report.html, certificate.json)")
    for c in bad:
        print(f"  {c.status.upper()}: {c.id}: {c.message[:200]}")
    return 0 if cert["all_ok"] else 1
