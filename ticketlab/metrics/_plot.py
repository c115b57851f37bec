"""Matplotlib helpers for the plotting functions: Agg canvas, atomic PNG writes.

Figures are made with :class:`matplotlib.figure.Figure` and an Agg canvas, never through
``pyplot``, so plotting neither needs a display nor changes a notebook's backend. matplotlib is
imported only when a plot is made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ticketlab.atomic import atomic_path


def plain(text: Any) -> str:
    r"""``text`` as matplotlib shows it literally: every ``$`` escaped, so that a name (a method,
    run, layer or file name, which may come from a file) never starts mathtext, whose parser
    raises on most strings. Every label, title and legend entry that holds a name goes through it.

    Example:
        >>> plain("a$b$c")
        'a\\$b\\$c'
    """
    return str(text).replace("$", r"\$")


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure attached to an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return target
