"""Other tools' parameter names to ticketlab's: ``--rename FROM=TO``, mapping files, built-in maps.

A rename ``FROM -> TO`` applies to a mask named ``FROM`` exactly, or to one whose name starts with
``FROM.`` (a module prefix: ``fc_layers.0 -> fc1`` renames ``fc_layers.0.weight`` to
``fc1.weight``); the longest matching ``FROM`` wins. Every ``FROM`` must match some mask, and no two
masks may end under one name; either is a one-line :class:`~ticketlab.errors.ConfigError`.

A mapping file is a JSON object of ``"FROM": "TO"`` strings, read through
:func:`ticketlab.bounded.read_json` (size and depth bounded, as every untrusted text file).

Built-in maps (:data:`NAME_MAPS`) are made from the file's own names:

* ``open_lth``: open_lth's ``mnist_lenet_N1_N2...`` (``models/mnist_lenet.py``: a ``ModuleList``
  ``fc_layers`` of Linear layers, then the output layer ``fc``) to ticketlab's ``MLP``
  (``lenet_300_100``, ``mlp_200_30``: ``fc1, fc2, ...``): ``fc_layers.K -> fc{K+1}`` and
  ``fc -> fc{N+1}`` for N hidden layers.

Example:
    >>> rename({"fc_layers.0.weight": 1, "fc.weight": 2}, open_lth_map(["fc_layers.0.weight", "fc.weight"]))
    {'fc1.weight': 1, 'fc2.weight': 2}
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterable, Mapping, TypeVar

from ticketlab.errors import ConfigError

V = TypeVar("V")
_OPEN_LTH_HIDDEN = re.compile(r"fc_layers\.(\d+)\.(weight|bias)")
_OPEN_LTH_OUTPUT = re.compile(r"fc\.(weight|bias)")


def _shown(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def parse_renames(items: Iterable[str]) -> dict[str, str]:
    """``FROM=TO`` strings (``--rename``) as a mapping; a malformed or repeated one is a ConfigError.

    Example:
        >>> parse_renames(["fc_layers.0=fc1", "fc=fc3"])
        {'fc_layers.0': 'fc1', 'fc': 'fc3'}
    """
    mapping: dict[str, str] = {}
    for item in items:
        old, eq, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not eq or not old or not new:
            raise ConfigError(f"rename '{item}' is not FROM=TO (a name or module prefix, '=', its new name)",
                              cli=f"--rename '{item}' is not FROM=TO (a name or module prefix, '=', its new name)")
        _add(mapping, old, new, f"rename '{item}'")
    return mapping


def _add(mapping: dict[str, str], old: str, new: str, where: str) -> None:
    if old in mapping and mapping[old] != new:
        raise ConfigError(f"{where}: '{old}' is already renamed to '{mapping[old]}'")
    mapping[old] = new


def read_rename_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The mapping in a JSON file ``{"FROM": "TO", ...}``; anything else is a one-line ConfigError.

    Example:
        >>> import json, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.json"
        >>> _ = p.write_text(json.dumps({"fc_layers.0": "fc1"}))
        >>> read_rename_file(p)
        {'fc_layers.0': 'fc1'}
    """
    from ticketlab.bounded import Refused, read_json

    try:
        data: Any = read_json(path)
    except (Refused, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read rename file '{path}': {reason}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"rename file '{path}' holds {type(data).__name__ if data else 'nothing'}, "
                          'not a JSON object of names, e.g. {"fc_layers.0": "fc1"}')
    mapping: dict[str, str] = {}
    for old, new in data.items():
        if not isinstance(new, str) or not old.strip() or not new.strip():
            raise ConfigError(f"rename file '{path}': entry '{old}' must map a name to a non-empty name "
                              f"(it maps to {new!r})"[:300])
        _add(mapping, old.strip(), new.strip(), f"rename file '{path}'")
    return mapping


def open_lth_map(names: Iterable[str]) -> dict[str, str]:
    """The renames from open_lth's ``mnist_lenet_*`` names to ticketlab's ``MLP`` names.

    Raises :class:`~ticketlab.errors.ConfigError` when ``names`` are not such a model's.

    Example:
        >>> open_lth_map(["fc_layers.0.weight", "fc_layers.1.weight", "fc.weight"])
        {'fc_layers.0': 'fc1', 'fc_layers.1': 'fc2', 'fc': 'fc3'}
    """
    names = list(names)
    hidden = set()
    for name in names:
        found = _OPEN_LTH_HIDDEN.fullmatch(name)
        if found:
            hidden.add(int(found.group(1)))
        elif not _OPEN_LTH_OUTPUT.fullmatch(name):
            raise ConfigError(f"the open_lth name map is for mnist_lenet models (fc_layers.K.weight, fc.weight); "
                              f"mask '{name}' is not one of their names")
    if hidden != set(range(len(hidden))):
        raise ConfigError(f"the open_lth name map needs fc_layers.0 .. fc_layers.{len(hidden) - 1}; "
                          f"the file has layers {_shown(str(k) for k in sorted(hidden))}")
    mapping = {f"fc_layers.{k}": f"fc{k + 1}" for k in sorted(hidden)}
    mapping["fc"] = f"fc{len(hidden) + 1}"
    return mapping


#: Built-in name maps (``ticketlab import --names``): a function of the file's mask names.
NAME_MAPS: dict[str, Callable[[Iterable[str]], dict[str, str]]] = {"open_lth": open_lth_map}


def rename(masks: Mapping[str, V], mapping: Mapping[str, str]) -> dict[str, V]:
    """``masks`` under their new names, in the same order (see the module docstring for the rule).

    Example:
        >>> rename({"a.w": 1, "b": 2}, {"a": "x"})
        {'x.w': 1, 'b': 2}
    """
    used: set[str] = set()
    out: dict[str, V] = {}
    source: dict[str, str] = {}
    by_length = sorted(mapping, key=len, reverse=True)
    for name, value in masks.items():
        new = name
        for old in by_length:
            if name == old or name.startswith(old + "."):
                new = mapping[old] + name[len(old):]
                used.add(old)
                break
        if new in out:
            raise ConfigError(f"renaming gives two masks the name '{new}' ('{source[new]}' and '{name}')")
        out[new] = value
        source[new] = name
    unused = [old for old in mapping if old not in used]
    if unused:
        raise ConfigError(f"rename '{unused[0]}' matches no mask in the file (its masks: {_shown(masks)})")
    return out
