"""``edge_popup``: edge-popup (Ramanujan, Wortsman, Kembhavi, Farhadi & Rastegari 2020, "What's
Hidden in a Randomly Weighted Neural Network?", Sec. 3, Algorithm 1).

Real-valued scores (Kaiming-uniform initialised, ``a = sqrt(5)`` as in PyTorch's own layer init,
which the reference code calls) over frozen weights, by default signed Kaiming constants. The
forward pass keeps, in every layer, the top ``k = floor(d * N_l + 1/2)`` weights by ``|s|``;
the backward pass is straight-through to ``|s|`` (the reference code ranks ``scores.abs()``),
so ``dL/ds = sign(s) ⊙ w0 ⊙ dL/dw_eff``, which is the paper's update
``s_uv <- s_uv - α ∂L/∂I_v Z_u w_uv`` for positive scores. SGD lr 0.1, momentum 0.9, cosine,
weight decay 1e-4 on the scores.

``protocol="reference"`` follows allenai/hidden-networks: the cosine steps once per epoch and
every layer keeps ``N - int((1 - d) N)`` weights (count rule ``"truncated"``), in the forward pass
and in the ticket (``docs/learned_masks.md``).

The density is reached in the forward pass from the first step and the selection is
layer-wise only, as in the paper: ``--scope global`` is refused. The forward rule uses the shared
selection's top-k (exact count, ties drawn from the run's selection stream), so the ticket is the
forward mask of the last step (a tie at the last step could be drawn differently; continuous scores
make that rare, and the history's round row records any).

Example:
    >>> from ticketlab.mining import mine
    >>> t = mine("edge_popup", density=0.2, train_epochs=2, device="cpu")
    >>> t.provenance["scope"], all(int(m.sum()) == round(0.2 * m.size) for m in t.masks.values())
    ('layer', True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ticketlab.miners._learned import WEIGHTS_HELP, LearnedMaskConfig, LearnedMaskMiner, MaskRule, protocol_field
from ticketlab.miners.base import MiningContext
from ticketlab.miners.registry import register_miner
from ticketlab.selection import _top_k_flat, keep_count, keep_count_truncated


class TopKRule(MaskRule):
    """``m = 1[|s| among the top k of the layer]``, straight-through to ``|s|``."""

    def __init__(self, scores: torch.Tensor, k: int, generator: torch.Generator | None = None) -> None:
        super().__init__(scores)
        self.k = k
        self.generator = generator  # the run's selection stream: ties at the k-th |s| are drawn
        self._last: torch.Tensor | None = None  # the previous forward's k-th largest |s|
        self._width = 0.0

    def soft(self) -> torch.Tensor:
        return self.scores.abs()

    def kth_largest(self, a: torch.Tensor) -> torch.Tensor:
        """The exact ``k``-th largest entry of ``a`` (1-D), searched near the previous one.

        Scores move little per step, so the new k-th largest value ``v`` lies in a band
        ``[t - w, t + w]`` around the previous one ``t``: if fewer than ``k`` entries exceed
        ``t + w`` and at least ``k`` reach ``t - w``, ``v`` is in the band and equals its
        ``(k - #above)``-th largest entry (duplicates counted). That costs three comparisons and a
        selection over the band instead of over the whole layer; otherwise (or on the first call)
        a full linear-time selection runs and the band widens.
        """
        n, k = a.numel(), self.k
        t, w = self._last, self._width
        if t is not None:
            above = int((a > t + w).sum())
            need = k - above
            if need >= 1:
                band = a[(a >= t - w) & (a <= t + w)]
                if need <= band.numel():
                    value = torch.kthvalue(band, band.numel() - need + 1).values
                    step = float((value - t).abs())
                    self._last, self._width = value, max(0.75 * w, 4.0 * step, 1e-12)
                    return value
        value = torch.kthvalue(a, n - k + 1).values
        step = float((value - t).abs()) if t is not None else 1e-3 * float(value.abs())
        self._last, self._width = value, max(2.0 * w, 4.0 * step, 1e-12)
        return value

    def hard(self) -> torch.Tensor:
        # exactly k per layer with the shared tie rule (a seeded draw among scores tied at the k-th)
        a = self.scores.detach().abs().flatten()
        if 0 < self.k < a.numel():
            keep = _top_k_flat(a, self.k, thresh=self.kth_largest(a), generator=self.generator)
        else:
            keep = _top_k_flat(a, self.k, generator=self.generator)
        return keep.view(self.scores.shape).to(self.scores.dtype)


@register_miner("edge_popup")
class EdgePopupMiner(LearnedMaskMiner):
    """edge-popup (Ramanujan et al. 2020): scores learned over frozen weights; per layer, the top-k |s|.

    The forward pass keeps, per layer, the top-k weights by ``|s|``; the backward pass is
    straight-through (details in the module docstring)."""

    scopes = ("layer",)
    own_rule_stage = "popup"

    @dataclass(frozen=True)
    class Config(LearnedMaskConfig):
        weights: str = field(default="signed_constant", metadata={"help": WEIGHTS_HELP})
        score_weight_decay: float = field(default=1e-4, metadata={"help": "weight decay on the scores"})
        protocol: str = protocol_field()

    #: protocol reference: the final selection keeps edge-popup's per-layer count
    reference_count_rule = "truncated"

    def init_scores(self, ctx: MiningContext, name: str, w0: torch.Tensor) -> torch.Tensor:
        scores = torch.empty(w0.shape, dtype=torch.float32)
        return torch.nn.init.kaiming_uniform_(scores, a=math.sqrt(5), generator=ctx.generator)

    def make_rule(self, ctx: MiningContext, name: str, scores: torch.Tensor, density: float) -> MaskRule:
        # protocol reference: N - int((1 - k) N) per layer (hidden-networks utils/conv_type.py l. 20-25)
        count = keep_count_truncated if self.reference else keep_count
        return TopKRule(scores, count(density, scores.numel()), generator=ctx.tie_generator)

    def rank_scores(self, rules: dict[str, MaskRule]) -> dict[str, torch.Tensor]:
        return {n: r.scores.detach().abs() for n, r in rules.items()}
