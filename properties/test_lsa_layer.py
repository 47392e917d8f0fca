"""The property suite, as pytest tests: ``pytest --pyargs properties [--lsa-layer MODULE:ATTR]``.

Without ``--lsa-layer`` the targets are the paper's constructions (``lsa_to_rnn``, direct and compressed,
both forward paths), the gated RNN template on random weights (real and complex lambda) and every
registered variant; with it, your layer (see ``docs/properties.md``). Each Hypothesis example evaluates a
whole batch of sequences; edge cases are pinned with ``@example``. Failures print the drawn sizes,
seeds and a ``@reproduce_failure`` blob.
"""

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

import constructions
from constructions import GatedLinearRNN, LinearSelfAttention
from properties import strategies as S
from properties import suite

SETTINGS = settings(
    deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module", autouse=True)
def _torch_settings():
    old = torch.get_float32_matmul_precision(), torch.get_num_threads()
    torch.set_float32_matmul_precision("highest")  # no TF32: the float32 bound assumes IEEE float32 products
    torch.set_num_threads(1)  # the cases are small: intra-op threads only contend (100x slower on a busy box)
    yield
    torch.set_float32_matmul_precision(old[0])
    torch.set_num_threads(old[1])


def _lsa(H=1, d=1, d_k=1, d_v=1, d_out=None, fill=None):
    """Edge-case LSAs for @example: ones (fill=1.0), zeros (0.0) or identities (None)."""

    def w(*shape):
        if fill is None:
            return torch.eye(shape[-2], shape[-1], dtype=torch.float64).expand(*shape).clone()
        return torch.full(shape, float(fill), dtype=torch.float64)

    return LinearSelfAttention(w(H, d_k, d), w(H, d_k, d), w(H, d_v, d), w(d_out, H * d_v) if d_out else None)


EDGE = {
    "T=1, d=1": (_lsa(fill=1.0), S.SequenceSpec(1, 1, 1, 0)),
    "zero weights": (_lsa(2, 3, 2, 2, 3, fill=0.0), S.SequenceSpec(2, 5, 3, 1)),
    "identity weights, all tokens equal": (
        _lsa(1, 3, 3, 3),
        S.SequenceSpec(2, 17, 3, 2, 0, "constant-token"),
    ),
    "one-hot tokens, W_O": (_lsa(2, 4, 2, 3, 2, fill=0.5), S.SequenceSpec(3, 64, 4, 3, 0, "one-hot")),
    # past the 4th chunk of 16 and the 1st of 128: a state lost at a chunk boundary shows here
    "long, chunk boundary T=129": (_lsa(2, 4, 2, 3, 2), S.SequenceSpec(2, 129, 4, 4)),
}


def _x(target, lsa, spec):
    lsa = target.fixed_lsa if target.fixed_lsa is not None else lsa
    spec = dataclasses.replace(spec, d=lsa.d)
    note(f"x = properties.strategies.{spec!r}.build()")
    return spec.build()


def _with_edges(f):
    for name, (lsa, spec) in EDGE.items():
        f = example(lsa=lsa, spec=spec).via(name)(f)
    return f


# -- a layer claimed to implement LSA --------------------------------------------------------------
#: what test_equals_lsa draws (also used to measure its detection rate: benchmarks/reliability.py)
EQUALS_LSA_STRATEGIES = {
    "lsa": S.lsas(dtype=torch.float32),
    "spec": S.sequence_specs(None, min_T=1, max_T=96, max_batch=4, long_max_T=520),
}


@SETTINGS
@given(**EQUALS_LSA_STRATEGIES)
@_with_edges
def test_equals_lsa(lsa_target, lsa, spec):
    """The layer equals the float64 LSA within gamma_n M + n eta, for generic and degenerate weights."""
    suite.check_equals_lsa(lsa_target, lsa, _x(lsa_target, lsa, spec))


@SETTINGS
@given(
    lsa=S.lsas(S.lsa_sizes(max_heads=2, max_d=4), dtype=torch.float64),
    spec=S.sequence_specs(None, min_T=1, max_T=32, max_batch=3, max_exponent=8, long_max_T=160),
)
def test_equals_lsa_wide_dynamic_range(lsa_target, lsa, spec):
    """float64 only: weights scaled by 2^-40..2^40 and inputs by 2^-8..2^8 stay within the bound."""
    if lsa_target.dtype != torch.float64:
        pytest.skip("wide dynamic range is a float64 property (float32 would overflow by design)")
    suite.check_equals_lsa(lsa_target, lsa, _x(lsa_target, lsa, spec))


@SETTINGS
@given(
    lsa=S.lsas(dtype=torch.float32),
    spec=S.sequence_specs(None, min_T=1, max_T=64, max_batch=4, long_max_T=300),
)
@_with_edges
def test_float32_cpu_within_model(lsa_target, lsa, spec):
    """In float32 on CPU the layer stays within the float32 model bound of the float64 reference."""
    t32 = dataclasses.replace(lsa_target, dtype=torch.float32, device="cpu")
    suite.check_equals_lsa(t32, lsa, _x(t32, lsa, spec))


@pytest.mark.gpu
@SETTINGS
@given(
    lsa=S.lsas(dtype=torch.float32),
    spec=S.sequence_specs(None, min_T=1, max_T=64, max_batch=4, long_max_T=300),
)
def test_float32_cuda_within_model(lsa_target, lsa, spec):
    """Same on CUDA (TF32 off), when a GPU is present."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    t32 = dataclasses.replace(lsa_target, dtype=torch.float32, device="cuda")
    suite.check_equals_lsa(t32, lsa, _x(t32, lsa, spec))


@SETTINGS
@given(lsa=S.integer_lsas(), x_seed=S.seeds(), T=st.integers(1, 24), batch=st.integers(1, 3))
def test_exact_on_integers(lsa_target, lsa, x_seed, T, batch):
    """Small-integer weights and inputs: no rounding happens, so the layer must equal LSA exactly."""
    if not lsa_target.exact or lsa_target.fixed_lsa is not None or lsa_target.dtype != torch.float64:
        pytest.skip("exact-arithmetic property: pass --lsa-exact (float64, factory layers only)")
    x = torch.randint(-3, 4, (batch, T, lsa.d), generator=torch.Generator().manual_seed(x_seed)).double()
    suite.check_exact_on_integers(lsa_target, lsa, x)


@SETTINGS
@given(
    lsa=S.lsas(dtype=torch.float32),
    spec=S.sequence_specs(None, min_T=2, max_T=64, max_batch=3, long_max_T=160),
    where=st.floats(0, 1, exclude_max=True),
    seed=S.seeds(),
)
def test_causal(lsa_target, lsa, spec, where, seed):
    """Changing the inputs after t leaves the outputs up to t unchanged."""
    x = _x(lsa_target, lsa, spec)
    suite.check_causal(lsa_target, lsa, x, int(where * (x.shape[1] - 1)), seed)


@SETTINGS
@given(
    lsa=S.lsas(dtype=torch.float32),
    spec=S.sequence_specs(None, min_T=1, max_T=48, max_batch=5, long_max_T=160),
    data=st.data(),
)
def test_batch_independent(lsa_target, lsa, spec, data):
    """Each sequence's output does not depend on the other sequences of the batch or their order."""
    x = _x(lsa_target, lsa, spec)
    perm = torch.tensor(data.draw(st.permutations(range(x.shape[0])), label="batch permutation"))
    suite.check_batch_independent(lsa_target, lsa, x, perm)


def test_empty_sequence(lsa_target):
    """T = 0 returns an empty [B, 0, d_out] output."""
    suite.check_empty_sequence(lsa_target, _lsa(2, 3, 2, 2, 4, fill=1.0))


# -- the gated RNN template (the construction's RNN, or random RNNs) -------------------------------------
def _rnn_properties(rnn, x, data):
    suite.check_loop_equals_parallel(rnn, x)
    T = x.shape[1]
    cuts = data.draw(st.lists(st.integers(0, T), max_size=4), label="chunk boundaries")
    if (
        getattr(rnn.upstream, "memory", 0) == 0
    ):  # a token-shift upstream reads past inputs the state does not carry
        suite.check_streaming(rnn, x, cuts)
    if rnn.lam is None:
        return  # permutations of an input-dependent decay's outputs are the variant's business
    perm = torch.tensor(data.draw(st.permutations(range(rnn.num_neurons)), label="neuron permutation"))
    suite.check_neuron_permutation(rnn, x, perm)
    c = data.draw(st.one_of(st.sampled_from([2.0, 0.5, -4.0]), st.floats(1e-3, 1e3)), label="c")
    k = data.draw(st.integers(0, rnn.num_neurons - 1), label="neuron")
    suite.check_branch_rescaling(rnn, x, k, c, "input")
    m = data.draw(st.integers(0, rnn.num_gates - 1), label="gate")
    suite.check_branch_rescaling(rnn, x, m, c, "output")


@SETTINGS
@given(
    lsa=S.lsas(dtype=torch.float32),
    spec=S.sequence_specs(None, min_T=0, max_T=64, max_batch=3, long_max_T=160),
    data=st.data(),
)
def test_rnn_properties_of_the_layer(lsa_target, lsa, spec, data):
    """When the layer is a GatedLinearRNN: loop == parallel, streaming, permutation and rescaling
    invariance."""
    layer = lsa_target.layer_for(lsa)
    if not isinstance(layer, GatedLinearRNN):
        pytest.skip("the layer is not a constructions.GatedLinearRNN (template properties do not apply)")
    _rnn_properties(layer, _x(lsa_target, lsa, spec).to(layer.A.real.dtype), data)


def _lam_edge(values, d=2, m=2):
    g = torch.Generator().manual_seed(7)
    n = len(values)

    def w(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    return GatedLinearRNN(
        w(n, d + 1), w(n, d + 1), torch.tensor(values, dtype=torch.float64), w(m, n), w(m, n), w(1, m)
    )


@SETTINGS
@given(
    rnn=st.sampled_from(["real", "complex"]).flatmap(lambda k: S.rnns(lam_kind=k)),
    spec=S.sequence_specs(None, min_T=0, max_T=80, max_batch=3, max_exponent=1, long_max_T=160),
    data=st.data(),
)
@example(rnn=_lam_edge([0.0, 0.0, 0.0]), spec=S.SequenceSpec(2, 9, 2, 0), data=None).via("lambda = 0")
@example(rnn=_lam_edge([1.0, 1.0]), spec=S.SequenceSpec(2, 64, 2, 1), data=None).via("lambda = 1")
@example(rnn=_lam_edge([1.0, 0.0, -1.0, 0.5]), spec=S.SequenceSpec(1, 1, 2, 2), data=None).via("T = 1")
def test_template_properties(lsa_user_layer, rnn, spec, data):
    """The template on random weights, real or complex lambda (|lambda| <= 1)."""
    if lsa_user_layer:
        pytest.skip("template self-test (runs without --lsa-layer)")
    if data is None:  # explicit examples: fixed cuts / permutation / scales
        x = dataclasses.replace(spec, d=rnn.d).build()
        suite.check_loop_equals_parallel(rnn, x)
        suite.check_streaming(rnn, x, [1, x.shape[1] // 2])
        suite.check_neuron_permutation(rnn, x, torch.arange(rnn.num_neurons).flip(0))
        suite.check_branch_rescaling(rnn, x, 0, 3.0, "input")
        suite.check_branch_rescaling(rnn, x, 0, 3.0, "output")
        return
    _rnn_properties(rnn, dataclasses.replace(spec, d=rnn.d).build(), data)


# -- registered variants ----------------------------------------------------------------------------------
@SETTINGS
@given(
    d=st.integers(1, 5),
    heads=st.integers(1, 3),
    seed=S.seeds(),
    spec=S.sequence_specs(None, min_T=1, max_T=48, max_batch=3, max_exponent=0, long_max_T=160),
    data=st.data(),
)
def test_variant_construction(variant_name, d, heads, seed, spec, data):
    """A registered variant's construction equals its reference (and its RNN has the template properties)."""
    v = constructions.get(variant_name)
    if v.status != "exact":
        pytest.skip(f"variant {variant_name!r} is {v.status!r}: its reference is not claimed equal")
    params = v.sample_params(d, heads, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = dataclasses.replace(spec, d=d).build()
    suite.check_variant(v, params, x)
    _rnn_properties(v.construct(params), x, data)
