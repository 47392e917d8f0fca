r"""Training checks: does gradient descent *discover* the construction? (Zucchet et al. 2023, Experiments 1
and 2)

- :mod:`~equivalence.training.teacher_student` — gated RNN students imitate a random linear-attention teacher;
  loss vs hidden size, λ collapse to {0, 1}, pruning, length generalisation, recovered attention tensor;
  λ-parameterisation ablations (projection, sigmoid, LRU) and LSTM/GRU students.
- :mod:`~equivalence.training.icl_regression` — in-context linear regression (von Oswald et al. 2023): LSA,
  gated RNNs, LSTM and GRU against one step of gradient descent.
- :mod:`~equivalence.training.mechanism` — the measurements (pruning, cubic coefficient tensor, ...);
  :mod:`~equivalence.training.students` — the batched gated RNN students; :mod:`~equivalence.training.plots`,
  :mod:`~equivalence.training.artifacts` — figures, JSON and checkpoints.
- :func:`verify_section` — the report's "Learned" section (claims ``empirical`` / ``not-supported``, never
``proved``).

CLI: ``python -m equivalence train-check teacher-student|icl-regression [--quick] [--device] [--seed]
[--out]``.
"""

from .icl_regression import ICL_PRESETS, ICLConfig, run_icl_regression
from .section import verify_section
from .teacher_student import TS_PRESETS, TeacherStudentConfig, run_teacher_student

__all__ = [
    "verify_section",
    "run_teacher_student",
    "run_icl_regression",
    "TeacherStudentConfig",
    "ICLConfig",
    "TS_PRESETS",
    "ICL_PRESETS",
]
