"""Mutation-testing kills for constructions/rnn.py (docs/reliability.md, "Mutation testing").

Full messages of every check, the stage functions against hand-computed values, every evaluation path
(loop, parallel, multi-chunk, structured, complex, streaming) against a plain Python step loop, the
overflow warning's text, and the structure cache's invalidation."""

import math

import pytest
import torch

F64 = torch.float64


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _weights(n=4, d=2, m=3, d_out=2, seed=0, lam=None):
    g = _g(seed)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=F64)

    lam = torch.tensor([1.0, 0.5, 0.0, -0.75][:n], dtype=F64) if lam is None else lam
    return {"A": w(n, d + 1), "B": w(n, d + 1), "lam": lam, "C": w(m, n), "E": w(m, n), "D": w(d_out, m)}


def _rnn(**kw):
    from constructions import GatedLinearRNN

    opts = {k: kw.pop(k) for k in ("decay", "real_output", "trainable", "upstream") if k in kw}
    return GatedLinearRNN(**_weights(**kw), **opts)


def _msg(exc_type, f, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        f(*args, **kwargs)
    return str(info.value)


def _loop(w, x, h0=None, lam_t=None, real=True):
    """h_t = lam * h_{t-1} + (A x~)(B x~); y_t = D[(C h)(E h)], one step at a time in Python."""
    A, B, lam, C, E, D = (w[k] for k in ("A", "B", "lam", "C", "E", "D"))
    Bsz, T, _ = x.shape
    dtype = torch.complex128 if any(t is not None and t.is_complex() for t in (A, B, lam, C, E, D)) else F64
    h = torch.zeros(Bsz, A.shape[0], dtype=dtype) if h0 is None else h0.to(dtype)
    ys = []
    for t in range(T):
        xt = torch.cat([x[:, t], torch.ones(Bsz, 1, dtype=x.dtype)], -1).to(dtype)
        lt = lam if lam_t is None else lam_t[:, t]
        h = lt * h + (xt @ A.T.to(dtype)) * (xt @ B.T.to(dtype))
        ys.append(((h @ C.T.to(dtype)) * (h @ E.T.to(dtype))) @ D.T.to(dtype))
    y = torch.stack(ys, 1) if ys else torch.zeros(Bsz, 0, D.shape[0], dtype=dtype)
    return (y.real if (real and y.is_complex()) else y), h


def test_stage_functions_exact():
    from constructions.rnn import (
        GATINGS,
        PATHS,
        STRUCTURE_MIN_WORK,
        augment,
        input_gate,
        output_gate,
        output_readout,
        readout,
        recurrence_step,
    )

    assert GATINGS == ("auto", "dense", "structured") and STRUCTURE_MIN_WORK == 2**20
    assert PATHS == ("auto", "loop", "scan", "structured")
    x = torch.tensor([[2.0, 3.0]], dtype=F64)
    xt = augment(x)
    assert xt.tolist() == [[2.0, 3.0, 1.0]] and xt.dtype == F64
    assert augment(torch.zeros(2, 3, 0)).shape == (2, 3, 1)
    A = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]], dtype=F64)
    B = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=F64)
    assert input_gate(A, B, xt).tolist() == [[(2 + 1) * 3, 6 * (2 + 3 + 1)]]
    assert recurrence_step(
        torch.tensor([0.5, 2.0]), torch.tensor([4.0, 1.0]), torch.tensor([1.0, 1.0])
    ).tolist() == [3.0, 3.0]
    C = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=F64)
    E = torch.tensor([[0.0, 1.0], [2.0, 0.0]], dtype=F64)
    D = torch.tensor([[1.0, 10.0]], dtype=F64)
    h = torch.tensor([[3.0, 5.0]], dtype=F64)
    assert output_gate(C, E, h).tolist() == [[3 * 5, 8 * 6]]
    assert readout(D, torch.tensor([[2.0, 3.0]], dtype=F64)).tolist() == [[2 + 10 * 3]]
    assert output_readout(C, E, D, h).tolist() == [[3 * 5 + 10 * (8 * 6)]]


def test_sizes_properties_and_repr():
    rnn = _rnn(n=4, d=3, m=5, d_out=2)
    assert (rnn.num_neurons, rnn.d, rnn.d_in, rnn.num_gates, rnn.d_out, rnn.is_complex) == (
        4,
        3,
        3,
        5,
        2,
        False,
    )
    assert rnn.extra_repr() == "d=3, n=4, m=5, d_out=2, lambda=real"
    w = _weights()
    assert all(
        torch.equal(a, w[k])
        for a, k in zip(rnn.weights() if False else _rnn().weights(), ["A", "B", "lam", "C", "E", "D"])
    )
    names = [k for k, _ in _rnn().named_parameters()]
    assert names == ["A", "B", "lam", "C", "E", "D"]
    assert not any(p.requires_grad for p in _rnn().parameters())
    assert all(p.requires_grad for p in _rnn(trainable=True).parameters())
    c = _rnn(lam=torch.tensor([1j, 0.5, 0.0, 1.0], dtype=torch.complex128))
    assert c.is_complex and c.extra_repr() == "d=2, n=4, m=3, d_out=2, lambda=complex"
    wc = _weights()
    wc["D"] = wc["D"].to(torch.complex128)
    from constructions import GatedLinearRNN

    assert GatedLinearRNN(**wc).is_complex  # any complex weight, not only lambda
    w = _weights()
    del w["lam"]
    dec = GatedLinearRNN(**w, lam=None, decay=lambda x: torch.zeros(*x.shape[:2], 4, dtype=x.dtype))
    assert dec.extra_repr() == "d=2, n=4, m=3, d_out=2, lambda=input-dependent" and not dec.is_complex

    class Up(torch.nn.Module):
        d_in = 5

        def forward(self, x):
            return x[..., :2]

    up = _rnn(upstream=Up())
    assert (
        up.d_in == 5
        and up.d == 2
        and up.extra_repr() == "d=2, n=4, m=3, d_out=2, lambda=real, upstream d_in=5"
    )
    nod = _rnn(upstream=lambda x: x[..., :2])
    assert nod.d_in is None and nod.extra_repr().endswith("upstream d_in=None")
    Up.d_in = True  # not an int in the sense of a width? bool is an int: kept as declared
    assert _rnn(upstream=Up()).d_in is True
    Up.d_in = "5"
    assert _rnn(upstream=Up()).d_in is None


def test_constructor_messages_exact():
    from constructions import GatedLinearRNN

    w = _weights()
    T = " (integer and boolean tensors are not accepted: cast with .to(torch.float64))"
    for k, axes in (("A", "n, d+1"), ("B", "n, d+1"), ("C", "m, n"), ("E", "m, n"), ("D", "d_out, m")):
        assert (
            _msg(TypeError, GatedLinearRNN, **{**w, k: [1.0]})
            == f"{k} must be a torch.Tensor of floating dtype; got list"
        )
        assert _msg(TypeError, GatedLinearRNN, **{**w, k: w[k].long()}) == (
            f"{k} must have a floating or complex dtype; got torch.int64" + T
        )
        assert _msg(ValueError, GatedLinearRNN, **{**w, k: w[k][0]}) == (
            f"{k} must have 2 dimensions [{axes}]; got shape {tuple(w[k][0].shape)}"
        )
    assert _msg(ValueError, GatedLinearRNN, **{**w, "B": w["B"][:, :2]}) == (
        "A and B (input-gate branches) must have one shape [n, d+1]; got (4, 3) and (4, 2)"
    )
    assert _msg(ValueError, GatedLinearRNN, **{**w, "A": w["A"][:, :1], "B": w["B"][:, :1]}) == (
        "A has 1 columns; expected d+1 >= 2 (input dimension d plus the appended 1)"
    )
    GatedLinearRNN(**{**w, "A": w["A"][:, :2], "B": w["B"][:, :2]})  # d = 1 is fine
    assert _msg(ValueError, GatedLinearRNN, **{**w, "E": w["E"][:2]}) == (
        "C and E (output-gate branches) must have one shape [m, n]; got (3, 4) and (2, 4)"
    )
    assert _msg(ValueError, GatedLinearRNN, **{**w, "C": w["C"][:, :3], "E": w["E"][:, :3]}) == (
        "C has 3 columns but there are n=4 neurons (rows of A); expected C, E of shape [m, 4]"
    )
    assert _msg(ValueError, GatedLinearRNN, **{**w, "D": w["D"][:, :2]}) == (
        "D has 2 columns but there are m=3 output-gate units (rows of C); expected D of shape [d_out, 3]"
    )
    both = "give exactly one of lam (constant lambda, shape [n]) and decay (input-dependent)"
    assert _msg(ValueError, GatedLinearRNN, **{**w, "lam": None}) == both
    assert _msg(ValueError, GatedLinearRNN, **w, decay=lambda x: x) == both
    assert (
        _msg(TypeError, GatedLinearRNN, **{**w, "lam": [1.0]})
        == "lam must be a torch.Tensor of floating dtype; got list"
    )
    assert _msg(ValueError, GatedLinearRNN, **{**w, "lam": w["lam"][None]}) == (
        "lam must have 1 dimensions [n]; got shape (1, 4)"
    )
    assert _msg(ValueError, GatedLinearRNN, **{**w, "lam": w["lam"][:3]}) == (
        "lam has 3 entries; expected n=4 (one per neuron, rows of A)"
    )
    assert _msg(
        ValueError, GatedLinearRNN, **{**w, "lam": torch.tensor([1.0, math.inf, 0.0, math.nan], dtype=F64)}
    ) == ("lam contains 2 non-finite value(s) (NaN or Inf), first at index (1,); expected finite values")
    for k in ["A", "B", "C", "E", "D"]:  # (a meta lam fails earlier: its finiteness cannot be read)
        assert _msg(ValueError, GatedLinearRNN, **{**w, k: w[k].to("meta")}).startswith(
            "all RNN weights must be on one device; got ['cpu', 'meta']"
        )
    assert _msg(TypeError, GatedLinearRNN, **w, upstream=3) == (
        "upstream must be callable (x [B, T, d_in] -> z [B, T, 2]); got int"
    )


def test_input_messages_exact():
    rnn = _rnn()
    T = " (integer and boolean tensors are not accepted: cast with .to(torch.float64))"
    assert _msg(TypeError, rnn, [[[1.0, 2.0]]]) == "x must be a torch.Tensor of floating dtype; got list"
    assert _msg(TypeError, rnn, torch.zeros(1, 2, 2, dtype=torch.complex128)) == (
        "x must have a floating dtype; got torch.complex128" + T
    )
    assert (
        _msg(ValueError, rnn, torch.zeros(2, 2))
        == "x must have 3 dimensions [batch, time, d]; got shape (2, 2)"
    )
    assert _msg(ValueError, rnn, torch.zeros(1, 2, 3)) == (
        "x has d=3 features (last axis of shape (1, 2, 3)); expected d=2 (the RNN's A has d+1=3 columns)"
    )
    assert (
        _msg(ValueError, rnn, torch.zeros(1, 2, 2, device="meta"))
        == "x is on meta but the RNN weights are on cpu"
    )
    assert _msg(ValueError, rnn, torch.tensor([[[0.0, math.nan]]])) == (
        "x contains 1 non-finite value(s) (NaN or Inf), first at index (0, 0, 1); expected finite values"
    )
    x = torch.zeros(1, 2, 2, dtype=F64)
    assert _msg(ValueError, rnn, x, mode="fast") == "mode must be 'loop', 'parallel' or 'auto'; got 'fast'"
    assert (
        _msg(ValueError, rnn, x, gating="fast")
        == "gating must be one of ('auto', 'dense', 'structured'); got 'fast'"
    )
    assert _msg(TypeError, rnn, x, [0.0]) == "state must be a torch.Tensor of floating dtype; got list"
    assert (
        _msg(ValueError, rnn, x, torch.zeros(1, 3, dtype=F64))
        == "state must have shape [batch, n] = (1, 4); got (1, 3)"
    )
    assert (
        _msg(ValueError, rnn, x, torch.zeros(2, 4, dtype=F64))
        == "state must have shape [batch, n] = (1, 4); got (2, 4)"
    )
    assert _msg(ValueError, rnn, x, torch.zeros(1, 4, device="meta")) == "state is on meta but x is on cpu"
    assert _msg(TypeError, rnn, x, torch.zeros(1, 4, dtype=torch.complex128)) == (
        "state is complex (torch.complex128) but this RNN computes in torch.float64; casting would discard "
        "the "
        "imaginary part. Expected a real state (or complex RNN weights)"
    )

    class Up(torch.nn.Module):
        d_in = 5

        def forward(self, x):
            return x[..., :2]

    up = _rnn(upstream=Up())
    assert _msg(ValueError, up, torch.zeros(1, 2, 2)) == (
        "x has d=2 features (last axis of shape (1, 2, 2)); expected d_in=5 (the input width of the RNN's "
        "upstream layer)"
    )
    assert up(torch.zeros(1, 2, 5, dtype=F64)).shape == (1, 2, 2)
    free = _rnn(upstream=lambda x: x[..., :2])  # no declared d_in: any width reaches the upstream layer
    assert free(torch.zeros(1, 2, 7, dtype=F64)).shape == (1, 2, 2)
    bad = _rnn(upstream=lambda x: x)
    assert _msg(ValueError, bad, torch.zeros(1, 2, 3, dtype=F64)) == (
        "upstream(x) must return features of shape (1, 2, 2) (the RNN's A has d+1=3 columns); got (1, 2, 3)"
    )
    assert _msg(ValueError, _rnn(upstream=lambda x: [x]), torch.zeros(1, 2, 2, dtype=F64)) == (
        "upstream(x) must return features of shape (1, 2, 2) (the RNN's A has d+1=3 columns); got list"
    )


def test_every_path_equals_the_python_loop():
    w = _weights()
    rnn = _rnn()
    x = torch.randn(3, 9, 2, generator=_g(1), dtype=F64)
    h0 = torch.randn(3, 4, generator=_g(2), dtype=F64)
    ref, last = _loop(w, x, h0)
    for mode in ("loop", "parallel", "auto"):
        for gating in ("dense", "structured", "auto"):
            y, h = rnn(x, h0, mode=mode, gating=gating, return_state=True)
            assert y.dtype == F64 and torch.allclose(y, ref, rtol=1e-12, atol=1e-12), (mode, gating)
            assert torch.allclose(h, last, rtol=1e-12, atol=1e-12), (mode, gating)
    for path in ("loop", "scan", "structured", "auto"):
        y, h = rnn(x, h0, path=path, return_state=True)
        assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12) and torch.allclose(
            h, last, rtol=1e-12, atol=1e-12
        ), path
    assert torch.allclose(rnn(x), _loop(w, x)[0], rtol=1e-12, atol=1e-12)  # default state: zeros
    for T in (0, 1, 2, 3):  # auto is the loop for T <= 2, parallel above
        y, h = rnn(x[:, :T], h0, return_state=True)
        r, h_loop = _loop(w, x[:, :T], h0)
        assert (
            y.shape == (3, T, 2)
            and torch.allclose(y, r, rtol=1e-12, atol=1e-12)
            and torch.allclose(h, h_loop, rtol=1e-12, atol=1e-12)
        )
    # streaming: two halves with the carried state equal one pass
    y1, h1 = rnn(x[:, :4], return_state=True)
    y2 = rnn(x[:, 4:], h1)
    assert torch.allclose(torch.cat([y1, y2], 1), rnn(x), rtol=1e-12, atol=1e-12)
    # float32 input with float64 weights computes in float64; float32 weights with float64 x too
    assert rnn(x.float()).dtype == F64
    r32 = _rnn()
    r32 = type(r32)(*(p.detach().float() for p in r32.weights()))
    y32 = r32(x)
    assert y32.dtype == F64 and torch.allclose(
        y32, _loop({k: v.float().double() for k, v in w.items()}, x)[0], rtol=1e-12, atol=1e-12
    )
    assert r32(x.float()).dtype == torch.float32


def test_long_sequences_cross_chunk_boundaries(monkeypatch):
    import constructions.scan as S

    monkeypatch.setattr(S, "CHUNK_BYTES", 1)  # 64 steps per super-chunk
    w = _weights(lam=torch.tensor([1.0, 0.5, 0.0, -0.75], dtype=F64))
    rnn = _rnn()
    for T in (64, 130, 150):  # 130 = 64 + 64 + 2: the last chunk takes the loop
        x = torch.randn(2, T, 2, generator=_g(T), dtype=F64) * 0.3
        h0 = torch.randn(2, 4, generator=_g(T + 1), dtype=F64)
        ref, last = _loop(w, x, h0)
        y, h = rnn(x, h0, mode="parallel", gating="dense", return_state=True)
        assert torch.allclose(y, ref, rtol=1e-10, atol=1e-10) and torch.allclose(
            h, last, rtol=1e-10, atol=1e-10
        )
    lam_t = torch.rand(2, 150, 4, generator=_g(3), dtype=F64)
    w2 = dict(w)
    del w2["lam"]
    from constructions import GatedLinearRNN

    dec = GatedLinearRNN(**w2, lam=None, decay=lambda z: lam_t[:, : z.shape[1]])
    x = torch.randn(2, 150, 2, generator=_g(4), dtype=F64) * 0.3
    ref, last = _loop({**w2, "lam": None}, x, lam_t=lam_t)
    y, h = dec(x, mode="parallel", gating="dense", return_state=True)
    assert torch.allclose(y, ref, rtol=1e-10, atol=1e-10) and torch.allclose(h, last, rtol=1e-10, atol=1e-10)
    e, he = rnn(torch.zeros(2, 0, 2, dtype=F64), mode="parallel", gating="dense", return_state=True)
    assert e.shape == (2, 0, 2) and not he.any()


def test_complex_real_output_and_input_dependent_decay():
    from constructions import GatedLinearRNN

    lam = torch.polar(torch.full((4,), 0.9, dtype=F64), torch.tensor([0.3, -0.3, 1.0, 2.0], dtype=F64))
    w = {k: (v.to(torch.complex128) if k != "lam" else lam) for k, v in _weights().items()}
    x = torch.randn(2, 7, 2, generator=_g(5), dtype=F64)
    ref_c, _ = _loop(w, x, real=False)
    for mode in ("loop", "parallel"):
        y = GatedLinearRNN(**w)(x, mode=mode)
        assert y.dtype == F64 and torch.allclose(y, ref_c.real, rtol=1e-12, atol=1e-12)
        yc = GatedLinearRNN(**w, real_output=False)(x, mode=mode)
        assert yc.dtype == torch.complex128 and torch.allclose(yc, ref_c, rtol=1e-12, atol=1e-12)
    # a complex state is accepted by a complex RNN
    h0 = torch.full((2, 4), 1 + 1j, dtype=torch.complex128)
    assert torch.allclose(
        GatedLinearRNN(**w, real_output=False)(x, h0), _loop(w, x, h0, real=False)[0], rtol=1e-12, atol=1e-12
    )
    base = _weights()
    del base["lam"]
    lam_t = torch.rand(2, 7, 4, generator=_g(6), dtype=F64)
    dec = GatedLinearRNN(**base, lam=None, decay=lambda z: lam_t)
    assert torch.equal(dec.lambdas(x), lam_t) and torch.equal(_rnn().lambdas(x), _weights()["lam"])
    ref, _ = _loop({**base, "lam": None}, x, lam_t=lam_t)
    for mode in ("loop", "parallel"):
        assert torch.allclose(dec(x, mode=mode), ref, rtol=1e-12, atol=1e-12)
    bad_shape = GatedLinearRNN(**base, lam=None, decay=lambda z: torch.zeros(2, 7, 3))
    assert _msg(ValueError, bad_shape, x) == "decay(x) must return lambda_t of shape (2, 7, 4); got (2, 7, 3)"
    assert _msg(ValueError, GatedLinearRNN(**base, lam=None, decay=lambda z: 0.5), x) == (
        "decay(x) must return lambda_t of shape (2, 7, 4); got float"
    )
    nan = lam_t.clone()
    nan[1, 2, 3] = math.nan
    assert _msg(ValueError, GatedLinearRNN(**base, lam=None, decay=lambda z: nan), x) == (
        "decay(x) (lambda_t; a log-space gate of -inf must be exponentiated to 0 first) contains 1 "
        "non-finite "
        "value(s) (NaN or Inf), first at index (1, 2, 3); expected finite values"
    )


def _factored_case():
    """Template weights without ``lam``, an input, and a factored decay's ``(values, channel, const)``."""
    base = _weights()
    del base["lam"]
    x = torch.randn(2, 7, 2, generator=_g(7), dtype=F64)
    vals = torch.rand(2, 7, 2, generator=_g(8), dtype=F64)
    channel = torch.tensor([0, 1, -1, 0])
    const = torch.tensor([0.0, 0.0, 0.25, 0.0], dtype=F64)
    return base, x, vals, channel, const


def test_factored_decay_contract_and_messages():
    from constructions import GatedLinearRNN

    base, x, vals, channel, const = _factored_case()

    class Dec:
        def __init__(self, out):
            self.out = out

        def __call__(self, z):
            v, ch, c = self.out
            full = v[..., ch.clamp(min=0)]
            return torch.where(ch >= 0, full, c)

        def factored(self, z):
            return self.out

    good = GatedLinearRNN(**base, lam=None, decay=Dec((vals, channel, const)))
    lam_t = good.lambdas(x)
    assert torch.equal(lam_t[..., 2], torch.full((2, 7), 0.25, dtype=F64))
    ref, last = _loop({**base, "lam": None}, x, lam_t=lam_t)
    y, h = good(x, mode="parallel", return_state=True)
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12) and torch.allclose(h, last, rtol=1e-12, atol=1e-12)
    y, h = good(x, mode="parallel", gating="structured", return_state=True)
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12) and torch.allclose(h, last, rtol=1e-12, atol=1e-12)
    head = (
        "decay.factored(x) must return (values [B, T, c], channel [n] long in [-1, c), const [n]) with B, T "
        "= (2, 7), n = 4; got "
    )
    for out, got in (
        ((vals[0], channel, const), "(7, 2), (4,), (4,)"),
        ((vals[:, :6], channel, const), "(2, 6, 2), (4,), (4,)"),
        ((vals, channel[:3], const), "(2, 7, 2), (3,), (4,)"),
        ((vals, channel.int(), const), "(2, 7, 2), (4,), (4,)"),
        ((vals, channel, const[:3]), "(2, 7, 2), (4,), (3,)"),
        ((vals, torch.tensor([0, 2, -1, 0]), const), "(2, 7, 2), (4,), (4,)"),
        ((vals, torch.tensor([0, 1, -2, 0]), const), "(2, 7, 2), (4,), (4,)"),
        ((vals.tolist(), channel, const), "(), (4,), (4,)"),
        ((vals, channel.tolist(), const), "(2, 7, 2), (), (4,)"),
        ((vals, channel, const.tolist()), "(2, 7, 2), (4,), ()"),
    ):
        rnn = GatedLinearRNN(**base, lam=None, decay=Dec(out))
        assert _msg(ValueError, rnn, x, mode="parallel") == head + got
    ok_edge = GatedLinearRNN(**base, lam=None, decay=Dec((vals, torch.tensor([1, 1, -1, 0]), const)))
    ok_edge(x, mode="parallel")  # channel c-1 and -1 are in range
    bad_v = vals.clone()
    bad_v[0, 1, 1] = math.inf
    assert _msg(
        ValueError, GatedLinearRNN(**base, lam=None, decay=Dec((bad_v, channel, const))), x, mode="parallel"
    ) == (
        "decay(x) (lambda_t; a log-space gate of -inf must be exponentiated to 0 first) contains 1 "
        "non-finite "
        "value(s) (NaN or Inf), first at index (0, 1, 1); expected finite values"
    )
    bad_c = const.clone()
    bad_c[2] = math.nan
    assert _msg(
        ValueError, GatedLinearRNN(**base, lam=None, decay=Dec((vals, channel, bad_c))), x, mode="parallel"
    ) == (
        "decay const (lambda of the constant neurons) contains 1 non-finite value(s) (NaN or Inf), "
        "first at index (2,); expected finite values"
    )
    # the loop and dense paths never ask for the factored form
    assert torch.allclose(
        GatedLinearRNN(**base, lam=None, decay=Dec((vals, channel, const)))(x, mode="loop"),
        ref,
        rtol=1e-12,
        atol=1e-12,
    )


def test_structured_gating_and_gradients():
    rnn = _rnn(trainable=True)
    x = torch.randn(2, 5, 2, generator=_g(9), dtype=F64)
    for kw in ({"gating": "structured"}, {"path": "structured"}):
        assert _msg(ValueError, rnn, x, **kw) == (
            "path='structured' evaluates a detached, factored copy of the weights, so no gradient would "
            "reach them; "
            "use path='scan' or 'auto' (the dense template) while training, or call under torch.no_grad()"
        )
    with torch.no_grad():
        assert rnn(x, gating="structured").shape == (2, 5, 2)
    y = rnn(x)  # auto: dense while recording gradients
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (rnn.A, rnn.B, rnn.C, rnn.E, rnn.D))
    assert (
        rnn._needs_grad()
        and not _rnn()._needs_grad()
        and _rnn()._needs_grad(torch.ones(1, requires_grad=True))
    )
    with torch.no_grad():
        assert not rnn._needs_grad()


def test_path_switch_and_the_older_keywords():
    """``path`` is the one switch; ``mode``/``gating`` map onto it (constructions.evaluator, module
    docstring)."""
    from constructions.evaluator import STRUCTURE_MIN_WORK, choose_path, resolve_path

    table = {
        (None, None): "auto",
        ("auto", None): "auto",
        ("parallel", None): "auto",
        ("loop", None): "loop",
        (None, "auto"): "auto",
        (None, "dense"): "scan",
        ("loop", "dense"): "loop",
        ("parallel", "dense"): "scan",
        ("auto", "dense"): "scan",
        (None, "structured"): "structured",
        ("loop", "structured"): "structured",
        ("loop", "auto"): "loop",
        ("parallel", "structured"): "structured",
    }
    for (mode, gating), path in table.items():
        assert resolve_path(None, mode, gating) == path, (mode, gating)
    for path in ("auto", "loop", "scan", "structured"):
        assert resolve_path(path, None, None) == path
    rnn, x = _rnn(), torch.zeros(1, 2, 2, dtype=F64)
    assert _msg(ValueError, rnn, x, path="fast") == (
        "path must be one of ('auto', 'loop', 'scan', 'structured'); got 'fast'"
    )
    assert _msg(ValueError, rnn, x, path="loop", mode="loop") == (
        "give path= or the older mode=/gating=, not both; got path='loop', mode='loop', gating=None"
    )
    # auto's rule, stated in the evaluator's docstring
    big, small = STRUCTURE_MIN_WORK, STRUCTURE_MIN_WORK - 1
    assert choose_path("auto", work=big, grad=False, cached=False) == "structured"
    assert choose_path("auto", work=small, grad=False, cached=False) == "scan"
    assert choose_path("auto", work=small, grad=False, cached=True) == "structured"
    assert choose_path("auto", work=big, grad=True, cached=True) == "scan"
    for path in ("loop", "scan", "structured"):
        assert choose_path(path, work=0, grad=True, cached=False) == path


def test_cache_never_goes_stale_after_a_data_edit():
    """``rnn.D.data[0, 0] += 1`` bumps no version counter; the next call computes the new function anyway (a
    cache keyed on ``id``/``data_ptr``/``_version`` returned the old one: off by hundreds)."""
    from constructions import LinearSelfAttention, lsa_to_rnn

    g = _g(21)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=F64)

    rnn = lsa_to_rnn(LinearSelfAttention(w(2, 4, 6), w(2, 4, 6), w(2, 4, 6)), "direct")
    x = w(2, 50, 6)
    assert rnn.structure() is not None  # cached: auto now takes the factored form even for this small call
    before = rnn(x)
    for edit in (
        lambda: rnn.D.data.__setitem__((0, 0), rnn.D.data[0, 0] + 1),
        lambda: rnn.A.data.mul_(1.5),
        lambda: rnn.C.data.__setitem__((0, 0), -rnn.C.data[0, 0]),
        lambda: rnn.lam.data.__setitem__(0, 0.5),
    ):
        edit()
        ref = rnn(x, mode="loop")  # (the keywords of the older code too: this test fails there)
        assert torch.allclose(rnn(x), ref, rtol=1e-10, atol=1e-10)
        for path in ("auto", "structured"):
            assert torch.allclose(rnn(x, path=path), ref, rtol=1e-10, atol=1e-10), path
    assert not torch.allclose(rnn(x), before)
    from constructions.evaluator import structure_cache

    cache = structure_cache(rnn)
    plan = rnn.structure()
    assert cache.holds(rnn.weights(), F64) and rnn.structure() is plan
    cache.clear()
    assert not cache.holds(rnn.weights(), F64) and rnn.structure() is not plan


def test_structured_plan_is_immutable():
    """A frozen StructuredRNN holds no mutable container: the matmul forms of decays live in the caller's
    cache."""
    import dataclasses

    from constructions.structured import StructuredRNN

    rnn = _rnn()
    plan = rnn.structure()
    assert isinstance(plan, StructuredRNN) and dataclasses.is_dataclass(plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.m = 0
    for f in dataclasses.fields(plan):
        assert not isinstance(getattr(plan, f.name), (dict, list, set)), f.name


def test_non_finite_weights_and_state_raise():
    """NaN/Inf in A..D (or lambda, edited after construction) or in h0 is a ValueError naming it, on every
    path."""
    rnn = _rnn()
    x = torch.zeros(1, 3, 2, dtype=F64)
    for name in ("A", "B", "lam", "C", "E", "D"):
        r = _rnn()
        getattr(r, name).data.view(-1)[1] = math.nan
        for path in ("loop", "scan", "structured", "auto"):
            assert _msg(ValueError, r, x, path=path) == (
                f"GatedLinearRNN.{name} contains 1 non-finite value(s) (NaN or Inf), first at index "
                f"{(1,) if name == 'lam' else (0, 1)}; expected finite values"
            )
    h0 = torch.zeros(1, 4, dtype=F64)
    h0[0, 2] = math.inf
    assert _msg(ValueError, rnn, x, h0) == (
        "state (the initial h_0) contains 1 non-finite value(s) (NaN or Inf), first at index (0, 2); "
        "expected finite values"
    )


def test_structure_cache_is_rebuilt_on_change():
    rnn = _rnn()
    s = rnn.structure()
    assert s is not None and rnn.structure() is s and rnn.structure(F64) is s
    s32 = rnn.structure(torch.float32)
    assert s32 is not s and rnn.structure(torch.float32) is s32
    assert rnn.structure(F64) is not s  # the cache holds one dtype: rebuilt
    s = rnn.structure()
    x = torch.randn(1, 6, 2, generator=_g(10), dtype=F64)
    with torch.no_grad():
        rnn.D.mul_(2.0)  # modified in place: a new key
    s2 = rnn.structure()
    assert s2 is not s
    assert torch.allclose(rnn(x, gating="structured"), rnn(x, gating="dense"), rtol=1e-12, atol=1e-12)
    rnn.D = torch.nn.Parameter(rnn.D.detach() * 2, requires_grad=False)  # replaced
    assert rnn.structure() is not s2
    assert torch.allclose(rnn(x, gating="structured"), rnn(x, gating="dense"), rtol=1e-12, atol=1e-12)


def test_overflow_warning_text():
    from constructions import GatedLinearRNN
    from constructions.rnn import NumericalHazardWarning

    w = _weights(lam=torch.tensor([1.0, 4.0, 0.0, 0.5], dtype=F64))
    grow = GatedLinearRNN(**w)
    x = torch.ones(1, 700, 2, dtype=F64)
    for mode in ("loop", "parallel"):
        with pytest.warns(NumericalHazardWarning) as rec:
            y = grow(x, mode=mode)
        assert len(rec) == 1
        assert str(rec[0].message) == (
            "GatedLinearRNN: the output or state is not finite after T=700 steps; neurons with |lambda| > "
            "1: [1] "
            "(max |lambda| = 4); neurons whose final state is Inf/NaN: [1]. Expected |lambda| <= 1, or a "
            "sequence "
            "short enough that |lambda|^T and the gates stay in range; compare() fails non-finite outputs, "
            "it never "
            "passes them."
        )
        assert not torch.isfinite(y).all()
    from constructions.rnn import _warn_overflow

    with pytest.warns(
        NumericalHazardWarning,
        match=r"\|lambda\| > 1: \[\] \(max \|lambda\| = 0.5\); neurons whose "
        r"final state is Inf/NaN: not computed \(return_state=False\)",
    ):
        _warn_overflow(None, torch.tensor([0.5, -0.25]), None, 3)
    lam_t = torch.tensor([[[0.5, 2.0], [1.5, 0.5]]])
    with pytest.warns(
        NumericalHazardWarning, match=r"\|lambda\| > 1: \[0, 1\] \(max \|lambda\| = 2\); .*Inf/NaN: \[1\]"
    ):
        _warn_overflow(None, lam_t, torch.tensor([[0.0, math.inf]]), 2)
    ok = GatedLinearRNN(**_weights())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok(torch.ones(1, 50, 2, dtype=F64))


def test_results_stay_on_the_input_device():
    """Under a ``meta`` default device (a stand-in for a second device on CPU-only machines) every path still
    computes on the input's device: no tensor is created without ``device=``."""
    rnn = _rnn()
    x = torch.randn(2, 9, 2, generator=_g(11), dtype=F64)
    base = _weights()
    del base["lam"]
    from constructions import GatedLinearRNN

    dec = GatedLinearRNN(
        **base, lam=None, decay=lambda z: torch.full((*z.shape[:2], 4), 0.5, dtype=z.dtype, device=z.device)
    )
    for f in (rnn, dec):
        for mode, gating in (("loop", "dense"), ("parallel", "dense"), ("parallel", "structured")):
            ref, h = f(x, mode=mode, gating=gating, return_state=True)
            with torch.device("meta"):
                got, hg = f(x, mode=mode, gating=gating, return_state=True)
            assert got.device.type == "cpu" and torch.equal(got, ref) and torch.equal(hg, h)
    empty = torch.zeros(2, 0, 2, dtype=F64)
    with torch.device("meta"):
        e = rnn(empty, mode="parallel", gating="dense")
    assert e.device.type == "cpu" and e.shape == (2, 0, 2)


def test_factored_decay_dtype_messages_and_batched_overflow():
    from constructions import GatedLinearRNN
    from constructions.rnn import NumericalHazardWarning, _warn_overflow

    base, x, vals, channel, const = _factored_case()

    class Dec:
        def __init__(self, out):
            self.out = out

        def __call__(self, z):
            return torch.ones(*z.shape[:2], 4, dtype=z.dtype)

        def factored(self, z):
            return self.out

    T = " (integer and boolean tensors are not accepted: cast with .to(torch.float64))"
    assert (
        _msg(
            TypeError,
            GatedLinearRNN(**base, lam=None, decay=Dec(((vals * 4).long(), channel, const))),
            x,
            mode="parallel",
        )
        == "decay.factored(x) values must have a floating or complex dtype; got torch.int64" + T
    )
    assert (
        _msg(
            TypeError,
            GatedLinearRNN(**base, lam=None, decay=Dec((vals, channel, const.long()))),
            x,
            mode="parallel",
        )
        == "decay.factored(x) const must have a floating or complex dtype; got torch.int64" + T
    )
    # the offending neurons of a batched state: any batch element counts
    with pytest.warns(NumericalHazardWarning, match=r"Inf/NaN: \[0, 2\]\."):
        _warn_overflow(
            None, torch.tensor([0.5, 0.5, 0.5]), torch.tensor([[math.inf, 0.0, 0.0], [0.0, 0.0, math.nan]]), 2
        )


def test_structure_is_built_at_the_compute_dtype():
    """float32 weights with a float64 input compute in float64: the factored form is built at float64."""
    r32 = _rnn()
    r32 = type(r32)(*(p.detach().float() for p in r32.weights()))
    x = torch.randn(2, 6, 2, generator=_g(12), dtype=F64)
    dense = r32(x, mode="parallel", gating="dense")
    for mode in ("loop", "parallel"):
        y = r32(x, mode=mode, gating="structured")
        assert y.dtype == F64 and torch.allclose(y, dense, rtol=1e-12, atol=1e-12)


def test_state_shapes_dtypes_and_loop_casts():
    rnn = _rnn()
    for mode in ("loop", "parallel"):
        e, he = rnn(torch.zeros(3, 0, 2, dtype=F64), mode=mode, gating="dense", return_state=True)
        assert e.shape == (3, 0, 2) and he.shape == (3, 4) and not he.any()
    r32 = _rnn()
    r32 = type(r32)(*(p.detach().float() for p in r32.weights()))
    x = torch.randn(2, 5, 2, generator=_g(13), dtype=F64)
    w = {k: v.float().double() for k, v in _weights().items()}
    h0 = torch.randn(2, 4, generator=_g(14), dtype=torch.float32)
    for mode in ("loop", "parallel"):
        y, h = r32(x, h0, mode=mode, return_state=True)
        ref, last = _loop(w, x, h0.double())
        assert y.dtype == F64 and h.dtype == F64
        assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12) and torch.allclose(
            h, last, rtol=1e-12, atol=1e-12
        )


def test_complex_structured_keeps_the_imaginary_part_when_asked():
    from constructions import GatedLinearRNN

    lam = torch.polar(torch.full((4,), 0.9, dtype=F64), torch.tensor([0.3, -0.3, 1.0, 2.0], dtype=F64))
    w = {k: (v.to(torch.complex128) if k != "lam" else lam) for k, v in _weights().items()}
    x = torch.randn(2, 7, 2, generator=_g(15), dtype=F64)
    ref, _ = _loop(w, x, real=False)
    with torch.no_grad():
        for real_output in (True, False):
            y = GatedLinearRNN(**w, real_output=real_output)(x, mode="parallel", gating="structured")
            expect = ref.real if real_output else ref
            assert y.dtype == expect.dtype and torch.allclose(y, expect, rtol=1e-12, atol=1e-12)
