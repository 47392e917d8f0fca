"""Peak memory of one forward call, measured in a fresh process.

Method (CPU): PyTorch's CPU allocator takes its memory from glibc ``malloc``; with
``MALLOC_MMAP_THRESHOLD_=65536`` every buffer of 64 KiB or more is its own ``mmap`` and goes back to the
kernel when freed, so the resident set follows the live tensors page by page. A child process builds the
inputs, runs the case once (imports, caches, the structure plan, BLAS buffers), resets the kernel's
peak-RSS counter (``echo 5 > /proc/self/clear_refs``), reads ``VmRSS``, runs the case again and
reads ``VmHWM``. ``VmHWM - VmRSS(before)`` is the most memory the call had in use at any instant beyond
what existed before it (inputs and weights), output included. ``tracemalloc`` cannot see torch's
allocations, and the profiler's per-op counters do not give an instantaneous peak; this does, to about
0.2 MiB (pages the interpreter itself returns to the kernel during the call are subtracted from the count).
On CUDA: ``torch.cuda.reset_peak_memory_stats`` / ``max_memory_allocated`` around the call, in process.

The case comes from a *builder* ``build(spec) -> (run, info)``: a zero-argument callable running the case,
and sizes info. This module knows no case itself; a workload passes its builder (in process) or names it as
``"module:function"`` (in a child). Run as ``python -m benchmarks.memory '<json spec>' [module:function]``
(default builder: :data:`DEFAULT_BUILDER`); prints one JSON line.
"""

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable

import torch

__all__ = ["DEFAULT_BUILDER", "measure", "measure_in_child"]

#: the builder a child uses when none is named: the forward workload's cases
DEFAULT_BUILDER = "benchmarks.w1_forward:build_case"


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    return out


def _builder(name: str) -> Callable:
    """The builder named ``module:function`` (a module of this repository's ``benchmarks`` package)."""
    module, _, attr = name.partition(":")
    if not module.startswith("benchmarks.") or not attr.isidentifier():
        raise ValueError(f"builder {name!r}: expected 'benchmarks.<module>:<function>'")
    return getattr(importlib.import_module(module), attr)


def measure(spec: dict, build_case: Callable) -> dict:
    """In this process: peak extra bytes of ``spec``'s case, built by ``build_case(spec) -> (run, info)``
    (see module docstring)."""
    torch.set_num_threads(int(spec.get("threads", torch.get_num_threads())))
    device = spec.get("device", "cpu")
    run, info = build_case(spec)
    with torch.no_grad():  # warm-up at full size: one-time buffers (plans, BLAS packing, thread pools)
        del_out = run()
    del del_out
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.no_grad():
            out = run()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        method = "torch.cuda.max_memory_allocated"
    else:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        before = _status()["VmRSS"]
        with torch.no_grad():
            out = run()
        peak = _status()["VmHWM"] - before
        method = "VmHWM - VmRSS (MALLOC_MMAP_THRESHOLD_=65536)"
    return {
        "case": spec["case"],
        "peak_extra_bytes": int(peak),
        "output_bytes": out.numel() * out.element_size(),
        "method": method,
        **info,
    }


def measure_in_child(spec: dict, timeout: float = 600, builder: str = DEFAULT_BUILDER) -> dict:
    """Run :func:`measure` in a fresh interpreter (clean allocator state, resettable peak counter) on the
    case of ``builder`` (``"module:function"``)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONHASHSEED="0")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", json.dumps(spec), builder],
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
        env=env,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    if r.returncode != 0:
        return {"case": spec["case"], "error": (r.stderr or r.stdout)[-2000:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    _spec = json.loads(sys.argv[1])
    print(json.dumps(measure(_spec, _builder(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_BUILDER))))
