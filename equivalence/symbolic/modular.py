r"""Schwartz–Zippel by evaluation over a prime field: the project's wiring and stage functions on $\mathbb
Z/p$.

At large sizes neither expansion nor exact evaluation on NumPy *object* arrays is practical (the direct
construction at $d=d_k=d_v=128$ has $1.6\cdot10^4$ neurons and one-hot $C, E$ with $2.7\cdot10^8$ entries).
Here the same code runs on :class:`Zp` arrays: NumPy ``int64`` residues modulo a prime $p<2^{31}$ (matrix
products split one operand into 16-bit limbs so no ``int64`` sum overflows), with an exact upper bound on
the total degree of every array carried along. ``constructions.lsa``'s wiring asks its input for zeros
through the additive ``backend_zeros`` hook; a zeros array too large to be dense is a :class:`ZpSparse`
(dictionary of entries). The RNN side is ``constructions.rnn``'s ``input_gate``, ``recurrence_step``,
``output_readout`` over time; the reference side is the claim's own reference (the LSA statement evaluated
by :class:`~equivalence.symbolic.expressions.Evaluator`) on Python integers, reduced mod $p$.

**Why a non-zero result refutes.** Reduction mod $p$ is a ring homomorphism $\mathbb Z\to\mathbb Z/p$, and the
point's coordinates are integers in $[0, p)$: if RNN and reference differ mod $p$ there, they differ as
integers at that integer point — a counterexample (re-evaluated with exact rationals before it is reported).

**Why agreement proves with high probability.** Let $f = y^{RNN} - y^{ref}\in\mathbb Z[\text{generators}]$
(symbolic mode: every constant of the code and of the statement is an integer), of total degree $\le D$.
If $f\ne0$, a trial misses it only if (a) the prime divides every coefficient of $f$, or (b) the uniform
point of $\mathbb F_p^N$ is a root of $f \bmod p\ne0$: (b) has probability $\le D/p$ (Schwartz–Zippel
lemma). For (a): every coefficient has $|c|\le\|f\|_1\le B$, where $B$ is computed by running the same
code in **bound mode** (every generator 1, every constant $|c|$, $+,-\mapsto+$: an upper bound on the sum
of absolute coefficients); a non-zero $c$ has at most $\log_2 B/30$ prime factors $\ge2^{30}$, and $p$ is
drawn uniformly from the $50\,697\,537$ primes in $[2^{30},2^{31})$. Trials use fresh primes and points,
so all $k$ trials miss $f$ with probability $\le(D/2^{30} + \lceil\log_2 B/30\rceil/50\,697\,537)^k$.
"""

import math
import random

import numpy as np

from constructions.rnn import RNNWeights, input_gate, output_readout, recurrence_step

__all__ = ["NotModular", "TooLargeForMemory", "Zp", "ZpSparse", "modular_schwartz_zippel", "random_prime"]

#: number of primes in [2^30, 2^31) (pi(2^31) - pi(2^30) = 105097565 - 54400028)
PRIMES_IN_RANGE = 50_697_537
#: zeros arrays with more entries than this are sparse
DENSE_LIMIT = 1 << 25
_MASK = (1 << 16) - 1


class NotModular(Exception):
    """The code did something the prime-field backend does not model (the caller uses the object path)."""


class TooLargeForMemory(NotModular):
    """A dense array of the backend would exceed :data:`MAX_ENTRIES` entries (the tier is skipped, not retried
    on object arrays, which would be larger still)."""


#: largest dense array of the backend (int64 entries: 512 MiB)
MAX_ENTRIES = 1 << 26


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for q in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % q == 0:
            return n == q
    dd, s = n - 1, 0
    while dd % 2 == 0:
        dd //= 2
        s += 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):  # deterministic below 3.3e24
        x = pow(a, dd, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def random_prime(rng: random.Random) -> int:
    """A prime drawn uniformly from the primes in $[2^{30}, 2^{31})$ (rejection sampling)."""
    while True:
        n = rng.randrange(1 << 30, 1 << 31)
        if _is_prime(n):
            return n


# : nonzero pattern of large matrices met by vector @ matrix, keyed by their memory; cleared on every
# assignment
_NONZERO: dict = {}


class _Field:
    """Arithmetic of one backend: residues mod ``p`` (``int64``) or, with ``p=None``, bound mode (``float64``,
    absolute values, subtraction adds)."""

    def __init__(self, p: int | None):
        self.p = p
        self.dtype = np.int64 if p is not None else np.float64

    def const(self, c) -> np.ndarray:
        a = np.asarray(c)
        if a.dtype == object or a.dtype.kind not in "biu":
            if a.dtype.kind == "b":
                a = a.astype(np.int64)
            else:
                raise NotModular(f"constant of dtype {a.dtype} (the prime-field backend takes integers)")
        if self.p is None:
            return np.abs(a).astype(np.float64)
        return np.mod(a.astype(np.int64), self.p)

    def add(self, a, b):
        return (a + b) % self.p if self.p is not None else a + b

    def sub(self, a, b):
        return (a - b) % self.p if self.p is not None else a + b

    def neg(self, a):
        return (-a) % self.p if self.p is not None else a

    def mul(self, a, b):
        return (a * b) % self.p if self.p is not None else a * b

    def matmul(self, a, b):
        if self.p is None:
            return a @ b
        if a.ndim == 1 and b.ndim == 2 and b.size > (1 << 20):  # vector @ mostly-zero matrix (one-hot wiring)
            key = (id(b.base if b.base is not None else b), b.shape, b.strides)
            hit = _NONZERO.get(key)
            if hit is None:
                if b.T.flags.c_contiguous:  # np.nonzero is fast on contiguous memory (C.T of the wiring's C)
                    cols, rows = np.nonzero(b.T)
                else:
                    rows, cols = np.nonzero(b)
                hit = _NONZERO[key] = (rows, cols, b.base if b.base is not None else b)  # keeps the id unique
            rows, cols, _ = hit
            if len(rows) * 8 < b.size:
                out = np.zeros(b.shape[1], dtype=np.int64)
                np.add.at(out, cols, (a[rows] * b[rows, cols]) % self.p)
                return out % self.p
        k = a.shape[-1]
        if k > _MASK:  # chunk the inner dimension so each partial sum stays below 2^63
            out = 0
            for s in range(0, k, _MASK):
                out = out + self.matmul(
                    a[..., s : s + _MASK], b[s : s + _MASK] if b.ndim == 1 else b[..., s : s + _MASK, :]
                )
            return out % self.p
        lo, hi = b & _MASK, b >> 16
        return ((a @ hi) % self.p * (1 << 16) + (a @ lo)) % self.p


class Zp:
    """An array of the prime-field (or bound-mode) backend with an upper bound ``deg`` on the total degree
    of its entries as polynomials in the generators. Supports what ``constructions.lsa`` and
    ``constructions.rnn`` use: indexing, assignment, ``@``, ``*``, ``+``, ``-``, ``.T``, ``swapaxes``,
    ``reshape``, ``copy``, comparison with constants."""

    __array_ufunc__ = None  # NumPy defers to our reflected operators

    def __init__(self, a: np.ndarray, deg: int, field: _Field):
        self.a, self.deg, self.field = a, deg, field

    def _checked(self, shape_a, shape_b):
        n = math.prod(np.broadcast_shapes(shape_a, shape_b))
        if n > MAX_ENTRIES:
            raise TooLargeForMemory(
                f"a dense {np.broadcast_shapes(shape_a, shape_b)} array ({n:.3g} entries) would "
                f"exceed {MAX_ENTRIES:.3g} entries"
            )

    # -- the lsa.py hook ---------------------------------------------------------------------------
    def backend_zeros(self, shape):
        shape = tuple(int(s) for s in np.atleast_1d(shape)) if not isinstance(shape, int) else (shape,)
        if math.prod(shape) > DENSE_LIMIT:
            if len(shape) != 2:
                raise NotModular(f"a {shape} zeros array is too large to be dense and not a matrix")
            return ZpSparse(shape, self.field)
        return Zp(np.zeros(shape, dtype=self.field.dtype), 0, self.field)

    # -- structure ---------------------------------------------------------------------------------
    @property
    def shape(self):
        return self.a.shape

    @property
    def ndim(self):
        return self.a.ndim

    def __len__(self):
        return len(self.a)

    @property
    def T(self):
        return Zp(self.a.T, self.deg, self.field)

    def swapaxes(self, i, j):
        return Zp(self.a.swapaxes(i, j), self.deg, self.field)

    def reshape(self, *shape):
        return Zp(self.a.reshape(*shape), self.deg, self.field)

    def copy(self):
        return Zp(self.a.copy(), self.deg, self.field)

    def __getitem__(self, key):
        return Zp(self.a[_key(key)], self.deg, self.field)

    def __setitem__(self, key, value):
        v, dv = self._operand(value)
        _NONZERO.clear()
        self.a[_key(key)] = v
        self.deg = max(self.deg, dv)

    def __eq__(self, o):
        v, _ = self._operand(o)
        return self.a == v

    __hash__ = None

    def _operand(self, o):
        if isinstance(o, Zp):
            if o.field is not self.field:
                raise NotModular("arrays of two different prime fields met")
            return o.a, o.deg
        if isinstance(o, ZpSparse):
            raise NotModular("elementwise arithmetic with a sparse zeros array")
        return self.field.const(o), 0

    # -- arithmetic ----------------------------------------------------------------------------------
    def __add__(self, o):
        v, dv = self._operand(o)
        self._checked(self.a.shape, np.shape(v))
        return Zp(self.field.add(self.a, v), max(self.deg, dv), self.field)

    __radd__ = __add__

    def __sub__(self, o):
        v, dv = self._operand(o)
        return Zp(self.field.sub(self.a, v), max(self.deg, dv), self.field)

    def __rsub__(self, o):
        v, dv = self._operand(o)
        return Zp(self.field.sub(v, self.a), max(self.deg, dv), self.field)

    def __neg__(self):
        return Zp(self.field.neg(self.a), self.deg, self.field)

    def __mul__(self, o):
        v, dv = self._operand(o)
        self._checked(self.a.shape, np.shape(v))
        return Zp(self.field.mul(self.a, v), self.deg + dv, self.field)

    __rmul__ = __mul__

    def __matmul__(self, o):
        if isinstance(o, ZpSparse):
            return o.__rmatmul__(self)
        v, dv = self._operand(o)
        return Zp(self.field.matmul(self.a, v), self.deg + dv, self.field)

    def __rmatmul__(self, o):
        v, dv = self._operand(o)
        return Zp(self.field.matmul(v, self.a), self.deg + dv, self.field)


def _key(key):
    if isinstance(key, tuple):
        return tuple(k.a if isinstance(k, Zp) else k for k in key)
    return key.a if isinstance(key, Zp) else key


class ZpSparse:
    """A large zeros matrix of the backend that the wiring fills entry by entry (the direct construction's
    one-hot $C$ and $E$): a dictionary of entries; supports ``M[rows, cols] = value``, ``.T`` and
    ``h @ M`` / ``h @ M.T`` for a dense vector ``h``."""

    __array_ufunc__ = None

    def __init__(
        self, shape, field: _Field, entries: dict | None = None, deg: int = 0, transposed: bool = False
    ):
        self.base_shape, self.field = tuple(shape), field
        self.entries = {} if entries is None else entries  # (row, col) of the untransposed matrix -> value
        self.deg, self.transposed = deg, transposed

    @property
    def shape(self):
        return self.base_shape[::-1] if self.transposed else self.base_shape

    @property
    def ndim(self):
        return 2

    @property
    def T(self):
        return ZpSparse(self.base_shape, self.field, self.entries, self.deg, not self.transposed)

    def __setitem__(self, key, value):
        if self.transposed or not isinstance(key, tuple) or len(key) != 2:
            raise NotModular("sparse zeros array: only M[rows, cols] = value is modelled")
        if isinstance(value, Zp):
            vals, dv = value.a, value.deg
        else:
            vals, dv = self.field.const(value), 0
        rows = np.asarray(np.arange(self.base_shape[0])[key[0]])
        cols = np.asarray(np.arange(self.base_shape[1])[key[1]])
        if isinstance(key[0], slice) != isinstance(key[1], slice) and rows.ndim == cols.ndim == 1:
            rows, cols = (
                rows[:, None],
                cols[None, :],
            )  # NumPy: an index array and a slice form an outer product
        rows, cols, vals = np.broadcast_arrays(rows, cols, vals)
        for r, c, v in zip(rows.ravel().tolist(), cols.ravel().tolist(), vals.ravel().tolist()):
            self.entries[(r, c)] = v
        self.deg = max(self.deg, dv)

    def __rmatmul__(self, h):
        """``h @ self`` for a dense 1-D :class:`Zp` ``h``."""
        if not isinstance(h, Zp) or h.ndim != 1:
            raise NotModular("sparse matrix product: only (dense vector) @ (sparse matrix) is modelled")
        keys = list(self.entries)
        rows = np.fromiter((k[0] for k in keys), dtype=np.int64, count=len(keys))
        cols = np.fromiter((k[1] for k in keys), dtype=np.int64, count=len(keys))
        vals = np.fromiter(self.entries.values(), dtype=self.field.dtype, count=len(keys))
        src, dst = (rows, cols) if not self.transposed else (cols, rows)  # y[dst] += h[src] * M
        out = np.zeros(self.shape[1], dtype=self.field.dtype)
        np.add.at(out, dst, self.field.mul(h.a[src], vals))
        if self.field.p is not None:
            out %= self.field.p
        return Zp(out, h.deg + self.deg, self.field)

    def __getattr__(self, name):
        raise NotModular(f"sparse zeros array: .{name} is not modelled")


# -- the tier --------------------------------------------------------------------------------------
def _arrays(subject, T: int, field: _Field, values: dict | None):
    """Parameter arrays and inputs as :class:`Zp` (random residues, or all ones in bound mode)."""
    out = {}
    shapes = [(k, s) for k, s in subject.fields if s is not None] + [("x", (T, subject.d))]
    for k, shape in shapes:
        a = values[k] if values is not None else np.ones(shape, dtype=np.float64)
        out[k] = Zp(a, 1, field)
    return out


def _rnn_side(subject, arrays: dict, T: int):
    P = {k: (arrays.get(k) if shape is not None else None) for k, shape in subject.fields}
    w = RNNWeights(*subject.variant.symbolic_weights(*[P[k] for k, _ in subject.fields]))
    if callable(w.lam):
        raise NotModular("input-dependent decay (callable lam)")
    x, field = arrays["x"], arrays["x"].field
    A, B, lam = w.A, w.B, w.lam
    if not isinstance(A, Zp):
        raise NotModular("the hook returned weights that are not prime-field arrays")
    h = Zp(np.zeros(A.shape[0], dtype=field.dtype), 0, field)
    one = Zp(np.ones(1, dtype=field.dtype), 0, field)
    ys = []
    for t in range(T):
        xt = Zp(np.concatenate([x.a[t], one.a]), x.deg, field)
        h = recurrence_step(lam, h, input_gate(A, B, xt))
        ys.append(output_readout(w.C, w.E, w.D, h))
    if not all(isinstance(y, Zp) for y in ys):
        raise NotModular("the readout did not stay in the prime-field backend")
    return np.stack([y.a for y in ys]), max(y.deg for y in ys)


def _ref_side(subject, arrays_int: dict):
    P = {k: (arrays_int.get(k) if shape is not None else None) for k, shape in subject.fields}
    y = subject.reference.evaluate(P, arrays_int["x"])
    return y


def modular_schwartz_zippel(subject, T: int, *, trials: int = 3, seed: int = 0):
    """Prime-field Schwartz–Zippel on ``subject`` at length ``T`` (see the module docstring).

    Returns ``(holds, evidence, witness)``; ``witness`` (on failure) is ``{"values": flat integer point in the
    order of subject.variables(T), "t": 1-based time, "o": output, "p": prime, "rnn_mod_p",
    "reference_mod_p"}``. Raises :class:`NotModular` when the subject is not covered (non-symbolic mode, a
    reference that is not linear self-attention, or code the backend does not model).
    """

    if trials < 1:
        raise ValueError(f"need trials >= 1; got {trials}")
    if subject.mode != "symbolic" or subject.reference.kind != "lsa":
        raise NotModular("the prime-field tier covers symbolic-mode claims against the LSA statement")
    variables = subject.variables(T)
    # degree and coefficient bounds: bound mode on the RNN side, formal degrees / all-ones on the reference
    # side
    bound = _Field(None)
    y_b, deg_rnn = _rnn_side(subject, _arrays(subject, T, bound, None), T)
    formal = variables.formal()
    y_deg = subject.reference.evaluate({k: formal.get(k) for k, _ in subject.fields}, formal["x"])
    deg_ref = max((getattr(v, "deg", 0) for v in np.ravel(y_deg)), default=0)
    ones = variables.numeric([1] * len(variables))
    y_ref_b = subject.reference.evaluate({k: ones.get(k) for k, _ in subject.fields}, ones["x"])
    norm = float(np.max(y_b, initial=0.0)) + float(max((abs(int(v)) for v in np.ravel(y_ref_b)), default=0))
    if not math.isfinite(norm):
        raise NotModular("coefficient bound overflowed float64")
    D = max(deg_rnn, deg_ref, 1)
    log2_B = max(1.0, math.log2(norm * (1 + 1e-9) + 1))
    bad_primes = math.ceil(log2_B / 30)
    per_trial = D / (1 << 30) + bad_primes / PRIMES_IN_RANGE
    rng = random.Random(seed)
    names = [k for k, s in subject.fields if s is not None] + ["x"]
    shapes = dict([(k, s) for k, s in subject.fields if s is not None] + [("x", (T, subject.d))])
    primes = []
    for k in range(trials):
        p = random_prime(rng)
        primes.append(p)
        field = _Field(p)
        vals = {
            nm: np.array([rng.randrange(p) for _ in range(math.prod(shapes[nm]))], dtype=np.int64).reshape(
                shapes[nm]
            )
            for nm in names
        }
        _NONZERO.clear()
        y_rnn, _ = _rnn_side(subject, {nm: Zp(v, 1, field) for nm, v in vals.items()}, T)
        _NONZERO.clear()
        as_int = {nm: np.array(v.tolist(), dtype=object).reshape(v.shape) for nm, v in vals.items()}
        y_ref = _ref_side(subject, as_int)
        ref_mod = np.array([[int(v) % p for v in row] for row in y_ref], dtype=np.int64)
        diff = np.argwhere(ref_mod != y_rnn)
        if len(diff):
            t0, o = (int(z) for z in diff[0])
            flat = [int(v) for nm in names for v in vals[nm].ravel()]
            ev = {
                "degree_bound": D,
                "trials_done": k + 1,
                "prime": p,
                "field": "Z/p, p prime in [2^30, 2^31)",
            }
            return (
                False,
                ev,
                {
                    "values": flat,
                    "t": t0 + 1,
                    "o": o,
                    "p": p,
                    "rnn_mod_p": int(y_rnn[t0, o]),
                    "reference_mod_p": int(ref_mod[t0, o]),
                },
            )
    log2_err = trials * math.log2(per_trial)
    ev = {
        "method": "prime field: constructions' wiring and stage functions on int64 residues mod p",
        "degree_bound": D,
        "degree_bound_rnn": deg_rnn,
        "degree_bound_reference": deg_ref,
        "coefficient_l1_bound_log2": round(log2_B, 2),
        "trials": trials,
        "primes": primes,
        "seed": seed,
        "per_trial_miss_probability": f"<= D/2^30 + ceil(log2(B)/30)/{PRIMES_IN_RANGE} = {per_trial:.3g}",
        "error_probability_log2": round(log2_err, 1),
        "error_probability": f"<= ({per_trial:.3g})^{trials} = 2^{log2_err:.1f}",
    }
    return True, ev, None
