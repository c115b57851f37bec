"""Imports every built-in miner so that it registers itself."""

from ticketlab.miners import magnitude, random, synflow  # noqa: F401
from ticketlab.miners import grasp, magnitude_init, snip  # noqa: F401,E402  (pruning at init, issue 4)
from ticketlab.miners import imp  # noqa: F401,E402  (iterative magnitude pruning, issue 5)
from ticketlab.miners import edge_popup, gem_miner, supermask_learned  # noqa: F401,E402  (learned masks, issue 9)
from ticketlab.miners import supermask  # noqa: F401,E402  (Zhou et al.'s criteria and sweep, issue 10)
