"""``ticketlab export``: a ticket's masks as a file other tools read (torch.nn.utils.prune, safetensors, npz)."""

from __future__ import annotations

from pathlib import Path

import click

from ticketlab.cli.common import common_options
from ticketlab.cli.render import console, visible

#: ``ticketlab.interop.FORMATS`` (repeated so that building the command imports nothing heavy; a
#: test keeps the two equal).
FORMAT_CHOICES = ("torch-prune", "safetensors", "npz")


@click.command("export")
@click.argument("ticket", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "fmt", type=click.Choice(FORMAT_CHOICES), required=True,
              help="torch-prune: a torch.save state dict of NAME_mask tensors (torch.nn.utils.prune's buffers); "
                   "safetensors: boolean tensors (needs the safetensors package); npz: numpy boolean arrays.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (replaced atomically).")
@common_options
def command(ticket: Path, fmt: str, output: Path) -> None:
    """Write a ticket's masks for other tools.

    Masks only: no weights, no provenance. Apply the torch-prune file's entries with
    torch.nn.utils.prune.custom_from_mask (docs/interop.md has the recipe; prune.identity then
    load_state_dict leaves the weights unmasked until the first forward pass).

    \b
    ticketlab export t.h5 --to torch-prune -o t_masks.pt
    ticketlab export t.h5 --to npz -o t_masks.npz
    """
    from ticketlab.fileformat import load
    from ticketlab.interop import export_ticket

    t = load(ticket, weights=False, scores=False, history=False)
    path = export_ticket(t, output, fmt)
    console().print(f"{visible(path)}: {len(t.masks)} masks, {t.kept:,} of {t.total:,} weights kept "
                    f"(density {t.density:.4g}), as {fmt}")
