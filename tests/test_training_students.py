"""The batched students: the ensemble's fast forward equals the library GatedLinearRNN (naive beside fast)."""

import pytest
import torch

pytestmark = pytest.mark.training


def _ens(kind="clamp", sizes=(3, 5, 8), d=3, d_out=2, gates=4, dtype=torch.float64):
    from equivalence.training.students import GatedRNNEnsemble

    return GatedRNNEnsemble(
        list(sizes),
        d,
        d_out,
        gates,
        seeds=list(range(len(sizes))),
        lam_kind=kind,
        lam_init=(0.0, 1.0),
        dtype=dtype,
    )


@pytest.mark.parametrize("kind", ["clamp", "sigmoid", "lru"])
def test_ensemble_forward_equals_each_exported_student(kind):
    ens = _ens(kind)
    x = torch.randn(4, 9, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = ens(x)
    y_last = ens(x, last_only=True)
    xs = torch.randn(ens.K, 2, 9, 3, dtype=torch.float64)
    y_each = ens(xs)
    for k in range(ens.K):
        rnn = ens.student(k)
        assert rnn.num_neurons == ens.sizes[k]
        ref = rnn(x, mode="loop")
        assert torch.allclose(y[k], ref, rtol=1e-12, atol=1e-12)
        assert torch.allclose(y_last[k], ref[:, -1], rtol=1e-12, atol=1e-12)
        assert torch.allclose(y_each[k], rnn(xs[k], mode="loop"), rtol=1e-12, atol=1e-12)


def test_lambda_is_exact_at_zero_and_one_and_differentiable():
    ens = _ens("clamp")
    with torch.no_grad():
        ens.nu[:, 0] = 0.0
        ens.nu[:, 1] = 1.0
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    ens(x).square().sum().backward()
    assert bool(torch.isfinite(ens.nu.grad).all())  # lambda = 0 has a finite gradient (no pow(0, -1))
    assert torch.allclose(ens(x)[0], ens.student(0)(x, mode="loop"), rtol=1e-12, atol=1e-12)


def test_projection_keeps_lambda_in_unit_interval_only_for_clamp():
    for kind in ("clamp", "sigmoid"):
        ens = _ens(kind)
        with torch.no_grad():
            ens.nu.add_(torch.linspace(-3, 3, ens.nu.numel(), dtype=torch.float64).reshape(ens.nu.shape))
        before = ens.nu.detach().clone()
        ens.project_()
        lam = ens.lam()
        assert float(lam.detach().min()) >= 0.0 and float(lam.detach().max()) <= 1.0
        if kind == "sigmoid":
            assert torch.equal(ens.nu, before)  # nothing to project


def test_padded_neurons_get_no_gradient():
    ens = _ens("clamp", sizes=(2, 6))
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    ens(x).square().sum().backward()
    for name in ("A", "B", "nu"):
        assert float(getattr(ens, name).grad[0, 2:].abs().max()) == 0.0, name
    for name in ("C", "E"):
        assert float(getattr(ens, name).grad[0, :, 2:].abs().max()) == 0.0, name


def test_lambda_parameterisations_invert():
    from equivalence.training.students import lambda_of, raw_of

    lam = torch.linspace(0.01, 0.99, 11, dtype=torch.float64)
    for kind in ("clamp", "sigmoid", "lru"):
        assert torch.allclose(lambda_of(raw_of(lam, kind), kind), lam, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="parameterisation"):
        lambda_of(lam, "tanh")


def test_same_seed_same_students_and_global_rng_untouched():
    from equivalence.training.students import RecurrentBaseline

    state = torch.random.get_rng_state()
    a, b = _ens(), _ens()
    la = RecurrentBaseline("lstm", 3, 2, 8, seed=5)
    lb = RecurrentBaseline("lstm", 3, 2, 8, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(la.parameters(), lb.parameters()):
        assert torch.equal(p, q)
    x = torch.randn(2, 4, 3)
    assert la(x).shape == (2, 4, 2) and la(x, last_only=True).shape == (2, 2)


def test_bad_arguments_are_clear_errors():
    from equivalence.training.students import GatedRNNEnsemble, RecurrentBaseline

    with pytest.raises(ValueError, match="one seed per student"):
        GatedRNNEnsemble([2, 3], 3, 1, 2, seeds=[0])
    with pytest.raises(ValueError, match="sizes"):
        GatedRNNEnsemble([], 3, 1, 2, seeds=[])
    with pytest.raises(ValueError, match="lam_init"):
        GatedRNNEnsemble([2], 3, 1, 2, seeds=[0], lam_init=(0.5, 1.5))
    ens = _ens()
    with pytest.raises(ValueError, match=r"x must be \[batch, time, 3\]"):
        ens(torch.randn(2, 5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="student index"):
        ens.student(7)
    with pytest.raises(ValueError, match="'lstm' or 'gru'"):
        RecurrentBaseline("rnn", 3, 1, 4, seed=0)
