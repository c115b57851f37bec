"""``ticketlab`` processes started warm: forked from an interpreter that has already imported the
command line (and, when asked, torch), instead of a fresh ``python -m ticketlab`` that spends one
to three seconds of CPU on the same imports before it reads its first option.

A warm process is still a real process: its own pid, exit status, resource limits and file
descriptors (stdin ``/dev/null``, stdout and stderr files), its own copy of the interpreter's
memory (nothing one command does is seen by the next: each is forked from the same untouched
interpreter), its own environment and working folder. It runs ``ticketlab/__main__.py`` as
``python -m ticketlab`` does (or a ``-c`` script as ``python -c`` does) at the interpreter's top
level, so an uncaught exception, ``sys.exit``, atexit handlers and the flushing of output end it
exactly as they end a fresh process. What it does not repeat is the start: the warm interpreter is
started once per environment, with that environment (so anything read at import time reads the
same), and refuses to serve if its imports printed or warned, which a fresh process would have
shown. Only the memory that the shared imports occupy is counted differently (the pages a child
has not touched since the fork), so tests that bound a process's peak memory preload nothing but
the command line, as their fresh ``-c`` script did first. test_warm.py checks that warm and fresh
processes give the same exit status, stdout and stderr.

Example:
    >>> proc = run(["list", "miners"], timeout=60)
    >>> proc.returncode, "synflow" in proc.stdout
    (0, True)
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The warm interpreter. Requests (one JSON line) come on stdin and replies go to stdout, read and
# written with os.read/os.write so that no Python-level buffer holds bytes a child would inherit.
# A child breaks out of the loop and runs the command at the top level of this script.
_SERVER = r'''
import json, os, sys, warnings
noise = os.open(sys.argv[1], os.O_WRONLY)
saved = os.dup(1), os.dup(2)
os.dup2(noise, 1)
os.dup2(noise, 2)
with warnings.catch_warnings(record=True) as caught:  # the filters a fresh process has
    import ticketlab.cli.main
    for name in sys.argv[2:]:
        __import__(name)
sys.stdout.flush()
sys.stderr.flush()
os.dup2(saved[0], 1)
os.dup2(saved[1], 2)
for fd in (noise, *saved):
    os.close(fd)
os.write(1, (json.dumps({"warnings": [str(w.message) for w in caught]}) + "\n").encode())
del noise, saved, caught
import gc
gc.freeze()  # the imports' objects out of the collector's sight: a child's exit then copies far fewer pages
while True:
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 1 << 16)
        if not chunk:
            sys.exit(0)
        line += chunk
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        break
    os.write(1, (json.dumps({"pid": pid}) + "\n").encode())
    os.write(1, (json.dumps({"status": os.waitpid(pid, 0)[1]}) + "\n").encode())
del line, chunk, pid
os.chdir(request["cwd"])
os.environ.clear()
os.environ.update(request["env"])
for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                        (2, request["stderr"], os.O_WRONLY)):
    opened = os.open(path, flags)
    os.dup2(opened, fd)
    os.close(opened)
if request["address_space"] is not None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (request["address_space"],) * 2)
if request["code"] is None:  # python -m ticketlab ARGS
    import runpy
    sys.argv = ["-m", *request["args"]]
    del request
    runpy._run_module_as_main("ticketlab")
else:  # python -c CODE ARGS
    sys.argv = ["-c", *request["args"]]
    exec(compile(request.pop("code"), "<string>", "exec"))
'''

# Variables that change from test to test in the same pytest process and that nothing reads at
# import time: a child gets them, the warm interpreter is not started again for them.
_PER_TEST = ("PYTEST_CURRENT_TEST",)


class _Server:
    def __init__(self, env: dict[str, str], preload: tuple[str, ...]) -> None:
        with tempfile.NamedTemporaryFile(prefix="warm-noise-", delete=False) as fh:
            noise = Path(fh.name)
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(noise), *preload], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         cwd=ROOT)
            self.buffer = b""
            ready = self._reply(300)
            printed = noise.read_bytes()
        finally:
            noise.unlink()
        if ready is None or ready["warnings"] or printed:
            self.close()
            raise RuntimeError(f"importing the command line{' and ' + ', '.join(preload) if preload else ''} "
                               f"printed {printed[-2000:]!r} and warned {ready and ready['warnings']}: a fresh "
                               "process would show that, so a warm one cannot stand for it")

    def _reply(self, timeout: float | None) -> dict | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            if not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the warm interpreter ended (exit {self.proc.wait()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, request: dict, timeout: float | None) -> int:
        os.write(self.proc.stdin.fileno(), (json.dumps(request) + "\n").encode())
        pid = self._reply(60)["pid"]
        reply = self._reply(timeout)
        if reply is None:  # what subprocess.run does on a timeout: kill, wait, raise
            os.kill(pid, signal.SIGKILL)
            self._reply(None)
            raise subprocess.TimeoutExpired(request["args"], timeout)
        return os.waitstatus_to_exitcode(reply["status"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_servers: dict[tuple, _Server] = {}  # the most recently used last
_KEEP = 2  # warm interpreters kept at once (one with torch holds ~700 MB); the least recently used goes


@atexit.register
def _close_all() -> None:
    for server in _servers.values():
        server.close()


def _text(data: bytes) -> str:
    """What ``subprocess.run(..., text=True)`` makes of the bytes: the locale's encoding, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def run(args: list, *, env: dict[str, str] | None = None, cwd: Path | str | None = None,
        timeout: float | None = None, preload: tuple[str, ...] = (), code: str | None = None,
        address_space: int | None = None) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([sys.executable, "-m", "ticketlab", *args], capture_output=True, text=True,
    stdin=DEVNULL, env=env, cwd=cwd, timeout=timeout)``, started warm; with ``code``, ``python -c
    code *args`` instead. ``preload`` names modules the warm interpreter imports beforehand (torch
    for commands that import it anyway); ``address_space`` is an RLIMIT_AS for the process."""
    env = dict(os.environ if env is None else env)
    key = (tuple(sorted((k, v) for k, v in env.items() if k not in _PER_TEST)), tuple(preload))
    server = _servers.pop(key, None)
    if server is None or server.proc.poll() is not None:
        while len(_servers) >= _KEEP:
            _servers.pop(next(iter(_servers))).close()
        server = _Server({k: v for k, v in env.items() if k not in _PER_TEST}, tuple(preload))
    _servers[key] = server
    args = [str(a) for a in args]
    with tempfile.TemporaryDirectory(prefix="warm-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        out.touch(0o600)
        err.touch(0o600)
        request = {"args": args, "code": code, "env": env, "cwd": str(Path(cwd or os.getcwd()).resolve()),
                   "stdout": str(out), "stderr": str(err), "address_space": address_space}
        returncode = server.run(request, timeout)
        shown = [sys.executable, *(["-c", code] if code is not None else ["-m", "ticketlab"]), *args]
        return subprocess.CompletedProcess(shown, returncode, _text(out.read_bytes()), _text(err.read_bytes()))
