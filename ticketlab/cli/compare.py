"""``ticketlab compare``: what tickets share, against chance (never imports torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import common_options, progress_for
from ticketlab.cli.render import console, visible

_NUM_COLUMNS = ("value", "expected", "lift", "z", "p")


def _labels(paths: list[Path]) -> list[str]:
    """Short unique labels: file names if they are unique, else the paths as given; a path given
    twice is labelled ``path#2`` the second time."""
    from ticketlab.metrics.compare import unique_labels

    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return unique_labels([str(p) for p in paths])


def _cell(value: Any, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if column == "p":
            return f"{value:.2g}"
        return f"{value:.4g}"
    return str(value)


def _render_records(records: list[dict[str, Any]], labels: list[str]) -> None:
    """One table per pair (metric, layer, value and the chance columns), one per-ticket table,
    and the notes of metrics that did not apply."""
    from rich.table import Table

    out = console()
    show_layer = any(r["layer"] != "__total__" for r in records)
    notes = sorted({(r["metric"], r["note"]) for r in records if r.get("value") is None and r.get("note")})
    shown = [r for r in records if r.get("value") is not None]
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in shown if r["b"] is not None))
    for a, b in pairs:
        table = Table(title=f"{visible(a)}  vs  {visible(b)}", title_justify="left", box=None, pad_edge=False)
        table.add_column("metric")
        if show_layer:
            table.add_column("layer")
        for col in _NUM_COLUMNS:
            table.add_column(col, justify="right")
        for r in shown:
            if (r["a"], r["b"]) == (a, b):
                layer = [r["layer"]] if show_layer else []
                table.add_row(visible(r["metric"]), *map(visible, layer), *(_cell(r.get(c), c) for c in _NUM_COLUMNS))
        out.print(table)
    singles = [r for r in shown if r["b"] is None]
    if singles:
        table = Table(title="per ticket", title_justify="left", box=None, pad_edge=False)
        table.add_column("metric")
        if show_layer:
            table.add_column("layer")
        present = [lab for lab in labels if any(r["a"] == lab for r in singles)]
        for lab in present:
            table.add_column(visible(lab), justify="right")
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        for r in singles:
            cells.setdefault((r["metric"], r["layer"]), {})[r["a"]] = r["value"]
        for (metric, layer), row in cells.items():
            table.add_row(visible(metric), *([visible(layer)] if show_layer else []), *(_cell(row.get(lab), "value") for lab in present))
        out.print(table)
    if pairs:
        out.print("expected, lift, z, p: against random masks with the same per-layer kept counts "
                  "(hypergeometric null; p is one-sided, for more overlap than chance)")
    for metric, note in notes:
        out.print(f"{metric}: not computed ({note})")


@click.command("compare")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--metric", "metrics", multiple=True,
              help="Metric or group name (repeatable; see `ticketlab list metrics`; 'all' for every one).")
@click.option("--per-layer", is_flag=True, default=False, help="Also report every layer and the layer means.")
@click.option("--common-only", is_flag=True, default=False, help="Compare only the parameters the tickets share.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the records as JSON (docs/compare_schema.md).")
@click.option("--matrix", "matrix_metric", default=None, help="Print an N x N matrix of this pairwise metric.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --matrix: write a clustered heatmap PNG here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --matrix: write the matrix as CSV here.")
@click.option("--profile-plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of the tickets' per-layer density profiles side by side.")
@common_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...], metrics: tuple[str, ...], per_layer: bool,
            common_only: bool, as_json: bool, matrix_metric: str | None, plot: Path | None,
            csv_path: Path | None, profile_plot: Path | None) -> None:
    """Compare tickets: overlap against chance, per-layer sparsity, signs, graph properties.

    \b
    ticketlab compare a.h5 b.h5
    ticketlab compare a.h5 b.h5 --metric jaccard --metric signs --per-layer --json
    ticketlab compare runs/*.h5 --matrix jaccard --plot jaccard.png --csv jaccard.csv
    ticketlab compare a.h5 b.h5 --profile-plot profiles.png
    """
    from ticketlab.errors import ConfigError

    labels = _labels(list(paths))
    if len(paths) < 2:
        raise ConfigError("compare needs at least two ticket files")
    if (plot or csv_path) and not matrix_metric:
        raise ConfigError("--plot and --csv go with --matrix METRIC")
    for out_path in (plot, csv_path, profile_plot):
        if out_path is not None and not out_path.parent.exists():
            raise ConfigError(f"cannot write '{out_path}': folder '{out_path.parent}' does not exist")
    if profile_plot is not None:
        from ticketlab.fileformat import load
        from ticketlab.metrics import plot_profiles

        plot_profiles([load(p, weights=False, scores=False, history=False) for p in paths], profile_plot,
                      labels=labels)
        if not as_json:
            console().print(f"density profiles -> {profile_plot}")
    if matrix_metric:
        _matrix(ctx, list(paths), labels, matrix_metric, common_only, as_json, plot, csv_path)
        return
    from ticketlab.metrics import compare

    with progress_for(ctx) as progress:
        records = compare(list(paths), list(metrics) or None, per_layer=per_layer, common_only=common_only,
                          labels=labels, progress=progress)
    if as_json:
        click.echo(json.dumps(records, indent=2, allow_nan=False))
    else:
        _render_records(records, labels)


def _matrix(ctx: click.Context, paths: list[Path], labels: list[str], metric: str, common_only: bool,
            as_json: bool, plot: Path | None, csv_path: Path | None) -> None:
    from ticketlab.metrics import pairwise_matrix

    with progress_for(ctx) as progress:
        m = pairwise_matrix(paths, metric, labels=labels, common_only=common_only, progress=progress)
    if csv_path is not None:
        from ticketlab.atomic import atomic_write_text

        atomic_write_text(csv_path, m.to_csv())
    if plot is not None:
        m.plot(plot)
    if as_json:
        click.echo(json.dumps(m.to_records(), indent=2, allow_nan=False))
        return
    from rich.table import Table

    order = m.order()
    table = Table(title=f"{metric} (rows and columns in clustering order)", box=None, pad_edge=False)
    table.add_column("")
    for j in order:
        table.add_column(visible(m.labels[j]), justify="right")
    for i in order:
        table.add_row(visible(m.labels[i]), *(_cell(float(m.values[i][j]), "value") for j in order))
    out = console()
    out.print(table)
    for what, p in (("heatmap", plot), ("csv", csv_path)):
        if p is not None:
            out.print(f"{what} -> {p}")
