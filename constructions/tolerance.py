r"""The numeric tolerance model: a pass/fail bound from floating-point error analysis, not a guessed atol.

For a quantity computed as sums of products, the classical a-priori bound (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., §3.1, Lemma 3.1 and Eq. 3.5) is

$$ |\hat y - y| \;\le\; \gamma_n \, M, \qquad \gamma_n = \frac{n u}{1 - n u}, \qquad M = \text{the same
computation on } |{\cdot}| , $$

where $u$ is the unit roundoff of the working precision and $n$ bounds the number of successive
roundings along any path of the computation (products, then recursive sums). $M$ is evaluated in
float64 on absolute values: for linear self-attention it is the LSA with $|W_Q|,|W_K|,|W_V|,|W_O|$ applied to
$|x|$, which also dominates every term of the RNN constructions (their weights are sums of
products of the same entries, so the triangle inequality bounds their absolute computation by $M$).
A cancellation that makes $y\approx 0$ does not shrink $M$, so the bound never false-fails there.

We add Higham's underflow term $n\,\eta$ ($\eta$ the smallest normal number) and nothing else. The reference
is always float64 on CPU; a float64 candidate is checked against $u = 2^{-53}$. The recurrence's share of $n$
depends on $\lambda$ and the scan path (:func:`recurrence_path_length`). fp16/bf16, where $\gamma_n$ with $n
\propto T$ is infinite, use :func:`low_precision_bound`: $\gamma_{n_0} M$ for the non-recurrent stages plus a
running error bound of the state accumulation (docs/tolerance.md).

**This module is the one home of the tolerance model**: every rounding count $n$, every magnitude helper, the
rounding budgets of the LSA constructions (:func:`construction_depth`, :func:`lsa_rnn_budget`), the error
behaviour of non-polynomial blocks at the working precision (:class:`PointwiseError`, :data:`POINTWISE`:
flush-to-zero, subnormals, saturation), the underflow of weights formed as products at the working precision
(:func:`product_floor`, :func:`compressed_weight_floor`, :func:`weight_floor_magnitude`)
and the interface a variant implements to be checked
(:class:`ToleranceHooks`).
"""

import inspect
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

from .rnn import augment, input_gate
from .scan import scan_chunked, scan_loop

__all__ = [
    "ETA_MAX",
    "OPMATHS",
    "POINTWISE",
    "ComparisonResult",
    "PointwiseError",
    "ToleranceHooks",
    "WORKING_DTYPES",
    "compare",
    "compressed_weight_floor",
    "construction_depth",
    "decay_floor",
    "error_bound",
    "gamma",
    "lam_kind",
    "low_precision_bound",
    "lsa_path_length",
    "lsa_rnn_budget",
    "magnitude_at",
    "magnitude_takes_dtype",
    "pointwise_floor",
    "pointwise_magnitude",
    "product_floor",
    "recurrence_error_bound",
    "recurrence_path_length",
    "reference_agreement_budget",
    "rnn_path_length",
    "rnn_template_budget",
    "smallest_normal",
    "template_path_length",
    "unit_roundoff",
    "weight_floor_magnitude",
]

# : what one rounding-counted operation of the recurrence costs, per kind of $\lambda$ (derived; Higham Lemma
# 3.5):
#: a product by $\lambda\in\{0,1\}$ is exact, a real product rounds once, a complex product
# : $|fl(\lambda h)-\lambda h|\le\sqrt2\gamma_2|\lambda||h|\le\gamma_3|\lambda||h|$ counts 3; every addition
# counts 1.
PRODUCT_ROUNDINGS = {"zero-one": 0, "real": 1, "complex": 3}
RECURRENCE_MODES = ("any", "loop", "parallel", "hillis-steele")


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


def lam_kind(lam: Tensor | str | None) -> str:
    r"""Kind of $\lambda$ for the rounding count: ``"zero-one"`` (every entry 0 or 1: the product $\lambda h$
    is exact, the constructions' neurons), ``"real"`` or ``"complex"``. ``None`` means an unknown real
    $\lambda$ (``"real"``, the safe default); a string must be one of the three kinds."""
    if lam is None:
        return "real"
    if isinstance(lam, str):
        if lam not in PRODUCT_ROUNDINGS:
            raise ValueError(f"lam must be a tensor, None or one of {sorted(PRODUCT_ROUNDINGS)}; got {lam!r}")
        return lam
    if not isinstance(lam, Tensor):
        raise TypeError(f"lam must be a tensor, None or a kind string; got {type(lam).__name__}")
    if lam.is_complex():
        return "complex"
    return "zero-one" if bool(((lam == 0) | (lam == 1)).all()) else "real"


def recurrence_path_length(
    T: int, lam: Tensor | str | None = None, *, mode: str = "any", block: int | None = None
) -> int:
    r"""Roundings along the longest path of the recurrence $h_t=\lambda_t h_{t-1}+u_t$ over ``T`` steps
    (derived from :mod:`constructions.scan`; docs/tolerance.md). With $p$ the cost of one product
    (:data:`PRODUCT_ROUNDINGS`: 0 for $\lambda\in\{0,1\}$, 1 real, 3 complex) and 1 per addition:

    - ``"loop"`` (``scan_loop``: multiply, then add, every step): $(p+1)T$;
    - ``"parallel"`` (``scan_chunked`` with block $\ell$, default $\mathrm{round}(\sqrt T)$,
      $K=\lceil T/\ell\rceil$ blocks, last position $j=T-1-(K-1)\ell$): $(p+1)T$ if $K=1$, else
      $(p+1)\ell + (K-2)(p\ell+1) + p(j+1) + 1$ (fold and local steps of block 0, $K-2$ carry hops through
      the whole-block product, the fix-up with the partial product);
    - ``"hillis-steele"`` (``scan_parallel``): $pT + 1 + \lceil\log_2 T\rceil$ (every $\lambda$ factor joins
      by one product, one addition per round, the fold);
    - ``"any"`` (default): $(p+1)T$, which is at least each of the above (so valid for every dispatch path,
      including the RNN's super-chunks).

    For $\lambda\in\{0,1\}$ every path is $T$ (the masked cumulative sum adds in the loop's order)."""
    if T < 0:
        raise ValueError(f"T must be >= 0; got {T}")
    if mode not in RECURRENCE_MODES:
        raise ValueError(f"mode must be one of {RECURRENCE_MODES}; got {mode!r}")
    p = PRODUCT_ROUNDINGS[lam_kind(lam)]
    if T == 0:
        return 0
    if p == 0 or mode in ("any", "loop"):
        return (p + 1) * T
    if mode == "hillis-steele":
        return p * T + 1 + math.ceil(math.log2(T))
    ell = max(1, round(math.sqrt(T))) if block is None else int(block)
    if ell < 1:
        raise ValueError(f"block must be >= 1; got {block!r}")
    K = -(-T // ell)
    if K == 1:
        return (p + 1) * T
    j = T - 1 - (K - 1) * ell
    return (p + 1) * ell + (K - 2) * (p * ell + 1) + p * (j + 1) + 1


def rnn_path_length(
    T: int,
    d: int,
    n: int,
    m: int,
    construction_depth: int = 0,
    *,
    lam: Tensor | str | None = None,
    mode: str = "any",
    block: int | None = None,
) -> int:
    r"""Roundings along one path of the gated RNN: two input-gate dot products ($d+1$) and their product,
    the recurrence (:func:`recurrence_path_length`: $T$ for $\lambda\in\{0,1\}$, $2T$ for a real
    $\lambda$ in the step loop, $4T$ for a complex one; ``lam`` is the tensor or its kind, ``None`` = unknown
    real), the output-gate dot products ($n$) and product, the readout ($m$), the rounding of the four weight
    factors (4), plus ``construction_depth`` roundings made when the weights themselves were computed at
    that precision."""
    return (
        (d + 1)
        + 1
        + recurrence_path_length(T, lam, mode=mode, block=block)
        + n
        + 1
        + m
        + construction_depth
        + 4
    )


def template_path_length(A: Tensor, B: Tensor, C: Tensor, E: Tensor, D: Tensor) -> int:
    r"""Roundings along the longest path of the gated RNN's *non-recurrent* stages, from the weights' actual
    entries (derived): a dot product with $k$ non-zero weights rounds at most $k-1$ times in its additions
    along any path and in any summation order (an exact zero adds nothing), plus once in its products
    unless every non-zero weight of the row is $\pm2^j$ (exact products; underflow is the $n\eta$ term).
    The input gate costs $\max(r_A,r_B)+1$ and the output gating and readout $\max(r_C,r_E)+1+r_D$, $r_W$
    the largest count over the rows of $W$. Complex weights count twice (Higham Lemma 3.5). The recurrence
    is not included."""

    def pow2(t: Tensor) -> Tensor:
        return torch.frexp(t.abs())[0] == 0.5  # |t| = 2^j exactly

    def r(W: Tensor) -> int:
        if not isinstance(W, Tensor) or W.ndim != 2:
            raise TypeError(
                f"template_path_length takes the 2-D weight tensors A, B, C, E, D; got {type(W).__name__}"
                f"{'' if not isinstance(W, Tensor) else ' of shape ' + str(tuple(W.shape))}"
            )
        if not W.numel():
            return 0
        W = W.detach().to("cpu")
        nz = W != 0
        if W.is_complex():  # exact products only by a real or an imaginary power of two
            re, im = W.real.to(torch.float64), W.imag.to(torch.float64)
            exact = ((im == 0) & pow2(re)) | ((re == 0) & pow2(im))
        else:
            exact = pow2(W.to(torch.float64))
        counts = (nz.sum(dim=-1) - 1).clamp(min=0) + (nz & ~exact).any(dim=-1).to(torch.long)
        return int(counts.max())

    n = max(r(A), r(B)) + 1 + max(r(C), r(E)) + 1 + r(D)
    return 2 * n if any(W.is_complex() for W in (A, B, C, E, D)) else n


def error_bound(M: Float[Tensor, "*shape"], n: int, dtype: torch.dtype) -> Float[Tensor, "*shape"]:
    r"""Elementwise bound $\gamma_n M + n\eta$ (float64)."""
    return gamma(n, unit_roundoff(dtype)) * M.to(torch.float64).abs() + n * smallest_normal(dtype)


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
    if not (
        isinstance(candidate, Tensor) and isinstance(reference, Tensor) and isinstance(magnitude, Tensor)
    ):
        raise TypeError("compare takes torch tensors (candidate, reference, magnitude)")
    if reference.is_complex() or magnitude.is_complex():
        raise TypeError(
            f"reference and magnitude must be real (float64) tensors; got {reference.dtype} and "
            f"{magnitude.dtype}"
        )
    if candidate.shape != reference.shape or magnitude.shape != reference.shape:
        raise ValueError(
            f"shapes differ: {label} {tuple(candidate.shape)}, reference {tuple(reference.shape)}, "
            f"magnitude {tuple(magnitude.shape)}; expected one shape"
        )
    dtype = dtype or candidate.dtype
    u = unit_roundoff(dtype)
    cand = (
        candidate.detach().to("cpu", torch.float64)
        if not candidate.is_complex()
        else candidate.detach().to("cpu", torch.complex128)
    )
    ref = reference.detach().to("cpu", torch.float64)
    M = magnitude.detach().to("cpu", torch.float64)
    for name, t in ((label, cand), ("reference", ref), ("magnitude", M)):
        if not bool(torch.isfinite(t).all()):
            idx = _first_bad(t)
            return ComparisonResult(
                False,
                float("nan"),
                float("inf"),
                float("nan"),
                idx,
                float("nan"),
                n,
                u,
                str(dtype),
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
    return ComparisonResult(
        passed, max_err, ratio, float(bound[worst]), worst, rel_rms, n, u, str(dtype), msg
    )


def recurrence_error_bound(
    lam: Tensor, H: Float[Tensor, "batch time n"], dtype: torch.dtype
) -> Float[Tensor, "batch time n"]:
    r"""Running error bound of the step loop $\hat h_t = fl(fl(\lambda_t\hat h_{t-1}) + \hat u_t)$ at the unit
    roundoff of ``dtype`` (Higham §3.3 and Eq. 4.4, running error analysis; derived for the gated recurrence
    in docs/tolerance.md). ``H`` bounds the moduli of the exact states $|h_t|$ of the same recurrence on the
    computed inputs; ``lam`` is ``[n]`` or ``[batch, time, n]``. Returns $e_t \ge |\hat h_t - h_t|$:

    $$ e_t = \frac{(1+\mu)|\lambda_t|\,e_{t-1} + \mu|\lambda_t|\,H_{t-1} + u\,H_t}{1-u},\qquad e_0 = 0, $$

    with $\mu = 0$ where $\lambda_t\in\{0,1\}$ (exact product), $u$ for a real and $\sqrt2\gamma_2$ for a
    complex product. The sum is bounded through the computed states themselves ($u\sum_t|h_t|$ for
    $\lambda=1$), so cancellation in the state (random-sign terms: $|h_t|\sim\sqrt t$) is credited, which
    the a-priori $\gamma_T M$ cannot do; it is what makes long recurrences checkable in fp16/bf16. Float64
    on CPU."""
    if not (isinstance(lam, Tensor) and isinstance(H, Tensor)):
        raise TypeError("recurrence_error_bound takes torch tensors (lam, H)")
    if H.is_complex() or H.ndim != 3:
        raise ValueError(
            f"H must be a real [batch, time, n] tensor of state moduli; got {H.dtype} {tuple(H.shape)}"
        )
    if lam.shape not in ((H.shape[2],), tuple(H.shape)):
        raise ValueError(
            f"lam must have shape [n] = {(H.shape[2],)} or [batch, time, n] = {tuple(H.shape)}; "
            f"got {tuple(lam.shape)}"
        )
    u = unit_roundoff(dtype)
    H = H.detach().to("cpu", torch.float64)
    if lam.is_complex():
        mu_val = math.sqrt(2) * gamma(2, u)
    else:
        mu_val = u
    lam_c = lam.detach().to("cpu")
    lam_abs = lam_c.abs().to(torch.float64)
    exact = (lam_c == 0) | (lam_c == 1)
    mu = torch.where(exact, 0.0, mu_val).to(torch.float64)
    a = (1 + mu) * lam_abs / (1 - u)
    H_prev = torch.cat([H.new_zeros(H.shape[0], 1, H.shape[2]), H[:, :-1]], dim=1)
    b = (mu * lam_abs * H_prev + u * H) / (1 - u)
    if a.ndim == 1:
        a = a.expand(H.shape[0], H.shape[1], H.shape[2])
    with torch.no_grad():
        e, _ = scan_chunked(a, b, H.new_zeros(H.shape[0], H.shape[2]))
    # the float64 evaluation of this bound rounds too (relative <= ~(T+2) 2^-53): cover it
    return e * (1 + 4 * H.shape[1] * 2.0**-53)


def low_precision_bound(
    rnn,
    x: Float[Tensor, "batch time d"],
    M: Float[Tensor, "batch time d_out"],
    *,
    dtype: torch.dtype,
    extra: int,
    mode: str = "loop",
) -> Float[Tensor, "batch time d_out"]:
    r"""Elementwise bound for a gated RNN evaluated at a low precision (fp16/bf16), where $\gamma_n M$ with
    the recurrence's $n\propto T$ has $nu\ge1$ (derived; docs/tolerance.md):

    $$ |\hat y - y| \le \gamma_{n_0} M + n_0\eta + (1+\gamma_{n_0}) R, $$

    - $n_0$ = :func:`template_path_length` of ``rnn`` (the non-recurrent stages, from the weights' sparsity)
      plus ``extra`` (rounding of the inputs and weights, and of the weights' own construction);
    - $R = |D|\,[(|C|e)\odot(|E|H) + (|C|H)\odot(|E|e) + (|C|e)\odot(|E|e)]$, the state error $e$
      (:func:`recurrence_error_bound` for the step loop and for the masked cumulative sum of
      $\lambda\in\{0,1\}$, which also accumulates sequentially; $\gamma_{n_r}M_h$ with the scan's
      :func:`recurrence_path_length` otherwise) pushed through the output gating on absolute values;
      $H = |h| + \gamma_{n_0}M_h$ bounds the states, $h$ the exact (float64) states and $M_h$ the states on
      absolute values.

    ``rnn`` holds the exact (float64) weights of the candidate, ``x`` its exact input, ``M`` the magnitude
    of the reference computation (e.g. ``Variant.magnitude``); ``mode`` the candidate's scan path (the dense
    template's; the structured fast path's chunked matmul form re-associates the sums and is not covered)."""
    if mode not in ("loop", "parallel", "auto"):
        raise ValueError(f"mode must be 'loop', 'parallel' or 'auto'; got {mode!r}")
    if not (hasattr(rnn, "weights") and hasattr(rnn, "lam")):
        raise TypeError(f"rnn must be a constructions.GatedLinearRNN; got {type(rnn).__name__}")
    if not (isinstance(x, Tensor) and isinstance(M, Tensor)) or x.ndim != 3 or M.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"x must be [batch, time, d] and M [batch, time, d_out] with the same batch and time; got "
            f"{getattr(x, 'shape', type(x).__name__)} and {getattr(M, 'shape', type(M).__name__)}"
        )
    if rnn.lam is None:
        raise ValueError("low_precision_bound needs a constant lambda (the template of Sec. 3); got a decay")
    A, B, lam, C, E, D = (w.detach().to("cpu") for w in rnn.weights())
    cdt = torch.complex128 if rnn.is_complex else torch.float64
    A, B, lam, C, E, D = (w.to(cdt) for w in (A, B, lam, C, E, D))
    x64 = x.detach().to("cpu", torch.float64)
    T = x64.shape[1]
    u = unit_roundoff(dtype)
    n0 = template_path_length(A, B, C, E, D) + extra
    g0 = gamma(n0, u)
    if math.isinf(g0):
        raise ValueError(
            f"no guarantee left: the non-recurrent path has n0 = {n0} roundings and n0 u >= 1 at {dtype}; "
            "expected a smaller layer or a higher precision"
        )
    h, _ = scan_loop(
        lam, input_gate(A, B, augment(x64.to(cdt))), x64.new_zeros(x64.shape[0], A.shape[0]).to(cdt)
    )
    Ua = input_gate(A.abs(), B.abs(), augment(x64.abs()))
    Mh, _ = scan_loop(lam.abs(), Ua, Ua.new_zeros(Ua.shape[0], Ua.shape[2]))
    H = h.abs() + g0 * Mh
    kind = lam_kind(lam)
    if mode == "loop" or kind == "zero-one" or T <= 2:
        e = recurrence_error_bound(lam, H, dtype)
    else:
        g_r = gamma(recurrence_path_length(T, lam, mode="parallel"), u)
        if math.isinf(g_r):
            raise ValueError(
                f"no guarantee left for the parallel scan of a lambda outside {{0, 1}} over T={T} steps at "
                f"{dtype} (n u >= 1); expected mode='loop' (running error bound) or a higher precision"
            )
        e = g_r * Mh
    Ca, Ea, Da = C.abs(), E.abs(), D.abs()
    Ce, Ee, CH, EH = e @ Ca.T, e @ Ea.T, H @ Ca.T, H @ Ea.T
    R = (Ce * EH + CH * Ee + Ce * Ee) @ Da.T
    return error_bound(M, n0, dtype) + (1 + g0) * R


# -- rounding budgets of the LSA constructions (one formula; every caller uses these)
# --------------------------
def construction_depth(heads: int, d_k: int, d_v: int) -> int:
    r"""Roundings made when a construction's weights are computed from the LSA's at the working precision
    (derived; the largest of the constructions'): the products $W^h_OW^h_V$ ($H d_v$ terms along a path,
    counted per head: $H d_v$) and $W^{h\top}_KW^h_Q$ ($H d_k$), their product, the sum over heads and the
    symmetric fold of the compressed store, and the rounding of the four weight factors and of their cast
    (8)."""
    return heads * (d_v + d_k) + 8


def lsa_rnn_budget(
    T: int,
    d: int,
    d_k: int,
    d_v: int,
    heads: int,
    num_neurons: int,
    num_gates: int,
    *,
    has_W_O: bool = True,
    depth: int | None = None,
    lam: Tensor | str | None = "zero-one",
    mode: str = "any",
) -> int:
    r"""Rounding budget $n$ for a gated RNN with ``num_neurons`` neurons and ``num_gates`` gates that
    implements an LSA of these sizes at length ``T``: the LSA's own path (:func:`lsa_path_length`, the
    float64 reference's summation order), plus the RNN's (:func:`rnn_path_length`, $\lambda\in\{0,1\}$ by
    default: the constructions' memories and queries), with :func:`construction_depth` for its weights
    unless ``depth``."""
    depth = construction_depth(heads, d_k, d_v) if depth is None else int(depth)
    return lsa_path_length(T, d, d_k, d_v, heads, has_W_O=has_W_O) + rnn_path_length(
        T, d, num_neurons, num_gates, construction_depth=depth, lam=lam, mode=mode
    )


def rnn_template_budget(rnn, T: int, extra: int = 0) -> int:
    r"""Rounding budget $n$ of the gated RNN template itself at length ``T`` (:func:`rnn_path_length` for its
    $\lambda$: $T$ when every $\lambda\in\{0,1\}$, $2T$ real, $4T$ complex; an input-dependent decay counts
    as an unknown real or complex $\lambda$), plus ``extra``."""
    lam = rnn.lam if rnn.lam is not None else ("complex" if rnn.is_complex else "real")
    return rnn_path_length(T, rnn.d, rnn.num_neurons, rnn.num_gates, lam=lam) + int(extra)


def reference_agreement_budget(T: int, d: int, d_k: int, d_v: int, heads: int) -> int:
    r"""Budget for comparing two float64 evaluations of the same LSA that may sum in different orders (each is
    within $\gamma_n M$ of the exact value, so they differ by at most $\gamma_{2n}M$)."""
    return 2 * lsa_path_length(T, d, d_k, d_v, heads)


@runtime_checkable
class ToleranceHooks(Protocol):
    r"""What a variant implements to be checked under this model (``constructions.registry.Variant``):

    - ``magnitude(params, x)``: $M$, the reference computed on absolute values in float64 on CPU, with every
      non-polynomial quantity inflated by its rounding sensitivity and its underflow floor
      (:func:`pointwise_magnitude`, :func:`decay_floor`); a construction that forms weights as products at the
      working precision takes ``dtype=None`` too and adds their propagated underflow
      (:func:`compressed_weight_floor`, :func:`weight_floor_magnitude`; ``None``: safe for every working
      dtype), passed by :func:`magnitude_at`;
    - ``path_length(params, T)``: $n$, the number of successive roundings along one path
      (:func:`lsa_rnn_budget` and :func:`rnn_path_length` build it).

    The bound is then :func:`error_bound` $\gamma_nM + n\eta$ at the candidate's dtype."""

    def magnitude(self, params: Any, x: Tensor) -> Tensor: ...

    def path_length(self, params: Any, T: int) -> int: ...


# -- non-polynomial blocks: flush-to-zero, subnormals, saturation (derived; docs/tolerance.md)
# -----------------
# : ``(u, log eta)`` of the arithmetics in which torch evaluates exp, sigmoid, silu, softplus, logsigmoid:
# float32
#: "opmath" for float32, bfloat16 and float16 tensors (CPU and CUDA kernels upcast), float64 for float64.
OPMATHS = (
    (2.0**-24, math.log(torch.finfo(torch.float32).tiny)),
    (2.0**-53, math.log(torch.finfo(torch.float64).tiny)),
)
# : largest smallest-normal number of the working dtypes (float16: $2^{-14}$). A rounding into a dtype's
# subnormal
# : range errs by at most $u\eta$ absolutely (Higham Eq. 2.8), which is $\eta$ in units of $u$: the floor
# below.
ETA_MAX = float(torch.finfo(torch.float16).tiny)
#: the coarsest working precision whose pre-activations are modelled (bfloat16): the computed pre-activation
#: $\hat g$ of a fan-in-$k$ dot product is within $(k+2)\,u_{bf16}\,L$ of $g$ ($L = |W||\tilde x|$)
_U_COARSE = 2.0**-8


@dataclass(frozen=True)
class PointwiseError:
    r"""The error behaviour of a pointwise function $\phi$ at a working precision (derived;
    docs/tolerance.md).

    - ``fn``: $\phi$ itself, evaluated exactly enough in float64;
    - ``slope``: a bound on $|\phi'(g)|$ (sensitivity to the rounding of the pre-activation $g$);
    - ``scale``: what $\phi$'s own evaluation rounds relative to (the computation on absolute values; for
      $\mathrm{elu}(g)+1$ it is $|\mathrm{elu}(g)|+1$, not $|\phi(g)|$);
    - ``underflow``: ``(g, margin, log_eta) -> bool`` mask of where an evaluation in an arithmetic with
      smallest normal $e^{\text{log\_eta}}$ may return 0 or a subnormal (flush-to-zero, $e^{g}$ below $\eta$,
      $1/(1+e^{-g})$ with $e^{-g}$ overflowing), for a computed pre-activation within ``margin`` of ``g``;
      there the whole value $|\phi(g)|$ may be lost (relative error 1), which no multiple of $u$ covers.
      ``None``: never.
    - ``roundings``: roundings of one evaluation into a dtype's subnormal range (each errs by $\le u\eta$).
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    slope: Callable[[Tensor], Tensor]
    scale: Callable[[Tensor], Tensor]
    underflow: Callable[[Tensor, Tensor, float], Tensor] | None = None
    roundings: int = 4


def _exp_tail(g: Tensor, margin: Tensor, log_eta: float) -> Tensor:
    """$\\phi(\\hat g) \\approx e^{\\hat g}$ or smaller may be subnormal / flushed: $\\hat g \\le
    \\log\\eta$."""
    return g - margin <= log_eta


def _exp_neg_exp_tail(g: Tensor, margin: Tensor, log_eta: float) -> Tensor:
    """$e^{-e^{\\hat g}}$ is subnormal / flushed once $e^{\\hat g} \\ge -\\log\\eta$ (and when $e^{\\hat g}$
    overflows)."""
    return g + margin >= math.log(-log_eta)


def _silu(g: Tensor) -> Tensor:
    return g * torch.sigmoid(g)


#: the pointwise functions of the shipped upstream blocks (``constructions.variants.upstream.FEATURE_FNS``)
POINTWISE: dict[str, PointwiseError] = {
    m.name: m
    for m in (
        PointwiseError("identity", lambda g: g, torch.ones_like, torch.abs, None, 0),
        PointwiseError("relu", torch.relu, torch.ones_like, torch.relu, None, 0),
        # elu(g) + 1 = expm1(g) + 1: rounds relative to |elu(g)| + 1 >= 1, so a lost e^g (< eta) is within u *
        # scale
        PointwiseError(
            "elu+1",
            lambda g: torch.nn.functional.elu(g) + 1,
            lambda g: torch.where(g > 0, torch.ones_like(g), torch.exp(g.clamp(max=0))),
            lambda g: torch.nn.functional.elu(g).abs() + 1,
            None,
            2,
        ),
        PointwiseError(
            "sigmoid", torch.sigmoid, lambda g: torch.sigmoid(g) * torch.sigmoid(-g), torch.sigmoid, _exp_tail
        ),
        PointwiseError("exp", torch.exp, torch.exp, torch.exp, _exp_tail),
        PointwiseError(
            "softplus",
            lambda g: torch.logaddexp(g, torch.zeros_like(g)),
            torch.sigmoid,
            lambda g: torch.logaddexp(g, torch.zeros_like(g)),
            _exp_tail,
        ),
        PointwiseError(
            "silu",
            _silu,
            lambda g: (torch.sigmoid(g) * (1 + g * torch.sigmoid(-g))).abs(),
            lambda g: _silu(g).abs(),
            _exp_tail,
        ),
        PointwiseError(
            "exp-neg-exp",
            lambda g: torch.exp(-torch.exp(g)),
            lambda g: torch.exp(g - torch.exp(g)),
            lambda g: torch.exp(-torch.exp(g)),
            _exp_neg_exp_tail,
        ),
    )
}


def pointwise_floor(model: PointwiseError | str, g: Tensor, L: Tensor, fan_in: int) -> Tensor:
    r"""The part of $\phi$'s error that is *absolute*, in units of $u$ (so that adding it, divided by $n$, to
    a magnitude that the bound multiplies by $\gamma_n\ge nu$ covers it; derived, docs/tolerance.md):

    $$ \phi_\text{lost}(g) = \max_{\text{opmath}}\ \frac{|\phi(g)|\,[\hat g\text{ may
    underflow}]}{u_\text{op}}
       \;+\; k\,\eta_\text{max}, $$

    the first term for the flush-to-zero / subnormal zone of each evaluation arithmetic (float32 opmath for
    float32/bf16/fp16 tensors, float64 for float64), with the computed pre-activation $\hat g$ within
    $(k_\text{in}+2)\,u_\text{bf16}\,L$ of $g$; the second, where $|\phi|$ may be below float16's smallest
    normal, for $k$ roundings into a dtype's subnormal range ($\le u\eta$ each). ``g`` is the exact
    pre-activation, ``L`` $= |W||\tilde x|$ its absolute computation (float64)."""
    m = POINTWISE[model] if isinstance(model, str) else model
    if not isinstance(m, PointwiseError):
        raise TypeError(
            f"model must be a PointwiseError or one of {sorted(POINTWISE)}; got {type(model).__name__}"
        )
    g, L = g.detach().to("cpu", torch.float64), L.detach().to("cpu", torch.float64)
    val = m.fn(g).abs()
    slack = m.slope(g).abs() * (fan_in + 2) * _U_COARSE * L  # |phi(g_hat) - phi(g)| to first order
    # a result that may land in float16's subnormal range (|phi| <= eta there) errs by <= u eta per rounding
    out = torch.where(val - slack <= ETA_MAX, m.roundings * ETA_MAX, 0.0).to(torch.float64)
    if m.underflow is not None:
        margin = (fan_in + 2) * _U_COARSE * L + 1.0
        for u_op, log_eta in OPMATHS:
            out = out + torch.where(m.underflow(g, margin, log_eta), val / u_op, torch.zeros_like(val))
    return out


def pointwise_magnitude(model: PointwiseError | str, g: Tensor, L: Tensor, fan_in: int, n: int) -> Tensor:
    r"""Error-inflated magnitude of $\phi(g)$ for the tolerance model's $M$ (float64, CPU):
    $\text{scale}(g) + \big(|\phi'(g)|\,(k_\text{in}+2)\,L + \phi_\text{lost}(g)\big)/n$ — the evaluation's
    own rounding (relative to ``scale``), the first-order effect of the pre-activation's rounding (a fan-in
    $k_\text{in}$ dot product plus bias: $\le(k_\text{in}+2)uL$) and :func:`pointwise_floor`. This is the
    documented way for an upstream block to declare its error behaviour: its ``magnitude(x, n)`` returns
    this (or its own derivation) for each non-polynomial output."""
    m = POINTWISE[model] if isinstance(model, str) else model
    if not isinstance(m, PointwiseError):
        raise TypeError(
            f"model must be a PointwiseError or one of {sorted(POINTWISE)}; got {type(model).__name__}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the path length); got {n!r}")
    g64, L64 = g.detach().to("cpu", torch.float64), L.detach().to("cpu", torch.float64)
    if m.name == "identity":  # g itself: its magnitude is L (the pre-activation on absolute values)
        return L64
    return m.scale(g64) + (m.slope(g64).abs() * (fan_in + 2) * L64 + pointwise_floor(m, g64, L64, fan_in)) / n


def decay_floor(log_lam: Tensor, margin: Tensor) -> Tensor:
    r"""Absolute error floor, in units of $u$, of a decay $\lambda = e^{\ell}$ computed as an exponential
    (``exp(scale * logsigmoid(g))``): where $\hat\ell \le \log\eta_\text{op}$ the computed $\lambda$ may be
    subnormal or 0 while the true one is not (derived like :func:`pointwise_floor`). ``log_lam`` is the exact
    $\ell$, ``margin`` a bound on $|\hat\ell-\ell|$ (float64)."""
    ll = log_lam.detach().to("cpu", torch.float64)
    lam = torch.exp(ll)
    out = torch.where(ll - margin <= math.log(2 * ETA_MAX), 2 * ETA_MAX, 0.0).to(
        torch.float64
    )  # fp16 subnormals
    for u_op, log_eta in OPMATHS:
        out = out + torch.where(ll - margin <= log_eta, lam / u_op, torch.zeros_like(lam))
    return out


# -- weights formed at the working precision: gradual underflow (derived; docs/tolerance.md)
# ---------------
#: the working dtypes that a magnitude computed without a stated dtype covers
WORKING_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)


def smallest_normal(dtype: torch.dtype) -> float:
    r"""$\eta$, the smallest positive normal number of ``dtype`` (complex dtypes: of their real part)."""
    real = {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)
    if not real.is_floating_point:
        raise TypeError(f"smallest_normal is defined for floating dtypes; got {dtype}")
    return float(torch.finfo(real).tiny)


def product_floor(
    L: Float[Tensor, "*batch p k"], R: Float[Tensor, "*batch k q"]
) -> Float[Tensor, "*batch p q"]:
    r"""A bound, in units of $u\eta$, on the absolute (underflow) part of the error of the matrix product $LR$
    formed at the working precision with gradual underflow (derived; docs/tolerance.md): one unit per product
    that may round (both factors non-zero and neither $\pm1$), plus one for the final rounding of a sum of two
    or more non-zero terms accumulated in a wider format (torch's CPU matmuls of float16/bfloat16). Additions
    add none: with gradual underflow $fl(a\pm b) = (a\pm b)(1+\delta)$ (Higham 2002, §2.2). Float64."""
    L, R = L.detach().to("cpu", torch.float64), R.detach().to("cpu", torch.float64)
    nzL, nzR = L != 0, R != 0
    can_round = (nzL & (L.abs() != 1)).to(torch.float64) @ (nzR & (R.abs() != 1)).to(torch.float64)
    terms = nzL.to(torch.float64) @ nzR.to(torch.float64)
    return can_round + (terms >= 2).to(torch.float64)


def compressed_weight_floor(
    W_Q: Float[Tensor, "heads d_k d"],
    W_K: Float[Tensor, "heads d_k d"],
    W_V: Float[Tensor, "heads d_v d"],
    W_O: Float[Tensor, "d_out hdv"] | None,
    x: Float[Tensor, "batch time d"],
    decay: Float[Tensor, "batch heads time"] | None = None,
) -> Float[Tensor, "batch time d_out"]:
    r"""$F$, the propagated underflow error of the compressed construction's readout weights, in units of
    $u\eta$ (dtype-free; derived, docs/tolerance.md). The construction forms
    $C_{(o,c),(a,b)} = \sum_h P_h[o,a]Q_h[b,c]$ (+ the transposed pair), $P_h = W^h_OW^h_V$,
    $Q_h = W^{h\top}_KW^h_Q$ (Zucchet et al. 2023, App. A), at the working precision, where with gradual
    underflow $fl(ab) = ab(1+\delta) + e$, $|\delta|\le u$, $|e|\le u\eta$ (Higham 2002, §2.2). With
    $p_h$, $q_h$ the :func:`product_floor` of $P_h$ and $Q_h$ ($p_h = 0$ when $W_O$ is ``None``: $P_h$ is a
    copy of $W^h_V$), the absolute part of $C$'s error is at most $u\eta(1+\gamma)\,\Phi$,

    $$ \Phi_h[o,a,b,c] = p_h|Q_h| + |P_h|q_h + p_hq_h + [|P_h|\ne0][|Q_h|\ne0], $$

    ($|P_h| = |W^h_O||W^h_V|$, $|Q_h| = |W^h_K|^\top|W^h_Q|$; the last term is the rounding of the product
    $\hat P\hat Q$), and it reaches the output through the store $\Sigma^h_t = \sum_{s\le t}(\prod a_h)\,
    x_sx_s^\top$ and the query $x_t$, so
    $F_{t,o} = \sum_h\sum_{abc}\Phi_h[o,a,b,c]\,|\Sigma^h_t|_{ab}|x_{t,c}|$ on absolute values.
    ``decay``: bounds of the computed per-head decays (``None``: $\le 1$, e.g. $\lambda=1$ or any decay in
    $[0, 1]$). Float64, CPU."""
    W_Q, W_K, W_V = (w.detach().to("cpu", torch.float64) for w in (W_Q, W_K, W_V))
    if W_Q.ndim != 3 or W_K.shape != W_Q.shape or W_V.ndim != 3 or W_V.shape[::2] != W_Q.shape[::2]:
        raise ValueError(
            f"W_Q, W_K must be [heads, d_k, d] and W_V [heads, d_v, d]; got {tuple(W_Q.shape)}, "
            f"{tuple(W_K.shape)}, {tuple(W_V.shape)}"
        )
    H, _, d = W_Q.shape
    d_v = W_V.shape[1]
    xa = x.detach().to("cpu", torch.float64).abs()
    if xa.ndim != 3 or xa.shape[2] != d:
        raise ValueError(f"x must be [batch, time, {d}]; got {tuple(x.shape)}")
    Bn, T, _ = xa.shape
    W_O = None if W_O is None else W_O.detach().to("cpu", torch.float64)
    if decay is not None and tuple(decay.shape) != (Bn, H, T):
        raise ValueError(f"decay must be [batch, heads, time] = {(Bn, H, T)}; got {tuple(decay.shape)}")
    outer = xa[..., :, None] * xa[..., None, :]  # [B, T, d, d]
    out = None
    for h in range(H):
        Qa, q = W_K[h].abs().T @ W_Q[h].abs(), product_floor(W_K[h].T, W_Q[h])
        if W_O is None:
            Pa = W_V.new_zeros(H * d_v, d)
            Pa[h * d_v : (h + 1) * d_v] = W_V[h].abs()
            p = torch.zeros_like(Pa)
        else:
            WOh = W_O[:, h * d_v : (h + 1) * d_v]
            Pa, p = WOh.abs() @ W_V[h].abs(), product_floor(WOh, W_V[h])
        phi = (
            p[:, :, None, None] * Qa[None, None]
            + Pa[:, :, None, None] * q[None, None]
            + p[:, :, None, None] * q[None, None]
            + ((Pa != 0).to(torch.float64)[:, :, None, None] * (Qa != 0).to(torch.float64)[None, None])
        )  # [d_out, a, b, c]
        if decay is None:
            S = outer.cumsum(dim=1)
        else:
            a = decay[:, h].detach().to("cpu", torch.float64).abs()
            S = torch.empty_like(outer)
            acc = torch.zeros_like(outer[:, 0])
            for t in range(T):
                acc = a[:, t, None, None] * acc + outer[:, t]
                S[:, t] = acc
        Fh = torch.einsum("oabc,ntab,ntc->nto", phi, S, xa)
        out = Fh if out is None else out + Fh
    return out


def weight_floor_magnitude(
    F: Float[Tensor, "*shape"], n: int, dtype: torch.dtype | None = None
) -> Float[Tensor, "*shape"]:
    r"""What a propagated weight-underflow error $F$ (units of $u\eta$, e.g. :func:`compressed_weight_floor`)
    adds to the magnitude $M$ so that the bound $\gamma_nM$ covers it at ``dtype`` (derived): the error is at
    most $u\eta(1+\gamma_n)^2F$ (one $1+\gamma_n$ for the rounding of the weight's own sums, one for the
    computed states it multiplies), and $\gamma_n\ge nu$, so $M$ gains $\eta(1+\gamma_n)^2F/n$. ``dtype``
    ``None``: the largest over :data:`WORKING_DTYPES` (float16's $\eta = 2^{-14}$; safe for every working
    precision, but it costs float64 detection power where weights underflow in float16). A dtype with
    $nu\ge1$ (no guarantee left) adds nothing."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the path length); got {n!r}")
    F = F.detach().to("cpu", torch.float64)
    coef = 0.0
    for dt in WORKING_DTYPES if dtype is None else (dtype,):
        g = gamma(n, unit_roundoff(dt))
        if math.isfinite(g):
            coef = max(coef, smallest_normal(dt) * (1 + g) ** 2 / n)
    return coef * F


def magnitude_takes_dtype(variant: Any) -> bool:
    """Whether ``variant.magnitude`` takes a ``dtype`` keyword (the working precision its weights are formed
    at; the hooks of constructions whose weights are all copied need none)."""
    try:
        params = inspect.signature(variant.magnitude).parameters
    except (TypeError, ValueError):
        return False
    return "dtype" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def magnitude_at(variant: Any, params: Any, x: Tensor, dtype: torch.dtype | None) -> Tensor:
    r"""``variant.magnitude(params, x, dtype=dtype)`` when the hook takes a ``dtype``
    (:func:`magnitude_takes_dtype`), else ``variant.magnitude(params, x)`` (a dtype-free $M$)."""
    if magnitude_takes_dtype(variant):
        return variant.magnitude(params, x, dtype=dtype)
    return variant.magnitude(params, x)
