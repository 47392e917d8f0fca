r"""Base class of the shipped variants and the parameter helpers they share.

A :class:`PlanVariant` supplies three things: ``sample_params``, an independent float64 ``reference``
(the layer as its paper defines it, :mod:`.reference`), and ``plan(params)`` (how it maps onto the
template, :mod:`.plan`). The base class derives ``construct``, ``num_neurons`` and the optional hooks of
:class:`constructions.registry.Variant`: ``magnitude`` (tolerance model's $M$), ``path_length`` ($n$),
``degenerate`` (in-domain degenerate parameters for the numeric check) and ``to_float64``.

Parameters are frozen dataclasses of tensors validated in ``__post_init__`` (style guide, rule 5);
``free_fields`` names the fields that may take *any* real value (so degenerate perturbations — rank
one, zero rows, repeated values, scales $10^{\pm3}$ — stay inside the variant's domain); constrained
fields (decays $\gamma\in[-1,1]$, $\beta\in[0,1]$, $A<0$) are 1-D and never perturbed.
"""

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import Variant, degenerate_params
from ..rnn import GatedLinearRNN
from .plan import Plan, build_rnn, plan_magnitude, plan_num_neurons, plan_path_length
from .reference import merge_heads, project

__all__ = [
    "PlanVariant",
    "check_projections",
    "check_input",
    "randn",
    "to_float64",
    "degenerate_params",
    "heads_qkv",
    "zeros_like_bias",
    "affine",
]


def randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> Tensor:
    """Float64 Gaussian draw from ``g`` (dtype conversion is the caller's)."""
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def check_projections(
    W_Q: Tensor, W_K: Tensor | None, W_V: Tensor, W_O: Tensor | None, *, key_rows: int | None = None
) -> tuple[int, int, int, int]:
    """Validate ``W_Q [H, d_k, d]``, ``W_K`` (same shape, or ``None``), ``W_V [H, d_v, d]``, ``W_O [d_out,
    H*d_v]``; return ``(H, d_k, d_v, d)``. Raises ``TypeError``/``ValueError`` saying what was expected."""
    for name, w in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V)):
        if w is None:
            continue
        require_tensor(name, w, allow_complex=False)
        if w.ndim != 3:
            raise ValueError(f"{name} must have 3 dimensions [heads, rows, d]; got shape {tuple(w.shape)}")
        require_finite(name, w)
    H, d_k, d = W_Q.shape
    if W_K is not None and W_K.shape != W_Q.shape:
        raise ValueError(f"W_K must have the shape of W_Q {tuple(W_Q.shape)}; got {tuple(W_K.shape)}")
    if W_V.shape[0] != H or W_V.shape[2] != d:
        raise ValueError(
            f"W_V must have shape [H, d_v, d] with H={H}, d={d} (from W_Q); got {tuple(W_V.shape)}"
        )
    if min(H, d_k, d, W_V.shape[1]) == 0:
        raise ValueError(f"sizes must be positive; got H={H}, d_k={d_k}, d_v={W_V.shape[1]}, d={d}")
    if key_rows is not None and d_k != key_rows:
        raise ValueError(f"W_Q has d_k={d_k} rows per head; expected {key_rows}")
    if W_O is not None:
        require_tensor("W_O", W_O, allow_complex=False)
        if W_O.ndim != 2 or W_O.shape[1] != H * W_V.shape[1]:
            raise ValueError(
                f"W_O must have shape [d_out, H*d_v] = [d_out, {H * W_V.shape[1]}]; got {tuple(W_O.shape)}"
            )
        require_finite("W_O", W_O)
    return H, d_k, W_V.shape[1], d


def check_input(x: object, d: int) -> Tensor:
    """Validate a layer input ``x [B, T, d]`` (real floating, finite)."""
    x = require_tensor("x", x, allow_complex=False)
    if x.ndim != 3:
        raise ValueError(f"x must have 3 dimensions [batch, time, d]; got shape {tuple(x.shape)}")
    if x.shape[2] != d:
        raise ValueError(f"x has d={x.shape[2]} features (shape {tuple(x.shape)}); expected d={d}")
    require_finite("x", x)
    return x


def heads_qkv(x: Tensor, W_Q: Tensor, W_K: Tensor, W_V: Tensor):
    """Float64 head-first ``q, k, v`` (``[B, H, T, *]``) of ``x`` (reference side)."""
    return project(x, W_Q), project(x, W_K), project(x, W_V)


def zeros_like_bias(W: Tensor) -> Tensor:
    return torch.zeros(*W.shape[:-1], 1, dtype=W.dtype, device=W.device)


def affine(W: Tensor, bias: Tensor | None = None) -> Tensor:
    """``[H, r, d] -> [H, r, d+1]``: append the bias column (zeros by default) that multiplies the constant
    1."""
    b = zeros_like_bias(W) if bias is None else bias[..., None].to(W.dtype)
    return torch.cat([W, b], dim=-1)


def to_float64(params: Any, device: str | torch.device = "cpu") -> Any:
    """Copy of a params dataclass with every floating tensor as float64 (complex128) on ``device``."""

    def cast(v):
        if isinstance(v, Tensor):
            if v.is_complex():
                return v.detach().to(device=device, dtype=torch.complex128)
            if v.is_floating_point():
                return v.detach().to(device=device, dtype=torch.float64)
            return v.detach().to(device)
        return v

    return dataclasses.replace(
        params, **{f.name: cast(getattr(params, f.name)) for f in dataclasses.fields(params)}
    )


class PlanVariant(Variant):
    """A variant realised by a :class:`~.plan.Plan` (see module docstring)."""

    #: fields that may take any real value (degenerate perturbations keep the params valid)
    free_fields: ClassVar[tuple[str, ...]] = ("W_Q", "W_K", "W_V", "W_O")
    #: the template extensions the construction uses (docs/variants/README.md, "How the variants sit on
    #: the template"): "E1", "E2", "upstream"
    extensions: ClassVar[tuple[str, ...]] = ()

    def plan(self, params: Any) -> Plan:
        raise NotImplementedError

    def d_in(self, params: Any) -> int:
        return params.W_V.shape[2]

    def _check(self, params: Any, x: object) -> Tensor:
        if not dataclasses.is_dataclass(params):
            raise TypeError(
                f"{self.name}: params must be the dataclass returned by sample_params; got "
                f"{type(params).__name__}"
            )
        return check_input(x, self.d_in(params))

    def construct(self, params: Any) -> GatedLinearRNN:
        return build_rnn(self.plan(params))

    def num_neurons(self, params: Any) -> int:
        return plan_num_neurons(self.plan(params))

    def path_length(self, params: Any, T: int) -> int:
        return plan_path_length(self.plan(params), T)

    def magnitude(self, params: Any, x: Tensor) -> Tensor:
        """$M$ of the tolerance model (float64, CPU): :func:`.plan.plan_magnitude`."""
        p64 = to_float64(params)
        return plan_magnitude(
            self.plan(p64), x.detach().to("cpu", torch.float64), self.path_length(p64, x.shape[1])
        )

    def degenerate(self, params: Any, g: torch.Generator, kind: int) -> Any:
        """In-domain degenerate params (only :attr:`free_fields` are perturbed)."""
        return degenerate_params(params, self.free_fields, g, kind)

    def _merge(self, params: Any, o: Tensor) -> Tensor:
        return merge_heads(o, params.W_O)
