"""Checkpoints of multi-round mining runs, so that a killed run can resume after its last round.

A checkpoint is one file written with ``torch.save`` through :func:`ticketlab.atomic.atomic_path`
(temporary file, fsync, rename), so a kill at any moment leaves either the previous round's
checkpoint or the new one, never a torn file. It holds plain data only (tensors, numbers,
strings, lists, dicts) and is read back with ``torch.load(weights_only=True)``, which never runs
code from the file, through :func:`ticketlab.bounded.load_torch`: a checkpoint in a study folder
is untrusted input, so its zip members and tensors are bounded as an imported torch file's are
(at most :data:`BYTES_PER_PARAM` bytes per allowed parameter, and the ``inflated_bytes`` limit). Keys:

* ``format`` (``"ticketlab.checkpoint"``), ``version`` (2);
* ``fingerprint``: the run's identity (a flat JSON-like dict): its spec's fields by dotted name
  (:meth:`ticketlab.spec.MineSpec.by_field`, the method's options as its config resolved them),
  then the plan resolved from them (``plan.schedule``, ``plan.scope``, ...) and
  ``ticketlab_version``. A checkpoint is only resumed by a run with the same fingerprint; the
  run-time options (device, data root, stored weights and scores, round files, progress) are not
  in it, so changing them never blocks a resume;
* ``round``: the last finished round (0 = the miner's preparation, e.g. IMP's dense training);
* ``model``: the model's full ``state_dict`` (CPU); ``masks``: name -> bool tensor;
* ``scores``: the last round's scores; ``history``: the history rows so far;
* ``generator``: the miner's ``torch.Generator`` state; ``miner``: ``Miner.state_dict()``;
* ``elapsed``: wall seconds spent before this checkpoint.

There is no optimizer state: every round's training starts a fresh optimizer. Version 1 files
(written before the fingerprint was the spec's) are refused with one line: delete them to start over.

Example:
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.ckpt"
    >>> _ = write_checkpoint(path, {"round": 2, "fingerprint": {"seed": 0}, "w": torch.ones(2)})
    >>> read_checkpoint(path, {"seed": 0})["round"]
    2
    >>> read_checkpoint(path, {"seed": 1})
    Traceback (most recent call last):
    ...
    ticketlab.errors.ConfigError: checkpoint '...run.ckpt' was written by a different configuration (seed is 0 there, 1 now): run the same command, or delete the checkpoint to start over
    >>> checkpoint_for("random", pathlib.Path("t.h5")), checkpoint_for("imp", pathlib.Path("t.h5"))
    (None, PosixPath('t.h5.ckpt'))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ticketlab.atomic import atomic_path
from ticketlab.errors import ConfigError, TicketFormatError
from ticketlab.spec import field_difference

FORMAT = "ticketlab.checkpoint"
VERSION = 2
#: The version whose fingerprint was a list of settings of its own, before it was the spec's.
_PRE_SPEC_VERSION = 1
#: Bytes a checkpoint may declare per allowed parameter (``TICKETLAB_MAX_PARAMS``): the model's
#: float32 weights, a bool mask and float32 scores, with room for float64 models and buffers.
BYTES_PER_PARAM = 24
_SLACK = 64 * 2**20  # the pickle, the history, the miner's state


def write_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` (plain data; tensors are saved as they are) to ``path`` atomically.

    Example:
        >>> import tempfile, pathlib
        >>> write_checkpoint(pathlib.Path(tempfile.mkdtemp()) / "c.ckpt", {"round": 0}).name
        'c.ckpt'
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write checkpoint '{target}': folder '{target.parent}' does not exist")
    with atomic_path(target) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    return target


def read_checkpoint(path: str | os.PathLike[str], fingerprint: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint; with ``fingerprint``, refuse one written by a different configuration.

    Raises :class:`TicketFormatError` for a file that is not a readable checkpoint and
    :class:`ConfigError` (one sentence naming the first difference) for a different configuration.
    """
    from ticketlab.bounded import Refused, load_torch
    from ticketlab.fileformat import MAX_PARAMS_ENV, default_max_params

    source = Path(path)
    try:
        state = load_torch(source, BYTES_PER_PARAM * default_max_params() + _SLACK,
                           what=f"{MAX_PARAMS_ENV} at {BYTES_PER_PARAM} bytes a parameter")
    except FileNotFoundError:
        raise ConfigError(f"checkpoint '{source}' does not exist") from None
    except Refused as exc:
        raise TicketFormatError(f"checkpoint '{source}' cannot be read: {exc}") from None
    except OSError as exc:
        raise TicketFormatError(f"checkpoint '{source}' cannot be read ({exc.strerror or exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TicketFormatError(f"'{source}' is not a ticketlab checkpoint")
    if state.get("version") == _PRE_SPEC_VERSION:
        raise ConfigError(f"checkpoint '{source}' predates this ticketlab's checkpoints (format {_PRE_SPEC_VERSION}, "
                          f"whose fingerprint is not a mining spec's) and cannot be resumed: delete it to start over")
    if state.get("version") != VERSION:
        raise TicketFormatError(
            f"checkpoint '{source}' has version {state.get('version')}, this ticketlab reads {VERSION}")
    if fingerprint is not None:
        diff = first_difference(state.get("fingerprint", {}), fingerprint)
        if diff is not None:
            raise ConfigError(
                f"checkpoint '{source}' was written by a different configuration ({diff}): "
                "run the same command, or delete the checkpoint to start over"
            )
    return state


def first_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """``None`` when two fingerprints agree, else a short phrase naming the first differing key
    (in ``new``'s order: the spec's fields before the plan resolved from them).

    Values are compared as JSON (:func:`ticketlab.spec.field_difference`: tuples equal lists, and
    0.1 equals 0.1 exactly).

    Example:
        >>> first_difference({"a": 1, "b": [1, 2]}, {"a": 1, "b": (1, 2)}) is None
        True
        >>> first_difference({"a": 1}, {"a": 2})
        'a is 1 there, 2 now'
    """
    found = field_difference(old if isinstance(old, Mapping) else {}, new)
    if found is None:
        return None
    key, a, b = found
    return f"{_short(str(key))} is {_short(_canonical(a))} there, {_short(_canonical(b))} now"


def checkpoint_path(output: str | os.PathLike[str]) -> Path:
    """Where a run that writes the ticket ``output`` keeps its checkpoint: ``OUTPUT.ckpt``.

    Example:
        >>> checkpoint_path("runs/a.h5")
        PosixPath('runs/a.h5.ckpt')
    """
    output = Path(output)
    return output.with_name(output.name + ".ckpt")


def checkpoint_for(method: str, output: str | os.PathLike[str], resume: bool = False) -> Path | None:
    """The checkpoint rule of ``ticketlab mine`` and ``study run``: a run of ``method`` that
    writes ``output`` keeps a checkpoint (:func:`checkpoint_path`) when the method trains (its
    rounds are worth keeping) or when it is asked to resume; otherwise none (``None``)."""
    from ticketlab.miners import get_miner

    return checkpoint_path(output) if resume or get_miner(method).trains else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
