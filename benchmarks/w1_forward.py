r"""Workload 1: the gated RNN forward pass (docs/benchmarks.md).

The direct construction (Zucchet et al. 2023, App. A) of one linear-attention head, $d=64$, $d_k=d_v=16$
($n = d_k(d_v+1) = 272$ neurons, $m = 256$ gates), on $B=8$ sequences of $T=4096$ steps, float32:

- ``rnn loop``: ``rnn(x, mode="loop")``, the dense template with the step loop: the naive reference;
- ``rnn parallel``: ``rnn(x, mode="parallel")``: the structured fast path (here the chunked matmul form);
- ``rnn parallel, dense gating``: ``gating="dense"``: the template's matrices with the chunked scan;
- ``fla naive recurrent (peer)``: flash-linear-attention's ``naive_recurrent_linear_attn`` computing the same
  attention from the same ``x`` (projections included; :mod:`benchmarks.peers`).

Variants at the same sizes: complex $\lambda$ (each head's memories decay by $\gamma e^{i\theta}$, RetNet/xPos
style, real readout) and input-dependent $\lambda_t = \sigma(w_h\cdot x_t + 2)$ (one scalar decay per head and
step, Mamba-2 / simple GLA style), in two forms: ``decay`` is the variants' E1 object
(:class:`~constructions.variants.decay.InputDependentDecay`, one channel per head: the fast path reads the
``[B, T, H]`` channel values), ``decay-callable`` the same function as a plain callable returning the
template's ``[B, T, n]`` $\lambda_t$ (the generic path). Full mode adds ``decay-per-key``: GLA's decay, one
channel per head and key ($\lambda_t$ of ``kv[h, i, j]`` is $\sigma(w_{h,j}\cdot x_t + 2)$), evaluated by the
per-key chunked form. For ``decay`` the peers are fla's naive simple-GLA references
(``naive_recurrent_simple_gla``, ``naive_chunk_simple_gla``; installed fla only) on the same $q, k, v$ and
log-decay. Ratios are ``baseline / candidate`` from interleaved rounds; peak memory from
:mod:`benchmarks.memory`.
"""

import math

import torch

from constructions import GatedLinearRNN, LinearSelfAttention, lsa_to_rnn
from constructions.structured_attention import CHUNK
from constructions.tolerance import compare, lsa_path_length, rnn_path_length
from constructions.variants import InputDependentDecay

from .common import Case, WorkloadResult, interleaved, ratio
from .memory import measure, measure_in_child
from .peers import fla_kernels, fla_naive, fla_simple_gla, merge, project_qkv

__all__ = ["run", "build_case", "SIZES", "QUICK_SIZES", "KINDS"]

SIZES = {"B": 8, "T": 4096, "d": 64, "H": 1, "dk": 16, "dv": 16}
QUICK_SIZES = dict(SIZES)
KINDS = ("lsa", "complex", "decay", "decay-callable", "decay-per-key")
#: :func:`build_case` as a child process of :mod:`benchmarks.memory` names it
BUILDER = "benchmarks.w1_forward:build_case"


def build_rnn(spec: dict):
    """The LSA and the RNN of ``spec`` (kind ``lsa``, ``complex`` or ``decay``), float32 on the device."""
    g = torch.Generator().manual_seed(spec.get("seed", 0))
    H, dk, dv, d = spec["H"], spec["dk"], spec["dv"], spec["d"]
    dtype = getattr(torch, spec.get("dtype", "float32"))
    device = spec.get("device", "cpu")

    def w(*s):
        return (torch.randn(*s, generator=g, dtype=torch.float64) / math.sqrt(d)).to(
            device=device, dtype=dtype
        )

    lsa = LinearSelfAttention(w(H, dk, d), w(H, dk, d), w(H, dv, d))
    rnn = lsa_to_rnn(lsa, "direct")
    kind = spec.get("kind", "lsa")
    if kind == "complex":
        n_kv = H * dk * dv
        lam = rnn.lam.to(torch.complex64 if dtype == torch.float32 else torch.complex128).clone()
        for h in range(H):  # one complex decay per head: gamma_h e^{i theta_h}
            lam[h * dk * dv : (h + 1) * dk * dv] = (1 - 2.0 ** (-5 - h)) * complex(
                math.cos(0.1 * (h + 1)), math.sin(0.1 * (h + 1))
            )
        assert lam[n_kv:].abs().max() == 0
        rnn = GatedLinearRNN(rnn.A, rnn.B, lam, rnn.C, rnn.E, rnn.D)
    elif (
        kind == "decay-per-key"
    ):  # GLA: kv[h, i, j] decays by sigmoid(w_{h,j} . x_t + 2), one channel per key
        n_kv = H * dk * dv
        heads = torch.arange(H, device=device).repeat_interleave(dk * dv)
        keys = torch.arange(dk, device=device).repeat(H * dv) + dk * heads
        channel = torch.cat([keys, torch.full((rnn.num_neurons - n_kv,), -1, device=device)])
        wk = w(H * dk, d)
        e1 = InputDependentDecay(
            torch.cat([wk, wk.new_full((H * dk, 1), 2.0)], dim=1),
            channel,
            torch.zeros(rnn.num_neurons, dtype=dtype, device=device),
        )
        rnn = GatedLinearRNN(rnn.A, rnn.B, None, rnn.C, rnn.E, rnn.D, decay=e1)
    elif kind in ("decay", "decay-callable"):
        n_kv = H * dk * dv
        wa = w(H, d)
        # lambda_t = sigmoid(w_h . x_t + 2) = exp(logsigmoid(.)) on head h's memories, 0 on the queries
        channel = torch.cat(
            [
                torch.arange(H, device=device).repeat_interleave(dk * dv),
                torch.full((rnn.num_neurons - n_kv,), -1, device=device),
            ]
        )
        e1 = InputDependentDecay(
            torch.cat([wa, wa.new_full((H, 1), 2.0)], dim=1),
            channel,
            torch.zeros(rnn.num_neurons, dtype=dtype, device=device),
        )

        def decay(x):  # the same lambda_t as a plain callable: the template's [B, T, n] tensor
            a = torch.sigmoid(x @ wa.T + 2.0)  # [B, T, H]
            out = a.new_empty(*x.shape[:2], rnn.num_neurons)
            out[..., :n_kv].unflatten(-1, (H, dk * dv)).copy_(a[..., None].expand(*a.shape, dk * dv))
            out[..., n_kv:] = 0
            return out

        rnn = GatedLinearRNN(rnn.A, rnn.B, None, rnn.C, rnn.E, rnn.D, decay=e1 if kind == "decay" else decay)
        rnn.log_decay = lambda x: torch.nn.functional.logsigmoid(x @ wa.T + 2.0)  # [B, T, H], for fla's peers
    return lsa, rnn, dtype, device


CASES = (
    "rnn loop",
    "rnn parallel",
    "rnn parallel, dense gating",
    "fla naive recurrent (peer)",
    "fla naive recurrent simple GLA (peer)",
    "fla naive chunk simple GLA (peer)",
)


def build_case(spec: dict):
    """A zero-argument callable running ``spec["case"]`` on its input, and sizes info (for memory.py)."""
    lsa, rnn, dtype, device = build_rnn(spec)
    g = torch.Generator().manual_seed(spec.get("seed", 0) + 1)
    x = torch.randn(spec["B"], spec["T"], spec["d"], generator=g).to(device=device, dtype=dtype)
    case = spec["case"]
    if case == "rnn loop":

        def f():
            return rnn(x, mode="loop")
    elif case == "rnn parallel":

        def f():
            return rnn(x, mode="parallel")
    elif case == "rnn parallel, dense gating":

        def f():
            return rnn(x, mode="parallel", gating="dense")
    elif case == "fla naive recurrent (peer)":
        naive, _ = fla_naive()

        def f():
            return merge(lsa, naive(*project_qkv(lsa, x)))
    elif case in ("fla naive recurrent simple GLA (peer)", "fla naive chunk simple GLA (peer)"):
        fn = fla_simple_gla()[case]

        def f():
            return merge(lsa, fn(*project_qkv(lsa, x), rnn.log_decay(x)))
    elif case.startswith("fla ") and "Triton" in case:
        kern = fla_kernels()[case]

        def f():
            return merge(lsa, kern(*project_qkv(lsa, x)))
    else:
        raise ValueError(f"unknown case {case!r}; expected one of {CASES}")
    info = {"input_bytes": x.numel() * x.element_size()}
    if (
        spec.get("kind") == "decay-callable"
    ):  # the template's lambda_t [B, T, n], made by the callable in the call
        info["lambda_t_bytes"] = spec["B"] * spec["T"] * rnn.num_neurons * x.element_size()
    return f, info


def _flops(s: dict) -> dict:
    """Multiply-add counts x 2 of each evaluation (derived from the shapes)."""
    B, T, d, H, dk, dv = s["B"], s["T"], s["d"], s["H"], s["dk"], s["dv"]
    n, m, d_out = H * dk * (dv + 1), H * dk * dv, H * dv
    dense = 2 * B * T * (2 * (d + 1) * n + 2 * n * m + m * d_out) + 4 * B * T * n
    proj = 2 * B * T * d * H * (2 * dk + dv)
    chunked = proj + 2 * B * T * H * (CHUNK * (dk + dv) + 2 * dk * dv)
    minimal = proj + 4 * B * T * H * dk * dv  # recurrent form: S += v k^T and S q per step
    return {"dense_template": dense, "structured_chunked": chunked, "minimal": minimal}


def _check(lsa, rnn, x, y, kind) -> dict:
    """The fast output against the float64 reference, under the tolerance model (gamma_n M)."""
    x64 = x.detach().to("cpu", torch.float64)
    w64 = [None if t is None else t.detach().to("cpu") for t in rnn.weights()]
    w64 = [
        None if t is None else (t.to(torch.complex128) if t.is_complex() else t.to(torch.float64))
        for t in w64
    ]
    if kind == "lsa":
        f64 = LinearSelfAttention(*(t.detach().to("cpu", torch.float64) for t in (lsa.W_Q, lsa.W_K, lsa.W_V)))
        ref = f64.forward_recurrent(x64)
        M = LinearSelfAttention(
            *(t.detach().abs().to("cpu", torch.float64) for t in (lsa.W_Q, lsa.W_K, lsa.W_V))
        ).forward_recurrent(x64.abs())
    else:
        if kind.startswith("decay"):
            lam_t = rnn.lambdas(x).detach().to("cpu", torch.float64)
            r64 = GatedLinearRNN(*w64[:2], None, *w64[3:], decay=lambda _: lam_t)
            rabs = GatedLinearRNN(
                *(w.abs() for w in w64[:2]), None, *(w.abs() for w in w64[3:]), decay=lambda _: lam_t.abs()
            )
        else:
            r64 = GatedLinearRNN(*w64)
            rabs = GatedLinearRNN(*(w.abs().to(torch.float64) for w in w64), real_output=True)
        ref = r64(x64, mode="loop")
        M = rabs(x64.abs(), mode="loop")
    T, d = x.shape[1], x.shape[2]
    n = lsa_path_length(T, d, lsa.d_k, lsa.d_v, lsa.heads) + 2 * rnn_path_length(
        T, d, rnn.num_neurons, rnn.num_gates
    )
    res = compare(y, ref, M, n=n, dtype=torch.float32, label="rnn parallel")
    return {
        "kind": kind,
        "passed": res.passed,
        "worst_error_over_bound": res.ratio,
        "rel_rms": res.rel_rms,
        "rounding_budget_n": n,
    }


def run(
    *,
    quick: bool,
    device: str,
    repeats: int | None = None,
    memory: bool = True,
    sizes: dict | None = None,
    long_T: int | None = None,
) -> list[WorkloadResult]:
    s = dict(sizes or (QUICK_SIZES if quick else SIZES))
    reps = repeats or (5 if quick else 7)
    results = []
    _, peer_label = fla_naive()
    kernels = fla_kernels() if device.startswith("cuda") else {}
    lengths = [s["T"]] if quick else [s["T"] // 4, s["T"], long_T or 4 * s["T"]]
    gla_peers = fla_simple_gla()
    for kind in KINDS:
        for T in lengths:
            if kind not in ("lsa", "decay") and T != s["T"]:
                continue
            if kind == "decay-per-key" and quick:  # full mode only (keeps --quick under 2 minutes)
                continue
            spec = dict(s, T=T, kind=kind, device=device, dtype="float32")
            r = WorkloadResult(
                "w1",
                f"Gated RNN forward, {kind}, T={T}",
                {k: spec[k] for k in ("B", "T", "d", "H", "dk", "dv")} | {"kind": kind, "dtype": "float32"},
            )
            cases = ["rnn loop", "rnn parallel", "rnn parallel, dense gating"]
            if kind == "lsa":
                cases.append("fla naive recurrent (peer)")
                cases += list(kernels)
            if kind == "decay":
                cases += list(gla_peers)
            if (
                quick and kind != "lsa"
            ):  # informational, and the slowest case: its time buys more rounds instead
                cases.remove("rnn parallel, dense gating")
            fns = {c: build_case(dict(spec, case=c))[0] for c in cases}
            with torch.no_grad():
                times = interleaved(fns, repeats=reps if T <= s["T"] else max(2, reps // 2), device=device)
            r.cases = [Case(c, times[c]) for c in cases]
            r.ratios.append(
                ratio(
                    "parallel vs loop (same RNN)",
                    times,
                    "rnn parallel",
                    "rnn loop",
                    target=10.0 if kind in ("lsa", "complex", "decay") else None,
                )
            )
            if "rnn parallel, dense gating" in times:
                r.ratios.append(
                    ratio("dense gating: parallel vs loop", times, "rnn parallel, dense gating", "rnn loop")
                )
            if kind == "lsa":
                r.ratios.append(
                    ratio(
                        "constructed RNN vs fla naive recurrent",
                        times,
                        "rnn parallel",
                        "fla naive recurrent (peer)",
                        target=1.0,
                        note=peer_label,
                    )
                )
                for kname in kernels:
                    r.ratios.append(ratio(f"constructed RNN vs {kname}", times, "rnn parallel", kname))
            if kind == "decay":
                for pname in gla_peers:
                    r.ratios.append(
                        ratio(
                            f"constructed RNN vs {pname.removesuffix(' (peer)')}",
                            times,
                            "rnn parallel",
                            pname,
                            note="fla.ops.simple_gla.naive (installed fla)",
                        )
                    )
            # correctness of what was timed
            lsa, rnn, _, _ = build_rnn(spec)
            x = torch.randn(s["B"], T, s["d"], generator=torch.Generator().manual_seed(1)).to(device)
            with torch.no_grad():
                r.checks.append(_check(lsa, rnn, x, rnn(x, mode="parallel"), kind))
            if memory and T == s["T"]:
                for c in (
                    ("rnn parallel", "rnn loop", "fla naive recurrent (peer)")
                    if kind == "lsa"
                    else ("rnn parallel",)
                ):
                    mspec = dict(spec, case=c, threads=torch.get_num_threads())
                    m = (
                        measure(mspec, build_case)
                        if device.startswith("cuda")
                        else measure_in_child(mspec, builder=BUILDER)
                    )
                    if "error" not in m:
                        lam_b = m.get("lambda_t_bytes", 0)  # counted as an input of the recurrence (see docs)
                        base = m["output_bytes"] + m["input_bytes"] + lam_b
                        m["peak_over_output_plus_inputs"] = (m["peak_extra_bytes"] + m["input_bytes"]) / base
                        m["target"] = 2.0
                        m["met"] = m["peak_over_output_plus_inputs"] <= 2.0
                    r.memory.append(m)
            if kind == "lsa" and T == s["T"]:
                r.limits = {
                    "flops": _flops(spec),
                    "bytes_x_plus_y": 4 * spec["B"] * T * (spec["d"] + spec["H"] * spec["dv"]),
                }
            if kind == "lsa":
                r.notes.append(f"peer: {peer_label}")
            elif kind == "decay":
                r.notes.append(
                    "peers: fla.ops.simple_gla.naive (installed fla), q, k, v and the log-decay "
                    "logsigmoid(w.x + 2) computed from x inside the call"
                    if gla_peers
                    else "fla not importable: no simple-GLA peer in this run"
                )
            elif kind == "decay-per-key":
                r.notes.append(
                    "GLA-style decay per key (InputDependentDecay, one channel per key): the per-key "
                    "chunked form; no target (the benchmark's targets are set for one decay per head)"
                )
            elif kind == "decay-callable":
                r.notes.append(
                    "the decay is an opaque callable returning lambda_t [B, T, n]: the generic path "
                    "(no factored form); no target"
                )
            if device.startswith("cuda") and not kernels and kind == "lsa":
                r.notes.append("fla's Triton kernels not importable: no fused-kernel peer in this run")
            results.append(r)
    return results
