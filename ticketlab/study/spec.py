"""The study file: a TOML description of a grid of ``mine`` jobs, validated before anything runs.

Keys (``tomllib``; every other key is an error naming the key and the file)::

    name = "lenet-digits"
    model = "lenet_300_100"          # or a list: every model x dataset pair
    dataset = "digits"               # or a list
    seeds = [0, 1, 2]
    densities = [0.2, 0.05, 0.01]
    methods = ["random", "magnitude", "snip", "grasp", "synflow", "imp"]
    train_tickets = true             # also train every ticket from its init (its accuracy)
    device = "auto"                  # optional: auto, cpu, cuda
    data_root = "data/"              # optional, for data sets with files (relative to the file)
    gpus_per_job = 0.25              # optional, the Ray executor's GPU share per job
    [method.imp]                     # per-method options, as `mine` takes them
    reset = "rewind:50"
    rounds = 5                       # the runner's own options too (every MineSpec field the grid
                                     # does not fix): rounds, scope, count_rule, train_epochs,
                                     # skip_first_layer, skip_last_layer, schedule, rate_multipliers,
                                     # data_corruption, track_masks, early_bird, init, zero_bias
                                     # (prune_first_layer = false, the older spelling, still reads)
    [train]                          # training options (TrainConfig fields)
    epochs = 10

A method may be a *variant*: a name of the study's own with ``miner`` naming the registered
method, so that one study holds two settings of one method (e.g. random uniform and random ERK)::

    methods = ["random", "random_erk"]
    [method.random_erk]
    miner = "random"
    distribution = "erk"

Example:
    >>> spec = StudySpec.from_dict({"name": "s", "model": "lenet_300_100", "dataset": "digits",
    ...                             "seeds": [0], "densities": [0.1], "methods": ["random"]})
    >>> spec.models, spec.methods, spec.train_tickets
    (('lenet_300_100',), ('random',), False)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ticketlab import limits
from ticketlab.checks import MAX_SEED, is_seed, non_finite
from ticketlab.errors import ConfigError, TicketlabError
from ticketlab.spec import MODEL_OPTIONS, STUDY_OPTIONS, MineSpec, translate_deprecated
from ticketlab.study.safepath import name_problem

#: Top-level keys of a study file.
KEYS = ("name", "model", "dataset", "seeds", "densities", "methods", "train_tickets", "method", "train",
        "device", "data_root", "gpus_per_job")
#: Options of ``[method.NAME]`` that are the runner's (``mine``'s keywords), not the miner's config:
#: every field of the run's :class:`ticketlab.spec.MineSpec` that the grid does not fix.
RUNNER_OPTIONS = STUDY_OPTIONS


@dataclass(frozen=True)
class StudySpec:
    """A validated study: the grid and the options of every job (see the module docstring)."""

    name: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    densities: tuple[float, ...]
    methods: tuple[str, ...]
    train_tickets: bool = False
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    data_root: str | None = None
    gpus_per_job: float = 0.0
    source: str = "<study>"

    @classmethod
    def from_toml(cls, path: str | Path) -> "StudySpec":
        """Read and validate a study file (one-sentence :class:`ConfigError` naming the file)."""
        from ticketlab.bounded import Refused, read_toml

        path = Path(path)
        try:  # bounded: a regular file of limited size and depth (a FIFO or /dev/zero is refused)
            values = read_toml(path)
        except FileNotFoundError:
            raise ConfigError(f"study file '{path}' does not exist") from None
        except Refused as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read study file '{path}': {exc.strerror or exc}") from None
        root = values.get("data_root")
        if isinstance(root, str) and not Path(root).is_absolute():
            values["data_root"] = str((path.parent / root).resolve())
        return cls.from_dict(values, source=str(path))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "<study>") -> "StudySpec":
        """Validate a study given as a mapping (the parsed TOML)."""
        def fail(msg: str) -> ConfigError:
            return ConfigError(f"{source}: {msg}")

        unknown = [k for k in values if k not in KEYS]
        if unknown:
            raise fail(f"unknown key '{unknown[0]}' (known keys: {', '.join(KEYS)})")
        for key in ("name", "model", "dataset", "seeds", "densities", "methods"):
            if key not in values:
                raise fail(f"missing key '{key}'")
        bad = non_finite(dict(values))  # TOML allows inf and nan; no option means anything with them
        if bad is not None:
            raise fail(f"{bad[0]} must be a finite number, not {bad[1]}")
        name = values["name"]
        why = name_problem(name)
        if why is not None:  # the name is a folder name (runs/<name>): one plain name, nothing else
            raise fail(f"name must be a plain folder name, not {name!r}: {why}")
        models = _names(values["model"], "model", fail)
        datasets = _names(values["dataset"], "dataset", fail)
        methods = _names(values["methods"], "methods", fail)
        seeds = values["seeds"]
        if not isinstance(seeds, list) or not seeds or not all(is_seed(s) for s in seeds):
            raise fail(f"seeds must be a non-empty list of integers from 0 to {MAX_SEED}, not {seeds!r}")
        densities = values["densities"]
        if not isinstance(densities, list) or not densities or not all(
                isinstance(d, (int, float)) and not isinstance(d, bool) and not math.isnan(d) and 0 < d <= 1
                for d in densities):
            raise fail(f"densities must be a non-empty list of numbers in (0, 1], not {densities!r}")
        grid = len(models) * len(datasets) * len(methods) * len(seeds) * len(densities)
        limits.check("jobs", grid, f"{source}: the study's grid has {grid:,} jobs ({len(models)} models x "
                     f"{len(datasets)} data sets x {len(methods)} methods x {len(seeds):,} seeds x "
                     f"{len(densities):,} densities)")
        for key, values_ in (("seeds", seeds), ("densities", densities), ("methods", methods),
                             ("model", models), ("dataset", datasets)):
            if len(set(values_)) != len(values_):
                raise fail(f"{key} lists a value twice")
        train_tickets = values.get("train_tickets", False)
        if not isinstance(train_tickets, bool):
            raise fail(f"train_tickets must be true or false, not {train_tickets!r}")
        device = values.get("device", "auto")
        if device not in ("auto", "cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
            raise fail(f"device must be auto, cpu or cuda, not {device!r}")
        data_root = values.get("data_root")
        if data_root is not None and not isinstance(data_root, str):
            raise fail(f"data_root must be a path string, not {data_root!r}")
        gpus = values.get("gpus_per_job", 0.0)
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not 0 <= gpus <= 64:
            raise fail(f"gpus_per_job must be a number >= 0, not {gpus!r}")
        options = values.get("method", {})
        if not isinstance(options, dict):
            raise fail("[method] must be a table of per-method tables, e.g. [method.imp]")
        train = values.get("train", {})
        if not isinstance(train, dict):
            raise fail("[train] must be a table of training options")
        spec = cls(name=name, models=models, datasets=datasets, seeds=tuple(int(s) for s in seeds),
                   densities=tuple(float(d) for d in densities), methods=methods, train_tickets=train_tickets,
                   method_options={k: dict(v) if isinstance(v, dict) else v for k, v in options.items()},
                   train=dict(train), device=device, data_root=data_root, gpus_per_job=float(gpus), source=source)
        spec.validate()
        return spec

    def miner_of(self, method: str) -> str:
        """The registered method that the study's ``method`` runs (itself, or a variant's ``miner``).

        Example:
            >>> StudySpec.from_dict({"name": "s", "model": "lenet_300_100", "dataset": "digits", "seeds": [0],
            ...                      "densities": [0.1], "methods": ["random", "erk"],
            ...                      "method": {"erk": {"miner": "random", "distribution": "erk"}}}).miner_of("erk")
            'random'
        """
        return miner_of(method, self.method_options.get(method, {}))

    def validate(self) -> None:
        """Check every name and option against the registries (no model is built, no data read)."""
        from ticketlab.data import get_dataset_info
        from ticketlab.deprecation import old_option_names
        from ticketlab.miners import get_miner
        from ticketlab.models import get_model_info
        from ticketlab.training import TrainConfig, default_train_config

        def fail(msg: str) -> ConfigError:
            return ConfigError(f"{self.source}: {msg}")

        for method in self.methods:
            opts = self.method_options.get(method, {})
            variant = isinstance(opts, dict) and "miner" in opts
            why = name_problem(method)
            if why is not None:  # a method's name is part of every ticket's file name
                raise fail(f"methods: {method!r} cannot name a method: {why}")
            if variant:
                base = opts["miner"]
                if not isinstance(base, str) or not base:
                    raise fail(f"[method.{method}] miner must name a registered method, not {base!r}")
                try:
                    get_miner(base)
                except TicketlabError as exc:
                    raise fail(f"[method.{method}] miner: {exc}") from None
                if method != base and _registered(method):
                    raise fail(f"[method.{method}] is a registered method's name: give the variant a name of its own "
                               f"(e.g. {base}_{method})")
        for key, names, lookup in (("methods", [m for m in self.methods if m == self.miner_of(m)], get_miner),
                                   ("model", self.models, get_model_info), ("dataset", self.datasets, get_dataset_info)):
            for n in names:
                try:
                    lookup(n)
                except TicketlabError as exc:
                    raise fail(f"{key}: {exc}") from None
        for method, opts in self.method_options.items():
            if method not in self.methods:
                raise fail(f"[method.{method}] gives options for a method the study does not run "
                           f"(methods: {', '.join(self.methods)})")
            if not isinstance(opts, dict):
                raise fail(f"[method.{method}] must be a table of options")
            base = self.miner_of(method)
            opts = {k: v for k, v in opts.items() if k != "miner"}
            cls = get_miner(base)
            current = {f.name for f in dataclasses.fields(cls.Config)}
            fields = current | set(old_option_names(base))  # an old name (kept) still works
            for key in opts:
                if key not in fields and key not in RUNNER_OPTIONS:
                    known = ", ".join(sorted(current | set(RUNNER_OPTIONS)))
                    raise fail(f"[method.{method}] has no option '{key}' (options: {known})")
            try:
                cls(**{k: v for k, v in opts.items() if k in fields})
            except TicketlabError as exc:
                raise fail(f"[method.{method}]: {exc}") from None
            except TypeError as exc:
                raise fail(f"[method.{method}]: {exc}") from None
            for key in ("rounds", "scope", "count_rule", "train_epochs", "skip_first_layer", "skip_last_layer",
                        "prune_first_layer", "prune_last_layer"):
                if key in opts:
                    _check_runner_option(key, opts[key], lambda m: fail(f"[method.{method}] {m}"))
            flat = translate_deprecated({k: v for k, v in opts.items() if k in RUNNER_OPTIONS and k not in MODEL_OPTIONS},
                                        warn=False)  # prune_first_layer = false: the file's older spelling
            model_kwargs = {k: opts[k] for k in MODEL_OPTIONS if k in opts}
            try:  # the other spec fields, as the run's spec checks them
                MineSpec.from_flat(base, model_kwargs=model_kwargs, **flat).validate()
            except TicketlabError as exc:
                raise fail(f"[method.{method}]: {exc}") from None
            schedule = opts.get("schedule")
            if schedule and any(isinstance(r, dict) for r in schedule):
                raise fail(f"[method.{method}] a study job keeps one density: give per-layer rates with "
                           "rate_multipliers, not per-layer schedule rounds")
            if schedule and any(
                    abs(d - float(schedule[-1])) > 1e-12 for d in self.densities):
                raise fail(f"[method.{method}] schedule ends at density {schedule[-1]}: the study's densities must "
                           f"then be [{schedule[-1]}]")
        for method in self.methods:  # IMP's shared schedule: its rounds, before any job runs
            imp = self.method_options.get(method, {})
            if self.miner_of(method) != "imp" or not isinstance(imp, dict):
                continue
            from ticketlab.study.jobs import _OWN_SCHEDULE, IMP_RATE, shared_schedule

            try:
                if not any(k in imp for k in _OWN_SCHEDULE):
                    shared_schedule(self.densities, float(imp.get("rate") or IMP_RATE))
            except TicketlabError as exc:
                raise fail(f"[method.{method}]: {exc}") from None
        for model in self.models:
            for dataset in self.datasets:
                try:
                    TrainConfig.from_dict({**default_train_config(model, dataset).to_dict(), **self.train})
                except TicketlabError as exc:
                    raise fail(f"[train]: {exc}") from None
                except TypeError as exc:
                    raise fail(f"[train]: {exc}") from None


def miner_of(method: str, options: Any) -> str:
    """The registered method of a study method with these options (a variant's ``miner``)."""
    base = options.get("miner") if isinstance(options, Mapping) else None
    return base if isinstance(base, str) and base else method


def _registered(name: str) -> bool:
    from ticketlab.miners import get_miner

    try:
        get_miner(name)
    except TicketlabError:
        return False
    return True


def _names(value: Any, key: str, fail: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise fail(f"{key} must be a name or a non-empty list of names, not {value!r}")
    return tuple(items)


def _check_runner_option(key: str, value: Any, fail: Any) -> None:
    if key in ("rounds", "train_epochs"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(f"option {key} must be a positive integer, not {value!r}")
        if key == "rounds" and value > limits.value("rounds"):
            raise fail(f"option rounds is {value:,}, {limits.LIMITS['rounds'].hint()}")
    elif key == "scope":
        if value not in ("global", "layer"):
            raise fail(f"option scope must be global or layer, not {value!r}")
    elif key == "count_rule":
        if value not in ("exact", "threshold"):
            raise fail(f"option count_rule must be exact or threshold, not {value!r}")
    elif not isinstance(value, bool):
        raise fail(f"option {key} must be true or false, not {value!r}")
