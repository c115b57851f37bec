"""``ticketlab train``: train a ticket's sparse network and write the trained ticket (thin over
:func:`ticketlab.retraining.train`)."""

from __future__ import annotations

from pathlib import Path

import click

from ticketlab.cli.common import (
    SEED, common_options, data_root_option, device_option, parse_train_options, progress_for, renamed_value,
    train_options, weights_option,
)
from ticketlab.cli.render import console, visible, warn_unhealthy

#: ``ticketlab.retraining.WEIGHTS_CHOICES`` (repeated so that building the command never imports
#: torch; a test keeps the two equal).
WEIGHTS_HELP = ("init, rewind:K (the dense network trained K iterations first, then the sparse one from "
             "iteration K), reinit, signed_constant, signed_std, rand_signed_constant, rand_signed_std, "
             "random_reshuffle, signed_reshuffle, random_reinit, signed_reinit (the layer's init permuted)")


@click.command("train")
@click.argument("ticket", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Trained ticket to write (atomically; never the source).")
@weights_option("init", f"Starting weights: {WEIGHTS_HELP}.")
@train_options("Epochs of training [default: the model and data set's, as mine].")
@click.option("--seed", type=SEED, default=None, help="Training seed [default: the ticket's seed].")
@data_root_option()
@device_option
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON.")
@common_options
@click.pass_context
def command(ctx: click.Context, ticket: Path, output: Path, weights: str, kept: str | None,
            train_epochs: int | None, train_option_text: tuple[str, ...], seed: int | None, data_root: Path | None,
            device: str, as_json: bool) -> None:
    """Train a ticket from its init weights (pruned weights stay 0) and write the trained ticket.

    The new ticket has the same masks, the source's provenance plus a trained_from record, its
    final weights and the training's history. A ticket without stored weights is re-created from
    its provenance (model, data set, seed).

    \b
    ticketlab train a.h5 -o a_trained.h5
    ticketlab train i.h5 --weights rewind:50 --train-option lr=0.0006 -o i_trained.h5
    """
    from ticketlab.errors import ConfigError
    from ticketlab.fileformat import save
    from ticketlab.retraining import train

    weights = renamed_value("--kept", "--weights", kept, weights, "init")
    if output.resolve() == ticket.resolve():
        raise ConfigError(f"the trained ticket would replace its source '{ticket}': choose another -o")
    if not output.parent.exists():  # fail before the work, not after it
        raise ConfigError(f"cannot write '{output}': folder '{output.parent}' does not exist")
    with progress_for(ctx) as progress:
        trained = train(ticket, weights=weights, train_epochs=train_epochs,
                        train_options=parse_train_options(train_option_text), seed=seed, device=device,
                        data_root=data_root, progress=progress)
    path = save(trained, output)
    rec = trained.provenance["trained_from"]
    warn_unhealthy(path, trained.provenance.get("health"))  # one line on stderr
    summary = {"path": str(path), "source": str(ticket), "weights": weights, "seed": rec["seed"], "init": rec["init"],
               "density": trained.density, "test_accuracy": trained.provenance["test_accuracy"],
               "source_test_accuracy": rec.get("source_test_accuracy"), "iterations": trained.history[-1]["iterations"],
               "health": trained.provenance.get("health")}
    if as_json:
        import json

        click.echo(json.dumps(summary, indent=2))
        return
    before = rec.get("source_test_accuracy")
    was = f" (the source's: {before:.4f})" if isinstance(before, (int, float)) else ""
    console().print(f"trained {visible(ticket)} ({rec['init']} init, weights {visible(weights)}, seed {rec['seed']}, "
                    f"{summary['iterations']} iterations, density {trained.density:.4g}): test accuracy "
                    f"{summary['test_accuracy']:.4f}{was} -> {visible(path)}")
