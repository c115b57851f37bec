"""``ticketlab evaluate``: the accuracy of a ticket's masked network without training."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ticketlab.cli.common import common_options, data_root_option, device_option, renamed_value, weights_option
from ticketlab.cli.render import console, visible, warn_unhealthy


@click.command("evaluate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["val", "test", "train"]), default="val", show_default=True,
              help="Which split of the ticket's data set (fixed by its seed).")
@weights_option(None, "Set the kept weights first: init, signed_std, signed_constant, rand_signed_std, "
                      "rand_signed_constant, random_reshuffle, signed_reshuffle, reinit, random_reinit, signed_reinit "
                      "[default: as stored].")
@click.option("--recalibrate-batches", type=int, default=None,
              help="Training batches (128 samples) that re-estimate batch-norm statistics first [default: 10; 0 = none].")
@data_root_option()
@device_option
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the result as JSON.")
@common_options
def command(path: Path, split: str, weights: str | None, kept: str | None, recalibrate_batches: int | None,
            data_root: Path | None, device: str, as_json: bool) -> None:
    """Evaluate a ticket's masked network untrained (stored or re-created init weights).

    \b
    ticketlab evaluate t.h5                      validation accuracy of w0 * mask
    ticketlab evaluate t.h5 --split test --weights signed_std
    """
    from ticketlab.evaluation import evaluate

    weights = renamed_value("--kept", "--weights", kept, weights)
    result = evaluate(path, split=split, weights=weights, data_root=data_root, device=device,
                      recalibrate=recalibrate_batches)
    warn_unhealthy(path, result.get("health"))  # one line on stderr
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    console().print(evaluation_line(path, result))


def evaluation_line(path: Path, result: dict) -> str:
    """The line ``ticketlab evaluate`` prints: the accuracy next to chance (1 / classes), and the
    batch-norm recalibration only when the model has batch norm.

    Example:
        >>> print(evaluation_line(Path("t.h5"), {"split": "val", "accuracy": 0.1132, "chance": 0.1,
        ...     "loss": 2.3, "density": 0.1, "weights_source": "stored", "weights": "stored",
        ...     "recalibration_batches": 0}))
        t.h5: untrained val accuracy 0.1132 (chance 0.1000), loss 2.3000 (density 0.1, stored init weights, weights: stored)
    """
    bn = (f", batch-norm statistics re-estimated on {result['recalibration_batches']} training batches"
          if result.get("recalibration_batches") else "")
    return (f"{visible(path)}: untrained {result['split']} accuracy {result['accuracy']:.4f} "
            f"(chance {result['chance']:.4f}), loss {result['loss']:.4f} (density {result['density']:.4g}, "
            f"{result['weights_source']} init weights, weights: {visible(result['weights'])}{bn})")
