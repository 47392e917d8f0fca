"""The three import packages must come from this repository, not from PyPI's unrelated
`equivalence` / `properties` distributions."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["constructions", "equivalence", "properties"])
def test_import_resolves_to_this_repository(name):
    mod = __import__(name)
    assert Path(mod.__file__).resolve().is_relative_to(ROOT / name), mod.__file__


def test_distribution_metadata():
    from importlib import metadata

    dist = metadata.distribution("attention-rnn-equivalence")
    assert dist.metadata["Name"] == "attention-rnn-equivalence"
    names = {Path(f).parts[0] for f in (dist.files or [])}
    # an editable install lists a .pth or the packages; either way no foreign 'equivalence' dist is used
    assert "attention-rnn-equivalence" in dist.metadata["Name"] and names
