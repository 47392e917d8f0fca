"""The tolerance model: passes correct float32 constructions, fails perturbed ones, never passes NaN."""

import math

import pytest
import torch


def test_gamma():
    from equivalence.tolerance import gamma

    assert gamma(0, 1e-8) == 0
    assert math.isclose(gamma(10, 2**-24), 10 * 2**-24 / (1 - 10 * 2**-24))
    assert gamma(2**24, 2**-24) == math.inf


def _case(seed=0, T=64):
    import constructions

    v = constructions.get("lsa-direct")
    g = torch.Generator().manual_seed(seed)
    p = v.sample_params(4, 2, generator=g)
    x = torch.randn(2, T, 4, generator=g, dtype=torch.float64)
    return v, p, x


def test_float32_construction_passes_and_ratio_is_meaningful():
    from equivalence.tolerance import compare

    v, p, x = _case()
    p32 = type(p)(*(t.float() if t is not None else None for t in (p.W_Q, p.W_K, p.W_V, p.W_O)))
    y = v.construct(p32)(x.float())
    res = compare(y, v.reference(p, x), v.magnitude(p, x), n=v.path_length(p, x.shape[1]), dtype=torch.float32)
    assert res.passed, res.message
    assert 1e-4 < res.ratio < 1  # the bound is rigorous but not vacuous


def test_perturbation_is_detected():
    from equivalence.tolerance import compare

    v, p, x = _case()
    rnn = v.construct(p)
    with torch.no_grad():
        rnn.D[0, 0] *= 1 + 1e-6
    res = compare(rnn(x), v.reference(p, x), v.magnitude(p, x), n=v.path_length(p, x.shape[1]),
                  dtype=torch.float64)
    assert not res.passed and "EXCEEDS" in res.message
    assert len(res.worst_index) == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_never_passes(bad):
    from equivalence.tolerance import compare

    y = torch.zeros(1, 3, 2)
    y_bad = y.clone()
    y_bad[0, 1, 1] = bad
    for cand, ref in ((y_bad, y), (y, y_bad), (y_bad, y_bad)):
        res = compare(cand, ref, torch.ones_like(y), n=10)
        assert not res.passed and "NaN or Inf" in res.message and res.worst_index == (0, 1, 1)


def test_shape_mismatch_is_an_error():
    from equivalence.tolerance import compare

    with pytest.raises(ValueError, match="shapes differ"):
        compare(torch.zeros(2, 3), torch.zeros(3, 2), torch.zeros(3, 2), n=1)
