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
