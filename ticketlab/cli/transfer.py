"""``ticketlab transfer``: move a ticket to another depth of the CIFAR ResNet family (thin over
:func:`ticketlab.elastic.transfer`, Chen et al. 2021's Elastic Ticket Transformation)."""

from __future__ import annotations

from pathlib import Path

import click

from ticketlab.cli.common import common_options
from ticketlab.cli.render import console, visible


@click.command("transfer")
@click.argument("ticket", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to-model", "to_model", required=True, metavar="MODEL",
              help="Target depth: resnet20, resnet32, resnet44 or resnet56.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ticket file to write (atomically; never the source).")
@click.option("--mapping", default=None, metavar="SRC:TGT,..;..",
              help="Explicit block map of every stage in the paper code's syntax, e.g. 0:0;1:1,2;2:3,4 "
                   "[default: the Elastic LTH rule: replicate blocks in place / keep evenly spaced ones].")
@click.option("--masks-only", is_flag=True, default=False,
              help="Move the masks only; the target then trains from its own init (default: the init weights too).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the summary as JSON.")
@common_options
def command(ticket: Path, to_model: str, output: Path, mapping: str | None, masks_only: bool, as_json: bool) -> None:
    """Stretch or squeeze a ResNet ticket to another depth (Chen et al. 2021, Elastic LTH).

    Stem, head and each stage's block 0 are copied; the other blocks of a stage are replicated
    (stretch) or dropped (squeeze) by the paper's rule. The provenance records the rule, every
    target block's source block and the exact densities.

    \b
    ticketlab transfer imp_resnet20.h5 --to-model resnet32 -o imp_resnet32.h5
    ticketlab transfer imp_resnet56.h5 --to-model resnet20 -o squeezed.h5
    ticketlab transfer a.h5 --to-model resnet32 --mapping "0:0;1:1,3;2:2,4" -o b.h5
    """
    from ticketlab.elastic import transfer
    from ticketlab.errors import ConfigError
    from ticketlab.fileformat import save

    if output.resolve() == ticket.resolve():
        raise ConfigError(f"the transferred ticket would replace its source '{ticket}': choose another -o")
    if not output.parent.exists():  # fail before the work, not after it
        raise ConfigError(f"cannot write '{output}': folder '{output.parent}' does not exist")
    moved = transfer(ticket, to_model, mapping=mapping, weights=not masks_only)
    path = save(moved, output)
    rec = moved.provenance["transforms"][-1]
    summary = {"path": str(path), "source": str(ticket), **{k: rec[k] for k in (
        "from_model", "to_model", "rule", "direction", "blocks_per_stage", "source_kept", "source_total",
        "source_density", "kept", "total", "density", "weights", "blocks")}}
    if as_json:
        import json

        click.echo(json.dumps(summary, indent=2))
        return
    n_src, n_dst = rec["blocks_per_stage"]
    stage = " ".join(f"{j}<-{int(rec['blocks'][f'blocks.{j}'].split('.')[1])}" for j in range(n_dst))
    out = console()
    out.print(f"{visible(ticket)} ({rec['from_model']}, {rec['source_kept']:,} of {rec['source_total']:,} weights, "
              f"density {rec['source_density']:.6g}) -> {rec['to_model']}: {rec['kept']:,} of {rec['total']:,} "
              f"weights, density {rec['density']:.6g}")
    out.print(f"rule {rec['rule']} ({rec['direction']}, {n_src} -> {n_dst} blocks per stage); target<-source "
              f"block in every stage: {stage}; stem and head copied; weights: {rec['weights']}")
    out.print(f"written to {visible(path)}")
