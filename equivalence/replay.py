r"""Replaying counterexamples: ``python -m equivalence replay FILE`` reproduces a recorded failure.

Every refuted or failed claim (numeric, symbolic, property suite) writes its counterexample next to the
report (the file format: :mod:`equivalence.report.counterexample`, whose names this module re-exports), and
:func:`replay` reproduces the failure from the file alone (plus ``--import mine.py`` when the layer under
test is the reader's own module).

Reading a file never imports or runs anything it names: the replayer is chosen from :data:`REPLAYERS` by
``kind`` (a fixed table in this module), the variant is looked up among the registered ones, and modules
of the user's own are imported only when the reader passes them (``--import``); a file whose sha256
differs from the one recorded is reported as ``CODE CHANGED``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .report.counterexample import (
    KINDS,
    MAX_BYTES,
    SCHEMA,
    _fromhex,
    decode_exact,
    decode_tensor,
    encode_exact,
    encode_params,
    encode_tensor,
    file_name,
    load_counterexample,
    payload_from_claim,
    replay_command,
    validate_counterexample,
    write_counterexample,
)
from .commands.check_certificate import rerun_claim
from .commands.prove import LIMITS
from .report.pins import import_pinned
from .report.safe import UntrustedInput, tty

__all__ = [
    "KINDS",
    "MAX_BYTES",
    "REPLAYERS",
    "SCHEMA",
    "ReplayResult",
    "decode_exact",
    "decode_tensor",
    "encode_exact",
    "encode_params",
    "encode_tensor",
    "file_name",
    "load_counterexample",
    "payload_from_claim",
    "rebuild_params",
    "replay",
    "replay_command",
    "validate_counterexample",
    "write_counterexample",
]


@dataclass
class ReplayResult:
    """What a replay found. ``reproduced``: the recorded failure happened again."""

    reproduced: bool
    kind: str
    claim: str
    message: str
    details: dict = field(default_factory=dict)
    code_changed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"CODE CHANGED: {tty(c)}" for c in self.code_changed]
        word = "REPRODUCED" if self.reproduced else "NOT REPRODUCED"
        out.append(f"{word}: {tty(self.claim)} ({self.kind}): {tty(self.message)}")
        return out


def _import_pins(payload: dict, imports) -> list[str]:
    """Import the reader's modules; return the ``CODE CHANGED`` findings against the recorded sha256."""
    return import_pinned(list(imports), payload["rerun"].get("imports", []), strict=False)


def _variant(payload: dict):
    import constructions  # lazy: start-up time (the model imports torch)

    name = payload["variant"]
    if name not in constructions.available():
        needed = [i["name"] for i in payload["rerun"].get("imports", [])]
        hint = (
            (f"; it came from {', '.join(needed)}: pass --import " + " --import ".join(needed))
            if needed
            else ""
        )
        raise UntrustedInput(f"variant {tty(name)!r} is not registered here{hint}")
    return constructions.get(name)


REPLAYERS = {"numeric": "_replay_numeric", "symbolic": "_replay_symbolic", "property": "_replay_property"}


def replay(path: Path, imports=()) -> ReplayResult:
    """Reproduce the failure recorded in the counterexample file ``path``.

    ``imports``: modules or ``.py`` files *the reader* passes (their variants become available); the file's
    own list of imports is only compared against (sha256), never imported."""
    payload = load_counterexample(path)
    changed = _import_pins(payload, imports)
    fn = globals()[REPLAYERS[payload["kind"]]]
    res = fn(payload)
    res.code_changed = changed + res.code_changed
    return res


def _replay_numeric(payload: dict) -> ReplayResult:
    import torch  # lazy: start-up time, here and below (reading or listing a file needs no torch)

    from .numeric import evaluate_case  # lazy: start-up time (imports torch and the registry)

    variant = _variant(payload)
    dtype = getattr(torch, payload["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise UntrustedInput(f"dtype {tty(payload['dtype'])!r} is not a torch dtype")
    rerun = payload["rerun"]
    device = rerun.get("device", "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise UntrustedInput(f"device {tty(repr(device))[:40]} must be 'cpu' or 'cuda[:N]'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UntrustedInput(f"the failure was recorded on {device}, but CUDA is not available here")
    mode = rerun.get("mode", "auto")
    if not isinstance(mode, str):
        raise UntrustedInput("rerun.mode must be a string")
    params = rebuild_params(variant, payload["params"], payload["sizes"])
    x = decode_tensor(payload["inputs"].get("x"), "inputs.x").to(torch.float64)
    res, y, _ = evaluate_case(variant, params, x, payload["sizes"], dtype=dtype, device=device, mode=mode)
    details = {"max_abs_error": res.max_abs_error, "ratio": res.ratio, "worst_index": list(res.worst_index)}
    same = None
    exp = payload.get("observed") if isinstance(payload.get("observed"), dict) else {}
    if isinstance(exp.get("candidate"), str) and res.worst_index and not res.passed:
        try:
            same = float(y.detach().to("cpu", torch.float64)[res.worst_index]).hex() == exp["candidate"]
        except (IndexError, RuntimeError):
            same = None
    details["bitwise_same_output"] = same
    msg = res.message + (
        ""
        if same is None
        else "; the output at the worst index is bit for bit the recorded one"
        if same
        else "; the output at the worst index differs from the recorded one "
        "(another machine or library version)"
    )
    return ReplayResult(not res.passed, "numeric", payload["claim"], msg, details)


def rebuild_params(variant, encoded: dict, sizes: dict):
    """The variant's parameter object with the exact values of ``encoded`` (``{field: tensor or scalar}``).

    The object's type comes from the variant itself (``sample_params`` at the recorded sizes), never from
    the file; every field of the file must be a field of that object, with the same shape."""
    import torch  # lazy: start-up time

    for k in ("d", "heads"):
        v, cap = sizes.get(k), LIMITS[k]
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= cap:
            raise UntrustedInput(f"sizes.{k} must be an integer in [1, {cap}]; got {tty(repr(v))[:40]}")
    template = variant.sample_params(
        sizes["d"], sizes["heads"], generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    fields = vars(template) if not isinstance(template, dict) else template
    changes = {}
    for k, enc in encoded.items():
        if k not in fields:
            raise UntrustedInput(f"params.{tty(k)}: variant {variant.name!r} has no parameter of that name")
        old = fields[k]
        if isinstance(old, torch.Tensor):
            new = decode_tensor(enc, f"params.{k}")
            if tuple(new.shape) != tuple(old.shape):
                raise UntrustedInput(
                    f"params.{tty(k)}: shape {tuple(new.shape)} but variant {variant.name!r} has "
                    f"{tuple(old.shape)} at d={sizes['d']}, heads={sizes['heads']}"
                )
            changes[k] = new.to(old.dtype) if not old.is_floating_point() else new.to(torch.float64)
        elif old is None or isinstance(old, bool | int | str):
            if enc is not None and not isinstance(enc, bool | int | str):
                raise UntrustedInput(f"params.{tty(k)}: expected a scalar")
            changes[k] = enc
        elif isinstance(old, float):
            changes[k] = _fromhex(enc.get("float") if isinstance(enc, dict) else enc, f"params.{k}")
        else:
            raise UntrustedInput(f"params.{tty(k)}: a {type(old).__name__} cannot be read from a file")
    if isinstance(template, dict):
        return {**template, **changes}
    if dataclasses.is_dataclass(template):
        return dataclasses.replace(template, **changes)
    for k, v in changes.items():
        setattr(template, k, v)
    return template


def _object_array(nested, where: str):
    import numpy as np  # lazy: start-up time

    return np.array(decode_exact(nested, where), dtype=object)


def _replay_symbolic(payload: dict) -> ReplayResult:
    """Re-evaluate the recorded exact point through the project's own stage functions and reference; without
    a recorded point, re-run the claim's exact checker."""
    variant = _variant(payload) if payload["variant"] else None
    point_x = payload["inputs"].get("x")
    rerun = payload["rerun"]
    if variant is None or point_x is None:
        return _rerun_symbolic_claim(payload)
    # lazy: start-up time (torch, SymPy and the symbolic section load only for a symbolic replay)
    import torch

    from constructions.rnn import RNNWeights  # lazy: as above

    from .symbolic.algebra import fraction_array  # lazy: as above
    from .symbolic.subjects import resolve, run_template, sample  # lazy: as above

    sizes = {k: v for k, v in payload["sizes"].items() if k != "T"}
    for k, v in sizes.items():
        cap = LIMITS.get(k, 256)
        if not (v is None or isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= cap):
            raise UntrustedInput(f"sizes.{tty(k)} must be an integer in [1, {cap}] (prove's limit)")
    obs = payload.get("observed") if isinstance(payload.get("observed"), dict) else {}
    seed = rerun.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) > 1 << 63:
        raise UntrustedInput("rerun.seed must be a 64-bit integer")
    subject = resolve(
        variant, sizes, seed=seed, mode=obs.get("mode") if obs.get("mode") in ("symbolic", "exact") else None
    )
    x = _object_array(point_x, "inputs.x")
    P = {
        k: (None if payload["params"].get(k) is None else _object_array(payload["params"][k], f"params.{k}"))
        for k, shape in subject.fields
    }
    for k, shape in subject.fields:
        if shape is not None and (P[k] is None or tuple(P[k].shape) != tuple(shape)):
            raise UntrustedInput(f"params.{tty(k)}: expected shape {shape} for variant {variant.name!r}")
    if subject.mode == "symbolic":
        arrays = {k: v for k, v in P.items() if v is not None} | {"x": x}
        y_rnn, y_ref = subject.sides(arrays)
    else:  # the construction's float64 weights from the recorded parameters (dyadic rationals: exact)
        template = sample(variant, sizes, seed)
        changes = {}
        for k, a in P.items():
            if a is None:
                continue
            t = torch.tensor([float(v) for v in a.reshape(-1)], dtype=torch.float64).reshape(a.shape)
            if any(Fraction(float(v)) != v for v in a.reshape(-1)):
                raise UntrustedInput(f"params.{tty(k)} holds values that are not binary64 numbers")
            changes[k] = t
        params = dataclasses.replace(template, **changes) if dataclasses.is_dataclass(template) else template
        rnn = variant.construct(params)
        w = RNNWeights(*(fraction_array(t) for t in rnn.weights()))
        y_rnn = run_template(w, x)
        y_ref = subject.reference.evaluate(P, x)
    diff = [
        (i, j) for i in range(y_rnn.shape[0]) for j in range(y_rnn.shape[1]) if y_rnn[i, j] != y_ref[i, j]
    ]
    if not diff:
        return ReplayResult(
            False,
            "symbolic",
            payload["claim"],
            "the RNN and the reference agree exactly at the recorded point",
        )
    t0, o = diff[0]
    rec_t, rec_o = obs.get("t"), obs.get("output_index")
    same = (rec_t, rec_o) == (t0 + 1, o) and obs.get("rnn_output") == encode_exact(y_rnn[t0, o])
    msg = (
        f"at t={t0 + 1}, output {o}: RNN {y_rnn[t0, o]} vs reference {y_ref[t0, o]} (exact rationals; "
        f"{len(diff)} of {y_rnn.size} outputs differ)" + ("; the same values as recorded" if same else "")
    )
    return ReplayResult(True, "symbolic", payload["claim"], msg, {"differing_outputs": len(diff)})


def _rerun_symbolic_claim(payload: dict) -> ReplayResult:
    r = payload["rerun"]
    if r.get("command") != "prove":
        raise UntrustedInput("a symbolic counterexample without a point needs rerun.command 'prove'")
    c = rerun_claim({"rerun": r}).to_dict()
    bad = c["status"] in ("refuted", "failed", "expected-failure", "error")
    return ReplayResult(
        bad,
        "symbolic",
        payload["claim"],
        f"re-run of the claim's checker: {c['status']}: {c['message'][:300]}",
    )


def _replay_property(payload: dict) -> ReplayResult:
    try:  # lazy: start-up time (the property suite imports torch and Hypothesis)
        from properties.replay import replay_payload  # lazy: as above
    except ImportError:
        raise UntrustedInput(
            "property-suite counterexamples cannot be replayed by this version (properties.replay is missing)"
        ) from None
    res = replay_payload(payload)
    if isinstance(res, ReplayResult):
        return res
    return ReplayResult(bool(res.reproduced), "property", payload["claim"], str(res.message))
