"""Mutation-testing kills for constructions/attention.py (docs/reliability.md, "Mutation testing").

Full error messages, every size property with distinct sizes, dtype promotion, batch != heads (a memory
``S`` allocated without its batch axis broadcasts wrongly) and a ``meta`` *default* device as a stand-in
for a second device on CPU-only machines (a tensor created without ``device=`` would land on ``meta``)."""

import pytest
import torch

TAIL = " (integer and boolean tensors are not accepted: cast with .to(torch.float64))"


def _w(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _lsa(H=2, d_k=3, d_v=4, d=5, d_out=6, dtype=torch.float64):
    from constructions import LinearSelfAttention

    W_O = None if d_out is None else _w(d_out, H * d_v, seed=4, dtype=dtype)
    return LinearSelfAttention(
        _w(H, d_k, d, seed=1, dtype=dtype),
        _w(H, d_k, d, seed=2, dtype=dtype),
        _w(H, d_v, d, seed=3, dtype=dtype),
        W_O,
    )


def _msg(exc_type, f, *args):
    with pytest.raises(exc_type) as info:
        f(*args)
    return str(info.value)


def test_sizes_repr_and_buffers():
    lsa = _lsa()
    assert (lsa.heads, lsa.d_k, lsa.d_v, lsa.d, lsa.d_out) == (2, 3, 4, 5, 6)
    assert lsa.extra_repr() == "heads=2, d=5, d_k=3, d_v=4, d_out=6"
    plain = _lsa(d_out=None)
    assert plain.d_out == 8 and plain.W_O is None
    assert plain.extra_repr() == "heads=2, d=5, d_k=3, d_v=4, d_out=8"
    assert [k for k, _ in lsa.named_buffers()] == ["W_Q", "W_K", "W_V", "W_O"]
    assert [k for k, _ in plain.named_buffers()] == ["W_Q", "W_K", "W_V"]
    assert torch.equal(lsa.W_Q, _w(2, 3, 5, seed=1)) and torch.equal(lsa.W_K, _w(2, 3, 5, seed=2))
    assert torch.equal(lsa.W_V, _w(2, 4, 5, seed=3)) and torch.equal(lsa.W_O, _w(6, 8, seed=4))


def _loop_reference(lsa, x):
    """y_t = W_O concat_h( sum_{s<=t} v_s (k_s . q_t) ), written out with Python loops (float64)."""
    B, T, _ = x.shape
    ys = torch.zeros(B, T, lsa.heads * lsa.d_v, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            for h in range(lsa.heads):
                q = lsa.W_Q[h].double() @ x[b, t].double()
                acc = torch.zeros(lsa.d_v, dtype=torch.float64)
                for s in range(t + 1):
                    acc += (lsa.W_V[h].double() @ x[b, s].double()) * (
                        lsa.W_K[h].double() @ x[b, s].double() @ q
                    )
                ys[b, t, h * lsa.d_v : (h + 1) * lsa.d_v] = acc
    return ys if lsa.W_O is None else ys @ lsa.W_O.double().T


@pytest.mark.parametrize("d_out", [6, None])
def test_both_paths_equal_the_loop_with_batch_not_heads(d_out):
    lsa = _lsa(d_out=d_out)
    x = _w(3, 5, 5, seed=7)  # B = 3 != H = 2
    ref = _loop_reference(lsa, x)
    for y in (lsa(x), lsa.forward_recurrent(x)):
        assert y.shape == (3, 5, lsa.d_out) and y.dtype == torch.float64
        assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)
    one = _w(1, 4, 5, seed=8)  # B = 1
    assert torch.allclose(lsa.forward_recurrent(one), _loop_reference(lsa, one), rtol=1e-12, atol=1e-12)


def test_dtype_promotion_and_empty_sequences():
    lsa32 = _lsa(dtype=torch.float32)
    x64 = _w(2, 4, 5, seed=9)
    for f in (lsa32, lsa32.forward_recurrent):
        y = f(x64)
        assert y.dtype == torch.float64  # promote(x, W): float64, W cast up exactly
        assert torch.allclose(y, _loop_reference(lsa32, x64), rtol=1e-12, atol=1e-12)
    lsa64 = _lsa()
    x32 = x64.float()
    for f in (lsa64, lsa64.forward_recurrent):
        y = f(x32)
        assert y.dtype == torch.float64
        assert torch.allclose(y, _loop_reference(lsa64, x32.double()), rtol=1e-12, atol=1e-12)
    assert lsa32(x64.float()).dtype == torch.float32
    for f in (lsa64, lsa64.forward_recurrent):
        e = f(torch.zeros(3, 0, 5, dtype=torch.float64))
        assert e.shape == (3, 0, 6) and e.dtype == torch.float64
    e = _lsa(d_out=None).forward_recurrent(torch.zeros(2, 0, 5, dtype=torch.float32))
    assert e.shape == (2, 0, 8) and e.dtype == torch.float64


def test_causal_mask_is_inclusive():
    lsa = _lsa()
    x = _w(1, 6, 5, seed=10)
    y = lsa(x)
    for t in range(6):  # output t depends on x_{<=t} only, and on x_t itself
        x2 = x.clone()
        x2[0, t] += 1.0
        y2 = lsa(x2)
        assert torch.equal(y2[0, :t], y[0, :t])
        assert not torch.allclose(y2[0, t], y[0, t])


def test_head_products_exact():
    for d_out in (6, None):
        lsa = _lsa(d_out=d_out)
        P, Q = lsa.head_products()
        W_O = torch.eye(8, dtype=torch.float64) if d_out is None else lsa.W_O
        assert P.shape == (2, W_O.shape[0], 5) and Q.shape == (2, 5, 5)
        for h in range(2):
            assert torch.allclose(P[h], W_O[:, 4 * h : 4 * h + 4] @ lsa.W_V[h], rtol=1e-14, atol=1e-14)
            assert torch.allclose(Q[h], lsa.W_K[h].T @ lsa.W_Q[h], rtol=1e-14, atol=1e-14)
        assert P.dtype == torch.float64


def test_results_stay_on_the_weights_device():
    """Every tensor is created on the weights' / input's device, never on the default device: under a ``meta``
    default device (a stand-in for a second device on CPU-only machines) the CPU results are unchanged.
    (Computing *on* meta tensors would cost seconds: the first meta kernel loads torch's decompositions.)"""
    for d_out in (6, None):
        lsa = _lsa(d_out=d_out)
        x = _w(3, 4, 5, seed=12)
        ref = (lsa(x), lsa.forward_recurrent(x), *lsa.head_products())
        with torch.device("meta"):
            got = (lsa(x), lsa.forward_recurrent(x), *lsa.head_products())
        for r, g in zip(ref, got):
            assert g.device.type == "cpu" and torch.equal(g, r)
    assert _msg(ValueError, _lsa(), torch.zeros(1, 2, 5, device="meta")) == (
        "x is on meta but the attention weights are on cpu"
    )


def test_input_messages_exact():
    lsa = _lsa()
    assert _msg(TypeError, lsa, [[1.0]]) == "x must be a torch.Tensor of floating dtype; got list"
    assert _msg(TypeError, lsa.forward_recurrent, torch.zeros(1, 2, 5, dtype=torch.complex128)) == (
        "x must have a floating dtype; got torch.complex128" + TAIL
    )
    assert _msg(TypeError, lsa, torch.zeros(1, 2, 5, dtype=torch.int64)) == (
        "x must have a floating dtype; got torch.int64" + TAIL
    )
    assert (
        _msg(ValueError, lsa, torch.zeros(2, 5))
        == "x must have 3 dimensions [batch, time, d]; got shape (2, 5)"
    )
    assert _msg(ValueError, lsa, torch.zeros(1, 2, 4)) == (
        "x has d=4 (dimension 2 of shape (1, 2, 4)); expected d=5 (the input dimension of the attention "
        "layer)"
    )
    x = torch.zeros(1, 2, 5)
    assert lsa.check_input(x) is x


def test_construction_messages_exact():
    from constructions import LinearSelfAttention as L

    w = torch.zeros(1, 2, 3)
    assert _msg(TypeError, L, [0.0], w, w) == "W_Q must be a torch.Tensor of floating dtype; got list"
    assert _msg(TypeError, L, w, w.int(), w) == "W_K must have a floating dtype; got torch.int32" + TAIL
    assert (
        _msg(TypeError, L, w, w, w.to(torch.complex64))
        == "W_V must have a floating dtype; got torch.complex64" + TAIL
    )
    assert (
        _msg(TypeError, L, w.to(torch.complex64), w, w)
        == "W_Q must have a floating dtype; got torch.complex64" + TAIL
    )
    assert (
        _msg(ValueError, L, torch.zeros(2, 3), w, w)
        == "W_Q must have 3 dimensions [heads, rows, d]; got shape (2, 3)"
    )
    assert (
        _msg(ValueError, L, w, w, torch.zeros(2, 3))
        == "W_V must have 3 dimensions [heads, rows, d]; got shape (2, 3)"
    )
    assert _msg(ValueError, L, w, torch.zeros(1, 3, 3), w) == (
        "W_Q and W_K must have the same shape [H, d_k, d]; got W_Q (1, 2, 3) and W_K (1, 3, 3)"
    )
    assert _msg(ValueError, L, w, w, torch.zeros(2, 2, 3)) == (
        "W_V has H=2 (dimension 0 of shape (2, 2, 3)); expected H=1 (the number of heads of W_Q)"
    )
    assert _msg(ValueError, L, w, w, torch.zeros(1, 2, 4)) == (
        "W_V has d=4 (dimension 2 of shape (1, 2, 4)); expected d=3 (the input dimension of W_Q)"
    )
    z = torch.zeros
    assert (
        _msg(ValueError, L, z(0, 2, 3), z(0, 2, 3), z(0, 2, 3))
        == "LSA sizes must be positive; got H=0, d_k=2, d_v=2, d=3"
    )
    assert (
        _msg(ValueError, L, z(1, 0, 3), z(1, 0, 3), z(1, 2, 3))
        == "LSA sizes must be positive; got H=1, d_k=0, d_v=2, d=3"
    )
    assert (
        _msg(ValueError, L, z(1, 2, 0), z(1, 2, 0), z(1, 2, 0))
        == "LSA sizes must be positive; got H=1, d_k=2, d_v=2, d=0"
    )
    assert _msg(ValueError, L, w, w, z(1, 0, 3)) == "LSA sizes must be positive; got H=1, d_k=2, d_v=0, d=3"
    assert _msg(TypeError, L, w, w, w, [0.0]) == "W_O must be a torch.Tensor of floating dtype; got list"
    assert _msg(TypeError, L, w, w, w, z(2, 2, dtype=torch.complex64)) == (
        "W_O must have a floating dtype; got torch.complex64" + TAIL
    )
    assert _msg(ValueError, L, w, w, w, z(4)) == "W_O must have 2 dimensions [d_out, H*d_v]; got shape (4,)"
    assert _msg(ValueError, L, w, w, w, z(2, 3)) == (
        "W_O has H*d_v=3 (dimension 1 of shape (2, 3)); expected H*d_v=2 (heads times value dimension)"
    )
    assert (
        _msg(TypeError, L, w, w, w.double())
        == "LSA weights must share one dtype; got ['torch.float32', 'torch.float64']"
    )
    assert (
        _msg(TypeError, L, w, w.double(), w)
        == "LSA weights must share one dtype; got ['torch.float32', 'torch.float64']"
    )
    assert (
        _msg(TypeError, L, w.double(), w, w)
        == "LSA weights must share one dtype; got ['torch.float32', 'torch.float64']"
    )
    assert _msg(TypeError, L, w, w, w, z(2, 2, dtype=torch.float16)) == (
        "LSA weights must share one dtype; got ['torch.float16', 'torch.float32']"
    )
    m = torch.zeros(1, 2, 3, device="meta")
    assert (
        _msg(ValueError, L, w, w, m)
        == "all tensors must be on one device; got W_Q on cpu, W_K on cpu, W_V on meta"
    )
    assert _msg(ValueError, L, w, w, w, z(2, 2, device="meta")) == (
        "all tensors must be on one device; got W_Q on cpu, W_K on cpu, W_V on cpu, W_O on meta"
    )
    ok = L(w, w, w, z(2, 2))
    assert ok.W_O.shape == (2, 2)


def test_non_finite_weights_and_inputs_are_refused_with_the_tensor_and_index():
    """NaN/Inf weights or input used to pass silently into NaN outputs; now one ValueError names the
    tensor."""
    import math

    from constructions import LinearSelfAttention

    w = torch.ones(1, 2, 3, dtype=torch.float64)
    for name, bad in (("W_Q", 0), ("W_K", 1), ("W_V", 2)):
        ws = [w.clone(), w.clone(), w.clone()]
        ws[bad][0, 1, 2] = math.nan if bad != 1 else math.inf
        with pytest.raises(
            ValueError,
            match=rf"^{name} contains 1 non-finite value\(s\) \(NaN or Inf\), first at "
            r"index \(0, 1, 2\); expected finite values$",
        ):
            LinearSelfAttention(*ws)
    W_O = torch.ones(2, 2, dtype=torch.float64)
    W_O[1, 0] = -math.inf
    with pytest.raises(ValueError, match=r"^W_O contains 1 non-finite"):
        LinearSelfAttention(w, w, w, W_O)
    lsa = LinearSelfAttention(w, w, w)
    x = torch.ones(1, 4, 3, dtype=torch.float64)
    x[0, 2, 1] = math.nan
    for f in (lsa, lsa.forward_recurrent):
        with pytest.raises(
            ValueError,
            match=r"^x contains 1 non-finite value\(s\) \(NaN or Inf\), first at index "
            r"\(0, 2, 1\)",
        ):
            f(x)
