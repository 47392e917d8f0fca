"""Compatibility re-export: the tolerance model lives in :mod:`constructions.tolerance` (its one home, importable
from ``constructions`` without ``equivalence``). Import from there in new code."""

from constructions.tolerance import *
from constructions.tolerance import __all__  # noqa: F401
