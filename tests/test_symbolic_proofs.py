"""Proofs of the two LSA constructions, and refutations of broken constructions with counterexamples that
are re-evaluated independently (exact Fractions in this file's own loops, and torch float64)."""

from fractions import Fraction

import pytest
import torch


# -- an independent evaluator (this file's own loops, exact) -------------------------------------------
def _arr(v):
    return [_arr(u) for u in v] if isinstance(v, list) else (None if v is None else Fraction(v))


def _template(w, x):
    A, B, lam, C, E, D = (w[k] for k in ("A", "B", "lam", "C", "E", "D"))
    n, h, ys = len(A), [Fraction(0)] * len(A), []
    for xt in x:
        xt1 = list(xt) + [Fraction(1)]
        u = [sum(a * b for a, b in zip(A[k], xt1)) * sum(a * b for a, b in zip(B[k], xt1)) for k in range(n)]
        h = [lam[k] * h[k] + u[k] for k in range(n)]
        z = [
            sum(C[m][k] * h[k] for k in range(n)) * sum(E[m][k] * h[k] for k in range(n))
            for m in range(len(C))
        ]
        ys.append([sum(D[o][m] * z[m] for m in range(len(z))) for o in range(len(D))])
    return ys


def _lsa(p, x):
    WQ, WK, WV, WO = p["W_Q"], p["W_K"], p["W_V"], p.get("W_O")

    def mv(W, v):
        return [sum(a * b for a, b in zip(row, v)) for row in W]

    ys = []
    for t in range(len(x)):
        cat = []
        for h in range(len(WQ)):
            q = mv(WQ[h], x[t])
            o = [Fraction(0)] * len(WV[h])
            for s in range(t + 1):
                score = sum(a * b for a, b in zip(mv(WK[h], x[s]), q))
                o = [oi + vi * score for oi, vi in zip(o, mv(WV[h], x[s]))]
            cat += o
        ys.append(mv(WO, cat) if WO is not None else cat)
    return ys


def check_lifted_counterexample(variant, sizes, cx):
    """A counterexample of a lifted claim: its parameters and inputs, rebuilt here as float64 tensors, run
    through the variant's own torch construct() and reference(), give outputs that differ at (t, o)."""
    import dataclasses

    p = variant.sample_params(
        sizes["d"], sizes.get("heads", 1), generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    rr = cx["rerun"]
    fields = {
        k: torch.tensor([float(Fraction(a)) for a in v], dtype=torch.float64).reshape(getattr(p, k).shape)
        for k, v in rr["params"].items()
    }
    p = dataclasses.replace(p, **fields)
    x = torch.tensor([[[float(Fraction(a)) for a in row] for row in rr["x"]]], dtype=torch.float64)
    t, o = cx["t"] - 1, cx["output_index"]
    y_rnn, y_ref = variant.construct(p)(x)[0], variant.reference(p, x)[0]
    assert (
        float(y_rnn[t, o]) == rr["rnn_float64"][t][o] and float(y_ref[t, o]) == rr["reference_float64"][t][o]
    )
    assert abs(float(y_rnn[t, o] - y_ref[t, o])) > 1e-9


def check_counterexample_independently(cx):
    """The counterexample's two outputs, recomputed here exactly and in torch float64, really differ."""
    from constructions import GatedLinearRNN, LinearSelfAttention

    pt = cx["point"]
    w = {k: _arr(v) for k, v in pt["rnn_weights"].items()}
    p = {k: _arr(v) for k, v in pt["params"].items()}
    x = _arr(pt["x"])
    t, o = cx["t"] - 1, cx["output_index"]
    y_rnn, y_ref = _template(w, x), _lsa(p, x)
    assert y_rnn[t][o] == Fraction(cx["rnn_output"]) and y_ref[t][o] == Fraction(cx["reference_output"])
    assert y_rnn[t][o] != y_ref[t][o]
    f64 = {
        k: torch.tensor(
            [[float(a) for a in r] for r in v] if isinstance(v[0], list) else [float(a) for a in v],
            dtype=torch.float64,
        )
        for k, v in w.items()
    }
    rnn = GatedLinearRNN(f64["A"], f64["B"], f64["lam"], f64["C"], f64["E"], f64["D"])
    lsa = LinearSelfAttention(
        *(
            None
            if p.get(k) is None
            else torch.tensor(
                [[[float(a) for a in r] for r in m] for m in p[k]]
                if k != "W_O"
                else [[float(a) for a in r] for r in p[k]],
                dtype=torch.float64,
            )
            for k in ("W_Q", "W_K", "W_V", "W_O")
        )
    )
    xt = torch.tensor([[[float(a) for a in r] for r in x]], dtype=torch.float64)
    gap = float(rnn(xt)[0, t, o] - lsa(xt)[0, t, o])
    exact = float(y_rnn[t][o] - y_ref[t][o])
    assert abs(gap - exact) <= 1e-9 * max(1.0, abs(exact)) and gap != 0


# -- proofs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lsa-direct", "lsa-compressed"])
@pytest.mark.parametrize("mode", ["symbolic", "exact"])
def test_constructions_proved_fixed_size_and_all_T(name, mode):
    from equivalence.symbolic import run_target

    sets = [{"d": 2, "heads": 1, "T": 3}, {"d": 3, "heads": 2, "d_k": 2, "d_v": 1, "d_out": 2, "T": 2}]
    for tier in ("unrolled", "induction", "schwartz-zippel"):
        (c,) = run_target(name, sets=sets, tier=tier, mode=mode)
        want = "probable" if tier == "schwartz-zippel" else "proved"  # random points are never "proved"
        assert c.status == want, (tier, c.message)
        assert (c.epsilon is not None and 0 <= c.epsilon < 1e-20) == (tier == "schwartz-zippel")
        assert c.latex and c.statement_digest and c.rerun["claim"] == c.id


def test_wiring_claim_names_the_grid_it_checked_and_claims_no_other_size():
    from equivalence.symbolic import claim_ids, run_claim

    c = run_claim("LSA-DIRECT-WIRING/v1", profile="dev")
    assert c.status == "proved" and c.evidence["conformance_sizes"] == 32
    assert "R1" not in c.latex and r"\lambda" in c.latex  # rendered from the SymPy role equations
    assert "does NOT say that direct_weights or construct() is correct at any other size" in c.statement
    assert c.sizes["direct_weights checked at"] == "H <= 2, d, d_k, d_v <= 2"
    assert not any("ALLSIZES" in i for i in claim_ids()) and "LSA-COMPRESSED-WIRING/v1" not in claim_ids()
    with pytest.raises(KeyError, match="renamed LSA-DIRECT-WIRING/v1"):
        run_claim("LSA-DIRECT-ALLSIZES/v1")


def test_multivariate_ring_agrees_on_a_real_construction():
    import constructions
    from equivalence.symbolic.subjects import resolve
    from equivalence.symbolic.unrolled import unrolled

    s = resolve(
        constructions.get("lsa-compressed"), {"d": 2, "heads": 2, "d_k": 1, "d_v": 2}, mode="symbolic"
    )
    assert (
        unrolled(s, 2, method="multivariate").status == unrolled(s, 2, method="kronecker").status == "proved"
    )


# -- refutations -------------------------------------------------------------------------------------------
@pytest.fixture
def broken_variants():
    import constructions
    from constructions import lsa_to_rnn
    from constructions.registry import LSADirect, Variant, sample_lsa_params
    from constructions.rnn import GatedLinearRNN

    class OneWeightWrong(LSADirect):  # registered from outside, inherits the (correct) hooks
        def construct(self, params):
            rnn = super().construct(params)
            with torch.no_grad():
                rnn.D[0, 0] += 0.5
            return rnn

    class NoHooks(Variant):  # an outside variant with no symbolic hooks at all
        status = "exact"

        def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, **sizes):
            return sample_lsa_params(d, heads, generator=generator, dtype=dtype, **sizes)

        def reference(self, params, x):
            return params.lsa()(x)

        def construct(self, params):
            rnn = lsa_to_rnn(params.lsa(), "direct")
            with torch.no_grad():
                rnn.B[0, 1] += 0.25
            return rnn

        def num_neurons(self, params):
            return 0

    class TimeSlip(LSADirect):  # query neurons accumulate (lambda 1 instead of 0): right at t = 1 only
        def symbolic_weights(self, W_Q, W_K, W_V, W_O=None):
            w = super().symbolic_weights(W_Q, W_K, W_V, W_O)
            lam = w.lam.copy()
            lam[lam == 0] = 1
            return w._replace(lam=lam)

        def construct(self, params):
            rnn = super().construct(params)
            lam = rnn.lam.detach().clone()
            lam[lam == 0] = 1
            return GatedLinearRNN(
                rnn.A.detach(), rnn.B.detach(), lam, rnn.C.detach(), rnn.E.detach(), rnn.D.detach()
            )

    names = {"t-one-weight-wrong": OneWeightWrong, "t-no-hooks": NoHooks, "t-time-slip": TimeSlip}
    for n, cls in names.items():
        constructions.register(n, replace=True)(cls)
    yield names
    for n in names:
        constructions.unregister(n)


def test_outside_construction_with_one_weight_wrong_is_refuted(broken_variants):
    from equivalence.symbolic import run_target

    import constructions

    for name in ("t-one-weight-wrong", "t-no-hooks"):
        for c in run_target(name, sets=[{"d": 2, "heads": 1, "T": 2}], profile="dev"):
            assert c.status in (("refuted", "failed") if c.id.endswith("-ALLT/v1") else ("refuted",)), (
                c.id,
                c.status,
                c.message,
            )
            if c.counterexample and "rnn_weights" in c.counterexample.get("point", {}):
                check_counterexample_independently(c.counterexample)
            elif c.counterexample and "rerun" in c.counterexample:  # lifted from the torch code
                check_lifted_counterexample(constructions.get(name), {"d": 2, "heads": 1}, c.counterexample)
        (c,) = run_target(name, sets=[{"d": 2, "heads": 1, "T": 2}], tier="unrolled")
        assert "t" in c.counterexample


def test_time_index_slip_is_refuted_by_unrolling_and_by_induction(broken_variants):
    from equivalence.symbolic import run_target

    (c,) = run_target("t-time-slip", sets=[{"d": 2, "heads": 1, "T": 1}], tier="unrolled")
    assert c.status == "proved"  # at T = 1 the slip is invisible...
    (c,) = run_target("t-time-slip", sets=[{"d": 2, "heads": 1, "T": 3}], tier="unrolled")
    assert c.status == "refuted" and c.counterexample["t"] == 2  # ...from t = 2 on it is not
    check_counterexample_independently(c.counterexample)
    (c,) = run_target("t-time-slip", sets=[{"d": 2, "heads": 1}], tier="induction")
    assert c.status == "refuted" and c.evidence["per_set"][0]["obligation_failure"]["obligation"] == "step"
    check_counterexample_independently(c.counterexample)


def test_a_wrong_compressed_wiring_is_refuted_by_every_tier():
    """Compressed construction that forgets that a diagonal pair (a, a) appears once (counts it twice)."""
    import constructions
    from constructions.registry import LSACompressed
    from constructions.rnn import GatedLinearRNN
    from equivalence.symbolic import run_target

    def double_diagonal(C, d):
        pairs = [(a, b) for a in range(d) for b in range(a, d)]
        C = C.copy() if hasattr(C, "copy") and not isinstance(C, torch.Tensor) else C.clone()
        for p, (a, b) in enumerate(pairs):
            if a == b:
                C[:, p] = C[:, p] * 2
        return C

    class DoubleDiagonal(LSACompressed):
        def symbolic_weights(self, W_Q, W_K, W_V, W_O=None):
            w = super().symbolic_weights(W_Q, W_K, W_V, W_O)
            return w._replace(C=double_diagonal(w.C, W_Q.shape[2]))

        def construct(self, params):
            r = super().construct(params)
            return GatedLinearRNN(
                r.A.detach(),
                r.B.detach(),
                r.lam.detach(),
                double_diagonal(r.C.detach(), r.d),
                r.E.detach(),
                r.D.detach(),
            )

    constructions.register("t-double-diagonal", replace=True)(DoubleDiagonal)
    try:
        for tier in ("unrolled", "induction", "schwartz-zippel"):
            (c,) = run_target("t-double-diagonal", sets=[{"d": 2, "heads": 1, "T": 2}], tier=tier)
            assert c.status == "refuted", (tier, c.message)
            check_counterexample_independently(c.counterexample)
    finally:
        constructions.unregister("t-double-diagonal")


# -- Schwartz–Zippel over prime fields ---------------------------------------------------------------------
def test_prime_field_schwartz_zippel_at_a_large_size_states_its_bound():
    from equivalence.symbolic import time_tier

    c = time_tier("lsa-direct", "schwartz-zippel", d=48, T=3, d_k=48, d_v=48)
    ev = c.evidence["per_set"][0]
    assert c.status == "probable" and "prime field" in ev["method"]
    assert c.epsilon == 2.0 ** ev["error_probability_log2"] and ev["seed"] == c.rerun["seed"]
    assert "compared only at d=16" in c.statement and "d=48" in c.statement  # names where construct() ran
    assert ev["degree_bound"] >= 7 and len(ev["primes"]) == ev["trials"] >= 3
    assert all((1 << 30) <= p < (1 << 31) for p in ev["primes"]) and ev["error_probability_log2"] < -64
    assert ev["hook_check_sizes"]["d"] == 16  # construct() vs hook compared at capped sizes (dense weights)


def test_prime_field_schwartz_zippel_refutes_a_time_slip(broken_variants):
    from equivalence.symbolic import run_target

    (c,) = run_target("t-time-slip", sets=[{"d": 3, "heads": 1, "T": 3}], tier="schwartz-zippel")
    assert c.status == "refuted" and c.counterexample["t"] == 2 and "prime_field_witness" in c.counterexample
    check_counterexample_independently(c.counterexample)
    (c,) = run_target("t-time-slip", sets=[{"d": 24, "heads": 1, "T": 3}], tier="schwartz-zippel")
    w = c.counterexample["prime_field_witness"]
    assert c.status == "refuted" and c.counterexample["t"] == 2 and w["rnn_mod_p"] != w["reference_mod_p"]


def test_prime_field_arithmetic_is_exact():
    import numpy as np

    from equivalence.symbolic.modular import Zp, ZpSparse, _Field

    p = 2147483629  # prime below 2^31
    f = _Field(p)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, p, (3, 70000)), rng.integers(0, p, (70000, 2))
    got = (Zp(a, 1, f) @ Zp(b, 1, f)).a
    want = [[sum(int(x) * int(y) for x, y in zip(a[i], b[:, j])) % p for j in range(2)] for i in range(3)]
    assert got.tolist() == want
    S, dense = (
        ZpSparse((5, 4), f),
        np.zeros((5, 4), dtype=np.int64),
    )  # sparse zeros filled like the wiring does
    S[np.array([0, 2, 4]), :2] = Zp(np.arange(6).reshape(3, 2), 1, f)
    dense[np.array([0, 2, 4]), :2] = np.arange(6).reshape(3, 2)
    S[np.array([1, 3]), np.array([3, 2])] = 7
    dense[np.array([1, 3]), np.array([3, 2])] = 7
    assert ((Zp(np.arange(5), 1, f) @ S).a == np.arange(5) @ dense).all()
    assert ((Zp(np.arange(4), 1, f) @ S.T).a == np.arange(4) @ dense.T).all() and S.deg == 1


# -- the NumPy object-matmul crash (docs/proofs.md) ------------------------------------------------------
_CRASH_LOOP = r"""
import gc, sys
from fractions import Fraction
import numpy as np
from equivalence.symbolic.arrays import Variables
from equivalence.symbolic.engine import decide_identity
# x @ A.T: output (0,0) is a generator (x * 1), output (0,1) starts with x * 1/3, which needs Q: the Z ring
# meets a non-integer at the first product of a non-first output entry (the case NumPy 2.4 mishandles)
A = np.array([[0, 1, 0], [Fraction(1, 3), 2, 0]], dtype=object)
def fn(arrays):
    x = arrays["x"]
    xt = np.concatenate([x, np.ones((x.shape[0], 1), dtype=object)], axis=1)
    return [("y", xt @ A.T, xt @ A.T)]
for it in range(int(sys.argv[1])):
    assert decide_identity(fn, Variables().add("x", (3, 2))).holds
    gc.collect()
print("ok")
"""


def test_exceptions_never_cross_numpy_object_matmul(tmp_path):
    """Before the fix this crashed (SIGSEGV in the garbage collector) in the first or second iteration."""
    import os
    import subprocess
    import sys

    script = tmp_path / "loop.py"
    script.write_text(_CRASH_LOOP)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(
        [sys.executable, str(script), "20"], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


@pytest.mark.slow
def test_reliability_prover_loop_does_not_crash(tmp_path):
    """The reproducer of docs/reliability.md (prover rows): 30 x 8 mutants in one process (crashed before)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "rel.py"
    script.write_text(
        "import torch\n"
        "from constructions import lsa_to_rnn\n"
        "from properties.mutations import KINDS, mutate_spec\n"
        "from benchmarks.reliability import _integer_case, prover_refutes\n"
        "g = torch.Generator().manual_seed(1)\n"
        "for it in range(30):\n"
        "    for kind in KINDS:\n"
        "        ip, _ = _integer_case(g)\n"
        "        _, _, spec = mutate_spec(lsa_to_rnn(ip.lsa(), 'direct' if it % 2 else 'compressed'), kind, "
        "g, 1e-6)\n"
        "        prover_refutes(spec, ip)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, env=env, timeout=900
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


# -- leaf sums as atoms (exact, lazy method) ---------------------------------------------------------------
def test_atoms_prove_regrouped_identities_and_never_hide_a_difference():
    import numpy as np

    from equivalence.symbolic.arrays import Variables
    from equivalence.symbolic.engine import decide_identity

    V = Variables().add("a", (20,)).add("b", (20,)).add("c", (20,))

    def regrouped(arr):  # (sum_j a_j b_j) c_k  ==  sum_j a_j (b_j c_k): only the left side has an atom
        a, b, c = arr["a"], arr["b"], arr["c"]
        return [
            (
                "y",
                np.array([(a @ b) * c[k] for k in range(20)], dtype=object),
                np.array([sum(a[j] * (b[j] * c[k]) for j in range(20)) for k in range(20)], dtype=object),
            )
        ]

    r = decide_identity(regrouped, V, method="lazy")
    assert r.holds and r.evidence["entries_expanded_fully"] == 20  # atoms disagree: decided by full expansion

    def same_atoms(arr):  # both sides form the leaf sum a.b (in different orders): decided over atoms
        a, b, c = arr["a"], arr["b"], arr["c"]
        return [
            (
                "y",
                np.array([(a @ b) * c[k] for k in range(20)], dtype=object),
                np.array([c[k] * sum(b[::-1] * a[::-1]) for k in range(20)], dtype=object),
            )
        ]

    r = decide_identity(same_atoms, V, method="lazy")
    assert r.holds and r.evidence["entries_decided_over_atoms"] == 20

    def wrong(
        arr,
    ):  # one term counted twice inside the leaf sum: a different atom, then a non-zero difference
        a, b, c = arr["a"], arr["b"], arr["c"]
        return [
            (
                "y",
                np.array([(a @ b) * c[k] for k in range(20)], dtype=object),
                np.array([c[k] * (a @ b + a[3] * b[3]) for k in range(20)], dtype=object),
            )
        ]

    r = decide_identity(wrong, V, method="lazy")
    assert not r.holds and len(r.failing) == 20 and r.witness


def test_compressed_all_T_is_decided_over_atoms_exactly():
    from equivalence.symbolic import run_target

    (c,) = run_target("lsa-compressed", sets=[{"d": 8, "heads": 2}], tier="induction")
    ev = c.evidence["per_set"][0]
    assert c.status == "proved" and c.tier == "induction"  # exact, not Schwartz–Zippel
    assert ev["entries_expanded_fully"] == 0 and ev["entries_decided_over_atoms"] == 104 and ev["atoms"] > 0


@pytest.mark.slow
def test_a_wrong_compressed_wiring_is_refuted_by_induction_at_a_lazy_size():
    """At d = 8, H = 2 (436 generators) the all-T tier runs the lazy method with atoms first."""
    import constructions
    from constructions.registry import LSACompressed
    from constructions.rnn import GatedLinearRNN
    from equivalence.symbolic import run_target

    class DoubleDiagonal(LSACompressed):  # store neuron s[0,0] (a diagonal pair) counted twice
        def symbolic_weights(self, W_Q, W_K, W_V, W_O=None):
            w = super().symbolic_weights(W_Q, W_K, W_V, W_O)
            C = w.C.copy()
            C[:, 0] = C[:, 0] * 2
            return w._replace(C=C)

        def construct(self, params):
            r = super().construct(params)
            C = r.C.detach().clone()
            C[:, 0] *= 2
            return GatedLinearRNN(r.A.detach(), r.B.detach(), r.lam.detach(), C, r.E.detach(), r.D.detach())

    constructions.register("t-dd-lazy", replace=True)(DoubleDiagonal)
    try:
        (c,) = run_target("t-dd-lazy", sets=[{"d": 8, "heads": 2}], tier="induction", mode="symbolic")
        ev = c.evidence["per_set"][0]
        assert c.status == "refuted" and ev["obligation_failure"]["obligation"] == "readout", c.message
        assert ev["entries_expanded_fully"] > 0  # the readout entries were expanded fully, and differ
        check_counterexample_independently(c.counterexample)
    finally:
        constructions.unregister("t-dd-lazy")


# -- Schwartz–Zippel: probable, seeded per run, float constants read exactly
# ---------------------------------------
@pytest.fixture
def float_lambda_variants():
    """LSA whose hook writes lambda = 1.0 as a Python float (correct), and a twin with lambda = 0.5
    (broken)."""
    import numpy as np

    import constructions
    from constructions.registry import LSADirect

    def with_lam(value):
        class FloatLam(LSADirect):
            def symbolic_weights(self, W_Q, W_K, W_V, W_O=None):
                w = super().symbolic_weights(W_Q, W_K, W_V, W_O)
                return w._replace(lam=np.array([value * v if v != 0 else v for v in w.lam], dtype=object))

            def construct(self, params):  # the same wiring as the hook
                rnn = super().construct(params)
                with torch.no_grad():
                    rnn.lam.mul_(value)
                return rnn

        return FloatLam

    constructions.register("t-float-lam")(with_lam(1.0))
    constructions.register("t-float-lam-half")(with_lam(0.5))
    yield
    constructions.unregister("t-float-lam")
    constructions.unregister("t-float-lam-half")


def test_float_constant_in_a_hook_cannot_cause_a_false_refutation(float_lambda_variants):
    from equivalence.symbolic import run_claim

    sets = [{"d": 3, "heads": 1, "T": 3}]
    c = run_claim("T-FLOAT-LAM-SZ/v1", sets=sets, seed=5)
    assert c.status == "probable" and c.epsilon < 1e-20, c.message  # 64-bit points: rounding would refute
    c = run_claim("T-FLOAT-LAM-HALF-SZ/v1", sets=sets, seed=5)
    assert c.status == "refuted", c.message


def test_schwartz_zippel_seed_is_drawn_per_run_recorded_and_reproducible():
    from equivalence.symbolic import run_claim

    sets = [{"d": 4, "heads": 1, "T": 3}]
    a, b = run_claim("LSA-DIRECT-SZ/v1", sets=sets), run_claim("LSA-DIRECT-SZ/v1", sets=sets)
    assert a.rerun["seed"] != b.rerun["seed"] and a.evidence["seed"] == a.rerun["seed"]
    primes = a.evidence["per_set"][0]["primes"]
    assert primes != b.evidence["per_set"][0]["primes"]
    again = run_claim("LSA-DIRECT-SZ/v1", sets=a.rerun["sets"], seed=a.rerun["seed"])
    assert again.evidence["per_set"][0]["primes"] == primes and again.epsilon == a.epsilon
    with pytest.raises(ValueError, match="seed must be an int"):
        run_claim("LSA-DIRECT-SZ/v1", sets=sets, seed=2**70)


# -- the package is a one-way pipeline (the rule stated in equivalence/symbolic/__init__.py) -----------------
def _package_imports() -> dict[str, set[str]]:
    """Module of ``equivalence.symbolic`` -> the modules of the package it imports (relative imports, at any
    depth: a function-level import counts), read with ``ast``."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "equivalence" / "symbolic"
    names = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    out = {}
    for name in sorted(names):
        found = set()
        for node in ast.walk(ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                found |= {t.split(".")[0] for t in targets if t.split(".")[0] in names}
        out[name] = found - {name}
    return out


def _stage_violations(stages: dict, imports: dict) -> list[str]:
    order = {m: k for k, (_, mods) in enumerate(stages.items()) for m in mods}
    rank = {s: k for k, s in enumerate(stages)}
    bad = []
    for m, targets in imports.items():
        for t in sorted(targets):
            ok = order[t] <= order[m] or (order[m] == rank["obligations"] and order[t] == rank["decide"])
            if not ok:
                bad.append(f"{m} ({list(stages)[order[m]]}) imports {t} ({list(stages)[order[t]]})")
    return bad


def test_every_module_has_one_stage_and_imports_run_one_way():
    """Every module of the package is in exactly one stage of ``STAGES``, and imports only from its own
    stage, an earlier one or (an obligation module) the decision procedures; the stage order is
    arithmetic -> lift -> obligations -> decide -> claim."""
    from equivalence.symbolic import STAGES

    assert list(STAGES) == ["arithmetic", "lift", "obligations", "decide", "claim"]
    imports = _package_imports()
    listed = [m for mods in STAGES.values() for m in mods]
    assert sorted(listed) == sorted(imports), "modules not in exactly one stage"
    assert _stage_violations(STAGES, imports) == []


def test_the_stage_rule_can_fail():
    """Power check: a planted upward import (the engine importing a claim module, the lift importing an
    obligation module) is reported."""
    from equivalence.symbolic import STAGES

    imports = _package_imports()
    imports["engine"] = imports["engine"] | {"catalogue"}
    imports["lift"] = imports["lift"] | {"simulation"}
    assert _stage_violations(STAGES, imports) == [
        "engine (decide) imports catalogue (claim)",
        "lift (lift) imports simulation (obligations)",
    ]
