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


# ----------------------------------------------------------------------------- ticketlab compare
def _masks(seed, shapes=(("fc1.weight", (8, 6)), ("fc2.weight", (3, 8))), density=0.4):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {n: rng.random(s) < density for n, s in shapes}


@pytest.fixture(scope="module")
def tickets(tmp_path_factory):
    """Three small ticket files: 'init' weights only (no 'final'), so sign metrics needing final
    weights cannot run on them."""
    import numpy as np

    import ticketlab
    from ticketlab.ticket import Ticket

    folder = tmp_path_factory.mktemp("newcomer")
    paths = []
    for seed, name in enumerate(("a.h5", "b.h5", "c.h5")):
        masks = _masks(seed)
        init = {n: np.random.default_rng(10).standard_normal(m.shape).astype(np.float32) for n, m in masks.items()}
        paths.append(ticketlab.save(Ticket(masks=masks, weights={"init": init}), folder / name))
    return paths


def test_compare_help_names_the_defaults_and_groups_from_the_registry():
    from ticketlab.metrics import get_metric, list_groups, register, unregister

    @register("newcomer_demo_metric", description="a demo", group="custom")
    def demo(a, b):
        return 0.5

    try:
        text = flat(run("compare", "--help").output)
    finally:
        unregister("newcomer_demo_metric")
    assert "Without --metric the metrics of the groups marked (default) run" in text
    for group, members in list_groups().items():
        default = all(get_metric(n).default for n in members)
        assert f"{group}{' (default)' if default else ''}" in text and ", ".join(members) in text, group
    assert "signs (needs init/final weights)" in text
    assert "custom newcomer_demo_metric" in text  # generated when shown: a new metric appears at once


def test_default_compare_hints_at_the_other_groups_and_merges_the_swapped_rows(tickets):
    out = run("compare", tickets[0], tickets[1]).output
    assert "more: --metric signs, --metric graph, --metric relational, --metric all" in out
    assert "b.h5  vs  a.h5" not in out and out.count("a.h5  vs  b.h5") == 1  # one table per pair
    assert re.search(r"^rel_intersection \(b, a\)\s+0\.\d+", out, flags=re.M)
    assert "(b, a): rel_intersection is asymmetric" in out
    assert "more:" not in run("compare", tickets[0], tickets[1], "--metric", "jaccard").output


def test_readme_says_what_the_default_compare_shows():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("ticketlab compare a.h5 s.h5"))
    comment = line.split("#", 1)[1]
    # the default shows neither signs nor graph metrics: the README may only name them as options
    for word in ("signs", "graph"):
        assert word not in comment or f"--metric {word}" in comment, line


def test_metric_signs_says_which_metrics_it_dropped(tickets):
    out = flat(run("compare", *tickets[:2], "--metric", "signs").output)
    assert "sign_agree_init" in out  # init weights are there: computed
    for name, metrics in (("a.h5", "sign_kept, sign_flip, sign_agree_final"), ("b.h5", "sign_kept, sign_flip")):
        # a pair metric names the first ticket that lacks the weights
        assert f"not computed: {metrics} (needs the 'final' weights, which ticket '{name}' does not store)" in out


def test_matrix_labels_are_numbered_and_never_cut(tmp_path, tickets):
    import shutil

    long = tmp_path / ("x" * 70)
    long.mkdir()
    first, second = long / "synflow_seed0_density0.1_first.h5", long / "synflow_seed0_density0.1_second.h5"
    shutil.copy(tickets[0], first)
    shutil.copy(tickets[1], second)
    out = run("compare", tickets[2], first, second, "--matrix", "jaccard").output
    assert "column k is ticket #k" in out and "jaccard, rows and columns in clustering order" in out
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"^\d+\s", line)}
    assert set(rows) == {"1", "2", "3"}
    assert first.name in flat(out) and second.name in flat(out)  # whole labels (folded, not cut)
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert sorted(header.split()[2:]) == ["1", "2", "3"]


def test_heatmap_draws_its_clustering_tree_and_readable_cell_text(tmp_path):
    import numpy as np
    from matplotlib.colors import to_rgb

    from ticketlab.metrics import pairwise_matrix
    from ticketlab.ticket import Ticket

    rows = ([1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1], [1, 1, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1])
    mat = pairwise_matrix([Ticket(masks={"w": np.array(r, bool)}) for r in rows], "jaccard")
    fig = mat.plot(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0
    heat = fig.axes[0]
    assert "clustered (average linkage" in fig.get_suptitle()
    order = mat.order()
    assert [t.get_text() for t in heat.get_xticklabels()] == [mat.labels[i] for i in order]
    trees = [ax for ax in fig.axes if ax.lines]
    assert len(trees) == 2  # above the columns and left of the rows
    top = next(ax for ax in trees if ax.get_shared_x_axes().joined(ax, heat))
    left = next(ax for ax in trees if ax.get_shared_y_axes().joined(ax, heat))
    # the leaves (segment ends at height 0) stand exactly over the columns / beside the rows
    assert sorted({x for ln in top.lines for x, h in zip(*ln.get_data()) if h == 0}) == [0, 1, 2, 3]
    assert sorted({y for ln in left.lines for h, y in zip(*ln.get_data()) if h == 0}) == [0, 1, 2, 3]
    # the first merge joins the two most similar tickets, which the order puts side by side
    vals = mat.values[np.ix_(order, order)]
    assert {order[0], order[1]} in ({0, 2}, {1, 3}) and vals[0, 1] == max(vals[0, 1:])
    # cell text contrasts with its cell: black on the bright diagonal, white on the darkest cell
    text = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in heat.texts}
    assert len(text) == 16
    assert all(to_rgb(text[i, i].get_color()) == (0.0, 0.0, 0.0) for i in range(4))
    dark = np.unravel_index(np.argmin(vals), vals.shape)
    assert to_rgb(text[int(dark[0]), int(dark[1])].get_color()) == (1.0, 1.0, 1.0)
    # without clustering there is no tree
    assert not [ax for ax in mat.plot(cluster=False).axes if ax.lines]


# ----------------------------------------------------------------------------- ticketlab mine
def test_closed_miner_options_are_choices_listed_by_help():
    import click

    from ticketlab.cli.main import cli as group

    ctx = click.Context(group.commands["mine"])
    params = {p.name: p for p in group.commands["mine"].get_params(ctx)}
    assert list(params["batchnorm"].type.choices) == ["eval", "train"]
    assert sorted(params["precision"].type.choices) == ["float32", "float64"]
    assert sorted(params["normalize"].type.choices) == ["layer", "none"]
    help_text = flat(run("mine", "--help").output)
    assert "--batchnorm [eval|train]" in help_text and "--precision [float64|float32]" in help_text
    assert "[choices: large_final, small_final," in help_text  # a long list: in the help text
    res = run("mine", "--method", "synflow", "--batchnorm", "frozen", ok=False)
    assert res.exit_code == 2 and "'frozen' is not one of 'eval', 'train'" in res.output
    assert res.output.count("\n") == 1


def test_choices_are_checked_in_the_api_too():
    from ticketlab.errors import ConfigError
    from ticketlab.miners import get_miner

    for method, option, bad in (("synflow", "batchnorm", "frozen"), ("snip", "precision", "float16"),
                                ("supermask", "final_weights", "best")):
        with pytest.raises(ConfigError, match=f"option {option} must be one of .*, got '{bad}'"):
            get_miner(method)(**{option: bad})


def _interrupt_after(checkpoint_written: bool):
    """A stand-in for ``ticketlab.mining.mine`` that (maybe) writes the checkpoint, then gets Ctrl-C."""
    def fake_mine(method, *, checkpoint=None, **kwargs):
        if checkpoint_written:
            checkpoint.write_bytes(b"a checkpoint")
        raise KeyboardInterrupt

    return fake_mine


def test_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(tmp_path, monkeypatch):
    import shlex

    import ticketlab.mining

    out = tmp_path / "my run" / "i.h5"
    out.parent.mkdir()
    monkeypatch.setattr(ticketlab.mining, "mine", _interrupt_after(True))
    args = ["mine", "--method", "imp", "--rounds", "5", "-o", str(out)]
    res = run(*args, ok=False)
    assert res.exit_code == 130 and "Aborted" not in res.output
    assert res.output.count("\n") == 1, res.output
    line = res.stderr.strip()
    assert f"checkpoint '{out}.ckpt'" in line
    again = line.split("continue with: ", 1)[1]
    assert shlex.split(again) == ["ticketlab", *args, "--resume"]  # the same command, quoted for a shell
    # interrupted again while resuming: --resume is not added twice
    res = run(*args, "--resume", ok=False)
    assert res.exit_code == 130 and shlex.split(res.stderr.split("continue with: ", 1)[1]) == ["ticketlab", *args,
                                                                                              "--resume"]


def test_ctrl_c_before_any_checkpoint_or_without_one(tmp_path, monkeypatch):
    import ticketlab.mining

    monkeypatch.setattr(ticketlab.mining, "mine", _interrupt_after(False))
    res = run("mine", "--method", "imp", "-o", tmp_path / "i.h5", ok=False)
    assert res.exit_code == 130 and "before the first round finished" in res.stderr
    res = run("mine", "--method", "synflow", "-o", tmp_path / "s.h5", ok=False)  # no checkpoint without --resume
    assert res.exit_code == 130 and "writes a checkpoint only with --resume" in res.stderr


def test_existing_checkpoint_error_uses_cli_wording_and_api_wording(tmp_path):
    import ticketlab
    from ticketlab.errors import ConfigError

    out = tmp_path / "r.h5"
    ckpt = tmp_path / "r.h5.ckpt"
    ckpt.write_bytes(b"left over")
    res = run("mine", "--method", "imp", "--train-epochs", "1", "-o", out, ok=False)
    assert res.exit_code == 2 and "continue it with the same command and --resume" in res.output
    assert "resume=True" not in res.output
    with pytest.raises(ConfigError) as info:
        ticketlab.mine("imp", train_epochs=1, checkpoint=ckpt, device="cpu")
    assert "resume=True" in str(info.value) and "--resume" not in str(info.value)
    assert "--resume" in info.value.cli_text()


@pytest.mark.slow
def test_ctrl_c_in_a_real_run_then_the_printed_command_resumes_it(tmp_path):
    """SIGINT (what Ctrl-C sends) to a real IMP run: exit 130, one line, and that line's command
    finishes the run from the checkpoint."""
    import os
    import shlex
    import signal
    import subprocess
    import sys
    import time

    out, ckpt = tmp_path / "i.h5", tmp_path / "i.h5.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # rounds of 20 epochs (about 0.7 s each on an idle machine, 30 times the 20 ms poll): the signal
    # lands inside round 1 (or 2), after round 0's checkpoint
    args = ["mine", "--method", "imp", "--rounds", "2", "--train-epochs", "20", "--device", "cpu", "-o", str(out)]
    # SIGINT back to its default in the child: a test run started in the background by a
    # non-interactive shell (make test &) inherits SIGINT ignored, and Python then installs no handler
    proc = subprocess.Popen([sys.executable, "-m", "ticketlab", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not ckpt.exists():
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err and err.strip().count("\n") == 0, err
    again = shlex.split(err.split("continue with: ", 1)[1])
    assert again[0] == "ticketlab" and again[-1] == "--resume"
    from warm import run as warm_run  # a process too, started warm (tests/warm.py)

    done = warm_run([*again[1:], "--quiet"], env=env, cwd=tmp_path, timeout=240, preload=("torch", "torch._dynamo"))
    assert done.returncode == 0, done.stderr
    assert out.exists() and not ckpt.exists() and "resumed after round" in done.stdout
