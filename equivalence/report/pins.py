"""Code pins: which code a certificate's claims were checked with, so a re-run with other code is caught.

A certificate's ``code`` field records

- ``package``: the sha256 of every source file of this package (``constructions``, ``equivalence``,
  ``properties``) that was loaded when the report was written, keyed by its path relative to the
  checkout, and one digest over all of them;
- ``imports``: each module or ``.py`` file the run imported with ``--import`` (the user's own variants),
  by name, with the sha256 of its file;
- ``versions``: the versions of the libraries the checks run on (torch, sympy, numpy, hypothesis and
  python-flint when installed).

Each claim's ``depends_on`` lists the keys it depends on (``package``, ``import:<name>``, ``torch``, ...).
``check-certificate`` recomputes them before any re-run and reports ``CODE CHANGED: <module>`` (and
fails) when a re-run would use different code, even when every claim would still hold.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from ..commands._common import import_user
from .safe import tty

__all__ = [
    "LIBRARIES",
    "PACKAGES",
    "REPO_ROOT",
    "code_changes",
    "code_pins",
    "depends_on",
    "file_sha256",
    "import_pinned",
    "import_pins",
    "spec_file",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("constructions", "equivalence", "properties")
LIBRARIES = ("torch", "sympy", "numpy", "hypothesis", "python-flint")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _loaded_package_files() -> list[Path]:
    roots = [REPO_ROOT / p for p in PACKAGES]
    files = set()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f or not f.endswith(".py"):
            continue
        p = Path(f).resolve()
        if any(r in p.parents for r in roots) and p.is_file():
            files.add(p)
    return sorted(files)


def spec_file(spec: str) -> tuple[str, Path]:
    """``(name, file)`` of an ``--import`` argument: a ``.py`` file (name: its file name) or a module
    (name: the
    module name; file: where it would be imported from). Finding a module's file imports its parent packages
    only, never the module itself."""
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"--import {tty(spec)}: no such file")
        return path.name, path
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError) as e:
        raise ValueError(f"--import {tty(spec)}: cannot find the module ({e})") from None
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise ValueError(f"--import {tty(spec)}: no such module (or it has no source file)")
    return spec, Path(found.origin)


def import_pins(specs) -> list[dict]:
    """``[{"name", "sha256"}]`` of the ``--import`` arguments ``specs`` (their files as they are now)."""
    out = []
    for spec in dict.fromkeys(specs):
        name, path = spec_file(spec)
        out.append({"name": name, "sha256": file_sha256(path)})
    return out


def code_pins(import_specs=()) -> dict:
    """The ``code`` field of a certificate (see the module docstring)."""
    files = {}
    for p in _loaded_package_files():
        files[p.relative_to(REPO_ROOT).as_posix()] = file_sha256(p)
    digest = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    return {
        "package": {"sha256": digest, "files": files},
        "imports": import_pins(import_specs),
        "versions": {lib: v for lib in LIBRARIES if (v := _version(lib)) is not None},
    }


def depends_on(claim, pins: dict, variant_import: dict[str, str]) -> tuple[str, ...]:
    """The pin keys a claim depends on: this package, the libraries its kind runs on, and the user module that
    registered its variant (``variant_import``: variant name -> import name)."""
    kind = claim.kind if hasattr(claim, "kind") else claim.get("kind")
    construction = claim.construction if hasattr(claim, "construction") else claim.get("construction", "")
    libs = ["torch", "numpy"]
    if kind in ("symbolic", "impossibility", "invariance"):
        libs += ["sympy", "python-flint"]
    keys = ["package"] + [lib for lib in libs if lib in pins.get("versions", {})]
    if construction in variant_import:
        keys.append(f"import:{variant_import[construction]}")
    return tuple(keys)


def variant_imports(import_specs) -> dict[str, str]:
    """Registered variant name -> the ``--import`` name whose file defines its class."""
    import constructions  # lazy: start-up time (the model imports torch; a report without variants does not)

    files, modnames = {}, {}
    for spec in import_specs:
        try:
            name, path = spec_file(spec)
        except ValueError:
            continue
        files[str(path.resolve())] = name
        modnames[path.stem if spec.endswith(".py") else spec] = (
            name  # --import FILE.py: module named by its stem
        )
    out = {}
    for vname in constructions.available():
        cls = type(constructions.get(vname))
        where = set()
        mod = sys.modules.get(cls.__module__)
        if getattr(mod, "__file__", None):
            where.add(str(Path(mod.__file__).resolve()))
        for klass in cls.__mro__:  # the files of the methods it defines (modules imported from a file path)
            for fn in vars(klass).values():
                code = getattr(fn, "__code__", None)
                if code is not None:
                    where.add(str(Path(code.co_filename).resolve()))
        hit = next((files[f] for f in sorted(where) if f in files), None)
        if hit is None and cls.__module__ in modnames and mod is None:
            hit = modnames[cls.__module__]
        if hit is not None:
            out[vname] = hit
    return out


def code_changes(pins: dict) -> list[str]:
    """``CODE CHANGED`` findings: package files (and library versions) that differ from the pins now."""
    out = []
    pkg = pins.get("package", {}) if isinstance(pins.get("package"), dict) else {}
    files = pkg.get("files", {}) if isinstance(pkg.get("files"), dict) else {}
    for rel, digest in sorted(files.items()):
        path = (REPO_ROOT / rel).resolve()
        if not any(REPO_ROOT / p in path.parents for p in PACKAGES) or rel.startswith("/") or ".." in rel:
            out.append(f"CODE CHANGED: {tty(rel)} is not a source file of this package")
        elif not path.is_file():
            out.append(f"CODE CHANGED: {tty(rel)} (recorded, but missing here)")
        elif file_sha256(path) != digest:
            out.append(f"CODE CHANGED: {tty(rel)} (sha256 differs from the one recorded)")
    versions = pins.get("versions", {}) if isinstance(pins.get("versions"), dict) else {}
    for lib, v in sorted(versions.items()):
        now = _version(lib) if lib in LIBRARIES else None
        if lib not in LIBRARIES:
            continue
        if now != v:
            out.append(f"CODE CHANGED: {lib} (version {tty(v)} recorded, {now or 'not installed'} here)")
    return out


def import_pinned(specs, pins, *, strict: bool) -> list[str]:
    """Import the reader's ``--import`` arguments ``specs``, each checked against the recorded ``pins``
    (``[{"name", "sha256"}]``). A file whose sha256 differs from the pinned one of its name is a
    ``CODE CHANGED`` finding; with ``strict`` it is then *not* imported. Returns the findings."""
    findings = []
    pinned = {
        p["name"]: p["sha256"]
        for p in pins
        if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("sha256"), str)
    }
    seen = set()
    for spec in specs:
        name, path = spec_file(spec)
        key = str(path.resolve())
        if key in seen:
            continue
        seen.add(key)
        sha = file_sha256(path)
        if name in pinned and pinned[name] != sha:
            findings.append(
                f"CODE CHANGED: {tty(name)} (sha256 {sha[:16]}... of the given file; "
                f"{tty(pinned[name])[:16]}... recorded)"
            )
            if strict:
                continue
        import_user(spec)
    return findings
