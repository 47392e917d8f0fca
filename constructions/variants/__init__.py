r"""The shipped gating variants: importing this package registers them.

Each module registers one family (``docs/variants/``): :mod:`.retention` (fixed and complex/rotary decay),
:mod:`.gla` (data-dependent scalar and per-key decay: simple GLA, Mamba-2, GLA, HGRN2), :mod:`.feature_maps`
(elu+1 and Based feature-map attention), :mod:`.normalized` (normalised linear attention, mLSTM: *partial*),
:mod:`.controls` (softmax attention and DeltaNet: *impossible*; the one-hot delta rule: exact),
:mod:`.fla_controls` (negative controls for the fla op families no template RNN is known to reach), and
the single-family modules :mod:`.gated_deltanet`, :mod:`.hgrn`, :mod:`.lightning`, :mod:`.mamba1`,
:mod:`.rebased`, :mod:`.rwkv6`; :mod:`.families` classifies every fla op family.
The shared machinery: :mod:`.reference` (float64 references, two forms each), :mod:`.plan` and
:mod:`.wiring` (how a variant maps onto the template), :mod:`.decay` (input-dependent decay), :mod:`.upstream`
(feature layers before the template), :mod:`.family` (the base class), :mod:`.oracle` (fla adapters).
"""

from . import controls, feature_maps, fla_controls, gla, normalized, retention  # noqa: F401  (registers)
from . import gated_deltanet, hgrn, lightning, mamba1, rebased, rwkv6  # noqa: F401  (registers)
from .decay import InputDependentDecay
from .family import PlanVariant
from .plan import ConstantDecay, InputDecay, NoDecay, Plan, Skip, build_rnn, compressed_reason
from .upstream import Upstream

__all__ = [
    "InputDependentDecay",
    "PlanVariant",
    "Plan",
    "NoDecay",
    "ConstantDecay",
    "InputDecay",
    "Skip",
    "build_rnn",
    "compressed_reason",
    "Upstream",
]
