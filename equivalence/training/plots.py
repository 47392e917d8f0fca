"""Figures of the training checks, drawn from the results dictionaries only (so they can be redrawn from
the JSON files) with matplotlib's Agg backend and written atomically as PNG and SVG, with byte-stable
output (no software/date metadata, a fixed SVG hash salt:
:func:`~equivalence.training.artifacts.write_figure`).
Each ``plot_*`` function returns the file names, each PNG followed by its SVG.

Teacher–student (Zucchet et al. 2023, Experiment 1): loss vs hidden size, λ histogram, pruning and length
generalisation, recovered attention tensor vs the teacher's, block structure of the canonicalised student,
training curves. In-context regression (Experiment 2): test loss, alignment with one GD step,
out-of-distribution scaling, recovered coefficient matrices, training curves.
"""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; byte-stable PNGs
import matplotlib.pyplot as plt
import numpy as np

from .artifacts import write_figure

__all__ = [
    "TS_FIGURES",
    "ICL_FIGURES",
    "FIGURE_CAPTIONS",
    "plot_teacher_student",
    "plot_icl_regression",
    "with_svg",
]

TS_FIGURES = (
    "ts_loss_vs_hidden_size.png",
    "ts_lambda_histogram.png",
    "ts_pruning_and_length.png",
    "ts_recovered_attention.png",
    "ts_gating_structure.png",
    "ts_training_curves.png",
)
ICL_FIGURES = (
    "icl_test_loss.png",
    "icl_alignment_with_gd.png",
    "icl_ood_scaling.png",
    "icl_recovered_structure.png",
    "icl_training_curves.png",
)

#: one-line captions (the report's Learned section and the docs use them)
FIGURE_CAPTIONS = {
    "ts_loss_vs_hidden_size.png": "Normalised test loss vs hidden size n (every seed; best seed joined), "
    "with the "
    "construction counts d(d+1)/2+d and d_k(d_v+1)",
    "ts_lambda_histogram.png": "Learned λ of the reference size: collapse to 0 and 1 (bottom: distance to "
    "{0, 1})",
    "ts_pruning_and_length.png": "Loss after pruning the neurons with λ away from {0, 1}, and on 4× longer "
    "sequences",
    "ts_recovered_attention.png": "Cubic coefficient tensor read from the pruned student vs the teacher's "
    "attention tensor",
    "ts_gating_structure.png": "Weights of the canonicalised pruned student: memory (λ=1) neurons first, "
    "then queries",
    "ts_training_curves.png": "Training loss of every student",
    "icl_test_loss.png": "Test MSE of every model vs one GD step (η by line search) and the zero predictor",
    "icl_alignment_with_gd.png": "Prediction distance to one GD step, and cosine of ∂ŷ/∂x_test with GD's",
    "icl_ood_scaling.png": "Out of distribution: inputs or task weights scaled by α, MSE relative to GD's",
    "icl_recovered_structure.png": "Coefficient of y_i x_i,a x_test,c in ŷ: η/N·I for one GD step",
    "icl_training_curves.png": "Training loss of every model",
}

_KIND_STYLE = {"clamp": ("C0", "o"), "sigmoid": ("C1", "s"), "lru": ("C2", "^")}


def _floor(v, eps=1e-12):
    return max(float(v), eps)


def plot_teacher_student(res: dict, out: Path) -> list[str]:
    """Write the six teacher–student figures into ``out``; return their file names."""
    out = Path(out)
    cc = res["construction_counts"]
    # 1. loss vs hidden size
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sizes = res["hidden_sizes"]
    for n, losses in zip(sizes, res["final_loss"]):
        ax.scatter([n] * len(losses), [_floor(v) for v in losses], color="C0", alpha=0.5, s=18)
    ax.plot(
        sizes,
        [_floor(v) for v in res["best_loss_per_size"]],
        "-o",
        color="C0",
        label="gated RNN, λ∈[0,1] (best seed)",
    )
    for kind, runs in res["ablations"].items():
        c, mk = _KIND_STYLE[kind]
        ax.scatter(
            [r["n"] for r in runs],
            [_floor(r["final_loss"]) for r in runs],
            color=c,
            marker=mk,
            s=30,
            label=f"gated RNN, λ={'σ(ν)' if kind == 'sigmoid' else 'exp(-exp ν)'}",
        )
    for cell, ls in (("lstm", "--"), ("gru", ":")):
        if res.get(cell):
            ax.axhline(
                _floor(min(res[cell]["final_loss"])), color="gray", ls=ls, label=f"{cell.upper()} student"
            )
    well = res.get("targets", {}).get("loss_well_below", {}).get("sizes") or []
    if well:  # the sizes held to ">= 1e-2 well below the construction's size" (n <= N_c // 3)
        ax.axvspan(
            min(sizes) - 0.5, max(well) + 0.5, color="0.92", zorder=0, label="'well below': n ≤ ⌊N_c/3⌋"
        )
    ax.axvline(cc["compressed"], color="k", lw=0.8, ls="-.")
    ax.axvline(cc["direct"], color="k", lw=0.8, ls="--")
    for x, lab in ((cc["compressed"], " d(d+1)/2+d"), (cc["direct"], " d_k(d_v+1)")):
        ax.text(x, 0.98, lab, rotation=90, va="top", fontsize=7, transform=ax.get_xaxis_transform())
    ax.set(
        xscale="linear",
        yscale="log",
        xlabel="hidden size n",
        ylabel="normalised test loss",
        title="Teacher–student: loss vs hidden size",
    )
    ax.legend(fontsize=7)
    files = [write_figure(out / TS_FIGURES[0], fig).name]
    # 2. lambda histograms: linear bins over [0, 1], and the distance to {0, 1} on a log scale
    hist = res["lambda_histogram"]
    kinds = [k for k in ("clamp", "sigmoid", "lru") if k in hist]
    pooled = {"clamp": [v for s in res["students"] if s["n"] == hist.get("clamp_n") for v in s["lambda"]]}
    for kind in kinds[1:]:
        pooled[kind] = [v for s in res["ablations"].get(kind, []) for v in s["lambda"]]
    fig, axes = plt.subplots(2, len(kinds), figsize=(3.4 * len(kinds), 5.6), squeeze=False)
    label = {
        "clamp": f"λ∈[0,1] (projected), n={hist.get('clamp_n')}",
        "sigmoid": "λ=σ(ν)",
        "lru": "λ=exp(-exp ν)",
    }
    for j, kind in enumerate(kinds):
        h, color = hist[kind], _KIND_STYLE[kind][0]
        edges = np.array(h["bin_edges"])
        axes[0, j].bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color=color, alpha=0.8)
        axes[0, j].set(title=label[kind], xlabel="learned λ", ylabel="neurons")
        lam = np.array(pooled[kind], dtype=float)
        dist = np.minimum(np.abs(lam), np.abs(1 - lam))
        exact = int((dist == 0).sum())
        logd = np.log10(dist[dist > 0]) if (dist > 0).any() else np.array([])
        bins = np.linspace(-8, 0, 17)
        axes[1, j].hist(np.clip(logd, -8, 0), bins=bins, color=color, alpha=0.8)
        axes[1, j].bar([-8.75], [exact], width=0.5, color="k")
        axes[1, j].set(
            xlabel="log10 dist(λ, {0,1}); black: exactly 0 or 1", ylabel="neurons", xlim=(-9.2, 0.2)
        )
    fig.suptitle("Learned λ collapse to 0 and 1 (top: λ; bottom: distance to {0, 1})", fontsize=10, y=1.0)
    fig.tight_layout()
    files.append(write_figure(out / TS_FIGURES[1], fig).name)
    # 3. pruning and length generalisation
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    st = res["students"]
    xs = np.array([s["n"] for s in st], dtype=float)
    for key, c, mk, lab, dx in (
        ("final_loss", "C0", "o", "trained", -0.4),
        ("pruned_loss", "C3", "x", "pruned", 0.0),
        ("long_loss", "C2", "^", f"{res['config']['length_factor']}× longer sequences", 0.4),
    ):
        ax.scatter(xs + dx, [_floor(s[key]) for s in st], color=c, marker=mk, label=lab, s=22)
    ax.set(
        yscale="log",
        xlabel="hidden size n",
        ylabel="normalised loss",
        title="Pruning λ∉{0,1} neurons; evaluation on longer sequences",
    )
    ax.legend(fontsize=7)
    files.append(write_figure(out / TS_FIGURES[2], fig).name)
    # 4. recovered attention tensor
    fb = res["best"]["figures"]
    rec, ref = np.array(fb["recovered_tensor"]).ravel(), np.array(fb["teacher_tensor"]).ravel()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    lim = float(max(np.abs(ref).max(), np.abs(rec).max())) * 1.1
    for cell, c in (("lstm", "C7"), ("gru", "C1")):
        if res.get(cell) and "recovered_tensor_lag_1" in res[cell]:
            other = np.array(res[cell]["recovered_tensor_lag_1"]).ravel()
            ax.scatter(
                ref,
                np.clip(other, -lim, lim),
                s=8,
                color=c,
                alpha=0.6,
                marker="x",
                label=f"{cell.upper()} student, lag 1 (worst rel. error "
                f"{res[cell]['recovered_attention_rel_error'][0]:.2f})",
            )
    ax.scatter(ref, rec, s=10, color="C0", label=f"gated RNN n={res['best']['n']} (pruned)")
    ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.6)
    ax.set(
        xlabel="teacher Sym T[o,a,b,c]",
        ylabel=f"student's coefficient, lag {fb['recovered_tensor_lag']}",
        title=f"Recovered attention (rel. error {res['best']['recovered_attention_rel_error']:.1e})",
    )
    ax.legend(fontsize=7)
    files.append(write_figure(out / TS_FIGURES[3], fig).name)
    # 5. gating structure of the canonicalised, pruned best student
    w = {k: np.abs(np.array(v)) for k, v in fb["canonical_pruned"].items()}
    lam = np.array(fb["canonical_pruned"]["lam"])
    n_mem = int((np.abs(lam - 1) < 1e-9).sum())
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), gridspec_kw={"width_ratios": [1, 1, 2, 2]})
    for ax, key, title in zip(axes, "ABCE", ("|A| (neurons × [x;1])", "|B|", "|C| (gates × neurons)", "|E|")):
        ax.imshow(w[key], aspect="auto", cmap="viridis")
        ax.set_title(title, fontsize=8)
        if key in "AB":
            ax.axhline(n_mem - 0.5, color="w", lw=1)
        else:
            ax.axvline(n_mem - 0.5, color="w", lw=1)
    fig.suptitle(
        f"Canonicalised pruned student: {n_mem} memory (λ=1) neurons first, then {len(lam) - n_mem} "
        f"query (λ=0) neurons",
        fontsize=9,
    )
    files.append(write_figure(out / TS_FIGURES[4], fig).name)
    files.append(_training_curves(res, out / TS_FIGURES[5], "Teacher–student training (normalised loss)"))
    return with_svg(files)


def with_svg(pngs: list[str]) -> list[str]:
    """``[a.png, b.png]`` -> ``[a.png, a.svg, b.png, b.svg]`` (``write_figure`` writes both)."""
    return [name for png in pngs for name in (png, png[:-4] + ".svg")]


def _training_curves(res: dict, path: Path, title: str) -> str:
    """Loss curves: gated RNNs coloured by hidden size (colour bar), ablations and LSA in their colours,
    LSTM dashed and GRU dotted in grey."""
    tr = res["training"]
    L = np.maximum(np.array(tr["losses"]), 1e-12)
    names = tr.get("model_names", [str(i) for i in range(L.shape[1])])
    sizes = []
    for name in names:
        m = re.search(r"n=(\d+)|gated_rnn_(\d+)", name)
        sizes.append(int(m.group(1) or m.group(2)) if m else None)
    known = [n for n in sizes if n is not None]
    norm = matplotlib.colors.Normalize(min(known, default=0), max(known, default=1))
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6.8, 3.9))
    labelled = set()
    for i, (name, n) in enumerate(zip(names, sizes)):
        family = next((f for f in ("sigmoid", "lru", "lstm", "gru", "lsa") if name.startswith(f)), "gated")
        if family == "gated":
            style = {"color": cmap(norm(n)), "lw": 0.8}
        else:
            style = {
                "color": {"sigmoid": "C1", "lru": "C2", "lsa": "C3"}.get(family, "gray"),
                "lw": 0.8,
                "ls": {"lstm": "--", "gru": ":"}.get(family, "-"),
            }
        label = None if family == "gated" or family in labelled else family.upper()
        labelled.add(family)
        ax.plot(tr["steps"], L[:, i], label=label, **style)
    if known:
        fig.colorbar(
            matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="gated RNN hidden size n"
        )
    ax.set(yscale="log", xlabel="step", ylabel="training loss (per model)", title=title)
    if labelled - {"gated"}:
        ax.legend(fontsize=7)
    return write_figure(path, fig).name


def _model_order(name: str) -> tuple:
    """lsa, then gated RNNs by size and seed, then lstm, gru (JSON files store keys sorted alphabetically)."""
    m = re.match(r"gated_rnn_(\d+)(?:_seed(\d+))?$", name)
    if m:
        return (1, int(m.group(1)), int(m.group(2) or 0), name)
    return ({"lsa": 0, "lstm": 2, "gru": 3}.get(name, 4), 0, 0, name)


def _family_color(name: str) -> str:
    return "C3" if name == "lsa" else ("C0" if name.startswith("gated") else "C7")


def plot_icl_regression(res: dict, out: Path) -> list[str]:
    """Write the five in-context regression figures into ``out``; return their file names."""
    out = Path(out)
    models = res["models"]
    names = sorted(models, key=_model_order)
    gd, zero = res["gd"], res["zero_predictor"]
    # 1. test loss
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.bar(names, [models[k]["test_loss"] for k in names], color=[_family_color(k) for k in names])
    ax.axhline(gd["test_loss"], color="C3", ls="--", label=f"one GD step (η={gd['eta']:.3f})")
    ax.axhline(zero["test_loss"], color="gray", ls=":", label="zero predictor (ignores the context)")
    ax.set(ylabel="test MSE (10⁴ tasks)", title="In-context linear regression")
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right", fontsize=7)
    ax.legend(fontsize=7)
    files = [write_figure(out / ICL_FIGURES[0], fig).name]
    # 2. alignment
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = names + ["zero predictor"]
    dist = [models[k]["pred_l2_to_gd"] for k in names] + [zero["pred_l2_to_gd"]]
    cos = [models[k]["grad_cosine_to_gd"] for k in names] + [zero["grad_cosine_to_gd"]]
    colors = [_family_color(k) for k in names] + ["k"]
    axes[0].bar(labels, [_floor(v) for v in dist], color=colors)
    axes[0].set(yscale="log", ylabel="mean (ŷ − ŷ_GD)²", title="Prediction distance to one GD step")
    axes[1].bar(labels, cos, color=colors)
    axes[1].set(
        ylim=(min(0.0, min(cos)), 1.02),
        ylabel="cos(∂ŷ/∂x_test, ∂ŷ_GD/∂x_test)",
        title="Gradient alignment with GD",
    )
    for ax in axes:
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", fontsize=7)
    files.append(write_figure(out / ICL_FIGURES[1], fig).name)
    # 3. OOD scaling: one curve per model family and size (first seed), same tasks at every alpha
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    first_seed = [k for k in names if not k.startswith("gated") or k.endswith("_seed0") or "_seed" not in k]
    sizes = sorted({_model_order(k)[1] for k in first_seed if k.startswith("gated")})
    for ax, which in zip(axes, ("x", "w")):
        keys = sorted(
            (k for k in res["ood"] if k.startswith(which + "*")), key=lambda k: float(k.split("*")[1])
        )
        alphas = [float(k.split("*")[1]) for k in keys]
        lo, hi = float("inf"), 0.0
        for name in first_seed:
            vals = [res["ood"][k][name]["test_loss_over_gd"] for k in keys]
            if name.startswith("gated"):
                n = _model_order(name)[1]
                style = {"color": plt.get_cmap("viridis")(sizes.index(n) / max(1, len(sizes) - 1)), "ls": "-"}
            else:
                style = {
                    "color": _family_color(name),
                    "ls": {"lsa": "-", "lstm": "--", "gru": ":"}.get(name, "-"),
                }
            ax.plot(alphas, vals, marker="o", ms=3, label=name, **style)
            lo, hi = min(lo, min(vals)), max(hi, max(vals))
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set(
            xlabel=f"scale α of {'inputs x' if which == 'x' else 'task weights w'}",
            ylabel="MSE / MSE of GD (same η)",
            yscale="log" if hi > 20 * lo else "linear",
            title=f"Out of distribution: {which} × α",
        )
    axes[0].legend(fontsize=6)
    files.append(write_figure(out / ICL_FIGURES[2], fig).name)
    # 4. recovered structure: the y_i x_i,a x_test,c coefficient matrices
    gated = [k for k in names if k.startswith("gated")]
    show = [k for k in ("lsa",) if k in models] + gated[-2:] + [k for k in ("lstm", "gru") if k in models]
    d = len(models[show[0]]["structure"]["gamma"])
    fig, axes = plt.subplots(1, len(show) + 1, figsize=(2.6 * (len(show) + 1), 2.8))
    ref = np.eye(d) * gd["eta"] / res["config"]["N"]
    vmax = float(np.abs(ref).max()) * 1.2
    for ax, (name, G) in zip(
        axes, [("one GD step", ref)] + [(k, np.array(models[k]["structure"]["gamma"])) for k in show]
    ):
        ax.imshow(G, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Coefficient of y_i x_i,a x_test,c in ŷ (rows a, columns c)", fontsize=9)
    files.append(write_figure(out / ICL_FIGURES[3], fig).name)
    files.append(_training_curves(res, out / ICL_FIGURES[4], "In-context regression training (MSE)"))
    return with_svg(files)
