"""The ``ticketlab`` command: a thin layer that parses, calls the Python API and renders.

Known errors (:class:`ticketlab.errors.TicketlabError`) print one line on stderr and exit with
code 2; ``--debug`` shows the traceback instead. Heavy modules (torch) are imported inside the
commands that need them, so ``--help``, ``inspect`` and ``compare`` start fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ticketlab._version import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Keeps commands in the order they were added; turns known errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        from ticketlab.errors import TicketlabError

        try:
            return super().invoke(ctx)
        except TicketlabError as exc:
            if flag(ctx, "debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def common_options(f: Any) -> Any:
    """``--quiet`` and ``--debug``, accepted by the group and by every command."""
    f = click.option("--debug", is_flag=True, default=False, expose_value=False, is_eager=True,
                     callback=_set_flag, help="Show full tracebacks on errors.")(f)
    f = click.option("-q", "--quiet", is_flag=True, default=False, expose_value=False, is_eager=True,
                     callback=_set_flag, help="No progress bars.")(f)
    return f


def _set_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        root = ctx.find_root()
        root.meta[f"ticketlab.{param.name}"] = True


def flag(ctx: click.Context, name: str) -> bool:
    """Whether the global flag ``name`` (``quiet`` or ``debug``) was given anywhere."""
    return bool(ctx.find_root().meta.get(f"ticketlab.{name}", False))


def progress_for(ctx: click.Context):  # -> NullProgress
    """A progress display on stderr unless ``--quiet`` or stderr is not a terminal."""
    from ticketlab.progress import make_progress

    return make_progress(False if flag(ctx, "quiet") else None)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ticketlab")
@common_options
def cli() -> None:
    """ticketlab: mine, store and compare lottery tickets.

    \b
    ticketlab mine --method synflow -o a.h5     find a ticket and save it
    ticketlab inspect a.h5                      provenance and per-layer densities
    ticketlab compare a.h5 b.h5                 what two tickets share, against chance
    ticketlab list miners                       what is available
    """


def _register_commands() -> None:
    from ticketlab.cli import collapse, compare, inspect, listing, mine

    for mod in (mine, inspect, compare, collapse, listing):
        cli.add_command(mod.command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ticketlab`` console script."""
    cli.main(args=argv, prog_name="ticketlab")
