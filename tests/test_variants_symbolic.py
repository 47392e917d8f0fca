"""The variants' symbolic hooks: the construction's own wiring on SymPy arrays equals the symbolic reference
identically (exact variants, all weights, an uninterpreted decay link for E1), differs for the negative
controls, and a broken wiring is caught."""

import dataclasses

import numpy as np
import pytest
import sympy as sp
import torch


def _arrays(params, T, d):
    """One object array of fresh symbols per tensor field (None stays None), and x [T, d]."""
    out = []
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if v is None:
            out.append(None)
        elif isinstance(v, torch.Tensor):
            syms = sp.symbols(f"{f.name}_0:{v.numel()}")
            out.append(np.array(syms, dtype=object).reshape(tuple(v.shape)))
    x = np.array(sp.symbols(f"x_0:{T * d}"), dtype=object).reshape(T, d)
    return out, x


def _run_template(w, x):
    from constructions.rnn import input_gate, output_readout, recurrence_step

    h = np.zeros(w.A.shape[0], dtype=object)
    ys = []
    for t in range(x.shape[0]):
        xt = np.concatenate([x[t], np.ones(1, dtype=object)])
        lam = w.lam(x[t]) if callable(w.lam) else w.lam
        h = recurrence_step(lam, h, input_gate(w.A, w.B, xt))
        ys.append(output_readout(w.C, w.E, w.D, h))
    return np.array(ys, dtype=object)


def _difference(name, d=2, heads=2, T=3, d_out=None, weights=None, **kw):
    import constructions

    v = constructions.get(name)
    p = v.sample_params(
        d,
        heads,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
        d_k=2,
        d_v=2,
        d_out=d_out,
        **kw,
    )
    arrays, x = _arrays(p, T, d)
    w = (weights or v.symbolic_weights)(*arrays)
    y_rnn = _run_template(w, x)
    y_ref = np.asarray(v.symbolic_reference(*arrays, x), dtype=object)
    assert y_rnn.shape == y_ref.shape
    return [sp.expand(a - b) for a, b in zip(y_rnn.ravel(), y_ref.ravel())]


@pytest.mark.parametrize(
    "name,d_out",
    [
        ("retention", None),
        ("retention", 2),
        ("simple-gla", None),
        ("gla", 2),
        ("simple-gla-compressed", None),
    ],
)
def test_exact_variants_are_identities_on_symbols(name, d_out):
    assert all(e == 0 for e in _difference(name, d_out=d_out))


@pytest.mark.parametrize("name", ["softmax-attention", "deltanet"])
def test_negative_controls_are_refuted_symbolically(name):
    """The difference is not identically zero: it is non-zero at a rational point (a certificate)."""
    diffs = _difference(name, T=2)
    syms = sorted(set().union(*(e.free_symbols for e in diffs)), key=str)
    point = {s: sp.Rational((7 * i) % 11 - 5, 4) for i, s in enumerate(syms)}
    assert any(abs(float(e.subs(point).evalf(30))) > 1e-6 for e in diffs)


def test_a_broken_decay_wiring_is_caught():
    """Swapping the key channels of GLA's decay (an index slip) leaves a non-zero difference."""
    import constructions
    from constructions.rnn import RNNWeights

    gla = constructions.get("gla")

    def broken(W_Q, W_K, W_V, W_gk, W_O=None):
        return gla.symbolic_weights(W_Q, W_K, W_V, W_gk[:, ::-1], W_O)

    assert any(e != 0 for e in _difference("gla", weights=broken))
    assert RNNWeights  # the hooks return the template's six arrays


def test_e1_hooks_give_a_callable_decay_and_no_hook_for_upstream_variants():
    import constructions

    assert callable(
        constructions.get("gla")
        .symbolic_weights(
            *_arrays(
                constructions.get("gla").sample_params(2, 1, generator=torch.Generator().manual_seed(0)), 1, 2
            )[0]
        )
        .lam
    )
    for name in (
        "hgrn2",
        "mamba2",
        "mlstm",
        "based",
        "feature-map-attention",
        "delta-rule-onehot",
        "retention-complex",
        "normalized-linear-attention",
    ):
        assert not hasattr(constructions.get(name), "symbolic_weights"), name
