r"""The counterexample file: one strict-JSON file per failure, read back exactly.

Every refuted or failed claim (numeric, symbolic, property suite) writes its counterexample next to the
report; ``python -m equivalence replay FILE`` (:mod:`equivalence.replay`) reproduces the failure from the file
alone. This module is the format only: encodings, validation, reading and writing; it runs nothing.

The file (schema ``attention-rnn-equivalence/counterexample/v1``) is strict JSON::

    {"schema": ..., "kind": "numeric" | "symbolic" | "property", "claim": "<claim id>", "variant": "<name>",
     "sizes": {...}, "dtype": "float32", "params": {name: tensor}, "inputs": {"x": tensor},
     "expected": ..., "observed": ..., "rerun": {...}}

Tensors are stored *exactly*: ``{"dtype": "float64", "shape": [B, T, d], "hex": [float.hex per entry]}``
(binary floating point, read back bit for bit) or, for symbolic counterexamples, nested lists of exact
rationals ``"p/q"``. ``rerun`` holds what the evaluation needs besides the values (device, evaluation mode,
the user modules it imported, each with its sha256).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from fractions import Fraction
from pathlib import Path

from .safe import UntrustedInput, load_json_file, tty
from .staging import atomic_write

__all__ = [
    "KINDS",
    "MAX_BYTES",
    "SCHEMA",
    "decode_exact",
    "decode_tensor",
    "encode_exact",
    "encode_params",
    "encode_tensor",
    "file_name",
    "load_counterexample",
    "payload_from_claim",
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
    import torch  # lazy: start-up time (reading a report needs no torch)

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
    import torch  # lazy: start-up time (reading a report needs no torch)

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
    extra = "".join(f" --import {shlex.quote(i)}" for i in imports)
    return f"python -m equivalence replay {shlex.quote(str(name))}{extra}"


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


def encode_params(params) -> dict:
    """``{field: encoded tensor or scalar}`` of a parameter object (inverse of :func:`rebuild_params`)."""
    import torch  # lazy: start-up time (reading a report needs no torch)

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
