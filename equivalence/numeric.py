r"""Numeric equivalence checks of registered variants (the ``verify`` command's numeric section).

For a variant, each case draws sizes, parameters (generic Gaussian or *degenerate*: rank-deficient,
zero rows, repeated values, scales from 1e-3 to 1e3) and a batch of sequences from one seeded
``torch.Generator``; compares ``construct(params)(x)`` at the working dtype with the float64
``reference(params, x)`` under the tolerance model of :mod:`constructions.tolerance`
($|\hat y-y|\le\gamma_n M + n\eta$). A claim passes when every case passes; the first failing case is
kept as the counterexample with its seed, so ``--seed`` reproduces it. For ``impossible`` variants
(negative controls) the roles flip: the claim holds (``expected-failure``) when a counterexample is found.

Inputs are drawn representable in float32 (and in the working dtype), so the float64 and the float32 checks
of one variant see the same cases and :func:`check_variant_numeric_targets` computes each case's float64
reference, magnitude $M$ and path length once for every working dtype and device (the reference side is most
of a check's time). Each claim is exactly the one :func:`check_variant_numeric` gives for its dtype alone.
"""

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float64
from torch import Tensor

from constructions.registry import Variant
from constructions.tolerance import compare, lsa_rnn_budget, magnitude_at, magnitude_takes_dtype

from .claims import ClaimResult
from .report.counterexample import encode_params, encode_tensor

__all__ = [
    "PROFILES",
    "NumericProfile",
    "check_variant_numeric",
    "check_variant_numeric_targets",
    "degenerate_",
    "draw_case",
    "evaluate_case",
    "input_dtype",
]


@dataclass(frozen=True)
class NumericProfile:
    cases: int
    max_T: int
    max_d: int
    max_heads: int
    batch: int


PROFILES = {
    "dev": NumericProfile(cases=12, max_T=32, max_d=5, max_heads=2, batch=4),
    "ci": NumericProfile(cases=40, max_T=64, max_d=6, max_heads=3, batch=4),
    "thorough": NumericProfile(cases=400, max_T=256, max_d=8, max_heads=3, batch=8),
}


def degenerate_(t: torch.Tensor, g: torch.Generator, kind: int) -> torch.Tensor:
    """In place, make a weight degenerate: 0 rank-one, 1 zero rows, 2 repeated values, 3 huge/tiny scale."""
    with torch.no_grad():
        if kind == 0 and t.ndim >= 2:
            a = torch.randn(*t.shape[:-1], 1, generator=g, dtype=torch.float64)
            b = torch.randn(*t.shape[:-2], 1, t.shape[-1], generator=g, dtype=torch.float64)
            t.copy_((a * b).to(t.dtype))
        elif kind == 1 and t.ndim >= 2:
            t[..., : max(1, t.shape[-2] // 2), :] = 0
        elif kind == 2:
            t.copy_(torch.round(t * 2) / 2)
        elif kind == 3:
            e = float(torch.randint(-3, 4, (1,), generator=g))
            t.mul_(10.0**e)
    return t


def draw_case(variant: Variant, profile: NumericProfile, g: torch.Generator, dtype: torch.dtype):
    """Sizes, float64 params and a float64 input batch for one case."""
    d = int(torch.randint(1, profile.max_d + 1, (1,), generator=g))
    heads = int(torch.randint(1, profile.max_heads + 1, (1,), generator=g))
    T = int(torch.randint(1, profile.max_T + 1, (1,), generator=g))
    params = variant.sample_params(d, heads, generator=g, dtype=torch.float64)
    kind = int(torch.randint(0, 6, (1,), generator=g))  # 0..3 degenerate kinds, 4..5 generic
    if kind < 4:
        if hasattr(variant, "degenerate"):  # the variant knows which fields are free (keeps params in domain)
            params = variant.degenerate(params, g, kind)
        else:  # default: every float field of rank >= 2 is a free weight matrix
            for t in vars(params).values() if hasattr(params, "__dict__") else []:
                if isinstance(t, torch.Tensor) and t.is_floating_point() and t.ndim >= 2:
                    degenerate_(t, g, kind)
    x = torch.randn(profile.batch, T, d, generator=g, dtype=torch.float64)
    if kind == 3:
        x = x * 10.0 ** float(torch.randint(-2, 3, (1,), generator=g))
    x = x.to(input_dtype(dtype)).to(torch.float64)  # representable at the working dtype: no input rounding
    return params, x, {"d": d, "heads": heads, "T": T, "batch": profile.batch, "weights": kind}


def input_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the inputs of a check at ``dtype`` are rounded to: float32 for float64 and float32 (one draw,
    and one float64 reference, serves both), the working dtype when it is coarser (float16, bfloat16)."""
    return torch.float32 if dtype in (torch.float64, torch.float32) else dtype


def _cast_params(params, dtype, device):
    if hasattr(params, "__dataclass_fields__"):
        return dataclasses.replace(
            params,
            **{
                k: v.detach().to(device=device, dtype=dtype, copy=True)
                for k, v in vars(params).items()
                if isinstance(v, torch.Tensor) and v.is_floating_point()
            },
        )
    return params


def _json_float(v: float) -> float | str:
    """``v``, or its name (``"inf"``, ``"nan"``) when it is not finite: certificates are strict JSON."""
    return v if math.isfinite(v) else str(v)


def reference_side(variant: Variant, params, x: Float64[Tensor, "batch time d"]):
    """The float64 ``reference(params, x)`` and the tolerance model's magnitude $M$ (the variant's own, else
    the reference's size per sequence): shared by the checks of every working dtype. ``M`` is ``None`` when
    the variant's magnitude depends on the working dtype (weights formed as products at that precision,
    :func:`constructions.tolerance.magnitude_takes_dtype`): :func:`_candidate` takes it at each dtype."""
    ref = variant.reference(params, x)
    if hasattr(variant, "magnitude") and magnitude_takes_dtype(variant):
        M = None
    elif hasattr(variant, "magnitude"):
        M = variant.magnitude(params, x)
    else:  # no absolute computation available: relative to the reference's own size
        M = ref.abs().amax(dim=(1, 2), keepdim=True).expand_as(ref).to(torch.float64)
    return ref, M


def _candidate(variant, params, x, sizes, ref, M, *, dtype, device, mode, path_length=None):
    """``construct(params)`` at ``dtype`` on ``device`` on ``x``, compared with ``ref`` under the tolerance
    model (path length ``path_length`` when the variant declares one, else the template's budget). ``M``
    ``None`` (:func:`reference_side`, a dtype-aware magnitude): taken here at ``dtype``."""
    if M is None:
        M = magnitude_at(variant, params, x, dtype)
    low = _cast_params(params, dtype, device)
    rnn = variant.construct(low)
    y = rnn(x.to(device=device, dtype=dtype), mode=mode)
    T = x.shape[1]
    if path_length is not None:
        n = path_length
    elif hasattr(variant, "path_length"):
        n = variant.path_length(params, T)
    else:
        n = lsa_rnn_budget(
            T,
            sizes["d"],
            sizes["d"],
            sizes["d"],
            sizes["heads"],
            rnn.num_neurons,
            rnn.num_gates,
            depth=0,
            lam=rnn.lam,
        )
    res = compare(y, ref, M, n=n, dtype=dtype, label=f"{variant.name} construction")
    return res, y


def evaluate_case(
    variant: Variant,
    params,
    x: Float64[Tensor, "batch time d"],
    sizes: dict,
    *,
    dtype: torch.dtype,
    device: str = "cpu",
    mode: str = "auto",
):
    """One case: ``construct(params)`` at ``dtype`` on ``device`` against the float64 ``reference(params, x)``
    under the tolerance model. Returns ``(ComparisonResult, candidate output, reference output)``; the
    replay of a numeric counterexample (:mod:`equivalence.replay`) calls exactly this."""
    ref, M = reference_side(variant, params, x)
    res, y = _candidate(variant, params, x, sizes, ref, M, dtype=dtype, device=device, mode=mode)
    return res, y, ref


def _counterexample(case, seed, sizes, res, params, x, y, ref, mode) -> dict:
    """The failing case, with its parameters and inputs stored exactly (hex floats): replayable from the
    report's counterexample file alone (``python -m equivalence replay FILE``)."""
    cx = {
        "case": case,
        "seed": seed,
        "sizes": sizes,
        "message": res.message,
        "worst_index": list(res.worst_index),
        "max_abs_error": _json_float(res.max_abs_error),
        "mode": mode,
        "params": encode_params(params),
        "x": encode_tensor(x),
    }
    idx = tuple(res.worst_index)
    if idx and len(idx) == y.ndim:
        cx["observed"] = float(y.detach().to("cpu", torch.float64)[idx]).hex()
        cx["expected"] = float(ref.detach().to("cpu", torch.float64)[idx]).hex()
        cx["bound"] = float(res.bound_at_worst).hex()
    return cx


def check_variant_numeric(
    variant: Variant,
    *,
    profile: str = "ci",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    mode: str = "auto",
) -> ClaimResult:
    """Run ``profile``'s cases for ``variant`` at ``dtype`` on ``device``; return one claim."""
    return check_variant_numeric_targets(variant, [(dtype, device)], profile=profile, seed=seed, mode=mode)[0]


def check_variant_numeric_targets(
    variant: Variant,
    targets: Sequence[tuple[torch.dtype, str]],
    *,
    profile: str = "ci",
    seed: int = 0,
    mode: str = "auto",
) -> list[ClaimResult]:
    """One claim per ``(dtype, device)`` of ``targets``, each equal to ``check_variant_numeric`` at that
    dtype and device, with the reference side of every case computed once for all targets that round their
    inputs alike (:func:`input_dtype`): the cases are drawn once per such group from the same seed. A target
    stops at its first failing case (its counterexample); the others go on."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    targets = [(dt, dev) for dt, dev in targets]
    if not targets:
        return []
    groups: dict[torch.dtype, list[int]] = {}
    for i, (dt, _) in enumerate(targets):
        groups.setdefault(input_dtype(dt), []).append(i)
    out: list[ClaimResult | None] = [None] * len(targets)
    for members in groups.values():
        for i, claim in zip(
            members, _check_group(variant, [targets[i] for i in members], profile, seed, mode)
        ):
            out[i] = claim
    return [c for c in out if c is not None]


@dataclass
class _Tally:
    """What one target has measured so far."""

    worst_ratio: float = 0.0
    rel_rms: float = 0.0
    n_cases: int = 0
    seconds: float = 0.0
    counterexample: dict | None = None


def _check_group(variant, targets, profile: str, seed: int, mode: str) -> list[ClaimResult]:
    prof = PROFILES[profile]
    g = torch.Generator().manual_seed(seed)
    tallies = [_Tally() for _ in targets]
    for case in range(prof.cases):
        active = [i for i, t in enumerate(tallies) if t.counterexample is None]
        if not active:
            break
        t0 = time.perf_counter()
        params, x, sizes = draw_case(variant, prof, g, targets[active[0]][0])
        ref, M = reference_side(variant, params, x)
        pl = variant.path_length(params, x.shape[1]) if hasattr(variant, "path_length") else None
        shared = (time.perf_counter() - t0) / len(active)  # the reference side, split among the targets
        for i in active:
            dt, dev, t = *targets[i], tallies[i]
            t1 = time.perf_counter()
            res, y = _candidate(
                variant, params, x, sizes, ref, M, dtype=dt, device=dev, mode=mode, path_length=pl
            )
            t.n_cases += 1
            t.rel_rms = max(t.rel_rms, res.rel_rms if res.rel_rms == res.rel_rms else float("inf"))
            t.worst_ratio = max(t.worst_ratio, res.ratio)
            if not res.passed:
                t.counterexample = _counterexample(case, seed, sizes, res, params, x, y, ref, mode)
            t.seconds += shared + time.perf_counter() - t1
    return [_claim(variant, dt, dev, t, profile, prof, seed, mode) for (dt, dev), t in zip(targets, tallies)]


def _claim(variant, dtype, device, t: _Tally, profile, prof, seed, mode) -> ClaimResult:
    counterexample, n_cases = t.counterexample, t.n_cases
    dname = str(dtype).replace("torch.", "")
    found = counterexample is not None
    if variant.status == "impossible":
        status = "expected-failure" if found else "unexpected-pass"
        statement = (
            f"Negative control: the template construction offered for '{variant.name}' differs from its "
            f"reference on at least one random case ({dname}, {device}); the suite can say no."
        )
    else:
        status = "failed" if found else "tested"
        statement = (
            f"For {n_cases} random cases (profile '{profile}', seed {seed}; sizes d<= {prof.max_d}, "
            f"heads<= {prof.max_heads}, T<= {prof.max_T}; generic and degenerate weights), the "
            f"construction of '{variant.name}' evaluated in {dname} on {device} equals the float64 "
            f"reference within the tolerance model |y_hat - y| <= gamma_n M + n eta."
        )
    return ClaimResult(
        id=f"{variant.name.upper()}-NUMERIC-{dname.upper()}-{device.upper()}/v1",
        title=f"{variant.name}: construction equals reference numerically ({dname}, {device})",
        statement=statement,
        kind="numeric",
        status=status,
        construction=variant.name,
        tier="random-cases",
        sizes={"cases": n_cases, "max_d": prof.max_d, "max_heads": prof.max_heads, "max_T": prof.max_T},
        seconds=round(t.seconds, 3),
        evidence={
            "worst_error_over_bound": _json_float(t.worst_ratio),
            "max_rel_rms": _json_float(t.rel_rms),
            "mode": mode,
        },
        counterexample=counterexample,
        rerun={
            "command": "numeric",
            "variant": variant.name,
            "profile": profile,
            "seed": seed,
            "dtype": dname,
            "device": device,
        },
        message=counterexample["message"] if counterexample else "",
    )
