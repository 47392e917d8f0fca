"""The report's "Learned" section: training checks turned into claims (status ``empirical`` or
``not-supported``, never ``proved``: a trained network is evidence about what gradient descent finds, not a
proof).

What ``verify`` runs, per profile (documented in ``docs/training_teacher_student.md``):

========== ============================================ ===========================================
profile    teacher–student                              in-context regression
========== ============================================ ===========================================
dev, ci    ``smoke`` preset (d=2, seconds)              ``smoke`` preset (d=3, N=6, seconds)
thorough   ``quick`` preset (d=4, quick-mode targets)   ``quick`` preset (d=N=10, quick-mode targets)
========== ============================================ ===========================================

The smoke presets train the same models with the same code on smaller problems and are held to the same
numeric targets, so a regression in the training code or the analyses fails ``verify`` in CI; the figures
of the documentation come from ``train-check --mode full``. The section runs only when one of the paper's
LSA constructions (``lsa-direct``, ``lsa-compressed``) is among the verified variants.
"""

import os
import tempfile
import time
from pathlib import Path

import torch

from ..claims import ClaimResult
from ..report.staging import stage_for
from . import artifacts
from .icl_regression import icl_preset, run_icl_regression
from .teacher_student import preset, run_teacher_student

__all__ = [
    "EXPERIMENTS",
    "MODES",
    "PROFILE_MODES",
    "claims_from_icl",
    "claims_from_teacher_student",
    "rerun_claim",
    "run_experiment",
    "verify_section",
]

EXPERIMENTS = ("teacher-student", "icl-regression")
MODES = ("smoke", "quick", "full")
PROFILE_MODES = {"dev": "smoke", "ci": "smoke", "thorough": "quick"}
LSA_VARIANTS = ("lsa-direct", "lsa-compressed")


TS_TITLE = "Experiment 1: teacher–student (Zucchet et al. 2023)"
ICL_TITLE = "Experiment 2: in-context linear regression (Zucchet et al. 2023)"
_TS_TARGET_LABELS = {
    "loss_at_or_above_compressed": "worst best-of-seeds loss at n >= d(d+1)/2+d",
    "loss_well_below": "lowest loss well below the construction's size",
    "fraction_near": "fraction of lambda within 0.1 of {0, 1} (reference student)",
    "pruned": "loss after pruning the other neurons",
    "long_loss": "loss on sequences 4x longer than trained on",
    "tensor_rel_error": "recovered attention tensor: relative error to the teacher's",
}
_ICL_TARGET_LABELS = {
    "lsa_mse": "LSA: test MSE / GD's - 1",
    "lsa_cosine": "LSA: cosine of d y/d x_test with GD's",
    "rnn_mse": "gated RNN (n = 4d): test MSE / GD's - 1",
    "rnn_pred_dist": "gated RNN (n = 4d): mean (y - y_GD)^2",
    "rnn_cosine": "gated RNN (n = 4d): cosine of d y/d x_test with GD's",
}


def _status(ok: bool) -> str:
    return "empirical" if ok else "not-supported"


def _table(title: str, columns: list[str], rows: list[list]) -> dict:
    """A table for the report's Learned section: cells are numbers, strings, lists of numbers or None."""
    return {"title": title, "columns": columns, "rows": rows}


def _targets_table(targets: dict, labels: dict, keys) -> dict:
    rows = []
    for k in keys:
        t = targets.get(k)
        if isinstance(t, dict):
            req = t["target"] + (f" (n in {t['sizes']})" if k == "loss_well_below" and "sizes" in t else "")
            rows.append([labels.get(k, k), t["value"], req, "yes" if t["met"] else "NO"])
    return _table(
        "Targets of the quick mode (the smoke mode is held to the same)",
        ["measurement", "measured", "required", "met"],
        rows,
    )


def _figure_captions(figs: list[str]) -> dict:
    from .plots import FIGURE_CAPTIONS  # lazy: matplotlib loads only when figures are captioned

    return {f: FIGURE_CAPTIONS[f] for f in figs if f in FIGURE_CAPTIONS}


def _ts_tables(res: dict) -> tuple[list[dict], list[dict]]:
    """Tables of the two teacher–student claims: (loss vs hidden size, mechanism and baselines)."""
    cfg, cc, t, best = res["config"], res["construction_counts"], res["targets"], res["best"]
    well = set(t["loss_well_below"].get("sizes", []))
    rows = []
    for n, losses, b in zip(res["hidden_sizes"], res["final_loss"], res["best_loss_per_size"]):
        st = min((s for s in res["students"] if s["n"] == n), key=lambda s: s["final_loss"])
        region = "well below" if n in well else ">= d(d+1)/2+d" if n >= cc["compressed"] else "below"
        rows.append([n, b, losses, f"{st['n_lambda_near_1']} / {st['n_lambda_near_0']}", region])
    size_table = _table(
        f"Normalised test loss vs hidden size n (d(d+1)/2+d = {cc['compressed']}, d_k(d_v+1) = "
        f"{cc['direct']}; "
        f"threshold observed: n = {res['threshold_hidden_size']})",
        [
            "n",
            "best loss",
            f"loss per seed ({cfg['seeds']} seeds)",
            "lambda~1 / lambda~0 (best seed)",
            "region",
        ],
        rows,
    )
    L = cfg["T"] * cfg["length_factor"]
    mech = _table(
        f"Reference student: n = {best['n']}, seed {best['seed']} ({res.get('best_rule', '')})",
        ["measurement", "value", "construction"],
        [
            ["normalised loss", best["final_loss"], "0"],
            ["fraction of lambda within 0.1 of {0, 1}", best["fraction_lambda_near_0_or_1"], "1"],
            [
                "neurons at lambda~1 (memories)",
                best["n_lambda_near_1"],
                f"{cc['memory_compressed']} = d(d+1)/2 (compressed), {cc['memory_direct']} = d_k d_v "
                "(direct)",
            ],
            [
                "neurons at lambda~0 (queries)",
                best["n_lambda_near_0"],
                f"{cfg['d']} = d (compressed), {cfg['d_k']} = d_k (direct)",
            ],
            [
                "loss after pruning the other neurons",
                best["pruned_loss"],
                f"{best.get('n_pruned', 0)} neurons pruned",
            ],
            ["... and snapping the kept lambda to exactly 0 or 1", best["snapped_loss"], ""],
            [f"loss on sequences of length {L} (trained on {cfg['T']})", best["long_loss"], "0"],
            [
                "recovered attention tensor: worst relative error over lags",
                best["recovered_attention_rel_error"],
                ", ".join(
                    f"{k.replace('_', ' ')}: {v:.3g}"
                    for k, v in best["recovered_attention_rel_error_by_lag"].items()
                ),
            ],
        ],
    )
    comp = [
        [
            f"gated RNN, lambda in [0,1] (n = {best['n']})",
            best["final_loss"],
            best["long_loss"],
            best["recovered_attention_rel_error"],
            best["pruned_loss"],
        ]
    ]
    for kind, runs in res.get("ablations", {}).items():
        for r in runs:
            label = "lambda = sigmoid(nu)" if kind == "sigmoid" else "lambda = exp(-exp(nu)) (LRU)"
            comp.append(
                [
                    f"gated RNN, {label} (n = {r['n']})",
                    r["final_loss"],
                    r["long_loss"],
                    r["recovered_attention_rel_error"],
                    r["pruned_loss"],
                ]
            )
    for cell in ("lstm", "gru"):
        b = res.get(cell)
        if b:
            r = min(b["runs"], key=lambda r: r["final_loss"])
            comp.append(
                [
                    f"{cell.upper()} ({cfg['baseline_hidden']} units, best of {len(b['runs'])})",
                    r["final_loss"],
                    r["long_loss"],
                    r["recovered_attention_rel_error"],
                    None,
                ]
            )
    comparison = _table(
        "Students side by side (same teacher, data, loss and steps)",
        ["student", "normalised loss", f"loss at length {L}", "attention tensor rel. error", "pruned loss"],
        comp,
    )
    return [size_table], [mech, comparison]


def _icl_tables(res: dict) -> tuple[list[dict], list[dict]]:
    """Tables of the two in-context regression claims: (LSA vs GD, every model vs GD)."""
    gd, zero, models = res["gd"], res["zero_predictor"], res["models"]
    cols = ["model", "test MSE", "MSE / GD's - 1", "mean (y - y_GD)^2", "grad cosine to GD", "eta_eff"]

    def row(name, m):
        return [
            name,
            m["test_loss"],
            m["test_loss"] / gd["test_loss"] - 1,
            m["pred_l2_to_gd"],
            m["grad_cosine_to_gd"],
            (m.get("structure") or {}).get("eta_effective"),
        ]

    head = [[f"one GD step (eta = {gd['eta']:.4g}, line search)", gd["test_loss"], 0.0, 0.0, 1.0, gd["eta"]]]
    tail = [row("zero predictor (ignores the context)", zero)]
    lsa = _table("LSA against one step of gradient descent", cols, head + [row("lsa", models["lsa"])] + tail)
    order = sorted(
        models,
        key=lambda k: (
            0 if k == "lsa" else 1 if k.startswith("gated") else 2,
            int(k.split("_")[2]) if k.startswith("gated_rnn_") else 0,
            k,
        ),
    )
    rows = []
    for k in order:
        m = models[k]
        r = row(k, m) + [
            m.get("probe_r2_gd_memory"),
            f"{m['n_lambda_near_1']} / {m['n_lambda_near_0']}" if "n_lambda_near_1" in m else None,
        ]
        rows.append(r)
    every = _table(
        f"Every model against one GD step ({res['config']['eval_tasks']} held-out tasks; the GD solution "
        f"needs 2d = {res['construction_neurons']} neurons)",
        cols + ["probe R^2 of GD memory", "lambda~1 / lambda~0"],
        [h + [None, None] for h in head] + rows + [t + [None, None] for t in tail],
    )
    return [lsa], [every]


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def claims_from_teacher_student(res: dict) -> list[ClaimResult]:
    """Two claims from a teacher–student result: the loss threshold and the mechanism of the best student."""
    cfg, t, best = res["config"], res["targets"], res["best"]
    cc = res["construction_counts"]
    mode, seed, secs = res.get("mode", "?"), res["seed"], res.get("seconds", 0.0)
    figs = res.get("figures", [])
    rerun = {
        "command": "train-check",
        "module": __name__,
        "experiment": "teacher-student",
        "mode": mode,
        "seed": seed,
        "device": res.get("device", "cpu"),
    }
    sizes = {
        "d": cfg["d"],
        "heads": cfg["heads"],
        "d_k": cfg["d_k"],
        "d_v": cfg["d_v"],
        "T": cfg["T"],
        "steps": cfg["steps"],
        "seeds": cfg["seeds"],
        "hidden_sizes": res["hidden_sizes"],
    }
    loss_ok = t["loss_at_or_above_compressed"]["met"] and t["loss_well_below"]["met"]
    size_tables, mech_tables = _ts_tables(res)
    keys1, keys2 = (
        ("loss_at_or_above_compressed", "loss_well_below"),
        ("fraction_near", "pruned", "long_loss", "tensor_rel_error"),
    )
    shared = {
        "experiment": TS_TITLE,
        "figures": figs,
        "figure_captions": _figure_captions(figs),
        "results": "train-teacher-student.json",
        **({"checkpoint": res["checkpoint"]} if res.get("checkpoint") else {}),
    }
    base = {cell: min(res[cell]["final_loss"]) for cell in ("lstm", "gru") if res.get(cell)}
    c1 = ClaimResult(
        id="TRAIN-TS-LOSS-THRESHOLD/v1",
        kind="learned",
        status=_status(loss_ok),
        construction="lsa-compressed",
        tier=f"training ({mode})",
        sizes=sizes,
        seconds=secs,
        rerun=rerun | {"claim": "TRAIN-TS-LOSS-THRESHOLD/v1"},
        title="Teacher-student: gated RNN students reach the LSA teacher above the construction's size",
        statement=(
            f"Gated RNN students (lambda projected onto [0,1], Adam, {cfg['steps']} steps, mode '{mode}', "
            f"seed {seed}) "
            f"trained on a random LSA teacher (d={cfg['d']}, d_k={cfg['d_k']}, d_v={cfg['d_v']}, "
            f"T={cfg['T']}) reach "
            f"a normalised test loss <= 1e-3 at every hidden size n >= d(d+1)/2+d = {cc['compressed']} (best "
            "of "
            f"{cfg['seeds']} seeds) and stay >= 1e-2 well below it (at the swept sizes n <= (d(d+1)/2+d)//3 "
            "= "
            f"{cc['compressed'] // 3}: {t['loss_well_below'].get('sizes')})."
        ),
        evidence={
            "best_loss_per_size": dict(zip(map(str, res["hidden_sizes"]), res["best_loss_per_size"])),
            "max_loss_at_or_above_compressed": t["loss_at_or_above_compressed"]["value"],
            "min_loss_well_below": t["loss_well_below"]["value"],
            "threshold_hidden_size": res["threshold_hidden_size"],
            **{f"{k}_loss": v for k, v in base.items()},
            **shared,
            "tables": [_targets_table(t, _TS_TARGET_LABELS, keys1), *size_tables],
        },
        message=""
        if loss_ok
        else "loss targets not met: "
        + ", ".join(
            f"{k}={_fmt(t[k]['value'])} (target {t[k]['target']})"
            for k in ("loss_at_or_above_compressed", "loss_well_below")
            if not t[k]["met"]
        ),
    )
    keys = keys2
    mech_ok = all(t[k]["met"] for k in keys)
    c2 = ClaimResult(
        id="TRAIN-TS-DISCOVERS-CONSTRUCTION/v1",
        kind="learned",
        status=_status(mech_ok),
        construction="lsa-compressed",
        tier=f"training ({mode})",
        sizes=sizes | {"best_n": best["n"]},
        seconds=secs,
        rerun=rerun | {"claim": "TRAIN-TS-DISCOVERS-CONSTRUCTION/v1"},
        title="Teacher-student: the trained student implements the attention construction (empirical)",
        statement=(
            f"The reference student (n={best['n']}: {res.get('best_rule', 'best student')}) implements the "
            f"construction: >= 75% of its lambdas lie "
            f"within 0.1 of {{0,1}}; removing the other neurons keeps the loss <= max(10x unpruned, 1e-3); "
            "its loss "
            f"on sequences {cfg['length_factor']}x longer than trained on is <= 1e-3; and the cubic "
            "coefficient "
            "tensor read from the pruned student (the function-level invariant y_t = sum_s T(x_s, x_s, "
            "x_t)) is "
            "within 2% of the teacher's symmetrised attention tensor at lags 1 to "
            f"{cfg['T'] * cfg['length_factor'] - 1}."
        ),
        evidence={
            "final_loss": best["final_loss"],
            "fraction_lambda_near_0_or_1": best["fraction_lambda_near_0_or_1"],
            "pruned_loss": best["pruned_loss"],
            "snapped_loss": best["snapped_loss"],
            "long_loss": best["long_loss"],
            "recovered_attention_rel_error": best["recovered_attention_rel_error"],
            "n_lambda_near_1": best["n_lambda_near_1"],
            "n_lambda_near_0": best["n_lambda_near_0"],
            "memory_neurons_compressed": cc["memory_compressed"],
            "memory_neurons_direct": cc["memory_direct"],
            "gate_block_fraction": best["gate_block_fraction"],
            **shared,
            "tables": [_targets_table(t, _TS_TARGET_LABELS, keys2), *mech_tables],
        },
        message=""
        if mech_ok
        else "mechanism targets not met: "
        + ", ".join(f"{k}={_fmt(t[k]['value'])} (target {t[k]['target']})" for k in keys if not t[k]["met"]),
    )
    return [c1, c2]


def claims_from_icl(res: dict) -> list[ClaimResult]:
    """Two claims from an in-context regression result: LSA ≈ one GD step, gated RNN (n = 4d) ≈ one GD
    step."""
    cfg, t, gd, models = res["config"], res["targets"], res["gd"], res["models"]
    mode, seed, secs = res.get("mode", "?"), res["seed"], res.get("seconds", 0.0)
    figs = res.get("figures", [])
    rerun = {
        "command": "train-check",
        "module": __name__,
        "experiment": "icl-regression",
        "mode": mode,
        "seed": seed,
        "device": res.get("device", "cpu"),
    }
    sizes = {"d": cfg["d"], "N": cfg["N"], "steps": cfg["steps"], "eval_tasks": cfg["eval_tasks"]}
    setup = (
        f"in-context linear regression (von Oswald et al. 2023 protocol, d={cfg['d']}, N={cfg['N']}, "
        f"{cfg['steps']} Adam steps, mode '{mode}', seed {seed}; {cfg['eval_tasks']} held-out tasks)"
    )
    lsa = models["lsa"]
    ok1 = t["lsa_mse"]["met"] and t["lsa_cosine"]["met"]
    common = {
        "gd_eta": gd["eta"],
        "gd_test_loss": gd["test_loss"],
        "zero_predictor_test_loss": res["zero_predictor"]["test_loss"],
        "zero_predictor_pred_l2_to_gd": res["zero_predictor"]["pred_l2_to_gd"],
        "figures": figs,
        "figure_captions": _figure_captions(figs),
        "experiment": ICL_TITLE,
        "results": "train-icl-regression.json",
        **({"checkpoint": res["checkpoint"]} if res.get("checkpoint") else {}),
    }
    lsa_tables, all_tables = _icl_tables(res)
    c1 = ClaimResult(
        id="TRAIN-ICL-LSA-IS-GD/v1",
        kind="learned",
        status=_status(ok1),
        construction="lsa-direct",
        tier=f"training ({mode})",
        sizes=sizes,
        seconds=secs,
        rerun=rerun | {"claim": "TRAIN-ICL-LSA-IS-GD/v1"},
        title="In-context regression: trained linear self-attention implements one step of gradient descent",
        statement=(
            f"On {setup}, trained LSA's test MSE is within 1% of one GD step's (eta by line search) and the "
            f"cosine of its gradient with respect to x_test with GD's is >= 0.995 on average."
        ),
        evidence={
            "test_loss": lsa["test_loss"],
            "pred_l2_to_gd": lsa["pred_l2_to_gd"],
            "grad_cosine_to_gd": lsa["grad_cosine_to_gd"],
            "eta_effective": lsa["structure"]["eta_effective"],
            "tensor_rel_error_to_gd": lsa["structure"]["tensor_rel_error_to_gd"],
            **common,
            "tables": [_targets_table(t, _ICL_TARGET_LABELS, ("lsa_mse", "lsa_cosine")), *lsa_tables],
        },
        message=""
        if ok1
        else "targets not met: "
        + ", ".join(
            f"{k}={_fmt(t[k]['value'])} (target {t[k]['target']})"
            for k in ("lsa_mse", "lsa_cosine")
            if not t[k]["met"]
        ),
    )
    out = [c1]
    if "rnn_model" in t:
        name = t["rnn_model"]
        m = models[name]
        ok2 = all(t[k]["met"] for k in ("rnn_mse", "rnn_pred_dist", "rnn_cosine"))
        others = {
            k: {
                "test_loss": v["test_loss"],
                "pred_l2_to_gd": v["pred_l2_to_gd"],
                "grad_cosine_to_gd": v["grad_cosine_to_gd"],
            }
            for k, v in models.items()
            if k not in ("lsa", name)
        }
        out.append(
            ClaimResult(
                id="TRAIN-ICL-GATED-RNN-IS-GD/v1",
                kind="learned",
                status=_status(ok2),
                construction="lsa-direct",
                tier=f"training ({mode})",
                sizes=sizes | {"n": m["n"]},
                seconds=secs,
                rerun=rerun | {"claim": "TRAIN-ICL-GATED-RNN-IS-GD/v1"},
                title="In-context regression: the trained gated RNN implements one step of gradient descent",
                statement=(
                    f"On {setup}, the trained gated RNN with n = 4d = {m['n']} neurons has a test MSE within "
                    "5% of one "
                    "GD step's, a mean squared distance of its predictions to GD's <= 0.02 and a gradient "
                    "cosine with "
                    f"GD's >= 0.98; its state linearly encodes the GD memory (1/N) sum_i y_i x_i (probe R^2)."
                ),
                evidence={
                    "test_loss": m["test_loss"],
                    "pred_l2_to_gd": m["pred_l2_to_gd"],
                    "grad_cosine_to_gd": m["grad_cosine_to_gd"],
                    "probe_r2_gd_memory": m["probe_r2_gd_memory"],
                    "n_lambda_near_1": m["n_lambda_near_1"],
                    "n_lambda_near_0": m["n_lambda_near_0"],
                    "eta_effective": m["structure"]["eta_effective"],
                    "tensor_rel_error_to_gd": m["structure"]["tensor_rel_error_to_gd"],
                    "other_models": others,
                    **common,
                    "tables": [
                        _targets_table(t, _ICL_TARGET_LABELS, ("rnn_mse", "rnn_pred_dist", "rnn_cosine")),
                        *all_tables,
                    ],
                },
                message=""
                if ok2
                else "targets not met: "
                + ", ".join(
                    f"{k}={_fmt(t[k]['value'])} (target {t[k]['target']})"
                    for k in ("rnn_mse", "rnn_pred_dist", "rnn_cosine")
                    if not t[k]["met"]
                ),
            )
        )
    return out


def run_experiment(
    experiment: str,
    mode: str,
    *,
    seed: int = 0,
    device: str = "cpu",
    out: Path | None = None,
    progress: bool = True,
    steps: int | None = None,
) -> dict:
    """Run one experiment in one mode; write its JSON, figures and checkpoint into ``out`` (if given) and
    return the results (with ``figures``, ``checkpoint`` and ``all_targets_met``)."""
    from . import plots  # lazy: matplotlib loads only when an experiment runs (not for the section's claims)

    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}; got {experiment!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    overrides = {} if steps is None else {"steps": steps}
    t0 = time.perf_counter()
    if experiment == "teacher-student":
        res, ckpt = run_teacher_student(
            preset(mode, **overrides), seed=seed, device=device, progress=progress
        )
        plot, stem = plots.plot_teacher_student, "train-teacher-student"
    else:
        res, ckpt = run_icl_regression(
            icl_preset(mode, **overrides), seed=seed, device=device, progress=progress
        )
        plot, stem = plots.plot_icl_regression, "train-icl-regression"
    res["mode"] = mode
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if os.environ.get("SOURCE_DATE_EPOCH") is not None:  # reproducible bytes: no run times (as in the report)
        res["seconds"] = 0.0
        res["training"]["seconds"] = 0.0
        res["timings"] = "omitted"
    res["torch_threads"] = torch.get_num_threads()
    res["all_targets_met"] = all(t["met"] for t in res["targets"].values() if isinstance(t, dict))
    if out is not None:
        out = Path(out)
        res["figures"] = plot(res, out)
        res["checkpoint"] = artifacts.save_checkpoint(out / f"{stem}.pt", ckpt).name
        artifacts.write_json(out / f"{stem}.json", res)
    return res


def _run_claims(
    experiment: str, mode: str, *, seed: int, device: str, out: Path, progress: bool
) -> list[ClaimResult]:
    """Run one experiment single-threaded (deterministic on CPU, and fast: see ``train-check --threads``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_experiment(experiment, mode, seed=seed, device=device, out=out, progress=progress)
    finally:
        torch.set_num_threads(threads)
    return (claims_from_teacher_student if experiment == "teacher-student" else claims_from_icl)(res)


def rerun_claim(rerun: dict, *, out: Path | None = None) -> ClaimResult:
    """Re-run a training claim from its ``rerun`` record (``check-certificate``): the same experiment, mode,
    seed and device, single-threaded, writing its artifacts into ``out`` (default: a temporary folder,
    deleted). On CPU the result is bitwise reproducible on the same machine and library versions (and so
    are the JSON, figures and checkpoint under ``SOURCE_DATE_EPOCH``); elsewhere the numbers may differ in
    the last digits."""
    for key in ("experiment", "mode", "seed"):
        if key not in rerun:
            raise ValueError(f"training rerun record lacks {key!r}: {rerun}")
    with tempfile.TemporaryDirectory(prefix="train-check-") as tmp:
        claims = _run_claims(
            rerun["experiment"],
            rerun["mode"],
            seed=int(rerun["seed"]),
            device=rerun.get("device", "cpu"),
            out=Path(out) if out is not None else Path(tmp),
            progress=False,
        )
    wanted = rerun.get("claim")
    for c in claims:
        if wanted is None or c.id == wanted:
            return c
    raise ValueError(f"the re-run of {rerun['experiment']} produced no claim {wanted!r}")


def verify_section(variants, args) -> list[ClaimResult]:
    """The "Learned" section of ``verify``: run the training checks for ``args.profile`` and return claims.

    ``args`` carries ``profile`` (``None`` means ``ci``), ``device``, ``seed``, ``out`` (the report folder:
    the JSON results, figures and checkpoints are written into its staging folder,
    :func:`equivalence.report.staging.stage_for`, and swapped in with the report) and ``no_progress``.
    """
    names = {getattr(v, "name", "") for v in variants}
    if not names & set(LSA_VARIANTS):
        return []
    profile = getattr(args, "profile", None) or "ci"
    if profile not in PROFILE_MODES:
        raise ValueError(f"profile must be one of {sorted(PROFILE_MODES)}; got {profile!r}")
    mode = PROFILE_MODES[profile]
    device = getattr(args, "device", "cpu") or "cpu"
    seed = int(getattr(args, "seed", 0) or 0)
    # the artifacts go into the report set's staging folder: swapped into --out with the report, never before
    out = stage_for(Path(getattr(args, "out", "reports")))
    progress = not getattr(args, "no_progress", False)
    claims: list[ClaimResult] = []
    for experiment in ("teacher-student", "icl-regression"):
        try:
            claims.extend(_run_claims(experiment, mode, seed=seed, device=device, out=out, progress=progress))
        except (RuntimeError, FloatingPointError) as e:
            claims.append(
                ClaimResult(
                    id=f"TRAIN-{experiment.upper()}-RUN/v1",
                    kind="learned",
                    status="error",
                    tier=f"training ({mode})",
                    title=f"{experiment}: the training check crashed",
                    statement=f"train-check {experiment} --mode {mode}",
                    message=f"{type(e).__name__}: {e}",
                )
            )
    return claims
