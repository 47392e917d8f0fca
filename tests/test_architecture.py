"""The shape of the code, checked statically (``ast``; nothing is imported or run).

- no import cycles among the modules of ``constructions``, ``equivalence``, ``properties`` and ``benchmarks``
  (function-level imports count: a lazy import hides a cycle, it does not remove it);
- ``constructions/`` (the model and its constructions) never imports ``equivalence/`` or ``properties/``;
- every function-level import says why it is lazy, in a comment on its line or the line above (optional
  dependencies, start-up time, ...);
- ``docs/architecture.md`` lists every module of the three packages, and every module it lists exists.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("constructions", "equivalence", "properties", "benchmarks")
#: the packages users install (pyproject's wheel targets); docs/architecture.md lists all their modules
USER_PACKAGES = ("constructions", "equivalence", "properties")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of :data:`PACKAGES` (packages as their
    ``__init__``)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _target(name: str) -> str | None:
    """The project module that importing ``name`` runs last (its longest prefix that is a module), or
    ``None``."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in MODULES:
            return cand
    return None


class _Imports(ast.NodeVisitor):
    """Every import of one module: ``(line, target module, at module level?)``."""

    def __init__(self, module: str):
        self.module = module
        self.depth = 0
        self.found: list[tuple[int, str, bool]] = []

    def _scope(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def _add(self, line: int, name: str) -> None:
        t = _target(name)
        if t is not None and t != self.module:
            self.found.append((line, t, self.depth == 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node.lineno, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            base = base if _is_package(self.module) else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:  # ``from pkg import sub`` imports the submodule pkg.sub
            sub = f"{origin}.{alias.name}"
            self._add(node.lineno, sub if sub in MODULES else origin)


def _imports(module: str) -> list[tuple[int, str, bool]]:
    v = _Imports(module)
    v.visit(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    return v.found


GRAPH = {m: sorted({t for _, t, _ in _imports(m)}) for m in MODULES}


def _cycles() -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:  # iterative enough for this tree's depth
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return sorted(out)


def _path(cycle: list[str]) -> str:
    """One closed path through a cycle, for the failure message (``a -> b -> a``)."""
    members = set(cycle)
    start = cycle[0]
    seen, frontier = {start: [start]}, [start]
    while frontier:  # breadth-first from start back to start inside the component
        nxt = []
        for v in frontier:
            for w in GRAPH[v]:
                if w == start:
                    return " -> ".join(seen[v] + [start])
                if w in members and w not in seen:
                    seen[w] = seen[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return " <-> ".join(cycle)


CYCLES = _cycles()


def _pending(what: str):
    """xfail(strict=True) for a known, not yet fixed violation: it turns into a failure the moment the fix
    lands, so the mark is removed with the fix."""
    return pytest.mark.xfail(strict=True, reason=f"pending: {what}")


#: the areas whose import graph must be acyclic (an area fails when a cycle has a module in it) and whose
#: function-level imports must say why; a known violation is marked pending
AREAS = (
    "constructions",
    "equivalence.report",
    "equivalence.symbolic",
    "equivalence",
    "properties",
    "benchmarks",
)
CYCLE_PENDING: dict = {}
LAZY_PENDING: dict = {}


def _areas(pending: dict) -> list:
    return [pytest.param(a, id=a, marks=[pending[a]] if a in pending else []) for a in AREAS]


def _in_area(module: str, area: str) -> bool:
    if area == "equivalence":
        return (module == "equivalence" or module.startswith("equivalence.")) and not any(
            module == a or module.startswith(a + ".") for a in ("equivalence.report", "equivalence.symbolic")
        )
    return module == area or module.startswith(area + ".")


@pytest.mark.parametrize("area", _areas(CYCLE_PENDING))
def test_no_import_cycles(area):
    bad = [c for c in CYCLES if any(_in_area(m, area) for m in c)]
    assert not bad, "import cycles (function-level imports included):\n" + "\n".join(_path(c) for c in bad)


def test_the_cycle_finder_finds_cycles():
    """Power check: a two-module cycle planted in the graph is found (and reported as a closed path)."""
    saved = {k: list(v) for k, v in GRAPH.items()}
    try:
        GRAPH["constructions.scan"] = GRAPH["constructions.scan"] + ["constructions.rnn"]
        found = [c for c in _cycles() if "constructions.scan" in c]
        assert found and "constructions.rnn" in found[0]
        p = _path(found[0])
        assert p.startswith(found[0][0]) and p.endswith(found[0][0]) and " -> " in p
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_relative_imports_resolve():
    """The resolver maps relative and ``from pkg import submodule`` imports onto the right modules, and sees
    function-level imports (power check of the lazy-import rule on a planted source)."""
    rnn = {t for _, t, _ in _imports("constructions.rnn")}
    assert {"constructions._validation", "constructions.evaluator", "constructions.scan"} <= rnn
    init = {t for _, t, _ in _imports("constructions")}
    assert "constructions.variants" in init and "constructions.rnn" in init
    v = _Imports("constructions.variants.gla")
    v.visit(
        ast.parse("from ..scan import scan\ndef f():\n    from . import plan\n    import constructions.rnn\n")
    )
    assert v.found == [
        (1, "constructions.scan", True),
        (3, "constructions.variants.plan", False),
        (4, "constructions.rnn", False),
    ]


def test_constructions_never_import_equivalence_or_properties():
    """The model and its constructions sit below the checker: no upward import, lazy or not."""
    bad = [
        f"{m}:{line} imports {t}"
        for m in MODULES
        if m == "constructions" or m.startswith("constructions.")
        for line, t, _ in _imports(m)
        if t.split(".")[0] in ("equivalence", "properties", "benchmarks")
    ]
    assert not bad, "\n".join(bad)


_COMMENT = re.compile(r"#\s*\S")


def _unexplained_in(text: str, label: str) -> list[str]:
    """Function-level imports in ``text`` with no comment on their line(s) or the line above (the reason they
    are lazy: an optional dependency, start-up time, ...)."""
    lines = text.splitlines()
    out = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                span = lines[inner.lineno - 1 : (inner.end_lineno or inner.lineno)]
                above = lines[inner.lineno - 2].strip() if inner.lineno > 1 else ""
                if not (any(_COMMENT.search(s) for s in span) or above.startswith("#")):
                    out.append(f"{label}:{inner.lineno}: {span[0].strip()}")
    return sorted(set(out))


def _unexplained_lazy_imports(area: str) -> list[str]:
    return [
        bad
        for m, path in MODULES.items()
        if _in_area(m, area)
        for bad in _unexplained_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]


def test_the_lazy_import_rule_can_fail():
    src = (
        "import os\n\n\ndef f():\n    import json\n    import sys  # lazy: start-up time\n"
        "    # an optional dependency\n    import fla\n    from x import (a,\n        b)  # why\n"
    )
    assert _unexplained_in(src, "m.py") == ["m.py:5: import json"]


@pytest.mark.parametrize("area", _areas(LAZY_PENDING))
def test_function_level_imports_say_why(area):
    bad = _unexplained_lazy_imports(area)
    assert not bad, (
        f"{len(bad)} function-level imports without a reason (a comment on the line or the line "
        "above, e.g. '# lazy: optional dependency'):\n" + "\n".join(bad)
    )


_LISTED = re.compile(r"`((?:%s)/(?:[\w/]*\.py|[\w/]*/)?)`" % "|".join(USER_PACKAGES + ("benchmarks",)))


def test_architecture_md_lists_every_module_and_only_real_ones():
    """Every module of the user packages appears in docs/architecture.md as ``pkg/mod.py`` (a package as
    ``pkg/sub/``), and every such path there exists."""
    listed = set(_LISTED.findall((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")))
    missing = sorted(p for p in listed if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md lists paths that do not exist: {missing}"
    wanted = set()
    for m, path in MODULES.items():
        if m.split(".")[0] in USER_PACKAGES:
            rel = path.relative_to(ROOT).as_posix()
            wanted.add(rel[: -len("__init__.py")] if path.name == "__init__.py" else rel)
    unlisted = sorted(wanted - listed)
    assert not unlisted, f"modules missing from docs/architecture.md: {unlisted}"


def test_the_listing_parser_sees_modules_and_packages():
    text = "| `constructions/nope.py` | x |\n| `equivalence/report/` | y |\n`equivalence/` `properties/x.txt`"
    assert set(_LISTED.findall(text)) == {"constructions/nope.py", "equivalence/report/", "equivalence/"}
    assert not (ROOT / "constructions/nope.py").exists()  # so the check above would report it
