"""Warm-up for mutation testing (``[tool.mutmut] forkserver_warmup = "import"``; docs/reliability.md).

mutmut's fork server imports this module once; every mutant's test process is forked from it and inherits
torch and the (mutated, several-MB) project modules instead of compiling them again (about 2x fewer CPU
seconds per mutant). Inside mutmut only (``MUTANT_UNDER_TEST`` is set): pytest's plugin autoload is switched
off, because the jaxtyping plugin cannot be assertion-rewritten once jaxtyping is imported and
``filterwarnings = error`` would turn that warning into an error in every mutant (reported as timeouts).
In a normal pytest run this module does nothing and holds no tests."""

import importlib
import os

if "MUTANT_UNDER_TEST" in os.environ:
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    for _name in (
        "numpy",
        "torch",
        "jaxtyping",
        "constructions",
        "constructions.variants",
        "constructions.structured",
        "constructions.structured_attention",
        "constructions.invariances",
        "equivalence.claims",
        "constructions.tolerance",
        "equivalence.numeric",
    ):
        importlib.import_module(_name)
