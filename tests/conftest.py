"""Test configuration: Hypothesis profiles, the --device option, float32 matmul precision.

Project packages are imported inside fixtures/tests only (the jaxtyping import hook must instrument
them first; see docs/engineering notes)."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_float32_matmul_precision("highest")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one intra-op thread per xdist worker: the suite is many tiny ops, and oversubscribed threads made
    # it ~3x slower on 2 cores (workers already use every core)
    torch.set_num_threads(1)

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci",
    parent=settings.get_profile("ci"),
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        action="store",
        default="cpu",
        help="device for candidate computations: cpu (default) or cuda",
    )


@pytest.fixture(scope="module")
def fo():
    """``constructions.variants.oracle`` (fla's naive references), or skip with the reason fla is unusable."""
    from constructions.variants import oracle  # lazy: imports fla only for the tests that ask for it

    reason = oracle.fla_status()
    if reason is not None:
        pytest.skip(reason)
    return oracle


@pytest.fixture(scope="session")
def device(request) -> str:
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("--device cuda requested but CUDA is not available")
    return name


def pytest_collection_modifyitems(config, items):
    cuda = torch.cuda.is_available()
    skip = pytest.mark.skip(reason="needs CUDA (run on a GPU machine with -m gpu)")
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(skip)
