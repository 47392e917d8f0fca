"""Peer implementations of the same attention: flash-linear-attention (fla) when importable, else a faithful
re-implementation of its pure-PyTorch reference.

``naive_recurrent_linear_attn`` below follows ``fla/ops/linear_attn/naive.py``
(fla-org/flash-linear-attention, read at commit 20ceee5; MIT): seq-first ``[B, T, H, K]`` tensors cast to
float32, a ``[B, H, K, V]`` state ``S = S + k_t v_t^T`` and ``o_t = S^T (scale q_t)`` by ``torch.einsum`` at
every step, written into a preallocated output. We call it with ``scale=1.0`` and ``normalize=False`` (the
paper's LSA has neither). It is written here from that description, not copied, so the peer exists on machines
where fla (which imports Triton at import time) cannot be installed; when ``fla`` imports, :func:`fla_naive`
returns fla's own. On CUDA, :func:`fla_kernels` returns fla's fused Triton kernels
(``fused_recurrent_linear_attn``, ``chunk_linear_attn``) as the peer.
"""

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["naive_recurrent_linear_attn", "fla_naive", "fla_kernels", "fla_simple_gla", "project_qkv"]


def naive_recurrent_linear_attn(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float | None = None,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Our re-implementation of fla's ``naive_recurrent_linear_attn`` (module docstring);
    ``normalize=False``."""
    dtype = q.dtype
    if scale is None:
        scale = q.shape[-1] ** -0.5
    B, T, H, K = q.shape
    V = v.shape[-1]
    q, k, v = (t.to(torch.float32) for t in (q, k, v))
    o = torch.empty_like(v)
    S = torch.zeros(B, H, K, V, device=q.device, dtype=torch.float32)
    if initial_state is not None:
        S = S + initial_state
    for t in range(T):
        S = S + torch.einsum("bhk,bhv->bhkv", k[:, t], v[:, t])
        o[:, t] = torch.einsum("bhkv,bhk->bhv", S, q[:, t] * scale)
    return o.to(dtype), (S if output_final_state else None)


def project_qkv(lsa, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``q, k, v`` of ``lsa`` for ``x``, seq-first ``[B, T, H, K]`` (fla's layout)."""
    q = torch.einsum("btd,hkd->bthk", x, lsa.W_Q.to(x.dtype))
    k = torch.einsum("btd,hkd->bthk", x, lsa.W_K.to(x.dtype))
    v = torch.einsum("btd,hvd->bthv", x, lsa.W_V.to(x.dtype))
    return q, k, v


def merge(lsa, o: Tensor) -> Tensor:
    """``[B, T, H, V]`` head outputs to the LSA's output (concatenation, then ``W_O`` if any)."""
    o = o.reshape(*o.shape[:2], -1)
    return o if lsa.W_O is None else o @ lsa.W_O.to(o.dtype).T


def fla_naive() -> tuple[Callable, str]:
    """fla's own naive reference if ``fla`` imports, else ours; and a label saying which."""
    try:
        with warnings.catch_warnings():  # fla warns at import when Triton has no GPU ("roll back to CPU")
            warnings.simplefilter("ignore")
            from fla.ops.linear_attn.naive import naive_recurrent_linear_attn as fn  # type: ignore

        def call(q, k, v):
            return fn(q, k, v, scale=1.0, normalize=False)[0]

        return call, "fla.ops.linear_attn.naive.naive_recurrent_linear_attn (installed fla)"
    except Exception:  # noqa: BLE001 - fla or triton missing/broken on this machine

        def call(q, k, v):
            return naive_recurrent_linear_attn(q, k, v, scale=1.0)[0]

        return call, (
            "benchmarks.peers.naive_recurrent_linear_attn (faithful re-implementation of fla's "
            "naive_recurrent_linear_attn; fla not importable here)"
        )


def fla_simple_gla() -> dict[str, Callable]:
    """fla's pure-PyTorch simple-GLA references (``fla.ops.simple_gla.naive``: the step loop and the log-space
    chunk form, ``scale=1``), called as ``f(q, k, v, g)`` with ``g`` the log-decay ``[B, T, H]``; ``{}``
    when fla is not importable (no re-implementation: these peers are reported only where fla is
    installed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fla.ops.simple_gla.naive import naive_chunk_simple_gla, naive_recurrent_simple_gla  # type: ignore
    except Exception:  # noqa: BLE001
        return {}
    return {
        "fla naive recurrent simple GLA (peer)": lambda q, k, v, g: naive_recurrent_simple_gla(
            q, k, v, g, scale=1.0, output_final_state=False
        )[0],
        "fla naive chunk simple GLA (peer)": lambda q, k, v, g: naive_chunk_simple_gla(q, k, v, g, scale=1.0)[
            0
        ],
    }


def fla_kernels() -> dict[str, Callable]:
    """fla's fused Triton kernels (CUDA only), ``{}`` when fla is not importable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fla.ops.linear_attn import chunk_linear_attn, fused_recurrent_linear_attn  # type: ignore
    except Exception:  # noqa: BLE001
        return {}
    return {
        "fla chunk_linear_attn (Triton)": lambda q, k, v: chunk_linear_attn(
            q, k, v, scale=1.0, normalize=False
        )[0],
        "fla fused_recurrent_linear_attn (Triton)": lambda q, k, v: fused_recurrent_linear_attn(
            q, k, v, scale=1.0, normalize=False
        )[0],
    }
