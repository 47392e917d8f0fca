r"""Workload 4: training checks, steps per second (docs/benchmarks.md).

Two parts:

- **the template's training step** (our own harness, public API only): a trainable
  :class:`~constructions.GatedLinearRNN` student with the direct construction's size regresses a random linear
  self-attention teacher (the teacher-student task of Zucchet et al. 2023, Sec. 4), Adam, MSE, one step =
  forward + backward + update; the step loop (``mode="loop"``) against the chunked scan (``mode="parallel"``;
  gradients always take the dense template); plus an in-context linear regression batch (tokens $[x_i; y_i]$,
  query token $[x_q; 0]$) of the same shape;
- **the project's training checks** (``equivalence.training``): its public ``run_teacher_student`` and
  ``run_icl_regression``, timed on their presets.
"""

import math
import time
from dataclasses import replace

import torch

from constructions import GatedLinearRNN, LinearSelfAttention
from equivalence.training import ICL_PRESETS, TS_PRESETS, run_icl_regression, run_teacher_student

from .common import Case, WorkloadResult, interleaved, ratio

__all__ = ["run"]


def _teacher_student(d, H, dk, dv, B, T, device, seed=0):
    g = torch.Generator().manual_seed(seed)

    def w(*s):
        return (torch.randn(*s, generator=g) / math.sqrt(s[-1])).to(device)

    teacher = LinearSelfAttention(w(H, dk, d), w(H, dk, d), w(H, dv, d))
    n, m = H * dk * (dv + 1), H * dk * dv
    student = GatedLinearRNN(
        w(n, d + 1),
        w(n, d + 1),
        torch.rand(n, generator=g).to(device),
        w(m, n),
        w(m, n),
        w(H * dv, m),
        trainable=True,
    )
    x = torch.randn(B, T, d, generator=g).to(device)
    with torch.no_grad():
        y = teacher(x)
    return student, x, y


def _icl(d, B, T, device, seed=1):
    """In-context linear regression batch: tokens [x_i; w.x_i], last token [x_q; 0], target w.x_q."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(B, T, d - 1, generator=g)
    wt = torch.randn(B, d - 1, 1, generator=g)
    ys = xs @ wt
    tokens = torch.cat([xs, ys], dim=-1)
    tokens[:, -1, -1] = 0
    return tokens.to(device), ys[:, -1:, :].to(device)


def _stepper(student, x, target, mode, last_only=False):
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        out = student(x, mode=mode)
        if last_only:
            out = out[:, -1:, :1]
        loss = (out - target).square().mean()
        loss.backward()
        opt.step()
        return loss

    return step


def run(*, quick: bool, device: str, smoke: bool = False, repeats: int | None = None) -> list[WorkloadResult]:
    out = []
    d, H, dk, dv = (4, 1, 2, 2) if smoke else (8, 1, 8, 8)
    B, T = (4, 16) if smoke else (32, 64)
    steps = 3 if smoke else (5 if quick else 30)
    reps = repeats or (1 if smoke else (3 if quick else 5))
    r = WorkloadResult(
        "w4",
        "Training step of the template (our harness: Adam, MSE, forward + backward)",
        {"d": d, "H": H, "d_k": dk, "d_v": dv, "B": B, "T": T, "steps_per_round": steps, "dtype": "float32"},
    )
    fns = {}
    for mode in ("loop", "parallel"):
        student, x, y = _teacher_student(d, H, dk, dv, B, T, device)
        step = _stepper(student, x, y, mode)
        fns[f"teacher-student, mode={mode}"] = lambda step=step: [step() for _ in range(steps)]
        student, _, _ = _teacher_student(d, H, dk, dv, B, T, device, seed=2)
        tokens, target = _icl(d, B, T, device)
        step = _stepper(student, tokens, target.expand(B, 1, 1), mode, last_only=True)
        fns[f"in-context regression, mode={mode}"] = lambda step=step: [step() for _ in range(steps)]
    times = interleaved(fns, repeats=reps, device=device)
    for name, ts in times.items():
        r.cases.append(Case(name, ts, extra={"steps_per_s": steps / (sorted(ts)[len(ts) // 2])}))
    r.ratios.append(
        ratio(
            "teacher-student: parallel vs loop",
            times,
            "teacher-student, mode=parallel",
            "teacher-student, mode=loop",
        )
    )
    r.ratios.append(
        ratio(
            "in-context regression: parallel vs loop",
            times,
            "in-context regression, mode=parallel",
            "in-context regression, mode=loop",
        )
    )
    r.limits = {
        "training_step": "small tensors (B*T*n ~ 1e5): per-op Python and autograd overhead dominates; "
        "backward of the chunked scan costs ~2x its forward"
    }
    out.append(r)
    out.append(_project_training(quick=quick, device=device, smoke=smoke))
    return out


def _project_training(*, quick: bool, device: str, smoke: bool) -> WorkloadResult:
    """Steps/s of the project's two training checks (public ``run_teacher_student`` / ``run_icl_regression``):
    quick/smoke benchmark modes run the ``smoke`` preset for a few steps; the full mode runs each ``quick``
    preset to the end (its budget: it must converge in under 5 minutes) and reports its targets."""
    r = WorkloadResult(
        "w4",
        "Training checks of equivalence.training (steps/s; full mode: quick preset end to end)",
        {"device": device},
    )
    jobs = (
        ("teacher-student", run_teacher_student, TS_PRESETS),
        ("icl-regression", run_icl_regression, ICL_PRESETS),
    )
    if (
        smoke or quick
    ):  # the icl task's fixed cost (line search, 2000-task evaluation) is ~50 s: full mode only
        jobs = jobs[:1]
        r.notes.append("quick mode: teacher-student smoke preset only; icl-regression runs in the full mode")
    for task, runner, presets in jobs:
        if smoke or quick:
            cfg = replace(presets["smoke"], steps=10 if smoke else 50)
        else:
            cfg = presets["quick"]
        t0 = time.perf_counter()
        try:
            res, _ = runner(cfg, seed=0, device=device, progress=False)
        except Exception as e:  # noqa: BLE001 - report, do not fail the benchmark run
            r.cases.append(
                Case(
                    f"{task} ({cfg.name} preset)",
                    [time.perf_counter() - t0],
                    note=f"error: {type(e).__name__}: {e}"[:300],
                )
            )
            continue
        secs = time.perf_counter() - t0
        extra = {"steps": cfg.steps, "steps_per_s": cfg.steps / secs, "preset": cfg.name}
        r.cases.append(
            Case(
                f"{task} ({cfg.name} preset, {cfg.steps} steps)",
                [secs],
                extra=extra,
                note="wall time includes data generation and the final measurements",
            )
        )
        if not (smoke or quick):
            targets = res.get("targets", {}) if isinstance(res, dict) else {}
            r.checks.append(
                {
                    "task": task,
                    "quick preset seconds": secs,
                    "under 5 minutes": secs < 300,
                    "targets met": sum(bool(t.get("met")) for t in targets.values() if isinstance(t, dict)),
                    "targets": len(targets),
                }
            )
    return r
