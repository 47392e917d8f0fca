r"""Trainable students: an ensemble of gated linear RNNs (the paper's template) and LSTM/GRU baselines.

Zucchet et al. 2023 (Sec. 3, Fig. 1; Experiments 1 and 2) train the gated RNN

$$ u_t=(A\tilde x_t)\odot(B\tilde x_t),\quad h_t=\lambda\odot h_{t-1}+u_t,\quad y_t=D\,[(Ch_t)\odot(Eh_t)] $$

by gradient descent. :class:`GatedRNNEnsemble` holds ``K`` *independent* students of this template
(hidden sizes ``sizes[k]``, padded to the largest) and evaluates them in one batched computation:
the loss is a sum of per-student losses and Adam is element-wise, so each student follows exactly the
trajectory it would follow alone, while a 2-core CPU runs a whole hidden-size sweep at once.
:meth:`GatedRNNEnsemble.student` exports student ``k`` as a plain
:class:`~constructions.rnn.GatedLinearRNN` (float64 by default) for every analysis; the batched
forward is checked against it in ``tests/test_training_students.py`` (naive beside fast).

**The λ parameterisation** (:data:`LAMBDA_PARAMETERISATIONS`) decides whether training can *reach* the
construction, whose neurons have $\lambda\in\{0,1\}$ exactly:

- ``"clamp"`` (default): $\lambda=\nu$, projected onto $[0,1]$ after every optimiser step
  (:meth:`~GatedRNNEnsemble.project_`), i.e. projected Adam; 0 and 1 are reachable and absorbing only
  while the gradient pushes outwards;
- ``"sigmoid"``: $\lambda=\sigma(\nu)$ (ablation): 0 and 1 are only approached as $|\nu|\to\infty$;
- ``"lru"``: $\lambda=\exp(-\exp\nu)$ (Orvieto et al. 2023's LRU, real part; ablation): same limit behaviour.

LSTM and GRU students (:class:`RecurrentBaseline`) are ``torch.nn.LSTM``/``torch.nn.GRU`` with a linear
readout (Hochreiter & Schmidhuber 1997; Cho et al. 2014).
"""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from constructions import GatedLinearRNN

__all__ = [
    "LAMBDA_PARAMETERISATIONS",
    "GatedRNNEnsemble",
    "RecurrentBaseline",
    "lambda_of",
    "raw_of",
    "seeded_module",
]

LAMBDA_PARAMETERISATIONS = ("clamp", "sigmoid", "lru")
_EDGE = 1e-4  # initial lambdas of sigmoid/LRU students are kept this far inside (0, 1) so that nu is finite


def _check_kind(kind: str) -> str:
    if kind not in LAMBDA_PARAMETERISATIONS:
        raise ValueError(f"lambda parameterisation must be one of {LAMBDA_PARAMETERISATIONS}; got {kind!r}")
    return kind


def lambda_of(nu: Tensor, kind: str) -> Tensor:
    r"""$\lambda$ from the raw parameter $\nu$: ``clamp`` $\nu$ (kept in $[0,1]$ by projection),
    ``sigmoid`` $\sigma(\nu)$, ``lru`` $\exp(-\exp\nu)$."""
    _check_kind(kind)
    if kind == "clamp":
        return nu
    if kind == "sigmoid":
        return torch.sigmoid(nu)
    return torch.exp(-torch.exp(nu))


def raw_of(lam: Tensor, kind: str) -> Tensor:
    r"""Inverse of :func:`lambda_of` (``lam`` strictly inside $(0,1)$ for ``sigmoid`` and ``lru``)."""
    _check_kind(kind)
    if kind == "clamp":
        return lam.clone()
    if kind == "sigmoid":
        return torch.logit(lam)
    return torch.log(-torch.log(lam))


def seeded_module(seed: int, factory):
    """Build a ``torch.nn`` module whose default initialisation draws from ``seed``, leaving the global RNG as
    it was (``torch.random.fork_rng``): seeds stay explicit arguments, never hidden state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


class GatedRNNEnsemble(nn.Module):
    r"""``K`` independent gated linear RNN students (Zucchet et al. 2023, Sec. 3), evaluated together.

    **Arguments**

    - ``sizes``: hidden size $n_k$ of each student (neurons beyond $n_k$ are masked to zero).
    - ``d``, ``d_out``: input and output widths; ``gates``: output-gating width $m$ (shared).
    - ``seeds``: one initialisation seed per student (a ``torch.Generator`` each).
    - ``lam_kind``: ``"clamp"`` (default), ``"sigmoid"`` or ``"lru"`` (see the module docstring).
    - ``lam_init``: initial $\lambda\sim U(\text{lo}, \text{hi})$.
    - ``dtype``, ``device``: of the parameters (training runs in float32; analyses export float64).

    - ``init_scale``: multiplies the standard deviations of the initialisation
      $A, B\sim\mathcal N(0, 1/(d+1))$, $C, E\sim\mathcal N(0, 1/n_k)$, $D\sim\mathcal N(0, 1/m)$.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        d: int,
        d_out: int,
        gates: int,
        *,
        seeds: Sequence[int],
        lam_kind: str = "clamp",
        lam_init: tuple[float, float] = (0.5, 1.0),
        init_scale: float = 1.0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        sizes = [int(n) for n in sizes]
        seeds = [int(s) for s in seeds]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"sizes must be a non-empty list of hidden sizes >= 1; got {sizes}")
        if len(seeds) != len(sizes):
            raise ValueError(f"give one seed per student: {len(sizes)} sizes but {len(seeds)} seeds")
        for name, v in (("d", d), ("d_out", d_out), ("gates", gates)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1; got {v!r}")
        lo, hi = lam_init
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"lam_init must satisfy 0 <= lo <= hi <= 1; got {lam_init}")
        self.lam_kind = _check_kind(lam_kind)
        self.sizes, self.seeds = sizes, seeds
        n, m = max(sizes), gates
        shapes = {"A": (n, d + 1), "B": (n, d + 1), "C": (m, n), "E": (m, n), "D": (d_out, m)}
        init = {k: [] for k in (*shapes, "nu")}
        for n_k, seed in zip(sizes, seeds):
            g = torch.Generator().manual_seed(seed)
            std = {"A": (d + 1) ** -0.5, "B": (d + 1) ** -0.5, "C": n_k**-0.5, "E": n_k**-0.5, "D": m**-0.5}
            std = {k: v * init_scale for k, v in std.items()}
            for name, shape in shapes.items():
                init[name].append(torch.randn(*shape, generator=g, dtype=torch.float64) * std[name])
            lam = lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
            if lam_kind != "clamp":
                lam = lam.clamp(_EDGE, 1 - _EDGE)
            init["nu"].append(raw_of(lam, lam_kind))
        for name, parts in init.items():
            setattr(self, name, nn.Parameter(torch.stack(parts).to(dtype=dtype, device=device)))
        mask = torch.arange(n)[None, :] < torch.tensor(sizes)[:, None]
        self.register_buffer("mask", mask.to(dtype=dtype, device=device))

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def K(self) -> int:
        return len(self.sizes)

    @property
    def d(self) -> int:
        return self.A.shape[2] - 1

    @property
    def d_out(self) -> int:
        return self.D.shape[1]

    @property
    def gates(self) -> int:
        return self.C.shape[1]

    def lam(self) -> Float[Tensor, "K n"]:
        """$\\lambda$ of every student (padded neurons included)."""
        return lambda_of(self.nu, self.lam_kind)

    @torch.no_grad()
    def project_(self) -> None:
        """Projection step of projected Adam: clamp $\\lambda$ into $[0, 1]$ (``clamp`` students only)."""
        if self.lam_kind == "clamp":
            self.nu.clamp_(0.0, 1.0)

    # -- evaluation ----------------------------------------------------------------------------
    # At training sizes every op costs its dispatch, not its arithmetic: the forward is a handful of batched
    # matrix products (the two input gates in one, the two output gates in one) instead of einsums.
    def _drive(self, x: Tensor) -> Tensor:
        r"""$u_t = (A\tilde x_t)\odot(B\tilde x_t)$ as ``[K, B, T, n]`` (one ``baddbmm`` for both gates:
        the bias column of $A, B$ multiplies the constant input 1)."""
        xs = x if x.ndim == 4 else x.expand(self.K, *x.shape)
        K, Bn, Tn, d = xs.shape
        W = torch.cat([self.A * self.mask[:, :, None], self.B], dim=1)  # [K, 2n, d+1]
        ab = torch.baddbmm(W[:, None, :, d], xs.reshape(K, Bn * Tn, d), W[:, :, :d].transpose(1, 2))
        a, b = ab.chunk(2, dim=-1)
        return (a * b).reshape(K, Bn, Tn, -1)

    def _powers(self, T: int) -> Tensor:
        r"""$\lambda^l$ for lags $l = 0..T-1$ as ``[K, n, T]``, by repeated products (a cumulative product:
        exact at $\lambda = 0$, and differentiable there, unlike ``pow``)."""
        lam = self.lam()
        seq = torch.cat([torch.ones_like(lam)[..., None], lam[..., None].expand(*lam.shape, T - 1)], dim=-1)
        return torch.cumprod(seq, dim=-1)

    def _readout(self, h: Tensor) -> Tensor:
        r"""$y = D\,[(Ch)\odot(Eh)]$ for ``h`` ``[K, ..., n]`` (one ``bmm`` for both output gates)."""
        K, n = h.shape[0], h.shape[-1]
        z = torch.bmm(h.reshape(K, -1, n), torch.cat([self.C, self.E], dim=1).transpose(1, 2))
        zc, ze = z.chunk(2, dim=-1)
        y = torch.bmm(zc * ze, self.D.transpose(1, 2))
        return y.reshape(*h.shape[:-1], y.shape[-1])

    def _lags(self, T: int, device) -> tuple[Tensor, Tensor]:
        """The lag index ``clamp(t - s, 0)`` and the causal mask ``t >= s`` of a ``[T, T]`` window (cached:
        every training step asks for the same ones)."""
        key = (T, str(device))
        cache = self.__dict__.setdefault("_lag_cache", {})
        if key not in cache:
            lag = torch.arange(T, device=device)[:, None] - torch.arange(T, device=device)[None, :]
            cache[key] = (lag.clamp(min=0), lag >= 0)
        return cache[key]

    def forward(self, x: Float[Tensor, "*K batch time d"], *, last_only: bool = False) -> Tensor:
        r"""Outputs ``[K, B, T, d_out]`` (or ``[K, B, d_out]`` with ``last_only``) for ``x`` ``[B, T, d]``
        (shared by all students) or ``[K, B, T, d]`` (one batch per student).

        $h_t = \sum_{s\le t}\lambda^{t-s}u_s$ is evaluated as one product with the Toeplitz matrix of
        powers of $\lambda$: for the short training sequences this is the fastest exact form on CPU.
        """
        if x.ndim not in (3, 4) or x.shape[-1] != self.d or (x.ndim == 4 and x.shape[0] != self.K):
            raise ValueError(
                f"x must be [batch, time, {self.d}] or [{self.K}, batch, time, {self.d}]; "
                f"got {tuple(x.shape)}"
            )
        u = self._drive(x)  # [K, B, T, n]
        T = u.shape[2]
        P = self._powers(T)  # [K, n, lag]
        if last_only:
            h = torch.einsum("kns,kbsn->kbn", P.flip(-1), u)
            return self._readout(h)
        idx, causal = self._lags(T, u.device)
        L = torch.where(causal, P[:, :, idx], 0.0)  # [K, n, t, s] = lambda^(t-s), causal
        h = torch.einsum("knts,kbsn->kbtn", L, u)
        return self._readout(h)

    # -- export --------------------------------------------------------------------------------
    def student(
        self, k: int, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> GatedLinearRNN:
        """Student ``k`` as a :class:`~constructions.rnn.GatedLinearRNN` (its ``n_k`` neurons, detached;
        float64 on CPU by default, where every measurement is made)."""
        if not 0 <= k < self.K:
            raise ValueError(f"student index must be in [0, {self.K}); got {k}")
        n = self.sizes[k]
        with torch.no_grad():
            w = [
                self.A[k, :n],
                self.B[k, :n],
                self.lam()[k, :n],
                self.C[k, :, :n],
                self.E[k, :, :n],
                self.D[k],
            ]
            return GatedLinearRNN(*(t.detach().to(device=device, dtype=dtype).clone() for t in w))

    def student_state(self, k: int) -> dict[str, Tensor]:
        """Student ``k``'s weights as a plain state dict (``A, B, lam, C, E, D``) for checkpoints."""
        rnn = self.student(k)
        return {name: t.detach().clone() for name, t in rnn.weights()._asdict().items()}


class RecurrentBaseline(nn.Module):
    """An LSTM or GRU student (``torch.nn``) with a linear readout of every hidden state."""

    def __init__(
        self,
        cell: str,
        d: int,
        d_out: int,
        hidden: int,
        *,
        seed: int,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru'; got {cell!r}")
        self.cell = cell
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = seeded_module(seed, lambda: rnn_cls(d, hidden, batch_first=True))
        self.readout = seeded_module(seed + 1, lambda: nn.Linear(hidden, d_out))
        self.to(dtype=dtype, device=device)

    def forward(self, x: Float[Tensor, "batch time d"], *, last_only: bool = False) -> Tensor:
        h = self.rnn(x)[0]
        return self.readout(h[:, -1] if last_only else h)
