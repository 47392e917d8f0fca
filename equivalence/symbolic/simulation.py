r"""Obligations: a variant's construction and reference as exact programs, unrolled or one step at a time.

Stage 2 of the pipeline (lift → **obligations** → decide → claim). Everything here runs the project's and the
variant's own torch code under :class:`~equivalence.symbolic.lift.Lifter`:

- :class:`VariantLift` lifts, for one variant at one size and one parameter *mode* (``"symbolic"``: every
  floating parameter entry a generator; ``"sampled"``: a seeded sample on the dyadic grid $2^{-3}\mathbb Z$ as
  exact rationals), the RNN side (``construct(params)``: the template weights, the E1 decay $\lambda_t$ and
  the upstream features $z_t$, then the template's stage functions of :mod:`constructions.rnn`), the
  registered ``reference`` and the one-step form (:mod:`constructions.recurrence`), unrolled over $t = 1..T$
  or one step from a symbolic state.
- :func:`solve_phi` finds the linear state map $\Phi$ (RNN state → one-step state) from the construction: it
  solves $\Phi h_t = s_t$ exactly (rational linear algebra, coefficient matching) on the states both sides
  reach in $K$ steps of symbolic input. Nothing a variant declares about its state is used, so nothing
  unchecked enters the proof; $\Phi$ is only a *candidate* — the obligations below are what is proved.
- :func:`simulation_obligations`: with symbolic RNN state $h$ and input $x$ (and parameters),

  - **init** $\Phi h_0 = s_0$;
  - **step** $\Phi\,\mathrm{rnn\_step}(h, x) = \mathrm{step}(\Phi h, x)$;
  - **readout** $\mathrm{rnn\_out}(\mathrm{rnn\_step}(h, x)) = \mathrm{readout}(\mathrm{step}(\Phi h, x), x)$.

  *Induction (the meta-step):* init and step give $\Phi h_t = s_t$ for every $t\ge 0$; then
  $y^{RNN}_t = \mathrm{rnn\_out}(\mathrm{rnn\_step}(h_{t-1}, x_t)) = \mathrm{readout}(\mathrm{step}(\Phi
  h_{t-1}, x_t), x_t) = \mathrm{readout}(s_t, x_t) = y^{ref}_t$ for every $T$. $\Phi$ need not be onto: the
  reference state is only ever taken in the image of $\Phi$, and the readout obligation is stated on the
  stepped state (the template reads queries from neurons written in the same step).

A complex construction (complex $\lambda$, extension E2) is simulated on real coordinates: $\Phi$ is
real-linear on the (Re, Im) parts, and the obligations are stated for every $h$ in the real subspace $V$
spanned by the reached states (grown until it stops growing), with the extra obligation
$\mathrm{rnn\_step}(V, x)\subseteq V$, so the induction stays inside $V$ (conjugate pairs reach only
$h_{\bar k} = \overline{h_k}$). In sampled mode, parameter entries that the construction passes to
``cos``/``sin`` are sampled as angles $2\arctan u$ with rational cosine and sine.

An upstream layer that looks back one step (RWKV-6's token shift) is handled by adding the previous input to
the RNN's state ($\tilde h = (h, x_{t-1})$), after checking that the features depend on $x_{t-1}, x_t$ only.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import sympy as sp
import torch
from sympy.polys.domains import QQ
from sympy.polys.matrices.sdm import SDM

from constructions.contract import hook
from constructions.recurrence import run_recurrence
from constructions.rnn import input_gate, output_readout, recurrence_step

from . import params as _params
from .lift import Cx, Lifter, Poly, Ring, Unliftable, cx, evaluate, exact_float, im_part, re_part
from .params import GRID, quantise

__all__ = ["GRID", "VariantLift", "simulation_obligations", "solve_phi", "tensor_fields"]


def tensor_fields(params) -> list[tuple[str, object]]:
    """:func:`.params.tensor_fields`, with a params object of another type reported as :class:`Unliftable`."""
    try:
        return _params.tensor_fields(params)
    except TypeError as e:
        raise Unliftable(str(e)) from None


def _replace(params, changes: dict):
    if dataclasses.is_dataclass(params):
        return dataclasses.replace(params, **changes)
    return {**params, **changes}


def _arr(vals) -> np.ndarray:
    return np.asarray(vals, dtype=object)


class VariantLift:
    """One variant, one parameter sample, one mode (module docstring). ``ring`` is shared by every lift made
    from this object, so generator ``W_Q[0,1,2]`` or ``x[3,0]`` is the same on both sides."""

    def __init__(self, variant, params, mode: str, *, seed: int = 0, params2=None):
        if mode not in ("symbolic", "sampled"):
            raise ValueError(f"mode must be 'symbolic' or 'sampled'; got {mode!r}")
        self.variant, self.mode, self.seed = variant, mode, seed
        tensor_fields(params)  # a params object of another type: Unliftable, with the reason
        self.params = quantise(params)
        self.params2 = None if params2 is None else quantise(params2)  # the cross-check's second sample
        self.ring = Ring()
        self.branches: list[str] = []
        self.value_reads: list[str] = []
        self.notes: list[str] = []
        self.real_output = True
        self.complex: bool | None = None  # the construction computes in complex numbers (set by rnn_parts)
        self.angles: dict[str, dict[tuple, tuple[Fraction, Fraction]]] = {}
        self._built = None  # the lifted construction (_construction)
        self._n_neurons: int | None = None
        self._forms: dict[int, tuple] = {}  # id(form) -> (form, lifter, form(params)) (_form)
        if mode == "sampled":
            self._sample_angles()
        self.d_in = self._d_in()

    def _sample_angles(self):
        r"""Sampled mode: parameter entries that the construction passes to ``cos``/``sin`` (found by a
        symbolic lift of ``construct``) are sampled as angles with *rational* cosine and sine, $\alpha =
        2\arctan u$ with $u = \tan(\theta/2)$ on the grid (so $\cos\alpha = (1-u^2)/(1+u^2)$,
        $\sin\alpha = 2u/(1+u^2)$ and every multiple-angle value is exact in $\mathbb Q$ by de Moivre)."""
        lf = Lifter(Ring())
        try:
            P = self._lifted_params(lf, mode="symbolic")
            with lf:
                self.variant.construct(P)
        except Exception:  # noqa: BLE001 - the probe only finds angles; the lifts proper report failures
            pass
        ring = lf.ring
        found: set[str] = set()
        for a in ring.atoms.values():
            if a.name in ("cos", "sin") and a.args and isinstance(a.args[0], Poly):
                for m in a.args[0].terms:
                    if len(m) == 1 and m[0] not in ring.atoms:
                        found.add(ring.names[m[0]])
        if not found:
            return
        changes = {}
        for name, t in tensor_fields(self.params):
            if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
                continue
            a = t.detach().clone().to(torch.float64)
            for idx in np.ndindex(*a.shape):
                key = f"{name}[{','.join(map(str, idx))}]" if idx else name
                if key not in found:
                    continue
                theta = float(a[idx])
                u = Fraction(round(GRID * math.tan(theta / 2)), GRID)
                if u == 0 and theta != 0:
                    u = Fraction(1 if theta > 0 else -1, GRID)
                c, s = (1 - u * u) / (1 + u * u), 2 * u / (1 + u * u)
                self.angles.setdefault(name, {})[idx] = (c, s)
                a[idx] = 2 * math.atan(u)
            if name in self.angles:
                changes[name] = a.to(t.dtype)
        self.params = _replace(self.params, changes)
        self.notes.append(
            "sampled angles ("
            + ", ".join(sorted(self.angles))
            + ") are exact: 2*arctan(u) with u a multiple of 1/"
            + str(GRID)
            + " near tan(theta/2), so their cosines and sines are rational; the float64 tensors hold "
            "their nearest binary64 values"
        )

    # -- plumbing ----------------------------------------------------------------------------------
    def _d_in(self) -> int:
        fn = hook(self.variant, "d_in")
        if callable(fn):
            return int(fn(self.params))
        rnn = self.variant.construct(self.params)
        d = rnn.d_in
        if d is None:
            raise Unliftable("the construction's upstream layer declares no input width d_in")
        return int(d)

    def _lifted_params(self, lf: Lifter, mode: str | None = None):
        changes = {}
        for name, t in tensor_fields(self.params):
            if t is None or not t.is_floating_point():
                continue
            if t.is_complex():
                raise Unliftable(f"parameter {name} is complex (the exact lift handles real values)")
            if (mode or self.mode) == "symbolic":
                changes[name] = lf.symbolic(t, name)
            else:
                vals = lf._numeric(t.to(torch.float64))
                for idx, (c, s) in self.angles.get(name, {}).items():
                    vals[idx] = lf.ring.atom("atan2", (s, c))
                changes[name] = lf.exact(t, vals)
        return _replace(self.params, changes)

    def _numeric_x(self, shape) -> torch.Tensor:
        g = torch.Generator().manual_seed(1000 + self.seed)
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def _finish(self, lf: Lifter):
        for b in lf.branches:
            if b not in self.branches:
                self.branches.append(b)
        for r in lf.value_reads:
            if r not in self.value_reads:
                self.value_reads.append(r)
        if lf.failure is not None:
            raise lf.failure

    def param_generators(self) -> dict[str, np.ndarray]:
        """The parameter arrays as exact values (generators in symbolic mode, rationals when sampled)."""
        lf = Lifter(self.ring)
        P = self._lifted_params(lf)
        return {
            k: lf.read(v)
            for k, v in tensor_fields(P)
            if isinstance(v, torch.Tensor) and v.is_floating_point()
        }

    # -- the RNN side ------------------------------------------------------------------------------
    def _construction(self):
        """``(lifter, rnn, (A, B, C, E, D))``: ``construct(params)`` lifted once per object (it depends on the
        parameters only; every input run through its features and decays below reuses it, in the same ring
        and lifter, so the weights' shadows are those one lift computed)."""
        if self._built is None:
            lf = Lifter(self.ring)
            P = self._lifted_params(lf)
            try:
                with lf:
                    rnn = self.variant.construct(P)
            except Unliftable:
                self._finish(lf)
                raise
            self._finish(lf)
            self.real_output = bool(getattr(rnn, "real_output", True))
            self._built = (lf, rnn, tuple(lf.read(w) for w in (rnn.A, rnn.B, rnn.C, rnn.E, rnn.D)))
            self._n_neurons = int(rnn.num_neurons)
        return self._built

    def num_neurons(self) -> int:
        """Neurons of ``construct(params)``."""
        if self._n_neurons is None:
            self._n_neurons = int(self.variant.construct(self.params).num_neurons)
        return self._n_neurons

    def rnn_parts(self, x_name: str, T: int, x_values: np.ndarray | None = None):
        """Lift ``construct(params)`` and its features/decays over a length-``T`` input named ``x_name``:
        ``(A, B, lam [n] or [T, n], C, E, D, z [T, d_z])`` as exact arrays."""
        lf, rnn, (A, B, C, E, D) = self._construction()
        xn = self._numeric_x((1, T, self.d_in))
        x = lf.exact(xn, x_values[None]) if x_values is not None else lf.symbolic(xn, x_name)
        try:
            with lf:
                z = rnn.features(x)
                lam = rnn.lam if rnn.lam is not None else rnn.lambdas(x)
        except Unliftable:
            self._built = None  # the lifter holds the failure; a later call starts afresh
            self._finish(lf)
            raise
        self._finish(lf)
        L = lf.read(lam)
        self.complex = any(isinstance(v, Cx) for w in (A, B, C, E, D, L) for v in np.ravel(w))
        L = L if L.ndim == 1 else L[0]
        return A, B, L, C, E, D, lf.read(z)[0]

    def rnn_unrolled(self, T: int, x_name: str = "x") -> np.ndarray:
        r"""$y^{RNN}_t$, ``[T, d_out]``: the template's stage functions over the lifted weights, $h_0 = 0$."""
        A, B, L, C, E, D, z = self.rnn_parts(x_name, T)
        h = np.zeros(A.shape[0], dtype=object)
        ys = []
        for t in range(T):
            lam = L if L.ndim == 1 else L[t]
            h = recurrence_step(lam, h, input_gate(A, B, np.concatenate([z[t], np.ones(1, dtype=object)])))
            ys.append(self._real(output_readout(C, E, D, h)))
        return _arr(ys).reshape(T, D.shape[0])

    def _real(self, y):
        r"""The template's output: $\mathrm{Re}(y)$ of a complex computation (``real_output``)."""
        y = _arr(y)
        if any(isinstance(v, Cx) for v in y.reshape(-1)):
            if not self.real_output:
                raise Unliftable("the construction's output is complex (real_output=False)")
            return _arr([re_part(v) for v in y.reshape(-1)]).reshape(y.shape)
        return y

    # -- the reference side ------------------------------------------------------------------------
    def reference_unrolled(self, T: int, x_name: str = "x") -> np.ndarray:
        """The registered ``reference(params, x)`` lifted, ``[T, d_out]``."""
        lf = Lifter(self.ring)
        P = self._lifted_params(lf)
        x = lf.symbolic(self._numeric_x((1, T, self.d_in)), x_name)
        try:
            with lf:
                y = self.variant.reference(P, x)
        finally:
            self._finish(lf)
        return lf.read(y)[0]

    def recurrence_unrolled(self, form, T: int, x_name: str = "x") -> np.ndarray:
        """``run_recurrence(form(params), x)`` lifted, ``[T, d_out]`` (``form``: params -> Recurrence)."""
        lf = Lifter(self.ring)
        P = self._lifted_params(lf)
        x = lf.symbolic(self._numeric_x((1, T, self.d_in)), x_name)
        try:
            with lf:
                y = run_recurrence(form(P), x)
        finally:
            self._finish(lf)
        return lf.read(y)[0]

    def cross_check(self, Y: np.ndarray, T: int, side: str, form=None, x_name: str = "x") -> str | None:
        """Guard against code that reads values outside the dispatcher (``.tolist()``, ``.numpy()``) and so
        bakes
        them into constants the lift cannot see: evaluate the lifted ``Y`` (``[T, d_out]``) at a second point
        (the second parameter sample in symbolic mode, new inputs) and compare with the float64 torch code
        there.
        Returns why they disagree, or ``None``. This check never proves anything; it only withdraws a lift."""
        P2 = self.params2 if (self.mode == "symbolic" and self.params2 is not None) else self.params
        g = torch.Generator().manual_seed(7919 + self.seed)
        x2 = torch.round(torch.randn(1, T, self.d_in, generator=g, dtype=torch.float64) * 8) / 8
        ids = {n: k for k, n in enumerate(self.ring.names)}
        point: dict[int, Fraction] = {}
        if self.mode == "symbolic":
            for name, t in tensor_fields(P2):
                if isinstance(t, torch.Tensor) and t.is_floating_point():
                    for idx in np.ndindex(*t.shape):
                        k = ids.get(f"{name}[{','.join(map(str, idx))}]" if idx else name)
                        if k is not None:
                            point[k] = Fraction(float(t[idx]))
        for idx in np.ndindex(1, T, self.d_in):
            k = ids.get(f"{x_name}[{','.join(map(str, idx))}]")
            if k is not None:
                point[k] = Fraction(float(x2[idx]))
        with torch.no_grad():
            if side == "rnn":
                ref = self.variant.construct(P2)(x2)[0]
            elif side == "reference":
                ref = self.variant.reference(P2, x2)[0]
            else:
                ref = run_recurrence(form(P2), x2)[0]
        rows = sorted({0, T - 1})
        for t in rows:
            for o in range(Y.shape[1]):
                try:
                    val = float(evaluate(Y[t, o], point, as_float=True))
                except (KeyError, ZeroDivisionError, ValueError) as e:
                    return f"the lifted {side} could not be evaluated at a second point ({e})"
                want = float(ref[t, o])
                if not abs(val - want) <= 1e-7 * (1 + abs(want)):
                    return (
                        f"the lifted {side} gives {val:.6g} but the torch code gives {want:.6g} at a second "
                        f"point (t={t + 1}, output {o}): the code reads values outside the dispatcher (e.g. "
                        ".tolist(), .numpy()) and bakes them into constants"
                    )
        return None

    # -- one step ----------------------------------------------------------------------------------
    def reference_step(self, form, state: list[np.ndarray] | None, x_t: np.ndarray):
        """One step of the one-step form from the exact ``state`` (``None``: from ``init``):
        ``(init state, new state, y_t)`` as lists of exact arrays (batch axis dropped)."""
        lf, rec = self._form(form)
        xn = self._numeric_x((1, self.d_in))
        x = lf.exact(xn, x_t[None])
        try:
            with lf:
                s0 = tuple(rec.init(1, torch.float64))
                init_vals = [_arr(lf.read(s)[0]) for s in s0]
                if state is None:
                    s_in = s0
                else:
                    if len(state) != len(s0):
                        raise Unliftable(
                            "the one-step state has a different number of parts than init() returns"
                        )
                    s_in = tuple(
                        lf.exact(
                            torch.zeros_like(s).to(torch.complex128 if s.is_complex() else torch.float64),
                            _arr(v)[None],
                        )
                        for s, v in zip(s0, state)
                    )
                s1 = tuple(rec.step(s_in, x))
                y = rec.readout(s1, x)
        except Unliftable:
            self._forms.pop(id(form), None)  # the lifter holds the failure; a later call starts afresh
            raise
        finally:
            self._finish(lf)
        return init_vals, [_arr(lf.read(s)[0]) for s in s1], lf.read(y)[0]

    def _form(self, form):
        """``(lifter, form(params))`` lifted once per object and form: like ``run_recurrence``, every step
        below uses the one ``Recurrence`` that ``form`` builds from the parameters."""
        got = self._forms.get(id(form))
        if got is None or got[0] is not form:
            lf = Lifter(self.ring)
            P = self._lifted_params(lf)
            try:
                with lf:
                    rec = form(P)
            finally:
                self._finish(lf)
            got = self._forms[id(form)] = (form, lf, rec)
        return got[1], got[2]

    def state_shapes(self, form) -> list[tuple[int, ...]]:
        rec = form(self.params)
        return [tuple(s.shape[1:]) for s in rec.init(1, torch.float64)]

    def upstream_window(self) -> int:
        """0 if the features $z_t$ (and decays) depend on $x_t$ alone, 1 if on $x_{t-1}, x_t$ (token shift);
        :class:`Unliftable` for a longer window."""
        _, _, L, _, _, _, z = self.rnn_parts("xw", 3)
        names = self.ring.names
        for t in range(3):
            vals = list(z[t]) + (list(L[t]) if L.ndim == 2 else [])
            seen = set()
            for v in vals:
                if isinstance(v, Poly):
                    seen |= _var_names(v, names)
            times = {int(nm[3:].split(",")[1]) for nm in seen if nm.startswith("xw[")}  # xw[batch,t,c]
            if times and min(times) < t - 1:
                raise Unliftable(
                    "the upstream features at time t depend on inputs before t-1 (a window of more "
                    "than one past step); the one-step simulation handles at most a token shift"
                )
            if times and min(times) < t:
                return 1
        return 0

    def rnn_step(self, h: np.ndarray, x_t: np.ndarray, prev: np.ndarray | None = None):
        r"""One template step from the exact state ``h``: ``(h', y, n)``. ``prev``: the previous input when
        the
        upstream looks back one step (the features are those of the sequence ``[prev, x_t]`` at its end); for
        the first step of such an upstream pass ``prev=None`` (the features of the sequence ``[x_1]``)."""
        if prev is None:
            A, B, L, C, E, D, z = self.rnn_parts("", 1, x_values=x_t[None])
            zt, lam = z[0], (L if L.ndim == 1 else L[0])
        else:
            A, B, L, C, E, D, z = self.rnn_parts("", 2, x_values=np.stack([prev, x_t]))
            zt, lam = z[1], (L if L.ndim == 1 else L[1])
        h1 = recurrence_step(lam, h, input_gate(A, B, np.concatenate([zt, np.ones(1, dtype=object)])))
        return h1, self._real(output_readout(C, E, D, h1)), A.shape[0]


def _var_names(v: Poly, names: list[str]) -> set[str]:
    out = set()
    for g in v.generators():
        a = v.ring.atoms.get(g)
        if a is None:
            out.add(names[g])
        else:
            for arg in a.args:
                if isinstance(arg, Poly):
                    out |= _var_names(arg, names)
    return out


# -- Phi -----------------------------------------------------------------------------------------------
def _flat(parts: list[np.ndarray]) -> list:
    out = []
    for p in parts:
        out.extend(np.asarray(p, dtype=object).reshape(-1).tolist())
    return out


def _coeffs(v) -> dict:
    if isinstance(v, Poly):
        return v.terms
    return {(): Fraction(v)} if v else {}


def solve_phi(h_seq: list[list], s_seq: list[list]) -> tuple[list | None, list[int]]:
    r"""Rational $\Phi$ with $\sum_k \Phi_{a,k} h_t[k] = s_t[a]$ for every listed $t$ (coefficient matching),
    as ``(rows, unsolved)``: ``rows[a]`` a dict ``{neuron: Fraction}``; ``unsolved`` the state entries with no
    solution (then ``rows`` is ``None``). Coefficients of $\Phi$ must be constants: with symbolic parameters a
    parameter-dependent map shows up as unsolved entries (the caller retries at sampled parameters)."""
    n, N = len(h_seq[0]), len(s_seq[0])
    keys: dict = {}
    rows_h: list[dict] = []
    rows_s: list[dict] = []
    for h, s in zip(h_seq, s_seq):
        local: dict = {}
        for k, v in enumerate(h):
            for m, c in _coeffs(v).items():
                local.setdefault(m, ({}, {}))[0][k] = c
        for a, v in enumerate(s):
            for m, c in _coeffs(v).items():
                local.setdefault(m, ({}, {}))[1][a] = c
        for m, (rh, rs) in local.items():
            keys[len(rows_h)] = m
            rows_h.append(rh)
            rows_s.append(rs)
    if not rows_h:
        return [{} for _ in range(N)], []
    # one equation per monomial; equations that are multiples of one another are kept once (sparse rows)
    unique: dict = {}
    for rh, rs in zip(rows_h, rows_s):
        row = {**{k: c for k, c in rh.items() if c}, **{n + a: c for a, c in rs.items() if c}}
        if not row:
            continue
        lead = row[min(row)]
        key = frozenset((j, Fraction(c) / lead) for j, c in row.items())
        unique.setdefault(key, row)
    rows = {
        i: {j: QQ(int(Fraction(c).numerator), int(Fraction(c).denominator)) for j, c in row.items()}
        for i, row in enumerate(unique.values())
    }
    R, pivots = SDM(rows, (len(rows), n + N), QQ).rref()
    unsolved = sorted({p - n for p in pivots if p >= n})
    if unsolved:
        return None, unsolved
    out = [{} for _ in range(N)]
    for r, p in enumerate(pivots):
        for j, c in R.get(r, {}).items():
            if j >= n and c != 0:
                out[j - n][p] = Fraction(int(c.numerator), int(c.denominator))
    return out, []


def apply_phi(rows: list[dict], h: np.ndarray):
    out = []
    for row in rows:
        acc = 0
        for k, c in row.items():
            acc = acc + h[k] * c
        out.append(acc)
    return out


def _unflat(flat: list, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, i = [], 0
    for sh in shapes:
        n = int(np.prod(sh)) if sh else 1
        a = np.empty(n, dtype=object)
        a[:] = flat[i : i + n]
        out.append(a.reshape(sh))
        i += n
    return out


def coords(lift: VariantLift, vals) -> list:
    """Real coordinates of a flat list of exact values: the values themselves, or for a complex construction
    the pairs (Re, Im) of each (so that Phi is a real-linear map)."""
    vals = list(vals)
    if not lift.complex:
        return vals
    return [c for v in vals for c in (re_part(v), im_part(v))]


def uncoords(lift: VariantLift, vals) -> list:
    """Inverse of :func:`coords`."""
    vals = list(vals)
    if not lift.complex:
        return vals
    return [cx(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]


def _is_complex(lift: VariantLift) -> bool:
    if lift.complex is None:
        lift.rnn_parts("", 1, x_values=np.zeros((1, lift.d_in), dtype=object))
    return bool(lift.complex)


def reachable(lift: VariantLift, form, K: int, window: int):
    """RNN states (augmented by the previous input when ``window``) and one-step states after ``1..K`` steps
    of symbolic input ``r[t,c]`` from the initial states: ``(h_seq, s_seq, s0)`` (flat lists)."""
    d, n = lift.d_in, _num_neurons(lift)
    x = lift.ring.array("r", (K, d))
    _is_complex(lift)
    init, _, _ = lift.reference_step(form, None, x[0])
    state, h, prev = init, np.zeros(n, dtype=object), np.zeros(d, dtype=object)
    h_seq, s_seq = [], []
    for t in range(K):
        h, _, _ = lift.rnn_step(h, x[t], prev if (window and t) else None)
        _, state, _ = lift.reference_step(form, state, x[t])
        h_seq.append(coords(lift, list(h) + (list(x[t]) if window else [])))
        s_seq.append(coords(lift, _flat(state)))
        prev = x[t]
    return h_seq, s_seq, coords(lift, _flat(init))


def _num_neurons(lift: VariantLift) -> int:
    return lift.num_neurons()


def reachable_span(h_seq: list[list]) -> list[list[Fraction]]:
    """A basis of the real span of the reached RNN states (coefficient vectors of every monomial of the
    symbolic inputs and parameters), as rows of rationals."""
    n = len(h_seq[0])
    vecs: dict = {}
    for h in h_seq:
        local: dict = {}
        for k, v in enumerate(h):
            for m, c in _coeffs(v).items():
                local.setdefault(m, [0] * n)[k] = Fraction(c)
        for vec in local.values():
            vecs[tuple(vec)] = vec
    if not vecs:
        return []
    M = sp.Matrix([[sp.Rational(c.numerator, c.denominator) if c else 0 for c in v] for v in vecs.values()])
    R, piv = M.rref()
    return [
        [Fraction(int(sp.fraction(R[i, j])[0]), int(sp.fraction(R[i, j])[1])) for j in range(n)]
        for i in range(len(piv))
    ]


def _annihilator(basis: list[list[Fraction]], n: int) -> list[list[Fraction]]:
    """Rows ``y`` with ``y . v = 0`` exactly for the ``v`` in the span of ``basis``."""
    if not basis:
        return [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]
    M = sp.Matrix([[sp.Rational(c.numerator, c.denominator) for c in v] for v in basis])
    return [[Fraction(int(sp.fraction(c)[0]), int(sp.fraction(c)[1])) for c in y] for y in M.nullspace()]


def simulation_obligations(
    lift: VariantLift, form, rows: list[dict], window: int, h_seq: list[list] | None = None
):
    """``[(label, lhs, rhs)]`` of init, step and readout (module docstring) with symbolic ``h[k]``, ``x[c]``;
    with a
    token shift the RNN state is augmented by the previous input ``p[c]``, and the first step (whose features
    see no previous input) gets its own obligations ``first step`` / ``first readout``."""
    d = lift.d_in
    n = _num_neurons(lift)
    shapes = lift.state_shapes(form)
    invariant = None
    if _is_complex(lift):
        # a complex construction reaches a real subspace V of its states (e.g. conjugate pairs): the
        # obligations are stated for every h in V, h = sum_j a_j b_j, with the invariance rnn_step(V, x) in V
        if window or h_seq is None:
            raise Unliftable("a complex construction with a token shift is not supported by the simulation")
        basis = reachable_span(h_seq)
        a = lift.ring.array("a", (len(basis),))
        hr = [sum((a[j] * b[i] for j, b in enumerate(basis) if b[i]), 0) for i in range(2 * n)]
        h = _arr(uncoords(lift, hr))
        invariant = _annihilator(basis, 2 * n)
    else:
        h = lift.ring.array("h", (n,))
    p = lift.ring.array("p", (d,)) if window else None
    x = lift.ring.array("x", (d,))
    hh = coords(lift, np.concatenate([h, p]) if window else h)
    init, s1_from_init, y1_ref = lift.reference_step(form, None, x)
    h0 = np.zeros(len(hh), dtype=object)
    parts = [("init", _arr(apply_phi(rows, h0)), _arr(coords(lift, _flat(init))))]
    if window:  # t = 1: Phi(h_1, x_1) = step(s_0, x_1) and its readout, from h_0 = 0
        h1, y1, _ = lift.rnn_step(np.zeros(n, dtype=object), x, None)
        parts.append(
            (
                "first step",
                _arr(apply_phi(rows, coords(lift, np.concatenate([h1, x])))),
                _arr(coords(lift, _flat(s1_from_init))),
            )
        )
        parts.append(("first readout", _arr(y1), _arr(y1_ref)))
    S = _unflat(uncoords(lift, apply_phi(rows, hh)), shapes)
    _, S1, y_ref = lift.reference_step(form, S, x)
    h1, y_rnn, _ = lift.rnn_step(h, x, p if window else None)
    hh1 = coords(lift, np.concatenate([h1, x]) if window else h1)
    parts.append(("step", _arr(apply_phi(rows, hh1)), _arr(coords(lift, _flat(S1)))))
    if invariant is not None:
        lhs = [sum((y[i] * hh1[i] for i in range(len(y)) if y[i]), 0) for y in invariant]
        parts.append(("invariant subspace", _arr(lhs), np.zeros(len(lhs), dtype=object)))
    parts.append(("readout", _arr(y_rnn), _arr(y_ref)))
    return parts


def time_invariance(lift: VariantLift, window: int, T: int = 4):
    r"""``[(label, lhs, rhs)]``: the features $z_t$ and decays $\lambda_t$ that the construction computes
    over a
    length-``T`` sequence equal those of its one-step use (:meth:`VariantLift.rnn_step`: the sequence $[x_t]$,
    or $[x_{t-1}, x_t]$ for a token shift after the first step) at every $t \le T$. The simulation assumes
    this for every
    $t$; the claim names the length up to which it was checked."""
    _, _, L, _, _, _, z = lift.rnn_parts("xs", T)
    x = np.empty((T, lift.d_in), dtype=object)
    ids = {n: k for k, n in enumerate(lift.ring.names)}
    for t in range(T):
        for c in range(lift.d_in):
            x[t, c] = Poly({(ids[f"xs[0,{t},{c}]"],): 1}, lift.ring)
    parts = []
    for t in range(T):
        seq = x[t : t + 1] if not (window and t) else np.stack([x[t - 1], x[t]])
        _, _, L1, _, _, _, z1 = lift.rnn_parts("", len(seq), x_values=seq)
        parts.append((f"features t={t + 1}", _arr(z[t]), _arr(z1[-1])))
        if L.ndim == 2:
            parts.append((f"decay t={t + 1}", _arr(L[t]), _arr(L1[-1])))
    return parts


__all__ += ["apply_phi", "exact_float", "quantise", "reachable"]
