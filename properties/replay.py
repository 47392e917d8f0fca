"""Replaying a property-suite counterexample file (called by ``python -m equivalence replay FILE``): the
recorded property re-run on the recorded weights and inputs.

Reading a file never imports or runs anything it names: the layer is resolved among modules the *reader*
imported (``--import``), or rebuilt from the paper's constructions (``lsa_to_rnn``, our own code). The files
are written by :mod:`properties.counterexamples`.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from constructions import LinearSelfAttention
from equivalence.report.counterexample import decode_tensor
from equivalence.report.safe import UntrustedInput, tty

from . import suite
from .counterexamples import (
    PROPERTIES,
    counterexample_dir,
    set_counterexample_dir,
    write_property_counterexample,
)

__all__ = [
    "PROPERTIES",
    "ReplayOutcome",
    "counterexample_dir",
    "replay_payload",
    "set_counterexample_dir",
    "write_property_counterexample",
]


@dataclass
class ReplayOutcome:
    reproduced: bool
    message: str


def _user_layer(spec: str):
    """The reader-imported object named by ``MODULE:ATTR`` (never imports anything itself)."""
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
