"""The miner base class, its config and the mining context.

A miner only **scores** weights; :mod:`ticketlab.selection` turns scores into masks and
:func:`ticketlab.mining.mine` runs the rounds. A new method is a frozen config dataclass plus a
``score`` method, registered with :func:`ticketlab.miners.register_miner`
(:mod:`ticketlab.miners.registry`, where the example is).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import torch

from ticketlab.errors import ConfigError
from ticketlab.schedules import RoundTarget  # one round's target(s); miners import it from here
from ticketlab.selection import check_density, exponential_schedule

if TYPE_CHECKING:
    from ticketlab.data.base import DataSpec, Dataset
    from ticketlab.progress import NullProgress
    from ticketlab.training import TrainConfig


#: Density of a one-shot miner when neither a density nor a sparsity is given.
DEFAULT_DENSITY = 0.1



@dataclass(frozen=True)
class MinerConfig:
    """Base of every miner's config. Fields carry ``metadata={"help": ...}`` for the CLI.

    A field with a closed set of values also carries ``"choices"`` (a tuple): ``ticketlab mine``
    offers it as a choice, so ``--help`` lists the values, and :func:`check_choices` (called from
    the config's ``__post_init__``) refuses any other value in the Python API.
    """


#: ``protocol`` values of the miners that have a reference code to follow (``docs/learned_masks.md``).
PROTOCOLS = ("exact", "reference")


def protocol_field() -> Any:
    """The ``protocol`` config field (``--protocol``, one help text for every miner that has it)."""
    return field(default="exact", metadata={
        "help": "exact (default: ticketlab's conventions, a ticket at exactly the requested density) or reference "
                "(the reference code's: ksreenivasan/pruning_is_enough for gem_miner, whose ticket is then the gem "
                "at its own density; allenai/hidden-networks for edge_popup; uber-research/"
                "deconstructing-lottery-tickets for supermask, with its criteria, counts, output-layer rate and "
                "biases; see docs/learned_masks.md)",
        "choices": PROTOCOLS})


@dataclass
class MiningContext:
    """Everything a miner may look at while scoring.

    Attributes:
        model: the network, on ``device``, with its initial weights (miners that train must leave
            the trained weights in the model; the runner snapshots them).
        params: its prunable parameters (name -> Parameter), the keys of every mask and score.
        spec: the data set's :class:`DataSpec`.
        data: the loaded data set, or ``None`` for data-free miners.
        device: where the model lives.
        seed: the run's seed.
        generator: a CPU ``torch.Generator`` seeded from ``seed`` for the miner's own draws.
        tie_generator: the run's selection stream (a CPU ``torch.Generator`` of its own, seeded
            from ``seed``): every ``select_top`` of the run draws among tied scores from it, so
            ties never change the miner's own draws.
        train_config: how to train, for miners that train.
        progress: where to report progress.
        records: rows the miner adds; the runner merges them into the round's history row
            (rows added in :meth:`Miner.prepare` become history rows of their own).
        draw_init: ``draw_init(seed)`` builds a fresh copy of the model with initial weights
            drawn with ``seed`` (same architecture and init distribution) and returns its CPU
            ``state_dict`` (e.g. for IMP's random re-initialization control).
        schedule: the run's per-round targets (set by the runner before :meth:`Miner.prepare`; a
            miner may replace them in :meth:`Miner.prepare` / :meth:`Miner.resume`, e.g. with the
            density its own sweep chose, and the runner then follows them).
        scope: the run's selection scope, ``"global"`` or ``"layer"``.
        train_epochs: the epochs the user asked for (``--train-epochs``), or ``None``.
        provenance: facts the miner adds to the ticket's provenance (e.g. its weight treatment).
        track_masks, early_bird: ``--track-masks EVERY`` / ``--early-bird EPS``
            (:mod:`ticketlab.tracking`); a miner that trains passes :meth:`mask_trackers` to
            ``fit(callbacks=...)``, and the runner moves the ``tracked`` rows into the history.
    """

    model: torch.nn.Module
    params: dict[str, torch.nn.Parameter]
    spec: "DataSpec"
    data: "Dataset | None"
    device: torch.device
    seed: int
    generator: torch.Generator
    train_config: "TrainConfig | None" = None
    progress: "NullProgress | None" = None
    records: list[dict[str, Any]] = field(default_factory=list)
    draw_init: Callable[[int], dict[str, torch.Tensor]] | None = None
    schedule: list[RoundTarget] = field(default_factory=list)
    scope: str = "global"
    train_epochs: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    track_masks: int | None = None
    early_bird: float | None = None
    tracked: list[dict[str, Any]] = field(default_factory=list)
    tie_generator: torch.Generator | None = None

    def mask_trackers(self, label: str, *, density: float | None = None,
                      scores: Callable[[], dict[str, torch.Tensor]] | None = None) -> list[Callable[[Any], None]]:
        """The ``fit`` callbacks of ``--track-masks`` for one training run named ``label``
        (none when tracking is off): the magnitude mask of ``params`` (or the top of ``scores()``)
        at ``density`` (default the run's final target density), over its scope; its rows go to ``tracked`` (the row where Early-Bird stopped
        has ``early_bird_stop``).
        """
        if self.track_masks is None:
            return []
        from ticketlab.tracking import MaskTracker

        target = density if density is not None else (self.schedule[-1] if self.schedule else None)
        if target is None or isinstance(target, dict):
            raise ConfigError("track_masks needs one target density for the whole run, not per-layer densities")
        tracker = MaskTracker(self.params, float(target), every=self.track_masks, scope=self.scope,
                              early_bird=self.early_bird, label=label, scores=scores)
        tracker.rows = self.tracked  # the runner moves them into the history
        return [tracker]


class Miner:
    """A pruning method. Subclasses set ``Config`` and implement :meth:`score`.

    Class attributes:
        name: registry name (set by :func:`register_miner`).
        description: one line for ``ticketlab list`` (default, set by :func:`register_miner`: the
            summary, i.e. first paragraph, of the class docstring).
        needs_data: the method reads the training data (``False`` = data-free).
        trains: the method trains the network (so ``--train-epochs`` applies to it).
        default_rounds: rounds of the exponential schedule when the user gives none.
        frozen_weights: the method trains something other than the weights (the learned-mask
            miners' scores), so the weights end as they started.
        scopes: the selection scopes the method supports, its default first (``edge_popup``
            selects layer-wise only).
        tracks_masks: the method's training runs take :meth:`MiningContext.mask_trackers`
            (``--track-masks``, ``--early-bird``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[MinerConfig]] = MinerConfig
    needs_data: ClassVar[bool] = False
    trains: ClassVar[bool] = False
    default_rounds: ClassVar[int] = 1
    frozen_weights: ClassVar[bool] = False
    scopes: ClassVar[tuple[str, ...]] = ("global", "layer")
    tracks_masks: ClassVar[bool] = False

    def __init__(self, config: MinerConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.Config()
        elif not isinstance(config, self.Config):
            raise ConfigError(f"miner '{self.name}' needs a {self.Config.__name__}, not {type(config).__name__}")
        if overrides:
            from ticketlab.deprecation import translate_options

            overrides = translate_options(self.name, overrides)  # an option's old name (kept -> weights)
            known = {f.name for f in dataclasses.fields(self.Config)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise ConfigError(f"miner '{self.name}' has no option '{unknown[0]}'"
                                  f" (options: {', '.join(sorted(known)) or 'none'})")
            config = dataclasses.replace(config, **overrides)
        self.config = config

    def weight_treatment(self) -> str:
        """The treatment (:mod:`ticketlab.weights`) the runner applies to the prunable weights
        before anything else, so the ticket's ``init`` weights are the treated ones. Default
        ``"init"``: the model's own initialization."""
        return "init"

    def treatment_density(self, ctx: MiningContext) -> "float | dict[str, float] | None":
        """The layers' density that :meth:`weight_treatment` needs (one number for every layer, or
        one per prunable parameter), or ``None`` when the treatment needs none (default). The
        runner calls it once the schedule is known (``ctx.schedule``), applies the treatment with
        it and records it in the provenance as ``weights_density``."""
        return None

    def ticket_train_config(self, ctx: MiningContext) -> "TrainConfig | None":
        """The config of a training of the final ticket that the method itself asks for (e.g.
        Gem-Miner's fine-tuning), or ``None``. The runner runs it as it runs ``--train-ticket``."""
        return None

    def round_count_rule(self, count_rule: str) -> str:
        """The count rule (:data:`ticketlab.selection.COUNT_RULES`) of the run's rounds, given the
        one asked for; default: that one. A method whose protocol fixes it says which (e.g.
        ``edge_popup`` under ``protocol="reference"``: ``"truncated"``), or refuses another."""
        return count_rule

    def ticket_weights(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """The prunable weights the final ticket's network starts from (its ``init`` snapshot and
        the start of ``--train-ticket``), given the final masks; ``None`` (default): θ0 as treated
        by :meth:`weight_treatment`. The supermask miner returns its ``--weights`` action's weights."""
        return None

    def prepare(self, ctx: MiningContext) -> None:
        """Work done once before the first round (e.g. training the dense network)."""

    def before_round(self, ctx: MiningContext, masks: dict[str, torch.Tensor], round_index: int) -> None:
        """Work done at the start of every round, before scoring (e.g. IMP's training)."""

    def score(self, ctx: MiningContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Scores (higher = keep) for every prunable parameter, given the current ``masks``."""
        raise NotImplementedError

    def after_round(self, ctx: MiningContext, masks: dict[str, torch.Tensor], round_index: int) -> None:
        """Work done after a round's mask is selected (e.g. IMP's rewinding)."""

    def finish(self, ctx: MiningContext) -> None:
        """Release anything :meth:`prepare` built."""

    def schedule(
        self, ctx: MiningContext, target: float | None, rounds: int | None,
        explicit: Sequence[RoundTarget] | None = None,
    ) -> list[RoundTarget]:
        """The densities (fraction kept, cumulative) of every round, last = the final ticket's.

        Args:
            ctx: the mining context (parameter names and shapes, for per-layer targets).
            target: the density asked for, or ``None`` (default :data:`DEFAULT_DENSITY`).
            rounds: number of rounds, or ``None`` for :attr:`default_rounds`.
            explicit: per-round densities given by the user (decreasing, non-empty); a round may
                be a per-layer mapping, already resolved to every parameter's name by the runner
                (:func:`ticketlab.schedules.resolve_rounds`).

        The default is the exponential schedule ``target ** (k / rounds)`` (Tanaka et al. 2020,
        Sec. 5) or ``explicit`` as given. Miners with their own schedules (IMP's per-round
        rates) override this; a round may then ask for one density per parameter.

        Example:
            >>> Miner().schedule(None, 0.01, 2)
            [0.1, 0.01]
        """
        if explicit is not None:
            densities: list[RoundTarget] = [
                {n: check_density(float(v)) for n, v in d.items()} if isinstance(d, dict) else check_density(float(d))
                for d in explicit]
            if not densities:
                raise ConfigError("an explicit schedule needs at least one density")
            if rounds is not None and rounds != len(densities):
                raise ConfigError(f"the schedule has {len(densities)} rounds but rounds is {rounds}")
            if target is not None and (isinstance(densities[-1], dict) or abs(densities[-1] - target) > 1e-12):
                raise ConfigError(f"the schedule ends at density {densities[-1]} but the target is {target}")
            return densities  # never increasing: checked per layer by the runner
        return exponential_schedule(DEFAULT_DENSITY if target is None else target,
                                    self.default_rounds if rounds is None else rounds)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold, besides the model and masks, to resume after a round.

        Tensors, numbers, strings, lists, dicts and ``None`` only (read back with
        ``torch.load(weights_only=True)``). Default: nothing.
        """
        return {}

    def resume(self, ctx: MiningContext, state: dict[str, Any]) -> None:
        """Stand-in for :meth:`prepare` when a run resumes from a checkpoint.

        ``state`` is what :meth:`state_dict` returned; the runner restores the model's weights,
        the masks and ``ctx.generator`` afterwards. Default: run :meth:`prepare` again (right
        for miners whose preparation is cheap and deterministic).
        """
        self.prepare(ctx)


def check_choices(config: MinerConfig) -> None:
    """Raise a one-sentence :class:`ConfigError` for the first field whose value is not one of its
    ``metadata["choices"]``.

    Example:
        >>> @dataclass(frozen=True)
        ... class Demo(MinerConfig):
        ...     mode: str = field(default="eval", metadata={"help": "h", "choices": ("eval", "train")})
        ...     def __post_init__(self):
        ...         check_choices(self)
        >>> Demo(mode="frozen")
        Traceback (most recent call last):
        ...
        ticketlab.errors.ConfigError: option mode must be one of eval, train, got 'frozen'
    """
    for f in dataclasses.fields(config):
        choices = f.metadata.get("choices")
        if choices is not None and getattr(config, f.name) not in choices:
            raise ConfigError(f"option {f.name} must be one of {', '.join(map(str, choices))}, "
                              f"got {getattr(config, f.name)!r}")


def config_help(cls: type[Miner]) -> dict[str, str]:
    """Field name -> help text of a miner's config."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls.Config)}


#: Names that moved to :mod:`ticketlab.miners.registry` (issue 24); ``from ticketlab.miners.base
#: import register_miner`` still works, with a :class:`DeprecationWarning`.
_MOVED = ("MINERS", "get_miner", "list_miners", "register_miner")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from ticketlab import deprecation
        from ticketlab.miners import registry

        deprecation.warn_renamed(f"ticketlab.miners.base.{name}", f"ticketlab.miners.{name}", stacklevel=3)
        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
