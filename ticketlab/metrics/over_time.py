"""The mask distance during training, read back from a ticket's history (``--track-masks``).

``mine --track-masks EVERY`` writes one ``mask_tracking`` row per tracked mask (see
:mod:`ticketlab.tracking`): the training run it belongs to (``run``), the ``iteration``, Early-Bird's
normalised Hamming distance to the previous tracked mask (``mask_distance``; NaN for a run's first)
and its chance value 2d(1 - d) (``mask_distance_chance``). Pure numpy (STYLE 8).

Example:
    >>> rows = [{"stage": "dense"}, {"stage": "mask_tracking", "run": "dense", "iteration": 2,
    ...          "mask_distance": float("nan"), "mask_distance_chance": 0.5},
    ...         {"stage": "mask_tracking", "run": "dense", "iteration": 4, "mask_distance": 0.25,
    ...          "mask_distance_chance": 0.5}]
    >>> c = mask_distance_curves(rows)["dense"]
    >>> c["iteration"].tolist(), c["relative"].tolist()
    ([4], [0.5])
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from ticketlab.errors import ConfigError


def mask_distance_curves(history: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Per training run (in order of appearance): ``iteration``, ``distance``, ``chance`` and
    ``relative`` (= distance / chance) arrays of its tracked masks after the first (which has no
    predecessor). An error when the history has no ``mask_tracking`` rows.
    """
    out: dict[str, dict[str, list[float]]] = {}
    for i, row in enumerate(history):
        if not isinstance(row, Mapping) or row.get("stage") != "mask_tracking":
            continue
        d = _number(row, "mask_distance", i, math.nan)
        if math.isnan(d):
            continue
        iteration = row.get("iteration")
        whole = isinstance(iteration, (int, np.integer)) or (isinstance(iteration, float) and iteration.is_integer())
        if isinstance(iteration, bool) or not whole or not 0 <= iteration < 2**63:
            raise ConfigError(f"history row {i} (mask_tracking) has iteration {iteration!r}, not a whole number >= 0")
        chance = _number(row, "mask_distance_chance", i)
        c = out.setdefault(str(row.get("run", "train")), {"iteration": [], "distance": [], "chance": []})
        c["iteration"].append(int(iteration))
        c["distance"].append(d)
        c["chance"].append(chance)
    if not out:
        raise ConfigError("the ticket's history has no tracked mask distances (mine it with --track-masks EVERY)")
    curves: dict[str, dict[str, np.ndarray]] = {}
    for run, c in out.items():
        dist, chance = np.array(c["distance"]), np.array(c["chance"])
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(chance > 0, dist / chance, np.nan)
        curves[run] = {"iteration": np.array(c["iteration"], dtype=np.int64), "distance": dist,
                       "chance": chance, "relative": rel}
    return curves


def _number(row: Mapping[str, Any], key: str, i: int, default: float | None = None) -> float:
    """``row[key]`` as a float: a number (NaN allowed, infinity not), or ``default`` when absent;
    a one-sentence error naming the history row otherwise (a damaged or hand-made file)."""
    value = row.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or math.isinf(value):
        raise ConfigError(f"history row {i} (mask_tracking) has {key} {value!r}, not a number")
    return float(value)


def plot_mask_distance(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str] | None = None,
                       *, title: str | None = None) -> Any:
    """Line plot of every run's mask distance against iteration, with its chance value dashed;
    written to ``path`` (PNG) when given. Returns the matplotlib Figure.

    Example:
        >>> rows = [{"stage": "mask_tracking", "run": "dense", "iteration": i, "mask_distance": d,
        ...          "mask_distance_chance": 0.18} for i, d in ((1, float("nan")), (2, 0.1), (3, 0.05))]
        >>> plot_mask_distance(rows).axes[0].get_ylabel()
        'mask distance (normalised Hamming)'
    """
    from ticketlab.metrics._plot import new_figure, plain, save_figure

    curves = mask_distance_curves(history)
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for run, c in curves.items():
        (line,) = ax.plot(c["iteration"], c["distance"], marker=".", label=plain(run))
        ax.plot(c["iteration"], c["chance"], linestyle="--", color=line.get_color(), linewidth=0.8,
                label=plain(f"{run}: chance 2d(1-d)"))
    ax.set_xlabel("iteration")
    ax.set_ylabel("mask distance (normalised Hamming)")
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(plain(title), fontsize=9)
    ax.legend(fontsize=7)
    if path is not None:
        save_figure(fig, path)
    return fig
