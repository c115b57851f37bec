"""Typed errors. Every error a user can cause is a :class:`TicketlabError` whose message is one
sentence; the CLI prints it on one line and exits with :attr:`TicketlabError.exit_code`."""

from __future__ import annotations


class TicketlabError(Exception):
    """Base class of every error ticketlab raises on purpose (bad input, missing data, ...)."""

    exit_code: int = 2


class ConfigError(TicketlabError, ValueError):
    """An option or argument has a value outside its domain (density 1.5, unknown scope, ...)."""


class UnknownNameError(ConfigError):
    """A registry was asked for a name it does not hold (unknown miner, model, data set, metric)."""


class IncompatibleError(ConfigError):
    """Two things that must fit do not: a model and a data set, or two tickets' architectures."""


class TicketFormatError(TicketlabError):
    """A file is not a valid ticket file (not HDF5, truncated, newer version, bad shapes, ...)."""


class DataNotFoundError(TicketlabError):
    """A data set's files are not where they are expected; the message says how to get them."""
