"""Test-suite set-up: a private cache folder, a CPU-only torch with few threads, and a check that
the suite leaves ``../shared`` (the shared data next to the checkout) exactly as it found it."""

import os
import tempfile
from pathlib import Path

import pytest

from sharedguard import changes, fingerprint

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
_SHARED_BEFORE = pytest.StashKey["dict | None"]()
_SHARED_CHANGES = pytest.StashKey[list]()

# Keep generated caches (MNIST-1D) out of the user's home, and CPU work predictable on 2 cores.
os.environ.setdefault("TICKETLAB_CACHE_DIR", tempfile.mkdtemp(prefix="ticketlab-test-cache-"))
# No timed progress lines: a CLI test slower than 30 s would get one in its output, depending on the
# machine's load. test_frictions.py tests the lines with a short interval of its own.
os.environ.setdefault("TICKETLAB_PROGRESS_SECONDS", "0")


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


# ../shared is unchanged after the suite. With pytest-xdist the tests run in worker processes, and
# only the controller sees the whole run: it takes the fingerprint before any worker starts
# (pytest_configure) and compares it after every worker has finished (pytest_sessionfinish). A
# difference fails the run (exit status 1) and is listed in the terminal summary. Workers skip
# both hooks. Tests that need the shared files read them, or copy them into tmp_path first.
def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config):
        config.stash[_SHARED_BEFORE] = fingerprint(SHARED)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not _is_controller(config) or _SHARED_BEFORE not in config.stash:
        return
    found = changes(config.stash[_SHARED_BEFORE], fingerprint(SHARED))
    if found:
        config.stash[_SHARED_CHANGES] = found
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    found = config.stash.get(_SHARED_CHANGES, [])
    if found:
        terminalreporter.section(f"FAILED: the tests changed {SHARED}", sep="=", red=True, bold=True)
        for line in found[:50]:
            terminalreporter.write_line(line)
        if len(found) > 50:
            terminalreporter.write_line(f"... and {len(found) - 50} more")


#: Variables that change what ticketlab prints or allows; libraries set others on import (torch: KMP_*).
_WATCHED = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TERM", "TZ")


@pytest.fixture(autouse=True)
def _no_environment_leaks(request):
    """A test leaves the environment as it found it: a variable it sets (COLUMNS, a TICKETLAB_
    limit, ...) would change what later tests in the same worker print or allow."""
    def watched() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k in _WATCHED or k.startswith("TICKETLAB_")}

    before = watched()
    yield
    after = watched()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        for k in changed:  # put it back, so that one leak fails one test, not every later one
            if k in before:
                os.environ[k] = before[k]
            else:
                os.environ.pop(k, None)
        pytest.fail(f"{request.node.nodeid} changed the environment: {', '.join(changed)}", pytrace=False)
