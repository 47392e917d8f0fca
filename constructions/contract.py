r"""The variant contract: every hook a variant may provide, in one place (required or optional, type, one
line).

:class:`VariantProtocol` lists the required members (a ``typing.Protocol``: ``isinstance(v, VariantProtocol)``
checks them at run time); :data:`HOOKS` lists every member, required and optional, with its signature and
what it is for. Code that asks a variant for an optional hook does so through :func:`hook`, which refuses
names not in :data:`HOOKS` (so a lookup cannot drift from the documented contract); a test greps the code for
``hasattr(variant, ...)`` / ``getattr(variant, ...)`` and checks each name is listed here.
``docs/tutorial_add_variant.md`` shows the same table (a test keeps them equal).
"""

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["Hook", "HOOKS", "VariantProtocol", "hook", "hook_names", "hooks_table"]


@dataclass(frozen=True)
class Hook:
    """One member of the contract: ``name``, ``required``, ``signature`` (types), ``doc`` (one line)."""

    name: str
    required: bool
    signature: str
    doc: str


HOOKS: tuple[Hook, ...] = (
    # -- required ----------------------------------------------------------------------------------
    Hook("name", True, "ClassVar[str]", "registry name, set by @register"),
    Hook(
        "status",
        True,
        'ClassVar[Literal["exact", "partial", "impossible"]]',
        "exact: construction equals reference; partial: see partial_reason; impossible: negative control",
    ),
    Hook(
        "sample_params",
        True,
        "(d: int, heads: int = 1, *, generator: torch.Generator, dtype: torch.dtype, **sizes) -> Params",
        "a params object (frozen dataclass of tensors), validated on construction",
    ),
    Hook(
        "reference",
        True,
        "(params, x: Tensor[B, T, d]) -> Tensor[B, T, d_out]",
        "the layer as its paper defines it, float64, never through the template",
    ),
    Hook("construct", True, "(params) -> GatedLinearRNN", "the template RNN claimed to compute reference"),
    Hook("num_neurons", True, "(params) -> int", "state size of construct(params)"),
    # -- descriptive (strings; required where stated) ------------------------------------------------
    Hook(
        "partial_reason",
        False,
        "ClassVar[str]",
        "what is reachable and what lies outside (required if partial)",
    ),
    Hook("description", False, "ClassVar[str]", "one paragraph: the construction and its neuron count"),
    Hook("source", False, "ClassVar[str]", "citation of the recurrence"),
    Hook("oracle", False, "ClassVar[str]", "the fla reference it is cross-checked against"),
    # -- tolerance model -------------------------------------------------------------------------------
    Hook(
        "magnitude",
        False,
        "(params, x, dtype=None) -> Tensor[B, T, d_out]",
        "the tolerance model's M (float64, CPU); dtype (optional keyword): the working precision, for "
        "constructions that form weights as products at it",
    ),
    Hook(
        "path_length", False, "(params, T: int) -> int", "the tolerance model's n (roundings along one path)"
    ),
    Hook(
        "degenerate",
        False,
        "(params, g: torch.Generator, kind: int) -> Params",
        "degenerate params of registry.Degenerate kind that stay in the variant's domain (numeric check)",
    ),
    # -- proofs ------------------------------------------------------------------------------------------
    Hook(
        "recurrence",
        False,
        "(params) -> constructions.recurrence.Recurrence",
        "one-step float64 form (init, step, readout); the symbolic lift proves against it",
    ),
    Hook(
        "symbolic_weights",
        False,
        "(*param_arrays) -> RNNWeights",
        "the construction on NumPy object arrays (symbolic-weight tier)",
    ),
    Hook(
        "symbolic_reference",
        False,
        "(*param_arrays, x: ndarray[T, d]) -> ndarray[T, d_out]",
        "the exact reference on object arrays (SZ tier, impossibility hypotheses)",
    ),
    Hook(
        "symbolic_invariant",
        False,
        "(subject) -> invariant",
        "an induction invariant; unused by the prover (a variant defining it is lifted from its torch code)",
    ),
    Hook(
        "impossibility_claim",
        False,
        "ClassVar[str]",
        "the certificate id a negative control rests on (checked on symbolic_reference)",
    ),
    Hook(
        "method", False, 'ClassVar[Literal["direct", "compressed"]]', "which construction (the LSA variants)"
    ),
    # -- second forms and plan variants -----------------------------------------------------------------
    Hook(
        "reference_parallel", False, "(params, x) -> Tensor", "an independent (masked, parallel) second form"
    ),
    Hook("reference_recurrent", False, "(params, x) -> Tensor", "an independent recurrent second form"),
    Hook(
        "plan",
        False,
        "(params) -> constructions.variants.plan.Plan",
        "how a PlanVariant sits on the template",
    ),
    Hook(
        "d_in",
        False,
        "(params) -> int",
        "width of the input x when it is not d (upstream blocks); else construct(params).d_in",
    ),
    Hook("free_fields", False, "ClassVar[tuple[str, ...]]", "params fields that may take any real value"),
    Hook(
        "extensions",
        False,
        "ClassVar[tuple[str, ...]]",
        'template extensions used: "input-dependent-decay", "complex-decay", "upstream", "token-shift"',
    ),
    Hook(
        "finish", False, "(params, y_reachable) -> Tensor", "partial variants: the step outside the template"
    ),
)


def hook_names(required: bool | None = None) -> tuple[str, ...]:
    """Names in :data:`HOOKS` (all, or only the required / optional ones)."""
    return tuple(h.name for h in HOOKS if required is None or h.required == required)


def hook(variant: Any, name: str) -> Any:
    """The variant's member ``name`` or ``None`` if it has none; ``KeyError`` for a name not in the
    contract."""
    if name not in hook_names():
        raise KeyError(f"{name!r} is not a hook of the variant contract; known: {', '.join(hook_names())}")
    return getattr(variant, name, None)


def hooks_table() -> str:
    """:data:`HOOKS` as the Markdown table shown in the tutorial."""
    rows = "".join(
        f"| `{h.name}` | {'required' if h.required else 'optional'} | `{h.signature}` | {h.doc} |\n"
        for h in HOOKS
    )
    return "| hook | | type | what for |\n|---|---|---|---|\n" + rows


@runtime_checkable
class VariantProtocol(Protocol):
    """The required members of a variant (:data:`HOOKS` with ``required=True``)."""

    name: ClassVar[str]
    status: ClassVar[str]

    def sample_params(
        self,
        d: int,
        heads: int = 1,
        *,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float64,
        **sizes: int,
    ) -> Any: ...

    def reference(self, params: Any, x: Tensor) -> Tensor: ...

    def construct(self, params: Any) -> Any: ...

    def num_neurons(self, params: Any) -> int: ...
