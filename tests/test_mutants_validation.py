"""Mutation-testing kills for constructions/_validation.py (docs/reliability.md, "Mutation testing").

Every message is compared in full and every branch is taken both ways, so a one-token mutant of a check, its
message or its return value fails here. The ``meta`` device stands in for a second device on CPU-only
machines."""

import math
import re

import pytest
import torch


def _msg(exc_type, f, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        f(*args, **kwargs)
    return str(info.value)


def test_require_tensor_accepts_and_returns_the_same_object():
    from constructions._validation import COMPLEX_DTYPES, FLOAT_DTYPES, require_tensor

    assert FLOAT_DTYPES == (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    assert COMPLEX_DTYPES == (torch.complex64, torch.complex128)
    for dtype in FLOAT_DTYPES + COMPLEX_DTYPES:
        t = torch.zeros(2, dtype=dtype)
        assert require_tensor("w", t) is t  # complex allowed by default
    for dtype in FLOAT_DTYPES:
        t = torch.zeros(2, dtype=dtype)
        assert require_tensor("w", t, allow_complex=False) is t


def test_require_tensor_messages_exact():
    from constructions._validation import require_tensor

    assert (
        _msg(TypeError, require_tensor, "W_Q", [1.0])
        == "W_Q must be a torch.Tensor of floating dtype; got list"
    )
    assert _msg(TypeError, require_tensor, "W_Q", __import__("numpy").zeros(2)) == (
        "W_Q must be a torch.Tensor of floating dtype; got ndarray"
        " (convert with torch.as_tensor(..., dtype=torch.float64))"
    )
    tail = " (integer and boolean tensors are not accepted: cast with .to(torch.float64))"
    assert _msg(TypeError, require_tensor, "x", torch.zeros(2, dtype=torch.int64)) == (
        "x must have a floating or complex dtype; got torch.int64" + tail
    )
    assert _msg(TypeError, require_tensor, "x", torch.zeros(2, dtype=torch.bool), allow_complex=False) == (
        "x must have a floating dtype; got torch.bool" + tail
    )
    assert _msg(
        TypeError, require_tensor, "x", torch.zeros(2, dtype=torch.complex128), allow_complex=False
    ) == ("x must have a floating dtype; got torch.complex128" + tail)
    assert _msg(TypeError, require_tensor, "x", torch.zeros(2, 2).to_sparse()) == (
        "x must be a dense (strided) tensor; got layout torch.sparse_coo"
    )


def test_require_ndim_and_size_messages_exact():
    from constructions._validation import require_ndim, require_size

    t = torch.zeros(2, 3)
    assert require_ndim("x", t, 2, "a, b") is None
    assert _msg(ValueError, require_ndim, "x", t, 3, "batch, time, d") == (
        "x must have 3 dimensions [batch, time, d]; got shape (2, 3)"
    )
    assert require_size("x", t, 1, 3, "d") is None
    assert _msg(ValueError, require_size, "x", t, 1, 4, "d") == (
        "x has d=3 (dimension 1 of shape (2, 3)); expected d=4"
    )
    assert _msg(ValueError, require_size, "x", t, 0, 5, "H", "(the heads)") == (
        "x has H=2 (dimension 0 of shape (2, 3)); expected H=5 (the heads)"
    )


def test_all_finite_every_branch():
    from constructions._validation import all_finite

    assert all_finite(torch.zeros(0)) is True
    assert all_finite(torch.empty(0, dtype=torch.complex128)) is True
    assert all_finite(torch.tensor([1.0, -2.0])) is True
    for bad in (math.nan, math.inf, -math.inf):
        assert all_finite(torch.tensor([1.0, bad])) is False
        assert all_finite(torch.tensor([bad, 1.0])) is False
    assert all_finite(torch.tensor([1 + 2j, 3 - 1j])) is True
    assert all_finite(torch.tensor([1 + 2j, complex(1.0, math.inf)])) is False  # only the imaginary part
    assert all_finite(torch.tensor([complex(math.nan, 0.0)])) is False
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    assert all_finite(w) is True and w.grad is None


def test_require_finite_message_exact():
    from constructions._validation import require_finite

    assert require_finite("w", torch.ones(3)) is None
    assert require_finite("w", torch.zeros(0)) is None
    assert _msg(
        ValueError, require_finite, "w", torch.tensor([[0.0, math.nan, math.inf], [1.0, 1.0, -math.inf]])
    ) == ("w contains 3 non-finite value(s) (NaN or Inf), first at index (0, 1); expected finite values")
    assert _msg(ValueError, require_finite, "x", torch.tensor([1.0, 2.0, math.nan])) == (
        "x contains 1 non-finite value(s) (NaN or Inf), first at index (2,); expected finite values"
    )


def test_require_same_device_returns_and_reports():
    from constructions._validation import require_same_device

    a, b = torch.zeros(1), torch.zeros(2)
    assert require_same_device(a=a, b=b) == torch.device("cpu")
    assert require_same_device(a=a, skip=None, n=3) == torch.device("cpu")  # non-tensors are ignored
    assert require_same_device(m=torch.zeros(1, device="meta")) == torch.device("meta")
    assert _msg(ValueError, require_same_device, a=a, m=torch.zeros(1, device="meta")) == (
        "all tensors must be on one device; got a on cpu, m on meta"
    )


def test_require_positive_int_every_branch():
    from constructions._validation import require_positive_int

    assert require_positive_int("k", 1) == 1 and require_positive_int("k", 7) == 7
    assert require_positive_int("k", 0, minimum=0) == 0 and require_positive_int("k", 5, minimum=5) == 5
    assert _msg(TypeError, require_positive_int, "k", True) == "k must be an int >= 1; got bool True"
    assert (
        _msg(TypeError, require_positive_int, "k", 2.0, minimum=2) == "k must be an int >= 2; got float 2.0"
    )
    assert _msg(ValueError, require_positive_int, "k", 0) == "k must be >= 1; got 0"
    assert _msg(ValueError, require_positive_int, "k", 4, minimum=5) == "k must be >= 5; got 4"


def test_require_finite_float_every_branch():
    from constructions._validation import require_finite_float

    r = require_finite_float("c", 2)
    assert r == 2.0 and type(r) is float
    assert require_finite_float("c", -0.5) == -0.5
    assert _msg(TypeError, require_finite_float, "c", False) == "c must be a real number; got bool False"
    assert _msg(TypeError, require_finite_float, "c", "2") == "c must be a real number; got str '2'"
    assert _msg(ValueError, require_finite_float, "c", math.inf) == "c must be finite; got inf"
    assert re.fullmatch(r"c must be finite; got nan", _msg(ValueError, require_finite_float, "c", math.nan))


def test_rnn_refuses_non_finite_weights_and_initial_state():
    """NaN in A..D or in the initial state used to give a NaN output and only a warning: now a ValueError."""
    import math

    from constructions import GatedLinearRNN

    g = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    rnn = GatedLinearRNN(
        r(2, 3), r(2, 3), torch.tensor([1.0, 0.0], dtype=torch.float64), r(2, 2), r(2, 2), r(1, 2)
    )
    x = r(1, 4, 2)
    for name in ("A", "B", "C", "E", "D"):
        w = getattr(rnn, name)
        old = w.detach().clone()
        with torch.no_grad():
            w.view(-1)[0] = math.nan
        with pytest.raises(ValueError, match=rf"^GatedLinearRNN\.{name} contains 1 non-finite value"):
            rnn(x)
        with torch.no_grad():
            w.copy_(old)
    with pytest.raises(ValueError, match=r"^state \(the initial h_0\) contains 2 non-finite"):
        rnn(x, torch.full((1, 2), math.inf, dtype=torch.float64))
    assert bool(torch.isfinite(rnn(x)).all())
