"""The base constructions: exactness, neuron counts, both forward paths, streaming, rnn_to_lsa, errors."""

import pytest
import torch


def _lsa(H, d_k, d_v, d, d_out=None, seed=0, rank=None):
    from constructions import LinearSelfAttention

    g = torch.Generator().manual_seed(seed)

    def w(*s):
        t = torch.randn(*s, generator=g, dtype=torch.float64)
        if rank is not None:  # rank-deficient along the input dimension
            t = t[..., :rank] @ torch.randn(rank, s[-1], generator=g, dtype=torch.float64)
        return t

    W_O = w(d_out, H * d_v) if d_out else None
    return LinearSelfAttention(w(H, d_k, d), w(H, d_k, d), w(H, d_v, d), W_O)


SIZES = [(1, 1, 1, 1, None), (1, 3, 5, 4, None), (3, 2, 4, 5, 3), (2, 4, 4, 4, None), (3, 8, 2, 8, 7)]


@pytest.mark.parametrize("method", ["direct", "compressed", "auto"])
@pytest.mark.parametrize("sizes", SIZES)
def test_construction_is_exact_in_float64(method, sizes):
    from constructions import lsa_to_rnn

    lsa = _lsa(*sizes)
    x = torch.randn(3, 128, lsa.d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = lsa(x)
    rnn = lsa_to_rnn(lsa, method)
    for mode in ("loop", "parallel"):
        err = (rnn(x, mode=mode) - y).abs().max() / y.abs().max()
        assert err <= 1e-12, (method, mode, float(err))


def test_rank_deficient_weights():
    from constructions import lsa_to_rnn

    lsa = _lsa(2, 3, 3, 6, rank=2)
    x = torch.randn(2, 64, 6, dtype=torch.float64)
    for method in ("direct", "compressed"):
        assert torch.allclose(lsa_to_rnn(lsa, method)(x), lsa(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("H,d_k,d_v,d", [(1, 3, 5, 4), (3, 2, 4, 5), (2, 8, 8, 3)])
def test_neuron_counts(H, d_k, d_v, d):
    from constructions import lsa_to_rnn

    lsa = _lsa(H, d_k, d_v, d)
    assert lsa_to_rnn(lsa, "direct").num_neurons == H * d_k * (d_v + 1)
    assert lsa_to_rnn(lsa, "compressed").num_neurons == d * (d + 1) // 2 + d
    auto = lsa_to_rnn(lsa, "auto").num_neurons
    assert auto == min(H * d_k * (d_v + 1), d * (d + 1) // 2 + d)


def test_construction_lambdas_are_zero_or_one():
    from constructions import lsa_to_rnn

    rnn = lsa_to_rnn(_lsa(2, 3, 4, 5), "direct")
    n_kv = 2 * 3 * 4
    assert torch.equal(rnn.lam[:n_kv], torch.ones(n_kv, dtype=torch.float64))
    assert torch.equal(rnn.lam[n_kv:], torch.zeros(2 * 3, dtype=torch.float64))


def test_lsa_paths_agree():
    lsa = _lsa(2, 3, 4, 5, d_out=6)
    x = torch.randn(2, 50, 5, dtype=torch.float64)
    assert torch.allclose(lsa(x), lsa.forward_recurrent(x), rtol=1e-12, atol=1e-12)


def test_streaming_in_chunks_equals_one_pass():
    from constructions import lsa_to_rnn

    rnn = lsa_to_rnn(_lsa(1, 3, 3, 4), "direct")
    x = torch.randn(2, 40, 4, dtype=torch.float64)
    y_full = rnn(x)
    state, parts = None, []
    for chunk in torch.split(x, [1, 7, 13, 19], dim=1):
        y, state = rnn(chunk, state, return_state=True, mode="loop")
        parts.append(y)
    assert torch.allclose(torch.cat(parts, 1), y_full, rtol=1e-12, atol=1e-12)


def test_empty_sequence():
    from constructions import lsa_to_rnn

    lsa = _lsa(2, 3, 4, 5, d_out=7)
    x = torch.zeros(3, 0, 5, dtype=torch.float64)
    for layer in (lsa, lsa_to_rnn(lsa, "direct"), lsa_to_rnn(lsa, "compressed")):
        for kw in ({},) if layer is lsa else ({"mode": "loop"}, {"mode": "parallel"}):
            assert layer(x, **kw).shape == (3, 0, 7)


def test_complex_lambda_rotation():
    """A complex neuron with |lambda| = 1 rotates its memory; the real readout matches a cos-weighted sum."""
    from constructions import GatedLinearRNN

    theta = 0.3
    lam = torch.tensor(
        [complex(torch.cos(torch.tensor(theta)), torch.sin(torch.tensor(theta)))], dtype=torch.complex128
    )
    A = torch.tensor([[1.0, 0.0]], dtype=torch.complex128)
    B = torch.tensor([[0.0, 1.0]], dtype=torch.complex128)
    C = torch.ones(1, 1, dtype=torch.complex128)
    E = torch.ones(1, 1, dtype=torch.complex128)
    D = torch.ones(1, 1, dtype=torch.complex128)
    rnn = GatedLinearRNN(A, B, lam, C, E, D)
    x = torch.randn(1, 20, 1, dtype=torch.float64)
    h = torch.zeros((), dtype=torch.complex128)
    ys = []
    for t in range(20):
        h = lam[0] * h + x[0, t, 0]
        ys.append((h * h).real)
    assert torch.allclose(rnn(x)[0, :, 0], torch.stack(ys), atol=1e-12)
    assert torch.allclose(rnn(x, mode="loop"), rnn(x, mode="parallel"), atol=1e-12)


def test_rnn_to_lsa_round_trip_heads():
    from constructions import lsa_to_rnn, rnn_to_lsa

    lsa = _lsa(3, 2, 4, 5, d_out=3)
    rec = rnn_to_lsa(lsa_to_rnn(lsa, "direct"))
    assert rec.heads == 3
    P, Q = lsa.head_products()
    P2, Q2 = rec.head_products()
    o1, o2 = torch.einsum("hoa,hbc->hoabc", P, Q), torch.einsum("hoa,hbc->hoabc", P2, Q2)
    for h in range(3):  # each original head appears among the recovered ones (up to order and P/Q scale)
        assert min(float((o1[h] - o2[k]).abs().max()) for k in range(3)) < 1e-10
    x = torch.randn(2, 30, 5, dtype=torch.float64)
    assert torch.allclose(rec(x), lsa(x), rtol=1e-10, atol=1e-10)


def test_rnn_to_lsa_compressed_identifies_attention_tensor():
    from constructions import attention_tensor, lsa_to_rnn, rnn_to_lsa

    lsa = _lsa(2, 3, 3, 4)
    rec = rnn_to_lsa(lsa_to_rnn(lsa, "compressed"))
    assert torch.allclose(attention_tensor(rec), attention_tensor(lsa), atol=1e-10)


def test_rnn_to_lsa_rejects_non_attention_structure():
    from constructions import lsa_to_rnn, rnn_to_lsa

    rnn = lsa_to_rnn(_lsa(1, 2, 2, 3), "direct")
    with torch.no_grad():
        rnn.lam[0] = 0.5
    with pytest.raises(ValueError, match="lambda"):
        rnn_to_lsa(rnn)
    rnn = lsa_to_rnn(_lsa(1, 2, 2, 3), "direct")
    with torch.no_grad():
        rnn.B[0, -1] = 1.0  # memory neuron reads the constant: degree < 2 terms
    with pytest.raises(ValueError, match="constant"):
        rnn_to_lsa(rnn)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (
            lambda L: L(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4), torch.zeros(1, 2, 3)),
            ValueError,
            "same shape",
        ),
        (lambda L: L(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(2, 2, 3)), ValueError, "H"),
        (lambda L: L(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3)), ValueError, "3 dimensions"),
        (lambda L: L([[1.0]], torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)), TypeError, "torch.Tensor"),
        (
            lambda L: L(torch.zeros(1, 2, 3, dtype=torch.int64), torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)),
            TypeError,
            "dtype",
        ),
        (
            lambda L: L(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(4, 3)),
            ValueError,
            "H\\*d_v",
        ),
    ],
)
def test_bad_lsa_weights(make, exc, match):
    from constructions import LinearSelfAttention

    with pytest.raises(exc, match=match):
        make(LinearSelfAttention)


@pytest.mark.parametrize(
    "x,exc,match",
    [
        (torch.zeros(2, 5, 3), ValueError, "d=3"),
        (torch.zeros(5, 4), ValueError, "3 dimensions"),
        (torch.zeros(2, 5, 4, dtype=torch.int32), TypeError, "dtype"),
        ([[[0.0] * 4]], TypeError, "torch.Tensor"),
        (torch.full((1, 3, 4), float("nan")), ValueError, "non-finite"),
    ],
)
def test_bad_rnn_input(x, exc, match):
    from constructions import lsa_to_rnn

    rnn = lsa_to_rnn(_lsa(1, 2, 2, 4), "direct")
    with pytest.raises(exc, match=match):
        rnn(x)


def test_bad_method():
    from constructions import lsa_to_rnn

    with pytest.raises(ValueError, match="method"):
        lsa_to_rnn(_lsa(1, 2, 2, 2), "fancy")


def _variants_table_tool():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "generate_variants_table.py"
    spec = importlib.util.spec_from_file_location("variants_table", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_families_table_is_in_sync(tmp_path):
    """``python docs/generate_variants_table.py --check`` passes on the docs, and fails on a stale copy (and
    refuses a README without the markers in one line)."""
    tool = _variants_table_tool()
    from constructions.table import BEGIN, END, README

    assert tool.main(["--check"]) == 0
    stale = tmp_path / "README.md"
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    stale.write_text(head + BEGIN + "\n| stale |\n" + END + rest.split(END, 1)[1], encoding="utf-8")
    assert tool.main(["--check"], readme=stale) == 1
    assert tool.main([], readme=stale) == 0 and tool.main(["--check"], readme=stale) == 0
    stale.write_text("no markers", encoding="utf-8")
    assert tool.main(["--check"], readme=stale) == 2
    assert tool.main(["--bogus"]) == 2
