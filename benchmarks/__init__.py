"""The benchmark workloads (docs/benchmarks.md):
``python -m benchmarks [--quick] [--device cuda] [--out DIR]``.

Four workloads, each reported as ratios against a baseline timed in the same run (:mod:`benchmarks.common`):
gated RNN forward (:mod:`~benchmarks.w1_forward`), numeric property checks (:mod:`~benchmarks.w2_properties`),
symbolic proof tiers (:mod:`~benchmarks.w3_symbolic`) and training checks (:mod:`~benchmarks.w4_training`).
Results: a table on stdout, ``benchmarks.json``, ``benchmarks.txt`` and PNG plots in ``--out``
(``docs/benchmarks.md`` explains the figures and what limits each workload).
"""
