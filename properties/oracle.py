"""Alias of :mod:`properties.magnitudes` (the suite's float64 references, magnitudes $M$ and rounding
budgets $n$); import from there."""

from .magnitudes import *  # noqa: F401,F403
from .magnitudes import __all__  # noqa: F401
