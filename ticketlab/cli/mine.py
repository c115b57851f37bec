"""``ticketlab mine``: find a ticket with one method and save it.

The options of each miner come from its config dataclass (field name ``batch_norm`` becomes
``--batch-norm``; the help text is the field's ``metadata["help"]``). They are built the first
time the command is used, so that ``ticketlab --help`` and other commands never import torch.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.main import common_options, progress_for
from ticketlab.cli.render import console, density_table

_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _miner_options() -> dict[str, tuple[click.Option, list[str]]]:
    """Option name -> (click option, miners that have it), from every registered miner's config."""
    from ticketlab.miners import get_miner, list_miners

    options: dict[str, tuple[click.Option, list[str]]] = {}
    for name in list_miners():
        cls = get_miner(name)
        hints = typing.get_type_hints(cls.Config)
        for f in dataclasses.fields(cls.Config):
            if f.name in options:
                options[f.name][1].append(name)
                continue
            typ = hints.get(f.name, str)
            if typing.get_origin(typ) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
                typ = next(a for a in typing.get_args(typ) if a is not type(None))
            dashed = f.name.replace("_", "-")
            help_text = f.metadata.get("help", "")
            if typ is bool:
                opt = click.Option([f"--{dashed}/--no-{dashed}", f.name], default=None, help=help_text)
            else:
                opt = click.Option([f"--{dashed}", f.name], type=typ if typ in (int, float) else str,
                                   default=None, help=help_text)
            options[f.name] = (opt, [name])
    for opt, owners in options.values():
        opt.help = f"[{', '.join(owners)}] {opt.help or ''}".strip()
    return options


class MineCommand(click.Command):
    """A command whose miner-specific options are added on first use."""

    _extra: dict[str, tuple[click.Option, list[str]]] | None = None

    def extra(self) -> dict[str, tuple[click.Option, list[str]]]:
        if self._extra is None:
            extra = _miner_options()
            fixed = {p.name for p in self.params}
            clash = sorted(fixed & set(extra))
            if clash:
                raise RuntimeError(f"miner option '{clash[0]}' clashes with a mine option")
            MineCommand._extra = extra
        return self._extra  # type: ignore[return-value]

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return params[:-1] + [o for o, _ in self.extra().values()] + params[-1:]


@click.command("mine", cls=MineCommand)
@click.option("-m", "--method", required=True, help="Pruning method (see `ticketlab list miners`).")
@click.option("--model", default="lenet_300_100", show_default=True, help="Model (see `ticketlab list models`).")
@click.option("--dataset", default="digits", show_default=True, help="Data set (see `ticketlab list datasets`).")
@click.option("--sparsity", type=float, default=None, help="Fraction of weights removed, in [0, 1).")
@click.option("--density", type=float, default=None, help="Fraction of weights kept, in (0, 1]. Default 0.1 when neither is given.")
@click.option("--scope", type=click.Choice(["global", "layer"]), default="global", show_default=True,
              help="Rank all prunable weights together, or each layer on its own.")
@click.option("--rounds", type=int, default=None, help="Rounds of the exponential schedule density^(k/rounds) (default: the method's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initialisation, the method's draws and training.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu or cuda.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the data set's files (MNIST, CIFAR, Cora, ...).")
@click.option("--download", is_flag=True, default=False, help="Download the data set if it is missing.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ticket file to write [default: <method>_<model>_<dataset>_s<seed>.h5].")
@click.option("--train-epochs", type=int, default=None, help="Epochs of any training (the method's, and --train-ticket).")
@click.option("--train-ticket", is_flag=True, default=False, help="Rewind to the initial weights and train the ticket; report its accuracy.")
@click.option("--prune-first-layer/--no-prune-first-layer", default=True, show_default=True, help="Prune the first prunable layer.")
@click.option("--prune-last-layer/--no-prune-last-layer", default=True, show_default=True, help="Prune the last prunable layer.")
@click.option("--no-weights", is_flag=True, default=False, help="Do not store weight snapshots in the ticket.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON.")
@common_options
@click.pass_context
def command(ctx: click.Context, method: str, output: Path | None, no_weights: bool, as_json: bool,
            **kwargs: Any) -> None:
    """Find a ticket with one method and write it to an HDF5 file.

    \b
    ticketlab mine --method synflow -o a.h5
    ticketlab mine --method magnitude --model gcn --dataset cora --data-root DIR --sparsity 0.8
    """
    from ticketlab.errors import ConfigError
    from ticketlab.fileformat import save
    from ticketlab.mining import mine

    extra = ctx.command.extra()  # type: ignore[attr-defined]
    miner_config: dict[str, Any] = {}
    for name, (opt, owners) in extra.items():
        value = kwargs.pop(name)
        if value is None:
            continue
        if method not in owners:
            raise ConfigError(f"option {opt.opts[0]} belongs to {', '.join(owners)}, not to method '{method}'")
        miner_config[name] = value
    if kwargs["density"] is None and kwargs["sparsity"] is None:
        kwargs["density"] = 0.1
    if output is None:
        output = Path(f"{method}_{kwargs['model']}_{kwargs['dataset']}_s{kwargs['seed']}.h5")
    if not output.parent.exists():  # fail before the work, not after it
        raise ConfigError(f"cannot write '{output}': folder '{output.parent}' does not exist")

    with progress_for(ctx) as progress:
        ticket = mine(method, miner_config=miner_config, keep_weights=not no_weights,
                      progress=progress, **kwargs)
    path = save(ticket, output)
    if as_json:
        import json

        click.echo(json.dumps(_summary(ticket, path), indent=2))
        return
    out = console()
    out.print(f"[bold]{method}[/] ticket for [bold]{ticket.provenance['model']}[/] on "
              f"[bold]{ticket.provenance['dataset']}[/]: kept {ticket.kept:,} of {ticket.total:,} "
              f"weights (density {ticket.density:.4g}) -> {path}")
    out.print(density_table(ticket.layer_kept(), {n: m.size for n, m in ticket.masks.items()}))
    for row in ticket.history:
        if row.get("stage") in ("dense", "ticket") and "test_accuracy" in row:
            label = "dense network" if row["stage"] == "dense" else "ticket"
            out.print(f"test accuracy of the trained {label}: {row['test_accuracy']:.4f}")
    if ticket.provenance.get("collapsed"):
        empty = [n for n, k in ticket.layer_kept().items() if k == 0]
        click.echo(f"warning: layer collapse: {len(empty)} layer(s) keep no weight ({', '.join(empty[:3])})", err=True)


def _summary(ticket: Any, path: Path) -> dict[str, Any]:
    prov = ticket.provenance
    return {
        "path": str(path),
        "method": prov["method"], "model": prov["model"], "dataset": prov["dataset"], "seed": prov["seed"],
        "kept": ticket.kept, "total": ticket.total, "density": ticket.density,
        "layers": {n: {"kept": k, "total": int(ticket.masks[n].size)} for n, k in ticket.layer_kept().items()},
        "collapsed": prov.get("collapsed", False),
        "test_accuracy": prov.get("test_accuracy"),
        "history": [r for r in ticket.history if r.get("stage") != "round"],
    }
