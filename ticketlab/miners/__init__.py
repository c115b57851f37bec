"""Pruning methods ("miners"): each scores weights; shared code selects the mask.

``base.py`` holds the :class:`Miner` base class, its config and the mining context;
``registry.py`` the registry (:func:`register_miner`, :func:`get_miner`, :func:`list_miners`).
Importing this package registers every built-in method, one file each: ``random``, ``magnitude``,
``synflow`` (pruning at initialization, data-free), ``snip``, ``grasp``, ``magnitude_init``
(data-driven, ``_datadriven.py``), ``imp`` (iterative magnitude pruning), ``edge_popup``,
``gem_miner``, ``supermask_learned`` (learned masks, ``_learned.py``) and ``supermask``
(Zhou et al.'s criteria and sweep).

Example:
    >>> from ticketlab.miners import list_miners, get_miner
    >>> "synflow" in list_miners(), get_miner("imp").trains
    (True, True)
"""

from ticketlab.miners.base import Miner, MinerConfig, MiningContext, check_choices, config_help
from ticketlab.miners.registry import MINERS, get_miner, list_miners, register_miner

# Method modules register themselves on import; the order here is the order of list_miners().
from ticketlab.miners import magnitude, random, synflow  # noqa: E402,F401  isort:skip
from ticketlab.miners import grasp, magnitude_init, snip  # noqa: E402,F401  isort:skip  (pruning at init, issue 4)
from ticketlab.miners import imp  # noqa: E402,F401  isort:skip  (iterative magnitude pruning, issue 5)
from ticketlab.miners import edge_popup, gem_miner, supermask_learned  # noqa: E402,F401  isort:skip  (issue 9)
from ticketlab.miners import supermask  # noqa: E402,F401  isort:skip  (Zhou et al.'s criteria and sweep, issue 10)

__all__ = ["MINERS", "Miner", "MinerConfig", "MiningContext", "check_choices", "config_help", "get_miner",
           "list_miners", "register_miner"]
