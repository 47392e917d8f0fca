"""Table, JSON and plots of a benchmark run (files written atomically)."""

import io
import json
import math
from pathlib import Path

from equivalence.report.staging import atomic_write

from .common import WorkloadResult

__all__ = ["table", "write_all"]


def _fmt_s(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _fmt_b(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def table(results: list[WorkloadResult], info: dict) -> str:
    """Plain-text report: machine, then per workload its cases, ratios (with baselines), memory and checks."""
    lines = [
        f"machine: {info['cpu']} | cores {info['cores_available']} | torch threads {info['torch_threads']} | "
        f"OMP_WAIT_POLICY {info.get('omp_wait_policy')} | "
        f"device {info['device']}" + (f" ({info['gpu']['name']})" if "gpu" in info else ""),
        f"versions: python {info['python']}, " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"load average at start {info['load_average_start']}, end {info.get('load_average_end')}",
    ]
    lines += [f"WARNING: {w}" for w in info.get("warnings", [])] + [""]
    for r in results:
        lines.append(f"== {r.workload}: {r.title}")
        if not r.available:
            lines += [f"   NOT AVAILABLE: {n}" for n in r.notes] + [""]
            continue
        lines.append("   sizes: " + ", ".join(f"{k}={v}" for k, v in r.sizes.items()))
        for c in r.cases:
            extra = "".join(
                f", {k}={v:.4g}" if isinstance(v, float) else (f", {k}={v}" if k == "status" else "")
                for k, v in c.extra.items()
            )
            if not c.times:
                lines.append(f"   {c.name:<48} {c.note or 'not run'}")
                continue
            lines.append(
                f"   {c.name:<48} median {_fmt_s(c.median):>10}  ({len(c.times)} runs{extra})"
                + (f"  [{c.note}]" if c.note else "")
            )
        for q in r.ratios:
            tgt = "" if q.target is None else f"  target >= {q.target:g}: {'MET' if q.met else 'NOT MET'}"
            lines.append(f"   ratio {q.name}: {q.value:.2f}x  (baseline: {q.baseline}){tgt}")
        for m in r.memory:
            if "error" in m:
                lines.append(f"   memory {m['case']}: measurement failed: {m['error'][-200:]}")
                continue
            lines.append(
                f"   memory {m['case']}: peak extra {_fmt_b(m['peak_extra_bytes'])}; (inputs + peak extra) / "
                f"(output + inputs) = {m['peak_over_output_plus_inputs']:.2f} (target <= 2: "
                f"{'MET' if m['met'] else 'NOT MET'}; output {_fmt_b(m['output_bytes'])}, inputs "
                f"{_fmt_b(m['input_bytes'])}; {m['method']})"
            )
        for ch in r.checks:
            lines.append(
                "   check: "
                + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in ch.items())
            )
        for k, v in r.limits.items():
            lines.append(f"   limit {k}: {v}")
        lines += [f"   note: {n}" for n in r.notes] + [""]
    return "\n".join(lines)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def plots(results: list[WorkloadResult], info: dict) -> dict[str, bytes]:
    import matplotlib  # lazy: start-up time (only the plots need matplotlib), and the backend is set first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use: the headless backend

    out: dict[str, bytes] = {}
    where = info["cpu"] if "gpu" not in info else info["gpu"]["name"]
    w1 = [r for r in results if r.workload == "w1" and r.available]
    if w1:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        labels, rows = [], []
        for r in w1:
            labels.append(f"{r.sizes['kind']}\nT={r.sizes['T']}")
            rows.append({c.name: c.median for c in r.cases})
        names = sorted({k for row in rows for k in row}, key=lambda s: (not s.startswith("rnn loop"), s))
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            xs = [j + i * width for j, row in enumerate(rows) if name in row]
            ax.bar(xs, [row[name] * 1e3 for row in rows if name in row], width, label=name)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], labels)
        ax.set_yscale("log")
        ax.set_ylabel("forward time (ms, median; log scale)")
        ax.set_title(
            f"Workload 1: gated RNN forward, B={w1[0].sizes['B']}, d={w1[0].sizes['d']}, "
            f"d_k=d_v={w1[0].sizes['dk']} ({where})",
            fontsize=9,
        )
        ax.legend(fontsize=7)
        fig.tight_layout()
        out["w1_forward.png"] = _png(fig)
        plt.close(fig)
        lsa = sorted((r for r in w1 if r.sizes["kind"] == "lsa"), key=lambda r: r.sizes["T"])
        if len(lsa) > 1:
            fig, ax = plt.subplots(figsize=(6, 4))
            for name in [c.name for c in lsa[0].cases]:
                ax.plot(
                    [r.sizes["T"] for r in lsa], [r.case(name).median * 1e3 for r in lsa], "o-", label=name
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("T")
            ax.set_ylabel("ms (median)")
            ax.set_title(f"Workload 1 vs T ({where})", fontsize=9)
            ax.legend(fontsize=7)
            fig.tight_layout()
            out["w1_scaling_T.png"] = _png(fig)
            plt.close(fig)
    for r in results:
        if r.workload == "w2" and r.available:
            pts = sorted(
                (c.extra["batch"], c.extra["sequences_per_s"]) for c in r.cases if "loop" not in c.name
            )
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequences per Hypothesis example")
            ax.set_ylabel("sequences checked per second")
            ax.set_title(f"Workload 2: numeric property checks ({info['cpu']})", fontsize=9)
            fig.tight_layout()
            out["w2_batching.png"] = _png(fig)
            plt.close(fig)
        if r.workload == "w3" and r.available and r.cases:
            fig, ax = plt.subplots(figsize=(7, 4))
            tiers: dict[str, list] = {}
            for c in r.cases:
                tiers.setdefault(c.extra.get("tier", c.name), []).append((c.extra.get("size", 0), c.median))
            for tier, pts in tiers.items():
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=tier)
            ax.set_yscale("log")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("d (the unrolled tier: d = d_k = d_v = T)")
            ax.set_ylabel("seconds")
            ax.set_title("Workload 3: symbolic proof tiers", fontsize=9)
            ax.legend(fontsize=7)
            fig.tight_layout()
            out["w3_symbolic.png"] = _png(fig)
            plt.close(fig)
        if r.workload == "w4" and r.available and r.cases:
            fig, ax = plt.subplots(figsize=(7, 4))
            ax.barh([c.name for c in r.cases], [c.extra.get("steps_per_s", 0) for c in r.cases])
            ax.set_xlabel("training steps per second")
            ax.set_title(f"Workload 4: training checks ({where})", fontsize=9)
            fig.tight_layout()
            out["w4_training.png"] = _png(fig)
            plt.close(fig)
    return out


def write_all(results: list[WorkloadResult], info: dict, out: Path, command: str) -> list[Path]:
    """Write ``benchmarks.json``, ``benchmarks.txt`` and the PNG plots into ``out``; return the paths."""
    out = Path(out)
    doc = {
        "schema": "attention-rnn-equivalence/benchmarks/v1",
        "command": command,
        "machine": info,
        "results": [r.to_dict() for r in results],
    }
    written = []
    text = json.dumps(doc, indent=2, sort_keys=True, default=_json_default)
    atomic_write(out / "benchmarks.json", text + "\n")
    written.append(out / "benchmarks.json")
    atomic_write(out / "benchmarks.txt", table(results, info) + "\n")
    written.append(out / "benchmarks.txt")
    for name, data in plots(results, info).items():
        atomic_write(out / name, data)
        written.append(out / name)
    return written


def _json_default(o):
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
