"""Pruning methods ("miners"): each scores weights; shared code selects the mask.

Example:
    >>> from ticketlab.miners import list_miners, get_miner
    >>> "synflow" in list_miners()
    True
"""

from ticketlab.miners.base import (
    MINERS, Miner, MinerConfig, MiningContext, check_choices, config_help, get_miner, list_miners, register_miner,
)

__all__ = ["MINERS", "Miner", "MinerConfig", "MiningContext", "check_choices", "config_help", "get_miner",
           "list_miners", "register_miner"]
