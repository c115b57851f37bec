"""The round loop every pruning run shares: the miner scores, the shared selection keeps the round's target.

:func:`ticketlab.mine` runs it over a run's schedule (and records each round: history row, round
file, checkpoint); the collapse study (:mod:`ticketlab.collapse`) runs it once per probed
compression and leaves it at the first round that empties a layer. Miners never select: a round is
``before_round``, ``score``, :func:`ticketlab.selection.select_target` (ties drawn from the run's
selection stream, ``ctx.tie_generator``), ``after_round``.

Example:
    >>> from ticketlab.build import build_network
    >>> from ticketlab.miners.base import MiningContext
    >>> from ticketlab.miners import get_miner
    >>> from ticketlab.spec import MineSpec
    >>> from ticketlab.streams import miner_generators
    >>> b = build_network(MineSpec("synflow"), device="cpu", read_data=False)
    >>> gen, ties = miner_generators(0)
    >>> ctx = MiningContext(model=b.net, params=b.params, spec=b.data.spec, data=b.data, device=b.device, seed=0,
    ...                     generator=gen, tie_generator=ties)
    >>> miner = get_miner("synflow")()
    >>> miner.prepare(ctx)
    >>> ones = {n: torch.ones_like(p, dtype=torch.bool) for n, p in b.params.items()}
    >>> [(r.index, sum(int(m.sum()) for m in r.masks.values())) for r in round_loop(miner, ctx, ones, [0.5, 0.25])]
    [(1, 25100), (2, 12550)]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from ticketlab.selection import SelectionBuffers, TieRecord, select_target

if TYPE_CHECKING:
    from ticketlab.miners.base import Miner, MiningContext, RoundTarget


@dataclass
class Round:
    """One finished round: its ``index`` (1-based), its ``target``, the ``masks`` it kept, the
    ``scores`` they were selected by, the thresholds that were tied and the seconds it took."""

    index: int
    target: "RoundTarget"
    masks: dict[str, torch.Tensor]
    scores: dict[str, torch.Tensor]
    ties: list[TieRecord]
    seconds: float


def round_loop(miner: "Miner", ctx: "MiningContext", masks: dict[str, torch.Tensor], targets: Sequence["RoundTarget"],
               *, first: int = 1, scope: str = "global", count_rule: str = "exact",
               buffers: SelectionBuffers | None = None) -> Iterator[Round]:
    """Rounds ``first`` .. ``len(targets)`` from ``masks`` (``targets[k - 1]`` is round ``k``'s
    density, or per-parameter densities): the miner scores under the masks so far, the shared
    selection keeps the target over ``scope`` by ``count_rule``. A generator: the caller records
    each :class:`Round` as it comes, and ends the run early by leaving the loop.

    ``buffers`` (:class:`~ticketlab.selection.SelectionBuffers`) are reused round after round;
    they change the speed only.
    """
    for k in range(first, len(targets) + 1):
        target = targets[k - 1]
        started = time.perf_counter()
        miner.before_round(ctx, masks, k)
        scores = miner.score(ctx, masks)
        ties: list[TieRecord] = []
        masks = select_target(scores, target, scope=scope, masks=masks, count_rule=count_rule, buffers=buffers,
                              generator=ctx.tie_generator, ties=ties)
        miner.after_round(ctx, masks, k)
        yield Round(k, target, masks, scores, ties, time.perf_counter() - started)
