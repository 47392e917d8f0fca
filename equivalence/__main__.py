"""``python -m equivalence``. Before anything imports torch: unless ``OMP_WAIT_POLICY`` is set, OpenMP threads
wait passively (sleep at barriers instead of spinning). On a busy machine an actively waiting thread burns
the core its descheduled sibling needs; ``verify`` and ``train-check`` run one thread by default anyway, and
with ``--threads N`` the passive policy keeps the extra threads from costing CPU while they wait
(``docs/benchmarks.md``, "Thread policy")."""

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # after the environment is set

sys.exit(main())
