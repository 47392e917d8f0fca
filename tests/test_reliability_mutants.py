"""Tests that kill mutants of the code (mutmut; docs/reliability.md): exact values, boundaries and error paths
of constructions/lsa.py, rnn.py, scan.py, attention.py, _validation.py, invariances.py and
equivalence/tolerance.py. Each assertion pins a value a plausible one-token mutation (operator, constant,
comparison, argument) would change."""

import math

import pytest
import torch


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _rnn(n=4, d=2, m=3, d_out=2, lam=None, seed=0):
    from constructions import GatedLinearRNN

    g = _g(seed)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    lam = torch.tensor([1.0, 0.5, 0.0, -0.75][:n], dtype=torch.float64) if lam is None else lam
    return GatedLinearRNN(w(n, d + 1), w(n, d + 1), lam, w(m, n), w(m, n), w(d_out, m))


# -- equivalence/tolerance.py
# ---------------------------------------------------------------------------------
def test_unit_roundoff_values():
    from constructions.tolerance import unit_roundoff

    assert unit_roundoff(torch.float64) == 2.0**-53
    assert unit_roundoff(torch.float32) == 2.0**-24
    assert unit_roundoff(torch.float16) == 2.0**-11
    assert unit_roundoff(torch.bfloat16) == 2.0**-8
    assert unit_roundoff(torch.complex64) == 2.0**-24
    assert unit_roundoff(torch.complex128) == 2.0**-53
    with pytest.raises(TypeError, match="floating"):
        unit_roundoff(torch.int32)


def test_gamma_and_error_bound_exact():
    from constructions.tolerance import error_bound, gamma

    u = 2.0**-24
    assert gamma(3, u) == 3 * u / (1 - 3 * u)
    assert gamma(0, u) == 0.0
    assert gamma(2**23, u) == (2**23 * u) / (1 - 2**23 * u)  # nu = 1/2: finite
    assert math.isinf(gamma(2**24, u)) and math.isinf(gamma(2**25, u))
    with pytest.raises(ValueError, match="n must be >= 0"):
        gamma(-1, u)
    M = torch.tensor([2.0, -3.0], dtype=torch.float64)
    b = error_bound(M, 3, torch.float32)
    tiny = torch.finfo(torch.float32).tiny
    assert torch.equal(
        b, torch.tensor([gamma(3, u) * 2 + 3 * tiny, gamma(3, u) * 3 + 3 * tiny], dtype=torch.float64)
    )
    assert b.dtype == torch.float64
    bc = error_bound(torch.tensor([1.0]), 2, torch.complex128)
    assert float(bc) == gamma(2, 2.0**-53) + 2 * torch.finfo(torch.float64).tiny
    # the underflow term n * eta, alone where M = 0: eta of the working dtype (float64's for complex128)
    z = torch.zeros(1, dtype=torch.float64)
    assert float(error_bound(z, 3, torch.float32)) == 3 * torch.finfo(torch.float32).tiny
    assert float(error_bound(z, 3, torch.float16)) == 3 * torch.finfo(torch.float16).tiny
    assert float(error_bound(z, 5, torch.complex128)) == 5 * torch.finfo(torch.float64).tiny


def test_path_lengths_exact():
    from constructions.tolerance import lsa_path_length, rnn_path_length

    assert lsa_path_length(10, 3, 2, 4, 2) == 3 + 4 + 2 + 10 + 1 + 8
    assert lsa_path_length(10, 3, 2, 4, 2, has_W_O=False) == 3 + 4 + 2 + 10 + 1
    # the recurrence: unknown real lambda (default) multiplies then adds every step: 2T; lambda in {0, 1}: T
    assert rnn_path_length(10, 3, 5, 7) == 4 + 1 + 2 * 10 + 5 + 1 + 7 + 4
    assert rnn_path_length(10, 3, 5, 7, lam="zero-one") == 4 + 1 + 10 + 5 + 1 + 7 + 4
    assert rnn_path_length(10, 3, 5, 7, construction_depth=6, lam="zero-one") == 32 + 6


def test_compare_values_boundary_and_messages():
    from constructions.tolerance import compare, error_bound

    ref = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=torch.float64)
    M = torch.tensor([[[1.0, 8.0], [8.0, 1.0]]], dtype=torch.float64)
    n = 4
    bound = error_bound(M, n, torch.float64)
    cand = ref.clone()
    cand[0, 1, 0] = 3 + 8 * 2.0**-51  # error 2^-48, just under gamma_4 * 8
    cand[0, 0, 1] = 2 + 2 * 2.0**-51  # error 2^-50: a quarter of the bound
    err = (cand - ref).abs()
    res = compare(cand, ref, M, n=n, dtype=torch.float64)
    assert res.passed and bool(res) and "within" in res.message
    assert res.worst_index == (0, 1, 0) and 0.99 < res.ratio <= 1.0
    assert res.n == n and res.unit_roundoff == 2.0**-53 and res.dtype == "torch.float64"
    assert res.bound_at_worst == float(bound[0, 1, 0])
    assert res.ratio == float((err / bound).max())
    exp_rms = float(err.pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
    assert abs(res.rel_rms - exp_rms) <= 1e-12 * exp_rms
    assert res.max_abs_error == 2.0**-48
    assert f"gamma_{n}" in res.message and "u = 1.110e-16" in res.message
    d = res.to_dict()
    assert d["worst_index"] == [0, 1, 0] and d["passed"] is True
    res.raise_if_failed()
    cand[0, 1, 1] = 4 + 3 * 2.0**-50  # error 3 * 2^-50 against gamma_4 * 1 ~ 2^-51: ratio ~ 6
    bad = compare(cand, ref, M, n=n, dtype=torch.float64, label="cand")
    assert not bad.passed and not bool(bad) and bad.worst_index == (0, 1, 1) and "cand EXCEEDS" in bad.message
    assert 5.9 < bad.ratio < 6.1
    with pytest.raises(AssertionError, match="EXCEEDS"):
        bad.raise_if_failed()
    # the candidate's own dtype is the default working precision
    assert compare(ref.float(), ref, M, n=n).unit_roundoff == 2.0**-24
    # zero reference: rel_rms falls back to the absolute rms
    z = torch.zeros(1, 1, 2, dtype=torch.float64)
    r0 = compare(z + torch.tensor([0.0, 1e-30], dtype=torch.float64), z, torch.ones_like(z), n=2)
    assert r0.rel_rms == float(torch.tensor([0.0, 1e-30], dtype=torch.float64).pow(2).mean().sqrt())


def test_compare_non_finite_and_errors():
    from constructions.tolerance import compare

    y = torch.zeros(2, 3, 2, dtype=torch.float64)
    bad = y.clone()
    bad[1, 2, 0] = float("nan")
    bad[1, 2, 1] = float("inf")
    for args, name in (
        ((bad, y, y + 1), "candidate"),
        ((y, bad, y + 1), "reference"),
        ((y, y, bad), "magnitude"),
    ):
        r = compare(*args, n=3)
        assert (
            r.passed is False
            and r.worst_index == (1, 2, 0)
            and r.message.startswith(name)
            and math.isinf(r.ratio)
        )
        assert math.isnan(r.max_abs_error) and math.isnan(r.bound_at_worst) and math.isnan(r.rel_rms)
        assert (r.n, r.unit_roundoff, r.dtype) == (3, 2.0**-53, "torch.float64") and bool(r) is False
    empty = compare(torch.zeros(1, 0, 2), torch.zeros(1, 0, 2), torch.zeros(1, 0, 2), n=7)
    assert empty.passed is True and empty.message == "empty outputs (T=0): equal"
    assert (empty.max_abs_error, empty.ratio, empty.bound_at_worst, empty.worst_index, empty.rel_rms) == (
        0.0,
        0.0,
        0.0,
        (),
        0.0,
    )
    assert (empty.n, empty.unit_roundoff, empty.dtype) == (7, 2.0**-24, "torch.float32")
    # the pass/fail boundary: with M = 0 and n = 1 the bound is exactly eta = 2^-1022
    eta = torch.finfo(torch.float64).tiny
    z = torch.zeros(1, 1, 1, dtype=torch.float64)
    on = compare(z + eta, z, z, n=1)
    assert on.ratio == 1.0 and on.passed  # ratio <= 1 passes
    over = compare(z + 1.5 * eta, z, z, n=1)
    assert over.ratio == 1.5 and not over.passed
    assert on.message.startswith("candidate within the error bound")
    assert over.message.startswith("candidate EXCEEDS the error bound")
    # rel_rms is relative to rms(reference) also when that rms is below 1
    half = compare(z + 0.5 + 2.0**-40, z + 0.5, z + 1, n=1)
    assert half.rel_rms == 2.0**-40 / 0.5
    with pytest.raises(TypeError, match="^compare takes torch tensors"):
        compare([1.0], y, y, n=1)
    with pytest.raises(ValueError, match="shapes differ"):
        compare(y, y, torch.zeros(2, 3, 1), n=1)
    c = compare(
        torch.ones(1, 1, 1, dtype=torch.complex128),
        torch.ones(1, 1, 1, dtype=torch.float64),
        torch.ones(1, 1, 1, dtype=torch.float64),
        n=1,
    )
    assert c.passed and c.max_abs_error == 0.0


# -- constructions/lsa.py
# ---------------------------------------------------------------------------------------
def test_layouts_and_counts_exact():
    from constructions.lsa import compressed_layout, direct_layout, num_neurons_compressed, num_neurons_direct

    neurons, gates = direct_layout(2, 2, 1)
    assert neurons == [
        "kv[0,0,0]",
        "kv[0,0,1]",
        "kv[1,0,0]",
        "kv[1,0,1]",
        "q[0,0]",
        "q[0,1]",
        "q[1,0]",
        "q[1,1]",
    ]
    assert gates == ["g[0,0,0]", "g[0,0,1]", "g[1,0,0]", "g[1,0,1]"]
    neurons, gates = compressed_layout(2, 2)
    assert neurons == ["s[0,0]", "s[0,1]", "s[1,1]", "x[0]", "x[1]"]
    assert gates == ["g[0,0]", "g[0,1]", "g[1,0]", "g[1,1]"]
    assert (
        num_neurons_direct(2, 3, 4) == 30
        and num_neurons_compressed(4) == 14
        and num_neurons_compressed(1) == 2
    )


def _lsa(H=2, d=3, d_k=2, d_v=2, d_out=4, seed=0):
    from constructions import LinearSelfAttention

    g = _g(seed)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    return LinearSelfAttention(w(H, d_k, d), w(H, d_k, d), w(H, d_v, d), w(d_out, H * d_v) if d_out else None)


def test_direct_weights_structure_exact():
    from constructions.lsa import direct_weights

    lsa = _lsa(H=2, d=3, d_k=2, d_v=2, d_out=None)
    A, B, lam, C, E, D = direct_weights(lsa.W_Q, lsa.W_K, lsa.W_V, None)
    n_kv = 2 * 2 * 2
    assert torch.equal(lam, torch.tensor([1.0] * n_kv + [0.0] * 4, dtype=torch.float64))
    # kv[h,i,j] = (h*d_v + i)*d_k + j gets A = W_V[h,i], B = W_K[h,j]; constant column unused
    assert torch.equal(A[(1 * 2 + 1) * 2 + 0, :3], lsa.W_V[1, 1]) and torch.equal(
        B[(1 * 2 + 1) * 2 + 0, :3], lsa.W_K[1, 0]
    )
    assert float(A[:n_kv, 3].abs().sum()) == 0 and float(B[:n_kv, 3].abs().sum()) == 0
    # q[h,j] = n_kv + h*d_k + j: A = W_Q[h,j], B = constant 1
    assert torch.equal(A[n_kv + 1 * 2 + 1, :3], lsa.W_Q[1, 1]) and float(B[n_kv + 3, 3]) == 1.0
    assert float(B[n_kv:, :3].abs().sum()) == 0
    assert torch.equal(C, torch.eye(n_kv, n_kv + 4, dtype=torch.float64))
    assert E[5].nonzero().tolist() == [[n_kv + 1 * 2 + 1]]  # g[1,0,1] reads q[1,1]
    assert D.shape == (4, n_kv) and D[2].nonzero()[:, 0].tolist() == [4, 5]  # output row h*d_v+i = 2 sums j


def test_compressed_weights_structure_exact():
    from constructions.lsa import compressed_weights

    lsa = _lsa(H=1, d=2, d_k=1, d_v=1, d_out=None)
    A, B, lam, C, E, D = compressed_weights(lsa.W_Q, lsa.W_K, lsa.W_V, None)
    assert torch.equal(lam, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert A[:3].argmax(1).tolist() == [0, 0, 1] and B[:3].argmax(1).tolist() == [0, 1, 1]
    assert torch.equal(A[3:, :2], torch.eye(2, dtype=torch.float64)) and torch.equal(
        B[3:, 2], torch.ones(2, dtype=torch.float64)
    )
    P = lsa.W_V[0]  # [1, 2]
    Q = lsa.W_K[0].T @ lsa.W_Q[0]  # [2, 2]
    T = P[:, :, None, None] * Q[None, None]
    # gate g[0,c] = sum_{a<=b} T'[0,ab,c] s[a,b]: the off-diagonal pair is folded twice, the diagonal once
    for c in range(2):
        assert torch.allclose(
            C[c, :3], torch.stack([T[0, 0, 0, c], T[0, 0, 1, c] + T[0, 1, 0, c], T[0, 1, 1, c]])
        )
        assert E[c].nonzero().tolist() == [[3 + c]]
    assert torch.equal(D, torch.ones(1, 2, dtype=torch.float64))


def test_attention_tensor_exact_and_symmetric():
    from constructions.lsa import attention_tensor

    lsa = _lsa()
    P, Q = lsa.head_products()
    T = torch.einsum("hoa,hbc->oabc", P, Q)
    S = attention_tensor(lsa)
    assert torch.allclose(S, (T + T.transpose(1, 2)) / 2, rtol=0, atol=0)
    assert torch.equal(S, S.transpose(1, 2)) and not torch.equal(S, S.transpose(1, 3))
    x = torch.randn(2, 6, 3, generator=_g(1), dtype=torch.float64)
    # y_{t,o} = sum_{s<=t} sum_{abc} S_oabc x_{s,a} x_{s,b} x_{t,c}: the tensor determines the function
    mem = torch.einsum("nsa,nsb->nsab", x, x).cumsum(1)
    y = torch.einsum("oabc,ntab,ntc->nto", S, mem, x)
    assert torch.allclose(y, lsa(x), rtol=1e-12, atol=1e-12)


def test_lsa_to_rnn_method_choice_and_errors():
    from constructions import lsa_to_rnn

    small_d = _lsa(H=3, d=2, d_k=4, d_v=4)  # direct 60 > compressed 5
    assert lsa_to_rnn(small_d, "auto").num_neurons == 5
    tie = _lsa(H=1, d=2, d_k=1, d_v=4)  # direct 5 == compressed 5: ties go to direct
    assert torch.equal(lsa_to_rnn(tie, "auto").lam, lsa_to_rnn(tie, "direct").lam)
    with pytest.raises(ValueError, match="method must be one of"):
        lsa_to_rnn(tie, "fast")
    with pytest.raises(TypeError, match="LinearSelfAttention"):
        lsa_to_rnn("lsa")


def test_rnn_to_lsa_round_trip_and_structure_errors():
    from constructions import GatedLinearRNN, lsa_to_rnn, rnn_to_lsa
    from constructions.lsa import attention_tensor

    lsa = _lsa(H=2, d=3, d_k=2, d_v=2, d_out=None)
    for method in ("direct", "compressed"):
        back = rnn_to_lsa(lsa_to_rnn(lsa, method))
        assert torch.allclose(attention_tensor(back), attention_tensor(lsa), atol=1e-10)
    assert rnn_to_lsa(lsa_to_rnn(lsa, "direct")).heads == 2
    rnn = lsa_to_rnn(lsa)
    w = {k: v.detach().clone() for k, v in rnn.weights()._asdict().items()}
    w["lam"][0] = 0.5
    with pytest.raises(ValueError, match=r"neurons \[0\] have lambda"):
        rnn_to_lsa(GatedLinearRNN(**w))
    with pytest.raises(TypeError):
        rnn_to_lsa(lsa)


# -- constructions/scan.py
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 3, 5, 16, 17, 40])
def test_scans_agree_with_the_loop(T):
    from constructions.scan import block_size, scan, scan_chunked, scan_loop, scan_parallel

    g = _g(T)
    u = torch.randn(2, T, 5, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, 5, generator=g, dtype=torch.float64)
    for lam in (
        torch.tensor([1.0, 0.0, 0.5, -0.9, 1.0], dtype=torch.float64),
        torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64),
        torch.rand(2, T, 5, generator=g, dtype=torch.float64),
    ):
        ref, last = scan_loop(lam, u, h0)
        for f in (scan_parallel, scan_chunked, lambda *a: scan(*a, "parallel"), lambda *a: scan(*a, "auto")):
            h, hl = f(lam, u, h0)
            assert torch.allclose(h, ref, rtol=1e-13, atol=1e-13) and torch.allclose(
                hl, last, rtol=1e-13, atol=1e-13
            )
        for blk in (1, 2, 3, 7):
            h, _ = scan_chunked(lam, u, h0, block=blk)
            assert torch.allclose(h, ref, rtol=1e-13, atol=1e-13)
    lam01 = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    for f in (scan_parallel, scan_chunked):  # lambda in {0, 1}: the masked cumsum adds in the loop's order
        assert torch.equal(f(lam01, u, h0)[0], scan_loop(lam01, u, h0)[0])
        assert torch.equal(
            f(torch.ones(5, dtype=torch.float64), u, h0)[0],
            scan_loop(torch.ones(5, dtype=torch.float64), u, h0)[0],
        )
    assert block_size(1) == 1 and block_size(16) == 4 and block_size(17) == 4 and block_size(30) == 5
    with pytest.raises(ValueError, match="block"):
        scan_chunked(torch.tensor([0.5] * 5, dtype=torch.float64), u, h0, block=0)
    with pytest.raises(ValueError, match="mode"):
        scan(lam, u, h0, "sideways")


def test_scan_edge_cases_exact():
    from constructions.scan import scan_chunked, scan_loop, scan_parallel

    u = torch.arange(1.0, 7.0, dtype=torch.float64).reshape(1, 6, 1)
    h0 = torch.tensor([[10.0]], dtype=torch.float64)
    one = torch.tensor([1.0], dtype=torch.float64)
    for f in (scan_loop, scan_parallel, scan_chunked):
        h, last = f(one, u, h0)
        assert h[0, :, 0].tolist() == [11.0, 13.0, 16.0, 20.0, 25.0, 31.0] and float(last) == 31.0
        h, last = f(torch.tensor([0.0], dtype=torch.float64), u, h0)
        assert h[0, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        h, last = f(torch.tensor([0.5], dtype=torch.float64), u, h0)
        assert h[0, :, 0].tolist() == [6.0, 5.0, 5.5, 6.75, 8.375, 10.1875]
        e, el = f(one, u[:, :0], h0)
        assert e.shape == (1, 0, 1) and torch.equal(el, h0)
    g = torch.ones(1, 6, 1, dtype=torch.float64, requires_grad=True)
    h, _ = scan_chunked(torch.tensor([0.5], dtype=torch.float64), u * g, h0)
    h.sum().backward()
    assert g.grad is not None and float(g.grad.abs().sum()) > 0


# -- constructions/rnn.py, attention.py, _validation.py
# ---------------------------------------------------------
def test_rnn_sizes_repr_and_validation():
    from constructions import GatedLinearRNN

    rnn = _rnn()
    assert (rnn.num_neurons, rnn.d, rnn.num_gates, rnn.d_out, rnn.is_complex) == (4, 2, 3, 2, False)
    assert "d=2, n=4, m=3, d_out=2, lambda=real" in rnn.extra_repr()
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    y, h = rnn(x, return_state=True)
    assert y.shape == (2, 5, 2) and h.shape == (2, 4)
    with pytest.raises(ValueError, match="state must have shape"):
        rnn(x, torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="mode must be"):
        rnn(x, mode="fast")
    with pytest.raises(ValueError, match="expected d=2"):
        rnn(torch.zeros(1, 2, 3))
    with pytest.raises(TypeError, match="integer"):
        rnn(torch.zeros(1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="non-finite"):
        rnn(torch.full((1, 2, 2), float("nan")))
    w = {k: v.detach() for k, v in rnn.weights()._asdict().items()}
    with pytest.raises(ValueError, match="A and B"):
        GatedLinearRNN(**{**w, "B": w["B"][:, :2]})
    with pytest.raises(ValueError, match="d\\+1 >= 2"):
        GatedLinearRNN(**{**w, "A": w["A"][:, :1], "B": w["B"][:, :1]})
    with pytest.raises(ValueError, match="C and E"):
        GatedLinearRNN(**{**w, "E": w["E"][:2]})
    with pytest.raises(ValueError, match="C has 3 columns"):
        GatedLinearRNN(**{**w, "C": w["C"][:, :3], "E": w["E"][:, :3]})
    with pytest.raises(ValueError, match="D has"):
        GatedLinearRNN(**{**w, "D": w["D"][:, :2]})
    with pytest.raises(ValueError, match="exactly one of lam"):
        GatedLinearRNN(**{**w, "lam": None})
    with pytest.raises(ValueError, match="lam has 3 entries"):
        GatedLinearRNN(**{**w, "lam": w["lam"][:3]})
    with pytest.raises(ValueError, match="non-finite"):
        GatedLinearRNN(**{**w, "lam": torch.tensor([1.0, float("inf"), 0.0, 0.0], dtype=torch.float64)})


def test_rnn_decay_validation_and_overflow_warning():
    from constructions import GatedLinearRNN
    from constructions.rnn import NumericalHazardWarning

    w = {k: v.detach() for k, v in _rnn().weights()._asdict().items()}
    x = torch.randn(1, 4, 2, dtype=torch.float64)
    ok = GatedLinearRNN(
        **{**w, "lam": None},
        decay=lambda x: torch.exp(torch.full((*x.shape[:2], 4), -math.inf, dtype=x.dtype)),
    )
    assert torch.isfinite(ok(x)).all()  # log-space gate -inf -> lambda 0: fine
    with pytest.raises(ValueError, match="decay\\(x\\) must return lambda_t of shape"):
        GatedLinearRNN(**{**w, "lam": None}, decay=lambda x: torch.zeros(3))(x)
    with pytest.raises(ValueError, match="non-finite"):
        GatedLinearRNN(**{**w, "lam": None}, decay=lambda x: torch.full((*x.shape[:2], 4), math.nan))(x)
    grow = GatedLinearRNN(**{**w, "lam": torch.tensor([1.0, 4.0, 0.0, 0.5], dtype=torch.float64)})
    with pytest.warns(NumericalHazardWarning, match=r"\|lambda\| > 1: \[1\].*final state is Inf/NaN: \[1\]"):
        y = grow(torch.ones(1, 700, 2, dtype=torch.float64))
    from constructions.tolerance import compare

    assert not compare(y, y, torch.ones_like(y), n=1).passed  # NaN == NaN never passes


def test_attention_validation_and_paths():
    from constructions import LinearSelfAttention

    lsa = _lsa()
    assert (lsa.heads, lsa.d, lsa.d_k, lsa.d_v, lsa.d_out) == (2, 3, 2, 2, 4)
    assert "heads=2, d=3, d_k=2, d_v=2, d_out=4" in lsa.extra_repr()
    assert _lsa(d_out=None).d_out == 4
    x = torch.randn(2, 9, 3, generator=_g(2), dtype=torch.float64)
    assert torch.allclose(lsa(x), lsa.forward_recurrent(x), rtol=1e-12, atol=1e-12)
    # y_1 (first step) = W_O concat_h( v_1 (k_1 . q_1) )
    q = torch.einsum("hkd,d->hk", lsa.W_Q, x[0, 0])
    k = torch.einsum("hkd,d->hk", lsa.W_K, x[0, 0])
    v = torch.einsum("hvd,d->hv", lsa.W_V, x[0, 0])
    y1 = lsa.W_O @ (v * (k * q).sum(-1, keepdim=True)).reshape(-1)
    assert torch.allclose(lsa(x)[0, 0], y1, rtol=1e-12, atol=1e-12)
    assert lsa(x[:, :0]).shape == (2, 0, 4) and lsa.forward_recurrent(x[:, :0]).shape == (2, 0, 4)
    w = torch.zeros(1, 2, 3)
    for args, exc, msg in (
        ((w, torch.zeros(1, 3, 3), w), ValueError, "same shape"),
        ((w, w, torch.zeros(2, 2, 3)), ValueError, "H=2"),
        ((w, w, torch.zeros(1, 2, 4)), ValueError, "d=4"),
        ((w, w, w, torch.zeros(2, 3)), ValueError, "H\\*d_v"),
        ((w, w, w.double()), TypeError, "one dtype"),
        ((w.int(), w, w), TypeError, "floating"),
        ((torch.zeros(0, 2, 3), torch.zeros(0, 2, 3), torch.zeros(0, 2, 3)), ValueError, "positive"),
    ):
        with pytest.raises(exc, match=msg):
            LinearSelfAttention(*args)
    with pytest.raises(ValueError, match="d=2"):
        lsa(torch.zeros(1, 2, 2, dtype=torch.float64))


def test_validation_helpers():
    from constructions import _validation as v

    assert v.require_positive_int("k", 3) == 3 and v.require_positive_int("k", 0, minimum=0) == 0
    with pytest.raises(TypeError):
        v.require_positive_int("k", True)
    with pytest.raises(ValueError, match=">= 1"):
        v.require_positive_int("k", 0)
    assert v.require_finite_float("c", 2) == 2.0
    with pytest.raises(ValueError, match="finite"):
        v.require_finite_float("c", math.inf)
    with pytest.raises(TypeError):
        v.require_finite_float("c", "2")
    with pytest.raises(ValueError, match=r"2 non-finite value\(s\).*first at index \(0, 1\)"):
        v.require_finite("w", torch.tensor([[0.0, math.nan, math.inf]]))
    with pytest.raises(TypeError, match="dense"):
        v.require_tensor("w", torch.zeros(2, 2).to_sparse())
    with pytest.raises(TypeError, match="torch.as_tensor"):
        v.require_tensor("w", __import__("numpy").zeros(2))


# -- constructions/invariances.py
# ---------------------------------------------------------------------------------
def test_invariance_maps_exact():
    from constructions import invariances as inv

    rnn = _rnn()
    A, B, lam, C, E, D = (w.detach() for w in rnn.weights())
    p = torch.tensor([2, 0, 3, 1])
    r = inv.permute_neurons(rnn, p)
    assert torch.equal(r.A, A[p]) and torch.equal(r.B, B[p]) and torch.equal(r.lam, lam[p])
    assert torch.equal(r.C, C[:, p]) and torch.equal(r.E, E[:, p]) and torch.equal(r.D, D)
    q = torch.tensor([1, 2, 0])
    r = inv.permute_gates(rnn, q)
    assert (
        torch.equal(r.C, C[q])
        and torch.equal(r.E, E[q])
        and torch.equal(r.D, D[:, q])
        and torch.equal(r.A, A)
    )
    r = inv.rescale_input_branch(rnn, 1, 2.0)
    assert torch.equal(r.A[1], 2 * A[1]) and torch.equal(r.B[1], B[1] / 2) and torch.equal(r.A[0], A[0])
    r = inv.rescale_neuron(rnn, 2, 4.0)
    assert (
        torch.equal(r.A[2], 4 * A[2])
        and torch.equal(r.C[:, 2], C[:, 2] / 4)
        and torch.equal(r.E[:, 2], E[:, 2] / 4)
    )
    assert torch.equal(r.B, B)
    r = inv.rescale_output_branches(rnn, 0, 2.0, 4.0)
    assert (
        torch.equal(r.C[0], 2 * C[0])
        and torch.equal(r.E[0], 4 * E[0])
        and torch.equal(r.D[:, 0], D[:, 0] / 8)
    )
    r = inv.swap_input_branches(rnn, 3)
    assert torch.equal(r.A[3], B[3]) and torch.equal(r.B[3], A[3]) and torch.equal(r.A[0], A[0])
    r = inv.swap_output_branches(rnn, 1)
    assert torch.equal(r.C[1], E[1]) and torch.equal(r.E[1], C[1])
    x = torch.randn(2, 7, 2, generator=_g(5), dtype=torch.float64)
    for other in (
        inv.permute_neurons(rnn, p),
        inv.permute_gates(rnn, q),
        inv.rescale_input_branch(rnn, 1, 3.0),
        inv.rescale_neuron(rnn, 2, -3.0),
        inv.rescale_output_branches(rnn, 0, 3.0, 0.7),
        inv.swap_input_branches(rnn, 3),
        inv.swap_output_branches(rnn, 1),
    ):
        assert torch.allclose(other(x), rnn(x), rtol=1e-12, atol=1e-12)
    for bad in ([0, 0, 1, 2], [0, 1, 2], [0, 1, 2, 4]):
        with pytest.raises(ValueError, match="permutation of range\\(4\\)"):
            inv.permute_neurons(rnn, torch.tensor(bad))
    for f in (
        lambda: inv.rescale_input_branch(rnn, 0, 0),
        lambda: inv.rescale_neuron(rnn, 0, 0),
        lambda: inv.rescale_output_branches(rnn, 0, 1.0, 0),
        lambda: inv.rescale_output_branches(rnn, 0, 0, 1.0),
    ):
        with pytest.raises(ValueError, match="non-zero"):
            f()
    cr = _rnn(
        lam=torch.polar(
            torch.ones(4, dtype=torch.float64), torch.tensor([0.1, 1.0, 2.0, 3.0], dtype=torch.float64)
        )
    )
    cr = type(cr)(*(w.detach().to(torch.complex128) for w in cr.weights()))
    conj = inv.conjugate(cr)
    assert torch.equal(conj.lam, cr.lam.conj()) and torch.allclose(conj(x), cr(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="real readout"):
        inv.conjugate(type(cr)(*cr.weights(), real_output=False))
