"""Stated limits on what one input may cost, each raisable by an environment variable.

Every size that a file or an option declares (a JSON text, a zip member, a model's parameter
count, a study's grid, a schedule's rounds, a barrier's alphas) is checked against one of these
limits *before* anything of that size is allocated. A limit is exceeded with one sentence that
names the limit and how to raise it: ``TICKETLAB_LIMIT_<NAME>=N`` (a positive whole number;
``1e9`` and ``1_000_000`` are read too). ``docs/format.md`` ("Limits") lists them. One limit
is a switch rather than a refusal: past ``relational_nodes`` the relational-graph measures
estimate from a node sample instead of computing exactly (and say so).

The ticket reader's own bound, ``TICKETLAB_MAX_PARAMS`` (:func:`ticketlab.fileformat.default_max_params`,
half the available memory by default), predates these and is kept.

Example:
    >>> LIMITS["alphas"].value()
    1001
    >>> check("alphas", 10**9, "--alphas asks for 1,000,000,000 points")
    Traceback (most recent call last):
    ...
    ticketlab.limits.LimitError: --alphas asks for 1,000,000,000 points, more than the limit of 1,001 (raise it with TICKETLAB_LIMIT_ALPHAS=N)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ticketlab.errors import ConfigError

PREFIX = "TICKETLAB_LIMIT_"


class LimitError(ConfigError):
    """A declared size is above its stated limit (exit 2; the message names the variable)."""


@dataclass(frozen=True)
class Limit:
    """One limit: its name (``TICKETLAB_LIMIT_<NAME>``), default, unit and what it bounds."""

    name: str
    default: int
    unit: str
    bounds: str

    @property
    def env(self) -> str:
        """The environment variable that raises (or lowers) it."""
        return PREFIX + self.name.upper()

    def value(self) -> int:
        """The limit in force: the variable when set, else the default."""
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            value = int(float(text)) if "e" in text.lower() else int(text.replace("_", ""))
        except (ValueError, OverflowError):
            value = 0
        if value < 1:
            raise ConfigError(f"{self.env}={text!r} is not a positive whole number")
        return value

    def hint(self) -> str:
        """``"more than the limit of N (raise it with VAR=N)"``, for a message."""
        return f"more than the limit of {self.value():,} (raise it with {self.env}=N)"


_ALL = (
    Limit("text_bytes", 16 * 2**20, "bytes", "a JSON or TOML file (study.json, a study file)"),
    Limit("depth", 64, "levels", "nesting of a JSON or TOML value"),
    Limit("zip_entries", 100_000, "members", "members of a zip archive (torch files, npz)"),
    Limit("inflated_bytes", 256 * 2**20, "bytes",
          "what the compressed members of a zip archive (torch file, npz, checkpoint) inflate to; "
          "stored members (as torch.save writes them) are bounded by the file's own size; also a "
          "gzip idx file (MNIST, Fashion-MNIST)"),
    Limit("model_params", 50_000_000, "parameters",
          "parameters of a model built from a configuration (a ticket's provenance, a study, an option)"),
    Limit("jobs", 10_000, "jobs", "jobs of a study's grid (models x datasets x methods x seeds x densities)"),
    Limit("rounds", 1_000, "rounds", "pruning rounds of one run (a schedule, --rounds, an IMP rate's schedule)"),
    Limit("alphas", 1_001, "points", "points of a barrier's interpolation grid (--alphas)"),
    Limit("graph_edges", 2_000_000, "edges", "edges of a ticket's networkx graph (Ticket.to_networkx)"),
    Limit("relational_nodes", 1_024, "nodes",
          "nodes of one relational graph whose clustering and path length are computed exactly; a larger "
          "graph gets a seeded estimate from a sample of its nodes, with its standard error "
          "(ticketlab.metrics.relational)"),
)
#: Every limit by name.
LIMITS: dict[str, Limit] = {limit.name: limit for limit in _ALL}


def value(name: str) -> int:
    """The limit ``name`` in force (see :data:`LIMITS`).

    Example:
        >>> value("depth")
        64
    """
    return LIMITS[name].value()


def check(name: str, amount: int, what: str) -> int:
    """Return ``amount`` when it is within limit ``name``; else raise :class:`LimitError`.

    ``what`` starts the sentence (``"the study has 10,000,000 jobs"``); the rest names the limit.
    """
    limit = LIMITS[name]
    if amount > limit.value():
        raise LimitError(f"{what}, {limit.hint()}")
    return amount
