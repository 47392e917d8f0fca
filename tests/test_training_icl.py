"""In-context regression pieces: the tasks, the one-step GD baseline, the 2d-neuron GD construction,
metrics."""

import pytest
import torch

pytestmark = pytest.mark.training


def _gd_rnn(d, N, eta):
    """The gated RNN that implements one GD step (derived): d memories y*x_i (lambda=1), d queries x_i
    (lambda=0)."""
    from constructions import GatedLinearRNN

    D = d + 1  # token width; the template appends the constant as column D
    n = 2 * d
    A = torch.zeros(n, D + 1, dtype=torch.float64)
    B = torch.zeros(n, D + 1, dtype=torch.float64)
    for i in range(d):
        A[i, d], B[i, i] = 1.0, 1.0  # memory i accumulates y_s x_s,i
        A[d + i, i], B[d + i, D] = 1.0, 1.0  # query i holds x_t,i
    lam = torch.cat([torch.ones(d), torch.zeros(d)]).to(torch.float64)
    C = torch.cat([torch.eye(d), torch.zeros(d, d)], dim=1).to(torch.float64)
    E = torch.cat([torch.zeros(d, d), torch.eye(d)], dim=1).to(torch.float64)
    Dr = torch.full((1, d), eta / N, dtype=torch.float64)
    return GatedLinearRNN(A, B, lam, C, E, Dr)


def test_gd_prediction_is_one_gradient_step_on_the_context_loss():
    from equivalence.training.icl_tasks import gd_prediction, sample_tasks

    d, N, eta = 4, 7, 0.8
    tokens, _ = sample_tasks(5, d, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    x, y = tokens[:, :N, :d], tokens[:, :N, d]
    loss = ((torch.einsum("bnd,d->bn", x, W) - y) ** 2).sum(1) / (
        2 * N
    )  # per task, summed over the batch below
    ref = []
    for b in range(5):
        (g,) = torch.autograd.grad(loss[b], W, retain_graph=True)
        ref.append(((-eta * g) * tokens[b, -1, :d]).sum())
    assert torch.allclose(gd_prediction(tokens, eta), torch.stack(ref), rtol=1e-12, atol=1e-12)
    assert bool((tokens[:, -1, d] == 0).all())  # the query token carries no target


def test_line_search_finds_the_mse_minimum():
    from equivalence.training.icl_tasks import gd_prediction, line_search_eta, sample_tasks

    d, N = 5, 5
    eta = line_search_eta(d, N, tasks=20_000, generator=torch.Generator().manual_seed(1))
    tokens, y = sample_tasks(20_000, d, N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def mse(e):
        return float((gd_prediction(tokens, e) - y).pow(2).mean())

    assert mse(eta) < mse(eta * 0.95) and mse(eta) < mse(eta * 1.05)
    assert 0.5 < eta < 3.0


def test_the_2d_neuron_gated_rnn_is_exactly_one_gd_step():
    from equivalence.training.icl_regression import _metrics, _structure, gd_tensor
    from equivalence.training.icl_tasks import gd_prediction, sample_tasks
    from equivalence.training.mechanism import cubic_coefficients, relative_error, rnn_cubic_coefficients

    d, N, eta = 4, 6, 1.3
    rnn = _gd_rnn(d, N, eta)
    tokens, y = sample_tasks(200, d, N, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(rnn(tokens)[:, -1, 0], gd_prediction(tokens, eta), rtol=1e-12, atol=1e-12)
    m = _metrics(lambda e: rnn(e)[:, -1, 0], tokens, y, eta)
    assert m["pred_l2_to_gd"] <= 1e-24 and m["grad_cosine_to_gd"] == pytest.approx(1.0, abs=1e-12)
    T = gd_tensor(d, N, eta)
    assert relative_error(rnn_cubic_coefficients(rnn, N), T) <= 1e-13
    assert relative_error(cubic_coefficients(rnn, d + 1, 0, N)[..., :d], T[..., :d]) <= 1e-13
    s = _structure(rnn_cubic_coefficients(rnn, N), d, N, eta)
    assert s["eta_effective"] == pytest.approx(eta, rel=1e-12) and s["tensor_rel_error_to_gd"] <= 1e-13


def test_metrics_tell_gd_from_a_context_free_predictor():
    """Negative control: a predictor that ignores the context is far from GD on every metric."""
    from equivalence.training.icl_regression import _metrics
    from equivalence.training.icl_tasks import sample_tasks

    tokens, y = sample_tasks(500, 3, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    m = _metrics(lambda e: e[:, -1, :3].sum(-1), tokens, y, 1.5)  # uses x_test only
    assert m["grad_cosine_to_gd"] < 0.5 and m["pred_l2_to_gd"] > 0.1


def test_trainable_lsa_matches_the_exported_library_lsa():
    from equivalence.training.icl_regression import TrainableLSA

    lsa = TrainableLSA(5, seed=0, init_std=0.3, dtype=torch.float64)
    e = torch.randn(4, 6, 5, dtype=torch.float64)
    assert torch.allclose(lsa(e), lsa.export()(e)[:, -1], rtol=1e-12, atol=1e-12)


def test_probe_recovers_a_linear_code_and_rejects_noise():
    from equivalence.training.icl_regression import _probe_r2

    g = torch.Generator().manual_seed(4)
    target = torch.randn(400, 3, generator=g, dtype=torch.float64)
    mix = torch.randn(3, 8, generator=g, dtype=torch.float64)
    assert _probe_r2(target @ mix, target) == pytest.approx(1.0, abs=1e-10)
    assert _probe_r2(torch.randn(400, 8, generator=g, dtype=torch.float64), target) < 0.2


def test_bad_task_arguments():
    from equivalence.training.icl_regression import ICLConfig
    from equivalence.training.icl_tasks import sample_tasks

    with pytest.raises(ValueError, match="N must be an int >= 1"):
        sample_tasks(4, 3, 0, generator=torch.Generator())
    with pytest.raises(ValueError, match="baselines"):
        ICLConfig(baselines=("rnn",))
