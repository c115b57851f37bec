"""``ticketlab list``: the registered miners, models, data sets and metrics."""

from __future__ import annotations

import click

from ticketlab.cli.common import common_options
from ticketlab.cli.render import console

KINDS = ("miners", "models", "datasets", "metrics")


def _rows(kind: str) -> list[tuple[str, str]]:
    """(name, one-line description) for every registered entry of ``kind``."""
    if kind == "miners":
        from ticketlab.miners import get_miner, list_miners

        return [(n, _first_line(get_miner(n).__doc__)) for n in list_miners()]
    if kind == "models":
        from ticketlab.models import get_model_info, list_models

        return [(n, f"[{get_model_info(n).kind}] {get_model_info(n).description}") for n in list_models()]
    if kind == "datasets":
        from ticketlab.data import get_dataset_info, list_datasets

        return [(n, f"[{get_dataset_info(n).kind}] {get_dataset_info(n).description}") for n in list_datasets()]
    from ticketlab.metrics import get_metric, list_metrics

    return [(n, _first_line(getattr(get_metric(n), "__doc__", ""))) for n in list_metrics()]


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n")[0]


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS), required=False)
@common_options
def command(kind: str | None) -> None:
    """List what is registered: miners, models, datasets or metrics (default: all)."""
    out = console()
    for k in [kind] if kind else KINDS:
        out.print(f"{k}")
        for name, desc in _rows(k):
            out.print(f"  {name:<16} {desc}")
