r"""Gated linear RNNs, linear self-attention and the exact constructions between them.

Zucchet et al., *Gated recurrent neural networks discover attention*, arXiv 2309.01775 (2023).

Glossary (code name → paper symbol → where):

============================  =====================================  ==============================
code                          symbol                                 Zucchet et al. 2023
============================  =====================================  ==============================
``x``, ``augment(x)``         $x_t$, $\tilde x_t = [x_t; 1]$          Sec. 3 (constant 1 appended)
``A``, ``B``                  $W^{in}_x$, $W^{in}_g$ (input gating)   Sec. 3, Fig. 1
``lam``                       $\lambda$ (diagonal recurrence)         Sec. 3, $h_t=\lambda\odot h_{t-1}+u_t$
``u``, ``h``                  input-gated drive $u_t$, state $h_t$   Sec. 3
``C``, ``E``                  $W^{out}_x$, $W^{out}_g$ (output gate) Sec. 3, Fig. 1
``D``                         linear readout $D$                     Sec. 3
``W_Q``, ``W_K``, ``W_V``     $W_Q, W_K, W_V$ (linear attention)     Sec. 3, LSA
``S``                         $S_t=\sum_{s\le t} v_s k_s^\top$       derived (memory of LSA)
``kv[h,i,j]``, ``q[h,j]``     key-value ($\lambda=1$) / query ($\lambda=0$) neurons   Sec. 3, App. A
============================  =====================================  ==============================
"""

from .attention import LinearSelfAttention
from .lsa import (
    attention_tensor,
    compressed_weights,
    direct_weights,
    lsa_to_rnn,
    num_neurons_compressed,
    num_neurons_direct,
    rnn_to_lsa,
)
from .rnn import GatedLinearRNN, RNNWeights

__all__ = [
    "LinearSelfAttention",
    "GatedLinearRNN",
    "RNNWeights",
    "lsa_to_rnn",
    "rnn_to_lsa",
    "attention_tensor",
    "direct_weights",
    "compressed_weights",
    "num_neurons_direct",
    "num_neurons_compressed",
]

from .registry import LSAParams, Variant, available, get, register, unregister  # noqa: E402

__all__ += ["Variant", "register", "get", "available", "unregister", "LSAParams"]

from . import variants  # noqa: E402,F401  (registers the shipped gating variants: docs/variants/)
