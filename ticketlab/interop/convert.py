"""Tickets to and from other tools' mask files: :func:`export_ticket` and :func:`import_masks`.

Exporting writes a ticket's masks only (no weights, no provenance); importing makes a ticket
whose provenance records where the masks came from (file name, SHA-256, format, naming
convention) and, with a model and data set, the model's names, shapes and topology. Neither
imports torch unless the file is a torch file or a model is given.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> t = Ticket(masks={"fc.weight": np.array([[True, False, True]])})
    >>> path = export_ticket(t, pathlib.Path(tempfile.mkdtemp()) / "m.npz", "npz")
    >>> back = import_masks(path)
    >>> back.masks["fc.weight"].tolist(), back.provenance["imported_from"]["format"]
    ([[True, False, True]], 'npz')
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ticketlab._version import __version__
from ticketlab.errors import ConfigError, IncompatibleError
from ticketlab.interop.formats import FORMATS, read_masks, write_masks
from ticketlab.ticket import Ticket


def base_provenance(masks: Mapping[str, np.ndarray], source: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance of a ticket made from foreign masks: method ``imported``, counts, source.

    Example:
        >>> base_provenance({"w": np.array([True, False])}, {"format": "npz"})["achieved_density"]
        0.5
    """
    kept = sum(int(np.count_nonzero(m)) for m in masks.values())
    total = sum(int(m.size) for m in masks.values())
    return {
        "method": "imported",
        "imported_from": dict(source),
        "achieved_density": kept / total if total else 0.0,
        "kept": kept,
        "total": total,
        "layer_kept": {n: int(np.count_nonzero(m)) for n, m in masks.items()},
        "collapsed": any(not m.any() for m in masks.values()),
        "ticketlab_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def export_ticket(ticket: Ticket | str | os.PathLike[str], path: str | os.PathLike[str], fmt: str) -> Path:
    """Write the masks of ``ticket`` (a :class:`Ticket` or a ticket file) to ``path`` as ``fmt``.

    ``fmt`` is one of ``torch-prune``, ``safetensors``, ``npz``
    (:func:`ticketlab.interop.formats.write_masks` says what each holds). The write is atomic.

    Example:
        >>> import tempfile, pathlib
        >>> t = Ticket(masks={"w": np.array([True, False])})
        >>> export_ticket(t, pathlib.Path(tempfile.mkdtemp()) / "w.npz", "npz").name
        'w.npz'
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown mask format '{fmt}' (choose from: {', '.join(FORMATS)})")
    if not isinstance(ticket, Ticket):
        from ticketlab.fileformat import load

        ticket = load(ticket, weights=False, scores=False, history=False)
    meta = {"written_by": f"ticketlab {__version__}"}
    return write_masks(ticket.masks, path, fmt, metadata=meta)


def import_masks(path: str | os.PathLike[str], *, model: str | None = None, dataset: str | None = None,
                 data_root: str | os.PathLike[str] | None = None, model_config: Mapping[str, Any] | None = None,
                 max_params: int | None = None, rename: Mapping[str, str] | None = None,
                 names: str | None = None) -> Ticket:
    """A ticket of the masks in a torch, safetensors or npz file (see :mod:`ticketlab.interop.formats`).

    With ``model`` and ``dataset`` (registry names; ``model_config`` are the model's options)
    the masks are checked against the model's ``named_parameters()``: the first mask that names
    no parameter, or has another shape, is a one-line
    :class:`~ticketlab.errors.IncompatibleError`. The ticket's masks then follow the model's
    parameter order and its provenance records the model, data set and topology. A data set
    whose shape is not known without its files is read from ``data_root``.

    ``names`` (a key of :data:`ticketlab.interop.names.NAME_MAPS`, e.g. ``"open_lth"``) and
    ``rename`` (``{FROM: TO}``, a name or a module prefix; it overrides the built-in map) rename
    the masks first (:func:`ticketlab.interop.names.rename`); the provenance records the renames.

    Example:
        >>> import tempfile, pathlib
        >>> t = Ticket(masks={"fc1.weight": np.ones((300, 64), bool)})
        >>> path = export_ticket(t, pathlib.Path(tempfile.mkdtemp()) / "m.npz", "npz")
        >>> back = import_masks(path, model="lenet_300_100", dataset="digits")
        >>> back.provenance["model"], back.names
        ('lenet_300_100', ['fc1.weight'])
    """
    if (model is None) != (dataset is None):
        raise ConfigError("model and dataset go together: give both or neither",
                          cli="--model and --dataset go together: give both or neither")
    if model is None and model_config:
        raise ConfigError("model_config needs a model")
    from ticketlab.interop.names import NAME_MAPS, rename as _rename

    if names is not None and names not in NAME_MAPS:
        raise ConfigError(f"unknown name map '{names}' (choose from: {', '.join(NAME_MAPS)})")
    found = read_masks(path, max_params=max_params)
    mapping = {**(NAME_MAPS[names](found.masks) if names else {}), **dict(rename or {})}
    masks = _rename(found.masks, mapping) if mapping else found.masks
    extra: dict[str, Any] = {}
    if model is not None:
        masks, extra = _on_model(Path(path), masks, model, str(dataset), data_root, dict(model_config or {}),
                                 renamed=bool(mapping))
    source: dict[str, Any] = {"file": Path(path).name, "sha256": found.sha256, "format": found.format,
                              "convention": found.convention}
    if names:
        source["name_map"] = names
    if mapping:
        source["renamed"] = mapping
    if found.ignored:
        source["ignored_entries"] = found.ignored
    return Ticket(masks=masks, provenance={**base_provenance(masks, source), **extra})


def _on_model(path: Path, masks: dict[str, np.ndarray], model: str, dataset: str,
              data_root: str | os.PathLike[str] | None, model_config: dict[str, Any], *, renamed: bool = False
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``masks`` in the model's parameter order once their names and shapes fit it, and the
    provenance entries of the model."""
    import torch

    from ticketlab.data import get_dataset_info, load_dataset
    from ticketlab.masking import check_masks
    from ticketlab.models import create_model, model_topology

    spec = get_dataset_info(dataset).spec or load_dataset(dataset, root=data_root).spec
    net = create_model(model, spec, seed=0, **model_config)
    params = dict(net.named_parameters())
    try:
        check_masks({n: torch.from_numpy(m) for n, m in masks.items()}, params)
    except IncompatibleError as exc:
        hint = _open_lth_hint(masks, spec, renamed)
        text = f"'{path.name}' does not fit model '{model}' for '{dataset}': {exc}"
        raise IncompatibleError(text + hint.format(api="names='open_lth'"),
                                cli=text + hint.format(api="--names open_lth")) from None
    ordered = {n: masks[n] for n in params if n in masks}
    extra = {"model": model, "model_config": model_config, "dataset": dataset,
             "data_spec": dataclasses.asdict(spec), "topology": model_topology(net, spec)}
    return ordered, extra


def _open_lth_hint(masks: Mapping[str, np.ndarray], spec: Any, renamed: bool) -> str:
    """Advice when open_lth's LeNet masks do not fit: the name map, or a 784-input data set."""
    import math

    from ticketlab.interop.names import open_lth_map

    try:
        open_lth_map(masks)
        if not renamed:
            return ("; these are open_lth's mnist_lenet names: {api} maps them to ticketlab's "
                    "fc1, fc2, ... (lenet_300_100, mlp_200_30)")
    except ConfigError:
        pass
    first = masks.get("fc1.weight", masks.get("fc_layers.0.weight"))
    inputs = math.prod(spec.input_shape)
    if first is not None and first.ndim == 2 and first.shape[1] == 784 and inputs != 784:
        return (f"; the masks take 784 inputs (open_lth's mnist_lenet: 28x28 images) and this data set "
                f"{inputs}: use a 28x28 data set (mnist, fashion_mnist, mnist5k)")
    return ""
