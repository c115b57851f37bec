"""The ``ticketlab`` command: a thin layer that parses, calls the Python API and renders.

Known errors (:class:`ticketlab.errors.TicketlabError`) and bad options or values (click's
usage errors) print one line on stderr and exit with code 2; ``--debug`` shows the traceback instead. Heavy modules (torch) are imported inside the
commands that need them, so ``--help``, ``inspect`` and ``compare`` start fast.
"""

from __future__ import annotations

from typing import Any

import click

from ticketlab._version import __version__
from ticketlab.cli.common import common_options, flag

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Keeps commands in the order they were added; turns known errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["ticketlab.argv"] = list(args)  # the command line as given (e.g. to print how to resume)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from ticketlab.cli.render import visible
        from ticketlab.errors import TicketlabError

        import warnings

        def show(message: Any, category: Any, filename: str = "", *args: Any, **kwargs: Any) -> None:
            # a warning is one line too, its text made visible (it may quote a file's strings);
            # another package's warning says whose it is
            click.echo(f"{warning_prefix(category, filename)} {visible(message)}", err=True)

        try:
            with warnings.catch_warnings():
                if not flag(ctx, "debug"):
                    warnings.showwarning = show
                return super().invoke(ctx)
        except TicketlabError as exc:
            if flag(ctx, "debug"):
                raise
            click.echo(f"error: {visible(exc.cli_text())}", err=True)  # CLI wording, one line, controls shown
            ctx.exit(exc.exit_code)
        except RecursionError:  # an input nested deeper than Python's stack (JSON, TOML, provenance)
            if flag(ctx, "debug"):
                raise
            click.echo("error: an input is nested too deeply to read (a damaged or hostile file?)", err=True)
            ctx.exit(2)
        except click.UsageError as exc:  # a bad option or value: one line too, with where to look
            if flag(ctx, "debug"):
                raise
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            click.echo(f"error: {visible(exc.format_message())} (see '{visible(where)} --help')", err=True)
            ctx.exit(exc.exit_code)


def warning_prefix(category: type, filename: str) -> str:
    """``warning:`` for ticketlab's own warnings (:class:`~ticketlab.errors.TicketlabWarning`),
    ``warning (PACKAGE):`` for another package's, named by the file that raised it (or by its
    category, when it points into ticketlab's code).

    Example:
        >>> from ticketlab.errors import TicketlabWarning
        >>> warning_prefix(TicketlabWarning, "/x/ticketlab/fileformat.py")
        'warning:'
        >>> warning_prefix(FutureWarning, "/venv/lib/python3.11/site-packages/torch/nn/modules/module.py")
        'warning (torch):'
    """
    from ticketlab.errors import TicketlabWarning

    if isinstance(category, type) and issubclass(category, TicketlabWarning):
        return "warning:"
    package = _package_of(filename)
    if package in (None, "ticketlab"):  # raised on ticketlab's behalf (stacklevel), or of unknown origin
        package = getattr(category, "__name__", "warning")
    return f"warning ({package}):"


def _package_of(filename: str) -> str | None:
    """The top-level package that ``filename`` belongs to: its first folder under the longest
    ``sys.path`` entry holding it (``site-packages/torch/nn/x.py`` -> ``torch``)."""
    import os
    import sys

    path = os.path.abspath(filename) if filename else ""
    bases = sorted((os.path.abspath(b) for b in sys.path if b), key=len, reverse=True)
    for base in bases:
        if path.startswith(base.rstrip(os.sep) + os.sep):
            first = path[len(base.rstrip(os.sep)) + 1:].split(os.sep)[0]
            return first.removesuffix(".py") or None
    parts = path.split(os.sep)
    if "site-packages" in parts[:-1]:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    return None


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ticketlab")
@common_options
def cli() -> None:
    """ticketlab: mine, store and compare lottery tickets.

    \b
    ticketlab mine --method synflow -o a.h5     find a ticket and save it
    ticketlab inspect a.h5                      provenance and per-layer densities
    ticketlab evaluate a.h5                     accuracy of the masked network, untrained
    ticketlab train a.h5 -o t.h5                train the sparse network, write the trained ticket
    ticketlab transfer a.h5 --to-model resnet32 -o b.h5   stretch / squeeze a ResNet ticket (Elastic LTH)
    ticketlab sanity a.h5                       shuffle / reinit / invert checks (Frankle et al. 2021)
    ticketlab compare a.h5 b.h5                 what two tickets share, against chance
    ticketlab barrier a.h5 b.h5                 error along the line between two trained tickets
    ticketlab study run study.toml              a grid of methods x seeds x densities, and its report
    ticketlab list miners                       what is available
    """


def _register_commands() -> None:
    from ticketlab.cli import collapse, compare, evaluate, export, importing, inspect, listing, mine, study
    from ticketlab.cli import barrier, sanity, train, transfer

    for mod in (mine, inspect, evaluate, train, transfer, sanity, compare, barrier, export, importing, study, collapse,
                listing):
        cli.add_command(mod.command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ticketlab`` console script."""
    cli.main(args=argv, prog_name="ticketlab")
