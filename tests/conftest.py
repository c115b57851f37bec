"""Test-suite set-up: a private cache folder and a CPU-only torch with few threads."""

import os
import tempfile

import pytest

# Keep generated caches (MNIST-1D) out of the user's home, and CPU work predictable on 2 cores.
os.environ.setdefault("TICKETLAB_CACHE_DIR", tempfile.mkdtemp(prefix="ticketlab-test-cache-"))


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # metrics-only environments
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray runtime for the whole test run (its start-up costs seconds): ray.init(num_cpus=2).

    Tests that use it are grouped on one xdist worker (``xdist_group("ray")`` with the Makefile's
    ``--dist loadgroup``), so Ray starts once per suite. Skips when Ray is not installed.
    """
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'ticketlab[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()
