"""Ticket health: is a ticket a working network or a dead one? (numpy and scipy, no torch)

:func:`health` reads one ticket and reports, from the graph analysis of
:mod:`ticketlab.metrics.graph` (the same reachability and effective masks as the graph metrics):

* **collapsed layers**: masked parameters with no effective weight (no kept weight on any
  input-to-output path; Tanaka et al. 2020). A layer that keeps no weight at all is collapsed
  whatever the wiring, so it is reported even without a topology;
* **unreachable classes**: output units with no input-to-output path (their logit is a constant);
* **off-path share**: ``1 - effective / kept``, the share of the kept weights that lie on no
  input-to-output path (informative; not a problem by itself);
* **accuracy at chance**: the ticket's recorded accuracy (provenance ``test_accuracy``; else, for
  an untrained learned mask, the last ``round`` history row's ``untrained_test_accuracy``; or the
  accuracy a caller passes) lies in the central 99 % binomial band of ``1 / classes`` on that
  split. With ``n`` samples and ``p = 1 / classes``, the band is
  ``[q(0.005) / n, q(0.995) / n]`` with ``q`` the exact quantile of Binomial(n, p)
  (the smallest ``k`` with ``P(X <= k) >= level``, as ``scipy.stats.binom.ppf``), so it holds at
  least 99 % of a guessing network's accuracies. The accuracy counts as at chance when its count
  of correct samples, ``round(accuracy * n)``, lies in the band. The sample count is the split's
  size, ``data_spec.split_samples[split]`` in the provenance (written since tickets record their
  health), or passed by the caller; without it the accuracy is not checked.

A ticket is *unhealthy* when it has a collapsed layer, an unreachable class or an accuracy at
chance; *unknown* when nothing wrong was found but its provenance records no (usable) topology,
so reachability was not checked (the chain reading of the graph metrics would be a guess);
*healthy* otherwise.

Example:
    >>> import numpy as np
    >>> from ticketlab.ticket import Ticket
    >>> topo = {"tensors": {"in": 2, "h": 2, "out": 2}, "input": "in", "output": "out",
    ...         "edges": [{"param": "fc1", "src": "in", "dst": "h", "kind": "linear", "group": 1},
    ...                   {"param": "fc2", "src": "h", "dst": "out", "kind": "linear", "group": 1}]}
    >>> masks = {"fc1": np.ones((2, 2), bool), "fc2": np.array([[1, 1], [0, 0]], bool)}
    >>> h = health(Ticket(masks=masks, provenance={"topology": topo}))
    >>> h.healthy, h.unreachable_classes
    (False, (1,))
    >>> h.summary()
    'unhealthy ticket: 1 of 2 classes have no input-to-output path (class 1)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ticketlab.errors import TicketlabError
from ticketlab.ticket import Ticket

#: Coverage of the chance band (central, two-sided).
CHANCE_LEVEL = 0.99
#: Names listed in a reason before "..." (the rest are counted).
MAX_NAMES = 3
#: Provenance key of the health record (:meth:`Health.to_dict`).
PROVENANCE_KEY = "health"


def chance_band(classes: int, samples: int, level: float = CHANCE_LEVEL) -> tuple[int, int]:
    """Counts of correct samples ``(lo, hi)`` of the central ``level`` band of Binomial(samples, 1/classes):
    ``lo`` / ``hi`` are the exact ``(1 - level) / 2`` / ``(1 + level) / 2`` quantiles (smallest ``k``
    with ``P(X <= k)`` at least that), so ``P(lo <= X <= hi) >= level``.

    Example:
        >>> chance_band(10, 360)          # 36 expected; at least 99 % of guessers score 22 to 51 of 360
        (22, 51)
    """
    from ticketlab.metrics._dist import binom_ppf  # scipy.stats.binom.ppf's values, without its ~1 s import

    if classes < 1 or samples < 1:
        raise ValueError(f"a chance band needs classes >= 1 and samples >= 1, got {classes} and {samples}")
    p, tail = 1.0 / classes, (1.0 - level) / 2.0
    return binom_ppf(tail, samples, p), binom_ppf(1.0 - tail, samples, p)


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f", ... ({len(names) - MAX_NAMES} more)" if len(names) > MAX_NAMES else "")


@dataclass(frozen=True)
class Health:
    """What :func:`health` found (module docstring); ``None`` where a check could not be made.

    Attributes:
        topology: whether the structural checks ran on the ticket's recorded topology.
        layers: masked parameters checked.
        collapsed_layers: masked parameters with no effective weight (without a topology: those
            that keep no weight at all, which are collapsed whatever the wiring).
        classes: number of classes (``data_spec.num_classes``, else the output units).
        unreachable_classes: output units without an input-to-output path.
        kept, effective: kept weights, and those on some input-to-output path.
        accuracy, accuracy_source, split, samples: the accuracy checked, where it came from
            (``test_accuracy``, ``untrained_test_accuracy`` or ``given``), its split and size.
        band: the chance band as counts of correct samples ``(lo, hi)`` (:func:`chance_band`).
        note: why a check was not made.
    """

    topology: bool
    layers: int
    collapsed_layers: tuple[str, ...]
    classes: int | None
    unreachable_classes: tuple[int, ...] | None
    kept: int
    effective: int | None
    accuracy: float | None = None
    accuracy_source: str | None = None
    split: str | None = None
    samples: int | None = None
    band: tuple[int, int] | None = None
    note: str | None = None

    @property
    def off_path_share(self) -> float | None:
        """``1 - effective / kept``: the share of kept weights on no input-to-output path."""
        if self.effective is None or self.kept == 0:
            return None
        return 1.0 - self.effective / self.kept

    @property
    def at_chance(self) -> bool | None:
        """Whether the accuracy's correct count lies in the chance band (None: not checked)."""
        if self.accuracy is None or self.band is None or self.samples is None or not math.isfinite(self.accuracy):
            return None
        return self.band[0] <= round(self.accuracy * self.samples) <= self.band[1]

    @property
    def reasons(self) -> tuple[str, ...]:
        """One clause per problem found (empty when none)."""
        out = []
        if self.collapsed_layers:
            n = len(self.collapsed_layers)
            what = "keep no weight" if not self.topology else "have no effective weight"
            out.append(f"collapsed: {n} of {self.layers} layers {what} ({_names(self.collapsed_layers)})")
        if self.unreachable_classes:
            n = len(self.unreachable_classes)
            which = _names(tuple(str(c) for c in self.unreachable_classes))
            if n == self.classes:
                out.append(f"none of the {n} classes has an input-to-output path")
            else:
                out.append(f"{n} of {self.classes} classes have no input-to-output path "
                           f"(class{'es' if n > 1 else ''} {which})")
        if self.at_chance:
            lo, hi = self.band  # type: ignore[misc]
            out.append(f"{self.split} accuracy {self.accuracy:.4g} is at chance (within the 99% binomial band "
                       f"{lo / self.samples:.4g}-{hi / self.samples:.4g} of 1/{self.classes} "  # type: ignore[operator]
                       f"on {self.samples} samples)")
        return tuple(out)

    @property
    def status(self) -> str:
        """``"unhealthy"`` (a problem found), ``"unknown"`` (none found, reachability not checked)
        or ``"healthy"``."""
        if self.reasons:
            return "unhealthy"
        return "healthy" if self.topology else "unknown"

    @property
    def healthy(self) -> bool | None:
        """False when a problem was found, None when none was but reachability could not be
        checked (no topology), True otherwise. Test ``healthy is False`` for "unhealthy"."""
        return {"healthy": True, "unhealthy": False, "unknown": None}[self.status]

    def summary(self) -> str:
        """One line: the status and its reasons (for a warning), or what was checked."""
        if self.reasons:
            parts, share = list(self.reasons), self.off_path_share
            if self.unreachable_classes and share:  # informative beside a reachability problem only
                at = 2 if self.collapsed_layers else 1  # right after the reachability clause
                parts.insert(at, f"{share:.0%} of the kept weights lie off every such path")
            return "unhealthy ticket: " + "; ".join(parts)
        acc = "" if self.at_chance is None else f", {self.split} accuracy {self.accuracy:.4g} above chance"
        if not self.topology:
            return f"health unknown: {self.note or 'no topology recorded'}{acc}"
        share = self.off_path_share
        off = "" if share is None else f", {share:.1%} of the kept weights off every input-to-output path"
        return f"healthy: no collapsed layer, all {self.classes} classes reachable{off}{acc}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON record stored in provenance under ``health`` (schema in docs/format.md)."""
        accuracy = None
        if self.accuracy is not None:
            accuracy = {"value": self.accuracy, "source": self.accuracy_source, "split": self.split,
                        "samples": self.samples, "chance": None if not self.classes else 1.0 / self.classes,
                        "band": None if self.band is None or not self.samples
                        else [self.band[0] / self.samples, self.band[1] / self.samples],
                        "at_chance": self.at_chance}
        return {
            "status": self.status, "summary": self.summary(), "reasons": list(self.reasons), "topology": self.topology,
            "collapsed_layers": list(self.collapsed_layers), "classes": self.classes,
            "unreachable_classes": None if self.unreachable_classes is None else list(self.unreachable_classes),
            "kept": self.kept, "effective": self.effective, "off_path_share": self.off_path_share,
            "accuracy": accuracy, "note": self.note,
        }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def recorded_accuracy(t: Ticket) -> tuple[float, str] | None:
    """The accuracy a ticket records and its source: provenance ``test_accuracy``, else the last
    ``round`` history row's ``untrained_test_accuracy`` (learned masks left untrained).

    Example:
        >>> recorded_accuracy(Ticket(masks={"w": np.ones(2, bool)}, provenance={"test_accuracy": 0.5}))
        (0.5, 'test_accuracy')
    """
    acc = _number(t.provenance.get("test_accuracy"))
    if acc is not None:
        return acc, "test_accuracy"
    rounds = [r for r in t.history if r.get("stage") == "round"]
    if rounds:
        acc = _number(rounds[-1].get("untrained_test_accuracy"))
        if acc is not None:
            return acc, "untrained_test_accuracy"
    return None


def health(t: Ticket, *, accuracy: float | None = None, split: str = "test", samples: int | None = None,
           cache: Any = None) -> Health:
    """The :class:`Health` of ticket ``t`` (module docstring).

    ``accuracy``, ``split`` and ``samples`` check an accuracy the caller measured (``ticketlab
    evaluate``) instead of the one the ticket records; ``samples`` defaults to the provenance's
    ``data_spec.split_samples[split]``. ``cache``: a :class:`ticketlab.metrics.Cache` whose graph
    analysis the graph metrics of the same call share.

    Example:
        >>> t = Ticket(masks={"w": np.zeros((2, 3), bool)},
        ...            provenance={"test_accuracy": 0.1, "data_spec": {"num_classes": 10, "split_samples": {"test": 360}}})
        >>> h = health(t)
        >>> h.status, h.collapsed_layers, h.at_chance
        ('unhealthy', ('w',), True)
    """
    prov = t.provenance
    spec = prov.get("data_spec") if isinstance(prov.get("data_spec"), Mapping) else {}
    classes = _int(spec.get("num_classes"))
    topo = prov.get("topology")
    note = None
    graph = None
    if topo:
        from ticketlab.metrics.graph import analyze

        try:
            graph = analyze(t, cache)
        except (TicketlabError, KeyError, TypeError, ValueError) as exc:
            note = f"the recorded topology cannot be read ({exc}), so reachability was not checked"
    else:
        note = "the ticket records no topology, so reachability was not checked"
    kept = t.kept
    if graph is not None:
        eff = graph.effective
        collapsed = tuple(n for n in t.masks if n in eff and not eff[n].any())
        out = graph.topology["output"]
        reach = graph.forward[out]
        classes = classes or int(reach.size)
        unreachable: tuple[int, ...] | None = tuple(int(i) for i in np.flatnonzero(~reach))
        kept = sum(int(np.count_nonzero(t.masks[n])) for n in t.masks if n in eff)
        effective: int | None = sum(int(np.count_nonzero(eff[n])) for n in t.masks if n in eff)
        layers = sum(1 for n in t.masks if n in eff)
    else:
        collapsed = tuple(n for n, m in t.masks.items() if not m.any())
        unreachable, effective, layers = None, None, len(t.masks)
    source = None
    if accuracy is not None:
        acc, source = _number(accuracy), "given"
    else:
        found = recorded_accuracy(t)
        acc, source, split = (found[0], found[1], "test") if found else (None, None, split)
    if samples is None:
        sizes = spec.get("split_samples")
        samples = _int(sizes.get(split)) if isinstance(sizes, Mapping) else None
    band = chance_band(classes, samples) if acc is not None and classes and samples else None
    return Health(topology=graph is not None, layers=layers, collapsed_layers=collapsed, classes=classes,
                  unreachable_classes=unreachable, kept=kept, effective=effective, accuracy=acc,
                  accuracy_source=source, split=split if acc is not None else None, samples=samples,
                  band=band, note=note)


__all__ = ["CHANCE_LEVEL", "PROVENANCE_KEY", "Health", "chance_band", "health", "recorded_accuracy"]
