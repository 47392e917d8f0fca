"""Mutation-testing kills for equivalence/numeric.py (docs/reliability.md, "Mutation testing").

The degenerate weights and the case draws are replayed from the same seeded generator and compared exactly;
``check_variant_numeric`` is run on a tiny profile for a correct, a broken, a negative-control and a bare
variant (no ``magnitude`` / ``path_length`` / ``degenerate``: the module's fall-backs), with every field of
the claim checked."""

import dataclasses

import pytest
import torch

F64 = torch.float64


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_profiles_exact():
    from equivalence.numeric import PROFILES, NumericProfile

    assert PROFILES == {
        "dev": NumericProfile(cases=12, max_T=32, max_d=5, max_heads=2, batch=4),
        "ci": NumericProfile(cases=40, max_T=64, max_d=6, max_heads=3, batch=4),
        "thorough": NumericProfile(cases=400, max_T=256, max_d=8, max_heads=3, batch=8),
    }


def test_degenerate_every_kind_exact():
    from equivalence.numeric import degenerate_

    for shape in ((5, 3), (2, 4, 3)):
        t0 = torch.randn(*shape, generator=_g(1), dtype=F64)
        # 0: rank one, a [.., rows, 1] * b [.., 1, cols] from the generator, in this order
        g = _g(2)
        a = torch.randn(*shape[:-1], 1, generator=g, dtype=F64)
        b = torch.randn(*shape[:-2], 1, shape[-1], generator=g, dtype=F64)
        t = t0.clone()
        assert degenerate_(t, _g(2), 0) is t and torch.equal(t, a * b)
        t32 = t0.float()
        assert torch.equal(degenerate_(t32, _g(2), 0), (a * b).float())
        # 1: the first max(1, rows // 2) rows are zero, the rest untouched
        t = degenerate_(t0.clone(), _g(2), 1)
        k = shape[-2] // 2
        assert not t[..., :k, :].any() and torch.equal(t[..., k:, :], t0[..., k:, :])
        # 2: rounded to halves
        assert torch.equal(degenerate_(t0.clone(), _g(2), 2), torch.round(t0 * 2) / 2)
        # 3: scaled by 10^e, e uniform in -3..3 from the generator
        e = float(torch.randint(-3, 4, (1,), generator=_g(3)))
        assert torch.equal(degenerate_(t0.clone(), _g(3), 3), t0 * 10.0**e)
        for kind in (4, 5, -1):
            assert torch.equal(degenerate_(t0.clone(), _g(2), kind), t0)
    one_row = torch.ones(1, 3, dtype=F64)
    assert not degenerate_(one_row, _g(0), 1).any()  # max(1, 0) = 1 row
    vec = torch.arange(4.0, dtype=F64) * 0.3
    assert torch.equal(degenerate_(vec.clone(), _g(2), 0), vec)  # rank one needs a matrix
    assert torch.equal(degenerate_(vec.clone(), _g(2), 1), vec)
    assert torch.equal(degenerate_(vec.clone(), _g(2), 2), torch.round(vec * 2) / 2)
    exps = {float(torch.log10(degenerate_(torch.ones(1, dtype=F64), _g(s), 3)).round()) for s in range(200)}
    assert exps == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}
    w = torch.ones(2, 2, requires_grad=True)
    degenerate_(w, _g(0), 2)  # in place under no_grad: allowed on a leaf that requires grad
    assert w.requires_grad


@dataclasses.dataclass
class _P:
    W: torch.Tensor
    v: torch.Tensor
    n: int = 3


class _Probe:
    """A variant stub: records what draw_case asks for and returns a fixed parameter object."""

    name = "probe"

    def __init__(self, degenerate=False):
        self.calls = []
        if degenerate:
            self.degenerate = lambda params, g, kind: ("degenerated", kind)

    def sample_params(self, d, heads, *, generator, dtype):
        self.calls.append((d, heads, dtype))
        return _P(torch.ones(2, 3, dtype=F64), torch.ones(3, dtype=F64))


def test_draw_case_replays_the_generator():
    from equivalence.numeric import NumericProfile, draw_case

    prof = NumericProfile(cases=1, max_T=4, max_d=3, max_heads=2, batch=2)
    seen = {"d": set(), "heads": set(), "T": set(), "weights": set()}
    for seed in range(60):
        v = _Probe()
        params, x, sizes = draw_case(v, prof, _g(seed), torch.float32)
        g = _g(seed)
        d = int(torch.randint(1, 4, (1,), generator=g))
        heads = int(torch.randint(1, 3, (1,), generator=g))
        T = int(torch.randint(1, 5, (1,), generator=g))
        kind = int(torch.randint(0, 6, (1,), generator=g))
        assert v.calls == [(d, heads, F64)]
        assert sizes == {"d": d, "heads": heads, "T": T, "batch": 2, "weights": kind}
        W = torch.ones(2, 3, dtype=F64)
        if kind == 0:
            a = torch.randn(2, 1, generator=g, dtype=F64)
            b = torch.randn(1, 3, generator=g, dtype=F64)
            W = a * b
        elif kind == 1:
            W[:1] = 0
        elif kind == 3:
            W = W * 10.0 ** float(torch.randint(-3, 4, (1,), generator=g))
        assert torch.equal(params.W, W) and torch.equal(
            params.v, torch.ones(3, dtype=F64)
        )  # 1-D: not a weight
        ex = torch.randn(2, T, d, generator=g, dtype=F64)
        if kind == 3:
            ex = ex * 10.0 ** float(torch.randint(-2, 3, (1,), generator=g))
        ex = ex.float().double()
        assert x.dtype == F64 and torch.equal(x, ex)
        for k, val in sizes.items():
            if k in seen:
                seen[k].add(val)
    assert seen == {"d": {1, 2, 3}, "heads": {1, 2}, "T": {1, 2, 3, 4}, "weights": {0, 1, 2, 3, 4, 5}}
    # a variant that knows its free fields degenerates them itself
    for seed in range(20):
        params, _, sizes = draw_case(_Probe(degenerate=True), prof, _g(seed), F64)
        assert params == (("degenerated", sizes["weights"]) if sizes["weights"] < 4 else params)
        if sizes["weights"] >= 4:
            assert torch.equal(params.W, torch.ones(2, 3, dtype=F64))


TINY = {"cases": 3, "max_T": 5, "max_d": 2, "max_heads": 2, "batch": 2}


@pytest.fixture
def tiny(monkeypatch):
    from equivalence import numeric

    monkeypatch.setitem(numeric.PROFILES, "tiny", numeric.NumericProfile(**TINY))
    return "tiny"


def test_profile_message_exact():
    import constructions
    from equivalence.numeric import check_variant_numeric

    with pytest.raises(ValueError) as info:
        check_variant_numeric(constructions.get("lsa-direct"), profile="fast")
    assert str(info.value) == "profile must be one of ['ci', 'dev', 'thorough']; got 'fast'"


def test_passed_claim_fields_exact(tiny):
    import constructions
    from equivalence.numeric import check_variant_numeric

    for dtype, dname in ((F64, "float64"), (torch.float32, "float32")):
        c = check_variant_numeric(constructions.get("lsa-direct"), profile=tiny, seed=5, dtype=dtype)
        assert c.status == "tested" and c.ok and c.counterexample is None and c.message == ""
        assert c.id == f"LSA-DIRECT-NUMERIC-{dname.upper()}-CPU/v1"
        assert c.title == f"lsa-direct: construction equals reference numerically ({dname}, cpu)"
        assert c.statement == (
            "For 3 random cases (profile 'tiny', seed 5; sizes d<= 2, heads<= 2, T<= 5; generic and "
            "degenerate "
            f"weights), the construction of 'lsa-direct' evaluated in {dname} on cpu equals the float64 "
            "reference "
            f"within the tolerance model |y_hat - y| <= gamma_n M + n eta."
        )
        assert (c.kind, c.construction, c.tier) == ("numeric", "lsa-direct", "random-cases")
        assert c.sizes == {"cases": 3, "max_d": 2, "max_heads": 2, "max_T": 5}
        assert c.rerun == {
            "command": "numeric",
            "variant": "lsa-direct",
            "profile": "tiny",
            "seed": 5,
            "dtype": dname,
            "device": "cpu",
        }
        ev = c.evidence
        assert set(ev) == {"worst_error_over_bound", "max_rel_rms", "mode"} and ev["mode"] == "auto"
        assert 0 <= ev["worst_error_over_bound"] < 1 and 0 <= ev["max_rel_rms"] < 1e-3
        if dtype == torch.float32:
            assert ev["worst_error_over_bound"] > 0 and ev["max_rel_rms"] > 0  # real rounding was measured
        assert c.seconds >= 0 and round(c.seconds, 3) == c.seconds
    loop = check_variant_numeric(constructions.get("lsa-direct"), profile=tiny, mode="loop")
    assert loop.evidence["mode"] == "loop" and loop.status == "tested" and loop.rerun["seed"] == 0


class _Broken:
    """lsa-direct with one weight of the construction perturbed by 1e-3 (relative): must be caught."""

    name = "broken-lsa"
    status = "exact"

    def __init__(self, status="exact", eps=1e-3):
        import constructions

        self.base = constructions.get("lsa-direct")
        self.status, self.eps = status, eps

    def sample_params(self, *a, **k):
        return self.base.sample_params(*a, **k)

    def reference(self, params, x):
        return self.base.reference(params, x)

    def magnitude(self, params, x):
        return self.base.magnitude(params, x)

    def path_length(self, params, T):
        return self.base.path_length(params, T)

    def degenerate(self, params, g, kind):
        return params  # generic weights only: every case is sensitive to the perturbation

    def construct(self, params):
        rnn = self.base.construct(params)
        with torch.no_grad():
            rnn.D.mul_(1 + self.eps)
        return rnn


def test_failed_claim_keeps_the_first_counterexample(tiny):
    from equivalence.numeric import check_variant_numeric

    c = check_variant_numeric(_Broken(), profile=tiny, seed=2)
    assert c.status == "failed" and not c.ok and c.sizes["cases"] == 1  # stops at the first failing case
    ce = c.counterexample
    assert set(ce) == {
        "case",
        "seed",
        "sizes",
        "message",
        "worst_index",
        "max_abs_error",
        "mode",
        "params",
        "x",
        "observed",
        "expected",
        "bound",
    }  # parameters, inputs exactly (hex floats): replayable
    assert ce["x"]["hex"] and all(
        v["hex"] for v in ce["params"].values() if isinstance(v, dict) and "hex" in v
    )
    assert ce["case"] == 0 and ce["seed"] == 2 and ce["max_abs_error"] > 0
    assert isinstance(ce["worst_index"], list) and len(ce["worst_index"]) == 3
    assert (
        ce["message"].startswith("broken-lsa construction EXCEEDS the error bound")
        and c.message == ce["message"]
    )
    assert c.evidence["worst_error_over_bound"] > 1
    assert c.id == "BROKEN-LSA-NUMERIC-FLOAT64-CPU/v1"


def test_negative_controls_flip_the_status(tiny):
    from equivalence.numeric import check_variant_numeric

    caught = check_variant_numeric(_Broken(status="impossible"), profile=tiny)
    assert caught.status == "expected-failure" and caught.ok
    assert caught.statement == (
        "Negative control: the template construction offered for 'broken-lsa' differs from "
        "its reference on at least one random case (float64, cpu); the suite can say no."
    )
    missed = check_variant_numeric(_Broken(status="impossible", eps=0.0), profile=tiny)
    assert missed.status == "unexpected-pass" and not missed.ok and missed.counterexample is None
    assert missed.sizes["cases"] == 3


class _Bare:
    """A variant with only the required methods: numeric.py's fall-backs for M, n and degenerate weights."""

    name = "bare-lsa"
    status = "exact"

    def __init__(self, eps=0.0):
        import constructions

        self.base = constructions.get("lsa-direct")
        self.eps = eps

    def sample_params(self, *a, **k):
        return self.base.sample_params(*a, **k)

    def reference(self, params, x):
        return self.base.reference(params, x)

    def construct(self, params):
        rnn = self.base.construct(params)
        with torch.no_grad():
            rnn.D.mul_(1 + self.eps)
        return rnn


def test_fallbacks_accept_correct_and_reject_broken(tiny):
    from equivalence.numeric import check_variant_numeric

    ok = check_variant_numeric(_Bare(), profile=tiny, seed=1, dtype=torch.float32)
    assert ok.status == "tested" and 0 < ok.evidence["worst_error_over_bound"] < 1
    bad = check_variant_numeric(_Bare(eps=1e-4), profile=tiny, seed=1, dtype=torch.float32)
    assert bad.status == "failed"


def test_working_dtype_reaches_params_and_inputs(tiny):
    """float32 claims compute in float32: the measured error is float32-sized (a float64 computation would
    give a ratio ~1e-9), so the parameters and the input are really cast."""
    import constructions
    from equivalence.numeric import check_variant_numeric

    c = check_variant_numeric(constructions.get("lsa-direct"), profile=tiny, seed=3, dtype=torch.float32)
    assert 1e-5 < c.evidence["worst_error_over_bound"] < 1


def test_default_profile_is_ci(monkeypatch):
    import constructions
    from equivalence import numeric

    monkeypatch.setitem(numeric.PROFILES, "ci", numeric.NumericProfile(**TINY))
    c = numeric.check_variant_numeric(constructions.get("lsa-direct"))
    assert (
        c.rerun["profile"] == "ci"
        and c.sizes["cases"] == 3
        and c.rerun["seed"] == 0
        and c.rerun["dtype"] == "float64"
    )


def test_variant_magnitude_and_path_length_are_used(tiny):
    """A variant's own M and n decide the bound: generous ones let a perturbed construction pass."""
    from equivalence.numeric import check_variant_numeric

    class HugeM(_Broken):
        def magnitude(self, params, x):
            return self.base.magnitude(params, x) * 1e12

    class HugeN(_Broken):
        def path_length(self, params, T):
            return 2**53  # gamma_n = inf

    assert check_variant_numeric(HugeM(), profile=tiny).status == "tested"
    assert check_variant_numeric(HugeN(), profile=tiny).status == "tested"


class _Overflow(_Broken):
    """lsa-direct whose input gate is scaled by 1e200: every weight is finite (non-finite weights are refused
    when the RNN is built) but the key-value state overflows, so the output is Inf/NaN."""

    def construct(self, params):
        rnn = self.base.construct(params)
        with torch.no_grad():
            rnn.A.mul_(1e200)
            rnn.B.mul_(1e200)
        return rnn


def test_non_finite_evidence_is_json_text(tiny):
    from constructions.rnn import NumericalHazardWarning
    from equivalence.numeric import check_variant_numeric

    with pytest.warns(NumericalHazardWarning):
        c = check_variant_numeric(_Overflow(), profile=tiny)
    assert c.status == "failed" and "NaN or Inf" in c.message
    assert c.evidence["worst_error_over_bound"] == "inf" and c.evidence["max_rel_rms"] == "inf"


def test_non_finite_counterexample_is_serialisable(tiny):
    """A construction that outputs NaN fails with a JSON-safe counterexample (the certificate writer refuses
    NaN)."""
    import json

    from constructions.rnn import NumericalHazardWarning
    from equivalence.numeric import check_variant_numeric

    with pytest.warns(NumericalHazardWarning):
        c = check_variant_numeric(_Overflow(), profile=tiny)
    assert not c.ok
    d = c.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert c.counterexample["max_abs_error"] in ("nan", "inf")
