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
