"""``python -m ticketlab`` is the ``ticketlab`` command."""

from ticketlab.cli.main import main

main()
