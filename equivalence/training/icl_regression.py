r"""Experiment 2 of Zucchet et al. 2023: in-context linear regression, where trained gated RNNs and linear
self-attention learn the same algorithm, one step of gradient descent (von Oswald et al. 2023).

Models, trained on fresh tasks every step (:mod:`~equivalence.training.icl_tasks`), loss on the query token:

- ``lsa``: one head of linear self-attention on tokens $e\in\mathbb R^{d+1}$ ($W_Q,W_K,W_V\in\mathbb
R^{(d+1)\times(d+1)}$,
  $W_O\in\mathbb R^{1\times(d+1)}$), exported as a :class:`~constructions.LinearSelfAttention`;
- ``gated_rnn[n]``: the paper's gated RNN template with $n$ neurons (projected λ), sizes around the
  $2d$ of the GD construction ($d$ memory neurons accumulating $\sum_i y_ix_i$, $d$ query neurons);
- ``lstm``, ``gru``: ``torch.nn`` baselines with a linear readout.

Each is compared with one GD step (η by exact line search) on ``eval_tasks`` held-out tasks: test loss,
mean squared distance of the predictions to GD's, cosine of $\partial\hat y/\partial x_\text{test}$ with
GD's, and out-of-distribution scaling (inputs or task weights × α). *Recovered structure*: the cubic
coefficient tensor $\widehat T_{abc}$ (:mod:`~equivalence.training.mechanism`; $\hat y=\sum_i\sum_{abc}
\widehat T_{abc}e_{i,a}e_{i,b}e_{N+1,c}+\dots$) against GD's, whose only entries are
$\widehat T_{y,a,a}=\widehat T_{a,y,a}=\eta/(2N)$, and a linear probe of the final hidden state for the
GD memory $\frac1N\sum_iy_ix_i$ (the paper's probing of stored polynomial terms).
"""

from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor, nn

from constructions import LinearSelfAttention

from .icl_tasks import gd_direction, gd_prediction, line_search_eta, sample_tasks
from .mechanism import (
    cubic_coefficients,
    lambda_histogram,
    near_zero_or_one,
    prune,
    relative_error,
    rnn_cubic_coefficients,
)
from .students import GatedRNNEnsemble, RecurrentBaseline
from .trainer import fit

__all__ = [
    "ICLConfig",
    "ICL_PRESETS",
    "ICL_TARGETS",
    "TrainableLSA",
    "run_icl_regression",
    "icl_preset",
    "gd_tensor",
]


@dataclass(frozen=True)
class ICLConfig:
    """Sizes and budget of the in-context regression experiment (see the module docstring)."""

    name: str = "quick"
    d: int = 10
    N: int = 10
    batch: int = 512
    steps: int = 4000
    lr: float = 2e-3
    rnn_sizes: tuple[int, ...] = (10, 20, 40)
    rnn_seeds: int = 1
    lam_init: tuple[float, float] = (0.0, 1.0)
    lsa_init_std: float = 0.1
    lsa_lr: float = 2e-3
    baseline_lr: float = 2e-3
    baselines: tuple[str, ...] = ("lstm", "gru")
    baseline_hidden: int = 64
    eval_tasks: int = 10_000
    line_search_tasks: int = 100_000
    ood_alphas: tuple[float, ...] = (0.5, 2.0)
    prune_tol: float = 0.1

    def __post_init__(self):
        for k in (
            "d",
            "N",
            "batch",
            "steps",
            "rnn_seeds",
            "baseline_hidden",
            "eval_tasks",
            "line_search_tasks",
        ):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ICLConfig.{k} must be an int >= 1; got {v!r}")
        if not self.rnn_sizes or min(self.rnn_sizes) < 1:
            raise ValueError(f"rnn_sizes must be hidden sizes >= 1; got {self.rnn_sizes}")
        bad = [b for b in self.baselines if b not in ("lstm", "gru")]
        if bad:
            raise ValueError(f"baselines must be among ('lstm', 'gru'); got {bad}")
        if self.eval_tasks < 4:
            raise ValueError(
                f"eval_tasks must be >= 4 (the probe splits them in halves); got {self.eval_tasks}"
            )


ICL_PRESETS = {
    "smoke": ICLConfig(
        name="smoke",
        d=3,
        N=6,
        batch=256,
        steps=1500,
        lr=1e-2,
        lsa_lr=1e-2,
        lsa_init_std=0.3,
        rnn_sizes=(12,),
        rnn_seeds=2,
        baselines=(),
        eval_tasks=2000,
        line_search_tasks=20_000,
        ood_alphas=(2.0,),
    ),
    "quick": ICLConfig(),
    "full": ICLConfig(
        name="full",
        steps=8000,
        rnn_sizes=(5, 10, 20, 40, 80),
        rnn_seeds=2,
        ood_alphas=(0.25, 0.5, 1.5, 2.0, 3.0),
    ),
}

#: the targets of the quick mode
ICL_TARGETS = {
    "lsa_mse_rel": 0.01,
    "lsa_cosine": 0.995,
    "rnn_mse_rel": 0.05,
    "rnn_pred_dist": 0.02,
    "rnn_cosine": 0.98,
    "rnn_size_factor": 4,
}


def icl_preset(name: str, **overrides) -> ICLConfig:
    """A preset of :data:`ICL_PRESETS` with fields replaced (``ValueError`` for an unknown name)."""
    if name not in ICL_PRESETS:
        raise ValueError(f"unknown icl-regression preset {name!r}; expected one of {sorted(ICL_PRESETS)}")
    return replace(ICL_PRESETS[name], **overrides)


class TrainableLSA(nn.Module):
    r"""One head of linear self-attention with trainable $W_Q, W_K, W_V$ (``[1, D, D]``) and $W_O$ (``[1,
    D]``), evaluated at the last token only: $\hat y=W_O\sum_s v_s\,(k_s^\top q_T)$ (the causal LSA of
    :class:`~constructions.LinearSelfAttention` at $t=T$). :meth:`export` returns that class, float64."""

    def __init__(self, D: int, *, seed: int, init_std: float = 0.05, dtype=torch.float32, device="cpu"):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        for name, shape in (("W_Q", (1, D, D)), ("W_K", (1, D, D)), ("W_V", (1, D, D)), ("W_O", (1, D))):
            w = torch.randn(*shape, generator=g, dtype=torch.float64) * init_std
            setattr(self, name, nn.Parameter(w.to(dtype=dtype, device=device)))

    def forward(self, e: Tensor, *, last_only: bool = True) -> Tensor:
        if not last_only:
            return self.export(dtype=e.dtype)(e)
        q = e[:, -1] @ self.W_Q[0].T  # [B, D]
        k = e @ self.W_K[0].T  # [B, T, D]
        v = e @ self.W_V[0].T
        return torch.einsum("bt,btv->bv", torch.einsum("btd,bd->bt", k, q), v) @ self.W_O.T

    def export(self, dtype: torch.dtype = torch.float64) -> LinearSelfAttention:
        w = [t.detach().to(dtype).cpu().clone() for t in (self.W_Q, self.W_K, self.W_V, self.W_O)]
        return LinearSelfAttention(*w)


def gd_tensor(d: int, N: int, eta: float) -> Tensor:
    r"""The symmetrised cubic coefficient tensor of one GD step over token coordinates (``[1, d+1, d+1,
    d+1]``): $\widehat T_{0,y,a,a}=\widehat T_{0,a,y,a}=\eta/(2N)$ for $a<d$ ($y$ is coordinate $d$), zero
    elsewhere."""
    T = torch.zeros(1, d + 1, d + 1, d + 1, dtype=torch.float64)
    for a in range(d):
        T[0, d, a, a] = T[0, a, d, a] = eta / (2 * N)
    return T


def _last_token(model, last_only: bool = False):
    """``tokens -> prediction [B]``: the model's output at the query token."""
    if last_only:
        return lambda e: model(e, last_only=True)[:, 0]
    return lambda e: model(e)[:, -1, 0]


def _seq_model(model, last_only_fn):
    """Wrap a last-token predictor as a sequence model ``[B, T, D] -> [B, T, 1]`` (zeros before the last
    token) so that :func:`cubic_coefficients` can probe it at the last position."""

    def f(e: Tensor) -> Tensor:
        last = last_only_fn(model, e)  # [B, 1]
        return torch.cat([last.new_zeros(e.shape[0], e.shape[1] - 1, 1), last[:, None, :]], dim=1)

    return f


def _structure(T_hat: Tensor, d: int, N: int, eta: float) -> dict:
    """Compare a recovered tensor (query coordinate ``c < d`` only: the query's y slot is always 0) with
    GD's."""
    ref = gd_tensor(d, N, eta)[..., :d]
    est = T_hat.to(torch.float64)[..., :d]
    gamma = 2 * est[0, d, :d, :]  # coefficient matrix of y_i x_i,a x_test,c
    eta_eff = float(torch.trace(gamma)) * N / d
    offdiag = gamma - torch.diag(torch.diagonal(gamma))
    return {
        "tensor_rel_error_to_gd": relative_error(est, ref),
        "eta_effective": eta_eff,
        "gamma": [[round(float(v), 8) for v in row] for row in gamma],
        "gamma_offdiag_rel": float(offdiag.norm() / gamma.norm()) if float(gamma.norm()) > 0 else None,
        "mass_outside_gd_block": float((est - est * (ref != 0)).norm() / est.norm())
        if float(est.norm()) > 0
        else None,
    }


def _probe_r2(H: Tensor, target: Tensor) -> float:
    """R^2 of a least-squares linear probe (with bias) fitted on the first half, scored on the second."""
    H = torch.cat([H.to(torch.float64), H.new_ones(H.shape[0], 1, dtype=torch.float64)], dim=1)
    half = H.shape[0] // 2
    sol = torch.linalg.lstsq(
        H[:half], target[:half].to(torch.float64), driver="gelsd"
    ).solution  # SVD: rank-safe
    pred = H[half:] @ sol
    resid = (pred - target[half:]).pow(2).sum()
    total = (target[half:] - target[half:].mean(0)).pow(2).sum()
    return float(1 - resid / total)


def _metrics(predict, tokens: Tensor, y: Tensor, eta: float) -> dict:
    """test loss, squared distance to GD, gradient cosine with GD (float64, per-task average)."""
    d = tokens.shape[-1] - 1
    e = tokens.clone().requires_grad_(True)
    y_hat = predict(e)
    (grad,) = torch.autograd.grad(y_hat.sum(), e)
    g_model = grad[:, -1, :d]
    g_gd = eta * gd_direction(tokens)
    y_gd = gd_prediction(tokens, eta)
    cos = torch.nn.functional.cosine_similarity(g_model, g_gd, dim=1, eps=1e-30)
    y_hat = y_hat.detach()
    return {
        "test_loss": float((y_hat - y).pow(2).mean()),
        "pred_l2_to_gd": float((y_hat - y_gd).pow(2).mean()),
        "grad_cosine_to_gd": float(cos.mean()),
        "grad_cosine_to_gd_min": float(cos.min()),
    }


def run_icl_regression(
    cfg: ICLConfig, *, seed: int = 0, device: str = "cpu", progress: bool = True
) -> tuple[dict, dict]:
    """Train and measure every model of ``cfg``; returns ``(results, checkpoint)`` (JSON-able, state
    dicts)."""
    if not isinstance(cfg, ICLConfig):
        raise TypeError(f"cfg must be an ICLConfig; got {type(cfg).__name__}")
    d, N, D = cfg.d, cfg.N, cfg.d + 1
    eta = line_search_eta(
        d, N, tasks=cfg.line_search_tasks, generator=torch.Generator().manual_seed(seed + 11)
    )
    lsa = TrainableLSA(D, seed=seed * 7919 + 1, init_std=cfg.lsa_init_std, device=device)
    rnns = {
        n: GatedRNNEnsemble(
            [n] * cfg.rnn_seeds,
            D,
            1,
            n,
            lam_kind="clamp",
            lam_init=cfg.lam_init,
            seeds=[seed * 7919 + 100 * n + r for r in range(cfg.rnn_seeds)],
            device=device,
        )
        for n in cfg.rnn_sizes
    }
    baselines = {
        cell: RecurrentBaseline(cell, D, 1, cfg.baseline_hidden, seed=seed * 7919 + 50 + i, device=device)
        for i, cell in enumerate(cfg.baselines)
    }
    g = torch.Generator(device=device).manual_seed(seed + 12)

    def loss_fn(step: int) -> Tensor:
        e, y = sample_tasks(cfg.batch, d, N, generator=g, device=device)
        losses = [((lsa(e)[:, 0] - y) ** 2).mean()[None]]
        for ens in rnns.values():
            losses.append(((ens(e, last_only=True)[..., 0] - y) ** 2).mean(dim=1))
        for m in baselines.values():
            losses.append(((m(e, last_only=True)[:, 0] - y) ** 2).mean()[None])
        return torch.cat(losses)

    def project() -> None:
        for ens in rnns.values():
            ens.project_()

    groups = [
        {"params": list(lsa.parameters()), "lr": cfg.lsa_lr},
        {"params": [p for m in rnns.values() for p in m.parameters()], "lr": cfg.lr},
        {"params": [p for m in baselines.values() for p in m.parameters()], "lr": cfg.baseline_lr},
    ]
    log = fit(
        groups,
        loss_fn,
        steps=cfg.steps,
        lr=cfg.lr,
        project=project,
        desc=f"icl-regression ({cfg.name})",
        progress=progress,
        every=max(1, cfg.steps // 200),
    )
    # -- measurements (float64, CPU) -------------------------------------------------------------
    ge = torch.Generator().manual_seed(seed + 13)
    tokens, y = sample_tasks(cfg.eval_tasks, d, N, generator=ge, dtype=torch.float64)
    target_mem = gd_direction(tokens)
    y_gd = gd_prediction(tokens, eta)
    results_models: dict[str, dict] = {}
    lsa64 = lsa.export()
    preds = {"lsa": lambda e: lsa64(e)[:, -1, 0]}
    structures = {"lsa": cubic_coefficients(lsa64, D, 0, N)}
    rnn_extra = {}
    for n, ens in rnns.items():
        for r in range(ens.K):
            name = f"gated_rnn_{n}" + (f"_seed{r}" if ens.K > 1 else "")
            rnn = ens.student(r)
            preds[name] = _last_token(rnn)
            structures[name] = rnn_cubic_coefficients(rnn, N)
            lam = rnn.lam.detach()
            pruned, keep = prune(rnn, cfg.prune_tol)
            with torch.no_grad():
                _, h_T = rnn(tokens, return_state=True)
                pruned_loss = float((pruned(tokens)[:, -1, 0] - y).pow(2).mean())
            rnn_extra[name] = {
                "n": n,
                "lambda": [float(v) for v in lam],
                "lambda_histogram": lambda_histogram(lam),
                "fraction_lambda_near_0_or_1": float(near_zero_or_one(lam, cfg.prune_tol).double().mean()),
                "n_lambda_near_1": int(((lam - 1).abs() <= cfg.prune_tol).sum()),
                "n_lambda_near_0": int((lam.abs() <= cfg.prune_tol).sum()),
                "pruned_loss": pruned_loss,
                "n_pruned": int((~keep).sum()),
                "probe_r2_gd_memory": _probe_r2(h_T, target_mem),
            }
    for cell, m in baselines.items():
        m64 = m.to(torch.float64).cpu().eval()
        preds[cell] = _last_token(m64, last_only=True)
        structures[cell] = cubic_coefficients(_seq_model(m64, lambda mod, e: mod(e, last_only=True)), D, 0, N)
        with torch.no_grad():
            hs = m64.rnn(tokens)[1]
            h_T = torch.cat([hs[0][-1], hs[1][-1]], dim=1) if isinstance(hs, tuple) else hs[-1]
        rnn_extra[cell] = {
            "probe_r2_gd_memory": _probe_r2(h_T, target_mem),
            "parameters": sum(p.numel() for p in m64.parameters()),
        }
    for name, predict in preds.items():
        rec = _metrics(predict, tokens, y, eta)
        rec["structure"] = _structure(structures[name], d, N, eta)
        rec.update(rnn_extra.get(name, {}))
        results_models[name] = rec
    zero = {
        "test_loss": float(y.pow(2).mean()),
        "pred_l2_to_gd": float(y_gd.pow(2).mean()),
        "grad_cosine_to_gd": 0.0,
    }
    gd = {
        "eta": eta,
        "test_loss": float((y_gd - y).pow(2).mean()),
        "line_search_tasks": cfg.line_search_tasks,
    }
    ood = _ood(cfg, preds, eta, seed)
    results = {
        "experiment": "icl-regression",
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "seed": seed,
        "device": device,
        "gd": gd,
        "zero_predictor": zero,
        "models": results_models,
        "construction_neurons": 2 * d,
        "ood": ood,
        "training": log.to_dict(),
    }
    results["training"]["model_names"] = (
        ["lsa"] + [f"gated_rnn_{n}#{r}" for n, e in rnns.items() for r in range(e.K)] + list(baselines)
    )
    results["targets"] = _targets(results, cfg)
    checkpoint = {
        "config": results["config"],
        "seed": seed,
        "eta": eta,
        "lsa": lsa.state_dict(),
        "gated": {str(n): ens.state_dict() for n, ens in rnns.items()},
        "baselines": {c: m.state_dict() for c, m in baselines.items()},
    }
    return results, checkpoint


def _ood(cfg: ICLConfig, preds: dict, eta: float, seed: int) -> dict:
    """Scaled inputs / task weights: each model's MSE relative to GD's (same η) and its distance to GD."""
    out = {}
    for which in ("x", "w"):
        for alpha in sorted({1.0, *cfg.ood_alphas}):  # alpha = 1: the same tasks' in-distribution reference
            g = torch.Generator().manual_seed(seed + 14)
            kw = {"alpha_x": alpha} if which == "x" else {"alpha_w": alpha}
            tokens, y = sample_tasks(
                min(cfg.eval_tasks, 4000), cfg.d, cfg.N, generator=g, dtype=torch.float64, **kw
            )
            y_gd = gd_prediction(tokens, eta)
            gd_mse = float((y_gd - y).pow(2).mean())
            rec = {"gd_test_loss": gd_mse, "zero_test_loss": float(y.pow(2).mean())}
            with torch.no_grad():
                for name, predict in preds.items():
                    y_hat = predict(tokens)
                    rec[name] = {
                        "test_loss": float((y_hat - y).pow(2).mean()),
                        "test_loss_over_gd": float((y_hat - y).pow(2).mean()) / gd_mse,
                        "pred_l2_to_gd_rel": float((y_hat - y_gd).pow(2).mean() / y_gd.pow(2).mean()),
                    }
            out[f"{which}*{alpha:g}"] = rec
    return out


def _targets(res: dict, cfg: ICLConfig) -> dict:
    t, gd, models = ICL_TARGETS, res["gd"], res["models"]
    out = {}
    lsa = models["lsa"]
    out["lsa_mse"] = {
        "value": lsa["test_loss"] / gd["test_loss"] - 1,
        "target": f"|rel| <= {t['lsa_mse_rel']}",
        "met": abs(lsa["test_loss"] / gd["test_loss"] - 1) <= t["lsa_mse_rel"],
    }
    out["lsa_cosine"] = {
        "value": lsa["grad_cosine_to_gd"],
        "target": f">= {t['lsa_cosine']}",
        "met": lsa["grad_cosine_to_gd"] >= t["lsa_cosine"],
    }
    n4 = t["rnn_size_factor"] * cfg.d
    names = [k for k in models if k.startswith(f"gated_rnn_{n4}")]
    if names:
        best = min(names, key=lambda k: models[k]["test_loss"])
        m = models[best]
        out["rnn_model"] = best
        out["rnn_mse"] = {
            "value": m["test_loss"] / gd["test_loss"] - 1,
            "target": f"<= {t['rnn_mse_rel']}",
            "met": m["test_loss"] / gd["test_loss"] - 1 <= t["rnn_mse_rel"],
        }
        out["rnn_pred_dist"] = {
            "value": m["pred_l2_to_gd"],
            "target": f"<= {t['rnn_pred_dist']}",
            "met": m["pred_l2_to_gd"] <= t["rnn_pred_dist"],
        }
        out["rnn_cosine"] = {
            "value": m["grad_cosine_to_gd"],
            "target": f">= {t['rnn_cosine']}",
            "met": m["grad_cosine_to_gd"] >= t["rnn_cosine"],
        }
    return out
