"""Entry point. Before torch loads: unless ``OMP_WAIT_POLICY`` is set, re-run with
``OMP_WAIT_POLICY=PASSIVE``.

On a shared machine whose cores are busy, OpenMP's default active wait makes each of torch's parallel
regions spin at its barrier until the descheduled sibling thread runs again: every multi-threaded op then
costs a scheduler time slice (measured here: the fast forward went from 10 ms to 200-600 ms at load 4-5 on 2
cores, while the single-threaded tiny ops of the step loop were unaffected). Passive waiting (sleep at the
barrier) removes that artefact for every case alike; the policy used is recorded in the JSON. Pass
``OMP_WAIT_POLICY=ACTIVE`` explicitly to measure the default behaviour.
"""

import os
import sys

if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["BENCHMARKS_SET_OMP_WAIT_POLICY"] = (
        "1"  # the load benchmark's tasks get the user's environment
    )
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks", *sys.argv[1:]])

from .cli import main

raise SystemExit(main())
