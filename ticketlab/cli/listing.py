"""``ticketlab list``: the registered miners, models, data sets, metrics and metric groups.

Every description is the entry's ``description`` (for miners and metrics registered without one:
the summary, i.e. the whole first paragraph, of its docstring), shown whole; long lines wrap in
their column. Nothing here imports torch (:mod:`ticketlab.catalog`).
"""

from __future__ import annotations

import click

from ticketlab.cli.common import common_options
from ticketlab.cli.render import console, visible

KINDS = ("miners", "models", "datasets", "metrics", "groups")


def _rows(kind: str) -> list[tuple[str, ...]]:
    """(name, [detail,] one-line description) for every registered entry of ``kind``.

    Miners, models and data sets come from :mod:`ticketlab.catalog` (so listing them never
    imports torch); metrics from their registry (numpy only)."""
    if kind in ("miners", "models", "datasets"):
        from ticketlab.catalog import entries

        return [(n, f"[{k}] {d}" if k else d) for n, (k, d) in entries(kind).items()]
    from ticketlab.metrics import get_metric, list_groups, list_metrics

    if kind == "metrics":
        return [(n, get_metric(n).group + ("*" if get_metric(n).default else ""), get_metric(n).description)
                for n in list_metrics()]
    return [(g, ", ".join(names) + _group_note([get_metric(n) for n in names]))
            for g, names in list_groups().items()]


def _group_note(metrics: list) -> str:
    """What a group's members need beyond masks, and whether ``compare`` runs them by default."""
    needs = list(dict.fromkeys(need for m in metrics for need in m.needs))
    parts = []
    if all(m.default for m in metrics):
        parts.append("run by default")
    elif any(m.default for m in metrics):
        parts.append("partly run by default")
    weights = [n for n in needs if n in ("init", "final")]
    if weights:
        parts.append(f"need the {' and '.join(weights)} weights stored in the tickets")
    if "topology" in needs:
        parts.append("use the model's topology when the ticket stores it")
    return f" ({'; '.join(parts)})" if parts else ""


_TITLES = {
    "metrics": "metrics (with their group; * = run by `ticketlab compare` by default)",
    "groups": "metric groups (`ticketlab compare --metric GROUP` runs every member; --metric all runs every metric)",
}


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS), required=False)
@common_options
def command(kind: str | None) -> None:
    """List what is registered: miners, models, datasets, metrics or metric groups (default: all)."""
    from rich.table import Table

    out = console()
    for k in [kind] if kind else KINDS:
        rows = _rows(k)
        table = Table(title=_TITLES.get(k, k), title_justify="left", box=None, show_header=False,
                      pad_edge=False, title_style=None)
        table.add_column(no_wrap=True)  # names are never cut
        for _ in rows[0][1:] if rows else ["description"]:
            table.add_column()
        for row in rows:
            table.add_row(*("  " + visible(row[0]), *map(visible, row[1:])))
        out.print(table)
