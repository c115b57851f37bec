"""Checks of values that reach ticketlab from users and files, shared by every place that takes them.

* :func:`check_seed`: a seed is an integer in ``[0, MAX_SEED]``, wherever it comes from (a
  command-line option, a study file, a ticket's provenance or a transform record), so that
  ``torch.manual_seed``, numpy and scikit-learn all take it and the stream offsets added to it.
* :func:`non_finite`: where in a nested table a number is ``inf`` or ``nan`` (TOML and JSON
  allow them; a learning rate of ``inf`` has no meaning, and a configuration holding one cannot
  be hashed as canonical JSON).

Example:
    >>> check_seed(3)
    3
    >>> check_seed(10**30, "provenance seed")
    Traceback (most recent call last):
    ...
    ticketlab.errors.ConfigError: provenance seed must be an integer from 0 to 4294967295, not 1000000000000000000000000000000
    >>> non_finite({"train": {"lr": float("inf")}, "seeds": [0]})
    ('train.lr', inf)
"""

from __future__ import annotations

import math
from typing import Any

from ticketlab.errors import ConfigError

#: The largest seed: numpy's legacy generators and scikit-learn take seeds below 2**32, and
#: torch's generators take the seed plus ticketlab's stream offsets.
MAX_SEED = 2**32 - 1


def is_seed(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool) in ``[0, MAX_SEED]``."""
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= MAX_SEED


def check_seed(value: Any, what: str = "seed") -> int:
    """``value`` as an ``int`` when it is a seed (:func:`is_seed`), else a one-sentence
    :class:`~ticketlab.errors.ConfigError` that starts with ``what``."""
    if not is_seed(value):
        shown = value if isinstance(value, (int, float, str, type(None))) else type(value).__name__
        raise ConfigError(f"{what} must be an integer from 0 to {MAX_SEED}, not {shown!r}")
    return int(value)


def non_finite(value: Any, where: str = "", depth: int = 0) -> tuple[str, float] | None:
    """The dotted path and value of the first ``inf`` or ``nan`` in ``value`` (nested mappings and
    lists), or ``None`` when every number is finite. Nesting beyond 100 levels counts as clean
    here (bounding depth is the reader's job)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "value", value
    if depth > 100:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite(item, f"{where}.{key}" if where else str(key), depth + 1)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = non_finite(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
    return None
