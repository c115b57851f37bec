"""Pieces shared by every ``ticketlab`` command: global flags and the progress display."""

from __future__ import annotations

from typing import Any

import click


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
