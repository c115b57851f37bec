"""``ticketlab compare`` in a terminal (issue 25): no number is ever cut, at 80 columns or piped;
p-values say what they are; beyond 3 tickets a matrix and a row per pair; one warning line for
densities, models or data sets that differ. Also the shared table stacking of
:mod:`ticketlab.cli.render`, which every command prints through."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.compare_text import number, p_text
from ticketlab.cli.main import cli
from ticketlab.cli.render import Table, console, stack_widths

REPO = Path(__file__).resolve().parents[1]
WIDTH = 80
# a number as the tables print it: not part of a name (fc1.weight, a.h5, #2), maybe "< " before it
NUMBER = re.compile(r"(<\s)?(?<![\w.#/-])([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)(?![\w.])")
SHOWN = {"value": ".4g", "expected": ".4g", "lift": ".4g", "z": ".4g", "expected_degree": ".4g",
         "lift_degree": ".4g", "expected_aligned": ".4g", "sd_aligned": ".4g",
         "p": ".2g", "p_degree": ".2g", "p_aligned": ".2g"}


def run(*args, env=None, ok=True):
    res = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    if ok:
        assert res.exit_code == 0, (res.output, res.exception)
    return res


def check_numbers(text: str, records: list[dict], *, per_layer: bool = False, samples: int | None = None,
                  width: int = WIDTH, pairs_of: str | None = None) -> int:
    """Every number ``records`` shows is in ``text`` whole (4 significant digits, p-values 2, a p
    of 0 as ``< 1e-300``), and every number in ``text`` is one of theirs (or a ticket's number, a
    sample count, a number in a note); no line is wider than ``width`` and nothing is elided.
    ``pairs_of``: only this metric's pair records are shown (the summary beyond 3 tickets).
    Returns how many numbers were checked."""
    assert "…" not in text and "..." not in text
    assert max(map(len, text.splitlines())) <= width, max(text.splitlines(), key=len)
    tokens, floors = [], 0
    for m in NUMBER.finditer(text):
        if m.group(1):
            floors += 1
            assert m.group(2) == "1e-300"
        else:
            tokens.append(float(m.group(2)))
    found = set(tokens)
    shown = 0
    allowed: set[float] = set()
    for r in records:
        for key, v in r.items():
            if isinstance(v, str):
                allowed |= {float(x) for x in re.findall(r"\d+(?:\.\d+)?", v)}
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                allowed |= {float(format(v, ".4g")), float(format(v, ".2g"))}
        if r.get("value") is None or (r["layer"] != "__total__" and not per_layer):
            continue
        if pairs_of is not None and r["b"] is not None and r["metric"] != pairs_of:
            continue
        for key, spec in SHOWN.items():
            v = r.get(key)
            if v is None:
                continue
            shown += 1
            if key.startswith("p") and v == 0:
                assert floors, (r, key)
            else:
                assert float(format(v, spec)) in found, (r["a"], r["b"], r["metric"], key, v)
    n_tickets = len({r["a"] for r in records} | {r["b"] for r in records if r["b"]})
    allowed |= set(map(float, range(0, n_tickets + 1)))
    if samples:
        allowed |= {float(samples), float(samples + 1)}
    strays = [t for t in tokens if t not in allowed]
    assert not strays, strays
    return shown


# ----------------------------------------------------------------------------- README lines
@pytest.fixture(scope="module")
def readme_tickets(tmp_path_factory):
    """The README tour's tickets, mined the fast way (same model and data; g.h5 at density 0.05)."""
    folder = tmp_path_factory.mktemp("readme_compare")
    for name, args in (("a.h5", ("--method", "synflow", "--rounds", "5")),
                       ("s.h5", ("--method", "snip", "--sparsity", "0.9")),
                       ("i.h5", ("--method", "magnitude_init", "--density", "0.328")),
                       ("g.h5", ("--method", "random", "--density", "0.05", "--seed", "1")),
                       ("z.h5", ("--method", "random", "--seed", "2"))):
        run("mine", *args, "-o", folder / name, "--quiet")
    return folder


def _readme_compare_lines() -> list[str]:
    from test_readme_cli import commands, tour_lines

    lines = [c for line in tour_lines((REPO / "README.md").read_text()) for c in commands(line)]
    return [c for c in lines if c.startswith("ticketlab compare ")]


def test_readme_compare_lines_at_80_columns_show_every_number_whole(readme_tickets):
    lines = _readme_compare_lines()
    assert len(lines) >= 4 and any("--align" in c for c in lines) and any("--matrix lift" in c for c in lines)
    env = {**os.environ, "COLUMNS": str(WIDTH), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for line in lines:
        args = line.split()[1:]
        proc = subprocess.run([sys.executable, "-m", "ticketlab", *args], cwd=readme_tickets, env=env,
                              capture_output=True, text=True, timeout=300)  # piped: COLUMNS is the width
        assert proc.returncode == 0, (line, proc.stderr)
        cwd = os.getcwd()  # the README's relative paths (and --plot m.png) from the tickets' folder
        os.chdir(readme_tickets)
        try:
            records = json.loads(run(*args, "--json", "--quiet").stdout)
        finally:
            os.chdir(cwd)
        samples = 20 if ("--null" in args or "--align" in args) else None
        many = "--matrix" not in args and len([a for a in args if a.endswith(".h5")]) > 3
        assert check_numbers(proc.stdout, records, samples=samples, pairs_of="jaccard" if many else None) >= 10, line
        warnings = [x for x in proc.stderr.splitlines() if x.startswith("warning:")]
        if "g.h5" in args:  # densities 0.05 to 0.328: one line, naming both ends
            assert len(warnings) == 1 and "0.05 for 'g.h5' to 0.328 for 'i.h5'" in warnings[0], proc.stderr
        else:
            assert warnings == [], proc.stderr


def test_piped_output_honours_columns_and_wide_keeps_one_line_per_row(readme_tickets):
    a, s = readme_tickets / "a.h5", readme_tickets / "s.h5"
    args = ("compare", a, s, "--null", "degree", "--null-samples", "4", "--null-rounds", "2")
    records = json.loads(run(*args, "--json").stdout)
    for width in (40, 60, 120):
        out = run(*args, env={"COLUMNS": str(width)}).stdout
        check_numbers(out, records, samples=4, width=width)
    wide = run(*args, "--wide", env={"COLUMNS": "40"}).stdout
    rows = [x for x in wide.splitlines() if x.startswith("jaccard ")]
    assert len(rows) == 1 and len(NUMBER.findall(rows[0])) == 8  # value ... p, exp_degree, lift_degree, p_degree
    piped = run(*args, env={"COLUMNS": None}).stdout  # COLUMNS unset: 120 columns, room for one block
    assert re.search(r"^metric\s+value.*p_degree$", piped, flags=re.M) and max(map(len, piped.splitlines())) <= 120


# ----------------------------------------------------------------------------- p-values
def test_p_values_say_what_they_are():
    assert p_text(0.0) == "< 1e-300" and p_text(3e-301) == "3e-301" and p_text(None) == ""
    assert p_text(1 / 21, samples=20) == "0.048 (min)" and p_text(2 / 21, samples=20) == "0.095"
    assert p_text(1 / 21) == "0.048" and p_text(1.0, samples=4) == "1"
    assert number(63.27123) == "63.27" and number(0.2431) == "0.2431" and number(float("nan")) == "-"


def test_a_p_below_the_doubles_and_an_empirical_p_at_its_floor(tmp_path):
    masks = {"w": np.arange(4000).reshape(40, 100) % 7 < 3}
    paths = [ticketlab.save(ticketlab.Ticket(masks=masks), tmp_path / f"{x}.h5") for x in "ab"]
    out = run("compare", *paths, "--metric", "jaccard", "--null", "degree", "--null-samples", "9",
              "--null-rounds", "2", env={"COLUMNS": "120"}).output  # one block: the row holds both p columns
    rec = json.loads(run("compare", *paths, "--metric", "jaccard", "--json").stdout)[0]
    assert rec["p"] == 0.0 and rec["z"] > 40  # identical masks: the tail underflows
    row = next(x for x in out.splitlines() if x.startswith("jaccard "))
    assert "< 1e-300" in row and "0.1 (min)" in row and not re.search(r"\s0\s", row)
    assert "never below 1/10 = 0.1, marked (min)" in " ".join(out.split())
    assert "< 1e-300: too small for a double" in " ".join(out.split())


# ----------------------------------------------------------------------------- many tickets
@pytest.fixture(scope="module")
def five(tmp_path_factory):
    folder = tmp_path_factory.mktemp("five")
    rng = np.random.default_rng(0)
    base = rng.random((30, 20)) < 0.3
    paths = []
    for i in range(5):
        name = folder / f"grasp-lenet_300_100-digits-seed{i}.h5"  # cut to "grasp-le…" before
        masks = {"fc1.weight": base ^ (rng.random(base.shape) < 0.1 * i), "fc2.weight": rng.random((5, 30)) < 0.3}
        paths.append(ticketlab.save(ticketlab.Ticket(masks=masks, provenance={"method": "grasp", "seed": i}), name))
    return paths


def test_beyond_three_tickets_the_matrix_and_a_row_per_pair(five):
    out = run("compare", *five, env={"COLUMNS": str(WIDTH)}).stdout
    records = json.loads(run("compare", *five, "--json").stdout)
    check_numbers(out, records, pairs_of="jaccard")
    assert " vs " not in out  # no table per pair
    assert "jaccard, rows and columns in clustering order" in out
    assert "jaccard per pair (a, b: the tickets' numbers, as in the matrix)" in out
    pairs = [x.split()[:2] for x in out.splitlines() if re.match(r"^\d+\s+\d+\s+0\.", x)]
    assert pairs == [[str(i), str(j)] for i in range(1, 6) for j in range(i + 1, 6)]
    flat = " ".join(out.split())
    for p in five:
        assert p.name in out  # every name whole, in the matrix's ticket column
    assert "per ticket (columns: the tickets' numbers, as in the matrix)" in flat
    assert "--pair-tables" in flat and len(out.splitlines()) < 60
    full = run("compare", *five, "--pair-tables", env={"COLUMNS": str(WIDTH)}).stdout
    assert full.count(" vs ") == 10 and "per pair" not in full
    check_numbers(full, records)
    three = run("compare", *five[:3]).output
    assert three.count(" vs ") == 3 and "per pair" not in three


def test_many_tickets_with_single_metrics_only_get_a_legend(five):
    out = run("compare", *five, "--metric", "density", env={"COLUMNS": str(WIDTH)}).stdout
    assert out.startswith("tickets\n#  ticket\n1  grasp-lenet") and "density" in out


def test_matrix_lift_z_and_kappa_from_the_cli(five, tmp_path):
    legend = {"lift": "(observed / expected; 1 = chance); -: a ticket with itself",
              "z": "((observed - expected) / sd; 0 = chance)", "kappa": "column k is ticket #k"}
    for metric in ("lift", "z", "kappa"):
        out = run("compare", *five, "--matrix", metric, "--plot", tmp_path / f"{metric}.png",
                  env={"COLUMNS": str(WIDTH)}).stdout
        records = json.loads(run("compare", *five, "--matrix", metric, "--json").stdout)
        check_numbers(out, records)
        assert out.startswith(f"{metric}, rows and columns in ") and legend[metric] in " ".join(out.split())
        diag = [r["value"] for r in records if r["a"] == r["b"]]
        assert diag == ([1.0] * 5 if metric == "kappa" else [None] * 5)
        assert (tmp_path / f"{metric}.png").read_bytes()[:4] == b"\x89PNG"
    res = run("compare", *five, "--matrix", "lfit", ok=False)
    assert res.exit_code == 2 and "lift, z" in res.output


# ----------------------------------------------------------------------------- warnings
def _ticket(path, kept, **prov):
    masks = {"fc1.weight": np.arange(60).reshape(6, 10) < kept, "fc2.weight": np.ones((2, 6), bool)}
    return ticketlab.save(ticketlab.Ticket(masks=masks, provenance=prov), path)


def test_one_warning_line_for_densities_and_one_for_data_sets(tmp_path):
    a = _ticket(tmp_path / "a.h5", 10, model="lenet", dataset="digits")
    b = _ticket(tmp_path / "b.h5", 40, model="lenet", dataset="digits")
    c = _ticket(tmp_path / "c.h5", 11, model="lenet", dataset="mnist5k")
    for args in (["compare", a, c], ["compare", a, c, "--matrix", "jaccard"]):
        res = run(*args)
        lines = [x for x in res.stderr.splitlines() if x.startswith("warning:")]
        assert lines == ["warning: the tickets differ in data set (digits: 'a.h5'; mnist5k: 'c.h5'): the same "
                         "parameter names need not select comparable weights (compared: fc1.weight, fc2.weight)"]
    res = run("compare", a, b, "--matrix", "lift")
    (line,) = res.stderr.splitlines()
    assert line.startswith("warning: the tickets' densities differ by a factor of ")
    assert run("compare", a, _ticket(tmp_path / "a2.h5", 12, model="lenet", dataset="digits")).stderr == ""


def test_common_only_across_data_sets_warns_and_names_the_shared_parameters(tmp_path):
    a = _ticket(tmp_path / "a.h5", 10, model="lenet_300_100", dataset="digits")
    wide = {"fc0.weight": np.ones((6, 20), bool), "fc2.weight": np.ones((2, 6), bool)}
    b = ticketlab.save(ticketlab.Ticket(masks=wide, provenance={"model": "lenet_300_100", "dataset": "mnist5k"}),
                       tmp_path / "b.h5")
    res = run("compare", a, b, "--common-only", "--metric", "jaccard")
    (line,) = res.stderr.splitlines()
    assert "data set (digits: 'a.h5'; mnist5k: 'b.h5')" in line and line.endswith("(compared: fc2.weight)")


# ----------------------------------------------------------------------------- shared stacking
def _print(table, width=None, wide=False, monkeypatch=None):
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    if width is not None:
        monkeypatch.setenv("COLUMNS", str(width))
    console(wide=wide).print(table)
    return buf.getvalue()


def _numbers_table():
    t = Table(title="a title that is longer than forty columns, wrapped at words", title_justify="left",
              box=None, pad_edge=False)
    t.add_column("name")
    for k in range(9):
        t.add_column(f"column_{k}", justify="right", group=k // 3)
    t.add_row("a-rather-long-row-name", *(f"{123456.789 * 10 ** -k:.6g}" for k in range(9)))
    t.add_row("b", *("" for _ in range(6)), "1", "2", "3")
    return t


@pytest.mark.parametrize("width", [24, 40, 80])
def test_a_table_wider_than_the_console_is_stacked_and_nothing_is_cut(width, monkeypatch):
    out = _print(_numbers_table(), width, monkeypatch=monkeypatch)
    assert max(map(len, out.splitlines())) <= width and "…" not in out
    for k in range(9):
        assert f"{123456.789 * 10 ** -k:.6g}" in out.split() and f"column_{k}" in out
    assert out.count("a-rather-") >= 2  # the key column repeats (wrapped where it must)
    assert "a title that is longer than forty columns, wrapped at words" in " ".join(out.split())
    if width == 80:  # blocks break between the column groups: 0-2, 3-5, 6-8
        headers = [x.split()[1:] for x in out.splitlines() if x.startswith("name")]
        assert [h[0] for h in headers] in (["column_0", "column_6"], ["column_0", "column_3", "column_6"])
        blocks = out.split("\n\n")
        assert "b " not in blocks[0] and re.search(r"^b\s+1\s+2\s+3$", blocks[-1], flags=re.M)  # empty rows left out


def test_wide_prints_one_line_per_row_and_a_fitting_table_is_unchanged(monkeypatch):
    out = _print(_numbers_table(), 40, wide=True, monkeypatch=monkeypatch)
    assert len(out.splitlines()) == 4  # title, header, two rows
    small = Table(box=None, pad_edge=False)
    small.add_column("x")
    small.add_column("y", justify="right")
    small.add_row("a", "1.5")
    assert _print(small, 80, monkeypatch=monkeypatch) == "x    y\na  1.5\n"


def test_a_column_wider_than_the_console_is_printed_whole(monkeypatch):
    t = Table(box=None, pad_edge=False)
    t.add_column("k")
    t.add_column("v", justify="right")
    t.add_row("a", "1234567890.123456789")
    out = _print(t, 10, monkeypatch=monkeypatch)
    assert "1234567890.123456789" in out


def test_piped_width_is_columns_or_120(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console().width == 120
    monkeypatch.setenv("COLUMNS", "80")
    assert console().width == 80
    assert console(wide=True).width > 10_000


def test_stack_widths_by_hand():
    assert stack_widths([10], [8, 8, 8, 8], 39) == [[0, 1], [2, 3]]  # 10 + 2 + 8 + 2 + 8 = 30; a third: 40
    assert stack_widths([10], [8, 8, 8, 8], 40) == [[0, 1, 2], [3]]
    assert stack_widths([10], [6, 6, 6, 6], 40, groups="xyyy") == [[0], [1, 2, 3]]
    assert stack_widths([10], [30, 30], 20) == [[0], [1]]  # too wide alone: a block each
    assert stack_widths([], [5, 5], 12) == [[0, 1]]


def test_inspect_at_40_columns_cuts_nothing(tmp_path):
    masks = {"a.very.long.parameter.name.of.some.layer.weight": np.ones((300, 400), bool)}
    path = ticketlab.save(ticketlab.Ticket(masks=masks), tmp_path / "t.h5")
    out = run("inspect", path, env={"COLUMNS": "40"}).output
    assert "…" not in out and "120,000" in out and "1.0000" in out and max(map(len, out.splitlines())) <= 40
    lines = out.splitlines()
    heads = [i for i, x in enumerate(lines) if x.startswith("parameter")]
    assert len(heads) == 2  # stacked: kept and total, then density
    for i in heads:  # the name, folded over lines in its column, is whole
        end = next(j for j in range(i, len(lines)) if lines[j].startswith("total"))
        assert "".join(x.split()[0] for x in lines[i + 1:end]) == next(iter(masks))


def test_free_text_columns_wrap_into_the_width_that_is_left():
    from ticketlab.metrics import list_metrics

    # 60: the longest metric name (relational_path_length) and group leave the descriptions 20 columns
    out = run("list", "metrics", env={"COLUMNS": "60"}).stdout
    assert max(map(len, out.splitlines())) <= 60
    names = [x.split()[0] for x in out.splitlines() if x.startswith("  ") and not x.startswith("   ")]
    assert names == list_metrics()  # each name whole, on its own row; the descriptions wrap
