"""Measurements of trained students: cubic coefficient tensor, pruning, λ statistics, gate structure."""

import pytest
import torch

pytestmark = pytest.mark.training


def _lsa(H=2, d_k=3, d_v=4, d=4, seed=0):
    from constructions import LinearSelfAttention

    g = torch.Generator().manual_seed(seed)
    return LinearSelfAttention(
        torch.randn(H, d_k, d, generator=g, dtype=torch.float64),
        torch.randn(H, d_k, d, generator=g, dtype=torch.float64),
        torch.randn(H, d_v, d, generator=g, dtype=torch.float64),
    )


def _random_rnn(seed=0, n=7, d=3, m=5, d_out=2, lam=None):
    from constructions import GatedLinearRNN

    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    lam = torch.rand(n, generator=g, dtype=torch.float64) if lam is None else lam
    return GatedLinearRNN(r(n, d + 1), r(n, d + 1), lam, r(m, n), r(m, n), r(d_out, m))


@pytest.mark.parametrize("s,t", [(0, 1), (2, 7)])
def test_cubic_coefficients_recover_the_attention_tensor_of_lsa_and_constructions(s, t):
    from constructions import attention_tensor, lsa_to_rnn
    from equivalence.training.mechanism import cubic_coefficients, relative_error, rnn_cubic_coefficients

    lsa = _lsa()
    ref = attention_tensor(lsa)
    assert relative_error(cubic_coefficients(lsa, lsa.d, s, t), ref) <= 1e-13
    for method in ("direct", "compressed"):
        rnn = lsa_to_rnn(lsa, method)
        assert relative_error(cubic_coefficients(rnn, lsa.d, s, t), ref) <= 1e-13
        assert relative_error(rnn_cubic_coefficients(rnn, t - s), ref) <= 1e-13


@pytest.mark.parametrize("lag", [1, 4, 11])
def test_closed_form_equals_autograd_on_a_generic_rnn(lag):
    from equivalence.training.mechanism import cubic_coefficients, relative_error, rnn_cubic_coefficients

    rnn = _random_rnn(lag)
    auto = cubic_coefficients(rnn, rnn.d, 1, 1 + lag)
    assert float(auto.norm()) > 1e-6  # a generic RNN has a cubic term to recover
    assert relative_error(rnn_cubic_coefficients(rnn, lag), auto) <= 1e-12


def test_a_leaky_neuron_shows_up_as_lag_dependence():
    """Negative control: with 0 < lambda < 1 the recovered tensor decays with the lag, unlike attention's."""
    from constructions import attention_tensor, lsa_to_rnn
    from constructions.rnn import GatedLinearRNN
    from equivalence.training.mechanism import relative_error, rnn_cubic_coefficients

    lsa = _lsa(H=1, d_k=2, d_v=2, d=2)
    A, B, lam, C, E, D = (w.detach().clone() for w in lsa_to_rnn(lsa, "direct").weights())
    lam[0] = 0.9  # one key-value memory leaks
    rnn = GatedLinearRNN(A, B, lam, C, E, D)
    ref = attention_tensor(lsa)
    assert relative_error(rnn_cubic_coefficients(rnn, 1), ref) > 1e-3
    assert relative_error(rnn_cubic_coefficients(rnn, 40), ref) > relative_error(
        rnn_cubic_coefficients(rnn, 1), ref
    )


def test_prune_removes_only_neurons_away_from_zero_and_one():
    from constructions import lsa_to_rnn
    from constructions.rnn import GatedLinearRNN
    from equivalence.training.mechanism import near_zero_or_one, prune, snap_lambdas

    rnn0 = lsa_to_rnn(_lsa(H=1, d_k=2, d_v=2, d=3), "direct")
    A, B, lam, C, E, D = (w.detach().clone() for w in rnn0.weights())
    # add a leaky neuron that does not reach the output, and nudge the others slightly off {0, 1}
    A = torch.cat([A, torch.ones(1, A.shape[1], dtype=A.dtype)])
    B = torch.cat([B, torch.ones(1, B.shape[1], dtype=B.dtype)])
    lam = torch.cat([lam * (1 - 1e-3), torch.tensor([0.5], dtype=lam.dtype)])
    C = torch.cat([C, torch.zeros(C.shape[0], 1, dtype=C.dtype)], dim=1)
    E = torch.cat([E, torch.zeros(E.shape[0], 1, dtype=E.dtype)], dim=1)
    rnn = GatedLinearRNN(A, B, lam, C, E, D)
    pruned, keep = prune(rnn, 0.1)
    assert keep.tolist() == [True] * rnn0.num_neurons + [False]
    assert pruned.num_neurons == rnn0.num_neurons
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    assert torch.allclose(pruned(x), rnn(x), rtol=1e-12, atol=1e-12)
    snapped = snap_lambdas(pruned, 0.1)
    assert torch.equal(snapped.lam, rnn0.lam) and torch.allclose(snapped(x), rnn0(x), rtol=1e-12, atol=1e-12)
    assert near_zero_or_one(torch.tensor([0.0, 0.05, 0.5, 0.95, 1.0])).tolist() == [
        True,
        True,
        False,
        True,
        True,
    ]
    # pruning every neuron leaves a valid RNN computing zero
    leaky = GatedLinearRNN(A, B, torch.full_like(lam, 0.5), C, E, D)
    p_all, keep_all = prune(leaky, 0.1)
    assert not bool(keep_all.any()) and float(p_all(x).abs().max()) == 0.0


def test_gate_block_fraction_is_one_for_the_constructions_and_less_for_a_random_rnn():
    from constructions import lsa_to_rnn
    from equivalence.training.mechanism import gate_block_fraction

    lsa = _lsa()
    for method in ("direct", "compressed"):
        assert gate_block_fraction(lsa_to_rnn(lsa, method)) == pytest.approx(1.0, abs=1e-12)
    lam = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    assert gate_block_fraction(_random_rnn(lam=lam)) < 0.9


def test_lambda_histogram_and_relative_error():
    from equivalence.training.mechanism import lambda_histogram, relative_error

    h = lambda_histogram(torch.tensor([0.0, 0.0, 0.5, 1.0, 0.99]), bins=4)
    assert h["counts"] == [2, 0, 1, 2] and h["bin_edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert relative_error(torch.ones(3), torch.ones(3)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(torch.ones(3), torch.ones(4))


def test_bad_positions_and_models_are_clear_errors():
    from equivalence.training.mechanism import cubic_coefficients, prune, rnn_cubic_coefficients

    lsa = _lsa()
    with pytest.raises(ValueError, match="0 <= s < t"):
        cubic_coefficients(lsa, lsa.d, 3, 3)
    with pytest.raises(ValueError, match="must map"):
        cubic_coefficients(lambda x: x.sum(-1), lsa.d, 0, 2)
    with pytest.raises(ValueError, match="lag"):
        rnn_cubic_coefficients(_random_rnn(), 0)
    with pytest.raises(TypeError, match="GatedLinearRNN"):
        prune(lsa)
