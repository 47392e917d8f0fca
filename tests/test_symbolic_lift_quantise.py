"""Sampled parameters are rounded to a grid without creating degenerate samples (a small write strength
beta must not become 0, or the simulation's obligations fail for a sound variant)."""

import dataclasses

import torch

import constructions.variants  # noqa: F401  (registers)
from constructions.registry import get
from constructions.variants.controls import OneHotDeltaRule
from equivalence.symbolic import lifted_claims as lc
from equivalence.symbolic.simulation import GRID, quantise


class _SmallBeta(OneHotDeltaRule):
    """The delta rule on one-hot keys with write strengths far below the grid step."""

    def sample_params(self, *args, **kwargs):
        p = super().sample_params(*args, **kwargs)
        return dataclasses.replace(p, beta=torch.full_like(p.beta, 0.3 / GRID))


def test_quantise_keeps_nonzero_entries_nonzero():
    p = get("delta-rule-onehot").sample_params(3, 2, generator=torch.Generator().manual_seed(0))
    p = dataclasses.replace(p, beta=torch.tensor([0.3 / GRID, 0.0], dtype=torch.float64))
    q = quantise(p)
    assert q.beta.tolist() == [1 / GRID, 0.0]  # small -> one grid step; an exact zero stays zero
    w = p.W_Q.reshape(-1)[0].item()
    tiny = dataclasses.replace(p, W_Q=torch.full_like(p.W_Q, -0.2 / GRID))
    assert (quantise(tiny).W_Q == -1 / GRID).all()
    assert quantise(p).W_Q.reshape(-1)[0].item() * GRID == round(w * GRID) or abs(w) * GRID < 0.5


def _sampled_obligations(variant, sizes):
    """The ALL-T simulation of ``variant`` at sampled parameters (the path a proof takes when the symbolic
    lift is not used): the obligations that fail."""
    import numpy as np

    from equivalence.symbolic.simulation import reachable, simulation_obligations, solve_phi

    form, _, _ = lc.one_step_form(variant, lc._sample(variant, sizes, 0))
    sides = [lc._side("rnn"), lc._side("recurrence", form)]
    _, lift, _ = lc._checked_lift(variant, sizes, 0, 2, sides, modes=("sampled",))
    assert lift.mode == "sampled"
    rows, unsolved = solve_phi(*reachable(lift, form, lc.PHI_STEPS, 0)[:2])
    assert rows is not None, unsolved
    return [
        label
        for label, lhs, rhs in simulation_obligations(lift, form, rows, 0)
        if any(lc._first_difference(np.asarray(lhs, dtype=object), np.asarray(rhs, dtype=object)))
    ]


def test_allt_simulation_holds_when_beta_is_below_the_grid_step():
    v = _SmallBeta()
    v.name = "delta-rule-onehot-small-beta"
    sizes = {"d": 3, "heads": 1, "d_k": 2, "d_v": 1}
    assert _sampled_obligations(v, sizes) == []
    assert lc.prove_allt(v, sizes, seed=0).outcome.status == "proved"
