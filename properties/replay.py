"""Counterexample files of the property suite: every failure of a layer property writes the exact weights and
inputs it used, and ``python -m equivalence replay FILE [--import mymodule.py]`` rebuilds the failure from
that file alone, in a fresh process (the shared file format and replayer: :mod:`equivalence.replay`).

Where: ``$LSA_COUNTEREXAMPLES`` or the plugin's ``--lsa-counterexamples DIR`` (default
``lsa-counterexamples/`` in pytest's root directory); outside pytest, the system's temporary directory. One
file per (property, layer): Hypothesis replays the shrunk example last, so the file holds the minimal case.

Reading a file never imports or runs anything it names: the layer is resolved among modules the *reader*
imported (``--import``), or rebuilt from the paper's constructions (``lsa_to_rnn``, our own code).
"""

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "PROPERTIES",
    "ReplayOutcome",
    "counterexample_dir",
    "replay_payload",
    "write_property_counterexample",
]

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
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:80] or "layer"


def _pins(target) -> list[dict]:
    layer = target.info.get("layer")
    if not layer:
        return []
    try:
        from equivalence.report.pins import import_pins

        return import_pins([layer.rsplit(":", 1)[0]])
    except (ImportError, ValueError, OSError):
        return []


def write_property_counterexample(
    prop: str, target, lsa, x: Tensor, res=None, *, extra_inputs: dict | None = None, message: str = ""
) -> Path | None:
    """Write the failing case of ``prop`` (one of :data:`PROPERTIES`) for ``target`` and return the file, or
    ``None`` when it cannot be written (the failure is still raised, with its printed case)."""
    try:
        from equivalence.replay import SCHEMA, encode_tensor, write_counterexample
    except ImportError:
        return None
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
    from hypothesis import settings

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


@dataclass
class ReplayOutcome:
    reproduced: bool
    message: str


def _user_layer(spec: str):
    """The reader-imported object named by ``MODULE:ATTR`` (never imports anything itself)."""
    from equivalence.report.safe import UntrustedInput, tty

    if not isinstance(spec, str) or ":" not in spec:
        raise UntrustedInput(f"rerun.layer must look like MODULE:ATTR; got {tty(repr(spec))[:80]}")
    mod_name, attr = spec.rsplit(":", 1)
    module = None
    if mod_name.endswith(".py"):
        base = Path(mod_name).name
        for m in list(sys.modules.values()):
            f = getattr(m, "__file__", None)
            if f and Path(f).name == base:
                module = m
                break
    else:
        module = sys.modules.get(mod_name)
    if module is None:
        raise UntrustedInput(f"the failing layer came from {tty(mod_name)}: pass --import {tty(mod_name)}")
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UntrustedInput(f"{tty(mod_name)} has no attribute {tty(attr)!r}")
        obj = getattr(obj, part)
    return obj


def replay_payload(payload: dict) -> ReplayOutcome:
    """Re-run the recorded property on the recorded weights and inputs (called by
    :mod:`equivalence.replay`)."""
    from constructions import LinearSelfAttention
    from equivalence.replay import decode_tensor
    from equivalence.report.safe import UntrustedInput, tty

    from . import suite

    rerun = payload["rerun"]
    prop = rerun.get("property")
    if prop not in PROPERTIES:
        raise UntrustedInput(f"rerun.property {tty(repr(prop))[:40]} is not one of {', '.join(PROPERTIES)}")
    dtype = getattr(torch, payload["dtype"], None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise UntrustedInput(f"dtype {tty(payload['dtype'])!r} is not a floating torch dtype")
    device = rerun.get("device", "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise UntrustedInput(f"device {tty(repr(device))[:40]} must be 'cpu' or 'cuda[:N]'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UntrustedInput(f"the failure was recorded on {device}, but CUDA is not available here")
    P = {k: decode_tensor(v, f"params.{k}").to(torch.float64) for k, v in payload["params"].items()}
    try:
        lsa = LinearSelfAttention(P["W_Q"], P["W_K"], P["W_V"], P.get("W_O"))
    except (KeyError, TypeError, ValueError) as e:
        raise UntrustedInput(f"params do not form a LinearSelfAttention: {e}") from None
    x = decode_tensor(payload["inputs"].get("x"), "inputs.x").to(torch.float64)
    if rerun.get("target") == "construction":
        method = rerun.get("method")
        if method not in ("direct", "compressed", "auto"):
            raise UntrustedInput(f"rerun.method {tty(repr(method))[:40]} is not a construction method")
        target = suite.construction_target(
            method, dtype=dtype, device=device, mode=str(rerun.get("mode", "auto"))
        )
    else:
        obj = _user_layer(rerun.get("layer"))
        fixed = lsa if rerun.get("fixed_lsa") else None
        build = (lambda _lsa, _o=obj: _o) if fixed is not None else obj
        target = suite.user_target(
            build,
            name=payload["variant"],
            dtype=dtype,
            device=device,
            fixed_lsa=fixed,
            exact=bool(rerun.get("exact")),
            info={"layer": rerun.get("layer")},
        )
    inputs = payload["inputs"]
    try:
        with suite.no_counterexample_files():
            if prop == "equals_lsa":
                res = suite.check_equals_lsa(target, lsa, x)
            elif prop == "exact_on_integers":
                res = suite.check_exact_on_integers(target, lsa, x)
            elif prop == "causal":
                res = suite.check_causal(target, lsa, x, int(inputs["t"]), int(inputs["seed"]))
            else:
                perm = decode_tensor(inputs["perm"], "inputs.perm").to(torch.long)
                res = suite.check_batch_independent(target, lsa, x, perm)
    except suite.PropertyFailure as e:
        return ReplayOutcome(True, str(e).splitlines()[0][:1500])
    return ReplayOutcome(
        False, f"the property holds on the recorded case now: {getattr(res, 'message', '')}"[:1500]
    )
