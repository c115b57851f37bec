r"""Rendering helpers shared by the commands (rich tables on stdout).

Every string a command shows may come from a file or the command line (mask names, paths,
provenance), so the one console here renders nothing as markup (``markup=False``: ``[/]`` is
text), emits no styles of its own (``color_system=None``) and writes through
:class:`_VisibleWriter`, which turns every control character but newline and tab into a visible
``\xNN`` escape: an ANSI sequence in a name cannot clear the screen or set the title.
:func:`visible` does the same for a single string (newlines too), e.g. for one-line errors.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Mapping, Sequence, TextIO

from rich.console import Console
from rich.table import Table

from ticketlab.text import escape_control as _escape
from ticketlab.text import visible  # noqa: F401  (the one rule, shared with the study report)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _VisibleWriter:
    r"""A text stream wrapper that shows control characters (but newline and tab) as ``\xNN``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(_CONTROL.sub(_escape, text))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


def console() -> Console:
    """A console on stdout (see the module docstring); 120 columns wide when not a terminal."""
    out = _VisibleWriter(sys.stdout)
    kw: dict[str, Any] = dict(highlight=False, markup=False, emoji=False, color_system=None, file=out)
    c = Console(**kw)
    if not c.is_terminal:
        c = Console(width=120, **kw)
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
