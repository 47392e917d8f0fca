r"""Float64 references, magnitudes $M$ and rounding budgets $n$ for the tolerance model.

Every numeric property compares a candidate with a float64 CPU reference under the bound of
:mod:`constructions.tolerance`, $|\hat y - y| \le \gamma_n M + n\eta$ (Higham 2002, §3.1), where $M$ is the
same computation on absolute values and $n$ the number of successive roundings along one path. This
module computes $M$ and $n$ for

- linear self-attention (Zucchet et al. 2023, Sec. 3): $M$ is the LSA with $|W_Q|,|W_K|,|W_V|,|W_O|$ on
  $|x|$, which dominates every construction's absolute computation (their weights are sums of products
  of the same entries);
- the gated RNN template itself (for loop-vs-parallel, streaming and invariance properties, which hold
  for *any* RNN, not only constructions): $M$ is the RNN with $|A|,|B|,|\lambda|,|C|,|E|,|D|$ on $|x|$
  (derived: the same triangle-inequality argument, step by step through the recurrence).

Two computations that are each within $\gamma_n M$ of the exact value differ by at most $2\gamma_n M$;
the properties that compare two candidates (loop vs parallel, chunked vs one pass, permuted vs original)
use that doubled bound.
"""

import torch
from jaxtyping import Float
from torch import Tensor

from constructions import GatedLinearRNN, LinearSelfAttention
from constructions.rnn import augment, input_gate
from constructions.scan import scan_loop
from constructions.tolerance import lsa_rnn_budget, rnn_template_budget

__all__ = [
    "abs64",
    "cast_lsa",
    "lsa_budget",
    "lsa_magnitude",
    "rnn_budget",
    "rnn_magnitude",
    "rnn_state_magnitude",
    "to_cpu64",
]


def abs64(t: Tensor | None) -> Tensor | None:
    """$|t|$ as float64 on CPU (complex: modulus); ``None`` stays ``None``."""
    return None if t is None else t.detach().abs().to("cpu", torch.float64)


def to_cpu64(t: Tensor) -> Tensor:
    t = t.detach().to("cpu")
    return t.to(torch.complex128) if t.is_complex() else t.to(torch.float64)


def lsa_magnitude(lsa, x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time d_out"]:
    """$M$ for LSA: the same LSA on absolute weights and inputs, float64 on CPU."""
    return LinearSelfAttention(abs64(lsa.W_Q), abs64(lsa.W_K), abs64(lsa.W_V), abs64(lsa.W_O))(abs64(x))


def rnn_magnitude(rnn, x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time d_out"]:
    r"""$M$ for the gated RNN: the template on $|A|,|B|,|\lambda|,|C|,|E|,|D|$ and $|x|$ (float64, step
    loop)."""
    A, B, lam, C, E, D = (abs64(w) for w in rnn.weights())
    z = _features64(rnn, x)
    if lam is None:  # input-dependent decay (input-dependent decay): |lambda_t| along the same inputs
        lam_t = abs64(rnn.lambdas(x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)))
        return GatedLinearRNN(A, B, None, C, E, D, decay=lambda _x: lam_t)(z, mode="loop")
    return GatedLinearRNN(A, B, lam, C, E, D)(z, mode="loop")


def _features64(rnn, x: Tensor) -> Tensor:
    """$|z|$, the template's input: ``|x|``, or ``|upstream(x)|`` for an RNN with an upstream feature layer
    (both candidates of a template property share the same upstream evaluation, so only the template's
    rounding is modelled)."""
    if getattr(rnn, "upstream", None) is None:
        return abs64(x)
    with torch.no_grad():
        return abs64(rnn.features(x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)))


def rnn_state_magnitude(rnn, x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch n"]:
    """$M$ for the final state $h_T$: the recurrence on $|A|,|B|,|\\lambda|$ and $|x|$ (float64, step
    loop)."""
    lam = (
        abs64(rnn.lam)
        if rnn.lam is not None
        else abs64(rnn.lambdas(x.to(device=rnn.A.device, dtype=rnn.A.real.dtype)))
    )
    xt = augment(_features64(rnn, x))
    u = input_gate(abs64(rnn.A), abs64(rnn.B), xt)
    return scan_loop(lam, u, u.new_zeros(u.shape[0], u.shape[2]))[1]


def lsa_budget(lsa, T: int, *, num_neurons: int | None = None, num_gates: int | None = None) -> int:
    r"""Rounding budget $n$ for an implementation of ``lsa`` at length ``T``:
    :func:`constructions.tolerance.lsa_rnn_budget` with the RNN's ``num_neurons`` / ``num_gates`` (default:
    the direct construction's $H d_k (d_v+1)$ and $H d_k d_v$). A user's layer gets the direct
    construction's budget (``docs/properties.md``)."""
    H, d_k, d, d_v = lsa.heads, lsa.d_k, lsa.d, lsa.d_v
    n = H * d_k * (d_v + 1) if num_neurons is None else num_neurons
    m = H * d_k * d_v if num_gates is None else num_gates
    return lsa_rnn_budget(T, d, d_k, d_v, H, n, m)


def rnn_budget(rnn, T: int, extra: int = 0) -> int:
    """Rounding budget $n$ of the template itself: :func:`constructions.tolerance.rnn_template_budget`."""
    return rnn_template_budget(rnn, T, extra)


def cast_lsa(lsa, dtype: torch.dtype, device: str | torch.device = "cpu"):
    """A copy of ``lsa`` with its weights cast to ``dtype`` on ``device``, in fresh storage: a factory that
    edits the weights it is given in place (``W_V.zero_()``) cannot reach the float64 reference (``.to``
    alone returns the very same tensor when dtype and device already match)."""

    def c(t):
        return None if t is None else t.detach().to(device=device, dtype=dtype, copy=True)

    return LinearSelfAttention(c(lsa.W_Q), c(lsa.W_K), c(lsa.W_V), c(lsa.W_O))
