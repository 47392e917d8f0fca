"""The extension API around the variants: registration from a user's file (and `verify --import`), parameter
validation messages, the template's `upstream` layer and the input-dependent decay object."""

import json
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

USER_MODULE = textwrap.dedent('''
    """A user's variant, registered from outside the package: LSA whose keys are shifted by a learned bias."""
    from dataclasses import dataclass

    import torch

    import constructions
    from constructions.variants.reference import la_recurrent, merge_heads, project
    from constructions.variants.wiring import affine_direct_weights


    @dataclass(frozen=True)
    class KeyBiasParams:
        W_Q: torch.Tensor
        W_K: torch.Tensor
        b_K: torch.Tensor
        W_V: torch.Tensor


    @constructions.register("{name}")
    class KeyBiasLA(constructions.Variant):
        status = "exact"
        source = "test: LSA with key bias k = W_K x + b_K"

        def sample_params(self, d, heads=1, *, generator, dtype=torch.float64, **sizes):
            r = lambda *s: torch.randn(*s, generator=generator, dtype=torch.float64).to(dtype)
            return KeyBiasParams(r(heads, d, d), r(heads, d, d), r(heads, d), r(heads, d, d))

        def reference(self, p, x):
            k = project(x, p.W_K, p.b_K)
            return merge_heads(la_recurrent(project(x, p.W_Q), k, project(x, p.W_V)), None)

        def construct(self, p):
            def aff(W, b=None):
                col = torch.zeros_like(W[..., :1]) if b is None else b[..., None]
                return torch.cat([W, col], -1)
            bias = p.b_K {broken}
            w = affine_direct_weights(aff(p.W_Q), aff(p.W_K, bias), aff(p.W_V))
            return constructions.GatedLinearRNN(*w)

        def num_neurons(self, p):
            H, d_k, _ = p.W_Q.shape
            return H * d_k * (p.W_V.shape[1] + 1)
''')


def _write(tmp_path, name, broken=False):
    f = tmp_path / f"{name.replace('-', '_')}.py"
    f.write_text(USER_MODULE.format(name=name, broken="* 0" if broken else ""))
    return f


def test_register_from_a_separate_file_and_check_numerically(tmp_path):
    import constructions
    from equivalence.commands.verify import _import_user
    from equivalence.numeric import check_variant_numeric

    good, bad = _write(tmp_path, "user-key-bias"), _write(tmp_path, "user-key-bias-broken", broken=True)
    try:
        _import_user(str(good))
        _import_user(str(bad))
        assert {"user-key-bias", "user-key-bias-broken"} <= set(constructions.available())
        assert check_variant_numeric(constructions.get("user-key-bias"), profile="dev").status == "tested"
        claim = check_variant_numeric(constructions.get("user-key-bias-broken"), profile="dev")
        assert claim.status == "failed" and claim.counterexample is not None
        with pytest.raises(ValueError, match="already registered"):
            _import_user(str(good))
    finally:
        constructions.unregister("user-key-bias")
        constructions.unregister("user-key-bias-broken")


def test_verify_import_reports_a_user_variant(tmp_path, monkeypatch):
    """`verify --import file.py --variant name` puts the user's variant in the report (numeric section in
    process; the full command, with every section, runs as a subprocess in
    tests/test_tutorial_add_variant.py)."""
    import constructions
    from equivalence.cli import main
    from equivalence.commands import verify

    monkeypatch.setattr(verify, "SECTIONS", ())
    f = _write(tmp_path, "user-key-bias")
    out = tmp_path / "reports"
    try:
        rc = main(
            [
                "verify",
                "--import",
                str(f),
                "--variant",
                "user-key-bias",
                "--profile",
                "dev",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
    finally:
        constructions.unregister("user-key-bias")
    assert rc == 0
    cert = json.loads((out / "certificate.json").read_text())
    mine = [c for c in cert["claims"] if c["construction"] == "user-key-bias"]
    assert {c["id"] for c in mine} == {
        "USER-KEY-BIAS-NUMERIC-FLOAT64-CPU/v1",
        "USER-KEY-BIAS-NUMERIC-FLOAT32-CPU/v1",
    }
    assert all(c["status"] == "tested" for c in mine)
    assert "user-key-bias" in (out / "report.md").read_text()


def test_registry_rejects_bad_registrations():
    import constructions

    class Bad(constructions.Variant):
        status = "maybe"

    with pytest.raises(ValueError, match="status"):
        constructions.register("bad-status")(Bad)

    class NoReason(constructions.Variant):
        status = "partial"

    with pytest.raises(ValueError, match="partial_reason"):
        constructions.register("no-reason")(NoReason)

    class Fine(constructions.Variant):
        status = "exact"

    with pytest.raises(ValueError, match="already registered"):
        constructions.register("gla")(Fine)
    with pytest.raises(KeyError, match="available"):
        constructions.get("no-such-variant")


def _v(name):
    import constructions

    return constructions.get(name)


def test_parameter_validation_says_what_was_expected():
    from constructions.variants.controls import DeltaParams, OneHotDeltaParams
    from constructions.variants.gla import GLAParams, Mamba2Params, SimpleGLAParams
    from constructions.variants.normalized import MLSTMParams
    from constructions.variants.retention import RetentionParams

    W = torch.randn(2, 3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\|gamma_h\| <= 1"):
        RetentionParams(W, W, W, torch.tensor([0.5, 1.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="gamma must have shape"):
        RetentionParams(W, W, W, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="even d_k"):
        RetentionParams(
            W, W, W, torch.ones(2, dtype=torch.float64), theta=torch.zeros(2, 1, dtype=torch.float64)
        )
    with pytest.raises(ValueError, match=r"W_g must have shape \[2, 5\]"):
        SimpleGLAParams(W, W, W, torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="normalizer"):
        GLAParams(W, W, W, torch.zeros(2, 3, 5, dtype=torch.float64), normalizer=0.0)
    with pytest.raises(ValueError, match="A must be < 0"):
        Mamba2Params(
            W,
            W,
            W,
            torch.zeros(2, 5, dtype=torch.float64),
            torch.zeros(2, dtype=torch.float64),
            torch.zeros(2, dtype=torch.float64),
        )
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]"):
        DeltaParams(W, W, W, torch.tensor([0.5, 2.0], dtype=torch.float64))
    with pytest.raises(TypeError, match="coords must be a torch.long"):
        OneHotDeltaParams(W, W, torch.zeros(2, 3), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="cap must be None"):
        MLSTMParams(
            W, W, W, torch.zeros(2, 5, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64), cap=100.0
        )
    with pytest.raises(ValueError, match="W_V must have shape"):
        RetentionParams(W, W, W[:, :, :3], torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-finite"):
        RetentionParams(W, W * float("nan"), W, torch.ones(2, dtype=torch.float64))
    p = _v("gla").sample_params(4, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="expected d=4"):
        _v("gla").reference(p, torch.zeros(1, 3, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="dataclass"):
        _v("gla").reference({"W_Q": W}, torch.zeros(1, 3, 4, dtype=torch.float64))


def test_upstream_layer_in_the_template():
    """An RNN with an upstream layer checks d_in, checks the feature shape, streams exactly, and its two scan
    modes agree; lambdas(x) sees the features."""
    from constructions import GatedLinearRNN

    v = _v("hgrn2")
    p = v.sample_params(3, 2, generator=torch.Generator().manual_seed(0))
    rnn = v.construct(p)
    assert rnn.d_in == 3 and rnn.d == 3 + 2 * 3 and "upstream" in repr(rnn)
    with pytest.raises(ValueError, match="d_in=3"):
        rnn(torch.zeros(1, 2, rnn.d, dtype=torch.float64))
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    y = rnn(x)
    assert torch.allclose(rnn(x, mode="loop"), y, rtol=1e-12, atol=1e-12)
    state, parts = None, []
    for chunk in torch.split(x, [1, 12, 27], dim=1):
        out, state = rnn(chunk, state, return_state=True, mode="loop")
        parts.append(out)
    assert torch.allclose(torch.cat(parts, 1), y, rtol=1e-12, atol=1e-12)
    assert rnn.lambdas(x).shape == (2, 40, rnn.num_neurons)
    w = rnn.weights()
    bad = GatedLinearRNN(*w, decay=rnn.decay, upstream=lambda t: t[..., :2])
    with pytest.raises(ValueError, match="upstream"):
        bad(x)
    with pytest.raises(TypeError, match="callable"):
        GatedLinearRNN(*w, decay=rnn.decay, upstream=3)


def test_input_dependent_decay_validation():
    from constructions.variants import InputDependentDecay

    W = torch.zeros(2, 4, dtype=torch.float64)
    ch = torch.tensor([0, 1, -1])
    const = torch.zeros(3, dtype=torch.float64)
    dec = InputDependentDecay(W, ch, const)
    lam = dec(torch.zeros(1, 5, 3, dtype=torch.float64))
    assert torch.allclose(lam[..., :2], torch.full((1, 5, 2), 0.5, dtype=torch.float64)) and bool(
        (lam[..., 2] == 0).all()
    )
    with pytest.raises(ValueError, match="link"):
        InputDependentDecay(W, ch, const, link="tanh")
    with pytest.raises(ValueError, match=r"channel entries must be -1"):
        InputDependentDecay(W, torch.tensor([0, 2, -1]), const)
    with pytest.raises(TypeError, match="torch.long"):
        InputDependentDecay(W, ch.float(), const)
    with pytest.raises(ValueError, match="scale must be >= 0"):
        InputDependentDecay(W, ch, const, scale=torch.tensor([1.0, -1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="d=3 features"):
        dec(torch.zeros(1, 5, 4, dtype=torch.float64))


def test_docs_table_matches_the_registry_and_every_variant_has_a_page():
    """docs/variants/README.md lists every shipped variant with the status and neuron count the code gives."""
    import re

    import constructions
    from constructions.registry import summary

    text = (ROOT / "docs" / "variants" / "README.md").read_text()
    rows = {
        m[0]: (m[1], int(m[2])) for m in re.findall(r"^\| `([\w.-]+)` \| (\w+) \| (\d+) \|", text, flags=re.M)
    }
    shipped = {
        r["name"]: r
        for r in summary()
        if type(constructions.get(r["name"])).__module__.startswith("constructions.")
    }
    assert set(rows) == set(shipped)
    for name, r in shipped.items():
        assert rows[name] == (r["status"], r["neurons"]), name
    for page in re.findall(r"\]\(([\w-]+\.md)\)", text):
        assert (ROOT / "docs" / "variants" / page).is_file(), page
    assert all(
        name in (ROOT / "docs" / "variants").joinpath(p).read_text()
        for name in shipped
        for p in [re.search(rf"^\| `{re.escape(name)}` .*\]\(([\w-]+\.md)\)", text, flags=re.M).group(1)]
    )


def test_permuting_neurons_with_an_input_dependent_decay_needs_the_permuted_decay():
    """A neuron permutation is a symmetry of an RNN with an input-dependent decay only if the decay's
    neuron->channel map moves too."""
    from constructions import GatedLinearRNN

    rnn = _v("gla").construct(_v("gla").sample_params(3, 2, generator=torch.Generator().manual_seed(0)))
    perm = torch.randperm(rnn.num_neurons, generator=torch.Generator().manual_seed(1))
    A, B, _, C, E, D = (w.detach() if w is not None else None for w in rnn.weights())
    x = torch.randn(2, 20, 3, dtype=torch.float64)
    good = GatedLinearRNN(A[perm], B[perm], None, C[:, perm], E[:, perm], D, decay=rnn.decay.permuted(perm))
    stale = GatedLinearRNN(A[perm], B[perm], None, C[:, perm], E[:, perm], D, decay=rnn.decay)
    assert torch.allclose(good(x), rnn(x), rtol=1e-13, atol=1e-13)
    assert not torch.allclose(stale(x), rnn(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="permutation"):
        rnn.decay.permuted(torch.zeros(rnn.num_neurons, dtype=torch.long))
