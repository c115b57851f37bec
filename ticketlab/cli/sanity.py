"""``ticketlab sanity``: Frankle et al. 2021's sanity checks of tickets (thin over
:func:`ticketlab.sanity.sanity_many`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import (
    common_options, data_root_option, device_option, parse_train_options, progress_for, renamed_value, train_options,
    weights_option,
)
from ticketlab.cli.render import console, visible


@click.command("sanity")
@click.argument("tickets", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--checks", default="shuffle_layerwise,reinit,invert", show_default=True, metavar="C1,C2,...",
              help="Transforms to check (see docs/transforms.md): shuffle_layerwise, shuffle_global, invert, reinit.")
@click.option("--seeds", type=int, default=3, show_default=True,
              help="Seeds 0..N-1: each is a transform's seed and the training seed of the check and the original.")
@weights_option("init", "Starting weights of every training, as ticketlab train's --weights (e.g. rewind:50 for IMP).")
@train_options("Epochs of every training [default: the model and data set's, as mine].")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Ticket files checked in parallel (worker processes sharing the cores: cores // jobs threads each).")
@data_root_option()
@device_option
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the tables as JSON (strict: no NaN).")
@common_options
@click.pass_context
def command(ctx: click.Context, tickets: tuple[Path, ...], checks: str, seeds: int, weights: str,
            kept: str | None, train_epochs: int | None, train_option_text: tuple[str, ...], jobs: int,
            data_root: Path | None, device: str, as_json: bool) -> None:
    """Train each check's ticket and the original with the same seeds; compare their accuracies.

    A check "hurts" when its mean test accuracy is below the original's by more than max(2
    standard errors of the difference, 0.5 percentage points); the verdict says what that means
    (layer-wise shuffling: "the method's structure matters" / "only the layer-wise densities matter").

    \b
    ticketlab sanity a.h5 --checks shuffle_layerwise --seeds 1
    ticketlab sanity s.h5 i.h5 --seeds 3 --jobs 2 --json
    """
    from ticketlab.sanity import MIN_SEEDS, sanity_many

    weights = renamed_value("--kept", "--weights", kept, weights, "init")
    names = [c.strip() for c in checks.split(",") if c.strip()]
    with progress_for(ctx) as progress:
        results = sanity_many(tickets, jobs=jobs, progress=progress, checks=names, seeds=seeds, weights=weights,
                              train_epochs=train_epochs, train_options=parse_train_options(train_option_text),
                              device=device, data_root=data_root)
    if as_json:
        import json

        data: Any = [r.to_dict() for r in results]
        click.echo(json.dumps(data if len(data) > 1 else data[0], indent=2, allow_nan=False))
        return
    out = console()
    for path, r in zip(tickets, results):
        out.print(_table(path, r))
    out.print("hurts / helps: a difference beyond max(2 standard errors, 0.5 pp); ±: sample std over the seeds")
    if any(len(r.seeds) < MIN_SEEDS for r in results):
        out.print(f"one seed: no verdict is possible, since nothing shows how much the accuracies vary from seed to "
                  f"seed; run --seeds {MIN_SEEDS} or more (default 3)")


def _table(path: Path, r: Any) -> Any:
    from rich.table import Table

    t = r.ticket
    title = (f"{visible(path)}: {visible(t.get('method'))} on {visible(t.get('model'))} / {visible(t.get('dataset'))}, "
             f"density {t['density']:.4g}, weights {visible(r.weights)}, seeds {', '.join(map(str, r.seeds))}")
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for name, justify in (("check", "left"), ("accuracy", "right"), ("original", "right"),
                          ("difference", "right"), ("effect", "left"), ("verdict", "left")):
        table.add_column(name, justify=justify)
    for row in r.rows:
        table.add_row(visible(row.check), _pm(row.mean, row.std), _pm(row.original_mean, row.original_std),
                      f"{row.difference * 100:+.2f} pp", row.effect, row.verdict)
    return table


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"
