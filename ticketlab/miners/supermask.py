"""``supermask``: Zhou, Lan, Liu & Yosinski 2019 ("Deconstructing Lottery Tickets: Zeros, Signs,
and the Supermask"): mask criteria from the initial and trained weights, untrained evaluation,
and the choice of the mask on the **validation** split.

1. Train the dense network (the shared loop, as ``magnitude`` does), keeping θ0 (and the whole
   initial state). θT is the last weights, or with ``--final-weights early_stop`` those at the
   minimum validation loss (the seed recipe's retraining from θ0 to that iteration, which under
   ticketlab's seeded training gives the same weights).
2. Score every weight with ``--criterion`` (Zhou et al., Sec. 3, Fig. 2; keep the largest).
3. Without ``--density``: sweep a grid of densities (``--sweep``, default ``0.8^1..0.8^24`` as in
   Zhou's supermask figure) or of raw criterion thresholds (``--thresholds``, the seed recipe's
   ``sign(θ0)·θT >= t``). At every point the masked network, its kept weights set by ``--weights``,
   is evaluated **untrained** on the validation split (batch norm recalibrated first, see
   :func:`ticketlab.training.evaluate_untrained`); the test accuracy is computed but only
   reported. ``--select best`` keeps the point of highest validation accuracy (the densest on
   ties); Zhou's own sweep selected on test accuracy, which this avoids.
4. The ticket is selected at exactly that point's kept count by the shared selection; its
   ``init`` weights are the ``--weights`` action's, which ``--train-ticket`` then trains with its
   zeros frozen (the seed recipe's step 6).

Criteria (θ0 initial, θT trained; per layer ``rank`` = ordinal rank / size, ties by index):

=============================  ===============================================================
``large_final``                ``|θT|``
``small_final``                ``-|θT|``
``large_init``                 ``|θ0|``
``small_init``                 ``-|θ0|``
``large_init_large_final``     ``min(rank|θ0|, rank|θT|)``: top-k = both pass a common per-layer
                               percentile, the percentile searched to hit the count
``small_init_small_final``     ``min(rank(-|θ0|), rank(-|θT|))``
``magnitude_increase``         ``|θT| - |θ0|``
``movement``                   ``|θT - θ0|``
``large_final_same_sign``      ``sign(θ0)·θT``: ``|θT|`` where the signs agree, below every
                               same-sign weight where they differ (default; the seed recipe)
``large_final_diff_sign``      ``-sign(θ0)·θT``
``magnitude_increase_same_sign`` ``|θT| - |θ0|`` where the signs agree, else ``-inf`` (a deviation
                               from the reference, which scores those 0: see below)
``magnitude_increase_diff_sign`` ``|θT| - |θ0|`` where the signs differ, else ``-inf``
``random``                     uniform draws from the run's generator
``same_sign_single``           the mask *is* ``sign(θ0) = sign(θT)``: no count control, the
                               achieved density is reported (``diff_sign_single``: the mirror)
=============================  ===============================================================

**Protocols** (``--protocol``). ``exact`` (default) is the above with ticketlab's shared selection.
``reference`` follows Zhou et al.'s code (uber-research/deconstructing-lottery-tickets,
``get_weight_init.py`` and ``train_lottery.py``); ``docs/learned_masks.md`` lists each convention,
ticketlab's default and why, side by side:

* the four sign criteria score the *other* sign group 0 (``get_weight_init.py`` l. 139-165,
  296-322), not below every weight of the named group: ``large_final_same_sign`` ``|θT|`` where the
  signs agree, else 0; ``large_final_diff_sign`` ``|θT|`` where they differ, else 0 (the many
  zeros then tie and the shared seeded draw fills them); ``magnitude_increase_same_sign``
  ``|θT| - |θ0|`` where they agree, else 0, so a sign-flipped weight ranks *above* a same-sign
  weight that shrank; ``magnitude_increase_diff_sign`` the mirror;
* each layer keeps ``N - int(N * pp / 100)``, ``pp = (1 - d) * 100`` (count rule
  ``truncated_percent``, l. 47 and l. 100), and the output layer is swept at ``0.9^p`` where the
  others are at ``B^p`` (Zhou's ``--prune_base 0.8,0.9``; ``--output-sweep`` sets it for either
  protocol);
* the biases of the pruned layers take the ``--weights`` action too, and the single-sign criteria
  mask them (``train_lottery.py`` l. 508-688 act on every trainable tensor; the masked layers
  multiply the bias by its mask, ``masked_layers.py`` l. 34-38). Masks cover weights only, so the
  bias masks are recorded in the provenance (``kept_conventions``, :mod:`ticketlab.weights`) and
  applied by the shared helpers wherever the start is made (the ticket's init state,
  ``--train-ticket``, ``ticketlab train``, ``ticketlab evaluate``);
* ``rand_signed_std`` shuffles the signs over the whole layer before masking (l. 604-616);
  ``--weights`` ``random_reinit`` / ``signed_reinit`` (θ0 of the whole layer permuted) exist under
  both protocols; ticketlab's ``signed_constant``, ``rand_signed_constant`` and ``reinit`` (a fresh
  draw) are not Zhou's and are refused under ``reference``, as are ``--thresholds`` and
  ``--scope global``.

``--normalize layer`` divides each layer's criterion by the std of its θ0 before a global ranking
or threshold: raw weights scale like ``1/sqrt(fan_in)``, so a global threshold on them mixes
layers of very different scale and can empty a whole layer (a warning names it).

Example:
    >>> import torch
    >>> t0, tT = {"w": torch.tensor([0.1, 0.2, 0.3])}, {"w": torch.tensor([-0.2, 0.05, 0.3])}
    >>> (criterion_scores("large_final_same_sign", t0, tT)["w"] >= 0.1).tolist()
    [False, False, True]
    >>> (criterion_scores("large_final", t0, tT)["w"] >= 0.1).tolist()
    [True, False, True]
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ticketlab.errors import ConfigError, TicketlabWarning
from ticketlab.miners.base import (
    Miner, MinerConfig, MiningContext, RoundTarget, check_choices, protocol_field,
)
from ticketlab.miners.registry import register_miner
from ticketlab.progress import NullProgress
from ticketlab.selection import density_for_count, select_target
from ticketlab.weights import (
    KEPT_CONVENTIONS, bias_record, check_action, kept_generator, kept_weights, layer_biases, reinit_draw_seed,
    start_biases,
)

Tensors = dict[str, torch.Tensor]


def _rank(x: torch.Tensor) -> torch.Tensor:
    """Ordinal rank / n of every entry (ascending; ties by flat index), in [0, 1)."""
    flat = x.flatten()
    order = torch.argsort(flat, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(flat.numel(), device=flat.device)
    return (ranks.to(torch.float64) / flat.numel()).view(x.shape)


def _same_sign(w0: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    return torch.sign(w0) == torch.sign(wt)  # sign(0) = 0, as numpy's: a zero agrees only with a zero


_CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "large_final": lambda w0, wt: wt.abs(),
    "small_final": lambda w0, wt: -wt.abs(),
    "large_init": lambda w0, wt: w0.abs(),
    "small_init": lambda w0, wt: -w0.abs(),
    "large_init_large_final": lambda w0, wt: torch.minimum(_rank(w0.abs()), _rank(wt.abs())),
    "small_init_small_final": lambda w0, wt: torch.minimum(_rank(-w0.abs()), _rank(-wt.abs())),
    "magnitude_increase": lambda w0, wt: wt.abs() - w0.abs(),
    "movement": lambda w0, wt: (wt - w0).abs(),
    "large_final_same_sign": lambda w0, wt: torch.sign(w0) * wt,
    "large_final_diff_sign": lambda w0, wt: -torch.sign(w0) * wt,
    "magnitude_increase_same_sign": lambda w0, wt: torch.where(
        _same_sign(w0, wt), wt.abs() - w0.abs(), torch.full_like(wt, -math.inf)),
    "magnitude_increase_diff_sign": lambda w0, wt: torch.where(
        _same_sign(w0, wt), torch.full_like(wt, -math.inf), wt.abs() - w0.abs()),
    "same_sign_single": lambda w0, wt: _same_sign(w0, wt).to(wt.dtype),
    "diff_sign_single": lambda w0, wt: (~_same_sign(w0, wt)).to(wt.dtype),
}
CRITERIA = tuple(_CRITERIA) + ("random",)
#: Criteria that are a mask, not a ranking: no count control, the achieved density is reported.
SINGLE = ("same_sign_single", "diff_sign_single")

#: protocol "reference": the criteria Zhou et al.'s code scores otherwise. The other sign group
#: scores 0 (uber-research/deconstructing-lottery-tickets, get_weight_init.py: l. 139-145, 153-159,
#: 296-302, 310-316: ``cumulative_helped[same_sign_ind] = 0``), not -inf or a negative value.
_REFERENCE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "large_final_same_sign": lambda w0, wt: torch.where(_same_sign(w0, wt), wt.abs(), torch.zeros_like(wt)),
    "large_final_diff_sign": lambda w0, wt: torch.where(_same_sign(w0, wt), torch.zeros_like(wt), wt.abs()),
    "magnitude_increase_same_sign": lambda w0, wt: torch.where(
        _same_sign(w0, wt), wt.abs() - w0.abs(), torch.zeros_like(wt)),
    "magnitude_increase_diff_sign": lambda w0, wt: torch.where(
        _same_sign(w0, wt), torch.zeros_like(wt), wt.abs() - w0.abs()),
}
#: Zhou et al.'s output-layer base (``--prune_base 0.8,0.9``: the output layer at half the hidden rate).
REFERENCE_OUTPUT_BASE = 0.9
#: ``--weights`` actions that are ticketlab's, not Zhou's, and the action of Zhou's closest to each.
_NOT_ZHOU = {"signed_constant": "signed_std (Zhou's signed constant)", "rand_signed_constant": "rand_signed_std",
             "reinit": "random_reinit (Zhou's: a permutation of the layer's θ0)"}


def criterion_scores(name: str, theta0: Tensors, thetaT: Tensors, *, generator: torch.Generator | None = None,
                     normalize: str = "none", protocol: str = "exact") -> Tensors:
    """The criterion ``name``'s score of every weight (higher = keep), per parameter, as
    ticketlab (``protocol="exact"``) or Zhou et al.'s code (``"reference"``) scores it.

    Example:
        >>> s = criterion_scores("movement", {"w": torch.tensor([1.0, -1.0])}, {"w": torch.tensor([0.5, 1.0])})
        >>> s["w"].tolist()
        [0.5, 2.0]
        >>> t0, tT = {"w": torch.tensor([0.5, -0.5])}, {"w": torch.tensor([0.25, 1.0])}  # w[1] flips its sign
        >>> [criterion_scores("magnitude_increase_same_sign", t0, tT, protocol=p)["w"].tolist() for p in ("exact", "reference")]
        [[-0.25, -inf], [-0.25, 0.0]]
    """
    if name not in CRITERIA:
        raise ConfigError(f"unknown supermask criterion '{name}' (choose from: {', '.join(CRITERIA)})")
    if protocol not in ("exact", "reference"):
        raise ConfigError(f"protocol must be exact or reference, got {protocol!r}")
    table = {**_CRITERIA, **_REFERENCE} if protocol == "reference" else _CRITERIA
    out: Tensors = {}
    for n, w0 in theta0.items():
        wt = thetaT[n]
        if name == "random":
            g = generator if generator is not None else torch.Generator().manual_seed(0)
            out[n] = torch.rand(w0.shape, generator=g, dtype=torch.float64).to(w0.device)
        else:
            out[n] = table[name](w0.detach().double(), wt.detach().double())
        if normalize == "layer" and name not in SINGLE and not name.endswith("init_large_final") \
                and not name.endswith("init_small_final"):
            out[n] = out[n] / w0.detach().double().std(correction=0).clamp_min(1e-300)
    return out


def sweep_powers(text: str) -> tuple[float, int, int] | None:
    """``(B, i, j)`` of a ``--sweep`` value ``B^i..B^j``, or ``None`` for any other text.

    Example:
        >>> sweep_powers("0.8^1..0.8^24"), sweep_powers("0.5,0.1")
        ((0.8, 1, 24), None)
    """
    m = re.fullmatch(r"\s*([0-9.]+)\^(\d+)\s*\.\.\s*([0-9.]+)\^(\d+)\s*", text or "")
    if not m:
        return None
    try:
        base, other = float(m.group(1)), float(m.group(3))
    except ValueError:
        raise ConfigError(f"supermask option sweep needs 'B^i..B^j' or comma-separated densities, got '{text}'") from None
    if base != other:
        raise ConfigError(f"supermask option sweep needs 'B^i..B^j' or comma-separated densities, got '{text}'")
    return base, int(m.group(2)), int(m.group(4))


def parse_sweep(text: str) -> list[float]:
    """Densities of a ``--sweep`` value: ``B^i..B^j`` (powers ``i..j`` of ``B``) or a comma list.

    Example:
        >>> [round(d, 4) for d in parse_sweep("0.8^1..0.8^3")], parse_sweep("0.5, 0.1")
        ([0.8, 0.64, 0.512], [0.5, 0.1])
    """
    powers = sweep_powers(text)
    try:
        if powers is not None:
            base, lo, hi = powers
            values = [base ** k for k in range(lo, hi + 1)]  # Python's float power, as Zhou's prune_base ** power
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"supermask option sweep needs 'B^i..B^j' or comma-separated densities, got '{text}'") from None
    if not values or not all(0.0 < d <= 1.0 for d in values):
        raise ConfigError(f"supermask option sweep needs densities in (0, 1], got '{text}'")
    return sorted(set(values), reverse=True)


def _parse_thresholds(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"supermask option thresholds needs comma-separated numbers, got '{text}'") from None
    if not values:
        raise ConfigError("supermask option thresholds needs at least one number")
    return sorted(set(values))


@register_miner("supermask")
class SupermaskMiner(Miner):
    """Zhou et al. 2019: a mask criterion of θ0 and θT at the density an untrained validation sweep picks.

    The steps and the table of criteria are in the module docstring."""

    needs_data = True
    trains = True
    tracks_masks = True  # the criterion's mask of (θ0, current weights) during the dense training
    scopes = ("layer", "global")  # Zhou et al. prune layer-wise

    @dataclass(frozen=True)
    class Config(MinerConfig):
        criterion: str = field(default="large_final_same_sign", metadata={
            "help": "mask criterion: a score of θ0 and θT, the largest kept (Zhou et al. 2019, Sec. 3, Fig. 2)",
            "choices": CRITERIA})
        weights: str = field(default="init", metadata={
            "help": "what the kept weights are set to: init, signed_std (Zhou's signed constant), signed_constant, "
                    "rand_signed_std, rand_signed_constant, random_reshuffle, signed_reshuffle, reinit (a fresh "
                    "draw), random_reinit or signed_reinit (the layer's θ0 permuted, Zhou's); old name: kept"})
        sweep: str = field(default="0.8^1..0.8^24", metadata={
            "help": "densities of the untrained sweep when no --density is given: B^i..B^j or a comma list"})
        thresholds: str = field(default="", metadata={
            "help": "sweep raw criterion thresholds instead (keep where score >= t), e.g. 0,0.02,0.05"})
        normalize: str = field(default="none", metadata={
            "help": "none, or layer: divide each layer's criterion by the std of its θ0 (for global ranking or "
                    "thresholds; may empty a layer)", "choices": ("none", "layer")})
        select: str = field(default="best", metadata={
            "help": "which sweep point to keep: best (highest untrained validation accuracy)", "choices": ("best",)})
        final_weights: str = field(default="last", metadata={
            "help": "which trained weights θT are: last (the end of dense training) or early_stop (the weights at "
                    "the minimum validation loss, as a retraining to that iteration would give)",
            "choices": ("last", "early_stop")})
        recalibrate_batches: int = field(default=10, metadata={
            "help": "training batches (128 samples) that re-estimate batch-norm statistics before each untrained "
                    "evaluation (0 = none)"})
        output_sweep: str = field(default="", metadata={
            "help": "densities of the output layer at the sweep's points, paired in order (B^i..B^j or a comma "
                    "list, as many as --sweep); empty: the sweep's own density, or under protocol reference "
                    "0.9 to the sweep's powers (Zhou's output layer at 0.9^p against 0.8^p)"})
        protocol: str = protocol_field()

        def __post_init__(self) -> None:
            if self.criterion not in CRITERIA:
                raise ConfigError(f"unknown supermask criterion '{self.criterion}' (choose from: {', '.join(CRITERIA)})")
            check_action(self.weights)
            check_choices(self)  # normalize, select, final_weights, protocol
            if isinstance(self.recalibrate_batches, bool) or not isinstance(self.recalibrate_batches, int) \
                    or self.recalibrate_batches < 0:
                raise ConfigError(f"recalibrate_batches must be a non-negative integer, got {self.recalibrate_batches!r}")
            grid = parse_sweep(self.sweep)
            if self.thresholds:
                _parse_thresholds(self.thresholds)
            if self.output_sweep and len(parse_sweep(self.output_sweep)) != len(grid):
                raise ConfigError(f"supermask option output_sweep needs as many densities as sweep ({len(grid)}), "
                                  f"got {len(parse_sweep(self.output_sweep))}")
            if self.protocol == "reference":
                if self.weights in _NOT_ZHOU:
                    raise ConfigError(f"weights {self.weights} is ticketlab's, not one of Zhou et al.'s mask-1 actions "
                                      f"(protocol reference): use {_NOT_ZHOU[self.weights]}, or protocol exact")
                if self.thresholds:
                    raise ConfigError("supermask with protocol reference sweeps densities (Zhou's prune powers), not "
                                      "thresholds: drop thresholds, or use protocol exact")
                if not self.output_sweep and sweep_powers(self.sweep) is None:
                    raise ConfigError("supermask with protocol reference derives the output layer's densities 0.9^p "
                                      "from a sweep B^i..B^j: give one, or give output_sweep too")

    config: Config
    _count_rule = "exact"  # the run's, from round_count_rule (the sweep selects as the round does)

    @property
    def reference(self) -> bool:
        """Whether the run follows Zhou et al.'s code (``protocol="reference"``)."""
        return self.config.protocol == "reference"

    def round_count_rule(self, count_rule: str) -> str:
        """The run's count rule; under ``protocol="reference"`` Zhou's ``"truncated_percent"``."""
        if self.reference:
            if count_rule != "exact":
                raise ConfigError("supermask with protocol reference keeps Zhou's per-layer count; leave the count "
                                  "rule at exact (it becomes 'truncated_percent')")
            count_rule = "truncated_percent"
        self._count_rule = count_rule
        return count_rule

    # ------------------------------------------------------------------ schedule
    def schedule(self, ctx: MiningContext, target: float | None, rounds: int | None,
                 explicit: Sequence[float] | None = None) -> list[RoundTarget]:
        """One round; its density is the user's, or chosen by the sweep in :meth:`prepare`."""
        if self.reference and ctx.scope != "layer":
            raise ConfigError("supermask with protocol reference prunes each layer on its own, as Zhou et al.: "
                              "drop scope global")
        single = self.config.criterion in SINGLE
        self.sweeping = target is None and explicit is None and not single
        if self.config.output_sweep and not self.sweeping:
            raise ConfigError("supermask option output_sweep sets the sweep's output layer: drop it, or drop "
                              "--density/--sparsity/--schedule")
        if single and (target is not None or explicit is not None):
            raise ConfigError(f"criterion {self.config.criterion} fixes its own density (no count control): "
                              "drop --density/--sparsity/--schedule")
        if self.config.thresholds and not self.sweeping:
            raise ConfigError("supermask option thresholds is a sweep: drop --density/--sparsity/--schedule")
        if self.sweeping or single:
            if rounds not in (None, 1):
                raise ConfigError("the supermask sweep chooses one density: drop --rounds")
            return [1.0]  # placeholder, replaced by the sweep's choice in prepare()
        return super().schedule(ctx, target, rounds, explicit)

    # ------------------------------------------------------------------ the recipe
    def prepare(self, ctx: MiningContext) -> None:
        from ticketlab.training import state_copy, fit, train_summary

        cfg = self.config
        self.init_state = state_copy(ctx.model)
        theta0 = {n: p.detach().clone() for n, p in ctx.params.items()}
        early = cfg.final_weights == "early_stop"
        result = fit(ctx.model, ctx.data, ctx.train_config, seed=ctx.seed, device=ctx.device,
                       progress=ctx.progress or NullProgress(), keep_early_stop=early,
                       callbacks=self._trackers(ctx, theta0))
        ctx.records.append({"stage": "dense", **train_summary(result)})
        if early:  # θT = the early-stopping weights (the seed recipe's retraining to that iteration)
            ctx.model.load_state_dict(result.early_stop_state)
        thetaT = {n: p.detach().clone() for n, p in ctx.params.items()}
        trained_state = state_copy(ctx.model)
        self.init_weights = theta0
        self.scores = criterion_scores(cfg.criterion, theta0, thetaT, generator=ctx.generator, normalize=cfg.normalize,
                                       protocol=cfg.protocol)
        self._biases(ctx, trained_state)
        self.choice: dict[str, Any] = {"criterion": cfg.criterion, "weights": cfg.weights, "normalize": cfg.normalize}
        try:
            if cfg.criterion in SINGLE:
                masks = {n: s > 0.5 for n, s in self.scores.items()}
                ev = self._evaluate(ctx, masks)
                ctx.schedule = [self._per_layer(masks)]
                self.choice.update(mode="single", kept_count=self._kept(masks))
                ctx.records.append(self._row(masks, ev, threshold=None))
            elif self.sweeping:
                ctx.schedule = [self._sweep(ctx)]
        finally:
            ctx.model.load_state_dict(trained_state)  # the trained weights stay the ticket's "final"
        self.target = ctx.schedule[-1]
        ctx.provenance["supermask"] = dict(self.choice)
        if self.conventions is not None:
            ctx.provenance[KEPT_CONVENTIONS] = self.conventions

    def _biases(self, ctx: MiningContext, trained_state: dict[str, torch.Tensor]) -> None:
        """protocol reference: the biases of the pruned layers take the ``--weights`` action (with the
        single-sign criteria's bias masks): ``self.bias_start`` (name -> start bias, pruned entries
        0) and the provenance record :data:`~ticketlab.weights.KEPT_CONVENTIONS`; the untrained
        evaluations start from ``self.eval_state`` (the initial state with those biases)."""
        cfg = self.config
        self.bias_start: Tensors = {}
        self.conventions: dict[str, Any] | None = None
        self.eval_state = self.init_state
        if not self.reference:
            return
        names = list(layer_biases(dict(ctx.model.named_parameters()), ctx.params).values())
        b0 = {n: self.init_state[n].detach().clone() for n in names}
        if cfg.criterion in SINGLE:  # get_weight_init.py l. 167-182: the sign mask of the whole vector, biases too
            same = {n: _same_sign(b0[n], trained_state[n]) for n in names}
            masks = {n: same[n] if cfg.criterion == "same_sign_single" else ~same[n] for n in names}
        else:  # l. 101: "prune_percentiles.append(0) #hacky way to not mask bias for now"
            masks = {n: torch.ones_like(b0[n], dtype=torch.bool) for n in names}
        self.bias_start = start_biases(cfg.weights, b0, masks, seed=ctx.seed, within="layer")
        self.conventions = {"action": cfg.weights, "signs": "layer", "biases": bias_record(masks)}
        self.eval_state = {**self.init_state, **{n: b.to(self.init_state[n].dtype) for n, b in self.bias_start.items()}}

    def _trackers(self, ctx: MiningContext, theta0: Tensors) -> list[Any]:
        """``--track-masks``: the criterion's mask of (θ0, the weights so far) at the target density,
        the mask the ticket would get if training stopped there (Early-Bird, You et al. 2020)."""
        if ctx.track_masks is None:
            return []
        cfg = self.config
        if self.sweeping or cfg.criterion in SINGLE or cfg.criterion == "random":
            why = ("the sweep picks the density only after training" if self.sweeping else
                   f"criterion {cfg.criterion} " + ("fixes its own density" if cfg.criterion in SINGLE
                                                    else "does not depend on the training"))
            raise ConfigError(f"supermask cannot track masks: {why} (track a criterion at a given --density)")
        params = ctx.params
        return ctx.mask_trackers("dense", scores=lambda: criterion_scores(cfg.criterion, theta0, dict(params),
                                                                         normalize=cfg.normalize,
                                                                         protocol=cfg.protocol))

    def _sweep(self, ctx: MiningContext) -> RoundTarget:
        """Evaluate every grid point untrained; return the target of the best on validation."""
        cfg = self.config
        thresholds = _parse_thresholds(cfg.thresholds) if cfg.thresholds else None
        points: list[tuple[RoundTarget, dict[str, Any]]] = []
        grid: list[tuple[RoundTarget, float, float | None]] = (
            [(t, t, None) for t in thresholds] if thresholds is not None else self._sweep_points(ctx))
        with (ctx.progress or NullProgress()).task("supermask: sweep", total=len(grid)) as bar:
            for value, density, output in grid:
                if thresholds is not None:
                    masks = {n: s >= value for n, s in self.scores.items()}
                    target: RoundTarget = self._per_layer(masks)
                else:
                    # a copy of the run's selection stream: the round that keeps this target
                    # draws the same ties, so the ticket is the mask evaluated here
                    stream = torch.Generator()
                    if ctx.tie_generator is not None:
                        stream.set_state(ctx.tie_generator.get_state())
                    masks = select_target(self.scores, value, scope=ctx.scope, count_rule=self._count_rule,
                                          generator=stream)
                    target = value
                row = self._row(masks, self._evaluate(ctx, masks), threshold=density if thresholds is not None else None)
                if thresholds is None:
                    row["target_density"] = density
                    if output is not None:
                        row["target_output_density"] = output
                ctx.records.append(row)
                points.append((target, row))
                bar.advance()
        usable = [(t, r) for t, r in points if r["kept"] > 0 and not math.isnan(r["val_accuracy"])]
        if not usable:
            raise ConfigError("no point of the supermask sweep keeps any weight: choose other thresholds")
        best = max(range(len(usable)), key=lambda i: (usable[i][1]["val_accuracy"], -i))  # first on ties
        target, row = usable[best]
        row["selected"] = True
        self.choice.update(mode="thresholds" if thresholds is not None else "densities", select=cfg.select,
                           selected_density=row["density"], selected_kept=row["kept"],
                           selected_val_accuracy=row["val_accuracy"], selected_threshold=row.get("threshold"))
        if "target_output_density" in row:
            self.choice.update(selected_target_density=row["target_density"],
                               selected_output_density=row["target_output_density"])
        return target

    def _sweep_points(self, ctx: MiningContext) -> list[tuple[RoundTarget, float, float | None]]:
        """The density sweep as ``(target, density, output density or None)``: one density for
        every layer, or, when the output layer has its own (``--output-sweep``, or protocol
        reference's ``0.9^p``), a per-layer target (the round target the runner selects with)."""
        cfg = self.config
        grid = parse_sweep(cfg.sweep)
        if cfg.output_sweep:
            outputs: list[float] | None = parse_sweep(cfg.output_sweep)  # paired in order (both decreasing)
        elif self.reference:  # Zhou: --prune_base 0.8,0.9: the output layer at 0.9 ** the same power
            base, lo, hi = sweep_powers(cfg.sweep)  # type: ignore[misc]  # (checked by the config)
            pairs = list(dict.fromkeys((base ** k, REFERENCE_OUTPUT_BASE ** k) for k in range(lo, hi + 1)))
            grid, outputs = [p[0] for p in pairs], [p[1] for p in pairs]
        else:
            outputs = None
        out_layer = self._output_layer(ctx) if outputs is not None else None
        if outputs is None or out_layer is None:
            if cfg.output_sweep:
                raise ConfigError("supermask option output_sweep needs the output layer pruned (not skip_last_layer)")
            return [(d, d, None) for d in grid]
        return [({n: (o if n == out_layer else d) for n in ctx.params}, d, o) for d, o in zip(grid, outputs)]

    @staticmethod
    def _output_layer(ctx: MiningContext) -> str | None:
        """The output layer's weight (the model's last prunable parameter), if it is pruned."""
        from ticketlab.models import prunable_parameters

        names = list(prunable_parameters(ctx.model))
        return names[-1] if names and names[-1] in ctx.params else None

    def _evaluate(self, ctx: MiningContext, masks: Tensors) -> dict[str, tuple[float, float]]:
        from ticketlab.training import evaluate_untrained

        return evaluate_untrained(ctx.model, ctx.data, masks, self._kept_weights(ctx, masks), state=self.eval_state,
                                  recalibrate=self.config.recalibrate_batches, seed=ctx.seed)

    def _kept_weights(self, ctx: MiningContext, masks: Tensors) -> Tensors:
        """The ``--weights`` action's weights of ``masks``; the same generator seed for every mask, so the ticket's
        weights are exactly those its sweep point was evaluated with."""
        gen = kept_generator(ctx.seed)
        fresh = None
        if self.config.weights == "reinit":
            if ctx.draw_init is None:
                raise ConfigError("weights action reinit needs a way to draw fresh weights")
            fresh = ctx.draw_init(reinit_draw_seed(ctx.seed))
        within = "layer" if self.reference else "kept"  # rand_signed_*: Zhou shuffles over the whole layer
        return {n: kept_weights(self.config.weights, self.init_weights[n], masks[n], generator=gen, within=within,
                                fresh=None if fresh is None else fresh[n]) for n in masks}

    def _row(self, masks: Tensors, ev: dict[str, tuple[float, float]], threshold: float | None) -> dict[str, Any]:
        kept = self._kept(masks)
        total = sum(m.numel() for m in masks.values())
        empty = [n for n, m in masks.items() if not bool(m.any())]
        if empty and kept:
            warnings.warn(f"supermask: layer(s) {', '.join(empty)} keep no weight at density {kept / total:.4g} "
                          "(a global threshold on raw weights mixes layer scales; see --normalize layer)",
                          TicketlabWarning, stacklevel=3)
        row: dict[str, Any] = {"stage": "sweep", "kept": kept, "density": kept / total,
                               "val_accuracy": ev["val"][1], "val_loss": ev["val"][0], "test_accuracy": ev["test"][1],
                               "empty_layers": len(empty)}
        if threshold is not None:
            row["threshold"] = threshold
        return row

    @staticmethod
    def _kept(masks: Tensors) -> int:
        return sum(int(m.sum()) for m in masks.values())

    def _per_layer(self, masks: Tensors) -> dict[str, float]:
        """Per-layer densities whose counts under the run's count rule are the masks' own."""
        return {n: density_for_count(int(m.sum()), m.numel(), self._count_rule) for n, m in masks.items()}

    def score(self, ctx: MiningContext, masks: Tensors) -> Tensors:
        return {n: s.to(ctx.params[n].device) for n, s in self.scores.items()}

    def after_round(self, ctx: MiningContext, masks: Tensors, round_index: int) -> None:
        """The untrained accuracy of the round's exact mask with the kept weights set by ``--weights``."""
        from ticketlab.training import state_copy

        trained = state_copy(ctx.model)
        try:
            ev = self._evaluate(ctx, masks)
        finally:
            ctx.model.load_state_dict(trained)
        ctx.records.append({"untrained_val_accuracy": ev["val"][1], "untrained_test_accuracy": ev["test"][1]})

    def ticket_weights(self, ctx: MiningContext, masks: Tensors) -> Tensors:
        """The weights ``--weights`` sets; under protocol reference the biases' start values too."""
        return {**self._kept_weights(ctx, masks), **self.bias_start}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"init_state": self.init_state, "init_weights": self.init_weights, "scores": self.scores,
                "choice": dict(self.choice), "sweeping": self.sweeping, "target": self.target,
                "bias_start": self.bias_start, "conventions": self.conventions}

    def resume(self, ctx: MiningContext, state: dict[str, Any]) -> None:
        self.init_state, self.scores = state["init_state"], state["scores"]
        self.init_weights = state["init_weights"] if "init_weights" in state else state["theta0"]  # before issue 24
        self.choice = dict(state["choice"])
        self.sweeping = bool(state["sweeping"])
        self.bias_start, self.conventions = dict(state["bias_start"]), state["conventions"]
        self.eval_state = {**self.init_state, **{n: b.to(self.init_state[n].dtype) for n, b in self.bias_start.items()}}
        ctx.schedule = [state["target"]]  # the sweep's choice, not swept again
        ctx.provenance["supermask"] = dict(self.choice)
        if self.conventions is not None:
            ctx.provenance[KEPT_CONVENTIONS] = self.conventions
