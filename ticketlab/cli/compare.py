"""``ticketlab compare``: what tickets share, against chance (never imports torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import SEED, common_options, progress_for
from ticketlab.cli.render import console, visible, warn_unhealthy

_NUM_COLUMNS = ("value", "expected", "lift", "z", "p")
#: Columns of the degree-preserving null, shown when the records have them (--null degree).
_DEGREE_COLUMNS = ("expected_degree", "lift_degree", "p_degree")
#: Columns of the aligned null, shown when the records have them (--align).
_ALIGNED_COLUMNS = ("expected_aligned", "sd_aligned", "p_aligned")


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
        if column in ("p", "p_degree", "p_aligned"):
            return f"{value:.2g}"
        return f"{value:.4g}"
    return str(value)


def _render_records(records: list[dict[str, Any]], labels: list[str], *, hint: bool = False) -> None:
    """One table per pair of tickets (metric, layer, value and the chance columns; an asymmetric
    metric also with the two tickets swapped, as ``metric (b, a)``), one per-ticket table, the
    metrics that were not computed and why, and with ``hint`` how to ask for more."""
    from rich.table import Table

    out = console()
    show_layer = any(r["layer"] != "__total__" for r in records)
    shown = [r for r in records if r.get("value") is not None]
    pairs: dict[frozenset[str], tuple[str, str]] = {}
    for r in shown:
        if r["b"] is not None:
            pairs.setdefault(frozenset((r["a"], r["b"])), (r["a"], r["b"]))
    swapped: list[str] = []
    columns = _NUM_COLUMNS + tuple(c for c in _DEGREE_COLUMNS + _ALIGNED_COLUMNS if any(c in r for r in shown))
    for a, b in pairs.values():
        table = Table(title=f"{visible(a)}  vs  {visible(b)}", title_justify="left", box=None, pad_edge=False)
        table.add_column("metric")
        if show_layer:
            table.add_column("layer")
        for col in columns:
            table.add_column(col.replace("expected_", "exp_"), justify="right")
        for r in shown:
            if (r["a"], r["b"]) in ((a, b), (b, a)):
                name = r["metric"]
                if (r["a"], r["b"]) == (b, a):
                    swapped.append(name)
                    name += " (b, a)"
                layer = [r["layer"]] if show_layer else []
                table.add_row(visible(name), *map(visible, layer), *(_cell(r.get(c), c) for c in columns))
        out.print(table)
    singles = [r for r in shown if r["b"] is None]
    chance = [r for r in singles if any(c in r for c in ("expected", "expected_degree"))]
    for lab in labels:  # single-ticket metrics with chance fields: a table per ticket with them
        rows = [r for r in chance if r["a"] == lab]
        if rows:
            _single_chance_table(out, lab, rows, show_layer)
    singles = [r for r in singles if not any(c in r for c in ("expected", "expected_degree"))]
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
    if swapped:
        names = ", ".join(dict.fromkeys(swapped))
        out.print(f"(b, a): {visible(names)} is asymmetric, so it is also given with the two tickets swapped "
                  "(the second file of the title as a); see `ticketlab list metrics`")
    if pairs:
        out.print("expected, lift, z, p: against random masks with the same per-layer kept counts "
                  "(hypergeometric null; p is one-sided, for more overlap than chance)")
    if any(c in columns for c in _ALIGNED_COLUMNS):
        out.print("exp_aligned, sd_aligned, p_aligned: random masks of the same per-layer counts, aligned the same "
                  "way (the hypergeometric columns ignore that alignment raises the overlap)")
    if any(c in columns for c in _DEGREE_COLUMNS) or any("expected_degree" in r for r in chance):
        out.print("exp_degree, lift_degree, p_degree: against random masks in which every unit keeps its "
                  "degree in every layer (curveball samples; p is the add-one empirical p)")
    if any(r["metric"].startswith("relational_") for r in chance):
        out.print("relational_*: expected, lift, z, p from random masks with the same per-layer counts (sampled; "
                  "p = add-one P(null >= value)); se: standard error of a node-sampled estimate")
    for line in _not_computed(records) + _notes(records):
        out.print(line)
    if hint:
        out.print(_more_hint())


#: Columns of a single-ticket metric against chance, shown when its records have them.
_SINGLE_COLUMNS = ("value", "se", "expected", "lift", "z", "p") + _DEGREE_COLUMNS


def _single_chance_table(out: Any, label: str, rows: list[dict[str, Any]], show_layer: bool) -> None:
    """One ticket's single-ticket metrics that carry chance fields (``empty_kernels``, the
    relational measures): value, its standard error when estimated, and the null columns."""
    from rich.table import Table

    columns = [c for c in _SINGLE_COLUMNS if any(c in r for r in rows)]
    table = Table(title=f"{visible(label)}, against chance", title_justify="left", box=None, pad_edge=False)
    table.add_column("metric")
    if show_layer:
        table.add_column("layer")
    for col in columns:
        table.add_column(col.replace("expected_", "exp_"), justify="right")
    for r in rows:
        layer = [visible(r["layer"])] if show_layer else []
        table.add_row(visible(r["metric"]), *layer, *(_cell(r.get(c), c) for c in columns))
    out.print(table)


def _by_note(records: list[dict[str, Any]], computed: bool) -> dict[str, list[str]]:
    """Each note of the records with (``computed``) or without a value, and the metrics it names."""
    notes: dict[str, list[str]] = {}
    for r in records:
        if r.get("note") and (r.get("value") is not None) == computed:
            metrics = notes.setdefault(r["note"], [])
            if r["metric"] not in metrics:
                metrics.append(r["metric"])
    return notes


def _cap(lines: list[str], most: int, more: str) -> list[str]:
    return lines[:most] + [more.format(len(lines) - most)] if len(lines) > most else lines


def _not_computed(records: list[dict[str, Any]], most: int = 6) -> list[str]:
    """One line per reason a metric has no value, naming the metrics it applies to (at most
    ``most`` lines, then a count; ``--json`` has every record)."""
    lines = [f"not computed: {visible(', '.join(m))} ({visible(note)})" for note, m in _by_note(records, False).items()]
    return _cap(lines, most, "not computed: {} more reasons (see --json)")


def _notes(records: list[dict[str, Any]], most: int = 6) -> list[str]:
    """One line per note that a computed record carries (e.g. weights left out, the rule that
    decided a shared initialisation, a topology read as a chain), naming its metrics."""
    lines = [f"note: {visible(', '.join(m))}: {visible(note)}" for note, m in _by_note(records, True).items()]
    return _cap(lines, most, "note: {} more notes (see --json)")


def _more_hint() -> str:
    """The line after a default comparison: the groups it left out (from the metric registry)."""
    from ticketlab.metrics import get_metric, list_groups

    rest = [g for g, names in list_groups().items() if not any(get_metric(n).default for n in names)]
    return ("more: " + "".join(f"--metric {g}, " for g in rest) + "--metric all; --per-layer for every layer "
            "(see `ticketlab list groups`)")


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
@click.option("--matrix", "matrix_metric", default=None, help="Print an N x N matrix of this pairwise metric.")
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
@common_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...], metrics: tuple[str, ...], per_layer: bool,
            common_only: bool, as_json: bool, matrix_metric: str | None, plot: Path | None,
            csv_path: Path | None, profile_plot: Path | None, null: str | None, null_samples: int,
            null_rounds: int, align: str | None, seed: int, over_time: bool) -> None:
    """Compare tickets: overlap against chance, per-layer sparsity, signs, graph properties.

    \b
    ticketlab compare a.h5 b.h5
    ticketlab compare a.h5 b.h5 --metric jaccard --metric signs --per-layer --json
    ticketlab compare runs/*.h5 --matrix jaccard --plot jaccard.png --csv jaccard.csv
    ticketlab compare a.h5 b.h5 --profile-plot profiles.png
    ticketlab compare a.h5 b.h5 --metric jaccard --null degree --null-samples 50 --seed 1
    ticketlab compare a.h5 b.h5 --metric overlap --align masks --null-samples 20
    ticketlab compare --over-time imp.h5 --plot distance.png
    ticketlab compare t.h5 --metric relational --per-layer
    """
    from ticketlab.errors import ConfigError

    if over_time:
        _over_time(list(paths), plot, as_json)
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
            console().print(f"density profiles -> {profile_plot}")
    if matrix_metric:
        _matrix(ctx, list(paths), labels, matrix_metric, common_only, as_json, plot, csv_path)
        return
    from ticketlab.metrics import compare

    with progress_for(ctx) as progress:
        records = compare(list(paths), list(metrics) or None, per_layer=per_layer, common_only=common_only,
                          labels=labels, progress=progress, null=null, null_samples=null_samples,
                          null_rounds=null_rounds, seed=seed, align=align)
    for label, summary in _unhealthy(records).items():  # one line per unhealthy ticket, on stderr
        warn_unhealthy(label, {"status": "unhealthy", "summary": summary})
    if as_json:
        click.echo(json.dumps(records, indent=2, allow_nan=False))
    else:
        _render_records(records, labels, hint=not metrics)


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


def _matrix(ctx: click.Context, paths: list[Path], labels: list[str], metric: str, common_only: bool,
            as_json: bool, plot: Path | None, csv_path: Path | None) -> None:
    from ticketlab.metrics import get_metric, pairwise_matrix
    from ticketlab.metrics.compare import prepare
    from ticketlab.metrics.health import health

    tickets, names = prepare(paths, [get_metric(metric)], labels=labels, common_only=common_only)
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
    from rich.table import Table

    order = m.order()
    clustered = m.orientation is not None and len(order) > 1
    how = "in clustering order" if clustered else "in the order given"
    # tickets are numbered in the order given; a column is headed by its ticket's number, and each
    # row shows that number and the whole label, so no label is ever cut to look like another
    table = Table(title=f"{visible(metric)}, rows and columns {how}", title_justify="left", box=None,
                  pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("ticket", overflow="fold")
    for j in order:
        table.add_column(str(j + 1), justify="right", no_wrap=True)
    for i in order:
        table.add_row(str(i + 1), visible(m.labels[i]), *(_cell(float(m.values[i][j]), "value") for j in order))
    out = console()
    out.print(table)
    out.print("#: the tickets in the order given; column k is ticket #k")
    for what, p in (("heatmap", plot), ("csv", csv_path)):
        if p is not None:
            out.print(f"{what} -> {p}")


def _over_time(paths: list[Path], plot: Path | None, as_json: bool) -> None:
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
    from rich.table import Table

    table = Table(title=f"mask distance during training: {visible(paths[0].name)}")
    for col in ("run", "iteration", "distance", "chance", "relative"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for run, c in curves.items():
        for i in range(len(c["iteration"])):
            table.add_row(visible(run), str(int(c["iteration"][i])), f"{c['distance'][i]:.4f}",
                          f"{c['chance'][i]:.4f}", f"{c['relative'][i]:.3f}")
    console().print(table)
    if plot is not None:
        console().print(f"mask distance -> {visible(str(plot))}")
