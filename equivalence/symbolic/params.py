r"""A variant's parameters as the proofs see them: sampled at given sizes, split into tensor fields, and
rounded to a dyadic grid.

Both routes of the lift stage start here: :mod:`.subjects` (the built-in LSA wiring against the paper's
statement, and negative controls' exact hooks) and the torch lift (:mod:`.simulation`,
:mod:`.lifted_claims`). Rounding to multiples of $1/\mathrm{GRID}$ keeps products and sums of parameters
exact in float64, so a construction that multiplies them (e.g. the compressed one) yields rational weights
without rounding error.
"""

import dataclasses

import torch

__all__ = ["GRID", "quantise", "sample", "tensor_fields"]

GRID = 8  # sampled parameters are rounded to multiples of 1/GRID


def sample(variant, sizes: dict, seed: int):
    """``variant.sample_params`` at ``sizes`` (``d``, ``heads``, optional ``d_k``, ``d_v``, ``d_out``) in
    float64, from a generator seeded with ``seed``; a variant whose ``sample_params`` takes no ``d_k``,
    ``d_v`` or ``d_out`` is sampled at ``d`` and ``heads`` only."""
    g = torch.Generator().manual_seed(seed)
    extra = {k: sizes[k] for k in ("d_k", "d_v", "d_out") if sizes.get(k)}
    try:
        return variant.sample_params(
            sizes["d"], sizes.get("heads", 1), generator=g, dtype=torch.float64, **extra
        )
    except TypeError:
        if not extra:
            raise
        g = torch.Generator().manual_seed(seed)
        return variant.sample_params(sizes["d"], sizes.get("heads", 1), generator=g, dtype=torch.float64)


def tensor_fields(params) -> list[tuple[str, object]]:
    """The parameter arrays of a params object, in declaration order: dataclass fields (or mapping items)
    whose value is a tensor or ``None`` (an absent optional array, e.g. ``W_O``). ``TypeError`` for any other
    params object."""
    if dataclasses.is_dataclass(params):
        items = [(f.name, getattr(params, f.name)) for f in dataclasses.fields(params)]
    elif isinstance(params, dict):
        items = list(params.items())
    else:
        raise TypeError(f"params of type {type(params).__name__} are neither a dataclass nor a mapping")
    return [(k, v) for k, v in items if v is None or isinstance(v, torch.Tensor)]


def quantise(params):
    r"""``params`` with every floating tensor field rounded to a multiple of $1/\mathrm{GRID}$. A nonzero
    entry never rounds to zero (it becomes $\pm 1/\mathrm{GRID}$): a zero would be a degenerate sample (e.g.
    a write strength $\beta = 0$ leaves the state unreachable)."""
    changes = {}
    for k, v in tensor_fields(params):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            q = torch.round(v * GRID) / GRID
            changes[k] = torch.where((q == 0) & (v != 0), torch.sign(v) / GRID, q)
    if dataclasses.is_dataclass(params):
        return dataclasses.replace(params, **changes)
    return {**params, **changes}
