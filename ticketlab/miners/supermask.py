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
   ``sign(θ0)·θT >= t``). At every point the masked network with its ``--kept`` weights is
   evaluated **untrained** on the validation split (batch norm recalibrated first, see
   :func:`ticketlab.training.evaluate_untrained`); the test accuracy is computed but only
   reported. ``--select best`` keeps the point of highest validation accuracy (the densest on
   ties); Zhou's own sweep selected on test accuracy, which this avoids.
4. The ticket is selected at exactly that point's kept count by the shared selection; its
   ``init`` weights are the ``--kept`` weights, which ``--train-ticket`` then trains with its
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
``magnitude_increase_same_sign`` ``|θT| - |θ0|`` where the signs agree, else ``-inf``
``random``                     uniform draws from the run's generator
``same_sign_single``           the mask *is* ``sign(θ0) = sign(θT)``: no count control, the
                               achieved density is reported (``diff_sign_single``: the mirror)
=============================  ===============================================================

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
from ticketlab.miners.base import Miner, MinerConfig, MiningContext, RoundTarget, check_choices, register_miner
from ticketlab.progress import NullProgress
from ticketlab.selection import keep_count, select_top
from ticketlab.weights import check_kept, kept_generator, kept_weights, reinit_draw_seed

Tensors = dict[str, torch.Tensor]


def _rank(x: torch.Tensor) -> torch.Tensor:
    """Ordinal rank / n of every entry (ascending; ties by flat index), in [0, 1)."""
    flat = x.flatten()
    order = torch.argsort(flat, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(flat.numel(), device=flat.device)
    return (ranks.to(torch.float64) / flat.numel()).view(x.shape)


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
        torch.sign(w0) == torch.sign(wt), wt.abs() - w0.abs(), torch.full_like(wt, -math.inf)),
    "same_sign_single": lambda w0, wt: (torch.sign(w0) == torch.sign(wt)).to(wt.dtype),
    "diff_sign_single": lambda w0, wt: (torch.sign(w0) != torch.sign(wt)).to(wt.dtype),
}
CRITERIA = tuple(_CRITERIA) + ("random",)
#: Criteria that are a mask, not a ranking: no count control, the achieved density is reported.
SINGLE = ("same_sign_single", "diff_sign_single")


def criterion_scores(name: str, theta0: Tensors, thetaT: Tensors, *, generator: torch.Generator | None = None,
                     normalize: str = "none") -> Tensors:
    """The criterion ``name``'s score of every weight (higher = keep), per parameter.

    Example:
        >>> s = criterion_scores("movement", {"w": torch.tensor([1.0, -1.0])}, {"w": torch.tensor([0.5, 1.0])})
        >>> s["w"].tolist()
        [0.5, 2.0]
    """
    if name not in CRITERIA:
        raise ConfigError(f"unknown supermask criterion '{name}' (choose from: {', '.join(CRITERIA)})")
    out: Tensors = {}
    for n, w0 in theta0.items():
        wt = thetaT[n]
        if name == "random":
            g = generator if generator is not None else torch.Generator().manual_seed(0)
            out[n] = torch.rand(w0.shape, generator=g, dtype=torch.float64).to(w0.device)
        else:
            out[n] = _CRITERIA[name](w0.detach().double(), wt.detach().double())
        if normalize == "layer" and name not in SINGLE and not name.endswith("init_large_final") \
                and not name.endswith("init_small_final"):
            out[n] = out[n] / w0.detach().double().std(correction=0).clamp_min(1e-300)
    return out


def parse_sweep(text: str) -> list[float]:
    """Densities of a ``--sweep`` value: ``B^i..B^j`` (powers ``i..j`` of ``B``) or a comma list.

    Example:
        >>> [round(d, 4) for d in parse_sweep("0.8^1..0.8^3")], parse_sweep("0.5, 0.1")
        ([0.8, 0.64, 0.512], [0.5, 0.1])
    """
    m = re.fullmatch(r"\s*([0-9.]+)\^(\d+)\s*\.\.\s*([0-9.]+)\^(\d+)\s*", text or "")
    try:
        if m:
            if float(m.group(1)) != float(m.group(3)):
                raise ValueError
            base, lo, hi = float(m.group(1)), int(m.group(2)), int(m.group(4))
            values = [base ** k for k in range(lo, hi + 1)]
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
        kept: str = field(default="init", metadata={
            "help": "what the kept weights are set to: init, signed_std (Zhou's signed constant), signed_constant, "
                    "rand_signed_std, rand_signed_constant, random_reshuffle, signed_reshuffle, reinit"})
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

        def __post_init__(self) -> None:
            if self.criterion not in CRITERIA:
                raise ConfigError(f"unknown supermask criterion '{self.criterion}' (choose from: {', '.join(CRITERIA)})")
            check_kept(self.kept)
            check_choices(self)  # normalize, select, final_weights
            if isinstance(self.recalibrate_batches, bool) or not isinstance(self.recalibrate_batches, int) \
                    or self.recalibrate_batches < 0:
                raise ConfigError(f"recalibrate_batches must be a non-negative integer, got {self.recalibrate_batches!r}")
            parse_sweep(self.sweep)
            if self.thresholds:
                _parse_thresholds(self.thresholds)

    config: Config

    # ------------------------------------------------------------------ schedule
    def schedule(self, ctx: MiningContext, target: float | None, rounds: int | None,
                 explicit: Sequence[float] | None = None) -> list[RoundTarget]:
        """One round; its density is the user's, or chosen by the sweep in :meth:`prepare`."""
        single = self.config.criterion in SINGLE
        self.sweeping = target is None and explicit is None and not single
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
        from ticketlab.training import state_copy, train, train_summary

        cfg = self.config
        self.init_state = state_copy(ctx.model)
        theta0 = {n: p.detach().clone() for n, p in ctx.params.items()}
        early = cfg.final_weights == "early_stop"
        result = train(ctx.model, ctx.data, ctx.train_config, seed=ctx.seed, device=ctx.device,
                       progress=ctx.progress or NullProgress(), keep_early_stop=early,
                       callbacks=self._trackers(ctx, theta0))
        ctx.records.append({"stage": "dense", **train_summary(result)})
        if early:  # θT = the early-stopping weights (the seed recipe's retraining to that iteration)
            ctx.model.load_state_dict(result.early_stop_state)
        thetaT = {n: p.detach().clone() for n, p in ctx.params.items()}
        trained_state = state_copy(ctx.model)
        self.theta0 = theta0
        self.scores = criterion_scores(cfg.criterion, theta0, thetaT, generator=ctx.generator, normalize=cfg.normalize)
        self.choice: dict[str, Any] = {"criterion": cfg.criterion, "kept": cfg.kept, "normalize": cfg.normalize}
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
                                                                         normalize=cfg.normalize))

    def _sweep(self, ctx: MiningContext) -> RoundTarget:
        """Evaluate every grid point untrained; return the target of the best on validation."""
        cfg = self.config
        thresholds = _parse_thresholds(cfg.thresholds) if cfg.thresholds else None
        points: list[tuple[RoundTarget, dict[str, Any]]] = []
        grid = thresholds if thresholds is not None else parse_sweep(cfg.sweep)
        with (ctx.progress or NullProgress()).task("supermask: sweep", total=len(grid)) as bar:
            for value in grid:
                if thresholds is not None:
                    masks = {n: s >= value for n, s in self.scores.items()}
                    target: RoundTarget = self._per_layer(masks)
                else:
                    # a copy of the run's selection stream: the round that keeps this density
                    # draws the same ties, so the ticket is the mask evaluated here
                    stream = torch.Generator()
                    if ctx.tie_generator is not None:
                        stream.set_state(ctx.tie_generator.get_state())
                    masks = select_top(self.scores, value, scope=ctx.scope, generator=stream)
                    target = value
                row = self._row(masks, self._evaluate(ctx, masks), threshold=value if thresholds is not None else None)
                if thresholds is None:
                    row["target_density"] = value
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
        return target

    def _evaluate(self, ctx: MiningContext, masks: Tensors) -> dict[str, tuple[float, float]]:
        from ticketlab.training import evaluate_untrained

        return evaluate_untrained(ctx.model, ctx.data, masks, self._kept_weights(ctx, masks), state=self.init_state,
                                  recalibrate=self.config.recalibrate_batches, seed=ctx.seed)

    def _kept_weights(self, ctx: MiningContext, masks: Tensors) -> Tensors:
        """``--kept`` weights of ``masks``; the same generator seed for every mask, so the ticket's
        weights are exactly those its sweep point was evaluated with."""
        gen = kept_generator(ctx.seed)
        fresh = None
        if self.config.kept == "reinit":
            if ctx.draw_init is None:
                raise ConfigError("kept-weights action reinit needs a way to draw fresh weights")
            fresh = ctx.draw_init(reinit_draw_seed(ctx.seed))
        return {n: kept_weights(self.config.kept, self.theta0[n], masks[n], generator=gen,
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

    @staticmethod
    def _per_layer(masks: Tensors) -> dict[str, float]:
        """Per-layer densities whose exact counts are the masks' own (``keep_count(K/N, N) = K``)."""
        out = {}
        for n, m in masks.items():
            k, size = int(m.sum()), m.numel()
            d = k / size
            assert keep_count(d, size) == k
            out[n] = d
        return out

    def score(self, ctx: MiningContext, masks: Tensors) -> Tensors:
        return {n: s.to(ctx.params[n].device) for n, s in self.scores.items()}

    def after_round(self, ctx: MiningContext, masks: Tensors, round_index: int) -> None:
        """The untrained accuracy of the round's exact mask with its ``--kept`` weights."""
        from ticketlab.training import state_copy

        trained = state_copy(ctx.model)
        try:
            ev = self._evaluate(ctx, masks)
        finally:
            ctx.model.load_state_dict(trained)
        ctx.records.append({"untrained_val_accuracy": ev["val"][1], "untrained_test_accuracy": ev["test"][1]})

    def ticket_weights(self, ctx: MiningContext, masks: Tensors) -> Tensors:
        return self._kept_weights(ctx, masks)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"init_state": self.init_state, "theta0": self.theta0, "scores": self.scores,
                "choice": dict(self.choice), "sweeping": self.sweeping, "target": self.target}

    def resume(self, ctx: MiningContext, state: dict[str, Any]) -> None:
        self.init_state, self.theta0, self.scores = state["init_state"], state["theta0"], state["scores"]
        self.choice = dict(state["choice"])
        self.sweeping = bool(state["sweeping"])
        ctx.schedule = [state["target"]]  # the sweep's choice, not swept again
        ctx.provenance["supermask"] = dict(self.choice)
