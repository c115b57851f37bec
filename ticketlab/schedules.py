"""Per-layer density targets of a pruning schedule: one shared piece for every miner (no torch).

A schedule is a list of rounds; each round asks for one density (over the run's scope) or one
density per prunable parameter (each parameter then keeps exactly ``keep_count(d, n)`` of its
``n`` weights, layer-wise). Two ways to ask for per-layer targets, both resolved here:

* **Explicit per-layer rounds**: ``mine(schedule=[{"*": 0.8, "output": 0.9}, {"*": 0.64, "output": 0.81}])``.
  A round's keys are parameter names, glob patterns (``"conv*"``), ``"output"`` (the model's
  output layer: its last prunable parameter, even where the run leaves it dense) and ``"*"``
  (every parameter no other key names). A name beats ``output``, which beats a pattern, which
  beats ``*``; two patterns that both match a parameter must agree.
* **Rate multipliers** (``mine(rate_multipliers={"output": 0.5})``, ``--rate-multiplier
  output=0.5``): the schedule's per-round pruning rate ``r_k = 1 - d_k / d_(k-1)`` is scaled per
  layer, so layer ``l`` keeps ``prod_(j<=k) (1 - m_l r_j)`` after round ``k``. With 20 % per
  round and ``output=0.5`` this is Frankle & Carbin's output layer pruned at half the rate
  (2019, Fig. 2), which is also Zhou et al.'s 0.8^p for hidden layers and 0.9^p for the output
  layer (2019, Sec. 2). Layers without a multiplier keep 1. The
  overall density is then what the layers' counts add up to, not the one-density target.

Example:
    >>> names = ["fc1.weight", "fc2.weight", "fc3.weight"]
    >>> per_layer({"*": 0.8, "output": 0.9}, names, "fc3.weight")
    {'fc1.weight': 0.8, 'fc2.weight': 0.8, 'fc3.weight': 0.9}
    >>> [{n: round(d, 4) for n, d in r.items()} for r in scale_rates([0.8, 0.64], {"output": 0.5}, names, "fc3.weight")]
    [{'fc1.weight': 0.8, 'fc2.weight': 0.8, 'fc3.weight': 0.9}, {'fc1.weight': 0.64, 'fc2.weight': 0.64, 'fc3.weight': 0.81}]
"""

from __future__ import annotations

import fnmatch
import math
from typing import Mapping, Sequence, Union

from ticketlab.errors import ConfigError

#: A round of a schedule: one density, or one density per prunable parameter name.
RoundTarget = Union[float, dict[str, float]]

#: The key that names the model's output layer (its last prunable parameter).
OUTPUT = "output"
#: The key for every parameter that no other key names.
EVERY = "*"


def resolve_keys(mapping: Mapping[str, float], names: Sequence[str], output: str | None, *,
                 what: str, complete: bool) -> dict[str, float]:
    """``mapping``'s keys (names, ``output``, glob patterns, ``*``) resolved to parameter names.

    ``complete``: every parameter must get a value (else a one-line error naming the first one
    left out). A key that matches no parameter is an error too (a typo must not pass silently).

    Example:
        >>> resolve_keys({"conv*": 0.5, "fc2.weight": 0.25}, ["conv1.weight", "conv2.weight", "fc2.weight"], None,
        ...              what="rate multiplier", complete=False)
        {'conv1.weight': 0.5, 'conv2.weight': 0.5, 'fc2.weight': 0.25}
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"a {what} must map layer names to numbers, not {type(mapping).__name__}")
    values: dict[str, float] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"a {what} key must be a layer name, 'output', a pattern like 'conv*' or '*', "
                              f"not {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{what} '{key}' must be a finite number, not {value!r}")
        values[key] = float(value)
    patterns = {k: v for k, v in values.items() if k not in names and k not in (OUTPUT, EVERY)}
    for key in patterns:
        if not fnmatch.filter(names, key):
            raise ConfigError(f"{what} '{key}' names no prunable parameter (they are: {', '.join(names)})")
    if OUTPUT in values and (output is None or output not in names):
        raise ConfigError(f"{what} 'output' names the output layer, which this run does not prune")
    out: dict[str, float] = {}
    for n in names:
        if n in values:
            out[n] = values[n]
        elif n == output and OUTPUT in values:
            out[n] = values[OUTPUT]
        else:
            hits = {v for k, v in patterns.items() if fnmatch.fnmatchcase(n, k)}
            if len(hits) > 1:
                keys = [k for k in patterns if fnmatch.fnmatchcase(n, k)]
                raise ConfigError(f"{what} patterns {', '.join(repr(k) for k in keys)} give {n} different values")
            if hits:
                out[n] = hits.pop()
            elif EVERY in values:
                out[n] = values[EVERY]
            elif complete:
                raise ConfigError(f"{what} gives no value for {n} (add it, or '*' for every layer not named)")
    return out


def per_layer(entry: Mapping[str, float], names: Sequence[str], output: str | None, *,
              what: str = "schedule round") -> dict[str, float]:
    """One explicit per-layer round, every parameter's density (see :func:`resolve_keys`)."""
    densities = resolve_keys(entry, names, output, what=what, complete=True)
    for n, d in densities.items():
        if not 0.0 < d <= 1.0:
            raise ConfigError(f"{what} gives {n} density {d}: densities must be in (0, 1]")
    return densities


def resolve_rounds(schedule: Sequence[float | Mapping[str, float]], names: Sequence[str],
                   output: str | None) -> list[RoundTarget]:
    """A user's schedule with every per-layer round resolved to parameter names (floats as given)."""
    if isinstance(schedule, (str, bytes, Mapping)):
        raise ConfigError("a schedule is a list of rounds: densities, or per-layer densities like "
                          "[{'*': 0.8, 'output': 0.9}]")
    out: list[RoundTarget] = []
    for k, entry in enumerate(schedule, 1):
        if isinstance(entry, Mapping):
            out.append(per_layer(entry, names, output, what=f"round {k} of the schedule"))
        elif isinstance(entry, bool) or not isinstance(entry, (int, float)):
            raise ConfigError(f"round {k} of the schedule must be a density or a mapping of layer densities, "
                              f"not {entry!r}")
        else:
            out.append(float(entry))
    return out


def check_multipliers(multipliers: Mapping[str, float], names: Sequence[str], output: str | None) -> dict[str, float]:
    """Every parameter's rate multiplier (1 where none is given); each must be > 0."""
    given = resolve_keys(multipliers, names, output, what="rate multiplier", complete=False)
    for n, m in given.items():
        if m <= 0:
            raise ConfigError(f"rate multiplier of {n} must be > 0, got {m}")
    return {n: given.get(n, 1.0) for n in names}


def scale_rates(densities: Sequence[RoundTarget], multipliers: Mapping[str, float], names: Sequence[str],
                output: str | None) -> list[dict[str, float]]:
    """Per-layer rounds from a one-density schedule whose per-round rate each layer scales.

    Round ``k``'s rate is ``r_k = 1 - d_k / d_(k-1)`` (``d_0 = 1``); layer ``l`` keeps
    ``prod_(j<=k) (1 - m_l r_j)``. A rate that a multiplier pushes past 1 is a one-line error.
    """
    if any(isinstance(d, Mapping) for d in densities):
        raise ConfigError("rate multipliers scale a schedule of one density per round; this schedule already "
                          "gives per-layer densities (drop the rate multipliers or the per-layer rounds)")
    mult = check_multipliers(multipliers, names, output)
    out: list[dict[str, float]] = []
    keep = {n: 1.0 for n in names}
    previous = 1.0
    for k, d in enumerate(densities, 1):
        rate = 1.0 - float(d) / previous
        previous = float(d)
        for n in names:
            if mult[n] * rate >= 1.0:
                raise ConfigError(f"rate multiplier {mult[n]:g} of {n} asks round {k} to prune "
                                  f"{100 * mult[n] * rate:.1f} % of its remaining weights (it must stay below 100 %)")
            keep[n] *= 1.0 - mult[n] * rate
        out.append(dict(keep))
    return out


def rate_schedule(rates: Mapping[str, float], rounds: int) -> list[dict[str, float]]:
    """``rounds`` rounds that prune each parameter at its own constant rate: ``(1 - p_l) ** k``.

    Example:
        >>> rate_schedule({"a": 0.2, "b": 0.1}, 2)[-1]
        {'a': 0.6400000000000001, 'b': 0.81}
    """
    return [{n: (1.0 - p) ** k for n, p in rates.items()} for k in range(1, rounds + 1)]


def parse_multipliers(texts: Sequence[str]) -> dict[str, float]:
    """``--rate-multiplier NAME=M`` values (repeatable) as a mapping.

    Example:
        >>> parse_multipliers(["output=0.5", "conv*=1.5"])
        {'output': 0.5, 'conv*': 1.5}
    """
    out: dict[str, float] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"option --rate-multiplier needs NAME=FACTOR like output=0.5, got '{text}'") from None
    return out
