"""The metric registry: ``register(name)`` adds a metric that then works in ``compare``, the
pairwise matrices and the ``ticketlab compare`` command.

A *pair* metric is called as ``fn(a, b)`` with two :class:`~ticketlab.ticket.Ticket` objects, a
*single* metric as ``fn(t)``; built-in metrics also accept a keyword ``cache`` (a
:class:`~ticketlab.metrics.base.Cache`) to share counts between metrics. A metric returns one
number (the whole-network value) or a mapping from a layer key (``"__total__"``, a parameter
name, ...) to a number or to a dict of the fields in :data:`~ticketlab.metrics.base.FIELDS`
(``value``, ``expected``, ``z``, ``p``, ``note``, ...).

Example:
    >>> import numpy as np
    >>> @register("kept_fraction_of_a_in_b", description="share of b's kept weights also in a")
    ... def kept_in(a, b):
    ...     inter = sum(int((a.masks[n] & b.masks[n]).sum()) for n in a.masks)
    ...     return inter / b.kept
    >>> get_metric("kept_fraction_of_a_in_b").kind
    'pair'
    >>> _ = unregister("kept_fraction_of_a_in_b")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ticketlab.errors import ConfigError
from ticketlab.registry import Registry, match_name, summary

#: What a metric may need beyond the masks: weight snapshots, or the model's topology.
NEEDS = ("init", "final", "topology")
KINDS = ("pair", "single")
ORIENTATIONS = ("similarity", "distance", None)
#: Families of the built-in metrics; a family name in ``compare(metrics=...)`` selects them all.
GROUPS = ("overlap", "units", "sparsity", "signs", "graph", "relational", "custom")
#: Pairwise matrices that are not metrics: the overlap count against chance (many.py); reserved.
CHANCE_MATRICES = ("lift", "z")


@dataclass(frozen=True)
class Metric:
    """A registered metric and how to call it.

    Attributes:
        name: registry key.
        fn: ``fn(a, b)`` for a pair metric, ``fn(t)`` for a single-ticket metric.
        kind: ``"pair"`` or ``"single"``.
        needs: extras beyond masks: ``"init"``, ``"final"`` (weight snapshots), ``"topology"``
            (used when present; graph metrics fall back to a chain of the masks).
        symmetric: ``fn(a, b) == fn(b, a)``; an asymmetric pair metric is reported both ways.
        orientation: ``"similarity"`` (1 = identical, clustering uses 1 - value),
            ``"distance"`` (0 = identical) or None (cannot be clustered).
        default: included when ``compare`` is called without ``metrics``.
        group: family name (see :data:`GROUPS`).
        description: one line for listings and the CLI.
        from_counts: optional vectorised ``f(n, a, b, ab)`` of the four per-layer counts; the
            pairwise matrix uses it with bit-packed popcounts.
        takes_cache: whether ``fn`` accepts the ``cache`` keyword (found by inspection).
    """

    name: str
    fn: Callable[..., Any]
    kind: str = "pair"
    needs: tuple[str, ...] = ()
    symmetric: bool = True
    orientation: str | None = None
    default: bool = False
    group: str = "custom"
    description: str = ""
    from_counts: Callable[..., Any] | None = None
    takes_cache: bool = False

    def __call__(self, *tickets: Any, cache: Any = None) -> Any:
        """Call the metric on one ticket (single) or two (pair)."""
        want = 2 if self.kind == "pair" else 1
        if len(tickets) != want:
            raise ConfigError(f"metric '{self.name}' takes {want} ticket(s), not {len(tickets)}")
        if self.takes_cache:
            return self.fn(*tickets, cache=cache)
        return self.fn(*tickets)


_METRICS: Registry[Metric] = Registry("metric")

#: Entry-point group of installed packages that register metrics when imported.
PLUGIN_GROUP = "ticketlab.metrics"
_plugins_loaded = False


def load_plugins() -> list[str]:
    """Import every installed metric plug-in once (entry points of group ``ticketlab.metrics``).

    A package declares ``[project.entry-points."ticketlab.metrics"] name = "module"``; importing
    the module registers its metrics, so they work in ``compare`` and ``ticketlab compare``.
    Called automatically the first time metrics are listed or looked up.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plug-in must not hide the real cause
            raise ConfigError(f"metric plug-in '{ep.name}' ({ep.value}) failed to import: {exc}") from exc
        loaded.append(ep.name)
    return loaded


def register(
    name: str | None = None,
    *,
    kind: str = "pair",
    needs: Iterable[str] = (),
    symmetric: bool = True,
    orientation: str | None = None,
    default: bool = False,
    group: str = "custom",
    description: str | None = None,
    from_counts: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a metric function under ``name`` (default: its ``__name__``).

    The function is returned unchanged, so it stays callable directly. A duplicate name, an
    unknown ``kind``, ``needs`` entry, ``orientation`` or ``group`` is a :class:`ConfigError`.

    Example:
        >>> @register("n_layers_demo", kind="single")
        ... def n_layers(t):
        ...     return len(t.masks)
        >>> "n_layers_demo" in list_metrics()
        True
        >>> _ = unregister("n_layers_demo")
    """
    needs = tuple(needs)
    if kind not in KINDS:
        raise ConfigError(f"metric kind must be one of {', '.join(KINDS)}, not '{kind}'")
    bad = [n for n in needs if n not in NEEDS]
    if bad:
        raise ConfigError(f"unknown metric need '{bad[0]}' (choose from: {', '.join(NEEDS)})")
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"metric orientation must be 'similarity', 'distance' or None, not '{orientation}'")
    if group not in GROUPS:
        raise ConfigError(f"unknown metric group '{group}' (choose from: {', '.join(GROUPS)})")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        if key in GROUPS or key == "all":
            raise ConfigError(f"'{key}' is a metric group name and cannot name a metric")
        if key in CHANCE_MATRICES:
            raise ConfigError(f"'{key}' names a chance matrix (pairwise_matrix) and cannot name a metric")
        try:
            takes_cache = "cache" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes_cache = False
        metric = Metric(
            name=key, fn=fn, kind=kind, needs=needs, symmetric=symmetric, orientation=orientation,
            default=default, group=group, description=description or summary(fn.__doc__),
            from_counts=from_counts, takes_cache=takes_cache,
        )
        object.__setattr__(metric, "__doc__", metric.description)  # help() and listings show the metric's line
        _METRICS.add(key, metric)
        return fn

    return deco


def unregister(name: str) -> Metric:
    """Remove a metric (for tests and notebooks that re-run a registration cell)."""
    metric = get_metric(name)
    _METRICS.remove(name)
    return metric


def get_metric(name: str) -> Metric:
    """The :class:`Metric` registered as ``name`` (an :class:`UnknownNameError` lists choices).

    Example:
        >>> get_metric("jaccard").orientation
        'similarity'
    """
    load_plugins()
    return _METRICS.get(name)


def list_metrics(pattern: str = "*", *, kind: str | None = None, group: str | None = None) -> list[str]:
    """Registered metric names matching ``pattern``, optionally of one ``kind`` or ``group``.

    Example:
        >>> list_metrics("jacc*")
        ['jaccard']
    """
    load_plugins()
    return [
        n for n in _METRICS.list(pattern)
        if (kind is None or _METRICS.get(n).kind == kind) and (group is None or _METRICS.get(n).group == group)
    ]


def list_groups() -> dict[str, list[str]]:
    """Every metric group that has members -> its metric names, in registry order.

    A group name in ``compare(metrics=...)`` (or ``ticketlab compare --metric GROUP``) selects
    all of its members; ``"all"`` selects every metric.

    Example:
        >>> list_groups()["overlap"][:2]
        ['intersection', 'jaccard']
    """
    load_plugins()
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for n in _METRICS.list():
        groups[_METRICS.get(n).group].append(n)
    return {g: names for g, names in groups.items() if names}


def default_metrics() -> list[str]:
    """Names used when ``compare`` gets no ``metrics`` (cheap, mask-only metrics)."""
    load_plugins()
    return [n for n in _METRICS.list() if _METRICS.get(n).default]


def resolve_metrics(names: Iterable[str] | None) -> list[Metric]:
    """Metric objects for ``names``: metric names, group names (``"overlap"``, ...) or ``"all"``.

    ``None`` gives :func:`default_metrics`. Duplicates are dropped, order is kept.
    """
    load_plugins()
    if names is None:
        names = default_metrics()
    if isinstance(names, str):
        names = [names]
    out: dict[str, Metric] = {}
    for given in names:
        # a variant (case, hyphens) of one name is that name; a typo gets "did you mean"
        name = match_name("metric", given, _METRICS.list(), f"; or a group: {', '.join(GROUPS)}, all",
                          others=[*GROUPS, "all"])
        if name == "all":
            keys = _METRICS.list()
        elif name in GROUPS:
            keys = list_metrics(group=name)
        else:
            keys = [name]
        for key in keys:
            out.setdefault(key, _METRICS.get(key))
    return list(out.values())
