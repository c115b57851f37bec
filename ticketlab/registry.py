"""A small name -> object registry used for miners, models, data sets and metrics.

Example:
    >>> reg = Registry("model")
    >>> @reg.register("mlp")
    ... def mlp(): ...
    >>> reg.list()
    ['mlp']
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from ticketlab.errors import ConfigError, UnknownNameError

T = TypeVar("T")


def summary(doc: str | None) -> str:
    """The summary of a docstring: its first paragraph, on one line ('' for no docstring).

    ``ticketlab list`` shows it for entries registered without a ``description``, so a summary
    that wraps over two lines is shown whole, not cut after its first line. Inline-literal
    markers (double backquotes) are dropped: the line is read as plain text.

    Example:
        >>> summary('''Keep the largest |w| of the
        ...     ``init`` weights.
        ...
        ...     Details that the listing leaves out.''')
        'Keep the largest |w| of the init weights.'
    """
    first = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return " ".join(first.replace("``", "").split())


def _folded(name: str) -> str:
    """``name`` as a variant of it is compared: case folded, hyphens as underscores."""
    return name.casefold().replace("-", "_")


def near_names(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The ``choices`` closest to a mistyped ``name``, best first, at most ``n``: difflib's ratio of
    at least 0.7, then the choices that start with ``name``; case and hyphen/underscore
    differences do not count.

    Example:
        >>> near_names("synflw", ["random", "synflow", "snip"])
        ['synflow']
        >>> near_names("Gem-Minr", ["gem_miner", "imp"])
        ['gem_miner']
        >>> near_names("lenet", ["lenet_300_100", "lenet5", "resnet20"])
        ['lenet5', 'lenet_300_100']
    """
    by_key: dict[str, str] = {}
    for c in choices:
        by_key.setdefault(_folded(c), c)
    key = _folded(name)
    ratio = {k: difflib.SequenceMatcher(None, key, k).ratio() for k in by_key}
    close = sorted((k for k in by_key if ratio[k] >= 0.7), key=lambda k: -ratio[k])  # stable: ties keep their order
    starts = [k for k in by_key if key and k.startswith(key)]
    return [by_key[k] for k in dict.fromkeys(close + starts)][:n]


def unknown_name(kind: str, name: str, choices: Iterable[str], more: str = "",
                 others: Iterable[str] = ()) -> UnknownNameError:
    """The error for a ``name`` that no ``choices`` (of a ``kind`` such as "miner") match: it
    suggests the nearest names (of ``choices`` and ``others``, names listed in ``more``) and
    lists every choice, then ``more``.

    Example:
        >>> str(unknown_name("miner", "synflw", ["random", "synflow"]))
        "unknown miner 'synflw': did you mean 'synflow'? (choose from: random, synflow)"
    """
    choices = list(choices)
    near = near_names(name, [*choices, *others])
    hint = f": did you mean {' or '.join(repr(c) for c in near)}?" if near else ""
    listed = ", ".join(choices) or "none registered"
    return UnknownNameError(f"unknown {kind} '{name}'{hint} (choose from: {listed}{more})")


def match_name(kind: str, name: str, choices: Iterable[str], more: str = "", others: Iterable[str] = ()) -> str:
    """The one of ``choices`` that ``name`` means: itself, or else the only choice that equals it
    up to case and hyphens/underscores (``SynFlow``, ``gem-miner``). Otherwise an
    :class:`UnknownNameError` that suggests the nearest names (:func:`unknown_name`). ``others``
    are further valid names, listed in ``more`` (e.g. metric groups).

    Example:
        >>> match_name("miner", "Gem-Miner", ["gem_miner", "imp"])
        'gem_miner'
        >>> match_name("miner", "imp", ["gem_miner", "imp"])
        'imp'
    """
    choices, others = list(choices), list(others)
    valid = [*choices, *others]
    if name in valid:
        return name
    same = [c for c in valid if _folded(c) == _folded(name)]
    if len(same) == 1:
        return same[0]
    raise unknown_name(kind, name, choices, more, others)


class Registry(Generic[T]):
    """Ordered mapping from a unique name to an object, filled by a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator that registers its target under ``name`` (default: its ``__name__``).

        A duplicate name is an error, so two plug-ins cannot silently shadow each other.
        """

        def deco(obj: T) -> T:
            key = name or getattr(obj, "name", None) or obj.__name__  # type: ignore[attr-defined]
            if key in self._items:
                raise ConfigError(f"a {self.kind} named '{key}' is already registered")
            self._items[key] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` (non-decorator form)."""
        return self.register(name)(obj)

    def remove(self, name: str) -> T:
        """Unregister ``name`` and return its object (for plug-ins and tests)."""
        self.get(name)  # unknown name -> UnknownNameError
        return self._items.pop(name)

    def get(self, name: str) -> T:
        """The object registered as ``name``; an :class:`UnknownNameError` suggests the nearest
        names and lists the choices (a variant such as ``SynFlow`` is not accepted here: see
        :meth:`resolve`)."""
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._items) from None

    def resolve(self, name: str) -> str:
        """The registered name that ``name`` means, accepting case and hyphen/underscore variants
        when only one entry fits (:func:`match_name`)."""
        return match_name(self.kind, name, self._items)

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in registration order."""
        return [n for n in self._items if fnmatch.fnmatchcase(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
