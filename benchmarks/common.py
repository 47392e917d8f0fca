"""Timing, ratios and machine description shared by the workloads.

Machines here are shared and noisy, so every figure that matters is a *ratio* of two cases timed in the
same run, interleaved round by round (``A B A B ...``): a slow-down of the machine hits both sides of a
round alike. We report the median of the per-round ratios (and the medians of the times, for scale).
"""

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata

import torch

__all__ = ["Case", "Ratio", "WorkloadResult", "interleaved", "ratio", "machine", "roofline", "sync", "load"]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def load() -> list[float]:
    """1, 5 and 15 minute load averages (other processes on a shared machine)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


@dataclass
class Case:
    """One timed case: ``times`` in seconds, one per round."""

    name: str
    times: list[float]
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "median_s": self.median,
            "times_s": self.times,
            "note": self.note,
            **self.extra,
        }


@dataclass
class Ratio:
    """``baseline / candidate`` (so > 1 means the candidate is faster), median over interleaved rounds."""

    name: str
    candidate: str
    baseline: str
    value: float
    rounds: list[float]
    target: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else bool(self.value >= self.target)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["met"] = self.met
        return d


@dataclass
class WorkloadResult:
    workload: str
    title: str
    sizes: dict
    cases: list[Case] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    memory: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    limits: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    available: bool = True

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)

    def to_dict(self) -> dict:
        return {
            "workload": self.workload,
            "title": self.title,
            "available": self.available,
            "sizes": self.sizes,
            "cases": [c.to_dict() for c in self.cases],
            "ratios": [r.to_dict() for r in self.ratios],
            "memory": self.memory,
            "checks": self.checks,
            "limits": self.limits,
            "notes": self.notes,
        }


def interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    device: str = "cpu",
    budget_s: float | None = None,
) -> dict[str, list[float]]:
    """Time every callable ``repeats`` times, round-robin; ``warmup`` untimed rounds first. With ``budget_s``,
    stop after the round that exceeds it (at least one timed round)."""
    for _ in range(warmup):
        for f in fns.values():
            f()
            sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    for _ in range(repeats):
        for k, f in fns.items():
            sync(device)
            t0 = time.perf_counter()
            f()
            sync(device)
            times[k].append(time.perf_counter() - t0)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return times


def ratio(
    name: str,
    times: dict[str, list[float]],
    candidate: str,
    baseline: str,
    *,
    target: float | None = None,
    note: str = "",
) -> Ratio:
    rounds = [b / c for b, c in zip(times[baseline], times[candidate]) if c > 0]
    return Ratio(
        name, candidate, baseline, statistics.median(rounds) if rounds else float("nan"), rounds, target, note
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git() -> dict:
    try:
        # lazy: a benchmark's dependencies load only when it runs
        from equivalence.report.provenance import git_commit

        return git_commit()
    except Exception:  # noqa: BLE001 - provenance is informative only
        return {"commit": "unknown", "dirty": None}


def machine(device: str) -> dict:
    """Machine, versions and settings of this run (recorded next to every figure)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "cores_available": cores,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            d: _version(d)
            for d in (
                "torch",
                "numpy",
                "sympy",
                "hypothesis",
                "matplotlib",
                "fla-core",
                "flash-linear-attention",
                "triton",
            )
        },
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP default: active)"),
        "device": device,
        "git": _git(),
        "load_average_start": load(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = {
            "name": torch.cuda.get_device_name(),
            "cuda": torch.version.cuda,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    return info


def roofline(device: str, *, quick: bool) -> dict:
    """Measured peaks of this machine, for the physical-limit estimates: float32 matmul FLOP/s and copy
    bandwidth (read + write bytes per second)."""
    n = 1024 if quick else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = interleaved({"mm": lambda: a @ b}, repeats=3 if quick else 5, device=device)["mm"]
    flops = 2 * n**3 / min(t)
    x = torch.randn(16 << 20, device=device)  # 64 MiB
    y = torch.empty_like(x)
    t = interleaved({"copy": lambda: y.copy_(x)}, repeats=3 if quick else 5, device=device)["copy"]
    bw = 2 * x.numel() * x.element_size() / min(t)
    return {
        "matmul_flops_per_s": flops,
        "copy_bytes_per_s": bw,
        "method": f"best of a few: float32 {n}x{n} matmul; 64 MiB tensor copy (read+write)",
    }
