"""One resolved, hashable description of a mining run: :class:`MineSpec` (no torch import).

A spec holds everything that decides a run's result, and nothing that does not: the method and
its options, the network and data, the pruning targets, the training, the seed. Where a run's
files go, the device, whether weights and scores are stored, checkpoints and progress are run-time
options of :func:`ticketlab.mine`, outside the spec and its hash.

The shape follows open_lth's ``Desc`` dataclasses (``foundations/desc.py``): frozen parts with
help text, one :meth:`MineSpec.to_dict`, and a :meth:`MineSpec.hashname` over the fields that
differ from their defaults only, so that a field added later (with a default that keeps today's
behaviour) never renames an old run.

Example:
    >>> spec = MineSpec.from_flat("synflow", density=0.05, rounds=10, seed=1)
    >>> spec.prune.density, spec.net.model, spec.hashname() == MineSpec.from_dict(spec.to_dict()).hashname()
    (0.05, 'lenet_300_100', True)
    >>> spec.to_dict(changed=True)
    {'method': 'synflow', 'prune': {'density': 0.05, 'rounds': 10}, 'seed': 1}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ticketlab.errors import ConfigError
from ticketlab.selection import COUNT_RULES, SCOPES, check_count_rule, density_from  # torch-free

#: ``mine()`` keywords that a study's ``[method.NAME]`` table may set besides the method's own
#: options (``init`` and ``zero_bias`` go to the model's constructor): every spec field that the
#: study grid itself does not fix (model, data set, seed, density, training table).
STUDY_OPTIONS = ("rounds", "scope", "count_rule", "train_epochs", "prune_first_layer", "prune_last_layer",
                 "schedule", "rate_multipliers", "data_corruption", "track_masks", "early_bird", "init", "zero_bias")
#: Of those, the model constructor's options.
MODEL_OPTIONS = ("init", "zero_bias")

#: ``mine()`` keywords that never change the result: outside the spec and its hash.
RUN_OPTIONS = ("device", "data_root", "download", "keep_weights", "keep_scores", "checkpoint", "resume",
               "save_rounds", "progress")


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A field with its help text (``metadata["help"]``), as the miners' configs carry it."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class NetSpec:
    """The network and the data it sees."""

    model: str = _f("lenet_300_100", "registered model (ticketlab list)")
    dataset: str = _f("digits", "registered data set (ticketlab list)")
    model_options: dict = _f({}, "options of the model's constructor, e.g. {'init': 'kaiming_normal', 'zero_bias': True}")
    data_corruption: str | None = _f(None, "mine on a corrupted training split: random_labels or random_pixels "
                                           "(Su et al. 2020)")


@dataclass(frozen=True)
class PruneSpec:
    """What each round keeps."""

    density: float | None = _f(None, "final fraction of weights kept (default: the method's)")
    scope: str | None = _f(None, "global or layer (default: the method's)", choices=SCOPES)
    rounds: int | None = _f(None, "rounds of the exponential schedule (default: the method's)")
    schedule: tuple | None = _f(None, "explicit per-round densities (a round may be per-layer: {'*': 0.8, 'output': 0.9})")
    rate_multipliers: dict | None = _f(None, "per-layer factors of each round's pruning rate, e.g. {'output': 0.5}")
    count_rule: str = _f("exact", "weights kept per round (docs/selection.md)", choices=COUNT_RULES)
    skip_first_layer: bool = _f(False, "leave the first prunable layer dense")
    skip_last_layer: bool = _f(False, "leave the last prunable layer dense")


@dataclass(frozen=True)
class TrainSpec:
    """How the method's training, and the ticket's, runs."""

    epochs: int | None = _f(None, "epochs of any training (default: the model's and data set's)")
    options: dict = _f({}, "overrides of the training config's fields, e.g. {'lr': 0.1} (TrainConfig)")
    train_ticket: bool = _f(False, "rewind and train the ticket after mining")
    track_masks: int | None = _f(None, "track the magnitude mask every this many iterations (Early-Bird)")
    early_bird: float | None = _f(None, "stop a training run once tracked masks settle (needs track_masks)")


@dataclass(frozen=True)
class MineSpec:
    """A mining run: ``method`` with ``miner`` options, ``net``, ``prune``, ``train``, ``seed``.

    ``miner`` holds the method's options as given (the miner's ``Config`` fields); the hash
    leaves out the ones equal to the miner's defaults (:meth:`hashname`).
    """

    method: str
    miner: dict = _f({}, "the method's options (its Config fields)")
    net: NetSpec = field(default_factory=NetSpec, metadata={"help": "network and data"})
    prune: PruneSpec = field(default_factory=PruneSpec, metadata={"help": "pruning targets"})
    train: TrainSpec = field(default_factory=TrainSpec, metadata={"help": "training"})
    seed: int = _f(0, "seeds the initialisation, the method's draws and training")

    def __hash__(self) -> int:
        return hash(self.hashname())

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_flat(cls, method: str, **kwargs: Any) -> "MineSpec":
        """The spec of ``mine(method, **kwargs)`` (today's keywords; run-time options refused).

        Example:
            >>> MineSpec.from_flat("imp", rounds=3, prune_last_layer=False).prune.skip_last_layer
            True
        """
        known = {"model", "dataset", "density", "sparsity", "scope", "rounds", "schedule", "rate_multipliers", "seed",
                 "train_epochs", "train_options", "train_ticket", "data_corruption", "miner_config", "model_kwargs",
                 "prune_first_layer", "prune_last_layer", "track_masks", "early_bird", "count_rule"}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            what = "a run-time option, not part of a spec" if unknown[0] in RUN_OPTIONS else "not a mining option"
            raise ConfigError(f"'{unknown[0]}' is {what}")
        density = kwargs.get("density")
        if kwargs.get("sparsity") is not None or density is not None:
            density = density_from(density, kwargs.get("sparsity"))  # mine()'s own rule, bit for bit
        miner = kwargs.get("miner_config") or {}
        if not isinstance(miner, Mapping):  # a MinerConfig instance: its fields
            miner = dataclasses.asdict(miner)
        schedule = kwargs.get("schedule")
        return cls(
            method=method,
            miner=dict(miner),
            net=NetSpec(model=kwargs.get("model", "lenet_300_100"), dataset=kwargs.get("dataset", "digits"),
                        model_options=dict(kwargs.get("model_kwargs") or {}),
                        data_corruption=kwargs.get("data_corruption")),
            prune=PruneSpec(density=density, scope=kwargs.get("scope"), rounds=kwargs.get("rounds"),
                            schedule=None if schedule is None else tuple(
                                dict(r) if isinstance(r, Mapping) else r for r in schedule),
                            rate_multipliers=None if kwargs.get("rate_multipliers") is None
                            else dict(kwargs["rate_multipliers"]),
                            count_rule=kwargs.get("count_rule", "exact"),
                            skip_first_layer=not kwargs.get("prune_first_layer", True),
                            skip_last_layer=not kwargs.get("prune_last_layer", True)),
            train=TrainSpec(epochs=kwargs.get("train_epochs"), options=dict(kwargs.get("train_options") or {}),
                            train_ticket=bool(kwargs.get("train_ticket", False)),
                            track_masks=kwargs.get("track_masks"), early_bird=kwargs.get("early_bird")),
            seed=kwargs.get("seed", 0),
        )

    def to_flat(self) -> dict[str, Any]:
        """``mine()``'s keywords for this spec (the inverse of :meth:`from_flat`, ``method`` included)."""
        p, n, t = self.prune, self.net, self.train
        return {
            "method": self.method, "model": n.model, "dataset": n.dataset, "density": p.density, "scope": p.scope,
            "rounds": p.rounds, "schedule": None if p.schedule is None else list(p.schedule),
            "rate_multipliers": p.rate_multipliers, "seed": self.seed, "train_epochs": t.epochs,
            "train_options": dict(t.options) or None, "train_ticket": t.train_ticket,
            "data_corruption": n.data_corruption, "miner_config": dict(self.miner) or None,
            "model_kwargs": dict(n.model_options) or None, "prune_first_layer": not p.skip_first_layer,
            "prune_last_layer": not p.skip_last_layer, "track_masks": t.track_masks, "early_bird": t.early_bird,
            "count_rule": p.count_rule,
        }

    def to_dict(self, changed: bool = False) -> dict[str, Any]:
        """JSON-ready values; ``changed``: only the fields that differ from their defaults
        (``method`` always), which is what :meth:`hashname` hashes."""
        return _as_dict(self, changed)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MineSpec":
        """A spec from :meth:`to_dict`'s output (either form); unknown keys are an error."""
        if not isinstance(values, Mapping) or "method" not in values:
            raise ConfigError("a mining spec needs at least a 'method'")
        return _from_dict(cls, values, "spec")

    @classmethod
    def from_provenance(cls, prov: Mapping[str, Any]) -> "MineSpec":
        """The spec of the run that made a ticket: its recorded ``spec``, or for tickets written
        before specs were recorded, what their provenance keys say (method options, model and
        data, seed, scope, count rule, first/last-layer flags, corruption, tracking, and the
        target density when it was one number)."""
        try:
            return cls._from_provenance(prov)
        except ConfigError as exc:
            raise ConfigError(f"the ticket's provenance does not describe a mining run: {exc}") from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # an untrusted file's odd values
            what = f"no {exc}" if isinstance(exc, KeyError) else type(exc).__name__
            raise ConfigError(f"the ticket's provenance does not describe a mining run ({what})") from None

    @classmethod
    def _from_provenance(cls, prov: Mapping[str, Any]) -> "MineSpec":
        if not isinstance(prov, Mapping):
            raise ConfigError("a provenance is a table of facts")
        if isinstance(prov.get("spec"), Mapping):
            spec = cls.from_dict(prov["spec"])
            _check_shape(spec)
            return spec
        corruption = prov.get("data_corruption")
        target = prov.get("target_density")
        if not isinstance(prov.get("method"), str):
            raise ConfigError("it names no method")
        return cls(
            method=str(prov["method"]),
            miner=dict(prov.get("method_config") or {}),
            net=NetSpec(model=str(prov.get("model", "lenet_300_100")), dataset=str(prov.get("dataset", "digits")),
                        model_options=dict(prov.get("model_config") or {}),
                        data_corruption=corruption.get("kind") if isinstance(corruption, Mapping) else None),
            prune=PruneSpec(density=float(target) if isinstance(target, (int, float)) and not isinstance(target, bool)
                            else None,
                            scope=prov.get("scope"), rounds=prov.get("rounds"),
                            count_rule=str(prov.get("count_rule", "exact")),
                            skip_first_layer=not prov.get("prune_first_layer", True),
                            skip_last_layer=not prov.get("prune_last_layer", True)),
            train=TrainSpec(track_masks=prov.get("track_masks"), early_bird=prov.get("early_bird")),
            seed=int(prov.get("seed", 0)),
        )

    # ------------------------------------------------------------------ checks and names
    def validate(self) -> "MineSpec":
        """Check every field that can be checked without building the network; return ``self``.

        Registered names (method, model, data set) and the method's options are checked against
        the registries (which imports them); densities, scope, rounds, count rule and seed here.
        """
        from ticketlab.checks import check_seed

        check_seed(self.seed)
        p = self.prune
        if p.density is not None:
            density_from(p.density)
        if p.scope is not None and p.scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got '{p.scope}'")
        if p.rounds is not None and (isinstance(p.rounds, bool) or not isinstance(p.rounds, int) or p.rounds < 1):
            raise ConfigError(f"rounds must be at least 1, got {p.rounds}")
        if p.schedule is not None:
            _check_schedule_values(p.schedule)
        if p.rate_multipliers is not None:
            if not isinstance(p.rate_multipliers, Mapping):
                raise ConfigError("rate multipliers map layer names to factors, like {'output': 0.5}")
            for key, v in p.rate_multipliers.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    raise ConfigError(f"rate multiplier '{key}' must be a number > 0, not {v!r}")
        n, t = self.net, self.train
        if n.data_corruption is not None:
            from ticketlab.data.corruption import check_corruption

            check_corruption(n.data_corruption)
        if t.track_masks is not None or t.early_bird is not None:
            from ticketlab.tracking import check_tracking

            check_tracking(t.track_masks, t.early_bird)
        if t.epochs is not None and (isinstance(t.epochs, bool) or not isinstance(t.epochs, int) or t.epochs < 1):
            raise ConfigError(f"train_epochs must be a positive integer, not {t.epochs!r}")
        check_count_rule(p.count_rule)
        from ticketlab.miners import get_miner

        from ticketlab.deprecation import translate_options

        miner_cls = get_miner(self.method)
        # an option's old name means its new one (a ticket's record may hold it: no warning here; the
        # miner warns where its config is built from what a user wrote)
        miner_cls.Config(**translate_options(self.method, self.miner, warn=False))
        return self

    def hashname(self) -> str:
        """A 16-hex-digit name of the run: SHA-256 of :meth:`to_dict` ``(changed=True)`` as sorted
        JSON, after dropping method options equal to the method's defaults (open_lth's rule)."""
        values = self.to_dict(changed=True)
        defaults = _miner_defaults(self.method)
        miner = {k: v for k, v in values.get("miner", {}).items() if k not in defaults or _jsonable(defaults[k]) != v}
        if miner:
            values["miner"] = miner
        else:
            values.pop("miner", None)
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_shape(spec: MineSpec) -> None:
    """The types of a spec read from a file (values are checked by :meth:`MineSpec.validate`)."""
    kinds = {"method": str, "miner": Mapping, "seed": int}
    for name, kind in kinds.items():
        if not isinstance(getattr(spec, name), kind) or isinstance(getattr(spec, name), bool):
            raise ConfigError(f"spec field {name} must be a {kind.__name__}, not {getattr(spec, name)!r:.40}")
    for part, names in (("net", ("model", "dataset")), ("net", ("model_options",)), ("train", ("options",))):
        for name in names:
            value = getattr(getattr(spec, part), name)
            kind = Mapping if name.endswith("options") else str
            if not isinstance(value, kind):
                raise ConfigError(f"spec field {part}.{name} must be a {kind.__name__}, not {value!r:.40}")


def _check_schedule_values(schedule: Any) -> None:
    """A schedule's shape without the network: a list of densities in (0, 1], or of mappings of
    layer keys to such densities (resolved against the layers when the run starts)."""
    if isinstance(schedule, (str, bytes, Mapping)) or not hasattr(schedule, "__iter__"):
        raise ConfigError("a schedule is a list of rounds: densities, or per-layer densities like [{'*': 0.8}]")
    rounds = list(schedule)
    if not rounds:
        raise ConfigError("a schedule needs at least one round")
    for k, r in enumerate(rounds, 1):
        values = list(r.values()) if isinstance(r, Mapping) else [r]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < v <= 1.0 or math.isnan(v):
                raise ConfigError(f"round {k} of the schedule: densities must be in (0, 1], not {v!r}")
    flat = [float(r) for r in rounds if not isinstance(r, Mapping)]
    if len(flat) == len(rounds) and any(b > a for a, b in zip(flat, flat[1:])):
        raise ConfigError("schedule densities must not increase (masks only shrink)")


def _miner_defaults(method: str) -> dict[str, Any]:
    """The method's option defaults (imports the miner registry); none for an unknown method. An
    option's old name (``docs/glossary.md``) has its new name's default, so that a study file that
    writes a default under the old name keeps its hash."""
    try:
        from ticketlab.miners import get_miner

        cls = get_miner(method)
    except ConfigError:
        return {}
    from ticketlab.deprecation import old_option_names

    defaults = {f.name: f.default for f in fields(cls.Config) if f.default is not dataclasses.MISSING}
    return {**defaults, **{old: defaults[new] for old, new in old_option_names(method).items() if new in defaults}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"a mining spec holds numbers that are finite, not {value}")
    return value


def _as_dict(obj: Any, changed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            sub = _as_dict(value, changed)
            if sub or not changed:
                out[f.name] = sub
            continue
        if changed and f.name != "method":
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if value == default:
                continue
        out[f.name] = _jsonable(value)
    return out


def _from_dict(cls: type, values: Mapping[str, Any], where: str) -> Any:
    kinds = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise ConfigError(f"unknown {where} field '{unknown[0]}' (choose from: {', '.join(kinds)})")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        sub = {"net": NetSpec, "prune": PruneSpec, "train": TrainSpec}.get(name) if cls is MineSpec else None
        if sub is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} field '{name}' must be a table of fields")
            kwargs[name] = _from_dict(sub, value, f"{where}.{name}")
        elif name == "schedule" and value is not None:
            kwargs[name] = tuple(dict(r) if isinstance(r, Mapping) else r for r in value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
