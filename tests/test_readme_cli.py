"""The README's CLI tour, run line by line as a user in a fresh clone would type it.

Where it runs: a copy of the checkout's tracked files (what a fresh clone holds) in a temporary
folder, next to a link ``shared`` -> the real ``../shared``, so that the tour's
``--data-root ../shared/data/planetoid`` resolves exactly as it does from the repository root.
The link is safe: the Planetoid loader reads private copies of the raw files, and conftest.py
fails the run if anything under ``../shared`` changes. Each line is read by ``bash`` (globs and
quotes work as written), one at a time, with the venv's ``bin`` first on ``PATH`` (what
``source .venv/bin/activate`` does) and one torch thread. The first command, and any line with
shell syntax beyond words (``;``, ``|``, ``>``, ...), runs through bash and the installed
``ticketlab`` script as typed; the others run as warm ``ticketlab`` processes (:mod:`warm`: real
processes in the clone, with that environment, the arguments bash makes of the line, and torch
imported beforehand), which saves a fresh interpreter's imports, some seconds, on each of ~30 lines.

How a line is read:
- ``# ...`` is a comment: comment-only lines are continuations and run nothing. Hints in comments
  ("Ctrl-C, then --resume") are not acted on; interruption and ``--resume`` are tested in
  test_imp.py and test_study.py.
- ``[...]`` is optional: the line runs without it, then once more with it (``inspect a.h5 --json``
  must print JSON).
- Every other line must exit 0 without a traceback. Lines that are too slow for CI are listed in
  FASTER, each with its reason: they run with options appended (click keeps an option's last
  value, so the README's own options are still parsed), or with a smaller copy of the study file
  they name. Each entry must match exactly one line, so an edit of the README cannot silently
  leave a slow line at full cost or an entry pointing at nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from warm import run as warm_run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("readme_cli")]


@dataclass(frozen=True)
class Faster:
    """How one slow tour line is cut for CI, and why."""

    pattern: str  # regular expression that matches exactly one tour command
    why: str
    append: tuple[str, ...] = ()  # options appended to the command
    study: tuple[tuple[str, str], ...] = ()  # `key = value` lines replaced in the study file's copy


FASTER = [
    Faster(r"^ticketlab mine --method imp\b", "6 trainings of 20 epochs: about 9 s of the line's 14 s",
           ("--train-epochs", "3")),  # rewind:50 needs 50 iterations: 3 epochs
    Faster(r"^ticketlab mine --method gem_miner\b", "its default score training: about 8 s of 13 s",
           ("--train-epochs", "6")),  # still one freezing event (every 5 epochs after the first)
    Faster(r"^ticketlab mine --method supermask\b", "the sweep's and the ticket's 20 epochs: about 5 s of 10 s",
           ("--train-epochs", "1")),
    Faster(r"^ticketlab collapse --model vgg16\b",
           "minutes (docs/results/layer_collapse.md's seconds column): the grid, 100 SynFlow rounds per probe, "
           "SNIP and GraSP on 1,000 images of VGG-16; GraSP on VGG-16 alone costs 20 s even on 100 images, so "
           "it is left out here",
           ("--step", "3", "--rounds", "synflow=1", "--samples-per-class", "1",
            "--methods", "random,magnitude_init,snip,synflow")),
    Faster(r"^ticketlab study run\b", "63 jobs (7 methods x 3 seeds x 3 densities), each trained 10 epochs",
           study=(("seeds", "[0]"), ("densities", "[0.8]"), ("epochs", "3"))),  # rewind:50 needs 3 epochs
]
LINE_TIMEOUT = 300  # seconds; a line that runs at full cost fails instead of hanging the suite
SHELL_SYNTAX = re.compile(r"[;&|<>`]|\$\(")  # a line with these runs through bash as typed


def tour_lines(readme: str) -> list[str]:
    """The ``bash`` block under "## CLI tour", one entry per line (``\\`` continuations joined)."""
    section = re.search(r"^## CLI tour\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M)
    assert section, "README has no '## CLI tour' section"
    block = re.search(r"^```bash\n(.*?)^```", section.group(1), flags=re.S | re.M)
    assert block, "the CLI tour has no ```bash block"
    return block.group(1).replace("\\\n", " ").splitlines()


def commands(line: str) -> list[str]:
    """The commands a tour line stands for: none for a comment, without and with its ``[...]``."""
    code = re.sub(r"(^|\s)#.*$", "", line).strip()
    if not code:
        return []
    bare = re.sub(r"\s*\[[^\]]*\]", "", code)
    full = re.sub(r"\[([^\]]*)\]", r"\1", code)
    assert "[" not in bare and "]" not in bare, f"unbalanced [...] in {line!r}"
    return [bare] if full == bare else [bare, full]


def faster_for(command: str) -> Faster | None:
    found = [f for f in FASTER if re.search(f.pattern, command)]
    assert len(found) <= 1, f"{command!r} matches several FASTER entries"
    return found[0] if found else None


def shrink_study(command: str, cwd: Path, cut: Faster) -> None:
    """Replace ``key = value`` lines in the copy of the study file that ``command`` names."""
    (name,) = [t for t in command.split() if t.endswith(".toml")]
    path = cwd / name
    text = path.read_text()
    for key, value in cut.study:
        text, n = re.subn(rf"^{key}\s*=.*$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, f"{name}: expected one '{key} = ...' line, found {n}"
    tomllib.loads(text)  # still a valid study file
    path.write_text(text)


def bash_words(command: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """The arguments bash makes of ``command`` (quotes, globs, variables), without running it."""
    proc = subprocess.run(["bash", "-c", 'printf "%s\\0" ' + command], cwd=cwd, env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().split("\0")[:-1]


def fresh_clone(dest: Path) -> Path:
    """The checkout's tracked files (working-tree content) under ``dest/<name>``, ``dest/shared`` a link."""
    clone = dest / REPO.name
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, timeout=60)
    names = [n for n in listed.stdout.decode().split("\0") if n] if listed.returncode == 0 else []
    if not names:  # not a git checkout: the tour only reads examples/
        names = [str(p.relative_to(REPO)) for p in (REPO / "examples").rglob("*") if p.is_file()]
    for name in names:
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, clone / name)
    if SHARED.exists():
        (dest / "shared").symlink_to(SHARED, target_is_directory=True)
    return clone


def test_cli_tour_runs_as_written(tmp_path):
    lines = tour_lines((REPO / "README.md").read_text())
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "ticketlab").exists(), f"no ticketlab next to {sys.executable}: pip install -e ."
    clone = fresh_clone(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TICKETLAB_DATA_ROOT"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    tour = [cmds for cmds in map(commands, lines) if cmds]
    matched = {f.pattern: sum(any(re.search(f.pattern, c) for c in line) for line in tour) for f in FASTER}
    assert all(n == 1 for n in matched.values()), f"FASTER entries must match one README line each: {matched}"
    timings, missing_data, typed = [], [], 0
    for line in tour:
        for command in line:
            assert command.startswith("ticketlab "), f"a tour line that is not a ticketlab command: {command!r}"
            cut = faster_for(command)
            if "../shared" in command and not SHARED.exists():
                missing_data.append(command)
                continue
            run = command
            if cut:
                run = " ".join([command, *cut.append])
                if cut.study:
                    shrink_study(command, clone, cut)
            start = time.perf_counter()
            if not timings or SHELL_SYNTAX.search(run):  # the installed script, as typed
                proc = subprocess.run(["bash", "-c", run], cwd=clone, env=env, capture_output=True, text=True,
                                      timeout=LINE_TIMEOUT)
                typed += 1
            else:
                program, *args = bash_words(run, clone, env)
                assert program == "ticketlab", f"bash reads {run!r} as a call of {program!r}"
                proc = warm_run(args, env=env, cwd=clone, timeout=LINE_TIMEOUT, preload=("torch", "torch._dynamo"))
            timings.append((time.perf_counter() - start, run))
            print(f"{timings[-1][0]:6.1f} s  {run}", flush=True)  # shown with -rP, or when a line fails
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, (
                f"README line failed (exit {proc.returncode}): {run}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            if "--json" in command.split():
                json.loads(proc.stdout)
    print(f"{sum(t for t, _ in timings):6.1f} s  in all")
    assert typed >= 1  # the entry point ran at least once
    if missing_data:
        pytest.skip(f"ran {len(timings)} commands; no {SHARED} for: {missing_data}")


def test_tour_parsing(tmp_path):
    (tmp_path / "r1.h5").touch()
    assert bash_words("ticketlab a 'b  c' \"d\" r*.h5", tmp_path, dict(os.environ)) == ["ticketlab", "a", "b  c", "d", "r1.h5"]
    assert SHELL_SYNTAX.search("ticketlab list > out.txt") and SHELL_SYNTAX.search("ticketlab list | head")
    assert not SHELL_SYNTAX.search("ticketlab compare a.h5 s.h5 --metric all --null degree")
    assert commands("ticketlab list   # miners, models") == ["ticketlab list"]
    assert commands("                 # a continued comment") == []
    assert commands("ticketlab inspect a.h5 [--json]  # table") == [
        "ticketlab inspect a.h5", "ticketlab inspect a.h5 --json"]
    assert commands("ticketlab evaluate z.h5 --split test [--weights signed_std]") == [
        "ticketlab evaluate z.h5 --split test", "ticketlab evaluate z.h5 --split test --weights signed_std"]
    continued = "## CLI tour\n```bash\nticketlab mine \\\n  -o a.h5  # x\n```\n"
    assert tour_lines(continued) == ["ticketlab mine    -o a.h5  # x"]
    lines = tour_lines((REPO / "README.md").read_text())
    assert sum(bool(commands(line)) for line in lines) >= 10, "the CLI tour lost its commands"
