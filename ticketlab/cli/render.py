"""Rendering helpers shared by the commands (rich tables on stdout)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Console
from rich.table import Table


def console() -> Console:
    """A console on stdout: plain text, 120 columns wide, when stdout is not a terminal."""
    c = Console(highlight=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=120)
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
        table.add_row(name, f"{k:,}", f"{n:,}", f"{(k / n if n else 0):.4f}")
    return table


def trained_rounds(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The history rows of trained rounds (the dense round 0 and every pruning round), if any."""
    return [r for r in history if r.get("stage") in ("dense", "round") and "test_accuracy" in r]


def round_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """Per-round table: round, density, test accuracy, best validation accuracy, early stop, seconds."""
    table = Table(box=None, pad_edge=False)
    for name in ("round", "density", "test acc", "best val acc", "early stop it", "seconds"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(str(r.get("round", "")), f"{r.get('density', float('nan')):.4f}",
                      f"{r['test_accuracy']:.4f}", f"{r.get('best_val_accuracy', float('nan')):.4f}",
                      str(r.get("early_stop_iteration", "")), f"{r.get('seconds', float('nan')):.1f}")
    return table
