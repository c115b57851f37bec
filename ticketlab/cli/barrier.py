"""``ticketlab barrier``: the loss barrier between two trained tickets (linear mode connectivity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import SEED, common_options, data_root_option, device_option
from ticketlab.cli.render import console, visible


def _alphas(text: str) -> Any:
    """``--alphas``: a number of points (``11``) or values (``0.5``, ``0,0.25,0.5,1``).

    Example:
        >>> _alphas("11"), _alphas("0.5"), _alphas("0, 0.25,1")
        (11, [0.5], [0.0, 0.25, 1.0])
    """
    from ticketlab.errors import ConfigError

    try:
        if "," not in text and "." not in text:
            return int(text)
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--alphas takes a number of points (e.g. 11) or values in [0, 1] separated by "
                          f"commas (e.g. 0,0.5,1), not '{text}'") from None


@click.command("barrier")
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--alphas", "alphas_text", default="11", show_default=True, metavar="N|A,B,...",
              help="Points evenly spaced on [0, 1] (both ends), or the alphas themselves, comma-separated "
                   "(0 and 1 are always evaluated).")
@click.option("--align", type=click.Choice(["weights"]), default=None,
              help="Relabel B's hidden units to match A's (weight matching on the final weights) first.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True,
              help="Which split of the tickets' data set to evaluate.")
@click.option("--recalibrate", type=click.IntRange(0), default=None,
              help="Training batches (128 samples) that re-estimate batch-norm statistics at each alpha "
                   "[default: 10; 0 = interpolate the statistics]; ignored without batch norm.")
@click.option("--seed", type=SEED, default=None,
              help="Seed of the recalibration batches and the alignment [default: A's seed].")
@data_root_option()
@device_option
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the result as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of the error against alpha here.")
@common_options
def command(a: Path, b: Path, alphas_text: str, align: str | None, split: str, recalibrate: int | None,
            seed: int | None, data_root: Path | None, device: str, as_json: bool, plot: Path | None) -> None:
    """Error along the straight line between two trained tickets, and its barrier.

    Evaluates (1 - alpha) * A + alpha * B (every trained tensor; the union of the masks) and reports
    barrier = max error - mean of the endpoints' errors (Frankle et al. 2020). Both tickets need
    their trained state: mine with a method that trains or --train-ticket, or use `ticketlab train`.

    \b
    ticketlab barrier a.h5 b.h5
    ticketlab barrier rounds/round_03.h5 rounds/round_04.h5 --alphas 21 --plot barrier.png
    ticketlab barrier a.h5 b.h5 --align weights --json
    """
    from ticketlab.errors import ConfigError
    from ticketlab.metrics.barrier import barrier, plot_barrier

    if plot is not None and not plot.parent.exists():
        raise ConfigError(f"cannot write '{plot}': folder '{plot.parent}' does not exist")
    res = barrier(a, b, alphas=_alphas(alphas_text), align=align, split=split, recalibrate=recalibrate,
                  data_root=data_root, device=device, seed=seed)
    if plot is not None:
        plot_barrier([res], plot)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2, allow_nan=False))
        return
    _render(res, plot)


def _render(res: Any, plot: Path | None) -> None:
    from rich.table import Table

    la, lb = (visible(x) for x in res.labels)
    title = f"{la}  ->  {lb}" + ("  (B aligned to A by weights)" if res.align else "")
    table = Table(box=None, pad_edge=False)
    for col in ("alpha", f"{res.split} error", f"{res.split} loss"):
        table.add_column(col, justify="right")
    for alpha, err, loss in zip(res.alphas, res.error, res.loss):
        table.add_row(f"{alpha:.3g}", _num(err), _num(loss))
    out = console()
    out.print(title)  # not the table's title: rich would wrap it to the table's width
    out.print(table)
    out.print(f"barrier: {_num(res.barrier)} error, {_num(res.loss_barrier)} loss "
              "(max over alpha minus the mean of the two endpoints; Frankle et al. 2020)")
    bn = (f"batch-norm statistics re-estimated at each alpha on {res.recalibration_batches} training batches"
          if res.recalibration_batches else
          "batch-norm statistics interpolated" if res.batchnorm else "no batch norm")
    out.print(f"mask: union of the two (density {res.density[0]:.4g} and {res.density[1]:.4g} -> "
              f"{res.union_density:.4g}); {bn}")
    if plot is not None:
        out.print(f"plot -> {visible(str(plot))}")


def _num(x: float) -> str:
    return "nan" if x != x else f"{x:.4f}"
