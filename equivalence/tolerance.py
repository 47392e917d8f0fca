r"""The numeric tolerance model: a pass/fail bound from floating-point error analysis, not a guessed atol.

For a quantity computed as sums of products, the classical a-priori bound (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., §3.1, Lemma 3.1 and Eq. 3.5) is

$$ |\hat y - y| \;\le\; \gamma_n \, M, \qquad \gamma_n = \frac{n u}{1 - n u}, \qquad M = \text{the same computation on } |{\cdot}| , $$

where $u$ is the unit roundoff of the working precision and $n$ bounds the number of successive
roundings along any path of the computation (products, then recursive sums). $M$ is evaluated in
float64 on absolute values: for linear self-attention it is the LSA with $|W_Q|,|W_K|,|W_V|,|W_O|$ applied to
$|x|$, which also dominates every term of the RNN constructions (their weights are sums of
products of the same entries, so the triangle inequality bounds their absolute computation by $M$).
A cancellation that makes $y\approx 0$ does not shrink $M$, so the bound never false-fails there.

We add Higham's underflow term $n\,\eta$ ($\eta$ the smallest normal number) and nothing else.
The reference is always float64 on CPU; a float64 candidate is checked against $u = 2^{-53}$.
Low precisions whose own rounding of the reference dominates (fp16/bf16) are judged relative to
a plain reference at that precision: see :func:`relative_bound`.
"""

from dataclasses import asdict, dataclass

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "ComparisonResult",
    "unit_roundoff",
    "gamma",
    "error_bound",
    "compare",
    "relative_bound",
    "lsa_path_length",
    "rnn_path_length",
]


def unit_roundoff(dtype: torch.dtype) -> float:
    """$u = \\varepsilon/2$ of ``dtype`` (complex dtypes use their real part)."""
    if dtype.is_complex:
        dtype = torch.float32 if dtype == torch.complex64 else torch.float64
    if not dtype.is_floating_point:
        raise TypeError(f"unit roundoff is defined for floating dtypes; got {dtype}")
    return torch.finfo(dtype).eps / 2


def gamma(n: int, u: float) -> float:
    """Higham's $\\gamma_n = nu/(1-nu)$; infinite when $nu \\ge 1$ (no guarantee left)."""
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    nu = n * u
    return float("inf") if nu >= 1 else nu / (1 - nu)


def lsa_path_length(T: int, d: int, d_k: int, d_v: int, heads: int, has_W_O: bool = True) -> int:
    r"""Roundings along one path of LSA: projections ($d$), weight rounding (4 factors), the score
    $k\cdot q$ ($d_k$), the causal sum ($T$), the product with $v$ (1), the output projection ($H d_v$)."""
    return d + 4 + d_k + T + 1 + (heads * d_v if has_W_O else 0)


def rnn_path_length(T: int, d: int, n: int, m: int, construction_depth: int = 0) -> int:
    r"""Roundings along one path of the gated RNN: two input-gate dot products ($d+1$) and their product,
    the recurrence ($T$ steps), the output-gate dot products ($n$) and product, the readout ($m$), plus
    ``construction_depth`` roundings made when the weights themselves were computed at that precision."""
    return (d + 1) + 1 + T + n + 1 + m + construction_depth + 4


def error_bound(
    M: Float[Tensor, "*shape"], n: int, dtype: torch.dtype
) -> Float[Tensor, "*shape"]:
    r"""Elementwise bound $\gamma_n M + n\eta$ (float64)."""
    u = unit_roundoff(dtype)
    eta = torch.finfo({torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)).tiny
    return gamma(n, u) * M.to(torch.float64).abs() + n * eta


@dataclass(frozen=True)
class ComparisonResult:
    """Outcome of one comparison. ``bool(result)`` is ``passed``.

    ``ratio`` is $\\max |\\hat y - y| / \\text{bound}$ (pass iff ``ratio <= 1`` and everything is finite);
    ``worst_index`` is where that maximum is attained; ``rel_rms`` is fla's report metric
    $\\mathrm{rms}(\\hat y - y)/\\mathrm{rms}(y)$ (a statistic, not the criterion).
    """

    passed: bool
    max_abs_error: float
    ratio: float
    bound_at_worst: float
    worst_index: tuple[int, ...]
    rel_rms: float
    n: int
    unit_roundoff: float
    dtype: str
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        d = asdict(self)
        d["worst_index"] = list(self.worst_index)
        return d

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise AssertionError(self.message)


def _first_bad(t: Tensor) -> tuple[int, ...]:
    bad = (~torch.isfinite(t)).nonzero()
    return tuple(int(i) for i in bad[0]) if bad.numel() else ()


def compare(
    candidate: Tensor,
    reference: Tensor,
    magnitude: Tensor,
    *,
    n: int,
    dtype: torch.dtype | None = None,
    label: str = "candidate",
) -> ComparisonResult:
    r"""Decide whether ``candidate`` equals the float64 ``reference`` within $\gamma_n M + n\eta$.

    ``magnitude`` is $M$, the same computation on absolute values (float64). ``dtype`` is the
    working precision of the candidate (default: the candidate's dtype). NaN or Inf anywhere in the
    candidate, the reference or $M$ fails the comparison and says where; it never passes.
    """
    if not (isinstance(candidate, Tensor) and isinstance(reference, Tensor) and isinstance(magnitude, Tensor)):
        raise TypeError("compare takes torch tensors (candidate, reference, magnitude)")
    if reference.is_complex() or magnitude.is_complex():
        raise TypeError(f"reference and magnitude must be real (float64) tensors; got {reference.dtype} and "
                        f"{magnitude.dtype}")
    if candidate.shape != reference.shape or magnitude.shape != reference.shape:
        raise ValueError(
            f"shapes differ: {label} {tuple(candidate.shape)}, reference {tuple(reference.shape)}, "
            f"magnitude {tuple(magnitude.shape)}; expected one shape"
        )
    dtype = dtype or candidate.dtype
    u = unit_roundoff(dtype)
    cand = candidate.detach().to("cpu", torch.float64) if not candidate.is_complex() else \
        candidate.detach().to("cpu", torch.complex128)
    ref = reference.detach().to("cpu", torch.float64)
    M = magnitude.detach().to("cpu", torch.float64)
    for name, t in ((label, cand), ("reference", ref), ("magnitude", M)):
        if not bool(torch.isfinite(t).all()):
            idx = _first_bad(t)
            return ComparisonResult(
                False, float("nan"), float("inf"), float("nan"), idx, float("nan"), n, u, str(dtype),
                f"{name} contains NaN or Inf (first at index {idx}); a non-finite output never passes",
            )
    if cand.numel() == 0:
        return ComparisonResult(True, 0.0, 0.0, 0.0, (), 0.0, n, u, str(dtype), "empty outputs (T=0): equal")
    err = (cand - ref).abs()
    bound = error_bound(M, n, dtype)
    ratio_t = err / bound
    flat = int(torch.argmax(ratio_t))
    worst = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), ratio_t.shape))
    ratio = float(ratio_t.reshape(-1)[flat])
    max_err = float(err.max())
    rms_ref = float(ref.pow(2).mean().sqrt())
    rms_err = float(err.pow(2).mean().sqrt())
    rel_rms = rms_err / rms_ref if rms_ref > 0 else rms_err
    passed = ratio <= 1.0
    verdict = "within" if passed else "EXCEEDS"
    msg = (
        f"{label} {verdict} the error bound: max |error| = {max_err:.3e}; worst error/bound = {ratio:.3e} at "
        f"index {worst} (error {float(err[worst]):.3e}, bound {float(bound[worst]):.3e} = gamma_{n} * M with "
        f"u = {u:.3e} for {dtype}); rel. rms = {rel_rms:.2e}"
    )
    return ComparisonResult(passed, max_err, ratio, float(bound[worst]), worst, rel_rms, n, u, str(dtype), msg)


def relative_bound(golden: Tensor, low_precision_reference: Tensor, *, fudge: float = 4.0,
                   floor: Tensor | float = 0.0) -> Tensor:
    r"""Bound for fp16/bf16 candidates: ``fudge`` times the error of a plain reference computed at the same
    precision (PyTorch's SDPA test pattern): the candidate may be at most ``fudge`` × further from the
    float64 golden than the naive computation at that precision, elementwise, plus ``floor``."""
    if not (isinstance(golden, Tensor) and isinstance(low_precision_reference, Tensor)):
        raise TypeError("relative_bound takes torch tensors (golden, low_precision_reference)")
    if golden.is_complex() or low_precision_reference.is_complex():
        raise TypeError("relative_bound takes real tensors; got complex")
    if golden.shape != low_precision_reference.shape:
        raise ValueError(f"shapes differ: golden {tuple(golden.shape)}, low-precision reference "
                         f"{tuple(low_precision_reference.shape)}; expected one shape")
    lp = (low_precision_reference.detach().to("cpu", torch.float64) - golden.detach().to("cpu", torch.float64)).abs()
    return fudge * lp + floor
