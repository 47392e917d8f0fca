"""Input validation shared by every public entry point.

Every check raises ``TypeError`` (wrong kind of object / dtype) or ``ValueError`` (wrong shape,
range or value) with a message that says *what* was wrong, *where*, and *what was expected*
(style guide, rule 6). Nothing here changes global state.
"""

import math

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def require_tensor(name: str, value: object, *, allow_complex: bool = True) -> Tensor:
    """Return ``value`` if it is a floating (or complex) ``torch.Tensor``; raise ``TypeError`` otherwise."""
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of floating dtype; got {type(value).__name__}"
            + (
                " (convert with torch.as_tensor(..., dtype=torch.float64))"
                if hasattr(value, "__array__")
                else ""
            )
        )
    ok = FLOAT_DTYPES + (COMPLEX_DTYPES if allow_complex else ())
    if value.dtype not in ok:
        raise TypeError(
            f"{name} must have a floating{' or complex' if allow_complex else ''} dtype; got {value.dtype}"
            " (integer and boolean tensors are not accepted: cast with .to(torch.float64))"
        )
    if value.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor; got layout {value.layout}")
    return value


def require_ndim(name: str, value: Tensor, ndim: int, axes: str) -> None:
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions [{axes}]; got shape {tuple(value.shape)}")


def require_size(name: str, value: Tensor, dim: int, expected: int, axis: str, why: str = "") -> None:
    if value.shape[dim] != expected:
        raise ValueError(
            f"{name} has {axis}={value.shape[dim]} (dimension {dim} of shape {tuple(value.shape)}); "
            f"expected {axis}={expected}{(' ' + why) if why else ''}"
        )


def all_finite(value: Tensor) -> bool:
    """Whether every entry is finite, in one read-only reduction: min and max propagate NaN and show +-Inf
    (``torch.isfinite(value).all()`` makes several full passes and a bool copy: 10x slower at 2M entries)."""
    if value.numel() == 0:
        return True
    if value.device.type == "meta":
        raise ValueError(
            "got a tensor on the 'meta' device (shape only, no values); expected a tensor with data "
            "on 'cpu' or 'cuda'"
        )
    real = torch.view_as_real(value) if value.is_complex() else value
    lo, hi = torch.aminmax(real.detach())
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def require_finite(name: str, value: Tensor) -> None:
    if value.device.type == "meta":
        raise ValueError(
            f"{name} is on the 'meta' device (shape only, no values); expected a tensor with data "
            "on 'cpu' or 'cuda'"
        )
    if all_finite(value):
        return
    bad = (~torch.isfinite(value)).nonzero()
    first = tuple(int(i) for i in bad[0]) if bad.numel() else ()
    raise ValueError(
        f"{name} contains {int((~torch.isfinite(value)).sum())} non-finite value(s) (NaN or Inf), "
        f"first at index {first}; expected finite values"
    )


def require_same_device(**tensors: Tensor) -> torch.device:
    devices = {name: t.device for name, t in tensors.items() if isinstance(t, Tensor)}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{k} on {v}" for k, v in devices.items())
        raise ValueError(f"all tensors must be on one device; got {listing}")
    return next(iter(devices.values()))


def require_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def require_finite_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return float(value)
