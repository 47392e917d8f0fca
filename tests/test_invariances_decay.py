"""Neuron permutations of RNNs with an input-dependent decay (extension E1): the decay is permuted too."""

import pytest
import torch


def _gla_rnn(seed=0):
    import constructions

    v = constructions.get("gla")
    g = torch.Generator().manual_seed(seed)
    rnn = v.construct(v.sample_params(3, 2, generator=g))
    x = torch.randn(2, 6, 3, dtype=torch.float64, generator=g)
    return rnn, x, g


@pytest.mark.parametrize("seed", [0, 1])
def test_permuting_an_input_dependent_decay_keeps_the_function(seed):
    from constructions import invariances as inv
    from constructions.variants import InputDependentDecay

    rnn, x, g = _gla_rnn(seed)
    assert rnn.lam is None and isinstance(rnn.decay, InputDependentDecay)
    perm = torch.randperm(rnn.num_neurons, generator=g)
    assert not torch.equal(perm, torch.arange(rnn.num_neurons))
    t = inv.permute_neurons(rnn, perm)
    assert isinstance(t.decay, InputDependentDecay) and torch.equal(t.decay.channel, rnn.decay.channel[perm])
    torch.testing.assert_close(t.lambdas(x), rnn.lambdas(x)[..., perm], rtol=0, atol=0)
    y = rnn(x)
    torch.testing.assert_close(t(x), y, rtol=1e-12, atol=1e-12 * float(y.abs().max()))
    # the check can fail: permuting the weights but not the decay changes the function
    stale = inv._rebuild(
        rnn,
        A=rnn.A.detach()[perm],
        B=rnn.B.detach()[perm],
        C=rnn.C.detach()[:, perm],
        E=rnn.E.detach()[:, perm],
    )
    assert float((stale(x) - y).abs().max()) > 1e-3 * float(y.abs().max())


def test_a_plain_decay_callable_is_wrapped_and_composes():
    from constructions import GatedLinearRNN
    from constructions import invariances as inv

    g = torch.Generator().manual_seed(3)
    n, d, m = 5, 3, 4
    W = torch.randn(n, d, dtype=torch.float64, generator=g)

    def decay(z):  # no .permuted method: permute_neurons must wrap it
        return torch.sigmoid(z @ W.T)

    def r(*s):
        return torch.randn(*s, dtype=torch.float64, generator=g)

    rnn = GatedLinearRNN(r(n, d + 1), r(n, d + 1), None, r(m, n), r(m, n), r(2, m), decay=decay)
    x = r(2, 7, d)
    p1, p2 = torch.randperm(n, generator=g), torch.randperm(n, generator=g)
    t1 = inv.permute_neurons(rnn, p1)
    assert isinstance(t1.decay, inv.PermutedDecay)
    t2 = inv.permute_neurons(t1, p2)  # composes: new neuron k is old neuron p1[p2[k]]
    torch.testing.assert_close(t2.lambdas(x), rnn.lambdas(x)[..., p1[p2]], rtol=0, atol=0)
    y = rnn(x)
    for t in (t1, t2):
        torch.testing.assert_close(t(x), y, rtol=1e-12, atol=1e-12 * float(y.abs().max()))
    with pytest.raises(ValueError, match="permutation"):
        inv.permute_neurons(rnn, torch.tensor([0, 0, 1, 2, 3]))
