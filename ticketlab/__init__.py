"""ticketlab: mine, store and compare lottery tickets.

The top-level names are imported lazily so that ``import ticketlab`` (and ``ticketlab compare``,
``ticketlab inspect``) never pay for importing torch.

Example:
    >>> import ticketlab
    >>> ticketlab.__version__ >= "0.1"
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from ticketlab._version import __version__

_LAZY = {
    "Ticket": "ticketlab.ticket",
    "save": "ticketlab.fileformat",
    "load": "ticketlab.fileformat",
    "compare": "ticketlab.metrics",
    "health": "ticketlab.metrics.health",
    "Health": "ticketlab.metrics.health",
    "unit_graph": "ticketlab.network",
    "UnitGraph": "ticketlab.network",
    "mine": "ticketlab.mining",
    "evaluate": "ticketlab.evaluation",
    "train": "ticketlab.retraining",
    "sanity_check": "ticketlab.sanity",
    "transfer": "ticketlab.elastic",
    "export_ticket": "ticketlab.interop",
    "import_masks": "ticketlab.interop",
    "Study": "ticketlab.study",
    "TicketlabError": "ticketlab.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ticketlab' has no attribute '{name}'")
