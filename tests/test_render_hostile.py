"""Strings from files and the command line reach the terminal as text: no markup, no raw control
characters, and errors stay on one line (issue 12, section 4)."""

import numpy as np
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli

EVIL = "a[/]\x1b[2J\x1b]0;pwned\x07\nb"


def _hostile(path, method="m"):
    t = ticketlab.Ticket(masks={EVIL: np.array([1, 0, 1, 1], bool), "w[bold]": np.array([0, 1], bool)},
                         provenance={"method": method + "[/]\x1b[31m", "model": "x\x1b[2J", "note": "[link=x]y"})
    return ticketlab.save(t, path)


def test_inspect_and_compare_show_hostile_names_as_text(tmp_path):
    a = _hostile(tmp_path / "a[bold]\x1b[2J.h5")
    b = _hostile(tmp_path / "b.h5", method="n")
    runner = CliRunner()
    for args in (["inspect", str(a)], ["compare", str(a), str(b)], ["compare", str(a), str(b), "--matrix", "jaccard"]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, (args, res.output, res.exception)
        assert "\x1b" not in res.output and "\x07" not in res.output, args
    res = runner.invoke(cli, ["inspect", str(a)])
    assert "a[/]\\x1b[2J\\x1b]0;pwned\\x07" in res.output  # shown, visibly escaped, literally
    assert "w[bold]" in res.output and "[link=x]y" in res.output


def test_errors_are_one_line_even_with_newlines_in_names(tmp_path):
    a = _hostile(tmp_path / "a.h5")
    res = CliRunner().invoke(cli, ["evaluate", str(a), "--weights", "bad\nname\x1b[2J"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line]
    assert len(lines) == 1 and "bad\\x0aname\\x1b[2J" in lines[0] and "\x1b" not in res.output


def test_inspect_json_is_strict_and_odd_history_cells_do_not_crash(tmp_path):
    import json

    t = ticketlab.Ticket(masks={"w": np.array([1, 0, 1], bool)}, provenance={"method": "m", "x": float("nan")},
                         history=[{"stage": "round", "round": "one", "test_accuracy": "high", "density": [1]},
                                  {"stage": "dense", "round": 0, "test_accuracy": float("inf")}])
    path = ticketlab.save(t, tmp_path / "t.h5")
    res = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert res.exit_code == 0 and "NaN" not in res.output and "Infinity" not in res.output
    assert json.loads(res.output)["provenance"]["x"] is None
    res = CliRunner().invoke(cli, ["inspect", str(path)])
    assert res.exit_code == 0, res.exception
    assert "high" in res.output and "one" in res.output


def test_compare_the_same_path_twice(tmp_path):
    path = ticketlab.save(ticketlab.Ticket(masks={"w": np.array([1, 0, 1, 0], bool)}), tmp_path / "a.h5")
    res = CliRunner().invoke(cli, ["compare", str(path), str(path)])
    assert res.exit_code == 0, res.output
    assert "a.h5#2" in res.output.replace("\n", "")
    recs = ticketlab.compare([path, path], metrics=["jaccard"])
    assert {r["b"] for r in recs if "b" in r} == {f"{path}#2"} and all(r["value"] == 1.0 for r in recs)
