"""The shipped gating variants: registry contract, exactness on long and badly scaled inputs (float64,
tolerance model), independent reference forms, the numeric check's verdicts (exact/partial pass, impossible
refuted)."""

import dataclasses

import pytest
import torch

from constructions.variants.plan import ConstantDecay, InputDecay, Plan

SHIPPED = [
    "lsa-direct",
    "lsa-compressed",
    "retention",
    "retention-complex",
    "simple-gla",
    "simple-gla-compressed",
    "gla",
    "hgrn2",
    "mamba2",
    "feature-map-attention",
    "based",
    "normalized-linear-attention",
    "mlstm",
    "softmax-attention",
    "deltanet",
    "delta-rule-onehot",
]
EXACT = [
    "lsa-direct",
    "lsa-compressed",
    "retention",
    "retention-complex",
    "simple-gla",
    "simple-gla-compressed",
    "gla",
    "hgrn2",
    "mamba2",
    "feature-map-attention",
    "based",
    "delta-rule-onehot",
]
PARTIAL = ["normalized-linear-attention", "mlstm"]
IMPOSSIBLE = ["softmax-attention", "deltanet"]


def _variant(name):
    import constructions

    return constructions.get(name)


def _sample(name, d=4, heads=2, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return _variant(name).sample_params(d=d, heads=heads, generator=g, dtype=torch.float64, **kw)


def _x(B, T, d, seed=1, scale=1.0):
    return torch.randn(B, T, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def _scaled(params, fields, factor):
    return dataclasses.replace(
        params, **{f: getattr(params, f) * factor for f in fields if getattr(params, f, None) is not None}
    )


def test_every_shipped_variant_is_registered_with_a_valid_status():
    import constructions
    from constructions.registry import STATUSES

    assert set(SHIPPED) <= set(constructions.available())
    assert sorted(EXACT + PARTIAL + IMPOSSIBLE) == sorted(SHIPPED)
    for name in SHIPPED:
        v = constructions.get(name)
        assert v.status in STATUSES and v.name == name
        assert v.source and v.description, name
        expected = "exact" if name in EXACT else "partial" if name in PARTIAL else "impossible"
        assert v.status == expected, (name, v.status)
        if v.status == "partial":
            assert "reachable" in v.partial_reason and "division" in v.partial_reason


@pytest.mark.parametrize("name", SHIPPED)
def test_contract(name):
    """The contract: sample_params(d=4, heads=2, generator=..., dtype=...), reference, construct ->
    GatedLinearRNN, status, num_neurons; float32 params give a float32 construction."""
    from constructions import GatedLinearRNN

    v = _variant(name)
    p = v.sample_params(d=4, heads=2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = _x(3, 9, 4)
    y_ref = v.reference(p, x)
    rnn = v.construct(p)
    assert isinstance(rnn, GatedLinearRNN)
    y = rnn(x)
    assert y.shape == y_ref.shape and y_ref.dtype == torch.float64
    assert v.num_neurons(p) == rnn.num_neurons
    p32 = v.sample_params(d=4, heads=2, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    assert v.construct(p32)(x.float()).dtype == torch.float32


NEURONS = {  # d = 4, H = 2, d_k = d_v = 4 unless the variant's default says otherwise
    "lsa-direct": 2 * 4 * 5,
    "lsa-compressed": 4 * 5 // 2 + 4,
    "retention": 40,
    "retention-complex": 40,
    "simple-gla": 40,
    "simple-gla-compressed": 2 * 10 + 4,
    "gla": 40,
    "hgrn2": 40,
    "mamba2": 40 + 2 * 4 + 1,
    "feature-map-attention": 40,
    "based": 2 * (1 + 4 + 10) * 5,
    "normalized-linear-attention": 2 * 4 * 6,
    "mlstm": 2 * 4 * 6,
    "softmax-attention": 40,
    "deltanet": 40,
    "delta-rule-onehot": 40,
}


@pytest.mark.parametrize("name", SHIPPED)
def test_neuron_counts_match_the_docs(name):
    assert _variant(name).num_neurons(_sample(name)) == NEURONS[name]


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("x_scale,w_scale", [(1.0, 1.0), (1e3, 1e-3), (1e-3, 1e2)])
def test_exact_variant_matches_reference_on_long_badly_scaled_inputs(name, x_scale, w_scale):
    """T = 512, float64: |y_rnn - y_ref| <= gamma_n M + n eta, also when inputs and weights are scaled by
    10^{+-3}."""
    from constructions.tolerance import compare

    v = _variant(name)
    p = (
        _scaled(_sample(name, d=3, heads=2, d_out=2), v.free_fields, w_scale)
        if hasattr(v, "free_fields")
        else _scaled(_sample(name, d=3, heads=2, d_out=2), ("W_Q", "W_K", "W_V"), w_scale)
    )
    x = _x(2, 512, 3, scale=x_scale)
    ref = v.reference(p, x)
    res = compare(
        v.construct(p)(x), ref, v.magnitude(p, x), n=v.path_length(p, 512), dtype=torch.float64, label=name
    )
    assert res.passed, res.message
    if (
        w_scale == 1.0
    ):  # scaled gates may saturate (e.g. HGRN2's key 1 - alpha = 0): only the plain case must be non-trivial
        assert float(ref.abs().max()) > 0


ALTERNATIVE = {
    "retention": "reference_parallel",
    "retention-complex": "reference_recurrent",
    "simple-gla": "reference_parallel",
    "gla": "reference_parallel",
    "hgrn2": "reference_parallel",
    "mamba2": "reference_parallel",
    "feature-map-attention": "reference_parallel",
    "based": "reference_recurrent",
    "softmax-attention": "reference_recurrent",
    "deltanet": "reference_parallel",
    "delta-rule-onehot": "reference_parallel",
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVE))
def test_reference_agrees_with_an_independent_second_form(name):
    """Recurrent vs parallel (or complex vs RoPE, online vs batch softmax) forms of the same layer,
    float64."""
    from constructions.tolerance import compare

    v = _variant(name)
    p = _sample(name, d=4, heads=2, d_out=3)
    x = _x(2, 200, 4)
    ref, alt = v.reference(p, x), getattr(v, ALTERNATIVE[name])(p, x)
    res = compare(alt, ref, v.magnitude(p, x), n=2 * v.path_length(p, 200), dtype=torch.float64, label=name)
    assert res.passed, res.message


def test_special_cases_reduce_to_linear_self_attention():
    """Independent cross-checks against the base LSA: gamma = 1, saturated gates (a_t = 1), elu+1 replaced by
    the identity, beta = 1 one-hot delta rule with distinct slots, all equal plain LinearSelfAttention."""
    from constructions import LinearSelfAttention
    from constructions.variants.feature_maps import FeatureMapParams
    from constructions.variants.gla import GLAParams, SimpleGLAParams
    from constructions.variants.retention import RetentionParams

    g = torch.Generator().manual_seed(3)
    W = [torch.randn(2, 3, 4, generator=g, dtype=torch.float64) for _ in range(3)]
    lsa = LinearSelfAttention(*W)
    x = _x(2, 40, 4)
    y = lsa(x)
    ret = _variant("retention").reference(RetentionParams(*W, gamma=torch.ones(2, dtype=torch.float64)), x)
    bias = torch.zeros(2, 5, dtype=torch.float64)
    bias[:, -1] = 200.0  # logsigmoid(200) = 0 exactly in float64: a_t = 1
    sgla = _variant("simple-gla").reference(SimpleGLAParams(*W, W_g=bias), x)
    gla = _variant("gla").reference(GLAParams(*W, W_gk=bias[:, None, :].expand(2, 3, 5)), x)
    fm = _variant("feature-map-attention").reference(FeatureMapParams(*W, feature_map="identity"), x)
    for other in (ret, sgla, gla, fm):
        assert torch.allclose(other, y, rtol=1e-12, atol=1e-12)


def test_retention_with_gamma_zero_is_a_pointwise_map():
    from constructions.variants.retention import RetentionParams

    p = _sample("retention")
    p0 = RetentionParams(p.W_Q, p.W_K, p.W_V, torch.zeros(2, dtype=torch.float64))
    x = _x(2, 30, 4)
    y = _variant("retention").reference(p0, x)
    # gamma = 0: o_t = v_t (k_t . q_t), no memory of the past
    y1 = torch.cat([_variant("retention").reference(p0, x[:, t : t + 1]) for t in range(30)], dim=1)
    assert torch.allclose(y, y1, rtol=1e-13, atol=1e-13)
    assert torch.allclose(_variant("retention").construct(p0)(x), y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name,dtype",
    [(n, torch.float32) for n in SHIPPED]
    + [(n, torch.float64) for n in IMPOSSIBLE + ["lsa-direct", "gla", "mlstm"]],
)
def test_numeric_check_verdicts(name, dtype):
    """equivalence.numeric.check_variant_numeric: exact and partial variants pass, negative controls are
    refuted."""
    from equivalence.numeric import check_variant_numeric

    v = _variant(name)
    claim = check_variant_numeric(v, profile="dev", seed=0, dtype=dtype)
    if v.status == "impossible":
        assert claim.status == "expected-failure", claim.message
        assert claim.counterexample is not None and "EXCEEDS" in claim.counterexample["message"]
    else:
        assert claim.status == "tested", claim.message


def test_gla_compressed_construction_is_invalid_and_the_validator_says_why():
    from constructions.variants import Plan, build_rnn
    from constructions.tolerance import compare

    gla = _variant("gla")
    p = _sample("gla", d=3, heads=2)
    reason = gla.compressed_reason(p)
    assert reason is not None and "per-key" in reason and "k-coordinates" in reason
    with pytest.raises(ValueError, match="per-key"):
        gla.construct_compressed(p)
    # differential check of the validator: force the compressed wiring with head h's key-0 gate for the whole
    # store
    H, d_k, _ = p.W_Q.shape
    forced = gla.plan(p, "compressed")
    W = forced.decay_W.reshape(H, d_k, -1)[:, :1].expand(H, d_k, -1).reshape(H * d_k, -1)
    forced = dataclasses.replace(forced, decay=dataclasses.replace(forced.decay, W=W))
    x = _x(2, 50, 3)
    ref = gla.reference(p, x)
    res = compare(
        build_rnn(forced)(x), ref, gla.magnitude(p, x), n=gla.path_length(p, 50), dtype=torch.float64
    )
    assert not res.passed
    assert isinstance(forced, Plan)
    # tied key gates: the validator accepts, and the compressed construction is exact
    pt = _sample("gla", d=3, heads=2, tied=True)
    assert gla.compressed_reason(pt) is None
    rnn = gla.construct_compressed(pt)
    assert rnn.num_neurons == 2 * 6 + 3
    res = compare(
        rnn(x), gla.reference(pt, x), gla.magnitude(pt, x), n=gla.path_length(pt, 50), dtype=torch.float64
    )
    assert res.passed, res.message


def test_compressed_reason_on_other_plans():
    from constructions.variants import compressed_reason

    assert compressed_reason(_variant("simple-gla").plan(_sample("simple-gla"))) is None
    assert "complex" in compressed_reason(_variant("retention-complex").plan(_sample("retention-complex")))
    assert "bias" in compressed_reason(_variant("hgrn2").plan(_sample("hgrn2")))


def test_compressed_scalar_decay_shares_stores_between_heads_with_tied_gates():
    from constructions.variants.gla import SimpleGLAParams

    v = _variant("simple-gla-compressed")
    p = _sample("simple-gla-compressed", d=3, heads=3)
    assert v.num_neurons(p) == 3 * 6 + 3
    tied = SimpleGLAParams(p.W_Q, p.W_K, p.W_V, p.W_g[:1].expand(3, -1).clone())
    assert v.num_neurons(tied) == 6 + 3
    x = _x(2, 60, 3)
    assert torch.allclose(v.construct(tied)(x), v.reference(tied, x), rtol=1e-10, atol=1e-10)


def test_constant_lambda_stays_the_papers_case():
    """Input-dependent decay only where needed: constant-decay variants build a constant lam and no
    decay callable."""
    from constructions.variants import InputDependentDecay

    for name in ("lsa-direct", "retention", "retention-complex", "feature-map-attention", "based"):
        rnn = _variant(name).construct(_sample(name))
        assert rnn.lam is not None and rnn.decay is None, name
    for name in ("simple-gla", "gla", "hgrn2", "mamba2", "mlstm", "delta-rule-onehot"):
        rnn = _variant(name).construct(_sample(name))
        assert rnn.lam is None and isinstance(rnn.decay, InputDependentDecay), name
        lam = rnn.lambdas(_x(2, 7, 4))
        assert lam.shape == (2, 7, rnn.num_neurons)
        assert bool((lam >= 0).all()) and bool((lam <= 1).all())


def test_complex_retention_conjugate_pairs_give_a_real_output_before_re():
    from constructions.variants.retention import RetentionParams

    v = _variant("retention-complex")
    p = _sample("retention-complex", d=4, heads=2, d_out=3)
    x = _x(2, 100, 4)
    rnn = v.construct(p)
    assert rnn.is_complex and rnn.num_neurons == 2 * 4 * 5
    rnn.real_output = False
    y = rnn(x)
    assert y.is_complex()
    assert float(y.imag.abs().max()) <= 1e-12 * float(y.real.abs().max())
    half = RetentionParams(
        *(getattr(p, f.name) for f in dataclasses.fields(p) if f.name != "conjugate_pairs"),
        conjugate_pairs=False,
    )
    r2 = v.construct(half)
    assert r2.num_neurons == 20 and v.num_neurons(half) == 20
    assert torch.allclose(r2(x), v.reference(p, x), rtol=1e-10, atol=1e-10)
    assert torch.allclose(rnn(x).real, v.reference(p, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", PARTIAL)
def test_partial_variants_reach_numerator_and_denominator_and_finish_divides(name):
    """construct(p)(x) equals the reachable [numerator; denominator]; finish() of it equals the full layer,
    implemented independently (parallel form / stabilised mLSTM), within the bound propagated through the
    division."""
    from constructions.tolerance import gamma

    v = _variant(name)
    p = _sample(name, d=4, heads=2, d_out=3)
    x = _x(2, 300, 4)
    reach = v.construct(p)(x)
    assert reach.shape == (2, 300, 2 * 5)
    M = v.magnitude(p, x)
    n = v.path_length(p, 300)
    u = torch.finfo(torch.float64).eps / 2
    assert bool(((reach - v.reference(p, x)).abs() <= gamma(n, u) * M).all())
    # division: |d(a/b)| <= (|da| + |a/b| |db|) / |b|, per head, then |W_O|
    H = 2
    num, den = reach.reshape(2, 300, H, 5)[..., :4], reach.reshape(2, 300, H, 5)[..., 4:]
    Mn, Md = M.reshape(2, 300, H, 5)[..., :4], M.reshape(2, 300, H, 5)[..., 4:]
    if name == "mlstm":
        den = den.abs().clamp(min=1.0)
    ratio = num / den
    err = (2 * gamma(n, u) * (Mn + ratio.abs() * Md) / den.abs() + 4 * u * ratio.abs()).reshape(2, 300, -1)
    bound = err @ p.W_O.abs().T + 4 * u * (ratio.reshape(2, 300, -1).abs() @ p.W_O.abs().T)
    full = v.layer(p, x)
    assert bool(((v.finish(p, reach) - full).abs() <= bound).all())
    assert float(full.abs().max()) > 0


def test_mlstm_stabiliser_is_an_exact_reparametrisation_even_with_large_gates():
    from constructions.variants.normalized import MLSTMParams

    v = _variant("mlstm")
    p = _sample("mlstm", d=3, heads=2)
    big = MLSTMParams(p.W_Q, p.W_K, p.W_V, p.w_i * 20, p.w_f, cap=None)  # e^{i} up to e^{~100}
    x = _x(2, 80, 3)
    stab, plain = v.layer(big, x), v.finish(big, v.reference(big, x))
    assert torch.allclose(stab, plain, rtol=1e-9, atol=1e-12)


def test_delta_rule_controls_agree_at_T1_and_differ_once_keys_overlap():
    """The tried construction for DeltaNet is right until the correction term -beta S k k^T first acts."""
    v = _variant("deltanet")
    p = _sample("deltanet", d=4, heads=2)
    x = _x(2, 2, 4)
    y_ref, y_rnn = v.reference(p, x), v.construct(p)(x)
    assert torch.allclose(y_rnn[:, :1], y_ref[:, :1], rtol=1e-12, atol=1e-12)
    assert float((y_rnn[:, 1] - y_ref[:, 1]).abs().max()) > 1e-3
    s = _variant("softmax-attention")
    ps = _sample("softmax-attention")
    assert float((s.construct(ps)(x) - s.reference(ps, x)).abs().max()) > 1e-3


def test_one_hot_delta_rule_with_ties_and_beta_one():
    """Ties in the router pick the first slot at every precision; beta = 1 overwrites a slot exactly."""
    from constructions.variants.controls import OneHotDeltaParams

    v = _variant("delta-rule-onehot")
    p = _sample("delta-rule-onehot", d=3, heads=2)
    p1 = OneHotDeltaParams(p.W_Q, p.W_V, p.coords, torch.ones(2, dtype=torch.float64))
    x = torch.round(_x(2, 64, 3) * 2) / 2  # many exact ties
    for params in (p, p1):
        for dtype in (torch.float64, torch.float32):
            y = v.construct(params)(x.to(dtype)).to(torch.float64)
            assert torch.allclose(
                y,
                v.reference(params, x),
                rtol=1e-5 if dtype == torch.float32 else 1e-12,
                atol=1e-5 if dtype == torch.float32 else 1e-12,
            )


def _fifth_difference(f):
    """5th forward difference of c -> f(c) at c = 1..6: zero for polynomials of degree <= 4."""
    from math import comb

    return sum((-1) ** (5 - i) * comb(5, i) * f(float(i + 1)) for i in range(6))


def test_single_template_layer_has_degree_at_most_four_but_based_has_degree_five():
    """Why Based needs an upstream k (x) k: along a ray x -> c x a constant-lambda template RNN is a
    polynomial of degree <= 4 in c (its 5th difference vanishes), while Based's output has degree 5 (and
    elu+1's is not polynomial): one template layer cannot equal them; with the upstream features it does
    (other tests)."""
    from constructions import GatedLinearRNN

    g = torch.Generator().manual_seed(5)
    n, m, d = 12, 9, 3
    rnn = GatedLinearRNN(
        *(torch.randn(*s, generator=g, dtype=torch.float64) for s in ((n, d + 1), (n, d + 1))),
        torch.rand(n, generator=g, dtype=torch.float64),
        *(torch.randn(*s, generator=g, dtype=torch.float64) for s in ((m, n), (m, n), (2, m))),
    )
    x = _x(1, 5, 3) / 4
    y_rnn = lambda c: rnn(c * x)[0, -1]  # noqa: E731
    scale = max(float(y_rnn(c).abs().max()) for c in range(1, 7))
    assert float(_fifth_difference(y_rnn).abs().max()) <= 1e-9 * scale
    based, pb = _variant("based"), _sample("based", d=3, heads=1)
    y_b = lambda c: based.reference(pb, c * x)[0, -1]  # noqa: E731
    assert float(_fifth_difference(y_b).abs().max()) > 1e-3 * max(
        float(y_b(c).abs().max()) for c in range(1, 7)
    )
    fm, pf = _variant("feature-map-attention"), _sample("feature-map-attention", d=3, heads=1)
    y_f = lambda c: fm.reference(pf, c * x)[0, -1]  # noqa: E731
    assert float(_fifth_difference(y_f).abs().max()) > 1e-6 * max(
        float(y_f(c).abs().max()) for c in range(1, 7)
    )


def test_degenerate_hook_keeps_params_in_domain():
    for name in SHIPPED:
        v = _variant(name)
        p = _sample(name)
        for kind in range(6):
            q = v.degenerate(p, torch.Generator().manual_seed(kind), kind)
            x = _x(1, 5, 4)
            assert torch.isfinite(v.reference(q, x)).all(), (name, kind)
            assert type(q) is type(p)


def test_reference_and_construct_on_empty_and_single_step_sequences():
    for name in SHIPPED:
        v = _variant(name)
        p = _sample(name)
        for T in (0, 1):
            x = _x(2, T, 4)
            y, y_ref = v.construct(p)(x), v.reference(p, x)
            assert y.shape == y_ref.shape
            if v.status != "impossible":
                assert torch.allclose(y, y_ref, rtol=1e-12, atol=1e-12), (name, T)


def test_plan_takes_typed_parts_only():
    """``Plan`` is built from typed parts; a flat keyword of the earlier form is refused, naming the part."""
    W = torch.zeros(1, 2, 3, dtype=torch.float64)
    for flat, hint in (
        ({"decay_W": torch.zeros(1, 3)}, "InputDecay"),
        ({"kv_decay": torch.ones(1, 2)}, "ConstantDecay"),
        ({"skip_W": W}, "Skip"),
    ):
        with pytest.raises(TypeError, match=hint):
            Plan(W, W, W, **flat)
    with pytest.raises(TypeError, match="unexpected keyword"):
        Plan(W, W, W, decay_kind="x")
    p = Plan(W, W, W, decay=InputDecay(torch.zeros(2, 3), "affine", per_key=True))
    assert p.decay_per_key and p.decay_link == "affine" and p.kv_decay is None
    assert Plan(W, W, W, decay=ConstantDecay(torch.ones(1, 2))).kv_decay is not None
