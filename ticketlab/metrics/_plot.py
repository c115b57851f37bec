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
