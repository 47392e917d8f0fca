r"""In-context linear regression tasks and the one-step gradient-descent baseline (von Oswald et al. 2023).

Protocol (von Oswald et al. 2023, *Transformers learn in-context by gradient descent*, as used by
Zucchet et al. 2023, Experiment 2): a task is $w\sim\mathcal N(0,I_d)$; inputs $x_i\sim U(-1,1)^d$;
targets $y_i=w^\top x_i$. A sequence holds $N$ context tokens $e_i=(x_i, y_i)$ and one query token
$e_{N+1}=(x_\text{test}, 0)$; the model's output at the query token predicts $y_\text{test}$ (loss on the
last token only). Scaling checks multiply the inputs by $\alpha_x$ or the task weights by $\alpha_w$.

One step of gradient descent on $L(W)=\frac1{2N}\sum_i\|Wx_i-y_i\|^2$ from $W_0=0$ gives
$W_1=\frac\eta N\sum_i y_ix_i^\top$ and the prediction

$$ \hat y_\text{GD}=\frac{\eta}{N}\sum_{i=1}^N y_i\,x_i^\top x_\text{test},\qquad
   \frac{\partial\hat y_\text{GD}}{\partial x_\text{test}}=\frac\eta N\sum_i y_ix_i . $$

$\hat y_\text{GD}=\eta g$ is linear in $\eta$, so the line search over $\eta$ is exact:
$\eta^\star=\mathbb E[y_\text{test}\,g]/\mathbb E[g^2]$ on a large sample (:func:`line_search_eta`).
"""

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["sample_tasks", "gd_direction", "gd_prediction", "line_search_eta"]


def sample_tasks(
    batch: int,
    d: int,
    N: int,
    *,
    generator: torch.Generator,
    alpha_x: float = 1.0,
    alpha_w: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[Float[Tensor, "batch tokens d_plus_1"], Float[Tensor, " batch"]]:
    """``(tokens [batch, N+1, d+1], y_test [batch])``: ``N`` context pairs and the query ``(x_test, 0)``."""
    for name, v in (("batch", batch), ("d", d), ("N", N)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    w = torch.randn(batch, d, generator=generator, dtype=dtype, device=device) * alpha_w
    x = (torch.rand(batch, N + 1, d, generator=generator, dtype=dtype, device=device) * 2 - 1) * alpha_x
    y = torch.einsum("btd,bd->bt", x, w)
    tokens = torch.cat([x, y[..., None]], dim=-1)
    tokens[:, -1, d] = 0  # the query token carries no target
    return tokens, y[:, -1]


def gd_direction(tokens: Float[Tensor, "batch tokens d_plus_1"]) -> Float[Tensor, "batch d"]:
    r"""$\frac1N\sum_i y_i x_i$ (the GD weight update per unit $\eta$): the gradient of $\hat y_\text{GD}$
    with respect to $x_\text{test}$, divided by $\eta$."""
    d = tokens.shape[-1] - 1
    ctx = tokens[:, :-1]
    return (ctx[..., d:] * ctx[..., :d]).mean(dim=1)


def gd_prediction(tokens: Float[Tensor, "batch tokens d_plus_1"], eta: float) -> Float[Tensor, " batch"]:
    r"""$\hat y_\text{GD}=\frac\eta N\sum_i y_i x_i^\top x_\text{test}$."""
    d = tokens.shape[-1] - 1
    return eta * (gd_direction(tokens) * tokens[:, -1, :d]).sum(-1)


def line_search_eta(d: int, N: int, *, tasks: int = 100_000, generator: torch.Generator) -> float:
    r"""The MSE-optimal $\eta$ of one GD step, $\mathbb E[y\,g]/\mathbb E[g^2]$ over ``tasks`` fresh tasks
    (float64)."""
    tokens, y = sample_tasks(tasks, d, N, generator=generator, dtype=torch.float64)
    g = gd_prediction(tokens, 1.0)
    return float((y * g).mean() / (g * g).mean())
