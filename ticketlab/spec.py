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
import types
import typing
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, NamedTuple

from ticketlab.errors import ConfigError
from ticketlab.selection import COUNT_RULES, SCOPES, check_count_rule, density_from  # torch-free

#: ``mine()`` keywords that a study's ``[method.NAME]`` table may set besides the method's own
#: options (``init`` and ``zero_bias`` go to the model's constructor): every spec field that the
#: study grid itself does not fix (model, data set, seed, density, training table). A study file may
#: still say ``prune_first_layer`` / ``prune_last_layer`` (:data:`DEPRECATED_KEYWORDS`), so that
#: its jobs keep their names; the spec is built with the new names.
STUDY_OPTIONS = ("rounds", "scope", "count_rule", "train_epochs", "skip_first_layer", "skip_last_layer",
                 "schedule", "rate_multipliers", "data_corruption", "track_masks", "early_bird", "init", "zero_bias",
                 "prune_first_layer", "prune_last_layer")
#: Of those, the model constructor's options.
MODEL_OPTIONS = ("init", "zero_bias")

#: ``mine()`` keywords that never change the result: outside the spec and its hash.
RUN_OPTIONS = ("device", "data_root", "download", "omit_weights", "omit_scores", "checkpoint", "resume",
               "save_rounds", "progress")

#: ``mine()``'s keywords from before booleans defaulted to False (``../shared/STYLE.md`` §4): old
#: name -> new name, whose value is the old one negated (``prune_first_layer=False`` is
#: ``skip_first_layer=True``; ``keep_weights=False`` is ``omit_weights=True``). They still work,
#: with a :class:`DeprecationWarning` (:func:`translate_deprecated`).
DEPRECATED_KEYWORDS = {"prune_first_layer": "skip_first_layer", "prune_last_layer": "skip_last_layer",
                       "keep_weights": "omit_weights", "keep_scores": "omit_scores"}


def translate_deprecated(kwargs: Mapping[str, Any], warn: bool = True, stacklevel: int = 3) -> dict[str, Any]:
    """``kwargs`` with every deprecated keyword (:data:`DEPRECATED_KEYWORDS`) replaced by its new
    name and its value negated; one :class:`DeprecationWarning` per call that used one (``warn``).
    An old keyword that contradicts its new one given as True is a :class:`ConfigError`.

    Example:
        >>> translate_deprecated({"seed": 1, "prune_last_layer": False}, warn=False)
        {'seed': 1, 'skip_last_layer': True}
    """
    old = [k for k in kwargs if k in DEPRECATED_KEYWORDS]
    out = {k: v for k, v in kwargs.items() if k not in DEPRECATED_KEYWORDS}
    for name in old:
        new, value = DEPRECATED_KEYWORDS[name], not kwargs[name]
        if out.get(new) and not value:
            raise ConfigError(f"{name}={kwargs[name]!r} contradicts {new}={out[new]!r}: give {new} only")
        out[new] = bool(out.get(new)) or value
    if old and warn:
        said = ", ".join(f"{k}={kwargs[k]!r} (now {DEPRECATED_KEYWORDS[k]}={not kwargs[k]!r})" for k in old)
        warnings.warn(f"deprecated keyword: {said}; booleans default to False", DeprecationWarning,
                      stacklevel=stacklevel)
    return out


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A field with its help text (``metadata["help"]``), as the miners' configs carry it; other
    metadata: ``choices`` (the values allowed), ``keyword`` (``mine()``'s keyword for the field,
    where it is not the field's name). ``ticketlab mine``'s options are made from these
    (:mod:`ticketlab.cli.spec_options`): a new field is a new option, with this help."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class NetSpec:
    """The network and the data it sees."""

    model: str = _f("lenet_300_100", "Model (see `ticketlab list models`).")
    dataset: str = _f("digits", "Data set (see `ticketlab list datasets`).")
    model_options: dict = _f({}, "Options of the model's constructor, e.g. {'init': 'kaiming_normal', "
                                 "'zero_bias': True}.", keyword="model_kwargs")
    data_corruption: str | None = _f(
        None, "Mine on a corrupted training split (Su et al. 2020's check; methods that read data only): labels "
              "permuted among the samples, or each sample's pixels permuted on its own. Validation, test and the "
              "ticket's training (train_ticket) use the real data.",
        choices=("random_labels", "random_pixels"))  # ticketlab.data.CORRUPTIONS (a test keeps the two equal)


@dataclass(frozen=True)
class PruneSpec:
    """What each round keeps."""

    density: float | None = _f(None, "Fraction of weights kept, in (0, 1]; or give sparsity = 1 - density. "
                                     "Default when neither is given: 0.1 (imp: (1 - rate)^rounds).")
    scope: str | None = _f(None, "Rank all prunable weights together (global), or each layer on its own (layer) "
                                 "[default: the method's].", choices=SCOPES)
    rounds: int | None = _f(None, "Rounds of the exponential schedule density^(k/rounds) (default: the method's).")
    schedule: tuple | None = _f(None, "Explicit densities per round, never increasing, the last one the target, "
                                      "e.g. 0.8,0.48,0.2 (replaces rounds; a round may give per-layer densities, "
                                      "like {'*': 0.8, 'output': 0.9}).")
    rate_multipliers: dict | None = _f(
        None, "Scale a layer's pruning rate per round (LAYER: a parameter name, a pattern like conv*, or output). "
              "output=0.5 prunes the output layer at half the rate, as Frankle & Carbin and Zhou et al. do. The "
              "overall density is then what the layers add up to.")
    count_rule: str = _f("exact", "Weights kept per round: exact (round(d*N), ties by a seeded draw) or threshold "
                                  "(Synaptic-Flow's rule: prune every score <= the int((1-d)*N)-th smallest, ties "
                                  "included; usually one more kept than exact). See docs/selection.md.",
                         choices=COUNT_RULES)
    skip_first_layer: bool = _f(False, "Leave the first prunable layer dense (not pruned, no mask).")
    skip_last_layer: bool = _f(False, "Leave the last prunable layer dense (not pruned, no mask).")


@dataclass(frozen=True)
class TrainSpec:
    """How the method's training, and the ticket's, runs."""

    epochs: int | None = _f(None, "Epochs of any training (the method's, and train_ticket's) [default: the "
                                  "model's and data set's].", keyword="train_epochs")
    options: dict = _f({}, "Overrides of the training config's fields, e.g. lr=0.1 or optimizer=sgd (see "
                           "TrainConfig).", keyword="train_options")
    train_ticket: bool = _f(False, "Rewind to the initial weights and train the ticket; report its accuracy.")
    track_masks: int | None = _f(
        None, "Every this many iterations of training (magnitude, imp; learned-mask miners: of their scores; "
              "supermask: its criterion, with a density), the mask magnitude pruning would give at the target "
              "density; the history gets mask_distance, the normalised Hamming distance to the previous one "
              "(Early-Bird, You et al. 2020), and its chance value 2d(1-d) (mask_distance_chance).")
    early_bird: float | None = _f(
        None, "With track_masks: stop a training run once its last 5 tracked distances are all <= this, relative "
              "to chance (mask_distance / 2d(1-d)); the provenance's early_bird_stops says which runs stopped and "
              "when.")


@dataclass(frozen=True)
class MineSpec:
    """A mining run: ``method`` with ``miner`` options, ``net``, ``prune``, ``train``, ``seed``.

    ``miner`` holds the method's options as given (the miner's ``Config`` fields); the hash
    leaves out the ones equal to the miner's defaults (:meth:`hashname`).
    """

    method: str = field(metadata={"help": "Pruning method (see `ticketlab list miners`)."})
    miner: dict = _f({}, "The method's options (its Config fields).", keyword="miner_config")
    net: NetSpec = field(default_factory=NetSpec, metadata={"help": "network and data"})
    prune: PruneSpec = field(default_factory=PruneSpec, metadata={"help": "pruning targets"})
    train: TrainSpec = field(default_factory=TrainSpec, metadata={"help": "training"})
    seed: int = _f(0, "Seed of the initialisation, the method's draws and training.")

    def __hash__(self) -> int:
        return hash(self.hashname())

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_flat(cls, method: str, **kwargs: Any) -> "MineSpec":
        """The spec of ``mine(method, **kwargs)``: ``mine()``'s keywords (:func:`flat_fields`, plus
        ``sparsity``); run-time options refused, deprecated keywords translated (with a warning).

        Example:
            >>> MineSpec.from_flat("imp", rounds=3, skip_last_layer=True).prune.skip_last_layer
            True
        """
        kwargs = translate_deprecated(kwargs)
        spec_fields = flat_fields(cls)
        unknown = sorted(set(kwargs) - (set(spec_fields) - {"method"}) - {"sparsity"})
        if unknown:
            what = "a run-time option, not part of a spec" if unknown[0] in RUN_OPTIONS else "not a mining option"
            raise ConfigError(f"'{unknown[0]}' is {what}")
        sparsity = kwargs.pop("sparsity", None)
        if sparsity is not None or kwargs.get("density") is not None:
            kwargs["density"] = density_from(kwargs.get("density"), sparsity)  # mine()'s own rule, bit for bit
        values: dict[str | None, dict[str, Any]] = {}
        for key, value in kwargs.items():
            spec_field = spec_fields[key]
            values.setdefault(spec_field.part, {})[spec_field.field.name] = spec_field.read(value)
        top = values.pop(None, {})
        parts = {f.name: f.default_factory(**values.get(f.name, {}))  # type: ignore[misc]
                 for f in fields(cls) if _is_part(f)}
        return cls(method=method, **top, **parts)

    def to_flat(self) -> dict[str, Any]:
        """``mine()``'s keywords for this spec (the inverse of :meth:`from_flat`, ``method`` included)."""
        out: dict[str, Any] = {}
        for key, spec_field in flat_fields(type(self)).items():
            value = getattr(getattr(self, spec_field.part) if spec_field.part else self, spec_field.field.name)
            if isinstance(value, Mapping):
                value = dict(value) if value or spec_field.optional else None
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out

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

    def by_field(self, miner: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every field's JSON value under its dotted name, in the spec's order: ``method``,
        ``miner.<option>`` for each option, ``net.model``, ..., ``prune.density``, ..., ``seed``.

        This is what a checkpoint's fingerprint and a study's ticket check compare, so that a
        difference is named by its field (:func:`field_difference`). ``miner``: the method's
        options to list instead of those given, e.g. the run's resolved config (every option), so
        that an option given at its default is no difference, as for :meth:`hashname`.

        Example:
            >>> flat = MineSpec.from_flat("imp", seed=2, miner_config={"reset": "init"}).by_field()
            >>> list(flat)[:3], flat["prune.density"], flat["seed"]
            (['method', 'miner.reset', 'net.model'], None, 2)
        """
        out: dict[str, Any] = {}
        for name, value in self.to_dict().items():
            if name == "miner":
                options = value if miner is None else _jsonable(dict(miner))
                out.update({f"miner.{k}": v for k, v in options.items()})
            elif isinstance(value, dict):  # net, prune, train
                out.update({f"{name}.{k}": v for k, v in value.items()})
            else:
                out[name] = value
        return out


def field_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key whose values differ, in ``new``'s order and then ``old``'s, with its value in
    each (``None`` where it is missing); ``None`` when the two agree. Values are compared as JSON:
    a tuple equals a list, ``1`` is not ``1.0``, an object JSON does not know is compared by its
    ``str``, and a value JSON cannot write at all (circular, too deep) equals nothing.

    Example:
        >>> field_difference({"seed": 0, "prune.density": 0.1}, {"prune.density": 0.1, "seed": 1})
        ('seed', 0, 1)
        >>> field_difference({"a": (1, 2)}, {"a": [1, 2]}) is None
        True
    """
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key), new.get(key)
        text = _json_text(a)
        if text is None or text != _json_text(b):
            return key, a, b
    return None


def _json_text(value: Any) -> str | None:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return None


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


class SpecField(NamedTuple):
    """One field of a spec as ``mine()`` takes it (:func:`flat_fields`)."""

    keyword: str                 #: ``mine()``'s keyword (the field's ``metadata["keyword"]``, else its name)
    part: str | None             #: the part holding it (``net``, ``prune``, ``train``), ``None`` for the spec's own
    field: dataclasses.Field     #: the dataclass field: its ``metadata["help"]``, ``choices``, default
    kind: type                   #: the value's type, ``None`` left out: str, int, float, bool, dict, tuple, ...
    optional: bool               #: whether ``None`` is a value (the method's or the model's default)

    @property
    def default(self) -> Any:
        """The field's default value (a fresh one for a table)."""
        f = self.field
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]

    def read(self, value: Any) -> Any:
        """``value`` as this field holds it: a table copied (``None`` an empty one, where ``None``
        is no value of the field; a config instance its fields), a list a tuple (its per-layer
        rounds copied), a flag a bool."""
        if self.kind is dict:
            if value is None:
                return None if self.optional else {}
            return dict(value) if isinstance(value, Mapping) else dataclasses.asdict(value)
        if self.kind is tuple and value is not None:
            return tuple(dict(r) if isinstance(r, Mapping) else r for r in value)
        if self.kind is bool:
            return bool(value)
        return value


def flat_fields(spec_cls: type = MineSpec) -> dict[str, SpecField]:
    """Every field of a spec (its parts' fields flattened), by ``mine()``'s keyword, in the spec's
    order: what :meth:`MineSpec.from_flat` reads and ``ticketlab mine``'s options are made from.

    Example:
        >>> list(flat_fields())[:4]
        ['method', 'miner_config', 'model', 'dataset']
        >>> f = flat_fields()["train_epochs"]
        >>> (f.part, f.field.name, f.kind.__name__, f.optional)
        ('train', 'epochs', 'int', True)
    """
    out: dict[str, SpecField] = {}
    for f in fields(spec_cls):
        owner, members = (f.default_factory, fields(f.default_factory)) if _is_part(f) else (spec_cls, [f])
        hints = typing.get_type_hints(owner)
        for m in members:
            kind, optional = _kind(hints.get(m.name, Any))
            key = m.metadata.get("keyword", m.name)
            if key in out:
                raise TypeError(f"spec fields {out[key].part}.{out[key].field.name} and {f.name}.{m.name} are both "
                                f"mine()'s keyword '{key}'")
            out[key] = SpecField(key, f.name if _is_part(f) else None, m, kind, optional)
    return out


def _is_part(f: dataclasses.Field) -> bool:
    """Whether a spec's field is one of its parts (a dataclass of fields: ``net``, ``prune``, ...)."""
    factory = f.default_factory
    return isinstance(factory, type) and dataclasses.is_dataclass(factory)


def _kind(hint: Any) -> tuple[type, bool]:
    """A type hint's value type and whether it allows ``None``: ``int | None`` -> ``(int, True)``."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    optional = type(None) in args
    kinds = [a for a in args if a is not type(None)]
    kind = typing.get_origin(kinds[0]) or kinds[0] if len(kinds) == 1 else object
    return (kind if isinstance(kind, type) else object), optional
