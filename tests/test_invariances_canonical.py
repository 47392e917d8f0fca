"""Canonicalisation of the gated RNN's parameter symmetries (constructions.invariances.canonicalize)."""

import pytest
import torch


def _rnn(seed=0, n=6, d=3, m=5, d_out=2):
    from constructions import GatedLinearRNN

    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    return GatedLinearRNN(
        r(n, d + 1),
        r(n, d + 1),
        torch.rand(n, generator=g, dtype=torch.float64),
        r(m, n),
        r(m, n),
        r(d_out, m),
    )


def _random_symmetry(rnn, seed):
    """Compose every discrete and diagonal symmetry of the template with random arguments."""
    from constructions import invariances as inv

    g = torch.Generator().manual_seed(seed)

    def scale():
        s = float(torch.empty(1).uniform_(0.2, 5.0, generator=g))
        return -s if bool(torch.rand(1, generator=g) < 0.5) else s

    n, m = rnn.num_neurons, rnn.num_gates
    t = inv.permute_neurons(rnn, torch.randperm(n, generator=g))
    t = inv.permute_gates(t, torch.randperm(m, generator=g))
    for k in range(n):
        t = inv.rescale_input_branch(t, k, scale())
        t = inv.rescale_neuron(t, k, scale())
        if bool(torch.rand(1, generator=g) < 0.5):
            t = inv.swap_input_branches(t, k)
    for j in range(m):
        t = inv.rescale_output_branches(t, j, scale(), scale())
        if bool(torch.rand(1, generator=g) < 0.5):
            t = inv.swap_output_branches(t, j)
    return t


def _max_diff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a.weights(), b.weights()))


@pytest.mark.parametrize("seed", range(5))
def test_canonical_form_is_constant_on_the_orbit(seed):
    from constructions.invariances import canonicalize

    rnn = _rnn(seed)
    moved = _random_symmetry(rnn, seed + 100)
    assert _max_diff(rnn, moved) > 1e-2  # the symmetry really changed the weights
    assert _max_diff(canonicalize(rnn), canonicalize(moved)) <= 1e-10


@pytest.mark.parametrize("seed", range(3))
def test_canonicalisation_preserves_the_function_and_is_idempotent(seed):
    from constructions.invariances import canonicalize

    rnn = _rnn(seed)
    x = torch.randn(3, 9, rnn.d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    c = canonicalize(rnn)
    y, yc = rnn(x), c(x)
    assert float((y - yc).abs().max()) <= 1e-10 * float(y.abs().max())
    assert _max_diff(c, canonicalize(c)) <= 1e-12


def test_canonicalisation_separates_different_functions():
    """Negative control: RNNs that are *not* related by a symmetry keep different canonical forms."""
    from constructions.invariances import canonicalize

    a, b = _rnn(0), _rnn(0)
    with torch.no_grad():
        b.lam[2] += 0.05
    assert _max_diff(canonicalize(a), canonicalize(b)) > 1e-3


@pytest.mark.parametrize("method", ["direct", "compressed"])
def test_constructions_are_canonicalised_with_memories_first(method):
    from constructions import LinearSelfAttention, lsa_to_rnn
    from constructions.invariances import canonicalize

    g = torch.Generator().manual_seed(3)
    lsa = LinearSelfAttention(*(torch.randn(1, 3, 3, generator=g, dtype=torch.float64) for _ in range(3)))
    rnn = lsa_to_rnn(lsa, method)
    c = canonicalize(rnn)
    n_mem = int((rnn.lam == 1).sum())
    assert torch.equal(
        c.lam, torch.tensor([1.0] * n_mem + [0.0] * (rnn.num_neurons - n_mem), dtype=torch.float64)
    )
    # query neurons read the appended 1 on their B branch (rule 1), memories never do
    assert bool((c.B[n_mem:, -1].abs() > 0).all()) and bool((c.B[:n_mem, -1] == 0).all())
    x = torch.randn(2, 12, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(c(x), lsa(x), rtol=1e-10, atol=1e-10)
    moved = _random_symmetry(rnn, 7)
    assert _max_diff(c, canonicalize(moved)) <= 1e-10


def test_dead_neurons_and_gates_stay_zero():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    rnn = _rnn(1)
    A, B, lam, C, E, D = (w.detach().clone() for w in rnn.weights())
    A[0] = 0
    C[1] = 0
    c = canonicalize(GatedLinearRNN(A, B, lam, C, E, D))
    assert bool(torch.isfinite(torch.cat([w.reshape(-1) for w in c.weights()])).all())
    x = torch.randn(2, 5, rnn.d, dtype=torch.float64)
    assert torch.allclose(c(x), GatedLinearRNN(A, B, lam, C, E, D)(x), rtol=1e-10, atol=1e-10)


def test_bad_input_is_rejected_clearly():
    from constructions import GatedLinearRNN
    from constructions.invariances import canonicalize

    with pytest.raises(TypeError, match="GatedLinearRNN"):
        canonicalize("not an rnn")
    rnn = _rnn(0)
    A, B, lam, C, E, D = (w.detach() for w in rnn.weights())
    cplx = GatedLinearRNN(
        A.to(torch.complex128),
        B.to(torch.complex128),
        lam.to(torch.complex128),
        C.to(torch.complex128),
        E.to(torch.complex128),
        D.to(torch.complex128),
    )
    with pytest.raises(ValueError, match="real weights"):
        canonicalize(cplx)
    decayed = GatedLinearRNN(A, B, None, C, E, D, decay=lambda x: torch.ones(*x.shape[:2], A.shape[0]))
    with pytest.raises(ValueError, match="constant lambda"):
        canonicalize(decayed)
