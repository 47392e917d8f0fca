r"""An input-dependent decay in factored form: $\lambda_t[k] = \text{values}_t[\text{channel}[k]]$ (derived).

The decays of the input-dependent decay extension (``docs/variants/data-dependent-decay.md``) are shared by
groups of neurons: one channel per head in simple GLA / Mamba-2, one per key in GLA. Their factored form keeps
the ``[B, T, c]`` channel values ($c \ll n$) and a channel map ``[n]`` instead of the ``[B, T, n]`` spread, so
the fast paths (:mod:`constructions.evaluator`) never materialise the spread. A decay exposing
``factored(z) -> (values, channel, const)`` (e.g. :class:`~constructions.variants.decay.InputDependentDecay`)
is evaluated this way.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Inexact, Int
from torch import Tensor

__all__ = ["FactoredDecay"]


@dataclass(frozen=True)
class FactoredDecay:
    r"""$\lambda_t[k] = \text{values}_t[\text{channel}[k]]$ when ``channel[k] >= 0``, else ``const[k]``."""

    values: Tensor  # [B, T, c]
    channel: Tensor  # [n] long, -1: constant neuron
    const: Tensor  # [n]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.values.shape[:2], self.channel.shape[0])

    def neurons(
        self, idx: Int[Tensor, " k"] | None = None, t0: int = 0, t1: int | None = None
    ) -> Inexact[Tensor, "batch steps k"]:
        """$\\lambda_t$ of the neurons ``idx`` (default: all) at steps ``t0:t1``: ``[B, t1 - t0,
        len(idx)]``."""
        ch = self.channel if idx is None else self.channel[idx]
        const = self.const if idx is None else self.const[idx]
        v = self.values[:, t0:t1]
        if v.shape[-1] == 0:  # no channel: every neuron is constant
            return const.to(v.dtype).expand(*v.shape[:2], ch.shape[0]).clone()
        return torch.where(ch >= 0, v.index_select(-1, ch.clamp(min=0)), const.to(v.dtype))

    def always_zero(self) -> Bool[Tensor, " n"]:
        """``[n]`` bool: the neurons whose $\\lambda_t$ is 0 at every step of every sequence."""
        v = self.values
        if v.is_complex():
            v = torch.view_as_real(v).movedim(-1, -2).reshape(v.shape[0], -1, v.shape[-1])
        if v.shape[-1] == 0:
            return self.const == 0
        zero = (
            (v.amin((0, 1)) == 0) & (v.amax((0, 1)) == 0)
            if v.shape[0] * v.shape[1]
            else torch.ones(v.shape[-1], dtype=torch.bool, device=v.device)
        )
        return torch.where(self.channel >= 0, zero[self.channel.clamp(min=0)], self.const == 0)
