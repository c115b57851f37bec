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
from dataclasses import dataclass
from typing import Any

from ticketlab.study.spec import RUNNER_OPTIONS, StudySpec

#: Hex digits of the config hash in a job's name.
HASH_LENGTH = 10


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

    @property
    def output(self) -> str:
        """The ticket's path relative to the study folder."""
        return f"tickets/{self.id}.h5"

    def mine_kwargs(self, data_root: str | None) -> dict[str, Any]:
        """Keyword arguments of :func:`ticketlab.mining.mine` for this job."""
        opts = dict(self.config["options"])
        kwargs: dict[str, Any] = {k: opts.pop(k) for k in RUNNER_OPTIONS if k in opts}
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


def resolve_jobs(spec: StudySpec) -> list[Job]:
    """Every job of the grid models x data sets x methods x seeds x densities, in that order."""
    jobs = []
    for model in spec.models:
        for dataset in spec.datasets:
            for method in spec.methods:
                options = dict(spec.method_options.get(method, {}))
                for seed in spec.seeds:
                    for density in spec.densities:
                        config = {"method": method, "model": model, "dataset": dataset, "seed": seed,
                                  "density": density, "options": options, "train": dict(spec.train),
                                  "train_ticket": spec.train_tickets, "device": spec.device}
                        h = config_hash(config)
                        stem = f"{method}-{model}-{dataset}-s{seed}-d{density:g}"
                        jobs.append(Job(f"{stem}-{h}", h, method, model, dataset, seed, density, config))
    return jobs
