r"""Upstream feature layers: per-step maps $x_t\mapsto z_t$ computed *before* the gated RNN template.

Why they exist (derived; ``docs/variants/feature-maps.md``): the template's input gate is a product of two
*affine* functions of $\tilde x_t$, and with constant $\lambda$ each output is a polynomial of total degree
$\le 4$ in $x_1,\dots,x_t$ (degree $\le 2$ per gating stage). Feature maps $\phi$ that are not affine (elu+1,
ReLU, softmax features, Based's quadratic $k\otimes k$ on the key side, L2-normalised keys, HGRN2's
$1-\sigma(\cdot)$ keys, mLSTM's $e^{\tilde\imath_t}$ and Mamba-2's $\Delta_t$ input scalings) cannot be
produced inside one template layer; given the features from an upstream layer, the template realises the rest
exactly. ``GatedLinearRNN(..., upstream=Upstream(...))`` runs the layer, then the template.

An :class:`Upstream` concatenates *blocks* (each an ``nn.Module`` with ``width``, ``forward`` and
``magnitude``). ``magnitude(x, n)`` is the tolerance model's input magnitude: the block on absolute
values plus $\delta/n$ where $u\,\delta$ bounds the rounding of a non-polynomial feature beyond a few ulps
(first order: $|\phi'(g)|\,(d+2)\,L$, $L = |W|\,|\tilde x|$ the absolute pre-activation).
"""

from collections.abc import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.nn import functional as F

from .._validation import require_finite, require_ndim, require_tensor
from ..tolerance import pointwise_magnitude

__all__ = [
    "Upstream",
    "Identity",
    "HeadMap",
    "Taylor2",
    "Quadratic",
    "GatedCopy",
    "OneHotArgmax",
    "Shifted",
    "FEATURE_FNS",
    "softplus",
]


def softplus(g: Tensor) -> Tensor:
    r"""$\log(1 + e^g)$ accurate everywhere (``torch.nn.functional.softplus`` returns ``g`` itself above its
    threshold 20, a relative error of $e^{-20}/20\approx 10^{-10}$ that the tolerance model would flag)."""
    return torch.logaddexp(g, torch.zeros_like(g))


#: pointwise feature functions: name -> (phi, |phi'| bound, the computation of phi on absolute values).
#: The last is the tolerance model's magnitude of the evaluation itself: elu(g) + 1 is a sum, so its rounding
#: is relative to |elu(g)| + 1 (for g << 0 the result e^g is far below that: cancellation).
FEATURE_FNS = {
    "identity": (lambda g: g, lambda g: torch.ones_like(g), torch.abs),
    "elu+1": (
        lambda g: F.elu(g) + 1,
        lambda g: torch.where(g > 0, torch.ones_like(g), torch.exp(g.clamp(max=0))),
        lambda g: F.elu(g).abs() + 1,
    ),
    "relu": (F.relu, lambda g: torch.ones_like(g), lambda g: F.relu(g)),
    "sigmoid": (torch.sigmoid, lambda g: torch.sigmoid(g) * torch.sigmoid(-g), torch.sigmoid),
    "exp": (torch.exp, torch.exp, torch.exp),
    "softplus": (softplus, torch.sigmoid, softplus),
    # SiLU g*sigmoid(g) (HGRN's input): a product, so its rounding is relative to |g| sigmoid(g) = |silu(g)|
    "silu": (
        lambda g: g * torch.sigmoid(g),
        lambda g: torch.sigmoid(g) * (1 + g * torch.sigmoid(-g)),
        lambda g: (g * torch.sigmoid(g)).abs(),
    ),
    # RWKV-6's decay w = exp(-exp(g)) in (0, 1): |w'| = e^g w
    "exp-neg-exp": (
        lambda g: torch.exp(-torch.exp(g)),
        lambda g: torch.exp(g - torch.exp(g)),
        lambda g: torch.exp(-torch.exp(g)),
    ),
}


def _cpu64(t: Tensor) -> Tensor:
    return t.detach().to("cpu", torch.float64)


class Identity(nn.Module):
    """$z = x$ (width ``d``): the raw input, passed through (exact)."""

    def __init__(self, d: int):
        super().__init__()
        self.width = d

    def forward(self, x: Tensor) -> Tensor:
        return x

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        return _cpu64(x).abs()


class HeadMap(nn.Module):
    r"""$\phi(W^h x_t + b^h)$ per head, head-major: width $H r$. ``W [H, r, d]``, ``bias [H, r]`` or ``None``;
    ``fn`` in :data:`FEATURE_FNS`, or ``"l2norm"`` ($W^h x / \lVert W^h x\rVert$, 0 at 0)."""

    def __init__(self, W: Float[Tensor, "heads r d"], fn: str, bias: Float[Tensor, "heads r"] | None = None):
        super().__init__()
        require_tensor("W", W, allow_complex=False)
        require_ndim("W", W, 3, "heads, r, d")
        if fn not in FEATURE_FNS and fn != "l2norm":
            raise ValueError(f"fn must be one of {sorted(FEATURE_FNS) + ['l2norm']}; got {fn!r}")
        if bias is not None and bias.shape != W.shape[:2]:
            raise ValueError(f"bias must have shape [H, r] = {tuple(W.shape[:2])}; got {tuple(bias.shape)}")
        self.register_buffer("W", W)
        self.register_buffer("bias", bias)
        self.fn = fn
        self.width = W.shape[0] * W.shape[1]

    def _pre(self, x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
        g = torch.einsum("btd,hrd->bthr", x, W)
        return g if b is None else g + b

    def forward(self, x: Tensor) -> Tensor:
        dtype = torch.promote_types(x.dtype, self.W.dtype)
        g = self._pre(x.to(dtype), self.W.to(dtype), None if self.bias is None else self.bias.to(dtype))
        if self.fn == "l2norm":
            norm = g.norm(dim=-1, keepdim=True)
            out = torch.where(
                norm > 0, g / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(g)
            )
        else:
            out = FEATURE_FNS[self.fn][0](g)
        return out.reshape(*x.shape[:2], self.width)

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        x64, W, b = _cpu64(x), _cpu64(self.W), None if self.bias is None else _cpu64(self.bias)
        L = self._pre(x64.abs(), W.abs(), None if b is None else b.abs())
        if self.fn == "l2norm":  # unit vectors: |entries| <= 1 (used by negative controls only)
            val = self.forward(x64.to(self.W.dtype)).to(torch.float64).reshape(L.shape).abs()
            return (val + (W.shape[2] + 2) / n).reshape(*x.shape[:2], self.width)
        g = self._pre(x64, W, b)
        # rounding, pre-activation sensitivity and the underflow floor of the working precision (one model)
        mag = pointwise_magnitude(self.fn, g, L, W.shape[2], n)
        return mag.reshape(*x.shape[:2], self.width)


class Taylor2(nn.Module):
    r"""Based's second-order Taylor features of $k^h = W^h x$ (Arora et al. 2024): ``side="key"`` gives
    $[1,\ k,\ w_{ab} k_a k_b]_{a\le b}$ with $w_{aa}=\tfrac12$, $w_{ab}=1$; ``side="query"`` gives
    $[1,\ q,\ q_a q_b]_{a\le b}$, so $\phi_q(q)^\top\phi_k(k) = 1 + q^\top k + \tfrac12 (q^\top k)^2$ exactly
    (the weights are powers of two). Width $H\,(1 + r + r(r+1)/2)$."""

    def __init__(self, W: Float[Tensor, "heads r d"], side: str):
        super().__init__()
        require_tensor("W", W, allow_complex=False)
        require_ndim("W", W, 3, "heads, r, d")
        if side not in ("key", "query"):
            raise ValueError(f"side must be 'key' or 'query'; got {side!r}")
        H, r, _ = W.shape
        self.register_buffer("W", W)
        self.side = side
        pairs = [(a, b) for a in range(r) for b in range(a, r)]
        self.register_buffer("ia", torch.tensor([a for a, _ in pairs], dtype=torch.long, device=W.device))
        self.register_buffer("ib", torch.tensor([b for _, b in pairs], dtype=torch.long, device=W.device))
        w = [0.5 if (a == b and side == "key") else 1.0 for a, b in pairs]
        self.register_buffer("w", torch.tensor(w, dtype=torch.float64, device=W.device))
        self.per_head = 1 + r + len(pairs)
        self.width = H * self.per_head

    def _features(self, k: Tensor, w: Tensor) -> Tensor:
        quad = k[..., self.ia] * k[..., self.ib] * w
        return torch.cat([torch.ones_like(k[..., :1]), k, quad], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        dtype = torch.promote_types(x.dtype, self.W.dtype)
        k = torch.einsum("btd,hrd->bthr", x.to(dtype), self.W.to(dtype))
        return self._features(k, self.w.to(dtype)).reshape(*x.shape[:2], self.width)

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        k = torch.einsum("btd,hrd->bthr", _cpu64(x).abs(), _cpu64(self.W).abs())
        return (
            self._features(k.to(self.ia.device), self.w.to(torch.float64))
            .to("cpu")
            .reshape(*x.shape[:2], self.width)
        )


class Quadratic(nn.Module):
    r"""Rebased's quadratic features of $k^h = W^h x$ (Aksenov et al. 2024): ``side="key"`` gives
    $[w_{ab} k_a k_b]_{a\le b}$ with $w_{aa}=1$, $w_{ab}=2$; ``side="query"`` gives $[q_a q_b]_{a\le b}$, so
    $\phi_q(q)^\top\phi_k(k) = (q^\top k)^2$ exactly (the weights are powers of two). Width $H\,r(r+1)/2$."""

    def __init__(self, W: Float[Tensor, "heads r d"], side: str):
        super().__init__()
        require_tensor("W", W, allow_complex=False)
        require_ndim("W", W, 3, "heads, r, d")
        if side not in ("key", "query"):
            raise ValueError(f"side must be 'key' or 'query'; got {side!r}")
        H, r, _ = W.shape
        self.register_buffer("W", W)
        self.side = side
        pairs = [(a, b) for a in range(r) for b in range(a, r)]
        self.register_buffer("ia", torch.tensor([a for a, _ in pairs], dtype=torch.long, device=W.device))
        self.register_buffer("ib", torch.tensor([b for _, b in pairs], dtype=torch.long, device=W.device))
        w = [2.0 if (a != b and side == "key") else 1.0 for a, b in pairs]
        self.register_buffer("w", torch.tensor(w, dtype=torch.float64, device=W.device))
        self.per_head = len(pairs)
        self.width = H * self.per_head

    def _features(self, k: Tensor, w: Tensor) -> Tensor:
        return k[..., self.ia] * k[..., self.ib] * w

    def forward(self, x: Tensor) -> Tensor:
        dtype = torch.promote_types(x.dtype, self.W.dtype)
        k = torch.einsum("btd,hrd->bthr", x.to(dtype), self.W.to(dtype))
        return self._features(k, self.w.to(dtype)).reshape(*x.shape[:2], self.width)

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        k = torch.einsum("btd,hrd->bthr", _cpu64(x).abs(), _cpu64(self.W).abs())
        return (
            self._features(k.to(self.ia.device), self.w.to(torch.float64))
            .to("cpu")
            .reshape(*x.shape[:2], self.width)
        )


class Shifted(nn.Module):
    r"""Token shift: ``block`` evaluated on the *previous* input, $z_t = \text{block}(x_{t-1})$, and $z_0 = 0$
    (RWKV's time shift; Peng et al. 2023/2024). The one block with memory across time: one step of input
    memory, held outside the recurrent state $h$ (so a run continued from a state must be given the previous
    input again). Width: the block's."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block
        self.width = block.width
        #: steps of past input the block reads (the inner block's, plus this shift)
        self.memory = 1 + getattr(block, "memory", 0)

    @staticmethod
    def _shift(z: Tensor) -> Tensor:
        return torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self._shift(self.block(x))

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        return self._shift(self.block.magnitude(x, n))


class GatedCopy(nn.Module):
    r"""$\phi(w^h\cdot\tilde x_t)\, x_t$ per head (width $H d$): mLSTM's input gate $e^{\tilde\imath_t}$
    (``fn="exp"``), Mamba-2's step $\Delta_t$ (``fn="softplus"``) scaling the input. ``w [H, d+1]`` (last
    column: bias). ``cap``: soft-cap the logit first, $g\mapsto c\tanh(g/c)$ (``None``: no cap)."""

    def __init__(self, w: Float[Tensor, "heads d_plus_1"], fn: str, cap: float | None = None):
        super().__init__()
        require_tensor("w", w, allow_complex=False)
        require_ndim("w", w, 2, "heads, d+1")
        if fn not in FEATURE_FNS:
            raise ValueError(f"fn must be one of {sorted(FEATURE_FNS)}; got {fn!r}")
        if cap is not None and not cap > 0:
            raise ValueError(f"cap must be None or > 0; got {cap!r}")
        self.register_buffer("w", w)
        self.fn = fn
        self.cap = cap
        self.width = w.shape[0] * (w.shape[1] - 1)

    def _gate_logit(self, x: Tensor, w: Tensor, capped: bool = True) -> Tensor:
        g = x @ w[:, :-1].T + w[:, -1]  # [B, T, H]
        return self.cap * torch.tanh(g / self.cap) if (capped and self.cap is not None) else g

    def forward(self, x: Tensor) -> Tensor:
        dtype = torch.promote_types(x.dtype, self.w.dtype)
        x = x.to(dtype)
        gate = FEATURE_FNS[self.fn][0](self._gate_logit(x, self.w.to(dtype)))
        return (gate[..., :, None] * x[..., None, :]).reshape(*x.shape[:2], self.width)

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        x64, w = _cpu64(x), _cpu64(self.w)
        g = self._gate_logit(x64, w)
        L = self._gate_logit(x64.abs(), w.abs(), capped=False)  # the cap's slope is <= 1
        gate = pointwise_magnitude(self.fn, g, L, w.shape[1] - 1, n)  # the model of constructions.tolerance
        return (gate[..., :, None] * x64.abs()[..., None, :]).reshape(*x.shape[:2], self.width)


class OneHotArgmax(nn.Module):
    r"""One-hot slot per head: $e_{j^*}$ with $j^* = \arg\max_j x_{t,\,c_{h,j}}$ (``coords [H, r]`` long). The
    scores are exact copies of input entries, so every precision picks the same slot (ties: the first)."""

    def __init__(self, coords: Int[Tensor, "heads r"]):
        super().__init__()
        if not isinstance(coords, Tensor) or coords.dtype != torch.long or coords.ndim != 2:
            raise TypeError("coords must be a 2-D torch.long tensor [H, r] of input coordinates")
        self.register_buffer("coords", coords)
        self.width = coords.numel()

    def forward(self, x: Tensor) -> Tensor:
        if self.coords.numel() and int(self.coords.max()) >= x.shape[-1]:
            raise ValueError(
                f"coords refer to input coordinate {int(self.coords.max())} but x has d={x.shape[-1]}"
            )
        scores = x[..., self.coords]  # [B, T, H, r]
        hot = F.one_hot(scores.argmax(dim=-1), self.coords.shape[1]).to(x.dtype)
        return hot.reshape(*x.shape[:2], self.width)

    def magnitude(self, x: Tensor, n: int) -> Tensor:
        return self.forward(_cpu64(x))


class Upstream(nn.Module):
    """Concatenation of feature blocks: $z_t = [\\text{block}_1(x_t); \\dots]$ (per time step; only a
    :class:`Shifted` block looks one step back).

    ``d_in`` is the width of ``x`` (checked by ``GatedLinearRNN``); ``width`` the width of ``z``."""

    def __init__(self, d_in: int, blocks: Sequence[nn.Module]):
        super().__init__()
        if not blocks:
            raise ValueError("Upstream needs at least one block")
        self.d_in = int(d_in)
        self.blocks = nn.ModuleList(blocks)
        self.width = sum(b.width for b in blocks)
        # : steps of past input the layer reads (0: per step; 1 with a token shift). The RNN's carried state
        # does
        #: not hold them: ``rnn(x2, state=h)`` continues a sequence only when this is 0.
        self.memory = max(getattr(b, "memory", 0) for b in blocks)
        self.offsets = []
        o = 0
        for b in blocks:
            self.offsets.append(o)
            o += b.width

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, width={self.width}"

    def forward(self, x: Float[Tensor, "batch time d_in"]) -> Float[Tensor, "batch time width"]:
        if x.shape[-1] != self.d_in:
            raise ValueError(f"upstream layer expects d_in={self.d_in} features; got shape {tuple(x.shape)}")
        outs = [b(x) for b in self.blocks]
        dtype = outs[0].dtype
        for o in outs[1:]:
            dtype = torch.promote_types(dtype, o.dtype)
        return torch.cat([o.to(dtype) for o in outs], dim=-1)

    def magnitude(self, x: Float[Tensor, "batch time d_in"], n: int) -> Float[Tensor, "batch time width"]:
        """Error-inflated magnitude of the features (float64, CPU): see the module docstring."""
        for (
            b
        ) in self.blocks:  # no safe default exists for an unknown non-polynomial block: refuse, saying why
            if not callable(getattr(b, "magnitude", None)):
                raise TypeError(
                    f"upstream block {type(b).__name__} has no magnitude(x, n): every block must declare "
                    "its error behaviour (constructions.tolerance.pointwise_magnitude; "
                    "docs/tutorial_add_variant.md, 'Upstream blocks')"
                )
        out = torch.cat([b.magnitude(x, n) for b in self.blocks], dim=-1)
        require_finite("upstream magnitude", out)
        return out
