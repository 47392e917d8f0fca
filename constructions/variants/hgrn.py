r"""HGRN (v1): an element-wise gated linear recurrence, exact on the template (input-dependent decay +
upstream gates).

Qin et al. 2023 (*Hierarchically Gated Recurrent Neural Network*, Eq. 3–6, real form as in fla's HGRN layer
and ``naive_recurrent_hgrn``), per channel $c\le D$:

$$ f_t = \ell_b + (1-\ell_b)\,\sigma(W_f\tilde x_t),\qquad c_t = \mathrm{SiLU}(W_c\tilde x_t),\qquad
   h_t = f_t\odot h_{t-1} + (1-f_t)\odot c_t,\qquad o_t = h_t $$

($\ell_b\in[0,1)$ the layer's lower bound; the output gate and projection after $h_t$ are left out, and
the paper's complex phase $e^{i\theta}$ is dropped as fla does). fla's op takes $x_t = (1-f_t)c_t$ and
$g_t = \log f_t$: $h_t = e^{g_t}h_{t-1} + x_t$.

**Construction** (derived): channel $c$ is a head with $d_k = d_v = 1$: key $1-f_{t,c}$, value $c_{t,c}$,
query 1, decay $f_{t,c}$. $f_t$ and $c_t$ are not affine in $x_t$ (a sigmoid, a SiLU), so an upstream layer
computes them; the key and the decay are then affine in the features (an input-dependent decay with the
``affine`` link) and the value a copy. $2D$ neurons ($H d_k(d_v+1)$ with $H = D$, $d_k = d_v = 1$): one state
neuron and one (constant) query neuron per channel.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import require_finite, require_tensor
from ..registry import register
from .family import PlanVariant, randn
from .gla import _cast, _check_gate, _gate_logits
from .onestep import StepFeatures, decayed_la, recurrent_reference
from .plan import InputDecay, Plan
from .reference import merge_heads
from .upstream import FEATURE_FNS, HeadMap, Upstream

__all__ = ["HGRNParams", "HGRN"]

_silu = FEATURE_FNS["silu"][0]


@dataclass(frozen=True)
class HGRNParams:
    r"""Forget logits ``W_f [D, d+1]``, input logits ``W_c [D, d+1]`` (last column: bias), ``W_O [d_out, D]``
    or ``None``, ``lower_bound`` $\ell_b\in[0, 1)$."""

    W_f: Tensor
    W_c: Tensor
    W_O: Tensor | None = None
    lower_bound: float = 0.0

    def __post_init__(self):
        require_tensor("W_f", self.W_f, allow_complex=False)
        if self.W_f.ndim != 2:
            raise ValueError(f"W_f must have shape [D, d+1]; got {tuple(self.W_f.shape)}")
        _check_gate("W_f", self.W_f, tuple(self.W_f.shape))
        _check_gate("W_c", self.W_c, tuple(self.W_f.shape))
        if self.W_O is not None:
            require_tensor("W_O", self.W_O, allow_complex=False)
            if self.W_O.ndim != 2 or self.W_O.shape[1] != self.W_f.shape[0]:
                raise ValueError(
                    f"W_O must have shape [d_out, D] = [d_out, {self.W_f.shape[0]}]; "
                    f"got {tuple(self.W_O.shape)}"
                )
            require_finite("W_O", self.W_O)
        if (
            isinstance(self.lower_bound, bool)
            or not isinstance(self.lower_bound, (int, float))
            or not 0 <= self.lower_bound < 1
        ):
            raise ValueError(f"lower_bound must be a number in [0, 1); got {self.lower_bound!r}")


class HGRN(PlanVariant):
    r"""HGRN v1: $h_t = f_t\odot h_{t-1} + (1-f_t)\odot\mathrm{SiLU}(W_c\tilde x_t)$, element-wise
    (input-dependent decay + upstream)."""

    status = "exact"
    extensions = ("input-dependent-decay", "upstream")
    free_fields = ("W_f", "W_c", "W_O")
    source = "Qin et al. 2023 (HGRN), Eq. 3-6, real form (fla HGRN: x = (1 - f) c, g = log f)"
    oracle = "fla.ops.hgrn.naive.naive_recurrent_hgrn (x = (1-f)*c [B,T,D], g = log f)"
    description = (
        "HGRN v1 element-wise recurrence: per channel a head with d_k = d_v = 1, key 1 - f_t, value "
        "SiLU(W_c [x;1]), decay f_t = lb + (1-lb) sigmoid(W_f [x;1]) (features from an upstream layer, "
        "input-dependent decay with the affine link); 2*D neurons."
    )

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_out=None, channels=None, lower_bound=0.0, **_
    ):
        """``D = channels`` (default ``d``; ``heads`` is ignored: one recurrence per channel); forget bias
        $+2$."""
        Dm = d if channels is None else channels
        s = d**-0.5
        W_f = randn(generator, Dm, d + 1, scale=s)
        W_f[:, -1] += 2.0
        W_c = randn(generator, Dm, d + 1, scale=s)
        W_O = randn(generator, d_out, Dm, scale=Dm**-0.5) if d_out else None
        return HGRNParams(
            *_cast(dtype, W_f, W_c), W_O=None if W_O is None else W_O.to(dtype), lower_bound=lower_bound
        )

    def d_in(self, params):
        return params.W_f.shape[1] - 1

    def gates(self, params: HGRNParams, x: Tensor) -> tuple[Tensor, Tensor]:
        """$f_t$ and $c_t$ ``[B, T, D]`` (float64)."""
        lb = params.lower_bound
        f = lb + (1 - lb) * torch.sigmoid(_gate_logits(x, params.W_f).transpose(1, 2))
        return f, _silu(_gate_logits(x, params.W_c).transpose(1, 2))

    def _step(self, params: HGRNParams, x_t: Tensor) -> StepFeatures:
        f, c = self.gates(params, x_t.to(torch.float64)[:, None])
        f, c = f[:, 0, :, None], c[:, 0, :, None]  # [B, D, 1]
        return StepFeatures(torch.ones_like(f), 1 - f, c, f)

    def recurrence(self, params: HGRNParams):
        """One-step form (float64): ``h [B, D, 1, 1]``, $h \\leftarrow f h + (1-f) c$, readout $h$."""
        return decayed_la(lambda x_t: self._step(params, x_t), params.W_f.shape[0], 1, 1, params.W_O)

    #: step by step (float64): ``run_recurrence(recurrence(params), x)`` after ``_check``
    reference = recurrent_reference

    def reference_parallel(self, params: HGRNParams, x):
        r"""Unrolled form (independent of :meth:`reference`): $h_t = \sum_{s\le t}\big(\prod_{r=s+1}^t
        f_r\big)(1-f_s)c_s$."""
        x = self._check(params, x).to(torch.float64)
        f, c = self.gates(params, x)  # [B, T, D]
        L = torch.cumsum(torch.log(f), dim=1)
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        expo = (L[:, :, None, :] - L[:, None, :, :]).masked_fill(~causal[None, :, :, None], float("-inf"))
        h = (torch.exp(expo) * ((1 - f) * c)[:, None]).sum(2)  # [B, T, D]
        return merge_heads(h.transpose(1, 2)[..., None], params.W_O)

    def plan(self, params: HGRNParams) -> Plan:
        Dm, dp1 = params.W_f.shape
        d = dp1 - 1
        lb = params.lower_bound
        dt, dev = params.W_f.dtype, params.W_f.device
        up = Upstream(
            d,
            [
                HeadMap(params.W_f[:, None, :-1], "sigmoid", params.W_f[:, None, -1]),
                HeadMap(params.W_c[:, None, :-1], "silu", params.W_c[:, None, -1]),
            ],
        )  # z = [sigma_f; c]
        dz = up.width
        c = torch.arange(Dm, device=dev)
        Wq = torch.zeros(Dm, 1, dz + 1, dtype=dt, device=dev)
        Wk, Wv = torch.zeros_like(Wq), torch.zeros_like(Wq)
        Wq[c, 0, dz] = 1
        Wk[c, 0, c], Wk[c, 0, dz] = -(1 - lb), 1 - lb  # 1 - f = (1 - lb)(1 - sigma)
        Wv[c, 0, Dm + c] = 1
        Wa = torch.zeros(Dm, dz + 1, dtype=dt, device=dev)
        Wa[c, c], Wa[c, dz] = 1 - lb, lb  # f = lb + (1 - lb) sigma
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wa, "affine", per_key=True))


register("hgrn")(HGRN)
