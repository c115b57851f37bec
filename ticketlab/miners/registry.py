"""The miner registry: ``@register_miner(name)`` adds a method that then works in ``mine``, the
``ticketlab mine`` command (its config fields become options) and studies.

Importing :mod:`ticketlab.miners` registers every built-in method (one file each); a plug-in
registers its own by importing this decorator:

    >>> from dataclasses import dataclass
    >>> import torch
    >>> from ticketlab.miners import Miner, MinerConfig
    >>> @register_miner("ones_example")
    ... class Ones(Miner):
    ...     '''Every weight scores 1 (ties are drawn from the run's seed).'''
    ...     @dataclass(frozen=True)
    ...     class Config(MinerConfig):
    ...         pass
    ...     def score(self, ctx, masks):
    ...         return {n: torch.ones_like(p) for n, p in ctx.params.items()}
    >>> get_miner("ones_example").description, "ones_example" in list_miners("ones*")
    ("Every weight scores 1 (ties are drawn from the run's seed).", True)
    >>> _ = MINERS.remove("ones_example")

After registration ``ticketlab mine --method ones_example`` works, with the config fields as
command-line options. A name registered twice is a :class:`~ticketlab.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from ticketlab.errors import ConfigError
from ticketlab.miners.base import Miner
from ticketlab.registry import Registry, summary

MINERS: Registry[type[Miner]] = Registry("miner")


def register_miner(name: str) -> Callable[[type[Miner]], type[Miner]]:
    """Class decorator: register a :class:`~ticketlab.miners.base.Miner` subclass, whose ``Config``
    is a frozen dataclass, under ``name`` (also set as its ``name``; its ``description`` defaults to
    the docstring's summary)."""

    def deco(cls: type[Miner]) -> type[Miner]:
        if not (isinstance(cls, type) and issubclass(cls, Miner)):
            raise ConfigError(f"'{name}' is not a Miner subclass")
        config = cls.Config
        if not dataclasses.is_dataclass(config) or not config.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise ConfigError(f"miner '{name}' needs a frozen dataclass Config")
        if name in MINERS:  # before the class is changed: a duplicate leaves the first entry as it was
            raise ConfigError(f"a miner named '{name}' is already registered")
        cls.name = name
        cls.description = cls.__dict__.get("description") or summary(cls.__doc__)
        return MINERS.register(name)(cls)

    return deco


def get_miner(name: str) -> type[Miner]:
    """The miner class registered as ``name`` (an :class:`~ticketlab.errors.UnknownNameError`
    suggests the nearest names)."""
    return MINERS.get(name)


def list_miners(pattern: str = "*") -> list[str]:
    """Names of the registered miners matching a shell-style ``pattern``, in registration order,
    e.g. ``['magnitude', 'random', 'synflow', ...]``."""
    return MINERS.list(pattern)


__all__ = ["MINERS", "get_miner", "list_miners", "register_miner"]
