"""The fast scans against the step loop (naive beside fast), under the tolerance model.

Bound: $|\\hat h - h| \\le \\gamma_n M + n\\eta$ with $M$ the loop on $|\\lambda|, |u|, |h_0|$ in float64 and
$n$ the roundings along one path (derived): the loop rounds twice per step (product, sum), so $2T$; the
chunked scan adds the block's cumulative product of $\\lambda$ ($\\ell$) and the fix-up (2); complex
products round twice as often (Higham, Lemma 3.5: $\\sqrt2\\gamma_2$ per complex product), so $n$ doubles.
"""

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st


def _bound(lam, u, h0, T, block, compare_dtype):
    from constructions.scan import block_size, scan_loop
    from constructions.tolerance import error_bound

    M, _ = scan_loop(lam.abs().to(torch.float64), u.abs().to(torch.float64), h0.abs().to(torch.float64))
    ell = block or block_size(max(T, 1))
    n = 2 * T + ell + 4
    if lam.is_complex() or u.is_complex():
        n *= 2
    return error_bound(M, n, compare_dtype)


@st.composite
def scan_case(draw):
    B = draw(st.integers(1, 3))
    T = draw(st.integers(0, 90))
    n = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["real", "zero-one", "complex", "varying", "tiny", "mixed"]))
    seed = draw(st.integers(0, 2**32 - 1))
    block = draw(st.sampled_from([None, 1, 2, 5, 16]))
    return B, T, n, kind, seed, block


def _draw(B, T, n, kind, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, T, n, generator=g, dtype=torch.float64)
    h0 = torch.randn(B, n, generator=g, dtype=torch.float64)
    if kind == "real":
        lam = torch.rand(n, generator=g, dtype=torch.float64) * 2.1 - 1.05
    elif kind == "zero-one":
        lam = (torch.rand(n, generator=g) < 0.5).to(torch.float64)
    elif kind == "tiny":
        lam = torch.full((n,), 1e-30, dtype=torch.float64)
    elif kind == "mixed":  # 0, 1 and general values side by side
        lam = torch.tensor([0.0, 1.0, -0.5, 0.999, -1.0, 0.25], dtype=torch.float64)[:n]
    elif kind == "complex":
        lam = torch.polar(
            torch.rand(n, generator=g, dtype=torch.float64) * 1.02,
            torch.rand(n, generator=g, dtype=torch.float64) * 6.3,
        )
        u = torch.complex(u, torch.randn(B, T, n, generator=g, dtype=torch.float64))
        h0 = h0.to(torch.complex128)
    else:  # input dependent, with exact zeros (resets)
        lam = torch.rand(B, T, n, generator=g, dtype=torch.float64) * 1.1
        lam = torch.where(lam < 0.15, torch.zeros_like(lam), lam)
    cdt = {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype]
    return tuple(t.to(cdt if t.is_complex() else dtype) for t in (lam, u, h0))


@given(scan_case())
@example((2, 64, 3, "zero-one", 0, None))
@example((1, 1, 1, "real", 1, None))
@example((1, 0, 2, "complex", 2, 3))
@example((3, 70, 4, "varying", 3, 16))
def test_chunked_scan_matches_loop(case):
    """float32 scan_chunked (and Hillis-Steele) against the float64 loop, states and final state."""
    from constructions.scan import scan_chunked, scan_loop, scan_parallel

    B, T, n, kind, seed, block = case
    lam, u, h0 = _draw(B, T, n, kind, seed, torch.float32)
    lam64, u64, h064 = _draw(B, T, n, kind, seed, torch.float64)
    ref, ref_last = scan_loop(lam64, u64, h064)
    bound = _bound(lam64, u64, h064, T, block, torch.float32)
    for name, (h, h_last) in (
        ("chunked", scan_chunked(lam, u, h0, block=block)),
        ("hillis-steele", scan_parallel(lam, u, h0)),
    ):
        assert h.shape == ref.shape and h_last.shape == ref_last.shape, name
        assert bool(torch.isfinite(torch.view_as_real(h) if h.is_complex() else h).all()), name
        err = (h.to(ref.dtype) - ref).abs()
        assert bool((err <= bound).all()), (name, kind, float((err / bound).max()))
        if T:
            assert bool(((h_last.to(ref.dtype) - ref_last).abs() <= bound[:, -1]).all()), name
        else:
            assert torch.equal(h_last, h0)


@given(st.integers(1, 3), st.integers(1, 200), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_zero_one_lambda_is_bit_identical_to_the_loop_in_float64(B, T, n, seed):
    """lambda in {0, 1}: a cumulative sum in the loop's order (float64 accumulates in float64: equal bit for
    bit; float32 on CPU accumulates in float64, so it is at least as accurate: covered by the bound above)."""
    from constructions.scan import scan_chunked, scan_loop

    lam, u, h0 = _draw(B, T, n, "zero-one", seed, torch.float64)
    a, a_last = scan_loop(lam, u, h0)
    b, b_last = scan_chunked(lam, u, h0)
    assert torch.equal(a, b) and torch.equal(a_last, b_last)


def test_lambda_zero_forgets_huge_state_without_nan():
    """lambda = 0 resets exactly, whatever the state: no 0 * inf products, no division."""
    from constructions.scan import scan_chunked

    lam = torch.zeros(1, 40, 2)
    lam[:, 20] = 1.0  # a single carry in the middle of a block
    u = torch.ones(1, 40, 2)
    h0 = torch.full((1, 2), 3e38)
    h, _ = scan_chunked(lam, u, h0, block=7)
    assert bool(torch.isfinite(h).all())
    assert torch.equal(h[0, :, 0], torch.tensor([1.0] * 20 + [2.0] + [1.0] * 19))


def test_gradients_match_the_loop():
    from constructions.scan import scan_chunked, scan_loop

    g = torch.Generator().manual_seed(0)
    lam = (torch.rand(2, 33, 3, generator=g, dtype=torch.float64) * 0.9).requires_grad_()
    u = torch.randn(2, 33, 3, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 33, 3, generator=g, dtype=torch.float64)
    grads = []
    for fn in (scan_loop, lambda *a: scan_chunked(*a, block=5)):
        h, last = fn(lam, u, h0)
        grads.append(torch.autograd.grad((h * w).sum() + last.sum(), (lam, u, h0)))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_comparison_can_fail():
    """Power check: a scan that drops the carry between blocks is rejected by the same bound."""
    from constructions.scan import scan_chunked, scan_loop

    lam, u, h0 = _draw(2, 50, 3, "real", 7, torch.float64)
    ref, _ = scan_loop(lam, u, h0)
    broken = torch.cat([scan_chunked(lam, u[:, :25], h0)[0], scan_chunked(lam, u[:, 25:], h0 * 0)[0]], dim=1)
    assert not bool(((broken - ref).abs() <= _bound(lam, u, h0, 50, None, torch.float32)).all())


def test_bad_arguments():
    from constructions.scan import scan, scan_chunked

    lam, u, h0 = torch.ones(2), torch.ones(1, 4, 2), torch.zeros(1, 2)
    with pytest.raises(ValueError, match="mode"):
        scan(lam, u, h0, "fast")
    with pytest.raises(ValueError, match="block"):
        scan_chunked(torch.full((2,), 0.5), u, h0, block=0)
