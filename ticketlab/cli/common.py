"""Pieces shared by every ``ticketlab`` command: global flags and the progress display."""

from __future__ import annotations

from typing import Any

import click

from ticketlab.checks import MAX_SEED

#: ``create_model``'s ``init`` choices (``ticketlab.models.INITS``; repeated here so that
#: building the commands never imports torch; a test keeps the two equal).
INIT_CHOICES = ("kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform")


#: The type of every ``--seed`` option: an integer from 0 to ``ticketlab.checks.MAX_SEED``.
SEED = click.IntRange(0, MAX_SEED)


def init_params() -> list[click.Option]:
    """``--init`` and ``--zero-bias``: how the model's weights and biases are initialised (the
    options of the model's constructor that every model takes)."""
    return [click.Option(["--init"], type=click.Choice(INIT_CHOICES), default=None,
                         help="Re-initialise the prunable weights (default: the model's own initialisation)."),
            click.Option(["--zero-bias"], is_flag=True, default=False,
                         help="Set every bias to zero (as the Synaptic-Flow reference models).")]


def init_options(f: Any) -> Any:
    """:func:`init_params` as a decorator."""
    for param in reversed(init_params()):
        f = click.option(*param.opts, type=param.type, is_flag=param.is_flag, default=param.default,
                         help=param.help)(f)
    return f


def train_options(epochs_help: str) -> Any:
    """``--train-epochs`` and ``--train-option KEY=VALUE`` (``TrainConfig`` fields): the training
    options of ``mine``, ``train`` and ``sanity``; :func:`parse_train_options` reads the pairs."""
    def deco(f: Any) -> Any:
        f = click.option("--train-option", "train_option_text", multiple=True, metavar="KEY=VALUE",
                         help="Override a training option, e.g. lr=0.1 or optimizer=sgd (repeatable; see TrainConfig).")(f)
        f = click.option("--train-epochs", type=int, default=None, help=epochs_help)(f)
        return f
    return deco


def weights_option(default: str | None, help: str) -> Any:
    """``--weights ACTION``: what a masked network starts from (``docs/glossary.md``), with its old
    name ``--kept`` hidden; the command reads both and calls :func:`renamed_value`."""
    def deco(f: Any) -> Any:
        f = click.option("--kept", "kept", default=None, hidden=True, metavar="ACTION",
                         help="Old name of --weights (deprecated).")(f)
        f = click.option("--weights", default=default, show_default=default is not None, metavar="ACTION",
                         help=help)(f)
        return f
    return deco


def renamed_value(old: str, new: str, old_value: Any, new_value: Any, default: Any = None) -> Any:
    """The value of option ``new`` where its old name ``old`` may still be given: ``old_value``
    with a one-line warning on stderr, else ``new_value``; both given is a usage error.

    Example:
        >>> renamed_value("--kept", "--weights", None, "reinit", "init")
        'reinit'
    """
    if old_value is None:
        return new_value
    if new_value is not None and new_value != default:
        raise click.UsageError(f"{old} is the old name of {new}: give {new} only")
    click.echo(f"warning: {old} is deprecated: use {new} (docs/glossary.md)", err=True)
    return old_value


def parse_train_options(items: tuple[str, ...]) -> dict[str, Any]:
    """``--train-option KEY=VALUE`` pairs; values are read as JSON when they parse (numbers,
    true/false, lists), else kept as text (``optimizer=sgd``).

    Example:
        >>> parse_train_options(("lr=0.1", "optimizer=sgd", "milestones=[5]"))
        {'lr': 0.1, 'optimizer': 'sgd', 'milestones': [5]}
    """
    from ticketlab.bounded import Malformed, Refused, parse_json
    from ticketlab.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option --train-option needs KEY=VALUE, got '{item}'")
        try:
            out[key.strip().replace("-", "_")] = parse_json(text)
        except Malformed:
            out[key.strip().replace("-", "_")] = text
        except Refused as exc:
            raise ConfigError(f"option --train-option {key.strip()}: {exc}") from None
    return out


DATA_ROOT_HELP = "Folder with the data set's files (MNIST, CIFAR, Cora, ...)."


def data_root_option(help: str = DATA_ROOT_HELP) -> Any:
    """``--data-root FOLDER``, shared by every command that reads a data set."""
    from pathlib import Path

    return click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None, help=help)


def device_option(f: Any) -> Any:
    """``--device auto|cpu|cuda``, shared by every command that computes on a model."""
    return click.option("--device", default="auto", show_default=True,
                        help="auto (CUDA when available), cpu or cuda.")(f)


def common_options(f: Any) -> Any:
    """``--quiet`` and ``--debug``, accepted by the group and by every command."""
    f = click.option("--debug", is_flag=True, default=False, expose_value=False, is_eager=True,
                     callback=_set_flag, help="Show full tracebacks on errors.")(f)
    f = click.option("-q", "--quiet", is_flag=True, default=False, expose_value=False, is_eager=True,
                     callback=_set_flag, help="No progress bars.")(f)
    return f


def _set_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        set_flag(ctx, str(param.name))


def set_flag(ctx: click.Context, name: str) -> None:
    """Set the global flag ``name`` (``quiet`` or ``debug``)."""
    ctx.find_root().meta[f"ticketlab.{name}"] = True


def flag(ctx: click.Context, name: str) -> bool:
    """Whether the global flag ``name`` (``quiet`` or ``debug``) was given anywhere."""
    return bool(ctx.find_root().meta.get(f"ticketlab.{name}", False))


def progress_for(ctx: click.Context):  # -> NullProgress
    """Progress on stderr unless ``--quiet``: bars on a terminal, else a line every 30 seconds."""
    from ticketlab.progress import make_progress

    return make_progress(False if flag(ctx, "quiet") else None)


def name_option(kind: str) -> Any:
    """A click callback for an option that names a miner, model or data set (``kind``: a
    :data:`ticketlab.catalog.KINDS` key): the value becomes the registered name it means (``SynFlow``
    -> ``synflow``), a typo a one-line "did you mean" error, before torch is imported. A
    comma-separated list (``--methods``) is checked name by name."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from ticketlab.catalog import resolve

        if value is None:
            return None
        return ",".join(resolve(kind, v.strip()) if v.strip() else v for v in str(value).split(","))
    return callback


def resolve_names_first(ctx: click.Context, args: list[str], options: dict[str, str]) -> list[str]:
    """``args`` with the value of every option in ``options`` (its flags -> a catalogue kind, as in
    :func:`name_option`) replaced by the registered name it means, checked before click parses
    anything: for a command whose parameters import torch to be built (``mine``'s miner options).
    ``--help`` skips the check; ``--debug`` anywhere shows a bad name's traceback."""
    from ticketlab.catalog import resolve

    if "--help" in args or "-h" in args:
        return args
    out = list(args)
    try:
        i = 0
        while i < len(out) and out[i] != "--":
            flag_, eq, value = out[i].partition("=")
            if flag_ in options and eq:  # --method=synflow
                out[i] = f"{flag_}={resolve(options[flag_], value)}"
            elif out[i] in options and i + 1 < len(out):  # --method synflow
                out[i + 1] = resolve(options[out[i]], out[i + 1])
                i += 1
            i += 1
    except Exception:
        if "--debug" in args:
            set_flag(ctx, "debug")
        raise
    return out
