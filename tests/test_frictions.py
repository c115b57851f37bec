"""A first hour's smaller frictions (issue 25): what the commands print besides their results.

Names and start-up times are in test_names.py."""

import json

import pytest
from click.testing import CliRunner

import ticketlab
from ticketlab.cli.main import cli


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


# ----------------------------------------------------------------------------- mine, evaluate
def test_a_learned_miner_prints_one_untrained_line_when_its_mask_is_the_ticket(tmp_path):
    res = run("mine", "--method", "edge_popup", "--train-epochs", "1", "-q", "-o", tmp_path / "p.h5")
    lines = [line for line in res.output.splitlines() if "untrained test accuracy" in line]
    assert len(lines) == 1 and "the ticket, which is the method's own mask" in lines[0], res.output


@pytest.mark.parametrize("model, batchnorm", [("lenet_300_100", False), ("resnet20", True)])
def test_evaluate_shows_chance_and_recalibration_only_with_batch_norm(tmp_path, model, batchnorm):
    ticketlab.save(ticketlab.mine("random", model=model, density=0.5, seed=0, device="cpu"), tmp_path / "t.h5")
    data = json.loads(run("evaluate", tmp_path / "t.h5", "--json").stdout)
    assert data["chance"] == 0.1 and data["batchnorm"] is batchnorm
    assert data["recalibration_batches"] == (10 if batchnorm else 0)
    text = run("evaluate", tmp_path / "t.h5").stdout
    assert "(chance 0.1000)" in text and ("batch-norm" in text) is batchnorm, text


# ----------------------------------------------------------------------------- warnings
def test_third_party_warnings_say_whose_they_are():
    import warnings

    import click

    from ticketlab.errors import TicketlabWarning

    @click.command("zz-warn")
    def warn() -> None:
        warnings.warn("ties were drawn", TicketlabWarning)
        warnings.warn_explicit("`foo` is deprecated", FutureWarning,
                               "/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", 1)
        # raised by a library with a stacklevel that points into ticketlab's code: named by its category
        warnings.warn_explicit("raised for the caller", DeprecationWarning, ticketlab.__file__, 1)

    cli.add_command(warn)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            res = CliRunner().invoke(cli, ["zz-warn"])
    finally:
        cli.commands.pop("zz-warn")
    assert res.stderr.splitlines() == ["warning: ties were drawn", "warning (torch): `foo` is deprecated",
                                       "warning (DeprecationWarning): raised for the caller"], res.stderr
    assert "warning (torch)" not in res.stdout  # warnings go to stderr only


# ----------------------------------------------------------------------------- study: dry run, summary
STUDY = """name = "tiny"
model = "lenet_300_100"
dataset = "digits"
seeds = [0]
densities = [0.5, 0.2]
methods = ["random", "imp"]

[train]
epochs = 1
"""


def test_study_dry_run_lists_jobs_and_estimates_from_previous_runs(tmp_path):
    from ticketlab.study import Study

    (tmp_path / "s.toml").write_text(STUDY)
    folder = tmp_path / "runs" / "tiny"
    res = run("study", "run", tmp_path / "s.toml", "-o", folder, "--dry-run")
    assert not folder.exists()  # nothing run, nothing written
    lines = res.output.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["run", "run", "shared", "run"], res.output
    assert "from the rounds of imp-lenet_300_100-digits-s0-d0.2" in lines[2]
    assert "4 jobs: 3 to run, 0 reused" in lines[-1] and "1 taken from the rounds" in lines[-1]
    assert "no time estimate" in lines[-1] and "dry run: nothing was run or written" in lines[-1]

    summary = Study.from_toml(tmp_path / "s.toml", folder).run()
    assert repr(summary).startswith("<StudyRun 'tiny': 4 jobs (4 done, 0 skipped, 0 failed) in ")
    assert summary["jobs"][0]["status"] == "done" and summary.counts["done"] == 4 and summary.failed == []
    assert len(repr(summary).splitlines()) == 1 and len(repr(summary)) < 200

    (folder / "tickets" / f"{summary['jobs'][0]['id']}.h5").unlink()  # one ticket lost: that job runs again
    plan = Study.from_toml(tmp_path / "s.toml", folder).plan()
    assert [p.action for p in plan.jobs] == ["run", "reuse", "reuse", "reuse"]
    assert plan.jobs[0].seconds == summary["jobs"][0]["wall_seconds"] and plan.jobs[0].basis == "this job's last run"
    res = run("study", "run", tmp_path / "s.toml", "-o", folder, "--dry-run", "--jobs", "2")
    assert "1 to run, 3 reused" in res.output and "of work" in res.output, res.output

    other = tmp_path / "runs" / "other"  # a new study beside it: estimated from that one's runs
    plan = Study.from_toml(tmp_path / "s.toml", other).plan()
    assert [p.basis for p in plan.jobs if p.action == "run"] == [
        "median of 2 runs of this configuration"] * 2 + ["one previous run of this configuration"]


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    import os
    import subprocess
    import sys

    # an interval well below the rounds' run time (about 1 s for 300 rounds on a quiet machine)
    env = {**os.environ, "TICKETLAB_PROGRESS_SECONDS": "0.02", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "ticketlab", "mine", "--method", "synflow", "--rounds", "300", "-o",
                           str(tmp_path / "s.h5")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress ")]
    assert any("synflow: rounds" in line and "/300" in line for line in lines), proc.stderr
    assert not [line for line in proc.stdout.splitlines() if line.startswith("progress ")]
    env["TICKETLAB_PROGRESS_SECONDS"] = "0"
    from ticketlab.progress import LineProgress, NullProgress, make_progress

    os.environ["TICKETLAB_PROGRESS_SECONDS"] = "0.2"
    try:
        assert isinstance(make_progress(), LineProgress) or sys.stderr.isatty()
        assert type(make_progress(False)) is NullProgress
    finally:
        os.environ["TICKETLAB_PROGRESS_SECONDS"] = "0"


# ----------------------------------------------------------------------------- README
def test_readme_tours_state_no_timing_that_no_measurement_made():
    """Durations of runs come from generated pages (layer_collapse.md's seconds column), not from the README's
    hand-written comments, which went stale (SNIP's collapse run: '2.5 min' where 22 s was measured)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    blocks = "".join(re.findall(r"```(?:bash|python)\n(.*?)```", (root / "README.md").read_text(), flags=re.S))
    assert "ticketlab collapse" in blocks
    timings = re.findall(r"~?\b\d+(?:\.\d+)? ?(?:s|sec|seconds|min|minutes|h|hours)\b", blocks)
    assert not timings, timings
    assert "| seconds |" in (root / "docs" / "results" / "layer_collapse.md").read_text()


# ----------------------------------------------------------------------------- plots
def test_profile_plot_has_a_title_an_x_label_and_level_names_when_they_fit(tmp_path):
    import numpy as np

    from ticketlab.metrics import plot_profiles
    from ticketlab.ticket import Ticket

    rng = np.random.default_rng(0)
    few = [Ticket(masks={f"fc{i}.weight": rng.random((4, 4)) < 0.3 for i in (1, 2, 3)}) for _ in range(2)]
    ax = plot_profiles(few, tmp_path / "p.png", labels=["a", "b"]).axes[0]
    assert ax.get_title() and ax.get_xlabel() == "layer (prunable parameter)"
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {0.0}
    assert all("(density " in t.get_text() for t in ax.get_legend().get_texts())
    names = [f"features.{i}.weight" for i in range(16)]
    many = [Ticket(masks={n: rng.random((4, 4)) < 0.3 for n in names}) for _ in range(2)]
    ax = plot_profiles(many, labels=["a", "b"]).axes[0]
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {45.0}  # too long to stand side by side


def test_barrier_plot_shows_the_loss_too():
    from ticketlab.metrics.barrier import BarrierResult, plot_barrier

    r = BarrierResult([0.0, 0.5, 1.0], [0.1, 0.3, 0.1], [0.2, 0.9, 0.2], 0.2, 0.7)
    err, loss = plot_barrier([r]).axes
    assert list(loss.lines[0].get_ydata()) == [0.2, 0.9, 0.2] and "loss" in loss.get_ylabel()
    assert "barrier 0.7" in loss.get_legend().get_texts()[0].get_text() and loss.get_xlabel() == err.get_xlabel()


def test_collapse_plot_has_an_x_label(tmp_path, monkeypatch):
    from ticketlab import collapse
    from ticketlab.metrics import _plot

    figures = []
    real = _plot.save_figure
    monkeypatch.setattr(_plot, "save_figure", lambda fig, path, **kw: (figures.append(fig), real(fig, path, **kw))[1])
    study = collapse.critical_compression("lenet_300_100", ["magnitude_init"], dataset="digits", device="cpu")
    collapse.plot_layer_densities(study, tmp_path / "c.png")
    assert figures[0].axes[0].get_xlabel() == "prunable layer, from input to output"


def test_matrix_heatmap_colour_bar_is_labelled():
    import numpy as np

    from ticketlab.metrics import pairwise_matrix
    from ticketlab.ticket import Ticket

    rng = np.random.default_rng(1)
    tickets = [Ticket(masks={"w": rng.random((6, 6)) < 0.4}) for _ in range(3)]
    fig = pairwise_matrix(tickets, "jaccard", labels=["a", "b", "c"]).plot()
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == ["jaccard, 1 = identical"]
