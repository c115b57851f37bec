"""Deprecated names that still work: each is translated to its new name and warns once per process.

One vocabulary (``docs/glossary.md``): where a user-facing name changed, the old one stays an
alias here, and nowhere else. No torch import, so that studies and specs can translate too.

* Miner options (:data:`RENAMED_OPTIONS`): translated where a miner's config is built
  (:meth:`ticketlab.miners.base.Miner.__init__`), never where a spec or a study job is hashed,
  so a study file that writes the old name keeps its job names.
* Keyword arguments of public functions (:func:`renamed_kwarg`), and functions or module
  attributes that moved (:func:`warn_renamed`).

Example:
    >>> translate_options("supermask", {"weights": "signed_std"})
    {'weights': 'signed_std'}
    >>> option_name("supermask", "kept")
    'weights'
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from ticketlab.errors import ConfigError

#: Miner options renamed: method -> {old name: new name}. ``supermask``'s ``kept`` (what the
#: kept weights are set to) is ``weights``, as the learned-mask miners call their weight treatment.
RENAMED_OPTIONS: dict[str, dict[str, str]] = {"supermask": {"kept": "weights"}}

_warned: set[tuple[str, str]] = set()


def warn_renamed(old: str, new: str, *, stacklevel: int = 2) -> None:
    """A :class:`DeprecationWarning` that ``old`` is now ``new``, the first time in the process only.

    ``stacklevel`` counts from the caller of this function, as :func:`warnings.warn`'s does.
    """
    if (old, new) in _warned:
        return
    _warned.add((old, new))
    warnings.warn(f"{old} is deprecated: use {new} (docs/glossary.md)", DeprecationWarning, stacklevel=stacklevel + 1)


def option_name(method: str, key: str) -> str:
    """The current name of ``method``'s option ``key`` (``key`` itself unless it was renamed)."""
    return RENAMED_OPTIONS.get(method, {}).get(key, key)


def old_option_names(method: str) -> dict[str, str]:
    """``method``'s deprecated option names: old name -> new name (empty for most methods)."""
    return dict(RENAMED_OPTIONS.get(method, {}))


def translate_options(method: str, options: Mapping[str, Any], *, warn: bool = True) -> dict[str, Any]:
    """``options`` of ``method`` with every deprecated name replaced by its new one (a warning,
    once); giving both names is a :class:`ConfigError`.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     translate_options("supermask", {"kept": "signed_std", "criterion": "large_final"})
        {'weights': 'signed_std', 'criterion': 'large_final'}
    """
    renamed = RENAMED_OPTIONS.get(method, {})
    out: dict[str, Any] = {}
    for key, value in options.items():
        new = renamed.get(key)
        if new is None:
            out[key] = value
            continue
        if new in options:
            raise ConfigError(f"{method} options {key} and {new} are the same option: give {new} only")
        if warn:
            warn_renamed(f"{method} option '{key}'", f"'{new}'", stacklevel=3)
        out[new] = value
    return out


def renamed_kwarg(function: str, old: str, new: str, old_value: Any, new_value: Any, default: Any) -> Any:
    """The value of keyword ``new`` of ``function`` when a caller may still pass it as ``old``
    (``old_value`` is ``None`` when not passed): ``old_value`` with a warning (once), or
    ``new_value``; both given is a :class:`ConfigError`. ``default`` is ``new``'s default.

    Example:
        >>> renamed_kwarg("train", "kept", "weights", None, "reinit", "init")
        'reinit'
    """
    if old_value is None:
        return new_value
    if new_value != default and new_value is not None:
        raise ConfigError(f"{function}() takes {new}, or its old name {old}, not both")
    warn_renamed(f"{function}({old}=...)", f"{function}({new}=...)", stacklevel=3)
    return old_value


def reset_warnings() -> None:
    """Forget which deprecations have warned (for tests)."""
    _warned.clear()
