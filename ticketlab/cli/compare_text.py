"""``ticketlab compare`` as text: the records' tables, the matrices, and the lines that explain them.

Up to :data:`MANY` tickets, one table per pair (every metric with its chance columns) and one
per-ticket table. Beyond that, the records are summarised: the matrix of the headline pair
metric (Jaccard where it ran), one row per pair with its chance columns, and the per-ticket table
with the tickets numbered as in the matrix; ``--pair-tables`` prints the full tables instead.
Tables too wide for the console are stacked by :mod:`ticketlab.cli.render`, so no number is cut.

Numbers: 4 significant digits; p-values 2, ``< 1e-300`` for a p that is 0 in double precision,
and ``(min)`` after an empirical p at its floor ``1 / (samples + 1)``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ticketlab.cli.render import Table, visible

#: More tickets than this: the matrix and a per-pair summary instead of one table per pair.
MANY = 3
#: Below the smallest double any p-value here can come out as (the tails underflow to 0 there).
P_FLOOR = "< 1e-300"
_NUM_COLUMNS = ("value", "expected", "lift", "z", "p")
#: Columns of the degree-preserving null, shown when the records have them (--null degree).
_DEGREE_COLUMNS = ("expected_degree", "lift_degree", "p_degree")
#: Columns of the aligned null, shown when the records have them (--align).
_ALIGNED_COLUMNS = ("expected_aligned", "sd_aligned", "p_aligned")
_EMPIRICAL = ("p_degree", "p_aligned")


def number(value: Any) -> str:
    """A value as shown in a table: 4 significant digits; ``-`` where undefined (NaN).

    Example:
        >>> number(63.2712), number(0.000123456), number(2133), number(float("nan")), number(None)
        ('63.27', '0.0001235', '2133', '-', '')
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "-"
    return visible(value)


def p_text(p: float | None, samples: int | None = None) -> str:
    """A p-value as shown: 2 significant digits; ``< 1e-300`` for a p that underflowed to 0; with
    ``samples`` (an add-one empirical p), ``(min)`` after the smallest p those samples can give,
    ``1 / (samples + 1)``.

    Example:
        >>> p_text(2.6e-231), p_text(0.0), p_text(1 / 21, samples=20), p_text(2 / 21, samples=20)
        ('2.6e-231', '< 1e-300', '0.048 (min)', '0.095')
    """
    if p is None:
        return ""
    if p == 0:
        return P_FLOOR
    if samples is not None and p <= (1 + 1e-9) / (samples + 1):
        return f"{p:.2g} (min)"
    return f"{p:.2g}"


def _cell(value: Any, column: str, samples: int | None) -> str:
    if column == "p" or column in _EMPIRICAL:
        return p_text(value, samples if column in _EMPIRICAL else None)
    return number(value)


def _header(column: str) -> str:
    return column.replace("expected_", "exp_")


def _group(column: str) -> str:
    return "degree" if column in _DEGREE_COLUMNS else "aligned" if column in _ALIGNED_COLUMNS else "chance"


def render_records(out: Any, records: list[dict[str, Any]], labels: list[str], *, hint: bool = False,
                   samples: int | None = None, pair_tables: bool = False) -> None:
    """Print ``records`` (:func:`ticketlab.metrics.compare`'s) on ``out``: the tables (see the
    module docstring), what each column means, the metrics not computed and why, the notes, and
    with ``hint`` how to ask for more. ``samples``: the null samples behind ``p_degree`` and
    ``p_aligned``."""
    shown = [r for r in records if r.get("value") is not None]
    columns = _NUM_COLUMNS + tuple(c for c in _DEGREE_COLUMNS + _ALIGNED_COLUMNS if any(c in r for r in shown))
    many = len(labels) > MANY and not pair_tables
    swapped: list[str] = []
    texts: list[str] = []
    if many:
        headline = _headline(shown)
        if headline:
            matrix = _records_matrix(shown, labels, headline)
            table, legend = matrix_table(matrix)
            out.print(table)
            for line in legend:
                out.print(line)
            out.print(_pair_summary(shown, labels, headline, columns, samples))
        else:
            out.print(ticket_legend(labels))
    else:
        for table, names in _pair_tables(shown, columns, samples):
            out.print(table)
            swapped += names
    chance = [r for r in shown if r["b"] is None and any(c in r for c in ("expected", "expected_degree"))]
    for lab in labels:  # single-ticket metrics with chance fields: a table per ticket with them
        rows = [r for r in chance if r["a"] == lab]
        if rows:
            out.print(_single_chance_table(lab, rows, samples))
    single = _per_ticket([r for r in shown if r not in chance], labels, numbered=many)
    if single is not None:
        out.print(single)
    if swapped:
        names = ", ".join(dict.fromkeys(swapped))
        texts.append(f"(b, a): {visible(names)} is asymmetric, so it is also given with the two tickets swapped "
                     "(the second file of the title as a); see `ticketlab list metrics`")
    if any(r["b"] is not None for r in shown):
        floor = any(r.get("p") == 0 for r in shown)
        texts.append("expected, lift, z, p: against random masks with the same per-layer kept counts "
                     "(hypergeometric null; p is one-sided, for more overlap than chance"
                     + (f"; {P_FLOOR}: too small for a double" if floor else "") + ")")
    texts += _null_legend(columns + (_DEGREE_COLUMNS if any("expected_degree" in r for r in chance) else ()), samples)
    if any(r["metric"].startswith("relational_") for r in chance):
        texts.append("relational_*: expected, lift, z, p from random masks with the same per-layer counts (sampled; "
                     "p = add-one P(null >= value)); se: standard error of a node-sampled estimate")
    texts += _not_computed(records) + _notes(records)
    if many:
        texts.append("every metric for every pair: --pair-tables; one metric over all pairs: --matrix METRIC "
                     "(e.g. kappa, lift, z); every record: --json")
    if hint:
        texts.append(_more_hint())
    for line in texts:
        out.print(line)


def _null_legend(columns: Sequence[str], samples: int | None) -> list[str]:
    """What the sampled nulls' columns are, and the floor of their p-values."""
    n = "" if samples is None else f"{samples} "
    floor = "" if samples is None else (f"; never below 1/{samples + 1} = {1 / (samples + 1):.2g}, "
                                        "marked (min)")
    lines = []
    if any(c in columns for c in _ALIGNED_COLUMNS):
        lines.append(f"exp_aligned, sd_aligned, p_aligned: {n}random masks of the same per-layer counts, aligned the "
                     "same way (the hypergeometric columns ignore that alignment raises the overlap; p is the "
                     f"add-one empirical p{floor})")
    if any(c in columns for c in _DEGREE_COLUMNS):
        lines.append(f"exp_degree, lift_degree, p_degree: against {n}random masks in which every unit keeps its "
                     f"degree in every layer (curveball samples; p is the add-one empirical p{floor})")
    return lines


def _pair_tables(shown: list[dict[str, Any]], columns: Sequence[str],
                 samples: int | None) -> list[tuple[Table, list[str]]]:
    """One table per pair of tickets (metric, layer and the chance columns; an asymmetric metric
    also with the two tickets swapped, as ``metric (b, a)``), and the swapped metrics' names."""
    show_layer = any(r["layer"] != "__total__" for r in shown)
    pairs: dict[frozenset[str], tuple[str, str]] = {}
    for r in shown:
        if r["b"] is not None:
            pairs.setdefault(frozenset((r["a"], r["b"])), (r["a"], r["b"]))
    out = []
    for a, b in pairs.values():
        table = _record_table(f"{visible(a)}  vs  {visible(b)}", columns, show_layer)
        swapped = []
        for r in shown:
            if (r["a"], r["b"]) in ((a, b), (b, a)):
                name = r["metric"]
                if (r["a"], r["b"]) == (b, a):
                    swapped.append(name)
                    name += " (b, a)"
                layer = [visible(r["layer"])] if show_layer else []
                table.add_row(visible(name), *layer, *(_cell(r.get(c), c, samples) for c in columns))
        out.append((table, swapped))
    return out


def _record_table(title: str, columns: Sequence[str], show_layer: bool) -> Table:
    """An empty table of records: metric (and layer) as its row keys, then ``columns``, grouped so
    that a stacked table breaks between the chance, degree and aligned columns."""
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, keys=2 if show_layer else 1)
    table.add_column("metric")
    if show_layer:
        table.add_column("layer")
    for col in columns:
        table.add_column(_header(col), justify="right", group=_group(col))
    return table


#: Columns of a single-ticket metric against chance, shown when its records have them.
_SINGLE_COLUMNS = ("value", "se", "expected", "lift", "z", "p") + _DEGREE_COLUMNS


def _single_chance_table(label: str, rows: list[dict[str, Any]], samples: int | None) -> Table:
    """One ticket's single-ticket metrics that carry chance fields (``empty_kernels``, the
    relational measures): value, its standard error when estimated, and the null columns."""
    show_layer = any(r["layer"] != "__total__" for r in rows)
    columns = [c for c in _SINGLE_COLUMNS if any(c in r for r in rows)]
    table = _record_table(f"{visible(label)}, against chance", columns, show_layer)
    for r in rows:
        layer = [visible(r["layer"])] if show_layer else []
        table.add_row(visible(r["metric"]), *layer, *(_cell(r.get(c), c, samples) for c in columns))
    return table


def _per_ticket(shown: list[dict[str, Any]], labels: list[str], *, numbered: bool) -> Table | None:
    """Single-ticket metrics: a row per (metric, layer), a column per ticket (headed by its number
    when ``numbered``, as in the matrix, else by its label)."""
    singles = [r for r in shown if r["b"] is None]
    if not singles:
        return None
    show_layer = any(r["layer"] != "__total__" for r in singles)
    title = "per ticket" + (" (columns: the tickets' numbers, as in the matrix)" if numbered else "")
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, keys=2 if show_layer else 1)
    table.add_column("metric")
    if show_layer:
        table.add_column("layer")
    present = [lab for lab in labels if any(r["a"] == lab for r in singles)]
    for lab in present:
        table.add_column(str(labels.index(lab) + 1) if numbered else visible(lab), justify="right")
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in singles:
        cells.setdefault((r["metric"], r["layer"]), {})[r["a"]] = r["value"]
    for (metric, layer), row in cells.items():
        table.add_row(visible(metric), *([visible(layer)] if show_layer else []), *(number(row.get(lab)) for lab in present))
    return table


def _headline(shown: list[dict[str, Any]]) -> str | None:
    """The pair metric of the summary: Jaccard where it ran, else the first symmetric pair metric."""
    from ticketlab.errors import UnknownNameError
    from ticketlab.metrics import get_metric

    names = list(dict.fromkeys(r["metric"] for r in shown if r["b"] is not None and r["layer"] == "__total__"))
    if "jaccard" in names:
        return "jaccard"
    for name in names:
        try:
            if get_metric(name).symmetric:
                return name
        except UnknownNameError:  # records of a metric unregistered since
            continue
    return names[0] if names else None


def _records_matrix(shown: list[dict[str, Any]], labels: list[str], metric: str) -> Any:
    """The :class:`~ticketlab.metrics.PairwiseMatrix` of ``metric``'s whole-network records (the
    diagonal, a ticket with itself, is not among the records: NaN)."""
    import numpy as np

    from ticketlab.errors import UnknownNameError
    from ticketlab.metrics import PairwiseMatrix, get_metric

    index = {lab: i for i, lab in enumerate(labels)}
    values = np.full((len(labels), len(labels)), math.nan)
    try:
        m = get_metric(metric)
        orientation, symmetric = m.orientation, m.symmetric
    except UnknownNameError:
        orientation, symmetric = None, False
    for r in shown:
        if r["metric"] == metric and r["layer"] == "__total__" and r["b"] is not None:
            i, j = index[r["a"]], index[r["b"]]
            values[i, j] = r["value"]
            if symmetric:
                values[j, i] = r["value"]
    return PairwiseMatrix(metric=metric, layer="__total__", labels=list(labels), values=values,
                          orientation=orientation)


def matrix_table(m: Any) -> tuple[Table, list[str]]:
    """A :class:`~ticketlab.metrics.PairwiseMatrix` as a table, in clustering order where it can be
    clustered, and the lines that explain it. Tickets are numbered in the order given; a column is
    headed by its ticket's number, and each row shows that number and the whole label, so no label
    is ever cut to look like another."""
    from ticketlab.errors import ConfigError
    from ticketlab.metrics.registry import CHANCE_MATRICES

    try:
        order = m.order() if m.orientation is not None else list(range(len(m.labels)))
        clustered = m.orientation is not None and len(order) > 1
    except ConfigError:  # undefined entries (empty tickets): not clustered
        order, clustered = list(range(len(m.labels))), False
    how = "in clustering order" if clustered else "in the order given"
    what = visible(m.metric) + ("" if m.layer == "__total__" else f" ({visible(m.layer)})")
    table = Table(title=f"{what}, rows and columns {how}", title_justify="left", box=None, pad_edge=False, keys=2)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("ticket", overflow="fold")
    for j in order:
        table.add_column(str(j + 1), justify="right", no_wrap=True)
    for i in order:
        table.add_row(str(i + 1), visible(m.labels[i]), *(number(float(m.values[i][j])) for j in order))
    lines = ["#: the tickets in the order given; column k is ticket #k"]
    if m.metric in CHANCE_MATRICES:
        lines.append(f"{m.metric}: the overlap count |A and B| against random masks with the same per-layer kept "
                     "counts (" + ("observed / expected; 1 = chance" if m.metric == "lift" else
                                   "(observed - expected) / sd; 0 = chance") + "); -: a ticket with itself")
    elif any(not math.isfinite(float(m.values[i][j])) for i in order for j in order):
        lines.append("-: undefined (a ticket with itself is not among the records; or empty masks)")
    return table, lines


def ticket_legend(labels: Sequence[str]) -> Table:
    """The tickets' numbers and labels (when there is no matrix to show them)."""
    table = Table(title="tickets", title_justify="left", box=None, pad_edge=False, keys=2)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("ticket", overflow="fold")
    for i, lab in enumerate(labels):
        table.add_row(str(i + 1), visible(lab))
    return table


def _pair_summary(shown: list[dict[str, Any]], labels: list[str], metric: str, columns: Sequence[str],
                  samples: int | None) -> Table:
    """One row per pair: ``metric``'s whole-network value with its chance columns."""
    table = Table(title=f"{visible(metric)} per pair (a, b: the tickets' numbers, as in the matrix)",
                  title_justify="left", box=None, pad_edge=False, keys=2)
    table.add_column("a", justify="right", no_wrap=True)
    table.add_column("b", justify="right", no_wrap=True)
    present = [c for c in columns if any(c in r for r in shown if r["metric"] == metric)]
    for col in present:
        table.add_column(_header(col), justify="right", group=_group(col))
    index = {lab: i + 1 for i, lab in enumerate(labels)}
    for r in shown:
        if r["metric"] == metric and r["layer"] == "__total__" and r["b"] is not None:
            table.add_row(str(index[r["a"]]), str(index[r["b"]]), *(_cell(r.get(c), c, samples) for c in present))
    return table


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
