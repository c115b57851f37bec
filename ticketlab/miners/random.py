"""``random``: a uniformly random mask at the requested density (the baseline of every study).

``--distribution`` chooses how the kept weights are spread over the layers
(:mod:`ticketlab.distributions`):

* ``global`` (default, the miner's behaviour before distributions existed): one ranking of
  i.i.d. random scores over all prunable weights, so the kept set is a uniformly random subset
  of exactly ``keep_count(d, N)`` weights and each layer's density is only *about* ``d``
  (``--scope layer``: ``keep_count(d, n_l)`` in every layer instead).
* ``uniform``, ``erk``, ``smart_ratio``: the distribution's per-layer densities at the global
  budget ``K = keep_count(d, N)``, made exact per-layer counts that sum to ``K``
  (:func:`~ticketlab.distributions.allocate_counts`); each layer then keeps a uniformly random
  subset of its count.
* ``like:FILE``: the per-layer kept counts of the ticket in ``FILE`` (the layer-wise shuffle of
  that ticket, as a miner).

The per-layer counts become a per-layer round target of the shared selection; the provenance
records ``distribution``, ``layer_target_density`` (before rounding) and ``layer_target_kept``.

Example:
    >>> import ticketlab
    >>> t = ticketlab.mine("random", density=0.1, seed=0, device="cpu", miner_config={"distribution": "erk"})
    >>> t.kept == t.provenance["target_kept"], t.provenance["distribution"]
    (True, 'erk')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ticketlab.distributions import (
    allocate_counts, erk_densities, selection_density, smart_ratio_densities, uniform_densities,
)
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, RoundTarget
from ticketlab.miners.registry import register_miner
from ticketlab.selection import keep_count

_NAMED = ("global", "uniform", "erk", "smart_ratio")


@register_miner("random")
class RandomMiner(Miner):
    """Random pruning: a uniformly random mask of exact size, over all weights or per layer by a distribution.

    Scores are i.i.d. uniform draws from the run's generator, so the kept set is a uniformly
    random subset of exactly the requested size (over all weights, per layer with
    ``scope="layer"``, or per layer at the counts of ``--distribution``)."""

    @dataclass(frozen=True)
    class Config(MinerConfig):
        distribution: str = field(default="global", metadata={
            "help": "how the kept weights spread over the layers: global (one random ranking over all "
                    "weights), uniform (same density per layer), erk (Erdős–Rényi-Kernel), smart_ratio "
                    "(Su et al. 2020) or like:FILE (the per-layer counts of another ticket)"})

    def __init__(self, config: MinerConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        dist = self.config.distribution
        if dist not in _NAMED and not (dist.startswith("like:") and dist[len("like:"):]):
            raise ConfigError(f"unknown distribution '{dist}' (choose from: {', '.join(_NAMED)}, like:FILE)")

    def schedule(self, ctx: MiningContext, target: float | None, rounds: int | None,
                 explicit: Sequence[RoundTarget] | None = None) -> list[RoundTarget]:
        """The base schedule for ``global``; otherwise, every round's global density made exact
        per-layer counts by the distribution, each round capped by the one before (masks only
        shrink), as per-layer densities ``count / n_l`` (:func:`selection_density`)."""
        dist = self.config.distribution
        if dist == "global":
            return super().schedule(ctx, target, rounds, explicit)
        if ctx.scope == "layer":
            raise ConfigError(f"distribution {dist} sets every layer's count itself: leave out scope layer")
        if explicit is not None and any(isinstance(d, dict) for d in explicit):
            raise ConfigError(f"distribution {dist} sets every layer's count itself: per-layer schedule rounds "
                              "need distribution global")
        shapes = {n: tuple(p.shape) for n, p in ctx.params.items()}
        sizes = {n: math.prod(s) for n, s in shapes.items()}
        if dist.startswith("like:"):
            counts, source = _like_counts(dist[len("like:"):], shapes, target, rounds, explicit)
            ctx.provenance.update(distribution=dist, layer_target_density={n: counts[n] / sizes[n] for n in sizes},
                                  layer_target_kept=counts, distribution_source=source)
            return [{n: selection_density(counts[n], sizes[n]) for n in sizes}]
        layer_densities = self._densities(ctx, shapes)
        out: list[RoundTarget] = []
        caps: dict[str, int] | None = None
        for d in super().schedule(ctx, target, rounds, explicit):
            kept = keep_count(float(d), sum(sizes.values()))
            densities = layer_densities(kept)
            caps = allocate_counts(densities, sizes, kept, caps)
            out.append({n: selection_density(caps[n], sizes[n]) for n in sizes})
        ctx.provenance.update(distribution=dist, layer_target_density=densities, layer_target_kept=caps)
        return out

    def _densities(self, ctx: MiningContext, shapes: dict[str, tuple[int, ...]]):
        dist = self.config.distribution
        if dist == "uniform":
            return lambda kept: uniform_densities(shapes, kept)
        if dist == "erk":
            return lambda kept: erk_densities(shapes, kept)
        # smart_ratio: positions in the whole network, so a layer left dense (first/last-layer
        # flags) keeps its place and an unpruned last layer is not replaced by the one before it
        from ticketlab.models import prunable_parameters

        every = list(prunable_parameters(ctx.model))
        positions = {n: every.index(n) + 1 for n in shapes}
        return lambda kept: smart_ratio_densities(shapes, kept, positions=positions, layers=len(every))

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            n: torch.rand(p.shape, generator=ctx.generator, dtype=torch.float64).to(p.device)
            for n, p in ctx.params.items()
        }


def _like_counts(path: str, shapes: dict[str, tuple[int, ...]], target: float | None, rounds: int | None,
                 explicit: Sequence[float] | None) -> tuple[dict[str, int], dict[str, Any]]:
    """The per-layer kept counts of the ticket in ``path`` (checked against this run's layers),
    and what the provenance records of that ticket."""
    from ticketlab.fileformat import load

    if (rounds or 1) != 1 or (explicit is not None and len(explicit) != 1):
        raise ConfigError("distribution like:FILE is one-shot: it takes one round")
    other = load(path, weights=False, scores=False, history=False)
    for n in [*shapes, *other.masks]:
        if n not in other.masks or n not in shapes:
            where = f"the ticket in '{path}'" if n not in other.masks else "this run's prunable layers"
            raise IncompatibleError(f"distribution like:{path}: layer '{n}' is missing from {where}")
        if tuple(other.masks[n].shape) != shapes[n]:
            raise IncompatibleError(f"distribution like:{path}: layer '{n}' has shape "
                                    f"{tuple(other.masks[n].shape)} there but {shapes[n]} here")
    asked = target if target is not None else (explicit[-1] if explicit else None)
    if asked is not None and keep_count(float(asked), other.total) != other.kept:
        raise ConfigError(f"distribution like:{path} keeps that ticket's {other.kept} weights "
                          f"(density {other.density:.6g}), not density {asked}: leave out the density")
    kept = other.layer_kept()
    return {n: kept[n] for n in shapes}, {"path": path, "method": other.provenance.get("method"), "kept": other.kept}
