r"""The classification table of the modern family, generated from the registry and
:data:`constructions.variants.families.FAMILIES` (never hand-written).

- :func:`family_rows` returns one dict per family row (``family``, ``status``, ``variants``, ``neurons``,
  ``formula``, ``tiers``, ``oracle``, ``source``, ``reason``); the report renders the same rows, passing
  ``tiers_of`` with the tiers that *held* in its run;
- :func:`render_markdown` renders them as a Markdown table;
- :func:`update_readme` puts a rendered table between the ``<!-- families:begin -->`` /
  ``<!-- families:end -->`` markers of ``docs/variants/README.md`` (:data:`README`).

The table in the docs is written by the developer script ``python docs/generate_variants_table.py
[--check]``, which adds the proof tiers the prover claims for each variant (the prover sits above this
package, and so does the script).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import registry
from .contract import hook
from .variants.families import FAMILIES

__all__ = ["family_rows", "render_markdown", "update_readme", "BEGIN", "END", "README"]

BEGIN, END = "<!-- families:begin -->", "<!-- families:end -->"
README = Path(__file__).resolve().parents[1] / "docs" / "variants" / "README.md"


def _status(v: registry.Variant) -> str:
    if v.status != "impossible":
        return v.status
    cert = hook(v, "impossibility_claim")
    return f"impossible ({cert})" if cert else "refuted (at a counterexample)"


def _neurons(v: registry.Variant, d: int = 4, heads: int = 2) -> int:
    p = v.sample_params(d, heads, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return v.num_neurons(p)


def family_rows(tiers_of: Callable[[registry.Variant], Sequence[str]] | None = None) -> list[dict]:
    """One row per family of :data:`FAMILIES`, variants taken from the registry (neurons at ``d = 4``, ``H =
    2``, the variant's default sizes). ``tiers_of(variant)``: the proof tiers to show (``None``: left
    empty)."""
    rows = []
    for fam in FAMILIES:
        vs = [registry.get(n) for n in fam.variants]
        if vs:
            status = _status(vs[0])
            neurons = ", ".join(f"{v.name}: {_neurons(v)}" for v in vs)
            tiers = "; ".join(f"{v.name}: {', '.join(tiers_of(v)) or '-'}" for v in vs) if tiers_of else ""
        else:
            status, neurons, tiers = fam.status, "-", "-"
        rows.append(
            {
                "family": fam.family,
                "status": status,
                "variants": list(fam.variants),
                "neurons": neurons,
                "formula": fam.formula or "-",
                "tiers": tiers,
                "oracle": fam.oracle,
                "source": fam.source,
                "reason": fam.reason,
            }
        )
    return rows


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|")


def render_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table (family, status, neurons, formula, proof tiers, oracle, source,
    reason)."""
    head = (
        "| family | status | neurons (d=4, H=2) | formula | proof tiers | oracle (fla) | source | why |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| `{r['family']}` | {_cell(r['status'])} | {_cell(r['neurons'])} | {_cell(r['formula'])} | "
        f"{_cell(r['tiers'])} | `{_cell(r['oracle'])}` | {_cell(r['source'])} | {_cell(r['reason'])} |\n"
        for r in rows
    )
    return head + body


def update_readme(text: str, table: str) -> str:
    """``text`` with the block between :data:`BEGIN` and :data:`END` replaced by ``table``."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the README has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}{END}{tail}"
