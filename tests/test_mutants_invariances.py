"""Mutation-testing kills for constructions/invariances.py (docs/reliability.md, "Mutation testing").

Full messages of every check, the private helpers' exact contracts (``_key``, ``_unit``,
``_sign_largest_positive``), what every map carries over (upstream layer, ``real_output``, an
input-dependent decay, fresh storage, mixed real/complex branches), and the canonical form's
conventions checked rule by rule, with ties constructed on purpose so that every tie-break is exercised."""

import math

import pytest
import torch

F64 = torch.float64


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _msg(exc_type, f, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        f(*args, **kwargs)
    return str(info.value)


def _rnn(seed=0, n=4, d=2, m=3, d_out=2, lam=None, **opts):
    from constructions import GatedLinearRNN

    g = _g(seed)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=F64)

    lam = torch.tensor([1.0, 0.5, 0.0, -0.75][:n], dtype=F64) if lam is None else lam
    return GatedLinearRNN(w(n, d + 1), w(n, d + 1), lam, w(m, n), w(m, n), w(d_out, m), **opts)


def _decay_rnn(seed=0, n=4, d=2, m=3):
    from constructions import GatedLinearRNN

    g = _g(seed)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=F64)

    W = w(n, d)
    return GatedLinearRNN(
        w(n, d + 1), w(n, d + 1), None, w(m, n), w(m, n), w(2, m), decay=lambda z: torch.sigmoid(z @ W.T)
    )


def _norm_bound(length):
    """|‖v/‖v‖‖ - 1| for a float64 vector of ``length`` entries: two norms and one division (Higham γ_n)."""
    from constructions.tolerance import gamma, unit_roundoff

    return gamma(2 * length + 1, unit_roundoff(F64))


# -- messages
# ----------------------------------------------------------------------------------------------------
def test_every_message_exactly():
    from constructions import GatedLinearRNN
    from constructions import invariances as inv

    rnn = _rnn()
    assert _msg(ValueError, inv.permute_neurons, rnn, [0, 0, 1, 2]) == (
        "neuron permutation must be a permutation of range(4); got [0, 0, 1, 2]"
    )
    assert _msg(ValueError, inv.permute_gates, rnn, [0, 1]) == (
        "gate permutation must be a permutation of range(3); got [0, 1]"
    )
    assert _msg(ValueError, inv.permute_neurons, rnn, list(range(25))) == (
        f"neuron permutation must be a permutation of range(4); got {list(range(20))}"
    )
    assert _msg(ValueError, inv.permute_gates, rnn, [[0, 1, 2]]) == (
        "gate permutation must be a permutation of range(3); got [[0, 1, 2]]"
    )
    assert _msg(ValueError, inv.rescale_input_branch, rnn, 0, 0) == (
        "alpha must be non-zero (the rescaling must be invertible)"
    )
    assert (
        _msg(ValueError, inv.rescale_neuron, rnn, 0, 0.0)
        == "c must be non-zero (the rescaling must be invertible)"
    )
    for a, b in ((0, 1.0), (1.0, 0), (0, 0)):
        assert _msg(ValueError, inv.rescale_output_branches, rnn, 0, a, b) == (
            "alpha and beta must be non-zero (the rescaling must be invertible)"
        )
    cplx = GatedLinearRNN(*(w.detach().to(torch.complex128) for w in rnn.weights()), real_output=False)
    assert _msg(ValueError, inv.conjugate, cplx) == (
        "conjugation is a symmetry only with the real readout (real_output=True)"
    )
    assert _msg(TypeError, inv.canonicalize, "not an rnn") == "rnn must be a GatedLinearRNN; got str"
    assert _msg(TypeError, inv.canonicalize, None) == "rnn must be a GatedLinearRNN; got NoneType"
    assert _msg(ValueError, inv.canonicalize, _decay_rnn()) == (
        "canonicalize needs a constant lambda; this RNN has an input-dependent decay"
    )
    assert _msg(
        ValueError,
        inv.canonicalize,
        GatedLinearRNN(*(w.detach().to(torch.complex128) for w in rnn.weights())),
    ) == (
        "canonicalize needs real weights; this RNN is complex (per-neuron phases have no canonical rule here)"
    )
    assert inv.KEY_DECIMALS == 10


# -- private helpers
# -----------------------------------------------------------------------------------------------
def test_key_rounds_and_maps_negative_zero_to_zero():
    from constructions.invariances import _key

    k = _key(torch.tensor([-0.0, 1.23456789012345, -1e-12, -2.5], dtype=F64))
    assert k == (0.0, 1.2345678901, 0.0, -2.5)
    assert all(isinstance(a, float) for a in k)
    # -0.0 (and a rounded -1e-12) -> +0.0
    assert math.copysign(1.0, k[0]) == 1.0 and math.copysign(1.0, k[2]) == 1.0
    assert _key(torch.zeros(0, dtype=F64)) == ()


def test_unit_exact_and_zero_vector():
    from constructions.invariances import _unit

    u, norm = _unit(torch.tensor([3.0, -4.0], dtype=F64))
    assert u.tolist() == [0.6, -0.8] and norm == 5.0 and isinstance(norm, float)
    z = torch.zeros(3, dtype=F64)
    u, norm = _unit(z)
    assert u is z and norm == 0.0 and isinstance(norm, float)  # no 0/0 = NaN, no fake norm


def test_sign_largest_positive_exact():
    from constructions.invariances import _sign_largest_positive as s

    def t(*v):
        return torch.tensor(v, dtype=F64)

    assert s(t(0.1, -0.3)) == -1.0  # magnitudes below 0.5: rounding keeps 10 decimals, not 0
    assert s(t(-0.1, 0.3)) == 1.0
    assert s(t(0.3, -0.3)) == 1.0 and s(t(-0.3, 0.3)) == -1.0  # the first largest entry decides
    assert s(t(0.2, -0.2 - 1e-12)) == 1.0  # equal after rounding to 10 decimals: the first decides
    assert s(t(0.2, -0.2 - 1e-9)) == -1.0
    assert s(t(0.0, 0.0)) == 1.0 and s(t(1e-12, -1e-12)) == 1.0  # nothing left after rounding: +1 exactly
    assert s(t(-2.0, 1.0)) == -1.0 and s(t(2.0)) == 1.0


# -- what every map carries over
# -------------------------------------------------------------------------------------
def _all_maps(rnn):
    from constructions import invariances as inv

    n, m = rnn.num_neurons, rnn.num_gates
    out = {
        "permute_neurons": inv.permute_neurons(rnn, torch.arange(n).flip(0)),
        "permute_gates": inv.permute_gates(rnn, torch.arange(m).flip(0)),
        "rescale_input_branch": inv.rescale_input_branch(rnn, 0, 2.0),
        "rescale_neuron": inv.rescale_neuron(rnn, 0, 2.0),
        "rescale_output_branches": inv.rescale_output_branches(rnn, 0, 2.0, 4.0),
        "swap_input_branches": inv.swap_input_branches(rnn, 0),
        "swap_output_branches": inv.swap_output_branches(rnn, 0),
    }
    if rnn.real_output:
        out["conjugate"] = inv.conjugate(rnn)
    if rnn.lam is not None and not rnn.is_complex:
        out["canonicalize"] = inv.canonicalize(rnn)
    return out


def test_maps_keep_upstream_and_real_output():
    def up(x):
        return 2.0 * x

    rnn = _rnn(upstream=up)
    for name, r in _all_maps(rnn).items():
        assert r.upstream is up, name
        assert r.real_output is True, name
    plain = _rnn()
    for name, r in _all_maps(plain).items():
        assert r.upstream is None, name
    cr = _rnn(lam=torch.tensor([1.0, 0.5, 0.0, -0.75], dtype=F64), real_output=False)
    cr = type(cr)(*(w.detach().to(torch.complex128) for w in cr.weights()), real_output=False, upstream=up)
    for name, r in _all_maps(cr).items():
        assert r.real_output is False and r.upstream is up, name


def test_maps_return_fresh_storage():
    """Nothing is modified in place, and the result never aliases the input's weights."""
    rnn = _rnn()
    before = [w.detach().clone() for w in rnn.weights()]
    for name, r in _all_maps(rnn).items():
        with torch.no_grad():
            for w in r.weights():
                w.fill_(7.0)
        for w, b in zip(rnn.weights(), before):
            assert torch.equal(w, b), name
    drnn = _decay_rnn()
    r = __import__("constructions").invariances.conjugate(drnn)
    with torch.no_grad():
        r.A.fill_(7.0)
    assert not torch.equal(drnn.A, r.A)


def test_maps_on_an_input_dependent_decay():
    from constructions import invariances as inv

    rnn = _decay_rnn()
    x = torch.randn(2, 5, 2, generator=_g(9), dtype=F64)
    y = rnn(x)
    q = inv.permute_gates(rnn, [2, 0, 1])
    assert q.lam is None and q.decay is rnn.decay
    assert torch.equal(q.C, rnn.C[[2, 0, 1]]) and torch.equal(q.D, rnn.D[:, [2, 0, 1]])
    c = inv.conjugate(rnn)
    assert c.lam is None and c.decay is rnn.decay and torch.equal(c.A, rnn.A)
    for t in (q, c):
        torch.testing.assert_close(t(x), y, rtol=1e-12, atol=1e-12 * float(y.abs().max()))


def test_permutation_given_as_floats_or_lists():
    from constructions import invariances as inv

    rnn = _rnn()
    p = [2, 0, 3, 1]
    for given in (torch.tensor(p, dtype=F64), p, tuple(p), torch.tensor(p, dtype=torch.int32)):
        r = inv.permute_neurons(rnn, given)
        assert torch.equal(r.A, rnn.A[p]) and torch.equal(r.lam, rnn.lam[p]) and torch.equal(r.C, rnn.C[:, p])
    r = inv.permute_gates(rnn, torch.tensor([1.0, 2.0, 0.0], dtype=F64))
    assert torch.equal(r.C, rnn.C[[1, 2, 0]]) and torch.equal(r.E, rnn.E[[1, 2, 0]])


@pytest.mark.parametrize("complex_first", [False, True])
def test_swaps_of_a_real_and_a_complex_branch(complex_first):
    from constructions import GatedLinearRNN
    from constructions import invariances as inv

    rnn = _rnn(n=3, m=2, lam=torch.tensor([0.5, 0.25, 0.0], dtype=F64))
    A, B, lam, C, E, D = (w.detach() for w in rnn.weights())
    cA = A + 1j * torch.randn(A.shape, generator=_g(4), dtype=F64)
    cC = C + 1j * torch.randn(C.shape, generator=_g(5), dtype=F64)
    if complex_first:
        r = GatedLinearRNN(cA, B, lam, cC, E, D)
        a, b, c, e = cA, B.to(torch.complex128), cC, E.to(torch.complex128)
    else:
        r = GatedLinearRNN(B, cA, lam, E, cC, D)
        a, b, c, e = B.to(torch.complex128), cA, E.to(torch.complex128), cC
    s = inv.swap_input_branches(r, 1)
    assert s.A.dtype == s.B.dtype == torch.complex128
    assert torch.equal(s.A, torch.stack([a[0], b[1], a[2]])) and torch.equal(
        s.B, torch.stack([b[0], a[1], b[2]])
    )
    s = inv.swap_output_branches(r, 0)
    assert s.C.dtype == s.E.dtype == torch.complex128
    assert torch.equal(s.C, torch.stack([e[0], c[1]])) and torch.equal(s.E, torch.stack([c[0], e[1]]))


# -- canonical form: conventions rule by rule
# -----------------------------------------------------------------------
def _check_conventions(c):
    """Every rule of the module docstring, checked on the canonical RNN ``c`` (rounded keys, as the rules
    say)."""
    from constructions.invariances import KEY_DECIMALS, _key

    A, B, lam, C, E, D = (w.detach() for w in c.weights())
    n, m, d = c.num_neurons, c.num_gates, c.d

    def rd(v):
        return round(float(v), KEY_DECIMALS)

    for k in range(n):
        if not (A[k].any() or B[k].any()):
            continue
        assert abs(float(A[k].norm()) - 1) <= _norm_bound(d + 1) and abs(
            float(B[k].norm()) - 1
        ) <= _norm_bound(d + 1)
        assert rd(B[k, d].abs()) >= rd(A[k, d].abs())  # the branch reading the appended 1 is B

        def first(v):
            return next(x for x in _key(v) if x != 0)

        assert first(A[k]) > 0 and first(B[k]) > 0  # signs: largest lexicographic key
    keys = [(-rd(lam[k]), tuple(-v for v in _key(A[k])), tuple(-v for v in _key(B[k]))) for k in range(n)]
    assert keys == sorted(keys)  # lambda descending, then A, then B descending
    memory = (lam - 1).abs() <= 10.0**-KEY_DECIMALS
    for j in range(m):
        if not (C[j].any() or E[j].any()):
            assert not D[:, j].any()
            continue
        for v in (C[j], E[j]):
            assert abs(float(v.norm()) - 1) <= _norm_bound(n)
            assert float(v[int(v.abs().argmax())]) > 0
        kc = (rd(C[j][memory].abs().sum()), _key(C[j]))
        ke = (rd(E[j][memory].abs().sum()), _key(E[j]))
        assert kc >= ke  # the memory side is C
    gkeys = [(tuple(-v for v in _key(C[j])), tuple(-v for v in _key(E[j]))) for j in range(m)]
    assert gkeys == sorted(gkeys)


def _assert_same_function(a, b, seed=0):
    x = torch.randn(2, 6, a.d, generator=_g(seed), dtype=F64)
    ya, yb = a(x), b(x)
    torch.testing.assert_close(yb, ya, rtol=1e-10, atol=1e-10 * float(ya.abs().max()))


@pytest.mark.parametrize("seed", range(4))
def test_canonical_conventions_on_random_rnns(seed):
    from constructions.invariances import canonicalize

    g = _g(100 + seed)
    lam = torch.tensor([1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, -0.5], dtype=F64)
    lam = lam[torch.randperm(8, generator=g)]
    rnn = _rnn(seed, n=8, d=3, m=10, lam=lam)
    c = canonicalize(rnn)
    _check_conventions(c)
    assert sorted(c.lam.tolist(), reverse=True) == c.lam.tolist()
    _assert_same_function(rnn, c, seed)
    cc = canonicalize(c)
    _check_conventions(cc)
    for w, ww in zip(c.weights(), cc.weights()):
        torch.testing.assert_close(ww, w, rtol=0, atol=1e-12)


def test_memory_side_is_decided_by_lambda_within_rounding_of_one():
    """lambda = 1 - 2^-34 (5.8e-11 from 1) is a memory for the C/E rule; the rule must use it."""
    from constructions.invariances import canonicalize

    lam = torch.tensor([1 - 2.0**-34] * 3 + [0.5, 0.25, 0.0], dtype=F64)
    for seed in range(3):
        c = canonicalize(_rnn(seed, n=6, d=2, m=10, lam=lam))
        _check_conventions(c)


def test_canonical_neuron_order_within_one_lambda():
    from constructions.invariances import canonicalize

    c = canonicalize(_rnn(3, n=6, d=2, m=2, lam=torch.full((6,), 0.5, dtype=F64)))
    _check_conventions(c)
    assert torch.equal(c.A[:, 0], c.A[:, 0].sort(descending=True).values)
    assert len(set(c.A[:, 0].tolist())) == 6


def test_canonical_ties_in_lambda_and_a_are_broken_by_b():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    A = torch.tensor([[1.0, 0.0, 0.0]] * 4, dtype=F64)
    B = torch.tensor([[0.1, 0.2, 1.0], [-0.3, 0.1, 1.0], [0.2, -0.1, 1.0], [0.05, 0.3, 1.0]], dtype=F64)
    g = _g(8)
    C, E, D = (torch.randn(*s, generator=g, dtype=F64) for s in ((3, 4), (3, 4), (2, 3)))
    rnn = GatedLinearRNN(A, B, torch.full((4,), 0.5, dtype=F64), C, E, D)
    c = canonicalize(rnn)
    _check_conventions(c)
    assert torch.equal(c.A, A)  # one canonical A for all four: the B rows decide the order
    firsts = c.B[:, 0].tolist()
    assert firsts == sorted(firsts, reverse=True) and len(set(firsts)) == 4
    _assert_same_function(rnn, c)


def _canonical_neurons(n, d=1):
    """Neurons already in canonical form with exact unit rows (A = e_0, B = e_d) and distinct descending
    lambda: rule 1 scales the columns of C and E by exactly 1."""
    A = torch.zeros(n, d + 1, dtype=F64)
    A[:, 0] = 1.0
    B = torch.zeros(n, d + 1, dtype=F64)
    B[:, d] = 1.0
    lam = torch.tensor([0.5 / 2**k for k in range(n)], dtype=F64)
    return A, B, lam


def test_canonical_gate_ties_in_c_are_broken_by_e():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    A, B, lam = _canonical_neurons(3)
    C = torch.tensor([[0.9, 0.1, 0.2]] * 4, dtype=F64)
    E = torch.tensor([[0.1, 0.5, -0.3], [0.2, -0.1, 0.6], [0.3, 0.4, 0.1], [-0.1, 0.2, 0.7]], dtype=F64)
    D = torch.randn(2, 4, generator=_g(2), dtype=F64)
    rnn = GatedLinearRNN(A, B, lam, C, E, D)
    c = canonicalize(rnn)
    _check_conventions(c)
    assert torch.equal(c.A, A) and torch.equal(c.B, B) and torch.equal(c.lam, lam)
    assert all(torch.equal(c.C[j], c.C[0]) for j in range(4))  # one C for all: E decides the order
    keys = [tuple(e.tolist()) for e in c.E]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 4
    _assert_same_function(rnn, c)


def test_canonical_gate_exact_tie_keeps_c_on_the_c_side():
    """C and E equal to 10 decimals but not bitwise: the tie keeps the given order (``>=``)."""
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    A, B, lam = _canonical_neurons(2)
    Crow = torch.tensor([0.3, 0.7], dtype=F64)
    Erow = torch.tensor([0.3, 0.7 + 1e-14], dtype=F64)
    rnn = GatedLinearRNN(A, B, lam, Crow[None].clone(), Erow[None].clone(), torch.tensor([[2.0]], dtype=F64))
    c = canonicalize(rnn)
    cu, eu = Crow / float(Crow.norm()), Erow / float(Erow.norm())
    assert not torch.equal(cu, eu)
    assert torch.equal(c.C[0], cu) and torch.equal(c.E[0], eu)
    assert float(c.D[0, 0]) == 2.0 * float(Crow.norm()) * float(Erow.norm())


def test_canonical_gate_signs_and_scale_into_d():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    A, B, lam = _canonical_neurons(2)
    C = torch.tensor([[0.0, -2.0]], dtype=F64)  # largest entry negative: sign -1
    E = torch.tensor([[4.0, 0.0]], dtype=F64)
    rnn = GatedLinearRNN(A, B, lam, C, E, torch.tensor([[3.0]], dtype=F64))
    c = canonicalize(rnn)
    # neither side reads a memory (lambda < 1): the larger key goes to C
    assert (
        c.C.tolist() == [[1.0, 0.0]] and c.E.tolist() == [[0.0, 1.0]] and c.D.tolist() == [[3.0 * 2 * 4 * -1]]
    )
    _assert_same_function(rnn, c)
    # with neuron 1 a memory, the branch reading it is C even though its key is smaller
    lam1 = torch.tensor([0.5, 1.0], dtype=F64)
    c = canonicalize(GatedLinearRNN(A, B, lam1, C, E, torch.tensor([[3.0]], dtype=F64)))
    assert c.lam.tolist() == [1.0, 0.5]
    assert c.C.tolist() == [[1.0, 0.0]] and c.E.tolist() == [[0.0, 1.0]] and c.D.tolist() == [[-24.0]]


def test_canonical_neuron_rule_exact():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    # neuron 0: A reads the 1 more strongly than B: the branches swap, both signs flip to make first entries
    # positive
    A = torch.tensor([[-3.0, 0.0, 4.0]], dtype=F64)  # |A_d| / |A| = 0.8
    B = torch.tensor([[0.0, -1.0, 0.0]], dtype=F64)  # |B_d| = 0
    C, E, D = (torch.tensor(v, dtype=F64) for v in ([[2.0]], [[1.0]], [[1.0]]))
    rnn = GatedLinearRNN(A, B, torch.tensor([0.5], dtype=F64), C, E, D)
    c = canonicalize(rnn)
    assert c.A.tolist() == [[0.0, 1.0, 0.0]] and c.B.tolist() == [[0.6, 0.0, -0.8]]
    # the drive becomes u / (sign * 5 * 1) with sign = (-1)(-1) = +1 from (+(-B)/1, -(A)/5)
    assert c.C.tolist() == [[1.0]] and c.E.tolist() == [[1.0]] and c.D.tolist() == [[2.0 * 5 * 5]]
    _assert_same_function(rnn, c)


def test_dead_neurons_and_gates_become_exact_zeros():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    rnn = _rnn(1, n=5, d=2, m=4, lam=torch.tensor([0.9, 0.7, 0.5, 0.3, 0.1], dtype=F64))
    A, B, lam, C, E, D = (w.detach().clone() for w in rnn.weights())
    A[0] = 0.0  # dead neuron: zero A, non-zero B (first in the loop)
    B[3] = 0.0  # dead neuron: zero B, non-zero A
    C[0] = 0.0  # dead gate: zero C, non-zero E (first in the loop)
    E[2] = 0.0
    rnn = GatedLinearRNN(A, B, lam, C, E, D)
    c = canonicalize(rnn)
    assert c.lam.tolist() == lam.tolist()  # already descending
    for k in (0, 3):
        assert c.A[k].tolist() == [0.0] * 3 and c.B[k].tolist() == [0.0] * 3
    dead = [j for j in range(4) if not (c.C[j].any() or c.E[j].any())]
    assert len(dead) == 2
    for j in dead:
        assert (
            c.C[j].tolist() == [0.0] * 5 and c.E[j].tolist() == [0.0] * 5 and c.D[:, j].tolist() == [0.0, 0.0]
        )
    _check_conventions(c)  # every live neuron and gate after the dead ones is normalised too
    for k in (1, 2, 4):
        assert c.A[k].any() and c.B[k].any()
    _assert_same_function(rnn, c)
