"""``ticketlab import``: a ticket file from another tool's masks (torch state dict, open_lth mask.pth,
safetensors, npz)."""

from __future__ import annotations

from pathlib import Path

import click

from ticketlab.cli.common import common_options, data_root_option, name_option
from ticketlab.cli.render import console, density_table, visible
from ticketlab.interop.names import NAME_MAPS


_CONVENTIONS = {"*_mask": "*_mask names", "plain": "plain names", "open_lth PrunedModel": "open_lth PrunedModel mask_* buffers"}


@click.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ticket file to write (replaced atomically).")
@click.option("--model", default=None, callback=name_option("models"), help="Check the mask names and shapes against this model's parameters "
                                            "(with --dataset); the ticket then records its topology.")
@click.option("--dataset", default=None, callback=name_option("datasets"), help="The data set the model is built for (with --model).")
@click.option("--names", "name_map", type=click.Choice(sorted(NAME_MAPS)), default=None,
              help="Translate another tool's names to ticketlab's: open_lth = its mnist_lenet models "
                   "(fc_layers.K -> fc{K+1}, fc -> the last fc), for lenet_300_100 / mlp_200_30 on 28x28 data "
                   "(mnist, fashion_mnist, mnist5k).")
@click.option("--rename", "renames", multiple=True, metavar="FROM=TO",
              help="Rename a mask, or every mask under a module prefix (fc_layers.0=fc1); repeatable; "
                   "applied after --names, and overrides it.")
@click.option("--rename-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help='JSON object of renames, {"FROM": "TO", ...}; --rename options override it.')
@data_root_option("Folder with the data set's files, for data sets whose shape needs them (Cora, ...).")
@common_options
def command(source: Path, output: Path, model: str | None, dataset: str | None, name_map: str | None,
            renames: tuple[str, ...], rename_file: Path | None, data_root: Path | None) -> None:
    """Make a ticket file from another tool's mask file.

    The format (torch, safetensors, npz) is read from the file's contents, not its name.
    Names ending in _mask (torch.nn.utils.prune's buffers) are the masks, without the suffix;
    open_lth's PrunedModel buffers (mask_fc___weight) are masks under the parameter's name;
    otherwise every array is a mask under its own name (open_lth's mask.pth). Nothing is unpickled.

    \b
    ticketlab import pruned_state_dict.pt -o t.h5
    ticketlab import open_lth_level_3/mask.pth -o t.h5 --names open_lth --model lenet_300_100 --dataset mnist
    ticketlab import mask.pth -o t.h5 --rename fc_layers.0=fc1 --rename fc_layers.1=fc2 --rename fc=fc3
    """
    from ticketlab.fileformat import save
    from ticketlab.interop import import_masks
    from ticketlab.interop.names import parse_renames, read_rename_file

    mapping = {**(read_rename_file(rename_file) if rename_file else {}), **parse_renames(renames)}
    t = import_masks(source, model=model, dataset=dataset, data_root=data_root, rename=mapping, names=name_map)
    save(t, output)
    src = t.provenance["imported_from"]
    ignored = src.get("ignored_entries", 0)
    out = console()
    out.print(f"{visible(output)}: {len(t.masks)} masks from {visible(source)} ({src['format']}, "
              f"{_CONVENTIONS.get(src['convention'], src['convention'])}"
              f"{f', {ignored} other entries ignored' if ignored else ''}"
              f"{f', checked against {visible(model)} for {visible(dataset)}' if model else ''})")
    out.print(density_table(t.layer_kept(), {n: m.size for n, m in t.masks.items()}))
