"""Mask distance during training (Early-Bird tickets, You et al. 2020, Section 3.2).

A :class:`MaskTracker` is a :func:`ticketlab.training.fit` callback: every ``every``
iterations it takes the mask that magnitude pruning would give at the run's target density
(``|w|`` ranked by the shared :func:`~ticketlab.selection.select_top`, over the run's scope) and
records the normalised Hamming distance to the previous tracked mask, the fraction of
prunable weights whose kept/pruned state differs (You et al. 2020, Eq. 1 / Figure 2):

    mask_distance = #{i : m_t[i] != m_{t-1}[i]} / n

(for the learned-mask miners, whose weights are frozen, the mask their final selection would
give from the current scores; for Zhou et al.'s supermask miner, the mask of its criterion of
the initial and current weights) next to its chance value ``2 d (1 - d)``, the expected distance between two independent
random masks of density ``d`` (at 5 % density random masks are already 0.095 apart, so a raw
threshold misleads).

Early-Bird stop (``early_bird=EPS``): training stops after the tracked mask at which the last
5 distances all satisfy ``mask_distance / (2 d (1 - d)) <= EPS`` (the distance relative to
chance; 5 distances need 6 tracked masks).

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([3.0, 1.0, 2.0, 0.5]))
    >>> tr = MaskTracker({"w": w}, density=0.5, every=1)
    >>> tr.track(1); _ = w.data.copy_(torch.tensor([1.0, 3.0, 2.0, 0.5])); tr.track(2)
    False
    False
    >>> tr.rows[1]["mask_distance"], tr.rows[1]["mask_distance_chance"]
    (0.5, 0.5)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ticketlab.errors import ConfigError
from ticketlab.selection import check_density, select_top

#: how many consecutive tracked distances the Early-Bird rule looks at
EARLY_BIRD_WINDOW = 5


def check_tracking(track_masks: int | None, early_bird: float | None) -> None:
    """Validate ``--track-masks`` / ``--early-bird`` (early-bird needs tracking)."""
    if track_masks is not None and (isinstance(track_masks, bool) or not isinstance(track_masks, int)
                                    or track_masks < 1):
        raise ConfigError(f"track_masks must be a positive number of iterations, not {track_masks!r}")
    if early_bird is not None:
        if track_masks is None:
            raise ConfigError("early_bird needs track_masks (the tracked masks it compares)")
        if isinstance(early_bird, bool) or not isinstance(early_bird, (int, float)) or not early_bird >= 0:
            raise ConfigError(f"early_bird must be a number >= 0, not {early_bird!r}")


class MaskTracker:
    """Tracks the magnitude mask of ``params`` every ``every`` iterations (see the module docstring).

    ``rows`` gets one row per tracked mask: ``stage`` ``"mask_tracking"``, ``iteration``,
    ``mask_distance`` (NaN for the first) and ``mask_distance_chance``; ``stopped_at`` is the
    iteration at which the Early-Bird rule stopped training, or ``None`` (its row has
    ``early_bird_stop`` True).
    """

    def __init__(self, params: Mapping[str, torch.Tensor], density: float, *, every: int,
                 scope: str = "global", early_bird: float | None = None, label: str | None = None,
                 scores: Callable[[], Mapping[str, torch.Tensor]] | None = None) -> None:
        check_tracking(every, early_bird)
        self.params, self.density, self.every = dict(params), check_density(density), every
        self.scores = scores  # what is ranked instead of |w| (the learned-mask miners' scores)
        self.scope, self.early_bird, self.label = scope, early_bird, label
        self.chance = 2.0 * density * (1.0 - density)
        self.rows: list[dict[str, Any]] = []
        self.stopped_at: int | None = None
        self._last: dict[str, torch.Tensor] | None = None
        self._distances: list[float] = []  # this run's, for the rule (rows may be shared)

    def mask(self) -> dict[str, torch.Tensor]:
        """The mask magnitude pruning would give now (|w|, or ``scores()`` when given; exact
        count, shared tie rule). Every tracked mask draws its ties from a fresh generator seeded
        0 (``select_top``'s default), so ties that persist are drawn alike and do not inflate the
        distance between consecutive masks."""
        if self.scores is not None:
            return select_top({n: s.detach() for n, s in self.scores().items()}, self.density, scope=self.scope)
        return select_top({n: p.detach().abs() for n, p in self.params.items()}, self.density, scope=self.scope)

    def track(self, iteration: int) -> bool:
        """Track the mask after ``iteration`` iterations; True when the Early-Bird rule says stop."""
        mask = self.mask()
        distance = float("nan")
        if self._last is not None:
            differ = sum(int((mask[n] != self._last[n]).sum()) for n in mask)
            distance = differ / sum(m.numel() for m in mask.values())
        self._last = mask
        self._distances.append(distance)
        row: dict[str, Any] = {"stage": "mask_tracking", "iteration": int(iteration), "mask_distance": distance,
                               "mask_distance_chance": self.chance}
        if self.label is not None:
            row["run"] = self.label
        self.rows.append(row)
        return self.early_bird is not None and self._converged()

    def _converged(self) -> bool:
        last = self._distances[-EARLY_BIRD_WINDOW:]
        if len(last) < EARLY_BIRD_WINDOW or any(d != d for d in last):  # NaN: the first mask
            return False
        return all(d / self.chance <= self.early_bird for d in last) if self.chance > 0 else True

    def __call__(self, info: Any) -> None:  # a train() callback (StepInfo)
        if info.iteration % self.every == 0 and self.stopped_at is None and self.track(info.iteration):
            self.stopped_at = info.iteration
            self.rows[-1]["early_bird_stop"] = True
            info.stop = True
