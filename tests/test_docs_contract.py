"""The variant contract in one place: the tutorial's hook table is :data:`constructions.contract.HOOKS`, and
every optional member the code looks up on a variant (``hasattr`` / ``getattr`` / ``hook``) is a hook listed
there (checked statically, with ``ast``)."""

import ast
import re
import warnings
from pathlib import Path

from constructions.contract import HOOKS, hook, hook_names, hooks_table

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("constructions", "equivalence", "properties", "benchmarks")


def _lookups(source: str) -> list[tuple[int, str]]:
    """``(line, member name)`` of every ``hasattr(<variant>, "name")``, ``getattr(<variant>, "name", ...)``
    and ``hook(<variant>, "name")``, where ``<variant>`` is an expression whose text names a variant."""
    out = []
    with warnings.catch_warnings():  # a SyntaxWarning (e.g. an invalid escape) is not this test's concern
        warnings.simplefilter("ignore")
        tree = ast.parse(source)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2):
            continue
        if node.func.id not in ("hasattr", "getattr", "hook"):
            continue
        obj, name = node.args[0], node.args[1]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            continue
        if "variant" in ast.unparse(obj).lower():
            out.append((node.lineno, name.value))
    return out


def test_the_tutorial_shows_the_contract():
    text = (ROOT / "docs" / "tutorial_add_variant.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- hooks:begin -->\n(.*?)<!-- hooks:end -->", text, re.S)
    assert table, (
        "docs/tutorial_add_variant.md has no hooks table (<!-- hooks:begin --> ... <!-- hooks:end -->)"
    )
    assert table.group(1) == hooks_table(), (
        "the tutorial's hook table differs from constructions.contract.HOOKS"
    )
    for h in HOOKS:  # and every hook is there by name
        assert f"| `{h.name}` |" in table.group(1)


def test_every_member_looked_up_on_a_variant_is_a_hook():
    known = set(hook_names())
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name!r}"
        for pkg in PACKAGES
        for path in sorted((ROOT / pkg).rglob("*.py"))
        if "__pycache__" not in path.parts
        for line, name in _lookups(path.read_text(encoding="utf-8"))
        if name not in known and not name.startswith("_")
    ]
    assert not bad, "members looked up on variants that the contract (constructions/contract.py) lacks:\n" + (
        "\n".join(bad)
    )


def test_the_lookup_finder_sees_planted_lookups():
    """Power check: lookups of an unknown member are found, in each spelling; other objects are ignored."""
    src = (
        "def f(variant, rnn, self):\n"
        "    hasattr(variant, 'nope')\n"
        "    getattr(self.variant, 'nope2', None)\n"
        "    hook(type(variant), 'nope3')\n"
        "    hasattr(rnn, 'weights')\n"
    )
    assert _lookups(src) == [(2, "nope"), (3, "nope2"), (4, "nope3")]
    assert not {"nope", "nope2", "nope3"} & set(hook_names())


def test_hook_refuses_names_outside_the_contract():
    import pytest

    class V:
        magnitude = staticmethod(lambda params, x: x)

    assert hook(V(), "magnitude") is V.magnitude and hook(V(), "path_length") is None
    with pytest.raises(KeyError, match="not a hook of the variant contract"):
        hook(V(), "magntiude")
