r"""Classification of every sequence-mixer family of the oracle package (fla-core 0.6, ``fla/ops/*``) plus the
model-level families it does not ship (Mamba-1/S6, Mamba-2, xLSTM's mLSTM and sLSTM): one row each.

A row is *data*: the family, its status, the registered variants that carry the claim (where it can be
expressed on the template), the reason, the source paper and fla's reference function. The status of a
row with variants is **derived from the registry**, never typed in: ``exact``/``partial`` from the exact or
partial variant, ``impossible`` only from a negative control that declares an impossibility certificate
(``impossibility_claim``, checked by the prover on the control's own exact reference), ``refuted`` from a
control without one (its numeric check must find a counterexample). Rows without variants state
``unresolved`` (an argument in words, nothing machine-checked) or ``out-of-scope`` (not a causal sequence
mixer of tokens, or infrastructure). :func:`constructions.table.family_rows` renders the table.
"""

from dataclasses import dataclass

__all__ = ["Family", "FAMILIES", "ROW_STATUSES", "FLA_INFRASTRUCTURE"]

#: statuses a row may carry (the first four are derived from registered variants)
ROW_STATUSES = ("exact", "partial", "impossible", "refuted", "unresolved", "out-of-scope")

#: directories of ``fla/ops`` that hold shared kernels, not a family
FLA_INFRASTRUCTURE = ("common", "cp", "utils")


@dataclass(frozen=True)
class Family:
    """One row: ``family`` (an ``fla/ops`` directory, or ``model:NAME`` for a family fla-core does not ship),
    ``variants`` (registered names; the first carries the status), ``status`` (only for rows without
    variants: ``unresolved`` or ``out-of-scope``), ``formula`` (neurons), ``reason``, ``source``,
    ``oracle``."""

    family: str
    variants: tuple[str, ...] = ()
    status: str = ""
    formula: str = ""
    reason: str = ""
    source: str = ""
    oracle: str = ""

    def __post_init__(self):
        if self.variants and self.status:
            raise ValueError(
                f"{self.family}: a row with variants takes its status from them; got status={self.status!r}"
            )
        if not self.variants and self.status not in ("unresolved", "out-of-scope"):
            raise ValueError(
                f"{self.family}: a row without variants is 'unresolved' or 'out-of-scope'; "
                f"got {self.status!r}"
            )
        if not self.reason:
            raise ValueError(f"{self.family}: every row states its reason")


_DELTA_WHY = (
    "contains the delta rule's erase term S(I - beta k k^T) (products of Householder-like factors; the "
    "output's degree grows with T); no certificate for this family yet: the tried construction (LSA, with "
    "the forget gate as E1 decay where there is one) is refuted at a counterexample"
)

FAMILIES: tuple[Family, ...] = (
    # -- exact ------------------------------------------------------------------------------------
    Family(
        "linear_attn",
        ("lsa-direct", "lsa-compressed", "feature-map-attention", "normalized-linear-attention"),
        formula="H d_k(d_v+1); compressed d(d+1)/2 + d",
        reason="linear self-attention is the paper's construction; feature maps from an upstream layer; the "
        "normalised form is partial (division outside the template)",
        source="Katharopoulos et al. 2020; Zucchet et al. 2023",
        oracle="naive_recurrent_linear_attn",
    ),
    Family(
        "retention",
        ("retention", "retention-complex"),
        formula="H d_k(d_v+1)",
        reason="fixed per-head decay gamma_h (constant lambda); rotary form with complex lambda (E2)",
        source="Sun et al. 2023 (RetNet)",
        oracle="naive_retention; naive_recurrent_simple_gla",
    ),
    Family(
        "lightning_attn",
        ("lightning-attention",),
        formula="H d_k(d_v+1)",
        reason="retention with Lightning's fixed decays exp(-(8/H)(1 - l/L) h)",
        source="Qin et al. 2024 (Lightning Attention-2)",
        oracle="naive_recurrent_simple_gla (lightning_attn ships no naive reference)",
    ),
    Family(
        "simple_gla",
        ("simple-gla", "simple-gla-compressed"),
        formula="H d_k(d_v+1); compressed G d(d+1)/2 + d",
        reason="data-dependent scalar decay per head (E1)",
        source="Yang et al. 2024 (GLA)",
        oracle="naive_recurrent_simple_gla",
    ),
    Family(
        "gla",
        ("gla",),
        formula="H d_k(d_v+1)",
        reason="per-key data-dependent decay (E1); compressed form invalid",
        source="Yang et al. 2024 (GLA)",
        oracle="naive_recurrent_gla",
    ),
    Family(
        "model:hgrn2",
        ("hgrn2",),
        formula="H d_k(d_v+1)",
        reason="GLA with tied key 1 - alpha_t (fla runs HGRN2 through its gla op)",
        source="Qin et al. 2024 (HGRN2)",
        oracle="naive_recurrent_gla",
    ),
    Family(
        "hgrn",
        ("hgrn",),
        formula="2D",
        reason="element-wise gated recurrence: one head per channel, d_k = d_v = 1 (E1 + upstream sigma, "
        "SiLU)",
        source="Qin et al. 2023 (HGRN)",
        oracle="naive_recurrent_hgrn",
    ),
    Family(
        "based",
        ("based",),
        formula="H K'(d_v+1), K' = 1 + d_k + d_k(d_k+1)/2",
        reason="Taylor kernel 1 + s + s^2/2; key features k_a k_b from an upstream layer (cubic otherwise)",
        source="Arora et al. 2024 (Based)",
        oracle="naive_parallel_based",
    ),
    Family(
        "rebased",
        ("rebased",),
        formula="H K'(d_v+1), K' = d_k(d_k+1)/2",
        reason="kernel (q.k)^2; key features from an upstream layer; use_norm=True would be partial",
        source="Aksenov et al. 2024 (ReBased)",
        oracle="naive_parallel_rebased",
    ),
    Family(
        "rwkv6",
        ("rwkv6",),
        formula="2 H d_k(d_v+1)",
        reason="exact given a token-shift upstream block (one step of input memory, outside h): the output "
        "reads "
        "S_{t-1}, whose decay excludes w_t; the bonus u k_t v_t by lambda = 0 neurons",
        source="Peng et al. 2024 (Eagle and Finch)",
        oracle="naive_recurrent_rwkv6",
    ),
    Family(
        "model:mamba1",
        ("mamba1",),
        formula="2 D N + D + 1",
        reason="selective SSM: one head per channel, keys B_t, queries C_t, value dt u (upstream), per-key "
        "decay "
        "exp(dt A) (E1); fla-core ships no Mamba-1 op",
        source="Gu & Dao 2023 (Mamba); Ali et al. 2024 (hidden attention)",
        oracle="naive_recurrent_gla, one head per channel",
    ),
    Family(
        "model:mamba2",
        ("mamba2",),
        formula="H d_k(d_v+1) + H d_v + 1",
        reason="SSD with scalar A per head = simple GLA with v = dt x (upstream) plus the skip D x",
        source="Dao & Gu 2024 (Mamba-2)",
        oracle="naive_recurrent_simple_gla",
    ),
    Family(
        "gated_delta_rule",
        ("gated-deltanet", "gated-deltanet-no-erase"),
        formula="H d_k(d_v+1) (tried)",
        reason="with its erase term: out of reach (certificate on normalised q, k); without it (beta = 0 in "
        "the "
        "erase): Mamba-2 gating with input scale beta, exact (gated-deltanet-no-erase)",
        source="Yang, Kautz & Hatamizadeh 2025 (Gated DeltaNet)",
        oracle="naive_recurrent_gated_delta_rule",
    ),
    # -- partial --------------------------------------------------------------------------------------
    Family(
        "model:mlstm",
        ("mlstm",),
        formula="H d_k(d_v+2)",
        reason="numerator and normaliser reachable; the division by max(|n^T q|, 1) is outside the template",
        source="Beck et al. 2024 (xLSTM)",
        oracle="none in fla-core 0.6 (not shipped)",
    ),
    # -- impossible / refuted -------------------------------------------------------------------------
    Family(
        "attn",
        ("softmax-attention",),
        formula="H d_k(d_v+1) (tried)",
        reason="softmax is not a polynomial (fifth-derivative witness)",
        source="Vaswani et al. 2017",
        oracle="naive_parallel_attn",
    ),
    Family(
        "delta_rule",
        ("deltanet", "delta-rule-onehot"),
        formula="H d_k(d_v+1) (tried)",
        reason="products of (I - beta k k^T) (degree grows with T; certificate on normalised keys); exact "
        "for "
        "one-hot keys (delta-rule-onehot)",
        source="Schlag et al. 2021; Yang et al. 2024 (DeltaNet)",
        oracle="delta_rule_recurrence",
    ),
    # -- refuted at a counterexample: constructions.variants.fla_controls -----------------------------
    Family(
        "forgetting_attn",
        ("forgetting-attention",),
        formula="H d_k(d_v+1) (tried)",
        reason="softmax attention with a forget gate; at forget gates = 1 it is softmax attention (the "
        "softmax "
        "certificate's family), the control with the gate is refuted at a counterexample (no certificate "
        "with the gate yet)",
        source="Lin et al. 2025 (Forgetting Transformer)",
        oracle="naive_forgetting_attn",
    ),
    Family(
        "stickbreaking_attn",
        ("stickbreaking-attention",),
        formula="H d_k(d_v+1) (tried)",
        reason="stick-breaking weights prod (1 - sigmoid(q.k)) sigmoid(q.k): not polynomial in x; refuted "
        "at a counterexample",
        source="Tan et al. 2024 (Stick-breaking attention)",
        oracle="naive_stickbreaking_attn",
    ),
    Family(
        "path_attn",
        ("path-attention",),
        formula="H d_k(d_v+1) (tried)",
        reason="softmax over Householder-transformed positions (products of I - beta w w^T inside a "
        "softmax); refuted "
        "at a counterexample",
        source="Yang et al. 2025 (PaTH attention)",
        oracle="naive_path_attn",
    ),
    Family(
        "deltaformer",
        ("deltaformer",),
        formula="H d_k(d_v+1) (tried)",
        reason="softmax attention on delta-rule pseudo-values (a triangular solve inside a softmax); refuted "
        "at a counterexample",
        source="DeltaFormer (fla deltaformer)",
        oracle="naive_deltaformer_attn (naive.py loaded on its own)",
    ),
    Family(
        "abc",
        ("abc",),
        formula="H d_k(d_v+1) (tried)",
        reason="bounded-memory slots read through a softmax over slots; refuted at a counterexample",
        source="Peng et al. 2022 (ABC)",
        oracle="naive_recurrent_abc",
    ),
    Family(
        "gsa",
        ("gsa",),
        formula="H d_k(d_v+1) (tried)",
        reason="gated slot attention: GLA-style slot memories read through a softmax over slots; refuted "
        "at a counterexample",
        source="Zhang et al. 2024 (Gated Slot Attention)",
        oracle="naive_recurrent_gsa",
    ),
    Family(
        "log_linear_attn",
        ("log-linear-attention",),
        formula="H d_k(d_v+1) (tried)",
        reason="Fenwick-tree hierarchy of states with level weights: a sum of O(log T) decayed linear "
        "attentions "
        "whose level masks depend on t's binary digits (not a fixed diagonal recurrence); the "
        "Mamba-2-gated LSA is refuted at a counterexample",
        source="Guo et al. 2025 (Log-linear attention)",
        oracle="naive_log_linear_attn",
    ),
    Family(
        "parallax",
        ("parallax",),
        formula="H d_k(d_v+1) (tried)",
        reason="softmax-weighted values with a first-order correction (divisions by the softmax normaliser)",
        source="Parallax, arXiv 2605.29157 (fla parallax)",
        oracle="naive_parallax",
    ),
    Family(
        "wall_attn",
        ("wall-attention",),
        formula="H d_k(d_v+1) (tried)",
        reason="softmax attention variant (per-key decayed logits); refuted at a counterexample",
        source="fla wall_attn",
        oracle="naive_wall_attn (Triton prefix sum replaced)",
    ),
    Family(
        "comba",
        ("comba",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="Comba (fla comba)",
        oracle="naive_recurrent_comba",
    ),
    Family(
        "gated_delta_product",
        ("gated-delta-product",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="Siems et al. 2025 (DeltaProduct)",
        oracle="naive_recurrent_gated_delta_product",
    ),
    Family(
        "gdn2",
        ("gdn2",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="fla GDN-2 (channel-wise erase/write gates)",
        oracle="naive_recurrent_gdn2",
    ),
    Family(
        "kda",
        ("kda",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="Kimi Team 2025 (Kimi Delta Attention)",
        oracle="naive_recurrent_kda",
    ),
    Family(
        "precond_gated_delta_rule",
        ("precond-gated-deltanet",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="fla preconditioned GDN",
        oracle="naive_recurrent_precond_gated_delta_rule",
    ),
    Family(
        "precond_kda",
        ("precond-kda",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="fla preconditioned KDA",
        oracle="naive_recurrent_precond_kda",
    ),
    Family(
        "momentum_delta_rule",
        ("momentum-delta-rule",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY,
        source="fla momentum delta rule",
        oracle="recurrent_momentum_delta_rule_ref",
    ),
    Family(
        "generalized_delta_rule",
        ("dplr-delta-rule",),
        formula="H d_k(d_v+1) (tried)",
        reason=_DELTA_WHY + " (DPLR / IPLR transitions)",
        source="fla generalized delta rule (DPLR, IPLR)",
        oracle="dplr_recurrence",
    ),
    Family(
        "gated_oja_rule",
        ("gated-oja-rule",),
        formula="H d_k(d_v+1) (tried)",
        reason="Oja-rule update S(I - beta k k^T)-like erase; " + _DELTA_WHY,
        source="fla gated Oja rule",
        oracle="none on CPU (fused_recurrent_gated_oja_rule is Triton)",
    ),
    Family(
        "rwkv7",
        ("rwkv7",),
        formula="H d_k(d_v+1) (tried)",
        reason="generalised delta rule S(diag(w) - a b^T) + v k^T; " + _DELTA_WHY,
        source="Peng et al. 2025 (RWKV-7 Goose)",
        oracle="dplr_recurrence (rwkv7 ships no naive)",
    ),
    Family(
        "cyfa",
        ("cyfa",),
        formula="H d_k(d_v+1) (tried)",
        reason="delta-rule-style update with data-dependent rotations; " + _DELTA_WHY,
        source="fla CyFA",
        oracle="naive_recurrent_cyfa",
    ),
    Family(
        "mesa_net",
        ("mesa-net",),
        formula="H d_k(d_v+1) (tried)",
        reason="output solves (H_kk + lambda I) x = q (a linear solve, conjugate gradients): not "
        "polynomial; refuted at a counterexample",
        source="von Oswald et al. 2025 (MesaNet)",
        oracle="naive_mesa_net_exact",
    ),
    Family(
        "ttt",
        ("ttt-linear",),
        formula="H d_k(d_v+1) (tried)",
        reason="test-time training: inner gradient steps with LayerNorm on the fast weights "
        "(non-polynomial); refuted at a counterexample",
        source="Sun et al. 2024 (TTT)",
        oracle="chunk_ttt_linear_ref",
    ),
    Family(
        "titans",
        ("titans",),
        formula="H d_k(d_v+1) (tried)",
        reason="neural memory with momentum and weight decay on a normalised inner loss (non-polynomial); "
        "refuted at a counterexample",
        source="Behrouz et al. 2024 (Titans)",
        oracle="chunk_titans_linear_ref (use_chunk=False)",
    ),
    Family(
        "lightnet",
        ("lightnet",),
        formula="H d_k(d_v+1) (tried)",
        reason="additive recurrence normalised by a running logsumexp of keys (division by a running "
        "sum); refuted at a counterexample",
        source="LightNet (fla lightnet)",
        oracle="none on CPU (fused_recurrent_lightnet is Triton)",
    ),
    Family(
        "rwkv4",
        ("rwkv4",),
        formula="H d_k(d_v+1) (tried)",
        reason="WKV with exp(k) weights normalised by a running sum (division), with bonus u; refuted at "
        "a counterexample",
        source="Peng et al. 2023 (RWKV-4)",
        oracle="none on CPU (fused_recurrent_rwkv4 is Triton)",
    ),
    Family(
        "atk",
        status="out-of-scope",
        reason="a key preconditioner, not a mixer: k_t -> k_t M(A_t) with A_t a decayed running sum of k^2 "
        "per channel; it reads no values. Its families carry it: precond_gated_delta_rule, precond_kda",
        source="fla ATK",
        oracle="chunk_atk_fwd (Triton only)",
    ),
    Family(
        "model:slstm",
        ("slstm",),
        formula="H d_k(d_v+1) (tried)",
        reason="scalar LSTM with recurrent (hidden-to-hidden) weights and exponential gating: the gates read "
        "h_{t-1}, "
        "which the template's gates (functions of x_t only) cannot; normaliser division as in mLSTM",
        source="Beck et al. 2024 (xLSTM)",
        oracle="none in fla-core 0.6",
    ),
    # -- out of scope ---------------------------------------------------------------------------------
    Family(
        "nsa",
        status="out-of-scope",
        reason="native sparse attention: top-k block selection (discontinuous in x) around softmax attention",
        source="Yuan et al. 2025 (NSA)",
        oracle="naive_nsa",
    ),
    Family(
        "moba",
        status="out-of-scope",
        reason="mixture of block attention: top-k block routing + softmax",
        source="Lu et al. 2025 (MoBA)",
        oracle="parallel_moba (no naive)",
    ),
    Family(
        "dsa",
        status="out-of-scope",
        reason="DeepSeek sparse attention: a top-k indexer selects keys for softmax",
        source="DeepSeek 2025 (DSA)",
        oracle="naive_dsa",
    ),
    Family(
        "attnres",
        status="out-of-scope",
        reason="attention over residual streams of earlier layers (depth), not a mixer over time steps",
        source="Attention Residuals (arXiv 2603.15031)",
        oracle="naive_attnres",
    ),
)
