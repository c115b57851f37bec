"""``ticketlab mine``: find a ticket with one method and save it.

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

from ticketlab.cli.common import (
    SEED, common_options, data_root_option, device_option, init_options, parse_train_options, progress_for,
    resolve_names_first, train_options,
)
from ticketlab.cli.render import console, density_table, round_table, trained_rounds, visible, warn_unhealthy

#: ``ticketlab.data.CORRUPTIONS`` (repeated so that building the command never imports torch; a
#: test keeps the two equal).
CORRUPTION_CHOICES = ("random_labels", "random_pixels")
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
            scope = next((p for p in self.params if p.name == "scope"), None)
            if isinstance(scope, click.Option):
                scope.help = scope_help()
        return self._extra  # type: ignore[return-value]

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return params[:-1] + [o for o, _ in self.extra().values()] + params[-1:]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # names first: a typo is one line before the miner options (and torch) are loaded
        return super().parse_args(ctx, resolve_names_first(ctx, args, NAME_OPTIONS))


#: The options of ``mine`` that name a registry entry, checked (and variants such as ``SynFlow``
#: accepted) before torch is imported.
NAME_OPTIONS = {"-m": "miners", "--method": "miners", "--model": "models", "--dataset": "datasets"}


@click.command("mine", cls=MineCommand)
@click.option("-m", "--method", required=True, help="Pruning method (see `ticketlab list miners`).")
@click.option("--model", default="lenet_300_100", show_default=True, help="Model (see `ticketlab list models`).")
@click.option("--dataset", default="digits", show_default=True, help="Data set (see `ticketlab list datasets`).")
@click.option("--sparsity", type=float, default=None, help="Fraction of weights removed, in [0, 1).")
@click.option("--density", type=float, default=None, help="Fraction of weights kept, in (0, 1]. Default when neither is given: 0.1 (imp: (1 - rate)^rounds).")
@click.option("--scope", type=click.Choice(["global", "layer"]), default=None,
              help="Rank all prunable weights together, or each layer on its own [default: each method's "
                   "own; filled in from the miners when the command is used].")
@click.option("--count-rule", type=click.Choice(["exact", "threshold"]), default="exact", show_default=True,
              help="Weights kept per round: exact (round(d*N), ties by a seeded draw) or threshold (Synaptic-Flow's "
                   "rule: prune every score <= the int((1-d)*N)-th smallest, ties included; usually one more kept "
                   "than exact). See docs/selection.md.")
@click.option("--rounds", type=int, default=None, help="Rounds of the exponential schedule density^(k/rounds) (default: the method's).")
@click.option("--schedule", "schedule_text", default=None, metavar="S1,S2,...",
              help="Explicit cumulative sparsities per round, e.g. 0.2,0.52,0.8 (replaces --rounds).")
@click.option("--rate-multiplier", "rate_multiplier_text", multiple=True, metavar="LAYER=FACTOR",
              help="Scale one layer's pruning rate per round (repeatable; LAYER: a parameter name, a pattern like "
                   "conv*, or output). output=0.5 prunes the output layer at half the rate, as Frankle & Carbin and "
                   "Zhou et al. do. The overall density is then what the layers add up to.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the initialisation, the method's draws and training.")
@device_option
@data_root_option()
@click.option("--download", is_flag=True, default=False, help="Download the data set if it is missing.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ticket file to write [default: <method>_<model>_<dataset>_s<seed>.h5].")
@train_options("Epochs of any training (the method's, and --train-ticket).")
@click.option("--track-masks", type=click.IntRange(min=1), default=None, metavar="EVERY",
              help="Every EVERY iterations of training (magnitude, imp; learned-mask miners: of their scores; supermask: "
                   "its criterion, with --density), the mask "
                   "magnitude pruning would give at the target density; the history gets mask_distance, the normalised Hamming distance to the previous "
                   "one (Early-Bird, You et al. 2020), and its chance value 2d(1-d) (mask_distance_chance).")
@click.option("--early-bird", type=click.FloatRange(min=0), default=None, metavar="EPS",
              help="With --track-masks: stop a training run once the last 5 tracked distances are all <= EPS "
                   "relative to chance (mask_distance / 2d(1-d) <= EPS); the provenance's early_bird_stops says "
                   "which runs stopped and when.")
@click.option("--train-ticket", is_flag=True, default=False, help="Rewind to the initial weights and train the ticket; report its accuracy.")
@click.option("--data-corruption", type=click.Choice(CORRUPTION_CHOICES), default=None,
              help="Mine on a corrupted training split (Su et al. 2020's check; methods that read data only): "
                   "labels permuted among the samples, or each sample's pixels permuted on its own. "
                   "Validation, test and --train-ticket use the real data.")
@init_options
@click.option("--prune-first-layer/--no-prune-first-layer", default=True, show_default=True, help="Prune the first prunable layer.")
@click.option("--prune-last-layer/--no-prune-last-layer", default=True, show_default=True, help="Prune the last prunable layer.")
@click.option("--no-weights", is_flag=True, default=False, help="Do not store weight snapshots in the ticket.")
@click.option("--save-rounds", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write every round's ticket to this folder (round_00.h5 = before pruning, round_01.h5, ...).")
@click.option("--resume", is_flag=True, default=False,
              help="Continue an interrupted run from its checkpoint <output>.ckpt (same command otherwise).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON.")
@common_options
@click.pass_context
def command(ctx: click.Context, method: str, output: Path | None, no_weights: bool, as_json: bool,
            schedule_text: str | None, rate_multiplier_text: tuple[str, ...], save_rounds: Path | None, resume: bool, train_option_text: tuple[str, ...],
            init: str | None, zero_bias: bool, **kwargs: Any) -> None:
    """Find a ticket with one method and write it to an HDF5 file.

    \b
    ticketlab mine --method synflow -o a.h5
    ticketlab mine --method magnitude --model gcn --dataset cora --data-root DIR --sparsity 0.8
    ticketlab mine --method imp --rounds 5 --reset rewind:50 --save-rounds rounds/ -o imp.h5
    ticketlab mine --method gem_miner --density 0.05 -o gem.h5   # also edge_popup, supermask_learned
    """
    from ticketlab.errors import ConfigError
    from ticketlab.fileformat import save
    from ticketlab.miners import get_miner
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
    from ticketlab.cli.common import renamed_value
    from ticketlab.deprecation import old_option_names

    for old, new in old_option_names(method).items():
        if old in miner_config:
            miner_config[new] = renamed_value(f"--{old.replace('_', '-')}", f"--{new.replace('_', '-')}",
                                              miner_config.pop(old), miner_config.get(new))
    schedule = _parse_schedule(schedule_text) if schedule_text is not None else None
    if rate_multiplier_text:
        from ticketlab.schedules import parse_multipliers

        kwargs["rate_multipliers"] = parse_multipliers(rate_multiplier_text)
    kwargs["train_options"] = parse_train_options(train_option_text)
    model_kwargs = {"init": init} if init is not None else {}
    if zero_bias:
        model_kwargs["zero_bias"] = True
    if output is None:
        output = Path(f"{method}_{kwargs['model']}_{kwargs['dataset']}_s{kwargs['seed']}.h5")
    if not output.parent.exists():  # fail before the work, not after it
        raise ConfigError(f"cannot write '{output}': folder '{output.parent}' does not exist")
    if save_rounds is not None:
        if not save_rounds.parent.exists():
            raise ConfigError(f"cannot save rounds to '{save_rounds}': folder '{save_rounds.parent}' does not exist")
        save_rounds.mkdir(exist_ok=True)
    checkpoint = checkpoint_path(output) if (get_miner(method).trains or resume) else None
    if resume and checkpoint is not None and not checkpoint.exists():
        click.echo(f"note: no checkpoint '{checkpoint}' to resume; starting from the beginning", err=True)

    try:
        with progress_for(ctx) as progress:
            ticket = mine(method, miner_config=miner_config, keep_weights=not no_weights, schedule=schedule,
                          model_kwargs=model_kwargs,
                          checkpoint=checkpoint, resume=resume, save_rounds=save_rounds, progress=progress, **kwargs)
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


def checkpoint_path(output: Path) -> Path:
    """Where ``ticketlab mine -o OUTPUT`` keeps its checkpoint: ``OUTPUT.ckpt`` (e.g. ``a.h5.ckpt``)."""
    return output.with_name(output.name + ".ckpt")


def _parse_schedule(text: str) -> list[float]:
    """Densities from ``--schedule``'s comma-separated cumulative sparsities."""
    from ticketlab.errors import ConfigError

    try:
        sparsities = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"option --schedule needs comma-separated sparsities like 0.2,0.52,0.8, got '{text}'") from None
    if not sparsities:
        raise ConfigError("option --schedule needs at least one sparsity")
    for sp in sparsities:
        if not 0.0 <= sp < 1.0:
            raise ConfigError(f"option --schedule sparsities must be in [0, 1), got {sp}")
    return [1.0 - sp for sp in sparsities]


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
