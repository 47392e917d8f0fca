"""External oracle: flash-linear-attention's pure-PyTorch references (``pip install .[oracle]``).

Every test here is marked ``oracle`` and skips, with the reason, when fla cannot be imported. The adapters
(``constructions.variants.oracle``) convert layout, scale, log-space gates and state transposition; the tests
check each variant's float64 reference against fla within the tolerance model at the precision fla computes
in, check the state convention against the constructed RNN's key-value neurons, and check that each
convention, done wrong, is caught. The ``gpu`` tests compare the constructed RNN on CUDA against fla's fused
Triton kernels (not run on CPU machines)."""

import dataclasses

import pytest
import torch

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def O():
    from constructions.variants import oracle

    reason = oracle.fla_status()
    if reason is not None:
        pytest.skip(reason)
    return oracle


def _v(name):
    import constructions

    return constructions.get(name)


def _case(name, d=4, heads=2, T=70, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    p = _v(name).sample_params(d, heads, generator=g, dtype=torch.float64, d_out=3, **kw)
    return p, torch.randn(2, T, d, generator=g, dtype=torch.float64)


def _check(O, name, p, x, spec=None):
    from equivalence.tolerance import compare

    v = _v(name)
    spec = spec or O.NAIVE[name]
    y, extras = spec.adapter(p, x, O.load(spec.function), "cpu")
    ref = v.reference(p, x)
    M = v.magnitude(p, x)
    n = v.path_length(p, x.shape[1])
    return compare(y, ref, M, n=n, dtype=spec.working_dtype, label=f"fla {spec.function}"), extras


ORACLE_VARIANTS = ["lsa-direct", "lsa-compressed", "retention", "simple-gla", "simple-gla-compressed", "mamba2", "gla",
                   "hgrn2", "feature-map-attention", "based", "deltanet", "delta-rule-onehot", "softmax-attention"]


@pytest.mark.parametrize("name", ORACLE_VARIANTS)
def test_reference_agrees_with_fla_naive(O, name):
    p, x = _case(name)
    res, _ = _check(O, name, p, x)
    assert res.passed, res.message


def test_every_shipped_variant_has_an_fla_oracle_or_a_stated_reason(O):
    import constructions

    # retention-complex: RETNET_NAIVE (fixed gammas) on RoPE-rotated q, k; mlstm: not in fla-core 0.6.0
    have = set(O.NAIVE) | {"retention-complex", "mlstm"}
    shipped = {n for n in constructions.available() if type(_v(n)).__module__.startswith("constructions.")}
    assert shipped <= have, shipped - have
    assert "not in fla" in _v("mlstm").oracle


def test_normalized_linear_attention_against_fla_normalize_true(O):
    """fla's normalize=True output equals our finish(reachable): the division outside the template."""
    from equivalence.tolerance import gamma

    v = _v("normalized-linear-attention")
    p, x = _case("normalized-linear-attention")
    y, _ = O.oracle_output("normalized-linear-attention", p, x)
    reach = v.reference(p, x)
    M = v.magnitude(p, x)
    n = v.path_length(p, x.shape[1])
    u32 = torch.finfo(torch.float32).eps / 2
    B, T, _ = reach.shape
    num, den = reach.reshape(B, T, 2, 5)[..., :4], reach.reshape(B, T, 2, 5)[..., 4:]
    Mn, Md = M.reshape(B, T, 2, 5)[..., :4], M.reshape(B, T, 2, 5)[..., 4:]
    ratio = num / den
    # fla adds 1e-10 to the denominator: |a/(b+e) - a/b| <= |a/b| e/|b|
    err = (gamma(n, u32) * (Mn + ratio.abs() * Md) + ratio.abs() * 1e-10) / den.abs() + 4 * u32 * ratio.abs()
    bound = err.reshape(B, T, -1) @ p.W_O.abs().T
    assert bool(((y - v.finish(p, reach)).abs() <= bound).all())


@pytest.mark.parametrize("complex_form", [False, True])
def test_retnet_naive_retention_with_retnet_gammas(O, complex_form):
    name = "retention-complex" if complex_form else "retention"
    p, x = _case(name, gamma="retnet")
    res, _ = _check(O, name, p, x, O.RETNET_NAIVE)
    assert res.passed, res.message
    with pytest.raises(ValueError, match="hard-wires"):
        _check(O, "retention", *_case("retention"), O.RETNET_NAIVE)


@pytest.mark.parametrize("name", ["lsa-direct", "simple-gla", "gla", "retention", "delta-rule-onehot"])
def test_fla_final_state_is_the_transpose_of_our_key_value_neurons(O, name):
    """fla's state is [K, V] (o = S^T q); transposed it equals the direct construction's kv[h,i,j] neurons."""
    v = _v(name)
    p, x = _case(name, T=50)
    _, extras = O.oracle_output(name, p, x)
    S = extras["state"]  # [B, H, d_v, d_k], ours
    _, h = v.construct(p)(x, return_state=True)
    B, H, d_v, d_k = S.shape
    kv = h[:, : H * d_v * d_k].reshape(B, H, d_v, d_k)
    scale = float(kv.abs().max())
    assert float((S - kv).abs().max()) <= 1e-4 * scale
    if d_v == d_k:
        assert float((S.transpose(-1, -2) - kv).abs().max()) > 1e-3 * scale  # the transposition matters


def test_conventions_done_wrong_are_caught(O):
    """Each conversion is needed: fla's default scale K^-1/2, gates passed as decays instead of log-decays, or a
    sequence-first tensor passed as head-first all change the output beyond the tolerance model."""
    from equivalence.tolerance import compare

    v = _v("simple-gla")
    p, x = _case("simple-gla")
    fn = O.load(O.NAIVE["simple-gla"].function)
    ref, M, n = v.reference(p, x), v.magnitude(p, x), v.path_length(p, x.shape[1])
    from constructions.variants.reference import merge_heads, project
    from torch.nn import functional as F

    q, k, vv = project(x, p.W_Q), project(x, p.W_K), project(x, p.W_V)
    log_a = (F.logsigmoid(O._gl(x, p.W_g)) / p.normalizer).transpose(1, 2).contiguous()

    def run(qq, kk, vvv, g, **kw):
        o, _ = fn(O.sf(qq), O.sf(kk), O.sf(vvv), g, **kw)
        return merge_heads(O.hf(o).to(torch.float64), p.W_O)

    right = run(q, k, vv, log_a, scale=1.0)
    assert compare(right, ref, M, n=n, dtype=torch.float32).passed
    assert not compare(run(q, k, vv, log_a), ref, M, n=n, dtype=torch.float32).passed  # default scale K^-1/2
    assert not compare(run(q, k, vv, log_a.exp(), scale=1.0), ref, M, n=n, dtype=torch.float32).passed  # not log
    o, _ = fn(q.contiguous(), k.contiguous(), vv.contiguous(), log_a.transpose(1, 2).contiguous(), scale=1.0)
    wrong_layout = merge_heads(o.to(torch.float64), p.W_O)  # HF tensors passed where SF is expected
    assert wrong_layout.shape != ref.shape or not compare(wrong_layout, ref, M, n=n, dtype=torch.float32).passed


def test_unknown_oracle_names(O):
    with pytest.raises(KeyError, match="no fla naive oracle"):
        O.oracle_output("mlstm", *_case("mlstm"))
    with pytest.raises(ValueError, match="kind"):
        O.oracle_output("gla", *_case("gla"), kind="chunked")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["lsa-direct", "simple-gla", "gla"])
def test_constructed_rnn_on_cuda_matches_fla_fused_kernels(O, name):
    """On a GPU: the constructed RNN (float32, CUDA) and fla's fused Triton kernel both stay within the tolerance
    model of the float64 reference; the kernels may use TF32 dot products, so they get u = 2^-11."""
    from equivalence.tolerance import compare

    v = _v(name)
    p, x = _case(name, d=16, heads=2, T=256)
    ref, M, n = v.reference(p, x), v.magnitude(p, x), v.path_length(p, 256)
    spec = O.FUSED[name]
    y_fla, _ = spec.adapter(p, x, O.load(spec.function), "cuda")
    p32 = dataclasses.replace(p, **{f.name: getattr(p, f.name).to("cuda", torch.float32)
                                    for f in dataclasses.fields(p) if isinstance(getattr(p, f.name), torch.Tensor)})
    y_rnn = v.construct(p32)(x.to("cuda", torch.float32)).to("cpu", torch.float64)
    tf32 = 2.0 ** -11
    res_rnn = compare(y_rnn, ref, M, n=n, dtype=torch.float32, label="constructed RNN (CUDA)")
    res_fla = compare(y_fla, ref, M * (tf32 / (torch.finfo(torch.float32).eps / 2)), n=n, dtype=torch.float32,
                      label=f"fla {spec.function}")
    assert res_rnn.passed, res_rnn.message
    assert res_fla.passed, res_fla.message
