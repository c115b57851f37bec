"""``warm.run`` stands for ``subprocess.run([python, "-m", "ticketlab", ...])``: the same exit status,
stdout and stderr (and files) as a fresh process, for a success, a refusal, a traceback, a ``-c``
script with atexit handlers, a timeout, an address-space limit and a per-call environment; and a
warm interpreter whose imports print or warn refuses to serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ticketlab
import warm

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", **extra}


def _fresh(args: list, *, code: str | None = None, **kw) -> subprocess.CompletedProcess[str]:
    head = ["-c", code] if code is not None else ["-m", "ticketlab"]
    return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kw)


def _same(a: subprocess.CompletedProcess[str], b: subprocess.CompletedProcess[str]) -> None:
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)


def test_a_mined_ticket_and_its_output_are_those_of_a_fresh_process(tmp_path: Path) -> None:
    args = ["mine", "--method", "snip", "--density", "0.2", "--seed", "3", "-o", "t.h5"]
    for where in ("fresh", "warm"):
        (tmp_path / where).mkdir()
    fresh = _fresh(args, env=_env(), cwd=tmp_path / "fresh", timeout=300)
    hot = warm.run(args, env=_env(), cwd=tmp_path / "warm", timeout=300, preload=("torch",))
    _same(hot, fresh)
    assert fresh.returncode == 0 and "snip ticket" in fresh.stdout
    a, b = ticketlab.load(tmp_path / "fresh" / "t.h5"), ticketlab.load(tmp_path / "warm" / "t.h5")
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks) and list(a.masks) == list(b.masks)


@pytest.mark.parametrize("args", [
    ["inspect", "missing.h5"],                   # a refusal: one line, exit 2
    ["mine", "--method", "synflw"],              # a typo: one line with a suggestion
    ["compare", "--metric", "nope", "a", "b"],   # click's usage error, with the program's name
    ["list", "models"],                          # a success
])
def test_output_and_exit_status_equal_a_fresh_process(tmp_path: Path, args: list[str]) -> None:
    _same(warm.run(args, env=_env(), cwd=tmp_path, timeout=60), _fresh(args, env=_env(), cwd=tmp_path, timeout=60))


def test_an_uncaught_exception_ends_it_as_it_ends_a_fresh_process(tmp_path: Path) -> None:
    args = ["--debug", "inspect", "missing.h5"]
    hot, fresh = warm.run(args, env=_env(), cwd=tmp_path, timeout=60), _fresh(args, env=_env(), cwd=tmp_path, timeout=60)
    assert hot.returncode == fresh.returncode == 1 and hot.stdout == fresh.stdout == ""
    assert hot.stderr.startswith("Traceback") and hot.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1]


CODE = """import atexit, os, sys
atexit.register(lambda: print("atexit", flush=True))
print(sys.argv, os.environ.get("WARM_TEST"), os.getcwd() == sys.argv[1], file=sys.stderr)
print("no newline at the end", end="")
sys.exit(int(sys.argv[2]))
"""


def test_a_c_script_gets_its_argv_environment_folder_and_atexit(tmp_path: Path) -> None:
    for value, status in (("one", 0), ("two", 3)):  # a variable per call, the same warm interpreter
        args = [tmp_path, status]
        hot = warm.run(args, code=CODE, env=_env(WARM_TEST=value), cwd=tmp_path, timeout=60)
        _same(hot, _fresh(args, code=CODE, env=_env(WARM_TEST=value), cwd=tmp_path, timeout=60))
        assert hot.returncode == status and f"'{tmp_path}', '{status}'] {value} True" in hot.stderr
        assert hot.stdout == "no newline at the endatexit\n"


def test_a_timeout_kills_it_and_raises_as_subprocess_run_does() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        warm.run([], code="import time; time.sleep(60)", env=_env(), timeout=1)
    assert warm.run([], code="print('still serving')", env=_env(), timeout=60).stdout == "still serving\n"


def test_the_address_space_limit_applies_to_the_process() -> None:
    code = "b = bytearray(2 * 2**30)"
    limited = warm.run([], code=code, env=_env(), timeout=60, address_space=2**30)
    assert limited.returncode == 1 and limited.stderr.splitlines()[-1] == "MemoryError"
    assert warm.run([], code="b = bytearray(2**20)", env=_env(), timeout=60, address_space=2**30).returncode == 0


@pytest.mark.parametrize("module, what", [("loud", "print('hello')"),
                                          ("wary", "import warnings; warnings.warn('careful')")])
def test_imports_that_print_or_warn_refuse_to_serve(tmp_path: Path, module: str, what: str) -> None:
    (tmp_path / f"{module}.py").write_text(what + "\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with pytest.raises(RuntimeError, match="a fresh process would show that"):
        warm.run(["list"], env=env, timeout=60, preload=(module,))
