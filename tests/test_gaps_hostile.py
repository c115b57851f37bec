"""Hostile inputs of issue 22, "the rest, by class": validation gaps that ended in tracebacks,
rendering (mathtext, ESC bytes, spreadsheet formulas), mask names on import, and torch's noise.

Wherever the command line is involved the case runs as a real process: one line on stderr
starting ``error:``, exit 2, no traceback. The process helpers are those of
``test_hostile_files.py`` (its environment) so that both files run commands the same way.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ticketlab
from test_hostile_files import _env
from ticketlab.errors import TicketlabError

pytestmark = pytest.mark.xdist_group("subprocess")

TIMEOUT_S = 60


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticketlab", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_env(), cwd=cwd, stdin=subprocess.DEVNULL)


def _refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The one error line of a refusal (exit 2, nothing else on stderr), holding every needle."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), \
        f"exit {proc.returncode}, stderr {proc.stderr[-1500:]!r}"
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------ import, noise
def _torch_file(folder: Path, kind: str) -> Path:
    import torch

    path = folder / f"{kind}.pt"
    with warnings.catch_warnings():  # making these files warns too
        warnings.simplefilter("ignore")
        if kind == "torchscript":
            torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
        elif kind == "quantized":
            torch.save({"w_mask": torch.quantize_per_tensor(torch.tensor([0.0, 1.0]), 1.0, 0, torch.quint8)}, path)
        elif kind == "sparse":
            torch.save({"w_mask": torch.tensor([[0.0, 1.0], [1.0, 0.0]]).to_sparse()}, path)
        elif kind == "sparse_csr":
            torch.save({"w_mask": torch.tensor([[0.0, 1.0], [1.0, 0.0]]).to_sparse_csr()}, path)
        elif kind == "nul_name":
            torch.save({"fc\x00.weight_mask": torch.tensor([1, 0])}, path)
        elif kind == "surrogate_name":
            torch.save({"fc\ud800.weight_mask": torch.tensor([1, 0])}, path)
    return path


IMPORT_CASES = {
    "torchscript": "TorchScript archive",
    "quantized": "torch.quint8",
    "sparse": "not a dense tensor",
    "sparse_csr": "not a dense tensor",
    "nul_name": "NUL character",
    "surrogate_name": "lone surrogate",
}


@pytest.mark.parametrize("kind", list(IMPORT_CASES))
def test_import_refuses_in_one_line(tmp_path: Path, kind: str) -> None:
    path = _torch_file(tmp_path, kind)
    _refused(_cli("import", path, "-o", tmp_path / "t.h5"), "cannot read masks from", IMPORT_CASES[kind])
    assert not (tmp_path / "t.h5").exists()


def _safetensors(path: Path, name_json: str) -> Path:
    """A one-tensor safetensors file written by hand; ``name_json`` is the name as JSON text."""
    import struct

    header = ('{"%s": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}' % name_json).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes([1, 0]))
    return path


def test_safetensors_names_are_checked_too(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")  # (its reader refuses a lone surrogate in the header itself)
    path = _safetensors(tmp_path / "m.safetensors", "fc\\u0000.weight")
    _refused(_cli("import", path, "-o", tmp_path / "t.h5"), "NUL character")


# ------------------------------------------------------------------------------- validation gaps
_STUDY = 'name = "s"\nmodel = "lenet_300_100"\ndataset = "digits"\nseeds = [0]\ndensities = [0.5]\nmethods = ["random"]\n'


@pytest.mark.parametrize("tail, needle", [
    ("[train]\nlr = inf\n", "train.lr must be a finite number, not inf"),
    ("[train]\nweight_decay = nan\n", "train.weight_decay must be a finite number, not nan"),
    ("[train]\nmomentum = -inf\n", "train.momentum must be a finite number"),
])
def test_study_files_with_non_finite_numbers_are_refused(tmp_path: Path, tail: str, needle: str) -> None:
    (tmp_path / "s.toml").write_text(_STUDY + tail)
    _refused(_cli("study", "run", "s.toml", "-o", "out", cwd=tmp_path), needle)
    assert not (tmp_path / "out").exists()


def test_study_seeds_beyond_the_seed_range_are_refused(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(_STUDY.replace("seeds = [0]", "seeds = [18446744073709551615]"))
    _refused(_cli("study", "run", "s.toml", "-o", "out", cwd=tmp_path), "seeds must be a non-empty list of integers")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
@pytest.mark.parametrize("field", ["lr", "weight_decay", "gamma", "momentum"])
def test_train_config_refuses_non_finite_numbers(field: str, value: float) -> None:
    from ticketlab.training import TrainConfig

    with pytest.raises(TicketlabError, match=f"training option {field} must be a finite number"):
        TrainConfig(**{field: value})


def test_train_option_infinity_on_the_command_line(tmp_path: Path) -> None:
    _refused(_cli("mine", "--method", "random", "--model", "lenet_300_100", "--dataset", "digits", "--density", "0.5",
                  "--train-option", "lr=Infinity", "-o", tmp_path / "t.h5"), "lr must be a finite number")


def test_a_seed_beyond_the_seed_range_on_the_command_line(tmp_path: Path) -> None:
    line = _refused(_cli("mine", "--method", "random", "--model", "lenet_300_100", "--dataset", "digits",
                         "--density", "0.5", "--seed", str(10**30), "-o", tmp_path / "t.h5"), "--seed")
    assert "4294967295" in line
    with pytest.raises(TicketlabError, match="seed must be an integer from 0 to 4294967295"):
        ticketlab.mine("random", model="lenet_300_100", dataset="digits", density=0.5, seed=10**30)


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mined") / "r.h5"
    return ticketlab.save(ticketlab.mine("random", model="lenet_300_100", dataset="digits", density=0.5, seed=0), path)


def _with_provenance(source: Path, target: Path, **changes: object) -> Path:
    t = ticketlab.load(source)
    t.provenance.update(changes)
    return ticketlab.save(t, target)


PROVENANCE_CASES = {
    "seed_of_1e30": ({"seed": 10**30}, "its provenance seed must be an integer from 0 to 4294967295"),
    "seed_of_2e64": ({"seed": 2**64}, "its provenance seed must be an integer"),
    "transforms_as_a_string": ({"transforms": "reinit"}, "provenance transforms must be a list of records, not a str"),
    "reinit_without_a_seed": ({"transforms": [{"name": "reinit", "kept": "reinit"}]},
                              "transform 0 (reinit): its seed must be an integer"),
    "transform_without_a_name": ({"transforms": [5]}, "transform 0 is not a record with a name"),
}


@pytest.mark.parametrize("case", list(PROVENANCE_CASES))
def test_provenance_that_lies_is_one_line(mined: Path, tmp_path: Path, case: str) -> None:
    changes, needle = PROVENANCE_CASES[case]
    bad = _with_provenance(mined, tmp_path / "bad.h5", **changes)
    command = {"seed_of_1e30": ["evaluate", bad], "seed_of_2e64": ["barrier", mined, bad],
               "transforms_as_a_string": ["evaluate", bad],
               "reinit_without_a_seed": ["train", bad, "-o", tmp_path / "t.h5", "--train-epochs", "1"],
               "transform_without_a_name": ["sanity", bad, "--seeds", "1"]}[case]
    _refused(_cli(*command), needle)
