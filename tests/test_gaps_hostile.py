"""Hostile inputs of issue 22, "the rest, by class": validation gaps that ended in tracebacks,
rendering (mathtext, ESC bytes, spreadsheet formulas), mask names on import, and torch's noise.

Wherever the command line is involved the case runs as a real process (started warm, with torch
imported beforehand: :mod:`warm`): one line on stderr starting ``error:``, exit 2, no traceback.
The process helpers are those of ``test_hostile_files.py`` (its environment) so that both files
run commands the same way.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import ticketlab
from test_hostile_files import _env
from warm import run as warm_run
from ticketlab.errors import TicketlabError

pytestmark = pytest.mark.xdist_group("subprocess")

TIMEOUT_S = 60


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return warm_run(args, timeout=TIMEOUT_S, env=_env(), cwd=cwd, preload=("torch",))


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


# ------------------------------------------------------------------------------------- rendering
DOLLARS = "ra$nd$om"  # an even number of $: matplotlib would parse "nd" as mathtext (and most text fails)
HARD = r"x$\frac{$y"  # mathtext that does not parse


def _ticket(names: tuple[str, ...] = ("fc1.weight", "fc2.weight"), seed: int = 0, **prov: object) -> ticketlab.Ticket:
    rng = np.random.default_rng(seed)
    return ticketlab.Ticket(masks={n: rng.random((6, 5)) < 0.5 for n in names}, provenance=dict(prov))


def test_every_plot_shows_dollar_signs_as_text(tmp_path: Path) -> None:
    from ticketlab.metrics.barrier import BarrierResult, plot_barrier
    from ticketlab.metrics.many import pairwise_matrix
    from ticketlab.metrics.over_time import plot_mask_distance
    from ticketlab.metrics.sparsity import plot_profiles

    names = (f"{HARD}.weight", "fc$2$.weight")
    a, b = _ticket(names, 0), _ticket(names, 1)
    figures = {
        "profiles": plot_profiles([a, b], labels=[DOLLARS, HARD]),
        "matrix": pairwise_matrix([a, b], labels=[DOLLARS, HARD], metric="jaccard").plot(),
        "over_time": plot_mask_distance([{"stage": "mask_tracking", "run": run, "iteration": i, "mask_distance": 0.1 * i,
                                          "mask_distance_chance": 0.5} for run in (DOLLARS, HARD) for i in (1, 2)],
                                        title=HARD),
        "barrier": plot_barrier([BarrierResult([0.0, 1.0], [0.1, 0.2], [1.0, 1.0], 0.0, 0.0, labels=(DOLLARS, HARD),
                                               split=HARD)]),
    }
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")  # would raise ValueError from the mathtext parser
        texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
        assert any(r"\$" in t for t in texts), name  # escaped, so shown literally


def test_collapse_plot_escapes_its_names(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from ticketlab.collapse import plot_layer_densities

    probe = SimpleNamespace(layer_kept=[3, 2])
    study = SimpleNamespace(model=HARD, dataset=DOLLARS, layers=[f"{HARD}.weight", "b$1$.weight"], layer_sizes=[6, 4],
                            results=[SimpleNamespace(method=DOLLARS, critical_x=1.5, critical_probe=probe)])
    assert plot_layer_densities(study, tmp_path / "c.png").is_file()


def test_study_report_renders_hostile_names_as_text(tmp_path: Path) -> None:
    """A method with $ (mathtext), a study name with ESC bytes, a method that is a spreadsheet
    formula, in a folder whose name holds ESC: the report is written, and no byte escapes."""
    import csv
    import json

    from test_study_report import synthetic_study

    folder = tmp_path / "st\x1b[2J"
    formula = '=HYPERLINK("evil.example","x")'  # (no slash: the method names a ticket file here)
    synthetic_study(folder, copy=DOLLARS, noise=formula, seeds=3)
    manifest = json.loads((folder / "study.json").read_text())
    manifest["name"] = "evil\x1b[2J\x1b]0;pwned\x07"
    (folder / "study.json").write_text(json.dumps(manifest))
    proc = _cli("study", "report", folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\x1b" not in proc.stdout + proc.stderr and "st\\x1b[2J" in proc.stdout
    for name, shown in (("report.md", r"evil\\x1b\[2J"), ("report.html", r"evil\x1b[2J")):
        text = (folder / name).read_text()  # (Markdown escapes the backslash and the bracket)
        assert "\x1b" not in text and "\x07" not in text, name
        assert shown in text, name
    with open(folder / "results.csv", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert any(c == "'" + formula for c in cells) and not any(c.startswith(("=", "+", "@")) for c in cells)
    assert all(c[1:].replace(".", "", 1).replace("e-", "", 1).isdigit() for c in cells if c.startswith("-"))


def test_csv_cell_neutralises_formulas_but_not_numbers() -> None:
    from ticketlab.text import csv_cell

    for formula in ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "-", "+"):
        assert csv_cell(formula) == "'" + formula
    for kept in ("-0.5", "+1e-3", "-12", "1.5", "random", "", 3, -2.5, None):
        assert csv_cell(kept) == kept


@pytest.mark.parametrize("field, value, needle", [
    ("density", float("nan"), "job 0 has density nan"),
    ("seed", float("inf"), "job 0 has seed inf"),
    ("id", ["x"], "job 0 has no text id"),
    ("id", {"a": 1}, "job 0 has no text id"),
])
def test_a_damaged_manifest_is_one_line(tmp_path: Path, field: str, value: object, needle: str) -> None:
    import json

    from test_study_report import synthetic_study

    synthetic_study(tmp_path / "st", copy="a", noise="b", seeds=2)
    manifest = json.loads((tmp_path / "st" / "study.json").read_text())
    manifest["jobs"][0][field] = value
    (tmp_path / "st" / "study.json").write_text(json.dumps(manifest, allow_nan=True))
    _refused(_cli("study", "report", tmp_path / "st"), "study manifest", "is damaged", needle)
    with pytest.raises(TicketlabError, match="is damaged"):  # the one reader: resume reads it too
        from ticketlab.study.run import read_manifest

        read_manifest(tmp_path / "st")


# ------------------------------------------------------------------------------- compare --over-time
def _tracked(**bad: object) -> list[dict]:
    rows = [{"stage": "mask_tracking", "run": "dense", "iteration": i, "mask_distance": d, "mask_distance_chance": 0.5}
            for i, d in ((2, float("nan")), (4, 0.25), (6, 0.125))]
    rows[1].update(bad)
    for key in [k for k, v in bad.items() if v is _MISSING]:
        del rows[1][key]
    return rows


_MISSING = object()
OVER_TIME_CASES = {
    "iteration_as_text": ({"iteration": "four"}, "iteration 'four'"),
    "iteration_infinite": ({"iteration": float("inf")}, "iteration inf"),
    "iteration_missing": ({"iteration": _MISSING}, "iteration None"),
    "distance_as_text": ({"mask_distance": "0.25"}, "mask_distance '0.25'"),
    "chance_missing": ({"mask_distance_chance": _MISSING}, "mask_distance_chance None"),
    "chance_as_list": ({"mask_distance_chance": [0.5]}, "mask_distance_chance [0.5]"),
}


@pytest.mark.parametrize("case", list(OVER_TIME_CASES))
def test_tracked_history_rows_of_the_wrong_kind(tmp_path: Path, case: str) -> None:
    bad, needle = OVER_TIME_CASES[case]
    path = ticketlab.save(ticketlab.Ticket(masks={"w": np.array([1, 0, 1], bool)}, history=_tracked(**bad)),
                          tmp_path / "t.h5")
    _refused(_cli("compare", "--over-time", path), "history row 1 (mask_tracking)", needle)


# ----------------------------------------------------------------------------- deep nesting
def test_deeply_nested_study_file_and_manifest_are_one_line(tmp_path: Path) -> None:
    """Bounding the depth is the bounded reader's job; whatever reads first, a RecursionError
    from parsing or validation must end as one line, never a traceback."""
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "s.toml").write_text(_STUDY + f"[train]\nx = {deep}\n")
    _refused(_cli("study", "run", "s.toml", "-o", "out", cwd=tmp_path))
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "study.json").write_text('{"jobs": ' + deep + "}")
    _refused(_cli("study", "report", tmp_path / "st"))


# ----------------------------------------------------------------------------------- Planetoid
def _declares_2_tib() -> bytes:
    import struct

    return b"\x80\x04\x8e" + struct.pack("<Q", 2**41) + b"tiny" + b"."  # BINBYTES8 of 2 TiB, 4 bytes stored


PLANETOID_CASES = {
    "x_declares_2_TiB": ("x", _declares_2_tib(), "is not a valid Planetoid raw file"),
    "test_index_of_1e12": ("test.index", None, "must list 1000 test nodes from 1708 to 2707"),
    "test_index_too_short": ("test.index", b"1708\n1709\n", "must list 1000 test nodes"),
    "test_index_not_numbers": ("test.index", b"one\ntwo\n", "is not a valid Planetoid raw file"),
}


@pytest.mark.parametrize("case", list(PLANETOID_CASES))
def test_planetoid_raw_files_that_lie_are_one_error_and_allocate_little(tmp_path: Path, case: str) -> None:
    import tracemalloc

    from test_data import needs_planetoid, writable_copy
    from ticketlab.data import load_dataset
    from ticketlab.errors import DataNotFoundError

    if needs_planetoid.args[0]:
        pytest.skip(needs_planetoid.kwargs["reason"])
    suffix, content, needle = PLANETOID_CASES[case]
    raw = writable_copy("Cora", tmp_path) / "raw" / f"ind.cora.{suffix}"
    if content is None:  # the real indices, one of them replaced by a huge one
        lines = raw.read_text().split()
        content = "\n".join([*lines[:-1], str(10**12)]).encode()
    raw.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(DataNotFoundError, match=needle) as err:
            load_dataset("cora", root=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(err.value) and f"ind.cora.{suffix}" in str(err.value)
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB"
