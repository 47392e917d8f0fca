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


def _v(name):
    import constructions

    return constructions.get(name)


def _case(name, d=4, heads=2, T=70, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    p = _v(name).sample_params(d, heads, generator=g, dtype=torch.float64, d_out=3, **kw)
    return p, torch.randn(2, T, d, generator=g, dtype=torch.float64)


def _check(fo, name, p, x, spec=None):
    from constructions.tolerance import compare

    v = _v(name)
    spec = spec or fo.NAIVE[name]
    y, extras = spec.adapter(p, x, fo.load(spec.function), "cpu")
    ref = v.reference(p, x)
    M = v.magnitude(p, x)
    n = v.path_length(p, x.shape[1])
    return compare(y, ref, M, n=n, dtype=spec.working_dtype, label=f"fla {spec.function}"), extras


def _naive_names():
    from constructions.variants.oracle import NAIVE

    return sorted(n for n in NAIVE if n != "normalized-linear-attention")  # compared after finish(), below


# : every variant with an fla naive reference (the table enumerates the registry's adapters: no per-variant
# edits)
ORACLE_VARIANTS = _naive_names()


@pytest.mark.parametrize("name", ORACLE_VARIANTS)
def test_reference_agrees_with_fla_naive(fo, name):
    p, x = _case(name)
    res, _ = _check(fo, name, p, x)
    assert res.passed, res.message


def test_every_shipped_variant_has_an_fla_oracle_or_a_stated_reason(fo):
    import constructions

    # retention-complex: RETNET_NAIVE (fixed gammas) on RoPE-rotated q, k; mlstm: not in fla-core 0.6.0
    # the negative controls of fla_controls: their own table (tests/test_family_controls.py)
    have = (
        set(fo.NAIVE) | {"retention-complex", "mlstm"} | set(fo.CONTROL_NAIVE) | set(fo.CONTROL_NO_CPU_ORACLE)
    )
    shipped = {n for n in constructions.available() if type(_v(n)).__module__.startswith("constructions.")}
    assert shipped <= have, shipped - have
    assert "not in fla" in _v("mlstm").oracle


def test_normalized_linear_attention_against_fla_normalize_true(fo):
    """fla's normalize=True output equals our finish(reachable): the division outside the template."""
    from constructions.tolerance import gamma

    v = _v("normalized-linear-attention")
    p, x = _case("normalized-linear-attention")
    y, _ = fo.oracle_output("normalized-linear-attention", p, x)
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
def test_retnet_naive_retention_with_retnet_gammas(fo, complex_form):
    name = "retention-complex" if complex_form else "retention"
    p, x = _case(name, gamma="retnet")
    res, _ = _check(fo, name, p, x, fo.RETNET_NAIVE)
    assert res.passed, res.message
    with pytest.raises(ValueError, match="hard-wires"):
        _check(fo, "retention", *_case("retention"), fo.RETNET_NAIVE)


@pytest.mark.parametrize("name", ["lsa-direct", "simple-gla", "gla", "retention", "delta-rule-onehot"])
def test_fla_final_state_is_the_transpose_of_our_key_value_neurons(fo, name):
    """fla's state is [K, V] (o = S^T q); transposed it equals the direct construction's kv[h,i,j] neurons."""
    v = _v(name)
    p, x = _case(name, T=50)
    _, extras = fo.oracle_output(name, p, x)
    S = extras["state"]  # [B, H, d_v, d_k], ours
    _, h = v.construct(p)(x, return_state=True)
    B, H, d_v, d_k = S.shape
    kv = h[:, : H * d_v * d_k].reshape(B, H, d_v, d_k)
    scale = float(kv.abs().max())
    assert float((S - kv).abs().max()) <= 1e-4 * scale
    if d_v == d_k:
        assert float((S.transpose(-1, -2) - kv).abs().max()) > 1e-3 * scale  # the transposition matters


def test_conventions_done_wrong_are_caught(fo):
    """Each conversion is needed: fla's default scale K^-1/2, gates passed as decays instead of log-decays, or
    a sequence-first tensor passed as head-first all change the output beyond the tolerance model."""
    from constructions.tolerance import compare

    v = _v("simple-gla")
    p, x = _case("simple-gla")
    fn = fo.load(fo.NAIVE["simple-gla"].function)
    ref, M, n = v.reference(p, x), v.magnitude(p, x), v.path_length(p, x.shape[1])
    from constructions.variants.reference import merge_heads, project
    from torch.nn import functional as F

    q, k, vv = project(x, p.W_Q), project(x, p.W_K), project(x, p.W_V)
    log_a = (F.logsigmoid(fo._gl(x, p.W_g)) / p.normalizer).transpose(1, 2).contiguous()

    def run(qq, kk, vvv, g, **kw):
        o, _ = fn(fo.sf(qq), fo.sf(kk), fo.sf(vvv), g, **kw)
        return merge_heads(fo.hf(o).to(torch.float64), p.W_O)

    right = run(q, k, vv, log_a, scale=1.0)
    assert compare(right, ref, M, n=n, dtype=torch.float32).passed
    assert not compare(run(q, k, vv, log_a), ref, M, n=n, dtype=torch.float32).passed  # default scale K^-1/2
    assert not compare(
        run(q, k, vv, log_a.exp(), scale=1.0), ref, M, n=n, dtype=torch.float32
    ).passed  # not log
    o, _ = fn(q.contiguous(), k.contiguous(), vv.contiguous(), log_a.transpose(1, 2).contiguous(), scale=1.0)
    wrong_layout = merge_heads(o.to(torch.float64), p.W_O)  # HF tensors passed where SF is expected
    assert (
        wrong_layout.shape != ref.shape or not compare(wrong_layout, ref, M, n=n, dtype=torch.float32).passed
    )


def test_unknown_oracle_names(fo):
    with pytest.raises(KeyError, match="no fla naive oracle"):
        fo.oracle_output("mlstm", *_case("mlstm"))
    with pytest.raises(ValueError, match="kind"):
        fo.oracle_output("gla", *_case("gla"), kind="chunked")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["lsa-direct", "simple-gla", "gla"])
def test_constructed_rnn_on_cuda_matches_fla_fused_kernels(fo, name):
    """On a GPU: the constructed RNN (float32, CUDA) and fla's fused Triton kernel both stay within the
    tolerance model of the float64 reference; the kernels may use TF32 dot products, so they get u = 2^-11."""
    from constructions.tolerance import compare

    v = _v(name)
    p, x = _case(name, d=16, heads=2, T=256)
    ref, M, n = v.reference(p, x), v.magnitude(p, x), v.path_length(p, 256)
    spec = fo.FUSED[name]
    y_fla, _ = spec.adapter(p, x, fo.load(spec.function), "cuda")
    p32 = dataclasses.replace(
        p,
        **{
            f.name: getattr(p, f.name).to("cuda", torch.float32)
            for f in dataclasses.fields(p)
            if isinstance(getattr(p, f.name), torch.Tensor)
        },
    )
    y_rnn = v.construct(p32)(x.to("cuda", torch.float32)).to("cpu", torch.float64)
    tf32 = 2.0**-11
    res_rnn = compare(y_rnn, ref, M, n=n, dtype=torch.float32, label="constructed RNN (CUDA)")
    res_fla = compare(
        y_fla,
        ref,
        M * (tf32 / (torch.finfo(torch.float32).eps / 2)),
        n=n,
        dtype=torch.float32,
        label=f"fla {spec.function}",
    )
    assert res_rnn.passed, res_rnn.message
    assert res_fla.passed, res_fla.message


# -- the modern family: cross-checks beyond output equality
# ----------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 33])
def test_new_variants_agree_with_fla_at_short_and_odd_lengths(fo, T):
    """T = 1, 2 and an odd length (fla's chunked references need multiples of their chunk; the naive
    recurrent ones do not)."""
    for name in (
        "mamba1",
        "hgrn",
        "lightning-attention",
        "rebased",
        "rwkv6",
        "gated-deltanet-no-erase",
        "gated-deltanet",
    ):
        p, x = _case(name, T=T, seed=T)
        res, _ = _check(fo, name, p, x)
        assert res.passed, (name, res.message)


def test_rwkv6_reads_the_state_before_the_step(fo):
    """fla's RWKV-6 output reads S_{t-1} (+ the bonus): a GLA-style readout of S_t (decay w_t included)
    differs beyond the tolerance model, so the token shift in the construction is needed."""
    from constructions.tolerance import compare

    from constructions.variants.reference import la_recurrent

    v = _v("rwkv6")
    p, x = _case("rwkv6")
    y, _ = fo.oracle_output("rwkv6", p, x)
    r, k, vv, w = v._rkvw(p, x)
    gla_style = fo.merge_heads(la_recurrent(r, k, vv, w), p.W_O)
    M, n = v.magnitude(p, x), v.path_length(p, x.shape[1])
    assert compare(y, v.reference(p, x), M, n=n, dtype=torch.float32).passed
    assert not compare(gla_style, y, M, n=n, dtype=torch.float32).passed


def test_gated_deltanet_reductions_against_fla(fo):
    """beta = 0: fla's gated delta rule outputs 0 (nothing written); the no-erase variant equals fla's gated
    delta rule at T = 1 (the erase acts on S_0 = 0) and differs at T > 1 (the erase term matters)."""
    from constructions.tolerance import compare

    v = _v("gated-deltanet-no-erase")
    p, x = _case("gated-deltanet-no-erase", T=12)
    assert float(fo.gated_delta_rule_output(p, x, beta_scale=0.0).abs().max()) == 0.0
    x1 = x[:, :1]
    M1, n1 = v.magnitude(p, x1), v.path_length(p, 1)
    assert compare(
        fo.gated_delta_rule_output(p, x1), v.reference(p, x1), M1, n=n1, dtype=torch.float32
    ).passed
    M, n = v.magnitude(p, x), v.path_length(p, 12)
    assert not compare(
        fo.gated_delta_rule_output(p, x), v.reference(p, x), M, n=n, dtype=torch.float32
    ).passed


def test_hgrn_final_state_is_the_constructed_state_neurons(fo):
    v = _v("hgrn")
    p, x = _case("hgrn", T=40)
    _, extras = fo.oracle_output("hgrn", p, x)
    _, h = v.construct(p)(x, return_state=True)
    D = p.W_f.shape[0]
    kv = h[:, :D]  # kv[c, 0, 0] of each channel-head
    assert float((extras["state"] - kv).abs().max()) <= 1e-5 * float(kv.abs().max())


def test_every_family_row_with_variants_is_cross_checked(fo):
    """Each registered variant named in the classification has an fla naive adapter, or a stated reason."""
    from constructions.variants.families import FAMILIES

    stated = {"retention-complex": "RETNET_NAIVE", "mlstm": "not in fla"}
    for fam in FAMILIES:
        for name in fam.variants:
            assert (
                name in fo.NAIVE
                or name in stated
                or name in fo.CONTROL_NAIVE
                or name in fo.CONTROL_NO_CPU_ORACLE
            ), (fam.family, name)


# -- where fla's own references fail (docs/variants/oracle.md); each pins the upstream behaviour -------------
def _fla(fo, path):
    return fo.load(path)


def test_fla_naive_chunk_hgrn_only_runs_at_t_equal_to_its_chunk_size(fo):
    f, rec = (
        _fla(fo, "fla.ops.hgrn.naive.naive_chunk_hgrn"),
        _fla(fo, "fla.ops.hgrn.naive.naive_recurrent_hgrn"),
    )
    x, g = torch.randn(1, 64, 3), -torch.rand(1, 64, 3)
    assert torch.allclose(f(x, g)[0], rec(x, g)[0])
    for T in (50, 128):  # g.view(B, chunk_size, D): every other length raises
        with pytest.raises(RuntimeError, match="invalid for input of size"):
            f(torch.randn(1, T, 3), -torch.rand(1, T, 3))


@pytest.mark.parametrize(
    "path,hf_layout",
    [
        ("fla.ops.linear_attn.naive.naive_chunk_linear_attn", False),
        ("fla.ops.based.naive.naive_chunk_based", True),
    ],
)
def test_fla_naive_chunk_references_need_t_a_multiple_of_the_chunk(fo, path, hf_layout):
    f = _fla(fo, path)
    shape = (1, 2, 50, 4) if hf_layout else (1, 50, 2, 4)
    with pytest.raises(Exception, match="rearrange"):
        f(*(torch.randn(*shape) for _ in range(3)))


def test_fla_naive_chunk_rwkv6_needs_t_a_multiple_of_the_chunk(fo):
    f = _fla(fo, "fla.ops.rwkv6.chunk_naive.naive_chunk_rwkv6")
    with pytest.raises(AssertionError):
        f(*(torch.randn(1, 50, 2, 4) for _ in range(3)), -torch.rand(1, 50, 2, 4), torch.randn(2, 4))


def test_fla_naive_parallel_simple_gla_is_nan_at_zero_decay(fo):
    """g = -inf (decay exactly 0): the recurrent reference is finite, the parallel one computes exp(-inf +
    inf)."""
    par = _fla(fo, "fla.ops.simple_gla.naive.naive_parallel_simple_gla")
    rec = _fla(fo, "fla.ops.simple_gla.naive.naive_recurrent_simple_gla")
    q, k, v = (torch.randn(1, 10, 2, 4) for _ in range(3))
    g = torch.full((1, 10, 2), -float("inf"))
    assert torch.isfinite(rec(q, k, v, g, scale=1.0)[0]).all()
    assert torch.isnan(par(q, k, v, g, scale=1.0)[0]).any()


# -- variants fla-core does not ship: an independent closed form instead ------------------------------------
def _mlstm_parallel(p, x):
    r"""xLSTM's parallel mLSTM (Beck et al. 2024, App. A.3) without the stabiliser, written from the paper:
    $w_{ts} = (q_t\cdot k_s)\,e^{F_t - F_s + \tilde\imath_s}$ ($s\le t$, $F_t = \sum_{r\le t}\log f_r$),
    $h_t = \sum_s w_{ts}v_s / \max(|\sum_s w_{ts}|, 1)$ per head, then ``W_O``."""
    import torch.nn.functional as F

    x = x.to(torch.float64)
    q, k, v = (torch.einsum("btd,hrd->bhtr", x, W.to(torch.float64)) for W in (p.W_Q, p.W_K, p.W_V))
    x1 = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
    ig = torch.einsum("btd,hd->bht", x1, p.w_i.to(torch.float64))
    if p.cap is not None:
        ig = p.cap * torch.tanh(ig / p.cap)
    Fc = torch.cumsum(F.logsigmoid(torch.einsum("btd,hd->bht", x1, p.w_f.to(torch.float64))), dim=-1)
    T = x.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    logw = (Fc[..., :, None] - Fc[..., None, :] + ig[..., None, :]).masked_fill(~causal, float("-inf"))
    w = (q @ k.transpose(-1, -2)) * torch.exp(logw)
    h = (w @ v) / w.sum(-1, keepdim=True).abs().clamp(min=1.0)
    flat = h.permute(0, 2, 1, 3).reshape(x.shape[0], T, -1)
    return flat if p.W_O is None else flat @ p.W_O.to(torch.float64).T


@pytest.mark.parametrize("T", [1, 17, 70])
def test_mlstm_agrees_with_xlstm_parallel_form(T):
    """mLSTM has no fla reference: ``finish(reference)`` and the stabilised ``layer`` against the paper's
    parallel form, written independently here; a forget-gate bias off by 0.5 is caught."""
    v = _v("mlstm")
    p, x = _case("mlstm", T=T, seed=T)
    want = _mlstm_parallel(p, x)
    for got in (v.finish(p, v.reference(p, x)), v.layer(p, x)):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12), float((got - want).abs().max())
    if T > 1:  # broken twin: the same comparison against a forget-gate bias off by 0.5 fails
        off = p.w_f.clone()
        off[:, -1] += 0.5
        wrong = _mlstm_parallel(dataclasses.replace(p, w_f=off), x)
        assert not torch.allclose(v.layer(p, x), wrong, rtol=1e-6)


def test_every_op_family_of_the_installed_fla_has_exactly_one_row(fo):
    """The classification covers the installed oracle package: one row per ``fla/ops/*`` directory (shared
    kernel folders excepted), none for a family that is not there (``model:`` rows are families fla-core
    does not ship)."""
    import pathlib

    import fla

    from constructions.variants.families import FAMILIES, FLA_INFRASTRUCTURE

    ops = pathlib.Path(fla.__file__).parent / "ops"
    installed = {p.name for p in ops.iterdir() if p.is_dir() and not p.name.startswith("_")}
    rows = [f.family for f in FAMILIES if not f.family.startswith("model:")]
    assert len(rows) == len(set(rows)), "a family has two rows"
    assert set(rows) == installed - set(FLA_INFRASTRUCTURE), (
        sorted(installed - set(FLA_INFRASTRUCTURE) - set(rows)),
        sorted(set(rows) - installed),
    )
