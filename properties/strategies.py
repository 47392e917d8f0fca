r"""Hypothesis strategies for sizes, weights, sequences and $\lambda$ (shrinking-friendly, seeded).

Used by the property suite (:mod:`properties.suite`) and by anyone who wants to test a layer claimed to
implement the linear self-attention of Zucchet et al. 2023 (arXiv 2309.01775, Sec. 3):

- **sizes** are separate small integers drawn first (:func:`lsa_sizes`), so a failure shrinks to
  ``H=1, d=1, d_k=1, d_v=1``;
- **weights** (:func:`weights`) come in two regimes (``docs/properties.md``): ``"generic"`` draws every
  entry independently (``fill=st.nothing()``: full rank, distinct values), ``"degenerate"`` draws
  rank-deficient, zero, repeated-value, tiny or huge-but-finite arrays — the identities must hold for
  *all* weights, so the degenerate regime is where bugs hide;
- **sequences** (:func:`sequences`) are long (``T`` up to 64 and beyond, with batches), so their values
  come from a ``torch.Generator`` whose seed Hypothesis draws (never the global RNG): the spec
  (seed, T, batch, scale, pattern) is shrinkable and printed with every failure (``note``);
- **lambda** (:func:`lambdas`): real in $[-1, 1]$ with the construction's exact 0 and 1 and values near 1,
  or complex inside / on the unit circle.

Every float drawn by Hypothesis is exactly representable in float32 (``width=32``) and scales are powers
of two, so casting a case to float32 adds no rounding of the data itself.
"""

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jaxtyping import Float, Inexact
from torch import Tensor

from constructions import GatedLinearRNN, LinearSelfAttention

__all__ = [
    "CHUNK_SIZES",
    "DEGENERATE_KINDS",
    "SEQUENCE_PATTERNS",
    "WEIGHT_KINDS",
    "LSASizes",
    "SequenceSpec",
    "boundary_lengths",
    "exponent_range",
    "generators",
    "integer_lsas",
    "integer_sequences",
    "lambdas",
    "lengths",
    "lsa_sizes",
    "lsas",
    "past_boundary_lengths",
    "rnns",
    "seeds",
    "sequence_specs",
    "sequences",
    "weights",
]

WEIGHT_KINDS = ("generic", "degenerate")
#: the degenerate regimes of :func:`weights` (``kind="degenerate"`` draws one of them); ``"zero"`` last: an
#: all-zero weight makes the LSA's output identically 0, so every other check of that example is vacuous
DEGENERATE_KINDS = ("repeated", "rank-deficient", "tiny", "huge", "zero")
#: input patterns of :func:`sequences`
SEQUENCE_PATTERNS = ("normal", "constant-token", "sparse", "one-hot", "zeros")


def exponent_range(dtype: torch.dtype) -> int:
    """Largest power-of-two scale exponent ``e`` (scales $2^{\\pm e}$) that keeps an LSA finite in ``dtype``.

    LSA is of degree 4 in the weights and 3 in the input, so float32 allows $2^{\\pm 10}\\approx 10^{\\pm3}$
    per weight (the "badly scaled" range of the reliability study), float64 $2^{\\pm 40}$, fp16/bf16 $2^{\\pm
    2}$.
    """
    if dtype in (torch.float64, torch.complex128):
        return 40
    if dtype in (torch.float32, torch.complex64):
        return 10
    return 2


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``torch.Generator`` (drawn by Hypothesis, so they shrink and replay)."""
    return st.integers(0, 2**32 - 1)


def generators() -> st.SearchStrategy[torch.Generator]:
    """A fresh ``torch.Generator`` seeded by Hypothesis (the seed is noted for the failure report)."""

    def make(seed: int) -> torch.Generator:
        note(f"torch.Generator().manual_seed({seed})")
        return torch.Generator().manual_seed(seed)

    return seeds().map(make)


@dataclass(frozen=True)
class LSASizes:
    """Sizes of a multi-head LSA: ``W_Q, W_K [H, d_k, d]``, ``W_V [H, d_v, d]``, ``W_O [d_out, H*d_v]`` or
    none."""

    H: int
    d: int
    d_k: int
    d_v: int
    d_out: int | None = None

    def __post_init__(self):
        for name in ("H", "d", "d_k", "d_v"):
            if getattr(self, name) < 1:
                raise ValueError(f"LSASizes.{name} must be >= 1; got {getattr(self, name)}")
        if self.d_out is not None and self.d_out < 1:
            raise ValueError(f"LSASizes.d_out must be >= 1 or None (concatenated heads); got {self.d_out}")


@st.composite
def lsa_sizes(
    draw,
    *,
    max_heads: int = 3,
    max_d: int = 6,
    max_d_k: int = 4,
    max_d_v: int = 4,
    max_d_out: int = 4,
    w_o: bool | None = None,
) -> LSASizes:
    """Sizes drawn as separate small integers (each shrinks to 1). ``w_o``: force (``True``), forbid
    (``False``) or draw (``None``) an output projection $W_O$."""
    H = draw(st.integers(1, max_heads), label="H")
    d = draw(st.integers(1, max_d), label="d")
    d_k = draw(st.integers(1, max_d_k), label="d_k")
    d_v = draw(st.integers(1, max_d_v), label="d_v")
    has_o = draw(st.booleans(), label="has W_O") if w_o is None else w_o
    d_out = draw(st.integers(1, max_d_out), label="d_out") if has_o else None
    return LSASizes(H, d, d_k, d_v, d_out)


def _elements(bound: float = 2.0) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)


def _generic(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    # fill=st.nothing(): every entry drawn independently (full rank, distinct values: no accidental ties)
    return hnp.arrays(np.float64, shape, elements=_elements(), fill=st.nothing())


@st.composite
def _rank_deficient(draw, shape: tuple[int, ...]) -> np.ndarray:
    rows, cols = shape[-2], shape[-1]
    r = draw(st.integers(0, max(0, min(rows, cols) - 1)), label="rank")
    if r == 0:
        return np.zeros(shape)
    left = draw(hnp.arrays(np.float64, (*shape[:-1], r), elements=_elements(1.0), fill=st.nothing()))
    right = draw(hnp.arrays(np.float64, (*shape[:-2], r, cols), elements=_elements(1.0), fill=st.nothing()))
    out = left @ right
    return out.astype(np.float32).astype(np.float64)  # exactly representable in float32


@st.composite
def weights(
    draw, shape: tuple[int, ...], kind: str = "generic", *, dtype: torch.dtype = torch.float64
) -> Float[Tensor, "..."]:
    """A float64 weight tensor of ``shape`` (values exact in float32).

    ``kind="generic"``: independent entries in $[-2, 2]$. ``kind="degenerate"``: one of
    :data:`DEGENERATE_KINDS` — repeated values (Hypothesis's default ``fill``), all zeros, rank-deficient
    along the last two axes (rank 0 .. min-1), or generic times a tiny / huge power of two within
    :func:`exponent_range` of ``dtype`` (finite in that dtype).
    """
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"kind must be one of {WEIGHT_KINDS}; got {kind!r}")
    shape = tuple(int(s) for s in shape)
    if kind == "generic":
        arr = draw(_generic(shape))
    else:
        which = draw(st.sampled_from(DEGENERATE_KINDS), label="degenerate kind")
        e = exponent_range(dtype)
        if which == "repeated":
            arr = draw(
                hnp.arrays(np.float64, shape, elements=_elements())
            )  # default fill: few distinct values
        elif which == "zero":
            arr = np.zeros(shape)
        elif which == "rank-deficient" and len(shape) >= 2:
            arr = draw(_rank_deficient(shape))
        elif which == "tiny":
            arr = draw(_generic(shape)) * 2.0 ** -draw(st.integers(1, e), label="tiny exponent")
        else:  # "huge" (or rank-deficient of a vector: fall back to a scale)
            arr = draw(_generic(shape)) * 2.0 ** draw(st.integers(1, e), label="huge exponent")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))


@st.composite
def lsas(
    draw,
    sizes: st.SearchStrategy[LSASizes] | None = None,
    kind: str | None = None,
    *,
    dtype: torch.dtype = torch.float64,
):
    """A float64 :class:`~constructions.LinearSelfAttention` with drawn sizes and weights.

    ``kind``: ``"generic"``, ``"degenerate"`` or ``None`` (draw one per weight: mixtures such as a zero
    $W_Q$ with a generic $W_V$ are the interesting cases)."""

    s = draw(sizes if sizes is not None else lsa_sizes(), label="sizes")

    def w(*shape):
        k = kind if kind is not None else draw(st.sampled_from(WEIGHT_KINDS), label="weight kind")
        return draw(weights(shape, k, dtype=dtype))

    W_Q, W_K, W_V = w(s.H, s.d_k, s.d), w(s.H, s.d_k, s.d), w(s.H, s.d_v, s.d)
    W_O = w(s.d_out, s.H * s.d_v) if s.d_out is not None else None
    return LinearSelfAttention(W_Q, W_K, W_V, W_O)


@dataclass(frozen=True)
class SequenceSpec:
    """Everything needed to rebuild a batch of input sequences: ``build()`` is deterministic. ``d=None``: the
    width of the layer under test (the suite fills it in, so a printed example never shows a width it did
    not use)."""

    batch: int
    T: int
    d: int | None
    seed: int
    exponent: int = 0
    pattern: str = "normal"

    def __post_init__(self):
        if self.pattern not in SEQUENCE_PATTERNS:
            raise ValueError(f"pattern must be one of {SEQUENCE_PATTERNS}; got {self.pattern!r}")
        if self.batch < 1 or self.T < 0 or (self.d is not None and self.d < 1):
            raise ValueError(
                f"need batch >= 1, T >= 0, d >= 1; got batch={self.batch}, T={self.T}, d={self.d}"
            )

    def build(self) -> Float[Tensor, "batch time d"]:
        """The float64 batch ``[batch, T, d]`` (values exact in float32), from ``torch.Generator(seed)``."""
        if self.d is None:
            raise ValueError(
                "SequenceSpec.d is None (the width of the layer under test): replace it first, e.g. "
                "dataclasses.replace(spec, d=lsa.d)"
            )
        g = torch.Generator().manual_seed(self.seed)
        shape = (self.batch, self.T, self.d)
        if self.pattern == "zeros":
            x = torch.zeros(shape, dtype=torch.float64)
        elif self.pattern == "constant-token":  # all tokens equal (per sequence)
            x = torch.randn(self.batch, 1, self.d, generator=g, dtype=torch.float64).expand(shape).clone()
        elif self.pattern == "one-hot":
            idx = torch.randint(0, self.d, (self.batch, self.T), generator=g)
            x = (
                torch.nn.functional.one_hot(idx, self.d).to(torch.float64)
                if self.T
                else torch.zeros(shape, dtype=torch.float64)
            )
        else:
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            if self.pattern == "sparse":
                x = x * (torch.rand(shape, generator=g, dtype=torch.float64) < 0.2)
        x = x * 2.0**self.exponent
        return x.to(torch.float32).to(torch.float64)

    def reproducer(self) -> str:
        return f"properties.strategies.{self!r}.build()"


#: common chunk sizes of chunked / blocked implementations (fla's kernels, flash-linear-attention, scans)
CHUNK_SIZES = (16, 32, 64, 128)


def boundary_lengths(max_T: int, min_T: int = 1) -> tuple[int, ...]:
    """Sequence lengths at the chunk boundaries of :data:`CHUNK_SIZES`, $kC - 1, kC, kC + 1$ for $k = 1..4$,
    within ``[min_T, max_T]`` (a bug at the start of chunk $k$ shows first at $T = kC + 1$)."""
    ts = {k * c + o for c in CHUNK_SIZES for k in range(1, 5) for o in (-1, 0, 1)}
    return tuple(sorted(t for t in ts if min_T <= t <= max_T))


def past_boundary_lengths(max_T: int) -> tuple[int, ...]:
    r"""The first wrong lengths $kC + 1$ of the largest chunk boundaries within ``max_T`` ($kC \ge 256$, or
    $kC \ge 128$ when ``max_T`` is below 257): a state lost at the start of chunk $k$ of $C$ tokens shows
    first there, and every smaller $kC$ is past too."""
    past = sorted({k * c + 1 for c in CHUNK_SIZES for k in range(1, 5)})
    floor = 256 if max_T > 256 else 128
    return tuple(t for t in past if floor < t <= max_T)


def lengths(min_T: int = 1, max_T: int = 64, long_max_T: int | None = None) -> st.SearchStrategy[int]:
    r"""``T``: uniform in ``[min_T, max_T]`` (shrinks towards ``min_T``); with ``long_max_T``, also the
    stratum of long sequences $T\in(64, \text{long\_max\_T}]$ (by octaves), the chunk boundaries
    (:func:`boundary_lengths`) and the lengths just past the largest boundaries
    (:func:`past_boundary_lengths`), so every profile, even 25 examples, draws $T > 64$ on purpose, and
    $T = kC + 1$ past chunk 4 of 64 (or 2 of 128) often enough to see a state lost there."""
    short = st.integers(min_T, max_T)
    if long_max_T is None or long_max_T <= max(max_T, 64):
        return short
    octaves = []
    lo = 65
    while lo <= long_max_T:  # octaves 65..128, 129..256, ...: the longest are drawn as often as the medium
        hi = min(2 * (lo - 1), long_max_T)
        octaves.append(st.integers(lo, hi))
        lo = hi + 1
    branches = [short, st.sampled_from(boundary_lengths(long_max_T, max(min_T, 2))), st.one_of(*octaves)]
    past = past_boundary_lengths(long_max_T)
    if past:
        branches.append(st.sampled_from(past))
    return st.one_of(*branches)


@st.composite
def sequence_specs(
    draw,
    d: int | None,
    *,
    min_T: int = 1,
    max_T: int = 64,
    max_batch: int = 4,
    max_exponent: int = 2,
    patterns: tuple[str, ...] = SEQUENCE_PATTERNS,
    long_max_T: int | None = None,
) -> SequenceSpec:
    r"""A :class:`SequenceSpec`: batch, ``T`` (:func:`lengths`; shrinks towards ``min_T``), seed, scale
    exponent, pattern (long sequences, $T > \max(\text{max\_T}, 64)$, draw every pattern but ``"zeros"``,
    whose output is 0 at every $T$)."""
    batch = draw(st.integers(1, max_batch), label="batch")
    T = draw(lengths(min_T, max_T, long_max_T), label="T")
    if T > max(max_T, 64) and len(patterns) > 1:  # all-zero inputs give 0 at every T: drawn at short T only
        patterns = tuple(p for p in patterns if p != "zeros") or patterns
    pattern = draw(st.sampled_from(patterns), label="pattern")
    exponent = draw(st.integers(-max_exponent, max_exponent), label="scale exponent") if max_exponent else 0
    return SequenceSpec(batch, T, d, draw(seeds(), label="seed"), exponent, pattern)


@st.composite
def sequences(draw, d: int, **kw) -> Float[Tensor, "batch time d"]:
    """A float64 batch ``[batch, T, d]`` built from a drawn :class:`SequenceSpec` (noted on failure)."""
    spec = draw(sequence_specs(d, **kw))
    note(f"x = {spec.reproducer()}")
    return spec.build()


@st.composite
def lambdas(draw, n: int, kind: str = "real") -> Inexact[Tensor, " n"]:
    r"""$\lambda$ of ``n`` neurons. ``kind``:

    - ``"construction"``: exactly 0 or 1 (the paper's query / key-value neurons);
    - ``"real"``: in $[-1, 1]$ with the exact values $0, \pm1$ and values $1-2^{-k}$ near 1;
    - ``"complex"``: $r e^{i\theta}$ with $r\in(0,1]$ (``r = 1`` on the unit circle) — complex128.
    """
    if kind == "construction":
        return torch.tensor(
            draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)), dtype=torch.float64
        )
    near_one = st.integers(1, 30).map(lambda k: 1.0 - 2.0**-k)
    real = st.one_of(st.sampled_from([0.0, 1.0, -1.0]), near_one, _elements(1.0))
    if kind == "real":
        return torch.tensor(draw(st.lists(real, min_size=n, max_size=n)), dtype=torch.float64)
    if kind == "complex":
        r = draw(st.lists(st.one_of(st.just(1.0), near_one, st.floats(0.0, 1.0)), min_size=n, max_size=n))
        theta = draw(st.lists(st.floats(-np.pi, np.pi), min_size=n, max_size=n))
        return torch.polar(torch.tensor(r, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64))
    raise ValueError(f"kind must be 'construction', 'real' or 'complex'; got {kind!r}")


@st.composite
def rnns(draw, *, max_d: int = 4, max_n: int = 8, max_m: int = 6, max_d_out: int = 3, lam_kind: str = "real"):
    """A random float64 (or complex128) :class:`~constructions.GatedLinearRNN`: sizes drawn by Hypothesis,
    gate weights from a seeded ``torch.Generator``, $\\lambda$ from :func:`lambdas`."""

    d = draw(st.integers(1, max_d), label="d")
    n = draw(st.integers(1, max_n), label="n")
    m = draw(st.integers(1, max_m), label="m")
    d_out = draw(st.integers(1, max_d_out), label="d_out")
    seed = draw(seeds(), label="weight seed")
    lam = draw(lambdas(n, lam_kind), label="lambda")
    g = torch.Generator().manual_seed(seed)
    cdtype = torch.complex128 if lam.is_complex() else torch.float64

    def w(*shape):
        t = torch.randn(*shape, generator=g, dtype=torch.float64)
        if cdtype.is_complex:
            t = torch.complex(t, torch.randn(*shape, generator=g, dtype=torch.float64))
        return t / max(1, shape[-1]) ** 0.5

    note(f"rnn: d={d}, n={n}, m={m}, d_out={d_out}, weight seed={seed}, lam={lam.tolist()}")
    return GatedLinearRNN(w(n, d + 1), w(n, d + 1), lam.to(cdtype), w(m, n), w(m, n), w(d_out, m))


@st.composite
def integer_lsas(draw, sizes: st.SearchStrategy[LSASizes] | None = None, *, bound: int = 3):
    """An LSA with small integer weights in ``[-bound, bound]``: with :func:`integer_sequences` every
    intermediate value is an integer far below $2^{53}$, so float64 evaluation is *exact* (no tolerance)."""

    s = draw(
        sizes if sizes is not None else lsa_sizes(max_heads=2, max_d=4, max_d_k=3, max_d_v=3, max_d_out=3)
    )

    def w(*shape):
        arr = draw(hnp.arrays(np.int64, shape, elements=st.integers(-bound, bound)))
        return torch.from_numpy(arr.astype(np.float64))

    W_O = w(s.d_out, s.H * s.d_v) if s.d_out is not None else None
    return LinearSelfAttention(w(s.H, s.d_k, s.d), w(s.H, s.d_k, s.d), w(s.H, s.d_v, s.d), W_O)


@st.composite
def integer_sequences(draw, d: int, *, max_T: int = 16, max_batch: int = 3, bound: int = 3):
    """Integer-valued float64 sequences ``[batch, T, d]`` from a seeded generator (see
    :func:`integer_lsas`)."""
    batch = draw(st.integers(1, max_batch), label="batch")
    T = draw(st.integers(1, max_T), label="T")
    seed = draw(seeds(), label="seed")
    note(
        f"x = torch.randint(-{bound}, {bound + 1}, ({batch}, {T}, {d}), "
        f"generator=torch.Generator().manual_seed({seed})).double()"
    )
    return torch.randint(
        -bound, bound + 1, (batch, T, d), generator=torch.Generator().manual_seed(seed)
    ).double()
