"""Hypothesis strategies and a reusable property suite (see docs/properties.md)."""
