"""A newcomer's first hour (issue 12, section 8): what ``list``, ``compare`` and ``mine`` tell a
first-time user, through click's CliRunner."""

import re

import pytest
from click.testing import CliRunner

from ticketlab.cli.main import cli
from ticketlab.registry import summary


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def flat(text: str) -> str:
    """``text`` with every run of whitespace made one space (table cells wrap over lines)."""
    return " ".join(text.split())


# ----------------------------------------------------------------------------- ticketlab list
def test_summary_is_the_whole_first_paragraph():
    assert summary("Keep the largest |w| of\n    the ``init`` weights.\n\n    More.") == \
        "Keep the largest |w| of the init weights."
    assert summary(None) == "" and summary("  One line.  ") == "One line."


def test_every_miner_has_a_whole_sentence_shown_whole():
    from ticketlab.miners import get_miner, list_miners

    shown = flat(run("list", "miners").output)
    for name in list_miners():
        desc = get_miner(name).description
        assert desc and "module docstring" not in desc and desc.endswith("."), (name, desc)
        assert f"{name} {desc}" in shown, name  # the name, then its whole description


def test_every_metric_is_listed_whole_with_its_group_and_default_mark():
    from ticketlab.metrics import get_metric, list_metrics

    shown = flat(run("list", "metrics").output)
    for name in list_metrics():
        m = get_metric(name)
        assert m.description and "module docstring" not in m.description, name
        assert f"{name} {m.group}{'*' if m.default else ''} {flat(m.description)}" in shown, name


def test_metric_groups_are_listed_with_their_members():
    from ticketlab.metrics import list_groups

    groups = list_groups()
    assert {"overlap", "units", "sparsity", "signs", "graph"} <= set(groups)
    shown = flat(run("list", "groups").output)
    for group, members in groups.items():
        assert f"{group} {', '.join(members)}" in shown, group
    assert "signs sign_kept" in shown and "need the init and final weights" in shown
    assert "groups" in flat(run("list").output)  # part of the full listing too
