"""Interop with the PyTorch ecosystem: masks to and from ``torch.nn.utils.prune`` and other tools' files.

* :func:`apply_to` / :func:`from_module` (``modules.py``, torch): a ticket on a live model as
  ``torch.nn.utils.prune``'s ``weight_orig`` / ``weight_mask`` pair, and back. Also
  :meth:`Ticket.apply_to <ticketlab.ticket.Ticket.apply_to>` and :meth:`Ticket.from_module`.
* :func:`export_ticket` / :func:`import_masks` (``convert.py``): ticket files to and from mask
  files (``ticketlab export`` / ``ticketlab import``).
* :func:`read_masks` / :func:`write_masks` (``formats.py``): the file formats (torch state dicts
  with ``*_mask`` tensors, open_lth's ``mask.pth`` and ``PrunedModel`` state dicts, safetensors,
  npz), read as untrusted input.
* :func:`~ticketlab.interop.names.rename` (``names.py``): other tools' parameter names to
  ticketlab's (``ticketlab import --rename``, ``--rename-file``, ``--names open_lth``).

Importing this package does not import torch; ``docs/interop.md`` describes the formats.

Example:
    >>> import ticketlab.interop
    >>> ticketlab.interop.FORMATS
    ('torch-prune', 'safetensors', 'npz')
"""

from __future__ import annotations

from typing import Any

from ticketlab.interop.convert import export_ticket, import_masks
from ticketlab.interop.formats import FORMATS, MaskFile, read_masks, write_masks

__all__ = ["FORMATS", "MaskFile", "apply_to", "export_ticket", "from_module", "import_masks", "read_masks",
           "write_masks"]


def apply_to(ticket: Any, model: Any, *, weights: str | None = None) -> Any:
    """Prune ``model`` in place with ``ticket``'s masks; see :func:`ticketlab.interop.modules.apply_to`."""
    from ticketlab.interop.modules import apply_to as _apply_to

    return _apply_to(ticket, model, weights=weights)


def from_module(model: Any, *, zeros_as_pruned: bool = False, provenance: dict[str, Any] | None = None) -> Any:
    """The ticket of a pruned model; see :func:`ticketlab.interop.modules.from_module`."""
    from ticketlab.interop.modules import from_module as _from_module

    return _from_module(model, zeros_as_pruned=zeros_as_pruned, provenance=provenance)
