"""Imports every built-in miner so that it registers itself."""

from ticketlab.miners import magnitude, random, synflow  # noqa: F401
