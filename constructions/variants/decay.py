r"""An input-dependent decay $\lambda_t = \lambda(z_t)$ for the gated RNN, as a checkable
object.

The paper's template has a constant $\lambda$ (Zucchet et al. 2023, Sec. 3); the modern linear-attention
family lets the decay depend on the *current* input (the input-dependent-decay extension of
``docs/variants/README.md``). A :class:`InputDependentDecay` is the one form used here: an affine map of
$\tilde z_t = [z_t; 1]$ to $c$ decay *channels*, a link, and a map from neurons to channels,

$$ \lambda_t[n] = \begin{cases} \text{const}[n] & \text{channel}[n] < 0 \\
   \ell\big((W\tilde z_t)_{\text{channel}[n]}\big) & \text{otherwise} \end{cases} $$

with links ``"exp-logsigmoid"``: $\ell(g) = \exp(s_c\,\log\sigma(g))$ (GLA / simple GLA / mLSTM forget gate
with $s_c = 1/\text{normaliser}$; Mamba-2's $e^{\Delta A}$, $\Delta=\mathrm{softplus}(w\cdot\tilde z)$, is
$s_c = -A$, $g = -w\cdot\tilde z$, since $\log\sigma(-u) = -\mathrm{softplus}(u)$) and ``"affine"``: $\ell(g)
= g$ (HGRN2's $\lambda = \ell_b + (1-\ell_b) f_t$ with $f_t$ an upstream feature; the one-hot delta rule).

So $\lambda_t$ depends on $z_t$ alone (no window, no state): exactly the input-dependent-decay extension. It
is an ``nn.Module``, usable as ``GatedLinearRNN(..., lam=None, decay=...)``.

**Tolerance model.** :meth:`InputDependentDecay.magnitude` returns $|\lambda_t| + \delta_t / n$, where
$u\,\delta_t$ bounds the error of the computed $\lambda_t$ beyond a few ulps (derived, first order): for
``exp-logsigmoid``, $\delta = \lambda\,[(d+2)\,s\,\sigma(-g)\,L + |\log\lambda|]$ with $L = |W|\,|\tilde z|$
the absolute logit (the logit's rounding, amplified by the link) and $|\log\lambda|$ the rounding of the
log-decay itself; for ``affine``, $|W|\,\bar z$ with the error-inflated upstream magnitude $\bar z$.
"""

import torch
from jaxtyping import Float, Inexact, Int
from torch import Tensor, nn

from .._validation import require_finite, require_ndim, require_tensor
from ..tolerance import decay_floor

__all__ = ["InputDependentDecay", "LINKS"]

LINKS = ("exp-logsigmoid", "affine")


class InputDependentDecay(nn.Module):
    r"""Input-dependent decay $\lambda_t = \ell(W\tilde z_t)[\text{channel}]$ (see the module
    docstring).

    **Arguments**

    - ``W``: ``[c, d+1]`` channel logits (last column multiplies the appended 1).
    - ``channel``: ``[n]`` long, the channel each neuron reads, ``-1`` for a constant neuron.
    - ``const``: ``[n]`` the constant $\lambda$ of neurons with ``channel < 0`` (query neurons: 0).
    - ``link``: ``"exp-logsigmoid"`` or ``"affine"``.
    - ``scale``: ``[c]`` non-negative $s_c$ for ``"exp-logsigmoid"`` (default ones).
    """

    def __init__(
        self,
        W: Float[Tensor, "c d_plus_1"],
        channel: Int[Tensor, " n"],
        const: Inexact[Tensor, " n"],
        link: str = "exp-logsigmoid",
        scale: Float[Tensor, " c"] | None = None,
    ):
        super().__init__()
        require_tensor("W", W, allow_complex=False)
        require_ndim("W", W, 2, "c, d+1")
        require_finite("W", W)
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}; got {link!r}")
        if not isinstance(channel, Tensor) or channel.dtype != torch.long or channel.ndim != 1:
            raise TypeError(
                f"channel must be a 1-D torch.long tensor [n]; got "
                f"{type(channel).__name__} {getattr(channel, 'dtype', '')}"
            )
        c = W.shape[0]
        if channel.numel() and (int(channel.max()) >= c or int(channel.min()) < -1):
            raise ValueError(
                f"channel entries must be -1 (constant) or in [0, {c}) (rows of W); got range "
                f"[{int(channel.min())}, {int(channel.max())}]"
            )
        require_tensor("const", const)
        if const.shape != channel.shape:
            raise ValueError(
                f"const must have the shape of channel {tuple(channel.shape)}; got {tuple(const.shape)}"
            )
        if scale is None:
            scale = torch.ones(c, dtype=W.dtype, device=W.device)
        require_tensor("scale", scale, allow_complex=False)
        if scale.shape != (c,):
            raise ValueError(f"scale must have shape [c] = {(c,)}; got {tuple(scale.shape)}")
        require_finite("scale", scale)
        if link == "exp-logsigmoid" and bool((scale < 0).any()):
            raise ValueError(
                f"scale must be >= 0 for the exp-logsigmoid link (decays in [0, 1]); got min "
                f"{float(scale.min())}"
            )
        self.register_buffer("W", W)
        self.register_buffer("channel", channel.to(W.device))
        self.register_buffer("const", const.to(W.device))
        self.register_buffer("scale", scale.to(W.device))
        self.link = link

    @property
    def d(self) -> int:
        return self.W.shape[1] - 1

    @property
    def num_channels(self) -> int:
        return self.W.shape[0]

    def extra_repr(self) -> str:
        return f"link={self.link!r}, channels={self.num_channels}, n={self.channel.numel()}, d={self.d}"

    def _logits(self, z: Tensor, W: Tensor) -> Tensor:
        return z @ W[:, :-1].T + W[:, -1]

    def channel_values(self, z: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time c"]:
        """$\\ell(W\\tilde z_t)$ per channel, at the promoted dtype of ``z`` and ``W``."""
        if z.shape[-1] != self.d:
            raise ValueError(f"decay expects inputs with d={self.d} features; got shape {tuple(z.shape)}")
        dtype = torch.promote_types(z.dtype, self.W.dtype)
        g = self._logits(z.to(dtype), self.W.to(dtype))
        if self.link == "affine":
            return g
        return torch.exp(self.scale.to(dtype) * nn.functional.logsigmoid(g))

    def _spread(self, per_channel: Tensor, const: Tensor) -> Tensor:
        B, T, _ = per_channel.shape
        chan = self.channel
        idx = chan.clamp(min=0).expand(B, T, -1)
        vals = torch.gather(per_channel, 2, idx)
        dtype = torch.promote_types(vals.dtype, const.dtype)
        return torch.where(chan >= 0, vals.to(dtype), const.to(dtype))

    def forward(self, z: Float[Tensor, "batch time d"]) -> Inexact[Tensor, "batch time n"]:
        """$\\lambda_t$ for every neuron: ``[B, T, n]``."""
        return self._spread(self.channel_values(z), self.const)

    def factored(self, z: Float[Tensor, "batch time d"]) -> tuple[Tensor, Tensor, Tensor]:
        """``(values [B, T, c], channel [n], const [n])`` with ``forward(z)[..., k]`` equal to
        ``values[..., channel[k]]`` (``channel[k] >= 0``) or ``const[k]``: the decay without its ``[B, T, n]``
        spread, which the structured fast path (``constructions.structured.FactoredDecay``) never
        materialises."""
        return self.channel_values(z), self.channel, self.const

    def permuted(self, perm: Int[Tensor, " n"]) -> "InputDependentDecay":
        """The same decay for neurons reordered by ``perm`` (new neuron ``k`` is old neuron ``perm[k]``): what
        a neuron permutation of the RNN (``constructions.invariances.permute_neurons``) must apply to an
        input-dependent decay."""
        perm = torch.as_tensor(perm, dtype=torch.long, device=self.channel.device)
        if perm.shape != self.channel.shape or not torch.equal(
            torch.sort(perm).values, torch.arange(len(perm), device=perm.device)
        ):
            raise ValueError(f"perm must be a permutation of range({self.channel.numel()})")
        return InputDependentDecay(self.W, self.channel[perm], self.const[perm], self.link, self.scale)

    def magnitude(
        self, z: Float[Tensor, "batch time d"], z_mag: Float[Tensor, "batch time d"], n: int
    ) -> Float[Tensor, "batch time n"]:
        r"""Error-inflated $|\lambda_t| + \delta_t/n$ in float64 (module docstring): ``z`` the template input,
        ``z_mag`` its error-inflated magnitude, ``n`` the path length of the tolerance model."""
        z64, zm = z.detach().to("cpu", torch.float64), z_mag.detach().to("cpu", torch.float64)
        W = self.W.detach().to("cpu", torch.float64)
        L = self._logits(zm, W.abs())  # |W| |z~|
        if self.link == "affine":
            per = L
        else:
            s = self.scale.detach().to("cpu", torch.float64)
            g = self._logits(z64, W)
            lam = torch.exp(s * nn.functional.logsigmoid(g))
            loglam = (s * nn.functional.logsigmoid(g)).abs()
            delta = lam * ((self.d + 2) * s * torch.sigmoid(-g) * L + loglam)
            # a lambda computed below the smallest normal may be flushed to 0
            # (constructions.tolerance.decay_floor)
            floor = decay_floor(s * nn.functional.logsigmoid(g), (self.d + 2) * 2.0**-8 * s * L + 1.0)
            per = lam + (delta + floor) / n
        return self._spread(per, self.const.detach().to("cpu").abs().to(torch.float64))
