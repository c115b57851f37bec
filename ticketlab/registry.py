"""A small name -> object registry used for miners, models, data sets and metrics.

Example:
    >>> reg = Registry("model")
    >>> @reg.register("mlp")
    ... def mlp(): ...
    >>> reg.list()
    ['mlp']
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Callable, Generic, Iterator, TypeVar

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
        """The object registered as ``name``; an :class:`UnknownNameError` lists the choices."""
        try:
            return self._items[name]
        except KeyError:
            choices = ", ".join(self._items) or "none registered"
            raise UnknownNameError(f"unknown {self.kind} '{name}' (choose from: {choices})") from None

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in registration order."""
        return [n for n in self._items if fnmatch.fnmatchcase(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
