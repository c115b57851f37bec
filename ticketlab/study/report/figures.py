"""The report's figures, made to be read at their own size on a page 1,260 px wide (:data:`DPI`
pixels per inch, at most 12.5 inches wide, text of 9 points or more).

Every method keeps one colour and one marker in every figure (:func:`styles`); every chance or
baseline is a grey or black line named in the legend; names pass through
:func:`ticketlab.metrics._plot.plain`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ticketlab.metrics._plot import new_figure, plain

#: Widest figure, inches (at DPI 100: 1,250 px).
WIDTH = 12.5
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def styles(methods: Sequence[str]) -> dict[str, tuple[Any, str]]:
    """Method -> (colour, marker): tab10's colours (tab20's beyond ten methods) and distinct markers."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: (cmap(i % cmap.N), _MARKERS[i % len(_MARKERS)]) for i, m in enumerate(methods)}


def _log_axis(ax: Any, axis: str, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log scale with plain numbers (0.01, 0.2, 2) as tick labels, at ``subs`` times powers of 10."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(fmt)
    target.set_minor_formatter(NullFormatter())


def heatmap(values: np.ndarray, labels: list[str], linkage: np.ndarray | None, title: str) -> Any:
    """The lift matrix, clustered, with dendrograms: the heatmap of ``compare --matrix``
    (:func:`ticketlab.metrics.many.plot_heatmap`) at the report's size and type."""
    from ticketlab.metrics.many import plot_heatmap

    n = len(labels)
    fontsize = 10.0 if n <= 24 else 8.0 if n <= 40 else 6.0
    if n > 60:  # more would not be legible: the rows of results.csv name them
        labels, title = [""] * n, f"{title} (tickets in clustering order; labels in results.csv)"
    return plot_heatmap(values, labels, linkage=linkage, title=title, cmap="RdBu_r", ratio=True, diagonal=False,
                        colorbar_label="Jaccard lift over chance (1 = chance)", fontsize=fontsize, max_size=8.0,
                        annotate=n <= 12)


def within_across(methods: list[str], shown: list[str], data: dict[str, tuple[list[float], list[tuple[str, float]]]],
                  style: dict[str, tuple[Any, str]], title: str) -> Any:
    """Per method: its lifts at other seeds (black) and beside each other method at the same seed
    (coloured as that method), each group's mean as a bar; the chance line."""
    from matplotlib.lines import Line2D

    fig = new_figure(min(WIDTH, max(6.5, 1.2 * len(methods) + 3.5)), 4.6)
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(0)  # jitter of the points only
    for i, m in enumerate(methods):
        within, across = data[m]
        if within:
            x = i - 0.2 + rng.uniform(-0.06, 0.06, len(within))
            ax.scatter(x, within, s=28, color="black", marker="o", zorder=3)
            ax.plot([i - 0.32, i - 0.08], [np.mean(within)] * 2, color="black", lw=2)
        if across:
            x = i + 0.2 + rng.uniform(-0.08, 0.08, len(across))
            for xi, (other, v) in zip(x, across):
                c, mk = style.get(other, ("0.5", "o"))
                ax.scatter([xi], [v], s=24, color=c, marker=mk, zorder=3, edgecolors="none")
            ax.plot([i + 0.08, i + 0.32], [np.mean([v for _, v in across])] * 2, color="0.35", lw=2)
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.set_xticks(range(len(methods)), [plain(m) for m in shown], rotation=20, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylabel("Jaccard lift over chance")
    ax.set_title(plain(title), fontsize=11)
    handles = [Line2D([], [], color="black", marker="o", ls="", label="same method, other seeds (left)"),
               Line2D([], [], color="0.35", marker="s", ls="",
                      label="other methods, same seed (right; colour: the other method)"),
               Line2D([], [], color="0.35", lw=2, label="mean"),
               Line2D([], [], color="grey", ls="--", label="chance (lift 1)")]
    handles += [Line2D([], [], color=c, marker=mk, ls="", label=plain(m))
                for m, (c, mk) in style.items() if m in methods]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


def lift_panels(panels: dict[str, dict[str, list[tuple[float, float, float, float]]]], titles: dict[str, str],
                style: dict[str, tuple[Any, str]], title: str) -> Any:
    """Small multiples: one panel per method, one line per partner method (its colour and marker;
    dashed: the method with itself at other seeds), mean lift vs density with min-max bars, log-log,
    a shared y axis and the chance line."""
    from matplotlib.lines import Line2D

    names = list(panels)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig = new_figure(WIDTH if cols > 2 else 4.2 * cols + 1.5, 2.9 * rows + 0.9)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    ys = [v for lines in panels.values() for pts in lines.values() for p in pts for v in p[1:]
          if math.isfinite(v) and v > 0]
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_axis_off()
            continue
        m = names[k]
        for other, pts in panels[m].items():
            pts = sorted(p for p in pts if math.isfinite(p[1]))
            if not pts:
                continue
            x, y, lo, hi = (np.array(v) for v in zip(*pts))
            c, mk = style.get(other, ("0.5", "o"))
            err = [np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)]
            ax.errorbar(x, y, yerr=err, color=c, marker=mk, ms=5, lw=1.4, capsize=2,
                        ls="--" if other == m else "-")
        ax.axhline(1.0, color="grey", ls=":", lw=1.2)
        ax.set_title(plain(titles[m]), fontsize=11)
        _log_axis(ax, "x")
        if ys and max(ys) / min(ys) > 3:
            _log_axis(ax, "y", (1.0, 2.0, 3.0, 5.0) if max(ys) / min(ys) < 30 else (1.0, 2.0, 5.0))
        ax.grid(True, which="major", color="0.92", lw=0.6)
        if k % cols == 0:
            ax.set_ylabel("mean Jaccard lift")
        if k >= len(names) - cols:
            ax.set_xlabel("density")
            ax.tick_params(labelbottom=True)
    handles = [Line2D([], [], color=c, marker=mk, label=plain(titles.get(m, m))) for m, (c, mk) in style.items()
               if m in panels]
    handles += [Line2D([], [], color="0.3", ls="--", label="the panel's method, other seeds"),
                Line2D([], [], color="grey", ls=":", label="chance (lift 1)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(5, len(handles)), fontsize=10, frameon=False)
    fig.suptitle(plain(title), fontsize=12)
    return fig


def profiles(layers: list[str], dens: dict[str, np.ndarray], overall: float, style: dict[str, tuple[Any, str]],
             shown: dict[str, str], title: str) -> Any:
    """Density of each layer per method on a log axis: a point per method (mean over seeds, bars
    min-max) beside the others; a layer a method keeps no weight of is an open marker on the
    floor; the dashed line is the density a uniform random mask gives every layer."""
    from matplotlib.lines import Line2D

    fig = new_figure(min(WIDTH, max(7.0, 1.1 * len(layers) * max(1, len(dens)) / 3 + 4.0)), 4.8)
    ax = fig.add_subplot(1, 1, 1)
    positive = np.concatenate([d[d > 0] for d in dens.values()] + [np.array([overall])])
    floor = float(positive.min()) / 2.5
    width = 0.8 / max(1, len(dens))
    x = np.arange(len(layers))
    zero_seen = False
    for i, (m, d) in enumerate(dens.items()):  # d: seeds x layers
        c, mk = style.get(m, ("0.5", "o"))
        pos = x + (i - (len(dens) - 1) / 2) * width
        mean, lo, hi = d.mean(axis=0), d.min(axis=0), d.max(axis=0)
        ok = mean > 0
        err = [np.clip(mean - np.maximum(lo, floor), 0, None)[ok], np.clip(hi - mean, 0, None)[ok]]
        ax.errorbar(pos[ok], mean[ok], yerr=err, color=c, marker=mk, ms=6, ls="", capsize=2, label=plain(shown[m]))
        if (~ok).any():
            zero_seen = True
            ax.scatter(pos[~ok], np.full(int((~ok).sum()), floor * 1.15), marker=mk, s=40, facecolors="none",
                       edgecolors=[c], linewidths=1.5)
    ax.axhline(overall, color="grey", ls="--", lw=1.2, label="uniform random mask (every layer)")
    for b in x[:-1]:
        ax.axvline(b + 0.5, color="0.9", lw=0.8)
    _log_axis(ax, "y")
    ax.set_ylim(floor, min(1.3, float(positive.max()) * 2.0))
    ax.set_xticks(x, [plain(n) for n in layers], rotation=30 if len(layers) > 5 else 0,
                  ha="right" if len(layers) > 5 else "center")
    ax.set_xlim(-0.5, len(layers) - 0.5)
    ax.set_ylabel("layer density (log scale)")
    ax.set_title(plain(title), fontsize=11)
    handles, _ = ax.get_legend_handles_labels()
    if zero_seen:
        handles.append(Line2D([], [], color="0.3", marker="o", mfc="none", ls="", label="no weight kept (density 0)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


def accuracy(series: dict[str, list[tuple[float, float, float, float]]], style: dict[str, tuple[Any, str]],
             shown: dict[str, str], chance: float | None, dense: tuple[float, float, float, int] | None,
             title: str) -> Any:
    """Test accuracy vs density (log) per method, min-max bars; the dense network's accuracy (line
    and band, min-max over seeds) and chance."""
    fig = new_figure(9.5, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    for m, pts in series.items():
        pts = sorted(p for p in pts if math.isfinite(p[1]))
        if not pts:
            continue
        x, y, lo, hi = (np.array(v) for v in zip(*pts))
        c, mk = style.get(m, ("0.5", "o"))
        ax.errorbar(x, y, yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)], color=c, marker=mk, ms=6,
                    lw=1.5, capsize=2, label=plain(shown[m]))
    if dense is not None and math.isfinite(dense[0]):
        ax.axhline(dense[0], color="black", lw=1.5, label=f"dense network (n={dense[3]} seeds)")
        if dense[2] > dense[1]:
            ax.axhspan(dense[1], dense[2], color="black", alpha=0.08, lw=0)
    if chance is not None and math.isfinite(chance):
        ax.axhline(chance, color="grey", ls="--", lw=1.2, label="chance (1 / classes)")
    _log_axis(ax, "x")
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, color="0.92", lw=0.6)
    ax.set_xlabel("density (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(plain(title), fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig
