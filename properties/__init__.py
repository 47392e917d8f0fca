"""Hypothesis strategies and a reusable property suite for layers claimed to implement linear self-attention
(Zucchet et al. 2023, arXiv 2309.01775, Sec. 3); see docs/properties.md and docs/reliability.md.

Modules (imported on demand; this package imports nothing heavy, so its pytest plugin costs nothing):

- :mod:`properties.strategies` — sizes, weights (generic / degenerate), sequences (seeded), lambda;
- :mod:`properties.magnitudes` — float64 references, magnitudes $M$ and rounding budgets $n$;
- :mod:`properties.suite` — the properties (``check_*``), targets for the constructions or a user's layer;
- :mod:`properties.plugin` — ``pytest --pyargs properties --lsa-layer MODULE:ATTR``;
- :mod:`properties.mutations` — mutants of constructions and layers with planted bugs (the reliability
  tables that use them are developer tooling, outside this package: ``python -m benchmarks.reliability``);
- :mod:`properties.counterexamples` — the counterexample file a failing property writes;
- :mod:`properties.replay` — its replay, run by ``python -m equivalence replay FILE``;
- :mod:`properties.regressions` — correct layers a too-tight tolerance model would reject (HGRN v1 with a
  SiLU gate).
"""
