"""The miners' registry (issue 24): ``ticketlab/miners/registry.py``, filled by importing
``ticketlab.miners``, as the model and metric registries are; a name registered twice is an error."""

from __future__ import annotations

import subprocess
import sys
import warnings
from dataclasses import dataclass

import pytest
import torch

import ticketlab.miners as miners
from ticketlab import deprecation
from ticketlab.errors import ConfigError, UnknownNameError
from ticketlab.miners import MINERS, Miner, MinerConfig, get_miner, list_miners, register_miner
from ticketlab.miners import registry

BUILTIN = ["magnitude", "random", "synflow", "grasp", "magnitude_init", "snip", "imp", "edge_popup", "gem_miner",
           "supermask_learned", "supermask"]


def test_every_builtin_miner_is_registered_by_importing_the_package_in_a_fixed_order():
    # no lazy loading: the registry itself holds them, in the order of miners/__init__.py
    assert MINERS.list()[:len(BUILTIN)] == BUILTIN
    assert list_miners()[:len(BUILTIN)] == BUILTIN


def test_one_registry_reached_by_every_public_path():
    assert miners.get_miner is registry.get_miner and miners.register_miner is registry.register_miner
    assert miners.MINERS is registry.MINERS and miners.list_miners is registry.list_miners
    assert get_miner("synflow").name == "synflow"
    with pytest.raises(UnknownNameError, match="did you mean 'synflow'"):
        get_miner("synflw")


def test_a_fresh_process_finds_the_miners_through_the_runner_alone():
    code = ("import ticketlab.mining, sys; from ticketlab.miners.registry import MINERS; "
            "print(len(MINERS), 'ticketlab.miners.supermask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == [str(len(BUILTIN)), "True"], out.stderr


def _ones(name: str) -> type[Miner]:
    class Ones(Miner):
        """Every weight scores 1 (test only)."""

        @dataclass(frozen=True)
        class Config(MinerConfig):
            pass

        def score(self, ctx, masks):
            return {n: torch.ones_like(p) for n, p in ctx.params.items()}

    Ones.__qualname__ = name
    return Ones


def test_a_duplicate_name_is_an_error_and_leaves_the_first_entry_as_it_was():
    first = register_miner("_test_dup")(_ones("A"))
    try:
        with pytest.raises(ConfigError, match="a miner named '_test_dup' is already registered"):
            register_miner("_test_dup")(_ones("B"))
        assert get_miner("_test_dup") is first
        with pytest.raises(ConfigError, match="already registered"):  # a built-in name too
            register_miner("synflow")(_ones("C"))
        assert get_miner("synflow").__module__ == "ticketlab.miners.synflow"
    finally:
        MINERS.remove("_test_dup")
    assert "_test_dup" not in list_miners()


def test_only_miner_classes_with_frozen_configs_register():
    with pytest.raises(ConfigError, match="not a Miner subclass"):
        register_miner("_test_no")(object)

    class Loose(Miner):
        @dataclass
        class Config:  # not frozen
            pass

    with pytest.raises(ConfigError, match="frozen dataclass Config"):
        register_miner("_test_loose")(Loose)
    assert "_test_no" not in MINERS and "_test_loose" not in MINERS


def test_the_old_import_path_from_base_still_works_and_warns_once():
    deprecation.reset_warnings()
    with pytest.warns(DeprecationWarning, match=r"ticketlab.miners.base.register_miner is deprecated: use "
                                                r"ticketlab.miners.register_miner"):
        from ticketlab.miners.base import register_miner as old
    assert old is register_miner
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second use is silent
        from ticketlab.miners.base import register_miner as again  # noqa: F401
    with pytest.warns(DeprecationWarning, match="miners.base.get_miner"):
        from ticketlab.miners.base import get_miner as old_get
    assert old_get is get_miner
    with pytest.raises(ImportError):
        from ticketlab.miners.base import no_such_name  # noqa: F401
