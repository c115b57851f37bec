"""What the sections of one (model, data set) share: where they are, the methods and their
styles, and the numbers that the findings and "What this says" are generated from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ticketlab.study.report.load import Entry


@dataclass
class Context:
    """One (model, data set) of the study."""

    model: str
    dataset: str
    methods: list[str]  # every method of the study, in its order
    style: dict[str, tuple[Any, str]]  # method -> (colour, marker)

    @property
    def where(self) -> str:
        return f"{self.model} / {self.dataset}"

    @property
    def key(self) -> dict[str, Any]:
        """The CSV columns that name the group."""
        return {"model": self.model, "dataset": self.dataset}

    def present(self, entries: list[Entry]) -> list[str]:
        """The study's methods that have a ticket among ``entries``, in the study's order."""
        return [m for m in self.methods if any(e.method == m for e in entries)]


@dataclass
class GroupResult:
    """The numbers of one (model, data set) that the generated text uses, and where they are shown."""

    pair_stats: dict[float, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    within: dict[float, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # the claims: the same numbers over pairs of tickets that are not unhealthy
    claims: dict[float, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    within_claims: dict[float, dict[str, dict[str, Any]]] = field(default_factory=dict)
    left_out: dict[float, list[Entry]] = field(default_factory=dict)  # unhealthy tickets per density
    nested: dict[float, list[tuple[str, str]]] = field(default_factory=dict)  # method pairs with nested tickets
    # per density: method -> (mean, lo, hi, n) JS distance of its allocation to a uniform random mask's
    js_uniform: dict[float, dict[str, tuple[float, float, float, int]]] = field(default_factory=dict)
    # per density: method -> (mean, lo, hi, n) test accuracy; the dense network's; chance
    accuracy: dict[float, dict[str, tuple[float, float, float, int]]] = field(default_factory=dict)
    dense: tuple[float, float, float, int] | None = None
    chance: float | None = None
    anchors: dict[str, str] = field(default_factory=dict)  # "overlap:<d>", "within:<d>", "profiles", ... -> anchor
