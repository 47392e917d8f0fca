r"""Regression cases shipped with the property suite: correct layers that an earlier tolerance model rejected.

**HGRN v1 with a SiLU output gate** (:class:`HGRNOutputGate`; Qin et al. 2023, Eq. 3–6, with the output gate
$o_t = \mathrm{SiLU}(W_g\tilde x_t)\odot h_t$ that the paper's layer applies after the recurrence):

$$ f_t = \ell_b + (1-\ell_b)\,\sigma(W_f\tilde x_t),\quad c_t = \mathrm{SiLU}(W_c\tilde x_t),\quad
   h_t = f_t\odot h_{t-1} + (1-f_t)\odot c_t,\quad y_t = W_O\,\big(\mathrm{SiLU}(W_g\tilde x_t)\odot h_t\big).
   $$

The construction is the shipped ``hgrn`` one with the query neuron of channel $c$ fed the upstream feature
$\mathrm{SiLU}(W_g\tilde x_t)_c$ instead of the constant 1. In float32, torch evaluates $\sigma(g)$ as
$1/(1+e^{-g})$ and returns exactly 0 for $g < -88.72$ ($e^{-g}$ overflows), where the true $\mathrm{SiLU}(g)$,
about $g e^{g}$, is still a normal float32 number (e.g. $-2.6\cdot10^{-37}$): the whole value is lost. A state
$h_t$ of size 100 multiplies that loss past the $\gamma_nM + n\eta$ bound of a model that counts only relative
roundings: a false alarm on a correct layer. :data:`constructions.tolerance.POINTWISE` derives the flush zone
of each function, and :func:`extreme_case` builds the inputs that reach it (``tests/test_tolerance.py``).
"""

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from constructions.variants.family import randn
from constructions.variants.gla import _check_gate, _gate_logits
from constructions.variants.hgrn import HGRN, HGRNParams
from constructions.variants.plan import InputDecay, Plan
from constructions.variants.reference import merge_heads
from constructions.variants.upstream import HeadMap, Upstream

__all__ = ["HGRNGateParams", "HGRNOutputGate", "extreme_case", "silu"]


def silu(g: Tensor) -> Tensor:
    """$g\\,\\sigma(g)$ (float64 in the reference)."""
    return g * torch.sigmoid(g)


@dataclass(frozen=True)
class HGRNGateParams(HGRNParams):
    r"""HGRN's parameters (:class:`~constructions.variants.hgrn.HGRNParams`: ``W_f, W_c [D, d+1]``, ``W_O``,
    ``lower_bound``) plus the output-gate logits ``W_g [D, d+1]`` (required; keyword)."""

    W_g: Tensor | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.W_g is None:
            raise ValueError("W_g (the output-gate logits [D, d+1]) is required")
        _check_gate("W_g", self.W_g, tuple(self.W_f.shape))


class HGRNOutputGate(HGRN):
    """HGRN v1 with the SiLU output gate (module docstring); not registered (a regression case)."""

    name = "hgrn-silu-output-gate"
    free_fields = ("W_f", "W_c", "W_g", "W_O")
    source = "Qin et al. 2023 (HGRN), Eq. 3-6, with the output gate SiLU(W_g x~) after the recurrence"
    oracle = ""
    description = "HGRN v1 with a SiLU output gate: the query neuron of each channel holds SiLU(W_g [x;1])."

    def sample_params(
        self, d, heads=1, *, generator, dtype=torch.float64, d_out=None, channels=None, lower_bound=0.0, **_
    ):
        p = super().sample_params(
            d,
            heads,
            generator=generator,
            dtype=dtype,
            d_out=d_out,
            channels=channels,
            lower_bound=lower_bound,
        )
        W_g = randn(generator, p.W_f.shape[0], d + 1, scale=d**-0.5).to(dtype)
        return HGRNGateParams(W_f=p.W_f, W_c=p.W_c, W_O=p.W_O, lower_bound=p.lower_bound, W_g=W_g)

    def reference(self, params: HGRNGateParams, x):
        """Step by step (float64): the HGRN recurrence, then the output gate and $W_O$."""
        x = self._check(params, x).to(torch.float64)
        f, c = self.gates(params, x)  # [B, T, D]
        gate = silu(_gate_logits(x, params.W_g).transpose(1, 2))
        h = torch.zeros_like(f[:, 0])
        out = []
        for t in range(x.shape[1]):
            h = f[:, t] * h + (1 - f[:, t]) * c[:, t]
            out.append(gate[:, t] * h)
        o = torch.stack(out, dim=1) if out else torch.zeros_like(f)
        return merge_heads(o.transpose(1, 2)[..., None], params.W_O)

    def reference_parallel(self, params: HGRNGateParams, x):
        x = self._check(params, x).to(torch.float64)
        gate = silu(_gate_logits(x, params.W_g).transpose(1, 2))  # [B, T, D]
        base = dataclasses.replace(params, W_O=None)
        h = super().reference_parallel(base, x)  # [B, T, D] (no W_O)
        return merge_heads((gate * h).transpose(1, 2)[..., None], params.W_O)

    def recurrence(self, params):  # the one-step form of the parent does not have the gate
        raise NotImplementedError("HGRNOutputGate has no one-step form; its reference is the step loop")

    def plan(self, params: HGRNGateParams) -> Plan:
        Dm, dp1 = params.W_f.shape
        d = dp1 - 1
        lb = params.lower_bound
        dt, dev = params.W_f.dtype, params.W_f.device
        up = Upstream(
            d,
            [
                HeadMap(params.W_f[:, None, :-1], "sigmoid", params.W_f[:, None, -1]),
                HeadMap(params.W_c[:, None, :-1], "silu", params.W_c[:, None, -1]),
                HeadMap(params.W_g[:, None, :-1], "silu", params.W_g[:, None, -1]),
            ],
        )  # [sigma_f; c; g]
        dz = up.width
        c = torch.arange(Dm, device=dev)
        Wq = torch.zeros(Dm, 1, dz + 1, dtype=dt, device=dev)
        Wk, Wv = torch.zeros_like(Wq), torch.zeros_like(Wq)
        Wq[c, 0, 2 * Dm + c] = 1  # the output gate SiLU(W_g x~)_c
        Wk[c, 0, c], Wk[c, 0, dz] = -(1 - lb), 1 - lb
        Wv[c, 0, Dm + c] = 1
        Wa = torch.zeros(Dm, dz + 1, dtype=dt, device=dev)
        Wa[c, c], Wa[c, dz] = 1 - lb, lb
        return Plan(Wq, Wk, Wv, params.W_O, upstream=up, decay=InputDecay(Wa, "affine", per_key=True))


def extreme_case(
    g: torch.Generator, *, d: int = 3, channels: int = 4, T: int = 48, batch: int = 2, d_out: int | None = 2
) -> tuple[HGRNGateParams, Tensor]:
    r"""A correct case in the float32 flush zone: output-gate logits $W_g\tilde x_t$ around $-88.8$ to $-93$
    (SiLU lost to 0 by torch's float32 sigmoid below $-88.72$), a long memory ($f\approx 0.95$) and values
    $c_t\approx 60$, so $|h_t|\sim 60$. Every number is exact in float32 (the cast adds no rounding)."""
    v = HGRNOutputGate()
    p = v.sample_params(d, generator=g, dtype=torch.float64, d_out=d_out, channels=channels)
    W_f, W_c, W_g = p.W_f.clone(), p.W_c.clone() * 8, p.W_g.clone() * 0.25
    W_f[:, -1] = 3.0
    W_c[:, -1] = 60.0
    W_g[:, -1] = -88.8 - 4.0 * torch.rand(channels, generator=g, dtype=torch.float64)
    x = torch.randn(batch, T, d, generator=g, dtype=torch.float64)

    def f32(t):
        return None if t is None else t.to(torch.float32).to(torch.float64)

    return HGRNGateParams(W_f=f32(W_f), W_c=f32(W_c), W_O=f32(p.W_O), lower_bound=0.0, W_g=f32(W_g)), f32(x)
