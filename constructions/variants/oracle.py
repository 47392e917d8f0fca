r"""Adapters to flash-linear-attention (``fla-core``), the optional external oracle (``pip install
.[oracle]``).

fla keeps pure-PyTorch references next to its Triton kernels (``fla/ops/<family>/naive.py``); they are an
implementation independent of ours. This module converts our parameters and inputs to fla's conventions,
*explicitly*, and back:

- **layout**: public fla ops and most naive references are sequence-first ``[B, T, H, K]`` ("SF");
  ``naive_retention``, ``naive_parallel_based`` and ``delta_rule_recurrence`` are head-first
  ``[B, H, T, K]`` ("HF"); ours are HF internally (:mod:`.reference`) and ``[B, T, d]`` at the layer;
- **scale**: we have no $d_k^{-1/2}$ (fold it into $W_Q$), so we pass ``scale=1.0`` where fla takes one and
  pre-multiply $q$ by $\sqrt{d_k}$ where fla hard-wires $d_k^{-1/2}$ (``naive_recurrent_gla``,
  ``naive_retention``, ``delta_rule_recurrence``);
- **gates** are log-space in fla (``g``, ``gk``: $\log a_t\le 0$, applied with ``exp``): we pass $\log$ of our
  decays (``logsigmoid(.)/normaliser``, $\Delta_tA$ for Mamba-2, $\log\gamma$ for fixed decays);
- **state**: fla's state is $[K, V]$ with $o = S^\top q$; ours is $[d_v, d_k]$ with $o = Sq$:
  :func:`state_from_fla` transposes;
- **normalisation** off (``normalize=False``, ``use_norm=False``) except for the normalised variant.

Tested in ``tests/test_oracle*.py`` (marked ``oracle``; skipped with a reason when fla cannot be imported).
fla 0.6.0 imports its Triton kernels with every ``naive`` module, so ``triton`` must be importable even on a
CPU machine (there fla warns "Triton is not supported on current platform, roll back to CPU"; the naive
references then run on CPU). Most naive references compute in float32 internally: ``working_dtype`` records
the precision the tolerance model must grant.
"""

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from .reference import merge_heads, project, rope
from .upstream import softplus

__all__ = [
    "fla_status",
    "load",
    "OracleSpec",
    "NAIVE",
    "FUSED",
    "oracle_output",
    "sf",
    "hf",
    "state_from_fla",
]


def fla_status() -> str | None:
    """``None`` when fla's naive references import; otherwise the reason (for ``pytest.skip``)."""
    try:
        load("fla.ops.linear_attn.naive.naive_recurrent_linear_attn")
    except ImportError as e:
        return (
            f"flash-linear-attention is not importable ({type(e).__name__}: {e}); install the extra with "
            "`pip install .[oracle]` (fla-core needs `triton` importable, even on CPU)"
        )
    return None


def load(path: str) -> Callable:
    """Import ``package.module.function`` from fla, silencing fla's import-time platform warnings."""
    module, name = path.rsplit(".", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = importlib.import_module(module)
    return getattr(mod, name)


def sf(t: Tensor) -> Tensor:
    """Head-first ``[B, H, T, K]`` -> sequence-first ``[B, T, H, K]`` (contiguous)."""
    return t.transpose(1, 2).contiguous()


def hf(t: Tensor) -> Tensor:
    """Sequence-first ``[B, T, H, K]`` -> head-first ``[B, H, T, K]``."""
    return t.transpose(1, 2)


def state_from_fla(S: Tensor) -> Tensor:
    """fla's state ``[B, H, K, V]`` ($o = S^\\top q$) -> ours ``[B, H, d_v, d_k]`` ($o = Sq$)."""
    return S.transpose(-1, -2)


def _gl(x: Tensor, W: Tensor) -> Tensor:
    """Gate logits of ``[x; 1]``: ``W [..., d+1]`` -> head-first ``[B, ..., T]`` (float64)."""
    x, W = x.to(torch.float64), W.to(torch.float64)
    return torch.movedim(torch.einsum("btd,...d->bt...", x, W[..., :-1]) + W[..., -1], 1, 2)


@dataclass(frozen=True)
class OracleSpec:
    """How to run one variant through fla: ``adapter(params, x, fn, device) -> (y [B, T, d_out], extras)``."""

    variant: str
    function: str  # dotted path of the fla function
    layout: str  # "SF" or "HF": the layout the fla function takes
    working_dtype: torch.dtype  # precision fla computes in (the tolerance model's u)
    adapter: Callable
    note: str = ""


def _qkv(x, p, names=("W_Q", "W_K", "W_V")):
    return tuple(project(x, getattr(p, n)) for n in names)


# -- adapters: naive references (CPU) ---------------------------------------------------------------
def _linear_attn(p, x, fn, device):
    q, k, v = _qkv(x, p)
    o, S = fn(
        sf(q).to(device),
        sf(k).to(device),
        sf(v).to(device),
        scale=1.0,
        output_final_state=True,
        normalize=False,
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {
        "state": state_from_fla(S).to("cpu", torch.float64)
    }


def _simple_gla_from(q, k, v, log_a, fn, device):
    o, S = fn(
        sf(q).to(device),
        sf(k).to(device),
        sf(v).to(device),
        log_a.transpose(1, 2).contiguous().to(device),
        scale=1.0,
        output_final_state=True,
    )
    return hf(o).to("cpu", torch.float64), state_from_fla(S).to("cpu", torch.float64)


def _retention_simple_gla(p, x, fn, device):
    q, k, v = _qkv(x, p)
    B, H, T, _ = q.shape
    log_a = torch.log(p.gamma.to(torch.float64))[None, :, None].expand(B, H, T)
    o, S = _simple_gla_from(q, k, v, log_a, fn, device)
    return merge_heads(o, p.W_O), {"state": S}


def _retention_naive(p, x, fn, device):
    from .retention import retnet_gammas  # lazy: the variant modules import this one (import cycle)

    H, d_k = p.W_Q.shape[:2]
    if not torch.allclose(p.gamma.to(torch.float64), retnet_gammas(H), rtol=0, atol=1e-15):
        raise ValueError(
            "fla's naive_retention hard-wires gamma_h = 1 - 2^(-5-h); sample with gamma='retnet'"
        )
    q, k, v = _qkv(x, p)
    if p.theta is not None:  # the fla layer rotates q, k before the op
        q, k = rope(q, p.theta), rope(k, p.theta)
    o = fn((q * d_k**0.5).to(device), k.to(device), v.to(device))  # HF; fixed scale d_k^-1/2
    return merge_heads(o.to("cpu", torch.float64), p.W_O), {}


def _simple_gla(p, x, fn, device):
    q, k, v = _qkv(x, p)
    log_a = F.logsigmoid(_gl(x, p.W_g)) / p.normalizer  # [B, H, T]
    o, S = _simple_gla_from(q, k, v, log_a, fn, device)
    return merge_heads(o, p.W_O), {"state": S}


def _gla(p, x, fn, device):
    q, k, v = _qkv(x, p)
    gk = F.logsigmoid(_gl(x, p.W_gk)) / p.normalizer  # [B, H, T, d_k]
    d_k = q.shape[-1]
    o, S = fn(
        sf(q * d_k**0.5).to(device),
        sf(k).to(device),
        sf(v).to(device),
        sf(gk).to(device),
        output_final_state=True,
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {
        "state": state_from_fla(S).to("cpu", torch.float64)
    }


def _hgrn2(p, x, fn, device):
    q, _, v = _qkv(x, p, ("W_Q", "W_Q", "W_V"))
    lb = p.lower_bound
    alpha = lb + (1 - lb) * torch.sigmoid(_gl(x, p.W_F))
    d_k = q.shape[-1]
    o, S = fn(
        sf(q * d_k**0.5).to(device),
        sf(1 - alpha).to(device),
        sf(v).to(device),
        sf(torch.log(alpha)).to(device),
        output_final_state=True,
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {
        "state": state_from_fla(S).to("cpu", torch.float64)
    }


def _mamba2(p, x, fn, device):
    C, Bk, xh = _qkv(x, p, ("W_C", "W_B", "W_x"))
    dt = softplus(_gl(x, p.w_dt))  # [B, H, T]
    o, S = _simple_gla_from(C, Bk, dt[..., None] * xh, dt * p.A.to(torch.float64)[None, :, None], fn, device)
    o = o + p.D.to(torch.float64)[None, :, None, None] * xh
    return merge_heads(o, p.W_O), {"state": S}


def _feature_map(p, x, fn, device):
    from .upstream import FEATURE_FNS  # lazy: the variant modules import this one (import cycle)

    phi = FEATURE_FNS[p.feature_map][0]
    q, k, v = _qkv(x, p)
    o, S = fn(
        sf(phi(q)).to(device),
        sf(phi(k)).to(device),
        sf(v).to(device),
        scale=1.0,
        output_final_state=True,
        normalize=False,
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {
        "state": state_from_fla(S).to("cpu", torch.float64)
    }


def _normalized(p, x, fn, device):
    from .upstream import FEATURE_FNS  # lazy: the variant modules import this one (import cycle)

    phi = FEATURE_FNS[p.feature_map][0]
    q, k, v = _qkv(x, p)
    o, _ = fn(sf(phi(q)).to(device), sf(phi(k)).to(device), sf(v).to(device), scale=1.0, normalize=True)
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {}


def _based(p, x, fn, device):
    q, k, v = _qkv(x, p)
    o = fn(q.to(device), k.to(device), v.to(device), scale=1.0, use_norm=False)  # HF
    return merge_heads(o.to("cpu", torch.float64), p.W_O), {}


def _delta(q, k, v, beta, fn, device):
    B, H, T, d_k = q.shape
    b = beta.to(torch.float64)[None, :, None].expand(B, H, T).contiguous()
    o, S = fn((q * d_k**0.5).to(device), k.to(device), v.to(device), b.to(device), output_final_state=True)
    return o.to("cpu", torch.float64), state_from_fla(S).to("cpu", torch.float64)


def _deltanet(p, x, fn, device):
    from .controls import DeltaNet  # lazy: the variant modules import this one (import cycle)

    q, k, v = DeltaNet()._qkv(p, x.to(torch.float64))
    o, S = _delta(q, k, v, p.beta, fn, device)
    return merge_heads(o, p.W_O), {"state": S}


def _delta_onehot(p, x, fn, device):
    from .controls import OneHotDeltaRule  # lazy: the variant modules import this one (import cycle)

    q, _, v = _qkv(x, p, ("W_Q", "W_Q", "W_V"))
    o, S = _delta(q, OneHotDeltaRule().keys(p, x), v, p.beta, fn, device)
    return merge_heads(o, p.W_O), {"state": S}


def _softmax(p, x, fn, device):
    q, k, v = _qkv(x, p)
    o, _ = fn(sf(q).to(device), sf(k).to(device), sf(v).to(device), scale=1.0)
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {}


def _mamba1(p, x, fn, device):
    """One GLA head per channel: q = C sqrt(N) (fla's fixed scale N^-1/2), k = B, v = dt u, gk = dt A."""
    x = x.to(torch.float64)
    B_, T, Dm = x.shape
    dt = softplus(_gl(x, p.W_dt)).transpose(1, 2)  # [B, T, D]
    Bt, Ct = x @ p.W_B.to(torch.float64).T, x @ p.W_C.to(torch.float64).T  # [B, T, N]
    N = Bt.shape[-1]
    q = (Ct * N**0.5)[:, :, None].expand(B_, T, Dm, N).contiguous()
    k = Bt[:, :, None].expand(B_, T, Dm, N).contiguous()
    gk = (dt[..., None] * (-torch.exp(p.A_log.to(torch.float64)))).contiguous()
    o, _ = fn(q.to(device), k.to(device), (dt * x)[..., None].to(device), gk.to(device))
    y = o[..., 0].to("cpu", torch.float64) + p.D.to(torch.float64) * x  # [B, T, D]
    return (y if p.W_O is None else y @ p.W_O.to(torch.float64).T), {}


def _hgrn(p, x, fn, device):
    from .hgrn import HGRN  # lazy: the variant modules import this one (import cycle)

    f, c = HGRN().gates(p, x.to(torch.float64))
    o, h = fn(((1 - f) * c).to(device), torch.log(f).to(device), output_final_state=True)
    y = o.to("cpu", torch.float64)
    return (y if p.W_O is None else y @ p.W_O.to(torch.float64).T), {"state": h.to("cpu", torch.float64)}


def _rebased(p, x, fn, device):
    q, k, v = _qkv(x, p)
    o = fn(q.to(device), k.to(device), v.to(device), scale=1.0, use_norm=False)  # HF
    return merge_heads(o.to("cpu", torch.float64), p.W_O), {}


def _rwkv6(p, x, fn, device):
    from .rwkv6 import RWKV6  # lazy: the variant modules import this one (import cycle)

    r, k, v, w = RWKV6()._rkvw(p, x.to(torch.float64))
    o, S = fn(
        r.to(device),
        k.to(device),
        v.to(device),
        torch.log(w).to(device),
        p.u.to(torch.float64).to(device),
        scale=1.0,
        output_final_state=True,
    )  # HF; w is the log-decay
    return merge_heads(o.to("cpu", torch.float64), p.W_O), {
        "state": state_from_fla(S).to("cpu", torch.float64)
    }


def _gdn_no_erase(p, x, fn, device):
    from .gated_deltanet import GatedDeltaNetNoErase  # lazy: import cycle

    q, k, v = _qkv(x, p)
    alpha, beta = GatedDeltaNetNoErase().gates(p, x.to(torch.float64))
    o, S = _simple_gla_from(q, k, beta[..., None] * v, torch.log(alpha), fn, device)
    return merge_heads(o, p.W_O), {"state": S}


def gated_delta_rule_output(p, x, beta_scale: float = 1.0, device: str = "cpu") -> Tensor:
    """fla's *gated delta rule* (with its erase term) on the no-erase variant's params, $\beta$ scaled by
    ``beta_scale``: equals the variant at ``T = 1`` and (as 0) at ``beta_scale = 0``, not in general."""
    from .gated_deltanet import GatedDeltaNetNoErase  # lazy: import cycle

    fn = load("fla.ops.gated_delta_rule.naive.naive_recurrent_gated_delta_rule")
    q, k, v = _qkv(x, p)
    alpha, beta = GatedDeltaNetNoErase().gates(p, x.to(torch.float64))
    d_k = q.shape[-1]
    o, _ = fn(
        sf(q * d_k**0.5).to(device),
        sf(k).to(device),
        sf(v).to(device),
        (beta * beta_scale).transpose(1, 2).contiguous().to(device),
        torch.log(alpha).transpose(1, 2).contiguous().to(device),
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O)


def _gated_deltanet(p, x, fn, device):
    from .gated_deltanet import GatedDeltaNet  # lazy: the variant modules import this one (import cycle)

    q, k, v, alpha, beta = GatedDeltaNet()._parts(p, x.to(torch.float64))
    d_k = q.shape[-1]
    o, S = fn(
        sf(q * d_k**0.5).to(device),
        sf(k).to(device),
        sf(v).to(device),
        beta.transpose(1, 2).contiguous().to(device),
        torch.log(alpha).transpose(1, 2).contiguous().to(device),
        output_final_state=True,
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {
        "state": state_from_fla(S).to("cpu", torch.float64)
    }


_F32 = torch.float32
_LA = "fla.ops.linear_attn.naive.naive_recurrent_linear_attn"
_SGLA = "fla.ops.simple_gla.naive.naive_recurrent_simple_gla"
_GLA = "fla.ops.gla.naive.naive_recurrent_gla"
_DELTA = "fla.ops.delta_rule.naive.delta_rule_recurrence"

#: variant name -> fla's pure-PyTorch reference (runs on CPU)
NAIVE: dict[str, OracleSpec] = {
    s.variant: s
    for s in (
        OracleSpec("lsa-direct", _LA, "SF", _F32, _linear_attn, "scale=1.0, normalize=False"),
        OracleSpec("lsa-compressed", _LA, "SF", _F32, _linear_attn, "scale=1.0, normalize=False"),
        OracleSpec(
            "retention", _SGLA, "SF", _F32, _retention_simple_gla, "constant g = log gamma_h, scale=1.0"
        ),
        OracleSpec(
            "simple-gla", _SGLA, "SF", _F32, _simple_gla, "g = logsigmoid(.)/normalizer [B,T,H], scale=1.0"
        ),
        OracleSpec("simple-gla-compressed", _SGLA, "SF", _F32, _simple_gla, "as simple-gla"),
        OracleSpec(
            "mamba2", _SGLA, "SF", _F32, _mamba2, "q=C, k=B, v=dt*x, g=dt*A, scale=1.0; skip D x added here"
        ),
        OracleSpec(
            "gla", _GLA, "SF", _F32, _gla, "gk = logsigmoid(.)/normalizer [B,T,H,K]; q*sqrt(K) (fixed scale)"
        ),
        OracleSpec("hgrn2", _GLA, "SF", _F32, _hgrn2, "k = 1 - alpha, gk = log alpha; q*sqrt(K)"),
        OracleSpec(
            "feature-map-attention", _LA, "SF", _F32, _feature_map, "phi applied before the op; scale=1.0"
        ),
        OracleSpec(
            "normalized-linear-attention",
            _LA,
            "SF",
            _F32,
            _normalized,
            "normalize=True (fla adds 1e-10 to the denominator); compare with finish(reference)",
        ),
        OracleSpec(
            "based",
            "fla.ops.based.naive.naive_parallel_based",
            "HF",
            torch.float64,
            _based,
            "scale=1.0, use_norm=False; computes in the input dtype",
        ),
        OracleSpec(
            "deltanet", _DELTA, "HF", _F32, _deltanet, "q*sqrt(d_k) (fixed scale); q, k normalised before"
        ),
        OracleSpec("delta-rule-onehot", _DELTA, "HF", _F32, _delta_onehot, "one-hot keys; q*sqrt(d_k)"),
        OracleSpec(
            "softmax-attention",
            "fla.ops.attn.naive.naive_parallel_attn",
            "SF",
            torch.float64,
            _softmax,
            "scale=1.0; computes in the input dtype",
        ),
        OracleSpec(
            "mamba1",
            _GLA,
            "SF",
            _F32,
            _mamba1,
            "one head per channel: q = C*sqrt(N), k = B, v = dt*u, gk = dt*A",
        ),
        OracleSpec(
            "hgrn", "fla.ops.hgrn.naive.naive_recurrent_hgrn", "SF", _F32, _hgrn, "x = (1-f)*c, g = log f"
        ),
        OracleSpec(
            "lightning-attention",
            _SGLA,
            "SF",
            _F32,
            _retention_simple_gla,
            "constant g = log gamma_h, scale=1.0",
        ),
        OracleSpec(
            "rebased",
            "fla.ops.rebased.naive.naive_parallel_rebased",
            "HF",
            torch.float64,
            _rebased,
            "scale=1.0, use_norm=False; computes in the input dtype",
        ),
        OracleSpec(
            "rwkv6",
            "fla.ops.rwkv6.recurrent_naive.naive_recurrent_rwkv6",
            "HF",
            _F32,
            _rwkv6,
            "w = log-decay, u [H, K], scale=1.0",
        ),
        OracleSpec(
            "gated-deltanet-no-erase",
            _SGLA,
            "SF",
            _F32,
            _gdn_no_erase,
            "v = beta*v, g = log alpha, scale=1.0",
        ),
        OracleSpec(
            "gated-deltanet",
            "fla.ops.gated_delta_rule.naive.naive_recurrent_gated_delta_rule",
            "SF",
            _F32,
            _gated_deltanet,
            "normalised q, k; g = log alpha; q*sqrt(d_k) (default scale d_k^-1/2)",
        ),
    )
}

#: RetNet's own naive reference (fixed gammas); used when params have gamma = retnet_gammas(H)
RETNET_NAIVE = OracleSpec(
    "retention",
    "fla.ops.retention.naive.naive_retention",
    "HF",
    _F32,
    _retention_naive,
    "fixed gamma_h = 1-2^(-5-h), scale d_k^-1/2: q*sqrt(d_k); RoPE applied before for complex",
)


# -- adapters: fused Triton kernels (CUDA only; tests marked gpu) -----------------------------------
def _fused_la(p, x, fn, device):
    q, k, v = _qkv(x, p)
    o, _ = fn(*(sf(t).to(device, torch.float32) for t in (q, k, v)), scale=1.0, normalize=False)
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {}


def _fused_sgla(p, x, fn, device):
    q, k, v = _qkv(x, p)
    log_a = F.logsigmoid(_gl(x, p.W_g)) / p.normalizer
    o, _ = fn(
        *(sf(t).to(device, torch.float32) for t in (q, k, v)),
        g=log_a.transpose(1, 2).contiguous().to(device, torch.float32),
        scale=1.0,
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {}


def _fused_gla(p, x, fn, device):
    q, k, v = _qkv(x, p)
    gk = F.logsigmoid(_gl(x, p.W_gk)) / p.normalizer
    o, _ = fn(
        *(sf(t).to(device, torch.float32) for t in (q, k, v)), g=sf(gk).to(device, torch.float32), scale=1.0
    )
    return merge_heads(hf(o).to("cpu", torch.float64), p.W_O), {}


#: variant name -> fla fused kernel (needs CUDA); the tolerance model grants TF32 (u = 2^-11)
FUSED: dict[str, OracleSpec] = {
    s.variant: s
    for s in (
        OracleSpec("lsa-direct", "fla.ops.linear_attn.fused_recurrent_linear_attn", "SF", _F32, _fused_la),
        OracleSpec("simple-gla", "fla.ops.simple_gla.chunk_simple_gla", "SF", _F32, _fused_sgla),
        OracleSpec("gla", "fla.ops.gla.chunk_gla", "SF", _F32, _fused_gla),
    )
}


def oracle_output(
    name: str, params, x: Tensor, *, kind: str = "naive", device: str = "cpu"
) -> tuple[Tensor, dict]:
    """fla's output for registered variant ``name`` at ``params``, ``x``: ``(y [B, T, d_out] float64,
    extras)`` (extras: ``"state"``, the final state in our ``[B, H, d_v, d_k]`` convention, where fla
    returns one)."""
    table = NAIVE if kind == "naive" else FUSED if kind == "fused" else None
    if table is None:
        raise ValueError(f"kind must be 'naive' or 'fused'; got {kind!r}")
    if name not in table:
        raise KeyError(f"no fla {kind} oracle for variant {name!r}; available: {', '.join(sorted(table))}")
    spec = table[name]
    return spec.adapter(params, x.to(torch.float64), load(spec.function), device)


# -- the negative controls of constructions.variants.fla_controls -------------------------------------------
def _control_parts(name, p, x):
    import constructions  # lazy: the variant modules import this one (import cycle)

    v = constructions.get(name)
    q, k, vv = _qkv(x, p)
    return q, k, vv, v.extras(p, x)


def _s(t: Tensor) -> Tensor:
    """A per-head scalar feature ``[B, H, T, 1]`` -> fla's ``[B, T, H]``."""
    return t[..., 0].transpose(1, 2).contiguous()


def _ctl(call):
    """Adapter from ``call(q, k, v, extras, fn) -> o`` (fla's output, sequence-first unless ``call`` says
    otherwise by returning head-first ``("HF", o)``)."""

    def adapter(p, x, fn, device, name=None):
        q, k, v, e = _control_parts(name, p, x.to(torch.float64))
        o = call(q, k, v, e, fn)
        o = o[0] if isinstance(o, tuple) else o
        o = o if getattr(o, "_hf", False) else hf(o)
        return merge_heads(o.to("cpu", torch.float64), p.W_O), {}

    return adapter


def _hf_out(o: Tensor) -> Tensor:
    o = o.clone()
    o._hf = True
    return o


def _path_w(e):
    from .fla_controls import path_w  # lazy: the variant modules import this one (import cycle)

    return path_w(e)


def _gdp(q, k, v, e, fn):
    B, H, T, K = q.shape
    ks = torch.stack([k, e["k2"]], 3).reshape(B, H, 2 * T, K)
    vs = torch.stack([v, e["v2"]], 3).reshape(B, H, 2 * T, v.shape[-1])
    beta = e["beta"].reshape(B, H, 2 * T)
    return fn(
        sf(q), sf(ks), sf(vs), _s(e["log_f"]), beta.transpose(1, 2).contiguous(), 1.0, num_householder=2
    )


def _rwkv7_fla(q, k, v, e, fn):
    from .fla_controls import _RWKV7_W, _l2  # lazy: the variant modules import this one (import cycle)

    kap = _l2(e["kappa"])
    K = q.shape[-1]
    args = (q * K**0.5, k, v, -kap, kap * e["a"], -_RWKV7_W * e["w"])
    return _hf_out(fn(*(t.float() for t in args))[0])


def _wall(q, k, v, e, fn):
    """``naive_wall_attn`` computes its prefix sums with fla's Triton ``chunk_global_cumsum`` (no CPU
    path): replaced, for this call only, by the same prefix sum in torch (``cumsum(g) * scale``)."""
    import sys  # lazy: only for loading fla (optional dependency)

    mod = sys.modules[fn.__module__]
    kept = mod.chunk_global_cumsum
    mod.chunk_global_cumsum = lambda g, cu_seqlens=None, scale=1.0, **_: g.float().cumsum(1) * scale
    try:
        return fn(sf(q), sf(k), sf(v), sf(e["log_f"]), scale=1.0)
    finally:
        mod.chunk_global_cumsum = kept


def _load_control(path: str) -> Callable:
    """``load`` for a module path, or ``file:REL/naive.py:FN`` for a naive file loaded on its own (its package
    ``__init__`` imports modules fla-core does not ship)."""
    if not path.startswith("file:"):
        return load(path)
    import importlib.util  # lazy: only for loading fla (optional dependency)
    from pathlib import Path  # lazy: only for loading fla (optional dependency)

    _, rel, fn = path.split(":")
    root = Path(importlib.util.find_spec("fla").origin).parent.parent
    spec = importlib.util.spec_from_file_location(f"_fla_file_{fn}", root / rel)
    mod = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(mod)
    return getattr(mod, fn)


#: control name -> (fla function, how it is called); the controls of fla_controls without a CPU reference
#: in fla are listed in CONTROL_NO_CPU_ORACLE with the reason
CONTROL_NAIVE: dict[str, tuple[str, Callable]] = {
    "forgetting-attention": (
        "fla.ops.forgetting_attn.naive.naive_forgetting_attn",
        lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), _s(e["log_f"]), scale=1.0),
    ),
    "stickbreaking-attention": (
        "fla.ops.stickbreaking_attn.naive.naive_stickbreaking_attn",
        lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), scale=1.0),
    ),
    "path-attention": (
        "fla.ops.path_attn.naive.naive_path_attn",
        lambda q, k, v, e, fn: fn(
            sf(q), sf(k), sf(v), sf(_path_w(e)), 2 * _s(e["beta"]), _s(e["log_f"]), scale=1.0
        ),
    ),
    "deltaformer": (
        "file:fla/ops/deltaformer/naive.py:naive_deltaformer_attn",
        lambda q, k, v, e, fn: fn(sf(q * q.shape[-1] ** 0.5), sf(k), sf(v), _s(e["beta"])),
    ),
    "parallax": (
        "fla.ops.parallax.naive.naive_parallax",
        lambda q, k, v, e, fn: fn(sf(q), sf(e["r"]), sf(k), sf(v), scale=1.0),
    ),
    "wall-attention": ("fla.ops.wall_attn.naive.naive_wall_attn", _wall),
    "abc": (
        "fla.ops.abc.naive.naive_recurrent_abc",
        lambda q, k, v, e, fn: _hf_out(fn(q, k, v, e["s"], scale=1.0)[0]),
    ),
    "gsa": (
        "fla.ops.gsa.naive.naive_recurrent_gsa",
        lambda q, k, v, e, fn: fn(
            sf(q), sf(k), sf(v), sf(1 - torch.exp(e["log_a"])), sf(e["log_a"]), scale=1.0
        ),
    ),
    "log-linear-attention": (
        "fla.ops.log_linear_attn.naive.naive_log_linear_attn",
        lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), _s(e["log_f"]), sf(e["levels"]), scale=1.0),
    ),
    "comba": (
        "fla.ops.comba.naive.naive_recurrent_comba",
        lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), sf(e["p"]), _s(e["beta"]), _s(e["log_f"]), scale=1.0),
    ),
    "gated-delta-product": ("fla.ops.gated_delta_product.naive.naive_recurrent_gated_delta_product", _gdp),
    "gdn2": (
        "fla.ops.gdn2.naive.naive_recurrent_gdn2",
        lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), sf(e["log_f"]), sf(e["b"]), sf(e["w"]), scale=1.0),
    ),
    "kda": (
        "fla.ops.kda.naive.naive_recurrent_kda",
        lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), sf(e["log_f"]), _s(e["beta"]), scale=1.0),
    ),
    "precond-gated-deltanet": (
        "fla.ops.precond_gated_delta_rule.naive.naive_recurrent_precond_gated_delta_rule",
        lambda q, k, v, e, fn: fn(
            sf(q),
            sf(k),
            sf(v),
            _s(e["log_f_atk"]),
            _s(e["log_f"]),
            _s(e["beta_atk"]),
            _s(e["beta"]),
            scale=1.0,
        ),
    ),
    "precond-kda": (
        "fla.ops.precond_kda.naive.naive_recurrent_precond_kda",
        lambda q, k, v, e, fn: fn(
            sf(q),
            sf(k),
            sf(v),
            sf(e["log_f"]),
            _s(e["log_f_atk"]),
            _s(e["beta_atk"]),
            _s(e["beta"]),
            scale=1.0,
        ),
    ),
    "momentum-delta-rule": (
        "fla.ops.momentum_delta_rule.naive.recurrent_momentum_delta_rule_ref",
        lambda q, k, v, e, fn: fn(
            sf(q),
            sf(k),
            sf(v),
            _s(e["log_f"]),
            _s(e["log_mu"]),
            sf(e["p"]),
            _s(e["beta"]),
            _s(e["eta"]),
            scale=1.0,
        ),
    ),
    "dplr-delta-rule": (
        "fla.ops.generalized_delta_rule.dplr.naive.dplr_recurrence",
        lambda q, k, v, e, fn: _hf_out(
            fn(*(t.float() for t in (q * q.shape[-1] ** 0.5, k, v, e["a"], e["b"], e["log_f"])))[0]
        ),
    ),
    "rwkv7": ("fla.ops.generalized_delta_rule.dplr.naive.dplr_recurrence", _rwkv7_fla),
    "mesa-net": (
        "fla.ops.mesa_net.naive.naive_mesa_net_exact",
        lambda q, k, v, e, fn: fn(
            sf(q), sf(k), sf(v), _s(e["log_f"]), torch.exp(e["lam"][0, :, 0]), _s(e["beta"])
        ),
    ),
    "ttt-linear": (
        "fla.ops.ttt.naive.chunk_ttt_linear_ref",
        lambda q, k, v, e, fn: fn(
            sf(q).float(),
            sf(k).float(),
            sf(v).float(),
            e["ln_w"][0, :, 0],
            e["ln_b"][0, :, 0],
            sf(e["eta"]).float(),
            scale=1.0,
            eps=1e-6,
            mini_batch_size=16,
        ),
    ),
    "titans": (
        "fla.ops.titans.naive.chunk_titans_linear_ref",
        lambda q, k, v, e, fn: fn(
            sf(q).float(),
            sf(k).float(),
            sf(v).float(),
            e["ln_w"][0, :, 0],
            e["ln_b"][0, :, 0],
            sf(e["theta"]).float(),
            sf(e["alpha"]).float(),
            sf(e["eta"]).float(),
            eps=1e-6,
            chunk_size=16,
            use_chunk=False,
        ),
    ),
    "cyfa": (
        "fla.ops.cyfa.naive.naive_recurrent_cyfa",
        lambda q, k, v, e, fn: fn(
            sf(q),
            sf(k),
            sf(v),
            _s(e["log_f"]),
            _s(e["delta"]),
            _s(e["beta"]),
            e["readout"][0, :, 0].reshape(q.shape[1], 3, 3),
            e["q_norm"][0, :, 0],
            e["k_norm"][0, :, 0],
            1e-6,
            1e-6,
            scale=1.0,
        ),
    ),
}

#: controls with no fla reference that runs on CPU, and why
CONTROL_NO_CPU_ORACLE: dict[str, str] = {
    "gated-oja-rule": "fla ships only a Triton kernel (fused_recurrent_gated_oja_rule), no naive reference",
    "lightnet": "fla ships only Triton kernels (fused_recurrent_lightnet, chunk_lightnet), no naive "
    "reference",
    "rwkv4": "fla ships only a Triton kernel (fused_recurrent_rwkv4), no naive reference",
    "slstm": "fla-core 0.6 ships no sLSTM",
}


def control_oracle_output(name: str, params, x: Tensor) -> Tensor:
    """fla's output for the negative control ``name`` (``[B, T, d_out]`` float64), through its naive
    reference on CPU."""
    if name not in CONTROL_NAIVE:
        why = CONTROL_NO_CPU_ORACLE.get(name, "not a control of fla_controls")
        raise KeyError(f"no fla CPU reference for control {name!r}: {why}")
    path, call = CONTROL_NAIVE[name]
    return _ctl(call)(params, x, _load_control(path), "cpu", name=name)[0]
