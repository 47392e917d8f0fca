r"""Replayable counterexamples: one JSON file per failure, and the code that reproduces it from that file.

Every refuted or failed claim (numeric, symbolic, property suite) writes its counterexample next to the
report, and ``python -m equivalence replay FILE`` reproduces the failure from the file alone (plus
``--import mine.py`` when the layer under test is the reader's own module).

The file (schema ``attention-rnn-equivalence/counterexample/v1``) is strict JSON::

    {"schema": ..., "kind": "numeric" | "symbolic" | "property", "claim": "<claim id>", "variant": "<name>",
     "sizes": {...}, "dtype": "float32", "params": {name: tensor}, "inputs": {"x": tensor},
     "expected": ..., "observed": ..., "rerun": {...}}

Tensors are stored *exactly*: ``{"dtype": "float64", "shape": [B, T, d], "hex": [float.hex per entry]}``
(binary floating point, read back bit for bit) or, for symbolic counterexamples, nested lists of exact
rationals ``"p/q"``. ``rerun`` holds what the evaluation needs besides the values (device, evaluation mode,
the user modules it imported, each with its sha256).

Reading a file never imports or runs anything it names: the replayer is chosen from :data:`REPLAYERS` by
``kind`` (a fixed table in this module), the variant is looked up among the registered ones, and modules
of the user's own are imported only when the reader passes them (``--import``); a file whose sha256
differs from the one recorded is reported as ``CODE CHANGED``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .report.safe import UntrustedInput, load_json_file, tty

__all__ = [
    "KINDS",
    "MAX_BYTES",
    "SCHEMA",
    "ReplayResult",
    "decode_exact",
    "decode_tensor",
    "encode_exact",
    "encode_tensor",
    "file_name",
    "load_counterexample",
    "payload_from_claim",
    "replay",
    "replay_command",
    "validate_counterexample",
    "write_counterexample",
]

SCHEMA = "attention-rnn-equivalence/counterexample/v1"
KINDS = ("numeric", "symbolic", "property")
#: the largest counterexample file read (checked before parsing)
MAX_BYTES = 32 << 20
_REQUIRED = {
    "schema": str,
    "kind": str,
    "claim": str,
    "variant": str,
    "sizes": dict,
    "dtype": str,
    "params": dict,
    "inputs": dict,
    "rerun": dict,
}
_OPTIONAL = {"expected": object, "observed": object, "message": str, "note": str}
_RATIONAL = re.compile(r"-?[0-9]{1,400}(/[0-9]{1,400})?")
_TENSOR_DTYPES = (
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "complex128",
    "complex64",
    "int64",
    "int32",
    "bool",
)


# -- exact encodings ---------------------------------------------------------------------------------
def encode_tensor(t) -> dict:
    """A torch tensor as ``{"dtype", "shape", "hex"}`` (floats: ``float.hex`` of each entry; complex: pairs;
    integers and booleans: ``"values"``), exactly."""
    import torch

    t = t.detach().to("cpu")
    dtype = str(t.dtype).replace("torch.", "")
    shape = list(t.shape)
    if t.is_complex():
        flat = t.to(torch.complex128).reshape(-1).tolist()
        return {
            "dtype": dtype,
            "shape": shape,
            "hex": [[float(z.real).hex(), float(z.imag).hex()] for z in flat],
        }
    if t.is_floating_point():
        return {
            "dtype": dtype,
            "shape": shape,
            "hex": [float(v).hex() for v in t.to(torch.float64).reshape(-1).tolist()],
        }
    return {"dtype": dtype, "shape": shape, "values": [int(v) for v in t.reshape(-1).tolist()]}


def _fromhex(s, where: str) -> float:
    if not isinstance(s, str) or len(s) > 40:
        raise UntrustedInput(f"{where}: expected a float.hex string; got {tty(repr(s))[:60]}")
    try:
        return float.fromhex(s)
    except ValueError:
        raise UntrustedInput(f"{where}: {tty(s)!r} is not a float.hex string") from None


def decode_tensor(obj, where: str = "tensor"):
    """The tensor of :func:`encode_tensor` (validated: dtype, shape and entry count)."""
    import torch

    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("dtype"), str)
        or not isinstance(obj.get("shape"), list)
    ):
        raise UntrustedInput(f"{where}: expected {{'dtype', 'shape', 'hex'}}; got {type(obj).__name__}")
    dtype, shape = obj["dtype"], obj["shape"]
    if dtype not in _TENSOR_DTYPES:
        raise UntrustedInput(f"{where}: dtype {tty(dtype)!r} is not one of {', '.join(_TENSOR_DTYPES)}")
    if len(shape) > 8 or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 1 << 24 for s in shape
    ):
        raise UntrustedInput(f"{where}: shape must be at most 8 non-negative integers; got {tty(shape)[:80]}")
    n = math.prod(shape)
    key = "values" if dtype in ("int64", "int32", "bool") else "hex"
    vals = obj.get(key)
    if not isinstance(vals, list) or len(vals) != n:
        raise UntrustedInput(
            f"{where}: expected {n} entries in {key!r} for shape {shape}; got "
            f"{len(vals) if isinstance(vals, list) else type(vals).__name__}"
        )
    tdtype = getattr(torch, dtype)
    if key == "values":
        if not all(isinstance(v, int) for v in vals):
            raise UntrustedInput(f"{where}: integer entries expected")
        return torch.tensor(vals, dtype=tdtype).reshape(shape)
    if dtype.startswith("complex"):
        if not all(isinstance(v, list) and len(v) == 2 for v in vals):
            raise UntrustedInput(f"{where}: complex entries are [real, imag] pairs of float.hex strings")
        flat = [complex(_fromhex(a, where), _fromhex(b, where)) for a, b in vals]
        return torch.tensor(flat, dtype=torch.complex128).reshape(shape).to(tdtype)
    flat = [_fromhex(v, where) for v in vals]
    return torch.tensor(flat, dtype=torch.float64).reshape(shape).to(tdtype)


def encode_exact(a) -> object:
    """Exact numbers (``int``, ``Fraction``, nested lists or NumPy object arrays) as strings ``"p/q"``."""
    if hasattr(a, "tolist") and not isinstance(a, int | Fraction):
        a = a.tolist()
    if isinstance(a, list | tuple):
        return [encode_exact(v) for v in a]
    if a is None:
        return None
    if isinstance(a, bool):
        return str(int(a))
    if isinstance(a, int | Fraction):
        return str(a)
    return str(a)


def decode_exact(obj, where: str = "value"):
    """Nested lists of ``"p/q"`` strings as nested lists of :class:`~fractions.Fraction` (validated)."""
    if isinstance(obj, list):
        return [decode_exact(v, where) for v in obj]
    if obj is None:
        return None
    if not isinstance(obj, str) or not _RATIONAL.fullmatch(obj):
        raise UntrustedInput(f"{where}: expected an exact rational 'p/q'; got {tty(repr(obj))[:60]}")
    q = Fraction(obj)
    return q


# -- files -------------------------------------------------------------------------------------------
def file_name(claim_id: str) -> str:
    """The file name of a claim's counterexample: ``counterexample-<claim id, lower case, dashes>.json``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", claim_id).strip("-").lower()[:150] or "claim"
    return f"counterexample-{slug}.json"


def validate_counterexample(payload: object) -> list[str]:
    """Problems of a counterexample payload (empty: valid)."""
    if not isinstance(payload, dict):
        return [f"a counterexample file holds a JSON object; got {type(payload).__name__}"]
    errors = []
    for k, t in _REQUIRED.items():
        if k not in payload:
            errors.append(f"missing field {k!r}")
        elif not isinstance(payload[k], t):
            errors.append(f"field {k!r} must be {t.__name__}; got {type(payload[k]).__name__}")
    for k in payload:
        if k not in _REQUIRED and k not in _OPTIONAL:
            errors.append(f"unknown field {tty(repr(k))[:60]}")
    if not errors and payload["schema"] != SCHEMA:
        errors.append(f"schema is {tty(repr(payload['schema']))[:80]}; this version reads {SCHEMA!r}")
    if not errors and payload["kind"] not in KINDS:
        errors.append(f"kind {tty(repr(payload['kind']))[:40]} is not one of {', '.join(KINDS)}")
    if not errors:
        imports = payload["rerun"].get("imports", [])
        if not isinstance(imports, list) or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("sha256"), str)
            for i in imports
        ):
            errors.append("rerun.imports must be a list of {'name', 'sha256'}")
    return errors


def write_counterexample(path: Path, payload: dict) -> Path:
    """Validate ``payload`` and write it to ``path`` atomically (sorted keys, strict JSON); return
    ``path``."""
    import json

    from .report.write import atomic_write

    errors = validate_counterexample(payload)
    if errors:
        raise ValueError("not a valid counterexample: " + "; ".join(errors))
    text = json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    path = Path(path)
    atomic_write(path, text)
    return path


def load_counterexample(path: Path) -> dict:
    """Read and validate a counterexample file (size-limited, strict JSON; nothing in it is executed)."""
    payload = load_json_file(path, max_bytes=MAX_BYTES, what="counterexample file")
    errors = validate_counterexample(payload)
    if errors:
        raise UntrustedInput(
            f"{tty(str(path))}: not a counterexample file of this version: {errors[0]}"
            + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")
        )
    return payload


def replay_command(name: str, imports=()) -> str:
    """The one-line command that replays the counterexample file ``name``."""
    import shlex

    extra = "".join(f" --import {shlex.quote(i)}" for i in imports)
    return f"python -m equivalence replay {shlex.quote(str(name))}{extra}"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- from claims ----------------------------------------------------------------------------------------
def payload_from_claim(claim: dict, imports: list[dict] | None = None) -> dict | None:
    """The counterexample payload of a claim (``ClaimResult.to_dict()``) whose counterexample can be replayed,
    or ``None``. ``imports``: ``[{"name", "sha256"}]`` of the user modules the run imported."""
    cx = claim.get("counterexample")
    if not isinstance(cx, dict):
        return None
    rerun = dict(claim.get("rerun") or {})
    rerun["imports"] = list(imports or [])
    if (
        isinstance(cx.get("schema"), str) and cx.get("schema") == SCHEMA
    ):  # a producer wrote the payload itself
        p = dict(cx)
        p.setdefault("rerun", rerun)
        return p
    if (
        claim.get("kind") == "numeric"
        and isinstance(cx.get("params"), dict)
        and isinstance(cx.get("x"), dict)
    ):
        rerun.update({"mode": cx.get("mode", rerun.get("mode", "auto")), "case": cx.get("case")})
        return {
            "schema": SCHEMA,
            "kind": "numeric",
            "claim": claim["id"],
            "variant": claim.get("construction", ""),
            "sizes": dict(cx.get("sizes", {})),
            "dtype": str(rerun.get("dtype", "float64")),
            "params": cx["params"],
            "inputs": {"x": cx["x"]},
            "expected": {
                "reference": cx.get("expected"),
                "bound": cx.get("bound"),
                "worst_index": cx.get("worst_index"),
            },
            "observed": {
                "candidate": cx.get("observed"),
                "max_abs_error": cx.get("max_abs_error"),
                "message": cx.get("message", ""),
            },
            "rerun": rerun,
            "message": str(claim.get("message", ""))[:2000],
        }
    if claim.get("kind") in ("symbolic", "impossibility", "invariance"):
        point = cx.get("point") if isinstance(cx.get("point"), dict) else {}
        return {
            "schema": SCHEMA,
            "kind": "symbolic",
            "claim": claim["id"],
            "variant": str(cx.get("construction", claim.get("construction", ""))),
            "sizes": dict(cx.get("sizes", {})) if isinstance(cx.get("sizes"), dict) else {},
            "dtype": "exact",
            "params": point.get("params", {}) if isinstance(point.get("params"), dict) else {},
            "inputs": {"x": point["x"]} if "x" in point else {},
            "expected": {"reference_output": cx.get("reference_output")},
            "observed": {
                "rnn_output": cx.get("rnn_output"),
                "t": cx.get("t"),
                "output_index": cx.get("output_index"),
                "mode": cx.get("mode"),
            },
            "rerun": rerun,
            "message": str(claim.get("message", ""))[:2000],
        }
    return None


# -- replay --------------------------------------------------------------------------------------------
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
    from .report.pins import import_pinned

    return import_pinned(list(imports), payload["rerun"].get("imports", []), strict=False)


def _variant(payload: dict):
    import constructions

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
    import torch

    from .numeric import evaluate_case

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
    import torch

    from .commands.prove import LIMITS

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


def encode_params(params) -> dict:
    """``{field: encoded tensor or scalar}`` of a parameter object (inverse of :func:`rebuild_params`)."""
    import torch

    fields = params if isinstance(params, dict) else vars(params)
    out = {}
    for k, v in fields.items():
        if isinstance(v, torch.Tensor):
            out[k] = encode_tensor(v)
        elif isinstance(v, float):
            out[k] = {"float": v.hex()}
        elif v is None or isinstance(v, bool | int | str):
            out[k] = v
    return out


def _object_array(nested, where: str):
    import numpy as np

    return np.array(decode_exact(nested, where), dtype=object)


def _replay_symbolic(payload: dict) -> ReplayResult:
    """Re-evaluate the recorded exact point through the project's own stage functions and reference; without
    a recorded point, re-run the claim's exact checker."""
    variant = _variant(payload) if payload["variant"] else None
    point_x = payload["inputs"].get("x")
    rerun = payload["rerun"]
    if variant is None or point_x is None:
        return _rerun_symbolic_claim(payload)
    import torch

    from constructions.rnn import RNNWeights

    from .symbolic.algebra import fraction_array
    from .symbolic.subjects import resolve, run_template

    from .commands.prove import LIMITS

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
        from .symbolic.subjects import sample

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
    from .commands.check_certificate import rerun_claim

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
    try:
        from properties.replay import replay_payload
    except ImportError:
        raise UntrustedInput(
            "property-suite counterexamples cannot be replayed by this version (properties.replay is missing)"
        ) from None
    res = replay_payload(payload)
    if isinstance(res, ReplayResult):
        return res
    return ReplayResult(bool(res.reproduced), "property", payload["claim"], str(res.message))
