"""Write the classification table of the modern family into ``docs/variants/README.md`` (developer tool, not
installed).

``python docs/generate_variants_table.py`` rewrites the block between the ``<!-- families:begin -->`` /
``<!-- families:end -->`` markers from the registry, :data:`constructions.variants.families.FAMILIES` and the
proof tiers the prover claims for each variant; ``--check`` exits 1 when the block is stale (a test runs it).
The rows themselves come from :func:`constructions.table.family_rows`.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

from constructions import registry
from constructions.table import README, family_rows, render_markdown, update_readme
from equivalence.symbolic.catalogue import variant_claim_ids

__all__ = ["claimed_tiers", "main"]


def claimed_tiers(v: registry.Variant) -> list[str]:
    """The proof tiers the prover claims for ``v`` (``UNROLLED``, ``ALLT``, ...), from its claim IDs."""
    return [cid.split("/")[0].removeprefix(v.name.upper() + "-") for cid in variant_claim_ids(v)]


def main(argv: Sequence[str] | None = None, readme: Path = README) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["--check"]):
        print("usage: python docs/generate_variants_table.py [--check]", file=sys.stderr)
        return 2
    text = readme.read_text(encoding="utf-8")
    try:
        new = update_readme(text, render_markdown(family_rows(claimed_tiers)))
    except ValueError as e:
        print(f"{readme}: {e}", file=sys.stderr)
        return 2
    if args == ["--check"]:
        if new != text:
            print(f"{readme} is stale: run python docs/generate_variants_table.py", file=sys.stderr)
            return 1
        return 0
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
