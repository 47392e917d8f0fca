r"""Registry of gating variants: the one extension point of the project.

A *variant* is an attention-like layer (``reference``) together with a construction that builds a
gated linear RNN (``construct``) claimed to compute the same function. Every registered variant gets
the symbolic proofs, the property suite and a report entry for free. A user adds one from their own
module::

    import constructions

    @constructions.register("my-variant")
    class MyVariant(constructions.Variant):
        status = "exact"
        ...

Contract: :mod:`constructions.contract` lists every hook, required and optional, with its type and one line
(``HOOKS``; ``VariantProtocol`` for the required ones): ``sample_params(d, heads, generator=..., dtype=...)``
returns a params object; ``reference(params, x)`` and ``construct(params)(x)`` map ``[B, T, d]`` to
``[B, T, d_out]``; ``num_neurons(params)`` is the state size of the construction; ``status`` is ``"exact"``,
``"partial"`` (with ``partial_reason``) or ``"impossible"`` (negative control: the suite must *fail* it).
Optional hooks (tolerance model, proofs, second forms) are looked up by name through
:func:`constructions.contract.hook`, which refuses names outside the contract.

``params_arrays`` are the params' tensor fields in declaration order (``None`` for absent optional ones).
The shipped variants (``constructions.variants``, ``docs/variants/``) register on import of ``constructions``;
:func:`summary` tabulates every registered variant.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from .attention import LinearSelfAttention
from .lsa import compressed_weights, direct_weights, lsa_to_rnn, num_neurons_compressed, num_neurons_direct
from .rnn import GatedLinearRNN
from .tolerance import compressed_weight_floor, lsa_rnn_budget, weight_floor_magnitude

__all__ = [
    "Degenerate",
    "LSAParams",
    "STATUSES",
    "Variant",
    "available",
    "degenerate_params",
    "degenerate_tensor",
    "get",
    "register",
    "summary",
    "unregister",
]

STATUSES = ("exact", "partial", "impossible")
_REGISTRY: dict[str, "Variant"] = {}


class Degenerate(IntEnum):
    """The kinds of degenerate weights the numeric check draws (an ``int`` for the ``degenerate`` hook; other
    ints mean generic weights, left unchanged)."""

    RANK_ONE = 0  #: an outer product (rank one in the last two axes)
    ZERO_ROWS = 1  #: the first half of the rows zero
    HALVES = 2  #: values rounded to multiples of 1/2 (many repeated values)
    SCALED = 3  #: scaled by $10^e$, $e\in\{-3..3\}$ (huge or tiny)


def degenerate_tensor(t: Tensor, g: torch.Generator, kind: int) -> Tensor:
    """A degenerate copy of the weight ``t`` of :class:`Degenerate` ``kind`` (other kinds: an unchanged
    copy); draws from ``g`` only what the kind needs."""
    t = t.detach().clone()
    if kind == Degenerate.RANK_ONE and t.ndim >= 2:
        a = torch.randn(*t.shape[:-1], 1, generator=g, dtype=torch.float64)
        b = torch.randn(*t.shape[:-2], 1, t.shape[-1], generator=g, dtype=torch.float64)
        t = (a * b).to(t.dtype)
    elif kind == Degenerate.ZERO_ROWS and t.ndim >= 2:
        t[..., : max(1, t.shape[-2] // 2), :] = 0
    elif kind == Degenerate.HALVES:
        t = torch.round(t * 2) / 2
    elif kind == Degenerate.SCALED:
        t = t * 10.0 ** float(torch.randint(-3, 4, (1,), generator=g))
    return t


def degenerate_params(params: Any, fields: tuple[str, ...], g: torch.Generator, kind: int) -> Any:
    """New params with the ``fields`` made degenerate (:func:`degenerate_tensor` of each, in order)."""
    changes = {
        name: degenerate_tensor(getattr(params, name), g, kind)
        for name in fields
        if getattr(params, name) is not None
    }
    return dataclasses.replace(params, **changes)


class Variant:
    """Base class of a gating variant (subclass it and decorate with :func:`register`)."""

    name: ClassVar[str] = ""
    status: ClassVar[Literal["exact", "partial", "impossible"]] = "exact"
    partial_reason: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: citation of the recurrence, e.g. "Zucchet et al. 2023, Sec. 3"
    source: ClassVar[str] = ""
    # : the pure-PyTorch fla reference this mirrors, e.g.
    # "fla.ops.linear_attn.naive.naive_recurrent_linear_attn"
    oracle: ClassVar[str] = ""

    def sample_params(
        self,
        d: int,
        heads: int = 1,
        *,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float64,
        **sizes: int,
    ) -> Any:
        raise NotImplementedError

    def reference(self, params: Any, x: Tensor) -> Tensor:
        raise NotImplementedError

    def construct(self, params: Any) -> GatedLinearRNN:
        raise NotImplementedError

    def num_neurons(self, params: Any) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<variant {self.name!r} status={self.status}>"


def register(name: str, *, replace: bool = False) -> Callable:
    """Class (or instance) decorator: ``@register("name")`` adds a variant to the registry.

    Re-registering a name raises ``ValueError`` unless ``replace=True`` (so a typo cannot silently
    shadow a shipped variant).
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(
            f"variant name must be a non-empty string of letters, digits, '-', '_', '.'; got {name!r}"
        )

    def deco(obj):
        inst = obj() if isinstance(obj, type) else obj
        if not isinstance(inst, Variant):
            raise TypeError(
                f"@register({name!r}) expects a Variant subclass or instance; got {type(inst).__name__}"
            )
        if inst.status not in STATUSES:
            raise ValueError(f"variant {name!r} has status {inst.status!r}; expected one of {STATUSES}")
        if inst.status == "partial" and not inst.partial_reason:
            raise ValueError(
                f"variant {name!r} is 'partial' but gives no partial_reason explaining what is reachable"
            )
        if name in _REGISTRY and not replace:
            raise ValueError(
                f"a variant named {name!r} is already registered; pass replace=True to override it"
            )
        if isinstance(obj, type):
            obj.name = name
        else:
            inst.name = name
        _REGISTRY[name] = inst
        return obj

    return deco


def unregister(name: str) -> None:
    """Remove a variant (mainly for tests that register temporary ones)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Variant:
    """The registered variant ``name``; ``KeyError`` lists the available names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no variant named {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names of all registered variants, sorted."""
    return sorted(_REGISTRY)


def summary(d: int = 4, heads: int = 2, seed: int = 0) -> list[dict]:
    """One row per registered variant: ``name``, ``status``, ``neurons`` (the construction's state size for
    parameters sampled at ``d``, ``heads`` with the variant's default sizes), ``source``,
    ``partial_reason``."""
    rows = []
    for name in available():
        v = _REGISTRY[name]
        p = v.sample_params(d, heads, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        rows.append(
            {
                "name": name,
                "status": v.status,
                "neurons": v.num_neurons(p),
                "source": v.source,
                "partial_reason": v.partial_reason,
            }
        )
    return rows


# -- the base construction of the paper, as registered variants ---------------------------------
@dataclass(frozen=True)
class LSAParams:
    """Parameters of multi-head linear self-attention: ``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``,
    ``W_O [d_out, H*d_v]`` or ``None``."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor | None = None

    def lsa(self) -> LinearSelfAttention:
        return LinearSelfAttention(self.W_Q, self.W_K, self.W_V, self.W_O)


def sample_lsa_params(
    d: int,
    heads: int = 1,
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
    d_k: int | None = None,
    d_v: int | None = None,
    d_out: int | None = None,
) -> LSAParams:
    """Gaussian LSA weights scaled by $1/\\sqrt{d}$ (``d_k = d_v = d`` unless given; ``W_O`` when
    ``d_out``)."""
    d_k = d if d_k is None else d_k
    d_v = d if d_v is None else d_v
    scale = d**-0.5

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype) * scale

    W_O = randn(d_out, heads * d_v) if d_out else None
    return LSAParams(randn(heads, d_k, d), randn(heads, d_k, d), randn(heads, d_v, d), W_O)


class _LSAVariant(Variant):
    method: ClassVar[str] = "direct"
    status = "exact"
    source = "Zucchet et al. 2023, Sec. 3 and App. A (construction of Fig. 1)"
    oracle = "fla.ops.linear_attn.naive.naive_recurrent_linear_attn (scale=1, normalize=False)"

    def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, **sizes):
        return sample_lsa_params(d, heads, generator=generator, dtype=dtype, **sizes)

    def reference(self, params, x):
        return params.lsa()(x)

    def magnitude(self, params, x, dtype=None):
        """The LSA on absolute weights and inputs, in float64 on CPU: the tolerance model's $M$. The direct
        construction only copies the LSA's weights (its readout $W_OP$ multiplies by a 0/1 selection,
        exactly), so its $M$ does not depend on the working ``dtype``."""
        p = params

        def a(t):
            return None if t is None else t.detach().abs().to("cpu", torch.float64)

        return LinearSelfAttention(a(p.W_Q), a(p.W_K), a(p.W_V), a(p.W_O))(a(x))

    def path_length(self, params, T):
        H, d_k, d = params.W_Q.shape
        d_v = params.W_V.shape[1]
        # LSA path + the RNN's own path (dense worst case over the construction's sizes) + weight rounding
        rnn = self.construct(params)
        return lsa_rnn_budget(T, d, d_k, d_v, H, rnn.num_neurons, rnn.num_gates)

    def construct(self, params):
        return lsa_to_rnn(params.lsa(), self.method)

    def degenerate(self, params, g, kind):
        """Degenerate weights (rank one, zero rows, halves, scaled by 10^(-3..3)): every LSA weight is
        free."""
        return degenerate_params(params, ("W_Q", "W_K", "W_V", "W_O"), g, kind)

    def symbolic_weights(self, W_Q, W_K, W_V, W_O=None):
        build = direct_weights if self.method == "direct" else compressed_weights
        return build(W_Q, W_K, W_V, W_O)


@register("lsa-direct")
class LSADirect(_LSAVariant):
    method = "direct"
    description = (
        "Multi-head causal linear self-attention, direct construction: key-value neurons "
        "(lambda=1) kv[h,i,j] and query neurons (lambda=0) q[h,j]; H*d_k*(d_v+1) neurons."
    )

    def num_neurons(self, params):
        H, d_k, _ = params.W_Q.shape
        return num_neurons_direct(H, d_k, params.W_V.shape[1])


@register("lsa-compressed")
class LSACompressed(_LSAVariant):
    method = "compressed"
    description = (
        "Multi-head causal linear self-attention, compressed construction: symmetric store "
        "s[a,b] of sum x x^T (lambda=1) and input neurons x[c] (lambda=0); d(d+1)/2 + d neurons."
    )

    def num_neurons(self, params):
        return num_neurons_compressed(params.W_Q.shape[2])

    def magnitude(self, params, x, dtype=None):
        r"""$M$ of the LSA on absolute values plus the propagated underflow of the readout weights, which the
        construction forms as products at the working ``dtype`` (``None``: safe for every working precision):
        :func:`constructions.tolerance.compressed_weight_floor` through
        :func:`constructions.tolerance.weight_floor_magnitude` (derived; docs/tolerance.md)."""
        M = super().magnitude(params, x)
        F = compressed_weight_floor(params.W_Q, params.W_K, params.W_V, params.W_O, x)
        return M + weight_floor_magnitude(F, self.path_length(params, x.shape[1]), dtype)
