r"""Causal linear self-attention (LSA), the target of the construction.

Zucchet et al. 2023 (arXiv 2309.01775), Sec. 3 / Fig. 1: linear self-attention without softmax,
without normalisation and without the $1/\sqrt{d_k}$ scale (fold any scale into ``W_Q``).
For head $h$ with $q^h_t = W^h_Q x_t$, $k^h_t = W^h_K x_t$, $v^h_t = W^h_V x_t$:

$$ y_t = W_O \,\mathrm{concat}_h\Big( \sum_{s \le t} v^h_s \, (k^h_s{}^\top q^h_t) \Big)
      = W_O\,\mathrm{concat}_h\big(S^h_t q^h_t\big), \qquad S^h_t = S^h_{t-1} + v^h_t k^h_t{}^\top,\ S^h_0 = 0
      .$$

Two evaluation paths are kept side by side (naive beside fast): the parallel masked form
(``forward``) and the recurrent form over the $d_v\times d_k$ memory $S_t$ (``forward_recurrent``).
"""

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn

from ._validation import require_finite, require_ndim, require_same_device, require_size, require_tensor

__all__ = ["LinearSelfAttention"]


class LinearSelfAttention(nn.Module):
    r"""Multi-head causal linear self-attention (no softmax, no normalisation, no scale).

    **Arguments**

    - ``W_Q``, ``W_K``: ``[H, d_k, d]`` query and key maps $W^h_Q, W^h_K$.
    - ``W_V``: ``[H, d_v, d]`` value maps $W^h_V$.
    - ``W_O``: ``[d_out, H*d_v]`` output projection, or ``None`` for plain concatenation of the heads
      (then ``d_out = H*d_v``).

    Weights and inputs must be finite (NaN or Inf raises ``ValueError`` naming the tensor and the first bad
    index). The weights are stored as buffers (plain tensors, no gradient by default); the module keeps their
    dtype and device. Call ``lsa(x)`` with ``x: [B, T, d]`` to get ``[B, T, d_out]``.
    """

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor | None

    def __init__(
        self,
        W_Q: Float[Tensor, "heads d_k d"],
        W_K: Float[Tensor, "heads d_k d"],
        W_V: Float[Tensor, "heads d_v d"],
        W_O: Float[Tensor, "d_out hdv"] | None = None,
    ):
        super().__init__()
        for name, w in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V)):
            require_tensor(name, w, allow_complex=False)
            require_ndim(name, w, 3, "heads, rows, d")
        if W_Q.shape != W_K.shape:
            raise ValueError(
                f"W_Q and W_K must have the same shape [H, d_k, d]; got W_Q {tuple(W_Q.shape)} "
                f"and W_K {tuple(W_K.shape)}"
            )
        H, d_k, d = W_Q.shape
        require_size("W_V", W_V, 0, H, "H", "(the number of heads of W_Q)")
        require_size("W_V", W_V, 2, d, "d", "(the input dimension of W_Q)")
        if H == 0 or d_k == 0 or d == 0 or W_V.shape[1] == 0:
            raise ValueError(f"LSA sizes must be positive; got H={H}, d_k={d_k}, d_v={W_V.shape[1]}, d={d}")
        dtypes = {W_Q.dtype, W_K.dtype, W_V.dtype}
        if W_O is not None:
            require_tensor("W_O", W_O, allow_complex=False)
            require_ndim("W_O", W_O, 2, "d_out, H*d_v")
            require_size("W_O", W_O, 1, H * W_V.shape[1], "H*d_v", "(heads times value dimension)")
            dtypes.add(W_O.dtype)
        if len(dtypes) > 1:
            raise TypeError(f"LSA weights must share one dtype; got {sorted(map(str, dtypes))}")
        require_same_device(W_Q=W_Q, W_K=W_K, W_V=W_V, **({"W_O": W_O} if W_O is not None else {}))
        for name, w in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V), ("W_O", W_O)):
            if w is not None:  # NaN/Inf weights would make every output NaN: refuse them here, saying where
                require_finite(name, w)
        self.register_buffer("W_Q", W_Q)
        self.register_buffer("W_K", W_K)
        self.register_buffer("W_V", W_V)
        self.register_buffer("W_O", W_O)

    # -- sizes -------------------------------------------------------------------------------
    @property
    def heads(self) -> int:
        return self.W_Q.shape[0]

    @property
    def d(self) -> int:
        return self.W_Q.shape[2]

    @property
    def d_k(self) -> int:
        return self.W_Q.shape[1]

    @property
    def d_v(self) -> int:
        return self.W_V.shape[1]

    @property
    def d_out(self) -> int:
        return self.W_O.shape[0] if self.W_O is not None else self.heads * self.d_v

    def extra_repr(self) -> str:
        return f"heads={self.heads}, d={self.d}, d_k={self.d_k}, d_v={self.d_v}, d_out={self.d_out}"

    # -- evaluation ----------------------------------------------------------------------------
    def check_input(self, x: object) -> Tensor:
        """Validate ``x`` (``[B, T, d]``, floating, same device) and return it."""
        x = require_tensor("x", x, allow_complex=False)
        require_ndim("x", x, 3, "batch, time, d")
        require_size("x", x, 2, self.d, "d", "(the input dimension of the attention layer)")
        if x.device != self.W_Q.device:
            raise ValueError(f"x is on {x.device} but the attention weights are on {self.W_Q.device}")
        require_finite("x", x)  # a NaN input would pass silently into every later output of its sequence
        return x

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        dtype = torch.promote_types(x.dtype, self.W_Q.dtype)
        x = x.to(dtype)
        q = torch.einsum("btd,hkd->bhtk", x, self.W_Q.to(dtype))
        k = torch.einsum("btd,hkd->bhtk", x, self.W_K.to(dtype))
        v = torch.einsum("btd,hvd->bhtv", x, self.W_V.to(dtype))
        return q, k, v

    def _merge_heads(self, o: Shaped[Tensor, "batch heads time d_v"]) -> Tensor:
        B, H, T, dv = o.shape
        o = o.permute(0, 2, 1, 3).reshape(B, T, H * dv)
        return o if self.W_O is None else o @ self.W_O.to(o.dtype).T

    def forward(self, x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time d_out"]:
        r"""Parallel (masked) form: $Y^h = (\mathrm{tril}(Q^h K^{h\top}))\,V^h$."""
        x = self.check_input(x)
        q, k, v = self._project(x)
        T = x.shape[1]
        scores = q @ k.transpose(-1, -2)  # [B,H,T(t),T(s)] = k_s . q_t
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~mask, 0)
        return self._merge_heads(scores @ v)

    def forward_recurrent(self, x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time d_out"]:
        r"""Recurrent form over the memory: $S_t = S_{t-1} + v_t k_t^\top$, $o_t = S_t q_t$."""
        x = self.check_input(x)
        q, k, v = self._project(x)
        B, H, T, _ = q.shape
        S = q.new_zeros(B, H, self.d_v, self.d_k)
        outs = []
        for t in range(T):
            S = S + v[:, :, t, :, None] * k[:, :, t, None, :]
            outs.append((S @ q[:, :, t, :, None])[..., 0])
        o = torch.stack(outs, dim=2) if outs else q.new_zeros(B, H, 0, self.d_v)
        return self._merge_heads(o)

    # -- identifiable quantities ---------------------------------------------------------------
    def head_products(self) -> tuple[Float[Tensor, "heads d_out d"], Float[Tensor, "heads d d"]]:
        r"""Per-head identifiable products $P_h = W_O^h W_V^h$ and $Q_h = W_K^{h\top} W_Q^h$.

        Head $h$ contributes $y_t \mathrel{+}= P_h \sum_{s\le t} x_s (x_s^\top Q_h x_t)$, so only these
        products (and, for the whole layer, :func:`attention_tensor`) are determined by the function;
        $P_h$ and $Q_h$ are further defined only up to $P_h \to cP_h$, $Q_h \to Q_h / c$.
        """
        H, dv = self.heads, self.d_v
        if self.W_O is None:
            W_O = torch.eye(H * dv, dtype=self.W_V.dtype, device=self.W_V.device)
        else:
            W_O = self.W_O
        W_O_h = W_O.reshape(W_O.shape[0], H, dv).permute(1, 0, 2)  # [H, d_out, d_v]
        P = W_O_h @ self.W_V  # [H, d_out, d]
        Q = self.W_K.transpose(1, 2) @ self.W_Q  # [H, d, d]
        return P, Q
