"""User-module templates shared by the tests that play a reader: each is the source of a ``.py`` file a
test writes and passes to ``--import`` (or imports itself). Load with ``runpy.run_path`` (tests are imported
with ``--import-mode=importlib``, so this folder is not on ``sys.path``)."""

import textwrap

#: a user variant: ``lsa-direct`` whose readout (the output gate weights ``D``) is scaled by ``{scale}``;
#: correct at ``scale=1.0``, a planted bug otherwise. Fill ``{name}`` (its registry name) and ``{scale}``.
SCALED_READOUT = textwrap.dedent('''
    import torch
    import constructions

    _base = type(constructions.get("lsa-direct"))


    @constructions.register("{name}")
    class ScaledReadout(_base):
        """lsa-direct with its readout (output gate weights) scaled by {scale}."""

        def construct(self, params):
            rnn = super().construct(params)
            with torch.no_grad():
                rnn.D.mul_({scale})
            return rnn
    ''')


def scaled_readout(name: str, scale: float) -> str:
    """The source of the :data:`SCALED_READOUT` module registering ``name`` with readout scale ``scale``."""
    return SCALED_READOUT.format(name=name, scale=scale)
