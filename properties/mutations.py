r"""Mutants of a constructed gated RNN, for measuring the checkers' detection power (``docs/reliability.md``).

Each mutation takes a correct construction (Zucchet et al. 2023, Sec. 3 / App. A: key-value neurons with
$\lambda = 1$, query neurons with $\lambda = 0$) and returns a layer ``x -> y`` that is *wrong* — except
where the mutation happens to be an equivalent one (e.g. perturbing a weight that only ever multiplies
zero), which the reliability study counts separately. The kinds:

- ``weight``: one non-zero entry of $A, B, C, E$ or $D$ multiplied by $1+\varepsilon$;
- ``lambda``: one neuron's $\lambda$ moved by $\varepsilon$ towards the other value ($1\to1-\varepsilon$,
$0\to\varepsilon$);
- ``lambda-flip``: one neuron's $\lambda$ flipped ($0\leftrightarrow1$): a memory becomes a query or back;
- ``swap-wiring``: the input wiring (rows of $A$ and $B$) of two neurons with different wiring exchanged;
- ``drop-input-branch``: one neuron's input gate loses its $B$ branch ($u_k = A_k\tilde x$);
- ``drop-output-branch``: one output gate loses its $E$ branch ($z_m = C_m h$);
- ``causal-lag``: memories read $u_{t-1}$ instead of $u_t$ ($y_t = S_{t-1}q_t$, the classic off-by-one);
- ``causal-lead``: memories read $u_{t+1}$ (one step of future leaks in).

Bugs of a *layer* (any implementation of LSA, not only the template): :func:`chunk_reset_layer`, a chunked
implementation whose state is lost at the start of chunk $k$ (appears only for $T > kC$).

All mutants are evaluated with the template's own stage functions (:mod:`constructions.rnn`), so a mutant
differs from the construction only where the mutation says.
"""

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor

from constructions.rnn import GatedLinearRNN, augment, input_gate, output_readout
from constructions.scan import scan_loop

__all__ = ["KINDS", "STRUCTURAL", "chunk_reset_layer", "evaluate_spec", "mutate", "mutate_spec"]

KINDS = (
    "weight",
    "lambda",
    "lambda-flip",
    "swap-wiring",
    "drop-input-branch",
    "drop-output-branch",
    "causal-lag",
    "causal-lead",
)
#: kinds that do not depend on a size epsilon
STRUCTURAL = (
    "lambda-flip",
    "swap-wiring",
    "drop-input-branch",
    "drop-output-branch",
    "causal-lag",
    "causal-lead",
)


def _pick(g: torch.Generator, n: int) -> int:
    return int(torch.randint(0, n, (1,), generator=g))


def _clone(rnn: GatedLinearRNN) -> dict:
    return {k: (v.detach().clone() if v is not None else None) for k, v in rnn.weights()._asdict().items()}


def _rnn(w: dict) -> GatedLinearRNN:
    return GatedLinearRNN(w["A"], w["B"], w["lam"], w["C"], w["E"], w["D"])


def _manual(w: dict, *, shift: int = 0, drop_output: int | None = None) -> Callable[[Tensor], Tensor]:
    """The template evaluated stage by stage, with memories' drive shifted by ``shift`` steps or one gate's
    second branch dropped."""

    def layer(x: Float[Tensor, "batch time d"]) -> Float[Tensor, "batch time d_out"]:
        dtype = w["A"].dtype
        xt = augment(x.to(dtype))
        u = input_gate(w["A"], w["B"], xt)
        if shift:
            mem = w["lam"] == 1
            shifted = torch.zeros_like(u)
            if shift > 0:  # lag: u_{t-1}
                shifted[:, 1:] = u[:, :-1]
            else:  # lead: u_{t+1}
                shifted[:, :-1] = u[:, 1:]
            u = torch.where(mem, shifted, u)
        h, _ = scan_loop(w["lam"], u, u.new_zeros(u.shape[0], u.shape[2]))
        if drop_output is None:
            return output_readout(w["C"], w["E"], w["D"], h)
        a, b = h @ w["C"].T, h @ w["E"].T
        b[..., drop_output] = 1
        return (a * b) @ w["D"].T

    return layer


def mutate(rnn: GatedLinearRNN, kind: str, g: torch.Generator, eps: float = 0.0) -> tuple[Callable, str]:
    """A mutant of ``rnn`` (a construction with $\\lambda\\in\\{0,1\\}$) and a description of what changed."""
    layer, what, _ = mutate_spec(rnn, kind, g, eps)
    return layer, what


def mutate_spec(
    rnn: GatedLinearRNN, kind: str, g: torch.Generator, eps: float = 0.0
) -> tuple[Callable, str, dict]:
    """Like :func:`mutate`, plus the mutant as data: ``{"w": weights, "shift": s, "drop_output": m}`` (the
    template evaluated with memories' drive shifted by ``s`` steps and gate ``m``'s second branch dropped),
    so that an exact evaluator (the symbolic prover) can run the very same mutant."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    w = _clone(rnn)
    n = rnn.num_neurons
    if kind == "weight":
        entries = [
            (name, idx) for name in ("A", "B", "C", "E", "D") for idx in (w[name] != 0).nonzero().tolist()
        ]
        if not entries:
            raise ValueError("the RNN has no non-zero weight to perturb")
        name, idx = entries[_pick(g, len(entries))]
        w[name][tuple(idx)] *= 1 + eps
        return _rnn(w), f"{name}{idx} *= 1{eps:+.1e}", _spec(w)
    k = _pick(g, n)
    if kind == "lambda":
        old = float(w["lam"][k])
        w["lam"][k] = old - eps if old == 1 else old + eps
        return _rnn(w), f"lam[{k}]: {old} -> {float(w['lam'][k])!r}", _spec(w)
    if kind == "lambda-flip":
        old = float(w["lam"][k])
        w["lam"][k] = 1 - old
        return _rnn(w), f"lam[{k}]: {old} -> {1 - old}", _spec(w)
    if kind == "swap-wiring":
        AB = torch.cat([w["A"], w["B"]], dim=1)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if not torch.equal(AB[i], AB[j])]
        if not pairs:
            raise ValueError("all neurons have the same input wiring; nothing to swap")
        i, j = pairs[_pick(g, len(pairs))]
        for name in ("A", "B"):
            w[name][[i, j]] = w[name][[j, i]]
        return _rnn(w), f"input wiring of neurons {i} and {j} swapped", _spec(w)
    if kind == "drop-input-branch":
        used = [i for i in range(n) if bool((w["B"][i, :-1] != 0).any())] or list(range(n))
        k = used[_pick(g, len(used))]
        w["B"][k] = 0
        w["B"][k, -1] = 1  # u_k = (A_k x~) * 1
        return _rnn(w), f"neuron {k}: input branch B dropped", _spec(w)
    if kind == "drop-output-branch":
        m = _pick(g, rnn.num_gates)
        return _manual(w, drop_output=m), f"gate {m}: output branch E dropped", _spec(w, drop_output=m)
    shift = 1 if kind == "causal-lag" else -1
    return _manual(w, shift=shift), kind, _spec(w, shift=shift)


def _spec(w: dict, shift: int = 0, drop_output: int | None = None) -> dict:
    return {"w": w, "shift": shift, "drop_output": drop_output}


def evaluate_spec(spec: dict, x, *, ones: Callable) -> list:
    """The mutant on one sequence ``x`` (``[T, d]`` NumPy object array: exact numbers or polynomials), with
    the template's own stage functions; ``ones(shape)`` makes the constant-1 array of the backend. Returns
    ``[y_1, ..., y_T]`` (each ``[d_out]``)."""
    # lazy: start-up time (NumPy and SymPy load only for the exact evaluation of a mutant)
    import numpy as np

    from equivalence.symbolic.algebra import fraction_array  # lazy: as above

    A, B, lam, C, E, D = (fraction_array(spec["w"][k]) for k in ("A", "B", "lam", "C", "E", "D"))
    T = x.shape[0]
    xt = np.concatenate([x, ones((T, 1))], axis=1)
    u = input_gate(A, B, xt)  # [T, n]
    if spec["shift"]:
        mem = np.array([v == 1 for v in lam])
        shifted = np.zeros_like(u)
        shifted[...] = 0
        if spec["shift"] > 0:
            shifted[1:] = u[:-1]
        else:
            shifted[:-1] = u[1:]
        u = np.where(mem[None, :], shifted, u)
    h = np.zeros(A.shape[0], dtype=object)
    ys = []
    for t in range(T):
        h = lam * h + u[t]
        if spec["drop_output"] is None:
            ys.append(output_readout(C, E, D, h))
        else:
            a, b = C @ h, E @ h
            b[spec["drop_output"]] = 1
            ys.append(D @ (a * b))
    return ys


def chunk_reset_layer(lsa, chunk: int = 16, index: int = 4, scale: float = 0.0) -> Callable[[Tensor], Tensor]:
    r"""A chunked LSA layer (chunks of ``chunk`` tokens) with a planted bug: at the start of chunk ``index``
    its memory restarts from $S = \text{scale}\cdot S$ (``scale=0``: reset; the bug of a carried state
    dropped past a chunk index), so $y_t$ is wrong only for $t \ge \text{index}\cdot\text{chunk}$, i.e. for
    $T > kC$. Exact elsewhere: the scores are the LSA's, masked."""
    if chunk < 1 or index < 1:
        raise ValueError(f"chunk and index must be >= 1; got {chunk}, {index}")

    def layer(x: Tensor) -> Tensor:
        dt = torch.promote_types(x.dtype, lsa.W_Q.dtype)
        x = x.to(dt)
        q = torch.einsum("btd,hkd->bhtk", x, lsa.W_Q.to(dt))
        k = torch.einsum("btd,hkd->bhtk", x, lsa.W_K.to(dt))
        v = torch.einsum("btd,hvd->bhtv", x, lsa.W_V.to(dt))
        T = x.shape[1]
        t = torch.arange(T, device=x.device)
        late_t, early_s = (t // chunk >= index)[:, None], (t // chunk < index)[None, :]
        mask = (t[:, None] >= t[None, :]).to(dt) * torch.where(late_t & early_s, scale, 1.0).to(dt)
        o = (torch.einsum("bhtk,bhsk->bhts", q, k) * mask) @ v
        B, H, _, dv = o.shape
        o = o.permute(0, 2, 1, 3).reshape(B, T, H * dv)
        return o if lsa.W_O is None else o @ lsa.W_O.to(dt).T

    return layer
