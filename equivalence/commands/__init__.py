"""Subcommands of ``python -m equivalence`` (one module each)."""
