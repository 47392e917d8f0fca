"""One training loop for every student: Adam, warm-up then cosine decay, projection, progress bar, history.

The loop is deliberately plain (no framework): ``loss_fn(step)`` returns a vector of per-model losses, whose
sum is minimised by one Adam over all parameters. Adam is element-wise and the models share no parameters,
so this trains every model exactly as if alone (same update for each parameter), and a batched ensemble of
students costs one forward/backward pass per step. ``project`` runs after each optimiser step (projected
Adam for the ``clamp`` λ parameterisation). Deterministic for a given seed and device.
"""

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm import tqdm

__all__ = ["TrainLog", "fit", "lr_at"]


@dataclass
class TrainLog:
    """Loss history (every ``every`` steps, one list per model) and wall-clock seconds."""

    steps: list[int] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"steps": self.steps, "losses": self.losses, "seconds": round(self.seconds, 2)}


def lr_at(step: int, steps: int, lr: float, warmup: float = 0.02) -> float:
    """Linear warm-up over the first ``warmup`` fraction of steps, then cosine decay to 0."""
    w = max(1, int(warmup * steps))
    if step < w:
        return lr * (step + 1) / w
    return lr * 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


def _adam(groups: list[dict], lr: float) -> torch.optim.Adam:
    """Adam with the fused implementation (one kernel per parameter instead of a dozen element-wise ops:
    at the training sizes here the optimiser step is dispatch-bound), or the default one where the fused
    kernel does not support the parameters' device or dtype. Same update rule either way."""
    try:
        return torch.optim.Adam(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(groups, lr=lr)


def fit(
    params: Iterable[Tensor] | list[dict],
    loss_fn: Callable[[int], Tensor],
    *,
    steps: int,
    lr: float,
    project: Callable[[], None] | None = None,
    every: int = 50,
    desc: str = "training",
    progress: bool = True,
) -> TrainLog:
    """Minimise ``loss_fn(step).sum()`` for ``steps`` Adam steps; return the per-model loss history.

    ``params`` is an iterable of tensors (learning rate ``lr``) or a list of ``{"params": [...], "lr": x}``
    groups (each group's rate follows the same warm-up/cosine schedule, scaled by ``x / lr``).

    A non-finite loss stops training with ``FloatingPointError`` naming the step and the model index,
    instead of silently training on NaN.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}")
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = [
            {"params": [p for p in g["params"] if p.requires_grad], "lr": g.get("lr", lr)} for g in params
        ]
    else:
        groups = [{"params": [p for p in params if p.requires_grad], "lr": lr}]
    base = [g["lr"] for g in groups]
    opt = _adam(groups, lr)
    log = TrainLog()
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, unit="step", mininterval=1.0, leave=False)
    for step in bar:
        for group, b in zip(opt.param_groups, base):
            group["lr"] = lr_at(step, steps, b)
        losses = loss_fn(step)
        if not bool(torch.isfinite(losses).all()):
            bad = (~torch.isfinite(losses)).nonzero()[:, 0].tolist()
            raise FloatingPointError(
                f"{desc}: loss of model(s) {bad} is not finite at step {step}; "
                "lower the learning rate or check the data"
            )
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        if project is not None:
            project()
        if step % every == 0 or step == steps - 1:
            vals = [float(v) for v in losses.detach().cpu()]
            log.steps.append(step)
            log.losses.append(vals)
            bar.set_postfix_str(f"min {min(vals):.2e} max {max(vals):.2e}", refresh=False)
    log.seconds = time.perf_counter() - t0
    return log
