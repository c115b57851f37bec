"""A study's jobs: one ``mine`` call each, named by a readable stem and a hash of its config.

The hash covers only what the study file states explicitly (method, model, data set, seed,
density, the method's options, the training options, ``train_tickets``, device), as open_lth
hashes only non-default hyper-parameters: a new option with a default added to ticketlab later
never renames old results. (The other side of that coin: a changed *default* is not seen by the
hash; the ticket's provenance records every value actually used.)

**Fairness**: every job of a seed builds its model with that seed (``mine`` seeds the
initialisation with the run's seed), so at a given seed every method starts from bit-identical
initial weights; the tests check it on the saved ``init`` snapshots.

Example:
    >>> from ticketlab.study.spec import StudySpec
    >>> spec = StudySpec.from_dict({"name": "s", "model": "lenet_300_100", "dataset": "digits",
    ...                             "seeds": [0, 1], "densities": [0.1], "methods": ["random"]})
    >>> [j.id.rsplit("-", 1)[0] for j in resolve_jobs(spec)]
    ['random-lenet_300_100-digits-s0-d0.1', 'random-lenet_300_100-digits-s1-d0.1']
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ticketlab.spec import MODEL_OPTIONS, translate_deprecated
from ticketlab.study.spec import RUNNER_OPTIONS, StudySpec, miner_of

#: Hex digits of the config hash in a job's name.
HASH_LENGTH = 10
#: IMP's rate per round when a study gives none (Frankle & Carbin 2019).
IMP_RATE = 0.2
#: IMP options that fix the schedule themselves: with one of them, IMP jobs share nothing.
_OWN_SCHEDULE = ("rounds", "rate_conv", "rate_fc", "schedule", "rate_multipliers")


@dataclass(frozen=True)
class Job:
    """One ``mine`` call of a study."""

    id: str
    hash: str
    method: str
    model: str
    dataset: str
    seed: int
    density: float
    config: dict[str, Any]  # the explicit configuration (what is hashed)
    share: str | None = None  # jobs with the same key are rounds of one run (see shared_schedule)

    @property
    def output(self) -> str:
        """The ticket's path relative to the study folder."""
        return f"tickets/{self.id}.h5"

    @property
    def miner(self) -> str:
        """The registered method the job runs (its method, or a variant's ``miner``)."""
        return miner_of(self.method, self.config.get("options"))

    @property
    def rounds(self) -> int | None:
        """Rounds of the job's explicit schedule (shared IMP jobs), else ``None``."""
        sched = self.config.get("schedule")
        return len(sched) if sched else None

    def mine_kwargs(self, data_root: str | None) -> dict[str, Any]:
        """Keyword arguments of :func:`ticketlab.mining.mine` for this job."""
        opts = {k: v for k, v in self.config["options"].items() if k != "miner"}
        # a file's prune_first_layer = false is skip_first_layer=True here (its job name, which hashes
        # what the file says, stays)
        kwargs = translate_deprecated({k: opts.pop(k) for k in RUNNER_OPTIONS if k in opts}, warn=False)
        model_kwargs = {k: kwargs.pop(k) for k in MODEL_OPTIONS if k in kwargs}
        if model_kwargs:
            kwargs["model_kwargs"] = model_kwargs
        if self.config.get("schedule"):
            kwargs["schedule"] = list(self.config["schedule"])
            opts.pop("rate", None)  # the rate made the schedule
        kwargs.update(model=self.model, dataset=self.dataset, seed=self.seed, density=self.density,
                      device=self.config["device"], miner_config=opts, train_options=dict(self.config["train"]),
                      train_ticket=self.config["train_ticket"], data_root=data_root)
        return kwargs


def config_hash(config: dict[str, Any]) -> str:
    """First :data:`HASH_LENGTH` hex digits of the SHA-256 of the canonical JSON of ``config``.

    Example:
        >>> config_hash({"b": 1, "a": [0.1]}) == config_hash({"a": [0.1], "b": 1})
        True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def shared_schedule(densities: list[float] | tuple[float, ...], rate: float = IMP_RATE) -> list[float]:
    """One IMP schedule through every study density: ``(1 - rate)^k`` rounds with the densities
    inserted as rounds of their own; a rate step less than half a round above a density (ratio
    below ``(1 - rate)^(-1/2)``) is dropped, so every round removes about ``rate`` of the weights
    (between roughly ``rate / 2`` and ``1.5 rate``), as IMP's rounds do.

    IMP's round ``k`` depends only on rounds ``1..k``, so the job of density ``d`` (schedule: the
    prefix ending at ``d``) is round ``len(prefix)`` of the run of the whole schedule, bit for bit:
    a study runs it once and takes every density's ticket from its rounds.

    Example:
        >>> [round(d, 4) for d in shared_schedule([0.5, 0.2])]
        [0.8, 0.64, 0.5, 0.4096, 0.3277, 0.2621, 0.2]
        >>> len(shared_schedule([0.2, 0.05, 0.01])), len(shared_schedule([0.01]))  # 20 % per round to 0.01
        (21, 21)
    """
    from ticketlab.errors import ConfigError
    from ticketlab.limits import LIMITS, LimitError

    low = min(densities)
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"the IMP rate must be in (0, 1), not {rate!r}")
    # the rounds it takes, counted before a list of them is made: (1 - rate)^n <= low
    needed = math.log(low) / math.log1p(-rate) if low > 0 else math.inf
    if needed > LIMITS["rounds"].value():
        shown = f"{needed:,.0f}" if math.isfinite(needed) else "unboundedly many"
        raise LimitError(f"an IMP schedule from density 1 to {low:g} at rate {rate:g} a round takes {shown} "
                         f"rounds, {LIMITS['rounds'].hint()}")
    steps, d = [], 1.0 - rate
    while d > low * (1 + 1e-9):
        steps.append(d)
        d *= 1.0 - rate
    half = (1.0 - rate) ** -0.5
    merged = sorted(densities, reverse=True)
    for step in steps:
        if not any(x * (1 - 1e-9) <= step < x * half for x in densities):
            merged.append(step)
    return sorted(merged, reverse=True)


def resolve_jobs(spec: StudySpec) -> list[Job]:
    """Every job of the grid models x data sets x methods x seeds x densities, in that order.

    IMP jobs without their own schedule options (``rounds``, ``rate_conv``, ``rate_fc``) follow
    :func:`shared_schedule` (rate ``rate``, default 0.2 per round, through every study density),
    and a study runs each (model, data set, seed) once for all densities. IMP trains every round's
    mask from its reset weights, so that training is the ticket's: ``train_tickets`` adds no second
    training to IMP jobs.
    """
    jobs = []
    for model in spec.models:
        for dataset in spec.datasets:
            for method in spec.methods:
                options = dict(spec.method_options.get(method, {}))
                base = spec.miner_of(method)
                shared = base == "imp" and not any(k in options for k in _OWN_SCHEDULE)
                merged = shared_schedule(spec.densities, float(options.get("rate", IMP_RATE))) if shared else None
                for seed in spec.seeds:
                    for density in spec.densities:
                        config: dict[str, Any] = {
                            "method": method, "model": model, "dataset": dataset, "seed": seed, "density": density,
                            "options": options, "train": dict(spec.train),
                            "train_ticket": spec.train_tickets and base != "imp", "device": spec.device}
                        share = None
                        if merged is not None:
                            config["schedule"] = [x for x in merged if x >= density * (1 - 1e-12)]
                            share = config_hash({k: v for k, v in config.items() if k not in ("density", "schedule")})
                        h = config_hash(config)
                        stem = f"{method}-{model}-{dataset}-s{seed}-d{density:g}"
                        jobs.append(Job(f"{stem}-{h}", h, method, model, dataset, seed, density, config, share))
    return jobs
