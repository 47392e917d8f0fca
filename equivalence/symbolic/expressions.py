r"""Statements as SymPy objects, and an evaluator that turns them into the values that are checked.

A claim's statement is a SymPy expression over ``IndexedBase`` arrays and ``Sum`` s with symbolic
bounds, e.g. causal linear self-attention (Zucchet et al. 2023, Sec. 3; parallel form)

$$ y^{LSA}_{t,o} = \sum_{\eta=0}^{H-1}\sum_{i=0}^{d_v-1} W_O[o, \eta d_v + i]
   \sum_{s=1}^{t} v^\eta_{s,i} \sum_{j=0}^{d_k-1} k^\eta_{s,j}\, q^\eta_{t,j},\quad
   v^\eta_{s,i}=\sum_a W_V[\eta,i,a]\,x_{s,a},\ \dots $$

(heads are indexed by $\eta$, time by $t, s \ge 1$). The LaTeX and the digest of a claim are made from
these objects, and :class:`Evaluator` evaluates the *same* objects at concrete sizes on the arrays
of :mod:`~equivalence.symbolic.arrays` (generators, exact numbers or formal degrees), so the checked
polynomial is the statement's right-hand side, not a second hand-written copy of it.
"""

import operator
from fractions import Fraction
from functools import reduce

import sympy as sp

__all__ = ["IDX", "LSA", "SIZE_SYMBOLS", "Evaluator", "lsa_output"]

# sizes and indices (heads: eta; time: t, s >= 1; features a, b, c; rows i, j; outputs o)
H, d, d_k, d_v, d_out, T = sp.symbols("H d d_k d_v d_out T", integer=True, positive=True)
SIZE_SYMBOLS = {"H": H, "d": d, "d_k": d_k, "d_v": d_v, "d_out": d_out, "T": T}
t, s, o, eta, i, j, a, b, c = sp.symbols("t s o eta i j a b c", integer=True, nonnegative=True)
IDX = {"t": t, "s": s, "o": o, "eta": eta, "i": i, "j": j, "a": a, "b": b, "c": c}


class LSA:
    """The arrays of linear self-attention as ``IndexedBase`` objects."""

    W_Q, W_K, W_V, W_O = (
        sp.IndexedBase("W_Q"),
        sp.IndexedBase("W_K"),
        sp.IndexedBase("W_V"),
        sp.IndexedBase("W_O"),
    )
    x = sp.IndexedBase("x")
    S = sp.IndexedBase("S")  # the attention memory S^eta [d_v, d_k]
    M = sp.IndexedBase("M")  # the compressed store sum_s x_s x_s^T [d, d], symmetric
    y_rnn, y_lsa = sp.IndexedBase("y^RNN"), sp.IndexedBase("y^LSA")

    @classmethod
    def q(cls, head, jj, tt):
        return sp.Sum(cls.W_Q[head, jj, c] * cls.x[tt, c], (c, 0, d - 1))

    @classmethod
    def k(cls, head, jj, ss):
        return sp.Sum(cls.W_K[head, jj, b] * cls.x[ss, b], (b, 0, d - 1))

    @classmethod
    def v(cls, head, ii, ss):
        return sp.Sum(cls.W_V[head, ii, a] * cls.x[ss, a], (a, 0, d - 1))


def lsa_output(with_W_O: bool) -> tuple[sp.Expr, sp.Expr]:
    """``(lhs index, rhs)`` of the LSA parallel form: ``y[t, o]`` (``W_O``) or ``y[t, eta*d_v + i]``
    (concat)."""
    head = sp.Sum(LSA.v(eta, i, s) * sp.Sum(LSA.k(eta, j, s) * LSA.q(eta, j, t), (j, 0, d_k - 1)), (s, 1, t))
    if with_W_O:
        rhs = sp.Sum(sp.Sum(LSA.W_O[o, eta * d_v + i] * head, (i, 0, d_v - 1)), (eta, 0, H - 1))
        return LSA.y_lsa[t, o], rhs
    return LSA.y_lsa[t, eta * d_v + i], head


# -- evaluation ------------------------------------------------------------------------------------
def _const(r) -> object:
    f = Fraction(int(r.p), int(r.q))
    return int(f) if f.denominator == 1 else f


class Evaluator:
    """Evaluate SymPy statement expressions on concrete arrays.

    ``arrays`` maps an ``IndexedBase`` label (``"W_Q"``) to a NumPy object array; ``scalars`` maps
    symbol names (sizes such as ``"d"``, or scalar unknowns) to values. ``Sum`` bounds are inclusive,
    as in SymPy. Sub-sums are memoised on the values of their free symbols, so e.g. $q_t$ is computed
    once per $(\\eta, j, t)$, not once per summand that uses it.
    """

    def __init__(self, arrays: dict, scalars: dict | None = None):
        self.arrays = dict(arrays)
        self.scalars = {k: v for k, v in (scalars or {}).items()}
        self._compiled: dict[sp.Basic, object] = {}
        self._memo: dict = {}

    def __call__(self, expr: sp.Basic, **env):
        env = {**self.scalars, **env}
        f = self._compiled.get(expr)
        if f is None:
            f = self._compiled[expr] = self._compile(expr)
        return f(env)

    def _compile(self, e):
        if isinstance(e, sp.Rational):
            v = _const(e)
            return lambda env: v
        if isinstance(e, sp.Symbol):
            name = e.name
            return lambda env: env[name]
        if isinstance(e, sp.Indexed):
            label = e.base.label.name
            if label not in self.arrays:
                raise KeyError(f"statement uses array {label!r}, which the evaluator was not given")
            arr = self.arrays[label]
            if all(
                isinstance(k, sp.Symbol) for k in e.indices
            ):  # fast path: indices bound by sums or the caller
                names = [k.name for k in e.indices]
                if len(names) == 1:
                    (n0,) = names
                    return lambda env: arr[env[n0]]
                if len(names) == 2:
                    n0, n1 = names
                    return lambda env: arr[env[n0], env[n1]]
                if len(names) == 3:
                    n0, n1, n2 = names
                    return lambda env: arr[env[n0], env[n1], env[n2]]
                return lambda env: arr[tuple(env[n] for n in names)]
            idx = [self._compile(k) for k in e.indices]

            def get(env):
                key = tuple(int(f(env)) for f in idx)
                if min(key) < 0:
                    raise IndexError(f"{label}{list(key)}: negative index")
                return arr[key]

            return get
        if isinstance(e, sp.Add | sp.Mul):
            fs = [self._compile(u) for u in e.args]
            op = operator.add if isinstance(e, sp.Add) else operator.mul
            if len(fs) == 2:
                f0, f1 = fs
                return lambda env: op(f0(env), f1(env))
            if len(fs) == 3:
                f0, f1, f2 = fs
                return lambda env: op(op(f0(env), f1(env)), f2(env))
            return lambda env: reduce(op, (f(env) for f in fs))
        if isinstance(e, sp.Pow) and e.exp.is_Integer:
            f, k = self._compile(e.base), int(e.exp)

            def power(env):
                base, out = f(env), 1
                for _ in range(abs(k)):
                    out = out * base
                return out if k >= 0 else 1 / out

            return power
        if isinstance(e, sp.KroneckerDelta):
            f, g = (self._compile(u) for u in e.args)
            return lambda env: 1 if f(env) == g(env) else 0
        if isinstance(
            e, sp.core.function.AppliedUndef
        ):  # e.g. a permutation pi(k): a callable in the scalars
            name, fs = e.func.__name__, [self._compile(u) for u in e.args]
            return lambda env: env[name](*(int(f(env)) for f in fs))
        if isinstance(e, sp.Sum):
            return self._compile_sum(e)
        raise TypeError(
            f"cannot evaluate {type(e).__name__} {e}: statements use +, *, integer powers, "
            "Indexed arrays, symbols, KroneckerDelta, index functions and Sum only"
        )

    def _compile_sum(self, e: sp.Sum):
        body = self._compile(e.function)
        limits = [(v.name, self._compile(lo), self._compile(hi)) for v, lo, hi in e.limits]
        free = sorted(
            sym.name for sym in e.free_symbols if isinstance(sym, sp.Symbol) and sym.name not in self.arrays
        )
        memo, key0 = self._memo, id(e)

        last = len(limits) - 1

        def run(env, k=last):  # SymPy lists the innermost limit first
            name, lo, hi = limits[k]
            total, start = 0, int(lo(env))
            if start < 0:
                raise IndexError(f"Sum over {name} starts at {start}; statements index arrays from 0")
            for val in range(start, int(hi(env)) + 1):
                env[name] = val
                total = total + (body(env) if k == 0 else run(env, k - 1))
            env.pop(name, None)
            return total

        def summed(env):
            key = (key0, tuple(env[n] for n in free))
            if key not in memo:
                memo[key] = run(dict(env))
            return memo[key]

        return summed
