"""``ticketlab mine``: find a ticket with one method and save it.

The options that set the run (method, model, density, rounds, schedule, training, ...) are made
from the fields of :class:`ticketlab.spec.MineSpec` (:mod:`ticketlab.cli.spec_options`): a field
added to the spec is an option, with its help. The run-time options (output, device, data folder,
checkpoints, ...) are written here. The command builds the spec and calls ``mine(spec, ...)``.

The options of each miner come from its config dataclass (field name ``batch_norm`` becomes
``--batch-norm``; the help text is the field's ``metadata["help"]``; a field with
``metadata["choices"]`` becomes a choice, listed by ``--help``). They are built the first time
the command is used, so that ``ticketlab --help`` and other commands never import torch.

Checkpoints: a method that trains (``imp``, ``magnitude``) or a run with ``--resume`` writes
``<output>.ckpt`` after every finished round (atomically) and deletes it once the ticket is
saved. If the run is killed, the same command with ``--resume`` continues after the last
finished round and writes the same ticket, bit for bit on CPU. Without ``--resume`` an existing
checkpoint is an error (it is never silently reused or overwritten); a checkpoint of a different
configuration is refused. Ctrl-C prints one line, where the checkpoint is and the command that
resumes it, and exits with code 130.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import common_options, data_root_option, device_option, progress_for, resolve_names_first
from ticketlab.cli.render import console, density_table, round_table, trained_rounds, visible, warn_unhealthy
from ticketlab.cli.spec_options import spec_params, spec_values
from ticketlab.spec import MineSpec, flat_fields

#: ``ticketlab.data.CORRUPTIONS``, as the spec's field lists them (so that building the command never
#: imports torch; a test keeps the two equal).
CORRUPTION_CHOICES = tuple(flat_fields()["data_corruption"].field.metadata["choices"])
_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _miner_options() -> dict[str, tuple[click.Option, list[str]]]:
    """Option name -> (click option, miners that have it), from every registered miner's config.

    A field's type hint gives the option's type; a field with ``metadata["choices"]`` becomes a
    :class:`click.Choice` of the values of every miner that has the field (each miner's config
    still checks its own).
    """
    from ticketlab.miners import get_miner, list_miners

    fields: dict[str, tuple[dataclasses.Field, type]] = {}  # the first miner's field and type
    owners: dict[str, list[str]] = {}
    helps: dict[str, dict[str, list[str]]] = {}  # option -> help text -> the miners that give it
    defaults: dict[str, list[tuple[str, Any]]] = {}
    choices: dict[str, list[str]] = {}
    for name in list_miners():
        cls = get_miner(name)
        hints = typing.get_type_hints(cls.Config)
        for f in dataclasses.fields(cls.Config):
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.name not in fields:
                typ = hints.get(f.name, str)
                if typing.get_origin(typ) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
                    typ = next(a for a in typing.get_args(typ) if a is not type(None))
                fields[f.name] = (f, typ)
            owners.setdefault(f.name, []).append(name)
            helps.setdefault(f.name, {}).setdefault(f.metadata.get("help", ""), []).append(name)
            defaults.setdefault(f.name, []).append((name, default))
            if "choices" in f.metadata:
                seen = choices.setdefault(f.name, [])
                seen += [str(c) for c in f.metadata["choices"] if str(c) not in seen]
    options: dict[str, tuple[click.Option, list[str]]] = {}
    for key, (f, typ) in fields.items():
        dashed = key.replace("_", "-")
        # one help per text: [the miners that give it] text; ... (e.g. --weights, whose values differ)
        help_text = "; ".join(f"[{', '.join(ms)}] {h}".strip() for h, ms in helps[key].items())
        help_text += _defaults_text(defaults[key])
        if typ is bool:
            opt = click.Option([f"--{dashed}/--no-{dashed}", key], default=None, help=help_text)
        elif key in choices:  # a long list goes into the help text, under a short metavar
            long = len("|".join(choices[key])) > 40
            opt = click.Option([f"--{dashed}", key], type=click.Choice(choices[key]), default=None,
                               metavar=key.upper() if long else None,
                               help=help_text + (f"  [choices: {', '.join(choices[key])}]" if long else ""))
        else:
            opt = click.Option([f"--{dashed}", key], type=typ if typ in (int, float) else str, default=None,
                               help=help_text)
        options[key] = (opt, owners[key])
    from ticketlab.deprecation import old_option_names

    for name in list_miners():  # an option's old name (docs/glossary.md): hidden, it warns and still works
        for old, new in old_option_names(name).items():
            if new in options and name in options[new][1]:
                hidden = click.Option([f"--{old.replace('_', '-')}", old], default=None, hidden=True,
                                      type=options[new][0].type, help=f"Old name of --{new.replace('_', '-')}.")
                options.setdefault(old, (hidden, []))[1].append(name)
    return options


def _defaults_text(defaults: list[tuple[str, Any]]) -> str:
    """`` [default: x]`` when every miner agrees, else each miner's default, e.g. for --precision."""
    shown = [(m, d) for m, d in defaults if d is not None and d != ""]
    if not shown:
        return ""
    values = {repr(d) for _, d in shown}
    if len(values) == 1 and len(shown) == len(defaults):
        return f"  [default: {shown[0][1]}]"
    return "  [default: " + ", ".join(f"{m} {d}" for m, d in shown) + "]"


def scope_help() -> str:
    """``--scope``'s help, from each registered miner's ``scopes`` (its default first).

    Example:
        >>> "supermask" in scope_help()
        True
    """
    from ticketlab.miners import get_miner, list_miners

    by_default: dict[str, list[str]] = {}
    for name in list_miners():
        scopes = get_miner(name).scopes
        by_default.setdefault(scopes[0], []).append(name + (" (its only scope)" if len(scopes) == 1 else ""))
    common = max(by_default, key=lambda s: len(by_default[s]))
    others = "; ".join(f"{s} for {', '.join(by_default[s])}" for s in sorted(by_default) if s != common)
    return ("Rank all prunable weights together (global), or each layer on its own (layer) "
            f"[default: {common}{'; ' + others if others else ''}].")


class MineCommand(click.Command):
    """``mine``: the spec's options (:mod:`ticketlab.cli.spec_options`, made from ``spec_cls``'s
    fields) and the hand-written run-time ones, then the miners' options, added on first use."""

    def __init__(self, *args: Any, spec_cls: type = MineSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec_cls = spec_cls
        self.run_params = list(self.params)  # the hand-written options (make_command reuses them)
        params = spec_params(spec_cls)
        at = next((i + 1 for i, p in enumerate(params) if p.name == "density"), 0)
        sparsity = [p for p in self.params if p.name == "sparsity"]  # density's other spelling, next to it
        self.params = params[:at] + sparsity + params[at:] + [p for p in self.params if p.name != "sparsity"]
        self._extra: dict[str, tuple[click.Option, list[str]]] | None = None

    def extra(self) -> dict[str, tuple[click.Option, list[str]]]:
        if self._extra is None:
            extra = _miner_options()
            fixed = {p.name for p in self.params}
            clash = sorted(fixed & set(extra))
            if clash:
                raise RuntimeError(f"miner option '{clash[0]}' clashes with a mine option")
            self._extra = extra
            scope = next((p for p in self.params if p.name == "scope"), None)
            if isinstance(scope, click.Option):
                scope.help = scope_help()
        return self._extra

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return params[:-1] + [o for o, _ in self.extra().values()] + params[-1:]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # names first: a typo is one line before the miner options (and torch) are loaded
        return super().parse_args(ctx, resolve_names_first(ctx, args, NAME_OPTIONS))


#: The options of ``mine`` that name a registry entry, checked (and variants such as ``SynFlow``
#: accepted) before torch is imported.
NAME_OPTIONS = {"-m": "miners", "--method": "miners", "--model": "models", "--dataset": "datasets"}


# Only the run-time options (spec.RUN_OPTIONS, and how the result is shown) are written here; every
# option that sets the run (method, model, density, rounds, ...) comes from the spec's fields.
@click.command("mine", cls=MineCommand)
@click.option("--sparsity", type=float, default=None, help="Fraction of weights removed, in [0, 1) (1 - density).")
@device_option
@data_root_option()
@click.option("--download", is_flag=True, default=False, help="Download the data set if it is missing.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ticket file to write [default: <method>_<model>_<dataset>_s<seed>.h5].")
@click.option("--no-weights", is_flag=True, default=False, help="Do not store weight snapshots in the ticket.")
@click.option("--save-rounds", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write every round's ticket to this folder (round_00.h5 = before pruning, round_01.h5, ...).")
@click.option("--resume", is_flag=True, default=False,
              help="Continue an interrupted run from its checkpoint <output>.ckpt (same command otherwise).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON.")
@common_options
@click.pass_context
def command(ctx: click.Context, output: Path | None, no_weights: bool, as_json: bool, save_rounds: Path | None,
            resume: bool, sparsity: float | None, device: str, data_root: Path | None, download: bool,
            **kwargs: Any) -> None:
    """Find a ticket with one method and write it to an HDF5 file.

    \b
    ticketlab mine --method synflow -o a.h5
    ticketlab mine --method magnitude --model gcn --dataset cora --data-root DIR --sparsity 0.8
    ticketlab mine --method imp --rounds 5 --reset rewind:50 --save-rounds rounds/ -o imp.h5
    ticketlab mine --method gem_miner --density 0.05 -o gem.h5   # also edge_popup, supermask_learned
    """
    from ticketlab.checkpoint import checkpoint_for
    from ticketlab.errors import ConfigError
    from ticketlab.fileformat import save
    from ticketlab.mining import mine

    spec_cls = ctx.command.spec_cls  # type: ignore[attr-defined]
    values = spec_values(spec_cls, kwargs)  # the spec's fields; the miners' options are left
    method = values.pop("method")
    extra = ctx.command.extra()  # type: ignore[attr-defined]
    miner_config: dict[str, Any] = {}
    for name, (opt, owners) in extra.items():
        value = kwargs.pop(name)
        if value is None:
            continue
        if method not in owners:
            raise ConfigError(f"option {opt.opts[0]} belongs to {', '.join(owners)}, not to method '{method}'")
        miner_config[name] = value
    from ticketlab.cli.common import renamed_value
    from ticketlab.deprecation import old_option_names

    for old, new in old_option_names(method).items():
        if old in miner_config:
            miner_config[new] = renamed_value(f"--{old.replace('_', '-')}", f"--{new.replace('_', '-')}",
                                              miner_config.pop(old), miner_config.get(new))
    spec = spec_cls.from_flat(method, miner_config=miner_config, sparsity=sparsity, **values)
    if output is None:
        output = Path(f"{method}_{spec.net.model}_{spec.net.dataset}_s{spec.seed}.h5")
    if not output.parent.exists():  # fail before the work, not after it
        raise ConfigError(f"cannot write '{output}': folder '{output.parent}' does not exist")
    if save_rounds is not None:
        if not save_rounds.parent.exists():
            raise ConfigError(f"cannot save rounds to '{save_rounds}': folder '{save_rounds.parent}' does not exist")
        save_rounds.mkdir(exist_ok=True)
    checkpoint = checkpoint_for(method, output, resume)  # the rule study run follows too
    if resume and checkpoint is not None and not checkpoint.exists():
        click.echo(f"note: no checkpoint '{checkpoint}' to resume; starting from the beginning", err=True)

    try:
        with progress_for(ctx) as progress:
            ticket = mine(spec, device=device, data_root=data_root, download=download, omit_weights=no_weights,
                          checkpoint=checkpoint, resume=resume, save_rounds=save_rounds, progress=progress)
        path = save(ticket, output)  # atomic: interrupted, it leaves no torn ticket (and the checkpoint stays)
    except KeyboardInterrupt:  # Ctrl-C: say what is kept and how to go on, instead of click's "Aborted!"
        click.echo(interrupted_message(checkpoint, ctx.find_root().meta.get("ticketlab.argv")), err=True)
        ctx.exit(130)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # the ticket is safely written: the run is finished
    warn_unhealthy(path, ticket.provenance.get("health"))  # one line on stderr: collapse, dead classes, chance
    if as_json:
        import json

        click.echo(json.dumps(_summary(ticket, path), indent=2))
        return
    out = console()
    out.print(f"{method} ticket for {visible(ticket.provenance['model'])} on "
              f"{visible(ticket.provenance['dataset'])}: kept {ticket.kept:,} of {ticket.total:,} "
              f"weights (density {ticket.density:.4g}) -> {visible(path)}")
    out.print(density_table(ticket.layer_kept(), {n: m.size for n, m in ticket.masks.items()}))
    corrupted = ticket.provenance.get("data_corruption")
    if corrupted:
        out.print(f"mined on a corrupted training split: {corrupted['kind']} (seed {corrupted['seed']}); "
                  "validation and test are the real data")
    if "resumed_after_round" in ticket.provenance:
        out.print(f"resumed after round {ticket.provenance['resumed_after_round']} from the checkpoint")
    rows = trained_rounds(ticket.history)
    if len(rows) > 1:
        out.print(round_table(rows))
    untrained = [r for r in ticket.history if "untrained_test_accuracy" in r]
    for row in ticket.history:
        if len(rows) > 1 and row.get("stage") == "dense":
            continue
        if row.get("stage") in ("dense", "ticket") and "test_accuracy" in row:
            label = "dense network" if row["stage"] == "dense" else "ticket"
            where = f" (density {row['density']:.4g})" if "density" in row else ""
            out.print(f"test accuracy of the trained {label}{where}: {row['test_accuracy']:.4f}")
        elif "untrained_test_accuracy" in row:  # learned masks: the method's own mask, then the ticket's
            if row.get("stage") == "round":
                own = any(r.get("stage") != "round" and _same_untrained(r, row) for r in untrained)
                label = "ticket, which is the method's own mask" if own else "ticket"
            elif any(_same_untrained(row, r) for r in untrained if r.get("stage") == "round"):
                continue  # the ticket is the method's own mask: one line says both
            else:
                label = f"{row['stage']} (the method's own mask)"
            out.print(f"untrained test accuracy of the {label} (density {row['density']:.4g}): "
                      f"{row['untrained_test_accuracy']:.4f}")
    sweep = [r for r in ticket.history if r.get("stage") == "sweep"]
    chosen = [r for r in sweep if r.get("selected")]
    if chosen:  # the supermask sweep: which point was kept, and why
        r = chosen[0]
        at = f"threshold {r['threshold']:.4g}, " if "threshold" in r else ""
        out.print(f"sweep of {len(sweep)} untrained masks: kept the best on validation ({at}density "
                  f"{r['density']:.4g}): val accuracy {r['val_accuracy']:.4f} (test {r['test_accuracy']:.4f}, "
                  "reported only)")


def make_command(spec_cls: type = MineSpec) -> MineCommand:
    """``mine`` with the options of ``spec_cls``'s fields: a spec with a field more is a command with
    an option more (e.g. a subclass that adds a field to a part).

    Example:
        >>> sorted(p.name for p in make_command().params) == sorted(p.name for p in command.params)
        True
    """
    return MineCommand(command.name, callback=command.callback, params=list(command.run_params),  # type: ignore[attr-defined]
                       help=command.help, spec_cls=spec_cls)


def _same_untrained(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two history rows report the same untrained mask: same density, kept count and
    untrained accuracies (a learned-mask miner's own mask that is the ticket)."""
    keys = ("density", "kept", "untrained_val_accuracy", "untrained_test_accuracy")
    return all(a.get(k) == b.get(k) for k in keys)


def interrupted_message(checkpoint: Path | None, argv: list[str] | None) -> str:
    """The one line ``ticketlab mine`` prints when Ctrl-C stops a run: where the finished rounds
    are and the command that continues them (``argv``: the command's arguments, if known).

    Example:
        >>> interrupted_message(None, None)
        'interrupted: nothing was saved (this method writes a checkpoint only with --resume)'
    """
    import shlex

    if checkpoint is None:
        return "interrupted: nothing was saved (this method writes a checkpoint only with --resume)"
    if not checkpoint.exists():
        return "interrupted before the first round finished: there is no checkpoint yet; run the command again"
    again = "the same command with --resume"
    if argv is not None:
        again = shlex.join(["ticketlab", *argv, *([] if "--resume" in argv else ["--resume"])])
    return visible(f"interrupted: the finished rounds are in the checkpoint '{checkpoint}'; continue with: {again}")




def _summary(ticket: Any, path: Path) -> dict[str, Any]:
    prov = ticket.provenance
    return {
        "path": str(path),
        "method": prov["method"], "model": prov["model"], "dataset": prov["dataset"], "seed": prov["seed"],
        "kept": ticket.kept, "total": ticket.total, "density": ticket.density,
        "layers": {n: {"kept": k, "total": int(ticket.masks[n].size)} for n, k in ticket.layer_kept().items()},
        "collapsed": prov.get("collapsed", False),
        "health": prov.get("health"),
        "data_corruption": prov.get("data_corruption"),
        "test_accuracy": prov.get("test_accuracy"),
        "history": [r for r in ticket.history if r.get("stage") != "round" or "test_accuracy" in r],
    }
