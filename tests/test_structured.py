"""The structured fast path (gathers, chunked matmul form) against the dense template's step loop.

Bound: $\\gamma_n M + n\\eta$ (constructions/tolerance.py) with $M$ the dense template on absolute weights and
inputs (float64, step loop) and $n$ = ``rnn_path_length`` plus the re-association of the fast path
(derived: $T$ more roundings for the products by $\\lambda$, the chunk's $3L$ for its cumulative powers,
its sum over the chunk and the decayed state, 16 for the factored products); doubled for complex weights.
"""

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st


def _w64(t):
    if t is None:
        return None
    t = t.detach().to("cpu")
    return t.to(torch.complex128) if t.is_complex() else t.to(torch.float64)


def _reference(rnn, x, h0=None):
    """float64 dense step loop, its magnitude M (output and final state) and the rounding budget n."""
    from constructions import GatedLinearRNN
    from constructions.structured_attention import CHUNK
    from constructions.tolerance import rnn_path_length

    w = [_w64(t) for t in rnn.weights()]
    x64 = x.detach().to("cpu", torch.float64)
    absw = [None if t is None else t.abs().to(torch.float64) for t in w]
    kw, kwa = {}, {}
    if rnn.lam is None:  # input-dependent decay: lambda_t of these inputs, in float64 (M uses |lambda_t|)
        lam_t = _w64(rnn.lambdas(x64.to(rnn.A.dtype)))
        kw, kwa = {"decay": lambda _: lam_t}, {"decay": lambda _: lam_t.abs().to(torch.float64)}
    ref = GatedLinearRNN(*w, real_output=rnn.real_output, **kw)
    y, h = ref(x64, None if h0 is None else _w64(h0), path="loop", return_state=True)
    h0a = None if h0 is None else _w64(h0).abs().to(torch.float64)
    My, Mh = GatedLinearRNN(*absw, **kwa)(x64.abs(), h0a, path="loop", return_state=True)
    T = x.shape[1]
    n = rnn_path_length(T, rnn.d, rnn.num_neurons, rnn.num_gates) + T + 3 * CHUNK + 16
    if rnn.is_complex:
        n *= 2
    return y, h, My, Mh, n


def _assert_within(cand, ref, M, n, dtype, what):
    from constructions.tolerance import error_bound

    cand = _w64(cand)
    bound = error_bound(M, n, dtype)
    err = (cand - ref).abs()
    assert bool(torch.isfinite(err).all()), what
    assert bool((err <= bound).all()), (what, float((err / bound).max()))


def _lsa(H, d_k, d_v, d, with_W_O, kind, seed):
    from constructions import LinearSelfAttention
    from equivalence.numeric import degenerate_

    g = torch.Generator().manual_seed(seed)
    ws = [
        torch.randn(H, d_k, d, generator=g, dtype=torch.float64),
        torch.randn(H, d_k, d, generator=g, dtype=torch.float64),
        torch.randn(H, d_v, d, generator=g, dtype=torch.float64),
    ]
    if kind < 4:  # degenerate weights: rank one, zero rows, repeated values, extreme scale
        for t in ws:
            degenerate_(t, g, kind)
    W_O = torch.randn(3, H * d_v, generator=g, dtype=torch.float64) if with_W_O else None
    return LinearSelfAttention(*ws, W_O)


@st.composite
def lsa_cases(draw):
    return dict(
        H=draw(st.integers(1, 3)),
        d_k=draw(st.integers(1, 4)),
        d_v=draw(st.integers(1, 4)),
        d=draw(st.integers(1, 5)),
        with_W_O=draw(st.booleans()),
        kind=draw(st.integers(0, 5)),
        seed=draw(st.integers(0, 2**32 - 1)),
        method=draw(st.sampled_from(["direct", "compressed"])),
        B=draw(st.integers(1, 3)),
        T=draw(st.integers(0, 150)),
        state=draw(st.booleans()),
        chunk=draw(st.sampled_from([None, 5, 64, 100])),
    )


@given(lsa_cases())
@example(
    dict(
        H=1,
        d_k=3,
        d_v=5,
        d=4,
        with_W_O=False,
        kind=5,
        seed=0,
        method="direct",
        B=2,
        T=130,
        state=True,
        chunk=None,
    )
)
@example(
    dict(
        H=3,
        d_k=2,
        d_v=4,
        d=5,
        with_W_O=True,
        kind=4,
        seed=1,
        method="direct",
        B=1,
        T=64,
        state=False,
        chunk=64,
    )
)
@example(
    dict(
        H=2,
        d_k=2,
        d_v=2,
        d=3,
        with_W_O=True,
        kind=1,
        seed=2,
        method="compressed",
        B=2,
        T=70,
        state=True,
        chunk=5,
    )
)
def test_constructions_structured_equals_dense_loop(case):
    """float32 and float64 structured evaluation of the constructions = float64 dense step loop (output,
    h_T)."""
    from constructions import lsa_to_rnn

    c = case
    lsa = _lsa(c["H"], c["d_k"], c["d_v"], c["d"], c["with_W_O"], c["kind"], c["seed"])
    rnn64 = lsa_to_rnn(lsa, c["method"])
    g = torch.Generator().manual_seed(c["seed"] + 1)
    x = torch.randn(c["B"], c["T"], c["d"], generator=g, dtype=torch.float64)
    h0 = torch.randn(c["B"], rnn64.num_neurons, generator=g, dtype=torch.float64) if c["state"] else None
    y_ref, h_ref, My, Mh, n = _reference(rnn64, x, h0)
    for dtype in (torch.float64, torch.float32):
        rnn = lsa_to_rnn(lsa.to(dtype), c["method"]) if dtype != torch.float64 else rnn64
        plan = rnn.structure()
        hd = None if h0 is None else h0.to(dtype)
        y, h = plan.forward(
            x.to(dtype),
            hd if hd is not None else torch.zeros(c["B"], rnn.num_neurons, dtype=dtype),
            chunk=c["chunk"],
        )
        _assert_within(y, y_ref, My, n, dtype, ("y", dtype))
        _assert_within(h, h_ref, Mh, n, dtype, ("h_T", dtype))
        y2, h2 = rnn(x.to(dtype), hd, path="structured", return_state=True)
        _assert_within(y2, y_ref, My, n, dtype, ("forward y", dtype))
        _assert_within(h2, h_ref, Mh, n, dtype, ("forward h_T", dtype))


def _random_structured(seed, *, complex_=False, dtype=torch.float64):
    """A random RNN with the constructions' kind of structure but none of their regularity: repeated rows,
    one-hot output gates in both orientations, several decays (complex), duplicated and unread memories,
    zero D columns, unequal D column groups."""
    from constructions import GatedLinearRNN

    g = torch.Generator().manual_seed(seed)

    def ri(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    d, n_mem, n_q = ri(1, 4), ri(1, 8), ri(1, 4)
    n = n_mem + n_q
    poolA = torch.randn(ri(1, 4), d + 1, generator=g, dtype=torch.float64)
    poolB = torch.randn(ri(1, 4), d + 1, generator=g, dtype=torch.float64)
    poolB[0, :d] = 0  # a constant-only row, as the constructions' query neurons read
    A = poolA[torch.randint(0, poolA.shape[0], (n,), generator=g)]
    B = poolB[torch.randint(0, poolB.shape[0], (n,), generator=g)]
    decays = torch.tensor([1.0, 0.5, -0.75], dtype=torch.float64)
    lam = decays[torch.randint(0, 3, (n,), generator=g)].to(torch.complex128 if complex_ else torch.float64)
    if complex_:
        lam = lam * torch.exp(1j * torch.randint(0, 3, (n,), generator=g).to(torch.float64))
    order = torch.randperm(n, generator=g)
    mem, qry = order[:n_mem], order[n_mem:]
    lam[qry] = 0
    m = ri(1, 10)
    C = torch.zeros(m, n, dtype=lam.dtype)
    E = torch.zeros(m, n, dtype=lam.dtype)
    coefs = torch.tensor([1.0, 1.0, -2.0, 0.5], dtype=torch.float64)
    for k in range(m):
        p = mem[ri(0, n_mem - 1)]
        r = qry[ri(0, n_q - 1)]
        if ri(0, 1):
            p, r = r, p  # the memory on the E side
        C[k, p] = coefs[ri(0, 3)]
        E[k, r] = coefs[ri(0, 3)]
    D = torch.randn(ri(1, 3), m, generator=g, dtype=torch.float64)
    if m > 2:
        D[:, 1] = D[:, 0]  # repeated column
        D[:, -1] = 0  # a dropped gate
    w = [A, B, lam, C, E, D]
    if complex_:
        w = [t.to(torch.complex128) for t in w]
    cdt = (torch.complex64 if complex_ else torch.float32) if dtype == torch.float32 else None
    return GatedLinearRNN(*(t.to(cdt) if cdt else t for t in w)), d


@given(
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.integers(0, 140),
    st.booleans(),
    st.sampled_from([None, 3, 64]),
)
@example(0, False, 100, True, None)
@example(5, True, 65, False, 3)
def test_random_structured_rnns(seed, complex_, T, state, chunk):
    """The structure detector and both fast forms on RNNs that are not constructions (float64 and float32)."""
    rnn64, d = _random_structured(seed, complex_=complex_)
    g = torch.Generator().manual_seed(seed + 7)
    B = 2
    x = torch.randn(B, T, d, generator=g, dtype=torch.float64)
    h0 = None
    if state:
        h0 = torch.randn(B, rnn64.num_neurons, generator=g, dtype=torch.float64).to(
            torch.complex128 if complex_ else torch.float64
        )
    y_ref, h_ref, My, Mh, n = _reference(rnn64, x, h0)
    for dtype in (torch.float64, torch.float32):
        rnn, _ = _random_structured(seed, complex_=complex_, dtype=dtype)
        cdt = rnn.A.dtype
        plan = rnn.structure()
        assert plan is not None
        hd = torch.zeros(B, rnn.num_neurons, dtype=cdt) if h0 is None else h0.to(cdt)
        for scan_mode in ("parallel", "loop"):
            y, h = plan.forward(x.to(cdt), hd, scan_mode=scan_mode, chunk=chunk)
            y = y.real if y.is_complex() else y
            _assert_within(y, y_ref, My, n, dtype, (scan_mode, dtype))
            _assert_within(h, h_ref, Mh, n, dtype, (scan_mode, "h_T", dtype))


def test_detected_structure_of_the_constructions():
    from constructions import lsa_to_rnn

    lsa = _lsa(3, 2, 4, 5, True, 5, 0)
    plan = lsa_to_rnn(lsa, "direct").structure()
    assert plan.A.unique.shape[0] == 3 * 4 + 3 * 2  # W_V rows and W_Q rows
    assert plan.B.unique.shape[0] == 3 * 2 + 1  # W_K rows and the constant row
    assert plan.group_size == 2  # D's columns repeat over j (d_k = 2)
    heads = plan.attention
    assert heads is not None and heads.value_side == "A"
    assert [(hb.H, hb.dk, hb.dv) for hb in heads.batches] == [(3, 2, 4)]
    assert heads.uncovered.numel() == 0 and heads.query.numel() == 3 * 2
    comp = lsa_to_rnn(lsa, "compressed").structure()
    assert comp.attention is None and comp.useful  # C is dense: gathers only
    dense = _random_dense()
    assert dense.structure() is not None and not dense.structure().useful


def _random_dense():
    from constructions import GatedLinearRNN

    g = torch.Generator().manual_seed(3)
    n, d, m = 5, 3, 4
    return GatedLinearRNN(
        *(
            torch.randn(*s, generator=g, dtype=torch.float64)
            for s in ((n, d + 1), (n, d + 1), (n,), (m, n), (m, n), (2, m))
        )
    )


def test_auto_gating_choice_and_cache():
    """auto: dense for small calls on a fresh RNN and whenever autograd records; the plan follows in-place
    edits."""
    from constructions import lsa_to_rnn
    from constructions.evaluator import structure_cache
    from constructions.rnn import STRUCTURE_MIN_WORK

    rnn = lsa_to_rnn(_lsa(3, 4, 4, 3, False, 5, 1), "direct")
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    rnn(x)
    assert not structure_cache(rnn).built
    big = torch.randn(4, STRUCTURE_MIN_WORK // (4 * rnn.num_neurons) + 1, 3, dtype=torch.float64)
    rnn(big)
    assert structure_cache(rnn).built
    plan = rnn.structure()
    with torch.no_grad():
        rnn.D.mul_(2.0)
    assert rnn.structure() is not plan
    y_loop = rnn(x, path="loop")
    assert torch.allclose(rnn(x, path="structured"), y_loop, rtol=1e-12, atol=1e-12)


def test_gradients_use_the_dense_template():
    from constructions import GatedLinearRNN, lsa_to_rnn

    r = lsa_to_rnn(_lsa(1, 2, 3, 3, False, 5, 2), "direct")
    rnn = GatedLinearRNN(*r.weights(), trainable=True)
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    grads = []
    for mode in ("loop", "parallel"):
        rnn.zero_grad()
        rnn(x, mode=mode).square().sum().backward()
        grads.append([p.grad.clone() for p in (rnn.A, rnn.B, rnn.lam, rnn.C, rnn.E, rnn.D)])
    from constructions.evaluator import structure_cache

    assert not structure_cache(rnn).built
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def test_the_comparison_can_fail():
    """Power check: a plan with two query positions swapped in one head is rejected by the same bound."""
    import dataclasses

    from constructions import lsa_to_rnn

    lsa = _lsa(1, 3, 2, 4, False, 5, 3)
    rnn = lsa_to_rnn(lsa, "direct")
    x = torch.randn(2, 90, 4, dtype=torch.float64)
    y_ref, _, My, _, n = _reference(rnn, x)
    plan = rnn.structure()
    hb = plan.attention.batches[0]
    W = plan.attention.W.clone()
    rows = list(range(hb.q.start, hb.q.stop))
    W[rows[0]], W[rows[1]] = plan.attention.W[rows[1]], plan.attention.W[rows[0]]
    broken = dataclasses.replace(plan, attention=dataclasses.replace(plan.attention, W=W))
    y, _ = broken.forward(x, torch.zeros(2, rnn.num_neurons, dtype=torch.float64))
    with pytest.raises(AssertionError):
        _assert_within(y, y_ref, My, n, torch.float32, "broken plan")


def test_bad_gating_and_mode():
    from constructions import lsa_to_rnn

    rnn = lsa_to_rnn(_lsa(1, 2, 2, 3, False, 5, 1), "direct")
    x = torch.randn(1, 4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="gating"):
        rnn(x, gating="sparse")
    with pytest.raises(ValueError, match="mode"):
        rnn(x, mode="fast")
    with pytest.raises(ValueError, match="path must be one of"):
        rnn(x, path="sparse")
    with pytest.raises(ValueError, match="scan_mode"):
        rnn.structure().forward(x, torch.zeros(1, rnn.num_neurons, dtype=torch.float64), scan_mode="fast")


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["per-head", "per-neuron", "resets", "negative"]),
    st.integers(1, 140),
    st.booleans(),
)
@example(0, "per-head", 130, True)
@example(1, "per-neuron", 70, False)
def test_input_dependent_decay(seed, kind, T, state):
    """Input-dependent lambda_t on the direct construction: the matmul form when every head's memories
    share lambda_t (Mamba-2 / simple GLA), gathers and the chunked scan otherwise; both against the dense
    loop."""
    from constructions import GatedLinearRNN, lsa_to_rnn

    H, d_k, d_v, d = 2, 2, 3, 3
    base = lsa_to_rnn(_lsa(H, d_k, d_v, d, True, 5, seed % 1000), "direct")
    n_kv = H * d_k * d_v
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(H if kind != "per-neuron" else n_kv, d, generator=g, dtype=torch.float64)

    def decay(x):
        a = torch.sigmoid(x @ w.to(x.dtype).T + 1.0)
        if kind == "resets":
            a = torch.where(a < 0.4, torch.zeros_like(a), a)
        if kind == "negative":
            a = 2 * a - 1
        if kind != "per-neuron":
            a = a.repeat_interleave(d_k * d_v, dim=-1)
        return torch.cat([a, a.new_zeros(*a.shape[:-1], base.num_neurons - n_kv)], dim=-1)

    x = torch.randn(2, T, d, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, base.num_neurons, generator=g, dtype=torch.float64) if state else None
    rnn64 = GatedLinearRNN(*base.weights()[:2], None, *base.weights()[3:], decay=decay)
    y_ref, h_ref, My, Mh, n = _reference(rnn64, x, h0)
    for dtype in (torch.float64, torch.float32):
        rnn = GatedLinearRNN(
            *(t.to(dtype) for t in base.weights()[:2]),
            None,
            *(t.to(dtype) for t in base.weights()[3:]),
            decay=decay,
        )
        y, h = rnn(x.to(dtype), None if h0 is None else h0.to(dtype), path="structured", return_state=True)
        _assert_within(y, y_ref, My, n, dtype, (kind, dtype))
        _assert_within(h, h_ref, Mh, n, dtype, (kind, "h_T", dtype))
        lam_t = rnn.lambdas(x.to(dtype))
        heads = rnn.structure().heads_for(lam_t)
        # the gating pairs memories with queries whatever the decay, unless a memory's lambda_t is 0 at every
        # step
        # (a reset at each of few steps): it then acts as a query
        dead = bool((lam_t[..., :n_kv] == 0).flatten(0, 1).all(0).any())
        assert (heads is None) == dead
        if heads is not None:
            assert (heads.head_decays(lam_t, 64) is None) == (kind == "per-neuron")


@pytest.mark.gpu
def test_structured_path_on_cuda(device):
    """The same comparison on the GPU (run with ``pytest -m gpu --device cuda``): direct construction,
    constant, complex and input-dependent decays, float32 on ``device`` against the float64 CPU dense loop."""
    from constructions import GatedLinearRNN, lsa_to_rnn

    if not device.startswith("cuda"):
        pytest.skip("run with --device cuda")
    base = lsa_to_rnn(_lsa(2, 4, 4, 6, True, 5, 0), "direct")
    x = torch.randn(3, 300, 6, dtype=torch.float64)
    n_kv = 2 * 4 * 4
    lam_c = base.lam.to(torch.complex128).clone()
    lam_c[:n_kv] = 0.97 * torch.exp(torch.tensor(0.2j, dtype=torch.complex128))
    w = torch.randn(1, 6, dtype=torch.float64)

    def decay(z):
        a = torch.sigmoid(z @ w.to(device=z.device, dtype=z.dtype).T)
        return torch.cat(
            [a.expand(*z.shape[:2], n_kv), a.new_zeros(*z.shape[:2], base.num_neurons - n_kv)], -1
        )

    cases = [base.weights(), (*base.weights()[:2], lam_c, *base.weights()[3:])]
    rnns = [GatedLinearRNN(*c) for c in cases]
    rnns.append(GatedLinearRNN(*base.weights()[:2], None, *base.weights()[3:], decay=decay))
    for rnn64 in rnns:
        y_ref, _, My, _, n = _reference(rnn64, x)
        ws = [
            None
            if t is None
            else t.to(device=device, dtype=torch.complex64 if t.is_complex() else torch.float32)
            for t in rnn64.weights()
        ]
        rnn = GatedLinearRNN(*ws[:2], ws[2], *ws[3:], decay=rnn64.decay)
        y = rnn(x.to(device, torch.float32), path="structured")
        assert y.device.type == "cuda"
        _assert_within(y, y_ref, My, n, torch.float32, "cuda")


def test_structured_gating_refuses_trainable_weights():
    from constructions import GatedLinearRNN, lsa_to_rnn

    r = lsa_to_rnn(_lsa(1, 2, 2, 3, False, 5, 2), "direct")
    rnn = GatedLinearRNN(*r.weights(), trainable=True)
    x = torch.randn(1, 8, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="no gradient"):
        rnn(x, path="structured")
    with torch.no_grad():
        assert torch.allclose(rnn(x, path="structured"), rnn(x, path="loop"), rtol=1e-12, atol=1e-12)


class _GroupDecay(torch.nn.Module):
    """A decay shared by groups of neurons offering the factored protocol (``factored(z)``), with exact zeros
    (resets), ones, negative values and constant memories: what the fast path must get right."""

    def __init__(self, w, channel, const, kind):
        super().__init__()
        self.w, self.channel, self.const, self.kind = w, channel, const, kind
        self.spread_calls = 0

    def factored(self, z):
        a = torch.sigmoid(z @ self.w.to(z.dtype).T + 1.0)  # [B, T, c]
        if self.kind == "resets":
            a = torch.where(a < 0.4, torch.zeros_like(a), a)
        elif self.kind == "ones":
            a = torch.where(a < 0.6, torch.ones_like(a), a)
        elif self.kind == "negative":
            a = 2 * a - 1
        elif self.kind == "zero":
            a = torch.zeros_like(a)
        elif self.kind == "tiny":
            a = a * 1e-30
        return a, self.channel, self.const.to(z.dtype)

    def forward(self, z):
        self.spread_calls += 1
        a, ch, const = self.factored(z)
        return torch.where(ch >= 0, a[..., ch.clamp(min=0)], const)


def _group_decay_rnn(seed, kind, layout, dtype=torch.float64):
    """Direct construction (H=2, d_k=2, d_v=3) with a grouped decay: ``per-head`` (one channel per head),
    ``per-key`` (one per head and key: GLA), ``const-head`` (head 1's memories constant 0.9), ``per-neuron``
    (one channel per memory: no matmul form)."""
    from constructions import GatedLinearRNN, lsa_to_rnn

    H, d_k, d_v, d = 2, 2, 3, 3
    base = lsa_to_rnn(_lsa(H, d_k, d_v, d, True, 5, seed % 1000), "direct")
    n, n_kv = base.num_neurons, H * d_k * d_v
    g = torch.Generator().manual_seed(seed)
    heads = torch.arange(H).repeat_interleave(d_k * d_v)
    keys = torch.arange(d_k).repeat(H * d_v) + d_k * heads  # kv[h, i, j] reads key j
    kv_channel = {
        "per-head": heads,
        "per-key": keys,
        "const-head": torch.where(heads == 0, 0, -1),
        "per-neuron": torch.arange(n_kv),
    }[layout]
    channel = torch.cat([kv_channel, torch.full((n - n_kv,), -1)])
    const = torch.cat([torch.full((n_kv,), 0.9), torch.zeros(n - n_kv)]).to(torch.float64)
    w = torch.randn(int(channel.max()) + 1, d, generator=g, dtype=torch.float64)
    dec = _GroupDecay(w, channel, const, kind)
    return GatedLinearRNN(
        *(t.to(dtype) for t in base.weights()[:2]),
        None,
        *(t.to(dtype) for t in base.weights()[3:]),
        decay=dec,
    ), d


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["plain", "resets", "ones", "negative", "zero", "tiny"]),
    st.sampled_from(["per-head", "per-key", "const-head", "per-neuron"]),
    st.integers(1, 140),
    st.booleans(),
)
@example(0, "plain", "per-head", 1, True)  # T = 1
@example(1, "resets", "per-head", 97, True)  # T not a multiple of the chunk, lambda_t = 0 steps
@example(2, "zero", "per-head", 33, False)  # lambda_t = 0 throughout: the memories act as queries
@example(3, "ones", "const-head", 64, True)
@example(4, "plain", "per-key", 70, True)
@example(5, "resets", "per-key", 33, True)
@example(6, "plain", "per-neuron", 40, True)
def test_factored_decay_matches_dense_loop(seed, kind, layout, T, state):
    """A decay shared by groups of neurons (``factored(z)``): the structured path reads the ``[B, T, c]``
    channel values and never spreads them to ``[B, T, n]`` when every head's memories read one channel or one
    constant (or, GLA, the memories of each key position do); otherwise it spreads them. Both against the
    float64 dense step loop (output and h_T), float64 and float32."""
    from constructions.structured import FactoredDecay

    rnn64, d = _group_decay_rnn(seed, kind, layout)
    g = torch.Generator().manual_seed(seed + 3)
    x = torch.randn(2, T, d, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, rnn64.num_neurons, generator=g, dtype=torch.float64) if state else None
    y_ref, h_ref, My, Mh, n = _reference(rnn64, x, h0)
    for dtype in (torch.float64, torch.float32):
        rnn, _ = _group_decay_rnn(seed, kind, layout, dtype)
        with torch.no_grad():
            y, h = rnn(
                x.to(dtype), None if h0 is None else h0.to(dtype), path="structured", return_state=True
            )
        _assert_within(y, y_ref, My, n, dtype, (kind, layout, dtype))
        _assert_within(h, h_ref, Mh, n, dtype, (kind, layout, "h_T", dtype))
        assert rnn.decay.spread_calls == 0  # the fast path never calls the decay's [B, T, n] spread
        fd = FactoredDecay(*rnn.decay.factored(x.to(dtype)))
        heads = rnn.structure().heads_for(fd)
        matmul_form = heads is not None and heads.head_decays(fd, 64) is not None
        # a channel 0 at every step: its memories act as queries
        dead = bool((fd.values == 0).flatten(0, 1).all(0).any())
        assert matmul_form == (layout != "per-neuron" and not dead), (kind, layout)
        if matmul_form:
            ndim = {heads.head_decays(fd, 64)[0].ndim}
            assert ndim == ({4} if layout == "per-key" else {3}), (layout, ndim)


def test_factored_decay_of_the_variants_is_not_spread():
    """The input-dependent decay object of the variants (InputDependentDecay: simple GLA, one channel per
    head) takes the factored path: its [B, T, n] spread (forward) is never called by the fast path, and the
    result is the loop's."""
    from constructions import GatedLinearRNN, lsa_to_rnn
    from constructions.variants import InputDependentDecay

    base = lsa_to_rnn(_lsa(2, 3, 2, 4, True, 5, 11), "direct")
    n, n_kv = base.num_neurons, 2 * 3 * 2
    g = torch.Generator().manual_seed(0)
    channel = torch.cat([torch.arange(2).repeat_interleave(6), torch.full((n - n_kv,), -1)])
    dec = InputDependentDecay(
        torch.randn(2, 5, generator=g, dtype=torch.float64), channel, torch.zeros(n, dtype=torch.float64)
    )
    rnn = GatedLinearRNN(*base.weights()[:2], None, *base.weights()[3:], decay=dec)
    calls = []
    dec.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(3, 77, 4, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = rnn(x, path="structured")
        assert not calls
        y_loop = rnn(x, path="loop")
    assert calls  # the loop (the reference) spreads it
    y_ref, _, My, _, nr = _reference(rnn, x)
    _assert_within(y, y_ref, My, nr, torch.float64, "InputDependentDecay")
    _assert_within(y_loop, y_ref, My, nr, torch.float64, "loop")


def test_factored_decay_gradient_takes_the_dense_template():
    """A decay with trainable parameters under autograd: the fast path is not used (the dense template is the
    model for training) and the gradients equal the loop's."""
    from constructions import GatedLinearRNN

    rnn0, d = _group_decay_rnn(5, "plain", "per-head")
    rnn0.decay.w = torch.nn.Parameter(rnn0.decay.w.clone())
    rnn = GatedLinearRNN(*rnn0.weights()[:2], None, *rnn0.weights()[3:], decay=rnn0.decay)
    x = torch.randn(2, 50, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = []
    for mode in ("loop", "parallel"):
        y = rnn(x, mode=mode)
        grads.append(torch.autograd.grad(y.square().sum(), rnn.decay.w)[0])
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)
    assert bool(grads[0].abs().sum() > 0)


def test_bad_factored_decay():
    from constructions import GatedLinearRNN

    rnn0, d = _group_decay_rnn(0, "plain", "per-head")

    class Bad(_GroupDecay):
        def factored(self, z):
            a, ch, const = super().factored(z)
            return a, ch[:-1], const

    rnn = GatedLinearRNN(
        *rnn0.weights()[:2],
        None,
        *rnn0.weights()[3:],
        decay=Bad(rnn0.decay.w, rnn0.decay.channel, rnn0.decay.const, "plain"),
    )
    with pytest.raises(ValueError, match="factored"):
        rnn(torch.zeros(1, 5, d, dtype=torch.float64), path="structured")

    class NaN(_GroupDecay):
        def factored(self, z):
            a, ch, const = super().factored(z)
            return a * float("nan"), ch, const

    rnn = GatedLinearRNN(
        *rnn0.weights()[:2],
        None,
        *rnn0.weights()[3:],
        decay=NaN(rnn0.decay.w, rnn0.decay.channel, rnn0.decay.const, "plain"),
    )
    with pytest.raises(ValueError, match="non-finite"):
        rnn(torch.zeros(1, 5, d, dtype=torch.float64), path="structured")


def test_always_zero_is_exact():
    """The neurons with lambda_t = 0 at every step: a neuron 0 at the first step but not later is not one."""
    from constructions.structured import _always_zero

    lam = torch.rand(2, 9, 5) + 0.1
    lam[:, :, 1] = 0
    lam[:, 0, 3] = 0  # zero at the first step only
    lam[1, :, 4] = 0  # zero in one sequence only
    assert _always_zero(lam).tolist() == [False, True, False, False, False]
    assert _always_zero(lam[:, :0]).all()


@pytest.mark.parametrize("special", [True, False])
@pytest.mark.parametrize("per_key", [False, True])
@pytest.mark.parametrize("chunk", [1, 2, 8, 32])
def test_chunk_attention_input_dependent_against_the_recurrence(chunk, per_key, special):
    """chunk_attention with lambda_t [B, T, H] (zeros, ones, negatives; T not a multiple of the chunk) equals
    the recurrence S_t = lambda_t S_{t-1} + v_t k_t^T, o_t = S_t q_t, under the tolerance model: both ways of
    passing the state between chunks (the in-place steps for K <= 64 chunks, the blocked scan beyond: chunk =
    1, 2 here). ``per_key``: lambda_t [B, T, H, d_k] (GLA), S_t = S_{t-1} diag(lambda_t) + v_t k_t^T.
    ``special``: exact zeros, ones and sign flips (per head: the division-free products); without them, per
    head, Gamma = P_t / P_s."""
    from constructions.structured_attention import chunk_attention
    from constructions.tolerance import error_bound

    g = torch.Generator().manual_seed(chunk)
    B, T, H, dk, dv = 2, 151, 2, 3, 2
    q, k = (
        torch.randn(B, T, H, dk, generator=g, dtype=torch.float64),
        torch.randn(B, T, H, dk, generator=g, dtype=torch.float64),
    )
    v = torch.randn(B, T, H, dv, generator=g, dtype=torch.float64)
    # |lambda| <= 1 keeps M (and the bound) tight; mostly near 1 so that chunks carry state, with rare exact
    # zeros,
    # ones and sign flips
    shape = (B, T, H, dk) if per_key else (B, T, H)
    lam = 0.8 + 0.2 * torch.rand(*shape, generator=g, dtype=torch.float64)
    r = torch.rand(*shape, generator=g, dtype=torch.float64)
    if special:
        lam = torch.where(r < 0.01, 0.0, torch.where(r < 0.1, 1.0, torch.where(r < 0.2, -lam, lam)))
    S0 = torch.randn(B, H, dv, dk, generator=g, dtype=torch.float64)

    def recurrence(q, k, v, lam, S):
        outs = []
        for t in range(T):
            decay = lam[:, t, :, None, :] if per_key else lam[:, t, :, None, None]
            S = decay * S + v[:, t, :, :, None] * k[:, t, :, None, :]
            outs.append((S @ q[:, t, :, :, None])[..., 0])
        return torch.stack(outs, 1), S

    ref, S_ref = recurrence(q, k, v, lam, S0)
    M, SM = recurrence(q.abs(), k.abs(), v.abs(), lam.abs(), S0.abs())
    n = 4 * T + 3 * chunk + 2 * (dk + 2)
    with torch.no_grad():
        o, S = chunk_attention(q.float(), k.float(), v.float(), lam.float(), S0.float(), chunk=chunk)
    assert bool(((o.double() - ref).abs() <= error_bound(M, n, torch.float32)).all())
    assert bool(((S.double() - S_ref).abs() <= error_bound(SM, n, torch.float32)).all())
