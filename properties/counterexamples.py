"""Counterexample files of the property suite: every failure of a layer property writes the exact weights and
inputs it used, so that ``python -m equivalence replay FILE [--import mymodule.py]`` rebuilds the failure
from that file alone, in a fresh process (the file format: :mod:`equivalence.report.counterexample`; the
replayer: :mod:`properties.replay`).

Where: ``$LSA_COUNTEREXAMPLES`` or the plugin's ``--lsa-counterexamples DIR`` (default
``lsa-counterexamples/`` in pytest's root directory); outside pytest, the system's temporary directory. One
file per (property, layer): Hypothesis replays the shrunk example last, so the file holds the minimal case.
"""

import os
import re
import tempfile
from pathlib import Path

import torch
from hypothesis import settings
from torch import Tensor

from equivalence.report.counterexample import SCHEMA, encode_tensor, write_counterexample
from equivalence.report.pins import import_pins

__all__ = ["PROPERTIES", "counterexample_dir", "set_counterexample_dir", "write_property_counterexample"]

#: the properties a file can name: ``rerun.property`` -> check function of :mod:`properties.suite`
PROPERTIES = ("equals_lsa", "exact_on_integers", "causal", "batch_independent")

_DIR: Path | None = None


def counterexample_dir() -> Path:
    """Where counterexample files go (see the module docstring)."""
    env = os.environ.get("LSA_COUNTEREXAMPLES")
    if env:
        return Path(env)
    if _DIR is not None:
        return _DIR
    return Path(tempfile.gettempdir()) / "lsa-counterexamples"


def set_counterexample_dir(path: Path | str | None) -> None:
    """Set the default directory (the plugin calls this with ``--lsa-counterexamples``)."""
    global _DIR
    _DIR = None if path is None else Path(path)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:80] or "layer"


def _pins(target) -> list[dict]:
    layer = target.info.get("layer")
    if not layer:
        return []
    try:
        return import_pins([layer.rsplit(":", 1)[0]])
    except (ImportError, ValueError, OSError):
        return []


def write_property_counterexample(
    prop: str, target, lsa, x: Tensor, res=None, *, extra_inputs: dict | None = None, message: str = ""
) -> Path | None:
    """Write the failing case of ``prop`` (one of :data:`PROPERTIES`) for ``target`` and return the file, or
    ``None`` when it cannot be written (the failure is still raised, with its printed case)."""
    ws = {k: getattr(lsa, k) for k in ("W_Q", "W_K", "W_V", "W_O") if getattr(lsa, k) is not None}
    sizes = {
        "H": lsa.heads,
        "d": lsa.d,
        "d_k": lsa.d_k,
        "d_v": lsa.d_v,
        "d_out": lsa.d_out,
        "batch": int(x.shape[0]),
        "T": int(x.shape[1]),
    }
    inputs = {"x": encode_tensor(x.detach().to("cpu", torch.float64))}
    for k, v in (extra_inputs or {}).items():
        inputs[k] = encode_tensor(v) if isinstance(v, Tensor) else v
    observed = expected = None
    if res is not None and getattr(res, "worst_index", None):
        observed = {
            "max_abs_error": float(res.max_abs_error).hex(),
            "ratio": float(res.ratio).hex(),
            "worst_index": list(res.worst_index),
            "bound": float(res.bound_at_worst).hex(),
        }
    rerun = {
        "property": prop,
        "target": "construction" if "method" in target.info else "user",
        "method": target.info.get("method"),
        "mode": target.info.get("mode", "auto"),
        "layer": target.info.get("layer"),
        "fixed_lsa": target.fixed_lsa is not None,
        "exact": bool(target.exact),
        "device": target.device,
        "imports": _pins(target),
        "profile": getattr(settings, "_current_profile", None),
    }
    payload = {
        "schema": SCHEMA,
        "kind": "property",
        "claim": f"property {prop}",
        "variant": target.name,
        "sizes": sizes,
        "dtype": str(target.dtype).replace("torch.", ""),
        "params": {k: encode_tensor(v.detach().to("cpu", torch.float64)) for k, v in ws.items()},
        "inputs": inputs,
        "rerun": rerun,
        "message": message[:2000],
    }
    if observed is not None:
        payload["observed"] = observed
    if expected is not None:
        payload["expected"] = expected
    path = (
        counterexample_dir() / f"counterexample-property-{prop.replace('_', '-')}-{_slug(target.name)}.json"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_counterexample(path, payload)
    except (OSError, ValueError):
        return None
