"""``ticketlab compare``: what tickets share, against chance (never imports torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import SEED, common_options, progress_for
from ticketlab.cli.compare_text import MANY, matrix_table, render_records
from ticketlab.cli.render import console, visible, warn_unhealthy


def _labels(paths: list[Path]) -> list[str]:
    """Short unique labels: file names if they are unique, else the paths as given; a path given
    twice is labelled ``path#2`` the second time."""
    from ticketlab.metrics.compare import unique_labels

    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return unique_labels([str(p) for p in paths])


def _warn(tickets: list[Any], names: list[str]) -> None:
    """One ``warning:`` line (stderr) per reason the comparison may mislead: densities, models or
    data sets that differ (:func:`ticketlab.metrics.comparison_warnings`)."""
    from ticketlab.metrics.compare import comparison_warnings

    for line in comparison_warnings(tickets, names):
        click.echo(f"warning: {visible(line)}", err=True)


class CompareCommand(click.Command):
    """``compare``, whose help ends with the default metrics and the groups, read from the metric
    registry when the help is shown (so it never drifts, and other commands never import it)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ticketlab.metrics import get_metric, list_groups

        rows = []
        for g, names in list_groups().items():
            metrics = [get_metric(n) for n in names]
            default = [m.name for m in metrics if m.default]
            weights = [w for w in ("init", "final") if any(w in m.needs for m in metrics)]
            if len(default) == len(names):
                tag = " (default)"
            elif default:
                tag = f" (default: {', '.join(default)})"
            elif weights:
                tag = f" (needs {'/'.join(weights)} weights)"
            else:
                tag = ""
            rows.append((g + tag, ", ".join(names)))
        with formatter.section("Metrics"):
            formatter.write_text(
                "Without --metric the metrics of the groups marked (default) run: mask-only and fast. "
                "--metric takes a metric, a group or 'all'. A metric that needs weights a ticket does not "
                "store is skipped, with a note, when a group or 'all' picked it.")
            formatter.write_paragraph()
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


@click.command("compare", cls=CompareCommand)
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--metric", "metrics", multiple=True,
              help="Metric or group name, or 'all' (repeatable; default and groups: see below).")
@click.option("--per-layer", is_flag=True, default=False, help="Also report every layer and the layer means.")
@click.option("--common-only", is_flag=True, default=False, help="Compare only the parameters the tickets share.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the records as JSON (docs/compare_schema.md).")
@click.option("--matrix", "matrix_metric", default=None,
              help="Print an N x N matrix of this pair metric (e.g. jaccard, kappa), or of the overlap against "
                   "chance: lift (observed / expected) or z.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --matrix: write a clustered heatmap PNG here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --matrix: write the matrix as CSV here.")
@click.option("--profile-plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of the tickets' per-layer density profiles side by side.")
@click.option("--null", "null", type=click.Choice(["degree"]), default=None,
              help="Also the degree-preserving null for the overlap metrics (sampled: costs time).")
@click.option("--null-samples", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="Samples per ticket of a sampled null.")
@click.option("--null-rounds", type=click.IntRange(1, 10_000), default=30, show_default=True,
              help="With --null degree: curveball rounds to the hub and from it to each sample.")
@click.option("--align", "align", type=click.Choice(["masks", "weights"]), default=None,
              help="Relabel the second ticket's hidden units to match the first's (weight matching on "
                   "the topology) before the pair metrics; adds the aligned null (--null-samples pairs).")
@click.option("--over-time", "over_time", is_flag=True, default=False,
              help="One ticket mined with --track-masks: its mask distance during training per run (Early-Bird), "
                   "against chance 2d(1-d); with --plot, the curve as a PNG.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the null samples (the same seed gives the same output).")
@click.option("--pair-tables", is_flag=True, default=False,
              help=f"With more than {MANY} tickets: a table per pair, as for few tickets (default: the matrix and "
                   "a summary per pair).")
@click.option("--wide", is_flag=True, default=False,
              help="One line per table row however wide (default: tables wider than the terminal are stacked).")
@common_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...], metrics: tuple[str, ...], per_layer: bool,
            common_only: bool, as_json: bool, matrix_metric: str | None, plot: Path | None,
            csv_path: Path | None, profile_plot: Path | None, null: str | None, null_samples: int,
            null_rounds: int, align: str | None, seed: int, over_time: bool, pair_tables: bool, wide: bool) -> None:
    """Compare tickets: overlap against chance, per-layer sparsity, signs, graph properties.

    \b
    ticketlab compare a.h5 b.h5
    ticketlab compare a.h5 b.h5 --metric jaccard --metric signs --per-layer --json
    ticketlab compare runs/*.h5 --matrix jaccard --plot jaccard.png --csv jaccard.csv
    ticketlab compare runs/*.h5 --matrix lift
    ticketlab compare a.h5 b.h5 --profile-plot profiles.png
    ticketlab compare a.h5 b.h5 --metric jaccard --null degree --null-samples 50 --seed 1
    ticketlab compare a.h5 b.h5 --metric overlap --align masks --null-samples 20
    ticketlab compare --over-time imp.h5 --plot distance.png
    ticketlab compare t.h5 --metric relational --per-layer
    """
    from ticketlab.errors import ConfigError

    out = console(wide=wide)
    if over_time:
        _over_time(out, list(paths), plot, as_json)
        return
    labels = _labels(list(paths))
    if len(paths) < 2 and not _single_only(metrics, matrix_metric):
        raise ConfigError("compare needs at least two ticket files (one is enough for single-ticket metrics, "
                          "e.g. --metric relational)")
    if (null is not None or align is not None) and matrix_metric:
        raise ConfigError("--null and --align go with the records, not with --matrix")
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
            out.print(f"density profiles -> {profile_plot}")
    if matrix_metric:
        _matrix(ctx, out, list(paths), labels, matrix_metric, common_only, as_json, plot, csv_path)
        return
    from ticketlab.metrics import compare, prepare, resolve_metrics

    tickets, names = prepare(list(paths), resolve_metrics(list(metrics) or None), labels=labels,
                             common_only=common_only, load_weights=align == "weights")
    _warn(tickets, names)
    with progress_for(ctx) as progress:
        records = compare(tickets, list(metrics) or None, per_layer=per_layer, labels=names, progress=progress,
                          null=null, null_samples=null_samples, null_rounds=null_rounds, seed=seed, align=align)
    for label, summary in _unhealthy(records).items():  # one line per unhealthy ticket, on stderr
        warn_unhealthy(label, {"status": "unhealthy", "summary": summary})
    if as_json:
        click.echo(json.dumps(records, indent=2, allow_nan=False))
    else:
        sampled = null is not None or align is not None
        render_records(out, records, names, hint=not metrics, samples=null_samples if sampled else None,
                       pair_tables=pair_tables)


def _single_only(metrics: tuple[str, ...], matrix_metric: str | None) -> bool:
    """Whether the metrics named (not the defaults, no matrix) are all single-ticket metrics."""
    if not metrics or matrix_metric:
        return False
    from ticketlab.metrics import resolve_metrics

    return all(m.kind == "single" for m in resolve_metrics(list(metrics)))


def _unhealthy(records: list[dict[str, Any]]) -> dict[str, str]:
    """Label -> health summary of every unhealthy ticket, in the order first seen (the records'
    ``health_a`` / ``health_b``)."""
    out: dict[str, str] = {}
    for r in records:
        for side in ("a", "b"):
            if f"health_{side}" in r:
                out.setdefault(r[side], r[f"health_{side}"])
    return out


def _matrix(ctx: click.Context, out: Any, paths: list[Path], labels: list[str], metric: str, common_only: bool,
            as_json: bool, plot: Path | None, csv_path: Path | None) -> None:
    from ticketlab.metrics import pairwise_matrix
    from ticketlab.metrics.compare import prepare
    from ticketlab.metrics.health import health
    from ticketlab.metrics.many import _matrix_metric
    from ticketlab.metrics.registry import CHANCE_MATRICES

    needs = [] if metric in CHANCE_MATRICES else [_matrix_metric(metric)]
    tickets, names = prepare(paths, needs, labels=labels, common_only=common_only)
    _warn(tickets, names)
    for name, t in zip(names, tickets):  # one line per unhealthy ticket, on stderr
        warn_unhealthy(name, health(t).to_dict())
    with progress_for(ctx) as progress:
        m = pairwise_matrix(tickets, metric, labels=names, common_only=common_only, progress=progress)
    if csv_path is not None:
        from ticketlab.atomic import atomic_write_text

        atomic_write_text(csv_path, m.to_csv())
    if plot is not None:
        m.plot(plot)
    if as_json:
        click.echo(json.dumps(m.to_records(), indent=2, allow_nan=False))
        return
    table, lines = matrix_table(m)
    out.print(table)
    for line in lines:
        out.print(line)
    for what, p in (("heatmap", plot), ("csv", csv_path)):
        if p is not None:
            out.print(f"{what} -> {visible(str(p))}")


def _over_time(out: Any, paths: list[Path], plot: Path | None, as_json: bool) -> None:
    """``--over-time``: the tracked mask distances of one ticket (``mine --track-masks``)."""
    from ticketlab.errors import ConfigError
    from ticketlab.fileformat import load
    from ticketlab.metrics.over_time import mask_distance_curves, plot_mask_distance

    if len(paths) != 1:
        raise ConfigError("--over-time reads one ticket file")
    if plot is not None and not plot.parent.exists():
        raise ConfigError(f"cannot write '{plot}': folder '{plot.parent}' does not exist")
    history = load(paths[0], weights=False, scores=False).history
    curves = mask_distance_curves(history)
    if plot is not None:
        plot_mask_distance(history, plot, title=paths[0].name)
    if as_json:
        out = {run: {k: [None if v != v else float(v) for v in c[k].tolist()] if k != "iteration"
                     else c[k].tolist() for k in c} for run, c in curves.items()}
        click.echo(json.dumps(out, indent=2, allow_nan=False))
        return
    from ticketlab.cli.render import Table

    table = Table(title=f"mask distance during training: {visible(paths[0].name)}")
    for col in ("run", "iteration", "distance", "chance", "relative"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for run, c in curves.items():
        for i in range(len(c["iteration"])):
            table.add_row(visible(run), str(int(c["iteration"][i])), f"{c['distance'][i]:.4f}",
                          f"{c['chance'][i]:.4f}", f"{c['relative'][i]:.3f}")
    out.print(table)
    if plot is not None:
        out.print(f"mask distance -> {visible(str(plot))}")
