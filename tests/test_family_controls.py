"""The negative controls of the remaining fla op families (``constructions.variants.fla_controls``): every
family row is classified, each control's tried construction is refuted at a replayable counterexample by
the numeric check (a gap far beyond the rounding bound) and at an exact point by the prover, a control whose
reference IS its tried construction is not refuted, and (marker ``oracle``) every float64 reference agrees
with fla's naive reference wherever that runs on CPU."""

import pytest
import torch

from constructions.variants.fla_controls import CONTROL_NAMES, SPECS, ControlSpec, FamilyControl


#: a quick selection for the default run (one per kind: softmax, slots, delta rule, solve, running-sum,
#: recurrent gates); every control under the slow marker
QUICK = ("forgetting-attention", "gsa", "kda", "mesa-net", "rwkv4", "slstm")


def _v(name):
    import constructions

    return constructions.get(name)


def _case(name, d=4, heads=2, T=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = _v(name).sample_params(d, heads, generator=g, dtype=torch.float64, d_out=3)
    return p, torch.randn(2, T, d, generator=g, dtype=torch.float64)


def test_every_family_row_is_classified_and_names_its_control():
    from constructions.table import family_rows
    from constructions.variants.families import FAMILIES

    rows = {r["family"]: r for r in family_rows()}
    assert not [f for f, r in rows.items() if r["status"] == "unresolved"]
    by_family = {f.family: f for f in FAMILIES}
    for name, spec in SPECS.items():
        fam = by_family[spec.family]
        assert fam.variants[0] == name, (spec.family, fam.variants)
        assert rows[spec.family]["status"] == "refuted (at a counterexample)"
        assert _v(name).status == "impossible" and not getattr(_v(name), "impossibility_claim", None)


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_control_contract(name):
    """Reference [B, T, d_out] float64 and finite; the tried construction has H d_k (d_v+1) neurons and
    differs from it."""
    v = _v(name)
    p, x = _case(name, T=5)
    y = v.reference(p, x)
    assert y.shape == (2, 5, 3) and y.dtype == torch.float64 and bool(torch.isfinite(y).all())
    rnn = v.construct(p)
    assert rnn.num_neurons == 2 * 4 * 5
    assert float((rnn(x) - y).abs().max()) > 1e-3 * float(y.abs().max())


@pytest.mark.parametrize("name", QUICK)
def test_control_magnitude_and_float32(name):
    """M bounds |reference| (it adds it to the construction's M); float32 parameters give a float32 RNN."""
    v = _v(name)
    p, x = _case(name, T=5)
    M, y = v.magnitude(p, x), v.reference(p, x)
    assert M.shape == y.shape and bool((M >= y.abs()).all())
    assert v.num_neurons(p) == 2 * 4 * 5
    p32 = v.sample_params(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    assert v.construct(p32)(x.float()).dtype == torch.float32


def test_bad_inputs_get_one_line_errors():
    import dataclasses

    v = _v("comba")
    p, x = _case("comba")
    with pytest.raises(ValueError, match="d=4"):
        v.reference(p, x[..., :3])
    with pytest.raises(ValueError, match=r"W_X must have shape \[H, m, d\+1\]"):
        dataclasses.replace(p, W_X=p.W_X[:, :, :-1])
    with pytest.raises(ValueError, match="d_v == d_k"):
        _v("deltaformer").sample_params(4, 1, generator=torch.Generator(), d_k=2, d_v=3)
    p_ll, _ = _case("log-linear-attention", d=2, heads=1)
    with pytest.raises(ValueError, match="levels"):
        _v("log-linear-attention").reference(p_ll, torch.zeros(1, 2049, 2, dtype=torch.float64))


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in CONTROL_NAMES]
)
def test_numeric_check_refutes_at_a_counterexample_far_beyond_the_bound(name):
    """verify's numeric check (dev profile, seed 0, float64): expected-failure, with the case stored in hex
    and |RNN - reference| more than 10^6 times the rounding bound gamma_n M + n eta."""
    from equivalence.numeric import check_variant_numeric

    c = check_variant_numeric(_v(name), profile="dev", seed=0, dtype=torch.float64)
    assert c.status == "expected-failure", c.message
    assert c.evidence["worst_error_over_bound"] > 1e6
    cx = c.counterexample
    assert cx["params"] and cx["x"] and float.fromhex(cx["observed"]) != float.fromhex(cx["expected"])


def test_counterexample_replays_from_its_file(tmp_path):
    from equivalence.numeric import check_variant_numeric
    from equivalence.replay import replay
    from equivalence.report.counterexample import payload_from_claim, write_counterexample

    for name in ("kda",):
        c = check_variant_numeric(_v(name), profile="dev", seed=3, dtype=torch.float64)
        path = write_counterexample(tmp_path / f"{name}.json", payload_from_claim(c.to_dict()))
        res = replay(path)
        assert res.reproduced, res.message


def _lsa_layer(q, k, v, e):
    T = q.shape[2]
    return ((q @ k.transpose(-1, -2)) * torch.ones(T, T, dtype=torch.bool).tril()) @ v


def _gla_layer(q, k, v, e):
    T = q.shape[2]
    c = e["log_f"][..., 0].cumsum(-1)
    D = torch.exp(
        (c[..., :, None] - c[..., None, :]).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), 0)
    )
    return ((q @ k.transpose(-1, -2)) * D * torch.ones(T, T, dtype=torch.bool).tril()) @ v


@pytest.mark.parametrize(
    "layer, blocks, decay",
    [(_lsa_layer, (), ""), (_gla_layer, (SPECS["forgetting-attention"].blocks[0],), "log_f")],
)
def test_a_control_whose_reference_is_its_tried_construction_is_not_refuted(layer, blocks, decay):
    """The broken twin: a 'family' equal to LSA (or to LSA with its forget gate as E1 decay) passes the
    numeric check (unexpected-pass) and the prover proves the identity: refutations are not automatic."""
    from equivalence.numeric import check_variant_numeric
    from equivalence.symbolic.lifted_claims import prove_unrolled

    twin = FamilyControl(ControlSpec("twin", "twin", blocks, layer, "test", "none", "LSA itself", decay))
    twin.name = "twin"
    c = check_variant_numeric(twin, profile="dev", seed=0, dtype=torch.float64)
    assert c.status == "unexpected-pass", c.message
    if not decay:  # the prover on one twin (its lift of the gated twin is the same machinery)
        assert prove_unrolled(twin, {"d": 2, "heads": 1}, 2, seed=0).outcome.status == "proved"


def test_prover_refutes_a_control_at_an_exact_point():
    """The claim verify runs (NAME-IMPOSSIBLE/v1, no certificate): the lifted difference is certified
    non-zero at a stored rational point."""
    from equivalence.symbolic.lifted_claims import prove_unrolled

    res = prove_unrolled(_v("stickbreaking-attention"), {"d": 2, "heads": 1}, 2, seed=0)
    assert res.outcome.status == "refuted", res.outcome.message
    assert res.outcome.counterexample


def test_a_control_without_a_certificate_runs_one_claim_and_a_certified_one_two():
    """Without a declared certificate the IMPOSSIBLE claim is the refutation at a counterexample (UNROLLED
    would repeat it); a control that declares one keeps both claims."""
    from equivalence.symbolic.catalogue import variant_claim_ids

    assert variant_claim_ids(_v("stickbreaking-attention")) == ["STICKBREAKING-ATTENTION-IMPOSSIBLE/v1"]
    assert variant_claim_ids(_v("softmax-attention")) == [
        "SOFTMAX-ATTENTION-IMPOSSIBLE/v1",
        "SOFTMAX-ATTENTION-UNROLLED/v1",
    ]


# -- fla's own references (optional extra) -------------------------------------------------------------------
def _naive():
    from constructions.variants.oracle import CONTROL_NAIVE

    return sorted(CONTROL_NAIVE)


def test_every_control_has_an_fla_cpu_oracle_or_a_stated_reason():
    from constructions.variants.oracle import CONTROL_NAIVE, CONTROL_NO_CPU_ORACLE

    assert set(CONTROL_NAIVE) | set(CONTROL_NO_CPU_ORACLE) == set(CONTROL_NAMES)
    assert not set(CONTROL_NAIVE) & set(CONTROL_NO_CPU_ORACLE)


@pytest.mark.oracle
@pytest.mark.parametrize("name", _naive())
def test_reference_agrees_with_fla_naive(fo, name):
    """Ours (float64) against fla's naive reference (float32 inside) at T = 40 (not a multiple of fla's chunk
    or mini-batch sizes): relative error below 1e-4 of the output's scale (measured: <= 2e-6)."""
    import warnings

    p, x = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = fo.control_oracle_output(name, p, x)
    ref = _v(name).reference(p, x)
    assert y.shape == ref.shape
    assert float((y - ref).abs().max()) <= 1e-4 * float(ref.abs().max()), name


@pytest.mark.oracle
def test_conventions_done_wrong_are_caught(fo):
    """fla's default scale K^-1/2, or PaTH's Householder vectors passed unnormalised, change the output."""
    import warnings

    from constructions.variants.oracle import CONTROL_NAIVE, _ctl, _load_control, _s, sf

    p, x = _case("forgetting-attention")
    ref = _v("forgetting-attention").reference(p, x)
    path, _ = CONTROL_NAIVE["forgetting-attention"]
    wrong = _ctl(lambda q, k, v, e, fn: fn(sf(q), sf(k), sf(v), _s(e["log_f"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = wrong(p, x, _load_control(path), "cpu", name="forgetting-attention")[0]
    assert float((y - ref).abs().max()) > 1e-2 * float(ref.abs().max())
    p, x = _case("path-attention")
    ref = _v("path-attention").reference(p, x)
    path, _ = CONTROL_NAIVE["path-attention"]
    raw = _ctl(
        lambda q, k, v, e, fn: fn(
            sf(q), sf(k), sf(v), sf(e["w"]), 2 * _s(e["beta"]), _s(e["log_f"]), scale=1.0
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = raw(p, x, _load_control(path), "cpu", name="path-attention")[0]
    assert not float((y - ref).abs().max()) <= 1e-2 * float(ref.abs().max())


@pytest.mark.oracle
def test_fla_reference_failures_are_still_there(fo):
    """Pinned (docs/variants/oracle.md): the deltaformer package does not import in fla-core 0.6.0 (its
    parallel kernel needs fla.layers, not shipped), and naive_wall_attn needs a Triton kernel on CPU."""
    import warnings

    from constructions.variants.oracle import _s, sf

    with pytest.raises(ModuleNotFoundError, match="fla.layers"):
        fo.load("fla.ops.deltaformer.naive.naive_deltaformer_attn")
    fn = fo.load("fla.ops.wall_attn.naive.naive_wall_attn")
    p, x = _case("wall-attention", T=5)
    from constructions.variants.oracle import _control_parts

    q, k, v, e = _control_parts("wall-attention", p, x)
    with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017 - Triton's CPU error type varies
        warnings.simplefilter("ignore")
        fn(sf(q), sf(k), sf(v), sf(e["log_f"]), scale=1.0)
    assert _s(e["log_f"][..., :1]).shape == (2, 5, 2)
