"""Killing tests for `constructions/scan.py` (mutation testing, docs/reliability.md): the dispatcher's default
and its choice of path, and dtype promotion of mixed inputs."""

import pytest
import torch

F64 = torch.float64


def _case(T, dtype=F64, n=3, B=2):
    g = torch.Generator().manual_seed(T)
    lam = torch.rand(n, generator=g, dtype=F64).to(dtype)
    u = torch.randn(B, T, n, generator=g, dtype=F64)
    h0 = torch.randn(B, n, generator=g, dtype=F64)
    return lam, u, h0


def test_default_mode_is_auto():
    from constructions.scan import scan

    lam, u, h0 = _case(5)
    h, last = scan(lam, u, h0)
    h_auto, last_auto = scan(lam, u, h0, mode="auto")
    assert torch.equal(h, h_auto) and torch.equal(last, last_auto)


@pytest.mark.parametrize(
    ("mode", "T", "path"),
    [
        ("auto", 0, "loop"),
        ("auto", 1, "loop"),
        ("auto", 2, "loop"),
        ("auto", 3, "chunked"),
        ("auto", 64, "chunked"),
        ("loop", 64, "loop"),
        ("parallel", 1, "chunked"),
        ("parallel", 2, "chunked"),
        ("parallel", 64, "chunked"),
    ],
)
def test_dispatch_picks_the_documented_path(monkeypatch, mode, T, path):
    from constructions import scan as S

    called = []
    loop, chunked = S.scan_loop, S.scan_chunked
    monkeypatch.setattr(S, "scan_loop", lambda *a, **k: called.append("loop") or loop(*a, **k))
    monkeypatch.setattr(S, "scan_chunked", lambda *a, **k: called.append("chunked") or chunked(*a, **k))
    lam, u, h0 = _case(T)
    S.scan(lam, u, h0, mode=mode)
    assert called == [path]


def test_mixed_dtypes_are_promoted():
    """float32 lambda, float64 inputs: the chunked scan works in float64, like the loop on promoted inputs."""
    from constructions.scan import scan_chunked, scan_loop
    from constructions.tolerance import compare, recurrence_path_length

    lam32, u, h0 = _case(37, dtype=torch.float32)
    h, last = scan_chunked(lam32, u, h0, block=8)
    assert h.dtype == F64 and last.dtype == F64
    h_ref, _ = scan_loop(lam32.to(F64), u, h0)
    # both round in float64; the model bound covers both paths' roundings (gamma_n M, docs/tolerance.md)
    M, _ = scan_loop(lam32.to(F64).abs(), u.abs(), h0.abs())
    n = recurrence_path_length(37, "real", mode="parallel", block=8) + recurrence_path_length(
        37, "real", mode="loop"
    )
    res = compare(h, h_ref, M, n=n, dtype=F64)
    assert res.passed, res.message
    lam, u32, h032 = _case(37)
    h2, _ = scan_chunked(lam, u32.float(), h032.float(), block=8)
    assert h2.dtype == F64


def test_gradient_through_u_alone_matches_the_loop():
    """Only ``u`` requires a gradient (lam and h0 are constants): the chunked scan must still be
    differentiable."""
    from constructions.scan import scan_chunked, scan_loop
    from constructions.tolerance import compare, recurrence_path_length

    lam, u, h0 = _case(19)
    u1, u2 = u.clone().requires_grad_(True), u.clone().requires_grad_(True)
    h, _ = scan_chunked(lam, u1, h0, block=4)
    h.sum().backward()
    scan_loop(lam, u2, h0)[0].sum().backward()
    assert u1.grad is not None
    # d sum(h) / d u_t = sum_{s >= t} prod lam: a reversed recurrence, judged by the model bound
    M = scan_loop(lam.abs(), u2.grad.abs().flip(1), torch.zeros_like(h0))[0].flip(1) + u2.grad.abs()
    res = compare(u1.grad, u2.grad, M, n=2 * recurrence_path_length(19, "real", mode="loop"), dtype=F64)
    assert res.passed, res.message
