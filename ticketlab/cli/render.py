r"""Rendering helpers shared by the commands (rich tables on stdout).

Every string a command shows may come from a file or the command line (mask names, paths,
provenance), so the one console here renders nothing as markup (``markup=False``: ``[/]`` is
text), emits no styles of its own (``color_system=None``) and writes through
:class:`_VisibleWriter`, which turns every control character but newline and tab into a visible
``\xNN`` escape: an ANSI sequence in a name cannot clear the screen or set the title.
:func:`visible` does the same for a single string (newlines too), e.g. for one-line errors.

No table cell is ever cut. A table wider than the console is *stacked*: its leading key columns
(the row names) are repeated and the other columns are split into blocks that fit, printed one
under the other; a column is never narrowed below its widest cell, and only names and free text
wrap (at spaces, or folded inside a long word, never with an ellipsis). :func:`stack_widths` is
the packing rule, :class:`Table` lets a command say how many key columns a table has and which
columns belong together. ``console(wide=True)`` prints every table as one block, one row per
line, however wide.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import sys
from typing import Any, Hashable, Mapping, Sequence, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table as RichTable

from ticketlab.text import escape_control as _escape
from ticketlab.text import visible  # noqa: F401  (the one rule, shared with the study report)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TRAILING = re.compile(r" +(?=\n)")
#: Width of the console when stdout is not a terminal and COLUMNS is not set.
PIPE_WIDTH = 120
#: Width of ``console(wide=True)``: wide enough that no table is stacked and no line wrapped.
WIDE = 1_000_000
#: Share of the width that the key columns (row names) may take before they wrap.
KEY_SHARE = 0.4
#: Narrowest width of a wrapping column (a name or free text) when space is short.
MIN_WRAP = 12


class _VisibleWriter:
    r"""A text stream wrapper that shows control characters (but newline and tab) as ``\xNN``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:  # no trailing spaces either (a table pads its last column)
        return self._stream.write(_TRAILING.sub("", _CONTROL.sub(_escape, text)))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


class Table(RichTable):
    """A rich table that knows its ``keys`` leading columns name the row (repeated in every block
    when the table is stacked) and which columns belong together (``group=`` of :meth:`add_column`:
    a block breaks between groups where it can).

    Example:
        >>> t = Table(keys=2)
        >>> t.add_column("a"); t.add_column("b"); t.add_column("value", justify="right", group="chance")
        >>> t.keys, t.groups
        (2, [None, None, 'chance'])
    """

    def __init__(self, *headers: Any, keys: int = 1, **kw: Any) -> None:
        self.keys = keys
        self.groups: list[Hashable] = []
        super().__init__(*headers, **kw)

    def add_column(self, *args: Any, group: Hashable = None, **kw: Any) -> None:
        super().add_column(*args, **kw)
        self.groups.append(group)


def stack_widths(keys: Sequence[int], columns: Sequence[int], width: int, *, gap: int = 2,
                 groups: Sequence[Hashable] | None = None) -> list[list[int]]:
    """Split ``columns`` (their widths) into blocks that fit ``width`` next to the ``keys``.

    Each block is a list of column indices, in order; ``gap`` is the space between two columns.
    A block breaks between ``groups`` (equal consecutive entries) where a whole group fits in a
    block of its own, else inside the group. A column wider than any block gets a block of its own.

    Example:
        >>> stack_widths([10], [8, 8, 8, 8], 39)   # 10 + 2 + 8 + 2 + 8 = 30 fits, 40 does not
        [[0, 1], [2, 3]]
        >>> stack_widths([10], [6, 6, 6, 6], 40, groups=["x", "y", "y", "y"])
        [[0], [1, 2, 3]]
    """
    groups = list(groups) if groups is not None else list(range(len(columns)))
    base = sum(keys) + gap * max(0, len(keys) - 1)

    def size(block: list[int]) -> int:
        return base + sum(columns[i] + gap for i in block) - (0 if keys else gap)

    runs: list[list[int]] = []
    for i, g in enumerate(groups):
        if runs and groups[runs[-1][-1]] == g:
            runs[-1].append(i)
        else:
            runs.append([i])
    blocks: list[list[int]] = [[]]
    for run in runs:
        if size(blocks[-1] + run) <= width:
            blocks[-1] += run
            continue
        if blocks[-1] and size(run) <= width:
            blocks.append(list(run))
            continue
        for i in run:  # the group does not fit a block of its own: split it
            if blocks[-1] and size(blocks[-1] + [i]) > width:
                blocks.append([])
            blocks[-1].append(i)
    return [b for b in blocks if b] or [[]]


def _content_width(console: Console, column: Any, show_header: bool, show_footer: bool) -> tuple[int, int]:
    """(widest, longest word) over a column's cells, header and footer."""
    texts = list(column.cells) + ([column.header] if show_header else []) + ([column.footer] if show_footer else [])
    widest, word = 1, 1
    for t in texts:
        if isinstance(t, str):
            widest = max(widest, max((cell_len(line) for line in t.split("\n")), default=0))
            word = max(word, max((cell_len(w) for w in t.split()), default=0))
        else:
            m = Measurement.get(console, console.options.update_width(WIDE), t)
            widest, word = max(widest, m.maximum), max(word, m.minimum)
    return widest, word


def _block(table: RichTable, idx: Sequence[int], widths: Mapping[int, int | None], rigid: Sequence[bool],
           first: bool, last: bool) -> RichTable:
    """A copy of ``table`` with the columns ``idx`` at fixed ``widths`` (None: rich's choice; rigid
    columns never wrap), without the rows that have nothing in its non-key columns."""
    part = copy.copy(table)
    keys = min(getattr(table, "keys", 1), len(table.columns) - 1)
    data = [list(table.columns[i].cells) for i in idx if i >= keys]
    rows = [r for r in range(table.row_count) if not data or any(c[r] != "" for c in data)]  # rows with no
    if len(rows) == table.row_count:  # value in this block are left out of it
        rows = list(range(table.row_count))
    part.rows = [table.rows[r] for r in rows]
    part.columns = [dataclasses.replace(table.columns[i], _index=k, width=widths[i], min_width=None, max_width=None,
                                        no_wrap=rigid[i], overflow="fold",
                                        _cells=[table.columns[i]._cells[r] for r in rows])
                    for k, i in enumerate(idx)]
    if not first:
        part.title = None
    if not last:
        part.caption = None
    return part


def _fits(console: Console, table: RichTable) -> int:
    return Measurement.get(console, console.options.update_width(WIDE), table).maximum


def stacked(console: Console, table: RichTable, width: int | None = None) -> list[RichTable]:
    """``table`` as blocks that each fit ``width`` (default: the console's), no cell cut; one
    block, ``table`` itself, when it fits already (see the module docstring)."""
    width = console.width if width is None else width
    cols = table.columns
    if not cols or _fits(console, table) <= width:
        return [table]
    measured = [_content_width(console, c, table.show_header, table.show_footer) for c in cols]
    natural = [w for w, _ in measured]
    nkeys = min(getattr(table, "keys", 1), len(cols) - 1)
    rigid = [i >= nkeys and (c.justify == "right" or bool(c.no_wrap)) for i, c in enumerate(cols)]
    least = [natural[i] if rigid[i] else min(natural[i], max(word, MIN_WRAP)) for i, (_, word) in enumerate(measured)]
    keys = list(range(nkeys))
    key_natural = sum(natural[i] for i in keys)
    cap = int(width * KEY_SHARE)
    key_cap = {i: natural[i] if key_natural <= cap else max(min(natural[i], 6), natural[i] * cap // key_natural)
               for i in keys}
    # the space between two columns (and the borders), as rich measures it: the table at width 1
    # per column, less the columns
    gap_of = _fits(console, _block(table, range(len(cols)), {i: 1 for i in range(len(cols))}, rigid, True, True))
    gap = (gap_of - len(cols)) // max(1, len(cols) - 1) if len(cols) > 1 else 0
    groups = getattr(table, "groups", None)
    rest = list(range(nkeys, len(cols)))
    plan = stack_widths([key_cap[i] for i in keys], [least[i] for i in rest], width, gap=gap,
                        groups=[groups[i] for i in rest] if groups and len(groups) == len(cols) else None)
    blocks = []
    for n, block in enumerate(plan):
        idx = keys + [rest[j] for j in block]
        first, last = n == 0, n == len(plan) - 1
        full = {i: natural[i] for i in idx}
        for widths in (full, {**full, **key_cap}):  # everything at its natural width; names wrap
            part = _block(table, idx, widths, rigid, first, last)
            if _fits(console, part) <= width:
                break
        else:  # free text wraps too: rich shares out what the others leave (at least ``least`` each)
            least_block = _block(table, idx, {i: least[i] for i in idx}, rigid, first, last)
            keys_fit = _fits(console, _block(table, idx, {**{i: least[i] for i in idx}, **{i: natural[i] for i in keys}},
                                             rigid, first, last)) <= width
            widths = {i: (natural[i] if keys_fit else key_cap[i]) if i in key_cap else
                      natural[i] if rigid[i] else None for i in idx}
            part = _block(table, idx, widths, rigid, first, last) if _fits(console, least_block) <= width else least_block
        blocks.append(part)
    return blocks


class _Console(Console):
    """A console whose :meth:`print` stacks a table too wide for it (:func:`stacked`)."""

    def print(self, *objects: Any, **kw: Any) -> None:  # type: ignore[override]
        if not any(isinstance(o, RichTable) for o in objects):
            super().print(*objects, **kw)
            return
        for o in objects:
            if not isinstance(o, RichTable):
                super().print(o, **kw)
                continue
            if o.title is not None and (o.title_justify == "left" or cell_len(str(o.title)) > _fits(self, o)):
                super().print(o.title, **kw)  # the whole width, not wrapped to the table's
                o = copy.copy(o)
                o.title = None
            for n, part in enumerate(stacked(self, o)):
                if n:
                    super().print()
                need = Measurement.get(self, self.options.update_width(WIDE), part).minimum
                if need <= self.width:
                    super().print(part, **kw)
                    continue
                old = self.size  # a block of one column wider than the console: widen rather than cut
                self.size = (need, old.height)
                try:
                    super().print(part, **kw)
                finally:
                    self.size = old


def console(wide: bool = False) -> Console:
    """A console on stdout (see the module docstring): the terminal's width; when stdout is not a
    terminal, ``COLUMNS`` or 120; with ``wide``, no limit (every table row on one line)."""
    out = _VisibleWriter(sys.stdout)
    kw: dict[str, Any] = dict(highlight=False, markup=False, emoji=False, color_system=None, file=out)
    c = _Console(**kw)
    if wide:
        c = _Console(width=WIDE, **kw)
    elif not c.is_terminal:
        columns = os.environ.get("COLUMNS", "")
        c = _Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH, **kw)
    return c


def density_table(kept: Mapping[str, int], total: Mapping[str, int], title: str | None = None) -> Table:
    """Per-layer kept / total / density table, with a total row."""
    table = Table(title=title, show_footer=True, box=None, pad_edge=False)
    k_all, n_all = sum(kept.values()), sum(total.values())
    table.add_column("parameter", footer="total")
    table.add_column("kept", justify="right", footer=f"{k_all:,}")
    table.add_column("total", justify="right", footer=f"{n_all:,}")
    table.add_column("density", justify="right", footer=f"{(k_all / n_all if n_all else 0):.4f}")
    for name, n in total.items():
        k = kept[name]
        table.add_row(visible(name), f"{k:,}", f"{n:,}", f"{(k / n if n else 0):.4f}")
    return table


def trained_rounds(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The history rows of trained rounds (the dense round 0 and every pruning round), if any."""
    return [r for r in history if r.get("stage") in ("dense", "round") and "test_accuracy" in r]


def round_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """Per-round table: round, density, test accuracy, best validation accuracy, early stop, seconds."""
    table = Table(box=None, pad_edge=False)
    for name in ("round", "density", "test acc", "best val acc", "early stop it", "seconds"):
        table.add_column(name, justify="right")
    for r in rows:  # a cell of the wrong type (a damaged or foreign file) is shown, not fatal
        table.add_row(_cell(r.get("round", "")), _cell(r.get("density"), ".4f"), _cell(r.get("test_accuracy"), ".4f"),
                      _cell(r.get("best_val_accuracy"), ".4f"), _cell(r.get("early_stop_iteration", "")),
                      _cell(r.get("seconds"), ".1f"))
    return table


def _cell(value: Any, fmt: str = "") -> str:
    """``value`` formatted with ``fmt`` when it is a number, else shown as (visible) text."""
    if value is None:
        return ""
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return visible(value)


def warn_unhealthy(where: Any, record: Mapping[str, Any] | None) -> bool:
    """Print ``warning: WHERE: unhealthy ticket: ...`` (one line, stderr) when ``record`` (a
    :meth:`ticketlab.metrics.health.Health.to_dict`) says the ticket is unhealthy; True if it did.

    Example:
        >>> warn_unhealthy("a.h5", {"status": "healthy", "summary": "healthy: ..."})
        False
    """
    if not record or record.get("status") != "unhealthy":
        return False
    import click

    click.echo(f"warning: {visible(where)}: {visible(record.get('summary', 'unhealthy ticket'))}", err=True)
    return True
