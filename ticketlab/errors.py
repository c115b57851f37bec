"""Typed errors. Every error a user can cause is a :class:`TicketlabError` whose message is one
sentence; the CLI prints it on one line and exits with :attr:`TicketlabError.exit_code`."""

from __future__ import annotations


class TicketlabError(Exception):
    """Base class of every error ticketlab raises on purpose (bad input, missing data, ...).

    ``str(error)`` is worded for the Python API (keyword arguments such as ``resume=True``).
    When the advice differs on the command line, ``cli`` gives the message in its wording
    (``--resume``); the ``ticketlab`` command prints :meth:`cli_text`.

    Example:
        >>> e = ConfigError("pass resume=True", cli="add --resume")
        >>> str(e), e.cli_text()
        ('pass resume=True', 'add --resume')
        >>> ConfigError("bad density").cli_text()
        'bad density'
    """

    exit_code: int = 2
    cli: str | None = None  # (also for subclasses whose __init__ does not call this one)

    def __init__(self, *args: object, cli: str | None = None) -> None:
        super().__init__(*args)
        self.cli = cli

    def cli_text(self) -> str:
        """The message as the command line shows it: ``cli`` when given, else ``str(self)``."""
        return self.cli if self.cli is not None else str(self)


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


class MiningError(TicketlabError):
    """A mining run was set up correctly but cannot give a ticket, e.g. ``gem_miner`` under
    ``protocol="reference"`` when the reference's strict freezing threshold empties the network.
    Exit code 1: the run failed, the command line was fine."""

    exit_code = 1


class TicketlabWarning(UserWarning):
    """A warning of ticketlab's own (ties drawn at random, an inconsistent file, a layer left
    empty, ...). The ``ticketlab`` command prints these as ``warning: ...`` and any other
    warning (torch's deprecations, ...) as ``warning (torch): ...``, with where it came from."""
