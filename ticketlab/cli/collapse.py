"""``ticketlab collapse``: each method's critical compression (largest 10^x without an empty layer).

Thin layer over :func:`ticketlab.collapse.critical_compression`; ``--output`` writes the Markdown
page (``docs/results/layer_collapse.md``) including the command that regenerates it.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from ticketlab.cli.common import SEED, common_options, data_root_option, device_option, init_options, name_option, progress_for

_DEFAULT_METHODS = "random,magnitude_init,snip,grasp,synflow"


def _rounds(values: tuple[str, ...]) -> dict[str, int]:
    from ticketlab.errors import ConfigError

    out: dict[str, int] = {}
    for v in values:
        name, sep, num = v.partition("=")
        if not sep or not num.strip().lstrip("-").isdigit():
            raise ConfigError(f"--rounds takes METHOD=N (e.g. synflow=100), got '{v}'")
        out[name.strip()] = int(num)
    return out


@click.command("collapse")
@click.option("--model", default="vgg16", show_default=True, callback=name_option("models"),
              help="Model (see `ticketlab list models`).")
@click.option("--dataset", default="cifar100", show_default=True, callback=name_option("datasets"),
              help="Data set whose shape the model is built for.")
@click.option("--methods", default=_DEFAULT_METHODS, show_default=True, callback=name_option("miners"),
              help="Comma-separated methods that do not train.")
@data_root_option("Folder with the data set's files; without it SNIP/GraSP score seeded random images with random labels.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the model, the methods' draws and the random images.")
@click.option("--step", type=float, default=0.25, show_default=True, help="Grid step of x (log10 compression).")
@click.option("--search", type=click.Choice(["bisect", "grid"]), default="bisect", show_default=True,
              help="Probe the top of the grid then bisect (assumes collapse is monotone), or probe every point.")
@click.option("--rounds", "rounds", multiple=True, metavar="METHOD=N",
              help="Rounds of a method (default: its own, 100 for synflow); repeatable.")
@click.option("--samples-per-class", type=int, default=10, show_default=True, help="Scoring samples per class (SNIP, GraSP).")
@init_options
@device_option
@click.option("--skip-first-layer", is_flag=True, default=False, help="Leave the first prunable layer dense.")
@click.option("--skip-last-layer", is_flag=True, default=False, help="Leave the last prunable layer dense.")
@click.option("--prune-first-layer/--no-prune-first-layer", "prune_first_layer", default=None, hidden=True)
@click.option("--prune-last-layer/--no-prune-last-layer", "prune_last_layer", default=None, hidden=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results as Markdown (with the command that regenerates them) to this file.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of each method's per-layer density at its critical compression (linked from --output).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the results as JSON.")
@common_options
@click.pass_context
def command(ctx: click.Context, methods: str, rounds: tuple[str, ...], output: Path | None, plot: Path | None,
            as_json: bool, **kwargs: Any) -> None:
    """Find each method's critical compression at initialization (layer collapse, Tanaka et al. 2020).

    \b
    ticketlab collapse --model vgg16 --dataset cifar100 --init kaiming_normal --zero-bias --plot p.png -o r.md
    ticketlab collapse --model vgg16 --dataset cifar100 --plot collapse.png
    ticketlab collapse --model resnet20 --dataset cifar10 --methods random,synflow --search grid
    """
    from ticketlab.collapse import critical_compression, plot_layer_densities, write_markdown
    from ticketlab.errors import ConfigError

    names = [m.strip() for m in methods.split(",") if m.strip()]
    per_method = _rounds(rounds)
    for old, new in (("prune_first_layer", "skip_first_layer"), ("prune_last_layer", "skip_last_layer")):
        value = kwargs.pop(old)
        if value is not None:  # the old spelling: --no-prune-first-layer is --skip-first-layer
            click.echo(f"warning: --{'' if value else 'no-'}{old.replace('_', '-')} is deprecated: use "
                       f"--{new.replace('_', '-')} (docs/glossary.md)", err=True)
            kwargs[new] = kwargs[new] or not value
    for target in (output, plot):  # fail before the work, not after it
        if target is not None and not target.parent.is_dir():
            raise ConfigError(f"cannot write '{target}': folder '{target.parent}' does not exist")
    with progress_for(ctx) as progress:
        study = critical_compression(kwargs.pop("model"), names, rounds=per_method, progress=progress, **kwargs)
    if plot is not None:
        plot_layer_densities(study, plot)
    if output is not None:
        write_markdown(study, output, _command_line(names, per_method, output, plot, kwargs, study.model), plot)
    if as_json:
        import json

        click.echo(json.dumps(study.to_dict(), indent=2))
        return
    _render(study, output, plot)


def _command_line(methods: list[str], rounds: dict[str, int], output: Path, plot: Path | None,
                  opts: dict[str, Any], model: str) -> str:
    """The command that regenerates the file: every option that differs from its default."""
    parts = ["ticketlab", "collapse", "--model", model, "--dataset", opts["dataset"]]
    if ",".join(methods) != _DEFAULT_METHODS:
        parts += ["--methods", ",".join(methods)]
    defaults = {"seed": 0, "step": 0.25, "search": "bisect", "samples_per_class": 10, "device": "auto"}
    for key, default in defaults.items():
        if opts[key] != default:
            parts += [f"--{key.replace('_', '-')}", str(opts[key])]
    if opts["init"] is not None:
        parts += ["--init", opts["init"]]
    if opts["zero_bias"]:
        parts.append("--zero-bias")
    if opts["data_root"] is not None:
        parts += ["--data-root", str(opts["data_root"])]
    for m, n in rounds.items():
        parts += ["--rounds", f"{m}={n}"]
    for layer in ("first", "last"):
        if opts[f"skip_{layer}_layer"]:
            parts.append(f"--skip-{layer}-layer")
    if plot is not None:
        parts += ["--plot", str(plot)]
    parts += ["--output", str(output)]
    return shlex.join(parts)


def _render(study: Any, output: Path | None, plot: Path | None = None) -> None:
    from rich.table import Table

    from ticketlab.cli.render import console
    from ticketlab.collapse import TANAKA_VGG16_CIFAR100

    out = console()
    out.print(f"{study.model} for {study.dataset}: {study.total:,} prunable weights in "
              f"{len(study.layers)} layers; grid step {study.step} up to x = {study.max_x} ({study.search})")
    init = f"prunable weights re-initialised with {study.init}" if study.init else "the model's own initialisation"
    out.print(f"initialisation: {init}; biases {'set to zero' if study.zero_bias else 'as initialised'}")
    out.print(f"data for the data-driven methods: {study.data_source}")
    ref = (study.model, study.dataset) == ("vgg16", "cifar100")
    if ref and (study.init, study.zero_bias) != ("kaiming_normal", True):
        out.print("note: Tanaka et al.'s models use Kaiming-normal weights and zero biases; add "
                  "--init kaiming_normal --zero-bias to compare with their column")
    table = Table(box=None, pad_edge=False)
    for col in ["method", "rounds", "critical x", "density", "probes", "seconds"] + (["Tanaka et al."] if ref else []):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in study.results:
        row = [r.method, str(r.rounds), f"{r.critical_x}", f"{r.critical_density:.3g}", str(len(r.probes)),
               f"{r.seconds:.1f}"]
        if ref:
            row.append(str(TANAKA_VGG16_CIFAR100.get(r.method, "-")))
        table.add_row(*row)
    out.print(table)
    for path in (output, plot):
        if path is not None:
            out.print(f"written to {path}")
