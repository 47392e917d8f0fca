r"""Experiment 1 of Zucchet et al. 2023: a gated RNN student imitates a linear self-attention teacher.

Protocol (the paper's numbers are not confirmed, ``docs/training_teacher_student.md`` justifies ours):
a random LSA teacher (one head, $d=d_k=d_v=4$, weights $\mathcal N(0,1/d)$, no output projection) maps
Gaussian sequences $x_t\sim\mathcal N(0,I_d)$, $T=16$, to $y_t=\sum_{s\le t}v_s k_s^\top q_t$. Students
(:class:`~equivalence.training.students.GatedRNNEnsemble`, hidden sizes around the construction's counts
$d(d+1)/2+d$ and $d_k(d_v+1)$, several seeds; output-gating width $m=d_\text{out}\,d$, the construction's)
are trained with Adam on the *normalised loss*

$$ \mathcal L = \frac{\mathbb E\,\|\hat y_t-y_t\|^2}{\mathbb E\,\|y_t\|^2}\quad\text{(mean over all time
steps)}, $$

fresh sequences every step. λ is kept in $[0,1]$ by projection (default) or parameterised by a sigmoid or
the LRU's $\exp(-\exp\nu)$ (ablations); LSTM and GRU students get the same data, loss and budget.

Then every student is exported as a float64 :class:`~constructions.rnn.GatedLinearRNN` and measured:
held-out loss, λ near $\{0,1\}$, loss after pruning the other neurons, loss on sequences
``length_factor`` × longer, number of λ≈1 neurons against $d(d+1)/2$ and $d_kd_v$, and the cubic
coefficient tensor read from the pruned student against the teacher's
:func:`~constructions.attention_tensor` (:mod:`equivalence.training.mechanism`).
"""

import math
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import Tensor

from constructions import (
    LinearSelfAttention,
    attention_tensor,
    num_neurons_compressed,
    num_neurons_direct,
    rnn_to_lsa,
)
from constructions.invariances import canonicalize
from constructions.registry import sample_lsa_params

from .mechanism import (
    cubic_coefficients,
    gate_block_fraction,
    lambda_histogram,
    near_zero_or_one,
    prune,
    relative_error,
    rnn_cubic_coefficients,
    snap_lambdas,
)
from .students import LAMBDA_PARAMETERISATIONS, GatedRNNEnsemble, RecurrentBaseline
from .trainer import fit

__all__ = [
    "TS_PRESETS",
    "TS_TARGETS",
    "TeacherStudentConfig",
    "preset",
    "run_teacher_student",
    "size_buckets",
    "well_below_sizes",
]


@dataclass(frozen=True)
class TeacherStudentConfig:
    """Sizes and budget of the teacher–student experiment (see the module docstring)."""

    name: str = "quick"
    d: int = 4
    heads: int = 1
    d_k: int = 4
    d_v: int = 4
    T: int = 16
    batch: int = 64
    steps: int = 6000
    lr: float = 3e-2
    init_scale: float = 0.5
    sizes: tuple[int, ...] = (4, 7, 10, 14, 17, 20, 28, 40)
    seeds: int = 2
    gates: int | None = None  # None: d_out * d, the compressed construction's output-gating width
    lam_init: tuple[float, float] = (0.5, 1.0)
    ablations: tuple[str, ...] = ("sigmoid", "lru")
    ablation_sizes: tuple[int, ...] = (28,)
    ablation_seeds: int = 1
    baselines: tuple[str, ...] = ("lstm", "gru")
    baseline_hidden: int = 32
    baseline_lr: float = 3e-3
    baseline_seeds: int = 1
    length_factor: int = 4
    eval_batch: int = 1024
    prune_tol: float = 0.1
    groups: int = (
        3  # at most this many batched ensembles per lambda kind (students padded to their group's largest)
    )

    def __post_init__(self):
        for k in (
            "d",
            "heads",
            "d_k",
            "d_v",
            "T",
            "batch",
            "steps",
            "seeds",
            "ablation_seeds",
            "baseline_hidden",
            "baseline_seeds",
            "length_factor",
            "eval_batch",
            "groups",
        ):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TeacherStudentConfig.{k} must be an int >= 1; got {v!r}")
        if self.T < 2:
            raise ValueError(
                f"T must be >= 2 (the attention term needs a query after a stored input); got {self.T}"
            )
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"sizes must be hidden sizes >= 1; got {self.sizes}")
        bad = [k for k in self.ablations if k not in LAMBDA_PARAMETERISATIONS or k == "clamp"]
        if bad:
            raise ValueError(f"ablations must be among ('sigmoid', 'lru'); got {bad}")
        bad = [b for b in self.baselines if b not in ("lstm", "gru")]
        if bad:
            raise ValueError(f"baselines must be among ('lstm', 'gru'); got {bad}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")

    @property
    def d_out(self) -> int:
        return self.heads * self.d_v

    @property
    def m(self) -> int:
        return self.gates if self.gates is not None else self.d_out * self.d

    @property
    def n_compressed(self) -> int:
        return num_neurons_compressed(self.d)

    @property
    def n_direct(self) -> int:
        return num_neurons_direct(self.heads, self.d_k, self.d_v)


#: ``smoke`` (verify's dev/ci profiles, seconds), ``quick`` (< 5 min on 2 cores), ``full`` (the figures)
TS_PRESETS = {
    # smoke: one ensemble (at these sizes each batched op costs its dispatch, not its arithmetic: 2.5x fewer
    # ops per step than three size buckets). 5,000 steps: with 2,000 or 3,500, seeds 1 and 4 missed the tensor
    # or length targets (docs/training_teacher_student.md)
    "smoke": TeacherStudentConfig(
        name="smoke",
        d=2,
        d_k=2,
        d_v=2,
        T=8,
        batch=32,
        steps=5000,
        sizes=(1, 2, 6, 10),
        seeds=3,
        ablations=(),
        baselines=(),
        eval_batch=256,
        groups=1,
    ),
    "quick": TeacherStudentConfig(),
    "full": TeacherStudentConfig(
        name="full",
        steps=12000,
        sizes=(2, 4, 6, 8, 10, 12, 14, 17, 20, 28, 40),
        seeds=3,
        ablation_sizes=(14, 28),
        ablation_seeds=2,
        baseline_seeds=2,
        baseline_hidden=64,
        eval_batch=4096,
    ),
}

#: the reference student is the smallest hidden size whose best seed is within this factor of the lowest loss
BEST_FACTOR = 10.0
#: "well below" the construction's size: n <= (d(d+1)/2 + d) // WELL_BELOW_DIVISOR (see well_below_sizes)
WELL_BELOW_DIVISOR = 3
#: the targets of the quick mode (measured on the reference student unless said otherwise)
TS_TARGETS = {
    "loss_at_or_above_compressed": 1e-3,
    "loss_well_below": 1e-2,
    "fraction_near": 0.75,
    "pruned_factor": 10.0,
    "pruned_floor": 1e-3,
    "long_loss": 1e-3,
    "tensor_rel_error": 0.02,
}


def well_below_sizes(cfg: "TeacherStudentConfig") -> list[int]:
    r"""The swept hidden sizes "well below" the compressed construction's $N_c = d(d+1)/2 + d$ neurons:
    $n \le \lfloor N_c/3\rfloor$ (derived, and measured: ``docs/training_teacher_student.md``). Why not half:
    $d+1$ neurons (a $\lambda=1$ counter of the constant input and $d$ query neurons) already represent the
    teacher's leading term $t\,W_V W_K^\top W_Q x_t$ (the mean of $\sum_{s\le t} x_sx_s^\top$ is $tI$), so a
    student just below $N_c$ misses only the fluctuation part, whose share of the output energy depends on the
    teacher; a third of $N_c$ is at most $d$ for $d\le4$ (too few neurons for that leading term). Measured at
    $d=2$: a 2-neuron student reached 6.8e-3 and 8.0e-3 on 2 of 10 teachers, 1 neuron 0.52–0.89 on all 10."""
    return [n for n in cfg.sizes if n * WELL_BELOW_DIVISOR <= cfg.n_compressed]


def size_buckets(sizes, max_groups: int = 3) -> list[list[int]]:
    r"""Split the sorted distinct hidden sizes into at most ``max_groups`` contiguous buckets minimising the
    padded work $\sum_\text{bucket} |\text{bucket}|\cdot\max(\text{bucket})$ (students of one
    :class:`GatedRNNEnsemble` are padded to its largest size). Exact dynamic programme."""
    xs = sorted({int(n) for n in sizes})
    G = max(1, min(max_groups, len(xs)))
    inf = float("inf")
    # best[g][i]: cost of the first i sizes in g buckets; cut[g][i]: start of the last bucket
    best = [[inf] * (len(xs) + 1) for _ in range(G + 1)]
    cut = [[0] * (len(xs) + 1) for _ in range(G + 1)]
    best[0][0] = 0.0
    for g in range(1, G + 1):
        for i in range(1, len(xs) + 1):
            for j in range(i):
                c = best[g - 1][j] + (i - j) * xs[i - 1]
                if c < best[g][i]:
                    best[g][i], cut[g][i] = c, j
    g = min(range(1, G + 1), key=lambda k: best[k][len(xs)])
    out, i = [], len(xs)
    while g > 0 and i > 0:
        j = cut[g][i]
        out.append(xs[j:i])
        i, g = j, g - 1
    return out[::-1]


def _student_seed(seed: int, kind: str, n: int, rep: int) -> int:
    return (seed * 1_000_003 + LAMBDA_PARAMETERISATIONS.index(kind) * 10_007 + rep * 1_009 + n) % (2**62)


def _norm_loss(y_hat: Tensor, y: Tensor, norm: float) -> float:
    return float(((y_hat.to(torch.float64) - y.to(torch.float64)) ** 2).mean()) / norm


@dataclass
class _Data:
    teacher64: LinearSelfAttention
    teacher: LinearSelfAttention
    x_eval: Tensor
    y_eval: Tensor
    x_long: Tensor
    y_long: Tensor
    norm: float
    norm_long: float
    tensor: Tensor
    extra: dict = field(default_factory=dict)


def _make_data(cfg: TeacherStudentConfig, seed: int, device: str) -> _Data:
    g = torch.Generator().manual_seed(seed)
    p = sample_lsa_params(cfg.d, cfg.heads, generator=g, d_k=cfg.d_k, d_v=cfg.d_v)
    teacher64 = p.lsa()
    teacher = LinearSelfAttention(*(w.to(device=device, dtype=torch.float32) for w in (p.W_Q, p.W_K, p.W_V)))
    ge = torch.Generator().manual_seed(seed + 1)
    x_eval = torch.randn(cfg.eval_batch, cfg.T, cfg.d, generator=ge, dtype=torch.float64)
    x_long = torch.randn(
        max(64, cfg.eval_batch // cfg.length_factor),
        cfg.T * cfg.length_factor,
        cfg.d,
        generator=ge,
        dtype=torch.float64,
    )
    y_eval, y_long = teacher64(x_eval), teacher64(x_long)
    return _Data(
        teacher64,
        teacher,
        x_eval,
        y_eval,
        x_long,
        y_long,
        float(y_eval.pow(2).mean()),
        float(y_long.pow(2).mean()),
        attention_tensor(teacher64),
    )


def _analyse_gated(rnn, data: _Data, cfg: TeacherStudentConfig) -> dict:
    """Every measurement of one exported student (float64, CPU)."""
    tol = cfg.prune_tol
    lam = rnn.lam.detach()
    pruned, keep = prune(rnn, tol)
    snapped = snap_lambdas(pruned, tol)
    L_long = cfg.T * cfg.length_factor - 1
    errs = {
        f"lag_{L}": relative_error(rnn_cubic_coefficients(pruned, L), data.tensor)
        for L in (1, cfg.T - 1, L_long)
    }
    with torch.no_grad():
        out = {
            "final_loss": _norm_loss(rnn(data.x_eval), data.y_eval, data.norm),
            "pruned_loss": _norm_loss(pruned(data.x_eval), data.y_eval, data.norm),
            "snapped_loss": _norm_loss(snapped(data.x_eval), data.y_eval, data.norm),
            "long_loss": _norm_loss(rnn(data.x_long), data.y_long, data.norm_long),
            "pruned_long_loss": _norm_loss(pruned(data.x_long), data.y_long, data.norm_long),
        }
    out.update(
        {
            "lambda": [float(v) for v in lam],
            "fraction_lambda_near_0_or_1": float(near_zero_or_one(lam, tol).to(torch.float64).mean()),
            "n_lambda_near_1": int(((lam - 1).abs() <= tol).sum()),
            "n_lambda_near_0": int((lam.abs() <= tol).sum()),
            "n_pruned": int((~keep).sum()),
            "recovered_attention_rel_error_by_lag": errs,
            "recovered_attention_rel_error": max(errs.values()),
            "gate_block_fraction": gate_block_fraction(pruned, tol),
        }
    )
    return out


def _baseline_metrics(model, data: _Data, cfg: TeacherStudentConfig) -> dict:
    m64 = model.to(torch.float64).cpu().eval()
    L_long = cfg.T * cfg.length_factor - 1
    with torch.no_grad():
        out = {
            "final_loss": _norm_loss(m64(data.x_eval), data.y_eval, data.norm),
            "long_loss": _norm_loss(m64(data.x_long), data.y_long, data.norm_long),
        }
    tensors = {L: cubic_coefficients(m64, cfg.d, 0, L) for L in (1, L_long)}
    errs = {f"lag_{L}": relative_error(t, data.tensor) for L, t in tensors.items()}
    out.update(
        {
            "recovered_attention_rel_error_by_lag": errs,
            "recovered_attention_rel_error": max(errs.values()),
            "recovered_tensor_lag_1": tensors[1].tolist(),
            "parameters": sum(p.numel() for p in m64.parameters()),
        }
    )
    return out


class _TeacherBatches:
    """The fresh training sequences of every step and the teacher's outputs on them, drawn for many steps
    at once: one ``randn`` and one teacher pass per block of steps instead of one per model and step (at
    these sizes each call costs its dispatch). The numbers are exactly those of per-step draws, in the same
    order (a CPU normal draw fills blocks of 16 values, so when every per-model draw is a multiple of 16
    values, one long draw split at those boundaries is bit-identical; otherwise it draws step by step)."""

    #: most values drawn at once (bounds the memory: inputs and outputs of a block, float32)
    MAX_BLOCK_VALUES = 1 << 22

    def __init__(self, teacher, shapes, generator: torch.Generator, steps: int, device: str):
        self.teacher, self.shapes, self.g, self.steps, self.device = teacher, shapes, generator, steps, device
        self.sizes = [math.prod(s) for s in shapes]
        per_step = max(1, sum(self.sizes))
        aligned = all(n % 16 == 0 for n in self.sizes)
        self.block = max(1, min(200, self.MAX_BLOCK_VALUES // per_step)) if aligned else 1
        self.start, self.pairs = 0, []

    def _draw(self, count: int) -> list[list[tuple[Tensor, Tensor]]]:
        T, d = self.shapes[0][-2], self.shapes[0][-1]
        if count == 1:
            xs = [torch.randn(*s, generator=self.g, device=self.device) for s in self.shapes]
            return [[(x, self.teacher(x.reshape(-1, T, d)).reshape(*x.shape[:-1], -1)) for x in xs]]
        flat = torch.randn(count, sum(self.sizes), generator=self.g, device=self.device)
        cols = []
        for piece, shape in zip(flat.split(self.sizes, dim=1), self.shapes):
            x = piece.reshape(count, *shape)
            y = self.teacher(x.reshape(-1, T, d)).reshape(*x.shape[:-1], -1)
            cols.append((x, y))
        return [[(x[i], y[i]) for x, y in cols] for i in range(count)]

    def at(self, step: int) -> list[tuple[Tensor, Tensor]]:
        """``(x, teacher(x))`` per model for ``step`` (steps are asked for in order, as :func:`fit` does)."""
        if not self.start <= step < self.start + len(self.pairs):
            if step != self.start + len(self.pairs):
                raise ValueError(
                    f"training batches are drawn in step order; step {step} was asked out of turn"
                )
            self.start, self.pairs = step, self._draw(min(self.block, max(1, self.steps - step)))
        return self.pairs[step - self.start]


def run_teacher_student(
    cfg: TeacherStudentConfig, *, seed: int = 0, device: str = "cpu", progress: bool = True
) -> tuple[dict, dict]:
    """Train and measure every student of ``cfg``. Returns ``(results, checkpoint)``: JSON-able results
    (fields listed in ``docs/training_teacher_student.md``) and the state dicts of all students."""
    if not isinstance(cfg, TeacherStudentConfig):
        raise TypeError(f"cfg must be a TeacherStudentConfig; got {type(cfg).__name__}")
    data = _make_data(cfg, seed, device)
    d, T, B = cfg.d, cfg.T, cfg.batch
    # -- models --------------------------------------------------------------------------------
    groups: dict[str, GatedRNNEnsemble] = {}
    plan = [("clamp", cfg.sizes, cfg.seeds)] + [
        (kind, cfg.ablation_sizes, cfg.ablation_seeds) for kind in cfg.ablations
    ]
    for kind, kind_sizes, n_seeds in plan:
        for i, bucket in enumerate(size_buckets(kind_sizes, cfg.groups)):
            s = [n for n in bucket for _ in range(n_seeds)]
            r = [r for _ in bucket for r in range(n_seeds)]
            groups[f"{kind}/{i}"] = GatedRNNEnsemble(
                s,
                d,
                cfg.d_out,
                cfg.m,
                lam_kind=kind,
                lam_init=cfg.lam_init,
                init_scale=cfg.init_scale,
                device=device,
                seeds=[_student_seed(seed, kind, n, j) for n, j in zip(s, r)],
            )
    baselines = {
        f"{cell}_{r}": RecurrentBaseline(
            cell,
            d,
            cfg.d_out,
            cfg.baseline_hidden,
            seed=_student_seed(seed, "clamp", 10_000 + i, r),
            device=device,
        )
        for i, cell in enumerate(cfg.baselines)
        for r in range(cfg.baseline_seeds)
    }
    params = [
        {"params": [p for m in groups.values() for p in m.parameters()], "lr": cfg.lr},
        {"params": [p for m in baselines.values() for p in m.parameters()], "lr": cfg.baseline_lr},
    ]
    g = torch.Generator(device=device).manual_seed(seed + 2)
    shapes = [(ens.K, B, T, d) for ens in groups.values()] + [(B, T, d)] * len(baselines)
    batches = _TeacherBatches(data.teacher, shapes, g, cfg.steps, device)

    def loss_fn(step: int) -> Tensor:
        pairs = batches.at(step)
        losses = []
        for ens, (x, y) in zip(groups.values(), pairs):
            losses.append(((ens(x) - y) ** 2).mean(dim=(1, 2, 3)) / data.norm)
        for model, (x, y) in zip(baselines.values(), pairs[len(groups) :]):
            losses.append((((model(x) - y) ** 2).mean() / data.norm)[None])
        return torch.cat(losses)

    def project() -> None:
        for ens in groups.values():
            ens.project_()

    log = fit(
        params,
        loss_fn,
        steps=cfg.steps,
        lr=cfg.lr,
        project=project,
        desc=f"teacher-student ({cfg.name})",
        progress=progress,
        every=max(1, cfg.steps // 200),
    )
    # -- measurements ---------------------------------------------------------------------------
    students = []
    for name, ens in groups.items():
        for k in range(ens.K):
            rec = {"kind": ens.lam_kind, "n": ens.sizes[k], "seed": ens.seeds[k]}
            rec.update(_analyse_gated(ens.student(k), data, cfg))
            students.append(rec)
    base = {}
    for name, model in baselines.items():
        base.setdefault(name.rsplit("_", 1)[0], []).append(_baseline_metrics(model, data, cfg))
    results = _summarise(cfg, seed, device, data, students, base, log.to_dict())
    results["best"]["figures"] = _best_figures(groups, results["best"], data, cfg)
    names = [f"{ens.lam_kind}[n={ens.sizes[k]}]#{k}" for ens in groups.values() for k in range(ens.K)] + list(
        baselines
    )
    results["training"]["model_names"] = names
    checkpoint = {
        "config": _config_dict(cfg),
        "seed": seed,
        "teacher": {"W_Q": data.teacher64.W_Q, "W_K": data.teacher64.W_K, "W_V": data.teacher64.W_V},
        "gated": {name: ens.state_dict() for name, ens in groups.items()},
        "gated_meta": {
            name: {
                "lam_kind": ens.lam_kind,
                "sizes": list(ens.sizes),
                "seeds": list(ens.seeds),
                "d": ens.d,
                "d_out": ens.d_out,
                "gates": ens.gates,
            }
            for name, ens in groups.items()
        },
        "baselines": {name: m.state_dict() for name, m in baselines.items()},
    }
    return results, checkpoint


def _best_figures(groups, best: dict, data: _Data, cfg: TeacherStudentConfig) -> dict:
    """Arrays the plots need for the reference student (its canonical pruned weights, the recovered tensor),
    and the outcome of the weight-level route :func:`~constructions.rnn_to_lsa` (recorded in
    ``best["rnn_to_lsa"]``): learned query neurons usually multiply two affine branches whose extra terms
    cancel downstream, which that exact structural reading rejects although the function is the attention."""
    for ens in groups.values():
        for k in range(ens.K):
            if ens.lam_kind == best["kind"] and ens.sizes[k] == best["n"] and ens.seeds[k] == best["seed"]:
                pruned, _ = prune(ens.student(k), cfg.prune_tol)
                canon = canonicalize(snap_lambdas(pruned, cfg.prune_tol))
                L = cfg.T * cfg.length_factor - 1
                # the weight-level route: exact structure within a loose tolerance, then the attention tensor
                try:
                    lsa = rnn_to_lsa(snap_lambdas(pruned, cfg.prune_tol), tol=1e-2)
                    structural = {
                        "ok": True,
                        "heads": lsa.heads,
                        "rel_error": relative_error(attention_tensor(lsa), data.tensor),
                    }
                except ValueError as e:
                    structural = {"ok": False, "reason": str(e)}
                best["rnn_to_lsa"] = structural
                return {
                    "canonical_pruned": {k2: v.tolist() for k2, v in canon.weights()._asdict().items()},
                    "recovered_tensor_lag": L,
                    "recovered_tensor": rnn_cubic_coefficients(pruned, L).tolist(),
                    "teacher_tensor": data.tensor.tolist(),
                }
    raise RuntimeError("best student not found among the trained ensembles")  # unreachable by construction


def _config_dict(cfg: TeacherStudentConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def _summarise(cfg, seed, device, data, students, base, log) -> dict:
    clamp = [s for s in students if s["kind"] == "clamp"]
    by_n = {n: [s for s in clamp if s["n"] == n] for n in cfg.sizes}
    lowest = min(clamp, key=lambda s: s["final_loss"])
    best_of = {n: min(s["final_loss"] for s in ss) for n, ss in by_n.items()}
    # the reference ("best") student: the smallest hidden size within BEST_FACTOR of the lowest loss, its best
    # seed.
    # Larger students fit the teacher as well but keep idle neurons whose lambda gets no gradient and stays at
    # its initial value; the per-student table and the histogram report them all.
    best_n = min(n for n in cfg.sizes if best_of[n] <= BEST_FACTOR * lowest["final_loss"])
    best = min(by_n[best_n], key=lambda s: s["final_loss"])
    at_or_above = [best_of[n] for n in cfg.sizes if n >= cfg.n_compressed]
    well_below = well_below_sizes(cfg)
    threshold = next(
        (
            n
            for n in sorted(cfg.sizes)
            if all(best_of[m] <= TS_TARGETS["loss_at_or_above_compressed"] for m in cfg.sizes if m >= n)
        ),
        None,
    )
    lam_best_n = torch.tensor([v for s in by_n[best["n"]] for v in s["lambda"]], dtype=torch.float64)
    hist = {"clamp": lambda_histogram(lam_best_n), "clamp_n": best["n"]}
    for kind in cfg.ablations:
        lam = torch.tensor(
            [v for s in students if s["kind"] == kind for v in s["lambda"]], dtype=torch.float64
        )
        hist[kind] = lambda_histogram(lam)
    t = TS_TARGETS
    targets = {
        "loss_at_or_above_compressed": {
            "value": max(at_or_above) if at_or_above else None,
            "target": f"<= {t['loss_at_or_above_compressed']}",
        },
        "loss_well_below": {
            "value": min(best_of[n] for n in well_below) if well_below else None,
            "sizes": well_below,
            "target": f">= {t['loss_well_below']}",
        },
        "fraction_near": {"value": best["fraction_lambda_near_0_or_1"], "target": f">= {t['fraction_near']}"},
        "pruned": {
            "value": best["pruned_loss"],
            "target": f"<= max({t['pruned_factor']} x {best['final_loss']:.3g}, {t['pruned_floor']})",
        },
        "long_loss": {"value": best["long_loss"], "target": f"<= {t['long_loss']}"},
        "tensor_rel_error": {
            "value": best["recovered_attention_rel_error"],
            "target": f"<= {t['tensor_rel_error']}",
        },
    }
    targets["loss_at_or_above_compressed"]["met"] = (
        targets["loss_at_or_above_compressed"]["value"] is not None
        and targets["loss_at_or_above_compressed"]["value"] <= t["loss_at_or_above_compressed"]
    )
    targets["loss_well_below"]["met"] = (
        targets["loss_well_below"]["value"] is not None
        and targets["loss_well_below"]["value"] >= t["loss_well_below"]
    )
    targets["fraction_near"]["met"] = best["fraction_lambda_near_0_or_1"] >= t["fraction_near"]
    targets["pruned"]["met"] = best["pruned_loss"] <= max(
        t["pruned_factor"] * best["final_loss"], t["pruned_floor"]
    )
    targets["long_loss"]["met"] = best["long_loss"] <= t["long_loss"]
    targets["tensor_rel_error"]["met"] = best["recovered_attention_rel_error"] <= t["tensor_rel_error"]
    return {
        "experiment": "teacher-student",
        "config": _config_dict(cfg),
        "seed": seed,
        "device": device,
        "construction_counts": {
            "compressed": cfg.n_compressed,
            "direct": cfg.n_direct,
            "memory_compressed": cfg.d * (cfg.d + 1) // 2,
            "memory_direct": cfg.heads * cfg.d_k * cfg.d_v,
        },
        "teacher": {
            "output_mean_square": data.norm,
            "output_mean_square_long": data.norm_long,
            "attention_tensor_norm": float(data.tensor.norm()),
        },
        "hidden_sizes": list(cfg.sizes),
        "seeds": list(range(cfg.seeds)),
        "final_loss": [[s["final_loss"] for s in by_n[n]] for n in cfg.sizes],
        "best_loss_per_size": [best_of[n] for n in cfg.sizes],
        "threshold_hidden_size": threshold,
        "best": dict(best),
        "best_rule": f"smallest hidden size whose best seed reaches <= {BEST_FACTOR:g} x the lowest loss of "
        "all students",
        "well_below_rule": f"n <= (d(d+1)/2 + d) // {WELL_BELOW_DIVISOR} = "
        f"{cfg.n_compressed // WELL_BELOW_DIVISOR}",
        "lowest_loss_student": {k: v for k, v in lowest.items() if k != "lambda"},
        "lambda_histogram": hist,
        "fraction_lambda_near_0_or_1": best["fraction_lambda_near_0_or_1"],
        "pruned_loss": best["pruned_loss"],
        "long_loss": best["long_loss"],
        "recovered_attention_rel_error": best["recovered_attention_rel_error"],
        "n_lambda_near_1": best["n_lambda_near_1"],
        "ablations": {kind: [s for s in students if s["kind"] == kind] for kind in cfg.ablations},
        "lstm": _baseline_summary(base.get("lstm")),
        "gru": _baseline_summary(base.get("gru")),
        "students": clamp,
        "targets": targets,
        "training": log,
    }


def _baseline_summary(runs: list[dict] | None) -> dict | None:
    if not runs:
        return None
    return {
        "final_loss": [r["final_loss"] for r in runs],
        "long_loss": [r["long_loss"] for r in runs],
        "recovered_tensor_lag_1": runs[0]["recovered_tensor_lag_1"],
        "recovered_attention_rel_error": [r["recovered_attention_rel_error"] for r in runs],
        "parameters": runs[0]["parameters"],
        "runs": [{k: v for k, v in r.items() if k != "recovered_tensor_lag_1"} for r in runs],
    }


def preset(name: str, **overrides) -> TeacherStudentConfig:
    """A preset of :data:`TS_PRESETS` with fields replaced (``ValueError`` for an unknown name)."""
    if name not in TS_PRESETS:
        raise ValueError(f"unknown teacher-student preset {name!r}; expected one of {sorted(TS_PRESETS)}")
    return replace(TS_PRESETS[name], **overrides)
