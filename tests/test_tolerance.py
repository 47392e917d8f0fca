"""The tolerance model: passes correct float32 constructions, fails perturbed ones, never passes NaN."""

import math

import pytest
import torch


def test_gamma():
    from constructions.tolerance import gamma

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
    from constructions.tolerance import compare

    v, p, x = _case()
    p32 = type(p)(*(t.float() if t is not None else None for t in (p.W_Q, p.W_K, p.W_V, p.W_O)))
    y = v.construct(p32)(x.float())
    res = compare(
        y, v.reference(p, x), v.magnitude(p, x), n=v.path_length(p, x.shape[1]), dtype=torch.float32
    )
    assert res.passed, res.message
    assert 1e-4 < res.ratio < 1  # the bound is rigorous but not vacuous


def test_perturbation_is_detected():
    from constructions.tolerance import compare

    v, p, x = _case()
    rnn = v.construct(p)
    with torch.no_grad():
        rnn.D[0, 0] *= 1 + 1e-6
    res = compare(
        rnn(x), v.reference(p, x), v.magnitude(p, x), n=v.path_length(p, x.shape[1]), dtype=torch.float64
    )
    assert not res.passed and "EXCEEDS" in res.message
    assert len(res.worst_index) == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_never_passes(bad):
    from constructions.tolerance import compare

    y = torch.zeros(1, 3, 2)
    y_bad = y.clone()
    y_bad[0, 1, 1] = bad
    for cand, ref in ((y_bad, y), (y, y_bad), (y_bad, y_bad)):
        res = compare(cand, ref, torch.ones_like(y), n=10)
        assert not res.passed and "NaN or Inf" in res.message and res.worst_index == (0, 1, 1)


def test_shape_mismatch_is_an_error():
    from constructions.tolerance import compare

    with pytest.raises(ValueError, match="shapes differ"):
        compare(torch.zeros(2, 3), torch.zeros(3, 2), torch.zeros(3, 2), n=1)


def test_complex64_underflow_term_is_float32s():
    from constructions.tolerance import error_bound

    z = torch.zeros(2, dtype=torch.float64)
    assert torch.equal(
        error_bound(z, 3, torch.complex64),
        torch.full((2,), 3 * torch.finfo(torch.float32).tiny, dtype=torch.float64),
    )
    assert float(error_bound(z, 1, torch.complex128)[0]) == torch.finfo(torch.float64).tiny
    assert torch.finfo(torch.float32).tiny != torch.finfo(torch.float64).tiny


def test_recurrence_path_length_formulas():
    from constructions.tolerance import lam_kind
    from constructions.tolerance import recurrence_path_length as rpl

    half, zero_one = torch.tensor([0.5, 1.0]), torch.tensor([0.0, 1.0, 1.0])
    cplx = torch.polar(torch.ones(2, dtype=torch.float64), torch.tensor([0.3, 2.0], dtype=torch.float64))
    assert (lam_kind(half), lam_kind(zero_one), lam_kind(cplx), lam_kind(None)) == (
        "real",
        "zero-one",
        "complex",
        "real",
    )
    for T in (0, 1, 7, 64, 1000):
        assert rpl(T, zero_one, mode="loop") == rpl(T, zero_one, mode="parallel") == rpl(T, "zero-one") == T
        assert rpl(T, half, mode="loop") == rpl(T, half) == rpl(T) == 2 * T  # multiply, then add, every step
        assert rpl(T, cplx) == 4 * T  # sqrt(2) gamma_2 <= gamma_3 per complex product, 1 per addition
    # chunked, worked by hand: T=2, block 1 (fold 2, carry joins exactly, fix-up product and add): 4
    assert rpl(2, half, mode="parallel", block=1) == 4
    assert rpl(16, half, mode="parallel", block=4) == 2 * 4 + 2 * (4 + 1) + 4 + 1  # K=4 blocks, j=3: 23
    assert rpl(16, half, mode="hillis-steele") == 16 + 1 + 4
    assert rpl(5, half, mode="parallel", block=5) == 10  # one block: the loop's count
    # "any" bounds every path, for every block length (derived in docs/tolerance.md)
    for T in range(1, 90):
        for kind in ("real", "complex"):
            paths = [rpl(T, kind, mode="hillis-steele")] + [
                rpl(T, kind, mode="parallel", block=b) for b in (None, 1, 2, 3, 5, 16, 100)
            ]
            assert max(paths) <= rpl(T, kind, mode="any") == rpl(T, kind, mode="loop"), (T, kind)
    with pytest.raises(ValueError, match="mode must be one of"):
        rpl(3, half, mode="sideways")
    with pytest.raises(ValueError, match="T must be >= 0"):
        rpl(-1)
    with pytest.raises(ValueError, match="lam must be"):
        rpl(3, "imaginary")
    with pytest.raises(TypeError, match="lam"):  # (under the jaxtyping hook of test_typing: its own message)
        rpl(3, 0.5)


def test_loop_rounds_twice_per_step_when_lambda_is_not_zero_or_one():
    """A correct bf16 step, h_1 = fl(fl(lambda h_0) + u_1), exceeds gamma_1 M (the old count, T) and stays
    within gamma_2 M (the new one): the product rounds, then the sum (this u_1 is lost altogether)."""
    from constructions.scan import scan_loop
    from constructions.tolerance import compare, recurrence_path_length, rnn_path_length

    lam = torch.tensor([0.90625], dtype=torch.float64)  # all values exact in bfloat16
    h0 = torch.tensor([[1.125]], dtype=torch.float64)
    u = torch.tensor([[[0.003509521484375]]], dtype=torch.float64)
    ref, _ = scan_loop(lam, u, h0)
    M, _ = scan_loop(lam.abs(), u.abs(), h0.abs())
    h, _ = scan_loop(lam.bfloat16(), u.bfloat16(), h0.bfloat16())
    old = compare(h, ref, M, n=1, dtype=torch.bfloat16)
    new = compare(h, ref, M, n=recurrence_path_length(1, lam, mode="loop"), dtype=torch.bfloat16)
    assert not old.passed and old.ratio > 1.5
    assert new.passed and new.ratio > 0.5
    assert rnn_path_length(1, 1, 1, 1, lam=lam) - rnn_path_length(1, 1, 1, 1, lam=torch.tensor([1.0])) == 1


def test_template_path_length_counts_actual_non_zeros():
    from constructions.tolerance import template_path_length

    eye = torch.eye(3, dtype=torch.float64)
    assert (
        template_path_length(eye, eye, eye, eye, eye) == 2
    )  # selections by 1 are exact; the two gate products
    A = torch.tensor([[0.3, 1.0, 0.0]], dtype=torch.float64)  # 1 addition + an inexact product
    one = torch.ones(1, 1, dtype=torch.float64)
    assert template_path_length(A, 2 * A.sign().abs(), one, one, one) == 2 + 1 + 0 + 1 + 0
    assert template_path_length(A, A, torch.full((1, 1), 3.0), one, torch.ones(1, 4)) == 3 + 1 + 1 + 3
    assert template_path_length(eye * 1j, eye, eye, eye, eye) == 4  # complex counts twice


def test_running_error_bound_covers_stagnation_and_credits_cancellation():
    """Recursive sums over T = 1500. bf16: equal positive terms stagnate at 256 (error ~0.83 of the sum),
    which the bound must, and does, cover (gamma_T M is infinite there). fp16: random-sign terms cancel
    (|h_t| ~ sqrt t) and the running bound stays far below gamma_T M."""
    from constructions.scan import scan_loop
    from constructions.tolerance import gamma, recurrence_error_bound, unit_roundoff

    T, one = 1500, torch.ones(1, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for dtype, u in (
        (torch.bfloat16, torch.ones(1, T, 1, dtype=torch.float64)),
        (torch.float16, torch.randn(1, T, 1, generator=g, dtype=torch.float64).half().double()),
    ):
        ref, _ = scan_loop(one, u, torch.zeros(1, 1, dtype=torch.float64))
        h, _ = scan_loop(one.to(dtype), u.to(dtype), torch.zeros(1, 1, dtype=dtype))
        err = (h.double() - ref).abs()
        e = recurrence_error_bound(one, ref.abs(), dtype)
        assert bool((err <= e).all()), float((err / e).max())
        assert float((err / e).max()) > 0.01  # not vacuous
        M = torch.cumsum(u.abs(), dim=1)
        if dtype == torch.bfloat16:
            assert float(err[0, -1, 0]) > 0.8 * float(M[0, -1, 0]) and math.isinf(
                gamma(T, unit_roundoff(dtype))
            )
        else:  # credited cancellation: 100x below the a-priori gamma_T M
            assert float((e / M)[0, -1, 0]) < 0.01 * gamma(T, unit_roundoff(dtype))


def test_low_precision_bound_passes_long_bf16_construction_and_catches_a_bug():
    import constructions
    from constructions.tolerance import low_precision_bound

    v = constructions.get("lsa-direct")
    g = torch.Generator().manual_seed(4)
    p = v.sample_params(2, 1, generator=g)
    p = type(p)(*(t.bfloat16().double() if t is not None else None for t in (p.W_Q, p.W_K, p.W_V, p.W_O)))
    x = torch.randn(1, 1200, 2, generator=g, dtype=torch.float64).bfloat16().double()
    ref, M = p.lsa().forward_recurrent(x), v.magnitude(p, x)
    low = v.construct(
        type(p)(*(t.bfloat16() if t is not None else None for t in (p.W_Q, p.W_K, p.W_V, p.W_O)))
    )
    bound = low_precision_bound(v.construct(p), x, M, dtype=torch.bfloat16, extra=0, mode="loop")
    err = (low(x.bfloat16(), mode="loop").double() - ref).abs()
    assert bool((err <= bound).all()) and float((err / bound).max()) > 1e-2
    with torch.no_grad():
        low.D.mul_(1.5)  # a wrong readout
    assert bool(((low(x.bfloat16(), mode="loop").double() - ref).abs() > bound).any())
    with pytest.raises(ValueError, match="mode must be"):
        low_precision_bound(v.construct(p), x, M, dtype=torch.bfloat16, extra=0, mode="fast")


def test_new_functions_reject_bad_input():
    from constructions.tolerance import low_precision_bound, recurrence_error_bound, template_path_length

    H = torch.ones(1, 3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="torch tensors"):
        recurrence_error_bound([1.0], H, torch.bfloat16)
    with pytest.raises(ValueError, match="lam must have shape"):
        recurrence_error_bound(torch.ones(3), H, torch.bfloat16)
    with pytest.raises(ValueError, match="H must be"):
        recurrence_error_bound(torch.ones(2), H[0], torch.bfloat16)
    with pytest.raises(TypeError, match="2-D weight tensors"):
        template_path_length(
            torch.ones(2), torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2)
        )
    with pytest.raises(TypeError, match="GatedLinearRNN"):
        low_precision_bound("rnn", H, H, dtype=torch.bfloat16, extra=0)


def test_low_precision_bound_refuses_to_pass_without_a_guarantee():
    from constructions import GatedLinearRNN
    from constructions.tolerance import low_precision_bound

    g = torch.Generator().manual_seed(0)
    rnn = GatedLinearRNN(
        *(torch.randn(*s, generator=g, dtype=torch.float64) for s in ((2, 3), (2, 3))),
        torch.tensor([0.5, 0.9], dtype=torch.float64),
        *(torch.randn(*s, generator=g, dtype=torch.float64) for s in ((2, 2), (2, 2), (1, 2))),
    )
    x = torch.randn(1, 300, 2, generator=g, dtype=torch.float64)
    M = torch.ones(1, 300, 1, dtype=torch.float64)
    assert bool(
        torch.isfinite(low_precision_bound(rnn, x, M, dtype=torch.bfloat16, extra=0, mode="loop")).all()
    )
    with pytest.raises(ValueError, match="no guarantee left for the parallel scan"):
        low_precision_bound(rnn, x, M, dtype=torch.bfloat16, extra=0, mode="parallel")
    with pytest.raises(ValueError, match="no guarantee left: the non-recurrent path"):
        low_precision_bound(rnn, x, M, dtype=torch.bfloat16, extra=300, mode="loop")


# -- non-polynomial blocks: flush-to-zero, subnormals, saturation (constructions.tolerance.POINTWISE)
# ---------
def _gate_case_ratio(monkeypatch=None, seeds=range(4)):
    import dataclasses

    from constructions.tolerance import compare
    from properties.regressions import HGRNOutputGate, extreme_case

    v = HGRNOutputGate()
    worst = 0.0
    for seed in seeds:
        p, x = extreme_case(torch.Generator().manual_seed(seed))
        ref = v.reference(p, x)
        low = dataclasses.replace(p, **{k: getattr(p, k).float() for k in ("W_f", "W_c", "W_g", "W_O")})
        y = v.construct(low)(x.float())
        worst = max(
            worst,
            compare(y, ref, v.magnitude(p, x), n=v.path_length(p, x.shape[1]), dtype=torch.float32).ratio,
        )
    return worst


def test_float32_silu_flush_to_zero_is_no_false_alarm(monkeypatch):
    """HGRN v1 with a SiLU output gate (properties.regressions): torch's float32 sigmoid returns 0 below
    -88.72
    where SiLU is still a normal number; the state multiplies the lost value. The derived flush term covers
    it, and without that term the same correct cases fail (so the term is needed, not decoration)."""
    import constructions.tolerance as tol

    x = torch.tensor([-88.8, -90.0], dtype=torch.float32)
    assert torch.equal(x * torch.sigmoid(x), torch.zeros(2))  # the premise: float32 SiLU flushes there
    assert _gate_case_ratio() <= 1.0
    monkeypatch.setattr(tol, "pointwise_floor", lambda m, g, L, k: torch.zeros_like(g))
    assert _gate_case_ratio() > 1.0


def test_every_feature_function_has_an_error_model():
    from constructions.tolerance import POINTWISE
    from constructions.variants.upstream import FEATURE_FNS

    g = torch.linspace(-30, 30, 61, dtype=torch.float64)
    assert set(FEATURE_FNS) <= set(POINTWISE), set(FEATURE_FNS) - set(POINTWISE)
    for name, (fn, _, _) in FEATURE_FNS.items():
        assert torch.allclose(POINTWISE[name].fn(g), fn(g), rtol=1e-12, atol=0), name


def test_pointwise_floor_is_zero_away_from_underflow_and_whole_value_inside():
    """No detection power is given away on ordinary pre-activations; in the flush zone the whole value
    counts."""
    from constructions.tolerance import ETA_MAX, POINTWISE, pointwise_floor

    g = torch.tensor([-1.0, 0.5, 3.0, 20.0], dtype=torch.float64)
    L = g.abs() + 1
    for name in ("sigmoid", "silu", "exp", "softplus", "elu+1", "relu"):
        assert torch.equal(pointwise_floor(name, g, L, 3), torch.zeros_like(g)), name
    # sigmoid(-20) ~ 2e-9 is subnormal in float16: only the subnormal rounding term, no flush term
    assert float(pointwise_floor("sigmoid", torch.tensor([-20.0]), torch.tensor([21.0]), 3)) == 4 * ETA_MAX
    deep = torch.tensor([-95.0], dtype=torch.float64)
    lost = pointwise_floor("silu", deep, deep.abs(), 3)
    assert float(lost) >= float(POINTWISE["silu"].fn(deep).abs()) / 2.0**-24
    assert float(pointwise_floor("exp-neg-exp", torch.tensor([6.0]), torch.tensor([6.0]), 1)) > 0


def test_upstream_block_without_error_declaration_is_refused():
    from torch import nn

    from constructions.variants.upstream import Upstream

    class Mine(nn.Module):
        width = 2

        def forward(self, x):
            return torch.tanh(x)

    with pytest.raises(TypeError, match="no magnitude"):
        Upstream(2, [Mine()]).magnitude(torch.ones(1, 3, 2, dtype=torch.float64), 10)


def test_one_home_for_the_tolerance_model():
    """constructions/ never imports the tolerance model from equivalence/ (its home is
    constructions.tolerance), and the compatibility module re-exports the very same objects."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    for f in (root / "constructions").rglob("*.py"):
        src = f.read_text()
        assert not re.search(
            r"^\s*from equivalence(\.tolerance)? import|^\s*import equivalence\.tolerance", src, re.MULTILINE
        ), f
    import constructions.tolerance as shim
    from constructions import tolerance

    assert shim.compare is tolerance.compare and shim.lsa_rnn_budget is tolerance.lsa_rnn_budget


def test_huge_gate_weights_give_a_finite_magnitude_and_no_false_alarm():
    """Decay gates with huge pre-activations: the first-order inflation lambda + delta/n exceeds 1, and its
    product over a long sequence used to overflow M to inf (a false alarm on a correct GLA); the capped form
    (``constructions.variants.plan._capped_decay_magnitude``) keeps M finite; a broken twin still fails."""
    import constructions
    from benchmarks.reliability import VARIANT_STRATA, _draw_variant_case
    from constructions.tolerance import compare

    v = constructions.get("gla")
    g = torch.Generator().manual_seed(2017)
    strata = list(VARIANT_STRATA)
    for i in range(58):  # case 57 of this seed: d=5, H=2, T=144, gate weights up to ~3.6e3
        p, x, _ = _draw_variant_case(v, strata[i % len(strata)], g)
    M = v.magnitude(p, x)
    assert bool(torch.isfinite(M).all())
    y = v.reference(p, x)
    y_rnn = v.construct(p)(x)
    n = v.path_length(p, x.shape[1])
    res = compare(y_rnn, y, M, n=n)
    assert res.passed, res.message
    assert not compare(y_rnn * (1 + 1e-3), y, M, n=n).passed  # the bound still has power here


# float16 cases of the variants sweep on which the compressed constructions' readout weights, formed as
# products at float16, underflow (weights scaled by 1e-3, inputs up to 2^7): (variant, seed, group, index)
_UNDERFLOW_CASES = (("lsa-compressed", 3017, 11, 8), ("simple-gla-compressed", 16017, 23, 9))


def _underflow_case(name, seed, group, index, dtype=torch.float16):
    """The recorded case at ``dtype``: the variant, float64 params and input exact in float16, the float16
    candidate's output, the reference and the path length."""
    from benchmarks.reliability import VARIANT_STRATA, _cast_params, _group, _round_params, _variant

    v = _variant(name)
    _, params, xs, _ = _group(v, seed, group, index + 1, tuple(VARIANT_STRATA))
    p64, x64 = _round_params(params, torch.float16), xs[index].to(torch.float16).to(torch.float64)
    with torch.no_grad():
        y = v.construct(_cast_params(p64, dtype))(x64.to(dtype))
        return v, p64, x64, y, v.reference(p64, x64), v.path_length(p64, x64.shape[1])


@pytest.mark.parametrize("case", _UNDERFLOW_CASES, ids=lambda c: c[0])
def test_weight_underflow_in_float16_is_covered_and_needed(case):
    """Recorded float16 false alarms of the compressed constructions (weight products below float16's normal
    range): with the weights' underflow term the replay passes; the dtype-free magnitude without it (what the
    bound used to be) fails the very same candidate, so the term is what decides."""
    from benchmarks.reliability import replay_variant_case
    from constructions.tolerance import compare

    res = replay_variant_case(*case, torch.float16)
    assert res.passed, res.message
    v, p64, x64, y, ref, n = _underflow_case(*case)
    M_float64 = v.magnitude(p64, x64, dtype=torch.float64)  # the floor at float64's eta: ~ the old M
    assert not compare(y, ref, M_float64, n=n, dtype=torch.float16).passed


@pytest.mark.parametrize("case", _UNDERFLOW_CASES, ids=lambda c: c[0])
def test_weight_underflow_term_is_the_derived_one_and_not_looser(case):
    """The magnitude at a dtype exceeds float64's by (eta_dt (1 + gamma_n)^2 - eta_64 (1 + gamma_n)^2) F / n
    with one F >= 0 (the propagated underflow of the weight products, units of u eta): negligible at
    float32/bfloat16 (< 1e-20 of M). And the bound is not loose beyond it: the float16 candidate's own weight
    error planted three times over (evaluated exactly) is caught, while the candidate passes."""
    from benchmarks.reliability import _cast_params
    from constructions.rnn import GatedLinearRNN
    from constructions.tolerance import (
        compare,
        compressed_weight_floor,
        gamma,
        smallest_normal,
        unit_roundoff,
    )

    v, p64, x64, y, ref, n = _underflow_case(*case)

    def coef(dt):
        return smallest_normal(dt) * (1 + gamma(n, unit_roundoff(dt))) ** 2 / n

    M64 = v.magnitude(p64, x64, dtype=torch.float64)
    F = (v.magnitude(p64, x64, dtype=torch.float16) - M64) / (coef(torch.float16) - coef(torch.float64))
    assert bool((F >= 0).all()) and float(F.max()) > 0
    if v.name == "lsa-compressed":  # no decay: F is the closed form itself
        F_direct = compressed_weight_floor(p64.W_Q, p64.W_K, p64.W_V, p64.W_O, x64)
        assert torch.allclose(F, F_direct, rtol=1e-9, atol=0)
    for dt in (torch.float32, torch.bfloat16):  # eta ~ 1e-38: the other dtypes' bounds do not move
        assert float(((v.magnitude(p64, x64, dtype=dt) - M64).abs() / M64).max()) < 1e-20
    low, exact = v.construct(_cast_params(p64, torch.float16)), v.construct(p64)
    planted = [
        None if e is None else (e + 3 * (w.detach().double() - e)).detach()
        for w, e in zip(low.weights(), exact.weights())
    ]
    M16 = v.magnitude(p64, x64, dtype=torch.float16)
    assert compare(y, ref, M16, n=n, dtype=torch.float16).passed
    with torch.no_grad():
        y_planted = GatedLinearRNN(*planted, decay=exact.decay)(x64)
    assert not compare(y_planted, ref, M16, n=n, dtype=torch.float16).passed


def test_product_floor_bounds_torch_float16_matmuls_in_the_subnormal_range():
    """|fl(LR) - LR| <= gamma_k |L||R| + u eta product_floor(L, R) for float16 matrices whose products land in
    float16's subnormal range (torch's own kernel); products by +-1 and zeros count nothing, and a bound
    without the floor term fails on these very matrices."""
    from constructions.tolerance import gamma, product_floor, smallest_normal, unit_roundoff

    g = torch.Generator().manual_seed(0)
    L = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 5e-4).half().double()
    R = (torch.randn(5, 4, generator=g, dtype=torch.float64) * 5e-4).half().double()
    L[0] = torch.tensor([1.0, -1.0, 0.0, 0.0, 1.0], dtype=torch.float64)  # +-1 factors: exact products
    exact, low = L @ R, (L.half() @ R.half()).double()
    u, eta = unit_roundoff(torch.float16), smallest_normal(torch.float16)
    rel = gamma(5, u) * (L.abs() @ R.abs())
    floor = product_floor(L, R)
    assert bool(((low - exact).abs() <= rel + u * eta * floor).all())
    assert not bool(((low - exact).abs() <= rel).all())  # the floor is needed here
    assert torch.equal(floor[0], torch.ones(4, dtype=torch.float64))  # only the sum's final rounding
